//! Property tests: whatever the host sends, whatever the card sends, in whatever order the
//! driver reports events, the bridge never panics and every bulk-IN message it sends is a
//! well-formed CCID response.

mod sim;

use proptest::prelude::*;
use sim::*;
use tessera_bridge::{
    BootPolicy, Bridge, CardContacts, Config, DeadlineTimer, Duration, ErrorKind, Event, Instant,
    LineRate, UsbDevice,
};
use tessera_ccid::{Direction, MessageRepr};

/// `cases` runs, or `PROPTEST_CASES` from the environment (nightly runs set more).
fn config_cases(cases: u32) -> ProptestConfig {
    let cases = std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(cases);
    ProptestConfig {
        failure_persistence: None,
        ..ProptestConfig::with_cases(cases)
    }
}

fn config(apdu: bool, reader: bool) -> Config {
    let policy = if reader {
        BootPolicy::Reader
    } else {
        BootPolicy::RequireCard
    };
    if apdu {
        Config::apdu(policy)
    } else {
        Config::stock(policy)
    }
}

/// A CCID message: mostly a known PC_to_RDR type with a random (often inconsistent) length
/// and payload, sometimes anything at all.
fn ccid_message() -> impl Strategy<Value = Vec<u8>> {
    let known = prop::sample::select(vec![
        0x62u8, 0x63, 0x65, 0x6F, 0x6C, 0x6D, 0x61, 0x6B, 0x6E, 0x6A, 0x69, 0x71, 0x72, 0x73, 0x80,
        0x50, 0x00, 0xFF,
    ]);
    let structured = (
        known,
        prop::collection::vec(any::<u8>(), 0..300),
        any::<bool>(),
        0u8..3,
        any::<u8>(),
        any::<[u8; 3]>(),
        any::<u32>(),
    )
        .prop_map(|(ty, payload, honest, slot, seq, specific, len)| {
            let len = if honest { payload.len() as u32 } else { len };
            let mut m = vec![ty];
            m.extend_from_slice(&len.to_le_bytes());
            m.push(slot);
            m.push(seq);
            m.extend_from_slice(&specific);
            m.extend_from_slice(&payload);
            m
        });
    prop_oneof![
        4 => structured,
        1 => prop::collection::vec(any::<u8>(), 0..40),
    ]
}

/// What a card might send: random bytes, or a well-framed T=1 block with a random PCB and
/// information field (LRC right), or a PPS-looking echo.
fn card_burst() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        prop::collection::vec(any::<u8>(), 0..40),
        (any::<u8>(), prop::collection::vec(any::<u8>(), 0..20))
            .prop_map(|(pcb, inf)| block(pcb, &inf)),
        Just(vec![0xFF, 0x11, 0x18, 0xF6]),
        Just(block(0xE1, &[0xFE])),
    ]
}

fn assert_well_formed(w: &World) {
    for t in &w.hw.trace {
        if let Trace::In(m) = t {
            let repr = MessageRepr::parse_bytes(m).expect("well-formed bulk-IN message");
            assert_eq!(repr.message_type().direction(), Some(Direction::BulkIn));
        }
    }
}

proptest! {
    #![proptest_config(config_cases(64))]

    #[test]
    fn arbitrary_ccid_messages_never_panic(
        apdu in any::<bool>(),
        messages in prop::collection::vec(ccid_message(), 1..30),
        gaps in prop::collection::vec(0u64..30_000, 30),
    ) {
        let mut w = World::new(config(apdu, false), Some(TestCard::hsm()));
        prop_assert!(w.run_until(Duration::from_secs(3), |w| w.hw.attached.is_some()));
        w.configure();
        for (m, gap) in messages.iter().zip(gaps) {
            w.send_raw(m);
            w.run_for(Duration::from_micros(gap));
        }
        w.run_for(Duration::from_secs(3));
        assert_well_formed(&w);
    }

    #[test]
    fn arbitrary_card_bytes_never_panic(
        reader in any::<bool>(),
        apdu in any::<bool>(),
        bursts in prop::collection::vec(card_burst(), 0..12),
        atr_like in any::<bool>(),
    ) {
        let mut bursts = bursts;
        if atr_like {
            // Start with a real ATR so the bridge gets past the activation.
            bursts.insert(0, ATR_V3.to_vec());
        }
        let mut w = World::new(config(apdu, reader), Some(TestCard::scripted(bursts)));
        w.run_for(Duration::from_secs(3));
        if w.hw.attached.is_some() {
            w.configure();
            w.power_on();
            w.send_raw(&unhex("6F 05000000 00 10 00 0000 0000010000"));
            w.run_for(Duration::from_secs(5));
        }
        assert_well_formed(&w);
    }

    #[test]
    fn arbitrary_event_orders_never_panic(
        apdu in any::<bool>(),
        reader in any::<bool>(),
        events in prop::collection::vec((0u8..10, prop::collection::vec(any::<u8>(), 0..20), 0u64..50_000), 0..200),
    ) {
        let mut buffer = vec![0u8; 1026];
        let mut bridge = Bridge::new(config(apdu, reader), "X", &mut buffer).unwrap();
        let mut hw = NullHw;
        let mut now = Instant::ZERO;
        bridge.start(now, &mut hw);
        for (kind, bytes, gap) in events {
            now += Duration::from_micros(gap);
            let event = match kind {
                0 => Event::CardReceived(&bytes),
                1 => Event::CardParityError,
                2 => Event::CardTransmitted,
                3 => Event::DeadlinePassed,
                4 => Event::UsbConfigured,
                5 => Event::UsbDeconfigured,
                6 => Event::UsbBulkOut(&bytes),
                7 => Event::UsbBulkInSent,
                8 => Event::UsbInterruptSent,
                _ => Event::UsbAbort { slot: bytes.first().copied().unwrap_or(0) & 1, seq: bytes.get(1).copied().unwrap_or(0) },
            };
            bridge.handle(now, event, &mut hw);
        }
    }
}

#[derive(Debug, Clone)]
enum Action {
    Message(Vec<u8>),
    PowerOn,
    PowerOff,
    Select,
    Pull,
    Insert,
    Parity(usize),
    FailTransmit(bool),
    Reconfigure,
    Abort(u8),
    Wait(u64),
}

fn action() -> impl Strategy<Value = Action> {
    prop_oneof![
        3 => ccid_message().prop_map(Action::Message),
        2 => Just(Action::PowerOn),
        1 => Just(Action::PowerOff),
        3 => Just(Action::Select),
        1 => Just(Action::Pull),
        1 => Just(Action::Insert),
        1 => (1usize..4).prop_map(Action::Parity),
        1 => any::<bool>().prop_map(Action::FailTransmit),
        1 => Just(Action::Reconfigure),
        1 => any::<u8>().prop_map(Action::Abort),
        4 => (0u64..3_000_000).prop_map(Action::Wait),
    ]
}

proptest! {
    #![proptest_config(config_cases(48))]

    /// Chaos, then liveness: after any mix of host traffic, card removal and insertion,
    /// line faults and USB resets, the bridge still answers every command and, with a card
    /// in the socket, powers it and carries an exchange.
    #[test]
    fn the_bridge_stays_live_whatever_happens(
        apdu in any::<bool>(),
        reader in any::<bool>(),
        t0 in any::<bool>(),
        actions in prop::collection::vec(action(), 0..60),
    ) {
        let card = move || {
            let atr: &[u8] = if t0 { &ATR_T0 } else { &ATR_V3 };
            TestCard::t1(atr, hsm_applet(Reply::now(vec![0x90, 0x00])))
        };
        let mut w = World::new(config(apdu, reader), Some(card()));
        prop_assert!(w.run_until(Duration::from_secs(3), |w| w.hw.attached.is_some()));
        w.configure();
        for a in actions {
            match a {
                Action::Message(m) => w.send_raw(&m),
                Action::PowerOn => {
                    w.send(tessera_ccid::IccPowerOn::new(tessera_ccid::PowerSelect::Automatic));
                }
                Action::PowerOff => {
                    w.send(tessera_ccid::IccPowerOff::new());
                }
                Action::Select => {
                    let data: &'static [u8] = if apdu || t0 {
                        &tessera_bridge::SELECT_APPLICATION
                    } else {
                        Box::leak(block(0x00, &tessera_bridge::SELECT_APPLICATION).into_boxed_slice())
                    };
                    w.send(tessera_ccid::XfrBlock::new(data));
                }
                Action::Pull => {
                    w.pull_card();
                }
                Action::Insert => {
                    if w.hw.card.is_none() {
                        w.insert_card(card());
                    }
                }
                Action::Parity(n) => w.hw.parity_errors = n,
                Action::FailTransmit(f) => w.hw.fail_transmit = f,
                Action::Reconfigure => {
                    let now = w.now();
                    w.bridge.handle(now, Event::UsbDeconfigured, &mut w.hw);
                    w.configure();
                }
                Action::Abort(seq) => {
                    let now = w.now();
                    w.bridge.handle(now, Event::UsbAbort { slot: 0, seq }, &mut w.hw);
                }
                Action::Wait(us) => w.run_for(Duration::from_micros(us)),
            }
        }
        // Settle: whatever was running ends. The longest wait is BWT × 255 (a bBWI or a WTX
        // of 255: 6.75 minutes), with time extensions all along.
        w.hw.fail_transmit = false;
        w.hw.parity_errors = 0;
        prop_assert!(w.run_until(Duration::from_secs(420), |w| !w.bridge.busy()));
        w.run_for(Duration::from_secs(5));
        w.hw.inbox.clear();
        assert_well_formed(&w);
        // Liveness.
        let seq = w.send(tessera_ccid::GetSlotStatus::new());
        let answer = w.response(Duration::from_secs(1));
        prop_assert!(answer.is_some(), "GetSlotStatus unanswered: {:?}", w.bridge);
        prop_assert_eq!(answer.unwrap()[6], seq);
        if w.hw.card.is_none() {
            w.insert_card(card());
        }
        let answer = w.power_on();
        prop_assert_eq!(status(&answer), (0, 0), "IccPowerOn with a card: {:?}", w.bridge);
        // A T=0 card takes the APDU as its TPDU at TPDU level too.
        let data: Vec<u8> = if apdu || t0 {
            tessera_bridge::SELECT_APPLICATION.to_vec()
        } else {
            block(0x00, &tessera_bridge::SELECT_APPLICATION)
        };
        let answer = w.xfr(&data, 0);
        prop_assert_eq!(status(&answer), (0, 0), "exchange after the chaos: {:?}", w.bridge);
    }
}

/// Hardware that accepts everything and does nothing.
struct NullHw;

impl CardContacts for NullHw {
    type Error = ErrorKind;
    fn set_vcc(&mut self, _: bool) {}
    fn set_rst(&mut self, _: bool) {}
    fn set_clock(&mut self, _: bool) {}
    fn set_rate(&mut self, _: LineRate) {}
    fn transmit(&mut self, _: &[u8]) -> Result<(), ErrorKind> {
        Ok(())
    }
}

impl DeadlineTimer for NullHw {
    fn arm(&mut self, _: Instant) {}
    fn disarm(&mut self) {}
}

impl UsbDevice for NullHw {
    type Error = ErrorKind;
    fn attach(&mut self, _: &str) {}
    fn detach(&mut self) {}
    fn send_bulk_in(&mut self, _: &[u8; 10], _: &[u8]) -> Result<(), ErrorKind> {
        Ok(())
    }
    fn send_interrupt(&mut self, _: &[u8]) -> Result<(), ErrorKind> {
        Ok(())
    }
}
