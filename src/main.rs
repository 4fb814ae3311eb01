//! The `cdnsync` binary: parse arguments once, run the command, print the
//! report, exit with the code the error type gives.

use std::io::Write;
use std::sync::Arc;

use clap::Parser;

use cdnsync::cli::{Cli, Command, OutputFormat};
use cdnsync::clock::SystemClock;
use cdnsync::commands::{self, Context};
use cdnsync::config::{PublishConfig, TargetConfig};
use cdnsync::execute::Cancel;
use cdnsync::github::GithubEnv;
use cdnsync::progress::ProgressMode;
use cdnsync::{Error, ExitCode};

fn init_tracing(verbose: u8, quiet: bool) {
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
fn watch_signals(cancel: Cancel) {
    tokio::spawn(async move {
        cdnsync::signal::stop_requested().await;
        eprintln!(
            "interrupted: finishing requests in flight, recording nothing (press Ctrl-C again to abort now)"
        );
        cancel.cancel();
        // A request that never answers must not keep a stopped run alive
        // (CI timeouts send one SIGTERM): every phase is safe to abandon,
        // so give up waiting after a while.
        tokio::select! {
            () = cdnsync::signal::stop_requested() => {}
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

async fn run(cli: Cli, ctx: Context, gh: Option<GithubEnv>) -> Result<(), Error> {
    match &cli.command {
        Command::Publish(args) | Command::Plan(args) => {
            let dry = matches!(cli.command, Command::Plan(_));
            let cfg = PublishConfig::resolve(args, dry)?;
            let format = match (args.format, cfg.json) {
                (Some(f), true) if f != OutputFormat::Json => {
                    return Err(Error::Usage(
                        "--json and --format disagree; pass one of them".into(),
                    ));
                }
                (Some(f), _) => f,
                (None, true) => OutputFormat::Json,
                (None, false) => OutputFormat::Human,
            };
            let report = match commands::publish::run(&cfg, &ctx).await {
                Ok(r) => r,
                Err(e) => {
                    if let Some(g) = &gh {
                        let verb = if cfg.dry_run { "plan" } else { "publish" };
                        let _ = g.write_summary(&format!(
                            "### cdnsync {verb} failed\n\n| | |\n|---|---|\n| Target | `{}` |\n| Error | {} |\n| Exit code | {} |\n\nNothing was deleted; the live site is unchanged unless the error says the release is live.\n",
                            cfg.target.display(),
                            cdnsync::redact::redact_urls(&e.to_string())
                                .replace('|', "\\|")
                                .replace('\n', " "),
                            e.exit_code().code()
                        ));
                    }
                    return Err(e);
                }
            };
            let mut out = std::io::stdout().lock();
            match format {
                OutputFormat::Json => {
                    // A closed pipe (`| head`) is not an error of the publish.
                    let _ = serde_json::to_writer_pretty(&mut out, &report);
                    let _ = writeln!(out);
                }
                OutputFormat::Markdown => {
                    let _ = write!(out, "{}", report.markdown(200));
                }
                OutputFormat::Human if !cli.quiet => {
                    let lines = if cli.verbose > 0 { usize::MAX } else { 40 };
                    let text = if gh.is_some() {
                        report.human_grouped(lines)
                    } else {
                        report.human(lines)
                    };
                    let _ = write!(out, "{text}");
                }
                OutputFormat::Human => {}
            }
            let _ = out.flush();
            drop(out);
            match &gh {
                Some(g) => github_report(g, &cfg, &report),
                None => {
                    for w in &report.warnings {
                        eprintln!("warning: {w}");
                    }
                }
            }
            if !report.cdn_failures.is_empty() {
                return Err(Error::CdnIncomplete {
                    release: report.release.clone(),
                    reason: report.cdn_failures.join("; "),
                });
            }
            Ok(())
        }
        Command::Doctor(args) => {
            let cfg = TargetConfig::resolve(args)?;
            let file = cdnsync::config::file_for(args)?;
            let compress = file.compress.as_deref() != Some("none");
            let r = commands::doctor::run(&cfg, compress).await?;
            let mut out = std::io::stdout().lock();
            if cfg.json {
                let _ = serde_json::to_writer_pretty(&mut out, &r);
                let _ = writeln!(out);
            } else if !cli.quiet {
                let d = (!cfg.distribution_ids.is_empty()).then(|| cfg.distribution_ids.join(", "));
                let _ = write!(
                    out,
                    "{}",
                    cdnsync::doctor::human(&r.target, d.as_deref(), &r.findings)
                );
            }
            if gh.is_some() {
                use cdnsync::doctor::Severity;
                for f in &r.findings {
                    let msg = format!(
                        "doctor {}: {}{}",
                        f.check,
                        f.summary,
                        f.fix
                            .as_deref()
                            .map(|x| format!(" (fix: {x})"))
                            .unwrap_or_default()
                    );
                    match f.severity {
                        Severity::Failure => {
                            let _ = writeln!(out, "{}", cdnsync::github::error(&msg));
                        }
                        Severity::Warning => {
                            let _ = writeln!(out, "{}", cdnsync::github::warning(None, None, &msg));
                        }
                        _ => {}
                    }
                }
            }
            if r.warnings + r.failures > 0 {
                return Err(Error::DoctorFindings {
                    warnings: r.warnings,
                    failures: r.failures,
                });
            }
            Ok(())
        }
        Command::Completions(args) => {
            let mut cmd = <Cli as clap::CommandFactory>::command();
            clap_complete::generate(args.shell, &mut cmd, "cdnsync", &mut std::io::stdout());
            Ok(())
        }
        Command::Man(args) => {
            let cmd = <Cli as clap::CommandFactory>::command();
            let render = |c: clap::Command| {
                let mut buf = Vec::new();
                clap_mangen::Man::new(c)
                    .render(&mut buf)
                    .map(|_| buf)
                    .map_err(|e| Error::Usage(format!("cannot render the man page: {e}")))
            };
            match &args.dir {
                None => {
                    let _ = std::io::stdout().write_all(&render(cmd)?);
                }
                Some(dir) => {
                    std::fs::create_dir_all(dir).map_err(|e| Error::io(dir, e))?;
                    let mut pages = vec![("cdnsync".to_string(), cmd.clone())];
                    for sub in cmd.get_subcommands() {
                        let name = format!("cdnsync-{}", sub.get_name());
                        pages.push((name.clone(), sub.clone().name(name)));
                    }
                    for (name, c) in pages {
                        let path = dir.join(format!("{name}.1"));
                        std::fs::write(&path, render(c)?).map_err(|e| Error::io(&path, e))?;
                        println!("{}", path.display());
                    }
                }
            }
            Ok(())
        }
        Command::Releases(args) => {
            let cfg = TargetConfig::resolve(args)?;
            let list = commands::releases::run(&cfg).await?;
            let mut out = std::io::stdout().lock();
            if cfg.json {
                let _ = serde_json::to_writer_pretty(&mut out, &list);
                let _ = writeln!(out);
            } else {
                let _ = write!(out, "{}", commands::releases::human(&list));
            }
            Ok(())
        }
        Command::Rollback(args) => {
            let cfg = TargetConfig::resolve(&args.remote)?;
            let r = commands::rollback::run(&cfg, &ctx, args.id.as_deref(), args.dry_run).await?;
            let mut out = std::io::stdout().lock();
            if cfg.json {
                let _ = serde_json::to_writer_pretty(&mut out, &r);
                let _ = writeln!(out);
            } else if !cli.quiet {
                let verb = if r.dry_run {
                    "Would roll back"
                } else {
                    "Rolled back"
                };
                let _ = writeln!(
                    out,
                    "{verb} {} to {}: {} restored, {} removed, {} unchanged (new release {})",
                    r.previous_release,
                    r.rolled_back_to,
                    r.restored.len(),
                    r.deleted.len(),
                    r.unchanged,
                    r.release
                );
            }
            for w in &r.warnings {
                eprintln!("warning: {w}");
            }
            if !r.cdn_failures.is_empty() {
                return Err(Error::CdnIncomplete {
                    release: r.release.clone(),
                    reason: r.cdn_failures.join("; "),
                });
            }
            Ok(())
        }
        Command::Gc(args) => {
            let cfg = TargetConfig::resolve(&args.remote)?;
            let file = cdnsync::config::file_for(&args.remote)?;
            let max_delete = args.max_delete.or(file.max_delete).unwrap_or(256);
            let opts = cdnsync::config::gc_options(&args.retention, &file, max_delete)?;
            let r = commands::gc::run(&cfg, &ctx, &opts, args.dry_run).await?;
            let mut out = std::io::stdout().lock();
            if cfg.json {
                let _ = serde_json::to_writer_pretty(&mut out, &r);
                let _ = writeln!(out);
            } else if !cli.quiet {
                let verb = if r.dry_run { "would delete" } else { "deleted" };
                let n = if r.dry_run {
                    r.plan.delete.len()
                } else {
                    r.deleted
                };
                let _ = writeln!(
                    out,
                    "gc: {verb} {n} objects and {} old release records; {} kept in their grace period; kept releases: {}",
                    r.plan.drop_releases.len(),
                    r.plan.in_grace,
                    r.plan.kept_releases.join(", ")
                );
            }
            for w in r.warnings.iter().chain(&r.plan.blocked) {
                eprintln!("warning: {w}");
            }
            Ok(())
        }
        Command::Migrate(args) => {
            let cfg = TargetConfig::resolve(&args.remote)?;
            if args.base_url.is_some() != args.cdn_url.is_some() {
                return Err(Error::Usage("--base-url and --cdn-url go together".into()));
            }
            for u in [&args.base_url, &args.cdn_url].into_iter().flatten() {
                url::Url::parse(u).map_err(|e| Error::Usage(format!("invalid URL `{u}`: {e}")))?;
            }
            let shard = args
                .shard
                .as_deref()
                .map(cdnsync::migrate::parse_shard)
                .transpose()
                .map_err(Error::Usage)?;
            let concurrency = args.concurrency.unwrap_or(32);
            if concurrency == 0 || concurrency > 1024 {
                return Err(Error::Usage(format!(
                    "concurrency must be between 1 and 1024, got {concurrency}"
                )));
            }
            let (store, prefix) = commands::publish::open_store(&cfg).await?;
            store.check().await?;
            let mode = if args.verify {
                cdnsync::migrate::Mode::Verify
            } else if args.delete_source {
                cdnsync::migrate::Mode::DeleteSource
            } else {
                cdnsync::migrate::Mode::Migrate
            };
            let state = if args.no_state {
                None
            } else {
                args.state.clone().or_else(|| {
                    cdnsync::migrate::default_state_path(&args.src, &cfg.target.display())
                })
            };
            let (multipart_threshold, part_size) =
                cdnsync::execute::transfer_sizes(args.multipart_threshold, args.part_size);
            let opts = cdnsync::migrate::MigrateOptions {
                state,
                mode,
                rate: args.rate,
                prefix,
                sse: cfg.sse.clone(),
                concurrency,
                cache_control: args.cache_control.clone(),
                inline: args.inline,
                include_denied: args.include_denied.clone(),
                src_root: args.src.clone(),
                shard,
                dry_run: args.dry_run,
                base_url: args.base_url.clone(),
                cdn_url: args.cdn_url.clone(),
                map_dir: args.map_dir.clone().unwrap_or_else(|| ".".into()),
                progress: ctx.progress,
                multipart_threshold,
                part_size,
            };
            let r = cdnsync::migrate::run(&args.src, store.as_ref(), &opts, &ctx.cancel).await?;
            let mut out = std::io::stdout().lock();
            if cfg.json {
                let _ = serde_json::to_writer_pretty(&mut out, &r);
                let _ = writeln!(out);
            } else if !cli.quiet {
                let _ = write!(out, "{}", cdnsync::migrate::summary(&r));
            }
            if !r.failed.is_empty() || !r.mismatches.is_empty() {
                let path = args
                    .report
                    .clone()
                    .unwrap_or_else(|| "cdnsync-migrate-report.json".into());
                let body = serde_json::to_vec_pretty(&r).expect("serialize report");
                std::fs::write(&path, body).map_err(|e| Error::io(&path, e))?;
                return Err(Error::MigrateIncomplete {
                    failed: r.failed.len() + r.mismatches.len(),
                    report: path.display().to_string(),
                });
            }
            Ok(())
        }
        Command::Unlock(args) => {
            let cfg = TargetConfig::resolve(&args.remote)?;
            let (store, prefix) = commands::publish::open_store(&cfg).await?;
            store.check().await?;
            match cdnsync::lock::unlock(store.as_ref(), &prefix, args.force).await? {
                Some(h) if args.force => println!("removed the lock held by {}", h.describe()),
                Some(h) => println!(
                    "locked by {} (refreshed {}); pass --force to remove it",
                    h.describe(),
                    h.refreshed
                ),
                None if args.force => println!("removed the lock"),
                None => println!("not locked"),
            }
            Ok(())
        }
        Command::Serve(args) => {
            commands::serve::run(
                &commands::serve::ServeConfig {
                    dir: args.dir.clone(),
                    addr: std::net::SocketAddr::new(args.host, args.port),
                },
                cdnsync::signal::stop_requested(),
            )
            .await
        }
    }
}

/// GitHub Actions: annotations for warnings (file and line for missing
/// references), the job summary and the step outputs.
fn github_report(g: &GithubEnv, cfg: &PublishConfig, report: &cdnsync::report::Report) {
    use cdnsync::github;
    const MAX_ANNOTATIONS: usize = 50;
    let mut out = std::io::stdout().lock();
    let missing: std::collections::HashSet<String> = report
        .missing_references
        .iter()
        .map(|m| {
            format!(
                "{}:{}: reference to missing file `{}`",
                m.file, m.line, m.url
            )
        })
        .collect();
    let mut n = 0;
    for m in &report.missing_references {
        if n < MAX_ANNOTATIONS {
            let file = github::annotation_path(&cfg.dir, &m.file);
            let _ = writeln!(
                out,
                "{}",
                github::warning(
                    Some(&file),
                    Some(m.line),
                    &format!("reference to missing file `{}`", m.url)
                )
            );
        }
        n += 1;
    }
    for w in report.warnings.iter().filter(|w| !missing.contains(*w)) {
        if n < MAX_ANNOTATIONS {
            let _ = writeln!(out, "{}", github::warning(None, None, w));
        }
        n += 1;
    }
    if n > MAX_ANNOTATIONS {
        let _ = writeln!(
            out,
            "{}",
            github::warning(
                None,
                None,
                &format!(
                    "… and {} more warnings (see the job summary or --json)",
                    n - MAX_ANNOTATIONS
                )
            )
        );
    }
    if let Err(e) = g.write_summary(&report.markdown(50)) {
        eprintln!("warning: cannot write the job summary: {e}");
    }
    let outputs = [
        ("release", report.release.clone()),
        (
            "previous-release",
            report.previous_release.clone().unwrap_or_default(),
        ),
        ("uploaded", report.uploaded.to_string()),
        ("deleted", report.deleted.to_string()),
        ("noop", report.noop.to_string()),
        (
            "invalidation-id",
            report
                .invalidations
                .iter()
                .map(|i| i.id.as_str())
                .collect::<Vec<_>>()
                .join(","),
        ),
        ("url", report.url.clone().unwrap_or_default()),
    ];
    if let Err(e) = g.write_outputs(&outputs) {
        eprintln!("warning: cannot write the step outputs: {e}");
    }
}

/// `user@host pid N`, for the lock (read once, at start-up).
fn holder() -> String {
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
fn limit_malloc_arenas() {
    if std::env::var_os("MALLOC_ARENA_MAX").is_some() {
        return;
    }
    let n = std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(2)
        .clamp(2, 8);
    // SAFETY: mallopt only tunes the allocator; called before any thread exists.
    unsafe {
        libc::mallopt(libc::M_ARENA_MAX, n as libc::c_int);
    }
}

#[cfg(not(all(target_os = "linux", target_env = "gnu")))]
fn limit_malloc_arenas() {}

fn main() -> std::process::ExitCode {
    limit_malloc_arenas();
    let cli = Cli::parse();
    let gh = GithubEnv::from_env();
    init_tracing(cli.verbose, cli.quiet);
    let rt = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return std::process::ExitCode::from(ExitCode::Internal.code());
        }
    };
    let ctx = Context {
        clock: Arc::new(SystemClock),
        progress: ProgressMode::detect(cli.quiet),
        cancel: Cancel::new(),
        holder: holder(),
    };
    let result = rt.block_on(async {
        // `serve` stops on its own terms; every other command finishes
        // its requests in flight first.
        if !matches!(cli.command, Command::Serve(_)) {
            watch_signals(ctx.cancel.clone());
        }
        run(cli, ctx, gh.clone()).await
    });
    match result {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            // Whatever produced the message, no credentials in a URL reach
            // the terminal or the job log.
            let msg = cdnsync::redact::redact_urls(&e.to_string());
            if gh.is_some() {
                println!("{}", cdnsync::github::error(&msg));
            }
            eprintln!("error: {msg}");
            std::process::ExitCode::from(e.exit_code().code())
        }
    }
}
