//! Property tests of the rig-file reader: any text gives a description or one error whose
//! location lies inside the text, never a panic; a valid file with one line changed or removed
//! still gives one of the two.

use proptest::prelude::*;
use tessera_rig::config::RigDescription;

const VIRTUAL: &str = include_str!("../virtual.toml");
const LAB: &str = include_str!("../example-lab.toml");

fn check(text: &str) {
    match RigDescription::parse(text, "prop.toml") {
        Ok(description) => {
            assert!(!description.name.is_empty());
        }
        Err(e) => {
            let line = e.to_string();
            assert!(!line.contains('\n'), "one line: {line:?}");
            if let Some((l, c)) = e.location() {
                let lines = text.lines().count().max(1);
                assert!(l >= 1 && l <= lines + 1, "line {l} of {lines}: {line}");
                assert!(c >= 1, "{line}");
            }
        }
    }
}

proptest! {
    #[test]
    fn arbitrary_text_never_panics(text in "\\PC{0,400}") {
        check(&text);
    }

    #[test]
    fn a_valid_file_with_a_line_removed_or_changed_never_panics(
        lab in any::<bool>(),
        index in any::<prop::sample::Index>(),
        replacement in prop_oneof![
            Just(String::new()),
            "[a-z_]{1,12} = \"[a-z0-9:._-]{0,16}\"",
            "[a-z_]{1,12} = -?[0-9]{1,6}",
            "\\[\\[(board|slot)\\]\\]",
            "\\PC{0,40}",
        ],
    ) {
        let base = if lab { LAB } else { VIRTUAL };
        let mut lines: Vec<&str> = base.lines().collect();
        let i = index.index(lines.len());
        lines[i] = &replacement;
        check(&lines.join("\n"));
    }
}
