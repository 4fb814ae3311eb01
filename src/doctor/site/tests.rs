//! The site checks, one fact changed at a time.

use super::*;
use crate::doctor::{BehaviorFacts, ErrorResponseFacts, FunctionFacts};
use crate::routing::{HeaderRule, Routing};

const KEYS: [&str; 4] = ["index.html", "404.html", "blog/index.html", "app.js"];

fn routed(settings: &Routing) -> SiteFacts {
    let c = crate::routing::function::compile(settings, &KEYS).unwrap();
    SiteFacts {
        release: "r1".into(),
        directory_pages: 1,
        example_page: Some("blog/index.html".into()),
        has_404_page: true,
        routing: Some(crate::routing::edge_of(&c, settings, "")),
        hsts: settings.headers.iter().any(|h| {
            h.headers
                .iter()
                .any(|(n, _)| n == "Strict-Transport-Security")
        }),
    }
}

fn settings() -> Routing {
    Routing {
        not_found: Some("404.html".into()),
        headers: vec![HeaderRule {
            path: "/*".into(),
            headers: vec![("Strict-Transport-Security".into(), "max-age=1".into())],
        }],
        ..Routing::default()
    }
}

fn function(event: &str, code: &str) -> FunctionFacts {
    let kind = event.trim_start_matches("viewer-");
    FunctionFacts {
        event: event.into(),
        arn: format!("arn:aws:cloudfront::1:function/cdnsync-E1-{kind}"),
        live_comment: Ok(Some(code_id(code))),
    }
}

/// A distribution running exactly `site`'s routing.
fn in_step(site: &SiteFacts) -> DistributionFacts {
    let r = site.routing.as_ref().unwrap();
    DistributionFacts {
        id: "E1".into(),
        domain: "d.cloudfront.net".into(),
        origins: vec![OriginFacts {
            id: "o".into(),
            domain: "site.s3.us-east-1.amazonaws.com".into(),
            path: String::new(),
            oac: Some("oac".into()),
            oai: None,
            s3_origin: true,
            custom_origin: false,
        }],
        behaviors: vec![BehaviorFacts {
            path_pattern: "*".into(),
            target_origin: "o".into(),
            viewer_protocol_policy: "redirect-to-https".into(),
            compress: true,
            functions: std::iter::once(function("viewer-request", &(r.with_base)(&r.request, "")))
                .chain(
                    r.response
                        .as_deref()
                        .map(|c| function("viewer-response", &(r.with_base)(c, ""))),
                )
                .collect(),
            response_headers_policy: None,
        }],
        price_class: "PriceClass_All".into(),
        default_root_object: "index.html".into(),
        error_responses: [403, 404]
            .into_iter()
            .map(|code| ErrorResponseFacts {
                code,
                page: "/404.html".into(),
                response_code: "404".into(),
            })
            .collect(),
    }
}

fn sev(f: &[Finding], check: &str) -> Option<Severity> {
    f.iter().find(|x| x.check == check).map(|x| x.severity)
}

#[test]
fn a_site_the_edge_runs_exactly_passes() {
    let site = routed(&settings());
    let f = assess_site("site", "", &in_step(&site), &site);
    for check in [
        "directory-index",
        "error-404",
        "routing-drift",
        "security-headers",
    ] {
        assert_eq!(sev(&f, check), Some(Severity::Ok), "{check}: {f:#?}");
    }
}

#[test]
fn directory_pages_without_routing_behind_a_rest_origin_warn() {
    let site = routed(&settings());
    let d = in_step(&site);
    let off = SiteFacts {
        routing: None,
        hsts: false,
        ..site
    };
    let f = assess_site("site", "", &d, &off);
    assert_eq!(
        sev(&f, "directory-index"),
        Some(Severity::Warning),
        "{f:#?}"
    );
    let msg = &f
        .iter()
        .find(|x| x.check == "directory-index")
        .unwrap()
        .summary;
    assert!(
        msg.contains("blog/index.html") && msg.contains("/blog/"),
        "{msg}"
    );
    // cdnsync's functions still on the edge are drift.
    assert_eq!(sev(&f, "routing-drift"), Some(Severity::Warning));
    // A website endpoint has index documents.
    let mut web = d.clone();
    web.origins[0].domain = "site.s3-website-us-east-1.amazonaws.com".into();
    let f = assess_site("site", "", &web, &off);
    assert_eq!(sev(&f, "directory-index"), Some(Severity::Ok));
}

#[test]
fn missing_error_responses_warn_with_the_fix() {
    let site = routed(&settings());
    let mut d = in_step(&site);
    d.error_responses.retain(|e| e.code == 404);
    let f = assess_site("site", "", &d, &site);
    let e = f.iter().find(|x| x.check == "error-404").unwrap();
    assert_eq!(e.severity, Severity::Warning);
    assert!(e.summary.contains("403"), "{}", e.summary);
    assert!(e.fix.as_deref().unwrap().contains("publish again"));
    // No 404 page at all: said, not a warning.
    let none = SiteFacts {
        routing: None,
        has_404_page: false,
        ..routed(&settings())
    };
    let f = assess_site("site", "", &d, &none);
    assert_eq!(sev(&f, "error-404"), Some(Severity::Info));
}

#[test]
fn missing_hsts_warns_and_a_policy_with_it_passes() {
    let plain = Routing {
        headers: Vec::new(),
        ..settings()
    };
    let site = routed(&plain);
    let mut d = in_step(&site);
    assert_eq!(d.behaviors[0].functions.len(), 1);
    let f = assess_site("site", "", &d, &site);
    assert_eq!(
        sev(&f, "security-headers"),
        Some(Severity::Warning),
        "{f:#?}"
    );
    assert_eq!(sev(&f, "routing-drift"), Some(Severity::Ok), "{f:#?}");
    d.behaviors[0].response_headers_policy = Some(crate::doctor::HeadersPolicyFacts {
        id: "67f7725c-6f97-4210-82d7-5512b31e9d03".into(),
        hsts: Ok(Some(true)),
    });
    let f = assess_site("site", "", &d, &site);
    assert_eq!(sev(&f, "security-headers"), Some(Severity::Ok));
}

#[test]
fn an_older_function_a_foreign_one_or_none_is_drift() {
    let site = routed(&settings());
    let mut old = in_step(&site);
    old.behaviors[0].functions[0].live_comment = Ok(Some("cdnsync 0000".into()));
    let mut foreign = in_step(&site);
    foreign.behaviors[0].functions[0].arn = "arn:aws:cloudfront::1:function/theirs".into();
    let mut missing = in_step(&site);
    missing.behaviors[0].functions.clear();
    for (what, d) in [("old", old), ("foreign", foreign), ("missing", missing)] {
        let f = assess_site("site", "", &d, &site);
        let x = f.iter().find(|x| x.check == "routing-drift").unwrap();
        assert_eq!(x.severity, Severity::Warning, "{what}: {x:?}");
        assert!(
            x.fix.as_deref().unwrap().contains("cdnsync publish"),
            "{what}"
        );
    }
    // A site under /docs of the origin: the base is part of the code.
    let mut sub = in_step(&site);
    sub.origins[0].path = String::new();
    let f = assess_site("site", "docs", &sub, &site);
    assert_eq!(sev(&f, "routing-drift"), Some(Severity::Warning), "{f:#?}");
}

#[test]
fn a_function_of_their_own_is_not_taken_for_missing_routing() {
    let site = routed(&settings());
    let mut d = in_step(&site);
    d.behaviors[0].functions = vec![FunctionFacts {
        event: "viewer-request".into(),
        arn: "arn:aws:cloudfront::1:function/their-index".into(),
        live_comment: Ok(None),
    }];
    let off = SiteFacts {
        routing: None,
        hsts: false,
        ..site
    };
    let f = assess_site("site", "", &d, &off);
    assert_eq!(sev(&f, "directory-index"), Some(Severity::Info), "{f:#?}");
    // Their function is not cdnsync's: no drift either.
    assert_eq!(sev(&f, "routing-drift"), Some(Severity::Ok), "{f:#?}");
}
