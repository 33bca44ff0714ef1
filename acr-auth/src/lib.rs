//! Pluggable registry credentials and the Azure Container Registry token exchange.
//!
//! Third layer: `oci-spec-types` <- `oci-distribution-proto` <- **`acr-auth`** <- `acr-client`
//! <- `acr-cli`. It reaches token endpoints only through the protocol crate's transport trait,
//! so it stays free of any particular HTTP stack.
//!
//! Credentials stored by `docker login` (or `acr login`) are read from the docker config:
//!
//! ```no_run
//! use acr_auth::DockerConfig;
//! let path = DockerConfig::default_path().expect("HOME or DOCKER_CONFIG is set");
//! let config = DockerConfig::load(&path)?;
//! if let Some((credential, source)) = config.lookup("myregistry.azurecr.io")? {
//!     println!("found a credential in {source}: {credential:?}"); // secrets print as <redacted>
//! }
//! # Ok::<(), acr_auth::AuthError>(())
//! ```
#![forbid(unsafe_code)]

mod aad;
mod authenticator;
mod docker_config;
mod error;
mod secret;
mod token;

pub use aad::{
    AAD_REFRESH_MARGIN, ACR_AUDIENCE, AadFailure, AadSource, AcrAudience, AzureCloud,
    AzureCredential, CredentialChain, DEFAULT_PROBE_TIMEOUT, TransportHttpClient,
};
pub use authenticator::{
    AadTokenProvider, AuthRequest, AuthStats, Authenticator, Credential, CredentialProvider,
    NULL_GUID_USER,
};
/// The `azure_core` this crate is built against, for its `TokenCredential` and options.
pub use azure_core;
/// The `azure_identity` this crate is built against (default features off: pass a transport).
pub use azure_identity;
pub use docker_config::{CredentialSource, DockerConfig, StoredCredential};
pub use error::AuthError;
pub use oci_distribution_proto as proto;
pub use secret::Secret;
pub use token::{
    DEFAULT_LIFETIME, EXPIRY_MARGIN, Token, anonymous_acr_request, basic_header, exchange_request,
    jwt_expiry, parse_token_response, password_request, refresh_token_request, token_get_request,
};
