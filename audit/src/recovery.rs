//! What the writer found at the log's tail, and where the chain continues from it.

use crate::anchor::Anchor;
use crate::chain::GENESIS_PREV;
use crate::entry::Entry;
use crate::faults::TornLine;

/// How the writer relates the log's tail to the known chain head when it (re)opens the log or
/// re-reads it after an error. The known head is the anchor file at
/// [`crate::AuditOptions::open`] and the writer's in-memory head at [`crate::AuditLog::reopen`]
/// and after a failed append. With a damaged last line, the log's last intact record before it
/// is what is compared.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AnchorStatus {
    /// No anchor file configured.
    NotConfigured,
    /// The anchor file does not exist (first start, or it was deleted).
    Absent,
    /// The anchor file could not be read or is not an anchor; ignored.
    Invalid(String),
    /// The log's last record is the anchored one.
    Matches,
    /// The log is empty (fresh after rotation): the chain continues from the anchor.
    Resumed,
    /// The log has records past the anchor (its update was lost, e.g. a crash right after an
    /// append). The chain continues from the log.
    LogAhead,
    /// The anchor is past the log's last record: records were deleted or lost. The chain
    /// continues from the anchor, so verify reports the gap at the next record.
    LogBehind,
    /// The log's last record has the anchored seq but another hash: it was replaced. The chain
    /// continues from the anchor, so verify reports it.
    Conflict,
    /// The log's last line is damaged and no intact record precedes it near the end: the chain
    /// continues from the known head.
    NotCompared,
}

impl AnchorStatus {
    pub fn as_str(&self) -> &'static str {
        match self {
            AnchorStatus::NotConfigured => "not-configured",
            AnchorStatus::Absent => "absent",
            AnchorStatus::Invalid(_) => "invalid",
            AnchorStatus::Matches => "matches",
            AnchorStatus::Resumed => "resumed",
            AnchorStatus::LogAhead => "log-ahead",
            AnchorStatus::LogBehind => "log-behind",
            AnchorStatus::Conflict => "conflict",
            AnchorStatus::NotCompared => "not-compared",
        }
    }
}

/// What the writer found at the log's tail when it last (re)opened or re-read it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Recovery {
    /// The last line was not a record (a partial write, or garbage): where it is. The writer
    /// seals it with an `audit.sealed` record (see the crate documentation).
    pub torn: Option<TornLine>,
    pub anchor: AnchorStatus,
    /// `seq` of the last intact record found at the tail (`None`: empty log, or no intact record
    /// near a damaged tail).
    pub log_seq: Option<u64>,
    /// `seq` of the known head the tail was compared with.
    pub anchor_seq: Option<u64>,
    /// `seq` the next record will get (the seal's, when there is a torn line).
    pub next_seq: u64,
    /// Bytes read to recover (the tail only, never the whole log unless its last line is that long).
    pub bytes_read: u64,
}

impl Recovery {
    /// Whether the log was damaged or lost records: the daemon should say so loudly (and append
    /// [`Recovery::to_entry`] when there is one).
    pub fn needs_attention(&self) -> bool {
        self.torn.is_some() || self.anchor_disagrees()
    }

    /// The anchor shows records were lost or replaced, or could not be read.
    fn anchor_disagrees(&self) -> bool {
        matches!(
            self.anchor,
            AnchorStatus::LogBehind | AnchorStatus::Conflict | AnchorStatus::Invalid(_)
        )
    }

    /// One line for the daemon's own log.
    pub fn describe(&self) -> String {
        let opt = |s: Option<u64>| s.map_or_else(|| "none".to_owned(), |s| s.to_string());
        let mut s = format!(
            "audit log tail: last intact seq {}, anchor {} (seq {}), next seq {}",
            opt(self.log_seq),
            self.anchor.as_str(),
            opt(self.anchor_seq),
            self.next_seq
        );
        if let AnchorStatus::Invalid(why) = &self.anchor {
            s.push_str(&format!(" ({why})"));
        }
        if let Some(torn) = &self.torn {
            s.push_str(&format!(
                "; the last line ({torn}) is torn (interrupted write?): \
                 an audit.sealed record marks it, and verify warns about it"
            ));
        }
        s
    }

    /// An `audit.recovered` record when the anchor disagrees with the log (records lost or
    /// replaced) or could not be read. A torn last line alone needs none: its `audit.sealed`
    /// record says what was found.
    pub fn to_entry(&self) -> Option<Entry> {
        if !self.anchor_disagrees() {
            return None;
        }
        let mut e = Entry::new("audit.recovered")
            .with("damaged_tail", self.torn.is_some())
            .with("anchor", self.anchor.as_str());
        if let Some(s) = self.log_seq {
            e = e.with("log_seq", s);
        }
        if let Some(s) = self.anchor_seq {
            e = e.with("anchor_seq", s);
        }
        Some(e)
    }
}

/// Where the chain continues: the log's last intact record (`log`) compared with the known
/// head (see [`AnchorStatus`]). `status` stands when there is no known head; `damaged`: the
/// log's last line is not a record.
pub(crate) fn chain_head(
    log: Option<(u64, String)>,
    known: Option<Anchor>,
    status: AnchorStatus,
    damaged: bool,
) -> ((u64, String), AnchorStatus) {
    match (log, known) {
        (None, None) => ((0, GENESIS_PREV.to_owned()), status),
        (None, Some(a)) if damaged => ((a.seq, a.hash), AnchorStatus::NotCompared),
        (None, Some(a)) => ((a.seq, a.hash), AnchorStatus::Resumed),
        (Some(l), None) => (l, status),
        (Some(l), Some(a)) if a.seq < l.0 => (l, AnchorStatus::LogAhead),
        (Some(l), Some(a)) if a.seq == l.0 && a.hash == l.1 => (l, AnchorStatus::Matches),
        (Some(l), Some(a)) if a.seq == l.0 => ((a.seq, a.hash), AnchorStatus::Conflict),
        (Some(_), Some(a)) => ((a.seq, a.hash), AnchorStatus::LogBehind),
    }
}
