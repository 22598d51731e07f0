//! The rig controller's line protocol: arbitrary bytes from the serial line never panic the
//! codec or the virtual controller, and every request or response that parses is re-encoded
//! to the same payload.
#![no_main]

use std::time::Duration;

use libfuzzer_sys::fuzz_target;
use tessera_rig::controller::protocol::{Frame, LineReader, Request, Response};
use tessera_rig::controller::{ControllerSpec, VirtualController};

fuzz_target!(|data: &[u8]| {
    let mut reader = LineReader::new();
    for line in reader.push_all(data).into_iter().flatten() {
        if let Ok(frame) = Frame::parse(&line) {
            if let Ok(request) = Request::parse(frame.payload) {
                let again = Frame::encode(frame.seq, &request);
                let back = Frame::parse(again.trim_end_matches('\n')).expect("re-encoded frame");
                assert_eq!(Request::parse(back.payload).ok(), Some(request));
            }
            if let Ok(response) = Response::parse(frame.payload) {
                let again = Frame::encode(frame.seq, &response);
                let back = Frame::parse(again.trim_end_matches('\n')).expect("re-encoded frame");
                assert_eq!(Response::parse(back.payload).ok(), Some(response));
            }
        }
    }
    // The controller takes the same bytes, in two pieces at two times.
    let mut controller = VirtualController::new(ControllerSpec::new(4, 4, 4));
    let cut = data.first().map_or(0, |b| usize::from(*b)).min(data.len());
    let _ = controller.receive(&data[..cut], Duration::from_millis(1));
    let _ = controller.receive(&data[cut..], Duration::from_secs(6));
    controller.poll(Duration::from_secs(20));
    let _ = controller.status();
});
