//! The system prerequisites of the build and the tests, checked before anything else is built.
//!
//! One table, [`PREREQUISITES`], says what is needed, how to tell that it is there and how to
//! install it. `cargo xtask test`, `hil` and `setup` install what is missing when they may (root
//! with apt-get for system packages; rustup and cargo for Rust targets and tools); `cargo xtask ci`
//! only checks, and names the commands that would install what is missing.

use std::process::{Command, Stdio};

/// How to tell whether a prerequisite is present.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Check {
    /// A program on the PATH that answers `--version`.
    Program(&'static str),
    /// A program on the PATH that succeeds with these arguments (for those without
    /// `--version`, such as `ip -V`).
    ProgramWith(&'static str, &'static [&'static str]),
    /// A library that `pkg-config --exists` knows.
    PkgConfig(&'static str),
    /// A rustup target among `rustup target list --installed`.
    RustTarget(&'static str),
    /// A cargo subcommand that answers `cargo <name> --version`.
    CargoSubcommand(&'static str),
    /// A file that a package installs (a daemon in /usr/sbin, a driver).
    File(&'static str),
}

/// How to install a missing prerequisite.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Install {
    /// A Debian/Ubuntu package (needs root).
    Apt(&'static str),
    /// `rustup target add <target>`.
    RustupTarget(&'static str),
    /// `rustup component add <component>`.
    RustupComponent(&'static str),
    /// `cargo install --locked <crate>`.
    Cargo(&'static str),
}

/// One thing the build or the tests need from the machine.
#[derive(Debug, Clone, Copy)]
pub struct Prerequisite {
    /// What it is, for messages.
    pub name: &'static str,
    /// Who needs it.
    pub needed_by: &'static str,
    /// How to tell that it is there.
    pub check: Check,
    /// How to install it.
    pub install: Install,
}

/// Everything the README's commands need on a fresh Debian or Ubuntu machine that has only Rust.
///
/// `.ci/run` installs the apt packages and the target itself (CI must not depend on this table
/// being right); a tidy test checks that the two agree.
pub const PREREQUISITES: &[Prerequisite] = &[
    Prerequisite {
        name: "pkg-config",
        needed_by: "the -sys crates of pcsc, rusb and udev",
        check: Check::Program("pkg-config"),
        install: Install::Apt("pkg-config"),
    },
    Prerequisite {
        name: "libpcsclite (development files)",
        needed_by: "the PC/SC transport (crates/host)",
        check: Check::PkgConfig("libpcsclite"),
        install: Install::Apt("libpcsclite-dev"),
    },
    Prerequisite {
        name: "libusb 1.0 (development files)",
        needed_by: "the CCID-over-USB transport (crates/host, rusb)",
        check: Check::PkgConfig("libusb-1.0"),
        install: Install::Apt("libusb-1.0-0-dev"),
    },
    Prerequisite {
        name: "libudev (development files)",
        needed_by: "USB device discovery and the rig's serial ports",
        check: Check::PkgConfig("libudev"),
        install: Install::Apt("libudev-dev"),
    },
    Prerequisite {
        name: "pcscd",
        needed_by: "the PC/SC tests (a private pcscd per test, tessera-testkit)",
        check: Check::File("/usr/sbin/pcscd"),
        install: Install::Apt("pcscd"),
    },
    Prerequisite {
        name: "vsmartcard's vpcd reader driver",
        needed_by: "serving virtual cards to pcscd (`tessera virtual serve`, PC/SC tests)",
        check: Check::File("/usr/lib/pcsc/drivers/serial/libifdvpcd.so"),
        install: Install::Apt("vsmartcard-vpcd"),
    },
    Prerequisite {
        name: "iproute2",
        needed_by: "the PC/SC tests' private network namespace (`ip link set lo up`)",
        check: Check::ProgramWith("ip", &["-V"]),
        install: Install::Apt("iproute2"),
    },
    Prerequisite {
        name: "OpenSC tools",
        needed_by: "the virtual card's integration tests (sc-hsm-tool, pkcs11-tool)",
        check: Check::File("/usr/bin/sc-hsm-tool"),
        install: Install::Apt("opensc"),
    },
    Prerequisite {
        name: "OpenSSL command-line tool",
        needed_by: "the integration tests' independent signature checks (openssl dgst -verify)",
        check: Check::ProgramWith("openssl", &["version"]),
        install: Install::Apt("openssl"),
    },
    Prerequisite {
        name: "Rust target thumbv7m-none-eabi",
        needed_by: "the firmware and the no_std build check of the protocol crates",
        check: Check::RustTarget("thumbv7m-none-eabi"),
        install: Install::RustupTarget("thumbv7m-none-eabi"),
    },
    Prerequisite {
        name: "rustfmt",
        needed_by: "the format check",
        check: Check::CargoSubcommand("fmt"),
        install: Install::RustupComponent("rustfmt"),
    },
    Prerequisite {
        name: "clippy",
        needed_by: "the lint check",
        check: Check::CargoSubcommand("clippy"),
        install: Install::RustupComponent("clippy"),
    },
    Prerequisite {
        name: "cargo-nextest",
        needed_by: "the test runner",
        check: Check::CargoSubcommand("nextest"),
        install: Install::Cargo("cargo-nextest"),
    },
    Prerequisite {
        name: "cargo-fuzz",
        needed_by: "building and running the fuzz targets in fuzz/",
        check: Check::CargoSubcommand("fuzz"),
        install: Install::Cargo("cargo-fuzz"),
    },
];

/// Whether installs may be done, or only reported.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Policy {
    /// Install what is missing where this process may (apt-get only as root).
    InstallWhenPossible,
    /// Check only; fail with the commands that would install what is missing.
    CheckOnly,
}

/// Is this prerequisite present on this machine?
pub fn is_present(check: Check) -> bool {
    match check {
        Check::Program(program) => quiet(Command::new(program).arg("--version")),
        Check::ProgramWith(program, args) => quiet(Command::new(program).args(args)),
        Check::PkgConfig(library) => quiet(Command::new("pkg-config").args(["--exists", library])),
        Check::RustTarget(target) => Command::new("rustup")
            .args(["target", "list", "--installed"])
            .stderr(Stdio::null())
            .output()
            .map(|out| {
                String::from_utf8_lossy(&out.stdout)
                    .lines()
                    .any(|line| line.trim() == target)
            })
            .unwrap_or(false),
        Check::CargoSubcommand(sub) => quiet(Command::new(cargo()).args([sub, "--version"])),
        Check::File(path) => std::path::Path::new(path).exists(),
    }
}

/// The shell commands that would install `missing`, grouped per installer, in order.
pub fn install_commands(missing: &[Prerequisite], as_root: bool) -> Vec<String> {
    let apt: Vec<&str> = missing
        .iter()
        .filter_map(|p| match p.install {
            Install::Apt(package) => Some(package),
            _ => None,
        })
        .collect();
    let mut commands = Vec::new();
    if !apt.is_empty() {
        let sudo = if as_root { "" } else { "sudo " };
        commands.push(format!(
            "{sudo}apt-get update && {sudo}apt-get install -y {}",
            apt.join(" ")
        ));
    }
    for p in missing {
        match p.install {
            Install::Apt(_) => {}
            Install::RustupTarget(target) => commands.push(format!("rustup target add {target}")),
            Install::RustupComponent(c) => commands.push(format!("rustup component add {c}")),
            Install::Cargo(krate) => commands.push(format!("cargo install --locked {krate}")),
        }
    }
    commands
}

/// Check every prerequisite; install what is missing when `policy` allows and this process can.
///
/// Returns an error naming what is still missing and the commands that would install it.
pub fn ensure(policy: Policy) -> Result<(), String> {
    let missing: Vec<Prerequisite> = PREREQUISITES
        .iter()
        .copied()
        .filter(|p| !is_present(p.check))
        .collect();
    if missing.is_empty() {
        eprintln!("xtask: prerequisites: all {} present", PREREQUISITES.len());
        return Ok(());
    }
    for p in &missing {
        eprintln!("xtask: missing {} (needed by {})", p.name, p.needed_by);
    }
    let root = is_root();
    if policy == Policy::InstallWhenPossible {
        let has_apt = quiet(Command::new("apt-get").arg("--version"));
        let needs_apt = missing.iter().any(|p| matches!(p.install, Install::Apt(_)));
        if needs_apt && !(root && has_apt) {
            return Err(report(
                &missing,
                root,
                "system packages need root and apt-get",
            ));
        }
        for command in install_commands(&missing, root) {
            eprintln!("xtask: installing: {command}");
            let status = Command::new("sh")
                .args(["-c", &command])
                .env("DEBIAN_FRONTEND", "noninteractive")
                .status();
            if !matches!(status, Ok(s) if s.success()) {
                return Err(report(&missing, root, &format!("`{command}` failed")));
            }
        }
        let still: Vec<Prerequisite> = missing
            .iter()
            .copied()
            .filter(|p| !is_present(p.check))
            .collect();
        if still.is_empty() {
            return Ok(());
        }
        return Err(report(&still, root, "still missing after installing"));
    }
    Err(report(&missing, root, "`cargo xtask ci` does not install"))
}

fn report(missing: &[Prerequisite], root: bool, why: &str) -> String {
    let names: Vec<&str> = missing.iter().map(|p| p.name).collect();
    format!(
        "missing prerequisites ({why}): {}\ninstall them with:\n  {}",
        names.join(", "),
        install_commands(missing, root).join("\n  ")
    )
}

fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .map(|out| String::from_utf8_lossy(&out.stdout).trim() == "0")
        .unwrap_or(false)
}

fn quiet(command: &mut Command) -> bool {
    command
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .map(|s| s.success())
        .unwrap_or(false)
}

/// The cargo that runs this xtask (so `cargo +toolchain xtask` keeps its toolchain).
pub fn cargo() -> String {
    std::env::var("CARGO").unwrap_or_else(|_| "cargo".to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn install_commands_group_apt_packages_into_one_command() {
        let missing: Vec<Prerequisite> = PREREQUISITES.to_vec();
        let commands = install_commands(&missing, false);
        assert!(commands[0].starts_with("sudo apt-get update && sudo apt-get install -y "));
        assert!(commands[0].contains("libpcsclite-dev libusb-1.0-0-dev libudev-dev"));
        assert_eq!(commands.iter().filter(|c| c.contains("apt-get")).count(), 1);
        assert!(commands.contains(&"rustup target add thumbv7m-none-eabi".to_owned()));
        assert!(commands.contains(&"cargo install --locked cargo-nextest".to_owned()));
    }

    #[test]
    fn root_gets_no_sudo() {
        let commands = install_commands(&PREREQUISITES[..1], true);
        assert_eq!(
            commands,
            ["apt-get update && apt-get install -y pkg-config"]
        );
    }

    #[test]
    fn a_program_that_does_not_exist_is_reported_missing() {
        assert!(!is_present(Check::Program("tessera-no-such-program")));
        assert!(!is_present(Check::CargoSubcommand(
            "tessera-no-such-subcommand"
        )));
    }
}
