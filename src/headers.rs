//! The header settings of one object and their digest, stored as
//! `x-amz-meta-cdnsync-headers` so a change of headers is seen without
//! re-reading content.

use serde::{Deserialize, Serialize};

use crate::store::Sse;

/// Metadata key holding the blake3 hash of the uncompressed body.
pub const META_HASH: &str = "cdnsync-hash";
/// Metadata key holding the digest of the header settings.
pub const META_HEADERS: &str = "cdnsync-headers";

/// What a file's headers are decided from. Whether gzip is actually used is
/// a deterministic function of these settings and the bytes, so the digest
/// covers the *setting* (`compress`), not the outcome.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HeaderSettings {
    pub content_type: String,
    pub cache_control: String,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub content_disposition: Option<String>,
    pub compress: bool,
}

impl HeaderSettings {
    /// 16 hex characters of blake3 over a canonical encoding of the settings
    /// and the encryption mode (changing SSE re-uploads, re-encrypting).
    pub fn digest(&self, sse: &Sse) -> String {
        let mut h = blake3::Hasher::new();
        for part in [
            "v1",
            &self.content_type,
            &self.cache_control,
            self.content_disposition.as_deref().unwrap_or(""),
            if self.compress { "gzip" } else { "identity" },
            &sse.digest_part(),
        ] {
            h.update(&(part.len() as u64).to_le_bytes());
            h.update(part.as_bytes());
        }
        h.finalize().to_hex()[..16].to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s() -> HeaderSettings {
        HeaderSettings {
            content_type: "text/html; charset=utf-8".into(),
            cache_control: "public, max-age=0, must-revalidate".into(),
            content_disposition: None,
            compress: true,
        }
    }

    #[test]
    fn digest_is_stable_and_sensitive() {
        let a = s().digest(&Sse::Aes256);
        assert_eq!(a.len(), 16);
        assert_eq!(a, s().digest(&Sse::Aes256));
        let mut b = s();
        b.cache_control = "no-store".into();
        assert_ne!(a, b.digest(&Sse::Aes256));
        let mut c = s();
        c.compress = false;
        assert_ne!(a, c.digest(&Sse::Aes256));
        assert_ne!(
            a,
            s().digest(&Sse::Kms {
                key_id: None,
                bucket_key: true
            })
        );
    }
}
