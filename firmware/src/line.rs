//! Card-line arithmetic for USART1 in smart-card mode: the card clock prescaler, the baud-rate
//! register from F and D, and the guard-time register from N.
//!
//! Pure functions, tested on the host. RM0008 (STM32F10x reference manual) section numbers refer
//! to the USART chapter, §27.

use tessera_iso7816_3::rate::Etu;

/// PCLK2, the clock of USART1 (APB2): 72 MHz (hardware.md §A).
pub const PCLK2_HZ: u32 = 72_000_000;

/// GTPR.PSC in smart-card mode: the card clock is PCLK2 / (2 × PSC) (RM0008 §27.6.7). The stock
/// firmware uses 10 on HW1-3: 72 MHz / 20 = 3.6 MHz.
pub const CARD_CLOCK_PSC: u8 = 10;

/// The card clock f on the CK pin (PA8): 3.6 MHz, the CCID descriptor's dwDefaultClock and
/// dwMaximumClock.
pub const CARD_CLOCK_HZ: u32 = card_clock_hz(PCLK2_HZ, CARD_CLOCK_PSC);

/// The card clock that GTPR.PSC = `psc` makes from `pclk_hz` (RM0008 §27.6.7: "the value given
/// in the register (5 significant bits) is multiplied by 2 to give the division factor"). PSC 0
/// is reserved; it is treated as 1.
pub const fn card_clock_hz(pclk_hz: u32, psc: u8) -> u32 {
    let psc = if psc == 0 { 1 } else { (psc & 0x1F) as u32 };
    pclk_hz / (2 * psc)
}

/// Why a rate cannot be programmed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(target_os = "none", derive(defmt::Format))]
pub enum LineError {
    /// The rate is faster than the USART can divide to (USARTDIV below 1, RM0008 §27.3.4).
    TooFast,
    /// The rate is slower than BRR can hold (above 0xFFFF).
    TooSlow,
}

/// The USART_BRR value for one etu of `etu` card clock cycles (F / D), with the card clock made
/// from `pclk_hz` by GTPR.PSC = `psc`.
///
/// RM0008 §27.3.4: baud = f_PCLK / (16 × USARTDIV) and BRR holds USARTDIV in 12.4 fixed point,
/// so BRR = f_PCLK / baud. With baud = f × D / F (ISO/IEC 7816-3:2006 §7.1) and f = f_PCLK /
/// (2 × PSC): BRR = 2 × PSC × F / D, rounded to the nearest. At 3.6 MHz this is exact for the
/// default F = 372, D = 1 (7440, 9677 bps) and for TA1 = 0x18 (620, 116 129 bps).
pub fn brr(etu: Etu, psc: u8) -> Result<u16, LineError> {
    let psc = if psc == 0 { 1 } else { u32::from(psc & 0x1F) };
    let numer = 2 * psc * u32::from(etu.f());
    let d = u32::from(etu.d());
    let value = (numer + d / 2) / d;
    if value < 16 {
        Err(LineError::TooFast)
    } else {
        u16::try_from(value).map_err(|_| LineError::TooSlow)
    }
}

/// The bit rate that `brr` gives from `pclk_hz`, rounded down (RM0008 §27.3.4).
pub const fn baud(pclk_hz: u32, brr: u16) -> u32 {
    if brr == 0 {
        0
    } else {
        pclk_hz / brr as u32
    }
}

/// The USART_GTPR.GT value for the extra guard time N (TC1, ISO/IEC 7816-3:2006 §8.3).
///
/// The driver sends each character when the previous one's TC flag rises. RM0008 §27.3.11: in
/// smart-card mode TC rises GT baud clocks after the 1.5 stop bits, and a transmission starts
/// half a bit after DR is written; so consecutive leading edges are 1 + 9 + 1.5 + GT + 0.5 =
/// 12 + GT etu apart. ISO asks for 12 + N etu (T=0) or 11 + N etu (T=1), and N = 255 means 12
/// (T=0) or 11 (T=1) etu: GT = N, and 0 for N = 255 (12 etu, one more than T=1 needs: the
/// USART cannot go below 1.5 stop bits with NACK detection).
///
/// With character repetition on (T=0), GT is at least 1: ISO/IEC 7816-3:2006 §7.3 has the
/// repeated character start at least 2 etu after the error signal, which ends at the latest at
/// 12 etu; 12 + 1 = 13 etu.
pub const fn guard_time(n: u8, character_repetition: bool) -> u8 {
    let gt = if n == 255 { 0 } else { n };
    if character_repetition && gt == 0 {
        1
    } else {
        gt
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn etu(f: u16, d: u8) -> Etu {
        Etu::new(f, d).unwrap()
    }

    #[test]
    fn card_clock_is_3_6_mhz_from_72_mhz_with_psc_10() {
        assert_eq!(CARD_CLOCK_HZ, 3_600_000);
        // HW4 (not supported here): PSC 5 on PCLK1 36 MHz gives the same clock.
        assert_eq!(card_clock_hz(36_000_000, 5), 3_600_000);
    }

    #[test]
    fn brr_for_the_default_rate_gives_9677_bps() {
        let value = brr(Etu::DEFAULT, CARD_CLOCK_PSC).unwrap();
        assert_eq!(value, 7440);
        assert_eq!(baud(PCLK2_HZ, value), 9677);
    }

    #[test]
    fn brr_for_the_sc_hsm_v3_ta1_0x18_gives_116129_bps() {
        let value = brr(etu(372, 12), CARD_CLOCK_PSC).unwrap();
        assert_eq!(value, 620);
        assert_eq!(baud(PCLK2_HZ, value), 116_129);
    }

    #[test]
    fn brr_for_the_sc_hsm_v4_rates_matches_hardware_md() {
        // TA1 0x96: F = 512, D = 32 (225 kbps); 0x98: F = 512, D = 12 (84 375 bps).
        assert_eq!(brr(etu(512, 32), CARD_CLOCK_PSC), Ok(320));
        assert_eq!(baud(PCLK2_HZ, 320), 225_000);
        assert_eq!(brr(etu(512, 12), CARD_CLOCK_PSC), Ok(853));
        assert_eq!(baud(PCLK2_HZ, 853), 84_407); // 84 375 exactly would need BRR 853.33
    }

    #[test]
    fn brr_rounds_to_the_nearest() {
        // 2 × 10 × 558 / 12 = 930 exactly; 2 × 10 × 372 / 20 = 372; 2 × 10 × 744 / 64 = 232.5.
        assert_eq!(brr(etu(558, 12), CARD_CLOCK_PSC), Ok(930));
        assert_eq!(brr(etu(744, 64), CARD_CLOCK_PSC), Ok(233));
    }

    #[test]
    fn brr_refuses_rates_the_usart_cannot_make() {
        assert_eq!(brr(etu(1, 64), CARD_CLOCK_PSC), Err(LineError::TooFast));
        assert_eq!(brr(etu(2048, 1), 31), Err(LineError::TooSlow));
        // Every ISO F and D pair at 3.6 MHz fits.
        for f in [
            372u16, 558, 744, 1116, 1488, 1860, 512, 768, 1024, 1536, 2048,
        ] {
            for d in [1u8, 2, 4, 8, 16, 32, 64, 12, 20] {
                assert!(brr(etu(f, d), CARD_CLOCK_PSC).is_ok(), "F={f} D={d}");
            }
        }
    }

    #[test]
    fn guard_time_is_n_and_zero_for_255() {
        assert_eq!(guard_time(0, false), 0);
        assert_eq!(guard_time(16, false), 16);
        assert_eq!(guard_time(254, false), 254);
        assert_eq!(guard_time(255, false), 0);
    }

    #[test]
    fn guard_time_is_at_least_one_etu_with_character_repetition() {
        assert_eq!(guard_time(0, true), 1);
        assert_eq!(guard_time(255, true), 1);
        assert_eq!(guard_time(3, true), 3);
    }
}
