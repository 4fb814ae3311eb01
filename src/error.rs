//! Typed errors of the library and the exit code each maps to, so the binary
//! can report one clear line and scripts can branch on the code.

use std::path::PathBuf;

use crate::store::StoreError;

pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Process exit codes. Documented in the README; stable across releases.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[repr(u8)]
pub enum ExitCode {
    /// Everything asked for was done.
    Success = 0,
    /// An unexpected internal failure.
    Internal = 1,
    /// Invalid command line, configuration file or target.
    Usage = 2,
    /// The local input is unusable: directory missing, unreadable file,
    /// symlink loop or escape, a name that cannot be a key.
    Input = 3,
    /// Credentials missing or rejected, or access denied.
    Auth = 4,
    /// The remote is unusable: bucket missing, wrong region, corrupt or
    /// too-new release manifest.
    Remote = 5,
    /// Some uploads failed after retries; nothing was deleted and the live
    /// release was not switched.
    Transfer = 6,
    /// Another publish, rollback or gc holds the target's lock.
    Locked = 7,
    /// The release is live, but a CDN routing update, invalidation or cache purge failed
    /// (rerun, or invalidate / purge by hand).
    CdnIncomplete = 8,
    /// A migration finished, but some files failed (see its report file).
    CompletedWithFailures = 9,
    /// `doctor` found warnings (and no failures).
    DoctorWarnings = 10,
    /// `doctor` found failures.
    DoctorFailures = 11,
    /// Interrupted by Ctrl-C / SIGTERM; no manifest written, nothing deleted.
    Interrupted = 130,
}

impl ExitCode {
    pub fn code(self) -> u8 {
        self as u8
    }
}

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("{0}")]
    Usage(String),

    /// A broken invariant or a failed internal task: a bug (exit 1).
    #[error("internal error: {0}")]
    Internal(String),

    #[error("{path}:{line}:{column}: {message}")]
    ConfigSyntax {
        path: PathBuf,
        line: usize,
        column: usize,
        message: String,
    },

    #[error("{path}: {message}")]
    Config { path: PathBuf, message: String },

    #[error("invalid target `{target}`: {reason}")]
    InvalidTarget { target: String, reason: String },

    #[error("{path}: {message}")]
    Input { path: PathBuf, message: String },

    #[error("{path}: cannot read: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },

    #[error(
        "{path}: file changed while cdnsync was reading it; rerun the publish once the build has finished"
    )]
    FileChanged { path: PathBuf },

    #[error("no AWS credentials found: {0}")]
    Credentials(String),

    #[error("{0}")]
    Store(#[from] StoreError),

    #[error("release manifest `{key}` is unusable: {reason}")]
    Manifest { key: String, reason: String },

    #[error(
        "{failed} of {total} uploads failed (first: {first}); nothing was deleted and the live release is unchanged"
    )]
    Transfer {
        failed: usize,
        total: usize,
        first: String,
    },

    #[error("interrupted; no release was recorded and nothing was deleted")]
    Interrupted,

    #[error("{failed} file(s) failed or did not verify; details in {report}")]
    MigrateIncomplete { failed: usize, report: String },

    #[error(
        "release {release} is live, but a CDN routing update, invalidation or cache purge failed: {reason}"
    )]
    CdnIncomplete { release: String, reason: String },

    #[error("doctor: {failures} failure(s), {warnings} warning(s)")]
    DoctorFindings { warnings: usize, failures: usize },

    #[error(
        "`{key}` is held by {holder}; retry later, pass --wait-lock DURATION, or remove a stale lock with `cdnsync unlock --force`"
    )]
    Locked { key: String, holder: String },
}

/// What a store error means for the run.
fn store_exit_code(e: &StoreError) -> ExitCode {
    match e {
        StoreError::Denied { .. } => ExitCode::Auth,
        StoreError::NoSuchBucket { .. }
        | StoreError::WrongRegion { .. }
        | StoreError::Unreachable { .. }
        | StoreError::TooLarge { .. } => ExitCode::Remote,
        StoreError::Transient { .. }
        | StoreError::NotFound { .. }
        | StoreError::Precondition { .. }
        | StoreError::Other { .. } => ExitCode::Transfer,
    }
}

impl Error {
    pub fn input(path: impl Into<PathBuf>, message: impl Into<String>) -> Self {
        Error::Input {
            path: path.into(),
            message: message.into(),
        }
    }

    pub fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        Error::Io {
            path: path.into(),
            source,
        }
    }

    pub fn exit_code(&self) -> ExitCode {
        match self {
            Error::Usage(_)
            | Error::ConfigSyntax { .. }
            | Error::Config { .. }
            | Error::InvalidTarget { .. } => ExitCode::Usage,
            Error::Input { .. } | Error::Io { .. } | Error::FileChanged { .. } => ExitCode::Input,
            Error::Credentials(_) => ExitCode::Auth,
            Error::Internal(_) => ExitCode::Internal,
            Error::Store(e) => store_exit_code(e),
            Error::Manifest { .. } => ExitCode::Remote,
            Error::Transfer { .. } => ExitCode::Transfer,
            Error::Interrupted => ExitCode::Interrupted,
            Error::Locked { .. } => ExitCode::Locked,
            Error::CdnIncomplete { .. } => ExitCode::CdnIncomplete,
            Error::MigrateIncomplete { .. } => ExitCode::CompletedWithFailures,
            Error::DoctorFindings { failures: 0, .. } => ExitCode::DoctorWarnings,
            Error::DoctorFindings { .. } => ExitCode::DoctorFailures,
        }
    }
}
