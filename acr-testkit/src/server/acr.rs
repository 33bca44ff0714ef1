//! An Azure Container Registry emulator: ACR's auth endpoints (`/oauth2/exchange`,
//! `/oauth2/token`), a fake AAD that mints the tokens to exchange, and a reverse proxy to a
//! real docker-registry that trusts the emulator's access tokens.

use std::fmt;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;

use http_body_util::BodyExt as _;
use hyper::body::Incoming;
use hyper::header::{HOST, HeaderName, HeaderValue};
use hyper::{HeaderMap, Method, Request, Response, StatusCode, Uri, Version};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::{TokioExecutor, TokioTimer};
use serde_json::{Value, json};

use super::faults::{Faults, Shared, Stats};
use super::grants::{Grant, Scope, User, intersect, parse_scopes};
use super::http::{self, Background, Params, Resp};
use super::jwt::{self, Issuer, KeyId};
use super::keys::SigningKey;
use crate::registry::{Auth, Error, Registry, RegistryOptions, TokenAuth, unique_temp_dir};

// ACR's `/acr/v1` metadata API; a child module so it can read the emulator's state.
#[path = "acr_v1.rs"]
mod acr_v1;

/// The AAD audience ACR always accepts (the SDKs ask for `<this>/.default`).
pub const ACR_AUDIENCE: &str = "https://containerregistry.azure.net";
/// The user name that says "the password is an ACR refresh token" (`docker login -u …`).
pub const NULL_GUID_USER: &str = "00000000-0000-0000-0000-000000000000";
/// The tenant of the emulator unless configured otherwise.
pub const DEFAULT_TENANT: &str = "11111111-2222-3333-4444-555555555555";
/// `iss` of the emulator's ACR tokens, as on real ACR.
pub const ACR_ISSUER: &str = "Azure Container Registry";

/// ARM audiences, accepted only with [`AcrEmulatorOptions::allow_arm_audience`] (ACR's
/// "authentication-as-arm" policy).
const ARM_AUDIENCES: &[&str] = &[
    "https://management.azure.com",
    "https://management.core.windows.net",
    "https://management.chinacloudapi.cn",
    "https://management.core.chinacloudapi.cn",
    "https://management.usgovcloudapi.net",
    "https://management.core.usgovcloudapi.net",
    "https://management.microsoftazure.de",
];

/// Lifetimes observed on real ACR: refresh tokens 3 h, access tokens 75 min.
const REFRESH_TTL: i64 = 3 * 3600;
const ACCESS_TTL: i64 = 4500;
const AAD_TTL: i64 = 3600;
const FORM_LIMIT: usize = 64 * 1024;

/// An AAD principal (user, service principal, managed identity) and its registry access,
/// the emulator's stand-in for ACR role assignments.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Identity {
    /// The AAD object id (`oid` claim).
    pub object_id: String,
    /// What it may do in the registry.
    pub access: Vec<Grant>,
}

impl Identity {
    /// An identity with these grants.
    pub fn new(object_id: &str, access: Vec<Grant>) -> Self {
        Self {
            object_id: object_id.into(),
            access,
        }
    }
}

/// How to start an [`AcrEmulator`].
#[derive(Debug, Clone)]
pub struct AcrEmulatorOptions {
    /// Serve HTTPS with a fresh test CA (default); `false` for plain HTTP.
    pub tls: bool,
    /// Port on 127.0.0.1; a free one when `None`.
    pub port: Option<u16>,
    /// The registry's AAD tenant; AAD tokens of other tenants are refused.
    pub tenant_id: String,
    /// Also accept AAD tokens for the ARM audience (`https://management.azure.com`, …).
    pub allow_arm_audience: bool,
    /// Anonymous pull: tokens without credentials get `pull` on every repository and the catalog.
    pub anonymous_pull: bool,
    /// AAD identities with explicit access.
    pub identities: Vec<Identity>,
    /// Access of valid AAD identities not in `identities` (default: everything).
    pub default_access: Vec<Grant>,
    /// Admin user / repository-scoped tokens (Basic or `grant_type=password`).
    pub users: Vec<User>,
    /// Registry storage directory; a fresh temporary one when `None`.
    pub storage: Option<PathBuf>,
}

impl Default for AcrEmulatorOptions {
    fn default() -> Self {
        Self {
            tls: true,
            port: None,
            tenant_id: DEFAULT_TENANT.into(),
            allow_arm_audience: false,
            anonymous_pull: false,
            identities: Vec::new(),
            default_access: vec![Grant::everything()],
            users: Vec::new(),
            storage: None,
        }
    }
}

/// The claims of an AAD access token to mint (see [`FakeAad::token`] for defaults).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AadToken {
    /// `oid` (and `sub`): who the token is for.
    pub object_id: String,
    /// `tid`; the issuer is `https://sts.windows.net/<tid>/`.
    pub tenant_id: String,
    /// `aud`, e.g. [`ACR_AUDIENCE`].
    pub audience: String,
    /// Seconds until `exp`; zero or negative mints an already expired token.
    pub lifetime_secs: i64,
}

struct AadInner {
    key: SigningKey,
    tenant_id: String,
    authority: String,
}

/// The emulator's fake Entra ID (AAD): mints AAD-like JWTs (`tid`, `aud`, `exp`, `oid`, `iss`)
/// signed with its own key, which only the emulator's `/oauth2/exchange` trusts. Cloneable, so
/// a test `TokenCredential` can own one.
#[derive(Clone)]
pub struct FakeAad {
    inner: Arc<AadInner>,
}

impl fmt::Debug for FakeAad {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("FakeAad")
            .field("tenant_id", &self.inner.tenant_id)
            .field("authority", &self.inner.authority)
            .finish_non_exhaustive()
    }
}

impl FakeAad {
    /// The tenant its tokens name by default (the emulator's tenant).
    pub fn tenant_id(&self) -> &str {
        &self.inner.tenant_id
    }

    /// Authority host URL (`<emulator>/aad/`): `POST <authority><tenant>/oauth2/v2.0/token`
    /// with `grant_type=client_credentials`, `client_id` (becomes the `oid`), any
    /// `client_secret` and `scope=<audience>/.default` returns a token, as Entra ID does.
    pub fn authority(&self) -> &str {
        &self.inner.authority
    }

    /// Default claims for `object_id`: this tenant, [`ACR_AUDIENCE`], valid for an hour.
    pub fn token(&self, object_id: &str) -> AadToken {
        AadToken {
            object_id: object_id.into(),
            tenant_id: self.inner.tenant_id.clone(),
            audience: ACR_AUDIENCE.into(),
            lifetime_secs: AAD_TTL,
        }
    }

    /// Signs `token` as an AAD access token.
    pub fn mint(&self, token: &AadToken) -> Result<String, Error> {
        let now = jwt::now();
        let claims = json!({
            "aud": token.audience,
            "iss": format!("https://sts.windows.net/{}/", token.tenant_id),
            "iat": now,
            "nbf": now,
            "exp": now + token.lifetime_secs,
            "oid": token.object_id,
            "sub": token.object_id,
            "appid": token.object_id,
            "tid": token.tenant_id,
            "ver": "1.0",
        });
        jwt::sign(&self.inner.key, KeyId::X5c, &claims).map_err(Error::Server)
    }

    /// A valid ACR-audience token for `object_id` ([`FakeAad::token`] defaults).
    pub fn mint_for(&self, object_id: &str) -> Result<String, Error> {
        self.mint(&self.token(object_id))
    }
}

struct State {
    issuer: Issuer,
    aad: FakeAad,
    url: String,
    tls: bool,
    allow_arm: bool,
    anonymous_pull: bool,
    identities: Vec<Identity>,
    default_access: Vec<Grant>,
    users: Vec<User>,
    upstream: String,
    client: Client<HttpConnector, Incoming>,
    v1: acr_v1::V1,
}

impl State {
    fn shared(&self) -> &Shared {
        &self.issuer.shared
    }

    fn identity_access(&self, object_id: &str) -> &[Grant] {
        self.identities
            .iter()
            .find(|i| i.object_id == object_id)
            .map_or(self.default_access.as_slice(), |i| i.access.as_slice())
    }
}

/// A running ACR emulator in front of a real docker-registry in token mode (both stopped on
/// drop).
///
/// Data-plane requests (`/v2/…`) are forwarded to the registry, whose challenges name the
/// emulator's `/oauth2/token` as realm and its `host:port` as service. Auth endpoints follow
/// ACR: `POST /oauth2/exchange` (AAD token → `{"refresh_token"}`), `POST /oauth2/token`
/// (`grant_type=refresh_token` or `password`, including anonymous and the null-GUID user) and
/// `GET /oauth2/token` (Basic or anonymous) → `{"access_token"}`. Refusals are 401 with an
/// empty body as ACR sends them; the reason is in the `x-acr-emulator-error` header.
pub struct AcrEmulator {
    // Field order is drop order: stop serving, then stop the registry.
    _background: Background,
    registry: Registry,
    state: Arc<State>,
    faults: Faults,
    addr: SocketAddr,
    ca_file: Option<PathBuf>,
    dir: PathBuf,
}

impl fmt::Debug for AcrEmulator {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AcrEmulator")
            .field("url", &self.state.url)
            .field("registry", &self.registry)
            .finish_non_exhaustive()
    }
}

impl AcrEmulator {
    /// Generates keys (and TLS certificates), starts docker-registry in token mode and
    /// serves the emulator. Blocking; the emulator runs on its own thread.
    pub fn start(options: AcrEmulatorOptions) -> Result<Self, Error> {
        let dir = unique_temp_dir("acr-testkit-emulator")?;
        let started = Self::start_in(options, dir.clone());
        if started.is_err() {
            let _ = std::fs::remove_dir_all(&dir);
        }
        started
    }

    fn start_in(options: AcrEmulatorOptions, dir: PathBuf) -> Result<Self, Error> {
        let key = SigningKey::generate(&dir, "acr-signing", "acr-testkit ACR token signer")?;
        let aad_key = SigningKey::generate(&dir, "aad-signing", "acr-testkit fake AAD")?;
        let (listener, addr) = http::bind(options.port)?;
        let (tls, ca_file) = match options.tls {
            true => {
                let (acceptor, ca) = http::tls_acceptor(&dir)?;
                (Some(acceptor), Some(ca))
            }
            false => (None, None),
        };
        let url = format!("{}://{addr}", if tls.is_some() { "https" } else { "http" });
        // Like a login server name, the service is the host clients connect to.
        let service = addr.to_string();
        let storage = options
            .storage
            .unwrap_or_else(|| dir.join("registry-storage"));
        let registry = Registry::start(RegistryOptions {
            auth: Auth::Token(TokenAuth {
                realm: format!("{url}/oauth2/token"),
                service: service.clone(),
                issuer: ACR_ISSUER.into(),
                root_cert_bundle: key.cert_pem().to_path_buf(),
            }),
            storage: Some(storage.clone()),
            ..RegistryOptions::default()
        })?;
        let shared = Arc::new(Shared::default());
        let aad = FakeAad {
            inner: Arc::new(AadInner {
                key: aad_key,
                tenant_id: options.tenant_id,
                authority: format!("{url}/aad/"),
            }),
        };
        let client = Client::builder(TokioExecutor::new())
            .pool_timer(TokioTimer::new())
            .build_http();
        let state = Arc::new(State {
            issuer: Issuer {
                key,
                // Real ACR tokens name their key with a libtrust `kid`.
                key_id: KeyId::Libtrust,
                issuer: ACR_ISSUER.into(),
                service,
                shared: shared.clone(),
            },
            aad,
            url,
            tls: options.tls,
            allow_arm: options.allow_arm_audience,
            anonymous_pull: options.anonymous_pull,
            identities: options.identities,
            default_access: options.default_access,
            users: options.users,
            upstream: registry.base_url(),
            client,
            v1: acr_v1::V1::new(storage),
        });
        let handler_state = state.clone();
        let background = http::serve("acr-testkit-emulator", listener, tls, move |req| {
            handle(handler_state.clone(), req)
        })?;
        Ok(Self {
            _background: background,
            registry,
            state,
            faults: Faults { shared },
            addr,
            ca_file,
            dir,
        })
    }

    /// `https://127.0.0.1:<port>` (or `http://…` in plain-HTTP mode).
    pub fn url(&self) -> &str {
        &self.state.url
    }

    /// `127.0.0.1:<port>`: the login server, what goes before the repository in a reference.
    pub fn host(&self) -> String {
        self.addr.to_string()
    }

    /// The socket address.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The `service` of challenges and tokens (same as [`AcrEmulator::host`]).
    pub fn service(&self) -> &str {
        &self.state.issuer.service
    }

    /// The PEM file of the test CA to trust (HTTPS mode only).
    pub fn ca_file(&self) -> Option<PathBuf> {
        self.ca_file.clone()
    }

    /// The registry's AAD tenant.
    pub fn tenant_id(&self) -> &str {
        self.state.aad.tenant_id()
    }

    /// The fake AAD, to mint tokens for a test credential.
    pub fn aad(&self) -> FakeAad {
        self.state.aad.clone()
    }

    /// Mints a valid AAD token for `object_id` (shortcut for `aad().mint_for`).
    pub fn mint_aad_token(&self, object_id: &str) -> Result<String, Error> {
        self.state.aad.mint_for(object_id)
    }

    /// Mints an ACR refresh token for an AAD identity, as a successful exchange would.
    pub fn mint_refresh_token(&self, object_id: &str) -> Result<String, Error> {
        refresh_token_for(&self.state, object_id, self.tenant_id()).map_err(Error::Server)
    }

    /// The docker-registry behind the emulator (its own port needs tokens too).
    pub fn registry(&self) -> &Registry {
        &self.registry
    }

    /// The fault and counter handle (cloneable, shared with the running emulator).
    pub fn faults(&self) -> Faults {
        self.faults.clone()
    }

    /// The counters so far.
    pub fn stats(&self) -> Stats {
        self.faults.stats()
    }
}

impl Drop for AcrEmulator {
    fn drop(&mut self) {
        // Keys and certificates were loaded at start; the fields stop the servers after this.
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn refresh_token_for(state: &State, object_id: &str, tenant: &str) -> Result<String, String> {
    state
        .issuer
        .refresh_token(
            object_id,
            REFRESH_TTL,
            json!({
                "version": "1.0",
                "tenant": tenant,
                "permissions": {"actions": ["read", "write", "delete"], "notActions": null},
                "roles": [],
            }),
        )
        .map(|issued| issued.token)
}

/// ACR's refusal on `/oauth2/*`: 401, empty body, no challenge (see the recorded sessions).
/// The reason goes in a header that real ACR does not send, for test failure messages.
fn acr_unauthorized(reason: &str) -> Resp {
    let mut resp = http::response(StatusCode::UNAUTHORIZED, "", "");
    http::set_header(&mut resp, "x-acr-emulator-error", reason);
    resp
}

/// A malformed request: the ACR error envelope (codes unverified against real ACR).
fn acr_bad_request(code: &str, message: &str) -> Resp {
    let mut resp = http::json(
        StatusCode::BAD_REQUEST,
        &json!({"errors": [{"code": code, "message": message}]}),
    );
    http::set_header(&mut resp, "x-acr-emulator-error", message);
    resp
}

fn method_not_allowed(allow: &str) -> Resp {
    let mut resp = http::response(StatusCode::METHOD_NOT_ALLOWED, "", "");
    http::set_header(&mut resp, "allow", allow);
    resp
}

async fn handle(state: Arc<State>, req: Request<Incoming>) -> Resp {
    let path = req.uri().path();
    let auth_endpoint = matches!(path, "/oauth2/exchange" | "/oauth2/token");
    if path.starts_with("/acr/v1/") {
        return acr_v1::handle(&state, req).await;
    }
    if !auth_endpoint && !path.starts_with("/aad/") && aad_root_tenant(path).is_none() {
        if let Some(refused) = acr_v1::guard(&state, &req).await {
            return refused;
        }
        let observed = acr_v1::observe(&req);
        let resp = proxy(&state, req).await;
        acr_v1::after(&state, observed, &resp);
        return resp;
    }
    let delay = state.shared().token_delay();
    if !delay.is_zero() {
        tokio::time::sleep(delay).await;
    }
    if auth_endpoint && state.shared().take_token_failure() {
        state.shared().count_token_failure();
        return acr_unauthorized("injected failure (Faults::fail_next_token_requests)");
    }
    if req.uri().path() == "/oauth2/exchange" {
        let resp = exchange(&state, req).await;
        state.shared().count_exchange(resp.status().is_success());
        resp
    } else if req.uri().path() == "/oauth2/token" {
        let resp = token(&state, req).await;
        if !resp.status().is_success() {
            state.shared().count_token_failure();
        }
        resp
    } else {
        aad_token(&state, req).await
    }
}

async fn read_form(req: Request<Incoming>) -> Result<Params, Resp> {
    let body = http::read_body(req.into_body(), FORM_LIMIT).await?;
    Ok(Params(http::form_pairs(&String::from_utf8_lossy(&body))))
}

/// The `service` parameter: missing is malformed, another registry's is unauthorized.
fn service_error(state: &State, params: &Params) -> Option<Resp> {
    match params.non_empty("service") {
        None => Some(acr_bad_request(
            "BAD_REQUEST",
            "missing service (use the service of the registry's challenge)",
        )),
        Some(service) if service != state.issuer.service => Some(acr_unauthorized(&format!(
            "service {service:?} is not this registry ({:?})",
            state.issuer.service
        ))),
        Some(_) => None,
    }
}

/// `POST /oauth2/exchange`: AAD access token → ACR refresh token.
async fn exchange(state: &State, req: Request<Incoming>) -> Resp {
    if req.method() != Method::POST {
        return method_not_allowed("POST");
    }
    let params = match read_form(req).await {
        Ok(params) => params,
        Err(resp) => return resp,
    };
    if state.shared().refuses_exchange() {
        return acr_unauthorized("exchange refused (Faults::refuse_exchange)");
    }
    match params.get("grant_type") {
        Some("access_token" | "access_token_refresh_token") => {}
        Some("refresh_token") => {
            return acr_bad_request(
                "UNSUPPORTED",
                "grant_type=refresh_token (an AAD refresh token) is deprecated and not emulated; send grant_type=access_token with an AAD access token",
            );
        }
        Some(other) => {
            return acr_bad_request(
                "UNSUPPORTED",
                &format!("unsupported grant_type {other:?}; use access_token"),
            );
        }
        None => {
            return acr_bad_request("BAD_REQUEST", "missing grant_type (use access_token)");
        }
    }
    if let Some(resp) = service_error(state, &params) {
        return resp;
    }
    let Some(aad_token) = params.non_empty("access_token") else {
        return acr_bad_request("BAD_REQUEST", "missing access_token (the AAD access token)");
    };
    let (object_id, tenant) = match validate_aad(state, aad_token, params.non_empty("tenant")) {
        Ok(found) => found,
        Err(why) => return acr_unauthorized(&why),
    };
    match refresh_token_for(state, &object_id, &tenant) {
        Ok(token) => http::json(StatusCode::OK, &json!({ "refresh_token": token })),
        Err(why) => http::response(StatusCode::INTERNAL_SERVER_ERROR, "text/plain", why),
    }
}

fn normalise_audience(aud: &str) -> &str {
    aud.trim_end_matches('/')
}

/// Signature, audience, tenant, issuer and lifetime of an AAD token; returns (oid, tid).
fn validate_aad(
    state: &State,
    token: &str,
    tenant: Option<&str>,
) -> Result<(String, String), String> {
    let claims = jwt::verify(token, state.aad.inner.key.public_key()).map_err(|why| {
        format!("the AAD access token is not one of this emulator's fake AAD: {why}")
    })?;
    let aud = claims
        .get("aud")
        .and_then(Value::as_str)
        .unwrap_or_default();
    let aud = normalise_audience(aud);
    let accepted = aud == ACR_AUDIENCE || (state.allow_arm && ARM_AUDIENCES.contains(&aud));
    if !accepted {
        return Err(format!(
            "AAD token audience {aud:?} is not accepted: use {ACR_AUDIENCE}/.default{}",
            if ARM_AUDIENCES.contains(&aud) {
                " (ARM audiences need allow_arm_audience)"
            } else {
                ""
            }
        ));
    }
    jwt::check_times(&claims, jwt::now()).map_err(|why| format!("AAD token: {why}"))?;
    let tid = claims
        .get("tid")
        .and_then(Value::as_str)
        .unwrap_or_default();
    if tid != state.aad.tenant_id() {
        return Err(format!(
            "AAD token is from tenant {tid:?}, not the registry's tenant {:?}",
            state.aad.tenant_id()
        ));
    }
    if let Some(tenant) = tenant.filter(|t| *t != tid) {
        return Err(format!(
            "tenant {tenant:?} does not match the AAD token's tenant {tid:?}"
        ));
    }
    let iss = claims
        .get("iss")
        .and_then(Value::as_str)
        .unwrap_or_default();
    let issuers = [
        format!("https://sts.windows.net/{tid}/"),
        format!("https://login.microsoftonline.com/{tid}/v2.0"),
    ];
    if !issuers.iter().any(|i| i == iss) {
        return Err(format!("AAD token issuer {iss:?} is not tenant {tid:?}'s"));
    }
    let oid = claims
        .get("oid")
        .and_then(Value::as_str)
        .filter(|o| !o.is_empty())
        .ok_or("AAD token has no oid claim")?;
    Ok((oid.to_owned(), tid.to_owned()))
}

/// Who a token request is for and what they may do.
enum Principal<'a> {
    Identity(String),
    User(&'a User),
    Anonymous,
}

/// `/oauth2/token`: refresh token, password (user, null GUID, anonymous) or GET with Basic.
async fn token(state: &State, req: Request<Incoming>) -> Resp {
    let (params, principal) = match *req.method() {
        Method::GET => {
            let params = http::query(&req);
            let principal = match http::basic_auth(req.headers()) {
                None => Ok(Principal::Anonymous),
                Some(Err(why)) => Err(why.to_owned()),
                Some(Ok((user, password))) => password_principal(state, &user, &password),
            };
            (params, principal)
        }
        Method::POST => {
            let params = match read_form(req).await {
                Ok(params) => params,
                Err(resp) => return resp,
            };
            let principal = match params.get("grant_type") {
                Some("refresh_token") => match params.non_empty("refresh_token") {
                    Some(token) => refresh_principal(state, token),
                    None => {
                        return acr_bad_request(
                            "BAD_REQUEST",
                            "grant_type=refresh_token needs refresh_token",
                        );
                    }
                },
                // Anonymous clients send grant_type=password with no user (and an empty or
                // absent refresh_token).
                Some("password") => match params.non_empty("username") {
                    None => Ok(Principal::Anonymous),
                    Some(user) => {
                        password_principal(state, user, params.get("password").unwrap_or_default())
                    }
                },
                Some(other) => {
                    return acr_bad_request(
                        "UNSUPPORTED",
                        &format!("unsupported grant_type {other:?}; use refresh_token or password"),
                    );
                }
                None => {
                    return acr_bad_request(
                        "BAD_REQUEST",
                        "missing grant_type (refresh_token or password)",
                    );
                }
            };
            (params, principal)
        }
        _ => return method_not_allowed("GET, POST"),
    };
    if let Some(resp) = service_error(state, &params) {
        return resp;
    }
    let principal = match principal {
        Ok(principal) => principal,
        Err(why) => return acr_unauthorized(&why),
    };
    // Anonymous pull also reads ACR metadata (`/acr/v1/…`), as the recorded sessions show.
    let anonymous_access = [
        Grant::repository("*", &["pull", "metadata_read"]),
        Grant::catalog(),
    ];
    let (subject, allowed) = match &principal {
        Principal::Identity(oid) => (oid.as_str(), state.identity_access(oid)),
        Principal::User(user) => (user.name.as_str(), user.access.as_slice()),
        Principal::Anonymous if state.anonymous_pull => ("", &anonymous_access[..]),
        Principal::Anonymous => {
            return acr_unauthorized(
                "anonymous pull is not enabled on this registry (AcrEmulatorOptions::anonymous_pull)",
            );
        }
    };
    let requested = parse_scopes(params.all("scope"));
    let granted: Vec<Scope> = intersect(&requested, allowed);
    match state.issuer.access_token(
        subject,
        &granted,
        ACCESS_TTL,
        json!({"version": "2.0", "grant_type": "access_token"}),
    ) {
        Ok(issued) => http::json(StatusCode::OK, &json!({ "access_token": issued.token })),
        Err(why) => http::response(StatusCode::INTERNAL_SERVER_ERROR, "text/plain", why),
    }
}

fn refresh_principal<'a>(state: &State, token: &str) -> Result<Principal<'a>, String> {
    let claims = state
        .issuer
        .verify_refresh_token(token)
        .map_err(|why| format!("refresh token refused: {why}"))?;
    let subject = claims
        .get("sub")
        .and_then(Value::as_str)
        .unwrap_or_default();
    Ok(Principal::Identity(subject.to_owned()))
}

fn password_principal<'a>(
    state: &'a State,
    user: &str,
    password: &str,
) -> Result<Principal<'a>, String> {
    if user == NULL_GUID_USER {
        return refresh_principal(state, password);
    }
    state
        .users
        .iter()
        .find(|u| u.name == user && u.password == password)
        .map(Principal::User)
        .ok_or_else(|| format!("wrong user name or password for {user:?}"))
}

/// The tenant of `/<tenant>/oauth2/v2.0/token`: azure_identity keeps only the host of an
/// authority, so the fake AAD also answers at the root.
fn aad_root_tenant(path: &str) -> Option<&str> {
    path.strip_prefix('/')?
        .strip_suffix("/oauth2/v2.0/token")
        .filter(|tenant| !tenant.is_empty() && !tenant.contains('/') && *tenant != "v2")
}

/// `POST /aad/<tenant>/oauth2/v2.0/token` (or `/<tenant>/…`): the fake AAD's
/// client-credentials endpoint.
async fn aad_token(state: &State, req: Request<Incoming>) -> Resp {
    let aad_error = |status: StatusCode, error: &str, description: &str| {
        http::json(
            status,
            &json!({"error": error, "error_description": description}),
        )
    };
    let path = req.uri().path();
    let tenant = path
        .strip_prefix("/aad/")
        .and_then(|rest| rest.strip_suffix("/oauth2/v2.0/token"))
        .or_else(|| aad_root_tenant(path))
        .map(str::to_owned);
    let Some(tenant) = tenant else {
        return aad_error(
            StatusCode::NOT_FOUND,
            "invalid_request",
            "the fake AAD only serves POST /aad/<tenant>/oauth2/v2.0/token",
        );
    };
    if req.method() != Method::POST {
        return method_not_allowed("POST");
    }
    let params = match read_form(req).await {
        Ok(params) => params,
        Err(resp) => return resp,
    };
    if tenant != state.aad.tenant_id() {
        return aad_error(
            StatusCode::BAD_REQUEST,
            "invalid_request",
            &format!(
                "AADSTS90002: Tenant '{tenant}' not found (this fake AAD serves {})",
                state.aad.tenant_id()
            ),
        );
    }
    if params.get("grant_type") != Some("client_credentials") {
        return aad_error(
            StatusCode::BAD_REQUEST,
            "unsupported_grant_type",
            "AADSTS70003: the fake AAD supports grant_type=client_credentials only",
        );
    }
    let Some(client_id) = params.non_empty("client_id") else {
        return aad_error(
            StatusCode::BAD_REQUEST,
            "invalid_request",
            "AADSTS900144: missing client_id",
        );
    };
    if params.non_empty("client_secret").is_none() && params.non_empty("client_assertion").is_none()
    {
        return aad_error(
            StatusCode::UNAUTHORIZED,
            "invalid_client",
            "AADSTS7000216: client_secret or client_assertion is required (any value works)",
        );
    }
    let audience = params
        .get("scope")
        .unwrap_or_default()
        .split_whitespace()
        .find_map(|s| s.strip_suffix("/.default"));
    let Some(audience) = audience else {
        return aad_error(
            StatusCode::BAD_REQUEST,
            "invalid_scope",
            "AADSTS1002012: scope must be <resource>/.default (e.g. https://containerregistry.azure.net/.default)",
        );
    };
    let claims = AadToken {
        audience: audience.to_owned(),
        ..state.aad.token(client_id)
    };
    match state.aad.mint(&claims) {
        Ok(token) => {
            state.shared().count_aad_token();
            http::json(
                StatusCode::OK,
                &json!({
                    "token_type": "Bearer",
                    "expires_in": AAD_TTL,
                    "ext_expires_in": AAD_TTL,
                    "access_token": token,
                }),
            )
        }
        Err(e) => http::response(
            StatusCode::INTERNAL_SERVER_ERROR,
            "text/plain",
            e.to_string(),
        ),
    }
}

/// The shared hop-by-hop stripping, plus `Expect` (the emulator already answered it).
fn strip_hop_by_hop(headers: &mut HeaderMap) {
    http::strip_hop_by_hop(headers);
    headers.remove(hyper::header::EXPECT);
}

/// Forwards a request to docker-registry, streaming both bodies. The original `Host` and
/// `X-Forwarded-Proto` make the registry's absolute `Location` URLs point at the emulator.
async fn proxy(state: &State, mut req: Request<Incoming>) -> Resp {
    let delay = state.shared().registry_delay();
    if !delay.is_zero() {
        tokio::time::sleep(delay).await;
    }
    if state.shared().take_registry_rejection() {
        return challenge(state, req.method(), req.uri().path());
    }
    state.shared().count_proxied();
    // HTTP/2 requests carry the host in the URI authority instead of a Host header.
    let host = req.headers().get(HOST).cloned().or_else(|| {
        req.uri()
            .authority()
            .and_then(|a| HeaderValue::from_str(a.as_str()).ok())
    });
    let path = req
        .uri()
        .path_and_query()
        .map_or("/", |p| p.as_str())
        .to_owned();
    let uri: Uri = match format!("{}{path}", state.upstream).parse() {
        Ok(uri) => uri,
        Err(e) => {
            return http::response(
                StatusCode::BAD_REQUEST,
                "text/plain; charset=utf-8",
                format!("acr-testkit emulator: unusable request path {path:?}: {e}\n"),
            );
        }
    };
    strip_hop_by_hop(req.headers_mut());
    if let Some(host) = host {
        req.headers_mut().insert(HOST, host);
    }
    req.headers_mut().insert(
        HeaderName::from_static("x-forwarded-proto"),
        HeaderValue::from_static(if state.tls { "https" } else { "http" }),
    );
    *req.uri_mut() = uri;
    *req.version_mut() = Version::HTTP_11;
    match state.client.request(req).await {
        Ok(resp) => {
            let (mut parts, body) = resp.into_parts();
            strip_hop_by_hop(&mut parts.headers);
            Response::from_parts(parts, body.boxed_unsync())
        }
        Err(e) => http::response(
            StatusCode::BAD_GATEWAY,
            "text/plain; charset=utf-8",
            format!(
                "acr-testkit emulator: forwarding to docker-registry at {} failed: {e}\n",
                state.upstream
            ),
        ),
    }
}

/// The scope a data-plane request needs (best effort, for injected challenges).
fn scope_for(method: &Method, path: &str) -> Option<Scope> {
    let rest = path.strip_prefix("/v2/")?;
    if rest.is_empty() {
        return None;
    }
    if rest == "_catalog" {
        return parse_scopes(["registry:catalog:*"]).pop();
    }
    let end = ["/blobs/", "/manifests/", "/tags/"]
        .iter()
        .filter_map(|marker| rest.rfind(marker))
        .max()?;
    let actions: &[&str] = match *method {
        Method::GET | Method::HEAD => &["pull"],
        Method::DELETE => &["delete"],
        _ => &["pull", "push"],
    };
    Some(Scope {
        resource_type: "repository".into(),
        name: rest[..end].to_owned(),
        actions: actions.iter().map(|a| (*a).to_owned()).collect(),
    })
}

/// An ACR-shaped 401 challenge with `error="invalid_token"`, as for a revoked token.
fn challenge(state: &State, method: &Method, path: &str) -> Resp {
    let scope = scope_for(method, path);
    let mut www = format!(
        "Bearer realm=\"{}/oauth2/token\",service=\"{}\"",
        state.url, state.issuer.service
    );
    let mut detail = Vec::new();
    if let Some(scope) = &scope {
        www.push_str(&format!(",scope=\"{scope}\""));
        for action in &scope.actions {
            detail.push(json!({"Type": scope.resource_type, "Name": scope.name, "Action": action}));
        }
    }
    www.push_str(",error=\"invalid_token\"");
    let body = json!({"errors": [{
        "code": "UNAUTHORIZED",
        "message": "authentication required, visit https://aka.ms/acr/authorization for more information.",
        "detail": if scope.is_some() { Value::from(detail) } else { Value::Null },
    }]});
    let mut resp = if *method == Method::HEAD {
        http::response(
            StatusCode::UNAUTHORIZED,
            "application/json; charset=utf-8",
            "",
        )
    } else {
        http::json(StatusCode::UNAUTHORIZED, &body)
    };
    http::set_header(&mut resp, "www-authenticate", &www);
    http::set_header(&mut resp, "docker-distribution-api-version", "registry/2.0");
    resp
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scopes_of_data_plane_requests() {
        let scope = |m: Method, p: &str| scope_for(&m, p).map(|s| s.to_string());
        assert_eq!(scope(Method::GET, "/v2/"), None);
        assert_eq!(
            scope(Method::GET, "/v2/_catalog").as_deref(),
            Some("registry:catalog:*")
        );
        assert_eq!(
            scope(Method::HEAD, "/v2/a/tags/b/manifests/v1").as_deref(),
            Some("repository:a/tags/b:pull")
        );
        assert_eq!(
            scope(Method::POST, "/v2/x/blobs/uploads/").as_deref(),
            Some("repository:x:pull,push")
        );
        assert_eq!(
            scope(Method::DELETE, "/v2/x/manifests/sha256:00").as_deref(),
            Some("repository:x:delete")
        );
    }

    #[test]
    fn hop_by_hop_headers_and_connection_listed_ones_go() {
        let mut headers = HeaderMap::new();
        headers.insert(
            hyper::header::CONNECTION,
            HeaderValue::from_static("keep-alive, x-private"),
        );
        headers.insert("x-private", HeaderValue::from_static("1"));
        headers.insert("transfer-encoding", HeaderValue::from_static("chunked"));
        headers.insert("location", HeaderValue::from_static("/v2/x"));
        strip_hop_by_hop(&mut headers);
        assert_eq!(headers.len(), 1);
        assert!(headers.contains_key("location"));
    }
}
