//! The APDU layer: extended APDUs where the transport carries them (with OpenSC's Le), command
//! chaining and GET RESPONSE where it does not (ISO/IEC 7816-4 §5.1, §5.3).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod support;

use p256::pkcs8::DecodePublicKey;
use rsa::{Pkcs1v15Sign, RsaPublicKey};
use sha2::{Digest, Sha256};
use support::*;
use tessera_apdu::{Command, CommandRepr};
use tessera_card::memory::MemoryStorage;
use tessera_card::virtual_card::{CardConfig, VirtualCard};
use tessera_sc_hsm::{EcdsaFormat, HashAlg, InitParams, KeyAlgorithm, ScHsm, SignMechanism};

fn card(seed: u8) -> VirtualCard<MemoryStorage> {
    VirtualCard::new(
        MemoryStorage::new(),
        CardConfig::default(),
        [seed; 32],
        [seed; 32],
    )
    .unwrap()
}

#[test]
fn extended_le_for_enumerate_and_read_binary_as_opensc_sends_them() {
    let mut hsm = ScHsm::open(Recording::new(card(31))).unwrap();
    hsm.list_objects().unwrap();
    hsm.device_certificates().unwrap();
    let commands = hsm.transport().commands();
    // §2.7: ENUMERATE OBJECTS, case 2 extended, Le 0000 (65 536).
    assert_eq!(to_hex(&commands[1]), "80 58 00 00 00 00 00");
    // §2.8: READ BINARY 2F02 from offset 0, case 4 extended, Le 0000.
    assert_eq!(
        to_hex(&commands[2]),
        "00 B1 2F 02 00 00 04 54 02 00 00 00 00"
    );
    // The card answered the whole file at once (6282, end of file before Le).
    assert_eq!(commands.len(), 3);
}

#[test]
fn a_short_only_transport_gets_chaining_and_get_response() {
    let mut hsm = ScHsm::open(Recording::short_only(card(32))).unwrap();
    hsm.initialise(&InitParams::new(so_pin(SO_PIN), pin(USER_PIN)))
        .unwrap();
    hsm.verify(&pin(USER_PIN)).unwrap();
    // P-521: the template is longer than 255 bytes, so it is chained.
    let p521 = hsm
        .generate_key(KeyAlgorithm::EcP521, None, Some("p521 over short APDUs"))
        .unwrap();
    // RSA-2048: the answer is longer than 256 bytes, so it comes by GET RESPONSE.
    let rsa = hsm
        .generate_key(KeyAlgorithm::Rsa2048, None, Some("rsa over short APDUs"))
        .unwrap();
    let hash = Sha256::digest(b"short");
    let sig = hsm
        .sign(
            rsa.id,
            SignMechanism::RsaPkcs1Hash(HashAlg::Sha256),
            &hash,
            EcdsaFormat::Der,
        )
        .unwrap();
    RsaPublicKey::from_public_key_der(&rsa.public_key.to_spki_der())
        .unwrap()
        .verify(Pkcs1v15Sign::new::<Sha256>(), &hash, &sig)
        .unwrap();
    // The card hashes a message longer than one short APDU.
    let message = vec![0x5A; 1000];
    hsm.sign(
        p521.id,
        SignMechanism::EcdsaMessage(HashAlg::Sha512),
        &message,
        EcdsaFormat::Raw,
    )
    .unwrap();
    let keys = hsm.list_keys().unwrap();
    assert_eq!(keys.len(), 2);
    assert_eq!(keys[0].label.as_deref(), Some("p521 over short APDUs"));

    let commands = hsm.transport().commands();
    let mut chained = 0;
    let mut get_responses = 0;
    for c in &commands {
        let command = Command::new_checked(c.as_slice()).unwrap();
        assert!(
            !command.is_extended(),
            "an extended APDU on a short-only transport: {}",
            to_hex(c)
        );
        let repr = CommandRepr::parse_bytes(c).unwrap();
        if repr.cla.is_chained() {
            chained += 1;
        }
        if repr.ins == 0xC0 {
            get_responses += 1;
        }
    }
    assert!(
        chained >= 2,
        "the P-521 template and the long message were chained ({chained})"
    );
    assert!(
        get_responses >= 2,
        "the RSA request came by GET RESPONSE ({get_responses})"
    );
}

#[test]
fn long_files_are_written_and_read_in_pieces() {
    for (seed, transport) in [
        (33u8, Recording::new(card(33))),
        (34, Recording::short_only(card(34))),
    ] {
        let mut hsm = ScHsm::open(transport).unwrap();
        hsm.initialise(&InitParams::new(so_pin(SO_PIN), pin(USER_PIN)))
            .unwrap();
        let content: Vec<u8> = (0..3000u32)
            .map(|i| (i * 7 + u32::from(seed)) as u8)
            .collect();
        hsm.write_file(0xCF01, &content).unwrap();
        assert_eq!(hsm.read_file(0xCF01).unwrap(), content);
        // A file whose length is a multiple of 256 ends cleanly on a short transport too.
        hsm.write_file(0xCF02, &[0xAB; 512]).unwrap();
        assert_eq!(hsm.read_file(0xCF02).unwrap(), vec![0xAB; 512]);
    }
}
