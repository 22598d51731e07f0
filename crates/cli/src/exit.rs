//! Exit codes scripts can rely on, and the one-line error message.
//!
//! Every failure travels as an `anyhow::Error`; [`classify`] walks its chain of causes and
//! finds the first one that says which [`Exit`] it is: a [`Refusal`] made by this program, a
//! SmartCard-HSM error, a reader or device that could not be opened, a transport failure.

use std::fmt;

use tessera_apdu::StatusWord;
use tessera_host::OpenError;
use tessera_sc_hsm::{
    Error as HsmError, InputError, Operation, TransportError, TransportErrorKind,
};

/// What `tessera` exits with. The numbers are part of the interface: never renumber.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Exit {
    /// 0: the command did what was asked.
    Ok = 0,
    /// 1: the operation failed (the message says what to do).
    Failed = 1,
    /// 2: usage: a bad argument or input (a PIN of the wrong length, a missing PIN source).
    Usage = 2,
    /// 3: no device: no reader, no card, no such USB device, no card file.
    NoDevice = 3,
    /// 4: a wrong PIN or SO-PIN was presented; tries remain.
    WrongPin = 4,
    /// 5: a PIN or the SO-PIN is blocked, or the command was refused for safety.
    Blocked = 5,
    /// 6: the user answered something other than "yes".
    Cancelled = 6,
}

impl Exit {
    /// The process exit status.
    pub fn code(self) -> u8 {
        self as u8
    }
}

/// The exit codes as `tessera --help` shows them (after_help) and the crate doc repeats.
pub const EXIT_CODES_HELP: &str = "\
Exit codes:
  0  ok
  1  the operation failed (the message says what to do)
  2  usage: bad arguments or input (nothing was sent to the card)
  3  no device: no reader, card, USB device or card file
  4  wrong PIN or SO-PIN (tries remain)
  5  a PIN or the SO-PIN is blocked, or refused for safety
     (`tessera status` exits 5 when either PIN is blocked)
  6  cancelled by the user

PINs never come from the command line: they are read from a prompt without echo, or from the
environment variable or file named by --pin-env/--pin-file (--so-pin-env/--so-pin-file for the
SO-PIN, 16 hex digits).";

/// A failure decided by this program (not by the card): its exit code and its message.
#[derive(Debug)]
pub struct Refusal {
    /// The exit code.
    pub exit: Exit,
    message: String,
}

impl fmt::Display for Refusal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for Refusal {}

/// An error with its own exit code.
pub fn refuse(exit: Exit, message: impl Into<String>) -> anyhow::Error {
    anyhow::Error::new(Refusal {
        exit,
        message: message.into(),
    })
}

/// A usage error (exit 2).
pub fn usage(message: impl Into<String>) -> anyhow::Error {
    refuse(Exit::Usage, message)
}

/// The exit code for `error`: the first cause in its chain that says.
pub fn classify(error: &anyhow::Error) -> Exit {
    for cause in error.chain() {
        if let Some(r) = cause.downcast_ref::<Refusal>() {
            return r.exit;
        }
        if let Some(e) = cause.downcast_ref::<HsmError>() {
            return hsm_exit(e);
        }
        if let Some(e) = cause.downcast_ref::<OpenError>() {
            return match e {
                OpenError::Transport(t) => transport_exit(t.kind()),
                OpenError::Ambiguous { .. } => Exit::Usage,
                _ => Exit::NoDevice,
            };
        }
        if let Some(e) = cause.downcast_ref::<TransportError>() {
            return transport_exit(e.kind());
        }
        if let Some(e) = cause.downcast_ref::<InputError>() {
            return input_exit(e);
        }
        if cause
            .downcast_ref::<tessera_card::memory::MemoryError>()
            .is_some()
        {
            return Exit::NoDevice;
        }
    }
    Exit::Failed
}

/// sc-hsm's errors: a wrong PIN is 4, a blocked one 5, a missing reader or card 3, a card
/// that is not a SmartCard-HSM 3, input the card never saw 2, anything else 1.
pub fn hsm_exit(e: &HsmError) -> Exit {
    match e {
        HsmError::WrongPin { .. } => Exit::WrongPin,
        HsmError::PinBlocked { .. } => Exit::Blocked,
        HsmError::Transport { source, .. } => transport_exit(source.kind()),
        HsmError::Input(input) => input_exit(input),
        // SELECT answered "file not found": the card is not a SmartCard-HSM.
        HsmError::Status {
            operation: Operation::Select,
            status: StatusWord::FileNotFound,
        } => Exit::NoDevice,
        _ => Exit::Failed,
    }
}

fn transport_exit(kind: TransportErrorKind) -> Exit {
    match kind {
        TransportErrorKind::ReaderGone | TransportErrorKind::CardRemoved => Exit::NoDevice,
        _ => Exit::Failed,
    }
}

fn input_exit(e: &InputError) -> Exit {
    match e {
        InputError::KeyIdInUse(_) | InputError::NoFreeKeyId => Exit::Failed,
        _ => Exit::Usage,
    }
}

/// The error as one line: each cause once (a cause whose text its parent already shows is
/// left out), line breaks replaced by spaces.
pub fn one_line(error: &anyhow::Error) -> String {
    let mut line = String::new();
    for cause in error.chain() {
        let text = cause.to_string();
        let text = text.trim();
        if text.is_empty() || line.contains(text) {
            continue;
        }
        if !line.is_empty() {
            line.push_str(": ");
        }
        line.push_str(text);
    }
    line.split_whitespace().collect::<Vec<_>>().join(" ")
}
