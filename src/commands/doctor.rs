//! `cdnsync doctor`: read the bucket's (and the distribution's) settings
//! through the AWS APIs, then hand them to the pure checks in `crate::doctor`.

use aws_sdk_s3::error::{ProvideErrorMetadata, SdkError};
use serde::Serialize;

use crate::commands::Context;
use crate::config::{DoctorConfig, TargetConfig};
use crate::doctor::{
    BehaviorFacts, BucketFacts, DistributionFacts, Encryption, ErrorResponseFacts, Expectations,
    Fact, Finding, FunctionFacts, HeadersPolicyFacts, OriginFacts, PublicAccessBlock,
};
use crate::error::{Error, Result};
use crate::output::{Render, View};
use crate::store::Sse;
use crate::store::Store;
use crate::target::Target;

#[derive(Debug, Serialize)]
pub struct DoctorReport {
    pub target: String,
    pub bucket: BucketFacts,
    pub distributions: Vec<DistributionFacts>,
    pub findings: Vec<Finding>,
    pub warnings: usize,
    pub failures: usize,
    /// The distributions asked about (shown in the heading).
    #[serde(skip)]
    pub distribution_ids: Vec<String>,
}

impl Render for DoctorReport {
    fn human(&self, _: &View) -> String {
        let d = (!self.distribution_ids.is_empty()).then(|| self.distribution_ids.join(", "));
        crate::doctor::human(&self.target, d.as_deref(), &self.findings)
    }

    /// Failures and warnings as annotations.
    fn github(&self, _g: &crate::github::GithubEnv, out: &mut dyn std::io::Write) {
        use crate::doctor::Severity;
        for f in &self.findings {
            let msg = format!(
                "doctor {}: {}{}",
                f.check,
                f.summary,
                f.fix
                    .as_deref()
                    .map(|x| format!(" (fix: {x})"))
                    .unwrap_or_default()
            );
            let line = match f.severity {
                Severity::Failure => crate::github::error(&msg),
                Severity::Warning => crate::github::warning(None, None, &msg),
                _ => continue,
            };
            let _ = writeln!(out, "{line}");
        }
    }

    fn outcome(&self) -> Result<()> {
        if self.warnings + self.failures == 0 {
            return Ok(());
        }
        Err(Error::DoctorFindings {
            warnings: self.warnings,
            failures: self.failures,
        })
    }
}

/// `Ok(None)` for the error codes that mean "not configured".
fn fact<T, E: ProvideErrorMetadata + std::error::Error + 'static>(
    r: std::result::Result<T, SdkError<E, aws_sdk_s3::config::http::HttpResponse>>,
    absent: &[&str],
) -> std::result::Result<Option<T>, String> {
    match r {
        Ok(v) => Ok(Some(v)),
        Err(SdkError::ServiceError(se)) if se.err().code().is_some() => {
            let code = se.err().code().unwrap_or("");
            if absent.contains(&code) {
                Ok(None)
            } else {
                Err(format!(
                    "{code}{}",
                    se.err()
                        .message()
                        .map(|m| format!(": {m}"))
                        .unwrap_or_default()
                ))
            }
        }
        Err(e) => {
            let status = e.raw_response().map(|r| r.status().as_u16());
            Err(format!(
                "{}{}",
                status.map(|s| format!("HTTP {s}: ")).unwrap_or_default(),
                crate::store::s3::error_chain(&e)
            ))
        }
    }
}

fn flat<T>(f: Fact<Option<T>>) -> Fact<T> {
    f.map(Option::flatten)
}

async fn bucket_facts(s3: &aws_sdk_s3::Client, bucket: &str) -> BucketFacts {
    let pab = fact(
        s3.get_public_access_block().bucket(bucket).send().await,
        &["NoSuchPublicAccessBlockConfiguration"],
    )
    .map(|o| {
        o.and_then(|o| {
            o.public_access_block_configuration()
                .map(|c| PublicAccessBlock {
                    block_public_acls: c.block_public_acls().unwrap_or(false),
                    ignore_public_acls: c.ignore_public_acls().unwrap_or(false),
                    block_public_policy: c.block_public_policy().unwrap_or(false),
                    restrict_public_buckets: c.restrict_public_buckets().unwrap_or(false),
                })
        })
    });
    let status = flat(
        fact(
            s3.get_bucket_policy_status().bucket(bucket).send().await,
            &["NoSuchBucketPolicy"],
        )
        .map(|o| {
            o.map(|o| {
                o.policy_status()
                    .and_then(aws_sdk_s3::types::PolicyStatus::is_public)
            })
        }),
    );
    let policy = flat(
        fact(
            s3.get_bucket_policy().bucket(bucket).send().await,
            &["NoSuchBucketPolicy"],
        )
        .map(|o| o.map(|o| o.policy().map(str::to_string))),
    );
    let encryption = flat(
        fact(
            s3.get_bucket_encryption().bucket(bucket).send().await,
            &["ServerSideEncryptionConfigurationNotFoundError"],
        )
        .map(|o| {
            o.map(|o| {
                o.server_side_encryption_configuration()
                    .and_then(|c| c.rules().first())
                    .and_then(|r| {
                        r.apply_server_side_encryption_by_default()
                            .map(|d| Encryption {
                                algorithm: d.sse_algorithm().as_str().to_string(),
                                kms_key: d.kms_master_key_id().map(str::to_string),
                                bucket_key: r.bucket_key_enabled().unwrap_or(false),
                            })
                    })
            })
        }),
    );
    let ownership = flat(
        fact(
            s3.get_bucket_ownership_controls()
                .bucket(bucket)
                .send()
                .await,
            &["OwnershipControlsNotFoundError"],
        )
        .map(|o| {
            o.map(|o| {
                o.ownership_controls()
                    .and_then(|c| c.rules().first())
                    .map(|r| r.object_ownership().as_str().to_string())
            })
        }),
    );
    let versioning = flat(
        fact(s3.get_bucket_versioning().bucket(bucket).send().await, &[])
            .map(|o| o.map(|o| o.status().map(|s| s.as_str().to_string()))),
    );
    BucketFacts {
        bucket: bucket.to_string(),
        public_access_block: pab,
        policy_is_public: status,
        policy,
        encryption,
        ownership,
        versioning,
    }
}

async fn distribution_facts(cfg: &TargetConfig, id: &str) -> Result<DistributionFacts> {
    let cf =
        crate::connect::cloudfront(id, cfg.cdn_endpoint_url.as_deref(), cfg.allow_http).await?;
    let out = cf
        .client()
        .get_distribution()
        .id(id)
        .send()
        .await
        .map_err(|e| {
            let (code, msg) = match &e {
                SdkError::ServiceError(se) => (
                    se.err().code().unwrap_or("").to_string(),
                    se.err().message().unwrap_or("").to_string(),
                ),
                _ => (String::new(), crate::store::s3::error_chain(&e)),
            };
            match code.as_str() {
                "NoSuchDistribution" => Error::Usage(format!("distribution {id} not found")),
                "AccessDenied" | "InvalidClientTokenId" | "SignatureDoesNotMatch" => {
                    Error::Credentials(format!("CloudFront GetDistribution {id}: {code}: {msg}"))
                }
                _ => Error::Usage(format!("CloudFront GetDistribution {id}: {code} {msg}")),
            }
        })?;
    let d = out
        .distribution()
        .ok_or_else(|| Error::Usage(format!("distribution {id}: empty response")))?;
    let c = d
        .distribution_config()
        .ok_or_else(|| Error::Usage(format!("distribution {id}: no configuration")))?;
    let origins = c
        .origins()
        .map(|o| {
            o.items()
                .iter()
                .map(|o| OriginFacts {
                    id: o.id().to_string(),
                    domain: o.domain_name().to_string(),
                    path: o.origin_path().unwrap_or("").to_string(),
                    oac: o
                        .origin_access_control_id()
                        .filter(|s| !s.is_empty())
                        .map(str::to_string),
                    oai: o
                        .s3_origin_config()
                        .map(|s| s.origin_access_identity().to_string())
                        .filter(|s| !s.is_empty()),
                    s3_origin: o.s3_origin_config().is_some(),
                    custom_origin: o.custom_origin_config().is_some(),
                })
                .collect()
        })
        .unwrap_or_default();
    let mut behaviors = Vec::new();
    if let Some(b) = c.default_cache_behavior() {
        behaviors.push(BehaviorFacts {
            path_pattern: "*".into(),
            target_origin: b.target_origin_id().to_string(),
            viewer_protocol_policy: b.viewer_protocol_policy().as_str().to_string(),
            compress: b.compress().unwrap_or(false),
            functions: functions(&cf, b.function_associations()).await,
            response_headers_policy: headers_policy(&cf, b.response_headers_policy_id()).await,
        });
    }
    if let Some(cb) = c.cache_behaviors() {
        for b in cb.items() {
            behaviors.push(BehaviorFacts {
                path_pattern: b.path_pattern().to_string(),
                target_origin: b.target_origin_id().to_string(),
                viewer_protocol_policy: b.viewer_protocol_policy().as_str().to_string(),
                compress: b.compress().unwrap_or(false),
                functions: functions(&cf, b.function_associations()).await,
                response_headers_policy: headers_policy(&cf, b.response_headers_policy_id()).await,
            });
        }
    }
    let error_responses = c
        .custom_error_responses()
        .map(|e| {
            e.items()
                .iter()
                .map(|e| ErrorResponseFacts {
                    code: e.error_code(),
                    page: e.response_page_path().unwrap_or("").to_string(),
                    response_code: e.response_code().unwrap_or("").to_string(),
                })
                .collect()
        })
        .unwrap_or_default();
    Ok(DistributionFacts {
        id: id.to_string(),
        domain: d.domain_name().to_string(),
        origins,
        behaviors,
        price_class: c
            .price_class()
            .map(|p| p.as_str().to_string())
            .unwrap_or_default(),
        default_root_object: c.default_root_object().unwrap_or("").to_string(),
        error_responses,
    })
}

/// The functions associated with a behaviour; the LIVE comment of
/// cdnsync's own (what code they run).
async fn functions(
    cf: &crate::cdn::cloudfront::CloudFront,
    fa: Option<&aws_sdk_cloudfront::types::FunctionAssociations>,
) -> Vec<FunctionFacts> {
    let mut out = Vec::new();
    for a in fa
        .map(aws_sdk_cloudfront::types::FunctionAssociations::items)
        .unwrap_or_default()
    {
        let arn = a.function_arn().to_string();
        let name = arn.rsplit_once(":function/").map(|(_, n)| n.to_string());
        let live_comment = match name.filter(|n| n.starts_with("cdnsync-")) {
            Some(name) => cf
                .client()
                .describe_function()
                .name(name)
                .stage(aws_sdk_cloudfront::types::FunctionStage::Live)
                .send()
                .await
                .map(|o| {
                    o.function_summary()
                        .and_then(|s| s.function_config())
                        .map(|c| c.comment().to_string())
                })
                .map_err(|e| crate::store::s3::error_chain(&e)),
            None => Ok(None),
        };
        out.push(FunctionFacts {
            event: a.event_type().as_str().to_string(),
            arn,
            live_comment,
        });
    }
    out
}

/// CloudFront's managed SecurityHeadersPolicy (sends HSTS).
const MANAGED_SECURITY_HEADERS: &str = "67f7725c-6f97-4210-82d7-5512b31e9d03";

/// A behaviour's response headers policy and whether it sends HSTS.
async fn headers_policy(
    cf: &crate::cdn::cloudfront::CloudFront,
    id: Option<&str>,
) -> Option<HeadersPolicyFacts> {
    let id = id.filter(|i| !i.is_empty())?;
    let hsts = match cf
        .client()
        .get_response_headers_policy()
        .id(id)
        .send()
        .await
    {
        Ok(o) => Ok(Some(
            o.response_headers_policy()
                .and_then(|p| p.response_headers_policy_config())
                .and_then(|c| c.security_headers_config())
                .and_then(|s| s.strict_transport_security())
                .is_some(),
        )),
        Err(_) if id == MANAGED_SECURITY_HEADERS => Ok(Some(true)),
        Err(e) => Err(crate::store::s3::error_chain(&e)),
    };
    Some(HeadersPolicyFacts {
        id: id.to_string(),
        hsts,
    })
}

/// Gather and assess.
pub async fn run(config: &DoctorConfig, _ctx: &Context) -> Result<DoctorReport> {
    let (cfg, compress) = (&config.remote, config.compress);
    let Target::S3 { bucket, prefix } = &cfg.target else {
        return Err(Error::Usage(
            "doctor checks an s3:// target (a local directory has no bucket settings)".into(),
        ));
    };
    let store = crate::connect::s3_store(cfg, bucket).await?;
    store.check().await?;
    let facts = bucket_facts(store.client(), bucket).await;
    let mut dists = Vec::new();
    for id in &cfg.distribution_ids {
        dists.push(distribution_facts(cfg, id).await?);
    }
    let (sse, kms_key) = match &cfg.sse {
        Sse::Aes256 => ("AES256", None),
        Sse::Kms { key_id, .. } => ("aws:kms", key_id.clone()),
        Sse::None => ("none", None),
    };
    let want = Expectations {
        prefix: prefix.trim_matches('/').to_string(),
        compress,
        sse: sse.to_string(),
        kms_key,
    };
    // The live release, for the checks of what the edge must do for it.
    let mut findings = crate::doctor::assess_bucket(&facts, &want);
    let site = match crate::release::read_current(&store, prefix).await {
        Ok(r) => r.map(|r| crate::doctor::site::SiteFacts::of(&r, prefix)),
        Err(e) => {
            let denied = matches!(e, Error::Store(crate::store::StoreError::Denied { .. }));
            findings.push(crate::doctor::site::unreadable_release(
                &e.to_string(),
                denied,
            ));
            None
        }
    };
    for d in &dists {
        findings.extend(crate::doctor::assess_distribution(bucket, d, &want));
        if let Some(site) = &site {
            findings.extend(crate::doctor::site::assess_site(bucket, prefix, d, site));
        }
    }
    findings.sort_by_key(|f| std::cmp::Reverse(f.severity));
    let (warnings, failures) = crate::doctor::tally(&findings);
    Ok(DoctorReport {
        target: cfg.target.display(),
        bucket: facts,
        distributions: dists,
        findings,
        warnings,
        failures,
        distribution_ids: cfg.distribution_ids.clone(),
    })
}
