//! The glue between the drivers and the bridge: the three hardware implementations the bridge
//! drives ([`Stm32Card`], [`Stm32Timer`], [`Stm32Usb`], together a [`Board`]), and the event
//! loop ([`run`]) that turns interrupts, USB transfers and the deadline into [`HwEvent`]s for
//! the [`Logic`] (the bridge), which answers by calling the board's methods.
//!
//! The methods have the shapes of `tessera-bridge`'s `hal` traits (`CardContacts`,
//! `DeadlineTimer`, `UsbDevice`): non-blocking command sinks whose completions come back as
//! events. With the `bridge` feature, [`Board`] implements those traits by delegation and
//! `tessera_bridge::Bridge` implements [`Logic`]; without it, [`BringUp`] is the logic: it
//! activates the card every few seconds and logs what it sends, which exercises every driver
//! without any protocol.
//!
//! Tasks: the event loop runs in `main`; the USB device, bulk OUT, bulk IN and interrupt IN
//! each run in their own task from the first attach on, and talk to the loop through the
//! signals below, so that no transfer is ever cancelled half-way.

use core::future::pending;

use embassy_executor::{SpawnError, SpawnToken, Spawner};
use embassy_futures::select::{select, select4, Either, Either4};
use embassy_stm32::peripherals::USB;
use embassy_stm32::usb::Driver;
use embassy_sync::blocking_mutex::raw::CriticalSectionRawMutex;
use embassy_sync::signal::Signal;
use embassy_time::{Instant, Timer};
use embassy_usb::driver::EndpointError;
use embassy_usb::UsbDevice;
use heapless::{String, Vec};
use static_cell::{ConstStaticCell, StaticCell};
use tessera_ccid::ClassDescriptorRepr;
use tessera_iso7816_3::rate::Etu;

use crate::board::{Leds, UsbPullUp};
use crate::ccid_transport::Reassembler;
use crate::line_state::{RxEvent, TxError};
use crate::smartcard::SmartCard;
use crate::usb::{
    self, AbortRequest, BulkIn, BulkOut, Identity, InterruptIn, UsbBuffers, ABORT_REQUEST,
    USB_CONFIGURED,
};

/// The longest CCID message either way, header included: 271, `dwMaxCCIDMessageLength` of the
/// stock TPDU-level descriptor (hardware.md §C). The bridge's APDU-level configuration uses 522:
/// raise this with it.
pub const MESSAGE_CAPACITY: usize = 271;

/// The longest interrupt-IN message: NotifySlotChange for one slot is 2 bytes, HardwareError 4.
pub const INTERRUPT_CAPACITY: usize = 8;

/// The longest serial-number string (hardware.md §C: a 24-character buffer).
pub const SERIAL_CAPACITY: usize = 24;

/// Whether the driver uses the smart-card NACK (character repetition, ISO/IEC 7816-3:2006 §7.3).
/// Off: the bridge runs T=1 (SmartCard-HSM), which recovers at block level and wants parity
/// errors reported, and a card that does not repeat characters loses nothing. A T=0 card then
/// gets no error signal from us and our parity errors go to the bridge's T=0 engine. (**GUESS**
/// that no card of interest needs repetition; the stock firmware always set NACK.)
pub const CHARACTER_REPETITION: bool = false;

type Message = Vec<u8, MESSAGE_CAPACITY>;
type UsbDriver = Driver<'static, USB>;

// The tasks hand messages over through signals rather than channels (less flash): each holds at
// most one message, and the sides keep turns. A bulk-OUT message waits in INBOX until the event
// loop takes it, which INBOX_TAKEN tells the bulk-OUT task before it offers the next; a bulk-IN
// message waits in OUTBOX, and the bridge queues the next only after BULK_IN_SENT.
static INBOX: Signal<CriticalSectionRawMutex, Message> = Signal::new();
static INBOX_TAKEN: Signal<CriticalSectionRawMutex, ()> = Signal::new();
static OUTBOX: Signal<CriticalSectionRawMutex, Message> = Signal::new();
static BULK_IN_SENT: Signal<CriticalSectionRawMutex, ()> = Signal::new();
/// The interrupt-IN message to send. A signal, not a channel: there is never more than one
/// (`Stm32Usb::interrupt_busy` until [`INTERRUPT_SENT`]), and a signal costs less flash.
static INTERRUPT_OUTBOX: Signal<CriticalSectionRawMutex, Vec<u8, INTERRUPT_CAPACITY>> =
    Signal::new();
static INTERRUPT_SENT: Signal<CriticalSectionRawMutex, ()> = Signal::new();
static USB_BUFFERS: ConstStaticCell<UsbBuffers> = ConstStaticCell::new(UsbBuffers::new());
static SERIAL: StaticCell<String<SERIAL_CAPACITY>> = StaticCell::new();

/// Why a hardware request was refused; maps onto the bridge's `hal::ErrorKind`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(target_os = "none", derive(defmt::Format))]
pub enum DriverError {
    /// The previous transmission or message has not finished.
    Busy,
    /// More bytes than the driver's buffer holds.
    TooLong,
    /// Not in a state to do this (card clock stopped, USB not attached).
    NotReady,
}

/// Something that happened, for the logic. The names are those of the bridge's `Event`s.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(target_os = "none", derive(defmt::Format))]
pub enum HwEvent<'a> {
    /// The armed deadline passed.
    DeadlinePassed,
    /// Characters from the card, in order (never our own echo).
    CardReceived(&'a [u8]),
    /// A character from the card was unreliable (parity error, or lost to an overrun), or the
    /// card refused one of ours (NACK) or talked over it.
    CardParityError,
    /// The last character of a transmission is on the line.
    CardTransmitted,
    /// The host configured the device.
    UsbConfigured,
    /// A bus reset, a suspend or a de-configuration.
    UsbDeconfigured,
    /// One complete bulk-OUT message (cut to [`MESSAGE_CAPACITY`]).
    UsbBulkOut(&'a [u8]),
    /// The queued bulk-IN message has been sent.
    UsbBulkInSent,
    /// The queued interrupt-IN message has been sent.
    UsbInterruptSent,
    /// The class request ABORT.
    UsbAbort(AbortRequest),
}

/// The firmware's logic: the bridge, or [`BringUp`] until it is wired.
pub trait Logic {
    /// Called once, with the card deactivated, USB detached and no deadline.
    fn start(&mut self, board: &mut Board, now: Instant);
    /// Called for every event.
    fn handle(&mut self, board: &mut Board, now: Instant, event: HwEvent<'_>);
}

/// The card contacts (the bridge's `CardContacts`), with the card LED showing VCC.
pub struct Stm32Card {
    card: SmartCard<'static>,
    leds: Leds<'static>,
    transmitting: bool,
}

impl Stm32Card {
    /// Wrap the driver (the card deactivated).
    pub fn new(mut card: SmartCard<'static>, leds: Leds<'static>) -> Self {
        card.set_character_repetition(CHARACTER_REPETITION);
        Stm32Card {
            card,
            leds,
            transmitting: false,
        }
    }

    /// VCC on or off (PB4 + PB5).
    pub fn set_vcc(&mut self, on: bool) {
        self.card.set_vcc(on);
        if !on {
            self.transmitting = false;
        }
        if on {
            self.leds.card.set_high();
        } else {
            self.leds.card.set_low();
        }
    }

    /// RST (PB3).
    pub fn set_rst(&mut self, high: bool) {
        self.card.set_rst(high);
    }

    /// CLK (PA8) running at 3.6 MHz, I/O in reception; or stopped low.
    pub fn set_clock(&mut self, running: bool) {
        if !running {
            self.card.abort_transmit();
            self.transmitting = false;
        }
        self.card.set_clock(running);
    }

    /// The etu (F / D) and the character guard time CGT in etu (the bridge's `LineRate`). The
    /// USART spaces characters at least 12 etu apart (see [`crate::line::guard_time`]), so a
    /// CGT of 11 (T=1, N = 255) or 12 gives N = 0, and 12 + N gives N. An F and D the USART
    /// cannot make keep the previous rate (and are logged).
    pub fn set_rate(&mut self, f: u16, d: u8, cgt_etu: u16) {
        match Etu::new(f, d).map(|etu| self.card.set_etu(etu)) {
            Some(Ok(())) => {}
            // The USART's reason, or none when F and D are no etu at all.
            refused => defmt::warn!(
                "card: F {} D {} refused: {}",
                f,
                d,
                refused.and_then(Result::err)
            ),
        }
        let n = cgt_etu.saturating_sub(12).min(254) as u8;
        self.card.set_extra_guard_time(n);
    }

    /// Start sending characters; [`HwEvent::CardTransmitted`] follows.
    pub fn transmit(&mut self, bytes: &[u8]) -> Result<(), DriverError> {
        self.card.start_transmit(bytes).map_err(|e| match e {
            TxError::TooLong => DriverError::TooLong,
            TxError::Busy => DriverError::Busy,
            _ => DriverError::NotReady,
        })?;
        self.transmitting = true;
        Ok(())
    }
}

/// The deadline timer (the bridge's `DeadlineTimer`): one instant, awaited by the event loop
/// on embassy-time (TIM2).
#[derive(Default)]
pub struct Stm32Timer {
    armed: Option<Instant>,
}

impl Stm32Timer {
    /// Fire at `at` (replacing the armed deadline).
    pub fn arm(&mut self, at: Instant) {
        self.armed = Some(at);
    }

    /// Fire no more.
    pub fn disarm(&mut self) {
        self.armed = None;
    }
}

/// The USB device (the bridge's `UsbDevice`). The embassy-usb device is built at the first
/// [`Stm32Usb::attach`], because its serial-number string is fixed when it is built; a later
/// attach with a different serial keeps the first one (logged: the bridge attaches once per
/// boot).
pub struct Stm32Usb {
    pull_up: UsbPullUp<'static>,
    driver: Option<UsbDriver>,
    spawner: Spawner,
    product: &'static str,
    descriptor: ClassDescriptorRepr,
    serial: Option<&'static str>,
    bulk_in_busy: bool,
    interrupt_busy: bool,
}

impl Stm32Usb {
    /// Detached, with the device's product string and class descriptor.
    pub fn new(
        pull_up: UsbPullUp<'static>,
        driver: UsbDriver,
        spawner: Spawner,
        product: &'static str,
        descriptor: ClassDescriptorRepr,
    ) -> Self {
        Stm32Usb {
            pull_up,
            driver: Some(driver),
            spawner,
            product,
            descriptor,
            serial: None,
            bulk_in_busy: false,
            interrupt_busy: false,
        }
    }

    /// Set the serial string (the first time: build the device and start its tasks) and pull
    /// D+ up.
    pub fn attach(&mut self, serial: &str) {
        if let Some(driver) = self.driver.take() {
            // The longest prefix that fits, cut at a character boundary (the bridge's serials
            // are ASCII and at most 24 characters: all of it).
            let mut end = serial.len().min(SERIAL_CAPACITY);
            while !serial.is_char_boundary(end) {
                end -= 1;
            }
            let mut s = String::new();
            let _ = s.push_str(serial.get(..end).unwrap_or_default());
            let serial: &'static str = SERIAL.init(s).as_str();
            let identity = Identity {
                product: self.product,
                serial,
                descriptor: self.descriptor,
            };
            let Some(buffers) = USB_BUFFERS.try_take() else {
                return; // cannot happen: the driver is taken once
            };
            let (device, endpoints) = usb::build(driver, &identity, buffers);
            // Each task is spawned once (the driver is taken once), so none can fail.
            spawn(self.spawner, usb_device_task(device));
            spawn(self.spawner, bulk_out_task(endpoints.bulk_out));
            spawn(self.spawner, bulk_in_task(endpoints.bulk_in));
            spawn(self.spawner, interrupt_task(endpoints.interrupt_in));
            self.serial = Some(serial);
        } else if self.serial != Some(serial) {
            defmt::warn!(
                "usb: attach with a new serial; the device keeps {:?}",
                self.serial
            );
        }
        self.pull_up.attach();
    }

    /// Release D+.
    pub fn detach(&mut self) {
        self.pull_up.detach();
    }

    /// Queue a bulk-IN message (header and payload); [`HwEvent::UsbBulkInSent`] follows.
    pub fn send_bulk_in(&mut self, header: &[u8; 10], payload: &[u8]) -> Result<(), DriverError> {
        if self.serial.is_none() {
            return Err(DriverError::NotReady);
        }
        if self.bulk_in_busy {
            return Err(DriverError::Busy);
        }
        let mut message = Message::new();
        message
            .extend_from_slice(header)
            .and_then(|()| message.extend_from_slice(payload))
            .map_err(|_| DriverError::TooLong)?;
        OUTBOX.signal(message);
        self.bulk_in_busy = true;
        Ok(())
    }

    /// Queue an interrupt-IN message; [`HwEvent::UsbInterruptSent`] follows.
    pub fn send_interrupt(&mut self, message: &[u8]) -> Result<(), DriverError> {
        if self.serial.is_none() {
            return Err(DriverError::NotReady);
        }
        if self.interrupt_busy {
            return Err(DriverError::Busy);
        }
        let message = Vec::from_slice(message).map_err(|()| DriverError::TooLong)?;
        INTERRUPT_OUTBOX.signal(message);
        self.interrupt_busy = true;
        Ok(())
    }
}

/// Everything the logic drives (the bridge's `Parts`).
pub struct Board {
    /// The card contacts.
    pub card: Stm32Card,
    /// The deadline timer.
    pub timer: Stm32Timer,
    /// The USB device.
    pub usb: Stm32Usb,
}

fn spawn<S>(spawner: Spawner, token: Result<SpawnToken<S>, SpawnError>) {
    match token {
        Ok(token) => spawner.spawn(token),
        // SpawnError has one variant, Busy.
        Err(_) => defmt::error!("spawn: task busy"),
    }
}

/// The name of an endpoint error, for the log (embassy-usb is built without defmt).
fn endpoint_error(e: EndpointError) -> &'static str {
    match e {
        EndpointError::BufferOverflow => "buffer overflow",
        EndpointError::Disabled => "endpoint disabled",
    }
}

#[embassy_executor::task]
async fn usb_device_task(mut device: UsbDevice<'static, UsbDriver>) -> ! {
    device.run().await
}

#[embassy_executor::task]
async fn bulk_out_task(mut endpoint: BulkOut<'static, UsbDriver>) -> ! {
    let mut reassembler = Reassembler::<MESSAGE_CAPACITY>::new();
    loop {
        endpoint.wait_configured().await;
        loop {
            match endpoint.receive(&mut reassembler).await {
                Ok((len, truncated)) => {
                    if truncated {
                        defmt::warn!("usb: bulk-OUT message longer than {}", MESSAGE_CAPACITY);
                    }
                    let message =
                        Message::from_slice(reassembler.message().get(..len).unwrap_or(&[]))
                            .unwrap_or_default();
                    INBOX.signal(message);
                    INBOX_TAKEN.wait().await;
                }
                Err(EndpointError::Disabled) => {
                    reassembler.reset();
                    break;
                }
                Err(EndpointError::BufferOverflow) => reassembler.reset(),
            }
        }
    }
}

#[embassy_executor::task]
async fn bulk_in_task(mut endpoint: BulkIn<'static, UsbDriver>) -> ! {
    loop {
        let message = OUTBOX.wait().await;
        if let Err(e) = endpoint.send(&message).await {
            // The host went away: the message is dropped, and the bridge hears of it as
            // UsbDeconfigured. Completion is reported all the same, so it never waits forever.
            defmt::warn!("usb: bulk-IN message dropped: {}", endpoint_error(e));
        }
        BULK_IN_SENT.signal(());
    }
}

#[embassy_executor::task]
async fn interrupt_task(mut endpoint: InterruptIn<'static, UsbDriver>) -> ! {
    loop {
        let message = INTERRUPT_OUTBOX.wait().await;
        if let Err(e) = endpoint.send(&message).await {
            defmt::warn!("usb: interrupt-IN message dropped: {}", endpoint_error(e));
        }
        INTERRUPT_SENT.signal(());
    }
}

/// The event loop: wait for the next thing that happens, hand it to `logic`, repeat.
pub async fn run<L: Logic>(mut board: Board, mut logic: L) -> ! {
    logic.start(&mut board, Instant::now());
    let mut configured = false;
    loop {
        let armed = board.timer.armed;
        let transmitting = board.card.transmitting;
        let wakeup = {
            let card = &board.card.card;
            let deadline = async {
                match armed {
                    Some(at) => Timer::at(at).await,
                    None => pending().await,
                }
            };
            let card_done = async {
                if transmitting {
                    card.transmitted().await
                } else {
                    pending().await
                }
            };
            let usb = select4(
                INBOX.wait(),
                BULK_IN_SENT.wait(),
                INTERRUPT_SENT.wait(),
                select(USB_CONFIGURED.wait(), ABORT_REQUEST.wait()),
            );
            select4(deadline, card.receive(), card_done, usb).await
        };
        let now = Instant::now();
        // Matched as the selects return it (a conversion into an enum of wake-up reasons cost
        // 108 bytes of flash).
        let event = match &wakeup {
            // The deadline.
            Either4::First(()) => {
                board.timer.armed = None;
                HwEvent::DeadlinePassed
            }
            // Characters (or a parity error) from the card.
            Either4::Second(first) => {
                feed_card_events(&mut board, &mut logic, now, *first);
                continue;
            }
            // The end of a transmission to the card.
            Either4::Third(result) => {
                board.card.transmitting = false;
                match result {
                    Ok(()) => {}
                    // The card was powered down or the clock stopped: the logic did that.
                    Err(TxError::Aborted) => continue,
                    Err(e) => {
                        defmt::warn!("card: transmission failed: {}", e);
                        logic.handle(&mut board, now, HwEvent::CardParityError);
                    }
                }
                HwEvent::CardTransmitted
            }
            // USB: a bulk-OUT message, bulk-IN and interrupt-IN sent, configuration, ABORT.
            Either4::Fourth(Either4::First(message)) => {
                // The bulk-OUT task may receive the next message meanwhile.
                INBOX_TAKEN.signal(());
                HwEvent::UsbBulkOut(message)
            }
            Either4::Fourth(Either4::Second(())) => {
                board.usb.bulk_in_busy = false;
                HwEvent::UsbBulkInSent
            }
            Either4::Fourth(Either4::Third(())) => {
                board.usb.interrupt_busy = false;
                HwEvent::UsbInterruptSent
            }
            Either4::Fourth(Either4::Fourth(Either::First(on))) => {
                if *on == configured {
                    continue;
                }
                configured = *on;
                if *on {
                    HwEvent::UsbConfigured
                } else {
                    HwEvent::UsbDeconfigured
                }
            }
            Either4::Fourth(Either4::Fourth(Either::Second(abort))) => HwEvent::UsbAbort(*abort),
        };
        logic.handle(&mut board, now, event);
    }
}

/// Feed `first` and whatever else the card sent since, consecutive characters in one
/// [`HwEvent::CardReceived`].
// Out of line: inlined into the event loop it cost 60 bytes of flash (`cargo xtask size`).
#[inline(never)]
fn feed_card_events<L: Logic>(board: &mut Board, logic: &mut L, now: Instant, first: RxEvent) {
    let mut next = Some(first);
    while next.is_some() {
        let mut bytes = [0u8; 32];
        let mut n = 0;
        let mut other = None;
        while let Some(event) = next.take() {
            match event {
                RxEvent::Byte(b) => {
                    if let Some(slot) = bytes.get_mut(n) {
                        *slot = b;
                        n += 1;
                    }
                    if n < bytes.len() {
                        next = board.card.card.try_receive();
                    }
                }
                RxEvent::ParityError(_) | RxEvent::Overrun => other = Some(event),
            }
        }
        if n > 0 {
            logic.handle(
                board,
                now,
                HwEvent::CardReceived(bytes.get(..n).unwrap_or(&[])),
            );
        }
        if other.is_some() {
            logic.handle(board, now, HwEvent::CardParityError);
        }
        if n == bytes.len() || other.is_some() {
            next = board.card.card.try_receive();
        }
    }
}

/// The stand-in logic until the bridge is wired: attach to USB at once with the serial
/// "BRINGUP" (so `lsusb -v` shows the identity and the CCID descriptors), log every bulk-OUT
/// message without answering it, and every 5 s activate the card (ISO/IEC 7816-3 §6.2.2: VCC,
/// CLK with RST low, RST high 1 ms later), log what it sends for 1 s, and deactivate it (§6.4).
/// It proves the clocks, the pins, the USART and its interrupt, the timer and USB enumeration
/// on a real board, and nothing more: a host's CCID driver gets no answers from it.
#[derive(Default)]
pub struct BringUp {
    phase: BringUpPhase,
    received: usize,
}

#[derive(Default, Clone, Copy, PartialEq, Eq)]
enum BringUpPhase {
    #[default]
    Idle,
    ResetLow,
    Listening,
}

impl Logic for BringUp {
    fn start(&mut self, board: &mut Board, now: Instant) {
        defmt::info!("bring-up: the bridge is not wired in this build; probing the card");
        board.usb.attach("BRINGUP");
        board.timer.arm(now);
    }

    fn handle(&mut self, board: &mut Board, now: Instant, event: HwEvent<'_>) {
        match event {
            HwEvent::DeadlinePassed => match self.phase {
                BringUpPhase::Idle => {
                    board.card.set_vcc(true);
                    board.card.set_rate(372, 1, 12);
                    board.card.set_clock(true);
                    board
                        .timer
                        .arm(now + embassy_time::Duration::from_millis(1));
                    self.phase = BringUpPhase::ResetLow;
                }
                BringUpPhase::ResetLow => {
                    board.card.set_rst(true);
                    self.received = 0;
                    board.timer.arm(now + embassy_time::Duration::from_secs(1));
                    self.phase = BringUpPhase::Listening;
                }
                BringUpPhase::Listening => {
                    defmt::info!("bring-up: {} bytes from the card", self.received);
                    board.card.set_rst(false);
                    board.card.set_clock(false);
                    board.card.set_vcc(false);
                    board.timer.arm(now + embassy_time::Duration::from_secs(4));
                    self.phase = BringUpPhase::Idle;
                }
            },
            HwEvent::CardReceived(bytes) => {
                self.received += bytes.len();
                defmt::info!("card: {=[u8]:02x}", bytes);
            }
            HwEvent::UsbBulkOut(message) => defmt::info!("usb: {=[u8]:02x}", message),
            other => defmt::info!("bring-up: {}", other),
        }
    }
}

/// `tessera-bridge`'s traits on the [`Board`], and the bridge as the [`Logic`]: delegation only.
#[cfg(feature = "bridge")]
mod wiring {
    use tessera_bridge as bridge;

    use super::{Board, DriverError, HwEvent, Instant, Logic};

    fn to_bridge(now: Instant) -> bridge::Instant {
        // embassy-time ticks at 1 MHz (its default tick rate): ticks are microseconds.
        bridge::Instant::from_micros(now.as_micros())
    }

    impl bridge::Error for DriverError {
        fn kind(&self) -> bridge::ErrorKind {
            match self {
                DriverError::Busy => bridge::ErrorKind::Busy,
                DriverError::TooLong => bridge::ErrorKind::TooLong,
                DriverError::NotReady => bridge::ErrorKind::NotReady,
            }
        }
    }

    impl bridge::CardContacts for Board {
        type Error = DriverError;

        fn set_vcc(&mut self, on: bool) {
            self.card.set_vcc(on);
        }

        fn set_rst(&mut self, high: bool) {
            self.card.set_rst(high);
        }

        fn set_clock(&mut self, running: bool) {
            self.card.set_clock(running);
        }

        fn set_rate(&mut self, rate: bridge::LineRate) {
            self.card.set_rate(rate.f, rate.d, rate.cgt_etu);
        }

        fn transmit(&mut self, bytes: &[u8]) -> Result<(), DriverError> {
            self.card.transmit(bytes)
        }
    }

    impl bridge::DeadlineTimer for Board {
        fn arm(&mut self, at: bridge::Instant) {
            self.timer.arm(Instant::from_micros(at.as_micros()));
        }

        fn disarm(&mut self) {
            self.timer.disarm();
        }
    }

    impl bridge::UsbDevice for Board {
        type Error = DriverError;

        fn attach(&mut self, serial: &str) {
            self.usb.attach(serial);
        }

        fn detach(&mut self) {
            self.usb.detach();
        }

        fn send_bulk_in(&mut self, header: &[u8; 10], payload: &[u8]) -> Result<(), DriverError> {
            self.usb.send_bulk_in(header, payload)
        }

        fn send_interrupt(&mut self, message: &[u8]) -> Result<(), DriverError> {
            self.usb.send_interrupt(message)
        }
    }

    impl Logic for bridge::Bridge<'_> {
        fn start(&mut self, board: &mut Board, now: Instant) {
            bridge::Bridge::start(self, to_bridge(now), board);
        }

        fn handle(&mut self, board: &mut Board, now: Instant, event: HwEvent<'_>) {
            let event = match event {
                HwEvent::DeadlinePassed => bridge::Event::DeadlinePassed,
                HwEvent::CardReceived(bytes) => bridge::Event::CardReceived(bytes),
                HwEvent::CardParityError => bridge::Event::CardParityError,
                HwEvent::CardTransmitted => bridge::Event::CardTransmitted,
                HwEvent::UsbConfigured => bridge::Event::UsbConfigured,
                HwEvent::UsbDeconfigured => bridge::Event::UsbDeconfigured,
                HwEvent::UsbBulkOut(message) => bridge::Event::UsbBulkOut(message),
                HwEvent::UsbBulkInSent => bridge::Event::UsbBulkInSent,
                HwEvent::UsbInterruptSent => bridge::Event::UsbInterruptSent,
                HwEvent::UsbAbort(abort) => bridge::Event::UsbAbort {
                    slot: abort.slot,
                    seq: abort.seq,
                },
            };
            bridge::Bridge::handle(self, to_bridge(now), event, board);
        }
    }
}
