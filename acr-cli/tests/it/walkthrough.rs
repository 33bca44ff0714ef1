//! The seed walkthroughs ("Working with OCI Artifacts using Azure Container Registry" and the
//! ORAS-on-ACR guide) replayed step by step with `acr`, against the ACR emulator (a real
//! docker-registry behind ACR's token endpoints) instead of Azure.

use std::process::Command;

use acr_testkit::{AcrEmulator, AcrEmulatorOptions, Grant, Registry, RegistryOptions, User};

use crate::{Env, digest_line};

#[test]
fn seed_walkthrough_end_to_end() {
    let acr = AcrEmulator::start(AcrEmulatorOptions {
        tls: false,
        users: vec![User::new(
            "myacr",
            "admin-password",
            vec![Grant::everything()],
        )],
        ..AcrEmulatorOptions::default()
    })
    .unwrap();
    let second = Registry::start(RegistryOptions::default()).unwrap();
    let registry = acr.host();
    let env = Env::new();

    // Step 1: log in with the admin user, then with a token and the all-zero user name.
    let out = env.acr_stdin(
        &[
            "login",
            &registry,
            "--username",
            "myacr",
            "--password-stdin",
        ],
        b"admin-password\n",
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let token = acr.mint_refresh_token("walkthrough-user").unwrap();
    let out = env.ok(&[
        "login",
        &registry,
        "--username",
        "00000000-0000-0000-0000-000000000000",
        "--password",
        &token,
    ]);
    assert!(out.contains("Login Succeeded"), "{out}");
    let config = std::fs::read_to_string(env.path("docker/config.json")).unwrap();
    assert!(
        config.contains("identitytoken"),
        "the refresh token is what gets stored: {config}"
    );

    // Step 2: sample files.
    env.write("config.json", br#"{"app":"myapp","version":"1.0"}"#);
    env.write("readme.txt", b"This is a sample artifact\n");
    env.write("chart.tgz", b"\x1f\x8b fake chart");

    // Step 3: push one file, several files with media types, a custom media type.
    let config_digest = digest_line(&env.ok(&[
        "push",
        &format!("{registry}/samples/config:v1"),
        "config.json",
    ]));
    env.ok(&[
        "push",
        &format!("{registry}/samples/myapp:v1"),
        "config.json:application/json",
        "readme.txt:text/plain",
    ]);
    env.ok(&[
        "push",
        &format!("{registry}/samples/helm-chart:v1"),
        "chart.tgz:application/vnd.cncf.helm.chart.content.v1.tar+gzip",
    ]);
    // The second guide: an artifact type and a readme.
    env.ok(&[
        "push",
        &format!("{registry}/samples/artifact:readme"),
        "--artifact-type",
        "readme/example",
        "readme.txt:text/plain",
    ]);

    // Step 4: list repositories and tags.
    let repos = env.ok(&["repo", "ls", &registry]);
    for name in [
        "samples/artifact",
        "samples/config",
        "samples/helm-chart",
        "samples/myapp",
    ] {
        assert!(
            repos.lines().any(|l| l == name),
            "{name} missing from:\n{repos}"
        );
    }
    assert_eq!(
        env.ok(&["repo", "tags", &format!("{registry}/samples/config")]),
        "v1\n"
    );

    // Step 5: pull into the current folder and into --output.
    std::fs::create_dir_all(env.path("here")).unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_acr"))
        .args(["pull", &format!("{registry}/samples/config:v1")])
        .current_dir(env.path("here"))
        .env("DOCKER_CONFIG", env.path("docker"))
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(
        std::fs::read(env.path("here/config.json")).unwrap(),
        br#"{"app":"myapp","version":"1.0"}"#
    );
    env.ok(&[
        "pull",
        &format!("{registry}/samples/myapp:v1"),
        "--output",
        "./artifacts/",
    ]);
    assert_eq!(
        std::fs::read(env.path("artifacts/readme.txt")).unwrap(),
        b"This is a sample artifact\n"
    );
    env.ok(&[
        "pull",
        "-o",
        "./download",
        &format!("{registry}/samples/artifact:readme"),
    ]);
    assert!(env.path("download/readme.txt").is_file());

    // Step 6: inspect.
    let manifest: serde_json::Value = serde_json::from_str(&env.ok(&[
        "manifest",
        "fetch",
        &format!("{registry}/samples/myapp:v1"),
    ]))
    .unwrap();
    assert_eq!(manifest["layers"][0]["mediaType"], "application/json");
    assert_eq!(manifest["layers"][1]["mediaType"], "text/plain");
    let pretty = env.ok(&[
        "manifest",
        "fetch",
        "--pretty",
        &format!("{registry}/samples/artifact:readme"),
    ]);
    assert!(
        pretty.contains("\"artifactType\": \"readme/example\""),
        "{pretty}"
    );
    let tree = env.ok(&["discover", &format!("{registry}/samples/config:v1")]);
    assert!(
        tree.starts_with(&format!("{registry}/samples/config:v1 ({config_digest})")),
        "{tree}"
    );

    // Step 7: copy between registries (the second one anonymous, plain docker-registry).
    env.ok(&[
        "copy",
        &format!("{registry}/samples/config:v1"),
        &format!("{}/samples/config:v1", second.host()),
    ]);
    assert_eq!(
        env.ok(&["resolve", &format!("{}/samples/config:v1", second.host())])
            .trim(),
        config_digest
    );

    // Step 8: delete.
    env.ok(&[
        "manifest",
        "delete",
        &format!("{registry}/samples/artifact:readme"),
    ]);
    let err = env.fails(&["pull", &format!("{registry}/samples/artifact:readme")]);
    assert!(err.contains("MANIFEST_UNKNOWN"), "{err}");

    env.ok(&["logout", &registry]);
}

#[test]
fn azure_ad_logins_store_only_the_acr_refresh_token() {
    let acr = AcrEmulator::start(AcrEmulatorOptions::default()).unwrap();
    let registry = acr.host();
    let ca = acr.ca_file().unwrap();
    let ca = ca.to_str().unwrap();
    let env = Env::new();
    env.write("f.txt", b"from an AAD login");

    // An AAD token at hand (a CI pipeline's), on standard input.
    let aad = acr.mint_aad_token("pipeline").unwrap();
    let out = env.acr_stdin(
        &["login", &registry, "--aad-token-stdin", "--ca-file", ca],
        aad.as_bytes(),
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let config = std::fs::read_to_string(env.path("docker/config.json")).unwrap();
    assert!(
        config.contains("identitytoken") && !config.contains(&aad),
        "only the ACR refresh token is stored"
    );
    env.ok(&[
        "push",
        &format!("{registry}/aad/files:v1"),
        "f.txt",
        "--ca-file",
        ca,
    ]);
    assert_eq!(acr.stats().exchanges, 1);

    // The credential chain, with the environment's client secret against the emulator's Entra ID.
    let out = Command::new(env!("CARGO_BIN_EXE_acr"))
        .args([
            "login",
            &registry,
            "--aad",
            "--aad-source",
            "env",
            "--ca-file",
            ca,
        ])
        .current_dir(env.path(""))
        .env("DOCKER_CONFIG", env.path("docker"))
        .env("AZURE_TENANT_ID", acr.tenant_id())
        .env("AZURE_CLIENT_ID", "ci-app")
        .env("AZURE_CLIENT_SECRET", "app-secret")
        .env("AZURE_AUTHORITY_HOST", acr.url())
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        !std::fs::read_to_string(env.path("docker/config.json"))
            .unwrap()
            .contains("app-secret")
    );
    env.ok(&[
        "pull",
        &format!("{registry}/aad/files:v1"),
        "-o",
        "out",
        "--ca-file",
        ca,
    ]);
    assert_eq!(
        std::fs::read(env.path("out/f.txt")).unwrap(),
        b"from an AAD login"
    );

    // Without any source configured, the error lists what was tried.
    let out = Command::new(env!("CARGO_BIN_EXE_acr"))
        .args([
            "login",
            &registry,
            "--aad",
            "--aad-source",
            "env",
            "--ca-file",
            ca,
        ])
        .env("DOCKER_CONFIG", env.path("docker"))
        .env_remove("AZURE_CLIENT_SECRET")
        .env_remove("AZURE_CLIENT_ID")
        .env_remove("AZURE_TENANT_ID")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("AZURE_"), "{err}");
}

#[test]
fn acr_management_commands() {
    let acr = AcrEmulator::start(AcrEmulatorOptions {
        tls: false,
        users: vec![User::new("admin", "pw", vec![Grant::everything()])],
        ..AcrEmulatorOptions::default()
    })
    .unwrap();
    let registry = acr.host();
    let env = Env::new();
    let out = env.acr_stdin(
        &["login", &registry, "-u", "admin", "--password-stdin"],
        b"pw\n",
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let repo = format!("{registry}/mgmt/app");
    for i in 1..=3 {
        env.write("f.txt", format!("build {i}").as_bytes());
        env.ok(&["push", &format!("{repo}:v{i}"), "f.txt"]);
        std::thread::sleep(std::time::Duration::from_millis(1100));
    }
    // Tagging still works beside the tag subcommands.
    env.ok(&["tag", &format!("{repo}:v3"), "latest"]);

    let show: serde_json::Value = serde_json::from_str(&env.ok(&["repo", "show", &repo])).unwrap();
    assert_eq!(show["imageName"], "mgmt/app");
    assert_eq!(show["tagCount"], 4);
    let listed = env.ok(&["manifest", "list", &repo, "--orderby", "time-desc"]);
    assert_eq!(listed.lines().count(), 3, "{listed}");
    assert!(
        listed.lines().next().unwrap().contains("latest"),
        "newest first: {listed}"
    );
    let tags: serde_json::Value =
        serde_json::from_str(&env.ok(&["tag", "list", &repo, "--format", "json"])).unwrap();
    assert_eq!(tags.as_array().unwrap().len(), 4);

    // Lock v1: it can be neither overwritten nor deleted, and the errors say so.
    let locked: serde_json::Value = serde_json::from_str(&env.ok(&[
        "tag",
        "update",
        &format!("{repo}:v1"),
        "--write-enabled",
        "false",
        "--delete-enabled",
        "false",
    ]))
    .unwrap();
    assert_eq!(locked["changeableAttributes"]["writeEnabled"], false);
    env.write("g.txt", b"overwrite attempt");
    let err = env.fails(&["push", &format!("{repo}:v1"), "g.txt"]);
    assert!(
        err.to_lowercase().contains("disallowed")
            || err.contains("locked")
            || err.contains("not allowed"),
        "{err}"
    );
    let err = env.fails(&["tag", "delete", &format!("{repo}:v1")]);
    assert!(err.contains("v1"), "{err}");

    // Purge: keep the newest, the locked one is skipped and reported.
    let dry = env.ok(&["purge", &repo, "--keep", "1", "--dry-run"]);
    assert!(
        dry.contains("Would delete") && dry.contains("locked"),
        "{dry}"
    );
    assert_eq!(
        env.ok(&["manifest", "list", &repo]).lines().count(),
        3,
        "a dry run deletes nothing"
    );
    let done = env.ok(&["purge", &repo, "--keep", "1"]);
    assert!(done.contains("1 deleted, 1 locked, 1 kept"), "{done}");
    assert_eq!(env.ok(&["manifest", "list", &repo]).lines().count(), 2);

    env.ok(&[
        "tag",
        "update",
        &format!("{repo}:v1"),
        "--write-enabled",
        "true",
        "--delete-enabled",
        "true",
    ]);
    env.ok(&["tag", "delete", &format!("{repo}:v1")]);
    let show: serde_json::Value = serde_json::from_str(&env.ok(&["repo", "show", &repo])).unwrap();
    assert_eq!(show["tagCount"], 2, "{show}");
    env.ok(&["repo", "delete", &repo]);
    assert!(!env.ok(&["repo", "ls", &registry]).contains("mgmt/app"));
}
