//! The process table as the core sees it (`ProcessTable`), and the real one over /proc,
//! kill(2) and pidfds: a process is always named by pid and start time, so a recycled pid is
//! never signalled by mistake.
//!
//! Finding processes that still carry a group after its lease ended matters most: a process
//! keeps the supplementary groups it was started with whatever /etc/group says later, so
//! removing the membership is not enough; the scan looks for the holder's processes whose
//! group list still contains a revoked gid.

use elevate_base::{Gid, Pid, Uid};
use std::collections::{BTreeSet, HashMap};
use std::future::Future;
use std::pin::Pin;

/// For each uid, the gids whose carriers are wanted.
pub type Carriers = HashMap<Uid, BTreeSet<Gid>>;

/// A future the core can hold without knowing what it waits on.
pub type Waiting = Pin<Box<dyn Future<Output = ()> + Send>>;

/// The process table as the core sees it.
pub trait ProcessTable: Send + Sync {
    /// For each uid, its processes whose groups include one of that uid's gids.
    fn carrying_any(&self, targets: &Carriers) -> Vec<(Uid, ProcId)>;
    /// The process's start time, `None` when there is no such process.
    fn start_time(&self, pid: Pid) -> Option<u64>;
    /// The process's real uid.
    fn owner(&self, pid: Pid) -> Option<Uid>;
    /// `root` and its descendants.
    fn tree(&self, root: ProcId) -> Vec<ProcId>;
    /// Signal `p` if it is still the same process; whether it was sent.
    fn signal(&self, p: ProcId, sig: libc::c_int) -> bool;
    /// Resolves when `p` exits; `None` when it is already gone (or cannot be watched).
    fn watch_exit(&self, p: ProcId) -> Option<Waiting>;
}

/// The machine's processes, through /proc, kill(2) and pidfds.
pub struct Proc;

impl ProcessTable for Proc {
    fn carrying_any(&self, targets: &Carriers) -> Vec<(Uid, ProcId)> {
        tokio::task::block_in_place(|| carrying_any(targets))
    }

    fn start_time(&self, pid: Pid) -> Option<u64> {
        start_time(pid)
    }

    fn owner(&self, pid: Pid) -> Option<Uid> {
        held(pid)?.uids.first().copied()
    }

    fn tree(&self, root: ProcId) -> Vec<ProcId> {
        tokio::task::block_in_place(|| tree(root))
    }

    fn signal(&self, p: ProcId, sig: libc::c_int) -> bool {
        signal(p, sig)
    }

    /// Checked after opening: if the start time still matches, the pidfd is that process (a
    /// pid recycled before pidfd_open would show another start time). The pidfd, not /proc,
    /// then says when it exits (an unreaped zombie still shows its old start time in /proc).
    fn watch_exit(&self, p: ProcId) -> Option<Waiting> {
        let fd = crate::os::pidfd_open(p.pid.get()).ok()?;
        if start_time(p.pid) != Some(p.start_time) {
            return None;
        }
        let afd = crate::os::async_fd(fd).ok()?;
        Some(Box::pin(async move {
            let _ = afd.readable().await;
        }))
    }
}

/// A process as identified for termination: pid plus start time, so a recycled pid is never
/// signalled by mistake.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct ProcId {
    pub pid: Pid,
    pub start_time: u64,
}

/// In one pass over /proc: for each uid, its processes (by any of their four uids) that hold
/// any of that uid's gids in any way (see `parse_status`). Each status file is parsed once, whatever the number of uids.
fn carrying_any(targets: &Carriers) -> Vec<(Uid, ProcId)> {
    let mut out = Vec::new();
    if targets.is_empty() {
        return out;
    }
    for pid in pids() {
        let Some(held) = held(pid) else {
            continue;
        };
        let hit = held.uids.iter().copied().find(|uid| {
            targets
                .get(uid)
                .is_some_and(|gids| held.all_gids().any(|g| gids.contains(g)))
        });
        if let (Some(uid), Some(start_time)) = (hit, start_time(pid)) {
            out.push((uid, ProcId { pid, start_time }));
        }
    }
    out
}

/// Every pid in /proc now (none if /proc cannot be read).
fn pids() -> impl Iterator<Item = Pid> {
    std::fs::read_dir("/proc")
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| e.file_name().to_str()?.parse::<i32>().ok())
        .map(Pid)
}

/// The ids a process holds, from /proc/PID/status.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Held {
    /// Real, effective, saved and filesystem uid, in that order.
    pub uids: Vec<Uid>,
    /// Real, effective, saved and filesystem gid, in that order (a set-gid program runs with
    /// a granted gid as its effective one).
    pub gids: Vec<Gid>,
    /// The supplementary groups.
    pub groups: Vec<Gid>,
}

impl Held {
    /// Every gid the process can act with: its four gids and its supplementary groups.
    fn all_gids(&self) -> impl Iterator<Item = &Gid> {
        self.gids.iter().chain(&self.groups)
    }
}

/// The ids process `pid` holds now (`None` if it is gone).
pub fn held(pid: Pid) -> Option<Held> {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .map(|s| parse_status(&s))
}

fn parse_status(status: &str) -> Held {
    let numbers = |rest: &str| {
        rest.split_whitespace()
            .filter_map(|v| v.parse::<u32>().ok())
            .collect::<Vec<_>>()
    };
    let mut held = Held::default();
    for line in status.lines() {
        if let Some(rest) = line.strip_prefix("Uid:") {
            held.uids = numbers(rest).into_iter().map(Uid).collect();
        } else if let Some(rest) = line.strip_prefix("Gid:") {
            held.gids = numbers(rest).into_iter().map(Gid).collect();
        } else if let Some(rest) = line.strip_prefix("Groups:") {
            held.groups = numbers(rest).into_iter().map(Gid).collect();
        }
    }
    held
}

/// Whether a /proc/PID/status text belongs to `uid` and holds one of `gids`.
#[cfg(test)]
fn matches_status(status: &str, uid: Uid, gids: &BTreeSet<Gid>) -> bool {
    let held = parse_status(status);
    held.uids.contains(&uid) && held.all_gids().any(|g| gids.contains(g))
}

/// Field 22 of /proc/PID/stat (start time in clock ticks since boot).
pub fn start_time(pid: Pid) -> Option<u64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let rest = &stat[stat.rfind(')')? + 1..];
    rest.split_whitespace().nth(19)?.parse().ok()
}

/// `root` and every process descended from it (by parent pid), in one pass over /proc.
/// A session's shell and its children; whatever double-forked away to init is not found here
/// (the revoked-group scan catches those when the lease granted groups).
fn tree(root: ProcId) -> Vec<ProcId> {
    let mut parent: HashMap<Pid, Vec<Pid>> = HashMap::new();
    for pid in pids() {
        if let Some(ppid) = ppid(pid) {
            parent.entry(ppid).or_default().push(pid);
        }
    }
    if start_time(root.pid) != Some(root.start_time) {
        return Vec::new();
    }
    let mut out = vec![root];
    let mut i = 0;
    while i < out.len() && out.len() < 100_000 {
        for &child in parent
            .get(&out[i].pid)
            .map(Vec::as_slice)
            .unwrap_or_default()
        {
            if let Some(start_time) = start_time(child) {
                out.push(ProcId {
                    pid: child,
                    start_time,
                });
            }
        }
        i += 1;
    }
    out
}

/// Field 4 of /proc/PID/stat.
fn ppid(pid: Pid) -> Option<Pid> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let rest = &stat[stat.rfind(')')? + 1..];
    rest.split_whitespace().nth(1)?.parse().ok().map(Pid)
}

/// Signal `p` only if it is still the same process.
fn signal(p: ProcId, sig: libc::c_int) -> bool {
    if start_time(p.pid) != Some(p.start_time) {
        return false;
    }
    p.pid.get() > 0 && elevate_base::os::process::kill(p.pid, sig).is_ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn status_matching() {
        let gids: BTreeSet<Gid> = [Gid(1500)].into_iter().collect();
        let s = "Name:\tbash\nUid:\t1000\t1000\t1000\t1000\nGid:\t1000\t1000\t1000\t1000\nGroups:\t27 1000 1500 \n";
        assert!(matches_status(s, Uid(1000), &gids));
        assert!(!matches_status(s, Uid(1001), &gids));
        let s2 = s.replace("1500", "1501");
        assert!(!matches_status(&s2, Uid(1000), &gids));
        assert!(!matches_status("garbage", Uid(1000), &gids));
        let setuid = "Uid:\t1000\t0\t0\t0\nGroups:\t1500\n";
        assert!(
            matches_status(setuid, Uid(1000), &gids),
            "a setuid child of the holder still carries the group"
        );
        // A set-gid program: the granted gid as effective (or saved, or fs) gid only.
        for (i, _) in ["real", "effective", "saved", "fs"].iter().enumerate() {
            let mut g = ["1000"; 4];
            g[i] = "1500";
            let s = format!(
                "Uid:\t1000\t1000\t1000\t1000\nGid:\t{}\nGroups:\t1000\n",
                g.join("\t")
            );
            assert!(matches_status(&s, Uid(1000), &gids), "gid field {i}: {s}");
        }
        // Saved or fs uid of the holder counts too.
        let saved = "Uid:\t0\t0\t1000\t0\nGroups:\t1500\n";
        assert!(matches_status(saved, Uid(1000), &gids));
    }

    #[test]
    fn tree_finds_children() {
        let mut child = std::process::Command::new("sleep")
            .arg("5")
            .spawn()
            .unwrap();
        let me = Pid(std::process::id() as i32);
        let root = ProcId {
            pid: me,
            start_time: start_time(me).unwrap(),
        };
        let t = tree(root);
        assert_eq!(t[0], root);
        assert!(t.iter().any(|p| p.pid == Pid(child.id() as i32)), "{t:?}");
        let stale = ProcId {
            pid: me,
            start_time: root.start_time + 1,
        };
        assert!(tree(stale).is_empty());
        child.kill().unwrap();
        child.wait().unwrap();
    }

    #[test]
    fn own_start_time_is_readable() {
        let me = Pid(std::process::id() as i32);
        assert!(start_time(me).is_some());
        assert_eq!(start_time(Pid(-5)), None);
    }
}
