//! `tessera init`: INITIALIZE DEVICE (sc-hsm-protocol.md §2.5, §5.1).

use anyhow::Result;
use clap::Args;
use tessera_sc_hsm::{InitParams, Options, PinRole, PinStatus};

use super::{name, serial};
use crate::device::DeviceArgs;
use crate::exit::Exit;
use crate::output;
use crate::safety::{self, ConfirmArgs, Plan};
use crate::secrets::{self, SoPinArgs, UserPinArgs};

/// Arguments of `tessera init`.
#[derive(Debug, Args)]
#[command(after_help = OPTIONS_HELP)]
pub struct InitArgs {
    #[command(flatten)]
    device: DeviceArgs,
    /// Initialisation options, comma-separated names or 4 hex digits (see below).
    /// Default: reset-retry-counter, as sc-hsm-tool does.
    #[arg(long, value_name = "OPTION,...", value_delimiter = ',', value_parser = parse_option)]
    options: Vec<Options>,
    /// The user PIN's retry counter: 1 to 10, at most 3 for a 6-character PIN and 5 for 7
    /// characters (sc-hsm-tool's rule).
    #[arg(long, value_name = "N", default_value_t = 3)]
    retries: u8,
    /// Prepare for N DKEK shares (import them next with `tessera dkek import`); 0 lets the
    /// card make a random DKEK. Default: no DKEK (keys cannot be wrapped for backup).
    #[arg(long, value_name = "N")]
    dkek_shares: Option<u8>,
    /// The SO-PIN: on a new device it is set; on an initialised one it must be the current
    /// SO-PIN.
    #[command(flatten)]
    so_pin: SoPinArgs,
    /// The new user PIN.
    #[command(flatten)]
    pin: UserPinArgs,
    #[command(flatten)]
    confirm: ConfirmArgs,
}

const OPTIONS_HELP: &str = "\
Options (--options):
  reset-retry-counter         the SO-PIN may unblock the user PIN (0001; the default)
  transport-pin               the user PIN is a transport PIN, to be changed first (0002)
  session-pin                 session PIN, cleared on reset (0004)
  session-pin-explicit-clear  session PIN with explicit clear (000c)
  combined-authentication     user PIN and public-key authentication combined (0010)
  reset-retry-counter-only    unblock only resets the counter, never sets a new PIN (0020)
  none                        no options: the user PIN can never be unblocked

Re-initialising erases every key, certificate and data object; it presents the current
SO-PIN, so a wrong one costs one of its 15 tries. tessera asks for confirmation (type yes)
unless given --yes, and refuses with one SO-PIN try left unless given --force.";

fn parse_option(text: &str) -> Result<Options, String> {
    let lower = text.trim().to_ascii_lowercase();
    Ok(match lower.as_str() {
        "reset-retry-counter" | "unblock" => Options::RESET_RETRY_COUNTER,
        "transport-pin" => Options::TRANSPORT_PIN,
        "session-pin" => Options::SESSION_PIN,
        "session-pin-explicit-clear" => Options::SESSION_PIN_EXPLICIT_CLEAR,
        "combined-authentication" => Options::COMBINED_AUTHENTICATION,
        "reset-retry-counter-only" => Options::RESET_RETRY_COUNTER_ONLY,
        "none" => Options(0),
        hex => {
            let digits = hex.strip_prefix("0x").unwrap_or(hex);
            match u16::from_str_radix(digits, 16) {
                Ok(bits) if digits.len() == 4 => Options(bits),
                _ => {
                    return Err(format!(
                        "unknown option {text:?}: use reset-retry-counter, transport-pin, \
                         session-pin, session-pin-explicit-clear, combined-authentication, \
                         reset-retry-counter-only, none, or 4 hex digits"
                    ))
                }
            }
        }
    })
}

/// Runs `tessera init`.
pub fn run(args: &InitArgs) -> Result<Exit> {
    let options = if args.options.is_empty() {
        Options::DEFAULT
    } else {
        args.options
            .iter()
            .fold(Options(0), |all, option| all.union(*option))
    };
    let mut device = args.device.open()?;
    let serial = serial(&mut device.hsm)?;
    let device_name = name(serial.as_deref(), &device.via);
    let so = device.hsm.pin_status(PinRole::So)?;
    let initialised = so != PinStatus::NotInitialised;
    let via = device.via.to_string();
    let plan = if initialised {
        Plan {
            action: "re-initialise",
            name: "re-initialisation",
            serial: serial.as_deref(),
            via: &via,
            consequences: &[
                "Every key, certificate and data object on it is erased (the device's own key \
                 and certificates stay).",
                "It presents the current SO-PIN.",
            ],
            so_pin: so,
            presents_so_pin: true,
        }
    } else {
        Plan {
            action: "initialise",
            name: "initialisation",
            serial: serial.as_deref(),
            via: &via,
            consequences: &[
                "It sets the SO-PIN (16 hex digits; keep it safe: it has 15 tries and cannot \
                 be unblocked) and the user PIN.",
            ],
            so_pin: so,
            presents_so_pin: true,
        }
    };
    safety::confirm(&plan, args.confirm)?;
    let so_pin = if initialised {
        secrets::so_pin(
            args.so_pin.source(),
            "Current SO-PIN (16 hex digits): ",
            false,
        )?
    } else {
        secrets::so_pin(args.so_pin.source(), "New SO-PIN (16 hex digits): ", true)?
    };
    let user_pin = secrets::user_pin(
        args.pin.source(),
        "New user PIN (6 to 16 characters): ",
        true,
    )?;
    let params = InitParams {
        user_pin_retries: args.retries,
        options,
        dkek_shares: args.dkek_shares,
        ..InitParams::new(so_pin, user_pin)
    };
    // Checked here too, so that nothing is sent when the retry counter does not fit.
    params.check()?;
    device.hsm.initialise(&params)?;
    let mut text = format!(
        "{} {device_name}: user PIN with {}, options {options}\n",
        if initialised {
            "re-initialised"
        } else {
            "initialised"
        },
        output::plural(args.retries, "try", "tries"),
    );
    match args.dkek_shares {
        Some(0) => text.push_str("DKEK: random, made by the card\n"),
        Some(n) => text.push_str(&format!(
            "DKEK: import {} next (tessera dkek import); keys cannot be generated before\n",
            output::plural(n, "share", "shares")
        )),
        None => {}
    }
    output::print(&text)?;
    Ok(Exit::Ok)
}
