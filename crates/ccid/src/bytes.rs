//! Little-endian field access that never panics: reads of missing bytes give zero, writes past
//! the end report `false`. Callers check lengths first; these helpers only make the unchecked
//! paths harmless.

use core::ops::Range;

/// The byte at `index`, or 0 when the buffer is shorter.
pub(crate) fn u8_at(buf: &[u8], index: usize) -> u8 {
    buf.get(index).copied().unwrap_or(0)
}

/// The little-endian `u16` in `range` (two bytes), or 0 when the buffer is shorter.
pub(crate) fn le_u16(buf: &[u8], range: Range<usize>) -> u16 {
    match buf.get(range) {
        Some(&[a, b]) => u16::from_le_bytes([a, b]),
        _ => 0,
    }
}

/// The little-endian `u32` in `range` (four bytes), or 0 when the buffer is shorter.
pub(crate) fn le_u32(buf: &[u8], range: Range<usize>) -> u32 {
    match buf.get(range) {
        Some(&[a, b, c, d]) => u32::from_le_bytes([a, b, c, d]),
        _ => 0,
    }
}

/// Write `value` at `index`; `false` when the buffer is too short.
pub(crate) fn set_u8(buf: &mut [u8], index: usize, value: u8) -> bool {
    match buf.get_mut(index) {
        Some(b) => {
            *b = value;
            true
        }
        None => false,
    }
}

/// Copy `src` into `buf` at `start`; `false` (and nothing written) when it does not fit.
pub(crate) fn put(buf: &mut [u8], start: usize, src: &[u8]) -> bool {
    let Some(end) = start.checked_add(src.len()) else {
        return false;
    };
    match buf.get_mut(start..end) {
        Some(dst) => {
            dst.copy_from_slice(src);
            true
        }
        None => false,
    }
}

/// Write `value` little-endian into the two bytes of `range`.
pub(crate) fn set_le_u16(buf: &mut [u8], range: Range<usize>, value: u16) -> bool {
    range.len() == 2 && put(buf, range.start, &value.to_le_bytes())
}

/// Write `value` little-endian into the four bytes of `range`.
pub(crate) fn set_le_u32(buf: &mut [u8], range: Range<usize>, value: u32) -> bool {
    range.len() == 4 && put(buf, range.start, &value.to_le_bytes())
}
