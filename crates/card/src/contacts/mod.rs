//! The card side of ISO/IEC 7816-3 on the virtual SmartCard-HSM's contacts: a sans-IO model in
//! modelled time, for a virtual board to wire to its SIM socket.
//!
//! [`Contacts`] owns the card memory and, while powered, the applet on it. A board drives it
//! with [`ContactEvent`]s (VCC, RST and CLK levels, characters received, a parity error, the
//! card pulled or inserted) stamped with the modelled time, and gets back the
//! [`Transmission`]s the card starts, each with the time of its first character, the rate it
//! uses and its character timing. The card does, ISO/IEC 7816-3:2006:
//!
//! - **Activation and reset** (§6.2): the card answers only while present, powered (VCC) and
//!   clocked, and after a rising edge of RST. The ATR ([`crate::virtual_card::AtrProfile`])
//!   starts [`ContactsConfig::atr_delay_cycles`] clock cycles after RST rises (400 to 40 000,
//!   §6.2.2/§6.2.3), at the default rate Fd = 372, Dd = 1 (§8.1). A power-up reloads the applet
//!   from the card memory (RAM is lost; every authentication with it); a warm reset (RST low
//!   then high, VCC on, §6.2.3) resets the applet's session ([`Applet::reset`]) and the T=1
//!   state. A card powered up with RST already high waits for a RST cycle.
//! - **PPS** (§9): the ATRs have no TA2, so the card starts in negotiable mode (§6.3.1). A
//!   first character FF after the ATR opens a PPS request, answered with
//!   [`tessera_iso7816_3::pps::answer`] under the [`PpsPolicy`]; the card switches to the agreed
//!   F and D when its response has gone out. An erroneous request gets no answer and the card
//!   stays silent until the next reset (§9.3: the reader shall deactivate it). Any other first
//!   character starts T=1 at Fd, Dd.
//! - **T=1** (§11) through [`tessera_iso7816_3::t1::Card`] with the ATR's IFSC (TA3 = FE: 254),
//!   its EDC (LRC) and the initial IFSD 32, changed by the reader's S(IFS request). The card
//!   answers a complete block BGT (22 etu) after its last character arrived.
//! - **Busy time and WTX**: a command APDU runs in the applet as soon as it arrives (real code);
//!   the response leaves the card after the modelled processing time of [`BusyTimes`]. While the
//!   answer is not ready [`WtxPolicy::at_percent`] of the way into the reader's waiting window
//!   (BWT, 11 etu + 2^BWI × 960 × 372 clock cycles, §11.4.3, from the leading edge of the
//!   reader's last character; BWT × multiplier after a WTX), the card sends S(WTX request)
//!   (§11.6.2.2 Rule 3). The ATRs carry no TB3, so BWI = 4 and CWI = 13 (§11.4.3 defaults):
//!   BWT ≈ 1.59 s at 3.6 MHz.
//!
//! # Time
//!
//! Times are [`Duration`]s of modelled time since the board's epoch; they never go backwards
//! (an earlier `now` is taken as the last one). Timers on the line (the ATR delay, CWT, BGT)
//! count card clock cycles and stand still while CLK is stopped; the processing time runs on
//! the card's own oscillator and does not. One character takes [`CHARACTER_ETU`] etu.
//!
//! # Call sequence (the board)
//!
//! 1. [`Contacts::new`]: the card is present, unpowered, RST low, CLK stopped.
//! 2. For everything that happens on the contacts call [`Contacts::handle`]`(now, event)`.
//!    Characters from the reader are [`ContactEvent::Received`] at the time they have been
//!    completely received (the leading edge of the last one plus one character time), and only
//!    when the reader sent them at the card's rate ([`Contacts::fi_di`]); otherwise the board
//!    delivers the garbage it models, or a [`ContactEvent::ParityError`].
//! 3. Each call returns the transmissions the card started (usually none or one). The board
//!    delivers their characters to the reader at [`Transmission::character_end`].
//! 4. Call [`Contacts::poll`]`(now)` at [`Contacts::next_poll`] (ask again after every call).
//!
//! Limits of the model: a command changes the card memory when it arrives, so pulling the card
//! or cutting VCC during its busy time loses only the answer (a cut inside a write is
//! [`crate::memory::PowerCut`]'s business); a failed write makes the card silent until the next
//! reset, as [`Applet::process`] says. The minimum time RST stays low (§6.2.2) is not checked.
//! S(WTX) is planned at the clock in force, so a reader that stops CLK while the card has the
//! turn gets none.
//!
//! What it does not know: the reader, the line itself (collisions, garbage at a rate
//! mismatch, bit timing below the character), voltages and classes, T=0 (the ATRs offer T=1
//! only), power-cut faults (a board wraps the [`Storage`] in [`crate::memory::PowerCut`]), and
//! faults in general: a board injects them in its line model, not here.

mod busy;
mod line;

use std::num::NonZeroU32;
use std::time::Duration;

use tessera_iso7816_3::atr::{AtrRepr, Convention, ProtocolSet, T1Params};
use tessera_iso7816_3::pps::{self, CardAnswer};
use tessera_iso7816_3::rate::{self, Cycles, Etu, FiDi, LineParams, Timing};
use tessera_iso7816_3::t1::{self, Action, CardEvent, Deadline, Event};

use crate::applet::{Applet, AppletConfig};
use crate::memory::{MemoryError, Storage};
use crate::virtual_card::{AtrProfile, CardConfig};

pub use busy::{BusyTimes, Operation};
pub use line::{Transmission, CHARACTER_ETU};

use line::{duration, LineTimer};

/// The largest APDU buffer: an extended case-4 command with 65 535 data bytes and Le, or a
/// response of 65 536 bytes and SW1 SW2 (ISO/IEC 7816-4 §5.1).
pub const MAX_APDU_BUFFER: usize = 4 + 3 + 65_535 + 2;

/// Which PPS1 values the card accepts (ISO/IEC 7816-3:2006 §9.3: the card echoes PPS1 to
/// accept it, or leaves it out and stays at Fd, Dd).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum PpsPolicy {
    /// Any F and D of Tables 7 and 8 whose rate is not above the ATR's (D/F ≤ D1/F1 of TA1) and
    /// whose f(max) the clock does not exceed. GUESS: the stock firmware drove a v4 card
    /// (TA1 = 96) with PPS1 = 04, 11, 28, B9 and 98, all slower than TA1 (hardware.md §A).
    #[default]
    UpToAtrRate,
    /// Only PPS1 = TA1.
    AtrRateOnly,
    /// Never PPS1: the card always stays at Fd, Dd.
    DefaultRateOnly,
}

/// When the card asks for more time, and how much (ISO/IEC 7816-3:2006 §11.6.2.2 Rule 3).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WtxPolicy {
    /// How far into the reader's waiting window, in percent (1 to 99), the card sends
    /// S(WTX request) if its answer is not ready. GUESS 50: JavaCard runtimes extend on a timer
    /// well inside BWT.
    pub at_percent: u8,
    /// The BWT multiplier the card asks for, 1 to 255. GUESS 1.
    pub multiplier: u8,
}

impl Default for WtxPolicy {
    fn default() -> Self {
        WtxPolicy {
            at_percent: 50,
            multiplier: 1,
        }
    }
}

/// How the card behaves on its contacts. Every default is a GUESS where the field says so.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ContactsConfig {
    /// Clock cycles from the rising edge of RST to the first character of the ATR, 400 to
    /// 40 000 (ISO/IEC 7816-3:2006 §6.2.2). GUESS 10 000 (2.8 ms at 3.6 MHz).
    pub atr_delay_cycles: u32,
    /// Which PPS1 values the card accepts.
    pub pps: PpsPolicy,
    /// When the card sends S(WTX request).
    pub wtx: WtxPolicy,
    /// Modelled processing times.
    pub busy: BusyTimes,
    /// The T=1 APDU buffer in bytes (bounds command and response; a longer command is answered
    /// 6700), at least 261. Default [`MAX_APDU_BUFFER`], so that the applet decides; a JCOP 3
    /// takes APDUs of 1232 bytes (sc-hsm-protocol.md §8).
    pub apdu_buffer: usize,
}

impl Default for ContactsConfig {
    fn default() -> Self {
        ContactsConfig {
            atr_delay_cycles: 10_000,
            pps: PpsPolicy::default(),
            wtx: WtxPolicy::default(),
            busy: BusyTimes::default(),
            apdu_buffer: MAX_APDU_BUFFER,
        }
    }
}

/// Why [`Contacts::new`] failed.
#[derive(Debug, thiserror::Error)]
pub enum ContactsError {
    /// The card memory could not be loaded or written.
    #[error("card memory: {0}")]
    Memory(#[from] MemoryError),
    /// The ATR of the profile does not parse (or offers no usable T=1 parameters).
    #[error("ATR: {0}")]
    Atr(tessera_iso7816_3::atr::Error),
    /// A configuration value is out of range.
    #[error("contacts configuration: {0}")]
    Config(&'static str),
}

/// Something that happens on the card's contacts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ContactEvent<'a> {
    /// VCC switched on (`true`) or off.
    Vcc(bool),
    /// RST driven high (`true`) or low.
    Rst(bool),
    /// CLK running at this frequency, or stopped (`None`).
    Clock(Option<NonZeroU32>),
    /// Characters completely received from the reader, in order, the last one at `now`.
    Received(&'a [u8]),
    /// One character received with a parity error, at `now`.
    ParityError,
    /// The card is taken out of the socket: no contact at all until [`ContactEvent::Inserted`].
    Pulled,
    /// The card is put back into the socket: it sees the contacts' present levels (powered
    /// with RST high, it waits for a RST cycle).
    Inserted,
}

/// Where the card's side of the line stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum LinkState {
    /// No power: VCC off, or the card is not in the socket.
    Unpowered,
    /// Powered, waiting for a rising edge of RST.
    Reset,
    /// RST rose: the ATR is due, or going out.
    AnswerToReset,
    /// After the ATR: waiting for a PPS request (characters so far: `pps_bytes`) or the first
    /// T=1 block.
    Negotiable {
        /// Characters of a PPS request received so far.
        pps_bytes: usize,
    },
    /// T=1 (after the PPS exchange or without one).
    T1,
    /// Silent until the next reset: after an erroneous PPS request or a failed write to the card
    /// memory. A card whose memory did not load at power-up stays silent for good.
    Mute,
}

/// The card's state on its contacts (internal form of [`LinkState`]).
#[derive(Debug, Clone, PartialEq, Eq)]
enum Phase {
    Unpowered,
    Reset,
    AnswerToReset,
    Negotiable(Vec<u8>),
    T1,
    Mute,
}

/// The card memory, and the applet while the card is powered.
enum Chip<S: Storage> {
    /// Unpowered: only the memory.
    Off(S),
    /// Powered: the applet, with its session state in RAM.
    On(Box<Applet<S>>),
    /// The memory could not be loaded at the last power-up (the storage was consumed).
    Broken,
}

/// What the ATR says, read once.
#[derive(Debug, Clone, Copy)]
struct AtrInfo {
    convention: Convention,
    ta1: FiDi,
    protocols: ProtocolSet,
    t1: T1Params,
    n: u8,
    wi: u8,
}

/// Which timer is due.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Due {
    Atr,
    Engine,
    RateSwitch,
    Release,
    Wtx,
}

/// A [`t1::Action`] copied out of the engine's borrow.
struct Step {
    transmit: Option<Vec<u8>>,
    deadline: Option<Deadline>,
    completion: Option<CardEvent>,
}

impl Step {
    fn of(action: Action<'_, CardEvent>) -> Step {
        Step {
            transmit: action.transmit.map(<[u8]>::to_vec),
            deadline: action.deadline,
            completion: action.completion,
        }
    }
}

/// At most this many timers fire in one call (a guard; a board that polls at
/// [`Contacts::next_poll`] sees one or two).
const MAX_FIRED_PER_CALL: usize = 4096;

/// The virtual SmartCard-HSM on its contacts. See the module documentation.
pub struct Contacts<S: Storage> {
    config: ContactsConfig,
    applet_config: AppletConfig,
    seed: [u8; 32],
    rng_seed: [u8; 32],
    power_ups: u64,
    chip: Chip<S>,
    atr: &'static [u8],
    info: AtrInfo,
    // Contact levels.
    present: bool,
    vcc: bool,
    rst: bool,
    clock: Option<NonZeroU32>,
    now: Duration,
    // Line state.
    phase: Phase,
    fi_di: FiDi,
    engine: t1::Card<Vec<u8>>,
    atr_timer: LineTimer,
    engine_timer: LineTimer,
    rate_timer: LineTimer,
    next_fi_di: FiDi,
    /// When the card's last transmission ends.
    tx_free_at: Duration,
    /// When the last character from the reader was received.
    last_rx_end: Option<Duration>,
    // The command being processed.
    response: Option<Vec<u8>>,
    release_at: Option<Duration>,
    wtx_at: Option<Duration>,
    memory_error: Option<String>,
}

impl<S: Storage> std::fmt::Debug for Contacts<S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Contacts")
            .field("present", &self.present)
            .field("vcc", &self.vcc)
            .field("rst", &self.rst)
            .field("clock", &self.clock)
            .field("now", &self.now)
            .field("state", &self.link_state())
            .field("fi_di", &self.fi_di)
            .finish_non_exhaustive()
    }
}

impl<S: Storage> Contacts<S> {
    /// A card on `storage` (a new card, with an identity from `seed`, if the storage is empty;
    /// it is written now), present in the socket, unpowered. `rng_seed` seeds the card's random
    /// number generator; power-up number n uses it with n XORed into its first 8 bytes, so a
    /// simulation is deterministic.
    pub fn new(
        storage: S,
        card: CardConfig,
        config: ContactsConfig,
        seed: [u8; 32],
        rng_seed: [u8; 32],
    ) -> Result<Self, ContactsError> {
        if !(400..=40_000).contains(&config.atr_delay_cycles) {
            return Err(ContactsError::Config(
                "atr_delay_cycles must be 400 to 40 000 (ISO 7816-3 §6.2.2)",
            ));
        }
        if !(1..=99).contains(&config.wtx.at_percent) || config.wtx.multiplier == 0 {
            return Err(ContactsError::Config(
                "wtx.at_percent must be 1 to 99 and wtx.multiplier at least 1",
            ));
        }
        if config.apdu_buffer < 261 {
            return Err(ContactsError::Config("apdu_buffer must be at least 261"));
        }
        let atr = card.atr.atr();
        let info = atr_info(card.atr)?;
        let applet = Applet::power_up(storage, card.applet.clone(), seed, rng_seed)?;
        let engine = t1::Card::new(
            t1::Config::new(info.t1.ifsc, info.t1.edc),
            vec![0; config.apdu_buffer],
        );
        Ok(Contacts {
            applet_config: card.applet,
            seed,
            rng_seed,
            power_ups: 1,
            chip: Chip::Off(applet.into_storage()),
            atr,
            info,
            present: true,
            vcc: false,
            rst: false,
            clock: None,
            now: Duration::ZERO,
            phase: Phase::Unpowered,
            fi_di: FiDi::DEFAULT,
            engine,
            atr_timer: LineTimer::Off,
            engine_timer: LineTimer::Off,
            rate_timer: LineTimer::Off,
            next_fi_di: FiDi::DEFAULT,
            tx_free_at: Duration::ZERO,
            last_rx_end: None,
            response: None,
            release_at: None,
            wtx_at: None,
            memory_error: None,
            config,
        })
    }

    /// Feeds one event at modelled time `now` and returns the transmissions the card started
    /// (timers that expired before `now` fire first, at their own times).
    pub fn handle(&mut self, now: Duration, event: ContactEvent<'_>) -> Vec<Transmission> {
        let now = now.max(self.now);
        let mut out = Vec::new();
        self.advance(now, false, &mut out);
        self.now = now;
        match event {
            ContactEvent::Vcc(on) => {
                let was = self.is_powered();
                self.vcc = on;
                self.power_changed(was, now);
            }
            ContactEvent::Rst(high) => self.set_rst(high, now),
            ContactEvent::Clock(clock) => self.set_clock(clock, now),
            ContactEvent::Received(bytes) => self.receive(bytes, now, &mut out),
            ContactEvent::ParityError => self.parity_error(now, &mut out),
            ContactEvent::Pulled => {
                let was = self.is_powered();
                self.present = false;
                self.power_changed(was, now);
            }
            ContactEvent::Inserted => {
                let was = self.is_powered();
                self.present = true;
                self.power_changed(was, now);
            }
        }
        self.advance(now, true, &mut out);
        out
    }

    /// Lets modelled time run to `now`: fires every timer due by then and returns the
    /// transmissions the card started.
    pub fn poll(&mut self, now: Duration) -> Vec<Transmission> {
        let now = now.max(self.now);
        let mut out = Vec::new();
        self.advance(now, true, &mut out);
        self.now = now;
        out
    }

    /// When the card next wants [`Contacts::poll`]: the earliest armed timer, or `None`.
    pub fn next_poll(&self) -> Option<Duration> {
        self.next_due().map(|(at, _)| at)
    }

    /// F and D the card sends and receives at now (Fd, Dd = `11` until a PPS switched them).
    pub fn fi_di(&self) -> FiDi {
        self.fi_di
    }

    /// The elementary time unit of [`Contacts::fi_di`].
    pub fn etu(&self) -> Etu {
        self.fi_di.etu().unwrap_or(Etu::DEFAULT)
    }

    /// One character on the line ([`CHARACTER_ETU`] etu) at the present rate and clock, or
    /// `None` while the clock is stopped.
    pub fn character_time(&self) -> Option<Duration> {
        self.clock
            .map(|hz| duration(self.etu().times(CHARACTER_ETU), hz))
    }

    /// The block waiting time at the present rate and clock (§11.4.3), or `None` while the
    /// clock is stopped.
    pub fn bwt(&self) -> Option<Duration> {
        self.timing().map(|t| duration(t.bwt(), t.clock_hz()))
    }

    /// The convention (TS of the ATR, §8.1).
    pub fn convention(&self) -> Convention {
        self.info.convention
    }

    /// The ATR the card sends.
    pub fn atr(&self) -> &'static [u8] {
        self.atr
    }

    /// Whether the card is in the socket.
    pub fn is_present(&self) -> bool {
        self.present
    }

    /// Whether the card has power (present and VCC on).
    pub fn is_powered(&self) -> bool {
        self.present && self.vcc
    }

    /// Where the card's side of the line stands.
    pub fn link_state(&self) -> LinkState {
        match &self.phase {
            Phase::Unpowered => LinkState::Unpowered,
            Phase::Reset => LinkState::Reset,
            Phase::AnswerToReset => LinkState::AnswerToReset,
            Phase::Negotiable(bytes) => LinkState::Negotiable {
                pps_bytes: bytes.len(),
            },
            Phase::T1 => LinkState::T1,
            Phase::Mute => LinkState::Mute,
        }
    }

    /// IFSC in use (the largest information field the card accepts).
    pub fn ifsc(&self) -> u8 {
        self.engine.ifsc()
    }

    /// IFSD in use (the largest information field the card sends).
    pub fn ifsd(&self) -> u8 {
        self.engine.ifsd()
    }

    /// Whether a command is being processed (its answer not yet released).
    pub fn is_busy(&self) -> bool {
        self.release_at.is_some()
    }

    /// The applet while the card is powered (for status tools and tests).
    pub fn applet(&self) -> Option<&Applet<S>> {
        match &self.chip {
            Chip::On(applet) => Some(applet),
            Chip::Off(_) | Chip::Broken => None,
        }
    }

    /// The last failure of the card memory (a write during a command, or a load at power-up),
    /// after which the card went silent.
    pub fn memory_error(&self) -> Option<&str> {
        self.memory_error.as_deref()
    }

    /// The configuration.
    pub fn config(&self) -> &ContactsConfig {
        &self.config
    }

    /// The card memory back (`None` if it failed to load at the last power-up).
    pub fn into_storage(self) -> Option<S> {
        match self.chip {
            Chip::Off(storage) => Some(storage),
            Chip::On(applet) => Some(applet.into_storage()),
            Chip::Broken => None,
        }
    }

    // ---- time -------------------------------------------------------------------------------

    fn next_due(&self) -> Option<(Duration, Due)> {
        let line = [
            (self.atr_timer.at(), Due::Atr),
            (self.engine_timer.at(), Due::Engine),
            (self.rate_timer.at(), Due::RateSwitch),
        ];
        // The card's processor needs no clock, but it cannot send without one: its own timers
        // wait for CLK.
        let running = self.clock.is_some();
        let internal = [
            (self.release_at.filter(|_| running), Due::Release),
            (self.wtx_at.filter(|_| running), Due::Wtx),
        ];
        line.into_iter()
            .chain(internal)
            .filter_map(|(at, due)| at.map(|at| (at, due)))
            .min_by_key(|(at, _)| *at)
    }

    /// Fires the timers due before `now` (or at `now` too if `inclusive`), in time order.
    fn advance(&mut self, now: Duration, inclusive: bool, out: &mut Vec<Transmission>) {
        for _ in 0..MAX_FIRED_PER_CALL {
            let Some((at, due)) = self.next_due() else {
                return;
            };
            if at > now || (at == now && !inclusive) {
                return;
            }
            let at = at.max(self.now);
            self.now = at;
            self.fire(due, at, out);
        }
    }

    fn fire(&mut self, due: Due, at: Duration, out: &mut Vec<Transmission>) {
        match due {
            Due::Atr => {
                self.atr_timer = LineTimer::Off;
                if self.phase == Phase::AnswerToReset {
                    let atr = self.atr.to_vec();
                    self.send(atr, at, out);
                    self.phase = Phase::Negotiable(Vec::new());
                }
            }
            Due::Engine => {
                self.engine_timer = LineTimer::Off;
                if self.phase == Phase::T1 {
                    let step = Step::of(self.engine.handle(Event::DeadlinePassed));
                    self.apply(step, at, out);
                }
            }
            Due::RateSwitch => {
                self.rate_timer = LineTimer::Off;
                self.fi_di = self.next_fi_di;
            }
            Due::Release => self.release(at, out),
            Due::Wtx => {
                self.wtx_at = None;
                if self.engine.is_processing() && self.release_at.is_some() {
                    if let Ok(action) = self.engine.request_wtx(self.config.wtx.multiplier) {
                        let step = Step::of(action);
                        self.apply(step, at, out);
                    }
                }
            }
        }
    }

    /// Line timing at the present rate and clock, with the ATR's parameters.
    fn timing(&self) -> Option<Timing> {
        let clock = self.clock?;
        LineParams {
            clock_hz: clock.get(),
            fi_di: self.fi_di,
            wt_fi: self.info.ta1.fi(),
            n: self.info.n,
            wi: self.info.wi,
            bwi: self.info.t1.bwi,
            cwi: self.info.t1.cwi,
        }
        .timing()
        .ok()
    }

    /// Starts sending `bytes` at `at` at the earliest (after the card's previous transmission,
    /// and BGT after the last character received, §11.2), at the present rate.
    fn send(&mut self, bytes: Vec<u8>, at: Duration, out: &mut Vec<Transmission>) -> Duration {
        let Some(clock_hz) = self.clock else {
            return at;
        };
        let etu = self.etu();
        let guard = self.last_rx_end.map_or(Duration::ZERO, |rx| {
            rx.saturating_add(duration(rate::bgt(etu), clock_hz))
        });
        let start = at.max(self.tx_free_at).max(guard);
        let transmission = Transmission {
            start,
            bytes,
            fi_di: self.fi_di,
            etu,
            clock_hz,
        };
        let end = transmission.end();
        self.tx_free_at = end;
        out.push(transmission);
        end
    }

    // ---- contacts ---------------------------------------------------------------------------

    fn power_changed(&mut self, was_powered: bool, now: Duration) {
        match (was_powered, self.is_powered()) {
            (false, true) => self.power_up(now),
            (true, false) => self.power_down(now),
            _ => {}
        }
    }

    /// VCC reached the card: the applet is loaded from the card memory (RAM starts empty).
    fn power_up(&mut self, now: Duration) {
        self.clear_line(now);
        let chip = std::mem::replace(&mut self.chip, Chip::Broken);
        self.chip = match chip {
            Chip::Off(storage) => {
                let mut rng_seed = self.rng_seed;
                for (byte, n) in rng_seed.iter_mut().zip(self.power_ups.to_le_bytes()) {
                    *byte ^= n;
                }
                self.power_ups = self.power_ups.saturating_add(1);
                match Applet::power_up(storage, self.applet_config.clone(), self.seed, rng_seed) {
                    Ok(applet) => Chip::On(Box::new(applet)),
                    Err(error) => {
                        self.memory_error = Some(error.to_string());
                        Chip::Broken
                    }
                }
            }
            other => other,
        };
        self.phase = match self.chip {
            Chip::On(_) => Phase::Reset,
            Chip::Off(_) | Chip::Broken => Phase::Mute,
        };
    }

    /// The card lost power: RAM (the session) is gone, the memory stays.
    fn power_down(&mut self, now: Duration) {
        self.clear_line(now);
        let chip = std::mem::replace(&mut self.chip, Chip::Broken);
        self.chip = match chip {
            Chip::On(applet) => Chip::Off(applet.into_storage()),
            other => other,
        };
        self.phase = Phase::Unpowered;
    }

    /// Forgets everything about the line and the command in progress (a reset or power loss at
    /// `now`; whatever the card was sending is cut there).
    fn clear_line(&mut self, now: Duration) {
        self.engine.reset();
        self.tx_free_at = self.tx_free_at.min(now);
        self.fi_di = FiDi::DEFAULT;
        self.next_fi_di = FiDi::DEFAULT;
        self.atr_timer = LineTimer::Off;
        self.engine_timer = LineTimer::Off;
        self.rate_timer = LineTimer::Off;
        self.last_rx_end = None;
        self.response = None;
        self.release_at = None;
        self.wtx_at = None;
    }

    fn set_rst(&mut self, high: bool, now: Duration) {
        let rising = high && !self.rst;
        let falling = !high && self.rst;
        self.rst = high;
        if !self.is_powered() {
            return;
        }
        if falling {
            // Warm reset (§6.2.3): the card abandons everything and waits for RST to rise.
            self.clear_line(now);
            self.phase = match &mut self.chip {
                Chip::On(applet) => {
                    applet.reset();
                    Phase::Reset
                }
                Chip::Off(_) | Chip::Broken => Phase::Mute,
            };
        } else if rising && self.phase == Phase::Reset {
            // §6.2.2, §6.2.3: the ATR starts 400 to 40 000 clock cycles after RST rises.
            let delay = Cycles::whole(u64::from(self.config.atr_delay_cycles));
            self.atr_timer = LineTimer::arm(now, delay, self.clock);
            self.phase = Phase::AnswerToReset;
        }
    }

    fn set_clock(&mut self, clock: Option<NonZeroU32>, now: Duration) {
        let old = self.clock;
        self.clock = clock;
        for timer in [
            &mut self.atr_timer,
            &mut self.engine_timer,
            &mut self.rate_timer,
        ] {
            *timer = timer.rescale(now, old, clock);
        }
        if old.is_none() && clock.is_some() {
            // Answers that became ready while the clock was stopped go out now.
            for due in [&mut self.release_at, &mut self.wtx_at] {
                *due = due.map(|at| at.max(now));
            }
        }
    }

    // ---- characters -------------------------------------------------------------------------

    /// Whether the card can take characters now: powered, clocked, and not sending (a
    /// character that ended before the card's own transmission did collided with it).
    fn listening(&self, now: Duration) -> bool {
        self.is_powered() && self.clock.is_some() && now >= self.tx_free_at
    }

    fn receive(&mut self, bytes: &[u8], now: Duration, out: &mut Vec<Transmission>) {
        if bytes.is_empty() || !self.listening(now) {
            return;
        }
        match &mut self.phase {
            Phase::Negotiable(pps) => {
                if pps.is_empty() && bytes.first() != Some(&pps::PPSS) {
                    // §6.3.1: no PPS; T=1 at Fd, Dd from the first block.
                    self.phase = Phase::T1;
                    self.receive_t1(bytes, now, out);
                } else {
                    pps.extend_from_slice(bytes);
                    self.on_pps_bytes(now, out);
                }
            }
            Phase::T1 => self.receive_t1(bytes, now, out),
            Phase::Unpowered | Phase::Reset | Phase::AnswerToReset | Phase::Mute => {}
        }
    }

    fn receive_t1(&mut self, bytes: &[u8], now: Duration, out: &mut Vec<Transmission>) {
        self.last_rx_end = Some(now);
        let step = Step::of(self.engine.handle(Event::Received(bytes)));
        self.apply(step, now, out);
    }

    fn parity_error(&mut self, now: Duration, out: &mut Vec<Transmission>) {
        if !self.listening(now) {
            return;
        }
        match self.phase {
            // GUESS: a PPS request with a bad character is erroneous (§9.3): no answer.
            Phase::Negotiable(_) => self.phase = Phase::Mute,
            Phase::T1 => {
                self.last_rx_end = Some(now);
                let step = Step::of(self.engine.handle(Event::ParityError));
                self.apply(step, now, out);
            }
            Phase::Unpowered | Phase::Reset | Phase::AnswerToReset | Phase::Mute => {}
        }
    }

    /// A PPS request is being received (§9.2); answer it once complete (§9.3).
    fn on_pps_bytes(&mut self, now: Duration, out: &mut Vec<Transmission>) {
        let Phase::Negotiable(request) = &self.phase else {
            return;
        };
        self.last_rx_end = Some(now);
        let len = match pps::progress(request) {
            Ok(pps::Progress::NeedMore { .. }) => return,
            Ok(pps::Progress::Complete { len }) => len,
            Err(_) => {
                // Not a PPS request (§9.2): erroneous, no answer; the reader deactivates.
                self.phase = Phase::Mute;
                return;
            }
        };
        let accept = self.pps_acceptor();
        let answer = pps::answer(
            request.get(..len).unwrap_or_default(),
            self.info.protocols,
            accept,
        );
        // Characters after the request (sent before the answer) are ignored.
        match answer {
            CardAnswer::Respond {
                response,
                agreement,
            } => {
                let mut bytes = [0u8; 6];
                let written = response.emit(&mut bytes).unwrap_or(0);
                let bytes = bytes.get(..written).unwrap_or_default().to_vec();
                // The response follows after BGT, like a T=1 answer (GUESS: §9 sets no delay).
                let end = self.send(bytes, now, out);
                self.next_fi_di = agreement.fi_di;
                self.rate_timer = LineTimer::At(end);
                self.phase = Phase::T1;
            }
            CardAnswer::Silent(_) => self.phase = Phase::Mute,
        }
    }

    /// The PPS1 acceptance test of the [`PpsPolicy`].
    fn pps_acceptor(&self) -> impl FnOnce(FiDi) -> bool {
        let policy = self.config.pps;
        let ta1 = self.info.ta1;
        let clock = self.clock.map_or(0, NonZeroU32::get);
        move |pps1: FiDi| match policy {
            PpsPolicy::DefaultRateOnly => false,
            PpsPolicy::AtrRateOnly => pps1 == ta1,
            PpsPolicy::UpToAtrRate => {
                let (Ok(etu), Ok(fmax), Ok(atr)) = (pps1.etu(), pps1.fi().fmax_hz(), ta1.etu())
                else {
                    return false;
                };
                // D/F ≤ D1/F1, in integers.
                let slower = u32::from(etu.d()) * u32::from(atr.f())
                    <= u32::from(atr.d()) * u32::from(etu.f());
                slower && clock <= fmax
            }
        }
    }

    // ---- T=1 --------------------------------------------------------------------------------

    /// Carries out an engine action taken at `at`: transmit, arm the deadline, handle the
    /// completion.
    fn apply(&mut self, step: Step, at: Duration, out: &mut Vec<Transmission>) {
        let base = match step.transmit {
            Some(bytes) => self.send(bytes, at, out),
            None => at,
        };
        self.engine_timer = match (step.deadline, self.timing()) {
            (Some(deadline), Some(timing)) => {
                let cycles = match deadline {
                    Deadline::Bwt { multiplier } => {
                        timing.bwt().saturating_mul(u64::from(multiplier.max(1)))
                    }
                    Deadline::Cwt => timing.cwt(),
                    Deadline::Bgt => timing.bgt(),
                };
                LineTimer::arm(base, cycles, self.clock)
            }
            _ => LineTimer::Off,
        };
        if let Some(event) = step.completion {
            self.on_card_event(event, at);
        }
    }

    fn on_card_event(&mut self, event: CardEvent, at: Duration) {
        match event {
            CardEvent::Command { len } => self.on_command(len, false, at),
            CardEvent::CommandTooLong { len } => self.on_command(len, true, at),
            CardEvent::WtxAcknowledged(multiplier) => {
                if self.engine.is_processing() {
                    self.schedule_wtx(multiplier);
                }
            }
            CardEvent::Resynchronised => {
                // The command in progress is abandoned (Rule 6): its answer is never sent.
                self.response = None;
                self.release_at = None;
                self.wtx_at = None;
            }
            CardEvent::Aborted | CardEvent::IfsdChanged(_) | CardEvent::IfscSet(_) => {}
        }
    }

    /// A complete command APDU: run it now, release the answer after its busy time.
    fn on_command(&mut self, len: usize, too_long: bool, at: Duration) {
        let Chip::On(applet) = &mut self.chip else {
            self.phase = Phase::Mute;
            return;
        };
        let command = self.engine.buffer().get(..len).unwrap_or_default();
        let ins = command.get(1).copied().unwrap_or(0);
        let (response, operation) = if too_long {
            // ISO 7816-4 §5.6: wrong length.
            (vec![0x67, 0x00], Operation::Other { ins })
        } else {
            let objects = applet.state().keys.len() + applet.state().files.len();
            match applet.process(command) {
                Ok(response) => {
                    let operation =
                        Operation::classify(command, &response, applet.state(), objects);
                    (response, operation)
                }
                Err(error) => {
                    // The power failed during a write: the card says nothing (Applet::process).
                    self.memory_error = Some(error.to_string());
                    self.phase = Phase::Mute;
                    return;
                }
            }
        };
        let busy = self.config.busy.time(ins, operation);
        self.response = Some(response);
        self.release_at = Some(at.saturating_add(busy));
        self.schedule_wtx(1);
    }

    /// Plans the next S(WTX request): the reader's window started at the leading edge of its
    /// last character and lasts BWT × `multiplier` (§11.6.2.2 Rule 3).
    fn schedule_wtx(&mut self, multiplier: u8) {
        self.wtx_at = None;
        let (Some(release), Some(bwt), Some(char_time), Some(rx_end)) = (
            self.release_at,
            self.bwt(),
            self.character_time(),
            self.last_rx_end,
        ) else {
            return;
        };
        let window_start = rx_end.saturating_sub(char_time);
        let window = bwt.saturating_mul(u32::from(multiplier.max(1)));
        let into = window
            .saturating_mul(u32::from(self.config.wtx.at_percent))
            .checked_div(100)
            .unwrap_or(Duration::ZERO);
        let decide = window_start.saturating_add(into);
        if release > decide {
            self.wtx_at = Some(decide);
        }
    }

    /// The answer is ready: hand it to the engine (sent now, or after the reader's answer to
    /// an outstanding S(WTX request)).
    fn release(&mut self, at: Duration, out: &mut Vec<Transmission>) {
        self.release_at = None;
        self.wtx_at = None;
        let Some(response) = self.response.take() else {
            return;
        };
        let buffer = self.engine.buffer_mut();
        let len = match buffer.get_mut(..response.len()) {
            Some(slot) => {
                slot.copy_from_slice(&response);
                response.len()
            }
            None => {
                // Longer than the APDU buffer: "no precise diagnosis" (ISO 7816-4 §5.6).
                match buffer.get_mut(..2) {
                    Some(slot) => {
                        slot.copy_from_slice(&[0x6F, 0x00]);
                        2
                    }
                    None => 0,
                }
            }
        };
        if let Ok(action) = self.engine.respond(len) {
            let step = Step::of(action);
            self.apply(step, at, out);
        }
    }
}

/// Reads what the card needs from its ATR (§8.2, §8.3, §11.4).
fn atr_info(profile: AtrProfile) -> Result<AtrInfo, ContactsError> {
    let repr = AtrRepr::parse_bytes(profile.atr()).map_err(ContactsError::Atr)?;
    let t1 = repr.t1_params().map_err(ContactsError::Atr)?;
    let wi = repr.wi().map_err(ContactsError::Atr)?;
    if repr.fi_di().etu().is_err() || t1.bwi > 9 {
        return Err(ContactsError::Config("the ATR's TA1 or BWI is reserved"));
    }
    Ok(AtrInfo {
        convention: repr.convention(),
        ta1: repr.fi_di(),
        protocols: repr.protocols(),
        t1,
        n: repr.extra_guard_time(),
        wi,
    })
}
