//! What the card keeps across power cycles (its EEPROM), and its encoding in the card file.
//!
//! Secrets (PIN values, key material, the DKEK) live here and nowhere else; [`CardState`]'s
//! `Debug` prints none of them.

use std::collections::BTreeMap;
use std::fmt;

use serde::{Deserialize, Serialize};
use zeroize::Zeroizing;

use crate::memory::{self, MemoryError};

/// One PIN: its value and its retry counter (sc-hsm-protocol.md §4.1).
#[derive(Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct PinState {
    /// The PIN value (user PIN: ASCII, 6 to 16 bytes; SO-PIN: 8 bytes binary).
    pub value: Zeroizing<Vec<u8>>,
    /// Tries left; 0 = blocked.
    pub tries_left: u8,
    /// The value a correct presentation restores.
    pub max_tries: u8,
}

impl fmt::Debug for PinState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PinState")
            .field("value", &"<redacted>")
            .field("tries_left", &self.tries_left)
            .field("max_tries", &self.max_tries)
            .finish()
    }
}

/// The DKEK of the (single) key domain (§2.6).
#[derive(Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct DkekState {
    /// Number of shares announced at INITIALIZE (tag 92).
    pub shares_total: u8,
    /// Shares still to import.
    pub shares_outstanding: u8,
    /// XOR of the shares imported so far.
    pub value: Zeroizing<[u8; 32]>,
}

impl fmt::Debug for DkekState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DkekState")
            .field("shares_total", &self.shares_total)
            .field("shares_outstanding", &self.shares_outstanding)
            .finish_non_exhaustive()
    }
}

/// A private key object `CCxx` (§3.2).
#[derive(Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct KeyObject {
    /// The key, in `crypto::PrivateKey`'s serialisation.
    pub key: Zeroizing<Vec<u8>>,
    /// The allowed-algorithm list (tag 91 at generation), if any.
    pub algorithms: Option<Vec<u8>>,
    /// The key-use counter (tag 90), if any: uses left.
    pub use_counter: Option<u32>,
}

impl fmt::Debug for KeyObject {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("KeyObject")
            .field("algorithms", &self.algorithms)
            .field("use_counter", &self.use_counter)
            .finish_non_exhaustive()
    }
}

/// Everything the card keeps across power cycles.
#[derive(Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct CardState {
    /// The device key `CC00` (never readable, kept across INITIALIZE).
    pub device_key: Zeroizing<Vec<u8>>,
    /// EF 2F02: device CVC || DICA CVC (kept across INITIALIZE).
    pub device_certificates: Vec<u8>,
    /// The SO-PIN; `None` on a card that was never initialised.
    pub so_pin: Option<PinState>,
    /// The user PIN; `None` on a card that was never initialised.
    pub user_pin: Option<PinState>,
    /// The user PIN is a transport PIN that must be changed before use (option 0002, §4.4).
    pub transport_pin: bool,
    /// The options of the last INITIALIZE (tag 80).
    pub options: u16,
    /// The DKEK, if INITIALIZE announced shares (tag 92).
    pub dkek: Option<DkekState>,
    /// Elementary files by FID (2F03, C4xx, CExx, C8xx, CAxx, C9xx, CDxx, CFxx, 2F10...).
    pub files: BTreeMap<u16, Vec<u8>>,
    /// Private keys by key id (1..=255).
    pub keys: BTreeMap<u8, KeyObject>,
}

impl fmt::Debug for CardState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CardState")
            .field("so_pin", &self.so_pin)
            .field("user_pin", &self.user_pin)
            .field("transport_pin", &self.transport_pin)
            .field("options", &format_args!("{:04X}", self.options))
            .field("dkek", &self.dkek)
            .field(
                "files",
                &self
                    .files
                    .keys()
                    .map(|f| format!("{f:04X}"))
                    .collect::<Vec<_>>(),
            )
            .field("keys", &self.keys.keys().collect::<Vec<_>>())
            .finish_non_exhaustive()
    }
}

impl CardState {
    /// A card fresh from the factory: device identity present, never initialised.
    pub fn factory(device_key: Vec<u8>, device_certificates: Vec<u8>) -> Self {
        Self {
            device_key: Zeroizing::new(device_key),
            device_certificates,
            so_pin: None,
            user_pin: None,
            transport_pin: false,
            options: 0,
            dkek: None,
            files: BTreeMap::new(),
            keys: BTreeMap::new(),
        }
    }

    /// Whether INITIALIZE DEVICE has ever succeeded.
    pub fn is_initialised(&self) -> bool {
        self.so_pin.is_some()
    }

    /// Encode into a sealed card-file image.
    pub fn to_image(&self) -> Vec<u8> {
        // postcard serialisation of these plain types cannot fail; an empty payload would be
        // refused on load, so a failure here could never load half a state.
        let payload = Zeroizing::new(postcard::to_allocvec(self).unwrap_or_default());
        memory::seal(&payload)
    }

    /// Decode a sealed card-file image.
    pub fn from_image(image: &[u8]) -> Result<Self, MemoryError> {
        let payload = memory::open(image)?;
        postcard::from_bytes(payload).map_err(|e| MemoryError::Payload(e.to_string()))
    }
}
