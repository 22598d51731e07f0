//! The virtual rig's [`Backend`]: virtual boards running the real bridge code
//! (`tessera-board`), virtual cards in virtual SIM slots (one card file each in a scratch
//! directory, so a card keeps its state across power cycles and moves between boards), a
//! virtual USB bus, and power and SIM switching through an in-process
//! [`VirtualController`] that speaks `rig/PROTOCOL.md` through the same [`ControllerClient`]
//! a real rig uses.
//!
//! # Time
//!
//! One modelled clock for the whole rig. Every board runs in modelled time (no wall clock):
//! a wait runs the boards forward until what is waited for happens or the timeout passes,
//! and a transport's CCID exchange runs its board while the host waits for the answer. After
//! either, every other board is brought to the same instant, and the controller's watchdog is
//! fed as the real backend's keep-alive thread feeds it (a `STATUS` at least every second of
//! modelled time). A card pulled "`after` from now" leaves its socket at that modelled instant,
//! so it can leave in the middle of a command.
//!
//! # Cards
//!
//! At [`VirtualBackend::open`] every card named in the rig file gets its file
//! `<scratch>/<label>.card` (created with an identity derived from the label if it does not
//! exist) and, if the file is new, is initialised with a user PIN and SO-PIN made up here and
//! kept in `<scratch>/<label>.pins` (mode 0600), which [`Backend::generated_pin`] reads.
//! A card connected to a board's socket is the card on its contacts
//! (`tessera_card::contacts::Contacts`) on that file; disconnecting drops it, and its state
//! is in the file, committed atomically, as a real card's is in its EEPROM.
//!
//! # What is not modelled
//!
//! A board running the stock firmware (the rig file refuses `firmware = "stock"` on a
//! virtual rig), SWD probes (nothing to flash: the bridge is compiled in), PC/SC (pcscd
//! cannot see the virtual USB bus; `tessera virtual serve` serves virtual cards to pcscd).

use std::cell::RefCell;
use std::collections::VecDeque;
use std::fmt;
use std::io;
use std::path::{Path, PathBuf};
use std::rc::Rc;
use std::time::Duration;

use tessera_board::{BoardConfig, CleanLine, TraceEvent, VirtualBoard};
use tessera_bridge::{BootPolicy, Exchange};
use tessera_card::contacts::ContactsConfig;
use tessera_card::memory::FileStorage;
use tessera_card::virtual_card::{AtrProfile, CardConfig, VirtualCard};
use tessera_ccid::{MessageType, NotifySlotChange};
use tessera_host::{CcidConfig, CcidTransport, UsbPipe};
use tessera_sc_hsm::{InitParams, Pin, PinRole, ScHsm, SoPin, TransportError, TransportErrorKind};
use zeroize::Zeroizing;

use crate::config::UsbId;
use crate::config::{
    Board, Card, FirmwareProfile, PowerSwitch, RigDescription, SimSwitch, Slot, VirtualAtr,
};
use crate::controller::protocol::{Frame, Request};
use crate::controller::{
    ClientConfig, ControllerClient, ControllerSpec, Link, SwitchEvent, VirtualController,
};
use crate::rig::{
    Backend, LogLevel, LogRecord, Need, RigError, RigTransport, SlotChange, TransportOptions,
    UsbSighting, Via,
};

/// The modelled interval at which the host feeds the controller's watchdog (the real
/// backend's keep-alive thread does the same in wall time).
const KEEPALIVE: Duration = Duration::from_secs(1);

/// The longest modelled step a wait takes before other boards and the controller catch up.
const STEP: Duration = Duration::from_millis(100);

type Line = CleanLine;

/// One virtual board and how the controller reaches it.
struct Node {
    name: String,
    board: VirtualBoard<Line>,
    channel: Option<u8>,
    mux: Option<u8>,
    /// Bumped at every power-off: a transport opened before it fails from then on, as a
    /// libusb handle of a device that went away does.
    generation: u64,
    /// Power-ups of cards connected to this board (seeds each card's random generator).
    insertions: u64,
}

/// Everything the rig's clock moves: the boards and the controller.
struct World {
    now: Duration,
    last_keepalive: Duration,
    controller: VirtualController,
    nodes: Vec<Node>,
    /// Card file per SIM position, from the rig file.
    positions: Vec<(u8, Option<CardSpec>)>,
    /// Bytes the controller answered that the client has not read.
    to_host: VecDeque<u8>,
    /// The first failure applying a controller event (a card file that would not open).
    fault: Option<String>,
}

/// What the backend needs to put a card into a socket.
#[derive(Clone)]
struct CardSpec {
    label: String,
    path: PathBuf,
    atr: AtrProfile,
}

impl World {
    /// Brings every board and the controller to `to` (never backwards), feeding the watchdog
    /// as the host's keep-alive does and applying the controller's switch events.
    fn advance_to(&mut self, to: Duration) {
        while self.now < to {
            if self.now >= self.last_keepalive + KEEPALIVE {
                self.keepalive();
            }
            let step = self.next_stop().min(to);
            for node in &mut self.nodes {
                if node.board.now() < step {
                    node.board.run_until(step);
                }
            }
            self.now = step;
            self.controller.poll(self.now);
            self.apply_events();
        }
        self.controller.poll(self.now);
        self.apply_events();
    }

    /// The next instant the rig must stop at: the next keep-alive (after one, a whole period
    /// ahead, so each step moves) or a pending `EJECT`'s break.
    fn next_stop(&self) -> Duration {
        // A keep-alive that is due now goes out at the start of the next step.
        let keepalive = (self.last_keepalive + KEEPALIVE).max(self.now + KEEPALIVE.min(STEP));
        self.controller
            .next_eject()
            .filter(|at| *at > self.now)
            .map_or(keepalive, |at| at.min(keepalive))
    }

    /// What the host's keep-alive thread sends: `STATUS`, its answer thrown away. It uses
    /// sequence number 0, which the client's own requests skip only after 65535 of them; a
    /// resent line is answered from the controller's memory, which feeds the watchdog too.
    fn keepalive(&mut self) {
        let line = Frame::encode(0, &Request::Status);
        let _ = self
            .controller
            .handle_line(line.trim_end_matches('\n'), self.now);
        self.last_keepalive = self.now;
    }

    /// Brings the rig clock up to a board that ran ahead (a transport's exchange).
    fn catch_up(&mut self, index: usize) {
        if let Some(t) = self.nodes.get(index).map(|n| n.board.now()) {
            self.advance_to(t);
        }
    }

    fn apply_events(&mut self) {
        for event in self.controller.take_events() {
            match event {
                SwitchEvent::Power { channel, on } => {
                    for node in self.nodes.iter_mut().filter(|n| n.channel == Some(channel)) {
                        set_power(node, on);
                    }
                }
                SwitchEvent::Disconnect { mux } => {
                    for node in self.nodes.iter_mut().filter(|n| n.mux == Some(mux)) {
                        drop(node.board.remove_card());
                    }
                }
                SwitchEvent::Connect { mux, position } => {
                    let spec = self
                        .positions
                        .iter()
                        .find(|(p, _)| *p == position)
                        .and_then(|(_, c)| c.clone());
                    let Some(spec) = spec else { continue };
                    let Some(node) = self.nodes.iter_mut().find(|n| n.mux == Some(mux)) else {
                        continue;
                    };
                    if let Err(e) = connect_card(node, &spec) {
                        self.fault.get_or_insert(e);
                    }
                }
                SwitchEvent::WatchdogTrip => {
                    for node in &mut self.nodes {
                        set_power(node, false);
                        drop(node.board.remove_card());
                    }
                }
            }
        }
    }
}

fn set_power(node: &mut Node, on: bool) {
    if on && !node.board.is_powered() {
        node.board.power_on();
    } else if !on && node.board.is_powered() {
        node.board.power_off();
        node.generation = node.generation.wrapping_add(1);
    }
}

fn connect_card(node: &mut Node, spec: &CardSpec) -> Result<(), String> {
    node.insertions = node.insertions.wrapping_add(1);
    let mut rng_seed = seed_of(&spec.label);
    for (b, n) in rng_seed.iter_mut().zip(node.insertions.to_le_bytes()) {
        *b ^= n;
    }
    if let Some(b) = rng_seed.get_mut(31) {
        *b ^= 0x5A;
    }
    let config = CardConfig {
        atr: spec.atr,
        ..CardConfig::default()
    };
    let card = tessera_board::new_card(
        FileStorage::new(&spec.path),
        config,
        ContactsConfig::default(),
        seed_of(&spec.label),
        rng_seed,
    )
    .map_err(|e| format!("card {}: {e}", spec.label))?;
    drop(node.board.remove_card());
    node.board
        .insert_card(card)
        .map_err(|_| format!("card {}: the socket of {} is full", spec.label, node.name))
}

/// A card's identity seed, from its label: the same label makes the same card, on any run.
fn seed_of(label: &str) -> [u8; 32] {
    // FNV-1a, spread over 32 bytes; identity, not secrecy (these are test cards).
    let mut seed = [0u8; 32];
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for (i, chunk) in seed.chunks_mut(8).enumerate() {
        for b in label.bytes().chain([u8::try_from(i).unwrap_or(0)]) {
            h ^= u64::from(b);
            h = h.wrapping_mul(0x0000_0100_0000_01B3);
        }
        chunk.copy_from_slice(&h.to_le_bytes());
    }
    seed
}

/// The controller link inside the process: bytes go straight to the virtual controller at
/// the rig's modelled time; its answer is there at once.
struct InProcessLink(Rc<RefCell<World>>);

impl Link for InProcessLink {
    fn send(&mut self, bytes: &[u8]) -> io::Result<()> {
        let mut world = self.0.borrow_mut();
        let now = world.now;
        let answer = world.controller.receive(bytes, now);
        world.to_host.extend(answer);
        world.last_keepalive = now;
        Ok(())
    }

    fn receive(&mut self, buf: &mut [u8], _timeout: Duration) -> io::Result<usize> {
        let mut world = self.0.borrow_mut();
        let n = buf.len().min(world.to_host.len());
        for (dst, src) in buf.iter_mut().zip(world.to_host.drain(..n)) {
            *dst = src;
        }
        Ok(n)
    }

    fn discard_input(&mut self) -> io::Result<()> {
        self.0.borrow_mut().to_host.clear();
        Ok(())
    }
}

/// The virtual rig.
pub struct VirtualBackend {
    world: Rc<RefCell<World>>,
    client: ControllerClient<InProcessLink>,
    scratch: PathBuf,
}

impl fmt::Debug for VirtualBackend {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("VirtualBackend")
            .field("scratch", &self.scratch)
            .finish_non_exhaustive()
    }
}

impl VirtualBackend {
    /// Builds the virtual rig `description` names, its card files in `scratch` (created if
    /// missing): boards off, no SIM connected, new cards initialised with PINs made up here.
    pub fn open(description: &RigDescription, scratch: &Path) -> Result<VirtualBackend, RigError> {
        let fail = |message: String| RigError::Backend { message };
        std::fs::create_dir_all(scratch)
            .map_err(|e| fail(format!("scratch directory {}: {e}", scratch.display())))?;
        let mut positions = Vec::new();
        for slot in &description.slots {
            let card = match &slot.card {
                None => None,
                Some(card) => Some(prepare_card(card, scratch)?),
            };
            positions.push((slot.position, card));
        }
        let mut nodes = Vec::new();
        for (i, board) in description.boards.iter().enumerate() {
            let policy = match board.firmware {
                FirmwareProfile::TesseraRequireCard => BootPolicy::RequireCard,
                FirmwareProfile::TesseraReader => BootPolicy::Reader,
                FirmwareProfile::Stock => {
                    return Err(fail(format!(
                        "board {}: a virtual board runs Tessera's bridge, not the stock firmware",
                        board.name
                    )))
                }
            };
            // The firmware's configuration: the stock identity at TPDU level.
            let mut config = BoardConfig::new(policy, Exchange::Tpdu);
            config.board_serial = format!("TESSERA-VBOARD-{:04}", i + 1);
            // The trace is the board's log; it keeps raw bytes, which take_log never shows.
            config.trace = true;
            let vboard = VirtualBoard::new(config)
                .map_err(|e| fail(format!("board {}: {e}", board.name)))?;
            nodes.push(Node {
                name: board.name.clone(),
                board: vboard,
                channel: match board.power {
                    PowerSwitch::Controller(c) => Some(c),
                    _ => None,
                },
                mux: match board.sim {
                    SimSwitch::Controller(m) => Some(m),
                    SimSwitch::None => None,
                },
                generation: 0,
                insertions: 0,
            });
        }
        let (channels, muxes) = description.controller_channels();
        let spec = ControllerSpec::new(channels, muxes, description.controller_positions());
        let world = Rc::new(RefCell::new(World {
            now: Duration::ZERO,
            last_keepalive: Duration::ZERO,
            controller: VirtualController::new(spec),
            nodes,
            positions,
            to_host: VecDeque::new(),
            fault: None,
        }));
        let client =
            ControllerClient::connect(InProcessLink(Rc::clone(&world)), ClientConfig::default())?;
        let mut backend = VirtualBackend {
            world,
            client,
            scratch: scratch.to_owned(),
        };
        backend.settle()?;
        Ok(backend)
    }

    /// The rig's modelled time.
    pub fn now(&self) -> Duration {
        self.world.borrow().now
    }

    /// Applies what the controller did and reports a card that failed to connect.
    fn settle(&mut self) -> Result<(), RigError> {
        let mut world = self.world.borrow_mut();
        let now = world.now;
        world.advance_to(now);
        match world.fault.take() {
            Some(message) => Err(RigError::Backend { message }),
            None => Ok(()),
        }
    }

    fn index(&self, board: &Board) -> Result<usize, RigError> {
        self.world
            .borrow()
            .nodes
            .iter()
            .position(|n| n.name == board.name)
            .ok_or_else(|| RigError::Backend {
                message: format!("board {} is not on this virtual rig", board.name),
            })
    }

    /// Runs the rig until `done` holds for `board` or `timeout` of modelled time passed;
    /// whether it held.
    fn wait(
        &mut self,
        board: &Board,
        timeout: Duration,
        done: impl Fn(&VirtualBoard<Line>) -> bool,
    ) -> Result<bool, RigError> {
        let i = self.index(board)?;
        let mut world = self.world.borrow_mut();
        let start = world.now;
        let deadline = start + timeout;
        loop {
            let now = world.now;
            let step_end = deadline.min(now + STEP).min(world.next_stop());
            let Some(node) = world.nodes.get_mut(i) else {
                return Ok(false);
            };
            if done(&node.board) {
                return Ok(true);
            }
            if now >= deadline {
                return Ok(false);
            }
            let held = node
                .board
                .run_until_true(step_end.saturating_sub(node.board.now()), |b| done(b));
            let t = if held { node.board.now() } else { step_end };
            world.advance_to(t);
            if held {
                return Ok(true);
            }
        }
    }

    fn sighting(&self, board: &Board) -> Result<Option<UsbSighting>, RigError> {
        let i = self.index(board)?;
        let world = self.world.borrow();
        let Some(node) = world.nodes.get(i) else {
            return Ok(None);
        };
        let b = &node.board;
        if !(b.is_attached() && b.is_configured()) {
            return Ok(None);
        }
        let identity = b.identity();
        Ok(Some(UsbSighting {
            id: UsbId {
                vid: identity.vendor_id,
                pid: identity.product_id,
            },
            path: Some(format!("virtual-{}", i + 1)),
            manufacturer: Some(identity.manufacturer.to_owned()),
            product: Some(identity.product.to_owned()),
            serial: b.serial().map(str::to_owned),
        }))
    }
}

/// Creates (if new) and initialises the card file for `card`, with its PINs file.
fn prepare_card(card: &Card, scratch: &Path) -> Result<CardSpec, RigError> {
    let fail = |message: String| RigError::Backend { message };
    let path = scratch.join(format!("{}.card", card.label));
    let pins_path = pins_path(scratch, &card.label);
    let atr = match card.virtual_card.as_ref().map(|v| v.atr) {
        Some(VirtualAtr::V4) => AtrProfile::V4,
        _ => AtrProfile::V3,
    };
    if !path.exists() {
        // Made under a temporary name and renamed into place last, with its PINs written
        // first: an interrupted set-up leaves no card whose PINs are unknown.
        let user = Zeroizing::new(random_digits(6)?);
        let so = Zeroizing::new(random_hex(16)?);
        let params = InitParams::new(
            SoPin::from_hex(&so).map_err(|e| fail(format!("card {}: {e}", card.label)))?,
            Pin::new(&user).map_err(|e| fail(format!("card {}: {e}", card.label)))?,
        );
        write_private(&pins_path, &format!("user={}\nso={}\n", &*user, &*so))
            .map_err(|e| fail(format!("card {}: {}: {e}", card.label, pins_path.display())))?;
        let new_path = scratch.join(format!("{}.card.new", card.label));
        let _ = std::fs::remove_file(&new_path);
        let seed = seed_of(&card.label);
        let config = CardConfig {
            atr,
            ..CardConfig::default()
        };
        let vcard = VirtualCard::open(&new_path, config, seed, seed)
            .map_err(|e| fail(format!("card {} ({}): {e}", card.label, new_path.display())))?;
        let mut hsm = ScHsm::open(vcard)
            .map_err(|e| fail(format!("card {}: selecting the applet: {e}", card.label)))?;
        hsm.initialise(&params)
            .map_err(|e| fail(format!("card {}: initialising: {e}", card.label)))?;
        drop(hsm);
        std::fs::rename(&new_path, &path)
            .map_err(|e| fail(format!("card {}: {}: {e}", card.label, path.display())))?;
    }
    Ok(CardSpec {
        label: card.label.clone(),
        path,
        atr,
    })
}

fn pins_path(scratch: &Path, label: &str) -> PathBuf {
    scratch.join(format!("{label}.pins"))
}

fn random_bytes(n: usize) -> Result<Vec<u8>, RigError> {
    let mut bytes = vec![0u8; n];
    getrandom::getrandom(&mut bytes).map_err(|e| RigError::Backend {
        message: format!("the operating system's random generator failed: {e}"),
    })?;
    Ok(bytes)
}

fn random_digits(n: usize) -> Result<String, RigError> {
    // 250 is the largest multiple of 10 in a byte: rejection keeps the digits uniform.
    let mut out = String::with_capacity(n);
    while out.len() < n {
        for b in random_bytes(n)? {
            if b < 250 && out.len() < n {
                out.push(char::from(b'0' + b % 10));
            }
        }
    }
    Ok(out)
}

fn random_hex(n: usize) -> Result<String, RigError> {
    Ok(random_bytes(n.div_ceil(2))?
        .iter()
        .map(|b| format!("{b:02X}"))
        .collect::<String>()
        .chars()
        .take(n)
        .collect())
}

/// Writes `text` to a new file only its owner can read.
fn write_private(path: &Path, text: &str) -> io::Result<()> {
    use std::io::Write;
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    let mut file = options.open(path)?;
    file.write_all(text.as_bytes())?;
    file.sync_all()
}

impl Backend for VirtualBackend {
    fn set_power(&mut self, board: &Board, on: bool) -> Result<(), RigError> {
        match board.power {
            PowerSwitch::Controller(channel) => self.client.power(channel, on)?,
            _ => {
                return Err(RigError::Backend {
                    message: format!("board {} has no virtual power switch", board.name),
                })
            }
        }
        self.settle()
    }

    fn select_sim(&mut self, board: &Board, slot: Option<&Slot>) -> Result<(), RigError> {
        match board.sim {
            SimSwitch::Controller(mux) => self.client.select_sim(mux, slot.map(|s| s.position))?,
            SimSwitch::None => {
                return Err(RigError::Backend {
                    message: format!("board {} has no virtual SIM mux", board.name),
                })
            }
        }
        self.settle()
    }

    fn insert_sim(&mut self, board: &Board, slot: &Slot) -> Result<(), RigError> {
        match board.sim {
            SimSwitch::Controller(mux) => self.client.insert_sim(mux, slot.position)?,
            SimSwitch::None => {
                return Err(RigError::Backend {
                    message: format!("board {} has no virtual SIM mux", board.name),
                })
            }
        }
        self.settle()
    }

    fn pull_sim(&mut self, board: &Board, after: Duration) -> Result<(), RigError> {
        let SimSwitch::Controller(mux) = board.sim else {
            return Err(RigError::Backend {
                message: format!("board {} has no virtual SIM mux", board.name),
            });
        };
        let delay_ms = u16::try_from(after.as_millis()).map_err(|_| RigError::Backend {
            message: format!("board {}: a pull at most 10 s ahead", board.name),
        })?;
        // The controller breaks the contacts when the rig's clock reaches the instant: every
        // run of the rig, and every wait of a transport, stops there (`World::next_stop`).
        self.client.eject_sim(mux, delay_ms)?;
        self.settle()
    }

    fn all_off(&mut self) -> Result<(), RigError> {
        let result = self.client.all_off().map_err(RigError::from);
        // Whatever the controller said, the virtual boards go off.
        {
            let mut world = self.world.borrow_mut();
            for node in &mut world.nodes {
                set_power(node, false);
            }
        }
        self.settle()?;
        result
    }

    fn slot_changes(&mut self, board: &Board) -> Result<Vec<SlotChange>, RigError> {
        let i = self.index(board)?;
        let mut world = self.world.borrow_mut();
        let Some(node) = world.nodes.get_mut(i) else {
            return Ok(Vec::new());
        };
        let mut out = Vec::new();
        while let Some(message) = node.board.receive_interrupt(Duration::ZERO) {
            let Ok(view) = NotifySlotChange::new_checked(message.as_slice()) else {
                continue;
            };
            if view.message_type() == MessageType::NotifySlotChange {
                out.extend(view.slot(0));
            }
        }
        Ok(out)
    }

    fn pause(&mut self, d: Duration) {
        let mut world = self.world.borrow_mut();
        let to = world.now + d;
        world.advance_to(to);
    }

    fn wait_enumerated(
        &mut self,
        board: &Board,
        timeout: Duration,
    ) -> Result<UsbSighting, RigError> {
        self.wait(board, timeout, |b| b.is_attached() && b.is_configured())?;
        self.sighting(board)?.ok_or_else(|| RigError::Timeout {
            board: board.name.clone(),
            what: "USB enumeration".to_owned(),
            timeout,
        })
    }

    fn wait_absent(&mut self, board: &Board, timeout: Duration) -> Result<(), RigError> {
        if self.wait(board, timeout, |b| !b.is_attached())? {
            Ok(())
        } else {
            Err(RigError::Timeout {
                board: board.name.clone(),
                what: "disappearance from USB".to_owned(),
                timeout,
            })
        }
    }

    fn open_transport(
        &mut self,
        board: &Board,
        via: Via,
        options: TransportOptions,
    ) -> Result<Box<dyn RigTransport>, RigError> {
        if via == Via::Pcsc {
            return Err(RigError::Backend {
                message: format!("board {}: {}", board.name, NO_PCSC),
            });
        }
        let index = self.index(board)?;
        let (descriptor, generation) = {
            let world = self.world.borrow();
            let node = world.nodes.get(index).ok_or_else(|| RigError::Backend {
                message: format!("board {} is not on this virtual rig", board.name),
            })?;
            if !(node.board.is_attached() && node.board.is_configured()) {
                return Err(RigError::Transport {
                    board: board.name.clone(),
                    via,
                    source: TransportError::new(
                        TransportErrorKind::ReaderGone,
                        "the board is not enumerated on the virtual USB bus",
                    ),
                });
            }
            (node.board.descriptor(), node.generation)
        };
        let pipe = BoardPipe {
            world: Rc::clone(&self.world),
            index,
            generation,
        };
        let mut config = CcidConfig::default();
        if let Some(t) = options.response_timeout {
            config.timeout = t;
        }
        let transport = CcidTransport::open(pipe, descriptor, config).map_err(|source| {
            RigError::Transport {
                board: board.name.clone(),
                via,
                source,
            }
        })?;
        Ok(Box::new(transport))
    }

    fn flash(&mut self, board: &Board, _elf: &Path) -> Result<(), RigError> {
        Err(RigError::Backend {
            message: format!("board {}: {}", board.name, NO_PROBE),
        })
    }

    fn take_log(&mut self, board: &Board) -> Result<Vec<LogRecord>, RigError> {
        let i = self.index(board)?;
        let mut world = self.world.borrow_mut();
        let Some(node) = world.nodes.get_mut(i) else {
            return Ok(Vec::new());
        };
        Ok(node
            .board
            .take_trace()
            .into_iter()
            .filter_map(|entry| {
                let (level, text) = describe(&entry.event)?;
                Some(LogRecord {
                    at: Some(entry.at),
                    level: Some(level),
                    text,
                })
            })
            .collect())
    }

    fn generated_pin(&mut self, card: &Card, role: PinRole) -> Result<Zeroizing<String>, RigError> {
        let path = pins_path(&self.scratch, &card.label);
        let text = Zeroizing::new(std::fs::read_to_string(&path).map_err(|e| RigError::Pin {
            card: card.label.clone(),
            role,
            message: format!("cannot read {}: {e}", path.display()),
        })?);
        let key = match role {
            PinRole::User => "user=",
            PinRole::So => "so=",
        };
        text.lines()
            .find_map(|l| l.strip_prefix(key))
            .map(|p| Zeroizing::new(p.to_owned()))
            .ok_or_else(|| RigError::Pin {
                card: card.label.clone(),
                role,
                message: format!("{} has no {key} line", path.display()),
            })
    }

    fn lacks(&self, _board: &Board, need: Need) -> Option<String> {
        lacks(need)
    }
}

/// What no virtual board has, and why.
pub(crate) fn lacks(need: Need) -> Option<String> {
    match need {
        Need::Probe => Some(NO_PROBE.to_owned()),
        Need::Transport(Via::Pcsc) => Some(NO_PCSC.to_owned()),
        _ => None,
    }
}

const NO_PROBE: &str =
    "a virtual board runs the bridge compiled into the rig: there is no probe and nothing to flash";
const NO_PCSC: &str =
    "pcscd cannot see the virtual USB bus (`cargo xtask virtual` serves a virtual card to pcscd)";

/// A trace event as a log line, or `None` for events that carry bytes (APDUs, PINs).
fn describe(event: &TraceEvent) -> Option<(LogLevel, String)> {
    let on_off = |on: bool| if on { "on" } else { "off" };
    Some(match event {
        TraceEvent::Power(on) => (LogLevel::Info, format!("board power {}", on_off(*on))),
        TraceEvent::Vcc(on) => (LogLevel::Debug, format!("card VCC {}", on_off(*on))),
        TraceEvent::Rst(high) => (
            LogLevel::Trace,
            format!("card RST {}", if *high { "high" } else { "low" }),
        ),
        TraceEvent::Clock(on) => (LogLevel::Trace, format!("card CLK {}", on_off(*on))),
        TraceEvent::Rate(rate) => (LogLevel::Debug, format!("card line rate {rate:?}")),
        TraceEvent::CardPulled => (LogLevel::Info, "card left the socket".to_owned()),
        TraceEvent::CardInserted => (LogLevel::Info, "card put into the socket".to_owned()),
        TraceEvent::Attach(serial) => (
            LogLevel::Info,
            format!("USB attach, serial string {serial:?}"),
        ),
        TraceEvent::Detach => (LogLevel::Info, "USB detach".to_owned()),
        TraceEvent::Configured => (LogLevel::Debug, "USB configured".to_owned()),
        TraceEvent::Deconfigured => (LogLevel::Debug, "USB deconfigured".to_owned()),
        TraceEvent::ToCard(_)
        | TraceEvent::FromCard(_)
        | TraceEvent::BulkOut(_)
        | TraceEvent::BulkIn(_)
        | TraceEvent::Interrupt(_) => return None,
    })
}

/// A board's virtual USB as the host driver's [`UsbPipe`], bound to one enumeration.
struct BoardPipe {
    world: Rc<RefCell<World>>,
    index: usize,
    generation: u64,
}

impl BoardPipe {
    fn gone() -> TransportError {
        TransportError::new(
            TransportErrorKind::ReaderGone,
            "virtual board: the device left the virtual USB bus (power cycle or detach)",
        )
    }

    /// Runs `f` on the board if it is still the enumeration this pipe was opened on, then
    /// brings the rest of the rig up to the board's time.
    fn with_board<T>(
        &mut self,
        f: impl FnOnce(&mut VirtualBoard<Line>) -> Result<T, TransportError>,
    ) -> Result<T, TransportError> {
        let mut world = self.world.borrow_mut();
        let node = world.nodes.get_mut(self.index).ok_or_else(Self::gone)?;
        if node.generation != self.generation || !node.board.is_attached() {
            return Err(Self::gone());
        }
        let result = f(&mut node.board);
        world.catch_up(self.index);
        result
    }
}

impl UsbPipe for BoardPipe {
    fn bulk_out(&mut self, data: &[u8], timeout: Duration) -> Result<(), TransportError> {
        self.with_board(|b| UsbPipe::bulk_out(b, data, timeout))
    }

    fn bulk_in(&mut self, buffer: &mut [u8], timeout: Duration) -> Result<usize, TransportError> {
        let mut left = timeout;
        loop {
            // In steps up to the rig's next stop (a keep-alive, a card's scheduled pull), so the
            // rest of the rig keeps time with the exchange.
            let until_stop = {
                let world = self.world.borrow();
                world.next_stop().saturating_sub(world.now)
            };
            let step = left.min(until_stop.max(Duration::from_micros(1)));
            match self.with_board(|b| UsbPipe::bulk_in(b, buffer, step)) {
                Err(e) if e.kind() == TransportErrorKind::Timeout && left > step => {
                    left -= step;
                }
                Err(e) if e.kind() == TransportErrorKind::Timeout => {
                    return Err(TransportError::new(
                        TransportErrorKind::Timeout,
                        format!(
                            "virtual board: no bulk-IN message within {} ms of modelled time",
                            timeout.as_millis()
                        ),
                    ))
                }
                other => return other,
            }
        }
    }
}
