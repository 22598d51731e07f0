//! CCID class descriptor: any bytes parsed as the 54-byte descriptor; whatever parses is
//! re-emitted and must give the same 54 bytes back (CCID Rev 1.1 §5.1).
#![no_main]

use libfuzzer_sys::fuzz_target;
use tessera_ccid::{ClassDescriptor, ClassDescriptorRepr};

fn round_trip(bytes: &[u8]) {
    // The raw accessors never panic, checked or not.
    let view = ClassDescriptor::new_unchecked(bytes);
    let _ = (
        view.length(),
        view.bcd_ccid(),
        view.features(),
        view.max_ccid_message_length(),
    );
    let _ = (view.features().exchange_level(), view.max_ccid_busy_slots());

    let Ok(view) = ClassDescriptor::new_checked(bytes) else {
        return;
    };
    if let Ok(repr) = ClassDescriptorRepr::parse(&view) {
        let out = repr.to_bytes();
        assert_eq!(&out[..], &bytes[..repr.buffer_len()]);
        let again = ClassDescriptorRepr::parse(&ClassDescriptor::new_checked(&out[..]).unwrap());
        assert_eq!(again, Ok(repr));
    }
}

fuzz_target!(|data: &[u8]| {
    round_trip(data);

    // Make valid descriptors likely: fix bLength and bDescriptorType.
    if data.len() >= 2 {
        let mut fixed = data.to_vec();
        fixed[0] = 0x36;
        fixed[1] = 0x21;
        round_trip(&fixed);
    }
});
