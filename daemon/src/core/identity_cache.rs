//! NSS answers cached briefly: a burst of requests from one user costs one lookup, and any
//! edit of /etc/passwd or /etc/group (a lease's group change, useradd) is seen at once.

use elevate_policy::system::Passwd;
use elevate_policy::{RealSystem, Subject};
use std::collections::HashMap;
use std::time::{Duration, Instant, SystemTime};

/// A cached NSS answer: when it was looked up, and what it was (`None`: no such account).
type Cached<T> = (Instant, Option<T>);

#[derive(Default)]
pub struct IdentityCache {
    by_uid: HashMap<u32, Cached<(Passwd, Subject)>>,
    by_name: HashMap<String, Cached<(Passwd, Vec<u32>)>>,
    stamp: Option<(SystemTime, SystemTime)>,
}

const IDENTITY_TTL: Duration = Duration::from_secs(2);

impl IdentityCache {
    pub fn clear(&mut self) {
        self.by_uid.clear();
        self.by_name.clear();
    }

    /// Drop everything if the account files changed since we last looked.
    fn revalidate(&mut self) {
        let mtime = |p: &str| {
            std::fs::metadata(p)
                .and_then(|m| m.modified())
                .unwrap_or(SystemTime::UNIX_EPOCH)
        };
        let now = Some((mtime("/etc/passwd"), mtime("/etc/group")));
        if now != self.stamp {
            self.clear();
            self.stamp = now;
        }
        if self.by_uid.len() + self.by_name.len() > 4096 {
            self.clear();
        }
    }

    pub fn by_uid(&mut self, uid: u32) -> Option<(Passwd, Subject)> {
        self.revalidate();
        let now = Instant::now();
        if let Some((at, v)) = self.by_uid.get(&uid) {
            if now.duration_since(*at) < IDENTITY_TTL {
                return v.clone();
            }
        }
        let v = RealSystem.passwd_by_uid(uid).map(|pw| {
            let s = RealSystem.subject_for(&pw);
            (pw, s)
        });
        self.by_uid.insert(uid, (now, v.clone()));
        v
    }

    pub fn by_name(&mut self, name: &str) -> Option<(Passwd, Vec<u32>)> {
        self.revalidate();
        let now = Instant::now();
        if let Some((at, v)) = self.by_name.get(name) {
            if now.duration_since(*at) < IDENTITY_TTL {
                return v.clone();
            }
        }
        let v = RealSystem.passwd_by_name(name).map(|pw| {
            let gids = RealSystem.gids_for(&pw);
            (pw, gids)
        });
        self.by_name.insert(name.to_string(), (now, v.clone()));
        v
    }
}
