//! The set-gid sweep's walk: under each root, every regular file that a revoked gid's holder
//! owns, with the set-gid bit and that gid, loses the bit.
//!
//! The tree belongs to the people it is swept for, who may be changing it while it is
//! walked, so nothing is ever named by a path twice:
//!
//! * directories are opened one component at a time relative to their parent's descriptor,
//!   with `O_NOFOLLOW | O_DIRECTORY`, and must be on the root's file system (`st_dev`): a
//!   directory swapped for a symlink fails to open, a mount point is not entered;
//! * a file is looked at with `fstatat(AT_SYMLINK_NOFOLLOW)` first (symlinks, FIFOs and
//!   devices are passed by), then opened `O_PATH | O_NOFOLLOW` — no read access needed, no
//!   lease to break, no FIFO to block on — checked again through that descriptor, and
//!   changed through it (`chmod` of `/proc/self/fd/N`, the descriptor's own inode). A file
//!   replaced between the look and the open is the new file, checked as such.
//!
//! Only files whose owner is the holder are touched: `chgrp` and `chmod g+s` need ownership,
//! so a holder can leave a set-gid file behind only as its owner, and a set-gid tool that a
//! standing member of the group keeps is never the sweep's business.
//!
//! The walk is bounded (entries seen and time), and says when it stopped at a bound.

use super::{fstat, openat};
use elevate_base::os::cerr;
use elevate_base::{Gid, Uid};
use std::collections::{BTreeSet, HashMap, HashSet};
use std::ffi::{CString, OsStr};
use std::fmt;
use std::io;
use std::mem;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// For each owner uid, the gids whose set-gid files of theirs are stripped.
pub type Wanted = HashMap<Uid, BTreeSet<Gid>>;

/// When a walk stops early.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Bounds {
    /// Directory entries looked at, over all roots.
    pub max_entries: u64,
    pub budget: Duration,
}

impl Default for Bounds {
    fn default() -> Bounds {
        Bounds {
            max_entries: 1_000_000,
            budget: Duration::from_secs(120),
        }
    }
}

/// The bound a walk stopped at; `Display` is the sentence audited.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Bound {
    Entries(u64),
    Time(Duration),
}

impl fmt::Display for Bound {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Bound::Entries(n) => write!(f, "stopped after {n} entries, its bound"),
            Bound::Time(d) => write!(f, "stopped after {} s, its time budget", d.as_secs()),
        }
    }
}

/// One file that lost its set-gid bit.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Stripped {
    pub path: PathBuf,
    pub uid: Uid,
    pub gid: Gid,
    /// Permission bits (`st_mode & 07777`) before and after.
    pub old_mode: u32,
    pub new_mode: u32,
}

/// What a walk could not do; `Display` is the sentence audited.
#[derive(Debug)]
pub enum SweepError {
    Root { path: PathBuf, error: io::Error },
    Directory { path: PathBuf, error: io::Error },
    Strip { path: PathBuf, error: io::Error },
}

impl fmt::Display for SweepError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SweepError::Root { path, error } => {
                write!(f, "{}: cannot open the root: {error}", path.display())
            }
            SweepError::Directory { path, error } => {
                write!(f, "{}: cannot read the directory: {error}", path.display())
            }
            SweepError::Strip { path, error } => {
                write!(
                    f,
                    "{}: cannot clear the set-gid bit: {error}",
                    path.display()
                )
            }
        }
    }
}

/// At most this many errors are kept (the rest are counted).
const MAX_ERRORS: usize = 100;

/// Directories kept open on the way down (deeper ones are reopened from the deepest kept).
const MAX_OPEN: usize = 32;

/// What a walk did.
#[derive(Debug, Default)]
pub struct Sweep {
    /// The roots walked, after collapsing duplicates and nested ones; missing ones are not.
    pub roots: Vec<PathBuf>,
    pub entries: u64,
    pub stripped: Vec<Stripped>,
    pub errors: Vec<SweepError>,
    /// Errors beyond [`MAX_ERRORS`], counted only.
    pub more_errors: u64,
    pub bound: Option<Bound>,
}

impl Sweep {
    fn error(&mut self, e: SweepError) {
        if self.errors.len() < MAX_ERRORS {
            self.errors.push(e);
        } else {
            self.more_errors += 1;
        }
    }
}

/// Walk `roots` (each followed if it is a symlink itself: the administrator named it) and
/// strip the set-gid bit from the files `wanted` names.
pub fn sweep(roots: &[PathBuf], wanted: &Wanted, bounds: Bounds) -> Sweep {
    let mut walk = Walk {
        wanted,
        bounds,
        started: Instant::now(),
        out: Sweep::default(),
    };
    if wanted.values().all(BTreeSet::is_empty) {
        return walk.out;
    }
    for root in walk.open_roots(roots) {
        walk.out.roots.push(root.path.clone());
        walk.root(root);
        if walk.out.bound.is_some() {
            break;
        }
    }
    walk.out
}

/// A root, opened.
struct Root {
    path: PathBuf,
    fd: OwnedFd,
    dev: u64,
}

/// A directory met on the way: its parent's index in [`Tree::dirs`] and its name.
struct Dir {
    parent: usize,
    name: CString,
}

/// The directories of one root (index 0 is the root), and the descriptors kept open along
/// the path to the one being read.
struct Tree {
    root: Root,
    dirs: Vec<Dir>,
    /// (index, descriptor) from the root's first child down, at most [`MAX_OPEN`].
    open: Vec<(usize, OwnedFd)>,
    /// The directory being read, when it is deeper than `open` reaches.
    deep: Option<OwnedFd>,
}

struct Walk<'a> {
    wanted: &'a Wanted,
    bounds: Bounds,
    started: Instant,
    out: Sweep,
}

impl Walk<'_> {
    /// Each root opened once, in the order given: missing ones skipped, the same directory
    /// twice walked once, and one inside another on the same file system left to the outer
    /// walk.
    fn open_roots(&mut self, roots: &[PathBuf]) -> Vec<Root> {
        let mut opened: Vec<Root> = Vec::new();
        let mut seen = HashSet::new();
        for path in roots.iter().filter_map(|r| std::fs::canonicalize(r).ok()) {
            match open_root(&path) {
                Ok((fd, st)) if seen.insert((st.st_dev, st.st_ino)) => opened.push(Root {
                    path,
                    fd,
                    dev: st.st_dev,
                }),
                Ok(_) => {}
                Err(e) if gone(&e) => {}
                Err(error) => self.out.error(SweepError::Root { path, error }),
            }
        }
        let outer: Vec<(u64, PathBuf)> = opened.iter().map(|r| (r.dev, r.path.clone())).collect();
        opened.retain(|r| {
            !outer
                .iter()
                .any(|(dev, p)| *dev == r.dev && r.path.starts_with(p) && r.path != *p)
        });
        opened
    }

    /// Walk one root, depth first.
    fn root(&mut self, root: Root) {
        let mut tree = Tree {
            root,
            dirs: vec![Dir {
                parent: 0,
                name: CString::default(),
            }],
            open: Vec::new(),
            deep: None,
        };
        let mut stack = vec![0usize];
        while let Some(i) = stack.pop() {
            // One past what the bound leaves, so a huge directory is never held whole.
            let left = self.bounds.max_entries.saturating_sub(self.out.entries) + 1;
            let limit = usize::try_from(left).unwrap_or(usize::MAX);
            let entries = match tree.enter(i).and_then(|dir| read_dir(dir, limit)) {
                Ok(e) => e,
                Err(e) if gone(&e) => continue,
                Err(error) => {
                    let path = tree.path(i, None);
                    self.out.error(SweepError::Directory { path, error });
                    continue;
                }
            };
            for (name, kind) in entries {
                if self.stopped() {
                    return;
                }
                self.entry(&mut tree, i, name, kind, &mut stack);
            }
        }
    }

    /// One entry of directory `i` (which `tree` has open): a directory to visit later, a
    /// file to look at, or something else to pass by.
    fn entry(
        &mut self,
        tree: &mut Tree,
        i: usize,
        name: CString,
        kind: u8,
        stack: &mut Vec<usize>,
    ) {
        let dir = tree.current();
        let kind = match kind {
            libc::DT_UNKNOWN => match fstatat_nofollow(dir, &name) {
                Ok(st) if is(st.st_mode, libc::S_IFDIR) => libc::DT_DIR,
                Ok(st) if is(st.st_mode, libc::S_IFREG) => libc::DT_REG,
                _ => return,
            },
            k => k,
        };
        match kind {
            libc::DT_DIR => {
                tree.dirs.push(Dir { parent: i, name });
                stack.push(tree.dirs.len() - 1);
            }
            libc::DT_REG => match self.file(dir, &name) {
                Ok(Some((uid, gid, old_mode, new_mode))) => {
                    let path = tree.path(i, Some(&name));
                    let s = Stripped {
                        path,
                        uid,
                        gid,
                        old_mode,
                        new_mode,
                    };
                    self.out.stripped.push(s);
                }
                Ok(None) => {}
                Err(e) if gone(&e) => {}
                Err(error) => {
                    let path = tree.path(i, Some(&name));
                    self.out.error(SweepError::Strip { path, error });
                }
            },
            _ => {}
        }
    }

    /// A regular file in `dir`: strip it if it is one of ours. The cheap look first, then the
    /// check and change through a descriptor that cannot be swapped.
    fn file(
        &self,
        dir: BorrowedFd<'_>,
        name: &CString,
    ) -> io::Result<Option<(Uid, Gid, u32, u32)>> {
        let st = fstatat_nofollow(dir, name)?;
        if !self.wants(&st) {
            return Ok(None);
        }
        strip(dir, name, &|st| self.wants(st))
    }

    fn wants(&self, st: &libc::stat) -> bool {
        is(st.st_mode, libc::S_IFREG)
            && st.st_mode & libc::S_ISGID != 0
            && self
                .wanted
                .get(&Uid(st.st_uid))
                .is_some_and(|gids| gids.contains(&Gid(st.st_gid)))
    }

    /// Count one entry; true (and the bound recorded) once a bound is reached.
    fn stopped(&mut self) -> bool {
        if self.out.bound.is_some() {
            return true;
        }
        if self.out.entries >= self.bounds.max_entries {
            self.out.bound = Some(Bound::Entries(self.bounds.max_entries));
        } else if self.started.elapsed() >= self.bounds.budget {
            self.out.bound = Some(Bound::Time(self.bounds.budget));
        } else {
            self.out.entries += 1;
        }
        self.out.bound.is_some()
    }
}

impl Tree {
    /// Open directory `i` (through the descriptors already open on the way) and make it the
    /// current one.
    fn enter(&mut self, i: usize) -> io::Result<BorrowedFd<'_>> {
        self.deep = None;
        let mut chain = Vec::new();
        let mut at = i;
        while at != 0 {
            chain.push(at);
            at = self.dirs[at].parent;
        }
        chain.reverse();
        let kept = self
            .open
            .iter()
            .zip(&chain)
            .take_while(|((open, _), want)| open == *want)
            .count();
        self.open.truncate(kept);
        for &d in &chain[kept..] {
            let fd = open_subdir(self.current(), &self.dirs[d].name, self.root.dev)?;
            if self.open.len() < MAX_OPEN && self.deep.is_none() {
                self.open.push((d, fd));
            } else {
                self.deep = Some(fd);
            }
        }
        Ok(self.current())
    }

    /// The directory [`Tree::enter`] opened last.
    fn current(&self) -> BorrowedFd<'_> {
        match (&self.deep, self.open.last()) {
            (Some(fd), _) | (None, Some((_, fd))) => fd.as_fd(),
            (None, None) => self.root.fd.as_fd(),
        }
    }

    /// The path of directory `i`, or of `name` in it, for reports.
    fn path(&self, i: usize, name: Option<&CString>) -> PathBuf {
        let mut names = Vec::new();
        let mut at = i;
        while at != 0 {
            names.push(&self.dirs[at].name);
            at = self.dirs[at].parent;
        }
        let mut path = self.root.path.clone();
        for n in names.into_iter().rev().chain(name) {
            path.push(OsStr::from_bytes(n.as_bytes()));
        }
        path
    }
}

/// Whether `mode` is of file type `kind`.
fn is(mode: libc::mode_t, kind: libc::mode_t) -> bool {
    mode & libc::S_IFMT == kind
}

/// Errors that mean "not there (any more), or not a directory we enter": removed, replaced by
/// a symlink, turned into a mount point. Not worth a report.
fn gone(e: &io::Error) -> bool {
    matches!(
        e.raw_os_error(),
        Some(libc::ENOENT | libc::ENOTDIR | libc::ELOOP | libc::EXDEV)
    )
}

const DIR_FLAGS: libc::c_int = libc::O_RDONLY | libc::O_DIRECTORY | libc::O_NONBLOCK;

fn open_root(path: &Path) -> io::Result<(OwnedFd, libc::stat)> {
    let fd: OwnedFd = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_DIRECTORY | libc::O_NONBLOCK)
        .open(path)?
        .into();
    let st = fstat(fd.as_fd())?;
    Ok((fd, st))
}

/// `name` in `parent`, a directory on file system `dev`, never through a symlink.
fn open_subdir(parent: BorrowedFd<'_>, name: &CString, dev: u64) -> io::Result<OwnedFd> {
    let fd = openat(parent, name, DIR_FLAGS | libc::O_NOFOLLOW)?;
    if fstat(fd.as_fd())?.st_dev != dev {
        return Err(io::Error::from_raw_os_error(libc::EXDEV));
    }
    Ok(fd)
}

/// Open `name` in `dir` as a path only (no symlink followed), check it again with `still`,
/// and clear its set-gid bit through the descriptor. `None` when it is no longer one to
/// strip.
fn strip(
    dir: BorrowedFd<'_>,
    name: &CString,
    still: &dyn Fn(&libc::stat) -> bool,
) -> io::Result<Option<(Uid, Gid, u32, u32)>> {
    let fd = openat(dir, name, libc::O_PATH | libc::O_NOFOLLOW)?;
    let st = fstat(fd.as_fd())?;
    if !still(&st) {
        return Ok(None);
    }
    let old = st.st_mode & 0o7777;
    let new = old & !libc::S_ISGID;
    chmod_fd(fd.as_fd(), new)?;
    Ok(Some((Uid(st.st_uid), Gid(st.st_gid), old, new)))
}

/// chmod(2) of the file a (possibly `O_PATH`) descriptor refers to, through its
/// `/proc/self/fd` link, which resolves to that very inode.
fn chmod_fd(fd: BorrowedFd<'_>, mode: libc::mode_t) -> io::Result<()> {
    let link = CString::new(format!("/proc/self/fd/{}", fd.as_raw_fd()))?;
    // SAFETY: `link` is NUL-terminated and outlives the call.
    cerr(unsafe { libc::chmod(link.as_ptr(), mode) })?;
    Ok(())
}

/// `fstatat(2)` of `name` in `dir`, not following a symlink.
fn fstatat_nofollow(dir: BorrowedFd<'_>, name: &CString) -> io::Result<libc::stat> {
    // SAFETY: an all-zero stat is a valid buffer for the kernel to fill.
    let mut st: libc::stat = unsafe { mem::zeroed() };
    // SAFETY: `name` is NUL-terminated, `st` writable, `dir` an open descriptor.
    cerr(unsafe {
        libc::fstatat(
            dir.as_raw_fd(),
            name.as_ptr(),
            &mut st,
            libc::AT_SYMLINK_NOFOLLOW,
        )
    })?;
    Ok(st)
}

/// The entries of directory `dir` but `.` and `..`, (name, `d_type`): all of them, or at
/// least `limit`.
fn read_dir(dir: BorrowedFd<'_>, limit: usize) -> io::Result<Vec<(CString, u8)>> {
    let mut out = Vec::new();
    let mut buf = vec![0u8; 32 * 1024];
    while out.len() < limit {
        // SAFETY: `buf` is writable for `buf.len()` bytes; `dir` is an open directory.
        let n = unsafe {
            libc::syscall(
                libc::SYS_getdents64,
                dir.as_raw_fd(),
                buf.as_mut_ptr(),
                buf.len(),
            )
        };
        let n = cerr(n)?.unsigned_abs() as usize;
        if n == 0 {
            break;
        }
        parse_dirents(&buf[..n.min(buf.len())], &mut out);
    }
    Ok(out)
}

/// The records of a getdents64 buffer: `d_ino` (8 bytes), `d_off` (8), `d_reclen` (2),
/// `d_type` (1), then the NUL-terminated name, padded to `d_reclen`.
fn parse_dirents(mut buf: &[u8], out: &mut Vec<(CString, u8)>) {
    while buf.len() >= 19 {
        let reclen = usize::from(u16::from_ne_bytes([buf[16], buf[17]]));
        if reclen < 19 || reclen > buf.len() {
            return;
        }
        let kind = buf[18];
        let name = &buf[19..reclen];
        let name = &name[..name.iter().position(|&b| b == 0).unwrap_or(name.len())];
        if name != b"." && name != b".." {
            if let Ok(c) = CString::new(name) {
                out.push((c, kind));
            }
        }
        buf = &buf[reclen..];
    }
}

#[cfg(test)]
#[path = "setgid_tests.rs"]
mod tests;
