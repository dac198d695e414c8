//! A `wall`-style notice on the terminals of particular users (break-glass goes to admins).
//! Best effort: a terminal that would block or refuses is skipped.

use elevate_base::Uid;
use std::collections::BTreeSet;
use std::io::Write;
use std::os::unix::fs::{MetadataExt, OpenOptionsExt};
use std::path::PathBuf;

/// The terminals of logged-in users, as the core sees them.
pub trait Terminals: Send + Sync {
    /// Users who own a pseudo-terminal now.
    fn owners(&self) -> BTreeSet<Uid>;
    /// Write `msg` on every terminal of these users.
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
        notify_terminals(uids, msg)
    }
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
