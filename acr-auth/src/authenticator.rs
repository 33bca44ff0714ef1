//! Credentials and the [`Authenticator`] that turns a registry's challenge into an
//! `Authorization` value, with a token cache.

use std::collections::HashMap;
use std::fmt;
use std::net::IpAddr;
use std::sync::{Arc, Mutex};
use std::time::SystemTime;

use async_trait::async_trait;
use bytes::Bytes;
use oci_distribution_proto::{BearerChallenge, Body, Challenge, Scope, Transport, merge_scopes};

use crate::token::{self, Token};
use crate::{AuthError, Secret, StoredCredential};

/// The user name that marks the password as an ACR refresh token (`az acr login --expose-token`).
pub const NULL_GUID_USER: &str = "00000000-0000-0000-0000-000000000000";

/// Largest token endpoint answer read; tokens are a few KiB.
const MAX_TOKEN_RESPONSE: u64 = 1 << 20;

/// What a request needs authorizing for: passed to a [`CredentialProvider`].
#[derive(Debug, Clone, Copy)]
pub struct AuthRequest<'a> {
    /// The registry host (with port), as in a reference.
    pub registry: &'a str,
    /// The scopes the request needs.
    pub scopes: &'a [Scope],
    /// The challenge the registry answered with, if it has answered yet.
    pub challenge: Option<&'a Challenge>,
}

/// A custom credential: anything that can produce an `Authorization` header value.
///
/// ```
/// use acr_auth::{AuthError, AuthRequest, CredentialProvider, Secret};
/// use acr_auth::proto::Transport;
///
/// /// A token that some other system hands out, sent as a bearer token everywhere.
/// #[derive(Debug)]
/// struct FromVault;
///
/// #[async_trait::async_trait]
/// impl CredentialProvider for FromVault {
///     async fn authorization(&self, _: AuthRequest<'_>, _: &dyn Transport) -> Result<Option<Secret>, AuthError> {
///         Ok(Some(Secret::new("Bearer token-from-the-vault")))
///     }
/// }
/// let credential = acr_auth::Credential::Custom(std::sync::Arc::new(FromVault));
/// ```
#[async_trait]
pub trait CredentialProvider: Send + Sync + fmt::Debug {
    /// The whole `Authorization` header value (e.g. `Bearer …`) for `request`, or `None` to
    /// send the request without one. Called again after each 401 challenge.
    async fn authorization(
        &self,
        request: AuthRequest<'_>,
        transport: &dyn Transport,
    ) -> Result<Option<Secret>, AuthError>;
}

/// A source of Azure AD (Entra ID) access tokens for the ACR exchange; the `azure_identity`
/// credentials plug in through it.
#[async_trait]
pub trait AadTokenProvider: Send + Sync + fmt::Debug {
    /// An AAD access token for the registry's audience.
    async fn aad_access_token(&self) -> Result<Secret, AuthError>;

    /// The tenant to name in the exchange, when one is known.
    fn tenant(&self) -> Option<String> {
        None
    }

    /// Forgets a cached token that the ACR exchange refused (revoked, or from a session that
    /// ended), so the next [`AadTokenProvider::aad_access_token`] asks the credential again.
    async fn invalidate(&self) {}
}

/// What the user authenticates with.
#[derive(Clone, Debug, Default)]
#[non_exhaustive]
pub enum Credential {
    /// Nothing; anonymous tokens are fetched when the registry asks for a bearer token.
    #[default]
    Anonymous,
    /// User name and password: sent as Basic where the registry asks for Basic, exchanged at the
    /// token realm where it asks for Bearer.
    Basic {
        /// The user name.
        username: String,
        /// The password.
        password: Secret,
    },
    /// An ACR refresh token (or a docker `identitytoken`), exchanged per scope at the realm.
    RefreshToken(Secret),
    /// A ready access token, sent as is.
    AccessToken(Secret),
    /// An AAD access token at hand (e.g. from a CI pipeline), exchanged for an ACR refresh token.
    AadAccessToken {
        /// The AAD access token.
        token: Secret,
        /// The tenant, when known.
        tenant: Option<String>,
    },
    /// AAD tokens from a provider (an `azure_identity` credential), exchanged as needed.
    Aad(Arc<dyn AadTokenProvider>),
    /// Anything else.
    Custom(Arc<dyn CredentialProvider>),
}

impl Credential {
    /// A user name and password as given to `login`: the all-zero user name means the password
    /// is an ACR refresh token.
    pub fn from_login(username: &str, password: Secret) -> Self {
        if username == NULL_GUID_USER {
            Self::RefreshToken(password)
        } else {
            Self::Basic {
                username: username.to_owned(),
                password,
            }
        }
    }

    /// What a docker config holds.
    pub fn from_stored(stored: StoredCredential) -> Self {
        match stored {
            StoredCredential::Basic { username, password } => Self::from_login(&username, password),
            StoredCredential::IdentityToken(token) => Self::RefreshToken(token),
        }
    }

    /// A short name for messages, never the secret.
    pub fn kind(&self) -> &'static str {
        match self {
            Self::Anonymous => "anonymous access",
            Self::Basic { .. } => "user name and password",
            Self::RefreshToken(_) => "refresh token",
            Self::AccessToken(_) => "access token",
            Self::AadAccessToken { .. } => "Azure AD access token",
            Self::Aad(_) => "Azure AD credential",
            Self::Custom(_) => "custom credential",
        }
    }
}

type Slot = Arc<tokio::sync::Mutex<Option<Token>>>;

/// Turns challenges into `Authorization` values for one [`Credential`], caching tokens per
/// registry and scope set. Share one per client: concurrent requests for the same scopes wait
/// for a single token request.
pub struct Authenticator {
    credential: Credential,
    access: Mutex<HashMap<(String, String), Slot>>,
    refresh: Mutex<HashMap<String, Slot>>,
    /// Registries that asked for Basic: later requests send it up front.
    basic_registries: Mutex<HashMap<String, ()>>,
    stats: Mutex<AuthStats>,
}

/// How many token requests an [`Authenticator`] made, to check caching.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct AuthStats {
    /// Requests for access tokens.
    pub token_requests: u32,
    /// AAD -> ACR refresh token exchanges.
    pub exchanges: u32,
}

impl fmt::Debug for Authenticator {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Authenticator")
            .field("credential", &self.credential.kind())
            .finish_non_exhaustive()
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

fn scope_key(scopes: &[Scope]) -> String {
    merge_scopes(scopes.iter().cloned())
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join(" ")
}

impl Authenticator {
    /// An authenticator for `credential`.
    pub fn new(credential: Credential) -> Self {
        Self {
            credential,
            access: Mutex::default(),
            refresh: Mutex::default(),
            basic_registries: Mutex::default(),
            stats: Mutex::default(),
        }
    }

    /// The credential.
    pub fn credential(&self) -> &Credential {
        &self.credential
    }

    /// Token requests made so far.
    pub fn stats(&self) -> AuthStats {
        *lock(&self.stats)
    }

    fn slot(&self, registry: &str, scopes: &[Scope]) -> Slot {
        lock(&self.access)
            .entry((registry.to_owned(), scope_key(scopes)))
            .or_default()
            .clone()
    }

    /// The `Authorization` value to send before any challenge: a cached token that covers
    /// `scopes`, Basic for a registry known to want it, or a static access token.
    pub async fn cached(&self, registry: &str, scopes: &[Scope]) -> Option<Secret> {
        match &self.credential {
            Credential::AccessToken(token) => return Some(bearer(token)),
            Credential::Basic { username, password }
                if lock(&self.basic_registries).contains_key(registry) =>
            {
                return Some(Secret::new(token::basic_header(username, password)));
            }
            _ => {}
        }
        let slot = self.slot(registry, scopes);
        let guard = slot.lock().await;
        guard
            .as_ref()
            .filter(|t| t.is_fresh(SystemTime::now()))
            .map(|t| bearer(&t.secret))
    }

    /// Drops the cached token for `registry` and `scopes` (after the registry refused it).
    pub async fn invalidate(&self, registry: &str, scopes: &[Scope]) {
        *self.slot(registry, scopes).lock().await = None;
    }

    /// The `Authorization` value answering `challenges` (from a 401) for a request that needs
    /// `scopes`. Fetches and caches a token where the registry asks for Bearer.
    pub async fn authorize(
        &self,
        registry: &str,
        challenges: &[Challenge],
        scopes: &[Scope],
        transport: &dyn Transport,
    ) -> Result<Option<Secret>, AuthError> {
        if let Credential::Custom(provider) = &self.credential {
            let challenge = challenges.first();
            return provider
                .authorization(
                    AuthRequest {
                        registry,
                        scopes,
                        challenge,
                    },
                    transport,
                )
                .await;
        }
        if let Some(bearer_challenge) = challenges.iter().find_map(Challenge::as_bearer) {
            // The request's own scopes plus whatever the registry names (a mount names two repos).
            let mut wanted: Vec<Scope> = scopes.to_vec();
            wanted.extend(bearer_challenge.scopes().iter().cloned());
            let wanted = merge_scopes(wanted);
            let slot = self.slot(registry, &wanted);
            let mut guard = slot.lock().await;
            if let Some(token) = guard.as_ref().filter(|t| t.is_fresh(SystemTime::now())) {
                // Another task refreshed it while this one waited for the lock.
                if !challenge_rejects(bearer_challenge) {
                    return Ok(Some(bearer(&token.secret)));
                }
            }
            let token = self
                .fetch_token(registry, bearer_challenge, &wanted, transport)
                .await?;
            let header = bearer(&token.secret);
            *guard = Some(token);
            // Also answer later requests for exactly the request's scopes from this token.
            if scope_key(&wanted) != scope_key(scopes) {
                let narrow = self.slot(registry, scopes);
                if let Ok(mut narrow) = narrow.try_lock() {
                    *narrow = guard.clone();
                }
            }
            return Ok(Some(header));
        }
        if challenges
            .iter()
            .any(|c| matches!(c, Challenge::Basic { .. }))
        {
            return match &self.credential {
                Credential::Basic { username, password } => {
                    lock(&self.basic_registries).insert(registry.to_owned(), ());
                    Ok(Some(Secret::new(token::basic_header(username, password))))
                }
                other => Err(AuthError::BasicRequired {
                    registry: registry.to_owned(),
                    tried: other.kind(),
                }),
            };
        }
        match challenges.first() {
            Some(other) => Err(AuthError::UnsupportedChallenge {
                registry: registry.to_owned(),
                scheme: other.scheme().to_owned(),
            }),
            None => Err(AuthError::NoChallenge {
                registry: registry.to_owned(),
            }),
        }
    }

    async fn fetch_token(
        &self,
        registry: &str,
        challenge: &BearerChallenge,
        scopes: &[Scope],
        transport: &dyn Transport,
    ) -> Result<Token, AuthError> {
        let realm = challenge.realm();
        let service = challenge.service().unwrap_or(registry);
        let scope_strings: Vec<String> = scopes.iter().map(ToString::to_string).collect();
        let sends_secret = !matches!(self.credential, Credential::Anonymous);
        check_realm(registry, realm, sends_secret)?;
        let request = match &self.credential {
            // ACR's token endpoint takes anonymous requests as the password grant with an empty
            // refresh token, as every Azure SDK sends them.
            Credential::Anonymous if is_acr_realm(realm) => {
                token::anonymous_acr_request(realm, service, &scope_strings)?
            }
            Credential::Anonymous => {
                token::token_get_request(realm, Some(service), &scope_strings, None)?
            }
            Credential::Basic { username, password } => token::token_get_request(
                realm,
                Some(service),
                &scope_strings,
                Some((username, password)),
            )?,
            Credential::RefreshToken(refresh) => {
                token::refresh_token_request(realm, service, &scope_strings, refresh)?
            }
            Credential::AccessToken(token) => {
                // The registry refused the static token: nothing to refresh it with.
                let _ = token;
                return Err(AuthError::TokenRejected {
                    registry: registry.to_owned(),
                    tried: "access token",
                    detail: challenge.error().map(str::to_owned),
                });
            }
            Credential::AadAccessToken { .. } | Credential::Aad(_) => {
                let refresh = self
                    .acr_refresh_token(registry, realm, service, transport)
                    .await?;
                token::refresh_token_request(realm, service, &scope_strings, &refresh)?
            }
            Credential::Custom(_) => unreachable_custom()?,
        };
        lock(&self.stats).token_requests += 1;
        let token = send_token_request(transport, request, realm).await;
        // A refresh token the registry no longer takes: drop it so the next try exchanges anew.
        if token.is_err()
            && matches!(
                self.credential,
                Credential::AadAccessToken { .. } | Credential::Aad(_)
            )
        {
            *self.refresh_slot(registry).lock().await = None;
        }
        token.map_err(|e| name_credential(e, registry, self.credential.kind()))
    }

    /// The ACR refresh token for `registry`, exchanged from this authenticator's AAD
    /// credential at the realm of `challenges` (what `acr login --aad` stores, never the AAD
    /// token itself).
    pub async fn exchange_refresh_token(
        &self,
        registry: &str,
        challenges: &[Challenge],
        transport: &dyn Transport,
    ) -> Result<Secret, AuthError> {
        let challenge = challenges
            .iter()
            .find_map(Challenge::as_bearer)
            .ok_or_else(|| {
                AuthError::Aad(format!(
                    "{registry} does not ask for bearer tokens, so it takes no Azure AD login"
                ))
            })?;
        let service = challenge.service().unwrap_or(registry);
        check_realm(registry, challenge.realm(), true)?;
        self.acr_refresh_token(registry, challenge.realm(), service, transport)
            .await
    }

    fn refresh_slot(&self, registry: &str) -> Slot {
        lock(&self.refresh)
            .entry(registry.to_owned())
            .or_default()
            .clone()
    }

    /// The ACR refresh token for `registry`, exchanged from an AAD token once and reused across
    /// scopes until it expires.
    async fn acr_refresh_token(
        &self,
        registry: &str,
        realm: &str,
        service: &str,
        transport: &dyn Transport,
    ) -> Result<Secret, AuthError> {
        let slot = self.refresh_slot(registry);
        let mut guard = slot.lock().await;
        if let Some(token) = guard.as_ref().filter(|t| t.is_fresh(SystemTime::now())) {
            return Ok(token.secret.clone());
        }
        let (aad, tenant) = match &self.credential {
            Credential::AadAccessToken { token, tenant } => (token.clone(), tenant.clone()),
            Credential::Aad(provider) => (provider.aad_access_token().await?, provider.tenant()),
            _ => return Err(AuthError::Aad("no Azure AD credential to exchange".into())),
        };
        let base = origin(realm).ok_or_else(|| AuthError::InvalidRealm {
            realm: realm.to_owned(),
            message: "no scheme and host".into(),
        })?;
        let mut exchanged = self
            .exchange(&base, service, &aad, tenant.as_deref(), transport)
            .await;
        if let (Credential::Aad(provider), Err(AuthError::TokenDenied { status, .. })) =
            (&self.credential, &exchanged)
            && *status == http::StatusCode::UNAUTHORIZED
        {
            // The AAD token was refused although it looked fresh: ask for a new one, once.
            provider.invalidate().await;
            let fresh = provider.aad_access_token().await?;
            if fresh.expose() != aad.expose() {
                exchanged = self
                    .exchange(&base, service, &fresh, tenant.as_deref(), transport)
                    .await;
            }
        }
        let token = exchanged.map_err(|e| name_credential(e, registry, self.credential.kind()))?;
        let secret = token.secret.clone();
        *guard = Some(token);
        Ok(secret)
    }
}

impl Authenticator {
    /// One `POST /oauth2/exchange` of an AAD token for an ACR refresh token.
    async fn exchange(
        &self,
        base: &str,
        service: &str,
        aad: &Secret,
        tenant: Option<&str>,
        transport: &dyn Transport,
    ) -> Result<Token, AuthError> {
        let request = token::exchange_request(base, service, aad, tenant)?;
        lock(&self.stats).exchanges += 1;
        send_token_request(transport, request, &format!("{base}/oauth2/exchange")).await
    }
}

fn unreachable_custom() -> Result<http::Request<Bytes>, AuthError> {
    Err(AuthError::Aad(
        "custom credentials answer challenges themselves".into(),
    ))
}

/// A registry says "this token is not good" (rather than "authenticate"): refetch even when the
/// cached one looks fresh.
fn challenge_rejects(challenge: &BearerChallenge) -> bool {
    challenge.is_invalid_token() || challenge.is_insufficient_scope()
}

fn bearer(token: &Secret) -> Secret {
    Secret::new(format!("Bearer {}", token.expose()))
}

/// Whether a realm is ACR's `/oauth2/token` endpoint.
fn is_acr_realm(realm: &str) -> bool {
    url::Url::parse(realm).is_ok_and(|u| u.path() == "/oauth2/token")
}

/// `scheme://host[:port]` of a URL.
fn origin(url: &str) -> Option<String> {
    let parsed = url::Url::parse(url).ok()?;
    let host = parsed.host_str()?;
    Some(match parsed.port() {
        Some(port) => format!("{}://{host}:{port}", parsed.scheme()),
        None => format!("{}://{host}", parsed.scheme()),
    })
}

/// The IPv6 instance metadata address (the IPv4 one, 169.254.169.254, is link-local).
const AWS_METADATA_V6: std::net::Ipv6Addr =
    std::net::Ipv6Addr::new(0xfd00, 0xec2, 0, 0, 0, 0, 0, 0x254);

/// Where credentials may go: never to link-local or cloud metadata addresses, and to another
/// host than the registry's only over HTTPS.
fn check_realm(registry: &str, realm: &str, sends_secret: bool) -> Result<(), AuthError> {
    let unsafe_realm = |reason: &'static str| AuthError::UnsafeRealm {
        registry: registry.to_owned(),
        realm: realm.to_owned(),
        reason,
    };
    let parsed = url::Url::parse(realm).map_err(|e| AuthError::InvalidRealm {
        realm: realm.to_owned(),
        message: e.to_string(),
    })?;
    if !matches!(parsed.scheme(), "http" | "https") {
        return Err(unsafe_realm("the realm is not an http(s) URL"));
    }
    let host = parsed.host_str().unwrap_or_default();
    let ip: Option<IpAddr> = host
        .trim_start_matches('[')
        .trim_end_matches(']')
        .parse()
        .ok();
    let link_local = match ip {
        Some(IpAddr::V4(v4)) => v4.is_link_local(),
        Some(IpAddr::V6(v6)) => (v6.segments()[0] & 0xffc0) == 0xfe80 || v6 == AWS_METADATA_V6,
        None => false,
    };
    if link_local {
        return Err(unsafe_realm(
            "link-local and cloud metadata addresses never get credentials",
        ));
    }
    let registry_host = registry
        .rsplit_once(':')
        .filter(|(_, port)| port.bytes().all(|b| b.is_ascii_digit()))
        .map_or(registry, |(h, _)| h);
    let registry_host = registry_host.trim_start_matches('[').trim_end_matches(']');
    if sends_secret && !host.eq_ignore_ascii_case(registry_host) && parsed.scheme() != "https" {
        return Err(unsafe_realm(
            "credentials go to another host only over HTTPS",
        ));
    }
    Ok(())
}

/// Names the credential in a refusal from a token endpoint.
fn name_credential(error: AuthError, registry: &str, tried: &'static str) -> AuthError {
    match error {
        AuthError::TokenDenied {
            endpoint,
            status,
            message,
        } if matches!(status.as_u16(), 401 | 403) => AuthError::Unauthorized {
            registry: registry.to_owned(),
            tried,
            endpoint,
            // ACR answers with an empty body: the status is all there is to say.
            message: Some(match message {
                Some(said) => format!("{status}: {said}"),
                None => status.to_string(),
            }),
        },
        other => other,
    }
}

async fn send_token_request(
    transport: &dyn Transport,
    request: http::Request<Bytes>,
    endpoint: &str,
) -> Result<Token, AuthError> {
    let endpoint = endpoint.split('?').next().unwrap_or(endpoint).to_owned();
    let request = request.map(Body::from);
    let response = transport
        .send(request)
        .await
        .map_err(|e| AuthError::Transport {
            endpoint: endpoint.clone(),
            message: e.to_string(),
        })?;
    let status = response.status();
    let body = response
        .into_body()
        .collect(MAX_TOKEN_RESPONSE)
        .await
        .map_err(|e| AuthError::TokenResponse {
            endpoint: endpoint.clone(),
            message: e.to_string(),
        })?;
    token::parse_token_response(&endpoint, status, &body, SystemTime::now())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn realms_that_never_get_credentials() {
        assert!(check_realm("r.io", "https://auth.io/token", true).is_ok());
        assert!(check_realm("r.io", "http://r.io/token", true).is_ok());
        assert!(check_realm("127.0.0.1:5000", "http://127.0.0.1:5001/token", true).is_ok());
        let err = check_realm("r.io", "http://auth.io/token", true).unwrap_err();
        assert!(err.to_string().contains("only over HTTPS"), "{err}");
        assert!(
            check_realm("r.io", "http://auth.io/token", false).is_ok(),
            "anonymous sends nothing secret"
        );
        for metadata in [
            "http://169.254.169.254/token",
            "https://169.254.169.254/token",
            "http://[fd00:ec2::254]/t",
            "http://[fe80::1]/t",
        ] {
            let err = check_realm("r.io", metadata, false).unwrap_err();
            assert!(err.to_string().contains("link-local"), "{metadata}: {err}");
        }
        assert!(check_realm("r.io", "file:///etc/passwd", false).is_err());
    }

    #[test]
    fn null_guid_user_means_refresh_token() {
        assert!(matches!(
            Credential::from_login(NULL_GUID_USER, Secret::new("rt")),
            Credential::RefreshToken(_)
        ));
        assert!(matches!(
            Credential::from_login("admin", Secret::new("pw")),
            Credential::Basic { .. }
        ));
        let stored = StoredCredential::IdentityToken(Secret::new("rt"));
        assert!(matches!(
            Credential::from_stored(stored),
            Credential::RefreshToken(_)
        ));
    }

    #[test]
    fn origins() {
        assert_eq!(
            origin("https://r.azurecr.io/oauth2/token").as_deref(),
            Some("https://r.azurecr.io")
        );
        assert_eq!(
            origin("http://127.0.0.1:5000/oauth2/token?x").as_deref(),
            Some("http://127.0.0.1:5000")
        );
        assert_eq!(origin("nope"), None);
    }
}
