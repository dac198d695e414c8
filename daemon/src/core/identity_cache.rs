//! NSS answers cached briefly: a burst of requests from one user costs one lookup, and any
//! edit of /etc/passwd or /etc/group (a lease's group change, useradd) is seen at once.

use crate::effects::accounts::Accounts;
use crate::effects::clock::Clock;
use elevate_base::{Gid, Uid};
use elevate_policy::{Passwd, Subject, System};
use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

/// A cached NSS answer: when it was looked up, and what it was (`None`: no such account).
type Cached<T> = (Instant, Option<T>);

pub struct IdentityCache {
    accounts: Box<dyn Accounts>,
    clock: Arc<dyn Clock>,
    by_uid: HashMap<Uid, Cached<(Passwd, Subject)>>,
    by_name: HashMap<String, Cached<(Passwd, Vec<Gid>)>>,
    stamp: Option<(SystemTime, SystemTime)>,
}

const IDENTITY_TTL: Duration = Duration::from_secs(2);

impl IdentityCache {
    pub fn new(accounts: Box<dyn Accounts>, clock: Arc<dyn Clock>) -> IdentityCache {
        IdentityCache {
            accounts,
            clock,
            by_uid: HashMap::new(),
            by_name: HashMap::new(),
            stamp: None,
        }
    }

    /// Paths, for resolving commands (never cached: a changed binary is seen at once).
    pub fn system(&self) -> &dyn System {
        self.accounts.system()
    }

    /// A group's gid (not cached: asked once per run with `run_as_group`).
    pub fn group_gid(&self, name: &str) -> Option<Gid> {
        self.accounts.group_gid(name)
    }

    pub fn clear(&mut self) {
        self.by_uid.clear();
        self.by_name.clear();
    }

    /// Drop everything if the account files changed since we last looked.
    fn revalidate(&mut self) {
        let now = Some(self.accounts.stamp());
        if now != self.stamp {
            self.clear();
            self.stamp = now;
        }
        if self.by_uid.len() + self.by_name.len() > 4096 {
            self.clear();
        }
    }

    pub fn by_uid(&mut self, uid: Uid) -> Option<(Passwd, Subject)> {
        self.revalidate();
        let now = self.clock.now();
        if let Some((at, v)) = self.by_uid.get(&uid) {
            if now.duration_since(*at) < IDENTITY_TTL {
                return v.clone();
            }
        }
        let v = self.accounts.passwd_by_uid(uid).map(|pw| {
            let s = self.accounts.subject_for(&pw);
            (pw, s)
        });
        self.by_uid.insert(uid, (now, v.clone()));
        v
    }

    pub fn by_name(&mut self, name: &str) -> Option<(Passwd, Vec<Gid>)> {
        self.revalidate();
        let now = self.clock.now();
        if let Some((at, v)) = self.by_name.get(name) {
            if now.duration_since(*at) < IDENTITY_TTL {
                return v.clone();
            }
        }
        let v = self.accounts.passwd_by_name(name).map(|pw| {
            let gids = self.accounts.gids_for(&pw);
            (pw, gids)
        });
        self.by_name.insert(name.to_string(), (now, v.clone()));
        v
    }
}
