//! A client for CardContact's SmartCard-HSM applet, the card inside the Nitrokey HSM 2, over
//! any transport (sc-hsm-protocol.md).
//!
//! - [`Transport`]: what carries APDUs (PC/SC and CCID over USB in `tessera-host`; the
//!   in-process virtual card with the `virtual` feature), with typed [`TransportError`]s.
//! - [`ScHsm`]: the typed operations: select, PIN status, verify, change PIN and SO-PIN,
//!   unblock, initialise, DKEK shares, objects and keys, key generation, signing, the device
//!   certificates and serial. It sends extended APDUs when the transport carries them and
//!   command chaining otherwise, and fetches `61xx` responses with GET RESPONSE.
//! - [`PinStatus`] and [`Assessment`]: the state of each PIN and, in plain words, what still
//!   works (with a blocked SO-PIN: "the user PIN still works; re-initialisation and user-PIN
//!   unblock are no longer possible").
//! - [`Pin`], [`SoPin`], [`DkekShare`]: secrets, zeroized on drop and never shown by `Debug`.
//!   The SO-PIN is 16 hex digits, decoded as OpenSC decodes it.
//! - [`Error`]: one line each, naming the operation, the status word and its meaning, and what
//!   to do ("VERIFY: 63C1 — wrong user PIN, 1 try left; …"). Garbage from the card is
//!   [`Error::Malformed`], never a panic.
//!
//! Dependencies: `tessera-card` for its CV-certificate parser (`cvc`: EF 2F02, key-generation
//! requests) and EC domain parameters (`crypto::Curve`); the virtual card itself only with the
//! `virtual` feature.
//!
//! What it does not know: readers, USB, CCID, T=1 (the transport's business); secure
//! messaging, public-key authentication, key wrapping and AES keys (not needed by the owner's
//! questions yet); X.509 (certificates in `CExx` are recognised, not parsed); time.
#![warn(missing_docs)]
#![forbid(unsafe_code)]

mod client;
mod der;
pub mod device;
pub mod error;
pub mod info;
pub mod init;
pub mod keys;
pub mod pin;
pub mod sign;
pub mod transport;

pub use client::{DeviceStatus, ScHsm, MAX_EXTENDED_DATA};
pub use device::DeviceCertificates;
pub use error::{Error, InputError, Operation};
pub use info::{is_sc_hsm_atr, AppletInfo, AppletKind, Options, AID, KNOWN_ATRS};
pub use init::{DkekShare, DkekStatus, InitParams};
pub use keys::{
    EcCurve, FileState, GeneratedKey, KeyAlgorithm, KeyDescription, KeyInfo, KeyKind, ObjectId,
    ObjectKind, PublicKey,
};
pub use pin::{Assessment, Pin, PinRole, PinStatus, Severity, SoPin};
pub use sign::{EcdsaFormat, HashAlg, SignMechanism};
pub use transport::{Transport, TransportError, TransportErrorKind};

/// The result of a SmartCard-HSM operation.
pub type Result<T> = std::result::Result<T, Error>;

/// Lower-case hex, no separators.
pub(crate) fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Bytes from hex digits (constants of this crate only; a bad pair decodes as 0).
pub(crate) fn unhex(text: &str) -> Vec<u8> {
    text.as_bytes()
        .chunks(2)
        .map(|pair| {
            std::str::from_utf8(pair)
                .ok()
                .and_then(|s| u8::from_str_radix(s, 16).ok())
                .unwrap_or(0)
        })
        .collect()
}
