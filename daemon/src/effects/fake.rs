//! An in-memory machine behind every seam, for the core's tests: users, groups, processes,
//! the lease journal, the audit log and the clocks live in one [`Machine`]; each seam is a
//! thin view of it. What a real crash keeps (group files, the journal, the audit log, the
//! processes) stays in the machine, so a test can drop a core and build a new one over the
//! same machine ([`FakeWorld::world`] again), the way the daemon restarts.
//!
//! **Fault injection.** Every durable effect — a lease id reservation, a journal commit, a
//! group database rewrite, a durable audit write — is a numbered *step*. A test can make one kind of call fail
//! ([`Machine::fail`]), or stop the world at step `n` ([`Machine::crash_at`]): that effect and
//! every later one never happen, as if the machine lost power there. Counting the steps of a
//! transition once and stopping at each of them in turn enumerates every crash point.

use super::accounts::Accounts;
use super::audit::{AuditError, AuditEvent, AuditSink, Durable};
use super::audit_history::{AuditHistory, LeaseRecord};
use super::clock::Clock;
use super::groups::{GroupDatabase, GroupEditor, LOCK_WAIT};
use super::policy_files::PolicySource;
use super::procs::{Carriers, ProcId, ProcessTable, Waiting};
use super::wall::Terminals;
use crate::core::World;
use crate::lease::journal::{Kind, LeaseStore};
use crate::lease::model::Lease;
use crate::lease::reserve::{StateFull, StateWarning};
use crate::login::sessions::SessionBook;
use elevate_base::{Gid, Pid, Uid};
use elevate_groupdb::{Change, Outcome};
use elevate_policy::{LoadOptions, LoadOutcome, Passwd, Subject, System};
use serde_json::{Map, Value};
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::io;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant, SystemTime};
use tokio::sync::oneshot;

mod stores;

/// A fake process.
#[derive(Debug, Clone)]
pub struct FakeProc {
    /// Real and effective uid (a set-uid program has them differ).
    pub uid: Uid,
    pub euid: Uid,
    pub gids: Vec<Gid>,
    pub start_time: u64,
    pub parent: Pid,
    /// TERM does not end it (only KILL does).
    pub ignores_term: bool,
}

/// The kinds of durable effect, for [`Machine::fail`] and the step trace.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Effect {
    IdReservation,
    JournalCommit,
    GroupRewrite,
    AuditDurable,
    /// Not an effect of its own: the state directory is full and the journal's reserve is in
    /// use, so journal commits that may grant privilege and id reservations are refused with
    /// `StateFull` while endings are still written.
    StateDirFull,
}

/// Everything the fakes know. Public fields: tests set the machine up and read it back.
pub struct Machine {
    pub wall_ms: u64,
    /// Monotonic (and boot) time since the test started.
    pub mono: Duration,
    /// The boot it is: change it to simulate a reboot.
    pub boot_id: String,
    pub users: BTreeMap<Uid, Passwd>,
    /// Group name → (gid, members).
    pub groups: BTreeMap<String, (Gid, Vec<String>)>,
    /// Paths that exist and are executable (canonical already).
    pub executables: BTreeSet<PathBuf>,
    pub procs: BTreeMap<Pid, FakeProc>,
    /// Signals sent: (pid, signal).
    pub signals: Vec<(Pid, i32)>,
    /// Every lease record committed, in order (the journal's lines).
    pub journal: Vec<Lease>,
    /// The lease ids reserved so far (`lease-ids`).
    pub ids_reserved: u64,
    /// What the next core started over this machine is told was damaged.
    pub damage: Vec<String>,
    pub journal_damaged: bool,
    /// Every audit record written, in order, with whether it was durable.
    pub audit: Vec<(AuditEvent, Map<String, Value>, bool)>,
    /// How many times the group files were rewritten.
    pub group_rewrites: usize,
    /// Another program holds `/etc/.pwd.lock`: group rewrites wait (on the editor's thread,
    /// in real time) until it is let go, or give up after `LOCK_WAIT`.
    pub group_lock_held: bool,
    /// The policy, as the text of one file; `None`: the policy directory is missing.
    pub policy: Option<String>,
    /// Owners of pseudo-terminals, and what was written to them.
    pub ttys: BTreeSet<Uid>,
    pub notices: Vec<(BTreeSet<Uid>, String)>,
    /// Durable effects so far (every attempt counts, failed or not).
    pub steps: usize,
    /// The effects in the order they were attempted.
    pub trace: Vec<Effect>,
    crash_at: Option<usize>,
    stopped: bool,
    failing: BTreeSet<Effect>,
    watchers: HashMap<Pid, Vec<oneshot::Sender<()>>>,
}

impl Machine {
    /// Stop the world at step `n` (0-based, counted from the machine's start): that effect
    /// and every later one never happen.
    pub fn crash_at(&mut self, n: usize) {
        self.crash_at = Some(n);
    }

    pub fn stopped(&self) -> bool {
        self.stopped
    }

    /// Power back on after a stop: effects happen again (nothing else changes).
    pub fn restart(&mut self) {
        self.stopped = false;
        self.crash_at = None;
        self.failing.clear();
    }

    /// Make every call of this kind fail (until [`Machine::heal`]).
    pub fn fail(&mut self, e: Effect) {
        self.failing.insert(e);
    }

    pub fn heal(&mut self) {
        self.failing.clear();
    }

    /// Group rewrites attempted so far, failed or not.
    pub fn group_rewrites_tried(&self) -> usize {
        self.trace
            .iter()
            .filter(|e| **e == Effect::GroupRewrite)
            .count()
    }

    /// Before a durable effect: may it happen?
    fn step(&mut self, e: Effect) -> io::Result<()> {
        let n = self.steps;
        self.steps += 1;
        self.trace.push(e);
        if self.crash_at == Some(n) {
            self.stopped = true;
        }
        if self.stopped {
            return Err(io::Error::other(format!("injected crash before {e:?}")));
        }
        if self.failing.contains(&e) {
            return Err(io::Error::other(format!("injected failure of {e:?}")));
        }
        Ok(())
    }

    /// Members of `group`, empty when there is no such group.
    pub fn members(&self, group: &str) -> Vec<String> {
        self.groups
            .get(group)
            .map(|(_, m)| m.clone())
            .unwrap_or_default()
    }

    /// The process exits (its watchers hear of it).
    pub fn exit(&mut self, pid: Pid) {
        self.procs.remove(&pid);
        for w in self.watchers.remove(&pid).unwrap_or_default() {
            let _ = w.send(());
        }
    }

    /// Names of the audit events written, in order.
    pub fn events(&self) -> Vec<&'static str> {
        self.audit.iter().map(|(e, _, _)| e.as_str()).collect()
    }

    /// The leases as a restarted daemon loads them: the last record of each id wins.
    pub fn journaled(&self) -> BTreeMap<u64, Lease> {
        self.journal.iter().map(|l| (l.id, l.clone())).collect()
    }

    fn groups_of(&self, user: &str, primary: Gid) -> Vec<(String, Gid)> {
        self.groups
            .iter()
            .filter(|(_, (gid, members))| *gid == primary || members.iter().any(|m| m == user))
            .map(|(name, (gid, _))| (name.clone(), *gid))
            .collect()
    }
}

/// The machine, shared by every seam built over it.
#[derive(Clone)]
pub struct FakeWorld {
    machine: Arc<Mutex<Machine>>,
    /// Where the policy text is written for the loader (removed on drop of the last clone).
    dir: Arc<TempDir>,
}

struct TempDir(PathBuf);

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

impl FakeWorld {
    pub fn new(policy: &str) -> FakeWorld {
        static NEXT: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
        let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let dir =
            std::env::temp_dir().join(format!("elevate-core-test-{}-{n}", std::process::id()));
        let machine = Machine {
            wall_ms: 1_800_000_000_000,
            mono: Duration::ZERO,
            boot_id: "boot-1".into(),
            users: BTreeMap::new(),
            groups: BTreeMap::new(),
            executables: BTreeSet::new(),
            procs: BTreeMap::new(),
            signals: Vec::new(),
            journal: Vec::new(),
            ids_reserved: 0,
            damage: Vec::new(),
            journal_damaged: false,
            audit: Vec::new(),
            group_rewrites: 0,
            group_lock_held: false,
            policy: Some(policy.to_string()),
            ttys: BTreeSet::new(),
            notices: Vec::new(),
            steps: 0,
            trace: Vec::new(),
            crash_at: None,
            stopped: false,
            failing: BTreeSet::new(),
            watchers: HashMap::new(),
        };
        FakeWorld {
            machine: Arc::new(Mutex::new(machine)),
            dir: Arc::new(TempDir(dir)),
        }
    }

    pub fn machine(&self) -> MutexGuard<'_, Machine> {
        // A test that panicked while holding the lock has failed already.
        self.machine.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// A user with a primary group of the same name and id.
    pub fn user(&self, name: &str, uid: u32) -> &Self {
        let mut m = self.machine();
        m.users.insert(
            Uid(uid),
            Passwd {
                name: name.into(),
                uid: Uid(uid),
                gid: Gid(uid),
                home: PathBuf::from(format!("/home/{name}")),
                shell: PathBuf::from("/bin/sh"),
            },
        );
        m.groups
            .entry(name.into())
            .or_insert((Gid(uid), Vec::new()));
        self
    }

    pub fn group(&self, name: &str, gid: u32, members: &[&str]) -> &Self {
        let members = members.iter().map(|s| s.to_string()).collect();
        self.machine()
            .groups
            .insert(name.into(), (Gid(gid), members));
        self
    }

    pub fn executable(&self, path: &str) -> &Self {
        self.machine().executables.insert(path.into());
        self
    }

    /// A process of `uid` holding these groups.
    pub fn process(&self, pid: i32, uid: u32, gids: &[u32]) -> ProcId {
        let start_time = 1000 + pid as u64;
        let (pid, uid) = (Pid(pid), Uid(uid));
        let p = FakeProc {
            uid,
            euid: uid,
            gids: gids.iter().copied().map(Gid).collect(),
            start_time,
            parent: Pid(1),
            ignores_term: false,
        };
        self.machine().procs.insert(pid, p);
        ProcId { pid, start_time }
    }

    /// Set the wall clock alone (an administrator or NTP moving it), forward or back.
    pub fn set_wall(&self, ms: u64) {
        self.machine().wall_ms = ms;
    }

    /// Move both clocks forward.
    pub fn advance(&self, d: Duration) {
        let mut m = self.machine();
        m.wall_ms += elevate_base::duration::millis(d);
        m.mono += d;
    }

    /// The seams over this machine, and what its journal holds: a core built from them is a
    /// daemon (re)starting on this machine.
    pub fn world(&self) -> World {
        let leases = self.machine().journaled();
        let (damage, journal_damaged) = {
            let mut m = self.machine();
            (
                std::mem::take(&mut m.damage),
                std::mem::take(&mut m.journal_damaged),
            )
        };
        World {
            clock: Arc::new(self.clone()),
            accounts: Box::new(self.clone()),
            groups: Arc::new(self.clone()),
            editor: GroupEditor::start(Arc::new(self.clone())).expect("start the group editor"),
            procs: Arc::new(self.clone()),
            audit: Arc::new(self.clone()),
            audit_history: Box::new(self.clone()),
            policy: Box::new(self.clone()),
            terminals: Box::new(self.clone()),
            journal: Box::new(self.clone()),
            leases,
            sessions: SessionBook::in_memory(Clock::now(self)),
            damage,
            journal_damaged,
        }
    }
}

/// The test's start, so that monotonic instants can be made from the machine's `mono`.
fn epoch() -> Instant {
    static EPOCH: std::sync::OnceLock<Instant> = std::sync::OnceLock::new();
    *EPOCH.get_or_init(Instant::now)
}

impl Clock for FakeWorld {
    fn wall_ms(&self) -> u64 {
        self.machine().wall_ms
    }

    fn now(&self) -> Instant {
        epoch() + self.machine().mono
    }

    fn boottime(&self) -> Option<Duration> {
        Some(self.machine().mono)
    }

    fn boot_id(&self) -> Option<String> {
        Some(self.machine().boot_id.clone())
    }
}

impl System for FakeWorld {
    fn user_exists(&self, name: &str) -> bool {
        self.machine().users.values().any(|p| p.name == name)
    }

    fn group_exists(&self, name: &str) -> bool {
        self.machine().groups.contains_key(name)
    }

    fn canonicalize(&self, path: &Path) -> Option<PathBuf> {
        let m = self.machine();
        m.executables.contains(path).then(|| path.to_path_buf())
    }

    fn is_executable(&self, path: &Path) -> bool {
        self.machine().executables.contains(path)
    }

    fn user_uid(&self, name: &str) -> Option<Uid> {
        self.machine()
            .users
            .values()
            .find(|p| p.name == name)
            .map(|p| p.uid)
    }
}

impl Accounts for FakeWorld {
    fn passwd_by_uid(&self, uid: Uid) -> Option<Passwd> {
        self.machine().users.get(&uid).cloned()
    }

    fn passwd_by_name(&self, name: &str) -> Option<Passwd> {
        self.machine()
            .users
            .values()
            .find(|p| p.name == name)
            .cloned()
    }

    fn subject_for(&self, pw: &Passwd) -> Subject {
        let groups = self.machine().groups_of(&pw.name, pw.gid);
        Subject {
            uid: pw.uid,
            user: pw.name.clone(),
            groups: groups.into_iter().map(|(n, _)| n).collect(),
        }
    }

    fn gids_for(&self, pw: &Passwd) -> Vec<Gid> {
        let mut gids = vec![pw.gid];
        for (_, gid) in self.machine().groups_of(&pw.name, pw.gid) {
            if !gids.contains(&gid) {
                gids.push(gid);
            }
        }
        gids
    }

    fn group_gid(&self, name: &str) -> Option<Gid> {
        self.machine().groups.get(name).map(|(gid, _)| *gid)
    }

    fn system(&self) -> &dyn System {
        self
    }

    /// Never changes: the core's identity cache expires entries by age (on the machine's
    /// clock), and the core clears it itself after every group edit it makes.
    fn stamp(&self) -> (SystemTime, SystemTime) {
        (SystemTime::UNIX_EPOCH, SystemTime::UNIX_EPOCH)
    }
}

impl GroupDatabase for FakeWorld {
    fn gid_of(&self, group: &str) -> io::Result<Option<Gid>> {
        Ok(self.machine().groups.get(group).map(|(gid, _)| *gid))
    }

    fn members_of(&self, group: &str) -> io::Result<Option<Vec<String>>> {
        Ok(self.machine().groups.get(group).map(|(_, m)| m.clone()))
    }

    fn apply(&self, changes: &[Change]) -> io::Result<Vec<Outcome>> {
        let start = std::time::Instant::now();
        while self.machine().group_lock_held {
            if start.elapsed() > LOCK_WAIT {
                return Err(io::Error::new(
                    io::ErrorKind::TimedOut,
                    "/etc/.pwd.lock is held",
                ));
            }
            std::thread::sleep(Duration::from_millis(1));
        }
        let mut m = self.machine();
        m.step(Effect::GroupRewrite)?;
        m.group_rewrites += 1;
        let mut out = Vec::new();
        for c in changes {
            let (user, group, add) = match c {
                Change::Add { user, group } => (user, group, true),
                Change::Remove { user, group } => (user, group, false),
            };
            let Some((_, members)) = m.groups.get_mut(group) else {
                out.push(Outcome::NoSuchGroup);
                continue;
            };
            let present = members.iter().any(|u| u == user);
            out.push(match (add, present) {
                (true, false) => {
                    members.push(user.clone());
                    Outcome::Added
                }
                (true, true) => Outcome::AlreadyMember,
                (false, true) => {
                    members.retain(|u| u != user);
                    Outcome::Removed
                }
                (false, false) => Outcome::NotMember,
            });
        }
        Ok(out)
    }
}

impl ProcessTable for FakeWorld {
    /// Like the real scan: a process of the uid by real or effective uid.
    fn carrying_any(&self, targets: &Carriers) -> Vec<(Uid, ProcId)> {
        let m = self.machine();
        m.procs
            .iter()
            .filter_map(|(pid, p)| {
                let (uid, gids) = [p.uid, p.euid]
                    .into_iter()
                    .find_map(|u| targets.get(&u).map(|g| (u, g)))?;
                let id = ProcId {
                    pid: *pid,
                    start_time: p.start_time,
                };
                p.gids.iter().any(|g| gids.contains(g)).then_some((uid, id))
            })
            .collect()
    }

    fn start_time(&self, pid: Pid) -> Option<u64> {
        self.machine().procs.get(&pid).map(|p| p.start_time)
    }

    fn owner(&self, pid: Pid) -> Option<Uid> {
        self.machine().procs.get(&pid).map(|p| p.uid)
    }

    fn tree(&self, root: ProcId) -> Vec<ProcId> {
        let m = self.machine();
        if m.procs.get(&root.pid).map(|p| p.start_time) != Some(root.start_time) {
            return Vec::new();
        }
        let mut out = vec![root];
        let mut i = 0;
        while i < out.len() {
            let parent = out[i].pid;
            for (pid, p) in m.procs.iter().filter(|(_, p)| p.parent == parent) {
                out.push(ProcId {
                    pid: *pid,
                    start_time: p.start_time,
                });
            }
            i += 1;
        }
        out
    }

    /// KILL ends a fake process; TERM too, unless it ignores TERM.
    fn signal(&self, p: ProcId, sig: libc::c_int) -> bool {
        let mut m = self.machine();
        let Some(proc_) = m.procs.get(&p.pid).filter(|x| x.start_time == p.start_time) else {
            return false;
        };
        let ends = sig == libc::SIGKILL || (sig == libc::SIGTERM && !proc_.ignores_term);
        m.signals.push((p.pid, sig));
        if ends {
            m.exit(p.pid);
        }
        true
    }

    fn watch_exit(&self, p: ProcId) -> Option<Waiting> {
        let mut m = self.machine();
        if m.procs.get(&p.pid).map(|x| x.start_time) != Some(p.start_time) {
            return None;
        }
        let (tx, rx) = oneshot::channel();
        m.watchers.entry(p.pid).or_default().push(tx);
        Some(Box::pin(async move {
            let _ = rx.await;
        }))
    }
}

impl PolicySource for FakeWorld {
    /// Written to a private directory and loaded by the real loader, without the ownership
    /// checks (the test does not run as root), against this machine's users and paths.
    fn load(&self) -> LoadOutcome {
        let dir = &self.dir.0;
        let text = self.machine().policy.clone();
        let _ = std::fs::remove_dir_all(dir);
        let written = match &text {
            Some(text) => std::fs::create_dir_all(dir)
                .and_then(|_| std::fs::write(dir.join("10-test.toml"), text)),
            None => Ok(()),
        };
        if let Err(e) = written {
            panic!("test policy not written to {}: {e}", dir.display());
        }
        elevate_policy::load_dir(
            dir,
            &LoadOptions {
                check_permissions: false,
            },
            self,
        )
    }

    fn missing(&self) -> Option<String> {
        self.policy_missing()
    }
}

impl FakeWorld {
    fn policy_missing(&self) -> Option<String> {
        self.machine()
            .policy
            .is_none()
            .then(|| "the policy directory /fake/policy.d does not exist".to_string())
    }
}

impl Terminals for FakeWorld {
    fn owners(&self) -> BTreeSet<Uid> {
        self.machine().ttys.clone()
    }

    fn notify(&self, uids: &BTreeSet<Uid>, msg: &str) {
        self.machine().notices.push((uids.clone(), msg.to_string()));
    }
}
