//! The lock shadow-utils takes, as an fcntl(2) call std does not wrap, and the open(2) flags
//! the files are opened with. The crate's OS layer: its only `unsafe` and its only use of
//! libc, errors through `elevate_base::os::cerr`.
//!
//! glibc's `lckpwdf(3)` opens `/etc/.pwd.lock` (O_WRONLY|O_CREAT|O_CLOEXEC, 0600) and takes a
//! classic whole-file write lock on it with `F_SETLKW`, giving up after 15 s (an `alarm`).
//! shadow-utils (gpasswd, usermod, groupadd, vigr ...), util-linux vipw and systemd-sysusers
//! all take it before touching /etc/group or /etc/gshadow. We take a write lock on the same
//! file, but an *open file description* lock (`F_OFD_SETLK`, Linux ≥ 3.15):
//!
//! - OFD locks and classic locks conflict with each other, so we exclude, and are excluded by,
//!   every lckpwdf() caller in other processes;
//! - unlike a classic lock (owned by the process), an OFD lock is owned by the open file, so two
//!   threads of the daemon exclude each other too, and closing some other descriptor of the
//!   file never drops it;
//! - lckpwdf() itself is unusable in the daemon: it is hard-wired to the real /etc (no test
//!   root), it installs a process-wide SIGALRM handler and `alarm(15)` (in a multi-threaded
//!   process the signal may land on another thread and the wait is then unbounded), and a
//!   second call while the process holds it fails at once instead of waiting.
//!
//! `F_OFD_SETLKW` cannot time out without a signal either, so we poll `F_OFD_SETLK` with a short
//! backoff up to the caller's timeout (15 s by default, lckpwdf's). The lock is released when
//! the returned [`Lock`] is dropped (the descriptor closes), including on unwinding.

use elevate_base::os::cerr;
use std::fs::{File, OpenOptions};
use std::io;
use std::os::fd::AsRawFd;
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;
use std::time::{Duration, Instant};

/// Open `path` for reading as shadow-utils does: O_NOFOLLOW (a symlinked /etc/group is
/// refused), O_NONBLOCK (a FIFO planted there cannot hang us), close-on-exec.
pub fn open_for_reading(path: &Path) -> io::Result<File> {
    OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK | libc::O_CLOEXEC)
        .open(path)
}

/// Create `path`, which must not exist, for writing with `mode` (before the umask), never
/// through a symbolic link, close-on-exec.
pub fn create_new(path: &Path, mode: u32) -> io::Result<File> {
    OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(mode)
        .custom_flags(libc::O_NOFOLLOW | libc::O_CLOEXEC)
        .open(path)
}

/// A held write lock on the lock file; released on drop.
#[derive(Debug)]
pub struct Lock {
    _file: File,
}

/// A whole-file write lock request, as lckpwdf asks for.
fn write_lock_request() -> libc::flock {
    // SAFETY: `flock` is a plain C struct of integers; all-zero is a valid value (and l_pid 0
    // is what OFD locks require).
    let mut fl: libc::flock = unsafe { std::mem::zeroed() };
    fl.l_type = libc::F_WRLCK as libc::c_short;
    fl.l_whence = libc::SEEK_SET as libc::c_short;
    fl
}

/// Take the write lock on `path` (created 0600 if missing, like lckpwdf), waiting up to
/// `timeout`. Errors with `TimedOut` if someone else still holds it then.
pub fn lock_file(path: &Path, timeout: Duration) -> io::Result<Lock> {
    let file = OpenOptions::new()
        .write(true)
        .create(true)
        .mode(0o600)
        .custom_flags(libc::O_CLOEXEC | libc::O_NOFOLLOW)
        .open(path)?;
    let fl = write_lock_request();
    let start = Instant::now();
    let mut pause = Duration::from_millis(1);
    loop {
        // SAFETY: F_OFD_SETLK reads the valid `flock` behind the pointer during the call only;
        // the descriptor is open for the duration.
        let Err(e) = cerr(unsafe { libc::fcntl(file.as_raw_fd(), libc::F_OFD_SETLK, &fl) }) else {
            return Ok(Lock { _file: file });
        };
        if !matches!(
            e.raw_os_error(),
            Some(libc::EAGAIN | libc::EACCES | libc::EINTR)
        ) {
            return Err(e);
        }
        let waited = start.elapsed();
        if waited >= timeout {
            return Err(io::Error::new(
                io::ErrorKind::TimedOut,
                format!(
                    "{} is still locked by another program after {:.1} s",
                    path.display(),
                    waited.as_secs_f64()
                ),
            ));
        }
        std::thread::sleep(pause.min(timeout - waited));
        pause = (pause * 2).min(Duration::from_millis(20));
    }
}

/// Exactly the lock lckpwdf() takes — a classic (process-owned) whole-file write lock — but
/// without waiting: tests use it to play gpasswd holding the lock.
#[cfg(test)]
pub fn classic_lock(file: &File) -> io::Result<()> {
    let fl = write_lock_request();
    // SAFETY: F_SETLK reads the valid `flock` during the call only; the descriptor is open.
    cerr(unsafe { libc::fcntl(file.as_raw_fd(), libc::F_SETLK, &fl) }).map(drop)
}
