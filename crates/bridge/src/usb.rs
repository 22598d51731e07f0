//! Bulk-OUT reassembly: CCID messages arrive in USB packets of `wMaxPacketSize` (64 bytes at
//! full speed) and the bridge wants whole messages. Both drivers (the firmware's USB task and
//! the virtual board) use [`BulkOutAssembler`].
//!
//! A message ends when `10 + dwLength` bytes are in (CCID Rev 1.1 §6.1), or earlier at a short
//! packet (USB 2.0 §5.8.3: a transfer ends with a packet shorter than `wMaxPacketSize`), which
//! hands over a truncated message: the bridge answers it with a `dwLength` error. A message
//! longer than the buffer is counted to its end and handed over cut to the buffer, so the
//! bridge can still answer it from its header.

/// Reassembles bulk-OUT packets into CCID messages in a buffer of `N` bytes (at least
/// `dwMaxCCIDMessageLength`).
#[derive(Debug, Clone)]
pub struct BulkOutAssembler<const N: usize> {
    buf: [u8; N],
    /// Bytes of the current message received (may exceed `N`).
    received: usize,
    /// The last `push` handed over a message; the next starts afresh.
    done: bool,
}

impl<const N: usize> Default for BulkOutAssembler<N> {
    fn default() -> Self {
        Self::new()
    }
}

impl<const N: usize> BulkOutAssembler<N> {
    /// An empty assembler.
    pub const fn new() -> Self {
        BulkOutAssembler {
            buf: [0; N],
            received: 0,
            done: false,
        }
    }

    /// Forget a partial message (after a USB bus reset).
    pub fn reset(&mut self) {
        self.received = 0;
        self.done = false;
    }

    /// Feed one packet (`max_packet` is the endpoint's `wMaxPacketSize`). Returns the message
    /// when it is complete (cut to `N` bytes), to be fed to the bridge as
    /// [`Event::UsbBulkOut`](crate::Event::UsbBulkOut) before the next packet.
    pub fn push(&mut self, packet: &[u8], max_packet: usize) -> Option<&[u8]> {
        if self.done {
            self.reset();
        }
        if packet.is_empty() && self.received == 0 {
            // A zero-length packet between messages ends nothing.
            return None;
        }
        for &b in packet {
            if let Some(slot) = self.buf.get_mut(self.received) {
                *slot = b;
            }
            self.received = self.received.saturating_add(1);
        }
        let total = if self.received >= tessera_ccid::HEADER_LEN {
            tessera_ccid::Message::new_unchecked(&self.buf[..]).total_len()
        } else {
            None
        };
        let complete = total.is_some_and(|t| self.received >= t) || packet.len() < max_packet;
        if !complete {
            return None;
        }
        self.done = true;
        let len = total.map_or(self.received, |t| t.min(self.received)).min(N);
        self.buf.get(..len)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_message_in_packets() {
        let mut a = BulkOutAssembler::<300>::new();
        // XfrBlock with 100 payload bytes: 110 bytes, packets of 64 + 46.
        let mut msg = [0u8; 110];
        msg[0] = 0x6F;
        msg[1] = 100;
        assert_eq!(a.push(&msg[..64], 64), None);
        assert_eq!(a.push(&msg[64..], 64), Some(&msg[..]));
        // The next message starts afresh.
        let small = [0x65, 0, 0, 0, 0, 0, 1, 0, 0, 0];
        assert_eq!(a.push(&small, 64), Some(&small[..]));
    }

    #[test]
    fn exact_multiple_of_the_packet_size_needs_no_zlp() {
        let mut a = BulkOutAssembler::<300>::new();
        let mut msg = [0u8; 128];
        msg[0] = 0x6F;
        msg[1] = 118;
        assert_eq!(a.push(&msg[..64], 64), None);
        assert_eq!(a.push(&msg[64..], 64).map(<[u8]>::len), Some(128));
        // A ZLP after it is ignored.
        assert_eq!(a.push(&[], 64), None);
    }

    #[test]
    fn short_packet_ends_a_truncated_message() {
        let mut a = BulkOutAssembler::<300>::new();
        let mut msg = [0u8; 20];
        msg[0] = 0x6F;
        msg[1] = 200; // announces 200 payload bytes
        assert_eq!(a.push(&msg, 64).map(<[u8]>::len), Some(20));
    }

    #[test]
    fn oversized_message_is_cut_to_the_buffer() {
        let mut a = BulkOutAssembler::<64>::new();
        let mut first = [0u8; 64];
        first[0] = 0x6F;
        first[1] = 0x76; // 118 payload bytes: 128 in all
        assert_eq!(a.push(&first, 64), None);
        assert_eq!(a.push(&[0u8; 64], 64).map(<[u8]>::len), Some(64));
    }
}
