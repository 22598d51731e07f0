//! The card contacts of hardware.md §A, driven by USART1 in smart-card mode: VCC (PB4 + PB5),
//! RST (PB3), CLK (PA8, USART1_CK, 3.6 MHz) and I/O (PB6, USART1_TX remapped, open drain).
//!
//! embassy-stm32 has no smart-card mode, so this driver is ours: the register code is in
//! [`regs`] (with RM0008 section numbers), the character-level logic (echo suppression,
//! character repetition, the receive ring) in [`crate::line_state`], and this module gives the
//! async API: interrupt-driven, no busy loops. It knows levels, rates and characters; the
//! sequencing of activation, ATR, PPS and T=1 (and every waiting time) belongs to the bridge,
//! which arms deadlines with `embassy-time` (the TIM2 time driver).
//!
//! Limits of the hardware (**INFERENCE** from RM0008 §27.3.11): no inverse convention (the F1
//! USART cannot invert or reverse bits; SmartCard-HSM cards use the direct convention), and no
//! clock stop (CLK stops only with the whole USART, at deactivation).

mod regs;

use core::cell::{Cell, RefCell};
use core::future::poll_fn;
use core::task::Poll;

use critical_section::Mutex;
use embassy_stm32::gpio::{AfType, Flex, OutputType, Speed};
use embassy_stm32::interrupt::typelevel::{Binding, Handler, Interrupt, USART1 as USART1_IRQ};
use embassy_stm32::peripherals::{PA8, PB3, PB4, PB5, PB6, USART1};
use embassy_stm32::Peri;
use embassy_sync::waitqueue::AtomicWaker;
use embassy_time::Instant;
use tessera_iso7816_3::rate::Etu;

use crate::line::{self, LineError};
use crate::line_state::{LineCounters, LineState, RxEvent, TxError};

static STATE: Mutex<RefCell<LineState>> = Mutex::new(RefCell::new(LineState::new()));
static LAST_ACTIVITY: Mutex<Cell<u64>> = Mutex::new(Cell::new(0));
static RX_WAKER: AtomicWaker = AtomicWaker::new();
static TX_WAKER: AtomicWaker = AtomicWaker::new();

/// The USART1 interrupt handler; bind it with `bind_interrupts!`.
pub struct InterruptHandler {
    _private: (),
}

impl Handler<USART1_IRQ> for InterruptHandler {
    unsafe fn on_interrupt() {
        let wake = critical_section::with(|cs| {
            let wake = regs::on_interrupt(&mut STATE.borrow_ref_mut(cs));
            if wake.activity {
                LAST_ACTIVITY.borrow(cs).set(Instant::now().as_ticks());
            }
            wake
        });
        if wake.rx {
            RX_WAKER.wake();
        }
        if wake.tx {
            TX_WAKER.wake();
        }
    }
}

/// The card contacts and the line. One per board; it owns USART1 and the five pins.
pub struct SmartCard<'d> {
    ck: Flex<'d>,
    io: Flex<'d>,
    rst: Flex<'d>,
    // PB4 and PB5 are owned here and configured as outputs; they switch together through
    // GPIOB_BSRR (`regs::set_vcc`).
    _vcc: [Flex<'d>; 2],
    vcc_on: bool,
    clock_on: bool,
    brr: u16,
    guard_time: u8,
    n: u8,
    character_repetition: bool,
    _usart: Peri<'d, USART1>,
}

impl<'d> SmartCard<'d> {
    /// Take USART1 and the card pins, and leave the card deactivated (ISO/IEC 7816-3:2006 §6.4:
    /// RST, CLK, I/O low and VCC off) at the default rate (F = 372, D = 1: 9677 bps).
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        usart: Peri<'d, USART1>,
        ck: Peri<'d, PA8>,
        io: Peri<'d, PB6>,
        rst: Peri<'d, PB3>,
        vcc_a: Peri<'d, PB4>,
        vcc_b: Peri<'d, PB5>,
        _irq: impl Binding<USART1_IRQ, InterruptHandler> + 'd,
    ) -> Self {
        embassy_stm32::rcc::enable_and_reset::<USART1>();
        regs::remap_usart1_to_pb6();
        let mut card = SmartCard {
            ck: Flex::new(ck),
            io: Flex::new(io),
            rst: Flex::new(rst),
            _vcc: [Flex::new(vcc_a), Flex::new(vcc_b)],
            vcc_on: false,
            clock_on: false,
            brr: line::brr(Etu::DEFAULT, line::CARD_CLOCK_PSC).unwrap_or(7440),
            guard_time: 0,
            n: 0,
            character_repetition: false,
            _usart: usart,
        };
        regs::set_vcc(false);
        for pin in &mut card._vcc {
            pin.set_as_output(Speed::Low);
        }
        card.rst.set_low();
        card.rst.set_as_output(Speed::Low);
        card.hold_clock_and_io_low();
        regs::configure(line::CARD_CLOCK_PSC, card.brr, 0, false);
        USART1_IRQ::unpend();
        // SAFETY: the handler only touches the line state through a critical section and the
        // USART1 registers, which this driver owns.
        unsafe { USART1_IRQ::enable() };
        card
    }

    fn hold_clock_and_io_low(&mut self) {
        self.ck.set_low();
        self.ck.set_as_output(Speed::Medium);
        self.io.set_low();
        self.io.set_as_output(Speed::Medium);
    }

    /// Switch VCC (PB4 and PB5 together). Switching it on puts I/O in reception (released,
    /// open drain); switching it off also stops the clock and pulls RST and I/O low first, the
    /// deactivation of ISO/IEC 7816-3:2006 §6.4, so that the card is never powered through its
    /// I/O or RST.
    pub fn set_vcc(&mut self, on: bool) {
        if on {
            regs::set_vcc(true);
            self.io
                .set_as_af_unchecked(AfType::output(OutputType::OpenDrain, Speed::Medium));
        } else {
            self.set_rst(false);
            self.set_clock(false);
            self.hold_clock_and_io_low();
            regs::set_vcc(false);
            critical_section::with(|cs| {
                let mut state = STATE.borrow_ref_mut(cs);
                state.abort_send();
                state.clear_rx();
            });
            TX_WAKER.wake();
        }
        self.vcc_on = on;
    }

    /// Whether VCC is on.
    pub fn vcc(&self) -> bool {
        self.vcc_on
    }

    /// Drive RST (PB3): `true` is state H.
    pub fn set_rst(&mut self, high: bool) {
        if high {
            self.rst.set_high();
        } else {
            self.rst.set_low();
        }
    }

    /// Start or stop the card clock (3.6 MHz on PA8). Starting it enables the USART, so the
    /// line receives from then on; it is refused (ignored) while VCC is off.
    pub fn set_clock(&mut self, on: bool) {
        if on && !self.vcc_on {
            return;
        }
        if on && !self.clock_on {
            regs::configure(
                line::CARD_CLOCK_PSC,
                self.brr,
                self.guard_time,
                self.character_repetition,
            );
            self.ck
                .set_as_af_unchecked(AfType::output(OutputType::PushPull, Speed::VeryHigh));
            regs::enable();
        } else if !on && self.clock_on {
            regs::disable();
            self.ck.set_low();
            self.ck.set_as_output(Speed::Medium);
        }
        self.clock_on = on;
    }

    /// Set the etu (F and D): BRR = 2 × PSC × F / D (see [`line::brr`]). Call it between
    /// exchanges, e.g. after a PPS exchange (ISO/IEC 7816-3:2006 §9).
    pub fn set_etu(&mut self, etu: Etu) -> Result<(), LineError> {
        self.brr = line::brr(etu, line::CARD_CLOCK_PSC)?;
        regs::set_brr(self.brr);
        Ok(())
    }

    /// The bit rate in use, bits per second.
    pub fn baud(&self) -> u32 {
        line::baud(line::PCLK2_HZ, self.brr)
    }

    /// Set the extra guard time N (TC1, ISO/IEC 7816-3:2006 §8.3).
    pub fn set_extra_guard_time(&mut self, n: u8) {
        self.n = n;
        self.guard_time = line::guard_time(n, self.character_repetition);
        regs::set_guard_time(self.guard_time);
    }

    /// Turn character repetition on (T=0 and, **GUESS**, the ATR: the error signal on a parity
    /// error and repetition of refused characters, ISO/IEC 7816-3:2006 §7.3) or off (T=1, where
    /// parity errors are reported and the block is retried instead).
    pub fn set_character_repetition(&mut self, on: bool) {
        self.character_repetition = on;
        critical_section::with(|cs| STATE.borrow_ref_mut(cs).set_character_repetition(on));
        regs::set_nack(on);
        self.set_extra_guard_time(self.n);
    }

    /// Start sending `bytes` (at most [`crate::line_state::TX_CAPACITY`]) and return at once;
    /// [`SmartCard::transmitted`] tells when the last one has echoed. Refused while the clock
    /// is stopped ([`TxError::Aborted`]) or a transmission runs ([`TxError::Busy`]).
    pub fn start_transmit(&mut self, bytes: &[u8]) -> Result<(), TxError> {
        if !self.clock_on {
            return Err(TxError::Aborted);
        }
        critical_section::with(|cs| STATE.borrow_ref_mut(cs).start_send(bytes))?;
        regs::kick_transmitter();
        Ok(())
    }

    /// Wait for the end of the transmission started by [`SmartCard::start_transmit`]: `Ok`
    /// once its last character has echoed. Cancel-safe (the transmission goes on; the result
    /// waits for the next call). Never returns if nothing was started.
    pub async fn transmitted(&self) -> Result<(), TxError> {
        poll_fn(|cx| {
            TX_WAKER.register(cx.waker());
            match critical_section::with(|cs| STATE.borrow_ref_mut(cs).take_send_result()) {
                Some(result) => Poll::Ready(result),
                None => Poll::Pending,
            }
        })
        .await
    }

    /// Cancel a running transmission (after the character on the line).
    pub fn abort_transmit(&mut self) {
        critical_section::with(|cs| STATE.borrow_ref_mut(cs).abort_send());
    }

    /// Send `bytes` and wait until the last one has echoed. Cancel-safe: dropping the future
    /// aborts the transmission after the current character.
    pub async fn send(&mut self, bytes: &[u8]) -> Result<(), TxError> {
        self.start_transmit(bytes)?;
        struct AbortOnDrop;
        impl Drop for AbortOnDrop {
            fn drop(&mut self) {
                critical_section::with(|cs| STATE.borrow_ref_mut(cs).abort_send());
            }
        }
        let guard = AbortOnDrop;
        let result = self.transmitted().await;
        core::mem::forget(guard);
        result
    }

    /// The next event from the card: a character, a character with a parity error, or a loss.
    /// Cancel-safe (nothing is taken until it is returned): race it against a deadline.
    pub async fn receive(&self) -> RxEvent {
        poll_fn(|cx| {
            RX_WAKER.register(cx.waker());
            match critical_section::with(|cs| STATE.borrow_ref_mut(cs).pop()) {
                Some(event) => Poll::Ready(event),
                None => Poll::Pending,
            }
        })
        .await
    }

    /// The next event from the card if one is waiting.
    pub fn try_receive(&self) -> Option<RxEvent> {
        critical_section::with(|cs| STATE.borrow_ref_mut(cs).pop())
    }

    /// Forget whatever was received and not read.
    pub fn clear_received(&mut self) {
        critical_section::with(|cs| STATE.borrow_ref_mut(cs).clear_rx());
    }

    /// When the last character crossed the line (received or echoed), as the interrupt saw
    /// it: about 11.5 etu after that character's leading edge. Waiting times counted from here
    /// are therefore that much longer than ISO's, never shorter.
    pub fn last_activity(&self) -> Instant {
        Instant::from_ticks(critical_section::with(|cs| LAST_ACTIVITY.borrow(cs).get()))
    }

    /// Error counters since start-up.
    pub fn counters(&self) -> LineCounters {
        critical_section::with(|cs| STATE.borrow_ref(cs).counters())
    }
}
