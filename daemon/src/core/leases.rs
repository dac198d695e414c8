//! Lease operations on the state loop. Every transition follows the same order:
//! validate → journal (fdatasync) → audit → act (groups, processes) → journal again → answer.
//! A crash anywhere leaves a journal from which [`State::reconcile_leases`] finishes the job:
//! no acknowledged lease is lost, and no membership outlives its deadline.

use super::State;
use crate::core::Event;
use crate::effects::audit::fields;
use crate::effects::procs::{self, ProcId};
use crate::lease::model::{Bound, EndReason, Grant, Lease, LeaseState};
use crate::lease::rules::{self, LeaseRules, NewRequest, Refusal, Requester};
use crate::peer::Peer;
use elevate_groupdb::{Change, Outcome};
use elevate_policy::{Access, Profile, Subject};
use elevate_proto::{
    ApprovalInfo, Denial, ErrorKind, ErrorReply, LeaseInfo, LeaseRequest, Response,
};
use serde_json::json;
use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};
use tokio::sync::oneshot;

/// Ended leases stay listed (and in the journal) this long.
const KEEP_ENDED: Duration = Duration::from_secs(7 * 24 * 3600);

pub fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

use elevate_base::time::rfc3339_from_ms as rfc3339;

/// One lease operation from a client.
pub enum LeaseOp {
    Request(LeaseRequest),
    Approve { id: u64, comment: Option<String> },
    Deny { id: u64, reason: Option<String> },
    Revoke { id: u64, reason: Option<String> },
    Extend { id: u64, by_secs: u64 },
    List { all: bool },
}

/// The lease table and what hangs off it.
pub struct LeaseBook {
    pub table: BTreeMap<u64, Lease>,
    pub journal: crate::lease::journal::Journal,
    pub next_id: u64,
    /// `elevate request --wait` callers, woken when their lease leaves `pending`.
    pub waiters: HashMap<u64, Vec<oneshot::Sender<Response>>>,
    /// Processes to send TERM on the next tick (after the answer to whoever ended the lease
    /// has gone out — their own client may be one of them).
    pub pending_terms: Vec<(u32, ProcId)>,
    /// Processes sent TERM, to be sent KILL at the instant if still there.
    pub pending_kills: Vec<(Instant, Vec<ProcId>)>,
}

impl LeaseBook {
    pub fn new(journal: crate::lease::journal::Journal, table: BTreeMap<u64, Lease>) -> LeaseBook {
        let next_id = table.keys().next_back().map_or(1, |k| k + 1);
        LeaseBook {
            table,
            journal,
            next_id,
            waiters: HashMap::new(),
            pending_terms: Vec::new(),
            pending_kills: Vec::new(),
        }
    }

    /// The caller's active lease on `profile`, if any.
    pub fn active(&self, uid: u32, profile: &str) -> Option<&Lease> {
        self.table
            .values()
            .find(|l| l.uid == uid && l.profile == profile && l.state == LeaseState::Active)
    }
}

/// The profile's lease settings, in the shape the transition rules take.
pub fn rules_of(p: &Profile) -> LeaseRules {
    LeaseRules {
        profile: p.name.clone(),
        default_duration: p.effective_default_duration(),
        max_duration: p.max_duration,
        require_reason: p.require_reason,
        ticket: p.ticket.as_ref().map(|t| t.regex.clone()),
        ticket_source: p.ticket.as_ref().map(|t| t.source.clone()),
        approvals_needed: p.approval.as_ref().map_or(0, |a| a.count),
        break_glass: p.break_glass,
    }
}

pub fn info(l: &Lease, now: u64, policy: &elevate_policy::Policy) -> LeaseInfo {
    let approval = policy.profile(&l.profile).and_then(|p| p.approval.as_ref());
    LeaseInfo {
        id: l.id,
        user: l.user.clone(),
        uid: l.uid,
        profile: l.profile.clone(),
        state: l.state.as_str().to_string(),
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
        end_reason: l.end_reason.map(|r| r.as_str().to_string()),
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
    }
}

fn refusal(r: Refusal) -> Response {
    match r {
        Refusal::Denied { reason, hint } => Response::Denied(Denial { reason, hint }),
        Refusal::NotFound(id) => Response::Error(ErrorReply {
            kind: ErrorKind::NotFound,
            message: format!("no lease or request {id} that you can see"),
        }),
        Refusal::Invalid(m) => Response::Error(ErrorReply {
            kind: ErrorKind::BadRequest,
            message: m,
        }),
    }
}

fn deny(reason: impl Into<String>, hint: Option<String>) -> Refusal {
    Refusal::Denied {
        reason: reason.into(),
        hint,
    }
}

fn internal(msg: String) -> Response {
    Response::Error(ErrorReply {
        kind: ErrorKind::Internal,
        message: msg,
    })
}

impl State {
    fn subject(&mut self, uid: u32) -> Result<Subject, Refusal> {
        self.identities
            .by_uid(uid)
            .map(|(_, s)| s)
            .ok_or_else(|| Refusal::Invalid(format!("uid {uid} has no user account on this host")))
    }

    /// Durably record these leases (journal, then audit), then put them in the table.
    /// Save a transition the daemon makes by itself (activation bookkeeping, endings): the
    /// journal first, then the audit records. An ending must take effect even when the
    /// audit log cannot be written (less privilege is the safe side); the error is returned.
    async fn commit(
        &mut self,
        leases: &[Lease],
        events: &[(&str, serde_json::Value)],
    ) -> Result<(), String> {
        let journal = &mut self.leases.journal;
        tokio::task::block_in_place(|| journal.commit(leases.iter()))
            .map_err(|e| format!("lease state not saved: {e}"))?;
        for l in leases {
            self.leases.table.insert(l.id, l.clone());
        }
        self.audit_durably(events).await
    }

    /// Save a transition someone asked for (request, approval, extension), which may grant
    /// privilege: the audit records first, so that nothing takes effect unrecorded. If the
    /// journal then fails, a record says the transition did not happen.
    async fn commit_requested(
        &mut self,
        lease: &Lease,
        events: &[(&str, serde_json::Value)],
    ) -> Result<(), String> {
        self.audit_durably(events).await?;
        let journal = &mut self.leases.journal;
        if let Err(e) = tokio::task::block_in_place(|| journal.commit(std::iter::once(lease))) {
            let why = format!("lease state not saved: {e}");
            self.audit.post(
                "lease.not_saved",
                fields(
                    json!({"host": self.host.name, "lease": lease.id, "user": lease.user,
                    "error": why, "note": "the records just before this one did not take effect"}),
                ),
            );
            return Err(why);
        }
        self.leases.table.insert(lease.id, lease.clone());
        Ok(())
    }

    async fn audit_durably(&self, events: &[(&str, serde_json::Value)]) -> Result<(), String> {
        if events.is_empty() {
            return Ok(());
        }
        let records = events
            .iter()
            .map(|(e, r)| (e.to_string(), fields(r.clone())))
            .collect();
        self.audit
            .write_durable_many(records)
            .await
            .map_err(|e| format!("audit log: {e}"))
    }

    /// The answer to a lease operation: the lease as it now stands.
    fn lease_response(&self, id: u64) -> Response {
        match self.leases.table.get(&id) {
            Some(l) => Response::Lease(info(l, now_ms(), &self.policy)),
            None => refusal(Refusal::NotFound(id)),
        }
    }

    fn lease_record(&self, l: &Lease, extra: serde_json::Value) -> serde_json::Value {
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

    pub async fn lease_op(&mut self, peer: &mut Peer, op: LeaseOp) -> Response {
        if !self.limiter.allow(peer.uid, Instant::now()) {
            return Response::Error(ErrorReply {
                kind: ErrorKind::RateLimited,
                message: "too many requests from your user; slow down and retry".into(),
            });
        }
        let subject = match self.subject(peer.uid) {
            Ok(s) => s,
            Err(r) => return refusal(r),
        };
        peer.user = subject.user.clone();
        let r = match op {
            LeaseOp::Request(req) => self.request(peer, &subject, req).await,
            LeaseOp::Approve { id, comment } => self.approve(peer, &subject, id, comment).await,
            LeaseOp::Deny { id, reason } => self.deny_request(peer, &subject, id, reason).await,
            LeaseOp::Revoke { id, reason } => self.revoke(peer, &subject, id, reason).await,
            LeaseOp::Extend { id, by_secs } => self.extend(peer, &subject, id, by_secs).await,
            LeaseOp::List { all } => Ok(self.list_leases(&subject, all)),
        };
        r.unwrap_or_else(|e| e)
    }

    async fn request(
        &mut self,
        peer: &Peer,
        subject: &Subject,
        req: LeaseRequest,
    ) -> Result<Response, Response> {
        let policy = self.policy.clone();
        let Some(profile) = policy.profile(&req.profile) else {
            return Err(refusal(deny(
                format!("no such profile: {}", req.profile),
                Some("see what you may request: elevate list".into()),
            )));
        };
        if profile.access != Access::Lease {
            return Err(refusal(deny(
                format!("profile {} is standing access, not leased", profile.name),
                Some("run its commands directly: elevate list".into()),
            )));
        }
        if !profile.applies_to_host(&self.host) || !profile.is_eligible(subject) {
            return Err(refusal(deny(
                format!(
                    "you are not eligible for profile {} on this host",
                    profile.name
                ),
                None,
            )));
        }
        if let Some(l) = self
            .leases
            .table
            .values()
            .find(|l| l.uid == peer.uid && l.profile == profile.name && l.is_live())
        {
            return Err(refusal(deny(
                format!(
                    "you already have lease {} on {} ({})",
                    l.id,
                    l.profile,
                    l.state.as_str()
                ),
                Some(format!(
                    "see it with: elevate leases; extend it with: elevate extend {} --by DUR",
                    l.id
                )),
            )));
        }
        if let Some(l) = self.leases.table.values().find(|l| {
            l.uid == peer.uid && l.is_live() && policy.conflicts_between(&l.profile, &profile.name)
        }) {
            return Err(refusal(deny(
                format!(
                    "separation of duties: {} conflicts with your lease {} on {}",
                    profile.name, l.id, l.profile
                ),
                Some(format!("end it first: elevate revoke {}", l.id)),
            )));
        }
        if self.step_up_needed(peer, profile) {
            return Err(Response::Error(ErrorReply {
                kind: ErrorKind::AuthenticationRequired,
                message: format!(
                    "profile {} requires you to authenticate; request it with the elevate CLI from a terminal",
                    profile.name
                ),
            }));
        }
        let bound = match req.bind_pid {
            None => None,
            Some(pid) => Some(self.check_bind(peer.uid, pid).map_err(refusal)?),
        };
        let rules = rules_of(profile);
        let who = Requester {
            uid: peer.uid,
            user: &subject.user,
        };
        let nr = NewRequest {
            duration: req.duration_secs.map(Duration::from_secs),
            reason: req.reason.as_deref(),
            ticket: req.ticket.as_deref(),
            break_glass: req.break_glass,
        };
        let now = now_ms();
        let mut lease = rules::new_lease(
            self.leases.next_id,
            &who,
            &nr,
            &rules,
            now,
            self.pending_ttl,
        )
        .map_err(refusal)?;
        lease.bound = bound;
        self.leases.next_id += 1;
        let mut events = vec![(
            "lease.requested",
            self.lease_record(&lease, json!({"requester": peer.audit_json()})),
        )];
        if lease.state == LeaseState::Active {
            let ev = if lease.break_glass {
                "lease.break_glass"
            } else {
                "lease.activated"
            };
            events.push((
                ev,
                self.lease_record(
                    &lease,
                    json!({"severity": if lease.break_glass { "alert" } else { "info" }}),
                ),
            ));
        }
        self.commit_requested(&lease, &events)
            .await
            .map_err(internal)?;
        if lease.break_glass {
            self.break_glass_alarm(&lease);
        }
        if lease.state == LeaseState::Active {
            self.apply_grants(lease.id).await;
        } else {
            self.notify("lease.pending", lease.id);
        }
        if let Some(b) = lease.bound {
            self.watch_bound(lease.id, b);
        }
        Ok(self.lease_response(lease.id))
    }

    /// The caller must own the process it binds a lease to (real uid from /proc).
    fn check_bind(&self, uid: u32, pid: i32) -> Result<Bound, Refusal> {
        let status = std::fs::read_to_string(format!("/proc/{pid}/status"))
            .map_err(|_| deny(format!("no process {pid}"), None))?;
        let owner = status
            .lines()
            .find_map(|l| l.strip_prefix("Uid:"))
            .and_then(|r| r.split_whitespace().next())
            .and_then(|v| v.parse::<u32>().ok());
        if owner != Some(uid) || pid <= 1 {
            return Err(deny(format!("you do not own process {pid}"), None));
        }
        let start_time =
            procs::start_time(pid).ok_or_else(|| deny(format!("no process {pid}"), None))?;
        Ok(Bound { pid, start_time })
    }

    /// Root may see and end every lease, whatever the policy says: it could end them by other
    /// means anyway, and uninstalling must end them cleanly. Root never approves: approval
    /// is a person's decision, and root is an account, not a person.
    fn is_root(subject: &Subject) -> bool {
        subject.uid == 0
    }

    fn visible(&self, subject: &Subject, l: &Lease) -> bool {
        l.uid == subject.uid
            || Self::is_root(subject)
            || self.policy.is_admin(subject)
            || self.policy.is_auditor(subject)
            || self.may_approve(subject, l)
    }

    fn may_approve(&self, subject: &Subject, l: &Lease) -> bool {
        self.policy
            .profile(&l.profile)
            .and_then(|p| p.approval.as_ref())
            .is_some_and(|a| a.approver_matches(subject))
    }

    fn lookup(&self, subject: &Subject, id: u64) -> Result<Lease, Refusal> {
        match self.leases.table.get(&id) {
            Some(l) if self.visible(subject, l) => Ok(l.clone()),
            _ => Err(Refusal::NotFound(id)),
        }
    }

    async fn approve(
        &mut self,
        peer: &Peer,
        subject: &Subject,
        id: u64,
        comment: Option<String>,
    ) -> Result<Response, Response> {
        let mut lease = self.lookup(subject, id).map_err(refusal)?;
        let may = self.may_approve(subject, &lease);
        let who = Requester {
            uid: peer.uid,
            user: &subject.user,
        };
        if lease.state == LeaseState::Active && lease.extension.is_some() {
            let policy = self.policy.clone();
            let (needed, max) = policy.profile(&lease.profile).map_or((1, None), |p| {
                (p.approval.as_ref().map_or(1, |a| a.count), p.max_duration)
            });
            let done = rules::approve_extension(
                &mut lease,
                &who,
                comment.as_deref(),
                may,
                needed,
                max,
                now_ms(),
            )
            .map_err(refusal)?;
            let ev = if done {
                "lease.extended"
            } else {
                "lease.extension_approved"
            };
            let rec = self.lease_record(
                &lease,
                json!({"approver": peer.audit_json(), "comment": comment}),
            );
            self.commit_requested(&lease, &[(ev, rec)])
                .await
                .map_err(internal)?;
            return Ok(Response::Lease(info(&lease, now_ms(), &self.policy)));
        }
        let activated =
            rules::approve(&mut lease, &who, comment.as_deref(), may, now_ms()).map_err(refusal)?;
        let mut events = vec![(
            "lease.approved",
            self.lease_record(
                &lease,
                json!({"approver": peer.audit_json(), "comment": comment}),
            ),
        )];
        if activated {
            events.push(("lease.activated", self.lease_record(&lease, json!({}))));
        }
        self.commit_requested(&lease, &events)
            .await
            .map_err(internal)?;
        if activated {
            self.apply_grants(id).await;
            self.wake(id);
        }
        Ok(self.lease_response(id))
    }

    async fn deny_request(
        &mut self,
        peer: &Peer,
        subject: &Subject,
        id: u64,
        reason: Option<String>,
    ) -> Result<Response, Response> {
        let lease = self.lookup(subject, id).map_err(refusal)?;
        if lease.state != LeaseState::Pending {
            return Err(refusal(deny(
                format!("lease {id} is {}, not pending", lease.state.as_str()),
                None,
            )));
        }
        if !(self.may_approve(subject, &lease) || self.policy.is_admin(subject))
            || peer.uid == lease.uid
        {
            return Err(refusal(deny(
                "only an approver of the profile or an admin may deny a request",
                (peer.uid == lease.uid)
                    .then(|| format!("to withdraw your own request: elevate revoke {id}")),
            )));
        }
        self.end_batch(vec![(
            id,
            EndReason::Denied,
            Some(subject.user.clone()),
            reason,
        )])
        .await;
        Ok(self.lease_response(id))
    }

    async fn revoke(
        &mut self,
        peer: &Peer,
        subject: &Subject,
        id: u64,
        reason: Option<String>,
    ) -> Result<Response, Response> {
        let lease = self.lookup(subject, id).map_err(refusal)?;
        let holder = lease.uid == peer.uid;
        if !holder && !self.policy.is_admin(subject) && !Self::is_root(subject) {
            return Err(refusal(deny(
                "only the holder or an admin may revoke a lease",
                None,
            )));
        }
        let why = match lease.state {
            LeaseState::Ended => {
                return Err(refusal(deny(format!("lease {id} has already ended"), None)))
            }
            LeaseState::Pending if holder => EndReason::Withdrawn,
            _ => EndReason::Revoked,
        };
        self.end_batch(vec![(id, why, Some(subject.user.clone()), reason)])
            .await;
        Ok(self.lease_response(id))
    }

    async fn extend(
        &mut self,
        peer: &Peer,
        subject: &Subject,
        id: u64,
        by_secs: u64,
    ) -> Result<Response, Response> {
        let mut lease = self.lookup(subject, id).map_err(refusal)?;
        if lease.uid != peer.uid {
            return Err(refusal(deny("only the holder may extend a lease", None)));
        }
        let policy = self.policy.clone();
        let Some(profile) = policy.profile(&lease.profile) else {
            return Err(refusal(deny(
                format!("profile {} no longer exists", lease.profile),
                None,
            )));
        };
        if by_secs == 0 {
            return Err(refusal(Refusal::Invalid("extend by more than zero".into())));
        }
        if profile.approval.is_some() {
            // The profile needs approval, so lasting longer needs it again.
            rules::request_extension(
                &mut lease,
                Duration::from_secs(by_secs),
                profile.max_duration,
                now_ms(),
            )
            .map_err(refusal)?;
            let rec = self.lease_record(
                &lease,
                json!({"by_secs": by_secs, "requester": peer.audit_json()}),
            );
            self.commit_requested(&lease, &[("lease.extension_requested", rec)])
                .await
                .map_err(internal)?;
            self.notify("lease.extension_requested", id);
            return Ok(Response::Lease(info(&lease, now_ms(), &self.policy)));
        }
        rules::extend(
            &mut lease,
            Duration::from_secs(by_secs),
            profile.max_duration,
        )
        .map_err(refusal)?;
        let rec = self.lease_record(
            &lease,
            json!({"by_secs": by_secs, "requester": peer.audit_json()}),
        );
        self.commit_requested(&lease, &[("lease.extended", rec)])
            .await
            .map_err(internal)?;
        self.notify("lease.extended", id);
        Ok(Response::Lease(info(&lease, now_ms(), &self.policy)))
    }

    fn list_leases(&self, subject: &Subject, all: bool) -> Response {
        if all
            && !(self.policy.is_admin(subject)
                || self.policy.is_auditor(subject)
                || Self::is_root(subject))
        {
            return refusal(deny(
                "only admins and auditors may list every lease",
                Some("your own: elevate leases".into()),
            ));
        }
        let now = now_ms();
        let horizon = now.saturating_sub(24 * 3600 * 1000);
        let leases = self
            .leases
            .table
            .values()
            .filter(|l| l.state != LeaseState::Ended || l.ended_at_ms.unwrap_or(0) >= horizon)
            .filter(|l| {
                all || l.uid == subject.uid
                    || (l.state == LeaseState::Pending && self.may_approve(subject, l))
            })
            .map(|l| info(l, now, &self.policy))
            .collect();
        Response::Leases { leases }
    }

    pub fn wait_lease(&mut self, subject_uid: u32, id: u64, reply: oneshot::Sender<Response>) {
        match self.leases.table.get(&id) {
            Some(l) if l.uid == subject_uid => {
                if l.state == LeaseState::Pending {
                    self.leases.waiters.entry(id).or_default().push(reply);
                } else {
                    let _ = reply.send(Response::Lease(info(l, now_ms(), &self.policy)));
                }
            }
            _ => {
                let _ = reply.send(refusal(Refusal::NotFound(id)));
            }
        }
    }

    fn wake(&mut self, id: u64) {
        if let (Some(ws), Some(l)) = (self.leases.waiters.remove(&id), self.leases.table.get(&id)) {
            for w in ws {
                let _ = w.send(Response::Lease(info(l, now_ms(), &self.policy)));
            }
        }
    }

    /// Add the lease's group memberships (the daemon's own, never a standing one).
    pub async fn apply_grants(&mut self, id: u64) {
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
            self.notify("lease.activated", id);
            return;
        }
        let db = &self.groupdb;
        let outcomes = match tokio::task::block_in_place(|| db.apply(&changes)) {
            Ok(o) => o,
            Err(e) => {
                tracing::error!("lease {id}: cannot edit /etc/group: {e}");
                self.audit.post(
                    "group.error",
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
            .map(|g| ("group.added", json!({"host": self.host.name, "lease": id, "user": lease.user, "group": g.group, "gid": g.gid})))
            .collect();
        if let Err(e) = self.commit(std::slice::from_ref(&lease), &recs).await {
            tracing::error!("lease {id}: {e}");
        }
        self.identities.clear();
        self.notify("lease.activated", id);
    }

    fn other_active_grant(&self, uid: u32, except: u64, group: &str) -> bool {
        self.leases.table.values().any(|l| {
            l.id != except
                && l.uid == uid
                && l.state == LeaseState::Active
                && l.applied_grants().any(|g| g.group == group)
        })
    }

    /// End these leases together: one journal write, one /etc/group rewrite, one /proc scan.
    pub async fn end_batch(&mut self, ends: Vec<(u64, EndReason, Option<String>, Option<String>)>) {
        let now = now_ms();
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
            let ev = match why {
                EndReason::Expired => "lease.expired",
                EndReason::Revoked => "lease.revoked",
                EndReason::Denied => "lease.denied",
                _ => "lease.ended",
            };
            events.push((ev, self.lease_record(&l, json!({"end_reason": why.as_str(), "by": by, "comment": reason, "was_active": was_active}))));
            ended.push(l);
        }
        if ended.is_empty() {
            return;
        }
        let ev_refs: Vec<(&str, serde_json::Value)> =
            events.iter().map(|(e, v)| (*e, v.clone())).collect();
        if let Err(e) = self.commit(&ended, &ev_refs).await {
            // The journal is the source of truth: reconcile will finish this on the next start,
            // and the tick retries meanwhile. Never leave memberships on an error path silently.
            tracing::error!("ending leases: {e}");
        }
        let ids: Vec<u64> = ended.iter().map(|l| l.id).collect();
        self.remove_grants(&ids).await;
        self.end_sessions(&ids, "lease ended");
        for id in ids {
            self.wake(id);
            self.notify("lease.ended", id);
        }
    }

    /// Remove the memberships these (ended) leases added, unless another active lease of the
    /// same user still grants the same group; then end processes still carrying them.
    pub async fn remove_grants(&mut self, ids: &[u64]) {
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
            match tokio::task::block_in_place(|| db.apply(&list)) {
                Ok(_) => {
                    let mut updated = Vec::new();
                    let mut recs = Vec::new();
                    for (id, change) in &changes {
                        let Change::Remove { user, group } = change else {
                            continue;
                        };
                        if let Some(mut l) = self.leases.table.get(id).cloned() {
                            for g in l.grants.iter_mut().filter(|g| &g.group == group) {
                                g.applied = false;
                            }
                            recs.push(("group.removed", json!({"host": self.host.name, "lease": id, "user": user, "group": group})));
                            updated.retain(|x: &Lease| x.id != l.id);
                            updated.push(l);
                        }
                    }
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
        let found = tokio::task::block_in_place(|| procs::carrying_any(&revoked));
        for (uid, p) in found {
            if terminate.get(&uid).copied().unwrap_or(true) {
                self.leases.pending_terms.push((uid, p));
            } else {
                self.audit.post(
                    "process.kept",
                    fields(json!({"host": self.host.name, "uid": uid, "pid": p.pid})),
                );
            }
        }
    }

    /// TERM the processes found carrying revoked groups; KILL them after the grace period.
    fn terminate_pending(&mut self) {
        let terms = std::mem::take(&mut self.leases.pending_terms);
        let killed: Vec<ProcId> = terms
            .into_iter()
            .filter(|(_, p)| procs::signal(*p, libc::SIGTERM))
            .map(|(_, p)| p)
            .collect();
        if !killed.is_empty() {
            self.audit.post(
                "process.terminated",
                fields(json!({"host": self.host.name, "pids": killed.iter().map(|p| p.pid).collect::<Vec<_>>(), "signal": "TERM"})),
            );
            let grace = Duration::from_millis(self.settings.limits.kill_grace_ms);
            self.leases
                .pending_kills
                .push((Instant::now() + grace, killed));
        }
    }

    /// Memberships of ended leases still in /etc/group (a failed rewrite, or a crash between
    /// journaling the end and removing them): remove them now.
    async fn retry_removals(&mut self) {
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

    /// Every tick: end what is due (on the wall clock, so suspend and clock jumps are
    /// honoured), KILL what ignored TERM, retry unfinished removals, prune old records.
    pub async fn tick(&mut self) {
        self.terminate_pending();
        let now = now_ms();
        let due: Vec<_> = self
            .leases
            .table
            .values()
            .filter_map(|l| rules::due(l, now).map(|why| (l.id, why, None, None)))
            .collect();
        if !due.is_empty() {
            self.end_batch(due).await;
        }
        self.retry_removals().await;
        self.maybe_prune_sessions();
        let t = Instant::now();
        let (ready, later): (Vec<_>, Vec<_>) = std::mem::take(&mut self.leases.pending_kills)
            .into_iter()
            .partition(|(at, _)| *at <= t);
        self.leases.pending_kills = later;
        for (_, ps) in ready {
            let killed: Vec<i32> = ps
                .into_iter()
                .filter(|p| procs::signal(*p, libc::SIGKILL))
                .map(|p| p.pid)
                .collect();
            if !killed.is_empty() {
                self.audit.post(
                    "process.terminated",
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
            if let Err(e) =
                tokio::task::block_in_place(|| journal.maybe_compact(live, table.values()))
            {
                tracing::warn!("lease journal compaction: {e}");
            }
        }
    }

    /// After a policy reload: a lease whose profile is gone, no longer leased, no longer for
    /// this host, or whose holder is no longer eligible, ends now.
    pub async fn reevaluate_leases(&mut self) {
        let policy = self.policy.clone();
        let live: Vec<(u64, u32, String)> = self
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
    pub async fn reconcile_leases(&mut self) {
        let now = now_ms();
        let ids: Vec<u64> = self.leases.table.keys().copied().collect();
        let mut ends = Vec::new();
        for id in ids {
            let l = &self.leases.table[&id];
            match l.state {
                LeaseState::Active if rules::due(l, now).is_none() => {
                    if let Some(b) = l.bound {
                        if procs::start_time(b.pid) != Some(b.start_time) {
                            ends.push((id, EndReason::ProcessExited, None, None));
                            continue;
                        }
                        self.watch_bound(id, b);
                    }
                    if l.grants.iter().any(|g| !g.standing && !g.applied) || l.grants.is_empty() {
                        self.apply_grants(id).await;
                    }
                }
                LeaseState::Pending if rules::due(l, now).is_none() => {}
                LeaseState::Ended => {}
                _ => ends.push((
                    id,
                    rules::due(l, now).unwrap_or(EndReason::Expired),
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
        self.retry_removals().await;
    }

    /// Watch a bound process; its exit ends the lease whatever time is left.
    fn watch_bound(&self, id: u64, b: Bound) {
        let events = self.events.clone();
        // Checked after opening: if the start time still matches, the pidfd is that process
        // (a pid recycled before pidfd_open would show another start time).
        let fd = match crate::os::pidfd_open(b.pid) {
            Ok(fd) if procs::start_time(b.pid) == Some(b.start_time) => fd,
            _ => {
                let _ = events.send(Event::BoundExited { id });
                return;
            }
        };
        tokio::spawn(async move {
            if let Ok(afd) = crate::os::async_fd(fd) {
                let _ = afd.readable().await;
            }
            let _ = events.send(Event::BoundExited { id });
        });
    }

    /// The pidfd of a bound process became readable: that exact process has exited (it may
    /// still be an unreaped zombie, which /proc would show with its old start time — so the
    /// pidfd, not /proc, is the authority here).
    pub async fn bound_exited(&mut self, id: u64) {
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

    /// Break-glass is rare and loud: syslog at alert level and a notice on every admin's terminal.
    fn break_glass_alarm(&mut self, l: &Lease) {
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
        let admins: BTreeSet<u32> = std::fs::read_dir("/dev/pts")
            .into_iter()
            .flatten()
            .flatten()
            .filter_map(|e| std::os::unix::fs::MetadataExt::uid(&e.metadata().ok()?).into())
            .filter(|uid: &u32| {
                self.identities
                    .by_uid(*uid)
                    .is_some_and(|(_, s)| policy.is_admin(&s))
            })
            .collect();
        crate::effects::wall::notify_terminals(&admins, &format!("\r\n*** elevate: {msg} ***\r\n"));
        self.notify("lease.break_glass", l.id);
    }

    /// Hand the event to the admin's notify_command, asynchronously; it can never block or
    /// crash the daemon.
    /// Also the D-Bus signals.
    fn notify(&self, event: &str, id: u64) {
        // Nobody on the bus and no hook (the common case): nothing to build.
        let listening = self.bus.receiver_count() > 0;
        if !listening && self.settings.notify_command.is_none() {
            return;
        }
        let Some(l) = self.leases.table.get(&id) else {
            return;
        };
        let lease = info(l, now_ms(), &self.policy);
        if let Some(signal) = listening
            .then(|| crate::api::dbus::BusEvent::for_lease(event, &lease))
            .flatten()
        {
            let _ = self.bus.send(signal);
        }
        let Some(cmd) = self.settings.notify_command.clone() else {
            return;
        };
        let payload = json!({"event": event, "host": self.host.name, "lease": lease});
        crate::effects::notify::spawn(cmd, payload);
    }
}

impl State {
    /// `elevate with ID|PROFILE -- CMD`: the caller's own active lease; CMD runs as the caller
    /// with the lease's granted groups added (so a running shell needn't log in again).
    pub fn decide_with(
        &mut self,
        peer: &mut Peer,
        req: &elevate_proto::WithRequest,
    ) -> super::Decision {
        use super::{Decision, Plan};
        if !self.limiter.allow(peer.uid, Instant::now()) {
            return Decision::Refuse(ErrorReply {
                kind: ErrorKind::RateLimited,
                message: "too many requests from your user; slow down and retry".into(),
            });
        }
        let Some((pw, subject)) = self.identities.by_uid(peer.uid) else {
            return Decision::Refuse(ErrorReply {
                kind: ErrorKind::BadRequest,
                message: format!("uid {} has no user account on this host", peer.uid),
            });
        };
        peer.user = subject.user.clone();
        let lease = match req.lease.parse::<u64>() {
            Ok(id) => self
                .leases
                .table
                .get(&id)
                .filter(|l| l.uid == peer.uid && l.state == LeaseState::Active),
            Err(_) => self.leases.active(peer.uid, &req.lease),
        };
        let Some(lease) = lease else {
            return Decision::Deny {
                reason: format!("you hold no active lease {}", req.lease),
                hint: Some("see your leases: elevate leases".into()),
                profile: None,
            };
        };
        let Some(path) = req.argv.first().filter(|p| p.starts_with('/')) else {
            return Decision::Refuse(ErrorReply {
                kind: ErrorKind::BadRequest,
                message: "elevate with needs an absolute command path (the client resolves it through your PATH)".into(),
            });
        };
        let mut groups = self
            .identities
            .by_name(&pw.name)
            .map(|(_, g)| g)
            .unwrap_or_default();
        for g in &lease.grants {
            if !groups.contains(&g.gid) {
                groups.push(g.gid);
            }
        }
        let mut env: Vec<(String, String)> = req
            .env
            .iter()
            .filter(|(k, _)| k != "ELEVATE_LEASE")
            .cloned()
            .collect();
        env.push(("ELEVATE_LEASE".into(), lease.id.to_string()));
        Decision::Allow(Box::new(Plan {
            profile: lease.profile.clone(),
            path: path.into(),
            argv: req.argv.clone(),
            env,
            run_as: subject.user.clone(),
            uid: pw.uid,
            gid: pw.gid,
            groups,
            as_caller: true,
        }))
    }
}
