//! GitHub Actions integration, active only when `GITHUB_ACTIONS=true`:
//! workflow commands (annotations, log groups), the job summary and step
//! outputs. The environment is read once at start-up into [`GithubEnv`].

use std::io::Write as _;
use std::path::{Path, PathBuf};

/// The job summary's size limit is 1 MiB per step; stay well under it.
pub const SUMMARY_LIMIT: usize = 1024 * 1024 - 16 * 1024;

#[derive(Debug, Clone, Default)]
pub struct GithubEnv {
    /// `$GITHUB_STEP_SUMMARY`: Markdown appended here is the job summary.
    pub step_summary: Option<PathBuf>,
    /// `$GITHUB_OUTPUT`: `name=value` lines become step outputs.
    pub output: Option<PathBuf>,
}

impl GithubEnv {
    /// `Some` when running as a GitHub Actions step.
    pub fn from_env() -> Option<GithubEnv> {
        if std::env::var("GITHUB_ACTIONS").ok().as_deref() != Some("true") {
            return None;
        }
        let path = |k: &str| {
            std::env::var_os(k)
                .filter(|v| !v.is_empty())
                .map(PathBuf::from)
        };
        Some(GithubEnv {
            step_summary: path("GITHUB_STEP_SUMMARY"),
            output: path("GITHUB_OUTPUT"),
        })
    }

    /// Append the job summary (truncated to stay under the limit).
    pub fn write_summary(&self, markdown: &str) -> std::io::Result<()> {
        let Some(p) = &self.step_summary else {
            return Ok(());
        };
        append(p, truncate(markdown, SUMMARY_LIMIT).as_bytes())
    }

    /// Append step outputs; values with newlines use the heredoc form.
    pub fn write_outputs(&self, outputs: &[(&str, String)]) -> std::io::Result<()> {
        let Some(p) = &self.output else {
            return Ok(());
        };
        let mut s = String::new();
        for (k, v) in outputs {
            if v.contains('\n') {
                let delim = format!("cdnsync_{}", blake3::hash(v.as_bytes()).to_hex());
                s.push_str(&format!("{k}<<{delim}\n{v}\n{delim}\n"));
            } else {
                s.push_str(&format!("{k}={v}\n"));
            }
        }
        append(p, s.as_bytes())
    }
}

fn append(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let mut f = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)?;
    f.write_all(bytes)
}

/// Cut at a line boundary below `limit` bytes, saying so.
pub fn truncate(s: &str, limit: usize) -> String {
    if s.len() <= limit {
        return s.to_string();
    }
    let note = "\n\n_… summary truncated to stay under GitHub's 1 MiB limit; run with `--json` for the full report._\n";
    let mut cut = limit.saturating_sub(note.len());
    while !s.is_char_boundary(cut) {
        cut -= 1;
    }
    let cut = s[..cut].rfind('\n').unwrap_or(cut);
    format!("{}{note}", &s[..cut])
}

/// Escape a workflow command's message.
pub fn escape_data(s: &str) -> String {
    s.replace('%', "%25")
        .replace('\r', "%0D")
        .replace('\n', "%0A")
}

/// Escape a workflow command's property value.
pub fn escape_property(s: &str) -> String {
    escape_data(s).replace(':', "%3A").replace(',', "%2C")
}

/// `::warning file=F,line=L::message`.
pub fn warning(file: Option<&str>, line: Option<usize>, message: &str) -> String {
    let mut props = Vec::new();
    if let Some(f) = file {
        props.push(format!("file={}", escape_property(f)));
    }
    if let Some(l) = line {
        props.push(format!("line={l}"));
    }
    if props.is_empty() {
        format!("::warning::{}", escape_data(message))
    } else {
        format!("::warning {}::{}", props.join(","), escape_data(message))
    }
}

/// `::error::message`.
pub fn error(message: &str) -> String {
    format!("::error::{}", escape_data(message))
}

/// A repository-relative path for an annotation: `dir/rel` without `./`.
pub fn annotation_path(dir: &Path, rel: &str) -> String {
    let p = dir.join(rel);
    let s = p.to_string_lossy().replace('\\', "/");
    s.strip_prefix("./").unwrap_or(&s).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escaping() {
        assert_eq!(
            warning(Some("dist/a,b:c.html"), Some(3), "100% broken\nnext"),
            "::warning file=dist/a%2Cb%3Ac.html,line=3::100%25 broken%0Anext"
        );
        assert_eq!(error("x"), "::error::x");
        assert_eq!(warning(None, None, "w"), "::warning::w");
    }

    #[test]
    fn truncates_at_a_line() {
        let s = "line\n".repeat(1000);
        let t = truncate(&s, 300);
        assert!(t.len() <= 300, "{}", t.len());
        assert!(t.contains("truncated"));
        assert_eq!(truncate("short", 300), "short");
    }

    #[test]
    fn outputs_and_summary_append() {
        let d = tempfile::tempdir().unwrap();
        let g = GithubEnv {
            step_summary: Some(d.path().join("s")),
            output: Some(d.path().join("o")),
        };
        g.write_outputs(&[("release", "r1".into()), ("multi", "a\nb".into())])
            .unwrap();
        g.write_summary("# hi\n").unwrap();
        g.write_summary("more\n").unwrap();
        let o = std::fs::read_to_string(d.path().join("o")).unwrap();
        assert!(o.starts_with("release=r1\nmulti<<cdnsync_"), "{o}");
        assert!(o.contains("\na\nb\ncdnsync_"));
        assert_eq!(
            std::fs::read_to_string(d.path().join("s")).unwrap(),
            "# hi\nmore\n"
        );
    }
}
