//! The bad-input matrix, one test per case: a build directory or config
//! that cannot be published gets one clear error line naming the file or
//! setting, a documented exit code (2 usage/config, 3 input), and the live
//! site — published before each case — is left exactly as it was. Remote
//! failures (credentials, bucket, region, manifests) are in `errors.rs`.

use std::collections::BTreeMap;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::symlink;
use std::path::{Path, PathBuf};

use crate::util::*;

const USAGE: i32 = 2;
const INPUT: i32 = 3;

/// The error is one line (after "error: ").
fn one_line(stderr: &str) -> String {
    let lines: Vec<&str> = stderr
        .lines()
        .filter(|l| l.starts_with("error: "))
        .collect();
    assert_eq!(lines.len(), 1, "expected one error line:\n{stderr}");
    lines[0].to_string()
}

/// A local target with a live site on it.
struct Live {
    _dir: tempfile::TempDir,
    out: PathBuf,
    before: BTreeMap<PathBuf, Vec<u8>>,
}

fn files_of(root: &Path) -> BTreeMap<PathBuf, Vec<u8>> {
    walkdir::WalkDir::new(root)
        .into_iter()
        .map(Result::unwrap)
        .filter(|e| e.file_type().is_file())
        .map(|e| (e.path().to_path_buf(), std::fs::read(e.path()).unwrap()))
        .collect()
}

impl Live {
    fn new() -> Live {
        let (dir, out) = tmp_target();
        let site = Site::new(&[
            (
                "index.html",
                b"<link rel=stylesheet href=/s.css><h1>live</h1>",
            ),
            ("s.css", b"h1{color:red}"),
            ("about/index.html", b"<p>about</p>"),
        ]);
        cdnsync(&publish_args(&path_str(site.path()), &path_str(&out))).ok_json();
        let before = files_of(&out);
        assert!(before.len() >= 3);
        Live {
            _dir: dir,
            out,
            before,
        }
    }

    fn to(&self) -> String {
        path_str(&self.out)
    }

    /// Publish `dir` here, expect exit `code` with one error line containing
    /// `needle`, and the live site untouched.
    fn refuses(&self, dir: &str, code: i32, needle: &str) -> String {
        let e = cdnsync(&publish_args(dir, &self.to())).fails(code);
        self.refused(&e, needle)
    }

    fn refused(&self, stderr: &str, needle: &str) -> String {
        let line = one_line(stderr);
        assert!(line.contains(needle), "expected `{needle}` in: {line}");
        assert_eq!(files_of(&self.out), self.before, "the live site changed");
        line
    }
}

#[test]
fn missing_dir() {
    let live = Live::new();
    live.refuses(
        "/nonexistent/dist",
        INPUT,
        "/nonexistent/dist: directory not found",
    );
}

#[test]
fn file_instead_of_dir() {
    let live = Live::new();
    let site = Site::new(&[("f.html", b"x")]);
    let f = path_str(&site.path().join("f.html"));
    live.refuses(&f, INPUT, "f.html: not a directory");
}

#[test]
fn empty_dir_does_not_delete_the_live_site_without_allow_empty() {
    let live = Live::new();
    let empty = tempfile::tempdir().unwrap();
    let dir = path_str(empty.path());
    let line = live.refuses(&dir, INPUT, "publishing it would delete the live site");
    assert!(line.contains("--allow-empty"), "{line}");
    // Only secrets and excluded files: empty after exclusions, same answer.
    std::fs::write(empty.path().join(".env"), "SECRET=1").unwrap();
    live.refuses(&dir, INPUT, "is empty (after exclusions)");
    // Asked for explicitly, it empties the site.
    let to = live.to();
    let mut args = publish_args(&dir, &to);
    args.push("--allow-empty");
    let r = cdnsync(&args).ok_json();
    assert_eq!(
        r["deleted"], 3,
        "both pages and the stylesheet's original URL deleted: {r:#}"
    );
    assert!(!live.out.join("index.html").exists());
}

#[test]
fn unreadable_file() {
    use std::os::unix::fs::PermissionsExt;
    let base = tempfile::tempdir().unwrap();
    std::fs::set_permissions(base.path(), PermissionsExt::from_mode(0o777)).unwrap();
    let site = base.path().join("site");
    std::fs::create_dir(&site).unwrap();
    std::fs::write(site.join("index.html"), "<p>x</p>").unwrap();
    std::fs::write(site.join("private.txt"), "x").unwrap();
    std::fs::set_permissions(&site, PermissionsExt::from_mode(0o755)).unwrap();
    std::fs::set_permissions(site.join("private.txt"), PermissionsExt::from_mode(0o000)).unwrap();
    let out = base.path().join("out");
    // A live site the unreadable build must not touch.
    std::fs::create_dir(&out).unwrap();
    std::fs::write(out.join("live.html"), "live").unwrap();
    std::fs::set_permissions(&out, PermissionsExt::from_mode(0o777)).unwrap();
    let r = cdnsync_as_nobody(&["publish", &path_str(&site), "--to", &path_str(&out)]).run();
    assert_eq!(r.code, INPUT, "{}", r.stderr);
    let line = one_line(&r.stderr);
    assert!(
        line.contains("private.txt: cannot read: Permission denied"),
        "{line}"
    );
    let left: Vec<_> = std::fs::read_dir(&out)
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(left, vec![std::ffi::OsString::from("live.html")]);
}

#[test]
fn file_vanishing_during_scan() {
    // Files deleted while cdnsync walks and hashes the tree: the run fails
    // naming a vanished file (or, when the deleter wins the race outright,
    // publishes what is left) — never a half-published live site.
    let live = Live::new();
    let mut failures = 0;
    for attempt in 0..6 {
        let files: Vec<(String, Vec<u8>)> = (0..3000)
            .map(|i| (format!("d{}/f{i:05}.txt", i % 10), vec![b'x'; 64]))
            .collect();
        let site = Site::from_files(&files);
        let root = site.path().to_path_buf();
        let (child, _cwd) =
            cdnsync(&["publish", &path_str(&root), "--to", &live.to(), "--dry-run"]).spawn();
        // Start deleting once cdnsync has a directory of the site open (the
        // walk has begun), a little later on each attempt.
        let pid = child.id();
        let deleter = std::thread::spawn(move || {
            let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
            'wait: while std::time::Instant::now() < deadline {
                if let Ok(fds) = std::fs::read_dir(format!("/proc/{pid}/fd")) {
                    for fd in fds.flatten() {
                        if std::fs::read_link(fd.path()).is_ok_and(|t| t.starts_with(&root)) {
                            break 'wait;
                        }
                    }
                }
                std::thread::sleep(std::time::Duration::from_micros(200));
            }
            std::thread::sleep(std::time::Duration::from_millis(attempt));
            for (p, _) in files.iter().rev() {
                let _ = std::fs::remove_file(root.join(p));
            }
        });
        let out = child.wait_with_output().unwrap();
        deleter.join().unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        match out.status.code() {
            Some(0) => {}
            Some(INPUT) => {
                failures += 1;
                let line = one_line(&stderr);
                assert!(
                    line.contains("disappeared") && line.contains("/f"),
                    "{line}"
                );
            }
            other => panic!("exit {other:?}: {stderr}"),
        }
        assert_eq!(files_of(&live.out), live.before, "the live site changed");
    }
    eprintln!("vanishing-file race: {failures} of 6 runs hit a vanished file");
    assert!(
        failures >= 1,
        "the race never hit a vanishing file in 6 runs"
    );
}

#[test]
fn file_changing_during_upload() {
    // The file is rewritten after it was hashed and before it is read for
    // upload: the mismatch is caught, the run stops, the live site is whole,
    // and the stale hash never names the new bytes.
    let b = Bucket::moto("changing");
    let to = b.url("");
    let v1 = Site::new(&[
        (
            "index.html",
            b"<link rel=stylesheet href=/app.css><h1>v1</h1>",
        ),
        ("app.css", b"h1{color:red}"),
    ]);
    cdnsync_moto(&publish_args(&path_str(v1.path()), &to)).ok_json();
    let before = b.snapshot();
    let v2 = Site::new(&[
        (
            "index.html",
            b"<link rel=stylesheet href=/app.css><h1>v2</h1>",
        ),
        ("app.css", b"h1{color:blue}"),
    ]);
    // Every request held back, so the window between hashing and upload is wide.
    let proxy = FaultProxy::start(&moto_endpoint(), "delay=1&delay_ms=300");
    let (child, _cwd) = proxy
        .cdnsync(&publish_args(&path_str(v2.path()), &to))
        .spawn();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    while proxy.counts().get("TOTAL").copied().unwrap_or(0) == 0 {
        assert!(std::time::Instant::now() < deadline, "no request was made");
        std::thread::sleep(std::time::Duration::from_millis(5));
    }
    // The scan is over once the first request is made.
    v2.write("app.css", b"h1{color:green}");
    let out = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(INPUT), "{stderr}");
    let line = one_line(&stderr);
    assert!(
        line.contains("app.css") && line.contains("changed"),
        "{line}"
    );
    let after = b.snapshot();
    assert_kept(&before, &after, "after a file changed during upload");
    assert!(
        after.values().all(|o| o.body != b"h1{color:green}"),
        "bytes that were never hashed were uploaded"
    );
    cdnsync_moto(&["unlock", "--to", &to, "--force"]).ok_json_or_text();
    // Rerun: the new bytes get their own name.
    let r = cdnsync_moto(&publish_args(&path_str(v2.path()), &to)).ok_json();
    assert_eq!(r["dry_run"], false);
    assert!(broken_references(&b).is_empty());
}

#[test]
fn symlink_loop() {
    let live = Live::new();
    let site = Site::new(&[("a/index.html", b"x")]);
    symlink(site.path(), site.path().join("a/loop")).unwrap();
    live.refuses(&path_str(site.path()), INPUT, "a/loop: symlink loop");
}

#[test]
fn symlink_escaping_the_root() {
    let live = Live::new();
    let outside = tempfile::tempdir().unwrap();
    std::fs::write(outside.path().join("passwd"), "x").unwrap();
    let site = Site::new(&[("index.html", b"x")]);
    symlink(outside.path().join("passwd"), site.path().join("leak")).unwrap();
    live.refuses(
        &path_str(site.path()),
        INPUT,
        "leak: symlink points outside",
    );
}

#[test]
fn non_utf8_name() {
    let live = Live::new();
    let site = Site::new(&[("index.html", b"x")]);
    std::fs::write(
        site.path()
            .join(std::ffi::OsStr::from_bytes(b"caf\xe9.html")),
        "x",
    )
    .unwrap();
    live.refuses(&path_str(site.path()), INPUT, "not valid UTF-8");
}

#[test]
fn backslash_in_a_name() {
    let live = Live::new();
    let site = Site::new(&[("index.html", b"x"), ("win\\path.txt", b"x")]);
    live.refuses(
        &path_str(site.path()),
        INPUT,
        "win\\path.txt: file name contains a backslash",
    );
}

#[test]
fn control_character_in_a_name() {
    let live = Live::new();
    let site = Site::new(&[("index.html", b"x"), ("bell\u{7}.txt", b"x")]);
    live.refuses(&path_str(site.path()), INPUT, "control character U+0007");
}

#[test]
fn odd_names_are_published_under_their_exact_keys_and_resolve() {
    // Spaces, `+`, `%`, `#`, `?`, quotes and non-ASCII are legal in keys;
    // links to them must be percent-encoded, and cdnsync resolves those.
    let b = Bucket::moto("oddnames");
    let names = [
        "a b.txt",
        "c+d.txt",
        "e%20f.txt",
        "g#h.txt",
        "i?j.txt",
        "k'l\".txt",
        "日本語.txt",
    ];
    let mut files: Vec<(String, Vec<u8>)> = names
        .iter()
        .map(|n| (format!("docs/{n}"), n.as_bytes().to_vec()))
        .collect();
    let links: String = [
        "a%20b.txt",
        "c+d.txt",
        "e%2520f.txt",
        "g%23h.txt",
        "i%3Fj.txt",
        "%E6%97%A5%E6%9C%AC%E8%AA%9E.txt",
    ]
    .iter()
    .map(|l| format!("<a href=\"docs/{l}\">x</a>"))
    .collect();
    files.push(("index.html".into(), links.into_bytes()));
    let site = Site::from_files(&files);
    let r = cdnsync_moto(&publish_args(&path_str(site.path()), &b.url(""))).ok_json();
    assert!(
        r["missing_references"].as_array().unwrap().is_empty(),
        "links to odd names did not resolve: {r:#}"
    );
    for n in names {
        assert_eq!(b.body(&format!("docs/{n}")), n.as_bytes(), "{n}");
    }
    let again = cdnsync_moto(&publish_args(&path_str(site.path()), &b.url(""))).ok_json();
    assert_eq!(again["noop"], true);
}

#[test]
fn nfd_unicode_name_is_published_as_is_with_a_warning() {
    let (_t, out) = tmp_target();
    let nfd = "cafe\u{301}.txt";
    let site = Site::new(&[("index.html", b"x"), (nfd, b"decomposed")]);
    let r = cdnsync(&publish_args(&path_str(site.path()), &path_str(&out))).run();
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert_eq!(std::fs::read(out.join(nfd)).unwrap(), b"decomposed");
    let warnings = r.json()["warnings"].to_string();
    assert!(warnings.contains("not in Unicode NFC"), "{warnings}");
}

#[test]
fn key_over_1024_bytes() {
    let live = Live::new();
    let site = Site::new(&[("index.html", b"x")]);
    let deep: Vec<String> = (0..5).map(|i| format!("{i}{}", "d".repeat(220))).collect();
    let rel = format!("{}/f.txt", deep.join("/"));
    site.write(&rel, b"deep");
    live.refuses(&path_str(site.path()), INPUT, "over S3's 1024-byte limit");
}

#[test]
fn zero_byte_file() {
    let b = Bucket::moto("zero");
    let site = Site::new(&[("index.html", b"x"), ("empty.txt", b""), ("empty.css", b"")]);
    let r = cdnsync_moto(&publish_args(&path_str(site.path()), &b.url(""))).ok_json();
    assert_eq!(r["uploaded"], 3, "{r:#}");
    assert_eq!(b.body("empty.txt"), b"");
    let h = b.head("empty.txt");
    assert_eq!(h.content_length(), Some(0));
    assert!(h.content_type().unwrap().starts_with("text/plain"));
    assert_eq!(h.content_encoding(), None, "an empty body is not gzipped");
    let again = cdnsync_moto(&publish_args(&path_str(site.path()), &b.url(""))).ok_json();
    assert_eq!(again["noop"], true);
}

#[test]
#[ignore = "slow: 6 GiB through the local S3 server; run by .ci/run with --ignored"]
fn six_gib_sparse_file_is_a_streamed_multipart_upload() {
    let endpoint = s3s_endpoint();
    let key = std::env::var("CDNSYNC_TEST_S3S_KEY").unwrap();
    let secret = std::env::var("CDNSYNC_TEST_S3S_SECRET").unwrap();
    let c = client(&endpoint, &key, &secret);
    let bucket = unique_bucket("sparse");
    rt().block_on(c.create_bucket().bucket(&bucket).send())
        .unwrap();
    let site = Site::new(&[("index.html", b"<a href=/big.bin>big</a>")]);
    let size: u64 = 6 * 1024 * 1024 * 1024;
    let f = std::fs::File::create(site.path().join("big.bin")).unwrap();
    f.set_len(size).unwrap(); // sparse: no disk used locally
    drop(f);
    let run = |args: &[&str]| {
        cdnsync(args)
            .env("AWS_ACCESS_KEY_ID", &key)
            .env("AWS_SECRET_ACCESS_KEY", &secret)
            .env("AWS_REGION", "us-east-1")
            .env("CDNSYNC_ENDPOINT_URL", &endpoint)
            .env("CDNSYNC_SSE", "none")
    };
    let to = format!("s3://{bucket}");
    let dir = path_str(site.path());
    let mut args = publish_args(&dir, &to);
    args.extend(["--concurrency", "4"]);
    let (mut child, _cwd) = run(&args).spawn();
    // Peak memory stays bounded while 6 GiB stream through.
    let pid = child.id();
    let mut peak_kb = 0u64;
    let status = loop {
        if let Some(s) = child.try_wait().unwrap() {
            break s;
        }
        if let Ok(st) = std::fs::read_to_string(format!("/proc/{pid}/status")) {
            for l in st.lines() {
                if let Some(v) = l.strip_prefix("VmHWM:") {
                    peak_kb =
                        peak_kb.max(v.trim().trim_end_matches(" kB").trim().parse().unwrap_or(0));
                }
            }
        }
        std::thread::sleep(std::time::Duration::from_millis(200));
    };
    assert!(status.success());
    eprintln!("6 GiB sparse publish: peak RSS {} MiB", peak_kb / 1024);
    assert!(
        peak_kb < 1024 * 1024,
        "peak RSS {peak_kb} kB for a 6 GiB file"
    );
    let h = rt()
        .block_on(c.head_object().bucket(&bucket).key("big.bin").send())
        .unwrap();
    assert_eq!(h.content_length(), Some(size as i64));
    assert!(
        h.e_tag().unwrap().contains('-'),
        "not a multipart upload: {:?}",
        h.e_tag()
    );
    let again = run(&publish_args(&dir, &to)).ok_json();
    assert_eq!(again["noop"], true);
    let data = std::path::PathBuf::from(std::env::var("CDNSYNC_TEST_S3S_DATA").unwrap());
    let _ = std::fs::remove_dir_all(data.join(&bucket));
}

/// A config file in a temp dir, and `publish --config` of a small site.
fn with_config(toml: &str, extra: &[&str]) -> (Live, String) {
    let live = Live::new();
    let site = Site::new(&[("index.html", b"x")]);
    let cfg_dir = tempfile::tempdir().unwrap();
    let cfg = cfg_dir.path().join("cdnsync.toml");
    std::fs::write(&cfg, toml).unwrap();
    let to = live.to();
    let mut args = vec!["publish", &*path_str(site.path()).leak(), "--config"];
    args.push(path_str(&cfg).leak());
    args.extend(["--to", to.clone().leak()]);
    args.extend(extra);
    let e = cdnsync(&args).fails(USAGE);
    (live, e)
}

#[test]
fn invalid_toml() {
    let (live, e) = with_config("to = [\n", &[]);
    live.refused(&e, "cdnsync.toml:");
}

#[test]
fn unknown_config_key() {
    let (live, e) = with_config("concurency = 4\n", &[]);
    let line = live.refused(&e, "cdnsync.toml:1:1:");
    assert!(line.contains("concurency"), "{line}");
}

#[test]
fn invalid_glob() {
    let (live, e) = with_config("[[rules]]\nglob = \"a/[b\"\n", &[]);
    live.refused(&e, "invalid glob `a/[b`");
}

#[test]
fn invalid_setting_value() {
    let (live, e) = with_config("sse = \"rot13\"\n", &[]);
    live.refused(&e, "`sse`");
}

#[test]
fn invalid_target_url() {
    let site = Site::new(&[("index.html", b"x")]);
    let dir = path_str(site.path());
    for (to, needle) in [
        ("gs://bucket", "invalid target `gs://bucket`"),
        ("s3://Bad_Bucket", "invalid target"),
        ("s3://", "invalid target"),
    ] {
        let e = cdnsync(&publish_args(&dir, to)).fails(USAGE);
        assert!(one_line(&e).contains(needle), "{to}: {e}");
    }
    let e = cdnsync(&["publish", &dir]).fails(USAGE);
    assert!(one_line(&e).contains("no target"), "{e}");
}

#[test]
fn plain_http_endpoint_off_loopback() {
    let site = Site::new(&[("index.html", b"x")]);
    let e = cdnsync(&[
        "publish",
        &path_str(site.path()),
        "--to",
        "s3://bucket",
        "--endpoint-url",
        "http://s3.example.com",
    ])
    .env("AWS_ACCESS_KEY_ID", "x")
    .env("AWS_SECRET_ACCESS_KEY", "y")
    .env("AWS_REGION", "us-east-1")
    .fails(USAGE);
    let line = one_line(&e);
    assert!(
        line.contains("http://s3.example.com") && line.contains("--allow-http"),
        "{line}"
    );
}
