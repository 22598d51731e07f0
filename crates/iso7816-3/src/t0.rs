//! A sans-IO T=0 engine in the reader role, ISO/IEC 7816-3:2006 §10 and §12.2.
//!
//! T=0 moves one short command APDU as a 5-byte header `CLA INS P1 P2 P3` (§10.3.2) and then
//! data, driven by the card's procedure bytes (§10.3.3):
//!
//! | byte from the card | meaning |
//! |---|---|
//! | 0x60 (NULL) | the card needs more time: re-arm WT, wait for another procedure byte |
//! | INS (ACK) | send (or receive) all remaining data bytes |
//! | INS ⊕ 0xFF (~INS) | send (or receive) the next data byte only |
//! | 0x6X (X ≠ 0), 0x9X | SW1: SW2 follows and ends the exchange |
//!
//! On top of that it maps APDUs to TPDUs (§12.2): case 1 sends P3 = 00, case 2S P3 = Le,
//! cases 3S and 4S P3 = Lc. When the card answers `61xx` to a case 2 or case 4 command, it
//! issues GET RESPONSE (`CLA C0 00 00 xx`, the class byte from [`Config`]) and appends the data,
//! looping until another status word or until Ne bytes are in; when the card answers `6Cxx`
//! to a command that expects data, it re-issues the same header with P3 = xx
//! (§12.2.3, ISO/IEC 7816-4 §5.3.2).
//!
//! The engine never does I/O and never reads a clock. It keeps the APDU buffer it is lent
//! (owned, generic like [`crate::t1::Reader`]'s), so a driver keeps it between events: the
//! command goes into [`Reader::buffer_mut`], [`Reader::transmit`] starts the exchange, then the
//! driver calls [`Reader::receive`] with whatever bytes arrive (in any chunking) and
//! [`Reader::wt_expired`] when the waiting time WT (§10.2, [`crate::rate::Timing::wt`]) passes,
//! and does what each [`Action`] says. The response data land at the start of the same buffer.
//!
//! Out of scope: extended-length APDUs, refused with [`Error::ExtendedApdu`]. T=0 carries
//! cases 3E and 4E only inside ENVELOPE commands (§12.2.7, §12.2.8), whose use is application
//! specific; case 2E maps to a short header with P3 = 00 followed by GET RESPONSE chaining
//! (§12.2.6), which a caller can do by sending the command as case 2S. Also out of scope:
//! command chaining, and the card role.

use core::fmt;

/// NULL procedure byte, ISO/IEC 7816-3:2006 §10.3.3.
pub const NULL: u8 = 0x60;
/// The INS of GET RESPONSE, ISO/IEC 7816-4 §7.6.1.
pub const INS_GET_RESPONSE: u8 = 0xC0;

mod field {
    /// CLA INS P1 P2.
    pub const HEADER: core::ops::Range<usize> = 0..4;
    /// INS.
    pub const INS: usize = 1;
    /// P3 in a TPDU; Lc or Le in a short APDU.
    pub const P3: usize = 4;
    /// The first command data byte in a case 3S or 4S APDU.
    pub const DATA: usize = 5;
}

/// A T=0 failure. After any error the exchange is over and the card state is unknown: the
/// driver should reset or deactivate it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum Error {
    /// The command is not a short APDU of case 1, 2S, 3S or 4S (ISO/IEC 7816-3 §12.1.3).
    MalformedApdu,
    /// The command is an extended-length APDU (or starts like one: 7 or more bytes with a
    /// zero byte 5). T=0 carries cases 3E and 4E only inside ENVELOPE (§12.2.7, §12.2.8), which
    /// is out of scope; send a case 2E command as case 2S (§12.2.6).
    ExtendedApdu,
    /// INS is 0x6X or 0x9X, which T=0 cannot carry: ACK would look like SW1 (§10.3.2).
    InvalidIns(u8),
    /// WT passed without a byte from the card (§10.2).
    Timeout,
    /// A byte that is no procedure byte where one was expected, or ACK / ~INS with no data
    /// left to move (§10.3.3).
    UnexpectedProcedureByte(u8),
    /// A byte arrived while the card should wait for the reader (after an ACK or ~INS that
    /// asks the reader to send, or after SW2).
    UnexpectedByte(u8),
    /// The response data do not fit in the lent buffer.
    ResponseOverflow,
    /// More command headers than [`Config::max_commands`] (61xx or 6Cxx loop).
    TooManyCommands,
    /// An event the engine does not take in its state: `transmit` during an exchange, bytes
    /// or a deadline when no exchange is in progress.
    OutOfSequence,
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::MalformedApdu => f.write_str("not a short command APDU"),
            Error::ExtendedApdu => f.write_str(
                "extended-length APDU: not carried by this T=0 engine (ENVELOPE is out of scope)",
            ),
            Error::InvalidIns(ins) => write!(f, "INS {ins:#04x} cannot be sent over T=0"),
            Error::Timeout => f.write_str("T=0 waiting time WT exceeded (ISO 7816-3 §10.2)"),
            Error::UnexpectedProcedureByte(b) => {
                write!(f, "unexpected procedure byte {b:#04x} (ISO 7816-3 §10.3.3)")
            }
            Error::UnexpectedByte(b) => write!(f, "unexpected byte {b:#04x} from the card"),
            Error::ResponseOverflow => f.write_str("response data overflow the buffer"),
            Error::TooManyCommands => f.write_str("too many GET RESPONSE or re-issued commands"),
            Error::OutOfSequence => f.write_str("event out of sequence for the T=0 engine"),
        }
    }
}

impl core::error::Error for Error {}

/// The case of a short command APDU, ISO/IEC 7816-3:2006 §12.1.3.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum Case {
    /// No data either way: `CLA INS P1 P2`.
    Case1,
    /// Response data expected: `CLA INS P1 P2 Le`.
    Case2 {
        /// Ne, 1 to 256.
        ne: u16,
    },
    /// Command data: `CLA INS P1 P2 Lc data`.
    Case3 {
        /// Nc, 1 to 255.
        nc: u8,
    },
    /// Command data and response data expected: `CLA INS P1 P2 Lc data Le`.
    Case4 {
        /// Nc, 1 to 255.
        nc: u8,
        /// Ne, 1 to 256.
        ne: u16,
    },
}

/// Ne from a short Le byte: 00 means 256.
const fn short_n(byte: u8) -> u16 {
    if byte == 0 {
        256
    } else {
        byte as u16
    }
}

impl Case {
    /// Decode the case of a short command APDU (§12.1.3).
    pub fn of(apdu: &[u8]) -> Result<Case, Error> {
        let Some(&b5) = apdu.get(field::P3) else {
            return if apdu.len() == 4 {
                Ok(Case::Case1)
            } else {
                Err(Error::MalformedApdu)
            };
        };
        match apdu.len() {
            5 => Ok(Case::Case2 { ne: short_n(b5) }),
            6 if b5 == 0 => Err(Error::MalformedApdu),
            _ if b5 == 0 => Err(Error::ExtendedApdu),
            len if len == field::DATA + usize::from(b5) => Ok(Case::Case3 { nc: b5 }),
            len if len == field::DATA + usize::from(b5) + 1 => {
                let le = apdu.last().copied().unwrap_or_default();
                Ok(Case::Case4 {
                    nc: b5,
                    ne: short_n(le),
                })
            }
            _ => Err(Error::MalformedApdu),
        }
    }

    /// Ne, the number of response bytes expected (0 for cases 1 and 3).
    pub const fn ne(self) -> u16 {
        match self {
            Case::Case1 | Case::Case3 { .. } => 0,
            Case::Case2 { ne } | Case::Case4 { ne, .. } => ne,
        }
    }
}

/// Engine settings.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct Config {
    /// The class byte of GET RESPONSE (ISO/IEC 7816-4 §7.6.1). Default 0x00; some cards want
    /// the class of the command (CCID calls this bClassGetResponse).
    pub get_response_cla: u8,
    /// The most command headers one exchange may send (the command, GET RESPONSEs and
    /// re-issues), so a card looping on 61xx or 6Cxx ends in [`Error::TooManyCommands`].
    /// Default 32.
    pub max_commands: u8,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            get_response_cla: 0x00,
            max_commands: 32,
        }
    }
}

/// The end of a successful exchange: `len` data bytes at the start of the lent buffer,
/// and the status word.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct Response {
    /// The number of data bytes in the response buffer.
    pub len: usize,
    /// SW1.
    pub sw1: u8,
    /// SW2.
    pub sw2: u8,
}

impl Response {
    /// SW1 SW2 as one number.
    pub const fn sw(&self) -> u16 {
        u16::from_be_bytes([self.sw1, self.sw2])
    }
}

/// What the driver must do next.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum Action<'a> {
    /// Send these bytes to the card, then arm WT from the leading edge of the last one
    /// (§10.2) and wait for bytes. [`Reader::pending_transmit`] gives them again until the
    /// next call.
    Send(&'a [u8]),
    /// Bytes were taken: re-arm WT from the last byte received and wait for more.
    ArmWt,
    /// Nothing happened (an empty chunk): keep the current deadline and wait.
    Wait,
    /// The exchange is over: the data are at the start of the buffer, the status word is here.
    Done(Response),
}

/// What the current TPDU moves after its header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Tpdu {
    /// Nothing (case 1).
    NoData,
    /// `len` command data bytes to the card (case 3S, 4S).
    Outgoing { len: usize },
    /// `len` response data bytes from the card (case 2S, GET RESPONSE, a 6Cxx re-issue).
    Incoming { len: usize },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    /// No exchange yet.
    Idle,
    /// Waiting for a procedure byte.
    Procedure,
    /// SW1 received, waiting for SW2.
    Sw2 { sw1: u8 },
    /// After ACK on an incoming TPDU: `remaining` data bytes to come.
    Receiving { remaining: usize },
    /// After ~INS on an incoming TPDU: one data byte to come.
    ReceivingOne,
    /// The last exchange is over (done or failed).
    Finished,
}

/// The bytes of the last [`Action::Send`], for [`Reader::pending_transmit`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Pending {
    Nothing,
    /// The TPDU header.
    Header,
    /// Command data: `buffer[from..to]`.
    Data {
        from: usize,
        to: usize,
    },
}

/// What a byte asks for.
enum Step {
    Continue,
    SendHeader,
    SendData { from: usize, to: usize },
    Done(Response),
}

/// The T=0 reader engine. See the [module documentation](self).
///
/// The APDU buffer `B` is lent by the caller (an array, a `&mut [u8]`, ...) and kept by the
/// engine, which can therefore live as long as the card session, next to nothing else. It holds
/// the command, then the response data: the data of GET RESPONSE land from its start, over the
/// command, whose data have all gone out by then (§12.2.5: in case 4S the card gives its data
/// only once it has the command's). The engine itself holds one TPDU header.
///
/// # Call sequence
///
/// 1. `Reader::new(config, buffer)`.
/// 2. For each command APDU: write it to [`Reader::buffer_mut`], call
///    [`Reader::transmit`]`(len)`: it returns [`Action::Send`] with the first TPDU header.
/// 3. Send the bytes of each [`Action::Send`] (or fetch them again with
///    [`Reader::pending_transmit`]) and arm WT after the last; feed the card's bytes to
///    [`Reader::receive`] (any chunking) and a passed WT to [`Reader::wt_expired`].
/// 4. The exchange ends with [`Action::Done`] (the data are [`Reader::data`], the start of the
///    buffer) or an error. Either way the reader takes the next command (step 2).
///
/// [`Reader::reset`] abandons an exchange in progress (the card was deactivated).
#[derive(Debug, Clone)]
pub struct Reader<B> {
    buf: B,
    config: Config,
    /// The case of the command of the exchange in progress or the last one.
    case: Option<Case>,
    /// Response data bytes stored at the start of `buf`.
    received: usize,
    /// The header of the current TPDU.
    header: [u8; 5],
    current: Tpdu,
    /// Data bytes moved in the current TPDU.
    transferred: usize,
    state: State,
    headers_sent: u8,
    pending: Pending,
}

impl<B: AsRef<[u8]> + AsMut<[u8]>> Reader<B> {
    /// A reader engine with `config` and the APDU buffer `buffer` (its length bounds the
    /// command and the response data).
    pub fn new(config: Config, buffer: B) -> Self {
        Reader {
            buf: buffer,
            config,
            case: None,
            received: 0,
            header: [0; 5],
            current: Tpdu::NoData,
            transferred: 0,
            state: State::Idle,
            headers_sent: 0,
            pending: Pending::Nothing,
        }
    }

    /// The configuration in use.
    pub fn config(&self) -> &Config {
        &self.config
    }

    /// The APDU buffer: after [`Action::Done`], the response data at its start.
    pub fn buffer(&self) -> &[u8] {
        self.buf.as_ref()
    }

    /// The APDU buffer, to write the next command into. Writing into it during an exchange
    /// changes the command data still to be sent.
    pub fn buffer_mut(&mut self) -> &mut [u8] {
        self.buf.as_mut()
    }

    /// Gives the lent buffer back.
    pub fn into_buffer(self) -> B {
        self.buf
    }

    /// The case of the command of the exchange in progress (or of the last one); `None`
    /// before the first, or when the last command was refused.
    pub fn case(&self) -> Option<Case> {
        self.case
    }

    /// The response data received so far (the start of the buffer).
    pub fn data(&self) -> &[u8] {
        self.buf.as_ref().get(..self.received).unwrap_or_default()
    }

    /// True when no exchange is in progress and [`Reader::transmit`] takes a command.
    pub fn is_idle(&self) -> bool {
        matches!(self.state, State::Idle | State::Finished)
    }

    /// True once an exchange is over (done or failed), until the next one starts.
    pub fn is_finished(&self) -> bool {
        self.state == State::Finished
    }

    /// The bytes of the last [`Action::Send`], until the next call that changes the engine.
    pub fn pending_transmit(&self) -> Option<&[u8]> {
        match self.pending {
            Pending::Nothing => None,
            Pending::Header => Some(&self.header),
            Pending::Data { from, to } => self.buf.as_ref().get(from..to),
        }
    }

    /// Abandon the exchange in progress, if any (the card was reset or deactivated): the
    /// reader is idle, as new, with its buffer and configuration.
    pub fn reset(&mut self) {
        self.case = None;
        self.received = 0;
        self.current = Tpdu::NoData;
        self.transferred = 0;
        self.state = State::Idle;
        self.headers_sent = 0;
        self.pending = Pending::Nothing;
    }

    /// Start the exchange of the command APDU `buffer()[..len]` (a short APDU): returns the
    /// TPDU header to send (§10.3.2 and §12.2: P3 = 00 for case 1, Le for case 2S, Lc for
    /// cases 3S and 4S). Fails on a malformed or extended APDU, an INS of 0x6X / 0x9X, or a
    /// buffer too short for Ne, which end the exchange; and with [`Error::OutOfSequence`]
    /// while an exchange is in progress, which changes nothing.
    pub fn transmit(&mut self, len: usize) -> Result<Action<'_>, Error> {
        if !self.is_idle() {
            return Err(Error::OutOfSequence);
        }
        self.reset();
        let prepared = self.prepare(len);
        match prepared.and_then(|(header, tpdu)| self.issue(header, tpdu)) {
            Ok(()) => {
                self.pending = Pending::Header;
                Ok(Action::Send(&self.header))
            }
            Err(e) => Err(self.fail(e)),
        }
    }

    /// The case and the first TPDU of the command `buffer()[..len]`.
    fn prepare(&mut self, len: usize) -> Result<([u8; 5], Tpdu), Error> {
        let command = self.buf.as_ref().get(..len).ok_or(Error::MalformedApdu)?;
        let case = Case::of(command)?;
        let ins = command
            .get(field::INS)
            .copied()
            .ok_or(Error::MalformedApdu)?;
        if matches!(ins & 0xF0, 0x60 | 0x90) {
            return Err(Error::InvalidIns(ins));
        }
        let mut header = [0; 5];
        if let (Some(dst), Some(src)) = (header.get_mut(field::HEADER), command.get(field::HEADER))
        {
            dst.copy_from_slice(src);
        }
        let (p3, tpdu) = match case {
            Case::Case1 => (0, Tpdu::NoData),
            Case::Case2 { ne } => (
                ne as u8,
                Tpdu::Incoming {
                    len: usize::from(ne),
                },
            ),
            Case::Case3 { nc } | Case::Case4 { nc, .. } => (
                nc,
                Tpdu::Outgoing {
                    len: usize::from(nc),
                },
            ),
        };
        if let Some(slot) = header.get_mut(field::P3) {
            *slot = p3; // for Ne = 256, `ne as u8` is 0x00 as §12.2.3 wants
        }
        self.case = Some(case);
        Ok((header, tpdu))
    }

    /// Bytes from the card (any number, any chunking). An error ends the exchange.
    pub fn receive(&mut self, bytes: &[u8]) -> Result<Action<'_>, Error> {
        if self.is_idle() {
            return Err(Error::OutOfSequence);
        }
        self.pending = Pending::Nothing;
        let mut outcome = Step::Continue;
        for &byte in bytes {
            if !matches!(outcome, Step::Continue) {
                // The card should be waiting for the reader (or be done).
                return Err(self.fail(Error::UnexpectedByte(byte)));
            }
            outcome = match self.step(byte) {
                Ok(step) => step,
                Err(e) => return Err(self.fail(e)),
            };
        }
        Ok(match outcome {
            Step::Continue if bytes.is_empty() => Action::Wait,
            Step::Continue => Action::ArmWt,
            Step::SendHeader => {
                self.pending = Pending::Header;
                Action::Send(&self.header)
            }
            Step::SendData { from, to } => {
                if to > self.buf.as_ref().len() {
                    return Err(self.fail(Error::MalformedApdu));
                }
                self.pending = Pending::Data { from, to };
                Action::Send(self.buf.as_ref().get(from..to).unwrap_or_default())
            }
            Step::Done(response) => {
                self.state = State::Finished;
                Action::Done(response)
            }
        })
    }

    /// WT passed without a byte from the card (§10.2): the exchange failed with
    /// [`Error::Timeout`]. Returns the error ([`Error::OutOfSequence`] when no exchange is in
    /// progress).
    pub fn wt_expired(&mut self) -> Error {
        if self.is_idle() {
            return Error::OutOfSequence;
        }
        self.fail(Error::Timeout)
    }

    fn fail(&mut self, error: Error) -> Error {
        self.state = State::Finished;
        self.pending = Pending::Nothing;
        error
    }

    /// Make `header` the current TPDU.
    fn issue(&mut self, header: [u8; 5], tpdu: Tpdu) -> Result<(), Error> {
        if self.headers_sent >= self.config.max_commands {
            return Err(Error::TooManyCommands);
        }
        if let Tpdu::Incoming { len } = tpdu {
            if len > self.buf.as_ref().len().saturating_sub(self.received) {
                return Err(Error::ResponseOverflow);
            }
        }
        self.headers_sent = self.headers_sent.saturating_add(1);
        self.header = header;
        self.current = tpdu;
        self.transferred = 0;
        self.state = State::Procedure;
        Ok(())
    }

    fn store(&mut self, byte: u8) -> Result<(), Error> {
        let slot = self
            .buf
            .as_mut()
            .get_mut(self.received)
            .ok_or(Error::ResponseOverflow)?;
        *slot = byte;
        self.received += 1;
        self.transferred += 1;
        Ok(())
    }

    fn step(&mut self, byte: u8) -> Result<Step, Error> {
        match self.state {
            State::Procedure => self.procedure(byte),
            State::Sw2 { sw1 } => self.status(sw1, byte),
            State::Receiving { remaining } => {
                self.store(byte)?;
                self.state = match remaining.checked_sub(1) {
                    Some(left) if left > 0 => State::Receiving { remaining: left },
                    _ => State::Procedure,
                };
                Ok(Step::Continue)
            }
            State::ReceivingOne => {
                self.store(byte)?;
                self.state = State::Procedure;
                Ok(Step::Continue)
            }
            State::Idle | State::Finished => Err(Error::OutOfSequence),
        }
    }

    /// A procedure byte, ISO/IEC 7816-3:2006 §10.3.3.
    fn procedure(&mut self, byte: u8) -> Result<Step, Error> {
        let ins = self.header.get(field::INS).copied().unwrap_or_default();
        if byte == NULL {
            return Ok(Step::Continue);
        }
        if byte == ins || byte == !ins {
            let all = byte == ins;
            let (len, outgoing) = match self.current {
                Tpdu::NoData => return Err(Error::UnexpectedProcedureByte(byte)),
                Tpdu::Outgoing { len } => (len, true),
                Tpdu::Incoming { len } => (len, false),
            };
            let left = len.saturating_sub(self.transferred);
            if left == 0 {
                return Err(Error::UnexpectedProcedureByte(byte));
            }
            let n = if all { left } else { 1 };
            if outgoing {
                let from = field::DATA + self.transferred;
                self.transferred += n;
                return Ok(Step::SendData { from, to: from + n });
            }
            self.state = if all {
                State::Receiving { remaining: left }
            } else {
                State::ReceivingOne
            };
            return Ok(Step::Continue);
        }
        if matches!(byte & 0xF0, 0x60 | 0x90) {
            self.state = State::Sw2 { sw1: byte };
            return Ok(Step::Continue);
        }
        Err(Error::UnexpectedProcedureByte(byte))
    }

    /// SW1 SW2 received: done, or GET RESPONSE on 61xx, or re-issue on 6Cxx (§12.2).
    fn status(&mut self, sw1: u8, sw2: u8) -> Result<Step, Error> {
        let expects_data = matches!(self.case, Some(Case::Case2 { .. } | Case::Case4 { .. }));
        match sw1 {
            // 61xx: xx more bytes are available (00: 256 or more), §12.2.3 to §12.2.5.
            0x61 if expects_data => {
                let ne = self.case.map_or(0, Case::ne);
                let still_wanted = usize::from(ne).saturating_sub(self.received);
                if still_wanted == 0 {
                    return Ok(self.done(sw1, sw2));
                }
                let len = usize::from(short_n(sw2)).min(still_wanted);
                // len is 1 to 256; 256 is sent as P3 = 00.
                let p3 = len as u8;
                let header = [
                    self.config.get_response_cla,
                    INS_GET_RESPONSE,
                    0x00,
                    0x00,
                    p3,
                ];
                self.issue(header, Tpdu::Incoming { len })?;
                Ok(Step::SendHeader)
            }
            // 6Cxx: wrong Le, xx is the exact length: re-issue the same header with P3 = xx.
            0x6C if matches!(self.current, Tpdu::Incoming { .. }) && self.transferred == 0 => {
                let mut header = self.header;
                if let Some(p3) = header.get_mut(field::P3) {
                    *p3 = sw2;
                }
                self.issue(
                    header,
                    Tpdu::Incoming {
                        len: usize::from(short_n(sw2)),
                    },
                )?;
                Ok(Step::SendHeader)
            }
            _ => Ok(self.done(sw1, sw2)),
        }
    }

    fn done(&mut self, sw1: u8, sw2: u8) -> Step {
        Step::Done(Response {
            len: self.received,
            sw1,
            sw2,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cases_are_decoded() {
        assert_eq!(Case::of(&[0, 0xA4, 0, 0]), Ok(Case::Case1));
        assert_eq!(Case::of(&[0, 0xB0, 0, 0, 0]), Ok(Case::Case2 { ne: 256 }));
        assert_eq!(Case::of(&[0, 0xB0, 0, 0, 5]), Ok(Case::Case2 { ne: 5 }));
        assert_eq!(
            Case::of(&[0, 0xD6, 0, 0, 1, 0xAA]),
            Ok(Case::Case3 { nc: 1 })
        );
        assert_eq!(
            Case::of(&[0, 0xA4, 4, 0, 1, 0xAA, 0]),
            Ok(Case::Case4 { nc: 1, ne: 256 })
        );
        assert_eq!(
            Case::of(&[0, 0xB0, 0, 0, 0, 0x01, 0x00]),
            Err(Error::ExtendedApdu)
        );
        assert_eq!(
            Case::of(&[0, 0xB0, 0, 0, 0, 0x01]),
            Err(Error::MalformedApdu)
        );
        assert_eq!(Case::of(&[0, 0xB0, 0]), Err(Error::MalformedApdu));
        assert_eq!(
            Case::of(&[0, 0xD6, 0, 0, 3, 0xAA]),
            Err(Error::MalformedApdu)
        );
    }

    #[test]
    fn invalid_ins_is_refused() {
        for ins in [0x62, 0x9F] {
            let mut reader = Reader::new(Config::default(), [0, ins, 0, 0]);
            assert_eq!(reader.transmit(4), Err(Error::InvalidIns(ins)));
            assert!(reader.is_finished());
            assert_eq!(reader.case(), None);
        }
    }
}
