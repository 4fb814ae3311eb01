//! Test harness: temp sites, the real `cdnsync` binary with a clean
//! environment, and an S3 client to inspect what the server holds. The
//! servers are started by `scripts/test-env.sh`, which exports their
//! endpoints.

#![allow(dead_code)]

use std::io::Read;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU32, Ordering};

use aws_sdk_s3::Client;
use aws_sdk_s3::config::{Credentials, Region};
use aws_sdk_s3::primitives::ByteStream;
use serde_json::Value;

pub(crate) fn rt() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
}

fn env_or_panic(name: &str) -> String {
    std::env::var(name).unwrap_or_else(|_| {
        panic!("{name} is not set: run the tests with scripts/test.sh (or `source scripts/test-env.sh` first)")
    })
}

pub(crate) fn moto_endpoint() -> String {
    env_or_panic("CDNSYNC_TEST_MOTO_ENDPOINT")
}

pub(crate) fn s3s_endpoint() -> String {
    env_or_panic("CDNSYNC_TEST_S3S_ENDPOINT")
}

/// A site in a temp dir.
pub(crate) struct Site {
    pub dir: tempfile::TempDir,
}

impl Site {
    pub(crate) fn new(files: &[(&str, &[u8])]) -> Site {
        let dir = tempfile::tempdir().unwrap();
        let s = Site { dir };
        for (p, b) in files {
            s.write(p, b);
        }
        s
    }

    /// A site from owned (path, bytes) pairs.
    pub(crate) fn from_files(files: &[(String, Vec<u8>)]) -> Site {
        let s = Site::new(&[]);
        for (p, b) in files {
            s.write(p, b);
        }
        s
    }

    pub(crate) fn path(&self) -> &Path {
        self.dir.path()
    }

    pub(crate) fn write(&self, rel: &str, body: &[u8]) {
        let p = self.dir.path().join(rel);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(p, body).unwrap();
    }

    pub(crate) fn remove(&self, rel: &str) {
        std::fs::remove_file(self.dir.path().join(rel)).unwrap();
    }

    /// Set every file's mtime to "now + 1 day", content unchanged (a fresh
    /// checkout).
    pub(crate) fn touch_all(&self) {
        let later = std::time::SystemTime::now() + std::time::Duration::from_secs(86_400);
        for e in walkdir::WalkDir::new(self.path()) {
            let e = e.unwrap();
            if e.file_type().is_file() {
                let f = std::fs::File::options().write(true).open(e.path()).unwrap();
                f.set_modified(later).unwrap();
            }
        }
    }
}

/// A typical small site: pages, CSS, JS, images, a secret that must not go up.
pub(crate) fn sample_site() -> Site {
    let css = "body { color: #333; background: url(../img/a.png); }\n".repeat(40);
    let js = "export function f(x) { return x * 2; }\n".repeat(40);
    Site::new(&[
        ("index.html", b"<!doctype html><html><head><link rel=stylesheet href=/css/site.css></head><body><h1>Home</h1><p>Lorem ipsum dolor sit amet, consectetur adipiscing elit.</p></body></html>"),
        ("about/index.html", b"<!doctype html><html><body><h1>About</h1><p>Lorem ipsum dolor sit amet, consectetur adipiscing elit, sed do eiusmod.</p></body></html>"),
        ("css/site.css", css.as_bytes()),
        ("js/app.js", js.as_bytes()),
        ("assets/index-B4x9Tz2k.js", js.as_bytes()),
        ("img/a.png", &[0x89, b'P', b'N', b'G', 13, 10, 26, 10, 1, 2, 3, 4, 5, 6, 7, 8]),
        ("robots.txt", b"User-agent: *\nAllow: /\n"),
        ("docs/a b+c%.txt", b"odd name"),
        ("docs/café.txt", b"unicode name"),
        (".env", b"SECRET=hunter2"),
        (".git/config", b"[core]"),
    ])
}

static COUNTER: AtomicU32 = AtomicU32::new(0);

/// A bucket name unique to this test process and call.
pub(crate) fn unique_bucket(tag: &str) -> String {
    format!(
        "t{}-{}-{}",
        std::process::id(),
        COUNTER.fetch_add(1, Ordering::Relaxed),
        tag
    )
    .to_ascii_lowercase()
}

pub(crate) fn client(endpoint: &str, key: &str, secret: &str) -> Client {
    let conf = aws_sdk_s3::Config::builder()
        .behavior_version_latest()
        .endpoint_url(endpoint)
        .region(Region::new("us-east-1"))
        .credentials_provider(Credentials::new(key, secret, None, None, "test"))
        .force_path_style(true)
        .build();
    Client::from_conf(conf)
}

/// A bucket on the moto server, created for one test.
pub(crate) struct Bucket {
    pub endpoint: String,
    pub name: String,
    pub client: Client,
    pub rt: tokio::runtime::Runtime,
}

impl Bucket {
    pub(crate) fn moto(tag: &str) -> Bucket {
        let endpoint = moto_endpoint();
        let b = Bucket {
            client: client(&endpoint, "test", "test"),
            endpoint,
            name: unique_bucket(tag),
            rt: rt(),
        };
        b.rt.block_on(b.client.create_bucket().bucket(&b.name).send())
            .unwrap();
        b
    }

    pub(crate) fn url(&self, prefix: &str) -> String {
        if prefix.is_empty() {
            format!("s3://{}", self.name)
        } else {
            format!("s3://{}/{prefix}", self.name)
        }
    }

    pub(crate) fn keys(&self, prefix: &str) -> Vec<String> {
        self.rt.block_on(async {
            let mut out = Vec::new();
            let mut token = None;
            loop {
                let r = self
                    .client
                    .list_objects_v2()
                    .bucket(&self.name)
                    .prefix(prefix)
                    .set_continuation_token(token)
                    .send()
                    .await
                    .unwrap();
                out.extend(
                    r.contents()
                        .iter()
                        .filter_map(|o| o.key().map(str::to_string)),
                );
                match r.next_continuation_token() {
                    Some(t) => token = Some(t.to_string()),
                    None => break,
                }
            }
            out.sort();
            out
        })
    }

    pub(crate) fn head(&self, key: &str) -> aws_sdk_s3::operation::head_object::HeadObjectOutput {
        self.rt
            .block_on(self.client.head_object().bucket(&self.name).key(key).send())
            .unwrap_or_else(|e| panic!("head {key}: {e:?}"))
    }

    /// Stored bytes, gunzipped when the object is gzip-encoded.
    pub(crate) fn body(&self, key: &str) -> Vec<u8> {
        self.rt.block_on(async {
            let o = self
                .client
                .get_object()
                .bucket(&self.name)
                .key(key)
                .send()
                .await
                .unwrap_or_else(|e| panic!("get {key}: {e:?}"));
            let gz = o.content_encoding() == Some("gzip");
            let raw = o.body.collect().await.unwrap().into_bytes().to_vec();
            if gz {
                let mut out = Vec::new();
                flate2::read::GzDecoder::new(&raw[..])
                    .read_to_end(&mut out)
                    .unwrap();
                out
            } else {
                raw
            }
        })
    }

    pub(crate) fn delete(&self, key: &str) {
        self.rt
            .block_on(
                self.client
                    .delete_object()
                    .bucket(&self.name)
                    .key(key)
                    .send(),
            )
            .unwrap_or_else(|e| panic!("delete {key}: {e:?}"));
    }

    pub(crate) fn put(&self, key: &str, body: &[u8]) {
        self.rt
            .block_on(
                self.client
                    .put_object()
                    .bucket(&self.name)
                    .key(key)
                    .body(ByteStream::from(body.to_vec()))
                    .send(),
            )
            .unwrap();
    }
}

/// The real binary, with an environment that holds only what the test sets
/// (no AWS config files, no instance metadata), run in a temp dir so no
/// stray `cdnsync.toml` is picked up.
pub(crate) struct Cdnsync {
    pub cmd: std::process::Command,
    _cwd: tempfile::TempDir,
}

pub(crate) fn cdnsync(args: &[&str]) -> Cdnsync {
    in_clean_env(
        std::process::Command::new(env!("CARGO_BIN_EXE_cdnsync")),
        args,
    )
}

/// The real binary as `nobody` when the tests run as root (root reads any
/// file, so a mode-000 file is unreadable only to another user); its temp
/// working directory is open to that user.
pub(crate) fn cdnsync_as_nobody(args: &[&str]) -> Cdnsync {
    let cmd = if euid_is_root() {
        let mut c = std::process::Command::new("setpriv");
        c.args(["--reuid=65534", "--regid=65534", "--clear-groups", "--"])
            .arg(env!("CARGO_BIN_EXE_cdnsync"));
        c
    } else {
        std::process::Command::new(env!("CARGO_BIN_EXE_cdnsync"))
    };
    let c = in_clean_env(cmd, args);
    std::fs::set_permissions(
        c._cwd.path(),
        std::os::unix::fs::PermissionsExt::from_mode(0o777),
    )
    .unwrap();
    c
}

fn euid_is_root() -> bool {
    // `id -u` rather than libc, to keep the harness dependency-free.
    let o = std::process::Command::new("id").arg("-u").output().unwrap();
    String::from_utf8_lossy(&o.stdout).trim() == "0"
}

fn in_clean_env(mut cmd: std::process::Command, args: &[&str]) -> Cdnsync {
    let cwd = tempfile::tempdir().unwrap();
    cmd.env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("HOME", cwd.path())
        .env("AWS_CONFIG_FILE", cwd.path().join("no-aws-config"))
        .env(
            "AWS_SHARED_CREDENTIALS_FILE",
            cwd.path().join("no-aws-credentials"),
        )
        .env("AWS_EC2_METADATA_DISABLED", "true")
        .env("NO_COLOR", "1")
        .current_dir(cwd.path())
        .args(args);
    Cdnsync { cmd, _cwd: cwd }
}

/// `cdnsync` with moto's endpoint and dummy credentials.
pub(crate) fn cdnsync_moto(args: &[&str]) -> Cdnsync {
    let mut c = cdnsync(args);
    c.cmd
        .env("AWS_ACCESS_KEY_ID", "test")
        .env("AWS_SECRET_ACCESS_KEY", "test")
        .env("AWS_REGION", "us-east-1")
        .env("CDNSYNC_ENDPOINT_URL", moto_endpoint());
    c
}

pub(crate) struct Ran {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

impl Ran {
    pub(crate) fn json(&self) -> Value {
        serde_json::from_str(&self.stdout).unwrap_or_else(|e| {
            panic!(
                "stdout is not JSON ({e}):\n{}\nstderr:\n{}",
                self.stdout, self.stderr
            )
        })
    }
}

impl Cdnsync {
    pub(crate) fn env(mut self, k: &str, v: &str) -> Self {
        self.cmd.env(k, v);
        self
    }

    /// Start without waiting (stdout discarded, stderr piped).
    pub(crate) fn spawn(mut self) -> (std::process::Child, tempfile::TempDir) {
        let child = self
            .cmd
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        (child, self._cwd)
    }

    pub(crate) fn run(mut self) -> Ran {
        let out = self
            .cmd
            .stdin(std::process::Stdio::null())
            .output()
            .unwrap();
        Ran {
            code: out.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        }
    }

    /// Run, expect success, return the JSON report.
    pub(crate) fn ok_json(self) -> Value {
        let r = self.run();
        assert_eq!(
            r.code, 0,
            "cdnsync failed:\nstdout:\n{}\nstderr:\n{}",
            r.stdout, r.stderr
        );
        r.json()
    }

    /// Run, expect success (any output).
    pub(crate) fn ok_json_or_text(self) -> String {
        let r = self.run();
        assert_eq!(
            r.code, 0,
            "cdnsync failed:\nstdout:\n{}\nstderr:\n{}",
            r.stdout, r.stderr
        );
        r.stdout
    }

    /// Run, expect exit `code`, return stderr.
    pub(crate) fn fails(self, code: i32) -> String {
        let r = self.run();
        assert_eq!(
            r.code, code,
            "expected exit {code}:\nstdout:\n{}\nstderr:\n{}",
            r.stdout, r.stderr
        );
        r.stderr
    }
}

/// A plan of `dir` against `to` (on moto, no proxy) has nothing to do:
/// the target converged to the build.
pub(crate) fn assert_plan_noop(dir: &str, to: &str, what: &str) {
    let plan = cdnsync_moto(&["plan", dir, "--to", to, "--json"]).ok_json();
    assert_eq!(plan["noop"], true, "{what}: not converged: {plan:#}");
}

pub(crate) fn path_str(p: &Path) -> String {
    p.to_str().unwrap().to_string()
}

pub(crate) fn publish_args<'a>(dir: &'a str, to: &'a str) -> Vec<&'a str> {
    vec!["publish", dir, "--to", to, "--json"]
}

/// Publish arguments for tests of the plain sync mechanics (every file
/// keeps its path).
pub(crate) fn sync_args<'a>(dir: &'a str, to: &'a str) -> Vec<&'a str> {
    vec!["publish", dir, "--to", to, "--json", "--no-fingerprint"]
}

/// Keys of objects in a report with the given action.
pub(crate) fn keys_with(report: &Value, action: &str) -> Vec<String> {
    let mut v: Vec<String> = report["objects"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|o| o["action"] == action)
        .map(|o| o["key"].as_str().unwrap().to_string())
        .collect();
    v.sort();
    v
}

pub(crate) fn tmp_target() -> (tempfile::TempDir, PathBuf) {
    let d = tempfile::tempdir().unwrap();
    let p = d.path().join("out");
    (d, p)
}

/// A TCP proxy on 127.0.0.1 in front of `upstream` (`http://host:port`)
/// that delays every request by `delay` and counts requests: a slowed
/// server, and a clock to kill a run by.
pub(crate) struct SlowProxy {
    pub endpoint: String,
    pub requests: std::sync::Arc<std::sync::atomic::AtomicUsize>,
}

impl SlowProxy {
    pub(crate) fn start(upstream: &str, delay: std::time::Duration) -> SlowProxy {
        use std::io::{Read, Write};
        use std::sync::atomic::Ordering;
        let up = upstream.trim_start_matches("http://").to_string();
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let endpoint = format!("http://{}", l.local_addr().unwrap());
        let requests = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let count = requests.clone();
        std::thread::spawn(move || {
            for c in l.incoming() {
                let Ok(mut client) = c else { continue };
                let Ok(mut server) = std::net::TcpStream::connect(&up) else {
                    continue;
                };
                let (mut c2, mut s2) = (client.try_clone().unwrap(), server.try_clone().unwrap());
                let count = count.clone();
                std::thread::spawn(move || {
                    let mut buf = vec![0u8; 64 * 1024];
                    loop {
                        let n = match client.read(&mut buf) {
                            Ok(0) | Err(_) => break,
                            Ok(n) => n,
                        };
                        let head = &buf[..n.min(8)];
                        if [&b"GET "[..], b"PUT ", b"HEAD ", b"POST ", b"DELETE "]
                            .iter()
                            .any(|m| head.starts_with(m))
                        {
                            count.fetch_add(1, Ordering::SeqCst);
                            std::thread::sleep(delay);
                        }
                        if server.write_all(&buf[..n]).is_err() {
                            break;
                        }
                    }
                    let _ = server.shutdown(std::net::Shutdown::Write);
                });
                std::thread::spawn(move || {
                    let _ = std::io::copy(&mut s2, &mut c2);
                    let _ = c2.shutdown(std::net::Shutdown::Write);
                });
            }
        });
        SlowProxy { endpoint, requests }
    }

    pub(crate) fn count(&self) -> usize {
        self.requests.load(std::sync::atomic::Ordering::SeqCst)
    }
}

/// Everything the live pages load, transitively (pages → stylesheets,
/// scripts → images, modules…), exists at the moment it is looked at.
/// Objects no live page reaches (new assets during phase 1) do not count.
/// Returns the broken references.
pub(crate) fn broken_references(b: &Bucket) -> Vec<String> {
    let fetch = |k: &str| -> Option<Vec<u8>> {
        // Straight from the server, not through the slow proxy.
        let o =
            b.rt.block_on(b.client.get_object().bucket(&b.name).key(k).send())
                .ok()?;
        let gz = o.content_encoding() == Some("gzip");
        let raw =
            b.rt.block_on(o.body.collect())
                .unwrap()
                .into_bytes()
                .to_vec();
        Some(if gz {
            let mut v = Vec::new();
            flate2::read::GzDecoder::new(&raw[..])
                .read_to_end(&mut v)
                .unwrap();
            v
        } else {
            raw
        })
    };
    let mut queue: Vec<String> = b
        .keys("")
        .into_iter()
        .filter(|k| !k.starts_with(".cdnsync/") && k.ends_with(".html"))
        .collect();
    let mut seen: std::collections::HashSet<String> = queue.iter().cloned().collect();
    let mut bad = Vec::new();
    while let Some(k) = queue.pop() {
        let Some(lang) = cdnsync::graph::lang_of(&k) else {
            continue;
        };
        let Some(bytes) = fetch(&k) else { continue }; // a page deleted meanwhile
        let ex = cdnsync::graph::extract(lang, &bytes);
        for r in ex.refs {
            if r.module_specifier && cdnsync::graph::resolve::is_bare_specifier(&r.url) {
                continue;
            }
            let Ok(res) = cdnsync::graph::resolve::resolve(&r.url, &k, "/", None) else {
                continue;
            };
            if r.kind == cdnsync::graph::RefKind::Link || !seen.insert(res.path.clone()) {
                continue;
            }
            match fetch(&res.path) {
                Some(_) => queue.push(res.path),
                None => bad.push(format!("{k} -> {}", r.url)),
            }
        }
    }
    bad
}

/// A site whose pages, styles and scripts all change between versions.
pub(crate) fn changing_site(v: &str, pages: usize) -> Site {
    let s = Site::new(&[]);
    for i in 0..pages {
        s.write(
            &format!("p{i}/index.html"),
            format!("<link rel=stylesheet href=\"/css/s{}.css\"><script type=module src=\"/js/m{}.js\"></script><img src=\"/img/i{}.png\"><h1>{v} {i}</h1>", i % 5, i % 3, i % 4).as_bytes(),
        );
    }
    for i in 0..5 {
        s.write(
            &format!("css/s{i}.css"),
            format!("h1{{background:url(../img/i{}.png)}} /* {v} */", i % 4).as_bytes(),
        );
    }
    for i in 0..3 {
        s.write(
            &format!("js/m{i}.js"),
            format!("import './lib.js'; export const v = '{v}';").as_bytes(),
        );
    }
    s.write("js/lib.js", format!("export const lib = '{v}';").as_bytes());
    for i in 0..4 {
        s.write(&format!("img/i{i}.png"), format!("PNG {v} {i}").as_bytes());
    }
    s.write(
        "index.html",
        format!("<a href=\"/p0/\">{v}</a><link rel=stylesheet href=\"css/s0.css\">").as_bytes(),
    );
    s
}

/// `cdnsync-proxy` (tools/proxy.rs) in front of `upstream`, injecting faults
/// on a seeded schedule; killed when dropped.
pub(crate) struct FaultProxy {
    pub endpoint: String,
    child: std::process::Child,
    _dir: tempfile::TempDir,
}

impl FaultProxy {
    pub(crate) fn start(upstream: &str, spec: &str) -> FaultProxy {
        let dir = tempfile::tempdir().unwrap();
        let port_file = dir.path().join("port");
        let child = std::process::Command::new(env!("CARGO_BIN_EXE_cdnsync-proxy"))
            .args(["--upstream", upstream, "--port-file"])
            .arg(&port_file)
            .args(["--faults", spec])
            .stdout(std::process::Stdio::null())
            .spawn()
            .expect("start cdnsync-proxy (build with --features dev-tools)");
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        let port = loop {
            if let Ok(p) = std::fs::read_to_string(&port_file) {
                break p;
            }
            assert!(std::time::Instant::now() < deadline, "proxy did not start");
            std::thread::sleep(std::time::Duration::from_millis(10));
        };
        FaultProxy {
            endpoint: format!("http://127.0.0.1:{}", port.trim()),
            child,
            _dir: dir,
        }
    }

    fn control(&self, method: &str, path: &str) -> String {
        use std::io::{Read, Write};
        let addr = self.endpoint.trim_start_matches("http://");
        let mut s = std::net::TcpStream::connect(addr).unwrap();
        write!(
            s,
            "{method} {path} HTTP/1.1\r\nHost: {addr}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
        )
        .unwrap();
        let mut out = String::new();
        s.read_to_string(&mut out).unwrap();
        assert!(out.starts_with("HTTP/1.1 200"), "proxy control: {out}");
        out.split_once("\r\n\r\n").unwrap().1.to_string()
    }

    /// A new fault schedule; request numbering restarts at 0.
    pub(crate) fn set(&self, spec: &str) {
        self.control("POST", &format!("/__proxy/faults?{spec}"));
    }

    /// Requests (by operation, `TOTAL`, and `FAULT_<kind>`) since the start
    /// or the last `reset_counts`.
    pub(crate) fn counts(&self) -> std::collections::BTreeMap<String, u64> {
        serde_json::from_str(&self.control("GET", "/__proxy/counts")).unwrap()
    }

    pub(crate) fn reset_counts(&self) {
        self.control("POST", "/__proxy/reset");
    }

    pub(crate) fn faults_injected(&self) -> u64 {
        self.counts()
            .iter()
            .filter(|(k, _)| k.starts_with("FAULT_"))
            .map(|(_, v)| v)
            .sum()
    }

    /// `cdnsync` with moto's credentials, through this proxy.
    pub(crate) fn cdnsync(&self, args: &[&str]) -> Cdnsync {
        cdnsync_moto(args).env("CDNSYNC_ENDPOINT_URL", &self.endpoint)
    }
}

impl Drop for FaultProxy {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// What a reader of one object sees: raw bytes and the headers cdnsync sets.
#[derive(Debug, PartialEq, Eq)]
pub(crate) struct ObjectSnap {
    pub body: Vec<u8>,
    pub content_type: Option<String>,
    pub cache_control: Option<String>,
    pub content_encoding: Option<String>,
    pub sse: Option<String>,
    pub metadata: std::collections::BTreeMap<String, String>,
}

/// Every object of `before` is in `after`, bytes and headers unchanged
/// (objects may have been added).
pub(crate) fn assert_kept(
    before: &std::collections::BTreeMap<String, ObjectSnap>,
    after: &std::collections::BTreeMap<String, ObjectSnap>,
    when: &str,
) {
    for (k, o) in before {
        assert_eq!(after.get(k), Some(o), "{k} changed or vanished {when}");
    }
}

impl Bucket {
    /// Every object outside `.cdnsync/`, with its raw bytes and headers.
    pub(crate) fn snapshot(&self) -> std::collections::BTreeMap<String, ObjectSnap> {
        self.keys("")
            .into_iter()
            .filter(|k| !k.starts_with(".cdnsync/"))
            .map(|k| {
                let snap = self.rt.block_on(async {
                    let o = self
                        .client
                        .get_object()
                        .bucket(&self.name)
                        .key(&k)
                        .send()
                        .await
                        .unwrap_or_else(|e| panic!("get {k}: {e:?}"));
                    ObjectSnap {
                        content_type: o.content_type().map(str::to_string),
                        cache_control: o.cache_control().map(str::to_string),
                        content_encoding: o.content_encoding().map(str::to_string),
                        sse: o.server_side_encryption().map(|s| s.as_str().to_string()),
                        metadata: o
                            .metadata()
                            .map(|m| m.iter().map(|(a, b)| (a.clone(), b.clone())).collect())
                            .unwrap_or_default(),
                        body: o.body.collect().await.unwrap().into_bytes().to_vec(),
                    }
                });
                (k, snap)
            })
            .collect()
    }
}

/// `cdnsync serve DIR --port 0`, stopped (killed) when dropped.
pub(crate) struct Server {
    pub child: std::process::Child,
    pub base: String,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Start `cdnsync serve` on a free port; returns once it listens.
pub(crate) fn serve(dir: &Path) -> Server {
    use std::io::BufRead;
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_cdnsync"))
        .args(["serve", dir.to_str().unwrap(), "--port", "0"])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut line = String::new();
    std::io::BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    let base = line
        .trim()
        .rsplit(' ')
        .next()
        .unwrap()
        .trim_end_matches('/')
        .to_string();
    assert!(base.starts_with("http://127.0.0.1:"), "{line}");
    Server { child, base }
}

/// One HTTP answer, as curl saw it.
#[derive(Debug)]
pub(crate) struct Http {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Http {
    pub(crate) fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

/// `METHOD url` with extra request headers (curl; no redirects followed).
pub(crate) fn http(method: &str, url: &str, headers: &[(&str, &str)]) -> Http {
    let mut c = std::process::Command::new("curl");
    c.args(["-s", "-D", "-", "-o", "-", "-X", method]);
    if method == "HEAD" {
        c.arg("-I");
    }
    for (k, v) in headers {
        c.arg("-H").arg(format!("{k}: {v}"));
    }
    let out = c.arg(url).output().unwrap();
    let raw = out.stdout;
    let split = raw
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .expect("an HTTP answer");
    let head = String::from_utf8_lossy(&raw[..split]).into_owned();
    let mut lines = head.split("\r\n");
    let status = lines
        .next()
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    let headers = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_string(), v.trim().to_string()))
        .collect();
    Http {
        status,
        headers,
        body: raw[split + 4..].to_vec(),
    }
}

/// `HEAD` every path (relative URL paths, encoded here) over one keep-alive
/// connection; the status of each.
pub(crate) fn head_statuses(base: &str, paths: &[String]) -> Vec<(String, u16)> {
    use std::io::{BufRead, Write};
    const SEGMENT: &percent_encoding::AsciiSet = &percent_encoding::NON_ALPHANUMERIC
        .remove(b'-')
        .remove(b'.')
        .remove(b'_')
        .remove(b'~');
    let addr = base.trim_start_matches("http://").trim_end_matches('/');
    let conn = std::net::TcpStream::connect(addr).unwrap();
    let mut w = conn.try_clone().unwrap();
    let mut r = std::io::BufReader::new(conn);
    let mut out = Vec::new();
    for p in paths {
        let enc: Vec<String> = p
            .split('/')
            .map(|s| percent_encoding::utf8_percent_encode(s, SEGMENT).to_string())
            .collect();
        write!(
            w,
            "HEAD /{} HTTP/1.1\r\nHost: {addr}\r\n\r\n",
            enc.join("/")
        )
        .unwrap();
        let mut status = String::new();
        r.read_line(&mut status).unwrap();
        let code = status
            .split_whitespace()
            .nth(1)
            .and_then(|c| c.parse().ok())
            .unwrap_or(0);
        loop {
            let mut l = String::new();
            r.read_line(&mut l).unwrap();
            if l == "\r\n" || l.is_empty() {
                break;
            }
        }
        out.push((p.clone(), code));
    }
    out
}
