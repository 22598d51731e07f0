//! The Smart Card Device Class descriptor (CCID Rev 1.1 §5.1, Table 5.1-1): 54 bytes that
//! follow the interface descriptor and tell the host what the reader can do.

use core::fmt;
use core::ops::{BitOr, BitOrAssign};

use crate::{bytes, Error, Result};

/// Byte ranges of the class descriptor (CCID Rev 1.1 §5.1, Table 5.1-1).
mod field {
    use core::ops::Range;

    pub const LENGTH: usize = 0;
    pub const DESCRIPTOR_TYPE: usize = 1;
    pub const BCD_CCID: Range<usize> = 2..4;
    pub const MAX_SLOT_INDEX: usize = 4;
    pub const VOLTAGE_SUPPORT: usize = 5;
    pub const PROTOCOLS: Range<usize> = 6..10;
    pub const DEFAULT_CLOCK: Range<usize> = 10..14;
    pub const MAXIMUM_CLOCK: Range<usize> = 14..18;
    pub const NUM_CLOCK_SUPPORTED: usize = 18;
    pub const DATA_RATE: Range<usize> = 19..23;
    pub const MAX_DATA_RATE: Range<usize> = 23..27;
    pub const NUM_DATA_RATES_SUPPORTED: usize = 27;
    pub const MAX_IFSD: Range<usize> = 28..32;
    pub const SYNCH_PROTOCOLS: Range<usize> = 32..36;
    pub const MECHANICAL: Range<usize> = 36..40;
    pub const FEATURES: Range<usize> = 40..44;
    pub const MAX_CCID_MESSAGE_LENGTH: Range<usize> = 44..48;
    pub const CLASS_GET_RESPONSE: usize = 48;
    pub const CLASS_ENVELOPE: usize = 49;
    pub const LCD_LAYOUT: Range<usize> = 50..52;
    pub const PIN_SUPPORT: usize = 52;
    pub const MAX_CCID_BUSY_SLOTS: usize = 53;
}

/// `dwFeatures` (CCID Rev 1.1 §5.1): named bits plus the exchange level in bits 16..=18.
/// Unknown bits are kept.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Default)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct Features(u32);

impl Features {
    /// No special characteristics (and character-level exchange).
    pub const NONE: Features = Features(0);
    /// 0x00000002: automatic parameter configuration based on ATR data.
    pub const AUTO_CONFIG_FROM_ATR: Features = Features(0x0000_0002);
    /// 0x00000004: automatic activation of the ICC on inserting.
    pub const AUTO_ACTIVATION: Features = Features(0x0000_0004);
    /// 0x00000008: automatic ICC voltage selection.
    pub const AUTO_VOLTAGE: Features = Features(0x0000_0008);
    /// 0x00000010: automatic ICC clock frequency change.
    pub const AUTO_CLOCK: Features = Features(0x0000_0010);
    /// 0x00000020: automatic baud rate change.
    pub const AUTO_BAUD: Features = Features(0x0000_0020);
    /// 0x00000040: automatic parameter negotiation made by the CCID.
    pub const AUTO_PARAMETER_NEGOTIATION: Features = Features(0x0000_0040);
    /// 0x00000080: automatic PPS made by the CCID according to the active parameters.
    pub const AUTO_PPS: Features = Features(0x0000_0080);
    /// 0x00000100: the CCID can set the ICC in clock stop mode.
    pub const CLOCK_STOP: Features = Features(0x0000_0100);
    /// 0x00000200: NAD values other than 00 accepted (T=1).
    pub const NAD_OTHER_THAN_ZERO: Features = Features(0x0000_0200);
    /// 0x00000400: automatic IFSD exchange as first exchange (T=1).
    pub const AUTO_IFSD: Features = Features(0x0000_0400);
    /// 0x00010000: TPDU-level exchanges.
    pub const TPDU_LEVEL: Features = Features(0x0001_0000);
    /// 0x00020000: short APDU-level exchanges.
    pub const SHORT_APDU_LEVEL: Features = Features(0x0002_0000);
    /// 0x00040000: short and extended APDU-level exchanges.
    pub const EXTENDED_APDU_LEVEL: Features = Features(0x0004_0000);
    /// 0x00100000: USB wake-up signalling supported on card insertion and removal.
    pub const USB_WAKE_UP: Features = Features(0x0010_0000);

    /// The bits that select the exchange level.
    pub const EXCHANGE_LEVEL_MASK: u32 = 0x0007_0000;

    /// Every bit named by CCID Rev 1.1.
    pub const KNOWN: Features = Features(0x0017_07FE);

    const NAMES: [(Features, &'static str); 14] = [
        (Features::AUTO_CONFIG_FROM_ATR, "AUTO_CONFIG_FROM_ATR"),
        (Features::AUTO_ACTIVATION, "AUTO_ACTIVATION"),
        (Features::AUTO_VOLTAGE, "AUTO_VOLTAGE"),
        (Features::AUTO_CLOCK, "AUTO_CLOCK"),
        (Features::AUTO_BAUD, "AUTO_BAUD"),
        (
            Features::AUTO_PARAMETER_NEGOTIATION,
            "AUTO_PARAMETER_NEGOTIATION",
        ),
        (Features::AUTO_PPS, "AUTO_PPS"),
        (Features::CLOCK_STOP, "CLOCK_STOP"),
        (Features::NAD_OTHER_THAN_ZERO, "NAD_OTHER_THAN_ZERO"),
        (Features::AUTO_IFSD, "AUTO_IFSD"),
        (Features::TPDU_LEVEL, "TPDU_LEVEL"),
        (Features::SHORT_APDU_LEVEL, "SHORT_APDU_LEVEL"),
        (Features::EXTENDED_APDU_LEVEL, "EXTENDED_APDU_LEVEL"),
        (Features::USB_WAKE_UP, "USB_WAKE_UP"),
    ];

    /// From raw bits, keeping every bit.
    pub const fn from_bits_retain(bits: u32) -> Self {
        Features(bits)
    }

    /// The raw bits.
    pub const fn bits(self) -> u32 {
        self.0
    }

    /// All bits of `other` are set.
    pub const fn contains(self, other: Features) -> bool {
        self.0 & other.0 == other.0
    }

    /// Both sets of bits.
    pub const fn union(self, other: Features) -> Features {
        Features(self.0 | other.0)
    }

    /// Without the bits of `other`.
    pub const fn difference(self, other: Features) -> Features {
        Features(self.0 & !other.0)
    }

    /// The bits CCID Rev 1.1 does not name.
    pub const fn unknown_bits(self) -> u32 {
        self.0 & !Self::KNOWN.0
    }

    /// The exchange level in bits 16..=18 (CCID Rev 1.1 §5.1, dwFeatures): none of them set
    /// is character level; exactly one may be set.
    pub const fn exchange_level(self) -> ExchangeLevel {
        match self.0 & Self::EXCHANGE_LEVEL_MASK {
            0 => ExchangeLevel::Character,
            0x0001_0000 => ExchangeLevel::Tpdu,
            0x0002_0000 => ExchangeLevel::ShortApdu,
            0x0004_0000 => ExchangeLevel::ExtendedApdu,
            bits => ExchangeLevel::Invalid(bits),
        }
    }

    /// With the exchange level replaced by `level`.
    pub const fn with_exchange_level(self, level: ExchangeLevel) -> Features {
        Features((self.0 & !Self::EXCHANGE_LEVEL_MASK) | (level.bits() & Self::EXCHANGE_LEVEL_MASK))
    }
}

impl BitOr for Features {
    type Output = Features;
    fn bitor(self, rhs: Features) -> Features {
        self.union(rhs)
    }
}

impl BitOrAssign for Features {
    fn bitor_assign(&mut self, rhs: Features) {
        *self = self.union(rhs);
    }
}

impl fmt::Debug for Features {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Features({:#010x}", self.0)?;
        let mut sep = ": ";
        for (flag, name) in Self::NAMES {
            if self.contains(flag) {
                write!(f, "{sep}{name}")?;
                sep = " | ";
            }
        }
        if self.unknown_bits() != 0 {
            write!(f, "{sep}{:#x}", self.unknown_bits())?;
        }
        f.write_str(")")
    }
}

/// The level at which the host and reader exchange data, from `dwFeatures`
/// (CCID Rev 1.1 §5.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum ExchangeLevel {
    /// No level bit: character level.
    Character,
    /// 0x00010000: TPDU level.
    Tpdu,
    /// 0x00020000: short APDU level.
    ShortApdu,
    /// 0x00040000: short and extended APDU level.
    ExtendedApdu,
    /// More than one level bit set (the masked bits are kept).
    Invalid(u32),
}

impl ExchangeLevel {
    /// The `dwFeatures` bits of this level.
    pub const fn bits(self) -> u32 {
        match self {
            ExchangeLevel::Character => 0,
            ExchangeLevel::Tpdu => 0x0001_0000,
            ExchangeLevel::ShortApdu => 0x0002_0000,
            ExchangeLevel::ExtendedApdu => 0x0004_0000,
            ExchangeLevel::Invalid(bits) => bits,
        }
    }
}

/// `bVoltageSupport` (CCID Rev 1.1 §5.1): which ICC voltages the reader can supply.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct VoltageSupport(pub u8);

impl VoltageSupport {
    /// 0x01: 5.0 V.
    pub const V5: u8 = 0x01;
    /// 0x02: 3.0 V.
    pub const V3: u8 = 0x02;
    /// 0x04: 1.8 V.
    pub const V1_8: u8 = 0x04;

    /// 5.0 V is supported.
    pub const fn volts5(self) -> bool {
        self.0 & Self::V5 != 0
    }
    /// 3.0 V is supported.
    pub const fn volts3(self) -> bool {
        self.0 & Self::V3 != 0
    }
    /// 1.8 V is supported.
    pub const fn volts1_8(self) -> bool {
        self.0 & Self::V1_8 != 0
    }
}

/// `dwProtocols` (CCID Rev 1.1 §5.1): one bit per supported protocol, bit 0 = T=0, bit 1 = T=1;
/// the other bits are reserved and kept.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct Protocols(pub u32);

impl Protocols {
    /// 0x0001: T=0.
    pub const T0: u32 = 0x0001;
    /// 0x0002: T=1.
    pub const T1: u32 = 0x0002;

    /// T=0 is supported.
    pub const fn t0(self) -> bool {
        self.0 & Self::T0 != 0
    }
    /// T=1 is supported.
    pub const fn t1(self) -> bool {
        self.0 & Self::T1 != 0
    }
}

/// A zero-copy view of the class descriptor (CCID Rev 1.1 §5.1, Table 5.1-1).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ClassDescriptor<T: AsRef<[u8]>> {
    buffer: T,
}

macro_rules! u8_getter {
    ($(#[$doc:meta])* $name:ident, $field:ident) => {
        $(#[$doc])*
        pub fn $name(&self) -> u8 {
            bytes::u8_at(self.buffer.as_ref(), field::$field)
        }
    };
}

macro_rules! u16_getter {
    ($(#[$doc:meta])* $name:ident, $field:ident) => {
        $(#[$doc])*
        pub fn $name(&self) -> u16 {
            bytes::le_u16(self.buffer.as_ref(), field::$field)
        }
    };
}

macro_rules! u32_getter {
    ($(#[$doc:meta])* $name:ident, $field:ident) => {
        $(#[$doc])*
        pub fn $name(&self) -> u32 {
            bytes::le_u32(self.buffer.as_ref(), field::$field)
        }
    };
}

impl<T: AsRef<[u8]>> ClassDescriptor<T> {
    /// Length of the descriptor.
    pub const LEN: usize = 0x36;
    /// `bDescriptorType` of the CCID class descriptor.
    pub const DESCRIPTOR_TYPE: u8 = 0x21;

    /// Wrap a buffer without checking it.
    pub const fn new_unchecked(buffer: T) -> Self {
        ClassDescriptor { buffer }
    }

    /// Wrap a buffer of at least 54 bytes.
    pub fn new_checked(buffer: T) -> Result<Self> {
        let v = Self::new_unchecked(buffer);
        v.check_len()?;
        Ok(v)
    }

    /// Check that the buffer holds 54 bytes (more are allowed: the rest of a configuration
    /// descriptor may follow).
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

    u8_getter!(
        /// `bLength` (0x36).
        length, LENGTH
    );
    u8_getter!(
        /// `bDescriptorType` (0x21).
        descriptor_type, DESCRIPTOR_TYPE
    );
    u16_getter!(
        /// `bcdCCID`: the specification release, BCD (0x0110 for 1.10).
        bcd_ccid, BCD_CCID
    );
    u8_getter!(
        /// `bMaxSlotIndex`: the highest slot number.
        max_slot_index, MAX_SLOT_INDEX
    );
    /// `bVoltageSupport`.
    pub fn voltage_support(&self) -> VoltageSupport {
        VoltageSupport(bytes::u8_at(self.buffer.as_ref(), field::VOLTAGE_SUPPORT))
    }
    /// `dwProtocols`.
    pub fn protocols(&self) -> Protocols {
        Protocols(bytes::le_u32(self.buffer.as_ref(), field::PROTOCOLS))
    }
    u32_getter!(
        /// `dwDefaultClock`, kHz.
        default_clock, DEFAULT_CLOCK
    );
    u32_getter!(
        /// `dwMaximumClock`, kHz.
        maximum_clock, MAXIMUM_CLOCK
    );
    u8_getter!(
        /// `bNumClockSupported`: 0 means only default and maximum.
        num_clock_supported, NUM_CLOCK_SUPPORTED
    );
    u32_getter!(
        /// `dwDataRate`, bps: the default ICC I/O data rate.
        data_rate, DATA_RATE
    );
    u32_getter!(
        /// `dwMaxDataRate`, bps.
        max_data_rate, MAX_DATA_RATE
    );
    u8_getter!(
        /// `bNumDataRatesSupported`: 0 means any rate between default and maximum.
        num_data_rates_supported, NUM_DATA_RATES_SUPPORTED
    );
    u32_getter!(
        /// `dwMaxIFSD`: the largest IFSD the reader accepts (T=1).
        max_ifsd, MAX_IFSD
    );
    u32_getter!(
        /// `dwSynchProtocols`: synchronous protocols (2-wire, 3-wire, I2C).
        synch_protocols, SYNCH_PROTOCOLS
    );
    u32_getter!(
        /// `dwMechanical`: mechanical characteristics (accept, eject, capture, lock).
        mechanical, MECHANICAL
    );
    /// `dwFeatures`.
    pub fn features(&self) -> Features {
        Features(bytes::le_u32(self.buffer.as_ref(), field::FEATURES))
    }
    u32_getter!(
        /// `dwMaxCCIDMessageLength`: the longest bulk message, header included.
        max_ccid_message_length, MAX_CCID_MESSAGE_LENGTH
    );
    u8_getter!(
        /// `bClassGetResponse`: the class byte for a reader-made GET RESPONSE (0xFF: echo).
        class_get_response, CLASS_GET_RESPONSE
    );
    u8_getter!(
        /// `bClassEnvelope`: the class byte for a reader-made ENVELOPE (0xFF: echo).
        class_envelope, CLASS_ENVELOPE
    );
    u16_getter!(
        /// `wLcdLayout`: lines (high byte) and characters per line (low byte); 0 = no LCD.
        lcd_layout, LCD_LAYOUT
    );
    u8_getter!(
        /// `bPINSupport`: 0x01 verification, 0x02 modification.
        pin_support, PIN_SUPPORT
    );
    u8_getter!(
        /// `bMaxCCIDBusySlots`: how many slots can be busy at once.
        max_ccid_busy_slots, MAX_CCID_BUSY_SLOTS
    );
}

macro_rules! setter {
    ($(#[$doc:meta])* $name:ident, u8, $field:ident) => {
        $(#[$doc])*
        pub fn $name(&mut self, value: u8) {
            bytes::set_u8(self.buffer.as_mut(), field::$field, value);
        }
    };
    ($(#[$doc:meta])* $name:ident, u16, $field:ident) => {
        $(#[$doc])*
        pub fn $name(&mut self, value: u16) {
            bytes::set_le_u16(self.buffer.as_mut(), field::$field, value);
        }
    };
    ($(#[$doc:meta])* $name:ident, u32, $field:ident) => {
        $(#[$doc])*
        pub fn $name(&mut self, value: u32) {
            bytes::set_le_u32(self.buffer.as_mut(), field::$field, value);
        }
    };
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> ClassDescriptor<T> {
    setter!(
        /// Set `bLength`.
        set_length, u8, LENGTH
    );
    setter!(
        /// Set `bDescriptorType`.
        set_descriptor_type, u8, DESCRIPTOR_TYPE
    );
    setter!(
        /// Set `bcdCCID`.
        set_bcd_ccid, u16, BCD_CCID
    );
    setter!(
        /// Set `bMaxSlotIndex`.
        set_max_slot_index, u8, MAX_SLOT_INDEX
    );
    setter!(
        /// Set `bVoltageSupport`.
        set_voltage_support, u8, VOLTAGE_SUPPORT
    );
    setter!(
        /// Set `dwProtocols`.
        set_protocols, u32, PROTOCOLS
    );
    setter!(
        /// Set `dwDefaultClock`.
        set_default_clock, u32, DEFAULT_CLOCK
    );
    setter!(
        /// Set `dwMaximumClock`.
        set_maximum_clock, u32, MAXIMUM_CLOCK
    );
    setter!(
        /// Set `bNumClockSupported`.
        set_num_clock_supported, u8, NUM_CLOCK_SUPPORTED
    );
    setter!(
        /// Set `dwDataRate`.
        set_data_rate, u32, DATA_RATE
    );
    setter!(
        /// Set `dwMaxDataRate`.
        set_max_data_rate, u32, MAX_DATA_RATE
    );
    setter!(
        /// Set `bNumDataRatesSupported`.
        set_num_data_rates_supported, u8, NUM_DATA_RATES_SUPPORTED
    );
    setter!(
        /// Set `dwMaxIFSD`.
        set_max_ifsd, u32, MAX_IFSD
    );
    setter!(
        /// Set `dwSynchProtocols`.
        set_synch_protocols, u32, SYNCH_PROTOCOLS
    );
    setter!(
        /// Set `dwMechanical`.
        set_mechanical, u32, MECHANICAL
    );
    setter!(
        /// Set `dwFeatures`.
        set_features, u32, FEATURES
    );
    setter!(
        /// Set `dwMaxCCIDMessageLength`.
        set_max_ccid_message_length, u32, MAX_CCID_MESSAGE_LENGTH
    );
    setter!(
        /// Set `bClassGetResponse`.
        set_class_get_response, u8, CLASS_GET_RESPONSE
    );
    setter!(
        /// Set `bClassEnvelope`.
        set_class_envelope, u8, CLASS_ENVELOPE
    );
    setter!(
        /// Set `wLcdLayout`.
        set_lcd_layout, u16, LCD_LAYOUT
    );
    setter!(
        /// Set `bPINSupport`.
        set_pin_support, u8, PIN_SUPPORT
    );
    setter!(
        /// Set `bMaxCCIDBusySlots`.
        set_max_ccid_busy_slots, u8, MAX_CCID_BUSY_SLOTS
    );
}

/// Every field of the class descriptor (CCID Rev 1.1 §5.1, Table 5.1-1); `bLength` (0x36) and
/// `bDescriptorType` (0x21) are implied.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct ClassDescriptorRepr {
    /// `bcdCCID` (0x0110 for Rev 1.1).
    pub bcd_ccid: u16,
    /// `bMaxSlotIndex`.
    pub max_slot_index: u8,
    /// `bVoltageSupport`.
    pub voltage_support: VoltageSupport,
    /// `dwProtocols`.
    pub protocols: Protocols,
    /// `dwDefaultClock`, kHz.
    pub default_clock: u32,
    /// `dwMaximumClock`, kHz.
    pub maximum_clock: u32,
    /// `bNumClockSupported`.
    pub num_clock_supported: u8,
    /// `dwDataRate`, bps.
    pub data_rate: u32,
    /// `dwMaxDataRate`, bps.
    pub max_data_rate: u32,
    /// `bNumDataRatesSupported`.
    pub num_data_rates_supported: u8,
    /// `dwMaxIFSD`.
    pub max_ifsd: u32,
    /// `dwSynchProtocols`.
    pub synch_protocols: u32,
    /// `dwMechanical`.
    pub mechanical: u32,
    /// `dwFeatures`.
    pub features: Features,
    /// `dwMaxCCIDMessageLength`, header included.
    pub max_ccid_message_length: u32,
    /// `bClassGetResponse`.
    pub class_get_response: u8,
    /// `bClassEnvelope`.
    pub class_envelope: u8,
    /// `wLcdLayout`.
    pub lcd_layout: u16,
    /// `bPINSupport`.
    pub pin_support: u8,
    /// `bMaxCCIDBusySlots`.
    pub max_ccid_busy_slots: u8,
}

impl ClassDescriptorRepr {
    /// `dwMaxDataRate` of the stock firmware up to tag `hsm-3` (and the Pro): 116 129 bps,
    /// 3.6 MHz x D=12 / F=372 for the SmartCard-HSM v3 ATR's TA1 = 0x18.
    pub const NITROKEY_HSM2_MAX_DATA_RATE: u32 = 116_129;
    /// `dwMaxDataRate` of the stock WIP branch for SmartCard-HSM v4 cards: 84 375 bps
    /// (TA1 0x98, F=512, D=12).
    pub const NITROKEY_HSM2_V4_CARD_MAX_DATA_RATE: u32 = 84_375;

    /// The stock Nitrokey HSM 2 class descriptor (hardware.md §C, from
    /// `CCIDHID_usb_desc.c`), with `dwMaxDataRate` as given: one 3 V slot, T=1 only, 3.6 MHz,
    /// 9677 bps default, IFSD 254, TPDU level with automatic ATR configuration, voltage, clock,
    /// baud, PPS and IFSD (`dwFeatures` 0x000104BA), 271-byte messages, one busy slot.
    pub const fn nitrokey_hsm2(max_data_rate: u32) -> Self {
        ClassDescriptorRepr {
            bcd_ccid: 0x0110,
            max_slot_index: 0,
            voltage_support: VoltageSupport(VoltageSupport::V3),
            protocols: Protocols(Protocols::T1),
            default_clock: 3600,
            maximum_clock: 3600,
            num_clock_supported: 0,
            data_rate: 9677,
            max_data_rate,
            num_data_rates_supported: 0,
            max_ifsd: 254,
            synch_protocols: 0,
            mechanical: 0,
            features: Features::AUTO_CONFIG_FROM_ATR
                .union(Features::AUTO_VOLTAGE)
                .union(Features::AUTO_CLOCK)
                .union(Features::AUTO_BAUD)
                .union(Features::AUTO_PPS)
                .union(Features::AUTO_IFSD)
                .union(Features::TPDU_LEVEL),
            max_ccid_message_length: 271,
            class_get_response: 0,
            class_envelope: 0,
            lcd_layout: 0,
            pin_support: 0,
            max_ccid_busy_slots: 1,
        }
    }

    /// The stock Nitrokey HSM 2 descriptor as released (tag `hsm-3`): `dwMaxDataRate` 116 129.
    pub const NITROKEY_HSM2: ClassDescriptorRepr =
        Self::nitrokey_hsm2(Self::NITROKEY_HSM2_MAX_DATA_RATE);

    /// The stock WIP descriptor for SmartCard-HSM v4 cards: `dwMaxDataRate` 84 375.
    pub const NITROKEY_HSM2_V4_CARD: ClassDescriptorRepr =
        Self::nitrokey_hsm2(Self::NITROKEY_HSM2_V4_CARD_MAX_DATA_RATE);

    /// Parse a view (CCID Rev 1.1 §5.1): 54 bytes, `bLength` 0x36, `bDescriptorType` 0x21.
    pub fn parse<T: AsRef<[u8]> + ?Sized>(d: &ClassDescriptor<&T>) -> Result<Self> {
        d.check_len()?;
        if usize::from(d.length()) != ClassDescriptor::<&[u8]>::LEN {
            return Err(Error::BadDescriptorLength);
        }
        if d.descriptor_type() != ClassDescriptor::<&[u8]>::DESCRIPTOR_TYPE {
            return Err(Error::BadDescriptorType);
        }
        Ok(ClassDescriptorRepr {
            bcd_ccid: d.bcd_ccid(),
            max_slot_index: d.max_slot_index(),
            voltage_support: d.voltage_support(),
            protocols: d.protocols(),
            default_clock: d.default_clock(),
            maximum_clock: d.maximum_clock(),
            num_clock_supported: d.num_clock_supported(),
            data_rate: d.data_rate(),
            max_data_rate: d.max_data_rate(),
            num_data_rates_supported: d.num_data_rates_supported(),
            max_ifsd: d.max_ifsd(),
            synch_protocols: d.synch_protocols(),
            mechanical: d.mechanical(),
            features: d.features(),
            max_ccid_message_length: d.max_ccid_message_length(),
            class_get_response: d.class_get_response(),
            class_envelope: d.class_envelope(),
            lcd_layout: d.lcd_layout(),
            pin_support: d.pin_support(),
            max_ccid_busy_slots: d.max_ccid_busy_slots(),
        })
    }

    /// Bytes `emit` writes: always 54.
    pub const fn buffer_len(&self) -> usize {
        ClassDescriptor::<&[u8]>::LEN
    }

    /// Write the 54 bytes into the start of `buf`; returns the length written.
    pub fn emit(&self, buf: &mut [u8]) -> Result<usize> {
        let len = self.buffer_len();
        let out = buf.get_mut(..len).ok_or(Error::BufferTooSmall)?;
        let mut d = ClassDescriptor::new_unchecked(out);
        d.set_length(0x36);
        d.set_descriptor_type(ClassDescriptor::<&[u8]>::DESCRIPTOR_TYPE);
        d.set_bcd_ccid(self.bcd_ccid);
        d.set_max_slot_index(self.max_slot_index);
        d.set_voltage_support(self.voltage_support.0);
        d.set_protocols(self.protocols.0);
        d.set_default_clock(self.default_clock);
        d.set_maximum_clock(self.maximum_clock);
        d.set_num_clock_supported(self.num_clock_supported);
        d.set_data_rate(self.data_rate);
        d.set_max_data_rate(self.max_data_rate);
        d.set_num_data_rates_supported(self.num_data_rates_supported);
        d.set_max_ifsd(self.max_ifsd);
        d.set_synch_protocols(self.synch_protocols);
        d.set_mechanical(self.mechanical);
        d.set_features(self.features.bits());
        d.set_max_ccid_message_length(self.max_ccid_message_length);
        d.set_class_get_response(self.class_get_response);
        d.set_class_envelope(self.class_envelope);
        d.set_lcd_layout(self.lcd_layout);
        d.set_pin_support(self.pin_support);
        d.set_max_ccid_busy_slots(self.max_ccid_busy_slots);
        Ok(len)
    }

    /// The 54 bytes.
    pub fn to_bytes(&self) -> [u8; 0x36] {
        let mut out = [0; 0x36];
        // Cannot fail: the array is exactly `buffer_len()` long.
        let _ = self.emit(&mut out);
        out
    }
}
