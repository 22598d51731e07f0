//! `tessera dkek import` and `tessera dkek status` (sc-hsm-protocol.md §2.6).

use std::io::{IsTerminal, Read};
use std::path::{Path, PathBuf};

use anyhow::Result;
use clap::{Args, Subcommand};
use serde::Serialize;
use tessera_sc_hsm::{DkekShare, DkekStatus};
use zeroize::Zeroizing;

use super::{name, serial};
use crate::device::{DeviceArgs, Via};
use crate::dkek_file;
use crate::exit::{refuse, usage, Exit};
use crate::output::{self, DkekJson};
use crate::secrets::{self, Source};

/// `tessera dkek ...`.
#[derive(Debug, Subcommand)]
pub enum DkekCommand {
    /// Import one DKEK share (32 bytes) into a device initialised with --dkek-shares.
    Import(ImportArgs),
    /// Show how many DKEK shares are imported and the key check value (KCV).
    Status(StatusArgs),
}

/// Arguments of `tessera dkek import`.
#[derive(Debug, Args)]
#[command(group = clap::ArgGroup::new("share").required(true).multiple(true))]
pub struct ImportArgs {
    #[command(flatten)]
    device: DeviceArgs,
    /// The share: a password-encrypted share file from `sc-hsm-tool --create-dkek-share`, a
    /// file of 32 bytes, or of 64 hex digits (spaces and line breaks ignored). Keep it
    /// secret: anyone with all shares can unwrap the keys.
    #[arg(value_name = "FILE", group = "share")]
    file: Option<PathBuf>,
    /// The share is 64 hex digits: in FILE, or without FILE typed at a prompt without echo
    /// (or read from stdin when it is not a terminal).
    #[arg(long, group = "share")]
    hex: bool,
    /// For a password-encrypted sc-hsm-tool share file: read the password from this
    /// environment variable (give its name). Default: a prompt without echo.
    #[arg(long, value_name = "VAR", conflicts_with = "password_file")]
    password_env: Option<String>,
    /// For a password-encrypted sc-hsm-tool share file: read the password from this file.
    #[arg(long, value_name = "FILE")]
    password_file: Option<PathBuf>,
    /// The key-derivation iteration count of an encrypted share file (sc-hsm-tool's).
    #[arg(long, value_name = "N", default_value_t = dkek_file::SC_HSM_TOOL_ITERATIONS)]
    pbe_iterations: u32,
    /// Print the DKEK state afterwards as JSON (as `tessera dkek status --json`).
    #[arg(long)]
    json: bool,
}

/// Arguments of `tessera dkek status`.
#[derive(Debug, Args)]
pub struct StatusArgs {
    #[command(flatten)]
    device: DeviceArgs,
    /// Print JSON (fields: device, serial, dkek: null or {total, outstanding, imported,
    /// complete, kcv}).
    #[arg(long)]
    json: bool,
}

#[derive(Debug, Serialize)]
struct DkekStatusJson<'a> {
    device: &'a Via,
    serial: Option<&'a str>,
    dkek: Option<DkekJson>,
}

/// Runs `tessera dkek ...`.
pub fn run(command: &DkekCommand) -> Result<Exit> {
    match command {
        DkekCommand::Import(args) => import(args),
        DkekCommand::Status(args) => status(args),
    }
}

fn status(args: &StatusArgs) -> Result<Exit> {
    let mut device = args.device.open()?;
    let serial = serial(&mut device.hsm)?;
    let device_name = name(serial.as_deref(), &device.via);
    let dkek = device.hsm.dkek_status()?;
    if args.json {
        output::print_json(&DkekStatusJson {
            device: &device.via,
            serial: serial.as_deref(),
            dkek: dkek.map(DkekJson::from),
        })?;
    } else {
        output::print(&format!("{}\n", describe(dkek, &device_name)))?;
    }
    Ok(Exit::Ok)
}

fn describe(dkek: Option<DkekStatus>, device_name: &str) -> String {
    match dkek {
        None => format!("no DKEK: {device_name} was initialised without DKEK shares"),
        Some(d) if d.is_complete() => format!("DKEK of {device_name}: {d}; complete"),
        Some(d) => format!(
            "DKEK of {device_name}: {d}; {} still to import (tessera dkek import)",
            output::plural(d.outstanding, "share", "shares")
        ),
    }
}

fn import(args: &ImportArgs) -> Result<Exit> {
    // Read the share before touching the device: a bad file changes nothing.
    let share = match &args.file {
        Some(path) => share_from_file(path, args)?,
        None => share_from_hex(&read_hex_share()?)?,
    };
    let mut device = args.device.open()?;
    let serial = serial(&mut device.hsm)?;
    let device_name = name(serial.as_deref(), &device.via);
    let dkek = device.hsm.import_dkek_share(&share)?;
    if args.json {
        output::print_json(&DkekStatusJson {
            device: &device.via,
            serial: serial.as_deref(),
            dkek: Some(dkek.into()),
        })?;
    } else {
        output::print(&format!(
            "imported a DKEK share\n{}\n",
            describe(Some(dkek), &device_name)
        ))?;
    }
    Ok(Exit::Ok)
}

fn share_from_file(path: &Path, args: &ImportArgs) -> Result<DkekShare> {
    let bytes = Zeroizing::new(std::fs::read(path).map_err(|e| {
        usage(format!(
            "cannot read the DKEK share {}: {e}",
            path.display()
        ))
    })?);
    if dkek_file::is_encrypted(&bytes) {
        let password = secrets::read(
            Source {
                what: "password of the DKEK share",
                env: args.password_env.as_deref(),
                file: args.password_file.as_deref(),
                flags: "--password-env VAR or --password-file FILE",
            },
            &format!("Password of the DKEK share {}: ", path.display()),
            false,
        )?;
        if args.pbe_iterations >= 1_000_000 {
            eprintln!(
                "tessera: decrypting {} ({} iterations; this takes a few seconds)",
                path.display(),
                args.pbe_iterations
            );
        }
        return dkek_file::decrypt(&bytes, password.as_bytes(), args.pbe_iterations)
            .map_err(|e| usage(format!("{}: {e}", path.display())));
    }
    let hex = args.hex;
    if !hex && bytes.len() == 32 {
        return Ok(DkekShare::from_slice(&bytes)?);
    }
    let text = std::str::from_utf8(&bytes).map_err(|_| {
        usage(format!(
            "{} holds neither 32 bytes nor 64 hex digits ({} bytes)",
            path.display(),
            bytes.len()
        ))
    })?;
    share_from_hex(text)
}

/// 64 hex digits, whitespace ignored. The error never repeats the input.
fn share_from_hex(text: &str) -> Result<DkekShare> {
    let digits: Zeroizing<Vec<u8>> =
        Zeroizing::new(text.bytes().filter(|b| !b.is_ascii_whitespace()).collect());
    if digits.len() != 64 {
        return Err(usage(format!(
            "a DKEK share is 64 hex digits (32 bytes), not {} characters",
            digits.len()
        )));
    }
    let mut share = Zeroizing::new([0u8; 32]);
    for (i, (byte, pair)) in share.iter_mut().zip(digits.chunks_exact(2)).enumerate() {
        let value = std::str::from_utf8(pair)
            .ok()
            .and_then(|p| u8::from_str_radix(p, 16).ok())
            .ok_or_else(|| {
                usage(format!(
                    "the DKEK share must be hex digits: characters {} and {} are not both hex",
                    2 * i + 1,
                    2 * i + 2
                ))
            })?;
        *byte = value;
    }
    Ok(DkekShare::new(*share))
}

/// `--hex` without a file: a prompt without echo, or stdin when it is not a terminal.
fn read_hex_share() -> Result<Zeroizing<String>> {
    if std::io::stdin().is_terminal() {
        return secrets::read(
            Source {
                what: "DKEK share",
                env: None,
                file: None,
                flags: "a FILE",
            },
            "DKEK share (64 hex digits): ",
            false,
        );
    }
    let mut text = Zeroizing::new(String::new());
    std::io::stdin().read_to_string(&mut text).map_err(|e| {
        refuse(
            Exit::Usage,
            format!("cannot read the DKEK share from stdin: {e}"),
        )
    })?;
    Ok(text)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hex_shares_ignore_whitespace_and_name_no_digit() {
        let text = format!("{}\n{}\n", "01".repeat(16), "01".repeat(16));
        assert_eq!(share_from_hex(&text).unwrap().as_bytes(), &[1u8; 32]);
        let err = share_from_hex(&"0g".repeat(32)).unwrap_err().to_string();
        assert!(err.contains("characters 1 and 2"), "{err}");
        assert!(!err.contains("0g"), "{err}");
        assert!(share_from_hex("0101").is_err());
    }
}
