//! `acr push` and `acr pull` killed mid-transfer (SIGKILL) and run again: the push resumes
//! where the registry has the upload (sending only what is missing), the pull finishes with the
//! right file and no leftovers.

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use acr_testkit::{Fault, FaultAction, FaultProxy, Registry, RegistryOptions};

use crate::{Env, digest_line};

const MIB: usize = 1 << 20;

fn spawn(env: &Env, args: &[&str]) -> Child {
    Command::new(env!("CARGO_BIN_EXE_acr"))
        .args(args)
        .current_dir(env.path(""))
        .env("DOCKER_CONFIG", env.path("docker"))
        .env("XDG_CACHE_HOME", env.path("cache"))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap()
}

/// Waits until `ready` holds (polling), or panics after 30 s.
fn wait_for(what: &str, mut ready: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(30);
    while !ready() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn data(len: usize) -> Vec<u8> {
    let mut x = 0x2545_f491_4f6c_dd1du64;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        })
        .collect()
}

#[test]
fn a_killed_push_resumes_where_the_registry_is() {
    let registry = Registry::start(RegistryOptions::default()).unwrap();
    let proxy = FaultProxy::start(&registry.base_url(), None).unwrap();
    let plan = proxy.plan();
    let env = Env::new();
    let content = data(40 * MIB);
    env.write("big.bin", &content);
    let reference = format!("{}/resume/push:v1", proxy.host());

    // The network swallows the third chunk (the registry never sees it): kill the push then.
    plan.add(
        Fault::new(FaultAction::Hang(Duration::from_secs(60)))
            .on("PATCH", "/blobs/uploads/")
            .skip(2)
            .times(1),
    );
    let mut child = spawn(
        &env,
        &[
            "push",
            &reference,
            "big.bin",
            "--chunk-size",
            &(8 * MIB).to_string(),
        ],
    );
    wait_for("the stalled chunk", || {
        plan.requests()
            .iter()
            .any(|r| r.method == "PATCH" && r.fault.is_some())
    });
    std::thread::sleep(Duration::from_millis(300));
    child.kill().unwrap();
    child.wait().unwrap();
    let saved: Vec<_> = std::fs::read_dir(env.path("cache/acr/uploads"))
        .unwrap()
        .collect();
    assert_eq!(saved.len(), 1, "the upload's position is saved");

    plan.clear();
    plan.reset_stats();
    let before = plan.requests().len();
    let out = env.ok(&[
        "push",
        &reference,
        "big.bin",
        "--chunk-size",
        &(8 * MIB).to_string(),
    ]);
    let digest = digest_line(&out);
    let resumed: Vec<_> = plan.requests().into_iter().skip(before).collect();
    let first_patch = resumed
        .iter()
        .find(|r| r.method == "PATCH")
        .expect("chunks were sent");
    let start: usize = first_patch
        .content_range
        .as_deref()
        .unwrap()
        .split('-')
        .next()
        .unwrap()
        .parse()
        .unwrap();
    assert!(
        start >= 16 * MIB,
        "resumed from the registry's offset, not from 0: {first_patch:?}"
    );
    assert!(
        plan.stats().request_body_bytes <= (40 * MIB - start) as u64 + 4096,
        "only the rest was sent: {:?}",
        plan.stats()
    );
    assert!(
        std::fs::read_dir(env.path("cache/acr/uploads"))
            .unwrap()
            .next()
            .is_none(),
        "state removed when done"
    );

    env.ok(&[
        "pull",
        &format!("{}/resume/push:v1", registry.host()),
        "-o",
        "back",
    ]);
    assert!(
        std::fs::read(env.path("back/big.bin")).unwrap() == content,
        "the blob is exactly the file ({digest})"
    );
}

#[test]
fn a_killed_pull_finishes_on_the_next_run_without_leftovers() {
    let registry = Registry::start(RegistryOptions::default()).unwrap();
    let proxy = FaultProxy::start(&registry.base_url(), None).unwrap();
    let plan = proxy.plan();
    let env = Env::new();
    let content = data(24 * MIB);
    env.write("big.bin", &content);
    env.ok(&[
        "push",
        &format!("{}/resume/pull:v1", registry.host()),
        "big.bin",
    ]);

    // The blob download stops sending after 5 MiB: kill the pull while it waits.
    plan.add(
        Fault::new(FaultAction::Stall {
            after: (5 * MIB) as u64,
            duration: Duration::from_secs(60),
        })
        .on("GET", "/blobs/sha256:")
        .times(1),
    );
    let mut child = spawn(
        &env,
        &[
            "pull",
            &format!("{}/resume/pull:v1", proxy.host()),
            "-o",
            "out",
        ],
    );
    wait_for("the stalled download", || {
        plan.requests()
            .iter()
            .any(|r| r.method == "GET" && r.fault.is_some())
    });
    std::thread::sleep(Duration::from_millis(500));
    child.kill().unwrap();
    child.wait().unwrap();
    assert!(
        !env.path("out/big.bin").exists(),
        "no half-written file in place"
    );

    plan.clear();
    env.ok(&[
        "pull",
        &format!("{}/resume/pull:v1", proxy.host()),
        "-o",
        "out",
    ]);
    assert!(std::fs::read(env.path("out/big.bin")).unwrap() == content);
    let names: Vec<String> = std::fs::read_dir(env.path("out"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(names, ["big.bin"], "no partial files left");
    let resumed = plan
        .requests()
        .into_iter()
        .rev()
        .find(|r| r.method == "GET" && r.path.contains("/blobs/"))
        .unwrap();
    assert!(
        resumed
            .range
            .as_deref()
            .is_some_and(|r| r.starts_with("bytes=") && !r.starts_with("bytes=0-")),
        "the second run asked only for the rest: {resumed:?}"
    );
}
