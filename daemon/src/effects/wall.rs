//! A `wall`-style notice on the terminals of particular users (break-glass goes to admins).
//! Best effort: a terminal that would block or refuses is skipped. The notice is framed here,
//! on lines of its own, and its text escaped ([`elevate_base::text`]): a reason typed by the
//! requester must not move the cursor, clear the screen or reorder what an admin reads.

use elevate_base::Uid;
use std::collections::BTreeSet;
use std::io::Write;
use std::os::unix::fs::{MetadataExt, OpenOptionsExt};
use std::path::PathBuf;

/// The terminals of logged-in users, as the core sees them.
pub trait Terminals: Send + Sync {
    /// Users who own a pseudo-terminal now.
    fn owners(&self) -> BTreeSet<Uid>;
    /// Write `msg` (one line, framed and escaped by [`framed`] for a real terminal) on every
    /// terminal of these users.
    fn notify(&self, uids: &BTreeSet<Uid>, msg: &str);
}

/// The machine's pseudo-terminals (/dev/pts).
pub struct Pts;

impl Terminals for Pts {
    fn owners(&self) -> BTreeSet<Uid> {
        ptys()
            .filter_map(|p| std::fs::metadata(p).ok().map(|m| Uid(m.uid())))
            .collect()
    }

    fn notify(&self, uids: &BTreeSet<Uid>, msg: &str) {
        notify_terminals(uids, &framed(msg))
    }
}

/// The longest notice written on a terminal, in characters (escapes counted as shown).
const NOTICE_MAX: usize = 2048;

/// `msg` as written on a terminal: on lines of its own, every control, bidi and invisible
/// character escaped, and cut at [`NOTICE_MAX`].
pub fn framed(msg: &str) -> String {
    format!(
        "\r\n*** elevate: {} ***\r\n",
        elevate_base::text::shown(msg, NOTICE_MAX)
    )
}

fn ptys() -> impl Iterator<Item = PathBuf> {
    std::fs::read_dir("/dev/pts")
        .into_iter()
        .flatten()
        .flatten()
        .map(|e| e.path())
        .filter(|p| {
            p.file_name().is_some_and(|n| {
                n.to_str()
                    .is_some_and(|s| s.bytes().all(|b| b.is_ascii_digit()))
            })
        })
}

fn notify_terminals(uids: &BTreeSet<Uid>, msg: &str) {
    if uids.is_empty() {
        return;
    }
    for path in ptys() {
        let Ok(meta) = std::fs::metadata(&path) else {
            continue;
        };
        if !uids.contains(&Uid(meta.uid())) {
            continue;
        }
        if let Ok(mut f) = std::fs::OpenOptions::new()
            .write(true)
            .custom_flags(libc::O_NOCTTY | libc::O_NONBLOCK)
            .open(&path)
        {
            let _ = f.write_all(msg.as_bytes());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_notice_cannot_carry_terminal_controls_or_bidi_overrides() {
        let m = framed("BREAK-GLASS: bob: fix\x1b[2J\x1b]0;owned\x07 \u{202e}gnp.exe\r\nfake line");
        let body = m.trim_start_matches("\r\n").trim_end_matches("\r\n");
        assert!(
            body.starts_with("*** elevate: BREAK-GLASS") && body.ends_with(" ***"),
            "{m:?}"
        );
        assert!(elevate_base::text::first_hidden(body).is_none(), "{m:?}");
        assert!(body.contains("\\u{1b}[2J") && body.contains("\\u{202e}gnp.exe\\r\\nfake"));
        assert!(framed(&"x".repeat(10_000)).chars().count() < NOTICE_MAX + 40);
    }
}
