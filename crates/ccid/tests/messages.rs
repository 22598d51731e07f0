//! Bulk messages against transcripts: the four smoltcp-style tests for commands and for
//! responses, then one transcript per message type through a single `check` helper, then the
//! header errors.
#![allow(clippy::indexing_slicing, clippy::unwrap_used, clippy::expect_used)]

use tessera_ccid::*;

/// Parse `bytes` as one bulk message, compare with `repr`, and emit `repr` back to `bytes`.
fn check(bytes: &[u8], repr: MessageRepr<'_>) {
    let parsed = MessageRepr::parse_bytes(bytes).expect("transcript parses");
    assert_eq!(parsed, repr, "parse");
    assert_eq!(repr.buffer_len(), bytes.len(), "buffer_len");
    let mut out = [0xEEu8; 300];
    let n = repr.emit(&mut out).expect("emit");
    assert_eq!(&out[..n], bytes, "emit");
}

/// SmartCard-HSM v3 ATR (OpenSC card-sc-hsm.c, hardware.md §A).
const ATR: [u8; 24] = [
    0x3B, 0xDE, 0x18, 0xFF, 0x81, 0x91, 0xFE, 0x1F, 0xC3, 0x80, 0x31, 0x81, 0x54, 0x48, 0x53, 0x4D,
    0x31, 0x73, 0x80, 0x21, 0x40, 0x81, 0x07, 0x1C,
];

/// PC_to_RDR_XfrBlock carrying a T=1 I-block with SELECT of the SmartCard-HSM applet.
static XFR_BLOCK: [u8; 30] = [
    0x6F, // bMessageType: PC_to_RDR_XfrBlock
    0x14, 0x00, 0x00, 0x00, // dwLength: 20
    0x00, // bSlot
    0x01, // bSeq
    0x00, // bBWI
    0x00, 0x00, // wLevelParameter
    0x00, 0x00, 0x10, // T=1: NAD 0, PCB I(0) no chaining, LEN 16
    0x00, 0xA4, 0x04, 0x00, 0x0B, // SELECT by AID, Lc 11
    0xE8, 0x2B, 0x06, 0x01, 0x04, 0x01, 0x81, 0xC3, 0x1F, 0x02, 0x01, // SC-HSM AID
    0x24, // LRC
];

fn xfr_block_repr() -> MessageRepr<'static> {
    MessageRepr::new(0, 1, XfrBlock::new(&XFR_BLOCK[10..]))
}

#[test]
fn command_deconstruct() {
    let m = Message::new_checked(&XFR_BLOCK[..]).unwrap();
    assert_eq!(m.message_type(), MessageType::XfrBlock);
    assert_eq!(m.length(), 20);
    assert_eq!(m.total_len(), Some(30));
    assert_eq!(m.slot(), 0);
    assert_eq!(m.seq(), 1);
    assert_eq!(m.bwi(), 0);
    assert_eq!(m.level_parameter(), 0);
    assert_eq!(m.payload(), &XFR_BLOCK[10..]);
    assert_eq!(
        m.id(),
        MessageId {
            message_type: MessageType::XfrBlock,
            slot: 0,
            seq: 1
        }
    );
}

#[test]
fn command_construct() {
    let mut buf = [0u8; 30];
    let mut m = Message::new_unchecked(&mut buf[..]);
    m.set_message_type(MessageType::XfrBlock);
    m.set_length(20);
    m.set_slot(0);
    m.set_seq(1);
    m.set_specific([0, 0, 0]);
    m.set_level_parameter(0);
    m.payload_mut().copy_from_slice(&XFR_BLOCK[10..]);
    assert_eq!(buf, XFR_BLOCK);
}

#[test]
fn command_parse() {
    let m = Message::new_checked(&XFR_BLOCK[..]).unwrap();
    assert_eq!(MessageRepr::parse(&m), Ok(xfr_block_repr()));
}

#[test]
fn command_emit() {
    let repr = xfr_block_repr();
    assert_eq!(repr.buffer_len(), 30);
    let mut buf = [0u8; 30];
    assert_eq!(repr.emit(&mut buf), Ok(30));
    assert_eq!(buf, XFR_BLOCK);
    assert_eq!(repr.emit(&mut [0u8; 29]), Err(Error::BufferTooSmall));
}

/// RDR_to_PC_DataBlock carrying the ATR, the answer to IccPowerOn.
static DATA_BLOCK_ATR: [u8; 34] = [
    0x80, // bMessageType: RDR_to_PC_DataBlock
    0x18, 0x00, 0x00, 0x00, // dwLength: 24
    0x00, // bSlot
    0x00, // bSeq
    0x00, // bStatus: processed, ICC present and active
    0x00, // bError
    0x00, // bChainParameter
    0x3B, 0xDE, 0x18, 0xFF, 0x81, 0x91, 0xFE, 0x1F, // TS T0 TA1 TD1 TD2 TA3 TB3 ...
    0xC3, 0x80, 0x31, 0x81, 0x54, 0x48, 0x53, 0x4D, // historical bytes
    0x31, 0x73, 0x80, 0x21, 0x40, 0x81, 0x07, 0x1C, // ... TCK 0x1C
];

fn data_block_atr_repr() -> MessageRepr<'static> {
    MessageRepr::new(
        0,
        0,
        DataBlock {
            status: Status::new(IccStatus::PresentActive, CommandStatus::Processed),
            error: SlotError::CmdNotSupported,
            chain: ChainParameter::BeginsAndEnds,
            data: &ATR,
        },
    )
}

#[test]
fn response_deconstruct() {
    let m = Message::new_checked(&DATA_BLOCK_ATR[..]).unwrap();
    assert_eq!(m.message_type(), MessageType::DataBlock);
    assert_eq!(m.length(), 24);
    assert_eq!(m.slot(), 0);
    assert_eq!(m.seq(), 0);
    assert_eq!(m.status().icc, IccStatus::PresentActive);
    assert_eq!(m.status().command, CommandStatus::Processed);
    assert_eq!(m.error().to_byte(), 0);
    assert_eq!(m.chain_parameter(), ChainParameter::BeginsAndEnds);
    assert_eq!(m.payload(), &ATR);
}

#[test]
fn response_construct() {
    let mut buf = [0xFFu8; 34];
    let mut m = Message::new_unchecked(&mut buf[..]);
    m.set_message_type(MessageType::DataBlock);
    m.set_length(24);
    m.set_slot(0);
    m.set_seq(0);
    m.set_status(Status::new(
        IccStatus::PresentActive,
        CommandStatus::Processed,
    ));
    m.set_error(SlotError::from_byte(0));
    m.set_specific([0, 0, 0]);
    m.payload_mut().copy_from_slice(&ATR);
    assert_eq!(buf, DATA_BLOCK_ATR);
}

#[test]
fn response_parse() {
    let m = Message::new_checked(&DATA_BLOCK_ATR[..]).unwrap();
    assert_eq!(MessageRepr::parse(&m), Ok(data_block_atr_repr()));
}

#[test]
fn response_emit() {
    let repr = data_block_atr_repr();
    let mut buf = [0u8; 40];
    assert_eq!(repr.emit(&mut buf), Ok(34));
    assert_eq!(&buf[..34], &DATA_BLOCK_ATR);
}

// One transcript per message type.

#[test]
fn icc_power_on() {
    check(
        &[
            0x62, // PC_to_RDR_IccPowerOn
            0x00, 0x00, 0x00, 0x00, // dwLength 0
            0x00, 0x00, // bSlot 0, bSeq 0
            0x02, // bPowerSelect: 3.0 V
            0x00, 0x00, // abRFU
        ],
        MessageRepr::new(0, 0, IccPowerOn::new(PowerSelect::Volts3)),
    );
}

#[test]
fn icc_power_off_and_slot_status_clock_stopped_low() {
    check(
        &[0x63, 0, 0, 0, 0, 0x00, 0x09, 0, 0, 0], // IccPowerOff, seq 9
        MessageRepr::new(0, 9, IccPowerOff::new()),
    );
    // The stock firmware's answer: present and inactive, clock stopped low (hardware.md §D).
    check(
        &[
            0x81, // RDR_to_PC_SlotStatus
            0, 0, 0, 0, // dwLength 0
            0x00, 0x09, // bSlot, bSeq
            0x01, // bStatus: processed, present and inactive
            0x00, // bError
            0x01, // bClockStatus: stopped in state L
        ],
        MessageRepr::new(
            0,
            9,
            SlotStatus {
                status: Status::new(IccStatus::PresentInactive, CommandStatus::Processed),
                error: SlotError::CmdNotSupported,
                clock: ClockStatus::StoppedLow,
            },
        ),
    );
}

#[test]
fn get_slot_status_abort_get_and_reset_parameters() {
    check(
        &[0x65, 0, 0, 0, 0, 0x00, 0x03, 0, 0, 0],
        MessageRepr::new(0, 3, GetSlotStatus::new()),
    );
    check(
        &[0x72, 0, 0, 0, 0, 0x00, 0x04, 0, 0, 0],
        MessageRepr::new(0, 4, Abort::new()),
    );
    check(
        &[0x6C, 0, 0, 0, 0, 0x00, 0x05, 0, 0, 0],
        MessageRepr::new(0, 5, GetParameters::new()),
    );
    check(
        &[0x6D, 0, 0, 0, 0, 0x00, 0x06, 0, 0, 0],
        MessageRepr::new(0, 6, ResetParameters::new()),
    );
}

/// The T=1 structure for the SmartCard-HSM after PPS (TA1 0x18, IFSC 254).
const T1: [u8; 7] = [0x18, 0x11, 0x02, 0x4D, 0x03, 0xFE, 0x00];

fn t1() -> T1Parameters {
    T1Parameters::parse(&T1).unwrap()
}

#[test]
fn set_parameters_and_parameters_t1() {
    check(
        &[
            0x61, // PC_to_RDR_SetParameters
            0x07, 0x00, 0x00, 0x00, // dwLength 7
            0x00, 0x0A, // bSlot, bSeq
            0x01, // bProtocolNum: T=1
            0x00, 0x00, // abRFU
            0x18, 0x11, 0x02, 0x4D, 0x03, 0xFE, 0x00, // abProtocolDataStructure (T=1)
        ],
        MessageRepr::new(0, 10, SetParameters::new(ProtocolData::T1(t1()))),
    );
    check(
        &[
            0x82, // RDR_to_PC_Parameters
            0x07, 0x00, 0x00, 0x00, // dwLength 7
            0x00, 0x0A, // bSlot, bSeq
            0x00, 0x00, // bStatus, bError
            0x01, // bProtocolNum: T=1
            0x18, 0x11, 0x02, 0x4D, 0x03, 0xFE, 0x00, // abProtocolDataStructure (T=1)
        ],
        MessageRepr::new(
            0,
            10,
            Parameters {
                status: Status::default(),
                error: SlotError::CmdNotSupported,
                protocol: ProtocolData::T1(t1()),
            },
        ),
    );
}

#[test]
fn set_parameters_t0() {
    check(
        &[
            0x61, 0x05, 0x00, 0x00, 0x00, 0x00, 0x0B, // SetParameters, dwLength 5, seq 11
            0x00, 0x00, 0x00, // bProtocolNum T=0, abRFU
            0x11, 0x00, 0x00, 0x0A, 0x00, // Fi/Di 1/1, direct, N 0, WI 10, no clock stop
        ],
        MessageRepr::new(
            0,
            11,
            SetParameters::new(ProtocolData::T0(T0Parameters {
                findex_dindex: 0x11,
                tcckst0: 0,
                guard_time: 0,
                waiting_integer: 10,
                clock_stop: ClockStop::NotAllowed,
            })),
        ),
    );
}

#[test]
fn parameters_response_without_structure_is_kept_raw() {
    // A failed GetParameters answered with dwLength 0 (as osmo-ccid-firmware does).
    check(
        &[0x82, 0, 0, 0, 0, 0x00, 0x0C, 0x41, 0xFE, 0x01],
        MessageRepr::new(
            0,
            12,
            Parameters {
                status: Status::new(IccStatus::PresentInactive, CommandStatus::Failed),
                error: SlotError::IccMute,
                protocol: ProtocolData::Raw {
                    protocol: ProtocolNum::T1,
                    data: &[],
                },
            },
        ),
    );
}

#[test]
fn escape_and_escape_response() {
    // The stock firmware's name query (hardware.md §D).
    check(
        &[0x6B, 0x01, 0, 0, 0, 0x00, 0x0D, 0, 0, 0, 0x02],
        MessageRepr::new(0, 13, Escape::new(&[0x02])),
    );
    let name = b"GemTwin-V2.00-GT00";
    let mut bytes = vec![0x83, 0x12, 0, 0, 0, 0x00, 0x0D, 0x00, 0x00, 0x00];
    bytes.extend_from_slice(name);
    check(
        &bytes,
        MessageRepr::new(
            0,
            13,
            EscapeResponse {
                status: Status::default(),
                error: SlotError::CmdNotSupported,
                rfu: 0,
                data: name,
            },
        ),
    );
}

#[test]
fn icc_clock_t0apdu_mechanical() {
    check(
        &[0x6E, 0, 0, 0, 0, 0x00, 0x0E, 0x01, 0, 0], // IccClock: stop
        MessageRepr::new(0, 14, IccClock::new(ClockCommand::Stop)),
    );
    check(
        &[0x6A, 0, 0, 0, 0, 0x00, 0x0F, 0x03, 0x00, 0x80], // T0APDU: change both classes
        MessageRepr::new(
            0,
            15,
            T0Apdu {
                changes: T0Apdu::CHANGE_GET_RESPONSE | T0Apdu::CHANGE_ENVELOPE,
                class_get_response: 0x00,
                class_envelope: 0x80,
            },
        ),
    );
    check(
        &[0x71, 0, 0, 0, 0, 0x00, 0x10, 0x02, 0, 0], // Mechanical: eject
        MessageRepr::new(0, 16, Mechanical::new(MechanicalFunction::EjectCard)),
    );
}

#[test]
fn secure_keeps_pin_structure_opaque() {
    let bytes = [
        0x69, // PC_to_RDR_Secure
        0x04, 0x00, 0x00, 0x00, // dwLength 4
        0x00, 0x11, // bSlot, bSeq
        0x00, // bBWI
        0x00, 0x00, // wLevelParameter
        0x00, 0x1E, 0x82, 0x04, // bPINOperation verify, then the start of the structure
    ];
    let repr = MessageRepr::new(
        0,
        17,
        Secure {
            bwi: 0,
            level_parameter: 0,
            data: &bytes[10..],
        },
    );
    check(&bytes, repr);
    let Body::Secure(s) = repr.body else {
        panic!("not Secure")
    };
    assert_eq!(s.pin_operation(), Some(PinOperation::Verify));
}

#[test]
fn set_data_rate_and_clock_frequency_and_answer() {
    check(
        &[
            0x73, 0x08, 0x00, 0x00, 0x00, // SetDataRateAndClockFrequency, dwLength 8
            0x00, 0x12, 0x00, 0x00, 0x00, // bSlot, bSeq, abRFU
            0x10, 0x0E, 0x00, 0x00, // dwClockFrequency 3600 kHz
            0xA1, 0xC5, 0x01, 0x00, // dwDataRate 116129 bps
        ],
        MessageRepr::new(0, 18, SetDataRateAndClockFrequency::new(3600, 116_129)),
    );
    check(
        &[
            0x84, 0x08, 0x00, 0x00, 0x00, // DataRateAndClockFrequency, dwLength 8
            0x00, 0x12, 0x00, 0x00, 0x00, // bSlot, bSeq, bStatus, bError, bRFU
            0x10, 0x0E, 0x00, 0x00, // dwClockFrequency 3600 kHz
            0xCD, 0x25, 0x00, 0x00, // dwDataRate 9677 bps
        ],
        MessageRepr::new(
            0,
            18,
            DataRateAndClockFrequency {
                status: Status::default(),
                error: SlotError::CmdNotSupported,
                rfu: 0,
                clock_frequency: 3600,
                data_rate: 9677,
            },
        ),
    );
}

#[test]
fn data_block_t1_response_and_time_extension() {
    check(
        &[
            0x80, 0x06, 0x00, 0x00, 0x00, // DataBlock, dwLength 6
            0x00, 0x01, 0x00, 0x00, 0x00, // bSlot, bSeq 1, bStatus, bError, bChainParameter
            0x00, 0x00, 0x02, // T=1: NAD 0, PCB I(0), LEN 2
            0x90, 0x00, // SW 9000
            0x92, // LRC
        ],
        MessageRepr::new(
            0,
            1,
            DataBlock {
                data: &[0x00, 0x00, 0x02, 0x90, 0x00, 0x92],
                ..DataBlock::default()
            },
        ),
    );
    check(
        &[
            0x80, 0x00, 0x00, 0x00, 0x00, // DataBlock, dwLength 0
            0x00, 0x02, // bSlot, bSeq 2
            0x80, // bStatus: time extension, ICC present and active
            0x01, // bError: BWT multiplier 1
            0x00, // bChainParameter
        ],
        MessageRepr::new(
            0,
            2,
            DataBlock {
                status: Status::new(IccStatus::PresentActive, CommandStatus::TimeExtension),
                error: SlotError::from_byte(1),
                ..DataBlock::default()
            },
        ),
    );
}

#[test]
fn xfr_block_extended_apdu_chaining() {
    let bytes = [
        0x6F, 0x02, 0, 0, 0, 0x00, 0x13, 0x00, 0x01, 0x00, 0xAB, 0xCD,
    ];
    let repr = MessageRepr::new(
        0,
        19,
        XfrBlock {
            bwi: 0,
            level_parameter: ChainParameter::Begins.to_level_parameter(),
            data: &[0xAB, 0xCD],
        },
    );
    check(&bytes, repr);
    let Body::XfrBlock(x) = repr.body else {
        panic!("not XfrBlock")
    };
    assert_eq!(x.chain(), Some(ChainParameter::Begins));
    let wide = XfrBlock {
        level_parameter: 0x0100,
        ..x
    };
    assert_eq!(wide.chain(), None);
}

#[test]
fn unknown_message_type_round_trips() {
    let bytes = [0x99, 0x03, 0, 0, 0, 0x02, 0x20, 0xA1, 0xA2, 0xA3, 1, 2, 3];
    check(
        &bytes,
        MessageRepr::new(
            2,
            0x20,
            Body::Unknown {
                message_type: 0x99,
                specific: [0xA1, 0xA2, 0xA3],
                data: &[1, 2, 3],
            },
        ),
    );
    // An interrupt type on a bulk pipe is not a bulk message: kept as Unknown.
    let notify = [0x50, 0, 0, 0, 0, 0, 0, 0, 0, 0];
    assert!(matches!(
        MessageRepr::parse_bytes(&notify).unwrap().body,
        Body::Unknown {
            message_type: 0x50,
            ..
        }
    ));
}

#[test]
fn unknown_codes_round_trip() {
    // IccPowerOn with bPowerSelect 0x07 and non-zero abRFU.
    let bytes = [0x62, 0, 0, 0, 0, 0x00, 0x00, 0x07, 0x5A, 0xA5];
    check(
        &bytes,
        MessageRepr::new(
            0,
            0,
            IccPowerOn {
                power_select: PowerSelect::Unknown(0x07),
                rfu: [0x5A, 0xA5],
            },
        ),
    );
    // SlotStatus with reserved bStatus bits, a user-defined bError and an RFU clock status.
    let bytes = [0x81, 0, 0, 0, 0, 0x00, 0x00, 0x3C, 0x90, 0x07];
    check(
        &bytes,
        MessageRepr::new(
            0,
            0,
            SlotStatus {
                status: Status {
                    icc: IccStatus::PresentActive,
                    command: CommandStatus::Processed,
                    rfu: 0x0F,
                },
                error: SlotError::UserDefined(0x90),
                clock: ClockStatus::Unknown(0x07),
            },
        ),
    );
}

// Header and length errors.

#[test]
fn truncated_header() {
    assert_eq!(
        Message::new_checked(&[0x65, 0, 0, 0, 0, 0, 0, 0, 0][..]).err(),
        Some(Error::Truncated)
    );
    assert_eq!(MessageRepr::parse_bytes(&[]), Err(Error::Truncated));
    assert_eq!(MessageId::read(&[0x65; 9]), Err(Error::Truncated));
}

#[test]
fn length_field_larger_than_the_buffer() {
    // dwLength 20 but only 19 payload bytes.
    assert_eq!(
        Message::new_checked(&XFR_BLOCK[..29]).err(),
        Some(Error::LengthPastBuffer)
    );
    // dwLength 0xFFFFFFFF.
    let huge = [0x6F, 0xFF, 0xFF, 0xFF, 0xFF, 0, 0, 0, 0, 0];
    assert_eq!(
        Message::new_checked(&huge[..]).err(),
        Some(Error::LengthPastBuffer)
    );
    // An unchecked view of it never panics.
    let m = Message::new_unchecked(&huge[..]);
    assert_eq!(m.payload(), &[] as &[u8]);
    assert_eq!(m.length(), u32::MAX);
}

#[test]
fn length_larger_than_dw_max_ccid_message_length() {
    let max = ClassDescriptorRepr::NITROKEY_HSM2.max_ccid_message_length; // 271
                                                                          // 261 payload bytes: exactly 271, accepted.
    let mut ok = vec![0x6F, 0x05, 0x01, 0, 0, 0, 0, 0, 0, 0];
    ok.resize(271, 0);
    assert!(Message::new_checked_max(&ok[..], max).is_ok());
    // 262 payload bytes: 272, too long, reported from the header alone.
    let header = [0x6F, 0x06, 0x01, 0, 0, 0, 0, 0, 0, 0];
    assert_eq!(
        Message::new_checked_max(&header[..], max).err(),
        Some(Error::TooLong)
    );
    assert_eq!(Error::TooLong.offending_field(), Some(1));
}

#[test]
fn fixed_length_messages_reject_other_lengths() {
    // IccPowerOn with a payload byte.
    assert_eq!(
        MessageRepr::parse_bytes(&[0x62, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0xAA]),
        Err(Error::BadLength)
    );
    // SetParameters T=1 with 5 bytes.
    assert_eq!(
        MessageRepr::parse_bytes(&[0x61, 5, 0, 0, 0, 0, 0, 1, 0, 0, 1, 2, 3, 4, 5]),
        Err(Error::BadLength)
    );
    // SetDataRateAndClockFrequency with 4 bytes.
    assert_eq!(
        MessageRepr::parse_bytes(&[0x73, 4, 0, 0, 0, 0, 0, 0, 0, 0, 1, 2, 3, 4]),
        Err(Error::BadLength)
    );
    // SlotStatus with a payload.
    assert_eq!(
        MessageRepr::parse_bytes(&[0x81, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0]),
        Err(Error::BadLength)
    );
}

#[test]
fn bytes_after_dw_length_are_ignored() {
    let mut bytes = XFR_BLOCK.to_vec();
    bytes.extend_from_slice(&[0xDE, 0xAD]);
    assert_eq!(MessageRepr::parse_bytes(&bytes), Ok(xfr_block_repr()));
}

#[test]
fn every_command_type_names_its_response_type() {
    use MessageType::*;
    let table = [
        (IccPowerOn, DataBlock),
        (IccPowerOff, SlotStatus),
        (GetSlotStatus, SlotStatus),
        (XfrBlock, DataBlock),
        (GetParameters, Parameters),
        (ResetParameters, Parameters),
        (SetParameters, Parameters),
        (Escape, EscapeResponse),
        (IccClock, SlotStatus),
        (T0Apdu, SlotStatus),
        (Secure, DataBlock),
        (Mechanical, SlotStatus),
        (Abort, SlotStatus),
        (SetDataRateAndClockFrequency, DataRateAndClockFrequency),
    ];
    for (command, response) in table {
        assert!(command.is_command());
        assert_eq!(command.direction(), Some(Direction::BulkOut));
        assert_eq!(command.response_type(), response, "{command}");
        assert_eq!(response.direction(), Some(Direction::BulkIn));
    }
    assert_eq!(Unknown(0x99).response_type(), SlotStatus);
    assert_eq!(NotifySlotChange.direction(), Some(Direction::InterruptIn));
    for b in 0..=255u8 {
        assert_eq!(MessageType::from_byte(b).to_byte(), b);
    }
}
