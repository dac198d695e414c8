//! What the audit log already says, for the questions start-up reconciliation asks of the
//! moments before a crash. An ending is journaled, then audited: was its record written? A
//! request is audited, then journaled: was it journaled, or does its record describe a lease
//! that never was? The answers come from the log's recent lease records.

use elevate_base::time::parse_rfc3339;
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

/// A lease record near the end of the log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LeaseRecord {
    pub event: String,
    pub lease: u64,
    /// Seconds since the epoch (the record's `time`), 0 if it does not read.
    pub time: i64,
}

pub trait AuditHistory: Send + Sync {
    /// The lease records (those with a `lease` id) among the log's recent records, oldest first.
    fn recent_lease_records(&self) -> io::Result<Vec<LeaseRecord>>;
}

/// Of these lease ids, the ones with an ending record among `records`.
pub fn endings_among(records: &[LeaseRecord], ids: &BTreeSet<u64>) -> BTreeSet<u64> {
    records
        .iter()
        .filter(|r| ENDING_EVENTS.contains(&r.event.as_str()) && ids.contains(&r.lease))
        .map(|r| r.lease)
        .collect()
}

/// The daemon's audit log file.
pub struct AuditFile(pub PathBuf);

impl AuditHistory for AuditFile {
    fn recent_lease_records(&self) -> io::Result<Vec<LeaseRecord>> {
        let mut f = File::open(&self.0)?;
        let len = f.metadata()?.len();
        let start = len.saturating_sub(RECENT_BYTES);
        f.seek(SeekFrom::Start(start))?;
        let mut buf = Vec::new();
        f.take(RECENT_BYTES).read_to_end(&mut buf)?;
        // From the middle of the file, the first line is likely cut: skip it.
        let lines = buf.split(|b| *b == b'\n').skip(usize::from(start > 0));
        Ok(lines.filter_map(lease_record).collect())
    }
}

/// A line's lease record (`None` for any other line, torn or not JSON).
pub fn lease_record(line: &[u8]) -> Option<LeaseRecord> {
    let v: serde_json::Value = serde_json::from_slice(line).ok()?;
    let time = v
        .get("time")
        .and_then(|t| t.as_str())
        .and_then(parse_rfc3339);
    Some(LeaseRecord {
        event: v.get("event")?.as_str()?.to_string(),
        lease: v.get("lease")?.as_u64()?,
        time: time.unwrap_or(0),
    })
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
        let records = AuditFile(log).recent_lease_records().unwrap();
        let found = endings_among(&records, &asked);
        assert_eq!(found, [1, 2].into());
        std::fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn lines_without_an_event_and_a_numeric_lease_are_not_lease_records() {
        assert_eq!(lease_record(br#"{"event":"run.allowed"}"#), None);
        assert_eq!(lease_record(b"\x00\xff"), None);
        assert_eq!(
            lease_record(br#"{"event":"lease.denied","lease":"3"}"#),
            None
        );
        let r = lease_record(
            br#"{"time":"2026-11-30T06:00:00.000Z","event":"lease.denied","lease":3}"#,
        );
        assert_eq!(
            r.map(|r| (r.event, r.lease, r.time)),
            Some(("lease.denied".into(), 3, 1_796_018_400))
        );
    }
}
