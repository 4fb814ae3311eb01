//! `cdnsync serve DIR`: a local preview of a local-directory target, served
//! the way S3 behind CloudFront would: the stored bytes with their stored
//! Content-Type, Cache-Control, Content-Encoding and Content-Disposition,
//! routed by the live release's routing exactly as the generated
//! CloudFront Functions route (the same [`Table`]): directory indexes,
//! trailing slash, clean URLs, SPA fallback, redirects, response headers
//! and the 404 page. Without routing, only exact keys (and `/`) answer.
//! Text stored uncompressed is gzip-compressed on the fly for viewers that
//! accept it, as CloudFront's automatic compression does.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;

use axum::Router;
use axum::body::Body;
use axum::http::{HeaderMap, HeaderValue, Method, Response, StatusCode, Uri, header};
use percent_encoding::percent_decode_str;

use crate::error::{Error, Result};
use crate::headers::META_HASH;
use crate::routing::{Answer, Table};
use crate::store::local::{LocalStore, STORE_DIR};

/// Bodies above this are streamed from disk instead of read whole.
const STREAM_ABOVE: u64 = 8 * 1024 * 1024;

#[derive(Debug, Clone)]
pub struct ServeConfig {
    pub dir: PathBuf,
    pub addr: SocketAddr,
}

impl From<&crate::cli::ServeArgs> for ServeConfig {
    fn from(a: &crate::cli::ServeArgs) -> Self {
        ServeConfig {
            dir: a.dir.clone(),
            addr: SocketAddr::new(a.host, a.port),
        }
    }
}

/// Bind, print the URL, serve until `stop` resolves (Ctrl-C / SIGTERM in
/// the binary): then stop at once — a preview has nothing to finish.
pub async fn run(cfg: &ServeConfig, stop: impl std::future::Future<Output = ()>) -> Result<()> {
    if !cfg.dir.is_dir() {
        return Err(Error::input(
            &cfg.dir,
            "not a directory (publish into it first: cdnsync publish DIR --to it)",
        ));
    }
    let listener = tokio::net::TcpListener::bind(cfg.addr)
        .await
        .map_err(|e| Error::Usage(format!("cannot listen on {}: {e}", cfg.addr)))?;
    let addr = listener
        .local_addr()
        .map_err(|e| Error::Internal(format!("no local address: {e}")))?;
    println!("Serving {} at http://{addr}/", cfg.dir.display());
    let store = Arc::new(LocalStore::new(cfg.dir.clone()));
    let live = Arc::new(tokio::sync::Mutex::new(Live::default()));
    let app = Router::new().fallback(move |method: Method, uri: Uri, headers: HeaderMap| {
        let (store, live) = (store.clone(), live.clone());
        async move {
            let routing = live.lock().await.refresh(&store).await;
            respond(&store, routing.as_deref(), &method, &uri, &headers).await
        }
    });
    // Open keep-alive connections must not hold the exit: stop serving the
    // moment a stop is requested.
    tokio::select! {
        r = axum::serve(listener, app) => r.map_err(|e| Error::Internal(format!("server failed: {e}"))),
        () = stop => {
            eprintln!("stopped serving {}", cfg.dir.display());
            Ok(())
        }
    }
}

/// The live release's routing, recomputed when `current` changes.
#[derive(Default)]
struct Live {
    current: Option<bytes::Bytes>,
    routing: Option<Arc<Routed>>,
}

/// The routing `serve` answers with.
#[derive(Debug)]
pub struct Routed {
    pub table: Table,
    /// Key of the 404 page.
    pub not_found: Option<String>,
}

impl Live {
    async fn refresh(&mut self, store: &LocalStore) -> Option<Arc<Routed>> {
        use crate::store::Store;
        let key = crate::release::current_key("");
        let now = store
            .get(&key, crate::release::CURRENT_MAX)
            .await
            .ok()
            .flatten();
        if now != self.current {
            self.current = now;
            self.routing = routed(store).await.map(Arc::new);
        }
        self.routing.clone()
    }
}

/// The routing of the live release, if it has one (an unreadable or
/// invalid record: none, said on stderr).
async fn routed(store: &LocalStore) -> Option<Routed> {
    let rel = match crate::release::read_current(store, "").await {
        Ok(r) => r?,
        Err(e) => {
            eprintln!("warning: no routing: {e}");
            return None;
        }
    };
    let rec = rel.routing.as_ref()?;
    let keys = crate::release::live_keys(&rel.files);
    match crate::routing::function::compile(&rec.settings, &keys) {
        Ok(c) => Some(Routed {
            table: c.table,
            not_found: rec.settings.not_found.clone(),
        }),
        Err(e) => {
            eprintln!("warning: no routing: {e}");
            None
        }
    }
}

/// The key a request path maps to, or `None` for paths never served;
/// `index` answers `/dir/` with `dir/index.html` (only `/` without
/// routing).
pub fn key_for(path: &str) -> Option<String> {
    key_for_with(path, true)
}

fn key_for_with(path: &str, index: bool) -> Option<String> {
    let decoded = percent_decode_str(path).decode_utf8().ok()?;
    let mut key = decoded.strip_prefix('/').unwrap_or(&decoded).to_string();
    if key.is_empty() || (index && key.ends_with('/')) {
        key.push_str("index.html");
    }
    let internal = |k: &str| {
        k == STORE_DIR
            || k.starts_with(&format!("{STORE_DIR}/"))
            || k == ".cdnsync"
            || k.starts_with(".cdnsync/")
    };
    if key
        .split('/')
        .any(|s| s.is_empty() || s == "." || s == "..")
        || internal(&key)
    {
        return None;
    }
    Some(key)
}

async fn respond(
    store: &LocalStore,
    routing: Option<&Routed>,
    method: &Method,
    uri: &Uri,
    headers: &HeaderMap,
) -> Response<Body> {
    if method != Method::GET && method != Method::HEAD {
        return plain(StatusCode::METHOD_NOT_ALLOWED, "method not allowed");
    }
    let Some(r) = routing else {
        // No routing: exact keys, as an S3 origin answers (`/` as its
        // default root object).
        let found = match key_for_with(uri.path(), uri.path() == "/") {
            Some(key) => object(store, &key, method, StatusCode::OK, headers, true).await,
            None => None,
        };
        return match found {
            Some(resp) => resp,
            None => not_found(store, "404.html", method, headers).await,
        };
    };
    let served = match r.table.route(uri.path(), uri.query()) {
        Answer::Redirect(status, location) => {
            return Response::builder()
                .status(StatusCode::from_u16(status).unwrap_or(StatusCode::MOVED_PERMANENTLY))
                .header(header::LOCATION, location)
                .body(Body::empty())
                .expect("response");
        }
        Answer::Serve(path) => path,
    };
    let found = match key_for_with(&served, false) {
        Some(key) => object(store, &key, method, StatusCode::OK, headers, true).await,
        None => None,
    };
    let mut resp = match (found, &r.not_found) {
        (Some(resp), _) => resp,
        (None, Some(page)) => not_found(store, page, method, headers).await,
        (None, None) => plain(StatusCode::NOT_FOUND, "not found"),
    };
    // The viewer-response function: the headers for the path served.
    let decoded = crate::routing::decode(&served).unwrap_or(served);
    for (name, value) in r.table.headers_for(&decoded) {
        if let (Ok(n), Ok(v)) = (
            header::HeaderName::from_bytes(name.as_bytes()),
            HeaderValue::from_str(&value),
        ) {
            resp.headers_mut().insert(n, v);
        }
    }
    resp
}

async fn not_found(
    store: &LocalStore,
    page: &str,
    method: &Method,
    request: &HeaderMap,
) -> Response<Body> {
    match object(store, page, method, StatusCode::NOT_FOUND, request, false).await {
        Some(r) => r,
        None => plain(StatusCode::NOT_FOUND, "not found"),
    }
}

fn plain(status: StatusCode, msg: &'static str) -> Response<Body> {
    Response::builder()
        .status(status)
        .header(header::CONTENT_TYPE, "text/plain; charset=utf-8")
        .body(Body::from(msg))
        .expect("response")
}

/// Whether a conditional GET/HEAD may be answered 304 Not Modified
/// (RFC 9110 §13.2.2: `If-None-Match` wins over `If-Modified-Since`).
pub fn not_modified(
    request: &HeaderMap,
    etag: Option<&str>,
    last_modified: Option<std::time::SystemTime>,
) -> bool {
    if let Some(inm) = request.get(header::IF_NONE_MATCH) {
        let Some(etag) = etag else { return false };
        let Ok(inm) = inm.to_str() else { return false };
        let opaque = |t: &str| t.trim().trim_start_matches("W/").to_string();
        return inm
            .split(',')
            .any(|t| t.trim() == "*" || opaque(t) == opaque(etag));
    }
    match (request.get(header::IF_MODIFIED_SINCE), last_modified) {
        (Some(ims), Some(lm)) => ims
            .to_str()
            .ok()
            .and_then(|v| httpdate::parse_http_date(v).ok())
            // HTTP dates have whole seconds.
            .is_some_and(|since| httpdate::HttpDate::from(lm) <= httpdate::HttpDate::from(since)),
        _ => false,
    }
}

/// Whether the viewer accepts gzip: `Accept-Encoding` names it (or `*`)
/// with a quality above 0; a `gzip` entry wins over `*`.
pub fn accepts_gzip(request: &HeaderMap) -> bool {
    let mut gzip = None;
    let mut any = None;
    for token in request
        .get_all(header::ACCEPT_ENCODING)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
    {
        let mut parts = token.split(';').map(str::trim);
        let coding = parts.next().unwrap_or("").to_ascii_lowercase();
        let q = parts
            .filter_map(|p| {
                let (k, v) = p.split_once('=')?;
                k.trim()
                    .eq_ignore_ascii_case("q")
                    .then(|| v.trim().parse::<f32>().ok())
                    .flatten()
            })
            .next()
            .unwrap_or(1.0);
        match coding.as_str() {
            "gzip" | "x-gzip" => gzip = Some(q > 0.0),
            "*" => any = Some(q > 0.0),
            _ => {}
        }
    }
    gzip.or(any).unwrap_or(false)
}

/// Whether the edge may compress this object on the fly, as CloudFront's
/// "compress objects automatically" does: a type it compresses, 1,000
/// bytes to 10 MB, stored uncompressed.
fn edge_may_compress(meta: &crate::store::ObjectMeta) -> bool {
    meta.content_encoding
        .as_deref()
        .is_none_or(|e| e == "identity")
        && (1_000..=10_000_000).contains(&meta.size)
        && meta
            .content_type
            .as_deref()
            .is_some_and(crate::mime::edge_compresses)
}

async fn object(
    store: &LocalStore,
    key: &str,
    method: &Method,
    status: StatusCode,
    request: &HeaderMap,
    conditional: bool,
) -> Option<Response<Body>> {
    // Only what was published: a file with a sidecar, never through a
    // symlink, whatever the sidecar holds.
    let meta = store.read_published_meta(key).ok()??;
    let path = store.object_path(key).ok()?;
    let modified = tokio::fs::metadata(&path)
        .await
        .ok()
        .and_then(|m| m.modified().ok());
    let etag = meta
        .metadata
        .get(META_HASH)
        .map(|h| format!("\"{}\"", h.chars().take(32).collect::<String>()));
    let status = if conditional && not_modified(request, etag.as_deref(), modified) {
        StatusCode::NOT_MODIFIED
    } else {
        status
    };
    let may_compress = edge_may_compress(&meta);
    // The edge prefers brotli where accepted; `serve` uses gzip.
    let gzip = may_compress && accepts_gzip(request);
    // Compressed bytes are not the stored ones: the ETag becomes weak,
    // as CloudFront makes it.
    let etag = match etag {
        Some(e) if gzip => Some(format!("W/{e}")),
        e => e,
    };
    let mut b = Response::builder().status(status);
    let hv = |s: &str| HeaderValue::from_str(s).ok();
    if let Some(v) = meta.content_type.as_deref().and_then(hv) {
        b = b.header(header::CONTENT_TYPE, v);
    }
    if let Some(v) = meta.cache_control.as_deref().and_then(hv) {
        b = b.header(header::CACHE_CONTROL, v);
    }
    if may_compress {
        b = b.header(header::VARY, "Accept-Encoding");
    }
    if gzip {
        b = b.header(header::CONTENT_ENCODING, "gzip");
    } else if let Some(v) = meta.content_encoding.as_deref().and_then(hv) {
        b = b.header(header::CONTENT_ENCODING, v);
    }
    if let Some(v) = meta.content_disposition.as_deref().and_then(hv) {
        b = b.header(header::CONTENT_DISPOSITION, v);
    }
    if let Some(v) = etag.as_deref().and_then(hv) {
        b = b.header(header::ETAG, v);
    }
    if let Some(m) = modified {
        b = b.header(header::LAST_MODIFIED, httpdate::fmt_http_date(m));
    }
    if status == StatusCode::NOT_MODIFIED {
        return b.body(Body::empty()).ok();
    }
    if gzip {
        // Compressed as it is sent: the length is that of the gzip bytes.
        let raw = tokio::fs::read(&path).await.ok()?;
        let zipped = crate::compress::gzip(&raw);
        b = b.header(header::CONTENT_LENGTH, zipped.len());
        let body = if method == Method::HEAD {
            Body::empty()
        } else {
            Body::from(zipped)
        };
        return b.body(body).ok();
    }
    b = b.header(header::CONTENT_LENGTH, meta.size);
    let body = if method == Method::HEAD {
        Body::empty()
    } else if meta.size > STREAM_ABOVE {
        let f = tokio::fs::File::open(&path).await.ok()?;
        Body::from_stream(tokio_util::io::ReaderStream::new(f))
    } else {
        Body::from(tokio::fs::read(&path).await.ok()?)
    };
    b.body(body).ok()
}

/// One GET of `path`, for tests that feed `serve` untrusted sidecars.
#[cfg(test)]
pub(crate) async fn respond_for_test(store: &LocalStore, path: &str) -> Response<Body> {
    let uri: Uri = path.parse().unwrap_or_else(|_| Uri::from_static("/"));
    let routing = routed(store).await;
    respond(
        store,
        routing.as_ref(),
        &Method::GET,
        &uri,
        &HeaderMap::new(),
    )
    .await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accept_encoding_as_rfc_9110_reads_it() {
        let accepts = |v: &str| {
            let mut h = HeaderMap::new();
            h.insert(header::ACCEPT_ENCODING, HeaderValue::from_str(v).unwrap());
            accepts_gzip(&h)
        };
        assert!(accepts("gzip"));
        assert!(accepts("br, gzip;q=0.8"));
        assert!(accepts("*"));
        assert!(accepts("GZIP ; Q=0.5"));
        assert!(!accepts("gzip;q=0"));
        assert!(!accepts("gzip;Q=0, *"));
        assert!(!accepts("identity"));
        assert!(!accepts("br"));
        assert!(!accepts("*;q=0"));
        assert!(!accepts_gzip(&HeaderMap::new()));
    }

    #[test]
    fn request_paths_to_keys() {
        assert_eq!(key_for("/").as_deref(), Some("index.html"));
        assert_eq!(key_for("/blog/").as_deref(), Some("blog/index.html"));
        assert_eq!(key_for("/css/a%20b.css").as_deref(), Some("css/a b.css"));
        assert_eq!(key_for("/caf%C3%A9.html").as_deref(), Some("café.html"));
        assert_eq!(key_for("/a/../b"), None);
        assert_eq!(key_for("/.cdnsync/current"), None);
        assert_eq!(key_for("/.cdnsync-store/meta/index.html.json"), None);
        assert_eq!(key_for("//x"), None);
    }
}
