//! What the bridge is told at build time: the boot policy, the exchange level, the card-line
//! parameters, the periods of its background work, and the USB identity that follows from them.
//!
//! # Why the boot policy is a configuration value
//!
//! The policy (require a card before USB attach, or attach at once as a reader) is a field of
//! [`Config`], and the firmware bakes it in as a `const` chosen by a cargo feature of the
//! *firmware* crate. A cargo feature of this library would be wrong: features unify across a
//! build, and the virtual rig and its tests run boards of both policies in one process. A
//! const or type parameter would give the same build-time choice at the price of a generic
//! parameter on every type for a difference of a few branches; with a `const` configuration the
//! compiler folds the unused branches away in the firmware anyway.

use tessera_ccid::{ClassDescriptorRepr, ExchangeLevel, Features, Protocols};

use crate::time::Duration;

/// When the bridge connects to USB, ISO card or not. Chosen at build time; visible in the USB
/// product string ([`BootPolicy::product`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum BootPolicy {
    /// The stock Nitrokey behaviour (hardware.md §B): power the card, wait for its ATR, read
    /// its serial number, and only then attach to USB. Without a card the device never
    /// attaches; activation is retried every [`Config::activation_retry`] so that a card
    /// inserted later still boots it. The USB serial string is the card's CHR.
    RequireCard,
    /// A reader: attach at once with the board's serial string, report the slot empty, find a
    /// card by periodic activation, and send `NotifySlotChange` when one is inserted or
    /// removed.
    Reader,
}

impl BootPolicy {
    /// The USB product string (iProduct): the stock "Nitrokey HSM", followed by the policy, so
    /// reader names that start with the stock name still match (GUESS: no host software
    /// compares the whole product string; libccid matches VID:PID).
    pub const fn product(self) -> &'static str {
        match self {
            BootPolicy::RequireCard => "Nitrokey HSM (require-card)",
            BootPolicy::Reader => "Nitrokey HSM (reader)",
        }
    }

    /// The policy's name as in the product string.
    pub const fn name(self) -> &'static str {
        match self {
            BootPolicy::RequireCard => "require-card",
            BootPolicy::Reader => "reader",
        }
    }
}

/// The level of the CCID exchange (CCID Rev 1.1 §6.1.4, `dwFeatures` bits 16..=18).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum Exchange {
    /// TPDU level, as the stock firmware: the host runs T=1 and each `XfrBlock` carries one
    /// block, which the bridge relays to the card, returning the card's block. For a card that
    /// offers only T=0, each `XfrBlock` is one T=0 TPDU (header and data) and the bridge runs the
    /// procedure bytes.
    Tpdu,
    /// Short and extended APDU level: each `XfrBlock` (or CCID chain of them, `wLevelParameter`)
    /// carries one command APDU; the bridge runs T=1 (or T=0) itself and returns the response
    /// APDU, chained over several `DataBlock`s when longer than the message size.
    ExtendedApdu,
}

/// One entry of the rate-cap table: when the ATR's TA1 is `offered`, propose `request` in the
/// PPS instead (ISO/IEC 7816-3 §9.2: PPS1 coded as TA1).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct RateCap {
    /// TA1 as the card's ATR offers it.
    pub offered: u8,
    /// The Fi/Di byte to propose instead.
    pub request: u8,
}

/// The stock board's cap for the SmartCard-HSM v4 card (hardware.md §A, issue #100): it offers
/// TA1 0x96 (F 512, D 32, 225 kbps at 3.6 MHz), which fails on the stock board; the stock WIP
/// firmware proposes 0x98 (F 512, D 12, 84 375 bps) instead. The v3 card's 0x18 (116 129 bps)
/// is not capped.
pub const STOCK_RATE_CAPS: &[RateCap] = &[RateCap {
    offered: 0x96,
    request: 0x98,
}];

/// The card line: clock, activation timing, PPS policy, IFSD.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct CardConfig {
    /// The card clock f in Hz: 3.6 MHz on the Nitrokey (72 MHz / 20, hardware.md §A).
    pub clock_hz: u32,
    /// How long RST stays low after CLK starts, in clock cycles: at least 400 (ISO/IEC 7816-3
    /// §6.2.2, tb). GUESS: 1 000 (278 µs at 3.6 MHz); real cards boot during the ATR delay.
    pub reset_low_cycles: u32,
    /// The longest wait from RST high to the first ATR character, in clock cycles: 40 000
    /// (ISO/IEC 7816-3 §6.2.2, tc, plus nothing: the standard's bound).
    pub atr_timeout_cycles: u32,
    /// How long the card stays unpowered in a cold restart (deactivation, then activation) so
    /// that VCC falls. GUESS: 10 ms; the Nitrokey drives VCC from GPIOs with 100 nF.
    pub off_time: Duration,
    /// TA1 values to replace in the PPS request (see [`RateCap`]).
    pub rate_caps: &'static [RateCap],
    /// The highest bit rate to propose: a TA1 (after [`CardConfig::rate_caps`]) above it is
    /// not proposed and the card stays at the initial rate (F 372, D 1). Also `dwMaxDataRate`.
    pub max_baud: u32,
    /// The IFSD announced with S(IFS request) after the PPS (ISO/IEC 7816-3 §11.4.2): 254,
    /// the most, which turns the card's 32-byte response chains into 254-byte ones
    /// (hardware.md §A); 0 to send none.
    pub ifsd: u8,
}

impl CardConfig {
    /// The Nitrokey HSM 2 board: 3.6 MHz, the stock rate caps, at most 116 129 bps, IFSD 254.
    pub const NITROKEY: CardConfig = CardConfig {
        clock_hz: 3_600_000,
        reset_low_cycles: 1_000,
        atr_timeout_cycles: 40_000,
        off_time: Duration::from_millis(10),
        rate_caps: STOCK_RATE_CAPS,
        max_baud: ClassDescriptorRepr::NITROKEY_HSM2_MAX_DATA_RATE,
        ifsd: 254,
    };

    /// The Fi/Di to propose for a card whose ATR has `ta1`, after the rate caps and the bit
    /// rate cap; `None`: no PPS (stay at F 372, D 1). ISO/IEC 7816-3 §9.2.
    pub fn proposal(&self, ta1: u8) -> Option<u8> {
        let request = self
            .rate_caps
            .iter()
            .find(|cap| cap.offered == ta1)
            .map_or(ta1, |cap| cap.request);
        let fi_di = tessera_iso7816_3::rate::FiDi::from_byte(request);
        let etu = fi_di.etu().ok()?;
        // The default rate needs no PPS: the stock firmware skips PPS for TA1 = 0x11 too.
        if etu.f() == 372 && etu.d() == 1 {
            return None;
        }
        if etu.baud(self.clock_hz) > self.max_baud {
            return None;
        }
        Some(request)
    }
}

/// How the USB serial string is read from the card at boot under
/// [`BootPolicy::RequireCard`] (hardware.md §B, §C).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct SerialConfig {
    /// How many times the whole read (SELECT, SELECT EF, READ BINARY) is tried when the card
    /// is busy or answers something unusable before falling back to the board serial. The
    /// card is cold-reset before each retry. 10.
    pub attempts: u8,
    /// Pause between two attempts (the card may be collecting garbage, issue #79). 500 ms.
    pub retry_delay: Duration,
    /// The longest one attempt may take, WTX included. 10 s.
    pub attempt_timeout: Duration,
}

impl SerialConfig {
    /// 10 attempts, 500 ms apart, each at most 10 s: the USB attach waits at most about
    /// 105 s for a card that keeps answering garbage (GUESS: a card collecting garbage after
    /// heavy use is busy for seconds, not minutes).
    pub const DEFAULT: SerialConfig = SerialConfig {
        attempts: 10,
        retry_delay: Duration::from_millis(500),
        attempt_timeout: Duration::from_secs(10),
    };
}

/// Everything the bridge needs to know at build time.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Config {
    /// Boot policy.
    pub policy: BootPolicy,
    /// CCID exchange level.
    pub exchange: Exchange,
    /// `dwMaxCCIDMessageLength`: the longest bulk message, header included, either way
    /// (CCID Rev 1.1 §5.1). 271 at TPDU level (stock: 261 + 10, one T=1 block per message).
    /// At APDU level longer APDUs travel as CCID chains of messages (§6.1.4).
    pub max_message_len: u32,
    /// The card line.
    pub card: CardConfig,
    /// How often an activation is tried while no card answers (boot under
    /// [`BootPolicy::RequireCard`], an empty slot under either policy). 1 s.
    pub activation_retry: Duration,
    /// How often a powered, idle T=1 card is asked for an S(IFS) response to see that it is
    /// still there (the board has no card-detect switch); `None` never. 1 s.
    pub presence_poll: Option<Duration>,
    /// How often a CCID time extension (`bStatus` 0x80) is sent while the card works on a
    /// command (hardware.md issue #78). 1 s: libccid waits at least 3 s for a response
    /// (`DEFAULT_COM_READ_TIMEOUT`) and restarts its wait on each time extension.
    pub time_extension_period: Duration,
    /// Reading the serial string at boot.
    pub serial: SerialConfig,
}

/// The length of the lent buffer that lets [`Exchange::Tpdu`] read the serial number exactly
/// as the stock firmware does (READ BINARY with Le = 1024, plus SW1 SW2): 1026 bytes. Any
/// buffer of at least [`MIN_BUFFER_LEN`] works; a smaller one reads the file in windows.
pub const TPDU_BUFFER_LEN: usize = 1026;

/// The length of the lent buffer that carries extended APDUs of 4096 data bytes each way at
/// [`Exchange::ExtendedApdu`] level: CLA INS P1 P2, Lc (3 bytes), 4096 bytes, Le (2 bytes).
pub const APDU_BUFFER_LEN: usize = 4 + 3 + 4096 + 2;

/// The smallest lent buffer: one T=1 block of 254 information bytes (259 bytes) plus room for
/// the READ BINARY header, rounded up.
pub const MIN_BUFFER_LEN: usize = 272;

impl Config {
    /// The stock identity and semantics (hardware.md §C, §D) with `policy`: TPDU level,
    /// `dwFeatures` 0x000104BA, 271-byte messages, the Nitrokey card line.
    pub const fn stock(policy: BootPolicy) -> Config {
        Config {
            policy,
            exchange: Exchange::Tpdu,
            max_message_len: 271,
            card: CardConfig::NITROKEY,
            activation_retry: Duration::from_secs(1),
            presence_poll: Some(Duration::from_secs(1)),
            time_extension_period: Duration::from_secs(1),
            serial: SerialConfig::DEFAULT,
        }
    }

    /// APDU level (short and extended) with `policy`: the bridge runs T=1 itself; 522-byte
    /// messages (10 + 512), longer APDUs in CCID chains. Lend it [`APDU_BUFFER_LEN`] bytes for
    /// 4096-byte APDUs.
    pub const fn apdu(policy: BootPolicy) -> Config {
        Config {
            exchange: Exchange::ExtendedApdu,
            max_message_len: 522,
            ..Config::stock(policy)
        }
    }

    /// The USB identity.
    pub const fn identity(&self) -> Identity {
        Identity {
            vendor_id: Identity::NITROKEY_VID,
            product_id: Identity::NITROKEY_HSM_PID,
            bcd_device: 0x0101,
            manufacturer: "Nitrokey",
            product: self.policy.product(),
        }
    }

    /// The CCID class descriptor (CCID Rev 1.1 §5.1): the stock Nitrokey HSM 2 values
    /// (hardware.md §C) with `dwMaxDataRate` from [`CardConfig::max_baud`] and
    /// `dwMaxCCIDMessageLength` from [`Config::max_message_len`]; at APDU level the extended
    /// APDU exchange level replaces TPDU and T=0 is offered next to T=1 (the bridge runs
    /// either).
    pub const fn class_descriptor(&self) -> ClassDescriptorRepr {
        let mut d = ClassDescriptorRepr::nitrokey_hsm2(self.card.max_baud);
        d.max_ccid_message_length = self.max_message_len;
        if let Exchange::ExtendedApdu = self.exchange {
            d.features = Features::from_bits_retain(
                d.features.bits() & !Features::EXCHANGE_LEVEL_MASK
                    | ExchangeLevel::ExtendedApdu.bits(),
            );
            d.protocols = Protocols(Protocols::T0 | Protocols::T1);
        }
        d
    }
}

/// The USB device identity (hardware.md §C): VID:PID 20a0:4230, bcdDevice 1.01, the strings.
/// The serial string is not here: it comes from the card (or the board) at attach time.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct Identity {
    /// idVendor.
    pub vendor_id: u16,
    /// idProduct.
    pub product_id: u16,
    /// bcdDevice.
    pub bcd_device: u16,
    /// iManufacturer string.
    pub manufacturer: &'static str,
    /// iProduct string.
    pub product: &'static str,
}

impl Identity {
    /// Nitrokey's USB vendor ID.
    pub const NITROKEY_VID: u16 = 0x20A0;
    /// The Nitrokey HSM (2) product ID, as libccid's `supported_readers.txt` lists it.
    pub const NITROKEY_HSM_PID: u16 = 0x4230;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stock_descriptor_is_the_nitrokey_one() {
        let d = Config::stock(BootPolicy::RequireCard).class_descriptor();
        assert_eq!(d, ClassDescriptorRepr::NITROKEY_HSM2);
        assert_eq!(d.features.bits(), 0x0001_04BA);
        assert_eq!(d.max_ccid_message_length, 271);
    }

    #[test]
    fn apdu_descriptor_has_the_extended_level() {
        let d = Config::apdu(BootPolicy::Reader).class_descriptor();
        assert_eq!(d.features.bits(), 0x0004_04BA);
        assert_eq!(d.features.exchange_level(), ExchangeLevel::ExtendedApdu);
        assert_eq!(d.max_ccid_message_length, 522);
        assert_eq!(d.protocols.0, 3);
    }

    #[test]
    fn rate_caps_apply() {
        let card = CardConfig::NITROKEY;
        assert_eq!(card.proposal(0x18), Some(0x18)); // v3: 116 129 bps
        assert_eq!(card.proposal(0x96), Some(0x98)); // v4: capped to 84 375 bps
        assert_eq!(card.proposal(0x11), None); // default rate
        assert_eq!(card.proposal(0x13), Some(0x13)); // 38 709 bps
        assert_eq!(card.proposal(0x95), Some(0x95)); // 112 500 bps, no table entry
        assert_eq!(card.proposal(0x97), None); // 450 kbps > cap
        assert_eq!(card.proposal(0x71), None); // reserved Fi
    }
}
