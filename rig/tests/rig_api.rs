//! The `Rig` rules, black-box, on the real backend whose controller is the virtual controller
//! on a pseudo-terminal (no USB, no hub, no probe: what this machine has).

use std::time::Duration;

use tessera_rig::config::RigDescription;
use tessera_rig::controller::pty::{Faults, PtyController};
use tessera_rig::controller::{ControllerSpec, SwitchEvent, VirtualController};
use tessera_rig::real::RealBackend;
use tessera_rig::{Need, PowerState, Rig, RigErrorKind, Via};

fn description(port: &str, pin_dir: &std::path::Path) -> RigDescription {
    let text = format!(
        r#"
name = "pty-rig"
backend = "real"

[controller]
port = "{port}"
timeout_ms = 150
retries = 2

[[board]]
name = "b0"
kind = "nitrokey-hsm2"
firmware = "tessera-reader"
probe = "0483:3748"
usb = {{ path = "1-1" }}
power = "controller:0"
sim = "controller:0"

[[board]]
name = "b1"
kind = "nitrokey-hsm2"
firmware = "stock"
usb = {{ path = "1-2" }}
power = "controller:1"
sim = "controller:1"

[[board]]
name = "b2"
kind = "nitrokey-hsm2"
firmware = "tessera-require-card"
usb = {{ path = "1-3" }}
power = "none"
sim = "none"

[[slot]]
name = "A"
position = 0
[slot.card]
label = "card-a"
user_pin = {{ env = "TESSERA_RIG_TEST_USER_PIN" }}
so_pin = {{ file = "{so_pin}" }}

[[slot]]
name = "B"
position = 1
[slot.card]
label = "card-b"
user_pin = {{ env = "TESSERA_RIG_TEST_UNSET_PIN" }}

[[slot]]
name = "empty"
position = 2
"#,
        so_pin = pin_dir.join("so-pin").display()
    );
    RigDescription::parse(&text, "pty-rig.toml").expect("test rig file")
}

struct Setup {
    pty: PtyController,
    rig: Rig,
    _dir: tempfile::TempDir,
}

fn setup_with(controller: VirtualController, faults: Faults) -> Setup {
    let pty = PtyController::spawn(controller, faults).expect("pty");
    let dir = tempfile::tempdir().expect("tempdir");
    let description = description(pty.path().to_str().expect("utf-8"), dir.path());
    let backend = RealBackend::open(&description).expect("real backend");
    let rig = Rig::new(description, Box::new(backend)).expect("rig");
    Setup {
        pty,
        rig,
        _dir: dir,
    }
}

fn setup() -> Setup {
    setup_with(
        VirtualController::new(ControllerSpec::new(2, 2, 3)),
        Faults::default(),
    )
}

#[test]
fn a_new_rig_starts_with_every_board_off_and_no_sim() {
    let mut controller = VirtualController::new(ControllerSpec::new(2, 2, 3));
    // A previous run left board 1 powered with card B.
    for (seq, request) in [(1, "HELLO 1"), (2, "SIM 1 1"), (3, "POWER 1 ON")] {
        let line = tessera_rig::controller::protocol::Frame::encode(seq, &request);
        controller.receive(line.as_bytes(), Duration::ZERO);
    }
    assert!(controller.is_powered(1));
    let s = setup_with(controller, Faults::default());
    let c = s.pty.controller();
    assert!(!c.is_powered(0) && !c.is_powered(1));
    assert_eq!((c.connected(0), c.connected(1)), (None, None));
    drop(c);
    assert_eq!(s.rig.power_state("b0").unwrap(), PowerState::Off);
    assert_eq!(s.rig.power_state("b2").unwrap(), PowerState::Unswitched);
    assert!(s.rig.selected_sim("b0").unwrap().is_none());
}

#[test]
fn a_sim_is_selected_break_before_make_while_the_board_is_off() {
    let mut s = setup();
    s.pty.controller().take_events();
    s.rig.select_sim("b0", Some("A")).unwrap();
    s.rig.select_sim("b0", Some("B")).unwrap();
    assert_eq!(s.pty.controller().connected(0), Some(1));
    assert_eq!(
        s.rig.selected_sim("b0").unwrap().map(|s| s.name.as_str()),
        Some("B")
    );
    assert_eq!(
        s.pty.controller().take_events(),
        [
            SwitchEvent::Disconnect { mux: 0 },
            SwitchEvent::Connect {
                mux: 0,
                position: 0
            },
            SwitchEvent::Disconnect { mux: 0 },
            SwitchEvent::Connect {
                mux: 0,
                position: 1
            },
        ]
    );
}

#[test]
fn selecting_a_sim_while_the_board_is_powered_is_refused_and_changes_nothing() {
    let mut s = setup();
    s.rig.select_sim("b0", Some("A")).unwrap();
    s.rig.power_on("b0").unwrap();
    s.pty.controller().take_events();
    let err = s.rig.select_sim("b0", Some("B")).unwrap_err();
    assert_eq!(err.kind(), RigErrorKind::Refused);
    assert!(err.to_string().contains("power_off first"), "{err}");
    let err = s.rig.select_sim("b0", None).unwrap_err();
    assert_eq!(err.kind(), RigErrorKind::Refused);
    // Nothing reached the controller; the board stays on with its card.
    assert_eq!(s.pty.controller().take_events(), []);
    assert!(s.pty.controller().is_powered(0));
    assert_eq!(s.pty.controller().connected(0), Some(0));
    assert_eq!(s.rig.power_state("b0").unwrap(), PowerState::On);
}

#[test]
fn a_card_is_connected_to_one_board_at_a_time() {
    let mut s = setup();
    s.rig.select_sim("b0", Some("A")).unwrap();
    let err = s.rig.select_sim("b1", Some("A")).unwrap_err();
    assert_eq!(err.kind(), RigErrorKind::Refused);
    assert!(err.to_string().contains("connected to board b0"), "{err}");
    s.rig.select_sim("b0", Some("empty")).unwrap();
    s.rig.select_sim("b1", Some("A")).unwrap();
    assert_eq!(s.pty.controller().connected(1), Some(0));
}

#[test]
fn power_switches_the_boards_channel() {
    let mut s = setup();
    s.rig.power_on("b1").unwrap();
    assert!(s.pty.controller().is_powered(1));
    assert_eq!(s.rig.power_state("b1").unwrap(), PowerState::On);
    s.rig.power_off("b1").unwrap();
    assert!(!s.pty.controller().is_powered(1));
}

#[test]
fn a_board_without_switches_cannot_be_powered_or_given_a_sim() {
    let mut s = setup();
    let err = s.rig.power_off("b2").unwrap_err();
    assert_eq!(err.kind(), RigErrorKind::Unsupported);
    assert!(err.to_string().contains("power = \"none\""), "{err}");
    let err = s.rig.select_sim("b2", Some("A")).unwrap_err();
    assert_eq!(err.kind(), RigErrorKind::Unsupported);
}

#[test]
fn unknown_boards_and_slots_are_named_with_the_known_ones() {
    let mut s = setup();
    let err = s.rig.power_on("b9").unwrap_err();
    assert_eq!(err.kind(), RigErrorKind::UnknownBoard);
    assert_eq!(
        err.to_string(),
        "rig pty-rig: no board called \"b9\" (boards: b0, b1, b2)"
    );
    let err = s.rig.select_sim("b0", Some("Z")).unwrap_err();
    assert_eq!(err.kind(), RigErrorKind::UnknownSlot);
    assert!(err.to_string().contains("(slots: A, B, empty)"), "{err}");
}

#[test]
fn checks_say_what_the_rig_lacks_and_why() {
    let s = setup();
    let rig = &s.rig;
    assert_eq!(rig.check("b0", Need::PowerSwitch), Ok(()));
    assert_eq!(rig.check("b0", Need::SimSwitch), Ok(()));
    assert_eq!(rig.check("b0", Need::EmptySlot), Ok(()));
    assert_eq!(rig.check("b0", Need::Cards(2)), Ok(()));
    assert_eq!(rig.check("b0", Need::Transport(Via::Usb)), Ok(()));

    let reason = |board: &str, need| rig.check(board, need).unwrap_err().reason;
    assert!(reason("b0", Need::Cards(3)).contains("has 2 card(s)"));
    assert!(reason("b0", Need::SacrificialCard).contains("no card marked sacrificial = true"));
    assert!(reason("b0", Need::Hub).contains("not powered through a hub port"));
    assert!(reason("b1", Need::Probe).contains("no probe"));
    assert!(reason("b1", Need::TesseraFirmware).contains("stock"));
    assert!(reason("b2", Need::PowerSwitch).contains("power = \"none\""));
    assert!(reason("b2", Need::EmptySlot).contains("sim = \"none\""));
    if cfg!(not(feature = "probe")) {
        assert!(reason("b0", Need::Probe).contains("`probe` feature"));
        assert!(reason("b0", Need::Log).contains("`probe` feature"));
    }
    let missing = rig.check("b0", Need::SacrificialCard).unwrap_err();
    assert!(missing
        .to_string()
        .starts_with("board b0 needs a sacrificial card: "));
}

#[test]
fn flashing_without_a_probe_is_unsupported_with_the_reason() {
    let mut s = setup();
    s.rig.power_on("b1").unwrap();
    let err = s
        .rig
        .flash("b1", std::path::Path::new("fw.elf"))
        .unwrap_err();
    assert_eq!(err.kind(), RigErrorKind::Unsupported);
    assert!(err.to_string().contains("no probe"), "{err}");
}

#[test]
fn waiting_for_enumeration_times_out_and_leaves_power_alone() {
    // No USB device exists on the project's machines: the board never appears.
    let mut s = setup();
    s.rig.power_on("b0").unwrap();
    let err = s
        .rig
        .wait_enumerated("b0", Duration::from_millis(200))
        .unwrap_err();
    assert_eq!(err.kind(), RigErrorKind::Timeout);
    assert_eq!(
        err.to_string(),
        "board b0: USB enumeration did not happen within 200 ms"
    );
    assert!(
        s.pty.controller().is_powered(0),
        "a timeout is an outcome, not a failure"
    );
    s.rig
        .wait_absent("b0", Duration::from_millis(200))
        .expect("absent");
}

#[test]
fn a_controller_failure_powers_every_board_off() {
    let mut s = setup_with(
        VirtualController::new(ControllerSpec::new(2, 2, 3)),
        Faults {
            drop_matching: vec!["POWER 1 ON".into()],
            ..Faults::default()
        },
    );
    s.rig.power_on("b0").unwrap();
    let err = s.rig.power_on("b1").unwrap_err();
    assert_eq!(err.kind(), RigErrorKind::Controller);
    assert!(
        err.to_string().contains("every board was powered off"),
        "{err}"
    );
    let c = s.pty.controller();
    assert!(!c.is_powered(0) && !c.is_powered(1));
    drop(c);
    assert_eq!(s.rig.power_state("b0").unwrap(), PowerState::Off);
}

#[test]
fn dropping_the_rig_powers_every_board_off() {
    let mut s = setup();
    s.rig.power_on("b0").unwrap();
    s.rig.power_on("b1").unwrap();
    let Setup { pty, rig, _dir } = s;
    drop(rig);
    let c = pty.controller();
    assert!(!c.is_powered(0) && !c.is_powered(1));
}

#[test]
fn card_pins_are_read_from_env_and_file_and_never_shown() {
    let mut s = setup();
    std::fs::write(s._dir.path().join("so-pin"), "3537363231383830\n").unwrap();
    std::env::set_var("TESSERA_RIG_TEST_USER_PIN", "648219");
    let pins = s.rig.card_pins("A").unwrap();
    assert_eq!(
        pins.user.as_ref().map(|p| p.as_bytes().to_vec()),
        Some(b"648219".to_vec())
    );
    assert_eq!(
        pins.so.as_ref().map(|p| *p.as_bytes()),
        Some([0x35, 0x37, 0x36, 0x32, 0x31, 0x38, 0x38, 0x30])
    );
    let shown = format!("{pins:?}");
    assert!(
        !shown.contains("648219") && !shown.contains("3537"),
        "{shown}"
    );

    let err = s.rig.card_pins("B").unwrap_err();
    assert_eq!(err.kind(), RigErrorKind::Pin);
    assert_eq!(
        err.to_string(),
        "card card-b: user PIN: environment variable TESSERA_RIG_TEST_UNSET_PIN is not set (or not UTF-8)"
    );
    let err = s.rig.card_pins("empty").unwrap_err();
    assert!(err.to_string().contains("holds no card"), "{err}");
}

#[test]
fn a_bad_pin_in_a_file_is_refused_without_repeating_it() {
    let mut s = setup();
    std::fs::write(s._dir.path().join("so-pin"), "not-a-hex-so-pin\n").unwrap();
    std::env::set_var("TESSERA_RIG_TEST_USER_PIN", "648219");
    let err = s.rig.card_pins("A").unwrap_err();
    assert_eq!(err.kind(), RigErrorKind::Pin);
    assert!(!err.to_string().contains("not-a-hex"), "{err}");
}

#[test]
fn a_serial_port_that_does_not_exist_is_one_clear_line() {
    let dir = tempfile::tempdir().unwrap();
    let description = description("/dev/tessera-no-such-port", dir.path());
    let err = RealBackend::open(&description).unwrap_err();
    assert_eq!(err.kind(), RigErrorKind::Controller);
    let text = err.to_string();
    assert!(
        text.starts_with("rig controller: opening /dev/tessera-no-such-port: "),
        "{text}"
    );
    assert!(!text.contains('\n'));
}

#[test]
fn a_serial_port_that_does_not_answer_times_out() {
    let pty = PtyController::spawn(
        VirtualController::new(ControllerSpec::new(2, 2, 3)),
        Faults {
            mute: true,
            ..Faults::default()
        },
    )
    .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let description = description(pty.path().to_str().unwrap(), dir.path());
    let err = RealBackend::open(&description).unwrap_err();
    assert_eq!(err.kind(), RigErrorKind::Controller);
    assert!(
        err.to_string().contains("HELLO 1: no answer after 3 tries"),
        "{err}"
    );
}

#[test]
fn a_controller_smaller_than_the_rig_file_is_refused() {
    let pty = PtyController::spawn(
        VirtualController::new(ControllerSpec::new(1, 2, 3)),
        Faults::default(),
    )
    .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let description = description(pty.path().to_str().unwrap(), dir.path());
    let err = RealBackend::open(&description).unwrap_err();
    assert!(
        err.to_string()
            .contains("has 1 power channels, but pty-rig.toml uses 2"),
        "{err}"
    );
}
