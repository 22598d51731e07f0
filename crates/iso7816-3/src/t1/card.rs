//! The card role of T=1, ISO/IEC 7816-3:2006 §11.6.

use super::block::{BlockRepr, RError, SBlock};
use super::engine::{
    append, chunk, swap_nad, Action, CallError, Config, Deadline, Event, Incoming, LastSent, Link,
    Rcv, SentI,
};
use super::Seq;

/// What a [`Card`] reports to its application.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum CardEvent {
    /// A command APDU arrived: it is `buffer()[..len]`. The card has the turn: answer with
    /// [`Card::respond`] (after [`Card::request_wtx`] if it takes longer than BWT).
    Command {
        /// Command length in bytes.
        len: usize,
    },
    /// A command longer than the lent buffer arrived (`len` bytes, the excess discarded). The
    /// card has the turn: answer with [`Card::respond`] (e.g. status 6700).
    CommandTooLong {
        /// Bytes the reader sent.
        len: usize,
    },
    /// The reader resynchronised (S(RESYNCH), Rule 6): sequence numbers, IFSC and IFSD are
    /// back to their initial values; a command being processed is abandoned (do not respond).
    Resynchronised,
    /// The reader aborted its chain (S(ABORT), Rule 9): the partial command is discarded.
    Aborted,
    /// The reader announced a new IFSD (S(IFS request), Rule 4): responses are chained with it.
    IfsdChanged(u8),
    /// The reader acknowledged the card's S(IFS request): IFSC is now this value.
    IfscSet(u8),
    /// The reader acknowledged the card's S(WTX request) with this multiplier (Rule 3).
    WtxAcknowledged(u8),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    /// The reader has the turn: receiving a command chain (`len` bytes so far).
    Receiving { len: usize, overflow: bool },
    /// The application is processing a command; `queued` holds a response given while an
    /// S-request of the card was outstanding.
    Processing { queued: Option<usize> },
    /// Sending a response chain.
    Sending,
}

/// A sans-IO T=1 engine in the card role, ISO/IEC 7816-3:2006 §11.6.
///
/// It receives command APDUs (chained I-blocks, acknowledged with R-blocks) into the lent
/// buffer `B`, reports [`CardEvent::Command`], then sends the response the application writes
/// into the same buffer (chained in I-blocks of at most IFSD bytes). It sends S(WTX request)
/// and S(IFS request) when the application asks, answers the reader's S(IFS), S(RESYNCH) and
/// S(ABORT) requests, and recovers from errors as the reader does (§11.6.3.2 Rules 7.1 to 7.3),
/// except that a card has no BWT: it waits for the reader indefinitely and, after
/// `retry_limit` unsuccessful attempts, stops answering invalid blocks until a valid block
/// arrives (Rule 7.4), leaving recovery to the reader's S(RESYNCH).
///
/// # Call sequence
///
/// 1. `Card::new(config, buffer)` after the ATR it sent (`config.ifsc`: the IFSC it
///    announced; `config.ifsd`: 32).
/// 2. Feed the line to [`Card::handle`] ([`Event::Received`], [`Event::ParityError`],
///    [`Event::DeadlinePassed`]). Each call returns an [`Action`]: transmit `action.transmit`
///    (keeping BGT), arm `action.deadline` (`None` disarms; the card only arms CWT and BGT).
/// 3. On [`CardEvent::Command`] read `buffer()[..len]`, process it, write the response into
///    [`Card::buffer_mut`] and call [`Card::respond`]`(len)`. While processing, an operation
///    longer than BWT calls [`Card::request_wtx`] first (and may call it again later).
/// 4. Back to step 2 for the next command.
#[derive(Debug, Clone)]
pub struct Card<B> {
    cfg: Config,
    link: Link,
    buf: B,
    ifsc: u8,
    ifsd: u8,
    /// N(S) of the card's next new I-block.
    ns: Seq,
    /// N(S) expected of the reader's next I-block.
    expected: Seq,
    /// The card's last I-block, until the reader acknowledges it.
    pending: Option<SentI>,
    /// The card's last R-block (Rule 7.2).
    last_r: Option<(Seq, RError)>,
    last: Option<LastSent>,
    /// The card's own S(request) awaiting its response.
    s_request: Option<SBlock>,
    phase: Phase,
    retries: u8,
    armed: Option<Deadline>,
}

const RECEIVING: Phase = Phase::Receiving {
    len: 0,
    overflow: false,
};

impl<B: AsRef<[u8]> + AsMut<[u8]>> Card<B> {
    /// A card engine with `config` (IFSC and IFSD are clamped to 1..=254) and the APDU
    /// buffer `buffer` (its length bounds command and response).
    pub fn new(config: Config, buffer: B) -> Self {
        let cfg = config.sanitised();
        Card {
            cfg,
            link: Link::new(cfg.edc),
            buf: buffer,
            ifsc: cfg.ifsc,
            ifsd: cfg.ifsd,
            ns: Seq::Zero,
            expected: Seq::Zero,
            pending: None,
            last_r: None,
            last: None,
            s_request: None,
            phase: RECEIVING,
            retries: 0,
            armed: None,
        }
    }

    /// Back to the state after the ATR (after a reset of the card).
    pub fn reset(&mut self) {
        self.link = Link::new(self.cfg.edc);
        self.resynch();
        self.armed = None;
    }

    /// The configuration in use.
    pub fn config(&self) -> &Config {
        &self.cfg
    }

    /// The APDU buffer: after [`CardEvent::Command`], the command.
    pub fn buffer(&self) -> &[u8] {
        self.buf.as_ref()
    }

    /// The APDU buffer, to write the response into.
    pub fn buffer_mut(&mut self) -> &mut [u8] {
        self.buf.as_mut()
    }

    /// Gives the lent buffer back.
    pub fn into_buffer(self) -> B {
        self.buf
    }

    /// The IFSC in use (maximum INF the card accepts).
    pub fn ifsc(&self) -> u8 {
        self.ifsc
    }

    /// The IFSD in use (maximum INF the card sends).
    pub fn ifsd(&self) -> u8 {
        self.ifsd
    }

    /// True between [`CardEvent::Command`] and [`Card::respond`].
    pub fn is_processing(&self) -> bool {
        matches!(self.phase, Phase::Processing { .. })
    }

    /// The block last handed out for transmission, until characters are received.
    pub fn pending_transmit(&self) -> Option<&[u8]> {
        self.link.pending_transmit()
    }

    /// Sends the response APDU `buffer()[..len]`, chained when longer than IFSD
    /// (§11.6.2.3). Only while processing a command.
    pub fn respond(&mut self, len: usize) -> Result<Action<'_, CardEvent>, CallError> {
        let Phase::Processing { queued: None } = self.phase else {
            return Err(CallError::Busy);
        };
        if len > self.buf.as_ref().len() {
            return Err(CallError::TooLong);
        }
        if self.s_request.is_some() {
            // Sent once the reader has answered the outstanding S-request.
            self.phase = Phase::Processing { queued: Some(len) };
            return Ok(self.act(None, None));
        }
        self.start_response(len);
        Ok(self.act(None, None))
    }

    /// Sends S(WTX request): the reader is to wait BWT × `multiplier` for the response
    /// (§11.6.2.2 Rule 3). Only while processing, with no other S-request outstanding.
    pub fn request_wtx(&mut self, multiplier: u8) -> Result<Action<'_, CardEvent>, CallError> {
        self.card_request(SBlock::WtxRequest(multiplier))
    }

    /// Sends S(IFS request) announcing a new IFSC, 1 to 254 (Rule 4). Only while processing
    /// (the card has the turn), with no other S-request outstanding.
    pub fn request_ifsc(&mut self, ifsc: u8) -> Result<Action<'_, CardEvent>, CallError> {
        if ifsc == 0 || ifsc == 0xFF {
            return Err(CallError::InvalidIfs);
        }
        self.card_request(SBlock::IfsRequest(ifsc))
    }

    /// Feeds one event and returns what to do. See the type documentation for the sequence.
    pub fn handle(&mut self, event: Event<'_>) -> Action<'_, CardEvent> {
        match event {
            Event::Received([]) => self.act(self.armed, None),
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
                    // A card has no BWT (§11.4.3 times the card's answers): silence is normal.
                    Incoming::Silence => self.act(None, None),
                    Incoming::Invalid(code) => self.on_error(code),
                    Incoming::Block(len) => self.on_block(len),
                }
            }
        }
    }

    fn card_request(&mut self, request: SBlock) -> Result<Action<'_, CardEvent>, CallError> {
        if !matches!(self.phase, Phase::Processing { queued: None }) || self.s_request.is_some() {
            return Err(CallError::Busy);
        }
        self.s_request = Some(request);
        self.retries = 0;
        self.send_s(request);
        Ok(self.act(None, None))
    }

    fn act(
        &mut self,
        deadline: Option<Deadline>,
        completion: Option<CardEvent>,
    ) -> Action<'_, CardEvent> {
        self.armed = deadline;
        Action {
            transmit: self.link.take_transmit(),
            deadline,
            completion,
        }
    }

    fn on_block(&mut self, len: usize) -> Action<'_, CardEvent> {
        let (nad, rcv) = Rcv::of(&self.link.parsed(len));
        if nad != self.cfg.nad & 0x77 {
            return self.on_error(RError::Other);
        }
        if let Rcv::S(SBlock::ResynchRequest) = rcv {
            // Rule 6: answer and restart from the initial state (sequence numbers 0,
            // IFSC and IFSD initial); whatever was in progress is abandoned.
            self.resynch();
            self.send_s(SBlock::ResynchResponse);
            return self.act(None, Some(CardEvent::Resynchronised));
        }
        if let Some(request) = self.s_request {
            // Rules 3 and 4: the reader answers the card's request with the same INF.
            return match rcv {
                Rcv::S(answer) if Some(answer) == request.response() => self.on_s_response(request),
                // Rule 7.3: anything else and the request is sent again.
                _ => self.on_error(RError::Other),
            };
        }
        match (rcv, self.phase) {
            // The card has the turn while processing: the reader's blocks (typically R-blocks
            // after its BWT ran out) are not answered; the response will follow.
            (_, Phase::Processing { .. }) => self.act(None, None),
            // Rule 4: the reader announces a new IFSD.
            (Rcv::S(SBlock::IfsRequest(ifsd)), _) => {
                self.ifsd = ifsd;
                self.retries = 0;
                self.send_s(SBlock::IfsResponse(ifsd));
                self.act(None, Some(CardEvent::IfsdChanged(ifsd)))
            }
            // Rule 9: the reader aborts its chain.
            (Rcv::S(SBlock::AbortRequest), _) => {
                self.pending = None;
                self.retries = 0;
                self.phase = RECEIVING;
                self.send_s(SBlock::AbortResponse);
                self.act(None, Some(CardEvent::Aborted))
            }
            (Rcv::S(_) | Rcv::Unknown, _) => self.on_error(RError::Other),
            (Rcv::I { .. }, Phase::Sending) => self.on_error(RError::Other),
            (Rcv::I { ns, more, inf_len }, Phase::Receiving { .. }) => {
                if ns != self.expected || inf_len > usize::from(self.ifsc) {
                    return self.on_error(RError::Other);
                }
                // Rule 2.1: the reader's I-block acknowledges the card's last response block.
                self.pending = None;
                if let Phase::Receiving {
                    len: received,
                    overflow,
                } = &mut self.phase
                {
                    append(self.buf.as_mut(), received, overflow, self.link.inf(len));
                }
                self.expected = self.expected.next();
                self.retries = 0;
                if more {
                    // §11.6.2.3: R(N(R)) acknowledges a chained I-block.
                    self.send_r(RError::NoError);
                    return self.act(None, None);
                }
                let completion = match self.phase {
                    Phase::Receiving {
                        len,
                        overflow: false,
                    } => CardEvent::Command { len },
                    Phase::Receiving {
                        len,
                        overflow: true,
                    } => CardEvent::CommandTooLong { len },
                    _ => CardEvent::Command { len: 0 },
                };
                self.phase = Phase::Processing { queued: None };
                self.act(None, Some(completion))
            }
            (Rcv::R { nr }, _) => match self.pending {
                // The reader asks for the card's last I-block again.
                Some(sent) if nr == sent.ns => {
                    self.retry(|card| card.send_i(sent.off, sent.total, sent.ns))
                }
                // §11.6.2.3: acknowledgement of a chained I-block; send the next one.
                Some(sent) if sent.more => {
                    self.retries = 0;
                    self.send_new_i(sent.off.saturating_add(sent.len), sent.total);
                    self.act(None, None)
                }
                Some(_) => self.on_error(RError::Other),
                // Rule 7.2 (reader side): the reader did not get the card's R-block.
                None if self.last_r.is_some() => self.retry(Self::resend_r),
                None => self.on_error(RError::Other),
            },
        }
    }

    fn on_s_response(&mut self, request: SBlock) -> Action<'_, CardEvent> {
        self.s_request = None;
        self.retries = 0;
        let completion = match request {
            SBlock::IfsRequest(ifsc) => {
                self.ifsc = ifsc;
                Some(CardEvent::IfscSet(ifsc))
            }
            SBlock::WtxRequest(multiplier) => Some(CardEvent::WtxAcknowledged(multiplier)),
            _ => None,
        };
        if let Phase::Processing { queued: Some(len) } = self.phase {
            self.start_response(len);
        }
        self.act(None, completion)
    }

    /// An invalid block, §11.6.3.2.
    fn on_error(&mut self, code: RError) -> Action<'_, CardEvent> {
        if matches!(self.phase, Phase::Processing { .. }) && self.s_request.is_none() {
            // Processing: the card answers with its response, not with R-blocks.
            return self.act(None, None);
        }
        self.retry(|card| match card.last {
            // Rule 7.3: the card's S(request) again.
            Some(LastSent::SRequest(request)) => card.send_s(request),
            // Rule 7.2: the same R-block again.
            Some(LastSent::R) => card.resend_r(),
            // Rule 7.1 (after an I-block), Rule 7.3 (after an S-response) and Rule 7.5 (nothing
            // sent yet: R(0)): an R-block asking for the expected I-block.
            Some(LastSent::I) | Some(LastSent::SResponse) | None => card.send_r(code),
        })
    }

    /// One more error-recovery transmission; after `retry_limit` the card stays silent and
    /// waits for the reader's S(RESYNCH request) (Rule 7.4).
    fn retry(&mut self, send: impl FnOnce(&mut Self)) -> Action<'_, CardEvent> {
        if self.retries >= self.cfg.retry_limit {
            return self.act(None, None);
        }
        self.retries = self.retries.saturating_add(1);
        send(self);
        self.act(None, None)
    }

    fn resynch(&mut self) {
        self.ns = Seq::Zero;
        self.expected = Seq::Zero;
        self.ifsc = self.cfg.ifsc;
        self.ifsd = self.cfg.ifsd;
        self.pending = None;
        self.last_r = None;
        self.last = None;
        self.s_request = None;
        self.phase = RECEIVING;
        self.retries = 0;
    }

    fn start_response(&mut self, len: usize) {
        self.phase = Phase::Sending;
        self.send_new_i(0, len);
    }

    fn send_new_i(&mut self, off: usize, total: usize) {
        let ns = self.ns;
        self.ns = ns.next();
        self.send_i(off, total, ns);
    }

    /// Sends (or resends) the response I-block starting at `off`: at most IFSD bytes
    /// (§11.4.2), M set if more follow. After the last block the reader has the turn again.
    fn send_i(&mut self, off: usize, total: usize, ns: Seq) {
        let len = total.saturating_sub(off).min(usize::from(self.ifsd));
        let more = off.saturating_add(len) < total;
        self.link.emit_i(
            swap_nad(self.cfg.nad),
            ns,
            more,
            chunk(self.buf.as_ref(), off, len),
        );
        self.pending = Some(SentI {
            off,
            len,
            total,
            ns,
            more,
        });
        self.last = Some(LastSent::I);
        self.phase = if more { Phase::Sending } else { RECEIVING };
    }

    fn send_r(&mut self, error: RError) {
        self.link.emit(&BlockRepr::R {
            nad: swap_nad(self.cfg.nad),
            nr: self.expected,
            error,
        });
        self.last_r = Some((self.expected, error));
        self.last = Some(LastSent::R);
    }

    fn resend_r(&mut self) {
        match self.last_r {
            Some((nr, error)) => {
                self.link.emit(&BlockRepr::R {
                    nad: swap_nad(self.cfg.nad),
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
            nad: swap_nad(self.cfg.nad),
            kind,
        });
        self.last = Some(if kind.is_request() {
            LastSent::SRequest(kind)
        } else {
            LastSent::SResponse
        });
    }
}
