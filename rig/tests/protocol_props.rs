//! Property tests of the controller line codec: arbitrary bytes never panic it, and what it
//! encodes it parses back.

use std::time::Duration;

use proptest::prelude::*;
use tessera_rig::controller::protocol::{Frame, LineReader, Request, Response};
use tessera_rig::controller::{ControllerSpec, VirtualController};

fn request() -> impl Strategy<Value = Request> {
    prop_oneof![
        any::<u16>().prop_map(|version| Request::Hello { version }),
        (any::<u8>(), any::<bool>()).prop_map(|(channel, on)| Request::Power { channel, on }),
        Just(Request::PowerAllOff),
        (any::<u8>(), any::<Option<u8>>())
            .prop_map(|(mux, position)| Request::Sim { mux, position }),
        (any::<u8>(), any::<u8>()).prop_map(|(mux, position)| Request::Insert { mux, position }),
        (
            any::<u8>(),
            0..=tessera_rig::controller::protocol::MAX_EJECT_DELAY_MS
        )
            .prop_map(|(mux, delay_ms)| Request::Eject { mux, delay_ms }),
        Just(Request::Status),
    ]
}

proptest! {
    #[test]
    fn arbitrary_bytes_never_panic_the_codec(bytes in proptest::collection::vec(any::<u8>(), 0..600)) {
        let mut reader = LineReader::new();
        for line in reader.push_all(&bytes).into_iter().flatten() {
            if let Ok(frame) = Frame::parse(&line) {
                let _ = Request::parse(frame.payload);
                let _ = Response::parse(frame.payload);
            }
        }
        // Frame::parse straight on lossy text, too.
        let text = String::from_utf8_lossy(&bytes);
        if let Ok(frame) = Frame::parse(&text) {
            let _ = Request::parse(frame.payload);
            let _ = Response::parse(frame.payload);
        }
    }

    #[test]
    fn arbitrary_checksummed_payloads_never_panic_the_parsers(payload in "[ -~]{0,120}") {
        let _ = Request::parse(&payload);
        let _ = Response::parse(&payload);
        let line = Frame::encode(1, &payload);
        let _ = Frame::parse(line.trim_end_matches('\n'));
    }

    #[test]
    fn arbitrary_bytes_never_panic_the_virtual_controller(
        chunks in proptest::collection::vec(proptest::collection::vec(any::<u8>(), 0..200), 0..8)
    ) {
        let mut controller = VirtualController::new(ControllerSpec::new(2, 2, 3));
        for (i, chunk) in chunks.iter().enumerate() {
            let out = controller.receive(chunk, Duration::from_millis(i as u64));
            // Whatever it answers is well-formed.
            let mut reader = LineReader::new();
            for line in reader.push_all(&out) {
                let line = line.expect("controller lines are printable");
                let frame = Frame::parse(&line).expect("controller lines are checksummed");
                prop_assert!(Response::parse(frame.payload).is_ok(), "{}", line);
            }
        }
    }

    #[test]
    fn requests_round_trip(seq in any::<u16>(), request in request()) {
        let line = Frame::encode(seq, &request);
        let frame = Frame::parse(line.trim_end_matches('\n')).expect("frame");
        prop_assert_eq!(frame.seq, seq);
        prop_assert_eq!(Request::parse(frame.payload).expect("request"), request);
    }
}
