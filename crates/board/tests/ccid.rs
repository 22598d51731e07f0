//! CCID transcripts on the virtual board at the stock TPDU level: what the host sends on bulk
//! OUT and gets on bulk IN and interrupt IN, byte for byte, with the real bridge and card.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod support;

use std::time::Duration;

use support::*;
use tessera_board::TraceEvent;
use tessera_bridge::{BootPolicy, Exchange};

/// The USB messages in the trace: (direction, bytes).
fn usb(board: &tessera_board::VirtualBoard) -> Vec<(&'static str, Vec<u8>)> {
    board
        .trace()
        .iter()
        .filter_map(|e| match &e.event {
            TraceEvent::BulkOut(b) => Some(("out", b.clone())),
            TraceEvent::BulkIn(b) => Some(("in", b.clone())),
            TraceEvent::Interrupt(b) => Some(("int", b.clone())),
            _ => None,
        })
        .collect()
}

/// Each line: direction, hex, what it is. On a mismatch the whole transcript is printed.
#[track_caller]
fn check(actual: &[(&'static str, Vec<u8>)], expected: &[(&str, &str, &str)]) {
    let same = actual.len() == expected.len()
        && actual
            .iter()
            .zip(expected)
            .all(|((d, b), (ed, eh, _))| d == ed && *b == hex(eh));
    if !same {
        let mut text = String::from("transcript mismatch\nexpected:\n");
        for (d, h, c) in expected {
            text.push_str(&format!("  {d:>3} {}  ; {c}\n", to_hex(&hex(h))));
        }
        text.push_str("actual:\n");
        for (d, b) in actual {
            text.push_str(&format!("  {d:>3} {}\n", to_hex(b)));
        }
        panic!("{text}");
    }
}

#[test]
fn tpdu_transcript_power_on_select_power_off() {
    let (card, _) = card();
    let mut b = board(BootPolicy::RequireCard, Exchange::Tpdu, Some(card));
    let mut host = Host::default();
    boot(&mut b);
    host.power_on(&mut b);
    let select = hex("00 00 11 00 A4 04 00 0B E8 2B 06 01 04 01 81 C3 1F 02 01 00 25");
    host.xfr(&mut b, &select, 0, Duration::from_secs(5))
        .unwrap();
    let m = host.message(0x63, [0, 0, 0], &[]);
    host.exchange(&mut b, &m, Duration::from_secs(1)).unwrap();
    host.slot_status(&mut b);
    check(
        &usb(&b),
        &[
            (
                "int",
                "50 03",
                "NotifySlotChange at configuration: card present, changed",
            ),
            (
                "out",
                "62 00000000 00 00 00 0000",
                "IccPowerOn, seq 0, automatic voltage",
            ),
            (
                "in",
                "80 18000000 00 00 00 00 00 \
                 3B DE 18 FF 81 91 FE 1F C3 80 31 81 54 48 53 4D 31 73 80 21 40 81 07 1C",
                "DataBlock: processed, active; the v3 ATR",
            ),
            (
                "out",
                "6F 15000000 00 01 00 0000 \
                 00 00 11 00 A4 04 00 0B E8 2B 06 01 04 01 81 C3 1F 02 01 00 25",
                "XfrBlock, seq 1: I(0) with SELECT of the SmartCard-HSM AID",
            ),
            (
                "in",
                "80 1F000000 00 01 00 00 00 \
                 00 00 1B 62 17 82 01 38 84 0B E8 2B 06 01 04 01 81 C3 1F 02 01 \
                 85 05 00 00 00 03 05 90 00 D3",
                "DataBlock: I(0) with the FCP (version 3.5 in tag 85) and 9000",
            ),
            ("out", "63 00000000 00 02 00 0000", "IccPowerOff, seq 2"),
            (
                "in",
                "81 00000000 00 02 01 00 01",
                "SlotStatus: present, inactive; clock stopped L",
            ),
            ("out", "65 00000000 00 03 00 0000", "GetSlotStatus, seq 3"),
            (
                "in",
                "81 00000000 00 03 01 00 01",
                "SlotStatus: present, inactive",
            ),
        ],
    );
    // IccPowerOff really removed VCC.
    assert!(!b.card().unwrap().is_powered());
}

/// Malformed messages from the host get a CCID error, never silence: a bad slot, a wrong
/// dwLength, an unknown message type (CCID Rev 1.1 §6.2.6, bError = the offset of the field).
#[test]
fn malformed_messages_get_ccid_errors() {
    let (card, _) = card();
    let mut b = board(BootPolicy::RequireCard, Exchange::Tpdu, Some(card));
    boot(&mut b);
    let mut host = Host::default();
    let mut sent = Vec::new();
    for m in [
        "65 00000000 05 07 00 0000",
        "62 05000000 00 08 00 0000",
        "99 00000000 00 09 00 0000",
    ] {
        sent.push(hex(m));
    }
    for m in &sent {
        host.exchange(&mut b, m, Duration::from_secs(1)).unwrap();
    }
    let transcript = usb(&b);
    check(
        &transcript[1..],
        &[
            (
                "out",
                "65 00000000 05 07 00 0000",
                "GetSlotStatus to slot 5",
            ),
            (
                "in",
                "81 00000000 05 07 42 05 03",
                "SlotStatus: failed, no ICC (no slot 5), bError 5: bSlot",
            ),
            (
                "out",
                "62 05000000 00 08 00 0000",
                "IccPowerOn announcing 5 bytes it lacks",
            ),
            (
                "in",
                "80 00000000 00 08 40 01 00",
                "DataBlock: failed, bError 1: dwLength",
            ),
            (
                "out",
                "99 00000000 00 09 00 0000",
                "an unknown message type",
            ),
            (
                "in",
                "81 00000000 00 09 40 00 00",
                "SlotStatus: failed, command not supported",
            ),
        ],
    );
}
