//! The real rig's [`Backend`]: the rig controller on a serial port (power, SIM mux), a hub's
//! port power through uhubctl, USB enumeration and transports through `tessera-host`, and
//! SWD probes through probe-rs (feature `probe`).
//!
//! A keep-alive thread sends `STATUS` to the controller more often than its watchdog period,
//! so that a long card operation (INITIALIZE takes about 30 s) does not trip it; if the host
//! process dies, the keep-alive stops and the controller powers everything off by itself.
//!
//! Hub ports are switched by running uhubctl, the one process this crate starts: it knows
//! every hub's quirks (paired USB 2/3 hubs, ganged ports) that a reimplementation would
//! have to relearn (hardware.md §F).

use std::path::Path;
use std::process::Command;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use tessera_host::{CcidConfig, Connection, DeviceChoice, OpenError, ReaderChoice, UsbDeviceInfo};
use tessera_sc_hsm::{TransportError, TransportErrorKind};

use crate::config::{Board, HubConfig, PowerSwitch, RigDescription, SimSwitch, Slot, UsbId};
use crate::controller::protocol::MAX_EJECT_DELAY_MS;
use crate::controller::{
    ClientConfig, ControllerClient, ControllerError, HelloInfo, Link, SerialLink,
};
use crate::probe::Probes;
use crate::rig::{
    Backend, LogRecord, Need, RigError, RigTransport, TransportOptions, UsbSighting, Via,
};

type SharedClient = Arc<Mutex<ControllerClient<Box<dyn Link + Send>>>>;

/// How often enumeration is polled.
const USB_POLL: Duration = Duration::from_millis(100);

/// The real rig.
pub struct RealBackend {
    controller: Option<SharedClient>,
    keepalive: Option<Keepalive>,
    hub: Option<HubConfig>,
    boards: usize,
    probes: Probes,
}

impl std::fmt::Debug for RealBackend {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RealBackend")
            .field("controller", &self.controller.is_some())
            .field("hub", &self.hub)
            .finish_non_exhaustive()
    }
}

impl RealBackend {
    /// Opens the rig `description` names: its controller's serial port (HELLO, every board
    /// off) if it has one. Hub and probes are used on demand.
    pub fn open(description: &RigDescription) -> Result<RealBackend, RigError> {
        let link = match &description.controller {
            None => None,
            Some(c) => {
                let link = SerialLink::open(&c.port, c.baud)
                    .map_err(|e| ControllerError::open_failed(&c.port, e))?;
                Some(Box::new(link) as Box<dyn Link + Send>)
            }
        };
        Self::with_link(description, link)
    }

    /// Like [`open`](RealBackend::open), with the controller on `link` (a pseudo-terminal or
    /// an in-memory pair in tests) instead of the file's serial port.
    pub fn with_link(
        description: &RigDescription,
        link: Option<Box<dyn Link + Send>>,
    ) -> Result<RealBackend, RigError> {
        let (controller, keepalive) = match link {
            None => (None, None),
            Some(link) => {
                let config =
                    description
                        .controller
                        .as_ref()
                        .map_or_else(ClientConfig::default, |c| ClientConfig {
                            timeout: c.timeout,
                            retries: c.retries,
                        });
                let client = ControllerClient::connect(link, config)?;
                check_size(client.info(), description)?;
                let period = keepalive_period(client.info());
                let shared = Arc::new(Mutex::new(client));
                let keepalive = Keepalive::spawn(Arc::clone(&shared), period).map_err(|e| {
                    RigError::Backend {
                        message: format!("starting the controller keep-alive thread: {e}"),
                    }
                })?;
                (Some(shared), Some(keepalive))
            }
        };
        Ok(RealBackend {
            controller,
            keepalive,
            hub: description.hub.clone(),
            boards: description.boards.len(),
            probes: Probes::new(),
        })
    }

    fn client(&self) -> Result<MutexGuard<'_, ControllerClient<Box<dyn Link + Send>>>, RigError> {
        if let Some(message) = self.keepalive.as_ref().and_then(Keepalive::failure) {
            return Err(RigError::Backend {
                message: format!("rig controller keep-alive failed earlier: {message}"),
            });
        }
        let shared = self.controller.as_ref().ok_or_else(|| RigError::Backend {
            message: "the rig file has no [controller]".to_owned(),
        })?;
        Ok(shared.lock().unwrap_or_else(PoisonError::into_inner))
    }

    fn hub_power(&self, port: u8, on: bool) -> Result<(), RigError> {
        let hub = self.hub.as_ref().ok_or_else(|| RigError::Backend {
            message: "the rig file has no [hub]".to_owned(),
        })?;
        let fail = |message: String| RigError::Hub {
            location: hub.location.clone(),
            port,
            message,
        };
        let output = Command::new(&hub.uhubctl)
            .args(["-l", &hub.location, "-p", &port.to_string(), "-a"])
            .arg(if on { "on" } else { "off" })
            .output()
            .map_err(|e| fail(format!("cannot run {}: {e}", hub.uhubctl.display())))?;
        if !output.status.success() {
            let stderr = String::from_utf8_lossy(&output.stderr);
            let first = stderr.lines().next().unwrap_or("no message");
            return Err(fail(format!("uhubctl failed ({}): {first}", output.status)));
        }
        Ok(())
    }

    fn sighting(board: &Board) -> Option<UsbDeviceInfo> {
        tessera_host::usb::list_devices()
            .into_iter()
            .find(|d| matches(board, d))
    }
}

fn matches(board: &Board, device: &UsbDeviceInfo) -> bool {
    device.vendor_id == board.usb.id.vid
        && device.product_id == board.usb.id.pid
        && board.usb.path.as_ref().is_none_or(|p| *p == device.path)
}

fn check_size(info: &HelloInfo, description: &RigDescription) -> Result<(), ControllerError> {
    let (power, mux) = description.controller_channels();
    let positions = description.controller_positions();
    let short = [
        ("power channels", info.power_channels, power),
        ("SIM muxes", info.muxes, mux),
        ("SIM positions", info.positions, positions),
    ]
    .into_iter()
    .find(|(_, has, needs)| has < needs);
    match short {
        None => Ok(()),
        Some((what, has, needs)) => Err(ControllerError::too_small(format!(
            "controller {} has {has} {what}, but {} uses {needs}",
            info.id, description.origin
        ))),
    }
}

/// A third of the watchdog period, between 50 ms and 1 s.
fn keepalive_period(info: &HelloInfo) -> Duration {
    (Duration::from_millis(u64::from(info.watchdog_ms)) / 3)
        .clamp(Duration::from_millis(50), Duration::from_secs(1))
}

impl Backend for RealBackend {
    fn set_power(&mut self, board: &Board, on: bool) -> Result<(), RigError> {
        match board.power {
            PowerSwitch::Controller(channel) => Ok(self.client()?.power(channel, on)?),
            PowerSwitch::Hub(port) => self.hub_power(port, on),
            PowerSwitch::None => Err(RigError::Backend {
                message: format!("board {} has no power switch", board.name),
            }),
        }?;
        if !on {
            self.probes.powered_off(board);
        }
        Ok(())
    }

    fn select_sim(&mut self, board: &Board, slot: Option<&Slot>) -> Result<(), RigError> {
        match board.sim {
            SimSwitch::Controller(mux) => {
                Ok(self.client()?.select_sim(mux, slot.map(|s| s.position))?)
            }
            SimSwitch::None => Err(RigError::Backend {
                message: format!("board {} has no SIM switch", board.name),
            }),
        }
    }

    fn insert_sim(&mut self, board: &Board, slot: &Slot) -> Result<(), RigError> {
        match board.sim {
            SimSwitch::Controller(mux) => Ok(self.client()?.insert_sim(mux, slot.position)?),
            SimSwitch::None => Err(RigError::Backend {
                message: format!("board {} has no SIM switch", board.name),
            }),
        }
    }

    fn pull_sim(&mut self, board: &Board, after: Duration) -> Result<(), RigError> {
        let delay_ms = u16::try_from(after.as_millis())
            .ok()
            .filter(|d| *d <= MAX_EJECT_DELAY_MS)
            .ok_or_else(|| RigError::Backend {
                message: format!(
                    "board {}: a SIM can be pulled at most {MAX_EJECT_DELAY_MS} ms ahead",
                    board.name
                ),
            })?;
        match board.sim {
            SimSwitch::Controller(mux) => Ok(self.client()?.eject_sim(mux, delay_ms)?),
            SimSwitch::None => Err(RigError::Backend {
                message: format!("board {} has no SIM switch", board.name),
            }),
        }
    }

    fn all_off(&mut self) -> Result<(), RigError> {
        let mut first_error = None;
        if let Some(shared) = &self.controller {
            let mut client = shared.lock().unwrap_or_else(PoisonError::into_inner);
            if let Err(e) = client.all_off() {
                first_error = Some(RigError::from(e));
            }
        }
        if let Some(hub) = &self.hub {
            for port in hub.ports.clone() {
                if let Err(e) = self.hub_power(port, false) {
                    first_error.get_or_insert(e);
                }
            }
        }
        first_error.map_or(Ok(()), Err)
    }

    fn wait_enumerated(
        &mut self,
        board: &Board,
        timeout: Duration,
    ) -> Result<UsbSighting, RigError> {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(d) = Self::sighting(board) {
                return Ok(UsbSighting {
                    id: UsbId {
                        vid: d.vendor_id,
                        pid: d.product_id,
                    },
                    path: Some(d.path),
                    manufacturer: d.manufacturer,
                    product: d.product,
                    serial: d.serial,
                });
            }
            if Instant::now() >= deadline {
                return Err(RigError::Timeout {
                    board: board.name.clone(),
                    what: "USB enumeration".to_owned(),
                    timeout,
                });
            }
            std::thread::sleep(USB_POLL);
        }
    }

    fn wait_absent(&mut self, board: &Board, timeout: Duration) -> Result<(), RigError> {
        let deadline = Instant::now() + timeout;
        loop {
            if Self::sighting(board).is_none() {
                return Ok(());
            }
            if Instant::now() >= deadline {
                return Err(RigError::Timeout {
                    board: board.name.clone(),
                    what: "disappearance from USB".to_owned(),
                    timeout,
                });
            }
            std::thread::sleep(USB_POLL);
        }
    }

    fn open_transport(
        &mut self,
        board: &Board,
        via: Via,
        options: TransportOptions,
    ) -> Result<Box<dyn RigTransport>, RigError> {
        let failed = |e: OpenError| RigError::Transport {
            board: board.name.clone(),
            via,
            source: match e {
                OpenError::Transport(t) => t,
                other => TransportError::new(TransportErrorKind::ReaderGone, other.to_string()),
            },
        };
        match via {
            Via::Usb => {
                let choice = board.usb.path.as_ref().map_or(
                    DeviceChoice::VidPid(board.usb.id.vid, board.usb.id.pid),
                    |p| DeviceChoice::Path(p.clone()),
                );
                let mut config = CcidConfig::default();
                if let Some(t) = options.response_timeout {
                    config.timeout = t;
                }
                let transport = tessera_host::usb::open(&choice, config).map_err(failed)?;
                Ok(Box::new(transport))
            }
            Via::Pcsc => {
                // libccid names a reader after the device's USB serial string, which is the
                // card's serial: that is what tells two boards apart in PC/SC.
                let serial = Self::sighting(board).and_then(|d| d.serial);
                let choice = match serial {
                    Some(serial) if !serial.is_empty() => ReaderChoice::Name(serial),
                    _ if self.boards == 1 => ReaderChoice::Default,
                    _ => {
                        return Err(RigError::Transport {
                            board: board.name.clone(),
                            via,
                            source: TransportError::new(
                                TransportErrorKind::ReaderGone,
                                "the board is not on USB with a serial string, so its PC/SC reader cannot be told apart",
                            ),
                        })
                    }
                };
                let transport = tessera_host::open(&Connection::Pcsc(choice)).map_err(failed)?;
                Ok(Box::new(transport))
            }
        }
    }

    fn flash(&mut self, board: &Board, elf: &Path) -> Result<(), RigError> {
        self.probes.flash(board, elf)
    }

    fn take_log(&mut self, board: &Board) -> Result<Vec<LogRecord>, RigError> {
        self.probes.take_log(board)
    }

    fn lacks(&self, board: &Board, need: Need) -> Option<String> {
        lacks(board, need)
    }
}

/// What a real board lacks whatever the hardware does (the rig file's part is checked by
/// `Rig`), and why.
pub(crate) fn lacks(board: &Board, need: Need) -> Option<String> {
    match need {
        Need::SlotChanges => Some(
            "pcscd's libccid reads the board's interrupt endpoint; the real rig does not watch it"
                .to_owned(),
        ),
        Need::Probe | Need::Log => {
            if board.probe.is_none() {
                Some(format!("the rig file gives {} no probe", board.name))
            } else {
                Probes::unavailable()
            }
        }
        _ => None,
    }
}

impl Drop for RealBackend {
    fn drop(&mut self) {
        // Stop the keep-alive first: the client's own drop then powers everything off.
        self.keepalive.take();
        let _ = self.all_off();
    }
}

/// Sends `STATUS` every `period` until dropped; remembers the first failure.
struct Keepalive {
    stop: Arc<AtomicBool>,
    failure: Arc<Mutex<Option<String>>>,
    thread: Option<JoinHandle<()>>,
}

impl Keepalive {
    fn spawn(client: SharedClient, period: Duration) -> std::io::Result<Keepalive> {
        let stop = Arc::new(AtomicBool::new(false));
        let failure = Arc::new(Mutex::new(None));
        let thread = {
            let stop = Arc::clone(&stop);
            let failure = Arc::clone(&failure);
            std::thread::Builder::new()
                .name("rig-keepalive".into())
                .spawn(move || {
                    let mut last = Instant::now();
                    while !stop.load(Ordering::Relaxed) {
                        std::thread::sleep(Duration::from_millis(10));
                        if last.elapsed() < period {
                            continue;
                        }
                        last = Instant::now();
                        let result = client
                            .lock()
                            .unwrap_or_else(PoisonError::into_inner)
                            .status();
                        if let Err(e) = result {
                            failure
                                .lock()
                                .unwrap_or_else(PoisonError::into_inner)
                                .get_or_insert(e.to_string());
                            return;
                        }
                    }
                })?
        };
        Ok(Keepalive {
            stop,
            failure,
            thread: Some(thread),
        })
    }

    fn failure(&self) -> Option<String> {
        self.failure
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }
}

impl Drop for Keepalive {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}
