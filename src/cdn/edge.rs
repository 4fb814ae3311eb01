//! Edge routing on CloudFront: cdnsync's two CloudFront Functions
//! (created, updated, tested and published only when their code changed),
//! associated with the behaviours that serve the site's origin, and the
//! 403/404 error responses pointing at the site's 404 page. Foreign
//! function associations are never replaced.

use aws_sdk_cloudfront::primitives::Blob;
use aws_sdk_cloudfront::types::{
    CustomErrorResponse, CustomErrorResponses, DistributionConfig, EventType, FunctionAssociation,
    FunctionAssociations, FunctionConfig, FunctionRuntime, FunctionStage, KeyValueStoreAssociation,
    KeyValueStoreAssociations,
};

use super::cloudfront::CloudFront;
use super::{CdnError, EdgeRouting, RoutingApplied};

/// The functions' event types, in the order [`EdgeRouting`] holds them.
const EVENTS: [(&str, EventType); 2] = [
    ("request", EventType::ViewerRequest),
    ("response", EventType::ViewerResponse),
];

/// How long CloudFront caches an error answer (seconds).
const ERROR_TTL: i64 = 10;

/// What a function's comment says about its code: `cdnsync <hash>`
/// (compared before updating, and by `doctor` to find drift).
pub fn code_id(code: &str) -> String {
    format!("cdnsync {}", &blake3::hash(code.as_bytes()).to_hex()[..32])
}

/// The base a generated function's code routes under (its `var B=` line).
pub fn base_in(code: &str) -> Option<String> {
    let line = code.lines().find(|l| l.starts_with("var B="))?;
    let value = line.strip_prefix("var B=")?.strip_suffix(';')?;
    if value == "''" {
        return Some(String::new());
    }
    serde_json::from_str(value).ok()
}

/// The URL path a site under key `prefix` is served under through an
/// origin with `origin_path` (`/docs`, or `""` at the root); `None` when
/// the origin path is not above the prefix (viewers cannot reach it).
pub fn site_base(origin_path: &str, prefix: &str) -> Option<String> {
    let path = origin_path.trim_matches('/');
    let prefix = prefix.trim_matches('/');
    let base = if path.is_empty() {
        prefix
    } else {
        prefix
            .strip_prefix(path)
            .filter(|r| r.is_empty() || r.starts_with('/'))?
    };
    let base = base.trim_matches('/');
    Some(if base.is_empty() {
        String::new()
    } else {
        format!("/{base}")
    })
}

impl CloudFront {
    /// The distribution's configuration and the ETag an update must match.
    async fn distribution_config(&self) -> Result<(String, DistributionConfig), CdnError> {
        let out = self
            .client()
            .get_distribution_config()
            .id(self.id())
            .send()
            .await
            .map_err(|e| self.err(e))?;
        let etag = out.e_tag().unwrap_or_default().to_string();
        let config = out
            .distribution_config
            .ok_or_else(|| CdnError::Other(self.id().into(), "no distribution config".into()))?;
        Ok((etag, config))
    }

    /// Write `config` back, if it is still the version `etag` names.
    async fn update_config(
        &self,
        etag: String,
        config: DistributionConfig,
    ) -> Result<(), CdnError> {
        self.client()
            .update_distribution()
            .id(self.id())
            .if_match(etag)
            .distribution_config(config)
            .send()
            .await
            .map_err(|e| self.err(e))?;
        Ok(())
    }

    fn function_name(&self, kind: &str) -> String {
        format!("cdnsync-{}-{kind}", self.id())
    }

    /// A function cdnsync made for this distribution (by its name).
    fn ours(&self, arn: &str) -> bool {
        arn.contains(&format!(":function/cdnsync-{}-", self.id()))
    }

    /// Make this distribution run `edge`: (what changed, the function ARNs).
    pub(super) async fn apply_edge(
        &self,
        bucket: &str,
        edge: &EdgeRouting,
    ) -> Result<RoutingApplied, CdnError> {
        let (etag, mut config) = self.distribution_config().await?;
        let (origin, base) = self.check_origin(&config, bucket, &edge.prefix)?;
        // Refuse before anything is written: one distribution's behaviours
        // route one site.
        let live = self.live_code(&self.function_name("request")).await?;
        self.check_same_site(live.as_deref(), &base)?;
        let request = (edge.with_base)(&edge.request, &base);
        let response = edge.response.as_deref().map(|c| (edge.with_base)(c, &base));
        let codes = [Some(request.as_str()), response.as_deref()];
        let wanted: Vec<bool> = codes.iter().map(Option::is_some).collect();
        self.associate(&mut config, &origin, &[None, None], &wanted)?;
        let mut arns = [None, None];
        let mut changed = false;
        // The store first: the new function reads keys that must be there
        // when it goes live; the live function's keys stay.
        let mut store = None;
        if let Some(data) = &edge.kvs {
            let arn = self.ensure_kvs().await?;
            let keep = live.as_deref().and_then(super::kvs::version_in);
            changed |= self.sync_kvs(&arn, data, keep.as_deref()).await?;
            store = Some(arn);
        }
        for (i, (kind, _)) in EVENTS.iter().enumerate() {
            if let Some(code) = codes[i] {
                let kvs = if i == 0 { store.as_deref() } else { None };
                let (arn, c) = self
                    .ensure_function(&self.function_name(kind), code, kvs)
                    .await?;
                changed |= c;
                arns[i] = Some(arn);
            }
        }
        let mut assoc_changed = self.associate(&mut config, &origin, &arns, &wanted)?;
        if let Some(page) = &edge.not_found {
            assoc_changed |= error_responses(&mut config, &format!("{base}{page}"));
        }
        if assoc_changed {
            self.update_config(etag, config).await?;
        }
        Ok(RoutingApplied {
            distribution: self.id().to_string(),
            changed: changed || assoc_changed,
            functions: arns.into_iter().flatten().collect(),
        })
    }

    /// Refuse to route a site under `base` where cdnsync's function routes
    /// another one (a second target sharing the distribution).
    fn check_same_site(&self, live: Option<&str>, base: &str) -> Result<(), CdnError> {
        match live.and_then(base_in) {
            Some(other) if other != base => Err(CdnError::Setup(format!(
                "{}: cdnsync's function already routes the site under `{}`, not this one (`{}`); one distribution routes one site: publish one of them with --no-routing, or delete function {} to move the site",
                self.id(),
                if other.is_empty() { "/" } else { &other },
                if base.is_empty() { "/" } else { base },
                self.function_name("request")
            ))),
            _ => Ok(()),
        }
    }

    /// Stop running cdnsync's functions on the behaviours serving
    /// `bucket` (the live release has no routing); other functions and the
    /// error responses stay. `None` when no origin serves the bucket, when
    /// cdnsync's function routes another site (under another prefix), or
    /// when reading the distribution is not allowed (it then never ran
    /// cdnsync's routing through these credentials).
    pub(super) async fn remove_edge(
        &self,
        bucket: &str,
        prefix: &str,
    ) -> Result<Option<RoutingApplied>, CdnError> {
        let (etag, mut config) = match self.distribution_config().await {
            Ok(c) => c,
            Err(CdnError::Denied(..)) => return Ok(None),
            Err(e) => return Err(e),
        };
        let Ok(found) = self.find_origin(&config, bucket) else {
            return Ok(None);
        };
        let origin = found.id.clone();
        let base = site_base(found.origin_path.as_deref().unwrap_or(""), prefix);
        let live = self.live_code(&self.function_name("request")).await?;
        if let (Some(code), Some(base)) = (live.as_deref(), base.as_deref())
            && base_in(code).is_some_and(|b| b != base)
        {
            return Ok(None);
        }
        let changed = self.associate(&mut config, &origin, &[None, None], &[false, false])?;
        if changed {
            self.update_config(etag, config).await?;
        }
        Ok(Some(RoutingApplied {
            distribution: self.id().to_string(),
            changed,
            functions: Vec::new(),
        }))
    }

    /// Whether every behaviour serving `bucket` has `Compress` on.
    pub(super) async fn edge_compresses(&self, bucket: &str) -> Result<bool, CdnError> {
        let (_, config) = self.distribution_config().await?;
        let origin = self.find_origin(&config, bucket)?.id.clone();
        // (Compress, cache policy) of every behaviour serving the bucket.
        let mut behaviours: Vec<(Option<bool>, Option<String>)> = config
            .default_cache_behavior
            .iter()
            .filter(|d| d.target_origin_id == origin)
            .map(|d| (d.compress, d.cache_policy_id.clone()))
            .collect();
        behaviours.extend(
            config
                .cache_behaviors
                .iter()
                .flat_map(|c| c.items.iter().flatten())
                .filter(|b| b.target_origin_id == origin)
                .map(|b| (b.compress, b.cache_policy_id.clone())),
        );
        if behaviours.is_empty() || behaviours.iter().any(|(c, _)| !c.unwrap_or(false)) {
            return Ok(false);
        }
        // With a cache policy, CloudFront compresses only in the encodings
        // the policy enables (legacy cache settings: gzip).
        for id in behaviours.iter().filter_map(|(_, p)| p.as_deref()) {
            if id.is_empty() {
                continue;
            }
            let out = self
                .client()
                .get_cache_policy()
                .id(id)
                .send()
                .await
                .map_err(|e| self.err(e))?;
            let params = out
                .cache_policy
                .and_then(|p| p.cache_policy_config)
                .and_then(|c| c.parameters_in_cache_key_and_forwarded_to_origin);
            let encodes = params.is_some_and(|p| {
                p.enable_accept_encoding_gzip || p.enable_accept_encoding_brotli.unwrap_or(false)
            });
            if !encodes {
                return Ok(false);
            }
        }
        Ok(true)
    }

    /// The origin serving `bucket` (a lone origin is assumed to).
    fn find_origin<'c>(
        &self,
        config: &'c DistributionConfig,
        bucket: &str,
    ) -> Result<&'c aws_sdk_cloudfront::types::Origin, CdnError> {
        let origins = config
            .origins
            .as_ref()
            .map(|o| o.items.as_slice())
            .unwrap_or(&[]);
        origins
            .iter()
            .find(|o| o.domain_name.starts_with(&format!("{bucket}.")) || o.domain_name == bucket)
            .or(if origins.len() == 1 { origins.first() } else { None })
            .ok_or_else(|| {
                CdnError::Setup(format!(
                    "{}: no origin serves bucket {bucket}; cdnsync needs to know which behaviours serve the site",
                    self.id()
                ))
            })
    }

    /// The id of the origin serving `bucket`, and the URL path the site is
    /// served under (the part of the prefix the origin path does not
    /// cover: `/docs`, or `""`).
    fn check_origin(
        &self,
        config: &DistributionConfig,
        bucket: &str,
        prefix: &str,
    ) -> Result<(String, String), CdnError> {
        let ours = self.find_origin(config, bucket)?;
        let path = ours.origin_path.as_deref().unwrap_or("");
        let Some(base) = site_base(path, prefix) else {
            return Err(CdnError::Setup(format!(
                "{}: the origin path `/{}` is not above the target prefix `/{}`; viewers cannot reach the site through it",
                self.id(),
                path.trim_matches('/'),
                prefix.trim_matches('/')
            )));
        };
        Ok((ours.id.clone(), base))
    }

    /// Put `arns` (request, response) on every behaviour of `origin`;
    /// refuse where another function holds an event cdnsync needs. With
    /// `None` ARNs, only checks. Whether anything changed.
    fn associate(
        &self,
        config: &mut DistributionConfig,
        origin: &str,
        arns: &[Option<String>; 2],
        wanted: &[bool],
    ) -> Result<bool, CdnError> {
        type Lambdas = Option<aws_sdk_cloudfront::types::LambdaFunctionAssociations>;
        let mut lists: Vec<(&mut Option<FunctionAssociations>, &Lambdas, String)> = Vec::new();
        if let Some(d) = config.default_cache_behavior.as_mut()
            && d.target_origin_id == origin
        {
            lists.push((
                &mut d.function_associations,
                &d.lambda_function_associations,
                "the default behaviour".into(),
            ));
        }
        if let Some(items) = config
            .cache_behaviors
            .as_mut()
            .and_then(|c| c.items.as_mut())
        {
            for b in items.iter_mut().filter(|b| b.target_origin_id == origin) {
                let what = format!("behaviour `{}`", b.path_pattern);
                lists.push((
                    &mut b.function_associations,
                    &b.lambda_function_associations,
                    what,
                ));
            }
        }
        // No ARNs for wanted events: a check before anything is written.
        let check_only = arns.iter().all(Option::is_none) && wanted.iter().any(|w| *w);
        let mut changed = false;
        for (list, lambdas, what) in lists {
            // CloudFront runs a function or a Lambda@Edge on a viewer
            // event, never both.
            let lambda_items = lambdas
                .as_ref()
                .and_then(|l| l.items.as_deref())
                .unwrap_or(&[]);
            for (i, (_, event)) in EVENTS.iter().enumerate() {
                if let Some(l) = lambda_items.iter().find(|l| &l.event_type == event)
                    && wanted[i]
                {
                    return Err(CdnError::Setup(format!(
                        "{}: {what} runs Lambda@Edge {} on {}; a CloudFront Function cannot run beside it (publish with --no-routing, or move that logic)",
                        self.id(),
                        l.lambda_function_arn,
                        event.as_str()
                    )));
                }
            }
            let mut items = list
                .as_ref()
                .and_then(|l| l.items.clone())
                .unwrap_or_default();
            let before = items.clone();
            for (i, (_, event)) in EVENTS.iter().enumerate() {
                let at = items.iter().position(|a| &a.event_type == event);
                if let Some(p) = at
                    && wanted[i]
                    && !self.ours(&items[p].function_arn)
                {
                    return Err(CdnError::Setup(format!(
                        "{}: {what} already runs function {} on {}; cdnsync will not replace it (remove it, or publish with --no-routing)",
                        self.id(),
                        items[p].function_arn,
                        event.as_str()
                    )));
                }
                if check_only {
                    continue;
                }
                match (&arns[i], at) {
                    (Some(arn), Some(p)) => items[p].function_arn.clone_from(arn),
                    (Some(arn), None) => items.push(
                        FunctionAssociation::builder()
                            .function_arn(arn)
                            .event_type(event.clone())
                            .build()
                            .map_err(|e| CdnError::Other(self.id().into(), e.to_string()))?,
                    ),
                    // Not wanted any more (no headers, no routing): drop
                    // our own function.
                    (None, Some(p)) if self.ours(&items[p].function_arn) => {
                        items.remove(p);
                    }
                    (None, _) => {}
                }
            }
            if items != before {
                changed = true;
                *list = Some(
                    FunctionAssociations::builder()
                        .quantity(items.len() as i32)
                        .set_items(Some(items))
                        .build()
                        .map_err(|e| CdnError::Other(self.id().into(), e.to_string()))?,
                );
            }
        }
        Ok(changed)
    }

    /// Create or update, test and publish a function when its live code is
    /// not `code`: (ARN, whether it changed).
    /// The LIVE code of one of cdnsync's functions, if it exists.
    async fn live_code(&self, name: &str) -> Result<Option<String>, CdnError> {
        match self
            .client()
            .get_function()
            .name(name)
            .stage(FunctionStage::Live)
            .send()
            .await
        {
            Ok(o) => Ok(o
                .function_code
                .map(|b| String::from_utf8_lossy(b.as_ref()).into_owned())),
            Err(e)
                if e.as_service_error().is_some_and(
                    aws_sdk_cloudfront::operation::get_function::GetFunctionError::is_no_such_function_exists,
                ) =>
            {
                Ok(None)
            }
            Err(e) => Err(self.err(e)),
        }
    }

    /// Create or update, test and publish a function when its live code (or
    /// its KeyValueStore) is not the one wanted: (ARN, whether it changed).
    async fn ensure_function(
        &self,
        name: &str,
        code: &str,
        kvs: Option<&str>,
    ) -> Result<(String, bool), CdnError> {
        let id = code_id(code);
        let stores = |c: &FunctionConfig| -> Vec<String> {
            c.key_value_store_associations()
                .map(|a| {
                    a.items()
                        .iter()
                        .map(|i| i.key_value_store_arn().to_string())
                        .collect()
                })
                .unwrap_or_default()
        };
        let wanted: Vec<String> = kvs.into_iter().map(str::to_string).collect();
        let describe = |stage: FunctionStage| async move {
            match self
                .client()
                .describe_function()
                .name(name)
                .stage(stage)
                .send()
                .await
            {
                Ok(o) => Ok(Some(o)),
                Err(e)
                    if e.as_service_error()
                        .is_some_and(aws_sdk_cloudfront::operation::describe_function::DescribeFunctionError::is_no_such_function_exists) =>
                {
                    Ok(None)
                }
                Err(e) => Err(self.err(e)),
            }
        };
        if let Some(live) = describe(FunctionStage::Live).await?
            && let Some(s) = live.function_summary()
            && s.function_config()
                .is_some_and(|c| c.comment() == id && stores(c) == wanted)
            && let Some(m) = s.function_metadata()
        {
            return Ok((m.function_arn().to_string(), false));
        }
        let mut config = FunctionConfig::builder()
            .comment(&id)
            .runtime(FunctionRuntime::CloudfrontJs20);
        if let Some(arn) = kvs {
            config = config.key_value_store_associations(
                KeyValueStoreAssociations::builder()
                    .quantity(1)
                    .items(
                        KeyValueStoreAssociation::builder()
                            .key_value_store_arn(arn)
                            .build()
                            .map_err(|e| CdnError::Other(name.into(), e.to_string()))?,
                    )
                    .build()
                    .map_err(|e| CdnError::Other(name.into(), e.to_string()))?,
            );
        }
        let config = config
            .build()
            .map_err(|e| CdnError::Other(name.into(), e.to_string()))?;
        let blob = Blob::new(code.as_bytes().to_vec());
        let etag = match describe(FunctionStage::Development).await? {
            None => self
                .client()
                .create_function()
                .name(name)
                .function_config(config)
                .function_code(blob)
                .send()
                .await
                .map_err(|e| self.err(e))?
                .e_tag()
                .map(str::to_string),
            Some(dev) => self
                .client()
                .update_function()
                .name(name)
                .if_match(dev.e_tag().unwrap_or_default())
                .function_config(config)
                .function_code(blob)
                .send()
                .await
                .map_err(|e| self.err(e))?
                .e_tag()
                .map(str::to_string),
        }
        .unwrap_or_default();
        self.test_function(name, &etag).await?;
        let out = self
            .client()
            .publish_function()
            .name(name)
            .if_match(&etag)
            .send()
            .await
            .map_err(|e| self.err(e))?;
        let arn = out
            .function_summary()
            .and_then(|s| s.function_metadata())
            .map(|m| m.function_arn().to_string())
            .ok_or_else(|| {
                CdnError::Other(name.into(), "PublishFunction returned no ARN".into())
            })?;
        Ok((arn, true))
    }

    /// Run the new code once on CloudFront before it goes live.
    async fn test_function(&self, name: &str, etag: &str) -> Result<(), CdnError> {
        let event = if name.ends_with("-response") {
            r#"{"version":"1.0","context":{"eventType":"viewer-response"},"viewer":{"ip":"192.0.2.1"},"request":{"method":"GET","uri":"/index.html","querystring":{},"headers":{},"cookies":{}},"response":{"statusCode":200,"statusDescription":"OK","headers":{},"cookies":{}}}"#
        } else {
            r#"{"version":"1.0","context":{"eventType":"viewer-request"},"viewer":{"ip":"192.0.2.1"},"request":{"method":"GET","uri":"/","querystring":{},"headers":{},"cookies":{}}}"#
        };
        let out = self
            .client()
            .test_function()
            .name(name)
            .if_match(etag)
            .stage(FunctionStage::Development)
            .event_object(Blob::new(event.as_bytes().to_vec()))
            .send()
            .await
            .map_err(|e| self.err(e))?;
        match out.test_result().and_then(|t| t.function_error_message()) {
            Some(m) if !m.is_empty() => Err(CdnError::Other(
                name.into(),
                format!("the generated function fails CloudFront's test: {m}"),
            )),
            _ => Ok(()),
        }
    }
}

/// 403 and 404 from the origin answer `page` with status 404. Whether
/// anything changed.
fn error_responses(config: &mut DistributionConfig, page: &str) -> bool {
    let mut items = config
        .custom_error_responses
        .as_ref()
        .and_then(|c| c.items.clone())
        .unwrap_or_default();
    let before = items.clone();
    for code in [403, 404] {
        // Someone else's answer for this code (an SPA's 403 → /index.html
        // with 200, say) is theirs: left alone.
        if items
            .iter()
            .any(|r| r.error_code == code && r.response_code.as_deref().is_some_and(|c| c != "404"))
        {
            continue;
        }
        items.retain(|r| r.error_code != code);
        if let Ok(r) = CustomErrorResponse::builder()
            .error_code(code)
            .response_page_path(page)
            .response_code("404")
            .error_caching_min_ttl(ERROR_TTL)
            .build()
        {
            items.push(r);
        }
    }
    items.sort_by_key(|r| r.error_code);
    let mut sorted_before = before;
    sorted_before.sort_by_key(|r| r.error_code);
    if items == sorted_before {
        return false;
    }
    config.custom_error_responses = CustomErrorResponses::builder()
        .quantity(items.len() as i32)
        .set_items(Some(items))
        .build()
        .ok();
    true
}
