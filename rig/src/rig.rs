//! The rig as the conformance suites see it: [`Rig`], over a [`Backend`] (virtual or real).
//!
//! [`Rig`] is a struct, not a trait, on purpose: it is what enforces the rules every backend
//! must obey (a SIM changes only while its board is off, a card is wired to one board at a
//! time, an error leaves every board off, dropping the rig powers everything off), so that no
//! backend can forget them. Backends implement the small [`Backend`] trait and are called only
//! in the states the rules allow.

use std::fmt;
use std::path::Path;
use std::time::Duration;

pub use tessera_ccid::SlotChange;
use tessera_sc_hsm::{Pin, PinRole, SoPin, Transport, TransportError};
use zeroize::Zeroizing;

use crate::config::{
    Board, Card, FirmwareProfile, PinSource, PowerSwitch, RigDescription, SimSwitch, Slot, UsbId,
};
use crate::controller::ControllerError;

/// How the host reaches a board's card.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Via {
    /// Through pcscd and libccid, as applications do.
    Pcsc,
    /// CCID spoken by the host itself over USB (`tessera_host::ccid`), or over the virtual USB.
    Usb,
}

impl fmt::Display for Via {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Via::Pcsc => "PC/SC",
            Via::Usb => "CCID over USB",
        })
    }
}

/// How a transport is opened.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct TransportOptions {
    /// How long the host waits for each CCID response before giving up (and per time
    /// extension, times its multiplier); `None`: the driver's default (60 s). Only transports
    /// that speak CCID themselves ([`Via::Usb`]) can set it; PC/SC ignores it.
    pub response_timeout: Option<Duration>,
}

/// What the host can see of the link under the APDUs. Only a transport that speaks CCID
/// itself ([`Via::Usb`]) sees it; through PC/SC these are `None` and 0.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct LinkReport {
    /// The CCID exchange level in use ("TPDU", "short APDU", "extended APDU").
    pub exchange: Option<&'static str>,
    /// The card's IFSC and the host's IFSD on the T=1 link, at TPDU level (where the host
    /// runs T=1 itself).
    pub ifsc_ifsd: Option<(u8, u8)>,
    /// `bmFindexDindex` of the reader's GetParameters answer: the rate the PPS reached.
    pub findex_dindex: Option<u8>,
    /// CCID time extensions the reader sent since the transport was opened.
    pub time_extensions: u64,
    /// S(WTX request)s the card sent through the reader that the host's T=1 engine answered
    /// (TPDU level: the T=1 waiting time extension travels to the host as a block).
    pub wtx_requests: u64,
}

/// A transport to a board's card, as [`Rig::open_transport`] gives it: APDUs, plus what the
/// host can see of the link.
pub trait RigTransport: Transport {
    /// What the host sees of the link now (it may ask the reader: GetParameters).
    fn link_report(&mut self) -> Result<LinkReport, TransportError>;
}

/// tessera-host's CCID transport sees the link: the exchange level, the T=1 sizes at TPDU
/// level, GetParameters, and the time extensions and S(WTX)s it waited on.
impl<P: tessera_host::UsbPipe> RigTransport for tessera_host::CcidTransport<P> {
    fn link_report(&mut self) -> Result<LinkReport, TransportError> {
        use tessera_host::ccid::ExchangeMode;
        let exchange = match self.mode() {
            ExchangeMode::Tpdu => "TPDU",
            ExchangeMode::ShortApdu => "short APDU",
            ExchangeMode::ExtendedApdu => "extended APDU",
        };
        let ifsc_ifsd = self.t1_sizes();
        let time_extensions = self.reader().time_extensions();
        let wtx_requests = self.wtx_requests();
        let findex_dindex = self.reader().t1_parameters()?.map(|p| p.findex_dindex);
        Ok(LinkReport {
            exchange: Some(exchange),
            ifsc_ifsd,
            findex_dindex,
            time_extensions,
            wtx_requests,
        })
    }
}

/// Any other transport (PC/SC) sees nothing under the APDUs.
impl RigTransport for Box<dyn Transport> {
    fn link_report(&mut self) -> Result<LinkReport, TransportError> {
        Ok(LinkReport::default())
    }
}

/// What a test needs from the rig; [`Rig::check`] says whether it has it, and if not, why (so
/// the test reports itself ignored with that reason).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Need {
    /// A switch for the board's power.
    PowerSwitch,
    /// A SIM mux channel on the board's socket.
    SimSwitch,
    /// A SIM position with no card, to test "no SIM".
    EmptySlot,
    /// At least this many cards on the mux.
    Cards(u8),
    /// A card tests may damage for good (an SO-PIN blocked): virtual, or `sacrificial = true`.
    SacrificialCard,
    /// The board powered through a hub port (a real USB unplug, VBUS cut).
    Hub,
    /// An SWD probe (flashing, reset).
    Probe,
    /// The board's log (defmt over RTT, or the virtual board's log).
    Log,
    /// A way to reach the card.
    Transport(Via),
    /// One of our firmware profiles (the stock firmware cannot be flashed or asked for logs).
    TesseraFirmware,
    /// A card pushed into, or pulled out of, the board's socket while it is powered
    /// ([`Rig::insert_sim`], [`Rig::pull_sim`]; PROTOCOL.md §3.3a).
    HotSwap,
    /// The board's CCID interrupt endpoint watched for NotifySlotChange
    /// ([`Rig::slot_changes`]).
    SlotChanges,
}

impl fmt::Display for Need {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Need::PowerSwitch => f.write_str("a power switch"),
            Need::SimSwitch => f.write_str("a SIM mux"),
            Need::EmptySlot => f.write_str("an empty SIM position"),
            Need::Cards(n) => write!(f, "{n} cards"),
            Need::SacrificialCard => f.write_str("a sacrificial card"),
            Need::Hub => f.write_str("hub port power"),
            Need::Probe => f.write_str("an SWD probe"),
            Need::Log => f.write_str("the board's log"),
            Need::Transport(via) => write!(f, "a {via} transport"),
            Need::TesseraFirmware => f.write_str("Tessera firmware"),
            Need::HotSwap => f.write_str("SIM insertion and removal while powered"),
            Need::SlotChanges => f.write_str("its CCID interrupt endpoint watched"),
        }
    }
}

/// Something a test needs that the rig lacks: the reason to report the test ignored.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("board {board} needs {need}: {reason}")]
pub struct Missing {
    /// The board.
    pub board: String,
    /// What it needs.
    pub need: Need,
    /// Why the rig lacks it, in words.
    pub reason: String,
}

/// What kind of failure a [`RigError`] is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum RigErrorKind {
    /// No board of that name in the rig file.
    UnknownBoard,
    /// No SIM slot of that name in the rig file.
    UnknownSlot,
    /// The rig lacks what the call needs ([`Missing`]).
    Unsupported,
    /// The call breaks a rule (a SIM change while powered, a card already on another board):
    /// nothing was done.
    Refused,
    /// What was waited for did not happen in time.
    Timeout,
    /// The rig controller failed (every board has been powered off).
    Controller,
    /// The hub's port power switching failed.
    Hub,
    /// USB enumeration could not be watched.
    Usb,
    /// Opening a transport to the card failed.
    Transport,
    /// The probe failed (flashing, reset, RTT).
    Probe,
    /// A PIN could not be read from where the rig file says.
    Pin,
    /// Anything else the backend reports.
    Backend,
}

/// A rig failure. Displays as one line naming the board and what to do; never contains a PIN.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum RigError {
    /// No such board.
    #[error("rig {rig}: no board called {name:?} (boards: {known})")]
    UnknownBoard {
        /// The rig's name.
        rig: String,
        /// The name asked for.
        name: String,
        /// The rig's boards, comma-separated.
        known: String,
    },
    /// No such slot.
    #[error("rig {rig}: no SIM slot called {name:?} (slots: {known})")]
    UnknownSlot {
        /// The rig's name.
        rig: String,
        /// The name asked for.
        name: String,
        /// The rig's slots, comma-separated.
        known: String,
    },
    /// The rig lacks something.
    #[error(transparent)]
    Missing(#[from] Missing),
    /// A rule forbids the call; nothing was done.
    #[error("board {board}: refused: {reason}")]
    Refused {
        /// The board.
        board: String,
        /// Which rule, and what to do instead.
        reason: String,
    },
    /// A wait timed out.
    #[error("board {board}: {what} did not happen within {} ms", timeout.as_millis())]
    Timeout {
        /// The board.
        board: String,
        /// What was waited for ("USB enumeration").
        what: String,
        /// How long.
        timeout: Duration,
    },
    /// The rig controller failed.
    #[error(transparent)]
    Controller(#[from] ControllerError),
    /// Hub port power failed.
    #[error("hub {location} port {port}: {message}")]
    Hub {
        /// uhubctl's location.
        location: String,
        /// The port.
        port: u8,
        /// What went wrong.
        message: String,
    },
    /// Watching USB failed.
    #[error("board {board}: USB: {message}")]
    Usb {
        /// The board.
        board: String,
        /// What went wrong.
        message: String,
    },
    /// Opening a transport failed.
    #[error("board {board}: opening a {via} transport: {source}")]
    Transport {
        /// The board.
        board: String,
        /// How.
        via: Via,
        /// Why.
        #[source]
        source: TransportError,
    },
    /// The probe failed.
    #[error("board {board}: probe: {message}")]
    Probe {
        /// The board.
        board: String,
        /// What went wrong.
        message: String,
    },
    /// A PIN could not be read.
    #[error("card {card}: {role}: {message}")]
    Pin {
        /// The card's label.
        card: String,
        /// Which PIN.
        role: PinRole,
        /// What went wrong (never the PIN).
        message: String,
    },
    /// Anything else.
    #[error("{message}")]
    Backend {
        /// What went wrong.
        message: String,
    },
}

impl RigError {
    /// What kind of failure it is.
    pub fn kind(&self) -> RigErrorKind {
        match self {
            RigError::UnknownBoard { .. } => RigErrorKind::UnknownBoard,
            RigError::UnknownSlot { .. } => RigErrorKind::UnknownSlot,
            RigError::Missing(_) => RigErrorKind::Unsupported,
            RigError::Refused { .. } => RigErrorKind::Refused,
            RigError::Timeout { .. } => RigErrorKind::Timeout,
            RigError::Controller(_) => RigErrorKind::Controller,
            RigError::Hub { .. } => RigErrorKind::Hub,
            RigError::Usb { .. } => RigErrorKind::Usb,
            RigError::Transport { .. } => RigErrorKind::Transport,
            RigError::Probe { .. } => RigErrorKind::Probe,
            RigError::Pin { .. } => RigErrorKind::Pin,
            RigError::Backend { .. } => RigErrorKind::Backend,
        }
    }

    /// Whether the failure is in the rig's hardware or backend (not a refusal, a timeout
    /// waited for, or a card-level transport error), so [`Rig`] powers every board off.
    fn is_rig_failure(&self) -> bool {
        matches!(
            self.kind(),
            RigErrorKind::Controller
                | RigErrorKind::Hub
                | RigErrorKind::Usb
                | RigErrorKind::Probe
                | RigErrorKind::Backend
        )
    }
}

/// A board seen on USB.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UsbSighting {
    /// Its ids.
    pub id: UsbId,
    /// Its bus/port path, where the backend knows one.
    pub path: Option<String>,
    /// The manufacturer string.
    pub manufacturer: Option<String>,
    /// The product string (ours names the boot policy).
    pub product: Option<String>,
    /// The serial string (the card's serial, hardware.md §C).
    pub serial: Option<String>,
}

/// How severe a log record is (defmt's levels).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum LogLevel {
    /// `trace`.
    Trace,
    /// `debug`.
    Debug,
    /// `info`.
    Info,
    /// `warn`.
    Warn,
    /// `error`.
    Error,
}

/// One line of a board's log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogRecord {
    /// When, in the board's time since power-on (modelled time on the virtual rig), if known.
    pub at: Option<Duration>,
    /// Its level, if the log format has one.
    pub level: Option<LogLevel>,
    /// The text.
    pub text: String,
}

/// A card's PINs, read from where the rig file says. `Debug` never shows them.
#[derive(Debug)]
pub struct CardPins {
    /// The user PIN, if the rig file says where to find it.
    pub user: Option<Pin>,
    /// The SO-PIN, if the rig file says where to find it.
    pub so: Option<SoPin>,
}

/// What the rig knows about a board's power.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum PowerState {
    /// Switched off by this rig.
    Off,
    /// Switched on by this rig.
    On,
    /// No switch (`power = "none"`): always on as far as the rig knows.
    Unswitched,
    /// Unknown after a failure to switch it off: treated as on.
    Unknown,
}

impl PowerState {
    fn is_off(self) -> bool {
        self == PowerState::Off
    }
}

/// What the rig knows about a board's SIM socket.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum SimState {
    /// Not switched by this rig (`sim = "none"`, or never selected on an unswitched board).
    Unknown,
    /// Nothing connected.
    Empty,
    /// The slot at this index of the description.
    Slot(usize),
}

/// What a backend does. Implemented by the virtual rig and the real one; called only by
/// [`Rig`], which checks the rules first.
///
/// # What [`Rig`] guarantees a backend
///
/// - Boards and slots passed in are from the description the backend was built for.
/// - [`set_power`](Backend::set_power) only for boards with a power switch;
///   [`select_sim`](Backend::select_sim) only for boards with a SIM switch, only while that
///   board is off, and never with a slot that is connected to another board.
/// - After any rig failure (controller, hub, USB, probe, backend), [`all_off`](Backend::all_off).
///
/// # What a backend guarantees
///
/// - `select_sim` is break-before-make: the old card's contacts all open before the new
///   card's close.
/// - `all_off` switches off every board it can, even after earlier failures, and reports
///   failure only if it could not.
/// - Waits are bounded by their timeout, in the backend's time (modelled on the virtual rig).
/// - Nothing it returns or logs contains a PIN.
pub trait Backend {
    /// Switches `board`'s power.
    fn set_power(&mut self, board: &Board, on: bool) -> Result<(), RigError>;

    /// Connects `slot`'s position (or nothing) to `board`'s SIM socket, break-before-make.
    fn select_sim(&mut self, board: &Board, slot: Option<&Slot>) -> Result<(), RigError>;

    /// Connects `slot`'s position to `board`'s empty SIM socket while the board may be
    /// powered (make only). Only called when [`lacks`](Backend::lacks) says nothing for
    /// [`Need::HotSwap`].
    fn insert_sim(&mut self, board: &Board, slot: &Slot) -> Result<(), RigError> {
        let _ = slot;
        Err(RigError::Backend {
            message: format!("board {}: this backend cannot insert a SIM", board.name),
        })
    }

    /// Opens every contact of `board`'s SIM socket `after` from now (break only), while the
    /// board may be powered. Only called when [`lacks`](Backend::lacks) says nothing for
    /// [`Need::HotSwap`].
    fn pull_sim(&mut self, board: &Board, after: Duration) -> Result<(), RigError> {
        let _ = after;
        Err(RigError::Backend {
            message: format!("board {}: this backend cannot pull a SIM", board.name),
        })
    }

    /// Switches every board off.
    fn all_off(&mut self) -> Result<(), RigError>;

    /// The NotifySlotChange messages (slot 0's bits) `board` sent on its interrupt endpoint
    /// since the last call. Only called when [`lacks`](Backend::lacks) says nothing for
    /// [`Need::SlotChanges`].
    fn slot_changes(&mut self, board: &Board) -> Result<Vec<SlotChange>, RigError> {
        Err(RigError::Backend {
            message: format!(
                "board {}: this backend does not watch the interrupt endpoint",
                board.name
            ),
        })
    }

    /// Lets `d` pass (wall time on a real rig, modelled time on the virtual one, where the
    /// boards run meanwhile).
    fn pause(&mut self, d: Duration) {
        std::thread::sleep(d);
    }

    /// Waits until `board` is enumerated on USB; [`RigError::Timeout`] if it is not within
    /// `timeout`.
    fn wait_enumerated(
        &mut self,
        board: &Board,
        timeout: Duration,
    ) -> Result<UsbSighting, RigError>;

    /// Waits until `board` is gone from USB; [`RigError::Timeout`] if it is still there after
    /// `timeout`.
    fn wait_absent(&mut self, board: &Board, timeout: Duration) -> Result<(), RigError>;

    /// Opens a transport to the card behind `board` (which must be enumerated).
    fn open_transport(
        &mut self,
        board: &Board,
        via: Via,
        options: TransportOptions,
    ) -> Result<Box<dyn RigTransport>, RigError>;

    /// Writes the ELF firmware image at `elf` to `board`, verifies it and resets the board.
    fn flash(&mut self, board: &Board, elf: &Path) -> Result<(), RigError>;

    /// The board's log records since the last call.
    fn take_log(&mut self, board: &Board) -> Result<Vec<LogRecord>, RigError>;

    /// A PIN the backend made up for `card` (`{ generated = true }`). Only virtual backends
    /// generate PINs.
    fn generated_pin(&mut self, card: &Card, role: PinRole) -> Result<Zeroizing<String>, RigError> {
        let _ = role;
        Err(RigError::Backend {
            message: format!(
                "card {}: this backend generates no PINs (a real rig reads them from env or file)",
                card.label
            ),
        })
    }

    /// Why this backend cannot give `board` what `need` asks for, or `None` if it can. Only
    /// backend-specific needs ([`Need::Probe`], [`Need::Log`], [`Need::Transport`]); [`Rig`]
    /// checks the rig file's part itself.
    fn lacks(&self, board: &Board, need: Need) -> Option<String>;
}

/// A rig: boards, SIM slots and the backend that drives them, with the rules enforced.
///
/// # Call sequence (what a conformance case does)
///
/// 1. [`Rig::new`] switches every board off and, on boards with a SIM switch, connects no SIM.
/// 2. [`check`](Rig::check) what the case needs; on `Err(missing)` report the case ignored
///    with `missing` as the reason.
/// 3. With the board off, [`select_sim`](Rig::select_sim) a slot (or `None`); then
///    [`power_on`](Rig::power_on).
/// 4. [`wait_enumerated`](Rig::wait_enumerated) (or [`wait_absent`](Rig::wait_absent)), then
///    [`open_transport`](Rig::open_transport) and talk to the card. Read PINs with
///    [`card_pins`](Rig::card_pins).
/// 5. [`power_off`](Rig::power_off) before the next SIM change; the transport fails from then
///    on (open a new one after the next power-on).
/// 6. [`take_log`](Rig::take_log) at any time; [`shutdown`](Rig::shutdown) at the end (or
///    drop the rig: the same, without the error).
///
/// # Guarantees
///
/// - A SIM is switched only while its board is off ([`PowerState::Off`]); otherwise
///   [`RigErrorKind::Refused`] and nothing happens. Boards with `power = "none"` can never
///   have their SIM switched.
/// - A card is connected to at most one board.
/// - After a rig failure (controller, hub, USB, probe, backend error) every board is switched
///   off before the error is returned; refusals, timeouts of waits and transport errors change
///   nothing.
/// - Dropping the rig switches every board off.
pub struct Rig {
    description: RigDescription,
    backend: Box<dyn Backend>,
    power: Vec<PowerState>,
    sim: Vec<SimState>,
}

impl fmt::Debug for Rig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Rig")
            .field("name", &self.description.name)
            .field("power", &self.power)
            .field("sim", &self.sim)
            .finish_non_exhaustive()
    }
}

impl Rig {
    /// A rig over `backend`, built for `description`: every board off, no SIM connected.
    pub fn new(description: RigDescription, backend: Box<dyn Backend>) -> Result<Rig, RigError> {
        let power = description
            .boards
            .iter()
            .map(|b| match b.power {
                PowerSwitch::None => PowerState::Unswitched,
                _ => PowerState::Unknown,
            })
            .collect();
        let sim = vec![SimState::Unknown; description.boards.len()];
        let mut rig = Rig {
            description,
            backend,
            power,
            sim,
        };
        rig.all_off()?;
        for i in 0..rig.description.boards.len() {
            let board = rig.description.boards.get(i);
            let switchable =
                board.is_some_and(|b| b.sim != SimSwitch::None && b.power != PowerSwitch::None);
            if switchable {
                if let Some(board) = board {
                    let result = rig.backend.select_sim(board, None);
                    rig.after(result)?;
                    if let Some(s) = rig.sim.get_mut(i) {
                        *s = SimState::Empty;
                    }
                }
            }
        }
        Ok(rig)
    }

    /// Opens the rig `description` describes, on the backend it names: the virtual rig keeps
    /// its card files (and the PINs it made up) in `scratch`; the real rig opens its
    /// controller's serial port.
    pub fn open(description: RigDescription, scratch: &Path) -> Result<Rig, RigError> {
        let backend: Box<dyn Backend> = match description.backend {
            crate::config::BackendKind::Virtual => Box::new(
                crate::virtual_rig::VirtualBackend::open(&description, scratch)?,
            ),
            crate::config::BackendKind::Real => {
                Box::new(crate::real::RealBackend::open(&description)?)
            }
        };
        Rig::new(description, backend)
    }

    /// The rig `description` describes, without touching it: [`check`](Rig::check) answers
    /// from the rig file and the backend's kind alone (to plan which tests run, before any
    /// hardware is opened); every other call fails.
    pub fn offline(description: RigDescription) -> Rig {
        let n = description.boards.len();
        Rig {
            backend: Box::new(Offline(description.backend)),
            power: vec![PowerState::Unknown; n],
            sim: vec![SimState::Unknown; n],
            description,
        }
    }

    /// The rig file it was built from.
    pub fn description(&self) -> &RigDescription {
        &self.description
    }

    /// The boards, in file order.
    pub fn boards(&self) -> &[Board] {
        &self.description.boards
    }

    /// The board called `name`.
    pub fn board(&self, name: &str) -> Result<&Board, RigError> {
        self.index(name).and_then(|i| {
            self.description
                .boards
                .get(i)
                .ok_or_else(|| self.unknown_board(name))
        })
    }

    /// What the rig knows about `board`'s power.
    pub fn power_state(&self, board: &str) -> Result<PowerState, RigError> {
        let i = self.index(board)?;
        Ok(self.power.get(i).copied().unwrap_or(PowerState::Unknown))
    }

    /// The slot connected to `board`'s SIM socket: `Ok(None)` for nothing; an error if the
    /// rig does not switch that board's SIM.
    pub fn selected_sim(&self, board: &str) -> Result<Option<&Slot>, RigError> {
        let i = self.index(board)?;
        match self.sim.get(i) {
            Some(SimState::Empty) => Ok(None),
            Some(SimState::Slot(s)) => Ok(self.description.slots.get(*s)),
            _ => Err(self.missing(i, Need::SimSwitch).into()),
        }
    }

    /// Whether the rig has what `need` asks for `board`; if not, why.
    pub fn check(&self, board: &str, need: Need) -> Result<(), Missing> {
        let i = match self.index(board) {
            Ok(i) => i,
            Err(e) => {
                return Err(Missing {
                    board: board.to_owned(),
                    need,
                    reason: e.to_string(),
                })
            }
        };
        match self.lacks(i, need) {
            None => Ok(()),
            Some(reason) => Err(Missing {
                board: board.to_owned(),
                need,
                reason,
            }),
        }
    }

    fn lacks(&self, i: usize, need: Need) -> Option<String> {
        let board = self.description.boards.get(i)?;
        let rig = &self.description.name;
        let switches_sim = board.sim != SimSwitch::None && board.power != PowerSwitch::None;
        match need {
            Need::PowerSwitch if board.power == PowerSwitch::None => {
                Some(format!("the rig file says power = \"none\" for {}", board.name))
            }
            Need::SimSwitch if board.sim == SimSwitch::None => {
                Some(format!("the rig file says sim = \"none\" for {}", board.name))
            }
            Need::SimSwitch if board.power == PowerSwitch::None => Some(format!(
                "{} has no power switch, and a SIM is switched only while its board is off",
                board.name
            )),
            Need::EmptySlot if !switches_sim => self.lacks(i, Need::SimSwitch),
            Need::EmptySlot if !self.description.slots.iter().any(|s| s.card.is_none()) => {
                Some(format!("rig {rig} has no empty SIM position"))
            }
            Need::Cards(n) if !switches_sim && n > 1 => self.lacks(i, Need::SimSwitch),
            Need::Cards(n) => {
                let have = self.description.slots.iter().filter(|s| s.card.is_some()).count();
                (have < usize::from(n))
                    .then(|| format!("rig {rig} has {have} card(s) on its SIM mux"))
            }
            Need::SacrificialCard if !switches_sim => self.lacks(i, Need::SimSwitch),
            Need::SacrificialCard => self.expendable_slot().is_none().then(|| {
                format!(
                    "rig {rig} has no card marked sacrificial = true (blocking an SO-PIN is permanent)"
                )
            }),
            Need::Hub if !matches!(board.power, PowerSwitch::Hub(_)) => Some(format!(
                "{} is not powered through a hub port (power = \"{}\")",
                board.name, board.power
            )),
            Need::Log if !board.firmware.is_tessera() => Some(format!(
                "{} runs the {} firmware, which has no log output",
                board.name,
                FirmwareProfile::Stock
            )),
            Need::TesseraFirmware if !board.firmware.is_tessera() => Some(format!(
                "{} runs the {} firmware",
                board.name,
                FirmwareProfile::Stock
            )),
            Need::Probe
                if board.probe.is_none()
                    && self.description.backend == crate::config::BackendKind::Real =>
            {
                Some(format!("the rig file gives {} no probe", board.name))
            }
            Need::HotSwap if !switches_sim => self.lacks(i, Need::SimSwitch),
            Need::HotSwap
                if self
                    .description
                    .controller
                    .as_ref()
                    .is_some_and(|c| !c.hot_swap) =>
            {
                Some(format!(
                    "rig {rig}'s controller is not declared to have INSERT and EJECT (hot_swap = true)"
                ))
            }
            _ => self.backend.lacks(board, need),
        }
    }

    /// The first slot holding a card that tests may damage for good, if any.
    pub fn expendable_slot(&self) -> Option<&Slot> {
        self.description.slots.iter().find(|s| {
            s.card
                .as_ref()
                .is_some_and(|c| self.description.is_expendable(c))
        })
    }

    /// The first empty slot, if any.
    pub fn empty_slot(&self) -> Option<&Slot> {
        self.description.slots.iter().find(|s| s.card.is_none())
    }

    /// The slots that hold cards, in file order.
    pub fn card_slots(&self) -> Vec<&Slot> {
        self.description
            .slots
            .iter()
            .filter(|s| s.card.is_some())
            .collect()
    }

    /// Switches `board` on.
    pub fn power_on(&mut self, board: &str) -> Result<(), RigError> {
        self.set_power(board, true)
    }

    /// Switches `board` off.
    pub fn power_off(&mut self, board: &str) -> Result<(), RigError> {
        self.set_power(board, false)
    }

    fn set_power(&mut self, name: &str, on: bool) -> Result<(), RigError> {
        let i = self.index(name)?;
        self.call(name, Some(Need::PowerSwitch), |backend, b| {
            backend.set_power(b, on)
        })?;
        if let Some(p) = self.power.get_mut(i) {
            *p = if on { PowerState::On } else { PowerState::Off };
        }
        Ok(())
    }

    /// Connects slot `slot` (by name), or nothing, to `board`'s SIM socket, break-before-make.
    /// Refused unless `board` is off, and if the slot's card is connected to another board.
    pub fn select_sim(&mut self, board: &str, slot: Option<&str>) -> Result<(), RigError> {
        let i = self.index(board)?;
        if let Some(reason) = self.lacks(i, Need::SimSwitch) {
            return Err(self.missing_because(i, Need::SimSwitch, reason).into());
        }
        let slot_index = match slot {
            None => None,
            Some(name) => Some(
                self.description
                    .slots
                    .iter()
                    .position(|s| s.name == name)
                    .ok_or_else(|| self.unknown_slot(name))?,
            ),
        };
        let state = self.power.get(i).copied().unwrap_or(PowerState::Unknown);
        if !state.is_off() {
            return Err(RigError::Refused {
                board: board.to_owned(),
                reason: format!(
                    "a SIM is switched only while its board is off (it is {state:?}): power_off first"
                ),
            });
        }
        if let Some(s) = slot_index {
            let elsewhere = self
                .sim
                .iter()
                .enumerate()
                .find(|(j, st)| *j != i && **st == SimState::Slot(s));
            if let Some((j, _)) = elsewhere {
                let other = self
                    .description
                    .boards
                    .get(j)
                    .map_or("?", |b| b.name.as_str());
                return Err(RigError::Refused {
                    board: board.to_owned(),
                    reason: format!(
                        "slot {} is connected to board {other}: select another SIM there first",
                        slot.unwrap_or_default()
                    ),
                });
            }
        }
        let result = match self.description.boards.get(i) {
            Some(b) => self
                .backend
                .select_sim(b, slot_index.and_then(|s| self.description.slots.get(s))),
            None => Err(self.unknown_board(board)),
        };
        self.after(result)?;
        if let Some(st) = self.sim.get_mut(i) {
            *st = slot_index.map_or(SimState::Empty, SimState::Slot);
        }
        Ok(())
    }

    /// Pushes the card in slot `slot` into `board`'s empty socket, whether the board is on or
    /// off: what a user does with a running token. Refused unless the socket is empty (as
    /// this rig knows it) and the slot's card is on no other board.
    pub fn insert_sim(&mut self, board: &str, slot: &str) -> Result<(), RigError> {
        let i = self.index(board)?;
        if let Some(reason) = self.lacks(i, Need::HotSwap) {
            return Err(self.missing_because(i, Need::HotSwap, reason).into());
        }
        let s = self
            .description
            .slots
            .iter()
            .position(|x| x.name == slot)
            .ok_or_else(|| self.unknown_slot(slot))?;
        if self.sim.get(i) != Some(&SimState::Empty) {
            return Err(RigError::Refused {
                board: board.to_owned(),
                reason: "its SIM socket is not empty: pull_sim or select_sim(None) first"
                    .to_owned(),
            });
        }
        if let Some(j) = self.sim.iter().position(|st| *st == SimState::Slot(s)) {
            let other = self
                .description
                .boards
                .get(j)
                .map_or("?", |b| b.name.as_str());
            return Err(RigError::Refused {
                board: board.to_owned(),
                reason: format!("slot {slot} is connected to board {other}"),
            });
        }
        let result = match (
            self.description.boards.get(i),
            self.description.slots.get(s),
        ) {
            (Some(b), Some(sl)) => self.backend.insert_sim(b, sl),
            _ => Err(self.unknown_board(board)),
        };
        self.after(result)?;
        if let Some(st) = self.sim.get_mut(i) {
            *st = SimState::Slot(s);
        }
        Ok(())
    }

    /// Pulls the card out of `board`'s socket `after` from now, whether the board is on or
    /// off (start a command, then let the card leave in the middle of it). The rig counts the
    /// socket as empty from this call on. Refused if it holds no card.
    pub fn pull_sim(&mut self, board: &str, after: Duration) -> Result<(), RigError> {
        let i = self.index(board)?;
        if let Some(reason) = self.lacks(i, Need::HotSwap) {
            return Err(self.missing_because(i, Need::HotSwap, reason).into());
        }
        if !matches!(self.sim.get(i), Some(SimState::Slot(_))) {
            return Err(RigError::Refused {
                board: board.to_owned(),
                reason: "its SIM socket holds no card".to_owned(),
            });
        }
        self.call(board, None, |backend, b| backend.pull_sim(b, after))?;
        if let Some(st) = self.sim.get_mut(i) {
            *st = SimState::Empty;
        }
        Ok(())
    }

    /// The NotifySlotChange messages `board` sent since the last call (slot 0: present,
    /// changed), oldest first.
    pub fn slot_changes(&mut self, board: &str) -> Result<Vec<SlotChange>, RigError> {
        self.call(board, Some(Need::SlotChanges), |backend, b| {
            backend.slot_changes(b)
        })
    }

    /// Lets `d` pass on the rig's clock (wall time on a real rig, modelled time on the virtual
    /// one), e.g. between polls.
    pub fn pause(&mut self, d: Duration) {
        self.backend.pause(d);
    }

    /// Waits until `board` is enumerated on USB. [`RigErrorKind::Timeout`] if it is not
    /// within `timeout` (the expected outcome for a require-card board without a card).
    pub fn wait_enumerated(
        &mut self,
        board: &str,
        timeout: Duration,
    ) -> Result<UsbSighting, RigError> {
        self.call(board, None, |backend, b| {
            backend.wait_enumerated(b, timeout)
        })
    }

    /// Waits until `board` is gone from USB. [`RigErrorKind::Timeout`] if it is still there
    /// after `timeout`.
    pub fn wait_absent(&mut self, board: &str, timeout: Duration) -> Result<(), RigError> {
        self.call(board, None, |backend, b| backend.wait_absent(b, timeout))
    }

    /// Opens a transport to the card behind `board` (enumerated, so powered).
    pub fn open_transport(
        &mut self,
        board: &str,
        via: Via,
    ) -> Result<Box<dyn RigTransport>, RigError> {
        self.open_transport_with(board, via, TransportOptions::default())
    }

    /// [`open_transport`](Rig::open_transport) with `options` (a response timeout).
    pub fn open_transport_with(
        &mut self,
        board: &str,
        via: Via,
        options: TransportOptions,
    ) -> Result<Box<dyn RigTransport>, RigError> {
        self.call(board, Some(Need::Transport(via)), |backend, b| {
            backend.open_transport(b, via, options)
        })
    }

    /// The way applications reach `board`'s card on this rig: PC/SC where the backend has
    /// it, else CCID over USB.
    pub fn default_via(&self, board: &str) -> Via {
        match self.check(board, Need::Transport(Via::Pcsc)) {
            Ok(()) => Via::Pcsc,
            Err(_) => Via::Usb,
        }
    }

    /// Flashes the ELF image at `elf` to `board` (powered, with a probe), verifies it and
    /// resets the board.
    pub fn flash(&mut self, board: &str, elf: &Path) -> Result<(), RigError> {
        let i = self.index(board)?;
        if let Some(reason) = self.lacks(i, Need::Probe) {
            return Err(self.missing_because(i, Need::Probe, reason).into());
        }
        if self.power.get(i).is_some_and(|p| p.is_off()) {
            return Err(RigError::Refused {
                board: board.to_owned(),
                reason: "the board is off: power_on before flashing".to_owned(),
            });
        }
        let result = match self.description.boards.get(i) {
            Some(b) => self.backend.flash(b, elf),
            None => Err(self.unknown_board(board)),
        };
        self.after(result)
    }

    /// `board`'s log records since the last call.
    pub fn take_log(&mut self, board: &str) -> Result<Vec<LogRecord>, RigError> {
        self.call(board, Some(Need::Log), |backend, b| backend.take_log(b))
    }

    /// The PINs of the card in slot `slot`, read from where the rig file says (environment,
    /// file, or the virtual backend). A PIN the file does not mention is `None`.
    pub fn card_pins(&mut self, slot: &str) -> Result<CardPins, RigError> {
        let s = self
            .description
            .slot(slot)
            .ok_or_else(|| self.unknown_slot(slot))?;
        let Some(card) = s.card.clone() else {
            return Err(RigError::Backend {
                message: format!("slot {slot} holds no card"),
            });
        };
        let user = match &card.user_pin {
            None => None,
            Some(source) => {
                let text = self.read_pin(&card, PinRole::User, source)?;
                Some(Pin::new(text.trim()).map_err(|e| pin_error(&card, PinRole::User, e))?)
            }
        };
        let so = match &card.so_pin {
            None => None,
            Some(source) => {
                let text = self.read_pin(&card, PinRole::So, source)?;
                Some(SoPin::from_hex(text.trim()).map_err(|e| pin_error(&card, PinRole::So, e))?)
            }
        };
        Ok(CardPins { user, so })
    }

    fn read_pin(
        &mut self,
        card: &Card,
        role: PinRole,
        source: &PinSource,
    ) -> Result<Zeroizing<String>, RigError> {
        match source {
            PinSource::Env(name) => std::env::var(name).map(Zeroizing::new).map_err(|_| {
                pin_error(
                    card,
                    role,
                    format!("environment variable {name} is not set (or not UTF-8)"),
                )
            }),
            PinSource::File(path) => {
                let text = std::fs::read_to_string(path)
                    .map(Zeroizing::new)
                    .map_err(|e| {
                        pin_error(card, role, format!("cannot read {}: {e}", path.display()))
                    })?;
                Ok(Zeroizing::new(
                    text.lines().next().unwrap_or_default().to_owned(),
                ))
            }
            PinSource::Generated => self.backend.generated_pin(card, role),
        }
    }

    /// Switches every board off. The rig knows every switched board as off afterwards, or as
    /// [`PowerState::Unknown`] if this failed.
    pub fn all_off(&mut self) -> Result<(), RigError> {
        let result = self.backend.all_off();
        let state = if result.is_ok() {
            PowerState::Off
        } else {
            PowerState::Unknown
        };
        for (p, b) in self.power.iter_mut().zip(&self.description.boards) {
            if b.power != PowerSwitch::None {
                *p = state;
            }
        }
        result
    }

    /// Switches every board off and ends the rig.
    pub fn shutdown(mut self) -> Result<(), RigError> {
        self.all_off()
    }

    /// Calls the backend for `board` after checking `need` (if any), with the rig-failure rule
    /// applied to the result.
    fn call<T>(
        &mut self,
        board: &str,
        need: Option<Need>,
        f: impl FnOnce(&mut dyn Backend, &Board) -> Result<T, RigError>,
    ) -> Result<T, RigError> {
        let i = self.index(board)?;
        if let Some(need) = need {
            if let Some(reason) = self.lacks(i, need) {
                return Err(self.missing_because(i, need, reason).into());
            }
        }
        let result = match self.description.boards.get(i) {
            Some(b) => f(self.backend.as_mut(), b),
            None => Err(self.unknown_board(board)),
        };
        self.after(result)
    }

    /// On a rig failure, every board off before the error goes up.
    fn after<T>(&mut self, result: Result<T, RigError>) -> Result<T, RigError> {
        if let Err(e) = &result {
            if e.is_rig_failure() {
                let _ = self.all_off();
            }
        }
        result
    }

    fn index(&self, name: &str) -> Result<usize, RigError> {
        self.description
            .boards
            .iter()
            .position(|b| b.name == name)
            .ok_or_else(|| self.unknown_board(name))
    }

    fn unknown_board(&self, name: &str) -> RigError {
        RigError::UnknownBoard {
            rig: self.description.name.clone(),
            name: name.to_owned(),
            known: join(self.description.boards.iter().map(|b| b.name.as_str())),
        }
    }

    fn unknown_slot(&self, name: &str) -> RigError {
        RigError::UnknownSlot {
            rig: self.description.name.clone(),
            name: name.to_owned(),
            known: join(self.description.slots.iter().map(|s| s.name.as_str())),
        }
    }

    fn missing(&self, i: usize, need: Need) -> Missing {
        let reason = self
            .lacks(i, need)
            .unwrap_or_else(|| "not available".to_owned());
        self.missing_because(i, need, reason)
    }

    fn missing_because(&self, i: usize, need: Need, reason: String) -> Missing {
        Missing {
            board: self
                .description
                .boards
                .get(i)
                .map_or_else(String::new, |b| b.name.clone()),
            need,
            reason,
        }
    }
}

/// The backend of [`Rig::offline`]: it knows what its kind lacks, and does nothing.
struct Offline(crate::config::BackendKind);

impl Offline {
    fn refuse(&self) -> RigError {
        RigError::Backend {
            message: "this rig was opened offline, to plan tests: it drives nothing".to_owned(),
        }
    }
}

impl Backend for Offline {
    fn set_power(&mut self, _: &Board, _: bool) -> Result<(), RigError> {
        Err(self.refuse())
    }
    fn select_sim(&mut self, _: &Board, _: Option<&Slot>) -> Result<(), RigError> {
        Err(self.refuse())
    }
    fn all_off(&mut self) -> Result<(), RigError> {
        // Nothing was switched on.
        Ok(())
    }
    fn wait_enumerated(&mut self, _: &Board, _: Duration) -> Result<UsbSighting, RigError> {
        Err(self.refuse())
    }
    fn wait_absent(&mut self, _: &Board, _: Duration) -> Result<(), RigError> {
        Err(self.refuse())
    }
    fn open_transport(
        &mut self,
        _: &Board,
        _: Via,
        _: TransportOptions,
    ) -> Result<Box<dyn RigTransport>, RigError> {
        Err(self.refuse())
    }
    fn flash(&mut self, _: &Board, _: &Path) -> Result<(), RigError> {
        Err(self.refuse())
    }
    fn take_log(&mut self, _: &Board) -> Result<Vec<LogRecord>, RigError> {
        Err(self.refuse())
    }
    fn lacks(&self, board: &Board, need: Need) -> Option<String> {
        match self.0 {
            crate::config::BackendKind::Virtual => crate::virtual_rig::lacks(need),
            crate::config::BackendKind::Real => crate::real::lacks(board, need),
        }
    }
}

impl Drop for Rig {
    fn drop(&mut self) {
        let _ = self.all_off();
    }
}

fn join<'a>(names: impl Iterator<Item = &'a str>) -> String {
    let names: Vec<&str> = names.collect();
    if names.is_empty() {
        "none".to_owned()
    } else {
        names.join(", ")
    }
}

fn pin_error(card: &Card, role: PinRole, message: impl fmt::Display) -> RigError {
    RigError::Pin {
        card: card.label.clone(),
        role,
        message: message.to_string(),
    }
}
