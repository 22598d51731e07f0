//! The T=1 engines (ISO/IEC 7816-3 §11.6): a reader and a card wired to each other. The fuzz
//! input picks the configuration and the command, then drives the line: how characters are
//! chunked, which are corrupted, lost, duplicated or flagged with a parity error, when
//! deadlines fire, and when the card application answers or asks for WTX / a new IFSC. Then
//! the line turns clean and the run must settle: the reader ends idle (a response or a typed
//! error) or asks for a reset (card unresponsive), within a bounded number of steps. Nothing
//! may panic.
#![no_main]

use std::collections::VecDeque;

use arbitrary::{Arbitrary, Unstructured};
use libfuzzer_sys::fuzz_target;
use tessera_iso7816_3::t1::{Action, Card, Config, Deadline, Edc, Event, Reader};

/// Steps allowed for the clean line to settle (a 600-byte APDU at IFSC 1 needs a few thousand).
const SETTLE_STEPS: usize = 200_000;

#[derive(Debug, Arbitrary)]
enum Op {
    /// Deliver up to n characters to the card / the reader.
    ToCard(u8),
    ToReader(u8),
    /// Damage the next character in flight to the card / reader.
    FlipToCard(u8),
    FlipToReader(u8),
    DropToCard,
    DropToReader,
    DupToCard,
    DupToReader,
    ParityToCard,
    ParityToReader,
    /// Fire the deadline armed by the reader / the card (whatever it is).
    ReaderDeadline,
    CardDeadline,
    /// Card application calls.
    Respond(u16),
    Wtx(u8),
    Ifsc(u8),
    /// Reader application calls.
    Transmit(u16),
    RequestIfsd(u8),
    Resynch,
}

/// Characters in flight; `None` is a character with a parity error.
type Line = VecDeque<Option<u8>>;

struct Sim<'a> {
    reader: Reader<&'a mut [u8]>,
    card: Card<&'a mut [u8]>,
    to_card: Line,
    to_reader: Line,
    reader_armed: Option<Deadline>,
    card_armed: Option<Deadline>,
}

impl Sim<'_> {
    fn apply_action<C>(line: &mut Line, armed: &mut Option<Deadline>, action: Action<'_, C>) {
        if let Some(bytes) = action.transmit {
            line.extend(bytes.iter().map(|&b| Some(b)));
        }
        *armed = action.deadline;
    }

    fn deliver_to_card(&mut self, max: usize) {
        let mut n = 0;
        while n < max.max(1) {
            let Some(front) = self.to_card.pop_front() else {
                break;
            };
            let action = match front {
                Some(byte) => self.card.handle(Event::Received(&[byte])),
                None => self.card.handle(Event::ParityError),
            };
            Self::apply_action(&mut self.to_reader, &mut self.card_armed, action);
            n += 1;
        }
    }

    fn deliver_to_reader(&mut self, max: usize) {
        // Contiguous good characters go in one chunk, as a DMA driver would hand them over.
        let mut chunk = Vec::new();
        while chunk.len() < max.max(1) {
            match self.to_reader.front() {
                Some(Some(byte)) => {
                    chunk.push(*byte);
                    self.to_reader.pop_front();
                }
                Some(None) if chunk.is_empty() => {
                    self.to_reader.pop_front();
                    let action = self.reader.handle(Event::ParityError);
                    Self::apply_action(&mut self.to_card, &mut self.reader_armed, action);
                    return;
                }
                _ => break,
            }
        }
        if !chunk.is_empty() {
            let action = self.reader.handle(Event::Received(&chunk));
            Self::apply_action(&mut self.to_card, &mut self.reader_armed, action);
        }
    }

    fn fire_reader(&mut self) {
        let action = self.reader.handle(Event::DeadlinePassed);
        Self::apply_action(&mut self.to_card, &mut self.reader_armed, action);
    }

    fn fire_card(&mut self) {
        let action = self.card.handle(Event::DeadlinePassed);
        Self::apply_action(&mut self.to_reader, &mut self.card_armed, action);
    }

    fn respond(&mut self, len: usize) {
        let len = len.min(self.card.buffer().len());
        if let Ok(action) = self.card.respond(len) {
            Self::apply_action(&mut self.to_reader, &mut self.card_armed, action);
        }
    }

    fn apply(&mut self, op: Op) {
        match op {
            Op::ToCard(n) => self.deliver_to_card(n.into()),
            Op::ToReader(n) => self.deliver_to_reader(n.into()),
            Op::FlipToCard(mask) => damage(&mut self.to_card, |b| b.map(|b| b ^ mask)),
            Op::FlipToReader(mask) => damage(&mut self.to_reader, |b| b.map(|b| b ^ mask)),
            Op::DropToCard => {
                self.to_card.pop_front();
            }
            Op::DropToReader => {
                self.to_reader.pop_front();
            }
            Op::DupToCard => dup(&mut self.to_card),
            Op::DupToReader => dup(&mut self.to_reader),
            Op::ParityToCard => damage(&mut self.to_card, |_| None),
            Op::ParityToReader => damage(&mut self.to_reader, |_| None),
            Op::ReaderDeadline => self.fire_reader(),
            Op::CardDeadline => self.fire_card(),
            Op::Respond(len) => self.respond(len.into()),
            Op::Wtx(multiplier) => {
                if let Ok(action) = self.card.request_wtx(multiplier) {
                    Self::apply_action(&mut self.to_reader, &mut self.card_armed, action);
                }
            }
            Op::Ifsc(ifsc) => {
                if let Ok(action) = self.card.request_ifsc(ifsc) {
                    Self::apply_action(&mut self.to_reader, &mut self.card_armed, action);
                }
            }
            Op::Transmit(len) => {
                let len = usize::from(len).min(self.reader.buffer().len());
                if let Ok(action) = self.reader.transmit(len) {
                    Self::apply_action(&mut self.to_card, &mut self.reader_armed, action);
                }
            }
            Op::RequestIfsd(ifsd) => {
                if let Ok(action) = self.reader.request_ifsd(ifsd) {
                    Self::apply_action(&mut self.to_card, &mut self.reader_armed, action);
                }
            }
            Op::Resynch => {
                if let Ok(action) = self.reader.resynch() {
                    Self::apply_action(&mut self.to_card, &mut self.reader_armed, action);
                }
            }
        }
    }

    /// One step on a clean line; false when everything is quiet.
    fn settle_step(&mut self) -> bool {
        if self.card.is_processing() {
            let len = self.card.buffer().len().min(300);
            self.respond(len);
        }
        if !self.to_card.is_empty() {
            self.deliver_to_card(64);
        } else if !self.to_reader.is_empty() {
            self.deliver_to_reader(64);
        } else if self.card_armed.is_some() {
            // The card only arms CWT and BGT, both shorter than BWT.
            self.fire_card();
        } else if self.reader_armed.is_some() {
            self.fire_reader();
        } else {
            return false;
        }
        true
    }
}

fn damage(line: &mut Line, f: impl FnOnce(Option<u8>) -> Option<u8>) {
    if let Some(front) = line.front_mut() {
        *front = f(*front);
    }
}

fn dup(line: &mut Line) {
    if let Some(&front) = line.front() {
        line.push_front(front);
    }
}

fuzz_target!(|data: &[u8]| {
    let mut u = Unstructured::new(data);
    let Ok((ifsc, ifsd, crc, retry_limit, len)) = <(u8, u8, bool, u8, u16)>::arbitrary(&mut u)
    else {
        return;
    };
    let config = Config {
        ifsc,
        ifsd,
        edc: if crc { Edc::Crc } else { Edc::Lrc },
        retry_limit: retry_limit % 4,
        ..Config::DEFAULT
    };
    let mut reader_buf = [0u8; 600];
    let mut card_buf = [0u8; 600];
    for (i, byte) in reader_buf.iter_mut().enumerate() {
        *byte = i as u8;
    }
    let mut sim = Sim {
        reader: Reader::new(config, &mut reader_buf[..]),
        card: Card::new(config, &mut card_buf[..]),
        to_card: Line::new(),
        to_reader: Line::new(),
        reader_armed: None,
        card_armed: None,
    };
    sim.apply(Op::Transmit(len % 601));

    // The fuzzer drives the line (`arbitrary` yields defaults, not errors, once the data runs
    // out, so stop on empty input).
    while !u.is_empty() {
        let Ok(op) = Op::arbitrary(&mut u) else { break };
        sim.apply(op);
    }

    // Then the line is clean: the run must settle.
    let mut steps = 0;
    while sim.settle_step() {
        steps += 1;
        assert!(
            steps < SETTLE_STEPS,
            "no settlement after {SETTLE_STEPS} steps"
        );
    }
    assert!(
        sim.reader.is_idle() || sim.reader.needs_reset(),
        "line quiet, nothing armed, but the reader is still in an exchange"
    );
});
