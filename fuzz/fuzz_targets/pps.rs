//! PPS: parse arbitrary bytes, re-emit what parses, check the streaming length on every prefix,
//! and run the reader-side check and the card-side answer on arbitrary pairs (ISO/IEC
//! 7816-3:2006 §9).
#![no_main]

use arbitrary::Arbitrary;
use libfuzzer_sys::fuzz_target;
use tessera_iso7816_3::atr::ProtocolSet;
use tessera_iso7816_3::pps::{
    self, answer, check_response, CardAnswer, Error, Pps, PpsRepr, Progress, MAX_LEN,
};
use tessera_iso7816_3::rate::FiDi;

#[derive(Debug, Arbitrary)]
struct Input<'a> {
    request: &'a [u8],
    response: &'a [u8],
    offered: u16,
    accepted_fi_di: Option<u8>,
}

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

/// emit(parse(x)) == x, and parse(emit(repr)) == repr.
fn round_trip(bytes: &[u8]) -> Option<PpsRepr> {
    let view = Pps::new_unchecked(bytes);
    let _ = (
        view.pps1(),
        view.pps2(),
        view.pps3(),
        view.pck(),
        view.protocol(),
    );
    for end in 0..=bytes.len() {
        check_agreement(&bytes[..end]);
    }
    let repr = PpsRepr::parse_bytes(bytes).ok()?;
    let mut out = [0u8; MAX_LEN];
    let len = repr.emit(&mut out).expect("a parsed PPS emits");
    assert_eq!(&out[..len], bytes);
    assert_eq!(PpsRepr::parse_bytes(&out[..len]), Ok(repr));
    Some(repr)
}

fuzz_target!(|input: Input| {
    let request = round_trip(input.request);
    let response = round_trip(input.response);

    // Reader side on an arbitrary pair.
    if let (Some(request), Some(response)) = (request, response) {
        if let Ok(agreed) = check_response(&request, &response) {
            assert_eq!(agreed.protocol, request.protocol);
            assert_eq!(agreed.fi_di, response.pps1.unwrap_or(FiDi::DEFAULT));
        }
    }

    // Card side: whatever it answers, the reader accepts.
    let offered = ProtocolSet::from_bits(input.offered);
    let accept = |fi_di: FiDi| Some(fi_di.byte()) == input.accepted_fi_di;
    match answer(input.request, offered, accept) {
        CardAnswer::Respond {
            response,
            agreement,
        } => {
            let request = request.expect("the card answers only a valid request");
            assert_eq!(check_response(&request, &response), Ok(agreement));
        }
        CardAnswer::Silent(_) => {}
    }
});
