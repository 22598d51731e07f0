//! `tessera status`: serial, applet, initialised or not, both PIN counters, the DKEK, and in
//! plain words what still works.

use anyhow::Result;
use clap::Args;
use serde::Serialize;
use tessera_sc_hsm::pin::SO_PIN_TRIES;
use tessera_sc_hsm::{DeviceStatus, PinStatus};

use crate::device::{DeviceArgs, Via};
use crate::exit::Exit;
use crate::output::{self, severity_name, DkekJson, PinJson};

/// Arguments of `tessera status`.
#[derive(Debug, Args)]
pub struct StatusArgs {
    #[command(flatten)]
    device: DeviceArgs,
    /// Print JSON (fields: device, serial, serial_error, applet, initialised, user_pin,
    /// so_pin, dkek, severity, assessment).
    #[arg(long)]
    json: bool,
}

/// `--json` of `tessera status`.
#[derive(Debug, Serialize)]
struct StatusJson<'a> {
    device: &'a Via,
    serial: Option<&'a str>,
    serial_error: Option<&'a str>,
    applet: AppletJson,
    initialised: bool,
    user_pin: PinJson,
    so_pin: PinJson,
    dkek: Option<DkekJson>,
    severity: &'static str,
    assessment: &'a [String],
}

#[derive(Debug, Serialize)]
struct AppletJson {
    /// "3.5".
    version: String,
    /// "SmartCard-HSM Applet for JCOP".
    kind: String,
    /// The initialisation options, 4 hex digits.
    options: String,
    /// Their names.
    option_names: Vec<String>,
}

/// Runs `tessera status`: exit 0, or 5 when the user PIN or the SO-PIN is blocked.
pub fn run(args: &StatusArgs) -> Result<Exit> {
    let mut device = args.device.open()?;
    let status = device.hsm.status()?;
    if args.json {
        output::print_json(&StatusJson {
            device: &device.via,
            serial: status.serial.as_deref(),
            serial_error: status.serial_error.as_deref(),
            applet: AppletJson {
                version: format!("{}.{}", status.applet.version.0, status.applet.version.1),
                kind: status.applet.kind.to_string(),
                options: format!("{:04x}", status.applet.options.bits()),
                option_names: status.applet.options.names(),
            },
            initialised: status.initialised,
            user_pin: status.user_pin.into(),
            so_pin: status.so_pin.into(),
            dkek: status.dkek.map(DkekJson::from),
            severity: severity_name(status.assessment.severity),
            assessment: &status.assessment.lines,
        })?;
    } else {
        output::print(&render(&status, &device.via))?;
    }
    let blocked = status.user_pin == PinStatus::Blocked || status.so_pin == PinStatus::Blocked;
    Ok(if blocked { Exit::Blocked } else { Exit::Ok })
}

/// The status as a person reads it.
fn render(status: &DeviceStatus, via: &Via) -> String {
    let mut out = match (&status.serial, &status.serial_error) {
        (Some(serial), _) => format!("SmartCard-HSM {serial} ({via})\n"),
        (None, Some(why)) => format!("SmartCard-HSM, serial unknown ({via})\n  serial: {why}\n"),
        (None, None) => format!("SmartCard-HSM, serial unknown ({via})\n"),
    };
    let row = |out: &mut String, label: &str, value: &str| {
        out.push_str(&format!("  {:<13}{value}\n", format!("{label}:")));
    };
    row(&mut out, "applet", &status.applet.to_string());
    if status.initialised {
        row(
            &mut out,
            "initialised",
            &format!("yes, options {}", status.applet.options),
        );
    } else {
        row(&mut out, "initialised", "no");
    }
    row(&mut out, "user PIN", &pin_text(status.user_pin, None));
    row(
        &mut out,
        "SO-PIN",
        &pin_text(status.so_pin, Some(SO_PIN_TRIES)),
    );
    if status.initialised {
        let dkek = match &status.dkek {
            Some(d) if d.is_complete() => d.to_string(),
            Some(d) => format!(
                "{d}; {} still to import (tessera dkek import)",
                output::plural(d.outstanding, "share", "shares")
            ),
            None => "none (initialised without DKEK shares)".to_owned(),
        };
        row(&mut out, "DKEK", &dkek);
    }
    out.push_str("\nWhat still works:\n");
    for line in &status.assessment.lines {
        out.push_str(&format!("  - {line}\n"));
    }
    out
}

fn pin_text(status: PinStatus, max: Option<u8>) -> String {
    match (status, max) {
        (PinStatus::TriesLeft { tries_left }, Some(max)) => {
            format!("{tries_left} of {max} tries left")
        }
        (PinStatus::Blocked, Some(max)) => format!("blocked (0 of {max} tries left)"),
        (PinStatus::Blocked, None) => "blocked (0 tries left)".to_owned(),
        (status, _) => status.to_string(),
    }
}
