//! A faulty card line (FaultyLine around the clean one, seeded): bit flips, double flips and
//! dropped characters are repaired by T=1 error recovery (ISO/IEC 7816-3 §11.6.3); a card
//! pulled by the line at a modelled time, or gone mute, gives ICC mute, never a hang.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod support;

use std::time::Duration;

use proptest::prelude::*;
use support::*;
use tessera_board::{BoardConfig, Faults, FaultyLine, VirtualBoard};
use tessera_bridge::{BootPolicy, Exchange, SlotState, CHR_CHARS};
use tessera_card::contacts::{BusyTimes, ContactsConfig};
use tessera_card::virtual_card::AtrProfile;

fn faulty_board(
    exchange: Exchange,
    faults: Faults,
    seed: u64,
    contacts: ContactsConfig,
) -> (
    VirtualBoard<FaultyLine>,
    tessera_card::memory::MemoryStorage,
) {
    let (card, memory) = card_with(AtrProfile::V3, contacts);
    let config = BoardConfig::new(BootPolicy::RequireCard, exchange).with_card(card);
    let line = FaultyLine::new(tessera_board::CleanLine, faults, seed);
    (VirtualBoard::with_line(config, line).unwrap(), memory)
}

/// Writes and reads back a 1 KiB file `rounds` times, with the PIN status in between; every
/// answer must be right. Returns the modelled time it took.
fn workload(b: &mut VirtualBoard<FaultyLine>, host: &mut Host, rounds: usize) -> Duration {
    let start = b.now();
    for round in 0..rounds {
        let content: Vec<u8> = (0..1024usize).map(|i| (i * 13 + round) as u8).collect();
        host.check_bytes(b, &update_binary(0x2F10, 0, &content), 0x9000);
        let read = host.check_bytes(b, &read_binary(0x2F10, 1024), 0x9000);
        assert!(read == content, "round {round}: the file read back differs");
        host.check(b, PIN_STATUS, 0x9000);
    }
    b.now() - start
}

#[test]
fn a_faulty_line_still_delivers_through_t1_recovery() {
    let (mut b, _) = faulty_board(
        Exchange::ExtendedApdu,
        Faults::NONE,
        0x5EED,
        ContactsConfig::default(),
    );
    let mut host = Host::default();
    initialised(&mut b, &mut host);
    host.check(&mut b, VERIFY, 0x9000);
    let clean = workload(&mut b, &mut host, 3);

    // From now on: per character, 1 in 5 000 flipped bits, 1 in 10 000 double flips (a wrong
    // byte with good parity: only the LRC sees it), 1 in 5 000 lost.
    let faults = Faults::per_character(2e-4, 1e-4, 2e-4).starting_at(b.now());
    b.line_mut().set_faults(faults);
    let faulty = workload(&mut b, &mut host, 30);
    let stats = b.line().stats();
    println!("{stats:?}");
    println!(
        "3 clean rounds {}; 30 rounds with faults {} ({:.2} x the clean time per round)",
        ms(clean),
        ms(faulty),
        faulty.as_secs_f64() / 10.0 / clean.as_secs_f64()
    );
    assert!(
        stats.flipped > 0 && stats.dropped > 0 && stats.corrupted > 0,
        "every kind of fault happened: {stats:?}"
    );
    assert_eq!(b.stalls(), 0);
}

/// Faults from power-on: the ATR, the PPS and the serial read suffer too. The bridge retries
/// (activation every second, the serial read up to 10 times) and attaches with the right
/// serial, never a garbled one.
#[test]
fn a_faulty_line_during_boot_still_attaches_with_the_right_serial() {
    for seed in 1..=4 {
        let (mut b, memory) = faulty_board(
            Exchange::Tpdu,
            Faults::per_character(2e-3, 5e-4, 2e-3),
            seed,
            ContactsConfig::default(),
        );
        b.power_on();
        assert!(
            b.run_until_true(Duration::from_secs(120), |b| b.is_attached()),
            "seed {seed}: no attach in 2 minutes: {:?}",
            b.line().stats()
        );
        assert_eq!(b.serial(), Some(&chr(&memory)[..CHR_CHARS]), "seed {seed}");
        println!(
            "seed {seed}: attached after {} with {:?}",
            ms(b.attached_at().unwrap()),
            b.line().stats()
        );
    }
}

fn slow_challenge() -> ContactsConfig {
    ContactsConfig {
        busy: BusyTimes {
            by_ins: vec![(0x84, Duration::from_secs(5))],
            ..BusyTimes::default()
        },
        ..ContactsConfig::default()
    }
}

/// The line pulls the card at a modelled time while it works on a command, and puts it back
/// later: ICC mute within BWT of the pull; after the insertion the card works again.
#[test]
fn a_card_pulled_by_the_line_gives_icc_mute_and_comes_back() {
    let (mut b, _) = faulty_board(Exchange::ExtendedApdu, Faults::NONE, 1, slow_challenge());
    let mut host = Host::default();
    boot(&mut b);
    host.power_on(&mut b);
    host.check(&mut b, SELECT, 0x9000);
    let bwt = b.card().unwrap().bwt().unwrap();
    let pull = b.now() + Duration::from_millis(1_200);
    b.line_mut().pull_card_at(pull);
    b.line_mut().insert_card_at(pull + Duration::from_secs(10));
    let failed = host.apdu(&mut b, &get_challenge(8)).unwrap_err();
    assert_eq!(failed[7] & 0xC0, 0x40, "failed");
    assert_eq!(failed[8], 0xFE, "ICC_MUTE");
    let after = b.now() - pull;
    println!("ICC mute {} after the pull (BWT {})", ms(after), ms(bwt));
    assert!(after <= bwt);
    assert!(b.run_until_true(Duration::from_secs(8), |b| {
        b.bridge().unwrap().slot() == SlotState::Absent
    }));
    assert!(!b.is_card_present());

    b.run_until(pull + Duration::from_secs(11));
    assert!(b.is_card_present());
    let atr = host.power_on(&mut b);
    assert_eq!(atr[7], 0x00, "IccPowerOn after the insertion");
    host.check(&mut b, SELECT, 0x9000);
    assert_eq!(b.line().stats().socket_events, 2);
}

/// The card goes mute (its I/O line lost, or a hung card): the bridge's T=1 recovery gives up
/// and the host gets ICC mute instead of a hang; once the card speaks again, a new IccPowerOn
/// brings it back.
#[test]
fn a_mute_card_gives_icc_mute_not_a_hang() {
    let (mut b, _) = faulty_board(
        Exchange::ExtendedApdu,
        Faults::NONE,
        1,
        ContactsConfig::default(),
    );
    let mut host = Host::default();
    boot(&mut b);
    host.power_on(&mut b);
    host.check(&mut b, SELECT, 0x9000);
    let from = b.now();
    b.line_mut()
        .mute_card(from, Some(from + Duration::from_secs(20)));
    let failed = host.apdu(&mut b, &get_challenge(8)).unwrap_err();
    assert_eq!(failed[7] & 0xC0, 0x40, "failed");
    assert_eq!(failed[8], 0xFE, "ICC_MUTE");
    println!(
        "mute card: ICC mute {} after the command ({} time extensions on the way)",
        ms(b.now() - from),
        host.time_extensions.len()
    );
    b.run_until(from + Duration::from_secs(21));
    let atr = host.power_on(&mut b);
    assert_eq!(atr[7], 0x00, "IccPowerOn once the card speaks again");
    host.check(&mut b, SELECT, 0x9000);
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 12, ..ProptestConfig::default() })]

    /// Whatever the seed and the fault rates, every APDU ends: the right answer, or a CCID
    /// error the host can act on. Never a panic, never a stall.
    #[test]
    fn every_apdu_ends_on_any_faulty_line(
        seed in any::<u64>(),
        flip in 0.0..0.01f64,
        double in 0.0..0.005f64,
        drop in 0.0..0.01f64,
    ) {
        let (mut b, _) = faulty_board(
            Exchange::ExtendedApdu,
            Faults::NONE,
            seed,
            ContactsConfig::default(),
        );
        let mut host = Host::default();
        boot(&mut b);
        let atr = host.power_on(&mut b);
        prop_assert_eq!(atr[7], 0);
        let now = b.now();
        b.line_mut().set_faults(Faults::per_character(flip, double, drop).starting_at(now));
        let mut delivered = 0;
        for _ in 0..5 {
            match host.apdu(&mut b, &hex(SELECT)) {
                Ok(response) => {
                    // Success, or the applet's answer to a command garbled beyond the LRC.
                    prop_assert!(response.len() >= 2);
                    delivered += 1;
                }
                Err(header) => {
                    prop_assert_eq!(header[0], 0x80);
                    prop_assert_eq!(header[7] & 0xC0, 0x40);
                    // The card may need a new activation after a failed exchange.
                    host.power_on(&mut b);
                }
            }
        }
        prop_assert_eq!(b.stalls(), 0);
        println!("flip {flip:.4} double {double:.4} drop {drop:.4}: {delivered}/5 delivered");
    }
}
