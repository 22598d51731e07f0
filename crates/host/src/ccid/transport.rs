//! A SmartCard-HSM transport that speaks CCID itself: power on, then XfrBlock at the reader's
//! exchange level (CCID Rev 1.1 §5.1 `dwFeatures`, §6.1.4).

use tessera_ccid::{
    ChainParameter, ClassDescriptorRepr, ExchangeLevel, Features, IccStatus, SlotError,
};
use tessera_iso7816_3::atr::{AtrRepr, Protocol};
use tessera_iso7816_3::t1::{
    Action, Config, Deadline, Event, Reader, ReaderEvent, TransactionError,
};
use tessera_sc_hsm::{Transport, TransportError, TransportErrorKind};

use super::reader::{Answer, CcidConfig, CcidReader, Failure, IfsdRequest, SlotFailure};
use super::UsbPipe;

/// The APDU buffer of the T=1 engine: the longest extended command (4 + 3 + 65 535 + 2) and
/// response (65 536 + 2) fit.
const T1_BUFFER_LEN: usize = 65_546;

/// Engine steps for one transaction before it is declared stuck. A transaction of the longest
/// APDU in 1-byte blocks with every recovery is far below this; garbage never loops forever.
const MAX_T1_STEPS: usize = 200_000;

/// Pieces of a response fetched with `wLevelParameter` 0010 before it is declared endless.
const MAX_RESPONSE_PARTS: usize = 4096;

/// How APDUs travel in XfrBlock, from the class descriptor (CCID Rev 1.1 §5.1, §6.1.4).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExchangeMode {
    /// TPDU level: each XfrBlock carries one T=1 block, built by the host's T=1 engine.
    Tpdu,
    /// Short APDU level: whole short APDUs; no extended length.
    ShortApdu,
    /// Short and extended APDU level, long messages chained with `wLevelParameter`.
    ExtendedApdu,
}

/// A SmartCard-HSM [`Transport`] over a CCID reader on a [`UsbPipe`].
#[derive(Debug)]
pub struct CcidTransport<P> {
    reader: CcidReader<P>,
    mode: ExchangeMode,
    atr: Vec<u8>,
    t1: Option<Box<Reader<Vec<u8>>>>,
    wtx_requests: u64,
}

/// An engine action with the block copied out, so the engine can be called again.
struct Step {
    transmit: Option<Vec<u8>>,
    deadline: Option<Deadline>,
    completion: Option<ReaderEvent>,
}

impl Step {
    fn of(action: Action<'_, ReaderEvent>) -> Step {
        Step {
            transmit: action.transmit.map(<[u8]>::to_vec),
            deadline: action.deadline,
            completion: action.completion,
        }
    }
}

/// How an engine exchange ended.
enum Done {
    Response(usize),
    Ifsd,
}

impl<P: UsbPipe> CcidTransport<P> {
    /// Opens the card in the reader described by `descriptor` on `pipe`: IccPowerOn, then
    /// (TPDU level) the T=1 engine with IFSC and EDC from the ATR and, unless the reader
    /// negotiates it itself (`dwFeatures` automatic IFSD; see [`IfsdRequest`]), S(IFS request)
    /// for IFSD 254.
    ///
    /// The reader must configure the card's protocol itself (automatic parameter
    /// configuration, or automatic PPS, in `dwFeatures`, as the Nitrokey HSM 2 does): this
    /// driver sends no PPS and no SetParameters.
    pub fn open(
        pipe: P,
        descriptor: ClassDescriptorRepr,
        config: CcidConfig,
    ) -> Result<CcidTransport<P>, TransportError> {
        let mode = match descriptor.features.exchange_level() {
            ExchangeLevel::Tpdu => ExchangeMode::Tpdu,
            ExchangeLevel::ShortApdu => ExchangeMode::ShortApdu,
            ExchangeLevel::ExtendedApdu => ExchangeMode::ExtendedApdu,
            ExchangeLevel::Character => {
                return Err(TransportError::new(
                    TransportErrorKind::Other,
                    "the reader exchanges characters only (no TPDU or APDU level); this driver \
                     does not support it, use PC/SC",
                ))
            }
            ExchangeLevel::Invalid(bits) => {
                return Err(TransportError::new(
                    TransportErrorKind::Protocol,
                    format!("the reader's dwFeatures names several exchange levels ({bits:#010x})"),
                ))
            }
        };
        let mut transport = CcidTransport {
            reader: CcidReader::new(pipe, descriptor, config),
            mode,
            atr: Vec::new(),
            t1: None,
            wtx_requests: 0,
        };
        transport.start()?;
        Ok(transport)
    }

    /// The exchange level in use.
    pub fn mode(&self) -> ExchangeMode {
        self.mode
    }

    /// The CCID layer (for GetSlotStatus and the like).
    pub fn reader(&mut self) -> &mut CcidReader<P> {
        &mut self.reader
    }

    /// IFSC and IFSD of the T=1 link (TPDU level only).
    pub fn t1_sizes(&self) -> Option<(u8, u8)> {
        self.t1.as_ref().map(|t| (t.ifsc(), t.ifsd()))
    }

    /// How many S(WTX request)s the card sent that this host's T=1 engine answered (TPDU
    /// level only: at APDU level the reader answers them and may send CCID time extensions,
    /// [`CcidReader::time_extensions`]).
    pub fn wtx_requests(&self) -> u64 {
        self.wtx_requests
    }

    /// Powers the card on and sets up the exchange level.
    fn start(&mut self) -> Result<(), TransportError> {
        self.atr = self.reader.power_on()?;
        self.t1 = None;
        if self.mode != ExchangeMode::Tpdu {
            return Ok(());
        }
        let atr = AtrRepr::parse_bytes(&self.atr).map_err(|e| {
            TransportError::new(
                TransportErrorKind::Protocol,
                format!("the card's ATR does not parse: {e:?}"),
            )
        })?;
        if !atr.protocols().contains(Protocol::T1) {
            return Err(TransportError::new(
                TransportErrorKind::Other,
                "the card does not offer T=1 (this driver speaks T=1 only, as the Nitrokey HSM 2 does)",
            ));
        }
        // IFSC and EDC from the ATR (ISO/IEC 7816-3 §11.4); the reader did the PPS
        // (automatic PPS or parameter negotiation in dwFeatures, as the Nitrokey does).
        let params = atr.t1_params().map_err(|e| {
            TransportError::new(
                TransportErrorKind::Protocol,
                format!("the card's T=1 parameters are invalid: {e:?}"),
            )
        })?;
        let descriptor = *self.reader.descriptor();
        let automatic = descriptor.features.contains(Features::AUTO_IFSD);
        let mut config = Config::new(params.ifsc, params.edc);
        if automatic {
            // The reader negotiates IFSD itself (CCID Rev 1.1 §5.1, dwFeatures 0x400), up to
            // dwMaxIFSD: accept blocks that long. A reader that announces it but never asks (the
            // stock Nitrokey firmware) leaves the card at 32, which this accepts as well.
            config.ifsd = u8::try_from(descriptor.max_ifsd.clamp(1, 254)).unwrap_or(254);
        }
        self.t1 = Some(Box::new(Reader::new(config, vec![0u8; T1_BUFFER_LEN])));
        let ask = match self.reader.config().ifsd_request {
            IfsdRequest::UnlessAutomatic => !automatic,
            IfsdRequest::Always => true,
            IfsdRequest::Never => false,
        };
        if ask {
            let ifsd = u8::try_from(descriptor.max_ifsd.clamp(1, 254)).unwrap_or(254);
            self.request_ifsd(ifsd)?;
        }
        Ok(())
    }

    /// S(IFS request) for `ifsd` (ISO/IEC 7816-3 §11.6.2.2 Rule 4). A card that does not
    /// take it keeps IFSD 32: that is slower, not wrong, so only transport failures count.
    fn request_ifsd(&mut self, ifsd: u8) -> Result<(), TransportError> {
        let Some(engine) = self.t1.as_mut() else {
            return Ok(());
        };
        let first = match engine.request_ifsd(ifsd) {
            Ok(action) => Step::of(action),
            Err(_) => return Ok(()),
        };
        match self.drive(first) {
            Ok(_) => Ok(()),
            Err(e) if e.kind() == TransportErrorKind::Protocol => {
                if let Some(engine) = self.t1.as_mut() {
                    engine.reset();
                }
                Ok(())
            }
            Err(e) => Err(e),
        }
    }

    /// One APDU through the T=1 engine, one block per XfrBlock.
    fn transmit_tpdu(&mut self, command: &[u8]) -> Result<Vec<u8>, TransportError> {
        let engine = self.t1.as_mut().ok_or_else(|| {
            TransportError::new(TransportErrorKind::Other, "the T=1 link is not set up")
        })?;
        let slot = engine
            .buffer_mut()
            .get_mut(..command.len())
            .ok_or_else(|| {
                TransportError::new(
                    TransportErrorKind::Other,
                    format!("a command of {} bytes is too long", command.len()),
                )
            })?;
        slot.copy_from_slice(command);
        let first = match engine.transmit(command.len()) {
            Ok(action) => Step::of(action),
            Err(e) => {
                engine.reset();
                return Err(TransportError::new(
                    TransportErrorKind::Protocol,
                    format!("T=1: {e}"),
                ));
            }
        };
        match self.drive(first)? {
            Done::Response(len) => {
                let engine = self.t1.as_ref().ok_or_else(|| {
                    TransportError::new(TransportErrorKind::Other, "the T=1 link is not set up")
                })?;
                Ok(engine.buffer().get(..len).unwrap_or(&[]).to_vec())
            }
            Done::Ifsd => Err(TransportError::new(
                TransportErrorKind::Protocol,
                "T=1: an IFS exchange ended a transaction",
            )),
        }
    }

    /// Runs the engine until it completes: each block it sends goes out in an XfrBlock
    /// (`bBWI` = the WTX multiplier, CCID §6.1.4), the block in the DataBlock is fed back.
    /// A whole block arrives in one message, so a CWT or BGT deadline passes at once; a mute
    /// or garbled card (`ICC_MUTE`, `XFR_PARITY_ERROR`) is the BWT deadline passing, and the
    /// engine's error recovery (§11.6.3) takes over.
    fn drive(&mut self, first: Step) -> Result<Done, TransportError> {
        let CcidTransport {
            reader,
            t1,
            wtx_requests,
            ..
        } = self;
        let engine = t1.as_mut().ok_or_else(|| {
            TransportError::new(TransportErrorKind::Other, "the T=1 link is not set up")
        })?;
        let mut step = first;
        for _ in 0..MAX_T1_STEPS {
            match step.completion {
                Some(ReaderEvent::Response { len }) => return Ok(Done::Response(len)),
                Some(ReaderEvent::IfsdSet(_)) => return Ok(Done::Ifsd),
                Some(ReaderEvent::Failed(error)) => return Err(t1_failure(error)),
                Some(ReaderEvent::Resynchronised) => {
                    return Err(TransportError::new(
                        TransportErrorKind::Protocol,
                        "T=1: unexpected resynchronisation",
                    ))
                }
                Some(ReaderEvent::WaitingTimeExtension(_)) => {
                    *wtx_requests = wtx_requests.saturating_add(1);
                }
                Some(ReaderEvent::IfscChanged(_)) | None => {}
            }
            step = match step.transmit {
                Some(block) => {
                    let bwi = match step.deadline {
                        Some(Deadline::Bwt { multiplier }) if multiplier > 1 => multiplier,
                        _ => 0,
                    };
                    match reader.xfr_block(&block, bwi, 0) {
                        Ok(answer) => Step::of(engine.handle(Event::Received(&answer.data))),
                        Err(Failure::Slot(SlotFailure {
                            error:
                                SlotError::IccMute | SlotError::XfrParityError | SlotError::XfrOverrun,
                            icc,
                        })) if icc != IccStatus::NotPresent => {
                            Step::of(engine.handle(Event::DeadlinePassed))
                        }
                        Err(failure) => {
                            engine.reset();
                            return Err(failure.into_transport("XfrBlock"));
                        }
                    }
                }
                None if step.deadline.is_some() => Step::of(engine.handle(Event::DeadlinePassed)),
                None => {
                    engine.reset();
                    return Err(TransportError::new(
                        TransportErrorKind::Protocol,
                        "T=1: the exchange stalled",
                    ));
                }
            };
        }
        engine.reset();
        Err(TransportError::new(
            TransportErrorKind::Protocol,
            "T=1: the exchange does not end",
        ))
    }

    /// One APDU at short or extended APDU level (CCID §6.1.4): a long command in several
    /// XfrBlocks (`wLevelParameter` 0001, 0003 …, 0002), a long response fetched with 0010.
    fn transmit_apdu(&mut self, command: &[u8]) -> Result<Vec<u8>, TransportError> {
        let max = self.reader.max_payload().max(1);
        let xfr = |reader: &mut CcidReader<P>,
                   data: &[u8],
                   level: u16|
         -> Result<Answer, TransportError> {
            reader
                .xfr_block(data, 0, level)
                .map_err(|f| f.into_transport("XfrBlock"))
        };
        if command.len() <= max {
            let answer = xfr(&mut self.reader, command, 0x0000)?;
            return self.rest_of_response(answer);
        }
        if self.mode == ExchangeMode::ShortApdu {
            return Err(TransportError::new(
                TransportErrorKind::Other,
                format!(
                    "the reader takes APDUs of at most {max} bytes (short APDU level); this one has {}",
                    command.len()
                ),
            ));
        }
        let count = command.len().div_ceil(max);
        let mut last = None;
        for (i, chunk) in command.chunks(max).enumerate() {
            let level = match (i, i + 1 == count) {
                (0, _) => 0x0001,
                (_, true) => 0x0002,
                _ => 0x0003,
            };
            last = Some(xfr(&mut self.reader, chunk, level)?);
        }
        let answer =
            last.ok_or_else(|| TransportError::new(TransportErrorKind::Other, "empty command"))?;
        self.rest_of_response(answer)
    }

    fn rest_of_response(&mut self, first: Answer) -> Result<Vec<u8>, TransportError> {
        let mut data = first.data;
        let mut chain = first.chain;
        for _ in 0..MAX_RESPONSE_PARTS {
            match chain {
                ChainParameter::BeginsAndEnds | ChainParameter::Ends => return Ok(data),
                ChainParameter::Begins | ChainParameter::Continues => {
                    let more = self
                        .reader
                        .xfr_block(&[], 0, 0x0010)
                        .map_err(|f| f.into_transport("XfrBlock"))?;
                    data.extend_from_slice(&more.data);
                    chain = more.chain;
                }
                other => {
                    return Err(TransportError::new(
                        TransportErrorKind::Protocol,
                        format!("DataBlock with bChainParameter {other:?} ends no response"),
                    ))
                }
            }
        }
        Err(TransportError::new(
            TransportErrorKind::Protocol,
            "the reader's response chain does not end",
        ))
    }
}

fn t1_failure(error: TransactionError) -> TransportError {
    let kind = match error {
        TransactionError::CardUnresponsive => TransportErrorKind::Timeout,
        _ => TransportErrorKind::Protocol,
    };
    let note = match error {
        TransactionError::Resynchronised => "; the command may or may not have been carried out",
        _ => "",
    };
    TransportError::new(kind, format!("T=1: {error}{note}"))
}

impl<P: UsbPipe> Transport for CcidTransport<P> {
    fn transmit(&mut self, command: &[u8]) -> Result<Vec<u8>, TransportError> {
        let result = match self.mode {
            ExchangeMode::Tpdu => self.transmit_tpdu(command),
            ExchangeMode::ShortApdu | ExchangeMode::ExtendedApdu => self.transmit_apdu(command),
        };
        if self.t1.as_ref().is_some_and(|t| t.needs_reset()) {
            // The card stopped answering S(RESYNCH): only a reset brings it back (§11.6.3.2
            // Rule 6.4). Do it now so the next command finds a working link.
            let _ = self.reset();
            return Err(TransportError::new(
                TransportErrorKind::CardReset,
                "the card stopped answering T=1 and was reset",
            ));
        }
        result
    }

    fn atr(&mut self) -> Result<Vec<u8>, TransportError> {
        Ok(self.atr.clone())
    }

    fn reset(&mut self) -> Result<(), TransportError> {
        self.reader.power_off()?;
        self.start()
    }

    fn supports_extended_length(&self) -> bool {
        // At TPDU level T=1 chaining carries any length (ISO/IEC 7816-3 §11.6.2.3).
        self.mode != ExchangeMode::ShortApdu
    }
}
