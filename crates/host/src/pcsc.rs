//! PC/SC through pcscd (the `pcsc` crate): reader listing, the choice of a reader, and the
//! [`PcscTransport`].
//!
//! # Which reader by default
//!
//! [`ReaderChoice::Default`] picks, in order:
//! 1. the reader whose name contains `Nitrokey HSM` (libccid names the token's reader
//!    `Nitrokey Nitrokey HSM (<serial>) 00 00`), when there is exactly one; several are an
//!    [`OpenError::Ambiguous`] error;
//! 2. otherwise the reader holding a card with a SmartCard-HSM ATR
//!    ([`tessera_sc_hsm::is_sc_hsm_atr`]), when exactly one reader does (readers holding
//!    other cards are ignored);
//! 3. otherwise an error listing the readers, asking for `--reader`.
//!
//! When several readers match a rule (or a name), the one holding a card is taken if it is the
//! only one; otherwise the choice is ambiguous.
//!
//! # Threading
//!
//! A [`PcscTransport`] owns its PC/SC context; use it from one thread at a time.

use std::ffi::{CStr, CString};
use std::fmt;

use pcsc::{Context, Disposition, Protocols, ReaderState, Scope, ShareMode, State};
use serde::Serialize;
use tessera_iso7816_3::atr::AtrRepr;
use tessera_sc_hsm::{is_sc_hsm_atr, Transport, TransportError, TransportErrorKind};

use crate::OpenError;

/// The substring of the Nitrokey HSM's reader name (libccid's `Nitrokey Nitrokey HSM …`).
pub const NITROKEY_HSM_READER: &str = "Nitrokey HSM";

/// Which PC/SC reader to use.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum ReaderChoice {
    /// The Nitrokey HSM, or the only reader with a SmartCard-HSM card (see the module docs).
    #[default]
    Default,
    /// The reader whose name contains this text (case-insensitive); an exact name wins over
    /// substrings.
    Name(String),
    /// The reader at this position in the list (0-based, in pcscd's order).
    Index(usize),
}

impl ReaderChoice {
    /// `--reader` as a user types it: a number is an index, anything else a name.
    pub fn parse(text: &str) -> ReaderChoice {
        match text.trim().parse::<usize>() {
            Ok(i) => ReaderChoice::Index(i),
            Err(_) => ReaderChoice::Name(text.to_owned()),
        }
    }
}

impl fmt::Display for ReaderChoice {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ReaderChoice::Default => f.write_str("the default reader"),
            ReaderChoice::Name(n) => write!(f, "reader {n:?}"),
            ReaderChoice::Index(i) => write!(f, "reader #{i}"),
        }
    }
}

/// One PC/SC reader and the card in it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ReaderInfo {
    /// Position in pcscd's list.
    pub index: usize,
    /// The reader's name.
    pub name: String,
    /// Whether a card is in it.
    pub card_present: bool,
    /// The card's ATR, hex, when present.
    pub atr: Option<String>,
    /// Whether the ATR is a SmartCard-HSM's.
    pub sc_hsm: bool,
    /// Whether the name says Nitrokey HSM.
    pub nitrokey: bool,
}

/// Lists the PC/SC readers and their cards. No pcscd, or no reader, is an empty list;
/// other failures are errors.
pub fn list_readers() -> Result<Vec<ReaderInfo>, TransportError> {
    let context = match Context::establish(Scope::User) {
        Ok(c) => c,
        Err(pcsc::Error::NoService | pcsc::Error::ServiceStopped) => return Ok(Vec::new()),
        Err(e) => return Err(pcsc_error("cannot reach pcscd", e)),
    };
    readers_of(&context)
}

fn readers_of(context: &Context) -> Result<Vec<ReaderInfo>, TransportError> {
    let names = match context.list_readers_owned() {
        Ok(names) => names,
        Err(pcsc::Error::NoReadersAvailable) => return Ok(Vec::new()),
        Err(e) => return Err(pcsc_error("cannot list the readers", e)),
    };
    let mut states: Vec<ReaderState> = names
        .iter()
        .map(|n| ReaderState::new(n.clone(), State::UNAWARE))
        .collect();
    if !states.is_empty() {
        match context.get_status_change(std::time::Duration::ZERO, &mut states) {
            Ok(()) | Err(pcsc::Error::Timeout) => {}
            Err(e) => return Err(pcsc_error("cannot read the readers' state", e)),
        }
    }
    Ok(states
        .iter()
        .enumerate()
        .map(|(index, state)| {
            let name = state.name().to_string_lossy().into_owned();
            let present = state.event_state().contains(State::PRESENT);
            let atr = state.atr();
            ReaderInfo {
                index,
                nitrokey: name
                    .to_ascii_lowercase()
                    .contains(&NITROKEY_HSM_READER.to_ascii_lowercase()),
                card_present: present,
                atr: (present && !atr.is_empty()).then(|| hex(atr)),
                sc_hsm: present && is_sc_hsm_atr(atr),
                name,
            }
        })
        .collect())
}

/// Picks a reader from `readers` as `choice` says (see the module docs for the default).
pub fn choose_reader<'r>(
    readers: &'r [ReaderInfo],
    choice: &ReaderChoice,
) -> Result<&'r ReaderInfo, OpenError> {
    if readers.is_empty() {
        return Err(OpenError::NoReaders);
    }
    let names = || readers.iter().map(|r| r.name.clone()).collect::<Vec<_>>();
    match choice {
        ReaderChoice::Index(i) => readers.get(*i).ok_or_else(|| OpenError::NoSuchReader {
            choice: choice.to_string(),
            readers: names(),
        }),
        ReaderChoice::Name(text) => {
            if let Some(exact) = readers.iter().find(|r| r.name == *text) {
                return Ok(exact);
            }
            let text = text.to_ascii_lowercase();
            let matching: Vec<&ReaderInfo> = readers
                .iter()
                .filter(|r| r.name.to_ascii_lowercase().contains(&text))
                .collect();
            one_of(matching, choice, names)
        }
        ReaderChoice::Default => {
            let nitrokeys: Vec<&ReaderInfo> = readers.iter().filter(|r| r.nitrokey).collect();
            if !nitrokeys.is_empty() {
                return one_of(nitrokeys, choice, names);
            }
            let hsms: Vec<&ReaderInfo> = readers.iter().filter(|r| r.sc_hsm).collect();
            one_of(hsms, choice, names)
        }
    }
}

fn one_of<'r>(
    candidates: Vec<&'r ReaderInfo>,
    choice: &ReaderChoice,
    names: impl Fn() -> Vec<String>,
) -> Result<&'r ReaderInfo, OpenError> {
    match candidates.as_slice() {
        [one] => Ok(one),
        [] => Err(OpenError::NoSuchReader {
            choice: choice.to_string(),
            readers: names(),
        }),
        several => {
            // Several match, but only one holds a card (e.g. the two slots of one reader).
            let with_card: Vec<&&ReaderInfo> = several.iter().filter(|r| r.card_present).collect();
            match with_card.as_slice() {
                [one] => Ok(one),
                _ => Err(OpenError::Ambiguous {
                    candidates: several.iter().map(|r| r.name.clone()).collect(),
                }),
            }
        }
    }
}

/// A card in a PC/SC reader as a SmartCard-HSM [`Transport`].
pub struct PcscTransport {
    // `card` is declared first so it is dropped (disconnected) before the context.
    card: pcsc::Card,
    _context: Context,
    reader: String,
    extended: bool,
    buffer: Vec<u8>,
}

impl fmt::Debug for PcscTransport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PcscTransport")
            .field("reader", &self.reader)
            .field("extended", &self.extended)
            .finish_non_exhaustive()
    }
}

impl PcscTransport {
    /// Connects to the card in the reader `choice` names (shared access, T=1 or T=0).
    pub fn open(choice: &ReaderChoice) -> Result<PcscTransport, OpenError> {
        let context = Context::establish(Scope::User).map_err(|e| {
            OpenError::Transport(pcsc_error("cannot reach pcscd (is it running?)", e))
        })?;
        let readers = readers_of(&context)?;
        let reader = choose_reader(&readers, choice)?;
        let name = CString::new(reader.name.clone()).map_err(|_| OpenError::NoReaders)?;
        Ok(PcscTransport::connect(context, &name)?)
    }

    /// Connects to the card in the reader named `reader`.
    pub fn connect(context: Context, reader: &CStr) -> Result<PcscTransport, TransportError> {
        let name = reader.to_string_lossy().into_owned();
        let card = context
            .connect(reader, ShareMode::Shared, Protocols::ANY)
            .map_err(|e| pcsc_error(&format!("cannot connect to the card in {name:?}"), e))?;
        let mut transport = PcscTransport {
            card,
            _context: context,
            reader: name,
            extended: false,
            buffer: vec![0; pcsc::MAX_BUFFER_SIZE_EXTENDED],
        };
        let atr = transport.atr()?;
        transport.extended = extended_length_in_atr(&atr);
        Ok(transport)
    }

    /// The reader's name.
    pub fn reader_name(&self) -> &str {
        &self.reader
    }

    /// Overrides whether extended-length APDUs are sent (by default: when the ATR's card
    /// capabilities say the card takes them, as every SmartCard-HSM ATR does).
    pub fn set_extended_length(&mut self, extended: bool) {
        self.extended = extended;
    }

    fn error(&mut self, what: &str, e: pcsc::Error) -> TransportError {
        if e == pcsc::Error::ResetCard {
            // Another program reset the card. Acknowledge it so the handle works again; the
            // caller selects the applet again.
            let _ = self
                .card
                .reconnect(ShareMode::Shared, Protocols::ANY, Disposition::LeaveCard);
        }
        pcsc_error(&format!("{what} ({:?})", self.reader), e)
    }
}

impl Transport for PcscTransport {
    fn transmit(&mut self, command: &[u8]) -> Result<Vec<u8>, TransportError> {
        match self.card.transmit(command, &mut self.buffer) {
            Ok(response) => Ok(response.to_vec()),
            Err(e) => Err(self.error("transmit", e)),
        }
    }

    fn atr(&mut self) -> Result<Vec<u8>, TransportError> {
        // SCardStatus rather than the ATR attribute, which not every driver (vpcd) offers.
        match self.card.status2_owned() {
            Ok(status) => Ok(status.atr().to_vec()),
            Err(e) => Err(self.error("reading the ATR", e)),
        }
    }

    fn reset(&mut self) -> Result<(), TransportError> {
        match self
            .card
            .reconnect(ShareMode::Shared, Protocols::ANY, Disposition::ResetCard)
        {
            Ok(()) => Ok(()),
            Err(e) => Err(self.error("resetting the card", e)),
        }
    }

    fn supports_extended_length(&self) -> bool {
        self.extended
    }
}

/// The transport error for a PC/SC error (the codes of pcsclite's `SCardTransmit` and
/// friends).
pub fn pcsc_error(what: &str, e: pcsc::Error) -> TransportError {
    use pcsc::Error as E;
    let (kind, text) = match e {
        E::NoSmartcard | E::RemovedCard => {
            (TransportErrorKind::CardRemoved, "no card in the reader")
        }
        E::ResetCard => (
            TransportErrorKind::CardReset,
            "the card was reset by another program",
        ),
        E::UnpoweredCard => (TransportErrorKind::CardReset, "the card is not powered"),
        E::ReaderUnavailable | E::UnknownReader | E::NoReadersAvailable => {
            (TransportErrorKind::ReaderGone, "the reader is gone")
        }
        E::NoService | E::ServiceStopped | E::Shutdown => {
            (TransportErrorKind::ReaderGone, "pcscd is not running")
        }
        E::Timeout | E::UnresponsiveCard => {
            (TransportErrorKind::Timeout, "the card does not answer")
        }
        E::SharingViolation => (TransportErrorKind::Busy, "another program holds the card"),
        E::CommError | E::ProtoMismatch | E::InvalidAtr | E::UnsupportedCard => (
            TransportErrorKind::Protocol,
            "communication with the card failed",
        ),
        _ => (TransportErrorKind::Other, "PC/SC failed"),
    };
    TransportError::new(kind, format!("{what}: {text}")).with_source(e)
}

/// Whether the card capabilities in the ATR's historical bytes (ISO/IEC 7816-4 §8.1.1.2.7,
/// compact-TLV tag 7, third byte bit 7 = `40`) announce extended Lc and Le.
pub fn extended_length_in_atr(atr: &[u8]) -> bool {
    let Ok(repr) = AtrRepr::parse_bytes(atr) else {
        return false;
    };
    let historical = repr.historical_bytes();
    // Category indicator 80: compact-TLV objects follow (ISO/IEC 7816-4 §8.1.1.1).
    let Some((&0x80, mut rest)) = historical.split_first() else {
        return false;
    };
    while let Some((&tl, tail)) = rest.split_first() {
        let (tag, len) = (tl >> 4, usize::from(tl & 0x0F));
        let Some((value, next)) = tail.split_at_checked(len) else {
            return false;
        };
        if tag == 0x7 {
            return value.get(2).is_some_and(|b| b & 0x40 != 0);
        }
        rest = next;
    }
    false
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02X}")).collect()
}
