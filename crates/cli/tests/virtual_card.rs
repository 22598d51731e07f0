//! Every `tessera` command against virtual card files (`--virtual`, in-process: no pcscd), run
//! as the real binary: status, init, the PIN counters and their exit codes, unblock, PIN
//! changes, keys, signatures checked with RustCrypto, DKEK shares with the documented KCV,
//! and the `--json` outputs. No PIN ever appears in any output (every run is checked).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod support;

use std::io::Write;
use std::process::Stdio;

use support::*;

/// sc-hsm-protocol.md §4.6, the forum owner's question, as `tessera status` answers it.
const SO_BLOCKED_SENTENCE: &str =
    "the user PIN still works; re-initialisation and user-PIN unblock are no longer possible";

#[test]
fn status_of_a_fresh_card_says_not_initialised() {
    let cards = Cards::new();
    let card = cards.card("fresh.card");
    let run = on(&card, &["status"]).ok();
    assert!(run.stdout.contains("initialised: no"), "{}", run.stdout);
    assert!(
        run.stdout.contains("the device is not initialised"),
        "{}",
        run.stdout
    );
    assert!(
        run.stderr.contains("created a new virtual card"),
        "{}",
        run.stderr
    );
    let json = status(&card);
    assert_eq!(json["initialised"], false);
    assert_eq!(json["severity"], "not-initialised");
    assert_eq!(json["user_pin"]["state"], "not-initialised");
    assert_eq!(json["so_pin"]["state"], "not-initialised");
    assert_eq!(json["device"]["transport"], "virtual");
    assert!(json["serial"].as_str().unwrap().starts_with("ZZTS"));
}

#[test]
fn init_sets_both_pins_and_status_shows_their_counters() {
    let cards = Cards::new();
    let card = cards.card("a.card");
    let run = initialise(&card, &["--retries", "5"]);
    assert!(
        run.stdout.contains("initialised SmartCard-HSM"),
        "{}",
        run.stdout
    );
    let run = on(&card, &["status"]).ok();
    assert!(
        run.stdout.contains("user PIN:    5 tries left"),
        "{}",
        run.stdout
    );
    assert!(
        run.stdout.contains("SO-PIN:      15 of 15 tries left"),
        "{}",
        run.stdout
    );
    let json = status(&card);
    assert_eq!(json["initialised"], true);
    assert_eq!(json["severity"], "ok");
    assert_eq!(json["applet"]["options"], "0001");
    assert_eq!(json["user_pin"]["tries_left"], 5);
    assert_eq!(json["so_pin"]["tries_left"], 15);
    assert_eq!(json["dkek"], serde_json::Value::Null);
    // Re-initialising presents the SO-PIN: the right one costs nothing.
    initialise(&card, &[]);
    assert_eq!(so_tries(&card), Some(15));
    assert_eq!(user_tries(&card), Some(3));
}

#[test]
fn init_refuses_a_retry_counter_the_pin_length_does_not_allow() {
    let cards = Cards::new();
    let card = cards.card("a.card");
    let run = on(
        &card,
        &[
            "init",
            "--so-pin-env",
            "T_SO_PIN",
            "--pin-env",
            "T_PIN",
            "--yes",
            "--retries",
            "11",
        ],
    )
    .expect(2)
    .one_line_error();
    assert!(
        run.stderr.contains("allows 1 to 10 retries"),
        "{}",
        run.stderr
    );
    assert_eq!(status(&card)["initialised"], false);
}

#[test]
fn verify_counts_down_with_exit_4_then_blocks_with_exit_5() {
    let cards = Cards::new();
    let card = cards.card("a.card");
    initialise(&card, &["--retries", "3"]);
    let wrong = ["verify", "--pin-env", "T_WRONG_PIN"];
    let run = on(&card, &wrong).expect(4).one_line_error();
    assert!(
        run.stderr.contains("wrong user PIN, 2 tries left"),
        "{}",
        run.stderr
    );
    let run = on(&card, &wrong).expect(4);
    assert!(run.stderr.contains("1 try left"), "{}", run.stderr);
    let run = on(&card, &["verify", "--pin-env", "T_WRONG_PIN", "--json"]).expect(5);
    let json = run.json();
    assert_eq!(json["verified"], false);
    assert_eq!(json["user_pin"]["state"], "blocked");
    // Blocked: even the right PIN is refused, and nothing is sent.
    let run = on(&card, &["verify", "--pin-env", "T_PIN"])
        .expect(5)
        .one_line_error();
    assert!(run.stderr.contains("tessera unblock"), "{}", run.stderr);
    let run = on(&card, &["status"]).expect(5);
    assert!(
        run.stdout.contains("user PIN:    blocked"),
        "{}",
        run.stdout
    );
    assert_eq!(status(&card)["severity"], "recoverable");
}

#[test]
fn a_right_pin_verifies_and_restores_the_counter() {
    let cards = Cards::new();
    let card = cards.card("a.card");
    initialise(&card, &[]);
    on(&card, &["verify", "--pin-env", "T_WRONG_PIN"]).expect(4);
    assert_eq!(user_tries(&card), Some(2));
    let run = on(&card, &["verify", "--pin-env", "T_PIN", "--json"]).ok();
    assert_eq!(run.json()["verified"], true);
    assert_eq!(user_tries(&card), Some(3));
}

#[test]
fn pins_come_from_files_and_bad_sources_are_usage_errors() {
    let cards = Cards::new();
    let card = cards.card("a.card");
    initialise(&card, &[]);
    let file = cards.path("pin.txt");
    std::fs::write(&file, format!("{PIN}\n")).unwrap();
    on(&card, &["verify", "--pin-file", file.to_str().unwrap()]).ok();
    // No source and no terminal: a usage error that names the flags.
    let run = on(&card, &["verify"]).expect(2).one_line_error();
    assert!(
        run.stderr.contains("--pin-env VAR or --pin-file FILE"),
        "{}",
        run.stderr
    );
    let run = on(&card, &["verify", "--pin-env", "T_UNSET"])
        .expect(2)
        .one_line_error();
    assert!(run.stderr.contains("T_UNSET"), "{}", run.stderr);
    // A PIN of the wrong length is refused before anything is sent: no try spent.
    let mut short = command(&["verify", "--pin-env", "SHORT", "--virtual", &card]);
    short.env("SHORT", "12345");
    let run = run_command(short).expect(2).one_line_error();
    assert!(run.stderr.contains("6 to 16 characters"), "{}", run.stderr);
    assert!(!run.stderr.contains("12345"), "{}", run.stderr);
    assert_eq!(user_tries(&card), Some(3));
    // PINs are never taken from the command line.
    support::run(&["verify", "--pin", "000000", "--virtual", &card]).expect(2);
}

#[test]
fn unblock_resets_the_counter_or_sets_a_new_pin() {
    let cards = Cards::new();
    let card = cards.card("a.card");
    initialise(&card, &[]);
    for _ in 0..3 {
        on(&card, &["verify", "--pin-env", "T_WRONG_PIN"]);
    }
    assert_eq!(status(&card)["user_pin"]["state"], "blocked");
    let run = on(&card, &["unblock", "--so-pin-env", "T_SO_PIN", "--yes"]).ok();
    assert!(
        run.stdout.contains("unblocked: 3 tries left"),
        "{}",
        run.stdout
    );
    on(&card, &["verify", "--pin-env", "T_PIN"]).ok();

    on(
        &card,
        &[
            "unblock",
            "--so-pin-env",
            "T_SO_PIN",
            "--new-pin",
            "--new-pin-env",
            "T_NEW_PIN",
            "--yes",
        ],
    )
    .ok();
    on(&card, &["verify", "--pin-env", "T_NEW_PIN"]).ok();
    on(&card, &["verify", "--pin-env", "T_PIN"]).expect(4);
    // A wrong SO-PIN costs one SO-PIN try and says so.
    let run = on(
        &card,
        &["unblock", "--so-pin-env", "T_WRONG_SO_PIN", "--yes"],
    )
    .expect(4)
    .one_line_error();
    assert!(
        run.stderr.contains("wrong SO-PIN, 14 tries left"),
        "{}",
        run.stderr
    );
    assert_eq!(so_tries(&card), Some(14));
}

#[test]
fn unblock_is_refused_without_spending_a_try_when_it_was_not_enabled() {
    let cards = Cards::new();
    let card = cards.card("a.card");
    initialise(&card, &["--options", "none"]);
    let run = on(&card, &["unblock", "--so-pin-env", "T_SO_PIN", "--yes"])
        .expect(1)
        .one_line_error();
    assert!(run.stderr.contains("not enabled"), "{}", run.stderr);
    assert_eq!(so_tries(&card), Some(15));
}

#[test]
fn change_pin_changes_the_user_pin_and_the_so_pin() {
    let cards = Cards::new();
    let card = cards.card("a.card");
    initialise(&card, &[]);
    on(
        &card,
        &[
            "change-pin",
            "--pin-env",
            "T_PIN",
            "--new-pin-env",
            "T_NEW_PIN",
        ],
    )
    .ok();
    on(&card, &["verify", "--pin-env", "T_NEW_PIN"]).ok();
    on(
        &card,
        &[
            "change-pin",
            "--so",
            "--so-pin-env",
            "T_SO_PIN",
            "--new-pin-env",
            "T_NEW_SO_PIN",
            "--yes",
        ],
    )
    .ok();
    // The new SO-PIN unblocks; the old one is wrong now.
    on(&card, &["unblock", "--so-pin-env", "T_SO_PIN", "--yes"]).expect(4);
    on(&card, &["unblock", "--so-pin-env", "T_NEW_SO_PIN", "--yes"]).ok();
}

#[test]
fn a_transport_pin_must_be_changed_before_use() {
    let cards = Cards::new();
    let card = cards.card("a.card");
    initialise(&card, &["--options", "reset-retry-counter,transport-pin"]);
    assert_eq!(status(&card)["user_pin"]["state"], "transport-pin");
    let run = on(&card, &["verify", "--pin-env", "T_PIN"]).expect(1);
    assert!(run.stderr.contains("transport PIN"), "{}", run.stderr);
    on(
        &card,
        &[
            "change-pin",
            "--pin-env",
            "T_PIN",
            "--new-pin-env",
            "T_NEW_PIN",
        ],
    )
    .ok();
    on(&card, &["verify", "--pin-env", "T_NEW_PIN"]).ok();
}

/// Spends SO-PIN tries with a wrong current SO-PIN until `left` remain.
fn spend_so_tries(card: &str, left: u64) {
    let start = so_tries(card).unwrap();
    for _ in left..start {
        on(
            card,
            &[
                "change-pin",
                "--so",
                "--so-pin-env",
                "T_WRONG_SO_PIN",
                "--new-pin-env",
                "T_NEW_SO_PIN",
                "--yes",
            ],
        )
        .expect(4);
    }
    assert_eq!(so_tries(card), Some(left));
}

#[test]
fn with_the_so_pin_blocked_the_user_pin_still_verifies_and_signs() {
    let cards = Cards::new();
    let card = cards.card("a.card");
    initialise(&card, &[]);
    spend_so_tries(&card, 1);
    let last = ["unblock", "--so-pin-env", "T_WRONG_SO_PIN", "--yes"];
    // One try left: refused without --force, and nothing is spent.
    let run = on(&card, &last).expect(5).one_line_error();
    assert!(run.stderr.contains("1 try left"), "{}", run.stderr);
    assert!(run.stderr.contains("--force"), "{}", run.stderr);
    assert_eq!(so_tries(&card), Some(1));
    let mut forced = last.to_vec();
    forced.push("--force");
    on(&card, &forced).expect(5);
    assert_eq!(status(&card)["so_pin"]["state"], "blocked");

    let run = on(&card, &["status"]).expect(5);
    assert!(run.stdout.contains(SO_BLOCKED_SENTENCE), "{}", run.stdout);
    assert!(
        run.stdout.contains("SO-PIN:      blocked"),
        "{}",
        run.stdout
    );
    let json = status(&card);
    assert_eq!(json["severity"], "warning");
    assert_eq!(json["assessment"][0], SO_BLOCKED_SENTENCE);

    // The user PIN and the keys keep working.
    on(&card, &["verify", "--pin-env", "T_PIN"]).ok();
    on(
        &card,
        &[
            "keygen",
            "--pin-env",
            "T_PIN",
            "--type",
            "ec:p256",
            "--id",
            "1",
        ],
    )
    .ok();
    let signature = sign_and_check_p256(&cards, &card, 1);
    assert!(!signature.is_empty());

    // The SO functions are refused before anything is sent.
    for args in [
        &["unblock", "--so-pin-env", "T_SO_PIN", "--yes", "--force"][..],
        &[
            "init",
            "--so-pin-env",
            "T_SO_PIN",
            "--pin-env",
            "T_PIN",
            "--yes",
            "--force",
        ],
        &[
            "change-pin",
            "--so",
            "--so-pin-env",
            "T_SO_PIN",
            "--new-pin-env",
            "T_NEW_SO_PIN",
            "--yes",
            "--force",
        ],
    ] {
        let run = on(&card, args).expect(5).one_line_error();
        assert!(run.stderr.contains("nothing was sent"), "{}", run.stderr);
    }
}

/// Signs a message with EC key `id` (P-256) and checks the DER and the raw signature with
/// the p256 crate against the public key from `tessera keys --json`.
fn sign_and_check_p256(cards: &Cards, card: &str, id: u8) -> Vec<u8> {
    use p256::ecdsa::signature::Verifier;
    use p256::ecdsa::{Signature, VerifyingKey};
    use p256::pkcs8::DecodePublicKey;

    let keys = on(card, &["keys", "--json"]).ok().json();
    let key = keys["keys"]
        .as_array()
        .unwrap()
        .iter()
        .find(|k| k["id"] == id)
        .unwrap()
        .clone();
    let public =
        VerifyingKey::from_public_key_pem(key["public_key_pem"].as_str().unwrap()).unwrap();
    let message = cards.path("message");
    std::fs::write(&message, b"the forum owner's message").unwrap();
    let der_file = cards.path("signature.der");
    let id = id.to_string();
    on(
        card,
        &[
            "sign",
            "--pin-env",
            "T_PIN",
            "--id",
            &id,
            "--mechanism",
            "ecdsa-sha256",
            "--input",
            message.to_str().unwrap(),
            "--output",
            der_file.to_str().unwrap(),
        ],
    )
    .ok();
    let der = std::fs::read(&der_file).unwrap();
    let signature = Signature::from_der(&der).unwrap();
    public
        .verify(b"the forum owner's message", &signature)
        .unwrap();
    // Raw r||s on stdout (not a terminal: bytes).
    let run = on(
        card,
        &[
            "sign",
            "--pin-env",
            "T_PIN",
            "--id",
            &id,
            "--mechanism",
            "ecdsa-sha256",
            "--input",
            message.to_str().unwrap(),
            "--format",
            "raw",
        ],
    )
    .ok();
    assert_eq!(run.raw_stdout.len(), 64);
    let signature = Signature::from_slice(&run.raw_stdout).unwrap();
    public
        .verify(b"the forum owner's message", &signature)
        .unwrap();
    der
}

#[test]
fn keygen_and_keys_show_the_labels() {
    let cards = Cards::new();
    let card = cards.card("a.card");
    initialise(&card, &[]);
    let run = on(&card, &["keys"]).ok();
    assert!(run.stdout.contains("no keys"), "{}", run.stdout);
    on(
        &card,
        &[
            "keygen",
            "--pin-env",
            "T_PIN",
            "--type",
            "ec:p256",
            "--id",
            "1",
            "--label",
            "signing key",
        ],
    )
    .ok();
    let run = on(
        &card,
        &[
            "keygen",
            "--pin-env",
            "T_PIN",
            "--type",
            "ec:p384",
            "--label",
            "backup",
            "--json",
        ],
    )
    .ok();
    let json = run.json();
    assert_eq!(json["id"], 2, "the lowest free id");
    assert_eq!(json["algorithm"], "ec:p384");
    assert!(json["public_key_pem"]
        .as_str()
        .unwrap()
        .starts_with("-----BEGIN PUBLIC KEY-----"));
    let run = on(&card, &["keys"]).ok();
    assert!(run.stdout.contains("EC P-256"), "{}", run.stdout);
    assert!(run.stdout.contains("\"signing key\""), "{}", run.stdout);
    assert!(run.stdout.contains("EC P-384"), "{}", run.stdout);
    assert!(run.stdout.contains("\"backup\""), "{}", run.stdout);
    let keys = on(&card, &["keys", "--json"]).ok().json();
    let keys = keys["keys"].as_array().unwrap();
    assert_eq!(keys.len(), 2);
    assert_eq!(keys[0]["label"], "signing key");
    assert_eq!(keys[0]["kind"], "ec");
    assert_eq!(keys[0]["curve"], "P-256");
    assert_eq!(keys[1]["bits"], 384);
    // An id in use is refused before the PIN is asked for.
    let run = on(&card, &["keygen", "--type", "ec:p256", "--id", "1"])
        .expect(1)
        .one_line_error();
    assert!(run.stderr.contains("already exists"), "{}", run.stderr);
    // Deleting needs confirmation; with --yes it goes.
    on(&card, &["delete-key", "--pin-env", "T_PIN", "--id", "1"]).expect(5);
    on(
        &card,
        &["delete-key", "--pin-env", "T_PIN", "--id", "1", "--yes"],
    )
    .ok();
    let keys = on(&card, &["keys", "--json"]).ok().json();
    assert_eq!(keys["keys"].as_array().unwrap().len(), 1);
}

#[test]
fn ecdsa_signatures_verify_independently() {
    let cards = Cards::new();
    let card = cards.card("a.card");
    initialise(&card, &[]);
    on(
        &card,
        &[
            "keygen",
            "--pin-env",
            "T_PIN",
            "--type",
            "ec:p256",
            "--id",
            "7",
        ],
    )
    .ok();
    sign_and_check_p256(&cards, &card, 7);
    // --json gives the metadata and the signature.
    let mut command = command(&[
        "sign",
        "--virtual",
        &card,
        "--pin-env",
        "T_PIN",
        "--id",
        "7",
        "--mechanism",
        "ecdsa-sha256",
        "--json",
    ]);
    command
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = command.spawn().unwrap();
    child.stdin.take().unwrap().write_all(b"abc").unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(json["key_id"], 7);
    assert_eq!(json["mechanism"], "ecdsa-sha256");
    assert_eq!(json["format"], "der");
    assert_eq!(json["input_len"], 3);
    assert_eq!(
        json["digest"],
        "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
    );
    // A mechanism for the wrong key kind is refused before the PIN is asked for.
    let run = on(
        &card,
        &[
            "sign",
            "--id",
            "7",
            "--mechanism",
            "rsa-pkcs1-sha256",
            "--input",
            &card,
        ],
    )
    .expect(2)
    .one_line_error();
    assert!(run.stderr.contains("EC key"), "{}", run.stderr);
    // No such key.
    on(
        &card,
        &[
            "sign",
            "--id",
            "8",
            "--mechanism",
            "ecdsa-sha256",
            "--input",
            &card,
        ],
    )
    .expect(1)
    .one_line_error();
}

#[test]
fn rsa_signatures_verify_independently() {
    use rsa::pkcs1v15::{Signature as Pkcs1Signature, VerifyingKey as Pkcs1Key};
    use rsa::pkcs8::DecodePublicKey;
    use rsa::pss::{Signature as PssSignature, VerifyingKey as PssKey};
    use rsa::signature::Verifier;
    use rsa::RsaPublicKey;
    use sha2::Sha256;

    let cards = Cards::new();
    let card = cards.card("a.card");
    initialise(&card, &[]);
    let pem = cards.path("rsa.pem");
    on(
        &card,
        &[
            "keygen",
            "--pin-env",
            "T_PIN",
            "--type",
            "rsa:2048",
            "--id",
            "3",
            "--output",
            pem.to_str().unwrap(),
        ],
    )
    .ok();
    let public =
        RsaPublicKey::from_public_key_pem(&std::fs::read_to_string(&pem).unwrap()).unwrap();
    let message = cards.path("message");
    let data = vec![0x5Au8; 4000];
    std::fs::write(&message, &data).unwrap();
    let sign = |mechanism: &str| -> Vec<u8> {
        on(
            &card,
            &[
                "sign",
                "--pin-env",
                "T_PIN",
                "--id",
                "3",
                "--mechanism",
                mechanism,
                "--input",
                message.to_str().unwrap(),
            ],
        )
        .ok()
        .raw_stdout
    };
    let pkcs1 = sign("rsa-pkcs1-sha256");
    assert_eq!(pkcs1.len(), 256);
    Pkcs1Key::<Sha256>::new(public.clone())
        .verify(&data, &Pkcs1Signature::try_from(pkcs1.as_slice()).unwrap())
        .unwrap();
    let pss = sign("rsa-pss-sha256");
    PssKey::<Sha256>::new(public)
        .verify(&data, &PssSignature::try_from(pss.as_slice()).unwrap())
        .unwrap();
    on(
        &card,
        &[
            "sign",
            "--id",
            "3",
            "--mechanism",
            "rsa-pkcs1-sha256",
            "--format",
            "raw",
        ],
    )
    .expect(2);
}

#[test]
fn dkek_shares_import_to_the_documented_kcv() {
    // sc-hsm-protocol.md §6.4: two shares of 32 x 01; their XOR is 32 zero bytes, KCV =
    // SHA-256(00 x 32)[0..8] = 66687AADF862BD77.
    let cards = Cards::new();
    let card = cards.card("a.card");
    initialise(&card, &["--dkek-shares", "2"]);
    let json = on(&card, &["dkek", "status", "--json"]).ok().json();
    assert_eq!(json["dkek"]["total"], 2);
    assert_eq!(json["dkek"]["outstanding"], 2);
    let share = cards.path("share.bin");
    std::fs::write(&share, [0x01u8; 32]).unwrap();
    let run = on(&card, &["dkek", "import", share.to_str().unwrap()]).ok();
    assert!(
        run.stdout.contains("1 share still to import"),
        "{}",
        run.stdout
    );
    // Keys cannot be generated while shares are outstanding.
    let run = on(
        &card,
        &["keygen", "--pin-env", "T_PIN", "--type", "ec:p256"],
    )
    .expect(1)
    .one_line_error();
    assert!(
        run.stderr.contains("DKEK shares are still outstanding"),
        "{}",
        run.stderr
    );
    // The second share as hex on stdin.
    let mut command = command(&["dkek", "import", "--hex", "--json", "--virtual", &card]);
    command
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = command.spawn().unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(format!("{}\n", "01".repeat(32)).as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(json["dkek"]["outstanding"], 0);
    assert_eq!(json["dkek"]["kcv"], "66687aadf862bd77");
    let run = on(&card, &["dkek", "status"]).ok();
    assert!(
        run.stdout
            .contains("2 of 2 shares imported, KCV 66687aadf862bd77; complete"),
        "{}",
        run.stdout
    );
    assert_eq!(status(&card)["dkek"]["complete"], true);
    // A third share: all are in.
    let run = on(&card, &["dkek", "import", share.to_str().unwrap()])
        .expect(1)
        .one_line_error();
    assert!(
        run.stderr.contains("all DKEK shares have been imported"),
        "{}",
        run.stderr
    );
    on(
        &card,
        &["keygen", "--pin-env", "T_PIN", "--type", "ec:p256"],
    )
    .ok();
}

#[test]
fn a_bad_dkek_share_file_changes_nothing() {
    let cards = Cards::new();
    let card = cards.card("a.card");
    initialise(&card, &["--dkek-shares", "1"]);
    let bad = cards.path("bad.hex");
    std::fs::write(&bad, "0102").unwrap();
    on(&card, &["dkek", "import", bad.to_str().unwrap()])
        .expect(2)
        .one_line_error();
    let encrypted = cards.path("share.pbe");
    std::fs::write(&encrypted, [b"Salted__".as_slice(), &[0u8; 56]].concat()).unwrap();
    let encrypted = encrypted.to_str().unwrap();
    // No password source and no terminal.
    let run = on(&card, &["dkek", "import", encrypted])
        .expect(2)
        .one_line_error();
    assert!(run.stderr.contains("--password-env"), "{}", run.stderr);
    let run = on(
        &card,
        &[
            "dkek",
            "import",
            encrypted,
            "--password-env",
            "T_PIN",
            "--pbe-iterations",
            "1",
        ],
    )
    .expect(2)
    .one_line_error();
    assert!(run.stderr.contains("wrong password"), "{}", run.stderr);
    assert_eq!(status(&card)["dkek"]["outstanding"], 1);
    let run = on(&card, &["dkek", "status"]).ok();
    assert!(
        run.stdout.contains("1 share still to import"),
        "{}",
        run.stdout
    );
}

#[test]
fn without_a_terminal_and_without_yes_init_is_refused() {
    let cards = Cards::new();
    let card = cards.card("a.card");
    let run = on(
        &card,
        &["init", "--so-pin-env", "T_SO_PIN", "--pin-env", "T_PIN"],
    )
    .expect(5)
    .one_line_error();
    assert!(run.stderr.contains("--yes"), "{}", run.stderr);
    assert!(
        run.stderr.contains("ZZTS"),
        "names the device: {}",
        run.stderr
    );
    assert_eq!(status(&card)["initialised"], false);
}

#[test]
fn bad_card_files_are_one_line_errors_with_exit_3() {
    let cards = Cards::new();
    let garbage = cards.path("garbage.card");
    std::fs::write(&garbage, b"this is not a card file").unwrap();
    let run = on(garbage.to_str().unwrap(), &["status"])
        .expect(3)
        .one_line_error();
    assert!(run.stderr.contains("garbage.card"), "{}", run.stderr);
    let missing = cards.path("no/such/dir/x.card");
    on(missing.to_str().unwrap(), &["status"])
        .expect(3)
        .one_line_error();
}

#[test]
fn usage_errors_exit_2_and_help_exits_0() {
    let help = run(&["--help"]).ok();
    assert!(help.stdout.contains("Exit codes:"), "{}", help.stdout);
    assert!(
        help.stdout.contains("6  cancelled by the user"),
        "{}",
        help.stdout
    );
    run(&["no-such-command"]).expect(2);
    run(&["keygen", "--type", "ec:p999", "--virtual", "x.card"]).expect(2);
    run(&["status", "--reader", "0", "--virtual", "x.card"]).expect(2);
    assert!(!std::path::Path::new("x.card").exists());
}

#[test]
fn list_json_parses() {
    // Whatever this machine has (no pcscd is an empty list, not an error).
    let json = run(&["list", "--json"]).ok().json();
    assert!(json["readers"].is_array());
    assert!(json["usb_devices"].is_array());
}

#[test]
fn an_encrypted_share_file_in_openssl_format_imports() {
    use sha2::{Digest, Sha256};

    // sc-hsm-tool's share file is OpenSSL's salted format (sc-hsm-protocol.md §3.6), with
    // 10 000 000 iterations; `openssl enc` makes the same with one.
    let cards = Cards::new();
    let card = cards.card("a.card");
    initialise(&card, &["--dkek-shares", "1"]);
    let share: Vec<u8> = (0u8..32).collect();
    let plain = cards.path("share.bin");
    std::fs::write(&plain, &share).unwrap();
    let encrypted = cards.path("share.pbe");
    let password = "correct horse 7421";
    let out = std::process::Command::new("openssl")
        .args([
            "enc",
            "-aes-256-cbc",
            "-md",
            "md5",
            "-pass",
            "env:T_SHARE_PASSWORD",
        ])
        .arg("-in")
        .arg(&plain)
        .arg("-out")
        .arg(&encrypted)
        .env("T_SHARE_PASSWORD", password)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(std::fs::read(&encrypted).unwrap().len(), 64);
    let mut import = command(&[
        "dkek",
        "import",
        encrypted.to_str().unwrap(),
        "--password-env",
        "T_SHARE_PASSWORD",
        "--pbe-iterations",
        "1",
        "--json",
        "--virtual",
        &card,
    ]);
    import.env("T_SHARE_PASSWORD", password);
    let run = run_command(import).ok();
    assert!(!run.text().contains(password));
    let kcv: String = Sha256::digest(&share)[..8]
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    assert_eq!(run.json()["dkek"]["kcv"], kcv.as_str());
    assert_eq!(run.json()["dkek"]["complete"], true);
}
