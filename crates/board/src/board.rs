//! The virtual board: the bridge, its hardware modelled over one event queue, the SIM socket,
//! virtual USB and the board's supply.

use std::collections::VecDeque;
use std::num::NonZeroU32;
use std::time::Duration;

use tessera_bridge::{
    BootPolicy, Bridge, CardContacts, Config, ConfigError, DeadlineTimer, ErrorKind, Event,
    Exchange, Identity, Instant, LineRate, UsbDevice, APDU_BUFFER_LEN, TPDU_BUFFER_LEN,
};
use tessera_card::contacts::{ContactEvent, Contacts, ContactsConfig, ContactsError, Transmission};
use tessera_card::memory::Storage;
use tessera_card::virtual_card::CardConfig;
use tessera_ccid::ClassDescriptorRepr;
use tessera_iso7816_3::rate::Etu;

use crate::line::{Arrival, CardLine, CleanLine, Direction, SocketEvent};
use crate::trace::{TraceEntry, TraceEvent};

/// A card for the board's SIM socket: the virtual SmartCard-HSM on its contacts, on any card
/// memory ([`tessera_card::memory::FileStorage`], [`tessera_card::memory::MemoryStorage`],
/// [`tessera_card::memory::PowerCut`] around either).
pub type Card = Contacts<Box<dyn Storage>>;

/// Makes a [`Card`]: the card on `storage` (a new card with an identity from `seed` if the
/// storage is empty), see [`Contacts::new`].
pub fn new_card(
    storage: impl Storage + 'static,
    card: CardConfig,
    contacts: ContactsConfig,
    seed: [u8; 32],
    rng_seed: [u8; 32],
) -> Result<Card, ContactsError> {
    Contacts::new(Box::new(storage), card, contacts, seed, rng_seed)
}

/// How the virtual USB host and bus behave. Every default is a GUESS for a full-speed device on
/// a Linux host.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct UsbTiming {
    /// The host configures the device this long after D+ is pulled up (USB 2.0 §7.1.7.3: at
    /// least 100 ms of connect debounce, a 10 ms reset, then addressing and descriptors);
    /// `None`: only [`VirtualBoard::configure`] does. GUESS 120 ms.
    pub enumeration: Option<Duration>,
    /// One packet of `max_packet` bytes on the bus. GUESS 50 µs (64 bytes at 12 Mbit/s with
    /// protocol overhead and host scheduling).
    pub packet_time: Duration,
    /// `wMaxPacketSize` of the bulk endpoints: 64 at full speed (hardware.md §C).
    pub max_packet: usize,
}

impl Default for UsbTiming {
    fn default() -> Self {
        UsbTiming {
            enumeration: Some(Duration::from_millis(120)),
            packet_time: Duration::from_micros(50),
            max_packet: 64,
        }
    }
}

impl UsbTiming {
    /// Time on the bus for a bulk-OUT message of `len` bytes (the host sends no zero-length
    /// packet after a full last packet: the CCID header gives the length).
    fn out_time(&self, len: usize) -> Duration {
        let packets = len.div_ceil(self.max_packet.max(1)).max(1);
        self.packet_time
            .saturating_mul(u32::try_from(packets).unwrap_or(u32::MAX))
    }

    /// Time on the bus for a bulk-IN message of `len` bytes: a zero-length packet ends a
    /// message whose length is a multiple of `max_packet` (USB 2.0 §5.8.3).
    fn in_time(&self, len: usize) -> Duration {
        let packets = len / self.max_packet.max(1) + 1;
        self.packet_time
            .saturating_mul(u32::try_from(packets).unwrap_or(u32::MAX))
    }
}

/// How a [`VirtualBoard`] is built.
#[derive(Debug)]
pub struct BoardConfig {
    /// The bridge's configuration: boot policy, exchange level, card line, periods
    /// ([`Config::stock`] or [`Config::apdu`], or anything else the bridge accepts).
    pub bridge: Config,
    /// The board's own serial string (the firmware derives it from the MCU's unique ID): the
    /// USB serial under [`BootPolicy::Reader`], and when the card has no usable CHR. 1 to 24
    /// characters.
    pub board_serial: String,
    /// From power-on to the bridge's start: the MCU's reset, clock and RAM set-up. GUESS 2 ms
    /// (HSE start-up and PLL lock on the STM32F103).
    pub startup: Duration,
    /// The virtual USB host and bus.
    pub usb: UsbTiming,
    /// The card in the SIM socket at the start, if any.
    pub card: Option<Card>,
    /// Keep a [`TraceEntry`] of everything that happens ([`VirtualBoard::trace`]).
    pub trace: bool,
}

impl BoardConfig {
    /// A board with the stock identity at the stock TPDU level ([`Exchange::Tpdu`],
    /// [`Config::stock`]) or at APDU level ([`Exchange::ExtendedApdu`], [`Config::apdu`]),
    /// booting under `policy`, with an empty socket, tracing on.
    pub fn new(policy: BootPolicy, exchange: Exchange) -> BoardConfig {
        let bridge = match exchange {
            Exchange::Tpdu => Config::stock(policy),
            Exchange::ExtendedApdu => Config::apdu(policy),
        };
        BoardConfig {
            bridge,
            board_serial: "TESSERA-VBOARD-0001".to_owned(),
            startup: Duration::from_millis(2),
            usb: UsbTiming::default(),
            card: None,
            trace: true,
        }
    }

    /// The same with `card` in the socket.
    pub fn with_card(mut self, card: Card) -> BoardConfig {
        self.card = Some(card);
        self
    }
}

/// Why a [`VirtualBoard`] could not be built.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum BoardError {
    /// The bridge refused its configuration or the board serial.
    #[error("the bridge refuses the configuration: {0}")]
    Bridge(ConfigError),
}

/// Why a host-side USB request was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, thiserror::Error)]
pub enum UsbError {
    /// The board has no power (so no USB device).
    #[error("the board is not powered")]
    Unpowered,
    /// The device is not attached (D+ is not pulled up): the host sees no device.
    #[error("the device is not attached to USB")]
    NotAttached,
    /// The device is attached but the host has not configured it yet.
    #[error("the host has not configured the device")]
    NotConfigured,
}

/// Counts of what crossed the card line, for figures.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct LineStats {
    /// Characters the bridge sent.
    pub to_card: u64,
    /// Characters the card sent.
    pub to_reader: u64,
    /// Characters the card received with a parity error (line fault or rate mismatch).
    pub parity_errors_at_card: u64,
    /// Characters the bridge received with a parity error (line fault or rate mismatch).
    pub parity_errors_at_reader: u64,
    /// Characters whose receiver ran at another F and D than the sender.
    pub rate_mismatches: u64,
    /// Characters the line lost.
    pub lost: u64,
}

/// One character on the I/O line.
#[derive(Debug, Clone, Copy)]
struct Char {
    /// Leading edge.
    start: Duration,
    /// Completely received.
    end: Duration,
    byte: u8,
    /// The sender's F and D.
    f: u16,
    d: u8,
}

/// The bridge with the buffer it borrows, alive while the board is powered.
#[ouroboros::self_referencing]
struct PoweredBridge {
    buffer: Box<[u8]>,
    #[borrows(mut buffer)]
    #[covariant]
    bridge: Bridge<'this>,
}

/// The virtual USB device and host.
#[derive(Debug)]
struct Usb {
    timing: UsbTiming,
    /// D+ pulled up, with this serial string.
    serial: Option<String>,
    attached_at: Option<Duration>,
    configured: bool,
    configure_at: Option<Duration>,
    /// Bulk-OUT messages on their way to the device: (arrival, bytes).
    out: VecDeque<(Duration, Vec<u8>)>,
    /// The bulk-OUT pipe is busy until then.
    out_free_at: Duration,
    /// The bulk-IN message on the bus: (completion, bytes).
    bulk_in: Option<(Duration, Vec<u8>)>,
    /// The interrupt-IN message on the bus.
    interrupt: Option<(Duration, Vec<u8>)>,
    /// Bulk-IN messages the host received and the test has not read.
    host_bulk_in: VecDeque<Vec<u8>>,
    /// Interrupt-IN messages the host received and the test has not read.
    host_interrupt: VecDeque<Vec<u8>>,
    /// What a `UsbPipe::bulk_in` read has not returned yet of the current message.
    #[cfg(feature = "host")]
    pipe_rest: Vec<u8>,
}

impl Usb {
    fn new(timing: UsbTiming) -> Usb {
        Usb {
            timing,
            serial: None,
            attached_at: None,
            configured: false,
            configure_at: None,
            out: VecDeque::new(),
            out_free_at: Duration::ZERO,
            bulk_in: None,
            interrupt: None,
            host_bulk_in: VecDeque::new(),
            host_interrupt: VecDeque::new(),
            #[cfg(feature = "host")]
            pipe_rest: Vec::new(),
        }
    }

    /// The device leaves the bus: whatever was on its way is lost, and what the host had not
    /// read belongs to a device that is gone.
    fn disconnect(&mut self) {
        self.serial = None;
        self.configured = false;
        self.configure_at = None;
        self.drop_transfers();
        self.host_bulk_in.clear();
        self.host_interrupt.clear();
        #[cfg(feature = "host")]
        self.pipe_rest.clear();
    }

    fn drop_transfers(&mut self) {
        self.out.clear();
        self.bulk_in = None;
        self.interrupt = None;
    }
}

/// What is due next in the world, in the order ties are taken.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Due {
    Start,
    Socket,
    Card,
    ToCard,
    ReaderDone,
    ToReader,
    BulkIn,
    Interrupt,
    Configure,
    BulkOut,
    Timer,
}

/// An event for the bridge, owned.
#[derive(Debug)]
enum Feed {
    CardByte(u8),
    CardParity,
    Transmitted,
    Deadline,
    Configured,
    Deconfigured,
    BulkOut(Vec<u8>),
    BulkInSent,
    InterruptSent,
    Abort { slot: u8, seq: u8 },
}

/// Everything but the bridge: it implements the bridge's hardware traits.
struct World<L> {
    now: Duration,
    clock: NonZeroU32,
    max_message_len: usize,
    line: L,
    card: Option<Card>,
    vcc: bool,
    rst: bool,
    clk: bool,
    rate: LineRate,
    /// Characters from the bridge, by end time.
    to_card: VecDeque<Char>,
    /// When the bridge's last transmission has gone.
    reader_done: Option<Duration>,
    /// Characters from the card, by end time.
    to_reader: VecDeque<Char>,
    /// The bridge's deadline.
    timer: Option<Duration>,
    /// The bridge starts then (the board is booting).
    start_at: Option<Duration>,
    usb: Usb,
    trace: Option<Vec<TraceEntry>>,
    stats: LineStats,
}

/// The bridge's clock: whole microseconds, rounded down.
fn instant(now: Duration) -> Instant {
    Instant::from_micros(u64::try_from(now.as_micros()).unwrap_or(u64::MAX))
}

/// Modelled time of a bridge instant.
fn duration(at: Instant) -> Duration {
    Duration::from_micros(at.as_micros())
}

fn earliest(
    candidates: impl IntoIterator<Item = (Option<Duration>, Due)>,
) -> Option<(Duration, Due)> {
    let mut best: Option<(Duration, Due)> = None;
    for (at, due) in candidates {
        if let Some(at) = at {
            if best.is_none_or(|(b, _)| at < b) {
                best = Some((at, due));
            }
        }
    }
    best
}

impl<L: CardLine> World<L> {
    fn record(&mut self, event: TraceEvent) {
        let at = self.now;
        if let Some(trace) = &mut self.trace {
            trace.push(TraceEntry { at, event });
        }
    }

    fn next_due(&self) -> Option<(Duration, Due)> {
        earliest([
            (self.start_at, Due::Start),
            (self.line.next_event(), Due::Socket),
            (self.card.as_ref().and_then(Contacts::next_poll), Due::Card),
            (self.to_card.front().map(|c| c.end), Due::ToCard),
            (self.reader_done, Due::ReaderDone),
            (self.to_reader.front().map(|c| c.end), Due::ToReader),
            (self.usb.bulk_in.as_ref().map(|(at, _)| *at), Due::BulkIn),
            (
                self.usb.interrupt.as_ref().map(|(at, _)| *at),
                Due::Interrupt,
            ),
            (self.usb.configure_at, Due::Configure),
            (self.usb.out.front().map(|(at, _)| *at), Due::BulkOut),
            (self.timer, Due::Timer),
        ])
    }

    // ---- the card ---------------------------------------------------------------------------

    fn collect(&mut self, transmissions: Vec<Transmission>) {
        for tx in transmissions {
            let (f, d) = (tx.etu.f(), tx.etu.d());
            for (i, &byte) in tx.bytes.iter().enumerate() {
                let c = Char {
                    start: tx.character_start(i),
                    end: tx.character_end(i),
                    byte,
                    f,
                    d,
                };
                let index = self.to_reader.partition_point(|x| x.end <= c.end);
                self.to_reader.insert(index, c);
            }
            if let Some(trace) = &mut self.trace {
                trace.push(TraceEntry {
                    at: tx.start,
                    event: TraceEvent::FromCard(tx.bytes),
                });
            }
        }
    }

    fn card_event(&mut self, event: ContactEvent<'_>) {
        let now = self.now;
        let Some(card) = &mut self.card else {
            return;
        };
        let out = card.handle(now, event);
        self.collect(out);
    }

    /// The card was reset, lost power or left: its characters that had not started are never
    /// sent (tessera_card::contacts::Transmission).
    fn cut_card_characters(&mut self) {
        let now = self.now;
        self.to_reader.retain(|c| c.start < now);
    }

    fn clock_level(&self) -> Option<NonZeroU32> {
        self.clk.then_some(self.clock)
    }

    fn socket_event(&mut self, event: SocketEvent) {
        let present = self.card.as_ref().map(Contacts::is_present);
        match (event, present) {
            (SocketEvent::Pull, Some(true)) => {
                self.card_event(ContactEvent::Pulled);
                self.cut_card_characters();
                self.record(TraceEvent::CardPulled);
            }
            (SocketEvent::Insert, Some(false)) => {
                self.card_event(ContactEvent::Inserted);
                self.record(TraceEvent::CardInserted);
            }
            _ => {}
        }
    }

    fn deliver_to_card(&mut self) {
        let Some(c) = self.to_card.pop_front() else {
            return;
        };
        let arrival = self.line.carry(c.end, Direction::ToCard, c.byte);
        let Some(card) = &self.card else {
            return;
        };
        let etu = card.etu();
        let same_rate = etu.f() == c.f && etu.d() == c.d;
        if !same_rate {
            self.stats.rate_mismatches += 1;
        }
        match arrival {
            Arrival::Lost => self.stats.lost += 1,
            Arrival::Byte(byte) if same_rate => self.card_event(ContactEvent::Received(&[byte])),
            Arrival::Byte(_) | Arrival::ParityError => {
                self.stats.parity_errors_at_card += 1;
                self.card_event(ContactEvent::ParityError);
            }
        }
    }

    fn deliver_to_reader(&mut self) -> Option<Feed> {
        let c = self.to_reader.pop_front()?;
        let arrival = self.line.carry(c.end, Direction::ToReader, c.byte);
        let same_rate = self.rate.f == c.f && self.rate.d == c.d;
        if !same_rate {
            self.stats.rate_mismatches += 1;
        }
        match arrival {
            Arrival::Lost => {
                self.stats.lost += 1;
                None
            }
            Arrival::Byte(byte) if same_rate => Some(Feed::CardByte(byte)),
            Arrival::Byte(_) | Arrival::ParityError => {
                self.stats.parity_errors_at_reader += 1;
                Some(Feed::CardParity)
            }
        }
    }

    // ---- power ------------------------------------------------------------------------------

    /// The board's supply is gone: every contact falls, nothing is on its way any more.
    fn lose_power(&mut self) {
        if self.vcc {
            self.vcc = false;
            self.card_event(ContactEvent::Vcc(false));
        }
        if self.rst {
            self.rst = false;
            self.card_event(ContactEvent::Rst(false));
        }
        if self.clk {
            self.clk = false;
            self.card_event(ContactEvent::Clock(None));
        }
        self.to_reader.clear();
        self.to_card.clear();
        self.reader_done = None;
        self.timer = None;
        self.start_at = None;
        self.rate = LineRate::INITIAL;
        self.usb.disconnect();
    }
}

impl<L: CardLine> CardContacts for World<L> {
    type Error = ErrorKind;

    fn set_vcc(&mut self, on: bool) {
        if self.vcc == on {
            return;
        }
        self.vcc = on;
        self.record(TraceEvent::Vcc(on));
        self.card_event(ContactEvent::Vcc(on));
        if !on {
            self.cut_card_characters();
        }
    }

    fn set_rst(&mut self, high: bool) {
        if self.rst == high {
            return;
        }
        self.rst = high;
        self.record(TraceEvent::Rst(high));
        self.card_event(ContactEvent::Rst(high));
        if !high {
            self.cut_card_characters();
        }
    }

    fn set_clock(&mut self, running: bool) {
        if self.clk == running {
            return;
        }
        self.clk = running;
        self.record(TraceEvent::Clock(running));
        let level = self.clock_level();
        self.card_event(ContactEvent::Clock(level));
    }

    fn set_rate(&mut self, rate: LineRate) {
        self.rate = rate;
        self.record(TraceEvent::Rate(rate));
    }

    fn transmit(&mut self, bytes: &[u8]) -> Result<(), ErrorKind> {
        // The driver's buffer: one T=1 block (hal::CardContacts::transmit).
        if bytes.len() > 259 {
            return Err(ErrorKind::TooLong);
        }
        if !self.vcc || !self.clk {
            return Err(ErrorKind::NotReady);
        }
        let etu = Etu::new(self.rate.f, self.rate.d).ok_or(ErrorKind::Other)?;
        // Bytes of an earlier transmission that have not started are dropped (hal docs).
        let now = self.now;
        self.to_card.retain(|c| c.start < now);
        let per_char = etu.times(u64::from(self.rate.cgt_etu.max(1)));
        let at = |n: u64| {
            now.saturating_add(Duration::from_nanos(
                per_char.saturating_mul(n).nanos_ceil(self.clock),
            ))
        };
        let mut end = now;
        for (i, &byte) in bytes.iter().enumerate() {
            let i = u64::try_from(i).unwrap_or(u64::MAX);
            end = at(i.saturating_add(1));
            self.to_card.push_back(Char {
                start: at(i),
                end,
                byte,
                f: etu.f(),
                d: etu.d(),
            });
        }
        self.stats.to_card += u64::try_from(bytes.len()).unwrap_or(u64::MAX);
        self.reader_done = Some(end);
        self.record(TraceEvent::ToCard(bytes.to_vec()));
        Ok(())
    }
}

impl<L: CardLine> DeadlineTimer for World<L> {
    fn arm(&mut self, at: Instant) {
        // An instant in the past fires as soon as possible.
        self.timer = Some(duration(at).max(self.now));
    }

    fn disarm(&mut self) {
        self.timer = None;
    }
}

impl<L: CardLine> UsbDevice for World<L> {
    type Error = ErrorKind;

    fn attach(&mut self, serial: &str) {
        self.usb.serial = Some(serial.to_owned());
        self.usb.attached_at = Some(self.now);
        self.usb.configured = false;
        self.usb.configure_at = self.usb.timing.enumeration.map(|d| self.now + d);
        self.record(TraceEvent::Attach(serial.to_owned()));
    }

    fn detach(&mut self) {
        if self.usb.serial.is_some() {
            self.usb.disconnect();
            self.record(TraceEvent::Detach);
        }
    }

    fn send_bulk_in(&mut self, header: &[u8; 10], payload: &[u8]) -> Result<(), ErrorKind> {
        if !self.usb.configured {
            return Err(ErrorKind::NotReady);
        }
        if self.usb.bulk_in.is_some() {
            return Err(ErrorKind::Busy);
        }
        let len = header.len() + payload.len();
        if len > self.max_message_len {
            return Err(ErrorKind::TooLong);
        }
        let mut message = Vec::with_capacity(len);
        message.extend_from_slice(header);
        message.extend_from_slice(payload);
        let done = self.now + self.usb.timing.in_time(len);
        self.usb.bulk_in = Some((done, message));
        Ok(())
    }

    fn send_interrupt(&mut self, message: &[u8]) -> Result<(), ErrorKind> {
        if !self.usb.configured {
            return Err(ErrorKind::NotReady);
        }
        if self.usb.interrupt.is_some() {
            return Err(ErrorKind::Busy);
        }
        if message.len() > self.usb.timing.max_packet {
            return Err(ErrorKind::TooLong);
        }
        let done = self.now + self.usb.timing.packet_time;
        self.usb.interrupt = Some((done, message.to_vec()));
        Ok(())
    }
}

/// Events at one modelled instant before the board declares a livelock and moves on.
const MAX_EVENTS_PER_INSTANT: u32 = 1_000_000;

/// The virtual Nitrokey HSM 2 board: the real bridge, driven in modelled time by a virtual card
/// line (`L`, a [`CleanLine`] unless faults are wanted), a virtual clock, virtual USB and
/// virtual power. See the [crate documentation](crate).
pub struct VirtualBoard<L = CleanLine> {
    bridge_config: Config,
    board_serial: String,
    startup: Duration,
    bridge: Option<PoweredBridge>,
    powered_at: Option<Duration>,
    world: World<L>,
    /// Events processed at the current instant (livelock guard).
    same_instant: u32,
    stalls: u64,
}

impl<L> std::fmt::Debug for VirtualBoard<L> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("VirtualBoard")
            .field("now", &self.world.now)
            .field("powered", &self.bridge.is_some())
            .field("serial", &self.world.usb.serial)
            .field("configured", &self.world.usb.configured)
            .field("card", &self.world.card)
            .finish_non_exhaustive()
    }
}

impl VirtualBoard<CleanLine> {
    /// An unpowered board with a perfect card line.
    pub fn new(config: BoardConfig) -> Result<Self, BoardError> {
        VirtualBoard::with_line(config, CleanLine)
    }
}

impl<L: CardLine> VirtualBoard<L> {
    /// An unpowered board whose card line is `line` (a [`FaultyLine`](crate::FaultyLine), say).
    /// Modelled time starts at zero.
    pub fn with_line(config: BoardConfig, line: L) -> Result<Self, BoardError> {
        // Let the bridge check the configuration now, not at the first power-on.
        build_bridge(&config.bridge, &config.board_serial).map_err(BoardError::Bridge)?;
        let clock = NonZeroU32::new(config.bridge.card.clock_hz)
            .ok_or(BoardError::Bridge(ConfigError::Clock))?;
        let max_message_len = usize::try_from(config.bridge.max_message_len).unwrap_or(usize::MAX);
        Ok(VirtualBoard {
            bridge_config: config.bridge,
            board_serial: config.board_serial,
            startup: config.startup,
            bridge: None,
            powered_at: None,
            world: World {
                now: Duration::ZERO,
                clock,
                max_message_len,
                line,
                card: config.card,
                vcc: false,
                rst: false,
                clk: false,
                rate: LineRate::INITIAL,
                to_card: VecDeque::new(),
                reader_done: None,
                to_reader: VecDeque::new(),
                timer: None,
                start_at: None,
                usb: Usb::new(config.usb),
                trace: config.trace.then(Vec::new),
                stats: LineStats::default(),
            },
            same_instant: 0,
            stalls: 0,
        })
    }

    // ---- time -------------------------------------------------------------------------------

    /// Modelled time since the board was made.
    pub fn now(&self) -> Duration {
        self.world.now
    }

    /// Runs everything due up to `at` (modelled time), then stands at `at` (or stays at
    /// [`now`](Self::now) if that is later).
    pub fn run_until(&mut self, at: Duration) {
        while self.step(at) {}
        self.world.now = self.world.now.max(at);
    }

    /// Runs for `d` of modelled time.
    pub fn run_for(&mut self, d: Duration) {
        let at = self.world.now.saturating_add(d);
        self.run_until(at);
    }

    /// Runs until `condition` holds (checked before the first event and after each) or
    /// `timeout` of modelled time has passed; returns whether it holds. On success the board
    /// stands at the instant it came true.
    pub fn run_until_true(
        &mut self,
        timeout: Duration,
        mut condition: impl FnMut(&Self) -> bool,
    ) -> bool {
        let end = self.world.now.saturating_add(timeout);
        loop {
            if condition(self) {
                return true;
            }
            if !self.step(end) {
                self.world.now = self.world.now.max(end);
                return condition(self);
            }
        }
    }

    /// How often the livelock guard fired: more than a million events at one modelled instant,
    /// or a [`CardLine`] that announced an event and had none (a bug in the bridge or in a
    /// line). Each time, the `run` call in progress ended early and the board moved on to its
    /// limit. Zero in a healthy run.
    pub fn stalls(&self) -> u64 {
        self.stalls
    }

    /// Processes the next event if it is due by `limit`.
    fn step(&mut self, limit: Duration) -> bool {
        let Some((at, due)) = self.world.next_due() else {
            return false;
        };
        if at > limit {
            return false;
        }
        if at > self.world.now {
            self.world.now = at;
            self.same_instant = 0;
        } else {
            self.same_instant += 1;
            if self.same_instant > MAX_EVENTS_PER_INSTANT {
                self.stalls += 1;
                self.same_instant = 0;
                return false;
            }
        }
        let now = self.world.now;
        match due {
            Due::Start => {
                self.world.start_at = None;
                self.start_bridge();
            }
            Due::Socket => match self.world.line.poll(now) {
                Some(event) => self.world.socket_event(event),
                // A line that announced an event and has none breaks the CardLine contract:
                // count it as a stall and let the caller's run end here.
                None => {
                    self.stalls += 1;
                    return false;
                }
            },
            Due::Card => {
                if let Some(card) = &mut self.world.card {
                    let out = card.poll(now);
                    self.world.collect(out);
                }
            }
            Due::ToCard => self.world.deliver_to_card(),
            Due::ReaderDone => {
                self.world.reader_done = None;
                self.feed(Feed::Transmitted);
            }
            Due::ToReader => {
                self.world.stats.to_reader += 1;
                if let Some(feed) = self.world.deliver_to_reader() {
                    self.feed(feed);
                }
            }
            Due::BulkIn => {
                if let Some((_, message)) = self.world.usb.bulk_in.take() {
                    self.world.record(TraceEvent::BulkIn(message.clone()));
                    self.world.usb.host_bulk_in.push_back(message);
                    self.feed(Feed::BulkInSent);
                }
            }
            Due::Interrupt => {
                if let Some((_, message)) = self.world.usb.interrupt.take() {
                    self.world.record(TraceEvent::Interrupt(message.clone()));
                    self.world.usb.host_interrupt.push_back(message);
                    self.feed(Feed::InterruptSent);
                }
            }
            Due::Configure => {
                self.world.usb.configure_at = None;
                self.set_configured();
            }
            Due::BulkOut => {
                if let Some((_, mut message)) = self.world.usb.out.pop_front() {
                    // The firmware's buffer holds dwMaxCCIDMessageLength bytes; the bridge
                    // answers a longer message from its header (BulkOutAssembler).
                    message.truncate(self.world.max_message_len);
                    self.world.record(TraceEvent::BulkOut(message.clone()));
                    self.feed(Feed::BulkOut(message));
                }
            }
            Due::Timer => {
                self.world.timer = None;
                self.feed(Feed::Deadline);
            }
        }
        true
    }

    /// Feeds the bridge one event at the present instant (nothing while unpowered).
    fn feed(&mut self, feed: Feed) {
        let now = instant(self.world.now);
        let Some(bridge) = &mut self.bridge else {
            return;
        };
        let world = &mut self.world;
        bridge.with_bridge_mut(|bridge| {
            let event = match &feed {
                Feed::CardByte(byte) => Event::CardReceived(std::slice::from_ref(byte)),
                Feed::CardParity => Event::CardParityError,
                Feed::Transmitted => Event::CardTransmitted,
                Feed::Deadline => Event::DeadlinePassed,
                Feed::Configured => Event::UsbConfigured,
                Feed::Deconfigured => Event::UsbDeconfigured,
                Feed::BulkOut(message) => Event::UsbBulkOut(message),
                Feed::BulkInSent => Event::UsbBulkInSent,
                Feed::InterruptSent => Event::UsbInterruptSent,
                Feed::Abort { slot, seq } => Event::UsbAbort {
                    slot: *slot,
                    seq: *seq,
                },
            };
            bridge.handle(now, event, world);
        });
    }

    // ---- power ------------------------------------------------------------------------------

    /// Switches the board's supply on: after [`BoardConfig::startup`] a new bridge starts from
    /// scratch (the card keeps its memory). Nothing happens if it is on already.
    pub fn power_on(&mut self) {
        if self.is_powered() {
            return;
        }
        self.powered_at = Some(self.world.now);
        self.world.record(TraceEvent::Power(true));
        self.world.start_at = Some(self.world.now.saturating_add(self.startup));
    }

    /// Switches the board's supply off: the bridge is dropped, every contact falls (the card
    /// loses power, its memory stays), the device leaves USB and whatever was on its way is
    /// lost. Nothing happens if it is off already.
    pub fn power_off(&mut self) {
        if !self.is_powered() {
            return;
        }
        self.bridge = None;
        self.powered_at = None;
        self.world.lose_power();
        self.world.record(TraceEvent::Power(false));
    }

    /// Whether the board's supply is on.
    pub fn is_powered(&self) -> bool {
        self.powered_at.is_some()
    }

    /// When the supply was last switched on, while it is on.
    pub fn powered_at(&self) -> Option<Duration> {
        self.powered_at
    }

    fn start_bridge(&mut self) {
        let Ok(mut bridge) = build_bridge(&self.bridge_config, &self.board_serial) else {
            // The configuration was checked when the board was made.
            return;
        };
        let now = instant(self.world.now);
        let world = &mut self.world;
        bridge.with_bridge_mut(|bridge| bridge.start(now, world));
        self.bridge = Some(bridge);
    }

    /// The bridge, while the board is powered and started (for its state: slot, boot phase,
    /// serial, line rate).
    pub fn bridge(&self) -> Option<&Bridge<'_>> {
        self.bridge.as_ref().map(PoweredBridge::borrow_bridge)
    }

    /// The bridge's configuration.
    pub fn bridge_config(&self) -> &Config {
        &self.bridge_config
    }

    // ---- the SIM socket ---------------------------------------------------------------------

    /// Puts `card` into the socket; it sees the contacts as they are (a card inserted into a
    /// powered socket waits for a reset). Gives the card back if the socket holds one.
    ///
    /// Boards in one rig should keep their clocks together: a card's own time never goes
    /// backwards, so a card moved to a board whose clock is behind acts at its own time.
    // The error is the card itself, handed back whole: boxing it would only move it twice.
    #[allow(clippy::result_large_err)]
    pub fn insert_card(&mut self, card: Card) -> Result<(), Card> {
        if self.world.card.is_some() {
            return Err(card);
        }
        self.world.card = Some(card);
        // Out of the socket first, then the socket's levels, then in (ContactEvent::Inserted).
        self.world.card_event(ContactEvent::Pulled);
        let (clk, rst, vcc) = (self.world.clock_level(), self.world.rst, self.world.vcc);
        self.world.card_event(ContactEvent::Clock(clk));
        self.world.card_event(ContactEvent::Rst(rst));
        self.world.card_event(ContactEvent::Vcc(vcc));
        self.world.card_event(ContactEvent::Inserted);
        self.world.record(TraceEvent::CardInserted);
        Ok(())
    }

    /// Takes the card out of the socket (whatever it was sending and had not started is
    /// lost).
    pub fn remove_card(&mut self) -> Option<Card> {
        let present = self.world.card.as_ref().is_some_and(Contacts::is_present);
        if present {
            self.world.card_event(ContactEvent::Pulled);
            self.world.record(TraceEvent::CardPulled);
        }
        self.world.cut_card_characters();
        self.world.card.take()
    }

    /// The card in the socket (it may have been pulled by the line: see
    /// [`is_card_present`](Self::is_card_present)).
    pub fn card(&self) -> Option<&Card> {
        self.world.card.as_ref()
    }

    /// Whether a card is in the socket and in contact.
    pub fn is_card_present(&self) -> bool {
        self.world.card.as_ref().is_some_and(Contacts::is_present)
    }

    // ---- the card line ----------------------------------------------------------------------

    /// The card line.
    pub fn line(&self) -> &L {
        &self.world.line
    }

    /// The card line, mutably (to schedule faults).
    pub fn line_mut(&mut self) -> &mut L {
        &mut self.world.line
    }

    /// The rate and guard time the bridge last set on its side of the line.
    pub fn line_rate(&self) -> LineRate {
        self.world.rate
    }

    /// The bridge's bit rate on the card line, bps (f × D / F).
    pub fn baud(&self) -> u32 {
        self.world.rate.baud(self.world.clock.get())
    }

    /// The card clock, Hz.
    pub fn clock_hz(&self) -> u32 {
        self.world.clock.get()
    }

    /// What crossed the card line so far.
    pub fn line_stats(&self) -> LineStats {
        self.world.stats
    }

    /// Everything that happened so far, if [`BoardConfig::trace`] is on (empty otherwise).
    pub fn trace(&self) -> &[TraceEntry] {
        self.world.trace.as_deref().unwrap_or_default()
    }

    /// The trace so far, leaving it empty.
    pub fn take_trace(&mut self) -> Vec<TraceEntry> {
        self.world
            .trace
            .as_mut()
            .map(std::mem::take)
            .unwrap_or_default()
    }

    // ---- USB --------------------------------------------------------------------------------

    /// Whether the device is on the bus (D+ pulled up).
    pub fn is_attached(&self) -> bool {
        self.world.usb.serial.is_some()
    }

    /// The USB serial string (iSerialNumber), while attached.
    pub fn serial(&self) -> Option<&str> {
        self.world.usb.serial.as_deref()
    }

    /// When the device last attached, while it is attached.
    pub fn attached_at(&self) -> Option<Duration> {
        self.world
            .usb
            .serial
            .as_ref()
            .and(self.world.usb.attached_at)
    }

    /// Whether the host has configured the device.
    pub fn is_configured(&self) -> bool {
        self.world.usb.configured
    }

    /// The USB identity (VID:PID, strings) of the device.
    pub fn identity(&self) -> Identity {
        self.bridge_config.identity()
    }

    /// The CCID class descriptor of the device (for a host driver).
    pub fn descriptor(&self) -> ClassDescriptorRepr {
        self.bridge_config.class_descriptor()
    }

    fn set_configured(&mut self) {
        if self.world.usb.serial.is_none() || self.world.usb.configured {
            return;
        }
        self.world.usb.configured = true;
        self.world.record(TraceEvent::Configured);
        self.feed(Feed::Configured);
    }

    /// The host configures the attached device now (SET_CONFIGURATION), if
    /// [`UsbTiming::enumeration`] has not done it yet.
    pub fn configure(&mut self) -> Result<(), UsbError> {
        self.usb_ready(false)?;
        self.world.usb.configure_at = None;
        self.set_configured();
        Ok(())
    }

    /// A USB bus reset: the device is unconfigured (what was on its way is lost) and, with
    /// automatic enumeration, configured again [`UsbTiming::enumeration`] later.
    pub fn usb_reset(&mut self) -> Result<(), UsbError> {
        self.usb_ready(false)?;
        let usb = &mut self.world.usb;
        usb.configured = false;
        usb.drop_transfers();
        usb.configure_at = usb.timing.enumeration.map(|d| self.world.now + d);
        self.world.record(TraceEvent::Deconfigured);
        self.feed(Feed::Deconfigured);
        Ok(())
    }

    /// The host sends the class request ABORT (CCID Rev 1.1 §5.3.1) for `slot` and `seq`.
    pub fn usb_abort(&mut self, slot: u8, seq: u8) -> Result<(), UsbError> {
        self.usb_ready(true)?;
        self.feed(Feed::Abort { slot, seq });
        Ok(())
    }

    fn usb_ready(&self, configured: bool) -> Result<(), UsbError> {
        if !self.is_powered() {
            Err(UsbError::Unpowered)
        } else if !self.is_attached() {
            Err(UsbError::NotAttached)
        } else if configured && !self.world.usb.configured {
            Err(UsbError::NotConfigured)
        } else {
            Ok(())
        }
    }

    /// The host writes one CCID message (`PC_to_RDR_…`, CCID Rev 1.1 §6.1) to the bulk-OUT
    /// endpoint. It reaches the bridge after its packets have crossed the bus (behind any
    /// message still on its way); modelled time does not move here.
    pub fn send_ccid(&mut self, message: &[u8]) -> Result<(), UsbError> {
        self.usb_ready(true)?;
        let usb = &mut self.world.usb;
        let arrival = usb
            .out_free_at
            .max(self.world.now)
            .saturating_add(usb.timing.out_time(message.len()));
        usb.out_free_at = arrival;
        usb.out.push_back((arrival, message.to_vec()));
        Ok(())
    }

    /// The next bulk-IN message (`RDR_to_PC_…`, time extensions included) the host has
    /// received, waiting up to `timeout` of modelled time for one.
    pub fn receive_ccid(&mut self, timeout: Duration) -> Option<Vec<u8>> {
        self.run_until_true(timeout, |b| !b.world.usb.host_bulk_in.is_empty());
        self.world.usb.host_bulk_in.pop_front()
    }

    /// The next interrupt-IN message (`RDR_to_PC_NotifySlotChange`, …), waiting up to
    /// `timeout` of modelled time for one.
    pub fn receive_interrupt(&mut self, timeout: Duration) -> Option<Vec<u8>> {
        self.run_until_true(timeout, |b| !b.world.usb.host_interrupt.is_empty());
        self.world.usb.host_interrupt.pop_front()
    }

    /// Bulk-IN messages received and not read yet.
    pub fn pending_ccid(&self) -> usize {
        self.world.usb.host_bulk_in.len()
    }

    #[cfg(feature = "host")]
    pub(crate) fn pipe_rest(&mut self) -> &mut Vec<u8> {
        &mut self.world.usb.pipe_rest
    }
}

fn build_bridge(config: &Config, board_serial: &str) -> Result<PoweredBridge, ConfigError> {
    let len = match config.exchange {
        Exchange::Tpdu => TPDU_BUFFER_LEN,
        Exchange::ExtendedApdu => APDU_BUFFER_LEN,
    };
    PoweredBridgeTryBuilder {
        buffer: vec![0u8; len].into_boxed_slice(),
        bridge_builder: |buffer: &mut Box<[u8]>| Bridge::new(*config, board_serial, buffer),
    }
    .try_build()
}

#[cfg(test)]
mod tests {
    //! The line model below the bridge: the board's contacts driven by hand, no bridge (the
    //! board stays unpowered, so nothing is fed to one).
    #![allow(clippy::unwrap_used)]

    use tessera_card::contacts::LinkState;
    use tessera_card::memory::MemoryStorage;
    use tessera_iso7816_3::rate::FiDi;

    use super::*;

    const PPS_V3: [u8; 4] = [0xFF, 0x11, 0x18, 0xF6];
    /// S(IFS request 254): NAD 00, PCB C1, LEN 01, FE, LRC 3E.
    const S_IFS_254: [u8; 5] = [0x00, 0xC1, 0x01, 0xFE, 0x3E];

    fn unpowered_board_with_a_card() -> VirtualBoard {
        let card = new_card(
            MemoryStorage::new(),
            CardConfig::default(),
            ContactsConfig::default(),
            [1; 32],
            [2; 32],
        )
        .unwrap();
        let config = BoardConfig::new(BootPolicy::RequireCard, Exchange::Tpdu).with_card(card);
        VirtualBoard::new(config).unwrap()
    }

    /// Cold activation by hand (ISO/IEC 7816-3 §6.2.2), then the ATR.
    fn activate(b: &mut VirtualBoard) {
        b.world.set_vcc(true);
        b.world.set_rate(LineRate::INITIAL);
        b.world.set_clock(true);
        b.world.set_rst(false);
        b.run_for(Duration::from_millis(1));
        b.world.set_rst(true);
    }

    fn card(b: &VirtualBoard) -> &Card {
        b.card().unwrap()
    }

    #[test]
    fn the_atr_arrives_whole_at_the_default_rate() {
        let mut b = unpowered_board_with_a_card();
        activate(&mut b);
        b.run_for(Duration::from_millis(50));
        let stats = b.line_stats();
        assert_eq!(stats.to_reader, 24);
        assert_eq!(stats.parity_errors_at_reader + stats.rate_mismatches, 0);
        // 24 characters of 12 etu at 372 / 3.6 MHz, after 10 000 clock cycles.
        let atr = b
            .trace()
            .iter()
            .find(|e| matches!(e.event, TraceEvent::FromCard(_)))
            .unwrap();
        assert_eq!(atr.at, Duration::from_nanos(1_000_000 + 2_777_778));
    }

    #[test]
    fn a_pps_sent_at_another_rate_arrives_garbled_and_the_card_goes_silent() {
        let mut b = unpowered_board_with_a_card();
        activate(&mut b);
        b.run_for(Duration::from_millis(50));
        // The reader switches before the PPS exchange: wrong.
        b.world.set_rate(LineRate {
            f: 372,
            d: 12,
            cgt_etu: 12,
        });
        b.world.transmit(&PPS_V3).unwrap();
        b.run_for(Duration::from_millis(50));
        let stats = b.line_stats();
        assert_eq!(stats.rate_mismatches, 4);
        assert_eq!(stats.parity_errors_at_card, 4);
        // ISO/IEC 7816-3 §9.3: an erroneous PPS request gets no answer.
        assert_eq!(card(&b).link_state(), LinkState::Mute);
        assert_eq!(stats.to_reader, 24, "the ATR and nothing more");
    }

    #[test]
    fn a_pps_at_the_cards_rate_switches_it_and_only_the_new_rate_gets_through() {
        let mut b = unpowered_board_with_a_card();
        activate(&mut b);
        b.run_for(Duration::from_millis(50));
        b.world.transmit(&PPS_V3).unwrap();
        b.run_for(Duration::from_millis(50));
        assert_eq!(b.line_stats().to_reader, 28, "the ATR and the PPS response");
        assert_eq!(b.line_stats().rate_mismatches, 0);
        assert_eq!(card(&b).fi_di(), FiDi::from_byte(0x18));

        // The reader forgot to switch: the card gets garbage.
        b.world.transmit(&S_IFS_254).unwrap();
        b.run_for(Duration::from_millis(50));
        assert_eq!(b.line_stats().rate_mismatches, 5);
        assert_eq!(b.line_stats().parity_errors_at_card, 5);

        // At the agreed rate the card answers (its T=1 engine may first ask for the garbled
        // block again, §11.6.3.2), and its characters get through.
        b.world.set_rate(LineRate {
            f: 372,
            d: 12,
            cgt_etu: 11,
        });
        let before = b.line_stats();
        b.world.transmit(&S_IFS_254).unwrap();
        b.run_for(Duration::from_millis(200));
        let after = b.line_stats();
        assert_eq!(after.rate_mismatches, before.rate_mismatches);
        assert!(after.to_reader > before.to_reader);
        assert_eq!(after.parity_errors_at_reader, 0);
    }

    #[test]
    fn a_reset_cuts_the_card_characters_that_have_not_started() {
        let mut b = unpowered_board_with_a_card();
        activate(&mut b);
        assert!(b.run_until_true(Duration::from_millis(50), |b| b.line_stats().to_reader == 1));
        // Mid-ATR: the second character has started, the rest have not.
        b.run_for(Duration::from_micros(10));
        b.world.set_rst(false);
        b.run_for(Duration::from_millis(50));
        assert_eq!(b.line_stats().to_reader, 2);
    }

    #[test]
    fn a_board_can_move_to_another_thread() {
        fn send<T: Send>() {}
        send::<VirtualBoard>();
        send::<VirtualBoard<crate::FaultyLine>>();
        send::<Card>();
    }

    #[test]
    fn the_bridge_clock_is_whole_microseconds_rounded_down() {
        assert_eq!(
            instant(Duration::from_nanos(1_999)),
            Instant::from_micros(1)
        );
        assert_eq!(duration(Instant::from_micros(7)), Duration::from_micros(7));
    }

    #[test]
    fn usb_transfers_take_their_packets_time() {
        let usb = UsbTiming::default();
        assert_eq!(usb.out_time(10), Duration::from_micros(50));
        assert_eq!(usb.out_time(128), Duration::from_micros(100));
        // A bulk-IN message of a multiple of 64 bytes ends with a zero-length packet.
        assert_eq!(usb.in_time(128), Duration::from_micros(150));
        assert_eq!(usb.in_time(100), Duration::from_micros(100));
    }
}
