//! A [`VirtualController`] served on a pseudo-terminal, so the host client is tested end to
//! end through a real serial port (`serialport` opens the pty's slave side like any tty).
//!
//! [`Faults`] wrap the controller's line traffic to drop, corrupt or surround lines with
//! garbage: the fault-injecting wrapper, not a mode of the controller. The server thread runs
//! in wall-clock time (the watchdog sees real silence); tests that need exact time drive
//! [`VirtualController`] directly instead.

use std::collections::BTreeSet;
use std::io;
use std::os::fd::{AsFd, OwnedFd};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use nix::poll::{PollFd, PollFlags, PollTimeout};
use nix::sys::termios::{self, SetArg};

use super::protocol::LineReader;
use super::virtual_controller::VirtualController;

/// Faults on the line, by the 0-based index of the host's line (every non-empty line the
/// server receives counts, garbage included).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Faults {
    /// The controller acts on these lines but its answer is lost.
    pub drop_responses: BTreeSet<usize>,
    /// The answer to these lines arrives with a corrupted checksum.
    pub corrupt_responses: BTreeSet<usize>,
    /// These lines arrive corrupted (one character changed), so the controller discards them.
    pub corrupt_requests: BTreeSet<usize>,
    /// A garbage line precedes the answer to these lines.
    pub garbage_before_responses: BTreeSet<usize>,
    /// The answers to every request whose payload contains one of these are lost (faults
    /// that do not depend on how many keep-alive lines came before).
    pub drop_matching: Vec<String>,
    /// Never answer anything (a controller that does not answer).
    pub mute: bool,
}

/// The garbage line [`Faults::garbage_before_responses`] sends: noise, a non-ASCII byte, no
/// checksum.
pub const GARBAGE_LINE: &[u8] = b"\x00~~ noise \xff on the line\r\n";

/// A virtual controller answering on a pseudo-terminal until dropped.
#[derive(Debug)]
pub struct PtyController {
    path: PathBuf,
    controller: Arc<Mutex<VirtualController>>,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
    /// Held open so the master never sees a hang-up between the host's opens.
    _slave: OwnedFd,
}

impl PtyController {
    /// Opens a pseudo-terminal and serves `controller` on it with `faults`.
    pub fn spawn(controller: VirtualController, faults: Faults) -> io::Result<PtyController> {
        let pty = nix::pty::openpty(None, None).map_err(io::Error::from)?;
        // Raw mode on the slave from the start: no echo, no CR/LF translation.
        let mut attrs = termios::tcgetattr(pty.slave.as_fd()).map_err(io::Error::from)?;
        termios::cfmakeraw(&mut attrs);
        termios::tcsetattr(pty.slave.as_fd(), SetArg::TCSANOW, &attrs).map_err(io::Error::from)?;
        let path = nix::unistd::ttyname(pty.slave.as_fd()).map_err(io::Error::from)?;
        let controller = Arc::new(Mutex::new(controller));
        let stop = Arc::new(AtomicBool::new(false));
        let thread = {
            let controller = Arc::clone(&controller);
            let stop = Arc::clone(&stop);
            let master = pty.master;
            std::thread::Builder::new()
                .name("pty-controller".into())
                .spawn(move || serve(&master, &controller, &stop, &faults))?
        };
        Ok(PtyController {
            path,
            controller,
            stop,
            thread: Some(thread),
            _slave: pty.slave,
        })
    }

    /// The slave side's path (`/dev/pts/N`), to open as a serial port.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The controller, to inspect its state.
    pub fn controller(&self) -> MutexGuard<'_, VirtualController> {
        self.controller
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }
}

impl Drop for PtyController {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

fn serve(
    master: &OwnedFd,
    controller: &Mutex<VirtualController>,
    stop: &AtomicBool,
    faults: &Faults,
) {
    let start = Instant::now();
    let mut reader = LineReader::new();
    let mut index = 0usize;
    let mut buf = [0u8; 512];
    while !stop.load(Ordering::Relaxed) {
        let now = start.elapsed();
        controller
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .poll(now);
        let mut fds = [PollFd::new(master.as_fd(), PollFlags::POLLIN)];
        match nix::poll::poll(&mut fds, PollTimeout::from(10u8)) {
            Ok(0) => continue,
            Ok(_) => {}
            Err(nix::errno::Errno::EINTR) => continue,
            Err(_) => return,
        }
        let n = match nix::unistd::read(master.as_fd(), &mut buf) {
            Ok(n) => n,
            Err(nix::errno::Errno::EINTR | nix::errno::Errno::EAGAIN) => continue,
            // EIO: no slave open right now; wait for the host to open it again.
            Err(nix::errno::Errno::EIO) => {
                std::thread::sleep(Duration::from_millis(5));
                continue;
            }
            Err(_) => return,
        };
        for line in reader.push_all(buf.get(..n).unwrap_or_default()) {
            let i = index;
            index += 1;
            let now = start.elapsed();
            let mut c = controller.lock().unwrap_or_else(PoisonError::into_inner);
            let line = match line {
                Ok(line) if faults.corrupt_requests.contains(&i) => corrupt(&line),
                Ok(line) => line,
                Err(_) => {
                    // Garbage already: let the controller count it the same way.
                    c.receive(b"\x00\n", now);
                    continue;
                }
            };
            let Some(mut response) = c.handle_line(&line, now) else {
                continue;
            };
            drop(c);
            let matching = faults
                .drop_matching
                .iter()
                .any(|m| line.contains(m.as_str()));
            if faults.mute || matching || faults.drop_responses.contains(&i) {
                continue;
            }
            if faults.corrupt_responses.contains(&i) {
                response = corrupt(response.trim_end()) + "\n";
            }
            if faults.garbage_before_responses.contains(&i) {
                let _ = write_all(master, GARBAGE_LINE);
            }
            let _ = write_all(master, response.as_bytes());
        }
    }
}

/// The line with one character changed (so its checksum no longer matches).
fn corrupt(line: &str) -> String {
    let mut bytes = line.as_bytes().to_vec();
    if let Some(b) = bytes.get_mut(2) {
        *b = if *b == b'X' { b'Y' } else { b'X' };
    }
    String::from_utf8(bytes).unwrap_or_default()
}

fn write_all(fd: &OwnedFd, mut bytes: &[u8]) -> io::Result<()> {
    while !bytes.is_empty() {
        match nix::unistd::write(fd.as_fd(), bytes) {
            Ok(n) => bytes = bytes.get(n..).unwrap_or_default(),
            Err(nix::errno::Errno::EINTR | nix::errno::Errno::EAGAIN) => {}
            Err(e) => return Err(e.into()),
        }
    }
    Ok(())
}
