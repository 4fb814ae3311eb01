//! What the binary sets up once per process, before any command runs:
//! logging, the allocator, who holds locks taken by this run, and what
//! Ctrl-C / SIGTERM do. The only place (with `GithubEnv::from_env`) that
//! reads the environment.

use crate::error::ExitCode;
use crate::transfer::Cancel;

/// Logging to standard error: `cdnsync=warn` by default, `-v` for debug,
/// `-vv` for trace, `RUST_LOG` wins.
pub fn init_tracing(verbose: u8, quiet: bool) {
    let default = match (quiet, verbose) {
        // cdnsync's own messages only: the AWS SDK's warnings (config
        // files not found, …) are noise to a user and shown from -v on.
        (true, _) => "cdnsync=error",
        (false, 0) => "cdnsync=warn",
        (false, 1) => "cdnsync=debug,warn",
        _ => "cdnsync=trace,debug",
    };
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default));
    // Colour only for a person at a terminal, and never with NO_COLOR set.
    let ansi = std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty())
        && std::io::IsTerminal::is_terminal(&std::io::stderr());
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(ansi)
        .with_writer(std::io::stderr)
        .with_target(false)
        .try_init();
}

/// How long a stopped run may take to finish its requests in flight.
const STOP_GRACE: std::time::Duration = std::time::Duration::from_secs(20);

/// Ctrl-C / SIGTERM: stop scheduling work; a second one, or 20 s, exits at once.
pub fn watch_signals(cancel: Cancel) {
    tokio::spawn(async move {
        crate::signal::stop_requested().await;
        eprintln!(
            "interrupted: finishing requests in flight, recording nothing (press Ctrl-C again to abort now)"
        );
        cancel.cancel();
        // A request that never answers must not keep a stopped run alive
        // (CI timeouts send one SIGTERM): every phase is safe to abandon,
        // so give up waiting after a while.
        tokio::select! {
            () = crate::signal::stop_requested() => {}
            () = tokio::time::sleep(STOP_GRACE) => {
                eprintln!(
                    "error: still stopping after {} s; exiting without waiting for requests in flight",
                    STOP_GRACE.as_secs()
                );
            }
        }
        std::process::exit(ExitCode::Interrupted.code() as i32);
    });
}

/// `user@host pid N`, for the lock (read once, at start-up).
pub fn holder() -> String {
    let user = std::env::var("GITHUB_ACTOR")
        .or_else(|_| std::env::var("USER"))
        .unwrap_or_else(|_| "unknown".into());
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .or_else(|_| std::fs::read_to_string("/etc/hostname"))
        .map(|h| h.trim().to_string())
        .unwrap_or_else(|_| "localhost".into());
    let mut h = format!("{user}@{host} pid {}", std::process::id());
    if let (Ok(repo), Ok(run)) = (
        std::env::var("GITHUB_REPOSITORY"),
        std::env::var("GITHUB_RUN_ID"),
    ) {
        h.push_str(&format!(" ({repo} run {run})"));
    }
    h
}

/// glibc gives every thread that allocates its own arena (up to 8 per
/// core); with tokio, rayon and the blocking pool that fragments into tens
/// of MB of extra resident memory. One arena per core is plenty here.
/// (An explicit MALLOC_ARENA_MAX wins.)
#[cfg(all(target_os = "linux", target_env = "gnu"))]
pub fn limit_malloc_arenas() {
    if std::env::var_os("MALLOC_ARENA_MAX").is_some() {
        return;
    }
    let n = std::thread::available_parallelism()
        .map(std::num::NonZero::get)
        .unwrap_or(2)
        .clamp(2, 8);
    // SAFETY: mallopt only tunes the allocator; called before any thread exists.
    unsafe {
        libc::mallopt(libc::M_ARENA_MAX, n as libc::c_int);
    }
}

#[cfg(not(all(target_os = "linux", target_env = "gnu")))]
pub fn limit_malloc_arenas() {}
