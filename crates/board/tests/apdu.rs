//! APDU level in modelled time, the real applet behind the real bridge: extended APDUs of 4096
//! bytes each way, time extensions during a long card operation, a card pulled mid-command,
//! PIN counters across power cycles.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod support;

use std::time::Duration;

use support::*;
use tessera_board::TraceEvent;
use tessera_bridge::{BootPolicy, Exchange, SlotState};
use tessera_card::contacts::{BusyTimes, ContactsConfig};
use tessera_card::virtual_card::AtrProfile;

#[test]
fn extended_apdus_carry_4096_bytes_each_way() {
    let (card, _) = card();
    let mut b = board(BootPolicy::RequireCard, Exchange::ExtendedApdu, Some(card));
    let mut host = Host::default();
    initialised(&mut b, &mut host);
    host.check(&mut b, VERIFY, 0x9000);
    let content: Vec<u8> = (0..4096u32).map(|i| (i * 7 + i / 256) as u8).collect();

    // 4096 data bytes: the offset and content objects (8 bytes) and 4088 bytes of content;
    // the last 8 bytes go in a short command.
    let command = update_binary(0x2F10, 0, &content[..4088]);
    assert_eq!(
        command.len(),
        4 + 3 + 4096,
        "an extended case-3 command, Nc = 4096"
    );
    let start = b.now();
    host.check_bytes(&mut b, &command, 0x9000);
    let write = b.now() - start;
    host.check_bytes(
        &mut b,
        &update_binary(0x2F10, 4088, &content[4088..]),
        0x9000,
    );

    let start = b.now();
    let read = host.check_bytes(&mut b, &read_binary(0x2F10, 4096), 0x9000);
    let read_time = b.now() - start;
    assert_eq!(read.len(), 4096);
    assert!(read == content, "the file read back differs");

    println!(
        "UPDATE BINARY, 4096 data bytes: {} ({:.0} B/s)",
        ms(write),
        4096.0 / write.as_secs_f64()
    );
    println!(
        "READ BINARY, 4096 data bytes: {} ({:.0} B/s)",
        ms(read_time),
        4096.0 / read_time.as_secs_f64()
    );
    // Both travelled in CCID chains of 512-byte pieces (dwMaxCCIDMessageLength 522).
    let chained = b
        .trace()
        .iter()
        .filter(|e| matches!(&e.event, TraceEvent::BulkIn(m) if m[0] == 0x80 && m[9] == 0x03))
        .count();
    assert!(chained >= 6, "{chained} DataBlocks with bChainParameter 03");
}

/// A command the card works on for 5 s (GENERATE-like; here GET CHALLENGE made slow in the
/// card's busy table): the card asks for S(WTX) halfway through each BWT, the bridge grants it
/// and sends the host a CCID time extension (bStatus 0x80) every second.
#[test]
fn a_long_card_operation_gets_time_extensions() {
    let contacts = ContactsConfig {
        busy: BusyTimes {
            by_ins: vec![(0x84, Duration::from_secs(5))],
            ..BusyTimes::default()
        },
        ..ContactsConfig::default()
    };
    let (card, _) = card_with(AtrProfile::V3, contacts);
    let mut b = board(BootPolicy::RequireCard, Exchange::ExtendedApdu, Some(card));
    let mut host = Host::default();
    boot(&mut b);
    host.power_on(&mut b);
    host.check(&mut b, SELECT, 0x9000);
    let start = b.now();
    let challenge = host.check_bytes(&mut b, &get_challenge(8), 0x9000);
    let took = b.now() - start;
    assert_eq!(challenge.len(), 8);
    assert!(took >= Duration::from_secs(5), "{took:?}");
    // The bridge's time extensions: bStatus 0x80, about one a second.
    let te = &host.time_extensions;
    assert!(te.len() >= 4, "{} time extensions", te.len());
    for (_, m) in te {
        assert_eq!(m[0], 0x80, "DataBlock");
        assert_eq!(m[7], 0x80, "bStatus: time extension");
    }
    let gaps: Vec<Duration> = te.windows(2).map(|w| w[1].0 - w[0].0).collect();
    assert!(
        gaps.iter().all(|g| *g <= Duration::from_millis(1_001)),
        "{gaps:?}"
    );
    // The card's S(WTX request)s on the line (PCB C3).
    let wtx = b
        .trace()
        .iter()
        .filter(|e| e.at >= start)
        .filter(|e| matches!(&e.event, TraceEvent::FromCard(x) if x.get(1) == Some(&0xC3)))
        .count();
    assert!(wtx >= 5, "{wtx} S(WTX request)s");
    println!(
        "5 s operation: answered after {}, {} time extensions, {} S(WTX request)s",
        ms(took),
        te.len(),
        wtx
    );
}

/// ISO/IEC 7816-3 §11.4.3: BWT = 11 etu + 2^BWI × 960 × 372 / f = 1.588 s at 3.6 MHz (BWI 4);
/// the card is pulled while it works: the host gets ICC mute within BWT of the pull, never a
/// hang, and then the slot reports the card gone.
#[test]
fn a_card_pulled_mid_command_gives_icc_mute_within_bwt() {
    for exchange in [Exchange::ExtendedApdu, Exchange::Tpdu] {
        let contacts = ContactsConfig {
            busy: BusyTimes {
                by_ins: vec![(0x84, Duration::from_secs(5))],
                ..BusyTimes::default()
            },
            ..ContactsConfig::default()
        };
        let (card, _) = card_with(AtrProfile::V3, contacts);
        let mut b = board(BootPolicy::RequireCard, exchange, Some(card));
        let mut host = Host::default();
        boot(&mut b);
        host.power_on(&mut b);
        if exchange == Exchange::ExtendedApdu {
            host.check(&mut b, SELECT, 0x9000);
        }
        let bwt = b.card().unwrap().bwt().unwrap();
        let command = match exchange {
            // One I-block (NAD 00, PCB 00, LEN 05, GET CHALLENGE, LRC): the host's T=1.
            Exchange::Tpdu => hex("00 00 05 00 84 00 00 08 89"),
            Exchange::ExtendedApdu => get_challenge(8),
        };
        let m = host.message(0x6F, [0, 0, 0], &command);
        b.send_ccid(&m).unwrap();
        b.run_for(Duration::from_millis(700));
        let pulled = b.now();
        let _card = b.remove_card().unwrap();
        let answer = host
            .answer(&mut b, Duration::from_secs(10))
            .expect("an answer, not a hang");
        let after = b.now() - pulled;
        // RDR_to_PC_DataBlock, failed (bmCommandStatus 1), bError FE: ICC_MUTE.
        assert_eq!(answer[0], 0x80);
        assert_eq!(answer[7] & 0xC0, 0x40, "command failed");
        assert_eq!(answer[8], 0xFE, "ICC_MUTE");
        println!(
            "{exchange:?}: ICC mute {} after the pull (BWT {})",
            ms(after),
            ms(bwt)
        );
        assert!(after <= bwt, "within BWT");
        assert!(b.run_until_true(Duration::from_secs(10), |b| {
            b.bridge().unwrap().slot() == SlotState::Absent
        }));
    }
}

/// The card's retry counters live in its memory: power cycles of the whole board do not reset
/// them (sc-hsm-protocol.md §4.1).
#[test]
fn power_cycles_keep_the_pin_counters() {
    let (card, _) = card();
    let mut b = board(BootPolicy::RequireCard, Exchange::ExtendedApdu, Some(card));
    let mut host = Host::default();
    initialised(&mut b, &mut host);
    host.check(&mut b, VERIFY_WRONG, 0x63C2);

    let cycle = |b: &mut tessera_board::VirtualBoard, host: &mut Host| {
        b.power_off();
        b.run_for(Duration::from_millis(500));
        *host = Host::default();
        boot(b);
        host.power_on(b);
        host.check(b, SELECT, 0x9000);
    };
    cycle(&mut b, &mut host);
    host.check(&mut b, PIN_STATUS, 0x63C2);
    host.check(&mut b, VERIFY_WRONG, 0x63C1);
    cycle(&mut b, &mut host);
    host.check(&mut b, PIN_STATUS, 0x63C1);
    host.check(&mut b, VERIFY, 0x9000);
    cycle(&mut b, &mut host);
    // Reset to the maximum by the good PIN, and the verification itself is gone with the power.
    host.check(&mut b, PIN_STATUS, 0x63C3);
}

/// The card moves to another board (a SIM swap on a rig): it keeps its counters there too.
#[test]
fn a_card_moved_to_another_board_keeps_its_state() {
    let (card, memory) = card();
    let mut a = board(BootPolicy::RequireCard, Exchange::ExtendedApdu, Some(card));
    let mut host = Host::default();
    initialised(&mut a, &mut host);
    host.check(&mut a, VERIFY_WRONG, 0x63C2);
    a.power_off();
    let card = a.remove_card().unwrap();

    let mut b = board(BootPolicy::RequireCard, Exchange::ExtendedApdu, None);
    b.run_until(a.now());
    b.insert_card(card).map_err(|_| "slot full").unwrap();
    let mut host = Host::default();
    boot(&mut b);
    assert_eq!(b.serial(), Some(&chr(&memory)[..15]));
    host.power_on(&mut b);
    host.check(&mut b, SELECT, 0x9000);
    host.check(&mut b, PIN_STATUS, 0x63C2);
}
