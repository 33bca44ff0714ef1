//! Token endpoint exchanges, sans-IO: requests to build and responses to read for the
//! distribution token protocol and ACR's `/oauth2/exchange` and `/oauth2/token`.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use base64::Engine as _;
use bytes::Bytes;
use http::header::{ACCEPT, AUTHORIZATION, CONTENT_TYPE};
use http::{Method, Request, StatusCode};
use serde::Deserialize;

use crate::{AuthError, Secret};

/// How long before its expiry a token is treated as expired, so a request never leaves with a
/// token that dies on the way.
pub const EXPIRY_MARGIN: Duration = Duration::from_secs(60);

/// When a token without any expiry information is assumed to expire (the distribution token
/// spec's default `expires_in`).
pub const DEFAULT_LIFETIME: Duration = Duration::from_secs(60);

/// A token from a token endpoint, with when it stops being usable.
#[derive(Clone, PartialEq, Eq)]
pub struct Token {
    /// The bearer token.
    pub secret: Secret,
    /// When it expires (from the JWT `exp`, else `expires_in`, else [`DEFAULT_LIFETIME`]).
    pub expires_at: SystemTime,
    /// When to stop using it: [`EXPIRY_MARGIN`] before expiry, or half-way for short-lived tokens.
    pub refresh_at: SystemTime,
    /// A refresh token, when the server returned one.
    pub refresh_token: Option<Secret>,
}

impl std::fmt::Debug for Token {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Token")
            .field("secret", &self.secret)
            .field("expires_at", &self.expires_at)
            .field("refresh_at", &self.refresh_at)
            .field(
                "refresh_token",
                &self.refresh_token.as_ref().map(|_| "<redacted>"),
            )
            .finish()
    }
}

impl Token {
    /// A token obtained at `now` that expires at `expires_at`.
    pub fn new(secret: Secret, expires_at: SystemTime, now: SystemTime) -> Self {
        let lifetime = expires_at.duration_since(now).unwrap_or_default();
        let refresh_at = expires_at - EXPIRY_MARGIN.min(lifetime / 2);
        Self {
            secret,
            expires_at,
            refresh_at,
            refresh_token: None,
        }
    }

    /// Whether the token is still good to use at `now`.
    pub fn is_fresh(&self, now: SystemTime) -> bool {
        now < self.refresh_at
    }
}

/// Reads the `exp` claim of a JWT, without verifying it: only to know when to refresh.
/// Accepts base64url and standard base64, padded or not (ACR and test tokens vary).
///
/// ```
/// use acr_auth::jwt_expiry;
/// // {"exp":1700000000}
/// let token = "e30.eyJleHAiOjE3MDAwMDAwMDB9.sig";
/// assert_eq!(jwt_expiry(token).unwrap().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs(), 1_700_000_000);
/// assert_eq!(jwt_expiry("not a jwt"), None);
/// ```
pub fn jwt_expiry(token: &str) -> Option<SystemTime> {
    let payload = token.split('.').nth(1)?;
    let cleaned: String = payload
        .trim_end_matches('=')
        .chars()
        .map(|c| match c {
            '+' => '-',
            '/' => '_',
            c => c,
        })
        .collect();
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(cleaned)
        .ok()?;
    let claims: serde_json::Value = serde_json::from_slice(&bytes).ok()?;
    let exp = claims.get("exp")?;
    let seconds = exp
        .as_u64()
        .or_else(|| exp.as_f64().filter(|f| *f >= 0.0).map(|f| f as u64))?;
    UNIX_EPOCH.checked_add(Duration::from_secs(seconds))
}

fn form(pairs: &[(&str, &str)]) -> String {
    url::form_urlencoded::Serializer::new(String::new())
        .extend_pairs(pairs)
        .finish()
}

fn form_request(url: &str, body: String) -> Result<Request<Bytes>, AuthError> {
    Request::builder()
        .method(Method::POST)
        .uri(url)
        .header(CONTENT_TYPE, "application/x-www-form-urlencoded")
        .header(ACCEPT, "application/json")
        .body(Bytes::from(body))
        .map_err(|e| AuthError::InvalidRealm {
            realm: url.to_owned(),
            message: e.to_string(),
        })
}

/// `GET <realm>?service=..&scope=..` (distribution token protocol), optionally with Basic
/// credentials; anonymous when `basic` is `None`.
pub fn token_get_request(
    realm: &str,
    service: Option<&str>,
    scopes: &[String],
    basic: Option<(&str, &Secret)>,
) -> Result<Request<Bytes>, AuthError> {
    let mut url = url::Url::parse(realm).map_err(|e| AuthError::InvalidRealm {
        realm: realm.to_owned(),
        message: e.to_string(),
    })?;
    {
        let mut query = url.query_pairs_mut();
        if let Some(service) = service {
            query.append_pair("service", service);
        }
        for scope in scopes {
            query.append_pair("scope", scope);
        }
    }
    let mut builder = Request::builder()
        .method(Method::GET)
        .uri(url.as_str())
        .header(ACCEPT, "application/json");
    if let Some((user, password)) = basic {
        builder = builder.header(AUTHORIZATION, basic_header(user, password));
    }
    builder
        .body(Bytes::new())
        .map_err(|e| AuthError::InvalidRealm {
            realm: realm.to_owned(),
            message: e.to_string(),
        })
}

/// `Basic base64(user:password)`.
pub fn basic_header(user: &str, password: &Secret) -> String {
    let encoded =
        base64::engine::general_purpose::STANDARD.encode(format!("{user}:{}", password.expose()));
    format!("Basic {encoded}")
}

/// `POST <realm>` with `grant_type=refresh_token` (OAuth2 form of the token protocol; ACR's
/// `/oauth2/token`). Scopes are sent one `scope=` field each.
pub fn refresh_token_request(
    realm: &str,
    service: &str,
    scopes: &[String],
    refresh_token: &Secret,
) -> Result<Request<Bytes>, AuthError> {
    let mut pairs = vec![("grant_type", "refresh_token"), ("service", service)];
    pairs.extend(scopes.iter().map(|s| ("scope", s.as_str())));
    pairs.push(("refresh_token", refresh_token.expose()));
    form_request(realm, form(&pairs))
}

/// `POST <realm>` with `grant_type=password` (username and password; with an empty password and
/// no user, ACR's anonymous form).
pub fn password_request(
    realm: &str,
    service: &str,
    scopes: &[String],
    username: &str,
    password: &Secret,
) -> Result<Request<Bytes>, AuthError> {
    let mut pairs = vec![
        ("grant_type", "password"),
        ("service", service),
        ("username", username),
    ];
    pairs.extend(scopes.iter().map(|s| ("scope", s.as_str())));
    pairs.push(("password", password.expose()));
    form_request(realm, form(&pairs))
}

/// `POST <realm>` with `grant_type=password` and an empty `refresh_token`: ACR's anonymous
/// token request (what every Azure SDK sends for anonymous pull).
pub fn anonymous_acr_request(
    realm: &str,
    service: &str,
    scopes: &[String],
) -> Result<Request<Bytes>, AuthError> {
    let mut pairs = vec![("grant_type", "password"), ("service", service)];
    pairs.extend(scopes.iter().map(|s| ("scope", s.as_str())));
    pairs.push(("refresh_token", ""));
    form_request(realm, form(&pairs))
}

/// `POST https://<registry>/oauth2/exchange`: an AAD access token for an ACR refresh token.
pub fn exchange_request(
    registry_base: &str,
    service: &str,
    aad_access_token: &Secret,
    tenant: Option<&str>,
) -> Result<Request<Bytes>, AuthError> {
    let url = format!("{}/oauth2/exchange", registry_base.trim_end_matches('/'));
    let mut pairs = vec![("grant_type", "access_token"), ("service", service)];
    if let Some(tenant) = tenant {
        pairs.push(("tenant", tenant));
    }
    pairs.push(("access_token", aad_access_token.expose()));
    form_request(&url, form(&pairs))
}

#[derive(Deserialize)]
struct TokenBody {
    #[serde(default)]
    token: Option<String>,
    #[serde(default)]
    access_token: Option<String>,
    #[serde(default)]
    refresh_token: Option<String>,
    #[serde(default)]
    expires_in: Option<u64>,
}

/// Reads a token endpoint's answer: `{token|access_token, expires_in?, refresh_token?}` for an
/// access token, or `{refresh_token}` from ACR's exchange. `endpoint` names it in errors.
pub fn parse_token_response(
    endpoint: &str,
    status: StatusCode,
    body: &[u8],
    now: SystemTime,
) -> Result<Token, AuthError> {
    if !status.is_success() {
        return Err(token_endpoint_error(endpoint, status, body));
    }
    let parsed: TokenBody = serde_json::from_slice(body).map_err(|e| AuthError::TokenResponse {
        endpoint: endpoint.to_owned(),
        message: format!("the answer is not token JSON: {e}"),
    })?;
    let refresh_token = parsed.refresh_token.filter(|t| !t.is_empty());
    let (secret, refresh) = match parsed
        .access_token
        .filter(|t| !t.is_empty())
        .or_else(|| parsed.token.filter(|t| !t.is_empty()))
    {
        Some(token) => (token, refresh_token.map(Secret::new)),
        // ACR's exchange answers only a refresh token: that is the token asked for.
        None => match refresh_token {
            Some(token) => (token, None),
            None => {
                return Err(AuthError::TokenResponse {
                    endpoint: endpoint.to_owned(),
                    message: "the answer holds no token".into(),
                });
            }
        },
    };
    let expires_at = jwt_expiry(&secret)
        .or_else(|| parsed.expires_in.map(|s| now + Duration::from_secs(s)))
        .unwrap_or(now + DEFAULT_LIFETIME);
    Ok(Token {
        refresh_token: refresh,
        ..Token::new(Secret::new(secret), expires_at, now)
    })
}

/// A failed token request as an error that names the endpoint and what it said. Bodies can be
/// empty (ACR answers a bare 401), OAuth2 JSON, or registry error JSON.
fn token_endpoint_error(endpoint: &str, status: StatusCode, body: &[u8]) -> AuthError {
    let json: Option<serde_json::Value> = serde_json::from_slice(body).ok();
    let said = json
        .as_ref()
        .and_then(|v| {
            let oauth = v.get("error").and_then(|e| e.as_str()).map(|e| {
                match v.get("error_description").and_then(|d| d.as_str()) {
                    Some(d) => format!("{e}: {d}"),
                    None => e.to_owned(),
                }
            });
            oauth.or_else(|| {
                let first = v.get("errors")?.get(0)?;
                Some(format!(
                    "{}: {}",
                    first.get("code")?.as_str()?,
                    first
                        .get("message")
                        .and_then(|m| m.as_str())
                        .unwrap_or_default()
                ))
            })
        })
        .or_else(|| {
            let text = String::from_utf8_lossy(body);
            let text = text.trim();
            (!text.is_empty()).then(|| text.chars().take(200).collect())
        });
    AuthError::TokenDenied {
        endpoint: endpoint.to_owned(),
        status,
        message: said,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn body_text(request: &Request<Bytes>) -> String {
        String::from_utf8(request.body().to_vec()).unwrap()
    }

    #[test]
    fn get_request_carries_service_scopes_and_basic() {
        let password = Secret::new("pw");
        let scopes = vec![
            "repository:a/b:pull,push".to_owned(),
            "repository:c:pull".to_owned(),
        ];
        let request = token_get_request(
            "https://auth.io/token?x=1",
            Some("reg.io"),
            &scopes,
            Some(("u", &password)),
        )
        .unwrap();
        assert_eq!(request.method(), Method::GET);
        assert_eq!(
            request.uri().to_string(),
            "https://auth.io/token?x=1&service=reg.io&scope=repository%3Aa%2Fb%3Apull%2Cpush&scope=repository%3Ac%3Apull"
        );
        assert_eq!(request.headers()[AUTHORIZATION], "Basic dTpwdw==");
        let anonymous = token_get_request("https://auth.io/token", None, &[], None).unwrap();
        assert!(anonymous.headers().get(AUTHORIZATION).is_none());
        assert!(matches!(
            token_get_request("not a url", None, &[], None),
            Err(AuthError::InvalidRealm { .. })
        ));
    }

    #[test]
    fn form_requests() {
        let scopes = vec!["repository:hello:pull".to_owned()];
        let refresh = refresh_token_request(
            "https://r.io/oauth2/token",
            "r.io",
            &scopes,
            &Secret::new("rt"),
        )
        .unwrap();
        assert_eq!(refresh.method(), Method::POST);
        assert_eq!(
            refresh.headers()[CONTENT_TYPE],
            "application/x-www-form-urlencoded"
        );
        assert_eq!(
            body_text(&refresh),
            "grant_type=refresh_token&service=r.io&scope=repository%3Ahello%3Apull&refresh_token=rt"
        );
        let exchange =
            exchange_request("https://r.io/", "r.io", &Secret::new("aad"), Some("t1")).unwrap();
        assert_eq!(exchange.uri(), "https://r.io/oauth2/exchange");
        assert_eq!(
            body_text(&exchange),
            "grant_type=access_token&service=r.io&tenant=t1&access_token=aad"
        );
        let password = password_request(
            "https://r.io/oauth2/token",
            "r.io",
            &scopes,
            "u",
            &Secret::new("p&w"),
        )
        .unwrap();
        assert_eq!(
            body_text(&password),
            "grant_type=password&service=r.io&username=u&scope=repository%3Ahello%3Apull&password=p%26w"
        );
    }

    fn jwt(claims: &str) -> String {
        format!(
            "e30.{}.sig",
            base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(claims)
        )
    }

    #[test]
    fn expiry_comes_from_the_jwt_then_expires_in_then_a_default() {
        let now = UNIX_EPOCH + Duration::from_secs(1_000);
        let body = format!(
            r#"{{"access_token":"{}","expires_in":300}}"#,
            jwt(r#"{"exp":5000}"#)
        );
        let token = parse_token_response("t", StatusCode::OK, body.as_bytes(), now).unwrap();
        assert_eq!(token.expires_at, UNIX_EPOCH + Duration::from_secs(5000));
        let token = parse_token_response(
            "t",
            StatusCode::OK,
            br#"{"token":"opaque","expires_in":300}"#,
            now,
        )
        .unwrap();
        assert_eq!(token.expires_at, now + Duration::from_secs(300));
        assert_eq!(token.secret.expose(), "opaque");
        let token =
            parse_token_response("t", StatusCode::OK, br#"{"token":"opaque"}"#, now).unwrap();
        assert_eq!(token.expires_at, now + DEFAULT_LIFETIME);
        // A short token is used for half its life; a long one until a minute before it ends.
        assert!(token.is_fresh(now + Duration::from_secs(29)));
        assert!(!token.is_fresh(now + Duration::from_secs(30)));
        let long = Token::new(Secret::new("t"), now + Duration::from_secs(3600), now);
        assert!(long.is_fresh(now + Duration::from_secs(3539)));
        assert!(!long.is_fresh(now + Duration::from_secs(3540)));
    }

    #[test]
    fn acr_exchange_answers_only_a_refresh_token() {
        let now = UNIX_EPOCH;
        let token =
            parse_token_response("x", StatusCode::OK, br#"{"refresh_token":"rt"}"#, now).unwrap();
        assert_eq!(token.secret.expose(), "rt");
        assert_eq!(token.refresh_token, None);
        let with_both = parse_token_response(
            "x",
            StatusCode::OK,
            br#"{"access_token":"at","refresh_token":"rt"}"#,
            now,
        )
        .unwrap();
        assert_eq!(with_both.refresh_token, Some(Secret::new("rt")));
    }

    #[test]
    fn jwt_expiry_accepts_every_base64_flavour() {
        // {"exp":1700000000} in standard base64 with padding.
        assert!(jwt_expiry("x.eyJleHAiOjE3MDAwMDAwMDB9.y").is_some());
        assert!(jwt_expiry("Sanitized.eyJleHAiOjE3MDAwMDAwMDB9.Sanitized").is_some());
        let padded = format!(
            "a.{}.b",
            base64::engine::general_purpose::STANDARD.encode(r#"{"exp":12, "x":"??>>"}"#)
        );
        assert_eq!(
            jwt_expiry(&padded),
            Some(UNIX_EPOCH + Duration::from_secs(12))
        );
        assert_eq!(jwt_expiry("a.e30.b"), None, "no exp claim");
        assert_eq!(jwt_expiry("a.!!!.b"), None);
        assert_eq!(jwt_expiry(""), None);
    }

    #[test]
    fn failures_name_the_endpoint_and_what_it_said() {
        let now = UNIX_EPOCH;
        let empty = parse_token_response(
            "https://r.io/oauth2/exchange",
            StatusCode::UNAUTHORIZED,
            b"",
            now,
        )
        .unwrap_err();
        assert_eq!(
            empty.to_string(),
            "token endpoint https://r.io/oauth2/exchange refused: 401 Unauthorized"
        );
        let oauth = parse_token_response(
            "t",
            StatusCode::UNAUTHORIZED,
            br#"{"error":"invalid_grant","error_description":"wrong password"}"#,
            now,
        )
        .unwrap_err();
        assert!(
            oauth
                .to_string()
                .ends_with("401 Unauthorized: invalid_grant: wrong password"),
            "{oauth}"
        );
        let registry = parse_token_response(
            "t",
            StatusCode::FORBIDDEN,
            br#"{"errors":[{"code":"DENIED","message":"no"}]}"#,
            now,
        )
        .unwrap_err();
        assert!(registry.to_string().ends_with("DENIED: no"), "{registry}");
        let junk = parse_token_response("t", StatusCode::OK, b"<html>", now).unwrap_err();
        assert!(junk.to_string().contains("not token JSON"), "{junk}");
        let none =
            parse_token_response("t", StatusCode::OK, br#"{"expires_in":3}"#, now).unwrap_err();
        assert!(none.to_string().contains("no token"), "{none}");
    }

    #[test]
    fn debug_hides_tokens() {
        let token = Token {
            refresh_token: Some(Secret::new("rrr")),
            ..Token::new(Secret::new("abc.def.ghi"), UNIX_EPOCH, UNIX_EPOCH)
        };
        let shown = format!("{token:?}");
        assert!(
            !shown.contains("abc.def") && !shown.contains("rrr"),
            "{shown}"
        );
    }
}
