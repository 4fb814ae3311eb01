//! Criterion micro-benchmarks of the hot pure stages: scan + hash (bytes/s),
//! reference graph + fingerprinting (bytes of HTML/CSS/JS per second), and
//! planning 100,000 entries (cold and no-op). The site comes from
//! tests/fixtures/gen_site.py (set CDNSYNC_BENCH_SITE to reuse a tree).
//!
//!   cargo bench --bench stages
//!   benches/hash-vs-b3sum.sh      # scan + hash against b3sum on the same tree

use std::path::{Path, PathBuf};
use std::time::Duration;

use cdnsync::clock::{Clock, FixedClock};
use cdnsync::execute::{Outcome, build_release};
use cdnsync::fingerprint::{FingerprintOptions, fingerprint_site};
use cdnsync::graph::GraphOptions;
use cdnsync::plan::{PlanOptions, desired, plan};
use cdnsync::remote::{RemoteObject, RemoteState};
use cdnsync::rules::{Defaults, Rules};
use cdnsync::scan::{Inventory, LocalFile, scan};
use cdnsync::store::Sse;
use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use time::OffsetDateTime;

fn site() -> (PathBuf, Option<tempfile::TempDir>) {
    if let Ok(p) = std::env::var("CDNSYNC_BENCH_SITE") {
        return (PathBuf::from(p), None);
    }
    let generator = std::env::var("CDNSYNC_GEN_SITE").unwrap_or_else(|_| {
        concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/gen_site.py").to_string()
    });
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("site");
    let st = std::process::Command::new("python3")
        .arg(&generator)
        .args(["gen"])
        .arg(&dir)
        .args(["--files", "2000", "--seed", "42"])
        .stdout(std::process::Stdio::null())
        .status()
        .expect("python3 gen_site.py");
    assert!(st.success(), "gen_site.py failed");
    (dir, Some(tmp))
}

fn text_bytes(inv: &Inventory) -> u64 {
    inv.files
        .iter()
        .filter(|f| {
            [
                ".html",
                ".css",
                ".js",
                ".mjs",
                ".svg",
                ".json",
                ".webmanifest",
            ]
            .iter()
            .any(|e| f.rel.ends_with(e))
        })
        .map(|f| f.size)
        .sum()
}

fn scan_and_graph(c: &mut Criterion) {
    let (dir, _keep) = site();
    let rules = Rules::new(&[], Defaults::default()).unwrap();
    let inv = scan(&dir, &rules).unwrap();

    let mut g = c.benchmark_group("scan");
    g.sample_size(10).measurement_time(Duration::from_secs(10));
    g.throughput(Throughput::Bytes(inv.total_bytes()));
    g.bench_function(format!("scan+hash {} files", inv.files.len()), |b| {
        b.iter(|| scan(Path::new(&dir), &rules).unwrap());
    });
    g.finish();

    let mut g = c.benchmark_group("graph");
    g.sample_size(10).measurement_time(Duration::from_secs(10));
    g.throughput(Throughput::Bytes(text_bytes(&inv)));
    let gopts = GraphOptions {
        base_path: "/".into(),
    };
    g.bench_function("graph only", |b| {
        b.iter(|| cdnsync::graph::build(&inv, &gopts).unwrap());
    });
    g.bench_function("graph+fingerprint+rewrite", |b| {
        b.iter(|| {
            fingerprint_site(
                &inv,
                &rules,
                &gopts,
                &FingerprintOptions { hash_length: 12 },
            )
            .unwrap()
        });
    });
    g.finish();
}

/// 100,000 synthetic entries (no files needed: planning is pure).
fn inventory(n: usize) -> Inventory {
    let files = (0..n)
        .map(|i| {
            let rel = match i % 4 {
                0 => format!("docs/section-{}/page-{i}.html", i % 97),
                1 => format!("assets/chunk-{i}-{:08x}.js", i * 2654435761 % (1 << 32)),
                2 => format!("img/photo-{i}.png"),
                _ => format!("data/item-{i}.json"),
            };
            LocalFile {
                path: PathBuf::from("/nonexistent").join(&rel),
                hash: blake3::hash(rel.as_bytes()).to_hex().to_string(),
                size: 1000 + (i as u64 % 5000),
                rel,
            }
        })
        .collect::<Vec<_>>();
    let mut inv = Inventory {
        root: PathBuf::from("/nonexistent"),
        files,
        ..Default::default()
    };
    inv.files.sort_by(|a, b| a.rel.cmp(&b.rel));
    inv
}

fn planning(c: &mut Criterion) {
    let n = 100_000;
    let inv = inventory(n);
    let rules = Rules::new(&[], Defaults::default()).unwrap();
    let sse = Sse::Aes256;
    let opts = PlanOptions {
        prefix: String::new(),
        sse: sse.clone(),
        max_delete: 256,
        allow_empty: false,
        routing: None,
    };
    let clock = FixedClock {
        now: OffsetDateTime::UNIX_EPOCH,
        random: 1,
    };
    let empty = RemoteState::default();
    // The state after a publish of the same inventory: the no-op case.
    let cold = plan(
        "20261126T000000.000Z-00000000",
        desired(&inv, &rules, None, "", &sse, true).unwrap(),
        &inv,
        &empty,
        &opts,
    )
    .unwrap();
    let release = build_release(&cold, &Outcome::default(), &clock as &dyn Clock);
    let live = RemoteState {
        objects: release
            .files
            .iter()
            .map(|(k, f)| {
                (
                    k.clone(),
                    RemoteObject {
                        size: f.stored_size,
                        hash: Some(f.hash.clone()),
                        headers: Some(f.headers.clone()),
                        content_encoding: f.content_encoding.clone(),
                    },
                )
            })
            .collect(),
        bodies: release
            .files
            .values()
            .filter_map(|f| f.body.clone())
            .collect(),
        release: Some(release),
        heads: 0,
    };

    let mut g = c.benchmark_group("plan");
    g.sample_size(10).measurement_time(Duration::from_secs(10));
    g.throughput(Throughput::Elements(n as u64));
    g.bench_function("desired 100k", |b| {
        b.iter(|| desired(&inv, &rules, None, "", &sse, true).unwrap());
    });
    g.bench_function("plan 100k cold", |b| {
        b.iter(|| {
            plan(
                "20261126T000000.000Z-00000001",
                desired(&inv, &rules, None, "", &sse, true).unwrap(),
                &inv,
                &empty,
                &opts,
            )
            .unwrap()
        });
    });
    g.bench_function("plan 100k no-op", |b| {
        b.iter(|| {
            let p = plan(
                "20261126T000000.000Z-00000002",
                desired(&inv, &rules, None, "", &sse, true).unwrap(),
                &inv,
                &live,
                &opts,
            )
            .unwrap();
            assert!(p.noop);
            p
        });
    });
    g.finish();
}

criterion_group!(benches, scan_and_graph, planning);
criterion_main!(benches);
