//! HTML (and SVG) references. lol_html streams the document and reports
//! where each start tag and each `<style>`/`<script>` body sits; attribute
//! value spans are then read from those exact bytes, so a rewrite touches
//! nothing outside the values it renames.

use std::cell::RefCell;

use lol_html::{AsciiCompatibleEncoding, HtmlRewriter, Settings, element, text};

use super::{Extracted, RawRef, RefKind, StrLit, css, js, json};

/// One attribute of a start tag: lowercase name, raw value span (absolute).
#[derive(Debug, Clone)]
struct Attr {
    name: String,
    value: Option<(usize, usize)>,
}

#[derive(Debug)]
struct Tag {
    name: String,
    attrs: Vec<Attr>,
}

#[derive(Debug)]
enum Block {
    Style(usize, usize),
    ModuleScript(usize, usize),
    ImportMap(usize, usize),
    /// A classic inline script: read for strings only.
    ClassicScript(usize, usize),
    /// Inline JSON data (`application/json`, `ld+json`): strings only.
    JsonData(usize, usize),
}

/// Lex the attributes of the start tag at `bytes[start..end]`.
fn lex_attrs(bytes: &[u8], start: usize, end: usize) -> Vec<Attr> {
    let b = &bytes[..end];
    let mut i = start + 1;
    while i < end && !b[i].is_ascii_whitespace() && b[i] != b'>' && b[i] != b'/' {
        i += 1;
    }
    let mut out = Vec::new();
    loop {
        while i < end && (b[i].is_ascii_whitespace() || b[i] == b'/') {
            i += 1;
        }
        if i >= end || b[i] == b'>' {
            break;
        }
        let ns = i;
        while i < end
            && !b[i].is_ascii_whitespace()
            && !matches!(b[i], b'=' | b'>')
            && (b[i] != b'/' || i == ns)
        {
            i += 1;
        }
        let name = String::from_utf8_lossy(&b[ns..i]).to_ascii_lowercase();
        let mut j = i;
        while j < end && b[j].is_ascii_whitespace() {
            j += 1;
        }
        let mut value = None;
        if j < end && b[j] == b'=' {
            j += 1;
            while j < end && b[j].is_ascii_whitespace() {
                j += 1;
            }
            if j < end && (b[j] == b'"' || b[j] == b'\'') {
                let q = b[j];
                let vs = j + 1;
                let mut k = vs;
                while k < end && b[k] != q {
                    k += 1;
                }
                value = Some((vs, k));
                i = (k + 1).min(end);
            } else {
                let vs = j;
                let mut k = vs;
                while k < end && !b[k].is_ascii_whitespace() && b[k] != b'>' {
                    k += 1;
                }
                value = Some((vs, k));
                i = k;
            }
        }
        if !name.is_empty() {
            out.push(Attr { name, value });
        }
        if i == ns {
            i += 1;
        }
    }
    out
}

/// Decode character references in an attribute value.
pub fn decode_entities(s: &str) -> String {
    if !s.contains('&') {
        return s.to_string();
    }
    let mut out = String::with_capacity(s.len());
    let mut rest = s;
    while let Some(i) = rest.find('&') {
        out.push_str(&rest[..i]);
        rest = &rest[i..];
        let end = rest.find(';').filter(|&e| e <= 12);
        let decoded = end.and_then(|e| {
            let ent = &rest[1..e];
            let c = if let Some(num) = ent.strip_prefix("#x").or_else(|| ent.strip_prefix("#X")) {
                u32::from_str_radix(num, 16).ok().and_then(char::from_u32)
            } else if let Some(num) = ent.strip_prefix('#') {
                num.parse::<u32>().ok().and_then(char::from_u32)
            } else {
                match ent {
                    "amp" => Some('&'),
                    "lt" => Some('<'),
                    "gt" => Some('>'),
                    "quot" => Some('"'),
                    "apos" => Some('\''),
                    "nbsp" => Some('\u{a0}'),
                    _ => None,
                }
            };
            c.map(|c| (c, e))
        });
        match decoded {
            Some((c, e)) => {
                out.push(c);
                rest = &rest[e + 1..];
            }
            None => {
                out.push('&');
                rest = &rest[1..];
            }
        }
    }
    out.push_str(rest);
    out
}

/// URL spans of a `srcset` value (WHATWG parsing: URLs are runs of
/// non-space characters, trailing commas end a candidate, descriptors kept).
pub fn srcset_urls(v: &str) -> Vec<(usize, usize)> {
    let b = v.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < b.len() {
        while i < b.len() && (b[i].is_ascii_whitespace() || b[i] == b',') {
            i += 1;
        }
        if i >= b.len() {
            break;
        }
        let s = i;
        while i < b.len() && !b[i].is_ascii_whitespace() {
            i += 1;
        }
        let mut e = i;
        let ended = b[e - 1] == b',';
        while e > s && b[e - 1] == b',' {
            e -= 1;
        }
        if e > s {
            out.push((s, e));
        }
        if !ended {
            // Skip descriptors up to the next comma outside parentheses.
            let mut depth = 0;
            while i < b.len() {
                match b[i] {
                    b'(' => depth += 1,
                    b')' => depth -= 1,
                    b',' if depth <= 0 => break,
                    _ => {}
                }
                i += 1;
            }
        }
    }
    out
}

const LINK_RELS: &[&str] = &[
    "stylesheet",
    "icon",
    "apple-touch-icon",
    "apple-touch-icon-precomposed",
    "manifest",
    "preload",
    "modulepreload",
    "prefetch",
    "mask-icon",
    "shortcut",
];

const META_IMAGES: &[&str] = &[
    "og:image",
    "og:image:url",
    "og:image:secure_url",
    "og:video",
    "og:audio",
    "twitter:image",
    "twitter:image:src",
    "twitter:player:stream",
    "msapplication-tileimage",
    "msapplication-square70x70logo",
    "msapplication-square150x150logo",
    "msapplication-wide310x150logo",
    "msapplication-square310x310logo",
    "msapplication-config",
];

fn charset_sniff(bytes: &[u8]) -> Option<&'static encoding_rs::Encoding> {
    let head = &bytes[..bytes.len().min(1024)];
    let lower: Vec<u8> = head.iter().map(u8::to_ascii_lowercase).collect();
    let i = lower.windows(8).position(|w| w == b"charset=")?;
    let rest = &head[i + 8..];
    let rest = rest
        .strip_prefix(b"\"")
        .or_else(|| rest.strip_prefix(b"'"))
        .unwrap_or(rest);
    let end = rest
        .iter()
        .position(|c| !(c.is_ascii_alphanumeric() || *c == b'-' || *c == b'_'))
        .unwrap_or(rest.len());
    encoding_rs::Encoding::for_label(&rest[..end])
}

/// References of an HTML document (`svg_doc`: a standalone SVG file).
pub fn extract(bytes: &[u8], svg_doc: bool) -> Extracted {
    let encoding = match charset_sniff(bytes) {
        Some(e) if e != encoding_rs::UTF_8 => match AsciiCompatibleEncoding::new(e) {
            Some(a) => a,
            None => {
                return Extracted {
                    error: Some(format!("unsupported charset {}", e.name())),
                    ..Extracted::default()
                };
            }
        },
        _ => AsciiCompatibleEncoding::new(encoding_rs::UTF_8).expect("utf-8 is ASCII-compatible"),
    };
    let (tags, blocks) = match read_document(bytes, encoding) {
        Ok(x) => x,
        Err(e) => {
            return Extracted {
                error: Some(format!("HTML parse error: {e}")),
                ..Extracted::default()
            };
        }
    };
    let mut refs: Vec<RawRef> = Vec::new();
    let mut base_href: Option<String> = None;
    for t in &tags {
        tag_refs(t, bytes, svg_doc, &mut refs, &mut base_href);
    }
    let mut strings = Vec::new();
    for b in blocks {
        block_refs(b, bytes, &mut refs, &mut strings);
    }
    if let Some(base) = base_href {
        for r in &mut refs {
            r.base_dir = Some(base.clone());
        }
    }
    refs.sort_by_key(|r| r.span);
    Extracted {
        refs,
        strings,
        error: None,
    }
}

/// The text of a span, when it is UTF-8.
fn text_of(bytes: &[u8], (s, e): (usize, usize)) -> Option<&str> {
    std::str::from_utf8(&bytes[s..e]).ok()
}

/// One pass of lol_html over the document: every start tag with its
/// attributes' spans, and the raw-text blocks (styles, scripts, JSON) a
/// reference may hide in.
fn read_document(
    bytes: &[u8],
    encoding: AsciiCompatibleEncoding,
) -> Result<(Vec<Tag>, Vec<Block>), String> {
    let tags: RefCell<Vec<Tag>> = RefCell::new(Vec::new());
    let blocks: RefCell<Vec<Block>> = RefCell::new(Vec::new());
    // (kind, start, end) of the raw-text element being read.
    let open: RefCell<Option<(u8, usize, usize)>> = RefCell::new(None);
    let flush = |open: &RefCell<Option<(u8, usize, usize)>>, blocks: &RefCell<Vec<Block>>| {
        if let Some((k, s, e)) = open.borrow_mut().take()
            && e > s
        {
            blocks.borrow_mut().push(match k {
                0 => Block::Style(s, e),
                1 => Block::ModuleScript(s, e),
                2 => Block::ImportMap(s, e),
                3 => Block::ClassicScript(s, e),
                _ => Block::JsonData(s, e),
            });
        }
    };
    let extend = |k: u8, loc: std::ops::Range<usize>| {
        let mut o = open.borrow_mut();
        match o.as_mut() {
            Some((ok, _, e)) if *ok == k => *e = loc.end,
            _ => *o = Some((k, loc.start, loc.end)),
        }
    };
    let result = {
        let mut rw = HtmlRewriter::new(
            Settings::new()
                .append_element_content_handler(element!("*", |el| {
                    flush(&open, &blocks);
                    let loc = el.source_location().bytes();
                    let name = el.tag_name().to_ascii_lowercase();
                    let attrs = lex_attrs(bytes, loc.start, loc.end.min(bytes.len()));
                    tags.borrow_mut().push(Tag { name, attrs });
                    Ok(())
                }))
                .append_element_content_handler(text!("style", |t| {
                    extend(0, t.source_location().bytes());
                    Ok(())
                }))
                .append_element_content_handler(text!("script", |t| {
                    if let Some(k) = script_kind(&tags.borrow(), bytes) {
                        extend(k, t.source_location().bytes());
                    }
                    Ok(())
                }))
                .with_encoding(encoding),
            |_: &[u8]| {},
        );
        rw.write(bytes).and_then(|_| rw.end())
    };
    result.map_err(|e| e.to_string())?;
    flush(&open, &blocks);
    Ok((tags.into_inner(), blocks.into_inner()))
}

/// The kind of the script being read (the last `<script>` tag seen): 1
/// module, 2 import map, 3 classic, 4 JSON data; `None` for other types
/// (templates), whose text is not code.
fn script_kind(tags: &[Tag], bytes: &[u8]) -> Option<u8> {
    let ty = tags
        .iter()
        .rev()
        .find(|t| t.name == "script")
        .and_then(|t| {
            t.attrs
                .iter()
                .find(|a| a.name == "type")
                .and_then(|a| a.value)
        })
        .map(|(s, e)| {
            String::from_utf8_lossy(&bytes[s..e])
                .trim()
                .to_ascii_lowercase()
        });
    match ty.as_deref() {
        Some("module") => Some(1),
        Some("importmap") => Some(2),
        None
        | Some(
            ""
            | "text/javascript"
            | "application/javascript"
            | "text/ecmascript"
            | "application/ecmascript",
        ) => Some(3),
        Some("application/json" | "application/ld+json") => Some(4),
        _ => None,
    }
}

/// The references one tag's attributes make (and `<base href>`).
fn tag_refs(
    t: &Tag,
    bytes: &[u8],
    svg_doc: bool,
    refs: &mut Vec<RawRef>,
    base_href: &mut Option<String>,
) {
    let attr = |n: &str| t.attrs.iter().find(|a| a.name == n);
    let val = |n: &str| {
        attr(n)
            .and_then(|a| a.value)
            .and_then(|v| text_of(bytes, v))
            .map(decode_entities)
    };
    let integrity = attr("integrity").and_then(|a| a.value);
    let mut push = |name: &str, kind: RefKind| {
        if let Some(a) = attr(name)
            && let Some(span) = a.value
            && let Some(raw) = text_of(bytes, span)
        {
            let mut r = RawRef::new(decode_entities(raw), span, kind);
            r.integrity = integrity;
            refs.push(r);
        }
    };
    match t.name.as_str() {
        "base" if base_href.is_none() => *base_href = val("href"),
        "img" | "script" | "audio" | "video" | "source" | "track" | "embed" => {
            push("src", RefKind::Asset);
        }
        "input" if val("type").is_some_and(|v| v.eq_ignore_ascii_case("image")) => {
            push("src", RefKind::Asset);
        }
        "iframe" | "frame" => push("src", RefKind::Link),
        "a" | "area" => push("href", RefKind::Link),
        "link" => {
            let rel = val("rel").unwrap_or_default().to_ascii_lowercase();
            if rel.split_ascii_whitespace().any(|r| LINK_RELS.contains(&r)) {
                push("href", RefKind::Asset);
            }
        }
        "object" => push("data", RefKind::Asset),
        "meta" => {
            let key = val("property")
                .or_else(|| val("name"))
                .unwrap_or_default()
                .to_ascii_lowercase();
            if META_IMAGES.contains(&key.as_str()) {
                push("content", RefKind::Asset);
            }
        }
        "use" | "image" | "feimage" | "pattern" | "textpath" | "mpath" => {
            push("href", RefKind::Asset);
            push("xlink:href", RefKind::Asset);
        }
        _ => {}
    }
    if t.name == "video" {
        push("poster", RefKind::Asset);
    }
    if svg_doc && t.name == "script" {
        push("href", RefKind::Asset);
        push("xlink:href", RefKind::Asset);
    }
    for set in ["srcset", "imagesrcset"] {
        if matches!(t.name.as_str(), "img" | "source" | "link")
            && let Some(a) = attr(set)
            && let Some((s, _)) = a.value
            && let Some(raw) = a.value.and_then(|v| text_of(bytes, v))
        {
            for (us, ue) in srcset_urls(raw) {
                refs.push(RawRef::new(
                    decode_entities(&raw[us..ue]),
                    (s + us, s + ue),
                    RefKind::Asset,
                ));
            }
        }
    }
    if let Some(a) = attr("style")
        && let Some((s, _)) = a.value
        && let Some(raw) = a.value.and_then(|v| text_of(bytes, v))
        && !raw.contains('&')
    {
        refs.extend(css::extract(raw, s, RefKind::Asset));
    }
}

/// The references (and string literals) of one raw-text block, with spans
/// in the document.
fn block_refs(b: Block, bytes: &[u8], refs: &mut Vec<RawRef>, strings: &mut Vec<StrLit>) {
    let shifted = |v: Vec<StrLit>, s: usize| {
        v.into_iter().map(move |mut l| {
            l.span = (l.span.0 + s, l.span.1 + s);
            l
        })
    };
    let (s, e) = match b {
        Block::Style(s, e)
        | Block::ModuleScript(s, e)
        | Block::ClassicScript(s, e)
        | Block::JsonData(s, e)
        | Block::ImportMap(s, e) => (s, e),
    };
    let Some(t) = text_of(bytes, (s, e)) else {
        return;
    };
    match b {
        Block::Style(..) => refs.extend(css::extract(t, s, RefKind::Asset)),
        Block::ModuleScript(..) => {
            let ex = js::extract_str(t);
            refs.extend(ex.refs.into_iter().map(|mut r| {
                r.span = (r.span.0 + s, r.span.1 + s);
                r
            }));
            strings.extend(shifted(ex.strings, s));
        }
        Block::ClassicScript(..) => {
            // Its references are not rewritten (a classic script has no
            // imports): every string it holds counts.
            let ex = js::extract_str(t);
            strings.extend(shifted(ex.strings, s));
            strings.extend(ex.refs.into_iter().map(|r| StrLit {
                span: (r.span.0 + s, r.span.1 + s),
                value: r.url,
            }));
        }
        Block::JsonData(..) => strings.extend(shifted(json::path_strings(t), s)),
        Block::ImportMap(..) => refs.extend(json::extract_importmap(t, s)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn found(html: &str) -> Vec<(String, String, RefKind)> {
        let ex = extract(html.as_bytes(), false);
        assert!(ex.error.is_none(), "{:?}", ex.error);
        ex.refs
            .into_iter()
            .map(|r| (r.url, html[r.span.0..r.span.1].to_string(), r.kind))
            .collect()
    }

    fn urls(html: &str) -> Vec<String> {
        found(html).into_iter().map(|(u, _, _)| u).collect()
    }

    #[test]
    fn attributes_by_element() {
        let html = r##"<!DOCTYPE html><HTML><HEAD>
<LINK REL="stylesheet" HREF="/css/a.css" integrity="sha384-x">
<link rel=icon href=fav.png>
<link rel="canonical" href="https://x.com/">
<link rel="alternate" href="/feed.xml">
<link rel="preload" as="image" imagesrcset="h-480.png 480w, h-960.png 960w" href="h.png">
<meta property="og:image" content="/img/og.png">
<meta name="description" content="not/a/ref.png">
<script type="module" src="/js/app.js"></script>
</HEAD><body style="background: url('bg.png')">
<img src='a.png' srcset="a-1x.png 1x, a,2x.png 2x" alt=x>
<a href="/about/">About</a> <a href="#top">top</a> <a href="mailto:a@b.c">m</a>
<video poster="p.png"><source src="v.webm" type="video/webm"><track src="t.vtt"></video>
<svg><use href="icons.svg#menu"></use><image xlink:href="i.png"/></svg>
<object data="d.pdf"></object><iframe src="frame.html"></iframe>
<input type="image" src="btn.png"><input type="text" src="no.png">
</body></HTML>"##;
        assert_eq!(
            urls(html),
            [
                "/css/a.css",
                "fav.png",
                "h-480.png",
                "h-960.png",
                "h.png",
                "/img/og.png",
                "/js/app.js",
                "bg.png",
                "a.png",
                "a-1x.png",
                "a,2x.png",
                "/about/",
                "#top",
                "mailto:a@b.c",
                "p.png",
                "v.webm",
                "t.vtt",
                "icons.svg#menu",
                "i.png",
                "d.pdf",
                "frame.html",
                "btn.png"
            ]
        );
        let f = found(html);
        assert_eq!(
            f.iter().find(|r| r.0 == "/about/").unwrap().2,
            RefKind::Link
        );
        assert_eq!(f.iter().find(|r| r.0 == "a.png").unwrap().2, RefKind::Asset);
        let ex = extract(html.as_bytes(), false);
        let css = ex.refs.iter().find(|r| r.url == "/css/a.css").unwrap();
        let (s, e) = css.integrity.unwrap();
        assert_eq!(&html[s..e], "sha384-x");
    }

    #[test]
    fn style_blocks_module_scripts_and_import_maps() {
        let html = r#"<style>
/* url(comment.png) */ .a { background: url(s.png) }
</style>
<script type="importmap">{"imports": {"lib": "/js/lib.js"}}</script>
<script type="module">import x from "./m.js"; const u = new URL("w.js", import.meta.url);</script>
<script>var s = "import('./classic-not-parsed.js')";</script>"#;
        assert_eq!(urls(html), ["s.png", "/js/lib.js", "./m.js", "w.js"]);
    }

    #[test]
    fn entities_unquoted_crlf_and_base() {
        let html = "<base href=\"/static/\">\r\n<img src=a&amp;b.png>\r\n<img src=\"c&#46;png\">";
        let ex = extract(html.as_bytes(), false);
        let r: Vec<(&str, &str)> = ex
            .refs
            .iter()
            .map(|r| (r.url.as_str(), &html[r.span.0..r.span.1]))
            .collect();
        assert_eq!(r, [("a&b.png", "a&amp;b.png"), ("c.png", "c&#46;png")]);
        assert!(
            ex.refs
                .iter()
                .all(|r| r.base_dir.as_deref() == Some("/static/"))
        );
    }

    #[test]
    fn legacy_charset_documents() {
        let mut doc =
            b"<meta charset=\"windows-1252\"><p>caf\xe9</p><img src=\"img/a.png\">".to_vec();
        doc.extend_from_slice(b"<a href=\"caf\xe9.html\">x</a>");
        let ex = extract(&doc, false);
        assert!(ex.error.is_none());
        assert_eq!(&doc[ex.refs[0].span.0..ex.refs[0].span.1], b"img/a.png");
    }

    #[test]
    fn srcset_parsing() {
        let v = "a.png 1x, b.png 2x,c.png, d,e.png 480w, f.png (x,y) 3x";
        let got: Vec<&str> = srcset_urls(v).into_iter().map(|(s, e)| &v[s..e]).collect();
        assert_eq!(got, ["a.png", "b.png", "c.png", "d,e.png", "f.png"]);
    }

    #[test]
    fn standalone_svg() {
        let svg = r##"<svg xmlns="http://www.w3.org/2000/svg" xmlns:xlink="http://www.w3.org/1999/xlink">
<style>.x { fill: url(#g) } .y { background: url(tex.png) }</style>
<use xlink:href="sprite.svg#a"/><image href="photo.jpg"/><a href="page.html"><text>t</text></a></svg>"##;
        let ex = extract(svg.as_bytes(), true);
        let got: Vec<&str> = ex.refs.iter().map(|r| r.url.as_str()).collect();
        assert_eq!(
            got,
            ["#g", "tex.png", "sprite.svg#a", "photo.jpg", "page.html"]
        );
    }
}
