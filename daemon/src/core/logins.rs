//! PAM logins: the account question (may this user log in through this service now?) and the
//! sessions pam_elevate.so registers, which end when the lease that admitted them ends.

use super::announce::BusEvent;
use super::State;
use crate::effects::audit::fields;
use crate::effects::audit::AuditEvent;
use crate::effects::procs::ProcId;
use crate::lease::model::LeaseState;
use crate::login::sessions::{Session, MAX_SESSIONS};
use crate::peer::Peer;
use elevate_base::Uid;
use elevate_policy::{LoginAccess, Subject};
use elevate_proto::{ErrorKind, ErrorReply, LoginDecision, LoginQuery, LoginVerdict, Response};
use serde_json::json;
use std::collections::btree_map::Entry;
use std::time::Duration;

#[derive(Debug)]
pub enum LoginOp {
    Check(LoginQuery),
    Open(LoginQuery),
    Close { id: u64 },
}

fn reply(kind: ErrorKind, message: impl Into<String>) -> ErrorReply {
    ErrorReply {
        kind,
        message: message.into(),
    }
}

fn err(kind: ErrorKind, message: impl Into<String>) -> Response {
    Response::Error(reply(kind, message))
}

/// PAM items are short printable strings; anything else is a malformed request.
fn valid_item(s: &str, max: usize) -> bool {
    !s.is_empty() && s.len() <= max && !s.chars().any(char::is_control)
}

/// How often sessions whose leader vanished without close_session are forgotten.
const PRUNE_EVERY: Duration = Duration::from_secs(10);

/// Sessions a non-root caller may register for itself.
const MAX_SESSIONS_PER_USER: usize = 64;

/// A decided login: the verdict plus what the audit record and a session need.
struct Decided {
    verdict: LoginVerdict,
    uid: Uid,
    user: String,
    access: Option<LoginAccess>,
    rule: Option<String>,
}

impl State {
    pub(super) async fn login_op(&mut self, peer: &mut Peer, op: LoginOp) -> Response {
        if !peer.uid.is_root() {
            if let Some(e) = self.rate_limited(peer.uid) {
                return Response::Error(e);
            }
        }
        if let Some((pw, _)) = self.identities.by_uid(peer.uid) {
            peer.user = pw.name;
        }
        match op {
            LoginOp::Check(q) => self.login_check(peer, &q).await,
            LoginOp::Open(q) => self.session_open(peer, &q).await,
            LoginOp::Close { id } => self.session_close(peer, id),
        }
    }

    /// Decide without side effects. `Err`: the question itself is refused.
    fn decide_login(&mut self, peer: &Peer, q: &LoginQuery) -> Result<Decided, ErrorReply> {
        if !valid_item(&q.service, 64)
            || !valid_item(&q.user, 256)
            || q.rhost.as_deref().is_some_and(|h| !valid_item(h, 1024))
            || q.tty.as_deref().is_some_and(|t| !valid_item(t, 256))
        {
            return Err(reply(ErrorKind::BadRequest, "malformed login question"));
        }
        let ignore = |uid: Uid, user: &str| Decided {
            verdict: LoginVerdict {
                decision: LoginDecision::Ignore,
                message: None,
                lease: None,
            },
            uid,
            user: user.to_string(),
            access: None,
            rule: None,
        };
        let known = self.identities.by_name(&q.user);
        if !peer.uid.is_root() && known.as_ref().map(|(pw, _)| pw.uid) != Some(peer.uid) {
            return Err(reply(
                ErrorKind::BadRequest,
                "only root may ask about another user's login",
            ));
        }
        // Unknown to NSS: not ours to judge (the rest of the stack will refuse it).
        let Some((pw, _)) = known else {
            return Ok(ignore(Uid(u32::MAX), &q.user));
        };
        let Some((_, by_uid)) = self.identities.by_uid(pw.uid) else {
            return Ok(ignore(pw.uid, &q.user));
        };
        // Rules match the name being logged into (an alias of a uid is its own identity).
        let subject = Subject {
            uid: pw.uid,
            user: pw.name.clone(),
            groups: by_uid.groups,
        };
        let policy = self.policy.clone();
        let Some(rule) = policy.login_rule(&q.service, &self.host, &subject) else {
            return Ok(ignore(pw.uid, &pw.name));
        };
        let (decision, message, lease) = match rule.access {
            LoginAccess::Standing => (LoginDecision::Allow, None, None),
            LoginAccess::Deny => (
                LoginDecision::Deny,
                Some(format!(
                    "{} may not log in to {} through {} (elevate policy).",
                    pw.name, self.host.name, q.service
                )),
                None,
            ),
            LoginAccess::Lease => match self.login_lease(&subject, &q.service) {
                Some(id) => (LoginDecision::Allow, None, Some(id)),
                None => (
                    LoginDecision::Deny,
                    Some(self.lease_hint(&subject, &q.service)),
                    None,
                ),
            },
        };
        Ok(Decided {
            verdict: LoginVerdict {
                decision,
                message,
                lease,
            },
            uid: pw.uid,
            user: pw.name,
            access: Some(rule.access),
            rule: Some(rule.location.to_string()),
        })
    }

    /// The active lease (of a profile whose `login` lists `service`) that lasts longest.
    fn login_lease(&self, subject: &Subject, service: &str) -> Option<u64> {
        self.leases
            .table
            .values()
            .filter(|l| l.state == LeaseState::Active && l.uid == subject.uid)
            .filter(|l| {
                self.policy.profile(&l.profile).is_some_and(|p| {
                    p.login.iter().any(|s| s == service) && p.applies_to_host(&self.host)
                })
            })
            .max_by_key(|l| l.expires_at_ms.unwrap_or(u64::MAX))
            .map(|l| l.id)
    }

    /// What to tell someone refused for lack of a lease: which profile to request.
    fn lease_hint(&self, subject: &Subject, service: &str) -> String {
        let names: Vec<String> = self
            .policy
            .login_profiles(service, &self.host, subject)
            .map(|p| p.name.clone())
            .collect();
        let head = format!(
            "{} may log in to {} through {} only while holding an approved elevate lease.",
            subject.user, self.host.name, service
        );
        match names.as_slice() {
            [] => format!("{head} No profile here grants that to you; ask an administrator."),
            [one] => format!(
                "{head} Request one: elevate request {one} --for 1h --reason '...' (from a host session or ask an approver)."
            ),
            many => format!("{head} Profiles that grant it: {}.", many.join(", ")),
        }
    }

    fn login_record(&self, peer: &Peer, q: &LoginQuery, d: &Decided) -> serde_json::Value {
        json!({
            "requester": peer.audit_json(), "host": self.host.name, "user": d.user, "uid": d.uid,
            "service": q.service, "rhost": q.rhost, "tty": q.tty,
            "access": d.access.map(|a| format!("{a:?}").to_lowercase()), "rule": d.rule,
            "lease": d.verdict.lease, "reason": d.verdict.message,
        })
    }

    async fn login_check(&mut self, peer: &Peer, q: &LoginQuery) -> Response {
        let d = match self.decide_login(peer, q) {
            Ok(d) => d,
            Err(e) => return Response::Error(e),
        };
        let rec = self.login_record(peer, q, &d);
        match d.verdict.decision {
            LoginDecision::Ignore => {}
            LoginDecision::Deny => self.audit.post(AuditEvent::LoginDenied, fields(rec)),
            // Fail closed: an allowed login is on disk before the answer goes out.
            LoginDecision::Allow => {
                if let Err(e) = self
                    .audit
                    .durable(vec![(AuditEvent::LoginAllowed, fields(rec))])
                    .await
                {
                    tracing::error!("refusing a login: audit write failed: {e}");
                    return err(
                        ErrorKind::AuditFailed,
                        format!("the audit log cannot be written ({e})"),
                    );
                }
            }
        }
        Response::Login(d.verdict)
    }

    async fn session_open(&mut self, peer: &Peer, q: &LoginQuery) -> Response {
        let d = match self.decide_login(peer, q) {
            Ok(d) => d,
            Err(e) => return Response::Error(e),
        };
        if d.verdict.decision != LoginDecision::Allow {
            // Not gated: nothing to track. Denied (the lease ended since the account check):
            // the module refuses the session.
            return Response::Login(d.verdict);
        }
        let Some(pid) = peer.pid else {
            return err(
                ErrorKind::BadRequest,
                "cannot identify the session's process",
            );
        };
        let Some(start_time) = self.procs.start_time(pid) else {
            return err(ErrorKind::BadRequest, "the session's process is gone");
        };
        if self.sessions.table.len() >= MAX_SESSIONS {
            return err(ErrorKind::Busy, "too many open sessions are tracked");
        }
        // A user registering sessions for their own processes (not via a root PAM
        // application) cannot crowd out everyone else's.
        if !peer.uid.is_root()
            && self
                .sessions
                .table
                .values()
                .filter(|s| s.uid == peer.uid)
                .count()
                >= MAX_SESSIONS_PER_USER
        {
            return err(ErrorKind::Busy, "too many sessions registered by your user");
        }
        let id = self.sessions.next_id;
        self.sessions.next_id += 1;
        let s = Session {
            id,
            uid: d.uid,
            user: d.user.clone(),
            service: q.service.clone(),
            tty: q.tty.clone(),
            rhost: q.rhost.clone(),
            lease: d.verdict.lease,
            pid,
            start_time,
            opened_at_ms: self.clock.wall_ms(),
            logind: None,
        };
        self.sessions.table.insert(id, s);
        if let Err(e) = self.save_sessions() {
            self.sessions.table.remove(&id);
            return err(ErrorKind::Internal, format!("session state not saved: {e}"));
        }
        let mut rec = self.login_record(peer, q, &d);
        rec["session"] = json!(id);
        rec["leader_pid"] = json!(pid);
        self.audit.post(AuditEvent::SessionOpened, fields(rec));
        let leader = ProcId { pid, start_time };
        let _ = self.bus.send(BusEvent::SessionOpened {
            session: id,
            leader,
        });
        Response::Session {
            id,
            lease: d.verdict.lease,
        }
    }

    /// The bus side found the logind session a PAM session belongs to.
    pub(super) fn logind_session(&mut self, session: u64, logind_id: String) {
        let Some(s) = self.sessions.table.get_mut(&session) else {
            return;
        };
        s.logind = Some(logind_id);
        let _ = self.save_sessions();
    }

    /// `sessions.json`, durably. Errors are logged and returned; callers that promised
    /// nothing yet may ignore them.
    fn save_sessions(&self) -> std::io::Result<()> {
        let r = self.sessions.save();
        if let Err(e) = &r {
            tracing::error!("cannot save sessions: {e}");
        }
        r
    }

    fn session_close(&mut self, peer: &Peer, id: u64) -> Response {
        // Someone else's session is as invisible as a missing one.
        let s = match self.sessions.table.entry(id) {
            Entry::Occupied(e) if peer.uid.is_root() || peer.uid == e.get().uid => e.remove(),
            _ => return err(ErrorKind::NotFound, format!("no session {id}")),
        };
        let _ = self.save_sessions();
        self.audit.post(
            AuditEvent::SessionClosed,
            fields(
                json!({"requester": peer.audit_json(), "host": self.host.name, "session": id,
                "user": s.user, "uid": s.uid, "service": s.service, "lease": s.lease}),
            ),
        );
        Response::Session { id, lease: s.lease }
    }

    /// End the sessions these leases admitted: HUP now to the leader and its descendants,
    /// TERM after `TERM_DELAY`, KILL after the grace (the lease machinery's pending lists).
    pub(super) fn end_sessions(&mut self, lease_ids: &[u64], why: &str) {
        let ending: Vec<u64> = self
            .sessions
            .table
            .values()
            .filter(|s| s.lease.is_some_and(|l| lease_ids.contains(&l)))
            .map(|s| s.id)
            .collect();
        if ending.is_empty() {
            return;
        }
        for id in ending {
            let Some(s) = self.sessions.table.remove(&id) else {
                continue;
            };
            // logind ends the whole session (its cgroup, double-forked processes included);
            // the signals below end it on hosts without logind, and race nothing on those with.
            if let Some(logind_id) = s.logind.clone() {
                let _ = self.bus.send(BusEvent::TerminateSession { logind_id });
            }
            let procs = self.procs.tree(s.leader());
            for p in &procs {
                self.procs.signal(*p, libc::SIGHUP);
                let at = self.clock.now() + super::grants::TERM_DELAY;
                self.leases.pending_terms.push((at, *p));
            }
            tracing::info!(
                "ending session {id} of {} ({}): lease {:?} {why}",
                s.user,
                s.service,
                s.lease
            );
            self.audit.post(
                AuditEvent::SessionTerminated,
                fields(
                    json!({"host": self.host.name, "session": id, "user": s.user, "uid": s.uid,
                    "service": s.service, "tty": s.tty, "rhost": s.rhost, "lease": s.lease, "logind": s.logind,
                    "why": why, "pids": procs.iter().map(|p| p.pid).collect::<Vec<_>>()}),
                ),
            );
        }
        let _ = self.save_sessions();
    }

    /// At start-up and periodically: sessions whose lease is no longer active end now (a
    /// lease that ended while the daemon was down), and vanished leaders are forgotten.
    pub(super) fn reconcile_sessions(&mut self) {
        if self.sessions.prune(self.procs.as_ref()) {
            let _ = self.save_sessions();
        }
        let stale: Vec<u64> = self
            .sessions
            .table
            .values()
            .filter_map(|s| s.lease)
            .filter(|l| {
                self.leases
                    .table
                    .get(l)
                    .is_none_or(|l| l.state != LeaseState::Active)
            })
            .collect();
        if !stale.is_empty() {
            self.end_sessions(&stale, "ended");
        }
    }

    pub(super) fn maybe_prune_sessions(&mut self) {
        let now = self.clock.now();
        if now.saturating_duration_since(self.sessions.last_check) >= PRUNE_EVERY {
            self.sessions.last_check = now;
            self.reconcile_sessions();
        }
    }
}
