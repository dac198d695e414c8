//! [`RealSystem`]: the machine itself. Users and groups through NSS
//! (`elevate_base::os::nss`), paths and policy files through [`super::os`].

use super::{os, Passwd, System};
use crate::model::Subject;
use elevate_base::os::nss;
use elevate_base::{Gid, Uid};
use std::path::{Path, PathBuf};

/// The real machine, through NSS (getpwnam_r/getgrnam_r) and realpath.
#[derive(Debug, Clone, Copy, Default)]
pub struct RealSystem;

impl System for RealSystem {
    fn user_exists(&self, name: &str) -> bool {
        self.passwd_by_name(name).is_some()
    }
    fn group_exists(&self, name: &str) -> bool {
        self.group_gid(name).is_some()
    }
    fn canonicalize(&self, path: &Path) -> Option<PathBuf> {
        os::canonicalize(path)
    }
    fn user_uid(&self, name: &str) -> Option<Uid> {
        self.passwd_by_name(name).map(|p| p.uid)
    }
}

impl RealSystem {
    /// The passwd entry of `uid`, or `None` if NSS has none.
    pub fn passwd_by_uid(&self, uid: Uid) -> Option<Passwd> {
        nss::passwd_by_uid(uid)
    }

    /// The passwd entry named `name`, or `None` if NSS has none (or the name contains NUL).
    pub fn passwd_by_name(&self, name: &str) -> Option<Passwd> {
        nss::passwd_by_name(name)
    }

    /// The gid of the group named `name`.
    pub fn group_gid(&self, name: &str) -> Option<Gid> {
        nss::group_gid(name)
    }

    /// The name of group `gid` (`None` if it has none or it is not UTF-8).
    pub fn group_name(&self, gid: Gid) -> Option<String> {
        nss::group_name(gid)
    }

    /// Every gid `passwd` is a member of: its primary group first, then the supplementary
    /// groups from NSS (`getgrouplist`), without duplicates.
    pub fn gids_for(&self, passwd: &Passwd) -> Vec<Gid> {
        nss::gids_for(passwd)
    }

    /// Who `passwd` is for policy decisions: its name and the names of all its groups
    /// (primary included). Groups without a name are left out: policies name groups.
    pub fn subject_for(&self, passwd: &Passwd) -> Subject {
        let groups = self
            .gids_for(passwd)
            .into_iter()
            .filter_map(|gid| self.group_name(gid))
            .collect();
        Subject {
            uid: passwd.uid,
            user: passwd.name.clone(),
            groups,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;

    #[test]
    fn real_system_knows_root() {
        let sys = RealSystem;
        let root = sys
            .passwd_by_uid(elevate_base::Uid(0))
            .expect("uid 0 exists");
        assert_eq!(root.name, "root");
        assert_eq!(root.gid, elevate_base::Gid(0));
        assert_eq!(sys.passwd_by_name("root"), Some(root.clone()));
        assert!(sys.user_exists("root"));
        assert!(!sys.user_exists("no-such-user-elevate-test"));
        assert!(!sys.user_exists("ro\0ot"));
        assert_eq!(sys.group_gid("root"), Some(elevate_base::Gid(0)));
        assert_eq!(
            sys.group_name(elevate_base::Gid(0)).as_deref(),
            Some("root")
        );
        assert!(!sys.group_exists("no-such-group-elevate-test"));
        let gids = sys.gids_for(&root);
        assert_eq!(gids.first(), Some(&elevate_base::Gid(0)));
        let subject = sys.subject_for(&root);
        assert_eq!(subject.user, "root");
        assert_eq!(subject.uid, elevate_base::Uid(0));
        assert!(subject.groups.iter().any(|g| g == "root"));
    }

    #[test]
    fn real_system_paths() {
        let sys = RealSystem;
        assert!(sys.is_executable(Path::new("/bin/sh")));
        assert!(!sys.is_executable(Path::new("/etc/passwd")));
        assert!(!sys.is_executable(Path::new("/")));
        assert!(sys.canonicalize(Path::new("/no/such/path")).is_none());
    }
}
