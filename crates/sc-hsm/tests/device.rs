//! The device certificates and the serial (sc-hsm-protocol.md §1.4), against the virtual card
//! and CardContact's root certificate (§6.9).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod support;

use support::*;
use tessera_card::cvc::DeviceIdentity;
use tessera_sc_hsm::device::{cardcontact_root, CARDCONTACT_ROOT};
use tessera_sc_hsm::DeviceCertificates;

#[test]
fn the_serial_is_the_device_chr_without_its_sequence_number() {
    let mut bench = Bench::new(21);
    let certificates = bench.hsm.device_certificates().unwrap();
    let identity = DeviceIdentity::generate([21; 32], "ZZTS").unwrap();
    assert_eq!(certificates.device_chr, identity.chr());
    assert_eq!(certificates.serial, identity.serial());
    assert_eq!(certificates.serial.len() + 5, certificates.device_chr.len());
    assert!(certificates.serial.starts_with("ZZTS"));
    assert_eq!(certificates.device_car.as_deref(), Some("ZZTSDICA00001"));
    assert_eq!(certificates.dica_chr.as_deref(), Some("ZZTSDICA00001"));
    assert_eq!(certificates.dica_car.as_deref(), Some("ZZTSRCA00001"));
    assert_eq!(bench.hsm.serial().unwrap(), identity.serial());
    // The status shows it too, on an uninitialised card.
    assert_eq!(
        bench.hsm.status().unwrap().serial.as_deref(),
        Some(identity.serial())
    );
}

#[test]
fn the_virtual_chain_verifies_against_its_own_root_only() {
    let mut bench = Bench::new(22);
    let certificates = bench.hsm.device_certificates().unwrap();
    let identity = DeviceIdentity::generate([22; 32], "ZZTS").unwrap();
    certificates
        .verify_chain(identity.root_certificate())
        .unwrap();
    // A virtual card never passes for a genuine one (FIDELITY.md).
    let root = cardcontact_root().unwrap();
    assert_eq!(root.chr(), b"DESRCACC100001");
    root.verify_self_signed().unwrap();
    let err = certificates.verify_chain(&root).unwrap_err();
    assert_eq!(
        err,
        "the DICA is issued by ZZTSRCA00001, not by DESRCACC100001"
    );
    assert_eq!(CARDCONTACT_ROOT.len(), 441 * 2);
}

#[test]
fn malformed_device_certificates_are_errors() {
    let good = DeviceIdentity::generate([23; 32], "ZZTS")
        .unwrap()
        .ef_2f02()
        .to_vec();
    let parsed = DeviceCertificates::parse(&good).unwrap();
    assert_eq!(parsed.raw, good);
    for cut in 0..good.len() {
        // Every truncation either parses (enough for the CHR) or is an error; never a panic.
        let _ = DeviceCertificates::parse(&good[..cut]);
    }
    assert!(DeviceCertificates::parse(&[]).is_err());
    assert!(DeviceCertificates::parse(&hex("30 00")).is_err());
    // A CHR shorter than 8 characters (OpenSC's rule).
    let short = hex("7F21 0C 7F4E 09 5F20 06 414243444546");
    assert_eq!(
        DeviceCertificates::parse(&short).unwrap_err(),
        "device certificate: CHR \"ABCDEF\" is shorter than 8 characters"
    );
    // A CHR that is not printable.
    let binary = hex("7F21 0E 7F4E 0B 5F20 08 0001020304050607");
    assert!(DeviceCertificates::parse(&binary)
        .unwrap_err()
        .contains("not printable"));
    // One certificate only, with a minimal body: enough for a serial.
    let lone = hex("7F21 10 7F4E 0D 5F20 0A 444E4B31323030303031");
    assert_eq!(DeviceCertificates::parse(&lone).unwrap().serial, "DNK12");
}
