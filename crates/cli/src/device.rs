//! Which token a command talks to (`--reader`, `--usb`, `--virtual`), and opening it.

use std::fmt;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use clap::Args;
use rand_core::{OsRng, RngCore};
use serde::Serialize;
use tessera_card::memory::{FileStorage, MemoryError};
use tessera_card::virtual_card::{CardConfig, VirtualCard};
use tessera_host::{usb, CcidConfig, DeviceChoice, PcscTransport, ReaderChoice};
use tessera_sc_hsm::{ScHsm, Transport, TransportError, TransportErrorKind};

/// Device selection, on every command that talks to a token. PC/SC is the default.
#[derive(Debug, Clone, Args)]
#[group(id = "device", multiple = false)]
pub struct DeviceArgs {
    /// PC/SC reader, by (part of its) name or by its index in `tessera list`. Default: the
    /// Nitrokey HSM's reader, or else the only reader holding a SmartCard-HSM.
    #[arg(long, value_name = "NAME|INDEX")]
    pub reader: Option<String>,

    /// Talk CCID straight over USB, without pcscd (which must not hold the device): by
    /// VID:PID (hex, e.g. 20a0:4230), USB serial string, or bus-port path (e.g. 1-2.3).
    #[arg(long, value_name = "VID:PID|SERIAL|BUS-PORT")]
    pub usb: Option<String>,

    /// Use a virtual SmartCard-HSM kept in CARD_FILE, in-process (no pcscd, no hardware): try
    /// risky things here first. A missing file is created as a new, uninitialised card.
    #[arg(long = "virtual", value_name = "CARD_FILE")]
    pub virtual_card: Option<PathBuf>,
}

/// How the token was reached, for messages and `--json` (`"device"`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Via {
    /// `pcsc`, `usb` or `virtual`.
    pub transport: &'static str,
    /// The reader's name, the USB device as chosen, or the card file.
    pub name: String,
}

impl fmt::Display for Via {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.transport {
            "pcsc" => write!(f, "reader {:?}", self.name),
            "usb" => write!(f, "{}", self.name),
            _ => write!(f, "virtual card {}", self.name),
        }
    }
}

/// An open token: the SmartCard-HSM client on its transport, and how it was reached.
pub struct Device {
    /// The client, applet selected.
    pub hsm: ScHsm<Box<dyn Transport>>,
    /// How it was reached.
    pub via: Via,
}

impl DeviceArgs {
    /// Opens the token these arguments name and selects the SmartCard-HSM applet.
    pub fn open(&self) -> Result<Device> {
        let (transport, via): (Box<dyn Transport>, Via) = if let Some(path) = &self.virtual_card {
            open_virtual(path)?
        } else if let Some(text) = &self.usb {
            let choice = parse_usb_choice(text);
            let transport = usb::open(&choice, CcidConfig::default())
                .with_context(|| format!("cannot open {choice}"))?;
            (
                Box::new(transport),
                Via {
                    transport: "usb",
                    name: choice.to_string(),
                },
            )
        } else {
            let choice = self
                .reader
                .as_deref()
                .map_or(ReaderChoice::Default, ReaderChoice::parse);
            let transport = PcscTransport::open(&choice)?;
            let name = transport.reader_name().to_owned();
            (
                Box::new(transport),
                Via {
                    transport: "pcsc",
                    name,
                },
            )
        };
        let hsm = ScHsm::open(transport).with_context(|| {
            format!(
                "{via} has no working SmartCard-HSM (check the choice with tessera list, or \
                 reconnect the token)"
            )
        })?;
        Ok(Device { hsm, via })
    }
}

/// `--usb`: `vvvv:pppp` is ids, `<bus>-<port>[.<port>...]` a path, anything else a serial.
pub fn parse_usb_choice(text: &str) -> DeviceChoice {
    if let Some(choice) = DeviceChoice::parse_vid_pid(text) {
        return choice;
    }
    let is_path = text.split_once('-').is_some_and(|(bus, ports)| {
        !bus.is_empty()
            && bus.bytes().all(|b| b.is_ascii_digit())
            && !ports.is_empty()
            && ports
                .split('.')
                .all(|p| !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit()))
    });
    if is_path {
        DeviceChoice::Path(text.to_owned())
    } else {
        DeviceChoice::Serial(text.to_owned())
    }
}

fn random() -> [u8; 32] {
    let mut bytes = [0u8; 32];
    OsRng.fill_bytes(&mut bytes);
    bytes
}

fn open_virtual(path: &Path) -> Result<(Box<dyn Transport>, Via)> {
    let existed = path.exists();
    // A new card gets a random identity (device key, certificates, serial); an existing
    // card's identity is in its file.
    let card = VirtualCard::open(path, CardConfig::default(), random(), random()).map_err(|e| {
        let hint = match e {
            MemoryError::Io { .. } => "",
            _ => " (is it a tessera card file?)",
        };
        anyhow::Error::new(e).context(format!(
            "cannot open the virtual card file {}{hint}",
            path.display()
        ))
    })?;
    if !existed {
        let serial = card.applet().serial().unwrap_or_default();
        eprintln!(
            "tessera: created a new virtual card {serial} in {}",
            path.display()
        );
    }
    let via = Via {
        transport: "virtual",
        name: path.display().to_string(),
    };
    Ok((
        Box::new(VirtualTransport {
            card,
            path: path.to_owned(),
        }),
        via,
    ))
}

/// The in-process virtual card, with the card file named when it cannot be written (the card
/// then answers `6581`, memory failure, and the change did not happen).
struct VirtualTransport {
    card: VirtualCard<FileStorage>,
    path: PathBuf,
}

impl Transport for VirtualTransport {
    fn transmit(&mut self, command: &[u8]) -> Result<Vec<u8>, TransportError> {
        let response = Transport::transmit(&mut self.card, command)?;
        if response.ends_with(&[0x65, 0x81]) {
            if let Some(error) = self.card.last_memory_error() {
                return Err(TransportError::new(
                    TransportErrorKind::Other,
                    format!(
                        "cannot write the card file {} ({error}); nothing was changed",
                        self.path.display()
                    ),
                ));
            }
        }
        Ok(response)
    }

    fn atr(&mut self) -> Result<Vec<u8>, TransportError> {
        Transport::atr(&mut self.card)
    }

    fn reset(&mut self) -> Result<(), TransportError> {
        Transport::reset(&mut self.card)
    }

    fn supports_extended_length(&self) -> bool {
        Transport::supports_extended_length(&self.card)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn usb_choices_parse_as_ids_paths_or_serials() {
        assert_eq!(
            parse_usb_choice("20a0:4230"),
            DeviceChoice::VidPid(0x20A0, 0x4230)
        );
        assert_eq!(
            parse_usb_choice("1-2.3"),
            DeviceChoice::Path("1-2.3".into())
        );
        assert_eq!(parse_usb_choice("3-1"), DeviceChoice::Path("3-1".into()));
        assert_eq!(
            parse_usb_choice("DENK0200654"),
            DeviceChoice::Serial("DENK0200654".into())
        );
        assert_eq!(
            parse_usb_choice("1-2."),
            DeviceChoice::Serial("1-2.".into())
        );
    }
}
