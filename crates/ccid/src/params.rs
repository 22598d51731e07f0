//! The protocol data structures carried by `PC_to_RDR_SetParameters` and
//! `RDR_to_PC_Parameters` (CCID Rev 1.1 §6.1.7, Tables 6.1-5 and 6.1-6; §6.2.3).
//!
//! The bytes are kept as they travel (`bmFindexDindex`, `bmTCCKST1`, ...) so that every
//! structure round-trips; accessors decode the packed fields. What the values mean for the
//! line (Fi/Di tables, waiting times) is ISO/IEC 7816-3's business, not this crate's.

use crate::{bytes, Error, Result};

/// `bProtocolNum`: which protocol data structure follows (CCID Rev 1.1 §6.1.7, §6.2.3).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum ProtocolNum {
    /// 0x00: the T=0 structure (5 bytes).
    T0,
    /// 0x01: the T=1 structure (7 bytes).
    T1,
    /// 0x80: 2-wire protocol (reserved structure).
    TwoWire,
    /// 0x81: 3-wire protocol (reserved structure).
    ThreeWire,
    /// 0x82: I2C protocol (reserved structure).
    I2c,
    /// Any other value.
    Unknown(u8),
}

impl ProtocolNum {
    /// Decode `bProtocolNum`. Total.
    pub const fn from_byte(byte: u8) -> Self {
        match byte {
            0x00 => ProtocolNum::T0,
            0x01 => ProtocolNum::T1,
            0x80 => ProtocolNum::TwoWire,
            0x81 => ProtocolNum::ThreeWire,
            0x82 => ProtocolNum::I2c,
            b => ProtocolNum::Unknown(b),
        }
    }

    /// Encode as `bProtocolNum`.
    pub const fn to_byte(self) -> u8 {
        match self {
            ProtocolNum::T0 => 0x00,
            ProtocolNum::T1 => 0x01,
            ProtocolNum::TwoWire => 0x80,
            ProtocolNum::ThreeWire => 0x81,
            ProtocolNum::I2c => 0x82,
            ProtocolNum::Unknown(b) => b,
        }
    }
}

impl From<u8> for ProtocolNum {
    fn from(byte: u8) -> Self {
        ProtocolNum::from_byte(byte)
    }
}

impl From<ProtocolNum> for u8 {
    fn from(p: ProtocolNum) -> Self {
        p.to_byte()
    }
}

/// `bClockStop`: whether and how the ICC clock may be stopped (CCID Rev 1.1 §6.1.7,
/// Tables 6.1-5 and 6.1-6).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum ClockStop {
    /// 0x00: stopping the clock is not allowed.
    #[default]
    NotAllowed,
    /// 0x01: stop with the clock signal low.
    Low,
    /// 0x02: stop with the clock signal high.
    High,
    /// 0x03: stop with the clock either high or low.
    Either,
    /// Any other value.
    Unknown(u8),
}

impl ClockStop {
    /// Decode `bClockStop`. Total.
    pub const fn from_byte(byte: u8) -> Self {
        match byte {
            0x00 => ClockStop::NotAllowed,
            0x01 => ClockStop::Low,
            0x02 => ClockStop::High,
            0x03 => ClockStop::Either,
            b => ClockStop::Unknown(b),
        }
    }

    /// Encode as `bClockStop`.
    pub const fn to_byte(self) -> u8 {
        match self {
            ClockStop::NotAllowed => 0x00,
            ClockStop::Low => 0x01,
            ClockStop::High => 0x02,
            ClockStop::Either => 0x03,
            ClockStop::Unknown(b) => b,
        }
    }
}

impl From<u8> for ClockStop {
    fn from(byte: u8) -> Self {
        ClockStop::from_byte(byte)
    }
}

impl From<ClockStop> for u8 {
    fn from(c: ClockStop) -> Self {
        c.to_byte()
    }
}

/// The T=0 protocol data structure, 5 bytes (CCID Rev 1.1 §6.1.7, Table 6.1-5).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct T0Parameters {
    /// `bmFindexDindex`: Fi index in bits 7..=4, Di index in bits 3..=0 (as TA1 of the ATR).
    pub findex_dindex: u8,
    /// `bmTCCKST0`: bit 1 is the convention (0 direct, 1 inverse); 0x00 or 0x02.
    pub tcckst0: u8,
    /// `bGuardTimeT0`: extra guard time (N, as TC1).
    pub guard_time: u8,
    /// `bWaitingIntegerT0`: WI (as TC2).
    pub waiting_integer: u8,
    /// `bClockStop`.
    pub clock_stop: ClockStop,
}

impl T0Parameters {
    /// Length of the structure on the wire.
    pub const LEN: usize = 5;

    /// The Fi index (high nibble of `bmFindexDindex`).
    pub const fn fi_index(&self) -> u8 {
        self.findex_dindex >> 4
    }

    /// The Di index (low nibble of `bmFindexDindex`).
    pub const fn di_index(&self) -> u8 {
        self.findex_dindex & 0x0F
    }

    /// Inverse convention (bit 1 of `bmTCCKST0`).
    pub const fn inverse_convention(&self) -> bool {
        self.tcckst0 & 0x02 != 0
    }

    /// Parse exactly [`Self::LEN`] bytes (CCID Rev 1.1 §6.1.7, Table 6.1-5).
    pub fn parse(data: &[u8]) -> Result<Self> {
        match *data {
            [findex_dindex, tcckst0, guard_time, waiting_integer, clock_stop] => Ok(T0Parameters {
                findex_dindex,
                tcckst0,
                guard_time,
                waiting_integer,
                clock_stop: ClockStop::from_byte(clock_stop),
            }),
            _ => Err(Error::BadLength),
        }
    }

    /// The 5 bytes on the wire.
    pub const fn to_bytes(&self) -> [u8; 5] {
        [
            self.findex_dindex,
            self.tcckst0,
            self.guard_time,
            self.waiting_integer,
            self.clock_stop.to_byte(),
        ]
    }

    /// Bytes `emit` writes: always [`Self::LEN`].
    pub const fn buffer_len(&self) -> usize {
        Self::LEN
    }

    /// Write the structure into the start of `buf`; returns the length written.
    pub fn emit(&self, buf: &mut [u8]) -> Result<usize> {
        if bytes::put(buf, 0, &self.to_bytes()) {
            Ok(Self::LEN)
        } else {
            Err(Error::BufferTooSmall)
        }
    }
}

/// The T=1 protocol data structure, 7 bytes (CCID Rev 1.1 §6.1.7, Table 6.1-6).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct T1Parameters {
    /// `bmFindexDindex`: Fi index in bits 7..=4, Di index in bits 3..=0 (as TA1 of the ATR).
    pub findex_dindex: u8,
    /// `bmTCCKST1`: bit 0 is the checksum (0 LRC, 1 CRC), bit 1 the convention (0 direct,
    /// 1 inverse), bits 7..=2 are 0b000100: 0x10..=0x13.
    pub tcckst1: u8,
    /// `bGuardTimeT1`: extra guard time (N, as TC1).
    pub guard_time: u8,
    /// `bmWaitingIntegersT1`: BWI in bits 7..=4, CWI in bits 3..=0 (as TB3).
    pub waiting_integers: u8,
    /// `bClockStop`.
    pub clock_stop: ClockStop,
    /// `bIFSC`: the card's information field size (as TA3).
    pub ifsc: u8,
    /// `bNadValue`: the NAD to use (0 unless the reader accepts others, `dwFeatures` 0x200).
    pub nad: u8,
}

impl T1Parameters {
    /// Length of the structure on the wire.
    pub const LEN: usize = 7;

    /// The fixed upper bits of `bmTCCKST1` (0x10).
    pub const TCCKST1_BASE: u8 = 0x10;
    /// `bmTCCKST1` bit 0: the EDC is a CRC (otherwise LRC).
    pub const TCCKST1_CRC: u8 = 0x01;
    /// `bmTCCKST1` bit 1: inverse convention.
    pub const TCCKST1_INVERSE: u8 = 0x02;

    /// The Fi index (high nibble of `bmFindexDindex`).
    pub const fn fi_index(&self) -> u8 {
        self.findex_dindex >> 4
    }

    /// The Di index (low nibble of `bmFindexDindex`).
    pub const fn di_index(&self) -> u8 {
        self.findex_dindex & 0x0F
    }

    /// The EDC is a CRC (bit 0 of `bmTCCKST1`); otherwise an LRC.
    pub const fn crc(&self) -> bool {
        self.tcckst1 & Self::TCCKST1_CRC != 0
    }

    /// Inverse convention (bit 1 of `bmTCCKST1`).
    pub const fn inverse_convention(&self) -> bool {
        self.tcckst1 & Self::TCCKST1_INVERSE != 0
    }

    /// BWI (high nibble of `bmWaitingIntegersT1`).
    pub const fn bwi(&self) -> u8 {
        self.waiting_integers >> 4
    }

    /// CWI (low nibble of `bmWaitingIntegersT1`).
    pub const fn cwi(&self) -> u8 {
        self.waiting_integers & 0x0F
    }

    /// Parse exactly [`Self::LEN`] bytes (CCID Rev 1.1 §6.1.7, Table 6.1-6).
    pub fn parse(data: &[u8]) -> Result<Self> {
        match *data {
            [findex_dindex, tcckst1, guard_time, waiting_integers, clock_stop, ifsc, nad] => {
                Ok(T1Parameters {
                    findex_dindex,
                    tcckst1,
                    guard_time,
                    waiting_integers,
                    clock_stop: ClockStop::from_byte(clock_stop),
                    ifsc,
                    nad,
                })
            }
            _ => Err(Error::BadLength),
        }
    }

    /// The 7 bytes on the wire.
    pub const fn to_bytes(&self) -> [u8; 7] {
        [
            self.findex_dindex,
            self.tcckst1,
            self.guard_time,
            self.waiting_integers,
            self.clock_stop.to_byte(),
            self.ifsc,
            self.nad,
        ]
    }

    /// Bytes `emit` writes: always [`Self::LEN`].
    pub const fn buffer_len(&self) -> usize {
        Self::LEN
    }

    /// Write the structure into the start of `buf`; returns the length written.
    pub fn emit(&self, buf: &mut [u8]) -> Result<usize> {
        if bytes::put(buf, 0, &self.to_bytes()) {
            Ok(Self::LEN)
        } else {
            Err(Error::BufferTooSmall)
        }
    }
}

/// `bProtocolNum` with its `abProtocolDataStructure` (CCID Rev 1.1 §6.1.7, §6.2.3).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum ProtocolData<'a> {
    /// `bProtocolNum` 0 with the 5-byte T=0 structure.
    T0(T0Parameters),
    /// `bProtocolNum` 1 with the 7-byte T=1 structure.
    T1(T1Parameters),
    /// Any other combination, kept as bytes: a protocol without a structure defined here
    /// (2-wire, 3-wire, I2C, unknown), or, in a `Parameters` response only, a T=0/T=1 number
    /// whose payload is not the structure (a failed command may answer with `dwLength` 0).
    Raw {
        /// `bProtocolNum`.
        protocol: ProtocolNum,
        /// `abProtocolDataStructure` as received.
        data: &'a [u8],
    },
}

impl<'a> ProtocolData<'a> {
    /// `bProtocolNum`.
    pub const fn protocol(&self) -> ProtocolNum {
        match self {
            ProtocolData::T0(_) => ProtocolNum::T0,
            ProtocolData::T1(_) => ProtocolNum::T1,
            ProtocolData::Raw { protocol, .. } => *protocol,
        }
    }

    /// Length of `abProtocolDataStructure`.
    pub const fn len(&self) -> usize {
        match self {
            ProtocolData::T0(_) => T0Parameters::LEN,
            ProtocolData::T1(_) => T1Parameters::LEN,
            ProtocolData::Raw { data, .. } => data.len(),
        }
    }

    /// `abProtocolDataStructure` is empty.
    pub const fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The strict reading a reader applies to `SetParameters` (CCID Rev 1.1 §6.1.7): T=0 must
    /// carry exactly 5 bytes and T=1 exactly 7, otherwise [`Error::BadLength`] (reported as
    /// `bError` = 1, the `dwLength` field). Other protocol numbers are kept as `Raw`.
    pub fn parse_command(protocol: u8, data: &'a [u8]) -> Result<Self> {
        match ProtocolNum::from_byte(protocol) {
            ProtocolNum::T0 => T0Parameters::parse(data).map(ProtocolData::T0),
            ProtocolNum::T1 => T1Parameters::parse(data).map(ProtocolData::T1),
            protocol => Ok(ProtocolData::Raw { protocol, data }),
        }
    }

    /// The lenient reading a host applies to a `Parameters` response (CCID Rev 1.1 §6.2.3):
    /// a structure of the right length is decoded, anything else is kept as `Raw`. Total.
    pub fn parse_response(protocol: u8, data: &'a [u8]) -> Self {
        let protocol = ProtocolNum::from_byte(protocol);
        let parsed = match protocol {
            ProtocolNum::T0 => T0Parameters::parse(data).ok().map(ProtocolData::T0),
            ProtocolNum::T1 => T1Parameters::parse(data).ok().map(ProtocolData::T1),
            _ => None,
        };
        parsed.unwrap_or(ProtocolData::Raw { protocol, data })
    }

    /// Write `abProtocolDataStructure` into the start of `buf`; returns the length written.
    pub fn emit(&self, buf: &mut [u8]) -> Result<usize> {
        match self {
            ProtocolData::T0(p) => p.emit(buf),
            ProtocolData::T1(p) => p.emit(buf),
            ProtocolData::Raw { data, .. } => {
                if bytes::put(buf, 0, data) {
                    Ok(data.len())
                } else {
                    Err(Error::BufferTooSmall)
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::indexing_slicing, clippy::unwrap_used)]
    use super::*;

    /// T=1 parameters for the SmartCard-HSM after PPS with TA1 = 0x18.
    static T1_BYTES: [u8; 7] = [
        0x18, // bmFindexDindex: Fi index 1 (F=372), Di index 8 (D=12)
        0x11, // bmTCCKST1: CRC, direct convention
        0x02, // bGuardTimeT1: N = 2
        0x4D, // bmWaitingIntegersT1: BWI 4, CWI 13
        0x03, // bClockStop: either
        0xFE, // bIFSC: 254
        0x00, // bNadValue
    ];

    fn t1_repr() -> T1Parameters {
        T1Parameters {
            findex_dindex: 0x18,
            tcckst1: T1Parameters::TCCKST1_BASE | T1Parameters::TCCKST1_CRC,
            guard_time: 2,
            waiting_integers: 0x4D,
            clock_stop: ClockStop::Either,
            ifsc: 254,
            nad: 0,
        }
    }

    /// T=0 parameters at the ISO default rate.
    static T0_BYTES: [u8; 5] = [
        0x11, // bmFindexDindex: Fi index 1, Di index 1
        0x02, // bmTCCKST0: inverse convention
        0x00, // bGuardTimeT0
        0x0A, // bWaitingIntegerT0: WI 10
        0x01, // bClockStop: stop low
    ];

    fn t0_repr() -> T0Parameters {
        T0Parameters {
            findex_dindex: 0x11,
            tcckst0: 0x02,
            guard_time: 0,
            waiting_integer: 10,
            clock_stop: ClockStop::Low,
        }
    }

    #[test]
    fn t1_deconstruct() {
        let p = T1Parameters::parse(&T1_BYTES).unwrap();
        assert_eq!(p.fi_index(), 1);
        assert_eq!(p.di_index(), 8);
        assert!(p.crc());
        assert!(!p.inverse_convention());
        assert_eq!(p.bwi(), 4);
        assert_eq!(p.cwi(), 13);
        assert_eq!(p.clock_stop, ClockStop::Either);
        assert_eq!(p.ifsc, 254);
    }

    #[test]
    fn t1_construct() {
        let mut buf = [0xAA; 9];
        assert_eq!(t1_repr().emit(&mut buf), Ok(7));
        assert_eq!(&buf[..7], &T1_BYTES);
        assert_eq!(&buf[7..], &[0xAA, 0xAA]);
    }

    #[test]
    fn t1_parse() {
        assert_eq!(T1Parameters::parse(&T1_BYTES), Ok(t1_repr()));
        assert_eq!(T1Parameters::parse(&T1_BYTES[..6]), Err(Error::BadLength));
        assert_eq!(T1Parameters::parse(&[0; 8]), Err(Error::BadLength));
    }

    #[test]
    fn t1_emit() {
        assert_eq!(t1_repr().to_bytes(), T1_BYTES);
        assert_eq!(t1_repr().buffer_len(), 7);
        assert_eq!(t1_repr().emit(&mut [0; 6]), Err(Error::BufferTooSmall));
    }

    #[test]
    fn t0_deconstruct() {
        let p = T0Parameters::parse(&T0_BYTES).unwrap();
        assert_eq!(p.fi_index(), 1);
        assert_eq!(p.di_index(), 1);
        assert!(p.inverse_convention());
        assert_eq!(p.waiting_integer, 10);
        assert_eq!(p.clock_stop, ClockStop::Low);
    }

    #[test]
    fn t0_construct() {
        let mut buf = [0xAA; 5];
        assert_eq!(t0_repr().emit(&mut buf), Ok(5));
        assert_eq!(buf, T0_BYTES);
    }

    #[test]
    fn t0_parse() {
        assert_eq!(T0Parameters::parse(&T0_BYTES), Ok(t0_repr()));
        assert_eq!(T0Parameters::parse(&T0_BYTES[..4]), Err(Error::BadLength));
    }

    #[test]
    fn t0_emit() {
        assert_eq!(t0_repr().to_bytes(), T0_BYTES);
        assert_eq!(t0_repr().emit(&mut [0; 4]), Err(Error::BufferTooSmall));
    }

    #[test]
    fn clock_stop_keeps_unknown_values() {
        let mut bytes = T0_BYTES;
        bytes[4] = 0x07;
        let p = T0Parameters::parse(&bytes).unwrap();
        assert_eq!(p.clock_stop, ClockStop::Unknown(0x07));
        assert_eq!(p.to_bytes(), bytes);
    }

    #[test]
    fn protocol_data_command_is_strict_response_is_lenient() {
        assert_eq!(
            ProtocolData::parse_command(1, &T1_BYTES[..5]),
            Err(Error::BadLength)
        );
        assert_eq!(
            ProtocolData::parse_response(1, &T1_BYTES[..5]),
            ProtocolData::Raw {
                protocol: ProtocolNum::T1,
                data: &T1_BYTES[..5]
            }
        );
        assert_eq!(
            ProtocolData::parse_command(1, &T1_BYTES),
            Ok(ProtocolData::T1(t1_repr()))
        );
        assert_eq!(
            ProtocolData::parse_command(0x80, &[1, 2]),
            Ok(ProtocolData::Raw {
                protocol: ProtocolNum::TwoWire,
                data: &[1, 2]
            })
        );
    }
}
