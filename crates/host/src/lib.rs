//! Host transports for the SmartCard-HSM client (`tessera-sc-hsm`): how the `tessera` command
//! reaches a Nitrokey HSM 2.
//!
//! - [`pcsc`]: through pcscd with the `pcsc` crate. Readers are listed with their cards;
//!   the default reader is the Nitrokey HSM's (rule in the module docs).
//! - [`ccid`]: CCID spoken by the host itself over any [`UsbPipe`]: power on,
//!   XfrBlock at TPDU level with the host role of the T=1 engine or at APDU level, time
//!   extensions, `bSeq` checks. Sans USB: the same code can drive the virtual board's USB.
//! - [`usb`]: the libusb [`UsbPipe`] (`rusb`), device listing (empty, not an
//!   error, where there is no USB) and choice by VID:PID, serial or bus/port path.
//! - [`open`]: one call from a [`Connection`] to a boxed [`Transport`].
//!
//! The in-process virtual card is a transport too: `tessera_sc_hsm` implements
//! [`Transport`] for `tessera_card::virtual_card::VirtualCard` behind its `virtual` feature.
//!
//! What it does not know: the SmartCard-HSM command set (APDUs are opaque here), PINs, the
//! virtual board, rig hardware. Only this crate knows about pcsc and rusb.
#![warn(missing_docs)]
#![forbid(unsafe_code)]

pub mod ccid;
pub mod pcsc;
pub mod usb;

use tessera_sc_hsm::{Transport, TransportError};

pub use ccid::{CcidConfig, CcidTransport, UsbPipe};
pub use pcsc::{PcscTransport, ReaderChoice, ReaderInfo};
pub use usb::{DeviceChoice, RusbPipe, UsbDeviceInfo};

/// How to reach the token.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Connection {
    /// Through pcscd.
    Pcsc(ReaderChoice),
    /// CCID straight over USB (pcscd must not hold the device).
    Usb(DeviceChoice, CcidConfig),
}

impl Default for Connection {
    fn default() -> Self {
        Connection::Pcsc(ReaderChoice::Default)
    }
}

/// Why a reader or device could not be opened. One line each, saying what to do.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum OpenError {
    /// pcscd knows no reader at all.
    #[error("no smart-card reader found: plug in the token (and check that pcscd runs)")]
    NoReaders,
    /// No reader matches the choice.
    #[error("no reader matches {choice}; readers: {}; choose one with --reader NAME or --reader INDEX", list(.readers))]
    NoSuchReader {
        /// The choice, in words.
        choice: String,
        /// Every reader's name.
        readers: Vec<String>,
    },
    /// Several readers match.
    #[error("several readers match: {}; choose one with --reader NAME or --reader INDEX", list(.candidates))]
    Ambiguous {
        /// The matching readers' names.
        candidates: Vec<String>,
    },
    /// No USB device matches the choice.
    #[error("no {choice} found: plug in the token, or list devices with `tessera list`")]
    NoUsbDevice {
        /// The choice, in words.
        choice: String,
    },
    /// Opening or powering failed.
    #[error(transparent)]
    Transport(#[from] TransportError),
}

fn list(names: &[String]) -> String {
    if names.is_empty() {
        "none".to_owned()
    } else {
        names
            .iter()
            .enumerate()
            .map(|(i, n)| format!("#{i} {n:?}"))
            .collect::<Vec<_>>()
            .join(", ")
    }
}

/// Opens the token `connection` names.
pub fn open(connection: &Connection) -> Result<Box<dyn Transport>, OpenError> {
    match connection {
        Connection::Pcsc(choice) => Ok(Box::new(PcscTransport::open(choice)?)),
        Connection::Usb(choice, config) => Ok(Box::new(usb::open(choice, *config)?)),
    }
}
