//! `cdnsync-proxy`: a small HTTP proxy on 127.0.0.1 between S3 clients and a
//! local S3 server that counts requests by S3 operation (so benchmarks count
//! requests themselves instead of trusting each tool's output) and injects
//! faults on a seeded schedule (so tests can prove cdnsync survives them).
//! Built only with `--features dev-tools`; not part of the cdnsync package
//! users install.
//!
//! Usage: cdnsync-proxy --upstream http://127.0.0.1:9000 [--listen 127.0.0.1:0]
//!        [--port-file F] [--faults SPEC]
//! Control: GET /__proxy/counts → {"PUT": 12, "LIST": 1, "FAULT_reset": 1, …};
//! POST /__proxy/reset (counts); POST /__proxy/faults?SPEC (new schedule,
//! request numbering restarts at 0).
//!
//! SPEC is `key=value` pairs joined by `&` or `,`:
//! - `seed=N`: the schedule's seed; request n's fault is a pure function of
//!   (seed, n), so a run with the same seed and request order sees the same
//!   faults;
//! - probabilities in [0, 1]: `slowdown` (503 SlowDown), `internal` (500
//!   InternalError), `reset` (connection reset before the request reaches the
//!   server), `reset_mid` (reset half-way through the request body; for a
//!   request without a body, the request is applied by the server and the
//!   connection reset half-way through its response — or before it, when the
//!   response has no body), `truncate` (the server's response cut to half
//!   its declared length, then the connection closed), `delay` (with
//!   `delay_ms=N`, the request held back N ms);
//! - `fail_after=K` with `fail_with=slowdown|internal|reset|deny`: every request
//!   from the K-th (0-based) on fails that way;
//! - `deny=PUT+COPY`: those operations (names as counted) answer 403
//!   AccessDenied.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full, StreamBody, combinators::BoxBody};
use hyper::body::{Frame, Incoming};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Method, Request, Response, Uri};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::{TokioExecutor, TokioIo};

/// The S3 operation of a path-style request.
fn operation(method: &Method, uri: &Uri, copy_source: bool) -> &'static str {
    let q = uri.query().unwrap_or("");
    let has = |k: &str| {
        q.split('&')
            .any(|p| p == k || p.starts_with(&format!("{k}=")))
    };
    let path = uri.path().trim_start_matches('/');
    let object = path.split_once('/').is_some_and(|(_, k)| !k.is_empty());
    match *method {
        Method::HEAD if object => "HEAD",
        Method::HEAD => "HEAD_BUCKET",
        Method::GET if has("uploads") => "LIST_UPLOADS",
        Method::GET if has("uploadId") => "LIST_PARTS",
        Method::GET if !object => "LIST",
        Method::GET => "GET",
        Method::PUT if has("partNumber") && copy_source => "UPLOAD_PART_COPY",
        Method::PUT if has("partNumber") => "UPLOAD_PART",
        Method::PUT if copy_source => "COPY",
        Method::PUT if !object => "CREATE_BUCKET",
        Method::PUT => "PUT",
        Method::POST if has("delete") => "DELETE_OBJECTS",
        Method::POST if has("uploads") => "CREATE_MULTIPART",
        Method::POST if has("uploadId") => "COMPLETE_MULTIPART",
        Method::DELETE if has("uploadId") => "ABORT_MULTIPART",
        Method::DELETE if !object => "DELETE_BUCKET",
        Method::DELETE => "DELETE",
        _ => "OTHER",
    }
}

type BoxError = Box<dyn std::error::Error + Send + Sync>;
type Counts = Arc<Mutex<BTreeMap<String, u64>>>;
type Body = BoxBody<Bytes, BoxError>;

/// What the proxy does with one request.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Fault {
    Pass,
    Slowdown,
    Internal,
    Reset,
    ResetMid,
    Truncate,
    Delay,
    Deny,
}

impl Fault {
    fn name(self) -> &'static str {
        match self {
            Fault::Pass => "pass",
            Fault::Slowdown => "slowdown",
            Fault::Internal => "internal",
            Fault::Reset => "reset",
            Fault::ResetMid => "reset_mid",
            Fault::Truncate => "truncate",
            Fault::Delay => "delay",
            Fault::Deny => "deny",
        }
    }
}

/// A fault schedule (see the module docs for the SPEC syntax).
#[derive(Clone, Debug, Default, PartialEq)]
struct Schedule {
    seed: u64,
    slowdown: f64,
    internal: f64,
    reset: f64,
    reset_mid: f64,
    truncate: f64,
    delay: f64,
    delay_ms: u64,
    fail_after: Option<u64>,
    fail_with: Option<Fault>,
    deny: Vec<String>,
}

impl Schedule {
    fn parse(spec: &str) -> Result<Schedule, String> {
        let mut s = Schedule::default();
        for pair in spec.split(['&', ',']).filter(|p| !p.is_empty()) {
            let (k, v) = pair
                .split_once('=')
                .ok_or_else(|| format!("`{pair}` is not key=value"))?;
            let prob = || -> Result<f64, String> {
                v.parse::<f64>()
                    .ok()
                    .filter(|p| (0.0..=1.0).contains(p))
                    .ok_or_else(|| format!("`{k}` wants a probability in [0, 1], not `{v}`"))
            };
            let int = || v.parse::<u64>().map_err(|e| format!("`{k}={v}`: {e}"));
            match k {
                "seed" => s.seed = int()?,
                "slowdown" => s.slowdown = prob()?,
                "internal" => s.internal = prob()?,
                "reset" => s.reset = prob()?,
                "reset_mid" => s.reset_mid = prob()?,
                "truncate" => s.truncate = prob()?,
                "delay" => s.delay = prob()?,
                "delay_ms" => s.delay_ms = int()?,
                "fail_after" => s.fail_after = Some(int()?),
                "fail_with" => {
                    s.fail_with = Some(match v {
                        "slowdown" => Fault::Slowdown,
                        "internal" => Fault::Internal,
                        "reset" => Fault::Reset,
                        "deny" => Fault::Deny,
                        _ => return Err(format!("unknown fail_with `{v}`")),
                    });
                }
                "deny" => s.deny = v.split('+').map(str::to_string).collect(),
                _ => return Err(format!("unknown fault setting `{k}`")),
            }
        }
        Ok(s)
    }

    /// The fault for the n-th request (0-based) of operation `op`.
    fn decide(&self, n: u64, op: &str) -> Fault {
        if self.fail_after.is_some_and(|k| n >= k) {
            return self.fail_with.unwrap_or(Fault::Internal);
        }
        if self.deny.iter().any(|d| d == op) {
            return Fault::Deny;
        }
        let mut u = unit(self.seed, n);
        for (p, f) in [
            (self.slowdown, Fault::Slowdown),
            (self.internal, Fault::Internal),
            (self.reset, Fault::Reset),
            (self.reset_mid, Fault::ResetMid),
            (self.truncate, Fault::Truncate),
            (self.delay, Fault::Delay),
        ] {
            if u < p {
                return f;
            }
            u -= p;
        }
        Fault::Pass
    }
}

/// A uniform number in [0, 1) from (seed, n): splitmix64.
fn unit(seed: u64, n: u64) -> f64 {
    let mut z = seed
        .wrapping_mul(0x9E37_79B9_7F4A_7C15)
        .wrapping_add(n.wrapping_add(1).wrapping_mul(0xBF58_476D_1CE4_E5B9));
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^= z >> 31;
    (z >> 11) as f64 / (1u64 << 53) as f64
}

struct State {
    upstream: Uri,
    client: Client<HttpConnector, Incoming>,
    counts: Counts,
    schedule: Mutex<Schedule>,
    seen: AtomicU64,
}

fn full(b: impl Into<Bytes>) -> Body {
    Full::new(b.into()).map_err(|never| match never {}).boxed()
}

fn s3_error(status: u16, code: &str, message: &str) -> Response<Body> {
    let xml = format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<Error><Code>{code}</Code><Message>{message}</Message><RequestId>cdnsync-proxy</RequestId></Error>"
    );
    Response::builder()
        .status(status)
        .header("content-type", "application/xml")
        .header("x-amz-request-id", "cdnsync-proxy")
        .body(full(xml))
        .expect("static response")
}

/// Make the next close of the connection a TCP reset (RST) instead of an
/// orderly shutdown.
fn arm_reset(conn: &std::net::TcpStream) {
    let _ = socket2::SockRef::from(conn).set_linger(Some(Duration::ZERO));
}

fn injected(what: &str) -> BoxError {
    format!("cdnsync-proxy: injected {what}").into()
}

/// A body that yields `first` and then fails or ends (`then_fail`).
fn cut_body(first: Bytes, then_fail: bool) -> Body {
    let frames: Vec<Result<Frame<Bytes>, BoxError>> = if then_fail {
        vec![Ok(Frame::data(first)), Err(injected("reset mid-body"))]
    } else {
        vec![Ok(Frame::data(first))]
    };
    StreamBody::new(futures::stream::iter(frames)).boxed()
}

async fn handle(
    req: Request<Incoming>,
    st: Arc<State>,
    conn: Arc<std::net::TcpStream>,
) -> Result<Response<Body>, BoxError> {
    let path = req.uri().path();
    if path == "/__proxy/counts" {
        let body = serde_json::to_vec(&*st.counts.lock().unwrap()).unwrap_or_default();
        return Ok(Response::new(full(body)));
    }
    if path == "/__proxy/reset" {
        st.counts.lock().unwrap().clear();
        return Ok(Response::new(full("reset")));
    }
    if path == "/__proxy/faults" {
        return Ok(match Schedule::parse(req.uri().query().unwrap_or("")) {
            Ok(s) => {
                *st.schedule.lock().unwrap() = s;
                st.seen.store(0, Ordering::SeqCst);
                Response::new(full("ok"))
            }
            Err(e) => Response::builder().status(400).body(full(e)).unwrap(),
        });
    }
    let op = operation(
        req.method(),
        req.uri(),
        req.headers().contains_key("x-amz-copy-source"),
    );
    let n = st.seen.fetch_add(1, Ordering::SeqCst);
    let (fault, delay_ms) = {
        let s = st.schedule.lock().unwrap();
        (s.decide(n, op), s.delay_ms)
    };
    {
        let mut c = st.counts.lock().unwrap();
        *c.entry(op.to_string()).or_default() += 1;
        *c.entry("TOTAL".into()).or_default() += 1;
        if fault != Fault::Pass {
            *c.entry(format!("FAULT_{}", fault.name())).or_default() += 1;
        }
    }
    match fault {
        Fault::Slowdown => {
            return Ok(s3_error(
                503,
                "SlowDown",
                "Please reduce your request rate.",
            ));
        }
        Fault::Internal => {
            return Ok(s3_error(
                500,
                "InternalError",
                "We encountered an internal error. Please try again.",
            ));
        }
        Fault::Deny => return Ok(s3_error(403, "AccessDenied", "Access Denied")),
        Fault::Reset => {
            arm_reset(&conn);
            return Err(injected("reset before the request"));
        }
        Fault::Delay => {
            tokio::time::sleep(Duration::from_millis(delay_ms)).await;
        }
        _ => {}
    }
    let declared: u64 = req
        .headers()
        .get("content-length")
        .and_then(|v| v.to_str().ok()?.parse().ok())
        .unwrap_or(0);
    if fault == Fault::ResetMid && declared > 0 {
        // Read about half of the upload, then reset: the server never sees it.
        let mut body = req.into_body();
        let mut got = 0u64;
        while got < declared / 2 {
            match body.frame().await {
                Some(Ok(f)) => got += f.data_ref().map_or(0, |d| d.len() as u64),
                _ => break,
            }
        }
        arm_reset(&conn);
        return Err(injected("reset mid-upload"));
    }

    let (mut parts, body) = req.into_parts();
    let pq = parts
        .uri
        .path_and_query()
        .map(|p| p.as_str().to_string())
        .unwrap_or_else(|| "/".into());
    parts.uri = Uri::builder()
        .scheme(st.upstream.scheme_str().unwrap_or("http"))
        .authority(
            st.upstream
                .authority()
                .map(hyper::http::uri::Authority::as_str)
                .unwrap_or("127.0.0.1"),
        )
        .path_and_query(pq)
        .build()?;
    // The Host header is kept: it is what the client signed.
    let resp = match st.client.request(Request::from_parts(parts, body)).await {
        Ok(r) => r,
        Err(e) => {
            return Ok(Response::builder()
                .status(502)
                .body(full(format!("proxy: upstream error: {e}")))
                .unwrap());
        }
    };
    if !matches!(fault, Fault::ResetMid | Fault::Truncate) {
        return Ok(resp.map(|b| b.map_err(BoxError::from).boxed()));
    }
    let (parts, body) = resp.into_parts();
    let bytes = body.collect().await?.to_bytes();
    if bytes.is_empty() {
        if fault == Fault::ResetMid {
            // Applied by the server, answer lost.
            arm_reset(&conn);
            return Err(injected("reset before the response"));
        }
        return Ok(Response::from_parts(parts, full(bytes)));
    }
    let half = bytes.slice(..bytes.len() / 2);
    if fault == Fault::ResetMid {
        arm_reset(&conn);
    }
    // Content-Length still declares the whole body: the client sees it end early.
    Ok(Response::from_parts(
        parts,
        cut_body(half, fault == Fault::ResetMid),
    ))
}

fn arg(args: &[String], name: &str) -> Option<String> {
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1).cloned())
}

fn die(msg: String, code: i32) -> ! {
    eprintln!("cdnsync-proxy: {msg}");
    std::process::exit(code)
}

#[tokio::main(flavor = "current_thread")]
async fn main() {
    let args: Vec<String> = std::env::args().collect();
    let Some(upstream) = arg(&args, "--upstream") else {
        die(
            "usage: cdnsync-proxy --upstream http://HOST:PORT [--listen ADDR] [--port-file F] [--faults SPEC]".into(),
            2,
        );
    };
    let upstream: Uri = upstream
        .parse()
        .unwrap_or_else(|e| die(format!("invalid --upstream: {e}"), 2));
    let listen: SocketAddr = arg(&args, "--listen")
        .unwrap_or_else(|| "127.0.0.1:0".into())
        .parse()
        .unwrap_or_else(|e| die(format!("invalid --listen: {e}"), 2));
    let schedule = Schedule::parse(&arg(&args, "--faults").unwrap_or_default())
        .unwrap_or_else(|e| die(format!("invalid --faults: {e}"), 2));
    let listener = tokio::net::TcpListener::bind(listen)
        .await
        .unwrap_or_else(|e| die(format!("cannot listen on {listen}: {e}"), 1));
    let addr = listener.local_addr().expect("local addr");
    if let Some(f) = arg(&args, "--port-file") {
        let tmp = format!("{f}.tmp");
        std::fs::write(&tmp, addr.port().to_string()).expect("write port file");
        std::fs::rename(&tmp, &f).expect("rename port file");
    }
    println!("cdnsync-proxy listening on http://{addr} -> {upstream}");
    let mut connector = HttpConnector::new();
    connector.set_nodelay(true);
    let client: Client<HttpConnector, Incoming> = Client::builder(TokioExecutor::new())
        .pool_max_idle_per_host(512)
        .build(connector);
    let st = Arc::new(State {
        upstream,
        client,
        counts: Arc::default(),
        schedule: Mutex::new(schedule),
        seen: AtomicU64::new(0),
    });
    loop {
        let Ok((stream, _)) = listener.accept().await else {
            continue;
        };
        let _ = stream.set_nodelay(true);
        // A second handle on the socket, to arm a reset from the service.
        let Ok(conn) = stream
            .into_std()
            .and_then(|s| Ok((s.try_clone()?, s)))
            .and_then(|(ctl, s)| Ok((ctl, tokio::net::TcpStream::from_std(s)?)))
        else {
            continue;
        };
        let (ctl, stream) = (Arc::new(conn.0), conn.1);
        let st = st.clone();
        tokio::spawn(async move {
            let svc = service_fn(move |req| handle(req, st.clone(), ctl.clone()));
            let _ = http1::Builder::new()
                .keep_alive(true)
                .serve_connection(TokioIo::new(stream), svc)
                .await;
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn operations() {
        let u = |s: &str| s.parse::<Uri>().unwrap();
        assert_eq!(
            operation(&Method::GET, &u("/b?list-type=2&prefix=x"), false),
            "LIST"
        );
        assert_eq!(operation(&Method::GET, &u("/b/k.html"), false), "GET");
        assert_eq!(operation(&Method::PUT, &u("/b/k"), false), "PUT");
        assert_eq!(operation(&Method::PUT, &u("/b/k"), true), "COPY");
        assert_eq!(
            operation(&Method::PUT, &u("/b/k?partNumber=2&uploadId=x"), false),
            "UPLOAD_PART"
        );
        assert_eq!(
            operation(&Method::POST, &u("/b?delete"), false),
            "DELETE_OBJECTS"
        );
        assert_eq!(
            operation(&Method::POST, &u("/b/k?uploads"), false),
            "CREATE_MULTIPART"
        );
        assert_eq!(operation(&Method::HEAD, &u("/b/k"), false), "HEAD");
        assert_eq!(operation(&Method::HEAD, &u("/b"), false), "HEAD_BUCKET");
    }

    #[test]
    fn schedules() {
        let s = Schedule::parse("seed=7&slowdown=0.05,reset=0.01&reset_mid=0.01").unwrap();
        assert_eq!(s.seed, 7);
        // Deterministic, and close to the asked rates over many requests.
        let faults: Vec<Fault> = (0..20_000).map(|n| s.decide(n, "PUT")).collect();
        assert_eq!(
            faults,
            (0..20_000).map(|n| s.decide(n, "PUT")).collect::<Vec<_>>()
        );
        let rate = |f| faults.iter().filter(|&&x| x == f).count() as f64 / 20_000.0;
        assert!((rate(Fault::Slowdown) - 0.05).abs() < 0.01);
        assert!((rate(Fault::Reset) - 0.01).abs() < 0.004);
        assert!((rate(Fault::ResetMid) - 0.01).abs() < 0.004);
        assert_eq!(rate(Fault::Internal), 0.0);
        let k = Schedule::parse("fail_after=3,fail_with=reset,deny=PUT+COPY").unwrap();
        assert_eq!(k.decide(0, "GET"), Fault::Pass);
        assert_eq!(k.decide(1, "PUT"), Fault::Deny);
        assert_eq!(k.decide(3, "GET"), Fault::Reset);
        assert!(Schedule::parse("slowdown=2").is_err());
        assert!(Schedule::parse("bogus=1").is_err());
        assert!(Schedule::parse("fail_with=explode").is_err());
    }
}
