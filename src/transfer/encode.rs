//! The bytes a PUT sends: a file read whole, checked against its scan,
//! rewritten and gzip-compressed as planned — and, for a dry run, how many
//! bytes that would be, measured the same way.

use std::collections::{BTreeMap, HashMap};
use std::path::Path;

use bytes::Bytes;

use crate::compress;
use crate::error::{Error, Result};
use crate::plan::{Desired, Plan, SwitchFrom};

/// Read a whole (small) file, check it is what was scanned, apply its
/// reference rewrites, and gzip it if its settings say so and that saves
/// enough: the bytes a PUT sends, and their encoding. Blocking.
pub fn encode_blocking(o: &Desired) -> Result<(Bytes, Option<&'static str>)> {
    let path = &o.path;
    let compress = o.headers.compress && o.size <= compress::MAX_COMPRESS_SIZE;
    let mut data = std::fs::read(path).map_err(|e| read_error(path, e))?;
    if blake3::hash(&data).to_hex().as_str() != o.source_hash {
        return Err(Error::FileChanged { path: path.clone() });
    }
    if !o.splices.is_empty() {
        data = crate::fingerprint::apply(&data, &o.splices);
        if blake3::hash(&data).to_hex().as_str() != o.hash {
            return Err(Error::Internal(format!(
                "rewritten {} does not match its planned hash",
                path.display()
            )));
        }
    }
    if compress && let Some(gz) = compress::gzip_if_worth_it(&data) {
        return Ok((Bytes::from(gz), Some("gzip")));
    }
    Ok((Bytes::from(data), None))
}

pub(super) async fn read_and_encode(o: &Desired) -> Result<(Bytes, Option<&'static str>)> {
    let o = o.clone();
    tokio::task::spawn_blocking(move || encode_blocking(&o))
        .await
        .map_err(|e| Error::Internal(format!("task failed: {e}")))?
}

/// What phase 1 of a plan sends, measured without sending it (for a dry
/// run): per report key (the live key, also for a page whose body is
/// stored), the bytes on the wire and their encoding, and the total.
#[derive(Debug, Clone, Default)]
pub struct Wire {
    pub by_key: BTreeMap<String, (u64, Option<String>)>,
    pub bytes: u64,
}

/// Measure [`Wire`] for `plan` (reads and compresses on all cores).
pub fn measure(plan: &Plan, multipart_threshold: u64) -> Result<Wire> {
    use rayon::prelude::*;
    let mut jobs: Vec<&Desired> = Vec::new();
    let mut bodies = std::collections::HashSet::new();
    for u in &plan.uploads {
        if u.switch.is_none() || (u.body_to_store() && bodies.insert(u.object.body_name())) {
            jobs.push(&u.object);
        }
    }
    jobs.extend(
        plan.bodies_missing
            .iter()
            .filter(|d| bodies.insert(d.body_name())),
    );
    let sized: Vec<(String, u64, Option<String>)> = jobs
        .par_iter()
        .map(|o| {
            if o.size >= multipart_threshold && o.splices.is_empty() {
                return Ok((o.key.clone(), o.size, None));
            }
            let (b, enc) = encode_blocking(o)?;
            Ok((o.key.clone(), b.len() as u64, enc.map(str::to_string)))
        })
        .collect::<Result<_>>()?;
    let mut w = Wire::default();
    let mut by_rel: HashMap<&str, Option<String>> = jobs
        .iter()
        .zip(&sized)
        .map(|(o, (_, _, enc))| (o.rel.as_str(), enc.clone()))
        .collect();
    by_rel.extend(
        plan.unchanged
            .iter()
            .map(|k| (k.object.rel.as_str(), k.content_encoding.clone())),
    );
    for (k, n, enc) in sized {
        w.bytes += n;
        w.by_key.insert(k, (n, enc));
    }
    // An original-URL copy carries its source's bytes, encoding included.
    for u in &plan.uploads {
        if let Some(SwitchFrom::Object { rel }) = &u.switch
            && let Some(enc) = by_rel.get(rel.as_str())
        {
            w.by_key.insert(u.object.key.clone(), (0, enc.clone()));
        }
    }
    Ok(w)
}

pub(super) fn read_error(path: &Path, e: std::io::Error) -> Error {
    if e.kind() == std::io::ErrorKind::NotFound {
        Error::FileChanged {
            path: path.to_path_buf(),
        }
    } else {
        Error::io(path, e)
    }
}
