//! T=1 blocks: transcripts of real blocks (a SmartCard-HSM session over T=1 with LRC) and the
//! laws of the wire layer as property tests.
#![allow(
    clippy::indexing_slicing,
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic
)]

mod t1_support;

use proptest::prelude::*;
use t1_support::hex;
use tessera_iso7816_3::t1::{Block, BlockRepr, Edc, Error, RError, SBlock, Seq, MAX_BLOCK_LEN};

/// One block of the transcript: its bytes and what they mean.
struct Line {
    bytes: &'static str,
    repr: BlockRepr<'static>,
}

fn transcript() -> Vec<Line> {
    use BlockRepr::{I, R, S};
    vec![
        // IFD -> ICC  S(IFS request 254): the bridge raises IFSD after PPS
        Line {
            bytes: "00 C1 01 FE 3E",
            repr: S {
                nad: 0,
                kind: SBlock::IfsRequest(254),
            },
        },
        // ICC -> IFD  S(IFS response 254)
        Line {
            bytes: "00 E1 01 FE 1E",
            repr: S {
                nad: 0,
                kind: SBlock::IfsResponse(254),
            },
        },
        // IFD -> ICC  I(0,0) SELECT the SmartCard-HSM applet, AID E8 2B 06 01 04 01 81 C3 1F 02 01
        Line {
            bytes: "00 00 11 00 A4 04 00 0B E8 2B 06 01 04 01 81 C3 1F 02 01 00 25",
            repr: I {
                nad: 0,
                ns: Seq::Zero,
                more: false,
                inf: &[
                    0x00, 0xA4, 0x04, 0x00, 0x0B, 0xE8, 0x2B, 0x06, 0x01, 0x04, 0x01, 0x81, 0xC3,
                    0x1F, 0x02, 0x01, 0x00,
                ],
            },
        },
        // ICC -> IFD  I(0,0) 90 00
        Line {
            bytes: "00 00 02 90 00 92",
            repr: I {
                nad: 0,
                ns: Seq::Zero,
                more: false,
                inf: &[0x90, 0x00],
            },
        },
        // IFD -> ICC  I(1,0) VERIFY user PIN, no data: ask for the retry counter
        Line {
            bytes: "00 40 05 00 20 00 81 00 E4",
            repr: I {
                nad: 0,
                ns: Seq::One,
                more: false,
                inf: &[0x00, 0x20, 0x00, 0x81, 0x00],
            },
        },
        // ICC -> IFD  S(WTX request 2): the card needs more time
        Line {
            bytes: "00 C3 01 02 C0",
            repr: S {
                nad: 0,
                kind: SBlock::WtxRequest(2),
            },
        },
        // IFD -> ICC  S(WTX response 2)
        Line {
            bytes: "00 E3 01 02 E0",
            repr: S {
                nad: 0,
                kind: SBlock::WtxResponse(2),
            },
        },
        // ICC -> IFD  I(1,0) 63 C3: three tries left
        Line {
            bytes: "00 40 02 63 C3 E2",
            repr: I {
                nad: 0,
                ns: Seq::One,
                more: false,
                inf: &[0x63, 0xC3],
            },
        },
        // IFD -> ICC  R(1) EDC error (the card's block arrived damaged)
        Line {
            bytes: "00 91 00 91",
            repr: R {
                nad: 0,
                nr: Seq::One,
                error: RError::EdcOrParity,
            },
        },
        // ICC -> IFD  R(0) other error
        Line {
            bytes: "00 82 00 82",
            repr: R {
                nad: 0,
                nr: Seq::Zero,
                error: RError::Other,
            },
        },
        // IFD -> ICC  S(RESYNCH request); ICC -> IFD  S(RESYNCH response)
        Line {
            bytes: "00 C0 00 C0",
            repr: S {
                nad: 0,
                kind: SBlock::ResynchRequest,
            },
        },
        Line {
            bytes: "00 E0 00 E0",
            repr: S {
                nad: 0,
                kind: SBlock::ResynchResponse,
            },
        },
        // IFD -> ICC  S(ABORT request); ICC -> IFD  S(ABORT response)
        Line {
            bytes: "00 C2 00 C2",
            repr: S {
                nad: 0,
                kind: SBlock::AbortRequest,
            },
        },
        Line {
            bytes: "00 E2 00 E2",
            repr: S {
                nad: 0,
                kind: SBlock::AbortResponse,
            },
        },
        // With addressing: NAD 12 (DAD 1, SAD 2), I(0,1) with an empty chained INF (Annex A)
        Line {
            bytes: "12 20 00 32",
            repr: I {
                nad: 0x12,
                ns: Seq::Zero,
                more: true,
                inf: &[],
            },
        },
        // An undefined PCB (S-block type 00100) survives byte for byte
        Line {
            bytes: "00 C4 00 C4",
            repr: BlockRepr::Unknown {
                nad: 0,
                pcb: 0xC4,
                inf: &[],
            },
        },
    ]
}

#[test]
fn transcript_deconstruct_and_parse() {
    for line in transcript() {
        let bytes = hex(line.bytes);
        let block = Block::new_checked(&bytes[..], Edc::Lrc)
            .unwrap_or_else(|e| panic!("{}: {e}", line.bytes));
        assert_eq!(block.nad(), line.repr.nad(), "{}", line.bytes);
        assert_eq!(block.pcb(), line.repr.pcb(), "{}", line.bytes);
        assert_eq!(
            usize::from(block.inf_len()),
            line.repr.inf_len(),
            "{}",
            line.bytes
        );
        assert_eq!(BlockRepr::parse(&block), Ok(line.repr), "{}", line.bytes);
    }
}

#[test]
fn transcript_construct_and_emit() {
    for line in transcript() {
        let bytes = hex(line.bytes);
        let mut buf = vec![0u8; line.repr.buffer_len(Edc::Lrc)];
        let mut block = Block::new_unchecked(&mut buf[..], Edc::Lrc);
        line.repr.emit(&mut block).unwrap();
        assert_eq!(buf, bytes, "{}", line.bytes);
    }
}

#[test]
fn transcript_every_single_bit_flip_is_an_edc_error() {
    for line in transcript() {
        let bytes = hex(line.bytes);
        for bit in 0..bytes.len() * 8 {
            let mut bad = bytes.clone();
            bad[bit / 8] ^= 1 << (bit % 8);
            let result = Block::new_checked(&bad[..], Edc::Lrc);
            // A flip in LEN changes the framing instead.
            if bit / 8 == 2 {
                assert!(result.is_err(), "{} bit {bit}", line.bytes);
            } else {
                assert_eq!(
                    result.err(),
                    Some(Error::EdcMismatch),
                    "{} bit {bit}",
                    line.bytes
                );
            }
        }
    }
}

#[test]
fn crc_blocks_round_trip() {
    // IFD -> ICC  S(IFS request 254) with CRC: 00 C1 01 FE, then the FCS low-order byte first
    let bytes = hex("00 C1 01 FE B1 AB");
    let block = Block::new_checked(&bytes[..], Edc::Crc).unwrap();
    assert_eq!(block.epilogue(), &[0xB1, 0xAB]);
    let repr = BlockRepr::parse(&block).unwrap();
    assert_eq!(
        repr,
        BlockRepr::S {
            nad: 0,
            kind: SBlock::IfsRequest(254)
        }
    );
    let mut out = [0u8; MAX_BLOCK_LEN];
    let n = repr.emit_slice(&mut out, Edc::Crc).unwrap();
    assert_eq!(&out[..n], &bytes[..]);
}

fn edc() -> impl Strategy<Value = Edc> {
    prop_oneof![Just(Edc::Lrc), Just(Edc::Crc)]
}

fn seq() -> impl Strategy<Value = Seq> {
    any::<bool>().prop_map(Seq::from_bit)
}

fn s_block() -> impl Strategy<Value = SBlock> {
    prop_oneof![
        Just(SBlock::ResynchRequest),
        Just(SBlock::ResynchResponse),
        (1u8..=254).prop_map(SBlock::IfsRequest),
        (1u8..=254).prop_map(SBlock::IfsResponse),
        Just(SBlock::AbortRequest),
        Just(SBlock::AbortResponse),
        any::<u8>().prop_map(SBlock::WtxRequest),
        any::<u8>().prop_map(SBlock::WtxResponse),
    ]
}

/// A repr and the INF bytes it borrows.
#[derive(Debug, Clone)]
enum Owned {
    I {
        nad: u8,
        ns: Seq,
        more: bool,
        inf: Vec<u8>,
    },
    R {
        nad: u8,
        nr: Seq,
        error: RError,
    },
    S {
        nad: u8,
        kind: SBlock,
    },
    Unknown {
        nad: u8,
        pcb: u8,
        inf: Vec<u8>,
    },
}

impl Owned {
    fn repr(&self) -> BlockRepr<'_> {
        match self {
            Owned::I { nad, ns, more, inf } => BlockRepr::I {
                nad: *nad,
                ns: *ns,
                more: *more,
                inf,
            },
            Owned::R { nad, nr, error } => BlockRepr::R {
                nad: *nad,
                nr: *nr,
                error: *error,
            },
            Owned::S { nad, kind } => BlockRepr::S {
                nad: *nad,
                kind: *kind,
            },
            Owned::Unknown { nad, pcb, inf } => BlockRepr::Unknown {
                nad: *nad,
                pcb: *pcb,
                inf,
            },
        }
    }
}

fn owned_repr() -> impl Strategy<Value = Owned> {
    let error = prop_oneof![
        Just(RError::NoError),
        Just(RError::EdcOrParity),
        Just(RError::Other)
    ];
    prop_oneof![
        (
            any::<u8>(),
            seq(),
            any::<bool>(),
            proptest::collection::vec(any::<u8>(), 0..=254)
        )
            .prop_map(|(nad, ns, more, inf)| Owned::I { nad, ns, more, inf }),
        (any::<u8>(), seq(), error).prop_map(|(nad, nr, error)| Owned::R { nad, nr, error }),
        (any::<u8>(), s_block()).prop_map(|(nad, kind)| Owned::S { nad, kind }),
        // Undefined patterns: any PCB with b8 set and INF of 0 to 3 bytes that does not
        // classify as a defined block.
        (
            any::<u8>(),
            0x80u8..=0xFF,
            proptest::collection::vec(any::<u8>(), 0..=3)
        )
            .prop_filter("defined pattern", |(nad, pcb, inf)| {
                matches!(
                    BlockRepr::classify(*nad, *pcb, inf),
                    BlockRepr::Unknown { .. }
                )
            })
            .prop_map(|(nad, pcb, inf)| Owned::Unknown { nad, pcb, inf }),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 2048, ..ProptestConfig::default() })]

    #[test]
    fn parse_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..300), edc in edc()) {
        let block = Block::new_unchecked(&bytes[..], edc);
        let _ = (block.nad(), block.pcb(), block.inf_len(), block.inf(), block.epilogue(), block.block_len());
        let _ = BlockRepr::parse(&block);
        let _ = Block::new_checked(&bytes[..], edc);
    }

    #[test]
    fn emit_of_parse_is_identity(bytes in proptest::collection::vec(any::<u8>(), 0..300), edc in edc()) {
        if let Ok(block) = Block::new_checked(&bytes[..], edc) {
            let repr = BlockRepr::parse(&block).unwrap();
            let mut out = [0u8; MAX_BLOCK_LEN];
            let n = repr.emit_slice(&mut out, edc).unwrap();
            prop_assert_eq!(&out[..n], &bytes[..]);
        }
    }

    #[test]
    fn well_framed_blocks_emit_identically(
        nad in any::<u8>(), pcb in any::<u8>(), inf in proptest::collection::vec(any::<u8>(), 0..=254), edc in edc()
    ) {
        // Random prologue and INF with a correct EDC: parses (possibly as Unknown) and re-emits.
        let mut bytes = vec![nad, pcb, inf.len() as u8];
        bytes.extend_from_slice(&inf);
        bytes.extend_from_slice(&edc.compute(&bytes)[..edc.len()]);
        let block = Block::new_checked(&bytes[..], edc).unwrap();
        let repr = BlockRepr::parse(&block).unwrap();
        let mut out = [0u8; MAX_BLOCK_LEN];
        let n = repr.emit_slice(&mut out, edc).unwrap();
        prop_assert_eq!(&out[..n], &bytes[..]);
    }

    #[test]
    fn parse_of_emit_is_identity(owned in owned_repr(), edc in edc()) {
        let repr = owned.repr();
        let mut out = [0u8; MAX_BLOCK_LEN];
        let n = repr.emit_slice(&mut out, edc).unwrap();
        prop_assert_eq!(n, repr.buffer_len(edc));
        let block = Block::new_checked(&out[..n], edc).unwrap();
        prop_assert_eq!(BlockRepr::parse(&block).unwrap(), repr);
    }
}
