//! Adding and removing group members in /etc/group and /etc/gshadow the way shadow-utils
//! (gpasswd, usermod) does, so that the daemon and the admin's tools never step on each other.
//!
//! - **Under the same lock**: a write lock on `/etc/.pwd.lock`, the file `lckpwdf(3)` locks and
//!   every shadow-utils tool takes first. It is an OFD fcntl write lock polled up to a timeout
//!   (15 s by default, lckpwdf's) rather than a call to lckpwdf itself; `sys.rs` says why.
//! - **Atomically**: each changed file is written to `FILE+` (the name shadow-utils uses) with
//!   the original's owner and mode (masked with 0664, as shadow-utils masks it), fsync'd; the
//!   previous file is kept as `FILE-` (a hard link to the old inode, so it keeps its bytes,
//!   owner, mode and times; a copy where links are impossible); then `FILE+` is renamed over
//!   `FILE` and the directory is fsync'd. A crash leaves the old or the new file, never a torn
//!   one. Both files are staged before either is renamed, and the rename of /etc/group comes
//!   last: it is the commit point (if it fails, /etc/gshadow is put back).
//! - **Minimally**: only the member field of the lines a change names is rewritten; every other
//!   byte — comments, NIS `+`/`-` lines, malformed lines, CRLF, a missing final newline — stays.
//! - **In batches**: any number of changes cost one rewrite of each file, and none at all when
//!   nothing changes.
//! - **Honestly**: each change gets an [`Outcome`]; adding a member who is already there is
//!   [`Outcome::AlreadyMember`] (a standing membership the caller must never remove), and
//!   /etc/gshadow only follows changes that really changed /etc/group.
//!
//! Every path is under a root directory ([`GroupDb::at`]); the machine's is `/`
//! ([`GroupDb::system`]). The pure text editing lives in `edit` and is tested on strings.
//!
//! Not done (shadow-utils does these, a caller may want to): `FILE.lock` pid files are not
//! created (every shadow-utils tool takes lckpwdf first, which we exclude; a pid file left by a
//! crash of a long-running daemon could block the admin's tools after pid reuse), nscd/sssd
//! caches are not flushed, and SELinux labels are not set on the new files.

mod edit;
mod sys;
#[cfg(test)]
mod tests;

use std::collections::HashSet;
use std::fs::{self, File};
use std::io::{self, Read, Write};
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::time::Duration;

/// One membership change.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Change {
    Add { user: String, group: String },
    Remove { user: String, group: String },
}

impl Change {
    pub fn add(user: impl Into<String>, group: impl Into<String>) -> Change {
        Change::Add {
            user: user.into(),
            group: group.into(),
        }
    }

    pub fn remove(user: impl Into<String>, group: impl Into<String>) -> Change {
        Change::Remove {
            user: user.into(),
            group: group.into(),
        }
    }

    pub fn user(&self) -> &str {
        match self {
            Change::Add { user, .. } | Change::Remove { user, .. } => user,
        }
    }

    pub fn group(&self) -> &str {
        match self {
            Change::Add { group, .. } | Change::Remove { group, .. } => group,
        }
    }

    /// Both names are safe to write into the files (see [`Outcome::InvalidName`]).
    pub fn is_valid(&self) -> bool {
        edit::valid_name(self.user()) && edit::valid_name(self.group())
    }
}

/// What one change did, judged by /etc/group.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Outcome {
    /// The user was added to the group's member list.
    Added,
    /// The user was already listed: nothing written. The caller must not remove this
    /// membership later — it is not theirs.
    AlreadyMember,
    /// The user was removed from the member list (from every line of the group).
    Removed,
    /// The user was not listed: nothing written (not an error).
    NotMember,
    /// /etc/group has no entry for the group: this change did nothing, the others still apply.
    NoSuchGroup,
    /// A name that is empty, longer than 256 bytes, or contains `:`, `,`, whitespace or a
    /// control character: rejected before any file was touched.
    InvalidName,
}

/// The group database under one root directory.
#[derive(Debug, Clone)]
pub struct GroupDb {
    root: PathBuf,
    lock_timeout: Duration,
}

impl GroupDb {
    /// The machine's own /etc.
    pub fn system() -> GroupDb {
        GroupDb::at("/")
    }

    /// The files under `root`/etc (tests and benchmarks use a temporary root).
    pub fn at(root: impl Into<PathBuf>) -> GroupDb {
        GroupDb {
            root: root.into(),
            lock_timeout: Duration::from_secs(15),
        }
    }

    /// How long [`apply`](Self::apply) waits for `/etc/.pwd.lock` (default 15 s, as lckpwdf).
    pub fn with_lock_timeout(mut self, timeout: Duration) -> GroupDb {
        self.lock_timeout = timeout;
        self
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    fn etc(&self, name: &str) -> PathBuf {
        self.root.join("etc").join(name)
    }

    /// Apply `changes`, in order, with at most one locked rewrite of /etc/group and one of
    /// /etc/gshadow (if that file exists). Returns one [`Outcome`] per change.
    ///
    /// An `Err` (lock timeout, I/O error, /etc/group missing or not a regular file, or replaced
    /// by a writer that ignores the lock) means neither file was changed — except if the final
    /// fsync of the directory failed, after the renames. Either way the batch can be applied
    /// again: it is idempotent, and the outcomes then tell the true state.
    pub fn apply(&self, changes: &[Change]) -> io::Result<Vec<Outcome>> {
        if !changes.iter().any(Change::is_valid) {
            return Ok(vec![Outcome::InvalidName; changes.len()]);
        }
        let _lock = sys::lock_file(&self.etc(".pwd.lock"), self.lock_timeout)?;
        let group = Original::read(&self.etc("group"))?.ok_or_else(|| {
            io::Error::new(
                io::ErrorKind::NotFound,
                format!("{}: no such file", self.etc("group").display()),
            )
        })?;
        let gshadow = Original::read(&self.etc("gshadow"))?;
        let plan = edit::plan(
            &group.bytes,
            gshadow.as_ref().map(|g| g.bytes.as_slice()),
            changes,
        );
        // gshadow first: the rename of /etc/group, the file the outcomes describe, commits.
        let mut rewrites: Vec<(&Original, &[u8])> = Vec::new();
        if let (Some(old), Some(new)) = (&gshadow, &plan.gshadow) {
            if *new != old.bytes {
                rewrites.push((old, new));
            }
        }
        if plan.group != group.bytes {
            rewrites.push((&group, &plan.group));
        }
        if !rewrites.is_empty() {
            replace_all(&rewrites)?;
            let etc = self.root.join("etc");
            File::open(&etc)
                .and_then(|d| d.sync_all())
                .map_err(|e| with_path(e, &etc))?;
        }
        Ok(plan.outcomes)
    }

    /// The members listed for `group` in /etc/group, in file order, without duplicates (users
    /// whose primary group it is are not listed there). `None` if there is no such group.
    pub fn members_of(&self, group: &str) -> io::Result<Option<Vec<String>>> {
        let text = self.read_group()?;
        let entries = edit::find(&text, group.as_bytes());
        if entries.is_empty() {
            return Ok(None);
        }
        let mut seen = HashSet::new();
        Ok(Some(
            entries
                .iter()
                .flat_map(|e| e.member_list())
                .filter(|m| seen.insert(*m))
                .map(|m| String::from_utf8_lossy(m).into_owned())
                .collect(),
        ))
    }

    /// The gid of `group` in /etc/group (`None` if there is no such group, or its gid field
    /// is not a number).
    pub fn gid_of(&self, group: &str) -> io::Result<Option<u32>> {
        let text = self.read_group()?;
        Ok(edit::find(&text, group.as_bytes())
            .first()
            .and_then(|e| e.gid()))
    }

    /// /etc/group as it is now. No lock needed: writers replace it by rename, so a reader
    /// sees the old or the new file, whole.
    fn read_group(&self) -> io::Result<Vec<u8>> {
        let path = self.etc("group");
        fs::read(&path).map_err(|e| with_path(e, &path))
    }
}

fn with_path(e: io::Error, path: &Path) -> io::Error {
    io::Error::new(e.kind(), format!("{}: {e}", path.display()))
}

/// `path` with `suffix` appended to its file name (`group` → `group+`).
fn sibling(path: &Path, suffix: &str) -> PathBuf {
    let mut name = path.file_name().unwrap_or_default().to_os_string();
    name.push(suffix);
    path.with_file_name(name)
}

/// A file as read under the lock.
struct Original {
    path: PathBuf,
    bytes: Vec<u8>,
    meta: fs::Metadata,
}

impl Original {
    /// Open as shadow-utils does (O_NOFOLLOW: a symlinked /etc/group is refused, O_NONBLOCK: a
    /// FIFO cannot hang us), check it is a regular file, and read it. `None` if missing.
    fn read(path: &Path) -> io::Result<Option<Original>> {
        let mut file = match sys::open_for_reading(path) {
            Ok(f) => f,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(with_path(e, path)),
        };
        let meta = file.metadata()?;
        if !meta.is_file() {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                format!("{}: not a regular file", path.display()),
            ));
        }
        let mut bytes = Vec::with_capacity(meta.len() as usize);
        file.read_to_end(&mut bytes)
            .map_err(|e| with_path(e, path))?;
        Ok(Some(Original {
            path: path.to_path_buf(),
            bytes,
            meta,
        }))
    }
}

/// Replace each file with its new text: stage every `FILE+`, keep every `FILE-`, then rename
/// in order. On failure nothing is left changed: staged files are removed, and files already
/// renamed are put back from their backups (best effort; only a failing rename gets here).
fn replace_all(rewrites: &[(&Original, &[u8])]) -> io::Result<()> {
    let mut staged: Vec<PathBuf> = Vec::new();
    let result = (|| {
        for (old, new) in rewrites {
            staged.push(stage(old, new)?);
        }
        for (old, _) in rewrites {
            backup(old)?;
        }
        for (i, ((old, _), tmp)) in rewrites.iter().zip(&staged).enumerate() {
            if let Err(e) = fs::rename(tmp, &old.path) {
                for (done, _) in &rewrites[..i] {
                    let _ = fs::rename(sibling(&done.path, "-"), &done.path);
                }
                return Err(with_path(e, &old.path));
            }
        }
        Ok(())
    })();
    if result.is_err() {
        for tmp in &staged {
            let _ = fs::remove_file(tmp);
        }
    }
    result
}

/// Write `FILE+`: the new text, the original's owner and mode (& 0664, as shadow-utils), on
/// disk before return. A stale `FILE+` from a crash is replaced; anything else in the way
/// (a directory) is an error.
fn stage(old: &Original, new: &[u8]) -> io::Result<PathBuf> {
    let tmp = sibling(&old.path, "+");
    write_like(&tmp, new, &old.meta, Perms::New)?;
    Ok(tmp)
}

/// How a written file takes after the original.
#[derive(Clone, Copy, PartialEq)]
enum Perms {
    /// `FILE+`: owner, and mode & 0664 (what shadow-utils gives it).
    New,
    /// A copied `FILE-`: owner, mode, access and modification times.
    Copy,
}

/// A new file at `path` holding `bytes`, owned like `like`, fsync'd. Created 0600 and only
/// then given its owner and mode. Removed again on failure.
fn write_like(path: &Path, bytes: &[u8], like: &fs::Metadata, perms: Perms) -> io::Result<()> {
    match fs::remove_file(path) {
        Ok(()) => {}
        Err(e) if e.kind() == io::ErrorKind::NotFound => {}
        Err(e) => return Err(with_path(e, path)),
    }
    let mut f = sys::create_new(path, 0o600).map_err(|e| with_path(e, path))?;
    let result = (|| {
        f.write_all(bytes)?;
        std::os::unix::fs::fchown(&f, Some(like.uid()), Some(like.gid()))?;
        let mask = if perms == Perms::New { 0o664 } else { 0o7777 };
        f.set_permissions(fs::Permissions::from_mode(like.mode() & mask))?;
        if perms == Perms::Copy {
            f.set_times(
                fs::FileTimes::new()
                    .set_accessed(like.accessed()?)
                    .set_modified(like.modified()?),
            )?;
        }
        f.sync_all()
    })();
    if let Err(e) = result {
        let _ = fs::remove_file(path);
        return Err(with_path(e, path));
    }
    Ok(())
}

/// Keep the file being replaced as `FILE-`: a hard link to its inode (same bytes, owner,
/// mode, times; no data to write), made under a temporary name and renamed into place. If
/// the link is not the inode we read, a writer that ignores the lock replaced the file since:
/// give up rather than lose its change. Where hard links fail, a copy (as shadow-utils
/// makes it: same owner, mode, and times).
fn backup(old: &Original) -> io::Result<()> {
    let dash = sibling(&old.path, "-");
    let tmp = sibling(&old.path, "-+");
    match fs::remove_file(&tmp) {
        Ok(()) => {}
        Err(e) if e.kind() == io::ErrorKind::NotFound => {}
        Err(e) => return Err(with_path(e, &tmp)),
    }
    if fs::hard_link(&old.path, &tmp).is_ok() {
        let linked = fs::symlink_metadata(&tmp)?;
        if (linked.dev(), linked.ino()) != (old.meta.dev(), old.meta.ino()) {
            let _ = fs::remove_file(&tmp);
            return Err(io::Error::other(format!(
                "{} was replaced while we held /etc/.pwd.lock (by a tool that does not take \
                 it?); nothing changed, try again",
                old.path.display()
            )));
        }
    } else {
        write_like(&tmp, &old.bytes, &old.meta, Perms::Copy)?;
    }
    fs::rename(&tmp, &dash).map_err(|e| {
        let _ = fs::remove_file(&tmp);
        with_path(e, &dash)
    })
}
