//! One CCID request and its response at a time, checked (CCID Rev 1.1 §6.1, §6.2).

use std::fmt;
use std::time::Duration;

use tessera_ccid::{
    check_response_to, Body, ChainParameter, ClassDescriptorRepr, CommandStatus, Features,
    GetParameters, IccPowerOff, IccPowerOn, IccStatus, Message, MessageId, MessageRepr,
    PairingError, PowerSelect, ProtocolData, Reply, SlotError, Status, T1Parameters, XfrBlock,
    HEADER_LEN,
};
use tessera_sc_hsm::{TransportError, TransportErrorKind};

use super::UsbPipe;

/// How a [`CcidReader`] waits and what it tolerates.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CcidConfig {
    /// How long to wait for a response before giving up, and for each time extension (times
    /// its multiplier). The stock Nitrokey firmware sends no time extension while the card
    /// works and INITIALIZE can take about 30 s on a populated card (hardware.md §D,
    /// sc-hsm-protocol.md §8), so the default is 60 s.
    pub timeout: Duration,
    /// How long a bulk-OUT write may take.
    pub write_timeout: Duration,
    /// The slot (`bSlot`); the Nitrokey HSM 2 has one, slot 0.
    pub slot: u8,
    /// Responses with another `bSeq` (left over from a request that timed out) skipped
    /// before the exchange fails as out of step.
    pub max_stale_responses: u8,
    /// When to send S(IFS request) for IFSD 254 at TPDU level.
    pub ifsd_request: IfsdRequest,
}

/// When the host asks the card for IFSD 254 with S(IFS request) (ISO/IEC 7816-3 §11.6.2.2
/// Rule 4) at TPDU level.
///
/// The stock Nitrokey firmware announces automatic IFSD in `dwFeatures` but never sends the
/// request, so the card keeps IFSD 32 and answers long responses in 32-byte blocks
/// (hardware.md §A, INFERENCE there). Asking anyway is a throughput win if the reader relays
/// the S-block, which a TPDU-level reader does; the default follows the descriptor.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum IfsdRequest {
    /// Only when `dwFeatures` lacks automatic IFSD exchange (CCID Rev 1.1 §5.1, 0x400).
    #[default]
    UnlessAutomatic,
    /// Always, after power-on.
    Always,
    /// Never: IFSD stays 32.
    Never,
}

impl Default for CcidConfig {
    fn default() -> Self {
        CcidConfig {
            timeout: Duration::from_secs(60),
            write_timeout: Duration::from_secs(5),
            slot: 0,
            max_stale_responses: 3,
            ifsd_request: IfsdRequest::UnlessAutomatic,
        }
    }
}

/// A command the reader carried out but that failed: `bmCommandStatus` = 1 with `bError`
/// (CCID Rev 1.1 §6.2.6).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SlotFailure {
    /// `bError`.
    pub error: SlotError,
    /// `bmICCStatus`.
    pub icc: IccStatus,
}

impl SlotFailure {
    /// The transport error this failure means for the caller.
    pub fn to_transport_error(self, what: &str) -> TransportError {
        let kind = match (self.icc, self.error) {
            (IccStatus::NotPresent, _) => TransportErrorKind::CardRemoved,
            (_, SlotError::IccMute) => TransportErrorKind::Timeout,
            (_, SlotError::CmdSlotBusy) => TransportErrorKind::Busy,
            (
                _,
                SlotError::XfrParityError
                | SlotError::XfrOverrun
                | SlotError::BadAtrTs
                | SlotError::BadAtrTck
                | SlotError::IccProtocolNotSupported
                | SlotError::ProcedureByteConflict,
            ) => TransportErrorKind::Protocol,
            _ => TransportErrorKind::Other,
        };
        TransportError::new(kind, format!("{what}: {self}"))
    }
}

impl fmt::Display for SlotFailure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let icc = match self.icc {
            IccStatus::PresentActive => "card present and active",
            IccStatus::PresentInactive => "card present, not powered",
            IccStatus::NotPresent => "no card",
            IccStatus::Reserved => "slot status reserved",
        };
        write!(f, "the reader reports {} ({icc})", self.error)
    }
}

/// What went wrong in one exchange: the transport, or the reader's verdict on the command.
#[derive(Debug)]
pub(crate) enum Failure {
    Transport(TransportError),
    Slot(SlotFailure),
}

impl Failure {
    pub(crate) fn into_transport(self, what: &str) -> TransportError {
        match self {
            Failure::Transport(e) => e,
            Failure::Slot(s) => s.to_transport_error(what),
        }
    }
}

impl From<TransportError> for Failure {
    fn from(e: TransportError) -> Self {
        Failure::Transport(e)
    }
}

/// A successful response's fields, owned.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Answer {
    pub status: Status,
    pub chain: ChainParameter,
    pub data: Vec<u8>,
    /// The T=1 structure of a `Parameters` response.
    pub t1: Option<T1Parameters>,
}

/// A CCID reader on a [`UsbPipe`]: requests numbered by `bSeq`, responses checked.
#[derive(Debug)]
pub struct CcidReader<P> {
    pipe: P,
    descriptor: ClassDescriptorRepr,
    config: CcidConfig,
    seq: u8,
    buffer: Vec<u8>,
    time_extensions: u64,
}

impl<P: UsbPipe> CcidReader<P> {
    /// A reader whose class descriptor is `descriptor`, on `pipe`.
    pub fn new(pipe: P, descriptor: ClassDescriptorRepr, config: CcidConfig) -> Self {
        // Room for the longest message the reader may send (dwMaxCCIDMessageLength), and
        // never less than one T=1 block's message.
        let max = usize::try_from(descriptor.max_ccid_message_length)
            .unwrap_or(usize::MAX)
            .clamp(HEADER_LEN + 261, HEADER_LEN + 65_546);
        CcidReader {
            pipe,
            descriptor,
            config,
            seq: 0,
            buffer: vec![0; max],
            time_extensions: 0,
        }
    }

    /// The class descriptor.
    pub fn descriptor(&self) -> &ClassDescriptorRepr {
        &self.descriptor
    }

    /// The configuration.
    pub fn config(&self) -> &CcidConfig {
        &self.config
    }

    /// The pipe.
    pub fn pipe(&mut self) -> &mut P {
        &mut self.pipe
    }

    /// The `bSeq` the next request will carry.
    pub fn next_seq(&self) -> u8 {
        self.seq
    }

    /// The largest `abData` of a message the reader accepts (`dwMaxCCIDMessageLength` − 10).
    pub fn max_payload(&self) -> usize {
        usize::try_from(self.descriptor.max_ccid_message_length)
            .unwrap_or(usize::MAX)
            .saturating_sub(HEADER_LEN)
    }

    /// Powers the card on (IccPowerOn, §6.1.1) and returns its ATR.
    pub fn power_on(&mut self) -> Result<Vec<u8>, TransportError> {
        let features = self.descriptor.features;
        let voltage = self.descriptor.voltage_support;
        let power_select = if features.contains(Features::AUTO_VOLTAGE) {
            PowerSelect::Automatic
        } else if voltage.volts3() {
            PowerSelect::Volts3
        } else if voltage.volts5() {
            PowerSelect::Volts5
        } else if voltage.volts1_8() {
            PowerSelect::Volts1_8
        } else {
            PowerSelect::Automatic
        };
        let answer = self
            .request(IccPowerOn::new(power_select).into())
            .map_err(|f| f.into_transport("IccPowerOn"))?;
        if answer.data.is_empty() {
            return Err(TransportError::new(
                TransportErrorKind::Protocol,
                "IccPowerOn: the reader returned no ATR",
            ));
        }
        Ok(answer.data)
    }

    /// How many time extensions (§6.2.6) the reader has sent so far.
    pub fn time_extensions(&self) -> u64 {
        self.time_extensions
    }

    /// The protocol parameters in use (GetParameters, §6.1.5), if the reader reports T=1
    /// parameters: `bmFindexDindex` says which rate a PPS reached.
    pub fn t1_parameters(&mut self) -> Result<Option<T1Parameters>, TransportError> {
        self.request(GetParameters::new().into())
            .map(|a| a.t1)
            .map_err(|f| f.into_transport("GetParameters"))
    }

    /// Powers the card off (IccPowerOff, §6.1.2).
    pub fn power_off(&mut self) -> Result<(), TransportError> {
        self.request(IccPowerOff::new().into())
            .map(drop)
            .map_err(|f| f.into_transport("IccPowerOff"))
    }

    /// One XfrBlock (§6.1.4) and its DataBlock: `bBWI` and `wLevelParameter` as given.
    pub(crate) fn xfr_block(
        &mut self,
        data: &[u8],
        bwi: u8,
        level_parameter: u16,
    ) -> Result<Answer, Failure> {
        let xfr = XfrBlock {
            bwi,
            level_parameter,
            data,
        };
        self.request(xfr.into())
    }

    /// Sends `body` with the next `bSeq` and waits for its response (§6.1, §6.2): stale
    /// responses skipped, time extensions waited out, a failed command returned as
    /// [`Failure::Slot`].
    pub(crate) fn request(&mut self, body: Body<'_>) -> Result<Answer, Failure> {
        let seq = self.seq;
        self.seq = self.seq.wrapping_add(1);
        let message = MessageRepr {
            slot: self.config.slot,
            seq,
            body,
        };
        let id = message.id();
        let mut out = vec![0u8; message.buffer_len()];
        let len = message.emit(&mut out).map_err(|e| {
            TransportError::new(
                TransportErrorKind::Protocol,
                format!("{}: cannot encode the message: {e}", id.message_type),
            )
        })?;
        out.truncate(len);
        if len > usize::try_from(self.descriptor.max_ccid_message_length).unwrap_or(usize::MAX) {
            return Err(TransportError::new(
                TransportErrorKind::Protocol,
                format!(
                    "{}: {len} bytes exceed the reader's dwMaxCCIDMessageLength {}",
                    id.message_type, self.descriptor.max_ccid_message_length
                ),
            )
            .into());
        }
        self.pipe.bulk_out(&out, self.config.write_timeout)?;
        self.wait_for(id)
    }

    fn wait_for(&mut self, id: MessageId) -> Result<Answer, Failure> {
        let mut timeout = self.config.timeout;
        let mut stale: Option<u8> = None;
        let mut skipped = 0u8;
        loop {
            let len = match self.read_message(timeout) {
                Ok(len) => len,
                Err(e) if e.kind() == TransportErrorKind::Timeout => {
                    return Err(match stale {
                        Some(got) => out_of_step(id, got),
                        None => TransportError::new(
                            TransportErrorKind::Timeout,
                            format!(
                                "{}: no answer from the reader within {} s",
                                id.message_type,
                                timeout.as_secs()
                            ),
                        ),
                    }
                    .into());
                }
                Err(e) => return Err(e.into()),
            };
            let bytes = self.buffer.get(..len).unwrap_or(&[]);
            match check_response_to(id, bytes) {
                Ok(Reply::TimeExtension { multiplier }) => {
                    // §6.2.6: the reader needs more time; wait `multiplier` more periods.
                    timeout = self.config.timeout * u32::from(multiplier.max(1));
                    self.time_extensions = self.time_extensions.saturating_add(1);
                }
                Ok(Reply::Response(body)) => return answer_of(id, body),
                Err(PairingError::WrongSeq { got, .. }) => {
                    skipped += 1;
                    stale = Some(got);
                    if skipped > self.config.max_stale_responses {
                        return Err(out_of_step(id, got).into());
                    }
                }
                Err(e) => {
                    return Err(TransportError::new(
                        TransportErrorKind::Protocol,
                        format!("{}: {e}", id.message_type),
                    )
                    .into())
                }
            }
        }
    }

    /// Reads one whole bulk-IN message into the buffer (it may come in several reads);
    /// returns its length.
    fn read_message(&mut self, timeout: Duration) -> Result<usize, TransportError> {
        let mut have = 0usize;
        let mut empty_reads = 0u8;
        loop {
            let free = self.buffer.get_mut(have..).unwrap_or(&mut []);
            if free.is_empty() {
                return Err(TransportError::new(
                    TransportErrorKind::Protocol,
                    format!(
                        "the reader sent a message longer than {} bytes",
                        self.buffer.len()
                    ),
                ));
            }
            let n = self.pipe.bulk_in(free, timeout)?;
            if n == 0 {
                // Zero-length packets end transfers; a pipe that returns nothing else is as
                // good as silent.
                empty_reads += 1;
                if empty_reads > 16 {
                    return Err(TransportError::new(
                        TransportErrorKind::Timeout,
                        "the reader sends only empty packets",
                    ));
                }
                continue;
            }
            have += n.min(free.len());
            if have < HEADER_LEN {
                continue;
            }
            let header = self.buffer.get(..have).unwrap_or(&[]);
            let total = Message::new_unchecked(header)
                .total_len()
                .unwrap_or(usize::MAX);
            if total > self.buffer.len() {
                return Err(TransportError::new(
                    TransportErrorKind::Protocol,
                    format!(
                        "the reader announced a message of {} bytes; at most {} expected",
                        total,
                        self.buffer.len()
                    ),
                ));
            }
            if have >= total {
                return Ok(total);
            }
        }
    }
}

fn out_of_step(id: MessageId, got: u8) -> TransportError {
    TransportError::new(
        TransportErrorKind::Protocol,
        format!(
            "{}: the reader answered bSeq {got} instead of {} (out of step)",
            id.message_type, id.seq
        ),
    )
}

/// The fields of a final response, or its failure.
fn answer_of(id: MessageId, body: Body<'_>) -> Result<Answer, Failure> {
    let mut t1 = None;
    let (status, error, chain, data): (Status, SlotError, ChainParameter, &[u8]) = match body {
        Body::DataBlock(b) => (b.status, b.error, b.chain, b.data),
        Body::SlotStatus(b) => (b.status, b.error, ChainParameter::BeginsAndEnds, &[]),
        Body::Parameters(b) => {
            if let ProtocolData::T1(p) = b.protocol {
                t1 = Some(p);
            }
            (b.status, b.error, ChainParameter::BeginsAndEnds, &[])
        }
        Body::EscapeResponse(b) => (b.status, b.error, ChainParameter::BeginsAndEnds, b.data),
        Body::DataRateAndClockFrequency(b) => {
            (b.status, b.error, ChainParameter::BeginsAndEnds, &[])
        }
        other => {
            return Err(TransportError::new(
                TransportErrorKind::Protocol,
                format!("{}: unexpected {}", id.message_type, other.message_type()),
            )
            .into())
        }
    };
    match status.command {
        CommandStatus::Processed => Ok(Answer {
            status,
            chain,
            data: data.to_vec(),
            t1,
        }),
        CommandStatus::Failed => Err(Failure::Slot(SlotFailure {
            error,
            icc: status.icc,
        })),
        CommandStatus::TimeExtension | CommandStatus::Reserved => Err(TransportError::new(
            TransportErrorKind::Protocol,
            format!(
                "{}: bmCommandStatus {} is reserved",
                id.message_type,
                status.command.bits()
            ),
        )
        .into()),
    }
}
