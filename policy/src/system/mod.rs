//! The policy's only window on the machine, the [`System`] trait: whether users and groups
//! exist (unknown ones are warnings), where command paths lead, and the policy files and
//! directories themselves (their owner, mode and bytes). The loader and the resolver reach
//! the machine through nothing else; tests substitute a [`FakeSystem`].
//!
//! * [`real`]: [`RealSystem`], NSS through `elevate_base::os::nss`;
//! * [`fake`]: [`FakeSystem`], for tests;
//! * [`os`]: the file system calls and `gethostname` behind the trait's defaults — the
//!   crate's only `unsafe`, and (besides `Config::load`) its only direct file system access.

pub mod fake;
pub mod os;
pub mod real;

pub use elevate_base::os::nss::Passwd;
pub use fake::FakeSystem;
pub use os::hostname;
pub use real::RealSystem;

use elevate_base::Uid;
use std::ffi::OsString;
use std::io;
use std::path::{Path, PathBuf};

/// What the loader checks about a policy file or directory (from `stat(2)`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FileInfo {
    pub uid: u32,
    /// `st_mode`: file type and permission bits.
    pub mode: u32,
    pub is_dir: bool,
    pub is_file: bool,
    pub len: u64,
}

/// A policy file opened for reading; checked through the open descriptor, so it cannot be
/// swapped between the checks and the read.
pub trait PolicyFile {
    fn info(&self) -> io::Result<FileInfo>;
    /// At most `limit` bytes from the start.
    fn read_up_to(&mut self, limit: u64) -> io::Result<Vec<u8>>;
}

pub trait System {
    fn user_exists(&self, name: &str) -> bool;
    fn group_exists(&self, name: &str) -> bool;
    /// The path with every symlink resolved, or `None` if it does not exist here.
    fn canonicalize(&self, path: &Path) -> Option<PathBuf>;
    /// A regular file (after following symlinks) with at least one execute bit.
    ///
    /// The default asks the real filesystem; implementations that fake the system override it.
    fn is_executable(&self, path: &Path) -> bool {
        os::is_executable(path)
    }
    /// The user's uid, when known (the linter treats any uid 0 account as root).
    fn user_uid(&self, _name: &str) -> Option<Uid> {
        None
    }
    /// `stat(2)`, following symlinks. Default: the real file system.
    fn stat(&self, path: &Path) -> io::Result<FileInfo> {
        os::stat(path)
    }
    /// `lstat(2)`: the link itself. Default: the real file system.
    fn lstat(&self, path: &Path) -> io::Result<FileInfo> {
        os::lstat(path)
    }
    /// The names in a directory (in no particular order), with an error for each entry that
    /// could not be read. Default: the real file system.
    fn list_dir(&self, dir: &Path) -> io::Result<Vec<io::Result<OsString>>> {
        os::list_dir(dir)
    }
    /// Open a file for reading without following a final symlink (`O_NOFOLLOW`; a symlink
    /// fails with `ELOOP`, see [`os::is_symlink_refusal`]). Default: the real file system.
    fn open_no_follow(&self, path: &Path) -> io::Result<Box<dyn PolicyFile>> {
        os::open_no_follow(path)
    }
}
