//! The rig-controller line protocol, version 1 (`rig/PROTOCOL.md`), as a sans-IO codec:
//! [`LineReader`] splits bytes into lines, [`Frame`] checks a line's sequence number and
//! checksum, [`Request`] and [`Response`] are the payloads. Both ends use it: the host's
//! [`crate::controller::ControllerClient`] and the [`crate::controller::VirtualController`].
//!
//! Nothing here panics on any input (a property test feeds it arbitrary bytes). Unknown
//! request words and error codes are kept ([`Request::Unknown`], [`ErrorCode::Unknown`]).

use std::fmt;

use crc::{Crc, CRC_16_IBM_3740};

/// The protocol version this crate speaks (PROTOCOL.md §1).
pub const PROTOCOL_VERSION: u16 = 1;

/// The longest line, in bytes, without its LF (PROTOCOL.md §2).
pub const MAX_LINE: usize = 127;

/// CRC-16/IBM-3740 (a.k.a. CRC-16/CCITT-FALSE: poly 0x1021, init 0xFFFF, no reflection, no
/// final XOR; check value 0x29B1 for "123456789"), PROTOCOL.md §2.
const CRC16: Crc<u16> = Crc::<u16>::new(&CRC_16_IBM_3740);

/// The checksum of a line's body (everything before ` *`).
pub fn checksum(body: &str) -> u16 {
    CRC16.checksum(body.as_bytes())
}

/// Why a line was discarded as garbage (PROTOCOL.md §2). Garbage is never answered.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Garbage {
    /// Longer than [`MAX_LINE`] bytes.
    TooLong,
    /// A byte outside printable ASCII (0x20..=0x7E).
    BadByte,
    /// No ` *XXXX` checksum at the end.
    NoChecksum,
    /// The checksum does not match the line.
    BadChecksum,
    /// No valid sequence number (1 to 5 decimal digits, at most 65535) before the first space,
    /// or nothing after it.
    BadSequence,
}

impl fmt::Display for Garbage {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Garbage::TooLong => "line too long",
            Garbage::BadByte => "non-printable byte",
            Garbage::NoChecksum => "no checksum",
            Garbage::BadChecksum => "checksum mismatch",
            Garbage::BadSequence => "no sequence number",
        })
    }
}

/// Splits a byte stream into lines (PROTOCOL.md §2): LF ends a line, a CR just before it is
/// dropped, empty lines are skipped, and a line over [`MAX_LINE`] bytes is discarded up to its
/// LF and reported once as [`Garbage::TooLong`]. Lines are returned as bytes checked to be
/// printable ASCII.
#[derive(Debug, Default, Clone)]
pub struct LineReader {
    buffer: Vec<u8>,
    overflowed: bool,
}

impl LineReader {
    /// An empty reader.
    pub fn new() -> LineReader {
        LineReader::default()
    }

    /// Takes one byte; returns a line (or why it is garbage) when `byte` ends one.
    pub fn push(&mut self, byte: u8) -> Option<Result<String, Garbage>> {
        if byte != b'\n' {
            if self.buffer.len() > MAX_LINE {
                // MAX_LINE + 1 bytes held: room for a CR before the LF.
                self.overflowed = true;
                self.buffer.clear();
            } else if !self.overflowed {
                self.buffer.push(byte);
            }
            return None;
        }
        let overflowed = std::mem::take(&mut self.overflowed);
        let mut line = std::mem::take(&mut self.buffer);
        if overflowed {
            return Some(Err(Garbage::TooLong));
        }
        if line.last() == Some(&b'\r') {
            line.pop();
        }
        if line.is_empty() {
            return None;
        }
        if line.len() > MAX_LINE {
            return Some(Err(Garbage::TooLong));
        }
        if !line.iter().all(|b| (0x20..=0x7E).contains(b)) {
            return Some(Err(Garbage::BadByte));
        }
        Some(String::from_utf8(line).map_err(|_| Garbage::BadByte))
    }

    /// Takes `bytes`; returns every line (or garbage report) they complete, in order.
    pub fn push_all(&mut self, bytes: &[u8]) -> Vec<Result<String, Garbage>> {
        bytes.iter().filter_map(|b| self.push(*b)).collect()
    }

    /// Forgets a partial line.
    pub fn clear(&mut self) {
        self.buffer.clear();
        self.overflowed = false;
    }
}

/// A checked line: `<seq> <payload> *<crc>` (PROTOCOL.md §2).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Frame<'a> {
    /// The sequence number.
    pub seq: u16,
    /// Everything between the sequence number and the checksum.
    pub payload: &'a str,
}

impl<'a> Frame<'a> {
    /// Checks `line` (without its LF).
    pub fn parse(line: &'a str) -> Result<Frame<'a>, Garbage> {
        if line.len() > MAX_LINE {
            return Err(Garbage::TooLong);
        }
        if !line.bytes().all(|b| (0x20..=0x7E).contains(&b)) {
            return Err(Garbage::BadByte);
        }
        let (body, crc) = line.rsplit_once(" *").ok_or(Garbage::NoChecksum)?;
        if crc.len() != 4 || !crc.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err(Garbage::NoChecksum);
        }
        let crc = u16::from_str_radix(crc, 16).map_err(|_| Garbage::NoChecksum)?;
        if checksum(body) != crc {
            return Err(Garbage::BadChecksum);
        }
        let (seq, payload) = body.split_once(' ').ok_or(Garbage::BadSequence)?;
        let seq = parse_number(seq, 5).ok_or(Garbage::BadSequence)?;
        let seq = u16::try_from(seq).map_err(|_| Garbage::BadSequence)?;
        if payload.is_empty() {
            return Err(Garbage::BadSequence);
        }
        Ok(Frame { seq, payload })
    }

    /// The line for `seq` and `payload`, with its checksum and LF. `payload` must be printable
    /// ASCII without ` *` (the [`Request`] and [`Response`] displays are).
    pub fn encode(seq: u16, payload: &dyn fmt::Display) -> String {
        let body = format!("{seq} {payload}");
        format!("{body} *{:04X}\n", checksum(&body))
    }
}

/// 1 to `max_digits` decimal digits.
fn parse_number(text: &str, max_digits: usize) -> Option<u32> {
    if text.is_empty() || text.len() > max_digits || !text.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    text.parse().ok()
}

fn parse_u8(text: &str) -> Option<u8> {
    parse_number(text, 3).and_then(|n| u8::try_from(n).ok())
}

/// A request was checksummed correctly but is not one the protocol allows (`ERR SYNTAX`).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("malformed {word}: {reason}")]
pub struct SyntaxError {
    /// The request or response word.
    pub word: String,
    /// What is wrong.
    pub reason: &'static str,
}

fn syntax<T>(word: &str, reason: &'static str) -> Result<T, SyntaxError> {
    Err(SyntaxError {
        word: word.to_owned(),
        reason,
    })
}

/// A request from the host (PROTOCOL.md §3).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Request {
    /// `HELLO <version>`: start a session speaking `version`.
    Hello {
        /// The protocol version the host speaks.
        version: u16,
    },
    /// `POWER <channel> ON|OFF`.
    Power {
        /// The power channel.
        channel: u8,
        /// On or off.
        on: bool,
    },
    /// `POWER ALL OFF`: accepted at any time, even before HELLO.
    PowerAllOff,
    /// `SIM <mux> <position>|NONE`: break-before-make.
    Sim {
        /// The mux channel (a board's SIM socket).
        mux: u8,
        /// The SIM position to connect, or none.
        position: Option<u8>,
    },
    /// `INSERT <mux> <position>`: connects a position to a mux that connects nothing, even
    /// while its board is powered (a card pushed into a live socket).
    Insert {
        /// The mux channel.
        mux: u8,
        /// The SIM position to connect.
        position: u8,
    },
    /// `EJECT <mux> <delay_ms>`: opens every contact of the mux `delay_ms` after the reply,
    /// even while its board is powered (a card pulled out of a live socket).
    Eject {
        /// The mux channel.
        mux: u8,
        /// Milliseconds from the reply to the break, at most [`MAX_EJECT_DELAY_MS`].
        delay_ms: u16,
    },
    /// `STATUS`: accepted at any time; also the host's keep-alive.
    Status,
    /// A request word this end does not know, kept whole (payload without the sequence number).
    Unknown(String),
}

/// The longest delay `EJECT` accepts, in milliseconds.
pub const MAX_EJECT_DELAY_MS: u16 = 10_000;

impl Request {
    /// Parses a frame's payload. An unknown word is [`Request::Unknown`]; a known word with
    /// the wrong arguments is a [`SyntaxError`].
    pub fn parse(payload: &str) -> Result<Request, SyntaxError> {
        let mut tokens = payload.split(' ');
        let word = tokens.next().unwrap_or_default();
        let args: Vec<&str> = tokens.collect();
        match (word, args.as_slice()) {
            ("HELLO", [version]) => match parse_number(version, 5) {
                Some(v) => Ok(Request::Hello {
                    version: u16::try_from(v).map_err(|_| SyntaxError {
                        word: word.into(),
                        reason: "version out of range",
                    })?,
                }),
                None => syntax(word, "the version is a decimal number"),
            },
            ("HELLO", _) => syntax(word, "expected HELLO <version>"),
            ("POWER", ["ALL", "OFF"]) => Ok(Request::PowerAllOff),
            ("POWER", [channel, state]) => {
                let channel = parse_u8(channel)
                    .map_or_else(|| syntax(word, "the channel is a number from 0 to 255"), Ok)?;
                let on = match *state {
                    "ON" => true,
                    "OFF" => false,
                    _ => return syntax(word, "expected ON or OFF"),
                };
                Ok(Request::Power { channel, on })
            }
            ("POWER", _) => syntax(word, "expected POWER <channel> ON|OFF or POWER ALL OFF"),
            ("SIM", [mux, position]) => {
                let mux = parse_u8(mux)
                    .map_or_else(|| syntax(word, "the mux is a number from 0 to 255"), Ok)?;
                let position = match *position {
                    "NONE" => None,
                    p => Some(parse_u8(p).map_or_else(
                        || syntax(word, "the position is a number from 0 to 255 or NONE"),
                        Ok,
                    )?),
                };
                Ok(Request::Sim { mux, position })
            }
            ("SIM", _) => syntax(word, "expected SIM <mux> <position>|NONE"),
            ("INSERT", [mux, position]) => {
                let mux = parse_u8(mux)
                    .map_or_else(|| syntax(word, "the mux is a number from 0 to 255"), Ok)?;
                let position = parse_u8(position).map_or_else(
                    || syntax(word, "the position is a number from 0 to 255"),
                    Ok,
                )?;
                Ok(Request::Insert { mux, position })
            }
            ("INSERT", _) => syntax(word, "expected INSERT <mux> <position>"),
            ("EJECT", [mux, delay]) => {
                let mux = parse_u8(mux)
                    .map_or_else(|| syntax(word, "the mux is a number from 0 to 255"), Ok)?;
                let delay_ms = parse_number(delay, 5)
                    .and_then(|d| u16::try_from(d).ok())
                    .filter(|d| *d <= MAX_EJECT_DELAY_MS)
                    .map_or_else(
                        || {
                            syntax(
                                word,
                                "the delay is a number of milliseconds from 0 to 10000",
                            )
                        },
                        Ok,
                    )?;
                Ok(Request::Eject { mux, delay_ms })
            }
            ("EJECT", _) => syntax(word, "expected EJECT <mux> <delay_ms>"),
            ("STATUS", []) => Ok(Request::Status),
            ("STATUS", _) => syntax(word, "STATUS takes no arguments"),
            _ => Ok(Request::Unknown(payload.to_owned())),
        }
    }

    /// The request word (`HELLO`, `POWER`, ...).
    pub fn word(&self) -> &str {
        match self {
            Request::Hello { .. } => "HELLO",
            Request::Power { .. } | Request::PowerAllOff => "POWER",
            Request::Sim { .. } => "SIM",
            Request::Insert { .. } => "INSERT",
            Request::Eject { .. } => "EJECT",
            Request::Status => "STATUS",
            Request::Unknown(payload) => payload.split(' ').next().unwrap_or_default(),
        }
    }
}

impl fmt::Display for Request {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Request::Hello { version } => write!(f, "HELLO {version}"),
            Request::Power { channel, on } => write!(f, "POWER {channel} {}", on_off(*on)),
            Request::PowerAllOff => f.write_str("POWER ALL OFF"),
            Request::Sim { mux, position } => write!(f, "SIM {mux} {}", Position(*position)),
            Request::Insert { mux, position } => write!(f, "INSERT {mux} {position}"),
            Request::Eject { mux, delay_ms } => write!(f, "EJECT {mux} {delay_ms}"),
            Request::Status => f.write_str("STATUS"),
            Request::Unknown(payload) => f.write_str(payload),
        }
    }
}

fn on_off(on: bool) -> &'static str {
    if on {
        "ON"
    } else {
        "OFF"
    }
}

struct Position(Option<u8>);

impl fmt::Display for Position {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0 {
            Some(p) => write!(f, "{p}"),
            None => f.write_str("NONE"),
        }
    }
}

/// Why the controller refused a request (`ERR <code>`, PROTOCOL.md §4).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum ErrorCode {
    /// `VERSION`: it does not speak the version in HELLO.
    Version,
    /// `HELLO`: POWER ON or SIM before a successful HELLO (or after a watchdog trip).
    Hello,
    /// `SYNTAX`: a known word with the wrong arguments.
    Syntax,
    /// `COMMAND`: an unknown request word.
    Command,
    /// `RANGE`: no such power channel, mux or position.
    Range,
    /// `POWERED`: a SIM change while the board on that mux is powered.
    Powered,
    /// `BUSY`: the position is connected to another mux.
    Busy,
    /// `FAULT`: a hardware fault (the controller powered the channel off).
    Fault,
    /// `CONNECTED`: `INSERT` on a mux that already connects a position.
    Connected,
    /// `EMPTY`: `EJECT` on a mux that connects nothing.
    Empty,
    /// A code this end does not know, kept.
    Unknown(String),
}

impl ErrorCode {
    fn parse(text: &str) -> ErrorCode {
        match text {
            "VERSION" => ErrorCode::Version,
            "HELLO" => ErrorCode::Hello,
            "SYNTAX" => ErrorCode::Syntax,
            "COMMAND" => ErrorCode::Command,
            "RANGE" => ErrorCode::Range,
            "POWERED" => ErrorCode::Powered,
            "BUSY" => ErrorCode::Busy,
            "FAULT" => ErrorCode::Fault,
            "CONNECTED" => ErrorCode::Connected,
            "EMPTY" => ErrorCode::Empty,
            other => ErrorCode::Unknown(other.to_owned()),
        }
    }
}

impl fmt::Display for ErrorCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            ErrorCode::Version => "VERSION",
            ErrorCode::Hello => "HELLO",
            ErrorCode::Syntax => "SYNTAX",
            ErrorCode::Command => "COMMAND",
            ErrorCode::Range => "RANGE",
            ErrorCode::Powered => "POWERED",
            ErrorCode::Busy => "BUSY",
            ErrorCode::Fault => "FAULT",
            ErrorCode::Connected => "CONNECTED",
            ErrorCode::Empty => "EMPTY",
            ErrorCode::Unknown(code) => code,
        })
    }
}

/// What the controller says about itself in `OK HELLO` (PROTOCOL.md §3.1).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct HelloInfo {
    /// The protocol version it will speak.
    pub version: u16,
    /// Its identity (`id=`), e.g. a board name and serial.
    pub id: String,
    /// Its firmware version (`fw=`).
    pub firmware: String,
    /// How many power channels it has (`power=`).
    pub power_channels: u8,
    /// How many SIM mux channels (`mux=`).
    pub muxes: u8,
    /// How many SIM positions (`positions=`).
    pub positions: u8,
    /// Its watchdog period in milliseconds (`watchdog=`).
    pub watchdog_ms: u32,
}

/// What `OK STATUS` reports (PROTOCOL.md §3.4).
#[derive(Debug, Clone, PartialEq, Eq, Hash, Default)]
pub struct StatusInfo {
    /// Each power channel, on or off (`power=0110`).
    pub power: Vec<bool>,
    /// Each mux's connected position (`sim=0,-`).
    pub sim: Vec<Option<u8>>,
    /// Lines it discarded as garbage since reset (`garbage=`).
    pub garbage: u32,
    /// Watchdog trips since reset (`trips=`).
    pub trips: u32,
    /// Whether a HELLO session is open (`session=1`).
    pub session: bool,
}

/// A controller's positive answer (PROTOCOL.md §3).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Reply {
    /// `OK HELLO ...`.
    Hello(HelloInfo),
    /// `OK POWER <channel> ON|OFF`.
    Power {
        /// The channel.
        channel: u8,
        /// Its new state.
        on: bool,
    },
    /// `OK POWER ALL OFF`.
    PowerAllOff,
    /// `OK SIM <mux> <position>|NONE`.
    Sim {
        /// The mux.
        mux: u8,
        /// What it now connects.
        position: Option<u8>,
    },
    /// `OK INSERT <mux> <position>`.
    Insert {
        /// The mux.
        mux: u8,
        /// The position now connected.
        position: u8,
    },
    /// `OK EJECT <mux> <delay_ms>`.
    Eject {
        /// The mux.
        mux: u8,
        /// When its contacts open, in milliseconds from the reply.
        delay_ms: u16,
    },
    /// `OK STATUS ...`.
    Status(StatusInfo),
}

/// A controller's answer: `OK ...` or `ERR <code> [text]`.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Response {
    /// Done.
    Ok(Reply),
    /// Refused; the text is for people.
    Err {
        /// Why.
        code: ErrorCode,
        /// Free text (printable ASCII, no ` *`), possibly empty.
        text: String,
    },
}

/// `key=value` tokens, unknown keys ignored (forward compatibility).
fn field<'a>(args: &[&'a str], key: &str) -> Option<&'a str> {
    args.iter()
        .filter_map(|a| a.split_once('='))
        .find(|(k, _)| *k == key)
        .map(|(_, v)| v)
}

impl Response {
    /// Parses a frame's payload.
    pub fn parse(payload: &str) -> Result<Response, SyntaxError> {
        let mut tokens = payload.split(' ');
        match tokens.next().unwrap_or_default() {
            "ERR" => {
                let Some(code) = tokens.next().filter(|c| !c.is_empty()) else {
                    return syntax("ERR", "expected ERR <code> [text]");
                };
                let text: Vec<&str> = tokens.collect();
                Ok(Response::Err {
                    code: ErrorCode::parse(code),
                    text: text.join(" "),
                })
            }
            "OK" => {
                let word = tokens.next().unwrap_or_default();
                let args: Vec<&str> = tokens.collect();
                Self::parse_ok(word, &args).map(Response::Ok)
            }
            _ => syntax("response", "expected OK or ERR"),
        }
    }

    fn parse_ok(word: &str, args: &[&str]) -> Result<Reply, SyntaxError> {
        let number = |key: &'static str, max: usize| -> Result<u32, SyntaxError> {
            field(args, key)
                .and_then(|v| parse_number(v, max))
                .map_or_else(
                    || {
                        syntax(
                            word,
                            match key {
                                "power" => "power= is missing or not a number",
                                "mux" => "mux= is missing or not a number",
                                "positions" => "positions= is missing or not a number",
                                "watchdog" => "watchdog= is missing or not a number",
                                "garbage" => "garbage= is missing or not a number",
                                _ => "trips= is missing or not a number",
                            },
                        )
                    },
                    Ok,
                )
        };
        let small = |key: &'static str| -> Result<u8, SyntaxError> {
            u8::try_from(number(key, 3)?)
                .map_or_else(|_| syntax(word, "a channel count is at most 255"), Ok)
        };
        match (word, args) {
            ("HELLO", [version, ..]) => {
                let Some(version) = parse_number(version, 5).and_then(|v| u16::try_from(v).ok())
                else {
                    return syntax(word, "the version is a decimal number");
                };
                let text = |key: &'static str, reason: &'static str| {
                    field(args, key)
                        .filter(|v| !v.is_empty())
                        .map(str::to_owned)
                        .map_or_else(|| syntax(word, reason), Ok)
                };
                Ok(Reply::Hello(HelloInfo {
                    version,
                    id: text("id", "id= is missing")?,
                    firmware: text("fw", "fw= is missing")?,
                    power_channels: small("power")?,
                    muxes: small("mux")?,
                    positions: small("positions")?,
                    watchdog_ms: number("watchdog", 9)?,
                }))
            }
            ("POWER", ["ALL", "OFF"]) => Ok(Reply::PowerAllOff),
            ("POWER", _) => match Request::parse(&format!("POWER {}", args.join(" ")))? {
                Request::Power { channel, on } => Ok(Reply::Power { channel, on }),
                _ => syntax(word, "expected OK POWER <channel> ON|OFF"),
            },
            ("SIM", _) => match Request::parse(&format!("SIM {}", args.join(" ")))? {
                Request::Sim { mux, position } => Ok(Reply::Sim { mux, position }),
                _ => syntax(word, "expected OK SIM <mux> <position>|NONE"),
            },
            ("INSERT", _) => match Request::parse(&format!("INSERT {}", args.join(" ")))? {
                Request::Insert { mux, position } => Ok(Reply::Insert { mux, position }),
                _ => syntax(word, "expected OK INSERT <mux> <position>"),
            },
            ("EJECT", _) => match Request::parse(&format!("EJECT {}", args.join(" ")))? {
                Request::Eject { mux, delay_ms } => Ok(Reply::Eject { mux, delay_ms }),
                _ => syntax(word, "expected OK EJECT <mux> <delay_ms>"),
            },
            ("STATUS", _) => {
                // An empty value is an empty list (a controller with no channels).
                let power = field(args, "power").unwrap_or_default();
                if !power.bytes().all(|b| b == b'0' || b == b'1') {
                    return syntax(word, "power= is a string of 0 and 1");
                }
                let power = power.bytes().map(|b| b == b'1');
                let sim = field(args, "sim").unwrap_or_default();
                let sim = if sim.is_empty() {
                    Vec::new()
                } else {
                    let mut out = Vec::new();
                    for entry in sim.split(',') {
                        out.push(match entry {
                            "-" => None,
                            p => Some(parse_u8(p).map_or_else(
                                || syntax(word, "sim= is a comma-separated list of positions or -"),
                                Ok,
                            )?),
                        });
                    }
                    out
                };
                Ok(Reply::Status(StatusInfo {
                    power: power.collect(),
                    sim,
                    garbage: number("garbage", 9)?,
                    trips: number("trips", 9)?,
                    session: field(args, "session") == Some("1"),
                }))
            }
            _ => syntax(word, "unknown reply"),
        }
    }
}

impl fmt::Display for Response {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Response::Err { code, text } if text.is_empty() => write!(f, "ERR {code}"),
            Response::Err { code, text } => write!(f, "ERR {code} {text}"),
            Response::Ok(Reply::Hello(h)) => write!(
                f,
                "OK HELLO {} id={} fw={} power={} mux={} positions={} watchdog={}",
                h.version, h.id, h.firmware, h.power_channels, h.muxes, h.positions, h.watchdog_ms
            ),
            Response::Ok(Reply::Power { channel, on }) => {
                write!(f, "OK POWER {channel} {}", on_off(*on))
            }
            Response::Ok(Reply::PowerAllOff) => f.write_str("OK POWER ALL OFF"),
            Response::Ok(Reply::Sim { mux, position }) => {
                write!(f, "OK SIM {mux} {}", Position(*position))
            }
            Response::Ok(Reply::Insert { mux, position }) => {
                write!(f, "OK INSERT {mux} {position}")
            }
            Response::Ok(Reply::Eject { mux, delay_ms }) => {
                write!(f, "OK EJECT {mux} {delay_ms}")
            }
            Response::Ok(Reply::Status(s)) => {
                let power: String = s
                    .power
                    .iter()
                    .map(|on| if *on { '1' } else { '0' })
                    .collect();
                let sim: Vec<String> = s
                    .sim
                    .iter()
                    .map(|p| p.map_or_else(|| "-".to_owned(), |p| p.to_string()))
                    .collect();
                let sim = sim.join(",");
                write!(
                    f,
                    "OK STATUS power={power} sim={sim} garbage={} trips={} session={}",
                    s.garbage,
                    s.trips,
                    u8::from(s.session)
                )
            }
        }
    }
}

/// Makes `text` safe as free text in an `ERR` line: printable ASCII, no `*`, at most 60 bytes.
pub fn sanitize_text(text: &str) -> String {
    text.chars()
        .map(|c| {
            if (c.is_ascii_graphic() && c != '*') || c == ' ' {
                c
            } else {
                '?'
            }
        })
        .take(60)
        .collect::<String>()
        .trim()
        .to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// One line each way, with the checksum worked out by hand-checked CRC-16/IBM-3740.
    #[test]
    fn crc_is_crc16_ibm_3740() {
        assert_eq!(checksum("123456789"), 0x29B1);
    }

    #[test]
    fn eject_delays_beyond_ten_seconds_are_a_syntax_error() {
        assert!(Request::parse("EJECT 0 10001").is_err());
        assert!(Request::parse("EJECT 0 -1").is_err());
        assert!(Request::parse("INSERT 0").is_err());
        assert_eq!(
            Request::parse("EJECT 0 0").unwrap(),
            Request::Eject {
                mux: 0,
                delay_ms: 0
            }
        );
    }

    #[test]
    fn lines_round_trip() {
        let requests = [
            Request::Hello { version: 1 },
            Request::Power {
                channel: 3,
                on: true,
            },
            Request::Power {
                channel: 0,
                on: false,
            },
            Request::PowerAllOff,
            Request::Sim {
                mux: 1,
                position: Some(7),
            },
            Request::Sim {
                mux: 0,
                position: None,
            },
            Request::Insert {
                mux: 2,
                position: 0,
            },
            Request::Eject {
                mux: 0,
                delay_ms: 10_000,
            },
            Request::Status,
            Request::Unknown("FLY 1 2".into()),
        ];
        for (seq, request) in requests.iter().enumerate() {
            let seq = u16::try_from(seq).unwrap().wrapping_mul(6500);
            let line = Frame::encode(seq, request);
            let frame = Frame::parse(line.trim_end_matches('\n')).unwrap();
            assert_eq!(frame.seq, seq);
            assert_eq!(&Request::parse(frame.payload).unwrap(), request, "{line}");
        }
        let responses = [
            Response::Ok(Reply::Hello(HelloInfo {
                version: 1,
                id: "virtual-0001".into(),
                firmware: "0.1.0".into(),
                power_channels: 2,
                muxes: 2,
                positions: 3,
                watchdog_ms: 5000,
            })),
            Response::Ok(Reply::Power {
                channel: 1,
                on: true,
            }),
            Response::Ok(Reply::PowerAllOff),
            Response::Ok(Reply::Sim {
                mux: 1,
                position: None,
            }),
            Response::Ok(Reply::Insert {
                mux: 1,
                position: 2,
            }),
            Response::Ok(Reply::Eject {
                mux: 1,
                delay_ms: 5,
            }),
            Response::Ok(Reply::Status(StatusInfo {
                power: vec![true, false],
                sim: vec![Some(2), None],
                garbage: 4,
                trips: 1,
                session: true,
            })),
            Response::Ok(Reply::Status(StatusInfo::default())),
            Response::Err {
                code: ErrorCode::Powered,
                text: "board on mux 0 is powered".into(),
            },
            Response::Err {
                code: ErrorCode::Unknown("OVERHEAT".into()),
                text: String::new(),
            },
        ];
        for response in &responses {
            let line = Frame::encode(65535, response);
            let frame = Frame::parse(line.trim_end_matches('\n')).unwrap();
            assert_eq!(&Response::parse(frame.payload).unwrap(), response, "{line}");
        }
    }

    /// The exact bytes of a few lines (PROTOCOL.md §5 shows the same transcript).
    #[test]
    fn transcript_lines_are_exact() {
        assert_eq!(
            Frame::encode(1, &Request::Hello { version: 1 }),
            format!("1 HELLO 1 *{:04X}\n", checksum("1 HELLO 1"))
        );
        let line = Frame::encode(
            2,
            &Request::Power {
                channel: 0,
                on: true,
            },
        );
        assert!(line.starts_with("2 POWER 0 ON *"), "{line}");
        assert_eq!(line.len(), "2 POWER 0 ON *XXXX\n".len());
    }

    #[test]
    fn garbage_is_classified() {
        let good = Frame::encode(7, &Request::Status);
        let good = good.trim_end();
        assert!(Frame::parse(good).is_ok());
        let flipped = good.replacen("STATUS", "STATVS", 1);
        assert_eq!(Frame::parse(&flipped), Err(Garbage::BadChecksum));
        assert_eq!(Frame::parse("7 STATUS"), Err(Garbage::NoChecksum));
        assert_eq!(Frame::parse("7 STATUS *12G4"), Err(Garbage::NoChecksum));
        let body = "x STATUS";
        let no_seq = format!("{body} *{:04X}", checksum(body));
        assert_eq!(Frame::parse(&no_seq), Err(Garbage::BadSequence));
        let body = "70000 STATUS";
        let big = format!("{body} *{:04X}", checksum(body));
        assert_eq!(Frame::parse(&big), Err(Garbage::BadSequence));
        assert_eq!(Frame::parse("7 ST\u{7f}TUS *0000"), Err(Garbage::BadByte));
    }

    #[test]
    fn line_reader_splits_drops_cr_and_refuses_long_lines() {
        let mut reader = LineReader::new();
        let out = reader.push_all(b"ab\r\n\ncd");
        assert_eq!(out, [Ok("ab".to_owned())]);
        let out = reader.push_all(b"\n");
        assert_eq!(out, [Ok("cd".to_owned())]);
        let mut long = vec![b'x'; 500];
        long.push(b'\n');
        long.extend_from_slice(b"ok\n");
        assert_eq!(
            reader.push_all(&long),
            [Err(Garbage::TooLong), Ok("ok".to_owned())]
        );
        assert_eq!(reader.push_all(b"\x00\xff\n"), [Err(Garbage::BadByte)]);
        let exact = vec![b'y'; MAX_LINE];
        let mut exact_line = exact.clone();
        exact_line.push(b'\n');
        assert_eq!(
            reader.push_all(&exact_line),
            [Ok(String::from_utf8(exact).unwrap())]
        );
    }

    #[test]
    fn malformed_requests_are_syntax_errors() {
        for bad in [
            "HELLO",
            "HELLO one",
            "POWER 1",
            "POWER 256 ON",
            "POWER 1 MAYBE",
            "SIM 0",
            "SIM 0 X",
            "STATUS now",
        ] {
            assert!(Request::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn error_text_is_sanitized() {
        assert_eq!(sanitize_text("bad * thing\n"), "bad ? thing?");
    }
}
