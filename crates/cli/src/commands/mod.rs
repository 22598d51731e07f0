//! The token commands, one module each, and what they share: naming the device, checking
//! the user PIN's state before asking for it, and logging in.

pub mod dkek;
pub mod init;
pub mod keys;
pub mod list;
pub mod pins;
pub mod sign;
pub mod status;

use anyhow::Result;
use tessera_sc_hsm::{PinRole, PinStatus, ScHsm, Transport};

use crate::device::{Device, Via};
use crate::exit::{refuse, Exit};
use crate::secrets::{self, UserPinArgs};

/// The serial, or `None` when the device certificate cannot be read (a malformed
/// certificate is not fatal: the device is then named by its reader or file). Transport
/// failures are errors.
pub fn serial<T: Transport>(hsm: &mut ScHsm<T>) -> Result<Option<String>> {
    match hsm.serial() {
        Ok(serial) => Ok(Some(serial)),
        Err(e) if e.transport_kind().is_some() => Err(e.into()),
        Err(_) => Ok(None),
    }
}

/// `SmartCard-HSM DENK0100000 (reader "…")`, or without a serial when it is unknown.
pub fn name(serial: Option<&str>, via: &Via) -> String {
    match serial {
        Some(serial) => format!("SmartCard-HSM {serial} ({via})"),
        None => format!("the SmartCard-HSM in {via} (serial unknown)"),
    }
}

/// Refuses early, before asking for the user PIN, when it cannot work; warns on the last try.
pub fn check_user_pin(status: PinStatus, device: &str) -> Result<()> {
    match status {
        PinStatus::NotInitialised => Err(refuse(
            Exit::Failed,
            format!("{device} is not initialised: initialise it first (tessera init)"),
        )),
        PinStatus::Blocked => Err(refuse(
            Exit::Blocked,
            format!(
                "the user PIN of {device} is blocked: unblock it with the SO-PIN (tessera \
                 unblock); nothing was sent"
            ),
        )),
        PinStatus::TransportPin => Err(refuse(
            Exit::Failed,
            format!(
                "the user PIN of {device} is still the transport PIN: set your own first \
                 (tessera change-pin)"
            ),
        )),
        PinStatus::TriesLeft { tries_left: 1 } => {
            eprintln!("tessera: warning: the user PIN has 1 try left; a wrong PIN blocks it");
            Ok(())
        }
        _ => Ok(()),
    }
}

/// Checks the user PIN's state, reads the PIN and presents it (VERIFY). Returns the device's
/// name for messages.
pub fn login(device: &mut Device, pin: &UserPinArgs) -> Result<String> {
    let serial = serial(&mut device.hsm)?;
    let name = name(serial.as_deref(), &device.via);
    let status = device.hsm.pin_status(PinRole::User)?;
    check_user_pin(status, &name)?;
    let pin = secrets::user_pin(pin.source(), "User PIN: ", false)?;
    device.hsm.verify(&pin)?;
    Ok(name)
}
