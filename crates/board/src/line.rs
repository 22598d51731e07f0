//! The wire between the board and the SIM socket: what happens to a character on the I/O line,
//! and what happens to the socket itself.
//!
//! The board models the two UARTs (the bridge's and the card's) and their rates; a
//! [`CardLine`] models only the copper in between. [`CleanLine`] is a perfect wire;
//! [`FaultyLine`](crate::FaultyLine) wraps any line and injects faults (style: faults are
//! injected by wrapping a backend, never by branches in the code under test).
//!
//! # What a receiver sees
//!
//! ISO/IEC 7816-3 §7.2: a character is a start bit, 8 data bits and an even parity bit. One
//! flipped bit breaks the parity, so the receiver reports a parity error
//! ([`Arrival::ParityError`]); two flipped bits keep the parity and deliver a wrong byte
//! ([`Arrival::Byte`]), which only the T=1 EDC (LRC) catches. A receiver running at another F
//! and D than the sender (a wrong PPS) samples garbage: the board turns every character that
//! reaches such a receiver into a parity error, whatever the line delivered (a model: a real
//! UART would also see framing errors and a different number of characters).

use std::time::Duration;

/// Which way a character travels.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Direction {
    /// From the bridge (the reader) to the card.
    ToCard,
    /// From the card to the bridge.
    ToReader,
}

/// What the receiving UART gets for one character.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Arrival {
    /// A character with good parity: this byte (the one sent, or a corrupted one).
    Byte(u8),
    /// A character with bad parity (after the receiver's retries, if any).
    ParityError,
    /// Nothing: the character never reached the receiver (a dropped byte, a mute card).
    Lost,
}

/// Something that happens to the SIM socket, scheduled by the line (see
/// [`CardLine::poll`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SocketEvent {
    /// The card leaves the socket: every contact opens (it loses power).
    Pull,
    /// The card is back in the socket: it sees the contacts' present levels.
    Insert,
}

/// The wire between the board's card interface and the SIM socket.
///
/// # Call sequence
///
/// The board calls [`carry`](CardLine::carry) once for every character, in time order, at the
/// modelled time the character has completely arrived; it asks
/// [`next_event`](CardLine::next_event) after every step and calls
/// [`poll`](CardLine::poll) when that time has come (again, until it returns `None`). Times
/// never go backwards. The board applies the receiver's rate after the line: a line does not
/// need to know F and D.
pub trait CardLine {
    /// One character `byte` travelling `direction`, completely arrived at `at`: what the
    /// receiver gets.
    fn carry(&mut self, at: Duration, direction: Direction, byte: u8) -> Arrival;

    /// When the line next wants [`poll`](CardLine::poll) (a scheduled pull, say), or `None`.
    fn next_event(&self) -> Option<Duration> {
        None
    }

    /// The socket event due at `now`, if any (called while [`next_event`](Self::next_event) is
    /// at or before `now`; a line must move its `next_event` on once it has returned an event).
    fn poll(&mut self, now: Duration) -> Option<SocketEvent> {
        let _ = now;
        None
    }
}

impl<L: CardLine + ?Sized> CardLine for &mut L {
    fn carry(&mut self, at: Duration, direction: Direction, byte: u8) -> Arrival {
        L::carry(self, at, direction, byte)
    }
    fn next_event(&self) -> Option<Duration> {
        L::next_event(self)
    }
    fn poll(&mut self, now: Duration) -> Option<SocketEvent> {
        L::poll(self, now)
    }
}

impl<L: CardLine + ?Sized> CardLine for Box<L> {
    fn carry(&mut self, at: Duration, direction: Direction, byte: u8) -> Arrival {
        L::carry(self, at, direction, byte)
    }
    fn next_event(&self) -> Option<Duration> {
        L::next_event(self)
    }
    fn poll(&mut self, now: Duration) -> Option<SocketEvent> {
        L::poll(self, now)
    }
}

/// A perfect wire: every character arrives as sent, the socket never changes by itself.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct CleanLine;

impl CardLine for CleanLine {
    fn carry(&mut self, _at: Duration, _direction: Direction, byte: u8) -> Arrival {
        Arrival::Byte(byte)
    }
}
