//! A small world in modelled time for the bridge's tests: the hardware traits implemented over
//! an event queue, a scripted card on the contacts (ISO/IEC 7816-3: ATR, PPS, T=1 through the
//! card engine of tessera-iso7816-3, or a T=0-only card), and a scripted USB host.
//!
//! Time only moves when the world steps to its next event. Characters take 12 etu (card) or
//! the CGT the bridge set (reader) at the rate each side runs; when the two sides disagree on
//! the rate, the receiver sees parity errors. USB transfers take 50 µs per 64-byte packet.
//!
//! Faults are injected from outside the bridge: remove the card, make it mute, or script its
//! bytes.
#![allow(dead_code)]

use std::collections::VecDeque;
use std::fmt::Write as _;

use tessera_bridge::{
    Bridge, CardContacts, Config, DeadlineTimer, Duration, ErrorKind, Event, Instant, LineRate,
    UsbDevice,
};
use tessera_ccid::{Body, Message, MessageRepr, MessageType};
use tessera_iso7816_3::atr::{AtrRepr, Protocol, ProtocolSet};
use tessera_iso7816_3::pps;
use tessera_iso7816_3::rate::{FiDi, LineParams};
use tessera_iso7816_3::t1;

pub const CLOCK_HZ: u32 = 3_600_000;

/// The SmartCard-HSM v3 ATR (TA1 18: F 372, D 12).
pub const ATR_V3: [u8; 24] = [
    0x3B, 0xDE, 0x18, 0xFF, 0x81, 0x91, 0xFE, 0x1F, 0xC3, 0x80, 0x31, 0x81, 0x54, 0x48, 0x53, 0x4D,
    0x31, 0x73, 0x80, 0x21, 0x40, 0x81, 0x07, 0x1C,
];
/// The SmartCard-HSM v4 ATR (TA1 96: F 512, D 32).
pub const ATR_V4: [u8; 24] = [
    0x3B, 0xDE, 0x96, 0xFF, 0x81, 0x91, 0xFE, 0x1F, 0xC3, 0x80, 0x31, 0x81, 0x54, 0x48, 0x53, 0x4D,
    0x31, 0x73, 0x80, 0x21, 0x40, 0x81, 0x07, 0x92,
];
/// A T=0-only card: TS, T0 = 0x10 (TA1), TA1 = 0x13 (F 372, D 4); no TD1, so T=0.
pub const ATR_T0: [u8; 3] = [0x3B, 0x10, 0x13];

/// Hex without spaces, upper case.
pub fn hex(bytes: &[u8]) -> String {
    let mut s = String::new();
    for b in bytes {
        let _ = write!(s, "{b:02X}");
    }
    s
}

/// Bytes from hex with optional spaces.
pub fn unhex(text: &str) -> Vec<u8> {
    let digits: String = text.chars().filter(|c| !c.is_whitespace()).collect();
    (0..digits.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&digits[i..i + 2], 16).expect("hex"))
        .collect()
}

/// What the card's application answers to a command APDU.
#[derive(Debug, Clone)]
pub struct Reply {
    /// The response APDU (data and SW1 SW2).
    pub response: Vec<u8>,
    /// How long the card works on it.
    pub delay: Duration,
    /// T=1: the S(WTX) multiplier the card asks for while it works (0: none).
    pub wtx: u8,
}

impl Reply {
    pub fn now(response: Vec<u8>) -> Reply {
        Reply {
            response,
            delay: Duration::ZERO,
            wtx: 0,
        }
    }
}

pub type Applet = Box<dyn FnMut(&[u8]) -> Reply>;

/// A device certificate file (EF 2F02): a CV certificate with the CHR `DENK0105461` + five
/// digits, then a second certificate (the issuer's), padded to `len` bytes as the v3.1 card's
/// 463 bytes.
pub fn device_certificate() -> Vec<u8> {
    let chr = b"DENK010546100001";
    let mut body = Vec::new();
    body.extend_from_slice(&[0x5F, 0x29, 0x01, 0x00]); // profile identifier
    body.extend_from_slice(&[0x42, 0x0C]); // CAR
    body.extend_from_slice(b"DESRCACC1000");
    body.extend_from_slice(&[0x7F, 0x49, 0x4F, 0x06, 0x0A]); // public key, EC
    body.extend_from_slice(&[0x04, 0x00, 0x7F, 0x00, 0x07, 0x02, 0x02, 0x02, 0x02, 0x03]);
    body.extend_from_slice(&[0x86, 0x41, 0x04]);
    body.extend_from_slice(&[0xAB; 64]);
    body.push(0x5F);
    body.push(0x20);
    body.push(chr.len() as u8);
    body.extend_from_slice(chr);
    let mut cert = vec![0x7F, 0x21, 0x81, 0x00];
    let mut inner = vec![0x7F, 0x4E, 0x81, body.len() as u8];
    inner.extend_from_slice(&body);
    inner.extend_from_slice(&[0x5F, 0x37, 0x40]);
    inner.extend_from_slice(&[0x5A; 64]);
    cert[3] = inner.len() as u8;
    cert.extend_from_slice(&inner);
    // The issuer's certificate after it, with its own CHR that must not be taken.
    let mut issuer = vec![
        0x7F, 0x21, 0x81, 0x00, 0x7F, 0x4E, 0x81, 0x00, 0x5F, 0x20, 0x0B,
    ];
    issuer.extend_from_slice(b"DESRCACC100");
    issuer.extend_from_slice(&[0x5F, 0x37, 0x40]);
    issuer.extend_from_slice(&[0x33; 64]);
    let len = issuer.len() as u8;
    issuer[3] = len - 4;
    issuer[7] = 11 + 3;
    cert.extend_from_slice(&issuer);
    cert.resize(463, 0x00);
    cert
}

/// A SmartCard-HSM-like application: SELECT the AID, SELECT EF 2F02, READ BINARY with offset
/// DO (answering 6282 at the end of the file); plus test commands:
/// - `80 10 00 00 Lc data 00 00`: echo (extended),
/// - `80 12 XX YY`: answer 256 × XX + YY bytes of a pattern (extended Le 0000),
/// - `80 20 00 00`: a long operation (the `long` reply),
/// - anything else: 6D00.
pub fn hsm_applet(long: Reply) -> Applet {
    let file = device_certificate();
    let mut selected = false;
    Box::new(move |apdu: &[u8]| {
        let ok = |mut data: Vec<u8>, sw: [u8; 2]| {
            data.extend_from_slice(&sw);
            Reply::now(data)
        };
        match apdu {
            [0x00, 0xA4, 0x04, 0x00, 0x0B, aid @ ..]
                if aid.starts_with(&tessera_bridge::SELECT_APPLICATION[5..]) =>
            {
                ok(vec![], [0x90, 0x00])
            }
            [0x00, 0xA4, 0x00, 0x00, 0x02, 0x2F, 0x02, ..] => {
                selected = true;
                ok(vec![], [0x90, 0x00])
            }
            [0x00, 0xB1, 0x00, 0x00, 0x00, 0x00, 0x04, 0x54, 0x02, oh, ol, lh, ll] if selected => {
                let offset = usize::from(u16::from_be_bytes([*oh, *ol]));
                let le = match u16::from_be_bytes([*lh, *ll]) {
                    0 => 65536,
                    n => usize::from(n),
                };
                let start = offset.min(file.len());
                let end = (start + le).min(file.len());
                let sw = if end - start < le {
                    [0x62, 0x82]
                } else {
                    [0x90, 0x00]
                };
                ok(file[start..end].to_vec(), sw)
            }
            [0x80, 0x10, 0x00, 0x00, 0x00, hi, lo, rest @ ..] => {
                let n = usize::from(u16::from_be_bytes([*hi, *lo]));
                ok(rest[..n.min(rest.len())].to_vec(), [0x90, 0x00])
            }
            [0x80, 0x10, 0x00, 0x00, n, rest @ ..] => {
                let n = usize::from(*n);
                ok(rest[..n.min(rest.len())].to_vec(), [0x90, 0x00])
            }
            [0x80, 0x12, hi, lo, ..] => {
                let n = usize::from(u16::from_be_bytes([*hi, *lo]));
                ok((0..n).map(|i| (i * 7 + 3) as u8).collect(), [0x90, 0x00])
            }
            [0x80, 0x20, 0x00, 0x00, ..] => long.clone(),
            _ => ok(vec![], [0x6D, 0x00]),
        }
    })
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum CardLink {
    Off,
    /// Reset: the ATR is on its way.
    Atr,
    /// After the ATR: a PPS or the first block may come.
    Negotiable,
    /// Collecting a PPS request.
    Pps,
    /// T=1 running.
    T1,
    /// T=0 running.
    T0,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum T0State {
    Header(Vec<u8>),
    DataIn { header: [u8; 5], data: Vec<u8> },
}

/// The scripted card.
pub struct TestCard {
    pub atr: Vec<u8>,
    pub applet: Applet,
    /// Accept a PPS1 Fi/Di (the card's side of §9.3).
    pub accept_fi_di: fn(FiDi) -> bool,
    /// Answer nothing at all (a dead card in the socket).
    pub mute: bool,
    /// Never answer a PPS request.
    pub pps_silent: bool,
    /// T=0: NULL bytes to send before each procedure byte.
    pub t0_nulls: usize,
    /// Scripted bursts: sent in turn, one after the reset and one after each reader burst,
    /// whatever the reader says.
    pub script: Option<VecDeque<Vec<u8>>>,
    link: CardLink,
    fi_di: FiDi,
    t1: Option<t1::Card<Vec<u8>>>,
    t0: T0State,
    t0_pending: Vec<u8>,
    pps_rx: Vec<u8>,
    /// A response the application is still working on: (response, ready at).
    working: Option<(Vec<u8>, Instant, u8)>,
    /// Commands the application received.
    pub commands: Vec<Vec<u8>>,
    /// IFSD the reader announced.
    pub ifsd: u8,
    /// PPS requests received.
    pub pps_requests: Vec<Vec<u8>>,
}

impl TestCard {
    pub fn t1(atr: &[u8], applet: Applet) -> TestCard {
        TestCard {
            atr: atr.to_vec(),
            applet,
            accept_fi_di: |_| true,
            mute: false,
            pps_silent: false,
            t0_nulls: 0,
            script: None,
            link: CardLink::Off,
            fi_di: FiDi::DEFAULT,
            t1: None,
            t0: T0State::Header(vec![]),
            t0_pending: vec![],
            pps_rx: vec![],
            working: None,
            commands: vec![],
            ifsd: 32,
            pps_requests: vec![],
        }
    }

    /// The SmartCard-HSM v3 card with the stock serial file.
    pub fn hsm() -> TestCard {
        TestCard::t1(&ATR_V3, hsm_applet(Reply::now(vec![0x90, 0x00])))
    }

    pub fn t0(applet: Applet) -> TestCard {
        TestCard::t1(&ATR_T0, applet)
    }

    pub fn scripted(bursts: Vec<Vec<u8>>) -> TestCard {
        let mut card = TestCard::t1(&[], Box::new(|_| Reply::now(vec![0x90, 0x00])));
        card.script = Some(bursts.into());
        card
    }

    fn offered(&self) -> ProtocolSet {
        AtrRepr::parse_bytes(&self.atr)
            .map_or(ProtocolSet::EMPTY.with(Protocol::T0), |a| a.protocols())
    }

    fn is_t1(&self) -> bool {
        self.offered().contains(Protocol::T1)
    }

    fn t1_config(&self) -> t1::Config {
        let ifsc = AtrRepr::parse_bytes(&self.atr)
            .ok()
            .and_then(|a| a.t1_params().ok())
            .map_or(32, |p| p.ifsc);
        t1::Config {
            ifsc,
            ifsd: 32,
            ..t1::Config::DEFAULT
        }
    }
}

/// What travelled, for transcripts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Trace {
    /// Host to device, bulk OUT.
    Out(Vec<u8>),
    /// Device to host, bulk IN.
    In(Vec<u8>),
    /// Device to host, interrupt IN.
    Interrupt(Vec<u8>),
    /// Reader to card.
    ToCard(Vec<u8>),
    /// Card to reader (one burst).
    FromCard(Vec<u8>),
    Vcc(bool),
    Rate(LineRate),
    Attach(String),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Ev {
    /// A character from the reader completes at the card (sent at reader rate `fi_di`).
    ToCard(u8, FiDi, u64),
    /// A character from the card completes at the reader.
    ToReader(u8, FiDi, u64),
    ReaderTxDone,
    Timer(u64),
    CardTimer(u64),
    /// The card's application finished a step of its work.
    WorkTimer(u64),
    BulkInSent,
    InterruptSent,
}

/// The hardware: card contacts, timer, USB, over one event queue.
pub struct SimHw {
    queue: std::collections::BinaryHeap<std::cmp::Reverse<(Instant, u64)>>,
    events: std::collections::HashMap<u64, Ev>,
    seq: u64,
    pub now: Instant,
    pub vcc: bool,
    pub rst: bool,
    pub clk: bool,
    pub rate: LineRate,
    pub card: Option<TestCard>,
    /// Bumped when the card is removed: its characters in flight are lost.
    card_gen: u64,
    card_busy_until: Instant,
    card_timer_gen: u64,
    work_timer_gen: u64,
    timer_gen: u64,
    pub timer: Option<Instant>,
    pub attached: Option<String>,
    pub configured: bool,
    pub inbox: VecDeque<Vec<u8>>,
    pub interrupts: Vec<Vec<u8>>,
    pub trace: Vec<Trace>,
    pub rates: Vec<LineRate>,
    pub bulk_in_sends: usize,
    /// Fault: the next transmissions fail.
    pub fail_transmit: bool,
    /// Fault: the next this many characters from the card arrive with a parity error.
    pub parity_errors: usize,
    /// Bytes sent to the card in total.
    pub card_bytes_sent: usize,
    /// When the last character from the card arrived.
    pub last_from_card: Option<Instant>,
    /// The shortest time from the card's last character to the reader's next transmission.
    pub min_turnaround: Option<Duration>,
}

fn fi_di_of(rate: LineRate) -> FiDi {
    // The sim only needs to compare rates: encode F and D as found in the tables.
    for byte in 0..=255u8 {
        let fd = FiDi::from_byte(byte);
        if let Ok(etu) = fd.etu() {
            if etu.f() == rate.f && etu.d() == rate.d {
                return fd;
            }
        }
    }
    FiDi::DEFAULT
}

fn same_rate(a: FiDi, b: FiDi) -> bool {
    match (a.etu(), b.etu()) {
        (Ok(x), Ok(y)) => x.f() == y.f() && x.d() == y.d(),
        _ => false,
    }
}

/// One character of `etu_count` etu at `fi_di`, in microseconds (rounded up).
fn char_time(fi_di: FiDi, etu_count: u64) -> Duration {
    let etu = fi_di.etu().unwrap_or(tessera_iso7816_3::rate::Etu::DEFAULT);
    Duration::from_micros(
        etu.times(etu_count)
            .micros_ceil(CLOCK_HZ.try_into().unwrap()),
    )
}

impl SimHw {
    fn schedule(&mut self, at: Instant, ev: Ev) {
        self.seq += 1;
        self.queue.push(std::cmp::Reverse((at, self.seq)));
        self.events.insert(self.seq, ev);
    }

    fn next_event(&mut self) -> Option<(Instant, Ev)> {
        let std::cmp::Reverse((at, seq)) = self.queue.pop()?;
        let ev = self.events.remove(&seq)?;
        Some((at, ev))
    }

    fn next_time(&self) -> Option<Instant> {
        self.queue.peek().map(|r| r.0 .0)
    }

    /// The card sends `bytes` (after what it is already sending).
    fn card_send(&mut self, bytes: &[u8]) {
        let Some(card) = &self.card else { return };
        if bytes.is_empty() || card.mute {
            return;
        }
        let fi_di = card.fi_di;
        let per = char_time(fi_di, 12);
        let mut at = self.card_busy_until.max(self.now);
        self.trace.push(Trace::FromCard(bytes.to_vec()));
        for &b in bytes {
            at += per;
            self.schedule(at, Ev::ToReader(b, fi_di, self.card_gen));
        }
        self.card_busy_until = at;
    }

    fn card_arm(&mut self, after: Option<Duration>) {
        self.card_timer_gen += 1;
        if let Some(d) = after {
            let at = self.now + d;
            self.schedule(at, Ev::CardTimer(self.card_timer_gen));
        }
    }

    /// Card: power-on reset (RST rising with VCC and CLK).
    fn card_reset(&mut self) {
        let Some(card) = &mut self.card else { return };
        card.link = CardLink::Atr;
        card.fi_di = FiDi::DEFAULT;
        card.t1 = None;
        card.working = None;
        card.t0 = T0State::Header(vec![]);
        card.pps_rx.clear();
        card.ifsd = 32;
        let atr = match &mut card.script {
            Some(script) => script.pop_front().unwrap_or_default(),
            None => card.atr.clone(),
        };
        card.link = if card.script.is_some() {
            CardLink::Negotiable
        } else {
            CardLink::Atr
        };
        // ATR after 5 000 clock cycles (within the 400..40 000 of §6.2.2).
        self.card_busy_until =
            self.now + Duration::from_micros(5_000 * 1_000_000 / u64::from(CLOCK_HZ));
        self.card_send(&atr);
        if let Some(card) = &mut self.card {
            if card.link == CardLink::Atr {
                card.link = CardLink::Negotiable;
            }
        }
    }

    fn card_off(&mut self) {
        if let Some(card) = &mut self.card {
            card.link = CardLink::Off;
            card.t1 = None;
            card.working = None;
        }
        self.card_gen += 1;
        self.card_timer_gen += 1;
        self.work_timer_gen += 1;
    }

    /// Card: one character from the reader.
    fn card_receive(&mut self, byte: u8) {
        let link = match &self.card {
            Some(c) if !c.mute && c.script.is_none() => c.link,
            _ => return,
        };
        match link {
            CardLink::Off | CardLink::Atr => {}
            CardLink::Negotiable if byte == pps::PPSS => {
                let card = self.card.as_mut().unwrap();
                card.link = CardLink::Pps;
                card.pps_rx = vec![byte];
            }
            CardLink::Negotiable => {
                let card = self.card.as_mut().unwrap();
                card.link = if card.is_t1() {
                    CardLink::T1
                } else {
                    CardLink::T0
                };
                if card.link == CardLink::T1 {
                    let config = card.t1_config();
                    card.t1 = Some(t1::Card::new(config, vec![0; 70_000]));
                }
                self.card_receive(byte);
            }
            CardLink::Pps => {
                let card = self.card.as_mut().unwrap();
                card.pps_rx.push(byte);
                let Ok(pps::Progress::Complete { .. }) = pps::progress(&card.pps_rx) else {
                    return;
                };
                let request = card.pps_rx.clone();
                card.pps_requests.push(request.clone());
                if card.pps_silent {
                    card.link = CardLink::Off;
                    return;
                }
                let offered = card.offered();
                let accept = card.accept_fi_di;
                match pps::answer(&request, offered, accept) {
                    pps::CardAnswer::Respond {
                        response,
                        agreement,
                    } => {
                        let mut out = [0u8; 6];
                        let n = response.emit(&mut out).unwrap();
                        self.card_send(&out[..n]);
                        let card = self.card.as_mut().unwrap();
                        card.fi_di = agreement.fi_di;
                        card.link = if agreement.protocol == Protocol::T1 {
                            let config = card.t1_config();
                            card.t1 = Some(t1::Card::new(config, vec![0; 70_000]));
                            CardLink::T1
                        } else {
                            CardLink::T0
                        };
                    }
                    pps::CardAnswer::Silent(_) => {
                        self.card.as_mut().unwrap().link = CardLink::Negotiable;
                    }
                }
            }
            CardLink::T1 => self.card_t1(t1::Event::Received(&[byte])),
            CardLink::T0 => self.card_t0(byte),
        }
    }

    fn card_t1(&mut self, event: t1::Event<'_>) {
        let Some(card) = &mut self.card else { return };
        let Some(engine) = &mut card.t1 else { return };
        let action = engine.handle(event);
        let tx = action.transmit.map(<[u8]>::to_vec);
        let deadline = action.deadline;
        let completion = action.completion;
        self.card_t1_action(tx, deadline, completion);
    }

    fn card_t1_action(
        &mut self,
        tx: Option<Vec<u8>>,
        deadline: Option<t1::Deadline>,
        completion: Option<t1::CardEvent>,
    ) {
        let fi_di = self.card.as_ref().map_or(FiDi::DEFAULT, |c| c.fi_di);
        if let Some(tx) = tx {
            self.card_send(&tx);
        }
        let timing = LineParams {
            fi_di,
            ..LineParams::new(CLOCK_HZ)
        }
        .timing()
        .unwrap();
        let after = deadline.map(|d| match d {
            t1::Deadline::Cwt => Duration::from_micros(timing.micros(timing.cwt())),
            t1::Deadline::Bgt => Duration::from_micros(timing.micros(timing.bgt())),
            t1::Deadline::Bwt { .. } => Duration::from_secs(3600),
        });
        // The card's own deadline starts after its characters are out.
        let start = self.card_busy_until.max(self.now);
        let after = after.map(|d| d + (start - self.now));
        self.card_arm(after);
        let Some(completion) = completion else { return };
        let card = self.card.as_mut().unwrap();
        match completion {
            t1::CardEvent::Command { len } => {
                let engine = card.t1.as_mut().unwrap();
                let command = engine.buffer()[..len].to_vec();
                card.commands.push(command.clone());
                let reply = (card.applet)(&command);
                if reply.delay == Duration::ZERO {
                    self.card_respond(reply.response);
                } else {
                    let ready = self.now + reply.delay;
                    card.working = Some((reply.response, ready, reply.wtx));
                    if reply.wtx > 0 {
                        let engine = card.t1.as_mut().unwrap();
                        let action = engine.request_wtx(reply.wtx).unwrap();
                        let tx = action.transmit.map(<[u8]>::to_vec);
                        let d = action.deadline;
                        self.card_t1_action(tx, d, None);
                    } else {
                        self.card_timer_at(ready);
                    }
                }
            }
            t1::CardEvent::CommandTooLong { .. } => self.card_respond(vec![0x67, 0x00]),
            t1::CardEvent::IfsdChanged(v) => card.ifsd = v,
            t1::CardEvent::WtxAcknowledged(m) => {
                if let Some((_, ready, _)) = card.working {
                    // Ask again at half the granted wait, or answer when done.
                    let bwt = Duration::from_micros(timing.micros(timing.bwt()));
                    let half = bwt.saturating_mul(u64::from(m.max(1))).as_micros() / 2;
                    let next = self.now + Duration::from_micros(half);
                    self.card_timer_at(next.min(ready));
                }
            }
            _ => {}
        }
    }

    fn card_timer_at(&mut self, at: Instant) {
        self.work_timer_gen += 1;
        self.schedule(at, Ev::WorkTimer(self.work_timer_gen));
    }

    fn card_respond(&mut self, response: Vec<u8>) {
        let Some(card) = &mut self.card else { return };
        let Some(engine) = &mut card.t1 else { return };
        engine.buffer_mut()[..response.len()].copy_from_slice(&response);
        let action = engine.respond(response.len()).unwrap();
        let tx = action.transmit.map(<[u8]>::to_vec);
        let d = action.deadline;
        self.card_t1_action(tx, d, None);
    }

    /// The card engine's own deadline (CWT, BGT).
    fn card_timer(&mut self) {
        if self.card.as_ref().is_some_and(|c| c.link == CardLink::T1) {
            self.card_t1(t1::Event::DeadlinePassed);
        }
    }

    /// The application's work: answer when done, or ask for more time again.
    fn work_timer(&mut self) {
        let Some(card) = &mut self.card else { return };
        let Some((response, ready, wtx)) = card.working.clone() else {
            return;
        };
        if self.now >= ready {
            card.working = None;
            self.card_respond(response);
        } else if wtx > 0 {
            let engine = card.t1.as_mut().unwrap();
            if let Ok(action) = engine.request_wtx(wtx) {
                let tx = action.transmit.map(<[u8]>::to_vec);
                let d = action.deadline;
                self.card_t1_action(tx, d, None);
            }
        }
    }

    // ---- T=0 card ----

    fn card_t0(&mut self, byte: u8) {
        let Some(card) = &mut self.card else { return };
        let state = std::mem::replace(&mut card.t0, T0State::Header(vec![]));
        match state {
            T0State::Header(mut h) => {
                h.push(byte);
                if h.len() < 5 {
                    card.t0 = T0State::Header(h);
                    return;
                }
                let header: [u8; 5] = h.try_into().unwrap();
                let ins = header[1];
                let p3 = header[4];
                let data_in = matches!(ins, 0x20 | 0xA4 | 0xD6 | 0xDA | 0x10);
                let nulls = vec![0x60; card.t0_nulls];
                if data_in && p3 > 0 {
                    card.t0 = T0State::DataIn {
                        header,
                        data: vec![],
                    };
                    let mut out = nulls;
                    out.push(ins);
                    self.card_send(&out);
                    return;
                }
                if ins == 0xC0 {
                    // GET RESPONSE
                    let pending = std::mem::take(&mut card.t0_pending);
                    let le = if p3 == 0 { 256 } else { usize::from(p3) };
                    let mut out = nulls;
                    if pending.len() >= le {
                        out.push(ins);
                        out.extend_from_slice(&pending[..le]);
                        out.extend_from_slice(&[0x90, 0x00]);
                    } else {
                        out.extend_from_slice(&[0x6C, pending.len() as u8]);
                        card.t0_pending = pending;
                    }
                    self.card_send(&out);
                    return;
                }
                let mut apdu = header[..4].to_vec();
                apdu.push(p3);
                card.commands.push(apdu.clone());
                let reply = (card.applet)(&apdu);
                let (data, sw) = reply.response.split_at(reply.response.len() - 2);
                let le = if p3 == 0 { 256 } else { usize::from(p3) };
                let mut out = nulls;
                if data.is_empty() {
                    out.extend_from_slice(sw);
                } else if data.len() != le {
                    card.t0_pending = data.to_vec();
                    out.extend_from_slice(&[0x6C, data.len() as u8]);
                } else {
                    out.push(ins);
                    out.extend_from_slice(data);
                    out.extend_from_slice(sw);
                }
                self.card_send(&out);
            }
            T0State::DataIn { header, mut data } => {
                data.push(byte);
                if data.len() < usize::from(header[4]) {
                    card.t0 = T0State::DataIn { header, data };
                    return;
                }
                let mut apdu = header.to_vec();
                apdu.extend_from_slice(&data);
                card.commands.push(apdu.clone());
                let reply = (card.applet)(&apdu);
                let (rdata, sw) = reply.response.split_at(reply.response.len() - 2);
                if rdata.is_empty() {
                    self.card_send(sw);
                } else {
                    card.t0_pending = rdata.to_vec();
                    self.card_send(&[0x61, rdata.len() as u8]);
                }
            }
        }
    }
}

impl CardContacts for SimHw {
    type Error = ErrorKind;

    fn set_vcc(&mut self, on: bool) {
        if self.vcc != on {
            self.trace.push(Trace::Vcc(on));
        }
        self.vcc = on;
        if !on {
            self.card_off();
        }
    }

    fn set_rst(&mut self, high: bool) {
        let rising = high && !self.rst;
        self.rst = high;
        if !high {
            if let Some(card) = &mut self.card {
                card.link = CardLink::Off;
            }
            self.card_gen += 1;
        }
        if rising && self.vcc && self.clk {
            self.card_reset();
        }
    }

    fn set_clock(&mut self, running: bool) {
        self.clk = running;
    }

    fn set_rate(&mut self, rate: LineRate) {
        self.rate = rate;
        self.rates.push(rate);
        self.trace.push(Trace::Rate(rate));
    }

    fn transmit(&mut self, bytes: &[u8]) -> Result<(), ErrorKind> {
        if self.fail_transmit {
            return Err(ErrorKind::Other);
        }
        self.trace.push(Trace::ToCard(bytes.to_vec()));
        self.card_bytes_sent += bytes.len();
        if let Some(last) = self.last_from_card {
            let gap = self.now - last;
            self.min_turnaround = Some(self.min_turnaround.map_or(gap, |m| m.min(gap)));
        }
        let fi_di = fi_di_of(self.rate);
        let per = char_time(fi_di, u64::from(self.rate.cgt_etu));
        let mut at = self.now;
        for &b in bytes {
            at += per;
            self.schedule(at, Ev::ToCard(b, fi_di, self.card_gen));
        }
        self.schedule(at, Ev::ReaderTxDone);
        // A scripted card answers each burst with its next script entry.
        if let Some(card) = &mut self.card {
            if let Some(script) = &mut card.script {
                if let Some(next) = script.pop_front() {
                    self.card_busy_until = at + char_time(FiDi::DEFAULT, 16);
                    self.card_send(&next);
                }
            }
        }
        Ok(())
    }
}

impl DeadlineTimer for SimHw {
    fn arm(&mut self, at: Instant) {
        self.timer_gen += 1;
        self.timer = Some(at);
        let at = at.max(self.now);
        self.schedule(at, Ev::Timer(self.timer_gen));
    }

    fn disarm(&mut self) {
        self.timer_gen += 1;
        self.timer = None;
    }
}

impl UsbDevice for SimHw {
    type Error = ErrorKind;

    fn attach(&mut self, serial: &str) {
        self.attached = Some(serial.to_string());
        self.trace.push(Trace::Attach(serial.to_string()));
    }

    fn detach(&mut self) {
        self.attached = None;
        self.configured = false;
    }

    fn send_bulk_in(&mut self, header: &[u8; 10], payload: &[u8]) -> Result<(), ErrorKind> {
        if !self.configured {
            return Err(ErrorKind::NotReady);
        }
        let mut message = header.to_vec();
        message.extend_from_slice(payload);
        let packets = message.len() / 64 + 1;
        self.trace.push(Trace::In(message.clone()));
        self.inbox.push_back(message);
        self.bulk_in_sends += 1;
        let at = self.now + Duration::from_micros(50 * packets as u64);
        self.schedule(at, Ev::BulkInSent);
        Ok(())
    }

    fn send_interrupt(&mut self, message: &[u8]) -> Result<(), ErrorKind> {
        if !self.configured {
            return Err(ErrorKind::NotReady);
        }
        self.trace.push(Trace::Interrupt(message.to_vec()));
        self.interrupts.push(message.to_vec());
        let at = self.now + Duration::from_micros(50);
        self.schedule(at, Ev::InterruptSent);
        Ok(())
    }
}

/// The world: the bridge, its hardware, the card, the host.
pub struct World {
    pub bridge: Bridge<'static>,
    pub hw: SimHw,
    pub seq: u8,
    /// Time extensions the host received.
    pub time_extensions: Vec<(Instant, Vec<u8>)>,
}

pub const BOARD_SERIAL: &str = "BOARD0001";

impl World {
    pub fn new(config: Config, card: Option<TestCard>) -> World {
        let len = match config.exchange {
            tessera_bridge::Exchange::Tpdu => tessera_bridge::TPDU_BUFFER_LEN,
            tessera_bridge::Exchange::ExtendedApdu => tessera_bridge::APDU_BUFFER_LEN,
        };
        World::with_buffer(config, card, len)
    }

    pub fn with_buffer(config: Config, card: Option<TestCard>, len: usize) -> World {
        let buffer: &'static mut [u8] = Box::leak(vec![0u8; len].into_boxed_slice());
        let bridge = Bridge::new(config, BOARD_SERIAL, buffer).expect("config");
        let hw = SimHw {
            queue: Default::default(),
            events: Default::default(),
            seq: 0,
            now: Instant::ZERO,
            vcc: false,
            rst: false,
            clk: false,
            rate: LineRate::INITIAL,
            card,
            card_gen: 0,
            card_busy_until: Instant::ZERO,
            card_timer_gen: 0,
            work_timer_gen: 0,
            timer_gen: 0,
            timer: None,
            attached: None,
            configured: false,
            inbox: VecDeque::new(),
            interrupts: vec![],
            trace: vec![],
            rates: vec![],
            bulk_in_sends: 0,
            fail_transmit: false,
            parity_errors: 0,
            card_bytes_sent: 0,
            last_from_card: None,
            min_turnaround: None,
        };
        let mut world = World {
            bridge,
            hw,
            seq: 0,
            time_extensions: vec![],
        };
        world.bridge.start(Instant::ZERO, &mut world.hw);
        world
    }

    pub fn now(&self) -> Instant {
        self.hw.now
    }

    /// Process the next event; false if there is none.
    pub fn step(&mut self) -> bool {
        let Some((at, ev)) = self.hw.next_event() else {
            return false;
        };
        self.hw.now = self.hw.now.max(at);
        let now = self.hw.now;
        match ev {
            Ev::ToCard(b, fi_di, gen) => {
                let matches = self
                    .hw
                    .card
                    .as_ref()
                    .is_some_and(|c| same_rate(c.fi_di, fi_di));
                if gen == self.hw.card_gen && matches {
                    self.hw.card_receive(b);
                }
            }
            Ev::ToReader(b, fi_di, gen) => {
                if gen != self.hw.card_gen || self.hw.card.is_none() || !self.hw.vcc {
                    return true;
                }
                self.hw.last_from_card = Some(now);
                if self.hw.parity_errors > 0 {
                    self.hw.parity_errors -= 1;
                    self.bridge
                        .handle(now, Event::CardParityError, &mut self.hw);
                } else if same_rate(fi_di, fi_di_of(self.hw.rate)) {
                    self.bridge
                        .handle(now, Event::CardReceived(&[b]), &mut self.hw);
                } else {
                    self.bridge
                        .handle(now, Event::CardParityError, &mut self.hw);
                }
            }
            Ev::ReaderTxDone => self
                .bridge
                .handle(now, Event::CardTransmitted, &mut self.hw),
            Ev::Timer(gen) => {
                if gen == self.hw.timer_gen {
                    self.hw.timer = None;
                    self.bridge.handle(now, Event::DeadlinePassed, &mut self.hw);
                }
            }
            Ev::CardTimer(gen) => {
                if gen == self.hw.card_timer_gen {
                    self.hw.card_timer();
                }
            }
            Ev::WorkTimer(gen) => {
                if gen == self.hw.work_timer_gen {
                    self.hw.work_timer();
                }
            }
            Ev::BulkInSent => self.bridge.handle(now, Event::UsbBulkInSent, &mut self.hw),
            Ev::InterruptSent => self
                .bridge
                .handle(now, Event::UsbInterruptSent, &mut self.hw),
        }
        true
    }

    /// Run until `pred` holds or `limit` of modelled time has passed; returns whether `pred`
    /// held.
    pub fn run_until(&mut self, limit: Duration, mut pred: impl FnMut(&World) -> bool) -> bool {
        let end = self.now() + limit;
        let mut same_instant = 0u32;
        loop {
            if pred(self) {
                return true;
            }
            match self.hw.next_time() {
                Some(at) if at <= end => {
                    let before = self.now();
                    self.step();
                    same_instant = if self.now() == before {
                        same_instant + 1
                    } else {
                        0
                    };
                    assert!(
                        same_instant < 100_000,
                        "livelock: events without time passing at {}: {:?}",
                        self.now(),
                        self.bridge
                    );
                }
                _ => {
                    self.hw.now = end.max(self.hw.now);
                    return pred(self);
                }
            }
        }
    }

    pub fn run_for(&mut self, d: Duration) {
        self.run_until(d, |_| false);
    }

    /// The host enumerates the attached device.
    pub fn configure(&mut self) {
        assert!(self.hw.attached.is_some(), "not attached");
        self.hw.configured = true;
        let now = self.now();
        self.bridge.handle(now, Event::UsbConfigured, &mut self.hw);
    }

    pub fn next_seq(&mut self) -> u8 {
        let s = self.seq;
        self.seq = self.seq.wrapping_add(1);
        s
    }

    /// Send raw bulk-OUT bytes.
    pub fn send_raw(&mut self, bytes: &[u8]) {
        self.hw.trace.push(Trace::Out(bytes.to_vec()));
        let now = self.now();
        self.bridge
            .handle(now, Event::UsbBulkOut(bytes), &mut self.hw);
    }

    /// Send a message with the next bSeq; returns the bSeq.
    pub fn send(&mut self, body: impl Into<Body<'static>>) -> u8 {
        let seq = self.next_seq();
        let repr = MessageRepr::new(0, seq, body);
        let mut buf = vec![0u8; repr.buffer_len()];
        repr.emit(&mut buf).unwrap();
        self.send_raw(&buf);
        seq
    }

    /// Wait for the next bulk-IN message that is not a time extension.
    pub fn response(&mut self, limit: Duration) -> Option<Vec<u8>> {
        let end = self.now() + limit;
        loop {
            while let Some(m) = self.hw.inbox.pop_front() {
                let te = Message::new_unchecked(&m[..]).status().command
                    == tessera_ccid::CommandStatus::TimeExtension;
                if te {
                    self.time_extensions.push((self.now(), m));
                } else {
                    return Some(m);
                }
            }
            let left = end - self.now();
            if left == Duration::ZERO {
                return None;
            }
            self.run_until(left, |w| !w.hw.inbox.is_empty());
            if self.hw.inbox.is_empty() {
                return None;
            }
        }
    }

    /// Send raw bytes and wait for the answer.
    pub fn exchange_raw(&mut self, bytes: &[u8]) -> Vec<u8> {
        self.send_raw(bytes);
        self.response(Duration::from_secs(120))
            .expect("no response")
    }

    /// Power the card on (IccPowerOn) and return the DataBlock.
    pub fn power_on(&mut self) -> Vec<u8> {
        self.send(tessera_ccid::IccPowerOn::new(
            tessera_ccid::PowerSelect::Automatic,
        ));
        self.response(Duration::from_secs(10))
            .expect("no answer to IccPowerOn")
    }

    /// XfrBlock with `data` (wLevelParameter `level`), returns the answer.
    pub fn xfr(&mut self, data: &[u8], level: u16) -> Vec<u8> {
        let seq = self.next_seq();
        let repr = MessageRepr::new(
            0,
            seq,
            tessera_ccid::XfrBlock {
                bwi: 0,
                level_parameter: level,
                data,
            },
        );
        let mut buf = vec![0u8; repr.buffer_len()];
        repr.emit(&mut buf).unwrap();
        self.send_raw(&buf);
        self.response(Duration::from_secs(600))
            .expect("no answer to XfrBlock")
    }

    /// Remove the card from the socket.
    pub fn pull_card(&mut self) -> Option<TestCard> {
        self.hw.card_gen += 1;
        self.hw.card_timer_gen += 1;
        self.hw.work_timer_gen += 1;
        self.hw.card.take()
    }

    /// Insert a card (unpowered contacts: it wakes at the next activation).
    pub fn insert_card(&mut self, card: TestCard) {
        self.hw.card_gen += 1;
        self.hw.card = Some(card);
    }

    pub fn card(&self) -> &TestCard {
        self.hw.card.as_ref().expect("no card")
    }

    /// The USB messages in the trace (direction, bytes).
    pub fn usb_trace(&self) -> Vec<(&'static str, Vec<u8>)> {
        self.hw
            .trace
            .iter()
            .filter_map(|t| match t {
                Trace::Out(b) => Some(("out", b.clone())),
                Trace::In(b) => Some(("in", b.clone())),
                Trace::Interrupt(b) => Some(("int", b.clone())),
                _ => None,
            })
            .collect()
    }

    /// The card-line traffic in the trace.
    pub fn card_trace(&self) -> Vec<(&'static str, Vec<u8>)> {
        self.hw
            .trace
            .iter()
            .filter_map(|t| match t {
                Trace::ToCard(b) => Some((">", b.clone())),
                Trace::FromCard(b) => Some(("<", b.clone())),
                _ => None,
            })
            .collect()
    }
}

/// Check a transcript: each line is (direction, hex with spaces, comment). The comment is
/// for the reader of the test; on a mismatch the whole transcript is printed.
#[track_caller]
pub fn check(actual: &[(&'static str, Vec<u8>)], expected: &[(&str, &str, &str)]) {
    let mut ok = actual.len() == expected.len();
    for ((dir, bytes), (edir, ehex, _)) in actual.iter().zip(expected) {
        ok &= dir == edir && *bytes == unhex(ehex);
    }
    if !ok {
        let mut text = String::from("transcript mismatch\nexpected:\n");
        for (d, h, c) in expected {
            let _ = writeln!(text, "  {d:>3} {:<40} {c}", hex(&unhex(h)));
        }
        text.push_str("actual:\n");
        for (d, b) in actual {
            let _ = writeln!(text, "  {d:>3} {}", hex(b));
        }
        panic!("{text}");
    }
}

/// Parse a bulk-IN message into its repr.
pub fn parse(message: &[u8]) -> MessageRepr<'_> {
    MessageRepr::parse_bytes(message).expect("malformed bulk-IN message")
}

/// The message type of a bulk-IN message.
pub fn message_type(message: &[u8]) -> MessageType {
    Message::new_unchecked(message).message_type()
}

/// The payload of a DataBlock.
pub fn data(message: &[u8]) -> &[u8] {
    match parse(message).body {
        Body::DataBlock(d) => d.data,
        other => panic!("not a DataBlock: {other:?}"),
    }
}

/// bStatus and bError.
pub fn status(message: &[u8]) -> (u8, u8) {
    (message[7], message[8])
}

/// A T=1 block (NAD 00), LRC computed.
pub fn block(pcb: u8, inf: &[u8]) -> Vec<u8> {
    let mut b = vec![0x00, pcb, inf.len() as u8];
    b.extend_from_slice(inf);
    let lrc = b.iter().fold(0, |a, x| a ^ x);
    b.push(lrc);
    b
}

/// Config with the knobs the tests change.
pub fn config(base: Config) -> Config {
    base
}

impl World {
    /// Print the trace (for debugging a failing test).
    pub fn dump(&self) {
        for t in &self.hw.trace {
            match t {
                Trace::ToCard(b) => println!("  > {}", hex(b)),
                Trace::FromCard(b) => println!("  < {}", hex(b)),
                Trace::Out(b) => println!("OUT {}", hex(b)),
                Trace::In(b) => println!(" IN {}", hex(b)),
                Trace::Interrupt(b) => println!("INT {}", hex(b)),
                other => println!("    {other:?}"),
            }
        }
        println!("bridge: {:?}", self.bridge);
    }
}
