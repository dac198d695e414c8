//! Accounts as the core sees them: NSS answers (users, their groups, group ids) and the file
//! system checks the policy's command resolution needs. The real one asks NSS and the disk.

use elevate_base::{Gid, Uid};
use elevate_policy::{Passwd, RealSystem, Subject, System};
use std::time::SystemTime;

pub trait Accounts: Send + Sync {
    fn passwd_by_uid(&self, uid: Uid) -> Option<Passwd>;
    fn passwd_by_name(&self, name: &str) -> Option<Passwd>;
    /// The user as the policy matches them: name and every group they are a member of.
    fn subject_for(&self, pw: &Passwd) -> Subject;
    /// Every gid the user is a member of (primary first), for `setgroups`.
    fn gids_for(&self, pw: &Passwd) -> Vec<Gid>;
    fn group_gid(&self, name: &str) -> Option<Gid>;
    /// Paths, for resolving and checking commands.
    fn system(&self) -> &dyn System;
    /// Changes whenever the account files change (cached answers are dropped then).
    fn stamp(&self) -> (SystemTime, SystemTime);
}

/// NSS and the real file system.
pub struct Nss;

impl Accounts for Nss {
    fn passwd_by_uid(&self, uid: Uid) -> Option<Passwd> {
        RealSystem.passwd_by_uid(uid)
    }

    fn passwd_by_name(&self, name: &str) -> Option<Passwd> {
        RealSystem.passwd_by_name(name)
    }

    fn subject_for(&self, pw: &Passwd) -> Subject {
        RealSystem.subject_for(pw)
    }

    fn gids_for(&self, pw: &Passwd) -> Vec<Gid> {
        RealSystem.gids_for(pw)
    }

    fn group_gid(&self, name: &str) -> Option<Gid> {
        RealSystem.group_gid(name)
    }

    fn system(&self) -> &dyn System {
        &RealSystem
    }

    fn stamp(&self) -> (SystemTime, SystemTime) {
        let mtime = |p: &str| {
            std::fs::metadata(p)
                .and_then(|m| m.modified())
                .unwrap_or(SystemTime::UNIX_EPOCH)
        };
        (mtime("/etc/passwd"), mtime("/etc/group"))
    }
}
