//! Hardware-in-the-loop rigs for Tessera: what the conformance suites run on.
//!
//! - [`config`]: rig files (`rig/virtual.toml`, `rig/example-lab.toml`): boards, SIM slots
//!   and cards, the rig controller, the hub; errors with line, column and key path; PINs
//!   only by reference (environment, file, or generated on a virtual rig).
//! - [`Rig`]: the API the suites use (power, SIM selection, USB enumeration, transports,
//!   flashing, logs, capability checks), enforcing the rules over any [`Backend`]: a SIM
//!   changes only while its board is off, a card is on one board at a time, a failure or a
//!   drop leaves every board off.
//! - [`controller`]: the rig controller's line protocol (`rig/PROTOCOL.md`), the host client
//!   over a serial port, and a virtual controller that speaks the same protocol.
//! - [`real::RealBackend`]: the real rig (controller, uhubctl hub ports, USB through
//!   `tessera-host`, probe-rs behind the `probe` feature).
//!
//! - [`virtual_rig::VirtualBackend`]: the virtual rig (virtual boards running the real bridge
//!   code from `crates/board`, virtual cards in card files, virtual USB, the virtual
//!   controller in-process, one modelled clock).
//!
//! [`Rig::open`] builds the rig a rig file describes, on the backend it names.
//!
//! What it does not know: the SmartCard-HSM command set and CCID (transports come from
//! `tessera-host`), the board's firmware, what the suites test. Only this crate knows about rig
//! controllers and probes; it starts one program, uhubctl, for hub port power.
#![warn(missing_docs)]
#![forbid(unsafe_code)]

pub mod config;
pub mod controller;
pub mod probe;
pub mod real;
mod rig;
pub mod virtual_rig;

pub use rig::{
    Backend, CardPins, LinkReport, LogLevel, LogRecord, Missing, Need, PowerState, Rig, RigError,
    RigErrorKind, RigTransport, SlotChange, TransportOptions, UsbSighting, Via,
};
