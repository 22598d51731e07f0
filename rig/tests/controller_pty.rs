//! The rig-controller client end to end: `ControllerClient` over a real serial port
//! (`serialport` on a pseudo-terminal's slave side) against the `VirtualController` on the
//! master side, with faults injected on the line by the pty server.

use std::collections::BTreeSet;
use std::time::Duration;

use tessera_rig::controller::pty::{Faults, PtyController};
use tessera_rig::controller::{
    AllOff, ClientConfig, ControllerClient, ControllerErrorKind, ControllerSpec, ErrorCode,
    SerialLink, SwitchEvent, VirtualController, PROTOCOL_VERSION,
};

const CONFIG: ClientConfig = ClientConfig {
    timeout: Duration::from_millis(150),
    retries: 2,
};

fn spec() -> ControllerSpec {
    ControllerSpec::new(2, 2, 3)
}

fn serve(spec: ControllerSpec, faults: Faults) -> PtyController {
    PtyController::spawn(VirtualController::new(spec), faults).expect("pty")
}

fn link(pty: &PtyController) -> SerialLink {
    SerialLink::open(pty.path().to_str().expect("utf-8 pty path"), 115_200).expect("open pty")
}

fn connect(pty: &PtyController) -> ControllerClient<SerialLink> {
    ControllerClient::connect(link(pty), CONFIG).expect("connect")
}

fn set(indices: &[usize]) -> BTreeSet<usize> {
    indices.iter().copied().collect()
}

/// Host lines by index: 0 HELLO, 1 POWER ALL OFF (connect), then the test's requests.
const FIRST: usize = 2;

#[test]
fn hello_reports_the_controller_and_the_session_starts_all_off() {
    let mut controller = VirtualController::new(spec());
    // A previous session left channel 1 on.
    let hello = tessera_rig::controller::protocol::Frame::encode(
        60000,
        &tessera_rig::controller::protocol::Request::Hello { version: 1 },
    );
    let on = tessera_rig::controller::protocol::Frame::encode(
        60001,
        &tessera_rig::controller::protocol::Request::Power {
            channel: 1,
            on: true,
        },
    );
    controller.receive(hello.as_bytes(), Duration::ZERO);
    controller.receive(on.as_bytes(), Duration::ZERO);
    assert!(controller.is_powered(1));
    let pty = PtyController::spawn(controller, Faults::default()).unwrap();

    let client = connect(&pty);
    let info = client.info();
    assert_eq!(info.version, PROTOCOL_VERSION);
    assert_eq!(info.id, "tessera-virtual-controller");
    assert_eq!((info.power_channels, info.muxes, info.positions), (2, 2, 3));
    assert_eq!(info.watchdog_ms, 5000);
    assert!(
        !pty.controller().is_powered(1),
        "connect powers everything off"
    );
}

#[test]
fn a_version_mismatch_is_refused_and_leaves_everything_off() {
    let mut spec = spec();
    spec.versions = vec![2];
    let pty = serve(spec, Faults::default());
    let err = ControllerClient::connect(link(&pty), CONFIG).unwrap_err();
    assert_eq!(err.kind(), ControllerErrorKind::Version);
    assert_eq!(err.code(), Some(&ErrorCode::Version));
    assert_eq!(err.all_off(), Some(AllOff::Confirmed));
    let text = err.to_string();
    assert!(
        text.contains("HELLO 1") && text.contains("supported=2"),
        "{text}"
    );
}

#[test]
fn power_switches_the_channel_on_and_off() {
    let pty = serve(spec(), Faults::default());
    let mut client = connect(&pty);
    pty.controller().take_events();
    client.power(1, true).unwrap();
    assert!(pty.controller().is_powered(1));
    client.power(1, false).unwrap();
    assert!(!pty.controller().is_powered(1));
    assert_eq!(
        pty.controller().take_events(),
        [
            SwitchEvent::Power {
                channel: 1,
                on: true
            },
            SwitchEvent::Power {
                channel: 1,
                on: false
            },
        ]
    );
}

#[test]
fn sim_select_connects_a_position_and_is_refused_while_powered() {
    let pty = serve(spec(), Faults::default());
    let mut client = connect(&pty);
    client.select_sim(0, Some(2)).unwrap();
    assert_eq!(pty.controller().connected(0), Some(2));
    client.select_sim(0, None).unwrap();
    assert_eq!(pty.controller().connected(0), None);

    client.select_sim(0, Some(1)).unwrap();
    client.power(0, true).unwrap();
    let err = client.select_sim(0, Some(2)).unwrap_err();
    assert_eq!(err.kind(), ControllerErrorKind::Refused);
    assert_eq!(err.code(), Some(&ErrorCode::Powered));
    // The all-off guarantee: the refusal powered the board off.
    assert_eq!(err.all_off(), Some(AllOff::Confirmed));
    assert!(!pty.controller().is_powered(0));
    assert_eq!(pty.controller().connected(0), Some(1), "the card stayed");
    assert!(
        err.to_string().contains("every board was powered off"),
        "{err}"
    );
}

#[test]
fn insert_and_eject_work_while_powered_and_a_second_insert_is_refused() {
    let pty = serve(spec(), Faults::default());
    let mut client = connect(&pty);
    client.power(0, true).unwrap();
    client.insert_sim(0, 1).unwrap();
    assert_eq!(pty.controller().connected(0), Some(1));
    assert!(
        pty.controller().is_powered(0),
        "inserting does not touch power"
    );
    // When the break happens is checked in modelled time (virtual_controller's unit test);
    // here only that it happens.
    client.eject_sim(0, 100).unwrap();
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(
        client.status().unwrap().sim.first().copied().flatten(),
        None
    );
    assert!(pty.controller().is_powered(0));
    client.insert_sim(0, 2).unwrap();
    let err = client.insert_sim(0, 1).unwrap_err();
    assert_eq!(err.code(), Some(&ErrorCode::Connected));
    assert_eq!(err.all_off(), Some(AllOff::Confirmed));
}

#[test]
fn an_out_of_range_channel_is_refused() {
    let pty = serve(spec(), Faults::default());
    let mut client = connect(&pty);
    let err = client.power(7, true).unwrap_err();
    assert_eq!(err.code(), Some(&ErrorCode::Range));
}

#[test]
fn status_reports_power_sim_and_the_controllers_garbage_count() {
    let pty = serve(
        spec(),
        Faults {
            corrupt_requests: set(&[FIRST]),
            ..Faults::default()
        },
    );
    let mut client = connect(&pty);
    // The first request after connect arrives corrupted: discarded, counted, retried.
    client.power(0, true).unwrap();
    client.select_sim(1, Some(0)).unwrap();
    let status = client.status().unwrap();
    assert_eq!(status.power, [true, false]);
    assert_eq!(status.sim, [None, Some(0)]);
    assert_eq!(status.garbage, 1);
    assert_eq!(status.trips, 0);
    assert!(status.session);
    assert_eq!(client.stats().retries, 1);
}

#[test]
fn garbage_lines_from_the_controller_are_skipped_and_counted() {
    let pty = serve(
        spec(),
        Faults {
            garbage_before_responses: set(&[FIRST, FIRST + 1]),
            ..Faults::default()
        },
    );
    let mut client = connect(&pty);
    client.power(0, true).unwrap();
    client.power(0, false).unwrap();
    let stats = client.stats();
    assert_eq!(stats.garbage, 2);
    assert_eq!(stats.retries, 0);
}

#[test]
fn a_dropped_response_is_retried_and_the_controller_acts_once() {
    let pty = serve(
        spec(),
        Faults {
            drop_responses: set(&[FIRST]),
            ..Faults::default()
        },
    );
    let mut client = connect(&pty);
    pty.controller().take_events();
    client.power(1, true).unwrap();
    assert_eq!(client.stats().retries, 1);
    assert_eq!(
        pty.controller().take_events(),
        [SwitchEvent::Power {
            channel: 1,
            on: true
        }]
    );
}

#[test]
fn a_response_with_a_bad_checksum_is_garbage_and_the_request_is_retried() {
    let pty = serve(
        spec(),
        Faults {
            corrupt_responses: set(&[FIRST]),
            ..Faults::default()
        },
    );
    let mut client = connect(&pty);
    client.select_sim(0, Some(1)).unwrap();
    let stats = client.stats();
    assert_eq!((stats.garbage, stats.retries), (1, 1));
    assert_eq!(pty.controller().connected(0), Some(1));
}

#[test]
fn a_timeout_after_every_retry_powers_everything_off() {
    // Every try of the first request loses its answer; the all-off after it gets through.
    let pty = serve(
        spec(),
        Faults {
            drop_responses: set(&[FIRST, FIRST + 1, FIRST + 2]),
            ..Faults::default()
        },
    );
    let mut client = connect(&pty);
    let err = client.power(0, true).unwrap_err();
    assert_eq!(err.kind(), ControllerErrorKind::Timeout);
    assert_eq!(err.all_off(), Some(AllOff::Confirmed));
    assert!(
        !pty.controller().is_powered(0),
        "the controller switched on, then the host's all-off switched off"
    );
    let text = err.to_string();
    assert!(
        text.contains("POWER 0 ON: no answer after 3 tries of 150 ms"),
        "{text}"
    );
}

#[test]
fn a_mute_controller_fails_connect_with_a_timeout() {
    let pty = serve(
        spec(),
        Faults {
            mute: true,
            ..Faults::default()
        },
    );
    let err = ControllerClient::connect(link(&pty), CONFIG).unwrap_err();
    assert_eq!(err.kind(), ControllerErrorKind::Timeout);
    assert_eq!(err.all_off(), Some(AllOff::Unconfirmed));
    assert!(err.to_string().contains("watchdog"), "{err}");
}

#[test]
fn dropping_the_client_powers_everything_off() {
    let pty = serve(spec(), Faults::default());
    let mut client = connect(&pty);
    client.power(0, true).unwrap();
    client.power(1, true).unwrap();
    drop(client);
    let c = pty.controller();
    assert!(!c.is_powered(0) && !c.is_powered(1));
}

#[test]
fn close_powers_everything_off() {
    let pty = serve(spec(), Faults::default());
    let mut client = connect(&pty);
    client.power(1, true).unwrap();
    client.close().unwrap();
    assert!(!pty.controller().is_powered(1));
}

#[test]
fn a_serial_port_that_does_not_exist_is_a_clear_error() {
    let err = SerialLink::open("/dev/tessera-no-such-port", 115_200).unwrap_err();
    assert!(!err.to_string().is_empty());
}
