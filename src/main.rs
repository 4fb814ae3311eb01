//! The `cdnsync` binary: parse arguments once, run the command, print the
//! report, exit with the code the error type gives.

use std::io::Write;
use std::sync::Arc;

use clap::Parser;

use cdnsync::cli::{Cli, Command};
use cdnsync::clock::SystemClock;
use cdnsync::commands::{self, Context};
use cdnsync::config::{PublishConfig, TargetConfig};
use cdnsync::execute::Cancel;
use cdnsync::progress::ProgressMode;
use cdnsync::{Error, ExitCode};

fn init_tracing(verbose: u8, quiet: bool) {
    let default = match (quiet, verbose) {
        (true, _) => "error",
        (false, 0) => "warn",
        (false, 1) => "cdnsync=debug,warn",
        _ => "cdnsync=trace,debug",
    };
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_target(false)
        .try_init();
}

/// Ctrl-C / SIGTERM: stop scheduling work; a second one exits at once.
fn watch_signals(cancel: Cancel) {
    tokio::spawn(async move {
        let mut term =
            tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()).ok();
        for n in 0.. {
            let term_fut = async {
                match term.as_mut() {
                    Some(t) => {
                        t.recv().await;
                    }
                    None => std::future::pending::<()>().await,
                }
            };
            tokio::select! {
                _ = tokio::signal::ctrl_c() => {}
                _ = term_fut => {}
            }
            if n == 0 {
                eprintln!(
                    "interrupted: finishing requests in flight, recording nothing (press Ctrl-C again to abort now)"
                );
                cancel.cancel();
            } else {
                std::process::exit(ExitCode::Interrupted.code() as i32);
            }
        }
    });
}

async fn run(cli: Cli, ctx: Context) -> Result<(), Error> {
    match &cli.command {
        Command::Publish(args) | Command::Plan(args) => {
            let dry = matches!(cli.command, Command::Plan(_));
            let cfg = PublishConfig::resolve(args, dry)?;
            let report = commands::publish::run(&cfg, &ctx).await?;
            let mut out = std::io::stdout().lock();
            if cfg.json {
                // A closed pipe (`| head`) is not an error of the publish.
                let _ = serde_json::to_writer_pretty(&mut out, &report);
                let _ = writeln!(out);
            } else if !cli.quiet {
                let lines = if cli.verbose > 0 { usize::MAX } else { 40 };
                let _ = write!(out, "{}", report.human(lines));
            }
            for w in &report.warnings {
                eprintln!("warning: {w}");
            }
            if !report.cdn_failures.is_empty() {
                return Err(Error::CdnIncomplete {
                    release: report.release.clone(),
                    reason: report.cdn_failures.join("; "),
                });
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
            commands::serve::run(&commands::serve::ServeConfig {
                dir: args.dir.clone(),
                addr: std::net::SocketAddr::new(args.host, args.port),
            })
            .await
        }
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

fn main() -> std::process::ExitCode {
    let cli = Cli::parse();
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
        watch_signals(ctx.cancel.clone());
        run(cli, ctx).await
    });
    match result {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            std::process::ExitCode::from(e.exit_code().code())
        }
    }
}
