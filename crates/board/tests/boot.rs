//! Boot in modelled time under both policies, with and without a card: USB attach, the serial
//! string from the card's CHR, the slot as the host sees it, the PPS rate and IFSD reached.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod support;

use std::time::Duration;

use support::*;
use tessera_board::TraceEvent;
use tessera_bridge::{BootPhase, BootPolicy, Exchange, SlotState, CHR_CHARS};
use tessera_card::contacts::{ContactsConfig, LinkState};
use tessera_card::virtual_card::AtrProfile;
use tessera_iso7816_3::rate::FiDi;

/// Activations (VCC switched on) in the trace.
fn activations(board: &tessera_board::VirtualBoard) -> usize {
    board
        .trace()
        .iter()
        .filter(|e| e.event == TraceEvent::Vcc(true))
        .count()
}

#[test]
fn require_card_never_attaches_without_a_card_and_boots_once_one_is_inserted() {
    for exchange in [Exchange::Tpdu, Exchange::ExtendedApdu] {
        let mut b = board(BootPolicy::RequireCard, exchange, None);
        b.power_on();
        b.run_for(Duration::from_secs(10));
        assert!(!b.is_attached(), "attached without a card");
        assert_eq!(b.bridge().unwrap().boot_phase(), BootPhase::WaitingForCard);
        // It keeps trying (Config::activation_retry, 1 s), so a card inserted later boots it.
        assert!(activations(&b) >= 9, "{} activations", activations(&b));

        let (card, memory) = card();
        let inserted = b.now();
        b.insert_card(card).map_err(|_| "slot full").unwrap();
        assert!(b.run_until_true(Duration::from_secs(3), |b| b.is_attached()));
        let chr = chr(&memory);
        assert_eq!(b.serial(), Some(&chr[..CHR_CHARS]));
        println!(
            "{exchange:?}: attached {} after the insertion (activations are 1 s apart)",
            ms(b.now() - inserted)
        );
    }
}

#[test]
fn require_card_boots_with_the_first_15_characters_of_the_chr_as_serial() {
    for exchange in [Exchange::Tpdu, Exchange::ExtendedApdu] {
        let (card, memory) = card();
        let mut b = board(BootPolicy::RequireCard, exchange, Some(card));
        b.power_on();
        assert!(b.run_until_true(Duration::from_secs(2), |b| b.is_attached()));
        let chr = chr(&memory);
        // The stock rule (hardware.md §C): the first 15 characters of the device certificate's
        // CHR, which is 16 characters on this card (prefix, 7 digits, sequence 00001).
        assert_eq!(chr.len(), 16, "{chr}");
        assert_eq!(b.serial(), Some(&chr[..CHR_CHARS]));
        assert_eq!(b.bridge().unwrap().serial(), Some(&chr[..CHR_CHARS]));
        assert_eq!(
            b.identity().product,
            "Nitrokey HSM (require-card)",
            "the policy shows in the product string"
        );
        let attached = b.attached_at().unwrap();
        println!(
            "{exchange:?}: boot to USB attach {} (power-on at 0, MCU start-up 2 ms)",
            ms(attached)
        );
        // The host enumerates, and the slot announces the card.
        assert!(b.run_until_true(Duration::from_secs(1), |b| b.is_configured()));
        let notify = b.receive_interrupt(Duration::from_millis(10)).unwrap();
        assert_eq!(
            to_hex(&notify),
            "50 03",
            "NotifySlotChange: present, changed"
        );
    }
}

#[test]
fn reader_policy_attaches_at_once_and_reports_an_empty_slot_then_the_card() {
    let mut b = board(BootPolicy::Reader, Exchange::Tpdu, None);
    let mut host = Host::default();
    boot(&mut b);
    assert_eq!(
        b.serial(),
        Some("TESSERA-VBOARD-0001"),
        "the board's serial"
    );
    assert!(b.attached_at().unwrap() <= Duration::from_millis(3));
    assert_eq!(b.identity().product, "Nitrokey HSM (reader)");
    // NotifySlotChange at configuration: empty, changed.
    let notify = b.receive_interrupt(Duration::from_millis(10)).unwrap();
    assert_eq!(to_hex(&notify), "50 02");
    let status = host.slot_status(&mut b);
    assert_eq!(status[0], 0x81, "SlotStatus");
    assert_eq!(status[7], 0x02, "bmICCStatus 2: no ICC present");

    let (card, _) = card();
    let inserted = b.now();
    b.insert_card(card).map_err(|_| "slot full").unwrap();
    let notify = b.receive_interrupt(Duration::from_secs(3)).unwrap();
    assert_eq!(
        to_hex(&notify),
        "50 03",
        "NotifySlotChange: present, changed"
    );
    println!("insertion announced {} after it", ms(b.now() - inserted));
    let atr = host.power_on(&mut b);
    assert_eq!(atr[7], 0x00, "IccPowerOn: processed, active");
    assert_eq!(
        to_hex(&atr[10..]),
        to_hex(AtrProfile::V3.atr()),
        "the ATR in the DataBlock"
    );
    // The serial stays the board's: a reader's identity does not follow its card.
    assert_eq!(b.serial(), Some("TESSERA-VBOARD-0001"));

    // And the removal: the board has no card-detect switch, the bridge's presence probe
    // (S(IFS) every second, mute twice within BWT) finds the card gone.
    let removed = b.now();
    b.remove_card().unwrap();
    let notify = b.receive_interrupt(Duration::from_secs(10)).unwrap();
    assert_eq!(to_hex(&notify), "50 02");
    println!("removal announced {} after it", ms(b.now() - removed));
    assert_eq!(b.bridge().unwrap().slot(), SlotState::Absent);
}

#[test]
fn reader_policy_with_a_card_attaches_with_the_board_serial() {
    let (card, _) = card();
    let mut b = board(BootPolicy::Reader, Exchange::ExtendedApdu, Some(card));
    let mut host = Host::default();
    boot(&mut b);
    assert_eq!(b.serial(), Some("TESSERA-VBOARD-0001"));
    assert!(b.run_until_true(Duration::from_secs(2), |b| {
        b.bridge().is_some_and(|br| br.slot() == SlotState::Active)
    }));
    let status = host.slot_status(&mut b);
    assert_eq!(status[7] & 0x03, 0x00, "present and active");
}

/// ISO/IEC 7816-3 §9: the bridge proposes the card's TA1 (v3: 0x18, F 372, D 12), the card
/// accepts, both sides switch; then S(IFS request 254) (§11.6.2.2 Rule 4).
#[test]
fn pps_reaches_116129_bps_with_the_v3_card_and_ifsd_254() {
    let (card, _) = card();
    let mut b = board(BootPolicy::RequireCard, Exchange::Tpdu, Some(card));
    b.power_on();
    assert!(b.run_until_true(Duration::from_secs(2), |b| b.is_attached()));
    let c = b.card().unwrap();
    assert_eq!(c.fi_di(), FiDi::from_byte(0x18));
    assert_eq!(c.link_state(), LinkState::T1);
    assert_eq!(c.ifsd(), 254, "IFSD 254 reached");
    assert_eq!((b.line_rate().f, b.line_rate().d), (372, 12));
    assert_eq!(b.line_rate().cgt_etu, 11, "T=1 with N = 255: CGT 11 etu");
    assert_eq!(b.baud(), 116_129);
    assert_eq!(b.bridge().unwrap().card_baud(), 116_129);
    let stats = b.line_stats();
    assert_eq!(stats.rate_mismatches, 0);
    assert_eq!(
        stats.parity_errors_at_card + stats.parity_errors_at_reader,
        0
    );
    // The PPS exchange in the trace: FF 11 18 F6 both ways.
    let line: Vec<(char, String)> = b
        .trace()
        .iter()
        .filter_map(|e| match &e.event {
            TraceEvent::ToCard(x) => Some(('>', to_hex(x))),
            TraceEvent::FromCard(x) => Some(('<', to_hex(x))),
            _ => None,
        })
        .collect();
    assert_eq!(line[1], ('>', "FF 11 18 F6".to_owned()), "PPS request");
    assert_eq!(
        line[2],
        ('<', "FF 11 18 F6".to_owned()),
        "PPS response: accepted"
    );
    assert_eq!(
        line[3],
        ('>', "00 C1 01 FE 3E".to_owned()),
        "S(IFS request 254)"
    );
    assert_eq!(
        line[4],
        ('<', "00 E1 01 FE 1E".to_owned()),
        "S(IFS response 254)"
    );
}

/// The v4 card offers TA1 0x96 (F 512, D 32, 225 kbps), which the stock board cannot drive
/// (hardware.md §A): the bridge caps it to 0x98 (F 512, D 12), 84 375 bps.
#[test]
fn pps_is_capped_to_84375_bps_for_the_v4_card() {
    let (card, memory) = card_with(AtrProfile::V4, ContactsConfig::default());
    let mut b = board(BootPolicy::RequireCard, Exchange::Tpdu, Some(card));
    b.power_on();
    assert!(b.run_until_true(Duration::from_secs(2), |b| b.is_attached()));
    let c = b.card().unwrap();
    assert_eq!(c.fi_di(), FiDi::from_byte(0x98));
    assert_eq!(c.ifsd(), 254);
    assert_eq!((b.line_rate().f, b.line_rate().d), (512, 12));
    assert_eq!(b.baud(), 84_375);
    assert_eq!(b.serial(), Some(&chr(&memory)[..CHR_CHARS]));
    println!(
        "v4 card: boot to USB attach {}",
        ms(b.attached_at().unwrap())
    );
}

/// A card that refuses every PPS1 (answers without it, §9.3) stays at Fd, Dd: the bridge must
/// stay there too, or every character would arrive garbled.
#[test]
fn a_refused_pps_leaves_both_sides_at_the_default_rate() {
    let contacts = ContactsConfig {
        pps: tessera_card::contacts::PpsPolicy::DefaultRateOnly,
        ..ContactsConfig::default()
    };
    let (card, memory) = card_with(AtrProfile::V3, contacts);
    let mut b = board(BootPolicy::RequireCard, Exchange::Tpdu, Some(card));
    b.power_on();
    assert!(b.run_until_true(Duration::from_secs(3), |b| b.is_attached()));
    assert_eq!(b.card().unwrap().fi_di(), FiDi::DEFAULT);
    assert_eq!(b.baud(), 9_677);
    assert_eq!(b.line_stats().rate_mismatches, 0);
    assert_eq!(b.serial(), Some(&chr(&memory)[..CHR_CHARS]));
    println!(
        "at 9 677 bps: boot to USB attach {}",
        ms(b.attached_at().unwrap())
    );
}

#[test]
fn power_off_detaches_and_power_on_boots_a_new_bridge() {
    let (card, memory) = card();
    let mut b = board(BootPolicy::RequireCard, Exchange::Tpdu, Some(card));
    boot(&mut b);
    b.power_off();
    assert!(!b.is_attached() && !b.is_configured() && b.bridge().is_none());
    assert!(!b.card().unwrap().is_powered());
    b.run_for(Duration::from_secs(1));
    let off = b.now();
    b.power_on();
    assert!(b.run_until_true(Duration::from_secs(2), |b| b.is_attached()));
    assert_eq!(b.serial(), Some(&chr(&memory)[..CHR_CHARS]));
    println!("second boot to attach {}", ms(b.now() - off));
}
