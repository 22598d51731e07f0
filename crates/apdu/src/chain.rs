//! Command chaining (ISO/IEC 7816-4:2020 §5.3.3), for a reader or card without extended length.
//!
//! A command whose data does not fit one short APDU is sent as a chain of short commands with the
//! same INS P1 P2: every command but the last has the chaining bit b5 (`0x10`) set in CLA, and
//! the data fields, in order, make up the original data. The card answers `9000` to each
//! command but the last, and the answer to the last one is the answer to the whole command.
//!
//! - [`Chain`] (reader side) yields the short commands as [`CommandRepr`]s that borrow the
//!   original data; the caller emits each into its own buffer. Nothing is copied or allocated.
//! - [`ChainAssembler`] (card side) joins the data of the commands of a chain into a caller
//!   buffer and hands back the whole command.
//!
//! Ne above 256 cannot be sent on a short command. [`Chain::new`] refuses it with
//! [`ChainError::NeTooLarge`] rather than silently asking for 256 bytes: a caller that wants the
//! data in pieces asks for Ne = 256 (short Le `00`) itself and fetches the rest with GET
//! RESPONSE when the card answers `61xx` (response chaining, ISO/IEC 7816-4:2020 §5.3).
//!
//! Law: for every command `c` with Ne <= 256 and without the chaining bit in CLA, feeding the
//! commands of `Chain::new(c, k)` (for any chunk length `k` in 1..=255) to a `ChainAssembler`
//! gives back `c` (with [`CommandRepr::force_extended`] cleared).

use core::fmt;
use core::iter::FusedIterator;

use crate::cla::Cla;
use crate::command::{CommandRepr, MAX_SHORT_NC, MAX_SHORT_NE};

/// A command that cannot be split, or a chain the card side cannot join.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum ChainError {
    /// The chunk length is not in 1..=255.
    InvalidChunkLen,
    /// Ne exceeds 256, which no short Le field codes.
    NeTooLarge,
    /// The command to split already has the chaining bit set in CLA.
    ChainingBitSet,
    /// A command of a chain in progress has a different CLA (chaining bit aside), INS, P1 or P2
    /// from the first command of the chain. The chain in progress is dropped.
    HeaderMismatch,
    /// The joined data would not fit the assembler's buffer. The chain in progress is dropped.
    Overflow,
}

impl fmt::Display for ChainError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            ChainError::InvalidChunkLen => "chaining chunk length not in 1..=255",
            ChainError::NeTooLarge => "Ne larger than 256 cannot be chained in short APDUs",
            ChainError::ChainingBitSet => "command to chain already has the chaining bit set",
            ChainError::HeaderMismatch => "chained command header differs from the chain's",
            ChainError::Overflow => "chained command data overflows the buffer",
        })
    }
}

impl core::error::Error for ChainError {}

/// The short commands of a chain, in order (ISO/IEC 7816-4:2020 §5.3.3).
///
/// Each item is a short command: CLA with the chaining bit on all but the last, at most `chunk`
/// data bytes, and Le (Ne of the original command) on the last only. A command with at most
/// `chunk` data bytes gives one item, the command itself in the short form.
#[derive(Debug, Clone)]
pub struct Chain<'a> {
    command: CommandRepr<'a>,
    rest: &'a [u8],
    chunk: usize,
    done: bool,
}

impl<'a> Chain<'a> {
    /// Splits `command` into commands of at most `chunk` data bytes (255 for the most a short
    /// Lc codes). Fails when `chunk` is not in 1..=255, when Ne > 256, or when CLA already has
    /// the chaining bit.
    pub fn new(command: CommandRepr<'a>, chunk: usize) -> Result<Chain<'a>, ChainError> {
        if chunk == 0 || chunk > MAX_SHORT_NC {
            return Err(ChainError::InvalidChunkLen);
        }
        if command.ne > MAX_SHORT_NE {
            return Err(ChainError::NeTooLarge);
        }
        if command.cla.is_chained() {
            return Err(ChainError::ChainingBitSet);
        }
        Ok(Chain {
            command,
            rest: command.data,
            chunk,
            done: false,
        })
    }

    /// Splits `command` into commands of at most 255 data bytes.
    pub fn with_max_chunk(command: CommandRepr<'a>) -> Result<Chain<'a>, ChainError> {
        Chain::new(command, MAX_SHORT_NC)
    }
}

impl<'a> Iterator for Chain<'a> {
    type Item = CommandRepr<'a>;

    fn next(&mut self) -> Option<CommandRepr<'a>> {
        if self.done {
            return None;
        }
        let short = CommandRepr {
            force_extended: false,
            ..self.command
        };
        match self.rest.split_at_checked(self.chunk) {
            Some((head, tail)) if !tail.is_empty() => {
                self.rest = tail;
                Some(CommandRepr {
                    cla: short.cla.with_chaining(true),
                    data: head,
                    ne: 0,
                    ..short
                })
            }
            _ => {
                self.done = true;
                Some(CommandRepr {
                    data: self.rest,
                    ..short
                })
            }
        }
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        let n = if self.done {
            0
        } else {
            self.rest.len().div_ceil(self.chunk).max(1)
        };
        (n, Some(n))
    }
}

impl ExactSizeIterator for Chain<'_> {}

impl FusedIterator for Chain<'_> {}

/// What [`ChainAssembler::push`] found.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum Progress {
    /// The command had the chaining bit: more are to come. A card answers it with `9000`.
    Incomplete,
    /// The command was the last (or only) one: [`ChainAssembler::command`] holds the whole.
    Complete,
}

/// The header shared by the commands of a chain; CLA without the chaining bit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct ChainHeader {
    cla: Cla,
    ins: u8,
    p1: u8,
    p2: u8,
}

impl ChainHeader {
    fn of(command: &CommandRepr<'_>) -> ChainHeader {
        ChainHeader {
            cla: command.cla.with_chaining(false),
            ins: command.ins,
            p1: command.p1,
            p2: command.p2,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    /// No chain in progress and no command held.
    Idle,
    /// Commands with the chaining bit were pushed; the last one is awaited.
    InProgress(ChainHeader),
    /// The whole command is held, with its Ne.
    Complete(ChainHeader, usize),
}

/// Joins the commands of a chain into one (card side of ISO/IEC 7816-4:2020 §5.3.3), in a
/// caller buffer that bounds the joined data.
///
/// Push every received command, chained or not; on [`Progress::Complete`] take the whole command
/// from [`command`](ChainAssembler::command). The next push after a complete command starts a
/// new one. Ne of the commands before the last is ignored. An error drops the chain in progress.
#[derive(Debug)]
pub struct ChainAssembler<'b> {
    buffer: &'b mut [u8],
    len: usize,
    state: State,
}

impl<'b> ChainAssembler<'b> {
    /// An assembler that joins at most `buffer.len()` data bytes.
    pub fn new(buffer: &'b mut [u8]) -> ChainAssembler<'b> {
        ChainAssembler {
            buffer,
            len: 0,
            state: State::Idle,
        }
    }

    /// Takes one received command (ISO/IEC 7816-4:2020 §5.3.3): checks that it continues the
    /// chain in progress (same CLA apart from the chaining bit, same INS, P1, P2), appends its
    /// data, and says whether the chain is complete.
    pub fn push(&mut self, command: &CommandRepr<'_>) -> Result<Progress, ChainError> {
        let header = ChainHeader::of(command);
        match self.state {
            State::InProgress(expected) if expected != header => {
                self.reset();
                return Err(ChainError::HeaderMismatch);
            }
            State::InProgress(_) => {}
            State::Idle | State::Complete(..) => self.len = 0,
        }
        let end = self.len.checked_add(command.data.len());
        let Some(slot) = end.and_then(|end| self.buffer.get_mut(self.len..end)) else {
            self.reset();
            return Err(ChainError::Overflow);
        };
        slot.copy_from_slice(command.data);
        self.len = end.unwrap_or(self.len);
        if command.cla.is_chained() {
            self.state = State::InProgress(header);
            Ok(Progress::Incomplete)
        } else {
            self.state = State::Complete(header, command.ne);
            Ok(Progress::Complete)
        }
    }

    /// The whole command once the last command of the chain was pushed; `None` before.
    pub fn command(&self) -> Option<CommandRepr<'_>> {
        let State::Complete(header, ne) = self.state else {
            return None;
        };
        let data = self.buffer.get(..self.len)?;
        Some(CommandRepr {
            cla: header.cla,
            ins: header.ins,
            p1: header.p1,
            p2: header.p2,
            data,
            ne,
            force_extended: false,
        })
    }

    /// Whether commands of a chain were pushed and the last one is still awaited.
    pub fn is_in_progress(&self) -> bool {
        matches!(self.state, State::InProgress(_))
    }

    /// Drops the chain in progress or the command held.
    pub fn reset(&mut self) {
        self.len = 0;
        self.state = State::Idle;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::command::Command;

    fn update_binary(data: &[u8]) -> CommandRepr<'_> {
        CommandRepr::new(Cla(0x00), 0xD7, 0xCF, 0x10).with_data(data)
    }

    #[test]
    fn splits_into_short_commands() {
        let data: [u8; 600] = core::array::from_fn(|i| i as u8);
        let command = update_binary(&data).with_ne(256);
        let chain = Chain::with_max_chunk(command).unwrap();
        assert_eq!(chain.len(), 3);
        let parts: [CommandRepr<'_>; 3] = {
            let mut it = chain;
            [it.next().unwrap(), it.next().unwrap(), it.next().unwrap()]
        };
        assert_eq!(
            (parts[0].cla, parts[0].data, parts[0].ne),
            (Cla(0x10), &data[..255], 0)
        );
        assert_eq!(
            (parts[1].cla, parts[1].data, parts[1].ne),
            (Cla(0x10), &data[255..510], 0)
        );
        assert_eq!(
            (parts[2].cla, parts[2].data, parts[2].ne),
            (Cla(0x00), &data[510..], 256)
        );
        assert!(parts
            .iter()
            .all(|p| !p.is_extended() && (p.ins, p.p1, p.p2) == (0xD7, 0xCF, 0x10)));
    }

    #[test]
    fn first_chained_command_bytes() {
        // 00 D7 CF 10 with 5 data bytes in chunks of 2: first link 10 D7 CF 10 02 01 02.
        let data = [1u8, 2, 3, 4, 5];
        let mut chain = Chain::new(update_binary(&data), 2).unwrap();
        let mut out = [0u8; 8];
        let n = chain.next().unwrap().emit(&mut out).unwrap();
        assert_eq!(&out[..n], &[0x10, 0xD7, 0xCF, 0x10, 0x02, 0x01, 0x02]);
        assert_eq!(chain.len(), 2);
    }

    #[test]
    fn small_and_empty_commands_are_one_link() {
        let verify = CommandRepr::new(Cla(0x00), 0x20, 0x00, 0x81);
        let mut chain = Chain::with_max_chunk(verify.with_extended()).unwrap();
        assert_eq!(chain.next(), Some(verify));
        assert_eq!(chain.next(), None);
        let data = [0x31u8; 255];
        let mut chain = Chain::with_max_chunk(update_binary(&data)).unwrap();
        assert_eq!(chain.next(), Some(update_binary(&data)));
        assert_eq!(chain.next(), None);
    }

    #[test]
    fn refuses_what_cannot_be_chained() {
        let data = [0u8; 10];
        assert_eq!(
            Chain::new(update_binary(&data), 0).err(),
            Some(ChainError::InvalidChunkLen)
        );
        assert_eq!(
            Chain::new(update_binary(&data), 256).err(),
            Some(ChainError::InvalidChunkLen)
        );
        let read = CommandRepr::new(Cla(0x00), 0xB1, 0, 0)
            .with_data(&data)
            .with_ne(1024);
        assert_eq!(
            Chain::with_max_chunk(read).err(),
            Some(ChainError::NeTooLarge)
        );
        let chained = update_binary(&data);
        let chained = CommandRepr {
            cla: Cla(0x10),
            ..chained
        };
        assert_eq!(
            Chain::with_max_chunk(chained).err(),
            Some(ChainError::ChainingBitSet)
        );
    }

    #[test]
    fn assembler_joins_parsed_links() {
        let links: [&[u8]; 2] = [
            &[0x90, 0x68, 0x01, 0x73, 0x03, 0xAA, 0xBB, 0xCC], // chained: CLA 80 | 10
            &[0x80, 0x68, 0x01, 0x73, 0x02, 0xDD, 0xEE, 0x00], // last, Le = 00
        ];
        let mut buffer = [0u8; 8];
        let mut assembler = ChainAssembler::new(&mut buffer);
        let first = Command::new_checked(links[0]).unwrap();
        assert_eq!(
            assembler.push(&CommandRepr::parse(&first).unwrap()),
            Ok(Progress::Incomplete)
        );
        assert!(assembler.is_in_progress());
        assert_eq!(assembler.command(), None);
        let last = Command::new_checked(links[1]).unwrap();
        assert_eq!(
            assembler.push(&CommandRepr::parse(&last).unwrap()),
            Ok(Progress::Complete)
        );
        let whole = assembler.command().unwrap();
        assert_eq!(whole.cla, Cla(0x80));
        assert_eq!((whole.ins, whole.p1, whole.p2), (0x68, 0x01, 0x73));
        assert_eq!(whole.data, &[0xAA, 0xBB, 0xCC, 0xDD, 0xEE]);
        assert_eq!(whole.ne, 256);
    }

    #[test]
    fn assembler_reports_mismatch_and_overflow() {
        let mut buffer = [0u8; 4];
        let mut assembler = ChainAssembler::new(&mut buffer);
        let link = CommandRepr::new(Cla(0x10), 0xD7, 0, 0).with_data(&[1, 2]);
        assert_eq!(assembler.push(&link), Ok(Progress::Incomplete));
        let other = CommandRepr { p2: 1, ..link };
        assert_eq!(assembler.push(&other), Err(ChainError::HeaderMismatch));
        assert!(!assembler.is_in_progress());
        // After the error a new chain starts from scratch.
        assert_eq!(assembler.push(&link), Ok(Progress::Incomplete));
        assert_eq!(assembler.push(&link), Ok(Progress::Incomplete));
        assert_eq!(assembler.push(&link), Err(ChainError::Overflow));
        assert!(!assembler.is_in_progress());
        // A lone command is complete at once; the next push starts again.
        let single = CommandRepr::new(Cla(0x00), 0xD7, 0, 0).with_data(&[9]);
        assert_eq!(assembler.push(&single), Ok(Progress::Complete));
        assert_eq!(assembler.command(), Some(single));
        assert_eq!(assembler.push(&single), Ok(Progress::Complete));
        assert_eq!(assembler.command().map(|c| c.data), Some(&[9u8][..]));
    }
}
