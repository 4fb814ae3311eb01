//! The one output layer: every command's report is rendered here — for a
//! person, as Markdown, as JSON, and for GitHub Actions (annotations, the job
//! summary, step outputs) — and says itself which exit code it means.

use std::io::Write;

use crate::cli::OutputFormat;
use crate::error::{Error, Result};
use crate::github::{self, GithubEnv};

/// How a run's output is shown: decided once, from the command line and
/// the environment.
#[derive(Debug, Clone)]
pub struct Output {
    pub format: OutputFormat,
    pub quiet: bool,
    pub verbose: u8,
    /// `Some` under GitHub Actions.
    pub github: Option<GithubEnv>,
}

/// What a human rendering may use.
#[derive(Debug, Clone, Copy)]
pub struct View {
    /// Longest list shown (`-v` shows all).
    pub max_lines: usize,
    /// Under GitHub Actions: long lists folded into log groups.
    pub grouped: bool,
}

/// A command's report, in every form it can be shown.
pub trait Render: serde::Serialize {
    /// Text for a person.
    fn human(&self, view: &View) -> String;

    /// `--format markdown` (and the job summary): the human text unless a
    /// report has a table of its own.
    fn markdown(&self) -> String {
        self.human(&View {
            max_lines: usize::MAX,
            grouped: false,
        })
    }

    /// The report *is* the answer (a listing, a lock's state): shown even
    /// with `--quiet`.
    fn essential(&self) -> bool {
        false
    }

    /// Shown on standard error, or as annotations under GitHub Actions.
    fn warnings(&self) -> Vec<String> {
        Vec::new()
    }

    /// GitHub Actions: annotations, job summary, step outputs. By default
    /// the warnings go to standard error as everywhere else (standard
    /// output may be JSON a later step parses).
    fn github(&self, _g: &GithubEnv, _out: &mut dyn Write) {
        for w in self.warnings() {
            eprintln!("warning: {w}");
        }
    }

    /// The run's outcome: an error when the report says part of the work
    /// did not happen (it knows its own exit code).
    fn outcome(&self) -> Result<()> {
        Ok(())
    }
}

/// Show a report in the run's format, then return its outcome.
pub fn emit<R: Render>(o: &Output, report: &R) -> Result<()> {
    let mut out = std::io::stdout().lock();
    // A closed pipe (`| head`) is not an error of the command.
    match o.format {
        OutputFormat::Json => {
            let _ = serde_json::to_writer_pretty(&mut out, report);
            let _ = writeln!(out);
        }
        OutputFormat::Markdown => {
            let _ = write!(out, "{}", report.markdown());
        }
        OutputFormat::Human if !o.quiet || report.essential() => {
            let view = View {
                max_lines: if o.verbose > 0 { usize::MAX } else { 40 },
                grouped: o.github.is_some(),
            };
            let _ = write!(out, "{}", report.human(&view));
        }
        OutputFormat::Human => {}
    }
    let _ = out.flush();
    match &o.github {
        Some(g) => report.github(g, &mut out),
        None => {
            for w in report.warnings() {
                eprintln!("warning: {w}");
            }
        }
    }
    report.outcome()
}

/// Under GitHub Actions, a failed publish still leaves a job summary.
pub fn github_failure(o: &Output, verb: &str, target: &str, e: &Error) {
    let Some(g) = &o.github else { return };
    let _ = g.write_summary(&format!(
        "### cdnsync {verb} failed\n\n| | |\n|---|---|\n| Target | `{target}` |\n| Error | {} |\n| Exit code | {} |\n\nNothing was deleted; the live site is unchanged unless the error says the release is live.\n",
        crate::redact::redact_urls(&e.to_string())
            .replace('|', "\\|")
            .replace('\n', " "),
        e.exit_code().code()
    ));
}

/// The last word of a failed run: one line on standard error (and an error
/// annotation under GitHub Actions), credentials in URLs redacted.
pub fn error(o: &Output, e: &Error) {
    let msg = crate::redact::redact_urls(&e.to_string());
    if o.github.is_some() {
        println!("{}", github::error(&msg));
    }
    eprintln!("error: {msg}");
}

impl Output {
    /// Text, no GitHub: for errors before the command line is understood.
    pub fn plain() -> Output {
        Output {
            format: OutputFormat::Human,
            quiet: false,
            verbose: 0,
            github: None,
        }
    }
}
