//! `acr`: the command line over `acr-client`. Thin: arguments, output and exit codes; every
//! operation is a library call.
#![forbid(unsafe_code)]

mod args;
mod commands;
mod progress;

use clap::Parser;

fn main() {
    let cli = args::Cli::parse();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(e) => {
            eprintln!("Error: cannot start the async runtime: {e}");
            std::process::exit(1);
        }
    };
    if let Err(error) = runtime.block_on(commands::run(cli.command)) {
        eprintln!("Error: {}", error_message(&error));
        std::process::exit(1);
    }
}

/// The error and its causes in one line, without repeating a cause that the message before it
/// already spells out.
fn error_message(error: &anyhow::Error) -> String {
    let mut message = String::new();
    for cause in error.chain() {
        let text = cause.to_string();
        if message.contains(&text) {
            continue;
        }
        if !message.is_empty() {
            message.push_str(": ");
        }
        message.push_str(&text);
    }
    message
}
