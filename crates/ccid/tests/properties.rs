//! Property tests: parsing never panics; `emit(parse(x)) == x` for everything that parses;
//! `parse(emit(repr)) == repr` for generated reprs; every code round-trips all 256 values; the
//! device-side responses always satisfy the host-side pairing check.
#![allow(clippy::indexing_slicing, clippy::unwrap_used, clippy::expect_used)]

use proptest::prelude::*;
use tessera_ccid::*;

/// A bulk message that parses often: a header with a known (or any) type, a `dwLength` that
/// matches the payload, sometimes trailing bytes.
fn bulk_bytes() -> impl Strategy<Value = Vec<u8>> {
    let known: Vec<u8> = vec![
        0x62, 0x63, 0x65, 0x6F, 0x6C, 0x6D, 0x61, 0x6B, 0x6E, 0x6A, 0x69, 0x71, 0x72, 0x73, 0x80,
        0x81, 0x82, 0x83, 0x84, 0x50, 0x51,
    ];
    let message_type = prop_oneof![3 => proptest::sample::select(known), 1 => any::<u8>()];
    let payload = prop_oneof![
        2 => Just(0usize),
        1 => Just(5usize),
        1 => Just(7usize),
        1 => Just(8usize),
        2 => 0usize..64,
    ]
    .prop_flat_map(|n| proptest::collection::vec(any::<u8>(), n));
    (
        message_type,
        any::<[u8; 5]>(),
        payload,
        proptest::collection::vec(any::<u8>(), 0..3),
    )
        .prop_map(|(t, rest, payload, trailing)| {
            let mut b = vec![t];
            b.extend_from_slice(&(payload.len() as u32).to_le_bytes());
            b.extend_from_slice(&rest);
            b.extend_from_slice(&payload);
            b.extend_from_slice(&trailing);
            b
        })
}

fn data() -> impl Strategy<Value = Vec<u8>> {
    proptest::collection::vec(any::<u8>(), 0..40)
}

fn t0() -> impl Strategy<Value = T0Parameters> {
    any::<[u8; 5]>().prop_map(|b| T0Parameters::parse(&b).unwrap())
}

fn t1() -> impl Strategy<Value = T1Parameters> {
    any::<[u8; 7]>().prop_map(|b| T1Parameters::parse(&b).unwrap())
}

/// Owned material for one generated body; `body()` borrows it.
#[derive(Debug, Clone)]
enum Gen {
    PowerOn(u8, [u8; 2]),
    Rfu(u8, [u8; 3]),
    Xfr(u8, u16, Vec<u8>),
    SetT0(T0Parameters, [u8; 2]),
    SetT1(T1Parameters, [u8; 2]),
    SetRaw(u8, [u8; 2], Vec<u8>),
    Escape([u8; 3], Vec<u8>),
    Clock(u8, [u8; 2]),
    T0Apdu([u8; 3]),
    Secure(u8, u16, Vec<u8>),
    Mechanical(u8, [u8; 2]),
    SetRate([u8; 3], u32, u32),
    DataBlock(u8, u8, u8, Vec<u8>),
    SlotStatus(u8, u8, u8),
    ParamsT0(u8, u8, T0Parameters),
    ParamsT1(u8, u8, T1Parameters),
    ParamsRaw(u8, u8, u8, Vec<u8>),
    EscapeResponse(u8, u8, u8, Vec<u8>),
    Rate(u8, u8, u8, u32, u32),
    Unknown(u8, [u8; 3], Vec<u8>),
}

fn is_bulk_type(t: u8) -> bool {
    matches!(
        MessageType::from_byte(t).direction(),
        Some(Direction::BulkOut | Direction::BulkIn)
    )
}

fn gen() -> impl Strategy<Value = Gen> {
    let rfu_types = proptest::sample::select(vec![0x63u8, 0x65, 0x6C, 0x6D, 0x72]);
    prop_oneof![
        (any::<u8>(), any::<[u8; 2]>()).prop_map(|(p, r)| Gen::PowerOn(p, r)),
        (rfu_types, any::<[u8; 3]>()).prop_map(|(t, r)| Gen::Rfu(t, r)),
        (any::<u8>(), any::<u16>(), data()).prop_map(|(b, l, d)| Gen::Xfr(b, l, d)),
        (t0(), any::<[u8; 2]>()).prop_map(|(p, r)| Gen::SetT0(p, r)),
        (t1(), any::<[u8; 2]>()).prop_map(|(p, r)| Gen::SetT1(p, r)),
        (2u8..=255, any::<[u8; 2]>(), data()).prop_map(|(p, r, d)| Gen::SetRaw(p, r, d)),
        (any::<[u8; 3]>(), data()).prop_map(|(r, d)| Gen::Escape(r, d)),
        (any::<u8>(), any::<[u8; 2]>()).prop_map(|(c, r)| Gen::Clock(c, r)),
        any::<[u8; 3]>().prop_map(Gen::T0Apdu),
        (any::<u8>(), any::<u16>(), data()).prop_map(|(b, l, d)| Gen::Secure(b, l, d)),
        (any::<u8>(), any::<[u8; 2]>()).prop_map(|(f, r)| Gen::Mechanical(f, r)),
        (any::<[u8; 3]>(), any::<u32>(), any::<u32>()).prop_map(|(r, c, d)| Gen::SetRate(r, c, d)),
        (any::<u8>(), any::<u8>(), any::<u8>(), data())
            .prop_map(|(s, e, c, d)| Gen::DataBlock(s, e, c, d)),
        (any::<u8>(), any::<u8>(), any::<u8>()).prop_map(|(s, e, c)| Gen::SlotStatus(s, e, c)),
        (any::<u8>(), any::<u8>(), t0()).prop_map(|(s, e, p)| Gen::ParamsT0(s, e, p)),
        (any::<u8>(), any::<u8>(), t1()).prop_map(|(s, e, p)| Gen::ParamsT1(s, e, p)),
        (any::<u8>(), any::<u8>(), any::<u8>(), data())
            .prop_filter("canonical Raw", |(_, _, p, d)| !matches!(
                (*p, d.len()),
                (0, 5) | (1, 7)
            ))
            .prop_map(|(s, e, p, d)| Gen::ParamsRaw(s, e, p, d)),
        (any::<u8>(), any::<u8>(), any::<u8>(), data())
            .prop_map(|(s, e, r, d)| Gen::EscapeResponse(s, e, r, d)),
        (
            any::<u8>(),
            any::<u8>(),
            any::<u8>(),
            any::<u32>(),
            any::<u32>()
        )
            .prop_map(|(s, e, r, c, d)| Gen::Rate(s, e, r, c, d)),
        (
            any::<u8>().prop_filter("not a bulk type", |t| !is_bulk_type(*t)),
            any::<[u8; 3]>(),
            data()
        )
            .prop_map(|(t, s, d)| Gen::Unknown(t, s, d)),
    ]
}

impl Gen {
    fn body(&self) -> Body<'_> {
        match self {
            Gen::PowerOn(p, rfu) => Body::IccPowerOn(IccPowerOn {
                power_select: PowerSelect::from_byte(*p),
                rfu: *rfu,
            }),
            Gen::Rfu(t, rfu) => Body::decode(*t, *rfu, &[]).unwrap(),
            Gen::Xfr(bwi, level, d) => Body::XfrBlock(XfrBlock {
                bwi: *bwi,
                level_parameter: *level,
                data: d,
            }),
            Gen::SetT0(p, rfu) => Body::SetParameters(SetParameters {
                protocol: ProtocolData::T0(*p),
                rfu: *rfu,
            }),
            Gen::SetT1(p, rfu) => Body::SetParameters(SetParameters {
                protocol: ProtocolData::T1(*p),
                rfu: *rfu,
            }),
            Gen::SetRaw(p, rfu, d) => Body::SetParameters(SetParameters {
                protocol: ProtocolData::Raw {
                    protocol: ProtocolNum::from_byte(*p),
                    data: d,
                },
                rfu: *rfu,
            }),
            Gen::Escape(rfu, d) => Body::Escape(Escape { rfu: *rfu, data: d }),
            Gen::Clock(c, rfu) => Body::IccClock(IccClock {
                command: ClockCommand::from_byte(*c),
                rfu: *rfu,
            }),
            Gen::T0Apdu([a, b, c]) => Body::T0Apdu(T0Apdu {
                changes: *a,
                class_get_response: *b,
                class_envelope: *c,
            }),
            Gen::Secure(bwi, level, d) => Body::Secure(Secure {
                bwi: *bwi,
                level_parameter: *level,
                data: d,
            }),
            Gen::Mechanical(f, rfu) => Body::Mechanical(Mechanical {
                function: MechanicalFunction::from_byte(*f),
                rfu: *rfu,
            }),
            Gen::SetRate(rfu, c, r) => {
                Body::SetDataRateAndClockFrequency(SetDataRateAndClockFrequency {
                    rfu: *rfu,
                    clock_frequency: *c,
                    data_rate: *r,
                })
            }
            Gen::DataBlock(s, e, c, d) => Body::DataBlock(DataBlock {
                status: Status::from_byte(*s),
                error: SlotError::from_byte(*e),
                chain: ChainParameter::from_byte(*c),
                data: d,
            }),
            Gen::SlotStatus(s, e, c) => Body::SlotStatus(SlotStatus {
                status: Status::from_byte(*s),
                error: SlotError::from_byte(*e),
                clock: ClockStatus::from_byte(*c),
            }),
            Gen::ParamsT0(s, e, p) => Body::Parameters(Parameters {
                status: Status::from_byte(*s),
                error: SlotError::from_byte(*e),
                protocol: ProtocolData::T0(*p),
            }),
            Gen::ParamsT1(s, e, p) => Body::Parameters(Parameters {
                status: Status::from_byte(*s),
                error: SlotError::from_byte(*e),
                protocol: ProtocolData::T1(*p),
            }),
            Gen::ParamsRaw(s, e, p, d) => Body::Parameters(Parameters {
                status: Status::from_byte(*s),
                error: SlotError::from_byte(*e),
                protocol: ProtocolData::Raw {
                    protocol: ProtocolNum::from_byte(*p),
                    data: d,
                },
            }),
            Gen::EscapeResponse(s, e, r, d) => Body::EscapeResponse(EscapeResponse {
                status: Status::from_byte(*s),
                error: SlotError::from_byte(*e),
                rfu: *r,
                data: d,
            }),
            Gen::Rate(s, e, r, c, d) => {
                Body::DataRateAndClockFrequency(DataRateAndClockFrequency {
                    status: Status::from_byte(*s),
                    error: SlotError::from_byte(*e),
                    rfu: *r,
                    clock_frequency: *c,
                    data_rate: *d,
                })
            }
            Gen::Unknown(t, s, d) => Body::Unknown {
                message_type: *t,
                specific: *s,
                data: d,
            },
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    #[test]
    fn parsing_any_bytes_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..80)) {
        let _ = MessageRepr::parse_bytes(&bytes);
        let _ = Message::new_checked_max(&bytes[..], 271);
        let _ = MessageId::read(&bytes);
        let _ = InterruptRepr::parse(&bytes);
        if let Ok(d) = ClassDescriptor::new_checked(&bytes[..]) {
            let _ = ClassDescriptorRepr::parse(&d);
        }
        let _ = T0Parameters::parse(&bytes);
        let _ = T1Parameters::parse(&bytes);
        let _ = check_response::<XfrBlock>(0, 0, &bytes);
        // Unchecked views never panic either.
        let m = Message::new_unchecked(&bytes[..]);
        let _ = (m.message_type(), m.length(), m.total_len(), m.slot(), m.seq(), m.specific());
        let _ = (m.level_parameter(), m.status(), m.error(), m.protocol_num(), m.payload());
        let n = NotifySlotChange::new_unchecked(&bytes[..]);
        let _ = (n.slot(0), n.slot(300), n.slot_capacity());
        let h = HardwareError::new_unchecked(&bytes[..]);
        let _ = (h.slot(), h.seq(), h.code());
        let d = ClassDescriptor::new_unchecked(&bytes[..]);
        let _ = (d.features(), d.max_ccid_busy_slots(), d.lcd_layout());
    }

    #[test]
    fn bulk_emit_parse_is_identity(bytes in bulk_bytes()) {
        if let Ok(repr) = MessageRepr::parse_bytes(&bytes) {
            let total = Message::new_unchecked(&bytes[..]).total_len().unwrap();
            prop_assert_eq!(repr.buffer_len(), total);
            let mut out = vec![0u8; total];
            prop_assert_eq!(repr.emit(&mut out), Ok(total));
            prop_assert_eq!(&out[..], &bytes[..total]);
        }
    }

    #[test]
    fn bulk_parse_emit_is_identity(g in gen(), slot in any::<u8>(), seq in any::<u8>()) {
        let repr = MessageRepr { slot, seq, body: g.body() };
        let mut out = vec![0u8; repr.buffer_len()];
        prop_assert_eq!(repr.emit(&mut out), Ok(out.len()));
        prop_assert_eq!(MessageRepr::parse_bytes(&out), Ok(repr));
    }

    #[test]
    fn interrupt_emit_parse_is_identity(
        t in prop_oneof![Just(0x50u8), Just(0x51u8), any::<u8>()],
        rest in proptest::collection::vec(any::<u8>(), 0..70),
    ) {
        let mut bytes = vec![t];
        bytes.extend_from_slice(&rest);
        if let Ok(repr) = InterruptRepr::parse(&bytes) {
            let mut out = vec![0u8; repr.buffer_len()];
            prop_assert_eq!(repr.emit(&mut out), Ok(bytes.len()));
            prop_assert_eq!(out, bytes);
        }
    }

    #[test]
    fn interrupt_parse_emit_is_identity(
        bitmap in proptest::collection::vec(any::<u8>(), 1..=64),
        slot in any::<u8>(), seq in any::<u8>(), code in any::<u8>(),
    ) {
        let notify = InterruptRepr::NotifySlotChange(NotifySlotChangeRepr::from_bitmap(&bitmap).unwrap());
        let hw = InterruptRepr::HardwareError(HardwareErrorRepr {
            slot, seq, code: HardwareErrorCode::from_byte(code),
        });
        for repr in [notify, hw] {
            let mut out = vec![0u8; repr.buffer_len()];
            prop_assert_eq!(repr.emit(&mut out), Ok(out.len()));
            prop_assert_eq!(InterruptRepr::parse(&out), Ok(repr));
        }
    }

    #[test]
    fn descriptor_emit_parse_is_identity(mut bytes in any::<[u8; 54]>()) {
        bytes[0] = 0x36;
        bytes[1] = 0x21;
        let repr = ClassDescriptorRepr::parse(&ClassDescriptor::new_checked(&bytes[..]).unwrap()).unwrap();
        prop_assert_eq!(repr.to_bytes(), bytes);
        let again = ClassDescriptorRepr::parse(&ClassDescriptor::new_checked(&repr.to_bytes()[..]).unwrap());
        prop_assert_eq!(again, Ok(repr));
    }

    #[test]
    fn device_responses_pass_the_host_check(
        t in any::<u8>(), slot in any::<u8>(), seq in any::<u8>(), error in any::<u8>(),
        multiplier in any::<u8>(),
    ) {
        let snapshot = SlotSnapshot {
            icc: IccStatus::PresentInactive,
            clock: ClockStatus::StoppedLow,
            protocol: ProtocolNum::T1,
            clock_frequency: 3600,
            data_rate: 9677,
        };
        let request = MessageId { message_type: MessageType::from_byte(t), slot, seq };
        let response = snapshot.error_response(request, SlotError::from_byte(error));
        let mut out = vec![0u8; response.buffer_len()];
        response.emit(&mut out).unwrap();
        match check_response_to(request, &out) {
            Ok(Reply::Response(body)) => {
                prop_assert_eq!(body, response.body);
                prop_assert_eq!(body.message_type(), request.message_type.response_type());
            }
            other => prop_assert!(false, "{:?}", other),
        }
        let wait = snapshot.time_extension(request, multiplier);
        let mut out = vec![0u8; wait.buffer_len()];
        wait.emit(&mut out).unwrap();
        prop_assert_eq!(check_response_to(request, &out), Ok(Reply::TimeExtension { multiplier }));
    }
}

#[test]
fn status_and_error_round_trip_all_256_values() {
    for b in 0..=255u8 {
        assert_eq!(Status::from_byte(b).to_byte(), b, "bStatus {b:#04x}");
        assert_eq!(SlotError::from_byte(b).to_byte(), b, "bError {b:#04x}");
        assert_eq!(
            SlotError::from_byte(SlotError::from_byte(b).to_byte()),
            SlotError::from_byte(b)
        );
    }
}

#[test]
fn every_code_round_trips_all_256_values() {
    for b in 0..=255u8 {
        assert_eq!(MessageType::from_byte(b).to_byte(), b);
        assert_eq!(ChainParameter::from_byte(b).to_byte(), b);
        assert_eq!(ClockStatus::from_byte(b).to_byte(), b);
        assert_eq!(PowerSelect::from_byte(b).to_byte(), b);
        assert_eq!(ClockCommand::from_byte(b).to_byte(), b);
        assert_eq!(MechanicalFunction::from_byte(b).to_byte(), b);
        assert_eq!(PinOperation::from_byte(b).to_byte(), b);
        assert_eq!(ProtocolNum::from_byte(b).to_byte(), b);
        assert_eq!(ClockStop::from_byte(b).to_byte(), b);
        assert_eq!(HardwareErrorCode::from_byte(b).to_byte(), b);
    }
}
