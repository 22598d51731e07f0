//! `tessera sign`: SIGN with a key on the card (sc-hsm-protocol.md §2.12).
//!
//! The input is hashed here, on the host, and the hash is what the card signs (ECDSA on a
//! hash, P2 `70`; PKCS#1 v1.5 with the DigestInfo built here, P2 `30`; PSS on a hash, P2
//! `40`): the signature is the same as with on-card hashing, and any input size works (the
//! card hashes at most one APDU's worth).

use std::io::{IsTerminal, Read};
use std::path::PathBuf;

use anyhow::{Context, Result};
use clap::{Args, ValueEnum};
use serde::Serialize;
use tessera_sc_hsm::{EcdsaFormat, HashAlg, KeyKind, SignMechanism};

use super::{login, name, serial};
use crate::device::{DeviceArgs, Via};
use crate::exit::{refuse, usage, Exit};
use crate::output;
use crate::secrets::UserPinArgs;

/// What `--mechanism` names.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Mechanism {
    /// ECDSA on an input that is already a hash (1 to 64 bytes), signed as it is.
    Ecdsa,
    /// ECDSA with SHA-1.
    EcdsaSha1,
    /// ECDSA with SHA-224.
    EcdsaSha224,
    /// ECDSA with SHA-256.
    EcdsaSha256,
    /// ECDSA with SHA-384.
    EcdsaSha384,
    /// ECDSA with SHA-512.
    EcdsaSha512,
    /// RSA PKCS#1 v1.5 with SHA-1.
    RsaPkcs1Sha1,
    /// RSA PKCS#1 v1.5 with SHA-224.
    RsaPkcs1Sha224,
    /// RSA PKCS#1 v1.5 with SHA-256.
    RsaPkcs1Sha256,
    /// RSA PKCS#1 v1.5 with SHA-384.
    RsaPkcs1Sha384,
    /// RSA PKCS#1 v1.5 with SHA-512.
    RsaPkcs1Sha512,
    /// RSA-PSS with SHA-1 (MGF1 with the same hash, salt as long as the hash).
    RsaPssSha1,
    /// RSA-PSS with SHA-224.
    RsaPssSha224,
    /// RSA-PSS with SHA-256.
    RsaPssSha256,
    /// RSA-PSS with SHA-384.
    RsaPssSha384,
    /// RSA-PSS with SHA-512.
    RsaPssSha512,
}

impl Mechanism {
    /// The key kind, and the hash (`None`: the input is the hash).
    fn parts(self) -> (KeyKind, Option<HashAlg>, Family) {
        use HashAlg::*;
        use Mechanism as M;
        match self {
            M::Ecdsa => (KeyKind::Ec, None, Family::Ecdsa),
            M::EcdsaSha1 => (KeyKind::Ec, Some(Sha1), Family::Ecdsa),
            M::EcdsaSha224 => (KeyKind::Ec, Some(Sha224), Family::Ecdsa),
            M::EcdsaSha256 => (KeyKind::Ec, Some(Sha256), Family::Ecdsa),
            M::EcdsaSha384 => (KeyKind::Ec, Some(Sha384), Family::Ecdsa),
            M::EcdsaSha512 => (KeyKind::Ec, Some(Sha512), Family::Ecdsa),
            M::RsaPkcs1Sha1 => (KeyKind::Rsa, Some(Sha1), Family::Pkcs1),
            M::RsaPkcs1Sha224 => (KeyKind::Rsa, Some(Sha224), Family::Pkcs1),
            M::RsaPkcs1Sha256 => (KeyKind::Rsa, Some(Sha256), Family::Pkcs1),
            M::RsaPkcs1Sha384 => (KeyKind::Rsa, Some(Sha384), Family::Pkcs1),
            M::RsaPkcs1Sha512 => (KeyKind::Rsa, Some(Sha512), Family::Pkcs1),
            M::RsaPssSha1 => (KeyKind::Rsa, Some(Sha1), Family::Pss),
            M::RsaPssSha224 => (KeyKind::Rsa, Some(Sha224), Family::Pss),
            M::RsaPssSha256 => (KeyKind::Rsa, Some(Sha256), Family::Pss),
            M::RsaPssSha384 => (KeyKind::Rsa, Some(Sha384), Family::Pss),
            M::RsaPssSha512 => (KeyKind::Rsa, Some(Sha512), Family::Pss),
        }
    }

    fn name(self) -> String {
        self.to_possible_value()
            .map(|v| v.get_name().to_owned())
            .unwrap_or_default()
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Family {
    Ecdsa,
    Pkcs1,
    Pss,
}

/// `--format`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Format {
    /// DER SEQUENCE { r, s } (RFC 3279), what OpenSSL reads.
    Der,
    /// r||s, each half as long as the curve's field (PKCS#11, JOSE).
    Raw,
}

/// Arguments of `tessera sign`.
#[derive(Debug, Args)]
pub struct SignArgs {
    #[command(flatten)]
    device: DeviceArgs,
    /// The key id, 1 to 255 (decimal, or 0x hex).
    #[arg(long, value_name = "N", value_parser = super::keys::parse_key_id)]
    id: u8,
    /// How to sign.
    #[arg(long, value_enum, value_name = "MECHANISM")]
    mechanism: Mechanism,
    /// The input is already the hash of the mechanism's algorithm (its length is checked),
    /// not the data.
    #[arg(long)]
    prehashed: bool,
    /// The data to sign. Default: stdin.
    #[arg(long, value_name = "FILE")]
    input: Option<PathBuf>,
    /// Write the signature here. Default: stdout (as hex when stdout is a terminal).
    #[arg(long, value_name = "FILE")]
    output: Option<PathBuf>,
    /// The ECDSA signature format. RSA signatures have one format.
    #[arg(long, value_enum, value_name = "FORMAT")]
    format: Option<Format>,
    #[command(flatten)]
    pin: UserPinArgs,
    /// Print JSON metadata (fields: device, serial, key_id, mechanism, format, input_len,
    /// digest, signature, output); the signature is hex in `signature`, and also written to
    /// --output when given.
    #[arg(long)]
    json: bool,
}

#[derive(Debug, Serialize)]
struct SignJson<'a> {
    device: &'a Via,
    serial: Option<&'a str>,
    key_id: u8,
    mechanism: String,
    /// `der`, `raw` (ECDSA) or `pkcs1` / `pss` (RSA).
    format: &'static str,
    input_len: usize,
    /// The hash that was signed, hex.
    digest: String,
    signature: String,
    output: Option<String>,
}

/// Runs `tessera sign`.
pub fn run(args: &SignArgs) -> Result<Exit> {
    let (kind, hash, family) = args.mechanism.parts();
    if family != Family::Ecdsa && args.format.is_some() {
        return Err(usage("--format applies to ECDSA signatures only"));
    }
    if args.input.is_none() && std::io::stdin().is_terminal() {
        return Err(usage(
            "nothing to sign: give --input FILE, or pipe the data to stdin",
        ));
    }
    let mut device = args.device.open()?;
    let serial = serial(&mut device.hsm)?;
    // Before asking for the PIN: does the key exist, and does it fit the mechanism?
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
    if let Some(key_kind) = key.kind {
        if key_kind != kind {
            return Err(usage(format!(
                "key {} is an {key_kind} key; {} needs an {kind} key",
                args.id,
                args.mechanism.name()
            )));
        }
    }
    let input = match &args.input {
        Some(path) => std::fs::read(path)
            .map_err(|e| usage(format!("cannot read {}: {e}", path.display())))?,
        None => {
            let mut data = Vec::new();
            std::io::stdin()
                .read_to_end(&mut data)
                .context("cannot read the input from stdin")?;
            data
        }
    };
    let digest = match (hash, args.prehashed) {
        (Some(h), false) => h.digest(&input),
        (Some(h), true) if input.len() != h.output_len() => {
            return Err(usage(format!(
                "--prehashed: a {h} hash is {} bytes, the input is {}",
                h.output_len(),
                input.len()
            )))
        }
        _ => input.clone(),
    };
    let mechanism = match (family, hash) {
        (Family::Ecdsa, _) => SignMechanism::EcdsaHash,
        (Family::Pkcs1, Some(h)) => SignMechanism::RsaPkcs1Hash(h),
        (Family::Pkcs1, None) | (Family::Pss, _) => SignMechanism::RsaPssHash,
    };
    // The mechanism checks the hash length before anything is sent.
    mechanism.command_data(&digest)?;
    let format = match args.format {
        Some(Format::Raw) => EcdsaFormat::Raw,
        _ => EcdsaFormat::Der,
    };
    let device_name = login(&mut device, &args.pin)?;
    let signature = device.hsm.sign(args.id, mechanism, &digest, format)?;
    if let Some(path) = &args.output {
        std::fs::write(path, &signature)
            .with_context(|| format!("cannot write the signature to {}", path.display()))?;
    }
    if args.json {
        output::print_json(&SignJson {
            device: &device.via,
            serial: serial.as_deref(),
            key_id: args.id,
            mechanism: args.mechanism.name(),
            format: match (family, format) {
                (Family::Ecdsa, EcdsaFormat::Raw) => "raw",
                (Family::Ecdsa, _) => "der",
                (Family::Pkcs1, _) => "pkcs1",
                (Family::Pss, _) => "pss",
            },
            input_len: input.len(),
            digest: output::hex(&digest),
            signature: output::hex(&signature),
            output: args.output.as_ref().map(|p| p.display().to_string()),
        })?;
    } else if let Some(path) = &args.output {
        eprintln!(
            "tessera: signed {} bytes with key {} on {device_name}; signature in {}",
            input.len(),
            args.id,
            path.display()
        );
    } else if std::io::stdout().is_terminal() {
        output::print(&format!("{}\n", output::hex(&signature)))?;
    } else {
        output::write_stdout(&signature)?;
    }
    Ok(Exit::Ok)
}
