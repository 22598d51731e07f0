//! ISO/IEC 7816-3 for contact cards: what travels on the I/O line between a reader and a card.
//!
//! - [`atr`]: the Answer-To-Reset (parse and emit, TCK check) and the protocol parameters it offers.
//! - [`rate`]: the Fi/Di tables, the baud-rate and etu arithmetic, and the waiting times (BWT, CWT,
//!   BGT, WT) in etu and in clock cycles.
//! - [`pps`]: Protocol and Parameters Selection request and response.
//! - [`t1`]: T=1 blocks (I, R, S; LRC and CRC) as views plus reprs, and a sans-IO T=1 engine in
//!   both roles, reader and card.
//! - [`t0`]: a sans-IO T=0 engine in the reader role, for cards that offer only T=0.
//!
//! What it does not know: APDU semantics beyond the header bytes T=0 needs, USB, CCID, clocks,
//! timers, UARTs. Engines take events (bytes received, a deadline passed) and return actions
//! (bytes to send, a deadline to arm); the driver owns time and I/O.
//!
//! `no_std`, no allocation, no panics on any input.
#![no_std]
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

pub mod atr;
pub mod pps;
pub mod rate;
pub mod t0;
pub mod t1;
