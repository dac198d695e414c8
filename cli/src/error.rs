//! [`Failure`]: every way a command can fail, each with the sentence printed after
//! `elevate: ` and the exit code scripts rely on (from [`elevate_proto::exit`]).

use crate::output::clean;
use elevate_proto::{exit, ClientError, ErrorKind, ErrorReply, Response};
use std::ffi::OsString;
use std::fmt;
use std::path::PathBuf;

/// Why a command could not do its job. `Display` is the user-facing sentence (without the
/// `elevate: ` prefix); [`Failure::code`] is the exit status that goes with it.
#[derive(Debug)]
pub enum Failure {
    // The command line and the configuration.
    /// `--config` names a file that does not exist.
    NoSuchConfig(PathBuf),
    /// The configuration file could not be read or parsed (the policy crate's message).
    Config(elevate_policy::config::ConfigError),
    /// An argument of the command is not UTF-8.
    NotUtf8Argument(OsString),
    /// The command name is the empty string.
    EmptyCommandName,
    /// A relative command path could not be made absolute.
    CannotResolve {
        name: String,
        source: std::io::Error,
    },
    /// `elevate with` without a command.
    NoCommandGiven,
    /// `elevate with`: the command is not in the caller's PATH.
    NotInPath(String),
    /// `elevate with`: the command was found, but its path is not UTF-8.
    PathNotUtf8(PathBuf),

    // Talking to the daemon.
    /// The daemon could not be reached.
    Unreachable(ClientError),
    /// The connection broke, or an answer could not be read.
    Exchange(ClientError),
    /// The connection broke while `elevate run` or `elevate with` was under way.
    LostWhileRunning(Box<dyn std::error::Error>),
    /// The connection broke while `elevate request --wait` was waiting.
    LostWhileWaiting { id: u64, source: ClientError },
    /// The daemon did not decide in time; nothing was run.
    DecisionTimeout,
    /// The current directory could not be opened to hand it to the daemon.
    OpenCwd(std::io::Error),
    /// The signal self-pipe could not be set up.
    SignalSetup(std::io::Error),
    /// A signal arrived while a step-up question was asked.
    Interrupted(libc::c_int),
    /// A signal arrived before the command started: the request was abandoned.
    InterruptedBeforeStart(libc::c_int),

    // The daemon's answers.
    /// Policy said no.
    Denied {
        reason: String,
        hint: Option<String>,
    },
    /// The daemon could not handle the request.
    Daemon(ErrorReply),
    /// A lease or request id the daemon does not know (or the caller may not see).
    NoSuchLease(ErrorReply),
    /// An answer that does not fit the question.
    Unexpected(Box<Response>),

    // Offline commands.
    /// `--labels` with a pair that is not `key=value`.
    BadLabel(String),
    /// Policy paths that mix a directory with other paths.
    DirAmongFiles(PathBuf),
    /// `policy explain` on a policy that does not load.
    PolicyInvalid,
    /// `policy explain --user` names no account.
    NoSuchUser(String),
    /// The caller's uid has no account.
    NoAccount(elevate_base::Uid),
    /// `audit verify` could not read a log file.
    AuditUnreadable(std::io::Error),
}

/// The exit status for an error the daemon reports.
pub fn exit_for_error(kind: ErrorKind) -> i32 {
    match kind {
        ErrorKind::BadRequest => exit::USAGE,
        ErrorKind::RateLimited | ErrorKind::Busy | ErrorKind::StateFull => exit::TEMPFAIL,
        ErrorKind::SpawnFailed => exit::CANNOT_EXECUTE,
        ErrorKind::AuditFailed | ErrorKind::Internal => exit::SOFTWARE,
        ErrorKind::NotFound => exit::INVALID,
        ErrorKind::AuthenticationRequired => exit::DENIED,
    }
}

impl Failure {
    /// The exit status that goes with this failure.
    pub fn code(&self) -> i32 {
        use Failure::*;
        match self {
            NoSuchConfig(_) | Config(_) | NotUtf8Argument(_) | EmptyCommandName => exit::USAGE,
            CannotResolve { .. } | NoCommandGiven | PathNotUtf8(_) => exit::USAGE,
            BadLabel(_) | DirAmongFiles(_) | NoSuchUser(_) | NoAccount(_) => exit::USAGE,
            NotInPath(_) => exit::NOT_FOUND,
            Unreachable(_) | LostWhileWaiting { .. } => exit::UNAVAILABLE,
            Exchange(_) | LostWhileRunning(_) | DecisionTimeout => exit::SOFTWARE,
            OpenCwd(_) | SignalSetup(_) | Unexpected(_) => exit::SOFTWARE,
            Interrupted(sig) | InterruptedBeforeStart(sig) => exit::SIGNAL_BASE + sig,
            Denied { .. } => exit::DENIED,
            Daemon(e) | NoSuchLease(e) => exit_for_error(e.kind),
            PolicyInvalid => exit::INVALID,
            AuditUnreadable(_) => exit::NOINPUT,
        }
    }
}

impl fmt::Display for Failure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        use Failure::*;
        match self {
            NoSuchConfig(p) => write!(f, "{}: no such configuration file", p.display()),
            Config(e) => write!(f, "configuration: {e}"),
            NotUtf8Argument(a) => {
                write!(f, "argument {a:?} is not valid UTF-8; elevate passes text only")
            }
            EmptyCommandName => f.write_str("empty command name"),
            CannotResolve { name, source } => write!(f, "cannot resolve {name}: {source}"),
            NoCommandGiven => f.write_str("no command given: elevate with ID -- CMD [ARG...]"),
            NotInPath(name) => write!(f, "{}: command not found in your PATH", clean(name)),
            PathNotUtf8(p) => write!(f, "{}: its path is not valid UTF-8", p.display()),
            Unreachable(ClientError::Connect { socket, source }) => write!(
                f,
                "cannot reach elevated at {}: {source} — is the daemon running? (start it: systemctl start elevated)",
                socket.display()
            ),
            Unreachable(e) | Exchange(e) => write!(f, "{e}"),
            LostWhileRunning(e) => write!(
                f,
                "lost the connection to elevated ({e}); the daemon ends the command when its client is gone"
            ),
            LostWhileWaiting { id, source } => write!(
                f,
                "lost the connection to elevated while waiting ({source}); request {id} may still be pending: elevate leases"
            ),
            DecisionTimeout => f.write_str("elevated did not answer within 60 s; nothing was run"),
            OpenCwd(e) => write!(f, "cannot open the current directory: {e}"),
            SignalSetup(e) => write!(f, "signal setup: {e}"),
            Interrupted(_) => f.write_str("interrupted"),
            InterruptedBeforeStart(_) => f.write_str("interrupted before the command started"),
            Denied { reason, hint } => {
                write!(f, "denied: {reason}")?;
                match hint {
                    Some(h) => write!(f, "\nelevate: {h}"),
                    None => Ok(()),
                }
            }
            Daemon(e) => f.write_str(&e.message),
            NoSuchLease(e) => write!(
                f,
                "{}\nelevate: see your leases and requests with: elevate leases",
                e.message
            ),
            Unexpected(r) => write!(f, "unexpected answer from elevated: {r:?}"),
            BadLabel(pair) => write!(f, "--labels: {pair:?} is not key=value"),
            DirAmongFiles(d) => write!(f, "{}: give either one directory or files", d.display()),
            PolicyInvalid => {
                f.write_str("the policy is invalid; fix the errors above (elevate policy check)")
            }
            NoSuchUser(u) => write!(f, "no such user: {u}"),
            NoAccount(uid) => write!(f, "uid {uid} has no user account"),
            AuditUnreadable(e) => write!(f, "cannot read the audit log: {e}"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn daemon_errors_keep_their_exit_codes() {
        let e = |kind| {
            Failure::Daemon(ErrorReply {
                kind,
                message: "m".into(),
            })
            .code()
        };
        assert_eq!(e(ErrorKind::BadRequest), exit::USAGE);
        assert_eq!(e(ErrorKind::Busy), exit::TEMPFAIL);
        assert_eq!(e(ErrorKind::StateFull), exit::TEMPFAIL);
        assert_eq!(e(ErrorKind::NotFound), exit::INVALID);
        let denied = Failure::Denied {
            reason: "no".into(),
            hint: Some("ask".into()),
        };
        assert_eq!(denied.to_string(), "denied: no\nelevate: ask");
        assert_eq!(denied.code(), exit::DENIED);
        assert_eq!(Failure::InterruptedBeforeStart(2).code(), 130);
        assert_eq!(
            Failure::NotInPath("x\x1b".into()).to_string(),
            "x\\u{1b}: command not found in your PATH"
        );
    }
}
