//! `cargo xtask demo`: the README's main job. Pushes a multi-file artifact to a registry,
//! lists its tags, pulls it back and checks every file, printing what it did.
//!
//! With no `--registry`, it starts Debian's docker-registry on a free loopback port (installing
//! it with apt-get when absent) and stops it afterwards, so it needs no account and no setup.

use std::path::Path;

use anyhow::{Context, bail, ensure};

pub(crate) fn run(args: &[&str]) -> anyhow::Result<()> {
    let given = match args {
        [] => None,
        ["--registry", host] => Some((*host).to_owned()),
        _ => bail!("usage: cargo xtask demo [--registry HOST:PORT]"),
    };
    super::step("building the acr CLI");
    super::run(super::cargo().args(["build", "--quiet", "-p", "acr-cli"]))?;
    let acr = super::root().join("target/debug/acr");

    let started;
    let host = match given {
        Some(host) => host,
        None => {
            super::step("starting a local docker-registry");
            started = acr_testkit::Registry::start(acr_testkit::RegistryOptions::default())?;
            println!("registry: {}", started.base_url());
            started.host()
        }
    };

    let work = super::root().join("target/demo");
    let files_dir = work.join("files");
    let _ = std::fs::remove_dir_all(&work);
    std::fs::create_dir_all(&files_dir)?;
    let files = write_sample_files(&files_dir)?;
    // A private docker config, so the demo never reads or writes the user's credentials.
    let docker_config = work.join("docker-config");
    let acr_cmd = |args: &[&str]| {
        let mut cmd = std::process::Command::new(&acr);
        cmd.args(args)
            .current_dir(&files_dir)
            .env("DOCKER_CONFIG", &docker_config);
        cmd
    };
    let names: Vec<String> = files
        .iter()
        .map(|f| {
            f.file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default()
        })
        .collect();
    let with_types: Vec<String> = names
        .iter()
        .map(|n| {
            if n.ends_with(".json") {
                format!("{n}:application/json")
            } else {
                n.clone()
            }
        })
        .collect();

    let reference = format!("{host}/demo/files");
    super::step(&format!(
        "acr push {reference}:v1,latest (3 files; the 20 MiB one goes up in chunks)"
    ));
    let mut push = vec!["push".to_owned(), format!("{reference}:v1,latest")];
    push.extend(with_types.iter().cloned());
    push.extend(
        [
            "--artifact-type",
            "application/vnd.acr.demo.v1",
            "--annotation",
            "org.opencontainers.image.description=acr demo",
        ]
        .map(String::from),
    );
    super::run(&mut acr_cmd(
        &push.iter().map(String::as_str).collect::<Vec<_>>(),
    ))?;

    super::step(&format!("acr repo tags {reference}"));
    super::run(&mut acr_cmd(&["repo", "tags", &reference]))?;

    let pulled = work.join("pulled");
    super::step(&format!("acr pull {reference}:v1 -o target/demo/pulled"));
    super::run(&mut acr_cmd(&[
        "pull",
        &format!("{reference}:v1"),
        "-o",
        &pulled.to_string_lossy(),
    ]))?;
    compare(&files, &pulled)?;

    // The rest of the seed walkthrough: inspect, attach and discover, copy, delete.
    super::step(&format!("acr manifest fetch --pretty {reference}:v1"));
    super::run(&mut acr_cmd(&[
        "manifest",
        "fetch",
        "--pretty",
        &format!("{reference}:v1"),
    ]))?;
    std::fs::write(
        files_dir.join("signature.json"),
        br#"{"signed-by":"acr demo"}"#,
    )?;
    super::step(&format!("acr attach {reference}:v1 signature.json"));
    super::run(&mut acr_cmd(&[
        "attach",
        &format!("{reference}:v1"),
        "signature.json",
        "--artifact-type",
        "application/vnd.acr.demo.signature.v1",
    ]))?;
    super::step(&format!("acr discover {reference}:v1"));
    super::run(&mut acr_cmd(&["discover", &format!("{reference}:v1")]))?;
    let copy = format!("{host}/demo/copy:v1");
    super::step(&format!(
        "acr copy -r {reference}:v1 {copy} (same registry: blobs are mounted)"
    ));
    super::run(&mut acr_cmd(&[
        "copy",
        "-r",
        &format!("{reference}:v1"),
        &copy,
    ]))?;
    super::step(&format!("acr manifest delete {copy}"));
    super::run(&mut acr_cmd(&["manifest", "delete", &copy]))?;

    // The embedded default: the same round trip with no registry at all.
    let layout = work.join("layout");
    let layout_ref = format!("{}:v1", layout.display());
    super::step(&format!("acr push --oci-layout {layout_ref}"));
    let mut push = vec![
        "push".to_owned(),
        "--oci-layout".to_owned(),
        layout_ref.clone(),
    ];
    push.extend(with_types.iter().cloned());
    super::run(&mut acr_cmd(
        &push.iter().map(String::as_str).collect::<Vec<_>>(),
    ))?;
    let from_layout = work.join("pulled-from-layout");
    super::step("acr pull --oci-layout ... -o target/demo/pulled-from-layout");
    super::run(&mut acr_cmd(&[
        "pull",
        "--oci-layout",
        &layout_ref,
        "-o",
        &from_layout.to_string_lossy(),
    ]))?;
    compare(&files, &from_layout)?;

    println!(
        "\ndemo ok: {} files pushed to {reference}:v1 and to an OCI layout, pulled back identical",
        files.len()
    );
    Ok(())
}

/// The protocol crate's `push_pull` example (a push and pull through the sans-IO crate with a
/// minimal blocking HTTP client of its own) against a real registry, checked file by file.
pub(crate) fn protocol_example() -> anyhow::Result<()> {
    super::run(super::cargo().args([
        "build",
        "--quiet",
        "-p",
        "oci-distribution-proto",
        "--example",
        "push_pull",
    ]))?;
    let registry = acr_testkit::Registry::start(acr_testkit::RegistryOptions::default())?;
    let work = super::root().join("target/protocol-example");
    let _ = std::fs::remove_dir_all(&work);
    std::fs::create_dir_all(work.join("files"))?;
    let files = write_sample_files(&work.join("files"))?;
    let pulled = work.join("pulled");
    let mut cmd = std::process::Command::new(super::root().join("target/debug/examples/push_pull"));
    cmd.arg(format!("{}/example/files:v1", registry.host()))
        .args(&files)
        .arg("--pull-to")
        .arg(&pulled);
    super::run(&mut cmd)?;
    compare(&files, &pulled)
}

fn compare(files: &[std::path::PathBuf], pulled: &Path) -> anyhow::Result<()> {
    for file in files {
        let name = file.file_name().context("sample file without a name")?;
        let original = std::fs::read(file)?;
        let copy = std::fs::read(pulled.join(name))
            .with_context(|| format!("{} was not pulled", name.to_string_lossy()))?;
        ensure!(
            original == copy,
            "{} differs after the round trip",
            name.to_string_lossy()
        );
        println!(
            "identical: {} ({} bytes)",
            name.to_string_lossy(),
            original.len()
        );
    }
    Ok(())
}

/// Three files: a small text, a 20 MiB binary (above the 16 MiB monolithic limit, so it is uploaded in chunks), and JSON.
fn write_sample_files(dir: &Path) -> anyhow::Result<Vec<std::path::PathBuf>> {
    let mut data = Vec::with_capacity(20 << 20);
    let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
    while data.len() < 20 << 20 {
        // xorshift: incompressible-looking bytes without a random-number dependency.
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        data.extend_from_slice(&x.to_le_bytes());
    }
    let samples: [(&str, &[u8]); 3] = [
        ("hello.txt", b"hello from the acr demo\n"),
        ("data.bin", &data),
        ("meta.json", br#"{"demo":true,"files":3}"#),
    ];
    let mut paths = Vec::new();
    for (name, content) in samples {
        let path = dir.join(name);
        std::fs::write(&path, content)?;
        paths.push(path);
    }
    Ok(paths)
}
