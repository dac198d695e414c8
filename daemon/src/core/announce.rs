//! What the core tells others about leases: the view clients get (`LeaseInfo`), the audit
//! record of a lease, announcements on D-Bus and to the notify hook, and break-glass alarms.

use super::State;
use crate::effects::procs::ProcId;
use crate::lease::model::{Lease, LeaseState};
use elevate_base::time::rfc3339_from_ms as rfc3339;
use elevate_base::Uid;
use elevate_proto::{ApprovalInfo, LeaseInfo};
use serde_json::json;
use std::collections::BTreeSet;

/// What happened to a lease, for those who asked to hear: the notify hook (its `event`
/// field) and D-Bus signals. Not the audit trail, which records more.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Notice {
    Pending,
    Activated,
    BreakGlass,
    ExtensionRequested,
    Extended,
    Ended,
}

impl Notice {
    /// The name the notify hook receives.
    pub const fn as_str(self) -> &'static str {
        match self {
            Notice::Pending => "lease.pending",
            Notice::Activated => "lease.activated",
            Notice::BreakGlass => "lease.break_glass",
            Notice::ExtensionRequested => "lease.extension_requested",
            Notice::Extended => "lease.extended",
            Notice::Ended => "lease.ended",
        }
    }
}

/// What the state loop tells the bus side. Sent on a broadcast channel: with no bus, nobody
/// listens and nothing piles up.
#[derive(Debug, Clone)]
pub enum BusEvent {
    RequestPending {
        id: u64,
        user: String,
        profile: String,
        approvers: Vec<String>,
    },
    LeaseActive {
        id: u64,
        user: String,
        profile: String,
        expires_at: String,
    },
    LeaseEnded {
        id: u64,
        user: String,
        profile: String,
        reason: String,
    },
    /// A PAM session was registered: find its logind session, if any.
    SessionOpened { session: u64, leader: ProcId },
    /// A session's lease ended: ask logind to end the whole session (its cgroup, so processes
    /// that left the session's process tree end too). The signals from the PAM issue's
    /// process-based termination are sent regardless.
    TerminateSession { logind_id: String },
}

impl BusEvent {
    /// The signal for a lease notice, if it has one.
    pub(super) fn for_lease(notice: Notice, l: &LeaseInfo) -> Option<BusEvent> {
        let (id, user, profile) = (l.id, l.user.clone(), l.profile.clone());
        Some(match notice {
            Notice::Pending => BusEvent::RequestPending {
                id,
                user,
                profile,
                approvers: l.approvers.clone(),
            },
            Notice::Activated | Notice::BreakGlass => BusEvent::LeaseActive {
                id,
                user,
                profile,
                expires_at: l.expires_at.clone().unwrap_or_default(),
            },
            Notice::Ended => BusEvent::LeaseEnded {
                id,
                user,
                profile,
                reason: l
                    .end_reason
                    .map(|r| r.as_str().to_string())
                    .unwrap_or_default(),
            },
            _ => return None,
        })
    }
}

pub(super) fn info(l: &Lease, now: u64, policy: &elevate_policy::Policy) -> LeaseInfo {
    let approval = policy.profile(&l.profile).and_then(|p| p.approval.as_ref());
    LeaseInfo {
        id: l.id,
        user: l.user.clone(),
        uid: l.uid,
        profile: l.profile.clone(),
        state: l.state,
        reason: l.reason.clone(),
        ticket: l.ticket.clone(),
        duration_secs: l.duration_ms / 1000,
        requested_at: rfc3339(l.requested_at_ms),
        pending_until: l
            .pending_until_ms
            .filter(|_| l.state == LeaseState::Pending)
            .map(rfc3339),
        activated_at: l.activated_at_ms.map(rfc3339),
        expires_at: l
            .expires_at_ms
            .filter(|_| l.state == LeaseState::Active)
            .map(rfc3339),
        time_left_secs: l
            .expires_at_ms
            .filter(|_| l.state == LeaseState::Active)
            .map(|e| e.saturating_sub(now) / 1000),
        ended_at: l.ended_at_ms.map(rfc3339),
        end_reason: l.end_reason,
        ended_by: l.ended_by.clone(),
        approvals: l
            .approvals
            .iter()
            .map(|a| ApprovalInfo {
                user: a.user.clone(),
                at: rfc3339(a.at_ms),
                comment: a.comment.clone(),
            })
            .collect(),
        approvals_needed: l.approvals_needed,
        grant_groups: l.grants.iter().map(|g| g.group.clone()).collect(),
        break_glass: l.break_glass,
        bound_pid: l.bound.map(|b| b.pid),
        approvers: approval
            .map(|a| a.approvers.iter().map(|x| x.to_string()).collect())
            .unwrap_or_default(),
        end_comment: l.end_comment.clone(),
        extension_pending_secs: l.extension.as_ref().map(|e| e.by_ms / 1000),
        extension_approvals: l
            .extension
            .iter()
            .flat_map(|e| &e.approvals)
            .map(|a| ApprovalInfo {
                user: a.user.clone(),
                at: rfc3339(a.at_ms),
                comment: a.comment.clone(),
            })
            .collect(),
        granting: l
            .grants
            .iter()
            .filter(|g| l.state == LeaseState::Active && !g.standing && !g.applied)
            .map(|g| g.group.clone())
            .collect(),
        granting_error: None,
    }
}

impl State {
    /// A lease as clients see it: [`info`], with why its grant waits, if it does.
    pub(super) fn view(&self, l: &Lease) -> LeaseInfo {
        let mut v = info(l, self.clock.wall_ms(), &self.policy);
        if !v.granting.is_empty() {
            v.granting_error = self.edits.last_error.clone();
        }
        v
    }

    pub(super) fn lease_record(&self, l: &Lease, extra: serde_json::Value) -> serde_json::Value {
        let mut v = json!({
            "host": self.host.name, "lease": l.id, "user": l.user, "uid": l.uid, "profile": l.profile,
            "state": l.state.as_str(), "reason": l.reason, "ticket": l.ticket, "duration_ms": l.duration_ms,
            "expires_at": l.expires_at_ms.map(rfc3339), "break_glass": l.break_glass,
        });
        if let (Some(m), serde_json::Value::Object(e)) = (v.as_object_mut(), extra) {
            m.extend(e);
        }
        v
    }

    /// Break-glass is rare and loud: syslog at alert level and a notice on every admin's terminal.
    pub(super) fn break_glass_alarm(&mut self, l: &Lease) {
        let msg = format!(
            "BREAK-GLASS on {}: {} (uid {}) activated profile {} for {}s: {}",
            self.host.name,
            l.user,
            l.uid,
            l.profile,
            l.duration_ms / 1000,
            l.reason.as_deref().unwrap_or("")
        );
        tracing::error!(target: "alert", "{msg}");
        let policy = self.policy.clone();
        let admins: BTreeSet<Uid> = self
            .terminals
            .owners()
            .into_iter()
            .filter(|uid| {
                self.identities
                    .by_uid(*uid)
                    .is_some_and(|(_, s)| policy.is_admin(&s))
            })
            .collect();
        self.terminals.notify(&admins, &msg);
        self.notify(Notice::BreakGlass, l.id);
    }

    /// Announce a lease notice: a D-Bus signal when someone listens, and the admin's
    /// notify_command, asynchronously (it can never block or crash the daemon).
    pub(super) fn notify(&self, notice: Notice, id: u64) {
        // Nobody on the bus and no hook (the common case): nothing to build.
        let listening = self.bus.receiver_count() > 0;
        if !listening && self.settings.notify_command.is_none() {
            return;
        }
        let Some(l) = self.leases.table.get(&id) else {
            return;
        };
        let lease = self.view(l);
        if let Some(signal) = listening
            .then(|| BusEvent::for_lease(notice, &lease))
            .flatten()
        {
            let _ = self.bus.send(signal);
        }
        let Some(cmd) = self.settings.notify_command.clone() else {
            return;
        };
        let payload = json!({"event": notice.as_str(), "host": self.host.name, "lease": lease});
        crate::effects::notify::spawn(cmd, payload);
    }
}
