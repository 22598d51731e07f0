//! The little DER this crate writes and reads by hand: definite lengths, one-byte tags
//! (ITU-T X.690 §8.1). Reading goes through `tessera_apdu`'s BER-TLV reader.

/// `tag`, the minimal definite length of `content` (X.690 §8.1.3), `content`.
pub(crate) fn tlv(tag: u8, content: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(content.len() + 4);
    out.push(tag);
    let len = content.len();
    if len < 0x80 {
        out.push(len as u8);
    } else if len <= 0xFF {
        out.extend_from_slice(&[0x81, len as u8]);
    } else if len <= 0xFFFF {
        out.push(0x82);
        out.extend_from_slice(&(len as u16).to_be_bytes());
    } else {
        // Nothing this crate writes comes near 64 KiB; the three-byte form keeps it correct.
        let [_, b2, b1, b0] = (len as u32).to_be_bytes();
        out.extend_from_slice(&[0x83, b2, b1, b0]);
    }
    out.extend_from_slice(content);
    out
}

/// A constructed object whose content is `parts` concatenated.
pub(crate) fn seq(tag: u8, parts: &[&[u8]]) -> Vec<u8> {
    tlv(tag, &parts.concat())
}

/// A DER INTEGER for a non-negative big-endian magnitude (X.690 §8.3): leading zero bytes
/// removed, one `00` added when the top bit is set.
pub(crate) fn unsigned_integer(magnitude: &[u8]) -> Vec<u8> {
    let first = magnitude
        .iter()
        .position(|&b| b != 0)
        .unwrap_or(magnitude.len());
    let trimmed = magnitude.get(first..).unwrap_or(&[]);
    let mut content = Vec::with_capacity(trimmed.len() + 1);
    if trimmed.first().is_none_or(|&b| b & 0x80 != 0) {
        content.push(0);
    }
    content.extend_from_slice(trimmed);
    tlv(0x02, &content)
}

/// A DER INTEGER for a small non-negative number.
pub(crate) fn small_integer(value: u32) -> Vec<u8> {
    unsigned_integer(&value.to_be_bytes())
}

/// A non-negative DER INTEGER's content as a number, if it fits 32 bits.
pub(crate) fn read_unsigned(content: &[u8]) -> Option<u32> {
    if content.is_empty() || content.len() > 5 || content.first().is_some_and(|&b| b & 0x80 != 0) {
        return None;
    }
    content
        .iter()
        .try_fold(0u64, |acc, &b| Some((acc << 8) | u64::from(b)))
        .and_then(|v| u32::try_from(v).ok())
}
