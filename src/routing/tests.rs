//! Routing decisions, rule syntax and the function's size, as tables.

use super::*;

fn site() -> Vec<&'static str> {
    vec![
        "index.html",
        "404.html",
        "blog/index.html",
        "blog/post.html",
        "docs/intro/index.html",
        "about.html",
        "app.js",
        "v1.2/index.html",
    ]
}

fn serve(p: &str) -> Answer {
    Answer::Serve(p.to_string())
}

fn redirect(s: u16, l: &str) -> Answer {
    Answer::Redirect(s, l.to_string())
}

#[test]
fn directory_indexes_and_the_trailing_slash() {
    let keys = site();
    let add = Routing::default().table(keys.iter().copied(), true);
    assert_eq!(add.route("/", None), serve("/index.html"));
    assert_eq!(add.route("/blog/", None), serve("/blog/index.html"));
    assert_eq!(add.route("/blog", None), redirect(301, "/blog/"));
    assert_eq!(add.route("/blog", Some("a=1")), redirect(301, "/blog/?a=1"));
    assert_eq!(
        add.route("/docs/intro", None),
        redirect(301, "/docs/intro/")
    );
    assert_eq!(add.route("/v1.2", None), redirect(301, "/v1.2/"));
    // Not a directory: left to the origin (404 there).
    assert_eq!(add.route("/nope", None), serve("/nope"));
    assert_eq!(add.route("/app.js", None), serve("/app.js"));
    // No clean URLs unless asked.
    assert_eq!(add.route("/about", None), serve("/about"));

    let remove = Routing {
        trailing_slash: TrailingSlash::Remove,
        ..Routing::default()
    }
    .table(keys.iter().copied(), true);
    assert_eq!(remove.route("/blog/", Some("x")), redirect(301, "/blog?x"));
    assert_eq!(remove.route("/blog", None), serve("/blog/index.html"));
    assert_eq!(remove.route("/", None), serve("/index.html"));

    let keep = Routing {
        trailing_slash: TrailingSlash::Keep,
        ..Routing::default()
    }
    .table(keys.iter().copied(), true);
    assert_eq!(keep.route("/blog/", None), serve("/blog/index.html"));
    assert_eq!(keep.route("/blog", None), serve("/blog/index.html"));
}

#[test]
fn clean_urls_spa_and_the_heuristic() {
    let keys = site();
    let t = Routing {
        clean_urls: true,
        spa: Some("index.html".into()),
        ..Routing::default()
    }
    .table(keys.iter().copied(), true);
    assert_eq!(t.route("/about", None), serve("/about.html"));
    assert_eq!(t.route("/blog/post", None), serve("/blog/post.html"));
    assert_eq!(t.route("/users/42", None), serve("/index.html"));
    // Asset-looking paths never fall back to the app.
    assert_eq!(t.route("/missing.png", None), serve("/missing.png"));
    assert_eq!(t.route("/blog", None), redirect(301, "/blog/"));

    // Without the list: every extension-less path is a directory.
    let h = Routing::default().table(keys.iter().copied(), false);
    assert_eq!(h.route("/blog", None), redirect(301, "/blog/"));
    assert_eq!(h.route("/anything", None), redirect(301, "/anything/"));
    assert_eq!(h.route("/app.js", None), serve("/app.js"));
}

#[test]
fn redirects_placeholders_splats_and_rewrites() {
    let keys = site();
    let r = Routing {
        redirects: vec![
            rd("/old", "/blog/", 301),
            rd("/news/:year/:slug", "/blog/:year-:slug", 302),
            rd("/docs/*", "https://docs.example.com/:splat", 308),
            rd("/app/*", "/index.html", 200),
            rd("/about", "/elsewhere", 301),
        ],
        ..Routing::default()
    };
    let t = r.table(keys.iter().copied(), true);
    assert_eq!(t.route("/old", None), redirect(301, "/blog/"));
    assert_eq!(t.route("/old/", Some("q=1")), redirect(301, "/blog/?q=1"));
    assert_eq!(
        t.route("/news/2024/hi", None),
        redirect(302, "/blog/2024-hi")
    );
    assert_eq!(
        t.route("/docs/a/b%20c", None),
        redirect(308, "https://docs.example.com/a/b%20c")
    );
    assert_eq!(
        t.route("/docs", None),
        redirect(308, "https://docs.example.com/")
    );
    assert_eq!(t.route("/app/users/1", None), serve("/index.html"));
    // A rewrite never shadows a file.
    assert_eq!(t.route("/app/logo.png", None), serve("/app/logo.png"));
    // Redirects apply before files: exact unforced ones a file answers are
    // dropped when the table is made (see `shadowed`).
    let mut r2 = r.clone();
    let set: BTreeSet<&str> = keys.iter().copied().collect();
    assert!(r2.shadowed(&set).is_empty());
    r2.redirects.push(rd("/about.html", "/x", 301));
    r2.redirects.push(rd("/blog", "/x", 301));
    let dropped = r2.shadowed(&set);
    assert_eq!(
        dropped.iter().map(|d| d.from.as_str()).collect::<Vec<_>>(),
        ["/about.html", "/blog"]
    );
}

fn rd(from: &str, to: &str, status: u16) -> Redirect {
    Redirect {
        from: from.into(),
        to: to.into(),
        status,
        force: false,
    }
}

#[test]
fn percent_encoding_and_bad_escapes() {
    let keys = ["caf\u{e9}/index.html", "a b.html"];
    let t = Routing {
        clean_urls: true,
        ..Routing::default()
    }
    .table(keys.iter().copied(), true);
    assert_eq!(t.route("/caf%C3%A9", None), redirect(301, "/caf%C3%A9/"));
    assert_eq!(t.route("/a%20b", None), serve("/a%20b.html"));
    // A bad escape is matched as sent, as `decodeURIComponent` throws.
    assert_eq!(t.route("/%zz", None), serve("/%zz"));
    assert_eq!(decode("/%E9"), None);
    assert_eq!(encode("/a b/é"), "/a%20b/%C3%A9");
}

#[test]
fn headers_match_the_page_and_its_file() {
    let t = Routing {
        headers: vec![
            HeaderRule {
                path: "/*".into(),
                headers: vec![
                    (
                        "Strict-Transport-Security".into(),
                        "max-age=63072000".into(),
                    ),
                    ("X-Frame-Options".into(), "DENY".into()),
                ],
            },
            HeaderRule {
                path: "/blog/".into(),
                headers: vec![("x-frame-options".into(), "SAMEORIGIN".into())],
            },
        ],
        ..Routing::default()
    }
    .table(site().iter().copied(), true);
    let h = t.headers_for("/blog/index.html");
    assert_eq!(
        h,
        vec![
            (
                "strict-transport-security".to_string(),
                "max-age=63072000".to_string()
            ),
            ("x-frame-options".to_string(), "SAMEORIGIN".to_string())
        ]
    );
    assert_eq!(t.headers_for("/app.js").len(), 2);
}

#[test]
fn redirects_file_syntax_and_errors() {
    let text = "# comment\n/a /b\n/c /d 302\n/e/* /f/:splat 301!\n\n/g /index.html 200 # spa\n";
    let r = parse::parse_redirects(text).unwrap();
    assert_eq!(r.len(), 4);
    assert_eq!(r[0].status, 301);
    assert!(r[2].force);
    assert_eq!(r[3].status, 200);
    for (bad, line, why) in [
        ("/a\n", 1, "expected"),
        ("/a /b 404\n", 1, "404"),
        ("\n/a /b 301 Country=us\n", 2, "not supported"),
        ("/a?x=1 /b\n", 1, "query"),
        ("/a/*/b /c\n", 1, "last segment"),
        ("/a /b/:slug\n", 1, ":slug"),
        ("/a https://x.example/ 200\n", 1, "proxy"),
        ("a /b\n", 1, "starts with `/`"),
    ] {
        let (l, msg) = parse::parse_redirects(bad).unwrap_err();
        assert_eq!(l, line, "{bad}");
        assert!(msg.contains(why), "{bad}: {msg}");
    }
}

#[test]
fn headers_file_syntax_and_errors() {
    let text = "/*\n  X-Frame-Options: DENY\n  Content-Security-Policy: default-src 'self'\n# c\n/docs/*\n\tX-Robots-Tag: noindex\n";
    let h = parse::parse_headers(text).unwrap();
    assert_eq!(h.len(), 2);
    assert_eq!(h[0].headers[1].1, "default-src 'self'");
    for (bad, line) in [
        ("  X-A: b\n", 1),
        ("/*\n  no colon\n", 2),
        ("/*\n  Content-Length: 3\n", 2),
        ("/*\n  Bad Name: 3\n", 2),
    ] {
        assert_eq!(parse::parse_headers(bad).unwrap_err().0, line, "{bad}");
    }
}

#[test]
fn the_function_fits_or_says_why() {
    let keys: Vec<String> = (0..2000)
        .map(|i| format!("section-{i}/index.html"))
        .collect();
    let refs: Vec<&str> = keys.iter().map(String::as_str).collect();
    // Too many directories: the heuristic, which needs no list.
    let c = function::compile(&Routing::default(), &refs).unwrap();
    assert!(c.heuristic);
    assert!(c.request.len() <= FUNCTION_MAX);
    // With clean URLs the list is needed: a clear error.
    let e = function::compile(
        &Routing {
            clean_urls: true,
            ..Routing::default()
        },
        &refs,
    )
    .unwrap_err();
    assert!(
        e.contains("10240-byte limit") && e.contains("2000 directories"),
        "{e}"
    );
    // Small sites keep the list; the digest changes with the routing.
    let small = function::compile(&Routing::default(), &site()).unwrap();
    assert!(!small.heuristic);
    let other = function::compile(
        &Routing {
            trailing_slash: TrailingSlash::Keep,
            ..Routing::default()
        },
        &site(),
    )
    .unwrap();
    assert_ne!(small.digest, other.digest);
    assert!(small.response.is_none());
}

#[test]
fn records_read_back_are_validated() {
    let mut r = Routing {
        redirects: vec![rd("/a", "/b", 301)],
        ..Routing::default()
    };
    assert!(r.validate().is_ok());
    r.redirects[0].status = 404;
    assert!(r.validate().is_err());
    r.redirects[0].status = 301;
    r.spa = Some("../x".into());
    assert!(r.validate().is_err());
    r.spa = None;
    r.headers.push(HeaderRule {
        path: "/*".into(),
        headers: vec![("x".into(), "a\nb".into())],
    });
    assert!(r.validate().is_err());
}

/// `n` exact redirects `/old/page-i /new/page-i 301`.
fn many(n: usize) -> Vec<Redirect> {
    (0..n)
        .map(|i| rd(&format!("/old/page-{i}"), &format!("/new/page-{i}"), 301))
        .collect()
}

#[test]
fn too_many_exact_redirects_go_to_a_key_value_store() {
    // What fits without a store: the largest `_redirects` of this shape.
    let fits = |n| {
        function::compile(
            &Routing {
                redirects: many(n),
                ..Routing::default()
            },
            &site(),
        )
        .unwrap()
    };
    let mut n = 1;
    while fits(n + 1).kvs.is_none() {
        n += 1;
    }
    eprintln!("largest _redirects without a store: {n} lines");
    assert!(n > 150, "only {n} redirects fit the function");
    assert!(fits(n).request.len() <= FUNCTION_MAX);
    // One more: every exact redirect moves to the store; the function
    // keeps its directory list and reads the store first.
    let c = fits(n + 1);
    let kvs = c.kvs.as_ref().unwrap();
    assert_eq!(kvs.entries.len(), n + 1);
    assert!(!c.heuristic);
    assert!(c.request.starts_with("import cf from 'cloudfront';"));
    assert!(c.request.contains("async function handler"));
    assert!(!c.request.contains("/old/page-0"), "moved out of the code");
    assert_eq!(
        kvs.entries[&format!("{}/old/page-7", kvs.version)],
        r#"["/new/page-7",301]"#
    );
    // `serve` routes with every rule.
    assert_eq!(c.table.redirects.len(), n + 1);
    assert_eq!(
        c.table.route("/old/page-7/", None),
        redirect(301, "/new/page-7")
    );
    // 10,000 redirects: still one function, the store within its limit.
    let big = fits(10_000);
    assert!(big.request.len() <= FUNCTION_MAX);
    assert_eq!(big.kvs.as_ref().unwrap().entries.len(), 10_000);
    assert_ne!(big.digest, c.digest);
}

#[test]
fn the_store_never_changes_which_rule_wins() {
    let mut redirects = many(400);
    // A pattern before an exact rule it matches: that rule stays in the
    // function (the store is read first, so it must never answer there).
    redirects.insert(0, rd("/:section/page-3", "/by-pattern/:section", 301));
    // A rewrite stays in the function; a later duplicate loses.
    redirects.push(rd("/app/*", "/index.html", 200));
    redirects.push(rd("/old/page-9", "/duplicate", 301));
    redirects.push(rd("/other/x", "/y", 308));
    let r = Routing {
        redirects,
        ..Routing::default()
    };
    let c = function::compile(&r, &site()).unwrap();
    let kvs = c.kvs.as_ref().unwrap();
    let key = |p: &str| format!("{}{p}", kvs.version);
    assert!(!kvs.entries.contains_key(&key("/old/page-3")));
    assert!(c.request.contains("/old/page-3"));
    assert_eq!(kvs.entries[&key("/old/page-9")], r#"["/new/page-9",301]"#);
    assert_eq!(kvs.entries[&key("/other/x")], r#"["/y",308]"#);
    assert_eq!(kvs.entries.len(), 400);
    assert!(c.request.contains("/by-pattern/:section"));
    assert!(c.request.contains("/app/*"));
    // serve agrees: the pattern wins for /old/page-3, the first for page-9.
    assert_eq!(
        c.table.route("/old/page-3", None),
        redirect(301, "/by-pattern/old")
    );
    assert_eq!(
        c.table.route("/old/page-9", None),
        redirect(301, "/new/page-9")
    );
}

#[test]
fn no_redirect_leaves_the_site() {
    // A splat or a request path starting with `//` would be a
    // protocol-relative Location to another host.
    let r = Routing {
        redirects: vec![
            rd("/go/*", "/:splat", 302),
            rd("/cdn/*", "//cdn.example.com/:splat", 301),
        ],
        ..Routing::default()
    };
    let keys = site();
    let t = r.table(keys.iter().copied(), true);
    assert_eq!(t.route("/go//evil.com", None), redirect(302, "/evil.com"));
    assert_eq!(t.route("/go/a/b", None), redirect(302, "/a/b"));
    // Written protocol-relative by the site's owner: kept.
    assert_eq!(
        t.route("/cdn/x.js", None),
        redirect(301, "//cdn.example.com/x.js")
    );
    let heuristic = r.table(keys.iter().copied(), false);
    assert_eq!(
        heuristic.route("//evil.com/x", None),
        redirect(301, "/evil.com/x/")
    );
    assert_eq!(
        heuristic.route("/\\evil.com/x", None),
        redirect(301, "/evil.com/x/")
    );
    let remove = Routing {
        trailing_slash: TrailingSlash::Remove,
        ..Routing::default()
    }
    .table(keys.iter().copied(), false);
    assert_eq!(
        remove.route("//evil.com/", None),
        redirect(301, "/evil.com")
    );
}
