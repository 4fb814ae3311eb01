//! `cdnsync releases --to TARGET`: the recorded releases, oldest first,
//! with the live one marked.

use futures::StreamExt;
use serde::Serialize;

use crate::commands::Context;
use crate::config::TargetConfig;
use crate::error::Result;
use crate::output::{Render, View};
use crate::redact::printable;
use crate::release;

#[derive(Debug, Clone, Serialize)]
pub struct ReleaseSummary {
    pub id: String,
    pub created: String,
    pub files: usize,
    pub bytes: u64,
    pub commit: Option<String>,
    pub message: Option<String>,
    pub rollback_of: Option<String>,
    pub live: bool,
}

/// Every recorded release, oldest first.
#[derive(Debug, Clone, Serialize)]
#[serde(transparent)]
pub struct Releases(pub Vec<ReleaseSummary>);

impl Render for Releases {
    fn human(&self, _: &View) -> String {
        human(&self.0)
    }

    fn essential(&self) -> bool {
        true
    }
}

pub async fn run(cfg: &TargetConfig, ctx: &Context) -> Result<Releases> {
    let (store, prefix) = ctx.open_checked(cfg).await?;
    let store = store.as_ref();
    let ids = release::list_ids(store, &prefix).await?;
    let live = release::current_id(store, &prefix).await?;
    let mut out: Vec<ReleaseSummary> = futures::stream::iter(ids.iter().map(|id| {
        let prefix = prefix.clone();
        async move { release::read(store, &prefix, id).await }
    }))
    .buffered(16)
    .collect::<Vec<_>>()
    .await
    .into_iter()
    .collect::<Result<Vec<_>>>()?
    .into_iter()
    .map(|r| {
        let files = r.files.values().filter(|f| !f.stale);
        ReleaseSummary {
            live: live.as_deref() == Some(r.id.as_str()),
            files: files.clone().count(),
            bytes: files.map(|f| f.size).sum(),
            id: r.id,
            created: r.created,
            commit: r.commit,
            message: r.message,
            rollback_of: r.rollback_of,
        }
    })
    .collect();
    out.sort_by(|a, b| a.id.cmp(&b.id));
    Ok(Releases(out))
}

/// A table for humans: a header row, aligned columns, times to the
/// second; text from the records with control characters escaped.
pub fn human(list: &[ReleaseSummary]) -> String {
    use std::fmt::Write as _;
    if list.is_empty() {
        return "no releases recorded\n".into();
    }
    let rows: Vec<[String; 6]> = list
        .iter()
        .map(|r| {
            let note = match (&r.message, &r.rollback_of) {
                (Some(m), Some(o)) if !m.contains(o.as_str()) => {
                    format!("{m} (rollback to {o})")
                }
                (Some(m), _) => m.clone(),
                (None, Some(o)) => format!("rollback to {o}"),
                (None, None) => String::new(),
            };
            [
                printable(&r.id),
                created_to_the_second(&r.created),
                r.files.to_string(),
                crate::progress::human_bytes(r.bytes),
                r.commit
                    .as_deref()
                    .map(short_commit)
                    .unwrap_or_else(|| "-".into()),
                printable(&note),
            ]
        })
        .collect();
    let header = ["RELEASE", "CREATED", "FILES", "SIZE", "COMMIT", "NOTE"];
    let width = |i: usize| {
        rows.iter()
            .map(|r| r[i].chars().count())
            .chain([header[i].len()])
            .max()
            .unwrap_or(0)
    };
    let w: Vec<usize> = (0..5).map(width).collect();
    let mut s = String::new();
    let line = |s: &mut String, mark: &str, c: [&str; 6]| {
        let _ = writeln!(
            s,
            "{mark} {:<w0$}  {:<w1$}  {:>w2$}  {:>w3$}  {:<w4$}  {}",
            c[0],
            c[1],
            c[2],
            c[3],
            c[4],
            c[5],
            w0 = w[0],
            w1 = w[1],
            w2 = w[2],
            w3 = w[3],
            w4 = w[4]
        );
    };
    line(&mut s, " ", header);
    for (r, row) in list.iter().zip(&rows) {
        line(
            &mut s,
            if r.live { "*" } else { " " },
            [&row[0], &row[1], &row[2], &row[3], &row[4], &row[5]],
        );
    }
    // Trailing spaces of an empty last column are noise.
    s.lines().map(str::trim_end).collect::<Vec<_>>().join("\n") + "\n"
}

/// `2026-12-03T10:34:47.55542366Z` → `2026-12-03 10:34:47Z` (a value that
/// does not parse is shown as it is, escaped).
fn created_to_the_second(created: &str) -> String {
    use time::format_description::well_known::Rfc3339;
    match time::OffsetDateTime::parse(created, &Rfc3339) {
        Ok(t) => {
            let t = t.to_offset(time::UtcOffset::UTC);
            format!(
                "{:04}-{:02}-{:02} {:02}:{:02}:{:02}Z",
                t.year(),
                u8::from(t.month()),
                t.day(),
                t.hour(),
                t.minute(),
                t.second()
            )
        }
        Err(_) => printable(created),
    }
}

/// A commit as 12 characters (`-dirty` kept), whatever it contains.
fn short_commit(c: &str) -> String {
    let (sha, dirty) = match c.strip_suffix("-dirty") {
        Some(s) => (s, "-dirty"),
        None => (c, ""),
    };
    printable(&format!(
        "{}{dirty}",
        sha.chars().take(12).collect::<String>()
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn summary(id: &str, live: bool) -> ReleaseSummary {
        ReleaseSummary {
            id: id.into(),
            created: "2026-12-03T10:34:47.55542366Z".into(),
            files: 1,
            bytes: 9,
            commit: None,
            message: None,
            rollback_of: None,
            live,
        }
    }

    #[test]
    fn table_has_a_header_aligned_columns_and_escaped_text() {
        let mut a = summary("20261203T103447.553Z-1e348b4e", false);
        a.commit = Some("0123456789abcdef0123-dirty".into());
        a.files = 12345;
        let mut b = summary("20261203T103447.587Z-fe87342b", true);
        b.message = Some("rollback to 20261203T103447.553Z-1e348b4e".into());
        b.rollback_of = Some("20261203T103447.553Z-1e348b4e".into());
        let mut c = summary("20261203T103447.599Z-1f444ed3", false);
        c.message = Some("evil \u{1b}[31mred\nline".into());
        c.commit = Some("é".repeat(40));
        let t = human(&[a, b, c]);
        let lines: Vec<&str> = t.lines().collect();
        assert!(
            lines[0].contains("RELEASE") && lines[0].contains("CREATED"),
            "{t}"
        );
        assert!(
            lines[1].contains("2026-12-03 10:34:47Z") && lines[1].contains("0123456789ab-dirty"),
            "{t}"
        );
        assert_eq!(t.matches("rollback to").count(), 1, "{t}");
        assert!(lines[2].starts_with('*'));
        assert!(!t.contains('\u{1b}') && t.contains("\\u{1b}"), "{t}");
        assert_eq!(
            lines.len(),
            4,
            "a newline in a message stays on its row: {t}"
        );
        // Columns line up: the commit column starts at the same character
        // on every row.
        let col =
            |l: &str, pat: &str| l.chars().count() - l[l.find(pat).unwrap()..].chars().count();
        let at = col(lines[0], "COMMIT");
        assert_eq!(col(lines[1], "0123456789ab"), at, "{t}");
        assert_eq!(col(lines[2], " - ") + 1, at, "{t}");
        assert_eq!(col(lines[3], "éé"), at, "{t}");
    }
}
