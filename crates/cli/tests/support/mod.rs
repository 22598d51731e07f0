//! Shared by the CLI tests: running the real `tessera` binary with PINs in environment
//! variables, card files in a temporary directory, and the checks every test makes (exit
//! code, no PIN in the output).
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

/// A distinctive user PIN (8 digits, so up to 10 retries), never printed by a passing test.
pub const PIN: &str = "58371946";
/// The PIN in hex, as an APDU dump would show it.
pub const PIN_HEX: &str = "3538333731393436";
/// A distinctive SO-PIN.
pub const SO_PIN: &str = "a1b2c3d4e5f60718";
/// Wrong PINs.
pub const WRONG_PIN: &str = "90817263";
pub const WRONG_SO_PIN: &str = "0f1e2d3c4b5a6978";
/// New PINs for change and unblock.
pub const NEW_PIN: &str = "46271835";
pub const NEW_SO_PIN: &str = "77aa66bb55cc44dd";

/// Every secret the tests use: none may appear in any output.
pub const SECRETS: [&str; 7] = [
    PIN,
    PIN_HEX,
    SO_PIN,
    WRONG_PIN,
    WRONG_SO_PIN,
    NEW_PIN,
    NEW_SO_PIN,
];

/// The environment every run gets: each secret in a variable named after it.
pub const ENV: [(&str, &str); 6] = [
    ("T_PIN", PIN),
    ("T_SO_PIN", SO_PIN),
    ("T_WRONG_PIN", WRONG_PIN),
    ("T_WRONG_SO_PIN", WRONG_SO_PIN),
    ("T_NEW_PIN", NEW_PIN),
    ("T_NEW_SO_PIN", NEW_SO_PIN),
];

/// The `tessera` binary with the secrets in its environment, stdin closed.
pub fn command(args: &[&str]) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_tessera"));
    command.args(args).stdin(Stdio::null());
    for (name, value) in ENV {
        command.env(name, value);
    }
    command
}

/// One run's result.
pub struct Run {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
    pub raw_stdout: Vec<u8>,
}

impl Run {
    pub fn text(&self) -> String {
        format!("{}{}", self.stdout, self.stderr)
    }

    /// stdout as JSON.
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_str(&self.stdout)
            .unwrap_or_else(|e| panic!("stdout is not JSON ({e}): {}", self.stdout))
    }

    #[track_caller]
    pub fn expect(self, code: i32) -> Run {
        assert_eq!(
            self.code, code,
            "expected exit {code}\nstdout: {}\nstderr: {}",
            self.stdout, self.stderr
        );
        self
    }

    #[track_caller]
    pub fn ok(self) -> Run {
        self.expect(0)
    }

    /// The error is one line (without a backtrace); notices (a card file created, a
    /// warning) may come before it.
    #[track_caller]
    pub fn one_line_error(self) -> Run {
        let lines: Vec<&str> = self
            .stderr
            .lines()
            .filter(|l| {
                !l.starts_with("tessera: created a new virtual card")
                    && !l.starts_with("tessera: warning:")
            })
            .collect();
        assert!(
            lines.len() == 1 && lines[0].starts_with("tessera: "),
            "not a one-line error: {:?}",
            self.stderr
        );
        assert!(!self.stderr.contains("panicked"), "{}", self.stderr);
        assert!(!self.stderr.contains("RUST_BACKTRACE"), "{}", self.stderr);
        self
    }
}

/// Checks that no secret appears in `text`, in any case.
#[track_caller]
pub fn assert_no_secret(text: &str) {
    let lower = text.to_ascii_lowercase();
    for secret in SECRETS {
        assert!(
            !lower.contains(&secret.to_ascii_lowercase()),
            "a PIN appears in the output:\n{text}"
        );
    }
}

/// Runs `tessera args...`; asserts that no secret is in its output.
#[track_caller]
pub fn run(args: &[&str]) -> Run {
    run_command(command(args))
}

#[track_caller]
pub fn run_command(mut command: Command) -> Run {
    let out: Output = command.output().unwrap();
    let run = Run {
        code: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        raw_stdout: out.stdout,
    };
    assert_no_secret(&run.text());
    run
}

/// A temporary directory with card files.
pub struct Cards {
    pub dir: tempfile::TempDir,
}

impl Cards {
    pub fn new() -> Cards {
        Cards {
            dir: tempfile::tempdir().unwrap(),
        }
    }

    pub fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    pub fn card(&self, name: &str) -> String {
        self.path(name).display().to_string()
    }
}

/// `tessera ARGS --virtual CARD`.
#[track_caller]
pub fn on(card: &str, args: &[&str]) -> Run {
    let mut all = args.to_vec();
    all.extend_from_slice(&["--virtual", card]);
    run(&all)
}

/// Initialises `card` with the test PINs and `extra` arguments (e.g. `--retries 3`).
#[track_caller]
pub fn initialise(card: &str, extra: &[&str]) -> Run {
    let mut args = vec![
        "init",
        "--so-pin-env",
        "T_SO_PIN",
        "--pin-env",
        "T_PIN",
        "--yes",
    ];
    args.extend_from_slice(extra);
    on(card, &args).ok()
}

/// The `status --json` of `card`.
#[track_caller]
pub fn status(card: &str) -> serde_json::Value {
    let run = on(card, &["status", "--json"]);
    assert!(run.code == 0 || run.code == 5, "{}", run.text());
    run.json()
}

pub fn so_tries(card: &str) -> Option<u64> {
    status(card)["so_pin"]["tries_left"].as_u64()
}

pub fn user_tries(card: &str) -> Option<u64> {
    status(card)["user_pin"]["tries_left"].as_u64()
}

pub fn exists(path: &Path) -> bool {
    path.exists()
}
