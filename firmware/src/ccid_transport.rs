//! CCID messages over full-speed bulk endpoints: reassembly of bulk-OUT packets into messages,
//! and the packets (with a closing zero-length packet) of a bulk-IN message.
//!
//! USB 2.0 §5.8.3: a bulk transfer ends with a packet shorter than wMaxPacketSize (a zero-length
//! packet when the data is a multiple of it) or when the expected amount has arrived. CCID Rev
//! 1.1 §6.1 and §6.2: the expected amount is the 10-byte header plus `dwLength`, so the device
//! delimits each command by its header, and sends a zero-length packet after a response whose
//! length is a multiple of 64 (hardware.md §D: the stock firmware does the same).
//!
//! Bad framing is not judged here: whatever one transfer carried is delivered (cut to the
//! buffer, with a flag), and the bridge's CCID code answers a `dwLength` that disagrees with it
//! with the right error. Nothing here panics on any packet sequence.

use tessera_ccid::HEADER_LEN;

/// wMaxPacketSize of the CCID bulk endpoints (full speed, hardware.md §C).
pub const PACKET_SIZE: usize = 64;

/// What one bulk-OUT packet did to the message being reassembled.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(target_os = "none", derive(defmt::Format))]
pub enum Progress {
    /// More packets are expected (or the packet was a stray zero-length packet).
    Incomplete,
    /// A transfer ended: [`Reassembler::message`] holds its first `len` bytes.
    Complete {
        /// Bytes kept (at most the buffer's capacity).
        len: usize,
        /// The transfer carried more than the buffer holds; the rest was dropped.
        truncated: bool,
    },
}

/// Reassembles bulk-OUT packets into one CCID message of at most `N` bytes.
pub struct Reassembler<const N: usize> {
    buf: [u8; N],
    kept: usize,
    received: u64,
    complete: bool,
}

impl<const N: usize> Default for Reassembler<N> {
    fn default() -> Self {
        Self::new()
    }
}

impl<const N: usize> Reassembler<N> {
    /// An empty reassembler.
    pub const fn new() -> Self {
        Reassembler {
            buf: [0; N],
            kept: 0,
            received: 0,
            complete: false,
        }
    }

    /// Forget a partly received message (e.g. after a USB reset).
    pub fn reset(&mut self) {
        self.kept = 0;
        self.received = 0;
        self.complete = false;
    }

    /// The bytes a transfer carried `10 + dwLength` should end at, once the header is in.
    fn expected(&self) -> Option<u64> {
        if self.kept < HEADER_LEN {
            return None;
        }
        let dw_length = u32::from_le_bytes(self.buf.get(1..5)?.try_into().ok()?);
        Some(HEADER_LEN as u64 + u64::from(dw_length))
    }

    /// Take one bulk-OUT packet (at most [`PACKET_SIZE`] bytes; a longer one is taken whole
    /// and treated as a full packet).
    pub fn push(&mut self, packet: &[u8]) -> Progress {
        if self.complete {
            self.reset();
        }
        if packet.is_empty() && self.received == 0 {
            return Progress::Incomplete; // a zero-length packet between messages
        }
        let room = N - self.kept;
        let take = packet.len().min(room);
        if let (Some(dst), Some(src)) = (
            self.buf.get_mut(self.kept..self.kept + take),
            packet.get(..take),
        ) {
            dst.copy_from_slice(src);
            self.kept += take;
        }
        self.received = self.received.saturating_add(packet.len() as u64);
        let short = packet.len() < PACKET_SIZE;
        let all_in = self.expected().is_some_and(|e| self.received >= e);
        if short || all_in {
            self.complete = true;
            Progress::Complete {
                len: self.kept,
                truncated: self.received > self.kept as u64,
            }
        } else {
            Progress::Incomplete
        }
    }

    /// The message of the last [`Progress::Complete`] (until the next [`Reassembler::push`]).
    pub fn message(&self) -> &[u8] {
        if self.complete {
            self.buf.get(..self.kept).unwrap_or(&[])
        } else {
            &[]
        }
    }
}

/// The bulk-IN packets of one message: 64-byte packets, then a zero-length packet if the
/// message is a multiple of 64 bytes long (so the host sees the transfer end).
pub fn packets(message: &[u8]) -> impl Iterator<Item = &[u8]> {
    let zlp = message.len() % PACKET_SIZE == 0;
    message
        .chunks(PACKET_SIZE)
        .chain(message.get(..0).filter(|_| zlp))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn xfr_block(payload_len: usize) -> Vec<u8> {
        // PC_to_RDR_XfrBlock: type 6F, dwLength, slot 0, seq 7, BWI 0, wLevelParameter 0.
        let mut m = vec![0x6F];
        m.extend_from_slice(&(payload_len as u32).to_le_bytes());
        m.extend_from_slice(&[0x00, 0x07, 0x00, 0x00, 0x00]);
        m.extend((0..payload_len).map(|i| i as u8));
        m
    }

    fn feed<const N: usize>(r: &mut Reassembler<N>, bytes: &[u8]) -> Vec<Progress> {
        bytes.chunks(PACKET_SIZE).map(|p| r.push(p)).collect()
    }

    #[test]
    fn a_one_packet_message_completes_at_once() {
        let mut r = Reassembler::<271>::new();
        // PC_to_RDR_GetSlotStatus, slot 0, seq 1.
        let msg = [0x65, 0, 0, 0, 0, 0x00, 0x01, 0, 0, 0];
        assert_eq!(
            r.push(&msg),
            Progress::Complete {
                len: 10,
                truncated: false
            }
        );
        assert_eq!(r.message(), msg);
    }

    #[test]
    fn a_message_across_packets_completes_at_its_dw_length() {
        let mut r = Reassembler::<271>::new();
        let msg = xfr_block(261); // 271 bytes: 64 + 64 + 64 + 64 + 15
        let progress = feed(&mut r, &msg);
        assert_eq!(progress.len(), 5);
        assert!(progress[..4].iter().all(|p| *p == Progress::Incomplete));
        assert_eq!(
            progress[4],
            Progress::Complete {
                len: 271,
                truncated: false
            }
        );
        assert_eq!(r.message(), msg.as_slice());
    }

    #[test]
    fn a_multiple_of_64_completes_without_waiting_for_a_zlp_and_a_later_zlp_is_ignored() {
        let mut r = Reassembler::<271>::new();
        let msg = xfr_block(118); // 128 bytes
        let progress = feed(&mut r, &msg);
        assert_eq!(
            progress,
            [
                Progress::Incomplete,
                Progress::Complete {
                    len: 128,
                    truncated: false
                }
            ]
        );
        assert_eq!(r.push(&[]), Progress::Incomplete);
        assert_eq!(r.message(), &[] as &[u8]);
        // The next message starts clean.
        let next = xfr_block(3);
        assert_eq!(
            r.push(&next),
            Progress::Complete {
                len: 13,
                truncated: false
            }
        );
        assert_eq!(r.message(), next.as_slice());
    }

    #[test]
    fn a_short_packet_ends_a_message_shorter_than_its_dw_length() {
        let mut r = Reassembler::<271>::new();
        let mut msg = xfr_block(100);
        msg.truncate(80); // dwLength says 100, 70 payload bytes came
        let progress = feed(&mut r, &msg);
        assert_eq!(
            progress.last(),
            Some(&Progress::Complete {
                len: 80,
                truncated: false
            })
        );
        assert_eq!(r.message(), msg.as_slice());
    }

    #[test]
    fn a_message_longer_than_the_buffer_is_cut_and_flagged() {
        let mut r = Reassembler::<271>::new();
        let msg = xfr_block(400);
        let progress = feed(&mut r, &msg);
        assert_eq!(
            progress.last(),
            Some(&Progress::Complete {
                len: 271,
                truncated: true
            })
        );
        assert_eq!(r.message(), &msg[..271]);
    }

    #[test]
    fn more_data_than_dw_length_is_delivered_up_to_the_packet_end() {
        let mut r = Reassembler::<271>::new();
        let mut msg = xfr_block(2);
        msg.extend_from_slice(&[0xEE; 20]);
        assert_eq!(
            r.push(&msg),
            Progress::Complete {
                len: 32,
                truncated: false
            }
        );
    }

    #[test]
    fn a_short_first_packet_completes_as_it_is() {
        let mut r = Reassembler::<271>::new();
        assert_eq!(
            r.push(&[0x65, 0, 0]),
            Progress::Complete {
                len: 3,
                truncated: false
            }
        );
        assert_eq!(r.message(), [0x65, 0, 0]);
    }

    #[test]
    fn packets_of_a_message_end_with_a_zlp_only_on_multiples_of_64() {
        for (len, expected) in [
            (10, vec![10]),
            (63, vec![63]),
            (64, vec![64, 0]),
            (65, vec![64, 1]),
            (128, vec![64, 64, 0]),
            (271, vec![64, 64, 64, 64, 15]),
        ] {
            let msg = vec![0u8; len];
            let sizes: Vec<usize> = packets(&msg).map(<[u8]>::len).collect();
            assert_eq!(sizes, expected, "length {len}");
        }
    }

    #[test]
    fn packets_and_reassembly_round_trip() {
        for len in 10..=271 {
            let mut msg = xfr_block(len - 10);
            msg.truncate(len);
            let mut r = Reassembler::<271>::new();
            let mut last = Progress::Incomplete;
            for p in packets(&msg) {
                if let Progress::Complete { .. } = last {
                    // The ZLP after a completed multiple of 64 is ignored.
                    assert_eq!(r.push(p), Progress::Incomplete);
                    continue;
                }
                last = r.push(p);
            }
            assert_eq!(
                last,
                Progress::Complete {
                    len,
                    truncated: false
                }
            );
        }
    }

    #[test]
    fn any_packet_sequence_never_panics() {
        let mut seed = 0x9E37_79B9_7F4A_7C15u64;
        let mut next = move || {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            seed
        };
        let mut r = Reassembler::<271>::new();
        for _ in 0..20_000 {
            let n = next();
            let len = (n % 70) as usize;
            let packet: Vec<u8> = (0..len).map(|i| (n >> (i % 56)) as u8).collect();
            if let Progress::Complete { len, .. } = r.push(&packet) {
                assert_eq!(r.message().len(), len);
                assert!(len <= 271);
            }
        }
    }
}
