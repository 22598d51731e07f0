//! Bulk messages: the 10-byte header and the payload (CCID Rev 1.1 §6.1, §6.2).
//!
//! ```text
//! offset  0            1..=4              5      6      7   8   9   10..10+dwLength
//!         bMessageType dwLength (LE u32)  bSlot  bSeq   message-specific  abData
//! ```
//!
//! [`Message`] is the zero-copy view; [`MessageRepr`] is the validated form: the slot, the
//! sequence number and a [`Body`] with the typed fields of each message type.

use core::fmt;

use crate::command::{
    Abort, Escape, GetParameters, GetSlotStatus, IccClock, IccPowerOff, IccPowerOn, Mechanical,
    ResetParameters, Secure, SetDataRateAndClockFrequency, SetParameters, T0Apdu, XfrBlock,
};
use crate::response::{
    ChainParameter, ClockStatus, DataBlock, DataRateAndClockFrequency, EscapeResponse, Parameters,
    SlotStatus,
};
use crate::status::{SlotError, Status};
use crate::{bytes, Error, Result};

/// Length of the bulk message header (CCID Rev 1.1 §6.1, §6.2).
pub const HEADER_LEN: usize = 10;

/// Byte ranges of the header (CCID Rev 1.1 §6.1, §6.2). The index of a field is what `bError`
/// reports when that field is wrong (§6.2.6).
pub(crate) mod field {
    use core::ops::Range;

    /// `bMessageType`.
    pub const MESSAGE_TYPE: usize = 0;
    /// `dwLength`, little-endian.
    pub const LENGTH: Range<usize> = 1..5;
    /// `bSlot`.
    pub const SLOT: usize = 5;
    /// `bSeq`.
    pub const SEQ: usize = 6;
    /// The three message-specific bytes.
    pub const SPECIFIC: Range<usize> = 7..10;
    /// Byte 7: `bPowerSelect`, `bBWI`, `bProtocolNum` (SetParameters), `bClockCommand`,
    /// `bmChanges`, `bFunction`; `bStatus` in responses.
    pub const PARAM_7: usize = 7;
    /// Byte 8: `bError` in responses.
    pub const PARAM_8: usize = 8;
    /// Byte 9: `bChainParameter`, `bClockStatus`, `bProtocolNum` (Parameters).
    pub const PARAM_9: usize = 9;
    /// `wLevelParameter` of XfrBlock and Secure, little-endian.
    pub const LEVEL_PARAMETER: Range<usize> = 8..10;
    /// Start of `abData`.
    pub const PAYLOAD: usize = 10;
}

/// Which pipe a message travels on (CCID Rev 1.1 §6).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum Direction {
    /// Bulk OUT, host to reader: `PC_to_RDR_*` (§6.1).
    BulkOut,
    /// Bulk IN, reader to host: `RDR_to_PC_*` responses (§6.2).
    BulkIn,
    /// Interrupt IN, reader to host: `NotifySlotChange`, `HardwareError` (§6.3).
    InterruptIn,
}

/// `bMessageType` (CCID Rev 1.1 Tables 6.1-1, 6.2-1, 6.3-1).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum MessageType {
    /// 0x62 `PC_to_RDR_IccPowerOn` (§6.1.1).
    IccPowerOn,
    /// 0x63 `PC_to_RDR_IccPowerOff` (§6.1.2).
    IccPowerOff,
    /// 0x65 `PC_to_RDR_GetSlotStatus` (§6.1.3).
    GetSlotStatus,
    /// 0x6F `PC_to_RDR_XfrBlock` (§6.1.4).
    XfrBlock,
    /// 0x6C `PC_to_RDR_GetParameters` (§6.1.5).
    GetParameters,
    /// 0x6D `PC_to_RDR_ResetParameters` (§6.1.6).
    ResetParameters,
    /// 0x61 `PC_to_RDR_SetParameters` (§6.1.7).
    SetParameters,
    /// 0x6B `PC_to_RDR_Escape` (§6.1.8).
    Escape,
    /// 0x6E `PC_to_RDR_IccClock` (§6.1.9).
    IccClock,
    /// 0x6A `PC_to_RDR_T0APDU` (§6.1.10).
    T0Apdu,
    /// 0x69 `PC_to_RDR_Secure` (§6.1.11).
    Secure,
    /// 0x71 `PC_to_RDR_Mechanical` (§6.1.12).
    Mechanical,
    /// 0x72 `PC_to_RDR_Abort` (§6.1.13).
    Abort,
    /// 0x73 `PC_to_RDR_SetDataRateAndClockFrequency` (§6.1.14).
    SetDataRateAndClockFrequency,
    /// 0x80 `RDR_to_PC_DataBlock` (§6.2.1).
    DataBlock,
    /// 0x81 `RDR_to_PC_SlotStatus` (§6.2.2).
    SlotStatus,
    /// 0x82 `RDR_to_PC_Parameters` (§6.2.3).
    Parameters,
    /// 0x83 `RDR_to_PC_Escape` (§6.2.4).
    EscapeResponse,
    /// 0x84 `RDR_to_PC_DataRateAndClockFrequency` (§6.2.5).
    DataRateAndClockFrequency,
    /// 0x50 `RDR_to_PC_NotifySlotChange`, interrupt IN (§6.3.1).
    NotifySlotChange,
    /// 0x51 `RDR_to_PC_HardwareError`, interrupt IN (§6.3.2).
    HardwareError,
    /// Any other value.
    Unknown(u8),
}

impl MessageType {
    /// Decode `bMessageType`. Total.
    pub const fn from_byte(byte: u8) -> Self {
        match byte {
            0x62 => MessageType::IccPowerOn,
            0x63 => MessageType::IccPowerOff,
            0x65 => MessageType::GetSlotStatus,
            0x6F => MessageType::XfrBlock,
            0x6C => MessageType::GetParameters,
            0x6D => MessageType::ResetParameters,
            0x61 => MessageType::SetParameters,
            0x6B => MessageType::Escape,
            0x6E => MessageType::IccClock,
            0x6A => MessageType::T0Apdu,
            0x69 => MessageType::Secure,
            0x71 => MessageType::Mechanical,
            0x72 => MessageType::Abort,
            0x73 => MessageType::SetDataRateAndClockFrequency,
            0x80 => MessageType::DataBlock,
            0x81 => MessageType::SlotStatus,
            0x82 => MessageType::Parameters,
            0x83 => MessageType::EscapeResponse,
            0x84 => MessageType::DataRateAndClockFrequency,
            0x50 => MessageType::NotifySlotChange,
            0x51 => MessageType::HardwareError,
            b => MessageType::Unknown(b),
        }
    }

    /// Encode as `bMessageType`.
    pub const fn to_byte(self) -> u8 {
        match self {
            MessageType::IccPowerOn => 0x62,
            MessageType::IccPowerOff => 0x63,
            MessageType::GetSlotStatus => 0x65,
            MessageType::XfrBlock => 0x6F,
            MessageType::GetParameters => 0x6C,
            MessageType::ResetParameters => 0x6D,
            MessageType::SetParameters => 0x61,
            MessageType::Escape => 0x6B,
            MessageType::IccClock => 0x6E,
            MessageType::T0Apdu => 0x6A,
            MessageType::Secure => 0x69,
            MessageType::Mechanical => 0x71,
            MessageType::Abort => 0x72,
            MessageType::SetDataRateAndClockFrequency => 0x73,
            MessageType::DataBlock => 0x80,
            MessageType::SlotStatus => 0x81,
            MessageType::Parameters => 0x82,
            MessageType::EscapeResponse => 0x83,
            MessageType::DataRateAndClockFrequency => 0x84,
            MessageType::NotifySlotChange => 0x50,
            MessageType::HardwareError => 0x51,
            MessageType::Unknown(b) => b,
        }
    }

    /// The pipe this type travels on; `None` for unknown types.
    pub const fn direction(self) -> Option<Direction> {
        match self {
            MessageType::IccPowerOn
            | MessageType::IccPowerOff
            | MessageType::GetSlotStatus
            | MessageType::XfrBlock
            | MessageType::GetParameters
            | MessageType::ResetParameters
            | MessageType::SetParameters
            | MessageType::Escape
            | MessageType::IccClock
            | MessageType::T0Apdu
            | MessageType::Secure
            | MessageType::Mechanical
            | MessageType::Abort
            | MessageType::SetDataRateAndClockFrequency => Some(Direction::BulkOut),
            MessageType::DataBlock
            | MessageType::SlotStatus
            | MessageType::Parameters
            | MessageType::EscapeResponse
            | MessageType::DataRateAndClockFrequency => Some(Direction::BulkIn),
            MessageType::NotifySlotChange | MessageType::HardwareError => {
                Some(Direction::InterruptIn)
            }
            MessageType::Unknown(_) => None,
        }
    }

    /// A `PC_to_RDR` command type (bulk OUT).
    pub const fn is_command(self) -> bool {
        matches!(self.direction(), Some(Direction::BulkOut))
    }

    /// The `RDR_to_PC` type that answers a message of this type (CCID Rev 1.1 §6.1.1-§6.1.14,
    /// each command's "response" line). Anything that is not a `PC_to_RDR` command (an unknown
    /// type, or a bulk-IN or interrupt type sent on bulk OUT) is answered with
    /// `RDR_to_PC_SlotStatus` carrying `bError` = CMD_NOT_SUPPORTED (§6.2.6, Table 6.2-2), as
    /// readers do when they cannot tell which response the host expects.
    pub const fn response_type(self) -> MessageType {
        match self {
            MessageType::IccPowerOn | MessageType::XfrBlock | MessageType::Secure => {
                MessageType::DataBlock
            }
            MessageType::GetParameters
            | MessageType::ResetParameters
            | MessageType::SetParameters => MessageType::Parameters,
            MessageType::Escape => MessageType::EscapeResponse,
            MessageType::SetDataRateAndClockFrequency => MessageType::DataRateAndClockFrequency,
            MessageType::IccPowerOff
            | MessageType::GetSlotStatus
            | MessageType::IccClock
            | MessageType::T0Apdu
            | MessageType::Mechanical
            | MessageType::Abort
            | MessageType::DataBlock
            | MessageType::SlotStatus
            | MessageType::Parameters
            | MessageType::EscapeResponse
            | MessageType::DataRateAndClockFrequency
            | MessageType::NotifySlotChange
            | MessageType::HardwareError
            | MessageType::Unknown(_) => MessageType::SlotStatus,
        }
    }
}

impl From<u8> for MessageType {
    fn from(byte: u8) -> Self {
        MessageType::from_byte(byte)
    }
}

impl From<MessageType> for u8 {
    fn from(t: MessageType) -> Self {
        t.to_byte()
    }
}

impl fmt::Display for MessageType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let name = match self {
            MessageType::IccPowerOn => "PC_to_RDR_IccPowerOn",
            MessageType::IccPowerOff => "PC_to_RDR_IccPowerOff",
            MessageType::GetSlotStatus => "PC_to_RDR_GetSlotStatus",
            MessageType::XfrBlock => "PC_to_RDR_XfrBlock",
            MessageType::GetParameters => "PC_to_RDR_GetParameters",
            MessageType::ResetParameters => "PC_to_RDR_ResetParameters",
            MessageType::SetParameters => "PC_to_RDR_SetParameters",
            MessageType::Escape => "PC_to_RDR_Escape",
            MessageType::IccClock => "PC_to_RDR_IccClock",
            MessageType::T0Apdu => "PC_to_RDR_T0APDU",
            MessageType::Secure => "PC_to_RDR_Secure",
            MessageType::Mechanical => "PC_to_RDR_Mechanical",
            MessageType::Abort => "PC_to_RDR_Abort",
            MessageType::SetDataRateAndClockFrequency => "PC_to_RDR_SetDataRateAndClockFrequency",
            MessageType::DataBlock => "RDR_to_PC_DataBlock",
            MessageType::SlotStatus => "RDR_to_PC_SlotStatus",
            MessageType::Parameters => "RDR_to_PC_Parameters",
            MessageType::EscapeResponse => "RDR_to_PC_Escape",
            MessageType::DataRateAndClockFrequency => "RDR_to_PC_DataRateAndClockFrequency",
            MessageType::NotifySlotChange => "RDR_to_PC_NotifySlotChange",
            MessageType::HardwareError => "RDR_to_PC_HardwareError",
            MessageType::Unknown(b) => return write!(f, "unknown message type {b:#04x}"),
        };
        f.write_str(name)
    }
}

/// What pairs a response with its request: the message type, `bSlot` and `bSeq`
/// (CCID Rev 1.1 §6.1: the response carries the request's `bSlot` and `bSeq`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct MessageId {
    /// `bMessageType`.
    pub message_type: MessageType,
    /// `bSlot`.
    pub slot: u8,
    /// `bSeq`.
    pub seq: u8,
}

impl MessageId {
    /// Read the identity from the first [`HEADER_LEN`] bytes of `buf`, whatever `dwLength`
    /// says: enough for a reader to answer a message it cannot otherwise accept.
    pub fn read(buf: &[u8]) -> Result<Self> {
        if buf.len() < HEADER_LEN {
            return Err(Error::Truncated);
        }
        Ok(MessageId {
            message_type: MessageType::from_byte(bytes::u8_at(buf, field::MESSAGE_TYPE)),
            slot: bytes::u8_at(buf, field::SLOT),
            seq: bytes::u8_at(buf, field::SEQ),
        })
    }
}

/// A zero-copy view of a bulk message (CCID Rev 1.1 §6.1, §6.2).
///
/// After [`Message::new_checked`] every accessor reads inside the buffer. Through
/// [`Message::new_unchecked`] a short buffer is harmless: reads of missing bytes give 0 and
/// writes past the end are dropped.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Message<T: AsRef<[u8]>> {
    buffer: T,
}

impl<T: AsRef<[u8]>> Message<T> {
    /// Wrap a buffer without checking it.
    pub const fn new_unchecked(buffer: T) -> Self {
        Message { buffer }
    }

    /// Wrap a buffer that holds the header and the `dwLength` payload bytes it announces.
    pub fn new_checked(buffer: T) -> Result<Self> {
        let message = Self::new_unchecked(buffer);
        message.check_len()?;
        Ok(message)
    }

    /// As [`Message::new_checked`], and `10 + dwLength` must not exceed `max_message_length`
    /// (the reader's `dwMaxCCIDMessageLength`, CCID Rev 1.1 §5.1). The maximum is checked
    /// before the buffer length, so a receiver can reject an oversized message from its
    /// header alone.
    pub fn new_checked_max(buffer: T, max_message_length: u32) -> Result<Self> {
        let message = Self::new_unchecked(buffer);
        if message.buffer.as_ref().len() < HEADER_LEN {
            return Err(Error::Truncated);
        }
        message.check_max_len(max_message_length)?;
        message.check_len()?;
        Ok(message)
    }

    /// Check that the buffer holds the header and the `dwLength` payload bytes. Bytes past
    /// `10 + dwLength` are allowed and ignored.
    pub fn check_len(&self) -> Result<()> {
        let len = self.buffer.as_ref().len();
        if len < HEADER_LEN {
            return Err(Error::Truncated);
        }
        match self.total_len() {
            Some(total) if total <= len => Ok(()),
            _ => Err(Error::LengthPastBuffer),
        }
    }

    /// Check that `10 + dwLength` does not exceed `max_message_length`
    /// (`dwMaxCCIDMessageLength`, CCID Rev 1.1 §5.1).
    pub fn check_max_len(&self, max_message_length: u32) -> Result<()> {
        let total = u64::from(self.length()) + HEADER_LEN as u64;
        if total > u64::from(max_message_length) {
            Err(Error::TooLong)
        } else {
            Ok(())
        }
    }

    /// The underlying buffer.
    pub fn into_inner(self) -> T {
        self.buffer
    }

    /// `bMessageType`.
    pub fn message_type(&self) -> MessageType {
        MessageType::from_byte(bytes::u8_at(self.buffer.as_ref(), field::MESSAGE_TYPE))
    }

    /// `dwLength`: the number of payload bytes after the header.
    pub fn length(&self) -> u32 {
        bytes::le_u32(self.buffer.as_ref(), field::LENGTH)
    }

    /// `10 + dwLength`, the whole message; `None` if it does not fit a `usize`. Valid on a
    /// bare header, so a receiver can tell how many bytes to collect.
    pub fn total_len(&self) -> Option<usize> {
        usize::try_from(self.length())
            .ok()
            .and_then(|l| l.checked_add(HEADER_LEN))
    }

    /// `bSlot`.
    pub fn slot(&self) -> u8 {
        bytes::u8_at(self.buffer.as_ref(), field::SLOT)
    }

    /// `bSeq`.
    pub fn seq(&self) -> u8 {
        bytes::u8_at(self.buffer.as_ref(), field::SEQ)
    }

    /// Type, slot and sequence number.
    pub fn id(&self) -> MessageId {
        MessageId {
            message_type: self.message_type(),
            slot: self.slot(),
            seq: self.seq(),
        }
    }

    /// The three message-specific bytes (7..=9).
    pub fn specific(&self) -> [u8; 3] {
        let b = self.buffer.as_ref();
        [
            bytes::u8_at(b, field::PARAM_7),
            bytes::u8_at(b, field::PARAM_8),
            bytes::u8_at(b, field::PARAM_9),
        ]
    }

    /// `bBWI` of XfrBlock and Secure (byte 7).
    pub fn bwi(&self) -> u8 {
        bytes::u8_at(self.buffer.as_ref(), field::PARAM_7)
    }

    /// `wLevelParameter` of XfrBlock and Secure (bytes 8..=9).
    pub fn level_parameter(&self) -> u16 {
        bytes::le_u16(self.buffer.as_ref(), field::LEVEL_PARAMETER)
    }

    /// `bStatus` of a response (byte 7).
    pub fn status(&self) -> Status {
        Status::from_byte(bytes::u8_at(self.buffer.as_ref(), field::PARAM_7))
    }

    /// `bError` of a response (byte 8).
    pub fn error(&self) -> SlotError {
        SlotError::from_byte(bytes::u8_at(self.buffer.as_ref(), field::PARAM_8))
    }

    /// `bChainParameter` of DataBlock (byte 9).
    pub fn chain_parameter(&self) -> ChainParameter {
        ChainParameter::from_byte(bytes::u8_at(self.buffer.as_ref(), field::PARAM_9))
    }

    /// `bClockStatus` of SlotStatus (byte 9).
    pub fn clock_status(&self) -> ClockStatus {
        ClockStatus::from_byte(bytes::u8_at(self.buffer.as_ref(), field::PARAM_9))
    }

    /// `bProtocolNum`: byte 7 of SetParameters, byte 9 of Parameters; `None` for other types.
    pub fn protocol_num(&self) -> Option<crate::ProtocolNum> {
        let index = match self.message_type() {
            MessageType::SetParameters => field::PARAM_7,
            MessageType::Parameters => field::PARAM_9,
            _ => return None,
        };
        Some(crate::ProtocolNum::from_byte(bytes::u8_at(
            self.buffer.as_ref(),
            index,
        )))
    }
}

impl<'a, T: AsRef<[u8]> + ?Sized> Message<&'a T> {
    /// `abData`: the `dwLength` bytes after the header (fewer if the buffer ends first, which
    /// only an unchecked view allows).
    pub fn payload(&self) -> &'a [u8] {
        let b = self.buffer.as_ref();
        let end = self.total_len().unwrap_or(usize::MAX).min(b.len());
        b.get(field::PAYLOAD..end).unwrap_or(&[])
    }
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> Message<T> {
    /// Set `bMessageType`.
    pub fn set_message_type(&mut self, message_type: MessageType) {
        bytes::set_u8(
            self.buffer.as_mut(),
            field::MESSAGE_TYPE,
            message_type.to_byte(),
        );
    }

    /// Set `dwLength`.
    pub fn set_length(&mut self, length: u32) {
        bytes::set_le_u32(self.buffer.as_mut(), field::LENGTH, length);
    }

    /// Set `bSlot`.
    pub fn set_slot(&mut self, slot: u8) {
        bytes::set_u8(self.buffer.as_mut(), field::SLOT, slot);
    }

    /// Set `bSeq`.
    pub fn set_seq(&mut self, seq: u8) {
        bytes::set_u8(self.buffer.as_mut(), field::SEQ, seq);
    }

    /// Set the three message-specific bytes (7..=9).
    pub fn set_specific(&mut self, specific: [u8; 3]) {
        bytes::put(self.buffer.as_mut(), field::SPECIFIC.start, &specific);
    }

    /// Set `bStatus` (byte 7).
    pub fn set_status(&mut self, status: Status) {
        bytes::set_u8(self.buffer.as_mut(), field::PARAM_7, status.to_byte());
    }

    /// Set `bError` (byte 8).
    pub fn set_error(&mut self, error: SlotError) {
        bytes::set_u8(self.buffer.as_mut(), field::PARAM_8, error.to_byte());
    }

    /// Set `wLevelParameter` (bytes 8..=9).
    pub fn set_level_parameter(&mut self, level: u16) {
        bytes::set_le_u16(self.buffer.as_mut(), field::LEVEL_PARAMETER, level);
    }

    /// The payload as `dwLength` says, mutable (fewer bytes if the buffer ends first).
    pub fn payload_mut(&mut self) -> &mut [u8] {
        let end = self.total_len().unwrap_or(usize::MAX);
        let b = self.buffer.as_mut();
        let end = end.min(b.len());
        b.get_mut(field::PAYLOAD..end).unwrap_or(&mut [])
    }
}

/// How one message type reads and writes its specific bytes and payload.
pub(crate) trait Wire<'a>: Sized {
    /// The message type this struct is.
    const TYPE: MessageType;
    /// Decode from the three specific bytes and the payload (exactly `dwLength` bytes).
    fn decode(specific: [u8; 3], payload: &'a [u8]) -> Result<Self>;
    /// The three specific bytes.
    fn specific(&self) -> [u8; 3];
    /// The payload, for messages whose payload is borrowed bytes.
    fn payload(&self) -> &[u8] {
        &[]
    }
    /// Length of the payload.
    fn payload_len(&self) -> usize {
        self.payload().len()
    }
    /// Write the payload into `out` (at least `payload_len()` bytes); `false` if it does not
    /// fit.
    fn write_payload(&self, out: &mut [u8]) -> bool {
        bytes::put(out, 0, self.payload())
    }
}

/// The typed content of a bulk message: one variant per message type
/// (CCID Rev 1.1 §6.1, §6.2), and [`Body::Unknown`] for the rest.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum Body<'a> {
    /// `PC_to_RDR_IccPowerOn` (§6.1.1).
    IccPowerOn(IccPowerOn),
    /// `PC_to_RDR_IccPowerOff` (§6.1.2).
    IccPowerOff(IccPowerOff),
    /// `PC_to_RDR_GetSlotStatus` (§6.1.3).
    GetSlotStatus(GetSlotStatus),
    /// `PC_to_RDR_XfrBlock` (§6.1.4).
    XfrBlock(XfrBlock<'a>),
    /// `PC_to_RDR_GetParameters` (§6.1.5).
    GetParameters(GetParameters),
    /// `PC_to_RDR_ResetParameters` (§6.1.6).
    ResetParameters(ResetParameters),
    /// `PC_to_RDR_SetParameters` (§6.1.7).
    SetParameters(SetParameters<'a>),
    /// `PC_to_RDR_Escape` (§6.1.8).
    Escape(Escape<'a>),
    /// `PC_to_RDR_IccClock` (§6.1.9).
    IccClock(IccClock),
    /// `PC_to_RDR_T0APDU` (§6.1.10).
    T0Apdu(T0Apdu),
    /// `PC_to_RDR_Secure` (§6.1.11).
    Secure(Secure<'a>),
    /// `PC_to_RDR_Mechanical` (§6.1.12).
    Mechanical(Mechanical),
    /// `PC_to_RDR_Abort` (§6.1.13).
    Abort(Abort),
    /// `PC_to_RDR_SetDataRateAndClockFrequency` (§6.1.14).
    SetDataRateAndClockFrequency(SetDataRateAndClockFrequency),
    /// `RDR_to_PC_DataBlock` (§6.2.1).
    DataBlock(DataBlock<'a>),
    /// `RDR_to_PC_SlotStatus` (§6.2.2).
    SlotStatus(SlotStatus),
    /// `RDR_to_PC_Parameters` (§6.2.3).
    Parameters(Parameters<'a>),
    /// `RDR_to_PC_Escape` (§6.2.4).
    EscapeResponse(EscapeResponse<'a>),
    /// `RDR_to_PC_DataRateAndClockFrequency` (§6.2.5).
    DataRateAndClockFrequency(DataRateAndClockFrequency),
    /// A message type that is not a bulk message type: unknown, or an interrupt type (0x50,
    /// 0x51) seen on a bulk pipe. Everything is kept so it round-trips. A known bulk type here
    /// is not canonical: it parses back as its own variant.
    Unknown {
        /// `bMessageType`.
        message_type: u8,
        /// The three message-specific bytes.
        specific: [u8; 3],
        /// `abData`.
        data: &'a [u8],
    },
}

/// Call `$f` with the `Wire` struct of every known variant; `$unknown` handles `Unknown`.
macro_rules! dispatch {
    ($body:expr, $w:ident => $f:expr, Unknown { $mt:ident, $sp:ident, $d:ident } => $unknown:expr) => {
        match $body {
            Body::IccPowerOn($w) => $f,
            Body::IccPowerOff($w) => $f,
            Body::GetSlotStatus($w) => $f,
            Body::XfrBlock($w) => $f,
            Body::GetParameters($w) => $f,
            Body::ResetParameters($w) => $f,
            Body::SetParameters($w) => $f,
            Body::Escape($w) => $f,
            Body::IccClock($w) => $f,
            Body::T0Apdu($w) => $f,
            Body::Secure($w) => $f,
            Body::Mechanical($w) => $f,
            Body::Abort($w) => $f,
            Body::SetDataRateAndClockFrequency($w) => $f,
            Body::DataBlock($w) => $f,
            Body::SlotStatus($w) => $f,
            Body::Parameters($w) => $f,
            Body::EscapeResponse($w) => $f,
            Body::DataRateAndClockFrequency($w) => $f,
            Body::Unknown {
                message_type: $mt,
                specific: $sp,
                data: $d,
            } => $unknown,
        }
    };
}

/// Decode one `Wire` type into its `Body` variant.
fn decode_as<'a, W: Wire<'a>>(
    specific: [u8; 3],
    payload: &'a [u8],
    variant: fn(W) -> Body<'a>,
) -> Result<Body<'a>> {
    W::decode(specific, payload).map(variant)
}

impl<'a> Body<'a> {
    /// Decode the body of a message of type `message_type` from its specific bytes and
    /// payload (CCID Rev 1.1 §6.1.1-§6.1.14, §6.2.1-§6.2.5).
    pub fn decode(message_type: u8, specific: [u8; 3], payload: &'a [u8]) -> Result<Self> {
        let (s, p) = (specific, payload);
        match MessageType::from_byte(message_type) {
            MessageType::IccPowerOn => decode_as(s, p, Body::IccPowerOn),
            MessageType::IccPowerOff => decode_as(s, p, Body::IccPowerOff),
            MessageType::GetSlotStatus => decode_as(s, p, Body::GetSlotStatus),
            MessageType::XfrBlock => decode_as(s, p, Body::XfrBlock),
            MessageType::GetParameters => decode_as(s, p, Body::GetParameters),
            MessageType::ResetParameters => decode_as(s, p, Body::ResetParameters),
            MessageType::SetParameters => decode_as(s, p, Body::SetParameters),
            MessageType::Escape => decode_as(s, p, Body::Escape),
            MessageType::IccClock => decode_as(s, p, Body::IccClock),
            MessageType::T0Apdu => decode_as(s, p, Body::T0Apdu),
            MessageType::Secure => decode_as(s, p, Body::Secure),
            MessageType::Mechanical => decode_as(s, p, Body::Mechanical),
            MessageType::Abort => decode_as(s, p, Body::Abort),
            MessageType::SetDataRateAndClockFrequency => {
                decode_as(s, p, Body::SetDataRateAndClockFrequency)
            }
            MessageType::DataBlock => decode_as(s, p, Body::DataBlock),
            MessageType::SlotStatus => decode_as(s, p, Body::SlotStatus),
            MessageType::Parameters => decode_as(s, p, Body::Parameters),
            MessageType::EscapeResponse => decode_as(s, p, Body::EscapeResponse),
            MessageType::DataRateAndClockFrequency => {
                decode_as(s, p, Body::DataRateAndClockFrequency)
            }
            MessageType::NotifySlotChange
            | MessageType::HardwareError
            | MessageType::Unknown(_) => Ok(Body::Unknown {
                message_type,
                specific,
                data: payload,
            }),
        }
    }

    /// `bMessageType` of this body.
    pub fn message_type(&self) -> MessageType {
        fn type_of<'a, W: Wire<'a>>(_: &W) -> MessageType {
            W::TYPE
        }
        dispatch!(self, w => type_of(w), Unknown { message_type, _s, _d } => MessageType::from_byte(*message_type))
    }

    /// The three message-specific bytes (7..=9).
    pub fn specific(&self) -> [u8; 3] {
        dispatch!(self, w => w.specific(), Unknown { _t, specific, _d } => *specific)
    }

    /// Length of the payload (`dwLength`).
    pub fn payload_len(&self) -> usize {
        dispatch!(self, w => w.payload_len(), Unknown { _t, _s, data } => data.len())
    }

    /// Write the payload into the start of `out`; `false` if it does not fit.
    fn write_payload(&self, out: &mut [u8]) -> bool {
        dispatch!(self, w => w.write_payload(out), Unknown { _t, _s, data } => bytes::put(out, 0, data))
    }
}

/// `From` each message struct into its `Body` variant.
macro_rules! body_from {
    ($($variant:ident($ty:ty)),* $(,)?) => {
        $(impl<'a> From<$ty> for Body<'a> {
            fn from(m: $ty) -> Self {
                Body::$variant(m)
            }
        })*
    };
}

body_from!(
    IccPowerOn(IccPowerOn),
    IccPowerOff(IccPowerOff),
    GetSlotStatus(GetSlotStatus),
    XfrBlock(XfrBlock<'a>),
    GetParameters(GetParameters),
    ResetParameters(ResetParameters),
    SetParameters(SetParameters<'a>),
    Escape(Escape<'a>),
    IccClock(IccClock),
    T0Apdu(T0Apdu),
    Secure(Secure<'a>),
    Mechanical(Mechanical),
    Abort(Abort),
    SetDataRateAndClockFrequency(SetDataRateAndClockFrequency),
    DataBlock(DataBlock<'a>),
    SlotStatus(SlotStatus),
    Parameters(Parameters<'a>),
    EscapeResponse(EscapeResponse<'a>),
    DataRateAndClockFrequency(DataRateAndClockFrequency),
);

/// A validated bulk message: `bSlot`, `bSeq` and the typed body (CCID Rev 1.1 §6.1, §6.2).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct MessageRepr<'a> {
    /// `bSlot`.
    pub slot: u8,
    /// `bSeq`.
    pub seq: u8,
    /// Message type, specific bytes and payload.
    pub body: Body<'a>,
}

impl<'a> MessageRepr<'a> {
    /// A message for `slot` with sequence number `seq`.
    pub fn new(slot: u8, seq: u8, body: impl Into<Body<'a>>) -> Self {
        MessageRepr {
            slot,
            seq,
            body: body.into(),
        }
    }

    /// Parse a message view (CCID Rev 1.1 §6.1, §6.2). The view's length is checked again;
    /// bytes past `10 + dwLength` are ignored.
    pub fn parse<T: AsRef<[u8]> + ?Sized>(message: &Message<&'a T>) -> Result<Self> {
        message.check_len()?;
        let body = Body::decode(
            message.message_type().to_byte(),
            message.specific(),
            message.payload(),
        )?;
        Ok(MessageRepr {
            slot: message.slot(),
            seq: message.seq(),
            body,
        })
    }

    /// Parse the message at the start of `bytes`.
    pub fn parse_bytes(bytes: &'a [u8]) -> Result<Self> {
        Self::parse(&Message::new_checked(bytes)?)
    }

    /// `bMessageType`.
    pub fn message_type(&self) -> MessageType {
        self.body.message_type()
    }

    /// Type, slot and sequence number.
    pub fn id(&self) -> MessageId {
        MessageId {
            message_type: self.message_type(),
            slot: self.slot,
            seq: self.seq,
        }
    }

    /// Bytes `emit` writes: the header and the payload.
    pub fn buffer_len(&self) -> usize {
        HEADER_LEN.saturating_add(self.body.payload_len())
    }

    /// Write the message into the start of `buf`; returns the length written. Fails with
    /// [`Error::BufferTooSmall`] if `buf` is shorter than `buffer_len()`, and with
    /// [`Error::OutOfRange`] if the payload is longer than `dwLength` can say.
    pub fn emit(&self, buf: &mut [u8]) -> Result<usize> {
        let payload_len = self.body.payload_len();
        let length = u32::try_from(payload_len).map_err(|_| Error::OutOfRange)?;
        let total = HEADER_LEN
            .checked_add(payload_len)
            .ok_or(Error::OutOfRange)?;
        let out = buf.get_mut(..total).ok_or(Error::BufferTooSmall)?;
        let (header, payload) = out.split_at_mut(HEADER_LEN);
        let mut message = Message::new_unchecked(header);
        message.set_message_type(self.message_type());
        message.set_length(length);
        message.set_slot(self.slot);
        message.set_seq(self.seq);
        message.set_specific(self.body.specific());
        if self.body.write_payload(payload) {
            Ok(total)
        } else {
            Err(Error::BufferTooSmall)
        }
    }
}
