//! The card on its contacts, driven by the reader side of tessera-iso7816-3 (ATR progress, PPS,
//! the T=1 reader engine) in modelled time: ATR, PPS and the rate switch, S(IFS), chained
//! responses, WTX during long operations, warm reset, a pulled card.
//!
//! [`Bench`] is a minimal board: a 3.6 MHz clock, a reader at its own F and D, each character
//! delivered when its 12 etu have passed, the reader's deadlines (BWT, CWT, BGT) turned into
//! modelled time with `rate`. A character sent at a rate the other side does not use would be
//! garbage: the bench fails the test instead, since these tests never mismatch.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]

mod support;

use std::collections::VecDeque;
use std::num::NonZeroU32;
use std::sync::OnceLock;
use std::time::Duration;

use proptest::prelude::*;
use support::{hex, keygen_rsa, INIT_DEFAULT, SELECT, VERIFY_PIN, VERIFY_WRONG};
use tessera_card::applet::AppletConfig;
use tessera_card::contacts::{
    ContactEvent, Contacts, ContactsConfig, LinkState, PpsPolicy, Transmission, CHARACTER_ETU,
};
use tessera_card::memory::{MemoryStorage, Storage};
use tessera_card::virtual_card::{AtrProfile, CardConfig};
use tessera_iso7816_3::atr::{self, AtrRepr, Convention, Mode, Protocol, ProtocolSet};
use tessera_iso7816_3::pps::{self, PpsRepr};
use tessera_iso7816_3::rate::{Cycles, Etu, FiDi, LineParams, Timing};
use tessera_iso7816_3::t1::{self, Deadline, Edc, Event, Reader, ReaderEvent};

/// The Nitrokey HSM 2's card clock (hardware.md §A).
const CLOCK: NonZeroU32 = NonZeroU32::new(3_600_000).unwrap();

fn cycles(n: u64) -> Duration {
    Duration::from_nanos(Cycles::whole(n).nanos_ceil(CLOCK))
}

/// A character from the card on its way to the reader.
#[derive(Debug, Clone, Copy)]
struct Char {
    start: Duration,
    end: Duration,
    byte: u8,
    fi_di: FiDi,
}

/// A reader engine's action, copied out of its borrow.
struct Step {
    transmit: Option<Vec<u8>>,
    deadline: Option<Deadline>,
    completion: Option<ReaderEvent>,
}

impl Step {
    fn of(action: t1::Action<'_, ReaderEvent>) -> Step {
        Step {
            transmit: action.transmit.map(<[u8]>::to_vec),
            deadline: action.deadline,
            completion: action.completion,
        }
    }
}

/// A minimal board: the card's contacts, a reader at its own rate, modelled time.
struct Bench {
    card: Contacts<MemoryStorage>,
    now: Duration,
    /// The reader's F and D.
    fi_di: FiDi,
    /// Characters the card started and the reader has not read yet.
    to_reader: VecDeque<Char>,
    /// Every transmission of the card, in order.
    wire: Vec<Transmission>,
    /// BWT deadlines of the reader that passed (a card that is late with its answer or WTX).
    bwt_expired: usize,
    /// Leading edge of the reader's last character.
    reader_last_start: Duration,
}

/// A card memory holding a new card's identity, made once (generating it is the slow part).
fn template() -> &'static Vec<u8> {
    static IMAGE: OnceLock<Vec<u8>> = OnceLock::new();
    IMAGE.get_or_init(|| {
        let memory = MemoryStorage::new();
        let contacts = Contacts::new(
            memory.clone(),
            CardConfig::default(),
            ContactsConfig::default(),
            [7; 32],
            [9; 32],
        )
        .unwrap();
        drop(contacts);
        memory.snapshot().unwrap()
    })
}

fn card_memory() -> MemoryStorage {
    let mut memory = MemoryStorage::new();
    memory.commit(template()).unwrap();
    memory
}

impl Bench {
    fn new(profile: AtrProfile, config: ContactsConfig) -> Bench {
        let card = CardConfig {
            atr: profile,
            applet: AppletConfig::default(),
        };
        let card = Contacts::new(card_memory(), card, config, [7; 32], [9; 32]).unwrap();
        Bench {
            card,
            now: Duration::ZERO,
            fi_di: FiDi::DEFAULT,
            to_reader: VecDeque::new(),
            wire: Vec::new(),
            bwt_expired: 0,
            reader_last_start: Duration::ZERO,
        }
    }

    fn v3() -> Bench {
        Bench::new(AtrProfile::V3, ContactsConfig::default())
    }

    fn collect(&mut self, transmissions: Vec<Transmission>) {
        for tx in transmissions {
            assert!(tx.start >= self.now, "a transmission starts in the past");
            for (i, &byte) in tx.bytes.iter().enumerate() {
                self.to_reader.push_back(Char {
                    start: tx.character_start(i),
                    end: tx.character_end(i),
                    byte,
                    fi_di: tx.fi_di,
                });
            }
            self.wire.push(tx);
        }
    }

    /// An event on the contacts at `t`.
    fn at(&mut self, t: Duration, event: ContactEvent<'_>) {
        self.now = self.now.max(t);
        let out = self.card.handle(self.now, event);
        self.collect(out);
    }

    /// Lets the card run until `t`.
    fn run_until(&mut self, t: Duration) {
        while let Some(poll) = self.card.next_poll().filter(|&p| p <= t) {
            self.now = self.now.max(poll);
            let out = self.card.poll(self.now);
            self.collect(out);
        }
        self.now = self.now.max(t);
    }

    /// The next character from the card whose leading edge comes by `deadline` (any time if
    /// `None`); the reader has it at its end. `None`: nothing came (the time is `deadline`).
    fn next_char(&mut self, deadline: Option<Duration>) -> Option<Char> {
        let within = |t: Duration| deadline.is_none_or(|d| t <= d);
        loop {
            if let Some(c) = self.to_reader.front().copied() {
                if !within(c.start) {
                    break;
                }
                self.to_reader.pop_front();
                assert_eq!(c.fi_di, self.fi_di, "the card sends at another rate");
                self.run_until(c.end);
                return Some(c);
            }
            match self.card.next_poll() {
                Some(poll) if within(poll) => {
                    self.now = self.now.max(poll);
                    let out = self.card.poll(self.now);
                    self.collect(out);
                }
                _ => break,
            }
        }
        if let Some(d) = deadline {
            self.run_until(d);
        }
        None
    }

    /// The reader's character time.
    fn reader_char(&self) -> Duration {
        let etu = self.fi_di.etu().unwrap();
        Duration::from_nanos(etu.times(CHARACTER_ETU).nanos_ceil(CLOCK))
    }

    /// The reader sends `bytes` from now, one character time each.
    fn send(&mut self, bytes: &[u8]) {
        for &byte in bytes {
            self.reader_last_start = self.now;
            let end = self.now + self.reader_char();
            if self.card.is_powered() {
                assert_eq!(
                    self.card.fi_di(),
                    self.fi_di,
                    "the card listens at another rate"
                );
            }
            self.at(end, ContactEvent::Received(&[byte]));
        }
    }

    /// Reads characters until `complete` says how long the message is, or no character comes:
    /// the first within `timeout`, each next within 100 ms of the one before.
    fn read_message(
        &mut self,
        timeout: Duration,
        complete: impl Fn(&[u8]) -> Option<usize>,
    ) -> Vec<u8> {
        let mut bytes = Vec::new();
        while complete(&bytes).is_none() {
            let wait = if bytes.is_empty() {
                timeout
            } else {
                Duration::from_millis(100)
            };
            let deadline = self.now + wait;
            match self.next_char(Some(deadline)) {
                Some(c) => bytes.push(c.byte),
                None => break,
            }
        }
        bytes
    }

    /// Cold activation (§6.2.2): CLK, VCC, RST low, RST high 500 cycles later; reads the ATR.
    /// Returns the ATR and the time from RST rising to its first character.
    fn activate(&mut self) -> (Vec<u8>, Duration) {
        let t0 = self.now;
        self.at(t0, ContactEvent::Clock(Some(CLOCK)));
        self.at(t0, ContactEvent::Rst(false));
        self.at(t0, ContactEvent::Vcc(true));
        self.reset_line(t0 + cycles(500))
    }

    /// RST rises at `t` (after being low); reads the ATR.
    fn reset_line(&mut self, t: Duration) -> (Vec<u8>, Duration) {
        self.fi_di = FiDi::DEFAULT;
        self.at(t, ContactEvent::Rst(true));
        let first = self.wire.len();
        let atr =
            self.read_message(
                cycles(40_000) + Duration::from_millis(10),
                |b| match atr::progress(b) {
                    Ok(atr::Progress::Complete { len }) => Some(len),
                    _ => None,
                },
            );
        let delay = self
            .wire
            .get(first)
            .map_or(Duration::MAX, |tx| tx.start - t);
        (atr, delay)
    }

    /// Warm reset (§6.2.3): RST low now, high 500 cycles later; reads the ATR.
    fn warm_reset(&mut self) -> Vec<u8> {
        let t = self.now;
        self.at(t, ContactEvent::Rst(false));
        self.reset_line(t + cycles(500)).0
    }

    /// A PPS exchange (§9): the request, and the response if one came within 100 ms. The
    /// reader switches to the agreed rate when the response checks out.
    fn pps(&mut self, request: &[u8]) -> Vec<u8> {
        self.send(request);
        let response = self.read_message(Duration::from_millis(100), |b| match pps::progress(b) {
            Ok(pps::Progress::Complete { len }) => Some(len),
            _ => None,
        });
        if let (Ok(req), false) = (PpsRepr::parse_bytes(request), response.is_empty()) {
            if let Ok(agreement) = pps::check_response_bytes(&req, &response) {
                self.fi_di = agreement.fi_di;
            }
        }
        response
    }

    /// Sends a raw T=1 block and reads the card's answer block (NAD PCB LEN INF LRC).
    fn block(&mut self, block: &[u8]) -> Vec<u8> {
        self.send(block);
        self.read_message(Duration::from_secs(3), |b| {
            b.get(2)
                .map(|&len| 4 + usize::from(len))
                .filter(|&n| b.len() >= n)
        })
    }

    /// The reader's timing at its rate, with the ATR's T=1 parameters (BWI 4, CWI 13).
    fn timing(&self) -> Timing {
        LineParams {
            clock_hz: CLOCK.get(),
            fi_di: self.fi_di,
            wt_fi: FiDi::from_byte(0x18).fi(),
            n: 0xFF,
            wi: 10,
            bwi: 4,
            cwi: 13,
        }
        .timing()
        .unwrap()
    }

    /// Drives the reader engine from `step` until a final completion; returns every
    /// completion seen (informational ones included).
    fn drive(&mut self, reader: &mut Reader<Vec<u8>>, mut step: Step) -> Vec<ReaderEvent> {
        let mut events = Vec::new();
        for _ in 0..100_000 {
            let base = match &step.transmit {
                // BWT counts from the leading edge of the reader's last character.
                Some(bytes) => {
                    self.send(bytes);
                    self.reader_last_start
                }
                None => self.now,
            };
            let timing = self.timing();
            let deadline = step.deadline.map(|d| {
                let cycles = match d {
                    Deadline::Bwt { multiplier } => {
                        timing.bwt().saturating_mul(u64::from(multiplier.max(1)))
                    }
                    Deadline::Cwt => timing.cwt(),
                    Deadline::Bgt => timing.bgt(),
                };
                (d, base + Duration::from_nanos(timing.nanos(cycles)))
            });
            if let Some(event) = step.completion {
                events.push(event);
                if !matches!(
                    event,
                    ReaderEvent::WaitingTimeExtension(_) | ReaderEvent::IfscChanged(_)
                ) {
                    return events;
                }
            }
            step = match self.next_char(deadline.map(|(_, at)| at)) {
                Some(c) => Step::of(reader.handle(Event::Received(&[c.byte]))),
                None => {
                    let Some((kind, _)) = deadline else {
                        panic!("the reader waits for nothing: {events:?}");
                    };
                    if matches!(kind, Deadline::Bwt { .. }) {
                        self.bwt_expired += 1;
                    }
                    Step::of(reader.handle(Event::DeadlinePassed))
                }
            };
        }
        panic!("no end to the exchange: {events:?}");
    }

    /// Sends one command APDU; returns the response APDU (or the failure) and every completion.
    fn transact(
        &mut self,
        reader: &mut Reader<Vec<u8>>,
        apdu: &[u8],
    ) -> (Option<Vec<u8>>, Vec<ReaderEvent>) {
        reader.buffer_mut()[..apdu.len()].copy_from_slice(apdu);
        let step = Step::of(reader.transmit(apdu.len()).unwrap());
        let events = self.drive(reader, step);
        let response = match events.last() {
            Some(ReaderEvent::Response { len }) => Some(reader.buffer()[..*len].to_vec()),
            _ => None,
        };
        (response, events)
    }

    /// Sends `apdu` (hex) and checks the status word; returns the data.
    #[track_caller]
    fn check(&mut self, reader: &mut Reader<Vec<u8>>, apdu: &str, sw: u16) -> Vec<u8> {
        let (response, events) = self.transact(reader, &hex(apdu));
        let mut response = response.unwrap_or_else(|| panic!("{apdu}: no response: {events:?}"));
        let got = u16::from_be_bytes([response[response.len() - 2], response[response.len() - 1]]);
        assert_eq!(got, sw, "{apdu}: expected SW {sw:04X}, got {got:04X}");
        response.truncate(response.len() - 2);
        response
    }

    /// The T=1 blocks the card sent since transmission `from` (one block per transmission).
    fn card_blocks(&self, from: usize) -> Vec<Vec<u8>> {
        self.wire[from..]
            .iter()
            .map(|tx| tx.bytes.clone())
            .collect()
    }
}

/// A reader engine for the SmartCard-HSM ATR: IFSC 254, LRC.
fn reader() -> Reader<Vec<u8>> {
    Reader::new(t1::Config::new(254, Edc::Lrc), vec![0; 4096])
}

/// Activation, PPS to TA1, S(IFS 254): what the bridge does at boot (hardware.md §A).
fn session(bench: &mut Bench) -> Reader<Vec<u8>> {
    let (atr, _) = bench.activate();
    let ta1 = AtrRepr::parse_bytes(&atr).unwrap().fi_di().byte();
    let request = [0xFF, 0x11, ta1, 0xFF ^ 0x11 ^ ta1];
    assert_eq!(bench.pps(&request), request);
    let mut reader = reader();
    let step = Step::of(reader.request_ifsd(254).unwrap());
    assert_eq!(bench.drive(&mut reader, step), [ReaderEvent::IfsdSet(254)]);
    reader
}

fn assert_smartcard_hsm_atr(atr: &[u8], ta1: u8) {
    let repr = AtrRepr::parse_bytes(atr).unwrap();
    assert_eq!(repr.convention(), Convention::Direct);
    assert_eq!(repr.fi_di(), FiDi::from_byte(ta1));
    assert_eq!(repr.extra_guard_time(), 0xFF);
    assert_eq!(repr.mode(), Mode::Negotiable);
    assert_eq!(repr.protocols(), ProtocolSet::EMPTY.with(Protocol::T1));
    let t1 = repr.t1_params().unwrap();
    assert_eq!((t1.ifsc, t1.bwi, t1.cwi, t1.edc), (254, 4, 13, Edc::Lrc));
}

#[test]
fn the_v3_atr_comes_400_to_40000_cycles_after_rst_at_the_default_rate() {
    let mut bench = Bench::v3();
    let (atr, delay) = bench.activate();
    assert_eq!(atr, AtrProfile::V3.atr());
    assert_smartcard_hsm_atr(&atr, 0x18);
    // §6.2.2: the configured 10 000 cycles, inside 400..=40 000.
    assert_eq!(delay, cycles(10_000));
    // §8.1: at Fd = 372, Dd = 1, one character per 12 etu.
    let tx = &bench.wire[0];
    assert_eq!((tx.fi_di, tx.etu), (FiDi::DEFAULT, Etu::DEFAULT));
    assert_eq!(tx.character_start(1) - tx.start, cycles(12 * 372));
    assert_eq!(
        bench.card.link_state(),
        LinkState::Negotiable { pps_bytes: 0 }
    );
    assert_eq!(bench.card.convention(), Convention::Direct);
}

#[test]
fn the_v4_atr_offers_ta1_96() {
    let mut bench = Bench::new(AtrProfile::V4, ContactsConfig::default());
    let (atr, _) = bench.activate();
    assert_eq!(atr, AtrProfile::V4.atr());
    assert_smartcard_hsm_atr(&atr, 0x96);
}

#[test]
fn the_atr_delay_counts_clock_cycles_and_waits_for_the_clock() {
    let config = ContactsConfig {
        atr_delay_cycles: 400,
        ..ContactsConfig::default()
    };
    let mut bench = Bench::new(AtrProfile::V3, config);
    bench.at(Duration::ZERO, ContactEvent::Vcc(true));
    // RST rises while CLK is stopped: the card counts no cycles.
    bench.at(cycles(1), ContactEvent::Rst(true));
    bench.run_until(Duration::from_millis(5));
    assert!(bench.wire.is_empty(), "an ATR without a clock");
    assert_eq!(bench.card.next_poll(), None);
    // CLK starts at 5 ms: the ATR follows 400 cycles later.
    bench.at(Duration::from_millis(5), ContactEvent::Clock(Some(CLOCK)));
    assert_eq!(
        bench.card.next_poll(),
        Some(Duration::from_millis(5) + cycles(400))
    );
    bench.run_until(Duration::from_millis(6));
    assert_eq!(bench.wire[0].start, Duration::from_millis(5) + cycles(400));
    // Out of range: refused.
    let config = ContactsConfig {
        atr_delay_cycles: 40_001,
        ..ContactsConfig::default()
    };
    let refused = Contacts::new(
        card_memory(),
        CardConfig::default(),
        config,
        [7; 32],
        [9; 32],
    );
    assert!(refused.is_err());
}

#[test]
fn pps_18_is_accepted_and_the_rate_switches_after_the_response() {
    // Transcript, ISO 7816-3 §9.2 and §11.
    let mut bench = Bench::v3();
    bench.activate();
    // Reader: PPSS, PPS0 = T=1 with PPS1, PPS1 = 18 (F 372, D 12), PCK. Card: the echo.
    assert_eq!(bench.pps(&hex("FF 11 18 F6")), hex("FF 11 18 F6"));
    // The echo went out at Fd, Dd; the card runs at TA1's rate once it has gone.
    assert_eq!(bench.wire.last().unwrap().fi_di, FiDi::DEFAULT);
    assert_eq!(bench.card.fi_di(), FiDi::from_byte(0x18));
    assert_eq!(bench.card.link_state(), LinkState::T1);
    // Reader: S(IFS request 254) at 116 129 bps. Card: S(IFS response 254).
    assert_eq!(bench.block(&hex("00 C1 01 FE 3E")), hex("00 E1 01 FE 1E"));
    assert_eq!(bench.wire.last().unwrap().fi_di, FiDi::from_byte(0x18));
    assert_eq!(bench.card.ifsd(), 254);
    // Reader: I(0) SELECT the applet. Card: I(0) with the FCP (uninitialised, version 3.5).
    assert_eq!(
        bench.block(&hex("00 00 11 00 A4 04 00 0B E8 2B 06 01 04 01 81 C3 1F 02 01 00 25")),
        hex("00 00 1B 62 17 82 01 38 84 0B E8 2B 06 01 04 01 81 C3 1F 02 01 85 05 00 00 00 03 05 90 00 D3")
    );
}

#[test]
fn pps_on_v4_switches_to_ta1_96() {
    let mut bench = Bench::new(AtrProfile::V4, ContactsConfig::default());
    bench.activate();
    assert_eq!(bench.pps(&hex("FF 11 96 78")), hex("FF 11 96 78"));
    assert_eq!(bench.card.fi_di(), FiDi::from_byte(0x96));
    // And T=1 works at 225 kbps.
    let mut reader = reader();
    bench.check(
        &mut reader,
        "00 A4 04 00 0B E8 2B 06 01 04 01 81 C3 1F 02 01 00",
        0x9000,
    );
}

#[test]
fn pps_faster_than_ta1_is_answered_without_pps1() {
    // §9.3: PPS1 left out of the response means Fd, Dd.
    let mut bench = Bench::v3();
    bench.activate();
    // PPS1 = 97: F 372, D 64, faster than TA1 = 18. Response: PPS0 = 01 (T=1 only), PCK FE.
    assert_eq!(bench.pps(&hex("FF 11 97 79")), hex("FF 01 FE"));
    assert_eq!(bench.card.fi_di(), FiDi::DEFAULT);
    let mut reader = reader();
    bench.check(&mut reader, SELECT, 0x9000);
}

#[test]
fn pps_policies_decide_which_rates_the_card_takes() {
    let cases = [
        (PpsPolicy::UpToAtrRate, "FF 11 98 76", "FF 11 98 76"), // 512/12: slower than 96
        (PpsPolicy::AtrRateOnly, "FF 11 98 76", "FF 01 FE"),
        (PpsPolicy::AtrRateOnly, "FF 11 96 78", "FF 11 96 78"),
        (PpsPolicy::DefaultRateOnly, "FF 11 96 78", "FF 01 FE"),
    ];
    for (policy, request, response) in cases {
        let config = ContactsConfig {
            pps: policy,
            ..ContactsConfig::default()
        };
        let mut bench = Bench::new(AtrProfile::V4, config);
        bench.activate();
        assert_eq!(
            bench.pps(&hex(request)),
            hex(response),
            "{policy:?} {request}"
        );
    }
}

#[test]
fn an_erroneous_pps_request_gets_no_answer() {
    // §9.3: bad PCK, a protocol the card does not offer (T=0), a parity error: silence.
    for request in ["FF 11 18 00", "FF 10 18 F7"] {
        let mut bench = Bench::v3();
        bench.activate();
        assert_eq!(bench.pps(&hex(request)), Vec::<u8>::new(), "{request}");
        assert_eq!(bench.card.link_state(), LinkState::Mute);
        // Until a reset: then it answers again.
        assert_eq!(bench.warm_reset(), AtrProfile::V3.atr());
    }
    let mut bench = Bench::v3();
    bench.activate();
    bench.send(&[0xFF]);
    let now = bench.now;
    bench.at(now, ContactEvent::ParityError);
    assert_eq!(bench.card.link_state(), LinkState::Mute);
}

#[test]
fn without_pps_t1_starts_at_the_default_rate() {
    let mut bench = Bench::v3();
    bench.activate();
    let mut reader = reader();
    bench.check(&mut reader, SELECT, 0x9000);
    assert_eq!(bench.card.fi_di(), FiDi::DEFAULT);
    assert!(bench.wire.iter().all(|tx| tx.fi_di == FiDi::DEFAULT));
}

#[test]
fn ef_2f02_comes_back_chained_at_ifsd_254() {
    let mut bench = Bench::v3();
    let mut reader = session(&mut bench);
    bench.check(&mut reader, SELECT, 0x9000);
    let from = bench.wire.len();
    // READ BINARY EF 2F02, offset 0, extended Le 1024 (hardware.md §B): the whole chain.
    let data = bench.check(
        &mut reader,
        "00 B1 2F 02 00 00 04 54 02 00 00 04 00",
        0x6282,
    );
    let expected = bench
        .card
        .applet()
        .unwrap()
        .state()
        .device_certificates
        .clone();
    assert_eq!(data, expected);
    assert!(data.len() + 2 > 254, "short certificates: {}", data.len());
    // The card's I-blocks: full 254-byte blocks with M set, then the rest.
    let blocks = bench.card_blocks(from);
    let lens: Vec<usize> = blocks.iter().map(|b| usize::from(b[2])).collect();
    let (last, full) = lens.split_last().unwrap();
    assert!(full.iter().all(|&n| n == 254), "{lens:?}");
    assert_eq!(full.len() * 254 + last, data.len() + 2);
    assert!(
        blocks[..full.len()].iter().all(|b| b[1] & 0x20 != 0),
        "M bit"
    );
}

#[test]
fn without_s_ifs_responses_chain_at_the_initial_ifsd_32() {
    // §11.4.2: IFSD starts at 32 (what the stock firmware leaves it at, hardware.md §A).
    let mut bench = Bench::v3();
    bench.activate();
    let mut reader = Reader::new(t1::Config::new(254, Edc::Lrc), vec![0; 4096]);
    bench.check(&mut reader, SELECT, 0x9000);
    let from = bench.wire.len();
    let data = bench.check(
        &mut reader,
        "00 B1 2F 02 00 00 04 54 02 00 00 04 00",
        0x6282,
    );
    let blocks = bench.card_blocks(from);
    assert_eq!(blocks.len(), (data.len() + 2).div_ceil(32));
    assert!(blocks.iter().all(|b| b[2] <= 32));
}

#[test]
fn rsa_2048_key_generation_sends_wtx_before_bwt_expires() {
    // Busy time GUESS 1 s for RSA-2048 against BWT ≈ 1.59 s: one S(WTX request) at half BWT.
    let mut bench = Bench::v3();
    let mut reader = session(&mut bench);
    bench.check(&mut reader, SELECT, 0x9000);
    bench.check(&mut reader, INIT_DEFAULT, 0x9000);
    bench.check(&mut reader, SELECT, 0x9000);
    bench.check(&mut reader, VERIFY_PIN, 0x9000);
    let start = bench.now;
    let (response, events) = bench.transact(&mut reader, &hex(&keygen_rsa(1, 2048)));
    let response = response.unwrap_or_else(|| panic!("{events:?}"));
    assert_eq!(&response[response.len() - 2..], [0x90, 0x00]);
    assert!(
        events.contains(&ReaderEvent::WaitingTimeExtension(1)),
        "{events:?}"
    );
    assert_eq!(bench.bwt_expired, 0, "the reader's BWT ran out");
    assert!(bench.now - start >= Duration::from_secs(1));
    println!(
        "RSA-2048 key generation: {:?} modelled, {} WTX",
        bench.now - start,
        events.len() - 1
    );
}

#[test]
fn a_long_operation_sends_wtx_until_its_answer_is_ready() {
    // GET CHALLENGE made to take 20 s: S(WTX request) at half of every window, no BWT lost.
    for multiplier in [1u8, 4] {
        let mut config = ContactsConfig::default();
        config.busy.by_ins.push((0x84, Duration::from_secs(20)));
        config.wtx.multiplier = multiplier;
        let mut bench = Bench::new(AtrProfile::V3, config);
        let mut reader = session(&mut bench);
        bench.check(&mut reader, SELECT, 0x9000);
        let bwt = bench.card.bwt().unwrap();
        let start = bench.now;
        let (response, events) = bench.transact(&mut reader, &hex("00 84 00 00 08"));
        assert_eq!(response.unwrap().len(), 10);
        let wtx = events
            .iter()
            .filter(|e| **e == ReaderEvent::WaitingTimeExtension(multiplier))
            .count();
        assert_eq!(wtx, events.len() - 1, "{events:?}");
        assert_eq!(bench.bwt_expired, 0);
        let elapsed = bench.now - start;
        assert!(elapsed >= Duration::from_secs(20));
        // The first request after BWT / 2, then one per BWT × multiplier / 2 and a bit.
        let window = bwt * u32::from(multiplier);
        let most = 1 + (Duration::from_secs(20) - bwt / 2).div_duration_f64(window / 2) as usize;
        let least = Duration::from_secs(20).div_duration_f64(window) as usize;
        assert!((least..=most).contains(&wtx), "{wtx} WTX for BWT {bwt:?}");
        println!("x{multiplier}: {wtx} WTX in {elapsed:?} (BWT {bwt:?})");
    }
}

#[test]
fn a_warm_reset_resends_the_atr_and_drops_authentication() {
    let mut bench = Bench::v3();
    let mut reader = session(&mut bench);
    bench.check(&mut reader, SELECT, 0x9000);
    bench.check(&mut reader, INIT_DEFAULT, 0x9000);
    bench.check(&mut reader, SELECT, 0x9000);
    bench.check(&mut reader, VERIFY_PIN, 0x9000);
    bench.check(&mut reader, "00 20 00 81", 0x9000);
    // §6.2.3: RST low, then high: the ATR again, at Fd, Dd, and T=1 from its initial state.
    assert_eq!(bench.warm_reset(), AtrProfile::V3.atr());
    assert_eq!(bench.card.fi_di(), FiDi::DEFAULT);
    assert_eq!(bench.card.ifsd(), 32);
    let mut reader = session(&mut bench);
    bench.check(&mut reader, SELECT, 0x9000);
    bench.check(&mut reader, "00 20 00 81", 0x63C3);
}

#[test]
fn a_reset_during_the_atr_cuts_it_and_the_next_atr_comes_on_time() {
    let mut bench = Bench::v3();
    bench.at(Duration::ZERO, ContactEvent::Clock(Some(CLOCK)));
    bench.at(Duration::ZERO, ContactEvent::Vcc(true));
    bench.at(cycles(500), ContactEvent::Rst(true));
    // Five characters of the ATR, then RST low: the board cuts the rest.
    for _ in 0..5 {
        bench.next_char(None).unwrap();
    }
    let t = bench.now;
    bench.at(t, ContactEvent::Rst(false));
    bench.to_reader.clear();
    let (atr, delay) = bench.reset_line(t + cycles(500));
    assert_eq!(atr, AtrProfile::V3.atr());
    assert_eq!(delay, cycles(10_000));
}

#[test]
fn initialize_takes_longer_on_a_populated_card() {
    // Busy times (GUESS): INITIALIZE 1 s plus 300 ms per key or file wiped (§8, NKP-78).
    let mut bench = Bench::v3();
    let mut reader = session(&mut bench);
    bench.check(&mut reader, SELECT, 0x9000);
    let start = bench.now;
    bench.check(&mut reader, INIT_DEFAULT, 0x9000);
    let empty = bench.now - start;
    bench.check(&mut reader, SELECT, 0x9000);
    bench.check(&mut reader, VERIFY_PIN, 0x9000);
    for fid in ["CF 10", "CF 11", "CF 12"] {
        let update = format!("00 D7 {fid} 09 54 02 00 00 53 03 01 02 03");
        bench.check(&mut reader, &update, 0x9000);
    }
    let state = bench.card.applet().unwrap().state();
    let objects = u32::try_from(state.keys.len() + state.files.len()).unwrap();
    assert!(objects >= 3);
    let start = bench.now;
    bench.check(&mut reader, INIT_DEFAULT, 0x9000);
    let populated = bench.now - start;
    assert!(empty >= Duration::from_secs(1));
    assert!(populated >= Duration::from_secs(1) + Duration::from_millis(300) * objects);
    assert!(populated - empty < Duration::from_millis(300) * objects + Duration::from_millis(50));
    assert_eq!(bench.bwt_expired, 0);
}

#[test]
fn busy_times_follow_the_table() {
    use tessera_card::contacts::{BusyTimes, Operation};
    use tessera_card::crypto::{Curve, KeySpec};
    let ms = Duration::from_millis;
    let mut busy = BusyTimes::default();
    let rsa = |bits| KeySpec::Rsa { bits };
    // The first entry with at least the key's bits; the last one beyond.
    assert_eq!(
        busy.time(0x46, Operation::KeyGeneration(rsa(1024))),
        ms(300)
    );
    assert_eq!(
        busy.time(0x46, Operation::KeyGeneration(rsa(1536))),
        ms(1_000)
    );
    assert_eq!(
        busy.time(0x46, Operation::KeyGeneration(rsa(4096))),
        ms(15_000)
    );
    assert_eq!(
        busy.time(0x46, Operation::KeyGeneration(rsa(8192))),
        ms(15_000)
    );
    let ec = KeySpec::Ec(Curve::P256);
    assert_eq!(busy.time(0x46, Operation::KeyGeneration(ec)), ms(100));
    assert_eq!(busy.time(0x68, Operation::PrivateKey(ec)), ms(30));
    assert_eq!(busy.time(0x62, Operation::PrivateKey(rsa(2048))), ms(60));
    assert_eq!(
        busy.time(0x50, Operation::Initialize { objects: 100 }),
        ms(31_000)
    );
    assert_eq!(busy.time(0xA4, Operation::Other { ins: 0xA4 }), ms(2));
    // An override by INS wins over the operation.
    busy.by_ins.push((0x68, ms(5)));
    assert_eq!(busy.time(0x68, Operation::PrivateKey(ec)), ms(5));
}

#[test]
fn a_power_cycle_keeps_the_card_memory_and_loses_the_session() {
    let mut bench = Bench::v3();
    let mut reader = session(&mut bench);
    bench.check(&mut reader, SELECT, 0x9000);
    bench.check(&mut reader, INIT_DEFAULT, 0x9000);
    bench.check(&mut reader, SELECT, 0x9000);
    bench.check(&mut reader, VERIFY_PIN, 0x9000);
    bench.check(&mut reader, VERIFY_WRONG, 0x63C2);
    let t = bench.now;
    bench.at(t, ContactEvent::Vcc(false));
    assert_eq!(bench.card.link_state(), LinkState::Unpowered);
    assert!(bench.card.applet().is_none());
    bench.at(t + Duration::from_millis(10), ContactEvent::Rst(false));
    let mut reader = session(&mut bench);
    bench.check(&mut reader, SELECT, 0x9000);
    bench.check(&mut reader, "00 20 00 81", 0x63C2);
}

#[test]
fn a_pulled_card_answers_nothing() {
    let mut config = ContactsConfig::default();
    config.busy.by_ins.push((0x84, Duration::from_secs(5)));
    let mut bench = Bench::new(AtrProfile::V3, config);
    let mut reader = session(&mut bench);
    bench.check(&mut reader, SELECT, 0x9000);
    // Send a 5-second command, pull the card 100 ms into it.
    reader.buffer_mut()[..5].copy_from_slice(&hex("00 84 00 00 08"));
    let step = Step::of(reader.transmit(5).unwrap());
    bench.send(step.transmit.as_ref().unwrap());
    let pulled_at = bench.now + Duration::from_millis(100);
    bench.run_until(pulled_at);
    bench.at(pulled_at, ContactEvent::Pulled);
    // The board cuts what had not started.
    bench.to_reader.retain(|c| c.start < pulled_at);
    let sent = bench.wire.len();
    let events = bench.drive(
        &mut reader,
        Step {
            transmit: None,
            deadline: step.deadline,
            completion: None,
        },
    );
    assert!(
        matches!(
            events.last(),
            Some(ReaderEvent::Failed(t1::TransactionError::CardUnresponsive))
        ),
        "{events:?}"
    );
    assert_eq!(bench.wire.len(), sent, "a pulled card sent something");
    assert!(!bench.card.is_present());
    assert!(!bench.card.is_powered());
    // A reset of the empty socket: no ATR.
    let (atr, _) = {
        let t = bench.now;
        bench.at(t, ContactEvent::Rst(false));
        bench.reset_line(t + cycles(500))
    };
    assert!(atr.is_empty());
    // Put back in (VCC on, RST high): silent until RST cycles, then a new session.
    let t = bench.now;
    bench.at(t, ContactEvent::Inserted);
    bench.run_until(t + Duration::from_millis(50));
    assert_eq!(bench.wire.len(), sent);
    assert_eq!(bench.card.link_state(), LinkState::Reset);
    assert_eq!(bench.warm_reset(), AtrProfile::V3.atr());
    let mut reader = session(&mut bench);
    bench.check(&mut reader, SELECT, 0x9000);
}

#[test]
fn a_corrupted_block_is_recovered_by_the_t1_rules() {
    // §11.6.3.2 Rule 7.1: an I-block with a bad LRC gets R(0) with the EDC error; the reader's
    // engine sends it again.
    let mut bench = Bench::v3();
    bench.activate();
    // Reader: I(0) SELECT with a wrong LRC. Card: R(N(R)=0, EDC error).
    assert_eq!(
        bench.block(&hex(
            "00 00 11 00 A4 04 00 0B E8 2B 06 01 04 01 81 C3 1F 02 01 00 00"
        )),
        hex("00 81 00 81")
    );
    // A parity error inside a block: R-block too.
    bench.send(&hex("00 00 05 00"));
    let now = bench.now;
    bench.at(now, ContactEvent::ParityError);
    let answer = bench.block(&hex("00 00 00"));
    assert_eq!(answer[1] & 0xEC, 0x80, "an R-block: {answer:02X?}");
}

// ---- property: no input from the reader makes the model panic -----------------------------

#[derive(Debug, Clone)]
enum Op {
    Bytes(Vec<u8>),
    /// A well-formed T=1 block (NAD 00, LRC right) with any PCB and INF: reaches the engine's
    /// and the applet's logic.
    Block(u8, Vec<u8>),
    Parity,
    Wait(u32),
    Rst(bool),
    Vcc(bool),
    Clock(Option<u32>),
    Pulled,
    Inserted,
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        8 => proptest::collection::vec(any::<u8>(), 1..40).prop_map(Op::Bytes),
        8 => (any::<u8>(), proptest::collection::vec(any::<u8>(), 0..64))
            .prop_map(|(pcb, inf)| Op::Block(pcb, inf)),
        2 => Just(Op::Parity),
        3 => (0u32..3_000_000).prop_map(Op::Wait),
        1 => any::<bool>().prop_map(Op::Rst),
        1 => any::<bool>().prop_map(Op::Vcc),
        1 => proptest::option::of(1_000_000u32..20_000_000).prop_map(Op::Clock),
        1 => Just(Op::Pulled),
        1 => Just(Op::Inserted),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    #[test]
    fn arbitrary_reader_input_never_panics(
        pps_first in any::<bool>(),
        ops in proptest::collection::vec(op(), 1..40),
    ) {
        let mut bench = Bench::v3();
        bench.activate();
        if pps_first {
            bench.pps(&hex("FF 11 18 F6"));
        }
        let mut t = bench.now;
        for op in ops {
            let before = t;
            t += Duration::from_micros(50);
            let out = match op {
                Op::Bytes(bytes) => bench.card.handle(t, ContactEvent::Received(&bytes)),
                Op::Block(pcb, inf) => {
                    let mut block = vec![0x00, pcb, inf.len() as u8];
                    block.extend_from_slice(&inf);
                    block.push(block.iter().fold(0, |lrc, b| lrc ^ b));
                    bench.card.handle(t, ContactEvent::Received(&block))
                }
                Op::Parity => bench.card.handle(t, ContactEvent::ParityError),
                Op::Wait(us) => {
                    t += Duration::from_micros(u64::from(us));
                    bench.card.poll(t)
                }
                Op::Rst(high) => bench.card.handle(t, ContactEvent::Rst(high)),
                Op::Vcc(on) => bench.card.handle(t, ContactEvent::Vcc(on)),
                Op::Clock(hz) => bench
                    .card
                    .handle(t, ContactEvent::Clock(hz.and_then(NonZeroU32::new))),
                Op::Pulled => bench.card.handle(t, ContactEvent::Pulled),
                Op::Inserted => bench.card.handle(t, ContactEvent::Inserted),
            };
            for tx in &out {
                prop_assert!(tx.start >= before);
                prop_assert!(tx.end() >= tx.start);
            }
            // Let the card's own timers run a little.
            for _ in 0..8 {
                match bench.card.next_poll() {
                    Some(p) if p <= t + Duration::from_millis(20) => {
                        t = t.max(p);
                        let _ = bench.card.poll(t);
                    }
                    _ => break,
                }
            }
            bench.now = t;
        }
    }
}
