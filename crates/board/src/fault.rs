//! Fault injection on the card line, by wrapping: [`FaultyLine`] sits between the board and any
//! [`CardLine`] and flips bits, drops characters, silences the card, or pulls it out of the
//! socket at a modelled time. Randomness is seeded, so a run is reproducible.

use std::collections::VecDeque;
use std::time::Duration;

use rand_chacha::ChaCha8Rng;
use rand_core::{RngCore, SeedableRng};

use crate::line::{Arrival, CardLine, CleanLine, Direction, SocketEvent};

/// Random faults per character. Probabilities are per character that reached the line intact
/// and are clamped to 0..=1; at most one fault hits a character.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Faults {
    /// One data or parity bit flips: the receiver sees a parity error (ISO/IEC 7816-3 §7.2).
    pub bit_flip: f64,
    /// Two data bits flip: the receiver gets a wrong byte with good parity, which only the T=1
    /// EDC catches.
    pub double_flip: f64,
    /// The character is lost (the receiver sees no start bit).
    pub drop: f64,
    /// Only characters going this way; `None`: both ways.
    pub direction: Option<Direction>,
    /// Faults start at this modelled time (so a board can boot cleanly first).
    pub from: Duration,
    /// And stop at this one; `None`: never.
    pub until: Option<Duration>,
}

impl Faults {
    /// No random faults.
    pub const NONE: Faults = Faults {
        bit_flip: 0.0,
        double_flip: 0.0,
        drop: 0.0,
        direction: None,
        from: Duration::ZERO,
        until: None,
    };

    /// These probabilities per character, both ways, at all times.
    pub const fn per_character(bit_flip: f64, double_flip: f64, drop: f64) -> Faults {
        Faults {
            bit_flip,
            double_flip,
            drop,
            ..Faults::NONE
        }
    }

    /// The same faults, from `from` on.
    pub const fn starting_at(self, from: Duration) -> Faults {
        Faults { from, ..self }
    }

    fn active(&self, at: Duration, direction: Direction) -> bool {
        at >= self.from
            && self.until.is_none_or(|until| at < until)
            && self.direction.is_none_or(|d| d == direction)
    }
}

impl Default for Faults {
    fn default() -> Self {
        Faults::NONE
    }
}

/// What a [`FaultyLine`] did so far.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct FaultStats {
    /// Characters carried (both ways).
    pub characters: u64,
    /// Characters given a parity error by a single bit flip.
    pub flipped: u64,
    /// Characters corrupted by a double bit flip.
    pub corrupted: u64,
    /// Characters dropped at random.
    pub dropped: u64,
    /// Characters of the card lost while it was mute.
    pub muted: u64,
    /// Socket events (pulls and insertions) the line caused.
    pub socket_events: u64,
}

/// A card line with faults: random bit flips and drops ([`Faults`]), a mute card between two
/// times, and the card pulled from (or put back into) the socket at given times.
#[derive(Debug, Clone)]
pub struct FaultyLine<L = CleanLine> {
    inner: L,
    faults: Faults,
    rng: ChaCha8Rng,
    /// Scheduled socket events, by time.
    socket: VecDeque<(Duration, SocketEvent)>,
    /// Windows in which the card is mute: `[from, until)`.
    mute: Vec<(Duration, Option<Duration>)>,
    stats: FaultStats,
}

impl<L: CardLine> FaultyLine<L> {
    /// `inner` with `faults`, the randomness seeded with `seed`.
    pub fn new(inner: L, faults: Faults, seed: u64) -> Self {
        FaultyLine {
            inner,
            faults,
            rng: ChaCha8Rng::seed_from_u64(seed),
            socket: VecDeque::new(),
            mute: Vec::new(),
            stats: FaultStats::default(),
        }
    }

    /// Pull the card out of the socket at `at` (modelled time).
    pub fn pull_card_at(&mut self, at: Duration) {
        self.schedule(at, SocketEvent::Pull);
    }

    /// Put the card back into the socket at `at`.
    pub fn insert_card_at(&mut self, at: Duration) {
        self.schedule(at, SocketEvent::Insert);
    }

    /// The card sends nothing that arrives from `from` until `until` (`None`: for ever): a
    /// card that hangs, or an I/O contact that lost touch.
    pub fn mute_card(&mut self, from: Duration, until: Option<Duration>) {
        self.mute.push((from, until));
    }

    /// The random faults.
    pub fn faults(&self) -> &Faults {
        &self.faults
    }

    /// Change the random faults (the randomness goes on from where it is).
    pub fn set_faults(&mut self, faults: Faults) {
        self.faults = faults;
    }

    /// What the line did so far.
    pub fn stats(&self) -> FaultStats {
        self.stats
    }

    /// The wrapped line.
    pub fn inner(&self) -> &L {
        &self.inner
    }

    /// The wrapped line, mutably.
    pub fn inner_mut(&mut self) -> &mut L {
        &mut self.inner
    }

    /// The wrapped line back.
    pub fn into_inner(self) -> L {
        self.inner
    }

    fn schedule(&mut self, at: Duration, event: SocketEvent) {
        let index = self.socket.partition_point(|(t, _)| *t <= at);
        self.socket.insert(index, (at, event));
    }

    fn muted(&self, at: Duration) -> bool {
        self.mute
            .iter()
            .any(|(from, until)| at >= *from && until.is_none_or(|u| at < u))
    }

    /// True with probability `p`.
    fn chance(&mut self, p: f64) -> bool {
        if p.is_nan() || p <= 0.0 {
            return false;
        }
        if p >= 1.0 {
            return true;
        }
        // 53 random bits as a fraction in [0, 1).
        let r = (self.rng.next_u64() >> 11) as f64 / (1u64 << 53) as f64;
        r < p
    }

    fn random_bit(&mut self) -> u8 {
        (self.rng.next_u32() % 8) as u8
    }
}

impl<L: CardLine> CardLine for FaultyLine<L> {
    fn carry(&mut self, at: Duration, direction: Direction, byte: u8) -> Arrival {
        self.stats.characters += 1;
        let arrival = self.inner.carry(at, direction, byte);
        if direction == Direction::ToReader && self.muted(at) {
            self.stats.muted += 1;
            return Arrival::Lost;
        }
        let Arrival::Byte(byte) = arrival else {
            return arrival;
        };
        if !self.faults.active(at, direction) {
            return arrival;
        }
        let Faults {
            bit_flip,
            double_flip,
            drop,
            ..
        } = self.faults;
        if self.chance(drop) {
            self.stats.dropped += 1;
            Arrival::Lost
        } else if self.chance(bit_flip) {
            self.stats.flipped += 1;
            Arrival::ParityError
        } else if self.chance(double_flip) {
            self.stats.corrupted += 1;
            let first = self.random_bit();
            let second = (first + 1 + (self.rng.next_u32() % 7) as u8) % 8;
            Arrival::Byte(byte ^ (1 << first) ^ (1 << second))
        } else {
            arrival
        }
    }

    fn next_event(&self) -> Option<Duration> {
        let own = self.socket.front().map(|(at, _)| *at);
        match (own, self.inner.next_event()) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    fn poll(&mut self, now: Duration) -> Option<SocketEvent> {
        if let Some(&(at, event)) = self.socket.front() {
            if at <= now {
                self.socket.pop_front();
                self.stats.socket_events += 1;
                return Some(event);
            }
        }
        self.inner.poll(now)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(line: &mut FaultyLine, n: u64) -> Vec<Arrival> {
        (0..n)
            .map(|i| {
                let direction = if i % 2 == 0 {
                    Direction::ToCard
                } else {
                    Direction::ToReader
                };
                line.carry(Duration::from_micros(i * 100), direction, i as u8)
            })
            .collect()
    }

    #[test]
    fn the_same_seed_gives_the_same_faults() {
        let faults = Faults::per_character(0.05, 0.05, 0.05);
        let a = run(&mut FaultyLine::new(CleanLine, faults, 9), 2000);
        let b = run(&mut FaultyLine::new(CleanLine, faults, 9), 2000);
        let c = run(&mut FaultyLine::new(CleanLine, faults, 10), 2000);
        assert_eq!(a, b);
        assert_ne!(a, c);
    }

    #[test]
    fn each_kind_of_fault_shows_as_the_receiver_sees_it() {
        let mut line = FaultyLine::new(CleanLine, Faults::per_character(0.1, 0.1, 0.1), 1);
        let arrivals = run(&mut line, 10_000);
        let stats = line.stats();
        assert_eq!(stats.characters, 10_000);
        let lost = arrivals.iter().filter(|a| **a == Arrival::Lost).count() as u64;
        let parity = arrivals
            .iter()
            .filter(|a| **a == Arrival::ParityError)
            .count() as u64;
        let wrong = arrivals
            .iter()
            .enumerate()
            .filter(|(i, a)| matches!(a, Arrival::Byte(b) if *b != *i as u8))
            .count() as u64;
        assert_eq!(
            (lost, parity, wrong),
            (stats.dropped, stats.flipped, stats.corrupted)
        );
        // About 10 %, 9 % and 8.1 % (at most one fault per character).
        assert!((800..1200).contains(&stats.dropped), "{stats:?}");
        assert!((700..1100).contains(&stats.flipped), "{stats:?}");
        assert!((600..1000).contains(&stats.corrupted), "{stats:?}");
        // A double flip changes exactly two bits.
        for (i, a) in arrivals.iter().enumerate() {
            if let Arrival::Byte(b) = a {
                assert!(matches!((b ^ i as u8).count_ones(), 0 | 2));
            }
        }
    }

    #[test]
    fn faults_keep_to_their_window_and_direction() {
        let faults = Faults {
            drop: 1.0,
            direction: Some(Direction::ToCard),
            from: Duration::from_millis(10),
            until: Some(Duration::from_millis(20)),
            ..Faults::NONE
        };
        let mut line = FaultyLine::new(CleanLine, faults, 1);
        let at = Duration::from_millis;
        assert_eq!(line.carry(at(5), Direction::ToCard, 1), Arrival::Byte(1));
        assert_eq!(line.carry(at(15), Direction::ToReader, 2), Arrival::Byte(2));
        assert_eq!(line.carry(at(15), Direction::ToCard, 3), Arrival::Lost);
        assert_eq!(line.carry(at(20), Direction::ToCard, 4), Arrival::Byte(4));
    }

    #[test]
    fn a_mute_card_sends_nothing_in_its_window() {
        let mut line = FaultyLine::new(CleanLine, Faults::NONE, 1);
        let at = Duration::from_millis;
        line.mute_card(at(10), Some(at(20)));
        assert_eq!(line.carry(at(9), Direction::ToReader, 1), Arrival::Byte(1));
        assert_eq!(line.carry(at(10), Direction::ToReader, 2), Arrival::Lost);
        assert_eq!(line.carry(at(10), Direction::ToCard, 3), Arrival::Byte(3));
        assert_eq!(line.carry(at(20), Direction::ToReader, 4), Arrival::Byte(4));
        assert_eq!(line.stats().muted, 1);
    }

    #[test]
    fn socket_events_come_in_time_order() {
        let mut line = FaultyLine::new(CleanLine, Faults::NONE, 1);
        let at = Duration::from_millis;
        line.insert_card_at(at(30));
        line.pull_card_at(at(10));
        assert_eq!(line.next_event(), Some(at(10)));
        assert_eq!(line.poll(at(5)), None);
        assert_eq!(line.poll(at(10)), Some(SocketEvent::Pull));
        assert_eq!(line.next_event(), Some(at(30)));
        assert_eq!(line.poll(at(40)), Some(SocketEvent::Insert));
        assert_eq!((line.next_event(), line.poll(at(50))), (None, None));
        assert_eq!(line.stats().socket_events, 2);
    }
}
