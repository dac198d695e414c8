//! Login sessions registered by pam_elevate.so: which process leads each one and which lease
//! admitted it, kept in `sessions.json` in the state directory so that a restarted daemon
//! still ends them when their lease ends.

use crate::effects::procs::{ProcId, ProcessTable};
use crate::os::files::{aside_path, replace_durably};
use elevate_base::{Pid, Uid};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

use std::io;

use std::path::{Path, PathBuf};
use std::time::Instant;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Session {
    pub id: u64,
    pub uid: Uid,
    pub user: String,
    pub service: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tty: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rhost: Option<String>,
    /// The lease the session ends with (`None`: standing access, tracked for the record only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lease: Option<u64>,
    /// The process that opened the session (sshd's privileged child, login, su).
    pub pid: Pid,
    pub start_time: u64,
    pub opened_at_ms: u64,
    /// logind's id for this session, when logind knows it (asked over D-Bus after opening).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub logind: Option<String>,
}

impl Session {
    pub fn leader(&self) -> ProcId {
        ProcId {
            pid: self.pid,
            start_time: self.start_time,
        }
    }

    pub fn is_running(&self, procs: &dyn ProcessTable) -> bool {
        procs.start_time(self.pid) == Some(self.start_time)
    }
}

pub struct SessionBook {
    pub table: BTreeMap<u64, Session>,
    pub next_id: u64,
    /// When vanished leaders and stale leases were last looked for.
    pub last_check: Instant,
    /// `sessions.json`; `None` keeps the book in memory only (tests).
    path: Option<PathBuf>,
    /// What was found damaged at open, as a sentence.
    pub damage: Option<String>,
}

/// At most this many sessions are tracked; beyond it new ones are refused (fail closed).
pub const MAX_SESSIONS: usize = 65_536;

impl SessionBook {
    /// Load `sessions.json`; sessions whose leader is gone are dropped.
    /// A file that does not read (torn by a power loss, damaged) is moved aside and the book
    /// starts empty, saying so in `damage`: the daemon always starts.
    pub fn open(state_dir: &Path, procs: &dyn ProcessTable) -> io::Result<SessionBook> {
        let path = state_dir.join("sessions.json");
        let mut damage = None;
        let saved: Vec<Session> = match std::fs::read(&path) {
            Ok(bytes) => match serde_json::from_slice::<Vec<Session>>(&bytes) {
                Ok(list) => list,
                Err(e) => {
                    let aside = aside_path(&path);
                    std::fs::rename(&path, &aside)?;
                    damage = Some(format!(
                        "{}: {e}; login sessions start untracked, the file is {}",
                        path.display(),
                        aside.display()
                    ));
                    Vec::new()
                }
            },
            Err(e) if e.kind() == io::ErrorKind::NotFound => Vec::new(),
            Err(e) => return Err(e),
        };
        let table: BTreeMap<u64, Session> = saved
            .into_iter()
            .filter(|s| s.is_running(procs))
            .map(|s| (s.id, s))
            .collect();
        let next_id = table.keys().next_back().map_or(1, |k| k + 1);
        Ok(SessionBook {
            table,
            next_id,
            last_check: Instant::now(),
            path: Some(path),
            damage,
        })
    }

    /// A book that is never saved (tests of the core), last checked at `now`.
    #[cfg(test)]
    pub fn in_memory(now: Instant) -> SessionBook {
        SessionBook {
            table: BTreeMap::new(),
            next_id: 1,
            last_check: now,
            path: None,
            damage: None,
        }
    }

    /// Write the table durably (temp, fsync, rename, directory fsync), off the async worker.
    pub fn save(&self) -> io::Result<()> {
        let Some(path) = &self.path else {
            return Ok(());
        };
        tokio::task::block_in_place(|| self.write(path))
    }

    fn write(&self, path: &Path) -> io::Result<()> {
        let list: Vec<&Session> = self.table.values().collect();
        replace_durably(path, |w| {
            serde_json::to_writer(&mut *w, &list).map_err(io::Error::other)?;
            w.write_all(b"\n")
        })
    }

    /// Forget sessions whose leader exited without close_session (a crashed sshd child).
    /// Returns whether anything changed.
    pub fn prune(&mut self, procs: &dyn ProcessTable) -> bool {
        let before = self.table.len();
        self.table.retain(|_, s| s.is_running(procs));
        self.table.len() != before
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::effects::procs::Proc;

    #[test]
    fn saved_sessions_survive_a_restart_and_dead_ones_are_dropped() {
        let dir = std::env::temp_dir().join(format!("elevate-sessions-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let me = Pid(std::process::id() as i32);
        let mut b = SessionBook::open(&dir, &Proc).unwrap();
        assert!(b.table.is_empty());
        let live = Session {
            id: 1,
            uid: Uid(1000),
            user: "alice".into(),
            service: "sshd".into(),
            tty: Some("ssh".into()),
            rhost: None,
            lease: Some(7),
            pid: me,
            start_time: Proc.start_time(me).unwrap(),
            opened_at_ms: 0,
            logind: Some("c3".into()),
        };
        let dead = Session {
            id: 2,
            start_time: live.start_time + 1,
            ..live.clone()
        };
        b.table.insert(1, live.clone());
        b.table.insert(2, dead);
        b.save().unwrap();
        let b2 = SessionBook::open(&dir, &Proc).unwrap();
        assert_eq!(b2.table.values().collect::<Vec<_>>(), vec![&live]);
        assert_eq!(b2.next_id, 2);
        std::fs::write(dir.join("sessions.json"), "{garbage").unwrap();
        let b3 = SessionBook::open(&dir, &Proc).expect("a damaged file never stops the daemon");
        assert!(b3.table.is_empty());
        let why = b3.damage.expect("and says so");
        assert!(why.contains("sessions.json.damaged-"), "{why}");
        assert!(!dir.join("sessions.json").exists(), "moved aside");
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
