//! What the audit log already says, for the one question start-up reconciliation asks: was
//! this ending recorded? A crash between journaling an ending and writing its record leaves
//! the journal saying "not audited yet"; the record may or may not have reached the log. The
//! answer comes from the log's recent records (the crash was moments after the write, if
//! there was one), so the ending is audited exactly once either way.

use std::collections::BTreeSet;
use std::fs::File;
use std::io::{self, Read, Seek, SeekFrom};
use std::path::PathBuf;

/// The record names of an ending (`core/expiry.rs` writes one of them per ended lease).
pub const ENDING_EVENTS: [&str; 4] = [
    "lease.expired",
    "lease.revoked",
    "lease.denied",
    "lease.ended",
];

/// How far back from the end of the log the answer looks. Between an ending's record and the
/// journal write that says it was made, the core does nothing else; other writers add at most
/// a few records meanwhile. 4 MiB is some ten thousand records.
const RECENT_BYTES: u64 = 4 << 20;

pub trait AuditHistory: Send + Sync {
    /// Of these lease ids, the ones with an ending record among the log's recent records.
    fn endings_recorded(&self, ids: &BTreeSet<u64>) -> io::Result<BTreeSet<u64>>;
}

/// The daemon's audit log file.
pub struct AuditFile(pub PathBuf);

impl AuditHistory for AuditFile {
    fn endings_recorded(&self, ids: &BTreeSet<u64>) -> io::Result<BTreeSet<u64>> {
        let mut f = File::open(&self.0)?;
        let len = f.metadata()?.len();
        let start = len.saturating_sub(RECENT_BYTES);
        f.seek(SeekFrom::Start(start))?;
        let mut buf = Vec::new();
        f.take(RECENT_BYTES).read_to_end(&mut buf)?;
        // From the middle of the file, the first line is likely cut: skip it.
        let lines = buf.split(|b| *b == b'\n').skip(usize::from(start > 0));
        Ok(lines
            .filter_map(ending_of)
            .filter(|id| ids.contains(id))
            .collect())
    }
}

/// The lease id of an ending record (`None` for any other line, torn or not JSON).
pub fn ending_of(line: &[u8]) -> Option<u64> {
    let v: serde_json::Value = serde_json::from_slice(line).ok()?;
    let event = v.get("event")?.as_str()?;
    ENDING_EVENTS
        .contains(&event)
        .then(|| v.get("lease")?.as_u64())?
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_ending_records_of_the_ids_asked_about() {
        let dir = std::env::temp_dir().join(format!("elevate-ah-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let log = dir.join("audit.jsonl");
        let lines = [
            r#"{"v":1,"seq":1,"event":"lease.requested","lease":1}"#,
            r#"{"v":1,"seq":2,"event":"lease.revoked","lease":1}"#,
            r#"{"v":1,"seq":3,"event":"lease.expired","lease":2}"#,
            r#"{"v":1,"seq":4,"event":"lease.expired","lease":9}"#,
            r#"{"v":1,"seq":5,"event":"lease.ended","le"#,
        ];
        std::fs::write(&log, lines.join("\n")).unwrap();
        let asked: BTreeSet<u64> = [1, 2, 3].into();
        let found = AuditFile(log).endings_recorded(&asked).unwrap();
        assert_eq!(found, [1, 2].into());
        std::fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn other_events_and_garbage_are_not_endings() {
        assert_eq!(ending_of(br#"{"event":"lease.activated","lease":3}"#), None);
        assert_eq!(ending_of(b"\x00\xff"), None);
        assert_eq!(ending_of(br#"{"event":"lease.denied","lease":"3"}"#), None);
        assert_eq!(ending_of(br#"{"event":"lease.denied","lease":3}"#), Some(3));
    }
}
