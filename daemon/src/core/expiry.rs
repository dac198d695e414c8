//! Endings: leases end in batches (one journal write, one group rewrite, one /proc scan), on
//! the tick when due (wall clock), when a bound process exits, when a reload takes their
//! profile away, and at start-up for whatever a crash or downtime left.

use super::announce::Notice;
use super::leases::LeaseBook;
use super::Event;
use super::State;
use crate::effects::audit::{fields, AuditEvent};
use crate::effects::audit_history::{endings_among, LeaseRecord};
use crate::effects::procs::ProcId;
use crate::lease::journal::Kind;
use crate::lease::model::{Bound, EndReason, Lease, LeaseState};
use crate::lease::rules;
use elevate_base::{Pid, Uid};
use elevate_policy::Access;
use serde_json::{json, Value};
use std::collections::BTreeSet;
use std::time::Duration;

/// Ended leases stay listed (and in the journal) this long.
const KEEP_ENDED: Duration = Duration::from_secs(7 * 24 * 3600);

impl State {
    /// End these leases together: one journal write, one /etc/group rewrite, one /proc scan.
    pub(super) async fn end_batch(
        &mut self,
        ends: Vec<(u64, EndReason, Option<String>, Option<String>)>,
    ) {
        let now = self.clock.wall_ms();
        let mut ended = Vec::new();
        let mut events = Vec::new();
        for (id, why, by, reason) in ends {
            let Some(mut l) = self.leases.table.get(&id).cloned() else {
                continue;
            };
            if l.state == LeaseState::Ended {
                continue;
            }
            let was_active = l.state == LeaseState::Active;
            rules::end(&mut l, why, by.as_deref(), now);
            l.end_comment = reason
                .clone()
                .filter(|c| c.len() <= 1024 && !c.chars().any(char::is_control));
            l.ending_unaudited = true;
            if why == EndReason::Expired {
                let deadline = l.expires_at_ms.unwrap_or(now);
                self.leases.expiry_lag_ms = now.saturating_sub(deadline);
            }
            events.push(self.ending_record(&l, was_active, reason.as_deref()));
            ended.push(l);
        }
        if ended.is_empty() {
            return;
        }
        let ids: Vec<u64> = ended.iter().map(|l| l.id).collect();
        match self.commit(&ended, &events).await {
            Ok(()) => self.endings_audited(&ids),
            Err(e) => {
                // The ending took effect in the table all the same (less privilege is the safe
                // side): the journal writes it later, and the tick retries whatever records
                // are not in the audit log (the look-up keeps it to one each).
                tracing::error!("ending leases: {e}");
                self.leases.ending_audit_retry.failed(self.clock.now());
            }
        }
        self.remove_grants(&ids).await;
        self.end_sessions(&ids, "lease ended");
        for id in ids {
            self.wake(id);
            self.notify(Notice::Ended, id);
        }
    }

    /// Every tick: end what is due (on the wall clock, so suspend and clock jumps are
    /// honoured), KILL what ignored TERM, retry unfinished removals, prune old records.
    pub(super) async fn tick(&mut self) {
        self.terminate_pending();
        self.leases.journal.maintain();
        let now = self.clock.wall_ms();
        let boot = self.boot_stamp();
        let due: Vec<_> = self
            .leases
            .table
            .values()
            .filter_map(|l| rules::due(l, now, boot.as_ref()).map(|why| (l.id, why, None, None)))
            .collect();
        if !due.is_empty() {
            self.end_batch(due).await;
        }
        self.retry_removals(true).await;
        self.retry_grants().await;
        self.audit_unaudited_endings(None).await;
        self.maybe_prune_sessions();
        let t = self.clock.now();
        let (ready, later): (Vec<_>, Vec<_>) = std::mem::take(&mut self.leases.pending_kills)
            .into_iter()
            .partition(|(at, _)| *at <= t);
        self.leases.pending_kills = later;
        for (_, ps) in ready {
            let killed: Vec<Pid> = ps
                .into_iter()
                .filter(|p| self.procs.signal(*p, libc::SIGKILL))
                .map(|p| p.pid)
                .collect();
            if !killed.is_empty() {
                self.audit.post(
                    AuditEvent::ProcessTerminated,
                    fields(json!({"host": self.host.name, "pids": killed, "signal": "KILL"})),
                );
            }
        }
        let horizon = now.saturating_sub(KEEP_ENDED.as_millis() as u64);
        let before = self.leases.table.len();
        self.leases.table.retain(|_, l| {
            l.state != LeaseState::Ended
                || l.ended_at_ms.unwrap_or(0) >= horizon
                || l.applied_grants().next().is_some()
        });
        let live = self.leases.table.len();
        if live != before {
            let LeaseBook { journal, table, .. } = &mut self.leases;
            if let Err(e) = journal.maybe_compact(live, &mut table.values()) {
                tracing::warn!("lease journal compaction: {e}");
            }
        }
    }

    /// After a policy reload: a lease whose profile is gone, no longer leased, no longer for
    /// this host, or whose holder is no longer eligible, ends now.
    pub(super) async fn reevaluate_leases(&mut self) {
        let policy = self.policy.clone();
        let live: Vec<(u64, Uid, String)> = self
            .leases
            .table
            .values()
            .filter(|l| l.is_live())
            .map(|l| (l.id, l.uid, l.profile.clone()))
            .collect();
        let mut ends = Vec::new();
        for (id, uid, profile) in live {
            let subject = self.identities.by_uid(uid).map(|(_, s)| s);
            let ok = policy.profile(&profile).is_some_and(|p| {
                p.access == Access::Lease
                    && p.applies_to_host(&self.host)
                    && subject.as_ref().is_some_and(|s| p.is_eligible(s))
            });
            if !ok {
                ends.push((
                    id,
                    EndReason::PolicyChanged,
                    Some("policy".to_string()),
                    None,
                ));
            }
        }
        if !ends.is_empty() {
            tracing::info!("policy change ends {} lease(s)", ends.len());
            self.end_batch(ends).await;
        }
    }

    /// At start-up, before serving: finish whatever a crash interrupted.
    pub(super) async fn reconcile_leases(&mut self) {
        let now = self.clock.wall_ms();
        let boot = self.boot_stamp();
        let ids: Vec<u64> = self.leases.table.keys().copied().collect();
        let mut ends = Vec::new();
        for id in ids {
            let l = &self.leases.table[&id];
            match l.state {
                LeaseState::Active if rules::due(l, now, boot.as_ref()).is_none() => {
                    if let Some(b) = l.bound {
                        if self.procs.start_time(b.pid) != Some(b.start_time) {
                            ends.push((id, EndReason::ProcessExited, None, None));
                            continue;
                        }
                        self.watch_bound(id, b);
                    }
                    if l.grants.iter().any(|g| !g.standing && !g.applied) || l.grants.is_empty() {
                        self.apply_grants(id).await;
                    }
                }
                LeaseState::Pending if rules::due(l, now, boot.as_ref()).is_none() => {}
                LeaseState::Ended => {}
                _ => ends.push((
                    id,
                    rules::due(l, now, boot.as_ref()).unwrap_or(EndReason::Expired),
                    None,
                    None,
                )),
            }
        }
        if !ends.is_empty() {
            tracing::info!(
                "ending {} lease(s) that fell due while the daemon was down",
                ends.len()
            );
            self.end_batch(ends).await;
        }
        self.retry_removals(false).await;
    }

    /// An ending's audit record: `lease.expired`, `lease.revoked`, `lease.denied`, or
    /// `lease.ended` with the reason.
    fn ending_record(
        &self,
        l: &Lease,
        was_active: bool,
        comment: Option<&str>,
    ) -> (AuditEvent, Value) {
        let why = l.end_reason.unwrap_or(EndReason::Expired);
        let ev = match why {
            EndReason::Expired => AuditEvent::LeaseExpired,
            EndReason::Revoked => AuditEvent::LeaseRevoked,
            EndReason::Denied => AuditEvent::LeaseDenied,
            _ => AuditEvent::LeaseEnded,
        };
        let extra = json!({"end_reason": why.as_str(), "by": l.ended_by, "comment": comment, "was_active": was_active});
        (ev, self.lease_record(l, extra))
    }

    /// The endings' records are in the audit log: say so in the journal, so that a restart
    /// does not look for them.
    fn endings_audited(&mut self, ids: &[u64]) {
        let mut done = Vec::new();
        for id in ids {
            if let Some(l) = self.leases.table.get_mut(id) {
                l.ending_unaudited = false;
                done.push(l.clone());
            }
        }
        self.leases.ending_audit_retry.succeeded();
        if let Err(e) = self.leases.journal.commit(&done, Kind::Ending) {
            // The records are written; a restart finds them in the log and adds none.
            tracing::warn!("lease journal: {e}");
        }
    }

    /// Every ending is audited exactly once. At start-up (and from the tick after a failed
    /// write), the endings the journal says are not audited yet are looked for among the log's
    /// recent records — the daemon may have stopped just after writing them — and the ones
    /// not there are written now, saying so.
    ///
    /// `recent`: the log's recent lease records when the caller has read them already
    /// (start-up); from the tick (`None`) they are read only if some ending needs them.
    pub(super) async fn audit_unaudited_endings(&mut self, recent: Option<&[LeaseRecord]>) {
        let now = self.clock.now();
        if recent.is_none() && !self.leases.ending_audit_retry.due(now) {
            return;
        }
        let ids: BTreeSet<u64> = self
            .leases
            .table
            .values()
            .filter(|l| l.state == LeaseState::Ended && l.ending_unaudited)
            .map(|l| l.id)
            .collect();
        if ids.is_empty() {
            return;
        }
        let read;
        let recent = match recent {
            Some(r) => r,
            None => {
                read = self.recent_lease_records();
                &read
            }
        };
        // Nothing readable: better twice than never, an ending must be in the log.
        let recorded = endings_among(recent, &ids);
        let records: Vec<_> = ids
            .iter()
            .filter(|id| !recorded.contains(id))
            .filter_map(|id| self.leases.table.get(id))
            .map(|l| {
                let (ev, mut rec) = self.ending_record(l, l.activated_at_ms.is_some(), l.end_comment.as_deref());
                rec["recovered"] = json!("written after a restart: the daemon stopped between journaling this ending and auditing it");
                (ev, rec)
            })
            .collect();
        match self.audit_durably(&records).await {
            Ok(()) => self.endings_audited(&ids.into_iter().collect::<Vec<_>>()),
            Err(e) => {
                tracing::error!("auditing endings: {e}");
                self.leases.ending_audit_retry.failed(now);
            }
        }
    }

    /// A request is audited before it is journaled (nothing takes effect unrecorded), so a
    /// crash between the two leaves records of a lease that never was. At start-up, a recent
    /// `lease.requested` record whose lease the journal does not know — recent enough that
    /// the journal would still hold it, since ended leases are kept [`KEEP_ENDED`] — gets a
    /// `lease.not_saved` record saying so, unless one is there already.
    pub(super) async fn audit_unjournaled_requests(&mut self, records: &[LeaseRecord]) {
        let now = i64::try_from(self.clock.wall_ms() / 1000).unwrap_or(i64::MAX);
        let horizon = now.saturating_sub(KEEP_ENDED.as_secs() as i64);
        let said: BTreeSet<u64> = records
            .iter()
            .filter(|r| r.event == AuditEvent::LeaseNotSaved.as_str())
            .map(|r| r.lease)
            .collect();
        let lost: BTreeSet<u64> = records
            .iter()
            .filter(|r| r.event == AuditEvent::LeaseRequested.as_str() && r.time >= horizon)
            .map(|r| r.lease)
            .filter(|id| !self.leases.table.contains_key(id) && !said.contains(id))
            .collect();
        let mut records = Vec::new();
        for id in lost {
            tracing::warn!(
                "lease {id}: audited as requested, never journaled (a crash between the two)"
            );
            let rec = json!({"host": self.host.name, "lease": id,
                "note": "the daemon stopped between auditing this request and journaling it: the lease never took effect",
                "recovered": "written at start-up"});
            records.push((AuditEvent::LeaseNotSaved, rec));
        }
        // Durably, before serving: whoever reads the log next finds them.
        if let Err(e) = self.audit_durably(&records).await {
            tracing::error!("auditing requests that were never journaled: {e}");
        }
    }

    /// The audit log's recent lease records, for start-up reconciliation; none (and a
    /// warning) when the log cannot be read.
    pub(super) fn recent_lease_records(&self) -> Vec<LeaseRecord> {
        self.audit_history
            .recent_lease_records()
            .unwrap_or_else(|e| {
                tracing::warn!("audit log: cannot read its recent records: {e}");
                Vec::new()
            })
    }

    /// Watch a bound process; its exit ends the lease whatever time is left.
    pub(super) fn watch_bound(&self, id: u64, b: Bound) {
        let events = self.events.clone();
        // Not watchable (already gone, or the pid now names another process): it ended.
        let exited = self.procs.watch_exit(ProcId {
            pid: b.pid,
            start_time: b.start_time,
        });
        tokio::spawn(async move {
            if let Some(exited) = exited {
                exited.await;
            }
            let _ = events.send(Event::BoundExited { id }).await;
        });
    }

    /// A bound process exited (the process table's watch, not /proc, is the authority: an
    /// unreaped zombie still shows its old start time there).
    pub(super) async fn bound_exited(&mut self, id: u64) {
        let live = self
            .leases
            .table
            .get(&id)
            .is_some_and(|l| l.bound.is_some() && l.is_live());
        if live {
            self.end_batch(vec![(id, EndReason::ProcessExited, None, None)])
                .await;
        }
    }
}
