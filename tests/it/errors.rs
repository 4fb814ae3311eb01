//! Bad remotes, the other half of the bad-input matrix (`bad_input.rs`):
//! missing, invalid or expired credentials, a missing bucket, access denied
//! on PUT, the wrong region, a corrupt or newer release record. Each gets
//! one clear line, a documented exit code (4 auth, 5 remote), and where a
//! live site exists it is left exactly as it was.

use std::io::{Read, Write};
use std::net::TcpListener;

use crate::util::*;

const USAGE: i32 = 2;
const AUTH: i32 = 4;
const REMOTE: i32 = 5;

/// The error is one line (after "error: ").
fn one_line(stderr: &str) -> &str {
    let lines: Vec<&str> = stderr
        .lines()
        .filter(|l| l.starts_with("error: "))
        .collect();
    assert_eq!(lines.len(), 1, "expected one error line:\n{stderr}");
    lines[0]
}

/// A moto bucket with a live site, and its objects to compare against.
fn live_bucket(
    tag: &str,
) -> (
    Bucket,
    String,
    std::collections::BTreeMap<String, ObjectSnap>,
) {
    let b = Bucket::moto(tag);
    let site = Site::new(&[
        (
            "index.html",
            b"<link rel=stylesheet href=/s.css><h1>live</h1>",
        ),
        ("s.css", b"h1{color:red}"),
        ("old.html", b"<p>old</p>"),
    ]);
    cdnsync_moto(&publish_args(&path_str(site.path()), &b.url(""))).ok_json();
    let before = b.snapshot();
    (b, path_str(site.path()), before)
}

/// A build that would change and delete things if it were published.
fn next_site() -> Site {
    Site::new(&[("index.html", b"<h1>next</h1>")])
}

#[test]
fn missing_credentials() {
    let (b, _, before) = live_bucket("nocreds");
    let site = next_site();
    let e = cdnsync(&publish_args(&path_str(site.path()), &b.url("")))
        .env("AWS_REGION", "us-east-1")
        .env("CDNSYNC_ENDPOINT_URL", &moto_endpoint())
        .fails(AUTH);
    assert!(one_line(&e).contains("no AWS credentials"), "{e}");
    assert_eq!(b.snapshot(), before);
}

#[test]
fn missing_region_without_endpoint() {
    let site = Site::new(&[("index.html", b"x")]);
    let e = cdnsync(&publish_args(&path_str(site.path()), "s3://some-bucket"))
        .env("AWS_ACCESS_KEY_ID", "x")
        .env("AWS_SECRET_ACCESS_KEY", "y")
        .fails(USAGE);
    assert!(one_line(&e).contains("no AWS region"), "{e}");
}

#[test]
fn bucket_missing() {
    let site = Site::new(&[("index.html", b"x")]);
    let e = cdnsync_moto(&publish_args(
        &path_str(site.path()),
        "s3://no-such-bucket-cdnsync",
    ))
    .fails(REMOTE);
    assert!(
        one_line(&e).contains("bucket `no-such-bucket-cdnsync` does not exist"),
        "{e}"
    );
}

#[test]
fn wrong_secret_is_access_denied_on_a_sigv4_server() {
    let endpoint = s3s_endpoint();
    let key = std::env::var("CDNSYNC_TEST_S3S_KEY").unwrap();
    let secret = std::env::var("CDNSYNC_TEST_S3S_SECRET").unwrap();
    let c = client(&endpoint, &key, &secret);
    let bucket = unique_bucket("auth");
    rt().block_on(c.create_bucket().bucket(&bucket).send())
        .unwrap();
    let site = Site::new(&[("index.html", b"x")]);
    let dir = path_str(site.path());
    let to = format!("s3://{bucket}");
    let e = cdnsync(&publish_args(&dir, &to))
        .env("AWS_ACCESS_KEY_ID", &key)
        .env("AWS_SECRET_ACCESS_KEY", "wrong-secret")
        .env("AWS_REGION", "us-east-1")
        .env("CDNSYNC_ENDPOINT_URL", &endpoint)
        .fails(AUTH);
    let line = one_line(&e);
    assert!(
        line.contains("access denied") && line.contains("secret access key"),
        "{e}"
    );
    // With the right secret the same publish works on this server too.
    let r = cdnsync(&publish_args(&dir, &to))
        .env("AWS_ACCESS_KEY_ID", &key)
        .env("AWS_SECRET_ACCESS_KEY", &secret)
        .env("AWS_REGION", "us-east-1")
        .env("CDNSYNC_ENDPOINT_URL", &endpoint)
        .env("CDNSYNC_SSE", "none")
        .env("CDNSYNC_COMPRESS", "none")
        .ok_json();
    assert_eq!(r["uploaded"], 1);
    // s3s-fs stores objects as plain files: the bytes must be the file's,
    // not aws-chunked framing (bodies are sent from memory, checksum in a header).
    let data = std::path::PathBuf::from(std::env::var("CDNSYNC_TEST_S3S_DATA").unwrap());
    assert_eq!(
        std::fs::read(data.join(&bucket).join("index.html")).unwrap(),
        b"x"
    );
}

/// A one-response-fits-all HTTP server: answers every request with `resp`.
/// Stands in for AWS behaviour a local server cannot produce (a bucket in
/// another region).
fn canned_server(resp: String) -> String {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = l.local_addr().unwrap();
    std::thread::spawn(move || {
        for s in l.incoming().take(64) {
            let Ok(mut s) = s else { continue };
            let mut buf = [0u8; 65536];
            let mut req = Vec::new();
            while !req.windows(4).any(|w| w == b"\r\n\r\n") {
                match s.read(&mut buf) {
                    Ok(0) | Err(_) => break,
                    Ok(n) => req.extend_from_slice(&buf[..n]),
                }
            }
            let _ = s.write_all(resp.as_bytes());
        }
    });
    format!("http://{addr}")
}

#[test]
fn wrong_region() {
    let body = "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<Error><Code>AuthorizationHeaderMalformed</Code><Message>The authorization header is malformed; the region 'us-east-1' is wrong; expecting 'eu-west-1'</Message><Region>eu-west-1</Region><RequestId>1</RequestId></Error>";
    let resp = format!(
        "HTTP/1.1 400 Bad Request\r\nContent-Type: application/xml\r\nx-amz-bucket-region: eu-west-1\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    let endpoint = canned_server(resp);
    let site = Site::new(&[("index.html", b"x")]);
    let e = cdnsync(&publish_args(&path_str(site.path()), "s3://eu-bucket"))
        .env("AWS_ACCESS_KEY_ID", "x")
        .env("AWS_SECRET_ACCESS_KEY", "y")
        .env("AWS_REGION", "us-east-1")
        .env("CDNSYNC_ENDPOINT_URL", &endpoint)
        .fails(REMOTE);
    assert!(
        one_line(&e).contains("another region (eu-west-1); pass --region eu-west-1"),
        "{e}"
    );
}

#[test]
fn expired_session_credentials() {
    let body = "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<Error><Code>ExpiredToken</Code><Message>The provided token has expired.</Message><RequestId>1</RequestId></Error>";
    let resp = format!(
        "HTTP/1.1 400 Bad Request\r\nContent-Type: application/xml\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    let endpoint = canned_server(resp);
    let site = next_site();
    let e = cdnsync(&publish_args(&path_str(site.path()), "s3://some-bucket"))
        .env("AWS_ACCESS_KEY_ID", "ASIAEXAMPLE")
        .env("AWS_SECRET_ACCESS_KEY", "y")
        .env("AWS_SESSION_TOKEN", "expired-token")
        .env("AWS_REGION", "us-east-1")
        .env("CDNSYNC_ENDPOINT_URL", &endpoint)
        .fails(AUTH);
    let line = one_line(&e);
    assert!(line.contains("session credentials expired"), "{line}");
    assert!(
        !e.contains("expired-token"),
        "the session token was logged: {e}"
    );
}

#[test]
fn unknown_access_key_on_a_sigv4_server() {
    let endpoint = s3s_endpoint();
    let site = next_site();
    let e = cdnsync(&publish_args(&path_str(site.path()), "s3://any-bucket"))
        .env("AWS_ACCESS_KEY_ID", "AKIANOTKNOWN")
        .env("AWS_SECRET_ACCESS_KEY", "wrong-secret")
        .env("AWS_REGION", "us-east-1")
        .env("CDNSYNC_ENDPOINT_URL", &endpoint)
        .fails(AUTH);
    let line = one_line(&e);
    assert!(line.contains("access denied"), "{line}");
    assert!(!e.contains("wrong-secret"), "the secret was logged: {e}");
}

#[test]
fn access_denied_on_put() {
    // Reads allowed, writes denied (a read-only role): the S3 server cannot
    // be told to do that, so the proxy answers PUT and COPY with 403.
    let (b, _, before) = live_bucket("denyput");
    let proxy = FaultProxy::start(&moto_endpoint(), "deny=PUT+COPY+DELETE_OBJECTS");
    let site = next_site();
    let e = proxy
        .cdnsync(&publish_args(&path_str(site.path()), &b.url("")))
        .fails(AUTH);
    let line = one_line(&e);
    assert!(
        line.contains("access denied") && line.contains(".cdnsync/lock"),
        "{line}"
    );
    assert_eq!(b.snapshot(), before);
    // Denied only for content (the lock is allowed): the upload fails, the
    // lock is released, nothing is deleted.
    proxy.set("deny=COPY");
    let e = proxy
        .cdnsync(&publish_args(&path_str(site.path()), &b.url("")))
        .run();
    assert_eq!(e.code, AUTH, "{}", e.stderr);
    let line = one_line(&e.stderr);
    eprintln!("{line}");
    assert!(line.contains("access denied"), "{line}");
    let after = b.snapshot();
    assert_kept(&before, &after, "after a denied publish");
    assert!(b.keys(".cdnsync/lock").is_empty(), "lock released");
}

#[test]
fn corrupt_release_record_is_refused_and_nothing_deleted() {
    let (b, dir, _) = live_bucket("corrupt");
    let id = String::from_utf8(b.body(".cdnsync/current")).unwrap();
    b.put(
        &format!(".cdnsync/releases/{}.json", id.trim()),
        b"{\"format\": 1, \"id\": ",
    );
    let before = b.snapshot();
    let site = next_site();
    let e = cdnsync_moto(&publish_args(&path_str(site.path()), &b.url(""))).fails(REMOTE);
    let line = one_line(&e);
    assert!(
        line.contains("not valid JSON") && line.contains(id.trim()),
        "{line}"
    );
    assert_eq!(b.snapshot(), before);
    drop(dir);
}

#[test]
fn release_record_from_a_newer_cdnsync_is_refused_and_nothing_deleted() {
    let (b, _dir, _) = live_bucket("newer");
    let id = String::from_utf8(b.body(".cdnsync/current")).unwrap();
    b.put(
        &format!(".cdnsync/releases/{}.json", id.trim()),
        b"{\"format\": 7, \"id\": \"x\"}",
    );
    let before = b.snapshot();
    let site = next_site();
    let e = cdnsync_moto(&publish_args(&path_str(site.path()), &b.url(""))).fails(REMOTE);
    assert!(one_line(&e).contains("newer cdnsync"), "{e}");
    assert_eq!(b.snapshot(), before);
    assert!(
        b.keys("").contains(&"old.html".to_string()),
        "nothing deleted"
    );
}

#[test]
fn current_pointer_that_is_not_a_release_id_is_refused_and_nothing_deleted() {
    let (b, _dir, _) = live_bucket("badcurrent");
    b.put(".cdnsync/current", b"\x00garbage/../x");
    let before = b.snapshot();
    let site = next_site();
    let e = cdnsync_moto(&publish_args(&path_str(site.path()), &b.url(""))).fails(REMOTE);
    let line = one_line(&e);
    assert!(
        line.contains(".cdnsync/current") && line.contains("does not contain a release id"),
        "{line}"
    );
    assert!(line.contains("To recover"), "{line}");
    assert_eq!(b.snapshot(), before);
}

#[test]
fn current_pointer_to_a_missing_release_is_refused_and_recovery_adopts() {
    let (b, _dir, _) = live_bucket("lostrecord");
    b.put(".cdnsync/current", b"20990101T000000.000Z-deadbeef\n");
    let before = b.snapshot();
    let site = next_site();
    let dir = path_str(site.path());
    let e = cdnsync_moto(&publish_args(&dir, &b.url(""))).fails(REMOTE);
    let line = one_line(&e);
    assert!(line.contains("manifest is missing"), "{line}");
    assert_eq!(b.snapshot(), before);
    // The recovery the message gives: without `current`, the next publish
    // adopts what is live and deletes nothing it did not publish.
    b.delete(".cdnsync/current");
    cdnsync_moto(&publish_args(&dir, &b.url(""))).ok_json();
    assert_eq!(b.body("index.html"), b"<h1>next</h1>");
    assert!(b.keys("").contains(&"old.html".to_string()));
}
