//! `cdnsync doctor`'s checks of the live site on the edge: directory
//! indexes behind an S3 REST origin, the 404 error responses, security
//! headers (HSTS) and drift between the live release's routing and the
//! functions the distribution runs. Pure: facts in, findings out.

use super::{DistributionFacts, Finding, OriginFacts, Severity, finding, origin_kind};
use crate::cdn::EdgeRouting;
use crate::cdn::edge::{code_id, site_base};

/// What the live release needs from the edge.
#[derive(Debug, Clone)]
pub struct SiteFacts {
    /// The live release's id.
    pub release: String,
    /// How many pages are `dir/index.html` below the root.
    pub directory_pages: usize,
    /// One of them (a key), for the message.
    pub example_page: Option<String>,
    /// The release has a `404.html`.
    pub has_404_page: bool,
    /// The release's routing, as the edge must run it.
    pub routing: Option<EdgeRouting>,
    /// The routing sends Strict-Transport-Security on every path.
    pub hsts: bool,
}

impl SiteFacts {
    /// The facts of `rel` (a release read from the target under `prefix`).
    pub fn of(rel: &crate::release::Release, prefix: &str) -> SiteFacts {
        let keys = crate::release::live_keys(&rel.files);
        let dirs: Vec<&&str> = keys.iter().filter(|k| k.ends_with("/index.html")).collect();
        let routing = rel
            .routing
            .as_ref()
            .and_then(|r| crate::routing::edge(r, &keys, prefix).ok());
        let hsts = rel.routing.as_ref().is_some_and(|r| {
            r.settings.headers.iter().any(|h| {
                h.path == "/*"
                    && h.headers
                        .iter()
                        .any(|(n, _)| n.eq_ignore_ascii_case("strict-transport-security"))
            })
        });
        SiteFacts {
            release: rel.id.clone(),
            directory_pages: dirs.len(),
            example_page: dirs.first().map(ToString::to_string),
            has_404_page: keys.contains(&"404.html"),
            routing,
            hsts,
        }
    }
}

/// The site checks for one distribution in front of `bucket` (none when
/// no origin serves the bucket: `origin-access` says so).
pub fn assess_site(
    bucket: &str,
    prefix: &str,
    d: &DistributionFacts,
    site: &SiteFacts,
) -> Vec<Finding> {
    let ours: Vec<&OriginFacts> = d
        .origins
        .iter()
        .filter(|o| origin_kind(&o.domain, bucket).is_some())
        .collect();
    let origin = match (ours.as_slice(), d.origins.as_slice()) {
        ([one], _) => *one,
        ([], [one]) => one,
        _ => return Vec::new(),
    };
    let Some(base) = site_base(&origin.path, prefix) else {
        return Vec::new();
    };
    let website = origin_kind(&origin.domain, bucket) == Some(true);
    // A function of their own on viewer requests may do what cdnsync's
    // routing would: cdnsync cannot tell.
    let own_code = site.routing.is_none()
        && d.behaviors
            .iter()
            .filter(|b| b.target_origin == origin.id)
            .any(|b| {
                b.functions
                    .iter()
                    .any(|f| f.event == "viewer-request" && !f.arn.contains(":function/cdnsync-"))
            });
    let mut out: Vec<Finding> = [
        directory_index(site, website, own_code),
        error_pages(d, site, &base, website),
    ]
    .into_iter()
    .flatten()
    .collect();
    out.push(drift(d, origin, site, &base));
    out.push(security_headers(d, origin, site));
    out
}

/// The live release could not be read (`denied`: not allowed to): the
/// site checks cannot run.
pub fn unreadable_release(error: &str, denied: bool) -> Finding {
    if denied {
        return finding(
            "live-release",
            Severity::Info,
            format!("cannot read the live release, so the site checks were skipped: {error}"),
            Some(
                "run doctor with credentials that may read `<prefix>/.cdnsync/*` (s3:GetObject)"
                    .into(),
            ),
        );
    }
    finding(
        "live-release",
        Severity::Warning,
        format!("the live release is unreadable, so the site checks were skipped: {error}"),
        Some("run `cdnsync releases` to see the releases; `cdnsync rollback` to a good one, or publish again".into()),
    )
}

/// `dir/index.html` pages need routing behind a REST origin.
fn directory_index(site: &SiteFacts, website: bool, own_code: bool) -> Option<Finding> {
    if site.directory_pages == 0 {
        return None;
    }
    let example = site.example_page.as_deref().unwrap_or("dir/index.html");
    let dir = example.trim_end_matches("index.html");
    let n = site.directory_pages;
    Some(if site.routing.is_some() {
        finding(
            "directory-index",
            Severity::Ok,
            format!(
                "{n} directory page(s) (such as /{dir}) are answered by cdnsync's routing function"
            ),
            None,
        )
    } else if website {
        finding(
            "directory-index",
            Severity::Ok,
            format!(
                "{n} directory page(s) are answered by the S3 website endpoint's index documents"
            ),
            None,
        )
    } else if own_code {
        finding(
            "directory-index",
            Severity::Info,
            format!(
                "{n} page(s) are directory indexes (such as `{example}`) and a function of your own runs on viewer requests: check that it answers /{dir} with {example}"
            ),
            None,
        )
    } else {
        finding(
            "directory-index",
            Severity::Warning,
            format!(
                "{n} page(s) are directory indexes (such as `{example}`) but the live release {} has no routing: the S3 REST origin answers /{dir} and /{} with an error",
                site.release,
                dir.trim_end_matches('/')
            ),
            Some("publish with routing on (drop --no-routing or `[routing] enabled = false`): cdnsync then runs a function answering /dir/ with dir/index.html".into()),
        )
    })
}

/// 403 and 404 from S3 must answer with the 404 page, status 404.
fn error_pages(
    d: &DistributionFacts,
    site: &SiteFacts,
    base: &str,
    website: bool,
) -> Option<Finding> {
    // A website endpoint answers with its own ErrorDocument.
    if website && d.error_responses.is_empty() {
        return None;
    }
    let page = match &site.routing {
        Some(r) => r.not_found.as_ref().map(|p| format!("{base}{p}")),
        None => site.has_404_page.then(|| format!("{base}/404.html")),
    };
    let Some(page) = page else {
        return Some(finding(
            "error-404",
            Severity::Info,
            "the site has no 404 page: viewers of a missing page see S3's AccessDenied or CloudFront's error page",
            Some("add a 404.html to the site (cdnsync points the distribution's 403/404 error responses at it)".into()),
        ));
    };
    let answers = |code: i32| {
        d.error_responses
            .iter()
            .any(|e| e.code == code && e.page == page && e.response_code == "404")
    };
    let missing: Vec<String> = [403, 404]
        .into_iter()
        .filter(|c| !answers(*c))
        .map(|c| c.to_string())
        .collect();
    if missing.is_empty() {
        return Some(finding(
            "error-404",
            Severity::Ok,
            format!("403 and 404 from the origin answer with {page}, status 404"),
            None,
        ));
    }
    let fix = if site.routing.is_some() {
        "publish again: cdnsync sets the 403/404 error responses with the routing".to_string()
    } else {
        format!(
            "turn routing on (cdnsync then sets them), or add custom error responses 403 and 404 → {page} with response code 404"
        )
    };
    Some(finding(
        "error-404",
        Severity::Warning,
        format!(
            "distribution {}: {} from the origin do(es) not answer with the 404 page {page}: viewers of a missing page get an error from S3",
            d.id,
            missing.join(" and ")
        ),
        Some(fix),
    ))
}

/// The functions on the site's behaviours against the live release's
/// routing.
fn drift(d: &DistributionFacts, origin: &OriginFacts, site: &SiteFacts, base: &str) -> Finding {
    let expected: [(&str, Option<String>); 2] = match &site.routing {
        Some(r) => [
            (
                "viewer-request",
                Some(code_id(&(r.with_base)(&r.request, base))),
            ),
            (
                "viewer-response",
                r.response
                    .as_deref()
                    .map(|c| code_id(&(r.with_base)(c, base))),
            ),
        ],
        None => [("viewer-request", None), ("viewer-response", None)],
    };
    let ours = |arn: &str| arn.contains(&format!(":function/cdnsync-{}-", d.id));
    let mut problems = Vec::new();
    let mut unreadable = Vec::new();
    for b in d.behaviors.iter().filter(|b| b.target_origin == origin.id) {
        let what = if b.path_pattern == "*" {
            "the default behaviour".to_string()
        } else {
            format!("behaviour `{}`", b.path_pattern)
        };
        for (event, want) in &expected {
            let assoc = b.functions.iter().find(|f| f.event == *event);
            match (want, assoc) {
                (Some(_), None) => problems.push(format!("{what} runs no {event} function")),
                (Some(_), Some(f)) if !ours(&f.arn) => {
                    problems.push(format!("{what} runs {} on {event}", f.arn));
                }
                (Some(id), Some(f)) => match &f.live_comment {
                    Ok(Some(c)) if c == id => {}
                    Ok(_) => problems.push(format!(
                        "{what} runs another version of {} than the live release's",
                        f.arn
                    )),
                    Err(e) => unreadable.push(format!("{}: {e}", f.arn)),
                },
                (None, Some(f)) if ours(&f.arn) => problems.push(format!(
                    "{what} still runs cdnsync's {event} function {}, which the live release does not have",
                    f.arn
                )),
                (None, _) => {}
            }
        }
    }
    if !problems.is_empty() {
        return finding(
            "routing-drift",
            Severity::Warning,
            format!(
                "the edge does not run the live release {}'s routing: {}",
                site.release,
                problems.join("; ")
            ),
            Some("run `cdnsync publish` again (every publish, also a no-op, repairs the edge's routing)".into()),
        );
    }
    if !unreadable.is_empty() {
        return finding(
            "routing-drift",
            Severity::Info,
            format!("cannot read the live functions ({})", unreadable.join("; ")),
            Some("allow cloudfront:DescribeFunction to check them".into()),
        );
    }
    let summary = if site.routing.is_some() {
        format!("the edge runs the live release {}'s routing", site.release)
    } else {
        format!(
            "the live release {} has no routing and no cdnsync function runs",
            site.release
        )
    };
    finding("routing-drift", Severity::Ok, summary, None)
}

/// Strict-Transport-Security, from cdnsync's viewer-response function or a
/// response headers policy on the default behaviour.
fn security_headers(d: &DistributionFacts, origin: &OriginFacts, site: &SiteFacts) -> Finding {
    if site.hsts && site.routing.is_some() {
        return finding(
            "security-headers",
            Severity::Ok,
            "Strict-Transport-Security is sent on every path by cdnsync's viewer-response function",
            None,
        );
    }
    let policies: Vec<_> = d
        .behaviors
        .iter()
        .filter(|b| b.path_pattern == "*" && b.target_origin == origin.id)
        .filter_map(|b| b.response_headers_policy.as_ref())
        .collect();
    if let Some(p) = policies.iter().find(|p| matches!(p.hsts, Ok(Some(true)))) {
        return finding(
            "security-headers",
            Severity::Ok,
            format!(
                "Strict-Transport-Security is sent by response headers policy {}",
                p.id
            ),
            None,
        );
    }
    if let Some(p) = policies.iter().find(|p| p.hsts.is_err()) {
        return finding(
            "security-headers",
            Severity::Info,
            format!(
                "cannot tell whether response headers policy {} sends Strict-Transport-Security: {}",
                p.id,
                p.hsts.as_ref().err().map(String::as_str).unwrap_or("")
            ),
            Some("allow cloudfront:GetResponseHeadersPolicy to check it".into()),
        );
    }
    finding(
        "security-headers",
        Severity::Warning,
        "no Strict-Transport-Security (HSTS) header: browsers may reach the site over plain HTTP first",
        Some("add to the site's _headers: `/*` then `  Strict-Transport-Security: max-age=31536000; includeSubDomains` (cdnsync sends it from its viewer-response function), or attach a response headers policy such as Managed-SecurityHeadersPolicy to the default behaviour".into()),
    )
}

#[cfg(test)]
mod tests;
