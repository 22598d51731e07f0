//! Response APDUs and status words on arbitrary bytes: every u16 round-trips through
//! StatusWord, every buffer of two or more bytes is a response that re-emits to itself.
#![no_main]

use libfuzzer_sys::fuzz_target;
use tessera_apdu::{Response, ResponseRepr, StatusWord};

fuzz_target!(|data: &[u8]| {
    // Status words: u16 -> StatusWord -> u16 is the identity, and the text never fails.
    if let [sw1, sw2, ..] = *data {
        let sw = u16::from_be_bytes([sw1, sw2]);
        let status = StatusWord::from(sw);
        assert_eq!(u16::from(status), sw);
        assert_eq!(StatusWord::from_bytes(sw1, sw2), status);
        assert_eq!(status.to_bytes(), [sw1, sw2]);
        assert!(status.to_string().starts_with(&format!("{sw:04X} (")));
    }

    let view = Response::new_unchecked(data);
    let _ = (view.data(), view.sw1(), view.sw2(), view.status());
    match ResponseRepr::parse(&view) {
        Ok(repr) => {
            let mut out = vec![0u8; repr.buffer_len()];
            assert_eq!(repr.emit(&mut out), Ok(data.len()));
            assert_eq!(out, data);
            let again = Response::new_checked(&out[..]).expect("emitted response parses");
            assert_eq!(ResponseRepr::parse(&again), Ok(repr));
        }
        Err(_) => assert!(data.len() < 2),
    }
});
