//! Command APDUs (ISO/IEC 7816-4:2020 §5.1; decoding conventions of ISO/IEC 7816-3:2006 §12.1.3).
//!
//! A command APDU is a 4-byte header CLA INS P1 P2 and a body of L bytes that holds an optional
//! Lc field with the Nc data bytes it announces, and an optional Le field that encodes Ne, the
//! maximum number of response data bytes expected. Seven shapes exist:
//!
//! | case | body                               | Nc        | Ne                          |
//! |------|------------------------------------|-----------|-----------------------------|
//! | 1    | (empty)                            | 0         | 0                           |
//! | 2S   | `Le`                               | 0         | 1..=256 (`00` = 256)        |
//! | 3S   | `Lc data`                          | 1..=255   | 0                           |
//! | 4S   | `Lc data Le`                       | 1..=255   | 1..=256 (`00` = 256)        |
//! | 2E   | `00 Le1 Le2`                       | 0         | 1..=65536 (`0000` = 65536)  |
//! | 3E   | `00 Lc1 Lc2 data`                  | 1..=65535 | 0                           |
//! | 4E   | `00 Lc1 Lc2 data Le1 Le2`          | 1..=65535 | 1..=65536 (`0000` = 65536)  |
//!
//! Three types:
//! - [`Command`]: a zero-copy view over the bytes of one command;
//! - [`CommandRepr`]: the validated, borrowed meaning of a command (header, data, Ne, and whether
//!   the extended form is wanted although the short one would do). It is also the builder:
//!   [`CommandRepr::new`] then [`with_data`](CommandRepr::with_data) and
//!   [`with_ne`](CommandRepr::with_ne), then [`emit`](CommandRepr::emit), which picks the short
//!   form unless Nc > 255 or Ne > 256 (or the extended form is forced);
//! - [`CommandBuf`]: an owned command whose data lives in a fixed-capacity buffer.
//!
//! # Round-trip laws
//!
//! The encoding of each case is canonical: Lc (1..=255 or 1..=65535) and Le (with `00`/`0000`
//! standing for the largest value) have exactly one encoding per value in each form, and the
//! decoding below is unambiguous. So for every byte string `x` that parses,
//! `CommandRepr::parse(&Command::new_checked(x)?)?.emit(..)` writes exactly `x`: the repr keeps
//! the one bit the wire adds to the meaning, [`CommandRepr::force_extended`], which `parse` sets
//! exactly when the command uses the extended form although Nc <= 255 and Ne <= 256. Conversely
//! `parse(emit(r)) == r` for every repr `r` that emits, provided `force_extended` is false for
//! case 1 (which has no length fields) and for commands that need the extended form anyway
//! (where the flag is redundant, and `parse` reports it false).

use core::fmt;

use crate::cla::Cla;
use crate::wire::put;

/// Length of the command header CLA INS P1 P2 (ISO/IEC 7816-4:2020 §5.1).
pub const HEADER_LEN: usize = 4;
/// Largest Nc a short Lc field codes.
pub const MAX_SHORT_NC: usize = 255;
/// Largest Ne a short Le field codes (`00` stands for 256).
pub const MAX_SHORT_NE: usize = 256;
/// Largest Nc an extended Lc field codes.
pub const MAX_EXTENDED_NC: usize = 65_535;
/// Largest Ne an extended Le field codes (`0000` stands for 65 536).
pub const MAX_EXTENDED_NE: usize = 65_536;

/// Byte positions in a command APDU (ISO/IEC 7816-4:2020 §5.1).
mod field {
    use core::ops::RangeFrom;

    pub const CLA: usize = 0;
    pub const INS: usize = 1;
    pub const P1: usize = 2;
    pub const P2: usize = 3;
    /// The body: everything after the header.
    pub const BODY: RangeFrom<usize> = super::HEADER_LEN..;
    /// A short Lc field is one byte.
    pub const SHORT_LC_LEN: usize = 1;
    /// An extended Lc field is `00` and two bytes.
    pub const EXTENDED_LC_LEN: usize = 3;
    /// The first byte of the body of an extended command.
    pub const EXTENDED_MARKER: u8 = 0x00;
}

/// The seven cases of command APDUs (ISO/IEC 7816-4:2020 §5.1; ISO/IEC 7816-3:2006 §12.1.3).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum Case {
    /// Case 1: no data, no response data.
    One,
    /// Case 2S: short Le.
    TwoShort,
    /// Case 3S: short Lc and data.
    ThreeShort,
    /// Case 4S: short Lc, data, short Le.
    FourShort,
    /// Case 2E: extended Le.
    TwoExtended,
    /// Case 3E: extended Lc and data.
    ThreeExtended,
    /// Case 4E: extended Lc, data, extended Le.
    FourExtended,
}

impl Case {
    /// Whether the case uses the extended length fields.
    pub const fn is_extended(self) -> bool {
        matches!(
            self,
            Case::TwoExtended | Case::ThreeExtended | Case::FourExtended
        )
    }

    /// Whether the body holds an Lc field and data (cases 3 and 4).
    pub const fn has_data(self) -> bool {
        matches!(
            self,
            Case::ThreeShort | Case::FourShort | Case::ThreeExtended | Case::FourExtended
        )
    }

    /// Whether the body holds an Le field (cases 2 and 4).
    pub const fn has_le(self) -> bool {
        matches!(
            self,
            Case::TwoShort | Case::FourShort | Case::TwoExtended | Case::FourExtended
        )
    }

    /// The case of a command with `nc` data bytes and `ne` expected bytes, in the short or the
    /// extended form (ISO/IEC 7816-4:2020 §5.1). Case 1 has no length field, so `extended` is
    /// ignored for it.
    pub(crate) const fn of(nc: usize, ne: usize, extended: bool) -> Case {
        match (nc > 0, ne > 0, extended) {
            (false, false, _) => Case::One,
            (false, true, false) => Case::TwoShort,
            (true, false, false) => Case::ThreeShort,
            (true, true, false) => Case::FourShort,
            (false, true, true) => Case::TwoExtended,
            (true, false, true) => Case::ThreeExtended,
            (true, true, true) => Case::FourExtended,
        }
    }
}

impl fmt::Display for Case {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Case::One => "case 1",
            Case::TwoShort => "case 2S",
            Case::ThreeShort => "case 3S",
            Case::FourShort => "case 4S",
            Case::TwoExtended => "case 2E",
            Case::ThreeExtended => "case 3E",
            Case::FourExtended => "case 4E",
        })
    }
}

/// A malformed command APDU, or a command that cannot be encoded.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum CommandError {
    /// Fewer than the four header bytes CLA INS P1 P2.
    TooShort,
    /// An extended length field is cut short: the body is `00 xx` (neither a short nor an
    /// extended shape), or a case 4E body ends with one Le byte instead of two.
    TruncatedLength,
    /// An extended Lc field of `00 00` followed by more bytes: Nc = 0 is never coded in an Lc
    /// field (ISO/IEC 7816-4:2020 §5.1), and `00 00 00` alone is case 2E.
    ExtendedLcZero,
    /// Lc announces more data bytes than the body holds.
    DataPastEnd,
    /// Bytes remain after the data field and a possible Le field.
    TrailingBytes,
    /// (emit) The output buffer is too small for the encoding.
    BufferTooSmall,
    /// (emit, or an owned command's data) Nc exceeds what the length field or the capacity allows.
    DataTooLong,
    /// (emit) Ne exceeds 65 536.
    NeTooLarge,
}

impl fmt::Display for CommandError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            CommandError::TooShort => "command APDU shorter than its 4-byte header",
            CommandError::TruncatedLength => "command APDU extended length field cut short",
            CommandError::ExtendedLcZero => "command APDU extended Lc of zero",
            CommandError::DataPastEnd => "command APDU Lc past the end of the body",
            CommandError::TrailingBytes => "command APDU has bytes after its Le field",
            CommandError::BufferTooSmall => "buffer too small for the command APDU",
            CommandError::DataTooLong => "command data too long",
            CommandError::NeTooLarge => "command Ne larger than 65536",
        })
    }
}

impl core::error::Error for CommandError {}

/// Where the data and Le of a body lie, once decoded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Layout {
    case: Case,
    /// Offset of the data field from the start of the command.
    data_start: usize,
    /// Nc.
    nc: usize,
    /// Ne, 0 when there is no Le field.
    ne: usize,
}

impl Layout {
    const CASE_1: Layout = Layout {
        case: Case::One,
        data_start: HEADER_LEN,
        nc: 0,
        ne: 0,
    };
}

/// Ne coded by a short Le field: `00` means 256 (ISO/IEC 7816-4:2020 §5.1).
fn short_ne(le: u8) -> usize {
    if le == 0 {
        MAX_SHORT_NE
    } else {
        usize::from(le)
    }
}

/// Ne coded by an extended Le field: `0000` means 65 536 (ISO/IEC 7816-4:2020 §5.1).
fn extended_ne(hi: u8, lo: u8) -> usize {
    match u16::from_be_bytes([hi, lo]) {
        0 => MAX_EXTENDED_NE,
        n => usize::from(n),
    }
}

/// Decodes the body of a command APDU case by case, following the decoding conventions of
/// ISO/IEC 7816-3:2006 §12.1.3 (the cases of ISO/IEC 7816-4:2020 §5.1). L is the body length and
/// B1, B2, B3 its first bytes.
fn decode(buffer: &[u8]) -> Result<Layout, CommandError> {
    let body = buffer.get(field::BODY).ok_or(CommandError::TooShort)?;

    // Case 1: L = 0.
    let Some((&b1, rest)) = body.split_first() else {
        return Ok(Layout::CASE_1);
    };

    // Case 2S: L = 1; Le = B1 (`00` = 256).
    if rest.is_empty() {
        return Ok(Layout {
            case: Case::TwoShort,
            data_start: HEADER_LEN,
            nc: 0,
            ne: short_ne(b1),
        });
    }

    // B1 != 00: short Lc = B1 = Nc, then case 3S when L = 1 + Nc, case 4S when L = 2 + Nc.
    if b1 != field::EXTENDED_MARKER {
        let nc = usize::from(b1);
        let data_start = HEADER_LEN + field::SHORT_LC_LEN;
        return match rest.len().checked_sub(nc) {
            None => Err(CommandError::DataPastEnd),
            Some(0) => Ok(Layout {
                case: Case::ThreeShort,
                data_start,
                nc,
                ne: 0,
            }),
            Some(1) => {
                let le = rest.last().copied().unwrap_or(0);
                Ok(Layout {
                    case: Case::FourShort,
                    data_start,
                    nc,
                    ne: short_ne(le),
                })
            }
            Some(_) => Err(CommandError::TrailingBytes),
        };
    }

    // B1 = 00 and L > 1: the extended form. L = 2 fits no case.
    let [b2, b3, tail @ ..] = rest else {
        return Err(CommandError::TruncatedLength);
    };

    // Case 2E: L = 3; Le = B2 B3 (`0000` = 65 536).
    if tail.is_empty() {
        return Ok(Layout {
            case: Case::TwoExtended,
            data_start: HEADER_LEN,
            nc: 0,
            ne: extended_ne(*b2, *b3),
        });
    }

    // L > 3: extended Lc = B2 B3 = Nc, which must not be zero; then case 3E when L = 3 + Nc,
    // case 4E when L = 5 + Nc.
    let nc = usize::from(u16::from_be_bytes([*b2, *b3]));
    if nc == 0 {
        return Err(CommandError::ExtendedLcZero);
    }
    let data_start = HEADER_LEN + field::EXTENDED_LC_LEN;
    match tail.len().checked_sub(nc) {
        None => Err(CommandError::DataPastEnd),
        Some(0) => Ok(Layout {
            case: Case::ThreeExtended,
            data_start,
            nc,
            ne: 0,
        }),
        Some(1) => Err(CommandError::TruncatedLength),
        Some(2) => match tail.get(nc..) {
            Some(&[le1, le2]) => Ok(Layout {
                case: Case::FourExtended,
                data_start,
                nc,
                ne: extended_ne(le1, le2),
            }),
            _ => Err(CommandError::TruncatedLength),
        },
        Some(_) => Err(CommandError::TrailingBytes),
    }
}

/// A read/write view over the bytes of one command APDU (ISO/IEC 7816-4:2020 §5.1).
///
/// Create it with [`Command::new_checked`], which validates the whole shape. On a view made with
/// [`Command::new_unchecked`] whose [`check_len`](Command::check_len) fails, the accessors never
/// panic: a missing header byte reads as 0 and a malformed body reads as case 1 (no data, Ne 0).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Command<T: AsRef<[u8]>> {
    buffer: T,
}

impl<T: AsRef<[u8]>> Command<T> {
    /// Wraps a buffer without checking it.
    pub const fn new_unchecked(buffer: T) -> Command<T> {
        Command { buffer }
    }

    /// Wraps a buffer holding exactly one well-formed command APDU of any case.
    pub fn new_checked(buffer: T) -> Result<Command<T>, CommandError> {
        let command = Command::new_unchecked(buffer);
        command.check_len()?;
        Ok(command)
    }

    /// Checks that the buffer holds exactly one well-formed command APDU: a header and a body of
    /// one of the seven shapes (ISO/IEC 7816-3:2006 §12.1.3), with no byte left over.
    pub fn check_len(&self) -> Result<(), CommandError> {
        decode(self.buffer.as_ref()).map(|_| ())
    }

    /// Unwraps the buffer.
    pub fn into_inner(self) -> T {
        self.buffer
    }

    fn byte(&self, index: usize) -> u8 {
        self.buffer.as_ref().get(index).copied().unwrap_or(0)
    }

    fn layout(&self) -> Layout {
        decode(self.buffer.as_ref()).unwrap_or(Layout::CASE_1)
    }

    /// The class byte CLA.
    pub fn cla(&self) -> Cla {
        Cla(self.byte(field::CLA))
    }

    /// The instruction byte INS.
    pub fn ins(&self) -> u8 {
        self.byte(field::INS)
    }

    /// The first parameter byte P1.
    pub fn p1(&self) -> u8 {
        self.byte(field::P1)
    }

    /// The second parameter byte P2.
    pub fn p2(&self) -> u8 {
        self.byte(field::P2)
    }

    /// The case of the command.
    pub fn case(&self) -> Case {
        self.layout().case
    }

    /// Whether the command uses the extended length fields.
    pub fn is_extended(&self) -> bool {
        self.layout().case.is_extended()
    }

    /// The data field (the Nc bytes the Lc field announces); empty in cases 1 and 2.
    pub fn data(&self) -> &[u8] {
        let layout = self.layout();
        let end = layout.data_start.saturating_add(layout.nc);
        self.buffer
            .as_ref()
            .get(layout.data_start..end)
            .unwrap_or(&[])
    }

    /// Ne, the maximum number of response data bytes expected: 0 when there is no Le field,
    /// 256 for a short Le of `00`, 65 536 for an extended Le of `0000`.
    pub fn ne(&self) -> usize {
        self.layout().ne
    }
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> Command<T> {
    fn set_byte(&mut self, index: usize, value: u8) {
        if let Some(byte) = self.buffer.as_mut().get_mut(index) {
            *byte = value;
        }
    }

    /// Sets the class byte CLA (no effect on a buffer shorter than the header).
    pub fn set_cla(&mut self, cla: Cla) {
        self.set_byte(field::CLA, cla.0);
    }

    /// Sets INS (no effect on a buffer shorter than the header).
    pub fn set_ins(&mut self, ins: u8) {
        self.set_byte(field::INS, ins);
    }

    /// Sets P1 (no effect on a buffer shorter than the header).
    pub fn set_p1(&mut self, p1: u8) {
        self.set_byte(field::P1, p1);
    }

    /// Sets P2 (no effect on a buffer shorter than the header).
    pub fn set_p2(&mut self, p2: u8) {
        self.set_byte(field::P2, p2);
    }

    /// The data field, mutable (empty when the body has no data or is malformed).
    pub fn data_mut(&mut self) -> &mut [u8] {
        let layout = self.layout();
        let end = layout.data_start.saturating_add(layout.nc);
        self.buffer
            .as_mut()
            .get_mut(layout.data_start..end)
            .unwrap_or(&mut [])
    }
}

/// The meaning of a command APDU, borrowing its data; also the builder that encodes one.
///
/// Build with [`CommandRepr::new`] and the `with_*` methods, or fill the public fields. Nc is
/// `data.len()`. See the module docs for the round-trip laws.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct CommandRepr<'a> {
    /// Class byte CLA.
    pub cla: Cla,
    /// Instruction byte INS.
    pub ins: u8,
    /// Parameter byte P1.
    pub p1: u8,
    /// Parameter byte P2.
    pub p2: u8,
    /// The data field (Nc = its length, at most 65 535).
    pub data: &'a [u8],
    /// Ne: 0 for no Le field, otherwise 1..=65 536.
    pub ne: usize,
    /// Use the extended length fields even when Nc <= 255 and Ne <= 256. Without it the short
    /// form is used whenever it can code Nc and Ne. Ignored in case 1, which has no length field.
    pub force_extended: bool,
}

impl<'a> CommandRepr<'a> {
    /// A case 1 command: header only.
    pub const fn new(cla: Cla, ins: u8, p1: u8, p2: u8) -> CommandRepr<'a> {
        CommandRepr {
            cla,
            ins,
            p1,
            p2,
            data: &[],
            ne: 0,
            force_extended: false,
        }
    }

    /// This command with `data` as its data field.
    pub const fn with_data(self, data: &'a [u8]) -> CommandRepr<'a> {
        CommandRepr { data, ..self }
    }

    /// This command with Ne = `ne` (0 removes the Le field).
    pub const fn with_ne(self, ne: usize) -> CommandRepr<'a> {
        CommandRepr { ne, ..self }
    }

    /// This command, encoded in the extended form even where the short one would do.
    pub const fn with_extended(self) -> CommandRepr<'a> {
        CommandRepr {
            force_extended: true,
            ..self
        }
    }

    /// Reads the meaning of a command, validating its shape (ISO/IEC 7816-3:2006 §12.1.3).
    pub fn parse<T: AsRef<[u8]>>(command: &'a Command<T>) -> Result<Self, CommandError> {
        Self::parse_bytes(command.buffer.as_ref())
    }

    /// Reads the meaning of the command APDU that fills `bytes`.
    pub fn parse_bytes(bytes: &'a [u8]) -> Result<Self, CommandError> {
        let layout = decode(bytes)?;
        let end = layout.data_start.saturating_add(layout.nc);
        let data = bytes
            .get(layout.data_start..end)
            .ok_or(CommandError::DataPastEnd)?;
        let [cla, ins, p1, p2, ..] = *bytes else {
            return Err(CommandError::TooShort);
        };
        let fits_short = layout.nc <= MAX_SHORT_NC && layout.ne <= MAX_SHORT_NE;
        Ok(CommandRepr {
            cla: Cla(cla),
            ins,
            p1,
            p2,
            data,
            ne: layout.ne,
            force_extended: layout.case.is_extended() && fits_short,
        })
    }

    /// Whether the encoding uses the extended length fields: forced, or needed because
    /// Nc > 255 or Ne > 256 (never in case 1).
    pub fn is_extended(&self) -> bool {
        let needed = self.data.len() > MAX_SHORT_NC || self.ne > MAX_SHORT_NE;
        let has_body = !self.data.is_empty() || self.ne > 0;
        has_body && (self.force_extended || needed)
    }

    /// The case this command is encoded in.
    pub fn case(&self) -> Case {
        Case::of(self.data.len(), self.ne, self.is_extended())
    }

    /// The length of the encoding, in bytes.
    pub fn buffer_len(&self) -> usize {
        let (lc_len, le_len) = self.length_field_lens();
        HEADER_LEN + lc_len + self.data.len() + le_len
    }

    /// Lengths of the Lc and Le fields in the encoding (ISO/IEC 7816-4:2020 §5.1).
    fn length_field_lens(&self) -> (usize, usize) {
        match self.case() {
            Case::One => (0, 0),
            Case::TwoShort => (0, 1),
            Case::ThreeShort => (1, 0),
            Case::FourShort => (1, 1),
            Case::TwoExtended => (0, 3),
            Case::ThreeExtended => (3, 0),
            Case::FourExtended => (3, 2),
        }
    }

    /// Encodes the command into the front of `buffer` (ISO/IEC 7816-4:2020 §5.1) and returns the
    /// number of bytes written, [`buffer_len`](Self::buffer_len). Short Le codes 256 as `00`,
    /// extended Le codes 65 536 as `0000`.
    pub fn emit(&self, buffer: &mut [u8]) -> Result<usize, CommandError> {
        let nc = self.data.len();
        if nc > MAX_EXTENDED_NC {
            return Err(CommandError::DataTooLong);
        }
        if self.ne > MAX_EXTENDED_NE {
            return Err(CommandError::NeTooLarge);
        }
        let len = self.buffer_len();
        let mut out = buffer.get_mut(..len).ok_or(CommandError::BufferTooSmall)?;

        let header = [self.cla.0, self.ins, self.p1, self.p2];
        // A short Le codes 256 as 00, an extended Le codes 65 536 as 0000: the one value that
        // does not fit the field is the one its zero stands for. Nc and Ne were range-checked
        // above, and the short cases have Nc <= 255 and Ne <= 256.
        let short_lc = [u8::try_from(nc).unwrap_or(0)];
        let short_le = [u8::try_from(self.ne).unwrap_or(0)];
        let extended_lc = u16::try_from(nc).unwrap_or(0).to_be_bytes();
        let extended_le = u16::try_from(self.ne).unwrap_or(0).to_be_bytes();
        let marker = [field::EXTENDED_MARKER];
        // [short Lc or the extended marker 00, extended Lc, data, Le]
        let fields: [&[u8]; 4] = match self.case() {
            Case::One => [&[], &[], &[], &[]],
            Case::TwoShort => [&[], &[], &[], &short_le],
            Case::ThreeShort => [&short_lc, &[], self.data, &[]],
            Case::FourShort => [&short_lc, &[], self.data, &short_le],
            Case::TwoExtended => [&marker, &[], &[], &extended_le],
            Case::ThreeExtended => [&marker, &extended_lc, self.data, &[]],
            Case::FourExtended => [&marker, &extended_lc, self.data, &extended_le],
        };
        let written = put(&mut out, &header)
            .and_then(|()| fields.iter().try_for_each(|bytes| put(&mut out, bytes)));
        written.map(|()| len).ok_or(CommandError::BufferTooSmall)
    }
}

/// An owned command APDU whose data field lives in a fixed-capacity buffer of `N` bytes.
///
/// Build it with [`CommandBuf::new`] and [`push_data`](CommandBuf::push_data), or from a repr;
/// encode it through [`repr`](CommandBuf::repr)`.emit(..)`.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct CommandBuf<const N: usize> {
    /// Class byte CLA.
    pub cla: Cla,
    /// Instruction byte INS.
    pub ins: u8,
    /// Parameter byte P1.
    pub p1: u8,
    /// Parameter byte P2.
    pub p2: u8,
    /// Ne: 0 for no Le field, otherwise 1..=65 536.
    pub ne: usize,
    /// As [`CommandRepr::force_extended`].
    pub force_extended: bool,
    data: heapless::Vec<u8, N>,
}

impl<const N: usize> CommandBuf<N> {
    /// A case 1 command with no data.
    pub const fn new(cla: Cla, ins: u8, p1: u8, p2: u8) -> Self {
        CommandBuf {
            cla,
            ins,
            p1,
            p2,
            ne: 0,
            force_extended: false,
            data: heapless::Vec::new(),
        }
    }

    /// Copies a command; fails with [`CommandError::DataTooLong`] when its data exceeds `N`.
    pub fn from_repr(repr: &CommandRepr<'_>) -> Result<Self, CommandError> {
        let mut command = CommandBuf::new(repr.cla, repr.ins, repr.p1, repr.p2);
        command.ne = repr.ne;
        command.force_extended = repr.force_extended;
        command.push_data(repr.data)?;
        Ok(command)
    }

    /// The command as a borrowed repr, to emit or inspect.
    pub fn repr(&self) -> CommandRepr<'_> {
        CommandRepr {
            cla: self.cla,
            ins: self.ins,
            p1: self.p1,
            p2: self.p2,
            data: &self.data,
            ne: self.ne,
            force_extended: self.force_extended,
        }
    }

    /// The data field.
    pub fn data(&self) -> &[u8] {
        &self.data
    }

    /// Appends bytes to the data field; on [`CommandError::DataTooLong`] nothing is appended.
    pub fn push_data(&mut self, bytes: &[u8]) -> Result<(), CommandError> {
        self.data
            .extend_from_slice(bytes)
            .map_err(|()| CommandError::DataTooLong)
    }

    /// Empties the data field.
    pub fn clear_data(&mut self) {
        self.data.clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// SELECT the SmartCard-HSM applet by AID, case 4S (sc-hsm-protocol.md §1.3).
    static SELECT_4S: [u8; 17] = [
        0x00, 0xA4, 0x04, 0x00, // CLA INS=SELECT P1=by DF name P2=first, return FCI
        0x0B, // Lc = 11
        0xE8, 0x2B, 0x06, 0x01, 0x04, 0x01, 0x81, 0xC3, 0x1F, 0x02, 0x01, // AID
        0x00, // Le = 00: Ne = 256
    ];

    static AID: [u8; 11] = [
        0xE8, 0x2B, 0x06, 0x01, 0x04, 0x01, 0x81, 0xC3, 0x1F, 0x02, 0x01,
    ];

    fn select_repr() -> CommandRepr<'static> {
        CommandRepr::new(Cla(0x00), 0xA4, 0x04, 0x00)
            .with_data(&AID)
            .with_ne(256)
    }

    #[test]
    fn test_deconstruct() {
        let command = Command::new_checked(&SELECT_4S[..]).unwrap();
        assert_eq!(command.cla(), Cla(0x00));
        assert_eq!(command.ins(), 0xA4);
        assert_eq!(command.p1(), 0x04);
        assert_eq!(command.p2(), 0x00);
        assert_eq!(command.case(), Case::FourShort);
        assert!(!command.is_extended());
        assert_eq!(command.data(), &AID[..]);
        assert_eq!(command.ne(), 256);
    }

    #[test]
    fn test_construct() {
        // An owned command built incrementally, then the view's setters on its encoding.
        let mut owned = CommandBuf::<16>::new(Cla(0x80), 0xA4, 0x04, 0x00);
        owned.push_data(&AID[..5]).unwrap();
        owned.push_data(&AID[5..]).unwrap();
        owned.ne = 256;
        let mut bytes = [0u8; 17];
        assert_eq!(owned.repr().emit(&mut bytes), Ok(17));
        let mut view = Command::new_checked(&mut bytes[..]).unwrap();
        view.set_cla(Cla(0x00));
        assert_eq!(view.into_inner(), &SELECT_4S[..]);
    }

    #[test]
    fn test_parse() {
        let command = Command::new_checked(&SELECT_4S[..]).unwrap();
        let repr = CommandRepr::parse(&command).unwrap();
        assert_eq!(repr, select_repr());
    }

    #[test]
    fn test_emit() {
        let repr = select_repr();
        assert_eq!(repr.buffer_len(), SELECT_4S.len());
        let mut bytes = [0xEEu8; 17];
        assert_eq!(repr.emit(&mut bytes), Ok(17));
        assert_eq!(bytes, SELECT_4S);
        assert_eq!(repr.emit(&mut [0u8; 16]), Err(CommandError::BufferTooSmall));
    }

    /// Every malformed body shape gives its own error (ISO/IEC 7816-3:2006 §12.1.3).
    #[test]
    fn malformed_shapes() {
        let cases: &[(&[u8], CommandError)] = &[
            (&[0x00, 0xA4, 0x04], CommandError::TooShort),
            (
                &[0x00, 0xA4, 0x04, 0x00, 0x00, 0x05],
                CommandError::TruncatedLength,
            ),
            (
                &[0x00, 0xA4, 0x04, 0x00, 0x00, 0x00, 0x00, 0xAA],
                CommandError::ExtendedLcZero,
            ),
            (
                &[0x00, 0xA4, 0x04, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00],
                CommandError::ExtendedLcZero,
            ),
            (
                &[0x00, 0xA4, 0x04, 0x00, 0x03, 0xAA, 0xBB],
                CommandError::DataPastEnd,
            ),
            (
                &[0x00, 0xA4, 0x04, 0x00, 0x01, 0xAA, 0xBB, 0xCC],
                CommandError::TrailingBytes,
            ),
            (
                &[0x00, 0xA4, 0x04, 0x00, 0x00, 0x00, 0x03, 0xAA],
                CommandError::DataPastEnd,
            ),
            (
                &[0x00, 0xA4, 0x04, 0x00, 0x00, 0x00, 0x01, 0xAA, 0x00],
                CommandError::TruncatedLength,
            ),
            (
                &[
                    0x00, 0xA4, 0x04, 0x00, 0x00, 0x00, 0x01, 0xAA, 0x00, 0x00, 0x00,
                ],
                CommandError::TrailingBytes,
            ),
        ];
        for (bytes, error) in cases {
            assert_eq!(
                Command::new_checked(*bytes).err(),
                Some(*error),
                "{bytes:02X?}"
            );
            assert_eq!(CommandRepr::parse_bytes(bytes).err(), Some(*error));
            // The unchecked view still answers without panicking.
            let view = Command::new_unchecked(*bytes);
            assert_eq!(
                (view.case(), view.data(), view.ne()),
                (Case::One, &[][..], 0)
            );
        }
    }

    /// One example per case, with the Le/Lc boundary values.
    #[test]
    fn every_case_decodes() {
        let cases: &[(&[u8], Case, usize, usize)] = &[
            (&[0x00, 0x20, 0x00, 0x81], Case::One, 0, 0),
            (&[0x80, 0x52, 0x00, 0x00, 0x00], Case::TwoShort, 0, 256),
            (&[0x80, 0x84, 0x00, 0x00, 0x08], Case::TwoShort, 0, 8),
            (
                &[0x00, 0xE4, 0x02, 0x00, 0x02, 0xCE, 0x01],
                Case::ThreeShort,
                2,
                0,
            ),
            (
                &[0x00, 0xB1, 0x2F, 0x02, 0x04, 0x54, 0x02, 0x00, 0x00, 0x00],
                Case::FourShort,
                4,
                256,
            ),
            (
                &[0x80, 0x58, 0x00, 0x00, 0x00, 0x00, 0x00],
                Case::TwoExtended,
                0,
                65_536,
            ),
            (
                &[0x80, 0x58, 0x00, 0x00, 0x00, 0x01, 0x01],
                Case::TwoExtended,
                0,
                257,
            ),
            (
                &[0x00, 0xD7, 0x00, 0x00, 0x00, 0x00, 0x01, 0xAA],
                Case::ThreeExtended,
                1,
                0,
            ),
            (
                &[
                    0x00, 0xB1, 0x00, 0x00, 0x00, 0x00, 0x02, 0x54, 0x00, 0xFF, 0xFF,
                ],
                Case::FourExtended,
                2,
                65_535,
            ),
        ];
        for &(bytes, case, nc, ne) in cases {
            let view = Command::new_checked(bytes).unwrap();
            assert_eq!(
                (view.case(), view.data().len(), view.ne()),
                (case, nc, ne),
                "{bytes:02X?}"
            );
            let repr = CommandRepr::parse_bytes(bytes).unwrap();
            let mut out = [0u8; 16];
            let n = repr.emit(&mut out).unwrap();
            assert_eq!(&out[..n], bytes);
        }
    }

    #[test]
    fn builder_picks_the_form() {
        let data = [0x5Au8; 256];
        let base = CommandRepr::new(Cla(0x00), 0xD7, 0x00, 0x00);
        assert_eq!(base.case(), Case::One);
        assert_eq!(base.with_extended().case(), Case::One);
        assert_eq!(base.with_ne(256).case(), Case::TwoShort);
        assert_eq!(base.with_ne(257).case(), Case::TwoExtended);
        assert_eq!(base.with_data(&data[..255]).case(), Case::ThreeShort);
        assert_eq!(base.with_data(&data).case(), Case::ThreeExtended);
        assert_eq!(
            base.with_data(&data[..1]).with_ne(1).case(),
            Case::FourShort
        );
        assert_eq!(
            base.with_data(&data[..1]).with_ne(65_536).case(),
            Case::FourExtended
        );
        assert_eq!(base.with_data(&data).with_ne(1).case(), Case::FourExtended);
        assert_eq!(
            base.with_data(&data[..1]).with_ne(1).with_extended().case(),
            Case::FourExtended
        );
        assert_eq!(
            base.with_ne(65_537).emit(&mut [0u8; 8]),
            Err(CommandError::NeTooLarge)
        );
    }

    #[test]
    fn extended_emit_codes_65536_as_zero() {
        let repr = CommandRepr::new(Cla(0x00), 0xB1, 0x00, 0x00)
            .with_data(&[0x54])
            .with_ne(65_536);
        let mut out = [0u8; 10];
        assert_eq!(repr.emit(&mut out), Ok(10));
        assert_eq!(
            out,
            [0x00, 0xB1, 0x00, 0x00, 0x00, 0x00, 0x01, 0x54, 0x00, 0x00]
        );
    }

    #[test]
    fn owned_command_capacity() {
        let mut owned = CommandBuf::<4>::new(Cla(0x00), 0xD7, 0, 0);
        assert_eq!(owned.push_data(&[1, 2, 3]), Ok(()));
        assert_eq!(owned.push_data(&[4, 5]), Err(CommandError::DataTooLong));
        assert_eq!(owned.data(), &[1, 2, 3]);
        let repr = CommandRepr::new(Cla(0x00), 0xD7, 0, 0).with_data(&[0; 5]);
        assert_eq!(
            CommandBuf::<4>::from_repr(&repr),
            Err(CommandError::DataTooLong)
        );
        let copy = CommandBuf::<8>::from_repr(&repr).unwrap();
        assert_eq!(copy.repr(), repr);
        owned.clear_data();
        assert_eq!(owned.repr().case(), Case::One);
    }
}
