//! `cargo xtask virtual [CARD_FILE...] [-- SERVE_ARGS]`: the virtual token for OS tools.
//!
//! It runs `tessera virtual serve` (crates/cli) on the card files (default
//! `target/virtual/token.card`), which connects each card to vsmartcard's vpcd driver inside
//! pcscd, so that every PC/SC program (OpenSC's tools and PKCS#11 module, browsers, `tessera`
//! itself) sees a card in a reader. Before that it says what it does and checks what it can
//! without root: pcscd and the vpcd driver installed, vpcd's reader.conf entry, pcscd running.

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::hil::{absolute, shown};
use crate::prereq::{self, Check, Prerequisite, PREREQUISITES};

const USAGE: &str = "\
usage: cargo xtask virtual [CARD_FILE...] [-- SERVE_ARGS]

  serves virtual SmartCard-HSM cards to pcscd through vsmartcard's vpcd, so that OS tools
  (opensc-tool, pkcs11-tool, sc-hsm-tool, tessera) see them in a reader. One file per card,
  created as a new, uninitialised card when missing (default target/virtual/token.card).
  SERVE_ARGS go to `tessera virtual serve` (--atr v3|v4, --seed TEXT, --ports P,...).
  Stop with Ctrl-C; a card's state stays in its file.
";

/// Where Debian's vsmartcard-vpcd puts its reader.conf entry (one reader, two slots, on ports
/// 35963 and 35964).
pub const VPCD_READER_CONF: &str = "/etc/reader.conf.d/vpcd";

/// pcscd's client socket (present while pcscd runs, or while systemd listens for it).
pub const PCSCD_SOCKET: &str = "/run/pcscd/pcscd.comm";

/// What `cargo xtask virtual` was asked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Options {
    /// Card files, as given.
    pub cards: Vec<PathBuf>,
    /// Arguments after `--`, for `tessera virtual serve`.
    pub serve_args: Vec<String>,
}

impl Options {
    /// Parses the arguments after `virtual`; `Ok(None)` for `--help`.
    pub fn parse(args: &[String]) -> Result<Option<Options>, String> {
        let (files, serve_args) = match args.iter().position(|a| a == "--") {
            Some(i) => (
                args.get(..i).unwrap_or_default(),
                args.get(i + 1..).unwrap_or_default(),
            ),
            None => (args, &[][..]),
        };
        let mut cards = Vec::new();
        for file in files {
            match file.as_str() {
                "-h" | "--help" => return Ok(None),
                option if option.starts_with('-') => {
                    return Err(format!(
                        "virtual: unknown option `{option}`: options of `tessera virtual serve` \
                         go after `--`\n\n{USAGE}"
                    ))
                }
                "" => return Err("virtual: an empty card file name".to_owned()),
                path => cards.push(PathBuf::from(path)),
            }
        }
        Ok(Some(Options {
            cards,
            serve_args: serve_args.to_vec(),
        }))
    }
}

/// The vpcd reader slot a card on `port` appears in, as pcsc-lite names it for Debian's
/// reader.conf (`FRIENDLYNAME "Virtual PCD"`, channel 0x8C7B = 35963).
pub fn reader_name(port: u16) -> Option<String> {
    match port {
        35963 => Some("Virtual PCD 00 00".to_owned()),
        35964 => Some("Virtual PCD 00 01".to_owned()),
        _ => None,
    }
}

/// Is a process called `name` running? (Reads /proc; false where there is none.)
fn process_running(name: &str) -> bool {
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return false;
    };
    entries.flatten().any(|entry| {
        entry
            .file_name()
            .to_str()
            .is_some_and(|pid| pid.bytes().all(|b| b.is_ascii_digit()))
            && std::fs::read_to_string(entry.path().join("comm"))
                .is_ok_and(|comm| comm.trim_end() == name)
    })
}

/// The prerequisites serving needs: pcscd and the vpcd driver.
fn needed() -> Vec<Prerequisite> {
    PREREQUISITES
        .iter()
        .copied()
        .filter(|p| {
            matches!(p.check, Check::File(f) if f.ends_with("/pcscd") || f.ends_with("libifdvpcd.so"))
        })
        .collect()
}

/// Run `cargo xtask virtual ARGS`.
pub fn run(args: &[String]) -> Result<(), String> {
    let Some(options) = Options::parse(args)? else {
        print!("{USAGE}");
        return Ok(());
    };
    let root = crate::workspace_root();
    let cwd = std::env::current_dir().map_err(|e| format!("virtual: current directory: {e}"))?;

    let missing: Vec<Prerequisite> = needed()
        .into_iter()
        .filter(|p| !prereq::is_present(p.check))
        .collect();
    if !missing.is_empty() {
        let names: Vec<&str> = missing.iter().map(|p| p.name).collect();
        return Err(format!(
            "virtual: {} not installed; install with: {} (or run `cargo xtask setup` as root)",
            names.join(" and "),
            prereq::install_commands(&missing, false).join("; ")
        ));
    }

    let cards: Vec<PathBuf> = if options.cards.is_empty() {
        let dir = root.join("target").join("virtual");
        std::fs::create_dir_all(&dir)
            .map_err(|e| format!("virtual: cannot create {}: {e}", dir.display()))?;
        vec![dir.join("token.card")]
    } else {
        options.cards.iter().map(|c| absolute(c, &cwd)).collect()
    };
    for card in &cards {
        if let Some(parent) = card.parent().filter(|p| !p.as_os_str().is_empty()) {
            if !parent.is_dir() {
                return Err(format!(
                    "virtual: {}: no such directory for the card file",
                    parent.display()
                ));
            }
        }
    }

    explain(&cards, &options.serve_args, &cwd);

    let mut argv: Vec<String> = [
        "run",
        "--locked",
        "-p",
        "tessera-cli",
        "--",
        "virtual",
        "serve",
    ]
    .map(String::from)
    .to_vec();
    argv.extend(cards.iter().map(|c| c.display().to_string()));
    argv.extend(options.serve_args.iter().cloned());
    eprintln!("xtask: virtual: cargo {}", argv.join(" "));
    let status = Command::new(prereq::cargo())
        .args(&argv)
        .current_dir(&root)
        .status()
        .map_err(|e| format!("virtual: cannot run cargo: {e}"))?;
    if status.success() {
        Ok(())
    } else {
        Err(format!(
            "virtual: `tessera virtual serve` ended with {status}"
        ))
    }
}

/// Says what is about to happen and what the OS will see, with what to do when pcscd or vpcd
/// are not set up.
fn explain(cards: &[PathBuf], serve_args: &[String], cwd: &Path) {
    let custom_ports = serve_args.iter().any(|a| a.starts_with("--ports"));
    eprintln!(
        "xtask: virtual: serving {} virtual card{} to pcscd through vsmartcard's vpcd:",
        cards.len(),
        if cards.len() == 1 { "" } else { "s" }
    );
    for (index, card) in cards.iter().enumerate() {
        let state = if card.exists() {
            "existing card"
        } else {
            "new, uninitialised card"
        };
        let port = u16::try_from(index)
            .ok()
            .and_then(|i| 35963u16.checked_add(i));
        let place = match (custom_ports, port.and_then(reader_name)) {
            (false, Some(reader)) => format!("reader `{reader}`"),
            (false, None) => format!(
                "vpcd port {}: Debian's {VPCD_READER_CONF} has two slots only; add a reader \
                 for it and give --ports",
                port.map_or("?".to_owned(), |p| p.to_string())
            ),
            (true, _) => "the port given with --ports".to_owned(),
        };
        eprintln!(
            "xtask: virtual:   {} ({state}) -> {place}",
            shown(card, cwd)
        );
    }
    if !Path::new(VPCD_READER_CONF).is_file() {
        eprintln!(
            "xtask: virtual: warning: {VPCD_READER_CONF} is missing, so pcscd has no vpcd \
             reader: reinstall vsmartcard-vpcd, or add a reader.conf entry with \
             LIBPATH /usr/lib/pcsc/drivers/serial/libifdvpcd.so and CHANNELID 0x8C7B"
        );
    }
    if process_running("pcscd") {
        eprintln!("xtask: virtual: pcscd is running; the card appears once vpcd accepts it");
    } else if Path::new(PCSCD_SOCKET).exists() {
        eprintln!(
            "xtask: virtual: pcscd is not running but {PCSCD_SOCKET} exists (socket \
             activation): the first PC/SC client starts it, e.g. `opensc-tool -l`; until \
             then the cards wait for vpcd"
        );
    } else {
        eprintln!(
            "xtask: virtual: warning: pcscd is not running: start it with \
             `sudo systemctl start pcscd.socket` (or `sudo pcscd --foreground`); until then \
             the cards wait for vpcd and reconnect by themselves"
        );
    }
    eprintln!(
        "xtask: virtual: try `opensc-tool -l`, `pkcs11-tool -L`, `cargo run -p tessera-cli -- \
         status`; initialise a new card with `cargo run -p tessera-cli -- init` (or \
         `sc-hsm-tool --initialize`). Stop with Ctrl-C; each card keeps its state in its file"
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(items: &[&str]) -> Vec<String> {
        items.iter().map(|s| (*s).to_owned()).collect()
    }

    #[test]
    fn options_split_cards_and_serve_arguments() {
        let o = Options::parse(&args(&["a.card", "b.card", "--", "--atr", "v4"]))
            .unwrap()
            .unwrap();
        assert_eq!(o.cards, [PathBuf::from("a.card"), PathBuf::from("b.card")]);
        assert_eq!(o.serve_args, ["--atr", "v4"]);
        let o = Options::parse(&[]).unwrap().unwrap();
        assert!(o.cards.is_empty() && o.serve_args.is_empty());
        assert!(Options::parse(&args(&["--help"])).unwrap().is_none());
        let err = Options::parse(&args(&["--atr", "v4"])).unwrap_err();
        assert!(err.contains("go after `--`"), "{err}");
        assert!(Options::parse(&args(&[""])).is_err());
    }

    #[test]
    fn the_first_two_ports_are_the_debian_vpcd_slots() {
        assert_eq!(reader_name(35963).as_deref(), Some("Virtual PCD 00 00"));
        assert_eq!(reader_name(35964).as_deref(), Some("Virtual PCD 00 01"));
        assert_eq!(reader_name(35965), None);
    }

    #[test]
    fn serving_needs_pcscd_and_the_vpcd_driver() {
        let names: Vec<&str> = needed().iter().map(|p| p.name).collect();
        assert_eq!(names, ["pcscd", "vsmartcard's vpcd reader driver"]);
    }

    #[test]
    fn this_process_is_found_in_proc() {
        let me = std::fs::read_to_string("/proc/self/comm").unwrap_or_default();
        if !me.is_empty() {
            assert!(process_running(me.trim_end()));
        }
        assert!(!process_running("tessera-no-such-process"));
    }
}
