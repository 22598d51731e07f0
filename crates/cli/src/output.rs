//! Writing to stdout (a closed pipe is not an error), and the `--json` shapes shared by
//! several commands. Field names here are part of the interface: add fields, never rename.

use std::io::Write;

use anyhow::{Context, Result};
use serde::Serialize;
use tessera_sc_hsm::{DkekStatus, PinStatus, Severity};

/// Writes `text` to stdout. A reader that went away (`tessera keys | head -1`) ends the
/// output quietly.
pub fn print(text: &str) -> Result<()> {
    write_stdout(text.as_bytes())
}

/// Writes bytes to stdout (see [`print`]).
pub fn write_stdout(bytes: &[u8]) -> Result<()> {
    let mut stdout = std::io::stdout().lock();
    match stdout.write_all(bytes).and_then(|()| stdout.flush()) {
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => Ok(()),
        other => other.context("cannot write to stdout"),
    }
}

/// Prints `value` as pretty JSON and a line break.
pub fn print_json<T: Serialize>(value: &T) -> Result<()> {
    let mut text = serde_json::to_string_pretty(value).context("cannot encode JSON")?;
    text.push('\n');
    print(&text)
}

/// Lower-case hex.
pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// A PIN's state: `{"state": "tries-left", "tries_left": 3}`. States: `verified`,
/// `tries-left`, `blocked` (tries_left 0), `transport-pin`, `not-initialised`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct PinJson {
    /// The state's name.
    pub state: &'static str,
    /// Wrong presentations left, when the card says.
    pub tries_left: Option<u8>,
}

impl From<PinStatus> for PinJson {
    fn from(status: PinStatus) -> PinJson {
        PinJson {
            state: match status {
                PinStatus::Verified => "verified",
                PinStatus::TriesLeft { .. } => "tries-left",
                PinStatus::Blocked => "blocked",
                PinStatus::TransportPin => "transport-pin",
                PinStatus::NotInitialised => "not-initialised",
            },
            tries_left: status.tries_left(),
        }
    }
}

/// The DKEK state: shares in total, still outstanding, imported, whether complete, and the
/// key check value (hex).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct DkekJson {
    /// Shares the device was initialised for.
    pub total: u8,
    /// Shares still to import.
    pub outstanding: u8,
    /// Shares imported.
    pub imported: u8,
    /// Whether every share is in.
    pub complete: bool,
    /// Key check value: SHA-256 of the DKEK so far, first 8 bytes, hex.
    pub kcv: String,
}

impl From<DkekStatus> for DkekJson {
    fn from(d: DkekStatus) -> DkekJson {
        DkekJson {
            total: d.total,
            outstanding: d.outstanding,
            imported: d.total.saturating_sub(d.outstanding),
            complete: d.is_complete(),
            kcv: hex(&d.kcv),
        }
    }
}

/// A severity's stable name.
pub fn severity_name(severity: Severity) -> &'static str {
    match severity {
        Severity::Ok => "ok",
        Severity::Warning => "warning",
        Severity::NotInitialised => "not-initialised",
        Severity::Recoverable => "recoverable",
        Severity::Permanent => "permanent",
    }
}

/// "1 share" / "2 shares".
pub fn plural(n: u8, one: &str, many: &str) -> String {
    if n == 1 {
        format!("{n} {one}")
    } else {
        format!("{n} {many}")
    }
}
