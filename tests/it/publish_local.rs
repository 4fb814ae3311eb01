//! `cdnsync publish` into a local directory: objects plus header sidecars,
//! incremental like S3, and the README's example site.

use crate::util::*;

fn sidecar(out: &std::path::Path, rel: &str) -> serde_json::Value {
    let p = out.join(".cdnsync-store/meta").join(format!("{rel}.json"));
    serde_json::from_slice(&std::fs::read(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display())))
        .unwrap()
}

fn gunzip(b: &[u8]) -> Vec<u8> {
    use std::io::Read;
    let mut out = Vec::new();
    flate2::read::GzDecoder::new(b)
        .read_to_end(&mut out)
        .unwrap();
    out
}

#[test]
fn local_target_cycle() {
    let site = sample_site();
    let (_t, out) = tmp_target();
    let dir = path_str(site.path());
    let to = path_str(&out);

    let r = cdnsync(&sync_args(&dir, &to)).ok_json();
    assert_eq!(r["uploaded"], 9, "{r:#}");
    assert!(!out.join(".env").exists() && !out.join(".git").exists());
    // Body (gzip where encoded) and every header in the sidecar.
    let s = sidecar(&out, "index.html");
    assert_eq!(s["content_type"], "text/html; charset=utf-8");
    assert_eq!(s["cache_control"], "public, max-age=0, must-revalidate");
    assert_eq!(s["content_encoding"], "gzip");
    assert_eq!(s["sse"], "AES256");
    let local = std::fs::read(site.path().join("index.html")).unwrap();
    assert_eq!(
        s["metadata"]["cdnsync-hash"],
        blake3::hash(&local).to_hex().as_str()
    );
    assert_eq!(
        gunzip(&std::fs::read(out.join("index.html")).unwrap()),
        local
    );
    assert_eq!(
        std::fs::read(out.join("img/a.png")).unwrap(),
        std::fs::read(site.path().join("img/a.png")).unwrap()
    );
    assert!(out.join("docs/a b+c%.txt").is_file());
    assert!(out.join(".cdnsync/current").is_file());

    let r = cdnsync(&sync_args(&dir, &to)).ok_json();
    assert_eq!(r["uploaded"], 0, "{r:#}");
    site.touch_all();
    assert_eq!(cdnsync(&sync_args(&dir, &to)).ok_json()["uploaded"], 0);

    site.write("about/index.html", b"<p>new about</p>");
    let r = cdnsync(&sync_args(&dir, &to)).ok_json();
    assert_eq!(keys_with(&r, "upload"), ["about/index.html"], "{r:#}");

    site.remove("robots.txt");
    let r = cdnsync(&sync_args(&dir, &to)).ok_json();
    assert_eq!(keys_with(&r, "delete"), ["robots.txt"], "{r:#}");
    assert!(!out.join("robots.txt").exists());
    assert!(!out.join(".cdnsync-store/meta/robots.txt.json").exists());

    // file:// form of the same target.
    let url = format!("file://{}", to);
    assert_eq!(cdnsync(&sync_args(&dir, &url)).ok_json()["uploaded"], 0);
}

#[test]
fn example_site_publishes_and_reports() {
    let example = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/site");
    let (t, out) = tmp_target();
    let manifest = t.path().join("cdnsync-manifest.json");
    let ran = cdnsync(&[
        "publish",
        &path_str(&example),
        "--to",
        &path_str(&out),
        "--manifest-out",
        &path_str(&manifest),
    ])
    .run();
    assert_eq!(ran.code, 0, "{}", ran.stderr);
    assert!(ran.stdout.contains("Published to"), "{}", ran.stdout);
    assert!(ran.stdout.contains("fingerprinted: "), "{}", ran.stdout);
    let m: serde_json::Value = serde_json::from_slice(&std::fs::read(&manifest).unwrap()).unwrap();
    let key = |logical: &str| {
        m["files"][logical]["key"]
            .as_str()
            .unwrap_or_else(|| panic!("{logical}"))
            .to_string()
    };
    // Pages keep their paths; what they load is content-addressed.
    for f in [
        "index.html",
        "about/index.html",
        "robots.txt",
        "favicon.ico",
        "site.webmanifest",
    ] {
        assert_eq!(key(f), f);
    }
    for f in [
        "css/site.css",
        "css/base.css",
        "js/app.js",
        "js/lib/greet.js",
        "js/lazy.js",
        "img/hero.png",
        "img/logo.svg",
        "fonts/open-sans.woff2",
        "media/intro.webm",
        "img/poster.png",
        "img/icon-192.png",
    ] {
        let k = key(f);
        assert_ne!(k, f, "{f} should be fingerprinted");
        assert!(out.join(&k).is_file(), "{k}");
        assert_eq!(
            sidecar(&out, &k)["cache_control"],
            "public, max-age=31536000, immutable",
            "{k}"
        );
    }
    assert!(
        m["files"]["js/app.js"]["integrity"]
            .as_str()
            .unwrap()
            .starts_with("sha384-")
    );
    assert_eq!(
        sidecar(&out, &key("media/intro.webm"))["content_type"],
        "video/webm"
    );
    assert_eq!(
        sidecar(&out, &key("fonts/open-sans.woff2"))["content_type"],
        "font/woff2"
    );
    assert_eq!(
        sidecar(&out, &key("js/app.js"))["content_type"],
        "text/javascript; charset=utf-8"
    );
    // The page names the fingerprinted stylesheet; the stylesheet its font.
    let page = gunzip(&std::fs::read(out.join("index.html")).unwrap());
    let page = String::from_utf8(page).unwrap();
    assert!(
        page.contains(&format!("href=\"/{}\"", key("css/site.css"))),
        "{page}"
    );
    let css = String::from_utf8(gunzip(
        &std::fs::read(out.join(key("css/site.css"))).unwrap(),
    ))
    .unwrap();
    let font_name = key("fonts/open-sans.woff2")
        .rsplit('/')
        .next()
        .unwrap()
        .to_string();
    assert!(css.contains(&font_name), "{css}");
    // Same input: same names, nothing uploaded.
    let again = cdnsync(&publish_args(&path_str(&example), &path_str(&out))).ok_json();
    assert_eq!(again["uploaded"], 0, "{again:#}");
}

#[test]
fn local_target_inside_the_site_is_refused() {
    let site = sample_site();
    let dir = path_str(site.path());
    let inside = path_str(&site.path().join("out"));
    let err = cdnsync(&publish_args(&dir, &inside)).fails(2);
    assert!(err.contains("overlap"), "{err}");
}

#[test]
fn empty_dir_does_not_wipe_a_live_site() {
    let site = Site::new(&[("index.html", b"<p>x</p>")]);
    let (_t, out) = tmp_target();
    let dir = path_str(site.path());
    let to = path_str(&out);
    cdnsync(&publish_args(&dir, &to)).ok_json();
    site.remove("index.html");
    let err = cdnsync(&publish_args(&dir, &to)).fails(3);
    assert!(err.contains("--allow-empty"), "{err}");
    assert!(out.join("index.html").is_file());
    let mut args = publish_args(&dir, &to);
    args.push("--allow-empty");
    assert_eq!(cdnsync(&args).ok_json()["deleted"], 1);
    assert!(!out.join("index.html").exists());
}

#[test]
fn strict_missing_references_and_base_path() {
    let site = Site::new(&[
        ("index.html", b"<!doctype html>\n<link rel=stylesheet href=\"/sub/css/a.css\">\n<img src=\"/sub/missing.png\">\n"),
        ("css/a.css", b"body{background:url(/sub/img/b.png)}"),
        ("img/b.png", b"PNG"),
    ]);
    let (_t, out) = tmp_target();
    let dir = path_str(site.path());
    let to = path_str(&out);

    // --strict: one clear error naming file and line, nothing written.
    let mut args = publish_args(&dir, &to);
    args.extend(["--base-path", "/sub/", "--strict"]);
    let e = cdnsync(&args).fails(3);
    assert!(
        e.contains("index.html: line 3: reference to missing file `/sub/missing.png`"),
        "{e}"
    );
    assert!(!out.exists(), "strict failure wrote something");

    // Without --strict: a warning, and root-relative URLs under the base path are rewritten.
    let mut args = publish_args(&dir, &to);
    args.extend(["--base-path", "/sub"]);
    let r = cdnsync(&args).run();
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(
        r.stderr
            .contains("warning: index.html:3: reference to missing file `/sub/missing.png`"),
        "{}",
        r.stderr
    );
    let report = r.json();
    let css_key = report["objects"]
        .as_array()
        .unwrap()
        .iter()
        .find(|o| o["logical"] == "css/a.css")
        .unwrap()["key"]
        .as_str()
        .unwrap()
        .to_string();
    let html = String::from_utf8(gunzip_or_raw(&out, "index.html")).unwrap();
    assert!(html.contains(&format!("href=\"/sub/{css_key}\"")), "{html}");
    assert!(
        html.contains("src=\"/sub/missing.png\""),
        "unresolvable references stay as written"
    );
}

fn gunzip_or_raw(out: &std::path::Path, key: &str) -> Vec<u8> {
    let raw = std::fs::read(out.join(key)).unwrap();
    if sidecar(out, key)["content_encoding"] == "gzip" {
        gunzip(&raw)
    } else {
        raw
    }
}
