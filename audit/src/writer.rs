//! The writer: appends hash-chained records, recovers the chain head on open and after errors.

use crate::anchor::Anchor;
use crate::chain::{
    record_hash, record_line, FORMAT_VERSION, GENESIS_PREV, MAX_RECORD_LEN, MAX_SAFE_INTEGER,
};
use crate::entry::{invalid, validate_entry, Entry};
use crate::faults::{Gap, Seal, GAP_EVENT, SEALED_EVENT};
use crate::os::{open_log_file, with_path};
use crate::recovery::{chain_head, AnchorStatus, Recovery};
use crate::tail::{read_tail, Tail};
use elevate_base::time::format_rfc3339_utc;
use serde_json::Value;
use std::fmt;
use std::fs::{self, File};
use std::io::{self, Write};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::SystemTime;

type Clock = Arc<dyn Fn() -> SystemTime + Send + Sync>;

/// Each record's `(seq, hash)`.
type Heads = Vec<(u64, String)>;

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

    /// Open or create the log at `path` and recover the chain head; see [`AuditLog`]. A torn last
    /// line is sealed right away (durably); if that write fails, the seal goes in front of the
    /// next record instead.
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
            seal: None,
            gap: Gap::default(),
            failed: None,
            #[cfg(test)]
            fail_writes: None,
        };
        log.recover(known, status)?;
        if log.seal.is_some() {
            // A failure leaves the seal pending: the tail is read again before the next append.
            let _ = log.write_pending();
        }
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
///
/// Two kinds of records are written by the writer itself, in front of the caller's: an
/// `audit.sealed` record right after a torn last line, and an `audit.gap` record counting the
/// records that could not be written since the last successful append.
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
    /// The torn last line found by the last tail read, until its seal is written.
    seal: Option<Seal>,
    /// Records known not to be written, until an `audit.gap` record reports them.
    gap: Gap,
    /// The last failed write, until the tail shows which of its records reached the file.
    failed: Option<FailedBatch>,
    /// Tests: make writes fail, leaving this many bytes of each batch in the file.
    #[cfg(test)]
    fail_writes: Option<usize>,
}

/// A write that failed: some of its records may be in the file all the same (if cutting it
/// off failed too). Which ones are lost is decided from the tail read before the next append,
/// so that a record that is in the log is never counted as lost.
#[derive(Debug)]
struct FailedBatch {
    /// The `audit.gap` record at its head, if it carried one: its seq and the gap it reported.
    gap: Option<(u64, Gap)>,
    /// `(seq, event)` of the caller's records.
    records: Vec<(u64, String)>,
    time: String,
    error: String,
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
    pub fn head(&self) -> Option<(u64, &str)> {
        (self.last_seq > 0).then_some((self.last_seq, self.last_hash.as_str()))
    }

    /// The `seq` the next record will get (the next caller's record comes after a pending
    /// seal or gap record).
    pub fn next_seq(&self) -> u64 {
        self.last_seq.saturating_add(1)
    }

    /// What the last tail recovery (open, reopen, or re-read after an error) found.
    pub fn recovery(&self) -> Option<&Recovery> {
        self.recovery.as_ref()
    }

    /// Records known not to be written that no `audit.gap` record reports yet (to say so in
    /// the daemon's own log if it stops before it can write one).
    pub fn pending_gap(&self) -> Option<&Gap> {
        (self.gap.lost > 0).then_some(&self.gap)
    }

    /// The error of the last failed anchor update, if any (the append itself succeeded: the
    /// anchor is secondary and never fails an append). Take it to log it.
    pub fn take_anchor_error(&mut self) -> Option<io::Error> {
        self.anchor_error.take()
    }

    /// Append `entries` in order with one `write(2)` and, if `durable`, one `fdatasync(2)`
    /// before returning; then update the anchor. Returns each entry's `(seq, hash)`. A pending
    /// `audit.sealed` and `audit.gap` record go first, in the same write.
    ///
    /// Invalid entries (bad event name, reserved key, float, too large) fail the whole batch
    /// with `InvalidInput` before anything is written. On an I/O error the batch is truncated
    /// away again (its callers were told it failed: nothing it records happened), the in-memory
    /// head does not advance and the tail is re-read before the next append, which then chains
    /// from what is really on disk. If even the truncation fails, a torn last line is sealed.
    /// Every entry of a failed call that is not in the file is counted in the next `audit.gap`.
    pub fn append(&mut self, entries: &[Entry], durable: bool) -> io::Result<Vec<(u64, String)>> {
        let time = format_rfc3339_utc((self.opts.clock)());
        if let Err(e) = entries.iter().try_for_each(validate_entry) {
            self.count_unwritten(entries, &time, &e);
            return Err(e);
        }
        if entries.is_empty() {
            return Ok(Vec::new());
        }
        self.write_batch(entries, durable, &time)
    }

    /// Count `n` records of `event` that never reached this log (its caller dropped them, e.g.
    /// from a full queue) as lost for `why`: the next `audit.gap` record reports them too.
    pub fn count_dropped(&mut self, event: &str, n: u64, why: &str) {
        let time = format_rfc3339_utc((self.opts.clock)());
        self.gap.count_n(event, &time, why, n);
    }

    /// Write a pending `audit.sealed` or `audit.gap` record now, durably (nothing if there is
    /// none).
    pub fn write_pending(&mut self) -> io::Result<()> {
        let time = format_rfc3339_utc((self.opts.clock)());
        self.write_batch(&[], true, &time).map(drop)
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

    /// Tests: make every write fail with ENOSPC (`Some`) or work again (`None`). `Some(n)`
    /// leaves the first `n` bytes of each failed batch in the file, as when cutting a failed
    /// write off fails too.
    #[cfg(test)]
    pub(crate) fn fail_writes(&mut self, keep: Option<usize>) {
        self.fail_writes = keep;
    }

    fn known_head(&self) -> Anchor {
        Anchor {
            seq: self.last_seq,
            hash: self.last_hash.clone(),
        }
    }

    /// The pending seal and gap records, then `entries`, in one write. Returns the entries'
    /// `(seq, hash)`.
    fn write_batch(
        &mut self,
        entries: &[Entry],
        durable: bool,
        time: &str,
    ) -> io::Result<Vec<(u64, String)>> {
        if self.dirty {
            if let Err(e) = self.resync() {
                self.count_unwritten(entries, time, &e);
                return Err(e);
            }
        }
        let preamble = self.preamble();
        let batch: Vec<&Entry> = preamble.iter().chain(entries).collect();
        if batch.is_empty() {
            return Ok(Vec::new());
        }
        let (buf, mut out) = match self.encode(&batch, time) {
            Ok(encoded) => encoded,
            Err(e) => {
                self.count_unwritten(entries, time, &e);
                return Err(e);
            }
        };
        if let Err(e) = self.write_at_end(&buf, durable) {
            // The gap record, when there is one, ends the preamble.
            let gap_seq = match preamble.last() {
                Some(last) if last.event == GAP_EVENT => out.get(preamble.len() - 1),
                _ => None,
            };
            self.failed = Some(FailedBatch {
                gap: gap_seq.map(|(seq, _)| (*seq, std::mem::take(&mut self.gap))),
                records: entries
                    .iter()
                    .zip(out.iter().skip(preamble.len()))
                    .map(|(e, (seq, _))| (*seq, e.event.clone()))
                    .collect(),
                time: time.to_owned(),
                error: e.to_string(),
            });
            return Err(e);
        }
        if let Some((seq, hash)) = out.last() {
            self.last_seq = *seq;
            self.last_hash = hash.clone();
        }
        self.needs_newline = false;
        self.seal = None;
        self.gap = Gap::default();
        self.write_anchor();
        Ok(out.split_off(preamble.len()))
    }

    /// The records the writer owes before the caller's: the seal of a torn last line, then the
    /// gap.
    fn preamble(&self) -> Vec<Entry> {
        let mut records = Vec::new();
        if let Some(seal) = &self.seal {
            records.push(Entry {
                event: SEALED_EVENT.to_owned(),
                fields: seal.fields(),
            });
        }
        if self.gap.lost > 0 {
            records.push(Entry {
                event: GAP_EVENT.to_owned(),
                fields: self.gap.fields(),
            });
        }
        records
    }

    /// The bytes of `batch` as records chained from the head, and each record's `(seq, hash)`.
    fn encode(&self, batch: &[&Entry], time: &str) -> io::Result<(Vec<u8>, Heads)> {
        let time = Value::String(time.to_owned());
        let mut buf = Vec::with_capacity(batch.len() * 512);
        if self.needs_newline {
            buf.push(b'\n');
        }
        let mut seq = self.last_seq;
        let mut prev = self.last_hash.clone();
        let mut out = Vec::with_capacity(batch.len());
        for e in batch {
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
        Ok((buf, out))
    }

    /// One `write(2)` of `buf` and, if `durable`, one `fdatasync(2)`. On failure the bytes are
    /// cut off again, so that a full disk leaves no torn record behind, and the tail is re-read
    /// before the next append.
    fn write_at_end(&mut self, buf: &[u8], durable: bool) -> io::Result<()> {
        #[cfg(test)]
        if let Some(keep) = self.fail_writes {
            self.dirty = true;
            let kept = self.file.write_all(&buf[..keep.min(buf.len())]);
            let e = kept.and(Err(io::Error::from_raw_os_error(libc::ENOSPC)));
            return e.map_err(|e| with_path(e, &self.path));
        }
        let written = self.file.metadata().and_then(|m| {
            // Only this writer appends, so the length now is where the batch starts.
            let start = m.len();
            let result = self.file.write_all(buf).and_then(|()| {
                if durable {
                    self.file.sync_data()
                } else {
                    Ok(())
                }
            });
            if result.is_err() && self.file.set_len(start).is_ok() {
                let _ = self.file.sync_data();
            }
            result
        });
        written.map_err(|e| {
            self.dirty = true;
            with_path(e, &self.path)
        })
    }

    /// Count `entries` as lost: a failed call wrote none of them.
    fn count_unwritten(&mut self, entries: &[Entry], time: &str, error: &io::Error) {
        let error = error.to_string();
        for e in entries {
            self.gap.count(&e.event, time, &error);
        }
    }

    /// Re-read the tail after a failed write or sync; then count what the failed write lost.
    fn resync(&mut self) -> io::Result<()> {
        let known = self.known_head();
        self.recover(Some(known), AnchorStatus::Matches)?;
        self.dirty = false;
        if let Some(failed) = self.failed.take() {
            let on_disk = self.recovery.as_ref().and_then(|r| r.log_seq);
            self.settle(failed, on_disk);
        }
        Ok(())
    }

    /// Which records of `failed` are lost, now that the last intact record in the file is
    /// known to be `on_disk`: those after it (only this writer appends, in order).
    fn settle(&mut self, failed: FailedBatch, on_disk: Option<u64>) {
        let written = |seq: u64| on_disk.is_some_and(|last| last >= seq);
        let mut lost = match failed.gap {
            Some((seq, gap)) if !written(seq) => gap,
            _ => Gap::default(),
        };
        for (seq, event) in &failed.records {
            if !written(*seq) {
                lost.count(event, &failed.time, &failed.error);
            }
        }
        // What was counted while the write was undecided came later.
        let mut newer = std::mem::take(&mut self.gap);
        newer.absorb_older(lost);
        self.gap = newer;
    }

    /// Read the tail and set the head from it and `known` (see [`AnchorStatus`]).
    /// `status` is used when `known` is `None`.
    fn recover(&mut self, known: Option<Anchor>, status: AnchorStatus) -> io::Result<()> {
        let (tail, unterminated, bytes_read) =
            read_tail(&self.file).map_err(|e| with_path(e, &self.path))?;
        let anchor_seq = known.as_ref().map(|a| a.seq);
        let (log_good, torn) = match tail {
            Tail::Empty => (None, None),
            Tail::Record { seq, hash } => (Some((seq, hash)), None),
            Tail::Damaged { torn, last_good } => (last_good, Some(torn)),
        };
        let log_seq = log_good.as_ref().map(|g| g.0);
        let ((seq, hash), status) = chain_head(log_good.clone(), known, status, torn.is_some());
        self.seal = torn.clone().map(|torn| {
            let (last_good_seq, last_good_hash) = log_good.unwrap_or((seq, hash.clone()));
            Seal {
                torn,
                last_good_seq,
                last_good_hash,
            }
        });
        self.last_seq = seq;
        self.last_hash = hash;
        self.needs_newline = unterminated;
        self.recovery = Some(Recovery {
            torn,
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
