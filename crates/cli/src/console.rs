//! The launcher's terminal output: every line gets a padded name prefix (`intake      | …`),
//! coloured only when stdout is a terminal.
//!
//! One prefix width for the launcher's own messages and every service's log lines keeps the
//! interleaved output of six processes readable, and the colour makes each service easy to
//! follow. Colour is off when stdout is a pipe or a file (so logs saved with `| tee` carry no
//! escape codes) and when `NO_COLOR` is set (the convention at <https://no-color.org>).
//! Write errors (a closed pipe, a vanished terminal) are ignored on purpose: losing output must
//! never stop the launcher in the middle of supervising or shutting down its children.

use std::io::{IsTerminal, Write};

/// Wide enough for the longest service name, `sla-monitor`.
pub const NAME_WIDTH: usize = 11;

/// ANSI colour of the launcher's own prefix (bold white).
const LAUNCHER_COLOUR: &str = "1;37";

/// Where the launcher's output goes, and whether it may use colour.
#[derive(Clone, Copy, Debug)]
pub struct Console {
    colour: bool,
    /// Service output goes to the log files only (the demo prints its own timeline).
    quiet_services: bool,
}

impl Console {
    /// Colour when stdout is a terminal and `NO_COLOR` is not set.
    pub fn detect() -> Self {
        let colour = std::io::stdout().is_terminal() && std::env::var_os("NO_COLOR").is_none();
        Self {
            colour,
            quiet_services: false,
        }
    }

    /// The same console, keeping the services' lines out of the terminal.
    pub fn with_quiet_services(self) -> Self {
        Self {
            quiet_services: true,
            ..self
        }
    }

    /// Whether escape codes are written (also tells the children whether to colour their logs).
    pub fn colour(&self) -> bool {
        self.colour
    }

    /// `text` in the given ANSI SGR colour (e.g. `"1;36"`) when colour is on, else as is.
    pub fn paint(&self, sgr: &str, text: &str) -> String {
        if self.colour {
            format!("\x1b[{sgr}m{text}\x1b[0m")
        } else {
            text.to_owned()
        }
    }

    /// The padded, coloured `name | ` prefix.
    pub fn prefix(&self, name: &str, sgr: &str) -> String {
        self.paint(sgr, &format!("{name:<NAME_WIDTH$} |")) + " "
    }

    /// One line of a service's output under its prefix.
    pub fn line(&self, prefix: &str, text: &str) {
        if self.quiet_services {
            return;
        }
        let text = if self.colour {
            std::borrow::Cow::Borrowed(text)
        } else {
            std::borrow::Cow::Owned(strip_ansi(text))
        };
        let mut out = std::io::stdout().lock();
        let _ = writeln!(out, "{prefix}{text}");
        let _ = out.flush();
    }

    /// A message from the launcher itself, under the `redress` prefix.
    pub fn say(&self, text: &str) {
        let prefix = self.prefix("redress", LAUNCHER_COLOUR);
        for line in text.lines() {
            self.line(&prefix, line);
        }
    }

    /// A warning from the launcher: the text in yellow.
    pub fn warn(&self, text: &str) {
        self.say(&self.paint("33", text));
    }
}

/// Removes ANSI escape sequences (CSI `ESC [ … final` and two-byte `ESC x`), so log files and
/// non-terminal output stay plain text even when a child colours its logs regardless.
pub fn strip_ansi(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        if c != '\x1b' {
            out.push(c);
            continue;
        }
        // CSI: parameters and intermediates, up to and including a final byte in @..~.
        // Any other escape drops the escape and the one character after it.
        if let Some('[') = chars.next() {
            for c in chars.by_ref() {
                if ('@'..='~').contains(&c) {
                    break;
                }
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn strips_colour_codes() {
        assert_eq!(
            strip_ansi("\x1b[2m2025\x1b[0m \x1b[32m INFO\x1b[0m ready"),
            "2025  INFO ready"
        );
        assert_eq!(strip_ansi("plain"), "plain");
    }

    #[test]
    fn prefix_is_padded_to_the_longest_name() {
        let console = Console {
            colour: false,
            quiet_services: false,
        };
        assert_eq!(console.prefix("intake", "36"), "intake      | ");
        assert_eq!(console.prefix("sla-monitor", "36"), "sla-monitor | ");
    }
}
