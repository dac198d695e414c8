//! The audit sink: every event name the daemon records, and the one thread that writes the
//! log. Records arrive over a channel; whatever has queued up is written with one write(2)
//! and, if any of it must be durable, one fdatasync (group commit), so concurrent commands do
//! not each pay for their own disk flush while the chain stays in one total order.
//!
//! A batch that cannot be written fails as a whole: durable writers get the error (and do not
//! act), posted records are dropped. The writer (`elevate_audit::AuditLog`) counts every record
//! that did not reach the file and reports them in an `audit.gap` record in front of the first
//! batch that is written again.
//!
//! Refused and denied requests are posted through [`AuditHandle::post_refusal`]: past a
//! burst per user and reason, they are counted and reported by one `audit.coalesced` record
//! an interval ([`coalesce`]), which the writer thread writes when the interval is over.
//!
//! The queue is bounded: a posted record that finds [`POST_QUEUE_MAX`] records queued is
//! dropped and counted in the next `audit.gap` record (as records lost to a failed write are);
//! a durable write waits up to [`ROOM_WAIT`] for room, then fails (and its action is not taken).

mod coalesce;

use coalesce::{Coalescer, Key, Summary};
use elevate_audit::{AuditLog, Entry};
use elevate_base::time::format_rfc3339_utc;
use elevate_base::Uid;
use serde_json::{json, Map, Value};
use std::collections::HashMap;
use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{mpsc, Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant, SystemTime};
use tokio::sync::oneshot;

macro_rules! audit_events {
    ($($(#[$attr:meta])* $variant:ident = $name:literal,)*) => {
        /// Every audit event the daemon writes. The names are the `event` field of the
        /// records and never change; elevated(8) lists them (a test keeps the two in step).
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        pub enum AuditEvent {
            $($(#[$attr])* $variant,)*
        }

        impl AuditEvent {
            #[cfg(test)]
            pub const ALL: &'static [AuditEvent] = &[$(AuditEvent::$variant,)*];

            pub const fn as_str(self) -> &'static str {
                match self {
                    $(AuditEvent::$variant => $name,)*
                }
            }
        }
    };
}

audit_events! {
    DaemonStart = "daemon.start",
    DaemonStop = "daemon.stop",
    PolicyReload = "policy.reload",
    /// Written at start-up by `elevate_audit` itself (`Recovery::to_entry`); listed here so
    /// that this enum names every event in the log.
    #[allow(dead_code)]
    AuditRecovered = "audit.recovered",
    /// Written by `elevate_audit`'s writer after a torn last line (`elevate_audit::SEALED_EVENT`).
    #[allow(dead_code)]
    AuditSealed = "audit.sealed",
    /// Written by `elevate_audit`'s writer when writing works again after records were lost
    /// (`elevate_audit::GAP_EVENT`).
    #[allow(dead_code)]
    AuditGap = "audit.gap",
    AuditCoalesced = "audit.coalesced",
    StateDamaged = "state.damaged",
    RunAllowed = "run.allowed",
    RunDenied = "run.denied",
    RunRefused = "run.refused",
    RunExit = "run.exit",
    AuthSucceeded = "auth.succeeded",
    AuthFailed = "auth.failed",
    LeaseRequested = "lease.requested",
    LeaseApproved = "lease.approved",
    LeaseActivated = "lease.activated",
    LeaseBreakGlass = "lease.break_glass",
    LeaseDenied = "lease.denied",
    LeaseRevoked = "lease.revoked",
    LeaseExpired = "lease.expired",
    LeaseEnded = "lease.ended",
    LeaseExtended = "lease.extended",
    LeaseExtensionRequested = "lease.extension_requested",
    LeaseExtensionApproved = "lease.extension_approved",
    LeaseNotSaved = "lease.not_saved",
    GroupAdded = "group.added",
    GroupRemoved = "group.removed",
    GroupError = "group.error",
    ProcessTerminated = "process.terminated",
    ProcessKept = "process.kept",
    SetgidStripped = "setgid.stripped",
    SetgidScan = "setgid.scan",
    LoginAllowed = "login.allowed",
    LoginDenied = "login.denied",
    SessionOpened = "session.opened",
    SessionClosed = "session.closed",
    SessionTerminated = "session.terminated",
}

impl fmt::Display for AuditEvent {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Why a record is not known to be written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AuditError {
    /// The writer thread is gone (start-up failed or the daemon is stopping).
    NotRunning,
    /// The writer stopped before it answered.
    Stopped,
    /// The writer answered for fewer records than it was given.
    LostRecord,
    /// The log could not be written or flushed.
    Write(String),
    /// The writer's queue stayed full for [`ROOM_WAIT`].
    QueueFull,
}

impl fmt::Display for AuditError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            AuditError::NotRunning => f.write_str("audit writer is not running"),
            AuditError::Stopped => f.write_str("audit writer stopped"),
            AuditError::LostRecord => f.write_str("audit writer lost a record"),
            AuditError::Write(e) => f.write_str(e),
            AuditError::QueueFull => f.write_str("audit writer's queue is full"),
        }
    }
}

impl std::error::Error for AuditError {}

/// A durable write under way: resolves with the last record's sequence number once every
/// record is on disk.
pub type Durable = Pin<Box<dyn Future<Output = Result<u64, AuditError>> + Send>>;

/// The audit log as the core sees it.
pub trait AuditSink: Send + Sync {
    /// Queue a record without waiting (denials, informational events).
    fn post(&self, event: AuditEvent, fields: Map<String, Value>);
    /// Queue records together (one fdatasync for all) and wait until all are on disk.
    fn durable(&self, records: Vec<(AuditEvent, Map<String, Value>)>) -> Durable;
}

struct Job {
    entry: Entry,
    durable: bool,
    done: Option<oneshot::Sender<Result<u64, AuditError>>>,
}

type Waiter = oneshot::Receiver<Result<u64, AuditError>>;

async fn wait(w: Waiter) -> Result<u64, AuditError> {
    w.await.map_err(|_| AuditError::Stopped)?
}

#[derive(Clone)]
pub struct AuditHandle {
    tx: mpsc::Sender<Job>,
    shared: Arc<Shared>,
}

/// What the handles and the writer thread share.
#[derive(Default)]
struct Shared {
    refusals: Mutex<Coalescer>,
    /// Records sent and not yet taken by the writer.
    queued: AtomicUsize,
    /// Posted records dropped from a full queue, by event, not yet counted in the log's gap.
    dropped: Mutex<HashMap<AuditEvent, u64>>,
}

/// A panic elsewhere while holding one of these leaves counts: nothing unsafe to reuse.
fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl Shared {
    fn refusals(&self) -> MutexGuard<'_, Coalescer> {
        lock(&self.refusals)
    }

    /// Take a place in the queue if fewer than `max` are taken.
    fn reserve(&self, max: usize) -> bool {
        let before = self.queued.fetch_add(1, Ordering::SeqCst);
        if before >= max {
            self.queued.fetch_sub(1, Ordering::SeqCst);
        }
        before < max
    }

    fn release(&self, n: usize) {
        self.queued.fetch_sub(n, Ordering::SeqCst);
    }
}

/// Posted records queued at most; informational records past it are dropped and counted.
pub const POST_QUEUE_MAX: usize = 4096;
/// Records queued at most: room that only durable writes, whose callers wait, may take.
const QUEUE_MAX: usize = POST_QUEUE_MAX + 1024;
/// How long a durable write waits for room in a full queue before it fails.
pub const ROOM_WAIT: Duration = Duration::from_secs(2);
/// The error a dropped record is counted under in the `audit.gap` record.
const DROPPED: &str = "audit writer's queue was full";

const MAX_BATCH: usize = 512;
/// How often the writer looks for coalescing intervals that are over, while any is open.
const SUMMARY_CHECK: Duration = Duration::from_secs(1);

/// The `audit.coalesced` record of a summary.
fn summary_job(s: Summary) -> Job {
    let fields = fields(json!({
        "uid": s.key.uid.map(|u| u.0), "record_event": s.key.event, "reason": s.key.reason,
        "count": s.count, "from": format_rfc3339_utc(s.from), "to": format_rfc3339_utc(s.to),
    }));
    Job {
        entry: Entry {
            event: AuditEvent::AuditCoalesced.as_str().to_string(),
            fields,
        },
        durable: false,
        done: None,
    }
}

/// The next jobs to write: waits for one (only as long as [`SUMMARY_CHECK`] while a coalescing
/// interval is open), then takes what else is queued and the summaries that are due. `None`
/// once every handle is gone.
fn next_batch(rx: &mpsc::Receiver<Job>, shared: &Shared) -> Option<Vec<Job>> {
    // Not in the match: the guard would be held while waiting.
    let idle = shared.refusals().is_idle();
    let first = match idle {
        true => Some(rx.recv().ok()?),
        false => match rx.recv_timeout(SUMMARY_CHECK) {
            Ok(job) => Some(job),
            Err(mpsc::RecvTimeoutError::Timeout) => None,
            Err(mpsc::RecvTimeoutError::Disconnected) => return None,
        },
    };
    let mut batch: Vec<Job> = first.into_iter().collect();
    while batch.len() < MAX_BATCH {
        match rx.try_recv() {
            Ok(j) => batch.push(j),
            Err(_) => break,
        }
    }
    shared.release(batch.len());
    // The summaries that are due; all of them in front of daemon.stop, the log's last word.
    let stop = AuditEvent::DaemonStop.as_str();
    let stopping = batch.iter().position(|j| j.entry.event == stop);
    let due = shared.refusals().due(Instant::now(), stopping.is_some());
    let at = stopping.unwrap_or(batch.len());
    batch.splice(at..at, due.into_iter().map(summary_job));
    Some(batch)
}

/// The writer thread: batches until every handle is gone, then what is left to say.
fn write_all(mut log: AuditLog, rx: mpsc::Receiver<Job>, shared: Arc<Shared>) {
    let mut failing = false;
    while let Some(batch) = next_batch(&rx, &shared) {
        let dropped = std::mem::take(&mut *lock(&shared.dropped));
        for (event, n) in &dropped {
            log.count_dropped(event.as_str(), *n, DROPPED);
        }
        if batch.is_empty() {
            if !dropped.is_empty() {
                // Nothing else to write: the gap record on its own.
                failing = log.write_pending().is_err();
            }
            continue;
        }
        let written = write_batch(&mut log, batch);
        if written && failing {
            tracing::warn!(
                "audit log written again; an audit.gap record counts the records lost meanwhile"
            );
        }
        failing = !written;
    }
    let last: Vec<Job> = shared
        .refusals()
        .due(Instant::now(), true)
        .into_iter()
        .map(summary_job)
        .collect();
    if !last.is_empty() {
        write_batch(&mut log, last);
    }
    // Last chance for a gap record (daemon.stop failed too, if there is one).
    if log.write_pending().is_err() {
        if let Some(gap) = log.pending_gap() {
            tracing::error!("audit log: {gap}; no audit.gap record says so");
        }
    }
}

/// Write one batch and answer its waiters. Whether it was written.
fn write_batch(log: &mut AuditLog, batch: Vec<Job>) -> bool {
    let durable = batch.iter().any(|j| j.durable);
    // logrotate moved the file away: continue the chain in the new one.
    if let Err(e) = log.reopen_if_rotated() {
        tracing::error!("audit log reopen failed: {e}");
    }
    let entries: Vec<Entry> = batch.iter().map(|j| j.entry.clone()).collect();
    let result = log.append(&entries, durable);
    if let Err(e) = &result {
        tracing::error!(
            "audit log write failed: {e}; commands will be refused until it works again"
        );
    }
    if let Some(e) = log.take_anchor_error() {
        tracing::warn!("audit anchor not updated: {e}");
    }
    for (i, job) in batch.into_iter().enumerate() {
        if let Some(done) = job.done {
            let r = match &result {
                Ok(seqs) => seqs
                    .get(i)
                    .map(|(seq, _)| *seq)
                    .ok_or(AuditError::LostRecord),
                Err(e) => Err(AuditError::Write(e.to_string())),
            };
            let _ = done.send(r);
        }
    }
    result.is_ok()
}

impl AuditHandle {
    /// Start the writer thread over an opened log.
    pub fn start(log: AuditLog) -> std::io::Result<AuditHandle> {
        let (tx, rx) = mpsc::channel::<Job>();
        let shared = Arc::new(Shared::default());
        let writer = Arc::clone(&shared);
        std::thread::Builder::new()
            .name("audit-writer".into())
            .spawn(move || write_all(log, rx, writer))?;
        Ok(AuditHandle { tx, shared })
    }

    /// Queue a record whose caller waits for it: never dropped, but it waits at most
    /// [`ROOM_WAIT`] for room in a full queue.
    async fn enqueue(
        &self,
        event: AuditEvent,
        fields: Map<String, Value>,
        durable: bool,
    ) -> Result<Waiter, AuditError> {
        let deadline = Instant::now() + ROOM_WAIT;
        while !self.shared.reserve(QUEUE_MAX) {
            if Instant::now() >= deadline {
                return Err(AuditError::QueueFull);
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        self.send_reserved(event, fields, durable)
    }

    /// Send a record whose place in the queue is reserved.
    fn send_reserved(
        &self,
        event: AuditEvent,
        fields: Map<String, Value>,
        durable: bool,
    ) -> Result<Waiter, AuditError> {
        let (done, wait) = oneshot::channel();
        self.tx
            .send(Job {
                entry: Entry {
                    event: event.as_str().to_string(),
                    fields,
                },
                durable,
                done: Some(done),
            })
            .map_err(|_| {
                self.shared.release(1);
                AuditError::NotRunning
            })?;
        Ok(wait)
    }

    /// Write a record and wait until it is on disk (fdatasync'd). Returns its sequence number.
    /// An error means the record is not known to be durable: the caller must not proceed.
    pub async fn write_durable(
        &self,
        event: AuditEvent,
        fields: Map<String, Value>,
    ) -> Result<u64, AuditError> {
        wait(self.enqueue(event, fields, true).await?).await
    }

    /// Write a record and wait until it has been written (not necessarily flushed to disk).
    pub async fn write(
        &self,
        event: AuditEvent,
        fields: Map<String, Value>,
    ) -> Result<u64, AuditError> {
        wait(self.enqueue(event, fields, false).await?).await
    }

    /// Queue a record without waiting (denials, informational events). From a full queue it
    /// is dropped, and counted in the next `audit.gap` record.
    pub fn post(&self, event: AuditEvent, fields: Map<String, Value>) {
        if !self.shared.reserve(POST_QUEUE_MAX) {
            *lock(&self.shared.dropped).entry(event).or_insert(0) += 1;
            return;
        }
        let sent = self.tx.send(Job {
            entry: Entry {
                event: event.as_str().to_string(),
                fields,
            },
            durable: false,
            done: None,
        });
        if sent.is_err() {
            self.shared.release(1);
        }
    }

    /// Queue the record of a refused or denied request (`reason`: `denied` or the refusal's
    /// kind), unless `uid` had its burst of them this interval: then it is only counted, for
    /// the interval's `audit.coalesced` record.
    pub fn post_refusal(
        &self,
        uid: Uid,
        event: AuditEvent,
        reason: &str,
        fields: Map<String, Value>,
    ) {
        let key = Key {
            uid: Some(uid),
            event: event.as_str(),
            reason: reason.to_owned(),
        };
        let now = (Instant::now(), SystemTime::now());
        if self.shared.refusals().admit(key, now.0, now.1) {
            self.post(event, fields);
        }
    }
}

impl AuditSink for AuditHandle {
    fn post(&self, event: AuditEvent, fields: Map<String, Value>) {
        AuditHandle::post(self, event, fields)
    }

    /// The records are queued together, so the writer thread commits them with one fdatasync.
    fn durable(&self, records: Vec<(AuditEvent, Map<String, Value>)>) -> Durable {
        // Queued now, in the caller's order among its other records, while there is room (the
        // usual case); the rest wait for room when awaited.
        let (mut now, mut later) = (Vec::new(), Vec::new());
        for (e, f) in records {
            if later.is_empty() && self.shared.reserve(QUEUE_MAX) {
                now.push(self.send_reserved(e, f, true));
            } else {
                later.push((e, f));
            }
        }
        let this = self.clone();
        Box::pin(async move {
            let mut waiters = now.into_iter().collect::<Result<Vec<_>, _>>()?;
            for (e, f) in later {
                waiters.push(this.enqueue(e, f, true).await?);
            }
            let mut last = 0;
            for w in waiters {
                last = wait(w).await?;
            }
            Ok(last)
        })
    }
}

/// Build a field map from `json!({...})` literals.
pub fn fields(v: Value) -> Map<String, Value> {
    match v {
        Value::Object(m) => m,
        _ => Map::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::AuditEvent;
    use std::collections::BTreeSet;

    /// The events `elevate_audit` writes by itself have the names it uses.
    #[test]
    fn the_writers_own_events_match_the_audit_crate() {
        assert_eq!(
            AuditEvent::AuditSealed.as_str(),
            elevate_audit::SEALED_EVENT
        );
        assert_eq!(AuditEvent::AuditGap.as_str(), elevate_audit::GAP_EVENT);
    }

    /// A summary's fields are its own, not the chain's.
    #[test]
    fn a_summary_record_uses_no_reserved_key() {
        let now = std::time::SystemTime::now();
        let job = super::summary_job(super::Summary {
            key: super::Key {
                uid: None,
                event: "run.denied",
                reason: "denied".into(),
            },
            count: 3,
            from: now,
            to: now,
        });
        assert_eq!(job.entry.fields["count"], 3);
        for key in elevate_audit::chain::RESERVED_KEYS {
            assert!(!job.entry.fields.contains_key(key), "{key}");
        }
    }

    fn unread_handle() -> (super::AuditHandle, std::sync::mpsc::Receiver<super::Job>) {
        let (tx, rx) = std::sync::mpsc::channel();
        let shared = std::sync::Arc::new(super::Shared::default());
        (super::AuditHandle { tx, shared }, rx)
    }

    #[test]
    fn posts_to_a_full_queue_are_dropped_and_counted() {
        let (audit, _rx) = unread_handle();
        for _ in 0..super::POST_QUEUE_MAX + 7 {
            audit.post(AuditEvent::RunDenied, serde_json::Map::new());
        }
        let queued = audit
            .shared
            .queued
            .load(std::sync::atomic::Ordering::SeqCst);
        assert_eq!(queued, super::POST_QUEUE_MAX);
        let dropped = super::lock(&audit.shared.dropped).clone();
        assert_eq!(dropped.get(&AuditEvent::RunDenied), Some(&7));
    }

    #[tokio::test]
    async fn a_durable_write_waits_for_room_then_fails_closed() {
        let (audit, _rx) = unread_handle();
        let full = super::QUEUE_MAX;
        audit
            .shared
            .queued
            .store(full - 1, std::sync::atomic::Ordering::SeqCst);
        let first = super::AuditSink::durable(
            &audit,
            vec![(AuditEvent::RunAllowed, serde_json::Map::new())],
        );
        let started = std::time::Instant::now();
        let second = audit
            .write_durable(AuditEvent::RunAllowed, serde_json::Map::new())
            .await;
        assert_eq!(second, Err(super::AuditError::QueueFull));
        assert!(started.elapsed() >= super::ROOM_WAIT);
        drop(first);
    }

    #[test]
    fn dropped_records_are_reported_by_the_next_gap_record() {
        let dir = std::env::temp_dir().join(format!("elevate-audit-drop-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("audit.jsonl");
        let log = elevate_audit::AuditLog::open(&path).unwrap();
        let (audit, rx) = unread_handle();
        for _ in 0..super::POST_QUEUE_MAX + 3 {
            audit.post(AuditEvent::RunRefused, serde_json::Map::new());
        }
        let shared = std::sync::Arc::clone(&audit.shared);
        drop(audit);
        super::write_all(log, rx, shared);
        let text = std::fs::read_to_string(&path).unwrap();
        let _ = std::fs::remove_dir_all(&dir);
        let recs: Vec<serde_json::Value> = text
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
        assert_eq!(recs.len(), super::POST_QUEUE_MAX + 1);
        assert_eq!(recs[0]["event"], "audit.gap");
        assert_eq!(recs[0]["lost"], 3);
        assert_eq!(recs[0]["events"]["run.refused"], 3);
        assert_eq!(recs[0]["error"], super::DROPPED);
    }

    /// elevated(8) lists every event, and nothing else, under AUDIT EVENTS.
    #[test]
    fn the_man_page_lists_exactly_these_events() {
        let page = concat!(env!("CARGO_MANIFEST_DIR"), "/../packaging/man/elevated.8");
        let text = std::fs::read_to_string(page).expect("elevated.8");
        let section = text
            .split("\n.SH ")
            .find(|s| s.starts_with("AUDIT EVENTS"))
            .expect("an AUDIT EVENTS section");
        let lines: Vec<&str> = section.lines().collect();
        let listed: BTreeSet<String> = lines
            .windows(2)
            .filter(|w| w[0] == ".TP")
            .filter_map(|w| w[1].strip_prefix(".B "))
            .map(|n| n.replace("\\-", "-"))
            .collect();
        let known: BTreeSet<String> = AuditEvent::ALL.iter().map(|e| e.to_string()).collect();
        assert_eq!(listed, known);
    }
}
