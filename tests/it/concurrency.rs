//! Runs racing on one target: two and three publishes at once, a publish
//! racing a gc, a rollback racing a publish. Exactly the lock's semantics
//! (one writer; the others wait with `--wait-lock` or fail with exit 7
//! naming the holder, having written nothing), no release mixing two sites,
//! and no live page ever referencing a deleted object.

use std::process::Child;
use std::time::{Duration, Instant};

use crate::util::*;

const LOCKED: i32 = 7;

/// Every request held back 15 ms, so the runs overlap for seconds.
fn slow_proxy() -> FaultProxy {
    FaultProxy::start(&moto_endpoint(), "delay=1&delay_ms=15")
}

/// Wait for all runs while a watcher checks the live site; returns each
/// run's exit code and stderr, and the broken references seen.
fn race(b: &Bucket, runs: Vec<(Child, tempfile::TempDir)>) -> (Vec<(i32, String)>, Vec<String>) {
    let mut runs: Vec<Option<(Child, tempfile::TempDir)>> = runs.into_iter().map(Some).collect();
    let mut out: Vec<Option<(i32, String)>> = vec![None; runs.len()];
    let mut broken = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(120);
    while out.iter().any(Option::is_none) {
        assert!(Instant::now() < deadline, "runs did not finish");
        broken.extend(broken_references(b));
        for (i, slot) in runs.iter_mut().enumerate() {
            let done = slot
                .as_mut()
                .is_some_and(|(c, _)| c.try_wait().unwrap().is_some());
            if done {
                let (c, _cwd) = slot.take().unwrap();
                let o = c.wait_with_output().unwrap();
                out[i] = Some((
                    o.status.code().unwrap_or(-1),
                    String::from_utf8_lossy(&o.stderr).into_owned(),
                ));
            }
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    (out.into_iter().map(Option::unwrap).collect(), broken)
}

/// The version every live page shows; panics when pages show several (a
/// mixed release).
fn live_version(b: &Bucket) -> String {
    let mut versions: Vec<String> = b
        .keys("")
        .into_iter()
        .filter(|k| k.starts_with('p') && k.ends_with("/index.html"))
        .map(|k| {
            let page = String::from_utf8_lossy(&b.body(&k)).into_owned();
            let h1 = page.split("<h1>").nth(1).unwrap().to_string();
            h1.split(' ').next().unwrap().to_string()
        })
        .collect();
    versions.sort();
    versions.dedup();
    assert_eq!(
        versions.len(),
        1,
        "live pages of several versions: {versions:?}"
    );
    versions.pop().unwrap()
}

/// Release records in the bucket.
fn releases(b: &Bucket) -> usize {
    b.keys(".cdnsync/releases/")
        .iter()
        .filter(|k| !k.ends_with(".cdnsync-manifest.json"))
        .count()
}

fn publish(proxy: &FaultProxy, dir: &str, to: &str, wait: bool) -> (Child, tempfile::TempDir) {
    let mut args = vec!["publish", dir, "--to", to, "--json", "--concurrency", "4"];
    if wait {
        args.extend(["--wait-lock", "90s"]);
    }
    proxy.cdnsync(&args).spawn()
}

#[test]
fn two_then_three_publishes_at_once_one_wins_the_others_fail_having_written_nothing() {
    let b = Bucket::moto("race");
    let to = b.url("");
    let v0 = changing_site("v0", 10);
    cdnsync_moto(&publish_args(&path_str(v0.path()), &to)).ok_json();
    let proxy = slow_proxy();
    for n in [2, 3] {
        let sites: Vec<Site> = (0..n)
            .map(|i| changing_site(&format!("n{n}s{i}"), 10))
            .collect();
        let releases_before = releases(&b);
        let runs = sites
            .iter()
            .map(|s| publish(&proxy, &path_str(s.path()), &to, false))
            .collect();
        let (out, broken) = race(&b, runs);
        assert!(broken.is_empty(), "broken while racing: {broken:?}");
        let winners: Vec<usize> = (0..n).filter(|&i| out[i].0 == 0).collect();
        assert_eq!(winners.len(), 1, "exactly one publish wins: {out:?}");
        for (i, (code, err)) in out.iter().enumerate() {
            if i != winners[0] {
                assert_eq!(*code, LOCKED, "{err}");
                assert!(err.contains("is held by"), "{err}");
            }
        }
        // The live site is the winner's, whole, and one release was added.
        assert_eq!(live_version(&b), format!("n{n}s{}", winners[0]));
        assert_eq!(releases(&b), releases_before + 1);
        assert!(b.keys(".cdnsync/lock").is_empty());
        assert_plan_noop(&path_str(sites[winners[0]].path()), &to, "the winner");
    }
}

#[test]
fn three_waiting_publishes_run_one_after_another_each_release_whole() {
    let b = Bucket::moto("queue");
    let to = b.url("");
    let v0 = changing_site("v0", 8);
    cdnsync_moto(&publish_args(&path_str(v0.path()), &to)).ok_json();
    let proxy = slow_proxy();
    let sites: Vec<Site> = (0..3).map(|i| changing_site(&format!("w{i}"), 8)).collect();
    let runs = sites
        .iter()
        .map(|s| publish(&proxy, &path_str(s.path()), &to, true))
        .collect();
    let (out, broken) = race(&b, runs);
    assert!(out.iter().all(|(c, _)| *c == 0), "{out:?}");
    assert!(broken.is_empty(), "broken while racing: {broken:?}");
    assert_eq!(releases(&b), 4);
    // The last to take the lock is live, whole; the list has every release.
    let live = live_version(&b);
    assert!(["w0", "w1", "w2"].contains(&live.as_str()), "{live}");
    let list = cdnsync_moto(&["releases", "--to", &to, "--json"]).ok_json();
    let n = list
        .as_array()
        .map_or_else(|| list["releases"].as_array().unwrap().len(), Vec::len);
    assert_eq!(n, 4, "{list:#}");
}

#[test]
fn a_gc_racing_a_publish_never_deletes_what_the_live_release_needs() {
    let b = Bucket::moto("gcrace");
    let to = b.url("");
    for v in ["v1", "v2", "v3"] {
        let s = changing_site(v, 8);
        cdnsync_moto(&publish_args(&path_str(s.path()), &to)).ok_json();
    }
    let proxy = slow_proxy();
    for round in 0..2 {
        let s = changing_site(&format!("g{round}"), 8);
        let dir = path_str(s.path());
        let publisher = publish(&proxy, &dir, &to, true);
        // The gc keeps only the live release and has no grace: it deletes
        // everything else it may.
        let gc = proxy
            .cdnsync(&[
                "gc",
                "--to",
                &to,
                "--json",
                "--keep",
                "1",
                "--grace",
                "0s",
                "--wait-lock",
                "90s",
            ])
            .spawn();
        let runs = if round == 0 {
            vec![publisher, gc]
        } else {
            vec![gc, publisher]
        };
        let (out, broken) = race(&b, runs);
        assert!(out.iter().all(|(c, _)| *c == 0), "{out:?}");
        assert!(broken.is_empty(), "a live object was deleted: {broken:?}");
        assert_eq!(live_version(&b), format!("g{round}"));
        assert_plan_noop(&dir, &to, &format!("round {round}"));
    }
}

#[test]
fn a_rollback_racing_a_publish_leaves_one_whole_release_live() {
    let b = Bucket::moto("rbrace");
    let to = b.url("");
    let v1 = changing_site("v1", 8);
    let r1 = cdnsync_moto(&publish_args(&path_str(v1.path()), &to)).ok_json();
    let first = r1["release"].as_str().unwrap().to_string();
    let v2 = changing_site("v2", 8);
    cdnsync_moto(&publish_args(&path_str(v2.path()), &to)).ok_json();
    let proxy = slow_proxy();
    let v3 = changing_site("v3", 8);
    let publisher = publish(&proxy, &path_str(v3.path()), &to, true);
    let rollback = proxy
        .cdnsync(&[
            "rollback",
            "--to",
            &to,
            &first,
            "--json",
            "--wait-lock",
            "90s",
        ])
        .spawn();
    let (out, broken) = race(&b, vec![publisher, rollback]);
    assert!(out.iter().all(|(c, _)| *c == 0), "{out:?}");
    assert!(broken.is_empty(), "broken while racing: {broken:?}");
    // Whichever ran second is live, whole, and is the current release.
    let live = live_version(&b);
    assert!(live == "v1" || live == "v3", "{live}");
    let current = String::from_utf8(b.body(".cdnsync/current")).unwrap();
    let record: serde_json::Value =
        serde_json::from_slice(&b.body(&format!(".cdnsync/releases/{}.json", current.trim())))
            .unwrap();
    let text = record.to_string();
    if live == "v1" {
        assert!(
            text.contains(&first) || current.trim() == first,
            "the current release is the rollback of {first}: {text}"
        );
    }
    let dir = if live == "v1" { v1.path() } else { v3.path() };
    assert_plan_noop(&path_str(dir), &to, &live);
}

#[test]
fn two_publishes_taking_over_the_same_expired_lock_one_wins() {
    let b = Bucket::moto("takeover");
    let to = b.url("");
    let v0 = changing_site("v0", 6);
    cdnsync_moto(&publish_args(&path_str(v0.path()), &to)).ok_json();
    let proxy = slow_proxy();
    for round in 0..3 {
        // A lock left by a run killed long ago.
        b.put(".cdnsync/lock", br#"{"id":"ghost","holder":"ghost","command":"publish","started":"2026-01-01T00:00:00Z","refreshed":"2026-01-01T00:00:00Z","ttl_secs":600}"#);
        let sites: Vec<Site> = (0..2)
            .map(|i| changing_site(&format!("t{round}s{i}"), 6))
            .collect();
        let runs = sites
            .iter()
            .map(|s| publish(&proxy, &path_str(s.path()), &to, false))
            .collect();
        let (out, broken) = race(&b, runs);
        assert!(broken.is_empty(), "{broken:?}");
        let winners: Vec<usize> = (0..2).filter(|&i| out[i].0 == 0).collect();
        assert_eq!(
            winners.len(),
            1,
            "exactly one takes the expired lock over: {out:?}"
        );
        let loser = 1 - winners[0];
        assert_eq!(out[loser].0, LOCKED, "{}", out[loser].1);
        assert_eq!(live_version(&b), format!("t{round}s{}", winners[0]));
        assert!(b.keys(".cdnsync/lock").is_empty());
    }
}
