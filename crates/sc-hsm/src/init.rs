//! INITIALIZE DEVICE parameters (sc-hsm-protocol.md §2.5) and DKEK shares (§2.6).

use std::fmt;

use serde::Serialize;
use zeroize::Zeroizing;

use crate::der;
use crate::error::InputError;
use crate::info::Options;
use crate::pin::{Pin, SoPin};

/// What INITIALIZE DEVICE sets (sc-hsm-protocol.md §2.5).
///
/// On a device that is already initialised, `so_pin` must be the current SO-PIN (a wrong one
/// costs one of its 15 tries); on a new device it sets the SO-PIN. Initialising erases every
/// key, certificate and data object (§5.1).
#[derive(Debug, Clone)]
pub struct InitParams {
    /// The SO-PIN (tag `82`).
    pub so_pin: SoPin,
    /// The initial user PIN (tag `81`); with [`Options::TRANSPORT_PIN`] a transport PIN the
    /// holder must change before use.
    pub user_pin: Pin,
    /// The user PIN's retry counter (tag `91`), 1 to 10; sc-hsm-tool allows at most 3 for a
    /// 6-character PIN and 5 for 7 characters, and so does this crate.
    pub user_pin_retries: u8,
    /// Options (tag `80`); default: user-PIN unblock with the SO-PIN enabled.
    pub options: Options,
    /// DKEK shares (tag `92`): `None` disables DKEK wrapping, `Some(0)` lets the card make a
    /// random DKEK, `Some(n)` waits for `n` shares before keys can be generated.
    pub dkek_shares: Option<u8>,
}

impl InitParams {
    /// sc-hsm-tool's defaults: 3 retries, user-PIN unblock enabled, no DKEK.
    pub fn new(so_pin: SoPin, user_pin: Pin) -> InitParams {
        InitParams {
            so_pin,
            user_pin,
            user_pin_retries: 3,
            options: Options::DEFAULT,
            dkek_shares: None,
        }
    }

    /// The most retries sc-hsm-tool allows for a PIN of `len` characters (§4.1).
    pub fn max_retries(pin_len: usize) -> u8 {
        match pin_len {
            0..=6 => 3,
            7 => 5,
            _ => 10,
        }
    }

    /// Checks the retry counter against the PIN length.
    pub fn check(&self) -> Result<(), InputError> {
        let max = InitParams::max_retries(self.user_pin.len());
        if !(1..=max).contains(&self.user_pin_retries) {
            return Err(InputError::RetryCounter {
                retries: self.user_pin_retries,
                max,
                pin_len: self.user_pin.len(),
            });
        }
        Ok(())
    }

    /// The command data: `80 02 options | 81 n PIN | 82 08 SO-PIN | 91 01 retries |
    /// [92 01 shares]` (§2.5, §6.2). Holds the PINs: zeroized on drop.
    pub fn command_data(&self) -> Result<Zeroizing<Vec<u8>>, InputError> {
        self.check()?;
        let mut data = Zeroizing::new(Vec::with_capacity(64));
        data.extend_from_slice(&der::tlv(0x80, &self.options.bits().to_be_bytes()));
        data.extend_from_slice(&Zeroizing::new(der::tlv(0x81, self.user_pin.as_bytes())));
        data.extend_from_slice(&Zeroizing::new(der::tlv(0x82, self.so_pin.as_bytes())));
        data.extend_from_slice(&der::tlv(0x91, &[self.user_pin_retries]));
        if let Some(shares) = self.dkek_shares {
            data.extend_from_slice(&der::tlv(0x92, &[shares]));
        }
        Ok(data)
    }
}

/// One DKEK share: 32 secret bytes (sc-hsm-protocol.md §2.6). Zeroized on drop; never shown.
#[derive(Clone)]
pub struct DkekShare(Zeroizing<[u8; 32]>);

impl DkekShare {
    /// A share from its 32 bytes.
    pub fn new(bytes: [u8; 32]) -> DkekShare {
        DkekShare(Zeroizing::new(bytes))
    }

    /// A share from a slice, which must be 32 bytes.
    pub fn from_slice(bytes: &[u8]) -> Result<DkekShare, InputError> {
        let array: [u8; 32] = bytes.try_into().map_err(|_| {
            InputError::Unsupported(format!(
                "a DKEK share is 32 bytes, not {} (an encrypted sc-hsm-tool share file must be \
                 decrypted first)",
                bytes.len()
            ))
        })?;
        Ok(DkekShare::new(array))
    }

    /// The 32 bytes.
    pub fn as_bytes(&self) -> &[u8; 32] {
        &self.0
    }
}

impl fmt::Debug for DkekShare {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("DkekShare(<redacted>)")
    }
}

/// The DKEK state: the answer to IMPORT DKEK SHARE or its query (§2.6).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
pub struct DkekStatus {
    /// Shares the device was initialised for.
    pub total: u8,
    /// Shares still to import.
    pub outstanding: u8,
    /// Key check value: the first 8 bytes of SHA-256 of the DKEK (so far).
    #[serde(serialize_with = "kcv_hex")]
    pub kcv: [u8; 8],
}

fn kcv_hex<S: serde::Serializer>(kcv: &[u8; 8], s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(&crate::hex(kcv))
}

impl DkekStatus {
    /// Reads `<total> <outstanding> <KCV 8>` (pico appends a key-domain UID: ignored).
    pub fn parse(data: &[u8]) -> Result<DkekStatus, String> {
        match data {
            [total, outstanding, kcv @ ..] if kcv.len() >= 8 => {
                let mut k = [0u8; 8];
                k.copy_from_slice(kcv.get(..8).unwrap_or(&[0; 8]));
                Ok(DkekStatus {
                    total: *total,
                    outstanding: *outstanding,
                    kcv: k,
                })
            }
            _ => Err(format!(
                "DKEK status is at least 10 bytes, not {}",
                data.len()
            )),
        }
    }

    /// Whether every share is in.
    pub fn is_complete(&self) -> bool {
        self.outstanding == 0
    }
}

impl fmt::Display for DkekStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} of {} shares imported, KCV {}",
            self.total.saturating_sub(self.outstanding),
            self.total,
            crate::hex(&self.kcv)
        )
    }
}
