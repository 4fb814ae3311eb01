//! Amazon S3 and S3-compatible servers through aws-sdk-s3: bodies are sent
//! from memory so checksums travel in headers (never `aws-chunked`), custom
//! endpoints use path-style addressing, and SDK errors become typed
//! [`StoreError`]s.

use std::collections::HashMap;

use async_trait::async_trait;
use aws_sdk_s3::Client;
use aws_sdk_s3::error::{ProvideErrorMetadata, SdkError};
use aws_sdk_s3::primitives::ByteStream;
use aws_sdk_s3::types::{
    CompletedMultipartUpload, CompletedPart as S3CompletedPart, Delete, MetadataDirective,
    ObjectIdentifier, ServerSideEncryption,
};
use bytes::Bytes;
use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, utf8_percent_encode};

use super::{
    CompletedPart, ListEntry, ObjectMeta, PutOptions, Sse, Store, StoreError, StoreResult,
};

/// How to reach the bucket, as decided by the caller (the application
/// resolves and checks the endpoint; this backend only uses it).
#[derive(Debug, Clone, Default)]
pub struct S3Options {
    /// The bucket.
    pub bucket: String,
    /// A custom endpoint (path-style addressing); `None`: AWS.
    pub endpoint_url: Option<String>,
    /// How to name the endpoint in errors (credentials removed).
    pub endpoint_shown: Option<String>,
    /// ListObjectsV2 page size (default: server's, 1,000).
    pub list_page_size: Option<i32>,
}

/// A bucket on S3 or an S3-compatible server.
pub struct S3Store {
    client: Client,
    bucket: String,
    page_size: Option<i32>,
    endpoint: Option<String>,
}

impl S3Store {
    /// A store over `sdk` (region, credentials, retries, timeouts already
    /// configured) for `opts.bucket`.
    pub fn new(sdk: &aws_config::SdkConfig, opts: S3Options) -> S3Store {
        let mut b = aws_sdk_s3::config::Builder::from(sdk);
        if let Some(e) = &opts.endpoint_url {
            b = b.endpoint_url(e.clone()).force_path_style(true);
            if sdk.region().is_none() {
                // S3-compatible servers rarely care; SigV4 needs some region.
                b = b.region(aws_config::Region::new("us-east-1"));
            }
        }
        S3Store {
            client: Client::from_conf(b.build()),
            bucket: opts.bucket,
            page_size: opts.list_page_size,
            endpoint: opts.endpoint_shown.or(opts.endpoint_url),
        }
    }

    /// The SDK client (for doctor's reads of bucket settings).
    pub fn client(&self) -> &Client {
        &self.client
    }

    fn map_err<E>(
        &self,
        key: &str,
        err: SdkError<E, aws_sdk_s3::config::http::HttpResponse>,
    ) -> StoreError
    where
        E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
    {
        let key = key.to_string();
        match &err {
            SdkError::ServiceError(se) => {
                let status = se.raw().status().as_u16();
                let code = se.err().code().unwrap_or("").to_string();
                let message = se.err().message().unwrap_or("").to_string();
                let region_hdr = se
                    .raw()
                    .headers()
                    .get("x-amz-bucket-region")
                    .map(str::to_string);
                let detail = if message.is_empty() {
                    if code.is_empty() {
                        format!("HTTP {status}")
                    } else {
                        code.clone()
                    }
                } else if code.is_empty() {
                    message.clone()
                } else {
                    format!("{code}: {message}")
                };
                classify(
                    &self.bucket,
                    key,
                    status,
                    &code,
                    &message,
                    region_hdr,
                    detail,
                )
            }
            SdkError::TimeoutError(_)
            | SdkError::DispatchFailure(_)
            | SdkError::ResponseError(_) => StoreError::Transient {
                key,
                message: error_chain(&err),
            },
            _ => StoreError::Other {
                key,
                message: error_chain(&err),
            },
        }
    }
}

/// Decide the typed error for an S3 error response. One place, so every
/// operation maps codes the same way.
fn classify(
    bucket: &str,
    key: String,
    status: u16,
    code: &str,
    message: &str,
    region_hdr: Option<String>,
    detail: String,
) -> StoreError {
    match code {
        "NoSuchBucket" => {
            return StoreError::NoSuchBucket {
                bucket: bucket.into(),
            };
        }
        "PermanentRedirect"
        | "AuthorizationHeaderMalformed"
        | "IllegalLocationConstraintException" => {
            let region = region_hdr.or_else(|| {
                // "the region 'us-east-1' is wrong; expecting 'eu-west-1'"
                message
                    .split("expecting '")
                    .nth(1)
                    .and_then(|r| r.split('\'').next())
                    .map(str::to_string)
            });
            return StoreError::WrongRegion {
                bucket: bucket.into(),
                region,
            };
        }
        "AccessDenied"
        | "InvalidAccessKeyId"
        | "SignatureDoesNotMatch"
        | "ExpiredToken"
        | "InvalidToken"
        | "TokenRefreshRequired"
        | "AllAccessDisabled"
        | "AccountProblem" => {
            let hint = match code {
                "InvalidAccessKeyId" => " (the access key id is not known to the server)",
                "SignatureDoesNotMatch" => " (check the secret access key)",
                "ExpiredToken" | "TokenRefreshRequired" => " (the session credentials expired)",
                _ => "",
            };
            return StoreError::Denied {
                key,
                message: format!("{detail}{hint}"),
            };
        }
        "PreconditionFailed" => return StoreError::Precondition { key },
        "NoSuchKey" | "NotFound" | "NoSuchUpload" => return StoreError::NotFound { key },
        "SlowDown"
        | "InternalError"
        | "ServiceUnavailable"
        | "RequestTimeout"
        | "RequestTimeTooSkewed"
        | "ConditionalRequestConflict"
        | "OperationAborted" => {
            return StoreError::Transient {
                key,
                message: detail,
            };
        }
        _ => {}
    }
    match status {
        301 | 307 => StoreError::WrongRegion {
            bucket: bucket.into(),
            region: region_hdr,
        },
        403 => StoreError::Denied {
            key,
            message: detail,
        },
        404 => StoreError::NotFound { key },
        409 => StoreError::Transient {
            key,
            message: detail,
        },
        412 => StoreError::Precondition { key },
        s if s >= 500 || s == 429 => StoreError::Transient {
            key,
            message: detail,
        },
        _ => StoreError::Other {
            key,
            message: detail,
        },
    }
}

/// A streamed body, unless it holds more than `max` bytes (whatever the
/// server said its length was).
async fn read_at_most(
    mut body: ByteStream,
    max: u64,
) -> Result<Option<Bytes>, aws_sdk_s3::primitives::ByteStreamError> {
    let mut out = bytes::BytesMut::new();
    while let Some(chunk) = body.try_next().await? {
        if out.len() as u64 + chunk.len() as u64 > max {
            return Ok(None);
        }
        out.extend_from_slice(&chunk);
    }
    Ok(Some(out.freeze()))
}

/// The innermost source of an error ("Connection refused (os error 111)"),
/// or the timeout itself.
fn root_cause(e: &(dyn std::error::Error + 'static)) -> String {
    let mut cur = e;
    while let Some(c) = cur.source() {
        cur = c;
    }
    let s = cur.to_string();
    if s.is_empty() { error_chain(e) } else { s }
}

/// The error and its sources on one line.
pub fn error_chain(e: &(dyn std::error::Error + 'static)) -> String {
    let mut s = e.to_string();
    let mut cur = e.source();
    while let Some(c) = cur {
        let cs = c.to_string();
        if !s.contains(&cs) {
            s.push_str(": ");
            s.push_str(&cs);
        }
        cur = c.source();
    }
    s
}

/// Characters escaped in `x-amz-copy-source` (everything but unreserved and `/`).
const COPY_SOURCE: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'_')
    .remove(b'.')
    .remove(b'~')
    .remove(b'/');

fn sse_parts(sse: &Sse) -> (Option<ServerSideEncryption>, Option<String>, Option<bool>) {
    match sse {
        Sse::None => (None, None, None),
        Sse::Aes256 => (Some(ServerSideEncryption::Aes256), None, None),
        Sse::Kms { key_id, bucket_key } => (
            Some(ServerSideEncryption::AwsKms),
            key_id.clone(),
            Some(*bucket_key),
        ),
    }
}

fn meta_map(o: &PutOptions) -> HashMap<String, String> {
    o.metadata
        .iter()
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect()
}

#[async_trait]
impl Store for S3Store {
    fn describe(&self) -> String {
        match &self.endpoint {
            Some(e) => format!("s3://{} at {e}", self.bucket),
            None => format!("s3://{}", self.bucket),
        }
    }

    async fn check(&self) -> StoreResult<()> {
        match self
            .client
            .list_objects_v2()
            .bucket(&self.bucket)
            .max_keys(1)
            .send()
            .await
        {
            Ok(_) => Ok(()),
            // The first request could not even connect: say so, not
            // "temporary failure".
            Err(e @ (SdkError::DispatchFailure(_) | SdkError::TimeoutError(_))) => {
                Err(StoreError::Unreachable {
                    endpoint: self
                        .endpoint
                        .clone()
                        .unwrap_or_else(|| "the S3 endpoint".into()),
                    message: root_cause(&e),
                })
            }
            Err(e) => Err(self.map_err("", e)),
        }
    }

    async fn list(&self, prefix: &str) -> StoreResult<Vec<ListEntry>> {
        let mut out = Vec::new();
        let mut token: Option<String> = None;
        loop {
            let mut req = self
                .client
                .list_objects_v2()
                .bucket(&self.bucket)
                .prefix(prefix);
            if let Some(n) = self.page_size {
                req = req.max_keys(n);
            }
            if let Some(t) = &token {
                req = req.continuation_token(t);
            }
            let page = req.send().await.map_err(|e| self.map_err(prefix, e))?;
            for o in page.contents() {
                if let Some(k) = o.key() {
                    out.push(ListEntry {
                        key: k.to_string(),
                        size: o.size().unwrap_or(0).max(0) as u64,
                    });
                }
            }
            match page.next_continuation_token() {
                Some(t) if page.is_truncated().unwrap_or(false) => token = Some(t.to_string()),
                _ => break,
            }
        }
        out.sort_by(|a, b| a.key.cmp(&b.key));
        Ok(out)
    }

    fn pages_natively(&self) -> bool {
        true
    }

    async fn list_page(
        &self,
        prefix: &str,
        start_after: Option<&str>,
        max: usize,
    ) -> StoreResult<Vec<ListEntry>> {
        let mut req = self
            .client
            .list_objects_v2()
            .bucket(&self.bucket)
            .prefix(prefix)
            .max_keys(max.clamp(1, 1000) as i32)
            .set_start_after(start_after.map(str::to_string));
        if let Some(n) = self.page_size {
            req = req.max_keys(n.min(max as i32));
        }
        let page = req.send().await.map_err(|e| self.map_err(prefix, e))?;
        let mut out: Vec<ListEntry> = page
            .contents()
            .iter()
            .filter_map(|o| {
                o.key().map(|k| ListEntry {
                    key: k.to_string(),
                    size: o.size().unwrap_or(0).max(0) as u64,
                })
            })
            .collect();
        out.sort_by(|a, b| a.key.cmp(&b.key));
        Ok(out)
    }

    async fn head(&self, key: &str) -> StoreResult<Option<ObjectMeta>> {
        match self
            .client
            .head_object()
            .bucket(&self.bucket)
            .key(key)
            .checksum_mode(aws_sdk_s3::types::ChecksumMode::Enabled)
            .send()
            .await
        {
            Ok(o) => Ok(Some(ObjectMeta {
                checksum_crc32: o.checksum_crc32().map(str::to_string),
                size: o.content_length().unwrap_or(0).max(0) as u64,
                content_type: o.content_type().map(str::to_string),
                cache_control: o.cache_control().map(str::to_string),
                content_encoding: o.content_encoding().map(str::to_string),
                content_disposition: o.content_disposition().map(str::to_string),
                metadata: o
                    .metadata()
                    .map(|m| {
                        m.iter()
                            .map(|(k, v)| (k.to_ascii_lowercase(), v.clone()))
                            .collect()
                    })
                    .unwrap_or_default(),
                sse: o.server_side_encryption().map(|s| s.as_str().to_string()),
                sse_kms_key_id: o.ssekms_key_id().map(str::to_string),
            })),
            Err(e) => match self.map_err(key, e) {
                StoreError::NotFound { .. } => Ok(None),
                other => Err(other),
            },
        }
    }

    async fn get_tagged(
        &self,
        key: &str,
        max: u64,
    ) -> StoreResult<Option<(Bytes, Option<String>)>> {
        // The SDK retries the request, not the reading of a streamed body: a
        // connection lost mid-body is a transient error for the caller's
        // retry policy.
        let o = match self
            .client
            .get_object()
            .bucket(&self.bucket)
            .key(key)
            .send()
            .await
        {
            Ok(o) => o,
            Err(e) => {
                return match self.map_err(key, e) {
                    StoreError::NotFound { .. } => Ok(None),
                    other => Err(other),
                };
            }
        };
        let tag = o.e_tag().map(str::to_string);
        let size = o.content_length().unwrap_or(0).max(0) as u64;
        let too_large = |size| StoreError::TooLarge {
            key: key.into(),
            size,
            max,
        };
        if size > max {
            return Err(too_large(size));
        }
        match read_at_most(o.body, max).await {
            Ok(Some(data)) => Ok(Some((data, tag))),
            Ok(None) => Err(too_large(max.saturating_add(1))),
            Err(e) => Err(StoreError::Transient {
                key: key.into(),
                message: format!("body read failed: {}", error_chain(&e)),
            }),
        }
    }

    async fn read_range(&self, key: &str, offset: u64, len: u64) -> StoreResult<Bytes> {
        if len == 0 {
            return Ok(Bytes::new());
        }
        let o = self
            .client
            .get_object()
            .bucket(&self.bucket)
            .key(key)
            .range(format!("bytes={offset}-{}", offset + len - 1))
            .send()
            .await
            .map_err(|e| self.map_err(key, e))?;
        read_at_most(o.body, len)
            .await
            .map_err(|e| StoreError::Transient {
                key: key.into(),
                message: error_chain(&e),
            })?
            .ok_or_else(|| StoreError::Other {
                key: key.into(),
                message: "a ranged read returned more than asked".into(),
            })
    }

    async fn get(&self, key: &str, max: u64) -> StoreResult<Option<Bytes>> {
        Ok(self.get_tagged(key, max).await?.map(|(b, _)| b))
    }

    async fn put(&self, key: &str, body: Bytes, opts: &PutOptions) -> StoreResult<()> {
        let (sse, kms, bucket_key) = sse_parts(&opts.sse);
        let mut req = self
            .client
            .put_object()
            .bucket(&self.bucket)
            .key(key)
            .body(ByteStream::from(body))
            .content_type(&opts.content_type)
            .cache_control(&opts.cache_control)
            .set_content_encoding(opts.content_encoding.clone())
            .set_content_disposition(opts.content_disposition.clone())
            .set_metadata(Some(meta_map(opts)))
            .set_server_side_encryption(sse)
            .set_ssekms_key_id(kms)
            .set_bucket_key_enabled(bucket_key);
        if opts.if_none_match {
            req = req.if_none_match("*");
        }
        if let Some(tag) = &opts.if_match {
            req = req.if_match(tag);
        }
        req.send()
            .await
            .map(|_| ())
            .map_err(|e| self.map_err(key, e))
    }

    async fn copy(&self, src: &str, dst: &str, opts: &PutOptions) -> StoreResult<()> {
        let (sse, kms, bucket_key) = sse_parts(&opts.sse);
        let source = format!("{}/{}", self.bucket, utf8_percent_encode(src, COPY_SOURCE));
        self.client
            .copy_object()
            .bucket(&self.bucket)
            .key(dst)
            .copy_source(source)
            .metadata_directive(MetadataDirective::Replace)
            .content_type(&opts.content_type)
            .cache_control(&opts.cache_control)
            .set_content_encoding(opts.content_encoding.clone())
            .set_content_disposition(opts.content_disposition.clone())
            .set_metadata(Some(meta_map(opts)))
            .set_server_side_encryption(sse)
            .set_ssekms_key_id(kms)
            .set_bucket_key_enabled(bucket_key)
            .send()
            .await
            .map(|_| ())
            .map_err(|e| self.map_err(dst, e))
    }

    async fn delete_many(&self, keys: &[String]) -> StoreResult<Vec<(String, StoreError)>> {
        let mut failed = Vec::new();
        for chunk in keys.chunks(1000) {
            let objects: Vec<ObjectIdentifier> = chunk
                .iter()
                .map(|k| ObjectIdentifier::builder().key(k).build().expect("key set"))
                .collect();
            let delete = Delete::builder()
                .set_objects(Some(objects))
                .quiet(true)
                .build()
                .expect("objects set");
            let out = self
                .client
                .delete_objects()
                .bucket(&self.bucket)
                .delete(delete)
                .send()
                .await
                .map_err(|e| self.map_err(&chunk[0], e))?;
            for e in out.errors() {
                let key = e.key().unwrap_or("").to_string();
                let code = e.code().unwrap_or("");
                let msg = e.message().unwrap_or("");
                let err = classify(
                    &self.bucket,
                    key.clone(),
                    0,
                    code,
                    msg,
                    None,
                    format!("{code}: {msg}"),
                );
                failed.push((key, err));
            }
        }
        Ok(failed)
    }

    async fn create_multipart(&self, key: &str, opts: &PutOptions) -> StoreResult<String> {
        let (sse, kms, bucket_key) = sse_parts(&opts.sse);
        let out = self
            .client
            .create_multipart_upload()
            .bucket(&self.bucket)
            .key(key)
            .content_type(&opts.content_type)
            .cache_control(&opts.cache_control)
            .set_content_encoding(opts.content_encoding.clone())
            .set_content_disposition(opts.content_disposition.clone())
            .set_metadata(Some(meta_map(opts)))
            .set_server_side_encryption(sse)
            .set_ssekms_key_id(kms)
            .set_bucket_key_enabled(bucket_key)
            .send()
            .await
            .map_err(|e| self.map_err(key, e))?;
        out.upload_id()
            .map(str::to_string)
            .ok_or_else(|| StoreError::Other {
                key: key.into(),
                message: "server returned no upload id".into(),
            })
    }

    async fn upload_part(
        &self,
        key: &str,
        upload_id: &str,
        number: i32,
        body: Bytes,
    ) -> StoreResult<CompletedPart> {
        let out = self
            .client
            .upload_part()
            .bucket(&self.bucket)
            .key(key)
            .upload_id(upload_id)
            .part_number(number)
            .body(ByteStream::from(body))
            .send()
            .await
            .map_err(|e| self.map_err(key, e))?;
        Ok(CompletedPart {
            number,
            etag: out.e_tag().unwrap_or("").to_string(),
            checksum_crc32: out.checksum_crc32().map(str::to_string),
        })
    }

    async fn complete_multipart(
        &self,
        key: &str,
        upload_id: &str,
        parts: Vec<CompletedPart>,
    ) -> StoreResult<()> {
        let parts: Vec<S3CompletedPart> = parts
            .into_iter()
            .map(|p| {
                S3CompletedPart::builder()
                    .part_number(p.number)
                    .e_tag(p.etag)
                    .set_checksum_crc32(p.checksum_crc32)
                    .build()
            })
            .collect();
        self.client
            .complete_multipart_upload()
            .bucket(&self.bucket)
            .key(key)
            .upload_id(upload_id)
            .multipart_upload(
                CompletedMultipartUpload::builder()
                    .set_parts(Some(parts))
                    .build(),
            )
            .send()
            .await
            .map(|_| ())
            .map_err(|e| self.map_err(key, e))
    }

    async fn abort_multipart(&self, key: &str, upload_id: &str) -> StoreResult<()> {
        self.client
            .abort_multipart_upload()
            .bucket(&self.bucket)
            .key(key)
            .upload_id(upload_id)
            .send()
            .await
            .map(|_| ())
            .map_err(|e| self.map_err(key, e))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn classifies_errors() {
        let c = |status, code: &str, msg: &str, hdr: Option<&str>| {
            classify(
                "b",
                "k".into(),
                status,
                code,
                msg,
                hdr.map(str::to_string),
                "d".into(),
            )
        };
        assert!(matches!(
            c(404, "NoSuchBucket", "", None),
            StoreError::NoSuchBucket { .. }
        ));
        assert!(matches!(
            c(403, "SignatureDoesNotMatch", "", None),
            StoreError::Denied { .. }
        ));
        assert!(matches!(c(403, "", "", None), StoreError::Denied { .. }));
        assert_eq!(
            c(
                400,
                "AuthorizationHeaderMalformed",
                "the region 'us-east-1' is wrong; expecting 'eu-west-1'",
                None
            ),
            StoreError::WrongRegion {
                bucket: "b".into(),
                region: Some("eu-west-1".into())
            }
        );
        assert_eq!(
            c(301, "", "", Some("ap-south-1")),
            StoreError::WrongRegion {
                bucket: "b".into(),
                region: Some("ap-south-1".into())
            }
        );
        assert!(c(503, "SlowDown", "", None).is_transient());
        assert!(c(500, "", "", None).is_transient());
        assert!(matches!(
            c(412, "", "", None),
            StoreError::Precondition { .. }
        ));
        assert!(matches!(
            c(400, "InvalidArgument", "", None),
            StoreError::Other { .. }
        ));
    }
}
