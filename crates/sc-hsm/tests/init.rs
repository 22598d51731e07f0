//! INITIALIZE DEVICE and DKEK shares against the virtual card, with the bytes of
//! sc-hsm-protocol.md §6.2 and §6.4.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod support;

use support::*;
use tessera_card::memory::MemoryStorage;
use tessera_card::virtual_card::{CardConfig, VirtualCard};
use tessera_sc_hsm::{
    DkekShare, DkekStatus, Error, InitParams, InputError, KeyAlgorithm, Options, PinRole, ScHsm,
};

/// The APDUs of `tessera init` with sc-hsm-tool's defaults, as a transcript.
#[test]
fn initialise_sends_what_sc_hsm_tool_sends() {
    let card = VirtualCard::new(
        MemoryStorage::new(),
        CardConfig::default(),
        [1; 32],
        [1; 32],
    )
    .unwrap();
    let mut hsm = ScHsm::open(Recording::new(card)).unwrap();
    hsm.initialise(&InitParams::new(so_pin(SO_PIN), pin(USER_PIN)))
        .unwrap();
    let log = &hsm.transport().log;
    let transcript = [
        // SELECT the applet, P2 00 and a short Le 00, as OpenSC sends it (§1.3).
        ("00 A4 04 00 0B E8 2B 06 01 04 01 81 C3 1F 02 01 00", "9000"),
        // INITIALIZE: options 0001, user PIN "648219", SO-PIN "57621880", 3 retries (§6.2).
        (
            "80 50 00 00 19 80 02 00 01 81 06 36 34 38 32 31 39 82 08 35 37 36 32 31 38 38 30 91 01 03",
            "9000",
        ),
    ];
    assert_eq!(log.len(), transcript.len());
    for ((command, response), (want_command, want_sw)) in log.iter().zip(transcript) {
        assert_eq!(to_hex(command), to_hex(&hex(want_command)));
        assert_eq!(
            to_hex(&response[response.len() - 2..]),
            to_hex(&hex(want_sw))
        );
    }
}

#[test]
fn initialise_with_dkek_shares_appends_tag_92() {
    let params = InitParams {
        dkek_shares: Some(1),
        ..InitParams::new(so_pin(SO_PIN), pin(USER_PIN))
    };
    // §2.5: with --dkek-shares 1, `92 01 01` is appended.
    assert_eq!(
        to_hex(&params.command_data().unwrap()),
        to_hex(&hex(
            "80 02 00 01 81 06 36 34 38 32 31 39 82 08 35 37 36 32 31 38 38 30 91 01 03 92 01 01"
        ))
    );
}

#[test]
fn retry_counter_follows_sc_hsm_tools_rule() {
    let mut params = InitParams::new(so_pin(SO_PIN), pin(USER_PIN));
    params.user_pin_retries = 4;
    assert_eq!(
        params.check().unwrap_err(),
        InputError::RetryCounter {
            retries: 4,
            max: 3,
            pin_len: 6
        }
    );
    params.user_pin = pin("1234567");
    params.check().unwrap();
    params.user_pin_retries = 6;
    assert!(params.check().is_err());
    params.user_pin = pin("12345678");
    params.user_pin_retries = 10;
    params.check().unwrap();
    params.user_pin_retries = 11;
    assert!(params.check().is_err());
    params.user_pin_retries = 0;
    assert!(params.check().is_err());
    // Nothing reaches the card.
    let mut bench = Bench::new(2);
    let err = bench.hsm.initialise(&params).unwrap_err();
    assert!(
        matches!(err, Error::Input(InputError::RetryCounter { .. })),
        "{err:?}"
    );
    assert!(!bench.state().is_initialised());
}

#[test]
fn reinitialise_with_the_so_pin_wipes_the_keys() {
    let mut bench = Bench::initialised(3);
    bench.hsm.verify(&pin(USER_PIN)).unwrap();
    bench
        .hsm
        .generate_key(KeyAlgorithm::EcP256, None, Some("to be wiped"))
        .unwrap();
    assert_eq!(bench.hsm.list_keys().unwrap().len(), 1);
    let mut params = InitParams::new(so_pin(SO_PIN), pin("87654321"));
    params.user_pin_retries = 5;
    bench.hsm.initialise(&params).unwrap();
    bench.hsm.select().unwrap();
    assert!(bench.hsm.list_keys().unwrap().is_empty());
    assert_eq!(
        bench.hsm.pin_status(PinRole::User).unwrap(),
        tessera_sc_hsm::PinStatus::TriesLeft { tries_left: 5 }
    );
    bench.hsm.verify(&pin("87654321")).unwrap();
}

#[test]
fn reinitialise_with_a_wrong_so_pin_is_refused_and_counted() {
    let mut bench = Bench::initialised(4);
    bench.hsm.verify(&pin(USER_PIN)).unwrap();
    bench
        .hsm
        .generate_key(KeyAlgorithm::EcP256, None, None)
        .unwrap();
    let err = bench
        .hsm
        .initialise(&InitParams::new(so_pin(WRONG_SO_PIN), pin(USER_PIN)))
        .unwrap_err();
    assert_eq!(
        err.to_string(),
        "INITIALIZE DEVICE: 63CE — wrong SO-PIN, 14 tries left"
    );
    assert_eq!(bench.so_tries(), 14);
    assert_eq!(
        bench.state().keys.len(),
        1,
        "the keys survived the refused initialise"
    );
}

#[test]
fn initialise_updates_the_options_the_assessment_uses() {
    let mut bench = Bench::new(5);
    let mut params = InitParams::new(so_pin(SO_PIN), pin(USER_PIN));
    params.options = Options(0);
    bench.hsm.initialise(&params).unwrap();
    assert_eq!(bench.hsm.info().options, Options(0));
    let info = bench.hsm.select().unwrap();
    assert_eq!(info.options, Options(0));
    assert_eq!(info.version, (3, 5));
}

/// §6.4: two shares of 32 × 01; their XOR is 32 zero bytes, whose KCV is 66687AADF862BD77.
#[test]
fn dkek_shares_import_to_the_documented_kcv() {
    let mut bench = Bench::new(6);
    let params = InitParams {
        dkek_shares: Some(2),
        ..InitParams::new(so_pin(SO_PIN), pin(USER_PIN))
    };
    bench.hsm.initialise(&params).unwrap();
    let share = DkekShare::new([0x01; 32]);
    let first = bench.hsm.import_dkek_share(&share).unwrap();
    assert_eq!((first.total, first.outstanding), (2, 1));
    // With shares outstanding no key can be generated (§2.5).
    let err = bench
        .hsm
        .generate_key(KeyAlgorithm::EcP256, None, None)
        .unwrap_err();
    assert!(
        err.to_string()
            .contains("DKEK shares are still outstanding"),
        "{err}"
    );
    let second = bench.hsm.import_dkek_share(&share).unwrap();
    assert_eq!(
        second,
        DkekStatus {
            total: 2,
            outstanding: 0,
            kcv: [0x66, 0x68, 0x7A, 0xAD, 0xF8, 0x62, 0xBD, 0x77]
        }
    );
    assert!(second.is_complete());
    assert_eq!(
        second.to_string(),
        "2 of 2 shares imported, KCV 66687aadf862bd77"
    );
    assert_eq!(bench.hsm.dkek_status().unwrap(), Some(second));
    let err = bench.hsm.import_dkek_share(&share).unwrap_err();
    assert_eq!(
        err.to_string(),
        "IMPORT DKEK SHARE: 6985 — all DKEK shares have been imported already"
    );
    bench
        .hsm
        .generate_key(KeyAlgorithm::EcP256, None, None)
        .unwrap();
    let status = bench.hsm.status().unwrap();
    assert_eq!(status.dkek, Some(second));
}

#[test]
fn without_dkek_shares_the_status_is_none() {
    let mut bench = Bench::initialised(7);
    // §6.5: a real SmartCard-HSM 4.0 initialised without DKEK answers 6A88.
    assert_eq!(bench.hsm.dkek_status().unwrap(), None);
    let err = bench
        .hsm
        .import_dkek_share(&DkekShare::new([1; 32]))
        .unwrap_err();
    assert!(
        err.to_string().contains("initialised without DKEK shares"),
        "{err}"
    );
    assert_eq!(bench.hsm.status().unwrap().dkek, None);
}

#[test]
fn dkek_share_must_be_32_bytes() {
    assert!(DkekShare::from_slice(&[0; 31]).is_err());
    assert!(DkekShare::from_slice(&[0; 33]).is_err());
    assert_eq!(
        DkekShare::from_slice(&[9; 32]).unwrap().as_bytes(),
        &[9; 32]
    );
}
