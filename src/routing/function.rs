//! The CloudFront Functions (runtime `cloudfront-js-2.0`) generated from a
//! routing [`Table`]: the same decisions as [`Table::route`] and
//! [`Table::headers_for`], line for line, with the table embedded as JSON.

use serde::Serialize;

use super::{FUNCTION_MAX, Routing, RoutingRecord, Table};

/// The viewer-request function: redirects, rewrites, directory indexes,
/// clean URLs, SPA fallback. `T` is the table.
const REQUEST: &str = r#"var T=@TABLE@;
function set(a){var o=Object.create(null);for(var i=0;i<a.length;i++)o[a[i]]=1;return o}
var D=T.dirs?set(T.dirs):null,P=set(T.pages);
function dec(s){try{return decodeURIComponent(s)}catch(e){return null}}
function ext(p){return p.split('/').pop().indexOf('.')>=0}
function segs(p){var t=p.replace(/^\/+/,'');if(t.slice(-1)==='/')t=t.slice(0,-1);return t===''?[]:t.split('/')}
function match(pat,path){var p=segs(pat),g=segs(path),c=[];for(var i=0;i<p.length;i++){if(p[i]==='*'){c.push(['splat',g.slice(i).join('/')]);return c}if(i>=g.length)return null;if(p[i].charAt(0)===':')c.push([p[i].slice(1),g[i]]);else if(p[i]!==g[i])return null}return p.length===g.length?c:null}
function expand(to,c){return to.replace(/:([A-Za-z0-9_]*)/g,function(m,n){if(n)for(var i=c.length-1;i>=0;i--)if(c[i][0]===n)return encodeURI(c[i][1]);return m})}
function withq(to,q){return q&&to.indexOf('?')<0?to+'?'+q:to}
function one(l){return /^\/[\/\\]/.test(l)?'/'+l.replace(/^[\/\\]+/,''):l}
function dirKnown(p){return D?!!D[p.replace(/\/+$/,'')]:!ext(p)}
function names(p){if(p.slice(-1)==='/')return dirKnown(p);return ext(p)||dirKnown(p)||!!P[p]}
function resolve(raw,p,q){if(p.slice(-1)==='/'){if(T.ts==='remove'&&p!=='/'&&dirKnown(p))return{s:301,l:one(withq(raw.replace(/\/+$/,''),q))};return raw+'index.html'}
var dir=D?!!D[p]:(!ext(p)&&!P[p]&&!T.spa);if(dir){if(T.ts==='add')return{s:301,l:one(withq(raw+'/',q))};return raw+'/index.html'}
if(P[p])return raw+'.html';if(T.spa&&!ext(p))return T.spa;return raw}
function route(raw,q){var p=dec(raw);if(p===null)p=raw;for(var i=0;i<T.redirects.length;i++){var r=T.redirects[i],c=match(r[0],p);if(!c)continue;var to=expand(r[1],c);if(r[2]!==200){var l=withq(to,q);return{s:r[2],l:r[1].slice(0,2)==='//'?l:one(l)}}if(names(p))continue;var d=dec(to);return resolve(to,d===null?to:d,q)}return resolve(raw,p,q)}
function qs(o){var a=[];for(var k in o){var v=o[k],m=v.multiValue||[v];for(var i=0;i<m.length;i++)a.push(m[i].value===''?k:k+'='+m[i].value)}return a.join('&')}
var W={301:'Moved Permanently',302:'Found',303:'See Other',307:'Temporary Redirect',308:'Permanent Redirect'};
var B='';
function handler(event){var r=event.request,u=r.uri;if(B){if(u!==B&&u.indexOf(B+'/')!==0)return r;u=u.slice(B.length)||'/'}var a=route(u,qs(r.querystring||{}));if(typeof a==='string'){r.uri=B+a;return r}return{statusCode:a.s,statusDescription:W[a.s],headers:{location:{value:a.l.charAt(0)==='/'?B+a.l:a.l}}}}
"#;

/// The first lines of a viewer-request function whose exact redirects live
/// in the distribution's KeyValueStore (keys `V/path`, values `[to, status]`).
const KVS_HEAD: &str = "import cf from 'cloudfront';\nvar K=cf.kvs(),V=@VERSION@;\n";

/// Its handler: the store first (an exact rule there is never preceded by a
/// rule of the function that matches its path), then the table.
const KVS_HANDLER: &str = r#"async function handler(event){var r=event.request,u=r.uri;if(B){if(u!==B&&u.indexOf(B+'/')!==0)return r;u=u.slice(B.length)||'/'}var q=qs(r.querystring||{}),p=dec(u),a=null;if(p===null)p=u;try{var e=JSON.parse(await K.get(V+'/'+segs(p).join('/')));a={s:e[1],l:withq(e[0],q)}}catch(x){}if(!a)a=route(u,q);if(typeof a==='string'){r.uri=B+a;return r}return{statusCode:a.s,statusDescription:W[a.s],headers:{location:{value:a.l.charAt(0)==='/'?B+a.l:a.l}}}}
"#;

/// CloudFront KeyValueStore limits: key and value sizes, store size.
pub const KVS_KEY_MAX: usize = 512;
pub const KVS_VALUE_MAX: usize = 1024;
pub const KVS_STORE_MAX: usize = 5 * 1024 * 1024;

/// Exact redirects moved out of the function into a KeyValueStore.
pub use crate::cdn::KvsEntries as KvsData;

/// The viewer-response function: headers from `_headers` / `[[headers]]`.
const RESPONSE: &str = r#"var H=@HEADERS@;
function dec(s){try{return decodeURIComponent(s)}catch(e){return null}}
function segs(p){var t=p.replace(/^\/+/,'');if(t.slice(-1)==='/')t=t.slice(0,-1);return t===''?[]:t.split('/')}
function match(pat,path){var p=segs(pat),g=segs(path);for(var i=0;i<p.length;i++){if(p[i]==='*')return true;if(i>=g.length)return false;if(p[i].charAt(0)!==':'&&p[i]!==g[i])return false}return p.length===g.length}
function headersFor(s){var al=[s],o={},n=[];if(s.slice(-10)==='index.html')al.push(s.slice(0,-10));if(s.slice(-5)==='.html')al.push(s.slice(0,-5));if(s.slice(-1)==='/')al.push(s+'index.html');
for(var i=0;i<H.length;i++){var hit=false;for(var j=0;j<al.length;j++)if(match(H[i][0],al[j]))hit=true;if(!hit)continue;for(var k=0;k<H[i][1].length;k++)o[H[i][1][k][0].toLowerCase()]=H[i][1][k][1]}return o}
var B='';
function handler(event){var res=event.response,u=event.request.uri;if(B){if(u!==B&&u.indexOf(B+'/')!==0)return res;u=u.slice(B.length)||'/'}var p=dec(u),h=headersFor(p===null?u:p);for(var k in h)res.headers[k]={value:h[k]};return res}
"#;

/// The line of each function naming the URL path the site is served
/// under (empty: the root); [`with_base`] sets it.
const BASE_LINE: &str = "var B='';";

/// The function for a site served under `base` (`/docs`, no trailing
/// slash; `""` for the root): requests outside it pass through, paths are
/// routed relative to it.
pub fn with_base(code: &str, base: &str) -> String {
    let quoted = serde_json::to_string(base).expect("a string serializes");
    code.replacen(BASE_LINE, &format!("var B={quoted};"), 1)
}

/// The functions of a release, and what identifies them.
#[derive(Debug, Clone, Serialize)]
pub struct Compiled {
    pub table: Table,
    /// Viewer-request code.
    pub request: String,
    /// Viewer-response code, when there are header rules.
    pub response: Option<String>,
    /// blake3 of both codes and the 404 page: what the edge must run.
    pub digest: String,
    /// The directory list did not fit: extension-less paths are taken for
    /// directories.
    pub heuristic: bool,
    /// The exact redirects did not fit: they live in a KeyValueStore.
    #[serde(skip)]
    pub kvs: Option<std::sync::Arc<KvsData>>,
}

impl Compiled {
    pub fn record(&self, settings: &Routing) -> RoutingRecord {
        RoutingRecord {
            settings: settings.clone(),
            digest: self.digest.clone(),
        }
    }

    /// What a report shows of it.
    pub fn summary(&self, settings: &Routing, changed: bool) -> Summary {
        Summary {
            digest: self.digest.clone(),
            changed,
            trailing_slash: self.table.ts,
            clean_urls: settings.clean_urls,
            spa: settings.spa.clone(),
            not_found: settings.not_found.clone(),
            redirects: settings.redirects.len(),
            header_rules: settings.headers.len(),
            directories: self
                .table
                .dirs
                .as_ref()
                .map(std::collections::BTreeSet::len),
            kvs_keys: self.kvs.as_ref().map(|k| k.entries.len()),
            request_bytes: self.request.len(),
            response_bytes: self.response.as_ref().map_or(0, String::len),
            request_function: self.request.clone(),
            response_function: self.response.clone(),
            edge: Vec::new(),
        }
    }
}

/// The routing of a publish, as reported (`--json` carries the code).
#[derive(Debug, Clone, Serialize)]
pub struct Summary {
    pub digest: String,
    /// Differs from the live release's routing.
    pub changed: bool,
    pub trailing_slash: super::TrailingSlash,
    pub clean_urls: bool,
    pub spa: Option<String>,
    pub not_found: Option<String>,
    pub redirects: usize,
    pub header_rules: usize,
    /// Directories the function knows (`None`: too many; every
    /// extension-less path is taken for one).
    pub directories: Option<usize>,
    /// Exact redirects kept in the distribution's KeyValueStore (`None`:
    /// all fit in the function).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub kvs_keys: Option<usize>,
    /// Function sizes, against CloudFront's 10,240-byte limit.
    pub request_bytes: usize,
    pub response_bytes: usize,
    pub request_function: String,
    pub response_function: Option<String>,
    /// What each CDN did.
    pub edge: Vec<crate::cdn::RoutingApplied>,
}

fn json<T: Serialize>(v: &T) -> String {
    // `</script>`-style escapes are not needed: the code is never HTML.
    serde_json::to_string(v).expect("routing data serializes")
}

/// What the request function reads of the table (headers are the
/// response function's).
#[derive(Serialize)]
struct RequestTable<'a> {
    ts: super::TrailingSlash,
    dirs: &'a Option<std::collections::BTreeSet<String>>,
    pages: &'a std::collections::BTreeSet<String>,
    spa: &'a Option<String>,
    redirects: &'a [(String, String, u16)],
}

fn request_code(t: &Table) -> String {
    let view = RequestTable {
        ts: t.ts,
        dirs: &t.dirs,
        pages: &t.pages,
        spa: &t.spa,
        redirects: &t.redirects,
    };
    REQUEST.replacen("@TABLE@", &json(&view), 1)
}

/// The key a KeyValueStore holds a redirect from `path` under (the
/// function builds the same from the request path).
fn kvs_key(version: &str, path: &str) -> String {
    format!("{version}/{}", super::segments(path).join("/"))
}

fn exact(pattern: &str) -> bool {
    super::segments(pattern)
        .iter()
        .all(|s| *s != "*" && !s.starts_with(':'))
}

/// Split the table's redirects: exact redirects (not rewrites) that no rule
/// kept in the function precedes for their path go to the store, first
/// rule winning, as `route` decides. `None` when nothing moves.
fn split_kvs(table: &Table) -> Option<(Table, KvsData)> {
    let mut kept: Vec<(String, String, u16)> = Vec::new();
    let mut moved: Vec<(String, String)> = Vec::new();
    let mut seen = std::collections::BTreeSet::new();
    for (from, to, status) in &table.redirects {
        let key = kvs_key("", from);
        let value = json(&(to, status));
        let movable = *status != 200
            && exact(from)
            && key.len() + 13 <= KVS_KEY_MAX
            && value.len() <= KVS_VALUE_MAX
            && !kept
                .iter()
                .any(|(f, _, _)| super::matches(f, from).is_some());
        if !movable {
            kept.push((from.clone(), to.clone(), *status));
        } else if seen.insert(key.clone()) {
            moved.push((key, value));
        }
    }
    if moved.is_empty() {
        return None;
    }
    let mut h = blake3::Hasher::new();
    for (k, v) in &moved {
        h.update(k.as_bytes());
        h.update(b"\0");
        h.update(v.as_bytes());
        h.update(b"\0");
    }
    let version = h.finalize().to_hex()[..12].to_string();
    let entries = moved
        .into_iter()
        .map(|(k, v)| (format!("{version}{k}"), v))
        .collect();
    let mut small = table.clone();
    small.redirects = kept;
    Some((small, KvsData { version, entries }))
}

/// The viewer-request function reading exact redirects from a store.
fn kvs_request_code(t: &Table, kvs: &KvsData) -> String {
    let code = request_code(t);
    let handler_at = code
        .find("function handler(event)")
        .expect("the request function has a handler");
    format!(
        "{}{}{}",
        KVS_HEAD.replacen("@VERSION@", &json(&kvs.version), 1),
        &code[..handler_at],
        KVS_HANDLER
    )
}

/// Generate the functions for a release with these keys; an error says why
/// they cannot fit CloudFront's 10 KB limit.
pub fn compile(r: &Routing, keys: &[&str]) -> Result<Compiled, String> {
    let full = r.table(keys.iter().copied(), true);
    let mut table = full.clone();
    let mut request = request_code(&table);
    let mut heuristic = false;
    if request.len() > FUNCTION_MAX && !r.clean_urls && r.spa.is_none() {
        table = r.table(keys.iter().copied(), false);
        request = request_code(&table);
        heuristic = true;
    }
    let mut kvs = None;
    if request.len() > FUNCTION_MAX
        && let Some((small, data)) = split_kvs(&table)
    {
        // With the redirects out, the directory list may fit again.
        let mut with_dirs = small.clone();
        with_dirs.dirs = full.dirs.clone();
        let (t, code) = match kvs_request_code(&with_dirs, &data) {
            c if c.len() <= FUNCTION_MAX => (with_dirs, c),
            _ => {
                let c = kvs_request_code(&small, &data);
                (small, c)
            }
        };
        heuristic = t.dirs.is_none();
        table = t;
        request = code;
        // The store keeps the live and earlier versions beside the new.
        let room = KVS_STORE_MAX / crate::cdn::kvs::VERSIONS_KEPT;
        let size: usize = data.entries.iter().map(|(k, v)| k.len() + v.len()).sum();
        if size > room {
            return Err(format!(
                "the redirects would take {size} bytes in a KeyValueStore, over the {room} bytes a version may use ({} exact redirects; CloudFront's limit is {KVS_STORE_MAX} bytes and the store keeps {} versions)",
                data.entries.len(),
                crate::cdn::kvs::VERSIONS_KEPT
            ));
        }
        kvs = Some(std::sync::Arc::new(data));
    }
    if request.len() > FUNCTION_MAX {
        return Err(format!(
            "the routing function would be {} bytes, over CloudFront's {FUNCTION_MAX}-byte limit \
             ({}, {} clean-URL pages, {} redirects the function must hold{}); use fewer pattern redirects or turn clean_urls/spa off",
            request.len(),
            table.dirs.as_ref().map_or_else(
                || "directory list left out".to_string(),
                |d| format!("{} directories", d.len())
            ),
            table.pages.len(),
            table.redirects.len(),
            kvs.as_ref()
                .map(|k| format!(", {} exact ones in a KeyValueStore", k.entries.len()))
                .unwrap_or_default()
        ));
    }
    let response = (!table.headers.is_empty())
        .then(|| RESPONSE.replacen("@HEADERS@", &json(&table.headers), 1));
    if let Some(code) = &response
        && code.len() > FUNCTION_MAX
    {
        return Err(format!(
            "the headers function would be {} bytes, over CloudFront's {FUNCTION_MAX}-byte limit ({} header rules)",
            code.len(),
            table.headers.len()
        ));
    }
    let mut h = blake3::Hasher::new();
    h.update(request.as_bytes());
    h.update(b"\0");
    h.update(response.as_deref().unwrap_or("").as_bytes());
    h.update(b"\0");
    h.update(r.not_found.as_deref().unwrap_or("").as_bytes());
    // The table `serve` routes with: every rule, whatever the edge keeps
    // where (the store's rules answer first only where no kept rule could).
    table.redirects = full.redirects;
    Ok(Compiled {
        digest: h.finalize().to_hex()[..32].to_string(),
        table,
        request,
        response,
        heuristic,
        kvs,
    })
}
