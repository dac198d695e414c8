//! Module arguments from the PAM stack line, parsed strictly: a typo in
//! `/etc/pam.d/sshd` must not quietly turn gating off, so anything unknown is an error (and
//! the module denies, having logged why).

use std::fmt;
use std::path::PathBuf;
use std::time::Duration;

/// What to do when the daemon cannot be asked (not running, timed out, answered nonsense).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FailMode {
    /// Deny every identity that is not exempt.
    Closed,
    /// Step aside (PAM_IGNORE): the rest of the stack decides.
    Open,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Args {
    pub socket: PathBuf,
    pub timeout: Duration,
    pub fail: FailMode,
    /// Never gated, even when the daemon is down.
    pub exempt_users: Vec<String>,
    pub exempt_group: Option<String>,
    pub debug: bool,
    /// Test builds only: panic inside the entry point (the panic must become a denial).
    pub inject_panic: bool,
}

impl Default for Args {
    fn default() -> Self {
        Args {
            socket: PathBuf::from(elevate_proto::DEFAULT_SOCKET),
            timeout: Duration::from_millis(2000),
            fail: FailMode::Closed,
            exempt_users: Vec::new(),
            exempt_group: None,
            debug: false,
            inject_panic: false,
        }
    }
}

/// Longest timeout accepted: a login blocked longer than this is worse than a denial.
const MAX_TIMEOUT_MS: u64 = 60_000;

/// Why the module arguments were refused. `Display` is the line logged to syslog.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ArgsError {
    /// `socket=` with a relative path.
    SocketNotAbsolute(String),
    /// `timeout_ms=` not a number of milliseconds in range.
    Timeout(String),
    /// `fail=` neither `closed` nor `open`.
    FailMode(String),
    /// `exempt=LIST` naming something that is not a user name.
    ExemptUser { list: String, user: String },
    /// `exempt_group=` not a group name.
    ExemptGroup(String),
    /// An argument the module does not know (the whole argument).
    Unknown(String),
}

impl fmt::Display for ArgsError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ArgsError::SocketNotAbsolute(v) => write!(f, "socket={v}: must be an absolute path"),
            ArgsError::Timeout(v) => {
                write!(
                    f,
                    "timeout_ms={v}: expected milliseconds, 1 to {MAX_TIMEOUT_MS}"
                )
            }
            ArgsError::FailMode(v) => write!(f, "fail={v}: expected fail=closed or fail=open"),
            ArgsError::ExemptUser { list, user } => {
                write!(f, "exempt={list}: `{user}` is not a user name")
            }
            ArgsError::ExemptGroup(v) => write!(f, "exempt_group={v}: not a group name"),
            ArgsError::Unknown(arg) => write!(
                f,
                "unknown argument `{arg}` (known: socket=PATH timeout_ms=N \
                 fail=closed|open exempt=USER,... exempt_group=NAME debug)"
            ),
        }
    }
}

impl std::error::Error for ArgsError {}

impl Args {
    pub fn parse<'a>(args: impl IntoIterator<Item = &'a str>) -> Result<Args, ArgsError> {
        let mut a = Args::default();
        for arg in args {
            let (key, value) = match arg.split_once('=') {
                Some((k, v)) => (k, Some(v)),
                None => (arg, None),
            };
            match (key, value) {
                ("debug", None) => a.debug = true,
                ("socket", Some(v)) => {
                    if !v.starts_with('/') {
                        return Err(ArgsError::SocketNotAbsolute(v.to_string()));
                    }
                    a.socket = PathBuf::from(v);
                }
                ("timeout_ms", Some(v)) => {
                    let ms: u64 = v
                        .parse()
                        .ok()
                        .filter(|ms| (1..=MAX_TIMEOUT_MS).contains(ms))
                        .ok_or_else(|| ArgsError::Timeout(v.to_string()))?;
                    a.timeout = Duration::from_millis(ms);
                }
                ("fail", Some("closed")) => a.fail = FailMode::Closed,
                ("fail", Some("open")) => a.fail = FailMode::Open,
                ("fail", Some(v)) => return Err(ArgsError::FailMode(v.to_string())),
                ("exempt", Some(v)) => {
                    for u in v.split(',') {
                        if !valid_name(u) {
                            return Err(ArgsError::ExemptUser {
                                list: v.to_string(),
                                user: u.to_string(),
                            });
                        }
                        a.exempt_users.push(u.to_string());
                    }
                }
                ("exempt_group", Some(v)) => {
                    if !valid_name(v) {
                        return Err(ArgsError::ExemptGroup(v.to_string()));
                    }
                    a.exempt_group = Some(v.to_string());
                }
                #[cfg(feature = "panic-injection")]
                ("inject_panic", None) => a.inject_panic = true,
                _ => return Err(ArgsError::Unknown(arg.to_string())),
            }
        }
        Ok(a)
    }
}

/// A user or group name as shadow-utils accepts it (and nothing that could confuse a log line).
fn valid_name(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 64
        && !s.starts_with('-')
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'.' | b'$'))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults() {
        let a = Args::parse([]).unwrap();
        assert_eq!(a, Args::default());
        assert_eq!(a.fail, FailMode::Closed);
        assert_eq!(a.timeout, Duration::from_secs(2));
    }

    #[test]
    fn every_argument() {
        let a = Args::parse([
            "socket=/tmp/s.sock",
            "timeout_ms=150",
            "fail=open",
            "exempt=root,ops",
            "exempt_group=wheel",
            "debug",
        ])
        .unwrap();
        assert_eq!(a.socket, PathBuf::from("/tmp/s.sock"));
        assert_eq!(a.timeout, Duration::from_millis(150));
        assert_eq!(a.fail, FailMode::Open);
        assert_eq!(a.exempt_users, ["root", "ops"]);
        assert_eq!(a.exempt_group.as_deref(), Some("wheel"));
        assert!(a.debug);
    }

    #[test]
    fn anything_unexpected_is_an_error() {
        for bad in [
            "fail=maybe",
            "fail",
            "timeout_ms=0",
            "timeout_ms=-1",
            "timeout_ms=99999999",
            "timeout_ms=1s",
            "socket=relative.sock",
            "socket",
            "exempt=",
            "exempt=root,,ops",
            "exempt=a b",
            "exempt_group=",
            "debug=1",
            "Debug",
            "faill=open",
            "inject_panic",
            "",
        ] {
            let r = Args::parse([bad]);
            assert!(r.is_err(), "{bad:?} accepted: {r:?}");
        }
        let msg = Args::parse(["nosuch"]).unwrap_err().to_string();
        assert!(msg.contains("unknown argument `nosuch`"), "{msg}");
    }

    #[test]
    fn messages_are_the_lines_syslog_gets() {
        for (arg, want) in [
            ("socket=s", "socket=s: must be an absolute path"),
            (
                "timeout_ms=0",
                "timeout_ms=0: expected milliseconds, 1 to 60000",
            ),
            (
                "fail=maybe",
                "fail=maybe: expected fail=closed or fail=open",
            ),
            ("exempt=a,,b", "exempt=a,,b: `` is not a user name"),
            ("exempt_group=-x", "exempt_group=-x: not a group name"),
            (
                "x=1",
                "unknown argument `x=1` (known: socket=PATH timeout_ms=N fail=closed|open \
                 exempt=USER,... exempt_group=NAME debug)",
            ),
        ] {
            assert_eq!(Args::parse([arg]).unwrap_err().to_string(), want);
        }
    }
}
