//! The interface-device (reader) role of T=1, ISO/IEC 7816-3:2006 §11.6.

use super::block::{BlockRepr, RError, SBlock};
use super::engine::{
    append, chunk, swap_nad, Action, CallError, Config, Deadline, Event, Incoming, LastSent, Link,
    Rcv, SentI, TransactionError,
};
use super::Seq;

/// What a [`Reader`] reports to its application.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum ReaderEvent {
    /// The transaction completed: the response APDU is `buffer()[..len]`.
    Response {
        /// Response length in bytes.
        len: usize,
    },
    /// The transaction (or S-exchange) failed; see [`TransactionError`].
    Failed(TransactionError),
    /// The card acknowledged S(IFS request): IFSD is now this value (§11.6.2.2 Rule 4).
    IfsdSet(u8),
    /// The explicit [`Reader::resynch`] succeeded (Rule 6): sequence numbers, IFSC and IFSD
    /// are back to their initial values.
    Resynchronised,
    /// Informational: the card asked for more time (S(WTX request), Rule 3); the engine
    /// answered and armed BWT × this multiplier. A bridge can send a CCID time extension.
    WaitingTimeExtension(u8),
    /// Informational: the card announced a new IFSC with S(IFS request) (Rule 4); the engine
    /// answered and chains with it from now on.
    IfscChanged(u8),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum ResynchCause {
    /// [`Reader::resynch`] was called.
    Requested,
    /// Error recovery gave up (Rule 7.4); the transaction fails.
    Recovery,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    /// No exchange: received characters are ignored.
    Idle,
    /// Sending the command chain (`len` bytes); the last I-block is not yet acknowledged.
    Command { len: usize },
    /// Receiving the response chain; `len` bytes so far.
    Response { len: usize, overflow: bool },
    /// Own S(IFS request) outstanding.
    Ifs(u8),
    /// Own S(RESYNCH request) outstanding.
    Resynch(ResynchCause),
    /// S(RESYNCH) failed; only [`Reader::reset`] (after a warm reset) or
    /// [`Reader::resynch`] help.
    Dead,
}

/// A sans-IO T=1 engine in the interface-device role, ISO/IEC 7816-3:2006 §11.6.
///
/// It sends command APDUs (chained in I-blocks of at most IFSC bytes), receives response
/// APDUs of any length (chained card I-blocks acknowledged with R-blocks), answers the card's
/// S(WTX) and S(IFS) requests, issues S(IFS) and S(RESYNCH) requests, and recovers from
/// transmission errors as §11.6.3.2 prescribes. The APDU buffer `B` is lent by the caller and
/// holds the command, then the response; the engine itself holds one block (259 bytes).
///
/// # Call sequence
///
/// 1. `Reader::new(config, buffer)` once the ATR (and PPS) fixed IFSC and the EDC kind.
/// 2. Optionally [`Reader::request_ifsd`] (e.g. 254, as a bridge does after PPS) and drive it
///    like a transaction until [`ReaderEvent::IfsdSet`].
/// 3. For each APDU: write it to [`Reader::buffer_mut`], call [`Reader::transmit`]`(len)`.
/// 4. Every call returns an [`Action`]: transmit `action.transmit` (if any, keeping BGT),
///    then arm `action.deadline` (replacing the armed one; `None` disarms). A deadline that
///    comes with bytes starts after the last byte went out.
/// 5. Feed the line to [`Reader::handle`]: [`Event::Received`] for characters (any
///    chunking), [`Event::ParityError`] for a character with bad parity,
///    [`Event::DeadlinePassed`] when the armed deadline passes. Repeat step 4 with each
///    returned action.
/// 6. The transaction ends with `action.completion` = [`ReaderEvent::Response`] (read
///    `buffer()[..len]`) or [`ReaderEvent::Failed`]. Informational completions
///    ([`ReaderEvent::WaitingTimeExtension`], [`ReaderEvent::IfscChanged`]) may come before.
///
/// The action borrows the engine: copy or transmit the bytes before the next call, or fetch
/// them again with [`Reader::pending_transmit`] (an interrupt handler can send from there).
///
/// # Error recovery (§11.6.3.2)
///
/// An invalid block (EDC or parity error, wrong length, a block the protocol does not allow
/// here) or a BWT time-out is answered by Rule 7.1 (after an I-block: R-block asking for the
/// expected I-block), Rule 7.2 (after an R-block: the R-block again) or Rule 7.3 (after an
/// S-request: the request again; after an S-response: an R-block). After `retry_limit` such
/// attempts without progress (Rule 7.4) the engine sends S(RESYNCH request) (Rule 6), up to
/// `resynch_limit` times (Rule 6.4). A resynchronised transaction fails with
/// [`TransactionError::Resynchronised`]; the command is never sent twice. If RESYNCH is not
/// answered the result is [`TransactionError::CardUnresponsive`].
#[derive(Debug, Clone)]
pub struct Reader<B> {
    cfg: Config,
    link: Link,
    buf: B,
    ifsc: u8,
    ifsd: u8,
    /// N(S) of our next new I-block.
    ns: Seq,
    /// N(S) expected of the card's next I-block.
    nr: Seq,
    /// Our last I-block, until the card acknowledges it.
    pending: Option<SentI>,
    /// Our last R-block (Rule 7.2).
    last_r: Option<(Seq, RError)>,
    last: Option<LastSent>,
    phase: Phase,
    retries: u8,
    resynchs: u8,
    armed: Option<Deadline>,
}

const BWT: Option<Deadline> = Some(Deadline::Bwt { multiplier: 1 });

impl<B: AsRef<[u8]> + AsMut<[u8]>> Reader<B> {
    /// A reader engine with `config` (IFSC and IFSD are clamped to 1..=254) and the APDU
    /// buffer `buffer` (its length bounds command and response).
    pub fn new(config: Config, buffer: B) -> Self {
        let cfg = config.sanitised();
        Reader {
            cfg,
            link: Link::new(cfg.edc),
            buf: buffer,
            ifsc: cfg.ifsc,
            ifsd: cfg.ifsd,
            ns: Seq::Zero,
            nr: Seq::Zero,
            pending: None,
            last_r: None,
            last: None,
            phase: Phase::Idle,
            retries: 0,
            resynchs: 0,
            armed: None,
        }
    }

    /// Back to the state after the ATR (call after a warm reset or deactivation/activation):
    /// sequence numbers 0, IFSC and IFSD from the configuration, nothing in progress.
    pub fn reset(&mut self) {
        let cfg = self.cfg;
        self.link = Link::new(cfg.edc);
        self.ifsc = cfg.ifsc;
        self.ifsd = cfg.ifsd;
        self.ns = Seq::Zero;
        self.nr = Seq::Zero;
        self.pending = None;
        self.last_r = None;
        self.last = None;
        self.phase = Phase::Idle;
        self.retries = 0;
        self.resynchs = 0;
        self.armed = None;
    }

    /// The configuration in use.
    pub fn config(&self) -> &Config {
        &self.cfg
    }

    /// The APDU buffer: after [`ReaderEvent::Response`], the response.
    pub fn buffer(&self) -> &[u8] {
        self.buf.as_ref()
    }

    /// The APDU buffer, to write the next command into.
    pub fn buffer_mut(&mut self) -> &mut [u8] {
        self.buf.as_mut()
    }

    /// Gives the lent buffer back.
    pub fn into_buffer(self) -> B {
        self.buf
    }

    /// The IFSC in use (maximum INF the reader sends).
    pub fn ifsc(&self) -> u8 {
        self.ifsc
    }

    /// The IFSD in use (maximum INF the reader accepts).
    pub fn ifsd(&self) -> u8 {
        self.ifsd
    }

    /// True when no exchange is in progress and a new one can start.
    pub fn is_idle(&self) -> bool {
        self.phase == Phase::Idle
    }

    /// True after [`TransactionError::CardUnresponsive`]: the card must be warm-reset and the
    /// engine [`Reader::reset`] (or a [`Reader::resynch`] tried).
    pub fn needs_reset(&self) -> bool {
        self.phase == Phase::Dead
    }

    /// The block last handed out for transmission, until characters are received.
    pub fn pending_transmit(&self) -> Option<&[u8]> {
        self.link.pending_transmit()
    }

    /// Starts a transaction with the command APDU `buffer()[..len]` (§11.6.2.3: chained when
    /// longer than IFSC). A command of 0 bytes is sent as one empty I-block.
    pub fn transmit(&mut self, len: usize) -> Result<Action<'_, ReaderEvent>, CallError> {
        self.check_idle()?;
        if len > self.buf.as_ref().len() {
            return Err(CallError::TooLong);
        }
        self.phase = Phase::Command { len };
        self.retries = 0;
        self.last_r = None;
        self.send_new_i(0, len);
        Ok(self.act(BWT, None))
    }

    /// Sends S(IFS request) announcing a new IFSD, 1 to 254 (§11.6.2.2 Rule 4). Completes with
    /// [`ReaderEvent::IfsdSet`].
    pub fn request_ifsd(&mut self, ifsd: u8) -> Result<Action<'_, ReaderEvent>, CallError> {
        self.check_idle()?;
        if ifsd == 0 || ifsd == 0xFF {
            return Err(CallError::InvalidIfs);
        }
        self.phase = Phase::Ifs(ifsd);
        self.retries = 0;
        self.send_s(SBlock::IfsRequest(ifsd));
        Ok(self.act(BWT, None))
    }

    /// Sends S(RESYNCH request) (§11.6.3.2 Rule 6). Completes with
    /// [`ReaderEvent::Resynchronised`]. Allowed when idle and after
    /// [`TransactionError::CardUnresponsive`].
    pub fn resynch(&mut self) -> Result<Action<'_, ReaderEvent>, CallError> {
        match self.phase {
            Phase::Idle | Phase::Dead => Ok(self.start_resynch(ResynchCause::Requested)),
            _ => Err(CallError::Busy),
        }
    }

    /// Feeds one event and returns what to do. See the type documentation for the sequence.
    pub fn handle(&mut self, event: Event<'_>) -> Action<'_, ReaderEvent> {
        let listening = !matches!(self.phase, Phase::Idle | Phase::Dead);
        match event {
            // Characters nobody expects (no exchange in progress) are line noise: ignored.
            Event::Received(bytes) if !listening || bytes.is_empty() => self.act(self.armed, None),
            Event::ParityError if !listening => self.act(self.armed, None),
            Event::Received(bytes) => {
                let deadline = self.link.receive(bytes);
                self.act(Some(deadline), None)
            }
            Event::ParityError => {
                let deadline = self.link.parity_error();
                self.act(Some(deadline), None)
            }
            Event::DeadlinePassed => {
                if self.armed.take().is_none() {
                    return self.act(None, None);
                }
                match self.link.expire() {
                    // BWT time-out: handled like an invalid block (Rules 7.1 to 7.3).
                    Incoming::Silence => self.on_error(RError::Other),
                    Incoming::Invalid(code) => self.on_error(code),
                    Incoming::Block(len) => self.on_block(len),
                }
            }
        }
    }

    fn check_idle(&self) -> Result<(), CallError> {
        match self.phase {
            Phase::Idle => Ok(()),
            Phase::Dead => Err(CallError::NeedsReset),
            _ => Err(CallError::Busy),
        }
    }

    fn act(
        &mut self,
        deadline: Option<Deadline>,
        completion: Option<ReaderEvent>,
    ) -> Action<'_, ReaderEvent> {
        self.armed = deadline;
        Action {
            transmit: self.link.take_transmit(),
            deadline,
            completion,
        }
    }

    /// A valid block arrived (framing and EDC checked by the link).
    fn on_block(&mut self, len: usize) -> Action<'_, ReaderEvent> {
        let (nad, rcv) = Rcv::of(&self.link.parsed(len));
        let nad_ok = nad == swap_nad(self.cfg.nad);
        match self.phase {
            // Rule 1: the card does not start an exchange. Ignore it.
            Phase::Idle | Phase::Dead => self.act(None, None),
            Phase::Resynch(cause) => match rcv {
                Rcv::S(SBlock::ResynchResponse) if nad_ok => self.resynchronised(cause),
                _ => self.on_error(RError::Other),
            },
            Phase::Ifs(value) => match rcv {
                // Rule 4: the card echoes the value.
                Rcv::S(SBlock::IfsResponse(echo)) if nad_ok && echo == value => {
                    self.ifsd = value;
                    self.retries = 0;
                    self.phase = Phase::Idle;
                    self.act(None, Some(ReaderEvent::IfsdSet(value)))
                }
                _ => self.on_error(RError::Other),
            },
            Phase::Command { .. } | Phase::Response { .. } if !nad_ok => {
                self.on_error(RError::Other)
            }
            Phase::Command { .. } | Phase::Response { .. } => self.on_transaction_block(rcv, len),
        }
    }

    fn on_transaction_block(&mut self, rcv: Rcv, block_len: usize) -> Action<'_, ReaderEvent> {
        match rcv {
            // Rule 3: acknowledge with the same INF; the next wait is BWT × multiplier.
            Rcv::S(SBlock::WtxRequest(multiplier)) => {
                self.retries = 0;
                self.send_s(SBlock::WtxResponse(multiplier));
                let deadline = Deadline::Bwt {
                    multiplier: multiplier.max(1),
                };
                self.act(
                    Some(deadline),
                    Some(ReaderEvent::WaitingTimeExtension(multiplier)),
                )
            }
            // Rule 4: the card announces a new IFSC.
            Rcv::S(SBlock::IfsRequest(ifsc)) => {
                self.retries = 0;
                self.ifsc = ifsc;
                self.send_s(SBlock::IfsResponse(ifsc));
                self.act(BWT, Some(ReaderEvent::IfscChanged(ifsc)))
            }
            // Rule 9: the card aborts its chain; acknowledge and end the transaction.
            Rcv::S(SBlock::AbortRequest) => {
                self.send_s(SBlock::AbortResponse);
                self.end_transaction();
                self.act(None, Some(ReaderEvent::Failed(TransactionError::Aborted)))
            }
            // Any other S-block (responses nobody asked for, RESYNCH request from the card)
            // and undefined blocks are protocol errors (§11.6.3.1).
            Rcv::S(_) | Rcv::Unknown => self.on_error(RError::Other),
            Rcv::R { nr } => match self.pending {
                // The card asks for our last I-block again (Rule 7.1 seen from the card).
                Some(sent) if nr == sent.ns => self.retransmit(sent),
                // Rule 2.2 / §11.6.2.3: R(N(R)) acknowledges a chained I-block; send the next.
                Some(sent) if sent.more => {
                    self.retries = 0;
                    self.send_new_i(sent.off.saturating_add(sent.len), sent.total);
                    self.act(BWT, None)
                }
                // The last block of our chain is acknowledged by an I-block, not an R-block.
                Some(_) => self.on_error(RError::Other),
                // Receiving: the card did not get our R-block (Rule 7.2, card side); resend it.
                None if self.last_r.is_some() => self.retry(Self::resend_r),
                None => self.on_error(RError::Other),
            },
            Rcv::I { ns, more, inf_len } => {
                let chaining = matches!(self.pending, Some(sent) if sent.more);
                if chaining || ns != self.nr || inf_len > usize::from(self.ifsd) {
                    return self.on_error(RError::Other);
                }
                // Rule 2.1: the card's I-block acknowledges our last I-block.
                if let Phase::Command { .. } = self.phase {
                    self.pending = None;
                    self.phase = Phase::Response {
                        len: 0,
                        overflow: false,
                    };
                }
                if let Phase::Response { len, overflow } = &mut self.phase {
                    append(self.buf.as_mut(), len, overflow, self.link.inf(block_len));
                }
                self.nr = self.nr.next();
                self.retries = 0;
                if more {
                    // §11.6.2.3: acknowledge a chained I-block with R(N(R)).
                    self.send_r(RError::NoError);
                    return self.act(BWT, None);
                }
                let completion = match self.phase {
                    Phase::Response {
                        len,
                        overflow: false,
                    } => ReaderEvent::Response { len },
                    Phase::Response {
                        len,
                        overflow: true,
                    } => ReaderEvent::Failed(TransactionError::ResponseTooLong { len }),
                    _ => ReaderEvent::Response { len: 0 },
                };
                self.end_transaction();
                self.act(None, Some(completion))
            }
        }
    }

    /// An invalid block or a BWT time-out, §11.6.3.2.
    fn on_error(&mut self, code: RError) -> Action<'_, ReaderEvent> {
        match self.phase {
            Phase::Idle | Phase::Dead => self.act(None, None),
            Phase::Resynch(_) => {
                // Rule 6.4: S(RESYNCH request) is sent at most `resynch_limit` times.
                if self.resynchs >= self.cfg.resynch_limit {
                    self.phase = Phase::Dead;
                    self.pending = None;
                    self.link.reset_rx();
                    return self.act(
                        None,
                        Some(ReaderEvent::Failed(TransactionError::CardUnresponsive)),
                    );
                }
                self.resynchs = self.resynchs.saturating_add(1);
                self.send_s(SBlock::ResynchRequest);
                self.act(BWT, None)
            }
            Phase::Command { .. } | Phase::Response { .. } | Phase::Ifs(_) => {
                self.retry(|reader| match reader.last {
                    // Rule 7.3: an S(request) is sent again.
                    Some(LastSent::SRequest(request)) => reader.send_s(request),
                    // Rule 7.2: an R-block is sent again.
                    Some(LastSent::R) => reader.resend_r(),
                    // Rule 7.1 (after an I-block) and Rule 7.3 (after an S-response): send an
                    // R-block whose N(R) asks for the expected I-block.
                    Some(LastSent::I) | Some(LastSent::SResponse) | None => reader.send_r(code),
                })
            }
        }
    }

    /// One more error-recovery transmission, or RESYNCH when the limit is reached (Rule 7.4).
    fn retry(&mut self, send: impl FnOnce(&mut Self)) -> Action<'_, ReaderEvent> {
        if self.retries >= self.cfg.retry_limit {
            return self.start_resynch(ResynchCause::Recovery);
        }
        self.retries = self.retries.saturating_add(1);
        send(self);
        self.act(BWT, None)
    }

    fn retransmit(&mut self, sent: SentI) -> Action<'_, ReaderEvent> {
        self.retry(|reader| reader.send_i(sent.off, sent.total, sent.ns))
    }

    fn start_resynch(&mut self, cause: ResynchCause) -> Action<'_, ReaderEvent> {
        self.phase = Phase::Resynch(cause);
        self.pending = None;
        self.retries = 0;
        self.resynchs = 1;
        self.send_s(SBlock::ResynchRequest);
        self.act(BWT, None)
    }

    /// Rule 6.3: S(RESYNCH response) received; both sides restart from the initial state.
    fn resynchronised(&mut self, cause: ResynchCause) -> Action<'_, ReaderEvent> {
        self.ns = Seq::Zero;
        self.nr = Seq::Zero;
        self.ifsc = self.cfg.ifsc;
        self.ifsd = self.cfg.ifsd;
        self.pending = None;
        self.last_r = None;
        self.last = None;
        self.retries = 0;
        self.resynchs = 0;
        self.phase = Phase::Idle;
        let completion = match cause {
            ResynchCause::Requested => ReaderEvent::Resynchronised,
            ResynchCause::Recovery => ReaderEvent::Failed(TransactionError::Resynchronised),
        };
        self.act(None, Some(completion))
    }

    fn end_transaction(&mut self) {
        self.phase = Phase::Idle;
        self.pending = None;
        self.retries = 0;
        self.link.reset_rx();
    }

    /// Sends the next new I-block of the command chain, starting at `off`.
    fn send_new_i(&mut self, off: usize, total: usize) {
        let ns = self.ns;
        self.ns = ns.next();
        self.send_i(off, total, ns);
    }

    /// Sends (or resends) the I-block starting at `off` with N(S) `ns`; at most IFSC bytes
    /// (§11.4.2), M set if more follow (§11.6.2.3).
    fn send_i(&mut self, off: usize, total: usize, ns: Seq) {
        let len = total.saturating_sub(off).min(usize::from(self.ifsc));
        let more = off.saturating_add(len) < total;
        self.link
            .emit_i(self.cfg.nad, ns, more, chunk(self.buf.as_ref(), off, len));
        self.pending = Some(SentI {
            off,
            len,
            total,
            ns,
            more,
        });
        self.last = Some(LastSent::I);
    }

    /// Sends R(N(R)) asking for the card's next I-block.
    fn send_r(&mut self, error: RError) {
        let repr = BlockRepr::R {
            nad: self.cfg.nad,
            nr: self.nr,
            error,
        };
        self.link.emit(&repr);
        self.last_r = Some((self.nr, error));
        self.last = Some(LastSent::R);
    }

    /// Rule 7.2: the same R-block again.
    fn resend_r(&mut self) {
        match self.last_r {
            Some((nr, error)) => {
                self.link.emit(&BlockRepr::R {
                    nad: self.cfg.nad,
                    nr,
                    error,
                });
                self.last = Some(LastSent::R);
            }
            None => self.send_r(RError::Other),
        }
    }

    fn send_s(&mut self, kind: SBlock) {
        self.link.emit(&BlockRepr::S {
            nad: self.cfg.nad,
            kind,
        });
        self.last = Some(if kind.is_request() {
            LastSent::SRequest(kind)
        } else {
            LastSent::SResponse
        });
    }
}
