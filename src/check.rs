//! The self-check between planning and execution: the release about to go
//! live must behave like the build directory. Every original URL resolves
//! (directly or through its original-name copy), every copy has its
//! source, and every reference cdnsync rewrote points at an object of the
//! release. A violation is a bug in cdnsync: nothing is written.

use std::collections::{HashMap, HashSet};

use rayon::prelude::*;

use crate::error::{Error, Result};
use crate::fingerprint::Fingerprinted;
use crate::graph::{self, GraphOptions, Missing};
use crate::plan::Plan;
use crate::scan::Inventory;

/// What the check needs besides the plan.
pub struct CheckInput<'a> {
    pub inv: &'a Inventory,
    pub fp: Option<&'a Fingerprinted>,
    /// References the build directory already had dangling (warnings).
    pub missing: &'a [Missing],
    pub original_copies: bool,
    pub graph: &'a GraphOptions,
}

fn violation(what: String) -> Error {
    Error::Internal(format!(
        "self-check failed, nothing was written: {what} (a bug in cdnsync; please report it)"
    ))
}

/// Check `plan` against the build directory; `Err(Error::Internal)` naming
/// the first offending path.
pub fn check(plan: &Plan, input: &CheckInput<'_>) -> Result<()> {
    let release: HashSet<&str> = plan.published().map(|d| d.rel.as_str()).collect();
    let renamed = |rel: &str| {
        input
            .fp
            .and_then(|fp| fp.outputs.get(rel))
            .is_some_and(|o| o.renamed)
    };
    for f in &input.inv.files {
        if !release.contains(f.rel.as_str()) && (input.original_copies || !renamed(&f.rel)) {
            return Err(violation(format!(
                "the original URL of `{}` would not resolve in the new release",
                f.rel
            )));
        }
    }
    for d in plan.published() {
        if let Some(src) = &d.copy_of
            && !release.contains(src.as_str())
        {
            return Err(violation(format!(
                "`{}` would be a copy of `{src}`, which the release does not contain",
                d.rel
            )));
        }
    }
    // Rewritten files about to be uploaded: their references, read back
    // from the final bytes, resolve as well as the originals did.
    let mut dangling: HashMap<&str, HashSet<&str>> = HashMap::new();
    for m in input.missing {
        dangling
            .entry(m.file.as_str())
            .or_default()
            .insert(m.url.as_str());
    }
    graph::on_parser_threads(|| {
        plan.uploads
        .par_iter()
        .filter(|u| !u.object.splices.is_empty() && u.object.copy_of.is_none())
        .try_for_each(|u| {
            let o = &u.object;
            let Some(lang) = graph::lang_of(&o.logical) else {
                return Ok(());
            };
            let orig = std::fs::read(&o.path).map_err(|e| Error::io(&o.path, e))?;
            if blake3::hash(&orig).to_hex().as_str() != o.source_hash {
                return Err(Error::FileChanged {
                    path: o.path.clone(),
                });
            }
            let fin = crate::fingerprint::apply(&orig, &o.splices);
            let ex = graph::extract(lang, &fin);
            let mut missing = Vec::new();
            graph::resolve_refs(&o.rel, &fin, ex.refs, &release, input.graph, &mut missing);
            let known = dangling.get(o.logical.as_str());
            match missing
                .iter()
                .find(|m| !known.is_some_and(|k| k.contains(m.url.as_str())))
            {
                Some(m) => Err(violation(format!(
                    "`{}` (published as `{}`) line {} would reference `{}`, which is not in the release",
                    o.logical, o.rel, m.line, m.url
                ))),
                None => Ok(()),
            }
        })
    })?
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plan::{self, PlanOptions};
    use crate::remote::RemoteState;
    use crate::rules::{Defaults, Rules};
    use crate::store::Sse;

    /// A site, its fingerprinting and the plan of a first publish.
    fn planned() -> (crate::fingerprint::tests::Run, Inventory, Plan) {
        let run = crate::fingerprint::tests::run_files(&[
            (
                "index.html",
                "<link rel=stylesheet href=s.css><img src=i.png>",
            ),
            ("s.css", "body{background:url(i.png)}"),
            ("i.png", "PNG"),
        ]);
        let rules = Rules::new(&[], Defaults::default()).unwrap();
        let inv = crate::scan::scan(run.dir.path(), &rules).unwrap();
        let desired = plan::desired(&inv, &rules, Some(&run.fp), "", &Sse::Aes256, true).unwrap();
        let opts = PlanOptions {
            prefix: String::new(),
            sse: Sse::Aes256,
            max_delete: 10,
            allow_empty: false,
            routing: None,
        };
        let p = plan::plan("r1", desired, &inv, &RemoteState::default(), &opts).unwrap();
        (run, inv, p)
    }

    fn run_check(run: &crate::fingerprint::tests::Run, inv: &Inventory, p: &Plan) -> Result<()> {
        check(
            p,
            &CheckInput {
                inv,
                fp: Some(&run.fp),
                missing: &[],
                original_copies: true,
                graph: &GraphOptions::default(),
            },
        )
    }

    #[test]
    fn a_sound_plan_passes() {
        let (run, inv, p) = planned();
        run_check(&run, &inv, &p).unwrap();
    }

    #[test]
    fn a_missing_original_url_is_an_internal_error_naming_it() {
        let (run, inv, mut p) = planned();
        p.uploads
            .retain(|u| !(u.object.rel == "i.png" && u.object.copy_of.is_some()));
        let e = run_check(&run, &inv, &p).unwrap_err();
        assert_eq!(e.exit_code(), crate::ExitCode::Internal);
        assert!(e.to_string().contains("`i.png`"), "{e}");
    }

    #[test]
    fn a_copy_without_its_source_is_refused() {
        let (run, inv, mut p) = planned();
        p.uploads
            .retain(|u| !(u.object.logical == "s.css" && u.object.copy_of.is_none()));
        let e = run_check(&run, &inv, &p).unwrap_err();
        assert!(e.to_string().contains("would be a copy of"), "{e}");
    }

    #[test]
    fn a_rewritten_reference_to_nothing_is_refused() {
        let (run, inv, mut p) = planned();
        let u = p
            .uploads
            .iter_mut()
            .find(|u| u.object.logical == "index.html")
            .unwrap();
        let mut splices = (*u.object.splices).clone();
        splices[0].text = ".0000deadbeef".into();
        u.object.splices = std::sync::Arc::new(splices);
        let e = run_check(&run, &inv, &p).unwrap_err();
        assert!(
            e.to_string().contains("index.html") && e.to_string().contains("not in the release"),
            "{e}"
        );
    }
}
