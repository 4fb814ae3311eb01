//! What a newcomer trips over on day one (issue 14): `serve` stops at once
//! and answers conditional requests, an unreachable endpoint says so, plan
//! and publish count the same bytes, a publish after a rollback sends
//! nothing already stored, `releases` reads like a table.

use std::time::{Duration, Instant};

use crate::util::*;

/// Wait for `child` to exit within `limit`; its exit code.
fn exits_within(child: &mut std::process::Child, limit: Duration) -> Option<i32> {
    let t0 = Instant::now();
    while t0.elapsed() < limit {
        if let Some(st) = child.try_wait().unwrap() {
            return Some(st.code().unwrap_or(-1));
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    None
}

#[test]
fn serve_stops_at_once_on_sigterm_and_ctrl_c_in_its_own_words() {
    let site = sample_site();
    let (_t, out) = tmp_target();
    cdnsync(&publish_args(&path_str(site.path()), &path_str(&out))).ok_json();
    for sig in [libc::SIGTERM, libc::SIGINT] {
        let mut srv = serve(&out);
        // An open keep-alive connection must not hold the exit.
        let addr = srv.base.trim_start_matches("http://").to_string();
        let _idle = std::net::TcpStream::connect(&addr).unwrap();
        assert_eq!(
            http("GET", &format!("{}/robots.txt", srv.base), &[]).status,
            200
        );
        let t0 = Instant::now();
        // SAFETY: sending a signal to our own child process.
        unsafe {
            libc::kill(srv.child.id() as i32, sig);
        }
        let code = exits_within(&mut srv.child, Duration::from_secs(3));
        assert_eq!(code, Some(0), "signal {sig}: exit within 3 s with 0");
        let mut err = String::new();
        std::io::Read::read_to_string(srv.child.stderr.as_mut().unwrap(), &mut err).unwrap();
        assert!(err.contains("stopped serving"), "{err}");
        assert!(!err.contains("recording nothing"), "publish wording: {err}");
        assert!(t0.elapsed() < Duration::from_secs(2), "{:?}", t0.elapsed());
    }
}

#[test]
fn serve_answers_conditional_requests_with_304() {
    let site = sample_site();
    let (_t, out) = tmp_target();
    cdnsync(&publish_args(&path_str(site.path()), &path_str(&out))).ok_json();
    let srv = serve(&out);
    let url = format!("{}/robots.txt", srv.base);
    let first = http("GET", &url, &[]);
    assert_eq!(first.status, 200);
    let etag = first.header("etag").expect("an ETag").to_string();
    let lm = first
        .header("last-modified")
        .expect("Last-Modified")
        .to_string();

    for (what, h, want) in [
        ("matching ETag", vec![("If-None-Match", etag.as_str())], 304),
        (
            "weak matching ETag",
            vec![("If-None-Match", &format!("W/{etag}"))],
            304,
        ),
        (
            "one of several",
            vec![("If-None-Match", &format!("\"x\", {etag}"))],
            304,
        ),
        ("any", vec![("If-None-Match", "*")], 304),
        ("other ETag", vec![("If-None-Match", "\"other\"")], 200),
        (
            "not modified since",
            vec![("If-Modified-Since", lm.as_str())],
            304,
        ),
        (
            "modified since",
            vec![("If-Modified-Since", "Mon, 01 Jan 1990 00:00:00 GMT")],
            200,
        ),
        (
            "If-None-Match wins over If-Modified-Since",
            vec![
                ("If-None-Match", "\"other\""),
                ("If-Modified-Since", lm.as_str()),
            ],
            200,
        ),
        (
            "garbage date",
            vec![("If-Modified-Since", "yesterday")],
            200,
        ),
    ] {
        let r = http("GET", &url, &h);
        assert_eq!(r.status, want, "{what}");
        if want == 304 {
            assert!(r.body.is_empty(), "{what}: a 304 has no body");
            assert_eq!(r.header("etag"), Some(etag.as_str()), "{what}");
            assert!(r.header("cache-control").is_some(), "{what}");
        } else {
            assert_eq!(r.body, first.body, "{what}");
        }
    }
    let head = http("HEAD", &url, &[("If-None-Match", etag.as_str())]);
    assert_eq!(head.status, 304);
    // A missing page is a 404 whatever the condition.
    let r = http(
        "GET",
        &format!("{}/nope.html", srv.base),
        &[("If-None-Match", "*")],
    );
    assert_eq!(r.status, 404);
}

#[test]
fn an_unreachable_endpoint_is_a_connection_error_before_anything_is_written() {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let site = sample_site();
    let endpoint = format!("http://127.0.0.1:{port}");
    for args in [
        publish_args(&path_str(site.path()), "s3://some-bucket/site"),
        vec!["releases", "--to", "s3://some-bucket/site"],
        vec!["rollback", "--to", "s3://some-bucket/site"],
    ] {
        let err = cdnsync_moto(&args)
            .env("CDNSYNC_ENDPOINT_URL", &endpoint)
            .fails(5);
        let line = err.trim();
        assert_eq!(line.lines().count(), 1, "one line: {err}");
        assert!(
            line.contains(&format!("cannot connect to {endpoint}"))
                && line.contains("refused")
                && line.contains("nothing was written"),
            "{err}"
        );
        assert!(!line.contains("uploads failed"), "{err}");
    }
}

#[test]
fn plan_and_publish_count_the_same_bytes_and_show_gzip() {
    let site = sample_site();
    let (_t, out) = tmp_target();
    let (dir, to) = (path_str(site.path()), path_str(&out));
    let plan = cdnsync(&["plan", &dir, "--to", &to, "--json"]).ok_json();
    let human = cdnsync(&["plan", &dir, "--to", &to]).ok_json_or_text();
    let publ = cdnsync(&publish_args(&dir, &to)).ok_json();
    assert_eq!(plan["uploaded"], publ["uploaded"]);
    assert_eq!(
        plan["bytes_uploaded"], publ["bytes_uploaded"],
        "one definition of bytes sent"
    );
    let enc = |r: &serde_json::Value| -> Vec<(String, String)> {
        let mut v: Vec<(String, String)> = r["objects"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|o| o["action"] == "upload")
            .map(|o| {
                (
                    o["key"].as_str().unwrap().to_string(),
                    o["content_encoding"].as_str().unwrap_or("-").to_string(),
                )
            })
            .collect();
        v.sort();
        v
    };
    assert_eq!(enc(&plan), enc(&publ));
    assert!(enc(&plan).iter().any(|(_, e)| e == "gzip"));
    let css = human
        .lines()
        .find(|l| l.contains("css/site."))
        .unwrap_or_else(|| panic!("{human}"));
    assert!(css.contains("; gzip]"), "{css}");
    let total = human.lines().last().unwrap();
    let human_pub = cdnsync(&["plan", &dir, "--to", &to]).ok_json_or_text();
    assert!(human_pub.contains("0 to upload"), "{human_pub}");
    assert!(total.contains("to upload ("), "{total}");
}

#[test]
fn a_publish_after_a_rollback_sends_nothing_already_stored() {
    let b = Bucket::moto("after-rollback");
    let to = b.url("site");
    let pages = |v: &str| -> Site {
        let files: Vec<(String, Vec<u8>)> = (0..5)
            .map(|i| {
                (
                    format!("p{i}/index.html"),
                    format!("<!doctype html><h1>page {i} {v}</h1>").into_bytes(),
                )
            })
            .collect();
        Site::from_files(&files)
    };
    let (v1, v2) = (pages("one"), pages("two"));
    cdnsync_moto(&publish_args(&path_str(v1.path()), &to)).ok_json();
    cdnsync_moto(&publish_args(&path_str(v2.path()), &to)).ok_json();
    cdnsync_moto(&["rollback", "--to", &to, "--json"]).ok_json();
    assert!(
        String::from_utf8(b.body("site/p0/index.html"))
            .unwrap()
            .contains("one")
    );

    let proxy = FaultProxy::start(&moto_endpoint(), "");
    let r = proxy
        .cdnsync(&publish_args(&path_str(v2.path()), &to))
        .ok_json();
    assert_eq!(
        r["bodies_stored"], 0,
        "bodies of v2 are stored already: {r:#}"
    );
    assert_eq!(r["bytes_uploaded"], 0, "{r:#}");
    assert!(
        String::from_utf8(b.body("site/p0/index.html"))
            .unwrap()
            .contains("two")
    );
    let puts = proxy.counts().get("PUT").copied().unwrap_or(0);
    // The lock, the release record and `current`: no page body.
    assert!(puts <= 4, "PUTs: {:?}", proxy.counts());
}

#[test]
fn releases_is_a_table_with_dirty_commits_and_one_rollback_note() {
    let repo = tempfile::tempdir().unwrap();
    let git = |args: &[&str]| {
        let ok = std::process::Command::new("git")
            .arg("-C")
            .arg(repo.path())
            .args(["-c", "user.name=t", "-c", "user.email=t@example.com"])
            .args(args)
            .output()
            .unwrap()
            .status
            .success();
        assert!(ok, "git {args:?}");
    };
    git(&["init", "-q"]);
    let dist = repo.path().join("dist");
    std::fs::create_dir_all(&dist).unwrap();
    std::fs::write(dist.join("index.html"), "<p>one</p>").unwrap();
    std::fs::write(repo.path().join("src.txt"), "v1").unwrap();
    git(&["add", "."]);
    git(&["commit", "-q", "-m", "one"]);
    let (_t, out) = tmp_target();
    let to = path_str(&out);
    let first = cdnsync(&publish_args(&path_str(&dist), &to)).ok_json();
    // A tracked file changed, not committed: the release says so.
    std::fs::write(repo.path().join("src.txt"), "v2").unwrap();
    std::fs::write(dist.join("index.html"), "<p>two</p>").unwrap();
    cdnsync(&[
        "publish",
        &path_str(&dist),
        "--to",
        &to,
        "--message",
        "second",
    ])
    .ok_json_or_text();
    cdnsync(&["rollback", "--to", &to]).ok_json_or_text();
    let list = cdnsync(&["releases", "--to", &to, "--json"]).ok_json();
    let commits: Vec<&str> = list
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["commit"].as_str().unwrap_or("-"))
        .collect();
    assert!(!commits[0].ends_with("-dirty"), "{list:#}");
    assert!(commits[1].ends_with("-dirty"), "{list:#}");

    let text = cdnsync(&["releases", "--to", &to]).ok_json_or_text();
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), 4, "header + 3 releases:\n{text}");
    for h in ["RELEASE", "CREATED", "FILES", "SIZE", "COMMIT", "NOTE"] {
        assert!(lines[0].contains(h), "{text}");
    }
    assert_eq!(text.matches("rollback to").count(), 1, "{text}");
    assert!(lines[3].starts_with('*'), "{text}");
    assert!(lines[1].contains(first["release"].as_str().unwrap()));
    // Times to the second: no fractional digits.
    // (The release id itself carries milliseconds: look at the time token.)
    for l in &lines[1..] {
        let time = l.split_whitespace().find(|t| t.contains(':'));
        let time = time.unwrap_or_else(|| panic!("no time in {l:?}"));
        assert!(!time.contains('.'), "{text}");
    }
    let created = lines[1].split_whitespace().nth(1).unwrap();
    assert_eq!(created.len(), "2026-12-03".len(), "{text}");
}

/// Found on Docusaurus output (identical generated pages): two pages with
/// the same bytes share one stored body, stored once, on every target.
#[test]
fn pages_with_identical_bytes_share_one_stored_body() {
    let page = b"<!doctype html><p>same</p>";
    let site = Site::new(&[
        ("a/index.html", page),
        ("b/index.html", page),
        ("c.html", page),
    ]);
    let dir = path_str(site.path());
    let (_t, out) = tmp_target();
    let to = path_str(&out);
    let plan = cdnsync(&["plan", &dir, "--to", &to, "--json"]).ok_json();
    let r = cdnsync(&publish_args(&dir, &to)).ok_json();
    assert_eq!(r["bodies_stored"], 1, "{r:#}");
    assert_eq!(plan["bodies_stored"], 1);
    assert_eq!(plan["bytes_uploaded"], r["bytes_uploaded"]);
    let b = Bucket::moto("same-bytes");
    let r = cdnsync_moto(&publish_args(&dir, &b.url("s"))).ok_json();
    assert_eq!(r["bodies_stored"], 1, "{r:#}");
    assert_eq!(b.body("s/b/index.html"), page);
}

/// A no-op publish writes nothing but its lock, and asks for no stored
/// body: the release record, the pointer and the site's listing decide it.
#[test]
fn a_no_op_publish_writes_only_its_lock_and_asks_for_no_body() {
    let b = Bucket::moto("noop");
    let to = b.url("site");
    let site = sample_site();
    let dir = path_str(site.path());
    cdnsync_moto(&publish_args(&dir, &to)).ok_json();
    let proxy = FaultProxy::start(&moto_endpoint(), "");
    let r = proxy.cdnsync(&publish_args(&dir, &to)).ok_json();
    assert_eq!(r["noop"], true, "{r:#}");
    let c = proxy.counts();
    let n = |op: &str| c.get(op).copied().unwrap_or(0);
    assert_eq!(
        (n("PUT"), n("DELETE_OBJECTS")),
        (1, 1),
        "the lock only: {c:?}"
    );
    for op in ["COPY", "DELETE", "POST", "HEAD"] {
        assert_eq!(n(op), 0, "{op}: {c:?}");
    }
}
