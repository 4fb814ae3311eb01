//! Trust boundaries (issue 16): gc never deletes what a live release
//! needs, what is read back from a bucket is validated and bounded, and
//! local targets and `serve` never reach outside their directory.

use crate::util::*;

#[test]
fn gc_never_deletes_a_module_the_live_release_serves_under_another_class() {
    let b = Bucket::moto("gc-class");
    let to = b.url("site");
    let site = Site::new(&[
        (
            "index.html",
            b"<script type=module src=\"js/app-B4x9Tz2k.js\"></script>",
        ),
        ("js/app-B4x9Tz2k.js", b"console.log(1)"),
    ]);
    let dir = path_str(site.path());
    cdnsync_moto(&publish_args(&dir, &to)).ok_json();
    // The same file, now an entry by rule: the live release lists it as a
    // stable name, an older one as bundler output.
    site.write(
        "cdnsync.toml",
        b"[[rules]]\nglob = \"js/*.js\"\nclass = \"entry\"\n",
    );
    let cfg = path_str(&site.path().join("cdnsync.toml"));
    let mut args = publish_args(&dir, &to);
    args.extend(["--config", &cfg]);
    cdnsync_moto(&args).ok_json();
    let r = cdnsync_moto(&["gc", "--to", &to, "--keep", "1", "--grace", "0s", "--json"]).ok_json();
    assert!(
        b.keys("site/js/")
            .contains(&"site/js/app-B4x9Tz2k.js".to_string()),
        "gc deleted the live module: {r:#}"
    );
    assert!(broken_references(&b).is_empty());
}

#[test]
fn a_forged_older_record_is_refused_and_nothing_is_deleted() {
    let b = Bucket::moto("gc-forged");
    let to = b.url("site");
    let site = Site::new(&[("index.html", b"<p>live</p>"), ("a.css", b"a{}")]);
    let dir = path_str(site.path());
    cdnsync_moto(&publish_args(&dir, &to)).ok_json();
    site.write("index.html", b"<p>live v2</p>");
    cdnsync_moto(&publish_args(&dir, &to)).ok_json();
    // An older record (sorts first) calling the live page and cdnsync's
    // pointer assets.
    let h = "ab".repeat(32);
    let forged = format!(
        r#"{{"format":1,"id":"20000101T000000.000Z-00000000","created":"2000-01-01T00:00:00Z","tool":"x","files":{{
        "index.html":{{"hash":"{h}","size":1,"stored_size":1,"headers":"00","class":"asset","content_type":"t","cache_control":"c"}},
        ".cdnsync/current":{{"hash":"{h}","size":1,"stored_size":1,"headers":"00","class":"asset","content_type":"t","cache_control":"c"}}}}}}"#
    );
    b.put(
        "site/.cdnsync/releases/20000101T000000.000Z-00000000.json",
        forged.as_bytes(),
    );
    let before = b.keys("site/");
    let err = cdnsync_moto(&["gc", "--to", &to, "--keep", "1", "--grace", "0s"]).fails(5);
    assert!(
        err.contains("20000101T000000.000Z-00000000.json") && err.contains(".cdnsync/current"),
        "{err}"
    );
    assert_eq!(b.keys("site/"), before, "nothing deleted");
}

#[test]
fn a_huge_current_is_not_read() {
    let b = Bucket::moto("huge-current");
    let to = b.url("site");
    let site = Site::new(&[("index.html", b"<p>x</p>")]);
    cdnsync_moto(&publish_args(&path_str(site.path()), &to)).ok_json();
    b.put("site/.cdnsync/current", &vec![b'a'; 20 << 20]);
    for args in [
        publish_args(&path_str(site.path()), &to),
        vec!["releases", "--to", &to],
        vec!["rollback", "--to", &to],
        vec!["gc", "--to", &to],
    ] {
        let err = cdnsync_moto(&args).fails(5);
        assert!(
            err.contains(".cdnsync/current") && err.contains("not read"),
            "{args:?}: {err}"
        );
    }
}

#[test]
fn a_forged_rollback_target_cannot_write_cdnsync_keys() {
    let b = Bucket::moto("forged-rollback");
    let to = b.url("site");
    let site = Site::new(&[("index.html", b"<p>x</p>")]);
    let dir = path_str(site.path());
    cdnsync_moto(&publish_args(&dir, &to)).ok_json();
    let live = b.body("site/.cdnsync/current");
    let h = "ab".repeat(32);
    let id = "20000101T000000.000Z-00000001";
    let forged = format!(
        r#"{{"format":1,"id":"{id}","created":"2000-01-01T00:00:00Z","tool":"x","files":{{
        ".cdnsync/releases/{id}.json":{{"hash":"{h}","size":1,"stored_size":1,"headers":"00","class":"entry","content_type":"t","cache_control":"c","body":"objects/{h}"}}}}}}"#
    );
    b.put(
        &format!("site/.cdnsync/releases/{id}.json"),
        forged.as_bytes(),
    );
    let before = b.snapshot();
    let err = cdnsync_moto(&["rollback", "--to", &to, id]).fails(5);
    assert!(
        err.contains("invalid") && err.contains(".cdnsync/"),
        "{err}"
    );
    assert_eq!(b.body("site/.cdnsync/current"), live);
    assert_kept(&before, &b.snapshot(), "after a refused rollback");
    // An id that is not one is refused before any request.
    let err = cdnsync_moto(&["rollback", "--to", &to, "../../x"]).fails(2);
    assert!(err.contains("not a release id"), "{err}");
}

#[test]
fn serve_serves_only_what_was_published() {
    let site = sample_site();
    let (_t, out) = tmp_target();
    cdnsync(&publish_args(&path_str(site.path()), &path_str(&out))).ok_json();
    std::os::unix::fs::symlink("/etc/passwd", out.join("passwd.txt")).unwrap();
    std::fs::write(out.join(".env"), "SECRET=1").unwrap();
    std::os::unix::fs::symlink("/etc", out.join("etc")).unwrap();
    // A sidecar with a multibyte hash (served from a worker: no panic).
    let side = out.join(".cdnsync-store/meta/robots.txt.json");
    let mut v: serde_json::Value = serde_json::from_slice(&std::fs::read(&side).unwrap()).unwrap();
    v["metadata"]["cdnsync-hash"] = "é".repeat(40).into();
    std::fs::write(&side, serde_json::to_vec(&v).unwrap()).unwrap();
    let srv = serve(&out);
    for p in ["/passwd.txt", "/.env", "/etc/passwd", "/etc/hostname"] {
        let r = http("GET", &format!("{}{p}", srv.base), &[]);
        assert_eq!(r.status, 404, "{p}");
        assert!(!String::from_utf8_lossy(&r.body).contains("root:"), "{p}");
    }
    assert_eq!(
        http("GET", &format!("{}/robots.txt", srv.base), &[]).status,
        200
    );
    assert_eq!(http("GET", &format!("{}/", srv.base), &[]).status, 200);
}

#[test]
fn a_symlinked_folder_inside_a_local_target_is_never_written_through() {
    let site = Site::new(&[("index.html", b"<p>x</p>"), ("docs/a.html", b"<p>a</p>")]);
    let (t, out) = tmp_target();
    let outside = t.path().join("outside");
    std::fs::create_dir_all(&outside).unwrap();
    std::fs::create_dir_all(&out).unwrap();
    std::os::unix::fs::symlink(&outside, out.join("docs")).unwrap();
    let r = cdnsync(&publish_args(&path_str(site.path()), &path_str(&out))).run();
    assert_ne!(r.code, 0, "{}", r.stdout);
    assert!(r.stderr.contains("symbolic link"), "{}", r.stderr);
    assert_eq!(
        std::fs::read_dir(&outside).unwrap().count(),
        0,
        "wrote outside the target"
    );
}

#[test]
fn plain_http_is_refused_wherever_the_endpoint_comes_from() {
    let site = Site::new(&[("index.html", b"<p>x</p>")]);
    let dir = path_str(site.path());
    let args = publish_args(&dir, "s3://some-bucket/site");
    let clean = || {
        cdnsync(&args)
            .env("AWS_ACCESS_KEY_ID", "k")
            .env("AWS_SECRET_ACCESS_KEY", "s")
            .env("AWS_REGION", "us-east-1")
    };
    // The service-specific variable the SDK reads.
    let err = clean()
        .env("AWS_ENDPOINT_URL_S3", "http://10.1.2.3:9000")
        .fails(2);
    assert!(
        err.contains("refusing plain-HTTP endpoint `http://10.1.2.3:9000`"),
        "{err}"
    );
    // A profile's [services] section.
    let cfg = tempfile::tempdir().unwrap();
    let file = cfg.path().join("config");
    std::fs::write(
        &file,
        "[default]\nregion = us-east-1\nservices = local\n\n[services local]\ns3 =\n  endpoint_url = http://10.1.2.3:9001\n",
    )
    .unwrap();
    let err = clean().env("AWS_CONFIG_FILE", &path_str(&file)).fails(2);
    assert!(err.contains("http://10.1.2.3:9001"), "{err}");
    // Loopback in every spelling is allowed (then unreachable: exit 5).
    for ep in [
        "http://127.1.2.3:1",
        "http://[::ffff:127.0.0.1]:1",
        "http://[::1]:1",
    ] {
        let err = clean().env("AWS_ENDPOINT_URL_S3", ep).fails(5);
        assert!(err.contains("cannot connect"), "{ep}: {err}");
    }
    // A mapped address off this machine is not loopback.
    let err = clean()
        .env("AWS_ENDPOINT_URL", "http://[::ffff:10.0.0.1]:9000")
        .fails(2);
    assert!(err.contains("refusing plain-HTTP"), "{err}");
}

fn migrate_to<'a>(src: &'a str, to: &'a str, extra: &[&'a str]) -> Vec<&'a str> {
    let mut v = vec!["migrate", src, "--to", to, "--json", "--no-state"];
    v.extend(extra);
    v
}

#[test]
fn migrate_delete_source_never_deletes_outside_the_source() {
    let b = Bucket::moto("mig-swap");
    let to = b.url("up");
    let root = tempfile::tempdir().unwrap();
    let src = root.path().join("src");
    let outside = root.path().join("outside");
    std::fs::create_dir_all(src.join("a")).unwrap();
    std::fs::create_dir_all(&outside).unwrap();
    for i in 0..6 {
        std::fs::write(src.join(format!("a/f{i}.jpg")), format!("in {i}")).unwrap();
        // The same names outside, with the same bytes: only a path check
        // can tell them apart.
        std::fs::write(outside.join(format!("f{i}.jpg")), format!("in {i}")).unwrap();
    }
    let s = path_str(&src);
    cdnsync_moto(&migrate_to(&s, &to, &[])).ok_json();
    // A slow delete run; half-way, the folder becomes a link out of SRC.
    let (mut child, _cwd) =
        cdnsync_moto(&migrate_to(&s, &to, &["--delete-source", "--rate", "3"])).spawn();
    std::thread::sleep(std::time::Duration::from_millis(900));
    std::fs::rename(src.join("a"), root.path().join("a-moved")).unwrap();
    std::os::unix::fs::symlink(&outside, src.join("a")).unwrap();
    let _ = child.wait().unwrap();
    let left = std::fs::read_dir(&outside).unwrap().count();
    assert_eq!(left, 6, "files outside SRC were deleted");
}

#[test]
fn migrate_skips_secrets_and_serves_documents_as_attachments() {
    let b = Bucket::moto("mig-secrets");
    let to = b.url("up");
    let site = Site::new(&[
        (".env", b"SECRET=1"),
        ("backup.sql", b"INSERT"),
        ("feed.rss", b"<rss/>"),
        ("photo.jpg", b"JPEG"),
        (
            "page.xhtml",
            b"<html xmlns='http://www.w3.org/1999/xhtml'/>",
        ),
    ]);
    std::os::unix::fs::symlink(".env", site.path().join("env.txt")).unwrap();
    let r = cdnsync_moto(&migrate_to(&path_str(site.path()), &to, &[])).ok_json();
    let keys = b.keys("up/");
    for k in ["up/.env", "up/env.txt", "up/backup.sql"] {
        assert!(!keys.contains(&k.to_string()), "{k} migrated: {r:#}");
    }
    let skipped: Vec<&str> = r["skipped"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["path"].as_str().unwrap())
        .collect();
    assert!(
        skipped.contains(&"env.txt") && skipped.contains(&".env"),
        "{skipped:?}"
    );
    for (k, want) in [
        ("up/feed.rss", Some("attachment")),
        ("up/page.xhtml", Some("attachment")),
        ("up/photo.jpg", None),
    ] {
        assert_eq!(b.head(k).content_disposition(), want, "{k}");
    }
    // Asked for by name, a secret goes.
    let r = cdnsync_moto(&migrate_to(
        &path_str(site.path()),
        &to,
        &["--include-denied", "backup.sql"],
    ))
    .ok_json();
    assert!(
        b.keys("up/").contains(&"up/backup.sql".to_string()),
        "{r:#}"
    );
}

#[test]
fn delete_source_checks_the_bytes_not_only_the_metadata() {
    let b = Bucket::moto("mig-bytes");
    let to = b.url("up");
    let site = Site::new(&[("a.jpg", b"the real bytes"), ("b.jpg", b"other bytes")]);
    let s = path_str(site.path());
    cdnsync_moto(&migrate_to(&s, &to, &[])).ok_json();
    // Someone replaces the object's bytes, keeping cdnsync's metadata.
    let head = b.head("up/a.jpg");
    let meta = head.metadata().unwrap().clone();
    b.rt.block_on(
        b.client
            .put_object()
            .bucket(&b.name)
            .key("up/a.jpg")
            .body(aws_sdk_s3::primitives::ByteStream::from(
                b"the fake bytes".to_vec(),
            ))
            .set_metadata(Some(meta))
            .send(),
    )
    .unwrap();
    let r = cdnsync_moto(&migrate_to(&s, &to, &["--delete-source"])).run();
    assert_eq!(r.code, 9, "{}\n{}", r.stdout, r.stderr);
    assert!(
        site.path().join("a.jpg").exists(),
        "deleted although the bytes differ"
    );
    assert!(
        !site.path().join("b.jpg").exists(),
        "the verified file goes"
    );
}

#[test]
fn secrets_are_never_published_even_behind_a_link() {
    let site = Site::new(&[
        ("index.html", b"<p>x</p>"),
        (".env", b"SECRET=1"),
        (".git-credentials", b"https://u:p@h"),
        ("deploy/prod.tfstate", b"{}"),
        ("backup/site.sql", b"INSERT"),
        (".docker/config.json", b"{}"),
        ("keys/release.jks", b"JKS"),
        (".well-known/security.txt", b"Contact: x"),
    ]);
    std::os::unix::fs::symlink(".env", site.path().join("env.txt")).unwrap();
    std::os::unix::fs::symlink("deploy", site.path().join("public-deploy")).unwrap();
    let (_t, out) = tmp_target();
    let r = cdnsync(&publish_args(&path_str(site.path()), &path_str(&out))).ok_json();
    let published: Vec<String> = keys_with(&r, "upload");
    assert_eq!(
        published,
        ["index.html", ".well-known/security.txt"]
            .iter()
            .map(std::string::ToString::to_string)
            .collect::<std::collections::BTreeSet<_>>()
            .into_iter()
            .collect::<Vec<_>>(),
        "{r:#}"
    );
    let skipped: Vec<&str> = r["skipped"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["rel"].as_str().unwrap())
        .collect();
    assert!(
        skipped.contains(&"env.txt") && skipped.contains(&"public-deploy/prod.tfstate"),
        "{skipped:?}"
    );
    // Explicitly included, it goes.
    let (dir, to) = (path_str(site.path()), path_str(&out));
    let mut args = publish_args(&dir, &to);
    args.extend(["--include-denied", "backup/*.sql"]);
    let r = cdnsync(&args).ok_json();
    assert_eq!(keys_with(&r, "upload"), ["backup/site.sql"], "{r:#}");
}

#[test]
fn credentials_in_a_purge_url_are_sent_as_basic_auth_and_never_shown() {
    use std::io::{BufRead, Write};
    // A cache that records what it is sent.
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let seen = std::sync::Arc::new(std::sync::Mutex::new(Vec::<String>::new()));
    let seen2 = seen.clone();
    std::thread::spawn(move || {
        for s in listener.incoming().flatten() {
            let mut r = std::io::BufReader::new(s.try_clone().unwrap());
            let mut head = String::new();
            loop {
                let mut l = String::new();
                if r.read_line(&mut l).unwrap_or(0) == 0 || l == "\r\n" {
                    break;
                }
                head.push_str(&l);
            }
            seen2.lock().unwrap().push(head);
            let _ = (&s)
                .write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 0\r\nconnection: close\r\n\r\n");
        }
    });
    let site = Site::new(&[("index.html", b"<p>v1</p>")]);
    let (_t, out) = tmp_target();
    let (dir, to) = (path_str(site.path()), path_str(&out));
    let purge = format!("http://admin:s3cret@127.0.0.1:{port}");
    let summary = tempfile::NamedTempFile::new().unwrap();
    let mut args = publish_args(&dir, &to);
    args.extend(["--purge-url", &purge]);
    cdnsync(&args).ok_json();
    site.write("index.html", b"<p>v2</p>");
    let r = cdnsync(&args)
        .env("GITHUB_ACTIONS", "true")
        .env("GITHUB_STEP_SUMMARY", &path_str(summary.path()))
        .run();
    assert_eq!(r.code, 0, "{}\n{}", r.stdout, r.stderr);
    let summary = std::fs::read_to_string(summary.path()).unwrap();
    for text in [&r.stdout, &r.stderr, &summary] {
        assert!(
            !text.contains("s3cret") && !text.contains("admin:"),
            "{text}"
        );
    }
    let heads = seen.lock().unwrap().join("\n");
    // admin:s3cret
    assert!(
        heads.contains("authorization: Basic YWRtaW46czNjcmV0"),
        "{heads}"
    );
    // A bad URL in an error is shown redacted too.
    let mut bad = publish_args(&dir, &to);
    bad.extend(["--purge-url", "http://admin:s3cret@10.9.9.9:1"]);
    let err = cdnsync(&bad).fails(2);
    assert!(
        !err.contains("s3cret") && err.contains("***@10.9.9.9"),
        "{err}"
    );
}

#[test]
fn deeply_nested_and_huge_files_are_published_unparsed_with_a_warning() {
    let deep_js = format!("var a = {}1{};", "[".repeat(5000), "]".repeat(5000));
    let deep_css = format!("{}a{{}}{}", "@media print{".repeat(5000), "}".repeat(5000));
    let mut huge = b"var s = 'logo.png';\n".to_vec();
    huge.resize(17 << 20, b' ');
    let site = Site::new(&[
        (
            "index.html",
            b"<link rel=stylesheet href=deep.css><script src=deep.js></script><script src=huge.js></script><img src=logo.png>",
        ),
        ("deep.js", deep_js.as_bytes()),
        ("deep.css", deep_css.as_bytes()),
        ("huge.js", &huge),
        ("logo.png", b"PNG"),
    ]);
    let (_t, out) = tmp_target();
    let r = cdnsync(&publish_args(&path_str(site.path()), &path_str(&out))).run();
    assert_eq!(r.code, 0, "{}\n{}", r.stdout, r.stderr);
    assert!(
        r.stderr.contains("deep.js") && r.stderr.contains("nested"),
        "{}",
        r.stderr
    );
    assert!(
        r.stderr.contains("huge.js") && r.stderr.contains("larger than"),
        "{}",
        r.stderr
    );
    // What an unparsed file may name keeps its name.
    assert!(out.join("logo.png").is_file());
    let rep = r.json();
    assert_eq!(
        rep["decisions"]["logo.png"]["reason"], "unparsable",
        "{rep:#}"
    );
}
