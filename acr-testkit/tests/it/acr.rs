//! The ACR emulator: AAD → exchange → token → the real docker-registry behind it.

use std::process::Command;
use std::time::Duration;

use acr_testkit::{
    ACR_AUDIENCE, AadToken, AcrEmulator, AcrEmulatorOptions, Grant, Identity, NULL_GUID_USER, User,
};

use crate::client::{
    BLOB, Reply, basic, bearer, claims, encode, get, jwt_header, post_form, pull_blob, push_blob,
    start_upload,
};

const WRITER: &str = "aaaaaaaa-0000-0000-0000-00000000000a";
const READER: &str = "bbbbbbbb-0000-0000-0000-00000000000b";

fn start(options: AcrEmulatorOptions) -> AcrEmulator {
    AcrEmulator::start(AcrEmulatorOptions {
        tls: false,
        identities: vec![Identity::new(
            READER,
            vec![Grant::repository("*", &["pull"])],
        )],
        users: vec![User::new("admin", "admin-pw", vec![Grant::everything()])],
        ..options
    })
    .unwrap()
}

/// `POST /oauth2/exchange` the way the Go SDK sends it (sorted fields, api-version).
fn exchange(acr: &AcrEmulator, aad_token: &str, extra: &[(&str, &str)]) -> Reply {
    let mut fields = vec![
        ("access_token", aad_token),
        ("grant_type", "access_token"),
        ("service", acr.service()),
    ];
    fields.extend_from_slice(extra);
    post_form(
        acr.addr(),
        "/oauth2/exchange?api-version=2021-07-01",
        &fields,
    )
}

fn access_token(acr: &AcrEmulator, refresh: &str, scope: &str) -> String {
    let reply = post_form(
        acr.addr(),
        "/oauth2/token?api-version=2021-07-01",
        &[
            ("grant_type", "refresh_token"),
            ("service", acr.service()),
            ("scope", scope),
            ("refresh_token", refresh),
        ],
    );
    assert_eq!(reply.status, 200, "{reply:?}");
    let body = reply.json();
    // ACR answers with access_token only: no expires_in.
    assert_eq!(body.as_object().unwrap().len(), 1, "{body}");
    body["access_token"].as_str().unwrap().to_owned()
}

/// An ACR-style refusal: 401, empty body; the emulator's reason header mentions `why`.
fn assert_refused(reply: &Reply, why: &str) {
    assert_eq!(reply.status, 401, "{reply:?}");
    assert_eq!(reply.header("Content-Length"), Some("0"));
    assert!(reply.body.is_empty());
    assert!(reply.header("WWW-Authenticate").is_none());
    let reason = reply.header("x-acr-emulator-error").unwrap_or_default();
    assert!(reason.contains(why), "expected {why:?} in {reason:?}");
}

#[test]
fn aad_token_to_exchange_to_access_token_reaches_the_registry() {
    let acr = start(AcrEmulatorOptions::default());
    let challenge = get(acr.addr(), "/v2/", &[]);
    assert_eq!(challenge.status, 401);
    assert_eq!(
        challenge.header("WWW-Authenticate"),
        Some(
            format!(
                "Bearer realm=\"{}/oauth2/token\",service=\"{}\"",
                acr.url(),
                acr.service()
            )
            .as_str()
        )
    );

    let aad = acr.mint_aad_token(WRITER).unwrap();
    let aad_claims = claims(&aad);
    assert_eq!(aad_claims["aud"], ACR_AUDIENCE);
    assert_eq!(aad_claims["tid"], acr.tenant_id());
    assert_eq!(aad_claims["oid"], WRITER);
    let reply = exchange(&acr, &aad, &[]);
    assert_eq!(reply.status, 200, "{reply:?}");
    assert_eq!(
        reply.header("Content-Type"),
        Some("application/json; charset=utf-8")
    );
    let refresh = reply.json()["refresh_token"].as_str().unwrap().to_owned();
    let refresh_claims = claims(&refresh);
    assert_eq!(refresh_claims["sub"], WRITER);
    assert_eq!(refresh_claims["aud"], acr.service());
    assert_eq!(refresh_claims["grant_type"], "refresh_token");
    assert_eq!(refresh_claims["iss"], "Azure Container Registry");

    let token = access_token(&acr, &refresh, "repository:app/web:pull,push");
    assert_eq!(
        claims(&token)["access"],
        serde_json::json!([{"type": "repository", "name": "app/web", "actions": ["pull", "push"]}])
    );
    // Like real ACR, tokens name their key with a libtrust kid.
    assert!(jwt_header(&token)["kid"].is_string());
    let location = push_blob(acr.addr(), "app/web", &token);
    // The registry builds absolute Locations from the forwarded Host: they point at the emulator.
    assert!(
        location.starts_with(&format!("{}/v2/app/web/blobs/uploads/", acr.url())),
        "{location}"
    );
    let pulled = pull_blob(acr.addr(), "app/web", &token);
    assert_eq!(pulled.status, 200, "{pulled:?}");
    assert_eq!(pulled.body, BLOB);

    let stats = acr.stats();
    assert_eq!(
        (stats.exchanges, stats.refresh_tokens, stats.access_tokens),
        (1, 1, 1)
    );
    assert_eq!(stats.proxied_requests, 4);
}

#[test]
fn exchange_refuses_bad_aad_tokens_like_acr() {
    let acr = start(AcrEmulatorOptions::default());
    let aad = acr.aad();
    let mint = |change: &dyn Fn(&mut AadToken)| {
        let mut token = aad.token(WRITER);
        change(&mut token);
        aad.mint(&token).unwrap()
    };
    let wrong_audience = mint(&|t| t.audience = "https://storage.azure.com".into());
    assert_refused(&exchange(&acr, &wrong_audience, &[]), "audience");
    let arm = mint(&|t| t.audience = "https://management.azure.com/".into());
    assert_refused(&exchange(&acr, &arm, &[]), "allow_arm_audience");
    let expired = mint(&|t| t.lifetime_secs = -10);
    assert_refused(&exchange(&acr, &expired, &[]), "expired");
    let other_tenant = mint(&|t| t.tenant_id = "99999999-0000-0000-0000-000000000000".into());
    assert_refused(&exchange(&acr, &other_tenant, &[]), "tenant");
    // The recorded failure: a garbage token plus refresh_token and tenant fields.
    let valid = aad.mint_for(WRITER).unwrap();
    assert_refused(
        &exchange(
            &acr,
            &valid,
            &[("refresh_token", "wrong token"), ("tenant", "wrong tenant")],
        ),
        "tenant",
    );
    assert_refused(&exchange(&acr, "wrong token", &[]), "not a JWT");
    let wrong_service = post_form(
        acr.addr(),
        "/oauth2/exchange",
        &[
            ("grant_type", "access_token"),
            ("service", "other.azurecr.io"),
            ("access_token", &valid),
        ],
    );
    assert_refused(&wrong_service, "not this registry");
    let no_grant = post_form(
        acr.addr(),
        "/oauth2/exchange",
        &[("service", acr.service())],
    );
    assert_eq!(no_grant.status, 400);
    assert!(
        no_grant.json()["errors"][0]["message"]
            .as_str()
            .unwrap()
            .contains("grant_type")
    );
    // The tenant field is fine when it matches.
    assert_eq!(
        exchange(&acr, &valid, &[("tenant", acr.tenant_id())]).status,
        200
    );
    let stats = acr.stats();
    assert_eq!((stats.exchanges, stats.exchange_failures), (1, 8));
    // A refresh token that is garbage, like the recorded token failure.
    let reply = post_form(
        acr.addr(),
        "/oauth2/token",
        &[
            ("grant_type", "refresh_token"),
            ("refresh_token", "wrong token"),
            ("scope", "registry:catalog:*"),
            ("service", acr.service()),
        ],
    );
    assert_refused(&reply, "refresh token refused");
}

#[test]
fn pull_only_identities_and_the_null_guid_user() {
    let acr = start(AcrEmulatorOptions::default());
    let admin = get(
        acr.addr(),
        &format!(
            "/oauth2/token?service={}&scope={}",
            encode(acr.service()),
            encode("repository:shared:pull,push")
        ),
        &[("Authorization", &basic("admin", "admin-pw"))],
    );
    assert_eq!(admin.status, 200, "{admin:?}");
    push_blob(
        acr.addr(),
        "shared",
        admin.json()["access_token"].as_str().unwrap(),
    );

    // docker login -u 00000000-… -p <refresh token>, then the password grant.
    let refresh = acr.mint_refresh_token(READER).unwrap();
    let reply = post_form(
        acr.addr(),
        "/oauth2/token",
        &[
            ("grant_type", "password"),
            ("username", NULL_GUID_USER),
            ("password", &refresh),
            ("service", acr.service()),
            ("scope", "repository:shared:pull,push"),
        ],
    );
    assert_eq!(reply.status, 200, "{reply:?}");
    let token = reply.json()["access_token"].as_str().unwrap().to_owned();
    assert_eq!(
        claims(&token)["access"][0]["actions"],
        serde_json::json!(["pull"])
    );
    assert_eq!(pull_blob(acr.addr(), "shared", &token).status, 200);
    let refused = start_upload(acr.addr(), "shared", &token);
    assert_eq!(refused.status, 401);
    assert!(
        refused
            .header("WWW-Authenticate")
            .unwrap()
            .contains("error=\"insufficient_scope\"")
    );

    let wrong = get(
        acr.addr(),
        &format!(
            "/oauth2/token?service={}&scope=repository:shared:pull",
            encode(acr.service())
        ),
        &[("Authorization", &basic("admin", "nope"))],
    );
    assert_refused(&wrong, "wrong user name or password");
    // Anonymous pull is off by default.
    let anonymous = post_form(
        acr.addr(),
        "/oauth2/token",
        &[
            ("grant_type", "password"),
            ("refresh_token", ""),
            ("scope", "repository:shared:pull"),
            ("service", acr.service()),
        ],
    );
    assert_refused(&anonymous, "anonymous pull is not enabled");
}

#[test]
fn anonymous_pull_and_arm_audience_when_enabled() {
    let acr = start(AcrEmulatorOptions {
        anonymous_pull: true,
        allow_arm_audience: true,
        ..Default::default()
    });
    let arm = acr.aad().mint(&AadToken {
        audience: "https://management.core.windows.net/".into(),
        ..acr.aad().token(WRITER)
    });
    let reply = exchange(&acr, &arm.unwrap(), &[]);
    assert_eq!(reply.status, 200, "{reply:?}");
    let refresh = reply.json()["refresh_token"].as_str().unwrap().to_owned();
    push_blob(
        acr.addr(),
        "public/img",
        &access_token(&acr, &refresh, "repository:public/img:push,pull"),
    );

    // What the Go/.NET/JS SDKs send for anonymous access (Python omits refresh_token).
    let anonymous = |scope: &str| {
        let reply = post_form(
            acr.addr(),
            "/oauth2/token?api-version=2021-07-01",
            &[
                ("grant_type", "password"),
                ("refresh_token", ""),
                ("scope", scope),
                ("service", acr.service()),
            ],
        );
        assert_eq!(reply.status, 200, "{reply:?}");
        reply.json()["access_token"].as_str().unwrap().to_owned()
    };
    let pull = anonymous("repository:public/img:pull");
    assert_eq!(pull_blob(acr.addr(), "public/img", &pull).status, 200);
    let catalog = get(
        acr.addr(),
        "/v2/_catalog",
        &[("Authorization", &bearer(&anonymous("registry:catalog:*")))],
    );
    assert_eq!(catalog.status, 200, "{catalog:?}");
    assert_eq!(
        catalog.json()["repositories"],
        serde_json::json!(["public/img"])
    );
    // An anonymous token for a write is issued (empty access); the registry refuses the write.
    let push = anonymous("repository:public/img:pull,push");
    assert_eq!(
        claims(&push)["access"][0]["actions"],
        serde_json::json!(["pull"])
    );
    let refused = start_upload(acr.addr(), "public/img", &push);
    assert_eq!(refused.status, 401);
    assert!(
        refused
            .header("WWW-Authenticate")
            .unwrap()
            .contains("error=\"insufficient_scope\"")
    );
    // Docker-style anonymous GET works too.
    let docker = get(
        acr.addr(),
        &format!(
            "/oauth2/token?service={}&scope=repository:public/img:pull",
            encode(acr.service())
        ),
        &[],
    );
    assert_eq!(docker.status, 200, "{docker:?}");
}

#[test]
fn faults_and_counters() {
    let acr = start(AcrEmulatorOptions::default());
    let faults = acr.faults();
    let refresh = {
        let reply = exchange(&acr, &acr.mint_aad_token(WRITER).unwrap(), &[]);
        reply.json()["refresh_token"].as_str().unwrap().to_owned()
    };
    let token = access_token(&acr, &refresh, "repository:f:pull");
    let auth = bearer(&token);

    // 401 once: an ACR-shaped invalid_token challenge, then normal service.
    faults.unauthorized_once();
    let rejected = get(
        acr.addr(),
        "/v2/f/manifests/latest",
        &[("Authorization", &auth)],
    );
    assert_eq!(rejected.status, 401);
    assert_eq!(
        rejected.header("WWW-Authenticate"),
        Some(format!(
            "Bearer realm=\"{}/oauth2/token\",service=\"{}\",scope=\"repository:f:pull\",error=\"invalid_token\"",
            acr.url(),
            acr.service()
        )
        .as_str())
    );
    assert_eq!(rejected.json()["errors"][0]["detail"][0]["Action"], "pull");
    let passed = get(
        acr.addr(),
        "/v2/f/manifests/latest",
        &[
            ("Authorization", &auth),
            ("Accept", "application/vnd.oci.image.manifest.v1+json"),
        ],
    );
    assert_eq!(passed.status, 404, "{passed:?}");

    faults.refuse_exchange(true);
    assert_refused(
        &exchange(&acr, &acr.mint_aad_token(WRITER).unwrap(), &[]),
        "refuse_exchange",
    );
    faults.clear();
    faults.fail_next_token_requests(1);
    let failed = post_form(
        acr.addr(),
        "/oauth2/token",
        &[
            ("grant_type", "refresh_token"),
            ("refresh_token", &refresh),
            ("service", acr.service()),
        ],
    );
    assert_refused(&failed, "injected");
    access_token(&acr, &refresh, "repository:f:pull");

    // Slow token endpoint.
    faults.set_token_delay(Duration::from_millis(300));
    let started = std::time::Instant::now();
    access_token(&acr, &refresh, "repository:f:pull");
    assert!(started.elapsed() >= Duration::from_millis(300));
    faults.clear();

    // Refresh tokens expire exactly (the emulator checks them itself).
    faults.set_refresh_token_ttl(Duration::from_secs(1));
    let short = exchange(&acr, &acr.mint_aad_token(WRITER).unwrap(), &[]).json()["refresh_token"]
        .as_str()
        .unwrap()
        .to_owned();
    std::thread::sleep(Duration::from_millis(2100));
    let expired = post_form(
        acr.addr(),
        "/oauth2/token",
        &[
            ("grant_type", "refresh_token"),
            ("refresh_token", &short),
            ("service", acr.service()),
        ],
    );
    assert_refused(&expired, "expired");

    let stats = acr.stats();
    assert_eq!(stats.exchanges, 2);
    assert_eq!(stats.exchange_failures, 1);
    assert_eq!(stats.access_tokens, 3);
    assert_eq!(stats.injected_failures, 2);
    assert_eq!(stats.token_failures, 2);
    faults.reset_stats();
    assert_eq!(acr.stats(), Default::default());
}

#[test]
fn concurrent_exchanges_are_all_counted() {
    let acr = start(AcrEmulatorOptions::default());
    acr.faults().set_token_delay(Duration::from_millis(200));
    let aad = acr.mint_aad_token(WRITER).unwrap();
    std::thread::scope(|s| {
        for _ in 0..8 {
            s.spawn(|| assert_eq!(exchange(&acr, &aad, &[]).status, 200));
        }
    });
    assert_eq!(acr.stats().exchanges, 8);
}

#[test]
fn fake_aad_endpoint_issues_tokens_the_exchange_accepts() {
    let acr = start(AcrEmulatorOptions::default());
    let path = format!("/aad/{}/oauth2/v2.0/token", acr.tenant_id());
    assert!(acr.aad().authority().ends_with("/aad/"));
    let reply = post_form(
        acr.addr(),
        &path,
        &[
            ("grant_type", "client_credentials"),
            ("client_id", WRITER),
            ("client_secret", "anything"),
            ("scope", "https://containerregistry.azure.net/.default"),
        ],
    );
    assert_eq!(reply.status, 200, "{reply:?}");
    let body = reply.json();
    assert_eq!(body["token_type"], "Bearer");
    let token = body["access_token"].as_str().unwrap();
    assert_eq!(claims(token)["oid"], WRITER);
    assert_eq!(exchange(&acr, token, &[]).status, 200);
    let wrong_tenant = post_form(
        acr.addr(),
        "/aad/other/oauth2/v2.0/token",
        &[
            ("grant_type", "client_credentials"),
            ("client_id", WRITER),
            ("client_secret", "x"),
            ("scope", "x/.default"),
        ],
    );
    assert_eq!(wrong_tenant.status, 400);
    assert!(
        wrong_tenant.json()["error_description"]
            .as_str()
            .unwrap()
            .contains("AADSTS90002")
    );
    assert_eq!(acr.stats().aad_tokens, 1);
}

#[test]
fn https_by_default_with_http2_and_locations_back_at_the_emulator() {
    let acr = AcrEmulator::start(AcrEmulatorOptions {
        users: vec![User::new("admin", "admin-pw", vec![Grant::everything()])],
        ..Default::default()
    })
    .unwrap();
    assert!(acr.url().starts_with("https://127.0.0.1:"));
    let ca = acr.ca_file().unwrap();
    let curl = |args: &[&str]| {
        let out = Command::new("curl")
            .args(["-sS", "--http2", "--cacert"])
            .arg(&ca)
            .args(args)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).unwrap()
    };
    let head = curl(&["-D", "-", "-o", "/dev/null", &format!("{}/v2/", acr.url())]);
    assert!(head.starts_with("HTTP/2 401"), "{head}");
    let body = curl(&[
        "-u",
        "admin:admin-pw",
        &format!(
            "{}/oauth2/token?service={}&scope=repository:tls/x:pull,push",
            acr.url(),
            acr.service()
        ),
    ]);
    let token: serde_json::Value = serde_json::from_str(&body).unwrap();
    let auth = format!(
        "Authorization: Bearer {}",
        token["access_token"].as_str().unwrap()
    );
    let upload = curl(&[
        "-D",
        "-",
        "-o",
        "/dev/null",
        "-X",
        "POST",
        "-H",
        &auth,
        &format!("{}/v2/tls/x/blobs/uploads/", acr.url()),
    ]);
    assert!(upload.starts_with("HTTP/2 202"), "{upload}");
    let location = upload
        .lines()
        .find_map(|l| l.strip_prefix("location: "))
        .unwrap_or_else(|| panic!("no location in {upload}"));
    assert!(
        location.starts_with(&format!("{}/v2/tls/x/blobs/uploads/", acr.url())),
        "{location}"
    );
}

#[test]
fn large_blobs_stream_through_the_proxy() {
    let acr = start(AcrEmulatorOptions::default());
    // 12 MiB of non-repeating bytes, digested by coreutils (the tests have no hash crate).
    let data: Vec<u8> = (0u32..12 << 20)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
        .collect();
    let mut sha = Command::new("sha256sum")
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    std::io::Write::write_all(sha.stdin.as_mut().unwrap(), &data).unwrap();
    drop(sha.stdin.take());
    let out = String::from_utf8(sha.wait_with_output().unwrap().stdout).unwrap();
    let digest = format!("sha256:{}", &out[..64]);

    let refresh = acr.mint_refresh_token(WRITER).unwrap();
    let token = access_token(&acr, &refresh, "repository:big:pull,push");
    let auth = bearer(&token);
    let started = start_upload(acr.addr(), "big", &token);
    assert_eq!(started.status, 202, "{started:?}");
    let location = started.header("Location").unwrap();
    let put = format!("{location}&digest={}", encode(&digest));
    let done = crate::client::request(
        acr.addr(),
        "PUT",
        &put,
        &[
            ("Authorization", &auth),
            ("Content-Type", "application/octet-stream"),
        ],
        &data,
    );
    assert_eq!(done.status, 201, "{done:?}");
    let pulled = get(
        acr.addr(),
        &format!("/v2/big/blobs/{digest}"),
        &[("Authorization", &auth)],
    );
    assert_eq!(pulled.status, 200);
    assert_eq!(pulled.body.len(), data.len());
    assert!(pulled.body == data, "the pulled blob differs");
}
