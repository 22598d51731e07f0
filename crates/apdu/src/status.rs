//! Status words SW1-SW2 (ISO/IEC 7816-4:2020 §5.6).
//!
//! [`StatusWord`] names the values the SmartCard-HSM protocol and its drivers act on and keeps
//! every other value in [`StatusWord::Unknown`], so `u16 -> StatusWord -> u16` is the identity on
//! all 65 536 values. The converse holds for every `StatusWord` that came from a `u16`; a value
//! built by hand that is not canonical (`Unknown(0x9000)`, `RemainingRetries(16)`) converts to the
//! `u16` its bits say and comes back as the canonical variant.

use core::fmt;

/// A status word: the response trailer SW1-SW2 (ISO/IEC 7816-4:2020 §5.6).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum StatusWord {
    /// `9000`: normal processing, no further qualification.
    Success,
    /// `61xx`: normal processing; SW2 data bytes are still available (GET RESPONSE fetches them).
    /// SW2 is kept as sent; `00` is commonly read as 256 or more.
    BytesAvailable(u8),
    /// `6282`: warning; end of file or record reached before reading Ne bytes.
    EndOfFileBeforeLe,
    /// `63Cx`: warning; counter x (0 to 15), for VERIFY the number of retries left.
    /// Only the low four bits are coded: `RemainingRetries(n)` converts to `63C0 | (n & 0F)`.
    RemainingRetries(u8),
    /// `6700`: wrong length, no further indication.
    WrongLength,
    /// `6982`: security status not satisfied.
    SecurityStatusNotSatisfied,
    /// `6983`: authentication method blocked.
    AuthenticationMethodBlocked,
    /// `6984`: reference data not usable.
    ReferenceDataNotUsable,
    /// `6985`: conditions of use not satisfied.
    ConditionsNotSatisfied,
    /// `6986`: command not allowed (no current EF).
    CommandNotAllowed,
    /// `6A80`: incorrect parameters in the command data field.
    IncorrectData,
    /// `6A82`: file or application not found.
    FileNotFound,
    /// `6A86`: incorrect parameters P1-P2.
    IncorrectP1P2,
    /// `6A88`: referenced data or reference data not found.
    ReferencedDataNotFound,
    /// `6B00`: wrong parameters P1-P2.
    WrongP1P2,
    /// `6Cxx`: wrong Le field; SW2 is the exact number of available data bytes (`00` = 256).
    WrongLe(u8),
    /// `6D00`: instruction code not supported or invalid.
    InsNotSupported,
    /// `6E00`: class not supported.
    ClaNotSupported,
    /// Any other value, kept whole.
    Unknown(u16),
}

impl StatusWord {
    /// The status word of the trailer bytes SW1 SW2.
    pub fn from_bytes(sw1: u8, sw2: u8) -> StatusWord {
        StatusWord::from(u16::from_be_bytes([sw1, sw2]))
    }

    /// The trailer bytes `[SW1, SW2]`.
    pub fn to_bytes(self) -> [u8; 2] {
        u16::from(self).to_be_bytes()
    }

    /// SW1.
    pub fn sw1(self) -> u8 {
        let [sw1, _] = self.to_bytes();
        sw1
    }

    /// SW2.
    pub fn sw2(self) -> u8 {
        let [_, sw2] = self.to_bytes();
        sw2
    }

    /// Whether this is `9000`, the only status that means plain success. `61xx` (more data) and
    /// the warnings `62xx`/`63xx` are not: a caller that accepts them says so.
    pub fn is_success(self) -> bool {
        self == StatusWord::Success
    }

    /// Whether this is a warning, `62xx` or `63xx` (ISO/IEC 7816-4:2020 §5.6): processing
    /// completed, possibly with response data, but something is to be reported.
    pub fn is_warning(self) -> bool {
        matches!(self.sw1(), 0x62 | 0x63)
    }

    /// What the value means, in a few words (ISO/IEC 7816-4:2020 §5.6).
    fn meaning(self) -> &'static str {
        match self {
            StatusWord::Success => "success",
            StatusWord::BytesAvailable(_) => "response bytes still available",
            StatusWord::EndOfFileBeforeLe => {
                "end of file or record reached before reading Ne bytes"
            }
            StatusWord::RemainingRetries(_) => "counter, e.g. retries left",
            StatusWord::WrongLength => "wrong length",
            StatusWord::SecurityStatusNotSatisfied => "security status not satisfied",
            StatusWord::AuthenticationMethodBlocked => "authentication method blocked",
            StatusWord::ReferenceDataNotUsable => "reference data not usable",
            StatusWord::ConditionsNotSatisfied => "conditions of use not satisfied",
            StatusWord::CommandNotAllowed => "command not allowed (no current EF)",
            StatusWord::IncorrectData => "incorrect parameters in the data field",
            StatusWord::FileNotFound => "file or application not found",
            StatusWord::IncorrectP1P2 => "incorrect parameters P1-P2",
            StatusWord::ReferencedDataNotFound => "referenced data not found",
            StatusWord::WrongP1P2 => "wrong parameters P1-P2",
            StatusWord::WrongLe(_) => "wrong Le field, bytes available",
            StatusWord::InsNotSupported => "instruction not supported",
            StatusWord::ClaNotSupported => "class not supported",
            StatusWord::Unknown(_) => "not known to this crate",
        }
    }
}

impl From<u16> for StatusWord {
    /// Names the value (ISO/IEC 7816-4:2020 §5.6); every value not named is `Unknown`.
    fn from(sw: u16) -> StatusWord {
        let [sw1, sw2] = sw.to_be_bytes();
        match (sw1, sw2) {
            (0x90, 0x00) => StatusWord::Success,
            (0x61, n) => StatusWord::BytesAvailable(n),
            (0x62, 0x82) => StatusWord::EndOfFileBeforeLe,
            (0x63, 0xC0..=0xCF) => StatusWord::RemainingRetries(sw2 & 0x0F),
            (0x67, 0x00) => StatusWord::WrongLength,
            (0x69, 0x82) => StatusWord::SecurityStatusNotSatisfied,
            (0x69, 0x83) => StatusWord::AuthenticationMethodBlocked,
            (0x69, 0x84) => StatusWord::ReferenceDataNotUsable,
            (0x69, 0x85) => StatusWord::ConditionsNotSatisfied,
            (0x69, 0x86) => StatusWord::CommandNotAllowed,
            (0x6A, 0x80) => StatusWord::IncorrectData,
            (0x6A, 0x82) => StatusWord::FileNotFound,
            (0x6A, 0x86) => StatusWord::IncorrectP1P2,
            (0x6A, 0x88) => StatusWord::ReferencedDataNotFound,
            (0x6B, 0x00) => StatusWord::WrongP1P2,
            (0x6C, n) => StatusWord::WrongLe(n),
            (0x6D, 0x00) => StatusWord::InsNotSupported,
            (0x6E, 0x00) => StatusWord::ClaNotSupported,
            _ => StatusWord::Unknown(sw),
        }
    }
}

impl From<StatusWord> for u16 {
    fn from(sw: StatusWord) -> u16 {
        match sw {
            StatusWord::Success => 0x9000,
            StatusWord::BytesAvailable(n) => 0x6100 | u16::from(n),
            StatusWord::EndOfFileBeforeLe => 0x6282,
            StatusWord::RemainingRetries(n) => 0x63C0 | u16::from(n & 0x0F),
            StatusWord::WrongLength => 0x6700,
            StatusWord::SecurityStatusNotSatisfied => 0x6982,
            StatusWord::AuthenticationMethodBlocked => 0x6983,
            StatusWord::ReferenceDataNotUsable => 0x6984,
            StatusWord::ConditionsNotSatisfied => 0x6985,
            StatusWord::CommandNotAllowed => 0x6986,
            StatusWord::IncorrectData => 0x6A80,
            StatusWord::FileNotFound => 0x6A82,
            StatusWord::IncorrectP1P2 => 0x6A86,
            StatusWord::ReferencedDataNotFound => 0x6A88,
            StatusWord::WrongP1P2 => 0x6B00,
            StatusWord::WrongLe(n) => 0x6C00 | u16::from(n),
            StatusWord::InsNotSupported => 0x6D00,
            StatusWord::ClaNotSupported => 0x6E00,
            StatusWord::Unknown(sw) => sw,
        }
    }
}

impl From<(u8, u8)> for StatusWord {
    fn from((sw1, sw2): (u8, u8)) -> StatusWord {
        StatusWord::from_bytes(sw1, sw2)
    }
}

impl fmt::Display for StatusWord {
    /// `63C2 (counter, e.g. retries left: 2)`, `6A82 (file or application not found)`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:04X} ({}", u16::from(*self), self.meaning())?;
        match self {
            StatusWord::BytesAvailable(n) | StatusWord::WrongLe(n) => write!(f, ": {n})"),
            StatusWord::RemainingRetries(n) => write!(f, ": {})", n & 0x0F),
            _ => f.write_str(")"),
        }
    }
}

#[cfg(test)]
mod tests {
    extern crate std;
    use std::string::ToString;

    use super::*;

    /// The law: u16 -> StatusWord -> u16 is the identity on every value.
    #[test]
    fn every_u16_round_trips() {
        for sw in 0..=u16::MAX {
            let status = StatusWord::from(sw);
            assert_eq!(u16::from(status), sw);
            let [sw1, sw2] = sw.to_be_bytes();
            assert_eq!(StatusWord::from_bytes(sw1, sw2), status);
            assert_eq!(status.to_bytes(), [sw1, sw2]);
            // Named variants are canonical: a u16 is Unknown only when nothing else names it.
            if let StatusWord::Unknown(raw) = status {
                assert_eq!(raw, sw);
            }
        }
    }

    #[test]
    fn named_values() {
        let named = [
            (0x9000, StatusWord::Success),
            (0x6282, StatusWord::EndOfFileBeforeLe),
            (0x6110, StatusWord::BytesAvailable(0x10)),
            (0x6C08, StatusWord::WrongLe(8)),
            (0x6700, StatusWord::WrongLength),
            (0x6982, StatusWord::SecurityStatusNotSatisfied),
            (0x6983, StatusWord::AuthenticationMethodBlocked),
            (0x6984, StatusWord::ReferenceDataNotUsable),
            (0x6985, StatusWord::ConditionsNotSatisfied),
            (0x6986, StatusWord::CommandNotAllowed),
            (0x6A80, StatusWord::IncorrectData),
            (0x6A82, StatusWord::FileNotFound),
            (0x6A86, StatusWord::IncorrectP1P2),
            (0x6A88, StatusWord::ReferencedDataNotFound),
            (0x6B00, StatusWord::WrongP1P2),
            (0x6D00, StatusWord::InsNotSupported),
            (0x6E00, StatusWord::ClaNotSupported),
            (0x63C0, StatusWord::RemainingRetries(0)),
            (0x63CF, StatusWord::RemainingRetries(15)),
            (0x63BF, StatusWord::Unknown(0x63BF)),
            (0x6F00, StatusWord::Unknown(0x6F00)),
            (0x9001, StatusWord::Unknown(0x9001)),
        ];
        for (sw, status) in named {
            assert_eq!(StatusWord::from(sw), status, "{sw:04X}");
        }
    }

    #[test]
    fn non_canonical_values_normalise() {
        assert_eq!(u16::from(StatusWord::RemainingRetries(0x12)), 0x63C2);
        assert_eq!(
            StatusWord::from(u16::from(StatusWord::Unknown(0x9000))),
            StatusWord::Success
        );
    }

    #[test]
    fn predicates() {
        assert!(StatusWord::Success.is_success());
        assert!(!StatusWord::BytesAvailable(0).is_success());
        assert!(StatusWord::EndOfFileBeforeLe.is_warning());
        assert!(StatusWord::RemainingRetries(2).is_warning());
        assert!(!StatusWord::WrongLength.is_warning());
        assert_eq!(StatusWord::RemainingRetries(2).sw1(), 0x63);
        assert_eq!(StatusWord::RemainingRetries(2).sw2(), 0xC2);
    }

    #[test]
    fn display_gives_hex_and_meaning() {
        assert_eq!(StatusWord::Success.to_string(), "9000 (success)");
        assert_eq!(
            StatusWord::RemainingRetries(2).to_string(),
            "63C2 (counter, e.g. retries left: 2)"
        );
        assert_eq!(
            StatusWord::FileNotFound.to_string(),
            "6A82 (file or application not found)"
        );
        assert_eq!(
            StatusWord::Unknown(0x6F00).to_string(),
            "6F00 (not known to this crate)"
        );
    }
}
