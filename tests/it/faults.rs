//! Faults injected between cdnsync and the S3 server by `cdnsync-proxy`
//! (tools/proxy.rs): a flaky server (503 SlowDown, resets before and in the
//! middle of bodies) is survived — every publish and migration converges to
//! the same objects, bytes and headers as on a healthy server — and a server
//! that stops answering fails the run with nothing deleted, the live site
//! intact, and the next clean run converging.

use crate::util::*;

/// 5 % 503 SlowDown, 1 % resets before the request, 1 % resets mid-body.
const FLAKY: &str = "slowdown=0.05&reset=0.01&reset_mid=0.01";

/// Publish `dir` through `proxy`, rerunning (still through the faults) when
/// a run fails: returns the report of the run that succeeded and how many
/// failed before it.
fn publish_until_ok(proxy: &FaultProxy, dir: &str, to: &str) -> (serde_json::Value, usize) {
    for failed in 0..3 {
        let r = proxy
            .cdnsync(&["publish", dir, "--to", to, "--json", "--wait-lock", "30s"])
            .run();
        if r.code == 0 {
            return (r.json(), failed);
        }
        eprintln!("publish failed (exit {}), rerunning:\n{}", r.code, r.stderr);
    }
    panic!("publish did not converge in 3 runs through the faults");
}

#[test]
fn twenty_publishes_through_a_flaky_server_converge_to_the_same_objects() {
    let flaky = Bucket::moto("flaky");
    let healthy = Bucket::moto("healthy");
    let proxy = FaultProxy::start(&moto_endpoint(), &format!("seed=8&{FLAKY}"));
    let mut reruns = 0;
    for i in 0..20 {
        // Pages, styles, scripts and images all change; the page count
        // varies, so pages are also added and deleted.
        let s = changing_site(&format!("v{i}"), 6 + (i * 7) % 9);
        let dir = path_str(s.path());
        let (r, failed) = publish_until_ok(&proxy, &dir, &flaky.url(""));
        reruns += failed;
        assert_eq!(r["dry_run"], false);
        cdnsync_moto(&publish_args(&dir, &healthy.url(""))).ok_json();
        // Converged: a plan from a healthy connection has nothing to do, no
        // live reference is broken, and every object (bytes and headers)
        // is what the same publishes made on a healthy server.
        assert_plan_noop(&dir, &flaky.url(""), &format!("publish {i}"));
        assert!(broken_references(&flaky).is_empty());
        let (got, want) = (flaky.snapshot(), healthy.snapshot());
        assert_eq!(
            got.keys().collect::<Vec<_>>(),
            want.keys().collect::<Vec<_>>(),
            "publish {i}: keys differ"
        );
        for (k, w) in &want {
            assert_eq!(&got[k], w, "publish {i}: {k} differs");
        }
    }
    let c = proxy.counts();
    eprintln!("faults: {c:?}, reruns: {reruns}");
    assert!(
        c.get("FAULT_slowdown").copied().unwrap_or(0) >= 10
            && c.get("FAULT_reset").copied().unwrap_or(0) >= 1
            && c.get("FAULT_reset_mid").copied().unwrap_or(0) >= 1,
        "the schedule injected too few faults to mean anything: {c:?}"
    );
    assert!(reruns <= 2, "{reruns} publishes needed a rerun");
}

#[test]
fn a_server_that_stops_answering_fails_the_publish_deletes_nothing_and_the_next_run_converges() {
    let v1 = changing_site("v1", 10);
    // How many requests a publish of the change takes, on a copy.
    let probe = Bucket::moto("deadprobe");
    cdnsync_moto(&publish_args(&path_str(v1.path()), &probe.url(""))).ok_json();
    let proxy = FaultProxy::start(&moto_endpoint(), "");
    let v2 = changing_site("v2", 7); // three pages fewer: deletes planned
    let dir2 = path_str(v2.path());
    proxy
        .cdnsync(&publish_args(&dir2, &probe.url("")))
        .ok_json();
    let total = proxy.counts()["TOTAL"];
    assert!(total > 30, "{total}");

    // Fail everything from the K-th request on, for K across the phases
    // before the switch (read, lock, uploads, release record), and with
    // each kind of failure. Each K starts from the same state as the probe
    // (a failed run leaves stored bodies behind, which the next run reuses,
    // so its requests would not line up with the probe's).
    // The switch (server-side copies) and what follows it are left out:
    // from there on a page may already be new, which is allowed.
    let copies = proxy.counts().get("COPY").copied().unwrap_or(0);
    let before_switch = total - copies - 8;
    let ks: Vec<u64> = [0.0, 0.05, 0.2, 0.5, 0.9]
        .iter()
        .map(|f| (before_switch as f64 * f) as u64)
        .collect();
    let mut last = None;
    for (i, (k, with)) in ks
        .iter()
        .zip(["internal", "reset", "slowdown", "internal", "reset"])
        .enumerate()
    {
        let b = Bucket::moto(&format!("dead{i}"));
        let to = b.url("");
        cdnsync_moto(&publish_args(&path_str(v1.path()), &to)).ok_json();
        let current = b.body(".cdnsync/current");
        let before = b.snapshot();
        proxy.set(&format!("fail_after={k}&fail_with={with}"));
        let r = proxy.cdnsync(&publish_args(&dir2, &to)).run();
        assert_ne!(
            r.code, 0,
            "publish with a dead server after {k} requests succeeded"
        );
        let errors: Vec<&str> = r
            .stderr
            .lines()
            .filter(|l| l.starts_with("error: "))
            .collect();
        assert_eq!(errors.len(), 1, "one error line:\n{}", r.stderr);
        assert_kept(
            &before,
            &b.snapshot(),
            &format!("after a failure at request {k}"),
        );
        assert_eq!(b.body(".cdnsync/current"), current, "release switched");
        assert!(broken_references(&b).is_empty());
        cdnsync_moto(&["unlock", "--to", &to, "--force"]).ok_json_or_text();
        last = Some((b, to));
    }
    // Healthy again: the next run converges.
    let (b, to) = last.unwrap();
    proxy.set("");
    let r = proxy.cdnsync(&publish_args(&dir2, &to)).ok_json();
    assert_eq!(r["dry_run"], false);
    assert_plan_noop(&dir2, &to, "after the server recovered");
    assert!(String::from_utf8_lossy(&b.body("p3/index.html")).contains("v2 3"));
    assert!(
        b.keys("p8/").is_empty(),
        "pages gone from the site were deleted"
    );
}

fn uploads(n: usize, v: &str) -> Site {
    let files: Vec<(String, Vec<u8>)> = (0..n)
        .map(|i| {
            (
                format!("u/{:02}/{i:04} photo.jpg", i % 7),
                format!("JPEG {v} {i}").into_bytes(),
            )
        })
        .collect();
    Site::from_files(&files)
}

#[test]
fn migrate_through_a_flaky_server_converges_and_a_dead_one_deletes_nothing() {
    let b = Bucket::moto("migflaky");
    let to = b.url("media");
    let site = uploads(300, "a");
    let src = path_str(site.path());
    let proxy = FaultProxy::start(&moto_endpoint(), &format!("seed=3&{FLAKY}"));
    let args = ["migrate", &src, "--to", &to, "--json", "--no-state"];
    let mut runs = 0;
    let r = loop {
        runs += 1;
        let r = proxy.cdnsync(&args).run();
        if r.code == 0 {
            break r.json();
        }
        assert!(runs < 3, "migrate did not converge: {}", r.stderr);
    };
    assert!(proxy.faults_injected() >= 10, "{:?}", proxy.counts());
    let again = cdnsync_moto(&args).ok_json();
    assert_eq!(again["unchanged"], 300, "{again:#} after {r:#}");
    let keys = b.keys("media/");
    assert_eq!(keys.len(), 300);
    assert_eq!(b.body("media/u/03/0003 photo.jpg"), b"JPEG a 3");

    // The server stops answering half-way through a migration: it fails,
    // and what was uploaded is whole. Deleting the sources through a dead
    // server deletes none of them (nothing can be verified).
    let site2 = uploads(200, "b");
    let src2 = path_str(site2.path());
    let to2 = b.url("media2");
    let count_sources = || {
        walkdir::WalkDir::new(site2.path())
            .into_iter()
            .filter(|e| e.as_ref().unwrap().file_type().is_file())
            .count()
    };
    proxy.set("fail_after=60&fail_with=internal");
    let r = proxy
        .cdnsync(&["migrate", &src2, "--to", &to2, "--json", "--no-state"])
        .run();
    assert_ne!(r.code, 0, "{}", r.stdout);
    let partial = b.keys("media2/");
    assert!(partial.len() < 200, "{}", partial.len());
    for k in &partial {
        let i: usize = k.rsplit('/').next().unwrap()[..4].parse().unwrap();
        assert_eq!(b.body(k), format!("JPEG b {i}").into_bytes(), "{k}");
    }
    proxy.set("fail_after=0&fail_with=reset");
    let r = proxy
        .cdnsync(&[
            "migrate",
            &src2,
            "--to",
            &to2,
            "--json",
            "--no-state",
            "--delete-source",
        ])
        .run();
    assert_ne!(r.code, 0, "{}", r.stdout);
    assert_eq!(count_sources(), 200, "sources deleted without verification");
    proxy.set("");
    let r = proxy
        .cdnsync(&["migrate", &src2, "--to", &to2, "--json", "--no-state"])
        .ok_json();
    assert_eq!(
        r["uploaded"].as_u64().unwrap() + r["unchanged"].as_u64().unwrap(),
        200
    );
    assert_eq!(b.keys("media2/").len(), 200);
}

#[test]
fn truncated_answers_and_server_errors_are_retried() {
    // One answer in ten cut to half their declared length, plus 500s:
    // reads (listing, pointer, release record) and writes are retried until
    // whole, and the publish converges.
    let b = Bucket::moto("truncate");
    let to = b.url("");
    let v1 = changing_site("v1", 6);
    cdnsync_moto(&publish_args(&path_str(v1.path()), &to)).ok_json();
    let proxy = FaultProxy::start(&moto_endpoint(), "seed=5&truncate=0.1&internal=0.02");
    for v in ["v2", "v3", "v4"] {
        let s = changing_site(v, 6);
        let dir = path_str(s.path());
        let (r, failed) = publish_until_ok(&proxy, &dir, &to);
        assert_eq!(failed, 0, "{r:#}");
        assert_plan_noop(&dir, &to, v);
        assert!(broken_references(&b).is_empty());
    }
    let c = proxy.counts();
    assert!(c.get("FAULT_truncate").copied().unwrap_or(0) >= 3, "{c:?}");
}
