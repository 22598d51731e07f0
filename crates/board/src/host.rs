//! The host adapter (feature `host`): the virtual board's USB as a
//! [`tessera_host::ccid::UsbPipe`], so tessera-host's [`CcidTransport`] and the SmartCard-HSM
//! client on top of it talk to the real bridge code through virtual USB.
//!
//! The pipe's timeouts are modelled time: while the host waits for a bulk-IN message, the
//! board runs. A device that is not (or no longer) on the bus fails at once with
//! [`TransportErrorKind::ReaderGone`], as libusb does for a device that has gone.

use std::time::Duration;

use tessera_host::ccid::{CcidConfig, CcidTransport, UsbPipe};
use tessera_sc_hsm::{TransportError, TransportErrorKind};

use crate::board::{UsbError, VirtualBoard};
use crate::line::CardLine;

fn usb_error(error: UsbError) -> TransportError {
    TransportError::new(
        TransportErrorKind::ReaderGone,
        format!("virtual board: {error}"),
    )
}

impl<L: CardLine> UsbPipe for VirtualBoard<L> {
    fn bulk_out(&mut self, data: &[u8], _timeout: Duration) -> Result<(), TransportError> {
        self.send_ccid(data).map_err(usb_error)
    }

    fn bulk_in(&mut self, buffer: &mut [u8], timeout: Duration) -> Result<usize, TransportError> {
        if self.pipe_rest().is_empty() {
            if !self.is_attached() {
                return Err(usb_error(UsbError::NotAttached));
            }
            self.run_until_true(timeout, |b| b.pending_ccid() > 0 || !b.is_attached());
            match self.receive_ccid(Duration::ZERO) {
                Some(message) => *self.pipe_rest() = message,
                None if !self.is_attached() => return Err(usb_error(UsbError::NotAttached)),
                None => {
                    return Err(TransportError::new(
                        TransportErrorKind::Timeout,
                        format!(
                            "virtual board: no bulk-IN message within {} ms of modelled time",
                            timeout.as_millis()
                        ),
                    ))
                }
            }
        }
        let rest = self.pipe_rest();
        let n = rest.len().min(buffer.len());
        if let (Some(dst), Some(src)) = (buffer.get_mut(..n), rest.get(..n)) {
            dst.copy_from_slice(src);
        }
        rest.drain(..n);
        Ok(n)
    }
}

impl<L: CardLine> VirtualBoard<L> {
    /// Opens the card through tessera-host's CCID transport on this board's USB, with the
    /// board's own class descriptor: IccPowerOn, then APDUs at the board's exchange level.
    /// The board must be attached and configured.
    pub fn ccid_transport(
        &mut self,
        config: CcidConfig,
    ) -> Result<CcidTransport<&mut Self>, TransportError> {
        let descriptor = self.descriptor();
        CcidTransport::open(self, descriptor, config)
    }
}
