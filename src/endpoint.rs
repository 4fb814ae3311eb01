//! Which endpoints cdnsync talks to: plain HTTP only on this machine (or
//! when explicitly allowed), URLs shown without their credentials. Checked
//! when settings are resolved and again on the endpoint a client really uses.

use crate::error::{Error, Result};
use crate::redact::redact_urls;

/// Whether an endpoint URL points at this machine: `localhost`, 127/8,
/// `::1` or an IPv4-mapped 127/8 address; nothing else.
pub fn is_loopback_url(u: &url::Url) -> bool {
    match u.host() {
        Some(url::Host::Domain(d)) => d.eq_ignore_ascii_case("localhost"),
        Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
        Some(url::Host::Ipv6(ip)) => {
            ip.is_loopback() || ip.to_ipv4_mapped().is_some_and(|v4| v4.is_loopback())
        }
        None => false,
    }
}

/// Refuse plain-HTTP endpoints off this machine unless explicitly allowed.
pub fn check_endpoint(endpoint: &str, allow_http: bool) -> Result<()> {
    let shown = redact_urls(endpoint);
    let endpoint = shown.as_str();
    let u = url::Url::parse(endpoint)
        .map_err(|e| Error::Usage(format!("invalid endpoint URL `{endpoint}`: {e}")))?;
    match u.scheme() {
        "https" => Ok(()),
        "http" if is_loopback_url(&u) || allow_http => Ok(()),
        "http" => Err(Error::Usage(format!(
            "refusing plain-HTTP endpoint `{endpoint}`: credentials and content would cross the network unencrypted; use https:// or pass --allow-http"
        ))),
        other => Err(Error::Usage(format!(
            "invalid endpoint URL `{endpoint}`: scheme `{other}` is not http or https"
        ))),
    }
}

/// A `--purge-url`: `http(s)://cache:6081[/base]`, checked like any
/// endpoint, with a host and no query or fragment.
pub fn purge_url(url: &str, allow_http: bool) -> Result<url::Url> {
    let shown = redact_urls(url);
    check_endpoint(url, allow_http).map_err(|e| Error::Usage(format!("--purge-url: {e}")))?;
    let base = url::Url::parse(url)
        .map_err(|e| Error::Usage(format!("invalid --purge-url `{shown}`: {e}")))?;
    if base.host_str().is_none() || base.query().is_some() || base.fragment().is_some() {
        return Err(Error::Usage(format!(
            "invalid --purge-url `{shown}`: give scheme, host and port (and optionally a base path), no query"
        )));
    }
    Ok(base)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loopback_is_localhost_127_8_and_ipv6_loopback_only() {
        for (u, want) in [
            ("http://localhost:9000", true),
            ("http://127.0.0.1:9000", true),
            ("http://127.1.2.3", true),
            ("http://[::1]:9000", true),
            ("http://[::ffff:127.0.0.1]:9000", true),
            ("http://[::ffff:10.0.0.1]:9000", false),
            ("http://10.0.0.1", false),
            ("http://localhost.example.com", false),
        ] {
            assert_eq!(is_loopback_url(&url::Url::parse(u).unwrap()), want, "{u}");
        }
    }

    #[test]
    fn plain_http_is_refused_off_this_machine() {
        let e = check_endpoint("http://minio.internal:9000", false).unwrap_err();
        assert!(e.to_string().contains("--allow-http"), "{e}");
        assert!(check_endpoint("http://minio.internal:9000", true).is_ok());
        assert!(check_endpoint("http://127.0.0.1:9000", false).is_ok());
        assert!(check_endpoint("https://s3.example.com", false).is_ok());
        assert!(check_endpoint("ftp://x", true).is_err());
    }

    #[test]
    fn purge_urls_need_a_host_and_no_query_and_never_show_credentials() {
        assert!(purge_url("http://127.0.0.1:1/?x", false).is_err());
        let e = purge_url("http://u:secret@cache.example.com:6081", false).unwrap_err();
        assert!(!e.to_string().contains("secret"), "{e}");
        assert!(purge_url("http://u:secret@127.0.0.1:6081/base", false).is_ok());
        let e = purge_url("http://cache.internal:6081", false).unwrap_err();
        assert!(e.to_string().contains("--allow-http"), "{e}");
        assert!(purge_url("http://cache.internal:6081", true).is_ok());
        assert!(purge_url("https://cache.example.com", false).is_ok());
    }
}
