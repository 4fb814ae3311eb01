//! Progress for long phases: indicatif bars (objects and bytes) on a
//! terminal, a plain line every few seconds otherwise (CI logs), nothing when
//! quiet.

use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProgressMode {
    Bars,
    Lines,
    Quiet,
}

impl ProgressMode {
    /// Bars on a terminal, lines otherwise.
    pub fn detect(quiet: bool) -> Self {
        use std::io::IsTerminal;
        if quiet {
            ProgressMode::Quiet
        } else if std::io::stderr().is_terminal() {
            ProgressMode::Bars
        } else {
            ProgressMode::Lines
        }
    }
}

pub struct Phase {
    label: String,
    mode: ProgressMode,
    bar: Option<ProgressBar>,
    total_objects: u64,
    total_bytes: u64,
    objects: AtomicU64,
    bytes: AtomicU64,
    start: Instant,
    last_line: Mutex<Instant>,
}

const LINE_EVERY: Duration = Duration::from_secs(3);

impl Phase {
    pub fn new(mode: ProgressMode, label: &str, total_objects: u64, total_bytes: u64) -> Phase {
        let bar = (mode == ProgressMode::Bars && total_objects > 0).then(|| {
            let b = ProgressBar::with_draw_target(Some(total_bytes), ProgressDrawTarget::stderr());
            b.set_style(
                ProgressStyle::with_template(
                    "{prefix:>8} [{bar:30}] {msg} {bytes}/{total_bytes} {bytes_per_sec} eta {eta}",
                )
                .expect("template")
                .progress_chars("=> "),
            );
            b.set_prefix(label.to_string());
            b.set_message(format!("0/{total_objects}"));
            b
        });
        Phase {
            label: label.to_string(),
            mode,
            bar,
            total_objects,
            total_bytes,
            objects: AtomicU64::new(0),
            bytes: AtomicU64::new(0),
            start: Instant::now(),
            last_line: Mutex::new(Instant::now()),
        }
    }

    /// Bytes sent (may be called several times per object).
    pub fn add_bytes(&self, n: u64) {
        self.bytes.fetch_add(n, Ordering::Relaxed);
        if let Some(b) = &self.bar {
            b.inc(n);
        }
    }

    /// One object finished.
    pub fn object_done(&self) {
        let done = self.objects.fetch_add(1, Ordering::Relaxed) + 1;
        if let Some(b) = &self.bar {
            b.set_message(format!("{done}/{}", self.total_objects));
        }
        if self.mode == ProgressMode::Lines {
            let mut last = self.last_line.lock().unwrap();
            if last.elapsed() >= LINE_EVERY {
                *last = Instant::now();
                eprintln!("{}", self.line());
            }
        }
    }

    fn line(&self) -> String {
        let done = self.objects.load(Ordering::Relaxed);
        let bytes = self.bytes.load(Ordering::Relaxed);
        let secs = self.start.elapsed().as_secs_f64().max(0.001);
        let rate = done as f64 / secs;
        let eta = if rate > 0.0 && self.total_objects > done {
            format!(
                ", eta {}s",
                ((self.total_objects - done) as f64 / rate).ceil() as u64
            )
        } else {
            String::new()
        };
        format!(
            "{}: {done}/{} objects ({:.0}/s), {}/{} ({}/s){eta}",
            self.label,
            self.total_objects,
            rate,
            human_bytes(bytes),
            human_bytes(self.total_bytes),
            human_bytes((bytes as f64 / secs) as u64)
        )
    }

    pub fn finish(&self) {
        if let Some(b) = &self.bar {
            b.finish_and_clear();
        }
    }
}

/// `1.5 MiB`-style sizes.
pub fn human_bytes(n: u64) -> String {
    const UNITS: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut v = n as f64;
    let mut u = 0;
    while v >= 1024.0 && u + 1 < UNITS.len() {
        v /= 1024.0;
        u += 1;
    }
    if u == 0 {
        format!("{n} B")
    } else {
        format!("{v:.1} {}", UNITS[u])
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn human() {
        assert_eq!(super::human_bytes(0), "0 B");
        assert_eq!(super::human_bytes(1536), "1.5 KiB");
        assert_eq!(super::human_bytes(5 * 1024 * 1024), "5.0 MiB");
    }
}
