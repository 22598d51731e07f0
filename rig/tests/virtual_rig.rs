//! The virtual backend through the `Rig` API: boards boot (or not) on the card they are given,
//! a card's state lives in its file across power cycles and boards, transports end with the
//! enumeration they were opened on, hot insertion and a pull at a modelled instant.

use std::path::Path;
use std::time::Duration;

use tessera_rig::config::RigDescription;
use tessera_rig::{Need, Rig, RigErrorKind, Via};
use tessera_sc_hsm::{PinRole, PinStatus, ScHsm, TransportErrorKind};

fn rig(scratch: &Path) -> Rig {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("virtual.toml");
    let description = RigDescription::load(&path).expect("rig/virtual.toml");
    Rig::open(description, scratch).expect("virtual rig")
}

/// Connects `slot`'s card to the (off) `board`, powers it on and waits for enumeration.
fn boot(rig: &mut Rig, board: &str, slot: &str) {
    rig.select_sim(board, Some(slot)).unwrap();
    rig.power_on(board).unwrap();
    rig.wait_enumerated(board, Duration::from_secs(3)).unwrap();
}

#[test]
fn require_card_board_stays_off_the_bus_without_a_card_and_boots_with_one() {
    let dir = tempfile::tempdir().unwrap();
    let mut rig = rig(dir.path());
    rig.power_on("vreq").unwrap();
    let e = rig
        .wait_enumerated("vreq", Duration::from_secs(5))
        .unwrap_err();
    assert_eq!(e.kind(), RigErrorKind::Timeout, "{e}");
    rig.power_off("vreq").unwrap();
    rig.select_sim("vreq", Some("A")).unwrap();
    rig.power_on("vreq").unwrap();
    let seen = rig.wait_enumerated("vreq", Duration::from_secs(3)).unwrap();
    let serial = seen.serial.expect("serial string");
    assert!(serial.starts_with("ZZTS"), "{serial}");
    let mut t = rig.open_transport("vreq", Via::Usb).unwrap();
    let mut hsm = ScHsm::open(&mut *t).unwrap();
    assert_eq!(
        hsm.pin_status(PinRole::User).unwrap(),
        PinStatus::TriesLeft { tries_left: 3 }
    );
    // The USB serial is the first 15 characters of the device certificate's CHR; the card's
    // serial (as sc-hsm-tool shows it) is the CHR without its 5-digit sequence number.
    let card_serial = hsm.serial().unwrap();
    assert!(serial.starts_with(&card_serial), "{serial} / {card_serial}");
}

#[test]
fn a_wrong_pin_counts_on_the_card_across_power_cycles_and_boards() {
    let dir = tempfile::tempdir().unwrap();
    let mut rig = rig(dir.path());
    boot(&mut rig, "vreq", "B");
    {
        let mut t = rig.open_transport("vreq", Via::Usb).unwrap();
        let mut hsm = ScHsm::open(&mut *t).unwrap();
        let pin = rig.card_pins("B").unwrap().user.unwrap();
        assert!(hsm.verify(&wrong_pin(&pin)).is_err());
    }
    rig.power_off("vreq").unwrap();
    rig.select_sim("vreq", None).unwrap();
    rig.select_sim("vreader", Some("B")).unwrap();
    rig.power_on("vreader").unwrap();
    rig.wait_enumerated("vreader", Duration::from_secs(3))
        .unwrap();
    let mut t = rig.open_transport("vreader", Via::Usb).unwrap();
    let mut hsm = ScHsm::open(&mut *t).unwrap();
    assert_eq!(
        hsm.pin_status(PinRole::User).unwrap(),
        PinStatus::TriesLeft { tries_left: 2 }
    );
    let pins = rig.card_pins("B").unwrap();
    hsm.verify(pins.user.as_ref().unwrap()).unwrap();
}

#[test]
fn a_transport_ends_with_its_enumeration() {
    let dir = tempfile::tempdir().unwrap();
    let mut rig = rig(dir.path());
    rig.select_sim("vreader", Some("A")).unwrap();
    rig.power_on("vreader").unwrap();
    rig.wait_enumerated("vreader", Duration::from_secs(3))
        .unwrap();
    let mut t = rig.open_transport("vreader", Via::Usb).unwrap();
    rig.power_off("vreader").unwrap();
    rig.wait_absent("vreader", Duration::from_millis(10))
        .unwrap();
    rig.power_on("vreader").unwrap();
    rig.wait_enumerated("vreader", Duration::from_secs(3))
        .unwrap();
    let e = t.transmit(&[0x00, 0x84, 0x00, 0x00, 0x08]).unwrap_err();
    assert_eq!(e.kind(), TransportErrorKind::ReaderGone, "{e}");
}

#[test]
fn a_card_pushed_into_a_waiting_require_card_board_boots_it() {
    let dir = tempfile::tempdir().unwrap();
    let mut rig = rig(dir.path());
    rig.check("vreq", Need::HotSwap).unwrap();
    rig.power_on("vreq").unwrap();
    assert!(rig.wait_enumerated("vreq", Duration::from_secs(2)).is_err());
    rig.insert_sim("vreq", "A").unwrap();
    let seen = rig.wait_enumerated("vreq", Duration::from_secs(3)).unwrap();
    assert!(seen.serial.is_some());
    // The card is on vreq: no other board may have it, and vreq's socket is not empty.
    assert_eq!(
        rig.insert_sim("vreq", "B").unwrap_err().kind(),
        RigErrorKind::Refused
    );
    assert_eq!(
        rig.select_sim("vreader", Some("A")).unwrap_err().kind(),
        RigErrorKind::Refused
    );
}

#[test]
fn the_virtual_rig_has_no_probe_and_no_pcsc_and_says_why() {
    let dir = tempfile::tempdir().unwrap();
    let rig = rig(dir.path());
    let probe = rig.check("vreq", Need::Probe).unwrap_err();
    assert!(probe.reason.contains("nothing to flash"), "{probe}");
    let pcsc = rig.check("vreq", Need::Transport(Via::Pcsc)).unwrap_err();
    assert!(pcsc.reason.contains("pcscd"), "{pcsc}");
    rig.check("vreq", Need::Log).unwrap();
    rig.check("vreq", Need::SacrificialCard).unwrap();
}

#[test]
fn the_log_names_events_and_never_carries_bytes() {
    let dir = tempfile::tempdir().unwrap();
    let mut rig = rig(dir.path());
    boot(&mut rig, "vreq", "A");
    {
        let mut t = rig.open_transport("vreq", Via::Usb).unwrap();
        let mut hsm = ScHsm::open(&mut *t).unwrap();
        let pins = rig.card_pins("A").unwrap();
        hsm.verify(pins.user.as_ref().unwrap()).unwrap();
    }
    let log = rig.take_log("vreq").unwrap();
    assert!(
        log.iter().any(|r| r.text.starts_with("USB attach")),
        "{log:?}"
    );
    let pins = rig.card_pins("A").unwrap();
    let pin = String::from_utf8(pins.user.unwrap().as_bytes().to_vec()).unwrap();
    assert!(log.iter().all(|r| !r.text.contains(&pin)));
}

#[test]
fn a_virtual_rig_file_with_a_stock_board_is_refused_with_its_line() {
    let text = std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("virtual.toml"))
        .unwrap()
        .replacen("firmware = \"tessera-reader\"", "firmware = \"stock\"", 1);
    let e = RigDescription::parse(&text, "virtual-stock.toml").unwrap_err();
    let line = e.to_string();
    assert!(
        line.contains("stock firmware exists only on real boards"),
        "{line}"
    );
    assert!(e.location().is_some(), "{line}");
}

#[test]
fn a_long_wait_keeps_the_controller_fed_and_the_board_on() {
    let dir = tempfile::tempdir().unwrap();
    let mut rig = rig(dir.path());
    rig.select_sim("vreader", Some("A")).unwrap();
    rig.power_on("vreader").unwrap();
    rig.wait_enumerated("vreader", Duration::from_secs(3))
        .unwrap();
    // Six watchdog periods of modelled time with no request from the test: the keep-alive
    // must hold the controller's watchdog off, as the real backend's thread does.
    rig.pause(Duration::from_secs(30));
    rig.wait_enumerated("vreader", Duration::ZERO).unwrap();
    let mut t = rig.open_transport("vreader", Via::Usb).unwrap();
    ScHsm::open(&mut *t).unwrap();
}

#[test]
fn a_pull_happens_at_its_instant_and_a_new_selection_cancels_it() {
    let dir = tempfile::tempdir().unwrap();
    let mut rig = rig(dir.path());
    boot(&mut rig, "vreader", "A");
    rig.pull_sim("vreader", Duration::from_millis(2000))
        .unwrap();
    rig.pause(Duration::from_millis(1000));
    // Opening the card takes modelled time too (power-on, ATR, PPS): well before the pull.
    assert!(
        rig.open_transport("vreader", Via::Usb).is_ok(),
        "pulled too early"
    );
    rig.pause(Duration::from_millis(1100));
    assert!(
        rig.open_transport("vreader", Via::Usb).is_err(),
        "not pulled"
    );

    // A pull scheduled, then the card selected again before it happens: it stays.
    rig.power_off("vreader").unwrap();
    boot(&mut rig, "vreader", "A");
    rig.pull_sim("vreader", Duration::from_millis(300)).unwrap();
    rig.power_off("vreader").unwrap();
    boot(&mut rig, "vreader", "A");
    rig.pause(Duration::from_secs(1));
    let mut t = rig.open_transport("vreader", Via::Usb).unwrap();
    ScHsm::open(&mut *t).unwrap();
}

#[test]
fn a_scratch_directory_keeps_its_cards_and_their_pins_across_rigs() {
    let dir = tempfile::tempdir().unwrap();
    let (serial, pin) = {
        let mut rig = rig(dir.path());
        boot(&mut rig, "vreader", "B");
        let mut t = rig.open_transport("vreader", Via::Usb).unwrap();
        let mut hsm = ScHsm::open(&mut *t).unwrap();
        let pin = rig.card_pins("B").unwrap().user.unwrap();
        hsm.verify(&wrong_pin(&pin)).unwrap_err();
        (hsm.serial().unwrap(), pin)
    };
    let mut rig = rig(dir.path());
    boot(&mut rig, "vreq", "B");
    let mut t = rig.open_transport("vreq", Via::Usb).unwrap();
    let mut hsm = ScHsm::open(&mut *t).unwrap();
    assert_eq!(hsm.serial().unwrap(), serial);
    assert_eq!(
        hsm.pin_status(PinRole::User).unwrap(),
        PinStatus::TriesLeft { tries_left: 2 }
    );
    let again = rig.card_pins("B").unwrap().user.unwrap();
    assert_eq!(again.as_bytes(), pin.as_bytes(), "the same made-up PIN");
    hsm.verify(&again).unwrap();
    assert!(!dir.path().join("card-b.card.new").exists());
}

/// A PIN of the same length that differs in every digit.
fn wrong_pin(pin: &tessera_sc_hsm::Pin) -> tessera_sc_hsm::Pin {
    let wrong: Vec<u8> = pin
        .as_bytes()
        .iter()
        .map(|b| if *b == b'1' { b'2' } else { b'1' })
        .collect();
    tessera_sc_hsm::Pin::from_bytes(&wrong).unwrap()
}
