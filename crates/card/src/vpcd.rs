//! A client of vsmartcard's vpcd, so that pcscd sees a virtual card in a reader.
//!
//! vpcd is a pcscd reader driver (`/usr/lib/pcsc/drivers/serial/libifdvpcd.so`). A reader.conf
//! entry with `DEVICENAME /dev/null:<port>` and `CHANNELID <port>` makes it *listen* on TCP port
//! `<port>`, on all interfaces (vsmartcard 3.3 as Debian packages it also opens a second slot of
//! the same reader on `<port> + 1`). The virtual card is the TCP *client*: [`serve`] connects to
//! vpcd and answers it until stopped, reconnecting whenever the connection drops (pcscd
//! restarted, vpcd not listening yet, garbage on the socket).
//!
//! To serve two cards to one pcscd, use the two slots of one vpcd reader (ports `<port>` and
//! `<port> + 1`; 35963 and 35964 with Debian's reader.conf). Two reader.conf entries that share
//! one copy of `libifdvpcd.so` do not work: vpcd keeps its connections in one global array
//! indexed by slot, so the second entry takes over the first one's slots (tessera-testkit gives
//! each reader its own copy of the driver for this reason).
//!
//! # Wire format
//!
//! Every message, in both directions, is a 2-byte big-endian length and then that many bytes of
//! payload. From vpcd, a 1-byte payload is a [`ControlCode`] and anything longer is a command
//! APDU. The card answers exactly two kinds of message: the ATR request (with the ATR) and a
//! command APDU (with the response APDU); power off, power on and reset get no answer. An answer
//! of length 0 tells vpcd that there is no card: it closes the connection. vpcd asks for the ATR
//! each time pcscd polls for the card's presence (a few times a second), so
//! [`VpcdCard::atr`] is called often and must be cheap.
//!
//! # Latency
//!
//! Each answer goes out as one `write` (length and payload together), with `TCP_NODELAY` set and
//! `TCP_QUICKACK` re-armed after every read. Without these, Nagle's algorithm and delayed ACKs
//! cost about 40 to 60 ms per APDU; with them a round trip through pcscd is well under a
//! millisecond.
//!
//! # Threading
//!
//! [`serve`] blocks the calling thread; [`spawn`] and [`spawn_all`] run each card on its own
//! thread. A serving thread checks its [`StopHandle`] between messages and at least every
//! [`ServeConfig::poll_interval`] while waiting, so stopping takes at most about that long
//! (unless the card itself is busy in [`VpcdCard::transmit`]).
//!
//! Loopback only: [`serve`] refuses an address that is not a loopback address.
//!
//! What it does not know: pcscd, PC/SC client APIs, the applet behind [`VpcdCard`]. It logs
//! nothing: what happens to the connection is reported as [`ServeEvent`]s and in a
//! [`ServeSummary`].

use std::io::{self, Read, Write};
use std::net::{Ipv4Addr, SocketAddr, SocketAddrV4, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

/// vpcd's default port (0x8C7B), as in the reader.conf that Debian's vsmartcard-vpcd installs.
pub const DEFAULT_PORT: u16 = 0x8C7B;

/// The longest payload a vpcd message can carry: its length field has 16 bits.
pub const MAX_PAYLOAD_LEN: usize = 0xFFFF;

/// A card that vpcd can serve: the contacts of a smart card as vpcd models them.
///
/// # Call sequence
///
/// On each connection, vpcd typically asks for the ATR (presence polling), then powers the card
/// on (or resets it) when a PC/SC client connects, asks for the ATR again, sends command APDUs,
/// and powers the card off or resets it when the client disconnects. The ATR request keeps
/// coming while the connection is idle. When the connection ends for any reason while the card
/// is powered (after [`power_on`](Self::power_on) or [`reset`](Self::reset) and no
/// [`power_off`](Self::power_off) since), the server calls [`power_off`](Self::power_off): the
/// card was pulled from the reader and lost power.
///
/// None of these may panic on any input: a panic ends the serving thread
/// ([`ServeError::CardPanicked`]).
pub trait VpcdCard {
    /// The contacts were powered (vpcd control code 1): a cold reset.
    fn power_on(&mut self);
    /// The contacts were unpowered (vpcd control code 0).
    fn power_off(&mut self);
    /// A warm reset while powered (vpcd control code 2).
    fn reset(&mut self);
    /// The answer to reset (vpcd control code 4). vpcd asks for it every time pcscd polls for
    /// the card, so this must be cheap. An empty ATR (or one longer than
    /// [`MAX_PAYLOAD_LEN`]) makes vpcd report the card as removed.
    fn atr(&self) -> Vec<u8>;
    /// Answers a command APDU (at least 2 bytes, up to [`MAX_PAYLOAD_LEN`]) with a response
    /// APDU (data and SW1 SW2). An answer longer than [`MAX_PAYLOAD_LEN`] cannot be sent:
    /// the connection is dropped ([`ConnectionError::AnswerTooLong`]).
    fn transmit(&mut self, command: &[u8]) -> Vec<u8>;
}

impl<T: VpcdCard + ?Sized> VpcdCard for &mut T {
    fn power_on(&mut self) {
        (**self).power_on();
    }
    fn power_off(&mut self) {
        (**self).power_off();
    }
    fn reset(&mut self) {
        (**self).reset();
    }
    fn atr(&self) -> Vec<u8> {
        (**self).atr()
    }
    fn transmit(&mut self, command: &[u8]) -> Vec<u8> {
        (**self).transmit(command)
    }
}

impl<T: VpcdCard + ?Sized> VpcdCard for Box<T> {
    fn power_on(&mut self) {
        (**self).power_on();
    }
    fn power_off(&mut self) {
        (**self).power_off();
    }
    fn reset(&mut self) {
        (**self).reset();
    }
    fn atr(&self) -> Vec<u8> {
        (**self).atr()
    }
    fn transmit(&mut self, command: &[u8]) -> Vec<u8> {
        (**self).transmit(command)
    }
}

/// A vpcd control code: the payload of a 1-byte message from vpcd.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ControlCode {
    /// 0: power the card off. No answer.
    PowerOff,
    /// 1: power the card on. No answer.
    PowerOn,
    /// 2: reset the card. No answer.
    Reset,
    /// 4: send the ATR. Answered with the ATR.
    Atr,
    /// Any other byte; the server drops the connection ([`ConnectionError::UnknownControl`]).
    Unknown(u8),
}

impl From<u8> for ControlCode {
    fn from(byte: u8) -> Self {
        match byte {
            0 => Self::PowerOff,
            1 => Self::PowerOn,
            2 => Self::Reset,
            4 => Self::Atr,
            other => Self::Unknown(other),
        }
    }
}

impl From<ControlCode> for u8 {
    fn from(code: ControlCode) -> Self {
        match code {
            ControlCode::PowerOff => 0,
            ControlCode::PowerOn => 1,
            ControlCode::Reset => 2,
            ControlCode::Atr => 4,
            ControlCode::Unknown(other) => other,
        }
    }
}

/// One message from vpcd, by its payload.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Request<'a> {
    /// A 1-byte payload.
    Control(ControlCode),
    /// A longer payload: a command APDU.
    Command(&'a [u8]),
}

impl<'a> Request<'a> {
    /// Parses a message payload (the bytes after the length field). Never panics.
    pub fn parse(payload: &'a [u8]) -> Result<Self, ConnectionError> {
        match payload {
            [] => Err(ConnectionError::EmptyMessage),
            [code] => Ok(Self::Control(ControlCode::from(*code))),
            apdu => Ok(Self::Command(apdu)),
        }
    }
}

/// Appends one vpcd message (length field and payload) to `out`. Fails, leaving `out` as it
/// was, when the payload is longer than [`MAX_PAYLOAD_LEN`].
pub fn encode_message(payload: &[u8], out: &mut Vec<u8>) -> Result<(), ConnectionError> {
    let len =
        u16::try_from(payload.len()).map_err(|_| ConnectionError::AnswerTooLong(payload.len()))?;
    out.reserve(2 + payload.len());
    out.extend_from_slice(&len.to_be_bytes());
    out.extend_from_slice(payload);
    Ok(())
}

/// Why a connection to vpcd was dropped (and then re-established).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ConnectionError {
    /// vpcd sent a message of length 0.
    #[error("vpcd sent an empty message (length 0); a message carries a control code or an APDU")]
    EmptyMessage,
    /// The connection closed inside a length field.
    #[error("the connection closed after {received} of the 2 bytes of a length field")]
    TruncatedLength {
        /// Bytes of the length field that arrived (1).
        received: usize,
    },
    /// The connection closed inside a payload.
    #[error("the connection closed after {received} of the {expected} bytes of a message")]
    TruncatedPayload {
        /// The length the message announced.
        expected: usize,
        /// The bytes that arrived.
        received: usize,
    },
    /// vpcd sent a control code this client does not know.
    #[error(
        "vpcd sent unknown control code {0:#04x} (known: 0 power off, 1 power on, 2 reset, 4 ATR)"
    )]
    UnknownControl(u8),
    /// The card's answer does not fit in a vpcd message.
    #[error("the card's answer has {0} bytes; a vpcd message carries at most 65535")]
    AnswerTooLong(usize),
    /// The socket failed.
    #[error("socket error: {0}")]
    Io(io::ErrorKind),
}

/// Why serving could not start or did not end cleanly.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ServeError {
    /// The address is not a loopback address.
    #[error(
        "{0} is not a loopback address: virtual cards are served on loopback only \
         (vpcd listens on all interfaces; connect to 127.0.0.1:<port>)"
    )]
    NotLoopback(SocketAddr),
    /// Two cards were given the same address.
    #[error("two cards were given the same vpcd address {0}; give each card its own port")]
    DuplicateAddress(SocketAddr),
    /// The serving thread could not be created.
    #[error("could not start a serving thread: {0}")]
    Spawn(io::ErrorKind),
    /// The card panicked; its serving thread ended.
    #[error("the card served on {0} panicked")]
    CardPanicked(SocketAddr),
}

/// Where and how to serve a card.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServeConfig {
    /// vpcd's address; must be a loopback address.
    pub addr: SocketAddr,
    /// How long one connection attempt may take.
    pub connect_timeout: Duration,
    /// The wait after the first failed connection attempt, and after a dropped connection.
    pub retry_min: Duration,
    /// The longest wait between connection attempts (the wait doubles up to this).
    pub retry_max: Duration,
    /// How often a waiting serving thread looks at its [`StopHandle`].
    pub poll_interval: Duration,
    /// How long writing one answer may block before the connection is dropped.
    pub write_timeout: Duration,
}

impl ServeConfig {
    /// Serving on `127.0.0.1:<port>` with the default timings: retries from 10 ms doubling up
    /// to 500 ms, a stop check every 20 ms, 5 s to write an answer.
    pub fn loopback(port: u16) -> Self {
        Self {
            addr: SocketAddr::V4(SocketAddrV4::new(Ipv4Addr::LOCALHOST, port)),
            connect_timeout: Duration::from_secs(1),
            retry_min: Duration::from_millis(10),
            retry_max: Duration::from_millis(500),
            poll_interval: Duration::from_millis(20),
            write_timeout: Duration::from_secs(5),
        }
    }
}

impl Default for ServeConfig {
    /// [`ServeConfig::loopback`] on [`DEFAULT_PORT`].
    fn default() -> Self {
        Self::loopback(DEFAULT_PORT)
    }
}

/// Tells serving threads to stop. Clones share one flag.
#[derive(Debug, Clone, Default)]
pub struct StopHandle(Arc<AtomicBool>);

impl StopHandle {
    /// A handle that has not been triggered.
    pub fn new() -> Self {
        Self::default()
    }

    /// Asks every server watching this handle (or a clone) to disconnect and return.
    pub fn stop(&self) {
        self.0.store(true, Ordering::SeqCst);
    }

    /// Whether [`stop`](Self::stop) was called on this handle or a clone.
    pub fn is_stopped(&self) -> bool {
        self.0.load(Ordering::SeqCst)
    }
}

/// Something that happened to a server's connection, for an observer to log or count.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum ServeEvent {
    /// A connection attempt failed (vpcd not listening yet, pcscd not running); the server
    /// waits and tries again.
    ConnectFailed(io::ErrorKind),
    /// Connected to vpcd.
    Connected,
    /// The connection ended.
    Disconnected(Disconnect),
}

/// How a connection ended.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Disconnect {
    /// vpcd closed the connection between messages (pcscd stopped, or vpcd ejected the card).
    ClosedByVpcd,
    /// The [`StopHandle`] was triggered.
    Stopped,
    /// Bad input or a socket failure; the server reconnects.
    Error(ConnectionError),
}

/// What a server did, returned when it stops.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ServeSummary {
    /// Connections made to vpcd.
    pub connections: u64,
    /// Command APDUs answered.
    pub commands: u64,
    /// Connections dropped for a [`ConnectionError`].
    pub errors: u64,
    /// The last of those errors.
    pub last_error: Option<ConnectionError>,
}

/// Serves `card` to the vpcd at `config.addr` until `stop` is triggered: connects (retrying with
/// a doubling wait while vpcd is not listening), answers vpcd's messages, and reconnects when
/// the connection drops. Returns what it did; fails at once only for a non-loopback address.
pub fn serve<C: VpcdCard + ?Sized>(
    card: &mut C,
    config: &ServeConfig,
    stop: &StopHandle,
) -> Result<ServeSummary, ServeError> {
    serve_observed(card, config, stop, |_| {})
}

/// [`serve`], calling `observer` on every [`ServeEvent`] (this module logs nothing itself).
pub fn serve_observed<C: VpcdCard + ?Sized, F: FnMut(&ServeEvent)>(
    card: &mut C,
    config: &ServeConfig,
    stop: &StopHandle,
    mut observer: F,
) -> Result<ServeSummary, ServeError> {
    check_loopback(config.addr)?;
    let mut summary = ServeSummary::default();
    let mut retry = config.retry_min;
    while !stop.is_stopped() {
        match TcpStream::connect_timeout(&config.addr, config.connect_timeout) {
            Ok(stream) => {
                retry = config.retry_min;
                summary.connections += 1;
                observer(&ServeEvent::Connected);
                let end = Connection::new(stream, config, stop).run(card, &mut summary);
                if let Disconnect::Error(error) = &end {
                    summary.errors += 1;
                    summary.last_error = Some(error.clone());
                }
                observer(&ServeEvent::Disconnected(end));
                sleep_unless_stopped(config.retry_min, config.poll_interval, stop);
            }
            Err(error) => {
                observer(&ServeEvent::ConnectFailed(error.kind()));
                sleep_unless_stopped(retry, config.poll_interval, stop);
                retry = retry.saturating_mul(2).min(config.retry_max);
            }
        }
    }
    Ok(summary)
}

/// A card being served on its own thread. Dropping it stops the server and waits for the
/// thread; [`stop`](Self::stop) does the same and gives the card back.
#[derive(Debug)]
pub struct ServingCard<C> {
    addr: SocketAddr,
    stop: StopHandle,
    thread: Option<JoinHandle<(C, ServeSummary)>>,
}

impl<C> ServingCard<C> {
    /// The vpcd address the card is served on.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// A handle that stops this server (and any other server sharing it).
    pub fn stop_handle(&self) -> StopHandle {
        self.stop.clone()
    }

    /// Stops the server, waits for its thread, and returns the card and what the server did.
    pub fn stop(mut self) -> Result<(C, ServeSummary), ServeError> {
        self.stop.stop();
        self.join()
    }

    fn join(&mut self) -> Result<(C, ServeSummary), ServeError> {
        match self.thread.take() {
            Some(thread) => thread
                .join()
                .map_err(|_| ServeError::CardPanicked(self.addr)),
            // Only reachable after a join, which consumes or drops `self`.
            None => Err(ServeError::CardPanicked(self.addr)),
        }
    }
}

impl<C> Drop for ServingCard<C> {
    fn drop(&mut self) {
        if self.thread.is_some() {
            self.stop.stop();
            // A panic in the card was the card's; nothing to add to it while dropping.
            let _ = self.join();
        }
    }
}

/// Serves `card` on a new thread (named `vpcd <port>`) until the returned [`ServingCard`] is
/// stopped or dropped.
///
/// The thread inherits the calling thread's namespaces: a card served to a pcscd in a private
/// network namespace must be spawned from a thread inside it.
pub fn spawn<C: VpcdCard + Send + 'static>(
    card: C,
    config: ServeConfig,
) -> Result<ServingCard<C>, ServeError> {
    spawn_observed(card, config, |_| {})
}

/// [`spawn`], calling `observer` on the serving thread for every [`ServeEvent`].
pub fn spawn_observed<C, F>(
    card: C,
    config: ServeConfig,
    observer: F,
) -> Result<ServingCard<C>, ServeError>
where
    C: VpcdCard + Send + 'static,
    F: FnMut(&ServeEvent) + Send + 'static,
{
    spawn_with(card, config, StopHandle::new(), observer)
}

/// Several cards being served, each on its own thread, all stopped by one [`StopHandle`].
/// Dropping it stops them all.
#[derive(Debug)]
pub struct ServingCards<C> {
    stop: StopHandle,
    cards: Vec<ServingCard<C>>,
}

impl<C> ServingCards<C> {
    /// The cards' vpcd addresses, in the order they were given.
    pub fn addrs(&self) -> Vec<SocketAddr> {
        self.cards.iter().map(ServingCard::addr).collect()
    }

    /// The handle that stops them all.
    pub fn stop_handle(&self) -> StopHandle {
        self.stop.clone()
    }

    /// Stops every server, waits for every thread, and returns the cards and what each server
    /// did, in the order they were given (or the first card that panicked).
    pub fn stop(self) -> Result<Vec<(C, ServeSummary)>, ServeError> {
        self.stop.stop();
        let results: Vec<_> = self.cards.into_iter().map(ServingCard::stop).collect();
        results.into_iter().collect()
    }
}

/// Serves each card on its own address and thread until the returned [`ServingCards`] is
/// stopped or dropped. Every address must be a loopback address and differ from the others.
pub fn spawn_all<C, I>(cards: I) -> Result<ServingCards<C>, ServeError>
where
    C: VpcdCard + Send + 'static,
    I: IntoIterator<Item = (C, ServeConfig)>,
{
    let cards: Vec<(C, ServeConfig)> = cards.into_iter().collect();
    for (i, (_, config)) in cards.iter().enumerate() {
        check_loopback(config.addr)?;
        if cards[..i]
            .iter()
            .any(|(_, earlier)| earlier.addr == config.addr)
        {
            return Err(ServeError::DuplicateAddress(config.addr));
        }
    }
    let stop = StopHandle::new();
    let mut serving = Vec::with_capacity(cards.len());
    for (card, config) in cards {
        // On failure, the cards already started are stopped when `serving` drops.
        serving.push(spawn_with(card, config, stop.clone(), |_| {})?);
    }
    Ok(ServingCards {
        stop,
        cards: serving,
    })
}

fn spawn_with<C, F>(
    mut card: C,
    config: ServeConfig,
    stop: StopHandle,
    observer: F,
) -> Result<ServingCard<C>, ServeError>
where
    C: VpcdCard + Send + 'static,
    F: FnMut(&ServeEvent) + Send + 'static,
{
    check_loopback(config.addr)?;
    let addr = config.addr;
    let thread_stop = stop.clone();
    let thread = thread::Builder::new()
        .name(format!("vpcd {}", addr.port()))
        .spawn(move || {
            // The address was checked above, so serving can only end by being stopped.
            let summary =
                serve_observed(&mut card, &config, &thread_stop, observer).unwrap_or_default();
            (card, summary)
        })
        .map_err(|error| ServeError::Spawn(error.kind()))?;
    Ok(ServingCard {
        addr,
        stop,
        thread: Some(thread),
    })
}

fn check_loopback(addr: SocketAddr) -> Result<(), ServeError> {
    if addr.ip().is_loopback() {
        Ok(())
    } else {
        Err(ServeError::NotLoopback(addr))
    }
}

/// Sleeps for `duration`, in slices of at most `poll`, returning early once `stop` is triggered.
fn sleep_unless_stopped(duration: Duration, poll: Duration, stop: &StopHandle) {
    let deadline = Instant::now() + duration;
    loop {
        if stop.is_stopped() {
            return;
        }
        let now = Instant::now();
        if now >= deadline {
            return;
        }
        thread::sleep((deadline - now).min(poll).max(Duration::from_millis(1)));
    }
}

/// The outcome of filling a buffer from the socket.
enum Fill {
    /// The buffer is full.
    Full,
    /// The peer closed the connection after this many bytes.
    Closed(usize),
    /// The stop handle was triggered while waiting.
    Stopped,
}

/// The outcome of reading one message.
enum Received {
    /// A message; its payload is in the connection's buffer.
    Message,
    /// vpcd closed the connection between messages.
    Closed,
    /// The stop handle was triggered while waiting.
    Stopped,
}

/// One connection to vpcd.
struct Connection<'a> {
    stream: TcpStream,
    stop: &'a StopHandle,
    poll_interval: Duration,
    write_timeout: Duration,
    payload: Vec<u8>,
    out: Vec<u8>,
}

impl<'a> Connection<'a> {
    fn new(stream: TcpStream, config: &ServeConfig, stop: &'a StopHandle) -> Self {
        Self {
            stream,
            stop,
            poll_interval: config.poll_interval,
            write_timeout: config.write_timeout,
            payload: Vec::new(),
            out: Vec::new(),
        }
    }

    /// Answers vpcd until the connection ends; powers the card off if it was left powered.
    fn run<C: VpcdCard + ?Sized>(
        &mut self,
        card: &mut C,
        summary: &mut ServeSummary,
    ) -> Disconnect {
        let mut powered = false;
        let end = self.answer_all(card, summary, &mut powered);
        if powered {
            card.power_off();
        }
        end
    }

    fn answer_all<C: VpcdCard + ?Sized>(
        &mut self,
        card: &mut C,
        summary: &mut ServeSummary,
        powered: &mut bool,
    ) -> Disconnect {
        if let Err(error) = self.configure() {
            return Disconnect::Error(error);
        }
        loop {
            if self.stop.is_stopped() {
                return Disconnect::Stopped;
            }
            match self.receive() {
                Ok(Received::Message) => {}
                Ok(Received::Closed) => return Disconnect::ClosedByVpcd,
                Ok(Received::Stopped) => return Disconnect::Stopped,
                Err(error) => return Disconnect::Error(error),
            }
            let answer = match Request::parse(&self.payload) {
                Err(error) => return Disconnect::Error(error),
                Ok(Request::Control(ControlCode::PowerOff)) => {
                    card.power_off();
                    *powered = false;
                    None
                }
                Ok(Request::Control(ControlCode::PowerOn)) => {
                    card.power_on();
                    *powered = true;
                    None
                }
                Ok(Request::Control(ControlCode::Reset)) => {
                    card.reset();
                    *powered = true;
                    None
                }
                Ok(Request::Control(ControlCode::Atr)) => Some(card.atr()),
                Ok(Request::Control(ControlCode::Unknown(code))) => {
                    return Disconnect::Error(ConnectionError::UnknownControl(code))
                }
                Ok(Request::Command(command)) => {
                    summary.commands += 1;
                    Some(card.transmit(command))
                }
            };
            if let Some(answer) = answer {
                if let Err(error) = self.send(&answer) {
                    return Disconnect::Error(error);
                }
            }
        }
    }

    fn configure(&self) -> Result<(), ConnectionError> {
        let io = |error: io::Error| ConnectionError::Io(error.kind());
        self.stream.set_nodelay(true).map_err(io)?;
        self.stream
            .set_read_timeout(Some(self.poll_interval.max(Duration::from_millis(1))))
            .map_err(io)?;
        self.stream
            .set_write_timeout(Some(self.write_timeout.max(Duration::from_millis(1))))
            .map_err(io)?;
        self.quickack();
        Ok(())
    }

    /// Re-arms TCP_QUICKACK (the kernel clears it on its own), so the ACK for what vpcd sent
    /// goes out at once instead of waiting to piggyback on the answer.
    fn quickack(&self) {
        #[cfg(any(target_os = "linux", target_os = "android"))]
        {
            // A failure here only costs latency, never correctness.
            let _ = socket2::SockRef::from(&self.stream).set_tcp_quickack(true);
        }
    }

    /// Reads one message into `self.payload`.
    fn receive(&mut self) -> Result<Received, ConnectionError> {
        let mut length = [0u8; 2];
        match self.fill(&mut length)? {
            Fill::Full => {}
            Fill::Closed(0) => return Ok(Received::Closed),
            Fill::Closed(received) => return Err(ConnectionError::TruncatedLength { received }),
            Fill::Stopped => return Ok(Received::Stopped),
        }
        let expected = usize::from(u16::from_be_bytes(length));
        if expected == 0 {
            return Err(ConnectionError::EmptyMessage);
        }
        let mut payload = std::mem::take(&mut self.payload);
        payload.clear();
        payload.resize(expected, 0);
        let filled = self.fill(&mut payload);
        self.payload = payload;
        match filled? {
            Fill::Full => Ok(Received::Message),
            Fill::Closed(received) => Err(ConnectionError::TruncatedPayload { expected, received }),
            Fill::Stopped => Ok(Received::Stopped),
        }
    }

    /// Fills `buffer` from the socket, looking at the stop handle whenever a read times out.
    fn fill(&mut self, buffer: &mut [u8]) -> Result<Fill, ConnectionError> {
        let mut filled = 0;
        while filled < buffer.len() {
            match self.stream.read(&mut buffer[filled..]) {
                Ok(0) => return Ok(Fill::Closed(filled)),
                Ok(n) => {
                    filled += n;
                    self.quickack();
                }
                Err(error)
                    if matches!(
                        error.kind(),
                        io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
                    ) =>
                {
                    if self.stop.is_stopped() {
                        return Ok(Fill::Stopped);
                    }
                }
                Err(error) if error.kind() == io::ErrorKind::Interrupted => {}
                Err(error) => return Err(ConnectionError::Io(error.kind())),
            }
        }
        Ok(Fill::Full)
    }

    /// Sends one message, length and payload in a single write.
    fn send(&mut self, payload: &[u8]) -> Result<(), ConnectionError> {
        self.out.clear();
        encode_message(payload, &mut self.out)?;
        self.stream
            .write_all(&self.out)
            .map_err(|error| ConnectionError::Io(error.kind()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::TcpListener;
    use std::sync::Mutex;

    /// What the test card saw, in order.
    #[derive(Debug, Clone, PartialEq, Eq)]
    enum Seen {
        PowerOn,
        PowerOff,
        Reset,
        Command(Vec<u8>),
    }

    const ATR: [u8; 4] = [0x3B, 0x80, 0x80, 0x01];

    /// Echoes each command with 90 00 appended; records every call.
    #[derive(Debug, Clone, Default)]
    struct EchoCard {
        seen: Arc<Mutex<Vec<Seen>>>,
        /// When set, answers every command with this many bytes instead.
        answer_len: Option<usize>,
    }

    impl EchoCard {
        fn record(&self, seen: Seen) {
            self.seen.lock().unwrap().push(seen);
        }
        fn seen(&self) -> Vec<Seen> {
            self.seen.lock().unwrap().clone()
        }
    }

    impl VpcdCard for EchoCard {
        fn power_on(&mut self) {
            self.record(Seen::PowerOn);
        }
        fn power_off(&mut self) {
            self.record(Seen::PowerOff);
        }
        fn reset(&mut self) {
            self.record(Seen::Reset);
        }
        fn atr(&self) -> Vec<u8> {
            ATR.to_vec()
        }
        fn transmit(&mut self, command: &[u8]) -> Vec<u8> {
            self.record(Seen::Command(command.to_vec()));
            match self.answer_len {
                Some(len) => vec![0x55; len],
                None => [command, &[0x90, 0x00]].concat(),
            }
        }
    }

    /// The vpcd side of one accepted connection.
    struct FakeVpcd {
        stream: TcpStream,
    }

    impl FakeVpcd {
        fn accept(listener: &TcpListener) -> Self {
            let (stream, _) = listener.accept().unwrap();
            stream
                .set_read_timeout(Some(Duration::from_secs(5)))
                .unwrap();
            Self { stream }
        }

        fn send_raw(&mut self, bytes: &[u8]) {
            self.stream.write_all(bytes).unwrap();
        }

        fn send(&mut self, payload: &[u8]) {
            let mut message = Vec::new();
            encode_message(payload, &mut message).unwrap();
            self.send_raw(&message);
        }

        fn receive(&mut self) -> Vec<u8> {
            let mut length = [0u8; 2];
            self.stream.read_exact(&mut length).unwrap();
            let mut payload = vec![0; usize::from(u16::from_be_bytes(length))];
            self.stream.read_exact(&mut payload).unwrap();
            payload
        }

        fn exchange(&mut self, payload: &[u8]) -> Vec<u8> {
            self.send(payload);
            self.receive()
        }

        /// Waits until the card side closes the connection.
        fn expect_closed(&mut self) {
            // A close with unread bytes in the card's buffer arrives as a reset.
            let mut byte = [0u8; 1];
            match self.stream.read(&mut byte) {
                Ok(0) => {}
                Err(error) if error.kind() == io::ErrorKind::ConnectionReset => {}
                other => panic!("expected the card to hang up, got {other:?}"),
            }
        }
    }

    fn bind_fake_vpcd() -> (TcpListener, ServeConfig) {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        (listener, ServeConfig::loopback(port))
    }

    fn events() -> (
        Arc<Mutex<Vec<ServeEvent>>>,
        impl FnMut(&ServeEvent) + Send + 'static,
    ) {
        let events = Arc::new(Mutex::new(Vec::new()));
        let sink = Arc::clone(&events);
        (events, move |event: &ServeEvent| {
            sink.lock().unwrap().push(event.clone())
        })
    }

    /// Waits (up to 5 s) until `condition` holds.
    fn wait_until(mut condition: impl FnMut() -> bool) {
        let deadline = Instant::now() + Duration::from_secs(5);
        while !condition() {
            assert!(Instant::now() < deadline, "timed out");
            thread::sleep(Duration::from_millis(5));
        }
    }

    #[test]
    fn parse_requests() {
        assert_eq!(Request::parse(&[]), Err(ConnectionError::EmptyMessage));
        assert_eq!(
            Request::parse(&[0]),
            Ok(Request::Control(ControlCode::PowerOff))
        );
        assert_eq!(
            Request::parse(&[1]),
            Ok(Request::Control(ControlCode::PowerOn))
        );
        assert_eq!(
            Request::parse(&[2]),
            Ok(Request::Control(ControlCode::Reset))
        );
        assert_eq!(Request::parse(&[4]), Ok(Request::Control(ControlCode::Atr)));
        assert_eq!(
            Request::parse(&[3]),
            Ok(Request::Control(ControlCode::Unknown(3)))
        );
        let select = [0x00, 0xA4, 0x04, 0x00];
        assert_eq!(Request::parse(&select), Ok(Request::Command(&select)));
        for byte in 0..=u8::MAX {
            assert_eq!(u8::from(ControlCode::from(byte)), byte);
        }
    }

    #[test]
    fn encode_messages() {
        let mut out = vec![0xEE];
        encode_message(&[0x90, 0x00], &mut out).unwrap();
        assert_eq!(out, [0xEE, 0x00, 0x02, 0x90, 0x00]);
        let mut out = Vec::new();
        encode_message(&vec![0; MAX_PAYLOAD_LEN], &mut out).unwrap();
        assert_eq!(out[..2], [0xFF, 0xFF]);
        let mut out = Vec::new();
        assert_eq!(
            encode_message(&vec![0; MAX_PAYLOAD_LEN + 1], &mut out),
            Err(ConnectionError::AnswerTooLong(MAX_PAYLOAD_LEN + 1))
        );
        assert!(out.is_empty());
    }

    #[test]
    fn refuses_non_loopback() {
        let mut config = ServeConfig::loopback(35963);
        config.addr = "192.0.2.1:35963".parse().unwrap();
        let result = serve(&mut EchoCard::default(), &config, &StopHandle::new());
        assert_eq!(result, Err(ServeError::NotLoopback(config.addr)));
        assert!(matches!(
            spawn(EchoCard::default(), config),
            Err(ServeError::NotLoopback(_))
        ));
    }

    #[test]
    fn control_codes_and_framing() {
        let (listener, config) = bind_fake_vpcd();
        let card = EchoCard::default();
        let serving = spawn(card.clone(), config).unwrap();
        let mut vpcd = FakeVpcd::accept(&listener);

        // vpcd's presence poll: the ATR.
        assert_eq!(vpcd.exchange(&[4]), ATR);
        vpcd.send(&[1]); // power on: no answer
        assert_eq!(vpcd.exchange(&[4]), ATR);
        // SELECT by AID: echoed with 90 00 appended.
        let select = [0x00, 0xA4, 0x04, 0x00, 0x02, 0xE8, 0x2B];
        assert_eq!(
            vpcd.exchange(&select),
            [&select[..], &[0x90, 0x00]].concat()
        );
        // A message split across writes is reassembled.
        vpcd.send_raw(&[0x00]);
        thread::sleep(Duration::from_millis(30));
        vpcd.send_raw(&[0x04, 0x00, 0x84]);
        thread::sleep(Duration::from_millis(30));
        vpcd.send_raw(&[0x00, 0x08]);
        assert_eq!(vpcd.receive(), [0x00, 0x84, 0x00, 0x08, 0x90, 0x00]);
        // The largest message both ways.
        let big: Vec<u8> = (0..MAX_PAYLOAD_LEN - 2).map(|i| i as u8).collect();
        let answer = vpcd.exchange(&big);
        assert_eq!(answer.len(), MAX_PAYLOAD_LEN);
        assert_eq!(answer[..big.len()], big[..]);
        vpcd.send(&[2]); // reset
        vpcd.send(&[0]); // power off
        assert_eq!(vpcd.exchange(&[4]), ATR);

        let (_, summary) = serving.stop().unwrap();
        assert_eq!(summary.commands, 3);
        assert_eq!(summary.errors, 0);
        assert_eq!(
            card.seen(),
            [
                Seen::PowerOn,
                Seen::Command(select.to_vec()),
                Seen::Command(vec![0x00, 0x84, 0x00, 0x08]),
                Seen::Command(big),
                Seen::Reset,
                Seen::PowerOff,
            ]
        );
    }

    /// Sends `bad` on a first connection, expects the card to hang up and come back, and checks
    /// that the second connection works and the error was reported.
    fn drops_and_reconnects(bad: &[u8], close_after: bool, expected: ConnectionError) {
        let (listener, config) = bind_fake_vpcd();
        let card = EchoCard::default();
        let (events, observer) = events();
        let serving = spawn_observed(card.clone(), config, observer).unwrap();

        let mut first = FakeVpcd::accept(&listener);
        first.send(&[1]); // powered, so the drop must power the card off
        first.send_raw(bad);
        if close_after {
            first.stream.shutdown(std::net::Shutdown::Write).unwrap();
        }
        first.expect_closed();

        let mut second = FakeVpcd::accept(&listener);
        assert_eq!(second.exchange(&[4]), ATR);
        assert_eq!(
            second.exchange(&[0x00, 0x84, 0x00, 0x08]),
            [0x00, 0x84, 0x00, 0x08, 0x90, 0x00]
        );

        let (_, summary) = serving.stop().unwrap();
        assert_eq!(summary.connections, 2);
        assert_eq!(summary.errors, 1);
        assert_eq!(summary.last_error, Some(expected.clone()));
        assert_eq!(card.seen()[..2], [Seen::PowerOn, Seen::PowerOff]);
        let events = events.lock().unwrap().clone();
        assert_eq!(
            events,
            [
                ServeEvent::Connected,
                ServeEvent::Disconnected(Disconnect::Error(expected)),
                ServeEvent::Connected,
                ServeEvent::Disconnected(Disconnect::Stopped),
            ]
        );
    }

    #[test]
    fn empty_message_drops_the_connection() {
        drops_and_reconnects(&[0x00, 0x00], false, ConnectionError::EmptyMessage);
    }

    #[test]
    fn unknown_control_code_drops_the_connection() {
        drops_and_reconnects(
            &[0x00, 0x01, 0x03],
            false,
            ConnectionError::UnknownControl(3),
        );
    }

    #[test]
    fn truncated_length_drops_the_connection() {
        drops_and_reconnects(
            &[0x00],
            true,
            ConnectionError::TruncatedLength { received: 1 },
        );
    }

    #[test]
    fn truncated_payload_drops_the_connection() {
        drops_and_reconnects(
            &[0x00, 0x10, 0x00, 0xA4, 0x04],
            true,
            ConnectionError::TruncatedPayload {
                expected: 16,
                received: 3,
            },
        );
    }

    #[test]
    fn answer_too_long_drops_the_connection() {
        let (listener, config) = bind_fake_vpcd();
        let card = EchoCard {
            answer_len: Some(MAX_PAYLOAD_LEN + 1),
            ..EchoCard::default()
        };
        let serving = spawn(card, config).unwrap();
        let mut vpcd = FakeVpcd::accept(&listener);
        vpcd.send(&[0x00, 0x84, 0x00, 0x08]);
        vpcd.expect_closed();
        let _second = FakeVpcd::accept(&listener);
        let (_, summary) = serving.stop().unwrap();
        assert_eq!(
            summary.last_error,
            Some(ConnectionError::AnswerTooLong(MAX_PAYLOAD_LEN + 1))
        );
    }

    #[test]
    fn reconnects_when_vpcd_closes_and_powers_the_card_off() {
        let (listener, config) = bind_fake_vpcd();
        let card = EchoCard::default();
        let (events, observer) = events();
        let serving = spawn_observed(card.clone(), config, observer).unwrap();
        let mut first = FakeVpcd::accept(&listener);
        first.send(&[1]);
        assert_eq!(first.exchange(&[4]), ATR);
        drop(first); // pcscd went away
        let mut second = FakeVpcd::accept(&listener);
        assert_eq!(second.exchange(&[4]), ATR);
        let (_, summary) = serving.stop().unwrap();
        assert_eq!(summary.connections, 2);
        assert_eq!(summary.errors, 0);
        assert_eq!(card.seen(), [Seen::PowerOn, Seen::PowerOff]);
        assert_eq!(
            events.lock().unwrap()[..3],
            [
                ServeEvent::Connected,
                ServeEvent::Disconnected(Disconnect::ClosedByVpcd),
                ServeEvent::Connected,
            ]
        );
    }

    #[test]
    fn retries_until_vpcd_listens() {
        // Find a free port, then leave it closed for a while.
        let (listener, config) = bind_fake_vpcd();
        drop(listener);
        let (events, observer) = events();
        let serving = spawn_observed(EchoCard::default(), config.clone(), observer).unwrap();
        wait_until(|| events.lock().unwrap().len() >= 3);
        let listener = TcpListener::bind(config.addr).unwrap();
        let mut vpcd = FakeVpcd::accept(&listener);
        assert_eq!(vpcd.exchange(&[4]), ATR);
        serving.stop().unwrap();
        let events = events.lock().unwrap().clone();
        assert!(events[..3]
            .iter()
            .all(|event| *event == ServeEvent::ConnectFailed(io::ErrorKind::ConnectionRefused)));
        assert!(events.contains(&ServeEvent::Connected));
    }

    #[test]
    fn stops_promptly_while_connected_and_while_retrying() {
        // Connected and idle.
        let (listener, config) = bind_fake_vpcd();
        let serving = spawn(EchoCard::default(), config).unwrap();
        let mut vpcd = FakeVpcd::accept(&listener);
        let started = Instant::now();
        serving.stop().unwrap();
        assert!(started.elapsed() < Duration::from_secs(2));
        vpcd.expect_closed();

        // Connected, halfway through a message.
        let (listener, config) = bind_fake_vpcd();
        let serving = spawn(EchoCard::default(), config).unwrap();
        let mut vpcd = FakeVpcd::accept(&listener);
        vpcd.send_raw(&[0x00, 0x10, 0x00]);
        let stop = serving.stop_handle();
        stop.stop();
        let (_, summary) = serving.stop().unwrap();
        assert_eq!(summary.errors, 0);
        vpcd.expect_closed();

        // Nobody listening: stops while waiting to retry.
        let (listener, mut config) = bind_fake_vpcd();
        drop(listener);
        config.retry_min = Duration::from_secs(60);
        config.retry_max = Duration::from_secs(60);
        let serving = spawn(EchoCard::default(), config).unwrap();
        thread::sleep(Duration::from_millis(50));
        let started = Instant::now();
        serving.stop().unwrap();
        assert!(started.elapsed() < Duration::from_secs(2));
    }

    #[test]
    fn serve_returns_when_already_stopped() {
        let (_listener, config) = bind_fake_vpcd();
        let stop = StopHandle::new();
        stop.stop();
        let summary = serve(&mut EchoCard::default(), &config, &stop).unwrap();
        assert_eq!(summary, ServeSummary::default());
    }

    #[test]
    fn several_cards_each_on_its_own_port() {
        let (listener_a, config_a) = bind_fake_vpcd();
        let (listener_b, config_b) = bind_fake_vpcd();
        let card_a = EchoCard::default();
        let card_b = EchoCard::default();
        let serving = spawn_all([
            (card_a.clone(), config_a.clone()),
            (card_b.clone(), config_b.clone()),
        ])
        .unwrap();
        assert_eq!(serving.addrs(), [config_a.addr, config_b.addr]);
        let mut vpcd_a = FakeVpcd::accept(&listener_a);
        let mut vpcd_b = FakeVpcd::accept(&listener_b);
        assert_eq!(
            vpcd_a.exchange(&[0x00, 0x01, 0x02, 0x03]),
            [0x00, 0x01, 0x02, 0x03, 0x90, 0x00]
        );
        assert_eq!(
            vpcd_b.exchange(&[0x00, 0x04, 0x05, 0x06]),
            [0x00, 0x04, 0x05, 0x06, 0x90, 0x00]
        );
        let results = serving.stop().unwrap();
        assert_eq!(results.len(), 2);
        assert!(results.iter().all(|(_, summary)| summary.commands == 1));
        assert_eq!(card_a.seen(), [Seen::Command(vec![0x00, 0x01, 0x02, 0x03])]);
        assert_eq!(card_b.seen(), [Seen::Command(vec![0x00, 0x04, 0x05, 0x06])]);

        let duplicate = spawn_all([
            (EchoCard::default(), config_a.clone()),
            (EchoCard::default(), config_a.clone()),
        ]);
        assert!(
            matches!(duplicate, Err(ServeError::DuplicateAddress(addr)) if addr == config_a.addr)
        );
    }

    #[test]
    fn a_panicking_card_is_reported() {
        struct PanickingCard;
        impl VpcdCard for PanickingCard {
            fn power_on(&mut self) {}
            fn power_off(&mut self) {}
            fn reset(&mut self) {}
            fn atr(&self) -> Vec<u8> {
                ATR.to_vec()
            }
            fn transmit(&mut self, _: &[u8]) -> Vec<u8> {
                panic!("test card panics on purpose")
            }
        }
        let (listener, config) = bind_fake_vpcd();
        let serving = spawn(PanickingCard, config.clone()).unwrap();
        let mut vpcd = FakeVpcd::accept(&listener);
        vpcd.send(&[0x00, 0x84, 0x00, 0x08]);
        vpcd.expect_closed();
        assert!(
            matches!(serving.stop(), Err(ServeError::CardPanicked(addr)) if addr == config.addr)
        );
    }
}
