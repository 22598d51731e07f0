//! `tessera verify`, `tessera change-pin [--so]` and `tessera unblock [--new-pin]`.

use anyhow::Result;
use clap::Args;
use serde::Serialize;
use tessera_sc_hsm::{Error as HsmError, Options, PinRole, PinStatus};

use super::{check_user_pin, name, serial};
use crate::device::{DeviceArgs, Via};
use crate::exit::{refuse, usage, Exit};
use crate::output::{self, PinJson};
use crate::safety::{self, ConfirmArgs, Plan};
use crate::secrets::{self, NewPinArgs, SoPinArgs, UserPinArgs};

/// Arguments of `tessera verify`.
#[derive(Debug, Args)]
pub struct VerifyArgs {
    #[command(flatten)]
    device: DeviceArgs,
    #[command(flatten)]
    pin: UserPinArgs,
    /// Print the result as JSON (fields: device, serial, verified, user_pin), also when the
    /// PIN is wrong (the exit code still says so).
    #[arg(long)]
    json: bool,
}

#[derive(Debug, Serialize)]
struct VerifyJson<'a> {
    device: &'a Via,
    serial: Option<&'a str>,
    verified: bool,
    user_pin: PinJson,
}

/// Runs `tessera verify`: exit 0 when the PIN is right, 4 when wrong with tries left, 5 when
/// blocked.
pub fn verify(args: &VerifyArgs) -> Result<Exit> {
    let mut device = args.device.open()?;
    let serial = serial(&mut device.hsm)?;
    let device_name = name(serial.as_deref(), &device.via);
    let before = device.hsm.pin_status(PinRole::User)?;
    let report = |verified: bool, state: PinStatus| -> Result<()> {
        if args.json {
            output::print_json(&VerifyJson {
                device: &device.via,
                serial: serial.as_deref(),
                verified,
                user_pin: state.into(),
            })?;
        }
        Ok(())
    };
    if let Err(e) = check_user_pin(before, &device_name) {
        report(false, before)?;
        return Err(e);
    }
    let pin = secrets::user_pin(args.pin.source(), "User PIN: ", false)?;
    match device.hsm.verify(&pin) {
        Ok(()) => {
            report(true, PinStatus::Verified)?;
            if !args.json {
                output::print(&format!("user PIN verified on {device_name}\n"))?;
            }
            Ok(Exit::Ok)
        }
        Err(e) => {
            let after = match &e {
                HsmError::WrongPin { tries_left, .. } => PinStatus::TriesLeft {
                    tries_left: *tries_left,
                },
                HsmError::PinBlocked { .. } => PinStatus::Blocked,
                _ => before,
            };
            report(false, after)?;
            Err(e.into())
        }
    }
}

/// Arguments of `tessera change-pin`.
#[derive(Debug, Args)]
pub struct ChangePinArgs {
    #[command(flatten)]
    device: DeviceArgs,
    /// Change the SO-PIN (16 hex digits) instead of the user PIN. This presents the current
    /// SO-PIN: a wrong one costs one of its 15 tries, so it asks for confirmation.
    #[arg(long)]
    so: bool,
    #[command(flatten)]
    pin: UserPinArgs,
    #[command(flatten)]
    so_pin: SoPinArgs,
    #[command(flatten)]
    new_pin: NewPinArgs,
    #[command(flatten)]
    confirm: ConfirmArgs,
}

/// Runs `tessera change-pin`.
pub fn change_pin(args: &ChangePinArgs) -> Result<Exit> {
    let mut device = args.device.open()?;
    let serial = serial(&mut device.hsm)?;
    let device_name = name(serial.as_deref(), &device.via);
    if !args.so {
        let status = device.hsm.pin_status(PinRole::User)?;
        if status != PinStatus::TransportPin {
            check_user_pin(status, &device_name)?;
        }
        let prompt = if status == PinStatus::TransportPin {
            "Transport PIN: "
        } else {
            "Current user PIN: "
        };
        let old = secrets::user_pin(args.pin.source(), prompt, false)?;
        let new = secrets::user_pin(
            args.new_pin.source("new user PIN"),
            "New user PIN (6 to 16 characters): ",
            true,
        )?;
        device.hsm.change_pin(&old, &new)?;
        output::print(&format!("user PIN changed on {device_name}\n"))?;
        return Ok(Exit::Ok);
    }
    let so_status = device.hsm.pin_status(PinRole::So)?;
    if so_status == PinStatus::NotInitialised {
        return Err(refuse(
            Exit::Failed,
            format!("{device_name} is not initialised: it has no SO-PIN yet (tessera init)"),
        ));
    }
    let via = device.via.to_string();
    safety::confirm(
        &Plan {
            action: "change the SO-PIN of",
            name: "changing the SO-PIN",
            serial: serial.as_deref(),
            via: &via,
            consequences: &["Keep the new SO-PIN safe: it cannot be reset by anyone."],
            so_pin: so_status,
            presents_so_pin: true,
        },
        args.confirm,
    )?;
    let old = secrets::so_pin(
        args.so_pin.source(),
        "Current SO-PIN (16 hex digits): ",
        false,
    )?;
    let new = secrets::so_pin(
        args.new_pin.source("new SO-PIN"),
        "New SO-PIN (16 hex digits): ",
        true,
    )?;
    device.hsm.change_so_pin(&old, &new)?;
    output::print(&format!("SO-PIN changed on {device_name}\n"))?;
    Ok(Exit::Ok)
}

/// Arguments of `tessera unblock`.
#[derive(Debug, Args)]
pub struct UnblockArgs {
    #[command(flatten)]
    device: DeviceArgs,
    /// Also set a new user PIN (otherwise the old PIN stays and only its retry counter is
    /// reset).
    #[arg(long)]
    new_pin: bool,
    #[command(flatten)]
    so_pin: SoPinArgs,
    #[command(flatten)]
    new: NewPinArgs,
    #[command(flatten)]
    confirm: ConfirmArgs,
}

/// Runs `tessera unblock`: RESET RETRY COUNTER with the SO-PIN.
pub fn unblock(args: &UnblockArgs) -> Result<Exit> {
    let mut device = args.device.open()?;
    let serial = serial(&mut device.hsm)?;
    let device_name = name(serial.as_deref(), &device.via);
    let user = device.hsm.pin_status(PinRole::User)?;
    let so = device.hsm.pin_status(PinRole::So)?;
    if user == PinStatus::NotInitialised || so == PinStatus::NotInitialised {
        return Err(refuse(
            Exit::Failed,
            format!("{device_name} is not initialised: there is no PIN to unblock (tessera init)"),
        ));
    }
    let options = device.hsm.info().options;
    if !options.contains(Options::RESET_RETRY_COUNTER) {
        return Err(refuse(
            Exit::Failed,
            format!(
                "user-PIN unblock was not enabled when {device_name} was initialised (option \
                 0001): only re-initialisation helps (tessera init), and it erases all keys; no \
                 SO-PIN try was spent"
            ),
        ));
    }
    let set_new = args.new_pin || args.new.given();
    if set_new && options.contains(Options::RESET_RETRY_COUNTER_ONLY) {
        return Err(usage(format!(
            "{device_name} was initialised to only reset the retry counter (option 0020): run \
             without --new-pin"
        )));
    }
    let user_text = match user {
        PinStatus::Blocked => "The user PIN is blocked.".to_owned(),
        PinStatus::TriesLeft { tries_left } => format!(
            "The user PIN is not blocked ({}); this resets its retry counter.",
            output::plural(tries_left, "try left", "tries left")
        ),
        other => format!("The user PIN: {other}."),
    };
    let pin_text = if set_new {
        "It sets a new user PIN."
    } else {
        "The user PIN stays as it is."
    };
    let via = device.via.to_string();
    safety::confirm(
        &Plan {
            action: "unblock the user PIN of",
            name: "user-PIN unblock",
            serial: serial.as_deref(),
            via: &via,
            consequences: &[&user_text, pin_text],
            so_pin: so,
            presents_so_pin: true,
        },
        args.confirm,
    )?;
    let so_pin = secrets::so_pin(args.so_pin.source(), "SO-PIN (16 hex digits): ", false)?;
    let new_pin = if set_new {
        Some(secrets::user_pin(
            args.new.source("new user PIN"),
            "New user PIN (6 to 16 characters): ",
            true,
        )?)
    } else {
        None
    };
    device.hsm.unblock(&so_pin, new_pin.as_ref())?;
    let after = device.hsm.pin_status(PinRole::User)?;
    output::print(&format!(
        "user PIN of {device_name} unblocked{}: {after}\n",
        if set_new { " with a new PIN" } else { "" }
    ))?;
    Ok(Exit::Ok)
}
