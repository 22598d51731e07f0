//! T=1 soak: a reader engine and a card engine wired through a seeded lossy line for 10,000
//! APDUs.
//!
//! The line (tests/t1_support) injects, independently in each direction and per character:
//! a silent bit flip (undetected by parity, 1e-4), a parity error the UART reports (1e-4), a
//! lost character (1e-4) and a duplicated character (1e-4). With about 4.5 KB on the line per
//! APDU that is roughly two faults per APDU: most are repaired by retransmission, and a few
//! per cent exhaust the retry limit and end in a clean `Failed(Resynchronised)`.
//!
//! Time is virtual: characters in flight are delivered first (in random chunks); when the
//! line is quiet the earliest armed deadline fires (BGT 22, CWT 43, BWT 15 371 etu).
//!
//! The run is split into segments of 500 APDUs; each starts from a fresh ATR with a random
//! IFSC, then the reader negotiates a random IFSD with S(IFS request) (again after each
//! resynchronisation). Characters are delivered in random chunks of 1 to 5, 16, 64 or 300
//! depending on the segment.
//! The card sometimes asks for WTX or announces a new IFSC before answering.
//!
//! Commands are `seq (4 bytes, big-endian) || payload`, 4 to 4096 bytes; the card checks the
//! sequence number and the whole content, and answers with a response whose length (0 to
//! 4096) and bytes derive from the command. Asserted:
//! - the card sees each command at most once, never a corrupted one, and only the one in
//!   flight;
//! - a transaction ends with the exact expected response (and then the card saw the command)
//!   or a clean typed error, within a bounded number of steps, without panics.
//!
//! The EDC is CRC: with LRC, two faults in one block (e.g. a lost and a duplicated character
//! of equal value, or two flips of the same bit) pass undetected often enough at these rates
//! to deliver corrupted APDUs (LRC only guarantees detection of single-bit errors). CRC-16
//! detects all one- to three-bit errors and the rest with probability 1 - 2^-16.
//!
//! `TESSERA_SOAK_SEED` overrides the seed; `TESSERA_SOAK_FAULT_RATE` the per-kind rate (1e-4;
//! above about 3e-4 the CRC's 2^-16 miss rate starts to matter over 10,000 APDUs).
#![allow(
    clippy::indexing_slicing,
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic
)]

mod t1_support;

use std::cell::{Cell, RefCell};
use std::time::Instant;

use t1_support::*;
use tessera_iso7816_3::t1::{Config, Edc, ReaderEvent, TransactionError};

const APDUS: u32 = 10_000;
const SEGMENT: u32 = 500;
const MAX_LEN: usize = 4096;
const MAX_STEPS_PER_APDU: u64 = 100_000;
const DEFAULT_SEED: u64 = 0x7E55_E8A0_7153_0001;
const IFS_CHOICES: [u8; 7] = [16, 32, 64, 100, 128, 200, 254];

fn mix(mut x: u64) -> u64 {
    x ^= x >> 33;
    x = x.wrapping_mul(0xFF51_AFD7_ED55_8CCD);
    x ^= x >> 33;
    x = x.wrapping_mul(0xC4CE_B9FE_1A85_EC53);
    x ^ (x >> 33)
}

/// Random bytes the commands are cut from.
fn pool() -> &'static [u8] {
    static POOL: std::sync::OnceLock<Vec<u8>> = std::sync::OnceLock::new();
    POOL.get_or_init(|| {
        let mut rng = Rng::new(0x5EED);
        (0..2 * MAX_LEN).map(|_| rng.next_u64() as u8).collect()
    })
}

/// The command with sequence number `seq`, `len` bytes (at least 4): the number, then bytes
/// of the pool at an offset that depends on it.
fn command(seq: u32, len: usize) -> Vec<u8> {
    let off = (seq as usize).wrapping_mul(7919) % MAX_LEN;
    let mut cmd = seq.to_be_bytes().to_vec();
    cmd.extend_from_slice(&pool()[off..off + len - 4]);
    cmd
}

/// The response the card derives from a command: a length and bytes that depend on all of it.
fn response(cmd: &[u8]) -> Vec<u8> {
    let mut sum = cmd.len() as u64;
    for word in cmd.chunks(8) {
        let mut w = [0u8; 8];
        w[..word.len()].copy_from_slice(word);
        sum = mix(sum ^ u64::from_le_bytes(w));
    }
    let len = (sum % (MAX_LEN as u64 + 1)) as usize;
    // The command repeated, each copy rotated by a key from the hash.
    let key = (sum >> 16) as usize % cmd.len();
    let mut rsp = Vec::with_capacity(len);
    while rsp.len() < len {
        let take = (len - rsp.len()).min(cmd.len() - key);
        rsp.extend_from_slice(&cmd[key..key + take]);
        let take = (len - rsp.len()).min(key);
        rsp.extend_from_slice(&cmd[..take]);
    }
    if let Some(last) = rsp.last_mut() {
        *last ^= sum as u8;
    }
    rsp
}

#[derive(Default, Debug)]
struct Tally {
    delivered: u64,
    failed_resynch: u64,
    failed_delivered: u64,
    card_unresponsive: u64,
    other_failures: u64,
    ifsd_failures: u64,
    faults: FaultCounts,
    steps: u64,
    virtual_etu: u64,
    bytes: u64,
}

#[test]
fn soak_lossy_channel_10000_apdus() {
    let seed = std::env::var("TESSERA_SOAK_SEED")
        .ok()
        .map(|s| {
            let s = s.trim();
            s.strip_prefix("0x").map_or_else(
                || s.parse().unwrap(),
                |h| u64::from_str_radix(h, 16).unwrap(),
            )
        })
        .unwrap_or(DEFAULT_SEED);
    let rate = std::env::var("TESSERA_SOAK_FAULT_RATE")
        .ok()
        .map_or(1e-4, |r| r.trim().parse().unwrap());
    let rates = FaultRates {
        flip: rate,
        parity: rate,
        drop: rate,
        dup: rate,
    };
    let started = Instant::now();
    let mut plan = Rng::new(seed ^ 0xA5A5);
    let mut tally = Tally::default();
    let mut reader_buf = vec![0u8; MAX_LEN];
    let mut card_buf = vec![0u8; MAX_LEN];

    // Card-side bookkeeping, shared with the card application closure.
    let in_flight = Cell::new(u32::MAX);
    let seen = RefCell::new(vec![false; APDUS as usize]);

    let mut seq = 0u32;
    while seq < APDUS {
        // A new segment: a fresh ATR (IFSC), then the reader's S(IFS request).
        let ifsc = IFS_CHOICES[plan.range(0, IFS_CHOICES.len() as u64 - 1) as usize];
        let ifsd = IFS_CHOICES[plan.range(0, IFS_CHOICES.len() as u64 - 1) as usize];
        let config = Config {
            ifsc,
            edc: Edc::Crc,
            ..Config::DEFAULT
        };
        let mut wire = Wire::new(
            config,
            config,
            &mut reader_buf,
            &mut card_buf,
            rates,
            plan.next_u64(),
        );
        // Deliveries of 1 to `max_chunk` characters: a byte-per-interrupt UART up to a DMA
        // driver handing over whole blocks.
        wire.max_chunk = [300, 5, 64, 16][(seq / SEGMENT) as usize % 4];

        let mut app = |buf: &mut [u8], len: usize| -> Reply {
            assert!(len >= 4, "card got a {len}-byte command");
            let got = u32::from_be_bytes(buf[..4].try_into().unwrap());
            assert_eq!(
                got,
                in_flight.get(),
                "card got command {got} while {} is in flight",
                in_flight.get()
            );
            let mut seen = seen.borrow_mut();
            assert!(!seen[got as usize], "command {got} delivered twice");
            seen[got as usize] = true;
            assert!(
                buf[..len] == command(got, len)[..],
                "command {got} delivered corrupted"
            );
            let rsp = response(&buf[..len]);
            buf[..rsp.len()].copy_from_slice(&rsp);
            let wtx = (got % 97 == 0).then_some(2);
            let ifsc =
                (got % 89 == 0).then(|| IFS_CHOICES[(got / 89) as usize % IFS_CHOICES.len()]);
            Reply {
                wtx,
                ifsc,
                len: rsp.len(),
            }
        };

        start_ifsd(&mut wire, ifsd);
        finish_ifsd(&mut wire, &mut tally, ifsd, &mut app);

        let end = (seq + SEGMENT).min(APDUS);
        while seq < end {
            let len = plan.range(4, MAX_LEN as u64) as usize;
            let cmd = command(seq, len);
            in_flight.set(seq);
            wire.reader.buffer_mut()[..len].copy_from_slice(&cmd);
            let action = copy_action(wire.reader.transmit(len).expect("transmit"));
            wire.reader_action(action.borrowed());
            match wire.run_transaction(MAX_STEPS_PER_APDU, &mut app) {
                ReaderEvent::Response { len } => {
                    assert!(
                        seen.borrow()[seq as usize],
                        "response to {seq} without delivery"
                    );
                    assert!(
                        wire.reader.buffer()[..len] == response(&cmd)[..],
                        "response to {seq} differs"
                    );
                    tally.delivered += 1;
                }
                ReaderEvent::Failed(error) => {
                    if seen.borrow()[seq as usize] {
                        tally.failed_delivered += 1;
                    }
                    match error {
                        TransactionError::Resynchronised => tally.failed_resynch += 1,
                        TransactionError::CardUnresponsive => {
                            // Warm reset of the card: both engines restart from the ATR.
                            tally.card_unresponsive += 1;
                            wire.reader.reset();
                            wire.card.reset();
                        }
                        _ => tally.other_failures += 1,
                    }
                    // After a resynchronisation IFSD is back to 32: negotiate again.
                    start_ifsd(&mut wire, ifsd);
                    finish_ifsd(&mut wire, &mut tally, ifsd, &mut app);
                }
                other => panic!("unexpected completion {other:?}"),
            }
            seq += 1;
        }
        let faults = [wire.to_card.counts, wire.to_reader.counts];
        for f in faults {
            tally.faults.flip += f.flip;
            tally.faults.parity += f.parity;
            tally.faults.drop += f.drop;
            tally.faults.dup += f.dup;
        }
        tally.steps += wire.steps;
        tally.virtual_etu += wire.now;
        tally.bytes += wire.bytes_sent;
    }

    let failed = tally.failed_resynch + tally.card_unresponsive + tally.other_failures;
    let elapsed = started.elapsed();
    println!("T=1 soak: seed {seed:#018x} (override with TESSERA_SOAK_SEED), fault rate {rate:e} per kind");
    println!(
        "  {APDUS} APDUs: {} delivered with the right response, {failed} failed cleanly \
         ({} resynchronised, {} card unresponsive, {} other; {} of the failed had reached the card)",
        tally.delivered, tally.failed_resynch, tally.card_unresponsive, tally.other_failures, tally.failed_delivered
    );
    println!(
        "  faults: {} bit flips, {} parity errors, {} dropped, {} duplicated characters; {} IFS negotiations failed",
        tally.faults.flip, tally.faults.parity, tally.faults.drop, tally.faults.dup, tally.ifsd_failures
    );
    println!(
        "  {} characters sent, {} engine steps, {:.1} s virtual at 9600 etu/s, {:.2?} wall",
        tally.bytes,
        tally.steps,
        tally.virtual_etu as f64 / 9600.0,
        elapsed
    );
    assert_eq!(tally.delivered + failed, u64::from(APDUS));
    if rate <= 1e-4 {
        assert!(
            tally.delivered > u64::from(APDUS) * 9 / 10,
            "too few APDUs delivered: {}",
            tally.delivered
        );
    }
    assert!(
        tally.faults.flip > 0
            && tally.faults.drop > 0
            && tally.faults.dup > 0
            && tally.faults.parity > 0
    );
}

fn start_ifsd(wire: &mut Wire<'_>, ifsd: u8) {
    let action = copy_action(wire.reader.request_ifsd(ifsd).expect("request_ifsd"));
    wire.reader_action(action.borrowed());
}

fn finish_ifsd(
    wire: &mut Wire<'_>,
    tally: &mut Tally,
    ifsd: u8,
    app: &mut dyn FnMut(&mut [u8], usize) -> Reply,
) {
    match wire.run_transaction(MAX_STEPS_PER_APDU, app) {
        ReaderEvent::IfsdSet(v) => assert_eq!(v, ifsd),
        ReaderEvent::Failed(TransactionError::CardUnresponsive) => {
            tally.ifsd_failures += 1;
            wire.reader.reset();
            wire.card.reset();
        }
        ReaderEvent::Failed(_) => tally.ifsd_failures += 1,
        other => panic!("unexpected completion {other:?} for S(IFS request)"),
    }
}
