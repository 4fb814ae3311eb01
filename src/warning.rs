//! What went less than perfectly in a run that still succeeded, as data:
//! each kind is its own variant (so the output layer can place a missing
//! reference at its file and line without re-reading text), shown with
//! `Display` and serialized as that text.

use std::fmt;

/// One warning of a run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Warning {
    /// A page or stylesheet references a file the build does not have.
    MissingReference {
        file: String,
        line: usize,
        url: String,
    },
    /// A file could not be parsed for references: published unchanged,
    /// what it may name keeps its name.
    Unparsable { file: String, reason: String },
    /// A subresource-integrity value inside a reference cycle cannot be
    /// recomputed.
    IntegrityInCycle {
        file: String,
        line: usize,
        target: String,
    },
    /// Not a regular file (socket, FIFO, device): skipped.
    NotAFile { file: String },
    /// A name not in Unicode NFC: published as is.
    NotNfc { file: String },
    /// Deletes held back by the delete guard (`--max-delete`).
    DeletesBlocked(String),
    /// A delete that failed (the object stays; the next run retries).
    DeleteFailed { key: String, error: String },
    /// Stale objects could not be deleted (the next run retries).
    DeletesFailed(String),
    /// Garbage collection after a publish failed (the publish is live).
    GcFailed(String),
    /// `_redirects` / `_headers` with routing off: not applied, not uploaded.
    RoutingFileIgnored { file: String },
    /// An exact redirect a file of the site answers (not forced): dropped.
    RedirectShadowed { from: String },
    /// `--compress auto` could not read the CDN (a passing failure): gzip.
    CompressionUnsettled(String),
}

impl fmt::Display for Warning {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Warning::MissingReference { file, line, url } => {
                write!(f, "{file}:{line}: reference to missing file `{url}`")
            }
            Warning::Unparsable { file, reason } => write!(
                f,
                "{file}: {reason}; published unchanged, and files it may reference keep their names"
            ),
            Warning::IntegrityInCycle { file, line, target } => write!(
                f,
                "{file}:{line}: integrity of {target} cannot be recomputed inside a reference cycle; left as written"
            ),
            Warning::NotAFile { file } => write!(
                f,
                "{file}: not a regular file (socket, FIFO or device), skipped"
            ),
            Warning::NotNfc { file } => write!(
                f,
                "{file}: name is not in Unicode NFC (decomposed accents, as macOS may write them); it is published as is, and links typed in NFC will not match it"
            ),
            Warning::DeletesBlocked(why) => f.write_str(why),
            Warning::DeleteFailed { key, error } => write!(f, "could not delete {key}: {error}"),
            Warning::DeletesFailed(e) => write!(f, "deleting old objects failed: {e}"),
            Warning::GcFailed(e) => write!(f, "garbage collection failed: {e}"),
            Warning::RoutingFileIgnored { file } => write!(
                f,
                "{file}: routing is off (--no-routing or routing.enabled = false), so its rules are not applied; it is not uploaded either"
            ),
            Warning::RedirectShadowed { from } => write!(
                f,
                "redirect from `{from}` never applies: a file of the site answers that path (write the status with `!`, e.g. `301!`, to force it)"
            ),
            Warning::CompressionUnsettled(why) => write!(
                f,
                "--compress auto: cannot tell whether the CDN compresses ({why}); text is stored gzip-compressed this time"
            ),
        }
    }
}

/// A key a batch delete could not remove, as `delete_many` reports it.
impl From<(String, crate::store::StoreError)> for Warning {
    fn from((key, e): (String, crate::store::StoreError)) -> Self {
        Warning::DeleteFailed {
            key,
            error: e.to_string(),
        }
    }
}

impl serde::Serialize for Warning {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shown_and_serialized_as_one_line_of_text() {
        let w = Warning::MissingReference {
            file: "index.html".into(),
            line: 3,
            url: "/x.css".into(),
        };
        assert_eq!(
            w.to_string(),
            "index.html:3: reference to missing file `/x.css`"
        );
        assert_eq!(
            serde_json::to_string(&w).unwrap(),
            "\"index.html:3: reference to missing file `/x.css`\""
        );
    }
}
