//! The APDU-level option: T=1 (or T=0) inside the bridge, short and extended APDUs, CCID
//! chaining of long APDUs over several messages (CCID Rev 1.1 §6.1.4, §6.2.1).

mod sim;

use sim::*;
use tessera_bridge::{BootPolicy, Config, Duration, SlotState};

fn booted(config: Config, card: TestCard) -> World {
    let mut w = World::new(config, Some(card));
    assert!(w.run_until(Duration::from_secs(3), |w| w.hw.attached.is_some()));
    w.configure();
    w.run_for(Duration::from_millis(1));
    let atr = w.power_on();
    assert_eq!(status(&atr), (0, 0));
    w.hw.trace.clear();
    w
}

/// The host side of an APDU exchange as libccid does it at extended APDU level
/// (`CmdXfrBlockAPDU_extended`): the command in chunks of `dwMaxCCIDMessageLength - 10`
/// bytes with wLevelParameter 1, 3, ..., 2, each answered by an empty DataBlock 0x10; the
/// response read until bChainParameter says it ends, asking for each part with 0x10.
fn transmit(w: &mut World, apdu: &[u8]) -> (Vec<u8>, Vec<u8>) {
    let room = w.bridge.config().max_message_len as usize - 10;
    let mut chains = vec![];
    let mut sent = 0;
    let mut answer;
    loop {
        let chunk = &apdu[sent..(sent + room).min(apdu.len())];
        let last = sent + chunk.len() == apdu.len();
        let level = match (sent == 0, last) {
            (true, true) => 0x00,
            (true, false) => 0x01,
            (false, true) => 0x02,
            (false, false) => 0x03,
        };
        answer = w.xfr(chunk, level);
        sent += chunk.len();
        if last {
            break;
        }
        // An empty DataBlock with bChainParameter 0x10: send the rest.
        assert_eq!(
            (answer[0], &answer[1..5], answer[7], answer[9]),
            (0x80, &[0u8; 4][..], 0, 0x10)
        );
    }
    let mut response = vec![];
    loop {
        assert_eq!(answer[7], 0x00, "processed: {}", hex(&answer[..10]));
        let chain = answer[9];
        chains.push(chain);
        response.extend_from_slice(data(&answer));
        match chain {
            0x00 | 0x02 => break,
            0x01 | 0x03 => answer = w.xfr(&[], 0x10),
            other => panic!("bChainParameter {other:#04x}"),
        }
    }
    (response, chains)
}

#[test]
fn short_apdu_transcript() {
    let mut w = booted(Config::apdu(BootPolicy::RequireCard), TestCard::hsm());
    let answer = w.xfr(&tessera_bridge::SELECT_APPLICATION, 0);
    assert_eq!(data(&answer), [0x90, 0x00]);
    check(
        &w.usb_trace(),
        &[
            (
                "out",
                "6F 10000000 00 01 00 0000 00A404000BE82B0601040181C31F0201",
                "XfrBlock: the SELECT APDU itself",
            ),
            (
                "in",
                "80 02000000 00 01 00 00 00 9000",
                "DataBlock: the response APDU",
            ),
        ],
    );
    check(
        &w.card_trace(),
        &[
            (
                ">",
                "00 00 10 00A404000BE82B0601040181C31F0201 24",
                "the bridge's T=1: I(0)",
            ),
            ("<", "00 00 02 9000 92", "the card's I(0)"),
        ],
    );
}

#[test]
fn extended_apdus_with_4096_bytes_each_way_in_ccid_chains() {
    let mut w = booted(Config::apdu(BootPolicy::RequireCard), TestCard::hsm());
    let payload: Vec<u8> = (0..4096).map(|i| (i * 13 + 5) as u8).collect();
    let mut apdu = vec![0x80, 0x10, 0x00, 0x00, 0x00, 0x10, 0x00];
    apdu.extend_from_slice(&payload);
    apdu.extend_from_slice(&[0x00, 0x00]);
    let start = w.now();
    let (response, chains) = transmit(&mut w, &apdu);
    println!(
        "4105-byte command, 4098-byte response: {} on the card line",
        w.now() - start
    );
    let mut expected = payload.clone();
    expected.extend_from_slice(&[0x90, 0x00]);
    assert_eq!(response, expected);
    assert_eq!(
        w.card().commands.last().unwrap(),
        &apdu,
        "the card got the APDU whole"
    );
    // 4098 bytes in 512-byte parts: begins, 7 × continues, ends (2 bytes).
    assert_eq!(chains, [1, 3, 3, 3, 3, 3, 3, 3, 2]);
    // On the card line: I-blocks of at most IFSC = IFSD = 254 bytes.
    for (_, b) in w.card_trace() {
        assert!(b.len() <= 3 + 254 + 1);
    }
}

#[test]
fn extended_apdu_in_one_message_when_the_message_size_allows() {
    let config = Config {
        max_message_len: 10 + tessera_bridge::APDU_BUFFER_LEN as u32,
        ..Config::apdu(BootPolicy::RequireCard)
    };
    let mut w = booted(config, TestCard::hsm());
    let (response, chains) = transmit(&mut w, &[0x80, 0x12, 0x10, 0x00, 0x00, 0x00, 0x00]);
    assert_eq!(chains, [0]);
    assert_eq!(response.len(), 4098);
    assert_eq!(&response[4096..], [0x90, 0x00]);
    assert_eq!(
        response[..4096],
        (0..4096).map(|i| (i * 7 + 3) as u8).collect::<Vec<_>>()
    );
}

#[test]
fn a_command_longer_than_the_buffer_is_refused() {
    let mut w = booted(Config::apdu(BootPolicy::RequireCard), TestCard::hsm());
    let mut apdu = vec![0x80, 0x10, 0x00, 0x00, 0x00, 0x20, 0x00];
    apdu.extend(vec![0; 8192 + 2]);
    let room = 512;
    let mut sent = 0;
    let mut last_answer = vec![];
    while sent < apdu.len() {
        let chunk = &apdu[sent..(sent + room).min(apdu.len())];
        let level = if sent == 0 {
            1
        } else if sent + chunk.len() == apdu.len() {
            2
        } else {
            3
        };
        last_answer = w.xfr(chunk, level);
        sent += chunk.len();
        if last_answer[7] != 0 {
            break;
        }
    }
    assert_eq!(status(&last_answer), (0x40, 0x01), "failed: bad dwLength");
    // The bridge is back in step: a chain continuation now is out of sequence.
    let answer = w.xfr(&[0; 4], 3);
    assert_eq!(
        status(&answer),
        (0x40, 0x08),
        "wLevelParameter (index 8) out of sequence"
    );
    let answer = w.xfr(&tessera_bridge::SELECT_APPLICATION, 0);
    assert_eq!(data(&answer), [0x90, 0x00]);
}

#[test]
fn time_extension_while_the_card_works_on_an_apdu() {
    let long = Reply {
        response: vec![0x90, 0x00],
        delay: Duration::from_secs(6),
        wtx: 3,
    };
    let mut w = booted(
        Config::apdu(BootPolicy::Reader),
        TestCard::t1(&ATR_V3, hsm_applet(long)),
    );
    let start = w.now();
    let answer = w.xfr(&[0x80, 0x20, 0x00, 0x00], 0);
    assert_eq!(data(&answer), [0x90, 0x00]);
    println!("{} for the APDU; time extensions:", w.now() - start);
    for (at, m) in &w.time_extensions {
        println!("  {at}: {}", hex(m));
    }
    assert!(w.time_extensions.len() >= 5);
    // bStatus 0x80, bError = the card's WTX multiplier.
    assert_eq!(
        &w.time_extensions.last().unwrap().1,
        &unhex("80 00000000 00 01 80 03 00")
    );
}

#[test]
fn card_pulled_mid_apdu_gives_icc_mute_within_bwt() {
    let long = Reply {
        response: vec![0x90, 0x00],
        delay: Duration::from_millis(800),
        wtx: 0,
    };
    let mut w = booted(
        Config::apdu(BootPolicy::Reader),
        TestCard::t1(&ATR_V3, hsm_applet(long)),
    );
    w.send_raw(&unhex("6F 04000000 00 09 00 0000 80200000"));
    let sent = w.now();
    w.run_for(Duration::from_millis(50));
    w.pull_card();
    let answer = w.response(Duration::from_secs(10)).unwrap();
    let after = w.now() - sent;
    assert_eq!(
        &answer[..10],
        unhex("80 00000000 00 09 40 FE 00"),
        "failed, ICC_MUTE"
    );
    println!("ICC mute {after} after the command");
    assert!(
        after <= Duration::from_millis(1_600),
        "within BWT, not after T=1 recovery"
    );
    assert!(w.run_until(Duration::from_secs(5), |w| w.bridge.slot()
        == SlotState::Absent));
}

fn t0_applet() -> Applet {
    Box::new(|apdu: &[u8]| match apdu {
        // SELECT (case 3): 9000.
        [0x00, 0xA4, ..] => Reply::now(vec![0x90, 0x00]),
        // GET DATA (case 2): 8 bytes, whatever Le said.
        [0x00, 0xCA, ..] => Reply::now(vec![1, 2, 3, 4, 5, 6, 7, 8, 0x90, 0x00]),
        // PUT DATA (case 3 with a response the card has ready: 61xx).
        [0x00, 0xDA, ..] => Reply::now(vec![0xAA, 0xBB, 0x90, 0x00]),
        _ => Reply::now(vec![0x6D, 0x00]),
    })
}

#[test]
fn t0_only_card_at_apdu_level() {
    let mut card = TestCard::t0(t0_applet());
    card.t0_nulls = 2;
    let mut w = booted(Config::apdu(BootPolicy::Reader), card);
    // Case 3: SELECT with data.
    let answer = w.xfr(&[0x00, 0xA4, 0x04, 0x00, 0x02, 0x3F, 0x00], 0);
    assert_eq!(data(&answer), [0x90, 0x00]);
    // Case 2 with the wrong Le: the card says 6C08, the engine asks again with P3 = 08.
    let answer = w.xfr(&[0x00, 0xCA, 0x00, 0x6E, 0x00], 0);
    assert_eq!(data(&answer), [1, 2, 3, 4, 5, 6, 7, 8, 0x90, 0x00]);
    // Case 4: the card answers 61 02, the engine fetches with GET RESPONSE.
    let answer = w.xfr(&[0x00, 0xDA, 0x01, 0x02, 0x01, 0x55, 0x00], 0);
    assert_eq!(data(&answer), [0xAA, 0xBB, 0x90, 0x00]);
    check(
        &w.card_trace()[..6],
        &[
            (">", "00 A4 04 00 02", "T=0 header, P3 = Lc"),
            (
                "<",
                "60 60 A4",
                "two NULLs (more time), then ACK: send the data",
            ),
            (">", "3F 00", "the data"),
            ("<", "90 00", "SW1 SW2"),
            (">", "00 CA 00 6E 00", "GET DATA, P3 = 00 (256)"),
            ("<", "60 60 6C 08", "wrong length: Le is 8"),
        ],
    );
}

#[test]
fn t0_only_card_at_tpdu_level() {
    let mut w = booted(Config::stock(BootPolicy::Reader), TestCard::t0(t0_applet()));
    // The host sends the T=0 TPDU; the bridge runs the procedure bytes (CCID §6.1.4).
    let answer = w.xfr(&[0x00, 0xA4, 0x04, 0x00, 0x02, 0x3F, 0x00], 0);
    assert_eq!(data(&answer), [0x90, 0x00]);
    let answer = w.xfr(&[0x00, 0xCA, 0x00, 0x6E, 0x08], 0);
    assert_eq!(data(&answer), [1, 2, 3, 4, 5, 6, 7, 8, 0x90, 0x00]);
}

#[test]
fn apdu_level_descriptor() {
    let d = Config::apdu(BootPolicy::Reader)
        .class_descriptor()
        .to_bytes();
    check(
        &[("desc", d.to_vec())],
        &[(
            "desc",
            "36 21 1001 00 02 03000000 100E0000 100E0000 00 CD250000 A1C50100 00 FE000000 00000000 00000000 BA040400 0A020000 00 00 0000 00 01",
            "bLength 54, CCID 1.10, one 3 V slot, T=0 and T=1, 3.6 MHz, 9677..116129 bps, IFSD 254, dwFeatures 0x000404BA (extended APDU), 522-byte messages",
        )],
    );
}

/// At APDU level the bridge's own T=1 recovers from a parity error (§11.6.3.2 Rule 7.1): it
/// asks for the block again and the host sees nothing.
#[test]
fn the_bridge_recovers_from_a_parity_error_at_apdu_level() {
    let mut w = booted(Config::apdu(BootPolicy::Reader), TestCard::hsm());
    w.hw.parity_errors = 1;
    let answer = w.xfr(&tessera_bridge::SELECT_APPLICATION, 0);
    assert_eq!(data(&answer), [0x90, 0x00]);
    check(
        &w.card_trace(),
        &[
            (
                ">",
                "00 00 10 00A404000BE82B0601040181C31F0201 24",
                "I(0): SELECT",
            ),
            (
                "<",
                "00 00 02 9000 92",
                "the card's I(0), one character lost to a parity error",
            ),
            (">", "00 81 00 81", "R(0), EDC/parity error: send it again"),
            ("<", "00 00 02 9000 92", "I(0) again, intact"),
        ],
    );
}
