//! `cdnsync.toml` as written: typed (enums for named choices, parsed
//! durations), unknown keys rejected, errors with line and column. Read once
//! per run; deciding what a setting means is the resolvers' job.

use std::path::Path;
use std::time::Duration;

use serde::Deserialize;

use crate::cdn::http_purge::PurgeMethod;
use crate::cli::{CompressArg, SseArg};
use crate::error::{Error, Result};
use crate::rules::RuleSpec;

/// `cdnsync.toml`, as written. Unknown keys are errors.
#[derive(Debug, Default, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct FileConfig {
    pub to: Option<String>,
    pub region: Option<String>,
    pub endpoint_url: Option<String>,
    pub concurrency: Option<usize>,
    /// `aes256`, `aws:kms` (or `kms`) or `none`, any case.
    #[serde(default, deserialize_with = "choice")]
    pub sse: Option<SseArg>,
    pub sse_kms_key_id: Option<String>,
    pub sse_bucket_key: Option<bool>,
    pub max_delete: Option<usize>,
    /// `auto`, `gzip` or `none`.
    #[serde(default, deserialize_with = "choice")]
    pub compress: Option<CompressArg>,
    /// Content-addressed asset names and reference rewriting (default true).
    pub fingerprint: Option<bool>,
    /// Also publish each renamed asset under its original path (default true).
    pub original_copies: Option<bool>,
    /// Missing references are errors (default false).
    pub strict: Option<bool>,
    /// URL path the site is served under (default `/`).
    pub base_path: Option<String>,
    /// Hex characters of the hash in asset names (default 12).
    pub hash_length: Option<usize>,
    /// CloudFront distributions to invalidate.
    #[serde(default)]
    pub distribution_ids: Vec<String>,
    pub max_invalidation_paths: Option<usize>,
    /// Reverse-proxy caches to purge (http-purge backend).
    #[serde(default)]
    pub purge_urls: Vec<String>,
    /// `purge` or `ban`.
    #[serde(default, deserialize_with = "choice")]
    pub purge_method: Option<PurgeMethod>,
    pub purge_host: Option<String>,
    pub purge_concurrency: Option<usize>,
    pub purge_attempts: Option<u32>,
    /// Releases whose objects gc always keeps (default 5).
    pub keep: Option<usize>,
    /// Grace period of unreferenced objects, e.g. "7d" (default 7d).
    #[serde(default, deserialize_with = "duration")]
    pub grace: Option<Duration>,
    #[serde(default)]
    pub cache_control: CacheControlConfig,
    #[serde(default)]
    pub rules: Vec<RuleSpec>,
    /// Edge routing (directory index, trailing slash, clean URLs, SPA, 404).
    #[serde(default)]
    pub routing: RoutingFileConfig,
    /// Redirects, after the site's `_redirects`.
    #[serde(default)]
    pub redirects: Vec<RedirectSpec>,
    /// Response headers, after the site's `_headers`.
    #[serde(default)]
    pub headers: Vec<HeadersSpec>,
}

/// `[routing]`.
#[derive(Debug, Default, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct RoutingFileConfig {
    /// Routing on (default true).
    pub enabled: Option<bool>,
    /// `add`, `remove` or `keep`.
    #[serde(default, deserialize_with = "choice")]
    pub trailing_slash: Option<crate::routing::TrailingSlash>,
    pub clean_urls: Option<bool>,
    /// Path of the single-page app's entry (`index.html`).
    pub spa: Option<String>,
    /// Path of the 404 page (default `404.html` when the site has one;
    /// `""` for none).
    pub not_found: Option<String>,
}

/// `[[redirects]]`.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct RedirectSpec {
    pub from: String,
    pub to: String,
    /// Default 301.
    pub status: Option<u16>,
    #[serde(default)]
    pub force: bool,
}

/// `[[headers]]` (Netlify's shape: `for` and `[headers.values]`).
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct HeadersSpec {
    #[serde(rename = "for")]
    pub path: String,
    pub values: std::collections::BTreeMap<String, String>,
}

#[derive(Debug, Default, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct CacheControlConfig {
    /// Entry files (pages, robots.txt…).
    pub entry: Option<String>,
    /// Files whose names carry a content hash.
    pub immutable: Option<String>,
    /// Everything else.
    pub default: Option<String>,
}

pub const DEFAULT_CONFIG: &str = "cdnsync.toml";

/// A named choice, spelled as on the command line (any case, same aliases):
/// one parser for both, so a value means the same everywhere.
fn choice<'de, D, T>(d: D) -> std::result::Result<Option<T>, D::Error>
where
    D: serde::Deserializer<'de>,
    T: clap::ValueEnum,
{
    let s = String::deserialize(d)?;
    T::from_str(&s, true).map(Some).map_err(|_| {
        let names: Vec<String> = T::value_variants()
            .iter()
            .filter_map(clap::ValueEnum::to_possible_value)
            .map(|v| v.get_name().to_string())
            .collect();
        serde::de::Error::custom(format!("`{s}` is not one of {}", names.join(", ")))
    })
}

fn duration<'de, D: serde::Deserializer<'de>>(
    d: D,
) -> std::result::Result<Option<Duration>, D::Error> {
    let s = String::deserialize(d)?;
    super::parse_duration(&s)
        .map(Some)
        .map_err(serde::de::Error::custom)
}

/// Read and parse a config file; errors carry line and column.
pub fn load_file(path: &Path) -> Result<FileConfig> {
    let text = std::fs::read_to_string(path).map_err(|e| Error::Config {
        path: path.to_path_buf(),
        message: format!("cannot read: {e}"),
    })?;
    parse_file(path, &text)
}

pub fn parse_file(path: &Path, text: &str) -> Result<FileConfig> {
    toml::from_str(text).map_err(|e: toml::de::Error| {
        let (line, column) = e.span().map(|s| line_col(text, s.start)).unwrap_or((1, 1));
        let mut message = e.message().trim().replace('\n', " ");
        // A bad value: name its setting (`sse`), as the message alone does not.
        if let Some(key) = e.span().and_then(|s| key_before(text, s.start))
            && !message.contains(&format!("`{key}`"))
        {
            message = format!("`{key}`: {message}");
        }
        Error::ConfigSyntax {
            path: path.to_path_buf(),
            line,
            column,
            message,
        }
    })
}

/// The key of `key = value` when `offset` is inside the value.
fn key_before(text: &str, offset: usize) -> Option<&str> {
    let start = text.get(..offset)?.rfind('\n').map_or(0, |i| i + 1);
    let (key, _) = text[start..offset].split_once('=')?;
    let key = key.trim().trim_matches('"');
    (!key.is_empty()
        && key
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '.'))
    .then_some(key)
}

fn line_col(text: &str, offset: usize) -> (usize, usize) {
    let before = &text[..offset.min(text.len())];
    let line = before.matches('\n').count() + 1;
    let column = before
        .rsplit('\n')
        .next()
        .map(|l| l.chars().count())
        .unwrap_or(0)
        + 1;
    (line, column)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_a_full_file() {
        let f = parse_file(
            Path::new("c.toml"),
            r#"
to = "s3://bucket/site"
region = "eu-west-1"
concurrency = 8
sse = "aws:kms"
sse_kms_key_id = "alias/site"
max_delete = 10
compress = "none"

[cache_control]
default = "public, max-age=60"

[[rules]]
glob = "downloads/**"
content_disposition = "attachment"
cache_control = "public, max-age=3600"

[[rules]]
glob = ".well-known/*.pem"
include = true
"#,
        )
        .unwrap();
        assert_eq!(f.to.as_deref(), Some("s3://bucket/site"));
        assert_eq!(f.rules.len(), 2);
        assert_eq!(
            f.cache_control.default.as_deref(),
            Some("public, max-age=60")
        );
    }

    #[test]
    fn unknown_keys_and_syntax_errors_have_line_and_column() {
        let e = parse_file(Path::new("c.toml"), "to = \"s3://b\"\nconcurency = 3\n").unwrap_err();
        let s = e.to_string();
        assert!(s.starts_with("c.toml:2:1: "), "{s}");
        assert!(s.contains("concurency"), "{s}");
        let e =
            parse_file(Path::new("c.toml"), "[[rules]]\nglob = \"x\"\ncolour = 1\n").unwrap_err();
        assert!(e.to_string().starts_with("c.toml:3:1: "), "{e}");
        let e = parse_file(Path::new("c.toml"), "to = \n").unwrap_err();
        assert!(e.to_string().starts_with("c.toml:1:"), "{e}");
        assert!(matches!(e, Error::ConfigSyntax { .. }));
    }

    /// Named choices are read as on the command line: any case, the same
    /// aliases; anything else is an error naming the place and the choices.
    #[test]
    fn choices_are_parsed_like_the_command_line() {
        for (text, want) in [
            ("aes256", SseArg::Aes256),
            ("AES256", SseArg::Aes256),
            ("aws:kms", SseArg::Kms),
            ("KMS", SseArg::Kms),
            ("kms", SseArg::Kms),
            ("None", SseArg::None),
        ] {
            let f = parse_file(Path::new("c.toml"), &format!("sse = \"{text}\"\n")).unwrap();
            assert_eq!(f.sse, Some(want), "{text}");
        }
        let e = parse_file(Path::new("c.toml"), "sse = \"aes265\"\n").unwrap_err();
        let s = e.to_string();
        assert!(s.starts_with("c.toml:1:7: "), "{s}");
        assert!(
            s.contains("`sse`: `aes265` is not one of aes256, aws:kms, none"),
            "{s}"
        );
        let f = parse_file(
            Path::new("c.toml"),
            "compress = \"GZIP\"\npurge_method = \"ban\"\ngrace = \"1h 30m\"\n",
        )
        .unwrap();
        assert_eq!(f.compress, Some(CompressArg::Gzip));
        assert_eq!(f.purge_method, Some(PurgeMethod::Ban));
        assert_eq!(f.grace, Some(Duration::from_secs(5400)));
        assert!(parse_file(Path::new("c.toml"), "grace = \"soon\"\n").is_err());
    }
}

#[cfg(test)]
mod docs_tests {
    use super::*;
    use crate::rules::{Defaults, Rules};

    /// The complete example in docs/config.md parses, sets every key, and
    /// every key has its own section: the reference cannot drift from the code.
    #[test]
    fn docs_config_md_documents_every_key() {
        let doc = include_str!("../../docs/config.md");
        let start = doc.find("```toml\n").expect("example block") + 8;
        let end = start + doc[start..].find("```").unwrap();
        let cfg = parse_file(Path::new("docs/config.md"), &doc[start..end])
            .unwrap_or_else(|e| panic!("the example does not parse: {e}"));
        // Destructured: a new key fails to compile here until it is documented.
        let FileConfig {
            to,
            region,
            endpoint_url,
            concurrency,
            sse,
            sse_kms_key_id,
            sse_bucket_key,
            max_delete,
            compress,
            fingerprint,
            original_copies,
            strict,
            base_path,
            hash_length,
            distribution_ids,
            max_invalidation_paths,
            purge_urls,
            purge_method,
            purge_host,
            purge_concurrency,
            purge_attempts,
            keep,
            grace,
            cache_control,
            rules,
            routing,
            redirects,
            headers,
        } = cfg;
        let set = [
            ("to", to.is_some()),
            ("region", region.is_some()),
            ("endpoint_url", endpoint_url.is_some()),
            ("concurrency", concurrency.is_some()),
            ("sse", sse.is_some()),
            ("sse_kms_key_id", sse_kms_key_id.is_some()),
            ("sse_bucket_key", sse_bucket_key.is_some()),
            ("max_delete", max_delete.is_some()),
            ("compress", compress.is_some()),
            ("fingerprint", fingerprint.is_some()),
            ("original_copies", original_copies.is_some()),
            ("strict", strict.is_some()),
            ("base_path", base_path.is_some()),
            ("hash_length", hash_length.is_some()),
            ("distribution_ids", !distribution_ids.is_empty()),
            ("max_invalidation_paths", max_invalidation_paths.is_some()),
            ("purge_urls", !purge_urls.is_empty()),
            ("purge_method", purge_method.is_some()),
            ("purge_host", purge_host.is_some()),
            ("purge_concurrency", purge_concurrency.is_some()),
            ("purge_attempts", purge_attempts.is_some()),
            ("keep", keep.is_some()),
            ("grace", grace.is_some()),
        ];
        for (key, present) in set {
            assert!(
                present,
                "the example in docs/config.md does not set `{key}`"
            );
            assert!(
                doc.contains(&format!("### `{key}`")),
                "docs/config.md has no section for `{key}`"
            );
        }
        let CacheControlConfig {
            entry,
            immutable,
            default,
        } = cache_control;
        assert!(entry.is_some() && immutable.is_some() && default.is_some());
        for key in ["entry", "immutable", "default"] {
            assert!(
                doc.contains(&format!("| `{key}` |")),
                "[cache_control] {key}"
            );
        }
        let r = &rules;
        assert!(r.iter().any(|r| r.include == Some(true)));
        assert!(r.iter().any(|r| r.include == Some(false)));
        assert!(r.iter().any(|r| r.class.is_some()));
        assert!(r.iter().any(|r| r.cache_control.is_some()));
        assert!(r.iter().any(|r| r.content_type.is_some()));
        assert!(r.iter().any(|r| r.content_disposition.is_some()));
        assert!(r.iter().any(|r| r.compress.is_some()));
        for key in [
            "glob",
            "include",
            "class",
            "cache_control",
            "content_type",
            "content_disposition",
            "compress",
        ] {
            assert!(doc.contains(&format!("| `{key}` |")), "[[rules]] {key}");
        }
        // And the rules themselves are valid.
        Rules::new(&rules, Defaults::default()).unwrap();
        let RoutingFileConfig {
            enabled,
            trailing_slash,
            clean_urls,
            spa,
            not_found,
        } = routing;
        assert!(enabled.is_some() && trailing_slash.is_some() && clean_urls.is_some());
        assert!(spa.is_some() && not_found.is_some());
        for key in [
            "enabled",
            "trailing_slash",
            "clean_urls",
            "spa",
            "not_found",
        ] {
            assert!(doc.contains(&format!("| `{key}` |")), "[routing] {key}");
        }
        assert!(!redirects.is_empty() && !headers.is_empty());
        for key in ["from", "to", "status", "force", "for", "values"] {
            assert!(
                doc.contains(&format!("| `{key}` |")),
                "redirects/headers {key}"
            );
        }
    }
}
