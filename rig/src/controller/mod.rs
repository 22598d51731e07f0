//! The rig controller: the small board that switches each board's power and wires one SIM
//! position (or none) to each board's SIM socket. It speaks the line protocol of
//! `rig/PROTOCOL.md`.
//!
//! - [`protocol`]: the sans-IO codec (lines, sequence numbers, CRC-16, requests, responses).
//! - [`ControllerClient`]: the host's session over any [`Link`], with retries and the
//!   all-off guarantee; [`SerialLink`] is the [`Link`] over a serial port.
//! - [`VirtualController`]: the controller in software (sans-IO, modelled time); on a
//!   pseudo-terminal with [`pty::PtyController`] for end-to-end tests of the client.

mod client;
pub mod protocol;
#[cfg(unix)]
pub mod pty;
mod serial;
mod virtual_controller;

pub use client::{
    AllOff, ClientConfig, ClientStats, ControllerClient, ControllerError, ControllerErrorKind, Link,
};
pub use protocol::{ErrorCode, HelloInfo, StatusInfo, PROTOCOL_VERSION};
pub use serial::SerialLink;
pub use virtual_controller::{ControllerSpec, SwitchEvent, VirtualController};
