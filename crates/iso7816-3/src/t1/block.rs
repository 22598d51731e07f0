//! T=1 blocks on the wire, ISO/IEC 7816-3:2006 §11.3: a zero-copy [`Block`] view and a
//! validated [`BlockRepr`].
//!
//! ```text
//! +-----+-----+-----+----------------------+-----------------+
//! | NAD | PCB | LEN | INF (0..=254 bytes)  | EDC (LRC or CRC)|
//! +-----+-----+-----+----------------------+-----------------+
//!    prologue (§11.3.2)   information (§11.3.3)  epilogue (§11.3.4, §11.4.4)
//! ```
//!
//! PCB coding (§11.3.2.2, Tables 14 to 16):
//!
//! | block | b8 b7 | b6 | b5 | b4..b1 |
//! |---|---|---|---|---|
//! | I | 0 N(S) | M (more data) | 0 | 0000 (RFU) |
//! | R | 1 0 | 0 | N(R) | 0000 error-free, 0001 EDC or parity error, 0010 other error |
//! | S | 1 1 | 0 request / 1 response | type: 00000 RESYNCH, 00001 IFS, 00010 ABORT, 00011 WTX ||
//!
//! **Unknown patterns.** [`Block::new_checked`] rejects what breaks the framing (too short,
//! LEN = FF, length disagreeing with LEN, wrong EDC) with a typed [`Error`]. A well-framed block
//! whose PCB is not one of the patterns above (RFU bits set, an RFU R-block code or S-block
//! type), or whose INF does not fit its type (an R-block with INF, S(IFS) without its byte,
//! IFS 00 or FF), parses as [`BlockRepr::Unknown`], which keeps NAD, PCB and INF so that it
//! re-emits byte for byte. Nothing is silently mapped onto a known block: the engines treat
//! `Unknown` as an invalid block (a protocol error, §11.6.3.1) and a log or fuzzer still sees
//! the exact bytes. This is why there is no "invalid PCB" error: whether such a block is an
//! error is the protocol layer's decision, not the wire layer's.

use core::fmt;

use super::edc::Edc;
use super::Seq;

/// The largest information field, ISO/IEC 7816-3:2006 §11.3.3 (LEN 00 to FE).
pub const MAX_INF_LEN: usize = 254;
/// The largest block: prologue (3) + INF (254) + CRC (2).
pub const MAX_BLOCK_LEN: usize = field::PROLOGUE_LEN + MAX_INF_LEN + 2;
/// LEN = FF is reserved for future use, ISO/IEC 7816-3:2006 §11.3.2.3.
pub const LEN_RESERVED: u8 = 0xFF;

/// Byte positions of the prologue, ISO/IEC 7816-3:2006 §11.3.2.
mod field {
    /// Node address byte.
    pub const NAD: usize = 0;
    /// Protocol control byte.
    pub const PCB: usize = 1;
    /// Length of the information field.
    pub const LEN: usize = 2;
    /// First byte of the information field.
    pub const INF: usize = 3;
    /// Length of the prologue field.
    pub const PROLOGUE_LEN: usize = 3;
}

/// PCB bits, ISO/IEC 7816-3:2006 §11.3.2.2.
mod pcb {
    /// b8: 0 for an I-block.
    pub const NOT_I: u8 = 0x80;
    /// b8 b7 of an R-block.
    pub const R: u8 = 0x80;
    /// b8 b7 of an S-block.
    pub const S: u8 = 0xC0;
    /// b8 b7 mask.
    pub const TYPE_MASK: u8 = 0xC0;
    /// I-block b7: N(S).
    pub const I_NS: u8 = 0x40;
    /// I-block b6: more data (M).
    pub const I_MORE: u8 = 0x20;
    /// I-block b5..b1: reserved.
    pub const I_RFU: u8 = 0x1F;
    /// R-block b6: must be 0.
    pub const R_RFU: u8 = 0x20;
    /// R-block b5: N(R).
    pub const R_NR: u8 = 0x10;
    /// R-block b4..b1: error code.
    pub const R_CODE: u8 = 0x0F;
    /// S-block b6: response.
    pub const S_RESPONSE: u8 = 0x20;
    /// S-block b5..b1: type.
    pub const S_TYPE: u8 = 0x1F;
    pub const S_RESYNCH: u8 = 0x00;
    pub const S_IFS: u8 = 0x01;
    pub const S_ABORT: u8 = 0x02;
    pub const S_WTX: u8 = 0x03;
}

/// Why bytes are not a well-framed block, or why a [`BlockRepr`] cannot be emitted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum Error {
    /// Fewer bytes than the prologue, LEN and the epilogue need (§11.3.1).
    Truncated,
    /// LEN is FF, reserved for future use (§11.3.2.3).
    LenReserved,
    /// More bytes than the prologue, LEN and the epilogue account for: the actual block size
    /// is inconsistent with LEN, a loss of synchronisation (§11.6.3.1).
    LengthMismatch,
    /// The epilogue is not the LRC or CRC of the block (§11.4.4).
    EdcMismatch,
    /// (emit) The information field is longer than 254 bytes (§11.3.3).
    InfTooLong,
    /// (emit) An S(IFS) value of 00 or FF; IFSC and IFSD are 01 to FE (§11.4.2).
    InvalidIfs,
    /// (emit) The destination buffer is shorter than [`BlockRepr::buffer_len`].
    BufferTooShort,
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Error::Truncated => "T=1 block truncated",
            Error::LenReserved => "T=1 block LEN is FF (reserved, ISO 7816-3 §11.3.2.3)",
            Error::LengthMismatch => "T=1 block longer than its LEN says (ISO 7816-3 §11.6.3.1)",
            Error::EdcMismatch => "T=1 block EDC mismatch (ISO 7816-3 §11.4.4)",
            Error::InfTooLong => "T=1 information field longer than 254 bytes",
            Error::InvalidIfs => "T=1 IFS value must be 01 to FE (ISO 7816-3 §11.4.2)",
            Error::BufferTooShort => "buffer too short for the T=1 block",
        })
    }
}

impl core::error::Error for Error {}

/// A zero-copy view of one T=1 block over a byte buffer, ISO/IEC 7816-3:2006 §11.3.
///
/// The EDC kind is not in the block itself (the ATR selects it), so the view carries it.
/// Accessors never panic: on a buffer too short for a field they return 0 or an empty slice;
/// use [`Block::new_checked`] to know the framing is right.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Block<T: AsRef<[u8]>> {
    buffer: T,
    edc: Edc,
}

impl<T: AsRef<[u8]>> Block<T> {
    /// Wraps `buffer` without checking anything.
    pub const fn new_unchecked(buffer: T, edc: Edc) -> Self {
        Block { buffer, edc }
    }

    /// Wraps `buffer` after [`Block::check_len`] and [`Block::check_edc`].
    ///
    /// The buffer must hold exactly one block: trailing bytes are a [`Error::LengthMismatch`]
    /// (on the line they are a loss of synchronisation, §11.6.3.1).
    pub fn new_checked(buffer: T, edc: Edc) -> Result<Self, Error> {
        let block = Self::new_unchecked(buffer, edc);
        block.check_len()?;
        block.check_edc()?;
        Ok(block)
    }

    /// Checks the framing: the prologue is there, LEN is not FF (§11.3.2.3) and the buffer
    /// length is exactly prologue + LEN + epilogue (§11.3.1).
    pub fn check_len(&self) -> Result<(), Error> {
        let bytes = self.buffer.as_ref();
        let len = *bytes.get(field::LEN).ok_or(Error::Truncated)?;
        if len == LEN_RESERVED {
            return Err(Error::LenReserved);
        }
        let total = block_len(len, self.edc);
        match bytes.len() {
            n if n < total => Err(Error::Truncated),
            n if n > total => Err(Error::LengthMismatch),
            _ => Ok(()),
        }
    }

    /// Checks the epilogue against the prologue and information field (§11.4.4). Call after
    /// [`Block::check_len`].
    pub fn check_edc(&self) -> Result<(), Error> {
        let bytes = self.buffer.as_ref();
        let (data, epilogue) = bytes
            .split_at_checked(self.covered_len())
            .ok_or(Error::Truncated)?;
        if self.edc.verify(data, epilogue) {
            Ok(())
        } else {
            Err(Error::EdcMismatch)
        }
    }

    /// The underlying buffer.
    pub fn into_inner(self) -> T {
        self.buffer
    }

    /// The EDC kind of this view.
    pub const fn edc(&self) -> Edc {
        self.edc
    }

    /// The node address byte (§11.3.2.1): DAD in b7..b5, SAD in b3..b1.
    pub fn nad(&self) -> u8 {
        self.byte(field::NAD)
    }

    /// The protocol control byte (§11.3.2.2).
    pub fn pcb(&self) -> u8 {
        self.byte(field::PCB)
    }

    /// The LEN byte: the length of the information field (§11.3.2.3).
    pub fn inf_len(&self) -> u8 {
        self.byte(field::LEN)
    }

    /// The information field (§11.3.3); empty when the buffer is too short for LEN.
    pub fn inf(&self) -> &[u8] {
        let end = field::INF.saturating_add(usize::from(self.inf_len()));
        self.buffer.as_ref().get(field::INF..end).unwrap_or(&[])
    }

    /// The epilogue field (§11.3.4); empty when the buffer is too short.
    pub fn epilogue(&self) -> &[u8] {
        let start = self.covered_len();
        let end = start.saturating_add(self.edc.len());
        self.buffer.as_ref().get(start..end).unwrap_or(&[])
    }

    /// The length of the whole block according to LEN.
    pub fn block_len(&self) -> usize {
        block_len(self.inf_len(), self.edc)
    }

    fn covered_len(&self) -> usize {
        field::PROLOGUE_LEN.saturating_add(usize::from(self.inf_len()))
    }

    fn byte(&self, index: usize) -> u8 {
        self.buffer.as_ref().get(index).copied().unwrap_or(0)
    }
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> Block<T> {
    /// Sets the node address byte. Does nothing if the buffer is too short.
    pub fn set_nad(&mut self, value: u8) {
        self.set_byte(field::NAD, value);
    }

    /// Sets the protocol control byte. Does nothing if the buffer is too short.
    pub fn set_pcb(&mut self, value: u8) {
        self.set_byte(field::PCB, value);
    }

    /// Sets LEN. Does nothing if the buffer is too short.
    pub fn set_inf_len(&mut self, value: u8) {
        self.set_byte(field::LEN, value);
    }

    /// The information field, writable; empty when the buffer is too short for LEN.
    pub fn inf_mut(&mut self) -> &mut [u8] {
        let end = field::INF.saturating_add(usize::from(self.inf_len()));
        self.buffer
            .as_mut()
            .get_mut(field::INF..end)
            .unwrap_or(&mut [])
    }

    /// Computes the EDC over prologue and INF and writes the epilogue (§11.4.4).
    pub fn fill_edc(&mut self) -> Result<(), Error> {
        let covered = self.covered_len();
        let edc = self.edc;
        let bytes = self.buffer.as_mut();
        let (data, rest) = bytes
            .split_at_mut_checked(covered)
            .ok_or(Error::Truncated)?;
        let code = edc.compute(data);
        let epilogue = rest.get_mut(..edc.len()).ok_or(Error::Truncated)?;
        let code = code.get(..edc.len()).ok_or(Error::Truncated)?;
        epilogue.copy_from_slice(code);
        Ok(())
    }

    fn set_byte(&mut self, index: usize, value: u8) {
        if let Some(byte) = self.buffer.as_mut().get_mut(index) {
            *byte = value;
        }
    }
}

/// The length of a block whose LEN is `len`, ISO/IEC 7816-3:2006 §11.3.1.
pub const fn block_len(len: u8, edc: Edc) -> usize {
    field::PROLOGUE_LEN + len as usize + edc.len()
}

/// The error indication of an R-block, ISO/IEC 7816-3:2006 §11.3.2.2 (b4..b1).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum RError {
    /// 0000: error-free acknowledgement.
    NoError,
    /// 0001: an EDC or parity error was detected.
    EdcOrParity,
    /// 0010: other errors (bad length, protocol error, time-out).
    Other,
}

impl RError {
    const fn code(self) -> u8 {
        match self {
            RError::NoError => 0x0,
            RError::EdcOrParity => 0x1,
            RError::Other => 0x2,
        }
    }
}

/// An S-block: the control function and, for IFS and WTX, its INF byte,
/// ISO/IEC 7816-3:2006 §11.3.2.2 and §11.6.2.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum SBlock {
    /// S(RESYNCH request), sent by the interface device only (§11.6.3.2, Rule 6).
    ResynchRequest,
    /// S(RESYNCH response).
    ResynchResponse,
    /// S(IFS request) announcing a new IFSD (interface device) or IFSC (card), 01 to FE
    /// (§11.4.2, Rule 4).
    IfsRequest(u8),
    /// S(IFS response) echoing the value.
    IfsResponse(u8),
    /// S(ABORT request): abort the chain in progress (Rule 9).
    AbortRequest,
    /// S(ABORT response).
    AbortResponse,
    /// S(WTX request) from the card: BWT multiplier for the next wait (Rule 3).
    WtxRequest(u8),
    /// S(WTX response) echoing the multiplier.
    WtxResponse(u8),
}

impl SBlock {
    /// True for the four request forms.
    pub const fn is_request(self) -> bool {
        matches!(
            self,
            SBlock::ResynchRequest
                | SBlock::IfsRequest(_)
                | SBlock::AbortRequest
                | SBlock::WtxRequest(_)
        )
    }

    /// The response that acknowledges this request (Rules 3, 4, 6, 9: same INF), or `None` for
    /// a response.
    pub const fn response(self) -> Option<SBlock> {
        match self {
            SBlock::ResynchRequest => Some(SBlock::ResynchResponse),
            SBlock::IfsRequest(v) => Some(SBlock::IfsResponse(v)),
            SBlock::AbortRequest => Some(SBlock::AbortResponse),
            SBlock::WtxRequest(v) => Some(SBlock::WtxResponse(v)),
            _ => None,
        }
    }

    const fn pcb(self) -> u8 {
        let (response, kind) = match self {
            SBlock::ResynchRequest => (0, pcb::S_RESYNCH),
            SBlock::ResynchResponse => (pcb::S_RESPONSE, pcb::S_RESYNCH),
            SBlock::IfsRequest(_) => (0, pcb::S_IFS),
            SBlock::IfsResponse(_) => (pcb::S_RESPONSE, pcb::S_IFS),
            SBlock::AbortRequest => (0, pcb::S_ABORT),
            SBlock::AbortResponse => (pcb::S_RESPONSE, pcb::S_ABORT),
            SBlock::WtxRequest(_) => (0, pcb::S_WTX),
            SBlock::WtxResponse(_) => (pcb::S_RESPONSE, pcb::S_WTX),
        };
        pcb::S | response | kind
    }

    const fn value(self) -> Option<u8> {
        match self {
            SBlock::IfsRequest(v)
            | SBlock::IfsResponse(v)
            | SBlock::WtxRequest(v)
            | SBlock::WtxResponse(v) => Some(v),
            _ => None,
        }
    }

    /// The S-block for a PCB and INF, or `None` if they are not a defined combination.
    fn from_parts(pcb_byte: u8, inf: &[u8]) -> Option<SBlock> {
        let response = pcb_byte & pcb::S_RESPONSE != 0;
        let value = match inf {
            [] => None,
            [v] => Some(*v),
            _ => return None,
        };
        let block = match (pcb_byte & pcb::S_TYPE, value) {
            (pcb::S_RESYNCH, None) => {
                if response {
                    SBlock::ResynchResponse
                } else {
                    SBlock::ResynchRequest
                }
            }
            (pcb::S_ABORT, None) => {
                if response {
                    SBlock::AbortResponse
                } else {
                    SBlock::AbortRequest
                }
            }
            // IFS 00 and FF are not valid sizes (§11.4.2): keep them as Unknown.
            (pcb::S_IFS, Some(v)) if v != 0 && v != 0xFF => {
                if response {
                    SBlock::IfsResponse(v)
                } else {
                    SBlock::IfsRequest(v)
                }
            }
            (pcb::S_WTX, Some(v)) => {
                if response {
                    SBlock::WtxResponse(v)
                } else {
                    SBlock::WtxRequest(v)
                }
            }
            _ => return None,
        };
        Some(block)
    }
}

/// A validated T=1 block, ISO/IEC 7816-3:2006 §11.3.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum BlockRepr<'a> {
    /// Information block (§11.3.2.2): application data, possibly chained.
    I {
        /// Node address byte.
        nad: u8,
        /// Send-sequence number N(S).
        ns: Seq,
        /// More-data bit M: another I-block of the same chain follows (§11.6.2.3).
        more: bool,
        /// The information field, 0 to 254 bytes.
        inf: &'a [u8],
    },
    /// Receive-ready block (§11.3.2.2): positive or negative acknowledgement, no INF.
    R {
        /// Node address byte.
        nad: u8,
        /// N(R): the N(S) of the I-block expected next.
        nr: Seq,
        /// Error indication.
        error: RError,
    },
    /// Supervisory block (§11.3.2.2).
    S {
        /// Node address byte.
        nad: u8,
        /// Control function and INF byte.
        kind: SBlock,
    },
    /// A well-framed block that matches none of the defined patterns, kept byte for byte
    /// (see the module documentation).
    Unknown {
        /// Node address byte.
        nad: u8,
        /// The protocol control byte as received.
        pcb: u8,
        /// The information field as received.
        inf: &'a [u8],
    },
}

impl<'a> BlockRepr<'a> {
    /// Parses a block view: checks the framing ([`Block::check_len`], [`Block::check_edc`])
    /// and classifies the PCB (§11.3.2.2).
    pub fn parse<T: AsRef<[u8]> + ?Sized>(block: &Block<&'a T>) -> Result<BlockRepr<'a>, Error> {
        block.check_len()?;
        block.check_edc()?;
        let bytes: &'a [u8] = block.buffer.as_ref();
        let nad = bytes.get(field::NAD).copied().ok_or(Error::Truncated)?;
        let pcb_byte = bytes.get(field::PCB).copied().ok_or(Error::Truncated)?;
        let len = bytes.get(field::LEN).copied().ok_or(Error::Truncated)?;
        let inf = bytes
            .get(field::INF..field::INF.saturating_add(usize::from(len)))
            .ok_or(Error::Truncated)?;
        Ok(Self::classify(nad, pcb_byte, inf))
    }

    /// Classifies a prologue and INF (§11.3.2.2). Never fails: undefined patterns are
    /// [`BlockRepr::Unknown`].
    pub fn classify(nad: u8, pcb_byte: u8, inf: &'a [u8]) -> BlockRepr<'a> {
        let unknown = BlockRepr::Unknown {
            nad,
            pcb: pcb_byte,
            inf,
        };
        if pcb_byte & pcb::NOT_I == 0 {
            if pcb_byte & pcb::I_RFU != 0 {
                return unknown;
            }
            return BlockRepr::I {
                nad,
                ns: Seq::from_bit(pcb_byte & pcb::I_NS != 0),
                more: pcb_byte & pcb::I_MORE != 0,
                inf,
            };
        }
        match pcb_byte & pcb::TYPE_MASK {
            pcb::R => {
                let error = match pcb_byte & pcb::R_CODE {
                    0x0 => RError::NoError,
                    0x1 => RError::EdcOrParity,
                    0x2 => RError::Other,
                    _ => return unknown,
                };
                if pcb_byte & pcb::R_RFU != 0 || !inf.is_empty() {
                    return unknown;
                }
                BlockRepr::R {
                    nad,
                    nr: Seq::from_bit(pcb_byte & pcb::R_NR != 0),
                    error,
                }
            }
            _ => match SBlock::from_parts(pcb_byte, inf) {
                Some(kind) => BlockRepr::S { nad, kind },
                None => unknown,
            },
        }
    }

    /// The node address byte.
    pub const fn nad(&self) -> u8 {
        match *self {
            BlockRepr::I { nad, .. }
            | BlockRepr::R { nad, .. }
            | BlockRepr::S { nad, .. }
            | BlockRepr::Unknown { nad, .. } => nad,
        }
    }

    /// The PCB this repr emits.
    pub const fn pcb(&self) -> u8 {
        match *self {
            BlockRepr::I { ns, more, .. } => {
                (if ns.bit() { pcb::I_NS } else { 0 }) | (if more { pcb::I_MORE } else { 0 })
            }
            BlockRepr::R { nr, error, .. } => {
                pcb::R | (if nr.bit() { pcb::R_NR } else { 0 }) | error.code()
            }
            BlockRepr::S { kind, .. } => kind.pcb(),
            BlockRepr::Unknown { pcb, .. } => pcb,
        }
    }

    /// The length of the information field this repr emits.
    pub const fn inf_len(&self) -> usize {
        match *self {
            BlockRepr::I { inf, .. } | BlockRepr::Unknown { inf, .. } => inf.len(),
            BlockRepr::R { .. } => 0,
            BlockRepr::S { kind, .. } => match kind.value() {
                Some(_) => 1,
                None => 0,
            },
        }
    }

    /// The number of bytes [`BlockRepr::emit`] writes with this EDC kind.
    pub const fn buffer_len(&self, edc: Edc) -> usize {
        field::PROLOGUE_LEN + self.inf_len() + edc.len()
    }

    /// Writes the block into `block` (whose buffer must hold at least
    /// [`BlockRepr::buffer_len`] bytes), EDC included.
    pub fn emit<T: AsRef<[u8]> + AsMut<[u8]>>(&self, block: &mut Block<T>) -> Result<(), Error> {
        self.emit_slice(block.buffer.as_mut(), block.edc)
            .map(|_| ())
    }

    /// Writes the block at the start of `buffer` and returns its length.
    pub fn emit_slice(&self, buffer: &mut [u8], edc: Edc) -> Result<usize, Error> {
        let inf_len = self.inf_len();
        if inf_len > MAX_INF_LEN {
            return Err(Error::InfTooLong);
        }
        if let BlockRepr::S {
            kind: SBlock::IfsRequest(v) | SBlock::IfsResponse(v),
            ..
        } = *self
        {
            if v == 0 || v == 0xFF {
                return Err(Error::InvalidIfs);
            }
        }
        let total = self.buffer_len(edc);
        let out = buffer.get_mut(..total).ok_or(Error::BufferTooShort)?;
        let (prologue, rest) = out
            .split_at_mut_checked(field::PROLOGUE_LEN)
            .ok_or(Error::BufferTooShort)?;
        let (inf_out, _) = rest
            .split_at_mut_checked(inf_len)
            .ok_or(Error::BufferTooShort)?;
        // inf_len <= 254 was checked above, so the cast is lossless.
        prologue.copy_from_slice(&[self.nad(), self.pcb(), inf_len as u8]);
        match *self {
            BlockRepr::I { inf, .. } | BlockRepr::Unknown { inf, .. } => {
                inf_out.copy_from_slice(inf)
            }
            BlockRepr::S { kind, .. } => {
                if let (Some(v), Some(slot)) = (kind.value(), inf_out.first_mut()) {
                    *slot = v;
                }
            }
            BlockRepr::R { .. } => {}
        }
        let mut view = Block::new_unchecked(out, edc);
        view.fill_edc()?;
        Ok(total)
    }
}

impl fmt::Display for BlockRepr<'_> {
    /// Annex A notation: `I(0,1)`, `R(1)`, `S(WTX request 2)`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            BlockRepr::I { ns, more, inf, .. } => {
                write!(f, "I({ns},{}) [{} bytes]", u8::from(more), inf.len())
            }
            BlockRepr::R { nr, error, .. } => match error {
                RError::NoError => write!(f, "R({nr})"),
                RError::EdcOrParity => write!(f, "R({nr}) EDC/parity error"),
                RError::Other => write!(f, "R({nr}) other error"),
            },
            BlockRepr::S { kind, .. } => match kind {
                SBlock::ResynchRequest => f.write_str("S(RESYNCH request)"),
                SBlock::ResynchResponse => f.write_str("S(RESYNCH response)"),
                SBlock::IfsRequest(v) => write!(f, "S(IFS request {v})"),
                SBlock::IfsResponse(v) => write!(f, "S(IFS response {v})"),
                SBlock::AbortRequest => f.write_str("S(ABORT request)"),
                SBlock::AbortResponse => f.write_str("S(ABORT response)"),
                SBlock::WtxRequest(v) => write!(f, "S(WTX request {v})"),
                SBlock::WtxResponse(v) => write!(f, "S(WTX response {v})"),
            },
            BlockRepr::Unknown { pcb, inf, .. } => {
                write!(f, "unknown PCB {pcb:#04x} [{} bytes]", inf.len())
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    // I(0,0) carrying SELECT with an empty AID: NAD 00, PCB 00, LEN 05, INF 00 A4 04 00 00, LRC A5.
    static SELECT_I00: [u8; 9] = [
        0x00, // NAD
        0x00, // PCB: I-block, N(S) = 0, M = 0
        0x05, // LEN
        0x00, 0xA4, 0x04, 0x00, 0x00, // INF: SELECT by DF name, Le = 00
        0xA5, // LRC
    ];
    static SELECT_INF: [u8; 5] = [0x00, 0xA4, 0x04, 0x00, 0x00];

    // S(IFS request 254) from the interface device (the bridge after PPS).
    static IFS_REQ_FE: [u8; 5] = [
        0x00, // NAD
        0xC1, // PCB: S-block, request, IFS
        0x01, // LEN
        0xFE, // INF: IFSD = 254
        0x3E, // LRC
    ];

    // R(1) with an EDC error, CRC epilogue.
    static R1_EDC_CRC: [u8; 5] = [
        0x00, // NAD
        0x91, // PCB: R-block, N(R) = 1, EDC/parity error
        0x00, // LEN
        0x49, 0xC6, // CRC, low-order byte first
    ];

    #[test]
    fn deconstruct() {
        let block = Block::new_checked(&SELECT_I00[..], Edc::Lrc).unwrap();
        assert_eq!(block.nad(), 0x00);
        assert_eq!(block.pcb(), 0x00);
        assert_eq!(block.inf_len(), 5);
        assert_eq!(block.inf(), &SELECT_INF);
        assert_eq!(block.epilogue(), &[0xA5]);
        assert_eq!(block.block_len(), 9);

        let block = Block::new_checked(&IFS_REQ_FE[..], Edc::Lrc).unwrap();
        assert_eq!(block.pcb(), 0xC1);
        assert_eq!(block.inf(), &[0xFE]);
    }

    #[test]
    fn construct() {
        let mut bytes = [0xEE; 9];
        let mut block = Block::new_unchecked(&mut bytes[..], Edc::Lrc);
        block.set_nad(0x00);
        block.set_pcb(0x00);
        block.set_inf_len(5);
        block.inf_mut().copy_from_slice(&SELECT_INF);
        block.fill_edc().unwrap();
        assert_eq!(bytes, SELECT_I00);
    }

    #[test]
    fn parse() {
        let block = Block::new_checked(&SELECT_I00[..], Edc::Lrc).unwrap();
        assert_eq!(
            BlockRepr::parse(&block),
            Ok(BlockRepr::I {
                nad: 0,
                ns: Seq::Zero,
                more: false,
                inf: &SELECT_INF
            })
        );
        let block = Block::new_checked(&IFS_REQ_FE[..], Edc::Lrc).unwrap();
        assert_eq!(
            BlockRepr::parse(&block),
            Ok(BlockRepr::S {
                nad: 0,
                kind: SBlock::IfsRequest(0xFE)
            })
        );
        let block = Block::new_checked(&R1_EDC_CRC[..], Edc::Crc).unwrap();
        assert_eq!(
            BlockRepr::parse(&block),
            Ok(BlockRepr::R {
                nad: 0,
                nr: Seq::One,
                error: RError::EdcOrParity
            })
        );
    }

    #[test]
    fn emit() {
        let mut buf = [0u8; MAX_BLOCK_LEN];
        let repr = BlockRepr::I {
            nad: 0,
            ns: Seq::Zero,
            more: false,
            inf: &SELECT_INF,
        };
        assert_eq!(repr.buffer_len(Edc::Lrc), 9);
        let n = repr.emit_slice(&mut buf, Edc::Lrc).unwrap();
        assert_eq!(&buf[..n], &SELECT_I00);

        let mut bytes = [0u8; 5];
        let mut block = Block::new_unchecked(&mut bytes[..], Edc::Lrc);
        BlockRepr::S {
            nad: 0,
            kind: SBlock::IfsRequest(0xFE),
        }
        .emit(&mut block)
        .unwrap();
        assert_eq!(bytes, IFS_REQ_FE);

        let repr = BlockRepr::R {
            nad: 0,
            nr: Seq::One,
            error: RError::EdcOrParity,
        };
        let n = repr.emit_slice(&mut buf, Edc::Crc).unwrap();
        assert_eq!(&buf[..n], &R1_EDC_CRC);
    }

    #[test]
    fn framing_errors() {
        assert_eq!(
            Block::new_checked(&[0x00, 0x00][..], Edc::Lrc),
            Err(Error::Truncated)
        );
        assert_eq!(
            Block::new_checked(&SELECT_I00[..8], Edc::Lrc),
            Err(Error::Truncated)
        );
        assert_eq!(
            Block::new_checked(&[0x00, 0x00, 0xFF, 0xFF][..], Edc::Lrc),
            Err(Error::LenReserved)
        );
        let mut long = [0u8; 10];
        long[..9].copy_from_slice(&SELECT_I00);
        assert_eq!(
            Block::new_checked(&long[..], Edc::Lrc),
            Err(Error::LengthMismatch)
        );
        let mut bad = SELECT_I00;
        bad[4] ^= 0x01;
        assert_eq!(
            Block::new_checked(&bad[..], Edc::Lrc),
            Err(Error::EdcMismatch)
        );
        // The same bytes read with the wrong EDC kind do not frame.
        assert_eq!(
            Block::new_checked(&SELECT_I00[..], Edc::Crc),
            Err(Error::Truncated)
        );
    }

    #[test]
    fn unknown_patterns_are_kept() {
        let mut buf = [0u8; 8];
        // I-block with RFU bit b1 set.
        for (pcb_byte, inf) in [
            (0x01u8, &[][..]),
            (0x83, &[][..]),
            (0xA0, &[][..]),
            (0x80, &[0x00][..]),
            (0xC4, &[][..]),
            (0xC1, &[][..]),
            (0xC1, &[0x00][..]),
            (0xE1, &[0xFF][..]),
            (0xC0, &[0x01][..]),
        ] {
            let repr = BlockRepr::classify(0, pcb_byte, inf);
            assert_eq!(
                repr,
                BlockRepr::Unknown {
                    nad: 0,
                    pcb: pcb_byte,
                    inf
                },
                "pcb {pcb_byte:#04x}"
            );
            let n = repr.emit_slice(&mut buf, Edc::Lrc).unwrap();
            let block = Block::new_checked(&buf[..n], Edc::Lrc).unwrap();
            assert_eq!(BlockRepr::parse(&block), Ok(repr));
        }
    }

    #[test]
    fn emit_rejects_what_it_cannot_write() {
        let mut buf = [0u8; 300];
        let long = [0u8; 255];
        let repr = BlockRepr::I {
            nad: 0,
            ns: Seq::One,
            more: true,
            inf: &long,
        };
        assert_eq!(repr.emit_slice(&mut buf, Edc::Lrc), Err(Error::InfTooLong));
        let repr = BlockRepr::S {
            nad: 0,
            kind: SBlock::IfsResponse(0),
        };
        assert_eq!(repr.emit_slice(&mut buf, Edc::Lrc), Err(Error::InvalidIfs));
        let repr = BlockRepr::S {
            nad: 0,
            kind: SBlock::WtxRequest(1),
        };
        assert_eq!(
            repr.emit_slice(&mut buf[..4], Edc::Crc),
            Err(Error::BufferTooShort)
        );
    }

    #[test]
    fn accessors_do_not_panic_on_short_buffers() {
        let block = Block::new_unchecked(&[0x12][..], Edc::Crc);
        assert_eq!((block.nad(), block.pcb(), block.inf_len()), (0x12, 0, 0));
        assert!(block.inf().is_empty());
        assert!(block.epilogue().is_empty());
        let mut empty: [u8; 0] = [];
        let mut block = Block::new_unchecked(&mut empty[..], Edc::Lrc);
        block.set_pcb(1);
        assert!(block.inf_mut().is_empty());
        assert_eq!(block.fill_edc(), Err(Error::Truncated));
    }

    #[test]
    fn display_uses_annex_a_notation() {
        extern crate std;
        use std::string::ToString;
        let repr = BlockRepr::I {
            nad: 0,
            ns: Seq::One,
            more: true,
            inf: &[1, 2],
        };
        assert_eq!(repr.to_string(), "I(1,1) [2 bytes]");
        assert_eq!(
            BlockRepr::S {
                nad: 0,
                kind: SBlock::WtxRequest(3)
            }
            .to_string(),
            "S(WTX request 3)"
        );
    }
}
