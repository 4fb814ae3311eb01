//! Reverse-proxy caches (Varnish, nginx, any cache that speaks PURGE or BAN):
//! the same changed entry paths cdnsync invalidates on CloudFront, purged
//! over HTTP(S) — PURGE per exact path, or BAN with an anchored path regex
//! (wildcards become prefix regexes). Retries transient failures; a failure
//! never rolls a release back, it makes the exit code say "purge incomplete".

use std::time::Duration;

use async_trait::async_trait;
use bytes::Bytes;
use futures::StreamExt;
use http_body_util::Empty;
use hyper_rustls::HttpsConnector;
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use serde::Serialize;

use super::{Cdn, CdnError, Invalidation, RetryHint, paths};

/// How paths are purged.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum PurgeMethod {
    /// `PURGE /path`: one request per exact path (Varnish `return (purge)`,
    /// nginx `proxy_cache_purge`).
    Purge,
    /// `BAN /path` with `X-Ban-Url: <regex>`: wildcards and query-string
    /// variants in one request each (Varnish `ban()`).
    Ban,
}

/// Settings of the http-purge backend.
#[derive(Debug, Clone)]
pub struct PurgeOptions {
    /// PURGE or BAN.
    pub method: PurgeMethod,
    /// `Host` header sent with each purge (the cache keys objects by it);
    /// default: the purge URL's host.
    pub host: Option<String>,
    /// Purge requests in flight.
    pub concurrency: usize,
    /// Attempts per path on connection errors and 5xx answers.
    pub attempts: u32,
    /// Per request.
    pub timeout: Duration,
}

impl Default for PurgeOptions {
    fn default() -> Self {
        PurgeOptions {
            method: PurgeMethod::Purge,
            host: None,
            concurrency: 8,
            attempts: 3,
            timeout: Duration::from_secs(10),
        }
    }
}

/// A reverse-proxy cache purged over HTTP (Varnish, nginx).
pub struct HttpPurge {
    base: url::Url,
    name: String,
    /// `Authorization` from the URL's `user:password@`, if any.
    auth: Option<String>,
    /// The target's key prefix: keys under it are served from `/` by the cache.
    prefix: String,
    opts: PurgeOptions,
    client: Client<HttpsConnector<HttpConnector>, Empty<Bytes>>,
    retry_base: Duration,
}

/// The header carrying the regex of a BAN.
pub const BAN_HEADER: &str = "x-ban-url";

/// An anchored regex for a purge path: `/a/` → `^/a/(\?.*)?$` (query
/// variants included), `/docs/*` → `^/docs/`.
pub fn ban_regex(path: &str) -> String {
    let (p, wildcard) = match path.strip_suffix('*') {
        Some(p) => (p, true),
        None => (path, false),
    };
    let mut r = String::from("^");
    for c in p.chars() {
        if "\\.+*?()[]{}|^$".contains(c) {
            r.push('\\');
        }
        r.push(c);
    }
    if !wildcard {
        r.push_str("(\\?.*)?$");
    }
    r
}

impl HttpPurge {
    /// `url`: `http(s)://cache:6081[/base]`, already checked by the caller
    /// (scheme, host, no query).
    pub fn new(url: &url::Url, prefix: &str, opts: PurgeOptions) -> Result<HttpPurge, CdnError> {
        let mut base = url.clone();
        // `user:password@` becomes HTTP basic authentication; the URL used
        // and shown carries none.
        let auth = (!base.username().is_empty() || base.password().is_some()).then(|| {
            use base64::Engine;
            let user = percent_encoding::percent_decode_str(base.username()).decode_utf8_lossy();
            let pass = base
                .password()
                .map(|p| {
                    percent_encoding::percent_decode_str(p)
                        .decode_utf8_lossy()
                        .into_owned()
                })
                .unwrap_or_default();
            format!(
                "Basic {}",
                base64::engine::general_purpose::STANDARD.encode(format!("{user}:{pass}"))
            )
        });
        let _ = base.set_username("");
        let _ = base.set_password(None);
        if let Some(h) = &opts.host
            && (h.is_empty() || h.contains(['/', ' ', '\r', '\n']))
        {
            return Err(CdnError::Setup(format!("invalid --purge-host `{h}`")));
        }
        let provider = rustls::crypto::aws_lc_rs::default_provider();
        let https = hyper_rustls::HttpsConnectorBuilder::new()
            .with_provider_and_native_roots(provider)
            .map_err(|e| CdnError::Setup(format!("cannot load the system's TLS roots: {e}")))?
            .https_or_http()
            .enable_http1()
            .build();
        let client = Client::builder(TokioExecutor::new())
            .pool_max_idle_per_host(opts.concurrency.max(1))
            .build(https);
        Ok(HttpPurge {
            name: base.as_str().trim_end_matches('/').to_string(),
            auth,
            base,
            prefix: prefix.trim_matches('/').to_string(),
            opts,
            client,
            retry_base: Duration::from_millis(200),
        })
    }

    /// The first retry delay (tests shorten it).
    pub fn with_retry_base(mut self, d: Duration) -> Self {
        self.retry_base = d;
        self
    }

    fn url_for(&self, path: &str) -> String {
        let base = self.base.as_str().trim_end_matches('/');
        let path = path.strip_suffix('*').unwrap_or(path);
        format!("{base}{path}")
    }

    /// One path, once; `Ok(status)` when the cache accepted it, else the
    /// failure and whether trying again may help (connection errors,
    /// timeouts, 5xx, 429).
    async fn purge_one(&self, path: &str) -> Result<u16, (String, bool)> {
        let method = match self.opts.method {
            PurgeMethod::Purge => "PURGE",
            PurgeMethod::Ban => "BAN",
        };
        let mut b = hyper::Request::builder()
            .method(method)
            .uri(self.url_for(path))
            .header("user-agent", concat!("cdnsync/", env!("CARGO_PKG_VERSION")));
        if let Some(h) = &self.opts.host {
            b = b.header("host", h);
        }
        if let Some(a) = &self.auth {
            b = b.header("authorization", a);
        }
        if self.opts.method == PurgeMethod::Ban {
            b = b.header(BAN_HEADER, ban_regex(path));
        }
        let req = b
            .body(Empty::<Bytes>::new())
            .map_err(|e| (format!("{method} {path}: {e}"), false))?;
        match tokio::time::timeout(self.opts.timeout, self.client.request(req)).await {
            Err(_) => Err((
                format!("{method} {path}: timed out after {:?}", self.opts.timeout),
                true,
            )),
            Ok(Err(e)) => {
                let chain: Vec<String> =
                    std::iter::successors(Some(&e as &dyn std::error::Error), |e| e.source())
                        .map(ToString::to_string)
                        .collect();
                Err((format!("{method} {path}: {}", chain.join(": ")), true))
            }
            Ok(Ok(resp)) => {
                let s = resp.status().as_u16();
                // 404: "not in cache" (nginx) — nothing to purge is fine.
                if resp.status().is_success() || s == 404 {
                    return Ok(s);
                }
                // Refused (405, 403…): retrying will not help.
                let again = resp.status().is_server_error() || s == 429;
                Err((format!("{method} {path}: HTTP {s}"), again))
            }
        }
    }
}

#[async_trait]
impl Cdn for HttpPurge {
    fn name(&self) -> &str {
        &self.name
    }

    async fn origin_path(&self, _bucket: &str) -> Result<String, CdnError> {
        Ok(self.prefix.clone())
    }

    fn retry_hint(&self) -> RetryHint {
        RetryHint {
            attempts: self.opts.attempts,
            base: self.retry_base,
        }
    }

    fn batch(&self, keys: &[String], origin_path: &str, max_paths: usize) -> Vec<String> {
        match self.opts.method {
            // PURGE has no wildcards: every exact path (and directory URL).
            PurgeMethod::Purge => paths::url_paths(keys, origin_path)
                .iter()
                .map(|p| paths::encode_path(p))
                .collect(),
            PurgeMethod::Ban => paths::batch(keys, origin_path, max_paths),
        }
    }

    async fn invalidate(
        &self,
        paths: &[String],
        caller_reference: &str,
    ) -> Result<Invalidation, CdnError> {
        let futs = paths.iter().cloned().map(|p| async move {
            let r = self.purge_one(&p).await;
            (p, r)
        });
        let results: Vec<(String, Result<u16, (String, bool)>)> = futures::stream::iter(futs)
            .buffer_unordered(self.opts.concurrency.max(1))
            .collect()
            .await;
        let failed: Vec<&(String, bool)> = results
            .iter()
            .filter_map(|(_, r)| r.as_ref().err())
            .collect();
        if let Some((first, _)) = failed.first() {
            let msg = format!(
                "{} of {} purges failed (first: {first})",
                failed.len(),
                paths.len()
            );
            // Purges are idempotent: all of them may be sent again.
            return Err(if failed.iter().any(|(_, again)| *again) {
                CdnError::Transient(self.name.clone(), msg)
            } else {
                CdnError::Other(self.name.clone(), msg)
            });
        }
        Ok(Invalidation {
            distribution: self.name.clone(),
            id: format!(
                "{}-{}",
                match self.opts.method {
                    PurgeMethod::Purge => "purge",
                    PurgeMethod::Ban => "ban",
                },
                &caller_reference[caller_reference.len().saturating_sub(12)..]
            ),
            paths: paths.to_vec(),
            caller_reference: caller_reference.to_string(),
            status: "Purged".into(),
        })
    }

    async fn wait(&self, _id: &str, _timeout: Duration) -> Result<String, CdnError> {
        // A purge takes effect when the cache answers it.
        Ok("Purged".into())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ban_regexes() {
        assert_eq!(ban_regex("/about/"), "^/about/(\\?.*)?$");
        assert_eq!(ban_regex("/docs/*"), "^/docs/");
        assert_eq!(
            ban_regex("/a.b+c(1).html"),
            "^/a\\.b\\+c\\(1\\)\\.html(\\?.*)?$"
        );
        assert_eq!(ban_regex("/*"), "^/");
    }

    fn url(s: &str) -> url::Url {
        url::Url::parse(s).unwrap()
    }

    #[test]
    fn urls_and_validation() {
        let p = HttpPurge::new(
            &url("http://127.0.0.1:6081/"),
            "site",
            PurgeOptions::default(),
        )
        .unwrap();
        assert_eq!(p.url_for("/about/"), "http://127.0.0.1:6081/about/");
        assert_eq!(p.url_for("/docs/*"), "http://127.0.0.1:6081/docs/");
        assert_eq!(p.name(), "http://127.0.0.1:6081");
        let keys = vec![
            "site/about/index.html".to_string(),
            "site/a b.html".to_string(),
        ];
        assert_eq!(
            p.batch(&keys, "site", 15),
            ["/a%20b.html", "/about", "/about/", "/about/index.html"]
        );
        // Credentials become basic authentication; the name carries none.
        let p = HttpPurge::new(
            &url("http://u:p@127.0.0.1:6081"),
            "",
            PurgeOptions::default(),
        )
        .unwrap();
        assert_eq!(p.name(), "http://127.0.0.1:6081");
        assert!(p.auth.is_some());
        let bad_host = PurgeOptions {
            host: Some("a b".into()),
            ..Default::default()
        };
        assert!(HttpPurge::new(&url("http://127.0.0.1:1"), "", bad_host).is_err());
    }

    #[tokio::test]
    /// A cache that does not answer fails every purge, as a transient
    /// failure: the driver (`invalidate::all`) retries the batch.
    async fn unreachable_cache_is_a_transient_failure() {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port(); // closed again: nothing listens
        let p = HttpPurge::new(
            &url(&format!("http://127.0.0.1:{port}")),
            "",
            PurgeOptions::default(),
        )
        .unwrap()
        .with_retry_base(Duration::from_millis(1));
        let e = p
            .invalidate(&["/a".into(), "/b".into()], "ref")
            .await
            .unwrap_err();
        assert!(e.to_string().contains("2 of 2 purges failed"), "{e}");
        assert!(e.is_transient(), "{e:?}");
    }
}
