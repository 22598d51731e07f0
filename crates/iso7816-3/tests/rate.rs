//! Rate and waiting-time arithmetic with the real numbers of the Nitrokey HSM 2 (3.6 MHz card
//! clock, hardware.md §A) and ISO/IEC 7816-3:2006 §7.1, §10.2, §11.2, §11.4.3.
#![allow(
    clippy::indexing_slicing,
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic
)]

use core::num::NonZeroU32;

use proptest::prelude::*;
use tessera_iso7816_3::rate::{self, Cycles, Etu, Fi, FiDi, LineParams};

const CLOCK: u32 = 3_600_000;

fn baud(ta1: u8) -> u32 {
    FiDi::from_byte(ta1).etu().unwrap().baud(CLOCK)
}

#[test]
fn default_rate_at_3_6_mhz() {
    assert_eq!(FiDi::DEFAULT.byte(), 0x11);
    assert_eq!(baud(0x11), 9677); // 3.6 MHz / 372, the ATR and CCID dwDataRate
    let timing = LineParams::new(CLOCK).timing().unwrap();
    assert_eq!(timing.baud(), 9677);
    // 1 etu = 372 cycles = 103.33 us, rounded up.
    assert_eq!(timing.etu().cycles(), Cycles::whole(372));
    assert_eq!(timing.nanos(timing.etu().cycles()), 103_334);
}

#[test]
fn smartcard_hsm_rates() {
    assert_eq!(baud(0x18), 116_129); // v3: F = 372, D = 12; CCID dwMaxDataRate
    assert_eq!(baud(0x96), 225_000); // v4: F = 512, D = 32
    assert_eq!(baud(0x98), 84_375); // the WIP firmware's substitute: F = 512, D = 12
}

#[test]
fn ta1_values_tried_on_v4_cards() {
    // hardware.md §A: the values a firmware commit recorded, with their rates.
    let tried = [
        (0x04, 77_419),  // worked (F = 372, D = 8)
        (0x11, 9_677),   // worked
        (0x28, 77_419),  // worked, "77.4 kbps" (F = 558, D = 12)
        (0xB9, 70_312),  // worked, "70.3 kbps" (F = 1024, D = 20)
        (0x98, 84_375),  // worked, "84.4 kbps"
        (0x99, 140_625), // failed, "140.6 kbps" (F = 512, D = 20)
        (0x95, 112_500), // failed, "112.5 kbps" (F = 512, D = 16)
        (0xA9, 93_750),  // failed, "93.75 kbps" (F = 768, D = 20)
        (0xD7, 112_500), // failed, "112.5 kbps" (F = 2048, D = 64)
        (0x46, 103_225), // failed, "103.2 kbps" (F = 1116, D = 32)
        (0x39, 96_774),  // HW3 only, "96.8 kbps" (F = 744, D = 20)
    ];
    for (ta1, bps) in tried {
        assert_eq!(baud(ta1), bps, "TA1 = {ta1:#04x}");
    }
}

#[test]
fn etu_is_exact() {
    // F = 558, D = 12: 46.5 cycles per etu.
    let etu = FiDi::from_byte(0x28).etu().unwrap();
    assert_eq!(etu.cycles(), Cycles::ratio(93, 2));
    assert_eq!(etu.times(10).ceil(), 465);
    // F = 372, D = 12: exactly 31 cycles.
    assert_eq!(
        FiDi::from_byte(0x18).etu().unwrap().cycles(),
        Cycles::whole(31)
    );
}

#[test]
fn bwt_for_the_hsm_is_about_1_6_s() {
    // BWI = 4 (no TB3 in the SmartCard-HSM ATR): 11 etu + 16 x 960 x 372 cycles.
    let etu = FiDi::from_byte(0x18).etu().unwrap();
    let bwt = rate::bwt(4, etu).unwrap();
    assert_eq!(bwt, Cycles::whole(11 * 31 + 16 * 960 * 372));
    let ns = bwt.nanos_ceil(NonZeroU32::new(CLOCK).unwrap());
    assert_eq!(ns, 1_587_294_723); // 5 714 261 cycles / 3.6 MHz, rounded up
    assert!((1_550_000_000..1_650_000_000).contains(&ns));
    assert_eq!(rate::bwt(10, etu), Err(rate::Error::ReservedBwi(10)));
}

#[test]
fn cwt_at_116_kbps_is_about_70_ms() {
    // CWI = 13: (11 + 8192) etu of 31 cycles.
    let etu = FiDi::from_byte(0x18).etu().unwrap();
    let cwt = rate::cwt(13, etu).unwrap();
    assert_eq!(cwt, Cycles::whole((11 + 8192) * 31));
    let ns = cwt.nanos_ceil(NonZeroU32::new(CLOCK).unwrap());
    assert_eq!(ns, 70_636_945);
    assert_eq!(cwt.micros_ceil(NonZeroU32::new(CLOCK).unwrap()), 70_637);
}

#[test]
fn guard_times() {
    let etu = Etu::DEFAULT;
    assert_eq!(rate::bgt(etu), Cycles::whole(22 * 372));
    assert_eq!(rate::cgt_t0(0, etu), Cycles::whole(12 * 372));
    assert_eq!(rate::cgt_t0(2, etu), Cycles::whole(14 * 372));
    // N = 255: the minimum, 12 etu for T=0 and 11 etu for T=1.
    assert_eq!(rate::cgt_t0(255, etu), Cycles::whole(12 * 372));
    assert_eq!(rate::cgt_t1(255, etu), Cycles::whole(11 * 372));
    assert_eq!(rate::cgt_t1(0, etu), Cycles::whole(12 * 372));
}

#[test]
fn t0_waiting_time() {
    // WI = 10 (default), Fi = 372: 3 571 200 cycles = 992 ms at 3.6 MHz.
    let wt = rate::wt(10, 372).unwrap();
    assert_eq!(wt, Cycles::whole(3_571_200));
    assert_eq!(wt.nanos_ceil(NonZeroU32::new(CLOCK).unwrap()), 992_000_000);
    assert_eq!(rate::wt(0, 372), Err(rate::Error::ZeroWi));
    // WT uses TA1's Fi even when the line runs at the default F.
    let mut line = LineParams::new(CLOCK);
    line.wt_fi = Fi::from_index(0x9); // F = 512
    let timing = line.timing().unwrap();
    assert_eq!(timing.wt(), Cycles::whole(10 * 960 * 512));
    assert_eq!(timing.baud(), 9677);
}

#[test]
fn timing_from_line_params() {
    let mut line = LineParams::new(CLOCK);
    line.fi_di = FiDi::from_byte(0x18);
    line.n = 255;
    let timing = line.timing().unwrap();
    assert_eq!(timing.baud(), 116_129);
    assert_eq!(timing.bwt(), rate::bwt(4, timing.etu()).unwrap());
    assert_eq!(timing.cwt(), rate::cwt(13, timing.etu()).unwrap());
    assert_eq!(timing.bgt(), Cycles::whole(22 * 31));
    assert_eq!(timing.cgt_t1(), Cycles::whole(11 * 31));
}

proptest! {
    #[test]
    fn nanos_round_up_by_less_than_one(numer in 0u64..1 << 40, denom in 1u64..1000, hz in 1u32..) {
        let c = Cycles::ratio(numer, denom);
        let ns = u128::from(c.nanos_ceil(NonZeroU32::new(hz).unwrap()));
        let exact_num = u128::from(c.numer()) * 1_000_000_000;
        let den = u128::from(c.denom()) * u128::from(hz);
        // ns >= exact, and ns - 1 < exact.
        prop_assert!(ns * den >= exact_num);
        prop_assert!(ns == 0 || (ns - 1) * den < exact_num);
    }

    #[test]
    fn any_ta1_byte_is_safe(ta1 in any::<u8>(), clock in any::<u32>(), n in any::<u8>(), wi in any::<u8>(), bwi in any::<u8>(), cwi in any::<u8>()) {
        let line = LineParams { clock_hz: clock, fi_di: FiDi::from_byte(ta1), wt_fi: FiDi::from_byte(ta1).fi(), n, wi, bwi, cwi };
        if let Ok(t) = line.timing() {
            let _ = (t.baud(), t.nanos(t.bwt()), t.nanos(t.cwt()), t.nanos(t.wt()), t.nanos(t.cgt_t0()), t.nanos(t.bgt()));
            prop_assert!(t.bwt() > t.etu().times(11));
        }
        prop_assert_eq!(FiDi::from_byte(ta1).byte(), ta1);
        prop_assert_eq!(FiDi::from_indices(FiDi::from_byte(ta1).fi(), FiDi::from_byte(ta1).di()), FiDi::from_byte(ta1));
    }
}
