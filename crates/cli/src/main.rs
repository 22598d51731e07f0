//! `tessera`: answers a SmartCard-HSM token owner's questions (the Nitrokey HSM 2's card):
//! which tokens are there, what state its PINs are in and what still works, and the
//! operations an owner needs (verify, change and unblock PINs, initialise, DKEK shares, keys,
//! signing); and serves virtual cards to pcscd so that real PC/SC software (OpenSC) can be
//! tried safely first.
//!
//! # Commands
//!
//! `list`, `status`, `verify`, `change-pin [--so]`, `unblock [--new-pin]`, `init`,
//! `dkek import|status`, `keys`, `keygen`, `delete-key`, `sign`, `virtual serve`. Every
//! command that talks to a token takes `--reader NAME|INDEX` (PC/SC, the default),
//! `--usb VID:PID|SERIAL|BUS-PORT` (CCID straight over USB) or `--virtual CARD_FILE` (the
//! virtual card in-process; a missing file is created as a new card).
//!
//! # Exit codes
//!
//! | code | meaning |
//! |---|---|
//! | 0 | ok |
//! | 1 | the operation failed (the one-line message says what to do) |
//! | 2 | usage: bad arguments or input; nothing was sent to the card |
//! | 3 | no device: no reader, card, USB device or card file |
//! | 4 | wrong PIN or SO-PIN; tries remain |
//! | 5 | a PIN or the SO-PIN is blocked, or the command was refused for safety; `status` exits 5 when either PIN is blocked |
//! | 6 | cancelled by the user |
//!
//! # Secrets
//!
//! PINs come from a prompt without echo (when stdin is a terminal), or from the environment
//! variable or file named by `--pin-env`/`--pin-file` (`--so-pin-env`/`--so-pin-file` for
//! the SO-PIN, `--new-pin-env`/`--new-pin-file` for a new PIN); never from the command line.
//! No PIN is ever printed, logged or put in an error message.
//!
//! # Safety
//!
//! `init`, `unblock` and `change-pin --so` name the device (serial) and the SO-PIN tries
//! left and ask for confirmation (type `yes`) unless given `--yes`; with one SO-PIN try left
//! they refuse unless also given `--force`; without a terminal and without `--yes` they
//! refuse. A blocked SO-PIN is reported before anything is sent.
//!
//! # JSON (`--json`)
//!
//! Field names are stable: fields may be added, never renamed. A PIN state is
//! `{"state": "verified"|"tries-left"|"blocked"|"transport-pin"|"not-initialised",
//! "tries_left": n|null}`; a device is `{"transport": "pcsc"|"usb"|"virtual", "name": ...}`.
//! - `list`: `readers` [{`index`, `name`, `card_present`, `atr`, `sc_hsm`, `nitrokey`,
//!   `default`, `serial`}], `usb_devices` [{`path`, `bus`, `address`, `vendor_id`,
//!   `product_id`, `manufacturer`, `product`, `serial`, `ccid_interface`, `nitrokey_hsm`}].
//! - `status`: `device`, `serial`, `serial_error`, `applet` {`version`, `kind`, `options`,
//!   `option_names`}, `initialised`, `user_pin`, `so_pin`, `dkek` (null or {`total`,
//!   `outstanding`, `imported`, `complete`, `kcv`}), `severity` (`ok`, `warning`,
//!   `not-initialised`, `recoverable`, `permanent`), `assessment` (sentences).
//! - `verify`: `device`, `serial`, `verified`, `user_pin` (also printed when the PIN is wrong).
//! - `keys`: `device`, `serial`, `keys` [{`id`, `label`, `kind` (`ec`|`rsa`), `bits`,
//!   `curve`, `public_key_pem`, `problems`}].
//! - `keygen`: `device`, `serial`, `id`, `algorithm`, `label`, `public_key_pem`.
//! - `dkek status`, `dkek import`: `device`, `serial`, `dkek`.
//! - `sign`: `device`, `serial`, `key_id`, `mechanism`, `format`, `input_len`, `digest`,
//!   `signature` (hex), `output`.
//!
//! What it does not know: the SmartCard-HSM protocol (tessera-sc-hsm), readers and USB
//! (tessera-host), the virtual card's insides (tessera-card), how pcscd is run. Two `tessera`
//! processes on one virtual card file at once do not see each other's changes (the last to
//! write wins).

mod commands;
mod device;
mod dkek_file;
mod exit;
mod output;
mod safety;
mod secrets;
mod virtual_serve;

use std::process::ExitCode;

use clap::{Parser, Subcommand};

use crate::commands::{dkek, init, keys, list, pins, sign, status};
use crate::exit::{Exit, EXIT_CODES_HELP};

/// Tessera: tools for SmartCard-HSM tokens such as the Nitrokey HSM 2.
///
/// Try anything risky on a virtual token first: every command takes --virtual CARD_FILE.
#[derive(Debug, Parser)]
#[command(
    name = "tessera",
    version,
    propagate_version = true,
    after_help = EXIT_CODES_HELP
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// List PC/SC readers and USB smart-card devices (Nitrokey HSM: 20a0:4230) with serials.
    List(list::ListArgs),
    /// Show the serial, applet version, PIN and SO-PIN tries left, and what still works.
    Status(status::StatusArgs),
    /// Check the user PIN (a wrong one costs a try).
    Verify(pins::VerifyArgs),
    /// Change the user PIN (or the transport PIN), or with --so the SO-PIN.
    ChangePin(pins::ChangePinArgs),
    /// Unblock the user PIN with the SO-PIN (resets its retry counter; --new-pin sets a new
    /// PIN).
    Unblock(pins::UnblockArgs),
    /// Initialise the device, or re-initialise it (erases all keys; needs the SO-PIN).
    Init(init::InitArgs),
    /// DKEK shares: the key that wraps keys for backup.
    #[command(subcommand)]
    Dkek(dkek::DkekCommand),
    /// List the keys on the device, with their labels.
    Keys(keys::KeysArgs),
    /// Generate a key pair on the device; prints the public key.
    Keygen(keys::KeygenArgs),
    /// Delete a key (with its description and public key) from the device.
    DeleteKey(keys::DeleteKeyArgs),
    /// Sign data (or a hash) with a key on the device.
    Sign(sign::SignArgs),
    /// Virtual SmartCard-HSM cards: try risky things on a virtual token first.
    #[command(subcommand)]
    Virtual(VirtualCommand),
}

#[derive(Debug, Subcommand)]
enum VirtualCommand {
    /// Serve virtual cards to pcscd through vsmartcard's vpcd reader driver until stopped.
    Serve(virtual_serve::ServeArgs),
}

fn run(command: &Command) -> anyhow::Result<Exit> {
    match command {
        Command::List(args) => list::run(args),
        Command::Status(args) => status::run(args),
        Command::Verify(args) => pins::verify(args),
        Command::ChangePin(args) => pins::change_pin(args),
        Command::Unblock(args) => pins::unblock(args),
        Command::Init(args) => init::run(args),
        Command::Dkek(command) => dkek::run(command),
        Command::Keys(args) => keys::keys(args),
        Command::Keygen(args) => keys::keygen(args),
        Command::DeleteKey(args) => keys::delete_key(args),
        Command::Sign(args) => sign::run(args),
        Command::Virtual(VirtualCommand::Serve(args)) => {
            virtual_serve::run(args).map(|()| Exit::Ok)
        }
    }
}

fn main() -> ExitCode {
    // A bug must still end in one line, not a backtrace.
    std::panic::set_hook(Box::new(|info| {
        let location = info
            .location()
            .map(|l| format!(" at {}:{}", l.file(), l.line()))
            .unwrap_or_default();
        eprintln!("tessera: internal error{location}; please report this bug");
    }));
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(error) => {
            // --help and --version print to stdout and exit 0; usage errors exit 2.
            let _ = error.print();
            return ExitCode::from(if error.use_stderr() {
                Exit::Usage.code()
            } else {
                Exit::Ok.code()
            });
        }
    };
    let exit = match std::panic::catch_unwind(|| run(&cli.command)) {
        Ok(Ok(exit)) => exit,
        Ok(Err(error)) => {
            eprintln!("tessera: {}", exit::one_line(&error));
            exit::classify(&error)
        }
        Err(_) => Exit::Failed,
    };
    ExitCode::from(exit.code())
}
