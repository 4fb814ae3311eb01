//! `--compress auto` (the default): text is stored uncompressed where every
//! CloudFront behaviour serving the bucket compresses (the edge then
//! negotiates brotli or gzip), gzip-compressed everywhere else; `serve`
//! compresses on the fly for viewers that accept gzip, as the edge does.

use aws_sdk_cloudfront::types::{Origin, S3OriginConfig, ViewerProtocolPolicy};

use crate::cloudfront::{create_distribution, legacy_behavior, with_cdn};
use crate::util::*;

fn text_site() -> Site {
    let page = format!(
        "<!doctype html><title>t</title>{}",
        "<p>hello world</p>".repeat(200)
    );
    let manifest = format!(
        "{{\"name\":\"site\",\"icons\":[{}{{}}]}}",
        "{\"src\":\"/i.png\"},".repeat(100)
    );
    Site::new(&[
        ("index.html", page.as_bytes()),
        ("app.js", "console.log('x');\n".repeat(200).as_bytes()),
        // A type CloudFront does not compress itself.
        ("site.webmanifest", manifest.as_bytes()),
    ])
}

fn dist_compressing(b: &Bucket, compress: bool) -> String {
    let origin = Origin::builder()
        .id("s3")
        .domain_name(format!("{}.s3.us-east-1.amazonaws.com", b.name))
        .origin_path("")
        .s3_origin_config(S3OriginConfig::builder().origin_access_identity("").build())
        .build()
        .unwrap();
    create_distribution(
        b,
        &format!("compress-{compress}-{}", b.name),
        origin,
        legacy_behavior(ViewerProtocolPolicy::RedirectToHttps, Some(compress)),
        |c| c.comment("cdnsync compression test"),
    )
}

fn encoding(b: &Bucket, key: &str) -> Option<String> {
    b.head(key).content_encoding().map(str::to_string)
}

#[test]
fn auto_stores_identity_only_where_cloudfront_compresses() {
    let site = text_site();
    let dir = path_str(site.path());
    let moto = moto_endpoint();
    for (compress, want) in [(true, None), (false, Some("gzip"))] {
        let b = Bucket::moto("auto");
        let dist = dist_compressing(&b, compress);
        let to = b.url("");
        let mut args = with_cdn(publish_args(&dir, &to), &dist);
        args.push(&moto);
        cdnsync_moto(&args).ok_json();
        assert_eq!(
            encoding(&b, "index.html").as_deref(),
            want,
            "compress={compress}"
        );
        // What the edge would not compress stays gzip-compressed.
        assert_eq!(
            encoding(&b, "site.webmanifest").as_deref(),
            Some("gzip"),
            "compress={compress}"
        );
        let original = std::fs::read(site.path().join("index.html")).unwrap();
        let stored = b.head("index.html").content_length().unwrap() as usize;
        assert_eq!(
            stored == original.len(),
            want.is_none(),
            "compress={compress}"
        );
        // Settled the same way again: nothing to do.
        let r = cdnsync_moto(&args).ok_json();
        assert_eq!(r["noop"], true, "compress={compress}: {r:#}");
    }
    // No CDN: gzip, as before.
    let b = Bucket::moto("auto");
    let to = b.url("");
    cdnsync_moto(&publish_args(&dir, &to)).ok_json();
    assert_eq!(encoding(&b, "index.html").as_deref(), Some("gzip"));
}

#[test]
fn serve_compresses_on_the_fly_for_viewers_that_accept_gzip() {
    let site = text_site();
    let (_t, target) = tmp_target();
    let dir = path_str(site.path());
    let to = path_str(&target);
    let mut args = publish_args(&dir, &to);
    args.extend(["--compress", "none"]);
    cdnsync(&args).ok_json();
    let s = serve(&target);
    let original = std::fs::read(site.path().join("index.html")).unwrap();
    let gz = http(
        "GET",
        &format!("{}/", s.base),
        &[("Accept-Encoding", "br, gzip;q=0.8")],
    );
    assert_eq!(gz.status, 200);
    assert_eq!(gz.header("content-encoding"), Some("gzip"));
    assert_eq!(gz.header("vary"), Some("Accept-Encoding"));
    let mut plain = Vec::new();
    std::io::Read::read_to_end(
        &mut flate2::read::GzDecoder::new(gz.body.as_slice()),
        &mut plain,
    )
    .unwrap();
    assert_eq!(plain, original);
    for refuse in [
        None,
        Some("gzip;q=0"),
        Some("identity"),
        Some("gzip;q=0, *"),
    ] {
        let h: Vec<(&str, &str)> = refuse.map(|v| ("Accept-Encoding", v)).into_iter().collect();
        let r = http("GET", &format!("{}/", s.base), &h);
        assert_eq!(r.header("content-encoding"), None, "{refuse:?}");
        assert_eq!(r.body, original, "{refuse:?}");
        // Caches must keep both forms apart; only the stored bytes have
        // the strong ETag.
        assert_eq!(r.header("vary"), Some("Accept-Encoding"), "{refuse:?}");
        assert!(!r.header("etag").unwrap().starts_with("W/"), "{refuse:?}");
    }
    assert!(
        gz.header("etag").unwrap().starts_with("W/\""),
        "{:?}",
        gz.header("etag")
    );
    // HEAD: the length of what a GET would send.
    let head = http(
        "HEAD",
        &format!("{}/", s.base),
        &[("Accept-Encoding", "gzip")],
    );
    assert_eq!(
        head.header("content-length"),
        Some(gz.body.len().to_string().as_str())
    );
}
