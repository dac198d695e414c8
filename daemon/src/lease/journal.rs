//! Durable lease state: an append-only journal of full lease records (JSON Lines; the last
//! record for an id wins), fdatasync'd before the client is told anything, and compacted into a
//! fresh file (temp + fsync + rename + directory fsync) at start-up and when it grows.
//!
//! A crash can lose only what was never acknowledged: every acknowledged transition is a
//! complete line on disk. A torn last line (power loss mid-write) is ignored on load; the
//! transition it described was never acknowledged. An append that fails (a full disk) is cut
//! back, so that the next one never follows a partial line.
//!
//! Lease ids never repeat, not even for a request that was audited but never journaled
//! (a crash in between): ids are handed out only below a high-water mark kept durably in
//! `lease-ids` beside the journal, reserved in blocks ahead of use.
//!
//! A full state directory fails new transitions closed and still journals endings: see
//! [`Kind`] and `reserve.rs`.

use super::model::Lease;
use super::reserve::{is_no_space, Reserve, Space, StateFull, StateWarning};
use crate::os::files::{aside_path, replace_durably};
use std::collections::BTreeMap;
use std::fs::{File, OpenOptions};
use std::io::{self, BufRead, BufReader, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// What a transition does to privilege, which decides whether it may use the reserve.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// Takes privilege away (an ending, the removal of its memberships): written on the
    /// reserve when the disk is full; if even that fails, kept and written before anything
    /// else later.
    Ending,
    /// May grant or keep privilege (request, approval, extension, activation): refused with
    /// [`StateFull`] while the reserve is not in place and cannot be made again.
    Granting,
}

/// Where lease records go, as the core sees it: append durably, compact now and then.
pub trait LeaseStore: Send + Sync {
    /// Append these records durably. Only after this returns Ok may the change be
    /// acknowledged or acted on.
    fn commit(&mut self, records: &[Lease], kind: Kind) -> io::Result<()>;
    /// Rewrite with only the current records once the store has grown well past them.
    fn maybe_compact(
        &mut self,
        live: usize,
        all: &mut dyn Iterator<Item = &Lease>,
    ) -> io::Result<()>;
    /// The highest lease id ever reserved (0 when none): no id at or below it is new.
    fn reserved_ids(&self) -> u64;
    /// Durably reserve every id up to `through`, before any of them is used. Part of a
    /// request: refused like one on a full state directory.
    fn reserve_ids(&mut self, through: u64) -> io::Result<()>;
    /// Before a transition that may grant privilege: the reserve is in place (made again if
    /// endings used it), or a [`StateFull`] error.
    fn ensure_reserve(&mut self) -> io::Result<()>;
    /// From the tick: write endings still unsaved and make the reserve again once there is
    /// room (an attempt every few seconds at most).
    fn maintain(&mut self);
    /// What `elevate status` should say about the state directory (nothing when all is well).
    fn warnings(&self) -> Vec<String>;
}

/// How many ids one reservation covers: one durable write per this many requests.
pub const ID_BLOCK: u64 = 1000;

pub struct Journal {
    path: PathBuf,
    file: File,
    /// Where a failed append that could not be cut back at once must be cut back to.
    cut_back_to: Option<u64>,
    lines: usize,
    /// `lease-ids`, and the id it holds.
    ids_path: PathBuf,
    reserved: u64,
    /// What was found damaged at open (for the audit log), each a sentence.
    damage: Vec<String>,
    /// Records were lost at open (lines that did not read, not only a torn tail).
    lost_records: bool,
    reserve: Reserve,
    space: Space,
    /// Lines of endings that could not be written even on the reserve (they took effect):
    /// written first by the next append, or by a compaction (which writes every record).
    unsaved: Vec<u8>,
    unsaved_lines: usize,
    /// A write that may grant privilege found no room, and nothing was written since.
    full: bool,
    last_maintained: Option<Instant>,
}

/// How far past every id the journal holds the next id starts when `lease-ids` is damaged:
/// more leases than any host issues, so an id in the lost range is never handed out again.
const IDS_LOST_JUMP: u64 = 1 << 32;

/// Compact when the journal holds this many more lines than live records.
const COMPACT_SLACK: usize = 50_000;

/// How often the tick's `maintain` tries again while something waits for room.
const MAINTAIN_EVERY: Duration = Duration::from_secs(2);

impl Journal {
    /// Load every lease from `state_dir/leases.jsonl`, then rewrite the journal compactly.
    pub fn open(state_dir: &Path) -> io::Result<(Journal, BTreeMap<u64, Lease>)> {
        Journal::open_on(state_dir, Space::default())
    }

    /// [`Journal::open`] on a filesystem with this much room (tests simulate a full one).
    pub(super) fn open_on(
        state_dir: &Path,
        space: Space,
    ) -> io::Result<(Journal, BTreeMap<u64, Lease>)> {
        let path = state_dir.join("leases.jsonl");
        // Loaded into a hash map (the last record of an id wins), then collected into the
        // BTreeMap in one go: built from sorted input its nodes are full, where inserting ids
        // in ascending order leaves them half empty (about twice the memory at 100,000 leases).
        let mut leases = std::collections::HashMap::new();
        let mut damage = Vec::new();
        let read = read_records(&path, &mut leases)?;
        let bad = read.bad;
        if bad > 0 {
            // Not a write cut short at the end: lines in the middle do not read. Keep every
            // record that does, and the whole file as it was for the administrator.
            let aside = aside_path(&path);
            std::fs::copy(&path, &aside)?;
            damage.push(format!(
                "the lease journal {} had {bad} unreadable line(s); {} readable lease(s) kept, the file as it was is {}",
                path.display(),
                leases.len(),
                aside.display()
            ));
        }
        let leases: BTreeMap<u64, Lease> = leases.into_iter().collect();
        // Room for endings first: the compaction needs room for a copy.
        let reserve = Reserve::open(state_dir, space.clone());
        let (file, lines) = match rewrite(&path, leases.values(), &space) {
            Ok(file) => (file, leases.len()),
            Err(e) if is_no_space(&e) => {
                let at = path.display();
                tracing::warn!("lease journal {at}: not compacted ({e}); appended to as it is");
                let file = open_append(&path)?;
                // A torn last line would otherwise run into the next record.
                file.set_len(read.complete_len)?;
                (file, read.lines)
            }
            Err(e) => return Err(e),
        };
        let ids_path = state_dir.join("lease-ids");
        let reserved = match read_reserved(&ids_path) {
            Ok(r) => r,
            Err(e) if e.kind() == io::ErrorKind::InvalidData => {
                let aside = aside_path(&ids_path);
                std::fs::rename(&ids_path, &aside)?;
                let top = leases.keys().next_back().copied().unwrap_or(0);
                damage.push(format!(
                    "{e}; new lease ids start {IDS_LOST_JUMP} past the journal's highest, the file is {}",
                    aside.display()
                ));
                top.saturating_add(IDS_LOST_JUMP)
            }
            Err(e) => return Err(e),
        };
        let journal = Journal {
            path,
            file,
            cut_back_to: None,
            ids_path,
            reserved,
            damage,
            lost_records: bad > 0,
            lines,
            reserve,
            space,
            unsaved: Vec::new(),
            unsaved_lines: 0,
            full: false,
            last_maintained: None,
        };
        Ok((journal, leases))
    }

    /// What was found damaged at open, each a sentence (empty when nothing was).
    pub fn damage(&self) -> &[String] {
        &self.damage
    }

    /// Whether lease records were lost at open (damaged lines, not only a torn tail).
    pub fn lost_records(&self) -> bool {
        self.lost_records
    }

    /// Append these records (after any unsaved endings) and fdatasync. An ending that finds
    /// no room is written on the reserve; one that cannot be written at all is kept for the
    /// next append. A transition that may grant privilege never uses the reserve.
    pub fn commit<'a>(
        &mut self,
        records: impl IntoIterator<Item = &'a Lease>,
        kind: Kind,
    ) -> io::Result<()> {
        if kind == Kind::Granting && self.unsaved_lines > 0 {
            // Endings first: they may use the reserve, what follows them may not.
            self.commit([], Kind::Ending).map_err(|e| self.refusal(e))?;
        }
        let mut new = Vec::new();
        let mut n = 0;
        for l in records {
            serde_json::to_writer(&mut new, l).map_err(io::Error::other)?;
            new.push(b'\n');
            n += 1;
        }
        let mut buf = std::mem::take(&mut self.unsaved);
        buf.extend_from_slice(&new);
        n += std::mem::take(&mut self.unsaved_lines);
        if n == 0 {
            return Ok(());
        }
        let written = match kind {
            Kind::Ending => self.append_ending(&buf),
            Kind::Granting => match self.ensure_reserve() {
                Ok(()) => self.append(&buf).map_err(|e| self.refusal(e)),
                Err(e) => Err(e),
            },
        };
        match written {
            Ok(()) => {
                self.lines += n;
                self.full = false;
            }
            // Endings took effect: written later. What may grant did not.
            Err(_) if kind == Kind::Ending => (self.unsaved, self.unsaved_lines) = (buf, n),
            Err(_) => {}
        }
        written
    }

    /// Append an ending; when there is no room, release the reserve and append on its space.
    fn append_ending(&mut self, buf: &[u8]) -> io::Result<()> {
        match self.append(buf) {
            Err(e) if is_no_space(&e) && self.reserve.in_place() => {
                tracing::warn!("{e}: {}", StateWarning::OnReserve(self.reserve.dir()));
                self.reserve.release()?;
                self.append(buf)
            }
            r => r,
        }
    }

    /// Write `buf` at the end and fdatasync; on failure cut the file back to where it ended.
    fn append(&mut self, buf: &[u8]) -> io::Result<()> {
        let end = match self.cut_back_to {
            Some(end) => {
                self.file.set_len(end)?;
                self.cut_back_to = None;
                end
            }
            None => self.file.metadata()?.len(),
        };
        let size = buf.len() as u64;
        self.space.take(size)?;
        if let Err(e) = self
            .file
            .write_all(buf)
            .and_then(|()| self.file.sync_data())
        {
            self.space.give(size);
            self.cut_back_to = self.file.set_len(end).err().map(|_| end);
            return Err(e);
        }
        Ok(())
    }

    /// The error a transition that may grant privilege gets: no room is [`StateFull`].
    fn refusal(&mut self, e: io::Error) -> io::Error {
        if !is_no_space(&e) {
            return e;
        }
        self.full = true;
        StateFull::error(&self.reserve.dir())
    }

    /// The reserve in place, made again now if endings used it; [`StateFull`] if no room.
    pub fn ensure_reserve(&mut self) -> io::Result<()> {
        if self.reserve.in_place() {
            return Ok(());
        }
        match self.reserve.make() {
            Ok(()) => {
                self.full = false;
                let dir = self.reserve.dir();
                tracing::info!("state directory {}: the reserve is back", dir.display());
                Ok(())
            }
            Err(e) => Err(self.refusal(e)),
        }
    }

    /// Rewrite with only the current records once the journal has grown well past them.
    /// Never while the reserve is not in place: the copy would take the room endings need.
    pub fn maybe_compact<'a>(
        &mut self,
        live: usize,
        all: impl Iterator<Item = &'a Lease>,
    ) -> io::Result<()> {
        if self.lines < live + COMPACT_SLACK || !self.reserve.in_place() {
            return Ok(());
        }
        let old = self.file.metadata()?.len();
        self.file = rewrite(&self.path, all, &self.space)?;
        self.space.give(old);
        self.lines = live;
        self.cut_back_to = None;
        // The current records include every unsaved ending: they are written now.
        self.unsaved.clear();
        self.unsaved_lines = 0;
        Ok(())
    }

    /// Durably reserve every id up to `through` (a request's: never on the reserve).
    fn write_ids(&mut self, through: u64) -> io::Result<()> {
        self.ensure_reserve()?;
        let text = format!("{through}\n");
        let size = text.len() as u64;
        let written = self
            .space
            .take(size)
            .and_then(|()| replace_durably(&self.ids_path, |w| w.write_all(text.as_bytes())));
        written.map_err(|e| self.refusal(e))?;
        // The file it replaced (as long, or none) is gone.
        self.space.give(size);
        self.reserved = through;
        Ok(())
    }

    /// From the tick: unsaved endings first, then the reserve; every few seconds at most.
    pub fn maintain(&mut self) {
        if self.unsaved_lines == 0 && self.reserve.in_place() {
            return;
        }
        let now = Instant::now();
        if self
            .last_maintained
            .is_some_and(|t| now.duration_since(t) < MAINTAIN_EVERY)
        {
            return;
        }
        self.last_maintained = Some(now);
        if self.unsaved_lines > 0 {
            if let Err(e) = self.commit([], Kind::Ending) {
                tracing::warn!("lease journal {}: {e}", self.path.display());
                return;
            }
        }
        let _ = self.ensure_reserve();
    }

    /// What `elevate status` says about the state directory, each a sentence.
    pub fn warnings(&self) -> Vec<String> {
        let dir = self.reserve.dir();
        let mut said = Vec::new();
        if !self.reserve.in_place() {
            said.push(StateWarning::OnReserve(dir).to_string());
        } else if self.full {
            said.push(StateWarning::Full(dir).to_string());
        }
        if self.unsaved_lines > 0 {
            let unsaved = StateWarning::Unsaved(self.path.clone(), self.unsaved_lines);
            said.push(unsaved.to_string());
        }
        said
    }
}

impl LeaseStore for Journal {
    fn commit(&mut self, records: &[Lease], kind: Kind) -> io::Result<()> {
        tokio::task::block_in_place(|| Journal::commit(self, records, kind))
    }

    fn maybe_compact(
        &mut self,
        live: usize,
        all: &mut dyn Iterator<Item = &Lease>,
    ) -> io::Result<()> {
        tokio::task::block_in_place(|| Journal::maybe_compact(self, live, all))
    }

    fn reserved_ids(&self) -> u64 {
        self.reserved
    }

    fn reserve_ids(&mut self, through: u64) -> io::Result<()> {
        tokio::task::block_in_place(|| self.write_ids(through))
    }

    fn ensure_reserve(&mut self) -> io::Result<()> {
        tokio::task::block_in_place(|| Journal::ensure_reserve(self))
    }

    fn maintain(&mut self) {
        tokio::task::block_in_place(|| Journal::maintain(self))
    }

    fn warnings(&self) -> Vec<String> {
        Journal::warnings(self)
    }
}

/// What reading the journal found.
struct Read {
    /// Lines that did not read (not counting a torn last line).
    bad: usize,
    /// Lines read.
    lines: usize,
    /// Where the last complete line ends: a torn last line starts there.
    complete_len: u64,
}

/// Read every record of the journal at `path` into `leases` (the last record of an id wins).
/// A torn last line (power loss mid-write: no newline after it) is an unacknowledged write
/// and is dropped quietly; counts the other lines that did not read.
fn read_records(
    path: &Path,
    leases: &mut std::collections::HashMap<u64, Lease>,
) -> io::Result<Read> {
    let mut read = Read {
        bad: 0,
        lines: 0,
        complete_len: 0,
    };
    let mut f = match File::open(path) {
        Ok(f) => f,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(read),
        Err(e) => return Err(e),
    };
    let complete = ends_with_newline(&mut f)?;
    // Streamed: 100,000 leases would otherwise be a 35 MB buffer held at start-up.
    let mut lines = BufReader::new(f).split(b'\n').peekable();
    while let Some(line) = lines.next() {
        let line = line?;
        let last = lines.peek().is_none();
        if !last || complete {
            read.complete_len += line.len() as u64 + 1;
        }
        if line.is_empty() {
            continue;
        }
        read.lines += 1;
        match serde_json::from_slice::<Lease>(&line) {
            Ok(l) => {
                leases.insert(l.id, l);
            }
            Err(_) if last && !complete => {
                read.lines -= 1;
                tracing::warn!(
                    "lease journal: ignored a torn last line (an unacknowledged write cut short)"
                );
            }
            Err(_) => read.bad += 1,
        }
    }
    Ok(read)
}

/// Whether the file's last byte is a newline (an empty file counts as complete).
fn ends_with_newline(f: &mut File) -> io::Result<bool> {
    use std::io::{Read, Seek, SeekFrom};
    if f.metadata()?.len() == 0 {
        return Ok(true);
    }
    f.seek(SeekFrom::End(-1))?;
    let mut last = [0u8; 1];
    f.read_exact(&mut last)?;
    f.seek(SeekFrom::Start(0))?;
    Ok(last[0] == b'\n')
}

/// The reserved high-water mark; 0 when the file does not exist yet. A damaged file is an
/// error (the daemon will not guess an id it might repeat).
fn read_reserved(path: &Path) -> io::Result<u64> {
    match std::fs::read_to_string(path) {
        Ok(text) => text.trim().parse().map_err(|_| {
            io::Error::new(
                io::ErrorKind::InvalidData,
                format!("{}: not a lease id: {:?}", path.display(), text.trim()),
            )
        }),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(0),
        Err(e) => Err(e),
    }
}

/// Replace the journal with these records (durably, see `replace_durably`); return it opened
/// for appending. Streamed: 100,000 leases would otherwise be a 35 MB buffer at start-up.
fn rewrite<'a>(
    path: &Path,
    leases: impl Iterator<Item = &'a Lease>,
    space: &Space,
) -> io::Result<File> {
    let mut len = 0;
    replace_durably(path, |w| {
        let mut line = Vec::new();
        for l in leases {
            line.clear();
            serde_json::to_writer(&mut line, l).map_err(io::Error::other)?;
            line.push(b'\n');
            space.take(line.len() as u64)?;
            w.write_all(&line)?;
            len += line.len() as u64;
        }
        Ok(())
    })
    .inspect_err(|_| space.give(len))?;
    open_append(path)
}

/// The journal, opened for appending (made if missing).
fn open_append(path: &Path) -> io::Result<File> {
    OpenOptions::new()
        .append(true)
        .create(true)
        .mode(0o600)
        .open(path)
}

#[cfg(test)]
pub(super) mod tests {
    use super::*;
    use crate::lease::model::{EndReason, Lease, LeaseState};

    /// A lease of alice's in this state (also for `full_disk_tests.rs`).
    pub(in crate::lease) fn lease(id: u64, state: LeaseState) -> Lease {
        Lease {
            id,
            uid: elevate_base::Uid(1000),
            user: "alice".into(),
            profile: "p".into(),
            state,
            ..Lease::default()
        }
    }

    #[test]
    fn last_record_wins_and_torn_tail_is_ignored() {
        let dir = std::env::temp_dir().join(format!("elevate-journal-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        {
            let (mut j, leases) = Journal::open(&dir).unwrap();
            assert!(leases.is_empty());
            j.commit(
                [
                    &lease(1, LeaseState::Pending),
                    &lease(2, LeaseState::Active),
                ],
                Kind::Granting,
            )
            .unwrap();
            j.commit([&lease(1, LeaseState::Active)], Kind::Granting)
                .unwrap();
        }
        // A write cut short by a crash.
        let mut f = OpenOptions::new()
            .append(true)
            .open(dir.join("leases.jsonl"))
            .unwrap();
        f.write_all(b"{\"id\":3,\"uid\":10").unwrap();
        drop(f);
        let (_, leases) = Journal::open(&dir).unwrap();
        assert_eq!(leases.len(), 2);
        assert_eq!(leases[&1].state, LeaseState::Active);
        // Compacted: one line per lease, no torn line.
        let text = std::fs::read_to_string(dir.join("leases.jsonl")).unwrap();
        assert_eq!(text.lines().count(), 2);
        std::fs::remove_dir_all(&dir).unwrap();
    }

    /// A record as journals on disk hold it reads back and writes out byte for byte, in
    /// every state and with every end reason.
    #[test]
    fn journal_lines_round_trip() {
        let line = r#"{"id":7,"uid":1000,"user":"alice","profile":"db","state":"ended","reason":"vacuum","duration_ms":1800000,"requested_at_ms":1714564200000,"pending_until_ms":1714565100000,"approvals":[{"uid":1001,"user":"bob","at_ms":1714564300000}],"approvals_needed":1,"activated_at_ms":1714564300000,"expires_at_ms":1714566100000,"ended_at_ms":1714564900000,"end_reason":"process_exited","ended_by":"carol","grants":[{"group":"pgadmin","gid":2001,"standing":false,"applied":false}],"break_glass":false,"bound":{"pid":4242,"start_time":99}}"#;
        let l: Lease = serde_json::from_str(line).unwrap();
        assert_eq!(l.state, LeaseState::Ended);
        assert_eq!(l.end_reason, Some(EndReason::ProcessExited));
        assert_eq!(serde_json::to_string(&l).unwrap(), line);
        let states = ["pending", "active", "ended"];
        let reasons = [
            "expired",
            "revoked",
            "denied",
            "request_expired",
            "process_exited",
            "policy_changed",
            "withdrawn",
        ];
        for (state, reason) in states.iter().flat_map(|s| reasons.map(|r| (s, r))) {
            let other = line
                .replace(r#""state":"ended""#, &format!(r#""state":"{state}""#))
                .replace(
                    r#""end_reason":"process_exited""#,
                    &format!(r#""end_reason":"{reason}""#),
                );
            let l: Lease = serde_json::from_str(&other).unwrap();
            assert_eq!(
                (l.state.as_str(), l.end_reason.map(EndReason::as_str)),
                (*state, Some(reason))
            );
            assert_eq!(serde_json::to_string(&l).unwrap(), other);
        }
    }

    #[test]
    fn reserved_ids_survive_a_restart_and_a_damaged_mark_jumps_ahead() {
        let dir = std::env::temp_dir().join(format!("elevate-ids-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        {
            let (mut j, _) = Journal::open(&dir).unwrap();
            assert_eq!(j.reserved_ids(), 0);
            j.reserve_ids(ID_BLOCK).unwrap();
        }
        let (j, _) = Journal::open(&dir).unwrap();
        assert_eq!(j.reserved_ids(), ID_BLOCK);
        std::fs::write(dir.join("lease-ids"), "twelve\n").unwrap();
        let (j, _) = Journal::open(&dir).expect("a damaged mark never stops the daemon");
        assert_eq!(
            j.reserved_ids(),
            IDS_LOST_JUMP,
            "ids start far past anything issued"
        );
        assert!(j.damage()[0].contains("not a lease id"), "{:?}", j.damage());
        assert!(!j.lost_records());
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn a_torn_tail_is_dropped_quietly_and_damage_in_the_middle_is_kept_aside() {
        let dir = std::env::temp_dir().join(format!("elevate-dmg-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let good = serde_json::to_string(&lease(1, LeaseState::Active)).unwrap();
        let path = dir.join("leases.jsonl");
        std::fs::write(&path, format!("{good}\n{{\"id\":2,\"ui")).unwrap();
        let (j, t) = Journal::open(&dir).unwrap();
        assert_eq!((t.len(), j.lost_records(), j.damage().len()), (1, false, 0));
        let other = serde_json::to_string(&lease(3, LeaseState::Active)).unwrap();
        std::fs::write(&path, format!("{good}\ngarbage\n{other}\n")).unwrap();
        let (j, t) = Journal::open(&dir).unwrap();
        assert_eq!(t.len(), 2, "every readable record kept");
        assert!(j.lost_records());
        assert!(
            j.damage()[0].contains("1 unreadable line"),
            "{:?}",
            j.damage()
        );
        let aside: Vec<_> = std::fs::read_dir(&dir)
            .unwrap()
            .flatten()
            .filter(|e| {
                e.file_name()
                    .to_string_lossy()
                    .starts_with("leases.jsonl.damaged-")
            })
            .collect();
        assert_eq!(aside.len(), 1);
        let kept = std::fs::read_to_string(aside[0].path()).unwrap();
        assert!(kept.contains("garbage"), "the file as it was");
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
