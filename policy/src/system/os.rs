//! The policy crate's OS layer: the file system calls behind [`System`](super::System)'s
//! default methods (stat, lstat, directory listing, `O_NOFOLLOW` opens, realpath, execute
//! bits), `gethostname(2)` and /proc/self/mountinfo (for [`crate::setgid`]). Its one
//! `unsafe` block is here; the NSS lookups live in `elevate_base::os::nss`, shared with the
//! daemon.

use super::{FileInfo, PolicyFile};
use elevate_base::os::cerr;
use std::ffi::OsString;
use std::fs::{File, Metadata};
use std::io::{self, Read};
use std::os::unix::fs::{MetadataExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

fn info(m: &Metadata) -> FileInfo {
    FileInfo {
        uid: m.uid(),
        mode: m.mode(),
        is_dir: m.is_dir(),
        is_file: m.file_type().is_file(),
        len: m.len(),
    }
}

pub fn stat(path: &Path) -> io::Result<FileInfo> {
    std::fs::metadata(path).map(|m| info(&m))
}

pub fn lstat(path: &Path) -> io::Result<FileInfo> {
    std::fs::symlink_metadata(path).map(|m| info(&m))
}

pub fn list_dir(dir: &Path) -> io::Result<Vec<io::Result<OsString>>> {
    Ok(std::fs::read_dir(dir)?
        .map(|entry| entry.map(|e| e.file_name()))
        .collect())
}

impl PolicyFile for File {
    fn info(&self) -> io::Result<FileInfo> {
        self.metadata().map(|m| info(&m))
    }
    fn read_up_to(&mut self, limit: u64) -> io::Result<Vec<u8>> {
        let mut bytes = Vec::new();
        self.take(limit).read_to_end(&mut bytes)?;
        Ok(bytes)
    }
}

/// Open for reading; a final symlink is refused (`ELOOP`), and neither a FIFO nor a terminal
/// can block or become the controlling terminal.
pub fn open_no_follow(path: &Path) -> io::Result<Box<dyn PolicyFile>> {
    let file = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK | libc::O_NOCTTY)
        .open(path)?;
    Ok(Box::new(file))
}

/// The error [`open_no_follow`] gives for a symlink.
pub fn is_symlink_refusal(e: &io::Error) -> bool {
    e.raw_os_error() == Some(libc::ELOOP)
}

pub fn canonicalize(path: &Path) -> Option<PathBuf> {
    std::fs::canonicalize(path).ok()
}

/// This process's view of the mounts (`None` when /proc is not there).
pub fn mountinfo() -> Option<String> {
    std::fs::read_to_string("/proc/self/mountinfo").ok()
}

pub fn is_executable(path: &Path) -> bool {
    std::fs::metadata(path)
        .map(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
        .unwrap_or(false)
}

/// gethostname(2), or "localhost" if it fails.
pub fn hostname() -> String {
    let mut buf = [0u8; 256];
    // SAFETY: `buf` is a live, writable buffer of `buf.len()` bytes; gethostname writes at
    // most that many bytes.
    let rc = unsafe { libc::gethostname(buf.as_mut_ptr().cast::<libc::c_char>(), buf.len()) };
    if cerr(rc).is_err() {
        return "localhost".to_string();
    }
    // The result may lack the terminating NUL when truncated: take bytes up to the first NUL.
    let end = buf.iter().position(|&b| b == 0).unwrap_or(buf.len());
    match std::str::from_utf8(buf.get(..end).unwrap_or_default()) {
        Ok(s) if !s.is_empty() => s.to_string(),
        _ => "localhost".to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hostname_is_not_empty() {
        assert!(!hostname().is_empty());
    }
}
