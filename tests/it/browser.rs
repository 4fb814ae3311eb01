//! Published sites work: every reference in the published objects resolves
//! to a published key (local directory and S3), and every page loads in
//! headless Chromium through `cdnsync serve` with no failed request and no
//! console error — except the references the generator left dangling on
//! purpose, which cdnsync reports as warnings.

use std::collections::{BTreeSet, HashSet};
use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use cdnsync::graph::{self, GraphOptions, RefKind, lang_of};
use serde_json::Value;

use crate::util::*;

fn gunzip(b: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    flate2::read::GzDecoder::new(b)
        .read_to_end(&mut out)
        .unwrap();
    out
}

/// Check that every reference in every published HTML/CSS/JS/manifest/SVG
/// object resolves to a key in `keys`. `body(key)` returns the stored
/// (decoded) bytes. Returns the references that did not resolve.
fn unresolved(keys: &BTreeSet<String>, body: &dyn Fn(&str) -> Vec<u8>) -> Vec<(String, String)> {
    let set: HashSet<&str> = keys.iter().map(String::as_str).collect();
    let mut bad = Vec::new();
    let mut checked = 0;
    for k in keys {
        let Some(lang) = lang_of(k) else { continue };
        let bytes = body(k);
        let ex = graph::extract(lang, &bytes);
        let mut missing = Vec::new();
        let refs = graph::resolve_refs(
            k,
            &bytes,
            ex.refs,
            &set,
            &GraphOptions::default(),
            &mut missing,
        );
        checked += refs.len();
        for r in refs {
            assert!(set.contains(r.target.as_str()));
            if r.kind == RefKind::Asset {
                assert_ne!(r.target, "", "{k}");
            }
        }
        bad.extend(missing.into_iter().map(|m| (m.file, m.url)));
    }
    assert!(checked > 0, "no references checked");
    bad
}

fn local_keys(out: &Path) -> BTreeSet<String> {
    walkdir::WalkDir::new(out)
        .into_iter()
        .filter_entry(|e| {
            e.depth() != 1 || (e.file_name() != ".cdnsync-store" && e.file_name() != ".cdnsync")
        })
        .filter_map(std::result::Result::ok)
        .filter(|e| e.file_type().is_file())
        .map(|e| {
            e.path()
                .strip_prefix(out)
                .unwrap()
                .to_str()
                .unwrap()
                .to_string()
        })
        .collect()
}

fn local_body(out: &Path, key: &str) -> Vec<u8> {
    let raw = std::fs::read(out.join(key)).unwrap();
    let side: Value = serde_json::from_slice(
        &std::fs::read(out.join(".cdnsync-store/meta").join(format!("{key}.json"))).unwrap(),
    )
    .unwrap();
    if side["content_encoding"] == "gzip" {
        gunzip(&raw)
    } else {
        raw
    }
}

/// The set of (file, url) references the report called missing.
fn reported_missing(report: &Value) -> BTreeSet<(String, String)> {
    report["missing_references"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| {
            (
                m["file"].as_str().unwrap().to_string(),
                m["url"].as_str().unwrap().to_string(),
            )
        })
        .collect()
}

/// Load `pages` in Chromium; returns one result per page.
fn load_pages(base: &str, pages: &[String]) -> Vec<Value> {
    let node_modules = std::env::var("CDNSYNC_TEST_NODE_MODULES")
        .expect("CDNSYNC_TEST_NODE_MODULES is not set: run scripts/test.sh");
    let list = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(list.path(), serde_json::to_vec(pages).unwrap()).unwrap();
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/browser/check-pages.mjs");
    let out = Command::new("node")
        .arg(script)
        .arg(base)
        .arg(list.path())
        .arg("4")
        .env("CDNSYNC_TEST_NODE_MODULES", node_modules)
        .env(
            "CDNSYNC_TEST_CHROMIUM",
            std::env::var("CDNSYNC_TEST_CHROMIUM").unwrap_or("/usr/bin/chromium".into()),
        )
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "browser run failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: Vec<Value> = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v.len(), pages.len());
    v
}

/// Every failure on every page must be a request for `allowed` URL paths
/// (and the console errors those failures print).
fn assert_clean(results: &[Value], allowed: &HashSet<String>) {
    let path_of = |u: &str| {
        url::Url::parse(u)
            .map(|u| u.path().to_string())
            .unwrap_or_default()
    };
    let mut problems = Vec::new();
    for r in results {
        assert_eq!(r["status"], 200, "{r}");
        for f in r["failures"].as_array().unwrap() {
            if !allowed.contains(&path_of(f["url"].as_str().unwrap())) {
                problems.push(format!("{}: failed request {f}", r["page"]));
            }
        }
        for e in r["errors"].as_array().unwrap() {
            let text = e["text"].as_str().unwrap();
            let at = path_of(e["url"].as_str().unwrap_or(""));
            let explained =
                allowed.contains(&at) || allowed.iter().any(|a| text.contains(a.as_str()));
            if !explained {
                problems.push(format!("{}: console error {e}", r["page"]));
            }
        }
    }
    assert!(
        problems.is_empty(),
        "{} problems:\n{}",
        problems.len(),
        problems[..problems.len().min(30)].join("\n")
    );
}

fn html_pages(keys: &BTreeSet<String>) -> Vec<String> {
    keys.iter()
        .filter(|k| k.ends_with(".html"))
        .map(|k| format!("/{}", k.strip_suffix("index.html").unwrap_or(k)))
        .collect()
}

/// URL paths of the missing targets: resolve each reported missing
/// reference against its referrer's published location.
fn missing_paths(report: &Value, keys: &BTreeSet<String>, manifest: &Value) -> HashSet<String> {
    let _ = keys;
    reported_missing(report)
        .into_iter()
        .filter_map(|(file, url)| {
            let published = manifest["files"][&file]["key"]
                .as_str()
                .unwrap_or(&file)
                .to_string();
            graph::resolve::resolve(&url, &published, "/", None)
                .ok()
                .map(|r| format!("/{}", r.path))
        })
        .collect()
}

fn publish_local(dir: &Path, out: &Path) -> (Value, Value) {
    let manifest = out.with_extension("manifest.json");
    let r = cdnsync(&[
        "publish",
        &path_str(dir),
        "--to",
        &path_str(out),
        "--json",
        "--manifest-out",
        &path_str(&manifest),
    ])
    .ok_json();
    let m: Value = serde_json::from_slice(&std::fs::read(&manifest).unwrap()).unwrap();
    (r, m)
}

fn gen_site(args: &[&str]) -> (tempfile::TempDir, PathBuf) {
    let script = std::env::var("CDNSYNC_TEST_GEN_SITE")
        .expect("CDNSYNC_TEST_GEN_SITE is not set: run scripts/test.sh");
    let d = tempfile::tempdir().unwrap();
    let site = d.path().join("site");
    let ok = Command::new("python3")
        .arg(script)
        .arg("gen")
        .arg(&site)
        .args(args)
        .stdout(Stdio::null())
        .status()
        .unwrap()
        .success();
    assert!(ok);
    (d, site)
}

#[test]
fn example_site_loads_in_chromium() {
    let example = Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/site");
    let (_t, out) = tmp_target();
    let (report, _) = publish_local(&example, &out);
    assert!(
        report["missing_references"].as_array().unwrap().is_empty(),
        "{report:#}"
    );
    let keys = local_keys(&out);
    assert!(unresolved(&keys, &|k| local_body(&out, k)).is_empty());
    let srv = serve(&out);
    let results = load_pages(&srv.base, &html_pages(&keys));
    assert_clean(&results, &HashSet::new());

    // The check is not vacuous: remove the stylesheet and the page fails.
    let css = keys.iter().find(|k| k.starts_with("css/site.")).unwrap();
    std::fs::remove_file(out.join(css)).unwrap();
    let results = load_pages(&srv.base, &["/".to_string()]);
    let failed: Vec<&Value> = results[0]["failures"].as_array().unwrap().iter().collect();
    assert!(
        failed
            .iter()
            .any(|f| f["status"] == 404 && f["url"].as_str().unwrap().ends_with(css.as_str())),
        "{results:?}"
    );
}

#[test]
fn hand_written_site_rewrites_resolve_and_load_in_chromium() {
    let (_d, site) = gen_site(&["--plain", "--files", "2000"]);
    let (_t, out) = tmp_target();
    let (report, manifest) = publish_local(&site, &out);
    let fp = &report["fingerprint"];
    assert!(fp["assets_renamed"].as_u64().unwrap() > 500, "{fp}");
    assert!(fp["cycles"].as_u64().unwrap() >= 2, "{fp}");
    // The generator leaves 4 references dangling; all reported, with lines.
    let missing = reported_missing(&report);
    assert_eq!(missing.len(), 4, "{missing:?}");
    assert!(
        report["missing_references"]
            .as_array()
            .unwrap()
            .iter()
            .all(|m| m["line"].as_u64().unwrap() > 0)
    );

    let keys = local_keys(&out);
    let bad: BTreeSet<(String, String)> = unresolved(&keys, &|k| local_body(&out, k))
        .into_iter()
        .map(|(k, u)| (logical_of(&report, &k), u))
        .collect();
    // The same dangling references, seen from the published names (a
    // renamed file and its original-URL copy are the same file).
    assert_eq!(bad.len(), 4, "{bad:?}");
    let missing_urls: BTreeSet<&str> = missing.iter().map(|(_, u)| u.as_str()).collect();
    assert!(
        bad.iter().all(|(_, u)| missing_urls.contains(u.as_str())),
        "{bad:?}"
    );

    let srv = serve(&out);
    let pages = html_pages(&keys);
    assert!(pages.len() > 700);
    let results = load_pages(&srv.base, &pages);
    assert_clean(&results, &missing_paths(&report, &keys, &manifest));

    // Every file's original URL answers.
    let all = files_under(&site);
    assert_eq!(all.len(), 2000);
    let failing: Vec<(String, u16)> = head_statuses(&srv.base, &all)
        .into_iter()
        .filter(|(_, s)| *s != 200)
        .collect();
    assert!(failing.is_empty(), "{failing:?}");
    // Every stylesheet, script and image a page loads carries a content
    // hash: nothing of a hand-written site needs pinning.
    let pinned: Vec<(&String, &Value)> = report["decisions"]
        .as_object()
        .unwrap()
        .iter()
        .filter(|(_, d)| d["decision"] == "pinned")
        .collect();
    assert!(pinned.is_empty(), "{pinned:?}");

    // Publishing the same input again: same keys, nothing to upload.
    let (again, _) = publish_local(&site, &out);
    assert_eq!(again["uploaded"], 0, "{}", again["uploaded"]);
}

/// The build-directory path a published key holds (its logical path).
fn logical_of(report: &Value, key: &str) -> String {
    report["objects"]
        .as_array()
        .unwrap()
        .iter()
        .find(|o| o["key"] == key)
        .and_then(|o| o["logical"].as_str())
        .unwrap_or(key)
        .to_string()
}

/// Every file of a build directory, relative, as URL paths.
fn files_under(dir: &Path) -> Vec<String> {
    walkdir::WalkDir::new(dir)
        .into_iter()
        .filter_map(std::result::Result::ok)
        .filter(|e| e.file_type().is_file())
        .map(|e| {
            e.path()
                .strip_prefix(dir)
                .unwrap()
                .to_str()
                .unwrap()
                .to_string()
        })
        .collect()
}

#[test]
fn vite_build_is_not_double_hashed_and_loads() {
    let dist = PathBuf::from(
        std::env::var("CDNSYNC_TEST_VITE_DIST")
            .expect("CDNSYNC_TEST_VITE_DIST is not set: run scripts/test.sh"),
    );
    let (_t, out) = tmp_target();
    let (report, manifest) = publish_local(&dist, &out);
    for (logical, e) in manifest["files"].as_object().unwrap() {
        if logical.starts_with("assets/") {
            assert_eq!(e["key"], logical.as_str(), "bundler output keeps its name");
        }
    }
    let imm = "public, max-age=31536000, immutable";
    let side: Value = serde_json::from_slice(
        &std::fs::read(out.join(".cdnsync-store/meta").join(format!(
                "{}.json",
                manifest["files"]
                    .as_object()
                    .unwrap()
                    .keys()
                    .find(|k| k.starts_with("assets/") && k.ends_with(".js"))
                    .unwrap()
            )))
        .unwrap(),
    )
    .unwrap();
    assert_eq!(side["cache_control"], imm);
    assert!(
        report["missing_references"].as_array().unwrap().is_empty(),
        "{:#}",
        report["missing_references"]
    );
    let keys = local_keys(&out);
    assert!(unresolved(&keys, &|k| local_body(&out, k)).is_empty());
    let srv = serve(&out);
    assert_clean(&load_pages(&srv.base, &["/".to_string()]), &HashSet::new());
    // Every file's original URL answers.
    let all = files_under(&dist);
    assert!(all.len() > 100);
    let failing: Vec<(String, u16)> = head_statuses(&srv.base, &all)
        .into_iter()
        .filter(|(_, s)| *s != 200)
        .collect();
    assert!(failing.is_empty(), "{failing:?}");
}

#[test]
fn sites_published_to_s3_keep_every_reference_resolvable() {
    let (_keep, plain) = gen_site(&["--plain", "--files", "2000"]);
    for (name, dir, expect_missing) in [
        (
            "example",
            Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/site"),
            0,
        ),
        ("plain", plain, 4),
    ] {
        let b = Bucket::moto(name);
        let r = cdnsync_moto(&publish_args(&path_str(&dir), &b.url("site"))).ok_json();
        assert_eq!(
            r["missing_references"].as_array().unwrap().len(),
            expect_missing,
            "{name}"
        );
        let keys: BTreeSet<String> = b
            .keys("site/")
            .into_iter()
            .filter(|k| !k.starts_with("site/.cdnsync/"))
            .map(|k| k["site/".len()..].to_string())
            .collect();
        let bad: BTreeSet<(String, String)> = unresolved(&keys, &|k| b.body(&format!("site/{k}")))
            .into_iter()
            .map(|(k, u)| {
                (
                    logical_of(&r, &format!("site/{k}"))
                        .trim_start_matches("site/")
                        .to_string(),
                    u,
                )
            })
            .collect();
        assert_eq!(bad.len(), expect_missing, "{name}: {bad:?}");
    }
}

/// `scripts/check-site.sh DIST SCENARIO`: the build directory served as a
/// plain static host would, then published by this cdnsync and served by
/// `cdnsync serve`, driven through the same steps in Chromium; fails on
/// anything broken after publishing that was not broken before.
fn check_site(dist_env: &str, scenario: &str) -> Value {
    let dist = std::env::var(dist_env)
        .unwrap_or_else(|_| panic!("{dist_env} is not set: run scripts/test.sh"));
    let repo = Path::new(env!("CARGO_MANIFEST_DIR"));
    let report = tempfile::NamedTempFile::new().unwrap();
    let out = Command::new("bash")
        .arg(repo.join("scripts/check-site.sh"))
        .arg(&dist)
        .arg(repo.join("tests/browser/scenarios").join(scenario))
        .env("CDNSYNC_BIN", env!("CARGO_BIN_EXE_cdnsync"))
        .env("CHECK_SITE_REPORT", report.path())
        .output()
        .unwrap();
    let text = format!(
        "{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    eprintln!("{text}");
    assert_eq!(
        out.status.code(),
        Some(0),
        "regressions after publishing {dist}:\n{text}"
    );
    // Not vacuous: the scenario ran its steps on both sides.
    let r: Value = serde_json::from_slice(&std::fs::read(report.path()).unwrap()).unwrap();
    let steps = r["before"].as_array().map(Vec::len).unwrap_or(0);
    assert!(steps >= 5, "only {steps} steps ran: {r:#}");
    assert_eq!(r["after"].as_array().map(Vec::len), Some(steps));
    r
}

/// The record of the step named `name` on `side` (`before` / `after`).
fn step<'a>(report: &'a Value, side: &str, name: &str) -> &'a Value {
    report[side]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["name"] == name)
        .unwrap_or_else(|| panic!("no step {name} on {side}"))
}

#[test]
fn docusaurus_site_behaves_the_same_after_publishing() {
    let r = check_site("CDNSYNC_TEST_DOCUSAURUS_DIST", "docusaurus.json");
    // Pretty URLs, a redirect and a 404 through `serve` with routing on
    // (issue 18), exactly as on the static host.
    for side in ["before", "after"] {
        for (name, status, path) in [
            (
                "pretty URL without the slash (301 to /docs/intro/)",
                200,
                "/docs/intro/",
            ),
            (
                "a redirect from _redirects (301 to /docs/intro/)",
                200,
                "/docs/intro/",
            ),
            (
                "a missing page: the 404 page, status 404",
                404,
                "/no-such-page/",
            ),
        ] {
            let s = step(&r, side, name);
            assert_eq!(s["ok"], true, "{side} {name}: {s:#}");
            assert_eq!(s["status"], status, "{side} {name}: {s:#}");
            assert_eq!(s["path"], path, "{side} {name}: {s:#}");
        }
    }
}

#[test]
fn vitepress_site_behaves_the_same_after_publishing() {
    check_site("CDNSYNC_TEST_VITEPRESS_DIST", "vitepress.json");
}

#[test]
fn vite_app_behaves_the_same_after_publishing() {
    check_site("CDNSYNC_TEST_VITE_DIST", "vite-app.json");
}
