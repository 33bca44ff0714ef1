//! Authentication edge cases against a scripted registry (no sockets): registries that answer
//! an expired token with 403 instead of a 401 challenge.

use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};

use acr_client::{Client, ClientConfig, PlainHttp, TransportConfig};
use oci_distribution_proto::{Body, Transport, TransportError};

#[derive(Default)]
struct ExpiringRegistry {
    tokens_issued: AtomicU32,
    t1_uses: AtomicU32,
}

#[async_trait::async_trait]
impl Transport for ExpiringRegistry {
    async fn send(
        &self,
        request: http::Request<Body>,
    ) -> Result<http::Response<Body>, TransportError> {
        let reply = |status: u16, body: &str| {
            http::Response::builder()
                .status(status)
                .header("content-type", "application/json")
                .body(Body::from(body.to_owned()))
                .unwrap()
        };
        let uri = request.uri().to_string();
        if uri.starts_with("https://auth.example/token") {
            let n = self.tokens_issued.fetch_add(1, Ordering::SeqCst) + 1;
            return Ok(reply(
                200,
                &format!(r#"{{"token":"t{n}","expires_in":300}}"#),
            ));
        }
        let auth = request
            .headers()
            .get("authorization")
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_owned();
        match auth.as_str() {
            "" => Ok(http::Response::builder()
                .status(401)
                .header(
                    "www-authenticate",
                    r#"Bearer realm="https://auth.example/token",service="reg.example""#,
                )
                .body(Body::from(
                    r#"{"errors":[{"code":"UNAUTHORIZED","message":"authentication required"}]}"#,
                ))
                .unwrap()),
            // The first token works once, then the registry calls it expired with a 403.
            "Bearer t1" if self.t1_uses.fetch_add(1, Ordering::SeqCst) == 0 => {
                Ok(reply(200, r#"{"name":"x","tags":["a"]}"#))
            }
            "Bearer t1" => Ok(reply(
                403,
                r#"{"errors":[{"code":"DENIED","message":"token expired"}]}"#,
            )),
            "Bearer t2" => Ok(reply(200, r#"{"name":"x","tags":["a","b"]}"#)),
            _ => Ok(reply(
                403,
                r#"{"errors":[{"code":"DENIED","message":"requested access to the resource is denied"}]}"#,
            )),
        }
    }
}

#[tokio::test]
async fn a_403_naming_an_expired_token_gets_a_new_token_once() {
    let registry = Arc::new(ExpiringRegistry::default());
    let config = ClientConfig {
        transport: TransportConfig {
            plain_http: PlainHttp::Never,
            ..TransportConfig::default()
        },
        ..ClientConfig::default()
    };
    let client = Client::with_transport(registry.clone(), config);
    let repo = client
        .repository(&"reg.example/x".parse().unwrap())
        .unwrap();
    assert_eq!(repo.tags().await.unwrap(), ["a"]);
    assert_eq!(
        repo.tags().await.unwrap(),
        ["a", "b"],
        "the expired token was replaced"
    );
    assert_eq!(registry.tokens_issued.load(Ordering::SeqCst), 2);
}

/// Records which requests carried the custom header.
#[derive(Default)]
struct HeaderRecorder {
    seen: std::sync::Mutex<Vec<(String, bool)>>,
}

#[async_trait::async_trait]
impl Transport for HeaderRecorder {
    async fn send(
        &self,
        request: http::Request<Body>,
    ) -> Result<http::Response<Body>, TransportError> {
        let uri = request.uri().to_string();
        self.seen
            .lock()
            .unwrap()
            .push((uri.clone(), request.headers().contains_key("x-tenant")));
        if uri.starts_with("https://auth.example/") {
            return Ok(http::Response::builder()
                .status(200)
                .body(Body::from(r#"{"token":"t","expires_in":300}"#))
                .unwrap());
        }
        if request.headers().contains_key("authorization") {
            return Ok(http::Response::builder()
                .status(200)
                .body(Body::from(r#"{"name":"x","tags":[]}"#))
                .unwrap());
        }
        Ok(http::Response::builder()
            .status(401)
            .header(
                "www-authenticate",
                r#"Bearer realm="https://auth.example/token",service="reg.example""#,
            )
            .body(Body::Empty)
            .unwrap())
    }
}

#[tokio::test]
async fn custom_headers_go_to_the_registry_only() {
    let recorder = Arc::new(HeaderRecorder::default());
    let mut headers = http::HeaderMap::new();
    headers.insert("x-tenant", http::HeaderValue::from_static("blue"));
    let config = ClientConfig {
        transport: TransportConfig {
            plain_http: PlainHttp::Never,
            ..TransportConfig::default()
        },
        headers,
        ..ClientConfig::default()
    };
    let client = Client::with_transport(recorder.clone(), config);
    client
        .repository(&"reg.example/x".parse().unwrap())
        .unwrap()
        .tags()
        .await
        .unwrap();
    let seen = recorder.seen.lock().unwrap().clone();
    assert_eq!(seen.len(), 3, "{seen:?}");
    for (uri, had_header) in seen {
        assert_eq!(had_header, uri.starts_with("https://reg.example/"), "{uri}");
    }
}

/// Counts how many requests are in flight at once through a real transport.
struct Counting {
    inner: acr_client::HyperTransport,
    now: std::sync::atomic::AtomicUsize,
    max: std::sync::atomic::AtomicUsize,
}

#[async_trait::async_trait]
impl Transport for Counting {
    async fn send(
        &self,
        request: http::Request<Body>,
    ) -> Result<http::Response<Body>, TransportError> {
        let now = self.now.fetch_add(1, Ordering::SeqCst) + 1;
        self.max.fetch_max(now, Ordering::SeqCst);
        // Hold the request a moment so overlapping ones would be seen.
        tokio::time::sleep(std::time::Duration::from_millis(5)).await;
        let response = self.inner.send(request).await;
        self.now.fetch_sub(1, Ordering::SeqCst);
        response
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn requests_to_one_host_are_limited() {
    let registry = acr_testkit::Registry::start(acr_testkit::RegistryOptions::default()).unwrap();
    let counting = Arc::new(Counting {
        inner: acr_client::HyperTransport::new(TransportConfig::default()).unwrap(),
        now: Default::default(),
        max: Default::default(),
    });
    let client = Client::with_transport(
        counting.clone(),
        ClientConfig {
            per_host_limit: 2,
            ..ClientConfig::default()
        },
    );
    let repo = client
        .repository(&format!("{}/limit/x", registry.host()).parse().unwrap())
        .unwrap();
    let mut tasks = Vec::new();
    for i in 0..12 {
        let repo = repo.clone();
        tasks.push(tokio::spawn(async move {
            let d = repo
                .push_bytes(
                    oci_spec_types::MediaType::ImageLayer,
                    format!("blob {i}").into_bytes().into(),
                )
                .await
                .unwrap();
            repo.fetch_bytes(&d).await.unwrap();
        }));
    }
    for task in tasks {
        task.await.unwrap();
    }
    assert_eq!(
        counting.max.load(Ordering::SeqCst),
        2,
        "never more than the limit, and the limit is used"
    );
}
