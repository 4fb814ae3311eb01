//! Edge routing (issue 18): the generated CloudFront Functions, run under
//! Node, answer every request exactly as `cdnsync serve` does; the
//! routing files are rules, never uploaded; on CloudFront (moto) the
//! functions are published and associated, foreign ones left alone, and a
//! rollback restores the routing with the pages.

use serde_json::{Value, json};

use crate::cloudfront::{cf_client, distribution, with_cdn};
use crate::util::*;

/// Runs the generated functions on CloudFront Functions' event shape; a
/// function reading a KeyValueStore gets one holding the given JSON map.
const NODE_HARNESS: &str = r#"
const fs = require('fs');
const [req, res, cases, store] = process.argv.slice(2).map(f => fs.readFileSync(f, 'utf8'));
const data = JSON.parse(store || '{}');
const cf = { kvs: () => ({ get: async k => {
  if (Object.prototype.hasOwnProperty.call(data, k)) return data[k];
  throw new Error('key not found');
} }) };
const load = code => code
  ? new Function('cf', code.replace(/^import cf from 'cloudfront';\n/, '') + '\nreturn handler;')(cf)
  : null;
const onRequest = load(req), onResponse = load(res);
(async () => {
  const out = [];
  for (const [method, uri, query] of JSON.parse(cases)) {
    const querystring = {};
    for (const part of (query || '').split('&').filter(Boolean)) {
      const [k, v] = part.split(/=(.*)/s);
      querystring[k] = { value: v === undefined ? '' : v };
    }
    const request = { method, uri, querystring, headers: {}, cookies: {} };
    const r = await onRequest({ version: '1.0', context: { eventType: 'viewer-request' }, request });
    if (r.statusCode) { out.push({ status: r.statusCode, location: r.headers.location.value }); continue; }
    let headers = {};
    if (onResponse) {
      const resp = onResponse({ request: r, response: { statusCode: 200, headers: {} } });
      for (const k of Object.keys(resp.headers)) headers[k] = resp.headers[k].value;
    }
    out.push({ uri: r.uri, headers });
  }
  process.stdout.write(JSON.stringify(out));
})();
"#;

fn routing_site() -> Site {
    Site::new(&[
        ("index.html", b"<h1>home</h1>"),
        ("404.html", b"<h1>not here</h1>"),
        ("blog/index.html", b"<h1>blog</h1>"),
        ("blog/post.html", b"<h1>post</h1>"),
        ("docs/intro/index.html", b"<h1>intro</h1>"),
        ("about.html", b"<h1>about</h1>"),
        ("caf\u{e9}/index.html", "<h1>café</h1>".as_bytes()),
        ("app.js", b"console.log(1)"),
        (
            "_redirects",
            b"# moved\n/old /blog/ 301\n/news/:year/:slug /blog/:slug 302\n/ext/* https://example.com/:splat 308\n/app/* /index.html 200\n/go/* /:splat 302\n/about.html /x 301\n",
        ),
        (
            "_headers",
            b"/*\n  X-Frame-Options: DENY\n  Strict-Transport-Security: max-age=63072000\n/blog/*\n  X-Robots-Tag: noindex\n",
        ),
        ("cdnsync.toml", b"[routing]\nclean_urls = true\n"),
    ])
}

/// The generated functions, run under Node on these requests.
fn run_node(report: &Value, cases: &Value) -> Vec<Value> {
    run_node_code(
        report["routing"]["request_function"].as_str().unwrap(),
        report["routing"]["response_function"].as_str(),
        &json!({}),
        cases,
    )
}

/// Functions (and the KeyValueStore they read), run under Node.
fn run_node_code(
    request: &str,
    response: Option<&str>,
    store: &Value,
    cases: &Value,
) -> Vec<Value> {
    let d = tempfile::tempdir().unwrap();
    let w = |name: &str, body: &str| {
        let p = d.path().join(name);
        std::fs::write(&p, body).unwrap();
        path_str(&p)
    };
    let harness = w("harness.js", NODE_HARNESS);
    let req = w("req.js", request);
    let res = w("res.js", response.unwrap_or(""));
    let cases = w("cases.json", &cases.to_string());
    let store = w("store.json", &store.to_string());
    let out = std::process::Command::new("node")
        .args([&harness, &req, &res, &cases, &store])
        .output()
        .expect("node runs");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice::<Vec<Value>>(&out.stdout).unwrap()
}

/// `cdnsync serve` on the published directory `out` answers each case as
/// the edge did (redirect, or the key it asks the origin for, with the
/// response function's headers).
fn assert_serve_matches(out: &std::path::Path, cases: &Value, edge: &[Value]) {
    let srv = serve(out);
    for (case, want) in cases.as_array().unwrap().iter().zip(edge) {
        let (method, path, query) = (
            case[0].as_str().unwrap(),
            case[1].as_str().unwrap(),
            case[2].as_str().unwrap(),
        );
        let url = if query.is_empty() {
            format!("{}{path}", srv.base)
        } else {
            format!("{}{path}?{query}", srv.base)
        };
        let got = http(method, &url, &[]);
        let what = format!("{method} {path}?{query}: edge {want}");
        if let Some(status) = want["status"].as_u64() {
            assert_eq!(u64::from(got.status), status, "{what}");
            assert_eq!(got.header("location"), want["location"].as_str(), "{what}");
            continue;
        }
        // The edge asks the origin for this key: serve answers it, or the
        // 404 page with 404 when there is none (CloudFront's error response).
        let uri = want["uri"].as_str().unwrap();
        let key = percent_encoding::percent_decode_str(uri.trim_start_matches('/'))
            .decode_utf8()
            .map_or_else(
                |_| uri.trim_start_matches('/').to_string(),
                std::borrow::Cow::into_owned,
            );
        let exists = !key.is_empty() && out.join(&key).is_file();
        let (status, body_key) = if exists {
            (200, key.as_str())
        } else {
            (404, "404.html")
        };
        assert_eq!(got.status, status, "{what}");
        if method == "GET" {
            assert_eq!(
                got.body,
                std::fs::read(out.join(body_key)).unwrap(),
                "{what}"
            );
        }
        for (name, value) in want["headers"].as_object().unwrap() {
            assert_eq!(got.header(name), value.as_str(), "{what}: header {name}");
        }
    }
}

#[test]
fn serve_answers_exactly_what_the_generated_function_answers() {
    let site = routing_site();
    let (_t, out) = tmp_target();
    let (dir, to) = (path_str(site.path()), path_str(&out));
    let config = path_str(&site.path().join("cdnsync.toml"));
    let r = cdnsync(&["publish", &dir, "--to", &to, "--json", "--config", &config]).ok_json();
    let rt = &r["routing"];
    assert_eq!(
        rt["redirects"], 5,
        "the shadowed /about.html rule is dropped: {rt:#}"
    );
    assert!(rt["request_bytes"].as_u64().unwrap() <= 10_240);
    let warnings = r["warnings"].to_string();
    assert!(
        warnings.contains("redirect from `/about.html` never applies"),
        "{warnings}"
    );
    // The routing files are rules, never objects.
    assert!(!out.join("_redirects").exists() && !out.join("_headers").exists());
    let skipped = r["skipped"].to_string();
    assert!(
        skipped.contains("_redirects") && skipped.contains("routing"),
        "{skipped}"
    );

    let cases = json!([
        ["GET", "/", ""],
        ["GET", "/blog/", ""],
        ["GET", "/blog", ""],
        ["GET", "/blog", "x=1&y=2"],
        ["GET", "/docs/intro", ""],
        ["GET", "/docs/intro/", ""],
        ["GET", "/about", ""],
        ["GET", "/blog/post", ""],
        ["GET", "/app.js", ""],
        ["GET", "/old", ""],
        ["GET", "/old", "q=2"],
        ["GET", "/news/2024/hello", ""],
        ["GET", "/ext/a/b%20c", ""],
        ["GET", "/app/users/1", ""],
        ["GET", "/go//evil.com/x", ""],
        ["GET", "//evil.com/x", ""],
        ["GET", "/missing", ""],
        ["GET", "/missing.png", ""],
        ["GET", "/caf%C3%A9", ""],
        ["GET", "/caf%C3%A9/", ""],
        ["GET", "/%zz", ""],
        ["GET", "/blog/index.html", ""],
        ["HEAD", "/blog/", ""],
        ["HEAD", "/docs/intro", ""],
    ]);
    let edge = run_node(&r, &cases);
    assert_serve_matches(&out, &cases, &edge);
    // No answer sends the viewer to another host.
    for e in &edge {
        let l = e["location"].as_str().unwrap_or("");
        assert!(!l.starts_with("//"), "{edge:?}");
    }
    assert!(
        edge.iter().any(|e| e["location"] == "/evil.com/x"),
        "{edge:?}"
    );
    // The table covers every kind of answer.
    let statuses: Vec<Option<u64>> = edge.iter().map(|e| e["status"].as_u64()).collect();
    for s in [301, 302, 308] {
        assert!(statuses.contains(&Some(s)), "{s}: {edge:?}");
    }
}

#[test]
fn without_routing_only_exact_keys_answer_and_the_files_are_still_not_uploaded() {
    let site = routing_site();
    let (_t, out) = tmp_target();
    let (dir, to) = (path_str(site.path()), path_str(&out));
    let r = cdnsync(&["publish", &dir, "--to", &to, "--json", "--no-routing"]).ok_json();
    assert!(r.get("routing").is_none(), "{r:#}");
    assert!(
        r["warnings"]
            .to_string()
            .contains("_redirects: routing is off"),
        "{r:#}"
    );
    assert!(!out.join("_redirects").exists());
    let srv = serve(&out);
    assert_eq!(http("GET", &format!("{}/", srv.base), &[]).status, 200);
    assert_eq!(
        http("GET", &format!("{}/blog/index.html", srv.base), &[]).status,
        200
    );
    for p in ["/blog/", "/blog", "/old"] {
        assert_eq!(
            http("GET", &format!("{}{p}", srv.base), &[]).status,
            404,
            "{p}"
        );
    }
}

#[test]
fn a_bad_routing_rule_is_one_line_naming_the_file_and_line_and_writes_nothing() {
    let site = Site::new(&[
        ("index.html", b"<h1>home</h1>"),
        ("_redirects", b"/ok /fine\n/a /b 301 Country=us\n"),
    ]);
    let (_t, out) = tmp_target();
    let run = cdnsync(&["publish", &path_str(site.path()), "--to", &path_str(&out)]).run();
    assert_eq!(run.code, 3, "{}", run.stderr);
    assert!(
        run.stderr.contains("_redirects") && run.stderr.contains("line 2"),
        "{}",
        run.stderr
    );
    assert_eq!(run.stderr.trim().lines().count(), 1, "{}", run.stderr);
    assert!(!out.exists(), "nothing written");

    let site = Site::new(&[
        ("index.html", b"x"),
        ("_headers", b"/*\n  Content-Length: 3\n"),
    ]);
    let run = cdnsync(&["publish", &path_str(site.path()), "--to", &path_str(&out)]).run();
    assert_eq!(run.code, 3, "{}", run.stderr);
    assert!(
        run.stderr.contains("_headers") && run.stderr.contains("line 2"),
        "{}",
        run.stderr
    );
}

/// The distribution's default behaviour's function associations, and its
/// custom error responses, as moto keeps them.
/// (event type, function ARN) and (error code, page, response code).
type EdgeState = (Vec<(String, String)>, Vec<(i32, String, String)>);

fn edge_state(b: &Bucket, dist: &str) -> EdgeState {
    let out =
        b.rt.block_on(cf_client().get_distribution_config().id(dist).send())
            .unwrap();
    let c = out.distribution_config().unwrap();
    let fa = c
        .default_cache_behavior()
        .and_then(|d| d.function_associations())
        .map(|f| {
            f.items()
                .iter()
                .map(|a| {
                    (
                        a.event_type().as_str().to_string(),
                        a.function_arn().to_string(),
                    )
                })
                .collect()
        })
        .unwrap_or_default();
    let errors = c
        .custom_error_responses()
        .map(|e| {
            e.items()
                .iter()
                .map(|r| {
                    (
                        r.error_code(),
                        r.response_page_path().unwrap_or("").to_string(),
                        r.response_code().unwrap_or("").to_string(),
                    )
                })
                .collect()
        })
        .unwrap_or_default();
    (fa, errors)
}

fn live_code(b: &Bucket, name: &str) -> String {
    let out =
        b.rt.block_on(
            cf_client()
                .get_function()
                .name(name)
                .stage(aws_sdk_cloudfront::types::FunctionStage::Live)
                .send(),
        )
        .unwrap();
    String::from_utf8(out.function_code().unwrap().as_ref().to_vec()).unwrap()
}

#[test]
fn cloudfront_runs_the_routing_and_a_rollback_restores_it() {
    let b = Bucket::moto("edge");
    let dist = distribution(&b, "/www");
    let site = Site::new(&[
        ("index.html", b"<h1>home</h1>"),
        ("404.html", b"<h1>404</h1>"),
        ("blog/index.html", b"<h1>blog</h1>"),
        ("_redirects", b"/old /blog/ 301\n"),
        (
            "_headers",
            b"/*\n  Strict-Transport-Security: max-age=63072000\n",
        ),
    ]);
    let (dir, to, moto) = (path_str(site.path()), b.url("www"), moto_endpoint());
    let mut args = with_cdn(publish_args(&dir, &to), &dist);
    args.push(&moto);
    let r1 = cdnsync_moto(&args).ok_json();
    let edge = &r1["routing"]["edge"][0];
    assert_eq!(edge["changed"], true, "{r1:#}");
    let (fa, errors) = edge_state(&b, &dist);
    let names: Vec<&str> = fa.iter().map(|(e, _)| e.as_str()).collect();
    assert_eq!(names, ["viewer-request", "viewer-response"], "{fa:?}");
    assert!(
        fa[0].1.ends_with(&format!("cdnsync-{dist}-request")),
        "{fa:?}"
    );
    assert_eq!(
        errors,
        [
            (403, "/404.html".to_string(), "404".to_string()),
            (404, "/404.html".to_string(), "404".to_string())
        ]
    );
    let v1 = live_code(&b, &format!("cdnsync-{dist}-request"));
    assert!(v1.contains("\"/old\",\"/blog/\",301"), "{v1}");
    assert!(
        v1.contains("var B='';") || v1.contains("var B=\"\";"),
        "site at the origin's root"
    );

    // Nothing changed: the edge is checked, not rewritten.
    let r2 = cdnsync_moto(&args).ok_json();
    assert_eq!(r2["noop"], true);
    assert_eq!(r2["routing"]["edge"][0]["changed"], false, "{r2:#}");

    // A new redirect: a new release, the function updated.
    site.write("_redirects", b"/old /blog/ 301\n/older /blog/ 308\n");
    let r3 = cdnsync_moto(&args).ok_json();
    assert_eq!(r3["noop"], false, "routing alone makes a release: {r3:#}");
    assert_eq!(r3["routing"]["changed"], true);
    let v3 = live_code(&b, &format!("cdnsync-{dist}-request"));
    assert!(v3.contains("/older"), "{v3}");

    // Rollback: the routing comes back with the pages.
    let mut rollback = with_cdn(vec!["rollback", "--to", &to, "--json"], &dist);
    rollback.push(&moto);
    let rb = cdnsync_moto(&rollback).ok_json();
    assert_eq!(rb["routing"][0]["changed"], true, "{rb:#}");
    assert_eq!(live_code(&b, &format!("cdnsync-{dist}-request")), v1);
}

#[test]
fn a_foreign_function_is_left_alone_and_the_publish_says_so() {
    let b = Bucket::moto("foreign");
    let dist = distribution(&b, "/www");
    // Someone else's viewer-request function on the behaviour.
    let rt = &b.rt;
    let cf = cf_client();
    let created = rt
        .block_on(
            cf.create_function()
                .name(format!("theirs-{}", b.name))
                .function_config(
                    aws_sdk_cloudfront::types::FunctionConfig::builder()
                        .comment("theirs")
                        .runtime(aws_sdk_cloudfront::types::FunctionRuntime::CloudfrontJs20)
                        .build()
                        .unwrap(),
                )
                .function_code(aws_sdk_cloudfront::primitives::Blob::new(
                    b"function handler(e){return e.request}".to_vec(),
                ))
                .send(),
        )
        .unwrap();
    let arn = created
        .function_summary()
        .unwrap()
        .function_metadata()
        .unwrap()
        .function_arn()
        .to_string();
    let got = rt
        .block_on(cf.get_distribution_config().id(&dist).send())
        .unwrap();
    let mut config = got.distribution_config().unwrap().clone();
    config
        .default_cache_behavior
        .as_mut()
        .unwrap()
        .function_associations = Some(
        aws_sdk_cloudfront::types::FunctionAssociations::builder()
            .quantity(1)
            .items(
                aws_sdk_cloudfront::types::FunctionAssociation::builder()
                    .function_arn(&arn)
                    .event_type(aws_sdk_cloudfront::types::EventType::ViewerRequest)
                    .build()
                    .unwrap(),
            )
            .build()
            .unwrap(),
    );
    rt.block_on(
        cf.update_distribution()
            .id(&dist)
            .if_match(got.e_tag().unwrap())
            .distribution_config(config)
            .send(),
    )
    .unwrap();

    let site = Site::new(&[("index.html", b"<h1>home</h1>"), ("blog/index.html", b"b")]);
    let (dir, to, moto) = (path_str(site.path()), b.url("www"), moto_endpoint());
    let mut args = with_cdn(publish_args(&dir, &to), &dist);
    args.push(&moto);
    let run = cdnsync_moto(&args).run();
    assert_ne!(run.code, 0, "a routing failure is not a success");
    let r: Value = serde_json::from_str(&run.stdout).unwrap();
    let failures = r["cdn_failures"].to_string();
    assert!(
        failures.contains("will not replace it") && failures.contains("theirs"),
        "{failures}"
    );
    // The release is live; their function is still there.
    assert_eq!(r["noop"], false);
    let (fa, _) = edge_state(&b, &dist);
    assert_eq!(fa, [("viewer-request".to_string(), arn)]);
}

/// `cdnsync doctor`'s severity of each site check on `dist`.
fn doctor_site(to: &str, dist: &str) -> std::collections::BTreeMap<String, String> {
    let moto = moto_endpoint();
    let r = cdnsync_moto(&[
        "doctor",
        "--to",
        to,
        "--json",
        "--distribution-id",
        dist,
        "--cdn-endpoint-url",
        &moto,
    ])
    .run();
    let j = r.json();
    j["findings"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|f| {
            [
                "directory-index",
                "error-404",
                "routing-drift",
                "security-headers",
            ]
            .contains(&f["check"].as_str().unwrap())
        })
        .map(|f| {
            (
                f["check"].as_str().unwrap().to_string(),
                f["severity"].as_str().unwrap().to_string(),
            )
        })
        .collect()
}

fn all(severity: &str) -> std::collections::BTreeMap<String, String> {
    [
        "directory-index",
        "error-404",
        "routing-drift",
        "security-headers",
    ]
    .iter()
    .map(|c| (c.to_string(), severity.to_string()))
    .collect()
}

#[test]
fn routing_off_takes_cdnsyncs_functions_off_and_doctor_checks_the_edge() {
    let b = Bucket::moto("edgeoff");
    let dist = distribution(&b, "/www");
    let site = Site::new(&[
        ("index.html", b"<h1>home</h1>"),
        ("404.html", b"<h1>404</h1>"),
        ("blog/index.html", b"<h1>blog</h1>"),
        (
            "_headers",
            b"/*\n  Strict-Transport-Security: max-age=63072000\n",
        ),
    ]);
    let (dir, to, moto) = (path_str(site.path()), b.url("www"), moto_endpoint());
    let mut args = with_cdn(publish_args(&dir, &to), &dist);
    args.push(&moto);
    cdnsync_moto(&args).ok_json();
    assert_eq!(doctor_site(&to, &dist), all("ok"));

    // Someone takes the functions off by hand: drift, which the next
    // publish (a no-op) repairs.
    let cf = cf_client();
    let got =
        b.rt.block_on(cf.get_distribution_config().id(&dist).send())
            .unwrap();
    let mut config = got.distribution_config().unwrap().clone();
    config
        .default_cache_behavior
        .as_mut()
        .unwrap()
        .function_associations = None;
    b.rt.block_on(
        cf.update_distribution()
            .id(&dist)
            .if_match(got.e_tag().unwrap())
            .distribution_config(config)
            .send(),
    )
    .unwrap();
    assert_eq!(doctor_site(&to, &dist)["routing-drift"], "warning");
    let r = cdnsync_moto(&args).ok_json();
    assert_eq!(r["noop"], true);
    assert_eq!(r["routing"]["edge"][0]["changed"], true, "{r:#}");
    assert_eq!(doctor_site(&to, &dist), all("ok"));

    // Routing turned off: cdnsync's functions come off the behaviour, and
    // doctor says what that breaks.
    let mut off = args.clone();
    off.push("--no-routing");
    let r = cdnsync_moto(&off).ok_json();
    assert_eq!(r["routing_removed"], json!([dist]), "{r:#}");
    assert!(edge_state(&b, &dist).0.is_empty());
    let d = doctor_site(&to, &dist);
    assert_eq!(d["directory-index"], "warning", "{d:?}");
    assert_eq!(d["security-headers"], "warning", "{d:?}");
    assert_eq!(d["routing-drift"], "ok", "{d:?}");

    // On again, then a rollback to the release without routing takes the
    // functions off again.
    let r = cdnsync_moto(&args).ok_json();
    assert_eq!(r["routing"]["edge"][0]["changed"], true, "{r:#}");
    assert_eq!(edge_state(&b, &dist).0.len(), 2);
    let mut rollback = with_cdn(vec!["rollback", "--to", &to, "--json"], &dist);
    rollback.push(&moto);
    let rb = cdnsync_moto(&rollback).ok_json();
    assert_eq!(rb["routing"][0]["changed"], true, "{rb:#}");
    assert!(edge_state(&b, &dist).0.is_empty());
}

/// The LIVE request function's KeyValueStore ARN, and everything it holds.
fn store_of(b: &Bucket, dist: &str) -> (String, serde_json::Map<String, Value>) {
    let name = format!("cdnsync-{dist}-request");
    let live =
        b.rt.block_on(
            cf_client()
                .describe_function()
                .name(&name)
                .stage(aws_sdk_cloudfront::types::FunctionStage::Live)
                .send(),
        )
        .unwrap();
    let arn = live
        .function_summary()
        .unwrap()
        .function_config()
        .unwrap()
        .key_value_store_associations()
        .expect("the function is associated with a store")
        .items()[0]
        .key_value_store_arn()
        .to_string();
    // The emulator's data plane (scripts/moto-server.py), read unsigned.
    let arn_path =
        percent_encoding::utf8_percent_encode(&arn, percent_encoding::NON_ALPHANUMERIC).to_string();
    let mut all = serde_json::Map::new();
    let mut token: Option<String> = None;
    loop {
        let mut url = format!(
            "{}/key-value-stores/{arn_path}/keys?MaxResults=50",
            moto_endpoint()
        );
        if let Some(t) = &token {
            url.push_str(&format!("&NextToken={t}"));
        }
        let got = http("GET", &url, &[]);
        assert_eq!(got.status, 200, "{}", String::from_utf8_lossy(&got.body));
        let page: Value = serde_json::from_slice(&got.body).unwrap();
        for i in page["Items"].as_array().unwrap() {
            all.insert(i["Key"].as_str().unwrap().to_string(), i["Value"].clone());
        }
        token = page["NextToken"].as_str().map(str::to_string);
        if token.is_none() {
            break;
        }
    }
    (arn, all)
}

/// The versions a store holds (key prefixes).
fn versions(store: &serde_json::Map<String, Value>) -> std::collections::BTreeSet<String> {
    store
        .keys()
        .filter_map(|k| k.split_once('/').map(|(v, _)| v.to_string()))
        .collect()
}

fn redirects_file(n: usize, to: &str) -> String {
    let mut s = String::from("/legacy/:slug /blog/:slug 301\n");
    for i in 0..n {
        s.push_str(&format!("/old/page-{i} /{to}/page-{i} 301\n"));
    }
    s
}

#[test]
fn redirects_too_many_for_the_function_live_in_a_key_value_store() {
    let b = Bucket::moto("kvs");
    let dist = distribution(&b, "/www");
    let site = Site::new(&[
        ("index.html", b"<h1>home</h1>"),
        ("404.html", b"<h1>404</h1>"),
        ("blog/index.html", b"<h1>blog</h1>"),
        ("_redirects", redirects_file(1000, "new").as_bytes()),
    ]);
    let (dir, to, moto) = (path_str(site.path()), b.url("www"), moto_endpoint());
    let mut args = with_cdn(publish_args(&dir, &to), &dist);
    args.push(&moto);
    let r1 = cdnsync_moto(&args).ok_json();
    let rt = &r1["routing"];
    assert_eq!(rt["kvs_keys"], 1000, "{rt:#}");
    assert!(rt["request_bytes"].as_u64().unwrap() <= 10_240);
    assert_eq!(rt["edge"][0]["changed"], true);
    let (arn, store1) = store_of(&b, &dist);
    assert!(arn.contains(":key-value-store/"), "{arn}");
    assert_eq!(
        store1.len(),
        1001,
        "the redirects and the record of versions"
    );
    let live = live_code(&b, &format!("cdnsync-{dist}-request"));
    assert!(live.starts_with("import cf from 'cloudfront';"), "{live}");

    // The live function with the live store answers as `serve` does.
    let (_t, out) = tmp_target();
    let local = path_str(&out);
    cdnsync(&["publish", &dir, "--to", &local, "--json"]).ok_json();
    let cases = json!([
        ["GET", "/old/page-0", ""],
        ["GET", "/old/page-999", "a=1"],
        ["GET", "/old/page-7/", ""],
        ["GET", "/old/page-1000", ""],
        ["GET", "/legacy/hello", ""],
        ["GET", "/blog", ""],
        ["GET", "/blog/", ""],
        ["GET", "/", ""],
        ["GET", "/nope", ""],
        ["HEAD", "/old/page-5", ""],
    ]);
    let edge = run_node_code(&live, None, &Value::Object(store1.clone()), &cases);
    assert_eq!(edge[0]["location"], "/new/page-0", "{edge:?}");
    assert_eq!(edge[1]["location"], "/new/page-999?a=1", "{edge:?}");
    assert_serve_matches(&out, &cases, &edge);

    // Nothing changed: the store is checked, not rewritten.
    let r2 = cdnsync_moto(&args).ok_json();
    assert_eq!(r2["noop"], true);
    assert_eq!(r2["routing"]["edge"][0]["changed"], false, "{r2:#}");

    // New targets: the new version goes in before the function that reads
    // it; the live one and the one before stay (edges take minutes to run
    // a new function), older ones go.
    site.write("_redirects", redirects_file(1000, "v2").as_bytes());
    let r3 = cdnsync_moto(&args).ok_json();
    assert_eq!(r3["routing"]["changed"], true);
    let (arn3, store3) = store_of(&b, &dist);
    assert_eq!(arn3, arn, "one store per distribution");
    assert_eq!(versions(&store3).len(), 2, "new and previous");
    assert_eq!(store3.len(), 2001, "and the record of versions");
    for v in ["v3", "v4"] {
        site.write("_redirects", redirects_file(1000, v).as_bytes());
        cdnsync_moto(&args).ok_json();
    }
    let (_, store4) = store_of(&b, &dist);
    assert_eq!(versions(&store4).len(), 3, "the oldest version is deleted");
    assert!(versions(&store4).is_disjoint(&versions(&store1)));

    // Rollback: the v3 function reads v3 keys, still there.
    let mut rollback = with_cdn(vec!["rollback", "--to", &to, "--json"], &dist);
    rollback.push(&moto);
    cdnsync_moto(&rollback).ok_json();
    let live = live_code(&b, &format!("cdnsync-{dist}-request"));
    let (_, store5) = store_of(&b, &dist);
    let edge = run_node_code(
        &live,
        None,
        &Value::Object(store5),
        &json!([["GET", "/old/page-3", ""]]),
    );
    assert_eq!(edge[0]["location"], "/v3/page-3", "{edge:?}");
}

#[test]
fn a_dry_run_shows_the_routing_and_writes_nothing_to_cloudfront() {
    let b = Bucket::moto("edgedry");
    let dist = distribution(&b, "/www");
    let site = Site::new(&[
        ("index.html", b"<h1>home</h1>"),
        ("blog/index.html", b"<h1>blog</h1>"),
        ("_redirects", b"/old /blog/ 301\n"),
    ]);
    let (dir, to, moto) = (path_str(site.path()), b.url("www"), moto_endpoint());
    let before = edge_state(&b, &dist);
    let mut args = with_cdn(publish_args(&dir, &to), &dist);
    args.extend([moto.as_str(), "--dry-run"]);
    let r = cdnsync_moto(&args).ok_json();
    assert_eq!(r["routing"]["changed"], true, "{r:#}");
    assert_eq!(r["routing"]["redirects"], 1);
    assert!(r["routing"]["edge"].as_array().unwrap().is_empty(), "{r:#}");
    // No function, no association, no error response, no object.
    let name = format!("cdnsync-{dist}-request");
    let got =
        b.rt.block_on(cf_client().describe_function().name(&name).send());
    assert!(got.is_err(), "a dry run created {name}");
    assert_eq!(edge_state(&b, &dist), before);
    assert!(b.keys("www").is_empty());
}

/// Change the distribution's config by hand (as its owner would).
fn edit_distribution(
    b: &Bucket,
    dist: &str,
    f: impl FnOnce(&mut aws_sdk_cloudfront::types::DistributionConfig),
) {
    let cf = cf_client();
    let got =
        b.rt.block_on(cf.get_distribution_config().id(dist).send())
            .unwrap();
    let mut config = got.distribution_config().unwrap().clone();
    f(&mut config);
    b.rt.block_on(
        cf.update_distribution()
            .id(dist)
            .if_match(got.e_tag().unwrap())
            .distribution_config(config)
            .send(),
    )
    .unwrap();
}

#[test]
fn what_others_run_on_the_distribution_is_left_alone() {
    use aws_sdk_cloudfront::types::{
        CustomErrorResponse, CustomErrorResponses, EventType, LambdaFunctionAssociation,
        LambdaFunctionAssociations,
    };
    let b = Bucket::moto("shared");
    let dist = distribution(&b, "/www");
    let moto = moto_endpoint();
    // The owner's SPA answer for 403 stays; 404 gets the 404 page.
    edit_distribution(&b, &dist, |c| {
        c.custom_error_responses = Some(
            CustomErrorResponses::builder()
                .quantity(1)
                .items(
                    CustomErrorResponse::builder()
                        .error_code(403)
                        .response_page_path("/index.html")
                        .response_code("200")
                        .build()
                        .unwrap(),
                )
                .build()
                .unwrap(),
        );
    });
    let site = Site::new(&[
        ("index.html", b"<h1>home</h1>"),
        ("404.html", b"<h1>404</h1>"),
        ("blog/index.html", b"<h1>blog</h1>"),
    ]);
    let dir = path_str(site.path());
    let publish = |to: &str, extra: &[&str]| {
        let mut args = with_cdn(publish_args(&dir, to), &dist);
        args.push(&moto);
        args.extend(extra);
        cdnsync_moto(&args).run()
    };
    let (to_a, to_b) = (b.url("www/a"), b.url("www/b"));
    assert_eq!(publish(&to_a, &[]).code, 0);
    let (fa, errors) = edge_state(&b, &dist);
    assert_eq!(fa.len(), 1);
    assert_eq!(
        errors,
        [
            (403, "/index.html".to_string(), "200".to_string()),
            (404, "/a/404.html".to_string(), "404".to_string())
        ]
    );
    // A second site on the same behaviours: refused, the first untouched;
    // turning its routing off does not take the first site's away.
    let code_a = live_code(&b, &format!("cdnsync-{dist}-request"));
    let r = publish(&to_b, &[]);
    assert_eq!(r.code, 8, "{}", r.stderr);
    assert!(
        r.stderr.contains("already routes the site under `/a`"),
        "{}",
        r.stderr
    );
    assert_eq!(live_code(&b, &format!("cdnsync-{dist}-request")), code_a);
    assert_eq!(publish(&to_b, &["--no-routing"]).code, 0);
    assert_eq!(edge_state(&b, &dist).0, fa);

    // A Lambda@Edge on viewer requests: refused before anything is written.
    edit_distribution(&b, &dist, |c| {
        let d = c.default_cache_behavior.as_mut().unwrap();
        d.function_associations = None;
        d.lambda_function_associations = Some(
            LambdaFunctionAssociations::builder()
                .quantity(1)
                .items(
                    LambdaFunctionAssociation::builder()
                        .lambda_function_arn(
                            "arn:aws:lambda:us-east-1:123456789012:function:edge:1",
                        )
                        .event_type(EventType::ViewerRequest)
                        .build()
                        .unwrap(),
                )
                .build()
                .unwrap(),
        );
    });
    site.write("index.html", b"<h1>home v2</h1>");
    let r = publish(&to_a, &[]);
    assert_eq!(r.code, 8, "{}", r.stderr);
    assert!(r.stderr.contains("Lambda@Edge"), "{}", r.stderr);
    assert!(edge_state(&b, &dist).0.is_empty());
}
