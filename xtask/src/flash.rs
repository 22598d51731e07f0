//! `cargo xtask flash [--rig FILE] [--dut NAME | --probe SELECTOR] [--release] [--profile P]`:
//! builds the firmware (`firmware/`, its own workspace) with the boot-policy feature of the
//! board's firmware profile, then flashes it over SWD with `tessera-flash` (a binary of
//! `tessera-rig` behind its `probe` feature, so probe-rs stays out of xtask), which verifies,
//! resets and runs the board.
//!
//! With `--dut`, the board's firmware profile comes from the rig file. Boards marked
//! `firmware = "stock"` are refused: xtask never overwrites the Nitrokey firmware; flash ours
//! once by hand and change the rig file. Boards of a virtual rig are refused: they run the
//! bridge in-process.

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::hil::{absolute, shown};
use crate::prereq::{self, Policy};
use crate::rigfile::{Backend, RigFile};

const USAGE: &str = "\
usage: cargo xtask flash [--rig FILE] (--dut NAME | --probe VID:PID[:SERIAL]) [--release]
                         [--profile tessera-require-card|tessera-reader]

  builds firmware/ for the profile and flashes it over SWD with probe-rs (verify, reset, run).
  --dut NAME     a board of the rig file (--rig, default rig/virtual.toml); its probe, chip and
                 firmware profile come from there. Stock boards are refused.
  --probe SEL    a probe as probe-rs selects it (list them with `probe-rs list`); the chip is the
                 Nitrokey HSM 2's (STM32F103TB)
  --release      the release build (what `cargo xtask size` measures); default: the dev build
  --profile P    the boot policy: tessera-require-card (no card, no USB device; the default
                 without --dut) or tessera-reader (enumerates with an empty slot)
";

/// Our firmware profiles (the rig file's `firmware` values other than `stock`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Profile {
    /// The stock boot policy: no card, no USB device.
    RequireCard,
    /// A reader: enumerates without a card, the slot reported empty.
    Reader,
}

impl Profile {
    /// The name used in rig files and on the command line.
    pub fn as_str(self) -> &'static str {
        match self {
            Profile::RequireCard => "tessera-require-card",
            Profile::Reader => "tessera-reader",
        }
    }

    /// Parses a rig file's or the command line's name; `stock` is an error of its own.
    pub fn parse(name: &str) -> Result<Profile, String> {
        match name {
            "tessera-require-card" => Ok(Profile::RequireCard),
            "tessera-reader" => Ok(Profile::Reader),
            "stock" => Err(
                "the stock firmware is not built here: xtask flashes only ours \
                 (tessera-require-card or tessera-reader)"
                    .to_owned(),
            ),
            other => Err(format!(
                "unknown firmware profile `{other}`: expected tessera-require-card or tessera-reader"
            )),
        }
    }

    /// The firmware's cargo features for it (`firmware/Cargo.toml`: `bridge` is the default).
    pub fn cargo_features(self) -> &'static [&'static str] {
        match self {
            Profile::RequireCard => &[],
            Profile::Reader => &["--features", "reader"],
        }
    }
}

/// Which board to flash.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Target {
    /// A board of a rig file.
    Dut {
        /// The rig file, as given (default rig/virtual.toml).
        rig: Option<PathBuf>,
        /// The board's name.
        name: String,
    },
    /// A probe, by selector.
    Probe(String),
}

/// What `cargo xtask flash` was asked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Options {
    /// The board.
    pub target: Target,
    /// `--release`.
    pub release: bool,
    /// `--profile`.
    pub profile: Option<Profile>,
}

impl Options {
    /// Parses the arguments after `flash`; `Ok(None)` for `--help`.
    pub fn parse(args: &[String]) -> Result<Option<Options>, String> {
        let mut rig = None;
        let mut dut = None;
        let mut probe = None;
        let mut release = false;
        let mut profile = None;
        let mut rest = args.iter();
        while let Some(arg) = rest.next() {
            let mut value = |what: &str| {
                rest.next()
                    .filter(|v| !v.is_empty())
                    .cloned()
                    .ok_or(format!("flash: {arg} takes {what}\n\n{USAGE}"))
            };
            match arg.as_str() {
                "--rig" => rig = Some(PathBuf::from(value("a file")?)),
                "--dut" => dut = Some(value("a board name")?),
                "--probe" => probe = Some(value("a probe selector VID:PID[:SERIAL]")?),
                "--profile" => {
                    profile = Some(
                        Profile::parse(&value("a firmware profile")?)
                            .map_err(|e| format!("flash: --profile: {e}"))?,
                    )
                }
                "--release" => release = true,
                "-h" | "--help" => return Ok(None),
                other => return Err(format!("flash: unknown argument `{other}`\n\n{USAGE}")),
            }
        }
        let target = match (dut, probe) {
            (Some(_), Some(_)) => {
                return Err("flash: give --dut or --probe, not both".to_owned());
            }
            (Some(name), None) => Target::Dut { rig, name },
            (None, Some(selector)) => {
                if rig.is_some() {
                    return Err("flash: --rig goes with --dut, not with --probe".to_owned());
                }
                check_selector(&selector)?;
                Target::Probe(selector)
            }
            (None, None) => {
                return Err(format!(
                    "flash: say which board: --dut NAME (a board of the rig file) or \
                     --probe VID:PID[:SERIAL]\n\n{USAGE}"
                ))
            }
        };
        Ok(Some(Options {
            target,
            release,
            profile,
        }))
    }
}

/// Checks the form of a probe selector (`tessera-flash` checks it again, and finds the probe).
pub fn check_selector(selector: &str) -> Result<(), String> {
    let mut parts = selector.splitn(3, ':');
    let hex4 = |p: Option<&str>| {
        p.is_some_and(|p| p.len() == 4 && p.bytes().all(|b| b.is_ascii_hexdigit()))
    };
    let ids = hex4(parts.next()) && hex4(parts.next());
    let serial = parts
        .next()
        .is_none_or(|s| !s.is_empty() && s.bytes().all(|b| b.is_ascii_graphic()));
    if ids && serial {
        Ok(())
    } else {
        Err(format!(
            "flash: --probe {selector}: expected VID:PID[:SERIAL] with 4 hex digits each \
             (e.g. 0483:3748; `probe-rs list` shows the attached probes)"
        ))
    }
}

/// The firmware profile to build for a board of a rig file, or why that board is not flashed.
pub fn board_profile(
    rig: &RigFile,
    shown_rig: &str,
    dut: &str,
    asked: Option<Profile>,
) -> Result<Profile, String> {
    let board = rig.board(dut).ok_or_else(|| {
        format!(
            "flash: rig file {shown_rig} has no board `{dut}` (boards: {})",
            rig.board_names().join(", ")
        )
    })?;
    if rig.backend == Backend::Virtual {
        return Err(format!(
            "flash: board `{dut}` is on a virtual rig ({shown_rig}): a virtual board runs the \
             bridge in-process and cannot be flashed; give a real rig file (backend = \"real\")"
        ));
    }
    let firmware = board
        .firmware
        .as_deref()
        .ok_or_else(|| format!("flash: board `{dut}` has no `firmware` in {shown_rig}"))?;
    if firmware == "stock" {
        return Err(format!(
            "flash: board `{dut}` runs the stock firmware (firmware = \"stock\" in {shown_rig}): \
             xtask never overwrites it. Flash ours once by hand (cargo xtask flash --probe ...) \
             if you mean to, then set its firmware to tessera-require-card or tessera-reader"
        ));
    }
    let profile = Profile::parse(firmware).map_err(|e| format!("flash: board `{dut}`: {e}"))?;
    match asked {
        Some(asked) if asked != profile => Err(format!(
            "flash: board `{dut}` is listed with firmware {} in {shown_rig}, not {}: change \
             the rig file (the suites expect what it says) or drop --profile",
            profile.as_str(),
            asked.as_str()
        )),
        _ => Ok(profile),
    }
}

/// The firmware's cargo build arguments and the ELF it makes (under `firmware/`).
pub fn firmware_build(profile: Profile, release: bool, firmware: &Path) -> (Vec<String>, PathBuf) {
    let target_dir = firmware.join("target");
    let mut argv: Vec<String> = ["build", "--locked"].map(String::from).to_vec();
    if release {
        argv.push("--release".into());
    }
    argv.extend(profile.cargo_features().iter().map(|s| (*s).to_owned()));
    // The firmware is its own workspace with its own target directory, whatever
    // CARGO_TARGET_DIR says for the host workspace.
    argv.push("--target-dir".into());
    argv.push(target_dir.display().to_string());
    let elf = target_dir
        .join(crate::FIRMWARE_TARGET)
        .join(if release { "release" } else { "debug" })
        .join("tessera-firmware");
    (argv, elf)
}

/// Run `cargo xtask flash ARGS`.
pub fn run(args: &[String]) -> Result<(), String> {
    let Some(options) = Options::parse(args)? else {
        print!("{USAGE}");
        return Ok(());
    };
    let root = crate::workspace_root();
    let cwd = std::env::current_dir().map_err(|e| format!("flash: current directory: {e}"))?;
    let (profile, flash_args) = match &options.target {
        Target::Dut { rig, name } => {
            let path = match rig {
                Some(file) => absolute(file, &cwd),
                None => root.join("rig/virtual.toml"),
            };
            let shown_rig = shown(&path, &cwd);
            let rig = RigFile::load(&path, &shown_rig).map_err(|e| format!("flash: {e}"))?;
            let profile = board_profile(&rig, &shown_rig, name, options.profile)?;
            let flash_args = vec![
                "--rig".to_owned(),
                path.display().to_string(),
                "--dut".to_owned(),
                name.clone(),
            ];
            (profile, flash_args)
        }
        Target::Probe(selector) => (
            options.profile.unwrap_or(Profile::RequireCard),
            vec!["--probe".to_owned(), selector.clone()],
        ),
    };
    prereq::ensure(Policy::InstallWhenPossible)?;
    let cargo = prereq::cargo();

    let firmware = root.join("firmware");
    let (build, elf) = firmware_build(profile, options.release, &firmware);
    eprintln!(
        "xtask: flash: building the firmware ({}, {}): cargo {} (in firmware/)",
        profile.as_str(),
        if options.release { "release" } else { "dev" },
        build.join(" ")
    );
    let status = Command::new(&cargo)
        .args(&build)
        .current_dir(&firmware)
        .status()
        .map_err(|e| format!("flash: cannot run cargo: {e}"))?;
    if !status.success() {
        return Err("flash: the firmware build failed".to_owned());
    }

    let mut argv: Vec<String> = [
        "run",
        "--locked",
        "-p",
        "tessera-rig",
        "--features",
        "probe",
        "--bin",
        "tessera-flash",
        "--",
        "--elf",
    ]
    .map(String::from)
    .to_vec();
    argv.push(elf.display().to_string());
    argv.extend(flash_args);
    eprintln!(
        "xtask: flash: cargo {} (the first build of probe-rs takes several minutes)",
        argv.join(" ")
    );
    let status = Command::new(&cargo)
        .args(&argv)
        .current_dir(&root)
        .status()
        .map_err(|e| format!("flash: cannot run cargo: {e}"))?;
    match status.code() {
        Some(0) => Ok(()),
        // tessera-flash: no probe, or none that matches (it said which it saw).
        Some(2) => {
            Err("flash: no SWD probe to write with (see above); nothing was written".to_owned())
        }
        _ => Err(format!("flash: tessera-flash failed ({status})")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(items: &[&str]) -> Vec<String> {
        items.iter().map(|s| (*s).to_owned()).collect()
    }

    fn parse(items: &[&str]) -> Result<Options, String> {
        Options::parse(&args(items)).map(|o| o.expect("not --help"))
    }

    #[test]
    fn options_parse() {
        let o = parse(&["--rig", "rig/lab.toml", "--dut", "hsm2-ours", "--release"]).unwrap();
        assert_eq!(
            o.target,
            Target::Dut {
                rig: Some("rig/lab.toml".into()),
                name: "hsm2-ours".into()
            }
        );
        assert!(o.release);
        let o = parse(&["--probe", "0483:3748", "--profile", "tessera-reader"]).unwrap();
        assert_eq!(o.target, Target::Probe("0483:3748".into()));
        assert_eq!(o.profile, Some(Profile::Reader));
        assert!(Options::parse(&args(&["--help"])).unwrap().is_none());
    }

    #[test]
    fn bad_options_are_one_clear_error() {
        for (items, expected) in [
            (&["--dut", "a", "--probe", "0483:3748"][..], "not both"),
            (&[], "say which board"),
            (&["--probe"], "--probe takes a probe selector"),
            (&["--dut", ""], "--dut takes a board name"),
            (
                &["--rig", "r.toml", "--probe", "0483:3748"],
                "--rig goes with --dut",
            ),
            (&["--probe", "483:3748"], "4 hex digits"),
            (&["--probe", "0483"], "4 hex digits"),
            (&["--probe", "0483:37g8"], "4 hex digits"),
            (&["--probe", "0483:3748:"], "4 hex digits"),
            (&["--dut", "a", "--profile", "stock"], "only ours"),
            (
                &["--dut", "a", "--profile", "bridge"],
                "unknown firmware profile `bridge`",
            ),
            (&["--dut", "a", "--erase"], "unknown argument `--erase`"),
        ] {
            let err = parse(items).expect_err(&items.join(" "));
            assert!(err.contains(expected), "{items:?}: {err}");
        }
        assert!(check_selector("0483:3748:066DFF535154887767154120").is_ok());
        assert!(check_selector("0483:374B").is_ok());
    }

    fn lab() -> RigFile {
        let root = crate::workspace_root();
        RigFile::load(&root.join("rig/example-lab.toml"), "rig/example-lab.toml")
            .expect("example-lab.toml")
    }

    #[test]
    fn boards_take_their_profile_from_the_rig_file() {
        let lab = lab();
        assert_eq!(
            board_profile(&lab, "rig/example-lab.toml", "hsm2-ours", None),
            Ok(Profile::Reader)
        );
        assert_eq!(
            board_profile(&lab, "r", "hsm2-ours", Some(Profile::Reader)),
            Ok(Profile::Reader)
        );
        let err = board_profile(&lab, "r", "hsm2-ours", Some(Profile::RequireCard)).unwrap_err();
        assert!(err.contains("listed with firmware tessera-reader"), "{err}");
    }

    #[test]
    fn stock_virtual_and_unknown_boards_are_refused() {
        let lab = lab();
        let err = board_profile(&lab, "rig/example-lab.toml", "hsm2-stock", None).unwrap_err();
        assert!(err.contains("runs the stock firmware"), "{err}");
        assert!(err.contains("never overwrites it"), "{err}");
        let err = board_profile(&lab, "r", "nope", None).unwrap_err();
        assert_eq!(
            err,
            "flash: rig file r has no board `nope` (boards: hsm2-ours, hsm2-stock)"
        );
        let root = crate::workspace_root();
        let virt = RigFile::load(&root.join("rig/virtual.toml"), "rig/virtual.toml")
            .expect("virtual.toml");
        let err = board_profile(&virt, "rig/virtual.toml", "vreq", None).unwrap_err();
        assert!(err.contains("a virtual board"), "{err}");
        assert!(err.contains("cannot be flashed"), "{err}");
    }

    #[test]
    fn the_build_follows_the_profile() {
        let fw = Path::new("/w/firmware");
        let (argv, elf) = firmware_build(Profile::Reader, true, fw);
        assert_eq!(
            argv,
            [
                "build",
                "--locked",
                "--release",
                "--features",
                "reader",
                "--target-dir",
                "/w/firmware/target"
            ]
        );
        assert_eq!(
            elf,
            Path::new("/w/firmware/target/thumbv7m-none-eabi/release/tessera-firmware")
        );
        let (argv, elf) = firmware_build(Profile::RequireCard, false, fw);
        assert_eq!(
            argv,
            ["build", "--locked", "--target-dir", "/w/firmware/target"]
        );
        assert!(elf.ends_with("debug/tessera-firmware"));
    }
}
