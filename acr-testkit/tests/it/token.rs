//! Token mode: the token server against the real docker-registry.

use std::time::Duration;

use acr_testkit::{Grant, KeyId, Registry, RegistryOptions, TokenServer, TokenServerOptions, User};

use crate::client::{
    BLOB, basic, bearer, claims, encode, get, jwt_header, post_form, pull_blob, push_blob,
    start_upload,
};

fn users() -> Vec<User> {
    vec![
        User::new(
            "writer",
            "writer-pw",
            vec![Grant::repository("*", &["pull", "push"])],
        ),
        User::new(
            "reader",
            "reader-pw",
            vec![Grant::repository("*", &["pull"])],
        ),
    ]
}

fn start(options: TokenServerOptions) -> (TokenServer, Registry) {
    let server = TokenServer::start(TokenServerOptions {
        users: users(),
        ..options
    })
    .unwrap();
    let registry = server.start_registry(RegistryOptions::default()).unwrap();
    (server, registry)
}

/// `GET /token` with optional Basic credentials; returns the access token.
fn token(server: &TokenServer, credentials: Option<(&str, &str)>, scope: &str) -> String {
    let path = format!(
        "/token?service={}&scope={}",
        encode(server.service()),
        encode(scope)
    );
    let auth = credentials.map(|(u, p)| basic(u, p));
    let headers: Vec<(&str, &str)> = auth.iter().map(|a| ("Authorization", a.as_str())).collect();
    let reply = get(server.addr(), &path, &headers);
    assert_eq!(reply.status, 200, "{reply:?}");
    let body = reply.json();
    assert_eq!(body["token"], body["access_token"]);
    assert!(body["expires_in"].as_i64().unwrap() > 0);
    assert!(body["issued_at"].as_str().unwrap().ends_with('Z'));
    body["access_token"].as_str().unwrap().to_owned()
}

#[test]
fn anonymous_requests_get_a_bearer_challenge_and_no_access() {
    let (server, registry) = start(TokenServerOptions::default());
    let reply = get(registry.addr(), "/v2/", &[]);
    assert_eq!(reply.status, 401);
    assert_eq!(
        reply.header("WWW-Authenticate"),
        Some(
            format!(
                "Bearer realm=\"{}\",service=\"{}\"",
                server.realm(),
                server.service()
            )
            .as_str()
        )
    );
    // Anonymous gets a valid token with empty access: fine for /v2/, not for a repository.
    let anonymous = token(&server, None, "repository:foo:pull");
    assert_eq!(claims(&anonymous)["access"], serde_json::json!([]));
    assert_eq!(
        get(
            registry.addr(),
            "/v2/",
            &[("Authorization", &bearer(&anonymous))]
        )
        .status,
        200
    );
    let refused = pull_blob(registry.addr(), "foo", &anonymous);
    assert_eq!(refused.status, 401);
    let challenge = refused.header("WWW-Authenticate").unwrap();
    assert!(
        challenge.contains("scope=\"repository:foo:pull\""),
        "{challenge}"
    );
    assert!(
        challenge.contains("error=\"insufficient_scope\""),
        "{challenge}"
    );
}

#[test]
fn a_pull_push_user_pushes_and_pulls_a_blob() {
    let (server, registry) = start(TokenServerOptions::default());
    let token = token(
        &server,
        Some(("writer", "writer-pw")),
        "repository:team/app:pull,push",
    );
    let claims = claims(&token);
    assert_eq!(claims["aud"], server.service());
    assert_eq!(claims["iss"], server.issuer());
    assert_eq!(claims["sub"], "writer");
    assert_eq!(
        claims["access"],
        serde_json::json!([{"type": "repository", "name": "team/app", "actions": ["pull", "push"]}])
    );
    assert!(jwt_header(&token)["x5c"].is_array());
    push_blob(registry.addr(), "team/app", &token);
    let pulled = pull_blob(registry.addr(), "team/app", &token);
    assert_eq!(pulled.status, 200, "{pulled:?}");
    assert_eq!(pulled.body, BLOB);
    assert_eq!(server.stats().access_tokens, 1);
}

#[test]
fn a_pull_only_user_cannot_push() {
    let (server, registry) = start(TokenServerOptions::default());
    // POST password grant: the response's scope shows what was granted.
    let reply = post_form(
        server.addr(),
        "/token",
        &[
            ("grant_type", "password"),
            ("username", "reader"),
            ("password", "reader-pw"),
            ("service", server.service()),
            ("scope", "repository:team/app:pull,push"),
            ("client_id", "acr-testkit-tests"),
        ],
    );
    assert_eq!(reply.status, 200, "{reply:?}");
    let body = reply.json();
    assert_eq!(body["scope"], "repository:team/app:pull");
    assert!(body.get("refresh_token").is_none());
    let token = body["access_token"].as_str().unwrap();
    let refused = start_upload(registry.addr(), "team/app", token);
    assert_eq!(refused.status, 401, "{refused:?}");
    let challenge = refused.header("WWW-Authenticate").unwrap();
    assert!(
        challenge.contains("error=\"insufficient_scope\""),
        "{challenge}"
    );
    // The registry's action order varies between requests (ACR does not normalise it either).
    assert!(
        challenge.contains("scope=\"repository:team/app:push,pull\"")
            || challenge.contains("scope=\"repository:team/app:pull,push\""),
        "{challenge}"
    );
    // Pulling is allowed (404: authorized, blob absent).
    assert_eq!(pull_blob(registry.addr(), "team/app", token).status, 404);
}

#[test]
fn wrong_passwords_are_refused_by_the_token_server() {
    let (server, _registry) = start(TokenServerOptions::default());
    let path = format!(
        "/token?service={}&scope=repository:x:pull",
        encode(server.service())
    );
    let reply = get(
        server.addr(),
        &path,
        &[("Authorization", &basic("writer", "nope"))],
    );
    assert_eq!(reply.status, 401);
    assert_eq!(reply.json()["error"], "invalid_grant");
    assert!(
        reply
            .header("WWW-Authenticate")
            .unwrap()
            .starts_with("Basic realm=")
    );
    let reply = post_form(
        server.addr(),
        "/token",
        &[
            ("grant_type", "password"),
            ("username", "nobody"),
            ("password", "x"),
            ("service", server.service()),
        ],
    );
    assert_eq!(reply.status, 401);
    assert_eq!(reply.json()["error"], "invalid_grant");
    // Malformed requests are 400 with a reason.
    let reply = post_form(
        server.addr(),
        "/token",
        &[("grant_type", "magic"), ("service", server.service())],
    );
    assert_eq!(reply.status, 400);
    assert_eq!(reply.json()["error"], "unsupported_grant_type");
    let reply = get(server.addr(), "/token?service=other", &[]);
    assert_eq!(reply.status, 400);
    assert!(
        reply.json()["error_description"]
            .as_str()
            .unwrap()
            .contains("other")
    );
    assert_eq!(server.stats().token_failures, 4);
}

#[test]
fn refresh_tokens_work_and_bad_ones_are_refused() {
    let (server, registry) = start(TokenServerOptions::default());
    let service = server.service().to_owned();
    let reply = post_form(
        server.addr(),
        "/token",
        &[
            ("grant_type", "password"),
            ("username", "writer"),
            ("password", "writer-pw"),
            ("service", &service),
            ("access_type", "offline"),
        ],
    );
    assert_eq!(reply.status, 200, "{reply:?}");
    let refresh = reply.json()["refresh_token"].as_str().unwrap().to_owned();
    let reply = post_form(
        server.addr(),
        "/token",
        &[
            ("grant_type", "refresh_token"),
            ("refresh_token", &refresh),
            ("service", &service),
            ("scope", "repository:r/one:pull,push"),
        ],
    );
    assert_eq!(reply.status, 200, "{reply:?}");
    let body = reply.json();
    assert_eq!(body["refresh_token"], refresh.as_str());
    push_blob(
        registry.addr(),
        "r/one",
        body["access_token"].as_str().unwrap(),
    );
    // GET with offline_token=true also hands out a refresh token.
    let path = format!("/token?service={}&offline_token=true", encode(&service));
    let reply = get(
        server.addr(),
        &path,
        &[("Authorization", &basic("reader", "reader-pw"))],
    );
    assert!(reply.json()["refresh_token"].is_string(), "{reply:?}");
    // An access token is not a refresh token, and garbage is garbage.
    let access = body["access_token"].as_str().unwrap();
    for bad in [access, "wrong token"] {
        let reply = post_form(
            server.addr(),
            "/token",
            &[
                ("grant_type", "refresh_token"),
                ("refresh_token", bad),
                ("service", &service),
            ],
        );
        assert_eq!(reply.status, 401, "{reply:?}");
        assert_eq!(reply.json()["error"], "invalid_grant");
    }
}

#[test]
fn expired_tokens_are_refused_by_the_registry() {
    let (server, registry) = start(TokenServerOptions::default());
    // docker-registry allows 60 s after exp; backdating by 60 s makes a 3 s TTL real.
    let faults = server.faults();
    faults.set_backdate(Duration::from_secs(60));
    faults.set_access_token_ttl(Duration::from_secs(3));
    let token = token(&server, Some(("writer", "writer-pw")), "repository:x:pull");
    let auth = bearer(&token);
    assert_eq!(
        get(registry.addr(), "/v2/", &[("Authorization", &auth)]).status,
        200
    );
    std::thread::sleep(Duration::from_secs(4));
    let refused = get(registry.addr(), "/v2/", &[("Authorization", &auth)]);
    assert_eq!(refused.status, 401);
    let challenge = refused.header("WWW-Authenticate").unwrap();
    assert!(challenge.contains("error=\"invalid_token\""), "{challenge}");
}

#[test]
fn libtrust_key_ids_and_injected_failures() {
    let (server, registry) = start(TokenServerOptions {
        key_id: KeyId::Libtrust,
        ..Default::default()
    });
    server.faults().fail_next_token_requests(1);
    let path = format!("/token?service={}", encode(server.service()));
    assert_eq!(get(server.addr(), &path, &[]).status, 401);
    let token = token(&server, Some(("reader", "reader-pw")), "repository:x:pull");
    let kid = jwt_header(&token)["kid"].as_str().unwrap().to_owned();
    assert_eq!(kid.len(), 59, "{kid}");
    assert_eq!(kid.split(':').count(), 12);
    assert_eq!(pull_blob(registry.addr(), "x", &token).status, 404);
    let minted = server
        .mint_access_token("tester", &["repository:x:pull"])
        .unwrap();
    assert_eq!(pull_blob(registry.addr(), "x", &minted).status, 404);
    let stats = server.stats();
    assert_eq!(
        (
            stats.injected_failures,
            stats.token_failures,
            stats.access_tokens
        ),
        (1, 1, 2)
    );
}
