//! Where PINs (and other secrets) come from: a prompt without echo when stdin is a terminal,
//! or an environment variable or a file named by a flag. Never from the command line, where
//! other users see them (`ps`), and never echoed, logged or put in an error message.

use std::io::IsTerminal;
use std::path::{Path, PathBuf};

use anyhow::Result;
use clap::Args;
use tessera_sc_hsm::{Pin, SoPin};
use zeroize::Zeroizing;

use crate::exit::usage;

/// The user PIN's source.
#[derive(Debug, Clone, Default, Args)]
pub struct UserPinArgs {
    /// Read the user PIN from this environment variable (give its name, not the PIN).
    #[arg(long, value_name = "VAR", conflicts_with = "pin_file")]
    pub pin_env: Option<String>,
    /// Read the user PIN from this file (one line).
    #[arg(long, value_name = "FILE")]
    pub pin_file: Option<PathBuf>,
}

/// The SO-PIN's source.
#[derive(Debug, Clone, Default, Args)]
pub struct SoPinArgs {
    /// Read the SO-PIN (16 hex digits) from this environment variable (give its name).
    #[arg(long, value_name = "VAR", conflicts_with = "so_pin_file")]
    pub so_pin_env: Option<String>,
    /// Read the SO-PIN (16 hex digits) from this file (one line).
    #[arg(long, value_name = "FILE")]
    pub so_pin_file: Option<PathBuf>,
}

/// The source of a new PIN (the new user PIN, or the new SO-PIN with `change-pin --so`).
#[derive(Debug, Clone, Default, Args)]
pub struct NewPinArgs {
    /// Read the new PIN from this environment variable (give its name, not the PIN).
    #[arg(long, value_name = "VAR", conflicts_with = "new_pin_file")]
    pub new_pin_env: Option<String>,
    /// Read the new PIN from this file (one line).
    #[arg(long, value_name = "FILE")]
    pub new_pin_file: Option<PathBuf>,
}

/// Where one secret comes from.
#[derive(Debug, Clone, Copy)]
pub struct Source<'a> {
    /// What it is, for prompts and messages: "user PIN", "SO-PIN".
    pub what: &'a str,
    /// The environment variable to read, if one was named.
    pub env: Option<&'a str>,
    /// The file to read, if one was named.
    pub file: Option<&'a Path>,
    /// The flags that name a source, for the message when none can be used.
    pub flags: &'a str,
}

impl UserPinArgs {
    /// The source of the (current) user PIN.
    pub fn source(&self) -> Source<'_> {
        Source {
            what: "user PIN",
            env: self.pin_env.as_deref(),
            file: self.pin_file.as_deref(),
            flags: "--pin-env VAR or --pin-file FILE",
        }
    }
}

impl SoPinArgs {
    /// The source of the SO-PIN.
    pub fn source(&self) -> Source<'_> {
        Source {
            what: "SO-PIN",
            env: self.so_pin_env.as_deref(),
            file: self.so_pin_file.as_deref(),
            flags: "--so-pin-env VAR or --so-pin-file FILE",
        }
    }
}

impl NewPinArgs {
    /// The source of a new PIN described as `what`.
    pub fn source<'a>(&'a self, what: &'a str) -> Source<'a> {
        Source {
            what,
            env: self.new_pin_env.as_deref(),
            file: self.new_pin_file.as_deref(),
            flags: "--new-pin-env VAR or --new-pin-file FILE",
        }
    }

    /// Whether a non-interactive source was named.
    pub fn given(&self) -> bool {
        self.new_pin_env.is_some() || self.new_pin_file.is_some()
    }
}

/// Whether a prompt can be shown: stdin is a terminal.
pub fn interactive() -> bool {
    std::io::stdin().is_terminal()
}

/// Reads a secret from `source`: the environment variable, the file, or (when stdin is a
/// terminal) a prompt without echo. With `repeat`, a prompt asks twice and the two must agree
/// (for a PIN being set).
pub fn read(source: Source<'_>, prompt: &str, repeat: bool) -> Result<Zeroizing<String>> {
    if let Some(var) = source.env {
        return match std::env::var_os(var) {
            None => Err(usage(format!(
                "the environment variable {var} (named by the flag for the {}) is not set",
                source.what
            ))),
            Some(value) => match value.into_string() {
                Ok(text) => Ok(Zeroizing::new(text)),
                Err(raw) => {
                    drop(Zeroizing::new(raw.into_encoded_bytes()));
                    Err(usage(format!(
                        "the {} in the environment variable {var} is not UTF-8 text",
                        source.what
                    )))
                }
            },
        };
    }
    if let Some(path) = source.file {
        let bytes = Zeroizing::new(std::fs::read(path).map_err(|e| {
            usage(format!(
                "cannot read the {} from {}: {e}",
                source.what,
                path.display()
            ))
        })?);
        let text = std::str::from_utf8(&bytes).map_err(|_| {
            usage(format!(
                "the {} file {} is not UTF-8 text",
                source.what,
                path.display()
            ))
        })?;
        let line = text.strip_suffix('\n').unwrap_or(text);
        let line = line.strip_suffix('\r').unwrap_or(line);
        if line.contains('\n') {
            return Err(usage(format!(
                "the {} file {} holds more than one line",
                source.what,
                path.display()
            )));
        }
        return Ok(Zeroizing::new(line.to_owned()));
    }
    if !interactive() {
        return Err(usage(format!(
            "no {} given, and stdin is not a terminal to ask for it: use {}",
            source.what, source.flags
        )));
    }
    let first = prompt_hidden(prompt)?;
    if repeat {
        let second = prompt_hidden(&format!("Repeat the {}: ", source.what))?;
        if *first != *second {
            return Err(usage(format!(
                "the two entries of the {} differ; nothing was changed",
                source.what
            )));
        }
    }
    Ok(first)
}

fn prompt_hidden(prompt: &str) -> Result<Zeroizing<String>> {
    rpassword::prompt_password(prompt)
        .map(Zeroizing::new)
        .map_err(|e| usage(format!("cannot read from the terminal: {e}")))
}

/// Reads a user PIN (6 to 16 characters).
pub fn user_pin(source: Source<'_>, prompt: &str, repeat: bool) -> Result<Pin> {
    let text = read(source, prompt, repeat)?;
    Ok(Pin::new(&text)?)
}

/// Reads an SO-PIN (16 hex digits, decoded as OpenSC does).
pub fn so_pin(source: Source<'_>, prompt: &str, repeat: bool) -> Result<SoPin> {
    let text = read(source, prompt, repeat)?;
    Ok(SoPin::from_hex(text.trim())?)
}
