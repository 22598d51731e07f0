//! The USB serial string from the card, as the stock HSM firmware reads it (hardware.md §B,
//! §C): SELECT the SmartCard-HSM application, SELECT EF 2F02 (the device certificate), READ
//! BINARY with the odd INS and an offset data object, then the first Certificate Holder
//! Reference (tag 5F20) of the card-verifiable certificate, cut to 15 characters.
//!
//! Unlike the stock firmware, a card that is busy or answers garbage never gives a garbage
//! serial (issue #79): this module says whether the answer is the CHR, a definitive "this card
//! has no usable CHR", or something worth retrying; the bridge retries a bounded number of times
//! ([`SerialConfig`](crate::SerialConfig)) and otherwise uses the board's serial.
//!
//! The certificate is scanned in windows: each READ BINARY reads from the offset of the data
//! object being examined, so a buffer smaller than the file still finds the CHR (the stock
//! firmware reads 1024 bytes at once; so does the bridge when the lent buffer holds them).
//!
//! What it does not know: T=1, CCID, when to retry.

use tessera_apdu::Tag;

/// The USB serial string: at most 24 characters (the stock descriptor's buffer).
pub type SerialString = heapless::String<24>;

/// SELECT the SmartCard-HSM application by AID E8 2B 06 01 04 01 81 C3 1F 02 01
/// (hardware.md §B, `getSerialNumber`).
pub const SELECT_APPLICATION: [u8; 16] = [
    0x00, 0xA4, 0x04, 0x00, 0x0B, 0xE8, 0x2B, 0x06, 0x01, 0x04, 0x01, 0x81, 0xC3, 0x1F, 0x02, 0x01,
];

/// SELECT EF 2F02 by file identifier (the device-authentication certificate).
pub const SELECT_DEVICE_CERTIFICATE: [u8; 8] = [0x00, 0xA4, 0x00, 0x00, 0x02, 0x2F, 0x02, 0x00];

/// READ BINARY with the odd INS B1, the offset as data object 54, extended length (case 4E),
/// as the stock firmware: `00 B1 00 00 | 00 00 04 | 54 02 <offset> | <Le>`.
const READ_BINARY_LEN: usize = 13;

/// The stock firmware's Le: 1024.
pub const STOCK_READ_LEN: usize = 1024;

/// The CHR tag (Certificate Holder Reference, BSI TR-03110).
const TAG_CHR: u32 = 0x5F20;

/// How many characters of the CHR the stock serial keeps.
pub const CHR_CHARS: usize = 15;

/// Bounds the scan: data objects examined and READ BINARY windows per attempt.
const MAX_OBJECTS: u16 = 64;
const MAX_WINDOWS: u8 = 16;

/// Which command comes next.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Step {
    SelectApplication,
    SelectCertificate,
    ReadBinary { offset: u16, le: u16 },
}

/// What to do after a response.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Next {
    /// Send the command [`SerialRead::command`] writes.
    Send,
    /// The CHR, cut to 15 characters.
    Found(SerialString),
    /// The card is busy or answered garbage: retry later.
    Retry,
    /// The card has no usable CHR (not a SmartCard-HSM, no device certificate, a malformed
    /// one): use the board serial.
    Unusable,
}

/// One attempt at reading the CHR. See the [module documentation](self).
#[derive(Debug, Clone)]
pub(crate) struct SerialRead {
    step: Step,
    /// Absolute offset in EF 2F02 of the next data object to examine.
    pos: u32,
    objects: u16,
    windows: u8,
}

impl SerialRead {
    pub fn new() -> Self {
        SerialRead {
            step: Step::SelectApplication,
            pos: 0,
            objects: 0,
            windows: 0,
        }
    }

    /// Write the next command into `buf` (the exchange buffer); returns its length, or `None`
    /// if `buf` is too small.
    pub fn command(&self, buf: &mut [u8]) -> Option<usize> {
        let cmd: &[u8] = match self.step {
            Step::SelectApplication => &SELECT_APPLICATION,
            Step::SelectCertificate => &SELECT_DEVICE_CERTIFICATE,
            Step::ReadBinary { offset, le } => {
                let [oh, ol] = offset.to_be_bytes();
                let [lh, ll] = le.to_be_bytes();
                let cmd = [
                    0x00, 0xB1, 0x00, 0x00, 0x00, 0x00, 0x04, 0x54, 0x02, oh, ol, lh, ll,
                ];
                let dst = buf.get_mut(..READ_BINARY_LEN)?;
                dst.copy_from_slice(&cmd);
                return Some(READ_BINARY_LEN);
            }
        };
        buf.get_mut(..cmd.len())?.copy_from_slice(cmd);
        Some(cmd.len())
    }

    /// The response APDU to the last command (data and SW1 SW2). `buffer_len` is the length of
    /// the exchange buffer, which bounds Le.
    pub fn on_response(&mut self, response: &[u8], buffer_len: usize) -> Next {
        let Some((data, sw)) = split_status(response) else {
            return Next::Retry;
        };
        match self.step {
            Step::SelectApplication => match sw {
                0x9000 => {
                    self.step = Step::SelectCertificate;
                    Next::Send
                }
                sw if definitive(sw) => Next::Unusable,
                _ => Next::Retry,
            },
            Step::SelectCertificate => match sw {
                0x9000 => self.read_at(0, buffer_len),
                sw if definitive(sw) => Next::Unusable,
                _ => Next::Retry,
            },
            Step::ReadBinary { offset, le } => match sw {
                // 6282: end of file before Le bytes (what the stock firmware expects).
                0x9000 | 0x6282 => {
                    let eof = sw == 0x6282 || data.len() < usize::from(le);
                    self.scan(u32::from(offset), data, eof, buffer_len)
                }
                sw if definitive(sw) => Next::Unusable,
                _ => Next::Retry,
            },
        }
    }

    fn read_at(&mut self, pos: u32, buffer_len: usize) -> Next {
        let Ok(offset) = u16::try_from(pos) else {
            return Next::Unusable;
        };
        if self.windows >= MAX_WINDOWS {
            return Next::Unusable;
        }
        self.windows += 1;
        // The response (Le bytes and SW1 SW2) and the command must fit the buffer.
        let room = buffer_len.saturating_sub(2).max(READ_BINARY_LEN);
        let le = STOCK_READ_LEN.min(room);
        let Ok(le) = u16::try_from(le) else {
            return Next::Unusable;
        };
        self.step = Step::ReadBinary { offset, le };
        Next::Send
    }

    /// Walk the data objects in document order, entering constructed ones, until the first
    /// 5F20 (ISO/IEC 7816-4 §6.3, BER-TLV). `window` holds the file from `offset`.
    fn scan(&mut self, offset: u32, window: &[u8], eof: bool, buffer_len: usize) -> Next {
        loop {
            if self.objects >= MAX_OBJECTS {
                return Next::Unusable;
            }
            let rel = self.pos.saturating_sub(offset) as usize;
            let rest = window.get(rel..).unwrap_or_default();
            let header = match parse_header(rest) {
                Header::Object(h) => h,
                Header::Truncated if eof => return Next::Unusable,
                Header::Truncated => return self.read_at(self.pos, buffer_len),
                Header::Invalid => return Next::Unusable,
            };
            self.objects += 1;
            if header.tag.raw() == TAG_CHR {
                // Only the first 15 characters matter.
                let need = header.value_len.min(CHR_CHARS);
                let value = rest.get(header.len..header.len.saturating_add(need));
                return match value {
                    Some(chr) => chr_serial(chr),
                    None if eof => Next::Unusable,
                    None if self.pos == offset => Next::Unusable,
                    None => self.read_at(self.pos, buffer_len),
                };
            }
            let skip = if header.tag.is_constructed() {
                header.len
            } else {
                header.len.saturating_add(header.value_len)
            };
            self.pos = self.pos.saturating_add(skip as u32);
        }
    }
}

/// Status words that say the card will never have the object: file or application not found,
/// wrong parameters, instruction or class not supported, offset beyond the file.
fn definitive(sw: u16) -> bool {
    matches!(sw, 0x6A82 | 0x6A86 | 0x6B00 | 0x6D00 | 0x6E00 | 0x6986)
}

fn split_status(response: &[u8]) -> Option<(&[u8], u16)> {
    let split = response.len().checked_sub(2)?;
    let (data, sw) = response.split_at(split);
    match sw {
        [sw1, sw2] => Some((data, u16::from_be_bytes([*sw1, *sw2]))),
        _ => None,
    }
}

/// The serial string from a CHR: its first 15 characters, which must all be printable ASCII
/// without spaces (a CHR is country code, mnemonic and sequence number, BSI TR-03110 A.6.1).
fn chr_serial(chr: &[u8]) -> Next {
    let chr = chr.get(..CHR_CHARS).unwrap_or(chr);
    if chr.is_empty() || !chr.iter().all(|b| (0x21..=0x7E).contains(b)) {
        return Next::Unusable;
    }
    let mut serial = SerialString::new();
    for &b in chr {
        if serial.push(char::from(b)).is_err() {
            return Next::Unusable;
        }
    }
    Next::Found(serial)
}

struct ObjectHeader {
    tag: Tag,
    /// Tag and length fields.
    len: usize,
    value_len: usize,
}

enum Header {
    Object(ObjectHeader),
    Truncated,
    Invalid,
}

/// Reads the tag and length fields of a BER-TLV data object (ISO/IEC 7816-4 §6.3): tags of
/// one to three bytes, definite lengths of one to three bytes. The value may be cut off.
fn parse_header(bytes: &[u8]) -> Header {
    use tessera_apdu::TlvError;
    let (tag, after_tag) = match Tag::parse_prefix(bytes) {
        Ok(t) => t,
        Err(TlvError::TruncatedTag) => return Header::Truncated,
        Err(_) => return Header::Invalid,
    };
    let (value_len, after_len) = match after_tag {
        [] => return Header::Truncated,
        [b @ 0x00..=0x7F, rest @ ..] => (usize::from(*b), rest),
        [0x81, b, rest @ ..] => (usize::from(*b), rest),
        [0x82, h, l, rest @ ..] => (usize::from(u16::from_be_bytes([*h, *l])), rest),
        [0x81] | [0x82] | [0x82, _] => return Header::Truncated,
        _ => return Header::Invalid,
    };
    Header::Object(ObjectHeader {
        tag,
        len: bytes.len() - after_len.len(),
        value_len,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A CV-certificate-like file: 7F21 { 7F4E { 5F29, 42, 7F49 {..}, 5F20 }, 5F37 }, then
    /// a second certificate whose CHR must not be taken.
    fn certificate() -> [u8; 64] {
        let mut f = [0u8; 64];
        let content: &[u8] = &[
            0x7F, 0x21, 0x3A, // certificate
            0x7F, 0x4E, 0x2B, // body
            0x5F, 0x29, 0x01, 0x00, // profile
            0x42, 0x04, b'D', b'E', b'C', b'A', // CAR
            0x7F, 0x49, 0x04, 0x86, 0x02, 0x04, 0x05, // public key
            0x5F, 0x20, 0x10, b'D', b'E', b'N', b'K', b'0', b'1', b'0', b'5', b'4', b'6', b'1',
            b'0', b'0', b'0', b'0', b'1', // CHR, 16 characters
            0x5F, 0x37, 0x02, 0xAA, 0xBB, // signature
            0x5F, 0x20, 0x02, b'X', b'X', // another CHR, later
        ];
        f[..content.len()].copy_from_slice(content);
        f
    }

    fn run(file: &[u8], buffer_len: usize) -> (Next, usize) {
        let mut read = SerialRead::new();
        assert_eq!(read.on_response(&[0x90, 0x00], buffer_len), Next::Send);
        assert_eq!(read.on_response(&[0x90, 0x00], buffer_len), Next::Send);
        let mut reads = 0;
        loop {
            let Step::ReadBinary { offset, le } = read.step else {
                panic!("not reading")
            };
            reads += 1;
            let start = usize::from(offset).min(file.len());
            let end = (start + usize::from(le)).min(file.len());
            let mut response = file[start..end].to_vec();
            let sw: [u8; 2] = if end - start < usize::from(le) {
                [0x62, 0x82]
            } else {
                [0x90, 0x00]
            };
            response.extend_from_slice(&sw);
            match read.on_response(&response, buffer_len) {
                Next::Send => continue,
                other => return (other, reads),
            }
        }
    }

    #[test]
    fn chr_from_one_read() {
        let (next, reads) = run(&certificate(), 1026);
        assert_eq!(
            next,
            Next::Found(SerialString::try_from("DENK01054610000").unwrap())
        );
        assert_eq!(reads, 1);
    }

    #[test]
    fn chr_from_small_windows() {
        // Le = 18: the CHR is found after several windows, never split.
        let (next, reads) = run(&certificate(), 20);
        assert_eq!(
            next,
            Next::Found(SerialString::try_from("DENK01054610000").unwrap())
        );
        assert!(reads > 1);
    }

    #[test]
    fn stock_read_binary_bytes() {
        let mut read = SerialRead::new();
        read.on_response(&[0x90, 0x00], 1026);
        read.on_response(&[0x90, 0x00], 1026);
        let mut buf = [0u8; 32];
        let len = read.command(&mut buf).unwrap();
        assert_eq!(
            &buf[..len],
            [0x00, 0xB1, 0x00, 0x00, 0x00, 0x00, 0x04, 0x54, 0x02, 0x00, 0x00, 0x04, 0x00]
        );
    }

    #[test]
    fn status_words_classify() {
        let mut read = SerialRead::new();
        assert_eq!(read.on_response(&[0x6A, 0x82], 1026), Next::Unusable);
        let mut read = SerialRead::new();
        assert_eq!(read.on_response(&[0x6F, 0x00], 1026), Next::Retry);
        assert_eq!(read.on_response(&[0x90], 1026), Next::Retry);
    }

    #[test]
    fn unprintable_chr_is_unusable() {
        assert_eq!(chr_serial(b"DE\x00NK"), Next::Unusable);
        assert_eq!(chr_serial(b""), Next::Unusable);
    }

    #[test]
    fn garbage_files_end() {
        for file in [
            &[0u8; 8][..],
            &[0xFF; 40][..],
            &[0x7F, 0x21, 0x82][..],
            &[][..],
        ] {
            let (next, _) = run(file, 40);
            assert_eq!(next, Next::Unusable, "{file:02X?}");
        }
    }
}
