//! The `acr` binary with the peer clients on one real registry: files pushed by `acr` are
//! pulled by the `oras` Python package and by skopeo, and the reverse.

use std::process::Command;

use acr_testkit::{Registry, RegistryOptions};

use crate::Env;

fn run(cmd: &mut Command) -> String {
    let out = cmd.output().unwrap_or_else(|e| {
        panic!("cannot run {cmd:?} ({e}); `cargo xtask test` installs the peer clients")
    });
    assert!(
        out.status.success(),
        "{cmd:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[test]
fn acr_and_the_peers_read_each_others_artifacts() {
    let registry = Registry::start(RegistryOptions::default()).unwrap();
    let env = Env::new();
    env.write("hello.txt", b"hello peers\n");
    env.write(
        "data.bin",
        &(0..200_000u32).map(|i| (i % 239) as u8).collect::<Vec<_>>(),
    );

    // acr -> oras-py
    let ours = format!("{}/interop/by-acr:v1", registry.host());
    env.ok(&["push", &ours, "hello.txt", "data.bin"]);
    let out = env.path("oras-out");
    run(Command::new("python3").arg("-c").arg(format!(
        "import oras.client\noras.client.OrasClient(insecure=True).pull(target={ours:?}, outdir={:?})",
        out.to_str().unwrap()
    )));
    assert_eq!(
        std::fs::read(out.join("hello.txt")).unwrap(),
        b"hello peers\n"
    );
    assert_eq!(
        std::fs::read(out.join("data.bin")).unwrap(),
        std::fs::read(env.path("data.bin")).unwrap()
    );

    // oras-py -> acr
    let theirs = format!("{}/interop/by-oras:v1", registry.host());
    run(Command::new("python3").arg("-c").arg(format!(
        "import oras.client, os\nos.chdir({:?})\noras.client.OrasClient(insecure=True).push(target={theirs:?}, files=['hello.txt', 'data.bin'], disable_path_validation=True)",
        env.path("").to_str().unwrap()
    )));
    env.ok(&["pull", &theirs, "-o", "from-oras"]);
    assert_eq!(
        std::fs::read(env.path("from-oras/data.bin")).unwrap(),
        std::fs::read(env.path("data.bin")).unwrap()
    );

    // acr (OCI layout) -> skopeo -> registry -> acr, and registry -> skopeo -> layout -> acr.
    env.ok(&["push", "--oci-layout", "layout:v1", "hello.txt"]);
    let via_skopeo = format!("{}/interop/by-skopeo", registry.host());
    run(Command::new("skopeo")
        .args(["copy", "--quiet", "--dest-tls-verify=false"])
        .arg(format!("oci:{}:v1", env.path("layout").display()))
        .arg(format!("docker://{via_skopeo}:v1")));
    env.ok(&["pull", &format!("{via_skopeo}:v1"), "-o", "from-skopeo"]);
    assert_eq!(
        std::fs::read(env.path("from-skopeo/hello.txt")).unwrap(),
        b"hello peers\n"
    );
    run(Command::new("skopeo")
        .args(["copy", "--quiet", "--src-tls-verify=false"])
        .arg(format!("docker://{ours}"))
        .arg(format!("oci:{}:v1", env.path("skopeo-layout").display())));
    env.ok(&[
        "pull",
        "--oci-layout",
        "skopeo-layout:v1",
        "-o",
        "from-skopeo-layout",
    ]);
    assert_eq!(
        std::fs::read(env.path("from-skopeo-layout/data.bin")).unwrap(),
        std::fs::read(env.path("data.bin")).unwrap()
    );
}

#[test]
fn include_subject_and_last() {
    let registry = Registry::start(RegistryOptions::default()).unwrap();
    let env = Env::new();
    env.write("app.bin", b"the app");
    env.write("sig.txt", b"the signature");
    let repo = format!("{}/interop/subject", registry.host());
    env.ok(&["push", &format!("{repo}:v1"), "app.bin"]);
    let sig = crate::digest_line(&env.ok(&[
        "attach",
        &format!("{repo}:v1"),
        "sig.txt",
        "--artifact-type",
        "application/vnd.test.sig",
    ]));
    env.ok(&[
        "pull",
        &format!("{repo}@{sig}"),
        "-o",
        "both",
        "--include-subject",
    ]);
    assert_eq!(
        std::fs::read(env.path("both/sig.txt")).unwrap(),
        b"the signature"
    );
    assert_eq!(std::fs::read(env.path("both/app.bin")).unwrap(), b"the app");

    env.ok(&["tag", &format!("{repo}:v1"), "v2", "v3"]);
    let after = env.ok(&["repo", "tags", &repo, "--last", "v1"]);
    assert!(
        after.lines().all(|t| t > "v1") && after.contains("v2") && after.contains("v3"),
        "{after}"
    );
}
