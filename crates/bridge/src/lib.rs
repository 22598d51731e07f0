//! The logic of the Nitrokey HSM 2 bridge firmware, host-testable: USB CCID on one side, an
//! ISO/IEC 7816-3 card on the other, and the decisions in between.
//!
//! - **Boot policy** ([`BootPolicy`], chosen at build time in [`Config`]): `require-card`, the
//!   stock behaviour (attach to USB only once a card answered and gave its serial number), or
//!   `reader` (attach at once, report the slot, find cards by periodic activation).
//! - **Card session**: activation (ISO/IEC 7816-3 §6.2), the ATR read byte by byte, PPS to the
//!   card's TA1 with a per-generation cap ([`RateCap`]), S(IFS request) for IFSD 254, T=1
//!   through the reader engine of `tessera-iso7816-3`, T=0 for cards that offer only T=0, and
//!   every waiting time (BWT, CWT, BGT, WT) from its `rate` module.
//! - **Serial number** as the stock firmware reads it (the CHR of the device certificate in
//!   EF 2F02), retried a bounded number of times, never a garbage string.
//! - **CCID slot machine**: every CCID 1.1 command answered with the right response type;
//!   TPDU level (the stock descriptor) or short and extended APDU level; time extensions while
//!   the card works; ICC mute within BWT when the card is pulled.
//!
//! # Drivers
//!
//! The bridge is sans-IO. Its driver (the STM32 firmware, or the virtual board on the host)
//! implements the small traits of [`hal`] ([`CardContacts`], [`DeadlineTimer`], [`UsbDevice`]),
//! calls [`Bridge::start`] once and [`Bridge::handle`] for each [`Event`] with the instant it
//! happened. The bridge never blocks, never reads a clock, never allocates; its only large
//! buffer is lent by the driver ([`TPDU_BUFFER_LEN`] or [`APDU_BUFFER_LEN`] bytes), and
//! [`BulkOutAssembler`] helps the driver turn USB packets into CCID messages.
//!
//! ```
//! use tessera_bridge::{Bridge, BootPolicy, Config, Event, Instant, TPDU_BUFFER_LEN};
//! # use tessera_bridge::{CardContacts, DeadlineTimer, UsbDevice, LineRate, ErrorKind};
//! # struct Board;
//! # impl CardContacts for Board {
//! #     type Error = ErrorKind;
//! #     fn set_vcc(&mut self, _: bool) {}
//! #     fn set_rst(&mut self, _: bool) {}
//! #     fn set_clock(&mut self, _: bool) {}
//! #     fn set_rate(&mut self, _: LineRate) {}
//! #     fn transmit(&mut self, _: &[u8]) -> Result<(), ErrorKind> { Ok(()) }
//! # }
//! # impl DeadlineTimer for Board {
//! #     fn arm(&mut self, _: Instant) {}
//! #     fn disarm(&mut self) {}
//! # }
//! # impl UsbDevice for Board {
//! #     type Error = ErrorKind;
//! #     fn attach(&mut self, _: &str) {}
//! #     fn detach(&mut self) {}
//! #     fn send_bulk_in(&mut self, _: &[u8; 10], _: &[u8]) -> Result<(), ErrorKind> { Ok(()) }
//! #     fn send_interrupt(&mut self, _: &[u8]) -> Result<(), ErrorKind> { Ok(()) }
//! # }
//! const CONFIG: Config = Config::stock(BootPolicy::RequireCard);
//! let mut buffer = [0u8; TPDU_BUFFER_LEN];
//! let mut board = Board;
//! let mut bridge = Bridge::new(CONFIG, "0123456789AB", &mut buffer).unwrap();
//! bridge.start(Instant::ZERO, &mut board);
//! // ... later, from the USART interrupt:
//! bridge.handle(Instant::from_micros(12_000), Event::CardReceived(&[0x3B]), &mut board);
//! ```
//!
//! # RAM
//!
//! [`Bridge`] holds 1 008 bytes of state on `thumbv7m-none-eabi` (checked at compile time;
//! `tests/ram.rs` prints it), plus the lent buffer: 2 034 bytes in all at TPDU level, 5 113 at
//! APDU level with 4096-byte APDUs. The driver adds its USB message buffers (two of
//! `dwMaxCCIDMessageLength`).
//!
//! # What it does not know
//!
//! Registers, pins, interrupts, DMA, USB packets and descriptors other than the CCID class
//! descriptor's values, the clock source; the SmartCard-HSM's command set beyond the three
//! commands that read the serial number. It never inspects the APDUs it carries and never
//! logs their content (PINs travel in them).
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

mod bridge;
mod config;
pub mod hal;
mod serial;
mod session;
mod time;
mod usb;

pub use bridge::{BootPhase, Bridge, ConfigError, Event, SlotState};
pub use config::{
    BootPolicy, CardConfig, Config, Exchange, Identity, RateCap, SerialConfig, APDU_BUFFER_LEN,
    MIN_BUFFER_LEN, STOCK_RATE_CAPS, TPDU_BUFFER_LEN,
};
pub use hal::{
    CardContacts, DeadlineTimer, Error, ErrorKind, Hardware, LineRate, Parts, UsbDevice,
};
pub use serial::{SerialString, CHR_CHARS, SELECT_APPLICATION, SELECT_DEVICE_CERTIFICATE};
pub use session::{ActivationError, CardProtocol, XfrError};
pub use time::{Duration, Instant};
pub use usb::BulkOutAssembler;

// The bridge's own state on the firmware's target (the lent buffer comes on top): checked at
// compile time so a change that bloats it fails the thumbv7m build. See tests/ram.rs.
#[cfg(target_pointer_width = "32")]
const _: () = assert!(core::mem::size_of::<Bridge<'static>>() <= 1_100);
