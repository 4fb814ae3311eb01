//! Everything cdnsync reads back from a bucket or a target directory is
//! untrusted input: random bytes and mutated valid documents fed to the
//! readers of release records, `current`, the lock and local sidecars
//! never panic, and what they accept is valid.

use bytes::Bytes;
use proptest::prelude::*;

use crate::release::{self, Release};
use crate::store::memory::MemoryStore;
use crate::store::{PutOptions, Sse, Store};

fn config() -> ProptestConfig {
    ProptestConfig::with_cases(
        std::env::var("PROPTEST_CASES")
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(200),
    )
}

/// A valid record as JSON text, to mutate.
fn valid_record() -> String {
    r#"{"format":1,"id":"20261126T134403.000Z-1a2b3c4d","created":"2026-11-26T13:44:03Z","tool":"cdnsync 0.1.0","previous":null,"files":{"index.html":{"hash":"abababababababababababababababababababababababababababababababab","size":10,"stored_size":10,"headers":"0123456789abcdef","class":"entry","content_type":"text/html","cache_control":"public, max-age=0","body":"objects/abababababababababababababababababababababababababababababababab"},"img/a.1234567890ab.png":{"hash":"cdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcd","size":3,"stored_size":3,"headers":"0123456789abcdef","class":"asset","content_type":"image/png","cache_control":"immutable"},"img/a.png":{"hash":"cdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcd","size":3,"stored_size":3,"headers":"0123456789abcdef","class":"plain","content_type":"image/png","cache_control":"public, max-age=300","copy_of":"img/a.1234567890ab.png"}}}"#.to_string()
}

/// Mutations: replace a quoted value, cut the text, or insert bytes.
fn mutated() -> impl Strategy<Value = Vec<u8>> {
    let nasty = prop_oneof![
        Just("../../x".to_string()),
        Just(".cdnsync/current".to_string()),
        Just("/etc/passwd".to_string()),
        Just("\u{1b}[31m".to_string()),
        Just("é".repeat(40)),
        Just("99999999999999999999999".to_string()),
        Just(String::new()),
        "[ -~]{0,20}",
        ".{0,20}",
    ];
    (0usize..2000, nasty, 0u8..3).prop_map(|(at, v, how)| {
        let text = valid_record();
        let at = at % text.len();
        let at = (0..=at)
            .rev()
            .find(|i| text.is_char_boundary(*i))
            .unwrap_or(0);
        match how {
            0 => {
                // Replace the next quoted string after `at`.
                match text[at..].find('"').and_then(|s| {
                    let s = at + s + 1;
                    text[s..].find('"').map(|e| (s, s + e))
                }) {
                    Some((s, e)) => {
                        let esc = serde_json::to_string(&v).unwrap();
                        format!("{}{}{}", &text[..s - 1], esc, &text[e + 1..]).into_bytes()
                    }
                    None => text.into_bytes(),
                }
            }
            1 => text.as_bytes()[..at].to_vec(),
            _ => format!("{}{}{}", &text[..at], v, &text[at..]).into_bytes(),
        }
    })
}

fn any_bytes() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![prop::collection::vec(any::<u8>(), 0..300), mutated(),]
}

fn rt() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
}

proptest! {
    #![proptest_config(config())]

    /// A record either parses into something valid or is refused.
    #[test]
    fn release_records(bytes in any_bytes()) {
        if let Ok(r) = release::parse("k", &bytes) {
            prop_assert!(r.validate().is_ok());
            for (k, f) in &r.files {
                prop_assert!(release::key_problem(k).is_none(), "{k}");
                if let Some(c) = &f.copy_of {
                    prop_assert!(release::key_problem(c).is_none());
                }
            }
        }
    }

    /// `current` and the record it names, through the store.
    #[test]
    fn current_pointer(current in any_bytes(), record in any_bytes()) {
        let s = MemoryStore::new();
        rt().block_on(async {
            let o = PutOptions::internal("text/plain", &Sse::None);
            s.put("p/.cdnsync/current", Bytes::from(current), &o).await.unwrap();
            s.put("p/.cdnsync/releases/20261126T134403.000Z-1a2b3c4d.json", Bytes::from(record), &o).await.unwrap();
            if let Ok(Some(r)) = release::read_current(&s, "p").await {
                let r: Release = r;
                assert!(r.validate().is_ok());
            }
            if let Ok(Some(id)) = release::current_id(&s, "p").await {
                assert!(release::valid_id(&id));
            }
        });
    }

    /// The lock: read, described, expired or not — never a panic.
    #[test]
    fn lock_reader(bytes in any_bytes(), ttl in any::<u64>()) {
        let s = MemoryStore::new();
        rt().block_on(async {
            let o = PutOptions::internal("application/json", &Sse::None);
            s.put("p/.cdnsync/lock", Bytes::from(bytes), &o).await.unwrap();
            let _ = crate::lock::unlock(&s, "p", false).await;
            let forged = format!(r#"{{"id":"x","holder":"h\u001b[2J","command":"c","started":"s","refreshed":"2026-11-26T13:44:03Z","ttl_secs":{ttl}}}"#);
            s.put("p/.cdnsync/lock", Bytes::from(forged), &o).await.unwrap();
            if let Ok(Some(h)) = crate::lock::unlock(&s, "p", false).await {
                assert!(!h.describe().contains('\u{1b}'));
            }
        });
    }

    /// A local target's sidecars: `serve` reads them for every request.
    #[test]
    fn local_sidecars(bytes in any_bytes()) {
        let d = tempfile::tempdir().unwrap();
        let store = crate::store::local::LocalStore::new(d.path().to_path_buf());
        rt().block_on(async {
            store
                .put("a.html", Bytes::from_static(b"<p>"), &PutOptions::internal("text/html", &Sse::None))
                .await
                .unwrap();
        });
        let side = store.sidecar_path("a.html");
        std::fs::write(&side, &bytes).unwrap();
        let _ = store.read_meta("a.html");
        rt().block_on(async {
            let _ = crate::commands::serve::respond_for_test(&store, "/a.html").await;
        });
    }
}
