//! Time on the I/O line: characters at a rate, and timers that count card clock cycles.

use std::num::NonZeroU32;
use std::time::Duration;

use tessera_iso7816_3::rate::{Cycles, Etu, FiDi};

/// One character on the I/O line takes 12 etu: start bit, 8 data bits, parity bit and 2 etu of
/// guard time, the minimum character guard time of ISO/IEC 7816-3:2006 §7.2 before the ATR
/// and the card's spacing afterwards. (With TC1 = FF, T=1 allows 11 etu, §11.2; the model
/// keeps 12 for both directions.)
pub const CHARACTER_ETU: u64 = 12;

/// `cycles` of a clock at `clock` Hz as a duration, rounded up to the nanosecond.
pub(crate) fn duration(cycles: Cycles, clock: NonZeroU32) -> Duration {
    Duration::from_nanos(cycles.nanos_ceil(clock))
}

/// Bytes the card sends: they go out one character every [`CHARACTER_ETU`] etu from `start`,
/// at the rate `fi_di` and the clock `clock_hz` that were in force when the card started them.
///
/// Character `i` occupies the line from [`Transmission::character_start`]`(i)` to
/// [`Transmission::character_end`]`(i)`; a reader running at the same F and D receives it
/// completely at its end. If the card is reset, powered off or pulled before a character has
/// started, that character and the rest are never sent: the board cuts the transmission there.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Transmission {
    /// Modelled time of the leading edge of the first character: never before the previous
    /// call's `now`, and before this call's `now` only if the board polled later than
    /// [`super::Contacts::next_poll`] asked.
    pub start: Duration,
    /// The characters, in order, as decoded values (the board applies the convention).
    pub bytes: Vec<u8>,
    /// F and D the card sends at (TA1/PPS1 coding): the reader must use the same, or it reads
    /// garbage.
    pub fi_di: FiDi,
    /// The elementary time unit of `fi_di`.
    pub etu: Etu,
    /// The card clock frequency when the transmission started.
    pub clock_hz: NonZeroU32,
}

impl Transmission {
    /// The leading edge of character `index` (`index` = `bytes.len()` gives [`Transmission::end`]).
    pub fn character_start(&self, index: usize) -> Duration {
        let n = u64::try_from(index).unwrap_or(u64::MAX);
        let offset = self.etu.times(CHARACTER_ETU.saturating_mul(n));
        self.start.saturating_add(duration(offset, self.clock_hz))
    }

    /// When character `index` has been completely sent (the leading edge of the next one).
    pub fn character_end(&self, index: usize) -> Duration {
        self.character_start(index.saturating_add(1))
    }

    /// When the last character has been completely sent.
    pub fn end(&self) -> Duration {
        self.character_start(self.bytes.len())
    }
}

/// A timer counted in card clock cycles: it runs while the clock runs and stands still while
/// the clock is stopped (the card's UART and its waiting times live on CLK).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub(crate) enum LineTimer {
    /// Not armed.
    #[default]
    Off,
    /// Expires at this modelled time (computed with the clock frequency in force).
    At(Duration),
    /// The clock is stopped: this many cycles are left.
    Paused(Cycles),
}

impl LineTimer {
    /// A timer expiring `cycles` after `base` at the clock `clock` (paused if it is stopped).
    pub fn arm(base: Duration, cycles: Cycles, clock: Option<NonZeroU32>) -> LineTimer {
        match clock {
            Some(hz) => LineTimer::At(base.saturating_add(duration(cycles, hz))),
            None => LineTimer::Paused(cycles),
        }
    }

    /// The expiry time, if the timer is running.
    pub fn at(self) -> Option<Duration> {
        match self {
            LineTimer::At(at) => Some(at),
            LineTimer::Off | LineTimer::Paused(_) => None,
        }
    }

    /// The same timer after the clock changed from `old` to `new` at `now`: the cycles left
    /// are kept.
    pub fn rescale(
        self,
        now: Duration,
        old: Option<NonZeroU32>,
        new: Option<NonZeroU32>,
    ) -> LineTimer {
        let left = match (self, old) {
            (LineTimer::Off, _) => return LineTimer::Off,
            (LineTimer::Paused(cycles), _) => cycles,
            (LineTimer::At(at), Some(old)) => {
                let nanos = u64::try_from(at.saturating_sub(now).as_nanos()).unwrap_or(u64::MAX);
                Cycles::ratio(nanos.saturating_mul(u64::from(old.get())), 1_000_000_000)
            }
            // A running timer needs a running clock; keep it as it is.
            (LineTimer::At(_), None) => return self,
        };
        LineTimer::arm(now, left, new)
    }
}
