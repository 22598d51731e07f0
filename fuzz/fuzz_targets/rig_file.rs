//! Rig files: any text gives a rig description or one error line with a location inside the
//! text, never a panic (operators write these by hand).
#![no_main]

use libfuzzer_sys::fuzz_target;
use tessera_rig::config::RigDescription;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    match RigDescription::parse(text, "fuzz.toml") {
        Ok(description) => assert!(!description.name.is_empty()),
        Err(e) => {
            let line = e.to_string();
            assert!(!line.contains('\n'), "{line:?}");
            if let Some((l, c)) = e.location() {
                assert!(l >= 1 && c >= 1 && l <= text.lines().count() + 1, "{line}");
            }
        }
    }
});
