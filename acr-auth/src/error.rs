//! The crate's error type.

use std::path::PathBuf;

use crate::AadFailure;

/// What went wrong getting or storing credentials.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum AuthError {
    /// The docker configuration file could not be read, parsed or written.
    #[error("docker config {path}: {message}")]
    DockerConfig {
        /// The file.
        path: PathBuf,
        /// What went wrong.
        message: String,
    },
    /// A docker credential helper failed or is missing.
    #[error("credential helper {helper:?}: {message}")]
    CredentialHelper {
        /// The helper's name (`docker-credential-<name>`).
        helper: String,
        /// What went wrong, and how to fix it.
        message: String,
    },
    /// A token realm that is not a usable URL.
    #[error("token realm {realm:?} is not a valid URL: {message}")]
    InvalidRealm {
        /// The realm.
        realm: String,
        /// Why.
        message: String,
    },
    /// A token endpoint refused the request.
    #[error("token endpoint {endpoint} refused: {status}{}", message.as_ref().map(|m| format!(": {m}")).unwrap_or_default())]
    TokenDenied {
        /// The endpoint URL.
        endpoint: String,
        /// Its HTTP status.
        status: http::StatusCode,
        /// What it said, when it said anything.
        message: Option<String>,
    },
    /// A token endpoint answered something that is not a token.
    #[error("token endpoint {endpoint}: {message}")]
    TokenResponse {
        /// The endpoint URL.
        endpoint: String,
        /// What is wrong with the answer.
        message: String,
    },
    /// The registry asked for Basic authentication but the credential has no password.
    #[error(
        "{registry} asks for a user name and password, but {tried} was given; run `acr login {registry} -u <user>`"
    )]
    BasicRequired {
        /// The registry.
        registry: String,
        /// The kind of credential tried.
        tried: &'static str,
    },
    /// The registry offered only an authentication scheme this crate does not speak.
    #[error(
        "{registry} asks for {scheme} authentication, which is not supported (only Basic and Bearer are)"
    )]
    UnsupportedChallenge {
        /// The registry.
        registry: String,
        /// The scheme offered.
        scheme: String,
    },
    /// A 401 without any `WWW-Authenticate` challenge.
    #[error("{registry} refused the request (401) without saying how to authenticate")]
    NoChallenge {
        /// The registry.
        registry: String,
    },
    /// The credential was refused.
    #[error("unauthorized: {registry} refused the {tried} ({endpoint}{}); check it, or run `acr login {registry}`", message.as_ref().map(|m| format!(": {m}")).unwrap_or_default())]
    Unauthorized {
        /// The registry.
        registry: String,
        /// The kind of credential tried.
        tried: &'static str,
        /// The token endpoint that refused.
        endpoint: String,
        /// What it said.
        message: Option<String>,
    },
    /// A fixed access token was refused and cannot be renewed.
    #[error("unauthorized: {registry} refused the {tried}{}; get a new token", detail.as_ref().map(|d| format!(" ({d})")).unwrap_or_default())]
    TokenRejected {
        /// The registry.
        registry: String,
        /// The kind of credential tried.
        tried: &'static str,
        /// The challenge's `error`, such as `invalid_token`.
        detail: Option<String>,
    },
    /// A token realm that must not receive credentials.
    #[error("refusing to send credentials for {registry} to the token realm {realm}: {reason}")]
    UnsafeRealm {
        /// The registry.
        registry: String,
        /// The realm it named.
        realm: String,
        /// Why it is refused.
        reason: &'static str,
    },
    /// The token endpoint could not be reached.
    #[error("cannot reach token endpoint {endpoint}: {message}")]
    Transport {
        /// The endpoint.
        endpoint: String,
        /// What failed.
        message: String,
    },
    /// Getting an Azure AD token failed.
    #[error("Azure AD: {0}")]
    Aad(String),
    /// An Azure AD credential could not produce a token.
    #[error("Azure AD: {credential} could not get a token for {scope}: {message}")]
    AadToken {
        /// Which credential (a type name such as `ClientSecretCredential`, or a chain source).
        credential: String,
        /// The scope asked for.
        scope: String,
        /// What failed, with the credential's own advice where it gives any.
        message: String,
    },
    /// No source of an Azure AD credential chain produced a token.
    #[error(
        "Azure AD: no credential source produced a token for {scope}:{}\nset one of them up (for example `az login`, or AZURE_TENANT_ID, AZURE_CLIENT_ID and AZURE_CLIENT_SECRET), or choose another source",
        list_failures(failures)
    )]
    AadUnavailable {
        /// The scope asked for.
        scope: String,
        /// Every source tried, in order, with why it failed.
        failures: Vec<AadFailure>,
    },
}

fn list_failures(failures: &[AadFailure]) -> String {
    if failures.is_empty() {
        return " no sources are configured".to_owned();
    }
    failures.iter().map(|f| format!("\n  - {f}")).collect()
}
