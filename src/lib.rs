//! cdnsync: publish a static build directory to S3 (or a local directory) the
//! way well-run sites do it by hand: encrypted, with the right headers,
//! incrementally, recorded as releases.
//!
//! The pipeline is `scan → plan → execute`: scanning and remote reads do I/O,
//! planning is a pure function over their results, and the executor applies
//! the plan through the transfer engine to a [`store::Store`]. See
//! `ARCHITECTURE.md` for the map of modules.

pub mod beneath;
pub mod cdn;
pub mod check;
pub mod cli;
pub mod clock;
pub mod commands;
pub mod compress;
pub mod config;
pub mod connect;
pub mod doctor;
pub mod endpoint;
pub mod error;
pub mod execute;
pub mod fingerprint;
pub mod gc;
pub mod github;
pub mod graph;
pub mod headers;
pub mod invalidate;
pub mod keys;
pub mod lock;
pub mod migrate;
pub mod mime;
pub mod output;
pub mod plan;
pub mod process;
pub mod progress;
#[cfg(test)]
mod reader_fuzz;
pub mod redact;
pub mod release;
pub mod remote;
pub mod report;
pub mod retry;
#[cfg(test)]
mod rewrite_fuzz;
pub mod routing;
pub mod rules;
pub mod scan;
pub mod signal;
pub mod store;
pub mod target;
pub mod transfer;
pub mod walk;
pub mod warning;

pub use error::{Error, ExitCode, Result};
