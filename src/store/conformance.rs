//! One behavioural suite run against every [`Store`] backend, so memory,
//! local directory and S3 servers are interchangeable for the executor.

use std::collections::BTreeMap;

use bytes::Bytes;

use super::{PutOptions, Sse, Store, StoreError};

fn opts(ct: &str) -> PutOptions {
    let mut metadata = BTreeMap::new();
    metadata.insert("cdnsync-hash".to_string(), "abc123".to_string());
    PutOptions {
        content_type: ct.into(),
        cache_control: "public, max-age=60".into(),
        content_encoding: None,
        content_disposition: None,
        metadata,
        sse: Sse::Aes256,
        if_none_match: false,
        if_match: None,
    }
}

/// Runs every check under `prefix`, which should be empty, in order (later
/// checks count what earlier ones wrote). Panics on the first failure with
/// a message naming the backend and the check.
pub async fn run(store: &dyn Store, prefix: &str) {
    let name = store.describe();
    let k = |s: &str| format!("{prefix}/{s}");
    store
        .check()
        .await
        .unwrap_or_else(|e| panic!("{name}: check: {e}"));
    absent_objects(store, &name, &k).await;
    put_with_every_header(store, &name, &k).await;
    overwrite(store, &name, &k).await;
    create_only(store, &name, &k).await;
    bounded_reads(store, &name, &k).await;
    conditional_overwrite(store, &name, &k).await;
    zero_byte_object(store, &name, &k).await;
    copy_replaces_headers(store, &name, &k).await;
    multipart(store, &name, &k).await;
    abort_leaves_nothing(store, &name, &k).await;
    listing(store, &name, &k).await;
    many_keys(store, &name, &k).await;
    paged_walk(store, &name, &k).await;
    delete_many(store, &name, &k).await;
}

/// Absent objects.
async fn absent_objects(store: &dyn Store, name: &str, k: &dyn Fn(&str) -> String) {
    assert_eq!(
        store.head(&k("missing")).await.unwrap(),
        None,
        "{name}: head absent"
    );
    assert_eq!(
        store.get(&k("missing"), u64::MAX).await.unwrap(),
        None,
        "{name}: get absent"
    );
    assert!(
        store.list(&k("")).await.unwrap().is_empty(),
        "{name}: empty list"
    );
}

/// Put with every header, read it back.
async fn put_with_every_header(store: &dyn Store, name: &str, k: &dyn Fn(&str) -> String) {
    let mut o = opts("text/html; charset=utf-8");
    o.content_encoding = Some("gzip".into());
    o.content_disposition = Some("attachment; filename=\"a b.html\"".into());
    store
        .put(&k("dir/a b+c%20é.html"), Bytes::from_static(b"hello"), &o)
        .await
        .unwrap_or_else(|e| panic!("{name}: put: {e}"));
    let m = store
        .head(&k("dir/a b+c%20é.html"))
        .await
        .unwrap()
        .expect("head after put");
    assert_eq!(m.size, 5, "{name}: size");
    assert_eq!(
        m.content_type.as_deref(),
        Some("text/html; charset=utf-8"),
        "{name}: content-type"
    );
    assert_eq!(
        m.cache_control.as_deref(),
        Some("public, max-age=60"),
        "{name}: cache-control"
    );
    assert_eq!(
        m.content_encoding.as_deref(),
        Some("gzip"),
        "{name}: content-encoding"
    );
    assert_eq!(
        m.content_disposition.as_deref(),
        Some("attachment; filename=\"a b.html\""),
        "{name}: content-disposition"
    );
    assert_eq!(
        m.metadata.get("cdnsync-hash").map(String::as_str),
        Some("abc123"),
        "{name}: metadata"
    );
    assert_eq!(m.sse.as_deref(), Some("AES256"), "{name}: sse");
    assert_eq!(
        store
            .get(&k("dir/a b+c%20é.html"), u64::MAX)
            .await
            .unwrap()
            .as_deref(),
        Some(&b"hello"[..]),
        "{name}: get"
    );
}

/// Overwrite.
async fn overwrite(store: &dyn Store, name: &str, k: &dyn Fn(&str) -> String) {
    store
        .put(
            &k("dir/a b+c%20é.html"),
            Bytes::from_static(b"hello again"),
            &opts("text/plain"),
        )
        .await
        .unwrap();
    assert_eq!(
        store
            .head(&k("dir/a b+c%20é.html"))
            .await
            .unwrap()
            .unwrap()
            .size,
        11,
        "{name}: overwrite"
    );
}

/// If-None-Match: * creates once, then fails with Precondition.
async fn create_only(store: &dyn Store, name: &str, k: &dyn Fn(&str) -> String) {
    let mut inm = opts("text/css");
    inm.if_none_match = true;
    store
        .put(&k("once.css"), Bytes::from_static(b"a{}"), &inm)
        .await
        .unwrap_or_else(|e| panic!("{name}: create-only put: {e}"));
    let e = store
        .put(&k("once.css"), Bytes::from_static(b"b{}"), &inm)
        .await
        .unwrap_err();
    assert!(
        matches!(e, StoreError::Precondition { .. }),
        "{name}: expected precondition, got {e}"
    );
    assert_eq!(
        store
            .get(&k("once.css"), u64::MAX)
            .await
            .unwrap()
            .as_deref(),
        Some(&b"a{}"[..]),
        "{name}: create-only kept"
    );
}

/// Reads are bounded: an object over the limit is refused, not read.
async fn bounded_reads(store: &dyn Store, name: &str, k: &dyn Fn(&str) -> String) {
    let e = store.get(&k("once.css"), 2).await.unwrap_err();
    assert!(
        matches!(
            e,
            StoreError::TooLarge {
                size: 3,
                max: 2,
                ..
            }
        ),
        "{name}: expected too large, got {e}"
    );
    assert!(store.get(&k("once.css"), 3).await.unwrap().is_some());
}

/// If-Match: overwrite only the version read, when the backend tags
/// versions (S3's ETag, the memory store); others return no tag.
async fn conditional_overwrite(store: &dyn Store, name: &str, k: &dyn Fn(&str) -> String) {
    store
        .put(
            &k("tagged.css"),
            Bytes::from_static(b"a{}"),
            &opts("text/css"),
        )
        .await
        .unwrap();
    let (_, tag) = store
        .get_tagged(&k("tagged.css"), u64::MAX)
        .await
        .unwrap()
        .unwrap_or_else(|| panic!("{name}: get_tagged of an existing key"));
    if let Some(tag) = tag {
        let mut im = opts("text/css");
        im.if_match = Some(tag.clone());
        store
            .put(&k("tagged.css"), Bytes::from_static(b"c{}"), &im)
            .await
            .unwrap_or_else(|e| panic!("{name}: put with the current tag: {e}"));
        // The tag read before that write no longer matches.
        let e = store
            .put(&k("tagged.css"), Bytes::from_static(b"d{}"), &im)
            .await
            .unwrap_err();
        assert!(
            matches!(e, StoreError::Precondition { .. }),
            "{name}: stale If-Match must fail, got {e}"
        );
        let e = store
            .put(&k("never-written.css"), Bytes::from_static(b"d{}"), &im)
            .await
            .unwrap_err();
        assert!(
            matches!(
                e,
                StoreError::Precondition { .. } | StoreError::NotFound { .. }
            ),
            "{name}: If-Match on a missing key must fail, got {e}"
        );
        assert_eq!(
            store
                .get(&k("tagged.css"), u64::MAX)
                .await
                .unwrap()
                .as_deref(),
            Some(&b"c{}"[..]),
            "{name}: conditional overwrite"
        );
    }
    assert!(
        store
            .get_tagged(&k("never-written.css"), u64::MAX)
            .await
            .unwrap()
            .is_none(),
        "{name}: get_tagged of a missing key"
    );
}

/// Zero-byte object.
async fn zero_byte_object(store: &dyn Store, name: &str, k: &dyn Fn(&str) -> String) {
    store
        .put(&k("empty.txt"), Bytes::new(), &opts("text/plain"))
        .await
        .unwrap();
    assert_eq!(
        store.head(&k("empty.txt")).await.unwrap().unwrap().size,
        0,
        "{name}: empty"
    );
}

/// Copy replaces headers, keeps bytes.
async fn copy_replaces_headers(store: &dyn Store, name: &str, k: &dyn Fn(&str) -> String) {
    let mut copt = opts("text/css; charset=utf-8");
    copt.cache_control = "public, max-age=0, must-revalidate".into();
    copt.metadata.insert("cdnsync-headers".into(), "d1".into());
    store
        .copy(&k("once.css"), &k("copy/live.css"), &copt)
        .await
        .unwrap_or_else(|e| panic!("{name}: copy: {e}"));
    let m = store
        .head(&k("copy/live.css"))
        .await
        .unwrap()
        .expect("copied");
    assert_eq!(
        m.cache_control.as_deref(),
        Some("public, max-age=0, must-revalidate"),
        "{name}: copy headers"
    );
    assert_eq!(
        m.metadata.get("cdnsync-headers").map(String::as_str),
        Some("d1"),
        "{name}: copy metadata"
    );
    assert_eq!(m.sse.as_deref(), Some("AES256"), "{name}: copy sse");
    assert_eq!(
        store
            .get(&k("copy/live.css"), u64::MAX)
            .await
            .unwrap()
            .as_deref(),
        Some(&b"a{}"[..]),
        "{name}: copy bytes"
    );
}

/// Multipart: a 5 MiB part and a short last part.
async fn multipart(store: &dyn Store, name: &str, k: &dyn Fn(&str) -> String) {
    let p1 = Bytes::from(vec![b'x'; 5 * 1024 * 1024]);
    let p2 = Bytes::from_static(b"tail");
    let id = store
        .create_multipart(&k("big.bin"), &opts("application/octet-stream"))
        .await
        .unwrap_or_else(|e| panic!("{name}: create multipart: {e}"));
    let a = store
        .upload_part(&k("big.bin"), &id, 1, p1.clone())
        .await
        .unwrap_or_else(|e| panic!("{name}: part 1: {e}"));
    let b = store
        .upload_part(&k("big.bin"), &id, 2, p2.clone())
        .await
        .unwrap_or_else(|e| panic!("{name}: part 2: {e}"));
    store
        .complete_multipart(&k("big.bin"), &id, vec![a, b])
        .await
        .unwrap_or_else(|e| panic!("{name}: complete: {e}"));
    let m = store
        .head(&k("big.bin"))
        .await
        .unwrap()
        .expect("multipart object");
    assert_eq!(m.size, 5 * 1024 * 1024 + 4, "{name}: multipart size");
    assert_eq!(
        m.metadata.get("cdnsync-hash").map(String::as_str),
        Some("abc123"),
        "{name}: multipart metadata"
    );
    assert_eq!(m.sse.as_deref(), Some("AES256"), "{name}: multipart sse");
    let body = store.get(&k("big.bin"), u64::MAX).await.unwrap().unwrap();
    assert_eq!(body.len(), p1.len() + 4);
    assert_eq!(&body[p1.len()..], b"tail", "{name}: multipart bytes");
}

/// Abort leaves nothing.
async fn abort_leaves_nothing(store: &dyn Store, name: &str, k: &dyn Fn(&str) -> String) {
    let id = store
        .create_multipart(&k("aborted.bin"), &opts("application/octet-stream"))
        .await
        .unwrap();
    store
        .upload_part(&k("aborted.bin"), &id, 1, Bytes::from_static(b"zz"))
        .await
        .unwrap();
    store.abort_multipart(&k("aborted.bin"), &id).await.unwrap();
    assert_eq!(
        store.head(&k("aborted.bin")).await.unwrap(),
        None,
        "{name}: aborted upload visible"
    );
}

/// Listing: sorted, sizes, prefix-bounded.
async fn listing(store: &dyn Store, name: &str, k: &dyn Fn(&str) -> String) {
    store
        .put(
            &format!("{}-sibling/x", k("").trim_end_matches('/')),
            Bytes::from_static(b"x"),
            &opts("text/plain"),
        )
        .await
        .unwrap();
    let listed = store.list(&k("")).await.unwrap();
    let keys: Vec<&str> = listed.iter().map(|e| e.key.as_str()).collect();
    let mut want = vec![
        k("big.bin"),
        k("copy/live.css"),
        k("dir/a b+c%20é.html"),
        k("empty.txt"),
        k("once.css"),
        k("tagged.css"),
    ];
    want.sort();
    assert_eq!(keys, want, "{name}: list");
    assert_eq!(
        listed.iter().find(|e| e.key == k("once.css")).unwrap().size,
        3,
        "{name}: list size"
    );
}

/// Many keys: listing crosses pages on backends with small pages.
async fn many_keys(store: &dyn Store, name: &str, k: &dyn Fn(&str) -> String) {
    for i in 0..7 {
        store
            .put(
                &k(&format!("many/{i:02}")),
                Bytes::from_static(b"m"),
                &opts("text/plain"),
            )
            .await
            .unwrap();
    }
    assert_eq!(
        store.list(&k("many/")).await.unwrap().len(),
        7,
        "{name}: paginated list"
    );
}

/// Paged walk with start-after.
async fn paged_walk(store: &dyn Store, name: &str, k: &dyn Fn(&str) -> String) {
    let mut seen = Vec::new();
    let mut after: Option<String> = None;
    loop {
        let page = store
            .list_page(&k("many/"), after.as_deref(), 3)
            .await
            .unwrap();
        if page.is_empty() {
            break;
        }
        assert!(page.len() <= 3, "{name}: page size");
        after = Some(page.last().unwrap().key.clone());
        seen.extend(page.into_iter().map(|e| e.key));
    }
    let want: Vec<String> = (0..7).map(|i| k(&format!("many/{i:02}"))).collect();
    assert_eq!(seen, want, "{name}: list_page walk");
}

/// Delete many, including an absent key.
async fn delete_many(store: &dyn Store, name: &str, k: &dyn Fn(&str) -> String) {
    let mut del: Vec<String> = (0..7).map(|i| k(&format!("many/{i:02}"))).collect();
    del.push(k("never-existed"));
    let failed = store.delete_many(&del).await.unwrap();
    assert!(failed.is_empty(), "{name}: delete failures {failed:?}");
    assert!(
        store.list(&k("many/")).await.unwrap().is_empty(),
        "{name}: deleted"
    );
    assert!(
        store
            .head(&format!("{}-sibling/x", k("").trim_end_matches('/')))
            .await
            .unwrap()
            .is_some(),
        "{name}: sibling kept"
    );
}
