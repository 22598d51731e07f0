//! T=1 blocks (ISO/IEC 7816-3 §11.3): arbitrary bytes are parsed as a block with LRC and with
//! CRC. Parsing never panics; whatever frames re-emits byte for byte (unknown PCB patterns
//! included), and the repr re-parses to itself.
#![no_main]

use libfuzzer_sys::fuzz_target;
use tessera_iso7816_3::t1::{Block, BlockRepr, Edc, MAX_BLOCK_LEN};

fuzz_target!(|data: &[u8]| {
    for edc in [Edc::Lrc, Edc::Crc] {
        // The accessors of an unchecked view never panic either.
        let view = Block::new_unchecked(data, edc);
        let _ = (
            view.nad(),
            view.pcb(),
            view.inf_len(),
            view.inf(),
            view.epilogue(),
            view.block_len(),
        );

        let Ok(block) = Block::new_checked(data, edc) else {
            continue;
        };
        let repr = BlockRepr::parse(&block).expect("a checked block parses");
        assert_eq!(repr.buffer_len(edc), data.len());

        let mut out = [0u8; MAX_BLOCK_LEN];
        let n = repr
            .emit_slice(&mut out, edc)
            .expect("a parsed block emits");
        assert_eq!(&out[..n], data, "emit(parse(x)) != x");

        let again = Block::new_checked(&out[..n], edc).expect("re-emitted block frames");
        assert_eq!(BlockRepr::parse(&again), Ok(repr));
    }
});
