//! What SELECT tells about the applet (sc-hsm-protocol.md §1.3), the initialisation options
//! (§2.5), and the known SmartCard-HSM ATRs (§1.2).

use std::fmt;

use serde::Serialize;
use tessera_apdu::{Tag, Tlv};

/// The SmartCard-HSM applet's AID (sc-hsm-protocol.md §1.1).
pub const AID: [u8; 11] = [
    0xE8, 0x2B, 0x06, 0x01, 0x04, 0x01, 0x81, 0xC3, 0x1F, 0x02, 0x01,
];

/// The ATRs the SmartCard-HSM is known to present (sc-hsm-protocol.md §1.2): contact, contactless,
/// JCOP3 (seen on a Nitrokey HSM 2) and its faster variant.
pub const KNOWN_ATRS: [&[u8]; 4] = [
    &[
        0x3B, 0xFE, 0x18, 0x00, 0x00, 0x81, 0x31, 0xFE, 0x45, 0x80, 0x31, 0x81, 0x54, 0x48, 0x53,
        0x4D, 0x31, 0x73, 0x80, 0x21, 0x40, 0x81, 0x07, 0xFA,
    ],
    &[
        0x3B, 0x8E, 0x80, 0x01, 0x80, 0x31, 0x81, 0x54, 0x48, 0x53, 0x4D, 0x31, 0x73, 0x80, 0x21,
        0x40, 0x81, 0x07, 0x18,
    ],
    &[
        0x3B, 0xDE, 0x18, 0xFF, 0x81, 0x91, 0xFE, 0x1F, 0xC3, 0x80, 0x31, 0x81, 0x54, 0x48, 0x53,
        0x4D, 0x31, 0x73, 0x80, 0x21, 0x40, 0x81, 0x07, 0x1C,
    ],
    &[
        0x3B, 0xDE, 0x96, 0xFF, 0x81, 0x91, 0xFE, 0x1F, 0xC3, 0x80, 0x31, 0x81, 0x54, 0x48, 0x53,
        0x4D, 0x31, 0x73, 0x80, 0x21, 0x40, 0x81, 0x07, 0x92,
    ],
];

/// The historical bytes every known SmartCard-HSM ATR ends with, before TCK
/// (sc-hsm-protocol.md §1.2: category `80`, "HSM1", card capabilities, life cycle).
const HISTORICAL_BYTES: [u8; 14] = [
    0x80, 0x31, 0x81, 0x54, 0x48, 0x53, 0x4D, 0x31, 0x73, 0x80, 0x21, 0x40, 0x81, 0x07,
];

/// Whether `atr` is a SmartCard-HSM ATR: one of [`KNOWN_ATRS`], or any ATR carrying the
/// SmartCard-HSM historical bytes (a variant with other interface bytes).
pub fn is_sc_hsm_atr(atr: &[u8]) -> bool {
    KNOWN_ATRS.contains(&atr)
        || atr
            .windows(HISTORICAL_BYTES.len())
            .any(|w| w == HISTORICAL_BYTES)
}

/// The options a device was initialised with: INITIALIZE DEVICE tag `80`, a 16-bit field
/// (sc-hsm-protocol.md §2.5).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize)]
#[serde(transparent)]
pub struct Options(pub u16);

impl Options {
    /// `0001`: RESET RETRY COUNTER enabled (the SO-PIN may unblock the user PIN).
    pub const RESET_RETRY_COUNTER: Options = Options(0x0001);
    /// `0002`: transport-PIN mode (the user PIN must be changed before first use).
    pub const TRANSPORT_PIN: Options = Options(0x0002);
    /// `0004`: session PIN enabled, cleared on reset.
    pub const SESSION_PIN: Options = Options(0x0004);
    /// `000C`: session PIN with explicit clear (both bits).
    pub const SESSION_PIN_EXPLICIT_CLEAR: Options = Options(0x000C);
    /// `0010`: user PIN and public-key authentication combined.
    pub const COMBINED_AUTHENTICATION: Options = Options(0x0010);
    /// `0020`: RESET RETRY COUNTER only resets the counter (never sets a new PIN).
    pub const RESET_RETRY_COUNTER_ONLY: Options = Options(0x0020);
    /// What sc-hsm-tool and OpenSC use: RESET RETRY COUNTER enabled, nothing else.
    pub const DEFAULT: Options = Options::RESET_RETRY_COUNTER;

    /// The bits.
    pub const fn bits(self) -> u16 {
        self.0
    }

    /// Whether every bit of `other` is set.
    pub const fn contains(self, other: Options) -> bool {
        self.0 & other.0 == other.0
    }

    /// Both sets of bits.
    #[must_use]
    pub const fn union(self, other: Options) -> Options {
        Options(self.0 | other.0)
    }

    /// The names of the bits set, for display (unknown bits as hex).
    pub fn names(self) -> Vec<String> {
        let named: [(u16, &str); 5] = [
            (0x0001, "user-PIN reset with SO-PIN"),
            (0x0002, "transport PIN"),
            (0x0004, "session PIN"),
            (0x0010, "combined authentication"),
            (0x0020, "reset retry counter only"),
        ];
        let mut out: Vec<String> = named
            .iter()
            .filter(|(bit, _)| self.0 & bit != 0)
            .map(|(_, name)| (*name).to_owned())
            .collect();
        if self.0 & 0x000C == 0x000C {
            out.push("session PIN with explicit clear".to_owned());
        }
        let unknown = self.0 & !0x003F;
        if unknown != 0 {
            out.push(format!("unknown bits {unknown:04X}"));
        }
        out
    }
}

impl fmt::Display for Options {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let names = self.names();
        if names.is_empty() {
            write!(f, "{:04X} (none)", self.0)
        } else {
            write!(f, "{:04X} ({})", self.0, names.join(", "))
        }
    }
}

/// The applet build, from the type byte of FCP tag `85` (sc-hsm-protocol.md §1.3).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(tag = "kind", content = "byte", rename_all = "kebab-case")]
pub enum AppletKind {
    /// `00`: "SmartCard-HSM Applet for JCOP".
    Jcop,
    /// `01`: "SmartCard-HSM Demo Applet for JCOP".
    Demo,
    /// Any other value (pico-hsm: `FF`).
    Other(u8),
    /// Tag `85` was too short to carry a type (versions before 2.0).
    Unknown,
}

impl fmt::Display for AppletKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            AppletKind::Jcop => f.write_str("SmartCard-HSM Applet for JCOP"),
            AppletKind::Demo => f.write_str("SmartCard-HSM Demo Applet for JCOP"),
            AppletKind::Other(b) => write!(f, "SmartCard-HSM (type {b:02X})"),
            AppletKind::Unknown => f.write_str("SmartCard-HSM"),
        }
    }
}

/// What the SELECT answer says about the applet (sc-hsm-protocol.md §1.3).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
pub struct AppletInfo {
    /// Applet version, major and minor (e.g. 3.5).
    pub version: (u8, u8),
    /// The options the device was initialised with (0 on a device never initialised).
    pub options: Options,
    /// The applet build.
    pub kind: AppletKind,
}

impl AppletInfo {
    /// Reads tag `85` from the FCP of SELECT (§1.3): with n ≥ 3 value bytes, V[n-2] is the
    /// major version, V[n-1] the minor, V[n-3] the type, V[n-4] and V[n-5] the options (low and
    /// high byte); with n = 2, only the version. `None` when there is no usable tag `85`.
    pub fn from_fcp(fcp: &[u8]) -> Option<AppletInfo> {
        let outer = Tlv::parse(fcp).ok()?;
        if outer.tag() != Tag::new(0x62) {
            return None;
        }
        let value = outer.find(Tag::new(0x85)).ok()??.value();
        let n = value.len();
        let at = |back: usize| n.checked_sub(back).and_then(|i| value.get(i).copied());
        let version = (at(2)?, at(1)?);
        let kind = match at(3) {
            Some(0x00) => AppletKind::Jcop,
            Some(0x01) => AppletKind::Demo,
            Some(b) => AppletKind::Other(b),
            None => AppletKind::Unknown,
        };
        let options = Options(u16::from_be_bytes([at(5).unwrap_or(0), at(4).unwrap_or(0)]));
        Some(AppletInfo {
            version,
            options,
            kind,
        })
    }
}

impl fmt::Display for AppletInfo {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}.{}", self.kind, self.version.0, self.version.1)
    }
}
