//! The confirmation rules, driven through a pseudo-terminal as a person at a terminal meets
//! them: the question names the device's serial and the SO-PIN tries left; "no" cancels with
//! exit 6 and spends nothing; `--yes` skips the question; one SO-PIN try left is refused
//! without `--force`. PINs typed at the prompts are not echoed and never printed.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod support;

use rexpect::process::WaitStatus;
use rexpect::session::{spawn_command, PtySession};
use support::*;

/// A `tessera` run on a pseudo-terminal, with everything it printed kept.
struct Pty {
    session: PtySession,
    transcript: String,
}

impl Pty {
    fn spawn(card: &str, args: &[&str]) -> Pty {
        let mut command = command(args);
        command.args(["--virtual", card]);
        // rexpect gives the child the terminal as stdin, stdout and stderr.
        command.stdin(std::process::Stdio::inherit());
        Pty {
            session: spawn_command(command, Some(20_000)).unwrap(),
            transcript: String::new(),
        }
    }

    /// Waits for `needle`.
    #[track_caller]
    fn expect(&mut self, needle: &str) {
        match self.session.exp_string(needle) {
            Ok(before) => {
                self.transcript.push_str(&before);
                self.transcript.push_str(needle);
            }
            Err(e) => panic!(
                "{needle:?} did not appear ({e}); so far:\n{}",
                self.transcript
            ),
        }
    }

    fn type_line(&mut self, line: &str) {
        self.session.send_line(line).unwrap();
    }

    /// Waits for the end; returns the exit code and the whole transcript, which holds no PIN.
    #[track_caller]
    fn finish(mut self) -> (i32, String) {
        let rest = self.session.exp_eof().unwrap_or_default();
        self.transcript.push_str(&rest);
        let code = match self.session.process().wait().unwrap() {
            WaitStatus::Exited(_, code) => code,
            other => panic!("tessera did not exit: {other:?}\n{}", self.transcript),
        };
        assert_no_secret(&self.transcript);
        (code, self.transcript)
    }
}

fn serial(card: &str) -> String {
    status(card)["serial"].as_str().unwrap().to_owned()
}

#[test]
fn the_question_names_the_serial_and_tries_and_no_cancels_with_exit_6() {
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
            "1",
        ],
    )
    .ok();
    on(
        &card,
        &["unblock", "--so-pin-env", "T_WRONG_SO_PIN", "--yes"],
    )
    .expect(4);
    let serial = serial(&card);

    let mut pty = Pty::spawn(
        &card,
        &["init", "--so-pin-env", "T_SO_PIN", "--pin-env", "T_PIN"],
    );
    pty.expect(&format!("About to re-initialise SmartCard-HSM {serial}"));
    pty.expect("Every key, certificate and data object on it is erased");
    pty.expect("SO-PIN tries left: 14 of 15");
    pty.expect("Type yes to go on: ");
    pty.type_line("no");
    let (code, transcript) = pty.finish();
    assert_eq!(code, 6, "{transcript}");
    assert!(transcript.contains("cancelled"), "{transcript}");
    // Nothing was spent, nothing erased.
    assert_eq!(so_tries(&card), Some(14));
    let keys = on(&card, &["keys", "--json"]).ok().json();
    assert_eq!(keys["keys"].as_array().unwrap().len(), 1);
}

#[test]
fn yes_at_the_question_goes_on() {
    let cards = Cards::new();
    let card = cards.card("a.card");
    initialise(&card, &[]);
    for _ in 0..3 {
        on(&card, &["verify", "--pin-env", "T_WRONG_PIN"]);
    }
    let serial = serial(&card);
    let mut pty = Pty::spawn(&card, &["unblock", "--so-pin-env", "T_SO_PIN"]);
    pty.expect(&format!(
        "About to unblock the user PIN of SmartCard-HSM {serial}"
    ));
    pty.expect("The user PIN is blocked.");
    pty.expect("SO-PIN tries left: 15 of 15");
    pty.expect("Type yes to go on: ");
    pty.type_line("yes");
    pty.expect("unblocked: 3 tries left");
    let (code, transcript) = pty.finish();
    assert_eq!(code, 0, "{transcript}");
}

#[test]
fn the_yes_flag_skips_the_question() {
    let cards = Cards::new();
    let card = cards.card("a.card");
    initialise(&card, &[]);
    let pty = Pty::spawn(&card, &["unblock", "--so-pin-env", "T_SO_PIN", "--yes"]);
    let (code, transcript) = pty.finish();
    assert_eq!(code, 0, "{transcript}");
    assert!(!transcript.contains("Type yes"), "{transcript}");
    assert!(transcript.contains("unblocked"), "{transcript}");
}

#[test]
fn one_so_pin_try_left_is_refused_without_force_even_at_a_terminal() {
    let cards = Cards::new();
    let card = cards.card("a.card");
    initialise(&card, &[]);
    for _ in 0..14 {
        on(
            &card,
            &["unblock", "--so-pin-env", "T_WRONG_SO_PIN", "--yes"],
        )
        .expect(4);
    }
    assert_eq!(so_tries(&card), Some(1));
    let serial = serial(&card);

    let pty = Pty::spawn(&card, &["unblock", "--so-pin-env", "T_SO_PIN"]);
    let (code, transcript) = pty.finish();
    assert_eq!(code, 5, "{transcript}");
    assert!(
        !transcript.contains("Type yes"),
        "no question: {transcript}"
    );
    assert!(transcript.contains(&serial), "{transcript}");
    assert!(transcript.contains("1 try left"), "{transcript}");
    assert!(transcript.contains("--force"), "{transcript}");
    assert_eq!(so_tries(&card), Some(1));

    // With --force the question comes, with the last try named; "no" still cancels.
    let mut pty = Pty::spawn(&card, &["unblock", "--so-pin-env", "T_SO_PIN", "--force"]);
    pty.expect("SO-PIN tries left: 1 of 15");
    pty.expect("Type yes to go on: ");
    pty.type_line("");
    let (code, transcript) = pty.finish();
    assert_eq!(code, 6, "{transcript}");
    assert_eq!(so_tries(&card), Some(1));

    // And "yes" with the right SO-PIN spends nothing: the counter is back to 15.
    let mut pty = Pty::spawn(&card, &["unblock", "--so-pin-env", "T_SO_PIN", "--force"]);
    pty.expect("Type yes to go on: ");
    pty.type_line("yes");
    let (code, transcript) = pty.finish();
    assert_eq!(code, 0, "{transcript}");
    assert_eq!(so_tries(&card), Some(15));
}

#[test]
fn change_so_pin_asks_first() {
    let cards = Cards::new();
    let card = cards.card("a.card");
    initialise(&card, &[]);
    let serial = serial(&card);
    let mut pty = Pty::spawn(
        &card,
        &[
            "change-pin",
            "--so",
            "--so-pin-env",
            "T_SO_PIN",
            "--new-pin-env",
            "T_NEW_SO_PIN",
        ],
    );
    pty.expect(&format!(
        "About to change the SO-PIN of SmartCard-HSM {serial}"
    ));
    pty.expect("Type yes to go on: ");
    pty.type_line("nope");
    let (code, _) = pty.finish();
    assert_eq!(code, 6);
    // The SO-PIN is unchanged.
    on(&card, &["unblock", "--so-pin-env", "T_SO_PIN", "--yes"]).ok();
}

#[test]
fn a_fresh_card_is_initialised_entirely_at_prompts_without_echo() {
    let cards = Cards::new();
    let card = cards.card("fresh.card");
    let serial = serial(&card);
    let mut pty = Pty::spawn(&card, &["init"]);
    pty.expect(&format!("About to initialise SmartCard-HSM {serial}"));
    pty.expect("The device has no SO-PIN yet: this sets it.");
    pty.expect("Type yes to go on: ");
    pty.type_line("yes");
    pty.expect("New SO-PIN (16 hex digits): ");
    pty.type_line(SO_PIN);
    pty.expect("Repeat the SO-PIN: ");
    pty.type_line(SO_PIN);
    pty.expect("New user PIN (6 to 16 characters): ");
    pty.type_line(PIN);
    pty.expect("Repeat the user PIN: ");
    pty.type_line(PIN);
    pty.expect("initialised SmartCard-HSM");
    let (code, transcript) = pty.finish();
    assert_eq!(code, 0, "{transcript}");
    // The PINs typed are the PINs set.
    on(&card, &["verify", "--pin-env", "T_PIN"]).ok();
    on(&card, &["unblock", "--so-pin-env", "T_SO_PIN", "--yes"]).ok();
}

#[test]
fn a_pin_typed_twice_differently_changes_nothing() {
    let cards = Cards::new();
    let card = cards.card("a.card");
    initialise(&card, &[]);
    let mut pty = Pty::spawn(&card, &["change-pin", "--pin-env", "T_PIN"]);
    pty.expect("New user PIN (6 to 16 characters): ");
    pty.type_line(NEW_PIN);
    pty.expect("Repeat the new user PIN: ");
    pty.type_line(WRONG_PIN);
    let (code, transcript) = pty.finish();
    assert_eq!(code, 2, "{transcript}");
    assert!(transcript.contains("differ"), "{transcript}");
    on(&card, &["verify", "--pin-env", "T_PIN"]).ok();
}

#[test]
fn verify_asks_for_the_pin_at_a_prompt() {
    let cards = Cards::new();
    let card = cards.card("a.card");
    initialise(&card, &[]);
    let mut pty = Pty::spawn(&card, &["verify"]);
    pty.expect("User PIN: ");
    pty.type_line(WRONG_PIN);
    pty.expect("wrong user PIN, 2 tries left");
    let (code, _) = pty.finish();
    assert_eq!(code, 4);
    let mut pty = Pty::spawn(&card, &["verify"]);
    pty.expect("User PIN: ");
    pty.type_line(PIN);
    pty.expect("user PIN verified");
    let (code, _) = pty.finish();
    assert_eq!(code, 0);
}
