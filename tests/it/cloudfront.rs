//! CloudFront invalidation against moto's emulator: only changed and deleted
//! stable-name paths, relative to the origin path, encoded, minimised, with
//! an idempotent caller reference, and `--wait`.

use aws_sdk_cloudfront::types::builders::DistributionConfigBuilder;
use aws_sdk_cloudfront::types::{
    CookiePreference, DefaultCacheBehavior, DistributionConfig, ForwardedValues, ItemSelection,
    Origin, Origins, S3OriginConfig, ViewerProtocolPolicy,
};

use crate::util::*;

pub(crate) fn cf_client() -> aws_sdk_cloudfront::Client {
    let conf = aws_sdk_cloudfront::Config::builder()
        .behavior_version_latest()
        .endpoint_url(moto_endpoint())
        .region(aws_sdk_cloudfront::config::Region::new("us-east-1"))
        .credentials_provider(aws_sdk_cloudfront::config::Credentials::new(
            "test", "test", None, None, "test",
        ))
        .build();
    aws_sdk_cloudfront::Client::from_conf(conf)
}

/// A distribution whose origin is `bucket` under `origin_path` (legacy
/// cache settings: what the emulator accepts).
pub(crate) fn distribution(b: &Bucket, origin_path: &str) -> String {
    let origin = Origin::builder()
        .id("s3")
        .domain_name(format!("{}.s3.us-east-1.amazonaws.com", b.name))
        .origin_path(origin_path)
        .s3_origin_config(S3OriginConfig::builder().origin_access_identity("").build())
        .build()
        .unwrap();
    create_distribution(
        b,
        &format!("test-{}", b.name),
        origin,
        legacy_behavior(ViewerProtocolPolicy::RedirectToHttps, None),
        |c| c.comment("cdnsync test"),
    )
}

/// The default cache behaviour for origin `s3` with the legacy forwarded
/// values the emulator requires.
#[allow(deprecated)]
pub(crate) fn legacy_behavior(
    vpp: ViewerProtocolPolicy,
    compress: Option<bool>,
) -> DefaultCacheBehavior {
    DefaultCacheBehavior::builder()
        .target_origin_id("s3")
        .viewer_protocol_policy(vpp)
        .set_compress(compress)
        .min_ttl(0)
        .forwarded_values(
            ForwardedValues::builder()
                .query_string(false)
                .cookies(
                    CookiePreference::builder()
                        .forward(ItemSelection::None)
                        .build()
                        .unwrap(),
                )
                .build()
                .unwrap(),
        )
        .build()
        .unwrap()
}

/// Create an enabled distribution with one origin; `more` sets the rest of
/// its configuration. Returns its id.
pub(crate) fn create_distribution(
    b: &Bucket,
    caller_reference: &str,
    origin: Origin,
    behavior: DefaultCacheBehavior,
    more: impl FnOnce(DistributionConfigBuilder) -> DistributionConfigBuilder,
) -> String {
    let cfg = more(
        DistributionConfig::builder()
            .caller_reference(caller_reference)
            .enabled(true)
            .origins(
                Origins::builder()
                    .quantity(1)
                    .items(origin)
                    .build()
                    .unwrap(),
            )
            .default_cache_behavior(behavior),
    )
    .build()
    .unwrap();
    let out =
        b.rt.block_on(
            cf_client()
                .create_distribution()
                .distribution_config(cfg)
                .send(),
        )
        .unwrap();
    out.distribution().unwrap().id().to_string()
}

fn server_paths(b: &Bucket, dist: &str, id: &str) -> Vec<String> {
    let out =
        b.rt.block_on(
            cf_client()
                .get_invalidation()
                .distribution_id(dist)
                .id(id)
                .send(),
        )
        .unwrap();
    let mut p: Vec<String> = out
        .invalidation()
        .unwrap()
        .invalidation_batch()
        .unwrap()
        .paths()
        .unwrap()
        .items()
        .to_vec();
    p.sort();
    p
}

pub(crate) fn with_cdn<'a>(mut args: Vec<&'a str>, dist: &'a str) -> Vec<&'a str> {
    args.extend(["--distribution-id", dist, "--cdn-endpoint-url"]);
    args
}

#[test]
fn invalidates_exactly_the_changed_stable_paths() {
    let b = Bucket::moto("cf");
    let dist = distribution(&b, "/www");
    let site = Site::new(&[
        (
            "index.html",
            b"<link rel=stylesheet href=\"/css/a.css\"><p>v1</p>",
        ),
        ("blog/index.html", b"<p>blog</p>"),
        ("blog/café post's~x.html", b"<p>odd</p>"),
        ("css/a.css", b"p{color:red}"),
        ("old.html", b"<p>old</p>"),
    ]);
    let dir = path_str(site.path());
    let to = b.url("www");
    let moto = moto_endpoint();
    let mut args = with_cdn(publish_args(&dir, &to), &dist);
    args.push(&moto);
    // First publish: everything is new, nothing to invalidate.
    let r = cdnsync_moto(&args).ok_json();
    assert!(r["invalidations"].as_array().unwrap().is_empty(), "{r:#}");

    // Change the stylesheet (→ new asset name, new index), an odd-named page
    // and the blog index; remove a page.
    site.write("css/a.css", b"p{color:blue}");
    site.write("blog/index.html", b"<p>blog v2</p>");
    site.write("blog/café post's~x.html", b"<p>odd v2</p>");
    site.remove("old.html");
    let mut args2 = args.clone();
    args2.push("--wait");
    let r = cdnsync_moto(&args2).ok_json();
    let inv = &r["invalidations"][0];
    let want = [
        "/",
        "/blog",
        "/blog/",
        "/blog/caf%C3%A9%20post%27s%7Ex.html",
        "/blog/index.html",
        // The stylesheet's original URL (a copy of its new name).
        "/css/a.css",
        "/index.html",
        "/old.html",
    ];
    let mut got: Vec<&str> = inv["paths"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p.as_str().unwrap())
        .collect();
    got.sort();
    assert_eq!(got, want, "{r:#}");
    // What moto recorded is what was sent; the new CSS name is not in it.
    assert!(
        !got.iter()
            .any(|p| p.starts_with("/css/a.") && *p != "/css/a.css")
    );
    assert_eq!(server_paths(&b, &dist, inv["id"].as_str().unwrap()), want);
    assert!(
        inv["status"]
            .as_str()
            .unwrap()
            .eq_ignore_ascii_case("completed"),
        "--wait polled to completion"
    );
    assert!(
        inv["caller_reference"]
            .as_str()
            .unwrap()
            .starts_with("cdnsync-")
    );

    // A no-op publish invalidates nothing.
    let r = cdnsync_moto(&args).ok_json();
    assert!(r["invalidations"].as_array().unwrap().is_empty());

    // Many changed pages collapse into a wildcard.
    for i in 0..20 {
        site.write(&format!("docs/p{i}.html"), b"<p>x</p>");
    }
    cdnsync_moto(&args).ok_json();
    for i in 0..20 {
        site.write(&format!("docs/p{i}.html"), b"<p>y</p>");
    }
    let r = cdnsync_moto(&args).ok_json();
    assert_eq!(
        r["invalidations"][0]["paths"],
        serde_json::json!(["/docs/*"]),
        "{r:#}"
    );

    // Rollback invalidates exactly what it restored.
    let rb = cdnsync_moto(
        &with_cdn(vec!["rollback", "--to", &to, "--json"], &dist)
            .into_iter()
            .chain([moto.as_str()])
            .collect::<Vec<_>>(),
    )
    .ok_json();
    assert_eq!(
        rb["invalidations"][0]["paths"],
        serde_json::json!(["/docs/*"]),
        "{rb:#}"
    );
}

#[test]
fn unknown_distribution_is_reported_after_publishing() {
    let b = Bucket::moto("cfmissing");
    let site = Site::new(&[("index.html", b"<p>1</p>")]);
    let dir = path_str(site.path());
    let to = b.url("");
    let moto = moto_endpoint();
    let mut args = with_cdn(publish_args(&dir, &to), "E0000000000000");
    args.push(&moto);
    // `--compress auto` (the default) reads the distribution first: a
    // wrong id stops the publish before anything is written.
    let e = cdnsync_moto(&args).fails(2);
    assert!(
        e.contains("--compress auto") && e.contains("E0000000000000") && e.contains("not found"),
        "{e}"
    );
    assert!(b.keys("").is_empty(), "nothing written: {:?}", b.keys(""));
    // Without that read, the first publish already needs the distribution
    // (its routing): the release goes live, the CDN failure is exit 8.
    args.extend(["--compress", "gzip"]);
    let e = cdnsync_moto(&args).fails(8);
    assert!(
        e.contains("routing not updated") && e.contains("not found"),
        "{e}"
    );
    assert_eq!(
        b.body("index.html"),
        b"<p>1</p>",
        "the release went live regardless"
    );
    site.write("index.html", b"<p>2</p>");
    let e = cdnsync_moto(&args).fails(8);
    assert!(
        e.contains("is live, but a CDN routing update, invalidation or cache purge failed"),
        "{e}"
    );
    assert_eq!(
        b.body("index.html"),
        b"<p>2</p>",
        "the release went live regardless"
    );
}
