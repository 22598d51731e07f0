//! `cargo xtask <command>`: see `cargo xtask help`.

use std::process::ExitCode;

use xtask::prereq::{self, Policy};

const HELP: &str = "\
cargo xtask <command>

  test            install missing prerequisites where possible, then run every check
                  (the README's test command; what .ci/run runs)
  ci              run every check without installing anything: format, clippy, the tests
                  under nextest, the no_std build of the protocol crates and the bridge for
                  thumbv7m-none-eabi, the firmware's host tests, its release build and size
                  report against the budget, the fuzz targets' build
  hil [--rig FILE] [FILTERS...]
                  the conformance suites (tests/) under nextest, each case in its own
                  process, on the virtual rig (default rig/virtual.toml, no hardware) or a
                  real one; JUnit report in target/nextest/hil/junit.xml (hil-real for real
                  rigs), a summary per board (passed, failed, ignored and why), the run's
                  wall time. FILTERS keep the cases whose suite::case::board contains one
  flash [--rig FILE] (--dut NAME | --probe VID:PID[:SERIAL]) [--release]
        [--profile tessera-require-card|tessera-reader]
                  build firmware/ for the board's profile and flash it over SWD with
                  probe-rs (verify, progress, reset and run); stock boards are refused
  virtual [CARD_FILE...] [-- SERVE_ARGS]
                  serve virtual cards (default target/virtual/token.card) to pcscd through
                  vsmartcard's vpcd, so that OS tools (OpenSC, tessera) see them in a reader
  size [--dfu-base] [--bringup]
                  build the release firmware (firmware/) and report flash and static RAM
                  against the budget (48 KiB flash, 12 KiB RAM with a 4 KiB stack); exits
                  non-zero when over
  setup           only install or report missing prerequisites
  fuzz TARGET [--seconds N]
                  run one fuzz target for N seconds (default 60); `fuzz list` lists them
  help            this text
";

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let result = match args.first().map(String::as_str) {
        Some("test") => prereq::ensure(Policy::InstallWhenPossible)
            .and_then(|()| xtask::run_steps(&xtask::check_steps("ci"))),
        Some("ci") => prereq::ensure(Policy::CheckOnly)
            .and_then(|()| xtask::run_steps(&xtask::check_steps("ci"))),
        Some("hil") => xtask::hil::run(&args[1..]),
        Some("flash") => xtask::flash::run(&args[1..]),
        Some("virtual") => xtask::virtual_token::run(&args[1..]),
        Some("setup") => prereq::ensure(Policy::InstallWhenPossible),
        Some("size") => xtask::size::run(&args[1..]),
        Some("fuzz") => fuzz(&args[1..]),
        Some("help" | "--help" | "-h") | None => {
            print!("{HELP}");
            Ok(())
        }
        Some(other) => Err(format!("unknown command `{other}`\n\n{HELP}")),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("xtask: error: {message}");
            ExitCode::FAILURE
        }
    }
}

fn fuzz(args: &[String]) -> Result<(), String> {
    let cargo = prereq::cargo();
    let Some(target) = args.first() else {
        return Err("usage: cargo xtask fuzz TARGET [--seconds N] (or `fuzz list`)".to_owned());
    };
    let argv: Vec<String> = if target == "list" {
        vec![cargo, "fuzz".into(), "list".into()]
    } else {
        let seconds = match args.iter().position(|a| a == "--seconds") {
            Some(i) => args
                .get(i + 1)
                .and_then(|s| s.parse::<u32>().ok())
                .ok_or("--seconds takes a whole number")?,
            None => 60,
        };
        vec![
            cargo,
            "fuzz".into(),
            "run".into(),
            "-s".into(),
            "none".into(),
            target.clone(),
            "--".into(),
            format!("-max_total_time={seconds}"),
        ]
    };
    prereq::ensure(Policy::InstallWhenPossible)?;
    xtask::run_steps(&[xtask::Step {
        name: "fuzz",
        dir: "fuzz",
        argv,
    }])
}
