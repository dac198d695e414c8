//! The CLI's system calls that std does not wrap: descriptor hygiene, the signal self-pipe,
//! poll, terminal modes and the caller's uid. Thin wrappers: every `unsafe` block and libc
//! call of the CLI is here, failures read through `elevate_base::os::cerr`.

use elevate_base::os::{cerr, cerr_retry};
use std::io;
use std::os::fd::{AsRawFd, BorrowedFd, FromRawFd, OwnedFd, RawFd};
use std::sync::atomic::{AtomicI32, Ordering};

/// Open /dev/null on any of fds 0–2 that is closed, so descriptors we open later can never
/// be numbered 0–2 and be passed to the daemon as someone's stdio.
pub fn ensure_stdio_open() {
    for fd in 0..3 {
        // SAFETY: F_GETFD only queries the descriptor table.
        if cerr(unsafe { libc::fcntl(fd, libc::F_GETFD) }).is_err() {
            // SAFETY: static NUL-terminated path; the new fd (the lowest free one) is kept for
            // the life of the process on purpose. If even this fails, there is nothing better
            // to do than to go on.
            let _ = cerr(unsafe { libc::open(c"/dev/null".as_ptr(), libc::O_RDWR) });
        }
    }
}

/// A descriptor for the current directory, to hand to the daemon as the command's cwd.
/// Opened for reading if we may, else as `O_PATH` (a directory we may only search).
pub fn open_cwd() -> io::Result<OwnedFd> {
    let open = |flags: libc::c_int| {
        // SAFETY: static NUL-terminated path; cerr checks the result.
        let fd = cerr(unsafe { libc::open(c".".as_ptr(), flags | libc::O_CLOEXEC) })?;
        // SAFETY: open returned a fresh descriptor owned by nobody else.
        Ok(unsafe { OwnedFd::from_raw_fd(fd) })
    };
    open(libc::O_RDONLY | libc::O_DIRECTORY).or_else(|_| open(libc::O_PATH | libc::O_DIRECTORY))
}

static SIGNAL_PIPE: AtomicI32 = AtomicI32::new(-1);

extern "C" fn on_signal(sig: libc::c_int) {
    let fd = SIGNAL_PIPE.load(Ordering::Relaxed);
    if fd >= 0 {
        let b = sig as u8;
        // SAFETY: write(2) is async-signal-safe. Its result is ignored on purpose, so cerr has
        // nothing to do here: a full pipe just drops the byte, and a handler has no one to tell.
        unsafe { libc::write(fd, (&b as *const u8).cast(), 1) };
    }
}

/// Route `signals` into a non-blocking pipe; returns its read end.
pub fn signal_pipe(signals: &[libc::c_int]) -> io::Result<OwnedFd> {
    let mut fds = [0 as RawFd; 2];
    // SAFETY: pipe2 writes two descriptors into the array.
    cerr(unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC | libc::O_NONBLOCK) })?;
    // SAFETY: fresh descriptors from pipe2. The write end is intentionally leaked: the signal
    // handler may use it until the process exits.
    let read = unsafe { OwnedFd::from_raw_fd(fds[0]) };
    SIGNAL_PIPE.store(fds[1], Ordering::Relaxed);
    for &sig in signals {
        set_handler(sig, on_signal as *const () as libc::sighandler_t)?;
    }
    Ok(read)
}

/// Put `signals` back to their default action (after a `signal_pipe` is no longer read).
pub fn default_signals(signals: &[libc::c_int]) {
    for &sig in signals {
        let _ = set_handler(sig, libc::SIG_DFL);
    }
}

fn set_handler(sig: libc::c_int, handler: libc::sighandler_t) -> io::Result<()> {
    // SAFETY: sigaction is plain data; zeroed is a valid empty mask and flags.
    let mut sa: libc::sigaction = unsafe { std::mem::zeroed() };
    sa.sa_sigaction = handler;
    sa.sa_flags = libc::SA_RESTART;
    // SAFETY: installs a handler that only calls async-signal-safe write(2), or a default.
    cerr(unsafe { libc::sigaction(sig, &sa, std::ptr::null_mut()) })?;
    Ok(())
}

/// Stop this process as the terminal would have (after Ctrl-Z was relayed to the command);
/// returns when the shell continues us.
pub fn stop_self() {
    // SAFETY: raise with a constant signal; SIGSTOP cannot be caught, we resume on SIGCONT.
    // raise(3) cannot fail for a valid signal number, and returns no errno to read.
    unsafe { libc::raise(libc::SIGSTOP) };
}

/// Drain the self-pipe: the signals received since the last call.
pub fn read_signals(pipe: BorrowedFd<'_>) -> Vec<libc::c_int> {
    let mut buf = [0u8; 64];
    // SAFETY: reading into a local buffer from a non-blocking pipe.
    let n = cerr(unsafe { libc::read(pipe.as_raw_fd(), buf.as_mut_ptr().cast(), buf.len()) });
    // Nothing to read (EAGAIN) or an error: no signals.
    let Ok(n @ 1..) = n else {
        return vec![];
    };
    buf[..n as usize]
        .iter()
        .map(|&b| b as libc::c_int)
        .collect()
}

/// Wait until one of the fds is readable (or hung up), at most `timeout_ms` (-1: no limit).
/// Returns their readiness in order (all false on timeout).
pub fn poll_readable(fds: &[BorrowedFd<'_>], timeout_ms: i32) -> io::Result<Vec<bool>> {
    let mut pfds: Vec<libc::pollfd> = fds
        .iter()
        .map(|fd| libc::pollfd {
            fd: fd.as_raw_fd(),
            events: libc::POLLIN,
            revents: 0,
        })
        .collect();
    cerr_retry(|| {
        // SAFETY: pfds is a valid array of pollfd of the given length.
        unsafe { libc::poll(pfds.as_mut_ptr(), pfds.len() as libc::nfds_t, timeout_ms) }
    })?;
    Ok(pfds.iter().map(|p| p.revents != 0).collect())
}

/// Terminal modes of stdin, saved so they can be restored after the command (which shares
/// the terminal) exits — including when it was killed mid-way through changing them.
pub struct SavedTermios(Option<libc::termios>);

/// The terminal modes of `fd`; `None` when it is not a terminal.
pub fn tcgetattr(fd: RawFd) -> Option<libc::termios> {
    // SAFETY: termios is plain data; all zeroes is a valid value for tcgetattr to overwrite.
    let mut t: libc::termios = unsafe { std::mem::zeroed() };
    // SAFETY: a valid termios buffer; a bad or non-terminal fd is an error return.
    cerr(unsafe { libc::tcgetattr(fd, &mut t) }).ok().map(|_| t)
}

/// Set the terminal modes of `fd` (`when`: TCSANOW, TCSADRAIN or TCSAFLUSH).
pub fn tcsetattr(fd: RawFd, when: libc::c_int, t: &libc::termios) -> bool {
    // SAFETY: a valid termios value; a bad fd is an error return.
    cerr(unsafe { libc::tcsetattr(fd, when, t) }).is_ok()
}

impl SavedTermios {
    pub fn save() -> SavedTermios {
        SavedTermios(tcgetattr(0))
    }

    /// Only from the terminal's foreground process group: from the background (`elevate
    /// CMD &`, or after Ctrl-Z and `bg`) tcsetattr would stop us with SIGTTOU, and the terminal
    /// then belongs to another job whose modes are not ours to change.
    pub fn restore(&self) {
        if let Some(t) = &self.0 {
            // SAFETY: getpgrp only queries, and cannot fail.
            let ours = unsafe { libc::getpgrp() };
            // SAFETY: tcgetpgrp only queries; fd 0 is open (ensure_stdio_open).
            let foreground = cerr(unsafe { libc::tcgetpgrp(0) }).is_ok_and(|g| g == ours);
            if foreground {
                tcsetattr(0, libc::TCSADRAIN, t);
            }
        }
    }
}
