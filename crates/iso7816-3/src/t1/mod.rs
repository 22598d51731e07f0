//! The T=1 protocol, ISO/IEC 7816-3:2006 §11: half-duplex transmission of blocks.
//!
//! Two layers:
//!
//! - **Wire** ([`block`]): a zero-copy view [`Block`] over the bytes of one block (prologue
//!   NAD/PCB/LEN, information field, epilogue LRC or CRC) and a validated [`BlockRepr`] (I-, R-
//!   and S-blocks, plus a lossless [`BlockRepr::Unknown`] for PCB patterns the standard does not
//!   define), with the EDC arithmetic in [`edc`].
//! - **Engines** ([`Reader`] and [`Card`]): sans-IO state machines for the two roles. They take
//!   [`Event`]s (bytes received, a parity error, the armed deadline passed) and return an
//!   [`Action`] (one block to transmit, the [`Deadline`] to arm, a completion). They chain APDUs
//!   in both directions, answer and issue S-blocks (IFS, WTX, RESYNCH, ABORT) and apply the error
//!   recovery of §11.6.3. They never do I/O, never read a clock and never allocate: the APDU
//!   buffer is lent by the caller and the only internal buffer is one block (259 bytes).
//!
//! What this module does not know: APDU structure (an APDU is opaque bytes here), the UART, the
//! clock, how long an etu is (the driver turns [`Deadline`]s into time with [`crate::rate`]), and
//! the ATR (the caller builds a [`Config`] from plain values: IFSC, EDC kind).

pub mod block;
mod card;
pub mod edc;
mod engine;
mod reader;

pub use block::{Block, BlockRepr, Error, RError, SBlock, MAX_BLOCK_LEN, MAX_INF_LEN};
pub use card::{Card, CardEvent};
pub use edc::Edc;
pub use engine::{Action, CallError, Config, Deadline, Event, TransactionError};
pub use reader::{Reader, ReaderEvent};

/// A send-sequence number N(S) or N(R): one bit, ISO/IEC 7816-3:2006 §11.3.2.2.
///
/// Each side numbers its I-blocks 0, 1, 0, 1, ... starting at 0 after the ATR and after a
/// resynchronisation (§11.6.2.1); an R-block carries the N(S) of the I-block it expects next.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum Seq {
    /// Sequence number 0.
    Zero,
    /// Sequence number 1.
    One,
}

impl Seq {
    /// The other sequence number (modulo-2 increment).
    #[must_use]
    pub const fn next(self) -> Seq {
        match self {
            Seq::Zero => Seq::One,
            Seq::One => Seq::Zero,
        }
    }

    /// The sequence number carried by a PCB bit.
    pub const fn from_bit(bit: bool) -> Seq {
        if bit {
            Seq::One
        } else {
            Seq::Zero
        }
    }

    /// True for [`Seq::One`].
    pub const fn bit(self) -> bool {
        matches!(self, Seq::One)
    }
}

impl core::fmt::Display for Seq {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str(if self.bit() { "1" } else { "0" })
    }
}
