//! `cdnsync doctor` against moto's S3 and CloudFront: a deliberately bad
//! setup (public, unencrypted, no TLS policy, website origin, plain HTTP) and
//! a good one (Block Public Access, TLS-only policy, OAC, HTTPS), with the
//! exit codes 11 / 10 / 0.

use aws_sdk_cloudfront::types::{
    CustomOriginConfig, Origin, OriginAccessControlConfig, OriginAccessControlOriginTypes,
    OriginAccessControlSigningBehaviors, OriginAccessControlSigningProtocols, OriginProtocolPolicy,
    PriceClass, S3OriginConfig, ViewerProtocolPolicy,
};
use aws_sdk_s3::types::{
    BucketVersioningStatus, ObjectOwnership, OwnershipControls, OwnershipControlsRule,
    PublicAccessBlockConfiguration, ServerSideEncryption, ServerSideEncryptionByDefault,
    ServerSideEncryptionConfiguration, ServerSideEncryptionRule, VersioningConfiguration,
};
use serde_json::Value;

use crate::cloudfront::{cf_client, create_distribution, legacy_behavior};
use crate::util::*;

enum Access {
    Oac,
    Oai,
    Website,
}

fn distribution(
    b: &Bucket,
    tag: &str,
    access: Access,
    vpp: ViewerProtocolPolicy,
    compress: bool,
    root: &str,
) -> String {
    let cf = cf_client();
    let mut origin = Origin::builder().id("s3");
    match access {
        Access::Website => {
            origin = origin
                .domain_name(format!("{}.s3-website-us-east-1.amazonaws.com", b.name))
                .custom_origin_config(
                    CustomOriginConfig::builder()
                        .http_port(80)
                        .https_port(443)
                        .origin_protocol_policy(OriginProtocolPolicy::HttpOnly)
                        .build()
                        .unwrap(),
                );
        }
        Access::Oai => {
            origin = origin
                .domain_name(format!("{}.s3.us-east-1.amazonaws.com", b.name))
                .s3_origin_config(
                    S3OriginConfig::builder()
                        .origin_access_identity("origin-access-identity/cloudfront/E1OAI")
                        .build(),
                );
        }
        Access::Oac => {
            let oac =
                b.rt.block_on(
                    cf.create_origin_access_control()
                        .origin_access_control_config(
                            OriginAccessControlConfig::builder()
                                .name(format!("oac-{}-{tag}", b.name))
                                .signing_protocol(OriginAccessControlSigningProtocols::Sigv4)
                                .signing_behavior(OriginAccessControlSigningBehaviors::Always)
                                .origin_access_control_origin_type(
                                    OriginAccessControlOriginTypes::S3,
                                )
                                .build()
                                .unwrap(),
                        )
                        .send(),
                )
                .unwrap();
            origin = origin
                .domain_name(format!("{}.s3.us-east-1.amazonaws.com", b.name))
                .origin_access_control_id(oac.origin_access_control().unwrap().id())
                .s3_origin_config(S3OriginConfig::builder().origin_access_identity("").build());
        }
    }
    create_distribution(
        b,
        &format!("doctor-{}-{tag}", b.name),
        origin.build().unwrap(),
        legacy_behavior(vpp, Some(compress)),
        |c| {
            c.comment("cdnsync doctor test")
                .default_root_object(root)
                .price_class(PriceClass::PriceClass100)
        },
    )
}

fn secure_bucket(b: &Bucket, encrypted: bool) {
    let c = &b.client;
    b.rt.block_on(async {
        c.put_public_access_block()
            .bucket(&b.name)
            .public_access_block_configuration(
                PublicAccessBlockConfiguration::builder()
                    .block_public_acls(true)
                    .ignore_public_acls(true)
                    .block_public_policy(true)
                    .restrict_public_buckets(true)
                    .build(),
            )
            .send()
            .await
            .unwrap();
        let policy = format!(
            r#"{{"Version":"2012-10-17","Statement":[
              {{"Sid":"DenyInsecureTransport","Effect":"Deny","Principal":"*","Action":"s3:*",
                "Resource":["arn:aws:s3:::{n}","arn:aws:s3:::{n}/*"],
                "Condition":{{"Bool":{{"aws:SecureTransport":"false"}}}}}},
              {{"Sid":"CloudFrontRead","Effect":"Allow","Principal":{{"Service":"cloudfront.amazonaws.com"}},
                "Action":"s3:GetObject","Resource":"arn:aws:s3:::{n}/*",
                "Condition":{{"StringEquals":{{"AWS:SourceArn":"arn:aws:cloudfront::123456789012:distribution/E1"}}}}}}]}}"#,
            n = b.name
        );
        c.put_bucket_policy()
            .bucket(&b.name)
            .policy(policy)
            .send()
            .await
            .unwrap();
        if encrypted {
            c.put_bucket_encryption()
                .bucket(&b.name)
                .server_side_encryption_configuration(
                    ServerSideEncryptionConfiguration::builder()
                        .rules(
                            ServerSideEncryptionRule::builder()
                                .apply_server_side_encryption_by_default(
                                    ServerSideEncryptionByDefault::builder()
                                        .sse_algorithm(ServerSideEncryption::Aes256)
                                        .build()
                                        .unwrap(),
                                )
                                .build(),
                        )
                        .build()
                        .unwrap(),
                )
                .send()
                .await
                .unwrap();
        }
        c.put_bucket_ownership_controls()
            .bucket(&b.name)
            .ownership_controls(
                OwnershipControls::builder()
                    .rules(
                        OwnershipControlsRule::builder()
                            .object_ownership(ObjectOwnership::BucketOwnerEnforced)
                            .build()
                            .unwrap(),
                    )
                    .build()
                    .unwrap(),
            )
            .send()
            .await
            .unwrap();
        c.put_bucket_versioning()
            .bucket(&b.name)
            .versioning_configuration(
                VersioningConfiguration::builder()
                    .status(BucketVersioningStatus::Enabled)
                    .build(),
            )
            .send()
            .await
            .unwrap();
    });
}

fn severity(report: &Value, check: &str) -> Vec<String> {
    report["findings"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|f| f["check"] == check)
        .map(|f| f["severity"].as_str().unwrap().to_string())
        .collect()
}

fn doctor(b: &Bucket, dists: &[&str], extra: &[&str]) -> Ran {
    let to = b.url("site");
    let ep = moto_endpoint();
    let ids = dists.join(",");
    let mut args = vec!["doctor", "--to", &to, "--json"];
    if !dists.is_empty() {
        args.extend(["--distribution-id", &ids, "--cdn-endpoint-url", &ep]);
    }
    args.extend(extra);
    cdnsync_moto(&args).run()
}

#[test]
fn a_bad_setup_fails_with_every_finding_and_its_fix() {
    let b = Bucket::moto("docbad");
    b.rt.block_on(
        b.client
            .put_bucket_policy()
            .bucket(&b.name)
            .policy(format!(
                r#"{{"Version":"2012-10-17","Statement":[{{"Effect":"Allow","Principal":"*","Action":"s3:GetObject","Resource":"arn:aws:s3:::{}/*"}}]}}"#,
                b.name
            ))
            .send(),
    )
    .unwrap();
    let web = distribution(
        &b,
        "web",
        Access::Website,
        ViewerProtocolPolicy::AllowAll,
        false,
        "",
    );
    let oai = distribution(
        &b,
        "oai",
        Access::Oai,
        ViewerProtocolPolicy::RedirectToHttps,
        true,
        "index.html",
    );
    let r = doctor(&b, &[&web, &oai], &[]);
    assert_eq!(r.code, 11, "stdout:\n{}\nstderr:\n{}", r.stdout, r.stderr);
    assert!(
        r.stderr.contains("doctor:") && r.stderr.contains("failure(s)"),
        "{}",
        r.stderr
    );
    let j = r.json();
    assert_eq!(severity(&j, "block-public-access"), ["failure"]);
    assert_eq!(severity(&j, "bucket-policy-public"), ["failure"]);
    assert_eq!(severity(&j, "tls-only"), ["failure"]);
    assert_eq!(severity(&j, "default-encryption"), ["warning"]);
    assert_eq!(severity(&j, "object-ownership"), ["warning"]);
    assert_eq!(severity(&j, "versioning"), ["info"]);
    // One finding per distribution: website endpoint fails, OAI warns.
    let mut origin = severity(&j, "origin-access");
    origin.sort();
    assert_eq!(origin, ["failure", "warning"]);
    let mut vpp = severity(&j, "viewer-protocol");
    vpp.sort();
    assert_eq!(vpp, ["failure", "ok"]);
    let mut root = severity(&j, "default-root-object");
    root.sort();
    assert_eq!(root, ["ok", "warning"]);
    assert_eq!(severity(&j, "price-class"), ["info", "info"]);
    // Every warning and failure says how to fix it.
    for f in j["findings"].as_array().unwrap() {
        if f["severity"] == "warning" || f["severity"] == "failure" {
            assert!(f["fix"].as_str().is_some_and(|s| !s.is_empty()), "{f}");
        }
    }
    assert!(j["failures"].as_u64().unwrap() >= 5);
    // The facts are in the report too.
    assert_eq!(j["distributions"][0]["origins"][0]["custom_origin"], true);
    assert_eq!(
        j["distributions"][1]["origins"][0]["oai"],
        "origin-access-identity/cloudfront/E1OAI"
    );
}

#[test]
fn a_good_setup_passes_and_a_missing_default_encryption_warns() {
    let b = Bucket::moto("docgood");
    secure_bucket(&b, true);
    let d = distribution(
        &b,
        "good",
        Access::Oac,
        ViewerProtocolPolicy::RedirectToHttps,
        true,
        "index.html",
    );
    let r = doctor(&b, &[&d], &[]);
    assert_eq!(r.code, 0, "stdout:\n{}\nstderr:\n{}", r.stdout, r.stderr);
    let j = r.json();
    for check in [
        "block-public-access",
        "bucket-policy-public",
        "default-encryption",
        "tls-only",
        "object-ownership",
        "versioning",
        "origin-access",
        "viewer-protocol",
        "default-root-object",
    ] {
        assert_eq!(severity(&j, check), ["ok"], "{check}: {j:#}");
    }
    // `--compress auto` (the default) behind a compressing edge stores
    // text uncompressed: viewers get brotli (issue 18).
    assert_eq!(severity(&j, "compression"), ["ok"], "{j:#}");
    assert!(j.to_string().contains("brotli or gzip"), "{j:#}");
    assert!(
        j["distributions"][0]["origins"][0]["oac"]
            .as_str()
            .is_some()
    );

    // Human output: one line per check.
    let to = b.url("site");
    let ep = moto_endpoint();
    let r = cdnsync_moto(&[
        "doctor",
        "--to",
        &to,
        "--distribution-id",
        &d,
        "--cdn-endpoint-url",
        &ep,
    ])
    .run();
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(
        r.stdout.contains("ok    block-public-access"),
        "{}",
        r.stdout
    );
    assert!(
        r.stdout.contains("0 failure(s), 0 warning(s)"),
        "{}",
        r.stdout
    );

    // Warnings only (no default encryption): exit 10.
    let b2 = Bucket::moto("docwarn");
    secure_bucket(&b2, false);
    let r = doctor(&b2, &[], &[]);
    assert_eq!(r.code, 10, "stdout:\n{}\nstderr:\n{}", r.stdout, r.stderr);
    assert_eq!(severity(&r.json(), "default-encryption"), ["warning"]);
}

#[test]
fn doctor_needs_a_bucket_that_exists() {
    let (_d, target) = tmp_target();
    let t = path_str(&target);
    let err = cdnsync(&["doctor", "--to", &t]).fails(2);
    assert!(err.contains("s3://"), "{err}");
    let err = cdnsync_moto(&["doctor", "--to", "s3://no-such-bucket-doctor"]).fails(5);
    assert!(err.contains("no-such-bucket-doctor"), "{err}");
}
