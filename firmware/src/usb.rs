//! The USB device on embassy-usb: the stock Nitrokey HSM 2 identity (hardware.md §C) and one
//! CCID interface with its three endpoints and class requests.
//!
//! | item              | value                                                           |
//! |-------------------|-----------------------------------------------------------------|
//! | VID:PID           | 20a0:4230, bcdDevice 0x0101, class 0/0/0, EP0 64 bytes           |
//! | strings           | manufacturer "Nitrokey", product and serial given at attach time |
//! | configuration     | one interface, bus-powered, 100 mA                               |
//! | CCID interface    | class 0x0B, subclass 0, protocol 0, the 54-byte class descriptor |
//! | endpoints         | 0x02 bulk OUT 64, 0x82 bulk IN 64, 0x81 interrupt IN 64 (24 ms)  |
//!
//! Differences from the stock descriptors: bcdUSB is 2.00 (embassy-usb offers 2.00 and 2.10;
//! the stock says 1.10; both mean a full-speed device to a host), and the string descriptors have
//! their true length (the stock manufacturer string declares 52 bytes for 8 characters).
//!
//! The class requests (CCID Rev 1.1 §5.3): ABORT is accepted and handed to the bridge through
//! [`ABORT_REQUEST`]; GET_CLOCK_FREQUENCIES and GET_DATA_RATES are refused (STALL), as the class
//! descriptor has bNumClockSupported = bNumDataRatesSupported = 0 (only the default and maximum
//! values), so a host has nothing to ask.

use embassy_sync::blocking_mutex::raw::CriticalSectionRawMutex;
use embassy_sync::signal::Signal;
use embassy_usb::control::{InResponse, OutResponse, Recipient, Request, RequestType};
use embassy_usb::driver::{
    Driver, Endpoint, EndpointAddress, EndpointError, EndpointIn, EndpointOut,
};
use embassy_usb::types::InterfaceNumber;
use embassy_usb::{Builder, Config, Handler, UsbDevice, UsbVersion};
use tessera_ccid::ClassDescriptorRepr;

use crate::ccid_transport::{self, Progress, Reassembler, PACKET_SIZE};

/// Vendor ID (Clay Logic, used by Nitrokey).
pub const VID: u16 = 0x20A0;
/// Product ID of the Nitrokey HSM / HSM 2.
pub const PID: u16 = 0x4230;
/// bcdDevice of the stock HSM firmware.
pub const BCD_DEVICE: u16 = 0x0101;
/// iManufacturer.
pub const MANUFACTURER: &str = "Nitrokey";

/// The CCID interface class (USB-IF, "Smart Card").
pub const CLASS_CCID: u8 = 0x0B;
/// bDescriptorType of the CCID class descriptor.
pub const DESCRIPTOR_TYPE_CCID: u8 = 0x21;
/// Bulk OUT: PC_to_RDR messages.
pub const EP_BULK_OUT: u8 = 0x02;
/// Bulk IN: RDR_to_PC messages.
pub const EP_BULK_IN: u8 = 0x82;
/// Interrupt IN: NotifySlotChange and HardwareError.
pub const EP_INTERRUPT_IN: u8 = 0x81;
/// bInterval of the interrupt endpoint, ms (stock value).
pub const INTERRUPT_INTERVAL_MS: u8 = 24;

/// CCID class request ABORT (CCID Rev 1.1 §5.3.1).
const REQUEST_ABORT: u8 = 0x01;

/// A class ABORT request: the host is aborting the command with this slot and sequence number;
/// the `PC_to_RDR_Abort` with the same pair follows on bulk OUT (CCID Rev 1.1 §5.3.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(target_os = "none", derive(defmt::Format))]
pub struct AbortRequest {
    /// bSlot (the low byte of wValue).
    pub slot: u8,
    /// bSeq (the high byte of wValue).
    pub seq: u8,
}

/// The latest ABORT class request, for the bridge.
pub static ABORT_REQUEST: Signal<CriticalSectionRawMutex, AbortRequest> = Signal::new();

/// Whether the host has the device configured (and not suspended), signalled on every change
/// the USB stack reports (latest state wins).
pub static USB_CONFIGURED: Signal<CriticalSectionRawMutex, bool> = Signal::new();

/// What the host sees of the device, chosen when the bridge says to attach.
pub struct Identity<'a> {
    /// iProduct, e.g. "Nitrokey HSM" (the boot policy shows in it).
    pub product: &'a str,
    /// iSerialNumber: the card's CHR as the stock firmware does it (hardware.md §C).
    pub serial: &'a str,
    /// The CCID class descriptor (by default the stock one, [`ClassDescriptorRepr::NITROKEY_HSM2`]).
    pub descriptor: ClassDescriptorRepr,
}

/// Answers the CCID class requests on the CCID interface.
pub struct ClassRequests {
    interface: Option<InterfaceNumber>,
    configured: bool,
    suspended: bool,
}

impl ClassRequests {
    fn ours(&self, req: &Request) -> bool {
        req.request_type == RequestType::Class
            && req.recipient == Recipient::Interface
            && self
                .interface
                .is_some_and(|i| u16::from(u8::from(i)) == req.index)
    }
}

impl ClassRequests {
    fn report(&self) {
        USB_CONFIGURED.signal(self.configured && !self.suspended);
    }
}

impl Handler for ClassRequests {
    fn reset(&mut self) {
        self.configured = false;
        self.report();
    }

    fn configured(&mut self, configured: bool) {
        self.configured = configured;
        self.report();
    }

    fn suspended(&mut self, suspended: bool) {
        self.suspended = suspended;
        self.report();
    }

    fn control_out(&mut self, req: Request, _data: &[u8]) -> Option<OutResponse> {
        if !self.ours(&req) {
            return None;
        }
        if req.request == REQUEST_ABORT {
            let [slot, seq] = req.value.to_le_bytes();
            ABORT_REQUEST.signal(AbortRequest { slot, seq });
            Some(OutResponse::Accepted)
        } else {
            Some(OutResponse::Rejected)
        }
    }

    fn control_in<'a>(&'a mut self, req: Request, _buf: &'a mut [u8]) -> Option<InResponse<'a>> {
        // GET_CLOCK_FREQUENCIES (0x02) and GET_DATA_RATES (0x03): see the module docs.
        self.ours(&req).then_some(InResponse::Rejected)
    }
}

/// The buffers embassy-usb builds the device in; they live as long as the device.
pub struct UsbBuffers {
    config_descriptor: [u8; 128],
    bos_descriptor: [u8; 16],
    msos_descriptor: [u8; 0],
    // String descriptors are built here: 2 + 2 × characters must stay below its length.
    control: [u8; 128],
    class_requests: ClassRequests,
}

impl UsbBuffers {
    /// Zeroed buffers (put them in a `StaticCell`).
    pub const fn new() -> Self {
        UsbBuffers {
            config_descriptor: [0; 128],
            bos_descriptor: [0; 16],
            msos_descriptor: [0; 0],
            control: [0; 128],
            class_requests: ClassRequests {
                interface: None,
                configured: false,
                suspended: false,
            },
        }
    }
}

impl Default for UsbBuffers {
    fn default() -> Self {
        Self::new()
    }
}

/// The CCID interface's endpoints (separate fields, so that separate tasks can own them).
pub struct CcidEndpoints<'d, D: Driver<'d>> {
    /// 0x02: PC_to_RDR messages.
    pub bulk_out: BulkOut<'d, D>,
    /// 0x82: RDR_to_PC messages.
    pub bulk_in: BulkIn<'d, D>,
    /// 0x81: NotifySlotChange and HardwareError.
    pub interrupt_in: InterruptIn<'d, D>,
}

/// The bulk-OUT endpoint.
pub struct BulkOut<'d, D: Driver<'d>>(D::EndpointOut);
/// The bulk-IN endpoint.
pub struct BulkIn<'d, D: Driver<'d>>(D::EndpointIn);
/// The interrupt-IN endpoint.
pub struct InterruptIn<'d, D: Driver<'d>>(D::EndpointIn);

/// Build the device: the identity, one CCID interface, its endpoints and class requests. Run
/// the returned [`UsbDevice`] once the D+ pull-up is on.
pub fn build<'d, D: Driver<'d>>(
    driver: D,
    identity: &Identity<'d>,
    buffers: &'d mut UsbBuffers,
) -> (UsbDevice<'d, D>, CcidEndpoints<'d, D>) {
    let mut config = Config::new(VID, PID);
    config.bcd_usb = UsbVersion::Two;
    config.device_class = 0;
    config.device_sub_class = 0;
    config.device_protocol = 0;
    config.composite_with_iads = false;
    config.device_release = BCD_DEVICE;
    config.max_packet_size_0 = 64;
    config.manufacturer = Some(MANUFACTURER);
    config.product = Some(identity.product);
    config.serial_number = Some(identity.serial);
    config.self_powered = false;
    config.max_power = 100;

    let mut class_descriptor = [0u8; 54];
    let class_descriptor = match identity.descriptor.emit(&mut class_descriptor) {
        // embassy-usb writes bLength and bDescriptorType itself.
        Ok(len) => class_descriptor.get(2..len).unwrap_or(&[]),
        Err(_) => &[],
    };

    let UsbBuffers {
        config_descriptor,
        bos_descriptor,
        msos_descriptor,
        control,
        class_requests,
    } = buffers;
    let mut builder = Builder::new(
        driver,
        config,
        config_descriptor,
        bos_descriptor,
        msos_descriptor,
        control,
    );
    let mut function = builder.function(CLASS_CCID, 0, 0);
    let mut interface = function.interface();
    let interface_number = interface.interface_number();
    let mut alt = interface.alt_setting(CLASS_CCID, 0, 0, None);
    alt.descriptor(DESCRIPTOR_TYPE_CCID, class_descriptor);
    // Endpoint order as in the stock descriptor: interrupt IN, bulk OUT, bulk IN.
    let interrupt_in = alt.endpoint_interrupt_in(
        Some(EndpointAddress::from(EP_INTERRUPT_IN)),
        PACKET_SIZE as u16,
        INTERRUPT_INTERVAL_MS,
    );
    let bulk_out =
        alt.endpoint_bulk_out(Some(EndpointAddress::from(EP_BULK_OUT)), PACKET_SIZE as u16);
    let bulk_in = alt.endpoint_bulk_in(Some(EndpointAddress::from(EP_BULK_IN)), PACKET_SIZE as u16);
    drop(function);
    class_requests.interface = Some(interface_number);
    builder.handler(class_requests);
    (
        builder.build(),
        CcidEndpoints {
            bulk_out: BulkOut(bulk_out),
            bulk_in: BulkIn(bulk_in),
            interrupt_in: InterruptIn(interrupt_in),
        },
    )
}

impl<'d, D: Driver<'d>> BulkOut<'d, D> {
    /// Wait until the host has configured the device.
    pub async fn wait_configured(&mut self) {
        self.0.wait_enabled().await;
    }

    /// Receive one bulk-OUT transfer into `reassembler`; returns its length and whether it was
    /// cut to the buffer. Cancel-safe between packets: a partly received message stays in the
    /// reassembler.
    pub async fn receive<const N: usize>(
        &mut self,
        reassembler: &mut Reassembler<N>,
    ) -> Result<(usize, bool), EndpointError> {
        let mut packet = [0u8; PACKET_SIZE];
        loop {
            let n = self.0.read(&mut packet).await?;
            let progress = reassembler.push(packet.get(..n).unwrap_or(&[]));
            if let Progress::Complete { len, truncated } = progress {
                return Ok((len, truncated));
            }
        }
    }
}

impl<'d, D: Driver<'d>> BulkIn<'d, D> {
    /// Send one message: 64-byte packets and a zero-length packet when its length is a
    /// multiple of 64.
    pub async fn send(&mut self, message: &[u8]) -> Result<(), EndpointError> {
        for packet in ccid_transport::packets(message) {
            self.0.write(packet).await?;
        }
        Ok(())
    }
}

impl<'d, D: Driver<'d>> InterruptIn<'d, D> {
    /// Send one message (NotifySlotChange, HardwareError: a few bytes).
    pub async fn send(&mut self, message: &[u8]) -> Result<(), EndpointError> {
        for packet in message.chunks(PACKET_SIZE) {
            self.0.write(packet).await?;
        }
        Ok(())
    }
}
