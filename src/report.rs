//! The result of a publish (or of a dry run): one serializable report,
//! printed as JSON with `--json` or as a short human summary.

use std::fmt::Write as _;

use serde::Serialize;

use crate::execute::Outcome;
use crate::plan::{Plan, Reason};
use crate::progress::human_bytes;
use crate::scan::Skipped;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Action {
    Upload,
    Unchanged,
    Delete,
}

#[derive(Debug, Clone, Serialize)]
pub struct ObjectReport {
    pub key: String,
    /// Path in the build directory, when published under another name.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub logical: Option<String>,
    pub action: Action,
    /// When it happens: 1 upload (content-addressed key, or the stored body
    /// of a stable-name file), 2 switch (live copy from the stored body),
    /// 5 prune. Unchanged objects have none.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub phase: Option<u8>,
    /// A stable-name file whose body must be stored in phase 1 first.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub store_body: bool,
    /// The original URL of a renamed asset: a copy of this object.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub copy_of: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<Reason>,
    /// Uncompressed size of the file (for deletes: the stored size).
    pub size: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub content_type: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cache_control: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub content_encoding: Option<String>,
    /// References (and integrity values) rewritten in this file.
    #[serde(skip_serializing_if = "is_zero")]
    pub references_rewritten: usize,
}

fn is_zero(n: &usize) -> bool {
    *n == 0
}

#[derive(Debug, Clone, Default, Serialize)]
pub struct Timings {
    pub scan_ms: u64,
    /// Reference graph + fingerprinting.
    pub fingerprint_ms: u64,
    pub remote_ms: u64,
    /// Phase 1: content-addressed objects and stored bodies.
    pub upload_ms: u64,
    /// Phase 2: live copies of stable-name files.
    pub switch_ms: u64,
    /// First to last live copy.
    pub switch_window_ms: u64,
    /// Phase 3: asset manifest, release record, `current`.
    pub record_ms: u64,
    /// Phase 4: CDN invalidation (and --wait).
    pub invalidate_ms: u64,
    /// Garbage collection after the publish (reads every release record and lists the prefix).
    pub gc_ms: u64,
    pub delete_ms: u64,
    pub total_ms: u64,
}

/// What each phase of the plan does (see DESIGN.md, "Plan and execution order").
#[derive(Debug, Clone, Default, Serialize)]
pub struct Phases {
    /// Phase 1: content-addressed objects PUT to their keys.
    pub upload: usize,
    /// Phase 1: bodies of stable-name files stored under `.cdnsync/objects/`.
    pub store_bodies: usize,
    /// Phase 2: stable-name files copied live from their bodies.
    pub switch: usize,
    /// Phase 3: release manifest and `current` written.
    pub record: bool,
    /// Phase 4: keys whose paths are invalidated (changed or deleted stable names).
    pub invalidate_keys: usize,
    /// Phase 5: keys deleted.
    pub prune: usize,
}

#[derive(Debug, Clone, Serialize)]
pub struct Report {
    pub release: String,
    pub previous_release: Option<String>,
    pub target: String,
    /// Where the site is served: the CDN's URL when a distribution is
    /// configured, else the target's URL (`s3://…`, `file://…`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub url: Option<String>,
    pub dry_run: bool,
    /// Nothing changed: no release recorded, `release` is the live one.
    pub noop: bool,
    pub uploaded: usize,
    pub unchanged: usize,
    pub deleted: usize,
    /// Bytes sent (after compression): what phase 1 PUTs (content-addressed
    /// objects and stored bodies); server-side copies send none. A dry run
    /// reports what the publish would send, measured the same way.
    pub bytes_uploaded: u64,
    /// Bodies of stable-name files stored under `.cdnsync/objects/`.
    pub bodies_stored: usize,
    pub phases: Phases,
    /// Old content-addressed objects removed by garbage collection.
    pub gc_deleted: usize,
    pub invalidations: Vec<crate::cdn::Invalidation>,
    /// Failed invalidations: the release is live, the CDN may serve old pages.
    pub cdn_failures: Vec<String>,
    pub objects: Vec<ObjectReport>,
    pub skipped: Vec<Skipped>,
    pub delete_blocked: Option<String>,
    pub warnings: Vec<crate::warning::Warning>,
    /// Assets renamed, files and references rewritten, cycles.
    pub fingerprint: Option<crate::fingerprint::Stats>,
    /// For every file pages load that could be renamed: renamed (reached
    /// from which page, through which reference) or pinned (and why).
    #[serde(skip_serializing_if = "std::collections::BTreeMap::is_empty")]
    pub decisions: std::collections::BTreeMap<String, crate::fingerprint::Decision>,
    pub missing_references: Vec<crate::graph::Missing>,
    /// Edge routing (`None`: off): what changed, the functions' sizes and
    /// code, what each CDN did.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub routing: Option<crate::routing::function::Summary>,
    /// Routing off: the distributions cdnsync's functions were taken off.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub routing_removed: Vec<String>,
    pub timings: Timings,
}

impl Report {
    /// The report of a plan, before (or instead of) executing it.
    pub fn from_plan(plan: &Plan, target: &str) -> Report {
        let mut objects = Vec::new();
        for u in &plan.uploads {
            let o = &u.object;
            objects.push(ObjectReport {
                key: o.key.clone(),
                logical: (o.logical != o.rel).then(|| o.logical.clone()),
                action: Action::Upload,
                phase: Some(if u.switch.is_some() { 2 } else { 1 }),
                store_body: u.body_to_store(),
                copy_of: u.object.copy_of.clone(),
                reason: Some(u.reason),
                size: o.size,
                content_type: Some(o.headers.content_type.clone()),
                cache_control: Some(o.headers.cache_control.clone()),
                content_encoding: None,
                references_rewritten: o.splices.len(),
            });
        }
        for k in &plan.unchanged {
            let o = &k.object;
            objects.push(ObjectReport {
                key: o.key.clone(),
                logical: (o.logical != o.rel).then(|| o.logical.clone()),
                action: Action::Unchanged,
                phase: None,
                store_body: false,
                copy_of: o.copy_of.clone(),
                reason: None,
                size: o.size,
                content_type: Some(o.headers.content_type.clone()),
                cache_control: Some(o.headers.cache_control.clone()),
                content_encoding: k.content_encoding.clone(),
                references_rewritten: o.splices.len(),
            });
        }
        for d in &plan.deletes {
            objects.push(ObjectReport {
                key: d.key.clone(),
                logical: None,
                action: Action::Delete,
                phase: Some(5),
                store_body: false,
                copy_of: None,
                reason: None,
                size: d.size,
                content_type: None,
                cache_control: None,
                content_encoding: None,
                references_rewritten: 0,
            });
        }
        objects.sort_by(|a, b| a.key.cmp(&b.key));
        Report {
            release: plan.release.clone(),
            previous_release: plan.previous_release.clone(),
            target: target.to_string(),
            url: None,
            dry_run: true,
            noop: plan.noop,
            uploaded: plan.uploads.len(),
            unchanged: plan.unchanged.len(),
            deleted: plan.deletes.len(),
            bytes_uploaded: plan.upload_bytes(),
            phases: Phases {
                upload: plan.uploads.iter().filter(|u| u.switch.is_none()).count(),
                store_bodies: plan.bodies_to_store(),
                switch: plan.uploads.iter().filter(|u| u.switch.is_some()).count(),
                record: !plan.noop,
                invalidate_keys: plan
                    .uploads
                    .iter()
                    .filter(|u| u.switch.is_some() && u.reason != Reason::New)
                    .count()
                    + plan.deletes.len(),
                prune: plan.deletes.len(),
            },
            gc_deleted: 0,
            invalidations: Vec::new(),
            cdn_failures: Vec::new(),
            routing: routing_summary(plan),
            routing_removed: Vec::new(),
            bodies_stored: plan.bodies_to_store(),
            objects,
            skipped: plan.skipped.clone(),
            delete_blocked: plan.delete_blocked.clone(),
            warnings: plan.warnings.clone(),
            fingerprint: None,
            decisions: Default::default(),
            missing_references: Vec::new(),
            timings: Timings::default(),
        }
    }

    /// Bytes a dry run would send, and their encodings, as measured by
    /// [`crate::transfer::measure`]: the same definition a publish reports.
    pub fn apply_wire(&mut self, wire: &crate::transfer::Wire) {
        self.bytes_uploaded = wire.bytes;
        for o in self
            .objects
            .iter_mut()
            .filter(|o| o.action == Action::Upload)
        {
            if let Some((_, enc)) = wire.by_key.get(&o.key) {
                o.content_encoding = enc.clone();
            }
        }
    }

    /// The report of an executed plan.
    pub fn from_outcome(plan: &Plan, out: &Outcome, target: &str) -> Report {
        let mut r = Report::from_plan(plan, target);
        r.dry_run = false;
        r.uploaded = out.uploaded.len();
        r.deleted = out.deleted;
        r.bytes_uploaded = out.bytes_sent;
        r.bodies_stored = out.bodies_stored;
        r.invalidations = out.invalidations.clone();
        r.cdn_failures = out.cdn_failures.clone();
        if let Some(rt) = &mut r.routing {
            rt.edge = out.routing.clone();
        } else {
            r.routing_removed = out
                .routing
                .iter()
                .filter(|a| a.changed)
                .map(|a| a.distribution.clone())
                .collect();
        }
        r.timings.invalidate_ms = out.invalidate_ms;
        for o in r.objects.iter_mut().filter(|o| o.action == Action::Upload) {
            if let Some(u) = out.uploaded.values().find(|u| u.key == o.key) {
                o.content_encoding = u.content_encoding.clone();
            }
        }
        r.warnings.extend(out.warnings.iter().cloned());
        r.timings.upload_ms = out.upload_ms;
        r.timings.switch_ms = out.switch_ms;
        r.timings.switch_window_ms = out.switch_window_ms;
        r.timings.record_ms = out.record_ms;
        r.timings.delete_ms = out.delete_ms;
        r
    }

    /// Human summary: the changes (at most `max_lines`), then totals.
    pub fn human(&self, max_lines: usize) -> String {
        let (head, body, tail) = self.human_parts(max_lines);
        format!("{head}{body}{tail}")
    }

    /// The human summary with the per-object lines in a collapsible
    /// GitHub Actions log group.
    pub fn human_grouped(&self, max_lines: usize) -> String {
        let (head, body, tail) = self.human_parts(max_lines);
        if body.is_empty() {
            return format!("{head}{tail}");
        }
        format!(
            "{head}::group::Details ({} changes)\n{body}::endgroup::\n{tail}",
            self.uploaded + self.deleted
        )
    }

    fn human_parts(&self, max_lines: usize) -> (String, String, String) {
        let verb = match (self.dry_run, self.noop) {
            (true, _) => "Plan for",
            (false, true) => "Up to date:",
            (false, false) => "Published to",
        };
        let mut head = format!("{verb} {} — release {}", self.target, self.release);
        match &self.previous_release {
            Some(p) if *p != self.release => {
                let _ = write!(head, " (previous {p})");
            }
            _ => {}
        }
        head.push('\n');
        let mut body = self.human_changes(max_lines);
        self.human_kept(&mut body, max_lines);
        (head, body, self.human_totals())
    }

    /// One line per change (at most `max_lines`), then skipped files.
    fn human_changes(&self, max_lines: usize) -> String {
        let mut s = String::new();
        let changes: Vec<&ObjectReport> = self
            .objects
            .iter()
            .filter(|o| o.action != Action::Unchanged)
            .collect();
        for o in changes.iter().take(max_lines) {
            match o.action {
                Action::Upload => s.push_str(&upload_line(o)),
                Action::Delete => {
                    let _ = writeln!(s, "  delete  {}", o.key);
                }
                Action::Unchanged => {}
            }
        }
        if changes.len() > max_lines {
            let _ = writeln!(
                s,
                "  … and {} more (use --json for all)",
                changes.len() - max_lines
            );
        }
        for k in self.skipped.iter().take(max_lines) {
            let why = match &k.skip {
                crate::rules::Skip::Denied { pattern } => {
                    format!("deny-list `{pattern}`; a rule with include = true publishes it")
                }
                crate::rules::Skip::Excluded { glob } => format!("excluded by rule `{glob}`"),
                crate::rules::Skip::Routing => "routing rules, never uploaded".to_string(),
            };
            let _ = writeln!(s, "  skip    {}  ({why})", k.rel);
        }
        s
    }

    /// Files that keep their names (and why), the fingerprinting summary
    /// and, for a plan, its phases.
    fn human_kept(&self, s: &mut String, max_lines: usize) {
        let pinned: Vec<(&String, &crate::fingerprint::PinReason)> = self
            .decisions
            .iter()
            .filter_map(|(p, d)| match d {
                crate::fingerprint::Decision::Pinned { reason } => Some((p, reason)),
                _ => None,
            })
            .collect();
        // A short list by default; all of them with -v.
        let keep_lines = if max_lines == usize::MAX {
            max_lines
        } else {
            max_lines.min(10)
        };
        for (p, why) in pinned.iter().take(keep_lines) {
            let _ = writeln!(s, "  keep    {p}  (not renamed: {why})");
        }
        if pinned.len() > keep_lines {
            let _ = writeln!(
                s,
                "  … and {} more files keep their names (-v or --json lists all)",
                pinned.len() - keep_lines
            );
        }
        if let Some(f) = &self.fingerprint {
            let missing = match self.missing_references.len() {
                0 => String::new(),
                n => format!(", {n} missing references"),
            };
            let _ = writeln!(
                s,
                "fingerprinted: {} assets renamed, {} kept their names, {} files rewritten ({} references), {} reference cycles{missing}",
                f.assets_renamed, f.pinned, f.files_rewritten, f.references_rewritten, f.cycles,
            );
        }
        if self.dry_run && !self.noop {
            let p = &self.phases;
            let _ = writeln!(
                s,
                "phases: 1) upload {} + store {} bodies  2) switch {}  3) record  4) invalidate {} changed keys  5) prune {}",
                p.upload, p.store_bodies, p.switch, p.invalidate_keys, p.prune
            );
        }
    }

    /// The totals line and the invalidations sent.
    fn human_totals(&self) -> String {
        let mut s = self.routing.as_ref().map(routing_line).unwrap_or_default();
        if !self.routing_removed.is_empty() {
            let _ = writeln!(
                s,
                "routing off: cdnsync's functions taken off {}",
                self.routing_removed.join(", ")
            );
        }
        let (up, del) = if self.dry_run {
            ("to upload", "to delete")
        } else {
            ("uploaded", "deleted")
        };
        let _ = write!(
            s,
            "{} {up} ({}), {} unchanged, {} {del}",
            self.uploaded,
            human_bytes(self.bytes_uploaded),
            self.unchanged,
            self.deleted
        );
        if !self.skipped.is_empty() {
            let _ = write!(s, ", {} skipped", self.skipped.len());
        }
        if !self.dry_run {
            let _ = write!(s, " in {:.2} s", self.timings.total_ms as f64 / 1000.0);
        }
        s.push('\n');
        for i in &self.invalidations {
            let _ = writeln!(
                s,
                "invalidated on {}: {} ({}) {}",
                i.distribution,
                i.id,
                i.status,
                i.paths.join(" ")
            );
        }
        s
    }

    /// Markdown for a pull-request comment (`plan --format markdown`) or
    /// the GitHub job summary: totals, a table of at most `max_rows`
    /// changes (entry pages first), invalidations and warnings.
    pub fn markdown(&self, max_rows: usize) -> String {
        let mut s = self.md_summary();
        self.md_changes(&mut s, max_rows);
        self.md_warnings(&mut s, max_rows);
        s
    }

    /// The title and the table of totals, invalidations and CDN failures.
    fn md_summary(&self) -> String {
        let mut s = String::new();
        let title = match (self.dry_run, self.noop) {
            (true, true) => "cdnsync plan: no changes",
            (true, false) => "cdnsync plan",
            (false, true) => "cdnsync publish: up to date",
            (false, false) => "cdnsync publish",
        };
        let _ = writeln!(s, "### {title}\n");
        let _ = writeln!(s, "| | |\n|---|---|");
        let _ = writeln!(s, "| Target | {} |", code(&self.target));
        if let Some(u) = &self.url {
            let _ = writeln!(s, "| URL | {} |", md_escape(u));
        }
        let _ = writeln!(s, "| Release | {} |", code(&self.release));
        if let Some(p) = self
            .previous_release
            .as_ref()
            .filter(|p| **p != self.release)
        {
            let _ = writeln!(s, "| Previous | {} |", code(p));
        }
        let (up, del) = if self.dry_run {
            ("To upload", "To delete")
        } else {
            ("Uploaded", "Deleted")
        };
        let _ = writeln!(
            s,
            "| {up} | **{}** ({}) |",
            self.uploaded,
            human_bytes(self.bytes_uploaded)
        );
        let _ = writeln!(s, "| Unchanged | {} |", self.unchanged);
        let _ = writeln!(s, "| {del} | **{}** |", self.deleted);
        if !self.skipped.is_empty() {
            let _ = writeln!(s, "| Skipped | {} |", self.skipped.len());
        }
        if let Some(f) = &self.fingerprint {
            let _ = writeln!(
                s,
                "| Fingerprinted | {} assets renamed, {} references rewritten |",
                f.assets_renamed, f.references_rewritten
            );
        }
        if !self.dry_run {
            let _ = writeln!(
                s,
                "| Time | {:.2} s |",
                self.timings.total_ms as f64 / 1000.0
            );
        }
        for i in &self.invalidations {
            let _ = writeln!(
                s,
                "| Invalidation | {} on {} ({}), {} |",
                code(&i.id),
                code(&i.distribution),
                md_escape(&i.status),
                i.paths
                    .iter()
                    .map(|p| code(p))
                    .collect::<Vec<_>>()
                    .join(" ")
            );
        }
        if let Some(r) = &self.routing {
            let _ = writeln!(s, "| Routing | {} |", md_escape(routing_line(r).trim_end()));
        }
        for f in &self.cdn_failures {
            let _ = writeln!(s, "| CDN failure | {} |", md_escape(f));
        }
        s
    }

    /// The table of changes: pages and other stable names first (what
    /// viewers see change), at most `max_rows`.
    fn md_changes(&self, s: &mut String, max_rows: usize) {
        let mut changes: Vec<&ObjectReport> = self
            .objects
            .iter()
            .filter(|o| o.action != Action::Unchanged)
            .collect();
        // Pages and other stable names first: they are what viewers see change.
        changes.sort_by_key(|o| {
            (
                o.phase != Some(2),
                o.action == Action::Delete,
                o.key.as_str(),
            )
        });
        if !changes.is_empty() {
            let _ = writeln!(s, "\n| Change | Path | Size | Why |\n|---|---|---:|---|");
            for o in changes.iter().take(max_rows) {
                let (what, why) = match o.action {
                    Action::Delete => ("delete", String::new()),
                    _ => (
                        if o.copy_of.is_some() {
                            "copy"
                        } else if o.phase == Some(2) {
                            "switch"
                        } else {
                            "upload"
                        },
                        reason_word(o.reason).to_string(),
                    ),
                };
                let from = o
                    .copy_of
                    .as_deref()
                    .or(o.logical.as_deref())
                    .map(|l| format!(" ← {}", code(l)))
                    .unwrap_or_default();
                let size = if o.action == Action::Delete {
                    String::new()
                } else {
                    human_bytes(o.size)
                };
                let _ = writeln!(s, "| {what} | {}{from} | {size} | {why} |", code(&o.key));
            }
            if changes.len() > max_rows {
                let _ = writeln!(
                    s,
                    "\n_… and {} more changes (`--json` lists all)._",
                    changes.len() - max_rows
                );
            }
        }
    }

    /// Deletes held back, and the warnings (folded).
    fn md_warnings(&self, s: &mut String, max_rows: usize) {
        if let Some(b) = &self.delete_blocked {
            let _ = writeln!(s, "\n> **Deletes held back:** {}", md_escape(b));
        }
        if !self.warnings.is_empty() {
            let _ = writeln!(
                s,
                "\n<details><summary>{} warning(s)</summary>\n",
                self.warnings.len()
            );
            for w in self.warnings.iter().take(max_rows) {
                let _ = writeln!(s, "- {}", md_escape(&w.to_string()));
            }
            if self.warnings.len() > max_rows {
                let _ = writeln!(s, "- … and {} more", self.warnings.len() - max_rows);
            }
            let _ = writeln!(s, "\n</details>");
        }
    }
}

/// Escape text for a Markdown table cell.
fn md_escape(s: &str) -> String {
    let mut o = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '|' | '*' | '_' | '`' | '[' | ']' | '<' | '>' | '#' | '\\' => {
                o.push('\\');
                o.push(c);
            }
            '\n' | '\r' => o.push(' '),
            _ => o.push(c),
        }
    }
    o
}

/// A path as inline code, safe in a table cell whatever it contains.
fn code(s: &str) -> String {
    let esc: String = s
        .chars()
        .map(|c| match c {
            '&' => "&amp;".to_string(),
            '<' => "&lt;".to_string(),
            '>' => "&gt;".to_string(),
            '|' => "&#124;".to_string(),
            '`' => "&#96;".to_string(),
            '\n' | '\r' => " ".to_string(),
            c => c.to_string(),
        })
        .collect();
    format!("<code>{esc}</code>")
}

/// Why an object is sent, in a word or three.
fn reason_word(r: Option<Reason>) -> &'static str {
    match r {
        Some(Reason::New) => "new",
        Some(Reason::Content) => "changed",
        Some(Reason::Headers) => "headers",
        Some(Reason::Unknown) => "no cdnsync metadata",
        None => "",
    }
}

/// One uploaded (switched, copied) object, for a person.
fn upload_line(o: &ObjectReport) -> String {
    let reason = reason_word(o.reason);
    let from = o
        .logical
        .as_deref()
        .map(|l| format!(" ← {l}"))
        .unwrap_or_default();
    let refs = match o.references_rewritten {
        0 => String::new(),
        1 => ", 1 reference rewritten".into(),
        n => format!(", {n} references rewritten"),
    };
    let (verb, from) = match (&o.copy_of, o.phase) {
        (Some(c), _) => ("copy  ", format!(" ← {c}")),
        (None, Some(2)) => ("switch", from),
        _ => ("upload", from),
    };
    format!(
        "  {verb}  {}{from}  {}  {}{refs}  [{}; {}{}]\n",
        o.key,
        human_bytes(o.size),
        reason,
        o.content_type.as_deref().unwrap_or(""),
        o.cache_control.as_deref().unwrap_or(""),
        o.content_encoding
            .as_deref()
            .map(|e| format!("; {e}"))
            .unwrap_or_default(),
    )
}

/// One line on the routing: what changed, its rules, the function's size
/// against CloudFront's limit, what each CDN did.
fn routing_line(r: &crate::routing::function::Summary) -> String {
    let mut s = format!(
        "routing {}: trailing slash {}",
        if r.changed { "changed" } else { "unchanged" },
        r.trailing_slash
    );
    if r.clean_urls {
        s.push_str(", clean URLs");
    }
    if let Some(spa) = &r.spa {
        let _ = write!(s, ", SPA → {spa}");
    }
    if let Some(p) = &r.not_found {
        let _ = write!(s, ", 404 → {p}");
    }
    let _ = write!(
        s,
        ", {} redirects, {} header rules; function {} of {} bytes",
        r.redirects,
        r.header_rules,
        r.request_bytes,
        crate::routing::FUNCTION_MAX
    );
    if let Some(n) = r.kvs_keys {
        let _ = write!(s, " ({n} exact redirects in a KeyValueStore)");
    }
    for e in &r.edge {
        let _ = write!(
            s,
            "; {} {}",
            e.distribution,
            if e.changed {
                "updated"
            } else {
                "already current"
            }
        );
    }
    s.push('\n');
    s
}

/// The report's view of a release's routing.
fn routing_summary(plan: &Plan) -> Option<crate::routing::function::Summary> {
    let (rec, code) = (plan.routing.as_ref()?, plan.routing_code.as_ref()?);
    Some(code.summary(&rec.settings, plan.routing_changed))
}

#[cfg(test)]
mod markdown_tests {
    use super::*;

    #[test]
    fn cells_cannot_break_the_table() {
        assert_eq!(code("a|b`c<d>"), "<code>a&#124;b&#96;c&lt;d&gt;</code>");
        assert_eq!(md_escape("x|y*z"), "x\\|y\\*z");
    }
}
