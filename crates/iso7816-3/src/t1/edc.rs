//! The epilogue field of a T=1 block: the error detection code, ISO/IEC 7816-3:2006 §11.4.4.
//!
//! - LRC (§11.4.4.1): one byte, the exclusive-or of every byte of the prologue and the
//!   information field. The default; the first TC for T=1 in the ATR selects CRC with bit 1.
//! - CRC (§11.4.4.2): two bytes, the frame check sequence of ISO/IEC 13239 (HDLC): generator
//!   polynomial x^16 + x^12 + x^5 + 1 processed least significant bit first (reflected form
//!   0x8408), register preset to FFFF, ones' complement of the register transmitted, low-order
//!   byte first. This is the catalogued CRC-16/ISO-HDLC (also X-25, CRC_B of ISO/IEC 14443-3):
//!   the check value of the ASCII bytes `123456789` is 0x906E, sent as `6E 90`.
//!
//! Interoperability note: libccid (`openct/checksum.c`) computes the same register without the
//! final complement and sends the high byte first. Cards that select CRC are rare (the
//! SmartCard-HSM uses LRC); this module follows ISO/IEC 13239 and says so.

use core::fmt;

/// The kind of error detection code in the epilogue of every block, ISO/IEC 7816-3:2006 §11.4.4.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum Edc {
    /// Longitudinal redundancy check, one byte (§11.4.4.1). The default.
    #[default]
    Lrc,
    /// Cyclic redundancy check, two bytes (§11.4.4.2, ISO/IEC 13239).
    Crc,
}

#[allow(clippy::len_without_is_empty)] // an epilogue is never empty
impl Edc {
    /// The number of bytes of the epilogue field: 1 for LRC, 2 for CRC.
    pub const fn len(self) -> usize {
        match self {
            Edc::Lrc => 1,
            Edc::Crc => 2,
        }
    }

    /// The kind selected by the first TC for T=1 of the ATR (bit 1: 0 = LRC, 1 = CRC),
    /// ISO/IEC 7816-3:2006 §11.4.4. Bits 8 to 2 are RFU and ignored here.
    pub const fn from_tc(tc: u8) -> Edc {
        if tc & 0x01 == 0 {
            Edc::Lrc
        } else {
            Edc::Crc
        }
    }

    /// The epilogue bytes for `data` (prologue and information field). Only the first
    /// [`Edc::len`] bytes of the result are meaningful.
    pub fn compute(self, data: &[u8]) -> [u8; 2] {
        match self {
            Edc::Lrc => [lrc(data), 0],
            Edc::Crc => crc(data).to_le_bytes(),
        }
    }

    /// Whether `epilogue` is the right code for `data`. False when `epilogue` has the wrong
    /// length.
    pub fn verify(self, data: &[u8], epilogue: &[u8]) -> bool {
        let expected = self.compute(data);
        expected.get(..self.len()) == Some(epilogue)
    }
}

impl fmt::Display for Edc {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Edc::Lrc => "LRC",
            Edc::Crc => "CRC",
        })
    }
}

/// The LRC of `data`: the exclusive-or of all bytes, ISO/IEC 7816-3:2006 §11.4.4.1.
pub fn lrc(data: &[u8]) -> u8 {
    data.iter().fold(0, |acc, byte| acc ^ byte)
}

/// The CRC of `data` as ISO/IEC 13239 defines the 16-bit frame check sequence
/// (ISO/IEC 7816-3:2006 §11.4.4.2): reflected polynomial 0x8408, preset FFFF, complemented.
/// Transmit it with [`u16::to_le_bytes`] (low-order byte first).
///
/// Bit by bit, without a table: the firmware's flash matters more than the CRC's speed (a
/// full block takes about 20 000 cycles of a Cortex-M3, against some 25 ms on the line at
/// 116 kbit/s), and the SmartCard-HSM uses LRC anyway.
pub fn crc(data: &[u8]) -> u16 {
    let mut reg: u16 = 0xFFFF;
    for &byte in data {
        reg ^= u16::from(byte);
        for _ in 0..8 {
            let carry = reg & 1;
            reg >>= 1;
            if carry == 1 {
                reg ^= 0x8408;
            }
        }
    }
    !reg
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn crc_check_value_of_catalogue() {
        // CRC-16/ISO-HDLC check value.
        assert_eq!(crc(b"123456789"), 0x906E);
        assert_eq!(Edc::Crc.compute(b"123456789"), [0x6E, 0x90]);
    }

    #[test]
    fn crc_residue_over_data_and_fcs() {
        // ISO/IEC 13239: running the register over data followed by its FCS leaves the good
        // residue F0B8 (before the final complement), i.e. crc() == !F0B8.
        let mut frame = *b"ISO/IEC 7816-3\0\0";
        let fcs = crc(&frame[..14]).to_le_bytes();
        frame[14..].copy_from_slice(&fcs);
        assert_eq!(crc(&frame), !0xF0B8);
    }

    /// A table-driven CRC (one table lookup per byte), the textbook alternative, computed
    /// independently of [`crc`].
    fn crc_by_table(data: &[u8]) -> u16 {
        let table: [u16; 256] = core::array::from_fn(|byte| {
            (0..8).fold(byte as u16, |reg, _| {
                if reg & 1 == 1 {
                    (reg >> 1) ^ 0x8408
                } else {
                    reg >> 1
                }
            })
        });
        !data.iter().fold(0xFFFF_u16, |reg, &byte| {
            (reg >> 8) ^ table[usize::from((reg as u8) ^ byte)]
        })
    }

    #[test]
    fn crc_matches_table_driven_definition() {
        let data: [u8; 256] = core::array::from_fn(|i| (i as u8).wrapping_mul(37) ^ 0x5A);
        for n in 0..data.len() {
            assert_eq!(crc(&data[..n]), crc_by_table(&data[..n]));
        }
    }

    #[test]
    fn crc_b_vector_of_iso14443() {
        // ISO/IEC 14443-3 Annex B (CRC_B, the same ISO/IEC 13239 FCS): 00 00 00 -> CC C6.
        assert_eq!(Edc::Crc.compute(&[0, 0, 0]), [0xCC, 0xC6]);
    }

    #[test]
    fn lrc_of_select_block() {
        assert_eq!(lrc(&[0x00, 0x00, 0x05, 0x00, 0xA4, 0x04, 0x00, 0x00]), 0xA5);
        assert!(Edc::Lrc.verify(&[0x00, 0xC1, 0x01, 0xFE], &[0x3E]));
        assert!(!Edc::Lrc.verify(&[0x00, 0xC1, 0x01, 0xFE], &[0x3F]));
        assert!(!Edc::Lrc.verify(&[0x00, 0xC1, 0x01, 0xFE], &[0x3E, 0x00]));
    }

    #[test]
    fn edc_from_tc() {
        assert_eq!(Edc::from_tc(0x00), Edc::Lrc);
        assert_eq!(Edc::from_tc(0x01), Edc::Crc);
        assert_eq!(Edc::from_tc(0xFE), Edc::Lrc);
    }
}
