//! ACR's metadata API (`/acr/v1/…`, REST api-version 2021-07-01) for the emulator, and the
//! changeable attributes it enforces on the proxied `/v2/` path.
//!
//! Content comes from the real docker-registry behind the emulator (tags, manifests and
//! digests, asked over HTTP with the emulator's own tokens); what docker-registry does not
//! know lives in an attribute store here: created / last-updated times (100 ns ticks, like
//! ACR's 7 fractional digits, strictly increasing so ordering by time is deterministic),
//! `deleteEnabled` / `writeEnabled` / `readEnabled` / `listEnabled` per repository, manifest
//! and tag, manifests pushed by digest (docker-registry cannot list them), and deleted
//! repositories (docker-registry keeps listing a repository whose manifests are gone).
//!
//! Shapes follow the recorded ACR sessions: `{"repositories":[…]}` for the catalog,
//! `{"registry","imageName","tags":[…]}` / `{"registry","imageName","tag":{…}}`,
//! `{"registry","imageName","manifests":[…]}` / `{…,"manifest":{…}}`, `Link: </acr/v1/…?last=…&n=…&orderby=>;
//! rel="next"`, `202 {"manifestsDeleted","tagsDeleted"}` for a repository delete, `202` with
//! `X-Ms-Int-Docker-Content-Digest` for a tag delete, 401 challenges naming
//! `repository:<name>:metadata_read|metadata_write|delete` or `registry:catalog:*`, and
//! `{"errors":[{"code","message"}]}` bodies (`NAME_UNKNOWN`, `TAG_UNKNOWN`, `MANIFEST_UNKNOWN`).
//! A locked item answers `REGISTRY_DISALLOWED_OPERATION` ("The operation is disallowed on this
//! registry, repository or image."), the code real ACR sends; the status (405) is unverified.
//! As on ACR, `writeEnabled: false` blocks deletes as well as overwrites.
// Handlers answer `Err(response)` to stop early; a response is big, and that is fine here.
#![allow(clippy::result_large_err)]

use std::collections::{BTreeMap, HashMap, HashSet};
use std::path::PathBuf;
use std::sync::{Mutex, MutexGuard};

use bytes::Bytes;
use http_body_util::{BodyExt as _, Full};
use hyper::body::Incoming;
use hyper::header::{ACCEPT, AUTHORIZATION, CONTENT_TYPE};
use hyper::{HeaderMap, Method, Request, StatusCode};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use serde_json::{Map, Value, json};

use super::State;
use super::http::{self, Params, Resp};
use super::jwt;

const BODY_LIMIT: usize = 1 << 20;
const MANIFEST_ACCEPT: &str = "application/vnd.oci.image.manifest.v1+json, application/vnd.oci.image.index.v1+json, application/vnd.docker.distribution.manifest.v2+json, application/vnd.docker.distribution.manifest.list.v2+json, application/vnd.oci.artifact.manifest.v1+json";
const DISALLOWED: &str = "The operation is disallowed on this registry, repository or image. View troubleshooting steps at https://aka.ms/acr/faq/#why-does-my-pull-or-push-request-fail-with-disallowed-operation";

/// The changeable attributes of a repository, manifest or tag.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Attrs {
    delete: bool,
    write: bool,
    read: bool,
    list: bool,
}

impl Default for Attrs {
    fn default() -> Self {
        Self {
            delete: true,
            write: true,
            read: true,
            list: true,
        }
    }
}

impl Attrs {
    /// Deletes need both: ACR's `writeEnabled: false` locks against deletion too.
    fn deletable(self) -> bool {
        self.delete && self.write
    }

    fn json(self) -> Value {
        json!({
            "deleteEnabled": self.delete,
            "writeEnabled": self.write,
            "readEnabled": self.read,
            "listEnabled": self.list,
        })
    }

    /// Applies a PATCH body (any subset of the four booleans); the error says which field.
    fn patch(&mut self, body: &Map<String, Value>) -> Result<(), String> {
        for (key, field) in [
            ("deleteEnabled", &mut self.delete),
            ("writeEnabled", &mut self.write),
            ("readEnabled", &mut self.read),
            ("listEnabled", &mut self.list),
        ] {
            match body.get(key) {
                None | Some(Value::Null) => {}
                Some(Value::Bool(b)) => *field = *b,
                Some(other) => return Err(format!("{key} must be true or false, not {other}")),
            }
        }
        Ok(())
    }
}

#[derive(Debug, Clone, Default)]
struct Entry {
    created: u64,
    updated: u64,
    attrs: Attrs,
    /// Tags: the digest last seen; manifests: unused.
    digest: Option<String>,
    /// Manifests: `quarantineState` / `quarantineDetails` as PATCHed (opaque strings).
    extra: Map<String, Value>,
}

#[derive(Debug, Default)]
struct Store {
    clock: u64,
    repos: HashMap<String, Entry>,
    manifests: HashMap<(String, String), Entry>,
    tags: HashMap<(String, String), Entry>,
    deleted_repos: HashSet<String>,
}

impl Store {
    /// 100 ns ticks since the epoch, strictly increasing.
    fn tick(&mut self) -> u64 {
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| u64::try_from(d.as_nanos() / 100).unwrap_or(u64::MAX))
            .unwrap_or_default();
        self.clock = now.max(self.clock + 1);
        self.clock
    }

    fn fresh(&mut self) -> Entry {
        let t = self.tick();
        Entry {
            created: t,
            updated: t,
            ..Entry::default()
        }
    }

    fn repo(&mut self, name: &str) -> &mut Entry {
        if !self.repos.contains_key(name) {
            let fresh = self.fresh();
            self.repos.insert(name.to_owned(), fresh);
        }
        self.repos.entry(name.to_owned()).or_default()
    }

    fn manifest(&mut self, repo: &str, digest: &str) -> &mut Entry {
        let key = (repo.to_owned(), digest.to_owned());
        if !self.manifests.contains_key(&key) {
            let fresh = self.fresh();
            self.manifests.insert(key.clone(), fresh);
        }
        self.manifests.entry(key).or_default()
    }

    fn tag(&mut self, repo: &str, tag: &str) -> &mut Entry {
        let key = (repo.to_owned(), tag.to_owned());
        if !self.tags.contains_key(&key) {
            let fresh = self.fresh();
            self.tags.insert(key.clone(), fresh);
        }
        self.tags.entry(key).or_default()
    }

    fn forget_manifest(&mut self, repo: &str, digest: &str) {
        self.manifests.remove(&(repo.to_owned(), digest.to_owned()));
        self.tags
            .retain(|(r, _), e| !(r == repo && e.digest.as_deref() == Some(digest)));
    }

    fn repo_attrs(&self, repo: &str) -> Attrs {
        self.repos.get(repo).map(|e| e.attrs).unwrap_or_default()
    }

    fn manifest_attrs(&self, repo: &str, digest: &str) -> Attrs {
        self.manifests
            .get(&(repo.to_owned(), digest.to_owned()))
            .map(|e| e.attrs)
            .unwrap_or_default()
    }

    fn tag_attrs(&self, repo: &str, tag: &str) -> Attrs {
        self.tags
            .get(&(repo.to_owned(), tag.to_owned()))
            .map(|e| e.attrs)
            .unwrap_or_default()
    }
}

/// The emulator's `/acr/v1` state: the attribute store and a client for the registry.
pub(super) struct V1 {
    store: Mutex<Store>,
    client: Client<HttpConnector, Full<Bytes>>,
    /// docker-registry's storage root (tag-only deletes remove the tag's link there, as
    /// the registry has no API for it).
    storage: PathBuf,
}

impl V1 {
    pub(super) fn new(storage: PathBuf) -> Self {
        Self {
            store: Mutex::default(),
            client: Client::builder(TokioExecutor::new()).build_http(),
            storage,
        }
    }

    fn store(&self) -> MutexGuard<'_, Store> {
        self.store
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

/// RFC 3339 with 7 fractional digits, as ACR writes times.
fn time(ticks: u64) -> String {
    let secs = i64::try_from(ticks / 10_000_000).unwrap_or(i64::MAX);
    let base = jwt::rfc3339(secs);
    format!("{}.{:07}Z", base.trim_end_matches('Z'), ticks % 10_000_000)
}

fn acr_error(status: StatusCode, code: &str, message: &str, detail: Option<Value>) -> Resp {
    let mut entry = json!({"code": code, "message": message});
    if let (Some(detail), Value::Object(map)) = (detail, &mut entry) {
        map.insert("detail".into(), detail);
    }
    http::json(status, &json!({ "errors": [entry] }))
}

fn disallowed() -> Resp {
    acr_error(
        StatusCode::METHOD_NOT_ALLOWED,
        "REGISTRY_DISALLOWED_OPERATION",
        DISALLOWED,
        Some(json!({})),
    )
}

fn name_unknown(name: &str) -> Resp {
    acr_error(
        StatusCode::NOT_FOUND,
        "NAME_UNKNOWN",
        &format!("repository {name:?} is not found"),
        None,
    )
}

fn tag_unknown() -> Resp {
    acr_error(
        StatusCode::NOT_FOUND,
        "TAG_UNKNOWN",
        "the specified tag does not exist",
        None,
    )
}

fn manifest_unknown() -> Resp {
    acr_error(
        StatusCode::NOT_FOUND,
        "MANIFEST_UNKNOWN",
        "manifest unknown",
        None,
    )
}

fn bad_request(code: &str, message: &str) -> Resp {
    acr_error(StatusCode::BAD_REQUEST, code, message, None)
}

fn internal(why: &str) -> Resp {
    http::response(
        StatusCode::BAD_GATEWAY,
        "text/plain; charset=utf-8",
        format!("acr-testkit emulator: {why}\n"),
    )
}

fn allow(methods: &str) -> Resp {
    let mut resp = http::response(StatusCode::METHOD_NOT_ALLOWED, "", "");
    http::set_header(&mut resp, "allow", methods);
    resp
}

/// Percent-decoding of one path segment (`library%2Fhello-world`, `sha256%3A…`).
fn decode(segment: &str) -> String {
    let bytes = segment.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = (bytes[i] == b'%')
            .then(|| bytes.get(i + 1..i + 3))
            .flatten()
            .and_then(|h| std::str::from_utf8(h).ok())
            .and_then(|h| u8::from_str_radix(h, 16).ok());
        match hex {
            Some(b) => {
                out.push(b);
                i += 3;
            }
            None => {
                out.push(bytes[i]);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Percent-encoding for a query value.
fn encode(value: &str) -> String {
    value
        .bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// Repository names as the distribution spec defines them (no `..`, no empty components).
fn valid_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 255
        && name.split('/').all(|c| {
            !c.is_empty()
                && c.bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b"._-".contains(&b))
                && c.as_bytes()[0].is_ascii_alphanumeric()
        })
}

fn valid_tag(tag: &str) -> bool {
    !tag.is_empty()
        && tag.len() <= 128
        && tag.as_bytes()[0] != b'.'
        && tag.as_bytes()[0] != b'-'
        && tag
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"._-".contains(&b))
}

fn is_digest(reference: &str) -> bool {
    reference.split_once(':').is_some_and(|(alg, hex)| {
        !alg.is_empty()
            && !hex.is_empty()
            && hex.bytes().all(|b| b.is_ascii_hexdigit())
            && alg
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"+._-".contains(&b))
    })
}

// ---------------------------------------------------------------------------------------
// Tokens

enum Denied {
    Missing,
    Invalid,
    Insufficient,
}

/// Checks the request's bearer token (one of the emulator's access tokens) for `action` on
/// `type:name`.
fn check_token(
    state: &State,
    headers: &HeaderMap,
    resource_type: &str,
    name: &str,
    action: &str,
) -> Result<(), Denied> {
    let Some(value) = headers.get(AUTHORIZATION).and_then(|v| v.to_str().ok()) else {
        return Err(Denied::Missing);
    };
    let Some((scheme, token)) = value.split_once(' ') else {
        return Err(Denied::Invalid);
    };
    if !scheme.eq_ignore_ascii_case("bearer") {
        return Err(Denied::Missing);
    }
    let claims = jwt::verify(token, state.issuer.key.public_key()).map_err(|_| Denied::Invalid)?;
    jwt::check_times(&claims, jwt::now()).map_err(|_| Denied::Invalid)?;
    let text = |k: &str| claims.get(k).and_then(Value::as_str).unwrap_or_default();
    if text("iss") != state.issuer.issuer || text("aud") != state.issuer.service {
        return Err(Denied::Invalid);
    }
    let granted = claims
        .get("access")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .any(|a| {
            a.get("type").and_then(Value::as_str) == Some(resource_type)
                && a.get("name").and_then(Value::as_str) == Some(name)
                && a.get("actions")
                    .and_then(Value::as_array)
                    .into_iter()
                    .flatten()
                    .filter_map(Value::as_str)
                    .any(|a| a == action || a == "*")
        });
    if granted {
        Ok(())
    } else {
        Err(Denied::Insufficient)
    }
}

/// `check_token`, answering ACR's 401 challenge when refused.
fn authorize(
    state: &State,
    headers: &HeaderMap,
    resource_type: &str,
    name: &str,
    action: &str,
) -> Result<(), Resp> {
    let denied = match check_token(state, headers, resource_type, name, action) {
        Ok(()) => return Ok(()),
        Err(denied) => denied,
    };
    let mut www = format!(
        "Bearer realm=\"{}/oauth2/token\",service=\"{}\",scope=\"{resource_type}:{name}:{action}\"",
        state.url, state.issuer.service
    );
    match denied {
        Denied::Missing => {}
        Denied::Invalid => www.push_str(",error=\"invalid_token\""),
        Denied::Insufficient => www.push_str(",error=\"insufficient_scope\""),
    }
    let mut resp = acr_error(
        StatusCode::UNAUTHORIZED,
        "UNAUTHORIZED",
        "authentication required, visit https://aka.ms/acr/authorization for more information.",
        Some(json!([{"Type": resource_type, "Name": name, "Action": action}])),
    );
    http::set_header(&mut resp, "www-authenticate", &www);
    Err(resp)
}

// ---------------------------------------------------------------------------------------
// The registry behind the emulator

struct Upstream {
    status: StatusCode,
    headers: HeaderMap,
    body: Bytes,
}

/// One request to docker-registry with a token the emulator signs for itself (not counted
/// in the stats: tests count what clients do).
async fn upstream(
    state: &State,
    method: Method,
    path: &str,
    repo: Option<&str>,
) -> Result<Upstream, String> {
    let now = jwt::now();
    let mut access = vec![json!({"type": "registry", "name": "catalog", "actions": ["*"]})];
    if let Some(repo) = repo {
        access.push(
            json!({"type": "repository", "name": repo, "actions": ["pull", "push", "delete"]}),
        );
    }
    let claims = json!({
        "iss": state.issuer.issuer,
        "sub": "acr-emulator",
        "aud": state.issuer.service,
        "exp": now + 300,
        "nbf": now - 5,
        "iat": now,
        "jti": state.issuer.key.random_id(),
        "access": access,
    });
    let token = jwt::sign(&state.issuer.key, state.issuer.key_id, &claims)?;
    let request = Request::builder()
        .method(method)
        .uri(format!("{}{path}", state.upstream))
        .header(AUTHORIZATION, format!("Bearer {token}"))
        .header(ACCEPT, MANIFEST_ACCEPT)
        .body(Full::new(Bytes::new()))
        .map_err(|e| format!("building a request for {path}: {e}"))?;
    let resp = state
        .v1
        .client
        .request(request)
        .await
        .map_err(|e| format!("asking docker-registry for {path}: {e}"))?;
    let (parts, body) = resp.into_parts();
    let body = http_body_util::Limited::new(body, 16 << 20)
        .collect()
        .await
        .map_err(|e| format!("reading docker-registry's answer for {path}: {e}"))?
        .to_bytes();
    Ok(Upstream {
        status: parts.status,
        headers: parts.headers,
        body,
    })
}

/// What ACR reports about one manifest, read from the manifest (and its image config).
#[derive(Debug, Clone)]
struct ManifestInfo {
    digest: String,
    media_type: Option<String>,
    config_media_type: Option<String>,
    image_size: u64,
    architecture: Option<String>,
    os: Option<String>,
    references: Vec<Value>,
}

async fn manifest_info(
    state: &State,
    repo: &str,
    reference: &str,
) -> Result<Option<ManifestInfo>, String> {
    let resp = upstream(
        state,
        Method::GET,
        &format!("/v2/{repo}/manifests/{reference}"),
        Some(repo),
    )
    .await?;
    if resp.status == StatusCode::NOT_FOUND {
        return Ok(None);
    }
    if !resp.status.is_success() {
        return Err(format!(
            "docker-registry answered {} for manifest {repo}:{reference}",
            resp.status
        ));
    }
    let digest = resp
        .headers
        .get("docker-content-digest")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned)
        .ok_or("docker-registry sent no Docker-Content-Digest")?;
    let manifest: Value = serde_json::from_slice(&resp.body).unwrap_or_default();
    let text = |v: &Value, k: &str| v.get(k).and_then(Value::as_str).map(str::to_owned);
    let media_type = text(&manifest, "mediaType").or_else(|| {
        resp.headers
            .get(CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned)
    });
    let config = manifest.get("config").cloned().unwrap_or_default();
    let config_media_type = text(&config, "mediaType");
    let size = |v: &Value| v.get("size").and_then(Value::as_u64).unwrap_or_default();
    let layers = manifest
        .get("layers")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    let image_size = resp.body.len() as u64 + size(&config) + layers.iter().map(size).sum::<u64>();
    let references: Vec<Value> = manifest
        .get("manifests")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .map(|m| {
            let platform = m.get("platform").cloned().unwrap_or_default();
            let mut r = Map::new();
            r.insert(
                "digest".into(),
                m.get("digest").cloned().unwrap_or_default(),
            );
            for (key, from) in [("architecture", "architecture"), ("os", "os")] {
                if let Some(v) = platform.get(from) {
                    r.insert(key.into(), v.clone());
                }
            }
            Value::Object(r)
        })
        .collect();
    let (mut architecture, mut os) = (None, None);
    let is_image_config = matches!(
        config_media_type.as_deref(),
        Some(
            "application/vnd.oci.image.config.v1+json"
                | "application/vnd.docker.container.image.v1+json"
        )
    );
    if let (true, Some(config_digest)) = (is_image_config, text(&config, "digest")) {
        let blob = upstream(
            state,
            Method::GET,
            &format!("/v2/{repo}/blobs/{config_digest}"),
            Some(repo),
        )
        .await?;
        if blob.status.is_success() {
            let config: Value = serde_json::from_slice(&blob.body).unwrap_or_default();
            architecture = text(&config, "architecture").filter(|a| !a.is_empty());
            os = text(&config, "os").filter(|o| !o.is_empty());
        }
    }
    Ok(Some(ManifestInfo {
        digest,
        media_type,
        config_media_type,
        image_size,
        architecture,
        os,
        references,
    }))
}

/// Everything about one repository: its tags (name → digest) and manifests.
struct RepoView {
    tags: BTreeMap<String, String>,
    manifests: BTreeMap<String, ManifestInfo>,
}

impl RepoView {
    fn tags_of(&self, digest: &str) -> Vec<String> {
        self.tags
            .iter()
            .filter(|(_, d)| d.as_str() == digest)
            .map(|(t, _)| t.clone())
            .collect()
    }
}

/// Reads a repository from docker-registry and brings the store up to date; `None` when the
/// repository does not exist (or was deleted through `/acr/v1`).
async fn view(state: &State, repo: &str) -> Result<Option<RepoView>, String> {
    if state.v1.store().deleted_repos.contains(repo) {
        return Ok(None);
    }
    let listed = upstream(
        state,
        Method::GET,
        &format!("/v2/{repo}/tags/list"),
        Some(repo),
    )
    .await?;
    let names: Vec<String> = if listed.status.is_success() {
        serde_json::from_slice::<Value>(&listed.body)
            .ok()
            .and_then(|v| v.get("tags").cloned())
            .and_then(|t| serde_json::from_value(t).ok())
            .unwrap_or_default()
    } else {
        Vec::new()
    };
    let mut tags = BTreeMap::new();
    let mut manifests = BTreeMap::new();
    for tag in names {
        if let Some(info) = manifest_info(state, repo, &tag).await? {
            tags.insert(tag, info.digest.clone());
            manifests.insert(info.digest.clone(), info);
        }
    }
    let known: Vec<String> = state
        .v1
        .store()
        .manifests
        .keys()
        .filter(|(r, d)| r == repo && !manifests.contains_key(d))
        .map(|(_, d)| d.clone())
        .collect();
    for digest in known {
        match manifest_info(state, repo, &digest).await? {
            Some(info) => {
                manifests.insert(digest, info);
            }
            None => state.v1.store().forget_manifest(repo, &digest),
        }
    }
    if manifests.is_empty() {
        return Ok(None);
    }
    let mut store = state.v1.store();
    store.repo(repo);
    for digest in manifests.keys() {
        store.manifest(repo, digest);
    }
    for (tag, digest) in &tags {
        let moved = {
            let entry = store.tag(repo, tag);
            let moved = entry.digest.as_deref().is_some_and(|d| d != digest);
            entry.digest = Some(digest.clone());
            moved
        };
        if moved {
            // Pushed straight to docker-registry, not through the emulator.
            let t = store.tick();
            store.tag(repo, tag).updated = t;
        }
    }
    Ok(Some(RepoView { tags, manifests }))
}

// ---------------------------------------------------------------------------------------
// JSON

fn tag_json(store: &mut Store, repo: &str, tag: &str, digest: &str) -> Value {
    let entry = store.tag(repo, tag).clone();
    json!({
        "name": tag,
        "digest": digest,
        "createdTime": time(entry.created),
        "lastUpdateTime": time(entry.updated),
        "signed": false,
        "changeableAttributes": entry.attrs.json(),
    })
}

fn manifest_json(store: &mut Store, repo: &str, info: &ManifestInfo, tags: Vec<String>) -> Value {
    let entry = store.manifest(repo, &info.digest).clone();
    let mut m = Map::new();
    m.insert("digest".into(), info.digest.clone().into());
    m.insert("imageSize".into(), info.image_size.into());
    m.insert("createdTime".into(), time(entry.created).into());
    m.insert("lastUpdateTime".into(), time(entry.updated).into());
    for (key, value) in [
        ("architecture", &info.architecture),
        ("os", &info.os),
        ("mediaType", &info.media_type),
        ("configMediaType", &info.config_media_type),
    ] {
        if let Some(value) = value {
            m.insert(key.into(), value.clone().into());
        }
    }
    if !info.references.is_empty() {
        m.insert("references".into(), info.references.clone().into());
    }
    if !tags.is_empty() {
        m.insert("tags".into(), tags.into());
    }
    let mut attrs = entry.attrs.json();
    if let Value::Object(attrs) = &mut attrs {
        attrs.extend(entry.extra.clone());
    }
    m.insert("changeableAttributes".into(), attrs);
    Value::Object(m)
}

fn repo_json(state: &State, store: &mut Store, repo: &str, view: &RepoView) -> Value {
    let entry = store.repo(repo).clone();
    let mut attrs = entry.attrs.json();
    if let Value::Object(attrs) = &mut attrs {
        attrs.insert("teleportEnabled".into(), false.into());
    }
    json!({
        "registry": state.issuer.service,
        "imageName": repo,
        "createdTime": time(entry.created),
        "lastUpdateTime": time(entry.updated),
        "manifestCount": view.manifests.len(),
        "tagCount": view.tags.len(),
        "changeableAttributes": attrs,
    })
}

// ---------------------------------------------------------------------------------------
// Paging

#[derive(Clone, Copy, PartialEq, Eq)]
enum Order {
    None,
    TimeDesc,
    TimeAsc,
}

fn order(params: &Params) -> Result<Order, Resp> {
    match params.get("orderby").unwrap_or_default() {
        "" => Ok(Order::None),
        "timedesc" => Ok(Order::TimeDesc),
        "timeasc" => Ok(Order::TimeAsc),
        other => Err(bad_request(
            "UNSUPPORTED",
            &format!("orderby {other:?} is not supported; use timedesc or timeasc"),
        )),
    }
}

/// Sorted `(key, updated, item)` rows → one page and the `Link` header value for the next.
fn page<T>(
    mut rows: Vec<(String, u64, T)>,
    order: Order,
    params: &Params,
    link_path: &str,
    extra_query: &str,
) -> Result<(Vec<T>, Option<String>), Resp> {
    match order {
        Order::None => rows.sort_by(|a, b| a.0.cmp(&b.0)),
        Order::TimeDesc => rows.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0))),
        Order::TimeAsc => rows.sort_by(|a, b| a.1.cmp(&b.1).then(a.0.cmp(&b.0))),
    }
    let n = match params.non_empty("n") {
        None => None,
        Some(n) => match n.parse::<usize>() {
            Ok(n) if n > 0 => Some(n),
            _ => {
                return Err(bad_request(
                    "PAGINATION_NUMBER_INVALID",
                    &format!("invalid number of results requested: {n:?}"),
                ));
            }
        },
    };
    if let Some(last) = params.non_empty("last") {
        let start = match order {
            Order::None => rows.iter().position(|r| r.0.as_str() > last),
            _ => rows.iter().position(|r| r.0 == last).map(|i| i + 1),
        }
        .unwrap_or(rows.len());
        rows.drain(..start);
    }
    let more = n.is_some_and(|n| rows.len() > n);
    rows.truncate(n.unwrap_or(usize::MAX));
    let orderby = match order {
        Order::None => "",
        Order::TimeDesc => "timedesc",
        Order::TimeAsc => "timeasc",
    };
    let link = match (more, n, rows.last()) {
        (true, Some(n), Some(last)) => Some(format!(
            "<{link_path}?last={}&n={n}&orderby={orderby}{extra_query}>; rel=\"next\"",
            encode(&last.0)
        )),
        _ => None,
    };
    Ok((rows.into_iter().map(|r| r.2).collect(), link))
}

fn json_page(value: &Value, link: Option<String>) -> Resp {
    let mut resp = http::json(StatusCode::OK, value);
    if let Some(link) = link {
        http::set_header(&mut resp, "link", &link);
    }
    resp
}

async fn read_patch(req: Request<Incoming>) -> Result<Map<String, Value>, Resp> {
    let body = http::read_body(req.into_body(), BODY_LIMIT).await?;
    match serde_json::from_slice::<Value>(&body) {
        Ok(Value::Object(map)) => Ok(map),
        _ => Err(bad_request(
            "BAD_REQUEST",
            "the body must be a JSON object of changeable attributes, such as {\"writeEnabled\": false}",
        )),
    }
}

// ---------------------------------------------------------------------------------------
// Routing

enum Route {
    Catalog,
    Repository(String),
    Tags(String),
    Tag(String, String),
    Manifests(String),
    Manifest(String, String),
}

fn route(path: &str) -> Option<Route> {
    let rest = path.strip_prefix("/acr/v1/")?;
    if rest == "_catalog" {
        return Some(Route::Catalog);
    }
    let segments: Vec<String> = rest.split('/').map(decode).collect();
    let marker = segments
        .iter()
        .rposition(|s| s == "_tags" || s == "_manifests");
    let (name, kind, item) = match marker {
        Some(i) if i > 0 && segments.len() <= i + 2 => (
            segments[..i].join("/"),
            Some(segments[i].as_str()),
            segments.get(i + 1),
        ),
        Some(_) => return None,
        None => (segments.join("/"), None, None),
    };
    if !valid_name(&name) {
        return None;
    }
    Some(match (kind, item) {
        (None, _) => Route::Repository(name),
        (Some("_tags"), None) => Route::Tags(name),
        (Some("_tags"), Some(tag)) => Route::Tag(name, tag.clone()),
        (Some(_), None) => Route::Manifests(name),
        (Some(_), Some(digest)) => Route::Manifest(name, digest.clone()),
    })
}

/// Serves `/acr/v1/…`.
pub(super) async fn handle(state: &State, req: Request<Incoming>) -> Resp {
    let Some(route) = route(req.uri().path()) else {
        return http::response(
            StatusCode::NOT_FOUND,
            "text/plain; charset=utf-8",
            "404 page not found\n",
        );
    };
    let params = http::query(&req);
    let method = req.method().clone();
    let result = match route {
        Route::Catalog => match method {
            Method::GET => catalog(state, &req, &params).await,
            _ => Err(allow("GET")),
        },
        Route::Repository(name) => match method {
            Method::GET => repository_get(state, &req, &name).await,
            Method::PATCH => repository_patch(state, req, &name).await,
            Method::DELETE => repository_delete(state, &req, &name).await,
            _ => Err(allow("GET, PATCH, DELETE")),
        },
        Route::Tags(name) => match method {
            Method::GET => tags_list(state, &req, &name, &params).await,
            _ => Err(allow("GET")),
        },
        Route::Tag(name, tag) => match method {
            Method::GET | Method::PATCH => tag_get_patch(state, req, &name, &tag).await,
            Method::DELETE => tag_delete(state, &req, &name, &tag).await,
            _ => Err(allow("GET, PATCH, DELETE")),
        },
        Route::Manifests(name) => match method {
            Method::GET => manifests_list(state, &req, &name, &params).await,
            _ => Err(allow("GET")),
        },
        Route::Manifest(name, digest) => match method {
            Method::GET | Method::PATCH => manifest_get_patch(state, req, &name, &digest).await,
            Method::DELETE => manifest_delete(state, &req, &name, &digest).await,
            _ => Err(allow("GET, PATCH, DELETE")),
        },
    };
    result.unwrap_or_else(|resp| resp)
}

type Answer = Result<Resp, Resp>;

async fn existing(state: &State, name: &str) -> Result<RepoView, Resp> {
    match view(state, name).await {
        Ok(Some(view)) => Ok(view),
        Ok(None) => Err(name_unknown(name)),
        Err(why) => Err(internal(&why)),
    }
}

async fn catalog(state: &State, req: &Request<Incoming>, params: &Params) -> Answer {
    authorize(state, req.headers(), "registry", "catalog", "*")?;
    let resp = upstream(state, Method::GET, "/v2/_catalog?n=1000", None)
        .await
        .map_err(|why| internal(&why))?;
    if !resp.status.is_success() {
        return Err(internal(&format!(
            "docker-registry answered {} listing its repositories",
            resp.status
        )));
    }
    let names: Vec<String> = serde_json::from_slice::<Value>(&resp.body)
        .ok()
        .and_then(|v| v.get("repositories").cloned())
        .and_then(|r| serde_json::from_value(r).ok())
        .unwrap_or_default();
    let deleted = state.v1.store().deleted_repos.clone();
    let rows = names
        .into_iter()
        .filter(|n| !deleted.contains(n))
        .map(|n| (n.clone(), 0, n))
        .collect();
    let (names, link) = page(rows, Order::None, params, "/acr/v1/_catalog", "")?;
    Ok(json_page(&json!({ "repositories": names }), link))
}

async fn repository_get(state: &State, req: &Request<Incoming>, name: &str) -> Answer {
    authorize(state, req.headers(), "repository", name, "metadata_read")?;
    let view = existing(state, name).await?;
    let mut store = state.v1.store();
    Ok(http::json(
        StatusCode::OK,
        &repo_json(state, &mut store, name, &view),
    ))
}

async fn repository_patch(state: &State, req: Request<Incoming>, name: &str) -> Answer {
    authorize(state, req.headers(), "repository", name, "metadata_write")?;
    let body = read_patch(req).await?;
    let view = existing(state, name).await?;
    let mut store = state.v1.store();
    store
        .repo(name)
        .attrs
        .patch(&body)
        .map_err(|why| bad_request("BAD_REQUEST", &why))?;
    Ok(http::json(
        StatusCode::OK,
        &repo_json(state, &mut store, name, &view),
    ))
}

/// Whether a manifest (with its tags) may go: repository, manifest and every tag on it.
fn manifest_deletable(store: &Store, repo: &str, digest: &str, tags: &[String]) -> bool {
    store.repo_attrs(repo).deletable()
        && store.manifest_attrs(repo, digest).deletable()
        && tags.iter().all(|t| store.tag_attrs(repo, t).deletable())
}

async fn delete_upstream_manifest(state: &State, repo: &str, digest: &str) -> Result<(), Resp> {
    let resp = upstream(
        state,
        Method::DELETE,
        &format!("/v2/{repo}/manifests/{digest}"),
        Some(repo),
    )
    .await
    .map_err(|why| internal(&why))?;
    if resp.status.is_success() || resp.status == StatusCode::NOT_FOUND {
        state.v1.store().forget_manifest(repo, digest);
        Ok(())
    } else {
        Err(internal(&format!(
            "docker-registry answered {} deleting {repo}@{digest}",
            resp.status
        )))
    }
}

async fn repository_delete(state: &State, req: &Request<Incoming>, name: &str) -> Answer {
    authorize(state, req.headers(), "repository", name, "delete")?;
    let view = existing(state, name).await?;
    {
        let store = state.v1.store();
        let all = view
            .manifests
            .keys()
            .all(|d| manifest_deletable(&store, name, d, &view.tags_of(d)));
        if !all {
            return Err(disallowed());
        }
    }
    let mut manifests = Vec::new();
    for digest in view.manifests.keys() {
        delete_upstream_manifest(state, name, digest).await?;
        manifests.push(digest.clone());
    }
    let tags: Vec<&String> = view.tags.keys().collect();
    let mut store = state.v1.store();
    store.deleted_repos.insert(name.to_owned());
    store.repos.remove(name);
    store.tags.retain(|(r, _), _| r != name);
    store.manifests.retain(|(r, _), _| r != name);
    Ok(http::json(
        StatusCode::ACCEPTED,
        &json!({"manifestsDeleted": manifests, "tagsDeleted": tags}),
    ))
}

async fn tags_list(state: &State, req: &Request<Incoming>, name: &str, params: &Params) -> Answer {
    authorize(state, req.headers(), "repository", name, "metadata_read")?;
    let order = order(params)?;
    let view = existing(state, name).await?;
    let digest = params.non_empty("digest");
    let mut store = state.v1.store();
    let rows = view
        .tags
        .iter()
        .filter(|(_, d)| digest.is_none_or(|want| want == d.as_str()))
        .filter_map(|(t, d)| {
            if !store.tag_attrs(name, t).list {
                return None;
            }
            let json = tag_json(&mut store, name, t, d);
            Some((t.clone(), store.tag(name, t).updated, json))
        })
        .collect();
    let extra = digest
        .map(|d| format!("&digest={}", encode(d)))
        .unwrap_or_default();
    let (tags, link) = page(
        rows,
        order,
        params,
        &format!("/acr/v1/{name}/_tags"),
        &extra,
    )?;
    Ok(json_page(
        &json!({"registry": state.issuer.service, "imageName": name, "tags": tags}),
        link,
    ))
}

async fn tag_get_patch(state: &State, req: Request<Incoming>, name: &str, tag: &str) -> Answer {
    let write = req.method() == Method::PATCH;
    let action = if write {
        "metadata_write"
    } else {
        "metadata_read"
    };
    authorize(state, req.headers(), "repository", name, action)?;
    let body = if write {
        Some(read_patch(req).await?)
    } else {
        None
    };
    let view = existing(state, name).await?;
    let Some(digest) = view.tags.get(tag) else {
        return Err(tag_unknown());
    };
    let mut store = state.v1.store();
    if let Some(body) = body {
        store
            .tag(name, tag)
            .attrs
            .patch(&body)
            .map_err(|why| bad_request("BAD_REQUEST", &why))?;
    }
    let tag = tag_json(&mut store, name, tag, digest);
    Ok(http::json(
        StatusCode::OK,
        &json!({"registry": state.issuer.service, "imageName": name, "tag": tag}),
    ))
}

async fn tag_delete(state: &State, req: &Request<Incoming>, name: &str, tag: &str) -> Answer {
    authorize(state, req.headers(), "repository", name, "delete")?;
    let view = existing(state, name).await?;
    let Some(digest) = view.tags.get(tag) else {
        return Err(tag_unknown());
    };
    {
        let store = state.v1.store();
        if !store.repo_attrs(name).deletable() || !store.tag_attrs(name, tag).deletable() {
            return Err(disallowed());
        }
    }
    if !valid_tag(tag) {
        return Err(tag_unknown());
    }
    // docker-registry has no tag-only delete: remove the tag's link from its storage (it
    // reads tags from the file system on every request).
    let mut dir = state.v1.storage.join("docker/registry/v2/repositories");
    dir.extend(name.split('/'));
    dir.extend(["_manifests", "tags", tag]);
    std::fs::remove_dir_all(&dir)
        .map_err(|e| internal(&format!("removing the tag at {}: {e}", dir.display())))?;
    state
        .v1
        .store()
        .tags
        .remove(&(name.to_owned(), tag.to_owned()));
    let mut resp = http::response(StatusCode::ACCEPTED, "", "");
    http::set_header(&mut resp, "x-ms-int-docker-content-digest", digest);
    Ok(resp)
}

async fn manifests_list(
    state: &State,
    req: &Request<Incoming>,
    name: &str,
    params: &Params,
) -> Answer {
    authorize(state, req.headers(), "repository", name, "metadata_read")?;
    let order = order(params)?;
    let view = existing(state, name).await?;
    let mut store = state.v1.store();
    let rows = view
        .manifests
        .values()
        .filter_map(|m| {
            if !store.manifest_attrs(name, &m.digest).list {
                return None;
            }
            let json = manifest_json(&mut store, name, m, view.tags_of(&m.digest));
            Some((
                m.digest.clone(),
                store.manifest(name, &m.digest).updated,
                json,
            ))
        })
        .collect();
    let (manifests, link) = page(
        rows,
        order,
        params,
        &format!("/acr/v1/{name}/_manifests"),
        "",
    )?;
    Ok(json_page(
        &json!({"registry": state.issuer.service, "imageName": name, "manifests": manifests}),
        link,
    ))
}

async fn manifest_get_patch(
    state: &State,
    req: Request<Incoming>,
    name: &str,
    digest: &str,
) -> Answer {
    let write = req.method() == Method::PATCH;
    let action = if write {
        "metadata_write"
    } else {
        "metadata_read"
    };
    authorize(state, req.headers(), "repository", name, action)?;
    let body = if write {
        Some(read_patch(req).await?)
    } else {
        None
    };
    let view = existing(state, name).await?;
    let Some(info) = view.manifests.get(digest) else {
        return Err(manifest_unknown());
    };
    let mut store = state.v1.store();
    if let Some(body) = body {
        let entry = store.manifest(name, digest);
        entry
            .attrs
            .patch(&body)
            .map_err(|why| bad_request("BAD_REQUEST", &why))?;
        for key in ["quarantineState", "quarantineDetails"] {
            if let Some(value) = body.get(key).filter(|v| v.is_string()) {
                entry.extra.insert(key.into(), value.clone());
            }
        }
    }
    let manifest = manifest_json(&mut store, name, info, view.tags_of(digest));
    Ok(http::json(
        StatusCode::OK,
        &json!({"registry": state.issuer.service, "imageName": name, "manifest": manifest}),
    ))
}

async fn manifest_delete(
    state: &State,
    req: &Request<Incoming>,
    name: &str,
    digest: &str,
) -> Answer {
    authorize(state, req.headers(), "repository", name, "delete")?;
    let view = existing(state, name).await?;
    if !view.manifests.contains_key(digest) {
        return Err(manifest_unknown());
    }
    if !manifest_deletable(&state.v1.store(), name, digest, &view.tags_of(digest)) {
        return Err(disallowed());
    }
    delete_upstream_manifest(state, name, digest).await?;
    Ok(http::response(StatusCode::ACCEPTED, "", ""))
}

// ---------------------------------------------------------------------------------------
// The /v2/ path: locks, and times of what is pushed

/// A `/v2/` request the attribute store cares about.
#[derive(Debug)]
pub(super) enum Observed {
    PutManifest { repo: String, reference: String },
    DeleteManifest { repo: String, digest: String },
    Other,
}

/// `(repository, kind, reference)` of `/v2/<name>/(manifests|blobs)/<reference>`.
fn v2_target(path: &str) -> Option<(String, &'static str, String)> {
    let rest = path.strip_prefix("/v2/")?;
    for kind in ["manifests", "blobs"] {
        let marker = format!("/{kind}/");
        if let Some(i) = rest.rfind(&marker) {
            let reference = decode(&rest[i + marker.len()..]);
            if reference.is_empty() || reference.contains('/') {
                return None;
            }
            return Some((decode(&rest[..i]), kind, reference));
        }
    }
    None
}

pub(super) fn observe(req: &Request<Incoming>) -> Observed {
    match (req.method(), v2_target(req.uri().path())) {
        (&Method::PUT, Some((repo, "manifests", reference))) => {
            Observed::PutManifest { repo, reference }
        }
        (&Method::DELETE, Some((repo, "manifests", digest))) if is_digest(&digest) => {
            Observed::DeleteManifest { repo, digest }
        }
        _ => Observed::Other,
    }
}

/// Refuses a `/v2/` request that the changeable attributes forbid, as ACR does. Only for
/// requests whose token would be accepted (others get the registry's challenge as usual).
pub(super) async fn guard(state: &State, req: &Request<Incoming>) -> Option<Resp> {
    let (repo, kind, reference) = v2_target(req.uri().path())?;
    let method = req.method().clone();
    let action = match method {
        Method::GET | Method::HEAD => "pull",
        Method::PUT => "push",
        Method::DELETE => "delete",
        _ => return None,
    };
    check_token(state, req.headers(), "repository", &repo, action).ok()?;
    let locked_tags: Vec<String> = {
        let store = state.v1.store();
        let repo_attrs = store.repo_attrs(&repo);
        match (&method, kind) {
            (&Method::PUT, "manifests") => {
                let locked = !repo_attrs.write
                    || if is_digest(&reference) {
                        !store.manifest_attrs(&repo, &reference).write
                    } else {
                        !store.tag_attrs(&repo, &reference).write
                    };
                return locked.then(disallowed);
            }
            (&Method::GET | &Method::HEAD, "manifests") => {
                let unreadable = !repo_attrs.read
                    || if is_digest(&reference) {
                        !store.manifest_attrs(&repo, &reference).read
                    } else {
                        !store.tag_attrs(&repo, &reference).read
                    };
                return unreadable.then(disallowed);
            }
            (&Method::DELETE, "blobs") => return (!repo_attrs.deletable()).then(disallowed),
            (&Method::DELETE, "manifests") => {
                if !repo_attrs.deletable() || !store.manifest_attrs(&repo, &reference).deletable() {
                    return Some(disallowed());
                }
                store
                    .tags
                    .iter()
                    .filter(|((r, _), e)| r == &repo && !e.attrs.deletable())
                    .map(|((_, t), _)| t.clone())
                    .collect()
            }
            _ => return None,
        }
    };
    // A locked tag on the manifest blocks its deletion: ask where the locked tags point.
    for tag in locked_tags {
        if let Ok(Some(info)) = manifest_info(state, &repo, &tag).await
            && info.digest == reference
        {
            return Some(disallowed());
        }
    }
    None
}

/// Records what a successful `/v2/` request changed.
pub(super) fn after(state: &State, observed: Observed, resp: &Resp) {
    match observed {
        Observed::PutManifest { repo, reference } if resp.status() == StatusCode::CREATED => {
            let digest = resp
                .headers()
                .get("docker-content-digest")
                .and_then(|v| v.to_str().ok())
                .map(str::to_owned)
                .or_else(|| is_digest(&reference).then(|| reference.clone()));
            let Some(digest) = digest else { return };
            let mut store = state.v1.store();
            store.deleted_repos.remove(&repo);
            let t = store.tick();
            store.repo(&repo).updated = t;
            store.manifest(&repo, &digest).updated = t;
            if !is_digest(&reference) {
                let tag = store.tag(&repo, &reference);
                tag.updated = t;
                tag.digest = Some(digest);
            }
        }
        Observed::DeleteManifest { repo, digest } if resp.status().is_success() => {
            state.v1.store().forget_manifest(&repo, &digest);
        }
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn routes_keep_slashes_in_names_and_decode_segments() {
        assert!(matches!(route("/acr/v1/_catalog"), Some(Route::Catalog)));
        assert!(
            matches!(route("/acr/v1/library%2Fhello-world"), Some(Route::Repository(n)) if n == "library/hello-world")
        );
        assert!(
            matches!(route("/acr/v1/a/b/_tags/v1"), Some(Route::Tag(n, t)) if n == "a/b" && t == "v1")
        );
        assert!(
            matches!(route("/acr/v1/a/_manifests/sha256%3Aab"), Some(Route::Manifest(n, d)) if n == "a" && d == "sha256:ab")
        );
        assert!(matches!(route("/acr/v1/a/_manifests"), Some(Route::Manifests(n)) if n == "a"));
        assert!(route("/acr/v1/_tags").is_none());
        assert!(route("/acr/v1/a/../b").is_none());
        assert!(route("/acr/v1/a/_tags/x/y").is_none());
    }

    #[test]
    fn times_have_seven_fractional_digits() {
        assert_eq!(time(17_060_770_349_272_590), "2024-01-24T06:17:14.9272590Z");
    }

    #[test]
    fn pages_follow_the_recorded_link_shape() {
        let params = Params(vec![("n".into(), "1".into())]);
        let rows = vec![("b".to_owned(), 1, 'b'), ("a".to_owned(), 2, 'a')];
        let (items, link) =
            page(rows.clone(), Order::None, &params, "/acr/v1/_catalog", "").unwrap();
        assert_eq!(items, ['a']);
        assert_eq!(
            link.as_deref(),
            Some("</acr/v1/_catalog?last=a&n=1&orderby=>; rel=\"next\"")
        );
        let params = Params(vec![("last".into(), "a".into())]);
        let (items, link) = page(rows.clone(), Order::None, &params, "/x", "").unwrap();
        assert_eq!((items, link), (vec!['b'], None));
        let (items, _) = page(rows, Order::TimeDesc, &Params::default(), "/x", "").unwrap();
        assert_eq!(items, ['a', 'b']);
    }

    #[test]
    fn patches_take_booleans_only() {
        let mut attrs = Attrs::default();
        let body = json!({"writeEnabled": false, "other": 1});
        attrs.patch(body.as_object().unwrap()).unwrap();
        assert!(!attrs.write && attrs.delete && !attrs.deletable());
        let bad = json!({"deleteEnabled": "no"});
        assert!(attrs.patch(bad.as_object().unwrap()).is_err());
    }

    #[test]
    fn v2_targets() {
        assert_eq!(
            v2_target("/v2/a/b/manifests/v1"),
            Some(("a/b".into(), "manifests", "v1".into()))
        );
        assert_eq!(v2_target("/v2/a/blobs/uploads/"), None);
        assert!(is_digest("sha256:abcd") && !is_digest("v1") && !is_digest("sha256:"));
    }
}
