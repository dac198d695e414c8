//! The lock shadow-utils uses, and fchown. The only `unsafe` in the crate.

use std::fs::{File, OpenOptions};
use std::io;
use std::os::fd::AsRawFd;
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;
use std::time::{Duration, Instant};

/// Held while editing; the lock is released when the file is closed.
pub struct Lock(#[allow(dead_code)] File);

/// A write lock on `path` (`/etc/.pwd.lock`, as lckpwdf(3) takes it), waiting up to `timeout`.
/// An open-file-description lock: it conflicts with lckpwdf's classic record lock held by
/// another process (gpasswd, useradd) and, unlike a classic lock, also with other threads here.
pub fn lock_file(path: &Path, timeout: Duration) -> io::Result<Lock> {
    let f = OpenOptions::new()
        .write(true)
        .create(true)
        .mode(0o600)
        .custom_flags(libc::O_CLOEXEC | libc::O_NOFOLLOW)
        .open(path)?;
    let start = Instant::now();
    loop {
        // SAFETY: flock is plain data; zeroed is a valid starting value.
        let mut fl: libc::flock = unsafe { std::mem::zeroed() };
        fl.l_type = libc::F_WRLCK as libc::c_short;
        fl.l_whence = libc::SEEK_SET as libc::c_short;
        // SAFETY: F_OFD_SETLK with a valid flock (l_pid 0, as OFD locks require) on an open fd.
        if unsafe { libc::fcntl(f.as_raw_fd(), libc::F_OFD_SETLK, &fl) } == 0 {
            return Ok(Lock(f));
        }
        let e = io::Error::last_os_error();
        if !matches!(
            e.raw_os_error(),
            Some(libc::EAGAIN) | Some(libc::EACCES) | Some(libc::EINTR)
        ) {
            return Err(e);
        }
        if start.elapsed() >= timeout {
            return Err(io::Error::new(
                io::ErrorKind::TimedOut,
                format!("{} is locked by another program", path.display()),
            ));
        }
        std::thread::sleep(Duration::from_millis(5));
    }
}

pub fn fchown(f: &File, uid: u32, gid: u32) -> io::Result<()> {
    // SAFETY: fchown on an open fd with plain integer ids.
    if unsafe { libc::fchown(f.as_raw_fd(), uid, gid) } != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}
