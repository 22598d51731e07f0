//! CCID messages: any bytes parsed as a bulk message (OUT or IN) and as an interrupt message;
//! whatever parses is re-emitted and must give the same bytes back (CCID Rev 1.1 §6.1-§6.3).
//! Anything with a header gets the device-side error response, which the host-side pairing
//! check must accept as the answer to it.
#![no_main]

use libfuzzer_sys::fuzz_target;
use tessera_ccid::{
    check_response_to, ClockStatus, IccStatus, InterruptRepr, Message, MessageId, MessageRepr,
    ProtocolNum, Reply, SlotSnapshot, HEADER_LEN,
};

/// A bulk message that parses re-emits to the bytes it came from, and parses again to itself.
fn bulk_round_trip(bytes: &[u8]) {
    let view = Message::new_unchecked(bytes);
    // The raw accessors never panic, checked or not.
    let _ = (
        view.message_type(),
        view.length(),
        view.total_len(),
        view.slot(),
        view.seq(),
    );
    let _ = (
        view.specific(),
        view.level_parameter(),
        view.status(),
        view.error(),
    );
    let _ = (
        view.chain_parameter(),
        view.clock_status(),
        view.protocol_num(),
        view.payload(),
    );
    let _ = Message::new_checked_max(bytes, 271);

    if let Ok(repr) = MessageRepr::parse_bytes(bytes) {
        let total = view.total_len().expect("a parsed message has a length");
        assert_eq!(repr.buffer_len(), total);
        let mut out = vec![0u8; total];
        assert_eq!(repr.emit(&mut out), Ok(total));
        assert_eq!(&out[..], &bytes[..total]);
        assert_eq!(MessageRepr::parse_bytes(&out), Ok(repr));
        assert_eq!(repr.id(), view.id());
    }
}

/// The device answers anything with a header; the host accepts that answer.
fn device_answer(bytes: &[u8]) {
    let Ok(request) = MessageId::read(bytes) else {
        return;
    };
    let slot = SlotSnapshot {
        icc: IccStatus::PresentActive,
        clock: ClockStatus::Running,
        protocol: ProtocolNum::T1,
        clock_frequency: 3600,
        data_rate: 9677,
    };
    let response = match MessageRepr::parse_bytes(bytes) {
        Ok(_) => slot.not_supported(request),
        Err(e) => slot.reject(request, e),
    };
    assert_eq!(response.slot, request.slot);
    assert_eq!(response.seq, request.seq);
    assert_eq!(
        response.message_type(),
        request.message_type.response_type()
    );
    let mut out = vec![0u8; response.buffer_len()];
    assert_eq!(response.emit(&mut out), Ok(out.len()));
    match check_response_to(request, &out) {
        Ok(Reply::Response(body)) => assert_eq!(body, response.body),
        other => panic!("host rejected the device's answer: {other:?}"),
    }

    let multiplier = bytes.last().copied().unwrap_or(1);
    let wait = slot.time_extension(request, multiplier);
    let mut out = vec![0u8; wait.buffer_len()];
    assert_eq!(wait.emit(&mut out), Ok(out.len()));
    assert_eq!(
        check_response_to(request, &out),
        Ok(Reply::TimeExtension { multiplier })
    );
}

fuzz_target!(|data: &[u8]| {
    bulk_round_trip(data);
    device_answer(data);

    // Make complete bulk messages likely: set dwLength to what follows the header.
    if data.len() >= HEADER_LEN {
        let mut fixed = data.to_vec();
        let len = u32::try_from(data.len() - HEADER_LEN).unwrap_or(u32::MAX);
        fixed[1..5].copy_from_slice(&len.to_le_bytes());
        bulk_round_trip(&fixed);
        device_answer(&fixed);
    }

    // Interrupt IN: one transfer is one message.
    if let Ok(repr) = InterruptRepr::parse(data) {
        assert_eq!(repr.buffer_len(), data.len());
        let mut out = vec![0u8; data.len()];
        assert_eq!(repr.emit(&mut out), Ok(data.len()));
        assert_eq!(&out[..], data);
        assert_eq!(InterruptRepr::parse(&out), Ok(repr));
    }
});
