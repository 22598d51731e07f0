//! ATR: parse arbitrary bytes, re-emit what parses, and check that the streaming length
//! function agrees with the view on every prefix (ISO/IEC 7816-3:2006 §8).
#![no_main]

use libfuzzer_sys::fuzz_target;
use tessera_iso7816_3::atr::{self, Atr, AtrRepr, Error, Progress, MAX_LEN};

/// `progress`, `Atr::new_checked` and `AtrRepr::parse` tell the same story about `bytes`
/// (parse only adds the TCK check).
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
            assert!(at_least > 0 && bytes.len() + at_least <= MAX_LEN);
            assert!(matches!(view, Err(Error::Truncated | Error::MissingTck)));
        }
        Err(e) => assert_eq!(view, Err(e)),
    }
}

fuzz_target!(|data: &[u8]| {
    // The raw accessors never panic, checked or not.
    let view = Atr::new_unchecked(data);
    let _ = (
        view.ts(),
        view.t0(),
        view.ta(1),
        view.td(2),
        view.tck(),
        view.historical_bytes(),
    );

    // Make valid ATRs likely: the first byte picks TS, and the TCK is fixed up.
    let mut bytes = [0u8; 64];
    let n = data.len().min(bytes.len());
    bytes[..n].copy_from_slice(&data[..n]);
    if n > 0 && data[0] & 0x80 != 0 {
        bytes[0] = if data[0] & 1 == 0 { 0x3B } else { 0x3F };
        if let Ok(Progress::Complete { len }) = atr::progress(&bytes[..n]) {
            if Atr::new_unchecked(&bytes[..len]).tck().is_some() {
                bytes[len - 1] = bytes[1..len - 1].iter().fold(0, |a, b| a ^ b);
            }
        }
    }
    for input in [data, &bytes[..n]] {
        for end in 0..=input.len().min(MAX_LEN + 2) {
            check_agreement(&input[..end]);
        }
        // emit(parse(x)) == x, and parse(emit(repr)) == repr.
        if let Ok(repr) = AtrRepr::parse_bytes(input) {
            let mut out = [0u8; MAX_LEN];
            let len = repr.emit(&mut out).expect("a parsed ATR emits");
            assert_eq!(&out[..len], input);
            assert_eq!(AtrRepr::parse_bytes(&out[..len]), Ok(repr));
            // The parameter accessors never panic.
            let _ = (
                repr.fi_di().etu(),
                repr.mode(),
                repr.wi(),
                repr.t1_params(),
                repr.protocols(),
            );
            let _ = (
                repr.default_protocol(),
                repr.clock_stop(),
                repr.classes(),
                repr.extra_guard_time(),
            );
        }
    }
});
