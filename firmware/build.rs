//! Writes the linker's `memory.x` for the STM32F103TB (hardware.md §A, §E) into OUT_DIR.
//!
//! | region      | SWD build (default)       | `--features dfu-base`                  |
//! |-------------|---------------------------|----------------------------------------|
//! | bootloader  | none                      | 0x0800_0000..0x0800_2000 (dapboot, 8 KiB) |
//! | application | 0x0800_0000, 110 KiB      | 0x0800_2000, 102 KiB                   |
//! | user data   | 0x0801_B800..0x0802_0000 (18 KiB, never linked into)              ||
//! | RAM         | 0x2000_0000, 20 KiB (statics from the bottom, stack from the top)  ||
//!
//! The application stops at the user-data area at 110 KiB that the stock firmware and dapboot
//! keep (dapboot writes nothing above it), so a board keeps whatever is stored there whichever
//! way it is flashed. The flash is 128 KiB in 1 KiB pages.
//!
//! It also reserves the stack: the link fails unless `STACK_RESERVE` bytes are left between the
//! end of the statics and the top of RAM (`cargo xtask size` reports against the same figure).

use std::env;
use std::fs;
use std::path::PathBuf;

const FLASH_START: u32 = 0x0800_0000;
/// dapboot occupies the first 8 KiB (hardware.md §E).
const BOOTLOADER_LEN: u32 = 8 * 1024;
/// The user-data area starts at 110 KiB (hardware.md §E).
const USER_DATA_START: u32 = FLASH_START + 110 * 1024;
const RAM_START: u32 = 0x2000_0000;
const RAM_LEN: u32 = 20 * 1024;
/// Keep in step with `STACK_BUDGET` in xtask/src/size.rs.
const STACK_RESERVE: u32 = 4 * 1024;

fn main() {
    let dfu_base = env::var_os("CARGO_FEATURE_DFU_BASE").is_some();
    let origin = if dfu_base {
        FLASH_START + BOOTLOADER_LEN
    } else {
        FLASH_START
    };
    let length = USER_DATA_START - origin;
    let memory_x = format!(
        "/* Written by build.rs: application base {origin:#010x} ({how}). */
MEMORY
{{
  FLASH : ORIGIN = {origin:#010x}, LENGTH = {flash_k}K
  RAM   : ORIGIN = {RAM_START:#010x}, LENGTH = {ram_k}K
}}

/* The stack grows down from the top of RAM: keep {STACK_RESERVE} bytes for it. */
_stack_reserve = {STACK_RESERVE};
ASSERT(_stack_start - _stack_end >= _stack_reserve,
  \"tessera-firmware: the statics leave less than the stack reserve in RAM (see build.rs)\");
",
        how = if dfu_base {
            "behind the dapboot DFU bootloader"
        } else {
            "flashed over SWD"
        },
        flash_k = length / 1024,
        ram_k = RAM_LEN / 1024,
    );
    let out = PathBuf::from(env::var_os("OUT_DIR").unwrap_or_default());
    if let Err(e) = fs::write(out.join("memory.x"), memory_x) {
        println!("cargo::error=cannot write memory.x: {e}");
        return;
    }
    println!("cargo::rustc-link-search={}", out.display());
    println!("cargo::rerun-if-changed=build.rs");
}
