//! The vpcd client end to end: a test card served through vpcd to a private pcscd
//! (tessera-testkit's `PcscSandbox`) and driven with the `pcsc` crate, as OpenSC would.
//!
//! Needs root, pcscd, vsmartcard-vpcd and iproute2; without them these tests fail with the
//! sandbox's message (CI installs them). Each test keeps everything on its own thread and the
//! threads it spawns, as the sandbox's namespaces require.

use std::ffi::CStr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use pcsc::{Context, Disposition, Protocols, Scope, ShareMode};
use tessera_card::vpcd::{self, ServeConfig, VpcdCard};
use tessera_testkit::PcscSandbox;

const WAIT: Duration = Duration::from_secs(10);

/// T=1 ATRs (TD1 = 80, TD2 = 01), with one and two historical bytes.
const ATR_A: [u8; 6] = [0x3B, 0x81, 0x80, 0x01, 0x80, 0x80];
const ATR_B: [u8; 7] = [0x3B, 0x82, 0x80, 0x01, 0x80, 0x01, 0x82];

/// INS of the test card's echo command: answers the command data and 90 00.
const INS_ECHO: u8 = 0xEE;
/// INS of the test card's fill command: answers P1-P2 bytes and 90 00.
const INS_FILL: u8 = 0xEF;

/// What the test card saw.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Call {
    PowerOn,
    PowerOff,
    Reset,
    Command(Vec<u8>),
}

/// A test double: SELECT answers 90 00, [`INS_ECHO`] echoes, [`INS_FILL`] fills; every call is
/// recorded where the test can see it.
#[derive(Debug, Clone)]
struct TestCard {
    atr: Vec<u8>,
    calls: Arc<Mutex<Vec<Call>>>,
}

impl TestCard {
    fn new(atr: &[u8]) -> Self {
        Self {
            atr: atr.to_vec(),
            calls: Arc::default(),
        }
    }

    fn calls(&self) -> Vec<Call> {
        self.calls.lock().unwrap().clone()
    }

    /// Waits (up to [`WAIT`]) until the calls after the first `from` satisfy `done`. Power off,
    /// power on and reset get no answer on the vpcd wire, so they may reach the card after the
    /// PC/SC call that caused them has returned.
    fn wait_for(&self, from: usize, what: &str, done: impl Fn(&[Call]) -> bool) {
        let started = Instant::now();
        loop {
            let calls = self.calls();
            if done(&calls[from..]) {
                return;
            }
            assert!(started.elapsed() < WAIT, "no {what}: {:?}", &calls[from..]);
            std::thread::sleep(Duration::from_millis(5));
        }
    }

    fn record(&self, call: Call) {
        self.calls.lock().unwrap().push(call);
    }
}

/// The command data field of a short or extended APDU (ISO 7816-4 §5.1), or None for case 1/2.
fn command_data(apdu: &[u8]) -> Option<&[u8]> {
    match apdu {
        [_, _, _, _, 0, hi, lo, rest @ ..]
            if rest.len() >= usize::from(u16::from_be_bytes([*hi, *lo])) =>
        {
            let nc = usize::from(u16::from_be_bytes([*hi, *lo]));
            (nc > 0).then(|| &rest[..nc])
        }
        [_, _, _, _, lc, rest @ ..] if *lc != 0 && rest.len() >= usize::from(*lc) => {
            Some(&rest[..usize::from(*lc)])
        }
        _ => None,
    }
}

impl VpcdCard for TestCard {
    fn power_on(&mut self) {
        self.record(Call::PowerOn);
    }
    fn power_off(&mut self) {
        self.record(Call::PowerOff);
    }
    fn reset(&mut self) {
        self.record(Call::Reset);
    }
    fn atr(&self) -> Vec<u8> {
        self.atr.clone()
    }
    fn transmit(&mut self, command: &[u8]) -> Vec<u8> {
        self.record(Call::Command(command.to_vec()));
        match command {
            [0x00, 0xA4, ..] => vec![0x90, 0x00],
            [0x00, INS_ECHO, ..] => {
                let mut answer = command_data(command).unwrap_or_default().to_vec();
                answer.extend_from_slice(&[0x90, 0x00]);
                answer
            }
            [0x00, INS_FILL, p1, p2, ..] => {
                let mut answer: Vec<u8> = (0..u16::from_be_bytes([*p1, *p2]))
                    .map(|i| i as u8)
                    .collect();
                answer.extend_from_slice(&[0x90, 0x00]);
                answer
            }
            _ => vec![0x6D, 0x00],
        }
    }
}

fn start_sandbox(ports: &[u16]) -> PcscSandbox {
    PcscSandbox::start(ports).unwrap_or_else(|error| panic!("{error}"))
}

fn wait_for_card(sandbox: &mut PcscSandbox, port: u16) -> std::ffi::CString {
    sandbox
        .wait_for_card(port, WAIT)
        .unwrap_or_else(|error| panic!("{error}"))
}

/// An extended case 4 echo APDU with `len` bytes of data.
fn extended_echo(len: usize) -> Vec<u8> {
    let nc = u16::try_from(len).unwrap().to_be_bytes();
    let mut apdu = vec![0x00, INS_ECHO, 0x00, 0x00, 0x00, nc[0], nc[1]];
    apdu.extend((0..len).map(|i| (i * 7) as u8));
    apdu.extend_from_slice(&[0x00, 0x00]);
    apdu
}

fn transmit(card: &pcsc::Card, apdu: &[u8]) -> Result<Vec<u8>, pcsc::Error> {
    let mut buffer = vec![0; pcsc::MAX_BUFFER_SIZE_EXTENDED];
    card.transmit(apdu, &mut buffer).map(<[u8]>::to_vec)
}

fn connect(context: &Context, reader: &CStr) -> pcsc::Card {
    context
        .connect(reader, ShareMode::Shared, Protocols::ANY)
        .unwrap_or_else(|error| panic!("connecting to {reader:?}: {error}"))
}

#[test]
fn one_card_through_pcscd() {
    let port = vpcd::DEFAULT_PORT;
    let mut sandbox = start_sandbox(&[port]);
    let card = TestCard::new(&ATR_A);
    let serving = vpcd::spawn(card.clone(), ServeConfig::loopback(port)).unwrap();
    let reader = wait_for_card(&mut sandbox, port);
    assert!(
        reader.to_str().unwrap().starts_with("Tessera vpcd 35963 "),
        "{reader:?}"
    );

    let context = Context::establish(Scope::User).unwrap();
    let pcsc_card = connect(&context, &reader);
    let status = pcsc_card.status2_owned().unwrap();
    assert_eq!(status.atr(), ATR_A, "the ATR pcscd reports");
    assert_eq!(status.protocol2(), Some(pcsc::Protocol::T1));

    // SELECT by AID (SmartCard-HSM's), a short echo, a case 2 fill.
    let select = [
        0x00, 0xA4, 0x04, 0x0C, 0x0B, 0xE8, 0x2B, 0x06, 0x01, 0x04, 0x01, 0x81, 0xC3, 0x1F, 0x02,
        0x01,
    ];
    assert_eq!(transmit(&pcsc_card, &select).unwrap(), [0x90, 0x00]);
    assert_eq!(
        transmit(
            &pcsc_card,
            &[0x00, INS_ECHO, 0x00, 0x00, 0x03, 0x01, 0x02, 0x03, 0x00]
        )
        .unwrap(),
        [0x01, 0x02, 0x03, 0x90, 0x00]
    );
    assert_eq!(
        transmit(&pcsc_card, &[0x00, 0x10, 0x00, 0x00]).unwrap(),
        [0x6D, 0x00]
    );

    // Extended length: 4096 bytes of command data must pass (SmartCard-HSM takes them).
    let apdu = extended_echo(4096);
    let answer = transmit(&pcsc_card, &apdu).expect("a 4096-byte extended APDU through vpcd");
    assert_eq!(answer[..4096], apdu[7..7 + 4096]);
    assert_eq!(answer[4096..], [0x90, 0x00]);
    assert_eq!(card.calls().last(), Some(&Call::Command(apdu)));

    // The largest sizes that get through, both ways (reported, not asserted beyond 4096).
    let largest_command = [8192, 16384, 32768, 65000, 65526]
        .into_iter()
        .take_while(|&len| {
            let apdu = extended_echo(len);
            transmit(&pcsc_card, &apdu).is_ok_and(|answer| answer[..len] == apdu[7..7 + len])
        })
        .last()
        .unwrap_or(4096);
    let largest_response = [4096u16, 8192, 16384, 32768, 65000, 65533]
        .into_iter()
        .take_while(|&len| {
            let [p1, p2] = len.to_be_bytes();
            let apdu = [0x00, INS_FILL, p1, p2, 0x00, 0x00, 0x00];
            transmit(&pcsc_card, &apdu).is_ok_and(|answer| answer.len() == usize::from(len) + 2)
        })
        .last();
    println!(
        "largest through pcscd and vpcd: command data {largest_command} bytes \
         ({} byte APDU), response data {largest_response:?} bytes",
        largest_command + 9
    );

    // Round trip of a short APDU: pcsc client -> pcscd -> vpcd -> this card and back.
    let echo = [0x00, INS_ECHO, 0x00, 0x00, 0x02, 0xCA, 0xFE, 0x00];
    let rounds = 200;
    let started = Instant::now();
    for _ in 0..rounds {
        assert_eq!(
            transmit(&pcsc_card, &echo).unwrap(),
            [0xCA, 0xFE, 0x90, 0x00]
        );
    }
    let per_apdu = started.elapsed() / rounds;
    println!("round trip per short APDU through pcscd and vpcd: {per_apdu:?} ({rounds} APDUs)");

    // Disconnecting with a reset reaches the card.
    let before = card.calls().len();
    pcsc_card
        .disconnect(Disposition::ResetCard)
        .map_err(|(_, error)| error)
        .unwrap();
    card.wait_for(
        before,
        "a reset after SCardDisconnect(SCARD_RESET_CARD)",
        |after| {
            after.contains(&Call::Reset)
                || after
                    .windows(2)
                    .any(|w| w == [Call::PowerOff, Call::PowerOn])
        },
    );
    println!(
        "calls after SCardDisconnect(SCARD_RESET_CARD): {:?}",
        &card.calls()[before..]
    );
    // The card was powered on by pcscd before any command.
    let calls = card.calls();
    println!(
        "calls before the first command: {:?}",
        &calls[..calls
            .iter()
            .position(|call| matches!(call, Call::Command(_)))
            .unwrap()]
    );
    let first_command = calls
        .iter()
        .position(|call| matches!(call, Call::Command(_)))
        .unwrap();
    assert!(calls[..first_command].contains(&Call::PowerOn), "{calls:?}");
    // Unpowering reaches the card too.
    let pcsc_card = connect(&context, &reader);
    let before = card.calls().len();
    pcsc_card
        .disconnect(Disposition::UnpowerCard)
        .map_err(|(_, error)| error)
        .unwrap();
    card.wait_for(
        before,
        "a power-off after SCardDisconnect(SCARD_UNPOWER_CARD)",
        |after| after.contains(&Call::PowerOff),
    );

    // pcscd restarts: the card reconnects by itself.
    drop(context);
    sandbox
        .restart_pcscd()
        .unwrap_or_else(|error| panic!("{error}"));
    let reader = wait_for_card(&mut sandbox, port);
    let context = Context::establish(Scope::User).unwrap();
    let pcsc_card = connect(&context, &reader);
    assert_eq!(transmit(&pcsc_card, &select).unwrap(), [0x90, 0x00]);
    drop(pcsc_card);

    let (_, summary) = serving.stop().unwrap();
    assert!(summary.connections >= 2, "{summary:?}");
    assert_eq!(summary.errors, 0, "{summary:?}");
}

#[test]
fn two_cards_on_two_ports() {
    let ports = [35001, 35003];
    let mut sandbox = start_sandbox(&ports);
    let card_a = TestCard::new(&ATR_A);
    let card_b = TestCard::new(&ATR_B);
    let serving = vpcd::spawn_all([
        (card_a.clone(), ServeConfig::loopback(ports[0])),
        (card_b.clone(), ServeConfig::loopback(ports[1])),
    ])
    .unwrap();
    let reader_a = wait_for_card(&mut sandbox, ports[0]);
    let reader_b = wait_for_card(&mut sandbox, ports[1]);
    assert_ne!(reader_a, reader_b);

    let context = Context::establish(Scope::User).unwrap();
    let pcsc_a = connect(&context, &reader_a);
    let pcsc_b = connect(&context, &reader_b);
    assert_eq!(pcsc_a.status2_owned().unwrap().atr(), ATR_A);
    assert_eq!(pcsc_b.status2_owned().unwrap().atr(), ATR_B);
    for i in 0..10u8 {
        let apdu_a = [0x00, INS_ECHO, 0x00, 0x00, 0x01, i, 0x00];
        let apdu_b = [0x00, INS_ECHO, 0x00, 0x00, 0x01, 0x80 | i, 0x00];
        assert_eq!(transmit(&pcsc_a, &apdu_a).unwrap(), [i, 0x90, 0x00]);
        assert_eq!(transmit(&pcsc_b, &apdu_b).unwrap(), [0x80 | i, 0x90, 0x00]);
    }
    drop((pcsc_a, pcsc_b));

    let commands = |card: &TestCard| -> Vec<Vec<u8>> {
        card.calls()
            .into_iter()
            .filter_map(|call| match call {
                Call::Command(apdu) => Some(apdu),
                _ => None,
            })
            .collect()
    };
    assert!(commands(&card_a).iter().all(|apdu| apdu[5] < 0x80));
    assert!(commands(&card_b).iter().all(|apdu| apdu[5] >= 0x80));
    assert_eq!(commands(&card_a).len(), 10);
    assert_eq!(commands(&card_b).len(), 10);
    let results = serving.stop().unwrap();
    assert!(
        results.iter().all(|(_, summary)| summary.errors == 0),
        "{results:?}"
    );
}
