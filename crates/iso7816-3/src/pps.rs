//! Protocol and parameters selection (PPS), ISO/IEC 7816-3:2006 §9.
//!
//! A PPS request (reader to card) and a PPS response (card to reader) have the same format
//! (§9.2):
//!
//! ```text
//! PPSS=FF  PPS0  [PPS1]  [PPS2]  [PPS3]  PCK
//! ```
//!
//! PPS0 bits 5, 6 and 7 say whether PPS1, PPS2 and PPS3 follow; its low nibble is the protocol
//! type T; bit 8 is reserved (0). PPS1 is the proposed Fi/Di byte (coded as TA1), PPS2 the SPU
//! byte, PPS3 is reserved. PCK makes the XOR of all bytes 0.
//!
//! [`Pps`] is the zero-copy view, [`PpsRepr`] the validated form. [`progress`] tells a driver
//! when a request or response is complete. [`check_response`] applies the rules of a successful
//! exchange (§9.3) on the reader side; [`answer`] is the card side.
//!
//! What it does not know: when a PPS is allowed (only right after a cold or warm ATR, in
//! negotiable mode, §6.3.1), the initial waiting time the reader waits for the response, and
//! the switch of the UART to the new rate: the driver does those.

use core::fmt;

use crate::atr::{Protocol, ProtocolSet};
use crate::rate::FiDi;

pub use crate::atr::Progress;

/// PPSS, the initial byte of every PPS request and response (§9.2).
pub const PPSS: u8 = 0xFF;
/// The longest PPS message: PPSS, PPS0, PPS1, PPS2, PPS3, PCK.
pub const MAX_LEN: usize = 6;

mod field {
    /// The initial byte, 0xFF.
    pub const PPSS: usize = 0;
    /// The format byte.
    pub const PPS0: usize = 1;
    /// The first optional byte (PPS1, PPS2 or PPS3, whichever PPS0 announces first).
    pub const OPTIONAL: usize = 2;
}

mod pps0 {
    /// PPS1 follows.
    pub const PPS1: u8 = 0x10;
    /// PPS2 follows.
    pub const PPS2: u8 = 0x20;
    /// PPS3 follows.
    pub const PPS3: u8 = 0x40;
    /// Reserved, shall be 0.
    pub const RESERVED: u8 = 0x80;
    /// The protocol type T.
    pub const T: u8 = 0x0F;
}

/// Which byte of a PPS response differs from the request in a way §9.3 does not allow.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum Field {
    /// The protocol type T (PPS0 bits 4 to 1) is not echoed.
    Protocol,
    /// PPS1 is present but not the one requested (or was not requested).
    Pps1,
    /// PPS2 is present but not the one requested (or was not requested).
    Pps2,
    /// PPS3 is present but not the one requested (or was not requested).
    Pps3,
}

/// A malformed PPS message, or a failed exchange.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum Error {
    /// The first byte is not PPSS = 0xFF (§9.2).
    InvalidPpss(u8),
    /// PPS0 bit 8, reserved, is set (§9.2). Holds PPS0.
    ReservedBit(u8),
    /// The bytes end before PPS0 and the PCK.
    Truncated,
    /// More bytes follow the PCK.
    TrailingBytes,
    /// The XOR of PPSS to PCK is not 0 (§9.2). `expected` is the PCK the other bytes call for.
    BadPck {
        /// The PCK that would make the check pass.
        expected: u8,
        /// The PCK received.
        found: u8,
    },
    /// The output buffer is shorter than [`PpsRepr::buffer_len`].
    BufferTooSmall,
    /// The response does not match the request as §9.3 requires: the exchange failed and the
    /// reader shall deactivate the card.
    ExchangeFailed(Field),
    /// The request asks for a protocol the card does not offer (card side).
    UnsupportedProtocol(Protocol),
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::InvalidPpss(b) => write!(f, "PPSS is {b:#04x}, not 0xff (ISO 7816-3 §9.2)"),
            Error::ReservedBit(pps0) => {
                write!(
                    f,
                    "PPS0 {pps0:#04x} has the reserved bit 8 set (ISO 7816-3 §9.2)"
                )
            }
            Error::Truncated => f.write_str("PPS message truncated"),
            Error::TrailingBytes => f.write_str("bytes after the PCK"),
            Error::BadPck { expected, found } => write!(
                f,
                "PCK is {found:#04x}, the other bytes call for {expected:#04x} (ISO 7816-3 §9.2)"
            ),
            Error::BufferTooSmall => f.write_str("buffer too small for the PPS message"),
            Error::ExchangeFailed(field) => {
                write!(
                    f,
                    "PPS exchange failed: {field:?} not echoed as ISO 7816-3 §9.3 requires"
                )
            }
            Error::UnsupportedProtocol(p) => write!(f, "the card does not offer {p}"),
        }
    }
}

impl core::error::Error for Error {}

/// The length a PPS message has once PPSS and PPS0 are known, or the structural error.
fn shape(bytes: &[u8]) -> Result<Option<usize>, Error> {
    let Some(&ppss) = bytes.get(field::PPSS) else {
        return Ok(None);
    };
    if ppss != PPSS {
        return Err(Error::InvalidPpss(ppss));
    }
    let Some(&pps0) = bytes.get(field::PPS0) else {
        return Ok(None);
    };
    if pps0 & pps0::RESERVED != 0 {
        return Err(Error::ReservedBit(pps0));
    }
    let optional = (pps0 & (pps0::PPS1 | pps0::PPS2 | pps0::PPS3)).count_ones() as usize;
    Ok(Some(field::OPTIONAL + optional + 1))
}

/// Given the bytes of a PPS request or response received so far, say whether it is complete,
/// how many more bytes are needed at least, or that it is malformed (PPSS not 0xFF, reserved
/// bit of PPS0 set), ISO/IEC 7816-3:2006 §9.2. The PCK value is checked by [`PpsRepr::parse`].
///
/// It agrees with [`Pps::new_checked`] as [`crate::atr::progress`] does with the ATR view.
pub fn progress(received: &[u8]) -> Result<Progress, Error> {
    Ok(match shape(received)? {
        None => Progress::NeedMore {
            at_least: 3usize.saturating_sub(received.len()),
        },
        Some(len) if received.len() < len => Progress::NeedMore {
            at_least: len - received.len(),
        },
        Some(len) => Progress::Complete { len },
    })
}

/// A zero-copy view of a PPS request or response, ISO/IEC 7816-3:2006 §9.2.
///
/// The accessors never panic; on an unchecked buffer they return `None` for what is missing.
#[derive(Debug, Clone)]
pub struct Pps<T: AsRef<[u8]>> {
    buffer: T,
}

impl<T: AsRef<[u8]>> Pps<T> {
    /// Wrap a buffer without checking it.
    pub const fn new_unchecked(buffer: T) -> Pps<T> {
        Pps { buffer }
    }

    /// Wrap a buffer that holds exactly one well-formed PPS message (see [`Pps::check_len`]).
    pub fn new_checked(buffer: T) -> Result<Pps<T>, Error> {
        let pps = Pps::new_unchecked(buffer);
        pps.check_len()?;
        Ok(pps)
    }

    /// Check PPSS, the reserved bit of PPS0, and that the buffer holds exactly the bytes PPS0
    /// announces (§9.2). Does not check the PCK value.
    pub fn check_len(&self) -> Result<(), Error> {
        let bytes = self.buffer.as_ref();
        match progress(bytes)? {
            Progress::NeedMore { .. } => Err(Error::Truncated),
            Progress::Complete { len } if len < bytes.len() => Err(Error::TrailingBytes),
            Progress::Complete { .. } => Ok(()),
        }
    }

    /// Check the PCK: the XOR of all bytes is 0 (§9.2).
    pub fn verify_pck(&self) -> Result<(), Error> {
        self.check_len()?;
        let (&found, before) = self.buffer.as_ref().split_last().ok_or(Error::Truncated)?;
        let expected = before.iter().fold(0, |acc, b| acc ^ b);
        if expected == found {
            Ok(())
        } else {
            Err(Error::BadPck { expected, found })
        }
    }

    /// Give back the buffer.
    pub fn into_inner(self) -> T {
        self.buffer
    }

    /// The bytes (the whole buffer).
    pub fn as_bytes(&self) -> &[u8] {
        self.buffer.as_ref()
    }

    /// PPSS.
    pub fn ppss(&self) -> Option<u8> {
        self.buffer.as_ref().get(field::PPSS).copied()
    }

    /// PPS0.
    pub fn pps0(&self) -> Option<u8> {
        self.buffer.as_ref().get(field::PPS0).copied()
    }

    /// The protocol type T (PPS0 bits 4 to 1).
    pub fn protocol(&self) -> Option<Protocol> {
        self.pps0().map(|b| Protocol::from_nibble(b & pps0::T))
    }

    /// The offset of an optional byte announced by `bit` of PPS0, if announced.
    fn optional_at(&self, bit: u8) -> Option<usize> {
        let pps0 = self.pps0()?;
        if pps0 & bit == 0 {
            return None;
        }
        // The optional bytes come in the order PPS1, PPS2, PPS3: count those before this one.
        let before = (pps0 & (pps0::PPS1 | pps0::PPS2 | pps0::PPS3) & (bit - 1)).count_ones();
        Some(field::OPTIONAL + before as usize)
    }

    fn optional(&self, bit: u8) -> Option<u8> {
        self.buffer.as_ref().get(self.optional_at(bit)?).copied()
    }

    /// PPS1, the proposed Fi/Di, if present.
    pub fn pps1(&self) -> Option<FiDi> {
        self.optional(pps0::PPS1).map(FiDi::from_byte)
    }

    /// PPS2, if present.
    pub fn pps2(&self) -> Option<u8> {
        self.optional(pps0::PPS2)
    }

    /// PPS3, if present.
    pub fn pps3(&self) -> Option<u8> {
        self.optional(pps0::PPS3)
    }

    /// PCK, if the buffer holds it.
    pub fn pck(&self) -> Option<u8> {
        let pps0 = self.pps0()?;
        let optional = (pps0 & (pps0::PPS1 | pps0::PPS2 | pps0::PPS3)).count_ones() as usize;
        self.buffer
            .as_ref()
            .get(field::OPTIONAL + optional)
            .copied()
    }
}

/// A validated PPS request or response, ISO/IEC 7816-3:2006 §9.2.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct PpsRepr {
    /// The protocol type T (PPS0 bits 4 to 1).
    pub protocol: Protocol,
    /// PPS1: Fi and Di, coded as TA1.
    pub pps1: Option<FiDi>,
    /// PPS2: the SPU byte.
    pub pps2: Option<u8>,
    /// PPS3: reserved for future use.
    pub pps3: Option<u8>,
}

impl PpsRepr {
    /// A request for `protocol` with Fi/Di `fi_di` and no PPS2 or PPS3: what a reader
    /// usually sends.
    pub const fn request(protocol: Protocol, fi_di: FiDi) -> Self {
        PpsRepr {
            protocol,
            pps1: Some(fi_di),
            pps2: None,
            pps3: None,
        }
    }

    /// Parse and validate a view: PPSS, structure and PCK (§9.2).
    pub fn parse<T: AsRef<[u8]>>(pps: &Pps<T>) -> Result<PpsRepr, Error> {
        pps.check_len()?;
        pps.verify_pck()?;
        Ok(PpsRepr {
            protocol: pps.protocol().ok_or(Error::Truncated)?,
            pps1: pps.pps1(),
            pps2: pps.pps2(),
            pps3: pps.pps3(),
        })
    }

    /// Parse and validate raw bytes.
    pub fn parse_bytes(bytes: &[u8]) -> Result<PpsRepr, Error> {
        PpsRepr::parse(&Pps::new_checked(bytes)?)
    }

    /// PPS0 for this repr.
    pub const fn pps0(&self) -> u8 {
        let mut pps0 = self.protocol.nibble();
        if self.pps1.is_some() {
            pps0 |= pps0::PPS1;
        }
        if self.pps2.is_some() {
            pps0 |= pps0::PPS2;
        }
        if self.pps3.is_some() {
            pps0 |= pps0::PPS3;
        }
        pps0
    }

    /// The length of the emitted message (3 to 6 bytes).
    pub const fn buffer_len(&self) -> usize {
        3 + (self.pps0() & (pps0::PPS1 | pps0::PPS2 | pps0::PPS3)).count_ones() as usize
    }

    /// Write the message into `buffer`, computing PPS0 and PCK. Returns the length written.
    pub fn emit(&self, buffer: &mut [u8]) -> Result<usize, Error> {
        let len = self.buffer_len();
        let out = buffer.get_mut(..len).ok_or(Error::BufferTooSmall)?;
        let bytes = [
            Some(PPSS),
            Some(self.pps0()),
            self.pps1.map(FiDi::byte),
            self.pps2,
            self.pps3,
        ];
        let mut pck = 0;
        let mut slots = out.iter_mut();
        for b in bytes.into_iter().flatten() {
            if let Some(slot) = slots.next() {
                *slot = b;
                pck ^= b;
            }
        }
        if let Some(slot) = slots.next() {
            *slot = pck;
        }
        Ok(len)
    }
}

/// What a successful PPS exchange agreed on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct Agreement {
    /// The protocol to use.
    pub protocol: Protocol,
    /// The F and D to use: PPS1 if the card echoed it, otherwise the default Fd, Dd.
    pub fi_di: FiDi,
    /// PPS2 if the card echoed it.
    pub pps2: Option<u8>,
}

/// Reader side: check a card's PPS response against the request, ISO/IEC 7816-3:2006 §9.3.
///
/// The exchange succeeds when the response echoes the protocol type of PPS0 and, for each of
/// PPS1, PPS2 and PPS3, either echoes the requested byte or leaves it out. PPS1 echoed means
/// use it; PPS1 left out means use the default Fd, Dd. Anything else (a different protocol, a
/// byte that was not requested or differs) is a failed exchange: [`Error::ExchangeFailed`],
/// after which the reader shall deactivate the card.
pub fn check_response(request: &PpsRepr, response: &PpsRepr) -> Result<Agreement, Error> {
    fn echoed<T: PartialEq + Copy>(
        request: Option<T>,
        response: Option<T>,
        field: Field,
    ) -> Result<(), Error> {
        match response {
            None => Ok(()),
            Some(r) if Some(r) == request => Ok(()),
            Some(_) => Err(Error::ExchangeFailed(field)),
        }
    }
    if response.protocol != request.protocol {
        return Err(Error::ExchangeFailed(Field::Protocol));
    }
    echoed(request.pps1, response.pps1, Field::Pps1)?;
    echoed(request.pps2, response.pps2, Field::Pps2)?;
    echoed(request.pps3, response.pps3, Field::Pps3)?;
    Ok(Agreement {
        protocol: response.protocol,
        fi_di: response.pps1.unwrap_or(FiDi::DEFAULT),
        pps2: response.pps2,
    })
}

/// Reader side on raw bytes: parse the response (PPSS, structure, PCK) and check it against
/// the request ([`check_response`]). Any error means the exchange failed (§9.3).
pub fn check_response_bytes(request: &PpsRepr, response: &[u8]) -> Result<Agreement, Error> {
    check_response(request, &PpsRepr::parse_bytes(response)?)
}

/// What a card does with a PPS request.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum CardAnswer {
    /// Send this response, then switch to `agreement` (the same as [`check_response`] gives
    /// the reader).
    Respond {
        /// The PPS response to send.
        response: PpsRepr,
        /// What the card now uses.
        agreement: Agreement,
    },
    /// Send nothing and keep the ATR parameters: the request was erroneous, or asks for
    /// something the card cannot answer (the reason is given). The reader times out and
    /// deactivates the card (§9.3).
    Silent(Error),
}

/// Card side: answer a PPS request given what the card supports, ISO/IEC 7816-3:2006 §9.3.
///
/// - An erroneous request (bad PPSS, reserved bit, bad PCK, wrong length) gets no response.
/// - A request for a protocol the card does not offer (`offered`) gets no response: the
///   response must echo the protocol, so there is no way to refuse it but silence.
/// - PPS1 is echoed if `accept_fi_di` accepts it, otherwise left out (the card stays at
///   Fd, Dd).
/// - PPS2 and PPS3 are never echoed: this card model uses no SPU and PPS3 is reserved.
pub fn answer(
    request: &[u8],
    offered: ProtocolSet,
    accept_fi_di: impl FnOnce(FiDi) -> bool,
) -> CardAnswer {
    let request = match PpsRepr::parse_bytes(request) {
        Ok(request) => request,
        Err(e) => return CardAnswer::Silent(e),
    };
    if request.protocol == Protocol::T15 || !offered.contains(request.protocol) {
        return CardAnswer::Silent(Error::UnsupportedProtocol(request.protocol));
    }
    let pps1 = request.pps1.filter(|&fi_di| accept_fi_di(fi_di));
    let response = PpsRepr {
        protocol: request.protocol,
        pps1,
        pps2: None,
        pps3: None,
    };
    CardAnswer::Respond {
        response,
        agreement: Agreement {
            protocol: request.protocol,
            fi_di: pps1.unwrap_or(FiDi::DEFAULT),
            pps2: None,
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn optional_bytes_are_found_in_order() {
        // PPS0 = 0x71: PPS1, PPS2, PPS3 present, T = 1.
        let bytes = [
            0xFF,
            0x71,
            0x18,
            0x22,
            0x33,
            0xFF ^ 0x71 ^ 0x18 ^ 0x22 ^ 0x33,
        ];
        let pps = Pps::new_checked(&bytes[..]).unwrap();
        assert_eq!(pps.pps1(), Some(FiDi::from_byte(0x18)));
        assert_eq!(pps.pps2(), Some(0x22));
        assert_eq!(pps.pps3(), Some(0x33));
        assert_eq!(pps.pck(), Some(bytes[5]));
        // PPS0 = 0x41: only PPS3.
        let bytes = [0xFF, 0x41, 0x33, 0xFF ^ 0x41 ^ 0x33];
        let pps = Pps::new_checked(&bytes[..]).unwrap();
        assert_eq!(pps.pps1(), None);
        assert_eq!(pps.pps2(), None);
        assert_eq!(pps.pps3(), Some(0x33));
    }

    #[test]
    fn reserved_bit_is_rejected_early() {
        assert_eq!(progress(&[0xFF, 0x91]), Err(Error::ReservedBit(0x91)));
        assert_eq!(progress(&[0xFE]), Err(Error::InvalidPpss(0xFE)));
        assert_eq!(progress(&[]), Ok(Progress::NeedMore { at_least: 3 }));
    }
}
