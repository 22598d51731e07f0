//! Shared by the client tests: a virtual card on memory storage, transports that record or
//! script APDUs, hex helpers.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::VecDeque;

use tessera_card::memory::MemoryStorage;
use tessera_card::state::CardState;
use tessera_card::virtual_card::{CardConfig, VirtualCard};
use tessera_sc_hsm::{
    InitParams, Pin, ScHsm, SoPin, Transport, TransportError, TransportErrorKind,
};

/// Bytes from hex; spaces and `|` ignored.
pub fn hex(s: &str) -> Vec<u8> {
    let digits: String = s.chars().filter(|c| c.is_ascii_hexdigit()).collect();
    assert!(digits.len() % 2 == 0, "odd number of hex digits in {s:?}");
    (0..digits.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&digits[i..i + 2], 16).unwrap())
        .collect()
}

/// Upper-case hex with spaces.
pub fn to_hex(bytes: &[u8]) -> String {
    bytes
        .iter()
        .map(|b| format!("{b:02X}"))
        .collect::<Vec<_>>()
        .join(" ")
}

/// sc-hsm-tool's default PINs (sc-hsm-protocol.md §6.2).
pub const USER_PIN: &str = "648219";
pub const SO_PIN: &str = "3537363231383830";
pub const WRONG_PIN: &str = "112233";
pub const WRONG_SO_PIN: &str = "0102030405060708";

pub fn pin(s: &str) -> Pin {
    Pin::new(s).unwrap()
}

pub fn so_pin(s: &str) -> SoPin {
    SoPin::from_hex(s).unwrap()
}

/// A virtual card on memory that outlives it.
pub struct Bench {
    pub memory: MemoryStorage,
    pub hsm: ScHsm<VirtualCard<MemoryStorage>>,
}

impl Bench {
    /// A new (uninitialised) virtual card with seed `seed`, applet selected.
    pub fn new(seed: u8) -> Bench {
        let memory = MemoryStorage::new();
        let card = VirtualCard::new(
            memory.clone(),
            CardConfig::default(),
            [seed; 32],
            [seed; 32],
        )
        .unwrap();
        Bench {
            memory,
            hsm: ScHsm::open(card).unwrap(),
        }
    }

    /// A card initialised with sc-hsm-tool's defaults, then selected again (logged out).
    pub fn initialised(seed: u8) -> Bench {
        let mut bench = Bench::new(seed);
        bench
            .hsm
            .initialise(&InitParams::new(so_pin(SO_PIN), pin(USER_PIN)))
            .unwrap();
        bench.hsm.select().unwrap();
        bench
    }

    /// The committed card state.
    pub fn state(&self) -> CardState {
        CardState::from_image(&self.memory.snapshot().unwrap()).unwrap()
    }

    pub fn user_tries(&self) -> u8 {
        self.state().user_pin.unwrap().tries_left
    }

    pub fn so_tries(&self) -> u8 {
        self.state().so_pin.unwrap().tries_left
    }
}

/// Wraps a transport and records every command and response.
#[derive(Debug)]
pub struct Recording<T> {
    pub inner: T,
    pub log: Vec<(Vec<u8>, Vec<u8>)>,
    /// What `supports_extended_length` says; `None` passes the inner transport's answer.
    pub extended: Option<bool>,
}

impl<T> Recording<T> {
    pub fn new(inner: T) -> Self {
        Recording {
            inner,
            log: Vec::new(),
            extended: None,
        }
    }

    pub fn short_only(inner: T) -> Self {
        Recording {
            inner,
            log: Vec::new(),
            extended: Some(false),
        }
    }

    /// The commands sent, in order.
    pub fn commands(&self) -> Vec<Vec<u8>> {
        self.log.iter().map(|(c, _)| c.clone()).collect()
    }
}

impl<T: Transport> Transport for Recording<T> {
    fn transmit(&mut self, command: &[u8]) -> Result<Vec<u8>, TransportError> {
        let response = self.inner.transmit(command)?;
        self.log.push((command.to_vec(), response.clone()));
        Ok(response)
    }
    fn atr(&mut self) -> Result<Vec<u8>, TransportError> {
        self.inner.atr()
    }
    fn reset(&mut self) -> Result<(), TransportError> {
        self.inner.reset()
    }
    fn supports_extended_length(&self) -> bool {
        self.extended
            .unwrap_or_else(|| self.inner.supports_extended_length())
    }
}

/// A card that answers from a script, whatever it is asked: for garbage and unexpected
/// status words. An exhausted script answers with a transport timeout.
#[derive(Debug)]
pub struct Scripted {
    pub answers: VecDeque<Result<Vec<u8>, TransportErrorKind>>,
    pub sent: Vec<Vec<u8>>,
    pub extended: bool,
}

impl Scripted {
    pub fn new<I: IntoIterator<Item = Vec<u8>>>(answers: I) -> Self {
        Scripted {
            answers: answers.into_iter().map(Ok).collect(),
            sent: Vec::new(),
            extended: true,
        }
    }

    /// The SELECT answer of a SmartCard-HSM 3.5 initialised with options 0001.
    pub fn select_ok() -> Vec<u8> {
        hex("62 17 82 01 38 84 0B E8 2B 06 01 04 01 81 C3 1F 02 01 85 05 00 01 00 03 05 90 00")
    }

    /// A script that starts with a good SELECT.
    pub fn after_select<I: IntoIterator<Item = Vec<u8>>>(answers: I) -> Self {
        let mut s = Scripted::new([Scripted::select_ok()]);
        s.answers.extend(answers.into_iter().map(Ok));
        s
    }
}

impl Transport for Scripted {
    fn transmit(&mut self, command: &[u8]) -> Result<Vec<u8>, TransportError> {
        self.sent.push(command.to_vec());
        match self.answers.pop_front() {
            Some(Ok(bytes)) => Ok(bytes),
            Some(Err(kind)) => Err(TransportError::new(kind, "scripted failure")),
            None => Err(TransportError::new(
                TransportErrorKind::Timeout,
                "the script is over",
            )),
        }
    }
    fn atr(&mut self) -> Result<Vec<u8>, TransportError> {
        Ok(hex(
            "3B DE 18 FF 81 91 FE 1F C3 80 31 81 54 48 53 4D 31 73 80 21 40 81 07 1C",
        ))
    }
    fn reset(&mut self) -> Result<(), TransportError> {
        Ok(())
    }
    fn supports_extended_length(&self) -> bool {
        self.extended
    }
}
