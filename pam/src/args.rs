//! Module arguments from the PAM stack line, parsed strictly: a typo in
//! `/etc/pam.d/sshd` must not quietly turn gating off, so anything unknown is an error (and
//! the module denies, having logged why).

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

impl Args {
    pub fn parse<'a>(args: impl IntoIterator<Item = &'a str>) -> Result<Args, String> {
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
                        return Err(format!("socket={v}: must be an absolute path"));
                    }
                    a.socket = PathBuf::from(v);
                }
                ("timeout_ms", Some(v)) => {
                    let ms: u64 = v
                        .parse()
                        .ok()
                        .filter(|ms| (1..=MAX_TIMEOUT_MS).contains(ms))
                        .ok_or_else(|| {
                            format!("timeout_ms={v}: expected milliseconds, 1 to {MAX_TIMEOUT_MS}")
                        })?;
                    a.timeout = Duration::from_millis(ms);
                }
                ("fail", Some("closed")) => a.fail = FailMode::Closed,
                ("fail", Some("open")) => a.fail = FailMode::Open,
                ("fail", Some(v)) => {
                    return Err(format!("fail={v}: expected fail=closed or fail=open"))
                }
                ("exempt", Some(v)) => {
                    for u in v.split(',') {
                        if !valid_name(u) {
                            return Err(format!("exempt={v}: `{u}` is not a user name"));
                        }
                        a.exempt_users.push(u.to_string());
                    }
                }
                ("exempt_group", Some(v)) => {
                    if !valid_name(v) {
                        return Err(format!("exempt_group={v}: not a group name"));
                    }
                    a.exempt_group = Some(v.to_string());
                }
                #[cfg(feature = "panic-injection")]
                ("inject_panic", None) => a.inject_panic = true,
                _ => {
                    return Err(format!(
                        "unknown argument `{arg}` (known: socket=PATH timeout_ms=N \
                         fail=closed|open exempt=USER,... exempt_group=NAME debug)"
                    ))
                }
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
        let msg = Args::parse(["nosuch"]).unwrap_err();
        assert!(msg.contains("unknown argument `nosuch`"), "{msg}");
    }
}
