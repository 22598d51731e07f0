//! The Nitrokey HSM 2 board, hardware revisions 1 to 3 (hardware.md §A): STM32F103TB (QFN36),
//! 12 MHz crystal, the card on USART1, the D+ pull-up on PA15, two LEDs.
//!
//! | signal          | pin  | use                                                        |
//! |-----------------|------|------------------------------------------------------------|
//! | card CLK        | PA8  | USART1_CK, alternate function push-pull, 3.6 MHz           |
//! | card I/O        | PB6  | USART1_TX remapped, alternate function open-drain          |
//! | card RST        | PB3  | GPIO push-pull (JTDO: JTAG is disabled, SWD kept)          |
//! | card VCC        | PB4 + PB5 | two GPIOs in parallel, switched together (PB4 is NJTRST) |
//! | USB D+ pull-up  | PA15 | GPIO push-pull, high = attached (JTDI)                     |
//! | USB D− / D+     | PA11 / PA12 | the USB peripheral                                  |
//! | LEDs            | PA7 (card), PB0                                                   ||
//!
//! Hardware revision 4 (BGA, USART3, other pins) and 5 (GD32) are not supported: this module
//! is the place a second pin map would go.

use embassy_stm32::gpio::{Level, Output, Speed, SwjCfg};
use embassy_stm32::peripherals::{PA15, PA7, PB0};
use embassy_stm32::rcc::{
    AHBPrescaler, APBPrescaler, Hse, HseMode, Pll, PllMul, PllPreDiv, PllSource, Sysclk,
};
use embassy_stm32::time::Hertz;
use embassy_stm32::{Config, Peri};

/// The crystal: 12 MHz (ABM8G, hardware.md §A).
pub const HSE_HZ: u32 = 12_000_000;

/// The clock tree of hardware.md §A: HSE 12 MHz × PLL 6 = SYSCLK 72 MHz; AHB 72 MHz; APB1
/// 36 MHz (its maximum); APB2 72 MHz (USART1, so the card clock is 72 MHz / 20 = 3.6 MHz); USB
/// 48 MHz = PLL / 1.5 (embassy picks USBPRE from the PLL frequency); flash wait states set by
/// embassy for 72 MHz. JTAG is disabled and SWD kept, which frees PA15, PB3 and PB4.
pub fn config() -> Config {
    let mut config = Config::default();
    config.rcc.hse = Some(Hse {
        freq: Hertz(HSE_HZ),
        mode: HseMode::Oscillator,
    });
    config.rcc.pll = Some(Pll {
        src: PllSource::HSE,
        prediv: PllPreDiv::DIV1,
        mul: PllMul::MUL6,
    });
    config.rcc.sys = Sysclk::PLL1_P;
    config.rcc.ahb_pre = AHBPrescaler::DIV1;
    config.rcc.apb1_pre = APBPrescaler::DIV2;
    config.rcc.apb2_pre = APBPrescaler::DIV1;
    config.swj = SwjCfg::SwdOnly;
    config
}

/// The 1.5 kΩ pull-up on D+, driven by PA15 (hardware.md §A, `USB_DISCONNECT_PIN` of the stock
/// firmware). While it is off the host sees no device; the boot policy decides when to attach.
pub struct UsbPullUp<'d> {
    pin: Output<'d>,
}

impl<'d> UsbPullUp<'d> {
    /// Take PA15, detached (low).
    pub fn new(pin: Peri<'d, PA15>) -> Self {
        UsbPullUp {
            pin: Output::new(pin, Level::Low, Speed::Low),
        }
    }

    /// Connect the pull-up: the host sees a full-speed device arrive.
    pub fn attach(&mut self) {
        self.pin.set_high();
    }

    /// Disconnect the pull-up: the host sees the device leave.
    pub fn detach(&mut self) {
        self.pin.set_low();
    }

    /// Whether the pull-up is connected.
    pub fn is_attached(&self) -> bool {
        self.pin.is_set_high()
    }
}

/// The two LEDs (active high, **GUESS**: the schematic's polarity was not checked).
pub struct Leds<'d> {
    /// PA7, the smart-card LED.
    pub card: Output<'d>,
    /// PB0, the second LED ("OATH" on the Pro).
    pub other: Output<'d>,
}

impl<'d> Leds<'d> {
    /// Take PA7 and PB0, both off.
    pub fn new(card: Peri<'d, PA7>, other: Peri<'d, PB0>) -> Self {
        Leds {
            card: Output::new(card, Level::Low, Speed::Low),
            other: Output::new(other, Level::Low, Speed::Low),
        }
    }
}
