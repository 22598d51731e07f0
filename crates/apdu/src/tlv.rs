//! BER-TLV data objects (ISO/IEC 7816-4:2020 §6.3; ISO/IEC 8825-1 §8.1).
//!
//! A data object is a tag field, a length field and a value of that many bytes; the value of a
//! constructed object is itself a sequence of data objects.
//!
//! - Tags ([`Tag`]) of one to three bytes, as ISO/IEC 7816-4 allows: `84`, `5F20`, `7F49`,
//!   `5F8101`. A first byte with b5..b1 = `11111` is followed by subsequent bytes, each with b8
//!   set except the last; the first subsequent byte is not `80` and not below `1F` (tag numbers
//!   0..=30 take the one-byte form). A first byte of `00` is invalid. The padding bytes `00` and
//!   `FF` that ISO/IEC 7816-4 allows between objects in some files are not skipped: `00` is
//!   reported as [`TlvError::InvalidTag`], so a caller with padded content trims it first.
//! - Definite lengths of one to three bytes: `00`-`7F`, `81 xx`, `82 xx xx`, so values of at
//!   most 65 535 bytes ([`MAX_VALUE_LEN`], the largest extended Nc). `80` (indefinite, never used
//!   by ISO/IEC 7816) and `83`-`FF` are errors. The reader also accepts non-minimal lengths such
//!   as `81 05`; the writer always emits the minimal form.
//! - The reader ([`Tlvs`], [`Tlv`]) is zero-copy and keeps each object's raw bytes.
//! - The writer ([`TlvWriter`]) writes into a caller buffer. A constructed object whose length
//!   is known only after its children are written is written with
//!   [`TlvWriter::write_constructed`]: it reserves a one-byte length, lets the children be
//!   written after it, then moves the children up by one or two bytes if the length needs the
//!   long form. Each nesting level moves its content at most once, so writing is
//!   O(size x depth) and needs no second buffer.
//!
//! # Round-trip laws
//!
//! - For every buffer whose objects all parse, the concatenation of
//!   [`Tlv::as_bytes`] over [`Tlvs`] is the buffer (lossless, whatever the length encoding).
//! - For every parsed object `t`, [`TlvWriter::write_raw`] reproduces `t.as_bytes()`;
//!   [`TlvWriter::write`]`(t.tag(), t.value())` reproduces it exactly when
//!   [`t.is_minimal()`](Tlv::is_minimal), and otherwise writes the same tag and value with the
//!   minimal length field.
//! - For every valid tag and value of at most 65 535 bytes, parsing what
//!   [`TlvRepr::emit`] writes gives the same tag and value.

use core::fmt;
use core::iter::FusedIterator;

use crate::wire::put;

/// The largest value length the length field codes (`82 FF FF`).
pub const MAX_VALUE_LEN: usize = 65_535;

/// A malformed BER-TLV data object, or one that cannot be written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum TlvError {
    /// The buffer ends inside a tag field.
    TruncatedTag,
    /// A first tag byte of `00`, or a first subsequent byte `00`-`1E` or `80` (a tag number
    /// coded in more bytes than it needs), ISO/IEC 8825-1 §8.1.2.
    InvalidTag,
    /// A tag field longer than three bytes (ISO/IEC 7816-4 uses one to three).
    TagTooLong,
    /// The buffer ends inside a length field.
    TruncatedLength,
    /// The length byte `80`: indefinite length, which ISO/IEC 7816 does not use.
    IndefiniteLength,
    /// A length field of more than three bytes (`83`-`FF` first): beyond 65 535.
    LengthTooLong,
    /// The length field announces more value bytes than the buffer holds.
    ValuePastEnd,
    /// Bytes remain after the one object [`Tlv::parse`] expects.
    TrailingBytes,
    /// (write) The output buffer is too small.
    BufferTooSmall,
    /// (write) A value longer than 65 535 bytes.
    ValueTooLong,
}

impl fmt::Display for TlvError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            TlvError::TruncatedTag => "BER-TLV tag field cut short",
            TlvError::InvalidTag => "invalid BER-TLV tag",
            TlvError::TagTooLong => "BER-TLV tag longer than three bytes",
            TlvError::TruncatedLength => "BER-TLV length field cut short",
            TlvError::IndefiniteLength => "BER-TLV indefinite length",
            TlvError::LengthTooLong => "BER-TLV length field longer than three bytes",
            TlvError::ValuePastEnd => "BER-TLV value past the end of the buffer",
            TlvError::TrailingBytes => "bytes after the BER-TLV data object",
            TlvError::BufferTooSmall => "buffer too small for the BER-TLV data object",
            TlvError::ValueTooLong => "BER-TLV value longer than 65535 bytes",
        })
    }
}

impl core::error::Error for TlvError {}

/// The class of a tag: bits b8 b7 of its first byte (ISO/IEC 8825-1 §8.1.2.2).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum TagClass {
    /// `00`: universal (ASN.1 types such as `06` OBJECT IDENTIFIER).
    Universal,
    /// `01`: application (`42`, `5F20`, `7F21`, ...).
    Application,
    /// `10`: context-specific (`80`-`BF`, e.g. `84`).
    ContextSpecific,
    /// `11`: private.
    Private,
}

/// A BER-TLV tag, held as the big-endian value of its one to three bytes: `Tag::new(0x5F20)` is
/// the two-byte tag `5F 20`.
///
/// Any `u32` makes a `Tag`, so tags can be constants; [`Tag::is_valid`] says whether it is a
/// tag ISO/IEC 7816-4 allows, and the writer refuses the others. The reader yields valid tags
/// only.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Tag(u32);

/// Bits b5..b1 of a first tag byte all set: subsequent bytes follow.
const TAG_NUMBER_FOLLOWS: u8 = 0x1F;
/// Bit b8 of a subsequent tag byte: another byte follows.
const TAG_MORE: u8 = 0x80;
/// Bit b6 of the first tag byte: constructed.
const TAG_CONSTRUCTED: u8 = 0x20;

impl Tag {
    /// The tag whose bytes, big-endian, are `raw`.
    pub const fn new(raw: u32) -> Tag {
        Tag(raw)
    }

    /// The bytes of the tag as a big-endian number.
    pub const fn raw(self) -> u32 {
        self.0
    }

    /// The number of bytes of the tag field: the bytes of `raw` without its leading zero bytes
    /// (at least one).
    pub const fn encoded_len(self) -> usize {
        let zero_bytes = (self.0.leading_zeros() / 8) as usize;
        if zero_bytes >= 4 {
            1
        } else {
            4 - zero_bytes
        }
    }

    /// The tag field bytes, right-aligned in four bytes, and how many of them there are.
    fn bytes(self) -> ([u8; 4], usize) {
        (self.0.to_be_bytes(), self.encoded_len())
    }

    /// The first byte of the tag field.
    const fn first_byte(self) -> u8 {
        (self.0 >> ((self.encoded_len() - 1) * 8)) as u8
    }

    /// The class, from bits b8 b7 of the first byte (ISO/IEC 8825-1 §8.1.2.2).
    pub const fn class(self) -> TagClass {
        match self.first_byte() >> 6 {
            0 => TagClass::Universal,
            1 => TagClass::Application,
            2 => TagClass::ContextSpecific,
            _ => TagClass::Private,
        }
    }

    /// Whether the object is constructed (its value is a sequence of objects): bit b6 of the
    /// first byte (ISO/IEC 8825-1 §8.1.2.5).
    pub const fn is_constructed(self) -> bool {
        self.first_byte() & TAG_CONSTRUCTED != 0
    }

    /// Whether this is a tag ISO/IEC 7816-4 allows, coded as the reader would read it.
    pub fn is_valid(self) -> bool {
        let (bytes, len) = self.bytes();
        bytes.get(4 - len..).map(Tag::parse_prefix).is_some_and(
            |parsed| matches!(parsed, Ok((tag, rest)) if tag == self && rest.is_empty()),
        )
    }

    /// The tag field as the writer emits it; [`TlvError::InvalidTag`] unless valid.
    fn field(self) -> Result<([u8; 4], usize), TlvError> {
        if self.is_valid() {
            Ok(self.bytes())
        } else {
            Err(TlvError::InvalidTag)
        }
    }

    /// Reads the tag field at the front of `bytes` (ISO/IEC 7816-4:2020 §6.3; ISO/IEC 8825-1
    /// §8.1.2) and returns the tag and the bytes after it.
    pub fn parse_prefix(bytes: &[u8]) -> Result<(Tag, &[u8]), TlvError> {
        let (&first, rest) = bytes.split_first().ok_or(TlvError::TruncatedTag)?;
        if first == 0x00 {
            return Err(TlvError::InvalidTag);
        }
        // Low-tag-number form: b5..b1 code the number 0..=30.
        if first & TAG_NUMBER_FOLLOWS != TAG_NUMBER_FOLLOWS {
            return Ok((Tag(u32::from(first)), rest));
        }
        // High-tag-number form. The first subsequent byte must not be 80 (b7..b1 all zero) nor
        // code a number below 31 in one byte (00..=1E).
        let (&second, rest) = rest.split_first().ok_or(TlvError::TruncatedTag)?;
        if second < TAG_NUMBER_FOLLOWS || second == TAG_MORE {
            return Err(TlvError::InvalidTag);
        }
        let two = u32::from_be_bytes([0, 0, first, second]);
        if second & TAG_MORE == 0 {
            return Ok((Tag(two), rest));
        }
        let (&third, rest) = rest.split_first().ok_or(TlvError::TruncatedTag)?;
        if third & TAG_MORE != 0 {
            return Err(TlvError::TagTooLong);
        }
        Ok((Tag((two << 8) | u32::from(third)), rest))
    }
}

impl fmt::Debug for Tag {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Tag({self})")
    }
}

impl fmt::Display for Tag {
    /// The tag bytes in hex: `5F20`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:0width$X}", self.0, width = self.encoded_len() * 2)
    }
}

#[cfg(feature = "defmt")]
impl defmt::Format for Tag {
    fn format(&self, f: defmt::Formatter<'_>) {
        defmt::write!(f, "Tag({=u32:#x})", self.0);
    }
}

/// Reads a definite length field at the front of `bytes` (ISO/IEC 7816-4:2020 §6.3; ISO/IEC
/// 8825-1 §8.1.3): short form `00`-`7F`, long form `81 xx` or `82 xx xx`, minimal or not.
fn parse_length(bytes: &[u8]) -> Result<(usize, &[u8]), TlvError> {
    let (&first, rest) = bytes.split_first().ok_or(TlvError::TruncatedLength)?;
    match first {
        0x00..=0x7F => Ok((usize::from(first), rest)),
        0x80 => Err(TlvError::IndefiniteLength),
        0x81 => match rest {
            [len, rest @ ..] => Ok((usize::from(*len), rest)),
            [] => Err(TlvError::TruncatedLength),
        },
        0x82 => match rest {
            [hi, lo, rest @ ..] => Ok((usize::from(u16::from_be_bytes([*hi, *lo])), rest)),
            _ => Err(TlvError::TruncatedLength),
        },
        _ => Err(TlvError::LengthTooLong),
    }
}

/// The minimal length field for `len` value bytes, left-aligned, and its length.
fn length_field(len: usize) -> Result<([u8; 3], usize), TlvError> {
    let [hi, lo] = u16::try_from(len)
        .map_err(|_| TlvError::ValueTooLong)?
        .to_be_bytes();
    Ok(match (hi, lo) {
        (0, 0x00..=0x7F) => ([lo, 0, 0], 1),
        (0, _) => ([0x81, lo, 0], 2),
        _ => ([0x82, hi, lo], 3),
    })
}

/// One BER-TLV data object read from a buffer: its tag, its value, and its raw bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct Tlv<'a> {
    tag: Tag,
    bytes: &'a [u8],
    header_len: usize,
}

impl<'a> Tlv<'a> {
    /// Reads the data object at the front of `bytes` and returns it with the bytes after it.
    pub fn parse_prefix(bytes: &'a [u8]) -> Result<(Tlv<'a>, &'a [u8]), TlvError> {
        let (tag, after_tag) = Tag::parse_prefix(bytes)?;
        let (len, after_len) = parse_length(after_tag)?;
        let header_len = bytes.len() - after_len.len();
        let total = header_len.checked_add(len).ok_or(TlvError::ValuePastEnd)?;
        let (object, rest) = bytes
            .split_at_checked(total)
            .ok_or(TlvError::ValuePastEnd)?;
        Ok((
            Tlv {
                tag,
                bytes: object,
                header_len,
            },
            rest,
        ))
    }

    /// Reads a buffer that holds exactly one data object.
    pub fn parse(bytes: &'a [u8]) -> Result<Tlv<'a>, TlvError> {
        match Tlv::parse_prefix(bytes)? {
            (tlv, []) => Ok(tlv),
            _ => Err(TlvError::TrailingBytes),
        }
    }

    /// The tag.
    pub fn tag(&self) -> Tag {
        self.tag
    }

    /// The value field.
    pub fn value(&self) -> &'a [u8] {
        self.bytes.get(self.header_len..).unwrap_or(&[])
    }

    /// The raw bytes of the whole object (tag, length as received, value).
    pub fn as_bytes(&self) -> &'a [u8] {
        self.bytes
    }

    /// Whether the length field is in the minimal form, the one the writer emits (ISO/IEC
    /// 8825-1 §10.1, DER).
    pub fn is_minimal(&self) -> bool {
        length_field(self.value().len())
            .is_ok_and(|(_, len)| self.tag.encoded_len() + len == self.header_len)
    }

    /// The objects in the value of a constructed object; `None` for a primitive one.
    pub fn children(&self) -> Option<Tlvs<'a>> {
        self.tag.is_constructed().then(|| Tlvs::new(self.value()))
    }

    /// The first child with `tag`, for a constructed object; `Ok(None)` for a primitive one or
    /// when no child before the first malformed one has the tag.
    pub fn find(&self, tag: Tag) -> Result<Option<Tlv<'a>>, TlvError> {
        self.children()
            .map_or(Ok(None), |children| children.find(tag))
    }
}

/// The data objects of a buffer, in order. Yields `Err` once on a malformed object and then
/// stops.
#[derive(Debug, Clone)]
pub struct Tlvs<'a> {
    rest: &'a [u8],
}

impl<'a> Tlvs<'a> {
    /// The data objects of `bytes`.
    pub const fn new(bytes: &'a [u8]) -> Tlvs<'a> {
        Tlvs { rest: bytes }
    }

    /// The first object with `tag` at this level (no descent); `Ok(None)` when there is none,
    /// and the error when a malformed object comes first.
    pub fn find(self, tag: Tag) -> Result<Option<Tlv<'a>>, TlvError> {
        for tlv in self {
            let tlv = tlv?;
            if tlv.tag() == tag {
                return Ok(Some(tlv));
            }
        }
        Ok(None)
    }
}

impl<'a> Iterator for Tlvs<'a> {
    type Item = Result<Tlv<'a>, TlvError>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.rest.is_empty() {
            return None;
        }
        match Tlv::parse_prefix(self.rest) {
            Ok((tlv, rest)) => {
                self.rest = rest;
                Some(Ok(tlv))
            }
            Err(error) => {
                self.rest = &[];
                Some(Err(error))
            }
        }
    }
}

impl FusedIterator for Tlvs<'_> {}

/// A data object to write: a tag and a value, encoded with the minimal length field.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct TlvRepr<'a> {
    /// The tag.
    pub tag: Tag,
    /// The value, at most 65 535 bytes.
    pub value: &'a [u8],
}

impl<'a> TlvRepr<'a> {
    /// A data object with `tag` and `value`.
    pub const fn new(tag: Tag, value: &'a [u8]) -> TlvRepr<'a> {
        TlvRepr { tag, value }
    }

    /// The tag and value of a parsed object (its length encoding is not kept).
    pub fn parse(tlv: &Tlv<'a>) -> TlvRepr<'a> {
        TlvRepr {
            tag: tlv.tag(),
            value: tlv.value(),
        }
    }

    /// The length of the encoding, when [`emit`](Self::emit) succeeds.
    pub fn buffer_len(&self) -> usize {
        let len_len = length_field(self.value.len()).map_or(3, |(_, len)| len);
        self.tag.encoded_len() + len_len + self.value.len()
    }

    /// Writes tag, minimal length and value into the front of `buffer` (ISO/IEC 7816-4:2020
    /// §6.3) and returns the number of bytes written.
    pub fn emit(&self, buffer: &mut [u8]) -> Result<usize, TlvError> {
        let (tag, tag_len) = self.tag.field()?;
        let (len, len_len) = length_field(self.value.len())?;
        let total = tag_len + len_len + self.value.len();
        let mut out = buffer.get_mut(..total).ok_or(TlvError::BufferTooSmall)?;
        put(&mut out, tag.get(4 - tag_len..).unwrap_or(&[]))
            .and_then(|()| put(&mut out, len.get(..len_len).unwrap_or(&[])))
            .and_then(|()| put(&mut out, self.value))
            .map(|()| total)
            .ok_or(TlvError::BufferTooSmall)
    }
}

/// Writes data objects one after another into a caller buffer.
///
/// A failed write leaves the writer as it was before the call.
#[derive(Debug)]
pub struct TlvWriter<'b> {
    buffer: &'b mut [u8],
    len: usize,
}

impl<'b> TlvWriter<'b> {
    /// A writer that fills `buffer` from its start.
    pub fn new(buffer: &'b mut [u8]) -> TlvWriter<'b> {
        TlvWriter { buffer, len: 0 }
    }

    /// The number of bytes written.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether nothing was written.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The bytes written.
    pub fn as_bytes(&self) -> &[u8] {
        self.buffer.get(..self.len).unwrap_or(&[])
    }

    /// The bytes written, borrowed for as long as the buffer.
    pub fn into_bytes(self) -> &'b [u8] {
        let TlvWriter { buffer, len } = self;
        let buffer: &'b [u8] = buffer;
        buffer.get(..len).unwrap_or(&[])
    }

    fn spare(&mut self) -> &mut [u8] {
        self.buffer.get_mut(self.len..).unwrap_or(&mut [])
    }

    /// Writes one object with `tag` and `value`, minimal length (ISO/IEC 7816-4:2020 §6.3).
    pub fn write(&mut self, tag: Tag, value: &[u8]) -> Result<(), TlvError> {
        let written = TlvRepr::new(tag, value).emit(self.spare())?;
        self.len += written;
        Ok(())
    }

    /// Copies a parsed object's raw bytes, length encoding included (lossless).
    pub fn write_raw(&mut self, tlv: &Tlv<'_>) -> Result<(), TlvError> {
        let bytes = tlv.as_bytes();
        let slot = self
            .spare()
            .get_mut(..bytes.len())
            .ok_or(TlvError::BufferTooSmall)?;
        slot.copy_from_slice(bytes);
        self.len += bytes.len();
        Ok(())
    }

    /// Writes a constructed object whose value is what `children` writes with this writer.
    ///
    /// The tag and a one-byte length are reserved first; once `children` returns, the length is
    /// filled in, and if it needs the long form (128 bytes or more) the children are moved up by
    /// one or two bytes to make room. On any error, from `children` or from the buffer, nothing
    /// of the object remains written.
    pub fn write_constructed<F>(&mut self, tag: Tag, children: F) -> Result<(), TlvError>
    where
        F: FnOnce(&mut TlvWriter<'b>) -> Result<(), TlvError>,
    {
        let start = self.len;
        let result = self.open(tag).and_then(|content_start| {
            children(self)?;
            self.close(tag, start, content_start)
        });
        if result.is_err() {
            self.len = start;
        }
        result
    }

    /// Reserves the tag and a one-byte length; returns where the content starts.
    fn open(&mut self, tag: Tag) -> Result<usize, TlvError> {
        let (_, tag_len) = tag.field()?;
        let content_start = self.len + tag_len + 1;
        if content_start > self.buffer.len() {
            return Err(TlvError::BufferTooSmall);
        }
        self.len = content_start;
        Ok(content_start)
    }

    /// Writes the header of the object opened at `start`, moving its content if the length
    /// field is longer than the byte reserved for it.
    fn close(&mut self, tag: Tag, start: usize, content_start: usize) -> Result<(), TlvError> {
        let (tag_bytes, tag_len) = tag.field()?;
        let content_len = self
            .len
            .checked_sub(content_start)
            .ok_or(TlvError::BufferTooSmall)?;
        let (len_bytes, len_len) = length_field(content_len)?;
        let shift = len_len - 1;
        let end = self.len + shift;
        if shift > 0 {
            // [content | shift spare bytes] -> [shift bytes | content]
            let moved = self
                .buffer
                .get_mut(content_start..end)
                .ok_or(TlvError::BufferTooSmall)?;
            moved.rotate_right(shift);
        }
        let header = self
            .buffer
            .get_mut(start..content_start + shift)
            .ok_or(TlvError::BufferTooSmall)?;
        let mut out = header;
        put(&mut out, tag_bytes.get(4 - tag_len..).unwrap_or(&[]))
            .and_then(|()| put(&mut out, len_bytes.get(..len_len).unwrap_or(&[])))
            .ok_or(TlvError::BufferTooSmall)?;
        self.len = end;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The data field of INITIALIZE DEVICE (sc-hsm-protocol.md §6.2).
    static INITIALIZE: [u8; 25] = [
        0x80, 0x02, 0x00, 0x01, // 80: options 0001 (user PIN reset with SO-PIN)
        0x81, 0x06, 0x36, 0x34, 0x38, 0x32, 0x31, 0x39, // 81: user PIN "648219"
        0x82, 0x08, 0x35, 0x37, 0x36, 0x32, 0x31, 0x38, 0x38, 0x30, // 82: SO-PIN "57621880"
        0x91, 0x01, 0x03, // 91: user PIN retry counter 3
    ];

    /// A constructed object: 7F49 (public key) with 86 (EC point, 3 bytes here) and 87 01 01.
    static PUBLIC_KEY: [u8; 11] = [
        0x7F, 0x49, 0x08, // 7F49, length 8
        0x86, 0x03, 0x04, 0xAA, 0xBB, // 86: point
        0x87, 0x01, 0x01, // 87: cofactor 1
    ];

    #[test]
    fn test_deconstruct() {
        let tlv = Tlv::parse(&PUBLIC_KEY).unwrap();
        assert_eq!(tlv.tag(), Tag::new(0x7F49));
        assert_eq!(tlv.tag().class(), TagClass::Application);
        assert!(tlv.tag().is_constructed());
        assert_eq!(tlv.value(), &PUBLIC_KEY[3..]);
        assert_eq!(tlv.as_bytes(), &PUBLIC_KEY[..]);
        let point = tlv.find(Tag::new(0x86)).unwrap().unwrap();
        assert_eq!(point.value(), &[0x04, 0xAA, 0xBB]);
        assert!(!point.tag().is_constructed());
        assert_eq!(point.tag().class(), TagClass::ContextSpecific);
        assert!(point.children().is_none());
    }

    #[test]
    fn test_construct() {
        let mut buffer = [0u8; 11];
        let mut writer = TlvWriter::new(&mut buffer);
        writer
            .write_constructed(Tag::new(0x7F49), |w| {
                w.write(Tag::new(0x86), &[0x04, 0xAA, 0xBB])?;
                w.write(Tag::new(0x87), &[0x01])
            })
            .unwrap();
        assert_eq!(writer.into_bytes(), &PUBLIC_KEY[..]);
    }

    #[test]
    fn test_parse() {
        let objects: [(u32, &[u8]); 4] = [
            (0x80, &[0x00, 0x01]),
            (0x81, b"648219"),
            (0x82, b"57621880"),
            (0x91, &[0x03]),
        ];
        let mut tlvs = Tlvs::new(&INITIALIZE);
        for (tag, value) in objects {
            let tlv = tlvs.next().unwrap().unwrap();
            assert_eq!(TlvRepr::parse(&tlv), TlvRepr::new(Tag::new(tag), value));
        }
        assert!(tlvs.next().is_none());
    }

    #[test]
    fn test_emit() {
        let mut buffer = [0u8; 25];
        let mut writer = TlvWriter::new(&mut buffer);
        writer.write(Tag::new(0x80), &[0x00, 0x01]).unwrap();
        writer.write(Tag::new(0x81), b"648219").unwrap();
        writer.write(Tag::new(0x82), b"57621880").unwrap();
        writer.write(Tag::new(0x91), &[0x03]).unwrap();
        assert_eq!(writer.as_bytes(), &INITIALIZE[..]);
        assert_eq!(
            writer.write(Tag::new(0x91), &[]),
            Err(TlvError::BufferTooSmall)
        );
        assert_eq!(writer.len(), 25);
        let repr = TlvRepr::new(Tag::new(0x91), &[0x03]);
        assert_eq!(repr.buffer_len(), 3);
        let mut out = [0u8; 3];
        assert_eq!(repr.emit(&mut out), Ok(3));
        assert_eq!(out, [0x91, 0x01, 0x03]);
    }

    #[test]
    fn tags_of_one_to_three_bytes() {
        let cases: &[(&[u8], u32)] = &[
            (&[0x84], 0x84),
            (&[0x5F, 0x20], 0x5F20),
            (&[0x7F, 0x21], 0x7F21),
            (&[0x7F, 0x49], 0x7F49),
            (&[0x9F, 0x1F], 0x9F1F),
            (&[0x5F, 0x81, 0x01], 0x5F_8101),
            (&[0xFF, 0xFF, 0x7F], 0xFF_FF7F),
        ];
        for &(bytes, raw) in cases {
            let (tag, rest) = Tag::parse_prefix(bytes).unwrap();
            assert_eq!((tag, rest), (Tag::new(raw), &[][..]), "{bytes:02X?}");
            assert!(tag.is_valid());
            assert_eq!(tag.encoded_len(), bytes.len());
        }
        let errors: &[(&[u8], TlvError)] = &[
            (&[], TlvError::TruncatedTag),
            (&[0x00], TlvError::InvalidTag),
            (&[0x5F], TlvError::TruncatedTag),
            (&[0x5F, 0x1E], TlvError::InvalidTag),
            (&[0x5F, 0x80, 0x01], TlvError::InvalidTag),
            (&[0x5F, 0x81], TlvError::TruncatedTag),
            (&[0x5F, 0x81, 0x81, 0x01], TlvError::TagTooLong),
        ];
        for &(bytes, error) in errors {
            assert_eq!(Tag::parse_prefix(bytes).err(), Some(error), "{bytes:02X?}");
        }
        assert!(!Tag::new(0x00).is_valid());
        assert!(!Tag::new(0x1F).is_valid());
        assert!(!Tag::new(0x5F05).is_valid());
        assert!(!Tag::new(0x8401).is_valid());
        assert!(!Tag::new(0x5F81_8101).is_valid());
        assert_eq!(Tag::new(0x5F8101).class(), TagClass::Application);
        assert_eq!(Tag::new(0xFF_FF7F).class(), TagClass::Private);
        assert_eq!(Tag::new(0x30).class(), TagClass::Universal);
        assert!(Tag::new(0x30).is_constructed());
    }

    #[test]
    fn lengths_of_one_to_three_bytes() {
        let mut long = [0xABu8; 4 + 300];
        long[..4].copy_from_slice(&[0x53, 0x82, 0x01, 0x2C]); // 53 82 01 2C: 300 bytes
        let tlv = Tlv::parse(&long).unwrap();
        assert_eq!(tlv.value().len(), 300);
        assert!(tlv.is_minimal());
        long[2] = 0x00;
        long[3] = 0x05; // 82 00 05: not minimal, still read
        assert_eq!(Tlv::parse_prefix(&long).unwrap().0.value().len(), 5);
        let cases: &[(&[u8], Result<usize, TlvError>, bool)] = &[
            (&[0x04, 0x00], Ok(0), true),
            (&[0x04, 0x7F], Err(TlvError::ValuePastEnd), true),
            (&[0x04, 0x81, 0x01, 0xAA], Ok(1), false),
            (&[0x04, 0x81], Err(TlvError::TruncatedLength), true),
            (&[0x04, 0x82, 0x00], Err(TlvError::TruncatedLength), true),
            (&[0x04], Err(TlvError::TruncatedLength), true),
            (
                &[0x04, 0x80, 0x00, 0x00],
                Err(TlvError::IndefiniteLength),
                true,
            ),
            (
                &[0x04, 0x83, 0x00, 0x00, 0x01, 0xAA],
                Err(TlvError::LengthTooLong),
                true,
            ),
            (&[0x04, 0xFF], Err(TlvError::LengthTooLong), true),
        ];
        for &(bytes, expected, minimal) in cases {
            let parsed = Tlv::parse(bytes);
            assert_eq!(parsed.map(|t| t.value().len()), expected, "{bytes:02X?}");
            if let Ok(tlv) = parsed {
                assert_eq!(tlv.is_minimal(), minimal);
            }
        }
        assert_eq!(
            Tlv::parse(&[0x04, 0x00, 0x04]),
            Err(TlvError::TrailingBytes)
        );
    }

    #[test]
    fn writer_picks_minimal_lengths() {
        for (len, header) in [
            (0usize, &[0x04, 0x00][..]),
            (127, &[0x04, 0x7F]),
            (128, &[0x04, 0x81, 0x80]),
            (255, &[0x04, 0x81, 0xFF]),
            (256, &[0x04, 0x82, 0x01, 0x00]),
            (65_535, &[0x04, 0x82, 0xFF, 0xFF]),
        ] {
            let value = [0x5Au8; 65_535];
            let value = &value[..len];
            let mut buffer = [0u8; 65_540];
            let mut writer = TlvWriter::new(&mut buffer);
            writer.write(Tag::new(0x04), value).unwrap();
            let bytes = writer.into_bytes();
            assert_eq!(&bytes[..header.len()], header);
            assert_eq!(bytes.len(), header.len() + len);
        }
        let too_long = [0u8; 65_536];
        let mut buffer = [0u8; 8];
        assert_eq!(
            TlvWriter::new(&mut buffer).write(Tag::new(0x04), &too_long),
            Err(TlvError::ValueTooLong)
        );
        assert_eq!(
            TlvWriter::new(&mut buffer).write(Tag::new(0x1F), &[]),
            Err(TlvError::InvalidTag)
        );
    }

    #[test]
    fn constructed_with_long_content_moves_children() {
        let value = [0x11u8; 200];
        let mut buffer = [0u8; 300];
        let mut writer = TlvWriter::new(&mut buffer);
        writer.write(Tag::new(0x80), &[0x01]).unwrap();
        writer
            .write_constructed(Tag::new(0x7F21), |w| {
                w.write_constructed(Tag::new(0x7F4E), |w| w.write(Tag::new(0x5F29), &[0x00]))?;
                w.write(Tag::new(0x5F37), &value)
            })
            .unwrap();
        let bytes = writer.into_bytes();
        // 80 01 01 | 7F21 81 D3 { 7F4E 04 { 5F29 01 00 } 5F37 81 C8 <200> }
        assert_eq!(&bytes[..3], &[0x80, 0x01, 0x01]);
        assert_eq!(
            &bytes[3..16],
            &[0x7F, 0x21, 0x81, 0xD3, 0x7F, 0x4E, 0x04, 0x5F, 0x29, 0x01, 0x00, 0x5F, 0x37]
        );
        assert_eq!(bytes.len(), 3 + 4 + 0xD3);
        let cert = Tlv::parse(&bytes[3..]).unwrap();
        assert_eq!(
            cert.find(Tag::new(0x5F37)).unwrap().unwrap().value(),
            &value[..]
        );
    }

    #[test]
    fn failed_constructed_write_leaves_nothing() {
        let mut buffer = [0u8; 8];
        let mut writer = TlvWriter::new(&mut buffer);
        writer.write(Tag::new(0x80), &[0x01]).unwrap();
        let result = writer.write_constructed(Tag::new(0x30), |w| {
            w.write(Tag::new(0x04), &[1, 2])?;
            w.write(Tag::new(0x04), &[1, 2])
        });
        assert_eq!(result, Err(TlvError::BufferTooSmall));
        assert_eq!(writer.as_bytes(), &[0x80, 0x01, 0x01]);
        // 128 bytes of content fit after a one-byte length, but 128 needs the two bytes 81 80.
        let mut buffer = [0u8; 2 + 128];
        let mut writer = TlvWriter::new(&mut buffer);
        let result =
            writer.write_constructed(Tag::new(0x30), |w| w.write(Tag::new(0x04), &[0; 126]));
        assert_eq!(result, Err(TlvError::BufferTooSmall));
        assert!(writer.is_empty());
    }

    #[test]
    fn find_stops_at_malformed_objects() {
        let bytes = [0x80, 0x01, 0x01, 0x81, 0x05, 0x00];
        assert_eq!(
            Tlvs::new(&bytes)
                .find(Tag::new(0x80))
                .unwrap()
                .map(|t| t.value()),
            Some(&[0x01][..])
        );
        assert_eq!(
            Tlvs::new(&bytes).find(Tag::new(0x82)),
            Err(TlvError::ValuePastEnd)
        );
        let mut tlvs = Tlvs::new(&bytes);
        assert!(tlvs.next().unwrap().is_ok());
        assert_eq!(tlvs.next(), Some(Err(TlvError::ValuePastEnd)));
        assert_eq!(tlvs.next(), None);
    }

    #[test]
    fn tag_display() {
        extern crate std;
        use std::format;
        assert_eq!(format!("{}", Tag::new(0x84)), "84");
        assert_eq!(format!("{}", Tag::new(0x5F20)), "5F20");
        assert_eq!(format!("{:?}", Tag::new(0x5F8101)), "Tag(5F8101)");
        assert_eq!(format!("{}", Tag::new(0x0A)), "0A");
    }
}
