//! Figures in modelled time (printed, never asserted): boot to USB attach, and APDU round trips
//! at APDU level against the ISO/IEC 7816-3 minimum at the negotiated rate.
//!
//! Run: `cargo nextest run -p tessera-board --test figures --no-capture`
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod support;

use std::time::Duration;

use support::*;
use tessera_board::{TraceEvent, VirtualBoard};
use tessera_bridge::{BootPolicy, Exchange};
use tessera_card::contacts::{BusyTimes, ContactsConfig};
use tessera_card::virtual_card::AtrProfile;

/// One exchange's card-line traffic: (characters to the card, from the card, blocks, first
/// character's start, last character's end).
fn line_traffic(b: &VirtualBoard, from: Duration, etu_ns: f64) -> (usize, usize, usize, f64, f64) {
    let mut to = 0;
    let mut back = 0;
    let mut blocks = 0;
    let mut first = f64::MAX;
    let mut last: f64 = 0.0;
    for e in b.trace().iter().filter(|e| e.at >= from) {
        let at = e.at.as_nanos() as f64;
        match &e.event {
            TraceEvent::ToCard(x) => {
                to += x.len();
                blocks += 1;
                first = first.min(at);
                last = last.max(at + x.len() as f64 * 11.0 * etu_ns);
            }
            TraceEvent::FromCard(x) => {
                back += x.len();
                blocks += 1;
                last = last.max(at + x.len() as f64 * 12.0 * etu_ns);
            }
            _ => {}
        }
    }
    (to, back, blocks, first, last)
}

#[test]
fn print_figures() {
    println!("## Boot to USB attach (require-card, power-on at 0, MCU start-up 2 ms)\n");
    println!("| card | rate | boot to attach | attach to configured |");
    println!("|---|---:|---:|---:|");
    for (name, profile) in [
        ("v3 (TA1 18)", AtrProfile::V3),
        ("v4 (TA1 96)", AtrProfile::V4),
    ] {
        let (card, _) = card_with(profile, ContactsConfig::default());
        let mut b = board(BootPolicy::RequireCard, Exchange::Tpdu, Some(card));
        b.power_on();
        b.run_until_true(Duration::from_secs(5), |b| b.is_configured());
        let attach = b.attached_at().unwrap();
        println!(
            "| {name} | {} bps | {} | {} |",
            b.baud(),
            ms(attach),
            ms(b.now() - attach)
        );
    }

    // The card answers at once (busy time 0), so the line and the protocol are what is
    // measured.
    let contacts = ContactsConfig {
        busy: BusyTimes {
            command: Duration::ZERO,
            ..BusyTimes::default()
        },
        ..ContactsConfig::default()
    };
    let (card, _) = card_with(AtrProfile::V3, contacts);
    let mut b = board(BootPolicy::RequireCard, Exchange::ExtendedApdu, Some(card));
    let mut host = Host::default();
    initialised(&mut b, &mut host);
    host.check(&mut b, VERIFY, 0x9000);
    // F 372, D 12 at 3.6 MHz: one etu is 31 clock cycles.
    let etu_ns = 31.0 / 3.6e6 * 1e9;
    let bgt_ns = 22.0 * etu_ns;
    println!("\n## APDU round trips at APDU level, 116 129 bps, card busy time 0\n");
    println!(
        "Minimum: the characters alone (reader 11 etu, card 12 etu each) plus BGT (22 etu) at \
         each turn of the line (ISO/IEC 7816-3 §11.2)."
    );
    println!(
        "\n| APDU | data | chars to card / from card | blocks | minimum | card line | ratio | USB round trip |"
    );
    println!("|---|---:|---:|---:|---:|---:|---:|---:|");
    for n in [16usize, 256, 1024, 4096] {
        let content: Vec<u8> = (0..n).map(|i| i as u8).collect();
        // A command of n data bytes: UPDATE BINARY (8 bytes of framing in the data field);
        // then, untimed, the file's last 8 bytes; then a response of n data bytes.
        let write = update_binary(0x2F10, 0, &content[..n - 8]);
        let tail = update_binary(0x2F10, (n - 8) as u16, &content[n - 8..]);
        for (name, apdu) in [
            ("UPDATE BINARY", write),
            ("(tail)", tail),
            ("READ BINARY", read_binary(0x2F10, n as u16)),
        ] {
            let from = b.now();
            let data = host.check_bytes(&mut b, &apdu, 0x9000);
            if name == "(tail)" {
                continue;
            }
            if name == "READ BINARY" {
                assert!(data == content);
            }
            let round_trip = b.now() - from;
            let (to, back, blocks, first, last) = line_traffic(&b, from, etu_ns);
            let minimum = to as f64 * 11.0 * etu_ns
                + back as f64 * 12.0 * etu_ns
                + blocks.saturating_sub(1) as f64 * bgt_ns;
            let line = last - first;
            println!(
                "| {name} | {n} B | {to} / {back} | {blocks} | {:.1} ms | {:.1} ms | {:.3} | {} |",
                minimum / 1e6,
                line / 1e6,
                line / minimum,
                ms(round_trip)
            );
        }
    }
}
