//! Space set aside in the state directory so that endings can always be journaled.
//!
//! On a full filesystem an expired lease must still end: its record goes to the journal before
//! its memberships are removed. The `reserve` file holds [`RESERVE_BYTES`] of real blocks; when
//! an ending cannot be appended for want of space, the reserve is deleted and the append tried
//! again on what it freed. Transitions that may grant privilege never use it: while it is not
//! in place (and cannot be made again) they are refused with [`StateFull`].

use crate::os::files::allocate;
use std::fmt;
use std::fs::OpenOptions;
use std::io;
use std::os::unix::fs::{MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

/// How much the reserve holds. An ending writes its lease twice (ended, then memberships
/// removed), about 0.7 KB a record and at most about 4 KB with every free-text field at its
/// limit: 8 MiB journals the endings of some 6,000 leases ended together (1,000 at worst).
pub const RESERVE_BYTES: u64 = 8 << 20;

/// The file, and whether it is in place (allocated whole).
pub struct Reserve {
    path: PathBuf,
    in_place: bool,
    space: Space,
}

/// The free space of the state directory's filesystem, as the journal's writes see it. In the
/// daemon the filesystem itself says when it is full, and this does nothing; a test gives it
/// a simulated amount of free space that every write takes from and releasing the reserve
/// gives back, so that a full disk needs neither root nor a mount.
#[derive(Clone, Default)]
pub struct Space {
    #[cfg(test)]
    pub free: Option<std::sync::Arc<std::sync::atomic::AtomicU64>>,
}

impl Space {
    /// Before writing `bytes` of new data: ENOSPC when a simulated filesystem has no room.
    pub fn take(&self, bytes: u64) -> io::Result<()> {
        #[cfg(test)]
        if let Some(free) = &self.free {
            use std::sync::atomic::Ordering::SeqCst;
            return free
                .fetch_update(SeqCst, SeqCst, |f| f.checked_sub(bytes))
                .map(drop)
                .map_err(|_| io::Error::from_raw_os_error(libc::ENOSPC));
        }
        let _ = bytes;
        Ok(())
    }

    /// `bytes` were freed.
    pub fn give(&self, bytes: u64) {
        #[cfg(test)]
        if let Some(free) = &self.free {
            free.fetch_add(bytes, std::sync::atomic::Ordering::SeqCst);
        }
        let _ = bytes;
    }
}

impl Reserve {
    /// The reserve of `state_dir`: in place if a whole one is there, else made now if the
    /// space is there (not being able to is not an error: the journal then runs without it).
    pub fn open(state_dir: &Path, space: Space) -> Reserve {
        let path = state_dir.join("reserve");
        let whole = std::fs::metadata(&path)
            .is_ok_and(|m| m.len() == RESERVE_BYTES && m.blocks() * 512 >= RESERVE_BYTES);
        let mut r = Reserve {
            path,
            in_place: whole,
            space,
        };
        if !whole {
            if let Err(e) = r.make() {
                tracing::warn!("{}", StateWarning::NoReserve(r.dir(), e));
            }
        }
        r
    }

    pub fn in_place(&self) -> bool {
        self.in_place
    }

    /// The state directory it is in.
    pub fn dir(&self) -> PathBuf {
        self.path
            .parent()
            .map(Path::to_path_buf)
            .unwrap_or_default()
    }

    /// Allocate it (real blocks, fsync'd). A partial file is removed: its space is needed.
    pub fn make(&mut self) -> io::Result<()> {
        self.space.take(RESERVE_BYTES)?;
        let made = OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(0o600)
            .open(&self.path)
            .and_then(|mut f| allocate(&mut f, RESERVE_BYTES));
        if made.is_err() {
            let _ = std::fs::remove_file(&self.path);
            self.space.give(RESERVE_BYTES);
        }
        self.in_place = made.is_ok();
        made
    }

    /// Give its space back to the filesystem, for endings.
    pub fn release(&mut self) -> io::Result<()> {
        if std::mem::take(&mut self.in_place) {
            self.space.give(RESERVE_BYTES);
        }
        match std::fs::remove_file(&self.path) {
            Err(e) if e.kind() != io::ErrorKind::NotFound => Err(e),
            _ => Ok(()),
        }
    }
}

/// Whether an error means the filesystem has no room (or the quota none) for the write.
pub fn is_no_space(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::StorageFull | io::ErrorKind::QuotaExceeded
    )
}

/// Whether this is the refusal of a transition that may grant privilege on a full state
/// directory (a [`StateFull`] inside an `io::Error`).
pub fn is_state_full(e: &io::Error) -> bool {
    e.get_ref().is_some_and(|inner| inner.is::<StateFull>())
}

/// A request, approval or extension refused because the state directory is full and the
/// reserve is kept for endings.
#[derive(Debug)]
pub struct StateFull {
    pub dir: PathBuf,
}

impl StateFull {
    /// As an `io::Error`, the form the journal's callers get it in.
    pub fn error(dir: &Path) -> io::Error {
        io::Error::new(
            io::ErrorKind::StorageFull,
            StateFull {
                dir: dir.to_path_buf(),
            },
        )
    }
}

impl fmt::Display for StateFull {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "the state directory {} is full: new requests, approvals and extensions are refused until space is freed; endings still take effect",
            self.dir.display()
        )
    }
}

impl std::error::Error for StateFull {}

/// What `elevate status` and the log say about the state directory.
#[derive(Debug)]
pub enum StateWarning {
    /// The reserve was used for endings and space has not come back.
    OnReserve(PathBuf),
    /// A write that may grant privilege found no space (the reserve is still whole).
    Full(PathBuf),
    /// Endings not yet in the journal (they took effect; the journal will catch up).
    Unsaved(PathBuf, usize),
    /// The reserve could not be made.
    NoReserve(PathBuf, io::Error),
}

impl fmt::Display for StateWarning {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            StateWarning::OnReserve(dir) => write!(
                f,
                "state directory {} full: running on reserve (new requests, approvals and extensions are refused until space is freed)",
                dir.display()
            ),
            StateWarning::Full(dir) => write!(
                f,
                "state directory {} full: new requests, approvals and extensions are refused until space is freed",
                dir.display()
            ),
            StateWarning::Unsaved(path, n) => write!(
                f,
                "{n} lease record(s) of endings not yet written to {} (the endings took effect; written once the disk takes them)",
                path.display()
            ),
            StateWarning::NoReserve(dir, e) => write!(
                f,
                "cannot set {RESERVE_BYTES} bytes aside in {} for endings: {e}; new requests are refused until there is room",
                dir.display()
            ),
        }
    }
}
