//! CSS references from cssparser tokens: `url()` (quoted and unquoted),
//! strings inside `image-set()`, and `@import "…"`. Only the URL token's
//! span is reported; comments and everything else are never touched.

use cssparser::{ParseError, Parser, ParserInput, Token};

use super::{RawRef, RefKind};

#[derive(Clone, Copy, PartialEq, Eq)]
enum Mode {
    Normal,
    /// Inside `url(`: a string is the URL.
    Url,
    /// Inside `image-set(`: strings are URLs.
    ImageSet,
}

/// References in a stylesheet (or a `style` attribute / `<style>` block).
/// `offset` is added to every span (the text's position in its file).
pub fn extract(text: &str, offset: usize, kind: RefKind) -> Vec<RawRef> {
    let mut input = ParserInput::new(text);
    let mut p = Parser::new(&mut input);
    let mut out = Vec::new();
    walk(&mut p, text, offset, kind, Mode::Normal, &mut out);
    out
}

fn push(out: &mut Vec<RawRef>, url: &str, span: (usize, usize), offset: usize, kind: RefKind) {
    if span.0 <= span.1 {
        out.push(RawRef::new(url, (span.0 + offset, span.1 + offset), kind));
    }
}

fn walk(
    p: &mut Parser<'_, '_>,
    text: &str,
    offset: usize,
    kind: RefKind,
    mode: Mode,
    out: &mut Vec<RawRef>,
) {
    let mut after_import = false;
    loop {
        let start = p.position().byte_index();
        let tok = match p.next_including_whitespace_and_comments() {
            Ok(t) => t.clone(),
            Err(_) => break,
        };
        let end = p.position().byte_index();
        let mut keep_import = false;
        match tok {
            Token::UnquotedUrl(v) => {
                // `url(  a.png  )`: the value sits between the parentheses.
                let raw = &text[start..end];
                if let Some(open) = raw.find('(') {
                    let inner = &raw[open + 1..];
                    let inner = inner.strip_suffix(')').unwrap_or(inner);
                    let lead = inner.len() - inner.trim_start().len();
                    let s = start + open + 1 + lead;
                    let e = s + inner.trim().len();
                    push(out, &v, (s, e), offset, kind);
                }
            }
            Token::QuotedString(v) if after_import || mode != Mode::Normal => {
                let raw = &text[start..end];
                let q = raw.as_bytes()[0];
                let e = if raw.len() >= 2 && raw.as_bytes()[raw.len() - 1] == q {
                    end - 1
                } else {
                    end
                };
                push(out, &v, (start + 1, e), offset, kind);
            }
            Token::Function(name) => {
                let m = if name.eq_ignore_ascii_case("url") {
                    Mode::Url
                } else if name.to_ascii_lowercase().ends_with("image-set") {
                    Mode::ImageSet
                } else {
                    Mode::Normal
                };
                let _ = p.parse_nested_block(|np| {
                    walk(np, text, offset, kind, m, out);
                    Ok::<(), ParseError<'_, ()>>(())
                });
            }
            Token::ParenthesisBlock | Token::SquareBracketBlock | Token::CurlyBracketBlock => {
                let _ = p.parse_nested_block(|np| {
                    walk(np, text, offset, kind, Mode::Normal, out);
                    Ok::<(), ParseError<'_, ()>>(())
                });
            }
            Token::AtKeyword(k) if k.eq_ignore_ascii_case("import") => keep_import = true,
            Token::WhiteSpace(_) | Token::Comment(_) => keep_import = after_import,
            _ => {}
        }
        after_import = keep_import;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn urls(css: &str) -> Vec<(String, String)> {
        extract(css, 0, RefKind::Asset)
            .into_iter()
            .map(|r| (r.url, css[r.span.0..r.span.1].to_string()))
            .collect()
    }

    #[test]
    fn finds_urls_imports_and_image_sets() {
        let css = r#"@import "base.css";
@import url(theme.css) screen;
@import url( "print.css" ) print;
/* url(commented.png) is not a reference */
a { background: url(img/a.png) no-repeat, url('img/b.png'), url( "img/c d.png" ); }
@media (min-width: 10px) { .x { background-image: image-set("x1.png" 1x, url(x2.png) 2x); } }
@font-face { src: url("../fonts/f.woff2?v=1#iefix") format("woff2"); }
.s::before { content: "url(not-a-ref.png)"; }
"#;
        let got = urls(css);
        let want: Vec<(&str, &str)> = vec![
            ("base.css", "base.css"),
            ("theme.css", "theme.css"),
            ("print.css", "print.css"),
            ("img/a.png", "img/a.png"),
            ("img/b.png", "img/b.png"),
            ("img/c d.png", "img/c d.png"),
            ("x1.png", "x1.png"),
            ("x2.png", "x2.png"),
            ("../fonts/f.woff2?v=1#iefix", "../fonts/f.woff2?v=1#iefix"),
        ];
        assert_eq!(
            got,
            want.iter()
                .map(|(a, b)| (a.to_string(), b.to_string()))
                .collect::<Vec<_>>()
        );
    }

    #[test]
    fn escapes_decode_but_spans_stay_raw() {
        let css = r#"a { background: url("a\"b.png"); b: url(c\)d.png) }"#;
        let got = urls(css);
        assert_eq!(got[0], ("a\"b.png".into(), "a\\\"b.png".into()));
        assert_eq!(got[1], ("c)d.png".into(), "c\\)d.png".into()));
    }

    #[test]
    fn offsets_are_added() {
        let r = extract("a{b:url(x.png)}", 100, RefKind::Asset);
        assert_eq!(r[0].span, (108, 113));
    }
}
