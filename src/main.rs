//! The `cdnsync` binary: parse arguments once, run the command, print the
//! report, exit with the code the error type gives.

use std::sync::Arc;

use clap::Parser;

use cdnsync::Error;
use cdnsync::cli::{Cli, Command};
use cdnsync::clock::SystemClock;
use cdnsync::commands::{self, Context};
use cdnsync::github::GithubEnv;
use cdnsync::output::{self, Output};
use cdnsync::process;
use cdnsync::progress::ProgressMode;
use cdnsync::transfer::Cancel;

fn main() -> std::process::ExitCode {
    process::limit_malloc_arenas();
    let cli = Cli::parse();
    process::init_tracing(cli.verbose, cli.quiet);
    let out = match commands::output_for(&cli, GithubEnv::from_env()) {
        Ok(o) => o,
        Err(e) => return fail(&Output::plain(), &e),
    };
    let rt = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            return fail(
                &out,
                &Error::Internal(format!("cannot start the async runtime: {e}")),
            );
        }
    };
    let ctx = Context {
        clock: Arc::new(SystemClock),
        progress: ProgressMode::detect(cli.quiet),
        cancel: Cancel::new(),
        holder: process::holder(),
    };
    let result = rt.block_on(async {
        // `serve` stops on its own terms; every other command finishes
        // its requests in flight first.
        if !matches!(cli.command, Command::Serve(_)) {
            process::watch_signals(ctx.cancel.clone());
        }
        commands::dispatch(&cli, &ctx, &out).await
    });
    match result {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => fail(&out, &e),
    }
}

/// One line on standard error; the exit code the error type gives.
fn fail(out: &Output, e: &Error) -> std::process::ExitCode {
    output::error(out, e);
    std::process::ExitCode::from(e.exit_code().code())
}
