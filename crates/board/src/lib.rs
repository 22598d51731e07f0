//! The virtual Nitrokey HSM 2 board: the real bridge code (`tessera-bridge`) on the host,
//! driven by a virtual card line, a virtual clock, virtual USB and virtual power, with the
//! virtual SmartCard-HSM (`tessera-card`'s [`Contacts`](tessera_card::contacts::Contacts)) in
//! its SIM socket.
//!
//! # The model
//!
//! A discrete-event simulation in **modelled time** (a [`std::time::Duration`] since the board
//! was made, nanosecond resolution; no wall clock, no threads). Time moves only when the board
//! runs ([`VirtualBoard::run_until`], [`VirtualBoard::receive_ccid`], …) and jumps from one
//! event to the next.
//!
//! - **Card line.** The bridge's [`CardContacts`](tessera_bridge::CardContacts) calls drive the
//!   card's VCC, RST and CLK at once. Characters the bridge transmits reach the card one after
//!   another, each after the guard time the bridge set ([`LineRate::cgt_etu`](tessera_bridge::LineRate::cgt_etu): 12 etu, or 11
//!   under T=1 with N = 255, at its F and D); the card's transmissions reach the bridge at
//!   their `character_end` times (12 etu each). Each side receives at the rate **it** set: a
//!   character sent at another F and D (a wrong PPS) arrives as a parity error. A reset, a
//!   power-off or a pull cuts the card's characters that had not started. Between the two
//!   UARTs sits a [`CardLine`]: [`CleanLine`] is a perfect wire, [`FaultyLine`] wraps one and
//!   injects bit flips, dropped characters, a mute card and a card pulled at a given time.
//! - **Clock.** The bridge's [`DeadlineTimer`](tessera_bridge::DeadlineTimer) becomes an event
//!   at the armed instant. The bridge sees time in whole microseconds, rounded down.
//! - **USB.** Attached or not (D+ pull-up, with the serial string the bridge chose), configured
//!   by the virtual host [`UsbTiming::enumeration`] after the attach (or by
//!   [`VirtualBoard::configure`]); bus resets and ABORT. CCID messages go in whole
//!   ([`VirtualBoard::send_ccid`]) and come out on a bulk-IN and an interrupt-IN queue the host
//!   reads ([`VirtualBoard::receive_ccid`], [`VirtualBoard::receive_interrupt`]); each takes
//!   its packets' time on the bus.
//! - **Power.** [`VirtualBoard::power_off`] stops everything and drops the bridge;
//!   [`VirtualBoard::power_on`] starts a new bridge from scratch after the MCU's start-up time.
//!   The card keeps its memory (its [`Storage`](tessera_card::memory::Storage) persists),
//!   like a real SIM.
//!
//! With the feature `host`, the board is a `tessera_host::ccid::UsbPipe`, so tessera-host's
//! `CcidTransport` and tessera-sc-hsm's client run over it (`VirtualBoard::ccid_transport`).
//!
//! ```
//! use std::time::Duration;
//! use tessera_board::{BoardConfig, VirtualBoard};
//! use tessera_bridge::{BootPolicy, Exchange};
//!
//! // A reader-policy board with an empty socket attaches at once with its own serial.
//! let mut board = VirtualBoard::new(BoardConfig::new(BootPolicy::Reader, Exchange::Tpdu))?;
//! board.power_on();
//! assert!(board.run_until_true(Duration::from_millis(100), |b| b.is_attached()));
//! assert_eq!(board.serial(), Some("TESSERA-VBOARD-0001"));
//! # Ok::<(), tessera_board::BoardError>(())
//! ```
//!
//! # Modelling choices
//!
//! Every number that is not from a standard is a GUESS and configurable: USB enumeration
//! 120 ms and 50 µs per 64-byte packet ([`UsbTiming`]), MCU start-up 2 ms
//! ([`BoardConfig::startup`]). A character is indivisible: a reset or a pull during a
//! character lets it finish. A receiver at the wrong rate sees exactly one parity error per
//! character (a real UART would also see framing errors and a different count).
//!
//! # What it does not know
//!
//! Registers, pins, interrupts, DMA, USB packets below whole transfers, descriptors other than
//! the CCID class descriptor and identity the bridge gives, the host's operating system, wall
//! time. It never looks inside the APDUs it carries; its [`trace`](VirtualBoard::trace) keeps
//! the raw bytes for tests (and so PINs: never print them).

#![forbid(unsafe_code)]

mod board;
mod fault;
#[cfg(feature = "host")]
mod host;
mod line;
mod trace;

pub use board::{
    new_card, BoardConfig, BoardError, Card, LineStats, UsbError, UsbTiming, VirtualBoard,
};
pub use fault::{FaultStats, Faults, FaultyLine};
pub use line::{Arrival, CardLine, CleanLine, Direction, SocketEvent};
pub use trace::{TraceEntry, TraceEvent};
