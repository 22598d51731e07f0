//! The Answer-to-Reset, ISO/IEC 7816-3:2006 §8.
//!
//! An ATR is at most 33 bytes (§8.2.1):
//!
//! ```text
//! TS  T0  [TA1 TB1 TC1 TD1]  [TA2 TB2 TC2 TD2]  ...  T1 ... TK  [TCK]
//! ```
//!
//! - TS: the initial character, 0x3B (direct convention) or 0x3F (inverse convention), §8.1.
//! - T0: Y1 (high nibble: which of TA1, TB1, TC1, TD1 follow) and K (low nibble: the number of
//!   historical bytes), §8.2.2.
//! - Interface bytes in groups i = 1, 2, ...: each TDi carries Y(i+1) (which bytes of group
//!   i + 1 follow) and a protocol type T (low nibble), §8.2.3.
//! - K historical bytes, §8.2.4 (their content is ISO/IEC 7816-4's business, not this module's).
//! - TCK, present iff some TDi indicates a T other than 0; the XOR of T0 to TCK is 0 (§8.2.5).
//!
//! [`Atr`] is a zero-copy view with raw accessors; [`AtrRepr`] is the validated, structured
//! form with the accessors a driver needs (Fi/Di, protocols, mode, guard and waiting times,
//! T=1 parameters, clock stop and class). [`progress`] tells a driver reading the I/O line
//! byte by byte when the ATR is complete.
//!
//! Bytes are taken as decoded characters: after TS the driver decodes in the convention TS
//! announced ([`Convention::decode`] does it for a UART left in direct convention).

use core::fmt;

use crate::rate::{Fi, FiDi, DEFAULT_BWI, DEFAULT_CWI, DEFAULT_WI};
use crate::t1::Edc;

/// The longest ATR: TS plus 32 characters, ISO/IEC 7816-3:2006 §8.2.1.
pub const MAX_LEN: usize = 33;
/// The most historical bytes T0 can announce (K is 4 bits), §8.2.2.
pub const MAX_HISTORICAL: usize = 15;
/// The most TDi bytes an ATR can hold: with TS, T0 and nothing else, 31 bytes remain.
pub const MAX_TD: usize = MAX_LEN - 2;
/// The default IFSC when the first T=1 TA is absent, ISO/IEC 7816-3:2006 §11.4.2.
pub const DEFAULT_IFSC: u8 = 32;

mod field {
    /// The initial character.
    pub const TS: usize = 0;
    /// The format byte.
    pub const T0: usize = 1;
    /// The first interface byte (TA1, or whatever Y1 announces first).
    pub const INTERFACE: usize = 2;
}

/// A malformed ATR, or a parameter the ATR carries that is not usable.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum Error {
    /// TS is neither 0x3B nor 0x3F, §8.1. (A UART in direct convention reads an
    /// inverse-convention TS as 0x03: see [`Convention::from_raw_ts`].)
    InvalidTs(u8),
    /// The bytes end before the structure announced by T0 and the TDi bytes.
    Truncated,
    /// Everything but the TCK is there, and a TCK is required (§8.2.5).
    MissingTck,
    /// The XOR of T0 to TCK is not 0 (§8.2.5). `expected` is the TCK the other bytes call for.
    BadTck {
        /// The TCK that would make the check pass.
        expected: u8,
        /// The TCK received.
        found: u8,
    },
    /// More bytes follow the end of the ATR.
    TrailingBytes,
    /// The structure announces more than 33 bytes (§8.2.1), or a repr would emit more.
    TooLong,
    /// The output buffer is shorter than [`AtrRepr::buffer_len`].
    BufferTooSmall,
    /// The T=1 TA (IFSC) is 0x00 or 0xFF, which ISO/IEC 7816-3:2006 §11.4.2 reserves.
    InvalidIfsc(u8),
    /// TC2 (WI) is 0x00, which ISO/IEC 7816-3:2006 §10.2 reserves.
    ZeroWi,
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::InvalidTs(ts) => write!(f, "invalid TS {ts:#04x} (ISO 7816-3 §8.1)"),
            Error::Truncated => f.write_str("ATR truncated"),
            Error::MissingTck => f.write_str("ATR lacks its TCK (ISO 7816-3 §8.2.5)"),
            Error::BadTck { expected, found } => write!(
                f,
                "ATR TCK is {found:#04x}, the other bytes call for {expected:#04x} (ISO 7816-3 §8.2.5)"
            ),
            Error::TrailingBytes => f.write_str("bytes after the end of the ATR"),
            Error::TooLong => f.write_str("ATR longer than 33 bytes (ISO 7816-3 §8.2.1)"),
            Error::BufferTooSmall => f.write_str("buffer too small for the ATR"),
            Error::InvalidIfsc(b) => write!(f, "IFSC {b:#04x} is reserved (ISO 7816-3 §11.4.2)"),
            Error::ZeroWi => f.write_str("WI 0 is reserved (ISO 7816-3 §10.2)"),
        }
    }
}

impl core::error::Error for Error {}

/// The transmission convention announced by TS, ISO/IEC 7816-3:2006 §8.1.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum Convention {
    /// TS = 0x3B: high level is 1, least significant bit first.
    Direct,
    /// TS = 0x3F: low level is 1, most significant bit first.
    Inverse,
}

impl Convention {
    /// From a decoded TS character: 0x3B or 0x3F (§8.1).
    pub const fn from_ts(ts: u8) -> Result<Self, Error> {
        match ts {
            0x3B => Ok(Convention::Direct),
            0x3F => Ok(Convention::Inverse),
            other => Err(Error::InvalidTs(other)),
        }
    }

    /// From TS as read by a UART in direct convention: 0x3B is direct, and an inverse TS reads
    /// as 0x03 (§8.1). Anything else is not a TS.
    pub const fn from_raw_ts(raw: u8) -> Option<Self> {
        match raw {
            0x3B => Some(Convention::Direct),
            0x03 => Some(Convention::Inverse),
            _ => None,
        }
    }

    /// The TS character of this convention.
    pub const fn ts(self) -> u8 {
        match self {
            Convention::Direct => 0x3B,
            Convention::Inverse => 0x3F,
        }
    }

    /// Decode a character read by a UART in direct convention (§8.1): unchanged for the direct
    /// convention; bit order reversed and levels complemented for the inverse one. The same
    /// function encodes (it is its own inverse).
    pub const fn decode(self, raw: u8) -> u8 {
        match self {
            Convention::Direct => raw,
            Convention::Inverse => !raw.reverse_bits(),
        }
    }
}

/// A protocol type T, as carried in the low nibble of TDi (§8.2.3) and of PPS0 (§9.2).
///
/// T=0 and T=1 are the transmission protocols of ISO/IEC 7816-3; T=15 is not a protocol but
/// qualifies global interface bytes. Other values keep their number.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum Protocol {
    /// T=0, half-duplex character transmission (§10).
    T0,
    /// T=1, half-duplex block transmission (§11).
    T1,
    /// T=15: global interface bytes follow (§8.2.3); not a transmission protocol.
    T15,
    /// Any other T (2 to 14: reserved or proprietary); holds the 4-bit value.
    Other(u8),
}

impl Protocol {
    /// From a 4-bit T value (the upper bits are ignored).
    pub const fn from_nibble(t: u8) -> Self {
        match t & 0x0F {
            0 => Protocol::T0,
            1 => Protocol::T1,
            15 => Protocol::T15,
            other => Protocol::Other(other),
        }
    }

    /// The 4-bit T value.
    pub const fn nibble(self) -> u8 {
        match self {
            Protocol::T0 => 0,
            Protocol::T1 => 1,
            Protocol::T15 => 15,
            Protocol::Other(t) => t & 0x0F,
        }
    }
}

impl fmt::Display for Protocol {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "T={}", self.nibble())
    }
}

/// A set of protocol types (T = 0 to 15), e.g. the protocols an ATR offers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct ProtocolSet(u16);

impl ProtocolSet {
    /// No protocol.
    pub const EMPTY: ProtocolSet = ProtocolSet(0);

    /// From a bit mask: bit T set means T is in the set.
    pub const fn from_bits(bits: u16) -> Self {
        ProtocolSet(bits)
    }

    /// The bit mask.
    pub const fn bits(self) -> u16 {
        self.0
    }

    /// This set with `protocol` added.
    pub const fn with(self, protocol: Protocol) -> Self {
        ProtocolSet(self.0 | (1 << protocol.nibble()))
    }

    /// Whether `protocol` is in the set.
    pub const fn contains(self, protocol: Protocol) -> bool {
        self.0 & (1 << protocol.nibble()) != 0
    }

    /// Whether the set is empty.
    pub const fn is_empty(self) -> bool {
        self.0 == 0
    }

    /// The protocols in the set, by increasing T.
    pub fn iter(self) -> impl Iterator<Item = Protocol> {
        (0u8..16)
            .filter(move |t| self.0 & (1 << t) != 0)
            .map(Protocol::from_nibble)
    }
}

/// Where the ATR bytes received so far stand, from [`progress`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum Progress {
    /// The message is complete and `len` bytes long (`len` may be less than the bytes given:
    /// the rest does not belong to it).
    Complete {
        /// The length of the message.
        len: usize,
    },
    /// At least `at_least` more bytes are needed (more may turn out to be needed once they
    /// arrive: the ATR length is known only when the last TDi is in).
    NeedMore {
        /// The minimum number of bytes still to come.
        at_least: usize,
    },
}

/// What the walk over an ATR prefix found.
enum Shape {
    /// The structure is known and complete: `len` bytes, with a TCK or not.
    Complete { len: usize, tck: bool },
    /// More bytes are needed: at least `min_len` in total. `only_tck` is true when the
    /// structure is fully known and the one missing byte is the TCK.
    Short { min_len: usize, only_tck: bool },
}

/// Walk T0 and the TDi bytes: the length is known only when the last TDi has arrived.
/// ISO/IEC 7816-3:2006 §8.2.
fn shape(bytes: &[u8]) -> Result<Shape, Error> {
    let Some(&ts) = bytes.get(field::TS) else {
        return Ok(Shape::Short {
            min_len: 2,
            only_tck: false,
        });
    };
    Convention::from_ts(ts)?;
    let Some(&t0) = bytes.get(field::T0) else {
        return Ok(Shape::Short {
            min_len: 2,
            only_tck: false,
        });
    };
    let k = usize::from(t0 & 0x0F);
    let mut y = t0 >> 4;
    let mut pos = field::INTERFACE;
    let mut tck = false;
    loop {
        // TAi, TBi, TCi of this group.
        pos += (y & 0x07).count_ones() as usize;
        if y & 0x08 == 0 {
            break;
        }
        let td_at = pos;
        pos += 1;
        let min_len = pos + k + usize::from(tck);
        if min_len > MAX_LEN {
            return Err(Error::TooLong);
        }
        let Some(&td) = bytes.get(td_at) else {
            return Ok(Shape::Short {
                min_len,
                only_tck: false,
            });
        };
        if td & 0x0F != 0 {
            tck = true;
        }
        y = td >> 4;
    }
    let len = pos + k + usize::from(tck);
    if len > MAX_LEN {
        return Err(Error::TooLong);
    }
    if bytes.len() < len {
        let only_tck = tck && bytes.len() + 1 == len;
        return Ok(Shape::Short {
            min_len: len,
            only_tck,
        });
    }
    Ok(Shape::Complete { len, tck })
}

/// Given the ATR bytes received so far, say whether the ATR is complete, how many more bytes
/// are needed at least, or that it is malformed (invalid TS, more than 33 bytes). For a driver
/// reading the I/O line byte by byte. ISO/IEC 7816-3:2006 §8.2.
///
/// It checks the structure only: a complete ATR may still fail [`AtrRepr::parse`] on its TCK.
/// For any bytes `b`, `progress(b)` agrees with `Atr::new_checked(b)`: `Complete` with
/// `len == b.len()` iff the view is well-formed, `Complete` with a shorter `len` iff it has
/// [`Error::TrailingBytes`], `NeedMore` iff [`Error::Truncated`] or [`Error::MissingTck`], and
/// the same error otherwise.
pub fn progress(received: &[u8]) -> Result<Progress, Error> {
    Ok(match shape(received)? {
        Shape::Complete { len, .. } => Progress::Complete { len },
        Shape::Short { min_len, .. } => Progress::NeedMore {
            at_least: min_len.saturating_sub(received.len()),
        },
    })
}

/// The byte offsets of one group of interface bytes (TAi, TBi, TCi, TDi).
#[derive(Debug, Clone, Copy)]
struct GroupAt {
    ta: Option<usize>,
    tb: Option<usize>,
    tc: Option<usize>,
    td: Option<usize>,
}

/// Walks the interface-byte groups of a (possibly truncated) buffer. Stops at a TD that is not
/// in the buffer, so it ends after at most `bytes.len()` groups.
struct Groups<'a> {
    bytes: &'a [u8],
    /// Offset of the next group's first byte.
    pos: usize,
    /// The presence bits of the next group, if there is one.
    y: Option<u8>,
}

impl<'a> Groups<'a> {
    fn new(bytes: &'a [u8]) -> Self {
        Groups {
            bytes,
            pos: field::INTERFACE,
            y: bytes.get(field::T0).map(|t0| t0 >> 4),
        }
    }

    /// The offset just after the last group (where the historical bytes start).
    fn end(mut self) -> usize {
        while self.next().is_some() {}
        self.pos
    }
}

impl Iterator for Groups<'_> {
    type Item = GroupAt;

    fn next(&mut self) -> Option<GroupAt> {
        let y = self.y.take()?;
        let mut pos = self.pos;
        let mut take = |bit: u8| {
            if y & bit != 0 {
                let at = pos;
                pos = pos.saturating_add(1);
                Some(at)
            } else {
                None
            }
        };
        let group = GroupAt {
            ta: take(0x1),
            tb: take(0x2),
            tc: take(0x4),
            td: take(0x8),
        };
        self.pos = pos;
        self.y = group.td.and_then(|at| self.bytes.get(at)).map(|td| td >> 4);
        Some(group)
    }
}

/// The XOR of a run of bytes.
fn xor(bytes: &[u8]) -> u8 {
    bytes.iter().fold(0, |acc, b| acc ^ b)
}

/// A zero-copy view of an ATR, ISO/IEC 7816-3:2006 §8.2.
///
/// The accessors never panic: on a buffer that was not checked they return what is there
/// (`None` or a shorter slice). [`Atr::new_checked`] checks the structure (TS, length); the TCK
/// is checked by [`Atr::verify_tck`] and [`AtrRepr::parse`].
#[derive(Debug, Clone)]
pub struct Atr<T: AsRef<[u8]>> {
    buffer: T,
}

impl<T: AsRef<[u8]>> Atr<T> {
    /// Wrap a buffer without checking it.
    pub const fn new_unchecked(buffer: T) -> Atr<T> {
        Atr { buffer }
    }

    /// Wrap a buffer that holds exactly one well-formed ATR (see [`Atr::check_len`]).
    pub fn new_checked(buffer: T) -> Result<Atr<T>, Error> {
        let atr = Atr::new_unchecked(buffer);
        atr.check_len()?;
        Ok(atr)
    }

    /// Check that the buffer holds exactly one ATR: a valid TS, every byte T0 and the TDi
    /// announce, nothing after, at most 33 bytes (§8.1, §8.2). Does not check the TCK value.
    pub fn check_len(&self) -> Result<(), Error> {
        let bytes = self.buffer.as_ref();
        match shape(bytes)? {
            Shape::Short { only_tck: true, .. } => Err(Error::MissingTck),
            Shape::Short { .. } => Err(Error::Truncated),
            Shape::Complete { len, .. } if len < bytes.len() => Err(Error::TrailingBytes),
            Shape::Complete { .. } => Ok(()),
        }
    }

    /// Check the TCK (§8.2.5): Ok if no TCK is required, or if the XOR of T0 to TCK is 0.
    pub fn verify_tck(&self) -> Result<(), Error> {
        let bytes = self.buffer.as_ref();
        match shape(bytes)? {
            Shape::Short { only_tck: true, .. } => Err(Error::MissingTck),
            Shape::Short { .. } => Err(Error::Truncated),
            Shape::Complete { tck: false, .. } => Ok(()),
            Shape::Complete { len, tck: true } => {
                let body = bytes.get(field::T0..len).unwrap_or_default();
                let (found, before) = match body.split_last() {
                    Some((&found, before)) => (found, before),
                    None => return Err(Error::MissingTck),
                };
                let expected = xor(before);
                if expected == found {
                    Ok(())
                } else {
                    Err(Error::BadTck { expected, found })
                }
            }
        }
    }

    /// Give back the buffer.
    pub fn into_inner(self) -> T {
        self.buffer
    }

    /// The ATR bytes (the whole buffer).
    pub fn as_bytes(&self) -> &[u8] {
        self.buffer.as_ref()
    }

    /// TS, the initial character (§8.1).
    pub fn ts(&self) -> Option<u8> {
        self.buffer.as_ref().get(field::TS).copied()
    }

    /// T0, the format byte (§8.2.2).
    pub fn t0(&self) -> Option<u8> {
        self.buffer.as_ref().get(field::T0).copied()
    }

    /// K, the number of historical bytes (low nibble of T0).
    pub fn k(&self) -> usize {
        self.t0().map_or(0, |t0| usize::from(t0 & 0x0F))
    }

    fn group(&self, i: usize) -> Option<GroupAt> {
        Groups::new(self.buffer.as_ref()).nth(i.checked_sub(1)?)
    }

    fn byte_at(&self, at: Option<usize>) -> Option<u8> {
        self.buffer.as_ref().get(at?).copied()
    }

    /// TAi (i from 1), if present (§8.2.3).
    pub fn ta(&self, i: usize) -> Option<u8> {
        self.byte_at(self.group(i)?.ta)
    }

    /// TBi (i from 1), if present (§8.2.3).
    pub fn tb(&self, i: usize) -> Option<u8> {
        self.byte_at(self.group(i)?.tb)
    }

    /// TCi (i from 1), if present (§8.2.3).
    pub fn tc(&self, i: usize) -> Option<u8> {
        self.byte_at(self.group(i)?.tc)
    }

    /// TDi (i from 1), if present (§8.2.3).
    pub fn td(&self, i: usize) -> Option<u8> {
        self.byte_at(self.group(i)?.td)
    }

    /// The historical bytes T1 .. TK (§8.2.4); shorter if the buffer is.
    pub fn historical_bytes(&self) -> &[u8] {
        let bytes = self.buffer.as_ref();
        let start = Groups::new(bytes).end();
        let end = start.saturating_add(self.k()).min(bytes.len());
        bytes.get(start..end).unwrap_or_default()
    }

    /// TCK, if the ATR requires one (§8.2.5) and the buffer holds it.
    pub fn tck(&self) -> Option<u8> {
        let bytes = self.buffer.as_ref();
        let mut needed = false;
        let mut groups = Groups::new(bytes);
        for group in groups.by_ref() {
            if let Some(td) = self.byte_at(group.td) {
                needed |= td & 0x0F != 0;
            }
        }
        if !needed {
            return None;
        }
        bytes.get(groups.pos.saturating_add(self.k())).copied()
    }
}

/// The optional TAi, TBi, TCi of one group of interface bytes (TDi is implied by the next
/// group, see [`AtrRepr`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct InterfaceBytes {
    /// TAi.
    pub ta: Option<u8>,
    /// TBi.
    pub tb: Option<u8>,
    /// TCi.
    pub tc: Option<u8>,
}

impl InterfaceBytes {
    /// No byte.
    pub const NONE: InterfaceBytes = InterfaceBytes {
        ta: None,
        tb: None,
        tc: None,
    };

    /// The presence bits b1..b3 of the Y nibble that announces this group (§8.2.2, §8.2.3).
    pub const fn presence(&self) -> u8 {
        (self.ta.is_some() as u8)
            | ((self.tb.is_some() as u8) << 1)
            | ((self.tc.is_some() as u8) << 2)
    }

    /// How many of the three bytes are present.
    pub const fn len(&self) -> usize {
        self.presence().count_ones() as usize
    }

    /// Whether none is present.
    pub const fn is_empty(&self) -> bool {
        self.presence() == 0
    }
}

/// A group of interface bytes after the first: the protocol type T that TD(i-1) indicates,
/// and TAi, TBi, TCi (i >= 2), ISO/IEC 7816-3:2006 §8.2.3.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct ProtocolGroup {
    /// T from TD(i-1): the protocol the bytes of group i belong to (for i >= 3; group 2 holds
    /// TA2, TB2, TC2, which are global or T=0 specific whatever TD1 says).
    pub protocol: Protocol,
    /// TAi, TBi, TCi.
    pub bytes: InterfaceBytes,
}

/// Mode of operation after the ATR, from TA2 (ISO/IEC 7816-3:2006 §6.3.1, §8.3).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum Mode {
    /// TA2 absent: the reader may send a PPS request (or use the default protocol and Fd, Dd).
    Negotiable,
    /// TA2 present: the card works with `protocol` and the parameters of the ATR right away.
    Specific {
        /// The protocol to use (TA2 low nibble).
        protocol: Protocol,
        /// TA2 bit 8 = 0: the card can change to negotiable mode (by a warm reset).
        can_change: bool,
        /// TA2 bit 5 = 1: Fi and Di are implicit (not those of TA1).
        implicit_fi_di: bool,
    },
}

/// The T=1 parameters an ATR announces, with their defaults (ISO/IEC 7816-3:2006 §11.4).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct T1Params {
    /// IFSC, 1 to 254 (§11.4.2; default 32).
    pub ifsc: u8,
    /// BWI (§11.4.3; default 4). Values above 9 are reserved: [`crate::rate`] rejects them.
    pub bwi: u8,
    /// CWI (§11.4.3; default 13).
    pub cwi: u8,
    /// The EDC (§11.4.4; default LRC): bit 1 of the first T=1 TC.
    pub edc: Edc,
}

impl Default for T1Params {
    fn default() -> Self {
        T1Params {
            ifsc: DEFAULT_IFSC,
            bwi: DEFAULT_BWI,
            cwi: DEFAULT_CWI,
            edc: Edc::Lrc,
        }
    }
}

/// The clock stop indicator XI, bits 8 and 7 of the first TA for T=15 (ISO/IEC 7816-3:2006
/// §8.3, §6.3.2).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum ClockStop {
    /// 00: clock stop not supported (the default when the byte is absent).
    NotSupported,
    /// 01: state L.
    Low,
    /// 10: state H.
    High,
    /// 11: no preference.
    NoPreference,
}

/// The class indicator UI, bits 6 to 1 of the first TA for T=15 (ISO/IEC 7816-3:2006 §8.3,
/// Table 10): bit 1 class A (5 V), bit 2 class B (3 V), bit 3 class C (1.8 V).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct Classes(u8);

impl Classes {
    /// Only class A: the default when the byte is absent.
    pub const A_ONLY: Classes = Classes(0x01);

    /// From the 6-bit indicator.
    pub const fn from_bits(bits: u8) -> Self {
        Classes(bits & 0x3F)
    }

    /// The 6-bit indicator.
    pub const fn bits(self) -> u8 {
        self.0
    }

    /// Class A (5 V).
    pub const fn a(self) -> bool {
        self.0 & 0x01 != 0
    }

    /// Class B (3 V).
    pub const fn b(self) -> bool {
        self.0 & 0x02 != 0
    }

    /// Class C (1.8 V).
    pub const fn c(self) -> bool {
        self.0 & 0x04 != 0
    }
}

/// A validated ATR, ISO/IEC 7816-3:2006 §8.2, with the accessors a driver needs.
///
/// Group 1 (TA1, TB1, TC1) is [`AtrRepr::global`]; each later group is a [`ProtocolGroup`]
/// holding the T its TD(i-1) indicates. TDi bytes, T0 and TCK are derived on emit, so any repr
/// built through the setters emits a well-formed ATR of at most 33 bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct AtrRepr {
    convention: Convention,
    global: InterfaceBytes,
    groups: [ProtocolGroup; MAX_TD],
    group_count: u8,
    historical: [u8; MAX_HISTORICAL],
    historical_len: u8,
}

const NO_GROUP: ProtocolGroup = ProtocolGroup {
    protocol: Protocol::T0,
    bytes: InterfaceBytes::NONE,
};

impl AtrRepr {
    /// The shortest ATR: TS, T0 = 0x00 (no interface byte, no historical byte).
    pub const fn new(convention: Convention) -> Self {
        AtrRepr {
            convention,
            global: InterfaceBytes::NONE,
            groups: [NO_GROUP; MAX_TD],
            group_count: 0,
            historical: [0; MAX_HISTORICAL],
            historical_len: 0,
        }
    }

    /// Parse and validate a view: structure, TS and TCK (§8.1, §8.2).
    pub fn parse<T: AsRef<[u8]>>(atr: &Atr<T>) -> Result<AtrRepr, Error> {
        atr.check_len()?;
        atr.verify_tck()?;
        let bytes = atr.as_bytes();
        let convention = Convention::from_ts(atr.ts().unwrap_or_default())?;
        let mut repr = AtrRepr::new(convention);
        let at = |i: Option<usize>| i.and_then(|i| bytes.get(i)).copied();
        let mut protocol = None;
        for group in Groups::new(bytes) {
            let interface = InterfaceBytes {
                ta: at(group.ta),
                tb: at(group.tb),
                tc: at(group.tc),
            };
            match protocol {
                None => repr.global = interface,
                Some(protocol) => {
                    let slot = repr
                        .groups
                        .get_mut(usize::from(repr.group_count))
                        .ok_or(Error::TooLong)?;
                    *slot = ProtocolGroup {
                        protocol,
                        bytes: interface,
                    };
                    repr.group_count += 1;
                }
            }
            protocol = at(group.td).map(Protocol::from_nibble);
        }
        repr.set_historical_bytes(atr.historical_bytes())?;
        Ok(repr)
    }

    /// Parse and validate raw bytes (a shorthand for [`Atr::new_checked`] then [`AtrRepr::parse`]).
    pub fn parse_bytes(bytes: &[u8]) -> Result<AtrRepr, Error> {
        AtrRepr::parse(&Atr::new_checked(bytes)?)
    }

    /// The convention (TS).
    pub const fn convention(&self) -> Convention {
        self.convention
    }

    /// Set the convention (TS).
    pub fn set_convention(&mut self, convention: Convention) {
        self.convention = convention;
    }

    /// TA1, TB1, TC1.
    pub const fn global(&self) -> InterfaceBytes {
        self.global
    }

    /// Set TA1, TB1, TC1. Fails with [`Error::TooLong`] (and changes nothing) if the ATR would
    /// exceed 33 bytes.
    pub fn set_global(&mut self, global: InterfaceBytes) -> Result<(), Error> {
        let mut next = *self;
        next.global = global;
        next.commit(self)
    }

    /// The groups i >= 2, each with the T of TD(i-1).
    pub fn groups(&self) -> &[ProtocolGroup] {
        self.groups
            .get(..usize::from(self.group_count))
            .unwrap_or_default()
    }

    /// Append a group (which adds a TD byte before it). Fails with [`Error::TooLong`] (and
    /// changes nothing) if the ATR would exceed 33 bytes.
    pub fn push_group(&mut self, group: ProtocolGroup) -> Result<(), Error> {
        let mut next = *self;
        let slot = next
            .groups
            .get_mut(usize::from(next.group_count))
            .ok_or(Error::TooLong)?;
        *slot = group;
        next.group_count += 1;
        next.commit(self)
    }

    /// Remove all groups after the first.
    pub fn clear_groups(&mut self) {
        self.groups = [NO_GROUP; MAX_TD];
        self.group_count = 0;
    }

    /// The historical bytes (§8.2.4).
    pub fn historical_bytes(&self) -> &[u8] {
        self.historical
            .get(..usize::from(self.historical_len))
            .unwrap_or_default()
    }

    /// Set the historical bytes. Fails with [`Error::TooLong`] (and changes nothing) for more
    /// than 15 bytes or if the ATR would exceed 33 bytes.
    pub fn set_historical_bytes(&mut self, historical: &[u8]) -> Result<(), Error> {
        let mut next = *self;
        let slot = next
            .historical
            .get_mut(..historical.len())
            .ok_or(Error::TooLong)?;
        slot.copy_from_slice(historical);
        if let Some(rest) = next.historical.get_mut(historical.len()..) {
            rest.fill(0);
        }
        next.historical_len = historical.len() as u8; // at most 15: the slice above fits
        next.commit(self)
    }

    fn commit(self, into: &mut AtrRepr) -> Result<(), Error> {
        if self.buffer_len() > MAX_LEN {
            return Err(Error::TooLong);
        }
        *into = self;
        Ok(())
    }

    /// Whether the ATR carries a TCK: iff some TDi indicates a T other than 0 (§8.2.5).
    pub fn has_tck(&self) -> bool {
        self.groups().iter().any(|g| g.protocol != Protocol::T0)
    }

    /// The length of the emitted ATR.
    pub fn buffer_len(&self) -> usize {
        let interface: usize = self.global.len()
            + self
                .groups()
                .iter()
                .map(|g| 1 + g.bytes.len())
                .sum::<usize>();
        2 + interface + usize::from(self.historical_len) + usize::from(self.has_tck())
    }

    /// Write the ATR into `buffer`, computing T0, the TDi bytes and the TCK (§8.2).
    /// Returns the number of bytes written ([`AtrRepr::buffer_len`]).
    pub fn emit(&self, buffer: &mut [u8]) -> Result<usize, Error> {
        let len = self.buffer_len();
        if len > MAX_LEN {
            return Err(Error::TooLong);
        }
        let out = buffer.get_mut(..len).ok_or(Error::BufferTooSmall)?;
        let mut w = Writer { out, pos: 0 };
        let groups = self.groups();
        let td_bit = |present: bool| if present { 0x08 } else { 0x00 };
        w.put(self.convention.ts());
        w.put(((self.global.presence() | td_bit(!groups.is_empty())) << 4) | self.historical_len);
        w.put_group(&self.global);
        for (i, group) in groups.iter().enumerate() {
            let more = i + 1 < groups.len();
            w.put(((group.bytes.presence() | td_bit(more)) << 4) | group.protocol.nibble());
            w.put_group(&group.bytes);
        }
        for &b in self.historical_bytes() {
            w.put(b);
        }
        if self.has_tck() {
            let tck = xor(w.out.get(field::T0..w.pos).unwrap_or_default());
            w.put(tck);
        }
        Ok(w.pos)
    }

    // ---- Parameters (§8.3) ----

    /// Fi and Di from TA1, or the default Fi = 372, Di = 1 when TA1 is absent (§8.3).
    pub fn fi_di(&self) -> FiDi {
        self.global.ta.map_or(FiDi::DEFAULT, FiDi::from_byte)
    }

    /// N, the extra guard time from TC1 (default 0), §8.3. See [`crate::rate::cgt_t0`].
    pub fn extra_guard_time(&self) -> u8 {
        self.global.tc.unwrap_or(0)
    }

    /// The mode from TA2 (§8.3): negotiable if absent, specific if present.
    pub fn mode(&self) -> Mode {
        match self.groups().first().and_then(|g| g.bytes.ta) {
            None => Mode::Negotiable,
            Some(ta2) => Mode::Specific {
                protocol: Protocol::from_nibble(ta2),
                can_change: ta2 & 0x80 == 0,
                implicit_fi_di: ta2 & 0x10 != 0,
            },
        }
    }

    /// WI from TC2 (default 10), §10.2. TC2 = 0 is reserved: [`Error::ZeroWi`].
    pub fn wi(&self) -> Result<u8, Error> {
        match self.groups().first().and_then(|g| g.bytes.tc) {
            None => Ok(DEFAULT_WI),
            Some(0) => Err(Error::ZeroWi),
            Some(wi) => Ok(wi),
        }
    }

    /// The Fi that WT uses (§10.2): TA1's.
    pub fn wt_fi(&self) -> Fi {
        self.fi_di().fi()
    }

    /// The protocols the ATR offers: every T that a TDi indicates, except 15; only T=0 when
    /// there is no TD1 (§8.2.3).
    pub fn protocols(&self) -> ProtocolSet {
        let set = self
            .groups()
            .iter()
            .map(|g| g.protocol)
            .filter(|&p| p != Protocol::T15)
            .fold(ProtocolSet::EMPTY, ProtocolSet::with);
        if set.is_empty() {
            ProtocolSet::EMPTY.with(Protocol::T0)
        } else {
            set
        }
    }

    /// The default protocol: the first offered, i.e. the T of TD1, or T=0 when TD1 is absent
    /// (§8.2.3). (TD1 must not indicate T=15; if it does, the first TDi that indicates a
    /// protocol is taken.)
    pub fn default_protocol(&self) -> Protocol {
        self.groups()
            .iter()
            .map(|g| g.protocol)
            .find(|&p| p != Protocol::T15)
            .unwrap_or(Protocol::T0)
    }

    /// The first group i >= 3 whose TD(i-1) indicates `protocol`.
    fn specific_group(&self, protocol: Protocol) -> Option<InterfaceBytes> {
        self.groups()
            .iter()
            .skip(1)
            .find(|g| g.protocol == protocol)
            .map(|g| g.bytes)
    }

    /// The T=1 parameters from the first TA, TB, TC after a TDi (i >= 2) indicating T=1, with
    /// the defaults for the absent ones: IFSC 32, BWI 4, CWI 13, LRC (§11.4). Fails with
    /// [`Error::InvalidIfsc`] if that TA is 0x00 or 0xFF.
    pub fn t1_params(&self) -> Result<T1Params, Error> {
        let mut params = T1Params::default();
        let Some(group) = self.specific_group(Protocol::T1) else {
            return Ok(params);
        };
        if let Some(ifsc) = group.ta {
            if ifsc == 0x00 || ifsc == 0xFF {
                return Err(Error::InvalidIfsc(ifsc));
            }
            params.ifsc = ifsc;
        }
        if let Some(tb) = group.tb {
            params.bwi = tb >> 4;
            params.cwi = tb & 0x0F;
        }
        if let Some(tc) = group.tc {
            params.edc = Edc::from_tc(tc);
        }
        Ok(params)
    }

    /// The clock stop indicator from the first TA for T=15 (§8.3); not supported if absent.
    pub fn clock_stop(&self) -> ClockStop {
        match self.specific_group(Protocol::T15).and_then(|g| g.ta) {
            None => ClockStop::NotSupported,
            Some(ta) => match ta >> 6 {
                0 => ClockStop::NotSupported,
                1 => ClockStop::Low,
                2 => ClockStop::High,
                _ => ClockStop::NoPreference,
            },
        }
    }

    /// The class indicator from the first TA for T=15 (§8.3); class A only if absent.
    pub fn classes(&self) -> Classes {
        self.specific_group(Protocol::T15)
            .and_then(|g| g.ta)
            .map_or(Classes::A_ONLY, Classes::from_bits)
    }
}

struct Writer<'a> {
    out: &'a mut [u8],
    pos: usize,
}

impl Writer<'_> {
    /// Write one byte. The caller sized `out` to the exact length, so a write past it cannot
    /// happen; if it did, the byte would be dropped and `pos` would not advance.
    fn put(&mut self, byte: u8) {
        if let Some(slot) = self.out.get_mut(self.pos) {
            *slot = byte;
            self.pos += 1;
        }
    }

    fn put_group(&mut self, group: &InterfaceBytes) {
        for b in [group.ta, group.tb, group.tc].into_iter().flatten() {
            self.put(b);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    // SmartCard-HSM on JCOP3, as a Nitrokey HSM 2 presents it (OpenSC card-sc-hsm.c).
    static HSM_JCOP3: [u8; 24] = [
        0x3B, // TS: direct convention
        0xDE, // T0: TA1 TC1 TD1, K = 14
        0x18, // TA1: Fi = 372, Di = 12
        0xFF, // TC1: N = 255
        0x81, // TD1: TD2 follows, T = 1
        0x91, // TD2: TA3 TD3 follow, T = 1
        0xFE, // TA3: IFSC = 254
        0x1F, // TD3: TA4 follows, T = 15
        0xC3, // TA4: clock stop no preference, classes A and B
        0x80, 0x31, 0x81, 0x54, 0x48, 0x53, 0x4D, 0x31, 0x73, 0x80, 0x21, 0x40, 0x81,
        0x07, // historical bytes
        0x1C, // TCK
    ];

    #[test]
    fn deconstruct() {
        let atr = Atr::new_checked(&HSM_JCOP3[..]).unwrap();
        assert_eq!(atr.ts(), Some(0x3B));
        assert_eq!(atr.t0(), Some(0xDE));
        assert_eq!(atr.k(), 14);
        assert_eq!(atr.ta(1), Some(0x18));
        assert_eq!(atr.tb(1), None);
        assert_eq!(atr.tc(1), Some(0xFF));
        assert_eq!(atr.td(1), Some(0x81));
        assert_eq!(atr.ta(2), None);
        assert_eq!(atr.td(2), Some(0x91));
        assert_eq!(atr.ta(3), Some(0xFE));
        assert_eq!(atr.tb(3), None);
        assert_eq!(atr.td(3), Some(0x1F));
        assert_eq!(atr.ta(4), Some(0xC3));
        assert_eq!(atr.td(4), None);
        assert_eq!(atr.ta(5), None);
        assert_eq!(atr.ta(0), None);
        assert_eq!(atr.historical_bytes(), &HSM_JCOP3[9..23]);
        assert_eq!(atr.tck(), Some(0x1C));
        assert_eq!(atr.verify_tck(), Ok(()));
    }

    #[test]
    fn unchecked_accessors_do_not_panic_on_short_buffers() {
        for n in 0..HSM_JCOP3.len() {
            let atr = Atr::new_unchecked(&HSM_JCOP3[..n]);
            let _ = (atr.ts(), atr.t0(), atr.ta(4), atr.td(3), atr.tck());
            assert!(atr.historical_bytes().len() <= 14);
            assert!(atr.check_len().is_err());
        }
    }

    #[test]
    fn convention_decode_maps_raw_inverse_ts() {
        assert_eq!(Convention::from_raw_ts(0x03), Some(Convention::Inverse));
        assert_eq!(Convention::Inverse.decode(0x03), 0x3F);
        assert_eq!(
            Convention::Inverse.decode(Convention::Inverse.decode(0x5A)),
            0x5A
        );
        assert_eq!(Convention::Direct.decode(0x5A), 0x5A);
    }

    #[test]
    fn protocol_set_iterates_in_order() {
        let set = ProtocolSet::EMPTY.with(Protocol::T1).with(Protocol::T0);
        let mut it = set.iter();
        assert_eq!(it.next(), Some(Protocol::T0));
        assert_eq!(it.next(), Some(Protocol::T1));
        assert_eq!(it.next(), None);
        assert!(!set.contains(Protocol::T15));
    }
}
