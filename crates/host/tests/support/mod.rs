//! A scripted CCID reader with a virtual SmartCard-HSM in it, behind the `UsbPipe` trait: the
//! reader side is built from `tessera_ccid` reprs, the card from `tessera_iso7816_3::t1::Card`
//! and `tessera_card::applet::Applet`. Faults are knobs: WTX from the card, time extensions
//! from the reader, stale `bSeq`s, a mute card, a removed card, a pipe that is gone.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::VecDeque;
use std::time::Duration;

use tessera_card::applet::{Applet, AppletConfig};
use tessera_card::memory::MemoryStorage;
use tessera_card::virtual_card::AtrProfile;
use tessera_ccid::{
    Body, ChainParameter, ClassDescriptorRepr, CommandStatus, DataBlock, ExchangeLevel, IccStatus,
    MessageRepr, SlotError, SlotSnapshot, SlotStatus, Status,
};
use tessera_host::ccid::UsbPipe;
use tessera_iso7816_3::t1::{self, CardEvent, Deadline, Event};
use tessera_sc_hsm::{TransportError, TransportErrorKind};

/// Bytes from hex; spaces ignored.
pub fn hex(s: &str) -> Vec<u8> {
    let digits: String = s.chars().filter(|c| c.is_ascii_hexdigit()).collect();
    (0..digits.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&digits[i..i + 2], 16).unwrap())
        .collect()
}

pub fn to_hex(bytes: &[u8]) -> String {
    bytes
        .iter()
        .map(|b| format!("{b:02X}"))
        .collect::<Vec<_>>()
        .join(" ")
}

/// A descriptor like the Nitrokey HSM 2's but at `level`, with `features` bits added and
/// `max_message` as dwMaxCCIDMessageLength.
pub fn descriptor(level: ExchangeLevel, auto_ifsd: bool, max_message: u32) -> ClassDescriptorRepr {
    let mut d = ClassDescriptorRepr::NITROKEY_HSM2;
    d.features = d.features.with_exchange_level(level);
    if !auto_ifsd {
        d.features = d.features.difference(tessera_ccid::Features::AUTO_IFSD);
    }
    d.max_ccid_message_length = max_message;
    d
}

/// One USB message the host sent, decoded enough for assertions.
#[derive(Debug, Clone)]
pub struct Sent {
    pub bytes: Vec<u8>,
    pub message_type: u8,
    pub seq: u8,
    /// XfrBlock: bBWI, wLevelParameter, abData.
    pub xfr: Option<(u8, u16, Vec<u8>)>,
}

/// The fake reader with its card.
#[derive(Debug)]
pub struct FakeReader {
    pub level: ExchangeLevel,
    pub max_payload: usize,
    applet: Applet<MemoryStorage>,
    card: t1::Card<Vec<u8>>,
    pending: VecDeque<Vec<u8>>,
    pub sent: Vec<Sent>,
    /// The card asks for this WTX multiplier before every response.
    pub wtx: Option<u8>,
    /// The reader sends this many time extensions before every answer.
    pub time_extensions: u8,
    /// The next answers go out first with a stale bSeq (a leftover response) this many times.
    pub stale_responses: u8,
    /// Every answer carries a wrong bSeq.
    pub always_wrong_seq: bool,
    /// The next XfrBlocks get ICC_MUTE this many times.
    pub mute: u8,
    /// The card is gone: commands fail with "no ICC present".
    pub removed: bool,
    /// The device is gone: every USB transfer fails.
    pub unplugged: bool,
    /// Response being chained at extended APDU level.
    response_rest: Vec<u8>,
    command_parts: Vec<u8>,
}

impl FakeReader {
    pub fn new(level: ExchangeLevel, max_message: u32, seed: u8) -> FakeReader {
        let applet = Applet::power_up(
            MemoryStorage::new(),
            AppletConfig::default(),
            [seed; 32],
            [seed; 32],
        )
        .unwrap();
        FakeReader {
            level,
            max_payload: max_message as usize - 10,
            applet,
            card: t1::Card::new(t1::Config::new(0xFE, t1::Edc::Lrc), vec![0; 70_000]),
            pending: VecDeque::new(),
            sent: Vec::new(),
            wtx: None,
            time_extensions: 0,
            stale_responses: 0,
            always_wrong_seq: false,
            mute: 0,
            removed: false,
            unplugged: false,
            response_rest: Vec::new(),
            command_parts: Vec::new(),
        }
    }

    /// The XfrBlocks sent, in order: (bBWI, wLevelParameter, abData).
    pub fn xfr_blocks(&self) -> Vec<(u8, u16, Vec<u8>)> {
        self.sent.iter().filter_map(|s| s.xfr.clone()).collect()
    }

    fn snapshot(&self) -> SlotSnapshot {
        SlotSnapshot {
            icc: if self.removed {
                IccStatus::NotPresent
            } else {
                IccStatus::PresentActive
            },
            clock: tessera_ccid::ClockStatus::Running,
            protocol: tessera_ccid::ProtocolNum::T1,
            clock_frequency: 3600,
            data_rate: 9677,
        }
    }

    /// Queues `message`, the answer to `request`, with the configured faults before it.
    fn queue(&mut self, request: tessera_ccid::MessageId, message: MessageRepr<'_>) {
        let id = request;
        for _ in 0..self.time_extensions {
            let ext = self.snapshot().time_extension(id, 2);
            self.queue_raw(ext);
        }
        for _ in 0..self.stale_responses {
            let mut stale = message;
            stale.seq = stale.seq.wrapping_sub(1);
            self.queue_raw(stale);
        }
        self.stale_responses = 0;
        let mut message = message;
        if self.always_wrong_seq {
            message.seq = message.seq.wrapping_add(7);
        }
        self.queue_raw(message);
    }

    fn queue_raw(&mut self, message: MessageRepr<'_>) {
        let mut out = vec![0u8; message.buffer_len()];
        let n = message.emit(&mut out).unwrap();
        out.truncate(n);
        self.pending.push_back(out);
    }

    fn data_block(&mut self, request: &MessageRepr<'_>, chain: ChainParameter, data: &[u8]) {
        let block = DataBlock {
            status: Status::new(IccStatus::PresentActive, CommandStatus::Processed),
            error: SlotError::from_byte(0),
            chain,
            data,
        };
        self.queue(
            request.id(),
            MessageRepr {
                slot: request.slot,
                seq: request.seq,
                body: Body::DataBlock(block),
            },
        );
    }

    fn fail(&mut self, request: &MessageRepr<'_>, error: SlotError) {
        let response = self.snapshot().error_response(request.id(), error);
        self.queue(request.id(), response);
    }

    /// One T=1 block from the host; returns the card's block, if it sends one.
    fn tpdu(&mut self, block: &[u8]) -> Option<Vec<u8>> {
        let mut action = crate_action(self.card.handle(Event::Received(block)));
        if action.deadline == Some(Deadline::Bgt) {
            action = crate_action(self.card.handle(Event::DeadlinePassed));
        }
        match action.completion {
            Some(CardEvent::Command { len }) => {
                let command = self.card.buffer()[..len].to_vec();
                let response = self.applet.process(&command).unwrap();
                self.card.buffer_mut()[..response.len()].copy_from_slice(&response);
                if let Some(m) = self.wtx {
                    let wtx = crate_action(self.card.request_wtx(m).unwrap());
                    let _ = self.card.respond(response.len()).unwrap();
                    return wtx.transmit;
                }
                crate_action(self.card.respond(response.len()).unwrap()).transmit
            }
            _ => action.transmit,
        }
    }
}

/// An owned copy of a card action.
struct Owned {
    transmit: Option<Vec<u8>>,
    deadline: Option<Deadline>,
    completion: Option<CardEvent>,
}

fn crate_action(a: t1::Action<'_, CardEvent>) -> Owned {
    Owned {
        transmit: a.transmit.map(<[u8]>::to_vec),
        deadline: a.deadline,
        completion: a.completion,
    }
}

impl UsbPipe for FakeReader {
    fn bulk_out(&mut self, data: &[u8], _timeout: Duration) -> Result<(), TransportError> {
        if self.unplugged {
            return Err(TransportError::new(
                TransportErrorKind::ReaderGone,
                "bulk OUT: the device is gone",
            ));
        }
        let request = MessageRepr::parse_bytes(data).expect("the host sends valid CCID messages");
        let xfr = match request.body {
            Body::XfrBlock(x) => Some((x.bwi, x.level_parameter, x.data.to_vec())),
            _ => None,
        };
        self.sent.push(Sent {
            bytes: data.to_vec(),
            message_type: data[0],
            seq: request.seq,
            xfr,
        });
        if self.removed && !matches!(request.body, Body::IccPowerOff(_) | Body::GetSlotStatus(_)) {
            self.fail(&request, SlotError::IccMute);
            return Ok(());
        }
        match request.body {
            Body::IccPowerOn(_) => {
                self.applet.reset();
                self.card.reset();
                let atr = AtrProfile::V3.atr().to_vec();
                self.data_block(&request, ChainParameter::BeginsAndEnds, &atr);
            }
            Body::IccPowerOff(_) | Body::GetSlotStatus(_) => {
                let status = SlotStatus {
                    status: Status::new(self.snapshot().icc, CommandStatus::Processed),
                    error: SlotError::from_byte(0),
                    clock: tessera_ccid::ClockStatus::Running,
                };
                self.queue(
                    request.id(),
                    MessageRepr {
                        slot: request.slot,
                        seq: request.seq,
                        body: Body::SlotStatus(status),
                    },
                );
            }
            Body::XfrBlock(x) if self.level == ExchangeLevel::Tpdu => {
                if self.mute > 0 {
                    self.mute -= 1;
                    self.fail(&request, SlotError::IccMute);
                    return Ok(());
                }
                match self.tpdu(x.data) {
                    Some(block) => self.data_block(&request, ChainParameter::BeginsAndEnds, &block),
                    None => self.fail(&request, SlotError::IccMute),
                }
            }
            Body::XfrBlock(x) => {
                // APDU level (CCID §6.1.4): wLevelParameter chains long commands and
                // responses at the extended level.
                match x.level_parameter {
                    0x0010 => {
                        let take = self.response_rest.len().min(self.max_payload);
                        let part: Vec<u8> = self.response_rest.drain(..take).collect();
                        let chain = if self.response_rest.is_empty() {
                            ChainParameter::Ends
                        } else {
                            ChainParameter::Continues
                        };
                        self.data_block(&request, chain, &part);
                        return Ok(());
                    }
                    0x0001 | 0x0003 => {
                        self.command_parts.extend_from_slice(x.data);
                        self.data_block(&request, ChainParameter::EmptyContinue, &[]);
                        return Ok(());
                    }
                    _ => {}
                }
                let mut command = std::mem::take(&mut self.command_parts);
                command.extend_from_slice(x.data);
                let response = self.applet.process(&command).unwrap();
                if response.len() <= self.max_payload {
                    self.data_block(&request, ChainParameter::BeginsAndEnds, &response);
                } else {
                    let first = response[..self.max_payload].to_vec();
                    self.response_rest = response[self.max_payload..].to_vec();
                    self.data_block(&request, ChainParameter::Begins, &first);
                }
            }
            _ => {
                let response = self.snapshot().not_supported(request.id());
                self.queue(request.id(), response);
            }
        }
        Ok(())
    }

    fn bulk_in(&mut self, buffer: &mut [u8], timeout: Duration) -> Result<usize, TransportError> {
        if self.unplugged {
            return Err(TransportError::new(
                TransportErrorKind::ReaderGone,
                "bulk IN: the device is gone",
            ));
        }
        let Some(message) = self.pending.pop_front() else {
            return Err(TransportError::new(
                TransportErrorKind::Timeout,
                format!("bulk IN: nothing within {} s", timeout.as_secs()),
            ));
        };
        // Deliver in 64-byte packets when the buffer is small, as USB full speed would.
        let n = message.len().min(buffer.len());
        buffer[..n].copy_from_slice(&message[..n]);
        if n < message.len() {
            self.pending.push_front(message[n..].to_vec());
        }
        Ok(n)
    }
}
