//! What the two T=1 engines share: configuration, events, actions, deadlines, errors, and the
//! block link (one block buffer, assembly of incoming bytes into blocks, §11.4.3 and §11.5).

use core::fmt;

use super::block::{
    Block, BlockRepr, Error as BlockError, RError, SBlock, MAX_BLOCK_LEN, MAX_INF_LEN,
};
use super::edc::Edc;
use super::Seq;

/// A deadline the driver arms, symbolically, ISO/IEC 7816-3:2006 §11.2 and §11.4.3.
///
/// The driver turns it into time with [`crate::rate`]: BWT = 11 etu + 2^BWI × 960 × Fd clock
/// cycles (times `multiplier`), CWT = (11 + 2^CWI) etu, BGT = 22 etu. A deadline returned with
/// bytes to transmit starts when the last byte has been transmitted (BWT is measured from the
/// leading edge of the last character sent); one returned without bytes starts now.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum Deadline {
    /// Block waiting time, times `multiplier` (1, or the WTX value the card asked for,
    /// §11.6.2.2 Rule 3): the longest wait for the first character of the next block.
    Bwt {
        /// BWT multiplier: 1 normally, the S(WTX) INF value for the wait after a WTX.
        multiplier: u8,
    },
    /// Character waiting time: the longest gap between two characters of one block.
    Cwt,
    /// Block guard time: the engine has a complete block and waits BGT before answering, so
    /// that trailing characters (a block longer than its LEN) are seen first.
    Bgt,
}

/// Something that happened on the line or in time, fed to an engine's `handle`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum Event<'a> {
    /// Characters received, in order, in any chunking (one byte or many).
    Received(&'a [u8]),
    /// One character was received with a parity error (its value is unreliable). It counts
    /// as one character of the block being received (§11.6.3.1).
    ParityError,
    /// The deadline last armed has passed.
    DeadlinePassed,
}

/// What the driver must do after a call: transmit a block, arm a deadline, report a
/// completion. All three may be present.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
#[must_use = "the driver must transmit the block and arm the deadline"]
pub struct Action<'a, C> {
    /// One block to transmit, observing BGT; `None`: nothing to send.
    pub transmit: Option<&'a [u8]>,
    /// The deadline to arm (replacing any armed one), or `None`: disarm.
    pub deadline: Option<Deadline>,
    /// A completion for the application (response ready, command received, a failure, ...).
    pub completion: Option<C>,
}

/// T=1 parameters, from plain values (the caller reads them from the ATR and the PPS).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct Config {
    /// IFSC: the largest information field the card accepts, 1 to 254 (first TA for T=1 of
    /// the ATR, default 32; §11.4.2). Restored after a resynchronisation.
    pub ifsc: u8,
    /// IFSD: the largest information field the interface device accepts, 1 to 254. The
    /// initial value is 32 (§11.4.2); S(IFS request) changes it. Restored after a
    /// resynchronisation.
    pub ifsd: u8,
    /// Error detection code (first TC for T=1 of the ATR, §11.4.4).
    pub edc: Edc,
    /// NAD the interface device sends (DAD in b7..b5, SAD in b3..b1; 00 when addressing is not
    /// used, §11.3.2.1). The card answers with source and destination swapped.
    pub nad: u8,
    /// How many times error recovery sends a block again (a retransmission or an R-block)
    /// before escalating (§11.6.3.2 Rule 7.4): 2, as libccid does.
    pub retry_limit: u8,
    /// How many S(RESYNCH request)s the interface device sends before giving up
    /// (§11.6.3.2 Rule 6.4): 3.
    pub resynch_limit: u8,
}

impl Config {
    /// The defaults of ISO/IEC 7816-3:2006 §11.4: IFSC 32, IFSD 32, LRC, NAD 00, retry limit 2,
    /// resynch limit 3.
    pub const DEFAULT: Config = Config {
        ifsc: 32,
        ifsd: 32,
        edc: Edc::Lrc,
        nad: 0,
        retry_limit: 2,
        resynch_limit: 3,
    };

    /// The defaults with the IFSC and EDC the ATR announced.
    pub const fn new(ifsc: u8, edc: Edc) -> Config {
        Config {
            ifsc,
            edc,
            ..Config::DEFAULT
        }
    }

    /// IFSC and IFSD clamped to 1..=254 and the resynch limit to at least 1.
    pub(crate) const fn sanitised(self) -> Config {
        Config {
            ifsc: clamp_ifs(self.ifsc),
            ifsd: clamp_ifs(self.ifsd),
            resynch_limit: if self.resynch_limit == 0 {
                1
            } else {
                self.resynch_limit
            },
            ..self
        }
    }
}

impl Default for Config {
    fn default() -> Self {
        Config::DEFAULT
    }
}

const fn clamp_ifs(value: u8) -> u8 {
    match value {
        0 => 1,
        0xFF => 0xFE,
        v => v,
    }
}

/// A call the engine cannot accept in its present state; nothing was sent.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum CallError {
    /// An exchange is in progress (reader: a transaction or S-request; card: the reader has
    /// the turn).
    Busy,
    /// The length is larger than the lent buffer.
    TooLong,
    /// An IFS value of 0 or 255 (§11.4.2: 1 to 254).
    InvalidIfs,
    /// The reader gave up on the card (S(RESYNCH) unanswered): warm-reset the card and call
    /// `reset`.
    NeedsReset,
}

impl fmt::Display for CallError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            CallError::Busy => "T=1 engine busy",
            CallError::TooLong => "length exceeds the lent buffer",
            CallError::InvalidIfs => "IFS must be 1 to 254",
            CallError::NeedsReset => "T=1 link lost: reset the card, then the engine",
        })
    }
}

impl core::error::Error for CallError {}

/// Why a reader transaction failed. After each of these except
/// [`TransactionError::CardUnresponsive`] the engine is idle, in step with the card, and
/// ready for the next transaction.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum TransactionError {
    /// Error recovery failed (§11.6.3.2 Rule 7.4) and the link was resynchronised
    /// (Rule 6). The command may or may not have reached the card; it was not resent.
    Resynchronised,
    /// S(RESYNCH request) went unanswered `resynch_limit` times (Rule 6.4): the card must be
    /// warm-reset or deactivated, then the engine `reset`.
    CardUnresponsive,
    /// The response did not fit the lent buffer; `len` bytes were announced. The chain was
    /// received to its end (and discarded) so the link stays in step.
    ResponseTooLong {
        /// Bytes the card sent.
        len: usize,
    },
    /// The card aborted the chain with S(ABORT request) (Rule 9).
    Aborted,
}

impl fmt::Display for TransactionError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TransactionError::Resynchronised => {
                f.write_str("T=1 error recovery failed; link resynchronised (ISO 7816-3 §11.6.3.2)")
            }
            TransactionError::CardUnresponsive => {
                f.write_str("card does not answer S(RESYNCH request)")
            }
            TransactionError::ResponseTooLong { len } => {
                write!(f, "response of {len} bytes exceeds the buffer")
            }
            TransactionError::Aborted => f.write_str("card aborted the chain (S(ABORT))"),
        }
    }
}

impl core::error::Error for TransactionError {}

/// An I-block sent and not yet acknowledged: where its INF is in the APDU buffer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct SentI {
    /// Offset of the INF in the APDU buffer.
    pub off: usize,
    /// INF length.
    pub len: usize,
    /// Length of the whole APDU being chained.
    pub total: usize,
    /// N(S) of the block.
    pub ns: Seq,
    /// M bit of the block.
    pub more: bool,
}

/// The kind of the very last block sent: it decides the error-recovery rule (§11.6.3.2).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum LastSent {
    /// An I-block (Rule 7.1: answer an invalid block with an R-block).
    I,
    /// An R-block (Rule 7.2: resend it).
    R,
    /// An S(request) (Rule 7.3: resend it).
    SRequest(SBlock),
    /// An S(response) (Rule 7.3: answer an invalid block with an R-block).
    SResponse,
}

/// What a passed deadline or a complete block means, from the link's point of view.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Incoming {
    /// No character arrived before the deadline (BWT time-out with the interface device).
    Silence,
    /// A block arrived but is invalid (§11.6.3.1); the error code to put in an R-block.
    Invalid(RError),
    /// A valid block of this many bytes is in the link buffer.
    Block(usize),
}

/// Assembly state of incoming characters.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Rx {
    /// Waiting for the first character of a block.
    Idle,
    /// Some characters of a block; the total is known once LEN has arrived.
    Partial,
    /// All characters LEN announced; waiting BGT for trailing characters.
    Complete,
    /// Characters the block cannot contain (beyond LEN, LEN = FF, a parity error on LEN):
    /// discard until CWT of silence.
    Draining,
}

/// One block buffer shared by transmission and reception (half duplex), and the assembly of
/// received characters into a block, ISO/IEC 7816-3:2006 §11.4.3 and §11.5.
#[derive(Debug, Clone)]
pub(crate) struct Link {
    buf: [u8; MAX_BLOCK_LEN],
    edc: Edc,
    rx: Rx,
    rx_len: usize,
    rx_parity: bool,
    tx_len: usize,
    fresh: bool,
}

impl Link {
    pub const fn new(edc: Edc) -> Link {
        Link {
            buf: [0; MAX_BLOCK_LEN],
            edc,
            rx: Rx::Idle,
            rx_len: 0,
            rx_parity: false,
            tx_len: 0,
            fresh: false,
        }
    }

    /// Forgets any partly received block.
    pub fn reset_rx(&mut self) {
        self.rx = Rx::Idle;
        self.rx_len = 0;
        self.rx_parity = false;
    }

    /// Feeds received characters; returns the deadline the assembly needs (CWT between
    /// characters, BGT after the last one).
    pub fn receive(&mut self, bytes: &[u8]) -> Deadline {
        let mut rest = bytes;
        while let Some((&first, tail)) = rest.split_first() {
            rest = match self.missing() {
                // Inside a block whose length is known: take the run of characters at once.
                Some(missing) if missing > 1 => {
                    let (run, tail) = rest.split_at(missing.min(rest.len()));
                    self.push_run(run);
                    tail
                }
                _ => {
                    self.push(Some(first));
                    tail
                }
            };
        }
        self.rx_deadline()
    }

    /// Characters still missing from a block whose LEN is known.
    fn missing(&self) -> Option<usize> {
        if self.rx != Rx::Partial || self.rx_len < 3 {
            return None;
        }
        let len = self.buf.get(2).copied()?;
        super::block::block_len(len, self.edc).checked_sub(self.rx_len)
    }

    /// Stores characters of the current block that are all within its LEN.
    fn push_run(&mut self, run: &[u8]) {
        let end = self.rx_len.saturating_add(run.len());
        match self.buf.get_mut(self.rx_len..end) {
            Some(dst) => {
                dst.copy_from_slice(run);
                self.rx_len = end;
                if self.missing() == Some(0) {
                    self.rx = Rx::Complete;
                }
            }
            None => self.rx = Rx::Draining,
        }
    }

    /// One character with a parity error.
    pub fn parity_error(&mut self) -> Deadline {
        self.push(None);
        self.rx_deadline()
    }

    fn rx_deadline(&self) -> Deadline {
        match self.rx {
            Rx::Complete => Deadline::Bgt,
            _ => Deadline::Cwt,
        }
    }

    fn push(&mut self, byte: Option<u8>) {
        // A character ends any pending transmission: the buffer now receives.
        self.tx_len = 0;
        self.fresh = false;
        match self.rx {
            Rx::Draining => return,
            Rx::Complete => {
                // More characters than LEN announced (§11.6.3.1, loss of synchronisation).
                self.rx = Rx::Draining;
                return;
            }
            Rx::Idle => {
                self.rx = Rx::Partial;
                self.rx_len = 0;
                self.rx_parity = false;
            }
            Rx::Partial => {}
        }
        let index = self.rx_len;
        match (self.buf.get_mut(index), byte) {
            (Some(slot), Some(b)) => *slot = b,
            (Some(slot), None) => {
                *slot = 0;
                self.rx_parity = true;
                if index == 2 {
                    // LEN itself is unreliable: the end of the block is unknown.
                    self.rx = Rx::Draining;
                    return;
                }
            }
            (None, _) => {
                self.rx = Rx::Draining;
                return;
            }
        }
        self.rx_len = index + 1;
        if self.rx_len >= 3 {
            let len = self.buf.get(2).copied().unwrap_or(0);
            if usize::from(len) > MAX_INF_LEN {
                // LEN = FF: reserved, the block size is unknown (§11.3.2.3).
                self.rx = Rx::Draining;
            } else if self.rx_len == super::block::block_len(len, self.edc) {
                self.rx = Rx::Complete;
            }
        }
    }

    /// The armed deadline passed: decide what was (or was not) received, §11.6.3.1.
    pub fn expire(&mut self) -> Incoming {
        let state = self.rx;
        let len = self.rx_len;
        let parity = self.rx_parity;
        self.reset_rx();
        let parity_code = if parity {
            RError::EdcOrParity
        } else {
            RError::Other
        };
        match state {
            Rx::Idle => Incoming::Silence,
            // CWT passed before LEN was satisfied, or after characters beyond it.
            Rx::Partial | Rx::Draining => Incoming::Invalid(parity_code),
            Rx::Complete => {
                if parity {
                    return Incoming::Invalid(RError::EdcOrParity);
                }
                let bytes = self.buf.get(..len).unwrap_or(&[]);
                match Block::new_checked(bytes, self.edc) {
                    Ok(_) => Incoming::Block(len),
                    Err(BlockError::EdcMismatch) => Incoming::Invalid(RError::EdcOrParity),
                    Err(_) => Incoming::Invalid(RError::Other),
                }
            }
        }
    }

    /// The block of `len` bytes last reported by [`Link::expire`], parsed.
    /// (Framing and EDC were checked by `expire`; this only classifies the PCB.)
    pub fn parsed(&self, len: usize) -> BlockRepr<'_> {
        let nad = self.buf.first().copied().unwrap_or(0);
        let pcb = self.buf.get(1).copied().unwrap_or(0);
        BlockRepr::classify(nad, pcb, self.inf(len))
    }

    /// The information field of the block last reported by [`Link::expire`].
    pub fn inf(&self, len: usize) -> &[u8] {
        let end = len.saturating_sub(self.edc.len());
        self.buf.get(3..end).unwrap_or(&[])
    }

    /// Emits a block for transmission; any reception in progress is abandoned.
    pub fn emit(&mut self, repr: &BlockRepr<'_>) {
        self.reset_rx();
        // The engines only build blocks that fit (INF <= 254, valid IFS); on an error nothing
        // is sent and the peer's time-out drives recovery.
        self.tx_len = repr.emit_slice(&mut self.buf, self.edc).unwrap_or(0);
        self.fresh = self.tx_len > 0;
    }

    /// Emits an I-block whose INF is copied from `inf`.
    pub fn emit_i(&mut self, nad: u8, ns: Seq, more: bool, inf: &[u8]) {
        self.emit(&BlockRepr::I { nad, ns, more, inf });
    }

    /// The block emitted since the last call, once.
    pub fn take_transmit(&mut self) -> Option<&[u8]> {
        if core::mem::take(&mut self.fresh) {
            self.pending_transmit()
        } else {
            None
        }
    }

    /// The block last emitted, until reception starts.
    pub fn pending_transmit(&self) -> Option<&[u8]> {
        match self.buf.get(..self.tx_len) {
            Some(bytes) if !bytes.is_empty() => Some(bytes),
            _ => None,
        }
    }
}

/// The NAD the other side uses: source and destination swapped (§11.3.2.1).
pub(crate) const fn swap_nad(nad: u8) -> u8 {
    ((nad & 0x07) << 4) | ((nad >> 4) & 0x07)
}

/// The INF bytes `off..off + len` of `buf`, or an empty slice.
pub(crate) fn chunk(buf: &[u8], off: usize, len: usize) -> &[u8] {
    buf.get(off..off.saturating_add(len)).unwrap_or(&[])
}

/// Stores `inf` at `*len` in `buf`; on overflow, records it and keeps counting.
pub(crate) fn append(buf: &mut [u8], len: &mut usize, overflow: &mut bool, inf: &[u8]) {
    let end = len.saturating_add(inf.len());
    match buf.get_mut(*len..end) {
        Some(dst) if !*overflow => dst.copy_from_slice(inf),
        _ => *overflow = true,
    }
    *len = end;
}

/// A received block, reduced to what the engines decide on (the INF stays in the link).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Rcv {
    I { ns: Seq, more: bool, inf_len: usize },
    R { nr: Seq },
    S(SBlock),
    Unknown,
}

impl Rcv {
    /// The NAD (b4 and b8 masked: they are not used, §11.3.2.1) and the summary of a block.
    pub fn of(repr: &BlockRepr<'_>) -> (u8, Rcv) {
        let rcv = match *repr {
            BlockRepr::I { ns, more, inf, .. } => Rcv::I {
                ns,
                more,
                inf_len: inf.len(),
            },
            BlockRepr::R { nr, .. } => Rcv::R { nr },
            BlockRepr::S { kind, .. } => Rcv::S(kind),
            BlockRepr::Unknown { .. } => Rcv::Unknown,
        };
        (repr.nad() & 0x77, rcv)
    }
}
