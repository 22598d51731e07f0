//! Figures in modelled time (printed, never asserted): boot to USB attach, and APDU round
//! trips at APDU level against the time their characters alone take on the card line. The
//! virtual board (issue 4, part 2) measures the same with the real virtual card.
//!
//! Run: `cargo nextest run -p tessera-bridge --test figures --no-capture`

mod sim;

use sim::*;
use tessera_bridge::{BootPolicy, Config, Duration};

#[test]
fn print_figures() {
    let mut w = World::new(
        Config::stock(BootPolicy::RequireCard),
        Some(TestCard::hsm()),
    );
    assert!(w.run_until(Duration::from_secs(2), |w| w.hw.attached.is_some()));
    println!(
        "boot to USB attach (require-card, v3 card, 116 129 bps): {}",
        w.now()
    );

    let mut w = World::new(Config::apdu(BootPolicy::RequireCard), Some(TestCard::hsm()));
    assert!(w.run_until(Duration::from_secs(2), |w| w.hw.attached.is_some()));
    w.configure();
    w.power_on();
    // One character: 12 etu from the card, 11 etu (CGT with N = 255) from the reader, at
    // F 372, D 12 and 3.6 MHz.
    let etu_us = 372.0 / 12.0 / 3.6;
    println!("| APDU data | chars on the line | characters alone | measured | ratio |");
    println!("|---:|---:|---:|---:|---:|");
    for n in [16usize, 256, 1024, 4096] {
        let mut apdu = vec![0x80, 0x10, 0x00, 0x00, 0x00];
        apdu.extend_from_slice(&(n as u16).to_be_bytes());
        apdu.extend((0..n).map(|i| i as u8));
        apdu.extend_from_slice(&[0x00, 0x00]);
        w.hw.trace.clear();
        let start = w.now();
        let answer = if apdu.len() <= 512 {
            w.xfr(&apdu, 0)
        } else {
            // CCID chaining, as libccid does it.
            let mut sent = 0;
            let mut a = vec![];
            while sent < apdu.len() {
                let end = (sent + 512).min(apdu.len());
                let level = match (sent == 0, end == apdu.len()) {
                    (true, _) => 1,
                    (false, true) => 2,
                    (false, false) => 3,
                };
                a = w.xfr(&apdu[sent..end], level);
                sent = end;
            }
            while a[9] == 1 || a[9] == 3 {
                a = w.xfr(&[], 0x10);
            }
            a
        };
        let took = w.now() - start;
        assert_eq!(answer[7], 0);
        let (to_card, from_card): (usize, usize) =
            w.card_trace().iter().fold((0, 0), |(t, f), (d, b)| {
                if *d == ">" {
                    (t + b.len(), f)
                } else {
                    (t, f + b.len())
                }
            });
        let minimum = (to_card as f64 * 11.0 + from_card as f64 * 12.0) * etu_us;
        println!(
            "| {n} B | {} | {:.1} ms | {:.1} ms | {:.3} |",
            to_card + from_card,
            minimum / 1000.0,
            took.as_micros() as f64 / 1000.0,
            took.as_micros() as f64 / minimum
        );
    }
}
