//! CCID straight over USB through libusb (the `rusb` crate): device listing, the choice of a
//! device, and [`RusbPipe`], the [`UsbPipe`] on a claimed CCID interface.
//!
//! The device must not be held by pcscd (libccid claims the interface too): stop pcscd, or use
//! PC/SC instead. On Linux, non-root users need a udev rule giving them the device.

use std::fmt;
use std::time::Duration;

use rusb::{Context, Device, DeviceHandle, Direction, TransferType, UsbContext};
use serde::Serialize;
use tessera_ccid::{ClassDescriptor, ClassDescriptorRepr};
use tessera_sc_hsm::{TransportError, TransportErrorKind};

use crate::ccid::{CcidConfig, CcidTransport, UsbPipe};
use crate::OpenError;

/// The Nitrokey HSM (2)'s USB vendor and product ids (hardware.md §C).
pub const NITROKEY_HSM: (u16, u16) = (0x20A0, 0x4230);

/// The USB interface class of smart-card readers (CCID Rev 1.1 §4.2).
const CCID_CLASS: u8 = 0x0B;

/// Which USB device to use.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DeviceChoice {
    /// The first device with this vendor and product id (default: the Nitrokey HSM,
    /// 20a0:4230).
    VidPid(u16, u16),
    /// The device with this USB serial string.
    Serial(String),
    /// The device at this bus/port path, as Linux names it: `<bus>-<port>[.<port>…]`, e.g.
    /// `1-2.3`.
    Path(String),
}

impl Default for DeviceChoice {
    fn default() -> Self {
        DeviceChoice::VidPid(NITROKEY_HSM.0, NITROKEY_HSM.1)
    }
}

impl DeviceChoice {
    /// Parses `vvvv:pppp` (hex) as ids; anything else is `None`.
    pub fn parse_vid_pid(text: &str) -> Option<DeviceChoice> {
        let (v, p) = text.split_once(':')?;
        Some(DeviceChoice::VidPid(
            u16::from_str_radix(v, 16).ok()?,
            u16::from_str_radix(p, 16).ok()?,
        ))
    }
}

impl fmt::Display for DeviceChoice {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DeviceChoice::VidPid(v, p) => write!(f, "USB device {v:04x}:{p:04x}"),
            DeviceChoice::Serial(s) => write!(f, "USB device with serial {s:?}"),
            DeviceChoice::Path(p) => write!(f, "USB device at {p}"),
        }
    }
}

/// A USB device with a CCID interface (or the Nitrokey HSM's ids).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct UsbDeviceInfo {
    /// Bus number.
    pub bus: u8,
    /// Device address on the bus.
    pub address: u8,
    /// `<bus>-<port>[.<port>…]`.
    pub path: String,
    /// Vendor id.
    pub vendor_id: u16,
    /// Product id.
    pub product_id: u16,
    /// The manufacturer string, if it could be read.
    pub manufacturer: Option<String>,
    /// The product string, if it could be read.
    pub product: Option<String>,
    /// The serial string, if it could be read (the Nitrokey HSM 2 puts the card's serial
    /// there, hardware.md §C).
    pub serial: Option<String>,
    /// The CCID interface number, if there is one.
    pub ccid_interface: Option<u8>,
}

/// Lists the USB devices that are smart-card readers (a CCID interface) or Nitrokey HSMs.
/// No USB (or no access to it) is an empty list, not an error.
pub fn list_devices() -> Vec<UsbDeviceInfo> {
    let Ok(context) = Context::new() else {
        return Vec::new();
    };
    let Ok(devices) = context.devices() else {
        return Vec::new();
    };
    devices.iter().filter_map(|d| describe(&d)).collect()
}

fn describe<T: UsbContext>(device: &Device<T>) -> Option<UsbDeviceInfo> {
    let descriptor = device.device_descriptor().ok()?;
    let ids = (descriptor.vendor_id(), descriptor.product_id());
    let ccid_interface = ccid_interface(device).map(|c| c.number);
    if ccid_interface.is_none() && ids != NITROKEY_HSM {
        return None;
    }
    let (manufacturer, product, serial) = match device.open() {
        Ok(handle) => (
            handle.read_manufacturer_string_ascii(&descriptor).ok(),
            handle.read_product_string_ascii(&descriptor).ok(),
            handle
                .read_serial_number_string_ascii(&descriptor)
                .ok()
                .map(|s| s.trim_end_matches(['\0', ' ']).to_owned()),
        ),
        Err(_) => (None, None, None),
    };
    Some(UsbDeviceInfo {
        bus: device.bus_number(),
        address: device.address(),
        path: port_path(device),
        vendor_id: ids.0,
        product_id: ids.1,
        manufacturer: manufacturer.map(|s| s.trim_end_matches('\0').to_owned()),
        product,
        serial,
        ccid_interface,
    })
}

fn port_path<T: UsbContext>(device: &Device<T>) -> String {
    let ports = device.port_numbers().unwrap_or_default();
    let ports: Vec<String> = ports.iter().map(u8::to_string).collect();
    format!("{}-{}", device.bus_number(), ports.join("."))
}

/// Where a CCID interface is: its number, endpoints and class descriptor.
struct CcidInterface {
    number: u8,
    setting: u8,
    bulk_in: u8,
    bulk_out: u8,
    descriptor: Option<ClassDescriptorRepr>,
}

fn ccid_interface<T: UsbContext>(device: &Device<T>) -> Option<CcidInterface> {
    let config = device.active_config_descriptor().ok()?;
    for interface in config.interfaces() {
        for alt in interface.descriptors() {
            if alt.class_code() != CCID_CLASS {
                continue;
            }
            let mut bulk_in = None;
            let mut bulk_out = None;
            let mut extra_descriptor = None;
            for ep in alt.endpoint_descriptors() {
                if ep.transfer_type() == TransferType::Bulk {
                    match ep.direction() {
                        Direction::In => bulk_in = bulk_in.or(Some(ep.address())),
                        Direction::Out => bulk_out = bulk_out.or(Some(ep.address())),
                    }
                }
                // Some old readers put the class descriptor after an endpoint.
                extra_descriptor =
                    extra_descriptor.or_else(|| ep.extra().and_then(find_class_descriptor));
            }
            let (Some(bulk_in), Some(bulk_out)) = (bulk_in, bulk_out) else {
                continue;
            };
            return Some(CcidInterface {
                number: alt.interface_number(),
                setting: alt.setting_number(),
                bulk_in,
                bulk_out,
                descriptor: find_class_descriptor(alt.extra()).or(extra_descriptor),
            });
        }
    }
    None
}

/// The CCID class descriptor (54 bytes, type 21h, CCID Rev 1.1 §5.1) among the descriptors
/// in `extra`.
fn find_class_descriptor(extra: &[u8]) -> Option<ClassDescriptorRepr> {
    let mut rest = extra;
    while let [len, _, ..] = rest {
        let len = usize::from(*len);
        if len < 2 {
            return None;
        }
        let (one, next) = rest.split_at_checked(len)?;
        if let Ok(repr) =
            ClassDescriptor::new_checked(one).and_then(|d| ClassDescriptorRepr::parse(&d))
        {
            return Some(repr);
        }
        rest = next;
    }
    None
}

/// A claimed CCID interface's bulk endpoints through libusb.
pub struct RusbPipe {
    handle: DeviceHandle<Context>,
    interface: u8,
    bulk_in: u8,
    bulk_out: u8,
}

impl fmt::Debug for RusbPipe {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RusbPipe")
            .field("interface", &self.interface)
            .field("bulk_in", &self.bulk_in)
            .field("bulk_out", &self.bulk_out)
            .finish_non_exhaustive()
    }
}

impl Drop for RusbPipe {
    fn drop(&mut self) {
        let _ = self.handle.release_interface(self.interface);
    }
}

impl UsbPipe for RusbPipe {
    fn bulk_out(&mut self, data: &[u8], timeout: Duration) -> Result<(), TransportError> {
        let written = self
            .handle
            .write_bulk(self.bulk_out, data, timeout)
            .map_err(|e| usb_error("bulk OUT", e))?;
        if written != data.len() {
            return Err(TransportError::new(
                TransportErrorKind::Protocol,
                format!("bulk OUT: {written} of {} bytes written", data.len()),
            ));
        }
        Ok(())
    }

    fn bulk_in(&mut self, buffer: &mut [u8], timeout: Duration) -> Result<usize, TransportError> {
        self.handle
            .read_bulk(self.bulk_in, buffer, timeout)
            .map_err(|e| usb_error("bulk IN", e))
    }
}

/// The transport error for a libusb error.
pub fn usb_error(what: &str, e: rusb::Error) -> TransportError {
    let (kind, text) = match e {
        rusb::Error::Timeout => (TransportErrorKind::Timeout, "timed out"),
        rusb::Error::NoDevice => (TransportErrorKind::ReaderGone, "the device is gone"),
        rusb::Error::Busy => (
            TransportErrorKind::Busy,
            "the interface is claimed by another program (pcscd? stop it or use PC/SC)",
        ),
        rusb::Error::Access => (
            TransportErrorKind::Other,
            "permission denied (install the udev rule, or run as root)",
        ),
        rusb::Error::Pipe | rusb::Error::Overflow => (
            TransportErrorKind::Protocol,
            "the endpoint stalled or overflowed",
        ),
        _ => (TransportErrorKind::Other, "libusb failed"),
    };
    TransportError::new(kind, format!("{what}: {text}")).with_source(e)
}

/// Opens the CCID interface of the device `choice` names and powers its card on.
pub fn open(
    choice: &DeviceChoice,
    config: CcidConfig,
) -> Result<CcidTransport<RusbPipe>, OpenError> {
    let context = Context::new().map_err(|e| OpenError::Transport(usb_error("libusb", e)))?;
    let devices = context
        .devices()
        .map_err(|e| OpenError::Transport(usb_error("listing USB devices", e)))?;
    let mut found = None;
    for device in devices.iter() {
        let Ok(descriptor) = device.device_descriptor() else {
            continue;
        };
        let matches = match choice {
            DeviceChoice::VidPid(v, p) => {
                descriptor.vendor_id() == *v && descriptor.product_id() == *p
            }
            DeviceChoice::Path(path) => port_path(&device) == *path,
            DeviceChoice::Serial(serial) => describe(&device)
                .and_then(|d| d.serial)
                .is_some_and(|s| s == *serial),
        };
        if matches {
            found = Some(device);
            break;
        }
    }
    let device = found.ok_or_else(|| OpenError::NoUsbDevice {
        choice: choice.to_string(),
    })?;
    let interface = ccid_interface(&device).ok_or_else(|| {
        OpenError::Transport(TransportError::new(
            TransportErrorKind::Other,
            format!("{choice} has no CCID interface with bulk endpoints"),
        ))
    })?;
    let descriptor = interface.descriptor.ok_or_else(|| {
        OpenError::Transport(TransportError::new(
            TransportErrorKind::Protocol,
            format!("{choice} has no valid CCID class descriptor"),
        ))
    })?;
    let handle = device
        .open()
        .map_err(|e| OpenError::Transport(usb_error("opening the device", e)))?;
    // Not supported on every platform; claiming tells whether it matters.
    let _ = handle.set_auto_detach_kernel_driver(true);
    handle
        .claim_interface(interface.number)
        .map_err(|e| OpenError::Transport(usb_error("claiming the CCID interface", e)))?;
    if interface.setting != 0 {
        handle
            .set_alternate_setting(interface.number, interface.setting)
            .map_err(|e| OpenError::Transport(usb_error("selecting the CCID interface", e)))?;
    }
    let pipe = RusbPipe {
        handle,
        interface: interface.number,
        bulk_in: interface.bulk_in,
        bulk_out: interface.bulk_out,
    };
    Ok(CcidTransport::open(pipe, descriptor, config)?)
}
