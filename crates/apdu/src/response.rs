//! Response APDUs (ISO/IEC 7816-4:2020 §5.1): a data field of Nr bytes (possibly empty) followed
//! by the two-byte trailer SW1 SW2.
//!
//! [`Response`] is a view over the bytes; [`ResponseRepr`] is their meaning and emits them back.
//! Every byte string of at least two bytes is a response, and `emit(parse(x)) == x` for all of
//! them; `parse(emit(r)) == r` for every repr whose status is canonical (see [`StatusWord`]).

use core::fmt;

use crate::status::StatusWord;
use crate::wire::put;

/// Length of the trailer SW1 SW2.
pub const TRAILER_LEN: usize = 2;

/// A response shorter than its trailer, or a buffer too small to emit one.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum ResponseError {
    /// Fewer than the two trailer bytes SW1 SW2.
    TooShort,
    /// (emit) The output buffer is too small.
    BufferTooSmall,
}

impl fmt::Display for ResponseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            ResponseError::TooShort => "response APDU shorter than its SW1 SW2 trailer",
            ResponseError::BufferTooSmall => "buffer too small for the response APDU",
        })
    }
}

impl core::error::Error for ResponseError {}

/// A read/write view over the bytes of one response APDU.
///
/// On a view made with [`Response::new_unchecked`] over fewer than two bytes the accessors never
/// panic: the data is empty and SW1, SW2 read as 0.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Response<T: AsRef<[u8]>> {
    buffer: T,
}

impl<T: AsRef<[u8]>> Response<T> {
    /// Wraps a buffer without checking it.
    pub const fn new_unchecked(buffer: T) -> Response<T> {
        Response { buffer }
    }

    /// Wraps a buffer of at least the two trailer bytes.
    pub fn new_checked(buffer: T) -> Result<Response<T>, ResponseError> {
        let response = Response::new_unchecked(buffer);
        response.check_len()?;
        Ok(response)
    }

    /// Checks that the buffer holds at least the trailer SW1 SW2.
    pub fn check_len(&self) -> Result<(), ResponseError> {
        if self.buffer.as_ref().len() < TRAILER_LEN {
            Err(ResponseError::TooShort)
        } else {
            Ok(())
        }
    }

    /// Unwraps the buffer.
    pub fn into_inner(self) -> T {
        self.buffer
    }

    /// Where the trailer starts, if the buffer holds one.
    fn trailer_start(&self) -> Option<usize> {
        self.buffer.as_ref().len().checked_sub(TRAILER_LEN)
    }

    /// The response data field (everything before SW1 SW2).
    pub fn data(&self) -> &[u8] {
        let end = self.trailer_start().unwrap_or(0);
        self.buffer.as_ref().get(..end).unwrap_or(&[])
    }

    /// SW1.
    pub fn sw1(&self) -> u8 {
        let at = self.trailer_start().unwrap_or(usize::MAX);
        self.buffer.as_ref().get(at).copied().unwrap_or(0)
    }

    /// SW2.
    pub fn sw2(&self) -> u8 {
        let at = self
            .trailer_start()
            .and_then(|at| at.checked_add(1))
            .unwrap_or(usize::MAX);
        self.buffer.as_ref().get(at).copied().unwrap_or(0)
    }

    /// The status word SW1-SW2.
    pub fn status(&self) -> StatusWord {
        StatusWord::from_bytes(self.sw1(), self.sw2())
    }
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> Response<T> {
    /// The data field, mutable (empty when the buffer is shorter than the trailer).
    pub fn data_mut(&mut self) -> &mut [u8] {
        let end = self.trailer_start().unwrap_or(0);
        self.buffer.as_mut().get_mut(..end).unwrap_or(&mut [])
    }

    /// Writes the trailer SW1 SW2 (no effect on a buffer shorter than the trailer).
    pub fn set_status(&mut self, status: StatusWord) {
        if let Some(at) = self.trailer_start() {
            if let Some(trailer) = self.buffer.as_mut().get_mut(at..) {
                trailer.copy_from_slice(&status.to_bytes());
            }
        }
    }
}

/// The meaning of a response APDU: its data and its status word.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct ResponseRepr<'a> {
    /// The response data field.
    pub data: &'a [u8],
    /// SW1-SW2.
    pub status: StatusWord,
}

impl<'a> ResponseRepr<'a> {
    /// A response with no data.
    pub const fn status(status: StatusWord) -> ResponseRepr<'a> {
        ResponseRepr { data: &[], status }
    }

    /// Reads the meaning of a response.
    pub fn parse<T: AsRef<[u8]>>(response: &'a Response<T>) -> Result<Self, ResponseError> {
        response.check_len()?;
        Ok(ResponseRepr {
            data: response.data(),
            status: response.status(),
        })
    }

    /// The length of the encoding: the data and the two trailer bytes.
    pub fn buffer_len(&self) -> usize {
        self.data.len().saturating_add(TRAILER_LEN)
    }

    /// Writes the data and SW1 SW2 into the front of `buffer`; returns the number of bytes
    /// written.
    pub fn emit(&self, buffer: &mut [u8]) -> Result<usize, ResponseError> {
        let len = self.buffer_len();
        let mut out = buffer.get_mut(..len).ok_or(ResponseError::BufferTooSmall)?;
        put(&mut out, self.data)
            .and_then(|()| put(&mut out, &self.status.to_bytes()))
            .map(|()| len)
            .ok_or(ResponseError::BufferTooSmall)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// DKEK import answer (sc-hsm-protocol.md §6.4): 10 bytes of status, then 9000.
    static DKEK_STATUS: [u8; 12] = [
        0x02, 0x00, // total shares 2, outstanding 0
        0x66, 0x68, 0x7A, 0xAD, 0xF8, 0x62, 0xBD, 0x77, // key check value
        0x90, 0x00, // SW1 SW2: success
    ];

    static KCV: [u8; 8] = [0x66, 0x68, 0x7A, 0xAD, 0xF8, 0x62, 0xBD, 0x77];

    #[test]
    fn test_deconstruct() {
        let response = Response::new_checked(&DKEK_STATUS[..]).unwrap();
        assert_eq!(response.data(), &DKEK_STATUS[..10]);
        assert_eq!(response.sw1(), 0x90);
        assert_eq!(response.sw2(), 0x00);
        assert_eq!(response.status(), StatusWord::Success);
    }

    #[test]
    fn test_construct() {
        let mut bytes = [0u8; 12];
        let mut response = Response::new_unchecked(&mut bytes[..]);
        response.data_mut()[..2].copy_from_slice(&[0x02, 0x00]);
        response.data_mut()[2..].copy_from_slice(&KCV);
        response.set_status(StatusWord::Success);
        assert_eq!(bytes, DKEK_STATUS);
    }

    #[test]
    fn test_parse() {
        let response = Response::new_checked(&DKEK_STATUS[..]).unwrap();
        let repr = ResponseRepr::parse(&response).unwrap();
        assert_eq!(
            repr,
            ResponseRepr {
                data: &DKEK_STATUS[..10],
                status: StatusWord::Success
            }
        );
    }

    #[test]
    fn test_emit() {
        let repr = ResponseRepr {
            data: &DKEK_STATUS[..10],
            status: StatusWord::Success,
        };
        assert_eq!(repr.buffer_len(), 12);
        let mut bytes = [0u8; 12];
        assert_eq!(repr.emit(&mut bytes), Ok(12));
        assert_eq!(bytes, DKEK_STATUS);
        assert_eq!(
            repr.emit(&mut [0u8; 11]),
            Err(ResponseError::BufferTooSmall)
        );
    }

    #[test]
    fn too_short_responses() {
        for bytes in [&[][..], &[0x90][..]] {
            assert_eq!(
                Response::new_checked(bytes).err(),
                Some(ResponseError::TooShort)
            );
            let view = Response::new_unchecked(bytes);
            assert_eq!((view.data(), view.sw1(), view.sw2()), (&[][..], 0, 0));
            assert_eq!(ResponseRepr::parse(&view), Err(ResponseError::TooShort));
        }
    }

    #[test]
    fn status_only_response() {
        // VERIFY after a wrong PIN (sc-hsm-protocol.md §6.3): 63 C2, two tries left.
        let response = Response::new_checked(&[0x63, 0xC2][..]).unwrap();
        assert_eq!(response.data(), &[]);
        assert_eq!(response.status(), StatusWord::RemainingRetries(2));
        let mut out = [0u8; 2];
        assert_eq!(
            ResponseRepr::status(StatusWord::RemainingRetries(2)).emit(&mut out),
            Ok(2)
        );
        assert_eq!(out, [0x63, 0xC2]);
    }
}
