//! Parses the publish TARGET: `s3://bucket[/prefix]`, `file:///abs/path` or a
//! plain local path, into a validated [`Target`].

use std::path::{Path, PathBuf};

use serde::Serialize;

use crate::error::{Error, Result};

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", rename_all = "lowercase")]
pub enum Target {
    S3 { bucket: String, prefix: String },
    Local { path: PathBuf },
}

impl Target {
    pub fn parse(s: &str) -> Result<Target> {
        let bad = |reason: &str| Error::InvalidTarget {
            target: s.to_string(),
            reason: reason.to_string(),
        };
        if s.trim().is_empty() {
            return Err(bad("empty"));
        }
        if let Some(rest) = s.strip_prefix("s3://") {
            let (bucket, prefix) = rest.split_once('/').unwrap_or((rest, ""));
            validate_bucket(bucket).map_err(|r| bad(&r))?;
            let prefix = normalize_prefix(prefix).map_err(|r| bad(&r))?;
            return Ok(Target::S3 {
                bucket: bucket.to_string(),
                prefix,
            });
        }
        if let Some(rest) = s.strip_prefix("file://") {
            let u = url::Url::parse(s).map_err(|e| bad(&e.to_string()))?;
            if !rest.starts_with('/') {
                return Err(bad(
                    "a file:// target needs an absolute path (file:///abs/path)",
                ));
            }
            let path = u.to_file_path().map_err(|_| bad("not a local file path"))?;
            return Ok(Target::Local { path });
        }
        if let Some((scheme, _)) = s.split_once("://") {
            return Err(bad(&format!(
                "unsupported scheme `{scheme}://`; use s3://bucket[/prefix], file:///path or a directory path"
            )));
        }
        Ok(Target::Local {
            path: Path::new(s).to_path_buf(),
        })
    }

    /// The display form, e.g. `s3://bucket/prefix` or the directory path.
    pub fn display(&self) -> String {
        match self {
            Target::S3 { bucket, prefix } if prefix.is_empty() => format!("s3://{bucket}"),
            Target::S3 { bucket, prefix } => format!("s3://{bucket}/{prefix}"),
            Target::Local { path } => path.display().to_string(),
        }
    }

    /// A URL for the target's root: `s3://bucket/prefix/` or `file:///abs/`.
    pub fn url(&self) -> String {
        match self {
            Target::S3 { bucket, prefix } if prefix.is_empty() => format!("s3://{bucket}/"),
            Target::S3 { bucket, prefix } => format!("s3://{bucket}/{}/", prefix.trim_matches('/')),
            Target::Local { path } => {
                let abs = std::path::absolute(path).unwrap_or_else(|_| path.clone());
                url::Url::from_directory_path(&abs)
                    .map(|u| u.to_string())
                    .unwrap_or_else(|_| abs.display().to_string())
            }
        }
    }
}

/// S3 bucket naming rules (the subset that matters for a clear error).
fn validate_bucket(b: &str) -> std::result::Result<(), String> {
    if b.is_empty() {
        return Err("missing bucket name".into());
    }
    if b.len() < 3 || b.len() > 63 {
        return Err(format!("bucket name `{b}` must be 3 to 63 characters"));
    }
    if !b
        .chars()
        .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '.' || c == '-')
    {
        return Err(format!(
            "bucket name `{b}` may only contain lowercase letters, digits, `.` and `-`"
        ));
    }
    let first = b.chars().next().unwrap();
    let last = b.chars().last().unwrap();
    if !first.is_ascii_alphanumeric() || !last.is_ascii_alphanumeric() {
        return Err(format!(
            "bucket name `{b}` must start and end with a letter or digit"
        ));
    }
    Ok(())
}

/// A key prefix without leading/trailing slashes and without empty, `.` or
/// `..` segments.
pub fn normalize_prefix(p: &str) -> std::result::Result<String, String> {
    let trimmed = p.trim_matches('/');
    if trimmed.is_empty() {
        return Ok(String::new());
    }
    for seg in trimmed.split('/') {
        if seg.is_empty() || seg == "." || seg == ".." {
            return Err(format!("prefix `{p}` has an empty, `.` or `..` segment"));
        }
    }
    Ok(trimmed.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_s3_targets() {
        assert_eq!(
            Target::parse("s3://my-bucket").unwrap(),
            Target::S3 {
                bucket: "my-bucket".into(),
                prefix: "".into()
            }
        );
        assert_eq!(
            Target::parse("s3://my-bucket/site/v1/").unwrap(),
            Target::S3 {
                bucket: "my-bucket".into(),
                prefix: "site/v1".into()
            }
        );
    }

    #[test]
    fn parses_local_targets() {
        assert_eq!(
            Target::parse("./out").unwrap(),
            Target::Local {
                path: "./out".into()
            }
        );
        assert_eq!(
            Target::parse("file:///tmp/x%20y").unwrap(),
            Target::Local {
                path: "/tmp/x y".into()
            }
        );
    }

    #[test]
    fn rejects_bad_targets() {
        for t in [
            "",
            "s3://",
            "s3://UPPER",
            "s3://ab",
            "s3://b_ucket",
            "s3://bucket/a//b",
            "s3://bucket/../x",
            "http://example.com/x",
            "gs://bucket",
            "file://relative/path",
        ] {
            let e = Target::parse(t).unwrap_err();
            assert!(matches!(e, Error::InvalidTarget { .. }), "{t}: {e}");
        }
    }
}
