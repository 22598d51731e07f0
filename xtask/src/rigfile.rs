//! The little that xtask reads from a rig file (`rig/*.toml`) to choose what to build and run:
//! the top-level `name` and `backend`, and each `[[board]]`'s `name`, `kind` and `firmware`.
//!
//! xtask stays std-only, so this is a line scan of the TOML subset rig files use (top-level
//! keys, `[table]` and `[[array-of-tables]]` headers, `key = "string"` pairs, `#` comments), not
//! a TOML parser. The rig file is checked in full by `tessera-rig` (the conformance tests and
//! `tessera-flash` load it), whose errors name the line, the column and the key. This scan only
//! makes xtask fail early, with the file name, when the file is missing or has no usable
//! `backend`. It never prints a line of the file: a rig file may be misused to hold a PIN, and
//! errors must not repeat it.

use std::fmt;
use std::path::{Path, PathBuf};

/// Which backend a rig file asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    /// Virtual boards and cards, no hardware (`rig/virtual.toml`).
    Virtual,
    /// Real boards on a rig controller, hubs and SWD probes.
    Real,
}

impl Backend {
    /// The word used in rig files.
    pub fn as_str(self) -> &'static str {
        match self {
            Backend::Virtual => "virtual",
            Backend::Real => "real",
        }
    }
}

impl fmt::Display for Backend {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A `[[board]]` table, as far as xtask needs it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct BoardEntry {
    /// `name`: the `dut` part of test names.
    pub name: Option<String>,
    /// `kind` (`nitrokey-hsm2`).
    pub kind: Option<String>,
    /// `firmware`: `tessera-require-card`, `tessera-reader` or `stock`.
    pub firmware: Option<String>,
}

/// What xtask read from a rig file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RigFile {
    /// The file.
    pub path: PathBuf,
    /// The top-level `name`, when it is a string.
    pub name: Option<String>,
    /// The top-level `backend`.
    pub backend: Backend,
    /// The `[[board]]` tables in file order.
    pub boards: Vec<BoardEntry>,
}

impl RigFile {
    /// Reads `path` and scans it; one line of error naming the file as `shown` otherwise.
    pub fn load(path: &Path, shown: &str) -> Result<RigFile, String> {
        let text = std::fs::read_to_string(path).map_err(|e| format!("rig file {shown}: {e}"))?;
        let mut rig = RigFile::scan(&text, Path::new(shown))?;
        rig.path = path.to_path_buf();
        Ok(rig)
    }

    /// Scans `text` (the contents of `path`, which names it in errors).
    pub fn scan(text: &str, path: &Path) -> Result<RigFile, String> {
        let mut name = None;
        let mut backend: Option<(usize, Option<String>)> = None;
        let mut boards: Vec<BoardEntry> = Vec::new();
        let mut section = Section::Top;
        for (index, raw) in text.lines().enumerate() {
            let line = strip_comment(raw).trim();
            if line.is_empty() {
                continue;
            }
            if let Some(header) = line.strip_prefix("[[").and_then(|l| l.strip_suffix("]]")) {
                section = if header.trim() == "board" {
                    boards.push(BoardEntry::default());
                    Section::Board
                } else {
                    Section::Other
                };
                continue;
            }
            if line.starts_with('[') {
                section = Section::Other;
                continue;
            }
            let Some((key, value)) = line.split_once('=') else {
                continue;
            };
            let key = unquote_key(key.trim());
            let value = string_value(value.trim());
            match section {
                Section::Top => match key {
                    "name" => name = value,
                    "backend" => backend = Some((index + 1, value)),
                    _ => {}
                },
                Section::Board => {
                    if let Some(board) = boards.last_mut() {
                        match key {
                            "name" => board.name = value,
                            "kind" => board.kind = value,
                            "firmware" => board.firmware = value,
                            _ => {}
                        }
                    }
                }
                Section::Other => {}
            }
        }
        let shown = path.display();
        let backend = match backend {
            None => {
                return Err(format!(
                    "rig file {shown}: no top-level `backend = \"virtual\"` or `\"real\"` \
                     (see rig/example-lab.toml)"
                ))
            }
            Some((_, Some(word))) if word == "virtual" => Backend::Virtual,
            Some((_, Some(word))) if word == "real" => Backend::Real,
            Some((line, _)) => {
                return Err(format!(
                    "rig file {shown}:{line}: backend: expected \"virtual\" or \"real\""
                ))
            }
        };
        Ok(RigFile {
            path: path.to_path_buf(),
            name,
            backend,
            boards,
        })
    }

    /// The board called `name`.
    pub fn board(&self, name: &str) -> Option<&BoardEntry> {
        self.boards.iter().find(|b| b.name.as_deref() == Some(name))
    }

    /// The boards' names, for messages.
    pub fn board_names(&self) -> Vec<&str> {
        self.boards
            .iter()
            .filter_map(|b| b.name.as_deref())
            .collect()
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Section {
    Top,
    Board,
    Other,
}

/// `line` without a `#` comment (a `#` inside a string is kept).
fn strip_comment(line: &str) -> &str {
    let mut quote: Option<char> = None;
    let mut escaped = false;
    for (i, c) in line.char_indices() {
        match quote {
            Some('"') if escaped => escaped = false,
            Some('"') if c == '\\' => escaped = true,
            Some(q) if c == q => quote = None,
            Some(_) => {}
            None if c == '"' || c == '\'' => quote = Some(c),
            None if c == '#' => return line.get(..i).unwrap_or(line),
            None => {}
        }
    }
    line
}

/// A bare or quoted key.
fn unquote_key(key: &str) -> &str {
    for q in ['"', '\''] {
        if let Some(inner) = key.strip_prefix(q).and_then(|k| k.strip_suffix(q)) {
            return inner;
        }
    }
    key
}

/// A one-line basic (`"..."`, simple escapes) or literal (`'...'`) string; `None` for anything
/// else.
fn string_value(value: &str) -> Option<String> {
    if let Some(inner) = value.strip_prefix('\'').and_then(|v| v.strip_suffix('\'')) {
        return (!inner.contains('\'')).then(|| inner.to_owned());
    }
    let inner = value.strip_prefix('"')?.strip_suffix('"')?;
    let mut out = String::with_capacity(inner.len());
    let mut chars = inner.chars();
    while let Some(c) = chars.next() {
        match c {
            '"' => return None,
            '\\' => out.push(match chars.next()? {
                '"' => '"',
                '\\' => '\\',
                'n' => '\n',
                't' => '\t',
                _ => return None,
            }),
            c => out.push(c),
        }
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scan(text: &str) -> Result<RigFile, String> {
        RigFile::scan(text, Path::new("rig/test.toml"))
    }

    #[test]
    fn the_shipped_rig_files_scan() {
        let root = crate::workspace_root();
        let virt = RigFile::load(&root.join("rig/virtual.toml"), "rig/virtual.toml")
            .expect("virtual.toml");
        assert_eq!(virt.backend, Backend::Virtual);
        assert_eq!(virt.name.as_deref(), Some("virtual"));
        assert_eq!(virt.board_names(), ["vreq", "vreader"]);
        assert_eq!(
            virt.board("vreader").and_then(|b| b.firmware.as_deref()),
            Some("tessera-reader")
        );
        let lab = RigFile::load(&root.join("rig/example-lab.toml"), "rig/example-lab.toml")
            .expect("example-lab.toml");
        assert_eq!(lab.backend, Backend::Real);
        assert_eq!(lab.board_names(), ["hsm2-ours", "hsm2-stock"]);
        let stock = lab.board("hsm2-stock").expect("hsm2-stock");
        assert_eq!(stock.firmware.as_deref(), Some("stock"));
        assert_eq!(stock.kind.as_deref(), Some("nitrokey-hsm2"));
    }

    #[test]
    fn only_top_level_and_board_keys_count() {
        let rig = scan(
            "# backend = \"real\" in a comment does not count\n\
             name = 'lab#1' # a hash in a string is kept\n\
             backend = \"real\"   # trailing comment\n\
             [controller]\n\
             name = \"not the rig's\"\n\
             backend = \"virtual\"\n\
             [[board]]\n\
             \"name\" = \"a\"\n\
             firmware = \"stock\"\n\
             usb = { id = \"20a0:4230\", path = \"1-1.2\" }\n\
             [[slot]]\n\
             name = \"A\"\n\
             [slot.card]\n\
             firmware = \"not a board's\"\n\
             [[board]]\n\
             name = \"b\"\n",
        )
        .expect("scans");
        assert_eq!(rig.name.as_deref(), Some("lab#1"));
        assert_eq!(rig.backend, Backend::Real);
        assert_eq!(rig.board_names(), ["a", "b"]);
        assert_eq!(rig.boards[1].firmware, None);
    }

    #[test]
    fn a_missing_or_bad_backend_names_the_file_and_never_the_value() {
        let err = scan("name = \"x\"\n[hub]\nbackend = \"real\"\n").unwrap_err();
        assert!(
            err.starts_with("rig file rig/test.toml: no top-level `backend"),
            "{err}"
        );
        let err = scan("name = \"x\"\nbackend = \"123456\"\n").unwrap_err();
        assert_eq!(
            err,
            "rig file rig/test.toml:2: backend: expected \"virtual\" or \"real\""
        );
        assert!(!err.contains("123456"));
        let err = scan("backend = virtual\n").unwrap_err();
        assert!(err.contains(":1: backend"), "{err}");
    }

    #[test]
    fn a_missing_file_is_one_line_with_its_name() {
        let err = RigFile::load(
            Path::new("/nonexistent/rig/no-such-rig.toml"),
            "rig/no-such-rig.toml",
        )
        .unwrap_err();
        assert!(err.starts_with("rig file rig/no-such-rig.toml: "), "{err}");
        assert!(!err.contains('\n'));
    }

    #[test]
    fn strings_decode_simple_escapes_and_refuse_the_rest() {
        assert_eq!(string_value(r#""a\"b\\c""#).as_deref(), Some("a\"b\\c"));
        assert_eq!(string_value("'lit\\eral'").as_deref(), Some("lit\\eral"));
        assert_eq!(string_value(r#""a" "b""#), None);
        assert_eq!(string_value("42"), None);
        assert_eq!(string_value(r#""\u0041""#), None);
    }
}
