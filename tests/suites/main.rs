//! The conformance suites, one libtest-mimic binary: `suite::case::dut` for every case and
//! every board of the rig file (`TESSERA_RIG`, default `rig/virtual.toml`). A case the rig
//! cannot run on a board is listed as ignored; `TESSERA_HIL_PLAN=1` prints why, and
//! `TESSERA_HIL_PREFLIGHT=1` only opens the rig and switches everything off (one line and exit
//! code 2 if it cannot).

mod boot_without_sim;
mod ccid_t1;
mod pin_counters;
mod sim_swap;

use std::process::ExitCode;

use libtest_mimic::{Arguments, Failed, Trial};
use tessera_conformance::{plan, rig_path, run, Case};
use tessera_rig::config::RigDescription;

fn cases() -> Vec<Case> {
    [
        boot_without_sim::CASES,
        sim_swap::CASES,
        pin_counters::CASES,
        ccid_t1::CASES,
    ]
    .concat()
}

/// Opens the rig once (the controller answers, every board off, virtual cards made) and
/// closes it, so a rig that cannot work fails in one line before any test runs.
fn preflight(description: RigDescription) -> ExitCode {
    let name = description.name.clone();
    let scratch = match tempfile::tempdir() {
        Ok(d) => d,
        Err(e) => {
            eprintln!("conformance: rig {name}: scratch directory: {e}");
            return ExitCode::from(2);
        }
    };
    match tessera_rig::Rig::open(description, scratch.path()).and_then(|rig| rig.shutdown()) {
        Ok(()) => {
            println!("rig {name}: opened, every board off");
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("conformance: rig {name}: {e}");
            ExitCode::from(2)
        }
    }
}

fn main() -> ExitCode {
    let args = Arguments::from_args();
    let rig_file = rig_path();
    let description = match RigDescription::load(&rig_file) {
        Ok(d) => d,
        Err(e) => {
            eprintln!("conformance: {e}");
            return ExitCode::from(2);
        }
    };
    if std::env::var("TESSERA_HIL_PREFLIGHT").is_ok_and(|v| v == "1") {
        return preflight(description);
    }
    let planned = plan(&description, &cases());
    if std::env::var("TESSERA_HIL_PLAN").is_ok_and(|v| v == "1") {
        for p in &planned {
            match &p.ignored {
                None => println!("{}\trun", p.name),
                Some(reason) => println!("{}\tignored\t{reason}", p.name),
            }
        }
        return ExitCode::SUCCESS;
    }
    let trials = planned
        .into_iter()
        .map(|p| {
            let ignored = p.ignored.is_some();
            let file = rig_file.clone();
            let name = p.name.clone();
            Trial::test(name, move || run(&file, &p).map_err(|e| Failed::from(e.0)))
                .with_ignored_flag(ignored)
        })
        .collect();
    libtest_mimic::run(&args, trials).exit_code()
}
