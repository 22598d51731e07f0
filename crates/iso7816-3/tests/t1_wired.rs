//! The T=1 reader and card engines wired to each other: clean exchanges in every
//! configuration, S-blocks from both sides, every single-character fault of one exchange, and
//! the memory footprint.
#![allow(
    clippy::indexing_slicing,
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic
)]

mod t1_support;

use std::cell::Cell;

use t1_support::*;
use tessera_iso7816_3::t1::{Card, CardEvent, Config, Edc, Reader, ReaderEvent, MAX_BLOCK_LEN};

/// The card application of these tests: the response is the command reversed, plus 90 00.
fn reversing_app(wtx: Option<u8>, ifsc: Option<u8>) -> impl FnMut(&mut [u8], usize) -> Reply {
    move |buf, len| {
        buf[..len].reverse();
        buf[len..len + 2].copy_from_slice(&[0x90, 0x00]);
        Reply {
            wtx,
            ifsc,
            len: len + 2,
        }
    }
}

fn apdu(len: usize, salt: u8) -> Vec<u8> {
    (0..len)
        .map(|i| (i as u8).wrapping_mul(31).wrapping_add(salt))
        .collect()
}

fn expected(apdu: &[u8]) -> Vec<u8> {
    let mut rsp: Vec<u8> = apdu.iter().rev().copied().collect();
    rsp.extend_from_slice(&[0x90, 0x00]);
    rsp
}

fn exchange(
    wire: &mut Wire<'_>,
    cmd: &[u8],
    app: &mut dyn FnMut(&mut [u8], usize) -> Reply,
) -> ReaderEvent {
    wire.reader.buffer_mut()[..cmd.len()].copy_from_slice(cmd);
    let action = copy_action(wire.reader.transmit(cmd.len()).unwrap());
    wire.reader_action(action.borrowed());
    wire.run_transaction(200_000, app)
}

#[test]
fn clean_line_every_configuration() {
    let mut reader_buf = vec![0u8; 1100];
    let mut card_buf = vec![0u8; 1100];
    for edc in [Edc::Lrc, Edc::Crc] {
        for (ifsc, ifsd) in [(1, 1), (4, 32), (32, 32), (254, 16), (254, 254)] {
            for max_chunk in [1, 7, 300] {
                let config = Config {
                    ifsc,
                    edc,
                    ..Config::DEFAULT
                };
                let mut wire = Wire::new(
                    config,
                    config,
                    &mut reader_buf,
                    &mut card_buf,
                    FaultRates::default(),
                    1,
                );
                wire.max_chunk = max_chunk;
                let mut app = reversing_app(None, None);
                if ifsd != 32 {
                    let action = copy_action(wire.reader.request_ifsd(ifsd).unwrap());
                    wire.reader_action(action.borrowed());
                    assert_eq!(
                        wire.run_transaction(1000, &mut app),
                        ReaderEvent::IfsdSet(ifsd)
                    );
                }
                for (n, len) in [0, 1, 5, 31, 32, 33, 253, 254, 255, 509, 1000]
                    .into_iter()
                    .enumerate()
                {
                    let cmd = apdu(len, n as u8);
                    let event = exchange(&mut wire, &cmd, &mut app);
                    let want = expected(&cmd);
                    assert_eq!(
                        event,
                        ReaderEvent::Response { len: want.len() },
                        "{edc} IFSC {ifsc} IFSD {ifsd} len {len}"
                    );
                    assert_eq!(&wire.reader.buffer()[..want.len()], &want[..]);
                }
                assert_eq!(wire.card.ifsd(), ifsd);
                assert!(wire.reader.is_idle());
            }
        }
    }
}

#[test]
fn s_blocks_from_both_sides() {
    let mut reader_buf = vec![0u8; 600];
    let mut card_buf = vec![0u8; 600];
    let config = Config {
        ifsc: 20,
        ..Config::DEFAULT
    };
    let mut wire = Wire::new(
        config,
        config,
        &mut reader_buf,
        &mut card_buf,
        FaultRates::default(),
        2,
    );
    // The reader raises IFSD, the card answers.
    let mut app = reversing_app(Some(3), None);
    let action = copy_action(wire.reader.request_ifsd(254).unwrap());
    wire.reader_action(action.borrowed());
    assert_eq!(
        wire.run_transaction(1000, &mut app),
        ReaderEvent::IfsdSet(254)
    );
    assert_eq!(wire.card_events, [CardEvent::IfsdChanged(254)]);
    // The card asks for WTX 3 while processing; the reader answers and waits 3 BWT.
    let cmd = apdu(100, 1);
    assert_eq!(
        exchange(&mut wire, &cmd, &mut app),
        ReaderEvent::Response { len: 102 }
    );
    assert!(wire
        .reader_events
        .contains(&ReaderEvent::WaitingTimeExtension(3)));
    assert!(wire.card_events.contains(&CardEvent::WtxAcknowledged(3)));
    // The card announces IFSC 200; the reader chains the next command with it.
    let mut app = reversing_app(None, Some(200));
    assert_eq!(
        exchange(&mut wire, &cmd, &mut app),
        ReaderEvent::Response { len: 102 }
    );
    assert!(wire.reader_events.contains(&ReaderEvent::IfscChanged(200)));
    assert_eq!((wire.reader.ifsc(), wire.card.ifsc()), (200, 200));
    let long = apdu(400, 2);
    wire.log = Some(Vec::new());
    assert_eq!(
        exchange(&mut wire, &long, &mut app),
        ReaderEvent::Response { len: 402 }
    );
    let log = wire.log.take().unwrap();
    // 400 bytes in IFSC 200: two I-blocks from the reader (plus the S(IFS response) on the way).
    let first = log
        .iter()
        .find(|l| l.contains("IFD > 00 20 C8"))
        .expect("I(0,1) of 200 bytes");
    assert!(first.len() > 600);
    // An explicit resynchronisation restores the initial IFSC and IFSD on both sides.
    let action = copy_action(wire.reader.resynch().unwrap());
    wire.reader_action(action.borrowed());
    assert_eq!(
        wire.run_transaction(1000, &mut app),
        ReaderEvent::Resynchronised
    );
    assert_eq!((wire.reader.ifsc(), wire.reader.ifsd()), (20, 32));
    assert_eq!((wire.card.ifsc(), wire.card.ifsd()), (20, 32));
    let mut app = reversing_app(None, None);
    assert_eq!(
        exchange(&mut wire, &cmd, &mut app),
        ReaderEvent::Response { len: 102 }
    );
}

/// Every single-character fault (bit flip, parity error, loss, duplication) at every position
/// of one chained exchange, in either direction, is repaired: the response is right and the
/// card saw the command exactly once.
#[test]
fn every_single_character_fault_is_recovered() {
    let config = Config {
        ifsc: 8,
        ifsd: 8,
        ..Config::DEFAULT
    };
    let cmd = apdu(20, 7);
    let want = expected(&cmd);
    // Characters on the line in a clean run, per direction.
    let (to_card_len, to_reader_len) = {
        let mut rb = vec![0u8; 64];
        let mut cb = vec![0u8; 64];
        let mut wire = Wire::new(config, config, &mut rb, &mut cb, FaultRates::default(), 3);
        wire.log = Some(Vec::new());
        let mut app = reversing_app(Some(2), None);
        assert_eq!(
            exchange(&mut wire, &cmd, &mut app),
            ReaderEvent::Response { len: want.len() }
        );
        let log = wire.log.unwrap();
        let count = |who: &str| -> u64 {
            log.iter()
                .filter(|l| l.contains(who))
                .map(|l| l.split(" > ").nth(1).unwrap().split(' ').count() as u64)
                .sum()
        };
        (count("IFD >"), count("ICC >"))
    };
    let mut cases = 0;
    for to_card in [true, false] {
        let total = if to_card { to_card_len } else { to_reader_len };
        for kind in 0..4 {
            for position in 0..total {
                let mut rb = vec![0u8; 64];
                let mut cb = vec![0u8; 64];
                let mut wire = Wire::new(
                    config,
                    config,
                    &mut rb,
                    &mut cb,
                    FaultRates::default(),
                    position,
                );
                wire.max_chunk = 1 + (position as usize % 5);
                if to_card {
                    wire.to_card.inject_once(kind, position);
                } else {
                    wire.to_reader.inject_once(kind, position);
                }
                let deliveries = Cell::new(0);
                let mut app = |buf: &mut [u8], len: usize| {
                    deliveries.set(deliveries.get() + 1);
                    assert_eq!(&buf[..len], &cmd[..], "corrupted command delivered");
                    reversing_app(Some(2), None)(buf, len)
                };
                let event = exchange(&mut wire, &cmd, &mut app);
                let counts = if to_card {
                    wire.to_card.counts
                } else {
                    wire.to_reader.counts
                };
                assert_eq!(
                    counts.flip + counts.parity + counts.drop + counts.dup,
                    1,
                    "fault {kind} at {position} not injected"
                );
                assert_eq!(
                    event,
                    ReaderEvent::Response { len: want.len() },
                    "fault {kind} at {position}, to card: {to_card}"
                );
                assert_eq!(&wire.reader.buffer()[..want.len()], &want[..]);
                assert_eq!(
                    deliveries.get(),
                    1,
                    "fault {kind} at {position}, to card: {to_card}"
                );
                cases += 1;
            }
        }
    }
    assert!(cases > 300, "{cases} cases");
}

#[test]
fn memory_footprint() {
    let reader = std::mem::size_of::<Reader<&mut [u8]>>();
    let card = std::mem::size_of::<Card<&mut [u8]>>();
    println!("T=1 engine footprint (the APDU buffer is lent, not included):");
    println!("  Reader<&mut [u8]>: {reader} bytes");
    println!("  Card<&mut [u8]>:   {card} bytes");
    println!("  of which the block buffer: {MAX_BLOCK_LEN} bytes");
    // One block buffer plus a little state: well inside the firmware's RAM budget.
    assert!(reader <= MAX_BLOCK_LEN + 128, "{reader}");
    assert!(card <= MAX_BLOCK_LEN + 128, "{card}");
}
