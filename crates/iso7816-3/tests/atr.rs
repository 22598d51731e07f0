//! ATR tests against real cards (ISO/IEC 7816-3:2006 §8): the SmartCard-HSM ATRs, the four
//! smoltcp-style wire tests, and property tests for parse, emit and the streaming length.
#![allow(
    clippy::indexing_slicing,
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic
)]

use proptest::prelude::*;
use tessera_iso7816_3::atr::{
    self, Atr, AtrRepr, ClockStop, Convention, Error, InterfaceBytes, Mode, Progress, Protocol,
    ProtocolGroup, ProtocolSet, T1Params, MAX_LEN,
};
use tessera_iso7816_3::rate::{Etu, FiDi, LineParams};
use tessera_iso7816_3::t1::Edc;

/// SmartCard-HSM on JCOP3 (a Nitrokey HSM 2), "atrJCOP3" in sc-hsm-embedded.
static HSM_JCOP3: [u8; 24] = [
    0x3B, // TS: direct convention
    0xDE, // T0: TA1 TC1 TD1 follow, K = 14
    0x18, // TA1: Fi = 372, Di = 12
    0xFF, // TC1: N = 255
    0x81, // TD1: TD2 follows, T = 1
    0x91, // TD2: TA3 TD3 follow, T = 1
    0xFE, // TA3: IFSC = 254 (no TB3: BWI 4, CWI 13)
    0x1F, // TD3: TA4 follows, T = 15
    0xC3, // TA4 (T=15): clock stop no preference, classes A and B
    0x80, 0x31, 0x81, 0x54, 0x48, 0x53, 0x4D, 0x31, // historical: 80 31 81 "THSM1"
    0x73, 0x80, 0x21, 0x40, 0x81, 0x07, //             card capabilities, status
    0x1C, // TCK
];

/// SmartCard-HSM v4 on JCOP3 with TA1 = 0x96, "atrJCOP3F".
static HSM_JCOP3_FAST: [u8; 24] = [
    0x3B, 0xDE, //
    0x96, // TA1: Fi = 512, Di = 32
    0xFF, 0x81, 0x91, 0xFE, 0x1F, 0xC3, //
    0x80, 0x31, 0x81, 0x54, 0x48, 0x53, 0x4D, 0x31, 0x73, 0x80, 0x21, 0x40, 0x81, 0x07, //
    0x92, // TCK
];

/// SmartCard-HSM, contact interface, "atrHSM".
static HSM_CONTACT: [u8; 24] = [
    0x3B, // TS
    0xFE, // T0: TA1 TB1 TC1 TD1, K = 14
    0x18, // TA1: Fi = 372, Di = 12
    0x00, // TB1
    0x00, // TC1: N = 0
    0x81, // TD1: TD2 follows, T = 1
    0x31, // TD2: TA3 TB3 follow, T = 1
    0xFE, // TA3: IFSC = 254
    0x45, // TB3: BWI = 4, CWI = 5
    0x80, 0x31, 0x81, 0x54, 0x48, 0x53, 0x4D, 0x31, 0x73, 0x80, 0x21, 0x40, 0x81, 0x07, //
    0xFA, // TCK
];

/// SmartCard-HSM, contactless interface, "atrHSMCL".
static HSM_CONTACTLESS: [u8; 19] = [
    0x3B, // TS
    0x8E, // T0: TD1 follows, K = 14
    0x80, // TD1: TD2 follows, T = 0
    0x01, // TD2: nothing follows, T = 1
    0x80, 0x31, 0x81, 0x54, 0x48, 0x53, 0x4D, 0x31, 0x73, 0x80, 0x21, 0x40, 0x81, 0x07, //
    0x18, // TCK
];

/// Plain JCOP 2.4.1 default ATR, "atrJCOP41".
static JCOP41: [u8; 18] = [
    0x3B, // TS
    0xF8, // T0: TA1 TB1 TC1 TD1, K = 8
    0x13, // TA1: Fi = 372, Di = 4
    0x00, // TB1
    0x00, // TC1
    0x81, // TD1: TD2 follows, T = 1
    0x31, // TD2: TA3 TB3 follow, T = 1
    0xFE, // TA3: IFSC = 254
    0x45, // TB3: BWI = 4, CWI = 5
    0x4A, 0x43, 0x4F, 0x50, 0x76, 0x32, 0x34, 0x31, // historical: "JCOPv241"
    0xB7, // TCK
];

/// The copy of the JCOP3 ATR with the contact ATR's TCK, found in public code: TCK wrong.
static HSM_BAD_COPY: [u8; 24] = [
    0x3B, 0xDE, 0x18, 0xFF, 0x81, 0x91, 0xFE, 0x1F, 0xC3, //
    0x80, 0x31, 0x81, 0x54, 0x48, 0x53, 0x4D, 0x31, 0x73, 0x80, 0x21, 0x40, 0x81, 0x07, //
    0xFA, // TCK: should be 0x1C
];

const HSM_HISTORICAL: [u8; 14] = [
    0x80, 0x31, 0x81, 0x54, 0x48, 0x53, 0x4D, 0x31, 0x73, 0x80, 0x21, 0x40, 0x81, 0x07,
];

fn parse(bytes: &[u8]) -> AtrRepr {
    AtrRepr::parse(&Atr::new_checked(bytes).unwrap()).unwrap()
}

/// The repr of the JCOP3 ATR, built through the setters.
fn jcop3_repr(ta1: u8) -> AtrRepr {
    let mut repr = AtrRepr::new(Convention::Direct);
    repr.set_global(InterfaceBytes {
        ta: Some(ta1),
        tb: None,
        tc: Some(0xFF),
    })
    .unwrap();
    repr.push_group(ProtocolGroup {
        protocol: Protocol::T1,
        bytes: InterfaceBytes::NONE,
    })
    .unwrap();
    repr.push_group(ProtocolGroup {
        protocol: Protocol::T1,
        bytes: InterfaceBytes {
            ta: Some(0xFE),
            tb: None,
            tc: None,
        },
    })
    .unwrap();
    repr.push_group(ProtocolGroup {
        protocol: Protocol::T15,
        bytes: InterfaceBytes {
            ta: Some(0xC3),
            tb: None,
            tc: None,
        },
    })
    .unwrap();
    repr.set_historical_bytes(&HSM_HISTORICAL).unwrap();
    repr
}

// ---- The four smoltcp-style tests ----

#[test]
fn deconstruct() {
    let atr = Atr::new_checked(&HSM_CONTACT[..]).unwrap();
    assert_eq!(atr.ts(), Some(0x3B));
    assert_eq!(atr.t0(), Some(0xFE));
    assert_eq!(atr.k(), 14);
    assert_eq!(
        (atr.ta(1), atr.tb(1), atr.tc(1), atr.td(1)),
        (Some(0x18), Some(0x00), Some(0x00), Some(0x81))
    );
    assert_eq!(
        (atr.ta(2), atr.tb(2), atr.tc(2), atr.td(2)),
        (None, None, None, Some(0x31))
    );
    assert_eq!(
        (atr.ta(3), atr.tb(3), atr.tc(3), atr.td(3)),
        (Some(0xFE), Some(0x45), None, None)
    );
    assert_eq!(atr.ta(4), None);
    assert_eq!(atr.historical_bytes(), &HSM_HISTORICAL);
    assert_eq!(atr.tck(), Some(0xFA));
    assert_eq!(atr.verify_tck(), Ok(()));
}

#[test]
fn construct() {
    let repr = jcop3_repr(0x18);
    assert_eq!(repr.buffer_len(), HSM_JCOP3.len());
    assert!(repr.has_tck());
    assert_eq!(repr.groups().len(), 3);
    assert_eq!(repr.historical_bytes(), &HSM_HISTORICAL);
    assert_eq!(repr, parse(&HSM_JCOP3));
}

#[test]
fn parse_jcop3() {
    let repr = parse(&HSM_JCOP3);
    assert_eq!(repr, jcop3_repr(0x18));
    assert_eq!(repr.convention(), Convention::Direct);
    assert_eq!(repr.fi_di(), FiDi::from_byte(0x18));
    assert_eq!(repr.fi_di().f(), Ok(372));
    assert_eq!(repr.fi_di().d(), Ok(12));
    assert_eq!(repr.extra_guard_time(), 255);
    assert_eq!(repr.mode(), Mode::Negotiable);
    assert_eq!(repr.wi(), Ok(10));
    assert_eq!(repr.protocols(), ProtocolSet::EMPTY.with(Protocol::T1));
    assert_eq!(repr.default_protocol(), Protocol::T1);
    // TA3 = FE is the IFSC; there is no TB3 (0x1F is TD3), so BWI and CWI are the defaults.
    assert_eq!(
        repr.t1_params(),
        Ok(T1Params {
            ifsc: 254,
            bwi: 4,
            cwi: 13,
            edc: Edc::Lrc
        })
    );
    assert_eq!(repr.clock_stop(), ClockStop::NoPreference);
    assert!(repr.classes().a() && repr.classes().b() && !repr.classes().c());
}

#[test]
fn emit_jcop3() {
    let mut buf = [0u8; MAX_LEN];
    let len = jcop3_repr(0x18).emit(&mut buf).unwrap();
    assert_eq!(&buf[..len], &HSM_JCOP3[..]);
    let len = jcop3_repr(0x96).emit(&mut buf).unwrap();
    assert_eq!(&buf[..len], &HSM_JCOP3_FAST[..]);
    assert_eq!(
        jcop3_repr(0x18).emit(&mut buf[..23]),
        Err(Error::BufferTooSmall)
    );
}

// ---- Every SmartCard-HSM ATR of sc-hsm-protocol.md §1.2 ----

#[test]
fn hsm_v4_fast_ta1() {
    let repr = parse(&HSM_JCOP3_FAST);
    assert_eq!(repr.fi_di().f(), Ok(512));
    assert_eq!(repr.fi_di().d(), Ok(32));
    assert_eq!(repr.fi_di().etu().unwrap().baud(3_600_000), 225_000);
    assert_eq!(repr.t1_params().unwrap().ifsc, 254);
}

#[test]
fn hsm_contact() {
    let repr = parse(&HSM_CONTACT);
    assert_eq!(repr.fi_di(), FiDi::from_byte(0x18));
    assert_eq!(repr.extra_guard_time(), 0);
    assert_eq!(repr.default_protocol(), Protocol::T1);
    assert_eq!(
        repr.t1_params(),
        Ok(T1Params {
            ifsc: 254,
            bwi: 4,
            cwi: 5,
            edc: Edc::Lrc
        })
    );
    // No T=15 byte: defaults.
    assert_eq!(repr.clock_stop(), ClockStop::NotSupported);
    assert!(repr.classes().a() && !repr.classes().b());
    let mut buf = [0u8; MAX_LEN];
    let len = repr.emit(&mut buf).unwrap();
    assert_eq!(&buf[..len], &HSM_CONTACT[..]);
}

#[test]
fn hsm_contactless() {
    let repr = parse(&HSM_CONTACTLESS);
    assert_eq!(repr.fi_di(), FiDi::DEFAULT);
    assert_eq!(
        repr.protocols(),
        ProtocolSet::EMPTY.with(Protocol::T0).with(Protocol::T1)
    );
    // TD1 indicates T=0 first: that is the default protocol.
    assert_eq!(repr.default_protocol(), Protocol::T0);
    // Group 3 (after TD2, T=1) is empty: all T=1 defaults.
    assert_eq!(repr.t1_params(), Ok(T1Params::default()));
    assert_eq!(repr.historical_bytes(), &HSM_HISTORICAL);
}

#[test]
fn jcop41_default_atr() {
    let repr = parse(&JCOP41);
    assert_eq!(repr.fi_di().d(), Ok(4));
    assert_eq!(
        repr.t1_params(),
        Ok(T1Params {
            ifsc: 254,
            bwi: 4,
            cwi: 5,
            edc: Edc::Lrc
        })
    );
    assert_eq!(repr.historical_bytes(), b"JCOPv241");
}

#[test]
fn soc_sample_card() {
    // 3B 80 80 01 01: TD1 T=0, TD2 T=1, no historical bytes, TCK 01.
    let repr = parse(&[0x3B, 0x80, 0x80, 0x01, 0x01]);
    assert_eq!(
        repr.protocols(),
        ProtocolSet::EMPTY.with(Protocol::T0).with(Protocol::T1)
    );
    assert!(repr.historical_bytes().is_empty());
}

#[test]
fn bad_copy_is_rejected_with_a_tck_error() {
    let atr = Atr::new_checked(&HSM_BAD_COPY[..]).unwrap(); // the structure is fine
    assert_eq!(
        AtrRepr::parse(&atr),
        Err(Error::BadTck {
            expected: 0x1C,
            found: 0xFA
        })
    );
    assert_eq!(
        AtrRepr::parse_bytes(&HSM_BAD_COPY),
        Err(Error::BadTck {
            expected: 0x1C,
            found: 0xFA
        })
    );
}

// ---- Parameters a driver builds its line from ----

#[test]
fn hsm_line_parameters() {
    let repr = parse(&HSM_JCOP3);
    let t1 = repr.t1_params().unwrap();
    let mut line = LineParams::new(3_600_000);
    line.fi_di = repr.fi_di();
    line.wt_fi = repr.wt_fi();
    line.n = repr.extra_guard_time();
    line.wi = repr.wi().unwrap();
    line.bwi = t1.bwi;
    line.cwi = t1.cwi;
    let timing = line.timing().unwrap();
    assert_eq!(timing.baud(), 116_129);
    assert_eq!(timing.etu(), Etu::new(372, 12).unwrap());
    // N = 255: CGT is the T=1 minimum of 11 etu = 341 cycles.
    assert_eq!(timing.cgt_t1().ceil(), 11 * 31);
}

// ---- Errors ----

#[test]
fn malformed_atrs_get_typed_errors() {
    assert_eq!(AtrRepr::parse_bytes(&[]), Err(Error::Truncated));
    assert_eq!(
        AtrRepr::parse_bytes(&[0x3A, 0x00]),
        Err(Error::InvalidTs(0x3A))
    );
    assert_eq!(
        AtrRepr::parse_bytes(&HSM_JCOP3[..10]),
        Err(Error::Truncated)
    );
    assert_eq!(
        AtrRepr::parse_bytes(&HSM_JCOP3[..23]),
        Err(Error::MissingTck)
    );
    let mut long = [0u8; 25];
    long[..24].copy_from_slice(&HSM_JCOP3);
    assert_eq!(AtrRepr::parse_bytes(&long), Err(Error::TrailingBytes));
    // T0 = F F: four interface bytes, 15 historical bytes, then TD1 = FF (T=15) again and again.
    let too_long = [
        0x3B, 0xFF, 1, 2, 3, 0xFF, 1, 2, 3, 0xFF, 1, 2, 3, 0xFF, 1, 2, 3,
    ];
    assert_eq!(AtrRepr::parse_bytes(&too_long), Err(Error::TooLong));
    assert_eq!(atr::progress(&too_long), Err(Error::TooLong));
    // Only T=0 indicated: no TCK, so a trailing byte is not one.
    assert_eq!(
        AtrRepr::parse_bytes(&[0x3B, 0x00]).map(|r| r.has_tck()),
        Ok(false)
    );
    assert_eq!(
        AtrRepr::parse_bytes(&[0x3B, 0x00, 0x00]),
        Err(Error::TrailingBytes)
    );
    // IFSC 0xFF is reserved.
    let bad_ifsc = [0x3B, 0x80, 0x81, 0x11, 0xFF, 0x11 ^ 0x80 ^ 0x81 ^ 0xFF];
    assert_eq!(
        AtrRepr::parse_bytes(&bad_ifsc).unwrap().t1_params(),
        Err(Error::InvalidIfsc(0xFF))
    );
}

#[test]
fn inverse_convention_and_specific_mode() {
    // TS inverse, TD1 T=0 with TA2 = 0x10 (specific mode, T=0, implicit Fi/Di), TC2 = 0x00.
    let bytes = [0x3F, 0x80, 0x50, 0x10, 0x00];
    let repr = AtrRepr::parse_bytes(&bytes).unwrap();
    assert_eq!(repr.convention(), Convention::Inverse);
    assert_eq!(
        repr.mode(),
        Mode::Specific {
            protocol: Protocol::T0,
            can_change: true,
            implicit_fi_di: true
        }
    );
    assert_eq!(repr.wi(), Err(Error::ZeroWi));
    assert!(!repr.has_tck());
}

#[test]
fn setters_refuse_to_exceed_33_bytes() {
    let mut repr = AtrRepr::new(Convention::Direct);
    repr.set_historical_bytes(&[0; 15]).unwrap();
    assert_eq!(repr.set_historical_bytes(&[0; 16]), Err(Error::TooLong));
    let full = InterfaceBytes {
        ta: Some(1),
        tb: Some(2),
        tc: Some(3),
    };
    repr.set_global(full).unwrap();
    // 2 + 3 + 15 = 20; a T=1 group of 4 bytes (TD + 3) plus the TCK gives 25, then 29, then 33.
    for _ in 0..3 {
        repr.push_group(ProtocolGroup {
            protocol: Protocol::T1,
            bytes: full,
        })
        .unwrap();
    }
    assert_eq!(repr.buffer_len(), 33);
    let before = repr;
    assert_eq!(
        repr.push_group(ProtocolGroup {
            protocol: Protocol::T1,
            bytes: InterfaceBytes::NONE
        }),
        Err(Error::TooLong)
    );
    assert_eq!(repr, before);
    let mut buf = [0u8; 40];
    assert_eq!(repr.emit(&mut buf), Ok(33));
    assert_eq!(AtrRepr::parse_bytes(&buf[..33]), Ok(repr));
}

// ---- Streaming ----

#[test]
fn streaming_the_jcop3_atr_byte_by_byte() {
    // What a driver sees as the bytes come in: the known length grows as TD bytes arrive.
    let at_least: [usize; 24] = [
        2,  // nothing yet: TS and T0 at least
        1,  // TS: T0 still missing
        17, // T0 = DE: TA1 TC1 TD1 and 14 historical bytes -> 19 so far
        16, //
        15, //
        16, // TD1 = 81 (T=1): TD2 follows, and a TCK is needed -> 21
        17, // TD2 = 91: TA3 TD3 follow -> 23
        16, //
        16, // TD3 = 1F: TA4 follows, no TD4 -> 24, final
        15, 14, 13, 12, 11, 10, 9, 8, 7, 6, 5, 4, 3, 2, 1,
    ];
    for (n, &at_least) in at_least.iter().enumerate() {
        assert_eq!(
            atr::progress(&HSM_JCOP3[..n]),
            Ok(Progress::NeedMore { at_least }),
            "after {n} bytes"
        );
    }
    assert_eq!(
        atr::progress(&HSM_JCOP3),
        Ok(Progress::Complete { len: 24 })
    );
    let mut more = [0u8; 26];
    more[..24].copy_from_slice(&HSM_JCOP3);
    assert_eq!(atr::progress(&more), Ok(Progress::Complete { len: 24 }));
}

// ---- Properties ----

/// `progress`, the view and `AtrRepr::parse` agree on a buffer (parse only adds the TCK check).
fn check_agreement(bytes: &[u8]) {
    let view = Atr::new_checked(bytes).map(|_| ());
    let parsed = AtrRepr::parse_bytes(bytes).map(|_| ());
    match parsed {
        Err(Error::BadTck { .. }) => assert_eq!(view, Ok(())),
        other => assert_eq!(other, view),
    }
    match atr::progress(bytes) {
        Ok(Progress::Complete { len }) if len == bytes.len() => assert_eq!(view, Ok(())),
        Ok(Progress::Complete { len }) => {
            assert!(len < bytes.len());
            assert_eq!(view, Err(Error::TrailingBytes));
            assert_eq!(Atr::new_checked(&bytes[..len]).map(|_| ()), Ok(()));
        }
        Ok(Progress::NeedMore { at_least }) => {
            assert!(at_least > 0);
            assert!(bytes.len() + at_least <= MAX_LEN);
            assert!(
                matches!(view, Err(Error::Truncated | Error::MissingTck)),
                "{view:?}"
            );
        }
        Err(e) => assert_eq!(view, Err(e)),
    }
}

fn interface_bytes() -> impl Strategy<Value = InterfaceBytes> {
    (
        any::<Option<u8>>(),
        any::<Option<u8>>(),
        any::<Option<u8>>(),
    )
        .prop_map(|(ta, tb, tc)| InterfaceBytes { ta, tb, tc })
}

fn atr_repr() -> impl Strategy<Value = AtrRepr> {
    (
        any::<bool>(),
        interface_bytes(),
        prop::collection::vec((0u8..16, interface_bytes()), 0..12),
        prop::collection::vec(any::<u8>(), 0..=15),
    )
        .prop_map(|(inverse, global, groups, historical)| {
            let mut repr = AtrRepr::new(if inverse {
                Convention::Inverse
            } else {
                Convention::Direct
            });
            // Setters refuse what would not fit; keep what does.
            let _ = repr.set_historical_bytes(&historical);
            let _ = repr.set_global(global);
            for (t, bytes) in groups {
                let _ = repr.push_group(ProtocolGroup {
                    protocol: Protocol::from_nibble(t),
                    bytes,
                });
            }
            repr
        })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    #[test]
    fn parsing_never_panics_and_round_trips(bytes in prop::collection::vec(any::<u8>(), 0..40)) {
        let view = Atr::new_unchecked(&bytes[..]);
        let _ = (view.ta(3), view.td(5), view.tck(), view.historical_bytes());
        if let Ok(repr) = AtrRepr::parse_bytes(&bytes) {
            let mut buf = [0u8; MAX_LEN];
            let len = repr.emit(&mut buf).unwrap();
            prop_assert_eq!(&buf[..len], &bytes[..]);
        }
    }

    #[test]
    fn well_formed_prefixes_round_trip(bytes in prop::collection::vec(any::<u8>(), 0..40)) {
        // Random bytes rarely form an ATR: force TS and fix the TCK, then test every prefix.
        let mut bytes = bytes;
        if bytes.is_empty() { bytes.push(0x3B); }
        bytes[0] = if bytes[0] & 1 == 0 { 0x3B } else { 0x3F };
        if let Ok(Progress::Complete { len }) = atr::progress(&bytes) {
            bytes.truncate(len);
            let atr = Atr::new_checked(&bytes[..]).unwrap();
            if atr.tck().is_some() {
                let tck: u8 = bytes[1..len - 1].iter().fold(0, |a, b| a ^ b);
                bytes[len - 1] = tck;
            }
            let repr = AtrRepr::parse_bytes(&bytes).unwrap();
            let mut buf = [0u8; MAX_LEN];
            let n = repr.emit(&mut buf).unwrap();
            prop_assert_eq!(&buf[..n], &bytes[..]);
        }
        for n in 0..=bytes.len() {
            check_agreement(&bytes[..n]);
        }
    }

    #[test]
    fn streaming_agrees_with_parse_on_every_prefix(bytes in prop::collection::vec(any::<u8>(), 0..40)) {
        for n in 0..=bytes.len() {
            check_agreement(&bytes[..n]);
        }
    }

    #[test]
    fn emitted_reprs_parse_back(repr in atr_repr()) {
        let mut buf = [0u8; MAX_LEN];
        let len = repr.emit(&mut buf).unwrap();
        prop_assert_eq!(len, repr.buffer_len());
        prop_assert!(len <= MAX_LEN);
        prop_assert_eq!(AtrRepr::parse_bytes(&buf[..len]), Ok(repr));
        for n in 0..=len {
            check_agreement(&buf[..n]);
        }
        prop_assert_eq!(atr::progress(&buf[..len]), Ok(Progress::Complete { len }));
    }
}
