//! What verification found: the first problem, the warnings, the anchor check.

use crate::faults::{Gap, TornLine};
use std::fmt;
use std::path::PathBuf;

/// What is wrong, in the order the checks run on each line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProblemKind {
    /// Not a UTF-8 JSON object on one line: empty line, garbage, a line longer than
    /// [`crate::MAX_RECORD_LEN`], or a partial line left by an interrupted write — unless the
    /// next line is the `audit.sealed` record describing it (then it is a [`Warning`]).
    Unparseable,
    /// A JSON object, but not a record: reserved keys missing or of the wrong type/shape,
    /// unknown `v`, or a float / integer beyond ±(2^53-1) somewhere.
    Malformed,
    /// `hash` is not the hash of the record's content: the record was edited.
    HashMismatch,
    /// Content and hash agree but the bytes are not as the writer writes them (duplicate keys,
    /// whitespace, key order, escaping): what a reader sees may differ from what was hashed.
    NotCanonical,
    /// An `audit.sealed` record that does not directly follow the torn line it describes, or
    /// describes other bytes or another last record than the ones before it.
    BadSeal,
    /// `prev` is not the previous record's hash: a record was deleted, inserted or reordered.
    ChainBroken,
    /// `seq` does not follow the previous record's.
    SeqGap,
    /// The record with the anchored `seq` has another hash: the log's end was rewritten.
    AnchorMismatch,
    /// The log ends before the anchored `seq`: its last records were deleted (or lost).
    Truncated,
    /// The first record verified does not start a log (`seq` 1, `prev` of 64 zeros): the oldest
    /// records (or whole rotated files) are missing. Not a problem with
    /// [`VerifyOptions::allow_missing_start`]; then it is [`Unproven::Start`].
    MissingStart,
    /// No anchor was compared with the chain's end (none given, unreadable, or the files given
    /// do not hold its seq): the newest records could have been cut. Not a problem with
    /// [`VerifyOptions::allow_unanchored`]; then it is [`Unproven::End`].
    Unanchored,
}

impl ProblemKind {
    pub fn as_str(self) -> &'static str {
        match self {
            ProblemKind::Unparseable => "unparseable",
            ProblemKind::Malformed => "malformed",
            ProblemKind::HashMismatch => "hash-mismatch",
            ProblemKind::NotCanonical => "not-canonical",
            ProblemKind::BadSeal => "bad-seal",
            ProblemKind::ChainBroken => "chain-broken",
            ProblemKind::SeqGap => "seq-gap",
            ProblemKind::AnchorMismatch => "anchor-mismatch",
            ProblemKind::Truncated => "truncated",
            ProblemKind::MissingStart => "missing-start",
            ProblemKind::Unanchored => "unanchored",
        }
    }
}

impl fmt::Display for ProblemKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The first problem found. `line` is 1-based within `file`; for [`ProblemKind::Truncated`] it
/// is one past the last line of the last file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    pub file: PathBuf,
    pub line: u64,
    pub seq: Option<u64>,
    pub kind: ProblemKind,
    pub message: String,
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}: ", self.file.display(), self.line)?;
        if let Some(seq) = self.seq {
            write!(f, "seq {seq}: ")?;
        }
        write!(f, "{}: {}", self.kind, self.message)
    }
}

/// Something verification accepts but an auditor should know: an accident the log records.
/// `line` is 1-based within `file`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Warning {
    pub file: PathBuf,
    pub line: u64,
    /// `seq` of the record that says so (the seal, the gap record).
    pub seq: u64,
    pub kind: WarningKind,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum WarningKind {
    /// The line is a torn write (an interrupted write), sealed by the `audit.sealed` record
    /// `seq` on the next line, which chains to the last intact record before it.
    TornLine { torn: TornLine, last_good_seq: u64 },
    /// The `audit.gap` record `seq` on this line counts records that could not be written.
    Gap(Gap),
}

impl WarningKind {
    pub fn as_str(&self) -> &'static str {
        match self {
            WarningKind::TornLine { .. } => "torn-line",
            WarningKind::Gap(_) => "gap",
        }
    }
}

impl fmt::Display for Warning {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}: ", self.file.display(), self.line)?;
        match &self.kind {
            WarningKind::TornLine {
                torn,
                last_good_seq,
            } => write!(
                f,
                "torn line ({torn}), left by an interrupted write: sealed by seq {} on the next \
                 line; the record being written there is lost, the chain continues from seq \
                 {last_good_seq}",
                self.seq
            ),
            WarningKind::Gap(gap) => write!(f, "seq {}: gap: {gap}", self.seq),
        }
    }
}

/// What a caller accepts leaving unproven; by default (both `false`) verification proves the
/// whole chain or fails.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct VerifyOptions {
    /// The files may start after a log's first record (the oldest rotated files are gone).
    pub allow_missing_start: bool,
    /// No anchor need check the end.
    pub allow_unanchored: bool,
}

/// What an accepted report does not prove (allowed by [`VerifyOptions`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Unproven {
    /// The first record verified is `seq` with `prev`, not a log's first record: records
    /// before it could have been removed.
    Start { seq: u64, prev: String },
    /// No anchor checked the end (why): records after `last_seq` (`None`: any) could have been
    /// removed.
    End { last_seq: Option<u64>, why: String },
}

impl fmt::Display for Unproven {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Unproven::Start { seq, prev } => write!(
                f,
                "not proven: the oldest records (before seq {seq}) could have been removed: \
                 the chain starts at seq {seq} with prev {prev}, not at a log's first record"
            ),
            Unproven::End { last_seq, why } => match last_seq {
                Some(seq) => write!(
                    f,
                    "not proven: the newest records (after seq {seq}) could have been removed: {why}"
                ),
                None => write!(f, "not proven: records could have been removed: {why}"),
            },
        }
    }
}

/// At most this many warnings are kept in a report; the rest are only counted.
pub const MAX_WARNINGS: usize = 1000;

/// What became of the anchor check.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AnchorCheck {
    /// No anchor path given.
    NotRequested,
    /// The anchor file is missing, unreadable or invalid (why): nothing was checked.
    Unavailable(String),
    /// The chain contains the anchored seq with the anchored hash.
    Verified { seq: u64 },
    /// It does not: see the report's problem ([`ProblemKind::AnchorMismatch`] or
    /// [`ProblemKind::Truncated`]).
    Failed { seq: u64 },
    /// Verification stopped at an earlier problem before reaching the anchored seq.
    NotReached { seq: u64 },
    /// The anchored seq precedes the first record verified (an older anchor, or the files given
    /// start later): nothing was checked.
    BeforeFirstRecord { seq: u64 },
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerifyReport {
    /// Records that passed every check.
    pub records: u64,
    /// Files read (a problem stops before later files).
    pub files: usize,
    pub first_seq: Option<u64>,
    pub last_seq: Option<u64>,
    pub last_hash: Option<String>,
    pub problem: Option<Problem>,
    pub anchor: AnchorCheck,
    /// Sealed torn lines and gap records, in log order (at most [`MAX_WARNINGS`]).
    pub warnings: Vec<Warning>,
    /// Warnings beyond [`MAX_WARNINGS`].
    pub warnings_omitted: u64,
    /// What the options allowed to stay unproven (empty when the whole chain is proven).
    pub unproven: Vec<Unproven>,
}

impl VerifyReport {
    pub fn is_ok(&self) -> bool {
        self.problem.is_none()
    }

    /// Whether an anchor was actually compared with the chain (if not, deleting the last records
    /// would have gone unnoticed).
    pub fn anchor_checked(&self) -> bool {
        matches!(
            self.anchor,
            AnchorCheck::Verified { .. } | AnchorCheck::Failed { .. }
        )
    }
}
