//! Account and session phases: from what PAM knows to a PAM result, a message for the user
//! and lines for syslog.

use crate::args::{Args, FailMode};
use elevate_proto::{
    Client, ClientError, ErrorKind, ErrorReply, LoginDecision, LoginQuery, Request, Response,
};
use std::fmt;

/// The PAM results this module returns (the cdylib maps them to libpam's numbers).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PamCode {
    Success,
    PermDenied,
    Ignore,
    /// The daemon could not be asked and `fail=closed`.
    AuthInfoUnavail,
    /// Bad module arguments.
    ServiceErr,
    SessionErr,
    /// A bug (a caught panic, an unreadable PAM item).
    SystemErr,
}

/// Which PAM entry point is running: it decides the code a refusal carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Phase {
    Account,
    OpenSession,
    CloseSession,
}

impl Phase {
    fn label(self) -> &'static str {
        match self {
            Phase::Account => "account",
            Phase::OpenSession | Phase::CloseSession => "session",
        }
    }

    /// A refusal because the daemon could not be asked or could not decide.
    fn unavailable(self) -> PamCode {
        match self {
            Phase::Account => PamCode::AuthInfoUnavail,
            Phase::OpenSession | Phase::CloseSession => PamCode::SessionErr,
        }
    }

    /// A refusal because the module's arguments are wrong.
    pub fn bad_arguments(self) -> PamCode {
        match self {
            Phase::Account => PamCode::ServiceErr,
            Phase::OpenSession | Phase::CloseSession => PamCode::SessionErr,
        }
    }

    /// The policy said no.
    fn denied(self) -> PamCode {
        match self {
            Phase::Account => PamCode::PermDenied,
            Phase::OpenSession | Phase::CloseSession => PamCode::SessionErr,
        }
    }
}

/// What an entry point returns: the code, what to tell the user, what to log.
#[must_use]
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Outcome {
    pub code: PamCode,
    pub user_message: Option<String>,
    /// (is_error, text) for syslog; debug lines only when `debug` is set.
    pub log: Vec<(bool, String)>,
    /// The session id to remember for close_session (open_session only).
    pub session_id: Option<u64>,
}

impl Outcome {
    fn new(code: PamCode) -> Outcome {
        Outcome {
            code,
            user_message: None,
            log: Vec::new(),
            session_id: None,
        }
    }
    fn log(mut self, error: bool, line: String) -> Outcome {
        self.log.push((error, line));
        self
    }
    fn tell(mut self, msg: impl Into<String>) -> Outcome {
        self.user_message = Some(msg.into());
        self
    }
}

/// Group membership, from NSS in the module, from a table in tests.
pub trait Accounts {
    fn in_group(&self, user: &str, group: &str) -> bool;
}

/// One request, one answer, within the module's timeout. An `Err` means the daemon could not
/// be asked (not running, timed out, broke the protocol).
pub trait Daemon {
    fn call(&mut self, args: &Args, req: &Request) -> Result<Response, ClientError>;
}

/// The real daemon, over its socket.
pub struct SocketDaemon;

impl Daemon for SocketDaemon {
    fn call(&mut self, args: &Args, req: &Request) -> Result<Response, ClientError> {
        Client::connect(&args.socket, args.timeout)?.call(req)
    }
}

fn exempt(args: &Args, user: &str, accounts: &dyn Accounts) -> bool {
    args.exempt_users.iter().any(|u| u == user)
        || args
            .exempt_group
            .as_deref()
            .is_some_and(|g| accounts.in_group(user, g))
}

fn unreachable(args: &Args, q: &LoginQuery, phase: Phase, err: &dyn fmt::Display) -> Outcome {
    let label = phase.label();
    match args.fail {
        FailMode::Closed => Outcome::new(phase.unavailable())
        .tell("Access control (elevate) is unavailable right now, so this login is refused. Try again shortly or contact an administrator.")
        .log(true, format!("{label}: {} via {}: refused, the daemon cannot be asked (fail=closed): {err}", q.user, q.service)),
        FailMode::Open => Outcome::new(PamCode::Ignore).log(
            true,
            format!("{label}: {} via {}: the daemon cannot be asked, stepping aside (fail=open): {err}", q.user, q.service),
        ),
    }
}

/// An answer from the daemon that does not answer the question: an error it reported (its
/// audit log failed, it could not decide), or a reply of the wrong kind. `Display` is the
/// text for the log.
#[derive(Debug)]
enum BadAnswer {
    Error(ErrorReply),
    Unexpected(Box<Response>),
}

impl From<Response> for BadAnswer {
    fn from(r: Response) -> BadAnswer {
        match r {
            Response::Error(e) => BadAnswer::Error(e),
            other => BadAnswer::Unexpected(Box::new(other)),
        }
    }
}

impl fmt::Display for BadAnswer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            BadAnswer::Error(e) => f.write_str(&e.message),
            BadAnswer::Unexpected(r) => write!(f, "unexpected answer {r:?}"),
        }
    }
}

/// The daemon answered, but not with the answer the phase expects. `fail=open` is for a
/// daemon that cannot be asked at all; one that answers and cannot decide means no — except
/// when it says it is too busy, which is being unavailable.
fn daemon_error(args: &Args, q: &LoginQuery, phase: Phase, bad: &BadAnswer) -> Outcome {
    if let BadAnswer::Error(e) = bad {
        if e.kind == ErrorKind::Busy {
            return unreachable(args, q, phase, &e.message);
        }
    }
    Outcome::new(phase.unavailable())
    .tell("Access control (elevate) could not decide this login, so it is refused. Try again shortly or contact an administrator.")
    .log(true, format!("{}: {} via {}: refused, the daemon could not decide: {bad}", phase.label(), q.user, q.service))
}

/// What the daemon answered, when it is not the answer the phase expects.
fn daemon_failure(
    args: &Args,
    q: &LoginQuery,
    phase: Phase,
    r: Result<Response, ClientError>,
) -> Outcome {
    match r {
        Ok(answer) => daemon_error(args, q, phase, &BadAnswer::from(answer)),
        Err(e) => unreachable(args, q, phase, &e),
    }
}

/// The policy's refusal: the daemon's message (or `fallback`) to the user and the log.
fn refused(q: &LoginQuery, phase: Phase, message: Option<String>, fallback: &str) -> Outcome {
    let msg = message.unwrap_or_else(|| fallback.to_string());
    Outcome::new(phase.denied())
        .log(
            false,
            format!(
                "{}: {} via {}: denied: {msg}",
                phase.label(),
                q.user,
                q.service
            ),
        )
        .tell(msg)
}

/// `pam_sm_acct_mgmt`: may this user log in through this service now?
pub fn account(
    args: &Args,
    q: &LoginQuery,
    accounts: &dyn Accounts,
    daemon: &mut dyn Daemon,
) -> Outcome {
    if exempt(args, &q.user, accounts) {
        let o = Outcome::new(PamCode::Ignore);
        return if args.debug {
            o.log(false, format!("account: {} is exempt", q.user))
        } else {
            o
        };
    }
    match daemon.call(args, &Request::LoginCheck(q.clone())) {
        Ok(Response::Login(v)) => match v.decision {
            LoginDecision::Allow => {
                let lease = v.lease.map(|l| format!(" (lease {l})")).unwrap_or_default();
                Outcome::new(PamCode::Success).log(
                    false,
                    format!("account: {} via {}: allowed{lease}", q.user, q.service),
                )
            }
            LoginDecision::Deny => refused(
                q,
                Phase::Account,
                v.message,
                "Login refused by elevate policy.",
            ),
            LoginDecision::Ignore => {
                let o = Outcome::new(PamCode::Ignore);
                if args.debug {
                    o.log(
                        false,
                        format!("account: {} via {}: not gated", q.user, q.service),
                    )
                } else {
                    o
                }
            }
        },
        other => daemon_failure(args, q, Phase::Account, other),
    }
}

/// `pam_sm_open_session`: register the session (the calling process is its leader).
pub fn open_session(
    args: &Args,
    q: &LoginQuery,
    accounts: &dyn Accounts,
    daemon: &mut dyn Daemon,
) -> Outcome {
    if exempt(args, &q.user, accounts) {
        return Outcome::new(PamCode::Ignore);
    }
    match daemon.call(args, &Request::SessionOpen(q.clone())) {
        Ok(Response::Session { id, lease }) => {
            let until = lease
                .map(|l| format!(", ends with lease {l}"))
                .unwrap_or_default();
            let mut o = Outcome::new(PamCode::Success).log(
                false,
                format!(
                    "session {id} opened for {} via {}{until}",
                    q.user, q.service
                ),
            );
            o.session_id = Some(id);
            o
        }
        Ok(Response::Login(v)) if v.decision == LoginDecision::Ignore => {
            Outcome::new(PamCode::Ignore)
        }
        Ok(Response::Login(v)) if v.decision == LoginDecision::Deny => refused(
            q,
            Phase::OpenSession,
            v.message,
            "Session refused by elevate policy.",
        ),
        other => daemon_failure(args, q, Phase::OpenSession, other),
    }
}

/// `pam_sm_close_session`: unregister. Never fails the close: the session is ending anyway.
pub fn close_session(args: &Args, id: Option<u64>, daemon: &mut dyn Daemon) -> Outcome {
    let Some(id) = id else {
        return Outcome::new(PamCode::Ignore);
    };
    match daemon.call(args, &Request::SessionClose { id }) {
        Ok(Response::Session { .. }) => {
            Outcome::new(PamCode::Success).log(false, format!("session {id} closed"))
        }
        Ok(other) => Outcome::new(PamCode::Success).log(
            true,
            format!("closing session {id}: {}", BadAnswer::from(other)),
        ),
        Err(e) => Outcome::new(PamCode::Success).log(true, format!("closing session {id}: {e}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use elevate_proto::LoginVerdict;

    struct Groups(&'static [(&'static str, &'static str)]);
    impl Accounts for Groups {
        fn in_group(&self, user: &str, group: &str) -> bool {
            self.0.iter().any(|(u, g)| *u == user && *g == group)
        }
    }

    /// Answers with a fixed response (`Err`: cannot connect, for this reason) and remembers
    /// what it was asked.
    struct Fake(Result<Response, &'static str>, Vec<Request>);
    impl Daemon for Fake {
        fn call(&mut self, args: &Args, req: &Request) -> Result<Response, ClientError> {
            self.1.push(req.clone());
            self.0.clone().map_err(|why| ClientError::Connect {
                socket: args.socket.clone(),
                source: std::io::Error::new(std::io::ErrorKind::ConnectionRefused, why),
            })
        }
    }

    fn q(user: &str) -> LoginQuery {
        LoginQuery {
            service: "sshd".into(),
            user: user.into(),
            rhost: Some("192.0.2.7".into()),
            tty: Some("ssh".into()),
        }
    }
    fn verdict(decision: LoginDecision, message: Option<&str>) -> Result<Response, &'static str> {
        Ok(Response::Login(LoginVerdict {
            decision,
            message: message.map(String::from),
            lease: None,
        }))
    }
    const NOGROUPS: Groups = Groups(&[]);

    #[test]
    fn daemon_verdicts_map_to_pam_codes() {
        let a = Args::default();
        let mut d = Fake(verdict(LoginDecision::Allow, None), vec![]);
        assert_eq!(
            account(&a, &q("alice"), &NOGROUPS, &mut d).code,
            PamCode::Success
        );
        assert_eq!(d.1, vec![Request::LoginCheck(q("alice"))]);
        let mut d = Fake(
            verdict(LoginDecision::Deny, Some("request prod-shell")),
            vec![],
        );
        let o = account(&a, &q("alice"), &NOGROUPS, &mut d);
        assert_eq!(o.code, PamCode::PermDenied);
        assert_eq!(o.user_message.as_deref(), Some("request prod-shell"));
        let mut d = Fake(verdict(LoginDecision::Ignore, None), vec![]);
        assert_eq!(
            account(&a, &q("alice"), &NOGROUPS, &mut d).code,
            PamCode::Ignore
        );
    }

    #[test]
    fn unreachable_daemon_fails_closed_unless_told_otherwise() {
        let down = || Fake(Err("connection refused"), vec![]);
        let closed = Args::default();
        let o = account(&closed, &q("alice"), &NOGROUPS, &mut down());
        assert_eq!(o.code, PamCode::AuthInfoUnavail);
        assert!(o.user_message.unwrap().contains("unavailable"));
        assert!(o.log[0].0 && o.log[0].1.contains("fail=closed"));
        assert_eq!(
            open_session(&closed, &q("alice"), &NOGROUPS, &mut down()).code,
            PamCode::SessionErr
        );
        let open = Args::parse(["fail=open"]).unwrap();
        assert_eq!(
            account(&open, &q("alice"), &NOGROUPS, &mut down()).code,
            PamCode::Ignore
        );
        // A daemon that answers but cannot decide (its audit log failed…) means no, even with
        // fail=open; only "busy" counts as unavailable.
        let answer = |kind| {
            Ok(Response::Error(ErrorReply {
                kind,
                message: "x".into(),
            }))
        };
        for args in [&closed, &open] {
            for kind in [
                ErrorKind::Internal,
                ErrorKind::AuditFailed,
                ErrorKind::BadRequest,
            ] {
                let o = account(args, &q("a"), &NOGROUPS, &mut Fake(answer(kind), vec![]));
                assert_eq!(o.code, PamCode::AuthInfoUnavail, "{kind:?}");
                let o = open_session(args, &q("a"), &NOGROUPS, &mut Fake(answer(kind), vec![]));
                assert_eq!(o.code, PamCode::SessionErr, "{kind:?}");
            }
        }
        let busy = Fake(answer(ErrorKind::Busy), vec![]);
        assert_eq!(
            account(&open, &q("a"), &NOGROUPS, &mut { busy }).code,
            PamCode::Ignore
        );
        let odd = Ok(Response::Session { id: 1, lease: None });
        assert_eq!(
            account(&closed, &q("a"), &NOGROUPS, &mut Fake(odd, vec![])).code,
            PamCode::AuthInfoUnavail
        );
    }

    #[test]
    fn log_lines_say_what_the_daemon_answered() {
        let a = Args::default();
        let error = || {
            Ok(Response::Error(ErrorReply {
                kind: ErrorKind::AuditFailed,
                message: "audit log full".into(),
            }))
        };
        let odd = || Ok(Response::Session { id: 1, lease: None });
        let o = account(&a, &q("a"), &NOGROUPS, &mut Fake(error(), vec![]));
        assert_eq!(
            o.log,
            [(
                true,
                "account: a via sshd: refused, the daemon could not decide: audit log full".into()
            )]
        );
        let o = account(&a, &q("a"), &NOGROUPS, &mut Fake(odd(), vec![]));
        assert_eq!(
            o.log,
            [(true, "account: a via sshd: refused, the daemon could not decide: unexpected answer Session { id: 1, lease: None }".into())]
        );
        let o = close_session(&a, Some(9), &mut Fake(error(), vec![]));
        assert_eq!(o.log, [(true, "closing session 9: audit log full".into())]);
        let o = close_session(
            &a,
            Some(9),
            &mut Fake(verdict(LoginDecision::Allow, None), vec![]),
        );
        assert_eq!(
            o.log,
            [(true, "closing session 9: unexpected answer Login(LoginVerdict { decision: Allow, message: None, lease: None })".into())]
        );
    }

    #[test]
    fn exempt_users_and_groups_never_ask() {
        let a = Args::parse(["exempt=root,ops", "exempt_group=console"]).unwrap();
        let g = Groups(&[("carol", "console")]);
        for u in ["root", "ops", "carol"] {
            let mut d = Fake(Err("down"), vec![]);
            assert_eq!(account(&a, &q(u), &g, &mut d).code, PamCode::Ignore, "{u}");
            assert_eq!(
                open_session(&a, &q(u), &g, &mut d).code,
                PamCode::Ignore,
                "{u}"
            );
            assert!(d.1.is_empty(), "{u}: asked the daemon");
        }
        let mut d = Fake(Err("down"), vec![]);
        assert_eq!(
            account(&a, &q("dave"), &g, &mut d).code,
            PamCode::AuthInfoUnavail
        );
    }

    #[test]
    fn sessions_register_and_close() {
        let a = Args::default();
        let mut d = Fake(
            Ok(Response::Session {
                id: 9,
                lease: Some(4),
            }),
            vec![],
        );
        let o = open_session(&a, &q("alice"), &NOGROUPS, &mut d);
        assert_eq!((o.code, o.session_id), (PamCode::Success, Some(9)));
        let mut d = Fake(verdict(LoginDecision::Deny, Some("lease ended")), vec![]);
        let o = open_session(&a, &q("alice"), &NOGROUPS, &mut d);
        assert_eq!(o.code, PamCode::SessionErr);
        let mut d = Fake(Err("down"), vec![]);
        assert_eq!(close_session(&a, Some(9), &mut d).code, PamCode::Success);
        assert_eq!(close_session(&a, None, &mut d).code, PamCode::Ignore);
        assert_eq!(d.1, vec![Request::SessionClose { id: 9 }]);
    }
}
