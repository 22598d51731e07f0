//! The host's side of PROTOCOL.md: [`ControllerClient`] over any [`Link`].
//!
//! One request at a time, each with a fresh sequence number; a request that gets no matching
//! answer within the timeout is sent again, byte for byte, up to `retries` times. Garbage lines
//! and answers to older requests are skipped and counted ([`ClientStats`]). Any failure
//! (refusal, timeout, link error, nonsense) is followed by `POWER ALL OFF` before it is
//! returned, and so is dropping the client: an error never leaves a board powered. If even
//! that fails, the controller's own watchdog powers everything off once the host is silent.

use std::fmt;
use std::io;
use std::time::{Duration, Instant};

use super::protocol::{
    ErrorCode, Frame, HelloInfo, LineReader, Reply, Request, Response, StatusInfo, PROTOCOL_VERSION,
};

/// A byte pipe to a controller (a serial port, a pseudo-terminal, an in-memory pair).
pub trait Link {
    /// Writes all of `bytes`.
    fn send(&mut self, bytes: &[u8]) -> io::Result<()>;

    /// Reads what is available into `buf`, waiting at most `timeout`; `Ok(0)` when nothing
    /// came in time.
    fn receive(&mut self, buf: &mut [u8], timeout: Duration) -> io::Result<usize>;

    /// Throws away bytes received but not read yet (before HELLO: leftovers of an earlier
    /// session).
    fn discard_input(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl<L: Link + ?Sized> Link for Box<L> {
    fn send(&mut self, bytes: &[u8]) -> io::Result<()> {
        (**self).send(bytes)
    }
    fn receive(&mut self, buf: &mut [u8], timeout: Duration) -> io::Result<usize> {
        (**self).receive(buf, timeout)
    }
    fn discard_input(&mut self) -> io::Result<()> {
        (**self).discard_input()
    }
}

/// How a [`ControllerClient`] waits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ClientConfig {
    /// How long to wait for each answer.
    pub timeout: Duration,
    /// How many times a request is sent again after a timeout.
    pub retries: u8,
}

impl Default for ClientConfig {
    fn default() -> Self {
        ClientConfig {
            timeout: crate::config::DEFAULT_CONTROLLER_TIMEOUT,
            retries: crate::config::DEFAULT_CONTROLLER_RETRIES,
        }
    }
}

/// What the client skipped or repeated, for reports.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct ClientStats {
    /// Lines discarded as garbage (bad checksum, bad bytes, too long, no sequence number).
    pub garbage: u32,
    /// Well-formed answers to an earlier request (after a retry), skipped.
    pub stale: u32,
    /// Requests sent again after a timeout.
    pub retries: u32,
}

/// What kind of failure a [`ControllerError`] is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ControllerErrorKind {
    /// The serial port failed (unplugged, no permission).
    Link,
    /// No answer after every retry.
    Timeout,
    /// The controller answered `ERR`.
    Refused,
    /// The controller does not speak our protocol version.
    Version,
    /// An answer the protocol does not allow here.
    Protocol,
}

/// Whether the boards were powered off after a failure.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum AllOff {
    /// `POWER ALL OFF` was acknowledged.
    Confirmed,
    /// `POWER ALL OFF` got no acknowledgement; the controller's watchdog will power
    /// everything off once the host is silent.
    Unconfirmed,
}

/// A rig-controller failure: one line saying what was asked, what went wrong and whether the
/// boards were powered off.
#[derive(Debug)]
pub struct ControllerError {
    kind: ControllerErrorKind,
    request: String,
    detail: String,
    code: Option<ErrorCode>,
    all_off: Option<AllOff>,
    source: Option<io::Error>,
}

impl ControllerError {
    fn new(kind: ControllerErrorKind, request: &Request, detail: impl Into<String>) -> Self {
        ControllerError {
            kind,
            request: request.to_string(),
            detail: detail.into(),
            code: None,
            all_off: None,
            source: None,
        }
    }

    /// The controller's serial port `port` could not be opened.
    pub(crate) fn open_failed(port: &str, e: io::Error) -> Self {
        ControllerError {
            kind: ControllerErrorKind::Link,
            request: format!("opening {port}"),
            detail: format!(
                "{e} (is the controller plugged in, and is the port in the rig file right?)"
            ),
            code: None,
            all_off: None,
            source: Some(e),
        }
    }

    /// The controller is smaller than the rig file says.
    pub(crate) fn too_small(detail: String) -> Self {
        ControllerError {
            kind: ControllerErrorKind::Protocol,
            request: "HELLO".to_owned(),
            detail,
            code: None,
            all_off: None,
            source: None,
        }
    }

    /// What kind of failure it is.
    pub fn kind(&self) -> ControllerErrorKind {
        self.kind
    }

    /// The controller's error code, for [`ControllerErrorKind::Refused`] and
    /// [`ControllerErrorKind::Version`].
    pub fn code(&self) -> Option<&ErrorCode> {
        self.code.as_ref()
    }

    /// Whether every board was powered off afterwards (`None`: not attempted, e.g. the failure
    /// was `POWER ALL OFF` itself).
    pub fn all_off(&self) -> Option<AllOff> {
        self.all_off
    }
}

impl fmt::Display for ControllerError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "rig controller: {}: {}", self.request, self.detail)?;
        match self.all_off {
            Some(AllOff::Confirmed) => f.write_str("; every board was powered off"),
            Some(AllOff::Unconfirmed) => f.write_str(
                "; powering the boards off was not confirmed (the controller's watchdog will)",
            ),
            None => Ok(()),
        }
    }
}

impl std::error::Error for ControllerError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        self.source
            .as_ref()
            .map(|e| e as &(dyn std::error::Error + 'static))
    }
}

/// A session with a rig controller (PROTOCOL.md §5).
///
/// # Call sequence
///
/// 1. [`connect`](ControllerClient::connect): discards stale input, says `HELLO 1`, checks
///    the version, then `POWER ALL OFF`: a session starts with every board off.
/// 2. Any number of [`power`](ControllerClient::power),
///    [`select_sim`](ControllerClient::select_sim), [`status`](ControllerClient::status),
///    [`all_off`](ControllerClient::all_off). While anything is powered, call `status` (or
///    anything) more often than the watchdog period ([`HelloInfo::watchdog_ms`]), or the
///    controller powers everything off and ends the session.
/// 3. [`close`](ControllerClient::close), or drop: `POWER ALL OFF`.
///
/// Every error has already been followed by `POWER ALL OFF` when it is returned.
pub struct ControllerClient<L: Link> {
    link: L,
    config: ClientConfig,
    reader: LineReader,
    next_seq: u16,
    info: HelloInfo,
    stats: ClientStats,
    closed: bool,
}

impl<L: Link> fmt::Debug for ControllerClient<L> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ControllerClient")
            .field("info", &self.info)
            .field("stats", &self.stats)
            .finish_non_exhaustive()
    }
}

impl<L: Link> ControllerClient<L> {
    /// Opens a session on `link` (see the call sequence).
    pub fn connect(mut link: L, config: ClientConfig) -> Result<Self, ControllerError> {
        let hello = Request::Hello {
            version: PROTOCOL_VERSION,
        };
        link.discard_input().map_err(|e| link_error(&hello, e))?;
        let mut client = ControllerClient {
            link,
            config,
            reader: LineReader::new(),
            next_seq: 1,
            info: HelloInfo {
                version: 0,
                id: String::new(),
                firmware: String::new(),
                power_channels: 0,
                muxes: 0,
                positions: 0,
                watchdog_ms: 0,
            },
            stats: ClientStats::default(),
            closed: false,
        };
        match client.request(&hello)? {
            Reply::Hello(info) if info.version == PROTOCOL_VERSION => client.info = info,
            Reply::Hello(info) => {
                let mut e = ControllerError::new(
                    ControllerErrorKind::Version,
                    &hello,
                    format!(
                        "the controller answered version {} to HELLO {PROTOCOL_VERSION}",
                        info.version
                    ),
                );
                client.fail_safe(&mut e);
                return Err(e);
            }
            other => return Err(client.unexpected(&hello, &other)),
        }
        client.all_off()?;
        Ok(client)
    }

    /// What the controller said about itself.
    pub fn info(&self) -> &HelloInfo {
        &self.info
    }

    /// What was skipped and repeated so far.
    pub fn stats(&self) -> ClientStats {
        self.stats
    }

    /// Switches power channel `channel`.
    pub fn power(&mut self, channel: u8, on: bool) -> Result<(), ControllerError> {
        let request = Request::Power { channel, on };
        match self.request(&request)? {
            Reply::Power { channel: c, on: o } if c == channel && o == on => Ok(()),
            other => Err(self.unexpected(&request, &other)),
        }
    }

    /// Switches every power channel off.
    pub fn all_off(&mut self) -> Result<(), ControllerError> {
        let request = Request::PowerAllOff;
        match self.exchange(&request) {
            Ok(Reply::PowerAllOff) => Ok(()),
            Ok(other) => Err(ControllerError::new(
                ControllerErrorKind::Protocol,
                &request,
                format!("unexpected answer {}", Response::Ok(other)),
            )),
            Err(e) => Err(e),
        }
    }

    /// Connects SIM `position` (or nothing) to mux `mux`, break-before-make. The controller
    /// refuses while the board on that mux is powered (`ERR POWERED`).
    pub fn select_sim(&mut self, mux: u8, position: Option<u8>) -> Result<(), ControllerError> {
        let request = Request::Sim { mux, position };
        match self.request(&request)? {
            Reply::Sim {
                mux: m,
                position: p,
            } if m == mux && p == position => Ok(()),
            other => Err(self.unexpected(&request, &other)),
        }
    }

    /// Connects SIM `position` to mux `mux`, which must connect nothing, even while its
    /// board is powered: a card pushed into a live socket (`INSERT`).
    pub fn insert_sim(&mut self, mux: u8, position: u8) -> Result<(), ControllerError> {
        let request = Request::Insert { mux, position };
        match self.request(&request)? {
            Reply::Insert {
                mux: m,
                position: p,
            } if m == mux && p == position => Ok(()),
            other => Err(self.unexpected(&request, &other)),
        }
    }

    /// Opens every contact of mux `mux` `delay_ms` milliseconds after the reply, even while
    /// its board is powered: a card pulled out of a live socket (`EJECT`).
    pub fn eject_sim(&mut self, mux: u8, delay_ms: u16) -> Result<(), ControllerError> {
        let request = Request::Eject { mux, delay_ms };
        match self.request(&request)? {
            Reply::Eject {
                mux: m,
                delay_ms: d,
            } if m == mux && d == delay_ms => Ok(()),
            other => Err(self.unexpected(&request, &other)),
        }
    }

    /// The controller's state; also a keep-alive for its watchdog.
    pub fn status(&mut self) -> Result<StatusInfo, ControllerError> {
        let request = Request::Status;
        match self.request(&request)? {
            Reply::Status(status) => Ok(status),
            other => Err(self.unexpected(&request, &other)),
        }
    }

    /// Powers everything off and ends the session.
    pub fn close(mut self) -> Result<(), ControllerError> {
        self.closed = true;
        self.all_off()
    }

    /// The link, for tests and fault injection.
    pub fn link_mut(&mut self) -> &mut L {
        &mut self.link
    }

    fn unexpected(&mut self, request: &Request, reply: &Reply) -> ControllerError {
        let mut e = ControllerError::new(
            ControllerErrorKind::Protocol,
            request,
            format!("unexpected answer {}", Response::Ok(reply.clone())),
        );
        self.fail_safe(&mut e);
        e
    }

    /// `exchange`, and on failure `POWER ALL OFF` before returning the error.
    fn request(&mut self, request: &Request) -> Result<Reply, ControllerError> {
        self.exchange(request).map_err(|mut e| {
            self.fail_safe(&mut e);
            e
        })
    }

    fn fail_safe(&mut self, e: &mut ControllerError) {
        e.all_off = Some(match self.all_off() {
            Ok(()) => AllOff::Confirmed,
            Err(_) => AllOff::Unconfirmed,
        });
    }

    /// One request and its answer, with retries; no fail-safe.
    fn exchange(&mut self, request: &Request) -> Result<Reply, ControllerError> {
        let seq = self.next_seq;
        self.next_seq = self.next_seq.wrapping_add(1);
        let line = Frame::encode(seq, request);
        let attempts = u32::from(self.config.retries) + 1;
        for attempt in 0..attempts {
            if attempt > 0 {
                self.stats.retries = self.stats.retries.saturating_add(1);
            }
            self.link
                .send(line.as_bytes())
                .map_err(|e| link_error(request, e))?;
            if let Some(response) = self.await_response(seq, request)? {
                return match response {
                    Response::Ok(reply) => Ok(reply),
                    Response::Err { code, text } => {
                        let kind = if code == ErrorCode::Version {
                            ControllerErrorKind::Version
                        } else {
                            ControllerErrorKind::Refused
                        };
                        let mut e = ControllerError::new(
                            kind,
                            request,
                            if text.is_empty() {
                                format!("refused ({code})")
                            } else {
                                format!("refused ({code}: {text})")
                            },
                        );
                        e.code = Some(code);
                        Err(e)
                    }
                };
            }
        }
        Err(ControllerError::new(
            ControllerErrorKind::Timeout,
            request,
            format!(
                "no answer after {attempts} tries of {} ms each",
                self.config.timeout.as_millis()
            ),
        ))
    }

    /// Reads lines until the answer to `seq` or the timeout (`None`).
    fn await_response(
        &mut self,
        seq: u16,
        request: &Request,
    ) -> Result<Option<Response>, ControllerError> {
        let deadline = Instant::now() + self.config.timeout;
        let mut buf = [0u8; 256];
        loop {
            let now = Instant::now();
            if now >= deadline {
                return Ok(None);
            }
            let n = self
                .link
                .receive(&mut buf, deadline - now)
                .map_err(|e| link_error(request, e))?;
            for line in self.reader.push_all(buf.get(..n).unwrap_or_default()) {
                let Ok(line) = line else {
                    self.stats.garbage = self.stats.garbage.saturating_add(1);
                    continue;
                };
                let Ok(frame) = Frame::parse(&line) else {
                    self.stats.garbage = self.stats.garbage.saturating_add(1);
                    continue;
                };
                if frame.seq != seq {
                    self.stats.stale = self.stats.stale.saturating_add(1);
                    continue;
                }
                return match Response::parse(frame.payload) {
                    Ok(response) => Ok(Some(response)),
                    Err(e) => Err(ControllerError::new(
                        ControllerErrorKind::Protocol,
                        request,
                        format!("unreadable answer: {e}"),
                    )),
                };
            }
        }
    }
}

impl<L: Link> Drop for ControllerClient<L> {
    fn drop(&mut self) {
        if !self.closed {
            self.closed = true;
            let _ = self.all_off();
        }
    }
}

fn link_error(request: &Request, e: io::Error) -> ControllerError {
    let mut error = ControllerError::new(
        ControllerErrorKind::Link,
        request,
        format!("the serial link failed: {e}"),
    );
    error.source = Some(e);
    error
}
