//! One module per subcommand; each is a short script of pipeline stages:
//! `run(&Config, &Context) -> Result<Report>`. [`dispatch`] resolves the
//! configuration once, runs the command and hands its report to the output
//! layer.

use std::sync::Arc;

use crate::cli::{Cli, Command, OutputFormat};
use crate::clock::Clock;
use crate::config::{self, PublishConfig, TargetConfig};
use crate::error::{Error, Result};
use crate::output::{self, Output};
use crate::progress::ProgressMode;
use crate::store::Store;
use crate::transfer::Cancel;

pub mod doctor;
pub mod gc;
pub mod man;
pub mod migrate;
pub mod publish;
pub mod releases;
pub mod rollback;
pub mod serve;
pub mod unlock;

/// What every command gets from `main`: injected clock, progress style and
/// the Ctrl-C flag.
#[derive(Clone)]
pub struct Context {
    pub clock: Arc<dyn Clock>,
    pub progress: ProgressMode,
    pub cancel: Cancel,
    /// Who holds locks taken by this run: `user@host pid N`.
    pub holder: String,
}

/// How a command's output is shown: `--format` over `--json` over text.
pub fn output_for(cli: &Cli, github: Option<crate::github::GithubEnv>) -> Result<Output> {
    let (json, format) = match &cli.command {
        Command::Publish(a) | Command::Plan(a) => (a.remote.json, a.format),
        Command::Releases(a) | Command::Doctor(a) => (a.json, None),
        Command::Rollback(a) => (a.remote.json, None),
        Command::Gc(a) => (a.remote.json, None),
        Command::Migrate(a) => (a.remote.json, None),
        Command::Unlock(a) => (a.remote.json, None),
        Command::Serve(_) | Command::Completions(_) | Command::Man(_) => (false, None),
    };
    let format = match (format, json) {
        (Some(f), true) if f != OutputFormat::Json => {
            return Err(Error::Usage(
                "--json and --format disagree; pass one of them".into(),
            ));
        }
        (Some(f), _) => f,
        (None, true) => OutputFormat::Json,
        (None, false) => OutputFormat::Human,
    };
    Ok(Output {
        format,
        quiet: cli.quiet,
        verbose: cli.verbose,
        github,
    })
}

/// Resolve the command's configuration (the file read once), run it, show
/// its report; the error, if any, carries the exit code.
pub async fn dispatch(cli: &Cli, ctx: &Context, out: &Output) -> Result<()> {
    match &cli.command {
        Command::Publish(a) | Command::Plan(a) => {
            let dry = matches!(cli.command, Command::Plan(_));
            let cfg = PublishConfig::resolve(a, dry, &config::load(&a.remote)?)?;
            match publish::run(&cfg, ctx).await {
                Ok(r) => output::emit(out, &r),
                Err(e) => {
                    let verb = if cfg.dry_run { "plan" } else { "publish" };
                    output::github_failure(out, verb, &cfg.remote.target.display(), &e);
                    Err(e)
                }
            }
        }
        Command::Doctor(a) => {
            let cfg = config::DoctorConfig::resolve(a, &config::load(a)?)?;
            output::emit(out, &doctor::run(&cfg, ctx).await?)
        }
        Command::Releases(a) => {
            let cfg = TargetConfig::resolve(a, &config::load(a)?)?;
            output::emit(out, &releases::run(&cfg, ctx).await?)
        }
        Command::Rollback(a) => {
            let cfg = config::RollbackConfig::resolve(a, &config::load(&a.remote)?)?;
            output::emit(out, &rollback::run(&cfg, ctx).await?)
        }
        Command::Gc(a) => {
            let cfg = config::GcConfig::resolve(a, &config::load(&a.remote)?)?;
            output::emit(out, &gc::run(&cfg, ctx).await?)
        }
        Command::Migrate(a) => {
            let cfg = config::MigrateConfig::resolve(a, &config::load(&a.remote)?)?;
            output::emit(out, &migrate::run(&cfg, ctx).await?)
        }
        Command::Unlock(a) => {
            let cfg = config::UnlockConfig::resolve(a, &config::load(&a.remote)?)?;
            output::emit(out, &unlock::run(&cfg, ctx).await?)
        }
        Command::Serve(a) => {
            serve::run(
                &serve::ServeConfig::from(a),
                crate::signal::stop_requested(),
            )
            .await
        }
        Command::Completions(a) => {
            man::completions(a.shell);
            Ok(())
        }
        Command::Man(a) => man::run(a.dir.as_deref()),
    }
}

impl Context {
    /// Run `f` holding the target's lock (no lock for dry runs); the lock is
    /// released afterwards, on success and on handled errors alike.
    pub async fn locked<T>(
        &self,
        store: &Arc<dyn Store>,
        prefix: &str,
        cfg: &TargetConfig,
        command: &str,
        dry_run: bool,
        f: impl AsyncFnOnce() -> Result<T>,
    ) -> Result<T> {
        let held = if dry_run {
            None
        } else {
            let opts = self.lock_options(cfg.wait_lock, cfg.lock_ttl, command);
            Some(
                crate::lock::acquire(store.clone(), prefix, &cfg.sse, self.clock.clone(), &opts)
                    .await?,
            )
        };
        let r = f().await;
        if let Some(l) = held {
            l.release().await;
        }
        r
    }

    pub fn lock_options(
        &self,
        wait: Option<std::time::Duration>,
        ttl: std::time::Duration,
        command: &str,
    ) -> crate::lock::LockOptions {
        crate::lock::LockOptions {
            ttl,
            wait,
            holder: self.holder.clone(),
            command: command.to_string(),
            poll: std::time::Duration::from_secs(2),
        }
    }
}

impl Context {
    /// The retry policy of store calls, with this run's randomness.
    pub fn retry(&self) -> crate::retry::Retry {
        let clock = self.clock.clone();
        crate::retry::Retry::store(Arc::new(move || clock.random_u32()))
    }

    /// The target's store, every call retried on transient errors (until
    /// the run is cancelled); with the key prefix.
    pub async fn open_store(&self, cfg: &TargetConfig) -> Result<(Arc<dyn Store>, String)> {
        let (store, prefix) = crate::connect::open_store(cfg).await?;
        let store = crate::transfer::RetryingStore::new(store, self.retry(), self.cancel.clone());
        Ok((Arc::new(store), prefix))
    }

    /// [`Context::open_store`], then one request checking the store answers
    /// (bucket, credentials, region): what every command but a dry run on a
    /// local target starts with.
    pub async fn open_checked(&self, cfg: &TargetConfig) -> Result<(Arc<dyn Store>, String)> {
        let (store, prefix) = self.open_store(cfg).await?;
        store.check().await?;
        Ok((store, prefix))
    }

    /// The transfer engine over `store`.
    pub fn runner<'a>(
        &self,
        store: &'a dyn Store,
        opts: crate::transfer::TransferOptions,
    ) -> crate::transfer::Runner<'a> {
        crate::transfer::Runner::new(store, opts, self.cancel.clone(), self.retry())
    }
}
