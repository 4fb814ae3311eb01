//! Publishing never breaks a site that worked (issue 15): every original
//! URL keeps resolving, only what is safe is renamed, bundler output of
//! every style is recognised, rules win, and the plan says why.

use serde_json::Value;

use crate::util::*;

/// Publish `site` to a fresh local target; the report and the target.
fn publish_local(site: &Site, extra: &[&str]) -> (Value, tempfile::TempDir, std::path::PathBuf) {
    let (t, out) = tmp_target();
    let mut args = publish_args_owned(site, &out);
    args.extend(extra.iter().map(std::string::ToString::to_string));
    let a: Vec<&str> = args.iter().map(String::as_str).collect();
    let r = cdnsync(&a).ok_json();
    (r, t, out)
}

fn publish_args_owned(site: &Site, out: &std::path::Path) -> Vec<String> {
    publish_args(&path_str(site.path()), &path_str(out))
        .into_iter()
        .map(str::to_string)
        .collect()
}

fn sidecar(out: &std::path::Path, key: &str) -> Value {
    serde_json::from_slice(
        &std::fs::read(out.join(".cdnsync-store/meta").join(format!("{key}.json"))).unwrap(),
    )
    .unwrap()
}

/// A local target's object, decoded when stored gzip-encoded.
fn gunzip_if(out: &std::path::Path, key: &str) -> Vec<u8> {
    let raw = std::fs::read(out.join(key)).unwrap();
    if sidecar(out, key)["content_encoding"] == "gzip" {
        let mut v = Vec::new();
        std::io::Read::read_to_end(&mut flate2::read::GzDecoder::new(&raw[..]), &mut v).unwrap();
        v
    } else {
        raw
    }
}

fn decision<'a>(r: &'a Value, path: &str) -> &'a Value {
    &r["decisions"][path]
}

#[test]
fn a_file_a_script_names_keeps_its_name_and_every_original_url_resolves() {
    // The minimal repro: the page loads /logo.svg, and so does app.js at run time.
    let site = Site::new(&[
        (
            "index.html",
            br#"<img src="/logo.svg"><script src="/app.js"></script>"#,
        ),
        ("app.js", br#"new Image().src = "/logo.svg""#),
        ("logo.svg", br#"<svg xmlns="http://www.w3.org/2000/svg"/>"#),
    ]);
    let (r, _t, out) = publish_local(&site, &[]);
    assert!(out.join("logo.svg").is_file(), "logo.svg is gone: {r:#}");
    assert_eq!(decision(&r, "logo.svg")["decision"], "pinned", "{r:#}");
    assert_eq!(decision(&r, "logo.svg")["reason"], "string");
    assert_eq!(decision(&r, "logo.svg")["file"], "app.js");
    // app.js is renamed (nothing names it) and also answers at /app.js.
    assert_eq!(decision(&r, "app.js")["decision"], "renamed");
    assert_eq!(decision(&r, "app.js")["page"], "index.html");
    assert!(out.join("app.js").is_file());
    let copy = sidecar(&out, "app.js");
    assert_eq!(copy["cache_control"], "public, max-age=300", "{copy}");
    let hashed = std::fs::read_dir(&out)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .find(|n| n.starts_with("app.") && n != "app.js")
        .unwrap();
    assert!(
        sidecar(&out, &hashed)["cache_control"]
            .as_str()
            .unwrap()
            .contains("immutable")
    );
    assert_eq!(
        std::fs::read(out.join("app.js")).unwrap(),
        std::fs::read(out.join(&hashed)).unwrap()
    );
    // Served: every original URL answers 200.
    let srv = serve(&out);
    for p in ["/", "/app.js", "/logo.svg", &format!("/{hashed}")] {
        assert_eq!(
            http("GET", &format!("{}{p}", srv.base), &[]).status,
            200,
            "{p}"
        );
    }
}

#[test]
fn a_module_only_an_unloaded_file_imports_is_not_renamed() {
    let site = Site::new(&[
        ("index.html", br#"<script src="lib/loader.js"></script>"#),
        (
            "lib/loader.js",
            br#"var s = document.createElement('script'); s.src = 'mode-x.js'; document.head.appendChild(s);"#,
        ),
        ("lib/resolver.js", br#"export const load = () => import('./mode-x.js');"#),
        ("lib/mode-x.js", b"window.modeX = 1;"),
    ]);
    let (r, _t, out) = publish_local(&site, &[]);
    assert!(out.join("lib/mode-x.js").is_file(), "{r:#}");
    let renamed: Vec<&str> = r["objects"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|o| o["logical"] == "lib/mode-x.js")
        .map(|o| o["key"].as_str().unwrap())
        .collect();
    assert!(renamed.is_empty(), "mode-x.js renamed: {renamed:?}");
}

#[test]
fn rules_with_class_plain_or_entry_are_never_renamed() {
    let site = Site::new(&[
        (
            "index.html",
            br#"<link rel=stylesheet href="css/a.css"><img src="img/b.png"><img src="img/c.png">"#,
        ),
        ("css/a.css", b"body{color:red}"),
        ("img/b.png", b"PNG-b"),
        ("img/c.png", b"PNG-c"),
        (
            "cdnsync.toml",
            b"[[rules]]\nglob = \"css/*.css\"\nclass = \"plain\"\n\n[[rules]]\nglob = \"img/b.png\"\nclass = \"entry\"\n",
        ),
    ]);
    let cfg = path_str(&site.path().join("cdnsync.toml"));
    let (r, _t, out) = publish_local(&site, &["--config", &cfg]);
    let keys = keys_with(&r, "upload");
    assert!(keys.contains(&"css/a.css".to_string()), "{keys:?}");
    assert!(keys.contains(&"img/b.png".to_string()), "{keys:?}");
    assert!(
        keys.iter()
            .any(|k| k.starts_with("img/c.") && k != "img/c.png"),
        "an unruled image is still renamed: {keys:?}"
    );
    assert_eq!(decision(&r, "css/a.css")["reason"], "rule");
    assert_eq!(decision(&r, "css/a.css")["class"], "plain");
    let page = String::from_utf8(gunzip_if(&out, "index.html")).unwrap();
    assert!(page.contains(r#"href="css/a.css""#), "{page}");
}

#[test]
fn bundler_output_of_every_style_is_never_hashed_again() {
    let site = Site::new(&[
        (
            "index.html",
            br#"<img src="/assets/images/docusaurus-plushie-banner-a60f7593abca1e3eef26a9afa244e4fb.jpeg">
<script type=module src="/assets/index.md.C6xrKs9U.lean.js"></script>
<script type=module src="/assets/chunks/theme.BXvyuW_w.js"></script>
<link rel=stylesheet href="/assets/style.BnEKqtH2.css">
<script src="/_next/static/chunks/main-0123abcd4567ef89.js"></script>
<script src="/_next/static/Xy3buildIdAbc123/_buildManifest.js"></script>"#,
        ),
        (
            "assets/images/docusaurus-plushie-banner-a60f7593abca1e3eef26a9afa244e4fb.jpeg",
            b"JPEG",
        ),
        ("assets/index.md.C6xrKs9U.lean.js", b"export default 1;"),
        ("assets/chunks/theme.BXvyuW_w.js", b"export default 2;"),
        ("assets/style.BnEKqtH2.css", b"body{}"),
        ("_next/static/chunks/main-0123abcd4567ef89.js", b"1"),
        ("_next/static/Xy3buildIdAbc123/_buildManifest.js", b"2"),
    ]);
    let (r, _t, out) = publish_local(&site, &[]);
    for (logical, _) in [
        (
            "assets/images/docusaurus-plushie-banner-a60f7593abca1e3eef26a9afa244e4fb.jpeg",
            (),
        ),
        ("assets/index.md.C6xrKs9U.lean.js", ()),
        ("assets/chunks/theme.BXvyuW_w.js", ()),
        ("assets/style.BnEKqtH2.css", ()),
        ("_next/static/chunks/main-0123abcd4567ef89.js", ()),
        ("_next/static/Xy3buildIdAbc123/_buildManifest.js", ()),
    ] {
        assert!(out.join(logical).is_file(), "{logical}: {r:#}");
        assert!(
            sidecar(&out, logical)["cache_control"]
                .as_str()
                .unwrap()
                .contains("immutable"),
            "{logical}"
        );
    }
    assert_eq!(r["fingerprint"]["assets_renamed"], 0, "{r:#}");
}

#[test]
fn copies_follow_releases_rollback_and_deletes() {
    let b = Bucket::moto("copies");
    let to = b.url("site");
    let v = |img: &[u8]| {
        Site::new(&[
            (
                "index.html",
                br#"<img src="img/a.png"><link rel=stylesheet href=s.css>"#,
            ),
            ("s.css", b"body{background:url(img/a.png)}"),
            ("img/a.png", img),
        ])
    };
    let (v1, v2) = (v(b"PNG-1"), v(b"PNG-2"));
    cdnsync_moto(&publish_args(&path_str(v1.path()), &to)).ok_json();
    assert_eq!(b.body("site/img/a.png"), b"PNG-1");
    let head = b.head("site/img/a.png");
    assert_eq!(head.cache_control(), Some("public, max-age=300"));
    assert!(head.server_side_encryption().is_some());
    let r2 = cdnsync_moto(&publish_args(&path_str(v2.path()), &to)).ok_json();
    assert_eq!(b.body("site/img/a.png"), b"PNG-2", "{r2:#}");
    assert_plan_noop(&path_str(v2.path()), &to, "after v2");
    cdnsync_moto(&["rollback", "--to", &to, "--json"]).ok_json();
    assert_eq!(
        b.body("site/img/a.png"),
        b"PNG-1",
        "rollback restores the copy"
    );
    // The image leaves the site: its original URL goes with the page's next
    // publish; the hashed objects stay for gc's grace period.
    let v3 = Site::new(&[("index.html", b"<p>no image</p>")]);
    cdnsync_moto(&publish_args(&path_str(v3.path()), &to)).ok_json();
    assert!(
        b.keys("site/img/a.png").is_empty(),
        "{:?}",
        b.keys("site/img/")
    );
    assert!(!b.keys("site/img/a.").is_empty());
    assert!(broken_references(&b).is_empty());
}

#[test]
fn copies_can_be_turned_off() {
    let site = Site::new(&[
        ("index.html", br#"<img src="img/a.png">"#),
        ("img/a.png", b"PNG"),
    ]);
    let (r, _t, out) = publish_local(&site, &["--no-original-copies"]);
    assert!(!out.join("img/a.png").exists(), "{r:#}");
    assert_eq!(r["fingerprint"]["assets_renamed"], 1);
}
