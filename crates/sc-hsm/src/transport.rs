//! What carries APDUs to the card: the [`Transport`] trait and its error type.
//!
//! A transport moves one command APDU to the card and one response APDU back, reads the ATR,
//! and resets the card. It does not interpret status words: GET RESPONSE for `61xx`, `6Cxx`
//! and command chaining are the client's job ([`crate::ScHsm`]), so every transport gets them
//! the same way. Implementations: PC/SC and CCID over USB in `tessera-host`, the in-process
//! virtual card behind this crate's `virtual` feature.

use std::error::Error as StdError;
use std::fmt;

/// A link to a smart card that carries APDUs (ISO/IEC 7816-4 §5).
///
/// # Call sequence
///
/// 1. The transport is created connected to a powered card (a PC/SC connection, a CCID slot
///    after IccPowerOn, a virtual card); [`atr`](Transport::atr) may be read at any time.
/// 2. [`transmit`](Transport::transmit) one command APDU at a time; each call returns the whole
///    response APDU (data, SW1, SW2) exactly as the card sent it.
/// 3. [`reset`](Transport::reset) warm-resets the card: every selection and PIN verification is
///    lost, and the SmartCard-HSM applet must be selected again (sc-hsm-protocol.md §1.1).
///
/// A command longer than 5 + 255 bytes, or asking for more than 256 response bytes, is an
/// extended-length APDU (ISO/IEC 7816-4 §5.1); send one only when
/// [`supports_extended_length`](Transport::supports_extended_length) says so.
pub trait Transport {
    /// Sends one command APDU and returns the response APDU (data, then SW1 SW2).
    fn transmit(&mut self, command: &[u8]) -> Result<Vec<u8>, TransportError>;

    /// The card's answer to reset.
    fn atr(&mut self) -> Result<Vec<u8>, TransportError>;

    /// Warm-resets the card (ISO/IEC 7816-3 §6.2.3). Selections and verified PINs are lost.
    fn reset(&mut self) -> Result<(), TransportError>;

    /// Whether extended-length APDUs reach the card (Lc up to 65 535, Le up to 65 536). When
    /// `false`, the client chains long commands (ISO/IEC 7816-4 §5.3.3) and fetches long
    /// responses with GET RESPONSE.
    fn supports_extended_length(&self) -> bool;
}

impl<T: Transport + ?Sized> Transport for &mut T {
    fn transmit(&mut self, command: &[u8]) -> Result<Vec<u8>, TransportError> {
        (**self).transmit(command)
    }
    fn atr(&mut self) -> Result<Vec<u8>, TransportError> {
        (**self).atr()
    }
    fn reset(&mut self) -> Result<(), TransportError> {
        (**self).reset()
    }
    fn supports_extended_length(&self) -> bool {
        (**self).supports_extended_length()
    }
}

impl<T: Transport + ?Sized> Transport for Box<T> {
    fn transmit(&mut self, command: &[u8]) -> Result<Vec<u8>, TransportError> {
        (**self).transmit(command)
    }
    fn atr(&mut self) -> Result<Vec<u8>, TransportError> {
        (**self).atr()
    }
    fn reset(&mut self) -> Result<(), TransportError> {
        (**self).reset()
    }
    fn supports_extended_length(&self) -> bool {
        (**self).supports_extended_length()
    }
}

/// What kind of failure a [`TransportError`] is: what a caller can act on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum TransportErrorKind {
    /// The reader (or the USB device) disappeared or cannot be reached: unplugged, or the
    /// service behind it (pcscd) stopped.
    ReaderGone,
    /// There is no card in the reader, or it was removed.
    CardRemoved,
    /// The card was reset (by another program sharing the reader, or by the transport after
    /// the card stopped answering): the applet must be selected and PINs verified again. The
    /// command was not carried out, or not completely.
    CardReset,
    /// The card or the reader did not answer in time.
    Timeout,
    /// The reader or the card answered something the protocol does not allow (a malformed
    /// CCID message or T=1 block, an answer to another request).
    Protocol,
    /// The reader is used by another program that holds it exclusively.
    Busy,
    /// Anything else (an operating-system error, an unsupported reader).
    Other,
}

impl TransportErrorKind {
    /// What the user can do about it, in a few words.
    pub fn advice(self) -> &'static str {
        match self {
            TransportErrorKind::ReaderGone => "reconnect the token (and check that pcscd runs)",
            TransportErrorKind::CardRemoved => "insert the card or reconnect the token",
            TransportErrorKind::CardReset => {
                "the card was reset (by another program, or after an error); try again, and \
                 verify the PIN again"
            }
            TransportErrorKind::Timeout => {
                "the card may be busy (INITIALIZE can take 30 s); try again, or reconnect the token"
            }
            TransportErrorKind::Protocol => "reconnect the token; if it persists, report a bug",
            TransportErrorKind::Busy => "close the other program that uses the token (scdaemon?)",
            TransportErrorKind::Other => "check the reader and try again",
        }
    }
}

impl fmt::Display for TransportErrorKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            TransportErrorKind::ReaderGone => "reader gone",
            TransportErrorKind::CardRemoved => "card removed",
            TransportErrorKind::CardReset => "card reset",
            TransportErrorKind::Timeout => "timeout",
            TransportErrorKind::Protocol => "protocol error",
            TransportErrorKind::Busy => "reader busy",
            TransportErrorKind::Other => "transport error",
        })
    }
}

/// A transport failure: its [`kind`](TransportError::kind), what happened, and (as `source`)
/// the underlying error.
///
/// It displays as one line: what happened, then what to do (from the kind).
#[derive(Debug)]
pub struct TransportError {
    kind: TransportErrorKind,
    message: String,
    source: Option<Box<dyn StdError + Send + Sync + 'static>>,
}

impl TransportError {
    /// An error of `kind`; `message` says what happened (no advice: the kind adds it).
    pub fn new(kind: TransportErrorKind, message: impl Into<String>) -> Self {
        TransportError {
            kind,
            message: message.into(),
            source: None,
        }
    }

    /// The same error with an underlying cause.
    #[must_use]
    pub fn with_source(mut self, source: impl StdError + Send + Sync + 'static) -> Self {
        self.source = Some(Box::new(source));
        self
    }

    /// What kind of failure this is.
    pub fn kind(&self) -> TransportErrorKind {
        self.kind
    }

    /// What happened, without the advice.
    pub fn message(&self) -> &str {
        &self.message
    }
}

impl fmt::Display for TransportError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.message, self.kind.advice())
    }
}

impl StdError for TransportError {
    fn source(&self) -> Option<&(dyn StdError + 'static)> {
        self.source
            .as_deref()
            .map(|e| e as &(dyn StdError + 'static))
    }
}

/// The in-process virtual card as a transport (feature `virtual`): no pcscd, no USB.
///
/// The card is powered on by the first command if it is not powered yet (as a reader powers
/// a card when a program connects).
#[cfg(feature = "virtual")]
mod virtual_card {
    use tessera_card::memory::Storage;
    use tessera_card::virtual_card::VirtualCard;
    use tessera_card::vpcd::VpcdCard;

    use super::{Transport, TransportError};

    impl<S: Storage> Transport for VirtualCard<S> {
        fn transmit(&mut self, command: &[u8]) -> Result<Vec<u8>, TransportError> {
            if !self.is_powered() {
                VpcdCard::power_on(self);
            }
            Ok(VpcdCard::transmit(self, command))
        }

        fn atr(&mut self) -> Result<Vec<u8>, TransportError> {
            Ok(VpcdCard::atr(self))
        }

        fn reset(&mut self) -> Result<(), TransportError> {
            if self.is_powered() {
                VpcdCard::reset(self);
            } else {
                VpcdCard::power_on(self);
            }
            Ok(())
        }

        fn supports_extended_length(&self) -> bool {
            true
        }
    }
}
