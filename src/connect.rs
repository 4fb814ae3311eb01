//! The network boundary: open what a target needs — the store, the
//! CloudFront and cache-purge clients — from its resolved settings. Every
//! endpoint is decided and checked here (plain HTTP only on this machine or
//! when allowed), credentials are resolved early into one clear error, and
//! the store and CDN backends receive only checked values.

use std::sync::Arc;
use std::time::Duration;

use aws_config::BehaviorVersion;
use aws_config::retry::RetryConfig;
use aws_config::timeout::TimeoutConfig;

use crate::cdn::{Cdn, CdnOptions, cloudfront::CloudFront, http_purge::HttpPurge};
use crate::config::TargetConfig;
use crate::endpoint::{check_endpoint, purge_url};
use crate::error::{Error, Result};
use crate::redact::redact_urls;
use crate::store::Store;
use crate::store::local::LocalStore;
use crate::store::s3::{S3Options, S3Store};
use crate::target::Target;

/// The endpoint a client for `service` (`"S3"`, `"CloudFront"`) built from
/// `sdk` will use, decided as the SDK decides it: an endpoint set in code,
/// else the service's own (`AWS_ENDPOINT_URL_S3`, a profile's `[services]`
/// section), else the general one (`AWS_ENDPOINT_URL`, `endpoint_url`).
pub fn effective_endpoint(sdk: &aws_config::SdkConfig, service: &str) -> Option<String> {
    if sdk.get_origin("endpoint_url").is_client_config() {
        return sdk.endpoint_url().map(str::to_string);
    }
    let key = aws_types::service_config::ServiceConfigKey::builder()
        .service_id(service)
        .env("AWS_ENDPOINT_URL")
        .profile("endpoint_url")
        .build()
        .ok()?;
    sdk.service_config()
        .and_then(|c| c.load_config(key))
        .or_else(|| sdk.endpoint_url().map(str::to_string))
}

/// Open the target's store; returns it with the key prefix.
pub async fn open_store(cfg: &TargetConfig) -> Result<(Arc<dyn Store>, String)> {
    match &cfg.target {
        Target::Local { path } => Ok((Arc::new(LocalStore::new(path.clone())), String::new())),
        Target::S3 { bucket, prefix } => {
            Ok((Arc::new(s3_store(cfg, bucket).await?), prefix.clone()))
        }
    }
}

/// The S3 store of `bucket`: the AWS chain (env, profile, SSO, web
/// identity, IMDS) under the target's region and endpoint, the endpoint the
/// client will really use checked, credentials resolved now.
pub async fn s3_store(cfg: &TargetConfig, bucket: &str) -> Result<S3Store> {
    s3_store_with(
        &cfg.s3_options(bucket),
        cfg.region.as_deref(),
        cfg.allow_http,
    )
    .await
}

/// [`s3_store`] from explicit options (tests, benchmarks).
pub async fn s3_store_with(
    opts: &S3Options,
    region: Option<&str>,
    allow_http: bool,
) -> Result<S3Store> {
    let mut loader = aws_config::defaults(BehaviorVersion::latest())
        .retry_config(
            RetryConfig::standard()
                .with_max_attempts(crate::retry::SDK_ATTEMPTS)
                .with_initial_backoff(Duration::from_millis(200)),
        )
        .timeout_config(
            TimeoutConfig::builder()
                .connect_timeout(Duration::from_secs(10))
                .read_timeout(Duration::from_secs(120))
                .build(),
        );
    if let Some(r) = region {
        loader = loader.region(aws_config::Region::new(r.to_string()));
    }
    if let Some(e) = &opts.endpoint_url {
        check_endpoint(e, allow_http)?;
        loader = loader.endpoint_url(e.clone());
    }
    let sdk = loader.load().await;
    // The endpoint the client will really use (service-specific ones
    // included), checked, then set explicitly so nothing else decides.
    let endpoint = effective_endpoint(&sdk, "S3");
    if let Some(e) = &endpoint {
        check_endpoint(e, allow_http)?;
    }
    if sdk.region().is_none() && endpoint.is_none() {
        return Err(Error::Usage(
            "no AWS region configured: pass --region, set AWS_REGION, or set `region` in the profile".into(),
        ));
    }
    check_credentials(&sdk).await?;
    let opts = S3Options {
        endpoint_url: endpoint.clone(),
        endpoint_shown: endpoint.as_deref().map(redact_urls),
        ..opts.clone()
    };
    Ok(S3Store::new(&sdk, opts))
}

/// Resolve credentials now, so a missing or broken chain is one clear
/// error instead of a failure on the first request.
async fn check_credentials(sdk: &aws_config::SdkConfig) -> Result<()> {
    use aws_credential_types::provider::ProvideCredentials;
    let Some(p) = sdk.credentials_provider() else {
        return Err(Error::Credentials(
            "no credentials provider configured".into(),
        ));
    };
    p.provide_credentials().await.map(|_| ()).map_err(|e| {
        Error::Credentials(format!(
            "{}; set AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY, AWS_PROFILE, or use SSO / web identity",
            crate::store::s3::error_chain(&e)
        ))
    })
}

/// A CloudFront client for distribution `id`: `endpoint_url` (an emulator)
/// else the AWS chain (`AWS_ENDPOINT_URL_CLOUDFRONT`…), checked.
pub async fn cloudfront(
    id: &str,
    endpoint_url: Option<&str>,
    allow_http: bool,
) -> Result<CloudFront> {
    let mut loader = aws_config::defaults(BehaviorVersion::latest())
        .region(aws_config::Region::new("us-east-1"));
    if let Some(e) = endpoint_url {
        check_endpoint(e, allow_http)?;
        loader = loader.endpoint_url(e);
    }
    let sdk = loader.load().await;
    let endpoint = effective_endpoint(&sdk, "CloudFront");
    if let Some(e) = &endpoint {
        check_endpoint(e, allow_http)?;
    }
    Ok(CloudFront::new(&sdk, id, endpoint))
}

/// The CDN settings of a target, connecting each distribution and cache;
/// `None` without any.
pub async fn cdn_options(cfg: &TargetConfig) -> Result<Option<CdnOptions>> {
    let (bucket, prefix) = match &cfg.target {
        Target::S3 { bucket, prefix } => (bucket.clone(), prefix.clone()),
        Target::Local { .. } => (String::new(), String::new()),
    };
    if cfg.distribution_ids.is_empty() && cfg.purge_urls.is_empty() {
        return Ok(None);
    }
    let mut cdns: Vec<Arc<dyn Cdn>> = Vec::new();
    for id in &cfg.distribution_ids {
        let cf = cloudfront(id, cfg.cdn_endpoint_url.as_deref(), cfg.allow_http).await?;
        // An emulator answers at once; the real service takes minutes.
        let poll = if cfg.cdn_endpoint_url.is_some() {
            200
        } else {
            5000
        };
        cdns.push(Arc::new(cf.with_poll(Duration::from_millis(poll))));
    }
    for url in &cfg.purge_urls {
        let u = purge_url(url, cfg.allow_http)?;
        let p = HttpPurge::new(&u, &prefix, cfg.purge.clone())
            .map_err(|e| Error::Usage(redact_urls(&e.to_string())))?;
        cdns.push(Arc::new(p));
    }
    Ok(Some(CdnOptions {
        cdns,
        bucket,
        max_paths: cfg.max_invalidation_paths,
        wait: cfg.cdn_wait,
    }))
}
