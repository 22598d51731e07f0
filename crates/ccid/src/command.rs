//! The bulk-OUT messages, `PC_to_RDR_*` (CCID Rev 1.1 §6.1), with their typed fields.
//!
//! Each struct is the part of a message after `bSlot`/`bSeq`: the three message-specific bytes
//! (bytes 7..=9) and the payload. Reserved bytes (`abRFU`) are kept as received so that every
//! message round-trips; `new` and `Default` set them to zero, as a host must send them.
//! [`crate::MessageRepr`] adds the slot and sequence number.

use crate::message::{MessageType, Wire};
use crate::params::ProtocolData;
use crate::{bytes, Error, Result};

/// Payload must be empty (`dwLength` = 0) for this message type (CCID Rev 1.1 §6.1).
fn expect_empty(payload: &[u8]) -> Result<()> {
    if payload.is_empty() {
        Ok(())
    } else {
        Err(Error::BadLength)
    }
}

/// `bPowerSelect` of `IccPowerOn` (CCID Rev 1.1 §6.1.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum PowerSelect {
    /// 0x00: automatic voltage selection.
    #[default]
    Automatic,
    /// 0x01: 5.0 V.
    Volts5,
    /// 0x02: 3.0 V.
    Volts3,
    /// 0x03: 1.8 V.
    Volts1_8,
    /// Any other value.
    Unknown(u8),
}

impl PowerSelect {
    /// Decode `bPowerSelect`. Total.
    pub const fn from_byte(byte: u8) -> Self {
        match byte {
            0x00 => PowerSelect::Automatic,
            0x01 => PowerSelect::Volts5,
            0x02 => PowerSelect::Volts3,
            0x03 => PowerSelect::Volts1_8,
            b => PowerSelect::Unknown(b),
        }
    }

    /// Encode as `bPowerSelect`.
    pub const fn to_byte(self) -> u8 {
        match self {
            PowerSelect::Automatic => 0x00,
            PowerSelect::Volts5 => 0x01,
            PowerSelect::Volts3 => 0x02,
            PowerSelect::Volts1_8 => 0x03,
            PowerSelect::Unknown(b) => b,
        }
    }
}

/// `bClockCommand` of `IccClock` (CCID Rev 1.1 §6.1.9).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum ClockCommand {
    /// 0x00: restart the clock.
    #[default]
    Restart,
    /// 0x01: stop the clock in the state given by `bClockStop` of the current parameters.
    Stop,
    /// Any other value.
    Unknown(u8),
}

impl ClockCommand {
    /// Decode `bClockCommand`. Total.
    pub const fn from_byte(byte: u8) -> Self {
        match byte {
            0x00 => ClockCommand::Restart,
            0x01 => ClockCommand::Stop,
            b => ClockCommand::Unknown(b),
        }
    }

    /// Encode as `bClockCommand`.
    pub const fn to_byte(self) -> u8 {
        match self {
            ClockCommand::Restart => 0x00,
            ClockCommand::Stop => 0x01,
            ClockCommand::Unknown(b) => b,
        }
    }
}

/// `bFunction` of `Mechanical` (CCID Rev 1.1 §6.1.12).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum MechanicalFunction {
    /// 0x01: accept card.
    AcceptCard,
    /// 0x02: eject card.
    EjectCard,
    /// 0x03: capture card.
    CaptureCard,
    /// 0x04: lock card.
    LockCard,
    /// 0x05: unlock card.
    UnlockCard,
    /// Any other value.
    Unknown(u8),
}

impl MechanicalFunction {
    /// Decode `bFunction`. Total.
    pub const fn from_byte(byte: u8) -> Self {
        match byte {
            0x01 => MechanicalFunction::AcceptCard,
            0x02 => MechanicalFunction::EjectCard,
            0x03 => MechanicalFunction::CaptureCard,
            0x04 => MechanicalFunction::LockCard,
            0x05 => MechanicalFunction::UnlockCard,
            b => MechanicalFunction::Unknown(b),
        }
    }

    /// Encode as `bFunction`.
    pub const fn to_byte(self) -> u8 {
        match self {
            MechanicalFunction::AcceptCard => 0x01,
            MechanicalFunction::EjectCard => 0x02,
            MechanicalFunction::CaptureCard => 0x03,
            MechanicalFunction::LockCard => 0x04,
            MechanicalFunction::UnlockCard => 0x05,
            MechanicalFunction::Unknown(b) => b,
        }
    }
}

/// `bPINOperation`, the first byte of a `Secure` message's `abData` (CCID Rev 1.1 §6.1.11).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum PinOperation {
    /// 0x00: PIN verification.
    Verify,
    /// 0x01: PIN modification.
    Modify,
    /// 0x02: transfer PIN from the secure CCID buffer.
    Transfer,
    /// 0x03: wait for the ICC response.
    WaitIccResponse,
    /// 0x04: cancel the PIN function.
    Cancel,
    /// 0x05: re-send the last I-block (T=1 only).
    ResendLastIBlock,
    /// 0x06: send the next part of the APDU (T=1 only).
    SendNextPart,
    /// Any other value.
    Unknown(u8),
}

impl PinOperation {
    /// Decode `bPINOperation`. Total.
    pub const fn from_byte(byte: u8) -> Self {
        match byte {
            0x00 => PinOperation::Verify,
            0x01 => PinOperation::Modify,
            0x02 => PinOperation::Transfer,
            0x03 => PinOperation::WaitIccResponse,
            0x04 => PinOperation::Cancel,
            0x05 => PinOperation::ResendLastIBlock,
            0x06 => PinOperation::SendNextPart,
            b => PinOperation::Unknown(b),
        }
    }

    /// Encode as `bPINOperation`.
    pub const fn to_byte(self) -> u8 {
        match self {
            PinOperation::Verify => 0x00,
            PinOperation::Modify => 0x01,
            PinOperation::Transfer => 0x02,
            PinOperation::WaitIccResponse => 0x03,
            PinOperation::Cancel => 0x04,
            PinOperation::ResendLastIBlock => 0x05,
            PinOperation::SendNextPart => 0x06,
            PinOperation::Unknown(b) => b,
        }
    }
}

/// `PC_to_RDR_IccPowerOn` 0x62: activate the ICC and return its ATR in a `DataBlock`
/// (CCID Rev 1.1 §6.1.1). `dwLength` is 0.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct IccPowerOn {
    /// `bPowerSelect`.
    pub power_select: PowerSelect,
    /// `abRFU` (bytes 8..=9).
    pub rfu: [u8; 2],
}

impl IccPowerOn {
    /// A power-on request with zero reserved bytes.
    pub const fn new(power_select: PowerSelect) -> Self {
        IccPowerOn {
            power_select,
            rfu: [0; 2],
        }
    }
}

impl<'a> Wire<'a> for IccPowerOn {
    const TYPE: MessageType = MessageType::IccPowerOn;
    fn decode(s: [u8; 3], payload: &'a [u8]) -> Result<Self> {
        expect_empty(payload)?;
        let [power, r0, r1] = s;
        Ok(IccPowerOn {
            power_select: PowerSelect::from_byte(power),
            rfu: [r0, r1],
        })
    }
    fn specific(&self) -> [u8; 3] {
        [self.power_select.to_byte(), self.rfu[0], self.rfu[1]]
    }
}

/// Messages whose three specific bytes are all `abRFU` and whose payload is empty.
macro_rules! rfu_only_command {
    ($(#[$doc:meta])* $name:ident, $variant:ident) => {
        $(#[$doc])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
        #[cfg_attr(feature = "defmt", derive(defmt::Format))]
        pub struct $name {
            /// `abRFU` (bytes 7..=9).
            pub rfu: [u8; 3],
        }

        impl $name {
            /// The request with zero reserved bytes.
            pub const fn new() -> Self {
                $name { rfu: [0; 3] }
            }
        }

        impl<'a> Wire<'a> for $name {
            const TYPE: MessageType = MessageType::$variant;
            fn decode(rfu: [u8; 3], payload: &'a [u8]) -> Result<Self> {
                expect_empty(payload)?;
                Ok($name { rfu })
            }
            fn specific(&self) -> [u8; 3] {
                self.rfu
            }
        }
    };
}

rfu_only_command!(
    /// `PC_to_RDR_IccPowerOff` 0x63: deactivate the ICC; answered by `SlotStatus`
    /// (CCID Rev 1.1 §6.1.2).
    IccPowerOff,
    IccPowerOff
);
rfu_only_command!(
    /// `PC_to_RDR_GetSlotStatus` 0x65: ask for the slot status; answered by `SlotStatus`
    /// (CCID Rev 1.1 §6.1.3).
    GetSlotStatus,
    GetSlotStatus
);
rfu_only_command!(
    /// `PC_to_RDR_GetParameters` 0x6C: ask for the current protocol parameters; answered by
    /// `Parameters` (CCID Rev 1.1 §6.1.5).
    GetParameters,
    GetParameters
);
rfu_only_command!(
    /// `PC_to_RDR_ResetParameters` 0x6D: restore the default protocol parameters; answered by
    /// `Parameters` (CCID Rev 1.1 §6.1.6).
    ResetParameters,
    ResetParameters
);
rfu_only_command!(
    /// `PC_to_RDR_Abort` 0x72: the bulk half of the abort sequence that starts with the class
    /// request ABORT; answered by `SlotStatus` (CCID Rev 1.1 §6.1.13, §5.3.1).
    Abort,
    Abort
);

/// `PC_to_RDR_XfrBlock` 0x6F: send a block (TPDU, APDU or characters, by exchange level) to
/// the ICC; answered by `DataBlock` (CCID Rev 1.1 §6.1.4).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct XfrBlock<'a> {
    /// `bBWI`: extends the block waiting timeout for this transfer (multiplier, T=1 only).
    pub bwi: u8,
    /// `wLevelParameter`: at character level the expected response length; at extended APDU
    /// level a chaining code (see [`XfrBlock::chain`]); otherwise 0.
    pub level_parameter: u16,
    /// `abData`.
    pub data: &'a [u8],
}

impl<'a> XfrBlock<'a> {
    /// A transfer with `bBWI` = 0 and `wLevelParameter` = 0 (TPDU and short APDU level).
    pub const fn new(data: &'a [u8]) -> Self {
        XfrBlock {
            bwi: 0,
            level_parameter: 0,
            data,
        }
    }

    /// `wLevelParameter` read as the extended-APDU chaining code (CCID Rev 1.1 §6.1.4);
    /// `None` when it does not fit a byte (then it is no chaining code).
    pub fn chain(&self) -> Option<crate::ChainParameter> {
        u8::try_from(self.level_parameter)
            .ok()
            .map(crate::ChainParameter::from_byte)
    }
}

impl<'a> Wire<'a> for XfrBlock<'a> {
    const TYPE: MessageType = MessageType::XfrBlock;
    fn decode(s: [u8; 3], data: &'a [u8]) -> Result<Self> {
        let [bwi, l0, l1] = s;
        Ok(XfrBlock {
            bwi,
            level_parameter: u16::from_le_bytes([l0, l1]),
            data,
        })
    }
    fn specific(&self) -> [u8; 3] {
        let [l0, l1] = self.level_parameter.to_le_bytes();
        [self.bwi, l0, l1]
    }
    fn payload(&self) -> &[u8] {
        self.data
    }
}

/// `PC_to_RDR_SetParameters` 0x61: set the protocol and its parameters; answered by
/// `Parameters` (CCID Rev 1.1 §6.1.7). T=0 carries 5 bytes, T=1 carries 7; a wrong length is
/// [`Error::BadLength`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct SetParameters<'a> {
    /// `bProtocolNum` (byte 7) with `abProtocolDataStructure`.
    pub protocol: ProtocolData<'a>,
    /// `abRFU` (bytes 8..=9).
    pub rfu: [u8; 2],
}

impl<'a> SetParameters<'a> {
    /// A request with zero reserved bytes.
    pub const fn new(protocol: ProtocolData<'a>) -> Self {
        SetParameters {
            protocol,
            rfu: [0; 2],
        }
    }
}

impl<'a> Wire<'a> for SetParameters<'a> {
    const TYPE: MessageType = MessageType::SetParameters;
    fn decode(s: [u8; 3], payload: &'a [u8]) -> Result<Self> {
        let [protocol, r0, r1] = s;
        Ok(SetParameters {
            protocol: ProtocolData::parse_command(protocol, payload)?,
            rfu: [r0, r1],
        })
    }
    fn specific(&self) -> [u8; 3] {
        [self.protocol.protocol().to_byte(), self.rfu[0], self.rfu[1]]
    }
    fn payload_len(&self) -> usize {
        self.protocol.len()
    }
    fn write_payload(&self, out: &mut [u8]) -> bool {
        self.protocol.emit(out).is_ok()
    }
}

/// `PC_to_RDR_Escape` 0x6B: a vendor-specific command; answered by `RDR_to_PC_Escape`
/// (CCID Rev 1.1 §6.1.8).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct Escape<'a> {
    /// `abRFU` (bytes 7..=9).
    pub rfu: [u8; 3],
    /// `abData`: the vendor command.
    pub data: &'a [u8],
}

impl<'a> Escape<'a> {
    /// An escape command with zero reserved bytes.
    pub const fn new(data: &'a [u8]) -> Self {
        Escape { rfu: [0; 3], data }
    }
}

impl<'a> Wire<'a> for Escape<'a> {
    const TYPE: MessageType = MessageType::Escape;
    fn decode(rfu: [u8; 3], data: &'a [u8]) -> Result<Self> {
        Ok(Escape { rfu, data })
    }
    fn specific(&self) -> [u8; 3] {
        self.rfu
    }
    fn payload(&self) -> &[u8] {
        self.data
    }
}

/// `PC_to_RDR_IccClock` 0x6E: stop or restart the ICC clock; answered by `SlotStatus`
/// (CCID Rev 1.1 §6.1.9).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct IccClock {
    /// `bClockCommand`.
    pub command: ClockCommand,
    /// `abRFU` (bytes 8..=9).
    pub rfu: [u8; 2],
}

impl IccClock {
    /// A clock command with zero reserved bytes.
    pub const fn new(command: ClockCommand) -> Self {
        IccClock {
            command,
            rfu: [0; 2],
        }
    }
}

impl<'a> Wire<'a> for IccClock {
    const TYPE: MessageType = MessageType::IccClock;
    fn decode(s: [u8; 3], payload: &'a [u8]) -> Result<Self> {
        expect_empty(payload)?;
        let [command, r0, r1] = s;
        Ok(IccClock {
            command: ClockCommand::from_byte(command),
            rfu: [r0, r1],
        })
    }
    fn specific(&self) -> [u8; 3] {
        [self.command.to_byte(), self.rfu[0], self.rfu[1]]
    }
}

/// `PC_to_RDR_T0APDU` 0x6A: change the class bytes the reader uses for T=0 GET RESPONSE and
/// ENVELOPE at APDU level; answered by `SlotStatus` (CCID Rev 1.1 §6.1.10). `dwLength` is 0.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct T0Apdu {
    /// `bmChanges`: which of the two class bytes to change ([`T0Apdu::CHANGE_GET_RESPONSE`],
    /// [`T0Apdu::CHANGE_ENVELOPE`]).
    pub changes: u8,
    /// `bClassGetResponse`: the class byte for GET RESPONSE.
    pub class_get_response: u8,
    /// `bClassEnvelope`: the class byte for ENVELOPE.
    pub class_envelope: u8,
}

impl T0Apdu {
    /// `bmChanges` bit 0: use `bClassGetResponse`.
    pub const CHANGE_GET_RESPONSE: u8 = 0x01;
    /// `bmChanges` bit 1: use `bClassEnvelope`.
    pub const CHANGE_ENVELOPE: u8 = 0x02;
}

impl<'a> Wire<'a> for T0Apdu {
    const TYPE: MessageType = MessageType::T0Apdu;
    fn decode(s: [u8; 3], payload: &'a [u8]) -> Result<Self> {
        expect_empty(payload)?;
        let [changes, class_get_response, class_envelope] = s;
        Ok(T0Apdu {
            changes,
            class_get_response,
            class_envelope,
        })
    }
    fn specific(&self) -> [u8; 3] {
        [self.changes, self.class_get_response, self.class_envelope]
    }
}

/// `PC_to_RDR_Secure` 0x69: PIN verification or modification on a PIN pad; answered by
/// `DataBlock` (CCID Rev 1.1 §6.1.11). The PIN structures are kept opaque.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct Secure<'a> {
    /// `bBWI`, as in `XfrBlock`.
    pub bwi: u8,
    /// `wLevelParameter`, as in `XfrBlock`.
    pub level_parameter: u16,
    /// `abData`: `bPINOperation` followed by its data structure.
    pub data: &'a [u8],
}

impl<'a> Secure<'a> {
    /// `bPINOperation`, the first byte of `abData`; `None` when `abData` is empty.
    pub fn pin_operation(&self) -> Option<PinOperation> {
        self.data.first().copied().map(PinOperation::from_byte)
    }
}

impl<'a> Wire<'a> for Secure<'a> {
    const TYPE: MessageType = MessageType::Secure;
    fn decode(s: [u8; 3], data: &'a [u8]) -> Result<Self> {
        let [bwi, l0, l1] = s;
        Ok(Secure {
            bwi,
            level_parameter: u16::from_le_bytes([l0, l1]),
            data,
        })
    }
    fn specific(&self) -> [u8; 3] {
        let [l0, l1] = self.level_parameter.to_le_bytes();
        [self.bwi, l0, l1]
    }
    fn payload(&self) -> &[u8] {
        self.data
    }
}

/// `PC_to_RDR_Mechanical` 0x71: drive the reader's card mechanism; answered by `SlotStatus`
/// (CCID Rev 1.1 §6.1.12).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct Mechanical {
    /// `bFunction`.
    pub function: MechanicalFunction,
    /// `abRFU` (bytes 8..=9).
    pub rfu: [u8; 2],
}

impl Mechanical {
    /// A mechanical command with zero reserved bytes.
    pub const fn new(function: MechanicalFunction) -> Self {
        Mechanical {
            function,
            rfu: [0; 2],
        }
    }
}

impl<'a> Wire<'a> for Mechanical {
    const TYPE: MessageType = MessageType::Mechanical;
    fn decode(s: [u8; 3], payload: &'a [u8]) -> Result<Self> {
        expect_empty(payload)?;
        let [function, r0, r1] = s;
        Ok(Mechanical {
            function: MechanicalFunction::from_byte(function),
            rfu: [r0, r1],
        })
    }
    fn specific(&self) -> [u8; 3] {
        [self.function.to_byte(), self.rfu[0], self.rfu[1]]
    }
}

/// `PC_to_RDR_SetDataRateAndClockFrequency` 0x73: set the ICC clock and data rate; answered by
/// `DataRateAndClockFrequency` (CCID Rev 1.1 §6.1.14). `dwLength` is 8.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct SetDataRateAndClockFrequency {
    /// `abRFU` (bytes 7..=9).
    pub rfu: [u8; 3],
    /// `dwClockFrequency`: the ICC clock in kHz.
    pub clock_frequency: u32,
    /// `dwDataRate`: the ICC data rate in bps.
    pub data_rate: u32,
}

impl SetDataRateAndClockFrequency {
    /// A request with zero reserved bytes.
    pub const fn new(clock_frequency: u32, data_rate: u32) -> Self {
        SetDataRateAndClockFrequency {
            rfu: [0; 3],
            clock_frequency,
            data_rate,
        }
    }
}

/// Decode the two little-endian `u32` of a rate-and-clock payload (CCID Rev 1.1 §6.1.14,
/// §6.2.5).
pub(crate) fn decode_rate_and_clock(payload: &[u8]) -> Result<(u32, u32)> {
    match *payload {
        [c0, c1, c2, c3, r0, r1, r2, r3] => Ok((
            u32::from_le_bytes([c0, c1, c2, c3]),
            u32::from_le_bytes([r0, r1, r2, r3]),
        )),
        _ => Err(Error::BadLength),
    }
}

/// Write the rate-and-clock payload.
pub(crate) fn write_rate_and_clock(out: &mut [u8], clock_frequency: u32, data_rate: u32) -> bool {
    bytes::put(out, 0, &clock_frequency.to_le_bytes())
        && bytes::put(out, 4, &data_rate.to_le_bytes())
}

impl<'a> Wire<'a> for SetDataRateAndClockFrequency {
    const TYPE: MessageType = MessageType::SetDataRateAndClockFrequency;
    fn decode(rfu: [u8; 3], payload: &'a [u8]) -> Result<Self> {
        let (clock_frequency, data_rate) = decode_rate_and_clock(payload)?;
        Ok(SetDataRateAndClockFrequency {
            rfu,
            clock_frequency,
            data_rate,
        })
    }
    fn specific(&self) -> [u8; 3] {
        self.rfu
    }
    fn payload_len(&self) -> usize {
        8
    }
    fn write_payload(&self, out: &mut [u8]) -> bool {
        write_rate_and_clock(out, self.clock_frequency, self.data_rate)
    }
}
