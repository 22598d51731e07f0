//! The hardware the bridge drives, as three small traits: the card contacts
//! ([`CardContacts`]), one deadline timer ([`DeadlineTimer`]) and the USB device
//! ([`UsbDevice`]). [`Hardware`] is all three at once.
//!
//! The traits are **non-blocking command sinks**: every method returns at once, and whatever
//! happens later (bytes from the card, the deadline, a USB message, a transfer that completed)
//! comes back to the bridge as an [`Event`](crate::Event) through
//! [`Bridge::handle`](crate::Bridge::handle). Nothing here reads a clock or waits.
//!
//! Two implementations exist: the STM32F103 firmware (`firmware/`: GPIOs, USART1 in smart-card
//! mode, a hardware timer, embassy-usb) and the virtual board (modelled time, a virtual card
//! line, virtual USB). Faults are injected by wrapping an implementation (a wrapper that drops
//! bytes, flips bits, or pulls the card), never by branches in the bridge.
//!
//! Where a method can fail it returns an error whose [`Error::kind`] is an [`ErrorKind`], in
//! the style of embedded-hal. The bridge reacts to the kind, not to the concrete error: a card
//! transmission that fails ends the exchange with a hardware error (CCID `HW_ERROR`); a USB
//! message that cannot be queued is dropped (the host times out and retries, as after a lost
//! packet).
//!
//! # The whole call sequence
//!
//! 1. The driver builds the [`Bridge`](crate::Bridge) and calls
//!    [`Bridge::start`](crate::Bridge::start) once, with the card contacts in the idle state
//!    of ISO/IEC 7816-3 §6.1 (VCC off, RST low, CLK stopped, I/O low), D+ pull-up off, the timer
//!    disarmed. The bridge calls [`UsbDevice::detach`] first.
//! 2. Whenever something happens the driver calls [`Bridge::handle`](crate::Bridge::handle)
//!    with the current instant and the event. During `start` and `handle` the bridge calls the
//!    methods below; it never calls them at any other time.
//! 3. The timer: the bridge keeps at most one deadline armed ([`DeadlineTimer::arm`] replaces
//!    the previous one). When it passes, the driver feeds
//!    [`Event::DeadlinePassed`](crate::Event::DeadlinePassed). A late or spurious event is
//!    harmless: the bridge compares its own deadlines with `now`.

use core::fmt;

/// What went wrong in a hardware call, coarsely, so the bridge can react without knowing the
/// driver's error type (embedded-hal style).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
#[non_exhaustive]
pub enum ErrorKind {
    /// The peripheral is still busy with the previous request (a transmission not finished).
    Busy,
    /// More bytes than the driver's buffer holds.
    TooLong,
    /// The peripheral is not in a state to do this (USB not configured, card not powered).
    NotReady,
    /// Anything else.
    Other,
}

impl fmt::Display for ErrorKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            ErrorKind::Busy => "peripheral busy",
            ErrorKind::TooLong => "too many bytes for the driver's buffer",
            ErrorKind::NotReady => "peripheral not ready",
            ErrorKind::Other => "hardware error",
        })
    }
}

/// A driver error: anything that can say which [`ErrorKind`] it is.
pub trait Error: fmt::Debug {
    /// The kind of error.
    fn kind(&self) -> ErrorKind;
}

impl Error for ErrorKind {
    fn kind(&self) -> ErrorKind {
        *self
    }
}

impl Error for core::convert::Infallible {
    fn kind(&self) -> ErrorKind {
        match *self {}
    }
}

/// The character timing of the I/O line: the etu (F / D card clock cycles, ISO/IEC 7816-3
/// §7.1) and the character guard time.
///
/// The driver sets its UART from this: on the STM32 in smart-card mode, the baud-rate divider
/// gives one etu per bit (F / D card clocks), and the guard time register gives the spacing
/// between the characters it sends.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct LineRate {
    /// F, the clock rate conversion integer (372 until a PPS says otherwise).
    pub f: u16,
    /// D, the baud rate adjustment integer (1 until a PPS says otherwise).
    pub d: u8,
    /// The least time between the leading edges of two consecutive characters the reader
    /// sends, in etu: CGT = 12 + N etu, or 11 etu for N = 255 under T=1 (ISO/IEC 7816-3 §8.3,
    /// §10.2, §11.2). 12 during the ATR.
    pub cgt_etu: u16,
}

impl LineRate {
    /// The rate of the ATR and of a PPS exchange: F = 372, D = 1, CGT 12 etu (§8.1).
    pub const INITIAL: LineRate = LineRate {
        f: 372,
        d: 1,
        cgt_etu: 12,
    };

    /// The bit rate at `clock_hz`: f × D / F, rounded down (§7.1).
    pub const fn baud(&self, clock_hz: u32) -> u32 {
        if self.f == 0 {
            return 0;
        }
        let bps = (clock_hz as u64 * self.d as u64) / self.f as u64;
        if bps > u32::MAX as u64 {
            u32::MAX
        } else {
            bps as u32
        }
    }
}

/// The contacts of the card: VCC, RST, CLK and the I/O line (ISO/IEC 7816-3 §5, §6).
///
/// # Call sequence
///
/// Activation (§6.2), always in this order:
/// 1. [`set_vcc`](Self::set_vcc)`(true)`,
/// 2. [`set_rate`](Self::set_rate)`(`[`LineRate::INITIAL`]`)`,
/// 3. [`set_clock`](Self::set_clock)`(true)`: CLK starts at the configured card clock and
///    the I/O line goes to reception (high, pulled up),
/// 4. after at least 400 clock cycles with RST low, [`set_rst`](Self::set_rst)`(true)`.
///
/// The card then sends its ATR, which the driver reports byte by byte (or in chunks) as
/// [`Event::CardReceived`](crate::Event::CardReceived).
///
/// Exchanges: [`transmit`](Self::transmit) sends characters; when the last one is on the line
/// the driver reports [`Event::CardTransmitted`](crate::Event::CardTransmitted), and the bridge
/// starts its waiting time from there. The bridge calls `transmit` again only after that event
/// (or, should the event be lost, after twice the time the characters take: the driver then
/// drops whatever is left of the old bytes). Characters the card sends are reported as they
/// arrive. The driver must not report the
/// echo of its own characters (on a half-duplex smart-card USART every character sent is also
/// received) and must give up on a character after its own parity retries (the smart-card
/// NACK), reporting [`Event::CardParityError`](crate::Event::CardParityError) for it.
///
/// After a PPS the bridge calls [`set_rate`](Self::set_rate) with the new F and D.
///
/// Deactivation (§6.4), always in this order: `set_rst(false)`, `set_clock(false)` (CLK
/// stopped low, I/O low), `set_vcc(false)`. The bridge also stops the clock alone, with the card
/// powered, when the host asks for it (CCID `IccClock`) and the card allows it.
pub trait CardContacts {
    /// The driver's error type.
    type Error: Error;

    /// Card supply on or off. On the Nitrokey board, VCC is two GPIOs in parallel (PB4 and PB5
    /// on hardware revisions 1 to 3).
    fn set_vcc(&mut self, on: bool);

    /// The RST contact: high (card running) or low (card in reset).
    fn set_rst(&mut self, high: bool);

    /// The CLK contact: running at the card clock frequency of the configuration
    /// ([`CardConfig::clock_hz`](crate::CardConfig::clock_hz), 3.6 MHz on the Nitrokey), or
    /// stopped in state L. Starting the clock also puts I/O into reception; stopping it as
    /// part of deactivation puts I/O low.
    fn set_clock(&mut self, running: bool);

    /// The etu and guard time for characters from now on.
    fn set_rate(&mut self, rate: LineRate);

    /// Send these characters on I/O, in order, at the current rate and guard time; report
    /// [`Event::CardTransmitted`](crate::Event::CardTransmitted) when the last one has gone.
    /// The driver copies the bytes: at most 259 (a T=1 block; T=0 sends a 5-byte header,
    /// then at most 255 data bytes).
    fn transmit(&mut self, bytes: &[u8]) -> Result<(), Self::Error>;
}

/// One deadline on the driver's monotonic clock.
///
/// # Call sequence
///
/// The bridge calls [`arm`](Self::arm) with the earliest instant at which it needs to act, and
/// [`disarm`](Self::disarm) when it needs nothing. Arming replaces the previous deadline. When
/// the armed instant has passed, the driver feeds
/// [`Event::DeadlinePassed`](crate::Event::DeadlinePassed) once (with `now` at or after the
/// instant); an instant already in the past fires as soon as possible.
pub trait DeadlineTimer {
    /// Fire at `at` (replacing any armed deadline).
    fn arm(&mut self, at: crate::Instant);

    /// Fire no more.
    fn disarm(&mut self);
}

/// The USB device: the D+ pull-up, the serial-number string, and the CCID interface's bulk-IN
/// and interrupt-IN endpoints (the bulk-OUT endpoint comes back as
/// [`Event::UsbBulkOut`](crate::Event::UsbBulkOut)).
///
/// # Call sequence
///
/// 1. [`attach`](Self::attach)`(serial)`: the driver sets the iSerialNumber string, then pulls
///    D+ up so the host enumerates the device. The other descriptors are fixed: see
///    [`Identity`](crate::Identity) and [`Config::class_descriptor`](crate::Config::class_descriptor).
///    [`detach`](Self::detach) releases D+.
/// 2. When the host has configured the device the driver feeds
///    [`Event::UsbConfigured`](crate::Event::UsbConfigured); after a bus reset, a suspend or
///    a de-configuration, [`Event::UsbDeconfigured`](crate::Event::UsbDeconfigured).
/// 3. Each complete bulk-OUT message (reassembled from packets by its `dwLength`, see
///    [`BulkOutAssembler`](crate::BulkOutAssembler)) is fed as
///    [`Event::UsbBulkOut`](crate::Event::UsbBulkOut).
/// 4. [`send_bulk_in`](Self::send_bulk_in) queues one bulk-IN message; the driver sends it in
///    packets of `wMaxPacketSize` (with a zero-length packet if the total is a multiple of it)
///    and then feeds [`Event::UsbBulkInSent`](crate::Event::UsbBulkInSent). The bridge never
///    queues a second message before that event. The same holds for
///    [`send_interrupt`](Self::send_interrupt) and
///    [`Event::UsbInterruptSent`](crate::Event::UsbInterruptSent).
/// 5. The class request ABORT (CCID Rev 1.1 §5.3.1) is acknowledged by the driver and fed as
///    [`Event::UsbAbort`](crate::Event::UsbAbort).
pub trait UsbDevice {
    /// The driver's error type.
    type Error: Error;

    /// Set the serial-number string (at most 24 characters) and connect (D+ pull-up on).
    fn attach(&mut self, serial: &str);

    /// Disconnect (D+ pull-up off).
    fn detach(&mut self);

    /// Queue one bulk-IN message: the 10-byte header, then the payload (CCID Rev 1.1 §6.2).
    /// The driver copies both (at most `dwMaxCCIDMessageLength` bytes in all).
    fn send_bulk_in(&mut self, header: &[u8; 10], payload: &[u8]) -> Result<(), Self::Error>;

    /// Queue one interrupt-IN message (CCID Rev 1.1 §6.3; two bytes for one slot).
    fn send_interrupt(&mut self, message: &[u8]) -> Result<(), Self::Error>;
}

/// Everything the bridge drives: card contacts, deadline timer and USB device.
///
/// Implemented for every type that implements the three traits; [`Parts`] puts three separate
/// implementations together.
pub trait Hardware: CardContacts + DeadlineTimer + UsbDevice {}

impl<T: CardContacts + DeadlineTimer + UsbDevice + ?Sized> Hardware for T {}

impl<T: CardContacts + ?Sized> CardContacts for &mut T {
    type Error = T::Error;
    fn set_vcc(&mut self, on: bool) {
        T::set_vcc(self, on);
    }
    fn set_rst(&mut self, high: bool) {
        T::set_rst(self, high);
    }
    fn set_clock(&mut self, running: bool) {
        T::set_clock(self, running);
    }
    fn set_rate(&mut self, rate: LineRate) {
        T::set_rate(self, rate);
    }
    fn transmit(&mut self, bytes: &[u8]) -> Result<(), Self::Error> {
        T::transmit(self, bytes)
    }
}

impl<T: DeadlineTimer + ?Sized> DeadlineTimer for &mut T {
    fn arm(&mut self, at: crate::Instant) {
        T::arm(self, at);
    }
    fn disarm(&mut self) {
        T::disarm(self);
    }
}

impl<T: UsbDevice + ?Sized> UsbDevice for &mut T {
    type Error = T::Error;
    fn attach(&mut self, serial: &str) {
        T::attach(self, serial);
    }
    fn detach(&mut self) {
        T::detach(self);
    }
    fn send_bulk_in(&mut self, header: &[u8; 10], payload: &[u8]) -> Result<(), Self::Error> {
        T::send_bulk_in(self, header, payload)
    }
    fn send_interrupt(&mut self, message: &[u8]) -> Result<(), Self::Error> {
        T::send_interrupt(self, message)
    }
}

/// Three separate implementations (card contacts, timer, USB) as one [`Hardware`]: the usual
/// way to wrap just one of them, e.g. the card line in a fault injector.
#[derive(Debug, Default)]
pub struct Parts<C, T, U> {
    /// The card contacts.
    pub card: C,
    /// The deadline timer.
    pub timer: T,
    /// The USB device.
    pub usb: U,
}

impl<C: CardContacts, T, U> CardContacts for Parts<C, T, U> {
    type Error = C::Error;
    fn set_vcc(&mut self, on: bool) {
        self.card.set_vcc(on);
    }
    fn set_rst(&mut self, high: bool) {
        self.card.set_rst(high);
    }
    fn set_clock(&mut self, running: bool) {
        self.card.set_clock(running);
    }
    fn set_rate(&mut self, rate: LineRate) {
        self.card.set_rate(rate);
    }
    fn transmit(&mut self, bytes: &[u8]) -> Result<(), Self::Error> {
        self.card.transmit(bytes)
    }
}

impl<C, T: DeadlineTimer, U> DeadlineTimer for Parts<C, T, U> {
    fn arm(&mut self, at: crate::Instant) {
        self.timer.arm(at);
    }
    fn disarm(&mut self) {
        self.timer.disarm();
    }
}

impl<C, T, U: UsbDevice> UsbDevice for Parts<C, T, U> {
    type Error = U::Error;
    fn attach(&mut self, serial: &str) {
        self.usb.attach(serial);
    }
    fn detach(&mut self) {
        self.usb.detach();
    }
    fn send_bulk_in(&mut self, header: &[u8; 10], payload: &[u8]) -> Result<(), Self::Error> {
        self.usb.send_bulk_in(header, payload)
    }
    fn send_interrupt(&mut self, message: &[u8]) -> Result<(), Self::Error> {
        self.usb.send_interrupt(message)
    }
}
