//! JSON references with byte spans: web app manifests (`icons[].src`,
//! `screenshots[].src`, `shortcuts[].icons[].src`; `start_url` untouched)
//! and import maps (`imports`, `scopes`). A small span-keeping scanner, so a
//! rewrite changes only the string it renames.

use super::{Extracted, RawRef, RefKind, StrLit, with_text};

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Seg {
    Key(String),
    Index(usize),
}

/// A string value: its path, the span inside its quotes, its decoded value.
pub type JsonString = (Vec<Seg>, (usize, usize), String);

/// Every string value with its path and the span inside its quotes.
pub fn strings(text: &str) -> Result<Vec<JsonString>, String> {
    let mut s = Scanner {
        b: text.as_bytes(),
        text,
        i: 0,
        path: vec![],
        out: vec![],
    };
    s.ws();
    s.value()?;
    s.ws();
    if s.i != s.b.len() {
        return Err(format!("trailing data at byte {}", s.i));
    }
    Ok(s.out)
}

struct Scanner<'a> {
    b: &'a [u8],
    text: &'a str,
    i: usize,
    path: Vec<Seg>,
    out: Vec<JsonString>,
}

impl Scanner<'_> {
    fn ws(&mut self) {
        while self.i < self.b.len() && matches!(self.b[self.i], b' ' | b'\t' | b'\n' | b'\r') {
            self.i += 1;
        }
    }

    fn err<T>(&self, what: &str) -> Result<T, String> {
        Err(format!("invalid JSON at byte {}: {what}", self.i))
    }

    /// A string starting at `self.i` (a quote): returns (inner span, value).
    fn string(&mut self) -> Result<((usize, usize), String), String> {
        let start = self.i;
        self.i += 1;
        while self.i < self.b.len() {
            match self.b[self.i] {
                b'\\' => self.i += 2,
                b'"' => {
                    self.i += 1;
                    let v: String = serde_json::from_str(&self.text[start..self.i])
                        .map_err(|e| e.to_string())?;
                    return Ok(((start + 1, self.i - 1), v));
                }
                _ => self.i += 1,
            }
        }
        self.err("unterminated string")
    }

    fn value(&mut self) -> Result<(), String> {
        match self.b.get(self.i) {
            Some(b'{') => {
                self.i += 1;
                self.ws();
                if self.b.get(self.i) == Some(&b'}') {
                    self.i += 1;
                    return Ok(());
                }
                loop {
                    self.ws();
                    if self.b.get(self.i) != Some(&b'"') {
                        return self.err("expected a key");
                    }
                    let (_, key) = self.string()?;
                    self.ws();
                    if self.b.get(self.i) != Some(&b':') {
                        return self.err("expected `:`");
                    }
                    self.i += 1;
                    self.ws();
                    self.path.push(Seg::Key(key));
                    self.value()?;
                    self.path.pop();
                    self.ws();
                    match self.b.get(self.i) {
                        Some(b',') => self.i += 1,
                        Some(b'}') => {
                            self.i += 1;
                            return Ok(());
                        }
                        _ => return self.err("expected `,` or `}`"),
                    }
                }
            }
            Some(b'[') => {
                self.i += 1;
                self.ws();
                if self.b.get(self.i) == Some(&b']') {
                    self.i += 1;
                    return Ok(());
                }
                let mut n = 0;
                loop {
                    self.ws();
                    self.path.push(Seg::Index(n));
                    self.value()?;
                    self.path.pop();
                    n += 1;
                    self.ws();
                    match self.b.get(self.i) {
                        Some(b',') => self.i += 1,
                        Some(b']') => {
                            self.i += 1;
                            return Ok(());
                        }
                        _ => return self.err("expected `,` or `]`"),
                    }
                }
            }
            Some(b'"') => {
                let (span, v) = self.string()?;
                self.out.push((self.path.clone(), span, v));
                Ok(())
            }
            Some(_) => {
                let start = self.i;
                while self.i < self.b.len()
                    && !matches!(
                        self.b[self.i],
                        b',' | b'}' | b']' | b' ' | b'\t' | b'\n' | b'\r'
                    )
                {
                    self.i += 1;
                }
                let lit = &self.text[start..self.i];
                if lit.is_empty() || serde_json::from_str::<serde_json::Value>(lit).is_err() {
                    return self.err("invalid literal");
                }
                Ok(())
            }
            None => self.err("unexpected end"),
        }
    }
}

fn key(s: &Seg, k: &str) -> bool {
    matches!(s, Seg::Key(x) if x == k)
}

fn is_manifest_ref(p: &[Seg]) -> bool {
    match p {
        [a, Seg::Index(_), b] => (key(a, "icons") || key(a, "screenshots")) && key(b, "src"),
        [a, Seg::Index(_), b, Seg::Index(_), c] => {
            key(a, "shortcuts") && key(b, "icons") && key(c, "src")
        }
        _ => false,
    }
}

fn is_importmap_ref(p: &[Seg]) -> bool {
    match p {
        [a, Seg::Key(_)] => key(a, "imports"),
        [a, Seg::Key(_), Seg::Key(_)] => key(a, "scopes"),
        _ => false,
    }
}

pub fn extract_manifest(bytes: &[u8]) -> Extracted {
    extract_with(bytes, is_manifest_ref)
}

/// Import map text (inside `<script type=importmap>`), spans offset by `off`.
pub fn extract_importmap(text: &str, off: usize) -> Vec<RawRef> {
    match strings(text) {
        Ok(v) => v
            .into_iter()
            .filter(|(p, _, _)| is_importmap_ref(p))
            .map(|(_, s, url)| RawRef::new(url, (s.0 + off, s.1 + off), RefKind::Asset))
            .collect(),
        Err(_) => vec![],
    }
}

/// Strings of a JSON document that could name files (invalid JSON: none).
pub fn path_strings(text: &str) -> Vec<StrLit> {
    match strings(text) {
        Ok(v) => v
            .into_iter()
            .filter(|(_, _, s)| StrLit::could_be_path(s))
            .map(|(_, span, value)| StrLit { span, value })
            .collect(),
        Err(_) => Vec::new(),
    }
}

/// A JSON data file: no references, the strings that could name files.
pub fn extract_data(bytes: &[u8]) -> Extracted {
    extract_with(bytes, |_| false)
}

fn extract_with(bytes: &[u8], pick: fn(&[Seg]) -> bool) -> Extracted {
    with_text(bytes, |text| match strings(text) {
        Ok(v) => {
            let (refs, rest): (Vec<_>, Vec<_>) = v.into_iter().partition(|(p, _, _)| pick(p));
            Extracted {
                refs: refs
                    .into_iter()
                    .map(|(_, s, url)| RawRef::new(url, s, RefKind::Asset))
                    .collect(),
                strings: rest
                    .into_iter()
                    .filter(|(_, _, s)| StrLit::could_be_path(s))
                    .map(|(_, span, value)| StrLit { span, value })
                    .collect(),
                error: None,
            }
        }
        Err(e) => Extracted {
            error: Some(e),
            ..Extracted::default()
        },
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn manifest_icons_and_screenshots_not_start_url() {
        let m = r#"{ "name": "x", "start_url": "/index.html",
  "icons": [ {"src": "/img/i-192.png", "sizes": "192x192"}, {"src":"img\/i-512.png"} ],
  "screenshots": [{ "src": "s.png" }],
  "shortcuts": [{ "url": "/a", "icons": [{ "src": "sc.png" }] }] }"#;
        let ex = extract_manifest(m.as_bytes());
        assert!(ex.error.is_none());
        let got: Vec<(&str, &str)> = ex
            .refs
            .iter()
            .map(|r| (r.url.as_str(), &m[r.span.0..r.span.1]))
            .collect();
        assert_eq!(
            got,
            [
                ("/img/i-192.png", "/img/i-192.png"),
                ("img/i-512.png", "img\\/i-512.png"),
                ("s.png", "s.png"),
                ("sc.png", "sc.png")
            ]
        );
    }

    #[test]
    fn importmaps() {
        let t = r#"{"imports": {"app": "/js/app.js", "lib/": "./lib/"}, "scopes": {"/x/": {"a": "a.js"}}}"#;
        let r: Vec<&str> = extract_importmap(t, 0)
            .iter()
            .map(|r| &t[r.span.0..r.span.1])
            .collect();
        assert_eq!(r, ["/js/app.js", "./lib/", "a.js"]);
    }

    #[test]
    fn invalid_json_is_an_error() {
        assert!(extract_manifest(b"{\"icons\": [").error.is_some());
        assert!(extract_manifest(b"{} x").error.is_some());
    }
}
