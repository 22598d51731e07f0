//! `PcscSandbox` against the real pcscd and vpcd: readers named as documented, a card found
//! once something answers vpcd, errors that say what is wrong, pcscd stopped on drop.
//!
//! Needs root, pcscd, vsmartcard-vpcd and iproute2 (CI installs them); without them these
//! tests fail with the sandbox's message.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::Path;
use std::thread;
use std::time::Duration;

use tessera_testkit::{PcscSandbox, SandboxError, PCSCD_SOCKET};

const ATR: [u8; 6] = [0x3B, 0x81, 0x80, 0x01, 0x80, 0x80];

fn start(ports: &[u16]) -> PcscSandbox {
    PcscSandbox::start(ports).unwrap_or_else(|error| panic!("{error}"))
}

/// A minimal card on the vpcd wire: answers the ATR request and every APDU with 90 00, until
/// the connection closes. Runs on a thread spawned inside the sandbox's namespaces.
fn serve_minimal_card(port: u16) -> thread::JoinHandle<()> {
    thread::spawn(move || {
        let mut stream = loop {
            match TcpStream::connect(("127.0.0.1", port)) {
                Ok(stream) => break stream,
                Err(_) => thread::sleep(Duration::from_millis(10)),
            }
        };
        loop {
            let mut length = [0u8; 2];
            if stream.read_exact(&mut length).is_err() {
                return;
            }
            let mut payload = vec![0; usize::from(u16::from_be_bytes(length))];
            if stream.read_exact(&mut payload).is_err() {
                return;
            }
            let answer: &[u8] = match payload[..] {
                [4] => &ATR,
                [_] => continue,
                _ => &[0x90, 0x00],
            };
            let mut message = u16::try_from(answer.len()).unwrap().to_be_bytes().to_vec();
            message.extend_from_slice(answer);
            if stream.write_all(&message).is_err() {
                return;
            }
        }
    })
}

#[test]
fn one_reader_per_port_named_as_documented() {
    let ports = [35001, 35003, 35005];
    let sandbox = start(&ports);
    assert!(Path::new(PCSCD_SOCKET).exists());
    assert_eq!(sandbox.readers().len(), 3);
    for port in ports {
        let name = sandbox
            .reader_name(port)
            .unwrap_or_else(|error| panic!("{error}"));
        let name = name.to_str().unwrap();
        let prefix = format!("Tessera vpcd {port} ");
        assert!(name.starts_with(&prefix) && name.ends_with(" 00"), "{name}");
        assert_eq!(name.len(), prefix.len() + 5, "{name}");
    }
    let conf = std::fs::read_to_string(sandbox.reader_conf()).unwrap();
    assert_eq!(conf.matches("FRIENDLYNAME").count(), 3);
    assert!(matches!(
        sandbox.reader_name(35007),
        Err(SandboxError::UnknownPort { port: 35007, .. })
    ));
}

#[test]
fn finds_a_card_once_it_answers_vpcd() {
    let port = 35011;
    let mut sandbox = start(&[port]);
    let card = serve_minimal_card(port);
    let reader = sandbox
        .wait_for_card(port, Duration::from_secs(10))
        .unwrap_or_else(|error| panic!("{error}"));
    let context = pcsc::Context::establish(pcsc::Scope::User).unwrap();
    let pcsc_card = context
        .connect(&reader, pcsc::ShareMode::Shared, pcsc::Protocols::ANY)
        .unwrap();
    assert_eq!(pcsc_card.status2_owned().unwrap().atr(), ATR);
    let mut buffer = [0; 258];
    assert_eq!(
        pcsc_card
            .transmit(&[0x00, 0xA4, 0x04, 0x00], &mut buffer)
            .unwrap(),
        [0x90, 0x00]
    );
    drop(pcsc_card);
    drop(sandbox); // pcscd stops, vpcd closes the connection, the card thread ends
    card.join().unwrap();
}

#[test]
fn no_card_is_an_error_that_says_so() {
    let port = 35021;
    let mut sandbox = start(&[port]);
    let error = sandbox
        .wait_for_card(port, Duration::from_millis(300))
        .expect_err("nothing serves a card");
    assert!(
        matches!(error, SandboxError::NoCard { port: 35021, .. }),
        "{error}"
    );
    assert!(error.to_string().contains("127.0.0.1:35021"), "{error}");
}

#[test]
fn bad_ports_are_refused_before_anything_starts() {
    for ports in [&[35001, 35002][..], &[0], &[35001, 35001]] {
        let error = PcscSandbox::start(ports).expect_err("bad ports");
        assert!(
            matches!(error, SandboxError::InvalidPorts { .. }),
            "{error}"
        );
    }
}

#[test]
fn drop_stops_pcscd_and_restart_brings_it_back() {
    let port = 35031;
    let mut sandbox = start(&[port]);
    let first = sandbox.pcscd_pid().unwrap();
    sandbox
        .restart_pcscd()
        .unwrap_or_else(|error| panic!("{error}"));
    let second = sandbox.pcscd_pid().unwrap();
    assert_ne!(first, second);
    assert!(!Path::new(&format!("/proc/{first}")).exists());
    sandbox
        .reader_name(port)
        .unwrap_or_else(|error| panic!("{error}"));
    let dir = sandbox.dir().to_owned();
    drop(sandbox);
    assert!(!Path::new(&format!("/proc/{second}")).exists());
    assert!(!dir.exists());
}
