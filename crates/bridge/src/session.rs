//! The card session: ISO/IEC 7816-3 on the card contacts. Activation, the ATR read byte by
//! byte, PPS, S(IFS) for IFSD, and the exchanges the rest of the bridge asks for:
//!
//! - an APDU through T=1 ([`tessera_iso7816_3::t1::Reader`]) or T=0
//!   ([`tessera_iso7816_3::t0::Reader`]); the engine of the active card owns the lent buffer;
//! - a T=1 block relayed as it is (TPDU level: the host runs T=1), or a T=0 TPDU;
//! - a presence probe (S(IFS request) with the IFSD in use, which changes nothing on the card).
//!
//! All waiting times come from [`tessera_iso7816_3::rate`] at the configured card clock. The
//! session owns the lent buffer: commands are written into [`Session::buffer_mut`] and responses
//! are read from [`Session::buffer`].
//!
//! What it does not know: CCID, USB, the boot policy, the SmartCard-HSM.

use core::fmt;

use tessera_iso7816_3::atr::{self, AtrRepr, Mode, Protocol};
use tessera_iso7816_3::pps::{self, PpsRepr};
use tessera_iso7816_3::rate::{Cycles, Fi, FiDi, LineParams, Timing};
use tessera_iso7816_3::t0;
use tessera_iso7816_3::t1::{
    self, BlockRepr, Deadline as T1Deadline, Edc, Reader, ReaderEvent, SBlock, TransactionError,
};

use crate::config::CardConfig;
use crate::hal::{CardContacts, LineRate};
use crate::time::{Duration, Instant};

/// Why an activation did not give a usable card.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum ActivationError {
    /// No ATR character within 40 000 clock cycles of RST high (ISO/IEC 7816-3 §6.2.2), or the
    /// card went silent in the middle of the activation: most likely no card.
    Mute,
    /// The first character is no valid TS (ISO/IEC 7816-3 §8.1; an inverse-convention card
    /// is not supported by the bridge).
    BadTs,
    /// The ATR is malformed (structure, TCK, a parity error, a reserved parameter).
    BadAtr,
    /// The card offers neither T=0 nor T=1.
    UnsupportedProtocol,
    /// The card contacts reported a hardware error.
    Hardware,
}

impl fmt::Display for ActivationError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            ActivationError::Mute => "no answer to reset",
            ActivationError::BadTs => "answer to reset without a valid TS",
            ActivationError::BadAtr => "malformed answer to reset",
            ActivationError::UnsupportedProtocol => "card offers neither T=0 nor T=1",
            ActivationError::Hardware => "card contacts hardware error",
        })
    }
}

/// Why an exchange with the card failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum XfrError {
    /// Not a single character within the waiting time (BWT × multiplier for T=1, WT for T=0):
    /// the card is mute or gone.
    Mute,
    /// A character arrived with a parity error (after the hardware's retries).
    Parity,
    /// The response does not fit the lent buffer.
    Overrun,
    /// The command cannot be carried (not a short APDU for T=0, longer than the buffer).
    BadCommand,
    /// The transmission protocol broke down (T=1 error recovery gave up, a T=0 procedure byte
    /// out of place).
    Protocol,
    /// The card contacts reported a hardware error, or no card is active.
    Hardware,
}

impl fmt::Display for XfrError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            XfrError::Mute => "card mute",
            XfrError::Parity => "parity error",
            XfrError::Overrun => "response too long for the buffer",
            XfrError::BadCommand => "command cannot be carried to this card",
            XfrError::Protocol => "transmission protocol error",
            XfrError::Hardware => "hardware error or card not active",
        })
    }
}

/// What a session call reports.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Outcome {
    /// Activation complete: the ATR is in [`Session::atr`], the card is ready.
    Ready,
    /// Activation failed; the card is deactivated.
    ActivationFailed(ActivationError),
    /// The exchange completed: the response (or the card's block) is `buffer()[..len]`.
    Response { len: usize },
    /// The exchange failed.
    Failed(XfrError),
    /// Informational: the card asked for more time with S(WTX request) × `multiplier`.
    Waiting { multiplier: u8 },
    /// The presence probe ended: the card answered (`true`) or stayed mute twice (`false`).
    Probe(bool),
}

/// The transmission protocol in use.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum CardProtocol {
    /// T=0, ISO/IEC 7816-3 §10.
    T0,
    /// T=1, ISO/IEC 7816-3 §11.
    T1,
}

/// What the session learnt from the ATR and the PPS.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) struct CardParams {
    pub protocol: CardProtocol,
    /// F and D in use.
    pub fi_di: FiDi,
    /// N (TC1).
    pub n: u8,
    /// WI (TC2), T=0.
    pub wi: u8,
    /// BWI, CWI, IFSC, EDC, T=1.
    pub bwi: u8,
    pub cwi: u8,
    pub ifsc: u8,
    pub edc: Edc,
    /// Clock stop indicator XI (T=15 TA).
    pub clock_stop: atr::ClockStop,
    pub timing: Timing,
}

/// The longest T=1 block: prologue, 254 information bytes, CRC.
const MAX_BLOCK: usize = t1::MAX_BLOCK_LEN;
/// Clock cycles to wait after restarting a stopped clock before using I/O (ISO/IEC 7816-3
/// §6.3.2: at least 700).
const CLOCK_RESUME_CYCLES: u64 = 700;
/// How many S(IFS) probes go unanswered before the card counts as gone.
const PROBE_ATTEMPTS: u8 = 2;

/// Where the bytes of a deferred transmission are.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum TxSource {
    /// `buffer[off..off + len]`.
    Buffer { off: usize, len: usize },
    /// The session's small transmit array (PPS request, probe block).
    Small { len: usize },
    /// The pending bytes of the protocol engine (a T=1 block; a T=0 header or command data).
    Engine,
}

/// What to wait for once the transmission is on the line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct AfterTx {
    /// How long to wait for the card's first character.
    wait: Duration,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    /// No power.
    Off,
    /// Deactivated for a cold restart; power comes back at the deadline.
    Cooling,
    /// VCC and CLK on, RST low until the deadline.
    ResetLow,
    /// RST high; `len` ATR characters received (in `atr`).
    Atr { len: usize },
    /// PPS request sent; `len` response characters received (in `pps_rx`).
    Pps { request: PpsRepr, len: usize },
    /// S(IFS request) with the IFSD through the T=1 reader.
    Ifsd,
    /// Activated, idle.
    Ready,
    /// An APDU through the T=1 reader.
    T1Apdu { heard: bool },
    /// A T=1 block relayed; `len` characters of the card's block received.
    Relay {
        len: usize,
        parity: bool,
        /// The BWT multiplier of this wait.
        multiplier: u8,
    },
    /// A T=0 exchange (APDU or TPDU) through the T=0 engine.
    T0,
    /// The presence probe; `len` characters received.
    Probe { attempt: u8, len: usize },
}

// The readers live inline: no heap to box them into, and the bridge holds exactly one.
#[allow(clippy::large_enum_variant)]
enum Engine<'a> {
    /// The buffer, with no engine around it (no card).
    Bare(&'a mut [u8]),
    /// The T=1 reader owns the buffer.
    T1(Reader<&'a mut [u8]>),
    /// The T=0 reader owns the buffer.
    T0(t0::Reader<&'a mut [u8]>),
}

impl<'a> Engine<'a> {
    fn buf(&self) -> &[u8] {
        match self {
            Engine::Bare(b) => b,
            Engine::T1(r) => r.buffer(),
            Engine::T0(r) => r.buffer(),
        }
    }

    fn buf_mut(&mut self) -> &mut [u8] {
        match self {
            Engine::Bare(b) => b,
            Engine::T1(r) => r.buffer_mut(),
            Engine::T0(r) => r.buffer_mut(),
        }
    }

    fn take(&mut self) -> &'a mut [u8] {
        match core::mem::replace(self, Engine::Bare(&mut [])) {
            Engine::Bare(b) => b,
            Engine::T1(r) => r.into_buffer(),
            Engine::T0(r) => r.into_buffer(),
        }
    }

    /// The bytes the engine asked to send last.
    fn pending_transmit(&self) -> &[u8] {
        match self {
            Engine::Bare(_) => &[],
            Engine::T1(r) => r.pending_transmit().unwrap_or_default(),
            Engine::T0(r) => r.pending_transmit().unwrap_or_default(),
        }
    }
}

/// The card session. See the [module documentation](self).
pub(crate) struct Session<'a> {
    cfg: CardConfig,
    engine: Engine<'a>,
    phase: Phase,
    params: Option<CardParams>,
    atr: [u8; atr::MAX_LEN],
    atr_len: usize,
    pps_rx: [u8; pps::MAX_LEN],
    /// The Fi of TA1, for WT (§10.2).
    wt_fi: Fi,
    /// The kind of deadline the T=1 reader armed last.
    t1_armed: Option<T1Armed>,
    /// PPS failed with this card: the next activation does without.
    skip_pps: bool,
    /// The session's deadline.
    deadline: Option<Instant>,
    /// A transmission waiting for the guard time.
    deferred: Option<TxSource>,
    /// Waiting for the driver's `Transmitted`, then this wait.
    after_tx: Option<AfterTx>,
    /// Transmission in progress (between `transmit` and `Transmitted`).
    transmitting: bool,
    /// No transmission before this instant (the turnaround after the card's last character,
    /// or the clock restart).
    guard_until: Instant,
    /// Small transmissions: PPS request, probe S-block.
    tx_small: [u8; 8],
    clock_stopped: bool,
}

impl fmt::Debug for Session<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Session")
            .field("phase", &self.phase)
            .field("params", &self.params)
            .field("deadline", &self.deadline)
            .finish_non_exhaustive()
    }
}

impl<'a> Session<'a> {
    pub fn new(cfg: CardConfig, buffer: &'a mut [u8]) -> Self {
        Session {
            cfg,
            engine: Engine::Bare(buffer),
            phase: Phase::Off,
            params: None,
            atr: [0; atr::MAX_LEN],
            atr_len: 0,
            pps_rx: [0; pps::MAX_LEN],
            wt_fi: FiDi::DEFAULT.fi(),
            t1_armed: None,
            skip_pps: false,
            deadline: None,
            deferred: None,
            after_tx: None,
            transmitting: false,
            guard_until: Instant::ZERO,
            tx_small: [0; 8],
            clock_stopped: false,
        }
    }

    // ---- State ----

    /// The session's own deadline, for the driver's timer.
    pub fn deadline(&self) -> Option<Instant> {
        self.deadline
    }

    /// The ATR of the active card.
    pub fn atr(&self) -> &[u8] {
        self.atr.get(..self.atr_len).unwrap_or_default()
    }

    /// The parameters of the active card.
    pub fn params(&self) -> Option<&CardParams> {
        match self.phase {
            Phase::Off | Phase::Cooling | Phase::ResetLow | Phase::Atr { .. } => None,
            _ => self.params.as_ref(),
        }
    }

    /// Powered, activated and idle.
    pub fn is_ready(&self) -> bool {
        matches!(self.phase, Phase::Ready)
    }

    /// The clock is stopped (CCID `IccClock`).
    pub fn clock_stopped(&self) -> bool {
        self.clock_stopped
    }

    /// The bit rate in use, bps.
    pub fn baud(&self) -> u32 {
        match self.params() {
            Some(p) => p.timing.baud(),
            None => LineRate::INITIAL.baud(self.cfg.clock_hz),
        }
    }

    /// The lent buffer (responses).
    pub fn buffer(&self) -> &[u8] {
        self.engine.buf()
    }

    /// The lent buffer, to write a command into. Only while no exchange runs.
    pub fn buffer_mut(&mut self) -> &mut [u8] {
        self.engine.buf_mut()
    }

    /// Forget that PPS failed with the card in the slot (a new card may be inserted).
    pub fn forget_card(&mut self) {
        self.skip_pps = false;
    }

    /// `cycles` of the card clock as whole microseconds, rounded up: the value of
    /// [`Cycles::micros_ceil`] (ceil(ceil(1000 x) / 1000) = ceil(x)) in 64-bit arithmetic,
    /// which a Cortex-M3 does far more cheaply than its 128-bit one. It saturates to the end of
    /// time above 1.8 × 10^13 cycles (58 days at 3.6 MHz), which no waiting time reaches.
    fn span(&self, cycles: Cycles) -> Duration {
        let den = cycles
            .denom()
            .saturating_mul(u64::from(self.cfg.clock_hz.max(1)));
        let micros = match cycles.numer().checked_mul(1_000_000) {
            Some(num) => num.div_ceil(den),
            None => u64::MAX,
        };
        Duration::from_micros(micros)
    }

    fn initial_timing(&self) -> Option<Timing> {
        LineParams::new(self.cfg.clock_hz).timing().ok()
    }

    /// WT at the initial rate (9600 etu, ISO/IEC 7816-3 §8.2 and §9.1): the longest gap between
    /// ATR characters and the wait for a PPS response.
    fn initial_wait(&self) -> Duration {
        match self.initial_timing() {
            Some(t) => self.span(t.wt()),
            None => Duration::from_secs(1),
        }
    }

    // ---- Activation and deactivation ----

    /// Activate the card (ISO/IEC 7816-3 §6.2): a cold reset. If it is powered, deactivate it
    /// first and wait the off time.
    pub fn activate<H: CardContacts>(&mut self, now: Instant, hw: &mut H) {
        if !matches!(self.phase, Phase::Off) {
            self.deactivate(hw);
            self.phase = Phase::Cooling;
            self.deadline = Some(now + self.cfg.off_time);
            return;
        }
        self.power_up(now, hw);
    }

    fn power_up<H: CardContacts>(&mut self, now: Instant, hw: &mut H) {
        self.reset_line_state();
        hw.set_vcc(true);
        hw.set_rate(LineRate::INITIAL);
        hw.set_clock(true);
        hw.set_rst(false);
        self.phase = Phase::ResetLow;
        let low = Cycles::whole(u64::from(self.cfg.reset_low_cycles.max(400)));
        self.deadline = Some(now + self.span(low));
    }

    /// Deactivate (ISO/IEC 7816-3 §6.4): RST low, CLK stopped, VCC off.
    pub fn deactivate<H: CardContacts>(&mut self, hw: &mut H) {
        hw.set_rst(false);
        hw.set_clock(false);
        hw.set_vcc(false);
        self.phase = Phase::Off;
        self.params = None;
        self.reset_line_state();
        // The protocol engine goes with the card; keep the buffer.
        let buffer = self.engine.take();
        self.engine = Engine::Bare(buffer);
    }

    fn reset_line_state(&mut self) {
        self.deadline = None;
        self.deferred = None;
        self.after_tx = None;
        self.transmitting = false;
        self.clock_stopped = false;
        self.atr_len = 0;
    }

    /// Stop the clock (ISO/IEC 7816-3 §6.3.2), if the card allows it and is idle. Returns
    /// whether the clock is stopped.
    pub fn stop_clock<H: CardContacts>(&mut self, hw: &mut H) -> bool {
        // The driver stops CLK in state L (see `CardContacts::set_clock`).
        let allowed = self.params.is_some_and(|p| {
            matches!(
                p.clock_stop,
                atr::ClockStop::Low | atr::ClockStop::NoPreference
            )
        });
        if matches!(self.phase, Phase::Ready) && allowed && !self.clock_stopped {
            hw.set_clock(false);
            self.clock_stopped = true;
        }
        self.clock_stopped
    }

    /// Restart a stopped clock; the first transmission waits 700 cycles (§6.3.2).
    pub fn restart_clock<H: CardContacts>(&mut self, now: Instant, hw: &mut H) {
        if self.clock_stopped && !matches!(self.phase, Phase::Off) {
            hw.set_clock(true);
            self.clock_stopped = false;
            let resume = now + self.span(Cycles::whole(CLOCK_RESUME_CYCLES));
            self.guard_until = self.guard_until.max(resume);
        }
    }

    // ---- Exchanges ----

    /// Send the command APDU `buffer()[..len]` and collect the response APDU.
    pub fn start_apdu<H: CardContacts>(
        &mut self,
        now: Instant,
        len: usize,
        hw: &mut H,
    ) -> Result<(), XfrError> {
        let params = self.idle_params()?;
        let started = self.begin_apdu(now, len, params, hw);
        if started.is_err() {
            self.end_exchange();
        }
        started
    }

    fn begin_apdu<H: CardContacts>(
        &mut self,
        now: Instant,
        len: usize,
        params: CardParams,
        hw: &mut H,
    ) -> Result<(), XfrError> {
        self.restart_clock(now, hw);
        match params.protocol {
            CardProtocol::T1 => {
                let Engine::T1(reader) = &mut self.engine else {
                    return Err(XfrError::Hardware);
                };
                if reader.needs_reset() {
                    reader.reset();
                }
                let (transmits, deadline) = match reader.transmit(len) {
                    Ok(action) => (action.transmit.is_some(), action.deadline),
                    Err(t1::CallError::TooLong) => return Err(XfrError::BadCommand),
                    Err(_) => return Err(XfrError::Protocol),
                };
                self.phase = Phase::T1Apdu { heard: false };
                self.t1_action(now, transmits, deadline, hw)
            }
            CardProtocol::T0 => self.start_t0(now, len, hw),
        }
    }

    /// Relay the T=1 block `buffer()[..len]` (or, for a T=0 card, run the T=0 TPDU) and
    /// collect the card's answer. `bwi` is the CCID `bBWI` multiplier (0 or 1: none). Returns
    /// the BWT multiplier of the wait.
    pub fn start_block<H: CardContacts>(
        &mut self,
        now: Instant,
        len: usize,
        bwi: u8,
        hw: &mut H,
    ) -> Result<u8, XfrError> {
        let params = self.idle_params()?;
        let started = self.begin_block(now, len, bwi, params, hw);
        if started.is_err() {
            self.end_exchange();
        }
        started
    }

    fn begin_block<H: CardContacts>(
        &mut self,
        now: Instant,
        len: usize,
        bwi: u8,
        params: CardParams,
        hw: &mut H,
    ) -> Result<u8, XfrError> {
        if params.protocol == CardProtocol::T0 {
            self.restart_clock(now, hw);
            return self.start_t0(now, len, hw).map(|()| 1);
        }
        if len == 0 || len > MAX_BLOCK || len > self.buffer().len() {
            return Err(XfrError::BadCommand);
        }
        self.restart_clock(now, hw);
        // The host's S(WTX response) grants the card BWT × its INF (§11.6.2.2 Rule 3).
        let block = self.buffer().get(..len).unwrap_or_default();
        let wtx = match block {
            [nad, pcb, 1, m, ..] => match BlockRepr::classify(*nad, *pcb, &[*m]) {
                BlockRepr::S {
                    kind: SBlock::WtxResponse(m),
                    ..
                } => m,
                _ => 1,
            },
            _ => 1,
        };
        let multiplier = wtx.max(bwi).max(1);
        self.phase = Phase::Relay {
            len: 0,
            parity: false,
            multiplier,
        };
        let wait = self.bwt(multiplier);
        self.send(now, TxSource::Buffer { off: 0, len }, wait, hw)
            .map(|()| multiplier)
    }

    /// Ask the card for an S(IFS response) to see that it is still there (T=1 only).
    pub fn start_probe<H: CardContacts>(&mut self, now: Instant, hw: &mut H) -> bool {
        let Ok(params) = self.idle_params() else {
            return false;
        };
        if params.protocol != CardProtocol::T1 {
            return false;
        }
        self.restart_clock(now, hw);
        let started = self.send_probe(now, 1, hw).is_ok();
        if !started {
            self.end_exchange();
        }
        started
    }

    fn send_probe<H: CardContacts>(
        &mut self,
        now: Instant,
        attempt: u8,
        hw: &mut H,
    ) -> Result<(), XfrError> {
        let (edc, ifsd) = match (&self.params, &self.engine) {
            (Some(p), Engine::T1(r)) => (p.edc, r.ifsd()),
            _ => return Err(XfrError::Hardware),
        };
        let block = BlockRepr::S {
            nad: 0,
            kind: SBlock::IfsRequest(ifsd),
        };
        let len = block
            .emit_slice(&mut self.tx_small, edc)
            .map_err(|_| XfrError::Hardware)?;
        self.phase = Phase::Probe { attempt, len: 0 };
        let wait = self.bwt(1);
        self.send(now, TxSource::Small { len }, wait, hw)
    }

    fn idle_params(&self) -> Result<CardParams, XfrError> {
        match (self.phase, self.params) {
            (Phase::Ready, Some(p)) => Ok(p),
            _ => Err(XfrError::Hardware),
        }
    }

    fn bwt(&self, multiplier: u8) -> Duration {
        match &self.params {
            Some(p) => self.span(p.timing.bwt().saturating_mul(u64::from(multiplier.max(1)))),
            None => self.initial_wait(),
        }
    }

    fn cwt(&self) -> Duration {
        match &self.params {
            Some(p) => self.span(p.timing.cwt()),
            None => self.initial_wait(),
        }
    }

    /// The least delay from the card's last character to the reader's first: BGT (22 etu) for
    /// T=1, 16 etu for T=0 and during the ATR and PPS (ISO/IEC 7816-3 §7.2, §10.2, §11.2).
    fn turnaround(&self) -> Duration {
        match &self.params {
            Some(p) if p.protocol == CardProtocol::T1 => self.span(p.timing.bgt()),
            Some(p) => self.span(p.timing.etu().times(16)),
            None => self.span(tessera_iso7816_3::rate::Etu::DEFAULT.times(16)),
        }
    }

    // ---- Transmission ----

    /// Transmit `source` (now, or when the guard time has passed), then wait `wait` for the
    /// card.
    fn send<H: CardContacts>(
        &mut self,
        now: Instant,
        source: TxSource,
        wait: Duration,
        hw: &mut H,
    ) -> Result<(), XfrError> {
        self.after_tx = Some(AfterTx { wait });
        if now < self.guard_until {
            self.deferred = Some(source);
            self.deadline = Some(self.guard_until);
            return Ok(());
        }
        self.transmit_now(now, source, hw)
    }

    fn transmit_now<H: CardContacts>(
        &mut self,
        now: Instant,
        source: TxSource,
        hw: &mut H,
    ) -> Result<(), XfrError> {
        self.deferred = None;
        let bytes: &[u8] = match source {
            TxSource::Buffer { off, len } => self
                .engine
                .buf()
                .get(off..off.saturating_add(len))
                .unwrap_or_default(),
            TxSource::Small { len } => self.tx_small.get(..len).unwrap_or_default(),
            TxSource::Engine => self.engine.pending_transmit(),
        };
        let count = bytes.len();
        if hw.transmit(bytes).is_err() {
            self.after_tx = None;
            return Err(XfrError::Hardware);
        }
        self.transmitting = true;
        // Safety net: if the driver never reports the end of the transmission, the wait
        // still ends (twice the characters' time, then the wait itself).
        let per_char = self.char_time();
        let wait = self.after_tx.map_or(Duration::ZERO, |a| a.wait);
        self.deadline = Some(now + per_char.saturating_mul(2 * count as u64 + 2) + wait);
        Ok(())
    }

    /// The time of one character the reader sends (CGT).
    fn char_time(&self) -> Duration {
        match &self.params {
            Some(p) => {
                let cgt = match p.protocol {
                    CardProtocol::T1 => tessera_iso7816_3::rate::cgt_t1(p.n, p.timing.etu()),
                    CardProtocol::T0 => tessera_iso7816_3::rate::cgt_t0(p.n, p.timing.etu()),
                };
                self.span(cgt)
            }
            None => self.span(tessera_iso7816_3::rate::Etu::DEFAULT.times(12)),
        }
    }

    /// The driver reports that the last character has gone: start the wait.
    pub fn on_transmitted(&mut self, now: Instant) {
        if !self.transmitting {
            return;
        }
        self.transmitting = false;
        if let Some(after) = self.after_tx.take() {
            self.deadline = Some(now + after.wait);
        }
    }

    // ---- Reception ----

    /// Characters from the card.
    pub fn on_received<H: CardContacts>(
        &mut self,
        now: Instant,
        bytes: &[u8],
        hw: &mut H,
    ) -> Option<Outcome> {
        if bytes.is_empty() {
            return None;
        }
        // A character from the card means our transmission is over.
        if self.transmitting {
            self.transmitting = false;
            self.after_tx = None;
        }
        self.guard_until = now + self.turnaround();
        match self.phase {
            Phase::Off | Phase::Cooling | Phase::ResetLow | Phase::Ready => None,
            _ if self.deferred.is_some() => None,
            Phase::Atr { len } => self.on_atr_bytes(now, len, bytes, hw),
            Phase::Pps { request, len } => self.on_pps_bytes(now, request, len, bytes, hw),
            Phase::Ifsd => self.t1_event(now, t1::Event::Received(bytes), hw),
            Phase::T1Apdu { .. } => {
                self.phase = Phase::T1Apdu { heard: true };
                self.t1_event(now, t1::Event::Received(bytes), hw)
            }
            Phase::Relay {
                len,
                parity,
                multiplier,
            } => self.on_relay_bytes(now, len, parity, multiplier, bytes),
            Phase::T0 => self.on_t0_bytes(now, bytes, hw),
            Phase::Probe { attempt, len } => self.on_probe_bytes(now, attempt, len, bytes),
        }
    }

    /// A character with a parity error.
    pub fn on_parity_error<H: CardContacts>(
        &mut self,
        now: Instant,
        hw: &mut H,
    ) -> Option<Outcome> {
        self.guard_until = now + self.turnaround();
        match self.phase {
            Phase::Atr { .. } | Phase::Pps { .. } => {
                Some(self.activation_failed(now, ActivationError::BadAtr, hw))
            }
            Phase::Ifsd => self.t1_event(now, t1::Event::ParityError, hw),
            Phase::T1Apdu { .. } => {
                self.phase = Phase::T1Apdu { heard: true };
                self.t1_event(now, t1::Event::ParityError, hw)
            }
            Phase::Relay {
                len, multiplier, ..
            } => self.on_relay_bytes(now, len, true, multiplier, &[0]),
            Phase::T0 => {
                self.end_exchange();
                Some(Outcome::Failed(XfrError::Parity))
            }
            Phase::Probe { attempt, len } => self.on_probe_bytes(now, attempt, len, &[0]),
            _ => None,
        }
    }

    /// The session's deadline passed (the caller checked `deadline() <= now`).
    pub fn on_deadline<H: CardContacts>(&mut self, now: Instant, hw: &mut H) -> Option<Outcome> {
        match self.deadline {
            Some(at) if at <= now => {}
            _ => return None,
        }
        self.deadline = None;
        if let Some(source) = self.deferred {
            return match self.transmit_now(now, source, hw) {
                Ok(()) => None,
                Err(e) => Some(self.fail_exchange(now, e, hw)),
            };
        }
        self.transmitting = false;
        self.after_tx = None;
        match self.phase {
            Phase::Off | Phase::Ready => None,
            Phase::Cooling => {
                self.phase = Phase::Off;
                self.power_up(now, hw);
                None
            }
            Phase::ResetLow => {
                hw.set_rst(true);
                self.phase = Phase::Atr { len: 0 };
                let first = Cycles::whole(u64::from(self.cfg.atr_timeout_cycles.max(400)));
                self.deadline = Some(now + self.span(first));
                None
            }
            Phase::Atr { len } => {
                let error = if len == 0 {
                    ActivationError::Mute
                } else {
                    ActivationError::BadAtr
                };
                Some(self.activation_failed(now, error, hw))
            }
            Phase::Pps { .. } => self.pps_failed(now, hw),
            Phase::Ifsd => self.t1_event(now, t1::Event::DeadlinePassed, hw),
            Phase::T1Apdu { heard } => {
                // A card that sends nothing at all within BWT (× WTX) is mute: report it now
                // rather than after the whole §11.6.3.2 recovery (up to six BWTs).
                let waiting_bwt =
                    matches!(&self.engine, Engine::T1(_)) && self.t1_armed == Some(T1Armed::Bwt);
                if !heard && waiting_bwt {
                    if let Engine::T1(r) = &mut self.engine {
                        r.reset();
                    }
                    return Some(self.fail_exchange(now, XfrError::Mute, hw));
                }
                self.t1_event(now, t1::Event::DeadlinePassed, hw)
            }
            Phase::Relay { len, parity, .. } => {
                self.phase = Phase::Ready;
                if len == 0 {
                    Some(Outcome::Failed(XfrError::Mute))
                } else if parity {
                    Some(Outcome::Failed(XfrError::Parity))
                } else {
                    // CWT passed inside the block: hand over what came; the host's T=1 sees
                    // a bad block and recovers (§11.6.3).
                    Some(Outcome::Response { len })
                }
            }
            Phase::T0 => {
                self.end_exchange();
                Some(Outcome::Failed(XfrError::Mute))
            }
            Phase::Probe { attempt, len } => {
                if len > 0 {
                    self.phase = Phase::Ready;
                    return Some(Outcome::Probe(true));
                }
                if attempt >= PROBE_ATTEMPTS {
                    self.phase = Phase::Ready;
                    return Some(Outcome::Probe(false));
                }
                match self.send_probe(now, attempt + 1, hw) {
                    Ok(()) => None,
                    Err(_) => {
                        self.phase = Phase::Ready;
                        Some(Outcome::Probe(false))
                    }
                }
            }
        }
    }

    fn fail_exchange<H: CardContacts>(
        &mut self,
        now: Instant,
        error: XfrError,
        hw: &mut H,
    ) -> Outcome {
        match self.phase {
            Phase::ResetLow
            | Phase::Cooling
            | Phase::Atr { .. }
            | Phase::Pps { .. }
            | Phase::Ifsd => self.activation_failed(now, ActivationError::Hardware, hw),
            Phase::Probe { .. } => {
                self.end_exchange();
                Outcome::Probe(false)
            }
            _ => {
                self.end_exchange();
                Outcome::Failed(error)
            }
        }
    }

    /// Back to idle after an exchange that did not complete: nothing pending, the T=1
    /// reader out of its transaction (its sequence numbers restart; the card follows after
    /// its error recovery, §11.6.3.2), the T=0 reader out of its exchange.
    fn end_exchange(&mut self) {
        if !matches!(self.phase, Phase::Off) {
            self.phase = Phase::Ready;
        }
        self.deadline = None;
        self.deferred = None;
        self.after_tx = None;
        self.transmitting = false;
        match &mut self.engine {
            Engine::T1(reader) if !reader.is_idle() => reader.reset(),
            Engine::T0(reader) => reader.reset(),
            _ => {}
        }
    }

    // Out of line: measured smaller firmware (see `Bridge::on_message`).
    #[inline(never)]
    fn activation_failed<H: CardContacts>(
        &mut self,
        _now: Instant,
        error: ActivationError,
        hw: &mut H,
    ) -> Outcome {
        self.deactivate(hw);
        Outcome::ActivationFailed(error)
    }

    // ---- ATR ----

    fn on_atr_bytes<H: CardContacts>(
        &mut self,
        now: Instant,
        len: usize,
        bytes: &[u8],
        hw: &mut H,
    ) -> Option<Outcome> {
        let mut len = len;
        for &b in bytes {
            match self.atr.get_mut(len) {
                Some(slot) => {
                    *slot = b;
                    len += 1;
                }
                None => return Some(self.activation_failed(now, ActivationError::BadAtr, hw)),
            }
        }
        let received = self.atr.get(..len).unwrap_or_default();
        match atr::progress(received) {
            Err(atr::Error::InvalidTs(_)) => {
                Some(self.activation_failed(now, ActivationError::BadTs, hw))
            }
            Err(_) => Some(self.activation_failed(now, ActivationError::BadAtr, hw)),
            Ok(atr::Progress::NeedMore { .. }) => {
                self.phase = Phase::Atr { len };
                // §8.2: at most 9600 etu between the leading edges of two ATR characters.
                self.deadline = Some(now + self.initial_wait());
                None
            }
            Ok(atr::Progress::Complete { len }) => {
                self.atr_len = len;
                self.on_atr(now, hw)
            }
        }
    }

    /// The ATR is complete: choose the protocol and the rate, then PPS or go straight on.
    fn on_atr<H: CardContacts>(&mut self, now: Instant, hw: &mut H) -> Option<Outcome> {
        let Ok(repr) = AtrRepr::parse_bytes(self.atr()) else {
            return Some(self.activation_failed(now, ActivationError::BadAtr, hw));
        };
        let offered = repr.protocols();
        let protocol = if offered.contains(Protocol::T1) {
            CardProtocol::T1
        } else if offered.contains(Protocol::T0) {
            CardProtocol::T0
        } else {
            return Some(self.activation_failed(now, ActivationError::UnsupportedProtocol, hw));
        };
        let t1_params = match repr.t1_params() {
            Ok(p) => p,
            Err(_) => return Some(self.activation_failed(now, ActivationError::BadAtr, hw)),
        };
        let Ok(wi) = repr.wi() else {
            return Some(self.activation_failed(now, ActivationError::BadAtr, hw));
        };
        let ta1 = repr.global().ta;
        let (fi_di, pps) = match repr.mode() {
            // §6.3.1: in specific mode the card runs the announced protocol at once, with
            // TA1's F and D unless TA2 says they are implicit.
            Mode::Specific {
                protocol: specific,
                implicit_fi_di,
                ..
            } => {
                let wanted = match protocol {
                    CardProtocol::T0 => Protocol::T0,
                    CardProtocol::T1 => Protocol::T1,
                };
                if specific != wanted {
                    return Some(self.activation_failed(
                        now,
                        ActivationError::UnsupportedProtocol,
                        hw,
                    ));
                }
                let fi_di = if implicit_fi_di {
                    FiDi::DEFAULT
                } else {
                    repr.fi_di()
                };
                (fi_di, None)
            }
            Mode::Negotiable => {
                let proposal = ta1.and_then(|ta1| self.cfg.proposal(ta1));
                let default_protocol = match repr.default_protocol() {
                    Protocol::T1 => CardProtocol::T1,
                    _ => CardProtocol::T0,
                };
                let pps_protocol = match protocol {
                    CardProtocol::T0 => Protocol::T0,
                    CardProtocol::T1 => Protocol::T1,
                };
                if self.skip_pps || (proposal.is_none() && protocol == default_protocol) {
                    (FiDi::DEFAULT, None)
                } else {
                    let fi_di = proposal.map_or(FiDi::DEFAULT, FiDi::from_byte);
                    (FiDi::DEFAULT, Some(PpsRepr::request(pps_protocol, fi_di)))
                }
            }
        };
        let params = CardParams {
            protocol,
            fi_di,
            n: repr.extra_guard_time(),
            wi,
            bwi: t1_params.bwi,
            cwi: t1_params.cwi,
            ifsc: t1_params.ifsc,
            edc: t1_params.edc,
            clock_stop: repr.clock_stop(),
            // Replaced below; the initial timing is always valid.
            timing: match self.initial_timing() {
                Some(t) => t,
                None => return Some(self.activation_failed(now, ActivationError::Hardware, hw)),
            },
        };
        self.params = Some(params);
        let wt_fi = repr.wt_fi();
        match pps {
            Some(request) => {
                let len = request.emit(&mut self.tx_small).unwrap_or(0);
                self.phase = Phase::Pps { request, len: 0 };
                self.wt_fi = wt_fi;
                let wait = self.initial_wait();
                match self.send(now, TxSource::Small { len }, wait, hw) {
                    Ok(()) => None,
                    Err(_) => Some(self.activation_failed(now, ActivationError::Hardware, hw)),
                }
            }
            None => {
                self.wt_fi = wt_fi;
                self.enter_protocol(now, fi_di, hw)
            }
        }
    }

    fn on_pps_bytes<H: CardContacts>(
        &mut self,
        now: Instant,
        request: PpsRepr,
        len: usize,
        bytes: &[u8],
        hw: &mut H,
    ) -> Option<Outcome> {
        let mut len = len;
        for &b in bytes {
            match self.pps_rx.get_mut(len) {
                Some(slot) => {
                    *slot = b;
                    len += 1;
                }
                None => return self.pps_failed(now, hw),
            }
        }
        let received = self.pps_rx.get(..len).unwrap_or_default();
        match pps::progress(received) {
            Err(_) => self.pps_failed(now, hw),
            Ok(pps::Progress::NeedMore { .. }) => {
                self.phase = Phase::Pps { request, len };
                self.deadline = Some(now + self.initial_wait());
                None
            }
            Ok(pps::Progress::Complete { len: complete }) => {
                let response = received.get(..complete).unwrap_or_default();
                match pps::check_response_bytes(&request, response) {
                    Ok(agreement) => self.enter_protocol(now, agreement.fi_di, hw),
                    Err(_) => self.pps_failed(now, hw),
                }
            }
        }
    }

    /// §9.3: a failed PPS exchange deactivates the card. Activate again at once, without PPS.
    fn pps_failed<H: CardContacts>(&mut self, now: Instant, hw: &mut H) -> Option<Outcome> {
        self.skip_pps = true;
        self.activate(now, hw);
        None
    }

    /// The rate is settled: set the line and its timing, then S(IFS) (T=1) or ready.
    fn enter_protocol<H: CardContacts>(
        &mut self,
        now: Instant,
        fi_di: FiDi,
        hw: &mut H,
    ) -> Option<Outcome> {
        let Some(mut params) = self.params else {
            return Some(self.activation_failed(now, ActivationError::Hardware, hw));
        };
        let line = LineParams {
            clock_hz: self.cfg.clock_hz,
            fi_di,
            wt_fi: self.wt_fi,
            n: params.n,
            wi: params.wi,
            bwi: params.bwi,
            cwi: params.cwi,
        };
        let Ok(timing) = line.timing() else {
            return Some(self.activation_failed(now, ActivationError::BadAtr, hw));
        };
        params.fi_di = fi_di;
        params.timing = timing;
        self.params = Some(params);
        let etu = timing.etu();
        let cgt_etu = match (params.protocol, params.n) {
            (CardProtocol::T1, 255) => 11,
            (_, 255) => 12,
            (_, n) => 12 + u16::from(n),
        };
        hw.set_rate(LineRate {
            f: etu.f(),
            d: etu.d(),
            cgt_etu,
        });
        match params.protocol {
            CardProtocol::T0 => {
                let buffer = self.engine.take();
                self.engine = Engine::T0(t0::Reader::new(t0::Config::default(), buffer));
                Some(self.ready())
            }
            CardProtocol::T1 => {
                let buffer = self.engine.take();
                let config = t1::Config::new(params.ifsc, params.edc);
                self.engine = Engine::T1(Reader::new(config, buffer));
                if self.cfg.ifsd == 0 || self.cfg.ifsd == 0xFF {
                    return Some(self.ready());
                }
                let Engine::T1(reader) = &mut self.engine else {
                    return Some(self.ready());
                };
                let (transmits, deadline) = match reader.request_ifsd(self.cfg.ifsd) {
                    Ok(action) => (action.transmit.is_some(), action.deadline),
                    Err(_) => return Some(self.ready()),
                };
                self.phase = Phase::Ifsd;
                match self.t1_action(now, transmits, deadline, hw) {
                    Ok(()) => None,
                    Err(_) => Some(self.activation_failed(now, ActivationError::Hardware, hw)),
                }
            }
        }
    }

    fn ready(&mut self) -> Outcome {
        self.phase = Phase::Ready;
        self.deadline = None;
        Outcome::Ready
    }

    // ---- T=1 through the reader engine ----

    fn t1_event<H: CardContacts>(
        &mut self,
        now: Instant,
        event: t1::Event<'_>,
        hw: &mut H,
    ) -> Option<Outcome> {
        let Engine::T1(reader) = &mut self.engine else {
            return Some(self.fail_exchange(now, XfrError::Hardware, hw));
        };
        let action = reader.handle(event);
        let transmits = action.transmit.is_some();
        let deadline = action.deadline;
        let completion = action.completion;
        if let Err(e) = self.t1_action(now, transmits, deadline, hw) {
            return Some(self.fail_exchange(now, e, hw));
        }
        let completion = completion?;
        match (self.phase, completion) {
            (Phase::Ifsd, ReaderEvent::IfsdSet(_)) => Some(self.ready()),
            // The card refused S(IFS) and the link was resynchronised: IFSD stays 32.
            (Phase::Ifsd, ReaderEvent::Failed(TransactionError::Resynchronised)) => {
                Some(self.ready())
            }
            (Phase::Ifsd, ReaderEvent::Failed(_)) => {
                Some(self.activation_failed(now, ActivationError::Mute, hw))
            }
            (_, ReaderEvent::Response { len }) => {
                self.phase = Phase::Ready;
                self.deadline = None;
                Some(Outcome::Response { len })
            }
            (_, ReaderEvent::Failed(error)) => {
                let error = match error {
                    TransactionError::CardUnresponsive => XfrError::Mute,
                    TransactionError::ResponseTooLong { .. } => XfrError::Overrun,
                    TransactionError::Resynchronised | TransactionError::Aborted => {
                        XfrError::Protocol
                    }
                };
                if let Engine::T1(r) = &mut self.engine {
                    if r.needs_reset() {
                        r.reset();
                    }
                }
                self.phase = Phase::Ready;
                self.deadline = None;
                Some(Outcome::Failed(error))
            }
            (_, ReaderEvent::WaitingTimeExtension(m)) => {
                if let Phase::T1Apdu { .. } = self.phase {
                    // The WTX request was an answer: the next silence is judged afresh.
                    self.phase = Phase::T1Apdu { heard: false };
                }
                Some(Outcome::Waiting { multiplier: m })
            }
            _ => None,
        }
    }

    /// Carry out a T=1 reader action: transmit its block (after the guard time), arm its
    /// deadline (after the transmission if there is one).
    fn t1_action<H: CardContacts>(
        &mut self,
        now: Instant,
        transmits: bool,
        deadline: Option<T1Deadline>,
        hw: &mut H,
    ) -> Result<(), XfrError> {
        self.t1_armed = match deadline {
            Some(T1Deadline::Bwt { .. }) => Some(T1Armed::Bwt),
            Some(_) => Some(T1Armed::Other),
            None => None,
        };
        let wait = match deadline {
            Some(T1Deadline::Bwt { multiplier }) => Some(self.bwt(multiplier)),
            Some(T1Deadline::Cwt) => Some(self.cwt()),
            Some(T1Deadline::Bgt) => Some(match &self.params {
                Some(p) => self.span(p.timing.bgt()),
                None => Duration::ZERO,
            }),
            None => None,
        };
        if transmits {
            if matches!(self.phase, Phase::T1Apdu { .. }) {
                self.phase = Phase::T1Apdu { heard: false };
            }
            return self.send(now, TxSource::Engine, wait.unwrap_or(Duration::ZERO), hw);
        }
        self.deadline = wait.map(|w| now + w);
        Ok(())
    }

    // ---- T=1 relay ----

    fn on_relay_bytes(
        &mut self,
        now: Instant,
        len: usize,
        parity: bool,
        multiplier: u8,
        bytes: &[u8],
    ) -> Option<Outcome> {
        let edc = self.params.map_or(Edc::Lrc, |p| p.edc);
        let buf = self.engine.buf_mut();
        let mut len = len;
        for &b in bytes {
            if let Some(slot) = buf.get_mut(len) {
                *slot = b;
                len += 1;
            }
        }
        let complete = match buf.get(2) {
            Some(&inf_len) if len >= 3 && usize::from(inf_len) <= t1::MAX_INF_LEN => {
                len >= t1::block::block_len(inf_len, edc)
            }
            _ => false,
        };
        if complete && !parity {
            self.phase = Phase::Ready;
            self.deadline = None;
            return Some(Outcome::Response { len });
        }
        self.phase = Phase::Relay {
            len,
            parity,
            multiplier,
        };
        self.deadline = Some(now + self.cwt());
        None
    }

    // ---- Presence probe ----

    fn on_probe_bytes(
        &mut self,
        now: Instant,
        attempt: u8,
        len: usize,
        bytes: &[u8],
    ) -> Option<Outcome> {
        let edc = self.params.map_or(Edc::Lrc, |p| p.edc);
        // The answer lands in the small array after the request.
        let mut len = len;
        for &b in bytes {
            len += 1;
            if len == 3 {
                // LEN: the block is complete after LEN + EDC more characters.
                if let Some(slot) = self.tx_small.get_mut(7) {
                    *slot = b;
                }
            }
        }
        let expected = self
            .tx_small
            .get(7)
            .map_or(usize::MAX, |&l| t1::block::block_len(l, edc));
        if len >= 3 && len >= expected {
            self.phase = Phase::Ready;
            self.deadline = None;
            return Some(Outcome::Probe(true));
        }
        self.phase = Phase::Probe { attempt, len };
        self.deadline = Some(now + self.cwt());
        None
    }

    // ---- T=0 ----

    /// Start the T=0 exchange of the command `buffer()[..cmd_len]` (an APDU, or a TPDU at
    /// TPDU level: the same bytes for cases 1 to 4S, ISO/IEC 7816-3 §12.2).
    fn start_t0<H: CardContacts>(
        &mut self,
        now: Instant,
        cmd_len: usize,
        hw: &mut H,
    ) -> Result<(), XfrError> {
        let Engine::T0(reader) = &mut self.engine else {
            return Err(XfrError::Hardware);
        };
        // A refused command: not a short APDU, an INS that T=0 cannot carry, or an Ne beyond
        // the buffer (which the bridge's buffers always hold).
        match reader.transmit(cmd_len) {
            Ok(t0::Action::Send(_)) => {}
            Ok(_) => return Err(XfrError::Protocol),
            Err(_) => return Err(XfrError::BadCommand),
        }
        self.phase = Phase::T0;
        let wait = self.wt();
        self.send(now, TxSource::Engine, wait, hw)
    }

    fn wt(&self) -> Duration {
        match &self.params {
            Some(p) => self.span(p.timing.wt()),
            None => self.initial_wait(),
        }
    }

    /// Characters from a T=0 card, through the engine (ISO/IEC 7816-3 §10.3.3). A NULL byte
    /// or data re-arm WT; the engine's header or data go out after the turnaround.
    // Out of line: measured smaller firmware (see `Bridge::on_message`).
    #[inline(never)]
    fn on_t0_bytes<H: CardContacts>(
        &mut self,
        now: Instant,
        bytes: &[u8],
        hw: &mut H,
    ) -> Option<Outcome> {
        let Engine::T0(reader) = &mut self.engine else {
            return Some(self.fail_exchange(now, XfrError::Hardware, hw));
        };
        let done = match reader.receive(bytes) {
            Ok(t0::Action::Wait) => return None,
            Ok(t0::Action::ArmWt) => {
                self.deadline = Some(now + self.wt());
                return None;
            }
            Ok(t0::Action::Send(_)) => {
                let wait = self.wt();
                return match self.send(now, TxSource::Engine, wait, hw) {
                    Ok(()) => None,
                    Err(e) => Some(self.fail_exchange(now, e, hw)),
                };
            }
            Ok(t0::Action::Done(response)) => response,
            Err(t0::Error::ResponseOverflow) => {
                return Some(self.fail_exchange(now, XfrError::Overrun, hw))
            }
            Err(_) => return Some(self.fail_exchange(now, XfrError::Protocol, hw)),
        };
        self.phase = Phase::Ready;
        self.deadline = None;
        // The data are at the start of the buffer: SW1 SW2 follow them.
        let len = done.len;
        match self.engine.buf_mut().get_mut(len..len.saturating_add(2)) {
            Some(sw) => {
                sw.copy_from_slice(&[done.sw1, done.sw2]);
                Some(Outcome::Response { len: len + 2 })
            }
            None => Some(Outcome::Failed(XfrError::Overrun)),
        }
    }
}

/// Which kind of deadline the T=1 reader armed last.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum T1Armed {
    Bwt,
    Other,
}
