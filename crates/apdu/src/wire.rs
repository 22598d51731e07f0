//! Small byte-writing helpers shared by the emitters. Never panic: every copy is between slices of
//! equal length obtained with checked splits.

/// Copies `bytes` to the front of `*out` and advances `*out` past them.
/// Returns `None` (leaving `*out` empty) when `*out` is too short.
pub(crate) fn put(out: &mut &mut [u8], bytes: &[u8]) -> Option<()> {
    let (head, tail) = core::mem::take(out).split_at_mut_checked(bytes.len())?;
    head.copy_from_slice(bytes);
    *out = tail;
    Some(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn put_advances_and_refuses_overflow() {
        let mut buf = [0u8; 3];
        let mut out: &mut [u8] = &mut buf;
        assert_eq!(put(&mut out, &[1, 2]), Some(()));
        assert_eq!(out.len(), 1);
        assert_eq!(put(&mut out, &[3, 4]), None);
        assert_eq!(buf, [1, 2, 0]);
    }
}
