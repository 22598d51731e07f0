//! Command APDU decoding on arbitrary bytes: never panics, and whatever parses re-emits to the
//! same bytes (the encoding of each case is canonical) and parses back to the same repr.
#![no_main]

use libfuzzer_sys::fuzz_target;
use tessera_apdu::{Command, CommandBuf, CommandRepr};

fuzz_target!(|data: &[u8]| {
    // The unchecked view answers on any input.
    let view = Command::new_unchecked(data);
    let _ = (view.cla(), view.ins(), view.p1(), view.p2());
    let _ = (view.case(), view.is_extended(), view.data(), view.ne());

    let checked = Command::new_checked(data);
    let parsed = CommandRepr::parse_bytes(data);
    assert_eq!(checked.is_ok(), parsed.is_ok());
    let (Ok(view), Ok(repr)) = (checked, parsed) else {
        return;
    };
    assert_eq!(
        (view.case(), view.data(), view.ne()),
        (repr.case(), repr.data, repr.ne)
    );

    // emit(parse(x)) == x
    assert_eq!(repr.buffer_len(), data.len());
    let mut out = vec![0u8; data.len()];
    assert_eq!(repr.emit(&mut out), Ok(data.len()));
    assert_eq!(out, data);

    // parse(emit(repr)) == repr
    assert_eq!(CommandRepr::parse_bytes(&out), Ok(repr));

    // The owned form keeps the same meaning, or refuses data beyond its capacity.
    match CommandBuf::<1024>::from_repr(&repr) {
        Ok(owned) => assert_eq!(owned.repr(), repr),
        Err(_) => assert!(repr.data.len() > 1024),
    }
});
