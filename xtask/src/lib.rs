//! `cargo xtask`: the project's one entry point for building, checking and testing.
//!
//! It is the only place in the workspace that spawns processes (cargo, rustup, apt-get). It knows
//! which crates are the `no_std` protocol crates, where the fuzz workspace is, and what the
//! machine needs ([`prereq`]); how the conformance suites are run on a rig and summarised
//! ([`hil`]), how the firmware is built and handed to the flashing tool ([`flash`]), how the
//! virtual token is served to pcscd ([`virtual_token`]), and of a rig file only its backend and
//! its boards' firmware profiles ([`rigfile`]). It knows nothing about smart cards, probes or
//! rig hardware: `tessera-rig` does.

pub mod flash;
pub mod hil;
pub mod prereq;
pub mod rigfile;
pub mod size;
pub mod virtual_token;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

/// The `no_std` protocol crates: they build for the firmware target and depend on nothing in the
/// workspace (checked by the tidy tests).
pub const PROTOCOL_CRATES: &[&str] = &["tessera-apdu", "tessera-iso7816-3", "tessera-ccid"];

/// `no_std` crates of the firmware's logic that stand on the protocol crates (so they are not
/// protocol crates themselves) and must build for the firmware's target too.
pub const FIRMWARE_LOGIC_CRATES: &[&str] = &["tessera-bridge"];

/// The firmware's target.
pub const FIRMWARE_TARGET: &str = "thumbv7m-none-eabi";

/// The workspace root (the folder above xtask/).
pub fn workspace_root() -> PathBuf {
    let manifest = Path::new(env!("CARGO_MANIFEST_DIR"));
    manifest.parent().unwrap_or(manifest).to_path_buf()
}

/// One step of a check run: a command, where it runs, and what it proves.
pub struct Step {
    /// Short name for the summary.
    pub name: &'static str,
    /// The program and its arguments.
    pub argv: Vec<String>,
    /// Working directory, relative to the workspace root.
    pub dir: &'static str,
}

fn step(name: &'static str, dir: &'static str, argv: &[&str]) -> Step {
    Step {
        name,
        dir,
        argv: argv.iter().map(|s| (*s).to_owned()).collect(),
    }
}

/// What `cargo xtask ci` (and so the README's test command) runs, in order.
///
/// `nextest_profile` is the nextest profile of the test step (`ci`: with a JUnit report).
pub fn check_steps(nextest_profile: &str) -> Vec<Step> {
    let cargo = prereq::cargo();
    let cargo = cargo.as_str();
    let mut steps = vec![
        step("format", ".", &[cargo, "fmt", "--all", "--check"]),
        step(
            "clippy",
            ".",
            &[
                cargo,
                "clippy",
                "--workspace",
                "--all-targets",
                "--locked",
                "--",
                "-D",
                "warnings",
            ],
        ),
        step(
            "tests",
            ".",
            &[
                cargo,
                "nextest",
                "run",
                "--workspace",
                "--locked",
                "--profile",
                nextest_profile,
            ],
        ),
    ];
    let mut no_std = vec![cargo, "build", "--locked", "--target", FIRMWARE_TARGET];
    for krate in PROTOCOL_CRATES.iter().chain(FIRMWARE_LOGIC_CRATES) {
        no_std.extend(["-p", krate]);
    }
    steps.push(step(
        "no_std build of protocol crates and bridge (thumbv7m)",
        ".",
        &no_std,
    ));
    no_std.extend(["--features", "defmt"]);
    steps.push(step("no_std build with defmt (thumbv7m)", ".", &no_std));
    // firmware/: its host-testable parts, then the release build and the size report against
    // the budget (fails when over).
    steps.push(step(
        "firmware host tests",
        "firmware",
        &[
            cargo,
            "test",
            "--locked",
            "--lib",
            "--target",
            "x86_64-unknown-linux-gnu",
        ],
    ));
    steps.push(step(
        "firmware release build and size report",
        ".",
        &[cargo, "xtask", "size"],
    ));
    // `-s none`: the address sanitizer needs a nightly compiler; the targets build (and run,
    // coverage-guided) on stable without it.
    steps.push(step(
        "fuzz targets build",
        "fuzz",
        &[cargo, "fuzz", "build", "-s", "none"],
    ));
    steps
}

/// Run `steps` in order, stop at the first failure, and print a summary with timings.
pub fn run_steps(steps: &[Step]) -> Result<(), String> {
    let root = workspace_root();
    let mut summary = Vec::new();
    let mut failed = None;
    for s in steps {
        eprintln!("\nxtask: == {} == {}", s.name, s.argv.join(" "));
        let started = Instant::now();
        let Some((program, args)) = s.argv.split_first() else {
            continue;
        };
        let status = Command::new(program)
            .args(args)
            .current_dir(root.join(s.dir))
            .status();
        let ok = matches!(status, Ok(st) if st.success());
        summary.push(format!(
            "  {:<40} {:>7.1} s  {}",
            s.name,
            started.elapsed().as_secs_f64(),
            if ok { "ok" } else { "FAILED" }
        ));
        if !ok {
            failed = Some(s.name);
            break;
        }
    }
    eprintln!("\nxtask: summary\n{}", summary.join("\n"));
    match failed {
        Some(name) => Err(format!("step `{name}` failed")),
        None => Ok(()),
    }
}
