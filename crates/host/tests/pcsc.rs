//! PC/SC end to end: a private pcscd with vpcd (tessera_testkit::PcscSandbox) serving a
//! virtual card, driven through `PcscTransport` and checked with OpenSC's pkcs11-tool.
//!
//! Needs root, pcscd, vsmartcard-vpcd, iproute2 and opensc (CI installs them); without them
//! these tests fail with the sandbox's message. Everything runs on the test's thread and the
//! threads and processes it starts, as the sandbox's namespaces require.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::process::Command;
use std::time::Duration;

use p256::ecdsa::signature::hazmat::PrehashVerifier;
use p256::pkcs8::DecodePublicKey;
use tessera_card::memory::MemoryStorage;
use tessera_card::virtual_card::{CardConfig, VirtualCard};
use tessera_card::vpcd::{self, ServeConfig, ServingCard};
use tessera_host::pcsc::{choose_reader, list_readers, ReaderChoice, ReaderInfo};
use tessera_host::{OpenError, PcscTransport};
use tessera_sc_hsm::{
    EcdsaFormat, InitParams, KeyAlgorithm, Pin, PinRole, PinStatus, ScHsm, SignMechanism, SoPin,
    Transport, TransportErrorKind,
};
use tessera_testkit::PcscSandbox;

const MODULE: &str = "/usr/lib/x86_64-linux-gnu/opensc-pkcs11.so";

struct Bench {
    serving: Option<ServingCard<VirtualCard<MemoryStorage>>>,
    sandbox: PcscSandbox,
    port: u16,
}

fn bench(port: u16, seed: u8) -> Bench {
    let mut sandbox = PcscSandbox::start(&[port]).unwrap_or_else(|e| panic!("{e}"));
    let card = VirtualCard::new(
        MemoryStorage::new(),
        CardConfig::default(),
        [seed; 32],
        [seed; 32],
    )
    .unwrap();
    let serving = vpcd::spawn(card, ServeConfig::loopback(port)).unwrap();
    sandbox
        .wait_for_card(port, Duration::from_secs(10))
        .unwrap_or_else(|e| panic!("{e}"));
    Bench {
        serving: Some(serving),
        sandbox,
        port,
    }
}

#[test]
fn the_default_reader_is_the_one_with_a_smartcard_hsm_and_it_works_end_to_end() {
    let bench = bench(35301, 61);
    let readers = list_readers().unwrap();
    let vpcd = readers
        .iter()
        .find(|r| r.card_present)
        .expect("the vpcd reader has a card");
    assert!(
        vpcd.name
            .starts_with(&format!("Tessera vpcd {}", bench.port)),
        "{readers:?}"
    );
    assert!(vpcd.sc_hsm, "the virtual card's ATR is a SmartCard-HSM's");
    assert!(!vpcd.nitrokey);

    let transport = PcscTransport::open(&ReaderChoice::Default).unwrap();
    assert_eq!(transport.reader_name(), vpcd.name);
    assert!(
        transport.supports_extended_length(),
        "the SmartCard-HSM ATR announces extended Lc/Le"
    );
    let mut hsm = ScHsm::open(transport).unwrap();
    let so = SoPin::from_hex("3537363231383830").unwrap();
    let user = Pin::new("648219").unwrap();
    hsm.initialise(&InitParams::new(so, user.clone())).unwrap();
    hsm.select().unwrap();
    let status = hsm.status().unwrap();
    assert_eq!(status.user_pin, PinStatus::TriesLeft { tries_left: 3 });
    assert_eq!(status.so_pin, PinStatus::TriesLeft { tries_left: 15 });
    assert!(status
        .serial
        .as_deref()
        .is_some_and(|s| s.starts_with("ZZTS")));
    hsm.verify(&user).unwrap();
    let key = hsm
        .generate_key(KeyAlgorithm::EcP256, None, Some("tessera over pcsc"))
        .unwrap();
    let hash = [0x11; 32];
    let signature = hsm
        .sign(key.id, SignMechanism::EcdsaHash, &hash, EcdsaFormat::Der)
        .unwrap();
    let verifier =
        p256::ecdsa::VerifyingKey::from_public_key_der(&key.public_key.to_spki_der()).unwrap();
    verifier
        .verify_prehash(
            &hash,
            &p256::ecdsa::Signature::from_der(&signature).unwrap(),
        )
        .unwrap();
    let rsa = hsm
        .generate_key(KeyAlgorithm::Rsa2048, None, Some("rsa over pcsc"))
        .unwrap();
    drop(hsm);

    // OpenSC sees both keys with their labels: the PRKD and CE files are what it expects.
    let out = Command::new("pkcs11-tool")
        .args(["--module", MODULE, "--list-objects"])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{text}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(text.contains("label:      tessera over pcsc"), "{text}");
    assert!(text.contains("label:      rsa over pcsc"), "{text}");
    assert!(
        text.contains(&format!("ID:         {:02x}", rsa.id)),
        "{text}"
    );
    assert!(text.contains("EC_POINT 256 bits"), "{text}");
}

#[test]
fn readers_are_chosen_by_name_or_index_and_bad_choices_say_what_exists() {
    let bench = bench(35303, 62);
    let by_name = PcscTransport::open(&ReaderChoice::Name(format!("vpcd {}", bench.port))).unwrap();
    assert!(by_name.reader_name().contains("Tessera vpcd"));
    drop(by_name);
    let readers = list_readers().unwrap();
    let index = readers.iter().position(|r| r.card_present).unwrap();
    PcscTransport::open(&ReaderChoice::Index(index)).unwrap();
    let err = PcscTransport::open(&ReaderChoice::Name("Nitrokey".into())).unwrap_err();
    assert!(matches!(err, OpenError::NoSuchReader { .. }), "{err:?}");
    let text = err.to_string();
    assert!(
        text.starts_with("no reader matches reader \"Nitrokey\"; readers: #0 \"Tessera vpcd"),
        "{text}"
    );
    assert!(
        text.ends_with("choose one with --reader NAME or --reader INDEX"),
        "{text}"
    );
    // Both slots of the vpcd reader match "tessera"; only one holds a card.
    let t = PcscTransport::open(&ReaderChoice::Name("tessera".into())).unwrap();
    assert!(t.reader_name().ends_with(" 00"), "{}", t.reader_name());
}

#[test]
fn a_card_pulled_mid_session_is_a_typed_error() {
    let mut bench = bench(35305, 63);
    let mut hsm = ScHsm::open(PcscTransport::open(&ReaderChoice::Default).unwrap()).unwrap();
    hsm.pin_status(PinRole::User).unwrap();
    // The virtual card goes away (vpcd's connection closes: the card is removed).
    let (_card, _summary) = bench.serving.take().unwrap().stop().unwrap();
    std::thread::sleep(Duration::from_millis(500));
    let err = hsm.pin_status(PinRole::User).unwrap_err();
    let kind = err.transport_kind();
    assert!(
        matches!(
            kind,
            Some(
                TransportErrorKind::CardRemoved
                    | TransportErrorKind::CardReset
                    | TransportErrorKind::ReaderGone
            )
        ),
        "{err:?}"
    );
    assert!(!err.to_string().contains('\n'));
    let _ = &bench.sandbox;
}

#[test]
fn default_choice_rules() {
    let reader = |index: usize, name: &str, present: bool, sc_hsm: bool| ReaderInfo {
        index,
        name: name.to_owned(),
        card_present: present,
        atr: None,
        sc_hsm,
        nitrokey: name.contains("Nitrokey HSM"),
    };
    let nitrokey = reader(
        1,
        "Nitrokey Nitrokey HSM (DENK01234560000) 00 00",
        true,
        true,
    );
    let other = reader(0, "Generic Reader 00 00", true, false);
    let hsm_card = reader(2, "Generic Reader 01 00", true, true);
    let empty = reader(3, "Empty Reader 00 00", false, false);
    // 1. The Nitrokey HSM's reader wins.
    let all = [other.clone(), nitrokey.clone(), hsm_card.clone()];
    assert_eq!(
        choose_reader(&all, &ReaderChoice::Default).unwrap().index,
        1
    );
    // 2. Otherwise the only reader with a SmartCard-HSM card.
    let all = [other.clone(), hsm_card.clone(), empty.clone()];
    assert_eq!(
        choose_reader(&all, &ReaderChoice::Default).unwrap().index,
        2
    );
    // 3. Otherwise an error listing the readers.
    let all = [other.clone(), empty.clone()];
    assert!(matches!(
        choose_reader(&all, &ReaderChoice::Default),
        Err(OpenError::NoSuchReader { .. })
    ));
    let two = [hsm_card.clone(), reader(4, "Another 00 00", true, true)];
    let err = choose_reader(&two, &ReaderChoice::Default).unwrap_err();
    assert_eq!(
        err.to_string(),
        "several readers match: #0 \"Generic Reader 01 00\", #1 \"Another 00 00\"; choose one \
         with --reader NAME or --reader INDEX"
    );
    // Of several matches, the only one with a card.
    let slots = [
        reader(0, "Gen 00 00", true, false),
        reader(1, "Gen 00 01", false, false),
    ];
    assert_eq!(
        choose_reader(&slots, &ReaderChoice::Name("gen".into()))
            .unwrap()
            .index,
        0
    );
    assert!(matches!(
        choose_reader(&[], &ReaderChoice::Default),
        Err(OpenError::NoReaders)
    ));
    // Names: an exact name wins over substrings; case does not matter.
    let all = [
        reader(0, "Gen 00 00", true, false),
        reader(1, "Gen 00 00 extra", true, false),
    ];
    assert_eq!(
        choose_reader(&all, &ReaderChoice::Name("Gen 00 00".into()))
            .unwrap()
            .index,
        0
    );
    assert_eq!(
        choose_reader(&all, &ReaderChoice::Name("EXTRA".into()))
            .unwrap()
            .index,
        1
    );
    assert!(choose_reader(&all, &ReaderChoice::Index(5)).is_err());
    assert_eq!(ReaderChoice::parse("2"), ReaderChoice::Index(2));
    assert_eq!(
        ReaderChoice::parse("Nitrokey"),
        ReaderChoice::Name("Nitrokey".into())
    );
}

#[test]
fn extended_length_from_the_atrs_card_capabilities() {
    use tessera_host::pcsc::extended_length_in_atr;
    for atr in tessera_sc_hsm::KNOWN_ATRS {
        assert!(extended_length_in_atr(atr), "{atr:02X?}");
    }
    // A JCOP default ATR without card capabilities.
    let jcop = [
        0x3B, 0xF8, 0x13, 0x00, 0x00, 0x81, 0x31, 0xFE, 0x45, 0x4A, 0x43, 0x4F, 0x50, 0x76, 0x32,
        0x34, 0x31, 0xB7,
    ];
    assert!(!extended_length_in_atr(&jcop));
    assert!(!extended_length_in_atr(&[]));
    assert!(!extended_length_in_atr(&[0x3B, 0x00]));
}
