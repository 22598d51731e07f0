//! The smart-card line's state machine: what the USART interrupt does with each character, kept
//! free of registers so that it is tested on the host.
//!
//! The card's I/O is one open-drain wire (half duplex): in smart-card mode the USART's receiver
//! hears every character the transmitter sends (RM0008 §27.3.11). So while a transmission runs,
//! each received character is the **echo** of the next one not yet echoed; the echo is checked
//! (a different value means the card talked over us) and swallowed, and with character
//! repetition on (T=0, ISO/IEC 7816-3:2006 §7.3) a framing error on the echo is the card's error
//! signal (NACK), so the character is sent again. The next character is written only once the
//! previous one has echoed and TC has risen (the guard time, see [`crate::line::guard_time`]).
//!
//! Characters from the card go into a ring of [`RxEvent`]s. A parity error is delivered as
//! [`RxEvent::ParityError`] (T=1 counts it as an error in the block, ISO/IEC 7816-3:2006
//! §11.4.4), except with character repetition on: then the USART has already signalled the error
//! and the card repeats the character, so the bad copy is dropped and counted. Characters lost to
//! a full ring or to the USART's overrun appear as one [`RxEvent::Overrun`] in their place.

/// The longest transmission: one T=1 block (3 + 254 + 2 bytes) or one TPDU-level `XfrBlock`
/// payload (271 − 10 bytes), with room to spare.
pub const TX_CAPACITY: usize = 272;

/// Received characters buffered between the interrupt and the task: 256, about 26 ms of
/// characters at the fastest rate the stock board was seen to work at (116 kbps), more than a
/// T=1 block.
pub const RX_CAPACITY: usize = 256;

/// How often a character refused by the card (NACK) is sent again before the transmission
/// fails. ISO/IEC 7816-3:2006 §7.3 leaves the count to the interface; 3 is what EMV readers use
/// (**GUESS** that it suits these cards; it is a constant here).
pub const MAX_REPETITIONS: u8 = 3;

/// Something the card line received.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(target_os = "none", derive(defmt::Format))]
pub enum RxEvent {
    /// A character with good parity.
    Byte(u8),
    /// A character with a parity error; its value is unreliable.
    ParityError(u8),
    /// One or more characters were lost here (the ring was full or the USART overran).
    Overrun,
}

/// Why a transmission failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(target_os = "none", derive(defmt::Format))]
pub enum TxError {
    /// More than [`TX_CAPACITY`] bytes.
    TooLong,
    /// A transmission is already running.
    Busy,
    /// The echo of character `index` differed from what was sent: someone else drove the line.
    EchoMismatch {
        /// Position of the character in the transmission.
        index: u16,
    },
    /// The card refused character `index` more than [`MAX_REPETITIONS`] times, or signalled an
    /// error without character repetition in effect.
    Nacked {
        /// Position of the character in the transmission.
        index: u16,
    },
    /// The transmission was cancelled before its last character echoed.
    Aborted,
}

/// Error counters since start-up, for the log.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[cfg_attr(target_os = "none", derive(defmt::Format))]
pub struct LineCounters {
    /// Characters received with a parity error.
    pub parity_errors: u32,
    /// Characters lost (ring full or USART overrun), counted per loss event.
    pub overruns: u32,
    /// Characters sent again after a NACK.
    pub repetitions: u32,
}

/// What the interrupt should do after handing a character to [`LineState::on_char`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(target_os = "none", derive(defmt::Format))]
pub enum CharOutcome {
    /// A received character (or error) was queued: wake the reader.
    Queued,
    /// A character was dropped (a NACKed copy the card repeats): nothing to wake.
    Dropped,
    /// The echo of a sent character; the transmission goes on.
    Echo,
    /// The transmission ended (successfully or not): wake the writer.
    TxFinished,
}

/// How the last transmission ended, stored so that an all-zero `LineState` is the initial one
/// (the static then lives in `.bss`, not in `.data` with an 830-byte image in flash).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
enum Outcome {
    Pending = 0,
    Ok,
    TooLong,
    Busy,
    EchoMismatch,
    Nacked,
    Aborted,
}

const ENTRY_PARITY_ERROR: u16 = 0x0100;
const ENTRY_OVERRUN: u16 = 0x8000;

/// The line's buffers and transmit progress. One instance lives in a critical-section mutex,
/// shared by the USART interrupt and the driver.
pub struct LineState {
    rx: [u16; RX_CAPACITY],
    rx_head: usize,
    rx_len: usize,
    rx_lost: bool,
    tx: [u8; TX_CAPACITY],
    tx_len: usize,
    written: usize,
    echoed: usize,
    repetitions: u8,
    sending: bool,
    outcome: Outcome,
    outcome_index: u16,
    character_repetition: bool,
    counters: LineCounters,
}

impl Default for LineState {
    fn default() -> Self {
        Self::new()
    }
}

impl LineState {
    /// Empty buffers, nothing sending, character repetition off.
    pub const fn new() -> Self {
        LineState {
            rx: [0; RX_CAPACITY],
            rx_head: 0,
            rx_len: 0,
            rx_lost: false,
            tx: [0; TX_CAPACITY],
            tx_len: 0,
            written: 0,
            echoed: 0,
            repetitions: 0,
            sending: false,
            outcome: Outcome::Pending,
            outcome_index: 0,
            character_repetition: false,
            counters: LineCounters {
                parity_errors: 0,
                overruns: 0,
                repetitions: 0,
            },
        }
    }

    // ---- driver side ----

    /// Start sending `bytes`. The interrupt writes the first one at the next TC.
    pub fn start_send(&mut self, bytes: &[u8]) -> Result<(), TxError> {
        if self.sending {
            return Err(TxError::Busy);
        }
        let dst = self.tx.get_mut(..bytes.len()).ok_or(TxError::TooLong)?;
        dst.copy_from_slice(bytes);
        self.tx_len = bytes.len();
        self.written = 0;
        self.echoed = 0;
        self.repetitions = 0;
        self.outcome = Outcome::Pending;
        self.sending = !bytes.is_empty();
        if bytes.is_empty() {
            self.set_outcome(Ok(()));
        }
        Ok(())
    }

    /// The result of the last transmission, once it has finished (taken once).
    pub fn take_send_result(&mut self) -> Option<Result<(), TxError>> {
        let index = self.outcome_index;
        let result = match self.outcome {
            Outcome::Pending => return None,
            Outcome::Ok => Ok(()),
            Outcome::TooLong => Err(TxError::TooLong),
            Outcome::Busy => Err(TxError::Busy),
            Outcome::EchoMismatch => Err(TxError::EchoMismatch { index }),
            Outcome::Nacked => Err(TxError::Nacked { index }),
            Outcome::Aborted => Err(TxError::Aborted),
        };
        self.outcome = Outcome::Pending;
        Some(result)
    }

    fn set_outcome(&mut self, result: Result<(), TxError>) {
        (self.outcome, self.outcome_index) = match result {
            Ok(()) => (Outcome::Ok, 0),
            Err(TxError::TooLong) => (Outcome::TooLong, 0),
            Err(TxError::Busy) => (Outcome::Busy, 0),
            Err(TxError::EchoMismatch { index }) => (Outcome::EchoMismatch, index),
            Err(TxError::Nacked { index }) => (Outcome::Nacked, index),
            Err(TxError::Aborted) => (Outcome::Aborted, 0),
        };
    }

    /// Whether a transmission is running.
    pub fn is_sending(&self) -> bool {
        self.sending
    }

    /// Cancel a running transmission (its result becomes [`TxError::Aborted`]).
    pub fn abort_send(&mut self) {
        if self.sending {
            self.sending = false;
            self.set_outcome(Err(TxError::Aborted));
        }
    }

    /// The oldest received event.
    pub fn pop(&mut self) -> Option<RxEvent> {
        if self.rx_len == 0 {
            if self.rx_lost {
                self.rx_lost = false;
                return Some(RxEvent::Overrun);
            }
            return None;
        }
        let entry = self.rx.get(self.rx_head).copied().unwrap_or(ENTRY_OVERRUN);
        self.rx_head = (self.rx_head + 1) % RX_CAPACITY;
        self.rx_len -= 1;
        Some(if entry & ENTRY_OVERRUN != 0 {
            RxEvent::Overrun
        } else if entry & ENTRY_PARITY_ERROR != 0 {
            RxEvent::ParityError(entry as u8)
        } else {
            RxEvent::Byte(entry as u8)
        })
    }

    /// Forget everything received (e.g. before a reset, or after a cancelled exchange).
    pub fn clear_rx(&mut self) {
        self.rx_head = 0;
        self.rx_len = 0;
        self.rx_lost = false;
    }

    /// Turn character repetition (T=0's error signal and repetition) on or off.
    pub fn set_character_repetition(&mut self, on: bool) {
        self.character_repetition = on;
    }

    /// The error counters.
    pub fn counters(&self) -> LineCounters {
        self.counters
    }

    // ---- interrupt side ----

    /// A character arrived (RXNE), with the USART's parity-error (PE) and framing-error (FE)
    /// flags of the same frame.
    pub fn on_char(&mut self, byte: u8, parity_error: bool, framing_error: bool) -> CharOutcome {
        if self.sending && self.echoed < self.written {
            return self.on_echo(byte, parity_error, framing_error);
        }
        if parity_error {
            self.counters.parity_errors = self.counters.parity_errors.saturating_add(1);
            if self.character_repetition {
                // The USART sent the error signal; the card sends the character again.
                return CharOutcome::Dropped;
            }
            self.push(ENTRY_PARITY_ERROR | u16::from(byte));
        } else {
            self.push(u16::from(byte));
        }
        CharOutcome::Queued
    }

    fn on_echo(&mut self, byte: u8, parity_error: bool, framing_error: bool) -> CharOutcome {
        let index = self.echoed;
        let sent = self.tx.get(index).copied();
        if framing_error {
            // RM0008 §27.3.11: the card's NACK during our 1.5 stop bits is a framing error.
            if self.character_repetition && self.repetitions < MAX_REPETITIONS {
                self.repetitions += 1;
                self.counters.repetitions = self.counters.repetitions.saturating_add(1);
                self.written = index; // the next TC sends it again
                return CharOutcome::Echo;
            }
            return self.finish(Err(TxError::Nacked {
                index: index as u16,
            }));
        }
        if parity_error || sent != Some(byte) {
            return self.finish(Err(TxError::EchoMismatch {
                index: index as u16,
            }));
        }
        self.echoed += 1;
        self.repetitions = 0;
        if self.echoed == self.tx_len {
            self.finish(Ok(()))
        } else {
            CharOutcome::Echo
        }
    }

    fn finish(&mut self, result: Result<(), TxError>) -> CharOutcome {
        self.sending = false;
        self.set_outcome(result);
        CharOutcome::TxFinished
    }

    /// The USART lost characters (ORE).
    pub fn on_overrun(&mut self) {
        self.counters.overruns = self.counters.overruns.saturating_add(1);
        self.push(ENTRY_OVERRUN);
    }

    /// Whether the transmitter waits for TC to send its next character (every character sent so
    /// far has echoed and some are left). The interrupt enables TCIE only while this holds.
    pub fn wants_tc(&self) -> bool {
        self.sending && self.echoed == self.written && self.written < self.tx_len
    }

    /// TC is set: the character to write to DR now, if [`LineState::wants_tc`].
    pub fn next_to_send(&mut self) -> Option<u8> {
        if !self.wants_tc() {
            return None;
        }
        let byte = self.tx.get(self.written).copied()?;
        self.written += 1;
        Some(byte)
    }

    fn push(&mut self, entry: u16) {
        if self.rx_lost && entry == ENTRY_OVERRUN {
            return; // the pending marker covers this loss too
        }
        if self.rx_lost {
            // Put the marker for the earlier loss first, if there is room for it and the entry.
            if self.rx_len + 2 <= RX_CAPACITY {
                self.rx_lost = false;
                self.store(ENTRY_OVERRUN);
            } else {
                return;
            }
        }
        if self.rx_len == RX_CAPACITY {
            if !self.rx_lost {
                self.counters.overruns = self.counters.overruns.saturating_add(1);
            }
            self.rx_lost = true;
            return;
        }
        self.store(entry);
    }

    fn store(&mut self, entry: u16) {
        let tail = (self.rx_head + self.rx_len) % RX_CAPACITY;
        if let Some(slot) = self.rx.get_mut(tail) {
            *slot = entry;
            self.rx_len += 1;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Run a transmission against a line that echoes each character as sent (optionally
    /// rewriting echo `i` with `echo(i, byte)` -> (byte, parity error, framing error)).
    fn send_with(
        line: &mut LineState,
        bytes: &[u8],
        mut echo: impl FnMut(usize, u8) -> (u8, bool, bool),
    ) -> (Vec<u8>, Option<Result<(), TxError>>) {
        line.start_send(bytes).unwrap();
        let mut wire = Vec::new();
        let mut n = 0;
        while let Some(byte) = line.next_to_send() {
            wire.push(byte);
            let (b, pe, fe) = echo(n, byte);
            n += 1;
            line.on_char(b, pe, fe);
            if n > 100 {
                break;
            }
        }
        (wire, line.take_send_result())
    }

    fn drain(line: &mut LineState) -> Vec<RxEvent> {
        core::iter::from_fn(|| line.pop()).collect()
    }

    #[test]
    fn echoes_are_checked_and_swallowed_and_card_bytes_are_queued() {
        let mut line = LineState::new();
        // An S(IFS request 254) block: NAD PCB LEN INF LRC.
        let block = [0x00, 0xC1, 0x01, 0xFE, 0x3E];
        let (wire, result) = send_with(&mut line, &block, |_, b| (b, false, false));
        assert_eq!(wire, block);
        assert_eq!(result, Some(Ok(())));
        assert!(!line.is_sending());
        assert_eq!(drain(&mut line), []);
        // The card's S(IFS response).
        for b in [0x00, 0xE1, 0x01, 0xFE, 0x1E] {
            assert_eq!(line.on_char(b, false, false), CharOutcome::Queued);
        }
        assert_eq!(
            drain(&mut line),
            [0x00, 0xE1, 0x01, 0xFE, 0x1E].map(RxEvent::Byte)
        );
    }

    #[test]
    fn the_next_character_waits_for_the_echo_of_the_previous_one() {
        let mut line = LineState::new();
        line.start_send(&[1, 2]).unwrap();
        assert!(line.wants_tc());
        assert_eq!(line.next_to_send(), Some(1));
        // TC before the echo: nothing to write yet.
        assert!(!line.wants_tc());
        assert_eq!(line.next_to_send(), None);
        assert_eq!(line.on_char(1, false, false), CharOutcome::Echo);
        assert_eq!(line.next_to_send(), Some(2));
        assert_eq!(line.on_char(2, false, false), CharOutcome::TxFinished);
        assert_eq!(line.next_to_send(), None);
        assert_eq!(line.take_send_result(), Some(Ok(())));
        assert_eq!(line.take_send_result(), None);
    }

    #[test]
    fn a_different_echo_fails_the_transmission() {
        let mut line = LineState::new();
        let (wire, result) = send_with(&mut line, &[0xA0, 0xA1, 0xA2], |i, b| {
            (if i == 1 { 0x00 } else { b }, false, false)
        });
        assert_eq!(wire, [0xA0, 0xA1]);
        assert_eq!(result, Some(Err(TxError::EchoMismatch { index: 1 })));
        // Later characters are the card's again.
        assert_eq!(line.on_char(0x60, false, false), CharOutcome::Queued);
        assert_eq!(drain(&mut line), [RxEvent::Byte(0x60)]);
    }

    #[test]
    fn a_nacked_character_is_sent_again_with_character_repetition() {
        let mut line = LineState::new();
        line.set_character_repetition(true);
        let mut nacks = 2;
        let (wire, result) = send_with(&mut line, &[0x00, 0xA4, 0x04], |i, b| {
            let nack = i >= 1 && nacks > 0;
            if nack {
                nacks -= 1;
            }
            (b, false, nack)
        });
        assert_eq!(wire, [0x00, 0xA4, 0xA4, 0xA4, 0x04]);
        assert_eq!(result, Some(Ok(())));
        assert_eq!(line.counters().repetitions, 2);
    }

    #[test]
    fn a_character_nacked_too_often_fails_the_transmission() {
        let mut line = LineState::new();
        line.set_character_repetition(true);
        let (wire, result) = send_with(&mut line, &[0x11, 0x22], |i, b| (b, false, i >= 1));
        assert_eq!(wire.len(), 2 + usize::from(MAX_REPETITIONS));
        assert_eq!(result, Some(Err(TxError::Nacked { index: 1 })));
    }

    #[test]
    fn a_nack_without_character_repetition_fails_at_once() {
        let mut line = LineState::new();
        let (wire, result) = send_with(&mut line, &[0x11, 0x22], |i, b| (b, false, i == 0));
        assert_eq!(wire, [0x11]);
        assert_eq!(result, Some(Err(TxError::Nacked { index: 0 })));
    }

    #[test]
    fn parity_errors_are_delivered_without_character_repetition() {
        let mut line = LineState::new();
        line.on_char(0x12, true, false);
        line.on_char(0x34, false, false);
        assert_eq!(
            drain(&mut line),
            [RxEvent::ParityError(0x12), RxEvent::Byte(0x34)]
        );
        assert_eq!(line.counters().parity_errors, 1);
    }

    #[test]
    fn parity_errors_are_dropped_with_character_repetition() {
        let mut line = LineState::new();
        line.set_character_repetition(true);
        assert_eq!(line.on_char(0x12, true, false), CharOutcome::Dropped);
        assert_eq!(line.on_char(0x13, false, false), CharOutcome::Queued);
        assert_eq!(drain(&mut line), [RxEvent::Byte(0x13)]);
        assert_eq!(line.counters().parity_errors, 1);
    }

    #[test]
    fn a_full_ring_marks_the_loss_where_it_happened() {
        let mut line = LineState::new();
        for i in 0..RX_CAPACITY + 5 {
            line.on_char(i as u8, false, false);
        }
        assert_eq!(line.counters().overruns, 1);
        // Make room for the marker and one more, then a late character.
        assert_eq!(line.pop(), Some(RxEvent::Byte(0)));
        assert_eq!(line.pop(), Some(RxEvent::Byte(1)));
        line.on_char(0xEE, false, false);
        let rest = drain(&mut line);
        assert_eq!(rest.len(), RX_CAPACITY - 2 + 2);
        assert_eq!(
            rest[RX_CAPACITY - 3],
            RxEvent::Byte((RX_CAPACITY - 1) as u8)
        );
        assert_eq!(rest[RX_CAPACITY - 2], RxEvent::Overrun);
        assert_eq!(rest[RX_CAPACITY - 1], RxEvent::Byte(0xEE));
    }

    #[test]
    fn a_loss_at_the_end_is_reported_once_the_ring_is_empty() {
        let mut line = LineState::new();
        for i in 0..=RX_CAPACITY {
            line.on_char(i as u8, false, false);
        }
        let events = drain(&mut line);
        assert_eq!(events.len(), RX_CAPACITY + 1);
        assert_eq!(events.last(), Some(&RxEvent::Overrun));
        assert_eq!(line.pop(), None);
    }

    #[test]
    fn usart_overrun_is_an_event() {
        let mut line = LineState::new();
        line.on_char(1, false, false);
        line.on_overrun();
        line.on_char(2, false, false);
        assert_eq!(
            drain(&mut line),
            [RxEvent::Byte(1), RxEvent::Overrun, RxEvent::Byte(2)]
        );
    }

    #[test]
    fn start_send_refuses_too_long_and_concurrent_transmissions() {
        let mut line = LineState::new();
        assert_eq!(
            line.start_send(&[0; TX_CAPACITY + 1]),
            Err(TxError::TooLong)
        );
        line.start_send(&[0; TX_CAPACITY]).unwrap();
        assert_eq!(line.start_send(&[1]), Err(TxError::Busy));
        line.abort_send();
        assert_eq!(line.take_send_result(), Some(Err(TxError::Aborted)));
        assert!(line.start_send(&[]).is_ok());
        assert_eq!(line.take_send_result(), Some(Ok(())));
    }

    #[test]
    fn clear_rx_forgets_everything_received() {
        let mut line = LineState::new();
        for i in 0..=RX_CAPACITY {
            line.on_char(i as u8, true, false);
        }
        line.clear_rx();
        assert_eq!(line.pop(), None);
    }

    #[test]
    fn any_sequence_of_interrupt_events_never_panics() {
        // A small deterministic generator in place of proptest (not a dependency here).
        let mut seed = 0x2545_F491_4F6C_DD1Du64;
        let mut next = move || {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            seed
        };
        for _ in 0..200 {
            let mut line = LineState::new();
            line.set_character_repetition(next() & 1 == 1);
            for _ in 0..2_000 {
                let r = next();
                match r % 7 {
                    0 => {
                        let len = (r >> 8) as usize % (TX_CAPACITY + 4);
                        let _ = line.start_send(&vec![r as u8; len]);
                    }
                    1 => {
                        let _ = line.next_to_send();
                    }
                    2 => line.abort_send(),
                    3 => {
                        let _ = line.pop();
                    }
                    4 => line.on_overrun(),
                    _ => {
                        let _ = line.on_char((r >> 16) as u8, r & 0x100 != 0, r & 0x200 != 0);
                    }
                }
            }
        }
    }
}
