//! What happened on the board, with modelled times: for transcripts and figures.
//!
//! A trace holds the raw bytes that travelled (APDUs included, so PINs too): compare it, count
//! it, time it, but do not print its bytes. `Debug` shows lengths only.

use std::fmt;
use std::time::Duration;

use tessera_bridge::LineRate;

/// One thing that happened, at [`TraceEntry::at`].
#[derive(Clone, PartialEq, Eq)]
pub enum TraceEvent {
    /// The board's supply switched on or off.
    Power(bool),
    /// The bridge switched the card's VCC.
    Vcc(bool),
    /// The bridge drove RST.
    Rst(bool),
    /// The bridge started or stopped CLK.
    Clock(bool),
    /// The bridge set the line's rate and guard time.
    Rate(LineRate),
    /// The bridge started sending these characters to the card.
    ToCard(Vec<u8>),
    /// The card sends these characters (one transmission); the entry's time is the leading
    /// edge of the first, which may lie after entries recorded later.
    FromCard(Vec<u8>),
    /// The card left the socket.
    CardPulled,
    /// A card was put into the socket.
    CardInserted,
    /// D+ pulled up with this serial string.
    Attach(String),
    /// D+ released.
    Detach,
    /// The host configured the device.
    Configured,
    /// The host reset the bus (or unconfigured the device).
    Deconfigured,
    /// A bulk-OUT message reached the bridge.
    BulkOut(Vec<u8>),
    /// A bulk-IN message reached the host.
    BulkIn(Vec<u8>),
    /// An interrupt-IN message reached the host.
    Interrupt(Vec<u8>),
}

impl fmt::Debug for TraceEvent {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Lengths only: the bytes may hold PINs.
        let bytes = |f: &mut fmt::Formatter<'_>, name: &str, b: &[u8]| {
            write!(f, "{name}({} bytes)", b.len())
        };
        match self {
            TraceEvent::Power(on) => write!(f, "Power({on})"),
            TraceEvent::Vcc(on) => write!(f, "Vcc({on})"),
            TraceEvent::Rst(high) => write!(f, "Rst({high})"),
            TraceEvent::Clock(on) => write!(f, "Clock({on})"),
            TraceEvent::Rate(rate) => write!(f, "Rate(F {}, D {})", rate.f, rate.d),
            TraceEvent::ToCard(b) => bytes(f, "ToCard", b),
            TraceEvent::FromCard(b) => bytes(f, "FromCard", b),
            TraceEvent::CardPulled => f.write_str("CardPulled"),
            TraceEvent::CardInserted => f.write_str("CardInserted"),
            TraceEvent::Attach(serial) => write!(f, "Attach({serial:?})"),
            TraceEvent::Detach => f.write_str("Detach"),
            TraceEvent::Configured => f.write_str("Configured"),
            TraceEvent::Deconfigured => f.write_str("Deconfigured"),
            TraceEvent::BulkOut(b) => bytes(f, "BulkOut", b),
            TraceEvent::BulkIn(b) => bytes(f, "BulkIn", b),
            TraceEvent::Interrupt(b) => bytes(f, "Interrupt", b),
        }
    }
}

/// A [`TraceEvent`] and its modelled time.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TraceEntry {
    /// Modelled time since the board's epoch.
    pub at: Duration,
    /// What happened.
    pub event: TraceEvent,
}
