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
    super::step("building the acr CLI and the protocol example");
    super::run(super::cargo().args([
        "build",
        "--quiet",
        "-p",
        "acr-cli",
        "-p",
        "oci-distribution-proto",
        "--example",
        "push_pull",
    ]))?;

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
    let pulled = work.join("pulled");
    let _ = std::fs::remove_dir_all(&work);
    std::fs::create_dir_all(&files_dir)?;
    let files = write_sample_files(&files_dir)?;

    let reference = format!("{host}/demo/files:v1");
    super::step(&format!("push, list and pull {reference}"));
    let example = super::root().join("target/debug/examples/push_pull");
    let mut cmd = std::process::Command::new(&example);
    cmd.arg(&reference)
        .args(&files)
        .arg("--pull-to")
        .arg(&pulled);
    super::run(&mut cmd)?;

    super::step("checking the pulled files against the originals");
    for file in &files {
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
    println!(
        "\ndemo ok: {} files pushed to {reference} and pulled back identical",
        files.len()
    );
    Ok(())
}

/// Three files: a small text, a 3 MiB binary (large enough for a chunked upload), and JSON.
fn write_sample_files(dir: &Path) -> anyhow::Result<Vec<std::path::PathBuf>> {
    let mut data = Vec::with_capacity(3 << 20);
    let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
    while data.len() < 3 << 20 {
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
