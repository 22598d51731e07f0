//! boot_without_sim: what a board does with no card, when a card arrives while it is powered,
//! and which USB serial string it shows.
//!
//! Expectations by firmware profile (hardware.md §B, §C):
//! - `stock` and `tessera-require-card`: no card, no USB device; a card pushed in while
//!   powered boots it; the USB serial string is the first 15 characters of the card's device
//!   certificate CHR (whose first 11 are the serial sc-hsm-tool shows).
//! - `tessera-reader`: enumerates at once with an empty slot; a card pushed in is found by
//!   its periodic activation and announced with NotifySlotChange (checked where the rig
//!   watches the interrupt endpoint: the virtual rig; on a real rig pcscd owns it); the USB
//!   serial string is the board's own and does not change with the card.

use tessera_conformance::{always, ensure, Case, Dut, Failed, Outcome, BOOT, STAY_OFF};
use tessera_rig::{Need, RigErrorKind, TransportOptions};

pub const CASES: &[Case] = &[
    Case {
        suite: "boot_without_sim",
        name: "no_sim",
        needs: &[Need::PowerSwitch, Need::SimSwitch],
        skip: always,
        run: no_sim,
    },
    Case {
        suite: "boot_without_sim",
        name: "sim_inserted_while_powered",
        needs: &[
            Need::PowerSwitch,
            Need::SimSwitch,
            Need::HotSwap,
            Need::Cards(1),
        ],
        skip: always,
        run: sim_inserted_while_powered,
    },
    Case {
        suite: "boot_without_sim",
        name: "usb_serial_string",
        needs: &[Need::PowerSwitch, Need::SimSwitch, Need::Cards(1)],
        skip: always,
        run: usb_serial_string,
    },
];

/// With no SIM: no USB device (require-card, stock), or a device whose slot is empty
/// (reader).
fn no_sim(d: &mut Dut) -> Outcome {
    d.power_up_with(None)?;
    if d.profile.enumerates_without_card() {
        d.rig.wait_enumerated(&d.board, BOOT).map_err(|e| {
            Failed(format!(
                "a reader-profile board must enumerate without a card: {e}"
            ))
        })?;
        match d.transport(TransportOptions::default()) {
            Ok(_) => Err(Failed("a card answered from an empty slot".into())),
            Err(e) => {
                println!("empty slot, as expected: {e}");
                Ok(())
            }
        }
    } else {
        match d.rig.wait_enumerated(&d.board, STAY_OFF) {
            Err(e) if e.kind() == RigErrorKind::Timeout => Ok(()),
            Ok(seen) => Err(Failed(format!(
                "enumerated without a card (serial {:?}); the {} profile must not",
                seen.serial, d.profile
            ))),
            Err(e) => Err(e.into()),
        }
    }
}

/// A card pushed into the socket of a powered board without one: the board boots
/// (require-card, stock) or finds it in its slot (reader), and the card works.
fn sim_inserted_while_powered(d: &mut Dut) -> Outcome {
    let slot = d.first_card()?;
    d.power_up_with(None)?;
    if d.profile.enumerates_without_card() {
        d.rig.wait_enumerated(&d.board, BOOT)?;
    } else {
        let early = d.rig.wait_enumerated(&d.board, BOOT);
        ensure(early.is_err(), || {
            "enumerated before a card was inserted".into()
        })?;
    }
    // What the board announced while empty; with a watched interrupt endpoint, the insertion
    // must come next as "present, changed".
    let watch =
        d.profile.enumerates_without_card() && d.rig.check(&d.board, Need::SlotChanges).is_ok();
    if watch {
        let before = d.rig.slot_changes(&d.board)?;
        ensure(before.iter().all(|c| !c.present), || {
            format!("an empty slot was announced as present: {before:?}")
        })?;
    }
    d.rig.insert_sim(&d.board, &slot)?;
    if watch {
        let mut announced = false;
        for _ in 0..20 {
            d.rig.pause(BOOT / 20);
            let changes = d.rig.slot_changes(&d.board)?;
            if changes.iter().any(|c| c.present && c.changed) {
                announced = true;
                break;
            }
        }
        ensure(announced, || {
            format!(
                "no NotifySlotChange \"present, changed\" within {} s of the insertion",
                BOOT.as_secs()
            )
        })?;
        println!("the insertion was announced with NotifySlotChange");
    }
    let seen = d
        .rig
        .wait_enumerated(&d.board, BOOT)
        .map_err(|e| Failed(format!("after the card was inserted: {e}")))?;
    // The reader finds the card by periodic activation: poll until it answers.
    let polls = 20;
    let mut last = String::new();
    for _ in 0..polls {
        match d.session() {
            Ok(mut session) => {
                let serial = session.serial()?;
                println!(
                    "card {serial} found after insertion; USB serial {:?}",
                    seen.serial
                );
                if !d.profile.enumerates_without_card() {
                    let usb = seen.serial.unwrap_or_default();
                    ensure(usb.starts_with(&serial), || {
                        format!("USB serial {usb:?} does not start with the card's {serial}")
                    })?;
                }
                return Ok(());
            }
            Err(e) => last = e.to_string(),
        }
        d.rig.pause(BOOT / polls);
    }
    Err(Failed(format!(
        "the inserted card did not answer within {} s: {last}",
        BOOT.as_secs()
    )))
}

/// The USB serial string for each card: the card's CHR (require-card, stock), or the board's
/// own, the same for every card (reader).
fn usb_serial_string(d: &mut Dut) -> Outcome {
    let mut seen_serials = Vec::new();
    let slots: Vec<String> = (0..2).filter_map(|n| d.card_slot(n).ok()).collect();
    for slot in &slots {
        let seen = d.boot_with(slot)?;
        let usb = seen
            .serial
            .ok_or_else(|| Failed("the board has no USB serial string".into()))?;
        let mut session = d.session()?;
        let certs = session.device_certificates()?;
        let card_serial = certs.serial.clone();
        if let Some(expected) = d
            .rig
            .description()
            .slot(slot)
            .and_then(|s| s.card.as_ref())
            .and_then(|c| c.serial.clone())
        {
            ensure(card_serial == expected, || {
                format!(
                    "slot {slot}: the card's serial is {card_serial}, the rig file says {expected}"
                )
            })?;
        }
        let chr15: String = certs.device_chr.chars().take(15).collect();
        if d.profile.enumerates_without_card() {
            ensure(usb != chr15, || {
                format!("slot {slot}: a reader-profile board shows the card's CHR {usb:?} as its serial")
            })?;
        } else {
            ensure(usb.trim_end_matches(['\0', ' ']) == chr15, || {
                format!(
                    "slot {slot}: USB serial {usb:?}, expected the first 15 characters of the CHR {:?}",
                    certs.device_chr
                )
            })?;
            ensure(usb.starts_with(&card_serial), || {
                format!("slot {slot}: USB serial {usb:?} does not start with the card's serial {card_serial}")
            })?;
        }
        println!("slot {slot}: card {card_serial}, USB serial {usb:?}");
        seen_serials.push(usb);
    }
    if d.profile.enumerates_without_card() {
        ensure(seen_serials.windows(2).all(|w| w[0] == w[1]), || {
            format!("a reader-profile board's serial changed with the card: {seen_serials:?}")
        })?;
    }
    Ok(())
}
