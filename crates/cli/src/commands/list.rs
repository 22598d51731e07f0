//! `tessera list`: PC/SC readers and USB smart-card devices, with the serials of the
//! SmartCard-HSMs in them.

use anyhow::{Context, Result};
use clap::Args;
use serde::Serialize;
use tessera_host::pcsc::{self, ReaderInfo};
use tessera_host::usb::{self, NITROKEY_HSM};
use tessera_host::{PcscTransport, ReaderChoice, UsbDeviceInfo};
use tessera_sc_hsm::ScHsm;

use crate::exit::Exit;
use crate::output;

/// Arguments of `tessera list`.
#[derive(Debug, Args)]
pub struct ListArgs {
    /// Print JSON (fields: readers: [{index, name, card_present, atr, sc_hsm, nitrokey,
    /// default, serial}], usb_devices: [{path, bus, address, vendor_id, product_id,
    /// manufacturer, product, serial, ccid_interface, nitrokey_hsm}]).
    #[arg(long)]
    json: bool,
}

#[derive(Debug, Serialize)]
struct ListJson {
    readers: Vec<ReaderJson>,
    usb_devices: Vec<UsbJson>,
}

#[derive(Debug, Serialize)]
struct ReaderJson {
    index: usize,
    name: String,
    card_present: bool,
    /// Upper-case hex.
    atr: Option<String>,
    sc_hsm: bool,
    nitrokey: bool,
    /// Whether commands without --reader use this reader.
    default: bool,
    /// The SmartCard-HSM's serial, when one is in the reader and answers.
    serial: Option<String>,
}

#[derive(Debug, Serialize)]
struct UsbJson {
    path: String,
    bus: u8,
    address: u8,
    /// 4 hex digits.
    vendor_id: String,
    product_id: String,
    manufacturer: Option<String>,
    product: Option<String>,
    serial: Option<String>,
    ccid_interface: Option<u8>,
    nitrokey_hsm: bool,
}

/// Runs `tessera list`.
pub fn run(args: &ListArgs) -> Result<Exit> {
    let readers = pcsc::list_readers().context("cannot list the PC/SC readers")?;
    let default = pcsc::choose_reader(&readers, &ReaderChoice::Default)
        .ok()
        .map(|r| r.index);
    let readers: Vec<ReaderJson> = readers
        .iter()
        .map(|r| ReaderJson {
            index: r.index,
            name: r.name.clone(),
            card_present: r.card_present,
            atr: r.atr.clone(),
            sc_hsm: r.sc_hsm,
            nitrokey: r.nitrokey,
            default: default == Some(r.index),
            serial: reader_serial(r),
        })
        .collect();
    let usb_devices: Vec<UsbJson> = usb::list_devices().iter().map(usb_json).collect();
    if args.json {
        output::print_json(&ListJson {
            readers,
            usb_devices,
        })?;
        return Ok(Exit::Ok);
    }
    let mut text = String::new();
    if readers.is_empty() {
        text.push_str("no readers: is pcscd running, and is the token plugged in?\n");
    } else {
        text.push_str("PC/SC readers (--reader NAME|INDEX):\n");
        for r in &readers {
            let card = match (r.card_present, r.sc_hsm, &r.serial) {
                (false, _, _) => "no card".to_owned(),
                (true, true, Some(serial)) => format!("SmartCard-HSM {serial}"),
                (true, true, None) => "SmartCard-HSM (serial unreadable)".to_owned(),
                (true, false, _) => format!(
                    "a card that is not a SmartCard-HSM (ATR {})",
                    r.atr.as_deref().unwrap_or("unknown")
                ),
            };
            text.push_str(&format!(
                "  #{} {:?}: {card}{}\n",
                r.index,
                r.name,
                if r.default { " [default]" } else { "" }
            ));
        }
    }
    if usb_devices.is_empty() {
        text.push_str(&format!(
            "no USB smart-card devices: no Nitrokey HSM ({:04x}:{:04x}) or other CCID reader \
             is visible on USB\n",
            NITROKEY_HSM.0, NITROKEY_HSM.1
        ));
    } else {
        text.push_str("USB devices (--usb VID:PID|SERIAL|BUS-PORT):\n");
        for d in &usb_devices {
            let what = [d.manufacturer.as_deref(), d.product.as_deref()]
                .into_iter()
                .flatten()
                .collect::<Vec<_>>()
                .join(" ");
            text.push_str(&format!(
                "  {} {}:{} {}{}{}\n",
                d.path,
                d.vendor_id,
                d.product_id,
                if what.is_empty() { "(unnamed)" } else { &what },
                d.serial
                    .as_deref()
                    .map(|s| format!(", serial {s}"))
                    .unwrap_or_default(),
                if d.ccid_interface.is_none() {
                    " (no CCID interface)"
                } else {
                    ""
                }
            ));
        }
    }
    output::print(&text)?;
    Ok(Exit::Ok)
}

/// The serial of the SmartCard-HSM in `reader`, read from its device certificate; `None`
/// when there is none, or it does not answer (listing never fails for one reader).
fn reader_serial(reader: &ReaderInfo) -> Option<String> {
    if !reader.card_present || !(reader.sc_hsm || reader.nitrokey) {
        return None;
    }
    let transport = PcscTransport::open(&ReaderChoice::Name(reader.name.clone())).ok()?;
    ScHsm::open(transport).ok()?.serial().ok()
}

fn usb_json(d: &UsbDeviceInfo) -> UsbJson {
    UsbJson {
        path: d.path.clone(),
        bus: d.bus,
        address: d.address,
        vendor_id: format!("{:04x}", d.vendor_id),
        product_id: format!("{:04x}", d.product_id),
        manufacturer: d.manufacturer.clone(),
        product: d.product.clone(),
        serial: d.serial.clone(),
        ccid_interface: d.ccid_interface,
        nitrokey_hsm: (d.vendor_id, d.product_id) == NITROKEY_HSM,
    }
}
