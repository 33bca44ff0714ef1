//! Snapshot tests of what users read: `--help` of every command and the plain and JSON output
//! of a push. Expected texts live in tests/snapshots/; `UPDATE_SNAPSHOTS=1 cargo test -p acr-cli`
//! rewrites them after a deliberate change (review the diff before committing).

use std::path::PathBuf;

use acr_testkit::{Registry, RegistryOptions};

use crate::Env;

fn check(name: &str, actual: &str) {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/snapshots")
        .join(format!("{name}.txt"));
    if std::env::var_os("UPDATE_SNAPSHOTS").is_some() {
        std::fs::write(&path, actual).unwrap();
        return;
    }
    let expected = std::fs::read_to_string(&path).unwrap_or_else(|_| {
        panic!(
            "no snapshot {}; run with UPDATE_SNAPSHOTS=1 to create it",
            path.display()
        )
    });
    assert!(
        expected == actual,
        "{name} changed; run with UPDATE_SNAPSHOTS=1 if intended.\n--- expected\n{expected}\n--- actual\n{actual}"
    );
}

#[test]
fn help_texts() {
    let env = Env::new();
    let commands: &[&[&str]] = &[
        &[],
        &["push"],
        &["pull"],
        &["attach"],
        &["discover"],
        &["copy"],
        &["login"],
        &["untag"],
        &["manifest"],
        &["blob"],
        &["repo"],
    ];
    for command in commands {
        let mut args = command.to_vec();
        args.push("--help");
        let name = if command.is_empty() {
            "help".to_owned()
        } else {
            format!("help-{}", command.join("-"))
        };
        check(&name, &env.ok(&args));
    }
}

/// Ports, digests and times differ per run; everything else must not.
fn redact(text: &str, registry: &Registry) -> String {
    let mut out = text.replace(&registry.host(), "REGISTRY");
    while let Some(start) = out.find("sha256:") {
        let end = (start + 7 + 64).min(out.len());
        out.replace_range(start..end, "DIGEST");
    }
    out
}

#[test]
fn push_output_plain_and_json() {
    let registry = Registry::start(RegistryOptions::default()).unwrap();
    let env = Env::new();
    env.write("a.txt", b"snapshot");
    let reference = format!("{}/snap/a:v1", registry.host());
    // Fixed creation time, so the digest and size are stable too.
    let plain = env.ok(&[
        "push",
        &reference,
        "a.txt",
        "-a",
        "org.opencontainers.image.created=2026-01-01T00:00:00Z",
    ]);
    check("push-plain", &redact(&plain, &registry));
    let json = env.ok(&[
        "push",
        &reference,
        "a.txt",
        "-a",
        "org.opencontainers.image.created=2026-01-01T00:00:00Z",
        "--format",
        "json",
    ]);
    check("push-json", &redact(&json, &registry));
    let tags = env.ok(&[
        "repo",
        "tags",
        &format!("{}/snap/a", registry.host()),
        "--format",
        "json",
    ]);
    check("repo-tags-json", &redact(&tags, &registry));
}
