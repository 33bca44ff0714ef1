//! `acr`: the command line over `acr-client`. Thin: argument parsing, output and exit codes.
#![forbid(unsafe_code)]

fn main() {
    let version = env!("CARGO_PKG_VERSION");
    match std::env::args().nth(1).as_deref() {
        Some("--version" | "-V") => println!("acr {version}"),
        _ => {
            eprintln!("acr {version}: commands arrive with the CLI issue; try `acr --version`");
            std::process::exit(1);
        }
    }
}
