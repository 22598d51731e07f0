//! `tessera virtual serve` end to end: the binary serves a card file to a private pcscd (through
//! vpcd), OpenSC's sc-hsm-tool initialises it, and the state is in the file after a restart.
//!
//! Needs root, pcscd, vsmartcard-vpcd, iproute2 and opensc (CI installs them).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::Path;
use std::process::{Child, Command, Output, Stdio};
use std::time::Duration;

use tessera_testkit::PcscSandbox;

fn serve(card: &Path, port: u16) -> Child {
    Command::new(env!("CARGO_BIN_EXE_tessera"))
        .args([
            "virtual",
            "serve",
            "--seed",
            "test",
            "--ports",
            &port.to_string(),
        ])
        .arg(card)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap()
}

/// Stop the server as a user would (Ctrl-C) and return what it printed.
fn interrupt(child: Child) -> Output {
    let status = Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    child.wait_with_output().unwrap()
}

/// Wait until pcscd reports no card in `reader`.
fn wait_until_absent(reader: &std::ffi::CStr) {
    let context = pcsc::Context::establish(pcsc::Scope::User).unwrap();
    let mut states = [pcsc::ReaderState::new(
        reader.to_owned(),
        pcsc::State::UNAWARE,
    )];
    for _ in 0..100 {
        context
            .get_status_change(Duration::from_millis(100), &mut states)
            .ok();
        if !states[0].event_state().contains(pcsc::State::PRESENT) {
            return;
        }
        states[0].sync_current_state();
    }
    panic!("pcscd still reports a card in {reader:?}");
}

fn text(out: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

fn squeeze(s: &str) -> String {
    s.split(' ')
        .filter(|w| !w.is_empty())
        .collect::<Vec<_>>()
        .join(" ")
}

#[test]
fn serve_creates_the_card_file_and_keeps_its_state_across_restarts() {
    let port = 35301;
    let mut sandbox = PcscSandbox::start(&[port]).unwrap_or_else(|e| panic!("{e}"));
    let dir = sandbox.dir().to_path_buf();
    let card = dir.join("token.card");

    let server = serve(&card, port);
    sandbox
        .wait_for_card(port, Duration::from_secs(20))
        .unwrap_or_else(|e| panic!("{e}"));
    assert!(card.exists(), "the card file is created on first use");
    let init = Command::new("sc-hsm-tool")
        .args([
            "--initialize",
            "--so-pin",
            "3537363231383830",
            "--pin",
            "648219",
        ])
        .output()
        .unwrap();
    assert!(init.status.success(), "{}", text(&init));
    let said = text(&interrupt(server));
    assert!(said.contains("created card ZZTS"), "{said}");
    assert!(said.contains("stopped after"), "{said}");

    // Served again from the same file: still initialised, same serial. Wait until pcscd has
    // seen the first card go, so that the next wait sees the new connection.
    let reader = sandbox.reader_name(port).unwrap();
    wait_until_absent(&reader);
    let server = serve(&card, port);
    sandbox
        .wait_for_card(port, Duration::from_secs(20))
        .unwrap_or_else(|e| panic!("{e}"));
    let info = Command::new("sc-hsm-tool").output().unwrap();
    let info = squeeze(&text(&info));
    assert!(info.contains("SO-PIN tries left : 15"), "{info}");
    assert!(info.contains("User PIN tries left : 3"), "{info}");
    let said = text(&interrupt(server));
    assert!(said.contains("serving card ZZTS"), "{said}");
}

#[test]
fn mismatched_ports_are_a_usage_error_that_says_what_to_do() {
    let out = Command::new(env!("CARGO_BIN_EXE_tessera"))
        .args(["virtual", "serve", "--ports", "35963", "a.card", "b.card"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2), "a usage error exits 2");
    assert!(
        text(&out).contains("give one port per card"),
        "{}",
        text(&out)
    );
    assert!(
        !Path::new("a.card").exists(),
        "no card file is created on a usage error"
    );
}
