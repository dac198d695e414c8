//! The writer: appends hash-chained records, recovers the chain head on open and after errors.

use crate::anchor::Anchor;
use crate::chain::{
    check_value, record_hash, record_line, FORMAT_VERSION, GENESIS_PREV, MAX_FIELD_DEPTH,
    MAX_RECORD_LEN, MAX_SAFE_INTEGER, RESERVED_KEYS,
};
use crate::os::{open_log_file, with_path};
use crate::tail::{read_tail, Tail};
use elevate_base::time::format_rfc3339_utc;
use serde_json::{Map, Value};
use std::fmt;
use std::fs::{self, File};
use std::io::{self, Write};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::SystemTime;

/// One record to append: its event name and the event's fields.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Entry {
    /// 1 to 64 characters of `[a-z0-9._-]`, e.g. `run.allowed`.
    pub event: String,
    /// Must not use a reserved key (`v seq time event prev hash`): such entries are rejected
    /// (`InvalidInput`), not renamed. Values: no floats, integers within ±(2^53-1), nesting at
    /// most 32 levels.
    pub fields: Map<String, Value>,
}

impl Entry {
    pub fn new(event: impl Into<String>) -> Entry {
        Entry {
            event: event.into(),
            fields: Map::new(),
        }
    }

    /// Builder: add (or replace) one field.
    pub fn with(mut self, key: impl Into<String>, value: impl Into<Value>) -> Entry {
        self.fields.insert(key.into(), value.into());
        self
    }
}

/// How the writer relates the log's tail to the known chain head when it (re)opens the log or
/// re-reads it after an error. The known head is the anchor file at [`AuditOptions::open`] and
/// the writer's in-memory head at [`AuditLog::reopen`] and after a failed append.
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
    /// The log's last line is damaged; the chain continues from it (see [`Recovery`]).
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
    /// The last line was not a record (a partial write, or garbage). The next record chains from
    /// sha256 of that line's bytes; verify reports the line as unparseable.
    pub damaged_tail: bool,
    pub anchor: AnchorStatus,
    /// `seq` of the last intact record found at the tail (`None`: empty log, or no intact record
    /// near a damaged tail).
    pub log_seq: Option<u64>,
    /// `seq` of the known head the tail was compared with.
    pub anchor_seq: Option<u64>,
    /// `seq` the next record will get.
    pub next_seq: u64,
    /// Bytes read to recover (the tail only, never the whole log unless its last line is that long).
    pub bytes_read: u64,
}

impl Recovery {
    /// Whether the log was damaged or lost records: the daemon should say so loudly (and may
    /// append [`Recovery::to_entry`]).
    pub fn needs_attention(&self) -> bool {
        self.damaged_tail
            || matches!(
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
        if self.damaged_tail {
            s.push_str(
                "; the last line is damaged (interrupted write?) and will fail verification",
            );
        }
        s
    }

    /// An `audit.recovered` record describing the damage, when [`Recovery::needs_attention`].
    pub fn to_entry(&self) -> Option<Entry> {
        if !self.needs_attention() {
            return None;
        }
        let mut e = Entry::new("audit.recovered")
            .with("damaged_tail", self.damaged_tail)
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

type Clock = Arc<dyn Fn() -> SystemTime + Send + Sync>;

/// How to open an [`AuditLog`].
#[derive(Clone)]
pub struct AuditOptions {
    anchor: Option<PathBuf>,
    clock: Clock,
    group: Option<String>,
}

impl Default for AuditOptions {
    fn default() -> Self {
        AuditOptions {
            anchor: None,
            clock: Arc::new(SystemTime::now),
            group: Some("adm".to_owned()),
        }
    }
}

impl fmt::Debug for AuditOptions {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AuditOptions")
            .field("anchor", &self.anchor)
            .field("group", &self.group)
            .finish_non_exhaustive()
    }
}

impl AuditOptions {
    /// No anchor, the system clock, group `adm` for newly created files.
    pub fn new() -> AuditOptions {
        AuditOptions::default()
    }

    /// Keep the anchor at `path` (normally `<state_dir>/`[`crate::ANCHOR_FILE`]).
    pub fn anchor(mut self, path: impl Into<PathBuf>) -> AuditOptions {
        self.anchor = Some(path.into());
        self
    }

    /// The clock records are stamped with (tests).
    pub fn clock(mut self, now: impl Fn() -> SystemTime + Send + Sync + 'static) -> AuditOptions {
        self.clock = Arc::new(now);
        self
    }

    /// Group given to a newly created log file and directory, if it exists (default `adm`,
    /// which lets log readers read it). `None`: leave the creating process's group.
    pub fn group(mut self, name: Option<&str>) -> AuditOptions {
        self.group = name.map(str::to_owned);
        self
    }

    /// Open or create the log at `path` and recover the chain head; see [`AuditLog`].
    pub fn open(&self, path: &Path) -> io::Result<AuditLog> {
        let file = open_log_file(path, self.group.as_deref())?;
        let (known, status) = match &self.anchor {
            None => (None, AnchorStatus::NotConfigured),
            Some(p) => match Anchor::read(p) {
                Ok(a) => (Some(a), AnchorStatus::Matches),
                Err(e) if e.kind() == io::ErrorKind::NotFound => (None, AnchorStatus::Absent),
                Err(e) => (None, AnchorStatus::Invalid(format!("{}: {e}", p.display()))),
            },
        };
        let mut log = AuditLog {
            path: path.to_owned(),
            file,
            opts: self.clone(),
            last_seq: 0,
            last_hash: GENESIS_PREV.to_owned(),
            needs_newline: false,
            dirty: false,
            recovery: None,
            anchor_error: None,
        };
        log.recover(known, status)?;
        Ok(log)
    }
}

/// The writer. Synchronous; meant to be owned by one thread.
///
/// Opening creates the parent directory (0750) and the file (0640, group `adm` if it exists)
/// when missing, and opens the file `O_APPEND|O_CLOEXEC|O_NOFOLLOW`; it refuses symbolic links,
/// non-regular files and files with several hard links. It then reads the file's tail
/// backwards (never the whole file) to recover the chain head, and compares it with the anchor
/// (see [`AnchorStatus`] for the outcomes and [`AuditLog::recovery`] to read them).
pub struct AuditLog {
    path: PathBuf,
    file: File,
    opts: AuditOptions,
    /// The chain head: the last record's seq (0: none yet) and the hash the next record chains
    /// from. Only ever what is on disk.
    last_seq: u64,
    last_hash: String,
    /// The file does not end with a newline: the next write starts with one.
    needs_newline: bool,
    /// A write or sync failed: re-read the tail before the next append.
    dirty: bool,
    recovery: Option<Recovery>,
    anchor_error: Option<io::Error>,
}

impl fmt::Debug for AuditLog {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AuditLog")
            .field("path", &self.path)
            .field("last_seq", &self.last_seq)
            .field("last_hash", &self.last_hash)
            .field("dirty", &self.dirty)
            .finish_non_exhaustive()
    }
}

impl AuditLog {
    /// Open with default options: no anchor, system clock. See [`AuditOptions::open`].
    pub fn open(path: &Path) -> io::Result<AuditLog> {
        AuditOptions::new().open(path)
    }

    /// Options builder (anchor, clock, group).
    pub fn options() -> AuditOptions {
        AuditOptions::new()
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The last record written: `(seq, hash)`; `None` before the first record of a fresh log.
    /// After a damaged tail, the hash is the damaged line's hash (what the next record chains from).
    pub fn head(&self) -> Option<(u64, &str)> {
        (self.last_seq > 0).then_some((self.last_seq, self.last_hash.as_str()))
    }

    /// The `seq` the next record will get.
    pub fn next_seq(&self) -> u64 {
        self.last_seq.saturating_add(1)
    }

    /// What the last tail recovery (open, reopen, or re-read after an error) found.
    /// `damaged_tail` is the "last line was unparseable" flag the daemon should log.
    pub fn recovery(&self) -> Option<&Recovery> {
        self.recovery.as_ref()
    }

    /// The error of the last failed anchor update, if any (the append itself succeeded: the
    /// anchor is secondary and never fails an append). Take it to log it.
    pub fn take_anchor_error(&mut self) -> Option<io::Error> {
        self.anchor_error.take()
    }

    /// Append `entries` in order with one `write(2)` and, if `durable`, one `fdatasync(2)`
    /// before returning; then update the anchor. Returns each record's `(seq, hash)`.
    ///
    /// Invalid entries (bad event name, reserved key, float, too large) fail the whole batch
    /// with `InvalidInput` before anything is written. On an I/O error the batch is truncated
    /// away again (its callers were told it failed: nothing it records happened), the in-memory
    /// head does not advance and the tail is re-read before the next append, which then chains
    /// from what is really on disk. If even the truncation fails, a partial last line is followed
    /// by a newline and chained from by its hash; verify reports it.
    pub fn append(&mut self, entries: &[Entry], durable: bool) -> io::Result<Vec<(u64, String)>> {
        for e in entries {
            validate_entry(e)?;
        }
        if entries.is_empty() {
            return Ok(Vec::new());
        }
        if self.dirty {
            self.resync()?;
        }
        let time = Value::String(format_rfc3339_utc((self.opts.clock)()));
        let mut buf = Vec::with_capacity(entries.len() * 512);
        if self.needs_newline {
            buf.push(b'\n');
        }
        let mut seq = self.last_seq;
        let mut prev = self.last_hash.clone();
        let mut out = Vec::with_capacity(entries.len());
        for e in entries {
            seq = seq
                .checked_add(1)
                .filter(|s| *s <= MAX_SAFE_INTEGER)
                .ok_or_else(|| io::Error::other("audit sequence number exhausted"))?;
            let mut rec = e.fields.clone();
            rec.insert("v".into(), FORMAT_VERSION.into());
            rec.insert("seq".into(), seq.into());
            rec.insert("time".into(), time.clone());
            rec.insert("event".into(), e.event.clone().into());
            rec.insert("prev".into(), prev.into());
            let hash = record_hash(&rec);
            rec.insert("hash".into(), hash.clone().into());
            let line = record_line(&rec)
                .ok_or_else(|| io::Error::other("internal: record lacks a reserved key"))?;
            if line.len() > MAX_RECORD_LEN {
                return Err(invalid(format!(
                    "audit record for `{}` is {} bytes, more than the {MAX_RECORD_LEN} allowed",
                    e.event,
                    line.len()
                )));
            }
            buf.extend_from_slice(line.as_bytes());
            buf.push(b'\n');
            out.push((seq, hash.clone()));
            prev = hash;
        }
        // Only this writer appends, so the length now is where the batch starts; a failed
        // batch is cut off again so that a full disk leaves no torn record behind.
        let start = self
            .file
            .metadata()
            .map_err(|e| with_path(e, &self.path))?
            .len();
        let written = self.file.write_all(&buf).and_then(|()| {
            if durable {
                self.file.sync_data()
            } else {
                Ok(())
            }
        });
        if let Err(e) = written {
            self.dirty = true;
            if self.file.set_len(start).is_ok() {
                let _ = self.file.sync_data();
            }
            return Err(with_path(e, &self.path));
        }
        self.last_seq = seq;
        self.last_hash = prev;
        self.needs_newline = false;
        self.write_anchor();
        Ok(out)
    }

    /// `fdatasync(2)` records appended with `durable == false`.
    pub fn sync(&mut self) -> io::Result<()> {
        self.file.sync_data().map_err(|e| {
            self.dirty = true;
            with_path(e, &self.path)
        })
    }

    /// Reopen the path (after logrotate renamed the file). The chain continues from the
    /// in-memory head into the new file, or from the new file's tail if it is ahead.
    pub fn reopen(&mut self) -> io::Result<()> {
        if self.dirty {
            self.resync()?;
        }
        let file = open_log_file(&self.path, self.opts.group.as_deref())?;
        let old = std::mem::replace(&mut self.file, file);
        let known = self.known_head();
        if let Err(e) = self.recover(Some(known), AnchorStatus::Matches) {
            self.file = old;
            return Err(e);
        }
        Ok(())
    }

    /// [`AuditLog::reopen`] if the path no longer names the open file (rotated or deleted).
    /// One `stat(2)` when nothing changed: cheap enough before every batch.
    pub fn reopen_if_rotated(&mut self) -> io::Result<bool> {
        match fs::symlink_metadata(&self.path) {
            Ok(m) => {
                let ours = self.file.metadata()?;
                if m.dev() == ours.dev() && m.ino() == ours.ino() {
                    return Ok(false);
                }
            }
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            Err(e) => return Err(with_path(e, &self.path)),
        }
        self.reopen()?;
        Ok(true)
    }

    /// Tests: behave as after a failed write (re-read the tail before the next append).
    #[cfg(test)]
    pub(crate) fn mark_failed(&mut self) {
        self.dirty = true;
    }

    fn known_head(&self) -> Anchor {
        Anchor {
            seq: self.last_seq,
            hash: self.last_hash.clone(),
        }
    }

    /// Re-read the tail after a failed write or sync.
    fn resync(&mut self) -> io::Result<()> {
        let known = self.known_head();
        self.recover(Some(known), AnchorStatus::Matches)?;
        self.dirty = false;
        Ok(())
    }

    /// Read the tail and set the head from it and `known` (see [`AnchorStatus`]).
    /// `status` is used when `known` is `None`.
    fn recover(&mut self, known: Option<Anchor>, status: AnchorStatus) -> io::Result<()> {
        let (tail, unterminated, bytes_read) =
            read_tail(&self.file).map_err(|e| with_path(e, &self.path))?;
        let anchor_seq = known.as_ref().map(|a| a.seq);
        let mut damaged_tail = false;
        let mut log_seq = None;
        let ((seq, hash), status) = match (tail, known) {
            (Tail::Empty, Some(a)) => ((a.seq, a.hash), AnchorStatus::Resumed),
            (Tail::Empty, None) => ((0, GENESIS_PREV.to_owned()), status),
            (Tail::Record { seq, hash }, known) => {
                log_seq = Some(seq);
                match known {
                    None => ((seq, hash), status),
                    Some(a) if a.seq < seq => ((seq, hash), AnchorStatus::LogAhead),
                    Some(a) if a.seq == seq && a.hash == hash => {
                        ((seq, hash), AnchorStatus::Matches)
                    }
                    Some(a) if a.seq == seq => ((a.seq, a.hash), AnchorStatus::Conflict),
                    Some(a) => ((a.seq, a.hash), AnchorStatus::LogBehind),
                }
            }
            (
                Tail::Damaged {
                    raw_hash,
                    last_good,
                },
                known,
            ) => {
                damaged_tail = true;
                log_seq = last_good;
                let seq = last_good.or(known.as_ref().map(|a| a.seq)).unwrap_or(0);
                let status = if known.is_some() {
                    AnchorStatus::NotCompared
                } else {
                    status
                };
                ((seq, raw_hash), status)
            }
        };
        self.last_seq = seq;
        self.last_hash = hash;
        self.needs_newline = unterminated;
        self.recovery = Some(Recovery {
            damaged_tail,
            anchor: status,
            log_seq,
            anchor_seq,
            next_seq: seq.saturating_add(1),
            bytes_read,
        });
        Ok(())
    }

    fn write_anchor(&mut self) {
        if let Some(path) = &self.opts.anchor {
            if let Err(e) = self.known_head().write(path) {
                self.anchor_error = Some(with_path(e, path));
            }
        }
    }
}

fn invalid(msg: String) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidInput, msg)
}

fn validate_entry(e: &Entry) -> io::Result<()> {
    let ok_name = !e.event.is_empty()
        && e.event.len() <= 64
        && e.event.bytes().all(|b| {
            b.is_ascii_lowercase() || b.is_ascii_digit() || matches!(b, b'.' | b'_' | b'-')
        });
    if !ok_name {
        return Err(invalid(format!(
            "audit event name {:?} is not 1-64 characters of [a-z0-9._-]",
            e.event
        )));
    }
    for (k, v) in &e.fields {
        if RESERVED_KEYS.contains(&k.as_str()) {
            return Err(invalid(format!(
                "audit event `{}`: field `{k}` is reserved",
                e.event
            )));
        }
        check_value(v, MAX_FIELD_DEPTH)
            .map_err(|why| invalid(format!("audit event `{}`: field `{k}`: {why}", e.event)))?;
    }
    Ok(())
}
