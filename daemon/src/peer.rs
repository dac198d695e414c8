//! Who is on the other end of a connection. The uid comes from SO_PEERCRED, captured by the
//! kernel at connect(2); nothing the client says can change it. The rest (exe, tty, login uid,
//! session) is read from /proc for the audit trail only and never used to decide.

use elevate_base::{Gid, Pid, Uid};
use serde_json::{json, Value};

#[derive(Debug, Clone)]
pub struct Peer {
    pub uid: Uid,
    /// The primary gid the kernel reported (`None` for a D-Bus caller whose process is gone).
    pub gid: Option<Gid>,
    pub pid: Option<Pid>,
    /// Filled in by the state loop from NSS; empty until then.
    pub user: String,
    pub exe: Option<String>,
    pub tty: Option<String>,
    pub loginuid: Option<Uid>,
    pub session: Option<u32>,
    /// The client's process session id (getsid), and its leader's start time: with the tty,
    /// what a step-up is cached for. The start time tells a session from a later one whose
    /// leader got the same pid.
    pub sid: Option<Pid>,
    pub sid_start: Option<u64>,
    /// This request comes after a successful step-up authentication on this connection
    /// (set by the connection handler only, never from the wire).
    pub stepped_up: bool,
    /// How the request arrived: "socket" or "dbus".
    pub via: &'static str,
}

impl Peer {
    pub fn from_stream(stream: &tokio::net::UnixStream) -> std::io::Result<Peer> {
        let cred = stream.peer_cred()?;
        let (uid, gid) = (Uid(cred.uid()), Some(Gid(cred.gid())));
        Ok(Peer::describe(uid, gid, cred.pid().map(Pid), "socket"))
    }

    /// A D-Bus caller. The uid is what the bus daemon reports for the sender's connection
    /// (its SO_PEERCRED). The pid only feeds the audit record, and only while that process
    /// still runs as `uid` — a pid the caller vacated and someone else took is not described.
    /// No session id: a bus caller never shares a terminal's step-up cache.
    pub fn from_bus(uid: Uid, pid: Option<u32>) -> Peer {
        let pid = pid.and_then(|p| i32::try_from(p).ok()).map(Pid);
        let ids = pid.and_then(real_ids).filter(|(u, _)| *u == uid);
        let mut peer = Peer::describe(uid, ids.map(|(_, g)| g), ids.and(pid), "dbus");
        peer.sid = None;
        peer.sid_start = None;
        peer
    }

    fn describe(uid: Uid, gid: Option<Gid>, pid: Option<Pid>, via: &'static str) -> Peer {
        let proc_read = |what: &str| {
            pid.and_then(|p| std::fs::read_to_string(format!("/proc/{p}/{what}")).ok())
        };
        let exe = pid
            .and_then(|p| std::fs::read_link(format!("/proc/{p}/exe")).ok())
            .map(|p| p.display().to_string());
        // 4294967295 ((u32)-1) means "not set" for both.
        let id = |s: Option<String>| {
            s.and_then(|s| s.trim().parse::<u32>().ok())
                .filter(|v| *v != u32::MAX)
        };
        let stat = proc_read("stat");
        let tty = stat.as_deref().and_then(tty_name);
        let sid = stat.as_deref().and_then(session_id);
        let sid_start = sid.and_then(crate::effects::procs::start_time);
        Peer {
            uid,
            gid,
            pid,
            user: String::new(),
            exe,
            tty,
            loginuid: id(proc_read("loginuid")).map(Uid),
            session: id(proc_read("sessionid")),
            sid,
            sid_start,
            stepped_up: false,
            via,
        }
    }

    /// A caller with nothing but a uid, as tests of the core use it.
    #[cfg(test)]
    pub fn for_uid(uid: u32) -> Peer {
        Peer {
            uid: Uid(uid),
            gid: Some(Gid(uid)),
            pid: None,
            user: String::new(),
            exe: None,
            tty: None,
            loginuid: None,
            session: None,
            sid: None,
            sid_start: None,
            stepped_up: false,
            via: "socket",
        }
    }

    /// The `requester` object of audit records.
    pub fn audit_json(&self) -> Value {
        json!({
            "uid": self.uid,
            "gid": self.gid,
            "user": self.user,
            "pid": self.pid,
            "exe": self.exe,
            "tty": self.tty,
            "loginuid": self.loginuid,
            "session": self.session,
            "via": self.via,
        })
    }
}

/// The real uid and gid of a process.
fn real_ids(pid: Pid) -> Option<(Uid, Gid)> {
    let held = crate::effects::procs::held(pid)?;
    Some((*held.uids.first()?, *held.gids.first()?))
}

/// Field 6 of /proc/PID/stat: the process's session id.
fn session_id(stat: &str) -> Option<Pid> {
    let rest = &stat[stat.rfind(')')? + 1..];
    rest.split_whitespace().nth(3)?.parse().ok().map(Pid)
}

/// The controlling terminal from /proc/PID/stat field 7 (tty_nr), as a /dev path when it is a
/// pty or virtual console; otherwise "dev:MAJOR:MINOR".
fn tty_name(stat: &str) -> Option<String> {
    // comm (field 2) may contain spaces and parentheses: split after the last ')'.
    let rest = &stat[stat.rfind(')')? + 1..];
    let tty_nr: u32 = rest.split_whitespace().nth(4)?.parse().ok()?;
    if tty_nr == 0 {
        return None;
    }
    let major = (tty_nr >> 8) & 0xfff;
    let minor = (tty_nr & 0xff) | ((tty_nr >> 12) & 0xfff00);
    Some(match major {
        136..=143 => format!("/dev/pts/{}", (major - 136) * 256 + minor),
        4 if minor < 64 => format!("/dev/tty{minor}"),
        _ => format!("dev:{major}:{minor}"),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tty_from_stat() {
        let stat = "123 (a b) c) S 1 123 123 34817 123 0";
        assert_eq!(tty_name(stat).as_deref(), Some("/dev/pts/1"));
        let stat = "123 (x) S 1 123 123 0 -1 0";
        assert_eq!(tty_name(stat), None);
        assert_eq!(tty_name("garbage"), None);
        assert_eq!(tty_name("1 (x) S"), None);
    }

    #[test]
    fn bus_peer_keeps_the_bus_uid_and_describes_only_a_matching_process() {
        let me = std::process::id();
        let uid = elevate_base::os::process::getuid();
        let p = Peer::from_bus(uid, Some(me));
        assert_eq!(
            (p.uid, p.pid, p.via, p.sid),
            (uid, Some(Pid(me as i32)), "dbus", None)
        );
        // The process runs as someone else: the uid stays the bus's, the process is not described.
        let other = Uid(uid.get().wrapping_add(12345));
        let p = Peer::from_bus(other, Some(me));
        assert_eq!((p.uid, p.pid, p.exe.as_deref()), (other, None, None));
        assert_eq!(p.audit_json()["gid"], serde_json::Value::Null);
    }
}
