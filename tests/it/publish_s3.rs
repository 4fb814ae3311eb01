//! `cdnsync publish` against moto: what lands in the bucket, and that
//! re-publishing only moves what changed.

use crate::util::*;

const ENTRY_CC: &str = "public, max-age=0, must-revalidate";
const IMMUTABLE_CC: &str = "public, max-age=31536000, immutable";
const PLAIN_CC: &str = "public, max-age=300";

#[test]
fn cold_noop_touch_change_delete_cycle() {
    let b = Bucket::moto("cycle");
    let site = sample_site();
    let dir = path_str(site.path());
    let to = b.url("www");

    // Cold: every publishable file, nothing from the deny-list.
    let r = cdnsync_moto(&sync_args(&dir, &to)).ok_json();
    assert_eq!(r["uploaded"], 9, "{r:#}");
    assert_eq!(r["unchanged"], 0);
    assert_eq!(r["deleted"], 0);
    assert_eq!(r["dry_run"], false);
    let release1 = r["release"].as_str().unwrap().to_string();
    let live: Vec<String> = b
        .keys("www/")
        .into_iter()
        .filter(|k| !k.starts_with("www/.cdnsync/"))
        .collect();
    assert_eq!(
        live,
        [
            "www/about/index.html",
            "www/assets/index-B4x9Tz2k.js",
            "www/css/site.css",
            "www/docs/a b+c%.txt",
            "www/docs/café.txt",
            "www/img/a.png",
            "www/index.html",
            "www/js/app.js",
            "www/robots.txt",
        ]
    );
    for o in r["objects"].as_array().unwrap() {
        assert!(o["key"].is_string() && o["action"] == "upload" && o["size"].is_u64());
        assert!(o["content_type"].is_string() && o["cache_control"].is_string());
    }

    // Bytes, headers, encryption and metadata as stored.
    for (key, rel, ct, cc, gz) in [
        (
            "www/index.html",
            "index.html",
            "text/html; charset=utf-8",
            ENTRY_CC,
            true,
        ),
        (
            "www/robots.txt",
            "robots.txt",
            "text/plain; charset=utf-8",
            ENTRY_CC,
            false,
        ),
        (
            "www/css/site.css",
            "css/site.css",
            "text/css; charset=utf-8",
            PLAIN_CC,
            true,
        ),
        (
            "www/js/app.js",
            "js/app.js",
            "text/javascript; charset=utf-8",
            PLAIN_CC,
            true,
        ),
        (
            "www/assets/index-B4x9Tz2k.js",
            "assets/index-B4x9Tz2k.js",
            "text/javascript; charset=utf-8",
            IMMUTABLE_CC,
            true,
        ),
        ("www/img/a.png", "img/a.png", "image/png", PLAIN_CC, false),
        (
            "www/docs/a b+c%.txt",
            "docs/a b+c%.txt",
            "text/plain; charset=utf-8",
            PLAIN_CC,
            false,
        ),
    ] {
        let local = std::fs::read(site.path().join(rel)).unwrap();
        let h = b.head(key);
        assert_eq!(h.content_type(), Some(ct), "{key}");
        assert_eq!(h.cache_control(), Some(cc), "{key}");
        assert_eq!(h.content_encoding(), gz.then_some("gzip"), "{key}");
        assert_eq!(
            h.server_side_encryption()
                .map(aws_sdk_s3::types::ServerSideEncryption::as_str),
            Some("AES256"),
            "{key}"
        );
        let meta = h.metadata().unwrap();
        assert_eq!(
            meta["cdnsync-hash"],
            blake3::hash(&local).to_hex().as_str(),
            "{key}"
        );
        assert_eq!(meta["cdnsync-headers"].len(), 16, "{key}");
        assert_eq!(b.body(key), local, "{key}");
        if gz {
            assert!(
                (h.content_length().unwrap() as usize) < local.len(),
                "{key} compressed"
            );
        }
    }
    // The release is recorded, `current` names it.
    assert_eq!(
        String::from_utf8(b.body("www/.cdnsync/current"))
            .unwrap()
            .trim(),
        release1
    );
    let manifest: serde_json::Value =
        serde_json::from_slice(&b.body(&format!("www/.cdnsync/releases/{release1}.json"))).unwrap();
    assert_eq!(manifest["files"].as_object().unwrap().len(), 9);
    assert_eq!(manifest["format"], 1);

    // No-op: nothing uploaded, no new release.
    let r = cdnsync_moto(&sync_args(&dir, &to)).ok_json();
    assert_eq!(
        (r["uploaded"].as_u64(), r["unchanged"].as_u64()),
        (Some(0), Some(9)),
        "{r:#}"
    );
    assert_eq!(r["noop"], true);
    assert_eq!(r["release"], release1.as_str());
    assert_eq!(b.keys("www/.cdnsync/releases/").len(), 1);

    // Fresh checkout: every mtime new, content the same → nothing uploaded.
    site.touch_all();
    let r = cdnsync_moto(&sync_args(&dir, &to)).ok_json();
    assert_eq!(r["uploaded"], 0, "{r:#}");

    // One file changed → exactly that one.
    site.write("css/site.css", b"body { color: red; }\n");
    let r = cdnsync_moto(&sync_args(&dir, &to)).ok_json();
    assert_eq!(r["uploaded"], 1, "{r:#}");
    assert_eq!(keys_with(&r, "upload"), ["www/css/site.css"]);
    assert_eq!(
        r["objects"]
            .as_array()
            .unwrap()
            .iter()
            .find(|o| o["action"] == "upload")
            .unwrap()["reason"],
        "content"
    );
    assert_eq!(b.body("www/css/site.css"), b"body { color: red; }\n");
    assert_ne!(r["release"], release1.as_str());
    assert_eq!(r["previous_release"], release1.as_str());

    // One file removed → exactly that key deleted.
    site.remove("js/app.js");
    let r = cdnsync_moto(&sync_args(&dir, &to)).ok_json();
    assert_eq!(
        (r["uploaded"].as_u64(), r["deleted"].as_u64()),
        (Some(0), Some(1)),
        "{r:#}"
    );
    assert_eq!(keys_with(&r, "delete"), ["www/js/app.js"]);
    assert!(!b.keys("www/").contains(&"www/js/app.js".to_string()));
    assert_eq!(b.keys("www/.cdnsync/releases/").len(), 3);
}

#[test]
fn dry_run_writes_nothing_and_reports_the_plan() {
    let b = Bucket::moto("dry");
    let site = sample_site();
    let dir = path_str(site.path());
    let to = b.url("");
    let mut args = publish_args(&dir, &to);
    args.push("--dry-run");
    let r = cdnsync_moto(&args).ok_json();
    assert_eq!(r["dry_run"], true);
    // 9 files, and the original URLs of the 2 renamed assets.
    assert_eq!(r["uploaded"], 11);
    // The plan shows its phases: content-addressed objects are PUT in phase 1,
    // stable-name files are stored then switched in phase 2.
    let p = &r["phases"];
    assert_eq!(
        p["upload"].as_u64().unwrap() + p["switch"].as_u64().unwrap(),
        11,
        "{p}"
    );
    // Stable-name files switch from a stored body; original URLs of
    // renamed assets from their content-addressed object.
    let copies = r["objects"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|o| o["copy_of"].is_string())
        .count() as u64;
    assert!(copies > 0);
    assert_eq!(
        p["store_bodies"].as_u64().unwrap() + copies,
        p["switch"].as_u64().unwrap()
    );
    assert_eq!(p["record"], true);
    let obj = |k: &str| {
        r["objects"]
            .as_array()
            .unwrap()
            .iter()
            .find(|o| o["key"] == k)
            .unwrap()
            .clone()
    };
    assert_eq!(obj("index.html")["phase"], 2);
    assert_eq!(obj("index.html")["store_body"], true);
    assert_eq!(obj("assets/index-B4x9Tz2k.js")["phase"], 1);
    assert!(r["bytes_uploaded"].as_u64().unwrap() > 0);
    assert!(b.keys("").is_empty(), "dry run wrote {:?}", b.keys(""));

    // `plan` is the same thing, human-readable by default.
    let out = cdnsync_moto(&["plan", &dir, "--to", &b.url("")]).run();
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert!(out.stdout.contains("Plan for"), "{}", out.stdout);
    assert!(out.stdout.contains("switch  index.html"), "{}", out.stdout);
    assert!(out.stdout.contains("phases: 1) upload"), "{}", out.stdout);
    assert!(out.stdout.contains("skip    .env"), "{}", out.stdout);
    assert!(b.keys("").is_empty());
}

#[test]
fn max_delete_caps_deletion_and_foreign_keys_are_never_touched() {
    let b = Bucket::moto("maxdel");
    let site = Site::new(&[
        ("index.html", b"<p>home</p>"),
        ("a.html", b"a"),
        ("b.html", b"b"),
        ("c.html", b"c"),
    ]);
    let dir = path_str(site.path());
    let to = b.url("site");
    cdnsync_moto(&publish_args(&dir, &to)).ok_json();
    // Objects cdnsync did not write: inside and outside the prefix.
    b.put("site/uploaded-by-hand.pdf", b"%PDF");
    b.put("site2/index.html", b"other site");
    b.put("other/x", b"x");

    for f in ["a.html", "b.html", "c.html"] {
        site.remove(f);
    }
    let mut args = publish_args(&dir, &to);
    args.extend(["--max-delete", "2"]);
    let r = cdnsync_moto(&args).ok_json();
    assert_eq!(r["deleted"], 0, "{r:#}");
    assert!(
        r["delete_blocked"]
            .as_str()
            .unwrap()
            .contains("--max-delete 2"),
        "{r:#}"
    );
    assert!(b.keys("site/").contains(&"site/a.html".to_string()));

    let r = cdnsync_moto(&publish_args(&dir, &to)).ok_json();
    assert_eq!(r["deleted"], 3, "{r:#}");
    let keys = b.keys("");
    for k in [
        "site/uploaded-by-hand.pdf",
        "site2/index.html",
        "other/x",
        "site/index.html",
    ] {
        assert!(keys.contains(&k.to_string()), "{k} missing from {keys:?}");
    }
    for k in ["site/a.html", "site/b.html", "site/c.html"] {
        assert!(!keys.contains(&k.to_string()), "{k} not deleted");
    }
    // Settled: the next publish has nothing to do.
    let r = cdnsync_moto(&publish_args(&dir, &to)).ok_json();
    assert_eq!(
        (r["noop"].as_bool(), r["deleted"].as_u64()),
        (Some(true), Some(0)),
        "{r:#}"
    );
}

#[test]
fn bucket_filled_by_another_tool_is_adopted() {
    let b = Bucket::moto("adopt");
    let site = Site::new(&[("index.html", b"<p>home</p>"), ("app.css", b"a{}")]);
    // Same content, no cdnsync metadata (as `aws s3 sync` leaves it).
    b.put("index.html", b"<p>home</p>");
    b.put("app.css", b"a{}");
    let dir = path_str(site.path());
    let r = cdnsync_moto(&publish_args(&dir, &b.url(""))).ok_json();
    assert_eq!(r["uploaded"], 2, "{r:#}");
    assert!(
        r["objects"]
            .as_array()
            .unwrap()
            .iter()
            .all(|o| o["reason"] == "unknown"),
        "{r:#}"
    );
    let r = cdnsync_moto(&publish_args(&dir, &b.url(""))).ok_json();
    assert_eq!(r["uploaded"], 0, "{r:#}");
}

#[test]
fn interrupted_run_is_picked_up_by_head_not_reuploaded() {
    // Objects uploaded by a run that never recorded its release: the next
    // run finds them by HEAD and does not send them again.
    let b = Bucket::moto("resume");
    let site = Site::new(&[("index.html", b"<p>v1</p>"), ("a.css", b"a{}")]);
    let dir = path_str(site.path());
    cdnsync_moto(&publish_args(&dir, &b.url(""))).ok_json();
    // Simulate the lost release record.
    b.delete(".cdnsync/current");
    let r = cdnsync_moto(&publish_args(&dir, &b.url(""))).ok_json();
    assert_eq!(r["uploaded"], 0, "{r:#}");
    assert_eq!(r["noop"], false, "a release must be recorded again");
    assert!(!b.body(".cdnsync/current").is_empty());
}

#[test]
fn rules_from_config_and_include_of_denied_files() {
    let b = Bucket::moto("rules");
    let site = Site::new(&[
        ("index.html", b"<p>home</p>"),
        ("downloads/report.pdf", b"%PDF-1.4"),
        (".well-known/public.pem", b"-----BEGIN PUBLIC KEY-----"),
        ("secret.pem", b"-----BEGIN PRIVATE KEY-----"),
        ("drafts/x.html", b"draft"),
    ]);
    let cfg_dir = tempfile::tempdir().unwrap();
    let cfg = cfg_dir.path().join("cdnsync.toml");
    std::fs::write(
        &cfg,
        r#"
[cache_control]
default = "public, max-age=60"

[[rules]]
glob = "downloads/**"
cache_control = "public, max-age=3600"
content_disposition = "attachment"

[[rules]]
glob = ".well-known/*.pem"
include = true

[[rules]]
glob = "drafts/**"
include = false
"#,
    )
    .unwrap();
    let dir = path_str(site.path());
    let to = b.url("");
    let mut args = publish_args(&dir, &to);
    let c = path_str(&cfg);
    args.extend(["--config", &c]);
    let r = cdnsync_moto(&args).ok_json();
    assert_eq!(
        keys_with(&r, "upload"),
        [
            ".well-known/public.pem",
            "downloads/report.pdf",
            "index.html"
        ],
        "{r:#}"
    );
    let skipped: Vec<&str> = r["skipped"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["rel"].as_str().unwrap())
        .collect();
    assert_eq!(skipped, ["drafts/x.html", "secret.pem"]);
    let h = b.head("downloads/report.pdf");
    assert_eq!(h.cache_control(), Some("public, max-age=3600"));
    assert_eq!(h.content_disposition(), Some("attachment"));
    assert_eq!(h.content_type(), Some("application/pdf"));
    assert_eq!(
        b.head(".well-known/public.pem").cache_control(),
        Some(ENTRY_CC)
    );

    // Changing a header setting re-uploads for headers only.
    std::fs::write(&cfg, "[cache_control]\ndefault = \"public, max-age=60\"\n[[rules]]\nglob = \"downloads/**\"\ncache_control = \"no-store\"\n[[rules]]\nglob = \".well-known/*.pem\"\ninclude = true\n[[rules]]\nglob = \"drafts/**\"\ninclude = false\n").unwrap();
    let r = cdnsync_moto(&args).ok_json();
    assert_eq!(keys_with(&r, "upload"), ["downloads/report.pdf"], "{r:#}");
    assert_eq!(
        r["objects"]
            .as_array()
            .unwrap()
            .iter()
            .find(|o| o["action"] == "upload")
            .unwrap()["reason"],
        "headers"
    );
    assert_eq!(
        b.head("downloads/report.pdf").cache_control(),
        Some("no-store")
    );
}

#[test]
fn multipart_upload_of_large_files() {
    let b = Bucket::moto("multipart");
    let big: Vec<u8> = (0..(11 * 1024 * 1024 + 333))
        .map(|i| (i * 7 % 253) as u8)
        .collect();
    let site = Site::new(&[("index.html", b"<p>x</p>"), ("media/big.bin", &big)]);
    let dir = path_str(site.path());
    let to = b.url("");
    let mut args = publish_args(&dir, &to);
    args.extend(["--multipart-threshold", "6291456", "--part-size", "5242880"]);
    let r = cdnsync_moto(&args).ok_json();
    assert_eq!(r["uploaded"], 2, "{r:#}");
    let h = b.head("media/big.bin");
    assert_eq!(h.content_length(), Some(big.len() as i64));
    assert_eq!(
        h.server_side_encryption()
            .map(aws_sdk_s3::types::ServerSideEncryption::as_str),
        Some("AES256")
    );
    assert_eq!(
        h.metadata().unwrap()["cdnsync-hash"],
        blake3::hash(&big).to_hex().as_str()
    );
    assert_eq!(b.body("media/big.bin"), big);
    // The stored body went up in 3 parts (a multipart ETag has a `-N` suffix).
    let body_key = format!(".cdnsync/objects/{}", blake3::hash(&big).to_hex());
    let hb = b.head(&body_key);
    assert!(hb.e_tag().unwrap().contains("-3"), "{:?}", hb.e_tag());
    let r = cdnsync_moto(&args).ok_json();
    assert_eq!(r["uploaded"], 0, "{r:#}");
}

#[test]
fn sse_kms_and_switching_encryption_reuploads() {
    let b = Bucket::moto("kms");
    let site = Site::new(&[("index.html", b"<p>x</p>"), ("a.css", b"a{}")]);
    let dir = path_str(site.path());
    cdnsync_moto(&publish_args(&dir, &b.url(""))).ok_json();
    let to = b.url("");
    let mut args = publish_args(&dir, &to);
    args.extend(["--sse", "aws:kms", "--sse-kms-key-id", "alias/site"]);
    let r = cdnsync_moto(&args).ok_json();
    assert_eq!(r["uploaded"], 2, "{r:#}");
    let h = b.head("index.html");
    assert_eq!(
        h.server_side_encryption()
            .map(aws_sdk_s3::types::ServerSideEncryption::as_str),
        Some("aws:kms")
    );
    assert!(
        h.ssekms_key_id().unwrap_or_default().contains("alias/site"),
        "{:?}",
        h.ssekms_key_id()
    );
}

#[test]
fn ctrl_c_records_nothing_and_rerun_converges() {
    let b = Bucket::moto("sigint");
    let files: Vec<(String, Vec<u8>)> = (0..400)
        .map(|i| {
            (
                format!("p/{i:04}.html"),
                format!("<p>page {i}</p>").into_bytes(),
            )
        })
        .collect();
    let site = Site::from_files(&files);
    let dir = path_str(site.path());
    let (mut child, _cwd) =
        cdnsync_moto(&["publish", &dir, "--to", &b.url(""), "--concurrency", "4"]).spawn();
    // Wait until some bodies are stored (phase 1), then interrupt.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    while b.keys(".cdnsync/objects/").len() < 10 && std::time::Instant::now() < deadline {
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    unsafe_kill(child.id(), 2);
    let status = child.wait().unwrap();
    assert_eq!(status.code(), Some(130));
    assert!(
        b.keys(".cdnsync/releases/").is_empty() && b.keys(".cdnsync/current").is_empty(),
        "no release may be recorded"
    );
    assert!(
        b.keys("p/").is_empty(),
        "an interrupt in phase 1 leaves the live site untouched"
    );
    let n = b.keys(".cdnsync/objects/").len();
    assert!(
        n < 400,
        "interrupt came too late to test anything ({n} stored)"
    );
    let r = cdnsync_moto(&publish_args(&dir, &b.url(""))).ok_json();
    assert_eq!(
        r["bodies_stored"].as_u64().unwrap() as usize,
        400 - n,
        "rerun stores only the rest"
    );
    assert_eq!(r["uploaded"], 400);
    assert_eq!(b.keys("p/").len(), 400);
}

fn unsafe_kill(pid: u32, sig: i32) {
    let ok = std::process::Command::new("kill")
        .arg(format!("-{sig}"))
        .arg(pid.to_string())
        .status()
        .unwrap()
        .success();
    assert!(ok);
}

/// The remote read trusts the release record for which stored bodies exist
/// (it does not list `.cdnsync/`); a body deleted behind its back is stored
/// again at switch time instead of failing every publish.
#[test]
fn a_missing_stored_body_is_stored_again() {
    let b = Bucket::moto("bodyheal");
    let site = Site::new(&[("a.html", b"<p>same</p>"), ("b.html", b"<p>other</p>")]);
    let dir = path_str(site.path());
    let to = b.url("");
    cdnsync_moto(&publish_args(&dir, &to)).ok_json();
    let bodies = b.keys(".cdnsync/objects/");
    assert_eq!(bodies.len(), 2, "{bodies:?}");
    // Delete every stored body, then publish b.html with a.html's content:
    // its body is "known" from the record but gone.
    for k in &bodies {
        b.delete(k);
    }
    site.write("b.html", b"<p>same</p>");
    let r = cdnsync_moto(&publish_args(&dir, &to)).ok_json();
    assert_eq!(r["uploaded"], 1, "{r}");
    assert_eq!(b.body("b.html"), b"<p>same</p>");
    assert!(
        !b.keys(".cdnsync/objects/").is_empty(),
        "the body was stored again"
    );
}
