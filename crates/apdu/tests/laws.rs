//! The round-trip laws and the no-panic guarantee, as property tests (and, where the input space
//! is small enough, exhaustive tests).
#![allow(
    clippy::indexing_slicing,
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic
)]

use proptest::collection::vec;
use proptest::prelude::*;
use tessera_apdu::command::{MAX_EXTENDED_NE, MAX_SHORT_NC, MAX_SHORT_NE};
use tessera_apdu::{
    Case, Chain, ChainAssembler, Cla, Command, CommandRepr, Progress, Response, ResponseRepr,
    StatusWord, Tag, Tlv, TlvError, TlvRepr, TlvWriter, Tlvs,
};

/// Everything a view of any bytes answers, read once so that a panic anywhere shows.
fn read_all_accessors(bytes: &[u8]) {
    let view = Command::new_unchecked(bytes);
    let _ = (
        view.cla(),
        view.ins(),
        view.p1(),
        view.p2(),
        view.case(),
        view.is_extended(),
    );
    let _ = (view.data(), view.ne(), view.check_len());
}

/// The command law: whatever parses emits back to itself, and the view agrees with the repr.
fn command_law(bytes: &[u8]) -> Option<Case> {
    read_all_accessors(bytes);
    let checked = Command::new_checked(bytes);
    let repr = CommandRepr::parse_bytes(bytes);
    assert_eq!(checked.is_ok(), repr.is_ok());
    let (view, repr) = (checked.ok()?, repr.ok()?);
    assert_eq!(repr.buffer_len(), bytes.len());
    let mut out = vec![0u8; bytes.len()];
    assert_eq!(repr.emit(&mut out), Ok(bytes.len()));
    assert_eq!(out, bytes, "emit(parse(x)) != x");
    assert_eq!(
        (view.case(), view.data(), view.ne()),
        (repr.case(), repr.data, repr.ne)
    );
    Some(view.case())
}

/// Every body of up to 7 bytes over an alphabet that hits every length boundary: the decoding
/// is total (error or a case, no panic), and every shape that parses re-encodes to itself.
/// This is the check of the claim that the encoding of each case is canonical.
#[test]
fn small_bodies_exhaustively() {
    const ALPHABET: [u8; 5] = [0x00, 0x01, 0x02, 0x03, 0xFF];
    let mut seen = std::collections::HashSet::new();
    let mut body = Vec::new();
    for len in 0..=7u32 {
        for mut index in 0..ALPHABET.len().pow(len) {
            body.clear();
            body.extend_from_slice(&[0x80, 0xCA, 0x01, 0x02]);
            for _ in 0..len {
                body.push(ALPHABET[index % ALPHABET.len()]);
                index /= ALPHABET.len();
            }
            if let Some(case) = command_law(&body) {
                seen.insert(case);
            }
        }
    }
    assert_eq!(seen.len(), 7, "every case was reached: {seen:?}");
}

/// Any repr the builder accepts, in any case, with or without the extended form forced.
fn any_repr(max: usize) -> impl Strategy<Value = (u8, u8, u8, u8, usize, usize, bool)> {
    (
        any::<u8>(),
        any::<u8>(),
        any::<u8>(),
        any::<u8>(),
        prop_oneof![Just(0usize), 1..=max, Just(max)],
        prop_oneof![
            Just(0usize),
            1..=MAX_SHORT_NE,
            Just(MAX_SHORT_NE),
            257..=MAX_EXTENDED_NE,
            Just(MAX_EXTENDED_NE)
        ],
        any::<bool>(),
    )
}

const DATA: [u8; 700] = {
    let mut data = [0u8; 700];
    let mut i = 0;
    while i < data.len() {
        data[i] = (i * 7 + 3) as u8;
        i += 1;
    }
    data
};

proptest! {
    /// No input makes the command decoder panic, and whatever parses emits back to itself.
    #[test]
    fn command_parse_any_bytes(bytes in vec(any::<u8>(), 0..600)) {
        command_law(&bytes);
    }

    /// Valid encodings of every case, then cut, extended or with one byte changed: the law holds
    /// on the ones that still parse, and nothing panics on the others.
    #[test]
    fn command_near_valid_bytes(
        (cla, ins, p1, p2, nc, ne, force) in any_repr(DATA.len()),
        mutation in 0..4u8,
        at in any::<prop::sample::Index>(),
        byte in any::<u8>(),
    ) {
        let repr = CommandRepr { cla: Cla(cla), ins, p1, p2, data: &DATA[..nc], ne, force_extended: force };
        let mut bytes = vec![0u8; repr.buffer_len()];
        repr.emit(&mut bytes).unwrap();
        match mutation {
            0 => {}
            1 => bytes.truncate(at.index(bytes.len())),
            2 => bytes.push(byte),
            _ => { let i = at.index(bytes.len()); bytes[i] = byte; }
        }
        let parsed = command_law(&bytes);
        if mutation == 0 {
            prop_assert!(parsed.is_some());
        }
    }

    /// Builder -> bytes -> view -> repr gives back the repr, in all seven cases (`force_extended`
    /// normalised: meaningless in case 1, redundant when the extended form is needed anyway).
    #[test]
    fn command_builder_round_trip((cla, ins, p1, p2, nc, ne, force) in any_repr(DATA.len())) {
        let repr = CommandRepr { cla: Cla(cla), ins, p1, p2, data: &DATA[..nc], ne, force_extended: force };
        let mut bytes = vec![0u8; repr.buffer_len()];
        prop_assert_eq!(repr.emit(&mut bytes), Ok(bytes.len()));
        let view = Command::new_checked(&bytes[..]).unwrap();
        prop_assert_eq!(view.case(), repr.case());
        prop_assert_eq!(view.is_extended(), force && (nc > 0 || ne > 0) || nc > MAX_SHORT_NC || ne > MAX_SHORT_NE);
        prop_assert_eq!((view.cla(), view.ins(), view.p1(), view.p2()), (Cla(cla), ins, p1, p2));
        prop_assert_eq!((view.data(), view.ne()), (&DATA[..nc], ne));
        let needs_extended = nc > MAX_SHORT_NC || ne > MAX_SHORT_NE;
        let canonical = CommandRepr { force_extended: force && (nc > 0 || ne > 0) && !needs_extended, ..repr };
        prop_assert_eq!(CommandRepr::parse(&view).unwrap(), canonical);
    }

    /// Chaining: split into short commands, emitted, parsed and joined by the card side, gives
    /// back the original command.
    #[test]
    fn chain_split_then_reassemble(
        (cla, ins, p1, p2) in (any::<u8>().prop_map(|c| c & !Cla::CHAINING), any::<u8>(), any::<u8>(), any::<u8>()),
        nc in 0..=DATA.len(),
        ne in 0..=MAX_SHORT_NE,
        chunk in 1..=MAX_SHORT_NC,
        force in any::<bool>(),
    ) {
        let whole = CommandRepr { cla: Cla(cla), ins, p1, p2, data: &DATA[..nc], ne, force_extended: force };
        let chain = Chain::new(whole, chunk).unwrap();
        prop_assert_eq!(chain.len(), nc.div_ceil(chunk).max(1));
        let mut buffer = [0u8; 700];
        let mut assembler = ChainAssembler::new(&mut buffer);
        let links = chain.len();
        for (i, link) in chain.enumerate() {
            prop_assert!(!link.is_extended());
            prop_assert!(link.data.len() <= chunk);
            let mut bytes = vec![0u8; link.buffer_len()];
            link.emit(&mut bytes).unwrap();
            let view = Command::new_checked(&bytes[..]).unwrap();
            let last = i + 1 == links;
            prop_assert_eq!(view.cla().is_chained(), !last);
            prop_assert_eq!(view.ne(), if last { ne } else { 0 });
            let progress = assembler.push(&CommandRepr::parse(&view).unwrap()).unwrap();
            prop_assert_eq!(progress, if last { Progress::Complete } else { Progress::Incomplete });
        }
        prop_assert_eq!(assembler.command(), Some(CommandRepr { force_extended: false, ..whole }));
    }

    /// Any bytes of two or more are a response, and emit(parse(x)) == x.
    #[test]
    fn response_any_bytes(bytes in vec(any::<u8>(), 0..300)) {
        let view = Response::new_unchecked(&bytes[..]);
        let _ = (view.data(), view.sw1(), view.sw2(), view.status());
        match ResponseRepr::parse(&view) {
            Ok(repr) => {
                prop_assert!(bytes.len() >= 2);
                let mut out = vec![0u8; repr.buffer_len()];
                prop_assert_eq!(repr.emit(&mut out), Ok(bytes.len()));
                prop_assert_eq!(out, bytes);
            }
            Err(_) => prop_assert!(bytes.len() < 2),
        }
    }

    /// parse(emit(repr)) == repr for responses.
    #[test]
    fn response_repr_round_trip(data in vec(any::<u8>(), 0..300), sw in any::<u16>()) {
        let repr = ResponseRepr { data: &data, status: StatusWord::from(sw) };
        let mut bytes = vec![0u8; repr.buffer_len()];
        repr.emit(&mut bytes).unwrap();
        let view = Response::new_checked(&bytes[..]).unwrap();
        prop_assert_eq!(ResponseRepr::parse(&view).unwrap(), repr);
    }

    /// No input makes the TLV reader panic, at any depth; whatever parses is kept losslessly.
    #[test]
    fn tlv_any_bytes(bytes in vec(any::<u8>(), 0..400)) {
        walk(&bytes, 0);
    }

    /// A generated tree of objects, written with the writer (constructed lengths fixed up
    /// afterwards), reads back as the same tree.
    #[test]
    fn tlv_tree_round_trip(trees in vec(tree(), 0..4)) {
        let mut buffer = vec![0u8; 8192];
        let mut writer = TlvWriter::new(&mut buffer);
        for node in &trees {
            write_node(&mut writer, node).unwrap();
        }
        let bytes = writer.into_bytes();
        let read: Vec<Node> = Tlvs::new(bytes).map(|t| read_node(&t.unwrap())).collect();
        prop_assert_eq!(read, trees);
        // Everything the writer emits is minimal, so rewriting it changes nothing.
        for tlv in Tlvs::new(bytes) {
            prop_assert!(tlv.unwrap().is_minimal());
        }
    }

    /// parse(emit(repr)) == repr for every valid tag and value length up to 65 535 (lengths near
    /// the form boundaries drawn more often).
    #[test]
    fn tlv_repr_round_trip(
        tag in valid_tag(any::<bool>()),
        len in prop_oneof![0..300usize, 65_000..=65_535usize, Just(127), Just(128), Just(255), Just(256)],
    ) {
        let value = vec![0xA5u8; len];
        let repr = TlvRepr::new(tag, &value);
        let mut bytes = vec![0u8; repr.buffer_len()];
        prop_assert_eq!(repr.emit(&mut bytes), Ok(bytes.len()));
        let tlv = Tlv::parse(&bytes).unwrap();
        prop_assert_eq!(TlvRepr::parse(&tlv), repr);
        prop_assert!(tlv.is_minimal());
    }

    /// Every 1- to 3-byte tag value is valid exactly when the reader reads it back whole.
    #[test]
    fn tag_validity_matches_the_reader(raw in 0u32..=0xFF_FFFF) {
        let tag = Tag::new(raw);
        let bytes = raw.to_be_bytes();
        let field = &bytes[4 - tag.encoded_len()..];
        let read = Tag::parse_prefix(field);
        prop_assert_eq!(tag.is_valid(), read == Ok((tag, &[][..])));
    }
}

/// Iterates a buffer's objects and their children; checks the lossless law on every level.
fn walk(bytes: &[u8], depth: usize) {
    let mut joined = Vec::new();
    let mut all_ok = true;
    for tlv in Tlvs::new(bytes) {
        match tlv {
            Ok(tlv) => {
                joined.extend_from_slice(tlv.as_bytes());
                // The writer: raw copy is exact; a minimal re-encoding matches when the input was minimal.
                let mut out = vec![0u8; tlv.as_bytes().len() + 3];
                let mut writer = TlvWriter::new(&mut out);
                writer.write(tlv.tag(), tlv.value()).unwrap();
                assert_eq!(writer.as_bytes() == tlv.as_bytes(), tlv.is_minimal());
                let reread = Tlv::parse(writer.as_bytes()).unwrap();
                assert_eq!((reread.tag(), reread.value()), (tlv.tag(), tlv.value()));
                if let (Some(_), true) = (tlv.children(), depth < 32) {
                    walk(tlv.value(), depth + 1);
                }
            }
            Err(_) => all_ok = false,
        }
    }
    if all_ok {
        assert_eq!(joined, bytes);
    }
}

/// A generated data object.
#[derive(Debug, Clone, PartialEq)]
enum Node {
    Primitive(Tag, Vec<u8>),
    Constructed(Tag, Vec<Node>),
}

/// A valid tag of one to three bytes, any class, primitive or constructed as asked.
fn valid_tag(constructed: impl Strategy<Value = bool>) -> impl Strategy<Value = Tag> {
    (
        0u32..4,
        constructed,
        prop_oneof![0u32..=30, 31u32..=127, 128u32..=16_383],
    )
        .prop_filter_map("tag 00 is invalid", |(class, constructed, number)| {
            let first = (class << 6) | (u32::from(constructed) << 5);
            let raw = match number {
                0..=30 => first | number,
                31..=127 => ((first | 0x1F) << 8) | number,
                _ => ((first | 0x1F) << 16) | ((0x80 | (number >> 7)) << 8) | (number & 0x7F),
            };
            (raw != 0).then_some(Tag::new(raw))
        })
}

fn tree() -> impl Strategy<Value = Node> {
    let leaf =
        (valid_tag(Just(false)), vec(any::<u8>(), 0..200)).prop_map(|(t, v)| Node::Primitive(t, v));
    leaf.prop_recursive(4, 64, 6, |inner| {
        (valid_tag(Just(true)), vec(inner, 0..6))
            .prop_map(|(t, children)| Node::Constructed(t, children))
    })
}

fn write_node(writer: &mut TlvWriter<'_>, node: &Node) -> Result<(), TlvError> {
    match node {
        Node::Primitive(tag, value) => writer.write(*tag, value),
        Node::Constructed(tag, children) => writer.write_constructed(*tag, |w| {
            children.iter().try_for_each(|child| write_node(w, child))
        }),
    }
}

fn read_node(tlv: &Tlv<'_>) -> Node {
    match tlv.children() {
        Some(children) => Node::Constructed(
            tlv.tag(),
            children.map(|c| read_node(&c.unwrap())).collect(),
        ),
        None => Node::Primitive(tlv.tag(), tlv.value().to_vec()),
    }
}
