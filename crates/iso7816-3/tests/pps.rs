//! PPS tests (ISO/IEC 7816-3:2006 §9): the stock Nitrokey firmware's requests, the four
//! smoltcp-style wire tests, the §9.3 exchange rules on both sides, and property tests.
#![allow(
    clippy::indexing_slicing,
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic
)]

use proptest::prelude::*;
use tessera_iso7816_3::atr::{Protocol, ProtocolSet};
use tessera_iso7816_3::pps::{
    self, answer, check_response, check_response_bytes, Agreement, CardAnswer, Error, Field, Pps,
    PpsRepr, Progress, MAX_LEN,
};
use tessera_iso7816_3::rate::FiDi;

/// The stock firmware's request for the SmartCard-HSM v3 (TA1 = 0x18), echoed by the card.
static REQUEST_18: [u8; 4] = [
    0xFF, // PPSS
    0x11, // PPS0: PPS1 follows, T = 1
    0x18, // PPS1: Fi = 372, Di = 12
    0xF6, // PCK: FF ^ 11 ^ 18
];

/// The same for TA1 = 0x96 (SmartCard-HSM v4: F = 512, D = 32).
static REQUEST_96: [u8; 4] = [0xFF, 0x11, 0x96, 0x78];

/// The WIP firmware's replacement for v4 cards: 0x98 (F = 512, D = 12).
static REQUEST_98: [u8; 4] = [0xFF, 0x11, 0x98, 0x76];

/// A card that refuses the rate: PPS1 left out (use Fd, Dd), T = 1 echoed.
static RESPONSE_DEFAULT_RATE: [u8; 3] = [
    0xFF, // PPSS
    0x01, // PPS0: nothing follows, T = 1
    0xFE, // PCK
];

fn t1_only() -> ProtocolSet {
    ProtocolSet::EMPTY.with(Protocol::T1)
}

// ---- The four smoltcp-style tests ----

#[test]
fn deconstruct() {
    let pps = Pps::new_checked(&REQUEST_18[..]).unwrap();
    assert_eq!(pps.ppss(), Some(0xFF));
    assert_eq!(pps.pps0(), Some(0x11));
    assert_eq!(pps.protocol(), Some(Protocol::T1));
    assert_eq!(pps.pps1(), Some(FiDi::from_byte(0x18)));
    assert_eq!(pps.pps2(), None);
    assert_eq!(pps.pps3(), None);
    assert_eq!(pps.pck(), Some(0xF6));
    assert_eq!(pps.verify_pck(), Ok(()));
}

#[test]
fn construct() {
    let repr = PpsRepr::request(Protocol::T1, FiDi::from_byte(0x18));
    assert_eq!(repr.pps0(), 0x11);
    assert_eq!(repr.buffer_len(), 4);
    let repr = PpsRepr {
        protocol: Protocol::T0,
        pps1: None,
        pps2: Some(0),
        pps3: Some(0),
    };
    assert_eq!(repr.pps0(), 0x60);
    assert_eq!(repr.buffer_len(), 5);
}

#[test]
fn parse() {
    for (bytes, ta1) in [
        (&REQUEST_18, 0x18),
        (&REQUEST_96, 0x96),
        (&REQUEST_98, 0x98),
    ] {
        let repr = PpsRepr::parse(&Pps::new_checked(&bytes[..]).unwrap()).unwrap();
        assert_eq!(repr, PpsRepr::request(Protocol::T1, FiDi::from_byte(ta1)));
    }
    let repr = PpsRepr::parse_bytes(&RESPONSE_DEFAULT_RATE).unwrap();
    assert_eq!(
        repr,
        PpsRepr {
            protocol: Protocol::T1,
            pps1: None,
            pps2: None,
            pps3: None
        }
    );
}

#[test]
fn emit() {
    let mut buf = [0u8; MAX_LEN];
    for (bytes, ta1) in [
        (&REQUEST_18, 0x18),
        (&REQUEST_96, 0x96),
        (&REQUEST_98, 0x98),
    ] {
        let len = PpsRepr::request(Protocol::T1, FiDi::from_byte(ta1))
            .emit(&mut buf)
            .unwrap();
        assert_eq!(&buf[..len], &bytes[..], "PCK for PPS1 = {ta1:#04x}");
    }
    assert_eq!(
        PpsRepr::request(Protocol::T1, FiDi::DEFAULT).emit(&mut buf[..3]),
        Err(Error::BufferTooSmall)
    );
}

// ---- Reader side, §9.3 ----

#[test]
fn echoed_request_is_a_successful_exchange() {
    for (bytes, ta1, baud) in [
        (&REQUEST_18, 0x18, 116_129),
        (&REQUEST_96, 0x96, 225_000),
        (&REQUEST_98, 0x98, 84_375),
    ] {
        let request = PpsRepr::parse_bytes(&bytes[..]).unwrap();
        // The card echoes the request byte for byte.
        let agreed = check_response_bytes(&request, &bytes[..]).unwrap();
        assert_eq!(
            agreed,
            Agreement {
                protocol: Protocol::T1,
                fi_di: FiDi::from_byte(ta1),
                pps2: None
            }
        );
        assert_eq!(agreed.fi_di.etu().unwrap().baud(3_600_000), baud);
    }
}

#[test]
fn response_without_pps1_means_default_rate() {
    let request = PpsRepr::parse_bytes(&REQUEST_96).unwrap();
    let agreed = check_response_bytes(&request, &RESPONSE_DEFAULT_RATE).unwrap();
    assert_eq!(agreed.fi_di, FiDi::DEFAULT);
    assert_eq!(agreed.fi_di.etu().unwrap().baud(3_600_000), 9677);
}

#[test]
fn other_responses_are_failed_exchanges() {
    let request = PpsRepr::request(Protocol::T1, FiDi::from_byte(0x18));
    let other_t = PpsRepr {
        protocol: Protocol::T0,
        ..request
    };
    assert_eq!(
        check_response(&request, &other_t),
        Err(Error::ExchangeFailed(Field::Protocol))
    );
    let other_rate = PpsRepr {
        pps1: Some(FiDi::from_byte(0x13)),
        ..request
    };
    assert_eq!(
        check_response(&request, &other_rate),
        Err(Error::ExchangeFailed(Field::Pps1))
    );
    let unasked_pps2 = PpsRepr {
        pps2: Some(0),
        ..request
    };
    assert_eq!(
        check_response(&request, &unasked_pps2),
        Err(Error::ExchangeFailed(Field::Pps2))
    );
    let unasked_pps3 = PpsRepr {
        pps3: Some(0),
        ..request
    };
    assert_eq!(
        check_response(&request, &unasked_pps3),
        Err(Error::ExchangeFailed(Field::Pps3))
    );
    // A response with a bad PCK.
    assert_eq!(
        check_response_bytes(&request, &[0xFF, 0x11, 0x18, 0xF7]),
        Err(Error::BadPck {
            expected: 0xF6,
            found: 0xF7
        })
    );
}

// ---- Card side, §9.3 ----

#[test]
fn card_echoes_an_acceptable_request() {
    let answer = answer(&REQUEST_18, t1_only(), |fi_di| fi_di.byte() == 0x18);
    let CardAnswer::Respond {
        response,
        agreement,
    } = answer
    else {
        panic!("{answer:?}")
    };
    let mut buf = [0u8; MAX_LEN];
    let len = response.emit(&mut buf).unwrap();
    assert_eq!(&buf[..len], &REQUEST_18[..]);
    assert_eq!(agreement.fi_di, FiDi::from_byte(0x18));
}

#[test]
fn card_leaves_out_a_rate_it_does_not_accept() {
    let answer = answer(&REQUEST_96, t1_only(), |fi_di| fi_di.byte() == 0x18);
    let CardAnswer::Respond {
        response,
        agreement,
    } = answer
    else {
        panic!("{answer:?}")
    };
    let mut buf = [0u8; MAX_LEN];
    let len = response.emit(&mut buf).unwrap();
    assert_eq!(&buf[..len], &RESPONSE_DEFAULT_RATE[..]);
    assert_eq!(agreement.fi_di, FiDi::DEFAULT);
}

#[test]
fn card_stays_silent_on_erroneous_or_unsupported_requests() {
    assert_eq!(
        answer(&[0xFF, 0x11, 0x18, 0x00], t1_only(), |_| true),
        CardAnswer::Silent(Error::BadPck {
            expected: 0xF6,
            found: 0x00
        })
    );
    assert_eq!(
        answer(&[0xFE, 0x11, 0x18, 0xF7], t1_only(), |_| true),
        CardAnswer::Silent(Error::InvalidPpss(0xFE))
    );
    assert_eq!(
        answer(&[0xFF, 0x10, 0x18, 0xF7], t1_only(), |_| true),
        CardAnswer::Silent(Error::UnsupportedProtocol(Protocol::T0))
    );
}

// ---- Errors and streaming ----

#[test]
fn malformed_messages_get_typed_errors() {
    assert_eq!(PpsRepr::parse_bytes(&[]), Err(Error::Truncated));
    assert_eq!(
        PpsRepr::parse_bytes(&[0xFF, 0x11, 0x18]),
        Err(Error::Truncated)
    );
    assert_eq!(
        PpsRepr::parse_bytes(&[0xFF, 0x11, 0x18, 0xF6, 0x00]),
        Err(Error::TrailingBytes)
    );
    assert_eq!(
        PpsRepr::parse_bytes(&[0x3B, 0x11, 0x18, 0xF6]),
        Err(Error::InvalidPpss(0x3B))
    );
    assert_eq!(
        PpsRepr::parse_bytes(&[0xFF, 0x81, 0x7E]),
        Err(Error::ReservedBit(0x81))
    );
    assert_eq!(
        PpsRepr::parse_bytes(&[0xFF, 0x11, 0x18, 0xF5]),
        Err(Error::BadPck {
            expected: 0xF6,
            found: 0xF5
        })
    );
}

#[test]
fn streaming_a_request() {
    assert_eq!(
        pps::progress(&REQUEST_18[..0]),
        Ok(Progress::NeedMore { at_least: 3 })
    );
    assert_eq!(
        pps::progress(&REQUEST_18[..1]),
        Ok(Progress::NeedMore { at_least: 2 })
    );
    assert_eq!(
        pps::progress(&REQUEST_18[..2]),
        Ok(Progress::NeedMore { at_least: 2 })
    );
    assert_eq!(
        pps::progress(&REQUEST_18[..3]),
        Ok(Progress::NeedMore { at_least: 1 })
    );
    assert_eq!(
        pps::progress(&REQUEST_18),
        Ok(Progress::Complete { len: 4 })
    );
}

// ---- Properties ----

fn check_agreement(bytes: &[u8]) {
    let view = Pps::new_checked(bytes).map(|_| ());
    match PpsRepr::parse_bytes(bytes).map(|_| ()) {
        Err(Error::BadPck { .. }) => assert_eq!(view, Ok(())),
        other => assert_eq!(other, view),
    }
    match pps::progress(bytes) {
        Ok(Progress::Complete { len }) if len == bytes.len() => assert_eq!(view, Ok(())),
        Ok(Progress::Complete { len }) => {
            assert!(len < bytes.len());
            assert_eq!(view, Err(Error::TrailingBytes));
        }
        Ok(Progress::NeedMore { at_least }) => {
            assert!(at_least > 0 && bytes.len() + at_least <= MAX_LEN);
            assert_eq!(view, Err(Error::Truncated));
        }
        Err(e) => assert_eq!(view, Err(e)),
    }
}

fn pps_repr() -> impl Strategy<Value = PpsRepr> {
    (
        0u8..16,
        any::<Option<u8>>(),
        any::<Option<u8>>(),
        any::<Option<u8>>(),
    )
        .prop_map(|(t, pps1, pps2, pps3)| PpsRepr {
            protocol: Protocol::from_nibble(t),
            pps1: pps1.map(FiDi::from_byte),
            pps2,
            pps3,
        })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    #[test]
    fn parsing_never_panics_and_round_trips(bytes in prop::collection::vec(any::<u8>(), 0..8)) {
        let view = Pps::new_unchecked(&bytes[..]);
        let _ = (view.pps1(), view.pps2(), view.pps3(), view.pck());
        if let Ok(repr) = PpsRepr::parse_bytes(&bytes) {
            let mut buf = [0u8; MAX_LEN];
            let len = repr.emit(&mut buf).unwrap();
            prop_assert_eq!(&buf[..len], &bytes[..]);
        }
        for n in 0..=bytes.len() {
            check_agreement(&bytes[..n]);
        }
    }

    #[test]
    fn emitted_reprs_parse_back(repr in pps_repr()) {
        let mut buf = [0u8; MAX_LEN];
        let len = repr.emit(&mut buf).unwrap();
        prop_assert_eq!(len, repr.buffer_len());
        prop_assert_eq!(PpsRepr::parse_bytes(&buf[..len]), Ok(repr));
        for n in 0..=len {
            check_agreement(&buf[..n]);
        }
    }

    #[test]
    fn card_answers_pass_the_reader_check(request in pps_repr(), offered in any::<u16>(), accept in any::<bool>()) {
        let mut buf = [0u8; MAX_LEN];
        let len = request.emit(&mut buf).unwrap();
        match answer(&buf[..len], ProtocolSet::from_bits(offered), |_| accept) {
            CardAnswer::Respond { response, agreement } => {
                prop_assert_eq!(check_response(&request, &response), Ok(agreement));
            }
            CardAnswer::Silent(e) => prop_assert!(matches!(e, Error::UnsupportedProtocol(_))),
        }
    }

    #[test]
    fn reader_check_never_panics(a in pps_repr(), b in pps_repr()) {
        if let Ok(agreed) = check_response(&a, &b) {
            prop_assert_eq!(agreed.protocol, a.protocol);
            prop_assert!(b.pps1.is_none() || b.pps1 == a.pps1);
        }
    }
}
