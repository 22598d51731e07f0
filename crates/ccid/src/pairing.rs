//! Requests and their responses (CCID Rev 1.1 §6.1, §6.2), in the style of typed command
//! pairs: every `PC_to_RDR` request type names its `RDR_to_PC` response type, and one function
//! checks a response against the request it answers.
//!
//! Host side: [`check_response`] (typed) and [`check_response_to`] (by [`MessageId`]) check
//! `bSeq`, `bSlot` and the message-type echo, report a time extension as
//! [`Reply::TimeExtension`] so the host keeps waiting, and only then decode the body.
//!
//! Device side: [`SlotSnapshot`] builds the error or time-extension response to any request,
//! with the right response type and the request's slot and sequence number.

use core::fmt;

use crate::command::{
    Abort, Escape, GetParameters, GetSlotStatus, IccClock, IccPowerOff, IccPowerOn, Mechanical,
    ResetParameters, Secure, SetDataRateAndClockFrequency, SetParameters, T0Apdu, XfrBlock,
};
use crate::message::{Body, Message, MessageId, MessageRepr, MessageType};
use crate::params::{ProtocolData, ProtocolNum};
use crate::response::{
    ChainParameter, ClockStatus, DataBlock, DataRateAndClockFrequency, EscapeResponse, Parameters,
    SlotStatus,
};
use crate::status::{CommandStatus, IccStatus, SlotError, Status};
use crate::Error;

/// A `PC_to_RDR` message type and the `RDR_to_PC` type that answers it
/// (CCID Rev 1.1 §6.1.1-§6.1.14).
pub trait Request {
    /// The request's `bMessageType`.
    const MESSAGE_TYPE: MessageType;
    /// The response, borrowing the response bytes for `'r`.
    type Response<'r>: Response<'r>;
}

/// A `RDR_to_PC` bulk-IN message type (CCID Rev 1.1 §6.2).
pub trait Response<'r>: Sized {
    /// The response's `bMessageType`.
    const MESSAGE_TYPE: MessageType;
    /// The response, if `body` is this type.
    fn from_body(body: Body<'r>) -> Option<Self>;
    /// `bStatus`.
    fn status(&self) -> Status;
    /// `bError`.
    fn error(&self) -> SlotError;
}

macro_rules! response {
    ($ty:ty, $variant:ident) => {
        impl<'r> Response<'r> for $ty {
            const MESSAGE_TYPE: MessageType = MessageType::$variant;
            fn from_body(body: Body<'r>) -> Option<Self> {
                match body {
                    Body::$variant(r) => Some(r),
                    _ => None,
                }
            }
            fn status(&self) -> Status {
                self.status
            }
            fn error(&self) -> SlotError {
                self.error
            }
        }
    };
}

response!(DataBlock<'r>, DataBlock);
response!(SlotStatus, SlotStatus);
response!(Parameters<'r>, Parameters);
response!(EscapeResponse<'r>, EscapeResponse);
response!(DataRateAndClockFrequency, DataRateAndClockFrequency);

macro_rules! request {
    ($ty:ty, $variant:ident => $response:ident $(<$r:lifetime>)?) => {
        impl Request for $ty {
            const MESSAGE_TYPE: MessageType = MessageType::$variant;
            type Response<'r> = $response $(<$r>)?;
        }
    };
}

request!(IccPowerOn, IccPowerOn => DataBlock<'r>);
request!(IccPowerOff, IccPowerOff => SlotStatus);
request!(GetSlotStatus, GetSlotStatus => SlotStatus);
request!(XfrBlock<'_>, XfrBlock => DataBlock<'r>);
request!(GetParameters, GetParameters => Parameters<'r>);
request!(ResetParameters, ResetParameters => Parameters<'r>);
request!(SetParameters<'_>, SetParameters => Parameters<'r>);
request!(Escape<'_>, Escape => EscapeResponse<'r>);
request!(IccClock, IccClock => SlotStatus);
request!(T0Apdu, T0Apdu => SlotStatus);
request!(Secure<'_>, Secure => DataBlock<'r>);
request!(Mechanical, Mechanical => SlotStatus);
request!(Abort, Abort => SlotStatus);
request!(SetDataRateAndClockFrequency, SetDataRateAndClockFrequency => DataRateAndClockFrequency);

/// What a well-formed, matching response means for the host.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum Reply<R> {
    /// The final response (which may still report a failed command in its `bStatus`).
    Response(R),
    /// `bmCommandStatus` = 2 (CCID Rev 1.1 §6.2.6): the reader needs more time. Keep waiting
    /// `multiplier` block waiting times and read the next response for the same request.
    TimeExtension {
        /// The BWT multiplier from `bError`.
        multiplier: u8,
    },
}

/// Why a received message is not the response to the request sent.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum PairingError {
    /// The bytes are not a valid bulk-IN message (header, `dwLength` or body).
    Malformed(Error),
    /// `bSeq` is not the request's (a stale or out-of-order response, CCID Rev 1.1 §6.1).
    WrongSeq {
        /// The request's `bSeq`.
        expected: u8,
        /// The response's `bSeq`.
        got: u8,
    },
    /// `bSlot` is not the request's (CCID Rev 1.1 §6.1).
    WrongSlot {
        /// The request's `bSlot`.
        expected: u8,
        /// The response's `bSlot`.
        got: u8,
    },
    /// The response type is not the one that answers this request (CCID Rev 1.1 §6.2).
    UnexpectedType {
        /// The type that answers the request.
        expected: MessageType,
        /// The type received.
        got: MessageType,
    },
    /// The response repeats the request's own `PC_to_RDR` type: what the stock Nitrokey
    /// firmware sends for a command it does not support (T0APDU, Secure, Mechanical,
    /// SetDataRateAndClockFrequency; hardware.md §D, `CmdNotSupported`). The status and error
    /// bytes (7 and 8) are reported as they came.
    RequestTypeEchoed {
        /// Byte 7, read as `bStatus` (0x40 | slot status on the stock firmware).
        status: Status,
        /// Byte 8, read as `bError` (0x00, CMD_NOT_SUPPORTED, on the stock firmware).
        error: SlotError,
    },
}

impl fmt::Display for PairingError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PairingError::Malformed(e) => write!(f, "malformed response: {e}"),
            PairingError::WrongSeq { expected, got } => {
                write!(f, "response bSeq {got} does not match request bSeq {expected}")
            }
            PairingError::WrongSlot { expected, got } => {
                write!(f, "response bSlot {got} does not match request bSlot {expected}")
            }
            PairingError::UnexpectedType { expected, got } => {
                write!(f, "expected {expected}, got {got}")
            }
            PairingError::RequestTypeEchoed { status, error } => write!(
                f,
                "reader echoed the request type (command not supported?): bStatus {:#04x}, bError {}",
                status.to_byte(),
                error
            ),
        }
    }
}

impl core::error::Error for PairingError {}

impl From<Error> for PairingError {
    fn from(e: Error) -> Self {
        PairingError::Malformed(e)
    }
}

/// Check `response` against the request identified by `request` (its type, `bSlot` and
/// `bSeq`), in this order (CCID Rev 1.1 §6.1, §6.2):
///
/// 1. a complete bulk message (header and `dwLength` bytes), else `Malformed`;
/// 2. the request's `bSeq`, else `WrongSeq`; the request's `bSlot`, else `WrongSlot`;
/// 3. the type that answers the request ([`MessageType::response_type`]), else
///    `RequestTypeEchoed` if it is the request's own type, `UnexpectedType` otherwise;
/// 4. `bmCommandStatus` = Time Extension (§6.2.6) gives [`Reply::TimeExtension`] without
///    looking at the payload;
/// 5. the body decodes, else `Malformed`.
pub fn check_response_to(
    request: MessageId,
    response: &[u8],
) -> Result<Reply<Body<'_>>, PairingError> {
    let message = Message::new_checked(response)?;
    if message.seq() != request.seq {
        return Err(PairingError::WrongSeq {
            expected: request.seq,
            got: message.seq(),
        });
    }
    if message.slot() != request.slot {
        return Err(PairingError::WrongSlot {
            expected: request.slot,
            got: message.slot(),
        });
    }
    let expected = request.message_type.response_type();
    let got = message.message_type();
    if got != expected {
        if got == request.message_type && request.message_type.is_command() {
            return Err(PairingError::RequestTypeEchoed {
                status: message.status(),
                error: message.error(),
            });
        }
        return Err(PairingError::UnexpectedType { expected, got });
    }
    let status = message.status();
    if status.command == CommandStatus::TimeExtension {
        return Ok(Reply::TimeExtension {
            multiplier: message.error().to_byte(),
        });
    }
    let repr = MessageRepr::parse(&message)?;
    Ok(Reply::Response(repr.body))
}

/// [`check_response_to`] for a request of type `R` sent to `slot` with sequence number `seq`,
/// returning `R`'s typed response.
pub fn check_response<R: Request>(
    slot: u8,
    seq: u8,
    response: &[u8],
) -> Result<Reply<R::Response<'_>>, PairingError> {
    let request = MessageId {
        message_type: R::MESSAGE_TYPE,
        slot,
        seq,
    };
    match check_response_to(request, response)? {
        Reply::TimeExtension { multiplier } => Ok(Reply::TimeExtension { multiplier }),
        Reply::Response(body) => {
            let got = body.message_type();
            R::Response::from_body(body)
                .map(Reply::Response)
                .ok_or(PairingError::UnexpectedType {
                    expected: R::Response::MESSAGE_TYPE,
                    got,
                })
        }
    }
}

/// What the reader knows about a slot when it answers a request it will not carry out: the
/// values that go into an error or time-extension response (CCID Rev 1.1 §6.2).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct SlotSnapshot {
    /// `bmICCStatus` of the slot.
    pub icc: IccStatus,
    /// `bClockStatus`, for a `SlotStatus` response.
    pub clock: ClockStatus,
    /// `bProtocolNum` of the current parameters, for a `Parameters` response (sent without a
    /// structure, `dwLength` 0).
    pub protocol: ProtocolNum,
    /// The current ICC clock in kHz, for a `DataRateAndClockFrequency` response.
    pub clock_frequency: u32,
    /// The current ICC data rate in bps, for a `DataRateAndClockFrequency` response.
    pub data_rate: u32,
}

impl SlotSnapshot {
    /// For a request to a slot that does not exist (answer it with [`SlotError::BAD_SLOT`]):
    /// no ICC present.
    pub const NO_SLOT: SlotSnapshot = SlotSnapshot {
        icc: IccStatus::NotPresent,
        clock: ClockStatus::StoppedUnknown,
        protocol: ProtocolNum::T0,
        clock_frequency: 0,
        data_rate: 0,
    };

    /// The response to `request` saying the command failed with `error`
    /// (CCID Rev 1.1 §6.2.6: `bmCommandStatus` = 1): of the type that answers the request
    /// ([`MessageType::response_type`]), with the request's slot and sequence number, no
    /// payload (except the 8 bytes `DataRateAndClockFrequency` always carries).
    ///
    /// A request whose type is not a `PC_to_RDR` command (unknown, or a bulk-IN or interrupt
    /// type) is answered with `SlotStatus` and CMD_NOT_SUPPORTED whatever `error` says: the
    /// reader cannot know what such a message's fields mean (§6.2.6, Table 6.2-2).
    pub fn error_response(&self, request: MessageId, error: SlotError) -> MessageRepr<'static> {
        let error = if request.message_type.is_command() {
            error
        } else {
            SlotError::CmdNotSupported
        };
        self.reply(request, Status::new(self.icc, CommandStatus::Failed), error)
    }

    /// The response to a command the reader does not support: failed with CMD_NOT_SUPPORTED
    /// (0x00, CCID Rev 1.1 §6.2.6), of the right response type (not the request's type, as
    /// the stock Nitrokey firmware does).
    pub fn not_supported(&self, request: MessageId) -> MessageRepr<'static> {
        self.error_response(request, SlotError::CmdNotSupported)
    }

    /// The response to a request that did not parse: the field [`Error::offending_field`]
    /// names (e.g. `dwLength`, index 1) as `bError` (CCID Rev 1.1 §6.2.6, Table 6.2-2), or
    /// CMD_NOT_SUPPORTED when the error names no field.
    pub fn reject(&self, request: MessageId, error: Error) -> MessageRepr<'static> {
        let code = error
            .offending_field()
            .map_or(SlotError::CmdNotSupported, SlotError::BadField);
        self.error_response(request, code)
    }

    /// A time-extension response to `request` (CCID Rev 1.1 §6.2.6: `bmCommandStatus` = 2,
    /// `bError` = the BWT multiplier): send it while the ICC is still working so the host keeps
    /// waiting. Of the type that answers the request, with no payload.
    pub fn time_extension(&self, request: MessageId, multiplier: u8) -> MessageRepr<'static> {
        self.reply(
            request,
            Status::new(self.icc, CommandStatus::TimeExtension),
            SlotError::from_byte(multiplier),
        )
    }

    /// A response of the type that answers `request`, carrying `status` and `error`.
    fn reply(&self, request: MessageId, status: Status, error: SlotError) -> MessageRepr<'static> {
        let body = match request.message_type.response_type() {
            MessageType::DataBlock => Body::DataBlock(DataBlock {
                status,
                error,
                chain: ChainParameter::BeginsAndEnds,
                data: &[],
            }),
            MessageType::Parameters => Body::Parameters(Parameters {
                status,
                error,
                protocol: ProtocolData::Raw {
                    protocol: self.protocol,
                    data: &[],
                },
            }),
            MessageType::EscapeResponse => Body::EscapeResponse(EscapeResponse {
                status,
                error,
                rfu: 0,
                data: &[],
            }),
            MessageType::DataRateAndClockFrequency => {
                Body::DataRateAndClockFrequency(DataRateAndClockFrequency {
                    status,
                    error,
                    rfu: 0,
                    clock_frequency: self.clock_frequency,
                    data_rate: self.data_rate,
                })
            }
            _ => Body::SlotStatus(SlotStatus {
                status,
                error,
                clock: self.clock,
            }),
        };
        MessageRepr {
            slot: request.slot,
            seq: request.seq,
            body,
        }
    }
}
