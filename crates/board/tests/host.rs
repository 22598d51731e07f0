//! The host side through the `host` adapter: tessera-host's CcidTransport (CCID, and T=1 in the
//! host at TPDU level) and tessera-sc-hsm's client over the virtual board's USB, the real
//! bridge and the virtual card: select, initialise, verify, EC key generation, signing; 4096
//! bytes each way at TPDU level through the host's T=1 engine.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod support;

use std::time::Duration;

use p256::ecdsa::signature::Verifier;
use support::*;
use tessera_board::{BoardConfig, CleanLine, Faults, FaultyLine, VirtualBoard};
use tessera_bridge::{BootPolicy, Exchange};
use tessera_host::ccid::{CcidConfig, ExchangeMode, UsbPipe};
use tessera_sc_hsm::{
    EcCurve, EcdsaFormat, HashAlg, InitParams, KeyAlgorithm, Pin, PinRole, PinStatus, PublicKey,
    ScHsm, SignMechanism, SoPin, Transport, TransportErrorKind,
};

const USER_PIN: &str = "648219";
const SO_PIN: &str = "3537363231383830";

/// The host's CCID configuration: the defaults (with the stock descriptor's automatic IFSD the
/// host accepts blocks up to dwMaxIFSD, which the bridge negotiates after IccPowerOn).
fn ccid_config() -> CcidConfig {
    CcidConfig::default()
}

#[test]
fn sc_hsm_initialises_verifies_generates_and_signs_over_the_virtual_board() {
    for (exchange, mode) in [
        (Exchange::Tpdu, ExchangeMode::Tpdu),
        (Exchange::ExtendedApdu, ExchangeMode::ExtendedApdu),
    ] {
        let (card, memory) = card();
        let mut b = board(BootPolicy::RequireCard, exchange, Some(card));
        boot(&mut b);
        let start = b.now();
        let transport = b.ccid_transport(ccid_config()).unwrap();
        assert_eq!(transport.mode(), mode);
        let mut hsm = ScHsm::open(transport).unwrap();
        hsm.initialise(&InitParams::new(
            SoPin::from_hex(SO_PIN).unwrap(),
            Pin::new(USER_PIN).unwrap(),
        ))
        .unwrap();
        hsm.select().unwrap();
        hsm.verify(&Pin::new(USER_PIN).unwrap()).unwrap();
        let key = hsm
            .generate_key(KeyAlgorithm::EcP256, None, Some("board key"))
            .unwrap();
        let message = b"signed through the virtual board";
        let der = hsm
            .sign(
                key.id,
                SignMechanism::EcdsaMessage(HashAlg::Sha256),
                message,
                EcdsaFormat::Der,
            )
            .unwrap();
        let PublicKey::Ec {
            curve: EcCurve::P256,
            point,
        } = &key.public_key
        else {
            panic!("not a P-256 key");
        };
        let verifier = p256::ecdsa::VerifyingKey::from_sec1_bytes(point).unwrap();
        verifier
            .verify(message, &p256::ecdsa::Signature::from_der(&der).unwrap())
            .unwrap();
        // The serial as the client reads it: the CHR without its sequence number.
        let chr = chr(&memory);
        assert_eq!(hsm.serial().unwrap(), chr[..chr.len() - 5]);
        assert_eq!(hsm.pin_status(PinRole::User).unwrap(), PinStatus::Verified);
        let transport = hsm.into_transport();
        let sizes = transport.t1_sizes();
        drop(transport);
        println!(
            "{exchange:?}: open, initialise, verify, P-256 keygen, sign, serial: {} of modelled \
             time (host T=1 IFSC/IFSD {sizes:?})",
            ms(b.now() - start)
        );
        assert_eq!(b.stalls(), 0);
    }
}

/// At TPDU level the host's T=1 engine chains the 4096-byte command into blocks of IFSC 254,
/// one XfrBlock each, and the card's 4096-byte response comes back in blocks the bridge relays.
#[test]
fn tpdu_level_carries_4096_bytes_each_way_through_the_hosts_t1() {
    let (card, _) = card();
    let mut b = board(BootPolicy::RequireCard, Exchange::Tpdu, Some(card));
    boot(&mut b);
    let mut t = b.ccid_transport(ccid_config()).unwrap();
    let ok = |r: Vec<u8>| {
        assert_eq!(&r[r.len() - 2..], [0x90, 0x00]);
        r[..r.len() - 2].to_vec()
    };
    ok(t.transmit(&hex(SELECT)).unwrap());
    ok(t.transmit(&hex(INITIALIZE)).unwrap());
    ok(t.transmit(&hex(SELECT)).unwrap());
    ok(t.transmit(&hex(VERIFY)).unwrap());
    let content: Vec<u8> = (0..4096u32).map(|i| (i * 11 + i / 256) as u8).collect();
    let start = t.reader().pipe().now();
    ok(t.transmit(&update_binary(0x2F10, 0, &content[..4088]))
        .unwrap());
    let write = t.reader().pipe().now() - start;
    ok(t.transmit(&update_binary(0x2F10, 4088, &content[4088..]))
        .unwrap());
    let start = t.reader().pipe().now();
    let read = ok(t.transmit(&read_binary(0x2F10, 4096)).unwrap());
    let read_time = t.reader().pipe().now() - start;
    assert!(read == content, "the file read back differs");
    println!(
        "TPDU level, host T=1 {:?}: 4096-byte command {} ({:.0} B/s), 4096-byte response {} \
         ({:.0} B/s)",
        t.t1_sizes(),
        ms(write),
        4096.0 / write.as_secs_f64(),
        ms(read_time),
        4096.0 / read_time.as_secs_f64()
    );
}

/// The host's T=1 engine recovers from a faulty card line at TPDU level (the bridge relays the
/// damaged blocks, or reports parity errors, and the host asks again).
#[test]
fn the_hosts_t1_recovers_from_a_faulty_line_at_tpdu_level() {
    let (card, _) = card();
    let config = BoardConfig::new(BootPolicy::RequireCard, Exchange::Tpdu).with_card(card);
    let line = FaultyLine::new(CleanLine, Faults::NONE, 42);
    let mut b = VirtualBoard::with_line(config, line).unwrap();
    boot(&mut b);
    let now = b.now();
    b.line_mut()
        .set_faults(Faults::per_character(3e-4, 1e-4, 3e-4).starting_at(now));
    let mut t = b.ccid_transport(ccid_config()).unwrap();
    assert!(t.transmit(&hex(SELECT)).unwrap().ends_with(&[0x90, 0x00]));
    // EF 2F02 (the device certificates) is readable without the PIN; Le 65 536 reads it all
    // and ends with 6282 (end of file before Le, sc-hsm-protocol.md §2.8).
    let first = t.transmit(&read_binary(0x2F02, 0)).unwrap();
    assert!(first.ends_with(&[0x62, 0x82]));
    for _ in 0..20 {
        assert!(t.transmit(&read_binary(0x2F02, 0)).unwrap() == first);
    }
    let last = first;
    let stats = t.reader().pipe().line().stats();
    println!("{stats:?}, EF 2F02 is {} bytes", last.len() - 2);
    assert!(
        stats.flipped + stats.dropped + stats.corrupted > 0,
        "{stats:?}"
    );
}

#[test]
fn the_pipe_reports_a_device_that_is_not_on_the_bus() {
    let mut b = board(BootPolicy::RequireCard, Exchange::Tpdu, None);
    b.power_on();
    let mut buffer = [0u8; 64];
    let e = b.bulk_in(&mut buffer, Duration::from_secs(1)).unwrap_err();
    assert_eq!(e.kind(), TransportErrorKind::ReaderGone);
    let e = b
        .bulk_out(&hex("65 00000000 00 00 000000"), Duration::from_secs(1))
        .unwrap_err();
    assert_eq!(e.kind(), TransportErrorKind::ReaderGone);
}

/// The stock descriptor announces automatic IFSD (CCID Rev 1.1 §5.1, 0x400): the bridge sends
/// S(IFS 254) after IccPowerOn, and the host, trusting the descriptor, accepts blocks up to
/// dwMaxIFSD without asking itself; responses longer than 32 bytes come back in 254-byte blocks.
#[test]
fn tpdu_level_with_automatic_ifsd_from_the_descriptor() {
    let (card, _) = card();
    let mut b = board(BootPolicy::RequireCard, Exchange::Tpdu, Some(card));
    boot(&mut b);
    let mut t = b.ccid_transport(CcidConfig::default()).unwrap();
    assert_eq!(t.t1_sizes(), Some((254, 254)));
    assert!(t.transmit(&hex(SELECT)).unwrap().ends_with(&[0x90, 0x00]));
    let certificates = t.transmit(&read_binary(0x2F02, 0)).unwrap();
    // The whole EF 2F02 (two CVCs, far more than 32 bytes), ending early: 6282 (§2.8).
    assert!(certificates.len() > 254, "{} bytes", certificates.len());
    assert_eq!(&certificates[certificates.len() - 2..], [0x62, 0x82]);
}
