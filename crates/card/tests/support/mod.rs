//! Shared helpers for the applet tests: hex transcripts and a card on memory storage.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use tessera_card::applet::{Applet, AppletConfig};
use tessera_card::memory::{MemoryStorage, Storage};

/// Parse "00 A4 04 00" (spaces and `|` ignored) into bytes.
pub fn hex(s: &str) -> Vec<u8> {
    let digits: String = s.chars().filter(|c| c.is_ascii_hexdigit()).collect();
    assert!(digits.len() % 2 == 0, "odd number of hex digits in {s:?}");
    (0..digits.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&digits[i..i + 2], 16).unwrap())
        .collect()
}

/// A fresh (uninitialised) card with seed `n`, on memory that outlives it.
pub fn new_card(n: u8) -> (Applet<MemoryStorage>, MemoryStorage) {
    let memory = MemoryStorage::new();
    (power_up(&memory, n), memory)
}

/// Power a card up on `memory` (a new card if the memory is empty).
pub fn power_up(memory: &MemoryStorage, n: u8) -> Applet<MemoryStorage> {
    power_up_on(memory.clone(), n)
}

/// Power a card up on any storage.
pub fn power_up_on<S: Storage>(storage: S, n: u8) -> Applet<S> {
    Applet::power_up(storage, AppletConfig::default(), [n; 32], [n ^ 0x5A; 32]).unwrap()
}

/// Send `command` (hex) and return (data, SW).
pub fn send<S: Storage>(card: &mut Applet<S>, command: &str) -> (Vec<u8>, u16) {
    send_bytes(card, &hex(command))
}

/// Send raw bytes and return (data, SW).
pub fn send_bytes<S: Storage>(card: &mut Applet<S>, command: &[u8]) -> (Vec<u8>, u16) {
    let mut response = card.process(command).expect("the card has power");
    assert!(response.len() >= 2, "response shorter than a status word");
    let sw2 = response.pop().unwrap();
    let sw1 = response.pop().unwrap();
    (response, u16::from_be_bytes([sw1, sw2]))
}

/// One line of a transcript: send `command`, expect status word `sw`; returns the data.
#[track_caller]
pub fn check<S: Storage>(card: &mut Applet<S>, command: &str, sw: u16) -> Vec<u8> {
    let (data, got) = send(card, command);
    assert_eq!(got, sw, "{command}: expected SW {sw:04X}, got {got:04X}");
    data
}

/// SELECT the SmartCard-HSM applet (§1.3), as OpenSC sends it.
pub const SELECT: &str = "00 A4 04 00 0B E8 2B 06 01 04 01 81 C3 1F 02 01 00";

/// INITIALIZE with sc-hsm-tool's defaults (§6.2): options 0001, PIN 648219, SO-PIN
/// 3537363231383830, 3 tries.
pub const INIT_DEFAULT: &str =
    "80 50 00 00 19 80 02 00 01 81 06 36 34 38 32 31 39 82 08 35 37 36 32 31 38 38 30 91 01 03";

/// VERIFY the default user PIN 648219.
pub const VERIFY_PIN: &str = "00 20 00 81 06 36 34 38 32 31 39";
/// VERIFY a wrong user PIN 112233 (§6.3).
pub const VERIFY_WRONG: &str = "00 20 00 81 06 31 31 32 32 33 33";
/// The default SO-PIN as 8 bytes.
pub const SO_PIN: &str = "35 37 36 32 31 38 38 30";
/// A wrong SO-PIN.
pub const SO_WRONG: &str = "31 31 31 31 31 31 31 31";

/// A card initialised with the defaults, applet selected, user not authenticated.
pub fn initialised_card(n: u8) -> (Applet<MemoryStorage>, MemoryStorage) {
    let (mut card, memory) = new_card(n);
    check(&mut card, SELECT, 0x9000);
    check(&mut card, INIT_DEFAULT, 0x9000);
    check(&mut card, SELECT, 0x9000);
    (card, memory)
}

/// GENERATE ASYMMETRIC KEY PAIR data for EC P-256 (§6.7), CHR "UTCDUMMY00001".
pub fn keygen_p256(id: u8) -> String {
    let p = "FFFFFFFF00000001000000000000000000000000FFFFFFFFFFFFFFFFFFFFFFFF";
    let a = "FFFFFFFF00000001000000000000000000000000FFFFFFFFFFFFFFFFFFFFFFFC";
    let b = "5AC635D8AA3A93E7B3EBBD55769886BC651D06B0CC53B0F63BCE3C3E27D2604B";
    let g = "046B17D1F2E12C4247F8BCE6E563A440F277037D812DEB33A0F4A13945D898C296\
             4FE342E2FE1A7F9B8EE7EB4A7C0F9E162BCE33576B315ECECBB6406837BF51F5";
    let n = "FFFFFFFF00000000FFFFFFFFFFFFFFFFBCE6FAADA7179E84F3B9CAC2FC632551";
    let template = format!(
        "06 0A 04 00 7F 00 07 02 02 02 02 03 81 20 {p} 82 20 {a} 83 20 {b} 84 41 {g} 85 20 {n} 87 01 01"
    );
    let template_len = hex(&template).len();
    let body = format!(
        "5F29 01 00 42 09 {car} 7F49 81 {tl:02X} {template} 5F20 0D {chr}",
        car = "55 54 43 41 30 30 30 30 31",
        tl = template_len,
        chr = "55 54 43 44 55 4D 4D 59 30 30 30 30 31",
    );
    let body_len = hex(&body).len();
    format!("00 46 {id:02X} 00 00 {:04X} {body} 00 00", body_len)
}

/// GENERATE ASYMMETRIC KEY PAIR data for RSA with `bits` (§6.7, OpenSC's template).
pub fn keygen_rsa(id: u8, bits: u16) -> String {
    let template = format!("06 0A 04 00 7F 00 07 02 02 02 01 02 82 03 01 00 01 02 02 {bits:04X}");
    let body = format!(
        "5F29 01 00 42 09 55 54 43 41 30 30 30 30 31 7F49 {tl:02X} {template} \
         5F20 0D 55 54 43 44 55 4D 4D 59 30 30 30 30 31",
        tl = hex(&template).len()
    );
    let body_len = hex(&body).len();
    format!("00 46 {id:02X} 00 00 {:04X} {body} 00 00", body_len)
}

/// Encode a case-3 extended command (data, no Le).
pub fn ext_case3(header: &str, data: &[u8]) -> Vec<u8> {
    let mut apdu = hex(header);
    apdu.push(0);
    apdu.extend_from_slice(&(data.len() as u16).to_be_bytes());
    apdu.extend_from_slice(data);
    apdu
}

/// Encode a case-4 extended command.
pub fn ext_case4(header: &str, data: &[u8], le: u16) -> Vec<u8> {
    let mut apdu = hex(header);
    apdu.push(0);
    apdu.extend_from_slice(&(data.len() as u16).to_be_bytes());
    apdu.extend_from_slice(data);
    apdu.extend_from_slice(&le.to_be_bytes());
    apdu
}
