//! What is shown of text cdnsync does not control: secrets never reach a
//! log, an error, a report or a job summary (the `user:password@` part of
//! any URL is shown as `***@`), and text read from a bucket never drives the
//! terminal (control characters are shown escaped).

/// `scheme://user:pass@host/…` → `scheme://***@host/…`, in any text
/// (every URL in it); text without credentials is returned as it is.
pub fn redact_urls(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(i) = rest.find("://") {
        let (head, tail) = rest.split_at(i + 3);
        out.push_str(head);
        // The authority ends at the first `/`, `?`, `#` or blank.
        let end = tail
            .find(|c: char| c == '/' || c == '?' || c == '#' || c.is_whitespace() || c == '`')
            .unwrap_or(tail.len());
        let authority = &tail[..end];
        match authority.rfind('@') {
            Some(at) => {
                out.push_str("***");
                out.push_str(&authority[at..]);
            }
            None => out.push_str(authority),
        }
        rest = &tail[end..];
    }
    out.push_str(rest);
    out
}

/// Text from a bucket, safe to print on a terminal: control characters
/// (escape sequences, newlines) are shown escaped, never interpreted.
pub fn printable(s: &str) -> String {
    s.chars()
        .flat_map(|c| -> Box<dyn Iterator<Item = char>> {
            if c.is_control() {
                Box::new(c.escape_default())
            } else {
                Box::new(std::iter::once(c))
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::redact_urls;

    #[test]
    fn credentials_in_urls_are_hidden() {
        assert_eq!(
            redact_urls("invalid --purge-url `http://admin:s3cret@cache:6081/x`: bad"),
            "invalid --purge-url `http://***@cache:6081/x`: bad"
        );
        assert_eq!(
            redact_urls("https://u@h a b://p:q@r"),
            "https://***@h a b://***@r"
        );
        assert_eq!(redact_urls("http://host:1/a@b"), "http://host:1/a@b");
        assert_eq!(redact_urls("no url here"), "no url here");
        assert_eq!(redact_urls("s3://bucket/prefix"), "s3://bucket/prefix");
    }
}
