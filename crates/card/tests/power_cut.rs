//! Fault injection: cut the card's power at every persistent write point of VERIFY, CHANGE
//! REFERENCE DATA, RESET RETRY COUNTER, INITIALIZE, key generation and UPDATE BINARY, with the
//! interrupted write lost and with it landed, and prove:
//! - the card file always loads;
//! - no PIN guess is ever gained: the first thing any PIN presentation makes durable is the
//!   decremented counter, so a cut can never leave a compared PIN with its try unspent;
//! - no half-written object is ever visible: after the cut the card holds the state before the
//!   command, a state the command committed, never a mix.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]

mod support;

use std::sync::{Arc, Mutex};

use support::*;
use tessera_card::memory::{CutWrite, MemoryError, MemoryStorage, PowerCut, Storage};
use tessera_card::state::CardState;

/// A storage wrapper that records every image committed through it.
#[derive(Clone)]
struct Recording {
    inner: MemoryStorage,
    images: Arc<Mutex<Vec<Vec<u8>>>>,
}

impl Storage for Recording {
    fn load(&mut self) -> Result<Option<Vec<u8>>, MemoryError> {
        self.inner.load()
    }
    fn commit(&mut self, image: &[u8]) -> Result<(), MemoryError> {
        self.images.lock().unwrap().push(image.to_vec());
        self.inner.commit(image)
    }
}

/// A scenario: how to prepare the card, the command to interrupt, and what must hold of every
/// state the command can leave behind.
struct Scenario {
    name: &'static str,
    /// Commands (hex) that bring a fresh card (seed 40) into the starting state; the applet is
    /// selected and, where `login` is set, the user PIN verified after the last of them.
    setup: &'static [&'static str],
    login: bool,
    command: String,
    /// Checked on the state before, on every committed state, and on every state after a cut.
    invariant: fn(before: &CardState, state: &CardState),
}

fn prepared(s: &Scenario) -> MemoryStorage {
    let (mut card, memory) = new_card(40);
    check(&mut card, SELECT, 0x9000);
    for command in s.setup {
        let (_, sw) = send(&mut card, command);
        assert!(
            sw == 0x9000 || sw & 0xFFF0 == 0x63C0,
            "{}: setup {command}: {sw:04X}",
            s.name
        );
    }
    memory
}

fn select_and_login<St: Storage>(card: &mut tessera_card::applet::Applet<St>, login: bool) {
    check(card, SELECT, 0x9000);
    if login {
        check(card, VERIFY_PIN, 0x9000);
    }
}

fn run(s: &Scenario) {
    // 1. The uninterrupted run: which images does the command commit?
    let memory = prepared(s);
    let before = CardState::from_image(&memory.snapshot().unwrap()).unwrap();
    let recording = Recording {
        inner: memory.clone(),
        images: Arc::default(),
    };
    let mut card = power_up_on(recording.clone(), 40);
    select_and_login(&mut card, s.login);
    let writes_before = recording.images.lock().unwrap().len();
    let (_, sw) = send(&mut card, &s.command);
    let images: Vec<CardState> = recording.images.lock().unwrap()[writes_before..]
        .iter()
        .map(|i| CardState::from_image(i).expect("every committed image loads"))
        .collect();
    assert!(
        !images.is_empty(),
        "{}: the command wrote nothing (SW {sw:04X})",
        s.name
    );
    (s.invariant)(&before, &before);
    for state in &images {
        (s.invariant)(&before, state);
    }

    // 2. Cut the power at each write point of the command, losing or landing that write.
    for cut in 0..images.len() {
        for mode in [CutWrite::Lost, CutWrite::Lands] {
            let memory = prepared(s);
            let login_writes = if s.login { 2 } else { 0 };
            let storage = PowerCut::new(memory.clone(), login_writes + cut, mode);
            let mut card = power_up_on(storage, 40);
            select_and_login(&mut card, s.login);
            let result = card.process(&hex(&s.command));
            assert!(
                matches!(result, Err(MemoryError::PowerLost)),
                "{}: cut at write {cut} ({mode:?}) but the card answered {result:?}",
                s.name
            );
            // Power up again: the file loads, and holds a state the command committed (or the
            // one before it).
            let image = memory.snapshot().unwrap();
            let after = CardState::from_image(&image)
                .unwrap_or_else(|e| panic!("{}: cut at {cut} ({mode:?}): {e}", s.name));
            let expected = match (cut, mode) {
                (0, CutWrite::Lost) => &before,
                (n, CutWrite::Lost) => &images[n - 1],
                (n, CutWrite::Lands) => &images[n],
            };
            assert!(
                after == *expected,
                "{}: cut at {cut} ({mode:?}): unexpected state",
                s.name
            );
            (s.invariant)(&before, &after);
            let mut card = power_up(&memory, 40);
            check(&mut card, SELECT, 0x9000);
        }
    }
}

fn user_tries(state: &CardState) -> u8 {
    state.user_pin.as_ref().map_or(0, |p| p.tries_left)
}
fn so_tries(state: &CardState) -> u8 {
    state.so_pin.as_ref().map_or(0, |p| p.tries_left)
}

/// A PIN presentation never leaves more tries than before unless the PIN was correct, and
/// nothing else changes unless the PIN was correct.
fn no_guess_gained(before: &CardState, state: &CardState) {
    assert!(
        user_tries(state) <= user_tries(before),
        "user tries rose without a correct PIN"
    );
    assert!(
        so_tries(state) <= so_tries(before),
        "SO tries rose without a correct SO-PIN"
    );
    assert_eq!(state.keys, before.keys);
    assert_eq!(state.files, before.files);
}

const WRONG_PIN_ONCE: &str = "00 20 00 81 06 31 31 32 32 33 33";

#[test]
fn verify_wrong_pin() {
    run(&Scenario {
        name: "VERIFY wrong",
        setup: &[INIT_DEFAULT, WRONG_PIN_ONCE],
        login: false,
        command: VERIFY_WRONG.into(),
        invariant: no_guess_gained,
    });
}

#[test]
fn verify_correct_pin_spends_the_try_before_comparing() {
    // With 2 tries left, a correct PIN commits "1 left" first and only then "3 left": a cut
    // at the first write never shows the card comparing without the try being durable.
    run(&Scenario {
        name: "VERIFY correct",
        setup: &[INIT_DEFAULT, WRONG_PIN_ONCE],
        login: false,
        command: VERIFY_PIN.into(),
        invariant: |before, state| {
            assert_eq!(state.keys, before.keys);
            assert_eq!(
                state.user_pin.as_ref().unwrap().value,
                before.user_pin.as_ref().unwrap().value
            );
            let t = user_tries(state);
            assert!(
                t == user_tries(before) || t == user_tries(before) - 1 || t == 3,
                "{t}"
            );
        },
    });
    // The first write is the decrement, the same as for a wrong PIN: a power analyst cannot
    // tell the two apart before the try is spent.
    for command in [VERIFY_PIN, VERIFY_WRONG] {
        let memory = prepared(&Scenario {
            name: "first write",
            setup: &[INIT_DEFAULT],
            login: false,
            command: String::new(),
            invariant: no_guess_gained,
        });
        let mut card = power_up_on(PowerCut::new(memory.clone(), 0, CutWrite::Lands), 40);
        check(&mut card, SELECT, 0x9000);
        assert!(card.process(&hex(command)).is_err());
        let state = CardState::from_image(&memory.snapshot().unwrap()).unwrap();
        assert_eq!(
            user_tries(&state),
            2,
            "{command}: first write is not the decrement"
        );
    }
}

#[test]
fn change_reference_data() {
    run(&Scenario {
        name: "CHANGE REFERENCE DATA user",
        setup: &[INIT_DEFAULT],
        login: false,
        command: "00 24 00 81 0D 36 34 38 32 31 39 37 37 37 37 37 37 37".into(),
        invariant: |before, state| {
            let changed =
                state.user_pin.as_ref().unwrap().value != before.user_pin.as_ref().unwrap().value;
            if changed {
                assert_eq!(user_tries(state), 3, "a new PIN comes with a full counter");
            } else {
                assert!(user_tries(state) >= user_tries(before) - 1);
            }
            assert_eq!(state.keys, before.keys);
        },
    });
    run(&Scenario {
        name: "CHANGE REFERENCE DATA SO wrong",
        setup: &[INIT_DEFAULT],
        login: false,
        command: format!("00 24 00 88 10 {SO_WRONG} 01 02 03 04 05 06 07 08"),
        invariant: no_guess_gained,
    });
}

#[test]
fn reset_retry_counter() {
    run(&Scenario {
        name: "RESET RETRY COUNTER",
        setup: &[INIT_DEFAULT, WRONG_PIN_ONCE, WRONG_PIN_ONCE],
        login: false,
        command: format!("00 2C 00 81 0E {SO_PIN} 31 32 33 34 35 36"),
        invariant: |before, state| {
            let new_pin = state.user_pin.as_ref().unwrap().value.as_slice() == b"123456";
            // The new PIN and the reset counter arrive together, never one without the other.
            assert_eq!(
                new_pin,
                user_tries(state) == 3,
                "PIN and counter out of step"
            );
            assert!(so_tries(state) >= so_tries(before) - 1);
        },
    });
    run(&Scenario {
        name: "RESET RETRY COUNTER wrong SO-PIN",
        setup: &[INIT_DEFAULT],
        login: false,
        command: format!("00 2C 01 81 08 {SO_WRONG}"),
        invariant: no_guess_gained,
    });
}

#[test]
fn initialize() {
    run(&Scenario {
        name: "INITIALIZE (re-initialisation)",
        setup: &[INIT_DEFAULT],
        login: true,
        command: INIT_DEFAULT.into(),
        invariant: |before, state| {
            assert_eq!(
                state.device_key, before.device_key,
                "the device key survives"
            );
            assert_eq!(state.device_certificates, before.device_certificates);
            assert!(state.is_initialised());
        },
    });
}

#[test]
fn key_generation() {
    run(&Scenario {
        name: "GENERATE ASYMMETRIC KEY PAIR",
        setup: &[INIT_DEFAULT],
        login: true,
        command: keygen_p256(1),
        invariant: |_, state| {
            // A key is either absent or complete (it decodes).
            if let Some(object) = state.keys.get(&1) {
                tessera_card::crypto::PrivateKey::from_bytes(&object.key).expect("whole key");
            }
        },
    });
}

#[test]
fn update_binary() {
    run(&Scenario {
        name: "UPDATE BINARY",
        setup: &[INIT_DEFAULT],
        login: true,
        command: "00 D7 CF 10 09 54 02 00 00 53 03 01 02 03".into(),
        invariant: |_, state| {
            // The file is absent or holds all three bytes.
            if let Some(content) = state.files.get(&0xCF10) {
                assert_eq!(content, &[1, 2, 3]);
            }
        },
    });
}
