//! A virtual SmartCard-HSM (CardContact's applet as found in the Nitrokey HSM 2), faithful to
//! `../shared/docs/sc-hsm-protocol.md` as far as the facts go.
//!
//! Work in progress (issue 3). Modules:
//! - [`applet`]: the SmartCard-HSM applet, command APDU in, response APDU out; its choices
//!   where the facts are unknown, and every deliberate difference, are in `FIDELITY.md`.
//! - [`contacts`]: the card side of ISO 7816-3 (power, reset, ATR, PPS, T=1, busy time and
//!   WTX) as a sans-IO model in modelled time, for a virtual board.
//! - [`crypto`]: the card's cryptography (key generation, signing, deciphering, ECDH, DKEK
//!   wrapping) on RustCrypto.
//! - [`cvc`]: CV certificates and requests, key-generation requests and the device identity.
//! - [`memory`]: the card file (atomic whole-image commits) and power-cut fault injection.
//! - [`state`]: what the card keeps across power cycles.
//! - [`virtual_card`]: the card on its contacts (power, ATR profile v3 or v4, the applet), as
//!   vpcd serves it.
//! - [`vpcd`]: a client of vsmartcard's vpcd reader driver, so pcscd sees a virtual card.
//!
//! What it does not know: USB, CCID, PC/SC client APIs, the host driver.

pub mod applet;
pub mod contacts;
pub mod crypto;
pub mod cvc;
pub mod memory;
pub mod state;
pub mod virtual_card;
pub mod vpcd;
