//! Where a command acts and how it reaches it: the one place the target's
//! settings (encryption, endpoint, region, CDNs, lock) are decided, shared by
//! every command.

use std::time::Duration;

use crate::cdn::http_purge::{PurgeMethod, PurgeOptions};
use crate::cli::{SseArg, TargetArgs};
use crate::error::{Error, Result};
use crate::store::Sse;
use crate::target::Target;

use super::{Loaded, duration_flag};

/// Settings of a target, as every command sees them.
#[derive(Debug, Clone)]
pub struct TargetConfig {
    pub target: Target,
    pub distribution_ids: Vec<String>,
    pub cdn_endpoint_url: Option<String>,
    pub max_invalidation_paths: usize,
    /// `--wait`: how long to wait for invalidations.
    pub cdn_wait: Option<Duration>,
    /// Reverse-proxy caches to purge, and how.
    pub purge_urls: Vec<String>,
    pub purge: PurgeOptions,
    pub sse: Sse,
    pub endpoint_url: Option<String>,
    pub region: Option<String>,
    pub allow_http: bool,
    pub json: bool,
    pub wait_lock: Option<Duration>,
    pub lock_ttl: Duration,
}

impl TargetConfig {
    /// How to reach the target's bucket (`bucket` from its `s3://` URL).
    pub fn s3_options(&self, bucket: &str) -> crate::store::s3::S3Options {
        crate::store::s3::S3Options {
            bucket: bucket.to_string(),
            endpoint_url: self.endpoint_url.clone(),
            ..Default::default()
        }
    }

    /// Layer the command line over the file over defaults, and validate.
    pub fn resolve(a: &TargetArgs, loaded: &Loaded) -> Result<TargetConfig> {
        let file = &loaded.file;
        let to = a.to.clone().or(file.to.clone()).ok_or_else(|| {
            Error::Usage("no target: pass --to s3://bucket[/prefix] or a directory (or set `to` in cdnsync.toml)".into())
        })?;
        let target = Target::parse(&to)?;
        let sse = resolve_sse(a, loaded)?;
        let endpoint_url = a.endpoint_url.clone().or(file.endpoint_url.clone());
        if let Some(e) = &endpoint_url {
            crate::endpoint::check_endpoint(e, a.allow_http)?;
        }
        let wait_lock = a
            .wait_lock
            .as_deref()
            .map(|v| duration_flag("--wait-lock", v))
            .transpose()?;
        let lock_ttl = match a.lock_ttl.as_deref() {
            Some(v) => duration_flag("--lock-ttl", v)?,
            None => Duration::from_secs(15 * 60),
        };
        let distribution_ids = distribution_ids(a, loaded, &target)?;
        let (purge_urls, purge) = purge(a, loaded)?;
        let cdn_wait = if a.wait {
            Some(match &a.wait_timeout {
                Some(t) => duration_flag("--wait-timeout", t)?,
                None => Duration::from_secs(600),
            })
        } else {
            None
        };
        Ok(TargetConfig {
            target,
            distribution_ids,
            cdn_endpoint_url: a.cdn_endpoint_url.clone(),
            max_invalidation_paths: a
                .max_invalidation_paths
                .or(file.max_invalidation_paths)
                .unwrap_or(15)
                .clamp(1, 3000),
            cdn_wait,
            purge_urls,
            purge,
            sse,
            endpoint_url,
            region: a.region.clone().or(file.region.clone()),
            allow_http: a.allow_http,
            json: a.json,
            wait_lock,
            lock_ttl,
        })
    }
}

/// `--sse` over the file's `sse` over AES256; a KMS key needs KMS.
fn resolve_sse(a: &TargetArgs, loaded: &Loaded) -> Result<Sse> {
    let file = &loaded.file;
    let kms_key = a.sse_kms_key_id.clone().or(file.sse_kms_key_id.clone());
    let sse = match a.sse.or(file.sse).unwrap_or(SseArg::Aes256) {
        SseArg::Aes256 => Sse::Aes256,
        SseArg::Kms => Sse::Kms {
            key_id: kms_key.clone(),
            bucket_key: file.sse_bucket_key.unwrap_or(true),
        },
        SseArg::None => Sse::None,
    };
    if kms_key.is_some() && !matches!(sse, Sse::Kms { .. }) {
        return Err(Error::Usage("--sse-kms-key-id needs --sse aws:kms".into()));
    }
    Ok(sse)
}

fn distribution_ids(a: &TargetArgs, loaded: &Loaded, target: &Target) -> Result<Vec<String>> {
    let ids: Vec<String> = if a.distribution_ids.is_empty() {
        loaded.file.distribution_ids.clone()
    } else {
        a.distribution_ids.clone()
    }
    .into_iter()
    .map(|d| d.trim().to_string())
    .filter(|d| !d.is_empty())
    .collect();
    if !ids.is_empty() && matches!(target, Target::Local { .. }) {
        return Err(Error::Usage(
            "--distribution-id needs an s3:// target (a local directory has no CDN)".into(),
        ));
    }
    if let Some(d) = ids
        .iter()
        .find(|d| !d.chars().all(|c| c.is_ascii_alphanumeric()))
    {
        return Err(Error::Usage(format!("invalid distribution id `{d}`")));
    }
    Ok(ids)
}

fn purge(a: &TargetArgs, loaded: &Loaded) -> Result<(Vec<String>, PurgeOptions)> {
    let file = &loaded.file;
    let urls: Vec<String> = if a.purge_urls.is_empty() {
        file.purge_urls.clone()
    } else {
        a.purge_urls.clone()
    }
    .into_iter()
    .map(|u| u.trim().to_string())
    .filter(|u| !u.is_empty())
    .collect();
    for u in &urls {
        crate::endpoint::purge_url(u, a.allow_http)?;
    }
    let concurrency = a.purge_concurrency.or(file.purge_concurrency).unwrap_or(8);
    if concurrency == 0 || concurrency > 256 {
        return Err(Error::Usage(format!(
            "purge concurrency must be between 1 and 256, got {concurrency}"
        )));
    }
    let options = PurgeOptions {
        method: a
            .purge_method
            .or(file.purge_method)
            .unwrap_or(PurgeMethod::Purge),
        host: a.purge_host.clone().or(file.purge_host.clone()),
        concurrency,
        attempts: a
            .purge_attempts
            .or(file.purge_attempts)
            .unwrap_or(3)
            .clamp(1, 10),
        ..Default::default()
    };
    Ok((urls, options))
}
