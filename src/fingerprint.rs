//! Content-addressed names: every asset (a non-entry file that a rewritable
//! file references, not already bundler-hashed) becomes `name.<hash>.ext`,
//! where the hash covers the asset's bytes *after* its own references were
//! rewritten (the cascade). Reference cycles are strongly connected
//! components hashed as a unit. The result is, per file, its published path,
//! final hash and the byte splices that turn the file on disk into it.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::sync::Arc;

use base64::Engine;
use serde::Serialize;
use sha2::Digest;

use crate::error::{Error, Result};
use crate::graph::{Graph, Lang, RefKind, resolve};
use crate::rules::FileClass;
use crate::scan::Inventory;
use crate::warning::Warning;

/// One edit of a file's bytes: replace `start..end` with `text`
/// (an insertion when `start == end`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Splice {
    pub start: usize,
    pub end: usize,
    pub text: String,
}

/// Apply sorted, non-overlapping splices.
pub fn apply(bytes: &[u8], splices: &[Splice]) -> Vec<u8> {
    let extra: usize = splices.iter().map(|s| s.text.len()).sum();
    let mut out = Vec::with_capacity(bytes.len() + extra);
    let mut at = 0;
    for s in splices {
        out.extend_from_slice(&bytes[at..s.start]);
        out.extend_from_slice(s.text.as_bytes());
        at = s.end;
    }
    out.extend_from_slice(&bytes[at..]);
    out
}

/// What fingerprinting decided for one file.
#[derive(Debug, Clone, Serialize)]
pub struct Output {
    /// Path in the build directory.
    pub logical: String,
    /// Path it is published under (renamed for assets).
    pub published: String,
    /// blake3 of the final bytes.
    pub hash: String,
    /// Size of the final bytes.
    pub size: u64,
    /// Renamed to a content-addressed name.
    pub renamed: bool,
    /// Edits from the bytes on disk to the final bytes (empty: unchanged).
    #[serde(skip)]
    pub splices: Arc<Vec<Splice>>,
    /// Number of references rewritten in this file.
    pub rewritten_refs: usize,
    /// `sha384-…` of the final bytes, for JS and CSS.
    pub integrity: Option<String>,
}

#[derive(Debug, Clone, Default, Serialize)]
pub struct Stats {
    pub assets_renamed: usize,
    /// Files pages load that keep their names (see `decisions`).
    pub pinned: usize,
    pub files_rewritten: usize,
    pub references_rewritten: usize,
    pub cycles: usize,
    pub files_in_cycles: usize,
    pub parse_errors: usize,
}

#[derive(Debug, Default)]
pub struct Fingerprinted {
    /// By logical path.
    pub outputs: BTreeMap<String, Output>,
    pub stats: Stats,
    pub warnings: Vec<crate::warning::Warning>,
    /// Why each file pages load was renamed or kept its name.
    pub decisions: BTreeMap<String, Decision>,
}

#[derive(Debug, Clone)]
pub struct FingerprintOptions {
    /// Hex characters of the hash in names (default 12).
    pub hash_length: usize,
}

impl Default for FingerprintOptions {
    fn default() -> Self {
        FingerprintOptions { hash_length: 12 }
    }
}

/// One entry of `cdnsync-manifest.json`.
#[derive(Debug, Clone, Serialize)]
pub struct AssetEntry {
    /// Key in the bucket.
    pub key: String,
    /// URL path under the base path.
    pub url: String,
    pub size: u64,
    /// blake3 of the published bytes.
    pub hash: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub integrity: Option<String>,
}

/// `cdnsync-manifest.json`: logical path → where and what it is published
/// as, for server-rendered apps that build asset URLs themselves.
#[derive(Debug, Clone, Serialize)]
pub struct AssetManifest {
    pub version: u32,
    pub release: String,
    pub files: BTreeMap<String, AssetEntry>,
}

impl Fingerprinted {
    /// SRI (`sha384-…`) of every script and stylesheet's final bytes, for
    /// the asset manifest. Separate from fingerprinting: a no-op publish
    /// writes no manifest and skips it.
    pub fn compute_integrity(&mut self, inv: &Inventory) -> Result<()> {
        use rayon::prelude::*;
        let by_rel: HashMap<&str, &crate::scan::LocalFile> =
            inv.files.iter().map(|f| (f.rel.as_str(), f)).collect();
        self.outputs
            .par_iter_mut()
            .filter(|(rel, o)| {
                o.integrity.is_none()
                    && matches!(crate::graph::lang_of(rel), Some(Lang::Js | Lang::Css))
            })
            .try_for_each(|(rel, o)| -> Result<()> {
                let Some(f) = by_rel.get(rel.as_str()) else {
                    return Ok(());
                };
                let orig = std::fs::read(&f.path).map_err(|e| Error::io(&f.path, e))?;
                if blake3::hash(&orig).to_hex().as_str() != f.hash {
                    return Err(Error::FileChanged {
                        path: f.path.clone(),
                    });
                }
                let fin = if o.splices.is_empty() {
                    orig
                } else {
                    apply(&orig, &o.splices)
                };
                o.integrity = Some(integrity_for("sha384-", &fin));
                Ok(())
            })
    }

    /// The asset manifest (call [`Fingerprinted::compute_integrity`] first
    /// for SRI values).
    pub fn asset_manifest(&self, release: &str, prefix: &str, base_path: &str) -> AssetManifest {
        AssetManifest {
            version: 1,
            release: release.to_string(),
            files: self
                .outputs
                .values()
                .map(|o| {
                    (
                        o.logical.clone(),
                        AssetEntry {
                            key: crate::store::join_key(prefix, &o.published),
                            url: format!("{base_path}{}", o.published),
                            size: o.size,
                            hash: o.hash.clone(),
                            integrity: o.integrity.clone(),
                        },
                    )
                })
                .collect(),
        }
    }
}

/// The whole stage for a scanned site: reference graph, asset selection
/// (classes from `rules`), names and splices. Returns the graph too, for
/// its missing references.
pub fn fingerprint_site(
    inv: &Inventory,
    rules: &crate::rules::Rules,
    gopts: &crate::graph::GraphOptions,
    opts: &FingerprintOptions,
) -> Result<(Fingerprinted, Graph)> {
    let g = crate::graph::build(inv, gopts)?;
    let bundled = crate::rules::detect_bundled(inv.files.iter().map(|f| f.rel.as_str()));
    let sel = select_assets(inv, &g, rules, &bundled)?;
    let rewritable = |rel: &str| rewritable(&g, rules, &bundled, rel);
    let mut fp = fingerprint(inv, &g, &sel.assets, &rewritable, opts)?;
    fp.stats.pinned = sel
        .decisions
        .values()
        .filter(|d| matches!(d, Decision::Pinned { .. }))
        .count();
    fp.decisions = sel.decisions;
    Ok((fp, g))
}

/// Whether cdnsync may rewrite a file's references: it parsed, and it is
/// not bundler output (whose bytes are never touched).
fn rewritable(
    graph: &Graph,
    rules: &crate::rules::Rules,
    bundled: &crate::rules::Bundled,
    rel: &str,
) -> bool {
    let bundler_output = (bundled.is_hashed(rel) || bundled.in_folder(rel))
        && rules.builtin_class(rel, false) != FileClass::Entry;
    graph.files.get(rel).is_some_and(|f| f.error.is_none())
        && !bundler_output
        && rules.rule_class(rel) != Some(FileClass::Hashed)
}

/// Why a file that pages load keeps its name.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "reason", rename_all = "snake_case")]
pub enum PinReason {
    /// Named by a string in a script or JSON file (JavaScript may build
    /// its URL at run time).
    String { file: String, line: usize },
    /// Referenced by a file whose bytes are not rewritten (bundler output).
    Unrewritten { file: String, line: usize },
    /// Its name appears in a file that could not be parsed.
    Unparsable { file: String },
    /// A rule gives it a class that is never renamed.
    Rule { class: FileClass },
}

impl std::fmt::Display for PinReason {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            PinReason::String { file, line } => write!(f, "named as a string in {file}:{line}"),
            PinReason::Unrewritten { file, line } => {
                write!(f, "referenced by bundler output {file}:{line}")
            }
            PinReason::Unparsable { file } => write!(f, "named in {file}, which cannot be parsed"),
            PinReason::Rule { class } => write!(
                f,
                "a rule gives it class `{}`",
                serde_json::to_value(class)
                    .ok()
                    .and_then(|v| v.as_str().map(str::to_string))
                    .unwrap_or_default()
            ),
        }
    }
}

/// Why a file that pages load was renamed, or kept its name.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "decision", rename_all = "snake_case")]
pub enum Decision {
    /// Renamed: the page `page` reaches it through static references; the
    /// last one is in `via` at `line`.
    Renamed {
        page: String,
        via: String,
        line: usize,
    },
    /// Keeps its name.
    Pinned {
        #[serde(flatten)]
        reason: PinReason,
    },
}

/// What [`select_assets`] decided.
#[derive(Debug, Default)]
pub struct Selection {
    /// Files to rename.
    pub assets: BTreeSet<String>,
    /// For every file pages reach that could have been renamed: renamed,
    /// and from where, or pinned, and why.
    pub decisions: BTreeMap<String, Decision>,
}

/// Which files are renamed. Only what is safe: a file an HTML page reaches
/// through static references (directly, or through stylesheets, module
/// imports, manifests and SVG that cdnsync rewrites), that is not already
/// bundler output, not an entry, not given a never-renamed class by a rule,
/// and whose name no script, JSON file, bundler output or unparsable file
/// may use as it is.
pub fn select_assets(
    inv: &Inventory,
    graph: &Graph,
    rules: &crate::rules::Rules,
    bundled: &crate::rules::Bundled,
) -> Result<Selection> {
    let can_rewrite = |rel: &str| rewritable(graph, rules, bundled, rel);
    let (reached, wanted) = reach_from_pages(graph, &can_rewrite);
    let mut pinned = pinned_names(graph, &can_rewrite);
    pin_names_in_unparsable(inv, graph, &wanted, &mut pinned)?;
    let mut sel = Selection::default();
    for t in wanted {
        // Pages and other entries, and bundler output, keep their names
        // by what they are: no decision to report.
        if rules.builtin_class(t, false) == FileClass::Entry && rules.rule_class(t).is_none()
            || bundled.is_hashed(t)
            || bundled.in_folder(t)
        {
            continue;
        }
        let pin = match rules.rule_class(t) {
            Some(c @ (FileClass::Entry | FileClass::Plain | FileClass::Hashed)) => {
                Some(PinReason::Rule { class: c })
            }
            // A rule saying `asset` renames it whatever strings name it
            // (its original URL still answers: see the original-name copies).
            Some(FileClass::Asset) => None,
            None => pinned.remove(t),
        };
        let decision = match pin {
            Some(reason) => Decision::Pinned { reason },
            None => {
                let (page, via, line) = reached[t];
                sel.assets.insert(t.to_string());
                Decision::Renamed {
                    page: page.to_string(),
                    via: via.to_string(),
                    line,
                }
            }
        };
        sel.decisions.insert(t.to_string(), decision);
    }
    Ok(sel)
}

/// First reacher of each file: (page, referring file, line).
type Reached<'a> = HashMap<&'a str, (&'a str, &'a str, usize)>;

/// Reach from every page, breadth first, through files cdnsync rewrites:
/// the first page (and referrer) that reaches a file is the one reported;
/// `wanted` is every asset target reached.
fn reach_from_pages<'a>(
    graph: &'a Graph,
    can_rewrite: &dyn Fn(&str) -> bool,
) -> (Reached<'a>, BTreeSet<&'a str>) {
    let mut reached: Reached = HashMap::new();
    let mut queue: std::collections::VecDeque<&str> = std::collections::VecDeque::new();
    for (rel, f) in &graph.files {
        if f.lang == Some(crate::graph::Lang::Html) {
            queue.push_back(rel.as_str());
            reached.insert(rel.as_str(), (rel.as_str(), rel.as_str(), 0));
        }
    }
    let mut wanted: BTreeSet<&str> = BTreeSet::new();
    while let Some(rel) = queue.pop_front() {
        if !can_rewrite(rel) {
            continue;
        }
        let page = reached[rel].0;
        for r in graph.files[rel]
            .refs
            .iter()
            .filter(|r| r.kind == RefKind::Asset)
        {
            wanted.insert(r.target.as_str());
            if !reached.contains_key(r.target.as_str()) {
                reached.insert(r.target.as_str(), (page, rel, r.line));
                if graph.files.contains_key(&r.target) {
                    queue.push_back(r.target.as_str());
                }
            }
        }
    }
    (reached, wanted)
}

/// Names that must stay, with the first reason found: every target of a
/// file cdnsync does not rewrite, every name a string literal may use.
fn pinned_names<'a>(
    graph: &'a Graph,
    can_rewrite: &dyn Fn(&str) -> bool,
) -> HashMap<&'a str, PinReason> {
    let mut pinned: HashMap<&str, PinReason> = HashMap::new();
    for (rel, f) in &graph.files {
        if !can_rewrite(rel) {
            for r in &f.refs {
                pinned
                    .entry(r.target.as_str())
                    .or_insert_with(|| PinReason::Unrewritten {
                        file: rel.clone(),
                        line: r.line,
                    });
            }
        }
        for p in &f.pins {
            pinned
                .entry(p.target.as_str())
                .or_insert_with(|| PinReason::String {
                    file: rel.clone(),
                    line: p.line,
                });
        }
    }
    pinned
}

/// A file that failed to parse may name anything: every wanted file whose
/// name appears in its bytes keeps that name.
fn pin_names_in_unparsable<'a>(
    inv: &Inventory,
    graph: &'a Graph,
    wanted: &BTreeSet<&'a str>,
    pinned: &mut HashMap<&'a str, PinReason>,
) -> Result<()> {
    let broken: Vec<&String> = graph
        .files
        .iter()
        .filter(|(_, f)| f.error.is_some())
        .map(|(r, _)| r)
        .collect();
    if broken.is_empty() || wanted.is_empty() {
        return Ok(());
    }
    let cands: Vec<&str> = wanted.iter().copied().collect();
    let names: Vec<&str> = cands
        .iter()
        .map(|c| c.rsplit('/').next().unwrap_or(c))
        .collect();
    let ac = aho_corasick::AhoCorasick::new(&names)
        .map_err(|e| Error::Internal(format!("name matcher: {e}")))?;
    let by_path: HashMap<&str, &std::path::Path> = inv
        .files
        .iter()
        .map(|f| (f.rel.as_str(), f.path.as_path()))
        .collect();
    for b in broken {
        let path = by_path[b.as_str()];
        let bytes = std::fs::read(path).map_err(|e| Error::io(path, e))?;
        for m in ac.find_overlapping_iter(&bytes) {
            pinned
                .entry(cands[m.pattern().as_usize()])
                .or_insert_with(|| PinReason::Unparsable { file: b.clone() });
        }
    }
    Ok(())
}

/// Tarjan's strongly connected components; components come out with every
/// component's dependencies before it.
fn sccs(nodes: &[String], edges: &HashMap<&str, Vec<&str>>) -> Vec<Vec<String>> {
    struct T<'a> {
        index: HashMap<&'a str, usize>,
        low: HashMap<&'a str, usize>,
        on: HashSet<&'a str>,
        stack: Vec<&'a str>,
        next: usize,
        out: Vec<Vec<String>>,
    }
    let mut t = T {
        index: HashMap::new(),
        low: HashMap::new(),
        on: HashSet::new(),
        stack: Vec::new(),
        next: 0,
        out: Vec::new(),
    };
    // Iterative DFS (deep reference chains must not overflow the stack).
    for root in nodes {
        if t.index.contains_key(root.as_str()) {
            continue;
        }
        let mut work: Vec<(&str, usize)> = vec![(root.as_str(), 0)];
        while let Some(&mut (v, ref mut i)) = work.last_mut() {
            if *i == 0 && !t.index.contains_key(v) {
                t.index.insert(v, t.next);
                t.low.insert(v, t.next);
                t.next += 1;
                t.stack.push(v);
                t.on.insert(v);
            }
            let succ = edges.get(v).map(std::vec::Vec::as_slice).unwrap_or(&[]);
            if *i < succ.len() {
                let w = succ[*i];
                *i += 1;
                if !t.index.contains_key(w) {
                    work.push((w, 0));
                } else if t.on.contains(w) {
                    let lw = t.index[w];
                    let lv = t.low[v];
                    t.low.insert(v, lv.min(lw));
                }
                continue;
            }
            work.pop();
            if let Some(&(parent, _)) = work.last() {
                let lv = t.low[v];
                let lp = t.low[parent];
                t.low.insert(parent, lp.min(lv));
            }
            if t.low[v] == t.index[v] {
                let mut comp = Vec::new();
                loop {
                    let w = t.stack.pop().expect("on stack");
                    t.on.remove(w);
                    comp.push(w.to_string());
                    if w == v {
                        break;
                    }
                }
                comp.sort();
                t.out.push(comp);
            }
        }
    }
    t.out
}

/// The published path of `rel` renamed with `hash`.
pub fn renamed_path(rel: &str, hash: &str) -> String {
    match rel.rsplit_once('/') {
        Some((dir, name)) => format!("{dir}/{}", resolve::hashed_name(name, hash)),
        None => resolve::hashed_name(rel, hash),
    }
}

/// Recompute an `integrity` value with the same algorithms for `bytes`.
pub fn integrity_for(existing: &str, bytes: &[u8]) -> String {
    let mut algs: Vec<&str> = existing
        .split_ascii_whitespace()
        .filter_map(|t| t.split_once('-').map(|(a, _)| a))
        .filter(|a| matches!(*a, "sha256" | "sha384" | "sha512"))
        .collect();
    algs.dedup();
    if algs.is_empty() {
        algs.push("sha384");
    }
    algs.iter()
        .map(|a| {
            let d = match *a {
                "sha256" => sha2::Sha256::digest(bytes).to_vec(),
                "sha512" => sha2::Sha512::digest(bytes).to_vec(),
                _ => sha2::Sha384::digest(bytes).to_vec(),
            };
            format!(
                "{a}-{}",
                base64::engine::general_purpose::STANDARD.encode(d)
            )
        })
        .collect::<Vec<_>>()
        .join(" ")
}

/// Fingerprint the site. `assets` comes from [`select_assets`].
pub fn fingerprint(
    inv: &Inventory,
    graph: &Graph,
    assets: &BTreeSet<String>,
    rewritable: &dyn Fn(&str) -> bool,
    opts: &FingerprintOptions,
) -> Result<Fingerprinted> {
    let (nodes, edges) = dependencies(graph, assets, rewritable);
    let mut n = Namer {
        by_rel: inv.files.iter().map(|f| (f.rel.as_str(), f)).collect(),
        graph,
        assets,
        rewritable,
        len: opts.hash_length.clamp(8, 64),
        name_hash: HashMap::new(),
        final_hash: HashMap::new(),
        final_bytes: HashMap::new(),
        integrity_targets: graph
            .files
            .values()
            .flat_map(|f| {
                f.refs
                    .iter()
                    .filter(|r| r.integrity.is_some())
                    .map(|r| r.target.as_str())
            })
            .collect(),
        out: Fingerprinted::default(),
    };
    for comp in sccs(&nodes, &edges) {
        let cyclic = comp.len() > 1
            || edges
                .get(comp[0].as_str())
                .is_some_and(|d| d.contains(&comp[0].as_str()));
        if cyclic {
            n.name_cycle(&comp, &edges);
        }
        for m in &comp {
            n.process(m, &comp, cyclic)?;
        }
    }
    let mut out = n.out;
    out.stats.parse_errors = graph.files.values().filter(|f| f.error.is_some()).count();
    for (rel, f) in &graph.files {
        if let Some(e) = &f.error {
            out.warnings.push(Warning::Unparsable {
                file: rel.clone(),
                reason: e.clone(),
            });
        }
    }
    // Files untouched by fingerprinting publish as they are.
    for f in &inv.files {
        out.outputs.entry(f.rel.clone()).or_insert_with(|| Output {
            logical: f.rel.clone(),
            published: f.rel.clone(),
            hash: f.hash.clone(),
            size: f.size,
            renamed: false,
            splices: Arc::new(Vec::new()),
            rewritten_refs: 0,
            integrity: None,
        });
    }
    Ok(out)
}

/// Edges: a rewritable file depends on the assets it names, and on any
/// rewritable target whose bytes an integrity attribute covers. Nodes: every
/// file in an edge, and every asset.
fn dependencies<'a>(
    graph: &'a Graph,
    assets: &BTreeSet<String>,
    rewritable: &dyn Fn(&str) -> bool,
) -> (Vec<String>, HashMap<&'a str, Vec<&'a str>>) {
    let mut edges: HashMap<&str, Vec<&str>> = HashMap::new();
    let mut nodes: BTreeSet<String> = BTreeSet::new();
    for (rel, f) in &graph.files {
        if !rewritable(rel) {
            continue;
        }
        let mut deps: Vec<&str> = f
            .refs
            .iter()
            .filter(|r| {
                assets.contains(&r.target) || (r.integrity.is_some() && rewritable(&r.target))
            })
            .map(|r| r.target.as_str())
            .collect();
        deps.sort();
        deps.dedup();
        if !deps.is_empty() {
            nodes.insert(rel.clone());
            nodes.extend(deps.iter().map(std::string::ToString::to_string));
            edges.insert(rel.as_str(), deps);
        }
    }
    nodes.extend(assets.iter().cloned());
    (nodes.into_iter().collect(), edges)
}

/// The naming pass, component by component (dependencies first).
struct Namer<'a> {
    by_rel: HashMap<&'a str, &'a crate::scan::LocalFile>,
    graph: &'a Graph,
    assets: &'a BTreeSet<String>,
    rewritable: &'a dyn Fn(&str) -> bool,
    /// Hex characters of the hash in a name.
    len: usize,
    /// The hash in each renamed asset's name.
    name_hash: HashMap<String, String>,
    /// Final content hashes of processed files.
    final_hash: HashMap<String, String>,
    /// Final bytes of rewritten files that an integrity attribute covers.
    final_bytes: HashMap<String, Arc<Vec<u8>>>,
    integrity_targets: HashSet<&'a str>,
    out: Fingerprinted,
}

impl Namer<'_> {
    /// A file's bytes, checked against its scan.
    fn read(&self, rel: &str) -> Result<Vec<u8>> {
        let f = self.by_rel[rel];
        let b = std::fs::read(&f.path).map_err(|e| Error::io(&f.path, e))?;
        if blake3::hash(&b).to_hex().as_str() != f.hash {
            return Err(Error::FileChanged {
                path: f.path.clone(),
            });
        }
        Ok(b)
    }

    /// A reference cycle gets one hash for all its assets: the members'
    /// original bytes and the final hashes of what they depend on outside.
    fn name_cycle(&mut self, comp: &[String], edges: &HashMap<&str, Vec<&str>>) {
        self.out.stats.cycles += 1;
        self.out.stats.files_in_cycles += comp.len();
        let mut h = blake3::Hasher::new();
        let members: HashSet<&str> = comp.iter().map(String::as_str).collect();
        let mut outside: BTreeSet<(&str, &str)> = BTreeSet::new();
        for m in comp {
            h.update(m.as_bytes());
            h.update(&[0]);
            h.update(self.by_rel[m.as_str()].hash.as_bytes());
            for d in edges.get(m.as_str()).into_iter().flatten() {
                if !members.contains(d) {
                    outside.insert((d, self.final_hash[*d].as_str()));
                }
            }
        }
        for (d, fh) in outside {
            h.update(d.as_bytes());
            h.update(&[0]);
            h.update(fh.as_bytes());
        }
        let unit = h.finalize().to_hex()[..self.len].to_string();
        for m in comp {
            if self.assets.contains(m) {
                self.name_hash.insert(m.clone(), unit.clone());
            }
        }
    }

    /// Rewrite one member's references, hash it, name it, record it.
    fn process(&mut self, m: &String, comp: &[String], cyclic: bool) -> Result<()> {
        let (assets, rewritable) = (self.assets, self.rewritable);
        let f = self.graph.files.get(m).filter(|_| rewritable(m));
        let needs = f.is_some_and(|f| {
            f.refs.iter().any(|r| {
                self.name_hash.contains_key(&r.target)
                    || (r.integrity.is_some()
                        && (assets.contains(&r.target) || rewritable(&r.target)))
            })
        });
        let orig = if needs { Some(self.read(m)?) } else { None };
        let mut splices = match (f, &orig) {
            (Some(f), Some(orig)) => self.splices(m, f, comp, orig)?,
            _ => Vec::new(),
        };
        splices.sort_by_key(|s| (s.start, s.end));
        splices.dedup();
        let lf = self.by_rel[m.as_str()];
        let (hash, size) = match (&orig, splices.is_empty()) {
            (Some(orig), false) => {
                let fin = apply(orig, &splices);
                let h = blake3::hash(&fin).to_hex().to_string();
                let n = fin.len() as u64;
                if self.integrity_targets.contains(m.as_str()) {
                    self.final_bytes.insert(m.clone(), Arc::new(fin));
                }
                (h, n)
            }
            _ => (lf.hash.clone(), lf.size),
        };
        let renamed = assets.contains(m);
        if renamed && !cyclic {
            self.name_hash
                .insert(m.clone(), hash[..self.len].to_string());
        }
        self.final_hash.insert(m.clone(), hash.clone());
        let n_refs = splices.len();
        if n_refs > 0 {
            self.out.stats.files_rewritten += 1;
            self.out.stats.references_rewritten += n_refs;
        }
        if renamed {
            self.out.stats.assets_renamed += 1;
        }
        let published = if renamed {
            renamed_path(m, &self.name_hash[m])
        } else {
            m.clone()
        };
        self.out.outputs.insert(
            m.clone(),
            Output {
                logical: m.clone(),
                published,
                hash,
                size,
                renamed,
                splices: Arc::new(splices),
                rewritten_refs: n_refs,
                integrity: None,
            },
        );
        Ok(())
    }

    /// The edits of `m`'s bytes: `.hash` inserted into each renamed
    /// target's name as written, integrity values recomputed.
    fn splices(
        &mut self,
        m: &str,
        f: &crate::graph::FileRefs,
        comp: &[String],
        orig: &[u8],
    ) -> Result<Vec<Splice>> {
        let (assets, rewritable) = (self.assets, self.rewritable);
        let mut splices = Vec::new();
        for r in &f.refs {
            if let Some(nh) = self.name_hash.get(&r.target) {
                // Insert `.hash` before the extension of the name as written.
                let (s, e) = r.name_span;
                let at = match orig[s..e].iter().rposition(|&c| c == b'.') {
                    Some(i) if i > 0 => s + i,
                    _ => e,
                };
                splices.push(Splice {
                    start: at,
                    end: at,
                    text: format!(".{nh}"),
                });
            }
            let Some(span) = r.integrity else { continue };
            if !(assets.contains(&r.target) || rewritable(&r.target)) {
                continue;
            }
            let target_bytes = match self.final_bytes.get(&r.target) {
                Some(b) => b.clone(),
                None if self.final_hash.contains_key(&r.target) || !comp.contains(&r.target) => {
                    Arc::new(self.read(&r.target)?)
                }
                None => {
                    self.out.warnings.push(Warning::IntegrityInCycle {
                        file: m.to_string(),
                        line: r.line,
                        target: r.target.clone(),
                    });
                    continue;
                }
            };
            let existing = String::from_utf8_lossy(&orig[span.0..span.1]).into_owned();
            let new = integrity_for(&existing, &target_bytes);
            if new != existing {
                splices.push(Splice {
                    start: span.0,
                    end: span.1,
                    text: new,
                });
            }
        }
        Ok(splices)
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::graph::GraphOptions;
    use crate::rules::{Defaults, Rules};
    use crate::scan;

    /// Fingerprinting of a site written to a temp dir.
    pub(crate) struct Run {
        pub fp: Fingerprinted,
        pub graph: Graph,
        pub dir: tempfile::TempDir,
    }

    impl Run {
        fn published(&self, rel: &str) -> &str {
            &self.fp.outputs[rel].published
        }
        fn bytes(&self, rel: &str) -> String {
            let o = &self.fp.outputs[rel];
            let orig = std::fs::read(self.dir.path().join(rel)).unwrap();
            String::from_utf8(apply(&orig, &o.splices)).unwrap()
        }
    }

    pub(crate) fn run_files<B: AsRef<[u8]>>(files: &[(&str, B)]) -> Run {
        let d = tempfile::tempdir().unwrap();
        for (p, b) in files {
            let p = d.path().join(p);
            std::fs::create_dir_all(p.parent().unwrap()).unwrap();
            std::fs::write(p, b.as_ref()).unwrap();
        }
        let rules = Rules::new(&[], Defaults::default()).unwrap();
        let inv = scan::scan(d.path(), &rules).unwrap();
        let (fp, graph) = fingerprint_site(
            &inv,
            &rules,
            &GraphOptions::default(),
            &FingerprintOptions::default(),
        )
        .unwrap();
        Run { fp, graph, dir: d }
    }

    fn site(img: &str) -> Vec<(&'static str, String)> {
        vec![
            ("index.html", r#"<link rel=stylesheet href="css/site.css"><img src="/img/a.png"><a href="docs/report.pdf">r</a><a href="about/">a</a>"#.into()),
            ("about/index.html", "<p>about</p>".into()),
            ("css/site.css", "body{background:url(../img/a.png)}".into()),
            ("img/a.png", img.to_string()),
            ("docs/report.pdf", "%PDF".into()),
        ]
    }

    fn refs<'a>(v: &'a [(&'static str, String)]) -> Vec<(&'static str, &'a str)> {
        v.iter().map(|(a, b)| (*a, b.as_str())).collect()
    }

    #[test]
    fn assets_renamed_entries_and_links_kept_and_cascade() {
        let s1 = site("PNG-1");
        let r1 = run_files(&refs(&s1));
        let png = r1.published("img/a.png").to_string();
        let css = r1.published("css/site.css").to_string();
        assert!(
            png.starts_with("img/a.")
                && png.ends_with(".png")
                && png.len() == "img/a..png".len() + 12,
            "{png}"
        );
        assert_eq!(&png[6..18], &blake3::hash(b"PNG-1").to_hex()[..12]);
        assert!(css.starts_with("css/site.") && css.ends_with(".css"));
        assert_eq!(r1.published("index.html"), "index.html");
        assert_eq!(
            r1.published("docs/report.pdf"),
            "docs/report.pdf",
            "link targets keep their names"
        );
        let html = r1.bytes("index.html");
        assert!(html.contains(&format!("href=\"{}\"", &css[..])), "{html}");
        assert!(html.contains(&format!("src=\"/{png}\"")), "{html}");
        assert!(html.contains("href=\"docs/report.pdf\"") && html.contains("href=\"about/\""));
        assert!(r1.bytes("css/site.css").contains(&format!("url(../{png})")));
        assert_eq!(r1.fp.stats.assets_renamed, 2);
        assert_eq!(r1.fp.stats.files_rewritten, 2);

        // Same input, same names.
        let r1b = run_files(&refs(&s1));
        assert_eq!(r1b.published("css/site.css"), css);

        // Changing the image renames it, and the CSS that names it.
        let r2 = run_files(&refs(&site("PNG-2")));
        assert_ne!(r2.published("img/a.png"), png);
        assert_ne!(r2.published("css/site.css"), css, "the cascade");
        assert_eq!(r2.fp.outputs["img/a.png"].splices.len(), 0);
    }

    #[test]
    fn cycles_are_hashed_as_a_unit() {
        let files = [
            (
                "index.html",
                r#"<script type=module src="js/a.js"></script><link rel=stylesheet href="css/x.css">"#,
            ),
            ("js/a.js", "import {b} from './b.js'; export const a = 1;"),
            (
                "js/b.js",
                "import {a} from './a.js'; import './c.js'; export const b = 2;",
            ),
            ("js/c.js", "export const c = 3;"),
            ("css/x.css", "@import 'y.css'; .x{}"),
            ("css/y.css", "@import 'x.css'; .y{}"),
        ];
        let r = run_files(&files);
        let a = r.published("js/a.js");
        let b = r.published("js/b.js");
        assert_eq!(&a[5..17], &b[5..17], "one hash for the component: {a} {b}");
        assert!(
            r.bytes("js/a.js").contains(&format!("'./{}'", &b[3..])),
            "{}",
            r.bytes("js/a.js")
        );
        assert!(r.bytes("js/b.js").contains(&format!("'./{}'", &a[3..])));
        assert!(
            r.bytes("js/b.js")
                .contains(&format!("'./{}'", &r.published("js/c.js")[3..]))
        );
        assert_eq!(r.fp.stats.cycles, 2);
        assert_eq!(r.fp.stats.files_in_cycles, 4);
        // A change outside the cycle (c.js) renames the cycle's members too.
        let mut changed = files;
        changed[3].1 = "export const c = 4;";
        let r2 = run_files(&changed);
        assert_ne!(r2.published("js/a.js"), a);
        assert_eq!(r2.published("css/x.css"), r.published("css/x.css"));
    }

    #[test]
    fn bundler_output_and_broken_files_pin_their_targets() {
        let files = [
            (
                "index.html",
                r#"<script type=module src="assets/index-B4x9Tz2k.js"></script><img src="img/logo.png"><script src="js/broken.js"></script><img src="img/free.png">"#,
            ),
            (
                "assets/index-B4x9Tz2k.js",
                "import './vendor-C1a2b3c4.js'; new URL('../img/logo.png', import.meta.url);",
            ),
            ("assets/vendor-C1a2b3c4.js", "export default 1;"),
            ("assets/other-D9z8y7x6.js", "export default 2;"),
            ("js/broken.js", "function ( { var x = 'img/free2.png';"),
            ("img/logo.png", "L"),
            ("img/free.png", "F"),
        ];
        let mut files = files.to_vec();
        files.push(("page.html", r#"<img src="img/free2.png">"#));
        files.push(("img/free2.png", "F2"));
        let r = run_files(&files);
        assert_eq!(
            r.published("assets/index-B4x9Tz2k.js"),
            "assets/index-B4x9Tz2k.js"
        );
        assert_eq!(
            r.fp.outputs["assets/index-B4x9Tz2k.js"].splices.len(),
            0,
            "bundler bytes untouched"
        );
        assert_eq!(
            r.published("img/logo.png"),
            "img/logo.png",
            "pinned by bundler output"
        );
        assert_eq!(
            r.published("img/free2.png"),
            "img/free2.png",
            "named in an unparsable file"
        );
        assert_ne!(r.published("img/free.png"), "img/free.png");
        assert_eq!(r.fp.stats.parse_errors, 1);
        assert!(r.fp.warnings[0].to_string().contains("js/broken.js"));
    }

    #[test]
    fn integrity_is_recomputed() {
        let files = [
            (
                "index.html",
                r#"<link rel=stylesheet href="s.css" integrity="sha256-AAAA" crossorigin>"#,
            ),
            ("s.css", "a{background:url(i.png)}"),
            ("i.png", "I"),
        ];
        let mut r = run_files(&files);
        let inv = scan::scan(r.dir.path(), &Rules::new(&[], Defaults::default()).unwrap()).unwrap();
        r.fp.compute_integrity(&inv).unwrap();
        let css_final = r.bytes("s.css");
        let html = r.bytes("index.html");
        let want = integrity_for("sha256-x", css_final.as_bytes());
        assert!(html.contains(&format!("integrity=\"{want}\"")), "{html}");
        assert!(
            r.fp.outputs["s.css"]
                .integrity
                .as_deref()
                .unwrap()
                .starts_with("sha384-")
        );
    }

    #[test]
    fn splices_and_sccs() {
        let b = b"0123456789";
        let s = vec![
            Splice {
                start: 2,
                end: 2,
                text: "ab".into(),
            },
            Splice {
                start: 5,
                end: 7,
                text: "X".into(),
            },
        ];
        assert_eq!(apply(b, &s), b"01ab234X789");
        assert_eq!(apply(b, &[]), b);
        let nodes: Vec<String> = ["a", "b", "c", "d"]
            .iter()
            .map(std::string::ToString::to_string)
            .collect();
        let mut e: HashMap<&str, Vec<&str>> = HashMap::new();
        e.insert("a", vec!["b"]);
        e.insert("b", vec!["c", "a"]);
        e.insert("c", vec!["d"]);
        let order = sccs(&nodes, &e);
        assert_eq!(
            order,
            vec![
                vec!["d".to_string()],
                vec!["c".into()],
                vec!["a".into(), "b".into()]
            ]
        );
    }
}

#[cfg(test)]
mod proptests {
    use std::collections::BTreeMap;

    use proptest::prelude::*;

    use super::*;
    use crate::graph::{self, GraphOptions, lang_of, resolve_refs};

    /// A random small site: pages, stylesheets, modules and images, with
    /// random references between them (cycles included).
    fn site() -> impl Strategy<Value = BTreeMap<String, String>> {
        let n = 3usize..6;
        (n.clone(), n.clone(), n, prop::collection::vec((0usize..4, 0usize..6, 0usize..6), 0..40)).prop_map(
            |(pages, css, js, edges)| {
                let mut files: BTreeMap<String, String> = BTreeMap::new();
                for i in 0..pages {
                    files.insert(format!("p{i}.html"), format!("<h1>page {i}</h1>\n"));
                }
                for i in 0..css {
                    files.insert(format!("c/s{i}.css"), format!(".s{i} {{ color: red }}\n"));
                }
                for i in 0..js {
                    files.insert(format!("j/m{i}.js"), format!("export const m{i} = {i};\n"));
                }
                for i in 0..3 {
                    files.insert(format!("i/img{i}.png"), format!("PNG{i}"));
                }
                for (kind, a, b) in edges {
                    let (from, text) = match kind {
                        0 => (format!("p{}.html", a % pages), format!("<link rel=stylesheet href=\"/c/s{}.css\"><script type=module src=\"j/m{}.js\"></script>\n", b % css, a % js)),
                        1 => (format!("c/s{}.css", a % css), format!("@import \"s{}.css\";\n.x{{background:url(../i/img{}.png)}}\n", b % css, a % 3)),
                        2 => (format!("j/m{}.js", a % js), format!("import \"./m{}.js\";\nconst u = new URL(\"../i/img{}.png\", import.meta.url);\n", b % js, a % 3)),
                        _ => (format!("p{}.html", a % pages), format!("<img src=\"i/img{}.png\"><a href=\"p{}.html\">x</a>\n", b % 3, b % pages)),
                    };
                    // @import must come first in CSS; prepend.
                    let body = files.get_mut(&from).unwrap();
                    *body = format!("{text}{body}");
                }
                files
            },
        )
    }

    fn publish(files: &BTreeMap<String, String>) -> BTreeMap<String, Vec<u8>> {
        let files: Vec<(&str, &String)> = files.iter().map(|(p, b)| (p.as_str(), b)).collect();
        let super::tests::Run {
            fp,
            graph: g,
            dir: d,
        } = super::tests::run_files(&files);
        assert!(g.missing.is_empty());
        fp.outputs
            .values()
            .map(|o| {
                let orig = std::fs::read(d.path().join(&o.logical)).unwrap();
                let fin = apply(&orig, &o.splices);
                assert_eq!(blake3::hash(&fin).to_hex().as_str(), o.hash);
                (o.published.clone(), fin)
            })
            .collect()
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(48))]

        #[test]
        fn published_references_resolve_and_names_are_reproducible(files in site()) {
            let out = publish(&files);
            let keys: std::collections::HashSet<&str> = out.keys().map(String::as_str).collect();
            for (key, bytes) in &out {
                if let Some(lang) = lang_of(key) {
                    let ex = graph::extract(lang, bytes);
                    let mut missing = Vec::new();
                    resolve_refs(key, bytes, ex.refs, &keys, &GraphOptions::default(), &mut missing);
                    prop_assert!(missing.is_empty(), "{key}: {missing:?}");
                }
            }
            // Pages keep their names; everything referenced as a subresource is renamed.
            for p in files.keys().filter(|p| p.ends_with(".html")) {
                prop_assert!(out.contains_key(p));
            }
            let again = publish(&files);
            prop_assert_eq!(out.keys().collect::<Vec<_>>(), again.keys().collect::<Vec<_>>());
        }
    }
}
