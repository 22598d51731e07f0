//! CCID spoken by the host itself (USB CCID Rev 1.1), over any [`UsbPipe`].
//!
//! Two layers, neither of which knows USB:
//!
//! - [`CcidReader`]: one CCID message pair at a time. It numbers requests (`bSeq`), checks
//!   every response with `tessera_ccid::pairing` (sequence number, slot, message type), keeps
//!   waiting on time extensions (§6.2.6, `bmCommandStatus` = 2), skips stale responses to an
//!   earlier request, and turns a failed command (`bStatus`, `bError`) into a typed error.
//! - [`CcidTransport`]: a SmartCard-HSM [`Transport`](tessera_sc_hsm::Transport) on a
//!   `CcidReader`: IccPowerOn, then APDUs as XfrBlock at the exchange level the class
//!   descriptor names (§5.1 `dwFeatures`): TPDU with the host role of the T=1 engine
//!   (`tessera_iso7816_3::t1::Reader`), or short / extended APDU level (with the extended
//!   level's `wLevelParameter` chaining, §6.1.4).
//!
//! [`UsbPipe`] is the only I/O: bulk OUT, bulk IN with a timeout. `crate::usb::RusbPipe` is the
//! libusb implementation; tests script one; the virtual board's virtual USB can be another.

mod reader;
mod transport;

use std::time::Duration;

use tessera_sc_hsm::TransportError;

pub use reader::{CcidConfig, CcidReader, IfsdRequest, SlotFailure};
pub use transport::{CcidTransport, ExchangeMode};

/// The two bulk endpoints of a CCID interface (CCID Rev 1.1 §5.2, §6).
///
/// # Call sequence
///
/// The host writes one whole `PC_to_RDR` message with [`bulk_out`](UsbPipe::bulk_out), then
/// reads with [`bulk_in`](UsbPipe::bulk_in) until it has a whole `RDR_to_PC` message (a read
/// may return part of a message, or a whole one; a time-extension message may come before the
/// final one). Errors use [`TransportError`] kinds: `Timeout` when nothing arrived in time,
/// `ReaderGone` when the device is gone.
pub trait UsbPipe {
    /// Writes `data` to the bulk-OUT endpoint.
    fn bulk_out(&mut self, data: &[u8], timeout: Duration) -> Result<(), TransportError>;
    /// Reads from the bulk-IN endpoint into `buffer`; returns the number of bytes read.
    fn bulk_in(&mut self, buffer: &mut [u8], timeout: Duration) -> Result<usize, TransportError>;
}

impl<P: UsbPipe + ?Sized> UsbPipe for &mut P {
    fn bulk_out(&mut self, data: &[u8], timeout: Duration) -> Result<(), TransportError> {
        (**self).bulk_out(data, timeout)
    }
    fn bulk_in(&mut self, buffer: &mut [u8], timeout: Duration) -> Result<usize, TransportError> {
        (**self).bulk_in(buffer, timeout)
    }
}

impl<P: UsbPipe + ?Sized> UsbPipe for Box<P> {
    fn bulk_out(&mut self, data: &[u8], timeout: Duration) -> Result<(), TransportError> {
        (**self).bulk_out(data, timeout)
    }
    fn bulk_in(&mut self, buffer: &mut [u8], timeout: Duration) -> Result<usize, TransportError> {
        (**self).bulk_in(buffer, timeout)
    }
}
