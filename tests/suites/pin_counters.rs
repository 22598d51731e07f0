//! pin_counters: the user-PIN countdown and its status words, persistence across power cycles
//! and SIM moves, unblocking with the SO-PIN, the SO-PIN countdown, and what still works once
//! the SO-PIN is blocked (sc-hsm-protocol.md §4). All of it is the card's; the board must only
//! carry it faithfully.
//!
//! Cases that present wrong PINs restore the card before they end (unblock with the SO-PIN),
//! so they may run on a rig's precious cards; the SO-PIN countdown blocks the SO-PIN for good
//! and runs only on virtual cards or cards marked `sacrificial = true`.

use tessera_conformance::{
    ensure, expect_sw, tries, wrong_pin, wrong_so_pin, Case, Dut, Failed, Outcome, Session,
};
use tessera_rig::Need;
use tessera_sc_hsm::{EcdsaFormat, InitParams, KeyAlgorithm, PinRole, PinStatus, SignMechanism};

pub const CASES: &[Case] = &[
    Case {
        suite: "pin_counters",
        name: "user_pin_countdown_persists",
        needs: &[Need::PowerSwitch, Need::SimSwitch, Need::Cards(1)],
        skip: tessera_conformance::both_pins_known,
        run: user_pin_countdown_persists,
    },
    Case {
        suite: "pin_counters",
        name: "unblock_with_so_pin_restores_the_counter",
        needs: &[Need::PowerSwitch, Need::SimSwitch, Need::Cards(1)],
        skip: tessera_conformance::both_pins_known,
        run: unblock_restores,
    },
    Case {
        suite: "pin_counters",
        name: "so_pin_blocked_leaves_user_pin_and_signing",
        needs: &[Need::PowerSwitch, Need::SimSwitch, Need::SacrificialCard],
        skip: tessera_conformance::sacrificial_pins_known,
        run: so_pin_blocked,
    },
];

fn tries_left(session: &mut Session, role: PinRole) -> Result<u8, Failed> {
    match session.pin_status(role)? {
        PinStatus::TriesLeft { tries_left } => Ok(tries_left),
        other => Err(Failed(format!(
            "{role} PIN status {other:?}, expected tries left"
        ))),
    }
}

/// Boots the first card with its user PIN verified once (so its counter is at its maximum)
/// and returns the maximum, after a power cycle that ends the verified state.
fn fresh_counter(d: &mut Dut, slot: &str) -> Result<u8, Failed> {
    let pin = d.user_pin(slot)?;
    d.boot_with(slot)?;
    d.session()?.verify(&pin)?;
    d.power_cycle()?;
    tries_left(&mut d.session()?, PinRole::User)
}

/// The countdown 63C2, 63C1, 6983 (for a 3-try PIN; 63C(n-1) down to 6983 in general), the
/// counter kept across a power cycle and a SIM move, the right PIN refused once blocked,
/// then the card restored with the SO-PIN.
fn user_pin_countdown_persists(d: &mut Dut) -> Outcome {
    let slot = d.first_card()?;
    let pin = d.user_pin(&slot)?;
    let so = d.so_pin(&slot)?;
    let wrong = wrong_pin(&pin)?;
    let max = fresh_counter(d, &slot)?;
    ensure(max >= 2, || {
        format!("the user PIN allows {max} tries; this case needs 2 or more")
    })?;
    let so_before = d.session()?.pin_status(PinRole::So)?;
    let mut left = max;
    let mut step = 0;
    while left > 0 {
        let mut session = d.session()?;
        left -= 1;
        let expected = if left == 0 { 0x6983 } else { tries(left) };
        expect_sw(session.verify(&wrong), expected, "a wrong user PIN")?;
        drop(session);
        // Between presentations: a power cycle, then a SIM move (out and back in), then plain.
        match step {
            0 => {
                d.power_cycle()?;
            }
            1 => {
                d.rig.power_off(&d.board)?;
                d.rig.select_sim(&d.board, None)?;
                d.boot_with(&slot)?;
            }
            _ => {}
        }
        step += 1;
        let status = d.session()?.pin_status(PinRole::User)?;
        let want = if left == 0 {
            PinStatus::Blocked
        } else {
            PinStatus::TriesLeft { tries_left: left }
        };
        ensure(status == want, || {
            format!("after {step} wrong PIN(s) and a reboot: {status:?}, expected {want:?}")
        })?;
    }
    let mut session = d.session()?;
    expect_sw(
        session.verify(&pin),
        0x6983,
        "the right user PIN on a blocked PIN",
    )?;
    session.unblock(&so, None)?;
    ensure(tries_left(&mut session, PinRole::User)? == max, || {
        "unblocking did not restore the counter".into()
    })?;
    session.verify(&pin)?;
    let so_after = session.pin_status(PinRole::So)?;
    ensure(so_after == so_before, || {
        format!("the SO-PIN counter moved: {so_before:?} then {so_after:?}")
    })?;
    println!(
        "user PIN: {max} tries counted down to blocked across reboots and a SIM move; unblocked"
    );
    Ok(())
}

/// One wrong user PIN, then RESET RETRY COUNTER with the SO-PIN: the counter is back at its
/// maximum and the SO-PIN counter did not move.
fn unblock_restores(d: &mut Dut) -> Outcome {
    let slot = d.first_card()?;
    let pin = d.user_pin(&slot)?;
    let so = d.so_pin(&slot)?;
    let max = fresh_counter(d, &slot)?;
    let mut session = d.session()?;
    let so_before = session.pin_status(PinRole::So)?;
    expect_sw(
        session.verify(&wrong_pin(&pin)?),
        tries(max - 1),
        "a wrong user PIN",
    )?;
    session.unblock(&so, None)?;
    drop(session);
    d.power_cycle()?;
    let mut session = d.session()?;
    let left = tries_left(&mut session, PinRole::User)?;
    ensure(left == max, || {
        format!("after unblocking: {left} tries, expected {max}")
    })?;
    let so_after = session.pin_status(PinRole::So)?;
    ensure(so_after == so_before, || {
        format!("the right SO-PIN cost a try: {so_before:?} then {so_after:?}")
    })?;
    session.verify(&pin)?;
    Ok(())
}

/// The SO-PIN counted down from 15 (or what is left) to blocked, one wrong presentation at a
/// time; then, across a power cycle: the user PIN and signing work, while INITIALIZE, the
/// unblock and an SO-PIN change are refused with 6983 even with the right SO-PIN.
fn so_pin_blocked(d: &mut Dut) -> Outcome {
    let slot = d
        .rig
        .expendable_slot()
        .map(|s| s.name.clone())
        .ok_or_else(|| Failed("no sacrificial card".into()))?;
    let pin = d.user_pin(&slot)?;
    let so = d.so_pin(&slot)?;
    let wrong = wrong_so_pin(&so);
    d.boot_with(&slot)?;
    let mut session = d.session()?;
    let start = match session.pin_status(PinRole::So)? {
        PinStatus::TriesLeft { tries_left } => tries_left,
        PinStatus::Blocked => {
            return Err(Failed(format!(
                "the SO-PIN of the card in slot {slot} is already blocked (an earlier run): \
                 replace the sacrificial card"
            )))
        }
        other => return Err(Failed(format!("SO-PIN status {other:?}"))),
    };
    ensure(start <= 15, || {
        format!("the SO-PIN has {start} tries; the card allows 15")
    })?;
    if d.rig.description().backend == tessera_rig::config::BackendKind::Virtual {
        ensure(start == 15, || {
            format!("a new card's SO-PIN has {start} tries, expected 15")
        })?;
    }
    session.verify(&pin)?;
    let key = session.generate_key(KeyAlgorithm::EcP256, None, Some("so-blocked"))?;
    for left in (0..start).rev() {
        let expected = if left == 0 { 0x6983 } else { tries(left) };
        expect_sw(session.unblock(&wrong, None), expected, "a wrong SO-PIN")?;
    }
    drop(session);
    d.power_cycle()?;
    let mut session = d.session()?;
    let so_status = session.pin_status(PinRole::So)?;
    ensure(so_status == PinStatus::Blocked, || {
        format!("after the countdown and a reboot the SO-PIN is {so_status:?}")
    })?;
    session.verify(&pin)?;
    let signature = session.sign(
        key.id,
        SignMechanism::EcdsaHash,
        &[0x5A; 32],
        EcdsaFormat::Der,
    )?;
    ensure(!signature.is_empty(), || "an empty signature".into())?;
    expect_sw(
        session.initialise(&InitParams::new(so.clone(), pin.clone())),
        0x6983,
        "INITIALIZE with the right SO-PIN once it is blocked",
    )?;
    expect_sw(
        session.unblock(&so, None),
        0x6983,
        "RESET RETRY COUNTER with the right SO-PIN once it is blocked",
    )?;
    expect_sw(
        session.change_so_pin(&so, &wrong),
        0x6983,
        "changing a blocked SO-PIN",
    )?;
    // The user PIN still works after those refusals, and the key is still there.
    session.verify(&pin)?;
    ensure(session.key_info(key.id)?.is_some(), || {
        "the key is gone".into()
    })?;
    println!("SO-PIN counted down from {start} to blocked; user PIN and signing still work");
    Ok(())
}
