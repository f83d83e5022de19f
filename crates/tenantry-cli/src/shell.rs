//! The one way the CLI writes to the terminal (cargo's `Shell` is the
//! model): standard output for results, standard error for messages, colour
//! decided once from `--no-color`, `NO_COLOR` and whether each stream is a
//! terminal.
//!
//! A closed pipe (`tenantry explain bob | head -3`) is a normal end of the
//! reader's interest, not an error: further output is dropped silently and
//! the command still finishes what it was doing (an apply is never cut
//! short by its reader going away) and exits with its own code.

use crate::output::Style;
use std::io::{IsTerminal, Write};

pub struct Shell {
    out: Box<dyn Write>,
    err: Box<dyn Write>,
    out_style: Style,
    err_style: Style,
    out_terminal: bool,
    err_terminal: bool,
    out_closed: bool,
    err_closed: bool,
}

impl Shell {
    /// The process's own streams.
    pub fn stdio(no_color: bool) -> Shell {
        let allowed = !no_color && std::env::var_os("NO_COLOR").is_none();
        let out_terminal = std::io::stdout().is_terminal();
        let err_terminal = std::io::stderr().is_terminal();
        Shell {
            out: Box::new(std::io::stdout()),
            err: Box::new(std::io::stderr()),
            out_style: Style { color: allowed && out_terminal },
            err_style: Style { color: allowed && err_terminal },
            out_terminal,
            err_terminal,
            out_closed: false,
            err_closed: false,
        }
    }

    /// Colours for what goes to standard output.
    pub fn out_style(&self) -> Style {
        self.out_style
    }

    /// Colours for what goes to standard error.
    pub fn err_style(&self) -> Style {
        self.err_style
    }

    pub fn err_is_terminal(&self) -> bool {
        self.err_terminal
    }

    pub fn out_is_terminal(&self) -> bool {
        self.out_terminal
    }

    /// Write `text` to standard output as it is.
    pub fn print(&mut self, text: &str) {
        if !self.out_closed {
            self.out_closed = write_all(&mut self.out, text.as_bytes());
        }
    }

    /// Write `text` and a newline to standard output.
    pub fn println(&mut self, text: &str) {
        self.print(text);
        self.print("\n");
    }

    /// Write raw bytes to standard output.
    pub fn print_bytes(&mut self, bytes: &[u8]) {
        if !self.out_closed {
            self.out_closed = write_all(&mut self.out, bytes);
        }
    }

    /// A JSON document on standard output, pretty-printed.
    pub fn json(&mut self, value: &serde_json::Value) {
        self.println(&serde_json::to_string_pretty(value).unwrap_or_default());
    }

    /// Write `text` to standard error as it is.
    pub fn eprint(&mut self, text: &str) {
        if !self.err_closed {
            self.err_closed = write_all(&mut self.err, text.as_bytes());
        }
    }

    /// Write `text` and a newline to standard error.
    pub fn eprintln(&mut self, text: &str) {
        self.eprint(text);
        self.eprint("\n");
    }
}

impl std::fmt::Debug for Shell {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Shell")
            .field("out_style", &self.out_style)
            .field("err_style", &self.err_style)
            .field("out_closed", &self.out_closed)
            .finish_non_exhaustive()
    }
}

/// Write and flush; true when the stream is gone (any write error counts:
/// there is nowhere left to report it).
fn write_all(stream: &mut dyn Write, bytes: &[u8]) -> bool {
    stream.write_all(bytes).and_then(|()| stream.flush()).is_err()
}
