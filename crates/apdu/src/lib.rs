//! ISO/IEC 7816-4 application protocol data units, as the firmware, the virtual card and the host
//! driver exchange them.
//!
//! - [`command`]: command APDUs in all seven cases (1, 2S, 3S, 4S, 2E, 3E, 4E): a zero-copy view
//!   [`Command`], a validated [`CommandRepr`] that is also the builder (it picks the short or the
//!   extended form by itself), and a fixed-capacity owned [`CommandBuf`].
//! - [`cla`]: the class byte: command chaining bit, secure-messaging indication, logical channel.
//! - [`chain`]: command chaining for a reader without extended length: [`Chain`] splits one command
//!   into short ones, [`ChainAssembler`] joins them back on the card side.
//! - [`response`]: response APDUs: a view [`Response`] and a [`ResponseRepr`].
//! - [`status`]: [`StatusWord`], a lossless enum over all 65 536 values of SW1-SW2.
//! - [`tlv`]: BER-TLV data objects: [`Tag`], a reader ([`Tlv`], [`Tlvs`]) and a writer
//!   ([`TlvWriter`]).
//!
//! What it does not know: how APDUs travel (T=0, T=1, CCID, PC/SC are other crates' business),
//! the meaning of any particular INS or data object, secure messaging beyond reading the CLA bits,
//! GET RESPONSE and 61xx/6Cxx recovery (a transport's job), and SIMPLE-TLV or COMPACT-TLV.
//!
//! `no_std`, no allocation, no `unsafe`, and no panics on any input: every malformed shape is a
//! typed error ([`CommandError`], [`ResponseError`], [`ChainError`], [`TlvError`]).
//!
//! Clause numbers refer to ISO/IEC 7816-4:2020 unless another document is named; the decoding of
//! command APDUs follows ISO/IEC 7816-3:2006 §12.1.3, and BER-TLV follows ISO/IEC 8825-1 §8.1.
#![no_std]
#![forbid(unsafe_code)]
#![warn(missing_docs)]
#![cfg_attr(
    not(test),
    deny(
        clippy::indexing_slicing,
        clippy::unwrap_used,
        clippy::expect_used,
        clippy::panic,
        clippy::unreachable
    )
)]

pub mod chain;
pub mod cla;
pub mod command;
pub mod response;
pub mod status;
pub mod tlv;

mod wire;

pub use chain::{Chain, ChainAssembler, ChainError, Progress};
pub use cla::{Cla, SecureMessaging};
pub use command::{Case, Command, CommandBuf, CommandError, CommandRepr};
pub use response::{Response, ResponseError, ResponseRepr};
pub use status::StatusWord;
pub use tlv::{Tag, TagClass, Tlv, TlvError, TlvRepr, TlvWriter, Tlvs};
