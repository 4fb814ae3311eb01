//! The GitHub Action's scripts (`scripts/action/install.sh`, `run.sh`), run
//! the way the composite action runs them: GITHUB_ACTIONS, GITHUB_OUTPUT,
//! GITHUB_STEP_SUMMARY and GITHUB_PATH are temp files, the release asset is
//! served from 127.0.0.1, and the publish goes to moto (S3 + CloudFront).

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use crate::cloudfront::distribution;
use crate::util::*;

const TRIPLE: &str = "x86_64-unknown-linux-gnu";

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// A python http.server on a free port serving `dir`; killed on drop.
struct Http {
    child: std::process::Child,
    port: u16,
}

impl Http {
    fn serve(dir: &Path) -> Http {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let child = Command::new("python3")
            .args([
                "-m",
                "http.server",
                "--bind",
                "127.0.0.1",
                &port.to_string(),
            ])
            .current_dir(dir)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        for _ in 0..100 {
            if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
                break;
            }
            std::thread::sleep(std::time::Duration::from_millis(50));
        }
        Http { child, port }
    }
    fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }
}

impl Drop for Http {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// `releases/download/v<version>/cdnsync-<triple>.tar.gz` (+ `.sha256`) with
/// the binary under test inside; `sha` overrides the published checksum.
/// Returns the asset's real SHA-256.
fn release_dir(root: &Path, version: &str, sha: Option<&str>) -> String {
    let dir = root.join(format!("download/v{version}"));
    std::fs::create_dir_all(&dir).unwrap();
    let stage = tempfile::tempdir().unwrap();
    let pkg = stage.path().join(format!("cdnsync-{TRIPLE}"));
    std::fs::create_dir_all(&pkg).unwrap();
    std::fs::copy(env!("CARGO_BIN_EXE_cdnsync"), pkg.join("cdnsync")).unwrap();
    let asset = dir.join(format!("cdnsync-{TRIPLE}.tar.gz"));
    let st = Command::new("tar")
        .arg("-czf")
        .arg(&asset)
        .arg("-C")
        .arg(stage.path())
        .arg(format!("cdnsync-{TRIPLE}"))
        .status()
        .unwrap();
    assert!(st.success());
    let real = {
        use sha2::Digest;
        hex::encode(sha2::Sha256::digest(std::fs::read(&asset).unwrap()))
    };
    std::fs::write(
        dir.join(format!("cdnsync-{TRIPLE}.tar.gz.sha256")),
        format!("{}  cdnsync-{TRIPLE}.tar.gz\n", sha.unwrap_or(&real)),
    )
    .unwrap();
    real
}

/// Run one of the action's scripts with a runner-like environment.
fn script(name: &str, env: &[(&str, String)]) -> Ran {
    let mut cmd = Command::new("bash");
    cmd.arg(repo().join("scripts/action").join(name))
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("HOME", std::env::temp_dir())
        .env("AWS_EC2_METADATA_DISABLED", "true")
        .env("RUNNER_OS", "Linux")
        .env("RUNNER_ARCH", "X64")
        .env("GITHUB_ACTION_PATH", repo());
    for (k, v) in env {
        cmd.env(k, v);
    }
    let out = cmd.stdin(Stdio::null()).output().unwrap();
    Ran {
        code: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

/// `name=value` lines of a GITHUB_OUTPUT file.
fn outputs(path: &Path) -> std::collections::HashMap<String, String> {
    std::fs::read_to_string(path)
        .unwrap_or_default()
        .lines()
        .filter_map(|l| l.split_once('='))
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

#[test]
fn install_checks_the_sha256_then_run_publishes_with_summary_and_outputs() {
    let tmp = tempfile::tempdir().unwrap();
    let t = |n: &str| tmp.path().join(n);
    let releases = t("releases");
    let ours = env!("CARGO_PKG_VERSION");
    let real = release_dir(&releases, ours, None);
    release_dir(&releases, "6.6.6", Some(&"0".repeat(64)));
    let wrong_version = release_dir(&releases, "9.9.9", None);
    release_dir(&releases, "5.5.5", None);
    let asset = format!("cdnsync-{TRIPLE}.tar.gz");
    // The sums pinned in the action's repository: 6.6.6's asset was
    // tampered with after it was pinned; 5.5.5 was never pinned.
    let pins = t("checksums.txt");
    std::fs::write(
        &pins,
        format!(
            "# pinned\n{ours} {asset} {real}\n6.6.6 {asset} {}\n9.9.9 {asset} {wrong_version}\n",
            "1".repeat(64)
        ),
    )
    .unwrap();
    let http = Http::serve(&releases);
    let install = |version: &str, dir: &str| {
        script(
            "install.sh",
            &[
                ("CDNSYNC_VERSION", version.into()),
                ("CDNSYNC_DOWNLOAD_URL", http.url()),
                ("CDNSYNC_CHECKSUMS", path_str(&pins)),
                ("CDNSYNC_INSTALL_DIR", path_str(&t(dir))),
                ("GITHUB_OUTPUT", path_str(&t(&format!("{dir}-output")))),
                ("GITHUB_PATH", path_str(&t("path"))),
            ],
        )
    };

    // Refused, nothing installed: a tampered asset, a version without a
    // pinned sum, a binary that is not the version asked for, a version
    // that is a path.
    for (version, why) in [
        ("v6.6.6", "::error::checksum mismatch"),
        ("5.5.5", "::error::no SHA-256 pinned for cdnsync 5.5.5"),
        ("9.9.9", "::error::asked for cdnsync 9.9.9"),
        ("1/../../../other/repo", "::error::invalid version"),
        ("latest; rm -rf /", "::error::invalid version"),
    ] {
        let r = install(version, "bad");
        assert_ne!(r.code, 0, "{version}: {}\n{}", r.stdout, r.stderr);
        assert!(r.stdout.contains(why), "{version}: {}", r.stdout);
        assert!(!t("bad/cdnsync").exists(), "{version}");
        assert!(outputs(&t("bad-output")).is_empty());
    }

    // The published asset installs, runs, and is reported.
    let r = install(ours, "bin");
    std::fs::rename(t("bin-output"), t("install-output")).unwrap();
    assert_eq!(r.code, 0, "{}\n{}", r.stdout, r.stderr);
    let inst = outputs(&t("install-output"));
    let bin = inst["bin"].clone();
    assert_eq!(bin, path_str(&t("bin/cdnsync")));
    assert_eq!(inst["version"], env!("CARGO_PKG_VERSION"));
    assert_eq!(
        std::fs::read_to_string(t("path")).unwrap().trim(),
        path_str(&t("bin"))
    );
    assert!(r.stderr.contains("sha256"), "{}", r.stderr);

    // Publish through run.sh, as the action's second step.
    let b = Bucket::moto("action");
    let dist = distribution(&b, "");
    let site = Site::new(&[
        ("index.html", b"<!doctype html>\n<link rel=stylesheet href=/app.css>\n<img src=/missing.png>\n<p>v1</p>"),
        ("about/index.html", b"<!doctype html><p>about</p>"),
        ("app.css", b"body{color:red}"),
    ]);
    let to = b.url("www");
    let step = |summary: &Path, output: &Path, args: &str| {
        script(
            "run.sh",
            &[
                ("CDNSYNC_BIN", bin.clone()),
                ("GITHUB_ACTIONS", "true".into()),
                ("GITHUB_STEP_SUMMARY", path_str(summary)),
                ("GITHUB_OUTPUT", path_str(output)),
                ("INPUT_DIR", path_str(site.path())),
                ("INPUT_TO", to.clone()),
                ("INPUT_DISTRIBUTION_ID", dist.clone()),
                ("INPUT_CONFIG", String::new()),
                ("INPUT_ARGS", args.to_string()),
                ("AWS_ACCESS_KEY_ID", "test".into()),
                ("AWS_SECRET_ACCESS_KEY", "test".into()),
                ("AWS_REGION", "us-east-1".into()),
                ("CDNSYNC_ENDPOINT_URL", moto_endpoint()),
                ("CDNSYNC_CDN_ENDPOINT_URL", moto_endpoint()),
            ],
        )
    };
    let r = step(
        &t("summary1"),
        &t("output1"),
        "--message \"first deploy, with 'quotes'\"",
    );
    assert_eq!(r.code, 0, "{}\n{}", r.stdout, r.stderr);
    let o = outputs(&t("output1"));
    let release1 = o["release"].clone();
    assert!(release1.len() > 20, "{o:?}");
    // The files, and the renamed asset's original URL.
    assert_eq!(o["uploaded"], "4");
    assert_eq!(
        o["invalidation-id"], "",
        "all paths new: nothing to invalidate"
    );
    assert!(
        o["url"].starts_with("https://") && o["url"].ends_with(".cloudfront.net/www/"),
        "{o:?}"
    );
    // The missing image is an annotation on the page's file and line.
    let page = path_str(&site.path().join("index.html"));
    assert!(
        r.stdout.contains(&format!(
            "::warning file={},line=3::reference to missing file `/missing.png`",
            page.replace(':', "%3A").replace(',', "%2C")
        )),
        "{}",
        r.stdout
    );
    assert!(
        r.stdout.contains("::group::Details (4 changes)"),
        "{}",
        r.stdout
    );
    assert!(r.stdout.contains("::endgroup::"));
    let summary = std::fs::read_to_string(t("summary1")).unwrap();
    assert!(summary.starts_with("### cdnsync publish\n"), "{summary}");
    assert!(summary.contains(&release1), "{summary}");
    assert!(summary.contains("| Uploaded | **4**"), "{summary}");
    assert!(summary.contains("<code>www/index.html</code>"), "{summary}");
    assert!(summary.contains("reference to missing file"), "{summary}");
    // The quoted --message went through intact.
    let rel = cdnsync_moto(&["releases", "--to", &to, "--json"]).ok_json();
    assert_eq!(rel[0]["message"], "first deploy, with 'quotes'", "{rel}");

    // A change to a page: the next run reports its invalidation.
    site.write("about/index.html", b"<!doctype html><p>about v2</p>");
    let r = step(&t("summary2"), &t("output2"), "");
    assert_eq!(r.code, 0, "{}\n{}", r.stdout, r.stderr);
    let o = outputs(&t("output2"));
    assert_eq!(o["uploaded"], "1");
    assert!(!o["invalidation-id"].is_empty(), "{o:?}");
    assert_eq!(o["previous-release"], release1);
    let summary = std::fs::read_to_string(t("summary2")).unwrap();
    assert!(summary.contains("| Invalidation |"), "{summary}");
    assert!(summary.contains("/about/"), "{summary}");

    // Nothing changed: a no-op, same release.
    let r = step(&t("summary3"), &t("output3"), "");
    assert_eq!(r.code, 0, "{}", r.stderr);
    let o = outputs(&t("output3"));
    assert_eq!(o["noop"], "true");
    assert_eq!(o["uploaded"], "0");
    assert!(
        std::fs::read_to_string(t("summary3"))
            .unwrap()
            .contains("up to date")
    );

    // A failure is an ::error:: annotation and a summary that says so.
    let r = script(
        "run.sh",
        &[
            ("CDNSYNC_BIN", bin.clone()),
            ("GITHUB_ACTIONS", "true".into()),
            ("GITHUB_STEP_SUMMARY", path_str(&t("summary4"))),
            ("GITHUB_OUTPUT", path_str(&t("output4"))),
            ("INPUT_DIR", path_str(site.path())),
            ("INPUT_TO", "s3://no-such-bucket-action".into()),
            ("AWS_ACCESS_KEY_ID", "test".into()),
            ("AWS_SECRET_ACCESS_KEY", "test".into()),
            ("AWS_REGION", "us-east-1".into()),
            ("CDNSYNC_ENDPOINT_URL", moto_endpoint()),
        ],
    );
    assert_eq!(r.code, 5, "{}\n{}", r.stdout, r.stderr);
    assert!(r.stdout.contains("::error::"), "{}", r.stdout);
    assert!(r.stdout.contains("no-such-bucket-action"), "{}", r.stdout);
    let summary = std::fs::read_to_string(t("summary4")).unwrap();
    assert!(
        summary.contains("cdnsync publish failed") && summary.contains("| Exit code | 5 |"),
        "{summary}"
    );
    assert!(outputs(&t("output4")).is_empty());

    // A missing `dir` input is a clear error.
    let r = script("run.sh", &[("CDNSYNC_BIN", bin)]);
    assert_eq!(r.code, 2);
    assert!(r.stdout.contains("`dir` input is required"), "{}", r.stdout);
}

#[test]
fn run_sh_fails_on_args_it_cannot_parse_and_never_echoes_credentials() {
    let site = Site::new(&[("index.html", b"<p>x</p>")]);
    let (_t, out) = tmp_target();
    let run = |args: &str| {
        script(
            "run.sh",
            &[
                ("CDNSYNC_BIN", env!("CARGO_BIN_EXE_cdnsync").into()),
                ("INPUT_DIR", path_str(site.path())),
                ("INPUT_TO", path_str(&out)),
                ("INPUT_ARGS", args.into()),
            ],
        )
    };
    // An unmatched quote must not turn a dry run into a publish.
    let r = run("--message=it's --dry-run");
    assert_eq!(r.code, 2, "{}\n{}", r.stdout, r.stderr);
    assert!(
        r.stdout.contains("::error::cannot parse the `args` input"),
        "{}",
        r.stdout
    );
    assert!(!out.join("index.html").exists(), "published anyway");
    // One argument per line: exactly as written, quotes and all.
    let r = run("--dry-run\n--message=it's \"fine\"\n");
    assert_eq!(r.code, 0, "{}\n{}", r.stdout, r.stderr);
    assert!(!out.join("index.html").exists(), "--dry-run was honoured");
    // Credentials inside a URL never reach the log.
    let r = run("--dry-run --purge-url http://admin:s3cret@127.0.0.1:9/");
    assert!(
        !r.stderr.contains("s3cret") && !r.stdout.contains("s3cret"),
        "{}\n{}",
        r.stdout,
        r.stderr
    );
    assert!(r.stderr.contains("http://***@127.0.0.1:9/"), "{}", r.stderr);
}
