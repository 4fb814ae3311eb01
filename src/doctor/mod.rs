//! `cdnsync doctor`: pure assessment of a bucket's and a distribution's
//! security and delivery settings. The facts are gathered elsewhere
//! (`commands::doctor`); this module only decides, and explains each finding
//! with the fix.

use serde::Serialize;

pub mod site;

/// A setting as read from the service: `Ok(None)` when it is not
/// configured, `Err` when it could not be read (e.g. access denied).
pub type Fact<T> = Result<Option<T>, String>;

/// A fact in JSON: the value, `null` when not configured, or
/// `{"error": "…"}` when it could not be read.
fn fact_ser<T: Serialize, S: serde::Serializer>(f: &Fact<T>, s: S) -> Result<S::Ok, S::Error> {
    #[derive(Serialize)]
    struct Unreadable<'a> {
        error: &'a str,
    }
    match f {
        Ok(v) => v.serialize(s),
        Err(e) => Unreadable { error: e }.serialize(s),
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    Ok,
    Info,
    Warning,
    Failure,
}

#[derive(Debug, Clone, Serialize)]
pub struct Finding {
    /// Stable identifier of the check (e.g. `block-public-access`).
    pub check: &'static str,
    pub severity: Severity,
    pub summary: String,
    /// What to do about it (absent when nothing needs doing).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub fix: Option<String>,
}

#[derive(Debug, Clone, Default, Serialize)]
pub struct PublicAccessBlock {
    pub block_public_acls: bool,
    pub ignore_public_acls: bool,
    pub block_public_policy: bool,
    pub restrict_public_buckets: bool,
}

#[derive(Debug, Clone, Serialize)]
pub struct Encryption {
    /// `AES256`, `aws:kms` or `aws:kms:dsse`.
    pub algorithm: String,
    pub kms_key: Option<String>,
    pub bucket_key: bool,
}

#[derive(Debug, Clone, Serialize)]
pub struct BucketFacts {
    pub bucket: String,
    #[serde(serialize_with = "fact_ser")]
    pub public_access_block: Fact<PublicAccessBlock>,
    /// GetBucketPolicyStatus `IsPublic`; `Ok(None)`: no policy.
    #[serde(serialize_with = "fact_ser")]
    pub policy_is_public: Fact<bool>,
    /// The bucket policy document.
    #[serde(serialize_with = "fact_ser")]
    pub policy: Fact<String>,
    #[serde(serialize_with = "fact_ser")]
    pub encryption: Fact<Encryption>,
    /// `BucketOwnerEnforced`, `BucketOwnerPreferred` or `ObjectWriter`.
    #[serde(serialize_with = "fact_ser")]
    pub ownership: Fact<String>,
    /// `Enabled` or `Suspended`; `Ok(None)`: never enabled.
    #[serde(serialize_with = "fact_ser")]
    pub versioning: Fact<String>,
}

#[derive(Debug, Clone, Serialize)]
pub struct OriginFacts {
    pub id: String,
    pub domain: String,
    pub path: String,
    pub oac: Option<String>,
    /// `origin-access-identity/cloudfront/ID`; empty when none.
    pub oai: Option<String>,
    pub s3_origin: bool,
    pub custom_origin: bool,
}

#[derive(Debug, Clone, Serialize)]
pub struct BehaviorFacts {
    /// `*` for the default behaviour.
    pub path_pattern: String,
    pub target_origin: String,
    pub viewer_protocol_policy: String,
    pub compress: bool,
    /// CloudFront Functions associated with the behaviour.
    #[serde(default)]
    pub functions: Vec<FunctionFacts>,
    /// The response headers policy attached, if any.
    pub response_headers_policy: Option<HeadersPolicyFacts>,
}

#[derive(Debug, Clone, Serialize)]
pub struct FunctionFacts {
    /// `viewer-request` or `viewer-response`.
    pub event: String,
    pub arn: String,
    /// The LIVE stage's comment (`cdnsync <code hash>` for cdnsync's own
    /// functions; only read for those).
    #[serde(serialize_with = "fact_ser")]
    pub live_comment: Fact<String>,
}

#[derive(Debug, Clone, Serialize)]
pub struct HeadersPolicyFacts {
    pub id: String,
    /// Whether it sends Strict-Transport-Security.
    #[serde(serialize_with = "fact_ser")]
    pub hsts: Fact<bool>,
}

/// A custom error response of a distribution.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct ErrorResponseFacts {
    /// The origin's status (403, 404).
    pub code: i32,
    /// The page served instead (`/404.html`), empty when none.
    pub page: String,
    /// The status sent to viewers (`404`), empty to keep the origin's.
    pub response_code: String,
}

#[derive(Debug, Clone, Serialize)]
pub struct DistributionFacts {
    pub id: String,
    pub domain: String,
    pub origins: Vec<OriginFacts>,
    pub behaviors: Vec<BehaviorFacts>,
    pub price_class: String,
    pub default_root_object: String,
    pub error_responses: Vec<ErrorResponseFacts>,
}

/// What cdnsync itself is configured to do, for the checks that compare.
#[derive(Debug, Clone, Serialize)]
pub struct Expectations {
    /// The key prefix cdnsync publishes under (no slashes at the ends).
    pub prefix: String,
    /// cdnsync's precompression setting (`compress`).
    pub compress: crate::cli::CompressArg,
    /// The SSE cdnsync sends: `AES256`, `aws:kms` or `none`.
    pub sse: String,
    pub kms_key: Option<String>,
}

/// Whether an origin domain is this bucket's REST or website endpoint;
/// `Some(true)` for a website endpoint.
pub fn origin_kind(domain: &str, bucket: &str) -> Option<bool> {
    let d = domain.to_ascii_lowercase();
    let rest = d.strip_prefix(&format!("{}.", bucket.to_ascii_lowercase()))?;
    if rest.starts_with("s3-website") {
        Some(true)
    } else if rest.starts_with("s3.") || rest.starts_with("s3-") {
        Some(false)
    } else {
        None
    }
}

/// Does the policy deny every request that does not use TLS?
pub fn policy_denies_insecure_transport(policy: &str) -> bool {
    let Ok(doc) = serde_json::from_str::<serde_json::Value>(policy) else {
        return false;
    };
    let statements: Vec<&serde_json::Value> = match &doc["Statement"] {
        serde_json::Value::Array(a) => a.iter().collect(),
        v @ serde_json::Value::Object(_) => vec![v],
        _ => Vec::new(),
    };
    statements.iter().any(|s| {
        let deny = s["Effect"].as_str() == Some("Deny");
        let everyone = match &s["Principal"] {
            serde_json::Value::String(p) => p == "*",
            serde_json::Value::Object(o) => o.get("AWS").is_some_and(|a| a == "*"),
            _ => false,
        };
        let all_s3 = strings(&s["Action"])
            .iter()
            .any(|a| a == "s3:*" || a == "*" || a == "s3:GetObject");
        let cond = &s["Condition"]["Bool"]["aws:SecureTransport"];
        let insecure = strings(cond)
            .iter()
            .any(|v| v.eq_ignore_ascii_case("false"))
            || cond == &serde_json::Value::Bool(false);
        deny && everyone && all_s3 && insecure
    })
}

fn strings(v: &serde_json::Value) -> Vec<String> {
    match v {
        serde_json::Value::String(s) => vec![s.clone()],
        serde_json::Value::Array(a) => a
            .iter()
            .filter_map(|x| x.as_str().map(str::to_string))
            .collect(),
        _ => Vec::new(),
    }
}

fn finding(
    check: &'static str,
    severity: Severity,
    summary: impl Into<String>,
    fix: Option<String>,
) -> Finding {
    Finding {
        check,
        severity,
        summary: summary.into(),
        fix,
    }
}

fn unreadable(check: &'static str, what: &str, err: &str, permission: &str) -> Finding {
    finding(
        check,
        Severity::Warning,
        format!("could not read {what}: {err}"),
        Some(format!(
            "grant {permission} to the identity running doctor, then rerun"
        )),
    )
}

/// Assess the bucket and, when given, the distribution in front of it.
pub fn assess(
    b: &BucketFacts,
    dist: Option<&DistributionFacts>,
    want: &Expectations,
) -> Vec<Finding> {
    let mut out = assess_bucket(b, want);
    if let Some(d) = dist {
        out.extend(assess_distribution(&b.bucket, d, want));
    }
    out
}

/// The bucket's own settings.
pub fn assess_bucket(b: &BucketFacts, want: &Expectations) -> Vec<Finding> {
    vec![
        block_public_access(b),
        policy_not_public(b),
        default_encryption(b, want),
        tls_only(b),
        object_ownership(b),
        versioning(b),
    ]
}

/// Block Public Access: all four settings on.
fn block_public_access(b: &BucketFacts) -> Finding {
    let bucket = &b.bucket;
    let bpa_fix = format!(
        "aws s3api put-public-access-block --bucket {bucket} --public-access-block-configuration BlockPublicAcls=true,IgnorePublicAcls=true,BlockPublicPolicy=true,RestrictPublicBuckets=true"
    );
    match &b.public_access_block {
        Err(e) => unreadable(
            "block-public-access",
            "Block Public Access",
            e,
            "s3:GetBucketPublicAccessBlock",
        ),
        Ok(None) => finding(
            "block-public-access",
            Severity::Failure,
            "Block Public Access is not configured on the bucket: a policy or ACL can make objects public",
            Some(bpa_fix),
        ),
        Ok(Some(p)) => {
            let off: Vec<&str> = [
                ("BlockPublicAcls", p.block_public_acls),
                ("IgnorePublicAcls", p.ignore_public_acls),
                ("BlockPublicPolicy", p.block_public_policy),
                ("RestrictPublicBuckets", p.restrict_public_buckets),
            ]
            .into_iter()
            .filter(|(_, on)| !on)
            .map(|(n, _)| n)
            .collect();
            if off.is_empty() {
                finding(
                    "block-public-access",
                    Severity::Ok,
                    "all four Block Public Access settings are on",
                    None,
                )
            } else {
                finding(
                    "block-public-access",
                    Severity::Failure,
                    format!("Block Public Access is off for {}", off.join(", ")),
                    Some(bpa_fix),
                )
            }
        }
    }
}

/// The bucket policy does not make the bucket public.
fn policy_not_public(b: &BucketFacts) -> Finding {
    match &b.policy_is_public {
        Err(e) => unreadable("bucket-policy-public", "the bucket policy status", e, "s3:GetBucketPolicyStatus"),
        Ok(Some(true)) => finding(
            "bucket-policy-public",
            Severity::Failure,
            "the bucket policy makes the bucket public: anyone can read it without going through the CDN",
            Some("remove the statements with \"Principal\": \"*\" that Allow; grant CloudFront read access through origin access control (a statement for the cloudfront.amazonaws.com service principal with an AWS:SourceArn condition on the distribution)".into()),
        ),
        Ok(Some(false)) => finding("bucket-policy-public", Severity::Ok, "the bucket policy is not public", None),
        Ok(None) => finding("bucket-policy-public", Severity::Ok, "the bucket has no policy (nothing is public through one)", None),
    }
}

/// Default encryption, compared with what cdnsync sends.
fn default_encryption(b: &BucketFacts, want: &Expectations) -> Finding {
    let bucket = &b.bucket;

    match &b.encryption {
        Err(e) => unreadable(
            "default-encryption",
            "default encryption",
            e,
            "s3:GetEncryptionConfiguration",
        ),
        Ok(None) => finding(
            "default-encryption",
            Severity::Warning,
            "the bucket has no default encryption: cdnsync encrypts what it writes, but objects written by other tools may be stored unencrypted",
            Some(format!(
                "aws s3api put-bucket-encryption --bucket {bucket} --server-side-encryption-configuration '{{\"Rules\":[{{\"ApplyServerSideEncryptionByDefault\":{{\"SSEAlgorithm\":\"AES256\"}}}}]}}'"
            )),
        ),
        Ok(Some(enc)) => {
            let kms = enc.algorithm.starts_with("aws:kms");
            let what = match (&enc.kms_key, kms) {
                (Some(k), true) => format!(
                    "{} with KMS key {k}{}",
                    enc.algorithm,
                    if enc.bucket_key {
                        " (S3 Bucket Key on)"
                    } else {
                        ""
                    }
                ),
                (None, true) => format!(
                    "{} with the AWS-managed key aws/s3 (CloudFront cannot decrypt it through OAC; use a customer-managed key)",
                    enc.algorithm
                ),
                _ => "SSE-S3 (AES256)".to_string(),
            };
            if want.sse == "none" {
                finding("default-encryption", Severity::Warning, format!("default encryption is {what}, but cdnsync is configured with --sse none"), Some("drop `sse = \"none\"` / --sse none: cdnsync then states SSE on every object".into()))
            } else if kms && want.sse != "aws:kms" {
                finding(
                    "default-encryption",
                    Severity::Warning,
                    format!(
                        "default encryption is {what}, but cdnsync sends AES256 on every object, overriding the KMS default"
                    ),
                    Some(format!(
                        "publish with --sse aws:kms{}",
                        enc.kms_key
                            .as_deref()
                            .map(|k| format!(" --sse-kms-key-id {k}"))
                            .unwrap_or_default()
                    )),
                )
            } else if kms && enc.kms_key.is_none() {
                finding("default-encryption", Severity::Warning, format!("default encryption is {what}"), Some("create a customer-managed KMS key, allow cloudfront.amazonaws.com kms:Decrypt on it (condition on the distribution ARN), and set it as the bucket default and --sse-kms-key-id".into()))
            } else {
                finding(
                    "default-encryption",
                    Severity::Ok,
                    format!("default encryption is {what}"),
                    None,
                )
            }
        }
    }
}

/// The bucket policy denies requests without TLS.
fn tls_only(b: &BucketFacts) -> Finding {
    let bucket = &b.bucket;
    let tls_fix = format!(
        "add to the bucket policy: {{\"Sid\":\"DenyInsecureTransport\",\"Effect\":\"Deny\",\"Principal\":\"*\",\"Action\":\"s3:*\",\"Resource\":[\"arn:aws:s3:::{bucket}\",\"arn:aws:s3:::{bucket}/*\"],\"Condition\":{{\"Bool\":{{\"aws:SecureTransport\":\"false\"}}}}}}"
    );
    match &b.policy {
        Err(e) => unreadable("tls-only", "the bucket policy", e, "s3:GetBucketPolicy"),
        Ok(Some(p)) if policy_denies_insecure_transport(p) => finding(
            "tls-only",
            Severity::Ok,
            "the bucket policy denies requests without TLS (aws:SecureTransport)",
            None,
        ),
        Ok(_) => finding(
            "tls-only",
            Severity::Failure,
            "no bucket policy statement denies requests without TLS: plain-HTTP requests to the bucket are accepted",
            Some(tls_fix),
        ),
    }
}

/// Object ownership: ACLs disabled.
fn object_ownership(b: &BucketFacts) -> Finding {
    let bucket = &b.bucket;

    match &b.ownership {
        Err(e) => unreadable(
            "object-ownership",
            "object ownership",
            e,
            "s3:GetBucketOwnershipControls",
        ),
        Ok(Some(o)) if o == "BucketOwnerEnforced" => finding(
            "object-ownership",
            Severity::Ok,
            "object ownership is BucketOwnerEnforced (ACLs disabled)",
            None,
        ),
        Ok(o) => finding(
            "object-ownership",
            Severity::Warning,
            format!(
                "object ownership is {}: ACLs are enabled, so an object ACL can grant access the bucket policy does not",
                o.as_deref().unwrap_or("not set (ObjectWriter)")
            ),
            Some(format!(
                "aws s3api put-bucket-ownership-controls --bucket {bucket} --ownership-controls 'Rules=[{{ObjectOwnership=BucketOwnerEnforced}}]'"
            )),
        ),
    }
}

/// Versioning (informational).
fn versioning(b: &BucketFacts) -> Finding {
    let bucket = &b.bucket;

    match &b.versioning {
        Err(e) => unreadable("versioning", "versioning", e, "s3:GetBucketVersioning"),
        Ok(Some(v)) if v == "Enabled" => finding(
            "versioning",
            Severity::Ok,
            "versioning is enabled (add a lifecycle rule expiring noncurrent versions after a few days to bound its cost)",
            None,
        ),
        Ok(v) => finding(
            "versioning",
            Severity::Info,
            format!(
                "versioning is {}: cdnsync's releases and rollback do not need it, but it protects against deletes by other tools",
                v.as_deref()
                    .map(str::to_lowercase)
                    .unwrap_or_else(|| "off".into())
            ),
            Some(format!(
                "aws s3api put-bucket-versioning --bucket {bucket} --versioning-configuration Status=Enabled (with a NoncurrentVersionExpiration lifecycle rule)"
            )),
        ),
    }
}

/// The distribution in front of `bucket`.
pub fn assess_distribution(
    bucket: &str,
    d: &DistributionFacts,
    want: &Expectations,
) -> Vec<Finding> {
    let mut out = origins(bucket, d, want);
    out.extend([
        viewer_protocol(d),
        compression(bucket, d, want),
        price_class(d),
        default_root_object(d),
    ]);
    out
}

/// The origin serving the bucket: origin access control, the REST
/// endpoint, the origin path.
fn origins(bucket: &str, d: &DistributionFacts, want: &Expectations) -> Vec<Finding> {
    let mut out = Vec::new();
    let id = &d.id;
    // The origin serving this bucket.
    let ours: Vec<&OriginFacts> = d
        .origins
        .iter()
        .filter(|o| origin_kind(&o.domain, bucket).is_some())
        .collect();
    if ours.is_empty() {
        out.push(finding(
            "origin-access",
            Severity::Warning,
            format!(
                "distribution {id} has no origin for bucket {bucket} (origins: {})",
                d.origins
                    .iter()
                    .map(|o| o.domain.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
            Some(
                "check --distribution-id, or point an origin at <bucket>.s3.<region>.amazonaws.com"
                    .into(),
            ),
        ));
    }
    for o in &ours {
        let website = origin_kind(&o.domain, bucket) == Some(true);
        let oai = o.oai.as_deref().filter(|s| !s.is_empty());
        let oac = o.oac.as_deref().filter(|s| !s.is_empty());
        out.push(if website {
            finding(
                "origin-access",
                Severity::Failure,
                format!("origin {} uses the S3 website endpoint {}: it only speaks HTTP and needs a public bucket", o.id, o.domain),
                Some(format!("use the REST endpoint {bucket}.s3.<region>.amazonaws.com with origin access control, and a CloudFront Function for directory indexes")),
            )
        } else if let Some(c) = oac {
            finding("origin-access", Severity::Ok, format!("origin {} reads the bucket through origin access control {c}", o.id), None)
        } else if let Some(i) = oai {
            finding(
                "origin-access",
                Severity::Warning,
                format!("origin {} uses a legacy origin access identity ({i}); it does not support SSE-KMS and is deprecated", o.id),
                Some("create an origin access control (aws cloudfront create-origin-access-control, SigningBehavior=always), attach it to the origin, remove the OAI and grant cloudfront.amazonaws.com s3:GetObject with an AWS:SourceArn condition".into()),
            )
        } else {
            finding(
                "origin-access",
                Severity::Failure,
                format!("origin {} reads the bucket with neither origin access control nor an identity: the bucket must be public for it to work", o.id),
                Some("attach an origin access control to the origin and grant cloudfront.amazonaws.com s3:GetObject on the bucket with an AWS:SourceArn condition on the distribution".into()),
            )
        });
        let want_path = if want.prefix.is_empty() {
            String::new()
        } else {
            format!("/{}", want.prefix)
        };
        if o.path.trim_end_matches('/') != want_path && !website {
            out.push(finding(
                "origin-path",
                Severity::Info,
                format!(
                    "origin {} has origin path `{}` and cdnsync publishes under `{}`: pages are served at /{} on the distribution",
                    o.id,
                    o.path,
                    if want_path.is_empty() { "/" } else { &want_path },
                    want.prefix.strip_prefix(o.path.trim_matches('/')).unwrap_or(&want.prefix).trim_matches('/'),
                ),
                Some(format!("set the origin path to `{want_path}` if the site should be served at the distribution's root")),
            ));
        }
    }
    out
}

/// Every cache behaviour redirects HTTP to HTTPS.
fn viewer_protocol(d: &DistributionFacts) -> Finding {
    let insecure: Vec<&BehaviorFacts> = d
        .behaviors
        .iter()
        .filter(|b| {
            b.viewer_protocol_policy != "redirect-to-https"
                && b.viewer_protocol_policy != "https-only"
        })
        .collect();
    if insecure.is_empty() {
        finding(
            "viewer-protocol",
            Severity::Ok,
            "every cache behaviour redirects HTTP to HTTPS or is HTTPS-only",
            None,
        )
    } else {
        finding(
            "viewer-protocol",
            Severity::Failure,
            format!(
                "viewers can use plain HTTP on {}",
                insecure
                    .iter()
                    .map(|b| format!("`{}` ({})", b.path_pattern, b.viewer_protocol_policy))
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
            Some("set ViewerProtocolPolicy to redirect-to-https on those cache behaviours".into()),
        )
    }
}

/// Compression: CloudFront's against cdnsync's precompression.
fn compression(bucket: &str, d: &DistributionFacts, want: &Expectations) -> Finding {
    // The behaviours serving the bucket (the default one when no origin
    // is recognised), as `--compress auto` decides.
    let ours: Vec<&str> = d
        .origins
        .iter()
        .filter(|o| origin_kind(&o.domain, bucket).is_some())
        .map(|o| o.id.as_str())
        .collect();
    let serving: Vec<&BehaviorFacts> = d
        .behaviors
        .iter()
        .filter(|b| {
            if ours.is_empty() {
                b.path_pattern == "*"
            } else {
                ours.contains(&b.target_origin.as_str())
            }
        })
        .collect();
    let cf_compress = !serving.is_empty() && serving.iter().all(|b| b.compress);
    use crate::cli::CompressArg::{Auto, Gzip, None as Identity};
    match (want.compress, cf_compress) {
        (Auto, true) => finding("compression", Severity::Ok, "CloudFront compresses on the fly, so cdnsync stores text uncompressed (--compress auto): viewers get brotli or gzip, as each accepts", None),
        (Auto, false) => finding("compression", Severity::Info, "CloudFront compression is off, so cdnsync stores text gzip-compressed (--compress auto): gzip to every viewer, never brotli, and files that gzip saves under 10% on are served uncompressed", Some("enable Compress objects automatically on the default cache behaviour (with a cache policy that enables gzip and brotli); the next publish then stores text uncompressed".into())),
        // CloudFront never re-compresses an object stored with
        // Content-Encoding: those are gzip for every client, never brotli.
        (Gzip, true) => finding("compression", Severity::Info, "cdnsync stores text gzip-compressed (--compress gzip), which CloudFront serves as stored: gzip to every client, never brotli (it compresses only the files cdnsync left uncompressed)", Some("publish with --compress auto (the default) so CloudFront compresses everything and serves brotli to clients that accept it".into())),
        (Gzip, false) => finding("compression", Severity::Info, "cdnsync stores text gzip-compressed; CloudFront compression is off, so files cdnsync does not compress (under 10% saving) and brotli are not served compressed", Some("enable Compress objects automatically on the default cache behaviour (with a cache policy that enables gzip and brotli)".into())),
        (Identity, true) => finding("compression", Severity::Ok, "cdnsync uploads uncompressed and CloudFront compresses on the fly", None),
        (Identity, false) => finding("compression", Severity::Warning, "neither cdnsync nor CloudFront compresses: HTML, CSS and JS are served uncompressed", Some("enable Compress on the default cache behaviour, or publish with --compress auto".into())),
    }
}

/// The price class (informational).
fn price_class(d: &DistributionFacts) -> Finding {
    finding(
        "price-class",
        Severity::Info,
        match d.price_class.as_str() {
            "PriceClass_100" => "price class PriceClass_100: edge locations in North America, Europe and Israel only; viewers elsewhere are served from farther away".to_string(),
            "PriceClass_200" => "price class PriceClass_200: most regions, excluding the most expensive (South America, Australia, New Zealand)".to_string(),
            "PriceClass_All" | "" => "price class PriceClass_All: every edge location (best latency, highest cost)".to_string(),
            other => format!("price class {other}"),
        },
        None,
    )
}

/// A default root object serves `/`.
fn default_root_object(d: &DistributionFacts) -> Finding {
    if d.default_root_object.is_empty() {
        finding(
            "default-root-object",
            Severity::Warning,
            "no default root object: a request for / returns an error instead of the home page",
            Some("set DefaultRootObject to index.html (subdirectory indexes need a CloudFront Function rewriting /dir/ to /dir/index.html)".into()),
        )
    } else {
        finding(
            "default-root-object",
            Severity::Ok,
            format!("default root object is {}", d.default_root_object),
            None,
        )
    }
}

/// Counts of warnings and failures.
pub fn tally(findings: &[Finding]) -> (usize, usize) {
    (
        findings
            .iter()
            .filter(|f| f.severity == Severity::Warning)
            .count(),
        findings
            .iter()
            .filter(|f| f.severity == Severity::Failure)
            .count(),
    )
}

/// The human report: one line per finding, the fix indented below.
pub fn human(target: &str, dist: Option<&str>, findings: &[Finding]) -> String {
    use std::fmt::Write as _;
    let mut s = format!(
        "cdnsync doctor: {target}{}\n",
        dist.map(|d| format!(", distribution {d}"))
            .unwrap_or_default()
    );
    for f in findings {
        let tag = match f.severity {
            Severity::Ok => "ok  ",
            Severity::Info => "info",
            Severity::Warning => "WARN",
            Severity::Failure => "FAIL",
        };
        let _ = writeln!(s, "  {tag}  {:<20} {}", f.check, f.summary);
        if let Some(fix) = f.fix.as_ref().filter(|_| f.severity >= Severity::Warning) {
            let _ = writeln!(s, "        {:<20} fix: {fix}", "");
        }
    }
    let (w, e) = tally(findings);
    let _ = writeln!(s, "{e} failure(s), {w} warning(s)");
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    fn good_bucket() -> BucketFacts {
        BucketFacts {
            bucket: "site".into(),
            public_access_block: Ok(Some(PublicAccessBlock {
                block_public_acls: true,
                ignore_public_acls: true,
                block_public_policy: true,
                restrict_public_buckets: true,
            })),
            policy_is_public: Ok(Some(false)),
            policy: Ok(Some(r#"{"Version":"2012-10-17","Statement":[{"Effect":"Deny","Principal":"*","Action":"s3:*","Resource":"arn:aws:s3:::site/*","Condition":{"Bool":{"aws:SecureTransport":"false"}}}]}"#.into())),
            encryption: Ok(Some(Encryption { algorithm: "AES256".into(), kms_key: None, bucket_key: false })),
            ownership: Ok(Some("BucketOwnerEnforced".into())),
            versioning: Ok(Some("Enabled".into())),
        }
    }

    fn want() -> Expectations {
        Expectations {
            prefix: String::new(),
            compress: crate::cli::CompressArg::Gzip,
            sse: "AES256".into(),
            kms_key: None,
        }
    }

    fn sev(f: &[Finding], check: &str) -> Severity {
        f.iter()
            .find(|x| x.check == check)
            .unwrap_or_else(|| panic!("{check} missing"))
            .severity
    }

    #[test]
    fn good_bucket_has_no_warnings() {
        let f = assess(&good_bucket(), None, &want());
        assert_eq!(tally(&f), (0, 0), "{f:#?}");
    }

    #[test]
    fn each_bad_setting_is_named_with_a_fix() {
        let mut b = good_bucket();
        b.public_access_block = Ok(Some(PublicAccessBlock {
            block_public_acls: true,
            ..Default::default()
        }));
        b.policy_is_public = Ok(Some(true));
        b.policy = Ok(Some(
            r#"{"Statement":[{"Effect":"Allow","Principal":"*","Action":"s3:GetObject"}]}"#.into(),
        ));
        b.encryption = Ok(None);
        b.ownership = Ok(Some("ObjectWriter".into()));
        b.versioning = Ok(None);
        let f = assess(&b, None, &want());
        assert_eq!(sev(&f, "block-public-access"), Severity::Failure);
        assert!(
            f[0].summary
                .contains("IgnorePublicAcls, BlockPublicPolicy, RestrictPublicBuckets")
        );
        assert_eq!(sev(&f, "bucket-policy-public"), Severity::Failure);
        assert_eq!(sev(&f, "tls-only"), Severity::Failure);
        assert_eq!(sev(&f, "default-encryption"), Severity::Warning);
        assert_eq!(sev(&f, "object-ownership"), Severity::Warning);
        assert_eq!(sev(&f, "versioning"), Severity::Info);
        assert!(
            f.iter()
                .filter(|x| x.severity >= Severity::Warning)
                .all(|x| x.fix.is_some())
        );
    }

    #[test]
    fn tls_policy_variants() {
        assert!(policy_denies_insecure_transport(
            r#"{"Statement":{"Effect":"Deny","Principal":{"AWS":"*"},"Action":["s3:*"],"Condition":{"Bool":{"aws:SecureTransport":false}}}}"#
        ));
        assert!(!policy_denies_insecure_transport(
            r#"{"Statement":[{"Effect":"Allow","Principal":"*","Action":"s3:*","Condition":{"Bool":{"aws:SecureTransport":"false"}}}]}"#
        ));
        assert!(!policy_denies_insecure_transport("not json"));
    }

    #[test]
    fn kms_default_vs_cdnsync_sse() {
        let mut b = good_bucket();
        b.encryption = Ok(Some(Encryption {
            algorithm: "aws:kms".into(),
            kms_key: Some("arn:k".into()),
            bucket_key: true,
        }));
        let f = assess(&b, None, &want());
        assert_eq!(sev(&f, "default-encryption"), Severity::Warning);
        let w = Expectations {
            sse: "aws:kms".into(),
            kms_key: Some("arn:k".into()),
            ..want()
        };
        assert_eq!(
            sev(&assess(&b, None, &w), "default-encryption"),
            Severity::Ok
        );
    }

    #[test]
    fn origin_kinds() {
        assert_eq!(
            origin_kind("site.s3.us-east-1.amazonaws.com", "site"),
            Some(false)
        );
        assert_eq!(origin_kind("site.s3.amazonaws.com", "site"), Some(false));
        assert_eq!(
            origin_kind("site.s3-website-us-east-1.amazonaws.com", "site"),
            Some(true)
        );
        assert_eq!(
            origin_kind("site.s3-website.eu-west-1.amazonaws.com", "site"),
            Some(true)
        );
        assert_eq!(origin_kind("othersite.s3.amazonaws.com", "site"), None);
        assert_eq!(origin_kind("example.com", "site"), None);
    }

    #[test]
    fn distribution_checks() {
        let d = DistributionFacts {
            id: "E1".into(),
            domain: "d1.cloudfront.net".into(),
            origins: vec![OriginFacts {
                id: "o".into(),
                domain: "site.s3.us-east-1.amazonaws.com".into(),
                path: String::new(),
                oac: None,
                oai: Some("origin-access-identity/cloudfront/E2".into()),
                s3_origin: true,
                custom_origin: false,
            }],
            behaviors: vec![BehaviorFacts {
                path_pattern: "*".into(),
                target_origin: "o".into(),
                viewer_protocol_policy: "allow-all".into(),
                compress: false,
                functions: Vec::new(),
                response_headers_policy: None,
            }],
            price_class: "PriceClass_All".into(),
            default_root_object: String::new(),
            error_responses: Vec::new(),
        };
        let w = Expectations {
            compress: crate::cli::CompressArg::None,
            ..want()
        };
        let f = assess(&good_bucket(), Some(&d), &w);
        assert_eq!(sev(&f, "origin-access"), Severity::Warning);
        assert_eq!(sev(&f, "viewer-protocol"), Severity::Failure);
        assert_eq!(sev(&f, "compression"), Severity::Warning);
        assert_eq!(sev(&f, "default-root-object"), Severity::Warning);
        assert_eq!(sev(&f, "price-class"), Severity::Info);
    }
}
