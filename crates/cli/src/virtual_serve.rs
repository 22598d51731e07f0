//! `tessera virtual serve`: virtual cards, one file each, served to pcscd through vpcd.

use std::path::PathBuf;
use std::sync::mpsc;

use anyhow::{Context, Result};
use clap::Args;
use rand_core::{OsRng, RngCore};
use sha2::{Digest, Sha256};
use tessera_card::applet::AppletConfig;
use tessera_card::virtual_card::{AtrProfile, CardConfig, VirtualCard};
use tessera_card::vpcd::{self, ServeConfig, ServeEvent, DEFAULT_PORT};

use crate::exit::usage;

/// Arguments of `tessera virtual serve`.
#[derive(Debug, Args)]
pub struct ServeArgs {
    /// Card files, one per virtual card; a missing file is created as a new, uninitialised card.
    #[arg(required = true, value_name = "CARD_FILE")]
    cards: Vec<PathBuf>,

    /// vpcd ports, one per card, in order. Default: 35963, 35964, ... (Debian's reader.conf
    /// gives vpcd one reader with two slots, on 35963 and 35964).
    #[arg(long, value_delimiter = ',', value_name = "PORT,...")]
    ports: Vec<u16>,

    /// The ATR the cards present: v3 (TA1=18, the Nitrokey HSM 2's card) or v4 (TA1=96).
    #[arg(long, default_value = "v3", value_parser = parse_atr)]
    atr: AtrProfile,

    /// Seed text for the identity (device key, certificates, serial) of cards created now:
    /// the same seed and file order give the same serials. Default: random.
    #[arg(long, value_name = "TEXT")]
    seed: Option<String>,
}

fn parse_atr(s: &str) -> Result<AtrProfile, String> {
    AtrProfile::from_name(s).ok_or_else(|| format!("unknown ATR profile `{s}`: use v3 or v4"))
}

/// The identity seed of the `index`-th card.
fn identity_seed(seed: Option<&str>, index: usize) -> [u8; 32] {
    match seed {
        Some(text) => Sha256::new()
            .chain_update(text.as_bytes())
            .chain_update((index as u64).to_be_bytes())
            .finalize()
            .into(),
        None => random(),
    }
}

fn random() -> [u8; 32] {
    let mut bytes = [0u8; 32];
    OsRng.fill_bytes(&mut bytes);
    bytes
}

/// Run `tessera virtual serve`.
pub fn run(args: &ServeArgs) -> Result<()> {
    let ports: Vec<u16> = if args.ports.is_empty() {
        (0..args.cards.len())
            .map(|i| {
                u16::try_from(i)
                    .ok()
                    .and_then(|i| DEFAULT_PORT.checked_add(i))
            })
            .collect::<Option<_>>()
            .context("too many cards for the default ports; give --ports")?
    } else {
        args.ports.clone()
    };
    if ports.len() != args.cards.len() {
        return Err(usage(format!(
            "{} card files but {} ports: give one port per card with --ports",
            args.cards.len(),
            ports.len()
        )));
    }
    let mut cards = Vec::new();
    for (index, (path, port)) in args.cards.iter().zip(&ports).enumerate() {
        let existed = path.exists();
        let config = CardConfig {
            atr: args.atr,
            applet: AppletConfig::default(),
        };
        let card = VirtualCard::open(
            path,
            config,
            identity_seed(args.seed.as_deref(), index),
            random(),
        )
        .with_context(|| format!("cannot open card file {}", path.display()))?;
        let serial = card
            .applet()
            .serial()
            .unwrap_or_else(|| "(unknown serial)".to_owned());
        eprintln!(
            "tessera: {} card {serial} from {} on vpcd port {port}",
            if existed { "serving" } else { "created" },
            path.display(),
        );
        cards.push((card, *port));
    }

    let (stop_tx, stop_rx) = mpsc::channel::<()>();
    ctrlc::set_handler(move || {
        let _ = stop_tx.send(());
    })
    .context("cannot install the Ctrl-C handler")?;

    let mut serving = Vec::new();
    for (card, port) in cards {
        let handle =
            vpcd::spawn_observed(
                card,
                ServeConfig::loopback(port),
                move |event| match event {
                    ServeEvent::Connected => eprintln!("tessera: port {port}: connected to vpcd"),
                    ServeEvent::Disconnected(why) => {
                        eprintln!("tessera: port {port}: disconnected ({why:?}); reconnecting")
                    }
                    _ => {}
                },
            )
            .map_err(|e| anyhow::anyhow!("cannot serve on port {port}: {e:?}"))?;
        serving.push((port, handle));
    }
    eprintln!("tessera: serving; stop with Ctrl-C (card files are written atomically)");
    let _ = stop_rx.recv();
    for (port, handle) in serving {
        match handle.stop() {
            Ok((card, summary)) => {
                eprintln!(
                    "tessera: port {port}: stopped after {} commands",
                    summary.commands
                );
                if let Some(error) = card.last_memory_error() {
                    eprintln!("tessera: port {port}: last card-file error: {error}");
                }
            }
            Err(e) => eprintln!("tessera: port {port}: {e:?}"),
        }
    }
    Ok(())
}
