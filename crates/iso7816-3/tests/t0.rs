//! T=0 reader engine tests (ISO/IEC 7816-3:2006 §10, §12.2): transcripts of whole exchanges,
//! each run twice (card bytes in one chunk per line, and byte by byte), errors, and property
//! tests with arbitrary and with well-behaved cards.
#![allow(
    clippy::indexing_slicing,
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic
)]

use proptest::prelude::*;
use tessera_iso7816_3::t0::{Action, Case, Config, Error, Reader, Response};

/// One line of a transcript.
#[derive(Debug, Clone, Copy)]
enum Line<'a> {
    /// The reader sends these bytes.
    Reader(&'a [u8]),
    /// The card sends these bytes.
    Card(&'a [u8]),
}
use Line::{Card, Reader as Rdr};

/// A reader with a buffer of `len` bytes (at least the command's) holding `command`.
fn reader_for(command: &[u8], len: usize, config: Config) -> Reader<Vec<u8>> {
    let mut buf = vec![0u8; len.max(command.len())];
    buf[..command.len()].copy_from_slice(command);
    Reader::new(config, buf)
}

/// Run a transcript; `byte_by_byte` feeds each card line one byte at a time.
/// Returns the outcome and the response data.
fn run(
    command: &[u8],
    transcript: &[Line],
    byte_by_byte: bool,
) -> (Result<Response, Error>, Vec<u8>) {
    let mut reader = reader_for(command, 300, Config::default());
    let mut to_send: Option<Vec<u8>> = match reader.transmit(command.len()).unwrap() {
        Action::Send(bytes) => Some(bytes.to_vec()),
        other => panic!("transmit gave {other:?}"),
    };
    assert_eq!(reader.pending_transmit(), to_send.as_deref());
    let mut outcome = None;
    for (i, line) in transcript.iter().enumerate() {
        match *line {
            Line::Reader(expected) => {
                assert_eq!(to_send.take().as_deref(), Some(expected), "line {i}");
            }
            Line::Card(bytes) => {
                assert_eq!(to_send, None, "line {i}: the reader had something to send");
                assert!(outcome.is_none(), "line {i}: card bytes after the end");
                let chunks: Vec<&[u8]> = if byte_by_byte {
                    bytes.chunks(1).collect()
                } else {
                    vec![bytes]
                };
                for (j, chunk) in chunks.iter().enumerate() {
                    let last = j + 1 == chunks.len();
                    match reader.receive(chunk) {
                        Ok(Action::ArmWt) => {}
                        Ok(Action::Send(b)) => {
                            assert!(last, "line {i}: send before the end of the card's bytes");
                            to_send = Some(b.to_vec());
                            assert_eq!(reader.pending_transmit(), to_send.as_deref());
                        }
                        Ok(Action::Done(r)) => {
                            assert!(last, "line {i}: done before the end of the card's bytes");
                            outcome = Some(Ok(r));
                        }
                        Ok(Action::Wait) => panic!("line {i}: Wait on a non-empty chunk"),
                        Err(e) => {
                            assert!(
                                last,
                                "line {i}: error {e:?} before the end of the card's bytes"
                            );
                            outcome = Some(Err(e));
                        }
                    }
                }
            }
        }
    }
    assert_eq!(to_send, None, "the reader still had something to send");
    let outcome = outcome.expect("the transcript did not end the exchange");
    assert!(reader.is_finished());
    let data = reader.data().to_vec();
    (outcome, data)
}

/// Run a transcript both ways and check the outcome.
fn check(command: &[u8], transcript: &[Line], data: &[u8], sw: u16) {
    for byte_by_byte in [false, true] {
        let (outcome, got) = run(command, transcript, byte_by_byte);
        let response = outcome.unwrap();
        assert_eq!(response.sw(), sw, "byte_by_byte = {byte_by_byte}");
        assert_eq!(response.len, data.len());
        assert_eq!(got, data);
    }
}

fn check_error(command: &[u8], transcript: &[Line], error: Error) {
    for byte_by_byte in [false, true] {
        let (outcome, _) = run(command, transcript, byte_by_byte);
        assert_eq!(outcome, Err(error), "byte_by_byte = {byte_by_byte}");
    }
}

#[test]
fn case_1() {
    check(
        &[0x00, 0x44, 0x00, 0x00], // ACTIVATE FILE, case 1
        &[
            Rdr(&[0x00, 0x44, 0x00, 0x00, 0x00]), // header, P3 = 00
            Card(&[0x90, 0x00]),                  // SW1 SW2
        ],
        &[],
        0x9000,
    );
}

#[test]
fn case_2_chained_through_get_response() {
    let first: Vec<u8> = (0..16).collect();
    let second: Vec<u8> = (16..24).collect();
    let mut ack_first = vec![0xC0];
    ack_first.extend(&first);
    ack_first.extend([0x61, 0x08]);
    let mut ack_second = vec![0xC0];
    ack_second.extend(&second);
    ack_second.extend([0x90, 0x00]);
    check(
        &[0x80, 0xCA, 0x9F, 0x7F, 0x00], // GET DATA, Le = 00 (Ne = 256)
        &[
            Rdr(&[0x80, 0xCA, 0x9F, 0x7F, 0x00]), // header, P3 = Le
            Card(&[0x61, 0x10]),                  // 16 bytes available
            Rdr(&[0x00, 0xC0, 0x00, 0x00, 0x10]), // GET RESPONSE 16
            Card(&ack_first),                     // ACK, 16 bytes, 61 08: 8 more
            Rdr(&[0x00, 0xC0, 0x00, 0x00, 0x08]), // GET RESPONSE 8
            Card(&ack_second),                    // ACK, 8 bytes, 90 00
        ],
        &(0..24).collect::<Vec<u8>>(),
        0x9000,
    );
}

#[test]
fn case_2_get_response_stops_at_ne() {
    // Le = 04: the card offers 16 bytes; GET RESPONSE asks for 4 only, and the 61 0C that
    // follows is handed back to the caller.
    check(
        &[0x00, 0xCA, 0x01, 0x01, 0x04],
        &[
            Rdr(&[0x00, 0xCA, 0x01, 0x01, 0x04]),
            Card(&[0x61, 0x10]),
            Rdr(&[0x00, 0xC0, 0x00, 0x00, 0x04]),
            Card(&[0xC0, 1, 2, 3, 4, 0x61, 0x0C]),
        ],
        &[1, 2, 3, 4],
        0x610C,
    );
}

#[test]
fn case_2_wrong_length_retry() {
    check(
        &[0x00, 0xB0, 0x00, 0x00, 0x10], // READ BINARY, Le = 16
        &[
            Rdr(&[0x00, 0xB0, 0x00, 0x00, 0x10]),              // header
            Card(&[0x6C, 0x08]),                               // wrong length: exactly 8
            Rdr(&[0x00, 0xB0, 0x00, 0x00, 0x08]),              // same header, P3 = 08
            Card(&[0xB0, 1, 2, 3, 4, 5, 6, 7, 8, 0x90, 0x00]), // ACK, data, SW
        ],
        &[1, 2, 3, 4, 5, 6, 7, 8],
        0x9000,
    );
}

#[test]
fn case_3() {
    check(
        &[0x00, 0xD6, 0x00, 0x00, 0x04, 0x01, 0x02, 0x03, 0x04], // UPDATE BINARY, 4 bytes
        &[
            Rdr(&[0x00, 0xD6, 0x00, 0x00, 0x04]), // header, P3 = Lc
            Card(&[0xD6]),                        // ACK: send everything
            Rdr(&[0x01, 0x02, 0x03, 0x04]),       // data
            Card(&[0x90, 0x00]),                  // SW
        ],
        &[],
        0x9000,
    );
}

#[test]
fn case_4_select_with_get_response() {
    // SELECT the SmartCard-HSM applet (Le = 00), then the FCP through GET RESPONSE.
    let fcp = [
        0x62, 0x10, 0x82, 0x01, 0x38, 0x83, 0x02, 0x3F, 0x00, 0x85, 0x05, 0x00, 0x00, 0x00, 0x03,
        0x05, 0x8A, 0x01,
    ];
    let mut card_fcp = vec![0xC0];
    card_fcp.extend(fcp);
    card_fcp.extend([0x90, 0x00]);
    check(
        &[
            0x00, 0xA4, 0x04, 0x00, 0x0B, 0xE8, 0x2B, 0x06, 0x01, 0x04, 0x01, 0x81, 0xC3, 0x1F,
            0x02, 0x01, 0x00,
        ],
        &[
            Rdr(&[0x00, 0xA4, 0x04, 0x00, 0x0B]), // header, P3 = Lc = 11
            Card(&[0xA4]),                        // ACK
            Rdr(&[
                0xE8, 0x2B, 0x06, 0x01, 0x04, 0x01, 0x81, 0xC3, 0x1F, 0x02, 0x01,
            ]), // AID
            Card(&[0x61, 0x12]),                  // 18 bytes available
            Rdr(&[0x00, 0xC0, 0x00, 0x00, 0x12]), // GET RESPONSE 18
            Card(&card_fcp),                      // ACK, FCP, 90 00
        ],
        &fcp,
        0x9000,
    );
}

#[test]
fn case_4_answered_without_data() {
    check(
        &[0x00, 0x22, 0x41, 0xB6, 0x01, 0x84, 0x00],
        &[
            Rdr(&[0x00, 0x22, 0x41, 0xB6, 0x01]),
            Card(&[0x22]),
            Rdr(&[0x84]),
            Card(&[0x90, 0x00]), // no 61xx: no response data
        ],
        &[],
        0x9000,
    );
}

#[test]
fn null_bytes_rearm_wt() {
    check(
        &[0x00, 0xD6, 0x00, 0x00, 0x02, 0xAA, 0xBB],
        &[
            Rdr(&[0x00, 0xD6, 0x00, 0x00, 0x02]),
            Card(&[0x60, 0x60, 0xD6]), // NULL, NULL, ACK
            Rdr(&[0xAA, 0xBB]),
            Card(&[0x60, 0x60, 0x60, 0x90, 0x00]), // NULLs while the card works, then SW
        ],
        &[],
        0x9000,
    );
    // In the data phase 0x60 is data, not NULL.
    check(
        &[0x00, 0xB0, 0x00, 0x00, 0x02],
        &[
            Rdr(&[0x00, 0xB0, 0x00, 0x00, 0x02]),
            Card(&[0x60, 0xB0, 0x60, 0x60, 0x90, 0x00]),
        ],
        &[0x60, 0x60],
        0x9000,
    );
}

#[test]
fn complemented_ins_moves_one_byte_at_a_time() {
    // ~D6 = 29.
    check(
        &[0x00, 0xD6, 0x00, 0x00, 0x03, 0x01, 0x02, 0x03],
        &[
            Rdr(&[0x00, 0xD6, 0x00, 0x00, 0x03]),
            Card(&[0x29]), // ~INS: one byte
            Rdr(&[0x01]),
            Card(&[0x60, 0x29]), // NULL, ~INS
            Rdr(&[0x02]),
            Card(&[0xD6]), // ACK: the rest
            Rdr(&[0x03]),
            Card(&[0x90, 0x00]),
        ],
        &[],
        0x9000,
    );
    // ~B0 = 4F, receiving.
    check(
        &[0x00, 0xB0, 0x00, 0x00, 0x03],
        &[
            Rdr(&[0x00, 0xB0, 0x00, 0x00, 0x03]),
            Card(&[0x4F, 0x11, 0x4F, 0x22, 0xB0, 0x33, 0x90, 0x00]),
        ],
        &[0x11, 0x22, 0x33],
        0x9000,
    );
}

#[test]
fn status_words_end_the_exchange() {
    check(
        &[0x00, 0xA4, 0x04, 0x00, 0x01, 0xAA, 0x00],
        &[Rdr(&[0x00, 0xA4, 0x04, 0x00, 0x01]), Card(&[0x6A, 0x82])],
        &[],
        0x6A82,
    );
}

#[test]
fn timeout() {
    let mut reader = reader_for(&[0x00, 0xB0, 0x00, 0x00, 0x02], 8, Config::default());
    assert_eq!(
        reader.transmit(5),
        Ok(Action::Send(&[0x00, 0xB0, 0x00, 0x00, 0x02]))
    );
    assert_eq!(reader.receive(&[0x60]), Ok(Action::ArmWt));
    assert_eq!(reader.receive(&[]), Ok(Action::Wait));
    assert_eq!(reader.wt_expired(), Error::Timeout);
    assert!(reader.is_finished());
    assert_eq!(reader.receive(&[0x90, 0x00]), Err(Error::OutOfSequence));
    assert_eq!(reader.wt_expired(), Error::OutOfSequence);
}

#[test]
fn protocol_violations() {
    // Not a procedure byte.
    check_error(
        &[0x00, 0xB0, 0x00, 0x00, 0x02],
        &[Rdr(&[0x00, 0xB0, 0x00, 0x00, 0x02]), Card(&[0x12])],
        Error::UnexpectedProcedureByte(0x12),
    );
    // ACK on a case 1 command: there is nothing to move.
    check_error(
        &[0x00, 0x44, 0x00, 0x00],
        &[Rdr(&[0x00, 0x44, 0x00, 0x00, 0x00]), Card(&[0x44])],
        Error::UnexpectedProcedureByte(0x44),
    );
    // ACK after all data went.
    check_error(
        &[0x00, 0xD6, 0x00, 0x00, 0x01, 0xAA],
        &[
            Rdr(&[0x00, 0xD6, 0x00, 0x00, 0x01]),
            Card(&[0xD6]),
            Rdr(&[0xAA]),
            Card(&[0xD6]),
        ],
        Error::UnexpectedProcedureByte(0xD6),
    );
    // A byte after SW2 in the same chunk (fed one by one, the driver stops at Done).
    let (outcome, _) = run(
        &[0x00, 0x44, 0x00, 0x00],
        &[
            Rdr(&[0x00, 0x44, 0x00, 0x00, 0x00]),
            Card(&[0x90, 0x00, 0x00]),
        ],
        false,
    );
    assert_eq!(outcome, Err(Error::UnexpectedByte(0x00)));
}

#[test]
fn bytes_while_the_card_should_listen() {
    let mut reader = reader_for(&[0x00, 0xD6, 0x00, 0x00, 0x01, 0xAA], 8, Config::default());
    reader.transmit(6).unwrap();
    assert_eq!(
        reader.receive(&[0xD6, 0x90]),
        Err(Error::UnexpectedByte(0x90))
    );
}

#[test]
fn commands_t0_cannot_carry() {
    let cfg = Config::default();
    for (command, error) in [
        (
            &[0x00, 0xB0, 0x00, 0x00, 0x00, 0x01, 0x00][..],
            Error::ExtendedApdu,
        ),
        (&[0x00, 0x6A, 0x00, 0x00], Error::InvalidIns(0x6A)),
        (&[0x00, 0xB0], Error::MalformedApdu),
    ] {
        let mut reader = reader_for(command, 8, cfg);
        assert_eq!(reader.transmit(command.len()), Err(error));
        assert!(reader.is_finished() && reader.is_idle());
        assert_eq!(reader.pending_transmit(), None);
    }
    // A command longer than the buffer.
    let mut reader = Reader::new(cfg, [0u8; 4]);
    assert_eq!(reader.transmit(5), Err(Error::MalformedApdu));
}

#[test]
fn response_overflow() {
    let mut reader = reader_for(&[0x00, 0xB0, 0x00, 0x00, 0x10], 8, Config::default());
    assert_eq!(reader.transmit(5), Err(Error::ResponseOverflow));
    let mut reader = reader_for(&[0x00, 0xB0, 0x00, 0x00, 0x04], 8, Config::default());
    reader.transmit(5).unwrap();
    assert_eq!(reader.receive(&[0x6C, 0x09]), Err(Error::ResponseOverflow));
}

#[test]
fn looping_card_ends_in_too_many_commands() {
    let config = Config {
        get_response_cla: 0x00,
        max_commands: 4,
    };
    let mut reader = reader_for(&[0x00, 0xB0, 0x00, 0x00, 0x04], 16, config);
    reader.transmit(5).unwrap();
    for _ in 0..3 {
        assert_eq!(
            reader.receive(&[0x6C, 0x04]),
            Ok(Action::Send(&[0x00, 0xB0, 0x00, 0x00, 0x04]))
        );
    }
    assert_eq!(reader.receive(&[0x6C, 0x04]), Err(Error::TooManyCommands));
}

#[test]
fn get_response_class_is_configurable() {
    let config = Config {
        get_response_cla: 0x80,
        ..Config::default()
    };
    let mut reader = reader_for(&[0x80, 0xCA, 0x00, 0x00, 0x00], 256, config);
    reader.transmit(5).unwrap();
    assert_eq!(
        reader.receive(&[0x61, 0x02]),
        Ok(Action::Send(&[0x80, 0xC0, 0x00, 0x00, 0x02]))
    );
}

/// One reader, kept like a driver keeps it: consecutive exchanges in the same lent buffer, the
/// response data of each at its start.
#[test]
fn one_reader_serves_consecutive_exchanges() {
    let mut buf = [0u8; 32];
    let mut reader = Reader::new(Config::default(), &mut buf[..]);
    assert!(reader.is_idle() && !reader.is_finished());
    assert_eq!(reader.case(), None);

    // Case 4: SELECT with data, 61 02, GET RESPONSE; the response lands over the command.
    reader.buffer_mut()[..7].copy_from_slice(&[0x00, 0xA4, 0x04, 0x00, 0x01, 0x3F, 0x00]);
    assert_eq!(
        reader.transmit(7),
        Ok(Action::Send(&[0x00, 0xA4, 0x04, 0x00, 0x01]))
    );
    assert_eq!(reader.case(), Some(Case::Case4 { nc: 1, ne: 256 }));
    assert!(!reader.is_idle());
    assert_eq!(reader.receive(&[0xA4]), Ok(Action::Send(&[0x3F])));
    assert_eq!(reader.pending_transmit(), Some(&[0x3F][..]));
    assert_eq!(
        reader.receive(&[0x61, 0x02]),
        Ok(Action::Send(&[0x00, 0xC0, 0x00, 0x00, 0x02]))
    );
    let done = reader.receive(&[0xC0, 0xAB, 0xCD, 0x90, 0x00]);
    assert_eq!(
        done,
        Ok(Action::Done(Response {
            len: 2,
            sw1: 0x90,
            sw2: 0x00
        }))
    );
    assert_eq!(reader.data(), [0xAB, 0xCD]);
    assert_eq!(reader.buffer()[..2], [0xAB, 0xCD]);
    assert!(reader.is_idle() && reader.is_finished());
    assert_eq!(reader.pending_transmit(), None);

    // Case 1 next, in the same buffer.
    reader.buffer_mut()[..4].copy_from_slice(&[0x00, 0x44, 0x00, 0x00]);
    assert_eq!(
        reader.transmit(4),
        Ok(Action::Send(&[0x00, 0x44, 0x00, 0x00, 0x00]))
    );
    assert_eq!(reader.data(), []);
    assert!(!reader.is_finished());
    assert!(matches!(reader.receive(&[0x90, 0x00]), Ok(Action::Done(_))));
}

#[test]
fn transmit_during_an_exchange_is_out_of_sequence() {
    let mut reader = reader_for(&[0x00, 0xB0, 0x00, 0x00, 0x02], 8, Config::default());
    reader.transmit(5).unwrap();
    assert_eq!(reader.transmit(5), Err(Error::OutOfSequence));
    // The exchange in progress goes on undisturbed.
    assert_eq!(
        reader.pending_transmit(),
        Some(&[0x00, 0xB0, 0x00, 0x00, 0x02][..])
    );
    assert_eq!(reader.receive(&[0xB0, 0x01, 0x02]), Ok(Action::ArmWt));
    assert!(matches!(reader.receive(&[0x90, 0x00]), Ok(Action::Done(_))));
    assert_eq!(reader.data(), [0x01, 0x02]);
}

#[test]
fn reset_abandons_the_exchange() {
    let mut reader = reader_for(&[0x00, 0xB0, 0x00, 0x00, 0x02], 8, Config::default());
    reader.transmit(5).unwrap();
    assert_eq!(reader.receive(&[0xB0, 0x01]), Ok(Action::ArmWt));
    reader.reset();
    assert!(reader.is_idle() && !reader.is_finished());
    assert_eq!(reader.data(), []);
    assert_eq!(reader.pending_transmit(), None);
    assert_eq!(reader.receive(&[0x02]), Err(Error::OutOfSequence));
    assert_eq!(reader.wt_expired(), Error::OutOfSequence);
    // The buffer still holds the command's header: it can be sent again.
    reader.buffer_mut()[..5].copy_from_slice(&[0x00, 0xB0, 0x00, 0x00, 0x02]);
    assert_eq!(
        reader.transmit(5),
        Ok(Action::Send(&[0x00, 0xB0, 0x00, 0x00, 0x02]))
    );
}

// ---- Properties ----

#[derive(Debug, Clone)]
enum Event {
    Bytes(Vec<u8>),
    Deadline,
}

fn short_command() -> impl Strategy<Value = Vec<u8>> {
    let ins = any::<u8>().prop_filter("T=0 INS", |i| !matches!(i & 0xF0, 0x60 | 0x90));
    (
        any::<u8>(),
        ins,
        any::<[u8; 2]>(),
        0u8..4,
        prop::collection::vec(any::<u8>(), 1..=255),
        any::<u8>(),
    )
        .prop_map(|(cla, ins, p, case, data, le)| {
            let mut c = vec![cla, ins, p[0], p[1]];
            match case {
                0 => {}
                1 => c.push(le),
                2 => {
                    c.push(data.len() as u8);
                    c.extend(&data);
                }
                _ => {
                    c.push(data.len() as u8);
                    c.extend(&data);
                    c.push(le);
                }
            }
            c
        })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    /// Arbitrary card bytes and deadlines: no panic, and the exchange ends in done or a typed
    /// error within one step per event (plus a final deadline).
    #[test]
    fn arbitrary_card_bytes_end_cleanly(
        command in short_command(),
        events in prop::collection::vec(
            prop_oneof![
                8 => prop::collection::vec(any::<u8>(), 0..8).prop_map(Event::Bytes),
                1 => Just(Event::Deadline),
            ],
            0..64,
        ),
        buf_len in 0usize..300,
    ) {
        let mut reader = reader_for(&command, buf_len, Config::default());
        let buf_len = reader.buffer().len();
        let mut finished = reader.transmit(command.len()).is_err();
        let mut steps = 0;
        for event in &events {
            if finished {
                break;
            }
            steps += 1;
            match event {
                Event::Bytes(b) => match reader.receive(b) {
                    Ok(Action::Send(s)) => prop_assert!(!s.is_empty() && s.len() <= 255),
                    Ok(Action::Done(r)) => {
                        prop_assert!(r.len <= buf_len);
                        finished = true;
                    }
                    Ok(Action::ArmWt | Action::Wait) => {}
                    Err(_) => finished = true,
                },
                Event::Deadline => {
                    prop_assert_eq!(reader.wt_expired(), Error::Timeout);
                    finished = true;
                }
            }
            prop_assert_eq!(finished, reader.is_finished());
        }
        if !finished {
            prop_assert_eq!(reader.wt_expired(), Error::Timeout);
        }
        prop_assert!(reader.is_finished());
        prop_assert!(steps <= events.len());
    }

    /// A card that follows §10.3.3 with random choices (ACK or ~INS, NULL bytes, any chunking)
    /// receives exactly the command data, and the reader gets exactly the response data.
    #[test]
    fn well_behaved_card_moves_the_data(
        command in short_command(),
        answer in prop::collection::vec(any::<u8>(), 0..=256),
        choices in prop::collection::vec(any::<u8>(), 64),
    ) {
        let case = Case::of(&command).unwrap();
        let ins = command[1];
        let data_in = match case { Case::Case3 { nc } | Case::Case4 { nc, .. } => command[5..5 + nc as usize].to_vec(), _ => vec![] };
        let ne = usize::from(case.ne());
        let answer = &answer[..answer.len().min(ne)];
        let mut reader = reader_for(&command, 261, Config::default());
        let mut choice = choices.iter().cycle().copied();
        let header = match reader.transmit(command.len()).unwrap() { Action::Send(h) => h.to_vec(), other => panic!("{other:?}") };
        prop_assert_eq!(&header[..4], &command[..4]);

        // The card's side, scripted: take the command data, then give the answer in one TPDU.
        let mut got: Vec<u8> = Vec::new();
        while got.len() < data_in.len() {
            let c = choice.next().unwrap();
            let mut card = Vec::new();
            if c & 1 == 0 { card.push(0x60); }
            card.push(if c & 2 == 0 { ins } else { !ins });
            match reader.receive(&card).unwrap() {
                Action::Send(s) => {
                    prop_assert_eq!(s.len(), if c & 2 == 0 { data_in.len() - got.len() } else { 1 });
                    got.extend(s);
                }
                other => panic!("{other:?}"),
            }
        }
        prop_assert_eq!(&got, &data_in);

        let mut card = Vec::new();
        if ne > 0 && !answer.is_empty() {
            if data_in.is_empty() {
                // Case 2: the card says how much it has; the reader re-issues with P3 = that.
                if answer.len() != ne {
                    let action = reader.receive(&[0x6C, answer.len() as u8]).unwrap();
                    prop_assert_eq!(action, Action::Send(&[command[0], ins, command[2], command[3], answer.len() as u8][..]));
                }
                card.push(ins);
            } else {
                // Case 4: 61xx then GET RESPONSE.
                let action = reader.receive(&[0x61, answer.len() as u8]).unwrap();
                prop_assert_eq!(action, Action::Send(&[0x00, 0xC0, 0x00, 0x00, answer.len() as u8][..]));
                card.push(0xC0);
            }
            card.extend(answer);
        }
        card.extend([0x90, 0x00]);
        let split = usize::from(choice.next().unwrap()) % card.len();
        let (a, b) = card.split_at(split);
        if !a.is_empty() {
            prop_assert_eq!(reader.receive(a), Ok(Action::ArmWt));
        }
        match reader.receive(b).unwrap() {
            Action::Done(r) => {
                prop_assert_eq!(r.sw(), 0x9000);
                prop_assert_eq!(reader.data(), answer);
            }
            other => panic!("{other:?}"),
        }
    }
}
