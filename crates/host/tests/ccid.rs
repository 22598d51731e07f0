//! CCID over a scripted USB pipe: a fake reader (tessera_ccid reprs) holding a virtual card
//! (T=1 card engine + the SmartCard-HSM applet). TPDU level with chaining, WTX and IFSD; APDU
//! levels; reader time extensions; stale and wrong `bSeq`; a mute, removed or unplugged card.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod support;

use proptest::prelude::*;
use support::*;
use tessera_ccid::ExchangeLevel;
use tessera_host::ccid::{CcidConfig, CcidTransport, ExchangeMode, IfsdRequest, UsbPipe};
use tessera_sc_hsm::{
    EcdsaFormat, InitParams, KeyAlgorithm, Pin, ScHsm, SignMechanism, SoPin, Transport,
    TransportError, TransportErrorKind,
};

const MAX_MESSAGE: u32 = 271;

fn open(reader: FakeReader, auto_ifsd: bool) -> CcidTransport<FakeReader> {
    let d = descriptor(reader.level, auto_ifsd, MAX_MESSAGE);
    CcidTransport::open(reader, d, CcidConfig::default()).unwrap()
}

fn nitrokey(seed: u8) -> FakeReader {
    FakeReader::new(ExchangeLevel::Tpdu, MAX_MESSAGE, seed)
}

/// Initialise, verify, generate and sign: what `tessera` does, end to end over CCID.
fn work<T: Transport>(transport: T) -> ScHsm<T> {
    let mut hsm = ScHsm::open(transport).unwrap();
    hsm.initialise(&InitParams::new(
        SoPin::from_hex("3537363231383830").unwrap(),
        Pin::new("648219").unwrap(),
    ))
    .unwrap();
    hsm.select().unwrap();
    hsm.verify(&Pin::new("648219").unwrap()).unwrap();
    let p521 = hsm
        .generate_key(KeyAlgorithm::EcP521, None, Some("long template"))
        .unwrap();
    let rsa = hsm
        .generate_key(KeyAlgorithm::Rsa2048, None, Some("long answer"))
        .unwrap();
    let sig = hsm
        .sign(
            p521.id,
            SignMechanism::EcdsaHash,
            &[3; 64],
            EcdsaFormat::Raw,
        )
        .unwrap();
    assert_eq!(sig.len(), 132);
    let sig = hsm
        .sign(
            rsa.id,
            SignMechanism::RsaPkcs1Hash(tessera_sc_hsm::HashAlg::Sha256),
            &[4; 32],
            EcdsaFormat::Der,
        )
        .unwrap();
    assert_eq!(sig.len(), 256);
    let labels: Vec<String> = hsm
        .list_keys()
        .unwrap()
        .into_iter()
        .filter_map(|k| k.label)
        .collect();
    assert_eq!(labels, ["long template", "long answer"]);
    hsm
}

/// The first exchange, byte by byte: IccPowerOn, then SELECT in one T=1 I-block.
#[test]
fn tpdu_transcript_of_power_on_and_select() {
    let transport = open(nitrokey(1), true);
    let mut hsm = ScHsm::open(transport).unwrap();
    let reader = hsm.transport().reader().pipe();
    let sent: Vec<String> = reader.sent.iter().map(|s| to_hex(&s.bytes)).collect();
    assert_eq!(
        sent,
        [
            // PC_to_RDR_IccPowerOn, slot 0, seq 0, automatic voltage (CCID §6.1.1).
            "62 00 00 00 00 00 00 00 00 00",
            // PC_to_RDR_XfrBlock, seq 1, bBWI 0, wLevelParameter 0, 21 bytes: an I-block
            // (NAD 00, PCB 00, LEN 11) with SELECT, LRC 25 (ISO 7816-3 §11.4.4).
            "6F 15 00 00 00 00 01 00 00 00 00 00 11 00 A4 04 00 0B E8 2B 06 01 04 01 81 C3 1F 02 01 00 25",
        ]
    );
    assert_eq!(hsm.transport().mode(), ExchangeMode::Tpdu);
    // The stock descriptor has automatic IFSD: no S(IFS) is sent; the host accepts blocks up
    // to dwMaxIFSD (254), which covers both a reader that negotiated it and one that did not.
    assert_eq!(hsm.transport().t1_sizes(), Some((0xFE, 0xFE)));
}

#[test]
fn tpdu_carries_chained_commands_and_responses() {
    let mut hsm = work(open(nitrokey(2), true));
    let blocks = hsm.transport().reader().pipe().xfr_blocks();
    // The P-521 template (> IFSC 254) went out in chained I-blocks (M bit, PCB 0x20 / 0x60).
    assert!(
        blocks
            .iter()
            .any(|(_, _, b)| b[1] & 0x20 != 0 && b[1] & 0x80 == 0),
        "no chained I-block"
    );
    // Long answers came back in 32-byte pieces acknowledged with R-blocks (PCB 0x80 / 0x90).
    assert!(
        blocks
            .iter()
            .filter(|(_, _, b)| b[1] & 0xC0 == 0x80)
            .count()
            > 20
    );
}

#[test]
fn ifsd_254_is_requested_when_the_reader_does_not_negotiate_it() {
    let mut transport = open(nitrokey(3), false);
    let blocks = transport.reader().pipe().xfr_blocks();
    // S(IFS request 254): NAD 00, PCB C1, LEN 01, FE, LRC 3E (ISO 7816-3 §11.6.2.2 Rule 4).
    assert_eq!(to_hex(&blocks[0].2), "00 C1 01 FE 3E");
    assert_eq!(transport.t1_sizes(), Some((0xFE, 0xFE)));
    // Responses now come in blocks of up to 254 bytes instead of 32: far fewer R-blocks, and
    // far fewer USB round trips.
    let count = |hsm: &mut ScHsm<CcidTransport<FakeReader>>| {
        let blocks = hsm.transport().reader().pipe().xfr_blocks();
        let r = blocks
            .iter()
            .filter(|(_, _, b)| b[1] & 0xC0 == 0x80)
            .count();
        (r, blocks.len())
    };
    let (r_254, xfr_254) = count(&mut work(transport));
    let (r_32, xfr_32) = count(&mut work(open(nitrokey(3), true)));
    println!(
        "the same work (init, 2 keygens, 2 signs, list): IFSD 32: {xfr_32} XfrBlocks, {r_32} \
         R-blocks; IFSD 254: {xfr_254} XfrBlocks, {r_254} R-blocks"
    );
    assert!(
        r_254 * 4 < r_32,
        "IFSD 254: {r_254} R-blocks, IFSD 32: {r_32}"
    );
    // The configuration can ask even when the descriptor says automatic, or never.
    let d = descriptor(ExchangeLevel::Tpdu, true, MAX_MESSAGE);
    let config = CcidConfig {
        ifsd_request: IfsdRequest::Always,
        ..CcidConfig::default()
    };
    let transport = CcidTransport::open(nitrokey(3), d, config).unwrap();
    assert_eq!(transport.t1_sizes(), Some((0xFE, 0xFE)));
    let d = descriptor(ExchangeLevel::Tpdu, false, MAX_MESSAGE);
    let config = CcidConfig {
        ifsd_request: IfsdRequest::Never,
        ..CcidConfig::default()
    };
    let transport = CcidTransport::open(nitrokey(3), d, config).unwrap();
    assert_eq!(transport.t1_sizes(), Some((0xFE, 32)));
}

#[test]
fn card_wtx_is_answered_with_the_bwi_multiplier() {
    let mut reader = nitrokey(4);
    reader.wtx = Some(5);
    let mut hsm = work(open(reader, true));
    let blocks = hsm.transport().reader().pipe().xfr_blocks();
    // S(WTX response 05) (PCB E3), sent with bBWI 5 (CCID §6.1.4).
    let answers: Vec<_> = blocks.iter().filter(|(_, _, b)| b[1] == 0xE3).collect();
    assert!(!answers.is_empty());
    for (bwi, _, block) in answers {
        assert_eq!(to_hex(block), "00 E3 01 05 E7");
        assert_eq!(*bwi, 5);
    }
}

#[test]
fn reader_time_extensions_are_waited_out() {
    let mut reader = nitrokey(5);
    reader.time_extensions = 3;
    let mut hsm = work(open(reader, true));
    assert!(hsm.transport().reader().pipe().sent.len() > 10);
}

#[test]
fn a_stale_response_is_skipped() {
    let mut transport = open(nitrokey(6), true);
    transport.reader().pipe().stale_responses = 2;
    let mut hsm = ScHsm::open(transport).unwrap();
    hsm.pin_status(tessera_sc_hsm::PinRole::User).unwrap();
}

#[test]
fn a_reader_out_of_step_is_a_protocol_error() {
    let mut transport = open(nitrokey(7), true);
    transport.reader().pipe().always_wrong_seq = true;
    let err = ScHsm::open(transport).unwrap_err();
    assert_eq!(err.transport_kind(), Some(TransportErrorKind::Protocol));
    assert!(err.to_string().contains("out of step"), "{err}");
    assert!(!err.to_string().contains('\n'));
}

#[test]
fn a_mute_card_is_recovered_by_t1() {
    let mut transport = open(nitrokey(8), true);
    transport.reader().pipe().mute = 1;
    let mut hsm = ScHsm::open(transport).unwrap();
    // The lost block was asked for again with an R-block (PCB 8x).
    let blocks = hsm.transport().reader().pipe().xfr_blocks();
    assert_eq!(blocks[1].2[1] & 0xEC, 0x80, "{}", to_hex(&blocks[1].2));
    hsm.serial().unwrap();
}

#[test]
fn a_card_that_stays_mute_is_reset() {
    let mut transport = open(nitrokey(9), true);
    transport.reader().pipe().mute = 255;
    let err = ScHsm::open(transport).unwrap_err();
    // T=1 gave up (S(RESYNCH) unanswered): the card was powered off and on, and the client
    // selects the applet again before its next command.
    assert_eq!(
        err.transport_kind(),
        Some(TransportErrorKind::CardReset),
        "{err}"
    );
    assert_eq!(
        err.to_string(),
        "SELECT: the card stopped answering T=1 and was reset: the card was reset (by another \
         program, or after an error); try again, and verify the PIN again"
    );
}

#[test]
fn a_removed_card_and_an_unplugged_reader() {
    let mut transport = open(nitrokey(10), true);
    transport.reader().pipe().removed = true;
    let err = transport.transmit(&hex("00 A4 04 00 00")).unwrap_err();
    assert_eq!(err.kind(), TransportErrorKind::CardRemoved, "{err}");
    let mut transport = open(nitrokey(11), true);
    transport.reader().pipe().unplugged = true;
    let err: TransportError = transport.transmit(&hex("00 A4 04 00 00")).unwrap_err();
    assert_eq!(err.kind(), TransportErrorKind::ReaderGone);
    assert_eq!(
        err.to_string(),
        "bulk OUT: the device is gone: reconnect the token (and check that pcscd runs)"
    );
}

#[test]
fn reset_powers_the_card_off_and_on() {
    let mut transport = open(nitrokey(12), true);
    transport.reset().unwrap();
    let types: Vec<u8> = transport
        .reader()
        .pipe()
        .sent
        .iter()
        .map(|s| s.message_type)
        .collect();
    assert_eq!(types, [0x62, 0x63, 0x62]);
    assert_eq!(transport.atr().unwrap()[..2], [0x3B, 0xDE]);
    ScHsm::open(transport).unwrap();
}

#[test]
fn extended_apdu_level_chains_with_the_level_parameter() {
    let reader = FakeReader::new(ExchangeLevel::ExtendedApdu, MAX_MESSAGE, 13);
    let mut hsm = work(open(reader, true));
    assert_eq!(hsm.transport().mode(), ExchangeMode::ExtendedApdu);
    assert!(hsm.transport().supports_extended_length());
    let levels: Vec<u16> = hsm
        .transport()
        .reader()
        .pipe()
        .xfr_blocks()
        .iter()
        .map(|x| x.1)
        .collect();
    // A long command: 0001, 0002; a long response fetched with 0010 (CCID §6.1.4).
    assert!(
        levels.contains(&0x0001) && levels.contains(&0x0002),
        "{levels:?}"
    );
    assert!(levels.contains(&0x0010), "{levels:?}");
}

#[test]
fn short_apdu_level_leaves_chaining_to_the_client() {
    let reader = FakeReader::new(ExchangeLevel::ShortApdu, MAX_MESSAGE, 14);
    let mut hsm = work(open(reader, true));
    assert!(!hsm.transport().supports_extended_length());
    let xfrs = hsm.transport().reader().pipe().xfr_blocks();
    assert!(xfrs.iter().all(|x| x.1 == 0 && x.2.len() <= 261));
    // GET RESPONSE went out for the long answers.
    assert!(xfrs.iter().any(|x| x.2.get(1) == Some(&0xC0)));
}

#[test]
fn character_level_readers_are_refused() {
    let reader = FakeReader::new(ExchangeLevel::Character, MAX_MESSAGE, 15);
    let d = descriptor(ExchangeLevel::Character, true, MAX_MESSAGE);
    let err = CcidTransport::open(reader, d, CcidConfig::default()).unwrap_err();
    assert!(
        err.to_string().contains("exchanges characters only"),
        "{err}"
    );
}

#[test]
fn usb_listing_is_a_list_even_without_usb() {
    // This machine has no USB devices: an empty list, not an error. Elsewhere, whatever is
    // plugged in.
    let devices = tessera_host::usb::list_devices();
    for d in &devices {
        assert!(d.ccid_interface.is_some() || (d.vendor_id, d.product_id) == (0x20A0, 0x4230));
    }
}

/// A pipe that answers whatever proptest makes up.
struct GarbagePipe {
    answers: std::collections::VecDeque<Vec<u8>>,
}

impl UsbPipe for GarbagePipe {
    fn bulk_out(&mut self, _: &[u8], _: std::time::Duration) -> Result<(), TransportError> {
        Ok(())
    }
    fn bulk_in(
        &mut self,
        buffer: &mut [u8],
        _: std::time::Duration,
    ) -> Result<usize, TransportError> {
        match self.answers.pop_front() {
            Some(a) => {
                let n = a.len().min(buffer.len());
                buffer[..n].copy_from_slice(&a[..n]);
                Ok(n)
            }
            None => Err(TransportError::new(TransportErrorKind::Timeout, "silence")),
        }
    }
}

/// A CCID response: a plausible header with a random body, or anything.
fn ccid_answer() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        (
            prop_oneof![Just(0x80u8), Just(0x81), any::<u8>()],
            0u8..8,
            any::<[u8; 3]>(),
            proptest::collection::vec(any::<u8>(), 0..40),
        )
            .prop_map(|(t, seq, specific, data)| {
                let mut m = vec![t];
                m.extend_from_slice(&(data.len() as u32).to_le_bytes());
                m.extend_from_slice(&[0, seq]);
                m.extend_from_slice(&specific);
                m.extend_from_slice(&data);
                m
            }),
        proptest::collection::vec(any::<u8>(), 0..300),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(300))]

    #[test]
    fn garbage_from_the_reader_never_panics(
        answers in proptest::collection::vec(ccid_answer(), 0..30),
        level in prop_oneof![Just(ExchangeLevel::Tpdu), Just(ExchangeLevel::ExtendedApdu), Just(ExchangeLevel::ShortApdu)],
    ) {
        let pipe = GarbagePipe { answers: answers.into() };
        let d = descriptor(level, false, MAX_MESSAGE);
        if let Ok(mut transport) = CcidTransport::open(pipe, d, CcidConfig::default()) {
            for _ in 0..3 {
                if let Err(e) = transport.transmit(&[0x00, 0xA4, 0x04, 0x00, 0x02, 0x3F, 0x00, 0x00]) {
                    prop_assert!(!e.to_string().contains('\n'));
                }
            }
        }
    }
}
