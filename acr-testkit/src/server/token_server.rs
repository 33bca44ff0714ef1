//! A distribution token server (`auth.token` of docker-registry) issuing ES256 JWTs.

use std::fmt;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;

use hyper::body::Incoming;
use hyper::{Method, Request, StatusCode};
use serde_json::{Value, json};

use super::faults::{Faults, Shared, Stats};
use super::grants::{Grant, Scope, User, intersect, parse_scopes};
use super::http::{self, Background, Params, Resp};
use super::jwt::{Issuer, KeyId, rfc3339};
use super::keys::SigningKey;
use crate::registry::{Auth, Error, Registry, RegistryOptions, TokenAuth, unique_temp_dir};

/// How to start a [`TokenServer`].
#[derive(Debug, Clone)]
pub struct TokenServerOptions {
    /// The `service` (token `aud`, challenge `service`).
    pub service: String,
    /// The token `iss`.
    pub issuer: String,
    /// Users and what each may do.
    pub users: Vec<User>,
    /// What requests without credentials get (default: nothing).
    pub anonymous: Vec<Grant>,
    /// Access-token lifetime in seconds unless [`Faults::set_access_token_ttl`] overrides it.
    pub access_token_ttl: u64,
    /// How tokens name their signing key.
    pub key_id: KeyId,
    /// Serve HTTPS with a fresh test CA (see [`TokenServer::ca_file`]).
    pub tls: bool,
    /// Port on 127.0.0.1; a free one when `None`.
    pub port: Option<u16>,
}

impl Default for TokenServerOptions {
    fn default() -> Self {
        Self {
            service: "acr-testkit-registry".into(),
            issuer: "acr-testkit-token-server".into(),
            users: Vec::new(),
            anonymous: Vec::new(),
            access_token_ttl: 300,
            key_id: KeyId::X5c,
            tls: false,
            port: None,
        }
    }
}

/// Refresh tokens of the token server live this long (seconds) unless a fault overrides it.
const REFRESH_TTL: i64 = 3 * 3600;
/// Form bodies larger than this are refused.
const FORM_LIMIT: usize = 64 * 1024;

struct State {
    issuer: Issuer,
    users: Vec<User>,
    anonymous: Vec<Grant>,
    access_ttl: i64,
    realm: String,
}

/// A running token server (stopped on drop).
///
/// `GET /token?service=S&scope=…[&offline_token=true]` with optional Basic auth answers
/// `{token, access_token, expires_in, issued_at[, refresh_token]}`; `POST /token` takes
/// `grant_type=password` (`username`, `password`, `service`, `scope`, `access_type=offline`)
/// or `grant_type=refresh_token` (`refresh_token`, `service`, `scope`). Errors are OAuth2
/// style: `{"error":"invalid_grant","error_description":…}`. Tokens carry only the
/// intersection of the requested and the allowed actions.
pub struct TokenServer {
    _background: Background,
    state: Arc<State>,
    faults: Faults,
    addr: SocketAddr,
    url: String,
    ca_file: Option<PathBuf>,
    dir: PathBuf,
}

impl fmt::Debug for TokenServer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TokenServer")
            .field("url", &self.url)
            .field("service", &self.state.issuer.service)
            .finish_non_exhaustive()
    }
}

impl TokenServer {
    /// Generates a signing key and certificate, and starts serving `/token`. Blocking (runs
    /// `openssl`); the server runs on its own thread, so any test style can use it.
    pub fn start(options: TokenServerOptions) -> Result<Self, Error> {
        let dir = unique_temp_dir("acr-testkit-token")?;
        let started = Self::start_in(options, dir.clone());
        if started.is_err() {
            let _ = std::fs::remove_dir_all(&dir);
        }
        started
    }

    fn start_in(options: TokenServerOptions, dir: PathBuf) -> Result<Self, Error> {
        let key = SigningKey::generate(&dir, "token-signing", "acr-testkit token signer")?;
        let (listener, addr) = http::bind(options.port)?;
        let (tls, ca_file) = match options.tls {
            true => {
                let (acceptor, ca) = http::tls_acceptor(&dir)?;
                (Some(acceptor), Some(ca))
            }
            false => (None, None),
        };
        let scheme = if tls.is_some() { "https" } else { "http" };
        let url = format!("{scheme}://{addr}");
        let shared = Arc::new(Shared::default());
        let state = Arc::new(State {
            issuer: Issuer {
                key,
                key_id: options.key_id,
                issuer: options.issuer,
                service: options.service,
                shared: shared.clone(),
            },
            users: options.users,
            anonymous: options.anonymous,
            access_ttl: i64::try_from(options.access_token_ttl).unwrap_or(i64::MAX),
            realm: format!("{url}/token"),
        });
        let handler_state = state.clone();
        let background = http::serve("acr-testkit-token", listener, tls, move |req| {
            handle(handler_state.clone(), req)
        })?;
        Ok(Self {
            _background: background,
            state,
            faults: Faults { shared },
            addr,
            url,
            ca_file,
            dir,
        })
    }

    /// `http://127.0.0.1:<port>` (or `https://…`).
    pub fn url(&self) -> &str {
        &self.url
    }

    /// The socket address.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The token endpoint, `<url>/token`: what the registry's challenge names as `realm`.
    pub fn realm(&self) -> &str {
        &self.state.realm
    }

    /// The `service` tokens are issued for.
    pub fn service(&self) -> &str {
        &self.state.issuer.service
    }

    /// The `iss` of the tokens.
    pub fn issuer(&self) -> &str {
        &self.state.issuer.issuer
    }

    /// PEM certificate of the signing key (the registry's `rootcertbundle`).
    pub fn cert_file(&self) -> PathBuf {
        self.state.issuer.key.cert_pem().to_path_buf()
    }

    /// The CA file to trust in TLS mode.
    pub fn ca_file(&self) -> Option<PathBuf> {
        self.ca_file.clone()
    }

    /// The registry settings that make docker-registry trust this server's tokens.
    pub fn registry_auth(&self) -> Auth {
        Auth::Token(TokenAuth {
            realm: self.realm().to_owned(),
            service: self.service().to_owned(),
            issuer: self.issuer().to_owned(),
            root_cert_bundle: self.cert_file(),
        })
    }

    /// Starts a docker-registry that uses this token server (`options.auth` is replaced).
    pub fn start_registry(&self, options: RegistryOptions) -> Result<Registry, Error> {
        Registry::start(RegistryOptions {
            auth: self.registry_auth(),
            ..options
        })
    }

    /// Mints an access token directly, for `subject` with exactly these scopes
    /// (`repository:foo:pull,push`, …), bypassing users and grants.
    pub fn mint_access_token(&self, subject: &str, scopes: &[&str]) -> Result<String, Error> {
        let access = parse_scopes(scopes.iter().copied());
        self.state
            .issuer
            .access_token(subject, &access, self.state.access_ttl, json!({}))
            .map(|issued| issued.token)
            .map_err(Error::Server)
    }

    /// The fault and counter handle (cloneable, shared with the running server).
    pub fn faults(&self) -> Faults {
        self.faults.clone()
    }

    /// The counters so far.
    pub fn stats(&self) -> Stats {
        self.faults.stats()
    }
}

impl Drop for TokenServer {
    fn drop(&mut self) {
        // The key files were read at start; the server thread stops when `background` drops.
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// An OAuth2-style error.
fn oauth_error(status: StatusCode, error: &str, description: &str) -> Resp {
    http::json(
        status,
        &json!({"error": error, "error_description": description}),
    )
}

async fn handle(state: Arc<State>, req: Request<Incoming>) -> Resp {
    let shared = &state.issuer.shared;
    let delay = shared.token_delay();
    if !delay.is_zero() {
        tokio::time::sleep(delay).await;
    }
    if req.uri().path() != "/token" {
        return oauth_error(
            StatusCode::NOT_FOUND,
            "not_found",
            "this token server only serves /token",
        );
    }
    if shared.take_token_failure() {
        shared.count_token_failure();
        return oauth_error(
            StatusCode::UNAUTHORIZED,
            "invalid_grant",
            "injected failure (Faults::fail_next_token_requests)",
        );
    }
    let resp = match *req.method() {
        Method::GET => get_token(&state, &req),
        Method::POST => post_token(&state, req).await,
        _ => {
            let mut resp = oauth_error(
                StatusCode::METHOD_NOT_ALLOWED,
                "invalid_request",
                "use GET or POST on /token",
            );
            http::set_header(&mut resp, "allow", "GET, POST");
            resp
        }
    };
    if !resp.status().is_success() {
        shared.count_token_failure();
    }
    resp
}

/// Checks the `service` parameter against ours.
fn service_error(state: &State, params: &Params) -> Option<Resp> {
    match params.non_empty("service") {
        None => Some(oauth_error(
            StatusCode::BAD_REQUEST,
            "invalid_request",
            "missing service parameter (use the service from the registry's challenge)",
        )),
        Some(service) if service != state.issuer.service => Some(oauth_error(
            StatusCode::BAD_REQUEST,
            "invalid_request",
            &format!(
                "unknown service {service:?}; this token server issues tokens for {:?}",
                state.issuer.service
            ),
        )),
        Some(_) => None,
    }
}

fn authenticate<'a>(state: &'a State, name: &str, password: &str) -> Option<&'a User> {
    state
        .users
        .iter()
        .find(|u| u.name == name && u.password == password)
}

fn get_token(state: &State, req: &Request<Incoming>) -> Resp {
    let params = http::query(req);
    if let Some(resp) = service_error(state, &params) {
        return resp;
    }
    let user = match http::basic_auth(req.headers()) {
        None => None,
        Some(Err(why)) => return unauthorized_basic(state, why),
        Some(Ok((name, password))) => match authenticate(state, &name, &password) {
            Some(user) => Some(user),
            None => return unauthorized_basic(state, "wrong user name or password"),
        },
    };
    let offline = params.get("offline_token") == Some("true") && user.is_some();
    respond(state, user, &params, offline, None, true)
}

/// 401 for GET with bad Basic credentials; the Basic challenge lets docker-style clients retry.
fn unauthorized_basic(state: &State, why: &str) -> Resp {
    let mut resp = oauth_error(StatusCode::UNAUTHORIZED, "invalid_grant", why);
    http::set_header(
        &mut resp,
        "www-authenticate",
        &format!("Basic realm=\"{}\"", state.realm),
    );
    resp
}

async fn post_token(state: &State, req: Request<Incoming>) -> Resp {
    let body = match http::read_body(req.into_body(), FORM_LIMIT).await {
        Ok(body) => body,
        Err(resp) => return resp,
    };
    let params = Params(http::form_pairs(&String::from_utf8_lossy(&body)));
    if let Some(resp) = service_error(state, &params) {
        return resp;
    }
    match params.get("grant_type") {
        Some("password") => {
            let (Some(name), Some(password)) =
                (params.non_empty("username"), params.get("password"))
            else {
                return oauth_error(
                    StatusCode::BAD_REQUEST,
                    "invalid_request",
                    "grant_type=password needs username and password",
                );
            };
            let Some(user) = authenticate(state, name, password) else {
                return oauth_error(
                    StatusCode::UNAUTHORIZED,
                    "invalid_grant",
                    "wrong user name or password",
                );
            };
            let offline = params.get("access_type") == Some("offline");
            respond(state, Some(user), &params, offline, None, false)
        }
        Some("refresh_token") => {
            let Some(token) = params.non_empty("refresh_token") else {
                return oauth_error(
                    StatusCode::BAD_REQUEST,
                    "invalid_request",
                    "grant_type=refresh_token needs refresh_token",
                );
            };
            let claims = match state.issuer.verify_refresh_token(token) {
                Ok(claims) => claims,
                Err(why) => return oauth_error(StatusCode::UNAUTHORIZED, "invalid_grant", why),
            };
            let subject = claims
                .get("sub")
                .and_then(Value::as_str)
                .unwrap_or_default();
            let Some(user) = state.users.iter().find(|u| u.name == subject) else {
                return oauth_error(
                    StatusCode::UNAUTHORIZED,
                    "invalid_grant",
                    "the refresh token's user no longer exists",
                );
            };
            respond(state, Some(user), &params, false, Some(token), false)
        }
        Some(other) => oauth_error(
            StatusCode::BAD_REQUEST,
            "unsupported_grant_type",
            &format!("grant_type {other:?} is not supported; use password or refresh_token"),
        ),
        None => oauth_error(
            StatusCode::BAD_REQUEST,
            "invalid_request",
            "missing grant_type (password or refresh_token)",
        ),
    }
}

/// Issues the access token (and a refresh token when `offline`) and builds the response.
fn respond(
    state: &State,
    user: Option<&User>,
    params: &Params,
    offline: bool,
    given_refresh: Option<&str>,
    get: bool,
) -> Resp {
    let requested = parse_scopes(params.all("scope"));
    let (subject, allowed) = match user {
        Some(user) => (user.name.as_str(), user.access.as_slice()),
        None => ("", state.anonymous.as_slice()),
    };
    let granted: Vec<Scope> = intersect(&requested, allowed);
    let issued = match state
        .issuer
        .access_token(subject, &granted, state.access_ttl, json!({}))
    {
        Ok(issued) => issued,
        Err(why) => return oauth_error(StatusCode::INTERNAL_SERVER_ERROR, "server_error", &why),
    };
    let mut body = json!({
        "access_token": issued.token,
        "expires_in": issued.expires_in,
        "issued_at": rfc3339(issued.issued_at),
    });
    if get {
        body["token"] = json!(issued.token);
    } else {
        let scope: Vec<String> = granted.iter().map(ToString::to_string).collect();
        body["scope"] = json!(scope.join(" "));
    }
    let refresh = match (offline, given_refresh) {
        (_, Some(given)) => Some(given.to_owned()),
        (true, None) => match state.issuer.refresh_token(subject, REFRESH_TTL, json!({})) {
            Ok(issued) => Some(issued.token),
            Err(why) => {
                return oauth_error(StatusCode::INTERNAL_SERVER_ERROR, "server_error", &why);
            }
        },
        (false, None) => None,
    };
    if let Some(refresh) = refresh {
        body["refresh_token"] = json!(refresh);
    }
    http::json(StatusCode::OK, &body)
}
