//! Token authentication end to end: the distribution token server and the ACR emulator
//! (AAD -> /oauth2/exchange -> /oauth2/token), with a real docker-registry checking every token.

use std::sync::Arc;
use std::time::Duration;

use acr_auth::{AadTokenProvider, AuthError, Credential, NULL_GUID_USER, Secret};
use acr_client::{Client, ClientConfig, Error, PlainHttp, Repository, TransportConfig};
use acr_testkit::{
    AcrEmulator, AcrEmulatorOptions, FakeAad, Grant, Identity, TokenServer, TokenServerOptions,
    User,
};
use oci_spec_types::MediaType;

fn https_client(ca: Option<std::path::PathBuf>) -> Client {
    Client::new(ClientConfig {
        transport: TransportConfig {
            plain_http: PlainHttp::Never,
            ca_file: ca,
            ..TransportConfig::default()
        },
        ..ClientConfig::default()
    })
    .unwrap()
}

fn repo(client: &Client, host: &str, name: &str) -> Repository {
    client
        .repository(&format!("{host}/{name}").parse().unwrap())
        .unwrap()
}

async fn push_and_pull(repo: &Repository, content: &str) {
    let d = repo
        .push_bytes(MediaType::ImageLayer, content.to_owned().into())
        .await
        .unwrap();
    assert_eq!(&repo.fetch_bytes(&d).await.unwrap()[..], content.as_bytes());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn token_auth_registry_with_users_and_scopes() {
    let server = TokenServer::start(TokenServerOptions {
        users: vec![
            User::new("alice", "alice-pw", vec![Grant::everything()]),
            User::new("bob", "bob-pw", vec![Grant::repository("*", &["pull"])]),
        ],
        ..TokenServerOptions::default()
    })
    .unwrap();
    let registry = server.start_registry(Default::default()).unwrap();
    let host = registry.host();

    let alice = Client::new(ClientConfig::default()).unwrap();
    alice.set_credential(
        &host,
        Credential::Basic {
            username: "alice".into(),
            password: Secret::new("alice-pw"),
        },
    );
    let shared = repo(&alice, &host, "team/app");
    for i in 0..5 {
        push_and_pull(&shared, &format!("blob {i}")).await;
    }
    // One token for pull+push covers all ten operations on the repository (and a pull-only
    // token is fetched at most once for the first HEAD).
    assert!(server.stats().access_tokens <= 2, "{:?}", server.stats());

    let bob = Client::new(ClientConfig::default()).unwrap();
    bob.set_credential(
        &host,
        Credential::Basic {
            username: "bob".into(),
            password: Secret::new("bob-pw"),
        },
    );
    let bob_repo = repo(&bob, &host, "team/app");
    let err = bob_repo.tags().await.unwrap_err();
    assert!(
        err.to_string().contains("NAME_UNKNOWN"),
        "bob may read: the repository is just empty of tags: {err}"
    );
    let err = bob_repo
        .push_bytes(MediaType::ImageLayer, "not allowed".into())
        .await
        .unwrap_err();
    assert!(matches!(err, Error::Unauthorized { .. }), "{err:?}");
    assert!(err.to_string().contains("insufficient_scope"), "{err}");

    let wrong = Client::new(ClientConfig::default()).unwrap();
    wrong.set_credential(
        &host,
        Credential::Basic {
            username: "alice".into(),
            password: Secret::new("hunter2-xyz"),
        },
    );
    let err = repo(&wrong, &host, "team/app").tags().await.unwrap_err();
    let message = err.to_string();
    assert!(
        matches!(err, Error::Auth(AuthError::Unauthorized { .. })),
        "{err:?}"
    );
    assert!(
        message.contains(&host)
            && message.contains("user name and password")
            && message.contains("invalid_grant"),
        "{message}"
    );
    assert!(
        !message.contains("hunter2-xyz"),
        "no password in messages: {message}"
    );
}

/// A test AAD credential: mints tokens with the emulator's fake Entra ID.
#[derive(Debug)]
struct TestAad {
    aad: FakeAadHandle,
    object_id: String,
}

struct FakeAadHandle(FakeAad);

impl std::fmt::Debug for FakeAadHandle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("FakeAad")
    }
}

#[async_trait::async_trait]
impl AadTokenProvider for TestAad {
    async fn aad_access_token(&self) -> Result<Secret, AuthError> {
        self.aad
            .0
            .mint_for(&self.object_id)
            .map(Secret::new)
            .map_err(|e| AuthError::Aad(e.to_string()))
    }
}

fn emulator(options: AcrEmulatorOptions) -> (AcrEmulator, Client) {
    let emulator = AcrEmulator::start(options).unwrap();
    let client = https_client(emulator.ca_file());
    (emulator, client)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_acr_credential_kind_pushes_and_pulls() {
    let (emulator, _) = emulator(AcrEmulatorOptions {
        users: vec![User::new("admin", "admin-pw", vec![Grant::everything()])],
        ..AcrEmulatorOptions::default()
    });
    let host = emulator.host();
    let credentials = vec![
        (
            "admin user",
            Credential::Basic {
                username: "admin".into(),
                password: Secret::new("admin-pw"),
            },
        ),
        (
            "refresh token",
            Credential::RefreshToken(Secret::new(emulator.mint_refresh_token("ci-user").unwrap())),
        ),
        (
            "null-GUID login",
            Credential::from_login(
                NULL_GUID_USER,
                Secret::new(emulator.mint_refresh_token("ci-user").unwrap()),
            ),
        ),
        (
            "AAD token at hand",
            Credential::AadAccessToken {
                token: Secret::new(emulator.mint_aad_token("pipeline").unwrap()),
                tenant: None,
            },
        ),
        (
            "AAD credential",
            Credential::Aad(Arc::new(TestAad {
                aad: FakeAadHandle(emulator.aad()),
                object_id: "dev".into(),
            })),
        ),
    ];
    for (i, (kind, credential)) in credentials.into_iter().enumerate() {
        let client = https_client(emulator.ca_file());
        client.set_credential(&host, credential);
        push_and_pull(
            &repo(&client, &host, "hello-world"),
            &format!("{kind} content {i}"),
        )
        .await;
    }
    assert_eq!(
        emulator.stats().exchanges,
        2,
        "the two AAD credentials exchanged once each"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fifty_concurrent_requests_cause_one_exchange_and_expiry_renews() {
    let (emulator, client) = emulator(AcrEmulatorOptions::default());
    let host = emulator.host();
    client.set_credential(
        &host,
        Credential::Aad(Arc::new(TestAad {
            aad: FakeAadHandle(emulator.aad()),
            object_id: "svc".into(),
        })),
    );
    let digest = oci_spec_types::Digest::sha256_of(b"nothing here");
    let mut tasks = Vec::new();
    for _ in 0..50 {
        let repo = repo(&client, &host, "busy/repo");
        let digest = digest.clone();
        tasks.push(tokio::spawn(async move {
            repo.blob_exists(&digest).await.unwrap()
        }));
    }
    for task in tasks {
        assert_eq!(task.await.unwrap(), None);
    }
    let stats = emulator.stats();
    assert_eq!((stats.exchanges, stats.access_tokens), (1, 1), "{stats:?}");

    // Short-lived tokens: once they age out, the client exchanges again by itself.
    emulator
        .faults()
        .set_refresh_token_ttl(Duration::from_secs(2));
    emulator
        .faults()
        .set_access_token_ttl(Duration::from_secs(2));
    let fresh = https_client(emulator.ca_file());
    fresh.set_credential(
        &host,
        Credential::Aad(Arc::new(TestAad {
            aad: FakeAadHandle(emulator.aad()),
            object_id: "svc".into(),
        })),
    );
    let r = repo(&fresh, &host, "busy/repo");
    push_and_pull(&r, "before expiry").await;
    let exchanges = emulator.stats().exchanges;
    tokio::time::sleep(Duration::from_millis(2200)).await;
    push_and_pull(&r, "after expiry").await;
    assert_eq!(
        emulator.stats().exchanges,
        exchanges + 1,
        "an expired refresh token is renewed through AAD"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pull_only_identities_anonymous_pull_and_refused_exchanges() {
    let (emulator, admin) = emulator(AcrEmulatorOptions {
        anonymous_pull: true,
        identities: vec![Identity::new(
            "reader",
            vec![Grant::repository("*", &["pull"])],
        )],
        users: vec![User::new("admin", "admin-pw", vec![Grant::everything()])],
        ..AcrEmulatorOptions::default()
    });
    let host = emulator.host();
    admin.set_credential(
        &host,
        Credential::Basic {
            username: "admin".into(),
            password: Secret::new("admin-pw"),
        },
    );
    let d = repo(&admin, &host, "public/app")
        .push_bytes(MediaType::ImageLayer, "public".into())
        .await
        .unwrap();

    let anonymous = https_client(emulator.ca_file());
    let anon_repo = repo(&anonymous, &host, "public/app");
    assert_eq!(&anon_repo.fetch_bytes(&d).await.unwrap()[..], b"public");
    let err = anon_repo
        .push_bytes(MediaType::ImageLayer, "nope".into())
        .await
        .unwrap_err();
    assert!(err.to_string().starts_with("unauthorized"), "{err}");

    let reader = https_client(emulator.ca_file());
    reader.set_credential(
        &host,
        Credential::Aad(Arc::new(TestAad {
            aad: FakeAadHandle(emulator.aad()),
            object_id: "reader".into(),
        })),
    );
    let reader_repo = repo(&reader, &host, "public/app");
    assert_eq!(reader_repo.blob_exists(&d.digest).await.unwrap(), Some(6));
    let err = reader_repo
        .push_bytes(MediaType::ImageLayer, "denied".into())
        .await
        .unwrap_err();
    assert!(matches!(err, Error::Unauthorized { .. }), "{err:?}");

    emulator.faults().refuse_exchange(true);
    let refused = https_client(emulator.ca_file());
    refused.set_credential(
        &host,
        Credential::Aad(Arc::new(TestAad {
            aad: FakeAadHandle(emulator.aad()),
            object_id: "dev".into(),
        })),
    );
    let err = repo(&refused, &host, "public/app")
        .blob_exists(&d.digest)
        .await
        .unwrap_err();
    let message = err.to_string();
    assert!(
        message.contains("/oauth2/exchange") && message.contains("Azure AD credential"),
        "{message}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hundred_concurrent_pushes_and_pulls_share_one_client_and_its_tokens() {
    let server = TokenServer::start(TokenServerOptions {
        users: vec![User::new("ci", "ci-pw", vec![Grant::everything()])],
        ..TokenServerOptions::default()
    })
    .unwrap();
    let registry = server.start_registry(Default::default()).unwrap();
    let host = registry.host();
    let client = Client::new(ClientConfig::default()).unwrap();
    client.set_credential(
        &host,
        Credential::Basic {
            username: "ci".into(),
            password: Secret::new("ci-pw"),
        },
    );
    let mut tasks = Vec::new();
    for i in 0..100 {
        let repo = repo(&client, &host, &format!("load/r{}", i % 10));
        tasks.push(tokio::spawn(async move {
            let content = format!("artifact number {i} ").repeat(100);
            let d = repo
                .push_bytes(MediaType::ImageLayer, content.clone().into())
                .await
                .unwrap();
            assert_eq!(
                repo.fetch_bytes(&d).await.unwrap(),
                content.as_bytes(),
                "{i} verified"
            );
        }));
    }
    for task in tasks {
        task.await.unwrap();
    }
    // Ten repositories, each needing a pull token (HEAD, GET) and a pull+push one (POST, PUT):
    // one token per scope set, however many tasks asked at once.
    let stats = server.stats();
    assert!(stats.access_tokens <= 20, "{stats:?}");
    assert_eq!(stats.token_failures, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn token_auth_registry_full_round_trip() {
    let server = TokenServer::start(TokenServerOptions {
        users: vec![User::new("dev", "dev-pw", vec![Grant::everything()])],
        ..TokenServerOptions::default()
    })
    .unwrap();
    let registry = server.start_registry(Default::default()).unwrap();
    let client = Client::new(crate::content::chunky()).unwrap();
    client.set_credential(
        &registry.host(),
        Credential::Basic {
            username: "dev".into(),
            password: Secret::new("dev-pw"),
        },
    );
    crate::content::round_trip(
        &client,
        &format!("{}/token/files", registry.host()).parse().unwrap(),
    )
    .await;
}
