//! The conformance suites' harness: cases, the plan (which case runs on which board, and why
//! not), and [`Dut`], a board under test with the steps the suites share.
//!
//! Every case is black-box: it sees a board only through `tessera_rig::Rig` (power, SIM
//! selection, USB enumeration, a transport to the card) and the SmartCard-HSM client. The same
//! cases run on the virtual rig, on a real rig with our firmware, and on a real rig with the
//! stock Nitrokey firmware; the board's firmware profile in the rig file says what to expect
//! where the firmwares differ by design.
//!
//! # Environment
//!
//! - `TESSERA_RIG`: the rig file (default: `rig/virtual.toml` of this workspace).
//! - `TESSERA_HIL_PLAN=1`: print the plan, one case per line, `name<TAB>run` or
//!   `name<TAB>ignored<TAB>reason`, and run nothing (`cargo xtask hil` uses it for its
//!   summary).
//!
//! What it does not know: how the rig drives anything; the bridge's internals.
#![warn(missing_docs)]
#![forbid(unsafe_code)]

use std::fmt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use tessera_apdu::StatusWord;
use tessera_rig::config::{Board, FirmwareProfile, RigDescription};
use tessera_rig::{Need, Rig, RigError, RigTransport, TransportOptions, UsbSighting, Via};
use tessera_sc_hsm::{Pin, PinRole, PinStatus, ScHsm, SoPin};

/// How long a board may take from power-on to USB enumeration with a card (boot, ATR, PPS,
/// the serial read; the stock firmware takes about 1 s, hardware.md §B).
pub const BOOT: Duration = Duration::from_secs(5);

/// How long a board that must stay off the bus is watched.
pub const STAY_OFF: Duration = Duration::from_secs(5);

/// Why a case failed, in words (never a PIN).
#[derive(Debug)]
pub struct Failed(pub String);

impl fmt::Display for Failed {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl From<RigError> for Failed {
    fn from(e: RigError) -> Failed {
        Failed(format!("rig: {e}"))
    }
}

impl From<tessera_sc_hsm::Error> for Failed {
    fn from(e: tessera_sc_hsm::Error) -> Failed {
        Failed(format!("card: {e}"))
    }
}

impl From<tessera_sc_hsm::TransportError> for Failed {
    fn from(e: tessera_sc_hsm::TransportError) -> Failed {
        Failed(format!("transport: {e}"))
    }
}

/// What a case returns.
pub type Outcome = Result<(), Failed>;

/// Fails with `message` unless `condition` holds.
pub fn ensure(condition: bool, message: impl FnOnce() -> String) -> Outcome {
    if condition {
        Ok(())
    } else {
        Err(Failed(message()))
    }
}

/// One conformance case, run once per board.
#[derive(Clone, Copy)]
pub struct Case {
    /// The suite (`boot_without_sim`, ...).
    pub suite: &'static str,
    /// The case.
    pub name: &'static str,
    /// What it needs from the rig for the board under test.
    pub needs: &'static [Need],
    /// Why it does not apply to this board beyond `needs` (a firmware profile where the
    /// behaviour cannot be observed, a rig without a second board), or `None`.
    pub skip: fn(&Rig, &Board) -> Option<String>,
    /// The case itself.
    pub run: fn(&mut Dut) -> Outcome,
}

/// `skip` for cases that apply everywhere their needs are met.
pub fn always(_: &Rig, _: &Board) -> Option<String> {
    None
}

/// `skip` for cases that present the first card's user PIN.
pub fn user_pin_known(rig: &Rig, board: &Board) -> Option<String> {
    pins_known(rig, board, false)
}

/// `skip` for cases that present the first card's user PIN and SO-PIN.
pub fn both_pins_known(rig: &Rig, board: &Board) -> Option<String> {
    pins_known(rig, board, true)
}

/// `skip` for cases that present the sacrificial card's user PIN and SO-PIN.
pub fn sacrificial_pins_known(rig: &Rig, _board: &Board) -> Option<String> {
    card_pins_known(rig.expendable_slot()?, true)
}

fn pins_known(rig: &Rig, _board: &Board, so: bool) -> Option<String> {
    card_pins_known(rig.card_slots().first().copied()?, so)
}

fn card_pins_known(slot: &tessera_rig::config::Slot, so: bool) -> Option<String> {
    let card = slot.card.as_ref()?;
    if card.user_pin.is_none() {
        return Some(format!(
            "the rig file gives no user_pin for card {} (slot {})",
            card.label, slot.name
        ));
    }
    if so && card.so_pin.is_none() {
        return Some(format!(
            "the rig file gives no so_pin for card {} (slot {})",
            card.label, slot.name
        ));
    }
    None
}

/// One planned test: a case on a board.
#[derive(Clone)]
pub struct Planned {
    /// `suite::case::dut`.
    pub name: String,
    /// The case.
    pub case: Case,
    /// The board.
    pub board: String,
    /// Why it is ignored, if it is.
    pub ignored: Option<String>,
}

/// Which case runs on which board, from the rig file alone (no hardware is touched).
pub fn plan(description: &RigDescription, cases: &[Case]) -> Vec<Planned> {
    let rig = Rig::offline(description.clone());
    let mut out = Vec::new();
    for case in cases {
        for board in &description.boards {
            let ignored = why_not(&rig, board, case);
            out.push(Planned {
                name: format!("{}::{}::{}", case.suite, case.name, board.name),
                case: *case,
                board: board.name.clone(),
                ignored,
            });
        }
    }
    out
}

fn why_not(rig: &Rig, board: &Board, case: &Case) -> Option<String> {
    for need in case.needs {
        if let Err(missing) = rig.check(&board.name, *need) {
            return Some(missing.to_string());
        }
    }
    (case.skip)(rig, board)
}

/// The rig file: `TESSERA_RIG`, or this workspace's `rig/virtual.toml`.
pub fn rig_path() -> PathBuf {
    match std::env::var_os("TESSERA_RIG") {
        Some(p) if !p.is_empty() => PathBuf::from(p),
        _ => Path::new(env!("CARGO_MANIFEST_DIR")).join("../rig/virtual.toml"),
    }
}

/// Runs one planned case: opens the rig (a fresh scratch directory, so virtual cards are new
/// for every case), checks again what it needs (a case run with `--ignored` on a rig that
/// lacks something is refused, never attempted), runs it, and switches every board off.
pub fn run(rig_file: &Path, planned: &Planned) -> Outcome {
    let description = RigDescription::load(rig_file).map_err(|e| Failed(e.to_string()))?;
    let scratch = tempfile::tempdir().map_err(|e| Failed(format!("scratch directory: {e}")))?;
    let rig = Rig::open(description, scratch.path())?;
    let board = rig.board(&planned.board)?.clone();
    if let Some(reason) = why_not(&rig, &board, &planned.case) {
        return Err(Failed(format!("not run: {reason}")));
    }
    let mut dut = Dut {
        rig,
        profile: board.firmware,
        board: board.name,
    };
    let outcome = (planned.case.run)(&mut dut);
    let off = dut.rig.all_off();
    drop(dut);
    drop(scratch);
    outcome?;
    off.map_err(Failed::from)
}

/// The board under test and its rig.
pub struct Dut {
    /// The rig.
    pub rig: Rig,
    /// The board's name.
    pub board: String,
    /// The board's firmware profile (what to expect where firmwares differ).
    pub profile: FirmwareProfile,
}

/// A SmartCard-HSM session on a board's card.
pub type Session = ScHsm<Box<dyn RigTransport>>;

impl Dut {
    /// Powers the board off, connects `slot` (or nothing) to its socket, and powers it on.
    pub fn power_up_with(&mut self, slot: Option<&str>) -> Outcome {
        self.rig.power_off(&self.board)?;
        self.rig.select_sim(&self.board, slot)?;
        self.rig.power_on(&self.board)?;
        Ok(())
    }

    /// [`power_up_with`](Dut::power_up_with) a card, then waits for USB enumeration.
    pub fn boot_with(&mut self, slot: &str) -> Result<UsbSighting, Failed> {
        self.power_up_with(Some(slot))?;
        let seen = self
            .rig
            .wait_enumerated(&self.board, BOOT)
            .map_err(|e| Failed(format!("with the card in slot {slot}: {e}")))?;
        Ok(seen)
    }

    /// Switches the board off and back on, keeping its SIM, and waits for enumeration.
    pub fn power_cycle(&mut self) -> Result<UsbSighting, Failed> {
        self.rig.power_off(&self.board)?;
        self.rig.wait_absent(&self.board, BOOT)?;
        self.rig.power_on(&self.board)?;
        Ok(self.rig.wait_enumerated(&self.board, BOOT)?)
    }

    /// The way applications reach this board's card on this rig.
    pub fn via(&self) -> Via {
        self.rig.default_via(&self.board)
    }

    /// A transport to the card (the board must be enumerated).
    pub fn transport(
        &mut self,
        options: TransportOptions,
    ) -> Result<Box<dyn RigTransport>, Failed> {
        let via = self.via();
        Ok(self.rig.open_transport_with(&self.board, via, options)?)
    }

    /// A SmartCard-HSM session on the card (the applet selected).
    pub fn session(&mut self) -> Result<Session, Failed> {
        let transport = self.transport(TransportOptions::default())?;
        Ok(ScHsm::open(transport)?)
    }

    /// The user PIN of the card in `slot`, from where the rig file says.
    pub fn user_pin(&mut self, slot: &str) -> Result<Pin, Failed> {
        self.rig
            .card_pins(slot)?
            .user
            .ok_or_else(|| Failed(format!("the rig file gives no user_pin for slot {slot}")))
    }

    /// The SO-PIN of the card in `slot`, from where the rig file says.
    pub fn so_pin(&mut self, slot: &str) -> Result<SoPin, Failed> {
        self.rig
            .card_pins(slot)?
            .so
            .ok_or_else(|| Failed(format!("the rig file gives no so_pin for slot {slot}")))
    }

    /// The first slot holding a card (file order).
    pub fn first_card(&self) -> Result<String, Failed> {
        self.card_slot(0)
    }

    /// The `n`-th slot holding a card (file order).
    pub fn card_slot(&self, n: usize) -> Result<String, Failed> {
        self.rig
            .card_slots()
            .get(n)
            .map(|s| s.name.clone())
            .ok_or_else(|| Failed(format!("the rig has fewer than {} cards", n + 1)))
    }

    /// Another board that can take a SIM (for "no binding between board and card").
    pub fn other_board(&self) -> Option<String> {
        other_board(&self.rig, &self.board)
    }
}

/// A board other than `board` whose power and SIM this rig switches.
pub fn other_board(rig: &Rig, board: &str) -> Option<String> {
    rig.boards()
        .iter()
        .find(|b| b.name != board && rig.check(&b.name, Need::SimSwitch).is_ok())
        .map(|b| b.name.clone())
}

/// A PIN that is not `right`: the same length, every digit changed.
pub fn wrong_pin(right: &Pin) -> Result<Pin, Failed> {
    let wrong: Vec<u8> = right
        .as_bytes()
        .iter()
        .map(|b| if *b == b'1' { b'2' } else { b'1' })
        .collect();
    // Same length and alphabet as a valid PIN; the error never shows either PIN.
    Pin::from_bytes(&wrong)
        .map_err(|_| Failed("cannot make a wrong PIN of the right length".into()))
}

/// An SO-PIN that is not `right`: every byte changed.
pub fn wrong_so_pin(right: &SoPin) -> SoPin {
    let mut bytes = *right.as_bytes();
    for b in &mut bytes {
        *b ^= 0x5A;
    }
    SoPin::from_bytes(bytes)
}

/// The status word a failed card operation answered.
pub fn status_of<T>(result: &Result<T, tessera_sc_hsm::Error>) -> Option<u16> {
    match result {
        Ok(_) => Some(0x9000),
        Err(e) => e.status_word().map(u16::from),
    }
}

/// Checks that `result` failed with status word `sw`.
pub fn expect_sw<T>(result: Result<T, tessera_sc_hsm::Error>, sw: u16, what: &str) -> Outcome {
    match result {
        Ok(_) => Err(Failed(format!("{what}: succeeded, expected {sw:04X}"))),
        Err(e) => match e.status_word() {
            Some(got) if u16::from(got) == sw => Ok(()),
            Some(got) => Err(Failed(format!(
                "{what}: the card answered {:04X}, expected {sw:04X}",
                u16::from(got)
            ))),
            None => Err(Failed(format!(
                "{what}: {e}, expected status word {sw:04X}"
            ))),
        },
    }
}

/// The PIN status of `role`, as a value to compare.
pub fn pin_status(session: &mut Session, role: PinRole) -> Result<PinStatus, Failed> {
    Ok(session.pin_status(role)?)
}

/// `63Cn` as a status word.
pub fn tries(n: u8) -> u16 {
    u16::from(StatusWord::from_bytes(0x63, 0xC0 | (n & 0x0F)))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lab(edit: impl Fn(String) -> String) -> RigDescription {
        let text = include_str!("../../rig/example-lab.toml").to_owned();
        RigDescription::parse(&edit(text), "lab.toml").expect("lab file")
    }

    fn nothing(_: &mut Dut) -> Outcome {
        Ok(())
    }

    const CASES: &[Case] = &[
        Case {
            suite: "s",
            name: "hot",
            needs: &[Need::HotSwap],
            skip: always,
            run: nothing,
        },
        Case {
            suite: "s",
            name: "so",
            needs: &[Need::SacrificialCard],
            skip: sacrificial_pins_known,
            run: nothing,
        },
        Case {
            suite: "s",
            name: "pins",
            needs: &[],
            skip: both_pins_known,
            run: nothing,
        },
    ];

    fn ignored(plan: &[Planned], name: &str) -> Option<String> {
        plan.iter()
            .find(|p| p.name == name)
            .unwrap_or_else(|| panic!("{name} not planned"))
            .ignored
            .clone()
    }

    #[test]
    fn the_plan_names_every_case_on_every_board_and_runs_what_the_rig_can() {
        let plan = plan(&lab(|t| t), CASES);
        assert_eq!(plan.len(), CASES.len() * 2);
        for p in &plan {
            assert!(p.ignored.is_none(), "{}: {:?}", p.name, p.ignored);
        }
        assert!(plan.iter().any(|p| p.name == "s::hot::hsm2-stock"));
    }

    #[test]
    fn a_case_the_rig_cannot_run_is_ignored_with_the_reason() {
        let no_hot = lab(|t| t.replace("hot_swap = true", "hot_swap = false"));
        let reason = ignored(&plan(&no_hot, CASES), "s::hot::hsm2-ours").expect("ignored");
        assert!(reason.contains("hot_swap = true"), "{reason}");

        let precious = lab(|t| t.replace("sacrificial = true ", "sacrificial = false"));
        let reason = ignored(&plan(&precious, CASES), "s::so::hsm2-ours").expect("ignored");
        assert!(reason.contains("sacrificial"), "{reason}");

        let no_so = lab(|t| {
            t.replace(
                "so_pin = { file = \"/etc/tessera-rig/card-a.so-pin\" }\n",
                "",
            )
        });
        let reason = ignored(&plan(&no_so, CASES), "s::pins::hsm2-ours").expect("ignored");
        assert!(reason.contains("no so_pin for card card-a"), "{reason}");
    }
}
