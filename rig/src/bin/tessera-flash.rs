//! `tessera-flash`: writes a firmware ELF into a board's flash over SWD with probe-rs (the
//! library), verifies it, resets the board and lets it run. `cargo xtask flash` builds the
//! firmware and runs this; it needs the `probe` feature of `tessera-rig`.
//!
//! ```text
//! tessera-flash --elf PATH --probe VID:PID[:SERIAL] [--chip NAME]
//! tessera-flash --elf PATH --rig FILE --dut NAME
//! ```
//!
//! With `--probe`, the chip defaults to the Nitrokey HSM 2's (`STM32F103TB`). With `--rig` and
//! `--dut`, the probe and chip come from the rig file, which is checked in full; boards of a
//! virtual rig, boards without a probe and boards marked `firmware = "stock"` are refused (the
//! stock firmware is never overwritten by a tool).
//!
//! Progress goes to stderr: a bar per step (erase, program, verify) on a terminal, one line per
//! step otherwise.
//!
//! Exit codes: 0 flashed, verified and running; 1 anything failed (arguments, the ELF, the rig
//! file, the chip name, attaching, erasing, writing, verifying, resetting); 2 no SWD probe is
//! attached, or none (or more than one) matches the selector: nothing was written.

use std::cell::RefCell;
use std::io::{IsTerminal, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Instant;

use probe_rs::flashing::{FlashProgress, ProgressEvent, ProgressOperation};
use tessera_rig::config::{BackendKind, BoardKind, FirmwareProfile, ProbeSelector, RigDescription};
use tessera_rig::probe::{self, ProbeError};

const USAGE: &str = "\
usage: tessera-flash --elf PATH --probe VID:PID[:SERIAL] [--chip NAME]
       tessera-flash --elf PATH --rig FILE --dut NAME

  writes the ELF into the board's flash over SWD (probe-rs), verifies it, resets and runs it.
  --probe  the probe as probe-rs selects it; --chip defaults to STM32F103TB (Nitrokey HSM 2)
  --rig, --dut  a board of a rig file: its probe and chip (stock and virtual boards refused)
  exit codes: 0 done; 1 failed; 2 no SWD probe, or none that matches
";

/// A failure: its exit code and its one line.
struct Exit {
    code: u8,
    message: String,
}

fn fail(message: impl Into<String>) -> Exit {
    Exit {
        code: 1,
        message: message.into(),
    }
}

impl From<ProbeError> for Exit {
    fn from(e: ProbeError) -> Exit {
        Exit {
            code: if e.is_no_probe() { 2 } else { 1 },
            message: e.to_string(),
        }
    }
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match run(&args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(exit) => {
            eprintln!("tessera-flash: {}", exit.message);
            ExitCode::from(exit.code)
        }
    }
}

/// The command line.
#[derive(Debug, Default)]
struct Args {
    elf: Option<PathBuf>,
    probe: Option<String>,
    chip: Option<String>,
    rig: Option<PathBuf>,
    dut: Option<String>,
    help: bool,
}

fn parse(args: &[String]) -> Result<Args, Exit> {
    let mut parsed = Args::default();
    let mut rest = args.iter();
    while let Some(arg) = rest.next() {
        let mut value = || {
            rest.next()
                .filter(|v| !v.is_empty())
                .cloned()
                .ok_or_else(|| fail(format!("{arg} takes a value\n{USAGE}")))
        };
        match arg.as_str() {
            "--elf" => parsed.elf = Some(PathBuf::from(value()?)),
            "--probe" => parsed.probe = Some(value()?),
            "--chip" => parsed.chip = Some(value()?),
            "--rig" => parsed.rig = Some(PathBuf::from(value()?)),
            "--dut" => parsed.dut = Some(value()?),
            "-h" | "--help" => parsed.help = true,
            other => return Err(fail(format!("unknown argument `{other}`\n{USAGE}"))),
        }
    }
    Ok(parsed)
}

/// Which probe and chip to use, and what to call the board in messages.
struct Target {
    selector: ProbeSelector,
    chip: String,
    board: String,
}

fn target(args: &Args) -> Result<Target, Exit> {
    match (&args.probe, &args.rig, &args.dut) {
        (Some(text), None, None) => {
            let selector = ProbeSelector::parse(text).ok_or_else(|| {
                fail(format!(
                    "--probe {text}: expected VID:PID[:SERIAL] in hex (e.g. 0483:3748)"
                ))
            })?;
            let chip = args
                .chip
                .clone()
                .unwrap_or_else(|| BoardKind::NitrokeyHsm2.default_chip().to_owned());
            Ok(Target {
                board: format!("the board on probe {selector}"),
                selector,
                chip,
            })
        }
        (None, Some(rig), Some(dut)) => {
            if args.chip.is_some() {
                return Err(fail(
                    "--chip goes with --probe; with --dut the chip comes from the rig file",
                ));
            }
            board_target(rig, dut)
        }
        (Some(_), _, _) => Err(fail("give --probe, or --rig and --dut, not both")),
        _ => Err(fail(format!(
            "say which board: --probe VID:PID[:SERIAL], or --rig FILE --dut NAME\n{USAGE}"
        ))),
    }
}

fn board_target(rig_path: &Path, dut: &str) -> Result<Target, Exit> {
    let rig = RigDescription::load(rig_path).map_err(|e| fail(e.to_string()))?;
    let shown = rig_path.display();
    let board = rig.board(dut).ok_or_else(|| {
        let names: Vec<&str> = rig.boards.iter().map(|b| b.name.as_str()).collect();
        fail(format!(
            "{shown} has no board `{dut}` (boards: {})",
            names.join(", ")
        ))
    })?;
    if rig.backend == BackendKind::Virtual {
        return Err(fail(format!(
            "board `{dut}` is on a virtual rig ({shown}): a virtual board cannot be flashed"
        )));
    }
    if board.firmware == FirmwareProfile::Stock {
        return Err(fail(format!(
            "board `{dut}` runs the stock firmware ({shown}): it is never overwritten by a tool; \
             flash it by hand with --probe if you mean to, then change the rig file"
        )));
    }
    let selector = board
        .probe
        .clone()
        .ok_or_else(|| fail(format!("board `{dut}` has no `probe` in {shown}")))?;
    Ok(Target {
        selector,
        chip: board.chip.clone(),
        board: format!("board `{dut}`"),
    })
}

/// Checks that `path` is a readable ELF file before any probe is touched.
fn check_elf(path: &Path) -> Result<(), Exit> {
    let bytes = std::fs::read(path).map_err(|e| fail(format!("{}: {e}", path.display())))?;
    if bytes.starts_with(b"\x7fELF") {
        Ok(())
    } else {
        Err(fail(format!(
            "{}: not an ELF file (give the firmware's ELF, as cargo builds it)",
            path.display()
        )))
    }
}

fn run(args: &[String]) -> Result<(), Exit> {
    let args = parse(args)?;
    if args.help {
        print!("{USAGE}");
        return Ok(());
    }
    let elf = args
        .elf
        .clone()
        .ok_or_else(|| fail(format!("--elf PATH is required\n{USAGE}")))?;
    let target = target(&args)?;
    check_elf(&elf)?;

    let mut session = probe::attach(&target.selector, &target.chip)?;
    eprintln!(
        "tessera-flash: {} ({}) through probe {}: writing {}",
        target.board,
        target.chip,
        target.selector,
        elf.display()
    );
    let started = Instant::now();
    let bar = Bar::new(std::io::stderr().is_terminal());
    probe::flash_elf(
        &mut session,
        &elf,
        Some(FlashProgress::new(|event| bar.event(event))),
    )?;
    bar.finish();
    probe::reset_and_run(&mut session)?;
    eprintln!(
        "tessera-flash: flashed and verified in {:.1} s; the board was reset and runs it",
        started.elapsed().as_secs_f64()
    );
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// Progress

/// The steps probe-rs reports, in the order they run.
const STEPS: usize = 4;

fn step(operation: ProgressOperation) -> (usize, &'static str) {
    match operation {
        ProgressOperation::Fill => (0, "reading back"),
        ProgressOperation::Erase => (1, "erasing"),
        ProgressOperation::Program => (2, "programming"),
        ProgressOperation::Verify => (3, "verifying"),
    }
}

/// Progress on stderr: a redrawn bar on a terminal, a line per step otherwise.
struct Bar {
    tty: bool,
    state: RefCell<BarState>,
}

#[derive(Default)]
struct BarState {
    total: [u64; STEPS],
    done: [u64; STEPS],
    started: [Option<Instant>; STEPS],
    /// The percentage last drawn, per step.
    drawn: [Option<u64>; STEPS],
    /// A bar is on the current line (so a message needs a newline first).
    mid_line: bool,
}

impl Bar {
    fn new(tty: bool) -> Bar {
        Bar {
            tty,
            state: RefCell::new(BarState::default()),
        }
    }

    fn event(&self, event: ProgressEvent) {
        let mut state = self.state.borrow_mut();
        let s = &mut *state;
        let mut err = std::io::stderr().lock();
        match event {
            ProgressEvent::AddProgressBar { operation, total } => {
                let (i, _) = step(operation);
                if let Some(slot) = s.total.get_mut(i) {
                    *slot = total.unwrap_or(0);
                }
            }
            ProgressEvent::Started(operation) => {
                let (i, label) = step(operation);
                if let (Some(done), Some(at)) = (s.done.get_mut(i), s.started.get_mut(i)) {
                    *done = 0;
                    *at = Some(Instant::now());
                }
                if self.tty {
                    draw(s, &mut err, i, label);
                } else {
                    let _ = writeln!(err, "tessera-flash: {label} ...");
                }
            }
            ProgressEvent::Progress {
                operation, size, ..
            } => {
                let (i, label) = step(operation);
                if let Some(done) = s.done.get_mut(i) {
                    *done = done.saturating_add(size);
                }
                if self.tty {
                    draw(s, &mut err, i, label);
                }
            }
            ProgressEvent::Finished(operation) => {
                let (i, label) = step(operation);
                let done = s.done.get(i).copied().unwrap_or(0);
                let seconds = s
                    .started
                    .get(i)
                    .copied()
                    .flatten()
                    .map_or(0.0, |at| at.elapsed().as_secs_f64());
                if self.tty {
                    draw(s, &mut err, i, label);
                    let _ = writeln!(err, "  {seconds:.1} s");
                } else {
                    let _ = writeln!(
                        err,
                        "tessera-flash: {label}: done, {:.1} KiB in {seconds:.1} s",
                        kib(done)
                    );
                }
                s.mid_line = false;
            }
            ProgressEvent::Failed(operation) => {
                let (_, label) = step(operation);
                if s.mid_line {
                    let _ = writeln!(err);
                }
                let _ = writeln!(err, "tessera-flash: {label} FAILED");
                s.mid_line = false;
            }
            ProgressEvent::DiagnosticMessage { message } => {
                if s.mid_line {
                    let _ = writeln!(err);
                }
                let _ = writeln!(
                    err,
                    "tessera-flash: flash algorithm: {}",
                    message.trim_end()
                );
                s.mid_line = false;
            }
            ProgressEvent::FlashLayoutReady { .. } => {}
        }
        let _ = err.flush();
    }

    /// Ends a bar left on its line (after a failure probe-rs did not report as a step).
    fn finish(&self) {
        let mut s = self.state.borrow_mut();
        if s.mid_line {
            eprintln!();
            s.mid_line = false;
        }
    }
}

fn kib(bytes: u64) -> f64 {
    // Flash sizes are far below 2^53: the conversion is exact.
    bytes as f64 / 1024.0
}

/// Redraws step `i`'s bar when its percentage changed.
fn draw(s: &mut BarState, err: &mut impl Write, i: usize, label: &str) {
    const WIDTH: u64 = 30;
    let total = s.total.get(i).copied().unwrap_or(0);
    let done = s.done.get(i).copied().unwrap_or(0);
    let line = if total == 0 {
        format!("\r{label:<13} {:>7.1} KiB", kib(done))
    } else {
        let done = done.min(total);
        let percent = done * 100 / total;
        if s.drawn.get(i).copied().flatten() == Some(percent) && s.mid_line {
            return;
        }
        if let Some(drawn) = s.drawn.get_mut(i) {
            *drawn = Some(percent);
        }
        let filled = usize::try_from(done * WIDTH / total).unwrap_or(0);
        let empty = usize::try_from(WIDTH).unwrap_or(0).saturating_sub(filled);
        format!(
            "\r{label:<13} [{}{}] {percent:>3}%  {:.1}/{:.1} KiB",
            "#".repeat(filled),
            "-".repeat(empty),
            kib(done),
            kib(total)
        )
    };
    let _ = write!(err, "{line}");
    s.mid_line = true;
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(items: &[&str]) -> Vec<String> {
        items.iter().map(|s| (*s).to_owned()).collect()
    }

    fn target_of(items: &[&str]) -> Result<Target, Exit> {
        target(&parse(&args(items))?)
    }

    #[test]
    fn a_probe_selector_gets_the_default_chip() {
        let t = target_of(&["--probe", "0483:3748:ABC"])
            .ok()
            .expect("target");
        assert_eq!(t.selector.to_string(), "0483:3748:ABC");
        assert_eq!(t.chip, "STM32F103TB");
        let t = target_of(&["--probe", "0483:374b", "--chip", "STM32F103C8"])
            .ok()
            .expect("target");
        assert_eq!(t.chip, "STM32F103C8");
    }

    #[test]
    fn bad_arguments_are_one_line_with_exit_code_1() {
        for (items, expected) in [
            (&["--probe", "nope"][..], "expected VID:PID"),
            (&["--probe", "0483:3748", "--dut", "a"], "not both"),
            (&[], "say which board"),
            (&["--rig", "rig/virtual.toml"], "say which board"),
            (&["--probe"], "--probe takes a value"),
            (&["--erase-all"], "unknown argument `--erase-all`"),
        ] {
            let Err(exit) = target_of(items) else {
                panic!("{items:?} accepted");
            };
            assert_eq!(exit.code, 1, "{items:?}");
            assert!(
                exit.message.contains(expected),
                "{items:?}: {}",
                exit.message
            );
        }
    }

    fn rig_file(name: &str) -> String {
        format!("{}/{name}", env!("CARGO_MANIFEST_DIR"))
    }

    #[test]
    fn rig_boards_give_probe_and_chip_and_stock_or_virtual_ones_are_refused() {
        let lab = rig_file("example-lab.toml");
        let t = target_of(&["--rig", &lab, "--dut", "hsm2-ours"])
            .ok()
            .expect("target");
        assert_eq!(t.selector.to_string(), "0483:3748:066DFF535154887767154120");
        assert_eq!(t.chip, "STM32F103TB");
        for (rig, dut, expected) in [
            (lab.as_str(), "hsm2-stock", "runs the stock firmware"),
            (
                lab.as_str(),
                "nope",
                "has no board `nope` (boards: hsm2-ours, hsm2-stock)",
            ),
            (
                &rig_file("virtual.toml"),
                "vreq",
                "a virtual board cannot be flashed",
            ),
            (
                &rig_file("no-such.toml"),
                "vreq",
                "cannot read the rig file",
            ),
        ] {
            let Err(exit) = target_of(&["--rig", rig, "--dut", dut]) else {
                panic!("{dut} accepted");
            };
            assert_eq!(exit.code, 1);
            assert!(exit.message.contains(expected), "{dut}: {}", exit.message);
        }
        let Err(exit) = target_of(&["--rig", &lab, "--dut", "hsm2-ours", "--chip", "X"]) else {
            panic!("--chip with --dut accepted");
        };
        assert!(exit.message.contains("--chip goes with --probe"));
    }

    #[test]
    fn only_elf_files_are_flashed() {
        let dir = tempfile::tempdir().expect("tempdir");
        let text = dir.path().join("firmware.bin");
        std::fs::write(&text, b"\x00\x50\x00\x20").expect("write");
        let Err(exit) = check_elf(&text) else {
            panic!("a .bin accepted");
        };
        assert!(exit.message.contains("not an ELF file"));
        let elf = dir.path().join("firmware");
        std::fs::write(&elf, b"\x7fELF\x01\x01\x01").expect("write");
        assert!(check_elf(&elf).is_ok());
        assert!(check_elf(&dir.path().join("missing")).is_err());
    }

    #[test]
    fn probe_errors_map_to_exit_code_2() {
        let selector = ProbeSelector::parse("0483:3748").expect("selector");
        let none: Exit = ProbeError::NoneAttached.into();
        assert_eq!(none.code, 2);
        assert!(
            none.message
                .starts_with("no SWD probe found (probe-rs saw none); attach one or check"),
            "{}",
            none.message
        );
        let other = ProbeSelector::parse("1366:0101:000123").expect("selector");
        let no_match: Exit = ProbeError::NoMatch {
            selector: selector.clone(),
            seen: vec![probe::SeenProbe {
                selector: other,
                name: "J-Link".into(),
            }],
        }
        .into();
        assert_eq!(no_match.code, 2);
        assert_eq!(
            no_match.message,
            "no SWD probe matches 0483:3748; probe-rs saw: 1366:0101:000123 (J-Link)"
        );
        let failed: Exit = ProbeError::Failed("flashing x failed: timeout".into()).into();
        assert_eq!(failed.code, 1);
        let chip: Exit = ProbeError::UnknownChip { chip: "X".into() }.into();
        assert_eq!(chip.code, 1);
    }

    #[test]
    fn the_bar_draws_only_when_the_percentage_moves() {
        let mut s = BarState::default();
        s.total[1] = 4096;
        let mut out = Vec::new();
        s.done[1] = 1024;
        draw(&mut s, &mut out, 1, "erasing");
        draw(&mut s, &mut out, 1, "erasing");
        s.done[1] = 4096;
        draw(&mut s, &mut out, 1, "erasing");
        let text = String::from_utf8(out).expect("utf-8");
        assert_eq!(
            text,
            "\rerasing       [#######-----------------------]  25%  1.0/4.0 KiB\
             \rerasing       [##############################] 100%  4.0/4.0 KiB"
        );
        assert!(s.mid_line);
    }
}
