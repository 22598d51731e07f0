//! sim_swap: cards moved between sockets across power cycles. Serial, keys and PIN counters
//! follow the card, because everything lives on the card: the board keeps nothing and binds
//! to nothing.

use tessera_conformance::{ensure, other_board, Case, Dut, Failed, Outcome, Session, BOOT};
use tessera_rig::config::Board;
use tessera_rig::{Need, Rig};
use tessera_sc_hsm::{KeyAlgorithm, PinRole, PinStatus};

pub const CASES: &[Case] = &[
    Case {
        suite: "sim_swap",
        name: "a_b_a_across_power_cycles",
        needs: &[Need::PowerSwitch, Need::SimSwitch, Need::Cards(2)],
        skip: tessera_conformance::user_pin_known,
        run: a_b_a,
    },
    Case {
        suite: "sim_swap",
        name: "no_binding_between_board_and_card",
        needs: &[Need::PowerSwitch, Need::SimSwitch, Need::Cards(1)],
        skip: needs_another_board,
        run: no_binding,
    },
];

fn needs_another_board(rig: &Rig, board: &Board) -> Option<String> {
    other_board(rig, &board.name).is_none().then(|| {
        format!(
            "rig {} has no second board whose power and SIM it switches",
            rig.description().name
        )
    })
}

/// What the host can see of a card without its PIN.
#[derive(Debug, PartialEq)]
struct Seen {
    usb_serial: Option<String>,
    serial: String,
    keys: Vec<(u8, Option<String>)>,
    user: PinStatus,
    so: PinStatus,
}

fn look(session: &mut Session, usb_serial: Option<String>) -> Result<Seen, Failed> {
    let mut keys: Vec<(u8, Option<String>)> = session
        .list_keys()?
        .into_iter()
        .map(|k| (k.id, k.label))
        .collect();
    keys.sort();
    Ok(Seen {
        usb_serial,
        serial: session.serial()?,
        keys,
        user: session.pin_status(PinRole::User)?,
        so: session.pin_status(PinRole::So)?,
    })
}

/// Boots `board` with `slot`'s card and looks at it.
fn boot_and_look(rig: &mut Rig, board: &str, slot: &str) -> Result<Seen, Failed> {
    rig.power_off(board)?;
    rig.select_sim(board, Some(slot))?;
    rig.power_on(board)?;
    let seen = rig.wait_enumerated(board, BOOT)?;
    let via = rig.default_via(board);
    let transport = rig.open_transport(board, via)?;
    let mut session = Session::open(transport)?;
    look(&mut session, seen.serial)
}

fn label() -> String {
    format!("tessera-conformance-{}", std::process::id())
}

/// A, then B, then A again: each time the serial, keys and counters are the card's; a key
/// made on A is absent on B and there again on A.
fn a_b_a(d: &mut Dut) -> Outcome {
    let a = d.card_slot(0)?;
    let b = d.card_slot(1)?;
    let pin_a = d.user_pin(&a)?;
    // Make a key on A.
    d.boot_with(&a)?;
    let key = {
        let mut session = d.session()?;
        session.verify(&pin_a)?;
        session.generate_key(KeyAlgorithm::EcP256, None, Some(&label()))?
    };
    let result = (|| {
        let board = d.board.clone();
        let a1 = boot_and_look(&mut d.rig, &board, &a)?;
        ensure(a1.keys.iter().any(|(id, _)| *id == key.id), || {
            format!("the key made on A ({}) is not listed on A", key.id)
        })?;
        let b1 = boot_and_look(&mut d.rig, &board, &b)?;
        ensure(b1.serial != a1.serial, || {
            format!("cards A and B report the same serial {}", a1.serial)
        })?;
        ensure(
            !b1.keys.iter().any(|(_, l)| l.as_deref() == Some(&*label())),
            || "the key made on A is listed on B".into(),
        )?;
        if !d.profile.enumerates_without_card() {
            ensure(b1.usb_serial != a1.usb_serial, || {
                format!("the USB serial {:?} did not follow the card", a1.usb_serial)
            })?;
        }
        let a2 = boot_and_look(&mut d.rig, &board, &a)?;
        ensure(a2 == a1, || {
            format!("card A changed across the swap: {a1:?} then {a2:?}")
        })?;
        let b2 = boot_and_look(&mut d.rig, &board, &b)?;
        ensure(b2 == b1, || {
            format!("card B changed across the swap: {b1:?} then {b2:?}")
        })?;
        println!(
            "A {} and B {} each kept serial, keys and counters",
            a1.serial, b1.serial
        );
        Ok(())
    })();
    // Leave card A as it was.
    d.boot_with(&a)?;
    let mut session = d.session()?;
    session.verify(&pin_a)?;
    session.delete_key(key.id)?;
    result
}

/// A card moved to another board works there as it did here: same serial, keys, counters.
fn no_binding(d: &mut Dut) -> Outcome {
    let a = d.first_card()?;
    let other = other_board(&d.rig, &d.board)
        .ok_or_else(|| Failed("no second board on this rig".into()))?;
    let board = d.board.clone();
    let here = boot_and_look(&mut d.rig, &board, &a)?;
    d.rig.power_off(&board)?;
    d.rig.select_sim(&board, None)?;
    let there = boot_and_look(&mut d.rig, &other, &a)?;
    d.rig.power_off(&other)?;
    d.rig.select_sim(&other, None)?;
    let usb_differs = here.usb_serial != there.usb_serial;
    let (here_card, there_card) = (
        Seen {
            usb_serial: None,
            ..here
        },
        Seen {
            usb_serial: None,
            ..there
        },
    );
    ensure(here_card == there_card, || {
        format!("card {a} differs between {board} and {other}: {here_card:?} / {there_card:?}")
    })?;
    println!(
        "card {a} is the same card on {board} and {other} (USB serials differ: {usb_differs})"
    );
    Ok(())
}
