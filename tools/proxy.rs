//! `cdnsync-proxy`: a small HTTP proxy on 127.0.0.1 between S3 clients and a
//! local S3 server that counts requests by S3 operation, so benchmarks count
//! requests themselves instead of trusting each tool's output. Built only
//! with `--features dev-tools`; not part of the cdnsync package users install.
//!
//! Usage: cdnsync-proxy --upstream http://127.0.0.1:9000 [--listen 127.0.0.1:0] [--port-file F]
//! Control: GET /__proxy/counts → {"PUT": 12, "LIST": 1, …}; POST /__proxy/reset.

use std::collections::BTreeMap;
use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use http_body_util::{BodyExt, Full, combinators::BoxBody};
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Method, Request, Response, Uri};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::{TokioExecutor, TokioIo};

type Counts = Arc<Mutex<BTreeMap<&'static str, u64>>>;
type Body = BoxBody<Bytes, hyper::Error>;

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

fn full(b: impl Into<Bytes>) -> Body {
    Full::new(b.into()).map_err(|never| match never {}).boxed()
}

async fn handle(
    req: Request<Incoming>,
    upstream: Arc<Uri>,
    client: Client<HttpConnector, Incoming>,
    counts: Counts,
) -> Result<Response<Body>, Infallible> {
    let path = req.uri().path();
    if path == "/__proxy/counts" {
        let body = serde_json::to_vec(&*counts.lock().unwrap()).unwrap_or_default();
        return Ok(Response::new(full(body)));
    }
    if path == "/__proxy/reset" {
        counts.lock().unwrap().clear();
        return Ok(Response::new(full("reset")));
    }
    let op = operation(
        req.method(),
        req.uri(),
        req.headers().contains_key("x-amz-copy-source"),
    );
    *counts.lock().unwrap().entry(op).or_default() += 1;
    *counts.lock().unwrap().entry("TOTAL").or_default() += 1;

    let (mut parts, body) = req.into_parts();
    let pq = parts
        .uri
        .path_and_query()
        .map(|p| p.as_str().to_string())
        .unwrap_or_else(|| "/".into());
    parts.uri = match Uri::builder()
        .scheme(upstream.scheme_str().unwrap_or("http"))
        .authority(
            upstream
                .authority()
                .map(|a| a.as_str())
                .unwrap_or("127.0.0.1"),
        )
        .path_and_query(pq)
        .build()
    {
        Ok(u) => u,
        Err(e) => {
            return Ok(Response::builder()
                .status(400)
                .body(full(e.to_string()))
                .unwrap());
        }
    };
    // The Host header is kept: it is what the client signed.
    match client.request(Request::from_parts(parts, body)).await {
        Ok(resp) => Ok(resp.map(|b| b.boxed())),
        Err(e) => Ok(Response::builder()
            .status(502)
            .body(full(format!("proxy: upstream error: {e}")))
            .unwrap()),
    }
}

fn arg(args: &[String], name: &str) -> Option<String> {
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1).cloned())
}

#[tokio::main(flavor = "current_thread")]
async fn main() {
    let args: Vec<String> = std::env::args().collect();
    let Some(upstream) = arg(&args, "--upstream") else {
        eprintln!(
            "usage: cdnsync-proxy --upstream http://HOST:PORT [--listen ADDR] [--port-file F]"
        );
        std::process::exit(2);
    };
    let upstream: Uri = upstream.parse().unwrap_or_else(|e| {
        eprintln!("cdnsync-proxy: invalid --upstream: {e}");
        std::process::exit(2)
    });
    let listen: SocketAddr = arg(&args, "--listen")
        .unwrap_or_else(|| "127.0.0.1:0".into())
        .parse()
        .unwrap_or_else(|e| {
            eprintln!("cdnsync-proxy: invalid --listen: {e}");
            std::process::exit(2)
        });
    let listener = tokio::net::TcpListener::bind(listen)
        .await
        .unwrap_or_else(|e| {
            eprintln!("cdnsync-proxy: cannot listen on {listen}: {e}");
            std::process::exit(1)
        });
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
    let upstream = Arc::new(upstream);
    let counts: Counts = Arc::default();
    loop {
        let Ok((stream, _)) = listener.accept().await else {
            continue;
        };
        let _ = stream.set_nodelay(true);
        let (upstream, client, counts) = (upstream.clone(), client.clone(), counts.clone());
        tokio::spawn(async move {
            let svc = service_fn(move |req| {
                handle(req, upstream.clone(), client.clone(), counts.clone())
            });
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
}
