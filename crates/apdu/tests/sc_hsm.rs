//! Transcripts from ../shared/docs/sc-hsm-protocol.md and hardware.md: real SmartCard-HSM
//! command and response bytes, decoded case by case, and the SmartCard-HSM root CA certificate
//! (a CV certificate) read and rewritten as BER-TLV.
#![allow(
    clippy::indexing_slicing,
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic
)]

use tessera_apdu::{
    Case, Chain, ChainAssembler, ChainError, Cla, Command, CommandRepr, Progress, Response,
    ResponseRepr, StatusWord, Tag, Tlv, TlvError, TlvWriter, Tlvs,
};

/// What a command transcript line must decode to.
struct Expect<'a> {
    cla: u8,
    ins: u8,
    p1: u8,
    p2: u8,
    case: Case,
    data: &'a [u8],
    ne: usize,
}

/// The one check for the command boundary: the view decodes to `expect`, the repr agrees, and
/// emitting the repr gives the bytes back.
fn check_command(bytes: &[u8], expect: Expect<'_>) {
    let view = Command::new_checked(bytes).expect("command parses");
    assert_eq!(view.cla(), Cla(expect.cla));
    assert_eq!(
        (view.ins(), view.p1(), view.p2()),
        (expect.ins, expect.p1, expect.p2)
    );
    assert_eq!(view.case(), expect.case, "{bytes:02X?}");
    assert_eq!(view.is_extended(), expect.case.is_extended());
    assert_eq!(view.data(), expect.data);
    assert_eq!(view.ne(), expect.ne);
    let repr = CommandRepr::parse(&view).unwrap();
    assert_eq!(repr.case(), expect.case);
    let mut out = vec![0u8; repr.buffer_len()];
    assert_eq!(repr.emit(&mut out), Ok(bytes.len()));
    assert_eq!(out, bytes);
}

/// The one check for the response boundary.
fn check_response(bytes: &[u8], data: &[u8], status: StatusWord) {
    let view = Response::new_checked(bytes).unwrap();
    assert_eq!((view.data(), view.status()), (data, status));
    let repr = ResponseRepr::parse(&view).unwrap();
    let mut out = vec![0u8; repr.buffer_len()];
    assert_eq!(repr.emit(&mut out), Ok(bytes.len()));
    assert_eq!(out, bytes);
}

const AID: [u8; 11] = [
    0xE8, 0x2B, 0x06, 0x01, 0x04, 0x01, 0x81, 0xC3, 0x1F, 0x02, 0x01,
];

/// §1.3 / §6.1: SELECT the applet, case 4S with Le = 00.
#[test]
fn select_applet_is_case_4s() {
    #[rustfmt::skip]
    let select = [
        0x00, 0xA4, 0x04, 0x00,                               // SELECT by DF name
        0x0B,                                                 // Lc = 11
        0xE8, 0x2B, 0x06, 0x01, 0x04, 0x01, 0x81, 0xC3, 0x1F, 0x02, 0x01, // SmartCard-HSM AID
        0x00,                                                 // Le = 00: Ne = 256
    ];
    check_command(
        &select,
        Expect {
            cla: 0x00,
            ins: 0xA4,
            p1: 0x04,
            p2: 0x00,
            case: Case::FourShort,
            data: &AID,
            ne: 256,
        },
    );
    // The builder makes the same bytes from the meaning alone.
    let built = CommandRepr::new(Cla(0x00), 0xA4, 0x04, 0x00)
        .with_data(&AID)
        .with_ne(256);
    let mut out = [0u8; 17];
    assert_eq!(built.emit(&mut out), Ok(17));
    assert_eq!(out, select);
    // A non-SmartCard-HSM card answers 6A82.
    check_response(&[0x6A, 0x82], &[], StatusWord::FileNotFound);
}

/// hardware.md: the stock firmware's boot-time READ BINARY, case 4E (Lc = 4, Ne = 1024),
/// answered 6282 with the available data.
#[test]
fn boot_read_binary_is_case_4e() {
    #[rustfmt::skip]
    let read = [
        0x00, 0xB1, 0x00, 0x00, // READ BINARY (odd INS), current EF
        0x00, 0x00, 0x04,       // extended Lc = 4
        0x54, 0x02, 0x00, 0x00, // offset DO 54: 0000
        0x04, 0x00,             // extended Le = 0400: Ne = 1024
    ];
    check_command(
        &read,
        Expect {
            cla: 0x00,
            ins: 0xB1,
            p1: 0x00,
            p2: 0x00,
            case: Case::FourExtended,
            data: &[0x54, 0x02, 0x00, 0x00],
            ne: 1024,
        },
    );
    let view = Command::new_checked(&read[..]).unwrap();
    let offset = Tlv::parse(view.data()).unwrap();
    assert_eq!(
        (offset.tag(), offset.value()),
        (Tag::new(0x54), &[0x00, 0x00][..])
    );
    // Without extended length, Ne = 1024 cannot be asked for: the splitter says so.
    let repr = CommandRepr::parse(&view).unwrap();
    assert_eq!(
        Chain::with_max_chunk(repr).err(),
        Some(ChainError::NeTooLarge)
    );
    // The card's answer: the data it has, and 6282.
    check_response(
        &[0x7F, 0x21, 0x00, 0x62, 0x82],
        &[0x7F, 0x21, 0x00],
        StatusWord::EndOfFileBeforeLe,
    );
}

/// §2.2 / §6.1 / §6.3: VERIFY status queries and PIN presentation, with the counter answers.
#[test]
fn verify_transcript() {
    // 00 20 00 81: status query, case 1 -> 69 84 (transport PIN).
    check_command(
        &[0x00, 0x20, 0x00, 0x81],
        Expect {
            cla: 0x00,
            ins: 0x20,
            p1: 0x00,
            p2: 0x81,
            case: Case::One,
            data: &[],
            ne: 0,
        },
    );
    check_response(&[0x69, 0x84], &[], StatusWord::ReferenceDataNotUsable);
    // Under secure messaging OpenSC sends it as case 2: 00 20 00 81 00.
    check_command(
        &[0x00, 0x20, 0x00, 0x81, 0x00],
        Expect {
            cla: 0x00,
            ins: 0x20,
            p1: 0x00,
            p2: 0x81,
            case: Case::TwoShort,
            data: &[],
            ne: 256,
        },
    );
    // 00 20 00 81 06 "112233": a wrong PIN, case 3S -> 63 C2, 63 C1, then 69 83.
    let wrong = [
        0x00, 0x20, 0x00, 0x81, 0x06, 0x31, 0x31, 0x32, 0x32, 0x33, 0x33,
    ];
    check_command(
        &wrong,
        Expect {
            cla: 0x00,
            ins: 0x20,
            p1: 0x00,
            p2: 0x81,
            case: Case::ThreeShort,
            data: b"112233",
            ne: 0,
        },
    );
    check_response(&[0x63, 0xC2], &[], StatusWord::RemainingRetries(2));
    check_response(&[0x63, 0xC1], &[], StatusWord::RemainingRetries(1));
    check_response(&[0x69, 0x83], &[], StatusWord::AuthenticationMethodBlocked);
    assert_eq!(
        StatusWord::from(0x63C2).to_string(),
        "63C2 (counter, e.g. retries left: 2)"
    );
    // The SO-PIN status on a fresh card: 63 CF, fifteen tries.
    check_response(&[0x63, 0xCF], &[], StatusWord::RemainingRetries(15));
}

/// §6.2: INITIALIZE DEVICE, case 3S whose data is BER-TLV.
#[test]
fn initialize_device_data_is_tlv() {
    #[rustfmt::skip]
    let initialize = [
        0x80, 0x50, 0x00, 0x00, 0x19,                               // INITIALIZE, Lc = 25
        0x80, 0x02, 0x00, 0x01,                                     // options 0001
        0x81, 0x06, 0x36, 0x34, 0x38, 0x32, 0x31, 0x39,             // user PIN "648219"
        0x82, 0x08, 0x35, 0x37, 0x36, 0x32, 0x31, 0x38, 0x38, 0x30, // SO-PIN "57621880"
        0x91, 0x01, 0x03,                                           // retry counter 3
    ];
    check_command(
        &initialize,
        Expect {
            cla: 0x80,
            ins: 0x50,
            p1: 0x00,
            p2: 0x00,
            case: Case::ThreeShort,
            data: &initialize[5..],
            ne: 0,
        },
    );
    let data = &initialize[5..];
    let so_pin = Tlvs::new(data).find(Tag::new(0x82)).unwrap().unwrap();
    assert_eq!(so_pin.value(), b"57621880");
    assert_eq!(Tlvs::new(data).find(Tag::new(0x92)).unwrap(), None);
    // Rewritten with the writer, the data is the same bytes.
    let mut buffer = [0u8; 25];
    let mut writer = TlvWriter::new(&mut buffer);
    for tlv in Tlvs::new(data) {
        let tlv = tlv.unwrap();
        writer.write(tlv.tag(), tlv.value()).unwrap();
    }
    assert_eq!(writer.as_bytes(), data);
}

/// §2.6, §2.7, §2.14, §6.5, §6.6, §6.8: more shapes from the command table.
#[test]
fn other_command_shapes() {
    // DKEK status query: 80 52 00 00 00, case 2S (Ne = 256) -> 6A 88.
    check_command(
        &[0x80, 0x52, 0x00, 0x00, 0x00],
        Expect {
            cla: 0x80,
            ins: 0x52,
            p1: 0x00,
            p2: 0x00,
            case: Case::TwoShort,
            data: &[],
            ne: 256,
        },
    );
    check_response(&[0x6A, 0x88], &[], StatusWord::ReferencedDataNotFound);
    // ENUMERATE OBJECTS: 80 58 00 00 00 00 00, case 2E (Ne = 65536).
    check_command(
        &[0x80, 0x58, 0x00, 0x00, 0x00, 0x00, 0x00],
        Expect {
            cla: 0x80,
            ins: 0x58,
            p1: 0x00,
            p2: 0x00,
            case: Case::TwoExtended,
            data: &[],
            ne: 65_536,
        },
    );
    // WRAP KEY: 80 72 01 92 00 00 00, case 2E.
    check_command(
        &[0x80, 0x72, 0x01, 0x92, 0x00, 0x00, 0x00],
        Expect {
            cla: 0x80,
            ins: 0x72,
            p1: 0x01,
            p2: 0x92,
            case: Case::TwoExtended,
            data: &[],
            ne: 65_536,
        },
    );
    // UNWRAP KEY: 80 74 02 93 00 00 03 <blob>, case 3E.
    check_command(
        &[0x80, 0x74, 0x02, 0x93, 0x00, 0x00, 0x03, 0xAA, 0xBB, 0xCC],
        Expect {
            cla: 0x80,
            ins: 0x74,
            p1: 0x02,
            p2: 0x93,
            case: Case::ThreeExtended,
            data: &[0xAA, 0xBB, 0xCC],
            ne: 0,
        },
    );
    // read 2F02: 00 B1 2F 02 04 54 02 00 00 00, case 4S.
    check_command(
        &[0x00, 0xB1, 0x2F, 0x02, 0x04, 0x54, 0x02, 0x00, 0x00, 0x00],
        Expect {
            cla: 0x00,
            ins: 0xB1,
            p1: 0x2F,
            p2: 0x02,
            case: Case::FourShort,
            data: &[0x54, 0x02, 0x00, 0x00],
            ne: 256,
        },
    );
    // delete CE01: 00 E4 02 00 02 CE 01, case 3S.
    check_command(
        &[0x00, 0xE4, 0x02, 0x00, 0x02, 0xCE, 0x01],
        Expect {
            cla: 0x00,
            ins: 0xE4,
            p1: 0x02,
            p2: 0x00,
            case: Case::ThreeShort,
            data: &[0xCE, 0x01],
            ne: 0,
        },
    );
    // AES-256 keygen: 00 48 03 B2, case 1. GET CHALLENGE: 80 84 00 00 08, case 2S.
    check_command(
        &[0x00, 0x48, 0x03, 0xB2],
        Expect {
            cla: 0x00,
            ins: 0x48,
            p1: 0x03,
            p2: 0xB2,
            case: Case::One,
            data: &[],
            ne: 0,
        },
    );
    check_command(
        &[0x80, 0x84, 0x00, 0x00, 0x08],
        Expect {
            cla: 0x80,
            ins: 0x84,
            p1: 0x00,
            p2: 0x00,
            case: Case::TwoShort,
            data: &[],
            ne: 8,
        },
    );
    // Removed session PIN (pico): 6D 00. Wrong length: 67 00.
    check_response(&[0x6D, 0x00], &[], StatusWord::InsNotSupported);
    check_response(&[0x67, 0x00], &[], StatusWord::WrongLength);
}

/// §6.6: UPDATE BINARY writes `53 82 00 10 <16 bytes>`: a non-minimal length the reader accepts
/// and keeps, while the writer would emit `53 10`.
#[test]
fn update_binary_non_minimal_length() {
    let mut update = vec![
        0x00, 0xD7, 0xCF, 0x10, 0x18, 0x54, 0x02, 0x00, 0x00, 0x53, 0x82, 0x00, 0x10,
    ];
    update.extend(0u8..16);
    check_command(
        &update,
        Expect {
            cla: 0x00,
            ins: 0xD7,
            p1: 0xCF,
            p2: 0x10,
            case: Case::ThreeShort,
            data: &update[5..],
            ne: 0,
        },
    );
    let data = &update[5..];
    let objects: Vec<Tlv<'_>> = Tlvs::new(data).map(Result::unwrap).collect();
    assert_eq!(objects.len(), 2);
    assert!(objects[0].is_minimal());
    assert!(!objects[1].is_minimal());
    assert_eq!(objects[1].value(), &update[13..]);
    // write_raw keeps the raw bytes; write re-encodes minimally.
    let mut raw = [0u8; 24];
    let mut writer = TlvWriter::new(&mut raw);
    objects.iter().for_each(|t| writer.write_raw(t).unwrap());
    assert_eq!(writer.as_bytes(), data);
    let mut minimal = [0u8; 22];
    let mut writer = TlvWriter::new(&mut minimal);
    objects
        .iter()
        .for_each(|t| writer.write(t.tag(), t.value()).unwrap());
    assert_eq!(&writer.as_bytes()[4..6], &[0x53, 0x10]);
    // pico's bad-offset and truncated cases: the TLV reader reports them.
    assert_eq!(Tlv::parse(&[0x7C]), Err(TlvError::TruncatedLength));
}

/// §2.3, a long command through a reader without extended length: the 300-byte data of an
/// UPDATE BINARY split into short commands and joined again on the card side.
#[test]
fn update_binary_chained_through_short_apdus() {
    let data: Vec<u8> = (0..300u16).map(|i| i as u8).collect();
    let whole = CommandRepr::new(Cla(0x00), 0xD7, 0xCF, 0x10).with_data(&data);
    assert_eq!(whole.case(), Case::ThreeExtended);
    let mut card_buffer = [0u8; 1024];
    let mut assembler = ChainAssembler::new(&mut card_buffer);
    let mut wire = Vec::new();
    for link in Chain::with_max_chunk(whole).unwrap() {
        let mut bytes = vec![0u8; link.buffer_len()];
        link.emit(&mut bytes).unwrap();
        wire.push(bytes);
    }
    // 10 D7 CF 10 FF <255 bytes>, then 00 D7 CF 10 2D <45 bytes>.
    assert_eq!(wire.len(), 2);
    assert_eq!(&wire[0][..5], &[0x10, 0xD7, 0xCF, 0x10, 0xFF]);
    assert_eq!(&wire[1][..5], &[0x00, 0xD7, 0xCF, 0x10, 0x2D]);
    let progress: Vec<Progress> = wire
        .iter()
        .map(|bytes| {
            let view = Command::new_checked(&bytes[..]).unwrap();
            assembler.push(&CommandRepr::parse(&view).unwrap()).unwrap()
        })
        .collect();
    assert_eq!(progress, [Progress::Incomplete, Progress::Complete]);
    assert_eq!(assembler.command(), Some(whole));
}

fn hex(text: &str) -> Vec<u8> {
    let digits: Vec<u8> = text.bytes().filter(u8::is_ascii_hexdigit).collect();
    digits
        .chunks(2)
        .map(|pair| u8::from_str_radix(std::str::from_utf8(pair).unwrap(), 16).unwrap())
        .collect()
}

/// §6.9: the SmartCard-HSM root CA certificate, 441 bytes (OpenSC `etc/DESRCACC100001`).
const ROOT_CA: &str = "
7f218201b47f4e82016c5f290100420e44455352434143433130303030317f4982011d060a04007f0007020202
02038120a9fb57dba1eea9bc3e660a909d838d726e3bf623d52620282013481d1f6e537782207d5a0975fc2c30
57eef67530417affe7fb8055c126dc5c6ce94a4b44f330b5d9832026dc5c6ce94a4b44f330b5d9bbd77cbf9584
16295cf7e1ce6bccdc18ff8c07b68441048bd2aeb9cb7e57cb2c4b482ffc81b7afb9de27e1e3bd23c23a4453bd
9ace3262547ef835c3dac4fd97f8461a14611dc9c27745132ded8e545c1d54c72f0469978520a9fb57dba1eea9
bc3e660a909d838d718c397aa3b561a6f7901e0e82974856a78641046d025a8026cdba245f10df1b72e9880fff
746dab40a43a3d5c6bebf27707c30f6dea72430ee3287b0665c1eaa6eaa4fa26c46303001983f82bd1aa31e03d
a0628701015f200e44455352434143433130303030317f4c10060b2b0601040181c31f0301015301c05f250601
02010100095f24060302010100085f37409dbb382b1711d2baacb0c623d40c6267d0b52ba455c01f56333dc955
4810b9b2878daf9ec3ada19c7b065d780d6c9c3c2ecedfd78deb18af40778adf89e861ca";

#[test]
fn root_ca_certificate_structure() {
    let bytes = hex(ROOT_CA);
    assert_eq!(bytes.len(), 441);
    let cert = Tlv::parse(&bytes).unwrap();
    assert_eq!(cert.tag(), Tag::new(0x7F21));
    assert_eq!(cert.value().len(), 0x1B4);
    // 7F21 { 7F4E body, 5F37 signature }
    let top: Vec<(Tag, usize)> = cert
        .children()
        .unwrap()
        .map(|t| t.unwrap())
        .map(|t| (t.tag(), t.value().len()))
        .collect();
    assert_eq!(top, [(Tag::new(0x7F4E), 364), (Tag::new(0x5F37), 64)]);
    let body = cert.find(Tag::new(0x7F4E)).unwrap().unwrap();
    let fields: Vec<Tag> = body.children().unwrap().map(|t| t.unwrap().tag()).collect();
    let expected = [0x5F29, 0x42, 0x7F49, 0x5F20, 0x7F4C, 0x5F25, 0x5F24].map(Tag::new);
    assert_eq!(fields, expected);
    // CPI 00; CAR = CHR = "DESRCACC100001".
    assert_eq!(
        body.find(Tag::new(0x5F29)).unwrap().unwrap().value(),
        &[0x00]
    );
    assert_eq!(
        body.find(Tag::new(0x42)).unwrap().unwrap().value(),
        b"DESRCACC100001"
    );
    assert_eq!(
        body.find(Tag::new(0x5F20)).unwrap().unwrap().value(),
        b"DESRCACC100001"
    );
    // 7F49: OID 0.4.0.127.0.7.2.2.2.2.3 (ECDSA-SHA256), then the brainpoolP256r1 domain 81..87.
    let key = body.find(Tag::new(0x7F49)).unwrap().unwrap();
    let key_fields: Vec<(Tag, usize)> = key
        .children()
        .unwrap()
        .map(|t| t.unwrap())
        .map(|t| (t.tag(), t.value().len()))
        .collect();
    let expected_key = [
        (0x06, 10),
        (0x81, 32),
        (0x82, 32),
        (0x83, 32),
        (0x84, 65),
        (0x85, 32),
        (0x86, 65),
        (0x87, 1),
    ]
    .map(|(tag, len)| (Tag::new(tag), len));
    assert_eq!(key_fields, expected_key);
    assert_eq!(
        key.find(Tag::new(0x06)).unwrap().unwrap().value(),
        &[0x04, 0x00, 0x7F, 0x00, 0x07, 0x02, 0x02, 0x02, 0x02, 0x03]
    );
    // CHAT 7F4C { 06 role OID 1.3.6.1.4.1.24991.3.1.1, 53 C0 }.
    let chat = body.find(Tag::new(0x7F4C)).unwrap().unwrap();
    assert_eq!(chat.find(Tag::new(0x53)).unwrap().unwrap().value(), &[0xC0]);
    // Primitive objects have no children.
    assert!(body
        .find(Tag::new(0x5F29))
        .unwrap()
        .unwrap()
        .children()
        .is_none());
}

/// The certificate rewritten with the writer, nested constructed objects whose lengths are
/// known only afterwards, is byte for byte the original (it is DER: every length minimal).
#[test]
fn root_ca_certificate_rewritten() {
    fn copy(writer: &mut TlvWriter<'_>, tlv: &Tlv<'_>) -> Result<(), TlvError> {
        assert!(tlv.is_minimal());
        match tlv.children() {
            Some(mut children) => writer.write_constructed(tlv.tag(), |w| {
                children.try_for_each(|child| copy(w, &child?))
            }),
            None => writer.write(tlv.tag(), tlv.value()),
        }
    }
    let bytes = hex(ROOT_CA);
    let cert = Tlv::parse(&bytes).unwrap();
    let mut buffer = [0u8; 441];
    let mut writer = TlvWriter::new(&mut buffer);
    copy(&mut writer, &cert).unwrap();
    assert_eq!(writer.into_bytes(), &bytes[..]);
    // One byte short of room: a clean error, nothing half-written.
    let mut small = [0u8; 440];
    let mut writer = TlvWriter::new(&mut small);
    assert_eq!(copy(&mut writer, &cert), Err(TlvError::BufferTooSmall));
    assert!(writer.is_empty());
}

/// EF 2F02 holds the device certificate followed by the DICA certificate: a buffer of two
/// objects, iterated in order; a cut at any point is an error, never a panic.
#[test]
fn concatenated_certificates_and_truncations() {
    let one = hex(ROOT_CA);
    let two = [one.clone(), one.clone()].concat();
    let certs: Vec<Tlv<'_>> = Tlvs::new(&two).map(Result::unwrap).collect();
    assert_eq!(certs.len(), 2);
    assert_eq!(certs[1].as_bytes(), &one[..]);
    for cut in 1..one.len() {
        let result = Tlv::parse(&one[..cut]);
        let expected = match cut {
            1 => TlvError::TruncatedTag,
            2..=4 => TlvError::TruncatedLength,
            _ => TlvError::ValuePastEnd,
        };
        assert_eq!(result, Err(expected), "cut at {cut}");
    }
}
