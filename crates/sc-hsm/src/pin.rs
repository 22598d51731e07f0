//! PINs and their state (sc-hsm-protocol.md §4): the user PIN and the SO-PIN as zeroizing
//! values, the status a VERIFY without data reports, and what still works in plain words.
//!
//! PIN values are never shown: their `Debug` prints `<redacted>`, they have no `Display`, and
//! no error message carries them.

use std::fmt;

use serde::Serialize;
use tessera_apdu::StatusWord;
use zeroize::Zeroizing;

use crate::error::InputError;
use crate::info::Options;

/// The shortest user PIN the SmartCard-HSM takes (sc-hsm-protocol.md §4.1).
pub const USER_PIN_MIN_LEN: usize = 6;
/// The longest user PIN the SmartCard-HSM takes (sc-hsm-protocol.md §4.1).
pub const USER_PIN_MAX_LEN: usize = 16;
/// The SO-PIN's retry counter: fixed at 15 (sc-hsm-protocol.md §4.1).
pub const SO_PIN_TRIES: u8 = 15;

/// Which PIN: P2 of VERIFY, CHANGE REFERENCE DATA (sc-hsm-protocol.md §2.2, §2.3).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum PinRole {
    /// The user PIN, reference `81`.
    User,
    /// The SO-PIN ("initialization code"), reference `88`.
    So,
}

impl PinRole {
    /// The PIN reference (P2).
    pub const fn reference(self) -> u8 {
        match self {
            PinRole::User => 0x81,
            PinRole::So => 0x88,
        }
    }
}

impl fmt::Display for PinRole {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            PinRole::User => "user PIN",
            PinRole::So => "SO-PIN",
        })
    }
}

/// A user PIN: 6 to 16 bytes, usually digits (sc-hsm-protocol.md §4.1). Zeroized on drop.
#[derive(Clone)]
pub struct Pin(Zeroizing<Vec<u8>>);

impl Pin {
    /// A PIN from text; fails unless it is 6 to 16 bytes long.
    pub fn new(pin: &str) -> Result<Pin, InputError> {
        Pin::from_bytes(pin.as_bytes())
    }

    /// A PIN taken from a `String`, which is zeroized (its buffer wiped) in the process.
    pub fn from_string(pin: String) -> Result<Pin, InputError> {
        let pin = Zeroizing::new(pin);
        Pin::from_bytes(pin.as_bytes())
    }

    /// A PIN from bytes; fails unless it is 6 to 16 bytes long.
    pub fn from_bytes(pin: &[u8]) -> Result<Pin, InputError> {
        if !(USER_PIN_MIN_LEN..=USER_PIN_MAX_LEN).contains(&pin.len()) {
            return Err(InputError::PinLength { len: pin.len() });
        }
        Ok(Pin(Zeroizing::new(pin.to_vec())))
    }

    /// The PIN bytes (to put in a command APDU).
    pub fn as_bytes(&self) -> &[u8] {
        &self.0
    }

    /// Its length in bytes.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// Always false: a PIN has at least 6 bytes.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl fmt::Debug for Pin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Pin(<redacted>)")
    }
}

/// An SO-PIN: 8 bytes, entered as exactly 16 hex digits (sc-hsm-protocol.md §4.1).
///
/// The digits are decoded as OpenSC decodes them (§7): each pair is one byte, `a`..`f` (or
/// `A`..`F`) are 10 to 15. CardContact's sc-hsm-embedded maps the letters to 0 to 5 instead;
/// that bug is not reproduced, so an SO-PIN set with OpenSC works here. Zeroized on drop.
#[derive(Clone)]
pub struct SoPin(Zeroizing<[u8; 8]>);

impl SoPin {
    /// Decodes 16 hex digits. The error says what is wrong without repeating the input.
    pub fn from_hex(hex: &str) -> Result<SoPin, InputError> {
        let digits = hex.as_bytes();
        if digits.len() != 16 {
            return Err(InputError::SoPinLength {
                len: hex.chars().count(),
            });
        }
        let mut value = Zeroizing::new([0u8; 8]);
        for (i, (byte, pair)) in value.iter_mut().zip(digits.chunks_exact(2)).enumerate() {
            let [hi, lo] = pair else {
                return Err(InputError::SoPinLength { len: digits.len() });
            };
            let nibble =
                |c: u8, at: usize| hex_value(c).ok_or(InputError::SoPinDigit { position: at + 1 });
            *byte = (nibble(*hi, 2 * i)? << 4) | nibble(*lo, 2 * i + 1)?;
        }
        Ok(SoPin(value))
    }

    /// An SO-PIN from its 8 bytes.
    pub fn from_bytes(bytes: [u8; 8]) -> SoPin {
        SoPin(Zeroizing::new(bytes))
    }

    /// The 8 bytes (to put in a command APDU).
    pub fn as_bytes(&self) -> &[u8; 8] {
        &self.0
    }
}

impl fmt::Debug for SoPin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SoPin(<redacted>)")
    }
}

/// `0`..`9`, `a`..`f`, `A`..`F` as 0..15 (OpenSC's decoding, §7).
fn hex_value(c: u8) -> Option<u8> {
    match c {
        b'0'..=b'9' => Some(c - b'0'),
        b'a'..=b'f' => Some(c - b'a' + 10),
        b'A'..=b'F' => Some(c - b'A' + 10),
        _ => None,
    }
}

/// The state of one PIN, as the answer to VERIFY without data tells it
/// (sc-hsm-protocol.md §4.2).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(tag = "state", rename_all = "kebab-case")]
pub enum PinStatus {
    /// `9000`: verified in this session (the count of tries left is not shown then).
    Verified,
    /// `63Cn` with n > 0: not verified, `tries_left` wrong presentations before it blocks.
    TriesLeft {
        /// Wrong presentations left.
        tries_left: u8,
    },
    /// `6983` (or `63C0`): blocked.
    Blocked,
    /// `6984`: the user PIN is a transport PIN; it must be changed before use (§4.4).
    TransportPin,
    /// `6A88`: the device has never been initialised (no PINs yet).
    NotInitialised,
}

impl PinStatus {
    /// The status a VERIFY-without-data answer means, or `None` for a status word that says
    /// nothing about the PIN (§4.2).
    pub fn from_status_word(sw: StatusWord) -> Option<PinStatus> {
        match sw {
            StatusWord::Success => Some(PinStatus::Verified),
            StatusWord::RemainingRetries(0) => Some(PinStatus::Blocked),
            StatusWord::RemainingRetries(n) => Some(PinStatus::TriesLeft { tries_left: n }),
            StatusWord::AuthenticationMethodBlocked => Some(PinStatus::Blocked),
            StatusWord::ReferenceDataNotUsable => Some(PinStatus::TransportPin),
            StatusWord::ReferencedDataNotFound => Some(PinStatus::NotInitialised),
            _ => None,
        }
    }

    /// Tries left, when the card says.
    pub fn tries_left(self) -> Option<u8> {
        match self {
            PinStatus::TriesLeft { tries_left } => Some(tries_left),
            PinStatus::Blocked => Some(0),
            _ => None,
        }
    }

    /// Whether the PIN can still be presented successfully (verified, or tries left).
    pub fn works(self) -> bool {
        matches!(self, PinStatus::Verified | PinStatus::TriesLeft { .. })
    }
}

impl fmt::Display for PinStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PinStatus::Verified => f.write_str("verified"),
            PinStatus::TriesLeft { tries_left: 1 } => f.write_str("1 try left"),
            PinStatus::TriesLeft { tries_left } => write!(f, "{tries_left} tries left"),
            PinStatus::Blocked => f.write_str("blocked"),
            PinStatus::TransportPin => f.write_str("transport PIN (must be changed)"),
            PinStatus::NotInitialised => f.write_str("not initialised"),
        }
    }
}

/// How serious the PIN situation is, from fine to lost for good. Ordered.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Severity {
    /// Everything works.
    Ok,
    /// Everything needed works, with a caveat (a last try, a transport PIN, a blocked
    /// SO-PIN).
    Warning,
    /// The device is not initialised: nothing to lose, initialise it.
    NotInitialised,
    /// The keys cannot be used now, but the owner of the SO-PIN can fix it.
    Recoverable,
    /// The keys can never be used again.
    Permanent,
}

/// What still works, in plain words, given the two PIN states and the options the device was
/// initialised with (sc-hsm-protocol.md §4.5, §4.6).
///
/// The facts behind it: a blocked SO-PIN cannot be unblocked and removes only the SO
/// functions (re-initialisation, user-PIN unblock, changing the SO-PIN); the user PIN and the
/// keys keep working. The device is lost for good only when the user PIN is blocked too.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Assessment {
    /// How serious it is.
    pub severity: Severity,
    /// One sentence per fact, most important first.
    pub lines: Vec<String>,
}

impl Assessment {
    /// Assesses `user` and `so` for a device initialised with `options` (bit `0001`: the
    /// SO-PIN may unblock the user PIN).
    pub fn new(user: PinStatus, so: PinStatus, options: Options) -> Assessment {
        let rrc = options.contains(Options::RESET_RETRY_COUNTER);
        let mut lines = Vec::new();
        let mut severity = Severity::Ok;
        let raise = |s: Severity, severity: &mut Severity| *severity = (*severity).max(s);

        if user == PinStatus::NotInitialised || so == PinStatus::NotInitialised {
            return Assessment {
                severity: Severity::NotInitialised,
                lines: vec![
                    "the device is not initialised: set an SO-PIN and a user PIN (tessera init)"
                        .to_owned(),
                ],
            };
        }
        let so_blocked = so == PinStatus::Blocked;
        match (user, so_blocked) {
            (PinStatus::Blocked, true) => {
                raise(Severity::Permanent, &mut severity);
                lines.push(
                    "both PINs are blocked: the keys can no longer be used, and the device can \
                     be neither unblocked nor re-initialised"
                        .to_owned(),
                );
            }
            (PinStatus::Blocked, false) if rrc => {
                raise(Severity::Recoverable, &mut severity);
                lines.push(
                    "the user PIN is blocked: unblock it with the SO-PIN (tessera unblock)"
                        .to_owned(),
                );
            }
            (PinStatus::Blocked, false) => {
                raise(Severity::Recoverable, &mut severity);
                lines.push(
                    "the user PIN is blocked, and unblocking with the SO-PIN was not enabled at \
                     initialisation: only re-initialisation (tessera init) helps, and it erases \
                     all keys"
                        .to_owned(),
                );
            }
            (PinStatus::TransportPin, blocked) => {
                raise(Severity::Warning, &mut severity);
                lines.push(
                    "the user PIN is still the transport PIN: set your own (tessera change-pin) \
                     before using the keys"
                        .to_owned(),
                );
                if blocked {
                    lines.push(
                        "the SO-PIN is blocked: re-initialisation and user-PIN unblock are no \
                         longer possible"
                            .to_owned(),
                    );
                }
            }
            (user, true) => {
                raise(Severity::Warning, &mut severity);
                lines.push(
                    "the user PIN still works; re-initialisation and user-PIN unblock are no \
                     longer possible"
                        .to_owned(),
                );
                lines.push(format!(
                    "if the user PIN gets blocked too, the keys are unusable for good ({})",
                    user_tries(user)
                ));
            }
            (user, false) => {
                lines.push(format!("the user PIN works ({})", user_tries(user)));
            }
        }
        if let PinStatus::TriesLeft { tries_left } = so {
            let plural = if tries_left == 1 { "try" } else { "tries" };
            if user == PinStatus::Blocked && rrc {
                // Already said what to do; say how much room there is.
            } else if rrc {
                lines.push(format!(
                    "the SO-PIN can unblock the user PIN and re-initialise the device \
                     ({tries_left} {plural} left)"
                ));
            } else {
                lines.push(format!(
                    "the SO-PIN can re-initialise the device ({tries_left} {plural} left); \
                     user-PIN unblock was not enabled at initialisation"
                ));
            }
            if user == PinStatus::Blocked && rrc {
                lines.push(format!("{tries_left} SO-PIN {plural} left"));
            }
        }
        if user == (PinStatus::TriesLeft { tries_left: 1 }) {
            raise(Severity::Warning, &mut severity);
            lines.push("one more wrong user PIN blocks it".to_owned());
        }
        if so == (PinStatus::TriesLeft { tries_left: 1 }) {
            raise(Severity::Warning, &mut severity);
            lines.push(
                "one more wrong SO-PIN blocks it for good (it cannot be unblocked)".to_owned(),
            );
        }
        Assessment { severity, lines }
    }

    /// The lines joined into one: `a; b; c`.
    pub fn summary(&self) -> String {
        self.lines.join("; ")
    }
}

impl fmt::Display for Assessment {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.summary())
    }
}

fn user_tries(user: PinStatus) -> String {
    match user {
        PinStatus::Verified => "verified in this session".to_owned(),
        other => other.to_string(),
    }
}
