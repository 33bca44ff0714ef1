//! `cargo xtask`: the project's automation, in Rust so it runs wherever cargo does.
//!
//! - `cargo xtask test`: everything CI checks (fmt, clippy, layering, unit, doc and integration
//!   tests against a real registry, the demo, the fuzz targets' build).
//! - `cargo xtask demo`: the main job: a push / list / pull round trip on a local registry.
//! - `cargo xtask check-layers`: fails when a crate depends on a layer above it.
//! - `cargo xtask registry up|down`: a docker-registry to try things by hand.
//! - `cargo xtask fuzz [--seconds N]`: every fuzz target for a bounded time.
//! - `cargo xtask bench [--quick]`: `acr` against skopeo and oras-py, beside the limits.
#![forbid(unsafe_code)]

mod bench;
mod demo;
mod layers;
mod registry;

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context, bail};

const USAGE: &str = "\
usage: cargo xtask <task>

tasks:
  test [--skip-lint]        fmt, clippy, layering, all tests, demo, fuzz build (what CI runs)
  demo [--registry HOST]    push / list / pull round trip (starts a local registry when none is given)
  check-layers              fail when a crate depends on a layer above it
  man                       the manual page and shell completions into target/dist
  registry up [--tls] [--basic] [--port N] | down
  fuzz [--seconds N]        run every fuzz target for N seconds (default 30)
  bench [--quick] [--runs N] [--cases hash,large,small,copy,startup]
                            acr vs skopeo and oras-py on a local registry, beside the limits
                            (table, target/bench/report.json and report.svg; not part of test)
";

fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    match args.as_slice() {
        ["test", rest @ ..] => test(rest),
        ["demo", rest @ ..] => demo::run(rest),
        ["bench", rest @ ..] => bench::run(rest),
        ["check-layers"] => layers::check(),
        ["man"] => man(),
        ["registry", rest @ ..] => registry::run(rest),
        ["fuzz", rest @ ..] => fuzz(rest),
        ["help" | "--help" | "-h"] | [] => {
            print!("{USAGE}");
            Ok(())
        }
        other => bail!("unknown task {:?}\n{USAGE}", other.join(" ")),
    }
}

/// The workspace root (xtask lives one level below it).
fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .map(Path::to_path_buf)
        .unwrap_or_default()
}

fn cargo() -> Command {
    let mut cmd = Command::new(std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into()));
    cmd.current_dir(root());
    cmd
}

/// Runs a command, echoing it, and fails with its exit status.
fn run(cmd: &mut Command) -> anyhow::Result<()> {
    let shown = format!("{cmd:?}").replace('"', "");
    eprintln!("$ {shown}");
    let status = cmd.status().with_context(|| format!("starting {shown}"))?;
    if !status.success() {
        bail!("`{shown}` failed with {status}");
    }
    Ok(())
}

fn step(name: &str) {
    eprintln!("\n==> {name}");
}

fn test(args: &[&str]) -> anyhow::Result<()> {
    let skip_lint = args.contains(&"--skip-lint");
    let started = std::time::Instant::now();
    if !skip_lint {
        step("rustfmt");
        run(cargo().args(["fmt", "--all", "--", "--check"]))?;
        step("clippy");
        run(cargo().args([
            "clippy",
            "--workspace",
            "--all-targets",
            "--",
            "-D",
            "warnings",
        ]))?;
    }
    if !skip_lint {
        // The library crates' API docs, broken links included (the binary's doc comments are
        // its --help text, where brackets mean "optional").
        step("rustdoc of the library crates");
        let mut doc = cargo();
        doc.args(["doc", "--no-deps", "--quiet"]);
        for library in [
            "oci-spec-types",
            "oci-distribution-proto",
            "acr-auth",
            "acr-client",
        ] {
            doc.args(["-p", library]);
        }
        run(doc.env("RUSTDOCFLAGS", "-D warnings"))?;
    }
    step("layering");
    layers::check()?;
    step("real parts the integration tests need");
    acr_testkit::ensure_docker_registry().context("the integration tests need docker-registry")?;
    ensure_peers()?;
    step("unit, doc and integration tests");
    run(cargo().args(["test", "--workspace"]))?;
    step("demo (the README's main job)");
    demo::run(&[])?;
    step("the protocol crate's push_pull example against a real registry");
    demo::protocol_example()?;
    step("fuzz targets build");
    run(cargo().args(["build", "--quiet", "--manifest-path", "fuzz/Cargo.toml"]))?;
    eprintln!("\nall checks passed in {:.0?}", started.elapsed());
    Ok(())
}

/// The peer clients the interoperability tests drive: skopeo (Debian) and the `oras` Python
/// package (PyPI), installed when missing.
fn ensure_peers() -> anyhow::Result<()> {
    let works = |cmd: &mut Command| cmd.output().is_ok_and(|o| o.status.success());
    if !works(Command::new("skopeo").arg("--version")) {
        run(Command::new("apt-get")
            .args(["install", "-y", "-q", "skopeo"])
            .env("DEBIAN_FRONTEND", "noninteractive"))
        .context("the interoperability tests need skopeo: apt-get install skopeo")?;
    }
    if !works(Command::new("python3").args(["-c", "import oras.client"])) {
        run(Command::new("python3").args([
            "-m",
            "pip",
            "install",
            "--quiet",
            "--root-user-action=ignore",
            ORAS_PY,
        ]))
        .context("the interoperability tests need the oras Python package: pip install oras")?;
    }
    Ok(())
}

/// The version of the `oras` Python package the interoperability tests were written against.
const ORAS_PY: &str = "oras==0.2.43";

/// The manual page and shell completions of `acr`, into target/dist.
fn man() -> anyhow::Result<()> {
    run(cargo().args(["build", "--quiet", "-p", "acr-cli"]))?;
    let acr = root().join("target/debug/acr");
    let dist = root().join("target/dist");
    std::fs::create_dir_all(&dist)?;
    let capture = |args: &[&str]| -> anyhow::Result<Vec<u8>> {
        let out = Command::new(&acr)
            .args(args)
            .output()
            .context("running acr")?;
        if !out.status.success() {
            bail!(
                "acr {} failed: {}",
                args.join(" "),
                String::from_utf8_lossy(&out.stderr)
            );
        }
        Ok(out.stdout)
    };
    std::fs::write(dist.join("acr.1"), capture(&["manpage"])?)?;
    for shell in ["bash", "zsh", "fish", "powershell"] {
        std::fs::write(
            dist.join(format!("acr.{shell}")),
            capture(&["completion", shell])?,
        )?;
    }
    println!("wrote {} (acr.1 and completions)", dist.display());
    Ok(())
}

fn fuzz(args: &[&str]) -> anyhow::Result<()> {
    let seconds = match args {
        [] => 30,
        ["--seconds", n] => n.parse().context("--seconds takes a whole number")?,
        _ => bail!("usage: cargo xtask fuzz [--seconds N]"),
    };
    let has_cargo_fuzz = cargo()
        .args(["fuzz", "--version"])
        .output()
        .is_ok_and(|o| o.status.success());
    if !has_cargo_fuzz {
        step("installing cargo-fuzz");
        run(cargo().args(["install", "--locked", "cargo-fuzz"]))?;
    }
    let listed = cargo()
        .current_dir(root().join("fuzz"))
        .args(["fuzz", "list"])
        .output()
        .context("cargo fuzz list")?;
    let targets = String::from_utf8_lossy(&listed.stdout).into_owned();
    for target in targets.lines().map(str::trim).filter(|t| !t.is_empty()) {
        step(&format!("fuzz {target} for {seconds} s"));
        // Stable Rust only here: no sanitizer (cargo-fuzz supports `-s none` on stable).
        run(cargo().current_dir(root().join("fuzz")).args([
            "fuzz",
            "run",
            "-s",
            "none",
            target,
            "--",
            &format!("-max_total_time={seconds}"),
        ]))?;
    }
    Ok(())
}
