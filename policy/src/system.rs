//! The policy's only window on the machine. The loader asks whether users and groups exist
//! (unknown ones are warnings) and resolves command paths; tests substitute a [`FakeSystem`].
//!
//! This is the only module with `unsafe`: small wrappers around the reentrant NSS calls
//! (`getpwnam_r`, `getpwuid_r`, `getgrnam_r`, `getgrgid_r`, `getgrouplist`) and `gethostname`.

use crate::model::Subject;
use std::collections::{BTreeMap, BTreeSet};
use std::ffi::{CStr, CString, OsStr};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::PermissionsExt;
use std::path::{Component, Path, PathBuf};

pub trait System {
    fn user_exists(&self, name: &str) -> bool;
    fn group_exists(&self, name: &str) -> bool;
    /// The path with every symlink resolved, or `None` if it does not exist here.
    fn canonicalize(&self, path: &Path) -> Option<PathBuf>;
    /// A regular file (after following symlinks) with at least one execute bit.
    ///
    /// The default asks the real filesystem; implementations that fake the system override it.
    fn is_executable(&self, path: &Path) -> bool {
        real_is_executable(path)
    }
    /// The user's uid, when known (the linter treats any uid 0 account as root).
    fn user_uid(&self, _name: &str) -> Option<u32> {
        None
    }
}

fn real_is_executable(path: &Path) -> bool {
    std::fs::metadata(path)
        .map(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
        .unwrap_or(false)
}

/// A password-database entry, as NSS returns it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Passwd {
    pub name: String,
    pub uid: u32,
    pub gid: u32,
    pub home: PathBuf,
    pub shell: PathBuf,
}

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
        std::fs::canonicalize(path).ok()
    }
    fn is_executable(&self, path: &Path) -> bool {
        real_is_executable(path)
    }
    fn user_uid(&self, name: &str) -> Option<u32> {
        self.passwd_by_name(name).map(|p| p.uid)
    }
}

/// First buffer size for the `*_r` NSS calls; doubled on ERANGE up to [`NSS_BUF_MAX`].
const NSS_BUF_START: usize = 1024;
const NSS_BUF_MAX: usize = 1 << 20;

/// Run one reentrant NSS lookup with a growing buffer. `call` gets the buffer and returns the
/// C function's return code (0 = success or not found, ERANGE = buffer too small); it reports
/// whether an entry was found through its own result pointer.
fn with_nss_buffer<T>(
    mut call: impl FnMut(&mut [libc::c_char]) -> (libc::c_int, Option<T>),
) -> Option<T> {
    let mut size = NSS_BUF_START;
    loop {
        let mut buf: Vec<libc::c_char> = vec![0; size];
        let (rc, found) = call(&mut buf);
        if rc == libc::ERANGE && size < NSS_BUF_MAX {
            size *= 2;
            continue;
        }
        if rc == libc::EINTR {
            continue;
        }
        return if rc == 0 { found } else { None };
    }
}

/// Copy a C string owned by NSS into an owned byte vector. `None` for a null pointer.
///
/// # Safety
/// `p` must be null or point to a NUL-terminated string that stays valid for the call.
unsafe fn c_bytes(p: *const libc::c_char) -> Option<Vec<u8>> {
    if p.is_null() {
        return None;
    }
    // SAFETY: the caller guarantees `p` is a valid NUL-terminated string.
    Some(unsafe { CStr::from_ptr(p) }.to_bytes().to_vec())
}

/// Convert a filled-in `struct passwd` (pointing into the caller's buffer) to [`Passwd`].
///
/// # Safety
/// The string pointers in `pw` must be null or valid NUL-terminated strings.
unsafe fn passwd_from(pw: &libc::passwd) -> Option<Passwd> {
    // SAFETY: forwarded from the caller's guarantee on `pw`'s pointers.
    let name = String::from_utf8(unsafe { c_bytes(pw.pw_name) }?).ok()?;
    // SAFETY: as above.
    let home = unsafe { c_bytes(pw.pw_dir) }.unwrap_or_default();
    // SAFETY: as above.
    let shell = unsafe { c_bytes(pw.pw_shell) }.unwrap_or_default();
    Some(Passwd {
        name,
        uid: pw.pw_uid,
        gid: pw.pw_gid,
        home: PathBuf::from(OsStr::from_bytes(&home)),
        shell: PathBuf::from(OsStr::from_bytes(&shell)),
    })
}

impl RealSystem {
    /// The passwd entry of `uid`, or `None` if NSS has none.
    pub fn passwd_by_uid(&self, uid: u32) -> Option<Passwd> {
        with_nss_buffer(|buf| {
            // SAFETY: an all-zero `struct passwd` is a valid value (integers and null pointers).
            let mut pw: libc::passwd = unsafe { std::mem::zeroed() };
            let mut result: *mut libc::passwd = std::ptr::null_mut();
            // SAFETY: every pointer is valid for the call: `pw` and `result` are live locals,
            // `buf` is a live buffer of exactly `buf.len()` bytes.
            let rc =
                unsafe { libc::getpwuid_r(uid, &mut pw, buf.as_mut_ptr(), buf.len(), &mut result) };
            let found = if rc == 0 && !result.is_null() {
                // SAFETY: on success `pw`'s strings point into `buf`, which is still alive.
                unsafe { passwd_from(&pw) }
            } else {
                None
            };
            (rc, found)
        })
    }

    /// The passwd entry named `name`, or `None` if NSS has none (or the name contains NUL).
    pub fn passwd_by_name(&self, name: &str) -> Option<Passwd> {
        let cname = CString::new(name).ok()?;
        with_nss_buffer(|buf| {
            // SAFETY: an all-zero `struct passwd` is a valid value (integers and null pointers).
            let mut pw: libc::passwd = unsafe { std::mem::zeroed() };
            let mut result: *mut libc::passwd = std::ptr::null_mut();
            // SAFETY: `cname` is NUL-terminated; `pw`, `result` are live locals and `buf` is a
            // live buffer of exactly `buf.len()` bytes.
            let rc = unsafe {
                libc::getpwnam_r(
                    cname.as_ptr(),
                    &mut pw,
                    buf.as_mut_ptr(),
                    buf.len(),
                    &mut result,
                )
            };
            let found = if rc == 0 && !result.is_null() {
                // SAFETY: on success `pw`'s strings point into `buf`, which is still alive.
                unsafe { passwd_from(&pw) }
            } else {
                None
            };
            (rc, found)
        })
    }

    /// The gid of the group named `name`.
    pub fn group_gid(&self, name: &str) -> Option<u32> {
        let cname = CString::new(name).ok()?;
        with_nss_buffer(|buf| {
            // SAFETY: an all-zero `struct group` is a valid value (integers and null pointers).
            let mut gr: libc::group = unsafe { std::mem::zeroed() };
            let mut result: *mut libc::group = std::ptr::null_mut();
            // SAFETY: `cname` is NUL-terminated; `gr`, `result` are live locals and `buf` is a
            // live buffer of exactly `buf.len()` bytes.
            let rc = unsafe {
                libc::getgrnam_r(
                    cname.as_ptr(),
                    &mut gr,
                    buf.as_mut_ptr(),
                    buf.len(),
                    &mut result,
                )
            };
            let found = (rc == 0 && !result.is_null()).then_some(gr.gr_gid);
            (rc, found)
        })
    }

    /// The name of group `gid` (`None` if it has none or it is not UTF-8).
    pub fn group_name(&self, gid: u32) -> Option<String> {
        with_nss_buffer(|buf| {
            // SAFETY: an all-zero `struct group` is a valid value (integers and null pointers).
            let mut gr: libc::group = unsafe { std::mem::zeroed() };
            let mut result: *mut libc::group = std::ptr::null_mut();
            // SAFETY: `gr`, `result` are live locals and `buf` is a live buffer of exactly
            // `buf.len()` bytes.
            let rc =
                unsafe { libc::getgrgid_r(gid, &mut gr, buf.as_mut_ptr(), buf.len(), &mut result) };
            let found = if rc == 0 && !result.is_null() {
                // SAFETY: on success `gr_name` is null or points into `buf`, still alive.
                unsafe { c_bytes(gr.gr_name) }.and_then(|b| String::from_utf8(b).ok())
            } else {
                None
            };
            (rc, found)
        })
    }

    /// Every gid `passwd` is a member of: its primary group first, then the supplementary
    /// groups from NSS (`getgrouplist`), without duplicates.
    pub fn gids_for(&self, passwd: &Passwd) -> Vec<u32> {
        let mut gids = vec![passwd.gid];
        let Ok(cname) = CString::new(passwd.name.as_str()) else {
            return gids;
        };
        let mut size: usize = 64;
        loop {
            let mut buf: Vec<libc::gid_t> = vec![0; size];
            let mut n: libc::c_int = libc::c_int::try_from(size).unwrap_or(libc::c_int::MAX);
            // SAFETY: `cname` is NUL-terminated, `buf` holds `n` gids and `n` is a live local;
            // getgrouplist writes at most `n` entries and stores the needed count in `n`.
            let rc =
                unsafe { libc::getgrouplist(cname.as_ptr(), passwd.gid, buf.as_mut_ptr(), &mut n) };
            let got = usize::try_from(n).unwrap_or(0);
            if rc >= 0 {
                for gid in buf.iter().take(got.min(size)) {
                    if !gids.contains(gid) {
                        gids.push(*gid);
                    }
                }
                return gids;
            }
            // Too small: glibc reports the needed size in `n`; otherwise double.
            let next = if got > size { got } else { size * 2 };
            if next > 1 << 16 {
                return gids;
            }
            size = next;
        }
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

/// gethostname(2), or "localhost" if it fails.
pub fn hostname() -> String {
    let mut buf = [0u8; 256];
    // SAFETY: `buf` is a live, writable buffer of `buf.len()` bytes; gethostname writes at
    // most that many bytes.
    let rc = unsafe { libc::gethostname(buf.as_mut_ptr().cast::<libc::c_char>(), buf.len()) };
    if rc != 0 {
        return "localhost".to_string();
    }
    // The result may lack the terminating NUL when truncated: take bytes up to the first NUL.
    let end = buf.iter().position(|&b| b == 0).unwrap_or(buf.len());
    match std::str::from_utf8(buf.get(..end).unwrap_or_default()) {
        Ok(s) if !s.is_empty() => s.to_string(),
        _ => "localhost".to_string(),
    }
}

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
    fn user_uid(&self, name: &str) -> Option<u32> {
        self.uids.get(name).copied()
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

    #[test]
    fn real_system_knows_root() {
        let sys = RealSystem;
        let root = sys.passwd_by_uid(0).expect("uid 0 exists");
        assert_eq!(root.name, "root");
        assert_eq!(root.gid, 0);
        assert_eq!(sys.passwd_by_name("root"), Some(root.clone()));
        assert!(sys.user_exists("root"));
        assert!(!sys.user_exists("no-such-user-elevate-test"));
        assert!(!sys.user_exists("ro\0ot"));
        assert_eq!(sys.group_gid("root"), Some(0));
        assert_eq!(sys.group_name(0).as_deref(), Some("root"));
        assert!(!sys.group_exists("no-such-group-elevate-test"));
        let gids = sys.gids_for(&root);
        assert_eq!(gids.first(), Some(&0));
        let subject = sys.subject_for(&root);
        assert_eq!(subject.user, "root");
        assert_eq!(subject.uid, 0);
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

    #[test]
    fn hostname_is_not_empty() {
        assert!(!hostname().is_empty());
    }
}
