//! The bridge: boot policy, the CCID slot machine, and the scheduling of the card session.
//!
//! [`Bridge`] takes [`Event`]s from its driver and drives the [`Hardware`] in return. It owns
//! the card session (ISO/IEC 7816-3), reads the serial number at boot when the policy asks for
//! it, answers every CCID message (CCID Rev 1.1 §6), sends time extensions while the card works,
//! and multiplexes its deadlines onto the driver's one timer.

use core::fmt;

use tessera_ccid::{
    Body, ChainParameter, ClockCommand, ClockStatus, ClockStop as CcidClockStop, CommandStatus,
    IccStatus, Message, MessageId, MessageRepr, MessageType, Parameters, PowerSelect, ProtocolData,
    ProtocolNum, SlotError, SlotSnapshot, SlotStatus, Status, T0Parameters, T1Parameters,
};
use tessera_iso7816_3::atr::ClockStop;
use tessera_iso7816_3::t1::Edc;

use crate::config::{BootPolicy, Config, Exchange, MIN_BUFFER_LEN};
use crate::hal::{CardContacts, Hardware, UsbDevice};
use crate::serial::{Next, SerialRead, SerialString};
use crate::session::{ActivationError, CardParams, CardProtocol, Outcome, Session, XfrError};
use crate::time::Instant;

/// Something that happened, fed to [`Bridge::handle`] with the instant it happened.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum Event<'e> {
    /// Characters from the card, in order (any chunking), without the echo of the bridge's own.
    CardReceived(&'e [u8]),
    /// One character from the card with a parity error, after the hardware's retries.
    CardParityError,
    /// The last character of the last [`CardContacts::transmit`] is on the line.
    CardTransmitted,
    /// The instant last given to [`DeadlineTimer::arm`](crate::DeadlineTimer::arm) has passed.
    DeadlinePassed,
    /// The host configured the device (SET_CONFIGURATION), or resumed it from suspend: the
    /// CCID endpoints are live.
    UsbConfigured,
    /// Bus reset, suspend or de-configuration: nothing queued will be sent, and a command in
    /// progress is dropped (its card exchange finishes unseen).
    UsbDeconfigured,
    /// A complete bulk-OUT message (see [`BulkOutAssembler`](crate::BulkOutAssembler)).
    UsbBulkOut(&'e [u8]),
    /// The last bulk-IN message has been sent.
    UsbBulkInSent,
    /// The last interrupt-IN message has been sent.
    UsbInterruptSent,
    /// The class request ABORT (CCID Rev 1.1 §5.3.1): `wValue` is `bSlot` (low byte) and
    /// `bSeq` (high byte).
    UsbAbort {
        /// `bSlot`.
        slot: u8,
        /// `bSeq`.
        seq: u8,
    },
}

/// The slot as the host sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum SlotState {
    /// No card answers; the bridge tries an activation every
    /// [`Config::activation_retry`].
    Absent,
    /// A card answers but cannot be used (malformed ATR, no T=0 or T=1): present, inactive.
    Faulty(ActivationError),
    /// A card is powered and activated.
    Active,
    /// The host powered the card off (`IccPowerOff`): VCC is off, the card is presumed present.
    Inactive,
}

/// Where the boot stands (the USB attach under [`BootPolicy::RequireCard`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum BootPhase {
    /// Waiting for a card to answer an activation.
    WaitingForCard,
    /// Reading the serial number from the card; `attempt` from 1.
    ReadingSerial {
        /// The attempt in progress (or the next one, between attempts).
        attempt: u8,
    },
    /// Attached to USB.
    Attached,
}

/// Why [`Bridge::new`] refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum ConfigError {
    /// The lent buffer is shorter than [`MIN_BUFFER_LEN`].
    BufferTooSmall,
    /// `dwMaxCCIDMessageLength` is below 271 (10 + one T=1 block) or above the lent buffer
    /// plus the header at TPDU level.
    MessageLength,
    /// The card clock is 0 Hz or above the 20 MHz of ISO/IEC 7816-3 Table 7.
    Clock,
    /// The board serial string is empty or longer than 24 characters.
    BoardSerial,
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            ConfigError::BufferTooSmall => "lent buffer too small",
            ConfigError::MessageLength => "dwMaxCCIDMessageLength out of range",
            ConfigError::Clock => "card clock out of range",
            ConfigError::BoardSerial => "board serial must be 1 to 24 characters",
        })
    }
}

/// Bytes of a small bulk-IN payload kept in the queue (Parameters, Escape answers).
const SMALL_PAYLOAD: usize = 48;
/// Bulk-IN messages the bridge may have queued: the answer to an aborted command, the answer
/// to the Abort, and one more (a time extension or a busy answer).
const QUEUE: usize = 3;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Payload {
    None,
    Small { bytes: [u8; SMALL_PAYLOAD], len: u8 },
    Buffer { off: usize, len: usize },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Outgoing {
    header: [u8; 10],
    payload: Payload,
}

/// Which job the card session is doing for the bridge.
#[derive(Debug, Clone)]
enum Work {
    Idle,
    /// An activation the bridge started: boot, a retry, an empty slot's scan.
    Scan,
    /// The activation that answers the host's IccPowerOn.
    PowerOn,
    /// The serial number at boot.
    Serial(SerialRead),
    /// The host's XfrBlock.
    Xfr,
    /// The presence probe.
    Probe,
    /// An aborted XfrBlock whose card exchange still runs; its outcome is dropped.
    Drain,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Boot {
    /// Waiting for a card (activation running or retried at `bg_at`).
    Card,
    /// Reading the serial: attempt `attempt`, which must end by `until`.
    Serial { attempt: u8, until: Instant },
    /// Between two serial attempts: the next is `attempt`.
    Pause { attempt: u8 },
    /// Attached.
    Done,
}

/// A CCID command the host is waiting for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Command {
    id: MessageId,
    kind: CommandKind,
    /// The BWT multiplier to report in time extensions.
    multiplier: u8,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum CommandKind {
    PowerOn,
    /// An XfrBlock whose command (`len` bytes) is in the buffer, not yet started.
    XfrQueued {
        len: usize,
        bwi: u8,
    },
    /// An XfrBlock running on the card.
    XfrRunning,
}

/// The bridge. See the [crate documentation](crate) for the whole picture and
/// [`hal`](crate::hal) for the call sequence.
pub struct Bridge<'a> {
    config: Config,
    session: Session<'a>,
    board_serial: SerialString,
    serial: Option<SerialString>,
    boot: Boot,
    slot: SlotState,
    work: Work,
    cmd: Option<Command>,
    configured: bool,
    /// Bulk-IN messages waiting for the endpoint.
    out: heapless::Deque<Outgoing, QUEUE>,
    bulk_in_busy: bool,
    interrupt_busy: bool,
    /// A NotifySlotChange is due.
    notify: bool,
    /// The slot changed since the last NotifySlotChange.
    changed: bool,
    /// APDU level: bytes of a command arriving in a CCID chain.
    chain_in: Option<usize>,
    /// APDU level: the rest of a response going out in a CCID chain: (next offset, end).
    chain_out: Option<(usize, usize)>,
    /// TPDU level: the last card block ended a transaction (an I-block without M); a presence
    /// probe cannot disturb the host's T=1 now.
    at_rest: bool,
    /// The card was mute: probe at once.
    suspect: bool,
    /// Next time extension.
    te_at: Option<Instant>,
    /// Next background job (activation retry, presence probe, serial retry or time-out).
    bg_at: Option<Instant>,
    /// What the driver's timer is armed to.
    armed: Option<Instant>,
}

impl fmt::Debug for Bridge<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Bridge")
            .field("boot", &self.boot)
            .field("slot", &self.slot)
            .field("work", &self.work)
            .field("cmd", &self.cmd)
            .field("session", &self.session)
            .finish_non_exhaustive()
    }
}

impl<'a> Bridge<'a> {
    /// A bridge with `config`, the board's own serial string (used as the USB serial under
    /// [`BootPolicy::Reader`] and when the card has no usable CHR; the firmware derives it
    /// from the MCU's unique ID), and a lent `buffer` for commands and responses
    /// ([`TPDU_BUFFER_LEN`](crate::TPDU_BUFFER_LEN) or
    /// [`APDU_BUFFER_LEN`](crate::APDU_BUFFER_LEN) bytes).
    pub fn new(
        config: Config,
        board_serial: &str,
        buffer: &'a mut [u8],
    ) -> Result<Self, ConfigError> {
        if buffer.len() < MIN_BUFFER_LEN {
            return Err(ConfigError::BufferTooSmall);
        }
        if config.max_message_len < 271 {
            return Err(ConfigError::MessageLength);
        }
        if config.card.clock_hz == 0 || config.card.clock_hz > 20_000_000 {
            return Err(ConfigError::Clock);
        }
        let board_serial =
            SerialString::try_from(board_serial).map_err(|_| ConfigError::BoardSerial)?;
        if board_serial.is_empty() {
            return Err(ConfigError::BoardSerial);
        }
        Ok(Bridge {
            config,
            session: Session::new(config.card, buffer),
            board_serial,
            serial: None,
            boot: Boot::Card,
            slot: SlotState::Absent,
            work: Work::Idle,
            cmd: None,
            configured: false,
            out: heapless::Deque::new(),
            bulk_in_busy: false,
            interrupt_busy: false,
            notify: false,
            changed: false,
            chain_in: None,
            chain_out: None,
            at_rest: true,
            suspect: false,
            te_at: None,
            bg_at: None,
            armed: None,
        })
    }

    // ---- Introspection ----

    /// The configuration.
    pub fn config(&self) -> &Config {
        &self.config
    }

    /// The slot as the host sees it.
    pub fn slot(&self) -> SlotState {
        self.slot
    }

    /// Where the boot stands.
    pub fn boot_phase(&self) -> BootPhase {
        match self.boot {
            Boot::Card => BootPhase::WaitingForCard,
            Boot::Serial { attempt, .. } | Boot::Pause { attempt } => {
                BootPhase::ReadingSerial { attempt }
            }
            Boot::Done => BootPhase::Attached,
        }
    }

    /// The serial string given to [`UsbDevice::attach`], once attached.
    pub fn serial(&self) -> Option<&str> {
        self.serial.as_deref()
    }

    /// The bit rate on the card line, bps.
    pub fn card_baud(&self) -> u32 {
        self.session.baud()
    }

    /// The ATR of the active card.
    pub fn atr(&self) -> Option<&[u8]> {
        match self.slot {
            SlotState::Active => Some(self.session.atr()),
            _ => None,
        }
    }

    /// Whether a CCID command is waiting for its answer.
    pub fn busy(&self) -> bool {
        self.cmd.is_some()
    }

    // ---- Driving ----

    /// Start: detach from USB and begin as the boot policy says. Call once, with the card
    /// contacts idle.
    pub fn start<H: Hardware>(&mut self, now: Instant, hw: &mut H) {
        hw.detach();
        match self.config.policy {
            BootPolicy::RequireCard => {
                self.boot = Boot::Card;
                self.scan(now, hw);
            }
            BootPolicy::Reader => {
                self.attach(self.board_serial.clone(), hw);
                self.bg_at = Some(now);
            }
        }
        self.finish(now, hw);
    }

    /// Feed one event that happened at `now`.
    pub fn handle<H: Hardware>(&mut self, now: Instant, event: Event<'_>, hw: &mut H) {
        match event {
            Event::CardReceived(bytes) => {
                let outcome = self.session.on_received(now, bytes, hw);
                self.on_outcome(now, outcome, hw);
            }
            Event::CardParityError => {
                let outcome = self.session.on_parity_error(now, hw);
                self.on_outcome(now, outcome, hw);
            }
            Event::CardTransmitted => self.session.on_transmitted(now),
            Event::DeadlinePassed => self.on_deadline(now, hw),
            Event::UsbConfigured if matches!(self.boot, Boot::Done) => {
                self.configured = true;
                self.bulk_in_busy = false;
                self.interrupt_busy = false;
                // The stock firmware announces the slot once at start (hardware.md §C).
                self.notify = true;
                self.changed = true;
            }
            Event::UsbDeconfigured => self.deconfigured(),
            Event::UsbBulkOut(message) if matches!(self.boot, Boot::Done) => {
                self.on_message(now, message, hw);
            }
            Event::UsbBulkInSent => self.bulk_in_busy = false,
            Event::UsbInterruptSent => self.interrupt_busy = false,
            Event::UsbAbort { slot, seq } if matches!(self.boot, Boot::Done) => {
                if slot == 0 {
                    self.abort_command(seq);
                }
            }
            // USB before the attach: nothing to answer.
            Event::UsbConfigured | Event::UsbBulkOut(_) | Event::UsbAbort { .. } => {}
        }
        self.finish(now, hw);
    }

    /// After every call: start queued work, send what is queued, arm the timer.
    fn finish<H: Hardware>(&mut self, now: Instant, hw: &mut H) {
        self.pump(now, hw);
        self.flush(hw);
        let next = [self.session.deadline(), self.te_at, self.bg_at]
            .into_iter()
            .flatten()
            .min();
        if next != self.armed {
            match next {
                Some(at) => hw.arm(at),
                None => hw.disarm(),
            }
            self.armed = next;
        }
    }

    fn on_deadline<H: Hardware>(&mut self, now: Instant, hw: &mut H) {
        // The timer is re-armed by `finish`.
        self.armed = None;
        if self.session.deadline().is_some_and(|at| at <= now) {
            let outcome = self.session.on_deadline(now, hw);
            self.on_outcome(now, outcome, hw);
        }
        if self.te_at.is_some_and(|at| at <= now) {
            self.time_extension(now);
        }
        if self.bg_at.is_some_and(|at| at <= now) {
            self.bg_at = None;
            self.background(now, hw);
        }
    }

    // ---- Boot ----

    fn attach<H: UsbDevice>(&mut self, serial: SerialString, hw: &mut H) {
        hw.attach(&serial);
        self.serial = Some(serial);
        self.boot = Boot::Done;
    }

    /// Start an activation for the bridge's own purposes.
    fn scan<H: CardContacts>(&mut self, now: Instant, hw: &mut H) {
        self.work = Work::Scan;
        self.session.activate(now, hw);
    }

    fn start_serial<H: Hardware>(&mut self, now: Instant, attempt: u8, hw: &mut H) {
        self.boot = Boot::Serial {
            attempt,
            until: now + self.config.serial.attempt_timeout,
        };
        self.bg_at = Some(now + self.config.serial.attempt_timeout);
        let read = SerialRead::new();
        self.serial_send(now, read, hw);
    }

    fn serial_send<H: Hardware>(&mut self, now: Instant, read: SerialRead, hw: &mut H) {
        let len = read.command(self.session.buffer_mut());
        self.work = Work::Serial(read);
        let started = match len {
            Some(len) => self.session.start_apdu(now, len, hw),
            None => Err(XfrError::BadCommand),
        };
        if let Err(error) = started {
            self.serial_done(now, serial_failure(error), hw);
        }
    }

    /// One serial attempt ended.
    fn serial_done<H: Hardware>(&mut self, now: Instant, next: Next, hw: &mut H) {
        self.work = Work::Idle;
        let attempt = match self.boot {
            Boot::Serial { attempt, .. } | Boot::Pause { attempt } => attempt,
            _ => 1,
        };
        let serial = match next {
            Next::Send => return,
            Next::Found(chr) => chr,
            Next::Unusable => self.board_serial.clone(),
            Next::Retry if attempt < self.config.serial.attempts => {
                // Busy or garbage (issue #79): power down, wait, cold-reset and read again.
                self.session.deactivate(hw);
                self.boot = Boot::Pause {
                    attempt: attempt + 1,
                };
                self.bg_at = Some(now + self.config.serial.retry_delay);
                return;
            }
            Next::Retry => {
                self.session.deactivate(hw);
                self.board_serial.clone()
            }
        };
        self.bg_at = None;
        self.slot = if self.session.is_ready() {
            SlotState::Active
        } else {
            SlotState::Inactive
        };
        self.attach(serial, hw);
        self.rest_timer(now);
    }

    // ---- Background work ----

    fn background<H: Hardware>(&mut self, now: Instant, hw: &mut H) {
        match self.boot {
            Boot::Card | Boot::Pause { .. } => {
                if matches!(self.work, Work::Idle) {
                    self.scan(now, hw);
                }
            }
            Boot::Serial { until, .. } => {
                if until <= now {
                    // The attempt took too long (a card that keeps asking for WTX).
                    self.session.deactivate(hw);
                    self.serial_done(now, Next::Retry, hw);
                } else {
                    self.bg_at = Some(until);
                }
            }
            Boot::Done => {
                if self.cmd.is_some() || !matches!(self.work, Work::Idle) {
                    // Busy: the end of the job schedules the next look.
                    return;
                }
                match self.slot {
                    SlotState::Absent | SlotState::Faulty(_) => self.scan(now, hw),
                    SlotState::Active => {
                        // Not while the host has the clock stopped (CCID IccClock).
                        let quiet = (self.at_rest || self.suspect) && !self.session.clock_stopped();
                        if quiet && self.session.is_ready() && self.session.start_probe(now, hw) {
                            self.work = Work::Probe;
                        } else {
                            // No probe now (the host's T=1 is mid-chain) or ever (a T=0 card has
                            // no harmless command: its removal shows at the next command).
                            self.suspect = false;
                            self.rest_timer(now);
                        }
                    }
                    SlotState::Inactive => {}
                }
            }
        }
    }

    /// Schedule the next background job from the slot state.
    fn rest_timer(&mut self, now: Instant) {
        self.bg_at = match self.slot {
            SlotState::Absent | SlotState::Faulty(_) => Some(now + self.config.activation_retry),
            SlotState::Active if self.suspect && self.session.is_ready() => Some(now),
            SlotState::Active => self.config.presence_poll.map(|p| now + p),
            SlotState::Inactive => None,
        };
    }

    // Out of line: measured smaller firmware (see `Bridge::on_message`).
    #[inline(never)]
    fn set_slot(&mut self, slot: SlotState) {
        let present = |s: SlotState| !matches!(s, SlotState::Absent);
        if present(slot) != present(self.slot) {
            self.notify = true;
            self.changed = true;
        }
        self.slot = slot;
    }

    // ---- Session outcomes ----

    fn on_outcome<H: Hardware>(&mut self, now: Instant, outcome: Option<Outcome>, hw: &mut H) {
        let Some(outcome) = outcome else {
            return;
        };
        let work = core::mem::replace(&mut self.work, Work::Idle);
        match (work, outcome) {
            (work, Outcome::Waiting { multiplier }) => {
                self.work = work;
                if let Some(cmd) = &mut self.cmd {
                    cmd.multiplier = multiplier.max(1);
                }
            }
            (Work::Scan, Outcome::Ready) => {
                self.at_rest = true;
                self.suspect = false;
                match self.boot {
                    Boot::Done => {
                        self.set_slot(SlotState::Active);
                        self.rest_timer(now);
                    }
                    Boot::Card => self.start_serial(now, 1, hw),
                    Boot::Pause { attempt } | Boot::Serial { attempt, .. } => {
                        self.start_serial(now, attempt, hw)
                    }
                }
            }
            (Work::Scan, Outcome::ActivationFailed(error)) => {
                match self.boot {
                    Boot::Done => {
                        self.set_slot(match error {
                            ActivationError::Mute => SlotState::Absent,
                            other => SlotState::Faulty(other),
                        });
                        self.session.forget_card();
                        self.rest_timer(now);
                    }
                    // Require-card: no card (or an unusable one) means no USB; keep trying.
                    _ => {
                        self.boot = Boot::Card;
                        self.session.forget_card();
                        self.bg_at = Some(now + self.config.activation_retry);
                    }
                }
            }
            (Work::PowerOn, Outcome::Ready) => {
                self.at_rest = true;
                self.suspect = false;
                self.set_slot(SlotState::Active);
                if let Some(cmd) = self.cmd.take() {
                    self.queue_atr(cmd.id);
                }
                self.te_at = None;
                self.rest_timer(now);
            }
            (Work::PowerOn, Outcome::ActivationFailed(error)) => {
                self.set_slot(match error {
                    ActivationError::Mute => SlotState::Absent,
                    other => SlotState::Faulty(other),
                });
                if error == ActivationError::Mute {
                    self.session.forget_card();
                }
                let code = match error {
                    ActivationError::Mute => SlotError::IccMute,
                    ActivationError::BadTs => SlotError::BadAtrTs,
                    ActivationError::BadAtr => SlotError::BadAtrTck,
                    ActivationError::UnsupportedProtocol => SlotError::IccProtocolNotSupported,
                    ActivationError::Hardware => SlotError::HwError,
                };
                if let Some(cmd) = self.cmd.take() {
                    self.queue_error(cmd.id, code);
                }
                self.te_at = None;
                self.rest_timer(now);
            }
            (Work::Serial(mut read), Outcome::Response { len }) => {
                let buffer_len = self.session.buffer().len();
                let response = self.session.buffer().get(..len).unwrap_or_default();
                match read.on_response(response, buffer_len) {
                    Next::Send => self.serial_send(now, read, hw),
                    other => self.serial_done(now, other, hw),
                }
            }
            (Work::Serial(_), Outcome::Failed(error)) => {
                self.serial_done(now, serial_failure(error), hw)
            }
            (Work::Xfr, Outcome::Response { len }) => self.xfr_done(now, Ok(len)),
            (Work::Xfr, Outcome::Failed(error)) => self.xfr_done(now, Err(error)),
            (Work::Probe, Outcome::Probe(present)) => {
                if present {
                    self.suspect = false;
                    self.rest_timer(now);
                } else {
                    self.card_gone(now, hw);
                }
            }
            (Work::Drain, Outcome::Failed(XfrError::Mute)) => {
                self.suspect = true;
                self.rest_timer(now);
            }
            (Work::Drain, Outcome::Response { .. } | Outcome::Failed(_)) => {
                self.rest_timer(now);
            }
            // Anything else does not belong to the job: keep the job.
            (work, _) => self.work = work,
        }
    }

    /// The presence probe went unanswered: the card is gone.
    fn card_gone<H: Hardware>(&mut self, now: Instant, hw: &mut H) {
        self.session.deactivate(hw);
        self.session.forget_card();
        self.suspect = false;
        self.set_slot(SlotState::Absent);
        self.rest_timer(now);
    }

    fn xfr_done(&mut self, now: Instant, result: Result<usize, XfrError>) {
        let Some(cmd) = self.cmd.take() else {
            return;
        };
        self.te_at = None;
        match result {
            Ok(len) => {
                match self.config.exchange {
                    Exchange::Tpdu => {
                        // At rest when the card's block is an I-block without M (§11.3.2.2).
                        let pcb = self.session.buffer().get(1).copied().unwrap_or(0xFF);
                        self.at_rest = pcb & 0xA0 == 0;
                        self.queue_data(
                            cmd.id,
                            self.status_ok(),
                            ChainParameter::BeginsAndEnds,
                            Payload::Buffer { off: 0, len },
                            len,
                        );
                    }
                    Exchange::ExtendedApdu => self.send_response_part(cmd.id, 0, len),
                }
                self.rest_timer(now);
            }
            Err(error) => {
                let code = match error {
                    XfrError::Mute => SlotError::IccMute,
                    XfrError::Parity => SlotError::XfrParityError,
                    XfrError::Overrun => SlotError::XfrOverrun,
                    XfrError::BadCommand => SlotError::BadField(10),
                    XfrError::Protocol => match self.session.params().map(|p| p.protocol) {
                        Some(CardProtocol::T0) => SlotError::ProcedureByteConflict,
                        _ => SlotError::HwError,
                    },
                    XfrError::Hardware => SlotError::HwError,
                };
                if error == XfrError::Mute {
                    // The card may have been pulled: look at once.
                    self.suspect = true;
                }
                self.queue_error(cmd.id, code);
                self.rest_timer(now);
            }
        }
    }

    /// APDU level: send the response from `off` to `end`, chained when it does not fit one
    /// message (CCID Rev 1.1 §6.2.1, `bChainParameter`).
    fn send_response_part(&mut self, id: MessageId, off: usize, end: usize) {
        let room = (self.config.max_message_len as usize)
            .saturating_sub(10)
            .max(1);
        let len = end.saturating_sub(off).min(room);
        let last = off + len >= end;
        let chain = match (off == 0, last) {
            (true, true) => ChainParameter::BeginsAndEnds,
            (true, false) => ChainParameter::Begins,
            (false, true) => ChainParameter::Ends,
            (false, false) => ChainParameter::Continues,
        };
        self.chain_out = if last { None } else { Some((off + len, end)) };
        self.queue_data(
            id,
            self.status_ok(),
            chain,
            Payload::Buffer { off, len },
            len,
        );
    }

    // ---- Starting queued work ----

    fn pump<H: Hardware>(&mut self, now: Instant, hw: &mut H) {
        let Some(cmd) = self.cmd else {
            return;
        };
        if let CommandKind::XfrQueued { len, bwi } = cmd.kind {
            if !matches!(self.work, Work::Idle) {
                // A probe or an activation first.
                return;
            }
            if !self.session.is_ready() || !matches!(self.slot, SlotState::Active) {
                // The card went away while the command waited (the probe found it gone).
                self.cmd = None;
                self.te_at = None;
                self.queue_error(cmd.id, SlotError::IccMute);
                return;
            }
            let started = match self.config.exchange {
                Exchange::Tpdu => self.session.start_block(now, len, bwi, hw),
                Exchange::ExtendedApdu => self.session.start_apdu(now, len, hw).map(|()| 1),
            };
            match started {
                Ok(multiplier) => {
                    self.work = Work::Xfr;
                    if let Some(c) = &mut self.cmd {
                        c.kind = CommandKind::XfrRunning;
                        c.multiplier = multiplier.max(1);
                    }
                }
                Err(error) => {
                    self.work = Work::Xfr;
                    self.xfr_done(now, Err(error));
                    self.work = Work::Idle;
                }
            }
        }
    }

    // ---- Time extension ----

    fn time_extension(&mut self, now: Instant) {
        let Some(cmd) = self.cmd else {
            self.te_at = None;
            return;
        };
        if self.out.is_empty() && !self.bulk_in_busy {
            let repr = self.snapshot().time_extension(cmd.id, cmd.multiplier);
            self.queue_repr(&repr);
        }
        self.te_at = Some(now + self.config.time_extension_period);
    }

    // ---- CCID messages ----

    // Out of line, like a few other functions marked so: inlined into `handle`, it made the
    // firmware 276 bytes larger (measured with `cargo xtask size`; register pressure in one
    // very large function). The firmware's flash budget is tight.
    #[inline(never)]
    fn on_message<H: Hardware>(&mut self, now: Instant, bytes: &[u8], hw: &mut H) {
        // Fewer than 10 bytes: no header to answer with.
        let Ok(id) = MessageId::read(bytes) else {
            return;
        };
        let message = match Message::new_checked_max(bytes, self.config.max_message_len) {
            Ok(m) => m,
            Err(e) => {
                let repr = self.snapshot().reject(id, e);
                self.queue_repr(&repr);
                return;
            }
        };
        if id.slot != 0 {
            let repr = SlotSnapshot::NO_SLOT.error_response(id, SlotError::BAD_SLOT);
            self.queue_repr(&repr);
            return;
        }
        let repr = match MessageRepr::parse(&message) {
            Ok(r) => r,
            Err(e) => {
                let repr = self.snapshot().reject(id, e);
                self.queue_repr(&repr);
                return;
            }
        };
        if let Body::Abort(_) = repr.body {
            self.abort_command(id.seq);
            let reply = MessageRepr::new(
                0,
                id.seq,
                SlotStatus {
                    status: self.status_ok(),
                    error: SlotError::CmdNotSupported,
                    clock: self.clock_status(),
                },
            );
            self.queue_repr(&reply);
            return;
        }
        if self.cmd.is_some() {
            // CCID Rev 1.1 §6.2.6: a second command to a busy slot.
            self.queue_error(id, SlotError::CmdSlotBusy);
            return;
        }
        match repr.body {
            Body::IccPowerOn(cmd) => self.power_on(now, id, cmd.power_select, hw),
            Body::IccPowerOff(_) => {
                self.chain_in = None;
                self.chain_out = None;
                if !matches!(self.slot, SlotState::Absent) {
                    self.session.deactivate(hw);
                    self.work = Work::Idle;
                    self.slot = match self.slot {
                        SlotState::Faulty(e) => SlotState::Faulty(e),
                        _ => SlotState::Inactive,
                    };
                }
                self.rest_timer(now);
                self.queue_slot_status(id, self.status_ok(), SlotError::CmdNotSupported);
            }
            Body::GetSlotStatus(_) => {
                self.queue_slot_status(id, self.status_ok(), SlotError::CmdNotSupported);
            }
            Body::XfrBlock(xfr) => self.xfr(now, id, xfr.bwi, xfr.level_parameter, xfr.data),
            Body::GetParameters(_) | Body::ResetParameters(_) => {
                self.queue_parameters(id, None);
            }
            Body::SetParameters(set) => {
                let wanted = set.protocol.protocol();
                let ok = matches!(
                    (wanted, self.session.params().map(|p| p.protocol)),
                    (ProtocolNum::T0, Some(CardProtocol::T0) | None)
                        | (ProtocolNum::T1, Some(CardProtocol::T1) | None)
                );
                // Parameters are automatic (dwFeatures 0x02, 0x80): the values are not
                // applied; the answer carries the ones in use.
                let error = if ok {
                    None
                } else {
                    Some(SlotError::BadField(7))
                };
                self.queue_parameters(id, error);
            }
            Body::Escape(escape) => self.escape(id, escape.data),
            Body::IccClock(clock) => self.icc_clock(now, id, clock.command, hw),
            // T0APDU, Secure, Mechanical, SetDataRateAndClockFrequency, and anything unknown:
            // CMD_NOT_SUPPORTED in the right response type (not the request's type, as the
            // stock firmware does).
            _ => {
                let repr = self.snapshot().not_supported(id);
                self.queue_repr(&repr);
            }
        }
    }

    fn power_on<H: Hardware>(
        &mut self,
        now: Instant,
        id: MessageId,
        select: PowerSelect,
        hw: &mut H,
    ) {
        // bVoltageSupport is 3 V only (hardware.md §A).
        if !matches!(select, PowerSelect::Automatic | PowerSelect::Volts3) {
            self.queue_error(id, SlotError::BadField(7));
            return;
        }
        self.chain_in = None;
        self.chain_out = None;
        self.cmd = Some(Command {
            id,
            kind: CommandKind::PowerOn,
            multiplier: 1,
        });
        self.te_at = Some(now + self.config.time_extension_period);
        // Always a cold reset, as the stock firmware (hardware.md §D): the card in the socket
        // may not be the one activated last (no card-detect switch), and a background
        // activation may have begun before a card was inserted.
        self.work = Work::PowerOn;
        self.session.activate(now, hw);
    }

    // Out of line: measured smaller firmware (see `Bridge::on_message`).
    #[inline(never)]
    fn xfr(&mut self, now: Instant, id: MessageId, bwi: u8, level: u16, data: &[u8]) {
        if !matches!(self.slot, SlotState::Active) {
            self.queue_error(id, SlotError::IccMute);
            return;
        }
        if matches!(self.work, Work::Drain) {
            // The aborted exchange still owns the buffer.
            self.queue_error(id, SlotError::CmdSlotBusy);
            return;
        }
        let len = match self.config.exchange {
            Exchange::Tpdu => {
                if data.is_empty() {
                    self.queue_error(id, SlotError::BAD_LENGTH);
                    return;
                }
                if !self.store(0, data) {
                    self.queue_error(id, SlotError::BAD_LENGTH);
                    return;
                }
                data.len()
            }
            Exchange::ExtendedApdu => {
                let chain = u8::try_from(level).map(ChainParameter::from_byte);
                match (chain, self.chain_in, self.chain_out) {
                    (Ok(ChainParameter::EmptyContinue), _, Some((off, end))) => {
                        self.send_response_part(id, off, end);
                        return;
                    }
                    (Ok(ChainParameter::BeginsAndEnds), _, _) => {
                        self.chain_in = None;
                        self.chain_out = None;
                        if !self.store(0, data) {
                            self.queue_error(id, SlotError::BAD_LENGTH);
                            return;
                        }
                        data.len()
                    }
                    (Ok(ChainParameter::Begins), _, _) => {
                        self.chain_out = None;
                        if !self.store(0, data) {
                            self.chain_in = None;
                            self.queue_error(id, SlotError::BAD_LENGTH);
                            return;
                        }
                        self.chain_in = Some(data.len());
                        self.queue_continue(id);
                        return;
                    }
                    (Ok(ChainParameter::Continues), Some(have), _) => {
                        if !self.store(have, data) {
                            self.chain_in = None;
                            self.queue_error(id, SlotError::BAD_LENGTH);
                            return;
                        }
                        self.chain_in = Some(have + data.len());
                        self.queue_continue(id);
                        return;
                    }
                    (Ok(ChainParameter::Ends), Some(have), _) => {
                        self.chain_in = None;
                        if !self.store(have, data) {
                            self.queue_error(id, SlotError::BAD_LENGTH);
                            return;
                        }
                        have + data.len()
                    }
                    // A chaining code out of sequence or unknown: wLevelParameter (index 8).
                    _ => {
                        self.chain_in = None;
                        self.chain_out = None;
                        self.queue_error(id, SlotError::BadField(8));
                        return;
                    }
                }
            }
        };
        self.cmd = Some(Command {
            id,
            kind: CommandKind::XfrQueued { len, bwi },
            multiplier: bwi.max(1),
        });
        self.te_at = Some(now + self.config.time_extension_period);
    }

    /// Copy `data` into the buffer at `at`; false if it does not fit.
    fn store(&mut self, at: usize, data: &[u8]) -> bool {
        let end = at.saturating_add(data.len());
        match self.session.buffer_mut().get_mut(at..end) {
            Some(dst) => {
                dst.copy_from_slice(data);
                true
            }
            None => false,
        }
    }

    fn escape(&mut self, id: MessageId, data: &[u8]) {
        // Escape 0x00: identify the firmware ("tessera-bridge <version> <policy> <level>"),
        // so a rig can tell it from the stock firmware. Nothing else is defined.
        if data != [0x00] {
            let repr = self.snapshot().not_supported(id);
            self.queue_repr(&repr);
            return;
        }
        let mut text: heapless::String<SMALL_PAYLOAD> = heapless::String::new();
        let level = match self.config.exchange {
            Exchange::Tpdu => "tpdu",
            Exchange::ExtendedApdu => "apdu",
        };
        for part in [
            "tessera-bridge ",
            env!("CARGO_PKG_VERSION"),
            " ",
            self.config.policy.name(),
            " ",
            level,
        ] {
            let _ = text.push_str(part);
        }
        let reply = MessageRepr::new(
            0,
            id.seq,
            tessera_ccid::EscapeResponse {
                status: self.status_ok(),
                error: SlotError::CmdNotSupported,
                rfu: 0,
                data: text.as_bytes(),
            },
        );
        self.queue_repr(&reply);
    }

    fn icc_clock<H: Hardware>(
        &mut self,
        now: Instant,
        id: MessageId,
        command: ClockCommand,
        hw: &mut H,
    ) {
        match (self.slot, command) {
            (SlotState::Active, ClockCommand::Restart) => {
                self.session.restart_clock(now, hw);
            }
            (SlotState::Active, ClockCommand::Stop) => {
                if !self.session.is_ready() || !self.session.stop_clock(hw) {
                    // The card does not allow clock stop (ATR, §8.3 XI) or is busy.
                    let status = Status::new(self.icc_status(), CommandStatus::Failed);
                    self.queue_slot_status(id, status, SlotError::BadField(7));
                    return;
                }
            }
            (_, ClockCommand::Restart | ClockCommand::Stop) => {}
            (_, ClockCommand::Unknown(_)) => {
                let status = Status::new(self.icc_status(), CommandStatus::Failed);
                self.queue_slot_status(id, status, SlotError::BadField(7));
                return;
            }
        }
        self.queue_slot_status(id, self.status_ok(), SlotError::CmdNotSupported);
    }

    /// The host aborts the command with `seq` (either half of CCID Rev 1.1 §5.3.1): answer it
    /// with CMD_ABORTED now; a card exchange in progress finishes in the background.
    fn abort_command(&mut self, seq: u8) {
        self.chain_in = None;
        self.chain_out = None;
        let Some(cmd) = self.cmd else {
            return;
        };
        if cmd.id.seq != seq {
            return;
        }
        self.cmd = None;
        self.te_at = None;
        self.queue_error(cmd.id, SlotError::CmdAborted);
        match self.work {
            Work::Xfr => self.work = Work::Drain,
            Work::PowerOn => self.work = Work::Scan,
            _ => {}
        }
    }

    fn deconfigured(&mut self) {
        self.configured = false;
        self.out.clear();
        self.bulk_in_busy = false;
        self.interrupt_busy = false;
        self.chain_in = None;
        self.chain_out = None;
        if self.cmd.take().is_some() {
            self.te_at = None;
            match self.work {
                Work::Xfr => self.work = Work::Drain,
                Work::PowerOn => self.work = Work::Scan,
                _ => {}
            }
        }
    }

    // ---- Replies ----

    fn icc_status(&self) -> IccStatus {
        match self.slot {
            SlotState::Active => IccStatus::PresentActive,
            SlotState::Inactive | SlotState::Faulty(_) => IccStatus::PresentInactive,
            SlotState::Absent => IccStatus::NotPresent,
        }
    }

    fn clock_status(&self) -> ClockStatus {
        match self.slot {
            SlotState::Active if !self.session.clock_stopped() => ClockStatus::Running,
            _ => ClockStatus::StoppedLow,
        }
    }

    fn status_ok(&self) -> Status {
        Status::new(self.icc_status(), CommandStatus::Processed)
    }

    fn snapshot(&self) -> SlotSnapshot {
        SlotSnapshot {
            icc: self.icc_status(),
            clock: self.clock_status(),
            protocol: match self.session.params().map(|p| p.protocol) {
                Some(CardProtocol::T0) => ProtocolNum::T0,
                _ => ProtocolNum::T1,
            },
            clock_frequency: self.config.card.clock_hz / 1000,
            data_rate: self.session.baud(),
        }
    }

    fn queue_error(&mut self, id: MessageId, error: SlotError) {
        let repr = self.snapshot().error_response(id, error);
        self.queue_repr(&repr);
    }

    fn queue_slot_status(&mut self, id: MessageId, status: Status, error: SlotError) {
        let reply = MessageRepr::new(
            0,
            id.seq,
            SlotStatus {
                status,
                error,
                clock: self.clock_status(),
            },
        );
        self.queue_repr(&reply);
    }

    /// DataBlock with the ATR (CCID Rev 1.1 §6.1.1), copied now: the card may be gone by the
    /// time the message goes out.
    fn queue_atr(&mut self, id: MessageId) {
        let mut bytes = [0u8; SMALL_PAYLOAD];
        let atr = self.session.atr();
        let len = atr.len().min(SMALL_PAYLOAD);
        if let (Some(dst), Some(src)) = (bytes.get_mut(..len), atr.get(..len)) {
            dst.copy_from_slice(src);
        }
        let payload = Payload::Small {
            bytes,
            len: len as u8,
        };
        self.queue_data(
            id,
            self.status_ok(),
            ChainParameter::BeginsAndEnds,
            payload,
            len,
        );
    }

    /// DataBlock 0x10: the next part of a chained command, please (CCID Rev 1.1 §6.2.1).
    fn queue_continue(&mut self, id: MessageId) {
        self.queue_data(
            id,
            self.status_ok(),
            ChainParameter::EmptyContinue,
            Payload::None,
            0,
        );
    }

    /// Parameters with the structure in use (CCID Rev 1.1 §6.2.3), failed with `error` if
    /// given.
    fn queue_parameters(&mut self, id: MessageId, error: Option<SlotError>) {
        let protocol = match self.session.params() {
            Some(p) => protocol_data(p),
            // No card: the T=1 defaults of the stock firmware (hardware.md §A).
            None => ProtocolData::T1(T1Parameters {
                findex_dindex: 0x11,
                tcckst1: T1Parameters::TCCKST1_BASE,
                guard_time: 0,
                waiting_integers: 0x4D,
                clock_stop: CcidClockStop::NotAllowed,
                ifsc: 0x20,
                nad: 0,
            }),
        };
        let (status, error) = match error {
            Some(e) => (Status::new(self.icc_status(), CommandStatus::Failed), e),
            None => (self.status_ok(), SlotError::CmdNotSupported),
        };
        let reply = MessageRepr::new(
            0,
            id.seq,
            Parameters {
                status,
                error,
                protocol,
            },
        );
        self.queue_repr(&reply);
    }

    fn queue_repr(&mut self, repr: &MessageRepr<'_>) {
        let mut bytes = [0u8; 10 + SMALL_PAYLOAD];
        let Ok(len) = repr.emit(&mut bytes) else {
            return;
        };
        let (header, payload) = bytes.split_at(10);
        let mut h = [0u8; 10];
        h.copy_from_slice(header);
        let mut small = [0u8; SMALL_PAYLOAD];
        let n = len.saturating_sub(10).min(SMALL_PAYLOAD);
        if let (Some(dst), Some(src)) = (small.get_mut(..n), payload.get(..n)) {
            dst.copy_from_slice(src);
        }
        let payload = if n == 0 {
            Payload::None
        } else {
            Payload::Small {
                bytes: small,
                len: n as u8,
            }
        };
        self.enqueue(Outgoing { header: h, payload });
    }

    fn queue_data(
        &mut self,
        id: MessageId,
        status: Status,
        chain: ChainParameter,
        payload: Payload,
        len: usize,
    ) {
        let mut header = [0u8; 10];
        let mut m = Message::new_unchecked(&mut header[..]);
        m.set_message_type(MessageType::DataBlock);
        m.set_length(len as u32);
        m.set_slot(id.slot);
        m.set_seq(id.seq);
        m.set_specific([status.to_byte(), 0, chain.to_byte()]);
        self.enqueue(Outgoing { header, payload });
    }

    fn enqueue(&mut self, outgoing: Outgoing) {
        // The queue holds more than the protocol ever needs (one answer, plus an aborted
        // command's); a host that floods a busy slot loses the excess answers.
        let _ = self.out.push_back(outgoing);
    }

    /// Send the next queued bulk-IN message and a due NotifySlotChange.
    fn flush<H: UsbDevice>(&mut self, hw: &mut H) {
        while !self.bulk_in_busy && self.configured {
            let Some(next) = self.out.pop_front() else {
                break;
            };
            let payload: &[u8] = match next.payload {
                Payload::None => &[],
                Payload::Small { ref bytes, len } => {
                    bytes.get(..usize::from(len)).unwrap_or_default()
                }
                Payload::Buffer { off, len } => self
                    .session
                    .buffer()
                    .get(off..off.saturating_add(len))
                    .unwrap_or_default(),
            };
            // dwLength from what is really sent, whatever happened since the message was
            // queued: a bulk-IN message is always well-formed.
            let mut header = next.header;
            Message::new_unchecked(&mut header[..]).set_length(payload.len() as u32);
            if hw.send_bulk_in(&header, payload).is_ok() {
                self.bulk_in_busy = true;
            }
        }
        if !self.configured {
            self.out.clear();
        }
        if self.notify && self.configured && !self.interrupt_busy {
            let present = !matches!(self.slot, SlotState::Absent);
            // RDR_to_PC_NotifySlotChange for slot 0 (CCID Rev 1.1 §6.3.1): bit 0 present,
            // bit 1 changed.
            let message = [0x50, u8::from(present) | (u8::from(self.changed) << 1)];
            if hw.send_interrupt(&message).is_ok() {
                self.interrupt_busy = true;
                self.notify = false;
                self.changed = false;
            }
        }
    }
}

/// What a failed serial-number exchange means: a command the card cannot be sent (a T=0 card
/// and the extended READ BINARY) will never work; anything else may work next time.
fn serial_failure(error: XfrError) -> Next {
    match error {
        XfrError::BadCommand => Next::Unusable,
        _ => Next::Retry,
    }
}

/// The CCID protocol data structure for the card parameters in use (CCID Rev 1.1 §6.1.7).
fn protocol_data(p: &CardParams) -> ProtocolData<'static> {
    let clock_stop = match p.clock_stop {
        ClockStop::NotSupported => CcidClockStop::NotAllowed,
        ClockStop::Low => CcidClockStop::Low,
        ClockStop::High => CcidClockStop::High,
        ClockStop::NoPreference => CcidClockStop::Either,
    };
    match p.protocol {
        CardProtocol::T1 => ProtocolData::T1(T1Parameters {
            findex_dindex: p.fi_di.byte(),
            tcckst1: T1Parameters::TCCKST1_BASE
                | match p.edc {
                    Edc::Crc => T1Parameters::TCCKST1_CRC,
                    Edc::Lrc => 0,
                },
            guard_time: p.n,
            waiting_integers: (p.bwi << 4) | (p.cwi & 0x0F),
            clock_stop,
            ifsc: p.ifsc,
            nad: 0,
        }),
        CardProtocol::T0 => ProtocolData::T0(T0Parameters {
            findex_dindex: p.fi_di.byte(),
            tcckst0: 0,
            guard_time: p.n,
            waiting_integer: p.wi,
            clock_stop,
        }),
    }
}
