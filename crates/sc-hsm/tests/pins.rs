//! PINs against the virtual card: the tries-left arithmetic of both PINs, unblock, change,
//! transport PIN, and the plain-words summary of every combination (sc-hsm-protocol.md §4).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod support;

use support::*;
use tessera_sc_hsm::{
    Assessment, Error, InitParams, InputError, Operation, Options, PinRole, PinStatus, Severity,
    SoPin,
};

fn tries(n: u8) -> PinStatus {
    PinStatus::TriesLeft { tries_left: n }
}

#[test]
fn a_new_card_is_not_initialised() {
    let mut bench = Bench::new(1);
    let status = bench.hsm.status().unwrap();
    assert!(!status.initialised);
    assert_eq!(status.user_pin, PinStatus::NotInitialised);
    assert_eq!(status.so_pin, PinStatus::NotInitialised);
    assert_eq!(status.assessment.severity, Severity::NotInitialised);
    assert_eq!(
        status.assessment.summary(),
        "the device is not initialised: set an SO-PIN and a user PIN (tessera init)"
    );
    let err = bench.hsm.verify(&pin(USER_PIN)).unwrap_err();
    assert!(matches!(err, Error::NotInitialised { .. }), "{err:?}");
    assert_eq!(
        err.to_string(),
        "VERIFY: 6A88 — the device is not initialised; initialise it first (tessera init)"
    );
}

#[test]
fn user_pin_counts_down_3_2_1_then_blocked() {
    let mut bench = Bench::initialised(2);
    assert_eq!(bench.hsm.pin_status(PinRole::User).unwrap(), tries(3));
    for left in [2u8, 1] {
        let err = bench.hsm.verify(&pin(WRONG_PIN)).unwrap_err();
        match err {
            Error::WrongPin {
                pin: PinRole::User,
                tries_left,
                operation,
            } => {
                assert_eq!(tries_left, left);
                assert_eq!(operation, Operation::Verify(PinRole::User));
            }
            other => panic!("expected a wrong PIN, got {other:?}"),
        }
        assert_eq!(bench.hsm.pin_status(PinRole::User).unwrap(), tries(left));
        assert_eq!(bench.user_tries(), left);
    }
    // The last wrong try blocks it (the virtual card answers 6983, as pico does).
    let err = bench.hsm.verify(&pin(WRONG_PIN)).unwrap_err();
    assert!(
        matches!(
            err,
            Error::PinBlocked {
                pin: PinRole::User,
                ..
            }
        ),
        "{err:?}"
    );
    assert_eq!(
        bench.hsm.pin_status(PinRole::User).unwrap(),
        PinStatus::Blocked
    );
    // Even the right PIN is refused now.
    let err = bench.hsm.verify(&pin(USER_PIN)).unwrap_err();
    assert_eq!(
        err.to_string(),
        "VERIFY: 6983 — the user PIN is blocked; unblock it with the SO-PIN (tessera unblock)"
    );
    let status = bench.hsm.status().unwrap();
    assert_eq!(status.assessment.severity, Severity::Recoverable);
    assert_eq!(
        status.assessment.lines,
        [
            "the user PIN is blocked: unblock it with the SO-PIN (tessera unblock)",
            "15 SO-PIN tries left"
        ]
    );
}

#[test]
fn the_wrong_pin_error_says_how_many_tries_are_left_in_one_line() {
    let mut bench = Bench::initialised(3);
    bench.hsm.verify(&pin(WRONG_PIN)).unwrap_err();
    let err = bench.hsm.verify(&pin(WRONG_PIN)).unwrap_err();
    assert_eq!(
        err.to_string(),
        "VERIFY: 63C1 — wrong user PIN, 1 try left; one more wrong user PIN blocks it"
    );
    assert_eq!(
        err.status_word(),
        Some(tessera_apdu::StatusWord::RemainingRetries(1))
    );
}

#[test]
fn a_correct_pin_restores_the_counter() {
    let mut bench = Bench::initialised(4);
    bench.hsm.verify(&pin(WRONG_PIN)).unwrap_err();
    bench.hsm.verify(&pin(WRONG_PIN)).unwrap_err();
    assert_eq!(bench.user_tries(), 1);
    bench.hsm.verify(&pin(USER_PIN)).unwrap();
    assert_eq!(bench.user_tries(), 3);
    assert_eq!(
        bench.hsm.pin_status(PinRole::User).unwrap(),
        PinStatus::Verified
    );
    // Selecting again logs out (§1.3).
    bench.hsm.select().unwrap();
    assert_eq!(bench.hsm.pin_status(PinRole::User).unwrap(), tries(3));
}

#[test]
fn so_pin_counts_down_from_15_on_wrong_unblock_attempts() {
    let mut bench = Bench::initialised(5);
    assert_eq!(bench.hsm.pin_status(PinRole::So).unwrap(), tries(15));
    for left in (13..15u8).rev() {
        let err = bench.hsm.unblock(&so_pin(WRONG_SO_PIN), None).unwrap_err();
        match err {
            Error::WrongPin {
                pin: PinRole::So,
                tries_left,
                ..
            } => assert_eq!(tries_left, left),
            other => panic!("expected a wrong SO-PIN, got {other:?}"),
        }
        assert_eq!(bench.hsm.pin_status(PinRole::So).unwrap(), tries(left));
        assert_eq!(bench.so_tries(), left);
    }
    let err = bench.hsm.unblock(&so_pin(WRONG_SO_PIN), None).unwrap_err();
    assert_eq!(
        err.to_string(),
        "RESET RETRY COUNTER: 63CC — wrong SO-PIN, 12 tries left"
    );
    // The right SO-PIN restores its counter.
    bench.hsm.unblock(&so_pin(SO_PIN), None).unwrap();
    assert_eq!(bench.so_tries(), 15);
}

#[test]
fn a_blocked_so_pin_leaves_the_user_pin_working() {
    let mut bench = Bench::initialised(6);
    for left in (0..15u8).rev() {
        let err = bench.hsm.unblock(&so_pin(WRONG_SO_PIN), None).unwrap_err();
        if left == 0 {
            assert!(
                matches!(
                    err,
                    Error::PinBlocked {
                        pin: PinRole::So,
                        ..
                    }
                ),
                "{err:?}"
            );
        } else {
            assert!(
                matches!(err, Error::WrongPin { pin: PinRole::So, tries_left, .. } if tries_left == left),
                "{err:?}"
            );
        }
    }
    assert_eq!(
        bench.hsm.pin_status(PinRole::So).unwrap(),
        PinStatus::Blocked
    );
    // The SO functions are gone, even with the right SO-PIN (§4.6).
    let err = bench.hsm.unblock(&so_pin(SO_PIN), None).unwrap_err();
    assert_eq!(
        err.to_string(),
        "RESET RETRY COUNTER: 6983 — the SO-PIN is blocked; it cannot be unblocked: \
         re-initialisation and user-PIN unblock are no longer possible (the user PIN still \
         works if it is not blocked)"
    );
    let err = bench
        .hsm
        .initialise(&InitParams::new(so_pin(SO_PIN), pin(USER_PIN)))
        .unwrap_err();
    assert!(
        matches!(
            err,
            Error::PinBlocked {
                pin: PinRole::So,
                ..
            }
        ),
        "{err:?}"
    );
    // The user PIN and the keys still work.
    bench.hsm.verify(&pin(USER_PIN)).unwrap();
    let key = bench
        .hsm
        .generate_key(tessera_sc_hsm::KeyAlgorithm::EcP256, None, None)
        .unwrap();
    bench
        .hsm
        .sign(
            key.id,
            tessera_sc_hsm::SignMechanism::EcdsaHash,
            &[7; 32],
            Default::default(),
        )
        .unwrap();
    bench.hsm.select().unwrap();
    let status = bench.hsm.status().unwrap();
    assert_eq!(status.assessment.severity, Severity::Warning);
    assert_eq!(
        status.assessment.lines,
        [
            "the user PIN still works; re-initialisation and user-PIN unblock are no longer possible",
            "if the user PIN gets blocked too, the keys are unusable for good (3 tries left)"
        ]
    );
}

#[test]
fn both_pins_blocked_is_permanent() {
    let mut bench = Bench::initialised(7);
    for _ in 0..15 {
        bench.hsm.unblock(&so_pin(WRONG_SO_PIN), None).unwrap_err();
    }
    for _ in 0..3 {
        bench.hsm.verify(&pin(WRONG_PIN)).unwrap_err();
    }
    let status = bench.hsm.status().unwrap();
    assert_eq!(status.user_pin, PinStatus::Blocked);
    assert_eq!(status.so_pin, PinStatus::Blocked);
    assert_eq!(status.assessment.severity, Severity::Permanent);
    assert_eq!(
        status.assessment.summary(),
        "both PINs are blocked: the keys can no longer be used, and the device can be neither \
         unblocked nor re-initialised"
    );
}

#[test]
fn unblock_with_a_new_pin_and_without() {
    let mut bench = Bench::initialised(8);
    for _ in 0..3 {
        bench.hsm.verify(&pin(WRONG_PIN)).unwrap_err();
    }
    // Counter only (P1 01): the old PIN works again.
    bench.hsm.unblock(&so_pin(SO_PIN), None).unwrap();
    assert_eq!(bench.user_tries(), 3);
    bench.hsm.verify(&pin(USER_PIN)).unwrap();
    bench.hsm.select().unwrap();
    for _ in 0..3 {
        bench.hsm.verify(&pin(WRONG_PIN)).unwrap_err();
    }
    // With a new PIN (P1 00).
    bench
        .hsm
        .unblock(&so_pin(SO_PIN), Some(&pin("24681357")))
        .unwrap();
    bench.hsm.verify(&pin(USER_PIN)).unwrap_err();
    bench.hsm.verify(&pin("24681357")).unwrap();
    assert_eq!(bench.so_tries(), 15);
}

#[test]
fn unblock_refused_when_not_enabled_at_initialisation() {
    let mut bench = Bench::new(9);
    let mut params = InitParams::new(so_pin(SO_PIN), pin(USER_PIN));
    params.options = Options(0);
    bench.hsm.initialise(&params).unwrap();
    bench.hsm.select().unwrap();
    let err = bench.hsm.unblock(&so_pin(SO_PIN), None).unwrap_err();
    assert_eq!(
        err.to_string(),
        "RESET RETRY COUNTER: 6986 — user-PIN unblock with the SO-PIN was not enabled when the \
         device was initialised"
    );
    for _ in 0..3 {
        bench.hsm.verify(&pin(WRONG_PIN)).unwrap_err();
    }
    let status = bench.hsm.status().unwrap();
    assert_eq!(status.assessment.severity, Severity::Recoverable);
    assert!(
        status.assessment.lines[0].contains("only re-initialisation"),
        "{:?}",
        status.assessment
    );
}

#[test]
fn change_pin_and_so_pin() {
    let mut bench = Bench::initialised(10);
    bench
        .hsm
        .change_pin(&pin(USER_PIN), &pin("13572468"))
        .unwrap();
    bench.hsm.select().unwrap();
    bench.hsm.verify(&pin("13572468")).unwrap();
    // An old PIN of another length than the stored one cannot be split off: 6700, no try.
    let err = bench
        .hsm
        .change_pin(&pin("999999"), &pin("123456"))
        .unwrap_err();
    assert!(err.to_string().contains("6700 — wrong PIN length"), "{err}");
    // A wrong old PIN costs a try.
    let err = bench
        .hsm
        .change_pin(&pin("99999999"), &pin("123456"))
        .unwrap_err();
    assert!(
        matches!(
            err,
            Error::WrongPin {
                pin: PinRole::User,
                tries_left: 2,
                ..
            }
        ),
        "{err:?}"
    );
    let new_so = "0A0B0C0D0E0F1A2B";
    bench
        .hsm
        .change_so_pin(&so_pin(SO_PIN), &so_pin(new_so))
        .unwrap();
    assert_eq!(bench.state().so_pin.unwrap().value.as_slice(), hex(new_so));
    let err = bench
        .hsm
        .change_so_pin(&so_pin(SO_PIN), &so_pin(new_so))
        .unwrap_err();
    assert!(
        matches!(
            err,
            Error::WrongPin {
                pin: PinRole::So,
                tries_left: 14,
                ..
            }
        ),
        "{err:?}"
    );
    bench.hsm.unblock(&so_pin(new_so), None).unwrap();
}

#[test]
fn a_transport_pin_must_be_changed_first() {
    let mut bench = Bench::new(11);
    let mut params = InitParams::new(so_pin(SO_PIN), pin("000000"));
    params.options = Options::DEFAULT.union(Options::TRANSPORT_PIN);
    bench.hsm.initialise(&params).unwrap();
    bench.hsm.select().unwrap();
    assert_eq!(
        bench.hsm.pin_status(PinRole::User).unwrap(),
        PinStatus::TransportPin
    );
    let err = bench.hsm.verify(&pin("000000")).unwrap_err();
    assert!(matches!(err, Error::TransportPin { .. }), "{err:?}");
    let status = bench.hsm.status().unwrap();
    assert_eq!(status.assessment.severity, Severity::Warning);
    assert!(status.assessment.lines[0].contains("transport PIN"));
    bench
        .hsm
        .change_pin(&pin("000000"), &pin(USER_PIN))
        .unwrap();
    bench.hsm.select().unwrap();
    assert_eq!(bench.hsm.pin_status(PinRole::User).unwrap(), tries(3));
}

/// Every combination of the two PIN states, in words.
#[test]
fn assessment_for_every_combination() {
    let rrc = Options::DEFAULT;
    let none = Options(0);
    let cases: Vec<(PinStatus, PinStatus, Options, Severity, &str)> = vec![
        (tries(3), tries(15), rrc, Severity::Ok,
         "the user PIN works (3 tries left); the SO-PIN can unblock the user PIN and re-initialise the device (15 tries left)"),
        (PinStatus::Verified, tries(15), rrc, Severity::Ok,
         "the user PIN works (verified in this session); the SO-PIN can unblock the user PIN and re-initialise the device (15 tries left)"),
        (tries(3), tries(15), none, Severity::Ok,
         "the user PIN works (3 tries left); the SO-PIN can re-initialise the device (15 tries left); user-PIN unblock was not enabled at initialisation"),
        (tries(1), tries(15), rrc, Severity::Warning,
         "the user PIN works (1 try left); the SO-PIN can unblock the user PIN and re-initialise the device (15 tries left); one more wrong user PIN blocks it"),
        (tries(3), tries(1), rrc, Severity::Warning,
         "the user PIN works (3 tries left); the SO-PIN can unblock the user PIN and re-initialise the device (1 try left); one more wrong SO-PIN blocks it for good (it cannot be unblocked)"),
        (PinStatus::Blocked, tries(15), rrc, Severity::Recoverable,
         "the user PIN is blocked: unblock it with the SO-PIN (tessera unblock); 15 SO-PIN tries left"),
        (PinStatus::Blocked, tries(1), rrc, Severity::Recoverable,
         "the user PIN is blocked: unblock it with the SO-PIN (tessera unblock); 1 SO-PIN try left; one more wrong SO-PIN blocks it for good (it cannot be unblocked)"),
        (PinStatus::Blocked, tries(15), none, Severity::Recoverable,
         "the user PIN is blocked, and unblocking with the SO-PIN was not enabled at initialisation: only re-initialisation (tessera init) helps, and it erases all keys; the SO-PIN can re-initialise the device (15 tries left); user-PIN unblock was not enabled at initialisation"),
        (tries(3), PinStatus::Blocked, rrc, Severity::Warning,
         "the user PIN still works; re-initialisation and user-PIN unblock are no longer possible; if the user PIN gets blocked too, the keys are unusable for good (3 tries left)"),
        (tries(1), PinStatus::Blocked, rrc, Severity::Warning,
         "the user PIN still works; re-initialisation and user-PIN unblock are no longer possible; if the user PIN gets blocked too, the keys are unusable for good (1 try left); one more wrong user PIN blocks it"),
        (PinStatus::Blocked, PinStatus::Blocked, rrc, Severity::Permanent,
         "both PINs are blocked: the keys can no longer be used, and the device can be neither unblocked nor re-initialised"),
        (PinStatus::TransportPin, tries(15), rrc, Severity::Warning,
         "the user PIN is still the transport PIN: set your own (tessera change-pin) before using the keys; the SO-PIN can unblock the user PIN and re-initialise the device (15 tries left)"),
        (PinStatus::TransportPin, PinStatus::Blocked, rrc, Severity::Warning,
         "the user PIN is still the transport PIN: set your own (tessera change-pin) before using the keys; the SO-PIN is blocked: re-initialisation and user-PIN unblock are no longer possible"),
        (PinStatus::NotInitialised, PinStatus::NotInitialised, none, Severity::NotInitialised,
         "the device is not initialised: set an SO-PIN and a user PIN (tessera init)"),
    ];
    for (user, so, options, severity, words) in cases {
        let a = Assessment::new(user, so, options);
        assert_eq!(a.summary(), words, "user {user:?}, SO {so:?}");
        assert_eq!(a.severity, severity, "user {user:?}, SO {so:?}");
    }
}

#[test]
fn pin_status_from_status_words() {
    use tessera_apdu::StatusWord as Sw;
    assert_eq!(
        PinStatus::from_status_word(Sw::Success),
        Some(PinStatus::Verified)
    );
    assert_eq!(
        PinStatus::from_status_word(Sw::RemainingRetries(5)),
        Some(tries(5))
    );
    assert_eq!(
        PinStatus::from_status_word(Sw::RemainingRetries(0)),
        Some(PinStatus::Blocked)
    );
    assert_eq!(
        PinStatus::from_status_word(Sw::AuthenticationMethodBlocked),
        Some(PinStatus::Blocked)
    );
    assert_eq!(
        PinStatus::from_status_word(Sw::ReferenceDataNotUsable),
        Some(PinStatus::TransportPin)
    );
    assert_eq!(
        PinStatus::from_status_word(Sw::ReferencedDataNotFound),
        Some(PinStatus::NotInitialised)
    );
    assert_eq!(PinStatus::from_status_word(Sw::WrongLength), None);
}

#[test]
fn so_pin_hex_is_decoded_as_opensc_does() {
    assert_eq!(
        so_pin("3537363231383830").as_bytes(),
        &hex("3537363231383830")[..]
    );
    // Letters are 10..15 in either case (OpenSC); sc-hsm-embedded's 'A' = 0 is not reproduced.
    assert_eq!(
        so_pin("0a0B0c0D0e0F1a2B").as_bytes(),
        &[0x0A, 0x0B, 0x0C, 0x0D, 0x0E, 0x0F, 0x1A, 0x2B]
    );
    assert_eq!(so_pin("FFFFFFFFFFFFFFFF").as_bytes(), &[0xFF; 8]);
}

#[test]
fn bad_so_pins_are_refused_without_repeating_them() {
    let short = SoPin::from_hex("353736323138383").unwrap_err();
    assert_eq!(short, InputError::SoPinLength { len: 15 });
    assert_eq!(
        short.to_string(),
        "the SO-PIN must be exactly 16 hex digits (e.g. 3537363231383830), not 15 characters"
    );
    let bad = SoPin::from_hex("35373632313838g0").unwrap_err();
    assert_eq!(bad, InputError::SoPinDigit { position: 15 });
    assert!(!bad.to_string().contains("35373632313838g0"));
    assert!(SoPin::from_hex("35373632313838300").is_err());
    assert!(SoPin::from_hex("353736323138383é").is_err());
    assert!(SoPin::from_hex("").is_err());
}

#[test]
fn user_pins_must_be_6_to_16_long() {
    assert_eq!(
        tessera_sc_hsm::Pin::new("12345").unwrap_err(),
        InputError::PinLength { len: 5 }
    );
    assert!(tessera_sc_hsm::Pin::new("12345678901234567").is_err());
    assert!(tessera_sc_hsm::Pin::new("123456").is_ok());
    assert!(tessera_sc_hsm::Pin::new("1234567890123456").is_ok());
}

#[test]
fn secrets_are_never_debug_printed() {
    let p = pin("648219");
    let s = so_pin(SO_PIN);
    let share = tessera_sc_hsm::DkekShare::new([0x42; 32]);
    let params = InitParams::new(s.clone(), p.clone());
    for text in [
        format!("{p:?}"),
        format!("{s:?}"),
        format!("{share:?}"),
        format!("{params:?}"),
    ] {
        assert!(!text.contains("648219"), "{text}");
        assert!(!text.contains("3537"), "{text}");
        assert!(!text.contains("42, 42"), "{text}");
        assert!(!text.contains("53, 55"), "{text}");
        assert!(text.contains("redacted"), "{text}");
    }
}
