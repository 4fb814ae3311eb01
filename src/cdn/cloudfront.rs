//! Amazon CloudFront through aws-sdk-cloudfront: origin path from
//! GetDistribution, CreateInvalidation with retries on
//! TooManyInvalidationsInProgress, and a poller for `--wait` that accepts
//! any casing of "Completed" (emulators differ).

use std::time::Duration;

use async_trait::async_trait;
use aws_sdk_cloudfront::Client;
use aws_sdk_cloudfront::error::{ProvideErrorMetadata, SdkError};
use aws_sdk_cloudfront::types::{InvalidationBatch, Paths};

use super::{Cdn, CdnError, Invalidation, RetryHint};

/// One CloudFront distribution.
pub struct CloudFront {
    client: Client,
    /// The KeyValueStore data plane (same credentials and endpoint).
    kvs: aws_sdk_cloudfrontkeyvaluestore::Client,
    id: String,
    poll: Duration,
    retry_base: Duration,
}

/// The KeyValueStore data plane at one address, signed as AWS's is.
#[derive(Debug)]
struct FixedKvsEndpoint(String);

impl aws_sdk_cloudfrontkeyvaluestore::config::endpoint::ResolveEndpoint for FixedKvsEndpoint {
    fn resolve_endpoint<'a>(
        &'a self,
        _params: &'a aws_sdk_cloudfrontkeyvaluestore::config::endpoint::Params,
    ) -> aws_sdk_cloudfrontkeyvaluestore::config::endpoint::EndpointFuture<'a> {
        use aws_smithy_types::endpoint::{Endpoint, EndpointAuthScheme};
        aws_sdk_cloudfrontkeyvaluestore::config::endpoint::EndpointFuture::ready(Ok(
            Endpoint::builder()
                .url(self.0.clone())
                .auth_scheme(
                    EndpointAuthScheme::with_capacity("sigv4a", 2)
                        .put("signingName", "cloudfront-keyvaluestore".to_string())
                        .put("signingRegionSet", vec!["*".to_string().into()]),
                )
                .build(),
        ))
    }
}

impl CloudFront {
    /// A client over `sdk` for distribution `id`; `endpoint`: the checked
    /// endpoint to use (an emulator), else AWS.
    pub fn new(sdk: &aws_config::SdkConfig, id: &str, endpoint: Option<String>) -> CloudFront {
        let mut b = aws_sdk_cloudfront::config::Builder::from(sdk);
        let mut k = aws_sdk_cloudfrontkeyvaluestore::config::Builder::from(sdk);
        if let Some(e) = endpoint {
            b = b.endpoint_url(&e);
            // An emulator answers both (scripts/moto-server.py), at its own
            // address (the SDK's rules would prefix the store's account id
            // to the host); AWS's data-plane endpoint follows from each
            // store's ARN.
            k = k.endpoint_resolver(FixedKvsEndpoint(e));
        }
        CloudFront {
            client: Client::from_conf(b.build()),
            kvs: aws_sdk_cloudfrontkeyvaluestore::Client::from_conf(k.build()),
            id: id.to_string(),
            poll: Duration::from_secs(5),
            retry_base: Duration::from_secs(2),
        }
    }

    async fn get_distribution(
        &self,
    ) -> Result<aws_sdk_cloudfront::operation::get_distribution::GetDistributionOutput, CdnError>
    {
        self.client
            .get_distribution()
            .id(&self.id)
            .send()
            .await
            .map_err(|e| self.err(e))
    }

    /// The SDK client (for `doctor`'s reads).
    pub fn client(&self) -> &Client {
        &self.client
    }

    /// The KeyValueStore data-plane client.
    pub(super) fn kvs_client(&self) -> &aws_sdk_cloudfrontkeyvaluestore::Client {
        &self.kvs
    }

    /// The distribution id.
    pub fn id(&self) -> &str {
        &self.id
    }

    /// How often `--wait` polls an invalidation.
    pub fn with_poll(mut self, poll: Duration) -> Self {
        self.poll = poll;
        self
    }

    pub(super) fn err<E: ProvideErrorMetadata + std::error::Error + 'static>(
        &self,
        e: SdkError<E, aws_sdk_cloudfront::config::http::HttpResponse>,
    ) -> CdnError {
        let (code, msg) = match &e {
            SdkError::ServiceError(se) => (
                se.err().code().unwrap_or("").to_string(),
                se.err().message().unwrap_or("").to_string(),
            ),
            _ => {
                // The whole chain: "dispatch failure" alone says nothing.
                let mut msg = e.to_string();
                let mut src = std::error::Error::source(&e);
                while let Some(s) = src {
                    msg.push_str(": ");
                    msg.push_str(&s.to_string());
                    src = s.source();
                }
                (String::new(), msg)
            }
        };
        match code.as_str() {
            "TooManyInvalidationsInProgress" => CdnError::TooMany(self.id.clone()),
            "NoSuchDistribution" => CdnError::NotFound(self.id.clone()),
            "AccessDenied" | "InvalidClientTokenId" | "SignatureDoesNotMatch" => {
                CdnError::Denied(self.id.clone(), format!("{code}: {msg}"))
            }
            _ if code.is_empty() => CdnError::Other(self.id.clone(), msg),
            _ => CdnError::Other(self.id.clone(), format!("{code}: {msg}")),
        }
    }
}

#[async_trait]
impl Cdn for CloudFront {
    fn name(&self) -> &str {
        &self.id
    }

    /// "Too many invalidations in progress" clears as others complete.
    fn retry_hint(&self) -> RetryHint {
        RetryHint {
            attempts: 6,
            base: self.retry_base,
        }
    }

    async fn compresses(&self, bucket: &str) -> Result<Option<bool>, CdnError> {
        self.edge_compresses(bucket).await.map(Some)
    }

    async fn apply_routing(
        &self,
        bucket: &str,
        prefix: &str,
        edge: Option<&super::EdgeRouting>,
    ) -> Result<Option<super::RoutingApplied>, CdnError> {
        match edge {
            Some(edge) => self.apply_edge(bucket, edge).await.map(Some),
            None => self.remove_edge(bucket, prefix).await,
        }
    }

    async fn origin_path(&self, bucket: &str) -> Result<String, CdnError> {
        let out = self.get_distribution().await?;
        let origins: Vec<(String, String)> = out
            .distribution()
            .and_then(|d| d.distribution_config())
            .and_then(|c| c.origins())
            .map(|o| {
                o.items()
                    .iter()
                    .map(|o| {
                        (
                            o.domain_name().to_string(),
                            o.origin_path().unwrap_or("").to_string(),
                        )
                    })
                    .collect()
            })
            .unwrap_or_default();
        // The origin that serves this bucket; a lone origin is assumed to.
        let ours = origins
            .iter()
            .find(|(d, _)| d.starts_with(&format!("{bucket}.")) || d == bucket)
            .or(if origins.len() == 1 {
                origins.first()
            } else {
                None
            });
        Ok(ours
            .map(|(_, p)| p.trim_matches('/').to_string())
            .unwrap_or_default())
    }

    async fn invalidate(
        &self,
        paths: &[String],
        caller_reference: &str,
    ) -> Result<Invalidation, CdnError> {
        let batch = InvalidationBatch::builder()
            .paths(
                Paths::builder()
                    .quantity(paths.len() as i32)
                    .set_items(Some(paths.to_vec()))
                    .build()
                    .map_err(|e| CdnError::Other(self.id.clone(), e.to_string()))?,
            )
            .caller_reference(caller_reference)
            .build()
            .map_err(|e| CdnError::Other(self.id.clone(), e.to_string()))?;
        let out = self
            .client
            .create_invalidation()
            .distribution_id(&self.id)
            .invalidation_batch(batch)
            .send()
            .await
            .map_err(|e| self.err(e))?;
        let inv = out.invalidation().ok_or_else(|| {
            CdnError::Other(self.id.clone(), "no invalidation in the response".into())
        })?;
        Ok(Invalidation {
            distribution: self.id.clone(),
            id: inv.id().to_string(),
            paths: paths.to_vec(),
            caller_reference: caller_reference.to_string(),
            status: inv.status().to_string(),
        })
    }

    async fn domain(&self) -> Result<Option<String>, CdnError> {
        let out = self.get_distribution().await?;
        let Some(d) = out.distribution() else {
            return Ok(None);
        };
        let alias = d
            .distribution_config()
            .and_then(|c| c.aliases())
            .and_then(|a| a.items().first().cloned());
        Ok(alias.or_else(|| Some(d.domain_name().to_string()).filter(|s| !s.is_empty())))
    }

    async fn wait(&self, id: &str, timeout: Duration) -> Result<String, CdnError> {
        let start = tokio::time::Instant::now();
        loop {
            let out = self
                .client
                .get_invalidation()
                .distribution_id(&self.id)
                .id(id)
                .send()
                .await
                .map_err(|e| self.err(e))?;
            let status = out
                .invalidation()
                .map(|i| i.status().to_string())
                .unwrap_or_default();
            if status.eq_ignore_ascii_case("completed") {
                return Ok(status);
            }
            let waited = start.elapsed();
            if waited >= timeout {
                return Err(CdnError::Timeout(self.id.clone(), timeout, id.to_string()));
            }
            tokio::time::sleep(self.poll.min(timeout - waited)).await;
        }
    }
}
