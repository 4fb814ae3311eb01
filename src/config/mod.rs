//! One validated, read-only configuration per run, layered as
//! command line > `CDNSYNC_*` environment > `cdnsync.toml` > defaults.
//!
//! The file is read once ([`load`]); [`TargetConfig::resolve`] is the only
//! place target settings (encryption, endpoint, region, CDNs, lock) are
//! decided, and every command's configuration embeds its result.

use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::cli::TargetArgs;
use crate::error::{Error, Result};

mod commands;
mod file;
mod publish;
mod target;

pub use commands::{
    DoctorConfig, GcConfig, MigrateConfig, RollbackConfig, UnlockConfig, gc_options,
};
pub use file::{CacheControlConfig, DEFAULT_CONFIG, FileConfig, load_file, parse_file};
pub use publish::{PublishConfig, SiteConfig, TransferConfig};
pub use target::TargetConfig;

/// The configuration file of a run, parsed once.
#[derive(Debug, Default)]
pub struct Loaded {
    pub file: FileConfig,
    /// The file read, if any.
    pub path: Option<PathBuf>,
}

impl Loaded {
    /// The path errors about a setting name (the default name when no file
    /// was read: the setting came from nowhere else).
    pub fn path_for_errors(&self) -> PathBuf {
        self.path
            .clone()
            .unwrap_or_else(|| PathBuf::from(DEFAULT_CONFIG))
    }

    /// An error about the setting `name` of this file.
    pub fn setting_error(&self, name: &str, message: impl std::fmt::Display) -> Error {
        Error::Config {
            path: self.path_for_errors(),
            message: format!("`{name}`: {message}"),
        }
    }
}

/// The file named by `--config`, else `./cdnsync.toml`, else none.
pub fn load(a: &TargetArgs) -> Result<Loaded> {
    match &a.config {
        Some(p) => Ok(Loaded {
            file: load_file(p)?,
            path: Some(p.clone()),
        }),
        None if Path::new(DEFAULT_CONFIG).is_file() => Ok(Loaded {
            file: load_file(Path::new(DEFAULT_CONFIG))?,
            path: Some(PathBuf::from(DEFAULT_CONFIG)),
        }),
        None => Ok(Loaded::default()),
    }
}

/// Parse `90s`, `5m`, `1h30m`, `2d`, `1h 30m` (humantime's units), or plain
/// seconds.
pub fn parse_duration(s: &str) -> std::result::Result<Duration, String> {
    let t = s.trim();
    if let Ok(n) = t.parse::<u64>() {
        return Ok(Duration::from_secs(n));
    }
    humantime::parse_duration(t)
        .map_err(|e| format!("invalid duration `{s}` (e.g. 30s, 10m, 1h, 7d): {e}"))
}

/// A duration flag: `--name VALUE`, errors naming the flag.
pub(crate) fn duration_flag(flag: &str, v: &str) -> Result<Duration> {
    parse_duration(v).map_err(|e| Error::Usage(format!("{flag}: {e}")))
}

/// Header values must be printable ASCII (HTTP field rules).
pub(crate) fn check_header_value(v: &str) -> std::result::Result<(), String> {
    if v.trim().is_empty() {
        return Err("must not be empty".into());
    }
    if let Some(c) = v.chars().find(|c| !(' '..='~').contains(c)) {
        return Err(format!(
            "`{v}` contains {c:?}, which is not allowed in an HTTP header"
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations() {
        assert_eq!(parse_duration("90").unwrap(), Duration::from_secs(90));
        assert_eq!(parse_duration("30s").unwrap(), Duration::from_secs(30));
        assert_eq!(parse_duration("1h30m").unwrap(), Duration::from_secs(5400));
        assert_eq!(parse_duration("7d").unwrap(), Duration::from_secs(604800));
        assert!(parse_duration("5x").is_err());
        assert!(parse_duration("5m3").is_err());
        // Overflow is an error, not a panic.
        assert!(parse_duration("99999999999999999999d").is_err());
    }

    #[test]
    fn header_values_are_checked() {
        assert!(check_header_value("public, max-age=60").is_ok());
        assert!(check_header_value("").is_err());
        assert!(check_header_value("a\nb").is_err());
    }
}

/// Every command resolves the target's settings in one place: the same
/// spelling means the same encryption everywhere, on the command line and
/// in the file, and a value that is not one is an error everywhere.
#[cfg(test)]
mod every_command {
    use clap::Parser;

    use super::*;
    use crate::cli::{Cli, Command};
    use crate::store::Sse;

    /// The SSE each command would use, given its arguments and the file.
    fn sse_of(argv: &[&str], file: &str) -> Result<Vec<(&'static str, Sse)>> {
        let loaded = Loaded {
            file: parse_file(Path::new("cdnsync.toml"), file)?,
            path: Some("cdnsync.toml".into()),
        };
        let mut out = Vec::new();
        for cmd in [
            "publish", "plan", "releases", "rollback", "gc", "unlock", "doctor", "migrate",
        ] {
            let mut args = vec!["cdnsync", cmd];
            if matches!(cmd, "publish" | "plan" | "migrate") {
                args.push("./dir");
            }
            args.extend_from_slice(&["--to", "s3://bucket/site"]);
            args.extend_from_slice(argv);
            let cli = Cli::try_parse_from(&args).map_err(|e| Error::Usage(e.to_string()))?;
            let sse = match &cli.command {
                Command::Publish(a) | Command::Plan(a) => {
                    PublishConfig::resolve(a, false, &loaded)?.remote.sse
                }
                Command::Releases(a) => TargetConfig::resolve(a, &loaded)?.sse,
                Command::Doctor(a) => DoctorConfig::resolve(a, &loaded)?.remote.sse,
                Command::Rollback(a) => RollbackConfig::resolve(a, &loaded)?.remote.sse,
                Command::Gc(a) => GcConfig::resolve(a, &loaded)?.remote.sse,
                Command::Unlock(a) => UnlockConfig::resolve(a, &loaded)?.remote.sse,
                Command::Migrate(a) => MigrateConfig::resolve(a, &loaded)?.remote.sse,
                _ => unreachable!(),
            };
            out.push((cmd, sse));
        }
        Ok(out)
    }

    fn kms() -> Sse {
        Sse::Kms {
            key_id: None,
            bucket_key: true,
        }
    }

    #[test]
    fn sse_is_the_same_for_every_command_and_every_spelling() {
        for (spelling, want) in [
            ("aes256", Sse::Aes256),
            ("AES256", Sse::Aes256),
            ("aws:kms", kms()),
            ("AWS:KMS", kms()),
            ("kms", kms()),
            ("KMS", kms()),
            ("none", Sse::None),
            ("NONE", Sse::None),
        ] {
            for (cmd, sse) in sse_of(&[], &format!("sse = \"{spelling}\"\n")).unwrap() {
                assert_eq!(sse, want, "{cmd} with sse = {spelling:?} in the file");
            }
            for (cmd, sse) in sse_of(&["--sse", spelling], "").unwrap() {
                assert_eq!(sse, want, "{cmd} --sse {spelling}");
            }
        }
        // No setting: AES256 everywhere; the command line wins over the file.
        for (cmd, sse) in sse_of(&[], "").unwrap() {
            assert_eq!(sse, Sse::Aes256, "{cmd}");
        }
        for (cmd, sse) in sse_of(&["--sse", "none"], "sse = \"kms\"\n").unwrap() {
            assert_eq!(sse, Sse::None, "{cmd}");
        }
    }

    #[test]
    fn an_unknown_sse_is_an_error_for_every_command() {
        let e = sse_of(&[], "sse = \"aes265\"\n").unwrap_err();
        assert!(e.to_string().contains("`aes265` is not one of"), "{e}");
        assert!(sse_of(&["--sse", "aes265"], "").is_err());
        // A KMS key without KMS is refused by every command too.
        let e = sse_of(&[], "sse_kms_key_id = \"alias/x\"\n").unwrap_err();
        assert!(e.to_string().contains("--sse-kms-key-id needs"), "{e}");
    }
}
