//! Multipart upload from disk: parts read one at a time within the memory
//! budget (hashing as they are read), at most 4 parts of a file in flight,
//! aborted on any error, the bytes checked against the scan.

use std::sync::Arc;

use bytes::Bytes;
use futures::StreamExt;

use super::{MIN_PART_SIZE, Runner, Uploaded, headers_of};
use crate::error::{Error, Result};
use crate::plan::Desired;
use crate::progress::Phase;
use crate::store::CompletedPart;

/// Multipart upload from disk: parts read one at a time (hashing as they
/// are read), at most 4 parts of a file in flight, aborted on any error.
pub(super) async fn upload(rn: &Runner<'_>, o: &Desired, phase: &Phase) -> Result<Uploaded> {
    let store = rn.store;
    let popts = headers_of(o, None).put_options(&rn.opts.sse, false);
    let upload_id = store.create_multipart(&o.key, &popts).await?;
    let r = parts(rn, o, phase, &upload_id).await;
    match r {
        Ok(parts) => {
            let done = store.complete_multipart(&o.key, &upload_id, parts).await;
            if let Err(e) = done {
                let _ = store.abort_multipart(&o.key, &upload_id).await;
                return Err(e.into());
            }
            Ok(Uploaded {
                key: o.key.clone(),
                stored_size: o.size,
                content_encoding: None,
            })
        }
        Err(e) => {
            if let Err(ae) = store.abort_multipart(&o.key, &upload_id).await {
                tracing::warn!("could not abort multipart upload of {}: {ae}", o.key);
            }
            Err(e)
        }
    }
}

/// Read, hash and upload the parts; checked against the scan at the end.
async fn parts(
    rn: &Runner<'_>,
    o: &Desired,
    phase: &Phase,
    upload_id: &str,
) -> Result<Vec<CompletedPart>> {
    let (store, cancel, mem) = (rn.store, &rn.cancel, &rn.mem);
    let part_size = rn.opts.part_size.max(MIN_PART_SIZE);
    let path = o.path.clone();
    let file = std::fs::File::open(&path).map_err(|e| super::encode::read_error(&path, e))?;
    let file = Arc::new(file);
    let units = part_size.div_ceil(1024).min(rn.mem_units()) as u32;
    // blake3 of what was read, and how much: checked against the plan at the end.
    let read_so_far = std::sync::Mutex::new((blake3::Hasher::new(), 0u64));
    // Parts are read one after another (each once its memory is granted)
    // and uploaded up to 4 at a time. `buffer_unordered` drives the
    // uploads while the next read waits for memory, so a budget smaller
    // than 4 parts slows the upload down instead of deadlocking it.
    let reads = futures::stream::unfold((0u64, 0i32, false), |(offset, number, done)| {
        let (f, p, read_so_far) = (file.clone(), path.clone(), &read_so_far);
        async move {
            if done {
                return None;
            }
            if cancel.is_cancelled() {
                return Some((Err(Error::Interrupted), (offset, number, true)));
            }
            let permit = match mem.acquire_many(units).await {
                Ok(p) => p,
                Err(e) => {
                    let e = Error::Internal(format!("memory budget: {e}"));
                    return Some((Err(e), (offset, number, true)));
                }
            };
            let read = tokio::task::spawn_blocking(move || -> Result<Vec<u8>> {
                use std::os::unix::fs::FileExt;
                let mut buf = vec![0u8; part_size];
                let mut n = 0;
                while n < part_size {
                    let k = f
                        .read_at(&mut buf[n..], offset + n as u64)
                        .map_err(|e| Error::io(&p, e))?;
                    if k == 0 {
                        break;
                    }
                    n += k;
                }
                buf.truncate(n);
                Ok(buf)
            })
            .await
            .map_err(|e| Error::Internal(format!("task failed: {e}")))
            .and_then(|r| r);
            let buf = match read {
                Ok(b) => b,
                Err(e) => return Some((Err(e), (offset, number, true))),
            };
            if buf.is_empty() && number > 0 {
                return None;
            }
            let last = buf.len() < part_size;
            {
                let mut r = read_so_far.lock().expect("hasher lock");
                r.0.update(&buf);
                r.1 += buf.len() as u64;
            }
            let next = (offset + buf.len() as u64, number + 1, last);
            Some((Ok((permit, number + 1, Bytes::from(buf))), next))
        }
    });
    let mut uploads = std::pin::pin!(
        reads
            .map(|item: Result<_>| async move {
                let (permit, n, body): (_, i32, Bytes) = item?;
                let _permit = permit;
                let len = body.len() as u64;
                let part = store.upload_part(&o.key, upload_id, n, body).await?;
                phase.add_bytes(len);
                Ok::<_, Error>(part)
            })
            .buffer_unordered(4)
    );
    let mut parts: Vec<CompletedPart> = Vec::new();
    while let Some(p) = uploads.next().await {
        parts.push(p?);
    }
    let (hasher, offset) = {
        let r = read_so_far.lock().expect("hasher lock");
        (r.0.clone(), r.1)
    };
    if offset != o.size || hasher.finalize().to_hex().as_str() != o.source_hash {
        return Err(Error::FileChanged { path: path.clone() });
    }
    parts.sort_by_key(|p| p.number);
    Ok(parts)
}
