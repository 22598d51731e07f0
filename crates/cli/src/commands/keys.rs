//! `tessera keys`, `tessera keygen` and `tessera delete-key`.

use std::path::PathBuf;

use anyhow::{Context, Result};
use clap::Args;
use serde::Serialize;
use tessera_sc_hsm::{FileState, KeyAlgorithm, KeyInfo, KeyKind, PublicKey};

use super::{login, name, serial};
use crate::device::{DeviceArgs, Via};
use crate::exit::{refuse, Exit};
use crate::output;
use crate::safety::{self, ConfirmArgs, Plan};
use crate::secrets::UserPinArgs;

/// A key id: 1 to 255, decimal or `0x` hex.
pub fn parse_key_id(text: &str) -> Result<u8, String> {
    let value = match text.strip_prefix("0x").or_else(|| text.strip_prefix("0X")) {
        Some(hex) => u8::from_str_radix(hex, 16),
        None => text.parse::<u8>(),
    };
    match value {
        Ok(0) => Err("key id 0 is the device's own key; use 1 to 255".to_owned()),
        Ok(id) => Ok(id),
        Err(_) => Err(format!(
            "{text:?} is not a key id: use 1 to 255 (or 0x01 to 0xff)"
        )),
    }
}

/// Arguments of `tessera keys`.
#[derive(Debug, Args)]
pub struct KeysArgs {
    #[command(flatten)]
    device: DeviceArgs,
    /// Print JSON (fields: device, serial, keys: [{id, label, kind, bits, curve,
    /// public_key_pem, problems}]).
    #[arg(long)]
    json: bool,
}

#[derive(Debug, Serialize)]
struct KeysJson<'a> {
    device: &'a Via,
    serial: Option<&'a str>,
    keys: Vec<KeyJson>,
}

/// One key in `--json`.
#[derive(Debug, Serialize)]
struct KeyJson {
    id: u8,
    label: Option<String>,
    /// `ec`, `rsa`, or null when unknown.
    kind: Option<&'static str>,
    bits: Option<u16>,
    /// `P-256`, `P-384`, `P-521`, `brainpoolP256r1`.
    curve: Option<String>,
    /// The public key (SubjectPublicKeyInfo, PEM), when the card holds it.
    public_key_pem: Option<String>,
    /// What is wrong with the key's files, if anything.
    problems: Vec<String>,
}

fn kind_name(kind: KeyKind) -> &'static str {
    match kind {
        KeyKind::Ec => "ec",
        KeyKind::Rsa => "rsa",
    }
}

fn problems(key: &KeyInfo) -> Vec<String> {
    let mut out = Vec::new();
    for (file, state) in [
        ("description (PRKD)", &key.description),
        ("public-key file", &key.public_key_file),
    ] {
        match state {
            FileState::Unreadable(why) => out.push(format!("{file} unreadable: {why}")),
            FileState::Malformed(why) => out.push(format!("{file} malformed: {why}")),
            FileState::Present | FileState::Absent => {}
        }
    }
    out
}

/// Runs `tessera keys`.
pub fn keys(args: &KeysArgs) -> Result<Exit> {
    let mut device = args.device.open()?;
    let serial = serial(&mut device.hsm)?;
    let device_name = name(serial.as_deref(), &device.via);
    let keys = device.hsm.list_keys()?;
    if args.json {
        output::print_json(&KeysJson {
            device: &device.via,
            serial: serial.as_deref(),
            keys: keys
                .iter()
                .map(|k| KeyJson {
                    id: k.id,
                    label: k.label.clone(),
                    kind: k.kind.map(kind_name),
                    bits: k.bits,
                    curve: k.curve.map(|c| c.to_string()),
                    public_key_pem: k.public_key.as_ref().map(PublicKey::to_pem),
                    problems: problems(k),
                })
                .collect(),
        })?;
        return Ok(Exit::Ok);
    }
    if keys.is_empty() {
        output::print(&format!(
            "no keys on {device_name} (generate one with tessera keygen)\n"
        ))?;
        return Ok(Exit::Ok);
    }
    let mut text = format!("keys on {device_name}:\n   ID  TYPE              LABEL\n");
    for key in &keys {
        let kind = match (key.kind, key.curve, key.bits) {
            (Some(KeyKind::Ec), Some(curve), _) => format!("EC {curve}"),
            (Some(kind), _, Some(bits)) => format!("{kind} {bits}"),
            (Some(kind), _, None) => kind.to_string(),
            (None, _, _) => "unknown".to_owned(),
        };
        let label = key
            .label
            .as_deref()
            .map_or_else(|| "(no label)".to_owned(), |l| format!("{l:?}"));
        text.push_str(&format!("  {:>3}  {kind:<16}  {label}\n", key.id));
        for problem in problems(key) {
            text.push_str(&format!("       note: {problem}\n"));
        }
    }
    output::print(&text)?;
    Ok(Exit::Ok)
}

/// Arguments of `tessera keygen`.
#[derive(Debug, Args)]
pub struct KeygenArgs {
    #[command(flatten)]
    device: DeviceArgs,
    /// The key type: ec:p256, ec:p384, ec:p521, ec:brainpoolP256r1, rsa:2048, rsa:3072 or
    /// rsa:4096.
    #[arg(long = "type", value_name = "TYPE", value_parser = parse_algorithm)]
    algorithm: KeyAlgorithm,
    /// The key id, 1 to 255 (decimal, or 0x hex). Default: the lowest free id.
    #[arg(long, value_name = "N", value_parser = parse_key_id)]
    id: Option<u8>,
    /// The key's label, as OpenSC and PKCS#11 applications show it. Default: "key <id>".
    #[arg(long, value_name = "LABEL")]
    label: Option<String>,
    /// Write the public key (PEM) to this file instead of stdout.
    #[arg(long, value_name = "FILE")]
    output: Option<PathBuf>,
    #[command(flatten)]
    pin: UserPinArgs,
    /// Print JSON (fields: device, serial, id, algorithm, label, public_key_pem).
    #[arg(long)]
    json: bool,
}

fn parse_algorithm(text: &str) -> Result<KeyAlgorithm, String> {
    text.parse::<KeyAlgorithm>().map_err(|e| e.to_string())
}

#[derive(Debug, Serialize)]
struct KeygenJson<'a> {
    device: &'a Via,
    serial: Option<&'a str>,
    id: u8,
    algorithm: String,
    label: &'a str,
    public_key_pem: String,
}

/// Runs `tessera keygen`.
pub fn keygen(args: &KeygenArgs) -> Result<Exit> {
    let mut device = args.device.open()?;
    if let Some(id) = args.id {
        // Before asking for the PIN.
        if device.hsm.key_info(id)?.is_some() {
            return Err(refuse(
                Exit::Failed,
                format!("key {id} already exists: delete it first (tessera delete-key) or choose another --id"),
            ));
        }
    }
    let device_name = login(&mut device, &args.pin)?;
    if args.algorithm.kind() == KeyKind::Rsa {
        eprintln!("tessera: generating an RSA key; a real card can take a minute");
    }
    let key = device
        .hsm
        .generate_key(args.algorithm, args.id, args.label.as_deref())?;
    let pem = key.public_key.to_pem();
    if let Some(path) = &args.output {
        std::fs::write(path, &pem).with_context(|| {
            format!(
                "key {} was generated, but {} cannot be written",
                key.id,
                path.display()
            )
        })?;
    }
    if args.json {
        let serial = super::serial(&mut device.hsm)?;
        output::print_json(&KeygenJson {
            device: &device.via,
            serial: serial.as_deref(),
            id: key.id,
            algorithm: key.algorithm.to_string(),
            label: &key.label,
            public_key_pem: pem,
        })?;
        return Ok(Exit::Ok);
    }
    let mut text = format!(
        "generated {} key {} {:?} on {device_name}\n",
        key.algorithm, key.id, key.label
    );
    match &args.output {
        Some(path) => text.push_str(&format!("public key written to {}\n", path.display())),
        None => text.push_str(&pem),
    }
    output::print(&text)?;
    Ok(Exit::Ok)
}

/// Arguments of `tessera delete-key`.
#[derive(Debug, Args)]
pub struct DeleteKeyArgs {
    #[command(flatten)]
    device: DeviceArgs,
    /// The key id, 1 to 255 (decimal, or 0x hex).
    #[arg(long, value_name = "N", value_parser = parse_key_id)]
    id: u8,
    #[command(flatten)]
    pin: UserPinArgs,
    /// Do not ask for confirmation (for scripts).
    #[arg(long)]
    yes: bool,
}

/// Runs `tessera delete-key`: the key, its description and its public key or certificate.
pub fn delete_key(args: &DeleteKeyArgs) -> Result<Exit> {
    let mut device = args.device.open()?;
    let serial = serial(&mut device.hsm)?;
    let key = device.hsm.key_info(args.id)?.ok_or_else(|| {
        refuse(
            Exit::Failed,
            format!(
                "there is no key {} on {} (list them with tessera keys)",
                args.id,
                name(serial.as_deref(), &device.via)
            ),
        )
    })?;
    let via = device.via.to_string();
    let what = format!(
        "The key is {}; it cannot be recovered unless it was wrapped with a DKEK.",
        key.describe()
    );
    safety::confirm(
        &Plan {
            action: &format!("delete key {} from", args.id),
            name: "deletion",
            serial: serial.as_deref(),
            via: &via,
            consequences: &[&what],
            so_pin: tessera_sc_hsm::PinStatus::Verified,
            presents_so_pin: false,
        },
        ConfirmArgs {
            yes: args.yes,
            force: false,
        },
    )?;
    let device_name = login(&mut device, &args.pin)?;
    device.hsm.delete_key(args.id)?;
    output::print(&format!("deleted key {} from {device_name}\n", args.id))?;
    Ok(Exit::Ok)
}
