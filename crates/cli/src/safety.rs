//! The confirmation rules for commands that initialise the device or spend SO-PIN tries
//! (`init`, `unblock`, `change-pin --so`; the SO-PIN's 15 tries never come back).
//!
//! 1. A blocked SO-PIN: refused (exit 5), nothing is sent; it cannot be unblocked.
//! 2. One SO-PIN try left: refused (exit 5) unless `--force`: a wrong SO-PIN now blocks it
//!    for good.
//! 3. The device (serial, and how it is reached), what the command does, and the SO-PIN
//!    tries left are shown, and the user must type `yes`, unless `--yes`. Anything else
//!    cancels (exit 6) with nothing spent. Without a terminal on stdin and without `--yes`:
//!    refused (exit 5).

use std::io::{BufRead, IsTerminal, Write};

use anyhow::Result;
use clap::Args;
use tessera_sc_hsm::pin::SO_PIN_TRIES;
use tessera_sc_hsm::PinStatus;

use crate::exit::{refuse, Exit};

/// `--yes` and `--force`.
#[derive(Debug, Clone, Copy, Default, Args)]
pub struct ConfirmArgs {
    /// Do not ask for confirmation (for scripts). The safety refusals still apply.
    #[arg(long)]
    pub yes: bool,
    /// Go on even with one SO-PIN try left (a wrong SO-PIN then blocks it for good).
    #[arg(long)]
    pub force: bool,
}

/// What is about to happen, for the question.
pub struct Plan<'a> {
    /// The action, completing "About to ...": "unblock the user PIN of".
    pub action: &'a str,
    /// The action as a noun, for refusals: "user-PIN unblock".
    pub name: &'a str,
    /// The device's serial, if known.
    pub serial: Option<&'a str>,
    /// How it is reached (`reader "..."`, `virtual card x.card`).
    pub via: &'a str,
    /// What else the user must know, one sentence each ("Every key ... is erased.").
    pub consequences: &'a [&'a str],
    /// The SO-PIN's state now.
    pub so_pin: PinStatus,
    /// Whether the command presents the SO-PIN (and so may spend a try).
    pub presents_so_pin: bool,
}

impl Plan<'_> {
    fn device(&self) -> String {
        match self.serial {
            Some(serial) => format!("SmartCard-HSM {serial} ({})", self.via),
            None => format!("the SmartCard-HSM in {} (serial unknown)", self.via),
        }
    }
}

/// Applies the rules above; `Ok` means go on.
pub fn confirm(plan: &Plan<'_>, args: ConfirmArgs) -> Result<()> {
    let device = plan.device();
    if plan.presents_so_pin {
        match plan.so_pin {
            PinStatus::Blocked => {
                return Err(refuse(
                    Exit::Blocked,
                    format!(
                        "the SO-PIN of {device} is blocked and cannot be unblocked, so {} is no \
                         longer possible; nothing was sent",
                        plan.name
                    ),
                ))
            }
            PinStatus::TriesLeft { tries_left: 1 } if !args.force => {
                return Err(refuse(
                    Exit::Blocked,
                    format!(
                        "the SO-PIN of {device} has 1 try left: a wrong SO-PIN now blocks it for \
                         good; if you are certain of the SO-PIN, run again with --force"
                    ),
                ))
            }
            _ => {}
        }
    }
    if args.yes {
        return Ok(());
    }
    if !std::io::stdin().is_terminal() {
        return Err(refuse(
            Exit::Blocked,
            format!(
                "refusing to {} {device} without confirmation: stdin is not a terminal; add \
                 --yes to confirm from a script",
                plan.action
            ),
        ));
    }
    let mut text = format!("About to {} {device}.\n", plan.action);
    for line in plan.consequences {
        text.push_str(line);
        text.push('\n');
    }
    if plan.presents_so_pin {
        match plan.so_pin {
            PinStatus::TriesLeft { tries_left } => text.push_str(&format!(
                "SO-PIN tries left: {tries_left} of {SO_PIN_TRIES}. A wrong SO-PIN costs one, \
                 and they never come back.\n"
            )),
            PinStatus::NotInitialised => {
                text.push_str("The device has no SO-PIN yet: this sets it.\n");
            }
            other => text.push_str(&format!("SO-PIN: {other}.\n")),
        }
    }
    text.push_str("Type yes to go on: ");
    let mut stderr = std::io::stderr().lock();
    // If the question cannot be shown, it cannot be answered: cancel.
    if stderr
        .write_all(text.as_bytes())
        .and_then(|()| stderr.flush())
        .is_err()
    {
        return Err(cancelled());
    }
    drop(stderr);
    let mut answer = String::new();
    match std::io::stdin().lock().read_line(&mut answer) {
        Ok(_) if answer.trim() == "yes" => Ok(()),
        _ => Err(cancelled()),
    }
}

fn cancelled() -> anyhow::Error {
    refuse(Exit::Cancelled, "cancelled; nothing was sent to the card")
}
