//! Runs the ACR emulator (and docker-registry in token mode behind it) until Ctrl-C.
//!
//! `cargo run -p acr-testkit --features server --bin acr-emulator -- [--plain-http] [--port N]
//! [--anonymous-pull] [--allow-arm-audience] [--storage DIR] [--mint-aad OID]…`

use std::path::PathBuf;
use std::process::ExitCode;

use acr_testkit::{AcrEmulator, AcrEmulatorOptions, NULL_GUID_USER};

const USAGE: &str = "usage: acr-emulator [--plain-http] [--port N] [--anonymous-pull] [--allow-arm-audience] [--storage DIR] [--mint-aad OBJECT_ID]...";
const DEFAULT_OID: &str = "aaaaaaaa-0000-0000-0000-000000000001";

fn main() -> ExitCode {
    match run() {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("acr-emulator: {e}");
            ExitCode::FAILURE
        }
    }
}

fn run() -> Result<(), String> {
    let mut options = AcrEmulatorOptions::default();
    let mut oids = Vec::new();
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--plain-http" => options.tls = false,
            "--anonymous-pull" => options.anonymous_pull = true,
            "--allow-arm-audience" => options.allow_arm_audience = true,
            "--port" => {
                let port = args.next().ok_or("--port needs a number")?;
                options.port = Some(port.parse().map_err(|_| format!("bad port {port:?}"))?);
            }
            "--storage" => {
                options.storage = Some(PathBuf::from(
                    args.next().ok_or("--storage needs a directory")?,
                ));
            }
            "--mint-aad" => oids.push(args.next().ok_or("--mint-aad needs an object id")?),
            "-h" | "--help" => {
                println!("{USAGE}");
                return Ok(());
            }
            other => return Err(format!("unknown option {other:?}\n{USAGE}")),
        }
    }
    if oids.is_empty() {
        oids.push(DEFAULT_OID.to_owned());
    }
    let emulator = AcrEmulator::start(options).map_err(|e| e.to_string())?;
    print_guide(&emulator, &oids)?;
    wait_for_signal()?;
    println!("stopping");
    Ok(())
}

fn print_guide(emulator: &AcrEmulator, oids: &[String]) -> Result<(), String> {
    let url = emulator.url();
    let service = emulator.service();
    let tenant = emulator.tenant_id();
    let curl = match emulator.ca_file() {
        Some(ca) => format!("curl --cacert {}", ca.display()),
        None => "curl".to_owned(),
    };
    println!("ACR emulator at {url} (login server / service {service})");
    if let Some(ca) = emulator.ca_file() {
        println!("CA certificate: {}", ca.display());
    }
    println!("tenant: {tenant}");
    println!(
        "docker-registry behind it: {}",
        emulator.registry().base_url()
    );
    println!("fake AAD authority: {}", emulator.aad().authority());
    for oid in oids {
        let aad = emulator.mint_aad_token(oid).map_err(|e| e.to_string())?;
        let refresh = emulator
            .mint_refresh_token(oid)
            .map_err(|e| e.to_string())?;
        println!("\nidentity {oid}:");
        println!("  AAD token (1 h):\n    {aad}");
        println!("  ACR refresh token (3 h):\n    {refresh}");
    }
    let oid = &oids[0];
    println!("\nTry:");
    println!(
        "  # an AAD token from the fake AAD (client_id becomes the oid)\n  {curl} {url}/aad/{tenant}/oauth2/v2.0/token -d grant_type=client_credentials -d client_id={oid} -d client_secret=any --data-urlencode scope=https://containerregistry.azure.net/.default"
    );
    println!(
        "  # AAD token -> ACR refresh token\n  {curl} {url}/oauth2/exchange -d grant_type=access_token -d service={service} -d access_token=$AAD"
    );
    println!(
        "  # refresh token -> access token\n  {curl} {url}/oauth2/token -d grant_type=refresh_token -d service={service} --data-urlencode scope=repository:hello:pull,push -d refresh_token=$REFRESH"
    );
    println!("  # use it\n  {curl} -H \"Authorization: Bearer $ACCESS\" {url}/v2/");
    println!("  # docker-style login: user {NULL_GUID_USER}, password = the refresh token");
    println!("\nrunning until Ctrl-C");
    Ok(())
}

/// Blocks until SIGINT or SIGTERM, so the registry child is stopped either way.
fn wait_for_signal() -> Result<(), String> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| format!("starting a tokio runtime: {e}"))?;
    runtime.block_on(async {
        let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
            .map_err(|e| format!("installing a SIGTERM handler: {e}"))?;
        tokio::select! {
            r = tokio::signal::ctrl_c() => r.map_err(|e| format!("waiting for Ctrl-C: {e}")),
            _ = term.recv() => Ok(()),
        }
    })
}
