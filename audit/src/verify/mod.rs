//! The verifier: streams one or more files as one chain, stops at the first problem.

mod line;
mod report;

pub use report::{
    AnchorCheck, Problem, ProblemKind, Unproven, VerifyOptions, VerifyReport, Warning, WarningKind,
    MAX_WARNINGS,
};

use crate::anchor::Anchor;
use crate::chain::{sha256_hex, RecordHead, GENESIS_PREV, MAX_RECORD_LEN};
use crate::faults::{Gap, TornLine, GAP_EVENT, SEALED_EVENT};
use line::{check_link, check_seal, parse_line, Fault, Parsed};
use serde_json::Value;
use std::fs::File;
use std::io::{self, BufRead, BufReader};
use std::path::{Path, PathBuf};

/// Verify `paths`, in order, as one chain (rotated files oldest first, the live log last),
/// then compare with the anchor file if given. I/O errors opening or reading a file are
/// errors; everything wrong with the content is the report's `problem`, and so is what could
/// not be proven (the start, the end) unless `opts` allows it.
pub fn verify_files(
    paths: &[PathBuf],
    anchor: Option<&Path>,
    opts: VerifyOptions,
) -> io::Result<VerifyReport> {
    let mut v = Verifier::with_options(None, opts);
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
    opts: VerifyOptions,
    unproven: Vec<Unproven>,
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
    /// Bytes of the current file before the current line.
    offset: u64,
    /// An unparseable line, until the next line shows whether it is a sealed torn write.
    torn: Option<PendingTorn>,
    warnings: Vec<Warning>,
    warnings_omitted: u64,
    buf: Vec<u8>,
}

/// An unparseable line: its line number, its bytes' description, and the problem it is unless
/// the next line seals it.
#[derive(Debug)]
struct PendingTorn {
    line: u64,
    torn: TornLine,
    fault: Fault,
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
    /// A verifier comparing the chain with `anchor`, if given, that proves the whole chain or
    /// fails.
    pub fn new(anchor: Option<Anchor>) -> Verifier {
        Verifier::with_options(anchor, VerifyOptions::default())
    }

    /// A verifier that accepts leaving unproven what `opts` allows.
    pub fn with_options(anchor: Option<Anchor>, opts: VerifyOptions) -> Verifier {
        Verifier {
            anchor,
            opts,
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
        self.offset = 0;
        let mut buf = std::mem::take(&mut self.buf);
        let result = loop {
            let read = match read_line_bounded(&mut r, &mut buf, MAX_RECORD_LEN) {
                Ok(read) => read,
                Err(e) => break Err(e),
            };
            match read {
                // A torn line sealed in the next file is not what the writer writes.
                LineRead::Eof => {
                    self.fail_unsealed(None);
                    break Ok(());
                }
                LineRead::TooLong => {
                    self.lines += 1;
                    self.fail_unsealed(Some("the next line is not a record either"));
                    if self.problem.is_none() {
                        self.fail(
                            None,
                            ProblemKind::Unparseable,
                            format!("line longer than {MAX_RECORD_LEN} bytes"),
                        );
                    }
                }
                LineRead::Line { terminated } => {
                    self.lines += 1;
                    let offset = self.offset;
                    self.offset += buf.len() as u64 + u64::from(terminated);
                    self.check_line(&buf, terminated, offset);
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

    /// The report, after the final checks: truncation, and what proves the end.
    pub fn finish(mut self) -> VerifyReport {
        let anchor = self.check_end();
        if self.problem.is_none() {
            self.require_end(&anchor);
        }
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
            warnings: self.warnings,
            warnings_omitted: self.warnings_omitted,
            unproven: self.unproven,
        }
    }

    /// The anchor's final check: `Truncated` when the log ends before it.
    fn check_end(&mut self) -> AnchorCheck {
        let Some(a) = self.anchor.clone() else {
            return match self.anchor_unavailable.take() {
                Some(why) => AnchorCheck::Unavailable(why),
                None => AnchorCheck::NotRequested,
            };
        };
        let last_seq = self.last.as_ref().map(|l| l.0);
        if self.anchor_seen {
            return AnchorCheck::Verified { seq: a.seq };
        }
        if let Some(p) = &self.problem {
            return if p.kind == ProblemKind::AnchorMismatch {
                AnchorCheck::Failed { seq: a.seq }
            } else {
                AnchorCheck::NotReached { seq: a.seq }
            };
        }
        if matches!(last_seq, Some(l) if l >= a.seq) {
            return AnchorCheck::BeforeFirstRecord { seq: a.seq };
        }
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
    }

    /// Without a matching anchor, nothing shows that the newest records are all there:
    /// `Unanchored`, unless the options allow it.
    fn require_end(&mut self, anchor: &AnchorCheck) {
        let why = match anchor {
            AnchorCheck::Verified { .. } => return,
            AnchorCheck::Unavailable(why) => format!("no anchor ({why})"),
            AnchorCheck::BeforeFirstRecord { seq } => format!(
                "the anchor's seq {seq} precedes the first record verified, so it checks nothing"
            ),
            _ => "no anchor".to_owned(),
        };
        let last_seq = self.last.as_ref().map(|l| l.0);
        if self.opts.allow_unanchored {
            self.unproven.push(Unproven::End { last_seq, why });
            return;
        }
        let message = match last_seq {
            Some(seq) => {
                format!("the newest records (after seq {seq}) could have been removed: {why}")
            }
            None => format!("the log holds no records, and any could have been removed: {why}"),
        };
        self.lines += 1;
        self.fail(None, ProblemKind::Unanchored, message);
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

    /// Fail at the pending torn line, if there is one: the line after it does not seal it.
    fn fail_unsealed(&mut self, next: Option<&str>) {
        if let Some(t) = self.torn.take() {
            self.fail_torn(t, next);
        }
    }

    /// Fail at torn line `t`: the line after it (`next` says what it is; `None`: there is
    /// none) does not seal it.
    fn fail_torn(&mut self, t: PendingTorn, next: Option<&str>) {
        let Fault(seq, kind, mut message) = t.fault;
        if let Some(next) = next {
            message.push_str(&format!(" (not sealed: {next})"));
        }
        self.problem = Some(Problem {
            file: self.file.clone(),
            line: t.line,
            seq,
            kind,
            message,
        });
    }

    fn check_line(&mut self, line: &[u8], terminated: bool, offset: u64) {
        let parsed = parse_line(line, terminated);
        if let Some(pending) = self.torn.take() {
            return self.check_after_torn(pending, parsed);
        }
        match parsed {
            // A torn write, if the next line seals it.
            Err(fault) if fault.1 == ProblemKind::Unparseable => {
                self.torn = Some(PendingTorn {
                    line: self.lines,
                    torn: TornLine {
                        offset,
                        length: line.len() as u64,
                        sha256: sha256_hex(line),
                    },
                    fault,
                });
            }
            Err(Fault(seq, kind, message)) => self.fail(seq, kind, message),
            Ok(parsed) => {
                if let Err(Fault(seq, kind, message)) = self.check_record(&parsed) {
                    return self.fail(seq, kind, message);
                }
                if event(&parsed) == Some(GAP_EVENT) {
                    let gap = Gap::from_record(&parsed.1);
                    self.warn(self.lines, parsed.0.seq, WarningKind::Gap(gap));
                }
                self.accept(parsed.0);
            }
        }
    }

    /// A record after an intact one: how it follows it, and the anchor.
    fn check_record(&mut self, parsed: &Parsed) -> Result<(), Fault> {
        let head = &parsed.0;
        if event(parsed) == Some(SEALED_EVENT) {
            let before = if self.lines == 1 {
                "it is the first line of the file"
            } else {
                "the line before it is a record"
            };
            return Err(Fault(
                Some(head.seq),
                ProblemKind::BadSeal,
                format!(
                    "an audit.sealed record must directly follow the torn line it seals; {before}"
                ),
            ));
        }
        check_link(self.last.as_ref(), head)?;
        self.check_start(head)?;
        self.check_anchor(head)
    }

    /// `MissingStart`: the first record verified must start a log (`seq` 1, `prev` of 64
    /// zeros), which shows that nothing before it was removed; anything else is the middle of
    /// a chain whose beginning is gone, unless the options allow that.
    fn check_start(&mut self, head: &RecordHead) -> Result<(), Fault> {
        if self.last.is_some() || (head.seq == 1 && head.prev == GENESIS_PREV) {
            return Ok(());
        }
        if self.opts.allow_missing_start {
            self.unproven.push(Unproven::Start {
                seq: head.seq,
                prev: head.prev.clone(),
            });
            return Ok(());
        }
        let message = format!(
            "the oldest records are missing: the chain starts at seq {} with prev {}, not at a \
             log's first record (seq 1, prev of 64 zeros): were older rotated files left out, \
             or records removed?",
            head.seq, head.prev
        );
        Err(Fault(Some(head.seq), ProblemKind::MissingStart, message))
    }

    /// The line after a torn line must be the `audit.sealed` record describing it.
    fn check_after_torn(&mut self, pending: PendingTorn, parsed: Result<Parsed, Fault>) {
        let parsed = match parsed {
            Ok(p) if event(&p) == Some(SEALED_EVENT) => p,
            Ok(p) => {
                let next = format!(
                    "the next line is a `{}` record, not its audit.sealed record",
                    event(&p).unwrap_or_default()
                );
                return self.fail_torn(pending, Some(&next));
            }
            Err(Fault(_, kind, message)) => {
                let next = if kind == ProblemKind::Unparseable {
                    "the next line is not a record either".to_owned()
                } else {
                    format!("the next line is not a valid record: {kind}: {message}")
                };
                return self.fail_torn(pending, Some(&next));
            }
        };
        let checked = check_seal(&pending.torn, pending.line, self.last.as_ref(), &parsed)
            .and_then(|seal| self.check_start(&parsed.0).map(|()| seal))
            .and_then(|seal| self.check_anchor(&parsed.0).map(|()| seal));
        match checked {
            Ok(seal) => {
                let kind = WarningKind::TornLine {
                    torn: seal.torn,
                    last_good_seq: seal.last_good_seq,
                };
                self.warn(pending.line, parsed.0.seq, kind);
                self.accept(parsed.0);
            }
            Err(Fault(seq, kind, message)) => self.fail(seq, kind, message),
        }
    }

    fn accept(&mut self, head: RecordHead) {
        self.records += 1;
        self.first_seq.get_or_insert(head.seq);
        self.last = Some((head.seq, head.hash));
    }

    fn warn(&mut self, line: u64, seq: u64, kind: WarningKind) {
        if self.warnings.len() >= MAX_WARNINGS {
            self.warnings_omitted += 1;
            return;
        }
        self.warnings.push(Warning {
            file: self.file.clone(),
            line,
            seq,
            kind,
        });
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

/// The record's `event`.
fn event((_, rec): &Parsed) -> Option<&str> {
    rec.get("event").and_then(Value::as_str)
}
