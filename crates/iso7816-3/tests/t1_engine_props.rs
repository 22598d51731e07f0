//! Property tests of the T=1 engines alone: any sequence of events and application calls
//! (valid blocks, garbage, parity errors, deadlines) never panics, and every block an engine
//! transmits is a well-formed, defined block within the size limits in force.
#![allow(
    clippy::indexing_slicing,
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic
)]

use proptest::prelude::*;
use tessera_iso7816_3::t1::{
    Action, Block, BlockRepr, Card, Config, Edc, Event, RError, Reader, SBlock, Seq, MAX_BLOCK_LEN,
};

#[derive(Debug, Clone)]
enum Op {
    /// A well-formed block (any type) arrives.
    Block(Vec<u8>),
    /// Arbitrary characters arrive.
    Bytes(Vec<u8>),
    Parity,
    Deadline,
    /// An application call: kind and argument.
    Call(u8, u16),
}

fn block_bytes(edc: Edc) -> impl Strategy<Value = Vec<u8>> {
    let kind = prop_oneof![
        (any::<bool>(), any::<bool>(), 0usize..40)
            .prop_map(|(ns, more, len)| (0u8, ns, more, len, 0u8)),
        (any::<bool>(), 0u8..3).prop_map(|(nr, e)| (1u8, nr, false, 0, e)),
        (0u8..8, 1u8..=254).prop_map(|(s, v)| (
            2u8,
            false,
            false,
            0,
            s.wrapping_mul(32).wrapping_add(v % 32)
        )),
        any::<u8>().prop_map(|pcb| (3u8, false, false, 0, pcb)),
    ];
    kind.prop_map(move |(t, a, more, len, x)| {
        let inf: Vec<u8> = (0..len as u8).collect();
        let repr = match t {
            0 => BlockRepr::I {
                nad: 0,
                ns: Seq::from_bit(a),
                more,
                inf: &inf,
            },
            1 => BlockRepr::R {
                nad: 0,
                nr: Seq::from_bit(a),
                error: [RError::NoError, RError::EdcOrParity, RError::Other][usize::from(x)],
            },
            2 => {
                let v = (x % 32).max(1);
                let kind = match x / 32 {
                    0 => SBlock::ResynchRequest,
                    1 => SBlock::ResynchResponse,
                    2 => SBlock::IfsRequest(v),
                    3 => SBlock::IfsResponse(v),
                    4 => SBlock::AbortRequest,
                    5 => SBlock::AbortResponse,
                    6 => SBlock::WtxRequest(v),
                    _ => SBlock::WtxResponse(v),
                };
                BlockRepr::S { nad: 0, kind }
            }
            _ => BlockRepr::Unknown {
                nad: 0,
                pcb: x,
                inf: &[],
            },
        };
        let mut out = vec![0u8; MAX_BLOCK_LEN];
        let n = repr.emit_slice(&mut out, edc).unwrap();
        out.truncate(n);
        out
    })
}

fn ops(edc: Edc) -> impl Strategy<Value = Vec<Op>> {
    let op = prop_oneof![
        4 => block_bytes(edc).prop_map(Op::Block),
        1 => proptest::collection::vec(any::<u8>(), 0..12).prop_map(Op::Bytes),
        1 => Just(Op::Parity),
        4 => Just(Op::Deadline),
        2 => (0u8..3, 0u16..600).prop_map(|(k, a)| Op::Call(k, a)),
    ];
    proptest::collection::vec(op, 0..120)
}

/// The transmitted block is well-formed and defined; returns its INF length if an I-block.
fn check_transmit<C>(action: &Action<'_, C>, edc: Edc, nad: u8) -> Option<usize> {
    let bytes = action.transmit?;
    let block = Block::new_checked(bytes, edc).expect("engine sent a malformed block");
    let repr = BlockRepr::parse(&block).unwrap();
    assert!(
        !matches!(repr, BlockRepr::Unknown { .. }),
        "engine sent an undefined block: {repr:?}"
    );
    assert_eq!(repr.nad(), nad);
    match repr {
        BlockRepr::I { inf, .. } => Some(inf.len()),
        _ => None,
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 1024, ..ProptestConfig::default() })]

    #[test]
    fn reader_survives_any_input(
        ifsc in 1u8..=254,
        ifsd in 1u8..=254,
        (edc, script) in any::<bool>().prop_flat_map(|crc| {
            let edc = if crc { Edc::Crc } else { Edc::Lrc };
            (Just(edc), ops(edc))
        }),
    ) {
        let mut reader = Reader::new(Config { ifsc, ifsd, edc, ..Config::DEFAULT }, [0x5Au8; 512]);
        for op in script {
            let action = match op {
                Op::Block(bytes) | Op::Bytes(bytes) => reader.handle(Event::Received(&bytes)),
                Op::Parity => reader.handle(Event::ParityError),
                Op::Deadline => reader.handle(Event::DeadlinePassed),
                Op::Call(0, len) => match reader.transmit(usize::from(len)) { Ok(a) => a, Err(_) => continue },
                Op::Call(1, v) => match reader.request_ifsd(v as u8) { Ok(a) => a, Err(_) => continue },
                Op::Call(_, _) => match reader.resynch() { Ok(a) => a, Err(_) => continue },
            };
            let inf = check_transmit(&action, edc, 0);
            let deadline = action.deadline;
            prop_assert!(inf.unwrap_or(0) <= usize::from(reader.ifsc()), "I-block of {inf:?} bytes");
            // While an exchange is in progress something is always armed.
            if !reader.is_idle() && !reader.needs_reset() {
                prop_assert!(deadline.is_some(), "reader busy with nothing armed");
            }
        }
    }

    #[test]
    fn card_survives_any_input(
        ifsc in 1u8..=254,
        (edc, script) in any::<bool>().prop_flat_map(|crc| {
            let edc = if crc { Edc::Crc } else { Edc::Lrc };
            (Just(edc), ops(edc))
        }),
    ) {
        let mut card = Card::new(Config { ifsc, edc, ..Config::DEFAULT }, [0xA5u8; 512]);
        for op in script {
            let action = match op {
                Op::Block(bytes) | Op::Bytes(bytes) => card.handle(Event::Received(&bytes)),
                Op::Parity => card.handle(Event::ParityError),
                Op::Deadline => card.handle(Event::DeadlinePassed),
                Op::Call(0, len) => match card.respond(usize::from(len)) { Ok(a) => a, Err(_) => continue },
                Op::Call(1, v) => match card.request_wtx(v as u8) { Ok(a) => a, Err(_) => continue },
                Op::Call(_, v) => match card.request_ifsc(v as u8) { Ok(a) => a, Err(_) => continue },
            };
            let inf = check_transmit(&action, edc, 0);
            prop_assert!(inf.unwrap_or(0) <= usize::from(card.ifsd()), "I-block of {inf:?} bytes");
        }
    }
}
