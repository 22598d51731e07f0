//! Shared by the T=1 tests: hex, the transcript `check` helper, and a reader and a card wired
//! through a (optionally lossy) simulated line with virtual time.
#![allow(
    dead_code,
    clippy::indexing_slicing,
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic
)]

use std::collections::VecDeque;
use std::fmt::Debug;

use tessera_iso7816_3::t1::{
    Action, Card, CardEvent, Config, Deadline, Event, Reader, ReaderEvent,
};

/// Bytes from hex with optional spaces: `"00 C1 01 FE 3E"`.
pub fn hex(text: &str) -> Vec<u8> {
    let digits: Vec<u8> = text.bytes().filter(|b| !b.is_ascii_whitespace()).collect();
    assert!(digits.len() % 2 == 0, "odd hex: {text}");
    digits
        .chunks(2)
        .map(|pair| u8::from_str_radix(std::str::from_utf8(pair).unwrap(), 16).unwrap())
        .collect()
}

pub fn to_hex(bytes: &[u8]) -> String {
    bytes
        .iter()
        .map(|b| format!("{b:02X}"))
        .collect::<Vec<_>>()
        .join(" ")
}

// ---------------------------------------------------------------------------------------------
// Transcripts

/// An input to an engine in a transcript.
#[derive(Debug, Clone, Copy)]
pub enum Step<'a> {
    /// Reader application: `transmit` this APDU.
    Transmit(&'a str),
    /// Reader application: `request_ifsd`.
    RequestIfsd(u8),
    /// Reader application: `resynch`.
    Resynch,
    /// Card application: write this response and `respond`.
    Respond(&'a str),
    /// Card application: `request_wtx`.
    Wtx(u8),
    /// Card application: `request_ifsc`.
    RequestIfsc(u8),
    /// The peer's block arrives whole and BGT passes (the step asserts BGT was armed).
    Block(&'a str),
    /// Characters arrive (any part of a block).
    Bytes(&'a str),
    /// A character with a parity error arrives.
    Parity,
    /// The armed deadline passes.
    Timeout,
}

/// The action expected after a step.
#[derive(Debug, Clone, PartialEq)]
pub struct Expect<C> {
    pub transmit: Option<Vec<u8>>,
    pub deadline: Option<Deadline>,
    pub completion: Option<C>,
}

impl<C> Expect<C> {
    pub fn arm(mut self, deadline: Deadline) -> Self {
        self.deadline = Some(deadline);
        self
    }
    pub fn done(mut self, completion: C) -> Self {
        self.completion = Some(completion);
        self
    }
}

/// Expect this block to be transmitted (and nothing armed unless `.arm(..)`).
pub fn send<C>(block: &str) -> Expect<C> {
    Expect {
        transmit: Some(hex(block)),
        deadline: None,
        completion: None,
    }
}
/// Expect nothing transmitted, only this deadline armed.
pub fn arm<C>(deadline: Deadline) -> Expect<C> {
    Expect {
        transmit: None,
        deadline: Some(deadline),
        completion: None,
    }
}
/// Expect only this completion.
pub fn done<C>(completion: C) -> Expect<C> {
    Expect {
        transmit: None,
        deadline: None,
        completion: Some(completion),
    }
}
/// Expect nothing at all.
pub fn nothing<C>() -> Expect<C> {
    Expect {
        transmit: None,
        deadline: None,
        completion: None,
    }
}
pub const fn bwt(multiplier: u8) -> Deadline {
    Deadline::Bwt { multiplier }
}
pub const CWT: Deadline = Deadline::Cwt;
pub const BGT: Deadline = Deadline::Bgt;

/// What a transcript can drive: both engines.
pub trait Driven {
    type Completion: Debug + PartialEq + Copy;
    fn event(&mut self, event: Event<'_>) -> Expect<Self::Completion>;
    fn app(&mut self, step: Step<'_>) -> Expect<Self::Completion>;
}

fn owned<C: Copy>(action: Action<'_, C>) -> Expect<C> {
    Expect {
        transmit: action.transmit.map(<[u8]>::to_vec),
        deadline: action.deadline,
        completion: action.completion,
    }
}

impl<B: AsRef<[u8]> + AsMut<[u8]>> Driven for Reader<B> {
    type Completion = ReaderEvent;
    fn event(&mut self, event: Event<'_>) -> Expect<ReaderEvent> {
        owned(self.handle(event))
    }
    fn app(&mut self, step: Step<'_>) -> Expect<ReaderEvent> {
        match step {
            Step::Transmit(apdu) => {
                let apdu = hex(apdu);
                self.buffer_mut()[..apdu.len()].copy_from_slice(&apdu);
                owned(self.transmit(apdu.len()).expect("transmit"))
            }
            Step::RequestIfsd(ifsd) => owned(self.request_ifsd(ifsd).expect("request_ifsd")),
            Step::Resynch => owned(self.resynch().expect("resynch")),
            other => panic!("not a reader call: {other:?}"),
        }
    }
}

impl<B: AsRef<[u8]> + AsMut<[u8]>> Driven for Card<B> {
    type Completion = CardEvent;
    fn event(&mut self, event: Event<'_>) -> Expect<CardEvent> {
        owned(self.handle(event))
    }
    fn app(&mut self, step: Step<'_>) -> Expect<CardEvent> {
        match step {
            Step::Respond(apdu) => {
                let apdu = hex(apdu);
                self.buffer_mut()[..apdu.len()].copy_from_slice(&apdu);
                owned(self.respond(apdu.len()).expect("respond"))
            }
            Step::Wtx(multiplier) => owned(self.request_wtx(multiplier).expect("request_wtx")),
            Step::RequestIfsc(ifsc) => owned(self.request_ifsc(ifsc).expect("request_ifsc")),
            other => panic!("not a card call: {other:?}"),
        }
    }
}

/// Runs a transcript: each step's action must equal the expectation.
pub fn check<E: Driven>(engine: &mut E, transcript: &[(Step<'_>, Expect<E::Completion>)]) {
    for (line, (step, expected)) in transcript.iter().enumerate() {
        let got = match *step {
            Step::Block(block) => {
                let bytes = hex(block);
                let armed = engine.event(Event::Received(&bytes));
                assert_eq!(
                    armed,
                    arm(BGT),
                    "line {line}: {step:?}: BGT after a whole block"
                );
                engine.event(Event::DeadlinePassed)
            }
            Step::Bytes(bytes) => engine.event(Event::Received(&hex(bytes))),
            Step::Parity => engine.event(Event::ParityError),
            Step::Timeout => engine.event(Event::DeadlinePassed),
            app => engine.app(app),
        };
        assert_eq!(
            got,
            *expected,
            "line {line}: {step:?}\n  got transmit {:?}\n want transmit {:?}",
            got.transmit.as_deref().map(to_hex),
            expected.transmit.as_deref().map(to_hex)
        );
    }
}

// ---------------------------------------------------------------------------------------------
// A reader and a card on one simulated line

/// SplitMix64: a small seeded generator, so runs are reproducible without dependencies.
#[derive(Debug, Clone)]
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Self {
        Rng(seed)
    }
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    /// Uniform in `lo..=hi`.
    pub fn range(&mut self, lo: u64, hi: u64) -> u64 {
        lo + self.next_u64() % (hi - lo + 1)
    }
    /// A number of Bernoulli(`p`) trials until the first success (geometric), for skipping
    /// ahead to the next fault instead of drawing per byte.
    pub fn gap(&mut self, p: f64) -> u64 {
        if p <= 0.0 {
            return u64::MAX;
        }
        let u = ((self.next_u64() >> 11) as f64 + 0.5) / (1u64 << 53) as f64;
        (u.ln() / (1.0 - p).ln()).floor() as u64
    }
}

/// Per-character fault probabilities of the line.
#[derive(Debug, Clone, Copy, Default)]
pub struct FaultRates {
    /// A bit of the character inverted, undetected by parity (a multi-bit hit).
    pub flip: f64,
    /// The character arrives with a parity error the UART reports.
    pub parity: f64,
    /// The character is lost.
    pub drop: f64,
    /// The character arrives twice.
    pub dup: f64,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct FaultCounts {
    pub flip: u64,
    pub parity: u64,
    pub drop: u64,
    pub dup: u64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Fault {
    Flip,
    Parity,
    Drop,
    Dup,
}

/// What travels on the line: characters, or one character with a parity error.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Chunk {
    Data(Vec<u8>),
    Parity,
}

/// One direction of the line, with fault injection.
#[derive(Debug)]
pub struct Direction {
    queue: VecDeque<Chunk>,
    /// Characters of the front chunk already delivered.
    front: usize,
    rates: FaultRates,
    next: [u64; 4],
    pub counts: FaultCounts,
}

impl Direction {
    fn new(rates: FaultRates, rng: &mut Rng) -> Self {
        let mut d = Direction {
            queue: VecDeque::new(),
            front: 0,
            rates,
            next: [0; 4],
            counts: FaultCounts::default(),
        };
        for fault in [Fault::Flip, Fault::Parity, Fault::Drop, Fault::Dup] {
            d.next[fault as usize] = rng.gap(d.rate(fault));
        }
        d
    }
    fn rate(&self, fault: Fault) -> f64 {
        match fault {
            Fault::Flip => self.rates.flip,
            Fault::Parity => self.rates.parity,
            Fault::Drop => self.rates.drop,
            Fault::Dup => self.rates.dup,
        }
    }
    pub fn set_rates(&mut self, rates: FaultRates, rng: &mut Rng) {
        self.rates = rates;
        for fault in [Fault::Flip, Fault::Parity, Fault::Drop, Fault::Dup] {
            self.next[fault as usize] = rng.gap(self.rate(fault));
        }
    }
    /// Schedules exactly one fault of `kind` (0 flip, 1 parity, 2 drop, 3 dup) on the
    /// character at `position` (counted from now), and no other.
    pub fn inject_once(&mut self, kind: usize, position: u64) {
        self.rates = FaultRates::default();
        self.next = [u64::MAX; 4];
        self.next[kind] = position;
    }
    /// Puts a transmitted block on the line, applying faults at their sampled positions.
    fn send(&mut self, block: &[u8], rng: &mut Rng) {
        let clean = *self.next.iter().min().unwrap();
        if clean >= block.len() as u64 {
            // No fault falls in this block.
            for next in &mut self.next {
                *next -= block.len() as u64;
            }
            self.queue.push_back(Chunk::Data(block.to_vec()));
            return;
        }
        let mut data = Vec::with_capacity(block.len() + 2);
        for &byte in block {
            let mut byte = Some(byte);
            let mut parity = false;
            let mut copies = 1;
            for fault in [Fault::Flip, Fault::Parity, Fault::Drop, Fault::Dup] {
                let next = &mut self.next[fault as usize];
                if *next > 0 {
                    *next -= 1;
                    continue;
                }
                *next = rng.gap(match fault {
                    Fault::Flip => self.rates.flip,
                    Fault::Parity => self.rates.parity,
                    Fault::Drop => self.rates.drop,
                    Fault::Dup => self.rates.dup,
                });
                match fault {
                    Fault::Flip => {
                        self.counts.flip += 1;
                        byte = byte.map(|b| b ^ (1 << rng.range(0, 7)));
                    }
                    Fault::Parity => {
                        self.counts.parity += 1;
                        parity = true;
                    }
                    Fault::Drop => {
                        self.counts.drop += 1;
                        copies = 0;
                    }
                    Fault::Dup => {
                        self.counts.dup += 1;
                        copies = 2;
                    }
                }
            }
            for _ in 0..copies {
                if parity {
                    if !data.is_empty() {
                        self.queue.push_back(Chunk::Data(std::mem::take(&mut data)));
                    }
                    self.queue.push_back(Chunk::Parity);
                } else if let Some(b) = byte {
                    data.push(b);
                }
            }
        }
        if !data.is_empty() {
            self.queue.push_back(Chunk::Data(data));
        }
    }
    fn is_empty(&self) -> bool {
        self.queue.is_empty()
    }
    /// Delivers the next part of the line to `deliver`: up to `max` characters, or one parity
    /// error.
    fn deliver<R>(&mut self, max: usize, deliver: impl FnOnce(Event<'_>) -> R) -> Option<R> {
        let result = match self.queue.front()? {
            Chunk::Parity => {
                self.queue.pop_front();
                deliver(Event::ParityError)
            }
            Chunk::Data(data) => {
                let end = (self.front + max).min(data.len());
                let result = deliver(Event::Received(&data[self.front..end]));
                self.front = end;
                if end == data.len() {
                    self.front = 0;
                    self.queue.pop_front();
                }
                result
            }
        };
        Some(result)
    }
}

/// Durations of the symbolic deadlines on the virtual clock, in etu (BWI 4, CWI 5).
pub fn etu(deadline: Deadline) -> u64 {
    match deadline {
        Deadline::Bgt => 22,
        Deadline::Cwt => 11 + (1 << 5),
        Deadline::Bwt { multiplier } => u64::from(multiplier.max(1)) * (11 + 16 * 960),
    }
}

/// How the simulated card application answers a command.
pub struct Reply {
    /// Ask for a waiting time extension before answering.
    pub wtx: Option<u8>,
    /// Announce a new IFSC before answering (only if `wtx` is `None`).
    pub ifsc: Option<u8>,
    /// Response length; the application has written it into the buffer.
    pub len: usize,
}

/// A reader and a card wired through two lossy directions, with a virtual clock: bytes in
/// flight are delivered first (in random chunks); when the line is quiet, the earliest armed
/// deadline fires.
pub struct Wire<'b> {
    pub reader: Reader<&'b mut [u8]>,
    pub card: Card<&'b mut [u8]>,
    pub to_card: Direction,
    pub to_reader: Direction,
    pub rng: Rng,
    pub now: u64,
    reader_deadline: Option<(u64, Deadline)>,
    card_deadline: Option<(u64, Deadline)>,
    /// Completions of the reader, in order.
    pub reader_events: Vec<ReaderEvent>,
    /// Completions of the card, in order.
    pub card_events: Vec<CardEvent>,
    /// Calls to `handle` so far.
    pub steps: u64,
    /// Largest delivery chunk.
    pub max_chunk: usize,
    /// Keep a log of the blocks (for debugging a failing seed).
    pub log: Option<Vec<String>>,
    /// Characters the two engines transmitted.
    pub bytes_sent: u64,
}

impl<'b> Wire<'b> {
    pub fn new(
        reader_cfg: Config,
        card_cfg: Config,
        reader_buf: &'b mut [u8],
        card_buf: &'b mut [u8],
        rates: FaultRates,
        seed: u64,
    ) -> Self {
        let mut rng = Rng::new(seed);
        let to_card = Direction::new(rates, &mut rng);
        let to_reader = Direction::new(rates, &mut rng);
        Wire {
            reader: Reader::new(reader_cfg, reader_buf),
            card: Card::new(card_cfg, card_buf),
            to_card,
            to_reader,
            rng,
            now: 0,
            reader_deadline: None,
            card_deadline: None,
            reader_events: Vec::new(),
            card_events: Vec::new(),
            steps: 0,
            max_chunk: 16,
            log: None,
            bytes_sent: 0,
        }
    }

    pub fn set_rates(&mut self, rates: FaultRates) {
        self.to_card.set_rates(rates, &mut self.rng);
        self.to_reader.set_rates(rates, &mut self.rng);
    }

    fn note(&mut self, text: impl FnOnce() -> String) {
        if let Some(log) = &mut self.log {
            log.push(text());
        }
    }

    /// Applies an action of the reader: bytes onto the line, deadline on the clock.
    pub fn reader_action(&mut self, action: Action<'_, ReaderEvent>) {
        if let Some(bytes) = action.transmit {
            if let Some(log) = &mut self.log {
                log.push(format!("{:>9} IFD > {}", self.now, to_hex(bytes)));
            }
            self.bytes_sent += bytes.len() as u64;
            self.to_card.send(bytes, &mut self.rng);
        }
        self.reader_deadline = action.deadline.map(|d| (self.now + etu(d), d));
        if let Some(event) = action.completion {
            self.reader_events.push(event);
            let now = self.now;
            self.note(|| format!("{now:>9} IFD : {event:?}"));
        }
    }

    /// Applies an action of the card.
    pub fn card_action(&mut self, action: Action<'_, CardEvent>) {
        if let Some(bytes) = action.transmit {
            if let Some(log) = &mut self.log {
                log.push(format!("{:>9} ICC > {}", self.now, to_hex(bytes)));
            }
            self.bytes_sent += bytes.len() as u64;
            self.to_reader.send(bytes, &mut self.rng);
        }
        self.card_deadline = action.deadline.map(|d| (self.now + etu(d), d));
        if let Some(event) = action.completion {
            self.card_events.push(event);
            let now = self.now;
            self.note(|| format!("{now:>9} ICC : {event:?}"));
        }
    }

    /// One step of the simulation; `app` answers the card's commands. Returns false when the
    /// line is quiet and nothing is armed.
    pub fn step(&mut self, app: &mut dyn FnMut(&mut [u8], usize) -> Reply) -> bool {
        self.steps += 1;
        let max = self.rng.range(1, self.max_chunk as u64) as usize;
        if !self.to_card.is_empty() {
            let card = &mut self.card;
            let action = self
                .to_card
                .deliver(max, |event| copy_action(card.handle(event)))
                .unwrap();
            self.apply_card(action, app);
            return true;
        }
        if !self.to_reader.is_empty() {
            let reader = &mut self.reader;
            let action = self
                .to_reader
                .deliver(max, |event| copy_action(reader.handle(event)))
                .unwrap();
            self.apply_reader(action);
            return true;
        }
        let card_first = match (self.reader_deadline, self.card_deadline) {
            (None, None) => return false,
            (Some(_), None) => false,
            (None, Some(_)) => true,
            (Some((r, _)), Some((c, _))) => c <= r,
        };
        if card_first {
            let (at, _) = self.card_deadline.take().unwrap();
            self.now = self.now.max(at);
            let action = copy_action(self.card.handle(Event::DeadlinePassed));
            self.apply_card(action, app);
        } else {
            let (at, deadline) = self.reader_deadline.take().unwrap();
            self.now = self.now.max(at);
            if matches!(deadline, Deadline::Bwt { .. }) {
                let now = self.now;
                self.note(|| format!("{now:>9} IFD : BWT passed"));
            }
            let action = copy_action(self.reader.handle(Event::DeadlinePassed));
            self.apply_reader(action);
        }
        true
    }

    fn apply_reader(&mut self, action: OwnedAction<ReaderEvent>) {
        self.reader_action(action.borrowed());
    }

    fn apply_card(
        &mut self,
        action: OwnedAction<CardEvent>,
        app: &mut dyn FnMut(&mut [u8], usize) -> Reply,
    ) {
        let command = match action.completion {
            Some(CardEvent::Command { len }) => Some(len),
            Some(CardEvent::CommandTooLong { .. }) => Some(0),
            _ => None,
        };
        self.card_action(action.borrowed());
        if let Some(len) = command {
            let reply = app(self.card.buffer_mut(), len);
            if let Some(multiplier) = reply.wtx {
                let action = copy_action(self.card.request_wtx(multiplier).expect("request_wtx"));
                self.card_action(action.borrowed());
            } else if let Some(ifsc) = reply.ifsc {
                let action = copy_action(self.card.request_ifsc(ifsc).expect("request_ifsc"));
                self.card_action(action.borrowed());
            }
            let action = copy_action(self.card.respond(reply.len).expect("respond"));
            self.card_action(action.borrowed());
        }
    }

    /// Runs until the reader reports a terminal completion (response or failure) and the line
    /// is quiet again; panics after `max_steps`.
    pub fn run_transaction(
        &mut self,
        max_steps: u64,
        app: &mut dyn FnMut(&mut [u8], usize) -> Reply,
    ) -> ReaderEvent {
        let start = self.steps;
        let first = self.reader_events.len();
        loop {
            assert!(
                self.steps - start < max_steps,
                "no completion after {max_steps} steps"
            );
            let terminal = self.reader_events[first..].iter().copied().find(|e| {
                matches!(
                    e,
                    ReaderEvent::Response { .. }
                        | ReaderEvent::Failed(_)
                        | ReaderEvent::IfsdSet(_)
                        | ReaderEvent::Resynchronised
                )
            });
            if !self.step(app) {
                return terminal.expect("line quiet, nothing armed, and no completion: hang");
            }
        }
    }
}

/// An action with its bytes copied, so the engine can be used again.
pub struct OwnedAction<C> {
    transmit: Option<Vec<u8>>,
    deadline: Option<Deadline>,
    completion: Option<C>,
}

impl<C: Copy> OwnedAction<C> {
    pub fn borrowed(&self) -> Action<'_, C> {
        Action {
            transmit: self.transmit.as_deref(),
            deadline: self.deadline,
            completion: self.completion,
        }
    }
}

pub fn copy_action<C: Copy>(action: Action<'_, C>) -> OwnedAction<C> {
    OwnedAction {
        transmit: action.transmit.map(<[u8]>::to_vec),
        deadline: action.deadline,
        completion: action.completion,
    }
}
