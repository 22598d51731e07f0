//! The Nitrokey HSM 2 firmware's entry point: clocks, drivers, then the event loop with the
//! bridge (feature `bridge`) or the bring-up logic.
#![no_std]
#![no_main]

use defmt_rtt as _;
use embassy_executor::Spawner;
use embassy_stm32::{bind_interrupts, peripherals, usb};
use panic_probe as _;
use tessera_firmware::board::{self, Leds, UsbPullUp};
use tessera_firmware::integration::{self, Board, Stm32Card, Stm32Timer, Stm32Usb};
use tessera_firmware::smartcard::{self, SmartCard};

bind_interrupts!(struct Irqs {
    USART1 => smartcard::InterruptHandler;
    USB_LP_CAN1_RX0 => usb::InterruptHandler<peripherals::USB>;
});

#[cfg(feature = "bridge")]
mod logic {
    use static_cell::ConstStaticCell;
    use tessera_bridge::{BootPolicy, Bridge, Config, TPDU_BUFFER_LEN};
    use tessera_firmware::integration::MESSAGE_CAPACITY;

    /// The boot policy, chosen by the `reader` feature (shown in the USB product string).
    const POLICY: BootPolicy = if cfg!(feature = "reader") {
        BootPolicy::Reader
    } else {
        BootPolicy::RequireCard
    };

    /// The stock identity and semantics: TPDU level, 271-byte messages.
    pub const CONFIG: Config = Config::stock(POLICY);

    const _: () = assert!(CONFIG.max_message_len as usize <= MESSAGE_CAPACITY);

    static BUFFER: ConstStaticCell<[u8; TPDU_BUFFER_LEN]> =
        ConstStaticCell::new([0; TPDU_BUFFER_LEN]);

    /// The bridge, with the MCU's 96-bit unique ID in hex (24 characters) as the board serial.
    pub fn bridge() -> Bridge<'static> {
        match Bridge::new(CONFIG, embassy_stm32::uid::uid_hex(), BUFFER.take()) {
            Ok(bridge) => bridge,
            Err(e) => defmt::panic!("bridge configuration refused: {}", e),
        }
    }

    pub const PRODUCT: &str = CONFIG.identity().product;
    pub const DESCRIPTOR: tessera_ccid::ClassDescriptorRepr = CONFIG.class_descriptor();
}

#[cfg(not(feature = "bridge"))]
mod logic {
    /// The stock product string (hardware.md §C).
    pub const PRODUCT: &str = "Nitrokey HSM";
    pub const DESCRIPTOR: tessera_ccid::ClassDescriptorRepr =
        tessera_ccid::ClassDescriptorRepr::NITROKEY_HSM2;
    pub fn bridge() -> tessera_firmware::integration::BringUp {
        Default::default()
    }
}

#[embassy_executor::main]
async fn main(spawner: Spawner) {
    let p = embassy_stm32::init(board::config());
    defmt::info!("tessera-firmware {}", env!("CARGO_PKG_VERSION"));

    let card = SmartCard::new(p.USART1, p.PA8, p.PB6, p.PB3, p.PB4, p.PB5, Irqs);
    let leds = Leds::new(p.PA7, p.PB0);
    let pull_up = UsbPullUp::new(p.PA15);
    let driver = usb::Driver::new(p.USB, Irqs, p.PA12, p.PA11);

    let board = Board {
        card: Stm32Card::new(card, leds),
        timer: Stm32Timer::default(),
        usb: Stm32Usb::new(pull_up, driver, spawner, logic::PRODUCT, logic::DESCRIPTOR),
    };
    integration::run(board, logic::bridge()).await
}
