//! ECDSA signatures between the plain `r‖s` form (BSI TR-03111 §5.2.1, inside CV certificates)
//! and DER `SEQUENCE { INTEGER r, INTEGER s }` (X9.62, what SIGN answers, §2.12).

use super::CryptoError;

/// Encodes a plain `r‖s` ECDSA signature (two halves of equal length) as DER
/// `30 L 02 Lr r 02 Ls s`, each integer minimal and positive.
///
/// # Errors
/// [`CryptoError::InputLength`] when `plain` is empty, of odd length, or too long for DER
/// lengths of at most two bytes.
pub fn ecdsa_plain_to_der(plain: &[u8]) -> Result<Vec<u8>, CryptoError> {
    if plain.is_empty() || plain.len() % 2 != 0 || plain.len() > 1024 {
        return Err(CryptoError::InputLength {
            len: plain.len(),
            expected: "an even, non-zero length of at most 1024 bytes",
        });
    }
    let (r, s) = plain.split_at(plain.len() / 2);
    let mut body = Vec::with_capacity(plain.len() + 8);
    for half in [r, s] {
        let minimal = super::curve::strip_leading_zeros(half);
        let pad = minimal.first().is_none_or(|&b| b & 0x80 != 0);
        body.push(0x02);
        push_len(&mut body, minimal.len() + usize::from(pad));
        if pad {
            body.push(0x00);
        }
        body.extend_from_slice(minimal);
    }
    let mut out = Vec::with_capacity(body.len() + 4);
    out.push(0x30);
    push_len(&mut out, body.len());
    out.extend_from_slice(&body);
    Ok(out)
}

/// Decodes a DER ECDSA signature into plain `r‖s`, each half left-padded to `field_size`.
///
/// Accepts non-minimal (zero-prefixed) positive integers; rejects negative integers, integers
/// longer than `field_size`, indefinite or over-long lengths, and trailing bytes.
///
/// # Errors
/// [`CryptoError::BadSignature`] for anything that is not such a signature.
pub fn ecdsa_der_to_plain(der: &[u8], field_size: usize) -> Result<Vec<u8>, CryptoError> {
    let bad = CryptoError::BadSignature;
    let (tag, body, rest) = read_tlv(der).ok_or(bad.clone())?;
    if tag != 0x30 || !rest.is_empty() {
        return Err(bad);
    }
    let mut out = vec![0u8; 2 * field_size];
    let mut cursor = body;
    for half in out.chunks_mut(field_size) {
        let (tag, int, rest) = read_tlv(cursor).ok_or(bad.clone())?;
        if tag != 0x02 || int.first().is_none_or(|&b| b & 0x80 != 0) {
            return Err(bad);
        }
        let minimal = super::curve::strip_leading_zeros(int);
        if minimal.len() > field_size {
            return Err(bad);
        }
        half[field_size - minimal.len()..].copy_from_slice(minimal);
        cursor = rest;
    }
    if !cursor.is_empty() {
        return Err(bad);
    }
    Ok(out)
}

fn push_len(out: &mut Vec<u8>, len: usize) {
    match len {
        0..=0x7F => out.push(len as u8),
        0x80..=0xFF => out.extend_from_slice(&[0x81, len as u8]),
        _ => out.extend_from_slice(&[0x82, (len >> 8) as u8, len as u8]),
    }
}

/// One single-byte-tag TLV with a definite length of at most two length bytes: (tag, value,
/// rest), or `None` when truncated or malformed.
fn read_tlv(bytes: &[u8]) -> Option<(u8, &[u8], &[u8])> {
    let (&tag, rest) = bytes.split_first()?;
    let (&first, rest) = rest.split_first()?;
    let (len, rest) = match first {
        0x00..=0x7F => (usize::from(first), rest),
        0x81 => {
            let (&l, rest) = rest.split_first()?;
            (usize::from(l), rest)
        }
        0x82 => {
            let (l, rest) = rest.split_at_checked(2)?;
            (usize::from(l[0]) << 8 | usize::from(l[1]), rest)
        }
        _ => return None,
    };
    let (value, rest) = rest.split_at_checked(len)?;
    Some((tag, value, rest))
}
