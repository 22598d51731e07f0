//! The interrupt-IN messages (CCID Rev 1.1 §6.3): `RDR_to_PC_NotifySlotChange` and
//! `RDR_to_PC_HardwareError`. They have no 10-byte header; one USB interrupt transfer is one
//! message.
//!
//! ```text
//! NotifySlotChange  50 | bmSlotICCState (2 bits per slot, rounded up to whole bytes)
//! HardwareError     51 | bSlot | bSeq | bHardwareErrorCode
//! ```

use core::fmt;

use crate::message::MessageType;
use crate::{bytes, Error, Result};

mod field {
    /// `bMessageType`.
    pub const MESSAGE_TYPE: usize = 0;
    /// Start of `bmSlotICCState` (NotifySlotChange).
    pub const SLOT_ICC_STATE: usize = 1;
    /// `bSlot` (HardwareError).
    pub const SLOT: usize = 1;
    /// `bSeq` (HardwareError).
    pub const SEQ: usize = 2;
    /// `bHardwareErrorCode` (HardwareError).
    pub const HARDWARE_ERROR_CODE: usize = 3;
}

/// One slot's two bits in `bmSlotICCState` (CCID Rev 1.1 §6.3.1): the low bit says an ICC is
/// present, the high bit that the state changed since the last NotifySlotChange.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct SlotChange {
    /// An ICC is present.
    pub present: bool,
    /// The slot changed state since the last NotifySlotChange.
    pub changed: bool,
}

impl SlotChange {
    /// From the two bits (higher bits ignored).
    pub const fn from_bits(bits: u8) -> Self {
        SlotChange {
            present: bits & 0x01 != 0,
            changed: bits & 0x02 != 0,
        }
    }

    /// The two bits.
    pub const fn bits(self) -> u8 {
        (self.present as u8) | ((self.changed as u8) << 1)
    }
}

/// The byte and shift of slot `index` in `bmSlotICCState`.
const fn slot_position(index: usize) -> (usize, u32) {
    (index / 4, ((index % 4) * 2) as u32)
}

/// A zero-copy view of `RDR_to_PC_NotifySlotChange` (CCID Rev 1.1 §6.3.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NotifySlotChange<T: AsRef<[u8]>> {
    buffer: T,
}

impl<T: AsRef<[u8]>> NotifySlotChange<T> {
    /// Wrap a buffer without checking it.
    pub const fn new_unchecked(buffer: T) -> Self {
        NotifySlotChange { buffer }
    }

    /// Wrap a buffer that holds the type byte and at least one byte of slot state.
    pub fn new_checked(buffer: T) -> Result<Self> {
        let v = Self::new_unchecked(buffer);
        v.check_len()?;
        Ok(v)
    }

    /// Check for the type byte and at least one byte of `bmSlotICCState`.
    pub fn check_len(&self) -> Result<()> {
        if self.buffer.as_ref().len() < 2 {
            Err(Error::Truncated)
        } else {
            Ok(())
        }
    }

    /// The underlying buffer.
    pub fn into_inner(self) -> T {
        self.buffer
    }

    /// `bMessageType` (0x50 for this message).
    pub fn message_type(&self) -> MessageType {
        MessageType::from_byte(bytes::u8_at(self.buffer.as_ref(), field::MESSAGE_TYPE))
    }

    /// `bmSlotICCState`: every byte after the type byte.
    pub fn slot_icc_state(&self) -> &[u8] {
        self.buffer
            .as_ref()
            .get(field::SLOT_ICC_STATE..)
            .unwrap_or(&[])
    }

    /// How many slots the bitmap can describe (4 per byte).
    pub fn slot_capacity(&self) -> usize {
        self.slot_icc_state().len().saturating_mul(4)
    }

    /// The state of slot `index`; `None` past the bitmap.
    pub fn slot(&self, index: usize) -> Option<SlotChange> {
        let (byte, shift) = slot_position(index);
        self.slot_icc_state()
            .get(byte)
            .map(|b| SlotChange::from_bits(b >> shift))
    }
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> NotifySlotChange<T> {
    /// Set `bMessageType`.
    pub fn set_message_type(&mut self, message_type: MessageType) {
        bytes::set_u8(
            self.buffer.as_mut(),
            field::MESSAGE_TYPE,
            message_type.to_byte(),
        );
    }

    /// Set the state of slot `index`; [`Error::OutOfRange`] past the bitmap.
    pub fn set_slot(&mut self, index: usize, state: SlotChange) -> Result<()> {
        let (byte, shift) = slot_position(index);
        let b = self
            .buffer
            .as_mut()
            .get_mut(field::SLOT_ICC_STATE..)
            .and_then(|s| s.get_mut(byte))
            .ok_or(Error::OutOfRange)?;
        *b = (*b & !(0x03 << shift)) | (state.bits() << shift);
        Ok(())
    }
}

/// `RDR_to_PC_NotifySlotChange` with its `bmSlotICCState` (CCID Rev 1.1 §6.3.1), for up to
/// 256 slots (`bMaxSlotIndex` 255): 1 to 64 bytes of bitmap, kept exactly as received.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct NotifySlotChangeRepr {
    /// Bytes of bitmap in use (1..=64).
    len: u8,
    /// The bitmap; bytes past `len` are always zero.
    bitmap: [u8; NotifySlotChangeRepr::MAX_BITMAP_LEN],
}

impl NotifySlotChangeRepr {
    /// The longest bitmap: 256 slots at 2 bits each.
    pub const MAX_BITMAP_LEN: usize = 64;

    /// Bitmap bytes for `slot_count` slots: 2 bits each, rounded up (CCID Rev 1.1 §6.3.1).
    pub const fn bitmap_len(slot_count: usize) -> usize {
        slot_count.div_ceil(4)
    }

    /// All slots absent and unchanged, sized for `slot_count` slots (1..=256, i.e.
    /// `bMaxSlotIndex + 1`).
    pub fn new(slot_count: usize) -> Result<Self> {
        if slot_count == 0 || slot_count > 256 {
            return Err(Error::OutOfRange);
        }
        let len = u8::try_from(Self::bitmap_len(slot_count)).map_err(|_| Error::OutOfRange)?;
        Ok(NotifySlotChangeRepr {
            len,
            bitmap: [0; Self::MAX_BITMAP_LEN],
        })
    }

    /// From a received `bmSlotICCState` of 1..=64 bytes.
    pub fn from_bitmap(bitmap: &[u8]) -> Result<Self> {
        if bitmap.is_empty() {
            return Err(Error::Truncated);
        }
        let len = u8::try_from(bitmap.len()).map_err(|_| Error::BadLength)?;
        let mut repr = NotifySlotChangeRepr {
            len,
            bitmap: [0; Self::MAX_BITMAP_LEN],
        };
        if !bytes::put(&mut repr.bitmap, 0, bitmap) {
            return Err(Error::BadLength);
        }
        Ok(repr)
    }

    /// `bmSlotICCState` as it travels.
    pub fn bitmap(&self) -> &[u8] {
        self.bitmap.get(..usize::from(self.len)).unwrap_or(&[])
    }

    /// How many slots the bitmap can describe (4 per byte).
    pub fn slot_capacity(&self) -> usize {
        usize::from(self.len) * 4
    }

    /// The state of slot `index`; `None` past the bitmap.
    pub fn slot(&self, index: usize) -> Option<SlotChange> {
        let (byte, shift) = slot_position(index);
        self.bitmap()
            .get(byte)
            .map(|b| SlotChange::from_bits(b >> shift))
    }

    /// Set the state of slot `index`; [`Error::OutOfRange`] past the bitmap.
    pub fn set_slot(&mut self, index: usize, state: SlotChange) -> Result<()> {
        let (byte, shift) = slot_position(index);
        if byte >= usize::from(self.len) {
            return Err(Error::OutOfRange);
        }
        let b = self.bitmap.get_mut(byte).ok_or(Error::OutOfRange)?;
        *b = (*b & !(0x03 << shift)) | (state.bits() << shift);
        Ok(())
    }

    /// Parse a view: type 0x50 and the bitmap that follows (CCID Rev 1.1 §6.3.1).
    pub fn parse<T: AsRef<[u8]> + ?Sized>(view: &NotifySlotChange<&T>) -> Result<Self> {
        view.check_len()?;
        if view.message_type() != MessageType::NotifySlotChange {
            return Err(Error::WrongMessageType);
        }
        Self::from_bitmap(view.slot_icc_state())
    }

    /// Bytes `emit` writes: the type byte and the bitmap.
    pub fn buffer_len(&self) -> usize {
        1 + usize::from(self.len)
    }

    /// Write the message into the start of `buf`; returns the length written.
    pub fn emit(&self, buf: &mut [u8]) -> Result<usize> {
        let len = self.buffer_len();
        let out = buf.get_mut(..len).ok_or(Error::BufferTooSmall)?;
        let mut view = NotifySlotChange::new_unchecked(&mut *out);
        view.set_message_type(MessageType::NotifySlotChange);
        if bytes::put(out, field::SLOT_ICC_STATE, self.bitmap()) {
            Ok(len)
        } else {
            Err(Error::BufferTooSmall)
        }
    }
}

impl fmt::Debug for NotifySlotChangeRepr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("NotifySlotChangeRepr")
            .field("bitmap", &self.bitmap())
            .finish()
    }
}

/// `bHardwareErrorCode` (CCID Rev 1.1 §6.3.2).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum HardwareErrorCode {
    /// 0x01: overcurrent.
    Overcurrent,
    /// Any other value.
    Unknown(u8),
}

impl HardwareErrorCode {
    /// Decode `bHardwareErrorCode`. Total.
    pub const fn from_byte(byte: u8) -> Self {
        match byte {
            0x01 => HardwareErrorCode::Overcurrent,
            b => HardwareErrorCode::Unknown(b),
        }
    }

    /// Encode as `bHardwareErrorCode`.
    pub const fn to_byte(self) -> u8 {
        match self {
            HardwareErrorCode::Overcurrent => 0x01,
            HardwareErrorCode::Unknown(b) => b,
        }
    }
}

/// A zero-copy view of `RDR_to_PC_HardwareError` (CCID Rev 1.1 §6.3.2), 4 bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HardwareError<T: AsRef<[u8]>> {
    buffer: T,
}

impl<T: AsRef<[u8]>> HardwareError<T> {
    /// Length of the message.
    pub const LEN: usize = 4;

    /// Wrap a buffer without checking it.
    pub const fn new_unchecked(buffer: T) -> Self {
        HardwareError { buffer }
    }

    /// Wrap a buffer of at least 4 bytes.
    pub fn new_checked(buffer: T) -> Result<Self> {
        let v = Self::new_unchecked(buffer);
        v.check_len()?;
        Ok(v)
    }

    /// Check that the buffer holds the 4 bytes.
    pub fn check_len(&self) -> Result<()> {
        if self.buffer.as_ref().len() < Self::LEN {
            Err(Error::Truncated)
        } else {
            Ok(())
        }
    }

    /// The underlying buffer.
    pub fn into_inner(self) -> T {
        self.buffer
    }

    /// `bMessageType` (0x51 for this message).
    pub fn message_type(&self) -> MessageType {
        MessageType::from_byte(bytes::u8_at(self.buffer.as_ref(), field::MESSAGE_TYPE))
    }

    /// `bSlot`.
    pub fn slot(&self) -> u8 {
        bytes::u8_at(self.buffer.as_ref(), field::SLOT)
    }

    /// `bSeq`: the sequence number of the bulk-OUT command during which the error occurred.
    pub fn seq(&self) -> u8 {
        bytes::u8_at(self.buffer.as_ref(), field::SEQ)
    }

    /// `bHardwareErrorCode`.
    pub fn code(&self) -> HardwareErrorCode {
        HardwareErrorCode::from_byte(bytes::u8_at(
            self.buffer.as_ref(),
            field::HARDWARE_ERROR_CODE,
        ))
    }
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> HardwareError<T> {
    /// Set `bMessageType`.
    pub fn set_message_type(&mut self, message_type: MessageType) {
        bytes::set_u8(
            self.buffer.as_mut(),
            field::MESSAGE_TYPE,
            message_type.to_byte(),
        );
    }

    /// Set `bSlot`.
    pub fn set_slot(&mut self, slot: u8) {
        bytes::set_u8(self.buffer.as_mut(), field::SLOT, slot);
    }

    /// Set `bSeq`.
    pub fn set_seq(&mut self, seq: u8) {
        bytes::set_u8(self.buffer.as_mut(), field::SEQ, seq);
    }

    /// Set `bHardwareErrorCode`.
    pub fn set_code(&mut self, code: HardwareErrorCode) {
        bytes::set_u8(
            self.buffer.as_mut(),
            field::HARDWARE_ERROR_CODE,
            code.to_byte(),
        );
    }
}

/// `RDR_to_PC_HardwareError` (CCID Rev 1.1 §6.3.2).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct HardwareErrorRepr {
    /// `bSlot`.
    pub slot: u8,
    /// `bSeq` of the command during which the error occurred.
    pub seq: u8,
    /// `bHardwareErrorCode`.
    pub code: HardwareErrorCode,
}

impl HardwareErrorRepr {
    /// Parse a view: type 0x51 (CCID Rev 1.1 §6.3.2).
    pub fn parse<T: AsRef<[u8]> + ?Sized>(view: &HardwareError<&T>) -> Result<Self> {
        view.check_len()?;
        if view.message_type() != MessageType::HardwareError {
            return Err(Error::WrongMessageType);
        }
        Ok(HardwareErrorRepr {
            slot: view.slot(),
            seq: view.seq(),
            code: view.code(),
        })
    }

    /// Bytes `emit` writes: always 4.
    pub const fn buffer_len(&self) -> usize {
        4
    }

    /// Write the message into the start of `buf`; returns the length written.
    pub fn emit(&self, buf: &mut [u8]) -> Result<usize> {
        let out = buf.get_mut(..4).ok_or(Error::BufferTooSmall)?;
        let mut view = HardwareError::new_unchecked(out);
        view.set_message_type(MessageType::HardwareError);
        view.set_slot(self.slot);
        view.set_seq(self.seq);
        view.set_code(self.code);
        Ok(4)
    }
}

/// One interrupt-IN transfer (CCID Rev 1.1 §6.3).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum InterruptRepr<'a> {
    /// 0x50 `RDR_to_PC_NotifySlotChange` (§6.3.1).
    NotifySlotChange(NotifySlotChangeRepr),
    /// 0x51 `RDR_to_PC_HardwareError` (§6.3.2).
    HardwareError(HardwareErrorRepr),
    /// Any other type byte, kept with the rest of the transfer. Not canonical for 0x50/0x51.
    Unknown {
        /// `bMessageType`.
        message_type: u8,
        /// The bytes after the type byte.
        data: &'a [u8],
    },
}

impl<'a> InterruptRepr<'a> {
    /// Parse one whole interrupt transfer (CCID Rev 1.1 §6.3): a NotifySlotChange is the type
    /// byte and 1..=64 bytes of bitmap; a HardwareError is exactly 4 bytes.
    pub fn parse(transfer: &'a [u8]) -> Result<Self> {
        let (&message_type, rest) = transfer.split_first().ok_or(Error::Truncated)?;
        match MessageType::from_byte(message_type) {
            MessageType::NotifySlotChange => {
                NotifySlotChangeRepr::parse(&NotifySlotChange::new_checked(transfer)?)
                    .map(InterruptRepr::NotifySlotChange)
            }
            MessageType::HardwareError => {
                let view = HardwareError::new_checked(transfer)?;
                if transfer.len() != HardwareError::<&[u8]>::LEN {
                    return Err(Error::BadLength);
                }
                HardwareErrorRepr::parse(&view).map(InterruptRepr::HardwareError)
            }
            _ => Ok(InterruptRepr::Unknown {
                message_type,
                data: rest,
            }),
        }
    }

    /// `bMessageType`.
    pub fn message_type(&self) -> MessageType {
        match self {
            InterruptRepr::NotifySlotChange(_) => MessageType::NotifySlotChange,
            InterruptRepr::HardwareError(_) => MessageType::HardwareError,
            InterruptRepr::Unknown { message_type, .. } => MessageType::from_byte(*message_type),
        }
    }

    /// Bytes `emit` writes.
    pub fn buffer_len(&self) -> usize {
        match self {
            InterruptRepr::NotifySlotChange(r) => r.buffer_len(),
            InterruptRepr::HardwareError(r) => r.buffer_len(),
            InterruptRepr::Unknown { data, .. } => data.len().saturating_add(1),
        }
    }

    /// Write the transfer into the start of `buf`; returns the length written.
    pub fn emit(&self, buf: &mut [u8]) -> Result<usize> {
        match self {
            InterruptRepr::NotifySlotChange(r) => r.emit(buf),
            InterruptRepr::HardwareError(r) => r.emit(buf),
            InterruptRepr::Unknown { message_type, data } => {
                let len = self.buffer_len();
                let (first, rest) = buf
                    .get_mut(..len)
                    .and_then(|out| out.split_first_mut())
                    .ok_or(Error::BufferTooSmall)?;
                *first = *message_type;
                if bytes::put(rest, 0, data) {
                    Ok(len)
                } else {
                    Err(Error::BufferTooSmall)
                }
            }
        }
    }
}
