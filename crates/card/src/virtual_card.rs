//! The virtual card as a whole, as a reader sees it on its contacts: power, the ATR, and the
//! applet behind them, with its memory in a [`Storage`].
//!
//! [`VirtualCard`] implements [`VpcdCard`], so [`crate::vpcd::serve`] can hand it to pcscd.

use std::path::Path;

use crate::applet::{Applet, AppletConfig};
use crate::memory::{FileStorage, MemoryError, Storage};
use crate::vpcd::VpcdCard;

/// Which SmartCard-HSM ATR the card presents (sc-hsm-protocol.md §1.2, hardware.md §A).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum AtrProfile {
    /// The JCOP3 SmartCard-HSM ("atrJCOP3", TA1 = 18: F=372, D=12, 116 129 bps at 3.6 MHz),
    /// seen on a real Nitrokey HSM 2 (GH-2432).
    #[default]
    V3,
    /// The faster JCOP3 variant ("atrJCOP3F", TA1 = 96: F=512, D=32) of SmartCard-HSM 4.0
    /// cards, which the stock firmware fails to drive (hardware.md §A, issue #100).
    V4,
}

impl AtrProfile {
    /// The ATR bytes.
    pub fn atr(self) -> &'static [u8] {
        match self {
            AtrProfile::V3 => &[
                0x3B, 0xDE, 0x18, 0xFF, 0x81, 0x91, 0xFE, 0x1F, 0xC3, 0x80, 0x31, 0x81, 0x54, 0x48,
                0x53, 0x4D, 0x31, 0x73, 0x80, 0x21, 0x40, 0x81, 0x07, 0x1C,
            ],
            AtrProfile::V4 => &[
                0x3B, 0xDE, 0x96, 0xFF, 0x81, 0x91, 0xFE, 0x1F, 0xC3, 0x80, 0x31, 0x81, 0x54, 0x48,
                0x53, 0x4D, 0x31, 0x73, 0x80, 0x21, 0x40, 0x81, 0x07, 0x92,
            ],
        }
    }

    /// Parse "v3" or "v4".
    pub fn from_name(name: &str) -> Option<AtrProfile> {
        match name.to_ascii_lowercase().as_str() {
            "v3" | "3" => Some(AtrProfile::V3),
            "v4" | "4" => Some(AtrProfile::V4),
            _ => None,
        }
    }
}

/// How a virtual card is built.
#[derive(Debug, Clone, Default)]
pub struct CardConfig {
    /// The ATR it presents.
    pub atr: AtrProfile,
    /// The applet's choices where the facts are unknown.
    pub applet: AppletConfig,
}

/// A virtual SmartCard-HSM: contacts, ATR and the applet on its memory.
#[derive(Debug)]
pub struct VirtualCard<S: Storage> {
    applet: Applet<S>,
    atr: AtrProfile,
    powered: bool,
    /// The last memory failure (the card answered 6581), for the operator.
    last_memory_error: Option<String>,
}

impl VirtualCard<FileStorage> {
    /// Open the card file at `path`, creating a new card there if it does not exist.
    ///
    /// `seed` makes a new card's identity (device key, certificates, serial); it is ignored for
    /// an existing card, whose identity is in its file. `rng_seed` seeds this power cycle's
    /// random number generator.
    pub fn open(
        path: &Path,
        config: CardConfig,
        seed: [u8; 32],
        rng_seed: [u8; 32],
    ) -> Result<Self, MemoryError> {
        Self::new(FileStorage::new(path), config, seed, rng_seed)
    }
}

impl<S: Storage> VirtualCard<S> {
    /// A card on `storage` (a new card if the storage is empty).
    pub fn new(
        storage: S,
        config: CardConfig,
        seed: [u8; 32],
        rng_seed: [u8; 32],
    ) -> Result<Self, MemoryError> {
        Ok(Self {
            applet: Applet::power_up(storage, config.applet, seed, rng_seed)?,
            atr: config.atr,
            powered: false,
            last_memory_error: None,
        })
    }

    /// The applet (for status tools and tests).
    pub fn applet(&self) -> &Applet<S> {
        &self.applet
    }

    /// Whether the contacts are powered.
    pub fn is_powered(&self) -> bool {
        self.powered
    }

    /// The last memory failure, if any (the card answered `6581` to that command).
    pub fn last_memory_error(&self) -> Option<&str> {
        self.last_memory_error.as_deref()
    }
}

impl<S: Storage> VpcdCard for VirtualCard<S> {
    fn power_on(&mut self) {
        self.powered = true;
        self.applet.reset();
    }

    fn power_off(&mut self) {
        self.powered = false;
        self.applet.reset();
    }

    fn reset(&mut self) {
        self.applet.reset();
    }

    fn atr(&self) -> Vec<u8> {
        self.atr.atr().to_vec()
    }

    fn transmit(&mut self, command: &[u8]) -> Vec<u8> {
        match self.applet.process(command) {
            Ok(response) => response,
            Err(error) => {
                // The card file could not be written: the change did not happen (whole-image
                // commits), and the card reports a memory failure (ISO 7816-4 6581).
                self.last_memory_error = Some(error.to_string());
                vec![0x65, 0x81]
            }
        }
    }
}
