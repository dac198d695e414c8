//! Lease operations clients ask for: request, approve, deny, revoke, extend, list, and wait
//! for a decision. Each validates against the policy and the pure rules in `lease/rules.rs`,
//! then saves through `commit.rs` (audited before it takes effect when it may grant privilege)
//! and acts: grants in `grants.rs`, endings in `expiry.rs`. Whatever a crash interrupts,
//! `expiry.rs` finishes at start-up from the journal.

use super::announce::Notice;
use super::commit::CommitError;
use super::edits::Backoff;
use super::{no_account, State};
use crate::effects::audit::AuditEvent;
use crate::effects::procs::ProcId;
use crate::lease::journal::{LeaseStore, ID_BLOCK};
use crate::lease::model::{Bound, EndReason, Lease, LeaseState};
use crate::lease::rules::{self, LeaseRules, NewRequest, Refusal, Requester};
use crate::peer::Peer;
use elevate_base::{Pid, Uid};
use elevate_policy::{Access, Policy, Profile, Subject};
use elevate_proto::{Denial, ErrorKind, ErrorReply, LeaseRequest, Response};
use serde_json::json;
use std::collections::{BTreeMap, HashMap};
use std::time::{Duration, Instant};
use tokio::sync::oneshot;

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
    pub journal: Box<dyn LeaseStore>,
    pub next_id: u64,
    /// `elevate request --wait` callers, woken when their lease leaves `pending`.
    pub waiters: HashMap<u64, Vec<oneshot::Sender<Response>>>,
    /// Processes to send TERM from the tick, once [`TERM_DELAY`](super::grants::TERM_DELAY)
    /// has passed since the ending (so the answer to whoever ended the lease arrives first —
    /// their own client may be one of them).
    pub pending_terms: Vec<(Instant, ProcId)>,
    /// Processes sent TERM, to be sent KILL at the instant if still there.
    pub pending_kills: Vec<(Instant, Vec<ProcId>)>,
    /// How late (wall clock, after its deadline) the last lease to expire was ended.
    pub expiry_lag_ms: u64,
    /// Ending records that could not be written: when to try again.
    pub ending_audit_retry: Backoff,
}

impl LeaseBook {
    pub(super) fn new(journal: Box<dyn LeaseStore>, table: BTreeMap<u64, Lease>) -> LeaseBook {
        // Above every id the journal holds and every id ever reserved: ids never repeat.
        let next_id = table
            .keys()
            .next_back()
            .copied()
            .unwrap_or(0)
            .max(journal.reserved_ids())
            + 1;
        LeaseBook {
            table,
            journal,
            next_id,
            waiters: HashMap::new(),
            pending_terms: Vec::new(),
            pending_kills: Vec::new(),
            expiry_lag_ms: 0,
            ending_audit_retry: Backoff::default(),
        }
    }

    /// The caller's active lease on `profile`, if any.
    pub(super) fn active(&self, uid: Uid, profile: &str) -> Option<&Lease> {
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
        ticket: p.ticket.clone(),
        approvals_needed: p.approval.as_ref().map_or(0, |a| a.count),
        break_glass: p.break_glass,
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

fn internal(e: CommitError) -> Response {
    Response::Error(ErrorReply {
        kind: e.error_kind(),
        message: e.to_string(),
    })
}

impl State {
    pub(super) fn subject(&mut self, uid: Uid) -> Result<Subject, Refusal> {
        self.identities
            .by_uid(uid)
            .map(|(_, s)| s)
            .ok_or_else(|| Refusal::Invalid(no_account(uid).message))
    }

    /// The answer to a lease operation: the lease as it now stands.
    pub(super) fn lease_response(&self, id: u64) -> Response {
        match self.leases.table.get(&id) {
            Some(l) => Response::Lease(self.view(l)),
            None => refusal(Refusal::NotFound(id)),
        }
    }

    pub(super) async fn lease_op(&mut self, peer: &mut Peer, op: LeaseOp) -> Response {
        if let Some(e) = self.rate_limited(peer.uid) {
            return Response::Error(e);
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

    pub(super) async fn request(
        &mut self,
        peer: &Peer,
        subject: &Subject,
        req: LeaseRequest,
    ) -> Result<Response, Response> {
        let policy = self.policy.clone();
        let profile = self
            .requestable(&policy, peer, subject, &req.profile)
            .map_err(|r| *r)?;
        let bound = match req.bind_pid {
            None => None,
            Some(pid) => Some(self.check_bind(peer.uid, pid).map_err(refusal)?),
        };
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
        let now = self.clock.wall_ms();
        let id = self.next_lease_id().map_err(internal)?;
        let ttl = self.settings.pending_ttl;
        let mut lease =
            rules::new_lease(id, &who, &nr, &rules_of(profile), now, ttl).map_err(refusal)?;
        lease.bound = bound;
        if lease.state == LeaseState::Active {
            lease.activated_boot = self.boot_stamp();
        }
        let mut events = vec![(
            AuditEvent::LeaseRequested,
            self.lease_record(&lease, json!({"requester": peer.audit_json()})),
        )];
        if lease.state == LeaseState::Active {
            let (ev, severity) = if lease.break_glass {
                (AuditEvent::LeaseBreakGlass, "alert")
            } else {
                (AuditEvent::LeaseActivated, "info")
            };
            let rec = self.lease_record(&lease, json!({ "severity": severity }));
            events.push((ev, rec));
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
            self.notify(Notice::Pending, lease.id);
        }
        if let Some(b) = lease.bound {
            self.watch_bound(lease.id, b);
        }
        Ok(self.lease_response(lease.id))
    }

    /// The next lease id, reserved durably in blocks before it is used: an id that reached
    /// the audit log but not the journal (a crash in between) is never handed out again.
    fn next_lease_id(&mut self) -> Result<u64, CommitError> {
        let id = self.leases.next_id;
        if id > self.leases.journal.reserved_ids() {
            let through = id.saturating_add(ID_BLOCK - 1);
            self.leases
                .journal
                .reserve_ids(through)
                .map_err(CommitError::Journal)?;
        }
        self.leases.next_id += 1;
        Ok(id)
    }

    /// The profile `name`, if this caller may request a lease on it now: a leased profile for
    /// this host that they are eligible for, no live lease of theirs on it or on a profile it
    /// conflicts with, and step-up done if the profile wants it.
    fn requestable<'p>(
        &mut self,
        policy: &'p Policy,
        peer: &Peer,
        subject: &Subject,
        name: &str,
    ) -> Result<&'p Profile, Box<Response>> {
        let no = |reason: String, hint: Option<String>| Box::new(refusal(deny(reason, hint)));
        let Some(profile) = policy.profile(name) else {
            let hint = Some("see what you may request: elevate list".into());
            return Err(no(format!("no such profile: {name}"), hint));
        };
        if profile.access != Access::Lease {
            let hint = Some("run its commands directly: elevate list".into());
            let why = format!("profile {} is standing access, not leased", profile.name);
            return Err(no(why, hint));
        }
        if !profile.applies_to_host(&self.host) || !profile.is_eligible(subject) {
            let why = format!(
                "you are not eligible for profile {} on this host",
                profile.name
            );
            return Err(no(why, None));
        }
        let mine = |l: &&Lease| l.uid == peer.uid && l.is_live();
        let table = &self.leases.table;
        if let Some(l) = table
            .values()
            .filter(mine)
            .find(|l| l.profile == profile.name)
        {
            let (id, p, state) = (l.id, &l.profile, l.state.as_str());
            let hint = format!(
                "see it with: elevate leases; extend it with: elevate extend {id} --by DUR"
            );
            return Err(no(
                format!("you already have lease {id} on {p} ({state})"),
                Some(hint),
            ));
        }
        let conflicting = |l: &&Lease| policy.conflicts_between(&l.profile, &profile.name);
        if let Some(l) = table.values().filter(mine).find(conflicting) {
            let why = format!(
                "separation of duties: {} conflicts with your lease {} on {}",
                profile.name, l.id, l.profile
            );
            return Err(no(
                why,
                Some(format!("end it first: elevate revoke {}", l.id)),
            ));
        }
        if self.step_up_needed(peer, profile) {
            return Err(Box::new(Response::Error(ErrorReply {
                kind: ErrorKind::AuthenticationRequired,
                message: format!(
                    "profile {} requires you to authenticate; request it with the elevate CLI from a terminal",
                    profile.name
                ),
            })));
        }
        Ok(profile)
    }

    /// The caller must own the process it binds a lease to (real uid from /proc).
    pub(super) fn check_bind(&self, uid: Uid, pid: Pid) -> Result<Bound, Refusal> {
        let owner = self
            .procs
            .owner(pid)
            .ok_or_else(|| deny(format!("no process {pid}"), None))?;
        if owner != uid || pid.get() <= 1 {
            return Err(deny(format!("you do not own process {pid}"), None));
        }
        let start_time = self
            .procs
            .start_time(pid)
            .ok_or_else(|| deny(format!("no process {pid}"), None))?;
        Ok(Bound { pid, start_time })
    }

    /// Root may see and end every lease, whatever the policy says: it could end them by other
    /// means anyway, and uninstalling must end them cleanly. Root never approves: approval
    /// is a person's decision, and root is an account, not a person.
    pub(super) fn is_root(subject: &Subject) -> bool {
        subject.uid.is_root()
    }

    pub(super) fn visible(&self, subject: &Subject, l: &Lease) -> bool {
        l.uid == subject.uid
            || Self::is_root(subject)
            || self.policy.is_admin(subject)
            || self.policy.is_auditor(subject)
            || self.may_approve(subject, l)
    }

    pub(super) fn may_approve(&self, subject: &Subject, l: &Lease) -> bool {
        self.policy
            .profile(&l.profile)
            .and_then(|p| p.approval.as_ref())
            .is_some_and(|a| a.approver_matches(subject))
    }

    pub(super) fn lookup(&self, subject: &Subject, id: u64) -> Result<Lease, Refusal> {
        match self.leases.table.get(&id) {
            Some(l) if self.visible(subject, l) => Ok(l.clone()),
            _ => Err(Refusal::NotFound(id)),
        }
    }

    pub(super) async fn approve(
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
                self.clock.wall_ms(),
            )
            .map_err(refusal)?;
            let ev = if done {
                AuditEvent::LeaseExtended
            } else {
                AuditEvent::LeaseExtensionApproved
            };
            let rec = self.lease_record(
                &lease,
                json!({"approver": peer.audit_json(), "comment": comment}),
            );
            self.commit_requested(&lease, &[(ev, rec)])
                .await
                .map_err(internal)?;
            return Ok(Response::Lease(self.view(&lease)));
        }
        let activated = rules::approve(
            &mut lease,
            &who,
            comment.as_deref(),
            may,
            self.clock.wall_ms(),
        )
        .map_err(refusal)?;
        if activated {
            lease.activated_boot = self.boot_stamp();
        }
        let mut events = vec![(
            AuditEvent::LeaseApproved,
            self.lease_record(
                &lease,
                json!({"approver": peer.audit_json(), "comment": comment}),
            ),
        )];
        if activated {
            events.push((
                AuditEvent::LeaseActivated,
                self.lease_record(&lease, json!({})),
            ));
        }
        self.commit_requested(&lease, &events)
            .await
            .map_err(internal)?;
        if activated {
            self.apply_grants(id).await;
            if !self.edits.granting(id) {
                self.wake(id);
            }
        }
        Ok(self.lease_response(id))
    }

    pub(super) async fn deny_request(
        &mut self,
        peer: &Peer,
        subject: &Subject,
        id: u64,
        reason: Option<String>,
    ) -> Result<Response, Response> {
        rules::check_text("reason", reason.as_deref()).map_err(refusal)?;
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

    pub(super) async fn revoke(
        &mut self,
        peer: &Peer,
        subject: &Subject,
        id: u64,
        reason: Option<String>,
    ) -> Result<Response, Response> {
        rules::check_text("reason", reason.as_deref()).map_err(refusal)?;
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

    pub(super) async fn extend(
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
        let by = Duration::from_secs(by_secs);
        let now = self.clock.wall_ms();
        // A profile that needs approval needs it again to last longer.
        let (event, notice) = if profile.approval.is_some() {
            rules::request_extension(&mut lease, by, profile.max_duration, now).map_err(refusal)?;
            (
                AuditEvent::LeaseExtensionRequested,
                Notice::ExtensionRequested,
            )
        } else {
            rules::extend(&mut lease, by, profile.max_duration).map_err(refusal)?;
            (AuditEvent::LeaseExtended, Notice::Extended)
        };
        let rec = self.lease_record(
            &lease,
            json!({"by_secs": by_secs, "requester": peer.audit_json()}),
        );
        self.commit_requested(&lease, &[(event, rec)])
            .await
            .map_err(internal)?;
        self.notify(notice, id);
        Ok(Response::Lease(self.view(&lease)))
    }

    fn may_list_all(&self, subject: &Subject) -> bool {
        self.policy.is_admin(subject) || self.policy.is_auditor(subject) || Self::is_root(subject)
    }

    /// Whether `subject`'s own list shows `l`: theirs, or a request they may approve.
    fn listed_for(&self, subject: &Subject, l: &Lease) -> bool {
        l.uid == subject.uid || (l.state == LeaseState::Pending && self.may_approve(subject, l))
    }

    /// For each uid, whether its widest `ListLeases` shows lease `id` (the D-Bus signals'
    /// audience: a signal tells no one more than the list would).
    pub(super) fn audience(&mut self, id: u64, uids: &[Uid]) -> Vec<bool> {
        let mut shown = vec![false; uids.len()];
        let Some(l) = self.leases.table.get(&id).cloned() else {
            return shown;
        };
        for (uid, yes) in uids.iter().zip(shown.iter_mut()) {
            if let Ok(subject) = self.subject(*uid) {
                *yes = self.may_list_all(&subject) || self.listed_for(&subject, &l);
            }
        }
        shown
    }

    pub(super) fn list_leases(&self, subject: &Subject, all: bool) -> Response {
        if all && !self.may_list_all(subject) {
            return refusal(deny(
                "only admins and auditors may list every lease",
                Some("your own: elevate leases".into()),
            ));
        }
        let now = self.clock.wall_ms();
        let horizon = now.saturating_sub(24 * 3600 * 1000);
        let leases = self
            .leases
            .table
            .values()
            .filter(|l| l.state != LeaseState::Ended || l.ended_at_ms.unwrap_or(0) >= horizon)
            .filter(|l| all || self.listed_for(subject, l))
            .map(|l| self.view(l))
            .collect();
        Response::Leases { leases }
    }

    pub(super) fn wait_lease(
        &mut self,
        subject_uid: Uid,
        id: u64,
        reply: oneshot::Sender<Response>,
    ) {
        match self.leases.table.get(&id) {
            Some(l) if l.uid == subject_uid => {
                // An approved lease whose groups are being written is not answered yet: the
                // answer says whether they were.
                if l.state == LeaseState::Pending || self.edits.granting(id) {
                    self.leases.waiters.entry(id).or_default().push(reply);
                } else {
                    let _ = reply.send(Response::Lease(self.view(l)));
                }
            }
            _ => {
                let _ = reply.send(refusal(Refusal::NotFound(id)));
            }
        }
    }

    pub(super) fn wake(&mut self, id: u64) {
        if let (Some(ws), Some(l)) = (self.leases.waiters.remove(&id), self.leases.table.get(&id)) {
            for w in ws {
                let _ = w.send(Response::Lease(self.view(l)));
            }
        }
    }
}
