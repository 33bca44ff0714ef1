//! Azure AD (Entra ID) tokens for the ACR exchange, from `azure_identity` credentials.
//!
//! - [`TransportHttpClient`] lets any `azure_identity` credential send its HTTP through our
//!   [`Transport`] (azure_core is built without reqwest, so a credential without one panics).
//! - [`AzureCloud`] and [`AcrAudience`] pick the authority host and the token scope.
//! - [`AzureCredential`] turns any `TokenCredential` into an [`AadTokenProvider`].
//! - [`CredentialChain`] tries an explicit, ordered list of [`AadSource`]s, since the Rust SDK has
//!   no `DefaultAzureCredential`.

use std::collections::HashMap;
use std::fmt;
use std::future::{Future, poll_fn};
use std::io;
use std::path::PathBuf;
use std::pin::{Pin, pin};
use std::str::FromStr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, OnceLock, PoisonError};
use std::task::{Context, Poll};
use std::time::Duration;

use async_trait::async_trait;
use azure_core::cloud::{CloudConfiguration, CustomConfiguration};
use azure_core::credentials::{AccessToken, TokenCredential, TokenRequestOptions};
use azure_core::error::ErrorKind;
use azure_core::http::headers::{
    HeaderName as AzureHeaderName, HeaderValue as AzureHeaderValue, Headers as AzureHeaders,
};
use azure_core::http::{
    AsyncRawResponse, Body as AzureBody, ClientOptions, HttpClient, Request as AzureRequest,
    StatusCode as AzureStatusCode, Transport as AzureTransport,
};
use azure_core::stream::SeekableStream;
use azure_core::time::OffsetDateTime;
use azure_identity::{
    AzureCliCredential, AzureCliCredentialOptions, ClientAssertionCredentialOptions,
    ClientSecretCredential, ClientSecretCredentialOptions, Executor, ManagedIdentityCredential,
    ManagedIdentityCredentialOptions, UserAssignedId, WorkloadIdentityCredential,
    WorkloadIdentityCredentialOptions,
};
use bytes::Bytes;
use futures_core::Stream;
use oci_distribution_proto::{Body, Transport};
use url::Url;

use crate::{AadTokenProvider, AuthError, Secret};

/// The ACR data-plane audience. Every current Azure SDK asks for it in all three named clouds.
pub const ACR_AUDIENCE: &str = "https://containerregistry.azure.net";

/// How long before its expiry an AAD token is renewed (the `azure_identity` caches use the same).
pub const AAD_REFRESH_MARGIN: Duration = Duration::from_secs(300);

/// How long the managed identity endpoint gets to answer a chain's first request. Off Azure the
/// metadata address often swallows packets, and the SDK would retry for over a minute.
pub const DEFAULT_PROBE_TIMEOUT: Duration = Duration::from_secs(2);

const PUBLIC_AUTHORITY: &str = "https://login.microsoftonline.com";
const CHINA_AUTHORITY: &str = "https://login.chinacloudapi.cn";
const US_GOVERNMENT_AUTHORITY: &str = "https://login.microsoftonline.us";

const AZURE_TENANT_ID: &str = "AZURE_TENANT_ID";
const AZURE_CLIENT_ID: &str = "AZURE_CLIENT_ID";
const AZURE_CLIENT_SECRET: &str = "AZURE_CLIENT_SECRET";
const AZURE_FEDERATED_TOKEN_FILE: &str = "AZURE_FEDERATED_TOKEN_FILE";
const AZURE_AUTHORITY_HOST: &str = "AZURE_AUTHORITY_HOST";

// ---------------------------------------------------------------------------------------------
// Transport adapter
// ---------------------------------------------------------------------------------------------

/// An `azure_core` [`HttpClient`] that sends through a [`Transport`], so `azure_identity`
/// credentials use the same HTTP stack (TLS, proxies, timeouts) as the registry calls.
///
/// ```
/// use std::sync::Arc;
/// use acr_auth::{AzureCloud, TransportHttpClient};
/// use acr_auth::azure_identity::{ClientSecretCredential, ClientSecretCredentialOptions};
///
/// fn service_principal(transport: Arc<dyn acr_auth::proto::Transport>) -> acr_auth::azure_core::Result<()> {
///     let mut options = ClientSecretCredentialOptions::default();
///     // Or, spelled out: options.client_options.transport = Some(TransportHttpClient::new(transport).into_azure_transport());
///     options.client_options = AzureCloud::China.client_options(transport);
///     let _credential = ClientSecretCredential::new("my-tenant", "my-app".into(), "s3cret".into(), Some(options))?;
///     Ok(())
/// }
/// ```
pub struct TransportHttpClient {
    transport: Arc<dyn Transport>,
    probe_timeout: Option<Duration>,
    /// True until the first response: only then does the probe timeout apply.
    probing: AtomicBool,
}

impl fmt::Debug for TransportHttpClient {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TransportHttpClient")
            .field("probe_timeout", &self.probe_timeout)
            .finish_non_exhaustive()
    }
}

impl TransportHttpClient {
    /// An adapter over `transport`.
    pub fn new(transport: Arc<dyn Transport>) -> Self {
        Self {
            transport,
            probe_timeout: None,
            probing: AtomicBool::new(false),
        }
    }

    /// Until the first response arrives, gives each request `timeout` and reports a failure as
    /// final rather than retryable: for probing an endpoint that may not exist (the managed
    /// identity endpoint off Azure).
    pub fn with_probe_timeout(mut self, timeout: Duration) -> Self {
        self.probe_timeout = Some(timeout);
        self.probing = AtomicBool::new(true);
        self
    }

    /// The adapter as the `transport` of an `azure_core` [`ClientOptions`].
    pub fn into_azure_transport(self) -> AzureTransport {
        AzureTransport::new(Arc::new(self))
    }
}

#[async_trait]
impl HttpClient for TransportHttpClient {
    async fn execute_request(
        &self,
        request: &AzureRequest,
    ) -> azure_core::Result<AsyncRawResponse> {
        let endpoint = endpoint_for_messages(request.url());
        let http_request = to_http_request(request, &endpoint)?;
        let probe = self
            .probe_timeout
            .filter(|_| self.probing.load(Ordering::Acquire));
        let sent = match probe {
            None => self.transport.send(http_request).await,
            Some(limit) => match with_timeout(self.transport.send(http_request), limit).await {
                Some(sent) => sent,
                None => {
                    return Err(azure_core::Error::with_message(
                        ErrorKind::Credential,
                        format!(
                            "{endpoint} did not answer within {} ms; this does not look like an Azure host with a managed identity",
                            limit.as_millis()
                        ),
                    ));
                }
            },
        };
        let response = sent.map_err(|e| match probe {
            // A probe that cannot connect is final: nothing listens there, retrying only waits.
            Some(_) => {
                let message = format!("cannot reach {endpoint}: {e}; this does not look like an Azure host with a managed identity");
                azure_core::Error::with_error(ErrorKind::Credential, e, message)
            }
            None => {
                let message = format!("cannot reach {endpoint}: {e}");
                azure_core::Error::with_error(ErrorKind::Io, e, message)
            }
        })?;
        self.probing.store(false, Ordering::Release);
        Ok(to_azure_response(response))
    }
}

/// `scheme://host/path` of a URL: queries can carry identifiers that do not belong in errors.
fn endpoint_for_messages(url: &Url) -> String {
    let mut shown = url.clone();
    shown.set_query(None);
    shown.set_fragment(None);
    let _ = shown.set_password(None);
    let _ = shown.set_username("");
    shown.to_string()
}

fn to_http_request(
    request: &AzureRequest,
    endpoint: &str,
) -> azure_core::Result<http::Request<Body>> {
    let conversion = |e: http::Error| {
        azure_core::Error::with_error(
            ErrorKind::DataConversion,
            e,
            format!("cannot convert the request to {endpoint}"),
        )
    };
    let method = http::Method::from_bytes(request.method().as_str().as_bytes())
        .map_err(|e| conversion(e.into()))?;
    let mut builder = http::Request::builder()
        .method(method)
        .uri(request.url().as_str());
    for (name, value) in request.headers().iter() {
        builder = builder.header(name.as_str(), value.as_str());
    }
    let body = match request.body() {
        AzureBody::Bytes(bytes) if bytes.is_empty() => Body::Empty,
        AzureBody::Bytes(bytes) => Body::Bytes(bytes.clone()),
        // A clone keeps the position the retry policy reset the original to.
        AzureBody::SeekableStream(stream) => {
            Body::from_stream(SeekableBody(stream.clone()), stream.len())
        }
    };
    builder.body(body).map_err(conversion)
}

fn to_azure_response(response: http::Response<Body>) -> AsyncRawResponse {
    let (parts, body) = response.into_parts();
    let status = AzureStatusCode::from(parts.status.as_u16());
    let mut headers = AzureHeaders::new();
    for name in parts.headers.keys() {
        // azure_core keeps one value per name: join repeated headers as HTTP allows.
        let joined = parts
            .headers
            .get_all(name)
            .iter()
            .map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned())
            .collect::<Vec<_>>()
            .join(", ");
        headers.insert(
            AzureHeaderName::from(name.as_str().to_owned()),
            AzureHeaderValue::from(joined),
        );
    }
    match body {
        Body::Empty => AsyncRawResponse::from_bytes(status, headers, Bytes::new()),
        Body::Bytes(bytes) => AsyncRawResponse::from_bytes(status, headers, bytes),
        stream @ Body::Stream { .. } => {
            AsyncRawResponse::new(status, headers, Box::pin(ResponseBody(stream)))
        }
    }
}

/// A response body as azure_core reads it.
struct ResponseBody(Body);

impl Stream for ResponseBody {
    type Item = azure_core::Result<Bytes>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        Pin::new(&mut self.0).poll_next(cx).map(|chunk| {
            chunk.map(|r| {
                r.map_err(|e| {
                    azure_core::Error::with_error(
                        ErrorKind::Io,
                        e,
                        "reading the response body failed",
                    )
                })
            })
        })
    }
}

/// An azure_core streamed request body as our transport sends it.
struct SeekableBody(Box<dyn SeekableStream>);

impl Stream for SeekableBody {
    type Item = Result<Bytes, io::Error>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        Pin::new(&mut *self.0)
            .poll_next(cx)
            .map(|chunk| chunk.map(|r| r.map_err(io::Error::other)))
    }
}

/// `future`, or `None` when `limit` passes first. Uses azure_core's sleep, which needs no
/// particular runtime (our tokio has no timer feature at this layer).
async fn with_timeout<F: Future>(future: F, limit: Duration) -> Option<F::Output> {
    let limit =
        azure_core::time::Duration::try_from(limit).unwrap_or(azure_core::time::Duration::MAX);
    let mut future = pin!(future);
    let mut timer = pin!(azure_core::sleep::sleep(limit));
    poll_fn(|cx| {
        if let Poll::Ready(output) = future.as_mut().poll(cx) {
            return Poll::Ready(Some(output));
        }
        timer.as_mut().poll(cx).map(|()| None)
    })
    .await
}

// ---------------------------------------------------------------------------------------------
// Clouds and audiences
// ---------------------------------------------------------------------------------------------

/// An Azure cloud: where Azure AD tokens come from, and which audience ACR takes there.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum AzureCloud {
    /// Azure public cloud (`login.microsoftonline.com`, registries under `.azurecr.io`).
    #[default]
    Public,
    /// Azure China, operated by 21Vianet (`login.chinacloudapi.cn`, `.azurecr.cn`).
    China,
    /// Azure US Government (`login.microsoftonline.us`, `.azurecr.us`).
    UsGovernment,
    /// Any other cloud (Azure Stack, air-gapped clouds).
    Custom {
        /// The AAD authority host, e.g. `https://login.mycloud.example`; must be HTTPS.
        authority_host: Url,
        /// The ACR audience there, e.g. `https://containerregistry.mycloud.example`.
        audience: String,
    },
}

impl AzureCloud {
    /// The AAD authority host.
    pub fn authority_host(&self) -> Url {
        let host = match self {
            Self::Public => PUBLIC_AUTHORITY,
            Self::China => CHINA_AUTHORITY,
            Self::UsGovernment => US_GOVERNMENT_AUTHORITY,
            Self::Custom { authority_host, .. } => return authority_host.clone(),
        };
        Url::parse(host).expect("the named clouds' authority hosts are valid URLs")
    }

    /// The audience ACR takes in this cloud by default: [`AcrAudience::ContainerRegistry`] in the
    /// named clouds, as all current Azure SDKs send.
    pub fn acr_audience(&self) -> AcrAudience {
        match self {
            Self::Custom { audience, .. } => AcrAudience::Custom(audience.clone()),
            _ => AcrAudience::ContainerRegistry,
        }
    }

    /// The Azure Resource Manager audience of this cloud, for registries that still need ARM
    /// tokens (`az acr config authentication-as-arm`). `None` for a custom cloud.
    pub fn arm_audience(&self) -> Option<AcrAudience> {
        match self {
            Self::Public => Some(AcrAudience::ArmPublic),
            Self::China => Some(AcrAudience::ArmChina),
            Self::UsGovernment => Some(AcrAudience::ArmGovernment),
            Self::Custom { .. } => None,
        }
    }

    /// The suffix of registry login servers in this cloud (`.azurecr.io`), when known.
    pub fn login_server_suffix(&self) -> Option<&'static str> {
        match self {
            Self::Public => Some(".azurecr.io"),
            Self::China => Some(".azurecr.cn"),
            Self::UsGovernment => Some(".azurecr.us"),
            Self::Custom { .. } => None,
        }
    }

    /// The named cloud a registry login server (`name.azurecr.cn`, with or without a port)
    /// belongs to, from its suffix.
    pub fn for_login_server(host: &str) -> Option<Self> {
        let host = host
            .rsplit_once(':')
            .map_or(host, |(h, _)| h)
            .to_ascii_lowercase();
        [Self::Public, Self::China, Self::UsGovernment]
            .into_iter()
            .find(|cloud| {
                cloud
                    .login_server_suffix()
                    .is_some_and(|suffix| host.ends_with(suffix))
            })
    }

    /// The cloud an authority host (as in `AZURE_AUTHORITY_HOST`) names: a named cloud for its
    /// known host, else a custom cloud with the ACR audience.
    pub fn from_authority_host(authority_host: &str) -> Result<Self, AuthError> {
        let url = Url::parse(authority_host.trim()).map_err(|e| {
            AuthError::Aad(format!(
                "authority host {authority_host:?} is not a URL: {e}"
            ))
        })?;
        if url.scheme() != "https" {
            return Err(AuthError::Aad(format!(
                "authority host {authority_host:?} must use https"
            )));
        }
        let named = [Self::Public, Self::China, Self::UsGovernment]
            .into_iter()
            .find(|cloud| {
                cloud.authority_host().host_str() == url.host_str() && url.port().is_none()
            });
        Ok(named.unwrap_or_else(|| Self::Custom {
            authority_host: url,
            audience: ACR_AUDIENCE.to_owned(),
        }))
    }

    /// The `azure_core` cloud configuration, for `ClientOptions.cloud`.
    pub fn cloud_configuration(&self) -> CloudConfiguration {
        match self {
            Self::Public => CloudConfiguration::AzurePublic,
            Self::China => CloudConfiguration::AzureChina,
            Self::UsGovernment => CloudConfiguration::AzureGovernment,
            Self::Custom { authority_host, .. } => {
                let mut custom = CustomConfiguration::default();
                // azure_identity joins `/<tenant>/oauth2/...` to it: the path plays no part.
                custom.authority_host = authority_host.as_str().trim_end_matches('/').to_owned();
                CloudConfiguration::Custom(custom)
            }
        }
    }

    /// Client options for an `azure_identity` credential in this cloud that sends through
    /// `transport`.
    pub fn client_options(&self, transport: Arc<dyn Transport>) -> ClientOptions {
        ClientOptions {
            cloud: Some(Arc::new(self.cloud_configuration())),
            transport: Some(TransportHttpClient::new(transport).into_azure_transport()),
            ..ClientOptions::default()
        }
    }
}

impl fmt::Display for AzureCloud {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Public => f.write_str("AzureCloud"),
            Self::China => f.write_str("AzureChinaCloud"),
            Self::UsGovernment => f.write_str("AzureUSGovernment"),
            Self::Custom { authority_host, .. } => write!(f, "custom cloud ({authority_host})"),
        }
    }
}

impl FromStr for AzureCloud {
    type Err = AuthError;

    /// The Azure CLI's cloud names (`AzureCloud`, `AzureChinaCloud`, `AzureUSGovernment`) or
    /// `public`, `china`, `usgov`, in any case; an `https://` URL is taken as an authority host.
    fn from_str(name: &str) -> Result<Self, Self::Err> {
        match name.trim().to_ascii_lowercase().as_str() {
            "azurecloud" | "public" | "azure" => Ok(Self::Public),
            "azurechinacloud" | "china" => Ok(Self::China),
            "azureusgovernment" | "usgov" | "usgovernment" | "us-government" => {
                Ok(Self::UsGovernment)
            }
            other if other.starts_with("https://") => Self::from_authority_host(name),
            _ => Err(AuthError::Aad(format!(
                "unknown Azure cloud {name:?}; expected AzureCloud, AzureChinaCloud, AzureUSGovernment or an https:// authority host"
            ))),
        }
    }
}

/// The audience an AAD token is requested for; the registry must accept it.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum AcrAudience {
    /// `https://containerregistry.azure.net`: ACR's own audience, the default in every cloud.
    #[default]
    ContainerRegistry,
    /// `https://management.azure.com`: ARM in the public cloud, for registries that still
    /// accept ARM tokens.
    ArmPublic,
    /// `https://management.chinacloudapi.cn`: ARM in Azure China.
    ArmChina,
    /// `https://management.usgovcloudapi.net`: ARM in Azure US Government.
    ArmGovernment,
    /// Any other audience (with or without the `/.default` suffix).
    Custom(String),
}

impl AcrAudience {
    /// The audience, without `/.default`.
    pub fn audience(&self) -> &str {
        match self {
            Self::ContainerRegistry => ACR_AUDIENCE,
            Self::ArmPublic => "https://management.azure.com",
            Self::ArmChina => "https://management.chinacloudapi.cn",
            Self::ArmGovernment => "https://management.usgovcloudapi.net",
            Self::Custom(audience) => audience.strip_suffix("/.default").unwrap_or(audience),
        }
    }

    /// The scope to request: the audience plus `/.default`.
    ///
    /// ```
    /// use acr_auth::AcrAudience;
    /// assert_eq!(AcrAudience::default().scope(), "https://containerregistry.azure.net/.default");
    /// assert_eq!(AcrAudience::Custom("https://x.example/".into()).scope(), "https://x.example/.default");
    /// ```
    pub fn scope(&self) -> String {
        format!("{}/.default", self.audience().trim_end_matches('/'))
    }
}

impl FromStr for AcrAudience {
    type Err = AuthError;

    /// `acr` (the default), `arm` (public ARM), `arm-china`, `arm-usgov`, or an `https://` audience.
    fn from_str(name: &str) -> Result<Self, Self::Err> {
        let trimmed = name.trim();
        let named = match trimmed.to_ascii_lowercase().as_str() {
            "acr" | "containerregistry" => Some(Self::ContainerRegistry),
            "arm" | "arm-public" => Some(Self::ArmPublic),
            "arm-china" => Some(Self::ArmChina),
            "arm-usgov" | "arm-government" | "arm-usgovernment" => Some(Self::ArmGovernment),
            _ => None,
        };
        if let Some(named) = named {
            return Ok(named);
        }
        if !trimmed.starts_with("https://") {
            return Err(AuthError::Aad(format!(
                "unknown audience {name:?}; expected acr, arm, arm-china, arm-usgov or an https:// audience"
            )));
        }
        let custom = Self::Custom(trimmed.to_owned());
        let known = [
            Self::ContainerRegistry,
            Self::ArmPublic,
            Self::ArmChina,
            Self::ArmGovernment,
        ]
        .into_iter()
        .find(|known| known.scope() == custom.scope());
        Ok(known.unwrap_or(custom))
    }
}

// ---------------------------------------------------------------------------------------------
// AzureCredential
// ---------------------------------------------------------------------------------------------

/// The last AAD token, reused until [`AAD_REFRESH_MARGIN`] before it expires. Some credentials
/// (the Azure CLI) have no cache of their own and run a process on every call.
#[derive(Default)]
struct TokenSlot(tokio::sync::Mutex<Option<AccessToken>>);

impl TokenSlot {
    async fn get<F, Fut>(
        &self,
        credential: &str,
        scope: &str,
        fetch: F,
    ) -> Result<Secret, AuthError>
    where
        F: FnOnce() -> Fut,
        Fut: Future<Output = Result<AccessToken, AuthError>>,
    {
        let mut cached = self.0.lock().await;
        let margin = azure_core::time::Duration::try_from(AAD_REFRESH_MARGIN).unwrap_or_default();
        let now = OffsetDateTime::now_utc();
        if let Some(token) = cached.as_ref().filter(|t| t.expires_on - now > margin) {
            return Ok(Secret::new(token.token.secret()));
        }
        let token = fetch().await?;
        if token.expires_on <= now {
            return Err(AuthError::AadToken {
                credential: credential.to_owned(),
                scope: scope.to_owned(),
                message: format!(
                    "it returned a token that expired at {}; check the system clock",
                    token.expires_on
                ),
            });
        }
        let secret = Secret::new(token.token.secret());
        *cached = Some(token);
        Ok(secret)
    }

    async fn clear(&self) {
        *self.0.lock().await = None;
    }
}

/// Any `azure_identity` (or other) [`TokenCredential`] as an [`AadTokenProvider`], asking for
/// one audience's `.default` scope.
///
/// Plug in any credential; those that make HTTP requests need a transport
/// ([`AzureCloud::client_options`] gives one together with the cloud):
///
/// ```no_run
/// use std::sync::Arc;
/// use acr_auth::{AcrAudience, Authenticator, AzureCloud, AzureCredential, Credential};
/// use acr_auth::azure_identity::{AzureCliCredential, ClientSecretCredential, ClientSecretCredentialOptions};
///
/// # fn demo(transport: Arc<dyn acr_auth::proto::Transport>) -> Result<(), Box<dyn std::error::Error>> {
/// // A service principal in Azure China, sending through the client's transport.
/// let cloud = AzureCloud::China;
/// let options = ClientSecretCredentialOptions { client_options: cloud.client_options(transport) };
/// let principal = ClientSecretCredential::new("my-tenant", "my-app-id".into(), "s3cret".into(), Some(options))?;
/// let aad = AzureCredential::new(principal).with_audience(cloud.acr_audience()).with_tenant("my-tenant");
/// let authenticator = Authenticator::new(Credential::Aad(Arc::new(aad)));
///
/// // The Azure CLI needs no HTTP; ask for an ARM token for a registry that still wants one.
/// let cli = AzureCredential::new(AzureCliCredential::new(None)?).with_audience(AcrAudience::ArmPublic);
/// # let _ = (authenticator, cli);
/// # Ok(())
/// # }
/// ```
pub struct AzureCredential {
    credential: Arc<dyn TokenCredential>,
    audience: AcrAudience,
    scope: String,
    tenant: Option<String>,
    cache: TokenSlot,
}

impl fmt::Debug for AzureCredential {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AzureCredential")
            .field("credential", &credential_name(self.credential.as_ref()))
            .field("scope", &self.scope)
            .field("tenant", &self.tenant)
            .finish_non_exhaustive()
    }
}

impl AzureCredential {
    /// `credential`, asking for ACR's audience ([`AcrAudience::ContainerRegistry`]).
    pub fn new(credential: Arc<dyn TokenCredential>) -> Self {
        let audience = AcrAudience::default();
        Self {
            credential,
            scope: audience.scope(),
            audience,
            tenant: None,
            cache: TokenSlot::default(),
        }
    }

    /// Asks for `audience` instead (see [`AzureCloud::acr_audience`] and
    /// [`AzureCloud::arm_audience`]).
    pub fn with_audience(mut self, audience: AcrAudience) -> Self {
        self.scope = audience.scope();
        self.audience = audience;
        self
    }

    /// Names `tenant` in the ACR exchange.
    pub fn with_tenant(mut self, tenant: impl Into<String>) -> Self {
        self.tenant = Some(tenant.into());
        self
    }

    /// The audience.
    pub fn audience(&self) -> &AcrAudience {
        &self.audience
    }

    /// The scope asked for.
    pub fn scope(&self) -> &str {
        &self.scope
    }

    /// The wrapped credential.
    pub fn credential(&self) -> &Arc<dyn TokenCredential> {
        &self.credential
    }
}

#[async_trait]
impl AadTokenProvider for AzureCredential {
    async fn aad_access_token(&self) -> Result<Secret, AuthError> {
        let name = credential_name(self.credential.as_ref());
        self.cache
            .get(&name, &self.scope, || async {
                self.credential
                    .get_token(&[&self.scope], None)
                    .await
                    .map_err(|e| AuthError::AadToken {
                        credential: name.clone(),
                        scope: self.scope.clone(),
                        message: describe(&e),
                    })
            })
            .await
    }

    fn tenant(&self) -> Option<String> {
        self.tenant.clone()
    }

    async fn invalidate(&self) {
        self.cache.clear().await;
    }
}

/// A credential's type name (`ClientSecretCredential`), from the head of its `Debug`: never its
/// fields, which are the credential's business.
fn credential_name(credential: &dyn TokenCredential) -> String {
    let shown = format!("{credential:?}");
    let head = shown.split([' ', '{', '(', '<']).next().unwrap_or_default();
    let name = head.rsplit("::").next().unwrap_or(head);
    if name.is_empty() {
        "the token credential".to_owned()
    } else {
        name.to_owned()
    }
}

/// Retry-policy remarks that say nothing about what failed.
const NOISE: &[&str] = &["non-transport error occurred which will not be retried"];

/// An azure_core error with its causes on one line: its `Display` shows only the outermost
/// message, `azure_identity` prefixes "<Credential> authentication failed." (we name the
/// credential already) and puts a troubleshooting link on a line of its own (moved to the end).
fn describe(error: &azure_core::Error) -> String {
    let mut messages: Vec<String> = Vec::new();
    let mut links: Vec<String> = Vec::new();
    let mut current: Option<&(dyn std::error::Error + 'static)> = Some(error);
    while let Some(cause) = current {
        for line in cause.to_string().lines().map(str::trim) {
            if let Some(link) = line.strip_prefix("To troubleshoot, visit ") {
                if !links.iter().any(|l| l == link) {
                    links.push(link.to_owned());
                }
                continue;
            }
            let line = strip_authentication_failed(line);
            if line.is_empty() || NOISE.contains(&line) || messages.iter().any(|m| m.contains(line))
            {
                continue;
            }
            // A fuller message replaces a shorter one it repeats.
            messages.retain(|m| !line.contains(m.as_str()));
            messages.push(line.to_owned());
        }
        current = cause.source();
    }
    let mut text = if messages.is_empty() {
        error.to_string()
    } else {
        messages.join(": ")
    };
    for link in links {
        text.push_str(&format!(" (troubleshooting: {link})"));
    }
    text
}

/// `ClientSecretCredential authentication failed. AADSTS7000215: ...` -> `AADSTS7000215: ...`.
fn strip_authentication_failed(line: &str) -> &str {
    match line.split_once(" authentication failed.") {
        Some((name, rest)) if name.ends_with("Credential") && !name.contains(' ') => rest.trim(),
        _ => line,
    }
}

// ---------------------------------------------------------------------------------------------
// The credential chain
// ---------------------------------------------------------------------------------------------

/// A place an AAD identity can come from, for [`CredentialChain`] (and an `--aad-source` flag).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum AadSource {
    /// A service principal secret: `AZURE_TENANT_ID`, `AZURE_CLIENT_ID`, `AZURE_CLIENT_SECRET`.
    EnvironmentClientSecret,
    /// Workload identity federation (AKS and other OIDC issuers): `AZURE_TENANT_ID`,
    /// `AZURE_CLIENT_ID`, `AZURE_FEDERATED_TOKEN_FILE`.
    WorkloadIdentity,
    /// The managed identity of an Azure VM, App Service or Functions host (`AZURE_CLIENT_ID`
    /// selects a user-assigned one).
    ManagedIdentity,
    /// The account signed in with `az login` (a developer tool).
    AzureCli,
}

impl AadSource {
    /// The default order: explicit configuration first, ambient identities next, a developer's
    /// login last.
    pub const DEFAULT_ORDER: [Self; 4] = [
        Self::EnvironmentClientSecret,
        Self::WorkloadIdentity,
        Self::ManagedIdentity,
        Self::AzureCli,
    ];

    /// The short name, as [`FromStr`] takes it.
    pub fn name(self) -> &'static str {
        match self {
            Self::EnvironmentClientSecret => "env",
            Self::WorkloadIdentity => "workload-identity",
            Self::ManagedIdentity => "managed-identity",
            Self::AzureCli => "cli",
        }
    }

    /// What it is, for messages.
    pub fn description(self) -> &'static str {
        match self {
            Self::EnvironmentClientSecret => {
                "environment client secret (AZURE_TENANT_ID, AZURE_CLIENT_ID, AZURE_CLIENT_SECRET)"
            }
            Self::WorkloadIdentity => {
                "workload identity (AZURE_TENANT_ID, AZURE_CLIENT_ID, AZURE_FEDERATED_TOKEN_FILE)"
            }
            Self::ManagedIdentity => "managed identity",
            Self::AzureCli => "Azure CLI (az login)",
        }
    }
}

impl fmt::Display for AadSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for AadSource {
    type Err = AuthError;

    /// `env`, `workload-identity`, `managed-identity` or `cli`, with a few aliases (`workload`,
    /// `msi`, `az`, ...), in any case.
    fn from_str(name: &str) -> Result<Self, Self::Err> {
        match name.trim().to_ascii_lowercase().replace('_', "-").as_str() {
            "env"
            | "environment"
            | "client-secret"
            | "environment-client-secret"
            | "service-principal" => Ok(Self::EnvironmentClientSecret),
            "workload" | "workload-identity" | "federated" => Ok(Self::WorkloadIdentity),
            "managed" | "managed-identity" | "msi" | "mi" => Ok(Self::ManagedIdentity),
            "cli" | "az" | "azure-cli" | "azurecli" | "developer-tools" | "dev" => {
                Ok(Self::AzureCli)
            }
            _ => Err(AuthError::Aad(format!(
                "unknown Azure AD source {name:?}; expected one of env, workload-identity, managed-identity, cli"
            ))),
        }
    }
}

/// Why one source of a [`CredentialChain`] produced no token.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AadFailure {
    /// The source.
    pub source: AadSource,
    /// What failed, and how to set it up.
    pub message: String,
}

impl fmt::Display for AadFailure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.source.description(), self.message)
    }
}

type EnvLookup = Arc<dyn Fn(&str) -> Option<String> + Send + Sync>;

struct Entry {
    source: AadSource,
    /// Built on first use, since building reads the environment (and files).
    credential: Mutex<Option<Arc<dyn TokenCredential>>>,
}

enum ChainError {
    /// The source that worked before failed now.
    Chosen(AadSource, String),
    AllFailed(Vec<AadFailure>),
}

impl ChainError {
    fn into_auth_error(self, scope: &str) -> AuthError {
        match self {
            Self::Chosen(source, message) => AuthError::AadToken {
                credential: source.description().to_owned(),
                scope: scope.to_owned(),
                message,
            },
            Self::AllFailed(failures) => AuthError::AadUnavailable {
                scope: scope.to_owned(),
                failures,
            },
        }
    }
}

/// An explicit, ordered chain of AAD credential sources (the Rust SDK has no
/// `DefaultAzureCredential`). It tries the sources in order, then sticks to the first that
/// produced a token; when all fail, the error lists every source and why.
///
/// Credentials that make HTTP requests send them through the chain's [`Transport`]. The
/// environment is read through a lookup function, so tests and embedding programs need not
/// touch the process environment. (`ManagedIdentityCredential` still reads `IDENTITY_ENDPOINT`
/// itself to tell App Service from a VM.)
///
/// ```no_run
/// use std::sync::Arc;
/// use acr_auth::{AadSource, Authenticator, AzureCloud, Credential, CredentialChain};
///
/// # fn demo(transport: Arc<dyn acr_auth::proto::Transport>, flag: Option<&str>) -> Result<(), acr_auth::AuthError> {
/// let chain = match flag {
///     // `--aad-source cli`
///     Some(name) => CredentialChain::only(name.parse::<AadSource>()?),
///     None => CredentialChain::new(),
/// };
/// let chain = chain.with_cloud(AzureCloud::UsGovernment).with_transport(transport);
/// let authenticator = Authenticator::new(Credential::Aad(Arc::new(chain)));
/// # let _ = authenticator;
/// # Ok(())
/// # }
/// ```
pub struct CredentialChain {
    entries: Vec<Entry>,
    cloud: Option<AzureCloud>,
    audience: Option<AcrAudience>,
    tenant: Option<String>,
    managed_identity_client_id: Option<String>,
    transport: Option<Arc<dyn Transport>>,
    env: EnvLookup,
    executor: Option<Arc<dyn Executor>>,
    probe_timeout: Duration,
    chosen: OnceLock<usize>,
    /// Held while walking the sources, so concurrent first calls try each source once.
    walk: tokio::sync::Mutex<()>,
    cache: TokenSlot,
}

impl fmt::Debug for CredentialChain {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CredentialChain")
            .field("sources", &self.sources())
            .field("cloud", &self.cloud)
            .field("audience", &self.audience)
            .field("tenant", &self.tenant)
            .field("chosen", &self.chosen())
            .finish_non_exhaustive()
    }
}

impl Default for CredentialChain {
    fn default() -> Self {
        Self::new()
    }
}

impl CredentialChain {
    /// The sources in [`AadSource::DEFAULT_ORDER`], the public cloud (or `AZURE_AUTHORITY_HOST`),
    /// ACR's audience and the process environment.
    pub fn new() -> Self {
        Self::with_sources(AadSource::DEFAULT_ORDER)
    }

    /// Just `source`: an explicit choice.
    pub fn only(source: AadSource) -> Self {
        Self::with_sources([source])
    }

    /// `sources`, in this order (repeats are dropped).
    pub fn with_sources(sources: impl IntoIterator<Item = AadSource>) -> Self {
        let mut entries: Vec<Entry> = Vec::new();
        for source in sources {
            if !entries.iter().any(|e| e.source == source) {
                entries.push(Entry {
                    source,
                    credential: Mutex::new(None),
                });
            }
        }
        Self {
            entries,
            cloud: None,
            audience: None,
            tenant: None,
            managed_identity_client_id: None,
            transport: None,
            env: Arc::new(|name| std::env::var(name).ok()),
            executor: None,
            probe_timeout: DEFAULT_PROBE_TIMEOUT,
            chosen: OnceLock::new(),
            walk: tokio::sync::Mutex::new(()),
            cache: TokenSlot::default(),
        }
    }

    /// The cloud (default: from `AZURE_AUTHORITY_HOST`, else public).
    pub fn with_cloud(mut self, cloud: AzureCloud) -> Self {
        self.cloud = Some(cloud);
        self
    }

    /// The audience (default: the cloud's [`AzureCloud::acr_audience`]).
    pub fn with_audience(mut self, audience: AcrAudience) -> Self {
        self.audience = Some(audience);
        self
    }

    /// The tenant to authenticate in (default: `AZURE_TENANT_ID` for the environment and workload
    /// identity sources, the CLI's own otherwise); also named in the ACR exchange.
    pub fn with_tenant(mut self, tenant: impl Into<String>) -> Self {
        self.tenant = Some(tenant.into());
        self
    }

    /// The client ID of a user-assigned managed identity (default: `AZURE_CLIENT_ID`, else the
    /// system-assigned identity).
    pub fn with_managed_identity_client_id(mut self, client_id: impl Into<String>) -> Self {
        self.managed_identity_client_id = Some(client_id.into());
        self
    }

    /// The transport for the sources that make HTTP requests; without one they fail with a
    /// clear error rather than azure_core's panic.
    pub fn with_transport(mut self, transport: Arc<dyn Transport>) -> Self {
        self.transport = Some(transport);
        self
    }

    /// Reads environment variables through `lookup` instead of the process environment.
    pub fn with_env(
        mut self,
        lookup: impl Fn(&str) -> Option<String> + Send + Sync + 'static,
    ) -> Self {
        self.env = Arc::new(lookup);
        self
    }

    /// Reads environment variables from `vars` only.
    pub fn with_env_vars<K: Into<String>, V: Into<String>>(
        self,
        vars: impl IntoIterator<Item = (K, V)>,
    ) -> Self {
        let vars: HashMap<String, String> = vars
            .into_iter()
            .map(|(k, v)| (k.into(), v.into()))
            .collect();
        self.with_env(move |name| vars.get(name).cloned())
    }

    /// Runs the Azure CLI through `executor` (default: a thread running `std::process`).
    pub fn with_cli_executor(mut self, executor: Arc<dyn Executor>) -> Self {
        self.executor = Some(executor);
        self
    }

    /// How long the managed identity endpoint gets to answer the first request
    /// (default [`DEFAULT_PROBE_TIMEOUT`]).
    pub fn with_probe_timeout(mut self, timeout: Duration) -> Self {
        self.probe_timeout = timeout;
        self
    }

    /// Uses `credential` for `source` instead of building one (adding `source` at the end when
    /// it is not in the chain): for options the chain does not expose, and for tests.
    pub fn with_credential(
        mut self,
        source: AadSource,
        credential: Arc<dyn TokenCredential>,
    ) -> Self {
        match self.entries.iter_mut().find(|e| e.source == source) {
            Some(entry) => entry.credential = Mutex::new(Some(credential)),
            None => self.entries.push(Entry {
                source,
                credential: Mutex::new(Some(credential)),
            }),
        }
        self
    }

    /// The sources, in order.
    pub fn sources(&self) -> Vec<AadSource> {
        self.entries.iter().map(|e| e.source).collect()
    }

    /// The source that produced a token, once one has.
    pub fn chosen(&self) -> Option<AadSource> {
        self.chosen.get().map(|&i| self.entries[i].source)
    }

    /// The scope [`AadTokenProvider::aad_access_token`] asks for.
    pub fn scope(&self) -> String {
        match (&self.audience, self.resolve_cloud()) {
            (Some(audience), _) => audience.scope(),
            (None, Ok(cloud)) => cloud.acr_audience().scope(),
            (None, Err(_)) => AcrAudience::ContainerRegistry.scope(),
        }
    }

    fn var(&self, name: &str) -> Option<String> {
        (self.env)(name)
            .map(|v| v.trim().to_owned())
            .filter(|v| !v.is_empty())
    }

    fn resolve_cloud(&self) -> Result<AzureCloud, String> {
        if let Some(cloud) = &self.cloud {
            return Ok(cloud.clone());
        }
        match self.var(AZURE_AUTHORITY_HOST) {
            Some(host) => AzureCloud::from_authority_host(&host)
                .map_err(|e| format!("{AZURE_AUTHORITY_HOST}: {e}")),
            None => Ok(AzureCloud::Public),
        }
    }

    fn client_options(&self, probe: bool) -> Result<ClientOptions, String> {
        let transport = self.transport.clone().ok_or_else(|| {
            "no HTTP transport was given to the credential chain (CredentialChain::with_transport)".to_owned()
        })?;
        let mut client = TransportHttpClient::new(transport);
        if probe {
            client = client.with_probe_timeout(self.probe_timeout);
        }
        Ok(ClientOptions {
            cloud: Some(Arc::new(self.resolve_cloud()?.cloud_configuration())),
            transport: Some(client.into_azure_transport()),
            ..ClientOptions::default()
        })
    }

    /// Values of `names`, or a "not configured" message naming the missing ones.
    fn required(&self, names: &[&str]) -> Result<Vec<String>, String> {
        let values: Vec<Option<String>> = names
            .iter()
            .map(|&name| {
                if name == AZURE_TENANT_ID {
                    self.tenant.clone().or_else(|| self.var(name))
                } else {
                    self.var(name)
                }
            })
            .collect();
        let missing: Vec<&str> = names
            .iter()
            .zip(&values)
            .filter(|(_, v)| v.is_none())
            .map(|(n, _)| *n)
            .collect();
        if missing.is_empty() {
            Ok(values.into_iter().flatten().collect())
        } else {
            let verb = if missing.len() == 1 { "is" } else { "are" };
            Err(format!(
                "not configured: {} {verb} not set",
                missing.join(", ")
            ))
        }
    }

    fn build(&self, source: AadSource) -> Result<Arc<dyn TokenCredential>, String> {
        let built: azure_core::Result<Arc<dyn TokenCredential>> = match source {
            AadSource::EnvironmentClientSecret => {
                let vars =
                    self.required(&[AZURE_TENANT_ID, AZURE_CLIENT_ID, AZURE_CLIENT_SECRET])?;
                let [tenant, client_id, secret] =
                    <[String; 3]>::try_from(vars).map_err(|_| "internal: variable count")?;
                let options = ClientSecretCredentialOptions {
                    client_options: self.client_options(false)?,
                };
                ClientSecretCredential::new(&tenant, client_id, secret.into(), Some(options))
                    .map(|c| c as Arc<dyn TokenCredential>)
            }
            AadSource::WorkloadIdentity => {
                let vars =
                    self.required(&[AZURE_TENANT_ID, AZURE_CLIENT_ID, AZURE_FEDERATED_TOKEN_FILE])?;
                let [tenant, client_id, file] =
                    <[String; 3]>::try_from(vars).map_err(|_| "internal: variable count")?;
                let options = WorkloadIdentityCredentialOptions {
                    credential_options: ClientAssertionCredentialOptions {
                        client_options: self.client_options(false)?,
                    },
                    client_id: Some(client_id),
                    tenant_id: Some(tenant),
                    token_file_path: Some(PathBuf::from(file)),
                };
                WorkloadIdentityCredential::new(Some(options))
                    .map(|c| c as Arc<dyn TokenCredential>)
            }
            AadSource::ManagedIdentity => {
                let client_id = self
                    .managed_identity_client_id
                    .clone()
                    .or_else(|| self.var(AZURE_CLIENT_ID));
                let options = ManagedIdentityCredentialOptions {
                    user_assigned_id: client_id.map(UserAssignedId::ClientId),
                    client_options: self.client_options(true)?,
                };
                ManagedIdentityCredential::new(Some(options)).map(|c| c as Arc<dyn TokenCredential>)
            }
            AadSource::AzureCli => {
                let options = AzureCliCredentialOptions {
                    subscription: None,
                    tenant_id: self.tenant.clone(),
                    executor: self.executor.clone(),
                };
                AzureCliCredential::new(Some(options)).map(|c| c as Arc<dyn TokenCredential>)
            }
        };
        built.map_err(|e| describe(&e))
    }

    fn credential_at(&self, index: usize) -> Result<Arc<dyn TokenCredential>, String> {
        let entry = &self.entries[index];
        let mut slot = entry
            .credential
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        if let Some(credential) = slot.as_ref() {
            return Ok(credential.clone());
        }
        let credential = self.build(entry.source)?;
        *slot = Some(credential.clone());
        Ok(credential)
    }

    async fn token_from(
        &self,
        index: usize,
        scopes: &[&str],
        options: Option<TokenRequestOptions<'_>>,
    ) -> Result<AccessToken, String> {
        let credential = self.credential_at(index)?;
        credential
            .get_token(scopes, options)
            .await
            .map_err(|e| describe(&e))
    }

    async fn chain_token(
        &self,
        scopes: &[&str],
        options: Option<TokenRequestOptions<'_>>,
    ) -> Result<AccessToken, ChainError> {
        if let Some(&index) = self.chosen.get() {
            return self
                .token_from(index, scopes, options)
                .await
                .map_err(|m| ChainError::Chosen(self.entries[index].source, m));
        }
        let _walking = self.walk.lock().await;
        if let Some(&index) = self.chosen.get() {
            return self
                .token_from(index, scopes, options)
                .await
                .map_err(|m| ChainError::Chosen(self.entries[index].source, m));
        }
        let mut failures = Vec::new();
        for (index, entry) in self.entries.iter().enumerate() {
            match self.token_from(index, scopes, options.clone()).await {
                Ok(token) => {
                    let _ = self.chosen.set(index);
                    return Ok(token);
                }
                Err(message) => failures.push(AadFailure {
                    source: entry.source,
                    message,
                }),
            }
        }
        Err(ChainError::AllFailed(failures))
    }
}

#[async_trait]
impl TokenCredential for CredentialChain {
    async fn get_token(
        &self,
        scopes: &[&str],
        options: Option<TokenRequestOptions<'_>>,
    ) -> azure_core::Result<AccessToken> {
        self.chain_token(scopes, options).await.map_err(|e| {
            azure_core::Error::with_message(
                ErrorKind::Credential,
                e.into_auth_error(&scopes.join(" ")).to_string(),
            )
        })
    }
}

#[async_trait]
impl AadTokenProvider for CredentialChain {
    async fn aad_access_token(&self) -> Result<Secret, AuthError> {
        let scope = self.scope();
        let name = self
            .chosen()
            .map_or("credential chain", AadSource::description);
        self.cache
            .get(name, &scope, || async {
                self.chain_token(&[&scope], None)
                    .await
                    .map_err(|e| e.into_auth_error(&scope))
            })
            .await
    }

    fn tenant(&self) -> Option<String> {
        if self.tenant.is_some() {
            return self.tenant.clone();
        }
        // AZURE_TENANT_ID describes the environment's service principal, not a CLI login.
        match self.chosen()? {
            AadSource::EnvironmentClientSecret | AadSource::WorkloadIdentity => {
                self.var(AZURE_TENANT_ID)
            }
            _ => None,
        }
    }

    async fn invalidate(&self) {
        self.cache.clear().await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use azure_core::stream::BytesStream;

    #[test]
    fn responses_convert_with_repeated_headers_and_streamed_bodies() {
        let chunks = vec![
            Ok(Bytes::from_static(b"he")),
            Ok(Bytes::from_static(b"llo")),
        ];
        let body = Body::from_stream(futures_stream(chunks), Some(5));
        let response = http::Response::builder()
            .status(429)
            .header("WWW-Authenticate", "Bearer a")
            .header("www-authenticate", "Basic b")
            .header("x-ms-request-id", "r1")
            .body(body)
            .unwrap();
        let converted = to_azure_response(response);
        assert_eq!(converted.status(), AzureStatusCode::TooManyRequests);
        let headers = converted.headers();
        assert_eq!(
            headers.get_optional_str(&AzureHeaderName::from_static("www-authenticate")),
            Some("Bearer a, Basic b")
        );
        assert_eq!(
            headers.get_optional_str(&AzureHeaderName::from_static("x-ms-request-id")),
            Some("r1")
        );
        let bytes = block_on(converted.into_body().collect()).unwrap();
        assert_eq!(&bytes[..], b"hello");
        assert_eq!(
            to_azure_response(
                http::Response::builder()
                    .status(599)
                    .body(Body::Empty)
                    .unwrap()
            )
            .status(),
            AzureStatusCode::UnknownValue(599)
        );
    }

    #[test]
    fn requests_convert_with_headers_and_bodies() {
        let url = Url::parse("https://login.example/t/oauth2/v2.0/token?secret-ish=1").unwrap();
        let mut request = AzureRequest::new(url.clone(), azure_core::http::Method::Post);
        request.insert_header("content-type", "application/x-www-form-urlencoded");
        request.set_body("a=1");
        let endpoint = endpoint_for_messages(request.url());
        assert_eq!(endpoint, "https://login.example/t/oauth2/v2.0/token");
        let converted = to_http_request(&request, &endpoint).unwrap();
        assert_eq!(converted.method(), http::Method::POST);
        assert_eq!(converted.uri(), url.as_str());
        assert_eq!(
            converted.headers()["content-type"],
            "application/x-www-form-urlencoded"
        );
        assert_eq!(converted.body().as_bytes(), Some(&b"a=1"[..]));

        let mut streamed = AzureRequest::new(url.clone(), azure_core::http::Method::Put);
        streamed
            .set_body(Box::new(BytesStream::new(Bytes::from_static(b"streamed")))
                as Box<dyn SeekableStream>);
        let converted = to_http_request(&streamed, &endpoint).unwrap();
        assert_eq!(converted.body().len(), Some(8));
        let bytes = block_on(converted.into_body().collect(1024)).unwrap();
        assert_eq!(&bytes[..], b"streamed");

        let get = AzureRequest::new(url, azure_core::http::Method::Get);
        assert!(to_http_request(&get, &endpoint).unwrap().body().is_empty());
    }

    #[test]
    fn endpoints_in_messages_drop_credentials_and_queries() {
        let url = Url::parse("http://user:pw@169.254.169.254/metadata/identity/oauth2/token?api-version=1&client_id=x").unwrap();
        assert_eq!(
            endpoint_for_messages(&url),
            "http://169.254.169.254/metadata/identity/oauth2/token"
        );
    }

    #[test]
    fn credential_names_come_from_the_debug_head() {
        #[derive(Debug)]
        struct Named {
            #[allow(dead_code)]
            secret: &'static str,
        }
        #[async_trait]
        impl TokenCredential for Named {
            async fn get_token(
                &self,
                _: &[&str],
                _: Option<TokenRequestOptions<'_>>,
            ) -> azure_core::Result<AccessToken> {
                Err(ErrorKind::Other.into_error())
            }
        }
        assert_eq!(credential_name(&Named { secret: "hunter2" }), "Named");
    }

    #[test]
    fn errors_are_described_with_their_causes() {
        let inner = azure_core::Error::with_message(ErrorKind::Io, "connection refused");
        let outer = inner.with_context("retry policy expired");
        assert_eq!(describe(&outer), "retry policy expired: connection refused");
        let cause = azure_core::Error::with_message(
            ErrorKind::Io,
            "cannot reach https://h/p: connection refused",
        );
        let noisy = cause.with_context("non-transport error occurred which will not be retried");
        let wrapped = azure_core::Error::with_error(
            ErrorKind::Credential,
            noisy,
            "ManagedIdentityCredential authentication failed. non-transport error occurred which will not be retried\nTo troubleshoot, visit https://aka.ms/x#managed-id",
        );
        assert_eq!(
            describe(&wrapped),
            "cannot reach https://h/p: connection refused (troubleshooting: https://aka.ms/x#managed-id)"
        );
    }

    fn futures_stream(
        chunks: Vec<Result<Bytes, io::Error>>,
    ) -> impl Stream<Item = Result<Bytes, io::Error>> + Send {
        struct Chunks(std::collections::VecDeque<Result<Bytes, io::Error>>);
        impl Stream for Chunks {
            type Item = Result<Bytes, io::Error>;
            fn poll_next(
                mut self: Pin<&mut Self>,
                _: &mut Context<'_>,
            ) -> Poll<Option<Self::Item>> {
                Poll::Ready(self.0.pop_front())
            }
        }
        Chunks(chunks.into())
    }

    fn block_on<F: Future>(future: F) -> F::Output {
        tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap()
            .block_on(future)
    }
}
