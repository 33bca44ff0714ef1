//! The `acr` binary end to end against a real docker-registry.

mod interop;
mod resume;
mod snapshots;
mod walkthrough;

use std::path::Path;
use std::process::{Command, Output};

use acr_testkit::{Auth, BASIC_PASSWORD, BASIC_USER, Registry, RegistryOptions};

pub(crate) struct Env {
    dir: tempfile::TempDir,
}

impl Env {
    pub(crate) fn new() -> Self {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(dir.path().join("docker")).unwrap();
        Self { dir }
    }

    pub(crate) fn path(&self, name: &str) -> std::path::PathBuf {
        self.dir.path().join(name)
    }

    pub(crate) fn write(&self, name: &str, content: &[u8]) {
        std::fs::write(self.path(name), content).unwrap();
    }

    pub(crate) fn acr(&self, args: &[&str]) -> Output {
        self.acr_stdin(args, b"")
    }

    pub(crate) fn acr_stdin(&self, args: &[&str], stdin: &[u8]) -> Output {
        use std::io::Write;
        let mut child = Command::new(env!("CARGO_BIN_EXE_acr"))
            .args(args)
            .current_dir(self.dir.path())
            .env("DOCKER_CONFIG", self.path("docker"))
            .env("XDG_CACHE_HOME", self.path("cache"))
            .env_remove("ACR_PASSWORD")
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        child.stdin.take().unwrap().write_all(stdin).unwrap();
        child.wait_with_output().unwrap()
    }

    /// Runs `acr`, expects success, returns stdout.
    pub(crate) fn ok(&self, args: &[&str]) -> String {
        let out = self.acr(args);
        assert!(
            out.status.success(),
            "acr {args:?} failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).unwrap()
    }

    /// Runs `acr`, expects exit code 1, returns stderr.
    pub(crate) fn fails(&self, args: &[&str]) -> String {
        let out = self.acr(args);
        assert_eq!(
            out.status.code(),
            Some(1),
            "acr {args:?} should fail: {}",
            String::from_utf8_lossy(&out.stdout)
        );
        String::from_utf8(out.stderr).unwrap()
    }
}

pub(crate) fn digest_line(stdout: &str) -> String {
    stdout
        .lines()
        .find_map(|l| l.strip_prefix("Digest: "))
        .expect("a Digest: line")
        .to_owned()
}

#[test]
fn push_list_pull_tag_resolve_fetch_delete() {
    let registry = Registry::start(RegistryOptions::default()).unwrap();
    let env = Env::new();
    env.write("hello.txt", b"hello\n");
    env.write("sbom.json", br#"{"spdx":true}"#);
    let repo = format!("{}/cli/files", registry.host());

    let out = env.ok(&[
        "push",
        &format!("{repo}:v1,stable"),
        "hello.txt",
        "sbom.json:application/spdx+json",
        "--artifact-type",
        "application/vnd.test.v1",
        "-a",
        "k=v",
    ]);
    assert!(out.contains(&format!("Pushed {repo}:v1\n")), "{out}");
    assert!(out.contains(&format!("Pushed {repo}:stable\n")), "{out}");
    assert!(
        out.contains("ArtifactType: application/vnd.test.v1"),
        "{out}"
    );
    let digest = digest_line(&out);

    assert_eq!(env.ok(&["repo", "tags", &repo]), "stable\nv1\n");
    assert_eq!(env.ok(&["repo", "ls", &registry.host()]), "cli/files\n");
    let json: serde_json::Value =
        serde_json::from_str(&env.ok(&["repo", "tags", &repo, "--format", "json"])).unwrap();
    assert_eq!(json["tags"], serde_json::json!(["stable", "v1"]));
    assert_eq!(
        env.ok(&["resolve", &format!("{repo}:stable")]).trim(),
        digest
    );

    let manifest: serde_json::Value =
        serde_json::from_str(&env.ok(&["manifest", "fetch", &format!("{repo}:v1")])).unwrap();
    assert_eq!(manifest["artifactType"], "application/vnd.test.v1");
    assert_eq!(manifest["annotations"]["k"], "v");
    assert_eq!(manifest["layers"][1]["mediaType"], "application/spdx+json");
    assert_eq!(
        manifest["layers"][1]["annotations"]["org.opencontainers.image.title"],
        "sbom.json"
    );
    // The raw bytes hash to the digest.
    let raw = env
        .acr(&["manifest", "fetch", &format!("{repo}@{digest}")])
        .stdout;
    assert!(
        oci_spec_types::Digest::parse(&digest)
            .unwrap()
            .matches(&raw)
    );

    env.ok(&["pull", &format!("{repo}:v1"), "-o", "out"]);
    assert_eq!(
        std::fs::read(env.path("out/hello.txt")).unwrap(),
        b"hello\n"
    );
    assert_eq!(
        std::fs::read(env.path("out/sbom.json")).unwrap(),
        br#"{"spdx":true}"#
    );
    // Pulling again skips files already there with the right content.
    let again = env.acr(&["pull", &format!("{repo}:v1"), "-o", "out"]);
    assert!(
        String::from_utf8_lossy(&again.stderr).contains("Skipped"),
        "{again:?}"
    );

    env.ok(&["tag", &format!("{repo}:v1"), "v2", "v3"]);
    assert_eq!(env.ok(&["repo", "tags", &repo]), "stable\nv1\nv2\nv3\n");

    // Tag-only delete: docker-registry has no tag API; only the explicit workaround works,
    // and it leaves the manifest and its other tags alone.
    let err = env.fails(&["untag", &format!("{repo}:v3")]);
    assert!(
        err.contains("no API to delete only a tag") && err.contains("--via-placeholder"),
        "{err}"
    );
    env.ok(&["untag", &format!("{repo}:v3"), "--via-placeholder"]);
    assert_eq!(env.ok(&["repo", "tags", &repo]), "stable\nv1\nv2\n");
    assert_eq!(env.ok(&["resolve", &format!("{repo}:v2")]).trim(), digest);

    let layer = manifest["layers"][0]["digest"].as_str().unwrap();
    let blob = env.acr(&["blob", "fetch", &format!("{repo}@{layer}"), "-o", "-"]);
    assert_eq!(blob.stdout, b"hello\n");

    let out = env.ok(&["manifest", "delete", &format!("{repo}:v1")]);
    assert!(out.contains(&digest), "{out}");
    let err = env.fails(&["resolve", &format!("{repo}:v1")]);
    assert!(err.contains("not found"), "{err}");
}

#[test]
fn oci_layout_is_a_target_without_a_registry() {
    let env = Env::new();
    env.write("a.txt", b"layout content");
    let out = env.ok(&["push", "--oci-layout", "layout:v1", "a.txt"]);
    assert!(out.contains("Pushed layout:v1"), "{out}");
    assert!(Path::new(&env.path("layout/oci-layout")).is_file());
    let out = env.ok(&[
        "pull",
        "--oci-layout",
        "layout:v1",
        "-o",
        "back",
        "--format",
        "json",
    ]);
    let json: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(json["files"][0]["size"], 14);
    assert_eq!(
        std::fs::read(env.path("back/a.txt")).unwrap(),
        b"layout content"
    );
}

#[test]
fn login_stores_credentials_that_later_commands_use() {
    let registry = Registry::start(RegistryOptions {
        auth: Auth::Basic,
        ..Default::default()
    })
    .unwrap();
    let env = Env::new();
    env.write("f.txt", b"secret stuff");
    let repo = format!("{}/private/files", registry.host());

    let err = env.fails(&["push", &format!("{repo}:v1"), "f.txt"]);
    assert!(err.contains("asks for a user name and password"), "{err}");

    let err = String::from_utf8(
        env.acr_stdin(
            &[
                "login",
                &registry.host(),
                "-u",
                BASIC_USER,
                "--password-stdin",
            ],
            b"wrong\n",
        )
        .stderr,
    )
    .unwrap();
    assert!(err.contains("login to") && err.contains("failed"), "{err}");
    assert!(
        !env.path("docker/config.json").exists(),
        "a refused credential is not stored"
    );

    let out = env.acr_stdin(
        &[
            "login",
            &registry.host(),
            "-u",
            BASIC_USER,
            "--password-stdin",
        ],
        format!("{BASIC_PASSWORD}\n").as_bytes(),
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let config = env.path("docker/config.json");
    use std::os::unix::fs::PermissionsExt;
    assert_eq!(
        std::fs::metadata(&config).unwrap().permissions().mode() & 0o777,
        0o600
    );
    assert!(
        !std::fs::read_to_string(&config)
            .unwrap()
            .contains(BASIC_PASSWORD),
        "stored base64, not in clear"
    );

    env.ok(&["push", &format!("{repo}:v1"), "f.txt"]);
    env.ok(&["pull", &format!("{repo}:v1"), "-o", "out"]);
    assert_eq!(
        std::fs::read(env.path("out/f.txt")).unwrap(),
        b"secret stuff"
    );

    assert!(env.ok(&["logout", &registry.host()]).contains("Removed"));
    let err = env.fails(&["repo", "tags", &repo]);
    assert!(err.contains("user name and password"), "{err}");
}

#[test]
fn a_broken_credential_helper_falls_back_to_the_file() {
    let registry = Registry::start(RegistryOptions {
        auth: Auth::Basic,
        ..Default::default()
    })
    .unwrap();
    let env = Env::new();
    // What Docker Desktop leaves behind on a machine without it, plus a usable auths entry.
    let auth = format!("{BASIC_USER}:{BASIC_PASSWORD}");
    let encoded = base64_encode(auth.as_bytes());
    env.write(
        "docker/config.json",
        format!(
            r#"{{"credsStore":"desktop-missing","auths":{{"{}":{{"auth":"{encoded}"}}}}}}"#,
            registry.host()
        )
        .as_bytes(),
    );
    env.write("x.txt", b"x");
    let out = env.acr(&[
        "push",
        &format!("{}/fallback/x:v1", registry.host()),
        "x.txt",
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let said = String::from_utf8_lossy(&out.stderr);
    assert!(
        said.contains("docker-credential-desktop-missing is not installed")
            && said.contains("instead"),
        "a clear warning: {said}"
    );
}

#[test]
fn bad_input_gets_clear_errors() {
    let env = Env::new();
    let err = env.fails(&["pull", "NotARegistry"]);
    assert!(err.starts_with("Error: invalid reference"), "{err}");
    let err = env.fails(&["push", "localhost:1/x:v1", "missing-file.txt"]);
    assert!(err.contains("missing-file.txt does not exist"), "{err}");
    let err = env.fails(&["pull", "localhost:1/x"]);
    assert!(err.contains("name a tag or digest"), "{err}");
    // Nothing listens on port 1: a connection error that names the registry.
    let err = env.fails(&["repo", "tags", "localhost:1/x"]);
    assert!(
        err.contains("cannot reach http://localhost:1/v2/x/tags/list"),
        "{err}"
    );
}

#[test]
fn every_command_has_help_with_examples() {
    let env = Env::new();
    for command in [
        vec!["push"],
        vec!["pull"],
        vec!["login"],
        vec!["logout"],
        vec!["resolve"],
        vec!["tag"],
        vec!["manifest", "fetch"],
        vec!["manifest", "delete"],
        vec!["blob", "fetch"],
        vec!["blob", "push"],
        vec!["blob", "delete"],
        vec!["repo", "tags"],
        vec!["repo", "ls"],
        vec!["repo", "show"],
        vec!["repo", "update"],
        vec!["repo", "delete"],
        vec!["attach"],
        vec!["discover"],
        vec!["copy"],
        vec!["untag"],
        vec!["purge"],
        vec!["manifest", "push"],
        vec!["manifest", "fetch-config"],
        vec!["manifest", "list"],
        vec!["manifest", "show"],
        vec!["manifest", "update"],
        vec!["completion"],
    ] {
        let mut args = command.clone();
        args.push("--help");
        let out = env.ok(&args);
        assert!(
            out.contains("Example"),
            "{command:?} --help has no example:\n{out}"
        );
    }
    assert!(env.ok(&["--version"]).starts_with("acr "));
    assert!(
        env.ok(&["manpage"]).contains(".TH acr 1"),
        "a manual page in roff"
    );
    let completion = env.ok(&["completion", "bash"]);
    assert!(completion.contains("_acr()"), "{completion}");
}

fn base64_encode(bytes: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::new();
    for chunk in bytes.chunks(3) {
        let b = [
            chunk[0],
            *chunk.get(1).unwrap_or(&0),
            *chunk.get(2).unwrap_or(&0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for i in 0..4 {
            out.push(if i <= chunk.len() {
                ALPHABET[((n >> (18 - 6 * i)) & 63) as usize] as char
            } else {
                '='
            });
        }
    }
    out
}

#[test]
fn attach_takes_folders_and_standard_input_as_push_does() {
    let registry = Registry::start(RegistryOptions::default()).unwrap();
    let env = Env::new();
    env.write("app.bin", b"application");
    std::fs::create_dir_all(env.path("evidence/logs")).unwrap();
    env.write("evidence/report.txt", b"all green");
    env.write("evidence/logs/build.log", b"built");
    let app = format!("{}/attach/app", registry.host());
    env.ok(&["push", &format!("{app}:v1"), "app.bin"]);

    let out = env.acr_stdin(
        &[
            "attach",
            &format!("{app}:v1"),
            "evidence",
            "-",
            "--artifact-type",
            "application/vnd.test.evidence",
        ],
        b"from a pipe",
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let attached = digest_line(&String::from_utf8_lossy(&out.stdout));
    env.ok(&["pull", &format!("{app}@{attached}"), "-o", "got"]);
    assert_eq!(
        std::fs::read(env.path("got/evidence/report.txt")).unwrap(),
        b"all green"
    );
    assert_eq!(
        std::fs::read(env.path("got/evidence/logs/build.log")).unwrap(),
        b"built"
    );
    assert_eq!(
        std::fs::read(env.path("got/stdin")).unwrap(),
        b"from a pipe"
    );

    let missing = env.acr(&[
        "attach",
        &format!("{app}:v1"),
        "nowhere.bin",
        "--artifact-type",
        "application/vnd.test.evidence",
    ]);
    assert!(!missing.status.success());
    assert!(
        String::from_utf8_lossy(&missing.stderr).contains("nowhere.bin does not exist"),
        "{}",
        String::from_utf8_lossy(&missing.stderr)
    );
}

#[test]
fn attach_discover_and_copy_with_referrers() {
    let registry = Registry::start(RegistryOptions::default()).unwrap();
    let other = Registry::start(RegistryOptions::default()).unwrap();
    let env = Env::new();
    env.write("app.bin", b"application");
    env.write("sig.json", br#"{"signed":true}"#);
    env.write("sbom.json", br#"{"spdx":1}"#);
    let app = format!("{}/graph/app", registry.host());

    let image = digest_line(&env.ok(&["push", &format!("{app}:v1"), "app.bin"]));
    let out = env.ok(&[
        "attach",
        &format!("{app}:v1"),
        "sig.json",
        "--artifact-type",
        "application/vnd.test.signature",
    ]);
    assert!(
        out.contains(&format!("Attached to {app}:v1 ({image})")),
        "{out}"
    );
    let sig = digest_line(&out);
    let sbom = digest_line(&env.ok(&[
        "attach",
        &format!("{app}@{image}"),
        "sbom.json",
        "--artifact-type",
        "application/spdx+json",
    ]));
    let sbom_sig = digest_line(&env.ok(&[
        "attach",
        &format!("{app}@{sbom}"),
        "sig.json",
        "--artifact-type",
        "application/vnd.test.signature",
    ]));

    let tree = env.ok(&["discover", &format!("{app}:v1")]);
    assert!(tree.starts_with(&format!("{app}:v1 ({image})\n")), "{tree}");
    for digest in [&sig, &sbom, &sbom_sig] {
        assert!(
            tree.contains(digest.as_str()),
            "{digest} missing from:\n{tree}"
        );
    }
    assert!(
        tree.contains("└── application/spdx+json") || tree.contains("├── application/spdx+json"),
        "{tree}"
    );

    let json: serde_json::Value = serde_json::from_str(&env.ok(&[
        "discover",
        &format!("{app}:v1"),
        "--format",
        "json",
        "--artifact-type",
        "application/spdx+json",
    ]))
    .unwrap();
    assert_eq!(json["referrers"].as_array().unwrap().len(), 1);
    assert_eq!(json["referrers"][0]["digest"], sbom.as_str());
    assert_eq!(
        json["referrers"][0]["referrers"][0]["digest"],
        sbom_sig.as_str(),
        "the filter applies to the first level only"
    );

    // Copy with referrers to another registry, then to an OCI layout and back.
    let dest = format!("{}/mirror/app", other.host());
    let out = env.ok(&[
        "copy",
        "-r",
        &format!("{app}:v1"),
        &format!("{dest}:prod"),
        "--format",
        "json",
    ]);
    let copied: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(copied["digest"], image.as_str());
    assert_eq!(env.ok(&["resolve", &format!("{dest}:prod")]).trim(), image);
    let tree = env.ok(&["discover", &format!("{dest}:prod")]);
    assert!(tree.contains(&sbom_sig), "referrers came along: {tree}");

    env.ok(&[
        "copy",
        &format!("{dest}:prod"),
        "--to-oci-layout",
        "backup:v1",
    ]);
    let restored = format!("{}/restored/app", registry.host());
    env.ok(&[
        "copy",
        "--from-oci-layout",
        "backup:v1",
        &format!("{restored}:v1"),
    ]);
    env.ok(&["pull", &format!("{restored}:v1"), "-o", "restored"]);
    assert_eq!(
        std::fs::read(env.path("restored/app.bin")).unwrap(),
        b"application"
    );

    // Within one registry the copy mounts: no blob bytes cross the client.
    let out = env.acr(&[
        "copy",
        &format!("{app}:v1"),
        &format!("{}/graph/same:v1", registry.host()),
    ]);
    assert!(out.status.success());
    let said = String::from_utf8_lossy(&out.stderr);
    assert!(said.contains("Copied 0 blobs, mounted 2"), "{said}");
}

#[test]
fn stdin_stdout_platforms_and_manifest_files() {
    let registry = Registry::start(RegistryOptions::default()).unwrap();
    let env = Env::new();
    let repo = format!("{}/streams/app", registry.host());

    // A blob of unknown length from standard input, named with --stdin-name.
    let content: Vec<u8> = (0..300_000u32).map(|i| (i % 241) as u8).collect();
    let out = env.acr_stdin(
        &[
            "push",
            &format!("{repo}:stdin"),
            "-",
            "--stdin-name",
            "data.bin",
            "--stdin-media-type",
            "application/octet-stream",
        ],
        &content,
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let manifest: serde_json::Value =
        serde_json::from_str(&env.ok(&["manifest", "fetch", &format!("{repo}:stdin")])).unwrap();
    assert_eq!(
        manifest["layers"][0]["annotations"]["org.opencontainers.image.title"],
        "data.bin"
    );
    assert_eq!(manifest["layers"][0]["size"], 300_000);
    assert_eq!(
        manifest["layers"][0]["mediaType"],
        "application/octet-stream"
    );

    // A single-file artifact to standard output, verified.
    let pulled = env.acr(&["pull", &format!("{repo}:stdin"), "-o", "-"]);
    assert!(pulled.status.success());
    assert_eq!(pulled.stdout, content);

    // An index of two platforms, pushed from a file; pull picks by --platform.
    env.write("a.txt", b"amd64 build");
    env.write("b.txt", b"arm64 build");
    let a = digest_line(&env.ok(&["push", &format!("{repo}:amd64"), "a.txt"]));
    let b = digest_line(&env.ok(&["push", &format!("{repo}:arm64"), "b.txt"]));
    let size = |tag: &str| {
        env.acr(&["manifest", "fetch", &format!("{repo}:{tag}")])
            .stdout
            .len()
    };
    let index = serde_json::json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.index.v1+json",
        "manifests": [
            {"mediaType": "application/vnd.oci.image.manifest.v1+json", "digest": a, "size": size("amd64"), "platform": {"os": "linux", "architecture": "amd64"}},
            {"mediaType": "application/vnd.oci.image.manifest.v1+json", "digest": b, "size": size("arm64"), "platform": {"os": "linux", "architecture": "arm64", "variant": "v8"}}
        ]
    });
    env.write("index.json", index.to_string().as_bytes());
    env.ok(&["manifest", "push", &format!("{repo}:multi"), "index.json"]);
    let err = env.fails(&["pull", &format!("{repo}:multi"), "-o", "x"]);
    assert!(
        err.contains("linux/amd64") && err.contains("linux/arm64/v8"),
        "{err}"
    );
    env.ok(&[
        "pull",
        &format!("{repo}:multi"),
        "--platform",
        "linux/arm64",
        "-o",
        "arm",
    ]);
    assert_eq!(
        std::fs::read(env.path("arm/b.txt")).unwrap(),
        b"arm64 build"
    );
    let err = env.fails(&[
        "pull",
        &format!("{repo}:multi"),
        "--platform",
        "windows/amd64",
        "-o",
        "win",
    ]);
    assert!(err.contains("no manifest for windows/amd64"), "{err}");

    // The config of an artifact is the empty JSON object.
    assert_eq!(
        env.acr(&["manifest", "fetch-config", &format!("{repo}:amd64")])
            .stdout,
        b"{}"
    );
}

#[test]
fn debug_logs_requests_but_never_secrets() {
    let registry = Registry::start(RegistryOptions {
        auth: Auth::Basic,
        ..Default::default()
    })
    .unwrap();
    let env = Env::new();
    env.write("f.txt", b"f");
    let repo = format!("{}/debug/app", registry.host());
    let out = env.acr(&[
        "push",
        &format!("{repo}:v1"),
        "f.txt",
        "-u",
        BASIC_USER,
        "-p",
        BASIC_PASSWORD,
        "--debug",
        "-H",
        "X-Custom-Header: header-value-1234",
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let log = String::from_utf8_lossy(&out.stderr);
    assert!(
        log.contains("method=PUT") && log.contains("status=201"),
        "the request log is there:\n{log}"
    );
    assert!(
        log.contains("blob uploaded") && log.contains("bytes=1 "),
        "a summary per file:\n{log}"
    );
    for secret in [BASIC_PASSWORD, "header-value-1234", "Basic ", "_state="] {
        assert!(
            !log.contains(secret),
            "{secret:?} leaked into the debug log:\n{log}"
        );
    }
}

#[test]
fn the_remaining_flags_do_what_they_say() {
    let registry = Registry::start(RegistryOptions::default()).unwrap();
    let tls = Registry::start(RegistryOptions {
        tls: true,
        ..Default::default()
    })
    .unwrap();
    let env = Env::new();
    env.write("a.txt", b"annotated");
    env.write("config.json", br#"{"kind":"demo"}"#);
    env.write(
        "annotations.json",
        br#"{"$manifest":{"org.opencontainers.image.description":"from a file"},"a.txt":{"com.example.role":"readme"}}"#,
    );
    let repo = format!("{}/flags/app", registry.host());

    // --annotation-file, --config FILE:TYPE, --image-spec v1.0, --export-manifest
    let out = env.ok(&[
        "push",
        &format!("{repo}:v1"),
        "a.txt",
        "--annotation-file",
        "annotations.json",
        "--config",
        "config.json:application/vnd.example.config+json",
        "--image-spec",
        "v1.0",
        "--export-manifest",
        "exported.json",
        "--plain-http",
    ]);
    let digest = digest_line(&out);
    let exported = std::fs::read(env.path("exported.json")).unwrap();
    assert!(
        oci_spec_types::Digest::parse(&digest)
            .unwrap()
            .matches(&exported),
        "the exported bytes are the pushed manifest"
    );
    let manifest: serde_json::Value = serde_json::from_slice(&exported).unwrap();
    assert_eq!(
        manifest["annotations"]["org.opencontainers.image.description"],
        "from a file"
    );
    assert_eq!(
        manifest["layers"][0]["annotations"]["com.example.role"],
        "readme"
    );
    assert_eq!(
        manifest["config"]["mediaType"],
        "application/vnd.example.config+json"
    );
    assert!(
        manifest.get("artifactType").is_none(),
        "image-spec v1.0 has no artifactType"
    );
    assert_eq!(
        env.acr(&["manifest", "fetch-config", &format!("{repo}:v1")])
            .stdout,
        br#"{"kind":"demo"}"#
    );
    let descriptor: serde_json::Value = serde_json::from_str(&env.ok(&[
        "manifest",
        "fetch",
        "--descriptor",
        &format!("{repo}:v1"),
    ]))
    .unwrap();
    assert_eq!(descriptor["digest"], digest.as_str());
    assert_eq!(descriptor["size"], exported.len());

    // --keep-old-files keeps a local change; without it the file is replaced.
    env.ok(&["pull", &format!("{repo}:v1"), "-o", "out"]);
    std::fs::write(env.path("out/a.txt"), b"local edit").unwrap();
    env.ok(&[
        "pull",
        &format!("{repo}:v1"),
        "-o",
        "out",
        "--keep-old-files",
    ]);
    assert_eq!(std::fs::read(env.path("out/a.txt")).unwrap(), b"local edit");
    env.ok(&["pull", &format!("{repo}:v1"), "-o", "out"]);
    assert_eq!(std::fs::read(env.path("out/a.txt")).unwrap(), b"annotated");

    // blob push / fetch -o FILE / delete
    let blob: serde_json::Value =
        serde_json::from_str(&env.ok(&["blob", "push", &repo, "config.json", "--format", "json"]))
            .unwrap();
    let blob_digest = blob["digest"].as_str().unwrap().to_owned();
    env.ok(&[
        "blob",
        "fetch",
        &format!("{repo}@{blob_digest}"),
        "-o",
        "blob.bin",
    ]);
    assert_eq!(
        std::fs::read(env.path("blob.bin")).unwrap(),
        br#"{"kind":"demo"}"#
    );
    env.ok(&["blob", "delete", &format!("{repo}@{blob_digest}")]);
    let err = env.fails(&[
        "blob",
        "fetch",
        &format!("{repo}@{blob_digest}"),
        "-o",
        "gone.bin",
    ]);
    assert!(err.contains("not found"), "{err}");

    // discover --format table
    env.ok(&[
        "attach",
        &format!("{repo}:v1"),
        "a.txt",
        "--artifact-type",
        "application/vnd.test.note",
    ]);
    let table = env.ok(&["discover", &format!("{repo}:v1"), "--format", "table"]);
    assert!(
        table.starts_with("DIGEST") && table.contains("application/vnd.test.note"),
        "{table}"
    );

    // --insecure reaches a TLS registry whose CA is not given; without it, a clear TLS error.
    let secure = format!("{}/flags/tls", tls.host());
    let err = env.fails(&["repo", "tags", &secure, "--ca-file", "/dev/null"]);
    assert!(err.contains("CA file"), "{err}");
    env.write("b.txt", b"b");
    let err = env.fails(&[
        "push",
        &format!("{secure}:v1"),
        "b.txt",
        "--ca-file",
        &env.path("annotations.json").to_string_lossy(),
    ]);
    assert!(
        err.to_lowercase().contains("ca file") || err.to_lowercase().contains("pem"),
        "{err}"
    );
    let ca = tls.ca_file().unwrap();
    env.ok(&[
        "push",
        &format!("{secure}:v1"),
        "b.txt",
        "--ca-file",
        ca.to_str().unwrap(),
    ]);
    assert_eq!(env.ok(&["repo", "tags", &secure, "--insecure"]), "v1\n");
}

#[test]
fn references_without_a_registry_use_the_environments() {
    let registry = Registry::start(RegistryOptions::default()).unwrap();
    let env = Env::new();
    env.write("r.txt", b"readme");
    let run = |args: &[&str]| {
        Command::new(env!("CARGO_BIN_EXE_acr"))
            .args(args)
            .current_dir(env.path(""))
            .env("DOCKER_CONFIG", env.path("docker"))
            .env("REGISTRY_ENDPOINT", format!("http://{}", registry.host()))
            .output()
            .unwrap()
    };
    let out = run(&["push", "samples/artifact:readme", "r.txt"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("Uploaded  "),
        "ORAS-like status lines"
    );
    assert_eq!(
        env.ok(&[
            "repo",
            "tags",
            &format!("{}/samples/artifact", registry.host())
        ]),
        "readme\n"
    );
    let out = run(&["repo", "tags", "samples/artifact"]);
    assert_eq!(String::from_utf8_lossy(&out.stdout), "readme\n");
}

#[test]
fn parallel_ranged_pull_gives_the_same_file() {
    let registry = Registry::start(RegistryOptions::default()).unwrap();
    let env = Env::new();
    let content: Vec<u8> = (0..(6u32 << 20))
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 24) as u8)
        .collect();
    env.write("six.bin", &content);
    let reference = format!("{}/ranges/six:v1", registry.host());
    env.ok(&["push", &reference, "six.bin"]);
    env.ok(&["pull", &reference, "-o", "out", "--parallel-ranges", "4"]);
    assert!(std::fs::read(env.path("out/six.bin")).unwrap() == content);
    let names: Vec<_> = std::fs::read_dir(env.path("out"))
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(names.len(), 1, "no partial left: {names:?}");
}
