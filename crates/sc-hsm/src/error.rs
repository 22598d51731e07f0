//! Errors: each displays as one line that names the operation, says what happened (the status
//! word and its meaning, when the card refused), and what to do.

use std::fmt;

use tessera_apdu::StatusWord;

use crate::pin::PinRole;
use crate::transport::{TransportError, TransportErrorKind};

/// The command (or step) an error happened in, named as the SmartCard-HSM documentation
/// names it (sc-hsm-protocol.md §2.0).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Operation {
    /// SELECT of the applet.
    Select,
    /// VERIFY without data: the status of a PIN.
    PinStatus(PinRole),
    /// VERIFY with a PIN.
    Verify(PinRole),
    /// CHANGE REFERENCE DATA of a PIN.
    ChangePin(PinRole),
    /// RESET RETRY COUNTER (user-PIN unblock with the SO-PIN).
    ResetRetryCounter,
    /// INITIALIZE DEVICE.
    Initialize,
    /// IMPORT DKEK SHARE.
    ImportDkekShare,
    /// The DKEK status query (INS 52 without data).
    DkekStatus,
    /// ENUMERATE OBJECTS.
    EnumerateObjects,
    /// READ BINARY of a file.
    ReadBinary(u16),
    /// UPDATE BINARY of a file.
    UpdateBinary(u16),
    /// DELETE FILE.
    DeleteFile(u16),
    /// GENERATE ASYMMETRIC KEY PAIR into a key id.
    GenerateKeyPair(u8),
    /// SIGN with a key id.
    Sign(u8),
    /// Reading the device certificates (EF 2F02) and the serial.
    DeviceCertificates,
}

impl fmt::Display for Operation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Operation::Select => f.write_str("SELECT"),
            Operation::PinStatus(role) => write!(f, "VERIFY ({role} status)"),
            Operation::Verify(PinRole::User) => f.write_str("VERIFY"),
            Operation::Verify(PinRole::So) => f.write_str("VERIFY (SO-PIN)"),
            Operation::ChangePin(role) => write!(f, "CHANGE REFERENCE DATA ({role})"),
            Operation::ResetRetryCounter => f.write_str("RESET RETRY COUNTER"),
            Operation::Initialize => f.write_str("INITIALIZE DEVICE"),
            Operation::ImportDkekShare => f.write_str("IMPORT DKEK SHARE"),
            Operation::DkekStatus => f.write_str("DKEK STATUS"),
            Operation::EnumerateObjects => f.write_str("ENUMERATE OBJECTS"),
            Operation::ReadBinary(fid) => write!(f, "READ BINARY {fid:04X}"),
            Operation::UpdateBinary(fid) => write!(f, "UPDATE BINARY {fid:04X}"),
            Operation::DeleteFile(fid) => write!(f, "DELETE FILE {fid:04X}"),
            Operation::GenerateKeyPair(id) => {
                write!(f, "GENERATE ASYMMETRIC KEY PAIR (key {id:02X})")
            }
            Operation::Sign(id) => write!(f, "SIGN (key {id:02X})"),
            Operation::DeviceCertificates => f.write_str("device certificates (EF 2F02)"),
        }
    }
}

/// Input the caller gave that cannot be sent: caught before anything reaches the card.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum InputError {
    /// A user PIN that is not 6 to 16 bytes.
    #[error("the user PIN must be 6 to 16 characters long, not {len}")]
    PinLength {
        /// Its length in bytes.
        len: usize,
    },
    /// An SO-PIN that is not 16 characters.
    #[error(
        "the SO-PIN must be exactly 16 hex digits (e.g. 3537363231383830), not {len} characters"
    )]
    SoPinLength {
        /// Its length in characters.
        len: usize,
    },
    /// An SO-PIN with a character that is not a hex digit.
    #[error("the SO-PIN must be 16 hex digits (0-9, a-f): character {position} is not one")]
    SoPinDigit {
        /// 1-based position of the first bad character.
        position: usize,
    },
    /// A user-PIN retry counter outside 1..=10, or more than the PIN length allows.
    #[error(
        "a user PIN of {pin_len} characters allows 1 to {max} retries (sc-hsm-tool's rule: 6 \
         characters 3, 7 characters 5, 8 or more 10), not {retries}"
    )]
    RetryCounter {
        /// The retry counter asked for.
        retries: u8,
        /// The most allowed for this PIN length.
        max: u8,
        /// The PIN length.
        pin_len: usize,
    },
    /// Key id 0 is the device key; ids are 1 to 255.
    #[error("key id 0 is the device authentication key; use 1 to 255")]
    DeviceKeyId,
    /// Every key id 1..=255 is in use.
    #[error("all 255 key ids are in use: delete a key first")]
    NoFreeKeyId,
    /// The key id asked for already holds a key.
    #[error("key {0:02X} already exists: delete it first or choose another id")]
    KeyIdInUse(u8),
    /// A label longer than 255 bytes.
    #[error("the key label is {len} bytes long; at most 255")]
    LabelTooLong {
        /// Its length in bytes.
        len: usize,
    },
    /// An input to sign whose length does not fit the mechanism.
    #[error("{mechanism} needs {expected}, got {len} bytes")]
    SignInputLength {
        /// The mechanism.
        mechanism: String,
        /// What it needs.
        expected: &'static str,
        /// What was given.
        len: usize,
    },
    /// A mechanism the SmartCard-HSM does not offer.
    #[error("{0}")]
    Unsupported(String),
    /// A file larger than a SmartCard-HSM file can be (65 535 bytes).
    #[error("{len} bytes do not fit a file (at most 65 535)")]
    FileTooLarge {
        /// Bytes to write.
        len: usize,
    },
}

/// A SmartCard-HSM operation that failed. Displays as one line: the operation, what happened,
/// what to do.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The transport failed (the reader or the card is gone, a timeout, a protocol error).
    #[error("{operation}: {source}")]
    Transport {
        /// What was being done.
        operation: Operation,
        /// The transport's error.
        #[source]
        source: TransportError,
    },
    /// A wrong PIN was presented: `63Cx` (sc-hsm-protocol.md §4.2).
    #[error("{operation}: 63C{tries_left:X} — wrong {pin}, {}", tries_phrase(*.pin, *.tries_left))]
    WrongPin {
        /// What was being done.
        operation: Operation,
        /// Which PIN.
        pin: PinRole,
        /// Tries left (at least 1).
        tries_left: u8,
    },
    /// The PIN is blocked: `6983`, or `63C0` (sc-hsm-protocol.md §4.2, §4.6).
    #[error("{operation}: {} — the {pin} is blocked; {}", status_hex(*.status), blocked_advice(*.pin))]
    PinBlocked {
        /// What was being done.
        operation: Operation,
        /// Which PIN.
        pin: PinRole,
        /// The status word (`6983` or `63C0`).
        status: StatusWord,
    },
    /// The user PIN is still a transport PIN: `6984` (sc-hsm-protocol.md §4.4).
    #[error(
        "{operation}: 6984 — the user PIN is still the transport PIN; set your own first \
         (tessera change-pin)"
    )]
    TransportPin {
        /// What was being done.
        operation: Operation,
    },
    /// The device has never been initialised: `6A88` (sc-hsm-protocol.md §4.2).
    #[error(
        "{operation}: 6A88 — the device is not initialised; initialise it first (tessera init)"
    )]
    NotInitialised {
        /// What was being done.
        operation: Operation,
    },
    /// The command needs a verified user PIN: `6982` (sc-hsm-protocol.md §4.3).
    #[error(
        "{operation}: 6982 — security status not satisfied; verify the user PIN first (and do \
         not let another program reset the card in between)"
    )]
    NotAuthenticated {
        /// What was being done.
        operation: Operation,
    },
    /// Any other status word the operation does not expect.
    #[error("{operation}: {}", describe_status(*.operation, *.status))]
    Status {
        /// What was being done.
        operation: Operation,
        /// The status word.
        status: StatusWord,
    },
    /// The card (or the transport) answered bytes that do not make sense: too short, a
    /// malformed TLV or certificate.
    #[error("{operation}: malformed answer from the card: {what}; try again, and report a bug if it persists")]
    Malformed {
        /// What was being done.
        operation: Operation,
        /// What is wrong with it.
        what: String,
    },
    /// The caller's input cannot be sent.
    #[error(transparent)]
    Input(#[from] InputError),
}

impl Error {
    /// The status word the card answered, for errors that come from one.
    pub fn status_word(&self) -> Option<StatusWord> {
        match self {
            Error::WrongPin { tries_left, .. } => Some(StatusWord::RemainingRetries(*tries_left)),
            Error::PinBlocked { status, .. } => Some(*status),
            Error::TransportPin { .. } => Some(StatusWord::ReferenceDataNotUsable),
            Error::NotInitialised { .. } => Some(StatusWord::ReferencedDataNotFound),
            Error::NotAuthenticated { .. } => Some(StatusWord::SecurityStatusNotSatisfied),
            Error::Status { status, .. } => Some(*status),
            _ => None,
        }
    }

    /// The transport error kind, for transport failures.
    pub fn transport_kind(&self) -> Option<TransportErrorKind> {
        match self {
            Error::Transport { source, .. } => Some(source.kind()),
            _ => None,
        }
    }

    /// The operation that failed (`None` for input errors).
    pub fn operation(&self) -> Option<Operation> {
        match self {
            Error::Transport { operation, .. }
            | Error::WrongPin { operation, .. }
            | Error::PinBlocked { operation, .. }
            | Error::TransportPin { operation }
            | Error::NotInitialised { operation }
            | Error::NotAuthenticated { operation }
            | Error::Status { operation, .. }
            | Error::Malformed { operation, .. } => Some(*operation),
            Error::Input(_) => None,
        }
    }

    /// A malformed answer.
    pub(crate) fn malformed(operation: Operation, what: impl Into<String>) -> Error {
        Error::Malformed {
            operation,
            what: what.into(),
        }
    }

    /// The error for `status` in `operation`, naming the PIN-related ones. `pin` is the PIN
    /// the command presents, if any.
    pub(crate) fn from_status(
        operation: Operation,
        status: StatusWord,
        pin: Option<PinRole>,
    ) -> Error {
        match (status, pin) {
            (StatusWord::RemainingRetries(0), Some(pin)) => Error::PinBlocked {
                operation,
                pin,
                status,
            },
            (StatusWord::RemainingRetries(n), Some(pin)) => Error::WrongPin {
                operation,
                pin,
                tries_left: n,
            },
            (StatusWord::AuthenticationMethodBlocked, Some(pin)) => Error::PinBlocked {
                operation,
                pin,
                status,
            },
            (StatusWord::ReferenceDataNotUsable, Some(PinRole::User)) => {
                Error::TransportPin { operation }
            }
            (StatusWord::ReferencedDataNotFound, Some(_)) => Error::NotInitialised { operation },
            (StatusWord::SecurityStatusNotSatisfied, _) => Error::NotAuthenticated { operation },
            _ => Error::Status { operation, status },
        }
    }
}

fn status_hex(status: StatusWord) -> String {
    format!("{:04X}", u16::from(status))
}

fn tries_phrase(pin: PinRole, tries_left: u8) -> String {
    match tries_left {
        1 => format!("1 try left; one more wrong {pin} blocks it"),
        n => format!("{n} tries left"),
    }
}

fn blocked_advice(pin: PinRole) -> &'static str {
    match pin {
        PinRole::User => "unblock it with the SO-PIN (tessera unblock)",
        PinRole::So => {
            "it cannot be unblocked: re-initialisation and user-PIN unblock are no longer possible \
             (the user PIN still works if it is not blocked)"
        }
    }
}

/// `6A81 — algorithm not allowed …` where the operation gives the status word a meaning,
/// otherwise the status word's own description (`6F00 (not known to this crate)`).
fn describe_status(operation: Operation, status: StatusWord) -> String {
    let hex = status_hex(status);
    match meaning(operation, status) {
        Some(meaning) => format!("{hex} — {meaning}"),
        None => format!("{status} — the card refused the command"),
    }
}

/// What `status` means in `operation` (sc-hsm-protocol.md §2, §4, §7), with what to do.
fn meaning(operation: Operation, status: StatusWord) -> Option<&'static str> {
    use Operation as Op;
    use StatusWord as Sw;
    Some(match (operation, status) {
        (Op::Select, Sw::FileNotFound) => {
            "the SmartCard-HSM applet is not on this card; is this a Nitrokey HSM?"
        }
        (_, Sw::InsNotSupported | Sw::ClaNotSupported) => {
            "the command is not supported: the SmartCard-HSM applet is not selected, or this \
             version lacks it"
        }
        (Op::ResetRetryCounter, Sw::CommandNotAllowed) => {
            "user-PIN unblock with the SO-PIN was not enabled when the device was initialised"
        }
        (Op::Verify(_) | Op::ChangePin(_) | Op::ResetRetryCounter, Sw::WrongLength) => {
            "wrong PIN length (for a PIN change: the old PIN does not have the stored length)"
        }
        (Op::Initialize, Sw::IncorrectData) => "the card rejected the initialisation data",
        (Op::Initialize, Sw::ConditionsNotSatisfied | Sw::CommandNotAllowed) => {
            "the card refused to initialise (wrong SO-PIN on some versions)"
        }
        (Op::ImportDkekShare, Sw::ConditionsNotSatisfied) => {
            "all DKEK shares have been imported already"
        }
        (Op::ImportDkekShare | Op::DkekStatus, Sw::ReferencedDataNotFound) => {
            "the device was initialised without DKEK shares"
        }
        (Op::GenerateKeyPair(_), Sw::ConditionsNotSatisfied) => {
            "DKEK shares are still outstanding: import them first (tessera dkek import)"
        }
        (Op::GenerateKeyPair(_), Sw::IncorrectData | Sw::WrongLength) => {
            "the card rejected the key-generation template"
        }
        (Op::GenerateKeyPair(_) | Op::Sign(_), Sw::Unknown(0x6A81)) => {
            "algorithm or key size not supported, or not allowed for this key"
        }
        (Op::Sign(_), Sw::ReferencedDataNotFound | Sw::FileNotFound) => "there is no such key",
        (Op::Sign(_), Sw::ReferenceDataNotUsable) => "the key's use counter is exhausted",
        (Op::Sign(_), Sw::IncorrectData) => {
            "the card could not sign this input (wrong length for the key or mechanism?)"
        }
        (Op::ReadBinary(_) | Op::DeleteFile(_) | Op::UpdateBinary(_), Sw::FileNotFound) => {
            "no such file"
        }
        (_, Sw::Unknown(0x6581)) => "memory failure on the card: the command was not carried out",
        (_, Sw::Unknown(0x6F00)) => "the card failed internally (no precise diagnosis)",
        _ => return None,
    })
}
