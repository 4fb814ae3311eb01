//! Fuzzing, the proptest way (cargo-fuzz needs a nightly toolchain, which
//! this project cannot fetch): the HTML, CSS and JS reference rewriters and
//! the config parser get thousands of generated inputs — grammar-biased
//! fragments mixed with arbitrary bytes, invalid UTF-8 included. Properties:
//! nothing panics; with nothing to rename the bytes come out identical; a
//! rewrite changes bytes only inside reference spans. `PROPTEST_CASES=N`
//! raises the count for a longer run.

use std::collections::BTreeMap;

use proptest::prelude::*;

use crate::graph::{self, Lang};

/// Cases per property unless `PROPTEST_CASES` says otherwise.
const CASES: u32 = 1500;

fn config() -> ProptestConfig {
    let cases = std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(CASES);
    ProptestConfig {
        cases,
        failure_persistence: None,
        ..ProptestConfig::default()
    }
}

/// Names of the site's other files, written in the ways pages write them.
const NAMES: &[&str] = &[
    "a.png",
    "/a.png",
    "./a.png",
    "img/b.svg",
    "/img/b.svg#icon",
    "../a.png",
    "s.css",
    "/s.css?v=1",
    "m.js",
    "./m.js",
    "a%2Epng",
    "https://cdn.example/a.png",
    "data:image/png;base64,AAAA",
    "//example.com/m.js",
    "#top",
    "",
];

fn html_token() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        Just("<a href=\"".into()),
        Just("<img src=".into()),
        Just("<link rel=stylesheet href='".into()),
        Just("<img srcset=\"".into()),
        Just(" 2x, ".into()),
        Just("<script type=module src=\"".into()),
        Just("<script type=module>import \"".into()),
        Just("</script>".into()),
        Just("<style>a{background:url(".into()),
        Just("</style>".into()),
        Just("<script type=importmap>{\"imports\":{\"m\":\"".into()),
        Just("\"}}</script>".into()),
        Just(" integrity=\"sha256-AAAA\"".into()),
        Just("<meta http-equiv=refresh content=\"0;url=".into()),
        Just(" style=\"background:url(".into()),
        Just("<base href=\"/img/\">".into()),
        Just("<svg><use href=\"".into()),
        Just("<!--".into()),
        Just("-->".into()),
        Just("&amp;&#x2F;&quot;".into()),
        Just("<![CDATA[".into()),
        Just("\"'>< =/".into()),
        name(),
        junk(),
    ]
}

fn css_token() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        Just("url(".into()),
        Just("url(\"".into()),
        Just(")".into()),
        Just("@import \"".into()),
        Just("@import url(".into()),
        Just("\";".into()),
        Just("image-set(\"".into()),
        Just("/*".into()),
        Just("*/".into()),
        Just("\\".into()),
        Just("{ }; :".into()),
        Just("'\"".into()),
        Just("@font-face{src:url(".into()),
        name(),
        junk(),
    ]
}

/// One of `templates` with each `{}` replaced by a name.
fn filled(templates: Vec<&'static str>) -> impl Strategy<Value = Vec<u8>> {
    (
        prop::sample::select(templates),
        prop::sample::select(NAMES),
        prop::sample::select(NAMES),
    )
        .prop_map(|(t, a, b)| t.replacen("{}", a, 1).replace("{}", b).into_bytes())
}

/// A whole HTML element naming files.
fn html_elem() -> impl Strategy<Value = Vec<u8>> {
    filled(vec![
        "<img src=\"{}\" alt=x>\n",
        "<link rel=stylesheet href={}>\n",
        "<script type=module src='{}'></script>\n",
        "<img srcset=\"{} 1x, {} 2x\">\n",
        "<style>a{background:url({})}</style>\n",
        "<div style=\"background:url('{}')\"></div>\n",
        "<script type=module>import \"{}\";</script>\n",
        "<link rel=stylesheet href=\"{}\" integrity=\"sha256-AAAA\" crossorigin>\n",
        "<svg><use href=\"{}\"/></svg>\n",
        "<!-- <img src=\"{}\"> -->\n",
        "<a href=\"{}\">{}</a>\n",
        "<meta http-equiv=refresh content=\"0;url={}\">\n",
        "<p title='{}'>&amp; {}</p>\n",
    ])
}

/// A whole CSS rule naming files.
fn css_rule() -> impl Strategy<Value = Vec<u8>> {
    filled(vec![
        "a{background:url({})}\n",
        "@import \"{}\";\n",
        "@import url({});\n",
        "@font-face{src:url(\"{}\") format(\"woff2\"),url('{}')}\n",
        "/* url({}) */\n",
        "c{background:image-set(\"{}\" 1x, \"{}\" 2x)}\n",
        "d{content:\"{}\"}\n",
    ])
}

/// A whole JS statement naming a file somewhere.
fn js_stmt() -> impl Strategy<Value = Vec<u8>> {
    (
        prop::sample::select(vec![
            "import \"{}\";\n",
            "import x from '{}';\n",
            "export * from \"{}\";\n",
            "const u = new URL(\"{}\", import.meta.url);\n",
            "await import('{}');\n",
            "const s = \"{}\"; // {}\n",
            "/* {} */\n",
            "const t = `${a}{}`;\n",
            "if (a) { b(/re\\//g, '{}'); }\n",
        ]),
        prop::sample::select(NAMES),
    )
        .prop_map(|(t, n)| t.replace("{}", n).into_bytes())
}

/// Statements mixed with loose fragments and junk (which rarely parse).
fn js_token() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        8 => js_stmt(),
        1 => Just("\n//# sourceMappingURL=m.js.map\n".into()),
        1 => Just("import('".into()),
        1 => name(),
        1 => junk(),
    ]
}

fn name() -> impl Strategy<Value = Vec<u8>> {
    prop::sample::select(NAMES).prop_map(|n| n.as_bytes().to_vec())
}

/// Arbitrary bytes (invalid UTF-8, NUL, BOM, CR) or printable text.
fn junk() -> BoxedStrategy<Vec<u8>> {
    prop_oneof![
        prop::collection::vec(any::<u8>(), 0..8),
        "[ -~]{0,10}".prop_map(String::into_bytes),
        Just("\u{feff}é€\r\n".into()),
    ]
    .boxed()
}

fn doc(token: BoxedStrategy<Vec<u8>>) -> impl Strategy<Value = Vec<u8>> {
    prop::collection::vec(token, 0..40).prop_map(|v| v.concat())
}

fn any_doc() -> impl Strategy<Value = (Lang, Vec<u8>)> {
    prop_oneof![
        doc(html_elem().boxed()).prop_map(|d| (Lang::Html, d)),
        doc(prop_oneof![4 => html_elem(), 1 => html_token()].boxed()).prop_map(|d| (Lang::Html, d)),
        doc(css_rule().boxed()).prop_map(|d| (Lang::Css, d)),
        doc(prop_oneof![4 => css_rule(), 1 => css_token()].boxed()).prop_map(|d| (Lang::Css, d)),
        doc(js_stmt().boxed()).prop_map(|d| (Lang::Js, d)),
        doc(js_token().boxed()).prop_map(|d| (Lang::Js, d)),
    ]
}

fn file_name(lang: Lang) -> &'static str {
    match lang {
        Lang::Html => "index.html",
        Lang::Css => "style.css",
        _ => "app.js",
    }
}

/// Publish-side fingerprinting of `files`: the final bytes of `subject`, and
/// the splices that made them.
fn rewrite(
    files: &BTreeMap<&str, Vec<u8>>,
    subject: &str,
) -> (Vec<u8>, Vec<crate::fingerprint::Splice>) {
    let list: Vec<(&str, &Vec<u8>)> = files.iter().map(|(p, b)| (*p, b)).collect();
    let fp = crate::fingerprint::tests::run_files(&list).fp;
    let o = fp
        .outputs
        .values()
        .find(|o| o.logical == subject)
        .expect("the subject is published");
    let fin = crate::fingerprint::apply(&files[subject], &o.splices);
    assert_eq!(blake3::hash(&fin).to_hex().as_str(), o.hash);
    (fin, o.splices.to_vec())
}

fn site_with(lang: Lang, text: &[u8]) -> BTreeMap<&'static str, Vec<u8>> {
    let mut files: BTreeMap<&str, Vec<u8>> = BTreeMap::new();
    files.insert("a.png", b"PNG".to_vec());
    files.insert("img/b.svg", b"<svg><symbol id=icon/></svg>".to_vec());
    files.insert("s.css", b"h1{color:red}".to_vec());
    files.insert("m.js", b"export const m = 1;".to_vec());
    // Only what a page loads is renamed: a page loads the subject.
    match lang {
        Lang::Css => {
            files.insert(
                "index.html",
                b"<link rel=stylesheet href=style.css>".to_vec(),
            );
        }
        Lang::Html => {}
        _ => {
            files.insert(
                "index.html",
                b"<script type=module src=app.js></script>".to_vec(),
            );
        }
    }
    files.insert(file_name(lang), text.to_vec());
    files
}

proptest! {
    #![proptest_config(config())]

    /// Arbitrary input never panics a parser, and every span it reports is
    /// inside the input.
    #[test]
    fn parsers_never_panic_and_spans_are_in_bounds((lang, text) in any_doc()) {
        let ex = graph::extract(lang, &text);
        for r in &ex.refs {
            prop_assert!(r.span.0 <= r.span.1 && r.span.1 <= text.len(), "{r:?}");
            if let Some((a, b)) = r.integrity {
                prop_assert!(a <= b && b <= text.len());
            }
        }
    }

    /// Alone in a site there is nothing to rename: the file is published
    /// byte for byte (the identity map).
    #[test]
    fn with_nothing_to_rename_the_bytes_are_identical((lang, text) in any_doc()) {
        let mut files = BTreeMap::new();
        files.insert(file_name(lang), text.clone());
        let (out, splices) = rewrite(&files, file_name(lang));
        prop_assert!(splices.is_empty(), "{splices:?}");
        prop_assert_eq!(out, text);
    }

    /// With assets to rename, every edit lies inside a reference span (or
    /// the integrity value of the same element), edits do not overlap, and
    /// removing them gives the input back.
    #[test]
    fn rewrites_touch_only_reference_spans((lang, text) in any_doc()) {
        let files = site_with(lang, &text);
        let (out, splices) = rewrite(&files, file_name(lang));
        let ex = graph::extract(lang, &text);
        let inside = |s: &crate::fingerprint::Splice| {
            ex.refs.iter().any(|r| {
                (r.span.0 <= s.start && s.end <= r.span.1)
                    || r.integrity.is_some_and(|(a, b)| a <= s.start && s.end <= b)
            })
        };
        let mut last_end = 0;
        // Undo every edit on the output: the input must come back.
        let mut restored = Vec::new();
        let (mut i, mut at) = (0, 0);
        for s in &splices {
            prop_assert!(inside(s), "edit {s:?} outside every reference span");
            prop_assert!(s.start >= last_end, "overlapping edits {splices:?}");
            last_end = s.end;
            let keep = s.start - at;
            restored.extend_from_slice(&out[i..i + keep]);
            restored.extend_from_slice(&text[s.start..s.end]);
            i += keep + s.text.len();
            at = s.end;
        }
        restored.extend_from_slice(&out[i..]);
        prop_assert_eq!(&restored, &text);
        if splices.is_empty() {
            prop_assert_eq!(out, text);
        }
    }

    /// Any text as `cdnsync.toml`: a config or an error naming the file,
    /// never a panic.
    #[test]
    fn config_parser_never_panics(text in config_text()) {
        let path = std::path::Path::new("/site/cdnsync.toml");
        if let Err(e) = crate::config::parse_file(path, &text) {
            prop_assert!(e.to_string().contains("cdnsync.toml"), "{e}");
        }
    }
}

fn config_text() -> impl Strategy<Value = String> {
    let key = prop::sample::select(vec![
        "to",
        "concurrency",
        "hash_length",
        "sse",
        "compress",
        "exclude",
        "include",
        "max_delete",
        "allow_empty",
        "wait_lock",
        "keep",
        "grace",
        "purge_urls",
        "distribution_id",
        "bogus",
        "[cache_control]",
        "[[rules]]",
        "glob",
        "cache_control",
        "content_type",
    ]);
    let value = prop_oneof![
        Just("\"s3://b/p\"".to_string()),
        Just("8".to_string()),
        Just("-1".to_string()),
        Just("true".to_string()),
        Just("[\"*.map\", \"a/[b\"]".to_string()),
        Just("\"aes256\"".to_string()),
        Just("\"1h\"".to_string()),
        Just("{ x = 1 }".to_string()),
        Just("\"\\u00e9\"".to_string()),
        Just("9999999999999999999999".to_string()),
        "[ -~]{0,12}",
    ];
    let line = (key, value, prop::bool::ANY).prop_map(|(k, v, eq)| {
        if k.starts_with('[') {
            format!("{k}\n")
        } else if eq {
            format!("{k} = {v}\n")
        } else {
            format!("{k}{v}\n")
        }
    });
    prop_oneof![
        prop::collection::vec(line, 0..12).prop_map(|v| v.concat()),
        ".{0,200}",
    ]
}

/// The generators are not vacuous: many generated files carry references
/// that get rewritten, in each language.
#[test]
fn generated_documents_do_get_rewritten() {
    use proptest::strategy::ValueTree;
    let mut runner = proptest::test_runner::TestRunner::deterministic();
    let mut rewritten: BTreeMap<&str, (usize, usize)> = BTreeMap::new();
    for _ in 0..300 {
        let (lang, text) = any_doc().new_tree(&mut runner).unwrap().current();
        let (_, splices) = rewrite(&site_with(lang, &text), file_name(lang));
        let e = rewritten.entry(file_name(lang)).or_default();
        e.0 += 1;
        e.1 += usize::from(!splices.is_empty());
    }
    for (f, (n, hit)) in &rewritten {
        assert!(
            *hit * 5 >= *n,
            "{f}: only {hit} of {n} generated files were rewritten"
        );
    }
    eprintln!("rewritten (generated, with edits): {rewritten:?}");
    assert_eq!(rewritten.len(), 3, "{rewritten:?}");
}
