//! The CCID slot machine at TPDU level (the stock descriptor): every message type, the T=1
//! relay, time extensions, a card pulled mid-command, malformed messages.

mod sim;

use sim::*;
use tessera_bridge::{BootPolicy, Config, Duration, Instant, SlotState};
use tessera_ccid::{
    Abort, ClockCommand, Escape, GetParameters, GetSlotStatus, IccClock, IccPowerOff, IccPowerOn,
    Mechanical, MechanicalFunction, PowerSelect, ResetParameters, Secure,
    SetDataRateAndClockFrequency, SetParameters, T0Apdu, XfrBlock,
};

/// A booted require-card device with the v3 card, configured by the host.
fn booted(config: Config, card: TestCard) -> World {
    let mut w = World::new(config, Some(card));
    assert!(w.run_until(Duration::from_secs(3), |w| w.hw.attached.is_some()));
    w.configure();
    w.run_for(Duration::from_millis(1));
    w.hw.trace.clear();
    w
}

fn stock() -> World {
    booted(Config::stock(BootPolicy::RequireCard), TestCard::hsm())
}

#[test]
fn power_on_cold_restarts_the_card_and_answers_the_atr() {
    let mut w = stock();
    let answer = w.power_on();
    check(
        &w.usb_trace(),
        &[
            (
                "out",
                "62 00000000 00 00 00 0000",
                "IccPowerOn, automatic voltage",
            ),
            (
                "in",
                "80 18000000 00 00 00 00 00 3BDE18FF8191FE1FC38031815448534D317380214081071C",
                "DataBlock: the ATR, active",
            ),
        ],
    );
    assert_eq!(data(&answer), ATR_V3);
    // A cold restart: VCC went off and on again (the serial read left the card in use).
    assert_eq!(
        w.hw.trace
            .iter()
            .filter(|t| **t == Trace::Vcc(false))
            .count(),
        1
    );
    // Every IccPowerOn is a cold reset: with no card-detect switch the bridge cannot know the
    // card in the socket is still the one it activated.
    w.hw.trace.clear();
    w.power_on();
    assert!(w.hw.trace.contains(&Trace::Vcc(false)));
}

#[test]
fn power_off_really_removes_vcc() {
    let mut w = stock();
    w.power_on();
    w.hw.trace.clear();
    w.send(IccPowerOff::new());
    w.response(Duration::from_millis(5)).unwrap();
    w.send(GetSlotStatus::new());
    w.response(Duration::from_millis(5)).unwrap();
    check(
        &w.usb_trace(),
        &[
            ("out", "63 00000000 00 01 000000", "IccPowerOff"),
            (
                "in",
                "81 00000000 00 01 01 00 01",
                "SlotStatus: present, inactive; clock stopped low",
            ),
            ("out", "65 00000000 00 02 000000", "GetSlotStatus"),
            (
                "in",
                "81 00000000 00 02 01 00 01",
                "still present, inactive",
            ),
        ],
    );
    assert!(!w.hw.vcc, "VCC off");
    assert!(w.hw.trace.contains(&Trace::Vcc(false)));
    // XfrBlock to an inactive card: ICC mute, status inactive.
    let answer = w.xfr(&block(0x00, &[0x00, 0xA4, 0x04, 0x00]), 0);
    assert_eq!(status(&answer), (0x41, 0xFE));
    // Power on again: the card comes back.
    let answer = w.power_on();
    assert_eq!(data(&answer), ATR_V3);
    assert!(w.hw.vcc);
}

/// Every PC_to_RDR message type gets an answer of the right type (never the request's own
/// type, unlike the stock firmware), with bSeq echoed.
#[test]
fn every_message_type_is_answered() {
    let mut w = stock();
    w.power_on();
    w.hw.trace.clear();
    w.seq = 0x10;
    let t1 = tessera_ccid::T1Parameters {
        findex_dindex: 0x18,
        tcckst1: 0x10,
        guard_time: 0xFF,
        waiting_integers: 0x4D,
        clock_stop: tessera_ccid::ClockStop::Either,
        ifsc: 0xFE,
        nad: 0,
    };
    w.send(GetSlotStatus::new());
    w.response(Duration::from_millis(5));
    w.send(GetParameters::new());
    w.response(Duration::from_millis(5));
    w.send(ResetParameters::new());
    w.response(Duration::from_millis(5));
    w.send(SetParameters::new(tessera_ccid::ProtocolData::T1(t1)));
    w.response(Duration::from_millis(5));
    w.send(Escape::new(&[0x01]));
    w.response(Duration::from_millis(5));
    w.send(IccClock::new(ClockCommand::Restart));
    w.response(Duration::from_millis(5));
    w.send(T0Apdu {
        changes: 0,
        class_get_response: 0,
        class_envelope: 0,
    });
    w.response(Duration::from_millis(5));
    w.send(Secure {
        bwi: 0,
        level_parameter: 0,
        data: &[0x00],
    });
    w.response(Duration::from_millis(5));
    w.send(Mechanical::new(MechanicalFunction::EjectCard));
    w.response(Duration::from_millis(5));
    w.send(Abort::new());
    w.response(Duration::from_millis(5));
    w.send(SetDataRateAndClockFrequency {
        rfu: [0; 3],
        clock_frequency: 3600,
        data_rate: 9677,
    });
    w.response(Duration::from_millis(5));
    w.send_raw(&unhex("99 00000000 00 1B 000000"));
    w.response(Duration::from_millis(5));
    check(
        &w.usb_trace(),
        &[
            ("out", "65 00000000 00 10 000000", "GetSlotStatus"),
            ("in", "81 00000000 00 10 00 00 00", "SlotStatus: active, clock running"),
            ("out", "6C 00000000 00 11 000000", "GetParameters"),
            ("in", "82 07000000 00 11 00 00 01 18 10 FF 4D 03 FE 00", "Parameters T=1: Fi/Di 18, LRC, N FF, BWI 4 CWI D, clock stop either, IFSC FE"),
            ("out", "6D 00000000 00 12 000000", "ResetParameters"),
            ("in", "82 07000000 00 12 00 00 01 18 10 FF 4D 03 FE 00", "the parameters in use (automatic from the ATR)"),
            ("out", "61 07000000 00 13 01 0000 18 10 FF 4D 03 FE 00", "SetParameters T=1"),
            ("in", "82 07000000 00 13 00 00 01 18 10 FF 4D 03 FE 00", "accepted; the parameters in use"),
            ("out", "6B 01000000 00 14 000000 01", "Escape 01 (not defined)"),
            ("in", "83 00000000 00 14 40 00 00", "RDR_to_PC_Escape: failed, CMD_NOT_SUPPORTED"),
            ("out", "6E 00000000 00 15 00 0000", "IccClock: restart"),
            ("in", "81 00000000 00 15 00 00 00", "SlotStatus: clock running"),
            ("out", "6A 00000000 00 16 000000", "T0APDU"),
            ("in", "81 00000000 00 16 40 00 00", "SlotStatus: failed, CMD_NOT_SUPPORTED"),
            ("out", "69 01000000 00 17 00 0000 00", "Secure (PIN verification)"),
            ("in", "80 00000000 00 17 40 00 00", "DataBlock: failed, CMD_NOT_SUPPORTED"),
            ("out", "71 00000000 00 18 02 0000", "Mechanical: eject"),
            ("in", "81 00000000 00 18 40 00 00", "SlotStatus: failed, CMD_NOT_SUPPORTED"),
            ("out", "72 00000000 00 19 000000", "Abort (nothing to abort)"),
            ("in", "81 00000000 00 19 00 00 00", "SlotStatus: processed"),
            ("out", "73 08000000 00 1A 000000 100E0000 CD250000", "SetDataRateAndClockFrequency"),
            ("in", "84 08000000 00 1A 40 00 00 100E0000 A1C50100", "DataRateAndClockFrequency: failed, CMD_NOT_SUPPORTED; in use: 3600 kHz, 116 129 bps"),
            ("out", "99 00000000 00 1B 000000", "an unknown message type"),
            ("in", "81 00000000 00 1B 40 00 00", "SlotStatus: failed, CMD_NOT_SUPPORTED"),
        ],
    );
}

#[test]
fn escape_00_identifies_the_firmware() {
    let mut w = stock();
    w.send(Escape::new(&[0x00]));
    let answer = w.response(Duration::from_millis(5)).unwrap();
    let text = match parse(&answer).body {
        tessera_ccid::Body::EscapeResponse(e) => String::from_utf8(e.data.to_vec()).unwrap(),
        other => panic!("{other:?}"),
    };
    assert_eq!(
        text,
        format!(
            "tessera-bridge {} require-card tpdu",
            env!("CARGO_PKG_VERSION")
        )
    );
}

#[test]
fn icc_clock_stops_and_restarts_the_card_clock() {
    let mut w = stock();
    w.power_on();
    w.send(IccClock::new(ClockCommand::Stop));
    let answer = w.response(Duration::from_millis(5)).unwrap();
    assert_eq!(
        &answer[7..10],
        [0x00, 0x00, 0x01],
        "processed, clock stopped low"
    );
    assert!(!w.hw.clk && w.hw.vcc, "clock stopped, card powered");
    // An exchange restarts the clock by itself (and waits 700 cycles before I/O).
    let answer = w.xfr(&block(0x00, &[0x00, 0xA4, 0x04, 0x00]), 0);
    assert_eq!(status(&answer), (0x00, 0x00));
    assert!(w.hw.clk);
    w.send(IccClock::new(ClockCommand::Unknown(7)));
    let answer = w.response(Duration::from_millis(5)).unwrap();
    assert_eq!(
        status(&answer),
        (0x40, 0x07),
        "bClockCommand (index 7) not supported"
    );
}

/// TPDU level: the host's T=1 blocks go to the card as they are, and the card's blocks come
/// back as they are; a command chained over two I-blocks, the response chained over two.
#[test]
fn tpdu_relay_of_a_chained_exchange() {
    let mut w = stock();
    w.power_on();
    w.hw.trace.clear();
    // ECHO of 300 bytes (extended): 309 bytes, IFSC 254 → I(0, M) 254 bytes + I(1) 55 bytes.
    let mut apdu = vec![0x80, 0x10, 0x00, 0x00, 0x00, 0x01, 0x2C];
    apdu.extend((0..300).map(|i| i as u8));
    apdu.extend_from_slice(&[0x00, 0x00]);
    let first = block(0x20, &apdu[..254]);
    let second = block(0x40, &apdu[254..]);
    let a1 = w.xfr(&first, 0);
    assert_eq!(
        data(&a1),
        block(0x90, &[]),
        "R(1): the card wants the next block"
    );
    let a2 = w.xfr(&second, 0);
    let r1 = data(&a2).to_vec();
    assert_eq!(
        &r1[..3],
        [0x00, 0x20, 0xFE],
        "I(0, M): 254 bytes of the response"
    );
    let a3 = w.xfr(&block(0x90, &[]), 0);
    let r2 = data(&a3).to_vec();
    assert_eq!(&r2[..3], [0x00, 0x40, 0x30], "I(1): the last 48 bytes");
    let mut response = r1[3..257].to_vec();
    response.extend_from_slice(&r2[3..51]);
    let mut expected: Vec<u8> = (0..300).map(|i| i as u8).collect();
    expected.extend_from_slice(&[0x90, 0x00]);
    assert_eq!(response, expected);
    // On the card line the bridge relayed exactly the host's blocks and the card's.
    let line = w.card_trace();
    assert_eq!(line[0], (">", first));
    assert_eq!(line[1], ("<", block(0x90, &[])));
    assert_eq!(line[2], (">", second));
    assert_eq!(line[3], ("<", r1));
    assert_eq!(line[5], ("<", r2));
}

#[test]
fn short_exchange_transcript() {
    let mut w = stock();
    w.power_on();
    w.hw.trace.clear();
    w.xfr(
        &block(
            0x00,
            &[
                0x00, 0xA4, 0x04, 0x00, 0x0B, 0xE8, 0x2B, 0x06, 0x01, 0x04, 0x01, 0x81, 0xC3, 0x1F,
                0x02, 0x01,
            ],
        ),
        0,
    );
    check(
        &w.usb_trace(),
        &[
            (
                "out",
                "6F 14000000 00 01 00 0000 00 00 10 00A404000BE82B0601040181C31F0201 24",
                "XfrBlock: I(0) SELECT AID",
            ),
            (
                "in",
                "80 06000000 00 01 00 00 00 00 00 02 9000 92",
                "DataBlock: the card's I(0) 9000",
            ),
        ],
    );
    check(
        &w.card_trace(),
        &[
            (
                ">",
                "00 00 10 00A404000BE82B0601040181C31F0201 24",
                "relayed to the card",
            ),
            ("<", "00 00 02 9000 92", "the card's block"),
        ],
    );
}

/// A long card operation at TPDU level: the card asks for WTX, the host grants it, and while
/// the card works longer than the host's timeout the bridge sends CCID time extensions
/// (hardware.md issue #78).
#[test]
fn time_extension_during_a_long_card_operation() {
    let long = Reply {
        response: vec![0x90, 0x00],
        delay: Duration::from_secs(5),
        wtx: 8,
    };
    let card = TestCard::t1(&ATR_V3, hsm_applet(long));
    let mut w = booted(Config::stock(BootPolicy::RequireCard), card);
    w.power_on();
    w.hw.trace.clear();
    let answer = w.xfr(&block(0x00, &[0x80, 0x20, 0x00, 0x00]), 0);
    assert_eq!(
        data(&answer),
        block(0xC3, &[8]),
        "S(WTX request 8), relayed"
    );
    let sent = w.now();
    let answer = w.xfr(&block(0xE3, &[8]), 0);
    let took = w.now() - sent;
    assert_eq!(
        data(&answer),
        block(0x00, &[0x90, 0x00]),
        "I(0) 9000 after 5 s"
    );
    println!("card worked {took}; time extensions at:");
    for (at, m) in &w.time_extensions {
        println!("  {at}: {}", hex(m));
    }
    // One time extension per second of work: bStatus 0x80 (time extension, active),
    // bError = the BWT multiplier the host granted.
    assert!(
        w.time_extensions.len() >= 4,
        "{} time extensions",
        w.time_extensions.len()
    );
    for (_, m) in &w.time_extensions {
        assert_eq!(&m[..10], unhex("80 00000000 00 02 80 08 00"));
    }
    let gaps: Vec<_> = w
        .time_extensions
        .windows(2)
        .map(|p| p[1].0 - p[0].0)
        .collect();
    assert!(
        gaps.iter().all(|g| *g <= Duration::from_millis(1_001)),
        "{gaps:?}"
    );
}

/// The card leaves the socket between a command and its response: ICC mute within BWT, and
/// the slot reports the card gone.
#[test]
fn card_pulled_mid_command_gives_icc_mute_within_bwt() {
    let long = Reply {
        response: vec![0x90, 0x00],
        delay: Duration::from_millis(500),
        wtx: 0,
    };
    let card = TestCard::t1(&ATR_V3, hsm_applet(long));
    let mut w = booted(Config::stock(BootPolicy::RequireCard), card);
    w.power_on();
    let seq = w.next_seq();
    let cmd = block(0x00, &[0x80, 0x20, 0x00, 0x00]);
    let repr = tessera_ccid::MessageRepr::new(0, seq, XfrBlock::new(&cmd));
    let mut bytes = vec![0; repr.buffer_len()];
    repr.emit(&mut bytes).unwrap();
    w.send_raw(&bytes);
    let sent = w.now();
    w.run_for(Duration::from_millis(100));
    w.pull_card();
    let answer = w
        .response(Duration::from_secs(5))
        .expect("an answer, not a hang");
    let after = w.now() - sent;
    println!("ICC mute {after} after the command");
    check(
        &[("in", answer.clone())],
        &[(
            "in",
            "80 00000000 00 01 40 FE 00",
            "DataBlock: failed, ICC_MUTE",
        )],
    );
    // BWT = 11 etu + 2^4 × 960 × 372 / 3.6 MHz = 1.588 s, from the end of the command.
    assert!(after <= Duration::from_millis(1_600), "{after}");
    // The bridge then sees the card is gone and says so.
    assert!(w.run_until(Duration::from_secs(5), |w| w.bridge.slot()
        == SlotState::Absent));
    assert_eq!(
        w.hw.interrupts.last().map(Vec::as_slice),
        Some(&[0x50, 0x02][..])
    );
    w.send(GetSlotStatus::new());
    let answer = w.response(Duration::from_millis(5)).unwrap();
    assert_eq!(status(&answer), (0x02, 0x00), "no ICC present");
}

#[test]
fn malformed_messages_get_ccid_errors() {
    let mut w = stock();
    w.power_on();
    w.hw.trace.clear();
    // Shorter than a header: nothing to answer with.
    w.send_raw(&unhex("65 00 00"));
    assert_eq!(w.response(Duration::from_millis(5)), None);
    w.hw.trace.clear();
    for raw in [
        "65 01000000 00 20 000000",             // dwLength 1 but no payload
        "62 01000000 00 21 000000 00",          // IccPowerOn with a payload
        "65 00000000 07 22 000000",             // slot 7
        "62 00000000 00 23 01 0000",            // 5 V
        "62 00000000 00 24 09 0000",            // bPowerSelect 9
        "6F 00100000 00 25 000000",             // dwLength 4096 > 261
        "6F 00000000 00 26 000000",             // empty TPDU
        "61 03000000 00 27 01 0000 112233",     // T=1 structure of 3 bytes
        "61 05000000 00 28 00 0000 1100000A00", // T=0 parameters for a T=1 card
        "6F FFFFFFFF 00 29 000000",             // dwLength 2^32 - 1
    ] {
        w.send_raw(&unhex(raw));
        w.response(Duration::from_millis(5)).expect("an answer");
    }
    check(
        &w.usb_trace(),
        &[
            (
                "out",
                "65 01000000 00 20 000000",
                "GetSlotStatus announcing 1 byte it does not carry",
            ),
            (
                "in",
                "81 00000000 00 20 40 01 00",
                "SlotStatus: failed, bad dwLength (index 1)",
            ),
            (
                "out",
                "62 01000000 00 21 000000 00",
                "IccPowerOn with a payload",
            ),
            (
                "in",
                "80 00000000 00 21 40 01 00",
                "DataBlock: failed, bad dwLength",
            ),
            ("out", "65 00000000 07 22 000000", "GetSlotStatus to slot 7"),
            (
                "in",
                "81 00000000 07 22 42 05 03",
                "SlotStatus: no such slot (index 5)",
            ),
            ("out", "62 00000000 00 23 01 0000", "IccPowerOn at 5 V"),
            (
                "in",
                "80 00000000 00 23 40 07 00",
                "DataBlock: failed, bPowerSelect (index 7): 3 V only",
            ),
            (
                "out",
                "62 00000000 00 24 09 0000",
                "IccPowerOn with bPowerSelect 9",
            ),
            (
                "in",
                "80 00000000 00 24 40 07 00",
                "DataBlock: failed, bPowerSelect",
            ),
            (
                "out",
                "6F 00100000 00 25 000000",
                "XfrBlock of 4096 bytes: over dwMaxCCIDMessageLength",
            ),
            (
                "in",
                "80 00000000 00 25 40 01 00",
                "DataBlock: failed, bad dwLength",
            ),
            (
                "out",
                "6F 00000000 00 26 000000",
                "XfrBlock without a block",
            ),
            (
                "in",
                "80 00000000 00 26 40 01 00",
                "DataBlock: failed, bad dwLength",
            ),
            (
                "out",
                "61 03000000 00 27 01 0000 112233",
                "SetParameters T=1 with 3 bytes",
            ),
            (
                "in",
                "82 00000000 00 27 40 01 01",
                "Parameters: failed, bad dwLength",
            ),
            (
                "out",
                "61 05000000 00 28 00 0000 1100000A00",
                "SetParameters T=0 for a T=1 card",
            ),
            (
                "in",
                "82 07000000 00 28 40 07 01 18 10 FF 4D 03 FE 00",
                "Parameters: failed, bProtocolNum (index 7); T=1 in use",
            ),
            (
                "out",
                "6F FFFFFFFF 00 29 000000",
                "XfrBlock announcing 4 GiB",
            ),
            (
                "in",
                "80 00000000 00 29 40 01 00",
                "DataBlock: failed, bad dwLength",
            ),
        ],
    );
    // The slot still works.
    let answer = w.xfr(&block(0x00, &[0x00, 0xA4, 0x04, 0x00]), 0);
    assert_eq!(status(&answer), (0x00, 0x00));
}

#[test]
fn a_second_command_to_a_busy_slot_is_refused() {
    let long = Reply {
        response: vec![0x90, 0x00],
        delay: Duration::from_millis(300),
        wtx: 0,
    };
    let mut w = booted(
        Config::stock(BootPolicy::RequireCard),
        TestCard::t1(&ATR_V3, hsm_applet(long)),
    );
    w.power_on();
    w.hw.trace.clear();
    let cmd = block(0x00, &[0x80, 0x20, 0x00, 0x00]);
    w.send(XfrBlock::new(Box::leak(cmd.into_boxed_slice())));
    w.run_for(Duration::from_millis(10));
    w.send(GetSlotStatus::new());
    let busy = w.response(Duration::from_millis(5)).unwrap();
    let done = w.response(Duration::from_secs(2)).unwrap();
    check(
        &[("in", busy), ("in", done)],
        &[
            (
                "in",
                "81 00000000 00 02 40 E0 00",
                "SlotStatus: failed, CMD_SLOT_BUSY (seq 2)",
            ),
            (
                "in",
                "80 06000000 00 01 00 00 00 00 00 02 9000 92",
                "then the answer to seq 1",
            ),
        ],
    );
}

#[test]
fn abort_answers_the_command_in_progress() {
    let long = Reply {
        response: vec![0x90, 0x00],
        delay: Duration::from_millis(300),
        wtx: 0,
    };
    let mut w = booted(
        Config::stock(BootPolicy::RequireCard),
        TestCard::t1(&ATR_V3, hsm_applet(long)),
    );
    w.power_on();
    w.hw.trace.clear();
    let cmd: &'static [u8] = Box::leak(block(0x00, &[0x80, 0x20, 0x00, 0x00]).into_boxed_slice());
    let seq = w.send(XfrBlock::new(cmd));
    w.run_for(Duration::from_millis(10));
    // CCID §5.3.1: the class request ABORT, then PC_to_RDR_Abort with the same bSeq.
    let now = w.now();
    w.bridge.handle(
        now,
        tessera_bridge::Event::UsbAbort { slot: 0, seq },
        &mut w.hw,
    );
    let aborted = w.response(Duration::from_millis(5)).unwrap();
    w.seq = seq;
    w.send(Abort::new());
    let abort = w.response(Duration::from_millis(5)).unwrap();
    check(
        &[("in", aborted), ("in", abort)],
        &[
            (
                "in",
                "80 00000000 00 01 40 FF 00",
                "DataBlock for the XfrBlock: failed, CMD_ABORTED",
            ),
            (
                "in",
                "81 00000000 00 01 00 00 00",
                "SlotStatus for the Abort: processed",
            ),
        ],
    );
    // The card's late answer is dropped, and the slot works afterwards.
    w.run_for(Duration::from_secs(1));
    assert!(w.hw.inbox.is_empty());
    let answer = w.xfr(&block(0x40, &[0x00, 0xA4, 0x04, 0x00]), 0);
    assert_eq!(status(&answer), (0x00, 0x00));
}

#[test]
fn bridge_answers_in_order_when_bulk_in_is_slow() {
    // Time extensions and the final answer never overlap on bulk IN: each waits for the
    // previous one to be sent.
    let mut w = stock();
    w.power_on();
    for _ in 0..3 {
        w.send(GetSlotStatus::new());
    }
    let mut answers = vec![];
    while let Some(a) = w.response(Duration::from_millis(5)) {
        answers.push(a);
    }
    assert_eq!(answers.len(), 3);
}

#[test]
fn reader_policy_power_on_without_a_card() {
    let mut w = World::new(Config::stock(BootPolicy::Reader), None);
    w.configure();
    let answer = w.power_on();
    assert_eq!(
        &answer[..10],
        unhex("80 00000000 00 00 42 FE 00"),
        "failed, no ICC, ICC_MUTE"
    );
    let _ = Instant::ZERO;
    w.send(IccPowerOn::new(PowerSelect::Volts3));
    let answer = w.response(Duration::from_secs(1)).unwrap();
    assert_eq!(status(&answer), (0x42, 0xFE));
}

/// The host's next block may come at once over USB; on the card line the bridge keeps BGT
/// (22 etu, ISO/IEC 7816-3 §11.2) after the card's last character. At 9677 bps that is
/// 2.27 ms, longer than a USB round trip.
#[test]
fn the_relay_keeps_bgt_before_the_next_block() {
    let mut card = TestCard::hsm();
    card.accept_fi_di = |_| false; // stay at F 372, D 1: 9677 bps
    let mut w = booted(Config::stock(BootPolicy::RequireCard), card);
    w.power_on();
    w.hw.min_turnaround = None;
    for ns in [0x00, 0x40, 0x00] {
        let answer = w.xfr(&block(ns, &[0x00, 0xA4, 0x04, 0x00]), 0);
        assert_eq!(status(&answer), (0, 0));
    }
    let gap = w.hw.min_turnaround.unwrap();
    println!("shortest card-to-reader turnaround: {gap}");
    // 22 etu of 372 / 3.6 MHz (103.3 µs) = 2.273 ms.
    assert!(gap >= Duration::from_micros(2_273), "{gap}");
}

#[test]
fn a_parity_error_in_the_cards_block_is_reported_to_the_host() {
    let mut w = stock();
    w.power_on();
    w.hw.parity_errors = 1;
    let answer = w.xfr(&block(0x00, &[0x00, 0xA4, 0x04, 0x00]), 0);
    // The host's T=1 stack then sends R(0) with the EDC/parity error code (§11.6.3.2).
    assert_eq!(
        &answer[..10],
        unhex("80 00000000 00 01 40 FD 00"),
        "failed, XFR_PARITY_ERROR"
    );
    let answer = w.xfr(&block(0x81, &[]), 0);
    assert_eq!(
        data(&answer),
        block(0x00, &[0x6D, 0x00]),
        "the card sends its block again"
    );
}

#[test]
fn a_card_line_hardware_error_is_a_hw_error() {
    let mut w = stock();
    w.power_on();
    w.hw.fail_transmit = true;
    let answer = w.xfr(&block(0x00, &[0x00, 0xA4, 0x04, 0x00]), 0);
    assert_eq!(
        &answer[..10],
        unhex("80 00000000 00 01 40 FB 00"),
        "failed, HW_ERROR"
    );
    w.hw.fail_transmit = false;
    let answer = w.xfr(&block(0x00, &[0x00, 0xA4, 0x04, 0x00]), 0);
    assert_eq!(status(&answer), (0, 0), "the next command works");
}
