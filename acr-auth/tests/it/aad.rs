//! Azure AD: clouds and audiences, `AzureCredential`, the credential chain, the azure_core
//! transport adapter under real `azure_identity` credentials, and the ACR exchange driven by the
//! `Authenticator`. Nothing leaves the process: a fake `Transport` answers every request.

use std::collections::HashMap;
use std::ffi::OsStr;
use std::os::unix::process::ExitStatusExt;
use std::process::{ExitStatus, Output};
use std::str::FromStr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use acr_auth::azure_core::credentials::{AccessToken, TokenCredential, TokenRequestOptions};
use acr_auth::azure_core::error::ErrorKind;
use acr_auth::azure_core::http::RetryOptions;
use acr_auth::azure_core::time::{Duration as AzureDuration, OffsetDateTime};
use acr_auth::azure_core::{Error as AzureError, Result as AzureResult};
use acr_auth::azure_identity::{ClientSecretCredential, ClientSecretCredentialOptions, Executor};
use acr_auth::proto::http::{HeaderMap, Request, Response};
use acr_auth::proto::url::{Url, form_urlencoded};
use acr_auth::proto::{Body, Challenge, Scope, Transport, TransportError, parse_challenges};
use acr_auth::{
    AadSource, AadTokenProvider, AcrAudience, AuthError, AuthStats, Authenticator, AzureCloud,
    AzureCredential, Credential, CredentialChain,
};
use async_trait::async_trait;
use base64::Engine as _;

const ACR_SCOPE: &str = "https://containerregistry.azure.net/.default";

// ---------------------------------------------------------------------------------------------
// Test doubles
// ---------------------------------------------------------------------------------------------

/// A `TokenCredential` that counts calls, records the scopes asked for, and hands out tokens
/// with a chosen lifetime, or fails.
#[derive(Debug)]
struct MockCredential {
    token: String,
    lifetime: AzureDuration,
    failure: Mutex<Option<String>>,
    calls: AtomicUsize,
    scopes: Mutex<Vec<String>>,
}

impl MockCredential {
    fn lasting(lifetime: AzureDuration) -> Arc<Self> {
        Arc::new(Self {
            token: "aad-token".into(),
            lifetime,
            failure: Mutex::new(None),
            calls: AtomicUsize::new(0),
            scopes: Mutex::default(),
        })
    }

    fn new() -> Arc<Self> {
        Self::lasting(AzureDuration::hours(1))
    }

    fn failing(message: &str) -> Arc<Self> {
        let mock = Self::new();
        mock.fail_with(Some(message));
        mock
    }

    fn fail_with(&self, message: Option<&str>) {
        *self.failure.lock().unwrap() = message.map(str::to_owned);
    }

    fn calls(&self) -> usize {
        self.calls.load(Ordering::SeqCst)
    }

    fn scopes(&self) -> Vec<String> {
        self.scopes.lock().unwrap().clone()
    }
}

#[async_trait]
impl TokenCredential for MockCredential {
    async fn get_token(
        &self,
        scopes: &[&str],
        _: Option<TokenRequestOptions<'_>>,
    ) -> AzureResult<AccessToken> {
        self.calls.fetch_add(1, Ordering::SeqCst);
        self.scopes.lock().unwrap().push(scopes.join(" "));
        if let Some(message) = self.failure.lock().unwrap().clone() {
            return Err(AzureError::with_message(ErrorKind::Credential, message));
        }
        Ok(AccessToken::new(
            self.token.clone(),
            OffsetDateTime::now_utc() + self.lifetime,
        ))
    }
}

/// One request as the fake transport saw it.
#[derive(Debug, Clone)]
struct Seen {
    method: String,
    url: Url,
    headers: HeaderMap,
    body: String,
}

impl Seen {
    fn form(&self) -> HashMap<String, String> {
        form_urlencoded::parse(self.body.as_bytes())
            .into_owned()
            .collect()
    }

    fn endpoint(&self) -> String {
        format!(
            "{}://{}{}",
            self.url.scheme(),
            self.url.host_str().unwrap_or_default(),
            self.url.path()
        )
    }
}

enum Reply {
    Json(u16, String),
    Fail(&'static str),
    Hang,
}

type Handler = Box<dyn Fn(&Seen) -> Reply + Send + Sync>;

/// An in-memory transport: records each request and answers through `handler`.
struct FakeTransport {
    seen: Mutex<Vec<Seen>>,
    handler: Handler,
}

impl FakeTransport {
    fn new(handler: impl Fn(&Seen) -> Reply + Send + Sync + 'static) -> Arc<Self> {
        Arc::new(Self {
            seen: Mutex::default(),
            handler: Box::new(handler),
        })
    }

    fn seen(&self) -> Vec<Seen> {
        self.seen.lock().unwrap().clone()
    }

    fn count(&self, path_suffix: &str) -> usize {
        self.seen()
            .iter()
            .filter(|s| s.url.path().ends_with(path_suffix))
            .count()
    }
}

#[async_trait]
impl Transport for FakeTransport {
    async fn send(&self, request: Request<Body>) -> Result<Response<Body>, TransportError> {
        let (parts, body) = request.into_parts();
        let body = body
            .collect(1 << 20)
            .await
            .map_err(|e| TransportError::msg(e.to_string()))?;
        let seen = Seen {
            method: parts.method.to_string(),
            url: Url::parse(&parts.uri.to_string()).unwrap(),
            headers: parts.headers,
            body: String::from_utf8(body.to_vec()).unwrap(),
        };
        self.seen.lock().unwrap().push(seen.clone());
        match (self.handler)(&seen) {
            Reply::Json(status, json) => Ok(Response::builder()
                .status(status)
                .header("content-type", "application/json")
                .body(Body::from(json))
                .unwrap()),
            Reply::Fail(message) => Err(TransportError::msg(message)),
            Reply::Hang => std::future::pending().await,
        }
    }
}

fn aad_token_json(token: &str) -> Reply {
    Reply::Json(
        200,
        format!(
            r#"{{"token_type":"Bearer","expires_in":3600,"ext_expires_in":3600,"access_token":"{token}"}}"#
        ),
    )
}

/// An unsigned JWT expiring `seconds` from now, as ACR's tokens are read for their `exp`.
fn jwt(subject: &str, seconds: u64) -> String {
    let exp = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs()
        + seconds;
    let claims = format!(r#"{{"sub":"{subject}","exp":{exp}}}"#);
    format!(
        "e30.{}.sig",
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(claims)
    )
}

/// An `az` stand-in: records the shell command and prints what `az account get-access-token` would.
#[derive(Debug)]
struct FakeAz {
    status: i32,
    stdout: String,
    stderr: String,
    commands: Mutex<Vec<String>>,
}

impl FakeAz {
    fn answering(token: &str) -> Arc<Self> {
        let expires_on = OffsetDateTime::now_utc().unix_timestamp() + 3600;
        Arc::new(Self {
            status: 0,
            stdout: format!(
                r#"{{"accessToken":"{token}","expiresOn":"2030-01-02 03:04:05.000000","expires_on":{expires_on},"subscription":"s","tenant":"t","tokenType":"Bearer"}}"#
            ),
            stderr: String::new(),
            commands: Mutex::default(),
        })
    }

    fn not_logged_in() -> Arc<Self> {
        Arc::new(Self {
            status: 1,
            stdout: String::new(),
            stderr: "ERROR: Please run 'az login' to setup account.".into(),
            commands: Mutex::default(),
        })
    }
}

#[async_trait]
impl Executor for FakeAz {
    async fn run(&self, _program: &OsStr, args: &[&OsStr]) -> std::io::Result<Output> {
        self.commands.lock().unwrap().push(
            args.iter()
                .map(|a| a.to_string_lossy())
                .collect::<Vec<_>>()
                .join(" "),
        );
        Ok(Output {
            status: ExitStatus::from_raw(self.status << 8),
            stdout: self.stdout.clone().into_bytes(),
            stderr: self.stderr.clone().into_bytes(),
        })
    }
}

fn no_env() -> Vec<(&'static str, String)> {
    Vec::new()
}

fn custom_cloud() -> AzureCloud {
    AzureCloud::Custom {
        authority_host: Url::parse("https://login.mycloud.example/").unwrap(),
        audience: "https://acr.mycloud.example".into(),
    }
}

// ---------------------------------------------------------------------------------------------
// Clouds and audiences
// ---------------------------------------------------------------------------------------------

#[tokio::test]
async fn every_cloud_and_audience_asks_for_its_scope() {
    let cases: Vec<(AcrAudience, &str)> = vec![
        (AzureCloud::Public.acr_audience(), ACR_SCOPE),
        (AzureCloud::China.acr_audience(), ACR_SCOPE),
        (AzureCloud::UsGovernment.acr_audience(), ACR_SCOPE),
        (
            custom_cloud().acr_audience(),
            "https://acr.mycloud.example/.default",
        ),
        (
            AzureCloud::Public.arm_audience().unwrap(),
            "https://management.azure.com/.default",
        ),
        (
            AzureCloud::China.arm_audience().unwrap(),
            "https://management.chinacloudapi.cn/.default",
        ),
        (
            AzureCloud::UsGovernment.arm_audience().unwrap(),
            "https://management.usgovcloudapi.net/.default",
        ),
        (
            AcrAudience::Custom("https://other.example/.default".into()),
            "https://other.example/.default",
        ),
        (
            AcrAudience::Custom("https://other.example/".into()),
            "https://other.example/.default",
        ),
    ];
    for (audience, expected) in cases {
        let mock = MockCredential::new();
        let credential = AzureCredential::new(mock.clone()).with_audience(audience.clone());
        assert_eq!(credential.scope(), expected);
        let token = credential.aad_access_token().await.unwrap();
        assert_eq!(token.expose(), "aad-token");
        assert_eq!(mock.scopes(), [expected], "{audience:?}");
    }
    assert_eq!(
        AzureCredential::new(MockCredential::new()).scope(),
        ACR_SCOPE,
        "ACR's audience by default"
    );
    assert_eq!(
        AzureCloud::Custom {
            authority_host: Url::parse("https://l.example").unwrap(),
            audience: "a".into()
        }
        .arm_audience(),
        None
    );
}

#[test]
fn clouds_know_their_authority_hosts_and_registry_suffixes() {
    assert_eq!(
        AzureCloud::Public.authority_host().as_str(),
        "https://login.microsoftonline.com/"
    );
    assert_eq!(
        AzureCloud::China.authority_host().as_str(),
        "https://login.chinacloudapi.cn/"
    );
    assert_eq!(
        AzureCloud::UsGovernment.authority_host().as_str(),
        "https://login.microsoftonline.us/"
    );
    assert_eq!(
        custom_cloud().authority_host().as_str(),
        "https://login.mycloud.example/"
    );

    assert_eq!(
        AzureCloud::for_login_server("MyReg.azurecr.io"),
        Some(AzureCloud::Public)
    );
    assert_eq!(
        AzureCloud::for_login_server("myreg.azurecr.cn:443"),
        Some(AzureCloud::China)
    );
    assert_eq!(
        AzureCloud::for_login_server("myreg.azurecr.us"),
        Some(AzureCloud::UsGovernment)
    );
    assert_eq!(AzureCloud::for_login_server("localhost:5000"), None);

    assert_eq!(
        AzureCloud::from_str("AzureChinaCloud").unwrap(),
        AzureCloud::China
    );
    assert_eq!(
        AzureCloud::from_str("usgov").unwrap(),
        AzureCloud::UsGovernment
    );
    assert_eq!(
        AzureCloud::from_str("azurecloud").unwrap(),
        AzureCloud::Public
    );
    assert_eq!(
        AzureCloud::from_str("https://login.microsoftonline.us/").unwrap(),
        AzureCloud::UsGovernment
    );
    assert!(matches!(
        AzureCloud::from_str("https://login.mycloud.example").unwrap(),
        AzureCloud::Custom { .. }
    ));
    let err = AzureCloud::from_str("mars").unwrap_err();
    assert!(err.to_string().contains("AzureChinaCloud"), "{err}");
    let err = AzureCloud::from_authority_host("http://login.example").unwrap_err();
    assert!(err.to_string().contains("https"), "{err}");

    assert_eq!(
        AcrAudience::from_str("arm").unwrap(),
        AcrAudience::ArmPublic
    );
    assert_eq!(
        AcrAudience::from_str("arm-china").unwrap(),
        AcrAudience::ArmChina
    );
    assert_eq!(
        AcrAudience::from_str("https://management.usgovcloudapi.net/").unwrap(),
        AcrAudience::ArmGovernment
    );
    assert_eq!(
        AcrAudience::from_str("https://containerregistry.azure.net/.default").unwrap(),
        AcrAudience::ContainerRegistry
    );
    assert_eq!(
        AcrAudience::from_str("https://x.example").unwrap(),
        AcrAudience::Custom("https://x.example".into())
    );
    assert!(AcrAudience::from_str("management").is_err());
}

// ---------------------------------------------------------------------------------------------
// AzureCredential
// ---------------------------------------------------------------------------------------------

#[tokio::test]
async fn aad_tokens_are_reused_until_close_to_expiry() {
    let long = MockCredential::new();
    let credential = AzureCredential::new(long.clone()).with_tenant("tenant-1");
    credential.aad_access_token().await.unwrap();
    credential.aad_access_token().await.unwrap();
    assert_eq!(long.calls(), 1, "an hour-long token is reused");
    assert_eq!(credential.tenant().as_deref(), Some("tenant-1"));

    // Inside the 5 minute margin: asked again every time.
    let short = MockCredential::lasting(AzureDuration::minutes(2));
    let credential = AzureCredential::new(short.clone());
    credential.aad_access_token().await.unwrap();
    credential.aad_access_token().await.unwrap();
    assert_eq!(short.calls(), 2);

    let expired = MockCredential::lasting(AzureDuration::minutes(-1));
    let err = AzureCredential::new(expired)
        .aad_access_token()
        .await
        .unwrap_err();
    assert!(
        err.to_string().contains("expired") && err.to_string().contains("clock"),
        "{err}"
    );
}

#[tokio::test]
async fn credential_failures_name_the_credential_and_scope_and_hide_tokens() {
    let mock = MockCredential::failing("AADSTS700016: application not found in the directory");
    let credential = AzureCredential::new(mock.clone());
    let err = credential.aad_access_token().await.unwrap_err();
    match &err {
        AuthError::AadToken {
            credential,
            scope,
            message,
        } => {
            assert_eq!(credential, "MockCredential");
            assert_eq!(scope, ACR_SCOPE);
            assert!(message.contains("AADSTS700016"), "{message}");
        }
        other => panic!("unexpected {other:?}"),
    }
    // A failure is not cached: the next call asks again and can succeed.
    mock.fail_with(None);
    credential.aad_access_token().await.unwrap();
    assert_eq!(mock.calls(), 2);
    let shown = format!("{credential:?}");
    assert!(
        shown.contains("MockCredential") && !shown.contains("aad-token"),
        "{shown}"
    );
}

// ---------------------------------------------------------------------------------------------
// The transport adapter under a real azure_identity credential
// ---------------------------------------------------------------------------------------------

#[tokio::test]
async fn client_secret_credential_sends_through_our_transport() {
    let transport = FakeTransport::new(|_| aad_token_json("aad-from-custom-cloud"));
    let cloud = custom_cloud();
    let options = ClientSecretCredentialOptions {
        client_options: cloud.client_options(transport.clone()),
    };
    let principal = ClientSecretCredential::new(
        "tenant-x",
        "app-x".into(),
        "p@ss word&=".into(),
        Some(options),
    )
    .unwrap();
    let credential = AzureCredential::new(principal).with_audience(cloud.acr_audience());

    let token = credential.aad_access_token().await.unwrap();
    assert_eq!(token.expose(), "aad-from-custom-cloud");

    let seen = transport.seen();
    assert_eq!(seen.len(), 1);
    assert_eq!(seen[0].method, "POST");
    assert_eq!(
        seen[0].url.as_str(),
        "https://login.mycloud.example/tenant-x/oauth2/v2.0/token"
    );
    assert_eq!(
        seen[0].headers["content-type"],
        "application/x-www-form-urlencoded"
    );
    let form = seen[0].form();
    assert_eq!(form["client_id"], "app-x");
    assert_eq!(form["client_secret"], "p@ss word&=");
    assert_eq!(form["grant_type"], "client_credentials");
    assert_eq!(form["scope"], "https://acr.mycloud.example/.default");

    credential.aad_access_token().await.unwrap();
    assert_eq!(transport.seen().len(), 1, "the token is cached");
}

#[tokio::test]
async fn entra_refusals_and_transport_failures_are_explained_without_the_secret() {
    let refusing = FakeTransport::new(|_| {
        Reply::Json(
            401,
            r#"{"error":"invalid_client","error_description":"AADSTS7000215: Invalid client secret provided.","error_codes":[7000215]}"#.into(),
        )
    });
    let mut options = ClientSecretCredentialOptions {
        client_options: AzureCloud::China.client_options(refusing.clone()),
    };
    options.client_options.retry = RetryOptions::none();
    let principal = ClientSecretCredential::new(
        "tenant-x",
        "app-x".into(),
        "wrong-secret".into(),
        Some(options),
    )
    .unwrap();
    let err = AzureCredential::new(principal)
        .aad_access_token()
        .await
        .unwrap_err();
    let text = err.to_string();
    assert!(
        text.contains("ClientSecretCredential") && text.contains("AADSTS7000215"),
        "{text}"
    );
    assert!(!text.contains("wrong-secret"), "{text}");
    assert_eq!(
        refusing.seen()[0].url.host_str(),
        Some("login.chinacloudapi.cn")
    );

    let down = FakeTransport::new(|_| Reply::Fail("connection refused"));
    let mut options = ClientSecretCredentialOptions {
        client_options: AzureCloud::Public.client_options(down.clone()),
    };
    options.client_options.retry = RetryOptions::none();
    let principal =
        ClientSecretCredential::new("tenant-x", "app-x".into(), "s".into(), Some(options)).unwrap();
    let err = AzureCredential::new(principal)
        .aad_access_token()
        .await
        .unwrap_err();
    let text = err.to_string();
    assert!(
        text.contains("cannot reach https://login.microsoftonline.com/tenant-x/oauth2/v2.0/token: connection refused"),
        "{text}"
    );
}

// ---------------------------------------------------------------------------------------------
// The credential chain
// ---------------------------------------------------------------------------------------------

#[tokio::test]
async fn the_chain_tries_sources_in_order_and_sticks_to_the_first_that_works() {
    let env = MockCredential::failing("env: not configured");
    let workload = MockCredential::failing("workload: not configured");
    let managed = MockCredential::new();
    let cli = MockCredential::new();
    let chain = CredentialChain::new()
        .with_env_vars(no_env())
        .with_credential(AadSource::EnvironmentClientSecret, env.clone())
        .with_credential(AadSource::WorkloadIdentity, workload.clone())
        .with_credential(AadSource::ManagedIdentity, managed.clone())
        .with_credential(AadSource::AzureCli, cli.clone());
    assert_eq!(chain.sources(), AadSource::DEFAULT_ORDER);
    assert_eq!(chain.chosen(), None);

    chain.get_token(&["scope-a"], None).await.unwrap();
    assert_eq!(
        [env.calls(), workload.calls(), managed.calls(), cli.calls()],
        [1, 1, 1, 0]
    );
    assert_eq!(chain.chosen(), Some(AadSource::ManagedIdentity));

    chain.get_token(&["scope-b"], None).await.unwrap();
    assert_eq!(
        [env.calls(), workload.calls(), managed.calls(), cli.calls()],
        [1, 1, 2, 0],
        "sticky"
    );
    assert_eq!(managed.scopes(), ["scope-a", "scope-b"]);

    // Once chosen, the source's own failure is the answer: no silent switch of identity.
    managed.fail_with(Some("IMDS says no"));
    let err = chain.get_token(&["scope-c"], None).await.unwrap_err();
    assert!(
        err.to_string().contains("managed identity") && err.to_string().contains("IMDS says no"),
        "{err}"
    );
    assert_eq!([env.calls(), workload.calls(), cli.calls()], [1, 1, 0]);
    assert_eq!(chain.tenant(), None, "no tenant for a managed identity");
}

#[tokio::test]
async fn concurrent_first_calls_walk_the_chain_once() {
    let env = MockCredential::failing("nope");
    let cli = MockCredential::new();
    let chain = Arc::new(
        CredentialChain::with_sources([AadSource::EnvironmentClientSecret, AadSource::AzureCli])
            .with_credential(AadSource::EnvironmentClientSecret, env.clone())
            .with_credential(AadSource::AzureCli, cli.clone()),
    );
    let tasks: Vec<_> = (0..10)
        .map(|_| {
            let chain = chain.clone();
            tokio::spawn(async move { chain.get_token(&["s"], None).await.map(|_| ()) })
        })
        .collect();
    for task in tasks {
        task.await.unwrap().unwrap();
    }
    assert_eq!(
        env.calls(),
        1,
        "the failing source is tried once, not by every caller"
    );
    assert_eq!(cli.calls(), 10);
}

#[tokio::test]
async fn when_every_source_fails_the_error_lists_them_all_in_order() {
    let mocks: Vec<Arc<MockCredential>> = AadSource::DEFAULT_ORDER
        .iter()
        .map(|source| MockCredential::failing(&format!("{source} is broken")))
        .collect();
    let mut chain = CredentialChain::new().with_env_vars(no_env());
    for (source, mock) in AadSource::DEFAULT_ORDER.iter().zip(&mocks) {
        chain = chain.with_credential(*source, mock.clone());
    }
    let err = chain.aad_access_token().await.unwrap_err();
    let AuthError::AadUnavailable { scope, failures } = &err else {
        panic!("unexpected {err:?}")
    };
    assert_eq!(scope, ACR_SCOPE);
    assert_eq!(
        failures.iter().map(|f| f.source).collect::<Vec<_>>(),
        AadSource::DEFAULT_ORDER
    );
    let text = err.to_string();
    let positions: Vec<usize> = AadSource::DEFAULT_ORDER
        .iter()
        .map(|source| {
            text.find(&format!("{source} is broken"))
                .unwrap_or_else(|| panic!("{source} missing: {text}"))
        })
        .collect();
    assert!(
        positions.windows(2).all(|w| w[0] < w[1]),
        "in order: {text}"
    );
    assert!(
        text.contains("Azure CLI (az login)") && text.contains("az login"),
        "{text}"
    );

    // Nothing was chosen: the next call walks the chain again.
    chain.aad_access_token().await.unwrap_err();
    assert!(mocks.iter().all(|m| m.calls() == 2));
    assert_eq!(chain.chosen(), None);
}

#[tokio::test]
async fn chain_scope_follows_the_cloud_and_the_audience() {
    let mock = MockCredential::new();
    let chain = CredentialChain::only(AadSource::AzureCli)
        .with_credential(AadSource::AzureCli, mock.clone())
        .with_cloud(custom_cloud());
    assert_eq!(chain.scope(), "https://acr.mycloud.example/.default");
    chain.aad_access_token().await.unwrap();
    assert_eq!(mock.scopes(), ["https://acr.mycloud.example/.default"]);

    let chain = CredentialChain::only(AadSource::AzureCli)
        .with_credential(AadSource::AzureCli, MockCredential::new())
        .with_cloud(AzureCloud::UsGovernment)
        .with_audience(AcrAudience::ArmGovernment);
    assert_eq!(
        chain.scope(),
        "https://management.usgovcloudapi.net/.default"
    );
    assert_eq!(
        CredentialChain::new().with_env_vars(no_env()).scope(),
        ACR_SCOPE
    );
}

#[test]
fn sources_parse_from_flag_values() {
    for source in AadSource::DEFAULT_ORDER {
        assert_eq!(AadSource::from_str(&source.to_string()).unwrap(), source);
    }
    assert_eq!(AadSource::from_str("cli").unwrap(), AadSource::AzureCli);
    assert_eq!(
        AadSource::from_str("Azure_CLI").unwrap(),
        AadSource::AzureCli
    );
    assert_eq!(
        AadSource::from_str("msi").unwrap(),
        AadSource::ManagedIdentity
    );
    assert_eq!(
        AadSource::from_str("workload").unwrap(),
        AadSource::WorkloadIdentity
    );
    assert_eq!(
        AadSource::from_str("environment").unwrap(),
        AadSource::EnvironmentClientSecret
    );
    let err = AadSource::from_str("browser").unwrap_err();
    assert!(
        err.to_string()
            .contains("env, workload-identity, managed-identity, cli"),
        "{err}"
    );
    assert_eq!(
        CredentialChain::only(AadSource::AzureCli).sources(),
        [AadSource::AzureCli]
    );
    let deduplicated = CredentialChain::with_sources([
        AadSource::AzureCli,
        AadSource::ManagedIdentity,
        AadSource::AzureCli,
    ]);
    assert_eq!(
        deduplicated.sources(),
        [AadSource::AzureCli, AadSource::ManagedIdentity]
    );
}

// ---------------------------------------------------------------------------------------------
// Environment selection, with the real azure_identity credentials
// ---------------------------------------------------------------------------------------------

#[tokio::test]
async fn environment_client_secret_is_chosen_when_its_three_variables_are_set() {
    let transport = FakeTransport::new(|_| aad_token_json("from-env-principal"));
    let chain = CredentialChain::new()
        .with_env_vars([
            ("AZURE_TENANT_ID", "tenant-1"),
            ("AZURE_CLIENT_ID", "app-1"),
            ("AZURE_CLIENT_SECRET", "s3cret"),
        ])
        .with_cloud(AzureCloud::China)
        .with_transport(transport.clone());
    let token = chain.aad_access_token().await.unwrap();
    assert_eq!(token.expose(), "from-env-principal");
    assert_eq!(chain.chosen(), Some(AadSource::EnvironmentClientSecret));
    assert_eq!(chain.tenant().as_deref(), Some("tenant-1"));

    let seen = transport.seen();
    assert_eq!(seen.len(), 1, "no other source was tried: {seen:?}");
    assert_eq!(
        seen[0].endpoint(),
        "https://login.chinacloudapi.cn/tenant-1/oauth2/v2.0/token"
    );
    let form = seen[0].form();
    assert_eq!(
        (form["client_id"].as_str(), form["client_secret"].as_str()),
        ("app-1", "s3cret")
    );
    assert_eq!(form["scope"], ACR_SCOPE);
    let shown = format!("{chain:?}");
    assert!(
        !shown.contains("s3cret") && !shown.contains("from-env-principal"),
        "{shown}"
    );
}

#[tokio::test]
async fn workload_identity_is_next_and_reads_the_federated_token_file() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("token");
    std::fs::write(&file, "federated-jwt").unwrap();
    let transport = FakeTransport::new(|_| aad_token_json("from-workload"));
    let chain = CredentialChain::new()
        .with_env_vars([
            ("AZURE_TENANT_ID", "tenant-2".to_owned()),
            ("AZURE_CLIENT_ID", "app-2".to_owned()),
            ("AZURE_FEDERATED_TOKEN_FILE", file.display().to_string()),
            // No cloud configured: the authority host variable picks it.
            (
                "AZURE_AUTHORITY_HOST",
                "https://login.microsoftonline.us".to_owned(),
            ),
        ])
        .with_transport(transport.clone());
    assert_eq!(
        chain.aad_access_token().await.unwrap().expose(),
        "from-workload"
    );
    assert_eq!(chain.chosen(), Some(AadSource::WorkloadIdentity));
    let seen = transport.seen();
    assert_eq!(seen.len(), 1);
    assert_eq!(
        seen[0].endpoint(),
        "https://login.microsoftonline.us/tenant-2/oauth2/v2.0/token"
    );
    let form = seen[0].form();
    assert_eq!(form["client_assertion"], "federated-jwt");
    assert_eq!(
        form["client_assertion_type"],
        "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
    );
    assert_eq!(form["client_id"], "app-2");
    assert_eq!(form["scope"], ACR_SCOPE);
}

#[tokio::test]
async fn unconfigured_sources_name_the_missing_variables() {
    let transport = FakeTransport::new(|_| aad_token_json("unused"));
    let chain = CredentialChain::with_sources([
        AadSource::EnvironmentClientSecret,
        AadSource::WorkloadIdentity,
    ])
    .with_env_vars([("AZURE_CLIENT_ID", "app-3")])
    .with_transport(transport.clone());
    let err = chain.aad_access_token().await.unwrap_err();
    let text = err.to_string();
    assert!(
        text.contains("AZURE_TENANT_ID, AZURE_CLIENT_SECRET are not set"),
        "{text}"
    );
    assert!(
        text.contains("AZURE_TENANT_ID, AZURE_FEDERATED_TOKEN_FILE are not set"),
        "{text}"
    );
    assert!(transport.seen().is_empty());

    let chain = CredentialChain::only(AadSource::WorkloadIdentity)
        .with_env_vars([
            ("AZURE_TENANT_ID", "t"),
            ("AZURE_CLIENT_ID", "c"),
            ("AZURE_FEDERATED_TOKEN_FILE", "/nonexistent/token"),
        ])
        .with_transport(transport.clone());
    let text = chain.aad_access_token().await.unwrap_err().to_string();
    assert!(text.contains("/nonexistent/token"), "{text}");

    // Without a transport the HTTP sources fail with a message instead of azure_core's panic.
    let chain = CredentialChain::only(AadSource::EnvironmentClientSecret).with_env_vars([
        ("AZURE_TENANT_ID", "t"),
        ("AZURE_CLIENT_ID", "c"),
        ("AZURE_CLIENT_SECRET", "s"),
    ]);
    let text = chain.aad_access_token().await.unwrap_err().to_string();
    assert!(text.contains("no HTTP transport"), "{text}");
}

#[tokio::test]
async fn managed_identity_asks_the_metadata_endpoint_through_the_transport() {
    let expires_on = OffsetDateTime::now_utc().unix_timestamp() + 3600;
    let transport = FakeTransport::new(move |_| {
        Reply::Json(
            200,
            format!(
                r#"{{"access_token":"from-imds","expires_on":"{expires_on}","token_type":"Bearer","resource":"https://containerregistry.azure.net"}}"#
            ),
        )
    });
    let chain = CredentialChain::only(AadSource::ManagedIdentity)
        .with_env_vars([("AZURE_CLIENT_ID", "user-assigned-1")])
        .with_transport(transport.clone());
    assert_eq!(
        chain.aad_access_token().await.unwrap().expose(),
        "from-imds"
    );
    let seen = transport.seen();
    assert_eq!(seen.len(), 1);
    assert_eq!(
        seen[0].endpoint(),
        "http://169.254.169.254/metadata/identity/oauth2/token"
    );
    let query: HashMap<String, String> = seen[0].url.query_pairs().into_owned().collect();
    assert_eq!(query["resource"], "https://containerregistry.azure.net");
    assert_eq!(query["client_id"], "user-assigned-1");
    assert_eq!(seen[0].headers["metadata"], "true");
}

#[tokio::test]
async fn managed_identity_gives_up_quickly_off_azure_and_the_chain_moves_on() {
    // Packets swallowed: the probe timeout ends it.
    let silent = FakeTransport::new(|_| Reply::Hang);
    let cli = FakeAz::answering("from-cli");
    let chain = CredentialChain::with_sources([AadSource::ManagedIdentity, AadSource::AzureCli])
        .with_env_vars(no_env())
        .with_transport(silent.clone())
        .with_probe_timeout(Duration::from_millis(200))
        .with_cli_executor(cli.clone());
    let started = Instant::now();
    assert_eq!(chain.aad_access_token().await.unwrap().expose(), "from-cli");
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "took {:?}",
        started.elapsed()
    );
    assert_eq!(chain.chosen(), Some(AadSource::AzureCli));
    assert_eq!(silent.seen().len(), 1, "not retried");

    // Nothing listening: one attempt, no retries, and the error says where it looked.
    let refused = FakeTransport::new(|_| Reply::Fail("connection refused"));
    let chain = CredentialChain::only(AadSource::ManagedIdentity)
        .with_env_vars(no_env())
        .with_transport(refused.clone());
    let started = Instant::now();
    let text = chain.aad_access_token().await.unwrap_err().to_string();
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "took {:?}",
        started.elapsed()
    );
    assert!(
        text.contains(
            "cannot reach http://169.254.169.254/metadata/identity/oauth2/token: connection refused"
        ),
        "{text}"
    );
    assert_eq!(refused.seen().len(), 1, "not retried");
}

#[tokio::test]
async fn azure_cli_source_runs_az_with_the_scope_and_tenant() {
    let az = FakeAz::answering("from-cli");
    let chain = CredentialChain::only(AadSource::from_str("cli").unwrap())
        .with_tenant("tenant-9")
        .with_cli_executor(az.clone());
    assert_eq!(chain.aad_access_token().await.unwrap().expose(), "from-cli");
    let commands = az.commands.lock().unwrap().clone();
    assert_eq!(commands.len(), 1);
    assert!(
        commands[0].contains(&format!(
            "az account get-access-token -o json --scope {ACR_SCOPE} --tenant tenant-9"
        )),
        "{commands:?}"
    );
    assert_eq!(chain.tenant().as_deref(), Some("tenant-9"));
    chain.aad_access_token().await.unwrap();
    assert_eq!(
        az.commands.lock().unwrap().len(),
        1,
        "the CLI has no cache of its own: ours saves a process"
    );

    let chain =
        CredentialChain::only(AadSource::AzureCli).with_cli_executor(FakeAz::not_logged_in());
    let text = chain.aad_access_token().await.unwrap_err().to_string();
    assert!(text.contains("az login"), "{text}");
}

// ---------------------------------------------------------------------------------------------
// The ACR exchange through the Authenticator
// ---------------------------------------------------------------------------------------------

const REGISTRY: &str = "myregistry.azurecr.io";

/// Emulates ACR's token realm: `/oauth2/exchange` turns the AAD token into a refresh token,
/// `/oauth2/token` turns that into an access token for the scopes asked. Also answers Entra ID.
fn fake_acr(
    expected_aad: &'static str,
    expected_tenant: Option<&'static str>,
) -> Arc<FakeTransport> {
    let refresh = jwt("acr-refresh", 3 * 3600);
    FakeTransport::new(move |seen| {
        let form = seen.form();
        match (seen.url.host_str(), seen.url.path()) {
            (Some("login.microsoftonline.com"), _) => aad_token_json(expected_aad),
            (Some(REGISTRY), "/oauth2/exchange") => {
                assert_eq!(seen.method, "POST");
                assert_eq!(form["grant_type"], "access_token");
                assert_eq!(form["service"], REGISTRY);
                assert_eq!(form["access_token"], expected_aad);
                assert_eq!(form.get("tenant").map(String::as_str), expected_tenant);
                Reply::Json(200, format!(r#"{{"refresh_token":"{refresh}"}}"#))
            }
            (Some(REGISTRY), "/oauth2/token") => {
                assert_eq!(form["grant_type"], "refresh_token");
                assert_eq!(form["service"], REGISTRY);
                assert_eq!(form["refresh_token"], refresh);
                Reply::Json(
                    200,
                    format!(r#"{{"access_token":"{}"}}"#, jwt(&form["scope"], 3600)),
                )
            }
            _ => Reply::Json(404, "{}".into()),
        }
    })
}

/// `authenticator` answering a challenge for pulling `hello` from [`REGISTRY`].
async fn authorize_hello_pull(
    authenticator: &Authenticator,
    transport: &dyn Transport,
) -> Result<Option<acr_auth::Secret>, AuthError> {
    let pull: Scope = "repository:hello:pull".parse().unwrap();
    authenticator
        .authorize(
            REGISTRY,
            &challenge("repository:hello:pull"),
            &[pull],
            transport,
        )
        .await
}

fn challenge(scope: &str) -> Vec<Challenge> {
    parse_challenges(&format!(
        r#"Bearer realm="https://{REGISTRY}/oauth2/token",service="{REGISTRY}",scope="{scope}""#
    ))
    .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn fifty_concurrent_authorizations_make_one_exchange_and_one_token_request() {
    let aad = MockCredential::new();
    let credential = AzureCredential::new(aad.clone()).with_tenant("tenant-1");
    let authenticator = Arc::new(Authenticator::new(Credential::Aad(Arc::new(credential))));
    let transport = fake_acr("aad-token", Some("tenant-1"));

    let pull: Scope = "repository:hello:pull".parse().unwrap();
    let tasks: Vec<_> = (0..50)
        .map(|_| {
            let (authenticator, transport, pull) =
                (authenticator.clone(), transport.clone(), pull.clone());
            tokio::spawn(async move {
                authenticator
                    .authorize(
                        REGISTRY,
                        &challenge("repository:hello:pull"),
                        &[pull],
                        transport.as_ref(),
                    )
                    .await
            })
        })
        .collect();
    let mut headers = Vec::new();
    for task in tasks {
        headers.push(task.await.unwrap().unwrap().unwrap().expose().to_owned());
    }
    assert!(
        headers
            .iter()
            .all(|h| h.starts_with("Bearer ") && *h == headers[0])
    );
    assert_eq!(
        authenticator.stats(),
        AuthStats {
            token_requests: 1,
            exchanges: 1
        }
    );
    assert_eq!(
        (
            transport.count("/oauth2/exchange"),
            transport.count("/oauth2/token")
        ),
        (1, 1)
    );
    assert_eq!(aad.calls(), 1);
    assert_eq!(aad.scopes(), [ACR_SCOPE]);

    // Another scope: a new access token from the same ACR refresh token, no second exchange.
    let push: Scope = "repository:other:pull,push".parse().unwrap();
    let header = authenticator
        .authorize(
            REGISTRY,
            &challenge("repository:other:pull,push"),
            &[push],
            transport.as_ref(),
        )
        .await
        .unwrap()
        .unwrap();
    assert_ne!(header.expose(), headers[0]);
    assert_eq!(
        authenticator.stats(),
        AuthStats {
            token_requests: 2,
            exchanges: 1
        }
    );
    assert_eq!(
        (
            transport.count("/oauth2/exchange"),
            transport.count("/oauth2/token")
        ),
        (1, 2)
    );
    assert_eq!(aad.calls(), 1);
}

#[tokio::test]
async fn a_chain_from_the_environment_authorizes_end_to_end() {
    let transport = fake_acr("aad-from-login", Some("tenant-1"));
    let chain = CredentialChain::new()
        .with_env_vars([
            ("AZURE_TENANT_ID", "tenant-1"),
            ("AZURE_CLIENT_ID", "app-1"),
            ("AZURE_CLIENT_SECRET", "s3cret"),
        ])
        .with_transport(transport.clone());
    let authenticator = Authenticator::new(Credential::Aad(Arc::new(chain)));
    let header = authorize_hello_pull(&authenticator, transport.as_ref())
        .await
        .unwrap()
        .unwrap();
    assert!(header.expose().starts_with("Bearer e30."));
    let endpoints: Vec<String> = transport.seen().iter().map(Seen::endpoint).collect();
    assert_eq!(
        endpoints,
        [
            "https://login.microsoftonline.com/tenant-1/oauth2/v2.0/token",
            "https://myregistry.azurecr.io/oauth2/exchange",
            "https://myregistry.azurecr.io/oauth2/token",
        ]
    );
    assert_eq!(
        authenticator.stats(),
        AuthStats {
            token_requests: 1,
            exchanges: 1
        }
    );
}

/// Hands out a new AAD token on every call: `aad-1`, `aad-2`, ...
#[derive(Debug, Default)]
struct RotatingCredential(AtomicUsize);

#[async_trait]
impl TokenCredential for RotatingCredential {
    async fn get_token(
        &self,
        _: &[&str],
        _: Option<TokenRequestOptions<'_>>,
    ) -> AzureResult<AccessToken> {
        let n = self.0.fetch_add(1, Ordering::SeqCst) + 1;
        Ok(AccessToken::new(
            format!("aad-{n}"),
            OffsetDateTime::now_utc() + AzureDuration::hours(1),
        ))
    }
}

/// ACR's realm refusing the exchange of the AAD tokens in `refused` (401 with an empty body, as
/// recorded from live ACR) and accepting any other.
fn acr_refusing(refused: &'static [&'static str]) -> Arc<FakeTransport> {
    let refresh = jwt("acr-refresh", 3 * 3600);
    FakeTransport::new(move |seen| {
        let form = seen.form();
        match seen.url.path() {
            "/oauth2/exchange" if refused.contains(&form["access_token"].as_str()) => {
                Reply::Json(401, String::new())
            }
            "/oauth2/exchange" => Reply::Json(200, format!(r#"{{"refresh_token":"{refresh}"}}"#)),
            "/oauth2/token" => Reply::Json(
                200,
                format!(r#"{{"access_token":"{}"}}"#, jwt(&form["scope"], 3600)),
            ),
            _ => Reply::Json(404, "{}".into()),
        }
    })
}

#[tokio::test]
async fn an_aad_token_the_exchange_refuses_is_replaced_once() {
    let aad = Arc::new(RotatingCredential::default());
    let authenticator =
        Authenticator::new(Credential::Aad(Arc::new(AzureCredential::new(aad.clone()))));
    let transport = acr_refusing(&["aad-1"]);
    let header = authorize_hello_pull(&authenticator, transport.as_ref())
        .await
        .unwrap()
        .unwrap();
    assert!(header.expose().starts_with("Bearer "));
    let exchanged: Vec<String> = transport
        .seen()
        .iter()
        .filter(|s| s.url.path() == "/oauth2/exchange")
        .map(|s| s.form()["access_token"].clone())
        .collect();
    assert_eq!(
        exchanged,
        ["aad-1", "aad-2"],
        "the cached AAD token was dropped"
    );
    assert_eq!(aad.0.load(Ordering::SeqCst), 2);
}

#[tokio::test]
async fn an_aad_identity_the_exchange_keeps_refusing_fails_clearly_after_one_retry() {
    let aad = Arc::new(RotatingCredential::default());
    let authenticator =
        Authenticator::new(Credential::Aad(Arc::new(AzureCredential::new(aad.clone()))));
    let transport = acr_refusing(&["aad-1", "aad-2", "aad-3"]);
    let error = authorize_hello_pull(&authenticator, transport.as_ref())
        .await
        .unwrap_err();
    assert!(
        matches!(&error, AuthError::Unauthorized { registry, .. } if registry == REGISTRY),
        "{error:?}"
    );
    assert_eq!(transport.count("/oauth2/exchange"), 2, "one retry, no loop");

    // A credential that hands out the same token again is not asked to be exchanged twice.
    let same = MockCredential::new();
    let authenticator = Authenticator::new(Credential::Aad(Arc::new(AzureCredential::new(
        same.clone(),
    ))));
    let transport = acr_refusing(&["aad-token"]);
    let error = authorize_hello_pull(&authenticator, transport.as_ref())
        .await
        .unwrap_err();
    assert!(matches!(error, AuthError::Unauthorized { .. }), "{error:?}");
    assert_eq!(transport.count("/oauth2/exchange"), 1);
    assert_eq!(
        same.calls(),
        2,
        "the cache was dropped and the credential asked again"
    );
}
