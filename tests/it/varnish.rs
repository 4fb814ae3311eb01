//! The http-purge backend against a real Varnish: varnishd on 127.0.0.1 with
//! examples/varnish/default.vcl in front of `cdnsync serve` (a local
//! target). Pages are cached; after a publish that changes some, exactly
//! those are fresh through Varnish at once and the others are still hits.

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use crate::util::*;

const HOST: &str = "site.test";

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn wait_port(port: u16, what: &str, child: &mut Child) {
    for _ in 0..200 {
        if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
            return;
        }
        if let Ok(Some(st)) = child.try_wait() {
            panic!("{what} exited early: {st}");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    panic!("{what} did not listen on {port}");
}

/// A process killed on drop.
struct Proc {
    child: Child,
    _work: Option<tempfile::TempDir>,
}
impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn serve(target: &Path) -> (Proc, u16) {
    let port = free_port();
    let mut child = Command::new(env!("CARGO_BIN_EXE_cdnsync"))
        .args(["serve", &path_str(target), "--port", &port.to_string()])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    wait_port(port, "cdnsync serve", &mut child);
    (Proc { child, _work: None }, port)
}

/// varnishd in the foreground with the example VCL, its backend pointed at
/// `backend_port`.
fn varnish(backend_port: u16) -> (Proc, u16) {
    let varnishd = std::env::var("CDNSYNC_TEST_VARNISHD").unwrap_or_else(|_| {
        panic!("CDNSYNC_TEST_VARNISHD is not set: run the tests with scripts/test.sh")
    });
    let work = tempfile::tempdir().unwrap();
    let vcl = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/examples/varnish/default.vcl"
    ))
    .unwrap();
    assert!(vcl.contains(".port = \"8080\";"));
    let vcl_path = work.path().join("default.vcl");
    std::fs::write(
        &vcl_path,
        vcl.replace(".port = \"8080\";", &format!(".port = \"{backend_port}\";")),
    )
    .unwrap();
    let port = free_port();
    let mut child = Command::new(varnishd)
        .arg("-F")
        .args(["-a", &format!("127.0.0.1:{port}")])
        .arg("-f")
        .arg(&vcl_path)
        .arg("-n")
        .arg(work.path().join("n"))
        .args(["-s", "malloc,32m", "-T", "none"])
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    wait_port(port, "varnishd", &mut child);
    (
        Proc {
            child,
            _work: Some(work),
        },
        port,
    )
}

struct Fetched {
    status: u16,
    body: String,
    cache: String,
    x_varnish: String,
    age: u64,
}

impl Fetched {
    /// X-Varnish holds two ids on a hit (this request's and the object's).
    fn hit(&self) -> bool {
        self.cache == "HIT" && self.x_varnish.split_whitespace().count() == 2
    }
}

fn get(port: u16, path: &str) -> Fetched {
    let out = Command::new("curl")
        .args(["-s", "-D", "-", "-H", &format!("Host: {HOST}")])
        .arg(format!("http://127.0.0.1:{port}{path}"))
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout).replace("\r\n", "\n");
    let (head, body) = text.split_once("\n\n").unwrap_or((&text, ""));
    let header = |name: &str| {
        head.lines()
            .find_map(|l| {
                l.split_once(':')
                    .filter(|(k, _)| k.eq_ignore_ascii_case(name))
                    .map(|(_, v)| v.trim().to_string())
            })
            .unwrap_or_default()
    };
    Fetched {
        status: head
            .split_whitespace()
            .nth(1)
            .and_then(|s| s.parse().ok())
            .unwrap_or(0),
        body: body.to_string(),
        cache: header("x-cache"),
        x_varnish: header("x-varnish"),
        age: header("age").parse().unwrap_or(0),
    }
}

fn page(v: &str, name: &str) -> Vec<u8> {
    format!("<!doctype html><link rel=stylesheet href=/style.css><h1>{name} {v}</h1>").into_bytes()
}

#[test]
fn changed_pages_are_fresh_through_varnish_and_the_rest_stay_cached() {
    let site = Site::new(&[
        ("index.html", &page("v1", "home")),
        ("about/index.html", &page("v1", "about")),
        ("blog/post.html", &page("v1", "post")),
        ("docs/a.html", &page("v1", "docs-a")),
        ("docs/b.html", &page("v1", "docs-b")),
        ("style.css", b"h1{color:red}"),
    ]);
    let (_t, target) = tmp_target();
    let dir = path_str(site.path());
    let to = path_str(&target);
    cdnsync(&["publish", &dir, "--to", &to]).ok_json_or_text();
    let (_serve, backend) = serve(&target);
    let (_varnish, vport) = varnish(backend);
    let purge = format!("http://127.0.0.1:{vport}");

    // Warm the cache: a miss, then a hit, for every page.
    let paths = [
        "/",
        "/about/",
        "/blog/post.html",
        "/docs/a.html",
        "/docs/b.html",
    ];
    for p in paths {
        let first = get(vport, p);
        assert_eq!(first.status, 200, "{p}: {}", first.body);
        assert_eq!(first.cache, "MISS", "{p}");
        let again = get(vport, p);
        assert!(
            again.hit(),
            "{p} not cached: {} / {}",
            again.cache,
            again.x_varnish
        );
        assert!(again.body.contains("v1"));
    }
    // The stylesheet's fingerprinted URL is cached with its immutable TTL.
    let home = get(vport, "/").body;
    let css = home
        .split("href=")
        .nth(1)
        .unwrap()
        .split('>')
        .next()
        .unwrap()
        .trim_matches('"')
        .to_string();
    assert!(
        css.starts_with("/style.") && css.ends_with(".css"),
        "{home}"
    );
    get(vport, &css);
    assert!(get(vport, &css).hit());

    // Change two pages; publish with PURGE (the default) for Host site.test.
    site.write("about/index.html", &page("v2", "about"));
    site.write("blog/post.html", &page("v2", "post"));
    let r = purging(&["publish", &dir], &to, &purge, &[]);
    let inv = &r["invalidations"][0];
    assert_eq!(inv["distribution"], purge);
    assert_eq!(inv["status"], "Purged");
    let purged: Vec<&str> = inv["paths"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p.as_str().unwrap())
        .collect();
    assert_eq!(
        purged,
        ["/about", "/about/", "/about/index.html", "/blog/post.html"]
    );
    assert!(r["cdn_failures"].as_array().unwrap().is_empty());

    // Changed: fresh at once (a miss with the new bytes). Unchanged: still hits.
    for p in ["/about/", "/blog/post.html"] {
        let f = get(vport, p);
        assert_eq!(f.cache, "MISS", "{p} was not purged");
        assert!(f.body.contains("v2"), "{p}: {}", f.body);
    }
    for p in ["/", "/docs/a.html", "/docs/b.html", css.as_str()] {
        let f = get(vport, p);
        assert!(
            f.hit(),
            "{p} lost from the cache: {} / {}",
            f.cache,
            f.x_varnish
        );
        assert!(!f.body.contains("v2"));
    }

    // BAN: a regex per path (and wildcards past --max-invalidation-paths).
    site.write("docs/a.html", &page("v3", "docs-a"));
    site.write("docs/b.html", &page("v3", "docs-b"));
    // Cache /docs/a.html?x=1 too: a ban covers query variants.
    get(vport, "/docs/a.html?x=1");
    assert!(get(vport, "/docs/a.html?x=1").hit());
    let r = purging(
        &["publish", &dir],
        &to,
        &purge,
        &["--purge-method", "ban", "--max-invalidation-paths", "1"],
    );
    assert_eq!(r["invalidations"][0]["paths"][0], "/docs/*", "{r}");
    std::thread::sleep(Duration::from_millis(200));
    for p in ["/docs/a.html", "/docs/b.html", "/docs/a.html?x=1"] {
        let f = get(vport, p);
        assert_eq!(f.cache, "MISS", "{p} was not banned");
        assert!(f.body.contains("v3"), "{p}: {}", f.body);
    }
    for p in ["/", "/about/"] {
        assert!(get(vport, p).hit(), "{p} was banned too");
    }
    assert!(get(vport, "/").age < 3600);

    // A rollback purges what it changes back, too.
    let r = purging(&["rollback"], &to, &purge, &[]);
    assert!(r["cdn_failures"].as_array().unwrap().is_empty(), "{r}");
    let f = get(vport, "/docs/a.html");
    assert_eq!(f.cache, "MISS");
    assert!(f.body.contains("v1"), "{}", f.body);
    assert!(get(vport, "/about/").hit());
}

/// `cdnsync ARGS --to TO --purge-url PURGE --purge-host site.test --json
/// EXTRA` (a publish or a rollback), expected to succeed: its report.
fn purging(args: &[&str], to: &str, purge: &str, extra: &[&str]) -> serde_json::Value {
    let mut all = args.to_vec();
    all.extend([
        "--to",
        to,
        "--purge-url",
        purge,
        "--purge-host",
        HOST,
        "--json",
    ]);
    all.extend(extra);
    cdnsync(&all).ok_json()
}

#[test]
fn a_failed_purge_keeps_the_release_and_says_purge_incomplete() {
    let site = Site::new(&[("index.html", &page("v1", "home"))]);
    let (_t, target) = tmp_target();
    let dir = path_str(site.path());
    let to = path_str(&target);
    cdnsync(&["publish", &dir, "--to", &to]).ok_json_or_text();
    site.write("index.html", &page("v2", "home"));

    // Nothing listens there.
    let dead = format!("http://127.0.0.1:{}", free_port());
    let r = cdnsync(&[
        "publish",
        &dir,
        "--to",
        &to,
        "--purge-url",
        &dead,
        "--purge-attempts",
        "2",
        "--json",
    ])
    .run();
    assert_eq!(r.code, 8, "stdout:\n{}\nstderr:\n{}", r.stdout, r.stderr);
    assert!(
        r.stderr
            .contains("is live, but a CDN routing update, invalidation or cache purge failed"),
        "{}",
        r.stderr
    );
    let j = r.json();
    assert!(
        j["cdn_failures"][0]
            .as_str()
            .unwrap()
            .contains("purges failed"),
        "{j}"
    );
    // The release went live regardless.
    assert!(
        std::fs::read_to_string(target.join("index.html"))
            .unwrap()
            .contains("v2")
    );

    // A cache that refuses (the VCL's ACL answers 405 to strangers; here a
    // plain server that does not know PURGE): reported, not retried forever.
    let (_serve, backend) = serve(&target);
    site.write("index.html", &page("v3", "home"));
    let refuse = format!("http://127.0.0.1:{backend}");
    let r = cdnsync(&[
        "publish",
        &dir,
        "--to",
        &to,
        "--purge-url",
        &refuse,
        "--json",
    ])
    .run();
    assert_eq!(r.code, 8, "{}", r.stderr);
    assert!(
        r.json()["cdn_failures"][0]
            .as_str()
            .unwrap()
            .contains("HTTP 405"),
        "{}",
        r.stdout
    );

    // Bad settings are usage errors before anything is written.
    let e = cdnsync(&[
        "publish",
        &dir,
        "--to",
        &to,
        "--purge-url",
        "http://cache.example.com:6081",
    ])
    .fails(2);
    assert!(e.contains("--allow-http"), "{e}");
    let e = cdnsync(&["publish", &dir, "--to", &to, "--purge-url", "ftp://x"]).fails(2);
    assert!(e.contains("--purge-url"), "{e}");
}
