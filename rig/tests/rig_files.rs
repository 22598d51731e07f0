//! Rig files: the shipped ones parse to what they say, and bad files give one-line errors with
//! the line, the column, the key path and the reason.

use std::path::Path;

use tessera_rig::config::{
    BackendKind, FirmwareProfile, PinSource, PowerSwitch, ProbeSelector, RigDescription,
    RigFileErrorKind, SimSwitch, VirtualAtr, NITROKEY_HSM2_USB,
};

fn rig_dir() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

#[test]
fn virtual_rig_parses_with_two_boards_two_cards_and_an_empty_slot() {
    let rig = RigDescription::load(&rig_dir().join("virtual.toml")).expect("virtual.toml");
    assert_eq!(rig.name, "virtual");
    assert_eq!(rig.backend, BackendKind::Virtual);
    assert!(rig.controller.is_none() && rig.hub.is_none());

    let profiles: Vec<_> = rig.boards.iter().map(|b| b.firmware).collect();
    assert_eq!(
        profiles,
        [
            FirmwareProfile::TesseraRequireCard,
            FirmwareProfile::TesseraReader
        ]
    );
    for (i, board) in rig.boards.iter().enumerate() {
        let channel = u8::try_from(i).unwrap();
        assert_eq!(board.power, PowerSwitch::Controller(channel));
        assert_eq!(board.sim, SimSwitch::Controller(channel));
        assert_eq!(board.usb.id, NITROKEY_HSM2_USB);
        assert_eq!(board.probe, None);
    }

    let a = rig.slot("A").and_then(|s| s.card.as_ref()).expect("card A");
    let b = rig.slot("B").and_then(|s| s.card.as_ref()).expect("card B");
    assert_eq!(a.user_pin, Some(PinSource::Generated));
    assert_eq!(a.so_pin, Some(PinSource::Generated));
    assert_eq!(a.virtual_card.as_ref().map(|v| v.atr), Some(VirtualAtr::V3));
    assert_eq!(b.virtual_card.as_ref().map(|v| v.atr), Some(VirtualAtr::V4));
    assert_eq!(
        a.virtual_card.as_ref().map(|v| v.seed.as_str()),
        Some("card-a")
    );
    assert!(rig.is_expendable(a), "virtual cards are expendable");
    assert!(rig.slot("empty").expect("empty slot").card.is_none());
    assert_eq!(rig.controller_channels(), (2, 2));
    assert_eq!(rig.controller_positions(), 3);
}

#[test]
fn example_lab_rig_parses_with_hub_controller_and_probes() {
    let path = rig_dir().join("example-lab.toml");
    let rig = RigDescription::load(&path).expect("example-lab.toml");
    assert_eq!(rig.backend, BackendKind::Real);
    let controller = rig.controller.as_ref().expect("controller");
    assert!(controller.port.starts_with("/dev/serial/by-id/"));
    assert_eq!(controller.baud, 115_200);
    let hub = rig.hub.as_ref().expect("hub");
    assert_eq!(hub.location, "1-1");
    assert_eq!(hub.ports, [1, 2, 3, 4]);

    let ours = rig.board("hsm2-ours").expect("hsm2-ours");
    assert_eq!(ours.firmware, FirmwareProfile::TesseraReader);
    assert_eq!(ours.power, PowerSwitch::Hub(2));
    assert_eq!(ours.sim, SimSwitch::Controller(0));
    assert_eq!(ours.usb.path.as_deref(), Some("1-1.2"));
    assert_eq!(ours.chip, "STM32F103TB");
    assert_eq!(
        ours.probe,
        ProbeSelector::parse("0483:3748:066DFF535154887767154120")
    );
    let stock = rig.board("hsm2-stock").expect("hsm2-stock");
    assert_eq!(stock.firmware, FirmwareProfile::Stock);
    assert_eq!(stock.power, PowerSwitch::Controller(1));

    let a = rig.slot("A").and_then(|s| s.card.as_ref()).expect("card A");
    assert_eq!(a.serial.as_deref(), Some("DENK0100001"));
    assert_eq!(
        a.user_pin,
        Some(PinSource::Env("TESSERA_RIG_CARD_A_USER_PIN".into()))
    );
    assert_eq!(
        a.so_pin,
        Some(PinSource::File("/etc/tessera-rig/card-a.so-pin".into()))
    );
    assert!(!rig.is_expendable(a), "card A is precious");
    let b = rig.slot("B").and_then(|s| s.card.as_ref()).expect("card B");
    assert!(rig.is_expendable(b), "card B is sacrificial");
    assert!(a.virtual_card.is_none());
    assert_eq!(rig.slot("empty").map(|s| s.position), Some(2));
}

#[test]
fn relative_pin_files_are_relative_to_the_rig_file() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("r.toml");
    std::fs::write(
        &path,
        format!("{REAL_HEAD}{BOARD}\n[[slot]]\nname = \"A\"\nposition = 0\n[slot.card]\nlabel = \"a\"\nuser_pin = {{ file = \"pins/a\" }}\n"),
    )
    .unwrap();
    let rig = RigDescription::load(&path).unwrap();
    let card = rig.slot("A").and_then(|s| s.card.as_ref()).unwrap();
    assert_eq!(
        card.user_pin,
        Some(PinSource::File(dir.path().join("pins/a")))
    );
}

#[test]
fn a_missing_file_is_a_read_error_naming_it() {
    let err = RigDescription::load(Path::new("/nonexistent/rig.toml")).unwrap_err();
    assert_eq!(err.kind(), RigFileErrorKind::Read);
    assert!(err
        .to_string()
        .starts_with("/nonexistent/rig.toml: cannot read"));
}

const REAL_HEAD: &str = "name = \"t\"\nbackend = \"real\"\n[controller]\nport = \"/dev/ttyUSB0\"\n";
const BOARD: &str = "[[board]]\nname = \"d\"\nkind = \"nitrokey-hsm2\"\nfirmware = \"stock\"\npower = \"controller:0\"\nsim = \"controller:0\"\n";

/// One bad file: its text, then the expected kind, line, column, key and a piece of the message.
struct Bad {
    name: &'static str,
    text: String,
    kind: RigFileErrorKind,
    at: (usize, usize),
    key: &'static str,
    says: &'static str,
}

fn bad(
    name: &'static str,
    text: impl Into<String>,
    kind: RigFileErrorKind,
    at: (usize, usize),
    key: &'static str,
    says: &'static str,
) -> Bad {
    Bad {
        name,
        text: text.into(),
        kind,
        at,
        key,
        says,
    }
}

#[test]
fn bad_rig_files_give_line_column_key_and_reason() {
    use RigFileErrorKind::*;
    let real_board = |extra: &str| format!("{REAL_HEAD}{BOARD}{extra}");
    // Line numbers: REAL_HEAD is 4 lines, BOARD 6 more (board keys on lines 6..=10).
    let cases = [
        bad(
            "a typo'd key",
            format!("{REAL_HEAD}[[board]]\nname = \"d\"\nkind = \"nitrokey-hsm2\"\nfirmwre = \"stock\"\n"),
            UnknownKey,
            (8, 1),
            "board[0].firmwre",
            "unknown field `firmwre`",
        ),
        bad(
            "a typo'd key at the top",
            format!("nme = \"t\"\n{REAL_HEAD}"),
            UnknownKey,
            (1, 1),
            "nme",
            "unknown field `nme`",
        ),
        bad(
            "a wrong type",
            real_board("[[slot]]\nname = \"A\"\nposition = \"zero\"\n"),
            WrongType,
            (13, 12),
            "slot[0].position",
            "invalid type: string \"zero\", expected u8",
        ),
        bad(
            "a wrong type in the controller",
            format!("name = \"t\"\nbackend = \"real\"\n[controller]\nport = \"/dev/x\"\nbaud = \"fast\"\n{BOARD}"),
            WrongType,
            (5, 8),
            "controller.baud",
            "invalid type",
        ),
        bad(
            "a missing field",
            format!("{REAL_HEAD}[[board]]\nname = \"d\"\nkind = \"nitrokey-hsm2\"\npower = \"none\"\nsim = \"none\"\n"),
            MissingKey,
            (5, 1),
            "board[0]",
            "missing field `firmware`",
        ),
        bad(
            "no board at all",
            REAL_HEAD,
            MissingKey,
            (1, 1),
            "board",
            "at least one [[board]]",
        ),
        bad(
            "an unknown board kind",
            format!("{REAL_HEAD}[[board]]\nname = \"d\"\nkind = \"nitrokey-pro\"\nfirmware = \"stock\"\npower = \"none\"\nsim = \"none\"\n"),
            BadValue,
            (7, 8),
            "board[0].kind",
            "unknown board kind \"nitrokey-pro\"; known: nitrokey-hsm2",
        ),
        bad(
            "an unknown firmware profile",
            format!("{REAL_HEAD}[[board]]\nname = \"d\"\nkind = \"nitrokey-hsm2\"\nfirmware = \"tessera\"\npower = \"none\"\nsim = \"none\"\n"),
            BadValue,
            (8, 12),
            "board[0].firmware",
            "unknown firmware profile",
        ),
        bad(
            "a power switch without a number",
            format!("{REAL_HEAD}[[board]]\nname = \"d\"\nkind = \"nitrokey-hsm2\"\nfirmware = \"stock\"\npower = \"hub\"\nsim = \"none\"\n"),
            BadValue,
            (9, 9),
            "board[0].power",
            "expected \"controller:<channel>\", \"hub:<port>\" or \"none\", found \"hub\"",
        ),
        bad(
            "a hub port without a hub",
            format!("{REAL_HEAD}[[board]]\nname = \"d\"\nkind = \"nitrokey-hsm2\"\nfirmware = \"stock\"\npower = \"hub:2\"\nsim = \"none\"\n"),
            Inconsistent,
            (9, 9),
            "board[0].power",
            "the rig has no [hub]",
        ),
        bad(
            "a hub port the hub does not switch",
            format!("{REAL_HEAD}[hub]\nlocation = \"1-1\"\nports = [1, 2]\n[[board]]\nname = \"d\"\nkind = \"nitrokey-hsm2\"\nfirmware = \"stock\"\npower = \"hub:3\"\nsim = \"none\"\n"),
            Inconsistent,
            (12, 9),
            "board[0].power",
            "hub port 3 is not in hub.ports [1, 2]",
        ),
        bad(
            "a controller switch without a controller",
            "name = \"t\"\nbackend = \"real\"\n[[board]]\nname = \"d\"\nkind = \"nitrokey-hsm2\"\nfirmware = \"stock\"\npower = \"controller:0\"\nsim = \"none\"\n",
            Inconsistent,
            (7, 9),
            "board[0].power",
            "no [controller]",
        ),
        bad(
            "two boards on one power channel",
            real_board("[[board]]\nname = \"e\"\nkind = \"nitrokey-hsm2\"\nfirmware = \"stock\"\npower = \"controller:0\"\nsim = \"controller:1\"\n"),
            Inconsistent,
            (15, 9),
            "board[1].power",
            "controller:0 already powers board \"d\"",
        ),
        bad(
            "two boards on one SIM mux channel",
            real_board("[[board]]\nname = \"e\"\nkind = \"nitrokey-hsm2\"\nfirmware = \"stock\"\npower = \"controller:1\"\nsim = \"controller:0\"\n"),
            Inconsistent,
            (16, 7),
            "board[1].sim",
            "SIM mux channel 0 is already wired to board \"d\"",
        ),
        bad(
            "two identical boards without USB paths",
            real_board("[[board]]\nname = \"e\"\nkind = \"nitrokey-hsm2\"\nfirmware = \"stock\"\npower = \"controller:1\"\nsim = \"controller:1\"\n"),
            Inconsistent,
            (12, 8),
            "board[1].usb",
            "need different usb.path values",
        ),
        bad(
            "a duplicate board name",
            real_board("[[board]]\nname = \"d\"\nkind = \"nitrokey-hsm2\"\nfirmware = \"stock\"\npower = \"none\"\nsim = \"none\"\n"),
            Inconsistent,
            (12, 8),
            "board[1].name",
            "two boards are called \"d\"",
        ),
        bad(
            "a bad probe selector",
            format!("{REAL_HEAD}[[board]]\nname = \"d\"\nkind = \"nitrokey-hsm2\"\nfirmware = \"stock\"\nprobe = \"stlink\"\npower = \"none\"\nsim = \"none\"\n"),
            BadValue,
            (9, 9),
            "board[0].probe",
            "not a probe selector VID:PID[:serial]",
        ),
        bad(
            "a bad USB path",
            format!("{REAL_HEAD}[[board]]\nname = \"d\"\nkind = \"nitrokey-hsm2\"\nfirmware = \"stock\"\nusb = {{ path = \"bus1\" }}\npower = \"none\"\nsim = \"none\"\n"),
            BadValue,
            (9, 16),
            "board[0].usb.path",
            "not a USB path",
        ),
        bad(
            "an unknown key in an inline table",
            format!("{REAL_HEAD}[[board]]\nname = \"d\"\nkind = \"nitrokey-hsm2\"\nfirmware = \"stock\"\nusb = {{ port = \"1-1\" }}\npower = \"none\"\nsim = \"none\"\n"),
            UnknownKey,
            (9, 9),
            "board[0].usb.port",
            "unknown field `port`",
        ),
        bad(
            "an inline user PIN",
            real_board("[[slot]]\nname = \"A\"\nposition = 0\n[slot.card]\nlabel = \"a\"\nuser_pin = \"648219\"\n"),
            InlinePin,
            (16, 12),
            "slot[0].card.user_pin",
            "a PIN is never written in a rig file",
        ),
        bad(
            "an inline SO-PIN as a number",
            real_board("[[slot]]\nname = \"A\"\nposition = 0\n[slot.card]\nlabel = \"a\"\nso_pin = 3537363231383830\n"),
            InlinePin,
            (16, 10),
            "slot[0].card.so_pin",
            "a PIN is never written in a rig file",
        ),
        bad(
            "a PIN in a table under another name",
            real_board("[[slot]]\nname = \"A\"\nposition = 0\n[slot.card]\nlabel = \"a\"\nuser_pin = { value = \"648219\" }\n"),
            InlinePin,
            (16, 12),
            "slot[0].card.user_pin",
            "a PIN is never written in a rig file",
        ),
        bad(
            "generated PINs on a real rig",
            real_board("[[slot]]\nname = \"A\"\nposition = 0\n[slot.card]\nlabel = \"a\"\nuser_pin = { generated = true }\n"),
            Inconsistent,
            (16, 12),
            "slot[0].card.user_pin",
            "only a virtual backend generates PINs",
        ),
        bad(
            "sacrificial as a string",
            real_board("[[slot]]\nname = \"A\"\nposition = 0\n[slot.card]\nlabel = \"a\"\nsacrificial = \"yes\"\n"),
            WrongType,
            (16, 15),
            "slot[0].card.sacrificial",
            "invalid type: string \"yes\", expected a boolean",
        ),
        bad(
            "two slots on one position",
            real_board("[[slot]]\nname = \"A\"\nposition = 0\n[[slot]]\nname = \"B\"\nposition = 0\n"),
            Inconsistent,
            (16, 12),
            "slot[1].position",
            "slot \"A\" already uses position 0",
        ),
        bad(
            "a virtual rig with a controller",
            "name = \"v\"\nbackend = \"virtual\"\n[controller]\nport = \"/dev/x\"\n",
            Inconsistent,
            (3, 1),
            "controller",
            "remove [controller]",
        ),
        bad(
            "a virtual-only key on a real card",
            real_board("[[slot]]\nname = \"A\"\nposition = 0\n[slot.card]\nlabel = \"a\"\natr = \"v4\"\n"),
            Inconsistent,
            (16, 7),
            "slot[0].card.atr",
            "`atr` applies to virtual cards only",
        ),
        bad(
            "an unknown backend",
            "name = \"t\"\nbackend = \"simulated\"\n",
            BadValue,
            (2, 11),
            "backend",
            "unknown backend \"simulated\"",
        ),
        bad(
            "a name that cannot be a test name",
            format!("{REAL_HEAD}[[board]]\nname = \"my board\"\nkind = \"nitrokey-hsm2\"\nfirmware = \"stock\"\npower = \"none\"\nsim = \"none\"\n"),
            BadValue,
            (6, 8),
            "board[0].name",
            "is not a name",
        ),
        bad(
            "not TOML",
            "name = \"t\nbackend = \"real\"\n",
            Syntax,
            (1, 10),
            "",
            "",
        ),
    ];

    let mut failures = Vec::new();
    for case in &cases {
        match RigDescription::parse(&case.text, "t.toml") {
            Ok(_) => failures.push(format!("{}: parsed", case.name)),
            Err(e) => {
                let line = e.to_string();
                let ok = e.kind() == case.kind
                    && e.location() == Some(case.at)
                    && e.key() == case.key
                    && e.message().contains(case.says)
                    && !line.contains('\n')
                    && line.starts_with(&format!("t.toml:{}:{}: ", case.at.0, case.at.1));
                if !ok {
                    failures.push(format!(
                        "{}: got {:?} at {:?} key {:?}: {line}",
                        case.name,
                        e.kind(),
                        e.location(),
                        e.key()
                    ));
                }
            }
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn an_inline_pin_is_not_repeated_in_the_error() {
    let pin = "648219";
    for line in [
        format!("user_pin = \"{pin}\""),
        format!("user_pin = {pin}"),
        format!("user_pin = {{ value = \"{pin}\" }}"),
        format!("user_pin = [\"{pin}\"]"),
    ] {
        let text = format!(
            "{REAL_HEAD}{BOARD}[[slot]]\nname = \"A\"\nposition = 0\n[slot.card]\nlabel = \"a\"\n{line}\n"
        );
        let err = RigDescription::parse(&text, "t.toml").unwrap_err();
        assert_eq!(err.kind(), RigFileErrorKind::InlinePin, "{line}");
        assert!(!err.to_string().contains(pin), "{line}: {err}");
        assert!(!format!("{err:?}").contains(pin), "{line}: {err:?}");
    }
}
