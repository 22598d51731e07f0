//! USB CCID Rev 1.1 (2005): the messages a smart-card reader and its host exchange over USB.
//!
//! - [`message`]: every bulk message (`PC_to_RDR_*` commands on bulk OUT, `RDR_to_PC_*`
//!   responses on bulk IN) as a zero-copy view [`Message`] over the 10-byte header and payload,
//!   and a validated [`MessageRepr`] (slot, sequence number and a typed [`Body`]) with
//!   `parse`, `buffer_len` and `emit`. Unknown message types round-trip as [`Body::Unknown`].
//! - [`command`] and [`response`]: the typed fields of each message.
//! - [`status`]: the slot status register `bStatus` and the slot error register `bError`.
//! - [`params`]: the T=0 and T=1 protocol data structures of `SetParameters` / `Parameters`.
//! - [`interrupt`]: the interrupt-IN messages `NotifySlotChange` and `HardwareError`.
//! - [`descriptor`]: the 54-byte CCID class descriptor, its `dwFeatures` bits, and the stock
//!   Nitrokey HSM 2 values.
//! - [`pairing`]: each request type knows its response type; one function checks a response
//!   against its request (`bSeq`, `bSlot`, message-type echo, time extension), and the device
//!   side builds the right error or time-extension response for any request.
//!
//! What it does not know: USB itself (endpoints, packets, zero-length packets, control
//! requests), timing, the slot's state machine, ISO 7816-3 (ATR, T=1 blocks) and APDUs. The
//! payload of `XfrBlock` and `DataBlock` is opaque bytes here; the `Secure` PIN structures are
//! opaque too.
//!
//! Parsing never panics and never allocates: every length is checked, and codes this crate does
//! not know are kept as `Unknown(..)` so that `emit(parse(x)) == x` for every message that
//! parses. `no_std`, no allocation, no `unsafe`.
#![no_std]
#![cfg_attr(
    not(test),
    deny(
        clippy::indexing_slicing,
        clippy::unwrap_used,
        clippy::expect_used,
        clippy::panic,
        clippy::unreachable
    )
)]
#![warn(missing_docs)]

pub mod command;
pub mod descriptor;
pub mod interrupt;
pub mod message;
pub mod pairing;
pub mod params;
pub mod response;
pub mod status;

mod bytes;

pub use command::{
    Abort, ClockCommand, Escape, GetParameters, GetSlotStatus, IccClock, IccPowerOff, IccPowerOn,
    Mechanical, MechanicalFunction, PinOperation, PowerSelect, ResetParameters, Secure,
    SetDataRateAndClockFrequency, SetParameters, T0Apdu, XfrBlock,
};
pub use descriptor::{
    ClassDescriptor, ClassDescriptorRepr, ExchangeLevel, Features, Protocols, VoltageSupport,
};
pub use interrupt::{
    HardwareError, HardwareErrorCode, HardwareErrorRepr, InterruptRepr, NotifySlotChange,
    NotifySlotChangeRepr, SlotChange,
};
pub use message::{Body, Direction, Message, MessageId, MessageRepr, MessageType, HEADER_LEN};
pub use pairing::{
    check_response, check_response_to, PairingError, Reply, Request, Response, SlotSnapshot,
};
pub use params::{ClockStop, ProtocolData, ProtocolNum, T0Parameters, T1Parameters};
pub use response::{
    ChainParameter, ClockStatus, DataBlock, DataRateAndClockFrequency, EscapeResponse, Parameters,
    SlotStatus,
};
pub use status::{CommandResult, CommandStatus, IccStatus, SlotError, Status};

use core::fmt;

/// Why a buffer is not a valid CCID message, descriptor or structure, or cannot hold one.
///
/// Every parser in this crate returns one of these instead of panicking.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
#[non_exhaustive]
pub enum Error {
    /// The buffer is shorter than the fixed part: the 10-byte bulk header (CCID Rev 1.1 §6),
    /// the 54-byte class descriptor (§5.1), or the minimum interrupt message (§6.3).
    Truncated,
    /// `dwLength` says more payload bytes follow than the buffer holds (CCID Rev 1.1 §6.1).
    LengthPastBuffer,
    /// `10 + dwLength` exceeds the configured maximum, e.g. the reader's
    /// `dwMaxCCIDMessageLength` (CCID Rev 1.1 §5.1).
    TooLong,
    /// `dwLength` (or an interrupt message's length) is not what this message type requires:
    /// e.g. a non-zero `dwLength` on `IccPowerOn`, or a T=1 structure that is not 7 bytes
    /// (CCID Rev 1.1 §6.1, §6.2, §6.3).
    BadLength,
    /// A descriptor's `bLength` is not 0x36 (CCID Rev 1.1 §5.1, Table 5.1-1).
    BadDescriptorLength,
    /// A descriptor's `bDescriptorType` is not 0x21 (CCID Rev 1.1 §5.1, Table 5.1-1).
    BadDescriptorType,
    /// The interrupt message type is not the one this view or repr expects (CCID Rev 1.1 §6.3).
    WrongMessageType,
    /// The output buffer given to `emit` is too small for `buffer_len()` bytes.
    BufferTooSmall,
    /// A payload is too long for `dwLength` (more than `u32::MAX` bytes), or a slot count or
    /// index is outside what the message can carry.
    OutOfRange,
}

impl Error {
    /// The CCID field index to report in `bError` for a command that failed to parse
    /// (CCID Rev 1.1 §6.2.6, Table 6.2-2: "index of not supported / incorrect message
    /// parameter"). Every length problem of a bulk message is the `dwLength` field, index 1.
    /// `None` for errors that are not about a received message (descriptor, emit).
    pub const fn offending_field(self) -> Option<u8> {
        match self {
            Error::Truncated | Error::LengthPastBuffer | Error::TooLong | Error::BadLength => {
                Some(message::field::LENGTH.start as u8)
            }
            Error::BadDescriptorLength
            | Error::BadDescriptorType
            | Error::WrongMessageType
            | Error::BufferTooSmall
            | Error::OutOfRange => None,
        }
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let text = match self {
            Error::Truncated => "buffer shorter than the fixed part of the message",
            Error::LengthPastBuffer => "dwLength runs past the end of the buffer",
            Error::TooLong => "message longer than the configured maximum",
            Error::BadLength => "length not valid for this message type",
            Error::BadDescriptorLength => "class descriptor bLength is not 0x36",
            Error::BadDescriptorType => "class descriptor bDescriptorType is not 0x21",
            Error::WrongMessageType => "unexpected interrupt message type",
            Error::BufferTooSmall => "output buffer too small",
            Error::OutOfRange => "value out of range for the wire format",
        };
        f.write_str(text)
    }
}

impl core::error::Error for Error {}

/// Result type of this crate's parsers and emitters.
pub type Result<T> = core::result::Result<T, Error>;
