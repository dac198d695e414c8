//! The group memberships leases grant: added when a lease activates (never over a standing
//! membership), removed when it ends (unless another active lease of the same user grants the
//! same group), and the processes that still carry a removed group, TERM then KILL.

use super::announce::Notice;
use super::State;
use crate::effects::audit::{fields, AuditEvent};
use crate::effects::procs::ProcId;
use crate::lease::model::{Grant, Lease, LeaseState};
use elevate_groupdb::{Change, Outcome};
use serde_json::json;
use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::time::Duration;

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
            let primary = self.identities.by_uid(lease.uid).map(|(pw, _)| pw.gid);
            for g in groups {
                let Ok(Some(gid)) = self.groupdb.gid_of(&g) else {
                    tracing::warn!("lease {id}: group {g} does not exist; not granted");
                    continue;
                };
                let shared = self.other_active_grant(lease.uid, lease.id, &g);
                let member = self
                    .groupdb
                    .members_of(&g)
                    .ok()
                    .flatten()
                    .is_some_and(|m| m.iter().any(|u| u == &lease.user));
                let standing = !shared && (member || primary == Some(gid));
                lease.grants.push(Grant {
                    group: g,
                    gid,
                    standing,
                    applied: shared,
                });
            }
            // Intent first: after a crash, reconcile knows which memberships were standing.
            if let Err(e) = self.commit(std::slice::from_ref(&lease), &[]).await {
                tracing::error!("lease {id}: {e}");
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
        let db = &self.groupdb;
        let outcomes = match db.apply(&changes) {
            Ok(o) => o,
            Err(e) => {
                tracing::error!("lease {id}: cannot edit /etc/group: {e}");
                self.audit.post(
                    AuditEvent::GroupError,
                    fields(json!({"host": self.host.name, "lease": id, "error": e.to_string()})),
                );
                return;
            }
        };
        for (change, outcome) in changes.iter().zip(outcomes) {
            let Change::Add { group, .. } = change else {
                continue;
            };
            if let Some(g) = lease.grants.iter_mut().find(|g| &g.group == group) {
                // AlreadyMember here means our own earlier add (before a crash) or a shared grant.
                g.applied = matches!(outcome, Outcome::Added | Outcome::AlreadyMember);
            }
        }
        let recs: Vec<_> = lease
            .grants
            .iter()
            .filter(|g| g.applied && !g.standing)
            .map(|g| (AuditEvent::GroupAdded, json!({"host": self.host.name, "lease": id, "user": lease.user, "group": g.group, "gid": g.gid})))
            .collect();
        if let Err(e) = self.commit(std::slice::from_ref(&lease), &recs).await {
            tracing::error!("lease {id}: {e}");
        }
        self.identities.clear();
        self.notify(Notice::Activated, id);
    }

    pub(super) fn other_active_grant(&self, uid: u32, except: u64, group: &str) -> bool {
        self.leases.table.values().any(|l| {
            l.id != except
                && l.uid == uid
                && l.state == LeaseState::Active
                && l.applied_grants().any(|g| g.group == group)
        })
    }

    /// Remove the memberships these (ended) leases added, unless another active lease of the
    /// same user still grants the same group; then end processes still carrying them.
    pub(super) async fn remove_grants(&mut self, ids: &[u64]) {
        let mut changes = Vec::new();
        let mut revoked: HashMap<u32, BTreeSet<u32>> = HashMap::new();
        let mut terminate: HashMap<u32, bool> = HashMap::new();
        // Memberships still held by active leases: built once, so a batch of N endings costs
        // O(N + table), not O(N × table).
        let held: HashSet<(u32, &str)> = self
            .leases
            .table
            .values()
            .filter(|l| l.state == LeaseState::Active)
            .flat_map(|l| l.applied_grants().map(move |g| (l.uid, g.group.as_str())))
            .collect();
        for id in ids {
            let Some(l) = self.leases.table.get(id) else {
                continue;
            };
            for g in l.applied_grants() {
                if held.contains(&(l.uid, g.group.as_str())) {
                    continue;
                }
                changes.push((
                    l.id,
                    Change::Remove {
                        user: l.user.clone(),
                        group: g.group.clone(),
                    },
                ));
                revoked.entry(l.uid).or_default().insert(g.gid);
            }
            let term = self
                .policy
                .profile(&l.profile)
                .is_none_or(|p| p.on_expiry == elevate_policy::OnExpiry::Terminate);
            *terminate.entry(l.uid).or_insert(false) |= term;
        }
        if !changes.is_empty() {
            let list: Vec<Change> = changes.iter().map(|(_, c)| c.clone()).collect();
            let db = &self.groupdb;
            match db.apply(&list) {
                Ok(_) => {
                    // Every removal of a lease goes into one record of it: a lease granting
                    // two groups is saved once, with both marked removed.
                    let mut updated: BTreeMap<u64, Lease> = BTreeMap::new();
                    let mut recs = Vec::new();
                    for (id, change) in &changes {
                        let Change::Remove { user, group } = change else {
                            continue;
                        };
                        let Some(l) = self.leases.table.get(id) else {
                            continue;
                        };
                        let l = updated.entry(*id).or_insert_with(|| l.clone());
                        for g in l.grants.iter_mut().filter(|g| &g.group == group) {
                            g.applied = false;
                        }
                        recs.push((AuditEvent::GroupRemoved, json!({"host": self.host.name, "lease": id, "user": user, "group": group})));
                    }
                    let updated: Vec<Lease> = updated.into_values().collect();
                    if let Err(e) = self.commit(&updated, &recs).await {
                        tracing::error!("recording group removals: {e}");
                    }
                }
                Err(e) => {
                    tracing::error!(
                        "cannot edit /etc/group to remove lease memberships: {e}; will retry"
                    );
                    return;
                }
            }
            self.identities.clear();
        }
        if revoked.is_empty() {
            return;
        }
        // Standing memberships keep their processes.
        for (uid, gids) in revoked.iter_mut() {
            if let Some((_, subject)) = self.identities.by_uid(*uid) {
                let standing: BTreeSet<u32> = subject
                    .groups
                    .iter()
                    .filter_map(|n| self.groupdb.gid_of(n).ok().flatten())
                    .collect();
                gids.retain(|g| !standing.contains(g));
            }
        }
        revoked.retain(|_, g| !g.is_empty());
        let found = self.procs.carrying_any(&revoked);
        for (uid, p) in found {
            if terminate.get(&uid).copied().unwrap_or(true) {
                self.leases.pending_terms.push((uid, p));
            } else {
                self.audit.post(
                    AuditEvent::ProcessKept,
                    fields(json!({"host": self.host.name, "uid": uid, "pid": p.pid})),
                );
            }
        }
    }

    /// TERM the processes found carrying revoked groups; KILL them after the grace period.
    pub(super) fn terminate_pending(&mut self) {
        let terms = std::mem::take(&mut self.leases.pending_terms);
        let killed: Vec<ProcId> = terms
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
    /// journaling the end and removing them): remove them now.
    pub(super) async fn retry_removals(&mut self) {
        let stuck: Vec<u64> = self
            .leases
            .table
            .values()
            .filter(|l| l.state == LeaseState::Ended && l.applied_grants().next().is_some())
            .map(|l| l.id)
            .collect();
        if !stuck.is_empty() {
            self.remove_grants(&stuck).await;
        }
    }
}
