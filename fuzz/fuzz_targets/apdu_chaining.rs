//! Builder -> bytes -> view, then command chaining: a command from arbitrary structured input is
//! encoded and decoded back, split into short commands, and joined again on the card side; the
//! result is the original command, or a typed error that the input explains.
#![no_main]

use arbitrary::Arbitrary;
use libfuzzer_sys::fuzz_target;
use tessera_apdu::command::{MAX_EXTENDED_NE, MAX_SHORT_NC, MAX_SHORT_NE};
use tessera_apdu::{Chain, ChainAssembler, ChainError, Cla, Command, CommandRepr, Progress};

#[derive(Debug, Arbitrary)]
struct Input {
    cla: u8,
    ins: u8,
    p1: u8,
    p2: u8,
    data: Vec<u8>,
    /// Ne, taken modulo 65 537 so every value 0..=65 536 can occur.
    ne: u32,
    force_extended: bool,
    /// Chunk length; 0 is invalid.
    chunk: u8,
    /// The card's buffer for the joined data.
    card_buffer: u16,
}

fuzz_target!(|input: Input| {
    let ne = (input.ne % (MAX_EXTENDED_NE as u32 + 1)) as usize;
    let whole = CommandRepr {
        cla: Cla(input.cla),
        ins: input.ins,
        p1: input.p1,
        p2: input.p2,
        data: &input.data,
        ne,
        force_extended: input.force_extended,
    };

    // Builder -> bytes -> view -> repr.
    let mut bytes = vec![0u8; whole.buffer_len()];
    match whole.emit(&mut bytes) {
        Ok(len) => {
            assert_eq!(len, bytes.len());
            let view = Command::new_checked(&bytes[..]).expect("emitted command parses");
            assert_eq!(
                (view.data(), view.ne(), view.case()),
                (whole.data, ne, whole.case())
            );
            let back = CommandRepr::parse(&view).expect("emitted command parses");
            assert_eq!(back.is_extended(), whole.is_extended());
            assert_eq!(
                (back.cla, back.ins, back.p1, back.p2),
                (whole.cla, whole.ins, whole.p1, whole.p2)
            );
        }
        Err(_) => assert!(input.data.len() > 65_535),
    }

    // Split.
    let chunk = usize::from(input.chunk);
    let chain = match Chain::new(whole, chunk) {
        Ok(chain) => chain,
        Err(ChainError::InvalidChunkLen) => return assert_eq!(chunk, 0),
        Err(ChainError::NeTooLarge) => return assert!(ne > MAX_SHORT_NE),
        Err(ChainError::ChainingBitSet) => return assert!(whole.cla.is_chained()),
        Err(other) => panic!("Chain::new cannot fail with {other:?}"),
    };
    assert!(chunk <= MAX_SHORT_NC);

    // Send every link through bytes, and join them in a card buffer.
    let mut card = vec![0u8; usize::from(input.card_buffer)];
    let mut assembler = ChainAssembler::new(&mut card);
    let links = chain.len();
    for (i, link) in chain.enumerate() {
        let last = i + 1 == links;
        let mut wire = vec![0u8; link.buffer_len()];
        link.emit(&mut wire).expect("a link is a short command");
        let view = Command::new_checked(&wire[..]).expect("a link parses");
        assert!(!view.is_extended());
        assert_eq!(view.cla().is_chained(), !last);
        let repr = CommandRepr::parse(&view).expect("a link parses");
        match assembler.push(&repr) {
            Ok(progress) => {
                assert_eq!(progress == Progress::Complete, last);
            }
            Err(ChainError::Overflow) => {
                assert!(input.data.len() > card.len());
                return;
            }
            Err(other) => panic!("push cannot fail with {other:?}"),
        }
    }
    let joined = assembler.command().expect("complete after the last link");
    assert_eq!(
        joined,
        CommandRepr {
            force_extended: false,
            ..whole
        }
    );
});
