//! [`FakeSystem`]: a machine made of lists (users, groups, files, executables, symlinks), so
//! that every rule can be tested without touching the real one. Policy files are not faked:
//! it keeps [`System`]'s defaults, which read the real disk (tests use temporary dirs).

use super::System;
use elevate_base::Uid;
use std::collections::{BTreeMap, BTreeSet};
use std::path::{Component, Path, PathBuf};

/// A machine made of lists, for tests (here and in the daemon and CLI).
///
/// ```
/// use elevate_policy::system::{FakeSystem, System};
/// use std::path::Path;
/// let sys = FakeSystem::new()
///     .user("alice")
///     .group("webops")
///     .executable("/usr/bin/systemctl")
///     .symlink("/bin", "/usr/bin");
/// assert_eq!(
///     sys.canonicalize(Path::new("/bin/systemctl")).as_deref(),
///     Some(Path::new("/usr/bin/systemctl"))
/// );
/// ```
#[derive(Debug, Clone, Default)]
pub struct FakeSystem {
    users: BTreeSet<String>,
    groups: BTreeSet<String>,
    /// Symlinks: the link's absolute path → its target (absolute, or relative to its dir).
    links: BTreeMap<PathBuf, PathBuf>,
    /// Files that exist (executable or not). Their parent dirs exist implicitly.
    files: BTreeSet<PathBuf>,
    executables: BTreeSet<PathBuf>,
    uids: BTreeMap<String, u32>,
}

impl FakeSystem {
    /// A system with only the `root` user and group.
    pub fn new() -> Self {
        FakeSystem::default().user("root").group("root")
    }
    pub fn user(mut self, name: &str) -> Self {
        self.users.insert(name.to_string());
        self
    }
    /// A user with a known uid (e.g. a second uid 0 account).
    pub fn user_with_uid(mut self, name: &str, uid: u32) -> Self {
        self.users.insert(name.to_string());
        self.uids.insert(name.to_string(), uid);
        self
    }
    pub fn group(mut self, name: &str) -> Self {
        self.groups.insert(name.to_string());
        self
    }
    /// An executable regular file.
    pub fn executable(mut self, path: impl Into<PathBuf>) -> Self {
        let p = path.into();
        self.files.insert(p.clone());
        self.executables.insert(p);
        self
    }
    /// A regular file without execute bits.
    pub fn file(mut self, path: impl Into<PathBuf>) -> Self {
        self.files.insert(path.into());
        self
    }
    /// A symlink at `link` pointing to `target` (files or directories).
    pub fn symlink(mut self, link: impl Into<PathBuf>, target: impl Into<PathBuf>) -> Self {
        self.links.insert(link.into(), target.into());
        self
    }

    fn exists(&self, p: &Path) -> bool {
        // A file exists when listed; a directory when anything listed lives under it.
        p == Path::new("/")
            || self.files.iter().any(|f| f.starts_with(p))
            || self.links.keys().any(|l| l != p && l.starts_with(p))
    }

    /// Resolve like realpath(3): component by component, following links (at most 40).
    fn resolve(&self, path: &Path) -> Option<PathBuf> {
        if !path.is_absolute() {
            return None;
        }
        let mut pending: Vec<PathBuf> = path
            .components()
            .rev()
            .map(|c| PathBuf::from(c.as_os_str()))
            .collect();
        let mut cur = PathBuf::from("/");
        let mut hops = 0;
        while let Some(part) = pending.pop() {
            match part.components().next() {
                Some(Component::RootDir) | Some(Component::CurDir) | None => continue,
                Some(Component::ParentDir) => {
                    cur.pop();
                    continue;
                }
                _ => {}
            }
            let next = cur.join(&part);
            if let Some(target) = self.links.get(&next) {
                hops += 1;
                if hops > 40 {
                    return None;
                }
                if target.is_absolute() {
                    cur = PathBuf::from("/");
                }
                for c in target.components().rev() {
                    pending.push(PathBuf::from(c.as_os_str()));
                }
                continue;
            }
            if !self.exists(&next) {
                return None;
            }
            cur = next;
        }
        Some(cur)
    }
}

impl System for FakeSystem {
    fn user_exists(&self, name: &str) -> bool {
        self.users.contains(name)
    }
    fn group_exists(&self, name: &str) -> bool {
        self.groups.contains(name)
    }
    fn canonicalize(&self, path: &Path) -> Option<PathBuf> {
        self.resolve(path)
    }
    fn is_executable(&self, path: &Path) -> bool {
        self.resolve(path)
            .is_some_and(|p| self.executables.contains(&p))
    }
    fn user_uid(&self, name: &str) -> Option<Uid> {
        self.uids.get(name).copied().map(Uid)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fake_resolves_file_and_dir_links() {
        let sys = FakeSystem::new()
            .executable("/usr/bin/systemctl")
            .file("/etc/motd")
            .symlink("/bin", "/usr/bin")
            .symlink("/usr/local/bin/sc", "../../bin/systemctl")
            .symlink("/loop/a", "/loop/b")
            .symlink("/loop/b", "/loop/a");
        let c = |p: &str| sys.canonicalize(Path::new(p));
        assert_eq!(c("/usr/bin/systemctl"), Some("/usr/bin/systemctl".into()));
        assert_eq!(c("/bin/systemctl"), Some("/usr/bin/systemctl".into()));
        assert_eq!(c("/usr/local/bin/sc"), Some("/usr/bin/systemctl".into()));
        assert_eq!(
            c("/usr/bin/../bin/systemctl"),
            Some("/usr/bin/systemctl".into())
        );
        assert_eq!(c("/usr/bin/nope"), None);
        assert_eq!(c("/loop/a"), None);
        assert_eq!(c("relative"), None);
        assert!(sys.is_executable(Path::new("/bin/systemctl")));
        assert!(!sys.is_executable(Path::new("/etc/motd")));
        assert!(!sys.is_executable(Path::new("/usr/bin")));
        assert!(sys.user_exists("root") && sys.group_exists("root"));
        assert!(!sys.user_exists("alice"));
    }
}
