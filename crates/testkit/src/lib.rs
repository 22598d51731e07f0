//! Test support for Tessera, used only as a dev-dependency (never by shipped code).
//!
//! [`PcscSandbox`] gives a test process its own pcscd with vsmartcard's vpcd reader driver, in a
//! private mount and network namespace, so that tests which serve virtual cards to pcscd (and
//! drive them with the `pcsc` crate or OpenSC's tools) neither see nor disturb the machine's
//! pcscd, its readers, or each other.
//!
//! # Requirements
//!
//! Linux, root (CAP_SYS_ADMIN), and the Debian packages `pcscd`, `vsmartcard-vpcd` and
//! `iproute2`. When one is missing, [`PcscSandbox::start`] returns a [`SandboxError`] saying what
//! to do; tests must fail on it, not pass silently, because CI installs all of them.
//!
//! # Threading: namespaces belong to a thread
//!
//! On Linux, mount and network namespaces are per thread. [`PcscSandbox::start`] moves the
//! *calling thread* into new namespaces. Everything that must see the private pcscd (the PC/SC
//! client, the thread serving a virtual card to vpcd, tools such as `pkcs11-tool`) must run on
//! that thread or on threads and processes it creates after `start` (they inherit its
//! namespaces). Threads that existed before still see the machine's `/run/pcscd` and network.
//! For the same reason a `PcscSandbox` is neither `Send` nor `Sync`. The thread stays in the
//! namespaces after the sandbox is dropped (with pcscd stopped), so a test should not expect the
//! machine's pcscd or network on it afterwards.
//!
//! Under cargo-nextest each test runs in its own process; under plain `cargo test` each test
//! runs on its own thread, so several sandboxes can live in one process at once, one per
//! thread.
//!
//! # Reader names
//!
//! Each vpcd port gets one reader.conf entry with `FRIENDLYNAME "Tessera vpcd <port>"`. pcscd
//! does not use a FRIENDLYNAME as it is: it appends the reader number and the slot number, each
//! as two hex digits, giving `Tessera vpcd <port> NN SS`. NN is the lowest reader number not in
//! use when the reader is added (00, 01, ... in reader.conf order at start-up, but not
//! guaranteed), SS the slot. vpcd (vsmartcard 3.3) gives each reader two slots: slot 00 listens
//! on `<port>` and slot 01 on `<port> + 1`. The card for `<port>` is therefore in reader
//! `Tessera vpcd <port> NN 00`; [`PcscSandbox::reader_name`] finds it whatever NN is. Because
//! slot 01 takes `<port> + 1`, two sandbox ports must not be adjacent. pcscd has room for 16
//! readers, slots included, so a sandbox takes at most [`MAX_PORTS`] ports.
//!
//! # One copy of the driver per reader
//!
//! vpcd keeps its connections in one global array indexed by slot number, and pcscd loads a
//! driver once per LIBPATH: two reader entries sharing `libifdvpcd.so` overwrite each other's
//! slots (the first reader then shows the second reader's card, and the first port is never
//! answered). So the sandbox gives each reader its own copy of the driver in its temporary
//! directory (the dynamic loader loads a copy, a different file, separately).
//!
//! What it does not know: the virtual card, OpenSC.

use std::ffi::{CStr, CString};
use std::fs::{self, File};
use std::io;
use std::marker::PhantomData;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::thread;
use std::time::{Duration, Instant};

use nix::errno::Errno;
use nix::mount::{mount, MsFlags};
use nix::sched::{unshare, CloneFlags};
use nix::sys::signal::{kill, Signal};
use nix::unistd::{geteuid, Pid};

/// vsmartcard's vpcd driver, as Debian's `vsmartcard-vpcd` installs it.
pub const VPCD_DRIVER: &str = "/usr/lib/pcsc/drivers/serial/libifdvpcd.so";

/// The directory of pcscd's socket; the sandbox mounts a tmpfs over it.
pub const PCSCD_DIR: &str = "/run/pcscd";

/// pcscd's socket. Debian's pcscd 1.9.9 always uses this path (it ignores
/// `PCSCLITE_CSOCK_NAME`), hence the mount namespace.
pub const PCSCD_SOCKET: &str = "/run/pcscd/pcscd.comm";

/// The start of every sandbox reader's FRIENDLYNAME: `Tessera vpcd <port>`.
pub const READER_NAME_PREFIX: &str = "Tessera vpcd";

/// How long [`PcscSandbox::start`] waits for pcscd to answer and list its readers.
pub const START_TIMEOUT: Duration = Duration::from_secs(10);

/// How long dropping a sandbox waits for pcscd to exit after SIGTERM before killing it.
pub const STOP_TIMEOUT: Duration = Duration::from_secs(5);

/// The most vpcd ports one sandbox serves: pcscd has 16 reader slots and each vpcd reader takes
/// two.
pub const MAX_PORTS: usize = 8;

/// How many lines of pcscd's log an error carries.
const LOG_TAIL_LINES: usize = 40;

/// What went wrong setting up or using a [`PcscSandbox`]; each message says what to do.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SandboxError {
    /// Not root, or root without CAP_SYS_ADMIN.
    #[error(
        "the PC/SC tests need root (CAP_SYS_ADMIN) for a private pcscd in a mount and network \
         namespace; run them as root or in CI"
    )]
    NotRoot,
    /// No pcscd binary.
    #[error("pcscd is not installed (looked in {searched}): apt-get install pcscd")]
    PcscdMissing {
        /// The directories searched.
        searched: String,
    },
    /// No vpcd driver.
    #[error("vsmartcard's vpcd driver {path} is missing: apt-get install vsmartcard-vpcd")]
    VpcdMissing {
        /// Where the driver was expected.
        path: PathBuf,
    },
    /// No `ip` command to bring up loopback in the new network namespace.
    #[error("`ip` is not installed (looked in {searched}): apt-get install iproute2")]
    IpMissing {
        /// The directories searched.
        searched: String,
    },
    /// The ports cannot be served by one pcscd.
    #[error("invalid vpcd ports {ports:?}: {reason}")]
    InvalidPorts {
        /// The ports asked for.
        ports: Vec<u16>,
        /// Why they do not work.
        reason: &'static str,
    },
    /// A namespace or mount system call failed.
    #[error("{step} failed: {source}")]
    Namespace {
        /// What was being done.
        step: &'static str,
        /// The error number.
        source: Errno,
    },
    /// A file or process operation failed.
    #[error("{step} failed: {source}")]
    Io {
        /// What was being done.
        step: &'static str,
        /// The error.
        source: io::Error,
    },
    /// `ip link set lo up` failed.
    #[error("`ip link set lo up` failed ({status}): {stderr}")]
    LoopbackDown {
        /// Its exit status.
        status: ExitStatus,
        /// What it printed.
        stderr: String,
    },
    /// pcscd exited.
    #[error("pcscd exited ({status}); the end of its log:\n{log_tail}")]
    PcscdExited {
        /// Its exit status.
        status: ExitStatus,
        /// The last lines of its log.
        log_tail: String,
    },
    /// pcscd did not answer on its socket in time.
    #[error(
        "pcscd did not answer on {PCSCD_SOCKET} within {waited:?} ({last}); the end of its log:\n\
         {log_tail}"
    )]
    PcscdNotReady {
        /// How long the sandbox waited.
        waited: Duration,
        /// The last PC/SC error seen.
        last: String,
        /// The last lines of its log.
        log_tail: String,
    },
    /// The port is not one of this sandbox's.
    #[error("port {port} is not one of this sandbox's vpcd ports {ports:?}")]
    UnknownPort {
        /// The port asked about.
        port: u16,
        /// The sandbox's ports.
        ports: Vec<u16>,
    },
    /// pcscd lists no reader for the port.
    #[error(
        "pcscd lists no reader for vpcd port {port} after {waited:?} (readers: {readers:?}); the \
         end of its log:\n{log_tail}"
    )]
    NoReader {
        /// The port.
        port: u16,
        /// How long the sandbox waited.
        waited: Duration,
        /// The readers pcscd listed.
        readers: Vec<String>,
        /// The last lines of pcscd's log.
        log_tail: String,
    },
    /// No card appeared in the port's reader.
    #[error(
        "no card in {reader:?} after {waited:?}: is the virtual card being served on \
         127.0.0.1:{port} from a thread inside this sandbox's namespaces? The end of pcscd's \
         log:\n{log_tail}"
    )]
    NoCard {
        /// The port.
        port: u16,
        /// The reader.
        reader: String,
        /// How long the sandbox waited.
        waited: Duration,
        /// The last lines of pcscd's log.
        log_tail: String,
    },
    /// A PC/SC call failed.
    #[error("PC/SC {call} failed: {source}")]
    Pcsc {
        /// The call.
        call: &'static str,
        /// The error.
        source: pcsc::Error,
    },
}

/// One sandbox reader: the reader.conf entry for a vpcd port.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VpcdReader {
    /// The TCP port vpcd listens on for this reader's slot 00.
    pub port: u16,
    /// The FRIENDLYNAME in reader.conf: `Tessera vpcd <port>`.
    pub friendly_name: String,
}

impl VpcdReader {
    /// The reader for `port`.
    pub fn new(port: u16) -> Self {
        Self {
            port,
            friendly_name: format!("{READER_NAME_PREFIX} {port}"),
        }
    }

    /// The reader.conf entry, with `driver` as LIBPATH.
    pub fn conf_entry(&self, driver: &Path) -> String {
        format!(
            "FRIENDLYNAME \"{}\"\nDEVICENAME /dev/null:{}\nLIBPATH {}\nCHANNELID {}\n",
            self.friendly_name,
            self.port,
            driver.display(),
            self.port
        )
    }

    /// The file name of this reader's copy of the vpcd driver.
    pub fn driver_file_name(&self) -> String {
        format!("libifdvpcd-{}.so", self.port)
    }

    /// Whether pcscd's reader name `name` is this reader's slot 00: the FRIENDLYNAME, a space,
    /// two hex digits (the reader number), a space, `00`.
    pub fn is_named(&self, name: &str) -> bool {
        let Some(suffix) = name
            .strip_prefix(self.friendly_name.as_str())
            .and_then(|rest| rest.strip_prefix(' '))
        else {
            return false;
        };
        let bytes = suffix.as_bytes();
        bytes.len() == 5
            && bytes[0].is_ascii_hexdigit()
            && bytes[1].is_ascii_hexdigit()
            && &bytes[2..] == b" 00"
    }
}

/// A private pcscd with one vpcd reader per port, for the calling thread (see the crate docs on
/// threading). Dropping it stops pcscd and removes its files.
#[derive(Debug)]
pub struct PcscSandbox {
    dir: tempfile::TempDir,
    conf: PathBuf,
    log: PathBuf,
    pcscd_program: PathBuf,
    pcscd_args: Vec<String>,
    pcscd: Option<Child>,
    readers: Vec<VpcdReader>,
    /// Namespaces belong to the thread that called `start`: keep the sandbox on it.
    _same_thread: PhantomData<*const ()>,
}

impl PcscSandbox {
    /// Moves the calling thread into a private mount and network namespace, starts pcscd there
    /// with one vpcd reader per port, and waits until pcscd answers and lists every reader.
    ///
    /// The steps: check root, pcscd, vpcd and `ip`; `unshare(CLONE_NEWNS | CLONE_NEWNET)`;
    /// make every mount private (recursively) so nothing leaks to the machine; mount a tmpfs
    /// over `/run/pcscd`; bring up `lo`; write `reader.conf` in a temporary directory; run
    /// `pcscd --foreground --config <reader.conf>` with its output in `pcscd.log` beside it
    /// (each reader with its own copy of the vpcd driver, see the crate docs).
    /// (Debian's pcscd 1.9.9 is built without polkit, so it needs no `--disable-polkit`.)
    ///
    /// Ports must be non-zero, distinct and not adjacent (vpcd also listens on `port + 1`), at
    /// most [`MAX_PORTS`] of them.
    pub fn start(vpcd_ports: &[u16]) -> Result<Self, SandboxError> {
        Self::start_with_args(vpcd_ports, &[])
    }

    /// [`start`](Self::start), passing `extra_args` to pcscd as well; for example `--debug`
    /// and `--apdu` to log every APDU while debugging a test (they slow pcscd down).
    pub fn start_with_args(vpcd_ports: &[u16], extra_args: &[&str]) -> Result<Self, SandboxError> {
        let readers = readers_for(vpcd_ports)?;
        if !geteuid().is_root() {
            return Err(SandboxError::NotRoot);
        }
        let pcscd_program = find_program("pcscd").ok_or_else(|| SandboxError::PcscdMissing {
            searched: search_path().join(":"),
        })?;
        if !Path::new(VPCD_DRIVER).is_file() {
            return Err(SandboxError::VpcdMissing {
                path: PathBuf::from(VPCD_DRIVER),
            });
        }
        let ip = find_program("ip").ok_or_else(|| SandboxError::IpMissing {
            searched: search_path().join(":"),
        })?;

        enter_namespaces()?;
        bring_up_loopback(&ip)?;

        let dir = tempfile::Builder::new()
            .prefix("tessera-pcscd-")
            .tempdir()
            .map_err(|source| SandboxError::Io {
                step: "creating the sandbox's temporary directory",
                source,
            })?;
        let conf = dir.path().join("reader.conf");
        let mut entries = Vec::with_capacity(readers.len());
        for reader in &readers {
            let driver = dir.path().join(reader.driver_file_name());
            fs::copy(VPCD_DRIVER, &driver).map_err(|source| SandboxError::Io {
                step: "copying the vpcd driver",
                source,
            })?;
            entries.push(reader.conf_entry(&driver));
        }
        fs::write(&conf, entries.join("\n")).map_err(|source| SandboxError::Io {
            step: "writing reader.conf",
            source,
        })?;
        let log = dir.path().join("pcscd.log");

        let mut pcscd_args = vec![
            "--foreground".to_owned(),
            "--config".to_owned(),
            conf.display().to_string(),
        ];
        pcscd_args.extend(extra_args.iter().map(|arg| (*arg).to_owned()));

        let mut sandbox = Self {
            dir,
            conf,
            log,
            pcscd_program,
            pcscd_args,
            pcscd: None,
            readers,
            _same_thread: PhantomData,
        };
        sandbox.start_pcscd()?;
        Ok(sandbox)
    }

    /// Stops pcscd and starts it again with the same readers (as when the machine's pcscd
    /// restarts); served cards must reconnect by themselves.
    pub fn restart_pcscd(&mut self) -> Result<(), SandboxError> {
        self.stop_pcscd();
        self.start_pcscd()
    }

    /// The sandbox's readers, in the order of the ports given to [`start`](Self::start).
    pub fn readers(&self) -> &[VpcdReader] {
        &self.readers
    }

    /// The temporary directory holding `reader.conf` and `pcscd.log`; removed on drop.
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// The reader.conf pcscd was started with.
    pub fn reader_conf(&self) -> &Path {
        &self.conf
    }

    /// pcscd's log (its stdout and stderr).
    pub fn log_path(&self) -> &Path {
        &self.log
    }

    /// The last lines of pcscd's log, for a failing test's message.
    pub fn log_tail(&self) -> String {
        log_tail(&self.log)
    }

    /// pcscd's process id, while it runs.
    pub fn pcscd_pid(&self) -> Option<u32> {
        self.pcscd.as_ref().map(Child::id)
    }

    /// The name pcscd gives the reader for `port` now (`Tessera vpcd <port> NN 00`), without
    /// waiting.
    pub fn reader_name(&self, port: u16) -> Result<CString, SandboxError> {
        let reader = self.reader(port)?;
        let names = list_readers(&establish()?)?;
        find_reader(reader, &names).ok_or_else(|| SandboxError::NoReader {
            port,
            waited: Duration::ZERO,
            readers: lossy(&names),
            log_tail: self.log_tail(),
        })
    }

    /// Waits until pcscd lists the reader for `port` and returns its name.
    /// [`start`](Self::start) already waits for every reader, so this returns at once unless
    /// pcscd was restarted.
    pub fn wait_for_reader(
        &mut self,
        port: u16,
        timeout: Duration,
    ) -> Result<CString, SandboxError> {
        let reader = self.reader(port)?.clone();
        let started = Instant::now();
        loop {
            self.check_running()?;
            let names = match establish() {
                Ok(context) => list_readers(&context).unwrap_or_default(),
                Err(_) => Vec::new(),
            };
            if let Some(name) = find_reader(&reader, &names) {
                return Ok(name);
            }
            if started.elapsed() >= timeout {
                return Err(SandboxError::NoReader {
                    port,
                    waited: started.elapsed(),
                    readers: lossy(&names),
                    log_tail: self.log_tail(),
                });
            }
            thread::sleep(Duration::from_millis(20));
        }
    }

    /// Waits until a card is present in the reader for `port` (the virtual card connected to
    /// vpcd and answered with its ATR) and returns the reader's name. pcscd polls for cards a
    /// few times a second, so this takes up to about half a second after the card connects.
    pub fn wait_for_card(&mut self, port: u16, timeout: Duration) -> Result<CString, SandboxError> {
        let started = Instant::now();
        let name = self.wait_for_reader(port, timeout)?;
        let context = establish()?;
        loop {
            self.check_running()?;
            let mut states = [pcsc::ReaderState::new(name.clone(), pcsc::State::UNAWARE)];
            context
                .get_status_change(Duration::ZERO, &mut states)
                .map_err(|source| SandboxError::Pcsc {
                    call: "SCardGetStatusChange",
                    source,
                })?;
            if states[0].event_state().contains(pcsc::State::PRESENT) {
                return Ok(name);
            }
            if started.elapsed() >= timeout {
                return Err(SandboxError::NoCard {
                    port,
                    reader: name.to_string_lossy().into_owned(),
                    waited: started.elapsed(),
                    log_tail: self.log_tail(),
                });
            }
            thread::sleep(Duration::from_millis(20));
        }
    }

    fn reader(&self, port: u16) -> Result<&VpcdReader, SandboxError> {
        self.readers
            .iter()
            .find(|reader| reader.port == port)
            .ok_or_else(|| SandboxError::UnknownPort {
                port,
                ports: self.readers.iter().map(|reader| reader.port).collect(),
            })
    }

    fn start_pcscd(&mut self) -> Result<(), SandboxError> {
        let io = |step| move |source| SandboxError::Io { step, source };
        let log = File::options()
            .create(true)
            .append(true)
            .open(&self.log)
            .map_err(io("creating pcscd.log"))?;
        let log_err = log.try_clone().map_err(io("opening pcscd.log"))?;
        let child = Command::new(&self.pcscd_program)
            .args(&self.pcscd_args)
            .stdin(Stdio::null())
            .stdout(log)
            .stderr(log_err)
            // Not systemd's socket activation: pcscd makes its own socket.
            .env_remove("LISTEN_FDS")
            .env_remove("LISTEN_PID")
            .env_remove("LISTEN_FDNAMES")
            .spawn()
            .map_err(io("starting pcscd"))?;
        self.pcscd = Some(child);
        self.wait_until_ready()
    }

    /// Waits until pcscd answers on its socket and lists every reader.
    fn wait_until_ready(&mut self) -> Result<(), SandboxError> {
        let started = Instant::now();
        let mut last = String::from("no socket yet");
        loop {
            self.check_running()?;
            if Path::new(PCSCD_SOCKET).exists() {
                match establish() {
                    Ok(_) => break,
                    Err(error) => last = error.to_string(),
                }
            }
            if started.elapsed() >= START_TIMEOUT {
                return Err(SandboxError::PcscdNotReady {
                    waited: started.elapsed(),
                    last,
                    log_tail: self.log_tail(),
                });
            }
            thread::sleep(Duration::from_millis(10));
        }
        let ports: Vec<u16> = self.readers.iter().map(|reader| reader.port).collect();
        for port in ports {
            let remaining = START_TIMEOUT.saturating_sub(started.elapsed());
            self.wait_for_reader(port, remaining)?;
        }
        Ok(())
    }

    fn check_running(&mut self) -> Result<(), SandboxError> {
        let Some(child) = self.pcscd.as_mut() else {
            return Err(SandboxError::Io {
                step: "talking to pcscd",
                source: io::Error::new(io::ErrorKind::NotConnected, "pcscd is not running"),
            });
        };
        match child.try_wait() {
            Ok(None) => Ok(()),
            Ok(Some(status)) => {
                self.pcscd = None;
                Err(SandboxError::PcscdExited {
                    status,
                    log_tail: self.log_tail(),
                })
            }
            Err(source) => Err(SandboxError::Io {
                step: "checking on pcscd",
                source,
            }),
        }
    }

    /// SIGTERM, then SIGKILL after [`STOP_TIMEOUT`].
    fn stop_pcscd(&mut self) {
        let Some(mut child) = self.pcscd.take() else {
            return;
        };
        if let Ok(pid) = i32::try_from(child.id()) {
            // It may have exited already: then there is nothing to signal.
            let _ = kill(Pid::from_raw(pid), Signal::SIGTERM);
        }
        let deadline = Instant::now() + STOP_TIMEOUT;
        while Instant::now() < deadline {
            match child.try_wait() {
                Ok(Some(_)) | Err(_) => return,
                Ok(None) => thread::sleep(Duration::from_millis(10)),
            }
        }
        let _ = child.kill();
        let _ = child.wait();
    }
}

impl Drop for PcscSandbox {
    fn drop(&mut self) {
        self.stop_pcscd();
        // The temporary directory removes itself when `dir` drops.
    }
}

/// One reader per port, after checking the ports.
fn readers_for(ports: &[u16]) -> Result<Vec<VpcdReader>, SandboxError> {
    let invalid = |reason| SandboxError::InvalidPorts {
        ports: ports.to_vec(),
        reason,
    };
    if ports.len() > MAX_PORTS {
        return Err(invalid(
            "more than 8 ports: pcscd has room for 16 reader slots, 2 per vpcd reader",
        ));
    }
    if ports.contains(&0) {
        return Err(invalid("port 0 is not a port vpcd can listen on"));
    }
    if ports.contains(&u16::MAX) {
        return Err(invalid(
            "vpcd also listens on port + 1, so 65535 cannot be used",
        ));
    }
    for (i, a) in ports.iter().enumerate() {
        for b in &ports[i + 1..] {
            if a == b {
                return Err(invalid("a port is given twice"));
            }
            if a.abs_diff(*b) == 1 {
                return Err(invalid(
                    "two ports are adjacent, but vpcd also listens on port + 1 for its second slot",
                ));
            }
        }
    }
    Ok(ports.iter().copied().map(VpcdReader::new).collect())
}

/// `unshare(CLONE_NEWNS | CLONE_NEWNET)` for the calling thread, private mounts, and a tmpfs
/// over /run/pcscd.
fn enter_namespaces() -> Result<(), SandboxError> {
    let namespace = |step| {
        move |source| match source {
            Errno::EPERM => SandboxError::NotRoot,
            source => SandboxError::Namespace { step, source },
        }
    };
    unshare(CloneFlags::CLONE_NEWNS | CloneFlags::CLONE_NEWNET)
        .map_err(namespace("unshare(CLONE_NEWNS | CLONE_NEWNET)"))?;
    mount(
        None::<&str>,
        "/",
        None::<&str>,
        MsFlags::MS_REC | MsFlags::MS_PRIVATE,
        None::<&str>,
    )
    .map_err(namespace("making all mounts private"))?;
    fs::create_dir_all(PCSCD_DIR).map_err(|source| SandboxError::Io {
        step: "creating /run/pcscd",
        source,
    })?;
    mount(
        Some("tmpfs"),
        PCSCD_DIR,
        Some("tmpfs"),
        MsFlags::MS_NOSUID | MsFlags::MS_NODEV | MsFlags::MS_NOEXEC,
        Some("mode=0755,size=1m"),
    )
    .map_err(namespace("mounting a tmpfs over /run/pcscd"))?;
    Ok(())
}

fn bring_up_loopback(ip: &Path) -> Result<(), SandboxError> {
    let output = Command::new(ip)
        .args(["link", "set", "lo", "up"])
        .stdin(Stdio::null())
        .output()
        .map_err(|source| SandboxError::Io {
            step: "running `ip link set lo up`",
            source,
        })?;
    if output.status.success() {
        Ok(())
    } else {
        Err(SandboxError::LoopbackDown {
            status: output.status,
            stderr: String::from_utf8_lossy(&output.stderr).trim().to_owned(),
        })
    }
}

/// `$PATH` and the sbin directories (which a non-login root shell or CI may leave out).
fn search_path() -> Vec<String> {
    let mut dirs: Vec<String> = std::env::var("PATH")
        .unwrap_or_default()
        .split(':')
        .filter(|dir| !dir.is_empty())
        .map(str::to_owned)
        .collect();
    for dir in ["/usr/local/sbin", "/usr/sbin", "/sbin", "/usr/bin", "/bin"] {
        if !dirs.iter().any(|known| known == dir) {
            dirs.push(dir.to_owned());
        }
    }
    dirs
}

fn find_program(name: &str) -> Option<PathBuf> {
    search_path()
        .into_iter()
        .map(|dir| Path::new(&dir).join(name))
        .find(|path| path.is_file())
}

fn establish() -> Result<pcsc::Context, SandboxError> {
    pcsc::Context::establish(pcsc::Scope::System).map_err(|source| SandboxError::Pcsc {
        call: "SCardEstablishContext",
        source,
    })
}

fn list_readers(context: &pcsc::Context) -> Result<Vec<CString>, SandboxError> {
    match context.list_readers_owned() {
        Ok(names) => Ok(names),
        // pcscd answers "no readers" with an error rather than an empty list.
        Err(pcsc::Error::NoReadersAvailable) => Ok(Vec::new()),
        Err(source) => Err(SandboxError::Pcsc {
            call: "SCardListReaders",
            source,
        }),
    }
}

fn find_reader(reader: &VpcdReader, names: &[CString]) -> Option<CString> {
    names
        .iter()
        .find(|name| name.to_str().is_ok_and(|name| reader.is_named(name)))
        .cloned()
}

fn lossy(names: &[CString]) -> Vec<String> {
    names
        .iter()
        .map(|name| CStr::to_string_lossy(name).into_owned())
        .collect()
}

fn log_tail(path: &Path) -> String {
    match fs::read(path) {
        Ok(bytes) => {
            let text = String::from_utf8_lossy(&bytes);
            let lines: Vec<&str> = text.lines().collect();
            lines[lines.len().saturating_sub(LOG_TAIL_LINES)..].join("\n")
        }
        Err(error) => format!("(could not read {}: {error})", path.display()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reader_conf_entry() {
        assert_eq!(
            VpcdReader::new(35001).conf_entry(Path::new("/tmp/x/libifdvpcd-35001.so")),
            "FRIENDLYNAME \"Tessera vpcd 35001\"\nDEVICENAME /dev/null:35001\n\
             LIBPATH /tmp/x/libifdvpcd-35001.so\nCHANNELID 35001\n"
        );
    }

    #[test]
    fn reader_names_as_pcscd_makes_them() {
        let reader = VpcdReader::new(35001);
        assert!(reader.is_named("Tessera vpcd 35001 00 00"));
        assert!(reader.is_named("Tessera vpcd 35001 1F 00"));
        assert!(
            !reader.is_named("Tessera vpcd 35001 00 01"),
            "slot 01 is port 35002"
        );
        assert!(!reader.is_named("Tessera vpcd 350012 00 00"));
        assert!(!reader.is_named("Tessera vpcd 35001"));
        assert!(!reader.is_named("Tessera vpcd 35001 0 00"));
        assert!(!reader.is_named("Tessera vpcd 35001 00 00 "));
    }

    #[test]
    fn ports_are_checked() {
        assert!(readers_for(&[35001, 35003]).is_ok());
        assert!(readers_for(&[]).is_ok());
        let nine: Vec<u16> = (0..9).map(|i| 35001 + 2 * i).collect();
        assert!(readers_for(&nine[..8]).is_ok());
        for bad in [
            &[0][..],
            &[65535],
            &[35001, 35001],
            &[35001, 35002],
            &[35002, 35001],
            &nine,
        ] {
            assert!(
                matches!(readers_for(bad), Err(SandboxError::InvalidPorts { .. })),
                "{bad:?}"
            );
        }
    }
}
