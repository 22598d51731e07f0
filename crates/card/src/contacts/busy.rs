//! How long the card is busy with a command: the modelled processing time of each APDU.
//!
//! The applet's real code runs as soon as the command arrives; only the moment the answer
//! leaves the card is modelled, from a table of times by operation ([`BusyTimes`]). Every figure
//! in [`BusyTimes::default`] is a **GUESS** for a SmartCard-HSM on JCOP 3 (no measurement of a
//! real card was available); sc-hsm-protocol.md §8 (NKP-78) gives the one known figure,
//! INITIALIZE on a heavily populated card taking about 30 s. A board that models another card
//! sets its own table.

use std::time::Duration;

use crate::crypto::{KeySpec, PrivateKey};
use crate::state::CardState;

/// What a command turned out to be, for its processing time.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Operation {
    /// GENERATE ASYMMETRIC KEY PAIR (INS 46, sc-hsm-protocol.md §2.11) of a key of this kind.
    KeyGeneration(KeySpec),
    /// A private-key operation with a key of this kind: SIGN (INS 68, §2.12), DECIPHER or ECDH
    /// (INS 62, §2.13).
    PrivateKey(KeySpec),
    /// INITIALIZE DEVICE (INS 50, §2.5) on a card that held this many keys and files: the card
    /// wipes them (garbage collection, §8).
    Initialize {
        /// Keys plus files on the card before the command.
        objects: usize,
    },
    /// Anything else, a part of a command chain, or a command the card refused (its status
    /// word is neither 9000 nor 61xx): refusing is quick.
    Other {
        /// The instruction byte.
        ins: u8,
    },
}

impl Operation {
    /// Classifies a command after the applet processed it: `state` is the card state after the
    /// command, `objects_before` the number of keys and files before it.
    pub(crate) fn classify(
        command: &[u8],
        response: &[u8],
        state: &CardState,
        objects_before: usize,
    ) -> Operation {
        let (cla, ins, p1) = match command {
            [cla, ins, p1, ..] => (*cla, *ins, *p1),
            [_, ins] => return Operation::Other { ins: *ins },
            _ => return Operation::Other { ins: 0 },
        };
        let succeeded = matches!(response, [.., 0x90, 0x00] | [.., 0x61, _]);
        // A chained part (CLA bit 5, ISO 7816-4 §5.1.1) is only gathered; the last part works.
        if !succeeded || cla & 0x10 != 0 {
            return Operation::Other { ins };
        }
        let key_spec = || {
            state
                .keys
                .get(&p1)
                .and_then(|key| PrivateKey::from_bytes(&key.key).ok())
                .map(|key| key.spec())
        };
        match ins {
            0x46 => key_spec().map_or(Operation::Other { ins }, Operation::KeyGeneration),
            0x68 | 0x62 => key_spec().map_or(Operation::Other { ins }, Operation::PrivateKey),
            0x50 => Operation::Initialize {
                objects: objects_before,
            },
            _ => Operation::Other { ins },
        }
    }
}

/// Modelled processing times by operation. Every default is a GUESS (see the module docs);
/// [`BusyTimes::time`] says how an operation maps to a time.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BusyTimes {
    /// Any command not covered below (and any refused command). GUESS 2 ms: a JCOP 3 answers a
    /// simple APDU in a few milliseconds.
    pub command: Duration,
    /// EC key generation, any curve. GUESS 100 ms.
    pub ec_key_generation: Duration,
    /// RSA key generation as `(bits, time)`, by increasing bits: a key takes the time of the
    /// first entry with at least its bits (the last entry's beyond). GUESS 1024: 300 ms,
    /// 2048: 1 s, 3072: 5 s, 4096: 15 s (on a real card the time varies a lot with the
    /// prime search; the host's own RSA-4096 generation takes 2 to 25 s).
    pub rsa_key_generation: Vec<(u16, Duration)>,
    /// An EC private-key operation (ECDSA, ECDH). GUESS 30 ms.
    pub ec_private_key: Duration,
    /// An RSA private-key operation as `(bits, time)`, looked up like
    /// [`BusyTimes::rsa_key_generation`]. GUESS 2048: 60 ms, 3072: 150 ms, 4096: 350 ms.
    pub rsa_private_key: Vec<(u16, Duration)>,
    /// INITIALIZE DEVICE on an empty card. GUESS 1 s.
    pub initialize: Duration,
    /// INITIALIZE DEVICE: added per key or file wiped. GUESS 300 ms, so that a card holding
    /// about 100 objects takes the ~30 s of sc-hsm-protocol.md §8 (NKP-78).
    pub initialize_per_object: Duration,
    /// Overrides by instruction byte, whatever the operation (a board or a test can make any
    /// command long, e.g. GET CHALLENGE 20 s).
    pub by_ins: Vec<(u8, Duration)>,
}

impl Default for BusyTimes {
    fn default() -> Self {
        let ms = Duration::from_millis;
        BusyTimes {
            command: ms(2),
            ec_key_generation: ms(100),
            rsa_key_generation: vec![
                (1024, ms(300)),
                (2048, ms(1_000)),
                (3072, ms(5_000)),
                (4096, ms(15_000)),
            ],
            ec_private_key: ms(30),
            rsa_private_key: vec![(2048, ms(60)), (3072, ms(150)), (4096, ms(350))],
            initialize: ms(1_000),
            initialize_per_object: ms(300),
            by_ins: Vec::new(),
        }
    }
}

impl BusyTimes {
    /// The processing time of `operation`, a command with instruction byte `ins`: the
    /// [`BusyTimes::by_ins`] entry for `ins` if there is one, otherwise the operation's entry.
    pub fn time(&self, ins: u8, operation: Operation) -> Duration {
        if let Some(&(_, time)) = self.by_ins.iter().find(|(i, _)| *i == ins) {
            return time;
        }
        match operation {
            Operation::KeyGeneration(KeySpec::Ec(_)) => self.ec_key_generation,
            Operation::KeyGeneration(KeySpec::Rsa { bits }) => {
                by_bits(&self.rsa_key_generation, bits).unwrap_or(self.command)
            }
            Operation::PrivateKey(KeySpec::Ec(_)) => self.ec_private_key,
            Operation::PrivateKey(KeySpec::Rsa { bits }) => {
                by_bits(&self.rsa_private_key, bits).unwrap_or(self.command)
            }
            Operation::Initialize { objects } => {
                let per_object = u32::try_from(objects).unwrap_or(u32::MAX);
                self.initialize
                    .saturating_add(self.initialize_per_object.saturating_mul(per_object))
            }
            Operation::Other { .. } => self.command,
        }
    }
}

/// The time of the first entry with at least `bits`, else the last entry's.
fn by_bits(table: &[(u16, Duration)], bits: u16) -> Option<Duration> {
    table
        .iter()
        .find(|(b, _)| *b >= bits)
        .or(table.last())
        .map(|(_, time)| *time)
}
