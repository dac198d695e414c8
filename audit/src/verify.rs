//! The verifier: streams one or more files as one chain, stops at the first problem.

use crate::anchor::Anchor;
use crate::chain::{
    check_record, check_value, record_hash, record_line, RecordHead, GENESIS_PREV, MAX_RECORD_LEN,
};
use serde_json::Value;
use std::fmt;
use std::fs::File;
use std::io::{self, BufRead, BufReader};
use std::path::{Path, PathBuf};

/// What is wrong, in the order the checks run on each line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProblemKind {
    /// Not a UTF-8 JSON object on one line: empty line, garbage, a line longer than
    /// [`crate::MAX_RECORD_LEN`], or a partial line left by an interrupted write.
    Unparseable,
    /// A JSON object, but not a record: reserved keys missing or of the wrong type/shape,
    /// unknown `v`, or a float / integer beyond ±(2^53-1) somewhere.
    Malformed,
    /// `hash` is not the hash of the record's content: the record was edited.
    HashMismatch,
    /// Content and hash agree but the bytes are not as the writer writes them (duplicate keys,
    /// whitespace, key order, escaping): what a reader sees may differ from what was hashed.
    NotCanonical,
    /// `prev` is not the previous record's hash: a record was deleted, inserted or reordered.
    ChainBroken,
    /// `seq` does not follow the previous record's.
    SeqGap,
    /// The record with the anchored `seq` has another hash: the log's end was rewritten.
    AnchorMismatch,
    /// The log ends before the anchored `seq`: its last records were deleted (or lost).
    Truncated,
}

impl ProblemKind {
    pub fn as_str(self) -> &'static str {
        match self {
            ProblemKind::Unparseable => "unparseable",
            ProblemKind::Malformed => "malformed",
            ProblemKind::HashMismatch => "hash-mismatch",
            ProblemKind::NotCanonical => "not-canonical",
            ProblemKind::ChainBroken => "chain-broken",
            ProblemKind::SeqGap => "seq-gap",
            ProblemKind::AnchorMismatch => "anchor-mismatch",
            ProblemKind::Truncated => "truncated",
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

/// Verify `paths`, in order, as one chain (rotated files oldest first, the live log last),
/// then compare with the anchor file if given. I/O errors opening or reading a file are
/// errors; everything wrong with the content is the report's `problem`.
pub fn verify_files(paths: &[PathBuf], anchor: Option<&Path>) -> io::Result<VerifyReport> {
    let mut v = Verifier::new(None);
    if let Some(p) = anchor {
        match Anchor::read(p) {
            Ok(a) => v.anchor = Some(a),
            Err(e) => v.anchor_unavailable = Some(format!("{}: {e}", p.display())),
        }
    }
    for path in paths {
        if v.problem.is_some() {
            break;
        }
        let file = File::open(path)
            .map_err(|e| io::Error::new(e.kind(), format!("{}: {e}", path.display())))?;
        v.verify_reader(BufReader::with_capacity(64 * 1024, file), path)
            .map_err(|e| io::Error::new(e.kind(), format!("{}: {e}", path.display())))?;
    }
    Ok(v.finish())
}

/// Streaming verifier state, carried from one file to the next. Memory is bounded by one
/// line ([`crate::MAX_RECORD_LEN`]).
#[derive(Debug, Default)]
pub struct Verifier {
    anchor: Option<Anchor>,
    anchor_unavailable: Option<String>,
    anchor_seen: bool,
    records: u64,
    files: usize,
    first_seq: Option<u64>,
    /// seq and hash of the last good record.
    last: Option<(u64, String)>,
    problem: Option<Problem>,
    file: PathBuf,
    lines: u64,
    buf: Vec<u8>,
}

enum LineRead {
    Eof,
    Line { terminated: bool },
    TooLong,
}

/// Read one line (without its newline) into `buf`, refusing to buffer more than `max` bytes.
fn read_line_bounded<R: BufRead>(r: &mut R, buf: &mut Vec<u8>, max: usize) -> io::Result<LineRead> {
    buf.clear();
    loop {
        let avail = match r.fill_buf() {
            Ok(b) => b,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        };
        if avail.is_empty() {
            return Ok(if buf.is_empty() {
                LineRead::Eof
            } else {
                LineRead::Line { terminated: false }
            });
        }
        let newline = avail.iter().position(|&b| b == b'\n');
        let take = newline.unwrap_or(avail.len());
        if buf.len() + take > max {
            return Ok(LineRead::TooLong);
        }
        buf.extend_from_slice(&avail[..take]);
        r.consume(take + usize::from(newline.is_some()));
        if newline.is_some() {
            return Ok(LineRead::Line { terminated: true });
        }
    }
}

impl Verifier {
    /// A verifier comparing the chain with `anchor`, if given.
    pub fn new(anchor: Option<Anchor>) -> Verifier {
        Verifier {
            anchor,
            ..Verifier::default()
        }
    }

    /// Verify the next file's content, continuing the chain. Does nothing once a problem was
    /// found. `name` is used in problems.
    pub fn verify_reader<R: BufRead>(&mut self, mut r: R, name: &Path) -> io::Result<()> {
        if self.problem.is_some() {
            return Ok(());
        }
        self.files += 1;
        self.file = name.to_owned();
        self.lines = 0;
        let mut buf = std::mem::take(&mut self.buf);
        let result = loop {
            let read = match read_line_bounded(&mut r, &mut buf, MAX_RECORD_LEN) {
                Ok(read) => read,
                Err(e) => break Err(e),
            };
            match read {
                LineRead::Eof => break Ok(()),
                LineRead::TooLong => {
                    self.lines += 1;
                    self.fail(
                        None,
                        ProblemKind::Unparseable,
                        format!("line longer than {MAX_RECORD_LEN} bytes"),
                    );
                }
                LineRead::Line { terminated } => {
                    self.lines += 1;
                    self.check_line(&buf, terminated);
                }
            }
            if self.problem.is_some() {
                break Ok(());
            }
        };
        self.buf = buf;
        result
    }

    /// The first problem, once found.
    pub fn problem(&self) -> Option<&Problem> {
        self.problem.as_ref()
    }

    /// The report, after the anchor's final check (truncation).
    pub fn finish(mut self) -> VerifyReport {
        let anchor = match self.anchor.clone() {
            None => match self.anchor_unavailable.take() {
                Some(why) => AnchorCheck::Unavailable(why),
                None => AnchorCheck::NotRequested,
            },
            Some(a) => {
                let last_seq = self.last.as_ref().map(|l| l.0);
                if self.anchor_seen {
                    AnchorCheck::Verified { seq: a.seq }
                } else if let Some(p) = &self.problem {
                    if p.kind == ProblemKind::AnchorMismatch {
                        AnchorCheck::Failed { seq: a.seq }
                    } else {
                        AnchorCheck::NotReached { seq: a.seq }
                    }
                } else if !matches!(last_seq, Some(l) if l >= a.seq) {
                    let message = match last_seq {
                        Some(l) => format!(
                            "the anchor records seq {} but the log ends at seq {l}: \
                             records {}..={} are missing (deleted, or lost in a crash)",
                            a.seq,
                            l + 1,
                            a.seq
                        ),
                        None => format!(
                            "the log holds no records but the anchor records seq {} \
                             (were the rotated files given too?)",
                            a.seq
                        ),
                    };
                    self.lines += 1;
                    self.fail(
                        Some(last_seq.map_or(a.seq, |l| l + 1)),
                        ProblemKind::Truncated,
                        message,
                    );
                    AnchorCheck::Failed { seq: a.seq }
                } else {
                    AnchorCheck::BeforeFirstRecord { seq: a.seq }
                }
            }
        };
        let (last_seq, last_hash) = match self.last {
            Some((s, h)) => (Some(s), Some(h)),
            None => (None, None),
        };
        VerifyReport {
            records: self.records,
            files: self.files,
            first_seq: self.first_seq,
            last_seq,
            last_hash,
            problem: self.problem,
            anchor,
        }
    }

    fn fail(&mut self, seq: Option<u64>, kind: ProblemKind, message: String) {
        self.problem = Some(Problem {
            file: self.file.clone(),
            line: self.lines,
            seq,
            kind,
            message,
        });
    }

    fn check_line(&mut self, line: &[u8], terminated: bool) {
        match self.judge_line(line, terminated) {
            Ok(head) => {
                self.records += 1;
                self.first_seq.get_or_insert(head.seq);
                self.last = Some((head.seq, head.hash));
            }
            Err(Fault(seq, kind, message)) => self.fail(seq, kind, message),
        }
    }

    /// Every check of one line, in the documented order: the record on its own, then how it
    /// follows the previous record, then the anchor.
    fn judge_line(&mut self, line: &[u8], terminated: bool) -> Result<RecordHead, Fault> {
        let head = parse_line(line, terminated)?;
        self.check_link(&head)?;
        self.check_anchor(&head)?;
        Ok(head)
    }

    /// `ChainBroken` and `SeqGap`: how the record follows the last good one.
    fn check_link(&self, head: &RecordHead) -> Result<(), Fault> {
        let seq = Some(head.seq);
        match &self.last {
            Some((last_seq, last_hash)) => {
                if head.prev != *last_hash {
                    let hint = if head.prev == GENESIS_PREV {
                        " (it starts a new chain: was the log recreated without its anchor?)"
                    } else {
                        ""
                    };
                    return Err(Fault(
                        seq,
                        ProblemKind::ChainBroken,
                        format!(
                            "`prev` {} is not the hash of the previous record (seq {last_seq}, {last_hash}): \
                             a record was deleted, inserted or reordered here{hint}",
                            head.prev
                        ),
                    ));
                }
                if Some(head.seq) != last_seq.checked_add(1) {
                    return Err(Fault(
                        seq,
                        ProblemKind::SeqGap,
                        format!("seq {} follows seq {last_seq}", head.seq),
                    ));
                }
            }
            None => {
                if head.prev == GENESIS_PREV && head.seq != 1 {
                    return Err(Fault(
                        seq,
                        ProblemKind::SeqGap,
                        format!(
                            "the first record of a fresh log must have seq 1, not {}",
                            head.seq
                        ),
                    ));
                }
            }
        }
        Ok(())
    }

    /// `AnchorMismatch`: the record with the anchored seq must have the anchored hash.
    fn check_anchor(&mut self, head: &RecordHead) -> Result<(), Fault> {
        if let Some(a) = &self.anchor {
            if a.seq == head.seq {
                if a.hash != head.hash {
                    let message = format!(
                        "the anchor records hash {} for this seq, the log has {}: \
                         the end of the log was rewritten",
                        a.hash, head.hash
                    );
                    return Err(Fault(Some(head.seq), ProblemKind::AnchorMismatch, message));
                }
                self.anchor_seen = true;
            }
        }
        Ok(())
    }
}

/// A problem with one line: the record's seq when known, what, and the message.
struct Fault(Option<u64>, ProblemKind, String);

/// The checks of one line on its own (`Unparseable` to `NotCanonical`); its head if it is a
/// record exactly as the writer writes it.
fn parse_line(line: &[u8], terminated: bool) -> Result<RecordHead, Fault> {
    use ProblemKind::*;
    if line.is_empty() {
        return Err(Fault(None, Unparseable, "empty line".into()));
    }
    let rec = match serde_json::from_slice::<Value>(line) {
        Ok(Value::Object(m)) => m,
        Ok(_) => return Err(Fault(None, Unparseable, "not a JSON object".into())),
        Err(e) if !terminated => {
            return Err(Fault(
                None,
                Unparseable,
                format!("incomplete last line (no newline; an interrupted write?): {e}"),
            ))
        }
        Err(e) => return Err(Fault(None, Unparseable, format!("invalid JSON: {e}"))),
    };
    let stated_seq = rec.get("seq").and_then(Value::as_u64);
    let head = check_record(&rec).map_err(|why| Fault(stated_seq, Malformed, why.to_string()))?;
    let seq = Some(head.seq);
    rec.values()
        .try_for_each(|v| check_value(v, usize::MAX))
        .map_err(|why| Fault(seq, Malformed, why.to_string()))?;
    let computed = record_hash(&rec);
    if computed != head.hash {
        return Err(Fault(
            seq,
            HashMismatch,
            format!(
                "the record was modified: its content hashes to {computed}, not to its `hash` {}",
                head.hash
            ),
        ));
    }
    if record_line(&rec).as_deref().map(str::as_bytes) != Some(line) {
        return Err(Fault(
            seq,
            NotCanonical,
            "the line is not byte-for-byte as the writer writes this record \
             (duplicate keys, whitespace, key order or escaping differ)"
                .into(),
        ));
    }
    Ok(head)
}
