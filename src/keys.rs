//! What a site key may be: the one check applied to every key read back
//! from a bucket (release records, routing pages) before it is acted on.

/// Folder (under the prefix) that holds cdnsync's own objects.
pub const META_DIR: &str = ".cdnsync";

/// Why a site key read back from a bucket cannot be acted on, if it cannot:
/// every key must be relative to the prefix, without `.`/`..`/empty
/// segments, a leading `/`, backslashes or control characters, at most
/// 1,024 bytes, and outside cdnsync's own `.cdnsync/` folder.
pub fn key_problem(rel: &str) -> Option<&'static str> {
    if rel.is_empty() {
        return Some("an empty key");
    }
    if rel.len() > 1024 {
        return Some("a key over 1,024 bytes");
    }
    if rel.starts_with('/') {
        return Some("a key starting with `/`");
    }
    if rel.contains('\\') {
        return Some("a key with a backslash");
    }
    if rel.chars().any(char::is_control) {
        return Some("a key with a control character");
    }
    if rel
        .split('/')
        .any(|s| s.is_empty() || s == "." || s == "..")
    {
        return Some("a key with an empty, `.` or `..` segment");
    }
    if rel == META_DIR || rel.starts_with(&format!("{META_DIR}/")) {
        return Some("a key inside cdnsync's own `.cdnsync/` folder");
    }
    None
}
