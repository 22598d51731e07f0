//! Request/response pairing (CCID Rev 1.1 §6.1, §6.2): the host-side checks against
//! transcripts of real exchanges, the stock Nitrokey quirk, time extension, and the device-side
//! error responses, checked by the host side.
#![allow(clippy::indexing_slicing, clippy::unwrap_used, clippy::expect_used)]

use tessera_ccid::*;

const ATR: [u8; 24] = [
    0x3B, 0xDE, 0x18, 0xFF, 0x81, 0x91, 0xFE, 0x1F, 0xC3, 0x80, 0x31, 0x81, 0x54, 0x48, 0x53, 0x4D,
    0x31, 0x73, 0x80, 0x21, 0x40, 0x81, 0x07, 0x1C,
];

/// The DataBlock answering IccPowerOn (slot 0, bSeq 0x2A) with the SmartCard-HSM ATR.
fn power_on_answer() -> Vec<u8> {
    let mut bytes = vec![
        0x80, // RDR_to_PC_DataBlock
        0x18, 0x00, 0x00, 0x00, // dwLength 24
        0x00, 0x2A, // bSlot, bSeq
        0x00, 0x00, 0x00, // bStatus, bError, bChainParameter
    ];
    bytes.extend_from_slice(&ATR);
    bytes
}

#[test]
fn power_on_answered_with_the_atr() {
    let bytes = power_on_answer();
    let reply = check_response::<IccPowerOn>(0, 0x2A, &bytes).unwrap();
    let Reply::Response(block) = reply else {
        panic!("expected a response, got {reply:?}")
    };
    assert_eq!(block.data, &ATR);
    assert_eq!(
        block.status().result(block.error()),
        CommandResult::Processed
    );
}

#[test]
fn host_loops_on_time_extension() {
    // XfrBlock bSeq 5: two time extensions, then the T=1 answer.
    let wait = |multiplier: u8| [0x80, 0, 0, 0, 0, 0x00, 0x05, 0x80, multiplier, 0x00];
    let answer = [
        0x80, 0x06, 0, 0, 0, 0x00, 0x05, 0x00, 0x00, 0x00, // DataBlock, dwLength 6
        0x00, 0x00, 0x02, 0x90, 0x00, 0x92, // T=1 I-block with SW 9000
    ];
    let transfers: [&[u8]; 3] = [&wait(1), &wait(3), &answer];
    let mut waited = Vec::new();
    let mut data = None;
    for bytes in transfers {
        match check_response::<XfrBlock>(0, 5, bytes).unwrap() {
            Reply::TimeExtension { multiplier } => waited.push(multiplier),
            Reply::Response(block) => {
                data = Some(block.data.to_vec());
                break;
            }
        }
    }
    assert_eq!(waited, vec![1, 3]);
    assert_eq!(data.unwrap(), vec![0x00, 0x00, 0x02, 0x90, 0x00, 0x92]);
}

#[test]
fn time_extension_is_reported_before_the_payload_is_read() {
    // A time-extension DataRateAndClockFrequency without its 8 bytes: still a wait.
    let bytes = [0x84, 0, 0, 0, 0, 0x00, 0x09, 0x80, 0x02, 0x00];
    assert_eq!(
        check_response::<SetDataRateAndClockFrequency>(0, 9, &bytes),
        Ok(Reply::TimeExtension { multiplier: 2 })
    );
}

#[test]
fn wrong_seq_is_rejected() {
    assert_eq!(
        check_response::<IccPowerOn>(0, 0x2B, &power_on_answer()),
        Err(PairingError::WrongSeq {
            expected: 0x2B,
            got: 0x2A
        })
    );
}

#[test]
fn wrong_slot_is_rejected() {
    assert_eq!(
        check_response::<IccPowerOn>(1, 0x2A, &power_on_answer()),
        Err(PairingError::WrongSlot {
            expected: 1,
            got: 0
        })
    );
}

#[test]
fn wrong_type_is_rejected() {
    // A SlotStatus where a DataBlock answers XfrBlock.
    let slot_status = [0x81, 0, 0, 0, 0, 0x00, 0x05, 0x00, 0x00, 0x00];
    assert_eq!(
        check_response::<XfrBlock>(0, 5, &slot_status),
        Err(PairingError::UnexpectedType {
            expected: MessageType::DataBlock,
            got: MessageType::SlotStatus
        })
    );
}

#[test]
fn stock_nitrokey_echo_of_an_unsupported_command_is_its_own_error() {
    // hardware.md §D: Secure (0x69) answered with bMessageType left as 0x69,
    // bStatus 0x40 | slot status, bError 0.
    let echo = [
        0x69, // bMessageType: the request's own PC_to_RDR type
        0x00, 0x00, 0x00, 0x00, // dwLength 0
        0x00, 0x07, // bSlot, bSeq
        0x40, // bStatus: failed, present and active
        0x00, // bError: command not supported
        0x00,
    ];
    assert_eq!(
        check_response::<Secure>(0, 7, &echo),
        Err(PairingError::RequestTypeEchoed {
            status: Status::new(IccStatus::PresentActive, CommandStatus::Failed),
            error: SlotError::CmdNotSupported,
        })
    );
}

#[test]
fn malformed_responses_are_rejected() {
    assert_eq!(
        check_response::<GetSlotStatus>(0, 0, &[0x81, 0, 0, 0]),
        Err(PairingError::Malformed(Error::Truncated))
    );
    assert_eq!(
        check_response::<IccPowerOn>(0, 0x2A, &power_on_answer()[..33]),
        Err(PairingError::Malformed(Error::LengthPastBuffer))
    );
    // A SlotStatus with a payload byte.
    assert_eq!(
        check_response::<GetSlotStatus>(0, 0, &[0x81, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0xAA]),
        Err(PairingError::Malformed(Error::BadLength))
    );
}

#[test]
fn failed_command_is_a_response_with_its_reason() {
    // IccPowerOn without a card: failed, no ICC present, ICC_MUTE.
    let bytes = [0x80, 0, 0, 0, 0, 0x00, 0x01, 0x42, 0xFE, 0x00];
    let Reply::Response(block) = check_response::<IccPowerOn>(0, 1, &bytes).unwrap() else {
        panic!("expected a response")
    };
    assert_eq!(block.status.icc, IccStatus::NotPresent);
    assert_eq!(
        block.status.result(block.error),
        CommandResult::Failed(SlotError::IccMute)
    );
}

/// `R`'s request type and the type of its typed response.
fn pair<R: Request>() -> (MessageType, MessageType) {
    (
        R::MESSAGE_TYPE,
        <R::Response<'static> as Response<'static>>::MESSAGE_TYPE,
    )
}

#[test]
fn typed_pairs_agree_with_the_message_type_table() {
    let pairs = [
        pair::<IccPowerOn>(),
        pair::<IccPowerOff>(),
        pair::<GetSlotStatus>(),
        pair::<XfrBlock>(),
        pair::<GetParameters>(),
        pair::<ResetParameters>(),
        pair::<SetParameters>(),
        pair::<Escape>(),
        pair::<IccClock>(),
        pair::<T0Apdu>(),
        pair::<Secure>(),
        pair::<Mechanical>(),
        pair::<Abort>(),
        pair::<SetDataRateAndClockFrequency>(),
    ];
    for (request, response) in pairs {
        assert_eq!(request.response_type(), response, "{request}");
    }
    assert_eq!(pairs.len(), 14);
}

// Device side.

const SLOT: SlotSnapshot = SlotSnapshot {
    icc: IccStatus::PresentActive,
    clock: ClockStatus::Running,
    protocol: ProtocolNum::T1,
    clock_frequency: 3600,
    data_rate: 116_129,
};

fn emit(repr: &MessageRepr<'_>) -> Vec<u8> {
    let mut buf = vec![0u8; repr.buffer_len()];
    assert_eq!(repr.emit(&mut buf), Ok(buf.len()));
    buf
}

#[test]
fn unsupported_secure_is_answered_with_a_data_block() {
    let request = MessageId::read(&[0x69, 4, 0, 0, 0, 0x00, 0x07, 0, 0, 0, 0, 0, 0, 0]).unwrap();
    let response = SLOT.not_supported(request);
    assert_eq!(
        emit(&response),
        [
            0x80, // RDR_to_PC_DataBlock, not the request's 0x69
            0x00, 0x00, 0x00, 0x00, // dwLength 0
            0x00, 0x07, // bSlot, bSeq echoed
            0x40, // bStatus: failed, present and active
            0x00, // bError: CMD_NOT_SUPPORTED
            0x00, // bChainParameter
        ]
    );
    // And the host accepts it as the answer to its Secure, a failed one.
    let bytes = emit(&response);
    let Reply::Response(block) = check_response::<Secure>(0, 7, &bytes).unwrap() else {
        panic!("expected a response")
    };
    assert_eq!(
        block.status.result(block.error),
        CommandResult::Failed(SlotError::CmdNotSupported)
    );
}

#[test]
fn unknown_message_type_is_answered_with_slot_status_cmd_not_supported() {
    let request = MessageId {
        message_type: MessageType::Unknown(0x99),
        slot: 0,
        seq: 0x33,
    };
    // Whatever error the caller had in mind, an unknown type gets CMD_NOT_SUPPORTED.
    let response = SLOT.error_response(request, SlotError::BAD_SLOT);
    assert_eq!(
        emit(&response),
        [0x81, 0, 0, 0, 0, 0x00, 0x33, 0x40, 0x00, 0x00]
    );
    // A bulk-IN type sent by the host is not a command either.
    let request = MessageId {
        message_type: MessageType::DataBlock,
        slot: 0,
        seq: 0x34,
    };
    assert_eq!(
        emit(&SLOT.not_supported(request)),
        [0x81, 0, 0, 0, 0, 0x00, 0x34, 0x40, 0x00, 0x00]
    );
}

#[test]
fn every_command_gets_its_own_response_type() {
    for byte in 0..=255u8 {
        let request = MessageId {
            message_type: MessageType::from_byte(byte),
            slot: 0,
            seq: byte,
        };
        let response = SLOT.error_response(request, SlotError::HwError);
        assert_eq!(response.seq, byte);
        assert_eq!(response.slot, 0);
        assert_eq!(
            response.message_type(),
            request.message_type.response_type()
        );
        let bytes = emit(&response);
        let Reply::Response(body) = check_response_to(request, &bytes).unwrap() else {
            panic!("expected a response")
        };
        assert_eq!(body, response.body);
    }
}

#[test]
fn bad_length_and_bad_slot_name_their_field() {
    // IccPowerOn with a payload byte: bError 1 (dwLength).
    let bytes = [0x62, 1, 0, 0, 0, 0x00, 0x08, 0, 0, 0, 0xAA];
    let error = MessageRepr::parse_bytes(&bytes).unwrap_err();
    let request = MessageId::read(&bytes).unwrap();
    assert_eq!(
        emit(&SLOT.reject(request, error)),
        [0x80, 0, 0, 0, 0, 0x00, 0x08, 0x40, 0x01, 0x00]
    );
    // GetSlotStatus to slot 3 of a one-slot reader: bError 5, no ICC.
    let request = MessageId {
        message_type: MessageType::GetSlotStatus,
        slot: 3,
        seq: 9,
    };
    assert_eq!(
        emit(&SlotSnapshot::NO_SLOT.error_response(request, SlotError::BAD_SLOT)),
        [0x81, 0, 0, 0, 0, 0x03, 0x09, 0x42, 0x05, 0x03]
    );
}

#[test]
fn device_time_extension_reaches_the_host_as_a_wait() {
    let request = MessageId {
        message_type: MessageType::XfrBlock,
        slot: 0,
        seq: 0x40,
    };
    let bytes = emit(&SLOT.time_extension(request, 2));
    assert_eq!(bytes, [0x80, 0, 0, 0, 0, 0x00, 0x40, 0x80, 0x02, 0x00]);
    assert_eq!(
        check_response::<XfrBlock>(0, 0x40, &bytes),
        Ok(Reply::TimeExtension { multiplier: 2 })
    );
}

#[test]
fn rate_and_parameters_error_responses_carry_the_current_values() {
    let request = MessageId {
        message_type: MessageType::SetDataRateAndClockFrequency,
        slot: 0,
        seq: 1,
    };
    assert_eq!(
        emit(&SLOT.not_supported(request)),
        [
            0x84, 0x08, 0, 0, 0, 0x00, 0x01, 0x40, 0x00, 0x00, // header
            0x10, 0x0E, 0x00, 0x00, // 3600 kHz
            0xA1, 0xC5, 0x01, 0x00, // 116129 bps
        ]
    );
    let request = MessageId {
        message_type: MessageType::SetParameters,
        slot: 0,
        seq: 2,
    };
    assert_eq!(
        emit(&SLOT.error_response(request, SlotError::BadField(10))),
        [0x82, 0, 0, 0, 0, 0x00, 0x02, 0x40, 0x0A, 0x01]
    );
}
