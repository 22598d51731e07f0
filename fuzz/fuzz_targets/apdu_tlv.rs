//! BER-TLV reading on arbitrary bytes: iteration and descent never panic; what parses is kept
//! losslessly; the writer re-encodes each object to the same tag and value (the same bytes when
//! the length was minimal), and rebuilds a whole minimal tree byte for byte.
#![no_main]

use libfuzzer_sys::fuzz_target;
use tessera_apdu::{Tlv, TlvError, TlvWriter, Tlvs};

/// Deep enough for any real template; bounds the recursion on adversarial input.
const MAX_DEPTH: usize = 64;

/// Walks the objects of `bytes` and their children; returns whether every level parsed whole.
fn walk(bytes: &[u8], depth: usize) -> bool {
    let mut joined = Vec::with_capacity(bytes.len());
    let mut whole = true;
    for tlv in Tlvs::new(bytes) {
        let Ok(tlv) = tlv else {
            whole = false;
            continue;
        };
        joined.extend_from_slice(tlv.as_bytes());

        let mut out = vec![0u8; tlv.as_bytes().len() + 3];
        let mut writer = TlvWriter::new(&mut out);
        writer.write_raw(&tlv).expect("raw copy fits");
        assert_eq!(writer.as_bytes(), tlv.as_bytes());
        let mut writer = TlvWriter::new(&mut out);
        writer
            .write(tlv.tag(), tlv.value())
            .expect("minimal encoding fits");
        assert_eq!(writer.as_bytes() == tlv.as_bytes(), tlv.is_minimal());
        let reread = Tlv::parse(writer.as_bytes()).expect("written object parses");
        assert_eq!((reread.tag(), reread.value()), (tlv.tag(), tlv.value()));

        if tlv.children().is_some() {
            whole &= depth < MAX_DEPTH && walk(tlv.value(), depth + 1);
        }
    }
    if whole {
        assert_eq!(joined, bytes);
    }
    whole
}

/// Rewrites a parsed object with the writer, constructed objects through write_constructed.
fn rewrite(writer: &mut TlvWriter<'_>, tlv: &Tlv<'_>) -> Result<(), TlvError> {
    match tlv.children() {
        Some(mut children) => writer.write_constructed(tlv.tag(), |w| {
            children.try_for_each(|child| rewrite(w, &child?))
        }),
        None => writer.write(tlv.tag(), tlv.value()),
    }
}

/// Whether every object at every level has a minimal length (and parses).
fn all_minimal(bytes: &[u8], depth: usize) -> bool {
    depth < MAX_DEPTH
        && Tlvs::new(bytes).all(|tlv| {
            tlv.is_ok_and(|tlv| {
                tlv.is_minimal()
                    && tlv
                        .children()
                        .is_none_or(|_| all_minimal(tlv.value(), depth + 1))
            })
        })
}

fuzz_target!(|data: &[u8]| {
    let whole = walk(data, 0);
    if whole && all_minimal(data, 0) {
        let mut out = vec![0u8; data.len()];
        let mut writer = TlvWriter::new(&mut out);
        for tlv in Tlvs::new(data) {
            rewrite(&mut writer, &tlv.expect("parsed above")).expect("same size fits");
        }
        assert_eq!(writer.as_bytes(), data);
    }
});
