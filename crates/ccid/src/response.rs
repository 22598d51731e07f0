//! The bulk-IN messages, `RDR_to_PC_*` (CCID Rev 1.1 §6.2), with their typed fields.
//!
//! Every response carries `bStatus` (byte 7) and `bError` (byte 8); byte 9 is specific. As in
//! [`crate::command`], reserved bytes are kept as received.

use crate::command::{decode_rate_and_clock, write_rate_and_clock};
use crate::message::{MessageType, Wire};
use crate::params::ProtocolData;
use crate::status::{SlotError, Status};
use crate::{Error, Result};

/// `bChainParameter` of `DataBlock` (CCID Rev 1.1 §6.2.1) and, at extended APDU level, the
/// value of `XfrBlock`'s `wLevelParameter` (§6.1.4). Meaningful only at extended APDU level;
/// 0 (RFU) at the other levels.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum ChainParameter {
    /// 0x00: the APDU begins and ends in this message.
    #[default]
    BeginsAndEnds,
    /// 0x01: the APDU begins in this message and continues in the next.
    Begins,
    /// 0x02: this message continues the APDU and ends it.
    Ends,
    /// 0x03: this message continues the APDU and another follows.
    Continues,
    /// 0x10: empty `abData`; the peer is asked for the continuation (in a `DataBlock`: send
    /// the next part of the command; in an `XfrBlock`: send the next part of the response).
    EmptyContinue,
    /// Any other value.
    Unknown(u8),
}

impl ChainParameter {
    /// Decode the chaining byte. Total.
    pub const fn from_byte(byte: u8) -> Self {
        match byte {
            0x00 => ChainParameter::BeginsAndEnds,
            0x01 => ChainParameter::Begins,
            0x02 => ChainParameter::Ends,
            0x03 => ChainParameter::Continues,
            0x10 => ChainParameter::EmptyContinue,
            b => ChainParameter::Unknown(b),
        }
    }

    /// Encode as the chaining byte.
    pub const fn to_byte(self) -> u8 {
        match self {
            ChainParameter::BeginsAndEnds => 0x00,
            ChainParameter::Begins => 0x01,
            ChainParameter::Ends => 0x02,
            ChainParameter::Continues => 0x03,
            ChainParameter::EmptyContinue => 0x10,
            ChainParameter::Unknown(b) => b,
        }
    }

    /// As `XfrBlock`'s `wLevelParameter`.
    pub const fn to_level_parameter(self) -> u16 {
        self.to_byte() as u16
    }
}

/// `bClockStatus` of `SlotStatus` (CCID Rev 1.1 §6.2.2).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum ClockStatus {
    /// 0x00: clock running.
    #[default]
    Running,
    /// 0x01: clock stopped in state L.
    StoppedLow,
    /// 0x02: clock stopped in state H.
    StoppedHigh,
    /// 0x03: clock stopped in an unknown state.
    StoppedUnknown,
    /// Any other value (reserved).
    Unknown(u8),
}

impl ClockStatus {
    /// Decode `bClockStatus`. Total.
    pub const fn from_byte(byte: u8) -> Self {
        match byte {
            0x00 => ClockStatus::Running,
            0x01 => ClockStatus::StoppedLow,
            0x02 => ClockStatus::StoppedHigh,
            0x03 => ClockStatus::StoppedUnknown,
            b => ClockStatus::Unknown(b),
        }
    }

    /// Encode as `bClockStatus`.
    pub const fn to_byte(self) -> u8 {
        match self {
            ClockStatus::Running => 0x00,
            ClockStatus::StoppedLow => 0x01,
            ClockStatus::StoppedHigh => 0x02,
            ClockStatus::StoppedUnknown => 0x03,
            ClockStatus::Unknown(b) => b,
        }
    }
}

/// `RDR_to_PC_DataBlock` 0x80: the answer to `IccPowerOn` (the ATR), `XfrBlock` and `Secure`
/// (CCID Rev 1.1 §6.2.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct DataBlock<'a> {
    /// `bStatus`.
    pub status: Status,
    /// `bError` (the BWT multiplier on time extension).
    pub error: SlotError,
    /// `bChainParameter`.
    pub chain: ChainParameter,
    /// `abData`.
    pub data: &'a [u8],
}

impl<'a> Wire<'a> for DataBlock<'a> {
    const TYPE: MessageType = MessageType::DataBlock;
    fn decode(s: [u8; 3], data: &'a [u8]) -> Result<Self> {
        let [status, error, chain] = s;
        Ok(DataBlock {
            status: Status::from_byte(status),
            error: SlotError::from_byte(error),
            chain: ChainParameter::from_byte(chain),
            data,
        })
    }
    fn specific(&self) -> [u8; 3] {
        [
            self.status.to_byte(),
            self.error.to_byte(),
            self.chain.to_byte(),
        ]
    }
    fn payload(&self) -> &[u8] {
        self.data
    }
}

/// `RDR_to_PC_SlotStatus` 0x81: the answer to `IccPowerOff`, `GetSlotStatus`, `IccClock`,
/// `T0APDU`, `Mechanical`, `Abort`, and to a command the reader does not know
/// (CCID Rev 1.1 §6.2.2). `dwLength` is 0.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct SlotStatus {
    /// `bStatus`.
    pub status: Status,
    /// `bError`.
    pub error: SlotError,
    /// `bClockStatus`.
    pub clock: ClockStatus,
}

impl<'a> Wire<'a> for SlotStatus {
    const TYPE: MessageType = MessageType::SlotStatus;
    fn decode(s: [u8; 3], payload: &'a [u8]) -> Result<Self> {
        if !payload.is_empty() {
            return Err(Error::BadLength);
        }
        let [status, error, clock] = s;
        Ok(SlotStatus {
            status: Status::from_byte(status),
            error: SlotError::from_byte(error),
            clock: ClockStatus::from_byte(clock),
        })
    }
    fn specific(&self) -> [u8; 3] {
        [
            self.status.to_byte(),
            self.error.to_byte(),
            self.clock.to_byte(),
        ]
    }
}

/// `RDR_to_PC_Parameters` 0x82: the answer to `GetParameters`, `ResetParameters` and
/// `SetParameters` (CCID Rev 1.1 §6.2.3). Read leniently: a T=0/T=1 payload of the wrong
/// length (e.g. empty, after a failure) is kept as [`ProtocolData::Raw`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct Parameters<'a> {
    /// `bStatus`.
    pub status: Status,
    /// `bError`.
    pub error: SlotError,
    /// `bProtocolNum` (byte 9) with `abProtocolDataStructure`.
    pub protocol: ProtocolData<'a>,
}

impl<'a> Wire<'a> for Parameters<'a> {
    const TYPE: MessageType = MessageType::Parameters;
    fn decode(s: [u8; 3], payload: &'a [u8]) -> Result<Self> {
        let [status, error, protocol] = s;
        Ok(Parameters {
            status: Status::from_byte(status),
            error: SlotError::from_byte(error),
            protocol: ProtocolData::parse_response(protocol, payload),
        })
    }
    fn specific(&self) -> [u8; 3] {
        [
            self.status.to_byte(),
            self.error.to_byte(),
            self.protocol.protocol().to_byte(),
        ]
    }
    fn payload_len(&self) -> usize {
        self.protocol.len()
    }
    fn write_payload(&self, out: &mut [u8]) -> bool {
        self.protocol.emit(out).is_ok()
    }
}

/// `RDR_to_PC_Escape` 0x83: the answer to `PC_to_RDR_Escape` (CCID Rev 1.1 §6.2.4).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct EscapeResponse<'a> {
    /// `bStatus`.
    pub status: Status,
    /// `bError`.
    pub error: SlotError,
    /// `bRFU` (byte 9).
    pub rfu: u8,
    /// `abData`: the vendor response.
    pub data: &'a [u8],
}

impl<'a> Wire<'a> for EscapeResponse<'a> {
    const TYPE: MessageType = MessageType::EscapeResponse;
    fn decode(s: [u8; 3], data: &'a [u8]) -> Result<Self> {
        let [status, error, rfu] = s;
        Ok(EscapeResponse {
            status: Status::from_byte(status),
            error: SlotError::from_byte(error),
            rfu,
            data,
        })
    }
    fn specific(&self) -> [u8; 3] {
        [self.status.to_byte(), self.error.to_byte(), self.rfu]
    }
    fn payload(&self) -> &[u8] {
        self.data
    }
}

/// `RDR_to_PC_DataRateAndClockFrequency` 0x84: the answer to
/// `SetDataRateAndClockFrequency` (CCID Rev 1.1 §6.2.5). `dwLength` is 8.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct DataRateAndClockFrequency {
    /// `bStatus`.
    pub status: Status,
    /// `bError`.
    pub error: SlotError,
    /// `bRFU` (byte 9).
    pub rfu: u8,
    /// `dwClockFrequency`: the current ICC clock in kHz.
    pub clock_frequency: u32,
    /// `dwDataRate`: the current ICC data rate in bps.
    pub data_rate: u32,
}

impl<'a> Wire<'a> for DataRateAndClockFrequency {
    const TYPE: MessageType = MessageType::DataRateAndClockFrequency;
    fn decode(s: [u8; 3], payload: &'a [u8]) -> Result<Self> {
        let [status, error, rfu] = s;
        let (clock_frequency, data_rate) = decode_rate_and_clock(payload)?;
        Ok(DataRateAndClockFrequency {
            status: Status::from_byte(status),
            error: SlotError::from_byte(error),
            rfu,
            clock_frequency,
            data_rate,
        })
    }
    fn specific(&self) -> [u8; 3] {
        [self.status.to_byte(), self.error.to_byte(), self.rfu]
    }
    fn payload_len(&self) -> usize {
        8
    }
    fn write_payload(&self, out: &mut [u8]) -> bool {
        write_rate_and_clock(out, self.clock_frequency, self.data_rate)
    }
}
