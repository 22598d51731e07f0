//! `tessera`: answers a SmartCard-HSM token owner's questions, and serves virtual cards to
//! pcscd so that real PC/SC software (OpenSC) can be tried safely first.
//!
//! What it does not know: protocol details (the library crates do), how pcscd is run.
//!
//! Exit codes: 0 success, 1 an operation failed (the message says what to do), 2 usage error.

mod virtual_serve;

use std::process::ExitCode;

use clap::{Parser, Subcommand};

/// Tessera: tools for SmartCard-HSM tokens such as the Nitrokey HSM 2.
#[derive(Debug, Parser)]
#[command(name = "tessera", version, about, propagate_version = true)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Virtual SmartCard-HSM cards: try risky things on a virtual token first.
    #[command(subcommand)]
    Virtual(VirtualCommand),
}

#[derive(Debug, Subcommand)]
enum VirtualCommand {
    /// Serve virtual cards to pcscd through vsmartcard's vpcd reader driver until stopped.
    Serve(virtual_serve::ServeArgs),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Virtual(VirtualCommand::Serve(args)) => virtual_serve::run(&args),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("tessera: {error:#}");
            ExitCode::FAILURE
        }
    }
}
