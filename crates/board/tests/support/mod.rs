//! Shared helpers: cards on memory made from one template image per test process, a small CCID
//! host over the virtual board's USB (bSeq, time extensions, APDU-level chaining), and the
//! SmartCard-HSM commands the tests send.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::sync::OnceLock;
use std::time::Duration;

use tessera_board::{new_card, BoardConfig, Card, CardLine, TraceEvent, VirtualBoard};
use tessera_bridge::{BootPolicy, Exchange};
use tessera_card::applet::AppletConfig;
use tessera_card::contacts::ContactsConfig;
use tessera_card::cvc::Certificate;
use tessera_card::memory::{MemoryStorage, Storage};
use tessera_card::state::CardState;
use tessera_card::virtual_card::{AtrProfile, CardConfig};

/// Bytes from hex; spaces and `|` ignored.
pub fn hex(s: &str) -> Vec<u8> {
    let digits: String = s.chars().filter(|c| c.is_ascii_hexdigit()).collect();
    assert!(digits.len() % 2 == 0, "odd number of hex digits in {s:?}");
    (0..digits.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&digits[i..i + 2], 16).unwrap())
        .collect()
}

/// Hex with spaces, upper case.
pub fn to_hex(bytes: &[u8]) -> String {
    bytes
        .iter()
        .map(|b| format!("{b:02X}"))
        .collect::<Vec<_>>()
        .join(" ")
}

/// The image of a new card's memory (seed 7), made once per process: generating the identity
/// is the slow part.
fn template() -> &'static Vec<u8> {
    static IMAGE: OnceLock<Vec<u8>> = OnceLock::new();
    IMAGE.get_or_init(|| {
        let memory = MemoryStorage::new();
        drop(
            new_card(
                memory.clone(),
                CardConfig::default(),
                ContactsConfig::default(),
                [7; 32],
                [9; 32],
            )
            .unwrap(),
        );
        memory.snapshot().unwrap()
    })
}

/// A card with the template's identity, on memory the test keeps a handle to.
pub fn card_with(profile: AtrProfile, contacts: ContactsConfig) -> (Card, MemoryStorage) {
    let mut memory = MemoryStorage::new();
    memory.commit(template()).unwrap();
    let config = CardConfig {
        atr: profile,
        applet: AppletConfig::default(),
    };
    let card = new_card(memory.clone(), config, contacts, [7; 32], [9; 32]).unwrap();
    (card, memory)
}

/// The v3 card with default behaviour.
pub fn card() -> (Card, MemoryStorage) {
    card_with(AtrProfile::V3, ContactsConfig::default())
}

/// The CHR of the device certificate in a card memory.
pub fn chr(memory: &MemoryStorage) -> String {
    let state = CardState::from_image(&memory.snapshot().unwrap()).unwrap();
    let (cert, _) = Certificate::parse_prefix(&state.device_certificates).unwrap();
    String::from_utf8(cert.chr().to_vec()).unwrap()
}

/// A board under `policy` at `exchange` level with `card`.
pub fn board(policy: BootPolicy, exchange: Exchange, card: Option<Card>) -> VirtualBoard {
    let mut config = BoardConfig::new(policy, exchange);
    config.card = card;
    VirtualBoard::new(config).unwrap()
}

/// Powers `board` on and waits until the host has configured it.
pub fn boot<L: CardLine>(board: &mut VirtualBoard<L>) {
    board.power_on();
    assert!(
        board.run_until_true(Duration::from_secs(5), |b| b.is_configured()),
        "the board did not enumerate"
    );
}

/// A CCID host on the board's USB: numbers its requests, waits out time extensions.
#[derive(Debug, Default)]
pub struct Host {
    pub seq: u8,
    /// Time extensions received: (modelled time, message).
    pub time_extensions: Vec<(Duration, Vec<u8>)>,
}

/// bStatus bmCommandStatus = 2: time extension (CCID Rev 1.1 §6.2.6).
pub fn is_time_extension(message: &[u8]) -> bool {
    message.get(7).is_some_and(|s| s >> 6 == 2)
}

impl Host {
    /// A message of `message_type` with `specific` bytes and `data`, with the next bSeq.
    pub fn message(&mut self, message_type: u8, specific: [u8; 3], data: &[u8]) -> Vec<u8> {
        let mut m = vec![message_type];
        m.extend_from_slice(&(data.len() as u32).to_le_bytes());
        m.push(0);
        m.push(self.seq);
        self.seq = self.seq.wrapping_add(1);
        m.extend_from_slice(&specific);
        m.extend_from_slice(data);
        m
    }

    /// Sends `message` and returns the answer that is not a time extension.
    pub fn exchange<L: CardLine>(
        &mut self,
        board: &mut VirtualBoard<L>,
        message: &[u8],
        timeout: Duration,
    ) -> Option<Vec<u8>> {
        board.send_ccid(message).expect("the device takes messages");
        self.answer(board, timeout)
    }

    /// The next bulk-IN message that is not a time extension.
    pub fn answer<L: CardLine>(
        &mut self,
        board: &mut VirtualBoard<L>,
        timeout: Duration,
    ) -> Option<Vec<u8>> {
        let end = board.now() + timeout;
        loop {
            let left = end.saturating_sub(board.now());
            let m = board.receive_ccid(left)?;
            if is_time_extension(&m) {
                self.time_extensions.push((board.now(), m));
            } else {
                return Some(m);
            }
        }
    }

    /// IccPowerOn (automatic voltage): the DataBlock.
    pub fn power_on<L: CardLine>(&mut self, board: &mut VirtualBoard<L>) -> Vec<u8> {
        let m = self.message(0x62, [0, 0, 0], &[]);
        self.exchange(board, &m, Duration::from_secs(10))
            .expect("no answer to IccPowerOn")
    }

    /// GetSlotStatus: the SlotStatus.
    pub fn slot_status<L: CardLine>(&mut self, board: &mut VirtualBoard<L>) -> Vec<u8> {
        let m = self.message(0x65, [0, 0, 0], &[]);
        self.exchange(board, &m, Duration::from_secs(1))
            .expect("no answer to GetSlotStatus")
    }

    /// One XfrBlock; the DataBlock (time extensions skipped).
    pub fn xfr<L: CardLine>(
        &mut self,
        board: &mut VirtualBoard<L>,
        data: &[u8],
        level: u16,
        timeout: Duration,
    ) -> Option<Vec<u8>> {
        let [l0, l1] = level.to_le_bytes();
        let m = self.message(0x6F, [0, l0, l1], data);
        self.exchange(board, &m, timeout)
    }

    /// One command APDU at APDU level, chained over XfrBlocks of at most `max` data bytes and
    /// back (CCID Rev 1.1 §6.1.4 wLevelParameter 1, 3, 2 and 10), as libccid does. Returns the
    /// response APDU, or the failed DataBlock's header.
    pub fn apdu<L: CardLine>(
        &mut self,
        board: &mut VirtualBoard<L>,
        apdu: &[u8],
    ) -> Result<Vec<u8>, Vec<u8>> {
        let max = board.bridge_config().max_message_len as usize - 10;
        let timeout = Duration::from_secs(30);
        let mut answer = if apdu.len() <= max {
            self.xfr(board, apdu, 0, timeout).expect("no answer")
        } else {
            let chunks: Vec<&[u8]> = apdu.chunks(max).collect();
            let mut last = Vec::new();
            for (i, chunk) in chunks.iter().enumerate() {
                let level = match (i, i + 1 == chunks.len()) {
                    (0, _) => 0x01,
                    (_, true) => 0x02,
                    _ => 0x03,
                };
                last = self.xfr(board, chunk, level, timeout).expect("no answer");
                if last[7] & 0x40 != 0 {
                    return Err(last[..10].to_vec());
                }
            }
            last
        };
        let mut response = Vec::new();
        loop {
            if answer[0] != 0x80 || answer[7] & 0x40 != 0 {
                return Err(answer[..10.min(answer.len())].to_vec());
            }
            response.extend_from_slice(&answer[10..]);
            match answer[9] {
                0x01 | 0x03 => {
                    answer = self.xfr(board, &[], 0x10, timeout).expect("no answer");
                }
                _ => return Ok(response),
            }
        }
    }

    /// Sends `apdu` (hex) at APDU level, checks the status word, returns the data.
    #[track_caller]
    pub fn check<L: CardLine>(
        &mut self,
        board: &mut VirtualBoard<L>,
        apdu: &str,
        sw: u16,
    ) -> Vec<u8> {
        self.check_bytes(board, &hex(apdu), sw)
    }

    /// The same with raw bytes.
    #[track_caller]
    pub fn check_bytes<L: CardLine>(
        &mut self,
        board: &mut VirtualBoard<L>,
        apdu: &[u8],
        sw: u16,
    ) -> Vec<u8> {
        let ins = apdu.get(1).copied().unwrap_or(0);
        let mut response = self
            .apdu(board, apdu)
            .unwrap_or_else(|h| panic!("INS {ins:02X}: the reader failed: {}", to_hex(&h)));
        assert!(response.len() >= 2, "INS {ins:02X}: no status word");
        let got = u16::from_be_bytes([response[response.len() - 2], response[response.len() - 1]]);
        assert_eq!(
            got, sw,
            "INS {ins:02X}: expected SW {sw:04X}, got {got:04X}"
        );
        response.truncate(response.len() - 2);
        response
    }
}

/// SELECT the SmartCard-HSM applet (sc-hsm-protocol.md §1.3).
pub const SELECT: &str = "00 A4 04 00 0B E8 2B 06 01 04 01 81 C3 1F 02 01 00";

/// INITIALIZE with sc-hsm-tool's defaults (§6.2): options 0001, user PIN 648219, SO-PIN
/// 3537363231383830, 3 tries.
pub const INITIALIZE: &str =
    "80 50 00 00 19 80 02 00 01 81 06 36 34 38 32 31 39 82 08 35 37 36 32 31 38 38 30 91 01 03";

/// VERIFY the user PIN 648219.
pub const VERIFY: &str = "00 20 00 81 06 36 34 38 32 31 39";
/// VERIFY a wrong user PIN.
pub const VERIFY_WRONG: &str = "00 20 00 81 06 31 31 32 32 33 33";
/// VERIFY without data: the PIN status (63Cx tries left, 9000 verified).
pub const PIN_STATUS: &str = "00 20 00 81";

/// UPDATE BINARY (odd INS D7) of file `fid` at `offset` with `content`, extended length
/// (sc-hsm-protocol.md §2.9): `54 02 offset | 53 82 len | content`.
pub fn update_binary(fid: u16, offset: u16, content: &[u8]) -> Vec<u8> {
    let mut data = vec![0x54, 0x02];
    data.extend_from_slice(&offset.to_be_bytes());
    data.extend_from_slice(&[0x53, 0x82]);
    data.extend_from_slice(&(content.len() as u16).to_be_bytes());
    data.extend_from_slice(content);
    let mut apdu = vec![0x00, 0xD7];
    apdu.extend_from_slice(&fid.to_be_bytes());
    apdu.push(0x00);
    apdu.extend_from_slice(&(data.len() as u16).to_be_bytes());
    apdu.extend_from_slice(&data);
    apdu
}

/// READ BINARY (odd INS B1) of file `fid` from offset 0, Le `le` extended (§2.8).
pub fn read_binary(fid: u16, le: u16) -> Vec<u8> {
    let mut apdu = vec![0x00, 0xB1];
    apdu.extend_from_slice(&fid.to_be_bytes());
    apdu.extend_from_slice(&[0x00, 0x00, 0x04, 0x54, 0x02, 0x00, 0x00]);
    apdu.extend_from_slice(&le.to_be_bytes());
    apdu
}

/// GET CHALLENGE for `n` bytes (short Le).
pub fn get_challenge(n: u8) -> Vec<u8> {
    vec![0x00, 0x84, 0x00, 0x00, n]
}

/// Boots an APDU-level board with the card, powers the card on, selects and initialises the
/// applet, and selects it again.
pub fn initialised(board: &mut VirtualBoard<impl CardLine>, host: &mut Host) {
    boot(board);
    let atr = host.power_on(board);
    assert_eq!(
        atr[7] & 0x40,
        0,
        "IccPowerOn failed: {}",
        to_hex(&atr[..10])
    );
    host.check(board, SELECT, 0x9000);
    host.check(board, INITIALIZE, 0x9000);
    host.check(board, SELECT, 0x9000);
}

/// The card-line characters in the trace since `from`: (to the card, from the card).
pub fn card_line_chars(board: &VirtualBoard<impl CardLine>, from: Duration) -> (usize, usize) {
    board
        .trace()
        .iter()
        .filter(|e| e.at >= from)
        .fold((0, 0), |(to, back), e| match &e.event {
            TraceEvent::ToCard(b) => (to + b.len(), back),
            TraceEvent::FromCard(b) => (to, back + b.len()),
            _ => (to, back),
        })
}

/// Milliseconds with three decimals.
pub fn ms(d: Duration) -> String {
    format!("{:.3} ms", d.as_secs_f64() * 1000.0)
}
