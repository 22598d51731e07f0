//! The class byte CLA (ISO/IEC 7816-4:2020 §5.4.1).
//!
//! | CLA            | class                                   | chaining | SM      | channel       |
//! |----------------|-----------------------------------------|----------|---------|---------------|
//! | `000x xxxx`    | first interindustry (`00`-`1F`)         | b5       | b4 b3   | b2 b1 (0-3)   |
//! | `001x xxxx`    | reserved for future use (`20`-`3F`)     | -        | -       | -             |
//! | `01xx xxxx`    | further interindustry (`40`-`7F`)       | b5       | b6      | 4 + b4..b1    |
//! | `1xxx xxxx`    | proprietary (`80`-`FE`); `FF` is invalid | b5 (by convention) | - | -        |
//!
//! ISO defines the chaining bit b5 (`0x10`) for the interindustry classes; proprietary classes
//! such as the SmartCard-HSM's `80` use the same bit by a convention that Java Card and
//! GlobalPlatform share, so [`Cla::is_chained`] and [`Cla::with_chaining`] read and write b5 in
//! every class.

use core::fmt;

/// A class byte.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct Cla(pub u8);

/// What the secure-messaging bits of an interindustry CLA say (ISO/IEC 7816-4:2020 §5.4.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum SecureMessaging {
    /// No secure messaging, or no indication.
    NotIndicated,
    /// Proprietary secure-messaging format (first interindustry class, b4 b3 = 01).
    Proprietary,
    /// Secure messaging as in ISO/IEC 7816-4 clause 10, command header not processed
    /// (first interindustry b4 b3 = 10, or further interindustry b6 = 1).
    HeaderNotProcessed,
    /// Secure messaging as in ISO/IEC 7816-4 clause 10, command header authenticated
    /// (first interindustry b4 b3 = 11).
    HeaderAuthenticated,
}

impl Cla {
    /// The command-chaining bit b5: set on every command of a chain except the last
    /// (ISO/IEC 7816-4:2020 §5.3.3, §5.4.1).
    pub const CHAINING: u8 = 0x10;

    /// Whether this is a first interindustry class (`00`-`1F`), ISO/IEC 7816-4:2020 §5.4.1.
    pub const fn is_first_interindustry(self) -> bool {
        self.0 & 0xE0 == 0x00
    }

    /// Whether this is a further interindustry class (`40`-`7F`), ISO/IEC 7816-4:2020 §5.4.1.
    pub const fn is_further_interindustry(self) -> bool {
        self.0 & 0xC0 == 0x40
    }

    /// Whether this is a proprietary class (`80`-`FE`). `FF` is not a valid class byte: it is
    /// used by PPS (ISO/IEC 7816-3:2006 §9).
    pub const fn is_proprietary(self) -> bool {
        self.0 & 0x80 != 0 && self.0 != 0xFF
    }

    /// Whether the chaining bit b5 is set, i.e. this command is not the last of a chain
    /// (ISO/IEC 7816-4:2020 §5.3.3). Read in every class; see the module docs.
    pub const fn is_chained(self) -> bool {
        self.0 & Self::CHAINING != 0
    }

    /// This class byte with the chaining bit b5 set or cleared.
    pub const fn with_chaining(self, chained: bool) -> Cla {
        if chained {
            Cla(self.0 | Self::CHAINING)
        } else {
            Cla(self.0 & !Self::CHAINING)
        }
    }

    /// The logical channel number (ISO/IEC 7816-4:2020 §5.4.1): 0-3 from b2 b1 in a first
    /// interindustry class, 4-19 from b4..b1 in a further interindustry class; `None` for other
    /// classes, which do not code a channel in a way ISO defines.
    pub const fn logical_channel(self) -> Option<u8> {
        if self.is_first_interindustry() {
            Some(self.0 & 0x03)
        } else if self.is_further_interindustry() {
            Some(4 + (self.0 & 0x0F))
        } else {
            None
        }
    }

    /// The secure-messaging indication (ISO/IEC 7816-4:2020 §5.4.1); `None` for classes other than
    /// the interindustry ones.
    pub const fn secure_messaging(self) -> Option<SecureMessaging> {
        if self.is_first_interindustry() {
            Some(match (self.0 >> 2) & 0x03 {
                0 => SecureMessaging::NotIndicated,
                1 => SecureMessaging::Proprietary,
                2 => SecureMessaging::HeaderNotProcessed,
                _ => SecureMessaging::HeaderAuthenticated,
            })
        } else if self.is_further_interindustry() {
            Some(if self.0 & 0x20 != 0 {
                SecureMessaging::HeaderNotProcessed
            } else {
                SecureMessaging::NotIndicated
            })
        } else {
            None
        }
    }
}

impl From<u8> for Cla {
    fn from(byte: u8) -> Self {
        Cla(byte)
    }
}

impl From<Cla> for u8 {
    fn from(cla: Cla) -> Self {
        cla.0
    }
}

impl fmt::Display for Cla {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:02X}", self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn first_interindustry_fields() {
        // 0D = 000 0 11 01: not chained, SM header authenticated, channel 1.
        let cla = Cla(0x0D);
        assert!(cla.is_first_interindustry());
        assert!(!cla.is_chained());
        assert_eq!(
            cla.secure_messaging(),
            Some(SecureMessaging::HeaderAuthenticated)
        );
        assert_eq!(cla.logical_channel(), Some(1));
        assert_eq!(
            Cla(0x04).secure_messaging(),
            Some(SecureMessaging::Proprietary)
        );
        assert_eq!(
            Cla(0x08).secure_messaging(),
            Some(SecureMessaging::HeaderNotProcessed)
        );
    }

    #[test]
    fn further_interindustry_fields() {
        // 6F = 01 1 0 1111: SM, not chained, channel 4 + 15 = 19.
        let cla = Cla(0x6F);
        assert!(cla.is_further_interindustry());
        assert_eq!(cla.logical_channel(), Some(19));
        assert_eq!(
            cla.secure_messaging(),
            Some(SecureMessaging::HeaderNotProcessed)
        );
        assert_eq!(
            Cla(0x40).secure_messaging(),
            Some(SecureMessaging::NotIndicated)
        );
        assert_eq!(Cla(0x40).logical_channel(), Some(4));
    }

    #[test]
    fn chaining_bit_in_every_class() {
        assert_eq!(Cla(0x00).with_chaining(true), Cla(0x10));
        assert_eq!(Cla(0x80).with_chaining(true), Cla(0x90));
        assert_eq!(Cla(0x90).with_chaining(false), Cla(0x80));
        assert!(Cla(0x90).is_chained());
        assert!(Cla(0x90).is_proprietary());
        assert_eq!(Cla(0x90).logical_channel(), None);
        assert_eq!(Cla(0x90).secure_messaging(), None);
    }

    #[test]
    fn reserved_and_invalid_classes() {
        let rfu = Cla(0x2A);
        assert!(!rfu.is_first_interindustry() && !rfu.is_further_interindustry());
        assert!(!rfu.is_proprietary());
        assert!(!Cla(0xFF).is_proprietary());
    }
}
