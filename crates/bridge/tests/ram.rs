//! The RAM the bridge takes: its own state plus the buffer the driver lends it. The firmware's
//! budget is 12 KiB of static RAM (issue 4); `cargo xtask size` measures the whole binary.

use tessera_bridge::{BootPolicy, Bridge, Config, Exchange, APDU_BUFFER_LEN, TPDU_BUFFER_LEN};

#[test]
fn bridge_size_for_both_exchange_levels() {
    let state = core::mem::size_of::<Bridge<'static>>();
    for config in [
        Config::stock(BootPolicy::RequireCard),
        Config::apdu(BootPolicy::RequireCard),
    ] {
        let (level, buffer) = match config.exchange {
            Exchange::Tpdu => ("TPDU", TPDU_BUFFER_LEN),
            Exchange::ExtendedApdu => ("extended APDU", APDU_BUFFER_LEN),
        };
        let message = config.max_message_len as usize;
        println!(
            "{level:>13}: Bridge {state} B + lent buffer {buffer} B = {} B; the driver adds \
             2 x {message} B of USB message buffers (bulk OUT and IN): {} B in all",
            state + buffer,
            state + buffer + 2 * message,
        );
        // At most 8 KiB of the 12 KiB budget: the rest is for the stack and the executor.
        assert!(state + buffer + 2 * message <= 8 * 1024);
    }
    // The bridge's own state does not depend on the exchange level: the level only changes
    // the lent buffer and the message size. On thumbv7m-none-eabi (32-bit pointers) it is
    // smaller; lib.rs checks it at compile time there.
    assert!(state <= 1280, "Bridge state {state} B");
}
