//! What the CLI prints: stdout and stderr writes that never panic, JSON output, and text
//! someone else typed made safe for a terminal ([`clean`], [`truncate`]).
//!
//! `println!` panics when stdout is a closed pipe (`elevate leases | head -1`); the macros
//! here drop the write instead: what the command did, and its exit status, stay as they are.

use std::fmt;
use std::io::Write;

/// Write to stdout, ignoring errors (see the module docs).
pub fn stdout(args: fmt::Arguments<'_>) {
    let _ = std::io::stdout().write_fmt(args);
}

/// Write to stderr, ignoring errors (see the module docs).
pub fn stderr(args: fmt::Arguments<'_>) {
    let _ = std::io::stderr().write_fmt(args);
}

/// Flush stdout before something is written to stderr, so the two keep their order.
pub fn flush() {
    let _ = std::io::stdout().flush();
}

/// `print!` that does not panic.
macro_rules! out {
    ($($arg:tt)*) => { $crate::output::stdout(format_args!($($arg)*)) };
}

/// `println!` that does not panic.
macro_rules! outln {
    ($($arg:tt)*) => { $crate::output::stdout(format_args!("{}\n", format_args!($($arg)*))) };
}

/// `eprint!` that does not panic.
macro_rules! err {
    ($($arg:tt)*) => { $crate::output::stderr(format_args!($($arg)*)) };
}

/// `eprintln!` that does not panic.
macro_rules! errln {
    ($($arg:tt)*) => { $crate::output::stderr(format_args!("{}\n", format_args!($($arg)*))) };
}

pub(crate) use {err, errln, out, outln};

/// `--json` output: pretty-printed, one value, then a newline.
pub fn print_json<T: serde::Serialize>(v: &T) {
    outln!("{}", serde_json::to_string_pretty(v).unwrap_or_default());
}

/// A reply as JSON with `--json`, else as the text `for_people` makes of it.
pub fn show<T: serde::Serialize>(json: bool, v: &T, for_people: impl FnOnce(&T) -> String) {
    if json {
        print_json(v);
    } else {
        out!("{}", for_people(v));
    }
}

/// Text someone else typed, made safe for a terminal: control characters, bidi overrides and
/// invisible formatting characters are shown escaped (`\u{202e}`) instead of being
/// interpreted, and no field runs past [`SHOWN_MAX`] characters. The daemon refuses such
/// characters in new reasons, tickets and comments; this covers records from before.
pub fn clean(s: &str) -> String {
    elevate_base::text::shown(s, SHOWN_MAX)
}

/// The longest a field someone else typed is shown: the daemon's own limit for a reason.
const SHOWN_MAX: usize = 1024;

/// At most `max` characters, with `…` when cut.
pub fn truncate(s: &str, max: usize) -> String {
    if s.chars().count() <= max {
        s.to_string()
    } else {
        let mut t: String = s.chars().take(max.saturating_sub(1)).collect();
        t.push('…');
        t
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn clean_escapes_controls_and_bidi_and_truncate_marks_the_cut() {
        assert_eq!(clean("a\nb\u{202e}c\x1b"), "a\\nb\\u{202e}c\\u{1b}");
        assert_eq!(clean("plain — text"), "plain — text");
        assert_eq!(
            clean("zero\u{200b}width\u{feff}"),
            "zero\\u{200b}width\\u{feff}"
        );
        assert_eq!(clean(&"x".repeat(5000)).chars().count(), SHOWN_MAX);
        assert_eq!(truncate("abcdef", 4), "abc…");
        assert_eq!(truncate("abc", 3), "abc");
    }
}
