//! `tessera` through PC/SC: a private pcscd with vpcd (tessera_testkit::PcscSandbox) and a
//! card served to it in this process, driven by the real binary without `--virtual`: the
//! default reader choice, init, status, verify's counter, list with serials; and bad
//! hardware: a card that answers garbage, a malformed device certificate, a reader or card
//! that is not there. Each ends in one line and an exit code, never a panic.
//!
//! Needs root, pcscd, vsmartcard-vpcd and iproute2 (CI installs them); without them these
//! tests fail with the sandbox's message. The binary is started from the test's thread, after
//! the sandbox, so it sees the private pcscd.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod support;

use std::time::Duration;

use support::*;
use tessera_card::memory::MemoryStorage;
use tessera_card::virtual_card::{AtrProfile, CardConfig, VirtualCard};
use tessera_card::vpcd::{self, ServeConfig, ServingCard, VpcdCard};
use tessera_testkit::PcscSandbox;

/// A private pcscd and one card served to it on `port`.
struct Bench<C: VpcdCard + Send + 'static> {
    serving: Option<ServingCard<C>>,
    sandbox: PcscSandbox,
    port: u16,
}

fn bench<C: VpcdCard + Send + 'static>(port: u16, card: C) -> Bench<C> {
    let mut sandbox = PcscSandbox::start(&[port]).unwrap_or_else(|e| panic!("{e}"));
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

impl<C: VpcdCard + Send + 'static> Bench<C> {
    fn reader(&self) -> String {
        self.sandbox
            .reader_name(self.port)
            .unwrap()
            .to_string_lossy()
            .into_owned()
    }
}

fn virtual_card(seed: u8) -> VirtualCard<MemoryStorage> {
    VirtualCard::new(
        MemoryStorage::new(),
        CardConfig::default(),
        [seed; 32],
        [seed; 32],
    )
    .unwrap()
}

/// `tessera init` on the default reader with the test PINs.
fn initialise_default() {
    run(&[
        "init",
        "--so-pin-env",
        "T_SO_PIN",
        "--pin-env",
        "T_PIN",
        "--yes",
    ])
    .ok();
}

#[test]
fn status_and_verify_work_through_pcsc_on_the_default_reader() {
    let bench = bench(35401, virtual_card(41));
    let reader = bench.reader();

    let run1 = run(&["status"]).ok();
    assert!(run1.stdout.contains("initialised: no"), "{}", run1.stdout);
    assert!(
        run1.stdout.contains(&format!("(reader {reader:?})")),
        "{}",
        run1.stdout
    );
    initialise_default();
    let json = run(&["status", "--json"]).ok().json();
    assert_eq!(json["device"]["transport"], "pcsc");
    assert_eq!(json["device"]["name"], reader.as_str());
    assert_eq!(json["user_pin"]["tries_left"], 3);
    assert_eq!(json["so_pin"]["tries_left"], 15);
    let serial = json["serial"].as_str().unwrap().to_owned();

    // verify's counter, through pcscd.
    run(&["verify", "--pin-env", "T_WRONG_PIN"])
        .expect(4)
        .one_line_error();
    let json = run(&["verify", "--pin-env", "T_PIN", "--json"]).ok().json();
    assert_eq!(json["verified"], true);
    assert_eq!(json["serial"], serial.as_str());
    // By name and by index.
    run(&["verify", "--pin-env", "T_PIN", "--reader", "Tessera vpcd"]).ok();
    let status = run(&["status", "--reader", &reader]).ok();
    assert!(
        status.stdout.contains("user PIN:    3 tries left"),
        "{}",
        status.stdout
    );

    // list names the reader, its card's serial, and the default.
    let list = run(&["list"]).ok();
    assert!(
        list.stdout
            .contains(&format!("{reader:?}: SmartCard-HSM {serial} [default]")),
        "{}",
        list.stdout
    );
    let json = run(&["list", "--json"]).ok().json();
    let readers = json["readers"].as_array().unwrap();
    let ours = readers
        .iter()
        .find(|r| r["name"] == reader.as_str())
        .unwrap();
    assert_eq!(ours["serial"], serial.as_str());
    assert_eq!(ours["default"], true);
    assert_eq!(ours["sc_hsm"], true);
}

#[test]
fn a_missing_reader_or_card_is_exit_3() {
    let mut bench = bench(35411, virtual_card(42));
    let run1 = run(&["status", "--reader", "no such reader"])
        .expect(3)
        .one_line_error();
    assert!(
        run1.stderr.contains("Tessera vpcd"),
        "lists the readers: {}",
        run1.stderr
    );
    run(&["status", "--reader", "9"]).expect(3).one_line_error();

    // The card goes away (the token is pulled).
    let reader = bench.reader();
    bench.serving.take().unwrap().stop().unwrap();
    wait_until_absent(&reader);
    let run2 = run(&["status", "--reader", &reader])
        .expect(3)
        .one_line_error();
    assert!(run2.stderr.contains("no card"), "{}", run2.stderr);
    run(&["status"]).expect(3).one_line_error();
}

/// Waits until pcscd reports no card in `reader`.
fn wait_until_absent(reader: &str) {
    let context = pcsc::Context::establish(pcsc::Scope::User).unwrap();
    let name = std::ffi::CString::new(reader).unwrap();
    let mut states = [pcsc::ReaderState::new(name, pcsc::State::UNAWARE)];
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

/// A card with a SmartCard-HSM ATR that answers every command with garbage: an unknown
/// status word, a lone byte, nothing, or a flood of bytes.
struct GarbageCard {
    answers: usize,
}

impl VpcdCard for GarbageCard {
    fn power_on(&mut self) {}
    fn power_off(&mut self) {}
    fn reset(&mut self) {}
    fn atr(&self) -> Vec<u8> {
        AtrProfile::V3.atr().to_vec()
    }
    fn transmit(&mut self, _command: &[u8]) -> Vec<u8> {
        self.answers += 1;
        match self.answers % 4 {
            0 => vec![0x13, 0x37],
            1 => vec![0x42],
            2 => vec![0x62, 0x03, 0x85, 0x01, 0xFF, 0x61, 0x00],
            _ => vec![0xA5; 300],
        }
    }
}

#[test]
fn a_card_that_answers_garbage_is_a_one_line_error() {
    let _bench = bench(35421, GarbageCard { answers: 0 });
    for args in [
        &["status"][..],
        &["status", "--json"],
        &["verify", "--pin-env", "T_PIN"],
        &["keys"],
        &["dkek", "status"],
        &["status"],
    ] {
        let run = run(args).one_line_error();
        assert!(
            run.code == 1 || run.code == 3,
            "{args:?}: exit {}: {}",
            run.code,
            run.stderr
        );
        assert!(run.stdout.is_empty(), "{}", run.stdout);
        eprintln!("{args:?} -> exit {}: {}", run.code, run.stderr.trim());
    }
}

/// The virtual card, but EF 2F02 (the device certificates) reads as garbage.
struct BadCertificateCard(VirtualCard<MemoryStorage>);

impl VpcdCard for BadCertificateCard {
    fn power_on(&mut self) {
        self.0.power_on();
    }
    fn power_off(&mut self) {
        self.0.power_off();
    }
    fn reset(&mut self) {
        self.0.reset();
    }
    fn atr(&self) -> Vec<u8> {
        VpcdCard::atr(&self.0)
    }
    fn transmit(&mut self, command: &[u8]) -> Vec<u8> {
        // READ BINARY (odd INS B1) of EF 2F02.
        if command.get(1..4) == Some(&[0xB1, 0x2F, 0x02][..]) {
            return vec![0x7F, 0x21, 0x81, 0xFF, 0x7F, 0x4E, 0x02, 0x90, 0x00];
        }
        self.0.transmit(command)
    }
}

#[test]
fn a_malformed_device_certificate_leaves_the_serial_unknown_and_the_rest_working() {
    let bench = bench(35431, BadCertificateCard(virtual_card(43)));
    let reader = bench.reader();
    let run1 = run(&["status"]).ok();
    eprintln!("{}", run1.stdout);
    assert!(run1.stdout.contains("serial unknown"), "{}", run1.stdout);
    assert!(
        run1.stdout.contains("device certificate"),
        "{}",
        run1.stdout
    );
    let json = run(&["status", "--json"]).ok().json();
    assert_eq!(json["serial"], serde_json::Value::Null);
    assert!(json["serial_error"].as_str().is_some());
    initialise_default();
    run(&["verify", "--pin-env", "T_PIN"]).ok();
    let run2 = run(&["verify", "--pin-env", "T_WRONG_PIN"]).expect(4);
    assert!(
        run2.stderr.contains("wrong user PIN, 2 tries left"),
        "{}",
        run2.stderr
    );
    // The confirmation names the device by its reader when the serial is unknown.
    let run3 = run(&["unblock", "--so-pin-env", "T_SO_PIN"]).expect(5);
    assert!(
        run3.stderr
            .contains(&format!("reader {reader:?} (serial unknown)")),
        "{}",
        run3.stderr
    );
}
