//! A card (or a transport) that answers garbage, unexpected status words or nothing: every
//! operation returns a one-line error, never panics.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod support;

use proptest::prelude::*;
use support::*;
use tessera_sc_hsm::{
    EcdsaFormat, Error, KeyAlgorithm, Operation, PinRole, ScHsm, SignMechanism, TransportErrorKind,
};

#[test]
fn select_on_another_card_says_so() {
    let err = ScHsm::open(Scripted::new([hex("6A 82")])).unwrap_err();
    assert_eq!(
        err.to_string(),
        "SELECT: 6A82 — the SmartCard-HSM applet is not on this card; is this a Nitrokey HSM?"
    );
}

#[test]
fn select_without_tag_85_is_not_a_smartcard_hsm() {
    let err = ScHsm::open(Scripted::new([hex("62 03 82 01 38 90 00")])).unwrap_err();
    assert!(
        matches!(
            err,
            Error::Malformed {
                operation: Operation::Select,
                ..
            }
        ),
        "{err:?}"
    );
    assert_eq!(
        err.to_string(),
        "SELECT: malformed answer from the card: the FCP has no proprietary tag 85 with the \
         version: not a SmartCard-HSM; try again, and report a bug if it persists"
    );
}

#[test]
fn responses_shorter_than_a_status_word() {
    for short in [vec![], vec![0x90]] {
        let err = ScHsm::open(Scripted::new([short])).unwrap_err();
        assert!(
            err.to_string().contains("shorter than a status word"),
            "{err}"
        );
    }
    let mut hsm = ScHsm::open(Scripted::after_select([vec![0x63]])).unwrap();
    let err = hsm.pin_status(PinRole::User).unwrap_err();
    assert_eq!(
        err.to_string(),
        "VERIFY (user PIN status): malformed answer from the card: 1 byte(s), shorter than a \
         status word; try again, and report a bug if it persists"
    );
}

#[test]
fn an_unexpected_status_word_names_the_operation_and_its_meaning() {
    let mut hsm = ScHsm::open(Scripted::after_select([hex("6F 00")])).unwrap();
    let err = hsm.pin_status(PinRole::So).unwrap_err();
    assert_eq!(
        err.to_string(),
        "VERIFY (SO-PIN status): 6F00 — the card failed internally (no precise diagnosis)"
    );
    let mut hsm = ScHsm::open(Scripted::after_select([hex("6A 86")])).unwrap();
    let err = hsm.list_objects().unwrap_err();
    assert_eq!(
        err.to_string(),
        "ENUMERATE OBJECTS: 6A86 (incorrect parameters P1-P2) — the card refused the command"
    );
    let mut hsm = ScHsm::open(Scripted::after_select([hex("12 34")])).unwrap();
    let err = hsm.dkek_status().unwrap_err();
    assert_eq!(
        err.to_string(),
        "DKEK STATUS: 1234 (not known to this crate) — the card refused the command"
    );
}

#[test]
fn endless_61xx_is_cut_off() {
    let answers = std::iter::repeat_n(hex("01 61 01"), 2000);
    let mut hsm = ScHsm::open(Scripted::after_select(answers)).unwrap();
    let err = hsm.list_objects().unwrap_err();
    assert!(
        err.to_string().contains("announces more data without end"),
        "{err}"
    );
}

#[test]
fn an_odd_object_list_and_a_garbled_dkek_status() {
    let mut hsm = ScHsm::open(Scripted::after_select([hex("CC 01 C4 90 00")])).unwrap();
    let err = hsm.list_objects().unwrap_err();
    assert!(err.to_string().contains("odd length (3 bytes)"), "{err}");
    let mut hsm = ScHsm::open(Scripted::after_select([hex("02 01 AA 90 00")])).unwrap();
    let err = hsm.dkek_status().unwrap_err();
    assert!(
        err.to_string()
            .contains("DKEK status is at least 10 bytes, not 3"),
        "{err}"
    );
}

#[test]
fn a_garbled_key_generation_answer() {
    let answers = [
        hex("CC 00 90 00"),                // ENUMERATE: only the device key
        hex("7F 21 03 01 02 03 62 82"),    // READ 2F02: garbage, end of file
        hex("67 05 7F 21 02 00 00 90 00"), // GENERATE: a broken authenticated request
    ];
    let mut hsm = ScHsm::open(Scripted::after_select(answers)).unwrap();
    let err = hsm
        .generate_key(KeyAlgorithm::EcP256, None, None)
        .unwrap_err();
    assert!(
        matches!(
            err,
            Error::Malformed {
                operation: Operation::GenerateKeyPair(1),
                ..
            }
        ),
        "{err:?}"
    );
    assert!(!err.to_string().contains('\n'));
}

#[test]
fn transport_failures_keep_their_kind_and_advice() {
    let mut script = Scripted::after_select([]);
    script
        .answers
        .push_back(Err(TransportErrorKind::ReaderGone));
    let mut hsm = ScHsm::open(script).unwrap();
    let err = hsm.pin_status(PinRole::User).unwrap_err();
    assert_eq!(err.transport_kind(), Some(TransportErrorKind::ReaderGone));
    assert_eq!(
        err.to_string(),
        "VERIFY (user PIN status): scripted failure: reconnect the token (and check that pcscd runs)"
    );
    let err = hsm.pin_status(PinRole::User).unwrap_err();
    assert_eq!(err.transport_kind(), Some(TransportErrorKind::Timeout));
}

#[test]
fn after_a_card_reset_the_applet_is_selected_again() {
    let mut script = Scripted::after_select([]);
    script.answers.push_back(Err(TransportErrorKind::CardReset));
    script.answers.push_back(Ok(Scripted::select_ok()));
    script.answers.push_back(Ok(hex("63 C3")));
    let mut hsm = ScHsm::open(script).unwrap();
    let err = hsm.pin_status(PinRole::User).unwrap_err();
    assert_eq!(err.transport_kind(), Some(TransportErrorKind::CardReset));
    assert_eq!(
        hsm.pin_status(PinRole::User).unwrap(),
        tessera_sc_hsm::PinStatus::TriesLeft { tries_left: 3 }
    );
    let sent = &hsm.transport().sent;
    assert_eq!(sent.len(), 4);
    assert_eq!(
        sent[2][..4],
        [0x00, 0xA4, 0x04, 0x00],
        "SELECT again before the next command"
    );
}

/// Every operation, against a card that answers whatever proptest makes up.
fn drive_everything(answers: Vec<Vec<u8>>, extended: bool) -> Vec<String> {
    let mut script = Scripted::new(answers);
    script.extended = extended;
    let mut errors = Vec::new();
    let mut note = |r: Result<(), Error>| {
        if let Err(e) = r {
            errors.push(e.to_string());
        }
    };
    let mut hsm = match ScHsm::open(script) {
        Ok(h) => h,
        Err(e) => return vec![e.to_string()],
    };
    note(hsm.status().map(drop));
    note(hsm.list_keys().map(drop));
    note(hsm.verify(&pin(USER_PIN)));
    note(
        hsm.generate_key(KeyAlgorithm::Rsa2048, None, Some("k"))
            .map(drop),
    );
    note(
        hsm.sign(1, SignMechanism::EcdsaHash, &[1; 32], EcdsaFormat::Raw)
            .map(drop),
    );
    note(hsm.device_certificates().map(drop));
    note(hsm.dkek_status().map(drop));
    note(hsm.unblock(&so_pin(SO_PIN), Some(&pin(USER_PIN))));
    errors
}

/// A card answer: mostly plausible status words with some data, sometimes anything.
fn answer() -> impl Strategy<Value = Vec<u8>> {
    let sw = prop_oneof![
        Just(vec![0x90, 0x00]),
        Just(vec![0x62, 0x82]),
        (0u8..=0xFF).prop_map(|n| vec![0x61, n]),
        (0u8..=0xFF).prop_map(|n| vec![0x6C, n]),
        (0u8..=0x0F).prop_map(|n| vec![0x63, 0xC0 | n]),
        any::<[u8; 2]>().prop_map(|b| b.to_vec()),
    ];
    prop_oneof![
        (proptest::collection::vec(any::<u8>(), 0..64), sw.clone())
            .prop_map(|(data, sw)| [data, sw].concat()),
        proptest::collection::vec(any::<u8>(), 0..3),
        sw,
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(400))]

    #[test]
    fn garbage_never_panics_and_every_error_is_one_line(
        answers in proptest::collection::vec(answer(), 0..40),
        extended in any::<bool>(),
    ) {
        let mut with_select = vec![Scripted::select_ok()];
        with_select.extend(answers.iter().cloned());
        for set in [answers, with_select] {
            for message in drive_everything(set, extended) {
                prop_assert!(!message.contains('\n'), "{message}");
                prop_assert!(!message.is_empty());
            }
        }
    }
}
