//! The slot status register `bStatus` and the slot error register `bError`, present in every
//! bulk-IN message (CCID Rev 1.1 §6.2.6).
//!
//! Both round-trip every byte: `Status` keeps the reserved bits 2..=5, and `SlotError` keeps
//! field indexes, user-defined codes and reserved values.

use core::fmt;

/// `bmICCStatus`, bits 0..=1 of `bStatus` (CCID Rev 1.1 §6.2.6, Table 6.2-3).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum IccStatus {
    /// 0: an ICC is present and active (powered, not in reset).
    #[default]
    PresentActive,
    /// 1: an ICC is present and inactive (not activated or shut down by the hardware).
    PresentInactive,
    /// 2: no ICC is present.
    NotPresent,
    /// 3: reserved for future use.
    Reserved,
}

impl IccStatus {
    /// The two-bit value.
    pub const fn bits(self) -> u8 {
        match self {
            IccStatus::PresentActive => 0,
            IccStatus::PresentInactive => 1,
            IccStatus::NotPresent => 2,
            IccStatus::Reserved => 3,
        }
    }

    /// The status for the two low bits of `bits` (higher bits are ignored).
    pub const fn from_bits(bits: u8) -> Self {
        match bits & 0x03 {
            0 => IccStatus::PresentActive,
            1 => IccStatus::PresentInactive,
            2 => IccStatus::NotPresent,
            _ => IccStatus::Reserved,
        }
    }
}

/// `bmCommandStatus`, bits 6..=7 of `bStatus` (CCID Rev 1.1 §6.2.6, Table 6.2-3).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum CommandStatus {
    /// 0: the command was processed without error.
    #[default]
    Processed,
    /// 1: the command failed; `bError` says why.
    Failed,
    /// 2: time extension requested; `bError` carries the BWT multiplier.
    TimeExtension,
    /// 3: reserved for future use.
    Reserved,
}

impl CommandStatus {
    /// The two-bit value (not shifted).
    pub const fn bits(self) -> u8 {
        match self {
            CommandStatus::Processed => 0,
            CommandStatus::Failed => 1,
            CommandStatus::TimeExtension => 2,
            CommandStatus::Reserved => 3,
        }
    }

    /// The status for the two low bits of `bits` (higher bits are ignored).
    pub const fn from_bits(bits: u8) -> Self {
        match bits & 0x03 {
            0 => CommandStatus::Processed,
            1 => CommandStatus::Failed,
            2 => CommandStatus::TimeExtension,
            _ => CommandStatus::Reserved,
        }
    }
}

/// The slot status register `bStatus` (CCID Rev 1.1 §6.2.6, Table 6.2-3): `bmICCStatus` in
/// bits 0..=1, reserved bits 2..=5, `bmCommandStatus` in bits 6..=7.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct Status {
    /// `bmICCStatus`.
    pub icc: IccStatus,
    /// `bmCommandStatus`.
    pub command: CommandStatus,
    /// The reserved bits 2..=5, right-aligned (0..=15); zero on the wire from a compliant
    /// reader, kept so that every byte round-trips. Only the low four bits are emitted.
    pub rfu: u8,
}

impl Status {
    /// A status with the reserved bits zero.
    pub const fn new(icc: IccStatus, command: CommandStatus) -> Self {
        Status {
            icc,
            command,
            rfu: 0,
        }
    }

    /// Decode a `bStatus` byte (CCID Rev 1.1 §6.2.6). Total: every byte has a status.
    pub const fn from_byte(byte: u8) -> Self {
        Status {
            icc: IccStatus::from_bits(byte),
            command: CommandStatus::from_bits(byte >> 6),
            rfu: (byte >> 2) & 0x0F,
        }
    }

    /// Encode as a `bStatus` byte (CCID Rev 1.1 §6.2.6).
    pub const fn to_byte(self) -> u8 {
        self.icc.bits() | ((self.rfu & 0x0F) << 2) | (self.command.bits() << 6)
    }

    /// What the command's outcome is, reading `bError` the way `bmCommandStatus` says to
    /// (CCID Rev 1.1 §6.2.6): an error code when failed, the BWT multiplier on time extension,
    /// nothing when processed.
    pub fn result(self, error: SlotError) -> CommandResult {
        match self.command {
            CommandStatus::Processed => CommandResult::Processed,
            CommandStatus::Failed => CommandResult::Failed(error),
            CommandStatus::TimeExtension => CommandResult::TimeExtension {
                multiplier: error.to_byte(),
            },
            CommandStatus::Reserved => CommandResult::Reserved {
                error: error.to_byte(),
            },
        }
    }
}

impl From<u8> for Status {
    fn from(byte: u8) -> Self {
        Status::from_byte(byte)
    }
}

impl From<Status> for u8 {
    fn from(status: Status) -> Self {
        status.to_byte()
    }
}

/// A command's outcome: `bmCommandStatus` with `bError` read accordingly
/// (CCID Rev 1.1 §6.2.6).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum CommandResult {
    /// Processed without error (`bError` carries no meaning).
    Processed,
    /// Failed, for the reason in `bError`.
    Failed(SlotError),
    /// The reader asks the host to keep waiting: `multiplier` times the block waiting time.
    TimeExtension {
        /// The BWT multiplier carried in `bError`.
        multiplier: u8,
    },
    /// `bmCommandStatus` = 3 (reserved); the raw `bError` is kept.
    Reserved {
        /// The raw `bError`.
        error: u8,
    },
}

/// The slot error register `bError` (CCID Rev 1.1 §6.2.6, Table 6.2-2), meaningful when
/// `bmCommandStatus` is Failed. Lossless: `SlotError::from(b).to_byte() == b` for every byte.
///
/// When `bmCommandStatus` is Time Extension the same byte is the BWT multiplier (see
/// [`Status::result`]); when the command was processed it is usually 0, which reads as
/// [`SlotError::CmdNotSupported`] here, so look at the status first.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum SlotError {
    /// 0xFF CMD_ABORTED: the host aborted the current activity.
    CmdAborted,
    /// 0xFE ICC_MUTE: the CCID timed out while talking to the ICC.
    IccMute,
    /// 0xFD XFR_PARITY_ERROR: parity error while talking to the ICC.
    XfrParityError,
    /// 0xFC XFR_OVERRUN: overrun error while talking to the ICC.
    XfrOverrun,
    /// 0xFB HW_ERROR: an all-inclusive hardware error occurred.
    HwError,
    /// 0xF8 BAD_ATR_TS.
    BadAtrTs,
    /// 0xF7 BAD_ATR_TCK.
    BadAtrTck,
    /// 0xF6 ICC_PROTOCOL_NOT_SUPPORTED.
    IccProtocolNotSupported,
    /// 0xF5 ICC_CLASS_NOT_SUPPORTED.
    IccClassNotSupported,
    /// 0xF4 PROCEDURE_BYTE_CONFLICT.
    ProcedureByteConflict,
    /// 0xF3 DEACTIVATED_PROTOCOL.
    DeactivatedProtocol,
    /// 0xF2 BUSY_WITH_AUTO_SEQUENCE: automatic sequence (e.g. activation) ongoing.
    BusyWithAutoSequence,
    /// 0xF0 PIN_TIMEOUT.
    PinTimeout,
    /// 0xEF PIN_CANCELLED.
    PinCancelled,
    /// 0xE0 CMD_SLOT_BUSY: a second command was sent to a slot already processing one.
    CmdSlotBusy,
    /// 0x00: command not supported.
    CmdNotSupported,
    /// 0x01..=0x7F: the index (byte offset in the message) of the field that is not supported
    /// or incorrect, e.g. 1 = `dwLength`, 5 = `bSlot`, 7 = the first message-specific byte.
    BadField(u8),
    /// 0x81..=0xC0: user defined (vendor specific).
    UserDefined(u8),
    /// Any other value (0x80 and the gaps of Table 6.2-2: reserved for future use).
    Unknown(u8),
}

impl SlotError {
    /// `bError` for a bad `dwLength` (field index 1).
    pub const BAD_LENGTH: SlotError = SlotError::BadField(1);
    /// `bError` for a bad `bSlot` (field index 5).
    pub const BAD_SLOT: SlotError = SlotError::BadField(5);

    /// Decode a `bError` byte (CCID Rev 1.1 §6.2.6, Table 6.2-2). Total.
    pub const fn from_byte(byte: u8) -> Self {
        match byte {
            0xFF => SlotError::CmdAborted,
            0xFE => SlotError::IccMute,
            0xFD => SlotError::XfrParityError,
            0xFC => SlotError::XfrOverrun,
            0xFB => SlotError::HwError,
            0xF8 => SlotError::BadAtrTs,
            0xF7 => SlotError::BadAtrTck,
            0xF6 => SlotError::IccProtocolNotSupported,
            0xF5 => SlotError::IccClassNotSupported,
            0xF4 => SlotError::ProcedureByteConflict,
            0xF3 => SlotError::DeactivatedProtocol,
            0xF2 => SlotError::BusyWithAutoSequence,
            0xF0 => SlotError::PinTimeout,
            0xEF => SlotError::PinCancelled,
            0xE0 => SlotError::CmdSlotBusy,
            0x00 => SlotError::CmdNotSupported,
            0x01..=0x7F => SlotError::BadField(byte),
            0x81..=0xC0 => SlotError::UserDefined(byte),
            _ => SlotError::Unknown(byte),
        }
    }

    /// Encode as a `bError` byte (CCID Rev 1.1 §6.2.6, Table 6.2-2).
    pub const fn to_byte(self) -> u8 {
        match self {
            SlotError::CmdAborted => 0xFF,
            SlotError::IccMute => 0xFE,
            SlotError::XfrParityError => 0xFD,
            SlotError::XfrOverrun => 0xFC,
            SlotError::HwError => 0xFB,
            SlotError::BadAtrTs => 0xF8,
            SlotError::BadAtrTck => 0xF7,
            SlotError::IccProtocolNotSupported => 0xF6,
            SlotError::IccClassNotSupported => 0xF5,
            SlotError::ProcedureByteConflict => 0xF4,
            SlotError::DeactivatedProtocol => 0xF3,
            SlotError::BusyWithAutoSequence => 0xF2,
            SlotError::PinTimeout => 0xF0,
            SlotError::PinCancelled => 0xEF,
            SlotError::CmdSlotBusy => 0xE0,
            SlotError::CmdNotSupported => 0x00,
            SlotError::BadField(b) | SlotError::UserDefined(b) | SlotError::Unknown(b) => b,
        }
    }
}

/// 0x00, the value a reader puts in `bError` when the command was processed.
impl Default for SlotError {
    fn default() -> Self {
        SlotError::CmdNotSupported
    }
}

impl From<u8> for SlotError {
    fn from(byte: u8) -> Self {
        SlotError::from_byte(byte)
    }
}

impl From<SlotError> for u8 {
    fn from(error: SlotError) -> Self {
        error.to_byte()
    }
}

impl fmt::Display for SlotError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let name = match self {
            SlotError::CmdAborted => "CMD_ABORTED",
            SlotError::IccMute => "ICC_MUTE",
            SlotError::XfrParityError => "XFR_PARITY_ERROR",
            SlotError::XfrOverrun => "XFR_OVERRUN",
            SlotError::HwError => "HW_ERROR",
            SlotError::BadAtrTs => "BAD_ATR_TS",
            SlotError::BadAtrTck => "BAD_ATR_TCK",
            SlotError::IccProtocolNotSupported => "ICC_PROTOCOL_NOT_SUPPORTED",
            SlotError::IccClassNotSupported => "ICC_CLASS_NOT_SUPPORTED",
            SlotError::ProcedureByteConflict => "PROCEDURE_BYTE_CONFLICT",
            SlotError::DeactivatedProtocol => "DEACTIVATED_PROTOCOL",
            SlotError::BusyWithAutoSequence => "BUSY_WITH_AUTO_SEQUENCE",
            SlotError::PinTimeout => "PIN_TIMEOUT",
            SlotError::PinCancelled => "PIN_CANCELLED",
            SlotError::CmdSlotBusy => "CMD_SLOT_BUSY",
            SlotError::CmdNotSupported => "CMD_NOT_SUPPORTED",
            SlotError::BadField(i) => return write!(f, "bad field at index {i}"),
            SlotError::UserDefined(b) => return write!(f, "user-defined error {b:#04x}"),
            SlotError::Unknown(b) => return write!(f, "reserved error {b:#04x}"),
        };
        f.write_str(name)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn status_bytes_seen_on_the_wire() {
        // 0x00: processed, present and active.
        assert_eq!(
            Status::from_byte(0x00),
            Status::new(IccStatus::PresentActive, CommandStatus::Processed)
        );
        // 0x42: failed, no ICC present (the "absent or mute" answer).
        assert_eq!(
            Status::from_byte(0x42),
            Status::new(IccStatus::NotPresent, CommandStatus::Failed)
        );
        // 0x80: time extension, present and active.
        assert_eq!(
            Status::from_byte(0x80),
            Status::new(IccStatus::PresentActive, CommandStatus::TimeExtension)
        );
        // 0x41: failed, present and inactive.
        assert_eq!(
            Status::new(IccStatus::PresentInactive, CommandStatus::Failed).to_byte(),
            0x41
        );
    }

    #[test]
    fn status_keeps_reserved_bits() {
        let s = Status::from_byte(0b1011_0101);
        assert_eq!(s.icc, IccStatus::PresentInactive);
        assert_eq!(s.command, CommandStatus::TimeExtension);
        assert_eq!(s.rfu, 0b1101);
        assert_eq!(s.to_byte(), 0b1011_0101);
    }

    #[test]
    fn status_round_trips_every_byte() {
        for b in 0..=255u8 {
            assert_eq!(Status::from_byte(b).to_byte(), b);
        }
    }

    #[test]
    fn slot_error_round_trips_every_byte_and_names_table_6_2_2() {
        for b in 0..=255u8 {
            let e = SlotError::from_byte(b);
            assert_eq!(e.to_byte(), b);
            assert_eq!(SlotError::from_byte(e.to_byte()), e);
        }
        assert_eq!(SlotError::from_byte(0xFE), SlotError::IccMute);
        assert_eq!(SlotError::from_byte(0xE0), SlotError::CmdSlotBusy);
        assert_eq!(SlotError::from_byte(0x05), SlotError::BAD_SLOT);
        assert_eq!(SlotError::from_byte(0x01), SlotError::BAD_LENGTH);
        assert_eq!(SlotError::from_byte(0x81), SlotError::UserDefined(0x81));
        assert_eq!(SlotError::from_byte(0xC0), SlotError::UserDefined(0xC0));
        assert_eq!(SlotError::from_byte(0x80), SlotError::Unknown(0x80));
        assert_eq!(SlotError::from_byte(0xF1), SlotError::Unknown(0xF1));
    }

    #[test]
    fn result_reads_berror_by_command_status() {
        assert_eq!(
            Status::from_byte(0x80).result(SlotError::from_byte(0x03)),
            CommandResult::TimeExtension { multiplier: 3 }
        );
        assert_eq!(
            Status::from_byte(0x42).result(SlotError::from_byte(0xFE)),
            CommandResult::Failed(SlotError::IccMute)
        );
        assert_eq!(
            Status::from_byte(0x00).result(SlotError::from_byte(0x00)),
            CommandResult::Processed
        );
        assert_eq!(
            Status::from_byte(0xC0).result(SlotError::from_byte(0x12)),
            CommandResult::Reserved { error: 0x12 }
        );
    }
}
