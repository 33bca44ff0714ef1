//! `cargo xtask registry up|down`: a docker-registry left running for manual tries.

use std::path::PathBuf;

use acr_testkit::{Auth, Registry, RegistryOptions};
use anyhow::{Context, bail};

fn state_file() -> PathBuf {
    super::root().join("target/xtask-registry.json")
}

pub(crate) fn run(args: &[&str]) -> anyhow::Result<()> {
    match args {
        ["up", rest @ ..] => up(rest),
        ["down"] => down(),
        _ => bail!("usage: cargo xtask registry up [--tls] [--basic] [--port N] | down"),
    }
}

fn up(args: &[&str]) -> anyhow::Result<()> {
    let mut options = RegistryOptions::default();
    let mut rest = args.iter();
    while let Some(arg) = rest.next() {
        match *arg {
            "--tls" => options.tls = true,
            "--basic" => options.auth = Auth::Basic,
            "--port" => {
                let port = rest.next().context("--port needs a number")?;
                options.port = Some(port.parse().context("--port needs a number")?);
            }
            other => bail!("unknown option {other}"),
        }
    }
    if state_file().exists() {
        bail!(
            "a registry is already up (see {}); run `cargo xtask registry down` first",
            state_file().display()
        );
    }
    let registry = Registry::start(options)?;
    let url = registry.base_url();
    let ca = registry.ca_file();
    let basic = registry.auth() == Auth::Basic;
    let (pid, dir) = registry.detach();
    let state = serde_json::json!({ "pid": pid, "dir": dir, "url": url });
    std::fs::create_dir_all(super::root().join("target"))?;
    std::fs::write(state_file(), state.to_string())?;
    println!(
        "registry up at {url} (pid {pid}, files in {})",
        dir.display()
    );
    if let Some(ca) = ca {
        println!("CA certificate: {}", ca.display());
    }
    if basic {
        println!(
            "user {} password {}",
            acr_testkit::BASIC_USER,
            acr_testkit::BASIC_PASSWORD
        );
    }
    println!("stop it with `cargo xtask registry down`");
    Ok(())
}

fn down() -> anyhow::Result<()> {
    let text =
        std::fs::read_to_string(state_file()).context("no registry is up (no state file)")?;
    let state: serde_json::Value = serde_json::from_str(&text)?;
    let pid = state["pid"].as_u64().context("state file without pid")?;
    let _ = std::process::Command::new("kill")
        .arg(pid.to_string())
        .status();
    if let Some(dir) = state["dir"].as_str() {
        let _ = std::fs::remove_dir_all(dir);
    }
    std::fs::remove_file(state_file())?;
    println!("registry (pid {pid}) stopped");
    Ok(())
}
