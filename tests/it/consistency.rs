//! The live site is never broken: a watcher reads the bucket in a loop while
//! a publish of a changed site runs against a slowed server, and finds no
//! moment where a live page references a missing key; SIGKILL at 20
//! points across all phases leaves a consistent site and a rerun converges.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use crate::util::*;

fn publish_via(proxy: &SlowProxy, dir: &str, to: &str) -> Cdnsync {
    publish_via_c(proxy, dir, to, "8")
}

fn publish_via_c(proxy: &SlowProxy, dir: &str, to: &str, concurrency: &str) -> Cdnsync {
    cdnsync(&[
        "publish",
        dir,
        "--to",
        to,
        "--json",
        "--concurrency",
        concurrency,
    ])
    .env("AWS_ACCESS_KEY_ID", "test")
    .env("AWS_SECRET_ACCESS_KEY", "test")
    .env("AWS_REGION", "us-east-1")
    .env("CDNSYNC_ENDPOINT_URL", &proxy.endpoint)
}

#[test]
fn watcher_sees_no_broken_moment_during_a_slow_publish() {
    let b = Bucket::moto("watch");
    let to = b.url("");
    let v1 = changing_site("v1", 40);
    cdnsync_moto(&publish_args(&path_str(v1.path()), &to)).ok_json();
    assert!(broken_references(&b).is_empty());

    // 250 ms a request, two at a time: the switch of 40 pages lasts seconds,
    // so the watcher looks inside it even on a loaded CI machine (at 100 ms
    // it once managed only 5 looks in all and never during the switch).
    let proxy = SlowProxy::start(&moto_endpoint(), Duration::from_millis(250));
    let v2 = changing_site("v2", 40);
    let done = Arc::new(AtomicBool::new(false));
    let d2 = done.clone();
    let dir = path_str(v2.path());
    let to2 = to.clone();
    let publisher = std::thread::spawn(move || {
        let r = publish_via_c(&proxy, &dir, &to2, "2").ok_json();
        d2.store(true, Ordering::SeqCst);
        r
    });
    let mut checks = 0;
    let mut mixed = 0;
    let mut broken = Vec::new();
    while !done.load(Ordering::SeqCst) {
        broken.extend(broken_references(&b));
        checks += 1;
        // Did this look land inside the switch (some pages old, some new)?
        let pages: Vec<String> = (0..40)
            .map(|i| String::from_utf8_lossy(&b.body(&format!("p{i}/index.html"))).into_owned())
            .collect();
        if pages.iter().any(|p| p.contains("v1 ")) && pages.iter().any(|p| p.contains("v2 ")) {
            mixed += 1;
        }
    }
    let r = publisher.join().unwrap();
    assert!(broken.is_empty(), "broken moments: {broken:?}");
    assert!(checks >= 3, "the watcher only looked {checks} times");
    assert!(
        mixed >= 1,
        "the watcher never looked during the switch ({checks} looks)"
    );
    assert!(r["uploaded"].as_u64().unwrap() > 40, "{r:#}");
    assert!(r["timings"]["switch_window_ms"].as_u64().unwrap() > 0);
}

#[test]
fn sigkill_at_points_across_phases_then_rerun_converges() {
    let b = Bucket::moto("kill");
    let to = b.url("");
    let v1 = changing_site("v1", 12);
    cdnsync_moto(&publish_args(&path_str(v1.path()), &to)).ok_json();
    // Request counts of a full publish of the change, to spread the kills.
    let total = {
        let probe = Bucket::moto("killprobe");
        cdnsync_moto(&publish_args(&path_str(v1.path()), &probe.url(""))).ok_json();
        let proxy = SlowProxy::start(&moto_endpoint(), Duration::ZERO);
        let v2 = changing_site("v2", 12);
        publish_via(&proxy, &path_str(v2.path()), &probe.url("")).ok_json();
        proxy.count()
    };
    assert!(total > 20, "{total}");
    // 20 kill points spread evenly over the requests of a publish: reading
    // the remote, the lock, phase 1 uploads, the release record, the switch,
    // deletes and the post-publish gc.
    let fractions: Vec<f64> = (0..20).map(|i| (i as f64 + 0.5) / 20.0).collect();
    let mut killed_mid_run = 0;
    for (n, frac) in fractions.iter().enumerate() {
        let v = format!("v{}", n + 2);
        let s = changing_site(&v, 12);
        let dir = path_str(s.path());
        let proxy = SlowProxy::start(&moto_endpoint(), Duration::from_millis(5));
        let kill_at = ((total as f64) * frac) as usize;
        let (mut child, _cwd) = publish_via(&proxy, &dir, &to).spawn();
        let deadline = std::time::Instant::now() + Duration::from_secs(30);
        while proxy.count() < kill_at && std::time::Instant::now() < deadline {
            if child.try_wait().unwrap().is_some() {
                break;
            }
            std::thread::sleep(Duration::from_millis(1));
        }
        if child.try_wait().unwrap().is_none() {
            killed_mid_run += 1;
        }
        let _ = child.kill(); // SIGKILL
        let _ = child.wait();
        let broken = broken_references(&b);
        assert!(
            broken.is_empty(),
            "broken after a kill at request {kill_at} of {total}: {broken:?}"
        );
        // The lock of the killed run is still there: the rerun takes it over
        // once expired; here, clear it as an operator would.
        cdnsync_moto(&["unlock", "--to", &to, "--force"]).ok_json_or_text();
        let r = cdnsync_moto(&publish_args(&dir, &to)).ok_json();
        assert_eq!(r["dry_run"], false);
        let again = cdnsync_moto(&publish_args(&dir, &to)).ok_json();
        assert_eq!(
            again["noop"], true,
            "not converged after a kill at {kill_at}: {again:#}"
        );
        assert!(broken_references(&b).is_empty());
        let page = b.body("p3/index.html");
        assert!(
            String::from_utf8_lossy(&page).contains(&format!("{v} 3")),
            "page is the new version"
        );
    }
    assert!(
        killed_mid_run >= 18,
        "only {killed_mid_run} of 20 kills landed mid-run"
    );
}
