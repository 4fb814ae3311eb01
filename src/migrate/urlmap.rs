//! The URL map of a migration: old upload URLs to their CDN URLs, as CSV
//! and as an nginx `map` of redirects, written as files finish.

use std::fs::File;
use std::io::Write;
use std::path::{Path, PathBuf};

use crate::error::{Error, Result};
use crate::store::join_key;

/// The two map files being written.
pub(super) struct UrlMap {
    csv: File,
    nginx: File,
    base_url: String,
    cdn_url: String,
    /// The URL path of the old base (`/uploads/`), as nginx matches it.
    old_path_prefix: String,
    pub(super) csv_path: PathBuf,
    pub(super) nginx_path: PathBuf,
}

impl UrlMap {
    /// Create `url-map.csv` and `nginx-redirects.conf` in `dir`.
    pub(super) fn create(dir: &Path, base_url: &str, cdn_url: &str) -> Result<UrlMap> {
        std::fs::create_dir_all(dir).map_err(|e| Error::io(dir, e))?;
        let csv_path = dir.join("url-map.csv");
        let nginx_path = dir.join("nginx-redirects.conf");
        let mut csv = File::create(&csv_path).map_err(|e| Error::io(&csv_path, e))?;
        let mut nginx = File::create(&nginx_path).map_err(|e| Error::io(&nginx_path, e))?;
        writeln!(csv, "old_url,new_url,size,blake3").map_err(|e| Error::io(&csv_path, e))?;
        writeln!(nginx, "# cdnsync migrate: old upload URLs -> CDN (include in the http block; see README)\nmap $request_uri $cdnsync_new_url {{\n    default \"\";")
            .map_err(|e| Error::io(&nginx_path, e))?;
        let base_url = base_url.trim_end_matches('/').to_string();
        let old_path_prefix = url::Url::parse(&format!("{base_url}/"))
            .map(|u| u.path().to_string())
            .unwrap_or_else(|_| "/".into());
        Ok(UrlMap {
            csv,
            nginx,
            cdn_url: cdn_url.trim_end_matches('/').to_string(),
            base_url,
            old_path_prefix,
            csv_path,
            nginx_path,
        })
    }

    /// One migrated file: `rel` below the source, under `prefix` in the bucket.
    pub(super) fn add(&mut self, prefix: &str, rel: &str, size: u64, hash: &str) {
        let old = format!("{}/{}", self.base_url, url_path(rel));
        let new = format!("{}/{}", self.cdn_url, url_path(&join_key(prefix, rel)));
        let _ = writeln!(
            self.csv,
            "{},{},{size},{hash}",
            csv_field(&old),
            csv_field(&new)
        );
        let _ = writeln!(
            self.nginx,
            "    \"{}{}\" \"{}\";",
            self.old_path_prefix,
            url_path(rel),
            new
        );
    }

    /// Close the nginx map (with how to use it).
    pub(super) fn finish(mut self) {
        let _ = writeln!(
            self.nginx,
            "}}\n# in the server block serving the old uploads:\n# if ($cdnsync_new_url) {{ return 301 $cdnsync_new_url; }}"
        );
    }
}

/// Percent-encode a key for a URL path (segments kept).
fn url_path(key: &str) -> String {
    const SET: &percent_encoding::AsciiSet = &percent_encoding::NON_ALPHANUMERIC
        .remove(b'-')
        .remove(b'_')
        .remove(b'.')
        .remove(b'~')
        .remove(b'/');
    percent_encoding::utf8_percent_encode(key, SET).to_string()
}

fn csv_field(s: &str) -> String {
    if s.contains([',', '"', '\n']) {
        format!("\"{}\"", s.replace('"', "\"\""))
    } else {
        s.to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_are_encoded() {
        assert_eq!(url_path("2024/a b+c%é.jpg"), "2024/a%20b%2Bc%25%C3%A9.jpg");
        assert_eq!(csv_field("a,b"), "\"a,b\"");
    }
}
