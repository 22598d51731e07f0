//! The Nitrokey HSM 2 firmware's board layer: the STM32F103TB of hardware revisions 1 to 3
//! (hardware.md §A), its clocks and pins, our USART smart-card driver, the USB CCID plumbing on
//! embassy-usb, and the thin glue that drives `tessera-bridge` with them.
//!
//! - Pure, host-tested parts (no registers, built for every target):
//!   [`line`] (card clock, baud-rate register and guard-time arithmetic),
//!   [`line_state`] (the smart-card line's transmit, echo and receive state machine, run by the
//!   USART interrupt) and [`ccid_transport`] (CCID messages over 64-byte bulk packets:
//!   reassembly, packets out, zero-length packets).
//! - Chip-only parts (`target_os = "none"`): [`board`] (clocks, pin map, USB pull-up, LEDs),
//!   [`smartcard`] (the USART1 smart-card driver; its register code is in
//!   `smartcard::regs`), [`usb`] (device identity, the CCID interface and its endpoints) and
//!   [`integration`] (the bridge's hardware traits and the event loop).
//!
//! What it does not know: the card session (ATR parsing, PPS, T=1, the serial number), the CCID
//! slot machine and the boot policy. Those are `tessera-bridge`'s; the firmware only moves
//! bytes, levels and time between it and the hardware.
#![cfg_attr(not(test), no_std)]
#![cfg_attr(
    test,
    allow(clippy::indexing_slicing, clippy::unwrap_used, clippy::panic)
)]

pub mod ccid_transport;
pub mod line;
pub mod line_state;

#[cfg(target_os = "none")]
pub mod board;
#[cfg(target_os = "none")]
pub mod integration;
#[cfg(target_os = "none")]
pub mod smartcard;
#[cfg(target_os = "none")]
pub mod usb;
