//! `cdnsync migrate` against moto: every file once, verified, with the right
//! headers; odd names handled or reported; reruns upload nothing; shards
//! cover the tree exactly once; the URL map resolves; kills converge.

use std::collections::BTreeSet;
use std::os::unix::ffi::OsStrExt;

use crate::util::*;

fn uploads_tree() -> (Site, Vec<(String, Vec<u8>)>) {
    let big: Vec<u8> = (0..(11 * 1024 * 1024 + 3))
        .map(|i| (i % 239) as u8)
        .collect();
    let long = format!("deep/{}.jpg", "n".repeat(200));
    let files: Vec<(String, Vec<u8>)> = vec![
        ("2024/01/photo one.jpg".into(), b"JPEG1".to_vec()),
        ("2024/01/a+b%20c#d?e.png".into(), b"PNG".to_vec()),
        ("2024/02/caf\u{65}\u{301}.gif".into(), b"GIF-NFD".to_vec()), // NFD on disk
        (
            "docs/page.html".into(),
            b"<script>alert(1)</script>".to_vec(),
        ),
        ("docs/logo.svg".into(), b"<svg/>".to_vec()),
        ("empty.txt".into(), Vec::new()),
        ("video/big.bin".into(), big),
        (long, b"long".to_vec()),
    ];
    let site = Site::from_files(&files);
    // Names S3/CloudFront handle badly: reported and skipped.
    std::fs::write(
        site.path()
            .join(std::ffi::OsStr::from_bytes(b"bad\xffname.jpg")),
        b"x",
    )
    .unwrap();
    std::fs::write(site.path().join("bell\u{7}.jpg"), b"x").unwrap();
    std::fs::write(site.path().join("back\\slash.jpg"), b"x").unwrap();
    (site, files)
}

fn migrate_args<'a>(src: &'a str, to: &'a str, extra: &[&'a str]) -> Vec<&'a str> {
    let mut v = vec![
        "migrate",
        src,
        "--to",
        to,
        "--json",
        "--multipart-threshold",
        "6291456",
        "--part-size",
        "5242880",
    ];
    v.extend(extra);
    v
}

#[test]
fn migrates_every_file_once_verified_with_headers_and_url_map() {
    let b = Bucket::moto("migrate");
    let (site, files) = uploads_tree();
    let src = path_str(site.path());
    let to = b.url("uploads");
    let maps = tempfile::tempdir().unwrap();
    let map_dir = path_str(maps.path());

    // Dry run: nothing written.
    let r = cdnsync_moto(&migrate_args(&src, &to, &["--dry-run"])).ok_json();
    assert_eq!(r["uploaded"], files.len(), "{r:#}");
    assert!(b.keys("").is_empty());

    let r = cdnsync_moto(&migrate_args(
        &src,
        &to,
        &[
            "--base-url",
            "https://example.com/uploads/",
            "--cdn-url",
            "https://cdn.example.com/",
            "--map-dir",
            &map_dir,
        ],
    ))
    .ok_json();
    assert_eq!(r["uploaded"], files.len(), "{r:#}");
    let skipped: BTreeSet<String> = r["skipped"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["reason"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(
        skipped,
        [
            "backslash in the name",
            "control character in the name",
            "name is not valid UTF-8"
        ]
        .iter()
        .map(std::string::ToString::to_string)
        .collect()
    );

    // Keys: relative paths, NFC; bytes, headers, encryption, hash.
    let keys: BTreeSet<String> = b.keys("uploads/").into_iter().collect();
    assert_eq!(keys.len(), files.len(), "{keys:?}");
    assert!(
        keys.contains("uploads/2024/02/caf\u{e9}.gif"),
        "NFC key: {keys:?}"
    );
    for (rel, body) in &files {
        let key = format!("uploads/{}", rel.replace("e\u{301}", "\u{e9}"));
        assert_eq!(b.body(&key), *body, "{key}");
        let h = b.head(&key);
        assert_eq!(
            h.server_side_encryption()
                .map(aws_sdk_s3::types::ServerSideEncryption::as_str),
            Some("AES256"),
            "{key}"
        );
        assert_eq!(h.cache_control(), Some("public, max-age=86400"));
        assert_eq!(h.content_encoding(), None, "no precompression");
        assert_eq!(
            h.metadata().unwrap()["cdnsync-hash"],
            blake3::hash(body).to_hex().as_str()
        );
    }
    assert_eq!(
        b.head("uploads/docs/page.html").content_disposition(),
        Some("attachment")
    );
    assert_eq!(
        b.head("uploads/docs/logo.svg").content_disposition(),
        Some("attachment")
    );
    assert_eq!(
        b.head("uploads/2024/01/photo one.jpg").content_type(),
        Some("image/jpeg")
    );
    assert_eq!(
        b.head("uploads/2024/01/photo one.jpg")
            .content_disposition(),
        None
    );

    // url-map.csv: every new URL names an object on the server.
    let csv = std::fs::read_to_string(maps.path().join("url-map.csv")).unwrap();
    let mut rows = csv.lines();
    assert_eq!(rows.next(), Some("old_url,new_url,size,blake3"));
    let rows: Vec<&str> = rows.collect();
    assert_eq!(rows.len(), files.len());
    for row in &rows {
        let new = row.split(',').nth(1).unwrap();
        let path = url::Url::parse(new).unwrap().path().to_string();
        let key = percent_encoding::percent_decode_str(path.trim_start_matches('/'))
            .decode_utf8()
            .unwrap()
            .to_string();
        assert!(keys.contains(&key), "{row} -> {key}");
        assert!(row.starts_with("https://example.com/uploads/"), "{row}");
    }
    let nginx = std::fs::read_to_string(maps.path().join("nginx-redirects.conf")).unwrap();
    assert!(nginx.contains("\"/uploads/2024/01/photo%20one.jpg\" \"https://cdn.example.com/uploads/2024/01/photo%20one.jpg\";"), "{nginx}");
    assert!(nginx.contains("return 301 $cdnsync_new_url"));

    // Rerun: nothing to do. A changed file: exactly that one.
    let r = cdnsync_moto(&migrate_args(&src, &to, &[])).ok_json();
    assert_eq!(
        (r["uploaded"].as_u64(), r["unchanged"].as_u64()),
        (Some(0), Some(files.len() as u64)),
        "{r:#}"
    );
    site.write("2024/01/photo one.jpg", b"JPEG2");
    let r = cdnsync_moto(&migrate_args(&src, &to, &[])).ok_json();
    assert_eq!(r["uploaded"], 1, "{r:#}");
    assert_eq!(b.body("uploads/2024/01/photo one.jpg"), b"JPEG2");
}

#[test]
fn shards_cover_the_tree_exactly_once() {
    let b = Bucket::moto("shards");
    let files: Vec<(String, Vec<u8>)> = (0..120)
        .map(|i| (format!("u/{}/{i}.jpg", i % 7), format!("{i}").into_bytes()))
        .collect();
    let site = Site::from_files(&files);
    let src = path_str(site.path());
    let to = b.url("");
    let mut total = 0;
    for i in 0..4 {
        let shard = format!("{i}/4");
        let r =
            cdnsync_moto(&["migrate", &src, "--to", &to, "--json", "--shard", &shard]).ok_json();
        assert_eq!(r["unchanged"], 0, "shards overlap: {r:#}");
        total += r["uploaded"].as_u64().unwrap();
    }
    assert_eq!(total, 120);
    assert_eq!(b.keys("u/").len(), 120);
    let e = cdnsync_moto(&["migrate", &src, "--to", &to, "--shard", "4/4"]).fails(2);
    assert!(e.contains("invalid shard"), "{e}");
}

#[test]
fn killed_migration_reruns_to_every_file_once() {
    let b = Bucket::moto("migkill");
    let files: Vec<(String, Vec<u8>)> = (0..400)
        .map(|i| (format!("f/{i:04}.jpg"), format!("img {i}").into_bytes()))
        .collect();
    let site = Site::from_files(&files);
    let src = path_str(site.path());
    let to = b.url("");
    let (mut child, _cwd) =
        cdnsync_moto(&["migrate", &src, "--to", &to, "--concurrency", "4"]).spawn();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    while b.keys("f/").len() < 20 && std::time::Instant::now() < deadline {
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
    child.kill().unwrap(); // SIGKILL
    child.wait().unwrap();
    let n = b.keys("f/").len();
    assert!(n < 400, "killed too late ({n})");
    let r = cdnsync_moto(&["migrate", &src, "--to", &to, "--json"]).ok_json();
    assert_eq!(
        r["uploaded"].as_u64().unwrap() + r["unchanged"].as_u64().unwrap(),
        400
    );
    assert!(
        r["uploaded"].as_u64().unwrap() as usize <= 400 - n + 4,
        "rerun re-uploaded finished files: {r:#}"
    );
    let r = cdnsync_moto(&["migrate", &src, "--to", &to, "--json"]).ok_json();
    assert_eq!(r["unchanged"], 400, "every file present once and verified");
    assert_eq!(b.keys("f/").len(), 400);
}

#[test]
fn verify_reports_mismatches_and_delete_source_removes_only_verified_files() {
    let b = Bucket::moto("migverify");
    let files: Vec<(String, Vec<u8>)> = (0..10)
        .map(|i| (format!("u/{i}.jpg"), format!("img {i}").into_bytes()))
        .collect();
    let site = Site::from_files(&files);
    let src = path_str(site.path());
    let to = b.url("");
    cdnsync_moto(&["migrate", &src, "--to", &to, "--json", "--rate", "200"]).ok_json();
    let r = cdnsync_moto(&["migrate", &src, "--to", &to, "--json", "--verify"]).ok_json();
    assert_eq!(r["verified"], 10, "{r:#}");

    // Someone overwrote one object; one file changed locally; one is new locally.
    b.put("u/3.jpg", b"tampered");
    site.write("u/5.jpg", b"img 5 edited");
    site.write("u/new.jpg", b"not migrated yet");
    let report = tempfile::tempdir().unwrap();
    let rp = path_str(&report.path().join("r.json"));
    let e = cdnsync_moto(&["migrate", &src, "--to", &to, "--verify", "--report", &rp]).fails(9);
    assert!(e.contains("3 file(s) failed or did not verify"), "{e}");
    let rep: serde_json::Value = serde_json::from_slice(&std::fs::read(&rp).unwrap()).unwrap();
    let bad: BTreeSet<&str> = rep["mismatches"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["path"].as_str().unwrap())
        .collect();
    assert_eq!(
        bad,
        ["u/3.jpg", "u/5.jpg", "u/new.jpg"].into_iter().collect()
    );

    // Delete-source: only files whose remote copy is identical go.
    let e = cdnsync_moto(&[
        "migrate",
        &src,
        "--to",
        &to,
        "--delete-source",
        "--report",
        &rp,
    ])
    .fails(9);
    assert!(e.contains("did not verify"), "{e}");
    let left: BTreeSet<String> = std::fs::read_dir(site.path().join("u"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(
        left,
        ["3.jpg", "5.jpg", "new.jpg"]
            .iter()
            .map(std::string::ToString::to_string)
            .collect()
    );
    // The bucket was not touched by either step.
    assert_eq!(b.body("u/3.jpg"), b"tampered");
    assert_eq!(b.keys("u/").len(), 10);
}

#[test]
fn state_journal_makes_reruns_skip_the_listing() {
    let b = Bucket::moto("migstate");
    let files: Vec<(String, Vec<u8>)> = (0..50)
        .map(|i| (format!("s/{i}.jpg"), format!("img {i}").into_bytes()))
        .collect();
    let site = Site::from_files(&files);
    let src = path_str(site.path());
    let to = b.url("");
    let st = tempfile::tempdir().unwrap();
    let state = path_str(&st.path().join("m.journal"));
    let proxy = SlowProxy::start(&moto_endpoint(), std::time::Duration::ZERO);
    let run = |extra: &[&str]| {
        let mut args = vec![
            "migrate",
            src.as_str(),
            "--to",
            to.as_str(),
            "--json",
            "--state",
            state.as_str(),
        ];
        args.extend(extra);
        cdnsync(&args)
            .env("AWS_ACCESS_KEY_ID", "test")
            .env("AWS_SECRET_ACCESS_KEY", "test")
            .env("AWS_REGION", "us-east-1")
            .env("CDNSYNC_ENDPOINT_URL", &proxy.endpoint)
            .ok_json()
    };
    let r = run(&[]);
    assert_eq!(r["uploaded"], 50, "{r:#}");
    // Rerun: only the bucket check, no listing, no HEAD, nothing uploaded.
    let before = proxy.count();
    let r = run(&[]);
    assert_eq!(
        (r["uploaded"].as_u64(), r["unchanged"].as_u64()),
        (Some(0), Some(50)),
        "{r:#}"
    );
    assert!(
        proxy.count() - before <= 1,
        "rerun made {} requests",
        proxy.count() - before
    );
    // A changed file is seen (size/mtime differ) and only it is uploaded.
    site.write("s/7.jpg", b"img 7 v2");
    let r = run(&[]);
    assert_eq!(r["uploaded"], 1, "{r:#}");
    assert_eq!(b.body("s/7.jpg"), b"img 7 v2");
}
