//! Transmission parameters: the Fi/Di tables, the baud rate and etu arithmetic, and the waiting
//! times, all in exact integer arithmetic.
//!
//! ISO/IEC 7816-3:2006 §7.1 defines the elementary time unit: 1 etu = F / (D × f) seconds, i.e.
//! F / D card clock cycles, where F and D come from Table 7 and Table 8 (the TA1 byte of the ATR,
//! or PPS1). The waiting times are multiples of the etu or of the clock cycle:
//!
//! | time | value | clause |
//! |---|---|---|
//! | CGT (T=0) | 12 etu + N etu; N = 255 means 12 etu | §8.3 (TC1), §10.2 |
//! | CGT (T=1) | 12 etu + N etu; N = 255 means 11 etu | §8.3 (TC1), §11.2 |
//! | BGT (T=1) | 22 etu | §11.2 |
//! | WT (T=0) | WI × 960 × Fi clock cycles | §10.2 |
//! | CWT (T=1) | (11 + 2^CWI) etu | §11.4.3 |
//! | BWT (T=1) | 11 etu + 2^BWI × 960 × 372 clock cycles (Fd = 372) | §11.4.3 |
//!
//! Durations are [`Cycles`]: an exact fraction of clock cycles (the etu is F/D cycles, which is
//! not always an integer: 558/12 = 46.5). They convert to whole cycles or to nanoseconds for a
//! given clock frequency, rounded **up**, so a deadline armed from them is never shorter than
//! the standard allows. [`LineParams`] collects what a driver knows after the ATR and PPS (clock,
//! FiDi, N, WI, BWI, CWI) and validates it into a [`Timing`] that answers every question above.
//!
//! What it does not know: which clock the driver really runs, whether the card accepted a
//! PPS (the caller passes the F and D in use), and the T=1 waiting-time extension (WTX), which
//! belongs to the T=1 engine.

use core::fmt;
use core::num::NonZeroU32;

/// An error from the rate arithmetic: a reserved table index or an unusable parameter.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum Error {
    /// The Fi index (high nibble of TA1 or PPS1) is reserved for future use in Table 7
    /// (values 7, 8, E and F).
    ReservedFi(u8),
    /// The Di index (low nibble of TA1 or PPS1) is reserved for future use in Table 8
    /// (values 0 and A to F).
    ReservedDi(u8),
    /// BWI is above 9; ISO/IEC 7816-3:2006 §11.4.3 reserves A to F.
    ReservedBwi(u8),
    /// CWI is above 15 (it is a 4-bit field, §11.4.3).
    InvalidCwi(u8),
    /// WI is 0, which ISO/IEC 7816-3:2006 §10.2 reserves (WT would be zero).
    ZeroWi,
    /// The clock frequency is 0 Hz.
    ZeroClock,
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::ReservedFi(i) => write!(f, "Fi index {i:#x} is reserved (ISO 7816-3 Table 7)"),
            Error::ReservedDi(i) => write!(f, "Di index {i:#x} is reserved (ISO 7816-3 Table 8)"),
            Error::ReservedBwi(b) => write!(f, "BWI {b} is reserved (ISO 7816-3 §11.4.3)"),
            Error::InvalidCwi(c) => write!(f, "CWI {c} does not fit in 4 bits"),
            Error::ZeroWi => f.write_str("WI 0 is reserved (ISO 7816-3 §10.2)"),
            Error::ZeroClock => f.write_str("clock frequency is 0 Hz"),
        }
    }
}

impl core::error::Error for Error {}

/// Fd: the default clock rate conversion integer, ISO/IEC 7816-3:2006 §8.1 (Table 7, index 1).
pub const FD: u16 = 372;
/// Dd: the default baud rate adjustment integer, ISO/IEC 7816-3:2006 §8.1 (Table 8, index 1).
pub const DD: u8 = 1;
/// BGT in etu, ISO/IEC 7816-3:2006 §11.2.
pub const BGT_ETU: u64 = 22;
/// Default WI when TC2 is absent, ISO/IEC 7816-3:2006 §10.2.
pub const DEFAULT_WI: u8 = 10;
/// Default BWI when the T=1 TB is absent, ISO/IEC 7816-3:2006 §11.4.3.
pub const DEFAULT_BWI: u8 = 4;
/// Default CWI when the T=1 TB is absent, ISO/IEC 7816-3:2006 §11.4.3.
pub const DEFAULT_CWI: u8 = 13;

/// The Fi index: the high nibble of TA1 (or PPS1), ISO/IEC 7816-3:2006 §8.3, Table 7.
///
/// Any nibble is kept; the reserved ones (7, 8, E, F) are reported as
/// [`Error::ReservedFi`] only when F or f(max) is asked for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct Fi(u8);

impl Fi {
    /// Fi from a 4-bit index (the upper bits are ignored).
    pub const fn from_index(index: u8) -> Self {
        Fi(index & 0x0F)
    }

    /// The 4-bit index.
    pub const fn index(self) -> u8 {
        self.0
    }

    /// (F, f(max) in Hz) for this index, ISO/IEC 7816-3:2006 Table 7.
    const fn entry(self) -> Option<(u16, u32)> {
        match self.0 {
            0x0 => Some((372, 4_000_000)),
            0x1 => Some((372, 5_000_000)),
            0x2 => Some((558, 6_000_000)),
            0x3 => Some((744, 8_000_000)),
            0x4 => Some((1116, 12_000_000)),
            0x5 => Some((1488, 16_000_000)),
            0x6 => Some((1860, 20_000_000)),
            0x9 => Some((512, 5_000_000)),
            0xA => Some((768, 7_500_000)),
            0xB => Some((1024, 10_000_000)),
            0xC => Some((1536, 15_000_000)),
            0xD => Some((2048, 20_000_000)),
            _ => None,
        }
    }

    /// F, the clock rate conversion integer (ISO/IEC 7816-3:2006 Table 7).
    pub const fn f(self) -> Result<u16, Error> {
        match self.entry() {
            Some((f, _)) => Ok(f),
            None => Err(Error::ReservedFi(self.0)),
        }
    }

    /// f(max), the highest clock frequency the card accepts with this Fi, in Hz
    /// (ISO/IEC 7816-3:2006 Table 7).
    pub const fn fmax_hz(self) -> Result<u32, Error> {
        match self.entry() {
            Some((_, fmax)) => Ok(fmax),
            None => Err(Error::ReservedFi(self.0)),
        }
    }
}

/// The Di index: the low nibble of TA1 (or PPS1), ISO/IEC 7816-3:2006 §8.3, Table 8.
///
/// Any nibble is kept; the reserved ones (0, A to F) are reported as [`Error::ReservedDi`]
/// only when D is asked for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct Di(u8);

impl Di {
    /// Di from a 4-bit index (the upper bits are ignored).
    pub const fn from_index(index: u8) -> Self {
        Di(index & 0x0F)
    }

    /// The 4-bit index.
    pub const fn index(self) -> u8 {
        self.0
    }

    /// D, the baud rate adjustment integer (ISO/IEC 7816-3:2006 Table 8).
    pub const fn d(self) -> Result<u8, Error> {
        match self.0 {
            0x1 => Ok(1),
            0x2 => Ok(2),
            0x3 => Ok(4),
            0x4 => Ok(8),
            0x5 => Ok(16),
            0x6 => Ok(32),
            0x7 => Ok(64),
            0x8 => Ok(12),
            0x9 => Ok(20),
            other => Err(Error::ReservedDi(other)),
        }
    }
}

/// The byte that carries Fi and Di: TA1 in the ATR (ISO/IEC 7816-3:2006 §8.3) and PPS1 in a
/// PPS exchange (§9.2). High nibble Fi, low nibble Di.
///
/// Every byte value is kept, so a reserved index round-trips; it becomes an error only when
/// F or D is needed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct FiDi(u8);

impl FiDi {
    /// The default when TA1 is absent: Fi index 1 (F = 372, f(max) = 5 MHz), Di index 1
    /// (D = 1), ISO/IEC 7816-3:2006 §8.3.
    pub const DEFAULT: FiDi = FiDi(0x11);

    /// From the TA1 (or PPS1) byte.
    pub const fn from_byte(byte: u8) -> Self {
        FiDi(byte)
    }

    /// From the two indices.
    pub const fn from_indices(fi: Fi, di: Di) -> Self {
        FiDi((fi.index() << 4) | di.index())
    }

    /// The TA1 (or PPS1) byte.
    pub const fn byte(self) -> u8 {
        self.0
    }

    /// The Fi index (high nibble).
    pub const fn fi(self) -> Fi {
        Fi::from_index(self.0 >> 4)
    }

    /// The Di index (low nibble).
    pub const fn di(self) -> Di {
        Di::from_index(self.0)
    }

    /// F (Table 7).
    pub const fn f(self) -> Result<u16, Error> {
        self.fi().f()
    }

    /// D (Table 8).
    pub const fn d(self) -> Result<u8, Error> {
        self.di().d()
    }

    /// The etu for this F and D, ISO/IEC 7816-3:2006 §7.1.
    pub const fn etu(self) -> Result<Etu, Error> {
        match (self.f(), self.d()) {
            (Ok(f), Ok(d)) => Ok(Etu { f, d }),
            (Err(e), _) | (_, Err(e)) => Err(e),
        }
    }
}

impl Default for FiDi {
    fn default() -> Self {
        FiDi::DEFAULT
    }
}

impl From<u8> for FiDi {
    fn from(byte: u8) -> Self {
        FiDi(byte)
    }
}

impl From<FiDi> for u8 {
    fn from(fi_di: FiDi) -> Self {
        fi_di.0
    }
}

/// An elementary time unit: F / D clock cycles, ISO/IEC 7816-3:2006 §7.1. Holds valid F and D
/// only (build it with [`FiDi::etu`] or [`Etu::new`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct Etu {
    f: u16,
    d: u8,
}

impl Etu {
    /// The etu of the default Fd = 372, Dd = 1 (the ATR runs at this rate, §8.1).
    pub const DEFAULT: Etu = Etu { f: FD, d: DD };

    /// From F and D values (not indices). Returns `None` if either is zero; any other pair is
    /// accepted so a driver can model a non-standard divisor.
    pub const fn new(f: u16, d: u8) -> Option<Self> {
        if f == 0 || d == 0 {
            None
        } else {
            Some(Etu { f, d })
        }
    }

    /// F.
    pub const fn f(self) -> u16 {
        self.f
    }

    /// D.
    pub const fn d(self) -> u8 {
        self.d
    }

    /// One etu in clock cycles: exactly F / D.
    pub const fn cycles(self) -> Cycles {
        Cycles::ratio(self.f as u64, self.d as u64)
    }

    /// `n` etu in clock cycles: exactly n × F / D.
    pub const fn times(self, n: u64) -> Cycles {
        Cycles::ratio(n.saturating_mul(self.f as u64), self.d as u64)
    }

    /// The bit rate f × D / F in bits per second, rounded down (ISO/IEC 7816-3:2006 §7.1:
    /// 1 etu = F / (D × f) s). E.g. 3.6 MHz with TA1 = 0x18 (F = 372, D = 12) gives 116 129.
    pub const fn baud(self, clock_hz: u32) -> u32 {
        let bps = (clock_hz as u64).saturating_mul(self.d as u64) / (self.f as u64);
        if bps > u32::MAX as u64 {
            u32::MAX
        } else {
            bps as u32
        }
    }
}

/// An exact duration in card clock cycles, kept as a reduced fraction `numer / denom`.
///
/// The etu is F / D cycles, which need not be an integer (F = 558, D = 12 gives 46.5), so
/// etu-based times are fractions. [`Cycles::ceil`] and [`Cycles::nanos_ceil`] round **up**: a
/// deadline armed from them is never shorter than the exact time. The arithmetic saturates at
/// `u64::MAX` instead of overflowing; no value built from ISO parameters comes near it (the
/// longest, WT with WI = 255 and Fi = 2048, is about 5 × 10⁸ cycles).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct Cycles {
    numer: u64,
    denom: u64,
}

const fn gcd(mut a: u64, mut b: u64) -> u64 {
    while b != 0 {
        let r = a % b;
        a = b;
        b = r;
    }
    a
}

impl Cycles {
    /// Zero cycles.
    pub const ZERO: Cycles = Cycles { numer: 0, denom: 1 };

    /// A whole number of clock cycles.
    pub const fn whole(cycles: u64) -> Self {
        Cycles {
            numer: cycles,
            denom: 1,
        }
    }

    /// `numer / denom` cycles, reduced. A zero denominator is treated as 1.
    pub const fn ratio(numer: u64, denom: u64) -> Self {
        let denom = if denom == 0 { 1 } else { denom };
        let g = gcd(numer, denom);
        // g >= 1 because denom >= 1.
        Cycles {
            numer: numer / g,
            denom: denom / g,
        }
    }

    /// The numerator of the reduced fraction.
    pub const fn numer(self) -> u64 {
        self.numer
    }

    /// The denominator of the reduced fraction (at least 1).
    pub const fn denom(self) -> u64 {
        self.denom
    }

    /// Whole clock cycles, rounded up.
    pub const fn ceil(self) -> u64 {
        let q = self.numer / self.denom;
        if self.numer % self.denom == 0 {
            q
        } else {
            q.saturating_add(1)
        }
    }

    /// Whole clock cycles, rounded down.
    pub const fn floor(self) -> u64 {
        self.numer / self.denom
    }

    /// The sum, saturating.
    pub const fn saturating_add(self, rhs: Cycles) -> Cycles {
        let g = gcd(self.denom, rhs.denom);
        let l = self.denom / g;
        let denom = l.saturating_mul(rhs.denom);
        let a = self.numer.saturating_mul(rhs.denom / g);
        let b = rhs.numer.saturating_mul(l);
        Cycles::ratio(a.saturating_add(b), denom)
    }

    /// The product with an integer, saturating.
    pub const fn saturating_mul(self, n: u64) -> Cycles {
        Cycles::ratio(self.numer.saturating_mul(n), self.denom)
    }

    /// The duration in nanoseconds at a clock of `clock_hz`, rounded **up**; saturates at
    /// `u64::MAX` (which needs a clock far below the 1 MHz minimum of ISO/IEC 7816-3 §5.2.3).
    pub const fn nanos_ceil(self, clock_hz: NonZeroU32) -> u64 {
        let num = (self.numer as u128) * 1_000_000_000;
        let den = (self.denom as u128) * (clock_hz.get() as u128);
        // den >= 1: denom >= 1 and the clock is non-zero.
        let q = num / den;
        let q = if num % den == 0 { q } else { q + 1 };
        if q > u64::MAX as u128 {
            u64::MAX
        } else {
            q as u64
        }
    }

    /// The duration in microseconds at a clock of `clock_hz`, rounded up.
    pub const fn micros_ceil(self, clock_hz: NonZeroU32) -> u64 {
        let ns = self.nanos_ceil(clock_hz);
        let us = ns / 1000;
        if ns % 1000 == 0 {
            us
        } else {
            us + 1
        }
    }
}

impl PartialOrd for Cycles {
    fn partial_cmp(&self, other: &Self) -> Option<core::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for Cycles {
    fn cmp(&self, other: &Self) -> core::cmp::Ordering {
        let a = u128::from(self.numer) * u128::from(other.denom);
        let b = u128::from(other.numer) * u128::from(self.denom);
        a.cmp(&b)
    }
}

/// CGT for T=0: 12 etu + N etu, where N = 255 means the minimum of 12 etu.
/// ISO/IEC 7816-3:2006 §8.3 (TC1) and §10.2.
///
/// §8.3 defines the extra time as R × N / f with R = F / D when T=15 is absent from the ATR,
/// and R = Fi / Di when it is present; this function takes the R etu as `etu` (they coincide
/// unless the card runs in specific mode with implicit values).
pub const fn cgt_t0(n: u8, etu: Etu) -> Cycles {
    if n == 255 {
        etu.times(12)
    } else {
        etu.times(12 + n as u64)
    }
}

/// CGT for T=1: 12 etu + N etu, where N = 255 means the minimum of 11 etu.
/// ISO/IEC 7816-3:2006 §8.3 (TC1) and §11.2. See [`cgt_t0`] for the R factor.
pub const fn cgt_t1(n: u8, etu: Etu) -> Cycles {
    if n == 255 {
        etu.times(11)
    } else {
        etu.times(12 + n as u64)
    }
}

/// BGT for T=1: 22 etu, ISO/IEC 7816-3:2006 §11.2.
pub const fn bgt(etu: Etu) -> Cycles {
    etu.times(BGT_ETU)
}

/// WT for T=0: WI × 960 × Fi clock cycles, ISO/IEC 7816-3:2006 §10.2. `fi` is F from TA1
/// (Fi), not necessarily the F in use.
pub const fn wt(wi: u8, fi: u16) -> Result<Cycles, Error> {
    if wi == 0 {
        return Err(Error::ZeroWi);
    }
    Ok(Cycles::whole((wi as u64) * 960 * (fi as u64)))
}

/// CWT for T=1: (11 + 2^CWI) etu, ISO/IEC 7816-3:2006 §11.4.3.
pub const fn cwt(cwi: u8, etu: Etu) -> Result<Cycles, Error> {
    if cwi > 15 {
        return Err(Error::InvalidCwi(cwi));
    }
    Ok(etu.times(11 + (1u64 << cwi)))
}

/// BWT for T=1: 11 etu + 2^BWI × 960 × Fd clock cycles with Fd = 372,
/// ISO/IEC 7816-3:2006 §11.4.3. BWI above 9 is reserved.
pub const fn bwt(bwi: u8, etu: Etu) -> Result<Cycles, Error> {
    if bwi > 9 {
        return Err(Error::ReservedBwi(bwi));
    }
    let block = Cycles::whole((1u64 << bwi) * 960 * (FD as u64));
    Ok(etu.times(11).saturating_add(block))
}

/// What a driver knows about the line after the ATR and PPS: the inputs of every waiting time.
///
/// Validate it with [`LineParams::timing`]. `fi_di` is the F and D **in use** (TA1 after a
/// successful PPS or in specific mode, [`FiDi::DEFAULT`] otherwise); `wt_fi` is the Fi that
/// ISO/IEC 7816-3:2006 §10.2 puts in WT (the Fi of TA1, whatever F is in use).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct LineParams {
    /// The card clock frequency f in Hz.
    pub clock_hz: u32,
    /// F and D in use.
    pub fi_di: FiDi,
    /// The Fi index for WT (T=0): TA1's, or the default when TA1 is absent.
    pub wt_fi: Fi,
    /// N, the extra guard time (TC1), §8.3.
    pub n: u8,
    /// WI, the waiting-time integer for T=0 (TC2), §10.2.
    pub wi: u8,
    /// BWI for T=1, §11.4.3.
    pub bwi: u8,
    /// CWI for T=1, §11.4.3.
    pub cwi: u8,
}

impl LineParams {
    /// The parameters at the start of a session: default F and D, N = 0, WI = 10, BWI = 4,
    /// CWI = 13 (ISO/IEC 7816-3:2006 §8.3, §10.2, §11.4.3).
    pub const fn new(clock_hz: u32) -> Self {
        LineParams {
            clock_hz,
            fi_di: FiDi::DEFAULT,
            wt_fi: FiDi::DEFAULT.fi(),
            n: 0,
            wi: DEFAULT_WI,
            bwi: DEFAULT_BWI,
            cwi: DEFAULT_CWI,
        }
    }

    /// Check every parameter and build the [`Timing`].
    pub const fn timing(&self) -> Result<Timing, Error> {
        let Some(clock) = NonZeroU32::new(self.clock_hz) else {
            return Err(Error::ZeroClock);
        };
        let etu = match self.fi_di.etu() {
            Ok(etu) => etu,
            Err(e) => return Err(e),
        };
        let wt_f = match self.wt_fi.f() {
            Ok(f) => f,
            Err(e) => return Err(e),
        };
        if self.wi == 0 {
            return Err(Error::ZeroWi);
        }
        if self.bwi > 9 {
            return Err(Error::ReservedBwi(self.bwi));
        }
        if self.cwi > 15 {
            return Err(Error::InvalidCwi(self.cwi));
        }
        Ok(Timing {
            clock,
            etu,
            wt_f,
            n: self.n,
            wi: self.wi,
            bwi: self.bwi,
            cwi: self.cwi,
        })
    }
}

/// Validated line parameters: the baud rate, the etu and every waiting time, in clock cycles
/// ([`Cycles`]) and in nanoseconds (rounded up). Build it with [`LineParams::timing`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct Timing {
    clock: NonZeroU32,
    etu: Etu,
    wt_f: u16,
    n: u8,
    wi: u8,
    bwi: u8,
    cwi: u8,
}

impl Timing {
    /// The clock frequency in Hz.
    pub const fn clock_hz(&self) -> NonZeroU32 {
        self.clock
    }

    /// The etu in use.
    pub const fn etu(&self) -> Etu {
        self.etu
    }

    /// The bit rate f × D / F in bits per second, rounded down (§7.1).
    pub const fn baud(&self) -> u32 {
        self.etu.baud(self.clock.get())
    }

    /// N (TC1).
    pub const fn n(&self) -> u8 {
        self.n
    }

    /// WI (T=0).
    pub const fn wi(&self) -> u8 {
        self.wi
    }

    /// BWI (T=1).
    pub const fn bwi(&self) -> u8 {
        self.bwi
    }

    /// CWI (T=1).
    pub const fn cwi(&self) -> u8 {
        self.cwi
    }

    /// CGT for T=0 ([`cgt_t0`]).
    pub const fn cgt_t0(&self) -> Cycles {
        cgt_t0(self.n, self.etu)
    }

    /// CGT for T=1 ([`cgt_t1`]).
    pub const fn cgt_t1(&self) -> Cycles {
        cgt_t1(self.n, self.etu)
    }

    /// BGT for T=1 ([`bgt`]).
    pub const fn bgt(&self) -> Cycles {
        bgt(self.etu)
    }

    /// WT for T=0 ([`wt`]).
    pub const fn wt(&self) -> Cycles {
        // WI was checked non-zero when the Timing was built.
        Cycles::whole((self.wi as u64) * 960 * (self.wt_f as u64))
    }

    /// CWT for T=1 ([`cwt`]).
    pub const fn cwt(&self) -> Cycles {
        // CWI was checked to fit in 4 bits when the Timing was built.
        self.etu.times(11 + (1u64 << (self.cwi & 0x0F)))
    }

    /// BWT for T=1 ([`bwt`]).
    pub const fn bwt(&self) -> Cycles {
        // BWI was checked to be at most 9 when the Timing was built.
        let block = Cycles::whole((1u64 << (self.bwi & 0x0F)) * 960 * (FD as u64));
        self.etu.times(11).saturating_add(block)
    }

    /// A duration in nanoseconds at this clock, rounded up.
    pub const fn nanos(&self, cycles: Cycles) -> u64 {
        cycles.nanos_ceil(self.clock)
    }

    /// A duration in microseconds at this clock, rounded up.
    pub const fn micros(&self, cycles: Cycles) -> u64 {
        cycles.micros_ceil(self.clock)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tables_cover_every_defined_index() {
        let f: [Option<u16>; 16] = core::array::from_fn(|i| Fi::from_index(i as u8).f().ok());
        assert_eq!(
            f,
            [
                Some(372),
                Some(372),
                Some(558),
                Some(744),
                Some(1116),
                Some(1488),
                Some(1860),
                None,
                None,
                Some(512),
                Some(768),
                Some(1024),
                Some(1536),
                Some(2048),
                None,
                None
            ]
        );
        let d: [Option<u8>; 16] = core::array::from_fn(|i| Di::from_index(i as u8).d().ok());
        assert_eq!(
            d,
            [
                None,
                Some(1),
                Some(2),
                Some(4),
                Some(8),
                Some(16),
                Some(32),
                Some(64),
                Some(12),
                Some(20),
                None,
                None,
                None,
                None,
                None,
                None
            ]
        );
        assert_eq!(Fi::from_index(0xA).fmax_hz(), Ok(7_500_000));
        assert_eq!(Fi::from_index(0x0).fmax_hz(), Ok(4_000_000));
    }

    #[test]
    fn reserved_indices_are_errors_when_used() {
        assert_eq!(FiDi::from_byte(0x71).f(), Err(Error::ReservedFi(7)));
        assert_eq!(FiDi::from_byte(0x1A).d(), Err(Error::ReservedDi(0xA)));
        assert_eq!(FiDi::from_byte(0x10).etu(), Err(Error::ReservedDi(0)));
        // ... but the byte round-trips.
        assert_eq!(FiDi::from_byte(0xEF).byte(), 0xEF);
    }

    #[test]
    fn cycles_are_exact_and_round_up() {
        let etu = FiDi::from_byte(0x28).etu().unwrap(); // F=558, D=12
        assert_eq!(etu.cycles(), Cycles::ratio(93, 2));
        assert_eq!(etu.cycles().ceil(), 47);
        assert_eq!(etu.cycles().floor(), 46);
        assert_eq!(etu.times(2).ceil(), 93);
        let sum = Cycles::ratio(1, 3).saturating_add(Cycles::ratio(1, 6));
        assert_eq!(sum, Cycles::ratio(1, 2));
        let hz = NonZeroU32::new(3_000_000).unwrap();
        // 1 cycle at 3 MHz = 333.33 ns -> 334.
        assert_eq!(Cycles::whole(1).nanos_ceil(hz), 334);
        assert_eq!(Cycles::whole(3).nanos_ceil(hz), 1000);
    }

    #[test]
    fn line_params_reject_bad_values() {
        let mut p = LineParams::new(3_600_000);
        assert!(p.timing().is_ok());
        p.bwi = 10;
        assert_eq!(p.timing(), Err(Error::ReservedBwi(10)));
        p.bwi = 4;
        p.wi = 0;
        assert_eq!(p.timing(), Err(Error::ZeroWi));
        p.wi = 10;
        p.clock_hz = 0;
        assert_eq!(p.timing(), Err(Error::ZeroClock));
        p.clock_hz = 1;
        p.fi_di = FiDi::from_byte(0x81);
        assert_eq!(p.timing(), Err(Error::ReservedFi(8)));
    }
}
