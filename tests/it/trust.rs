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
        b.keys("site/js/").contains(&"site/js/app-B4x9Tz2k.js".to_string()),
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
        assert!(err.contains(".cdnsync/current") && err.contains("not read"), "{args:?}: {err}");
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
    b.put(&format!("site/.cdnsync/releases/{id}.json"), forged.as_bytes());
    let before = b.snapshot();
    let err = cdnsync_moto(&["rollback", "--to", &to, id]).fails(5);
    assert!(err.contains("invalid") && err.contains(".cdnsync/"), "{err}");
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
    assert_eq!(http("GET", &format!("{}/robots.txt", srv.base), &[]).status, 200);
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
    assert_eq!(std::fs::read_dir(&outside).unwrap().count(), 0, "wrote outside the target");
}
