//! Boot under both policies, with and without a card; the serial string from the CHR, and no
//! garbage serial when the card is busy; PPS, the rate caps and IFSD during the activation.

mod sim;

use sim::*;
use tessera_bridge::{BootPhase, BootPolicy, Config, Duration, LineRate, SlotState};

/// The stock boot on the card line, character for character (hardware.md §B), with our
/// additions (PPS to TA1, S(IFS 254)).
#[test]
fn require_card_boots_with_the_chr_as_serial() {
    let mut w = World::new(
        Config::stock(BootPolicy::RequireCard),
        Some(TestCard::hsm()),
    );
    assert!(w.run_until(Duration::from_secs(2), |w| w.hw.attached.is_some()));
    println!("attached after {}", w.now());
    assert_eq!(w.hw.attached.as_deref(), Some("DENK01054610000"));
    assert_eq!(w.bridge.serial(), Some("DENK01054610000"));
    assert_eq!(w.bridge.boot_phase(), BootPhase::Attached);
    let trace = w.card_trace();
    check(
        &trace[..10],
        &[
            (
                "<",
                "3B DE 18 FF 81 91 FE 1F C3 80 31 81 54 48 53 4D 31 73 80 21 40 81 07 1C",
                "ATR of the SmartCard-HSM v3: TA1 18, T=1, IFSC FE",
            ),
            (
                ">",
                "FF 11 18 F6",
                "PPS: PPSS, PPS0 = T=1 with PPS1, PPS1 = TA1 18, PCK",
            ),
            (
                "<",
                "FF 11 18 F6",
                "the card echoes: F 372, D 12 from now on",
            ),
            (">", "00 C1 01 FE 3E", "S(IFS request 254)"),
            ("<", "00 E1 01 FE 1E", "S(IFS response 254): IFSD is 254"),
            (
                ">",
                "00 00 10 00 A4 04 00 0B E8 2B 06 01 04 01 81 C3 1F 02 01 24",
                "I(0): SELECT the SmartCard-HSM AID",
            ),
            ("<", "00 00 02 90 00 92", "I(0): 9000"),
            (
                ">",
                "00 40 08 00 A4 00 00 02 2F 02 00 C3",
                "I(1): SELECT EF 2F02",
            ),
            ("<", "00 40 02 90 00 D2", "I(1): 9000"),
            (
                ">",
                "00 00 0D 00 B1 00 00 00 00 04 54 02 00 00 04 00 EA",
                "I(0): READ BINARY offset 0, Le 1024 (extended)",
            ),
        ],
    );
    // The certificate comes in a chain of 254-byte blocks (IFSD 254) ending with 6282.
    let (dir, first) = &trace[10];
    assert_eq!(
        (*dir, first[1], first[2]),
        ("<", 0x20, 0xFE),
        "I(0) with M, 254 bytes"
    );
    check(
        &trace[11..12],
        &[(">", "00 90 00 90", "R(1): next block, please")],
    );
    let (_, last) = &trace[12];
    assert_eq!(
        &last[last.len() - 3..last.len() - 1],
        [0x62, 0x82],
        "ends with 6282"
    );
    assert_eq!(
        w.hw.rates.last(),
        Some(&LineRate {
            f: 372,
            d: 12,
            cgt_etu: 11
        })
    );
    assert_eq!(w.bridge.card_baud(), 116_129);
    assert_eq!(w.card().ifsd, 254, "IFSD 254 reached");
}

#[test]
fn require_card_never_attaches_without_a_card() {
    let mut w = World::new(Config::stock(BootPolicy::RequireCard), None);
    w.run_for(Duration::from_secs(10));
    assert_eq!(w.hw.attached, None);
    assert_eq!(w.bridge.boot_phase(), BootPhase::WaitingForCard);
    // It kept trying: one activation per second (VCC on, then off after 40 000 clocks).
    let activations =
        w.hw.trace
            .iter()
            .filter(|t| **t == Trace::Vcc(true))
            .count();
    assert!(
        (9..=11).contains(&activations),
        "{activations} activations in 10 s"
    );
    assert!(!w.hw.vcc, "the card is not left powered");
}

#[test]
fn require_card_attaches_once_a_card_appears() {
    let mut w = World::new(Config::stock(BootPolicy::RequireCard), None);
    w.run_for(Duration::from_secs(3));
    assert_eq!(w.hw.attached, None);
    let inserted = w.now();
    w.insert_card(TestCard::hsm());
    assert!(w.run_until(Duration::from_secs(3), |w| w.hw.attached.is_some()));
    let delay = w.now() - inserted;
    println!("attached {delay} after insertion");
    assert!(
        delay <= Duration::from_millis(1_200),
        "within one retry period and the boot"
    );
    assert_eq!(w.hw.attached.as_deref(), Some("DENK01054610000"));
}

#[test]
fn reader_attaches_at_once_and_reports_the_slot_empty() {
    let mut w = World::new(Config::stock(BootPolicy::Reader), None);
    assert_eq!(
        w.hw.attached.as_deref(),
        Some(BOARD_SERIAL),
        "attached at start"
    );
    w.configure();
    w.run_for(Duration::from_millis(10));
    w.send(tessera_ccid::GetSlotStatus::new());
    let answer = w.response(Duration::from_millis(10)).unwrap();
    check(
        &w.usb_trace(),
        &[
            ("int", "50 02", "NotifySlotChange: slot 0 absent, changed"),
            ("out", "65 00000000 00 00 000000", "GetSlotStatus, seq 0"),
            (
                "in",
                "81 00000000 00 00 02 00 01",
                "SlotStatus: no ICC present, clock stopped low",
            ),
        ],
    );
    assert_eq!(status(&answer), (0x02, 0x00));
    assert_eq!(w.bridge.slot(), SlotState::Absent);
}

#[test]
fn reader_notifies_insertion_and_removal() {
    let mut w = World::new(Config::stock(BootPolicy::Reader), None);
    w.configure();
    w.run_for(Duration::from_secs(2));
    w.insert_card(TestCard::hsm());
    assert!(w.run_until(Duration::from_secs(2), |w| w.hw.interrupts.len() == 2));
    w.run_for(Duration::from_secs(3));
    let before = w.now();
    w.pull_card();
    assert!(w.run_until(Duration::from_secs(10), |w| w.hw.interrupts.len() == 3));
    println!("removal seen {} after the pull", w.now() - before);
    let interrupts: Vec<_> = w
        .usb_trace()
        .into_iter()
        .filter(|(d, _)| *d == "int")
        .collect();
    check(
        &interrupts,
        &[
            ("int", "50 02", "at configuration: absent"),
            ("int", "50 03", "card inserted: present, changed"),
            ("int", "50 02", "card removed: absent, changed"),
        ],
    );
    assert_eq!(w.bridge.slot(), SlotState::Absent);
    assert!(!w.hw.vcc, "VCC off once the card is gone");
    // Removal is seen within the presence poll (1 s) and two unanswered probes (2 BWT).
    assert!(w.now() - before <= Duration::from_millis(1_000 + 2 * 1_600 + 100));
}

/// A card that answers SELECT with 6F00 ("busy": issue #79) the first `busy` times.
fn busy_card(busy: usize) -> TestCard {
    let mut inner = hsm_applet(Reply::now(vec![0x90, 0x00]));
    let mut left = busy;
    TestCard::t1(
        &ATR_V3,
        Box::new(move |apdu: &[u8]| {
            if apdu.starts_with(&[0x00, 0xA4, 0x04]) && left > 0 {
                left -= 1;
                return Reply::now(vec![0x6F, 0x00]);
            }
            inner(apdu)
        }),
    )
}

#[test]
fn a_busy_card_delays_the_serial_but_gives_no_garbage() {
    let mut w = World::new(Config::stock(BootPolicy::RequireCard), Some(busy_card(3)));
    assert!(w.run_until(Duration::from_secs(10), |w| w.hw.attached.is_some()));
    assert_eq!(w.hw.attached.as_deref(), Some("DENK01054610000"));
    let selects = w
        .card()
        .commands
        .iter()
        .filter(|c| c.starts_with(&[0x00, 0xA4, 0x04]))
        .count();
    assert_eq!(selects, 4, "three busy answers, then the read");
    println!("attached after {} with 3 busy answers", w.now());
}

#[test]
fn a_card_busy_for_ever_gets_the_board_serial_after_the_bound() {
    let config = Config::stock(BootPolicy::RequireCard);
    let mut w = World::new(config, Some(busy_card(usize::MAX)));
    assert!(w.run_until(Duration::from_secs(60), |w| w.hw.attached.is_some()));
    assert_eq!(
        w.hw.attached.as_deref(),
        Some(BOARD_SERIAL),
        "never a garbage serial"
    );
    let selects = w
        .card()
        .commands
        .iter()
        .filter(|c| c.starts_with(&[0x00, 0xA4, 0x04]))
        .count();
    assert_eq!(selects, usize::from(config.serial.attempts));
    println!("gave up after {} ({} attempts)", w.now(), selects);
}

#[test]
fn a_card_that_is_no_smartcard_hsm_gets_the_board_serial_at_once() {
    let card = TestCard::t1(&ATR_V3, Box::new(|_: &[u8]| Reply::now(vec![0x6A, 0x82])));
    let mut w = World::new(Config::stock(BootPolicy::RequireCard), Some(card));
    assert!(w.run_until(Duration::from_secs(2), |w| w.hw.attached.is_some()));
    assert_eq!(w.hw.attached.as_deref(), Some(BOARD_SERIAL));
    assert_eq!(
        w.card().commands.len(),
        1,
        "no retry after a definitive 6A82"
    );
}

#[test]
fn the_serial_read_survives_wtx() {
    // The card asks for more time on READ BINARY (WTX, §11.6.2.2 Rule 3).
    let mut inner = hsm_applet(Reply::now(vec![0x90, 0x00]));
    let card = TestCard::t1(
        &ATR_V3,
        Box::new(move |apdu: &[u8]| {
            let mut reply = inner(apdu);
            if apdu.get(1) == Some(&0xB1) {
                reply.delay = Duration::from_secs(4);
                reply.wtx = 2;
            }
            reply
        }),
    );
    let mut w = World::new(Config::stock(BootPolicy::RequireCard), Some(card));
    assert!(w.run_until(Duration::from_secs(10), |w| w.hw.attached.is_some()));
    assert_eq!(w.hw.attached.as_deref(), Some("DENK01054610000"));
    let wtx = w
        .card_trace()
        .iter()
        .filter(|(d, b)| *d == "<" && b.get(1) == Some(&0xC3))
        .count();
    assert!(wtx >= 2, "the card asked for more time {wtx} times");
}

#[test]
fn v4_card_rate_is_capped() {
    let card = TestCard::t1(&ATR_V4, hsm_applet(Reply::now(vec![0x90, 0x00])));
    let mut w = World::new(Config::stock(BootPolicy::RequireCard), Some(card));
    assert!(w.run_until(Duration::from_secs(2), |w| w.hw.attached.is_some()));
    check(
        &w.card_trace()[1..3],
        &[
            (
                ">",
                "FF 11 98 76",
                "PPS: T=1, PPS1 98 (F 512, D 12) instead of the offered 96",
            ),
            ("<", "FF 11 98 76", "accepted"),
        ],
    );
    assert_eq!(
        w.hw.rates.last(),
        Some(&LineRate {
            f: 512,
            d: 12,
            cgt_etu: 11
        })
    );
    assert_eq!(w.bridge.card_baud(), 84_375);
}

#[test]
fn a_card_that_declines_pps1_stays_at_the_initial_rate() {
    let mut card = TestCard::hsm();
    card.accept_fi_di = |_| false;
    let mut w = World::new(Config::stock(BootPolicy::RequireCard), Some(card));
    assert!(w.run_until(Duration::from_secs(2), |w| w.hw.attached.is_some()));
    check(
        &w.card_trace()[1..3],
        &[
            (">", "FF 11 18 F6", "PPS: T=1, PPS1 18"),
            (
                "<",
                "FF 01 FE",
                "PPS1 left out: the default F 372, D 1 (§9.3)",
            ),
        ],
    );
    assert_eq!(w.bridge.card_baud(), 9_677);
    assert_eq!(w.hw.attached.as_deref(), Some("DENK01054610000"));
}

#[test]
fn a_card_that_ignores_pps_is_reactivated_without_it() {
    let mut card = TestCard::hsm();
    card.pps_silent = true;
    let mut w = World::new(Config::stock(BootPolicy::RequireCard), Some(card));
    assert!(w.run_until(Duration::from_secs(3), |w| w.hw.attached.is_some()));
    let trace = w.card_trace();
    check(
        &trace[..4],
        &[
            (
                "<",
                "3B DE 18 FF 81 91 FE 1F C3 80 31 81 54 48 53 4D 31 73 80 21 40 81 07 1C",
                "ATR",
            ),
            (
                ">",
                "FF 11 18 F6",
                "PPS, unanswered: after WT the card is deactivated (§9.3)",
            ),
            (
                "<",
                "3B DE 18 FF 81 91 FE 1F C3 80 31 81 54 48 53 4D 31 73 80 21 40 81 07 1C",
                "ATR again after a cold reset",
            ),
            (
                ">",
                "00 C1 01 FE 3E",
                "no PPS this time: S(IFS request 254) at 9677 bps",
            ),
        ],
    );
    assert_eq!(w.bridge.card_baud(), 9_677);
    assert_eq!(w.hw.attached.as_deref(), Some("DENK01054610000"));
}

#[test]
fn a_t0_only_card_is_activated_without_ifs() {
    let card = TestCard::t0(Box::new(|_: &[u8]| Reply::now(vec![0x90, 0x00])));
    let mut w = World::new(Config::stock(BootPolicy::Reader), Some(card));
    w.configure();
    assert!(w.run_until(Duration::from_secs(2), |w| w.bridge.slot()
        == SlotState::Active));
    check(
        &w.card_trace(),
        &[
            (
                "<",
                "3B 10 13",
                "ATR: TA1 13 (F 372, D 4), no TD1: T=0 only",
            ),
            (">", "FF 10 13 FC", "PPS: T=0, PPS1 13"),
            ("<", "FF 10 13 FC", "accepted; no S(IFS) for T=0"),
        ],
    );
    assert_eq!(w.bridge.card_baud(), 38_709);
}

#[test]
fn product_string_names_the_policy() {
    assert_eq!(
        Config::stock(BootPolicy::RequireCard).identity().product,
        "Nitrokey HSM (require-card)"
    );
    assert_eq!(
        Config::stock(BootPolicy::Reader).identity().product,
        "Nitrokey HSM (reader)"
    );
    let id = Config::stock(BootPolicy::Reader).identity();
    assert_eq!((id.vendor_id, id.product_id), (0x20A0, 0x4230));
    assert_eq!(id.manufacturer, "Nitrokey");
}
