//! Releases, rollback and the publish lock, against moto and a local target.

use crate::util::*;

const LOCKED: i32 = 7;

fn site_v(v: &str) -> Site {
    Site::new(&[
        (
            "index.html",
            format!("<link rel=stylesheet href=\"/css/site.css\"><h1>{v}</h1>").as_bytes(),
        ),
        ("about/index.html", b"<p>about</p>"),
        (
            "css/site.css",
            format!("h1::after{{content:\"{v}\"}}").as_bytes(),
        ),
        ("docs/guide.pdf", format!("%PDF {v}").as_bytes()),
    ])
}

#[test]
fn rollback_restores_pages_byte_for_byte_without_local_files() {
    let b = Bucket::moto("rollback");
    let to = b.url("www");
    let v1 = site_v("v1");
    let v1_dir = path_str(v1.path());
    let mut args = publish_args(&v1_dir, &to);
    args.extend(["--message", "first"]);
    let r1 = cdnsync_moto(&args).ok_json();
    let page_v1 = b.body("www/index.html");
    let pdf_v1 = b.body("www/docs/guide.pdf");

    let v2 = site_v("v2");
    v2.write("new.html", b"<p>only in v2</p>");
    let r2 = cdnsync_moto(&publish_args(&path_str(v2.path()), &to)).ok_json();
    assert_ne!(b.body("www/index.html"), page_v1);
    drop(v1);
    drop(v2);

    // releases lists both, the second live.
    let list = cdnsync_moto(&["releases", "--to", &to, "--json"]).ok_json();
    let ids: Vec<&str> = list
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["id"].as_str().unwrap())
        .collect();
    assert_eq!(
        ids,
        [
            r1["release"].as_str().unwrap(),
            r2["release"].as_str().unwrap()
        ]
    );
    assert_eq!(list[1]["live"], true);
    assert_eq!(list[0]["message"], "first");
    // 4 files and the stylesheet's original URL.
    assert_eq!(list[0]["files"], 5);

    // Dry run changes nothing.
    let d = cdnsync_moto(&["rollback", "--to", &to, "--json", "--dry-run"]).ok_json();
    assert_eq!(d["rolled_back_to"], r1["release"]);
    assert!(b.keys("www/").contains(&"www/new.html".to_string()));

    let rb = cdnsync_moto(&["rollback", "--to", &to, "--json"]).ok_json();
    assert_eq!(rb["rolled_back_to"], r1["release"]);
    let restored: Vec<&str> = rb["restored"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap())
        .collect();
    assert_eq!(
        restored,
        ["www/css/site.css", "www/docs/guide.pdf", "www/index.html"]
    );
    assert_eq!(rb["deleted"], serde_json::json!(["www/new.html"]));
    // Byte for byte, with the headers.
    assert_eq!(b.body("www/index.html"), page_v1);
    assert_eq!(b.body("www/docs/guide.pdf"), pdf_v1);
    let h = b.head("www/index.html");
    assert_eq!(
        h.cache_control(),
        Some("public, max-age=0, must-revalidate")
    );
    assert_eq!(h.content_type(), Some("text/html; charset=utf-8"));
    assert_eq!(
        h.server_side_encryption()
            .map(aws_sdk_s3::types::ServerSideEncryption::as_str),
        Some("AES256")
    );
    assert!(!b.keys("www/").contains(&"www/new.html".to_string()));
    // The stylesheet v1's page names is still there (old assets are kept).
    let page = String::from_utf8(page_v1).unwrap();
    let css = page
        .split("href=\"/")
        .nth(1)
        .unwrap()
        .split('"')
        .next()
        .unwrap();
    assert!(b.keys("www/").contains(&format!("www/{css}")), "{css}");
    // A new release records the rollback and is live.
    let live = String::from_utf8(b.body("www/.cdnsync/current")).unwrap();
    assert_eq!(live.trim(), rb["release"].as_str().unwrap());
    let list = cdnsync_moto(&["releases", "--to", &to, "--json"]).ok_json();
    assert_eq!(list[2]["rollback_of"], r1["release"]);

    // Publishing v1 again now is a no-op apart from recording nothing new.
    let again = cdnsync_moto(&publish_args(&path_str(site_v("v1").path()), &to)).ok_json();
    assert_eq!(again["uploaded"], 0, "{again:#}");
}

#[test]
fn rollback_on_a_local_target_and_refusals() {
    let (_t, out) = tmp_target();
    let to = path_str(&out);
    let e = cdnsync(&["rollback", "--to", &to]).fails(2);
    assert!(e.contains("nothing has been published"), "{e}");
    let v1 = site_v("v1");
    cdnsync(&publish_args(&path_str(v1.path()), &to)).ok_json();
    let e = cdnsync(&["rollback", "--to", &to]).fails(2);
    assert!(e.contains("nothing to roll back to"), "{e}");
    let page_v1 = std::fs::read(out.join("index.html")).unwrap();
    cdnsync(&publish_args(&path_str(site_v("v2").path()), &to)).ok_json();
    cdnsync(&["rollback", "--to", &to]).ok_json_or_text();
    assert_eq!(std::fs::read(out.join("index.html")).unwrap(), page_v1);

    // A release whose stored bodies are gone is refused before anything changes.
    let ids = cdnsync(&["releases", "--to", &to, "--json"]).ok_json();
    let first = ids[0]["id"].as_str().unwrap().to_string();
    let live_page = std::fs::read(out.join("index.html")).unwrap();
    std::fs::remove_dir_all(out.join(".cdnsync/objects")).unwrap();
    cdnsync(&publish_args(&path_str(site_v("v3").path()), &to)).ok_json();
    let v3_page = std::fs::read(out.join("index.html")).unwrap();
    assert_ne!(v3_page, live_page);
    let e = cdnsync(&["rollback", "--to", &to, &first]).fails(5);
    assert!(e.contains("cannot roll back"), "{e}");
    assert_eq!(std::fs::read(out.join("index.html")).unwrap(), v3_page);
}

#[test]
fn concurrent_publishes_one_proceeds_the_other_fails_or_waits() {
    let b = Bucket::moto("lock");
    let files: Vec<(String, Vec<u8>)> = (0..300)
        .map(|i| (format!("p/{i:04}.html"), format!("<p>{i}</p>").into_bytes()))
        .collect();
    let site = Site::from_files(&files);
    let dir = path_str(site.path());
    let to = b.url("");
    let (mut first, _c1) =
        cdnsync_moto(&["publish", &dir, "--to", &to, "--concurrency", "4"]).spawn();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    while b.keys(".cdnsync/lock").is_empty() && std::time::Instant::now() < deadline {
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
    assert!(
        !b.keys(".cdnsync/lock").is_empty(),
        "the first publish never took the lock"
    );
    // A second publish fails at once, naming the holder.
    let e = cdnsync_moto(&publish_args(&dir, &to)).fails(LOCKED);
    assert!(
        e.contains(".cdnsync/lock` is held by") && e.contains("(publish, started"),
        "{e}"
    );
    let info = cdnsync_moto(&["unlock", "--to", &to]).run();
    assert!(info.stdout.contains("locked by"), "{}", info.stdout);
    // A third waits for it and then finds nothing to do.
    let mut args = publish_args(&dir, &to);
    args.extend(["--wait-lock", "60s"]);
    let waited = cdnsync_moto(&args).ok_json();
    assert!(first.wait().unwrap().success());
    assert_eq!(waited["uploaded"], 0, "{waited:#}");
    assert!(b.keys(".cdnsync/lock").is_empty(), "lock released");
    // A lock left by a killed run: unlock --force clears it.
    b.put(".cdnsync/lock", br#"{"id":"x","holder":"ghost","command":"publish","started":"2026-01-01T00:00:00Z","refreshed":"2099-01-01T00:00:00Z","ttl_secs":600}"#);
    cdnsync_moto(&publish_args(&dir, &to)).fails(LOCKED);
    let r = cdnsync_moto(&["unlock", "--to", &to, "--force"]).run();
    assert!(
        r.stdout.contains("removed the lock held by ghost"),
        "{}",
        r.stdout
    );
    cdnsync_moto(&publish_args(&dir, &to)).ok_json();
}

#[test]
fn gc_keeps_what_kept_releases_and_grace_need() {
    let b = Bucket::moto("gc");
    let to = b.url("");
    let mut css_keys = Vec::new();
    for v in ["v1", "v2", "v3"] {
        let s = site_v(v);
        let r = cdnsync_moto(&publish_args(&path_str(s.path()), &to)).ok_json();
        assert_eq!(r["gc_deleted"], 0, "default grace keeps everything");
        let css = r["objects"]
            .as_array()
            .unwrap()
            .iter()
            .find(|o| o["logical"] == "css/site.css")
            .unwrap();
        css_keys.push(css["key"].as_str().unwrap().to_string());
    }
    b.put("hand-made.txt", b"not cdnsync's");
    let keys = b.keys("");
    assert!(css_keys.iter().all(|k| keys.contains(k)));

    // Defaults (keep 5, grace 7d): all three releases are kept whole.
    let r = cdnsync_moto(&["gc", "--to", &to, "--json"]).ok_json();
    assert_eq!(
        (r["deleted"].as_u64(), r["in_grace"].as_u64()),
        (Some(0), Some(0)),
        "{r:#}"
    );
    // Keep 1: v1's and v2's objects are unreferenced, but within the grace period.
    let r = cdnsync_moto(&["gc", "--to", &to, "--json", "--keep", "1"]).ok_json();
    assert_eq!(r["deleted"], 0, "{r:#}");
    assert!(r["in_grace"].as_u64().unwrap() >= 2, "{r:#}");
    // No grace, keep 2: v1's stylesheet and bodies go, v2's and v3's stay.
    let r = cdnsync_moto(&[
        "gc",
        "--to",
        &to,
        "--json",
        "--keep",
        "2",
        "--grace",
        "0s",
        "--dry-run",
    ])
    .ok_json();
    assert!(
        r["delete"]
            .as_array()
            .unwrap()
            .iter()
            .any(|k| k == css_keys[0].as_str()),
        "{r:#}"
    );
    assert!(b.keys("").contains(&css_keys[0]), "dry run deletes nothing");
    let r = cdnsync_moto(&["gc", "--to", &to, "--json", "--keep", "2", "--grace", "0s"]).ok_json();
    assert!(r["deleted"].as_u64().unwrap() >= 1, "{r:#}");
    let keys = b.keys("");
    assert!(!keys.contains(&css_keys[0]));
    assert!(keys.contains(&css_keys[1]) && keys.contains(&css_keys[2]));
    assert!(keys.contains(&"hand-made.txt".to_string()));
    // The collected release can no longer be rolled back to; the kept one can.
    let list = cdnsync_moto(&["releases", "--to", &to, "--json"]).ok_json();
    assert_eq!(
        list.as_array().unwrap().len(),
        2,
        "v1's record went with its objects"
    );
    let r = cdnsync_moto(&["rollback", "--to", &to, "--json"]).ok_json();
    assert_eq!(r["rolled_back_to"], list[0]["id"]);
}

#[test]
fn gc_on_a_local_target() {
    let (_t, out) = tmp_target();
    let to = path_str(&out);
    let mut css = Vec::new();
    for v in ["v1", "v2"] {
        let s = site_v(v);
        let r = cdnsync(&publish_args(&path_str(s.path()), &to)).ok_json();
        css.push(
            r["objects"]
                .as_array()
                .unwrap()
                .iter()
                .find(|o| o["logical"] == "css/site.css")
                .unwrap()["key"]
                .as_str()
                .unwrap()
                .to_string(),
        );
    }
    assert!(out.join(&css[0]).is_file() && out.join(&css[1]).is_file());
    let r = cdnsync(&["gc", "--to", &to, "--json", "--keep", "1", "--grace", "0s"]).ok_json();
    assert!(r["deleted"].as_u64().unwrap() >= 1, "{r:#}");
    assert!(!out.join(&css[0]).exists(), "v1's stylesheet collected");
    assert!(out.join(&css[1]).is_file(), "the live stylesheet kept");
    assert!(
        !out.join(".cdnsync-store/meta")
            .join(format!("{}.json", css[0]))
            .exists(),
        "its sidecar too"
    );
}

#[test]
fn old_bundler_chunks_outlive_the_publish_that_drops_them() {
    let (_t, out) = tmp_target();
    let to = path_str(&out);
    let v1 = Site::new(&[
        (
            "index.html",
            b"<script type=module src=\"/assets/index-B4x9Tz2k.js\"></script>",
        ),
        ("assets/index-B4x9Tz2k.js", b"import('./lazy-C1a2b3c4.js')"),
        ("assets/lazy-C1a2b3c4.js", b"export default 1"),
        ("assets/other-D9z8y7x6.js", b"export default 2"),
    ]);
    cdnsync(&publish_args(&path_str(v1.path()), &to)).ok_json();
    // The next build has new chunk names; an open tab still runs the old index
    // and will import the old lazy chunk.
    let v2 = Site::new(&[
        (
            "index.html",
            b"<script type=module src=\"/assets/index-E5f6g7h8.js\"></script>",
        ),
        ("assets/index-E5f6g7h8.js", b"import('./lazy-F1f2f3f4.js')"),
        ("assets/lazy-F1f2f3f4.js", b"export default 3"),
        ("assets/other-D9z8y7x6.js", b"export default 2"),
    ]);
    let r = cdnsync(&publish_args(&path_str(v2.path()), &to)).ok_json();
    assert_eq!(r["deleted"], 0, "{r:#}");
    assert!(
        out.join("assets/lazy-C1a2b3c4.js").is_file(),
        "old chunk kept for the grace period"
    );
    // Once the grace period is over, gc removes them.
    cdnsync(&["gc", "--to", &to, "--keep", "1", "--grace", "0s"]).ok_json_or_text();
    assert!(!out.join("assets/lazy-C1a2b3c4.js").exists());
    assert!(!out.join("assets/index-B4x9Tz2k.js").exists());
    assert!(
        out.join("assets/lazy-F1f2f3f4.js").is_file()
            && out.join("assets/other-D9z8y7x6.js").is_file()
    );
}
