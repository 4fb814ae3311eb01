//! Bad input and bad remotes: one clear line naming the file, key or
//! setting, a distinct exit code, and nothing deleted.

use std::io::{Read, Write};
use std::net::TcpListener;

use crate::util::*;

const USAGE: i32 = 2;
const INPUT: i32 = 3;
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

#[test]
fn missing_dir_and_file_instead_of_dir() {
    let (_t, out) = tmp_target();
    let e = cdnsync(&publish_args("/nonexistent/dist", &path_str(&out))).fails(INPUT);
    assert!(
        one_line(&e).contains("/nonexistent/dist: directory not found"),
        "{e}"
    );
    let site = Site::new(&[("f.html", b"x")]);
    let f = path_str(&site.path().join("f.html"));
    let e = cdnsync(&publish_args(&f, &path_str(&out))).fails(INPUT);
    assert!(one_line(&e).contains("not a directory"), "{e}");
}

#[test]
fn symlink_escape_loop_and_non_utf8_names() {
    use std::os::unix::fs::symlink;
    let (_t, out) = tmp_target();
    let outside = tempfile::tempdir().unwrap();
    std::fs::write(outside.path().join("passwd"), "x").unwrap();

    let site = Site::new(&[("index.html", b"x")]);
    symlink(outside.path().join("passwd"), site.path().join("leak")).unwrap();
    let e = cdnsync(&publish_args(&path_str(site.path()), &path_str(&out))).fails(INPUT);
    assert!(one_line(&e).contains("leak: symlink points outside"), "{e}");

    let site = Site::new(&[("a/index.html", b"x")]);
    symlink(site.path(), site.path().join("a/loop")).unwrap();
    let e = cdnsync(&publish_args(&path_str(site.path()), &path_str(&out))).fails(INPUT);
    assert!(one_line(&e).contains("symlink loop"), "{e}");

    use std::os::unix::ffi::OsStrExt;
    let site = Site::new(&[("index.html", b"x")]);
    std::fs::write(
        site.path()
            .join(std::ffi::OsStr::from_bytes(b"caf\xe9.html")),
        "x",
    )
    .unwrap();
    let e = cdnsync(&publish_args(&path_str(site.path()), &path_str(&out))).fails(INPUT);
    assert!(one_line(&e).contains("not valid UTF-8"), "{e}");
    assert!(!out.exists(), "nothing may be written after an input error");
}

#[test]
fn invalid_config_target_and_flags() {
    let site = Site::new(&[("index.html", b"x")]);
    let dir = path_str(site.path());
    let cfg_dir = tempfile::tempdir().unwrap();
    let cfg = cfg_dir.path().join("cdnsync.toml");
    let c = path_str(&cfg);

    std::fs::write(&cfg, "to = \"./out\"\nconcurency = 4\n").unwrap();
    let e = cdnsync(&["publish", &dir, "--config", &c]).fails(USAGE);
    let line = one_line(&e);
    assert!(
        line.contains("cdnsync.toml:2:1:") && line.contains("concurency"),
        "{e}"
    );

    std::fs::write(&cfg, "to = [\n").unwrap();
    let e = cdnsync(&["publish", &dir, "--config", &c]).fails(USAGE);
    assert!(one_line(&e).contains("cdnsync.toml:"), "{e}");

    std::fs::write(&cfg, "[[rules]]\nglob = \"a/[b\"\n").unwrap();
    let e = cdnsync(&["publish", &dir, "--config", &c, "--to", "./out"]).fails(USAGE);
    assert!(one_line(&e).contains("invalid glob `a/[b`"), "{e}");

    std::fs::write(&cfg, "sse = \"rot13\"\n").unwrap();
    let e = cdnsync(&["publish", &dir, "--config", &c, "--to", "./out"]).fails(USAGE);
    assert!(one_line(&e).contains("`sse`"), "{e}");

    let e = cdnsync(&["publish", &dir, "--to", "gs://bucket"]).fails(USAGE);
    assert!(one_line(&e).contains("invalid target `gs://bucket`"), "{e}");
    let e = cdnsync(&["publish", &dir, "--to", "s3://Bad_Bucket"]).fails(USAGE);
    assert!(one_line(&e).contains("invalid target"), "{e}");
    let e = cdnsync(&["publish", &dir]).fails(USAGE);
    assert!(one_line(&e).contains("no target"), "{e}");
    let e = cdnsync(&[
        "publish",
        &dir,
        "--to",
        "s3://bucket",
        "--endpoint-url",
        "http://s3.example.com",
    ])
    .fails(USAGE);
    assert!(one_line(&e).contains("--allow-http"), "{e}");
    // clap's own usage errors use exit code 2 as well.
    let r = cdnsync(&["publish", &dir, "--to", "./o", "--sse", "des"]).run();
    assert_eq!(r.code, 2);
}

#[test]
fn missing_credentials() {
    let site = Site::new(&[("index.html", b"x")]);
    let e = cdnsync(&publish_args(&path_str(site.path()), "s3://some-bucket"))
        .env("AWS_REGION", "us-east-1")
        .env("CDNSYNC_ENDPOINT_URL", &moto_endpoint())
        .fails(AUTH);
    assert!(one_line(&e).contains("no AWS credentials"), "{e}");
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
fn corrupt_or_newer_manifest_is_refused_and_nothing_deleted() {
    let b = Bucket::moto("manifest");
    let site = Site::new(&[("index.html", b"<p>x</p>"), ("old.html", b"o")]);
    let dir = path_str(site.path());
    cdnsync_moto(&publish_args(&dir, &b.url(""))).ok_json();
    let id = String::from_utf8(b.body(".cdnsync/current"))
        .unwrap()
        .trim()
        .to_string();
    site.remove("old.html");

    b.put(
        &format!(".cdnsync/releases/{id}.json"),
        b"{\"format\": 7, \"id\": \"x\"}",
    );
    let e = cdnsync_moto(&publish_args(&dir, &b.url(""))).fails(REMOTE);
    assert!(one_line(&e).contains("newer cdnsync"), "{e}");

    b.put(
        &format!(".cdnsync/releases/{id}.json"),
        b"{\"format\": 1, \"id\": ",
    );
    let e = cdnsync_moto(&publish_args(&dir, &b.url(""))).fails(REMOTE);
    assert!(one_line(&e).contains("not valid JSON"), "{e}");
    assert!(
        b.keys("").contains(&"old.html".to_string()),
        "nothing deleted"
    );
}
