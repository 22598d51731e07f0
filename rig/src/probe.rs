//! SWD probes on a real rig: flashing, reset and defmt logs over RTT, with probe-rs (the
//! library) behind the `probe` feature. Without the feature, every call says how to get it.
//!
//! With the feature, each board gets a poller thread that holds the probe-rs session, reads
//! RTT up-channel 0 every few milliseconds into a buffer (so the target's small RTT buffer
//! does not overflow between `take_log` calls), and re-attaches after the board was powered
//! off. Logs are decoded with the defmt table of the last ELF flashed in this session.
//!
//! With the feature, the module also offers what `tessera-flash` (`cargo xtask flash`) uses:
//! `attached` lists the probes probe-rs sees, `attach` finds one by selector and attaches to
//! the chip (telling "no probe at all" from "none that matches", as `ProbeError`), `flash_elf`
//! writes and verifies an ELF with an optional progress callback, and `reset_and_run` starts
//! it.
//!
//! UNTESTED on hardware: no probe exists on the project's machines.

use std::path::Path;

use crate::config::Board;
use crate::rig::{LogRecord, RigError};

#[cfg(not(feature = "probe"))]
mod imp {
    use super::*;

    const WITHOUT: &str =
        "tessera-rig was built without the `probe` feature (cargo build --features probe)";

    /// No probe support compiled in.
    #[derive(Debug)]
    pub(crate) struct Probes;

    impl Probes {
        pub(crate) fn new() -> Probes {
            Probes
        }

        pub(crate) fn unavailable() -> Option<String> {
            Some(WITHOUT.to_owned())
        }

        pub(crate) fn powered_off(&mut self, _board: &Board) {}

        pub(crate) fn flash(&mut self, board: &Board, _elf: &Path) -> Result<(), RigError> {
            Err(RigError::Probe {
                board: board.name.clone(),
                message: WITHOUT.to_owned(),
            })
        }

        pub(crate) fn take_log(&mut self, board: &Board) -> Result<Vec<LogRecord>, RigError> {
            Err(RigError::Probe {
                board: board.name.clone(),
                message: WITHOUT.to_owned(),
            })
        }
    }
}

#[cfg(feature = "probe")]
mod imp {
    use std::collections::HashMap;
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
    use std::thread::JoinHandle;
    use std::time::Duration;

    use probe_rs::config::Registry;
    use probe_rs::flashing::{DownloadOptions, FlashProgress, FormatKind};
    use probe_rs::probe::list::Lister;
    use probe_rs::probe::{DebugProbeInfo, DebugProbeSelector};
    use probe_rs::rtt::Rtt;
    use probe_rs::{Permissions, Session};

    use super::*;
    use crate::config::ProbeSelector;
    use crate::rig::LogLevel;

    /// Where the udev rules that give a user access to probes are, for messages.
    const UDEV_HINT: &str = "rig/udev/README.md";

    /// A probe that probe-rs sees on USB.
    #[derive(Debug, Clone, PartialEq, Eq)]
    pub struct SeenProbe {
        /// Its selector (`VID:PID:serial` when it reports a serial).
        pub selector: ProbeSelector,
        /// What probe-rs calls it (`STLink V2`, ...).
        pub name: String,
    }

    impl std::fmt::Display for SeenProbe {
        fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            write!(f, "{} ({})", self.selector, self.name)
        }
    }

    /// Why a probe could not be used.
    #[derive(Debug, Clone, PartialEq, Eq)]
    pub enum ProbeError {
        /// probe-rs sees no probe at all.
        NoneAttached,
        /// Probes are attached, but none matches the selector.
        NoMatch {
            /// What was asked.
            selector: ProbeSelector,
            /// What is there.
            seen: Vec<SeenProbe>,
        },
        /// Several attached probes match a selector without a serial.
        Ambiguous {
            /// What was asked.
            selector: ProbeSelector,
            /// The probes that match.
            matching: Vec<SeenProbe>,
        },
        /// probe-rs knows no chip of this name.
        UnknownChip {
            /// The name given.
            chip: String,
        },
        /// Opening the probe, attaching, flashing, verifying or resetting failed.
        Failed(String),
    }

    impl ProbeError {
        /// Whether the error is about finding the probe (nothing was attached to or written).
        pub fn is_no_probe(&self) -> bool {
            matches!(
                self,
                ProbeError::NoneAttached
                    | ProbeError::NoMatch { .. }
                    | ProbeError::Ambiguous { .. }
            )
        }
    }

    fn list(probes: &[SeenProbe]) -> String {
        probes
            .iter()
            .map(ToString::to_string)
            .collect::<Vec<_>>()
            .join(", ")
    }

    impl std::fmt::Display for ProbeError {
        fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            match self {
                ProbeError::NoneAttached => write!(
                    f,
                    "no SWD probe found (probe-rs saw none); attach one or check the udev rules \
                     ({UDEV_HINT})"
                ),
                ProbeError::NoMatch { selector, seen } => write!(
                    f,
                    "no SWD probe matches {selector}; probe-rs saw: {}",
                    list(seen)
                ),
                ProbeError::Ambiguous { selector, matching } => write!(
                    f,
                    "{} probes match {selector}; add the serial (VID:PID:SERIAL): {}",
                    matching.len(),
                    list(matching)
                ),
                ProbeError::UnknownChip { chip } => write!(
                    f,
                    "probe-rs knows no chip `{chip}` (the Nitrokey HSM 2's is STM32F103TB)"
                ),
                ProbeError::Failed(message) => f.write_str(message),
            }
        }
    }

    impl std::error::Error for ProbeError {}

    fn seen(info: &DebugProbeInfo) -> SeenProbe {
        SeenProbe {
            selector: ProbeSelector {
                vid: info.vendor_id,
                pid: info.product_id,
                serial: info.serial_number.clone().filter(|s| !s.is_empty()),
            },
            name: info.identifier.clone(),
        }
    }

    /// The probes probe-rs sees on USB (no permission is needed to list them, only to open
    /// them).
    pub fn attached() -> Vec<SeenProbe> {
        Lister::new().list_all().iter().map(seen).collect()
    }

    /// Finds the one probe `selector` names, opens it and attaches to `chip` (a probe-rs
    /// target name, e.g. `STM32F103TB`), without halting or resetting the target.
    pub fn attach(selector: &ProbeSelector, chip: &str) -> Result<Session, ProbeError> {
        Registry::from_builtin_families()
            .get_target_by_name(chip)
            .map_err(|_| ProbeError::UnknownChip {
                chip: chip.to_owned(),
            })?;
        let all = Lister::new().list_all();
        if all.is_empty() {
            return Err(ProbeError::NoneAttached);
        }
        let wanted = DebugProbeSelector {
            vendor_id: selector.vid,
            product_id: selector.pid,
            serial_number: selector.serial.clone(),
        };
        let matching: Vec<&DebugProbeInfo> = all
            .iter()
            .filter(|info| wanted.matches_probe(info))
            .collect();
        let info = match matching.as_slice() {
            [] => {
                return Err(ProbeError::NoMatch {
                    selector: selector.clone(),
                    seen: all.iter().map(seen).collect(),
                })
            }
            [one] => *one,
            several => {
                return Err(ProbeError::Ambiguous {
                    selector: selector.clone(),
                    matching: several.iter().map(|info| seen(info)).collect(),
                })
            }
        };
        let probe = info.open().map_err(|e| {
            ProbeError::Failed(format!(
                "opening probe {selector} failed: {e} (no permission? see {UDEV_HINT})"
            ))
        })?;
        probe.attach(chip, Permissions::default()).map_err(|e| {
            ProbeError::Failed(format!(
                "attaching to {chip} through probe {selector} failed: {e} (is the board \
                     powered and the SWD cable seated?)"
            ))
        })
    }

    /// Erases, writes and verifies the ELF at `elf` into the target's flash; `progress`, when
    /// given, hears every step.
    pub fn flash_elf(
        session: &mut Session,
        elf: &Path,
        progress: Option<FlashProgress<'_>>,
    ) -> Result<(), ProbeError> {
        let mut options = DownloadOptions::default();
        options.verify = true;
        options.progress = progress;
        probe_rs::flashing::download_file_with_options(session, elf, FormatKind::Elf, options)
            .map_err(|e| ProbeError::Failed(format!("flashing {} failed: {e}", elf.display())))
    }

    /// Resets the target's core and lets it run.
    pub fn reset_and_run(session: &mut Session) -> Result<(), ProbeError> {
        session
            .core(0)
            .and_then(|mut core| core.reset())
            .map_err(|e| ProbeError::Failed(format!("reset after flashing failed: {e}")))
    }

    /// Where a board's probe stands.
    struct Link {
        selector: ProbeSelector,
        chip: String,
        session: Option<Session>,
        rtt: Option<Rtt>,
        /// Every RTT byte read since the last flash (decoded again on each `take_log`; the
        /// firmware logs little).
        raw: Vec<u8>,
        /// Records decoded from `raw` already handed out.
        handed_out: usize,
        /// The defmt table's source: the ELF flashed last.
        elf: Option<Vec<u8>>,
        last_error: Option<String>,
    }

    impl Link {
        fn attach(&mut self) -> Result<&mut Session, String> {
            if self.session.is_none() {
                let session = attach(&self.selector, &self.chip).map_err(|e| e.to_string())?;
                self.session = Some(session);
                self.rtt = None;
            }
            self.session.as_mut().ok_or_else(|| "no session".to_owned())
        }

        /// Reads what RTT channel 0 has; drops the session on any error (board off).
        fn poll(&mut self) {
            let result = (|| -> Result<(), String> {
                self.attach()?;
                let session = self.session.as_mut().ok_or("no session")?;
                let mut core = session.core(0).map_err(|e| e.to_string())?;
                if self.rtt.is_none() {
                    self.rtt = Some(Rtt::attach(&mut core).map_err(|e| e.to_string())?);
                }
                let rtt = self.rtt.as_mut().ok_or("no RTT")?;
                let Some(channel) = rtt.up_channel(0) else {
                    return Ok(());
                };
                let mut buf = [0u8; 1024];
                loop {
                    let n = channel
                        .read(&mut core, &mut buf)
                        .map_err(|e| e.to_string())?;
                    if n == 0 {
                        return Ok(());
                    }
                    self.raw.extend_from_slice(buf.get(..n).unwrap_or_default());
                }
            })();
            if let Err(e) = result {
                self.session = None;
                self.rtt = None;
                self.last_error = Some(e);
            }
        }

        fn flash(&mut self, elf: &Path) -> Result<(), String> {
            let image = std::fs::read(elf).map_err(|e| format!("{}: {e}", elf.display()))?;
            let session = self.attach()?;
            flash_elf(session, elf, None).map_err(|e| e.to_string())?;
            reset_and_run(session).map_err(|e| e.to_string())?;
            self.rtt = None;
            self.raw.clear();
            self.handed_out = 0;
            self.elf = Some(image);
            Ok(())
        }

        /// Decodes every frame in `raw` and returns those not handed out yet.
        fn decode(&mut self) -> Result<Vec<LogRecord>, String> {
            let elf = self
                .elf
                .as_ref()
                .ok_or("no firmware flashed in this session: the log is decoded with the flashed ELF's defmt table")?;
            let table = defmt_decoder::Table::parse(elf)
                .map_err(|e| format!("reading the defmt table: {e}"))?
                .ok_or("the flashed ELF has no defmt table")?;
            let mut decoder = table.new_stream_decoder();
            decoder.received(&self.raw);
            let mut records = Vec::new();
            loop {
                match decoder.decode() {
                    Ok(frame) => records.push(LogRecord {
                        at: None,
                        level: frame.level().and_then(|l| level(&format!("{l:?}"))),
                        text: match frame.display_timestamp() {
                            Some(ts) => format!("{ts} {}", frame.display_message()),
                            None => frame.display_message().to_string(),
                        },
                    }),
                    Err(defmt_decoder::DecodeError::UnexpectedEof) => break,
                    Err(defmt_decoder::DecodeError::Malformed) => {
                        return Err("malformed defmt data on RTT (wrong ELF?)".to_owned())
                    }
                }
            }
            let new = records.split_off(self.handed_out.min(records.len()));
            self.handed_out += new.len();
            Ok(new)
        }
    }

    fn level(name: &str) -> Option<LogLevel> {
        Some(match name {
            "Trace" => LogLevel::Trace,
            "Debug" => LogLevel::Debug,
            "Info" => LogLevel::Info,
            "Warn" => LogLevel::Warn,
            "Error" => LogLevel::Error,
            _ => return None,
        })
    }

    /// A board's probe and its RTT poller.
    struct Poller {
        link: Arc<Mutex<Link>>,
        stop: Arc<AtomicBool>,
        thread: Option<JoinHandle<()>>,
    }

    impl Drop for Poller {
        fn drop(&mut self) {
            self.stop.store(true, Ordering::Relaxed);
            if let Some(thread) = self.thread.take() {
                let _ = thread.join();
            }
        }
    }

    /// Every board's probe.
    #[derive(Default)]
    pub(crate) struct Probes {
        pollers: HashMap<String, Poller>,
    }

    impl std::fmt::Debug for Probes {
        fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.debug_struct("Probes")
                .field("boards", &self.pollers.keys().collect::<Vec<_>>())
                .finish()
        }
    }

    impl Probes {
        pub(crate) fn new() -> Probes {
            Probes::default()
        }

        pub(crate) fn unavailable() -> Option<String> {
            None
        }

        fn link(&mut self, board: &Board) -> Result<MutexGuard<'_, Link>, RigError> {
            let selector = board.probe.clone().ok_or_else(|| RigError::Probe {
                board: board.name.clone(),
                message: "the rig file gives this board no probe".to_owned(),
            })?;
            let poller = self.pollers.entry(board.name.clone()).or_insert_with(|| {
                let link = Arc::new(Mutex::new(Link {
                    selector,
                    chip: board.chip.clone(),
                    session: None,
                    rtt: None,
                    raw: Vec::new(),
                    handed_out: 0,
                    elf: None,
                    last_error: None,
                }));
                let stop = Arc::new(AtomicBool::new(false));
                let thread = {
                    let link = Arc::clone(&link);
                    let stop = Arc::clone(&stop);
                    std::thread::Builder::new()
                        .name("rig-rtt".into())
                        .spawn(move || {
                            while !stop.load(Ordering::Relaxed) {
                                let attached = {
                                    let mut l = link.lock().unwrap_or_else(PoisonError::into_inner);
                                    l.poll();
                                    l.session.is_some()
                                };
                                // Fast while attached; slow retries while the board is off.
                                std::thread::sleep(Duration::from_millis(if attached {
                                    5
                                } else {
                                    500
                                }));
                            }
                        })
                        .ok()
                };
                Poller { link, stop, thread }
            });
            Ok(poller.link.lock().unwrap_or_else(PoisonError::into_inner))
        }

        pub(crate) fn powered_off(&mut self, board: &Board) {
            if let Some(poller) = self.pollers.get(&board.name) {
                let mut link = poller.link.lock().unwrap_or_else(PoisonError::into_inner);
                link.session = None;
                link.rtt = None;
            }
        }

        pub(crate) fn flash(&mut self, board: &Board, elf: &Path) -> Result<(), RigError> {
            let name = board.name.clone();
            self.link(board)?
                .flash(elf)
                .map_err(|message| RigError::Probe {
                    board: name,
                    message,
                })
        }

        pub(crate) fn take_log(&mut self, board: &Board) -> Result<Vec<LogRecord>, RigError> {
            let name = board.name.clone();
            self.link(board)?
                .decode()
                .map_err(|message| RigError::Probe {
                    board: name,
                    message,
                })
        }
    }
}

pub(crate) use imp::Probes;
#[cfg(feature = "probe")]
pub use imp::{attach, attached, flash_elf, reset_and_run, ProbeError, SeenProbe};
