//! The group memberships leases grant: added when a lease activates (never over a standing
//! membership), removed when it ends (unless another active lease of the same user grants the
//! same group), and the processes that still carry a removed group, TERM then KILL.

use super::announce::Notice;
use super::edits::{Purpose, Removal, Removals};
use super::State;
use crate::effects::audit::{fields, AuditEvent};
use crate::effects::procs::Carriers;
use crate::effects::procs::ProcId;
use crate::lease::model::{Grant, Lease, LeaseState};
use elevate_base::{Gid, Uid};
use elevate_groupdb::{Change, Outcome};
use serde_json::json;
use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::io;
use std::time::Duration;

/// How long after a lease ends its carriers get TERM: the answer to whoever ended it (whose
/// own client may carry the group) goes out first, and a tick or two later the rest follows.
pub(super) const TERM_DELAY: Duration = Duration::from_millis(500);

impl State {
    /// Add the lease's group memberships (the daemon's own, never a standing one).
    pub(super) async fn apply_grants(&mut self, id: u64) {
        let Some(mut lease) = self.leases.table.get(&id).cloned() else {
            return;
        };
        let Some(groups) = self
            .policy
            .profile(&lease.profile)
            .map(|p| p.grant_groups.clone())
        else {
            return;
        };
        if lease.grants.is_empty() && !groups.is_empty() {
            lease.grants = self.intended_grants(&lease, groups);
            // Intent first: after a crash, reconcile knows which memberships were standing.
            if let Err(e) = self.commit(std::slice::from_ref(&lease), &[]).await {
                tracing::error!("lease {id}: {e}");
                self.edits.grant_retry.failed(self.clock.now());
                return;
            }
        }
        let changes: Vec<Change> = lease
            .grants
            .iter()
            .filter(|g| !g.standing && !g.applied)
            .map(|g| Change::Add {
                user: lease.user.clone(),
                group: g.group.clone(),
            })
            .collect();
        if changes.is_empty() {
            self.notify(Notice::Activated, id);
            return;
        }
        self.edit_groups(changes, Purpose::Grant(id)).await;
    }

    /// The editor's outcome for a lease's grant: record what was added, or retry later.
    pub(super) async fn grant_written(
        &mut self,
        id: u64,
        result: io::Result<(Vec<Change>, Vec<Outcome>)>,
    ) {
        let Some(mut lease) = self.leases.table.get(&id).cloned() else {
            return;
        };
        let (changes, outcomes) = match result {
            Ok(r) => r,
            Err(e) => {
                tracing::error!("lease {id}: cannot edit /etc/group: {e}");
                let rec = json!({"host": self.host.name, "lease": id, "error": e.to_string()});
                self.audit.post(AuditEvent::GroupError, fields(rec));
                self.edits.grant_retry.failed(self.clock.now());
                self.wake(id);
                return;
            }
        };
        let ended = lease.state != LeaseState::Active;
        for (change, outcome) in changes.iter().zip(outcomes) {
            let Change::Add { group, .. } = change else {
                continue;
            };
            // Ended while the add waited, and another active lease of the user's grants the
            // same group: the membership is that lease's now (its removal skipped it).
            if ended && self.other_active_grant(lease.uid, id, group, false) {
                continue;
            }
            if let Some(g) = lease.grants.iter_mut().find(|g| &g.group == group) {
                // AlreadyMember here means our own earlier add (before a crash) or a shared grant.
                g.applied = matches!(outcome, Outcome::Added | Outcome::AlreadyMember);
            }
        }
        let recs: Vec<_> = lease
            .applied_grants()
            .map(|g| (AuditEvent::GroupAdded, json!({"host": self.host.name, "lease": id, "user": lease.user, "group": g.group, "gid": g.gid})))
            .collect();
        if let Err(e) = self.commit(std::slice::from_ref(&lease), &recs).await {
            tracing::error!("lease {id}: {e}");
        }
        self.identities.clear();
        // Ended while the edit waited: the removal queued behind it takes the membership back.
        if lease.state == LeaseState::Active {
            self.notify(Notice::Activated, id);
        }
        self.wake(id);
    }

    /// The grants a lease intends, group by group: standing when the user is a member already
    /// (never added, never removed), applied already when another active lease of theirs
    /// holds the same membership. A group that does not exist is not granted.
    fn intended_grants(&mut self, lease: &Lease, groups: Vec<String>) -> Vec<Grant> {
        let primary = self.identities.by_uid(lease.uid).map(|(pw, _)| pw.gid);
        let mut grants = Vec::new();
        for g in groups {
            let Ok(Some(gid)) = self.groupdb.gid_of(&g) else {
                tracing::warn!("lease {}: group {g} does not exist; not granted", lease.id);
                continue;
            };
            let shared = self.other_active_grant(lease.uid, lease.id, &g, true);
            let member = self
                .groupdb
                .members_of(&g)
                .ok()
                .flatten()
                .is_some_and(|m| m.iter().any(|u| u == &lease.user));
            grants.push(Grant {
                standing: !shared && (member || primary == Some(gid)),
                applied: shared,
                group: g,
                gid,
            });
        }
        grants
    }

    /// From the tick: when a retry is due (and no edit is in flight, which may be the very
    /// grant), grant again what active leases intend and do not hold yet.
    pub(super) async fn retry_grants(&mut self) {
        if !self.edits.grant_retry.due(self.clock.now()) || self.edits.busy() {
            return;
        }
        let policy = self.policy.clone();
        let wanted = |l: &Lease| {
            let intended = policy
                .profile(&l.profile)
                .is_some_and(|p| !p.grant_groups.is_empty());
            (l.grants.is_empty() && intended) || l.grants.iter().any(|g| !g.standing && !g.applied)
        };
        let stuck: Vec<u64> = self
            .leases
            .table
            .values()
            .filter(|l| l.state == LeaseState::Active && wanted(l))
            .map(|l| l.id)
            .collect();
        if stuck.is_empty() {
            self.edits.grant_retry.succeeded();
        }
        for id in stuck {
            self.apply_grants(id).await;
        }
    }

    /// Another active lease of `uid` grants `group`: its membership is written (`written`),
    /// or at least intended (written or not yet).
    fn other_active_grant(&self, uid: Uid, except: u64, group: &str, written: bool) -> bool {
        self.leases.table.values().any(|l| {
            l.id != except
                && l.uid == uid
                && l.state == LeaseState::Active
                && l.grants
                    .iter()
                    .any(|g| !g.standing && g.group == group && (g.applied || !written))
        })
    }

    /// Remove the memberships these (ended) leases added, unless another active lease of the
    /// same user still grants the same group; then end processes still carrying them.
    pub(super) async fn remove_grants(&mut self, ids: &[u64]) {
        let plan = self.removals(ids);
        if plan.changes.is_empty() {
            self.end_carriers(plan.revoked, &plan.terminate);
            return;
        }
        let list: Vec<Change> = plan.changes.iter().map(|r| r.change.clone()).collect();
        self.edit_groups(list, Purpose::Remove(plan)).await;
    }

    /// The editor's outcome for a removal: record it and end the carriers, or retry later.
    pub(super) async fn removal_written(
        &mut self,
        plan: Removals,
        result: io::Result<(Vec<Change>, Vec<Outcome>)>,
    ) {
        match result {
            Ok((_, outcomes)) => {
                self.record_removals(&plan.changes, &outcomes).await;
                self.identities.clear();
                self.end_carriers(plan.revoked, &plan.terminate);
            }
            Err(e) => {
                tracing::error!(
                    "cannot edit /etc/group to remove lease memberships: {e}; will retry"
                );
                self.edits.removal_retry.failed(self.clock.now());
            }
        }
    }

    /// What ending these leases takes away: the membership changes (with their lease), the
    /// gids each uid loses, and whether each uid's processes that keep them are ended.
    fn removals(&self, ids: &[u64]) -> Removals {
        let mut plan = Removals::default();
        // Memberships active leases hold or are being granted (a grant may wait for the lock
        // behind this very removal): built once, so a batch of N endings costs O(N + table),
        // not O(N × table).
        let held: HashSet<(Uid, &str)> = self
            .leases
            .table
            .values()
            .filter(|l| l.state == LeaseState::Active)
            .flat_map(|l| {
                let intended = l.grants.iter().filter(|g| !g.standing);
                intended.map(move |g| (l.uid, g.group.as_str()))
            })
            .collect();
        for l in ids.iter().filter_map(|id| self.leases.table.get(id)) {
            // Not only the memberships recorded as added: a grant cut short between the group
            // rewrite and the journal record that it was applied may have added one too. It
            // was not standing (that was decided, and journaled, before the rewrite), so it
            // is the lease's to take back.
            for g in l.grants.iter().filter(|g| !g.standing) {
                if held.contains(&(l.uid, g.group.as_str())) {
                    continue;
                }
                let user = l.user.clone();
                let group = g.group.clone();
                let change = Change::Remove { user, group };
                plan.changes.push(Removal {
                    lease: l.id,
                    change,
                });
                plan.revoked.entry(l.uid).or_default().insert(g.gid);
            }
            let term = self
                .policy
                .profile(&l.profile)
                .is_none_or(|p| p.on_expiry == elevate_policy::OnExpiry::Terminate);
            *plan.terminate.entry(l.uid).or_insert(false) |= term;
        }
        plan
    }

    /// Journal and audit removals that were made. Every removal of a lease goes into one
    /// record of it: a lease granting two groups is saved once, with both marked removed. A
    /// membership that was never recorded as added is audited only if it was there (and says
    /// it was recovered).
    async fn record_removals(&mut self, changes: &[Removal], outcomes: &[Outcome]) {
        let mut updated: BTreeMap<u64, Lease> = BTreeMap::new();
        let mut recs = Vec::new();
        for (r, outcome) in changes.iter().zip(outcomes) {
            let Change::Remove { user, group } = &r.change else {
                continue;
            };
            let Some(l) = self.leases.table.get(&r.lease) else {
                continue;
            };
            let l = updated.entry(r.lease).or_insert_with(|| l.clone());
            // Read now, not when the removal was planned: a grant written meanwhile counts.
            let mut recorded = false;
            for g in l.grants.iter_mut().filter(|g| &g.group == group) {
                recorded |= g.applied;
                g.applied = false;
            }
            let removed = *outcome == Outcome::Removed;
            if recorded || removed {
                let mut rec =
                    json!({"host": self.host.name, "lease": r.lease, "user": user, "group": group});
                if !recorded {
                    rec["recovered"] = json!("a membership an interrupted grant added");
                }
                recs.push((AuditEvent::GroupRemoved, rec));
            }
        }
        let updated: Vec<Lease> = updated.into_values().collect();
        if let Err(e) = self.commit(&updated, &recs).await {
            tracing::error!("recording group removals: {e}");
        }
    }

    /// Processes that still carry a revoked gid (one the user does not also hold by standing
    /// membership): queued for TERM once `TERM_DELAY` has passed, or recorded and kept (`on_expiry`).
    fn end_carriers(&mut self, mut revoked: Carriers, terminate: &HashMap<Uid, bool>) {
        for (uid, gids) in revoked.iter_mut() {
            if let Some((_, subject)) = self.identities.by_uid(*uid) {
                let standing: BTreeSet<Gid> = subject
                    .groups
                    .iter()
                    .filter_map(|n| self.groupdb.gid_of(n).ok().flatten())
                    .collect();
                gids.retain(|g| !standing.contains(g));
            }
        }
        revoked.retain(|_, g| !g.is_empty());
        if revoked.is_empty() {
            return;
        }
        self.sweep_setgid(&revoked, terminate);
        for (uid, p) in self.procs.carrying_any(&revoked) {
            if terminate.get(&uid).copied().unwrap_or(true) {
                let at = self.clock.now() + TERM_DELAY;
                self.leases.pending_terms.push((at, p));
            } else {
                let rec = json!({"host": self.host.name, "uid": uid, "pid": p.pid});
                self.audit.post(AuditEvent::ProcessKept, fields(rec));
            }
        }
    }

    /// TERM the processes found carrying revoked groups; KILL them after the grace period.
    pub(super) fn terminate_pending(&mut self) {
        let now = self.clock.now();
        let (due, later): (Vec<_>, Vec<_>) = std::mem::take(&mut self.leases.pending_terms)
            .into_iter()
            .partition(|(at, _)| *at <= now);
        self.leases.pending_terms = later;
        let killed: Vec<ProcId> = due
            .into_iter()
            .filter(|(_, p)| self.procs.signal(*p, libc::SIGTERM))
            .map(|(_, p)| p)
            .collect();
        if !killed.is_empty() {
            self.audit.post(
                AuditEvent::ProcessTerminated,
                fields(json!({"host": self.host.name, "pids": killed.iter().map(|p| p.pid).collect::<Vec<_>>(), "signal": "TERM"})),
            );
            let grace = Duration::from_millis(self.settings.limits.kill_grace_ms);
            self.leases
                .pending_kills
                .push((self.clock.now() + grace, killed));
        }
    }

    /// Memberships of ended leases still in /etc/group (a failed rewrite, or a crash between
    /// journaling the end and removing them): remove them now — at start-up, and from the tick
    /// once a failed removal's back-off is over and no edit is in flight.
    pub(super) async fn retry_removals(&mut self, from_tick: bool) {
        let now = self.clock.now();
        let r = self.edits.removal_retry;
        if self.edits.busy() || (from_tick && r.waiting() && !r.due(now)) {
            return;
        }
        let stuck: Vec<u64> = self
            .leases
            .table
            .values()
            .filter(|l| l.state == LeaseState::Ended && l.applied_grants().next().is_some())
            .map(|l| l.id)
            .collect();
        if stuck.is_empty() {
            self.edits.removal_retry.succeeded();
        } else {
            self.remove_grants(&stuck).await;
        }
    }
}
