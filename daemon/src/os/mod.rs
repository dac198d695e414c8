//! Every system call of the daemon's own that std does not wrap (those other crates need too
//! — clocks, kill, user ids, NSS — are in `elevate_base::os`). Each function is a thin wrapper
//! checked through `cerr`; the rest of the daemon never writes `unsafe`. Submodules: `syslog`,
//! `pam_auth` (the daemon as a PAM application, for step-up) and `setgid` (the end-of-lease
//! walk that clears set-gid bits).
//!
//! The forked child (see [`spawn`]) runs in a copy of a multi-threaded process, so between
//! fork and exec it may only make raw system calls: no allocation, no locks, no glibc
//! functions that broadcast to other threads (glibc's setuid does; the raw syscall does not,
//! and credentials are per-thread in the kernel, so in the single-threaded child it is exact).

pub mod files;
pub mod pam_auth;
pub mod setgid;
pub mod syslog;

use elevate_base::os::{cerr, cerr_retry};
use std::ffi::CString;
use std::io;
use std::mem;
use std::os::fd::{AsRawFd, BorrowedFd, FromRawFd, OwnedFd, RawFd};

/// Make sure fds 0, 1 and 2 are open (on /dev/null if not), so that descriptors we receive
/// from clients can never be numbered 0–2 and be mistaken for the daemon's own stdio.
pub fn ensure_stdio_open() {
    for fd in 0..3 {
        // SAFETY: F_GETFD only queries the descriptor table.
        if unsafe { libc::fcntl(fd, libc::F_GETFD) } == -1 {
            // SAFETY: open with a static NUL-terminated path; the returned fd is the lowest free
            // one, i.e. `fd`, and is deliberately kept open for the life of the process.
            unsafe { libc::open(c"/dev/null".as_ptr(), libc::O_RDWR) };
        }
    }
}

/// `openat(2)` relative to `dir` with the given flags (O_CLOEXEC always added).
pub fn openat(dir: BorrowedFd<'_>, name: &CString, flags: libc::c_int) -> io::Result<OwnedFd> {
    // SAFETY: `name` is NUL-terminated and outlives the call; `dir` is a valid open fd.
    let fd =
        cerr(unsafe { libc::openat(dir.as_raw_fd(), name.as_ptr(), flags | libc::O_CLOEXEC) })?;
    // SAFETY: openat returned a fresh descriptor that nothing else owns.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

/// `fstat(2)`.
pub fn fstat(fd: BorrowedFd<'_>) -> io::Result<libc::stat> {
    // SAFETY: an all-zero stat is a valid buffer for the kernel to fill.
    let mut st: libc::stat = unsafe { mem::zeroed() };
    // SAFETY: `st` is a valid, writable stat buffer; `fd` is open.
    cerr(unsafe { libc::fstat(fd.as_raw_fd(), &mut st) })?;
    Ok(st)
}

/// A descriptor's file status flags (`fcntl(F_GETFL)`): its access mode, `O_PATH`, ….
pub fn status_flags(fd: BorrowedFd<'_>) -> io::Result<libc::c_int> {
    // SAFETY: F_GETFL takes no argument and only reads the open file description.
    cerr(unsafe { libc::fcntl(fd.as_raw_fd(), libc::F_GETFL) })
}

/// The supplementary groups the peer of a Unix stream socket had when it connected
/// (`SO_PEERGROUPS`: the kernel's record, as race-free as `SO_PEERCRED`).
pub fn peer_groups(sock: BorrowedFd<'_>) -> io::Result<Vec<libc::gid_t>> {
    const GID: usize = mem::size_of::<libc::gid_t>();
    let mut groups: Vec<libc::gid_t> = vec![0; 64];
    loop {
        let mut len = libc::socklen_t::try_from(groups.len() * GID).unwrap_or(libc::socklen_t::MAX);
        // SAFETY: `groups` is writable for `len` bytes; the kernel writes at most that and
        // stores the length it needs (or wrote) in `len`.
        let r = unsafe {
            libc::getsockopt(
                sock.as_raw_fd(),
                libc::SOL_SOCKET,
                libc::SO_PEERGROUPS,
                groups.as_mut_ptr().cast(),
                &mut len,
            )
        };
        let needed = usize::try_from(len).unwrap_or(usize::MAX) / GID;
        match cerr(r) {
            Ok(_) => {
                groups.truncate(needed);
                return Ok(groups);
            }
            // NGROUPS_MAX is 65536: a bigger answer is not one to grow for.
            Err(e)
                if e.raw_os_error() == Some(libc::ERANGE)
                    && needed > groups.len()
                    && needed <= 65536 =>
            {
                groups.resize(needed, 0);
            }
            Err(e) => return Err(e),
        }
    }
}

/// Whether the file a descriptor refers to has a POSIX access ACL (asked through
/// `/proc/self/fd`, which works for `O_PATH` descriptors too). An error other than "none" or
/// "not supported here" is an answer of yes: the caller fails closed.
pub fn has_access_acl(fd: BorrowedFd<'_>) -> bool {
    let Ok(path) = CString::new(format!("/proc/self/fd/{}", fd.as_raw_fd())) else {
        return true;
    };
    // SAFETY: both strings are NUL-terminated; a null buffer of size 0 only asks for the size.
    let r = unsafe {
        libc::getxattr(
            path.as_ptr(),
            c"system.posix_acl_access".as_ptr(),
            std::ptr::null_mut(),
            0,
        )
    };
    match cerr(r) {
        Ok(_) => true,
        Err(e) => !matches!(
            e.raw_os_error(),
            Some(libc::ENODATA) | Some(libc::EOPNOTSUPP)
        ),
    }
}

/// `pread(2)` of up to `buf.len()` bytes at offset 0.
pub fn pread_start(fd: BorrowedFd<'_>, buf: &mut [u8]) -> io::Result<usize> {
    // SAFETY: buf is valid and writable for buf.len() bytes.
    let n = unsafe { libc::pread(fd.as_raw_fd(), buf.as_mut_ptr().cast(), buf.len(), 0) };
    Ok(cerr(n)?.unsigned_abs())
}

/// A pidfd for `pid`. The caller makes sure the pid still names the intended process: our
/// own unreaped child, or a process whose start time it checks after opening.
pub fn pidfd_open(pid: libc::pid_t) -> io::Result<OwnedFd> {
    // SAFETY: pidfd_open takes a pid and flags and returns a new fd or -1.
    let fd = cerr(unsafe { libc::syscall(libc::SYS_pidfd_open, pid, 0) })?;
    // SAFETY: the syscall returned a fresh descriptor that nothing else owns.
    Ok(unsafe { OwnedFd::from_raw_fd(fd as RawFd) })
}

/// How a reaped child ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ChildExit {
    Code(i32),
    Signal(i32),
}

/// Reap the child behind `pidfd` if it has exited. `Ok(None)` if it is still running.
pub fn waitid_pidfd(pidfd: BorrowedFd<'_>) -> io::Result<Option<ChildExit>> {
    // SAFETY: siginfo_t is plain data; all-zero is valid and lets us detect "no child yet".
    let mut info: libc::siginfo_t = unsafe { mem::zeroed() };
    // SAFETY: `info` is a valid buffer; P_PIDFD with an open pidfd of our own child.
    cerr(unsafe {
        libc::waitid(
            libc::P_PIDFD,
            pidfd.as_raw_fd() as libc::id_t,
            &mut info,
            libc::WEXITED | libc::WNOHANG,
        )
    })?;
    // SAFETY: after a successful waitid the kernel filled si_pid/si_status (zero if nothing exited).
    let (pid, status) = unsafe { (info.si_pid(), info.si_status()) };
    if pid == 0 {
        return Ok(None);
    }
    Ok(Some(if info.si_code == libc::CLD_EXITED {
        ChildExit::Code(status)
    } else {
        ChildExit::Signal(status)
    }))
}

/// Signal a whole process group. Only called while its leader is our unreaped child, so the
/// group id still names the command we started.
pub fn kill_group(pgid: libc::pid_t, sig: libc::c_int) -> io::Result<()> {
    if pgid <= 1 {
        return Err(io::Error::from_raw_os_error(libc::EINVAL));
    }
    elevate_base::os::process::kill(elevate_base::Pid(-pgid), sig)
}

/// What the child executes.
pub enum Exe {
    /// The checked executable (opened O_RDONLY|O_NOFOLLOW by the path walk). Scripts are
    /// exec'd via /dev/fd/N by the kernel, so their fd must survive exec.
    Checked { fd: OwnedFd, script: bool },
    /// A path exec'd after dropping privileges, with the caller's own permissions.
    Path(CString),
}

/// Everything the child needs, prepared before fork so the child never allocates.
pub struct ExecPlan {
    pub exe: Exe,
    pub argv: Vec<CString>,
    pub envp: Vec<CString>,
    pub stdio: [OwnedFd; 3],
    pub cwd: OwnedFd,
    pub uid: libc::uid_t,
    pub gid: libc::gid_t,
    pub groups: Vec<libc::gid_t>,
}

/// Which step failed in the child, reported through the status pipe.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ChildStage {
    Session = 1,
    Stdio,
    Groups,
    Gid,
    Uid,
    Cwd,
    Signals,
    Exec,
}

impl ChildStage {
    fn from_u8(b: u8) -> Option<ChildStage> {
        use ChildStage::*;
        [Session, Stdio, Groups, Gid, Uid, Cwd, Signals, Exec]
            .into_iter()
            .find(|s| *s as u8 == b)
    }

    pub fn describe(self) -> &'static str {
        match self {
            ChildStage::Session => "cannot start a new session",
            ChildStage::Stdio => "cannot attach the terminal/standard streams",
            ChildStage::Groups => "cannot set supplementary groups",
            ChildStage::Gid => "cannot set group id",
            ChildStage::Uid => "cannot set user id",
            ChildStage::Cwd => "the target user cannot enter the working directory",
            ChildStage::Signals => "cannot reset signal state",
            ChildStage::Exec => "cannot execute the command",
        }
    }
}

/// A started command: its pid (also its session and process-group id) and a pidfd.
pub struct Spawned {
    pub pid: libc::pid_t,
    pub pidfd: OwnedFd,
}

/// Fork and exec `plan`. Blocks until the child has exec'd (or failed), so call it from a
/// blocking thread. On failure nothing is left running.
pub fn spawn(plan: &ExecPlan) -> Result<Spawned, (Option<ChildStage>, io::Error)> {
    let mut argv: Vec<*const libc::c_char> = plan.argv.iter().map(|a| a.as_ptr()).collect();
    argv.push(std::ptr::null());
    let mut envp: Vec<*const libc::c_char> = plan.envp.iter().map(|a| a.as_ptr()).collect();
    envp.push(std::ptr::null());

    let mut pipe = [0 as RawFd; 2];
    // SAFETY: pipe2 writes two fds into the 2-element array.
    cerr(unsafe { libc::pipe2(pipe.as_mut_ptr(), libc::O_CLOEXEC) }).map_err(|e| (None, e))?;
    // SAFETY: pipe2 succeeded, so both fds are fresh and owned by nobody else.
    let (rd, wr) = unsafe { (OwnedFd::from_raw_fd(pipe[0]), OwnedFd::from_raw_fd(pipe[1])) };

    // SAFETY: fork is safe to call; the child branch below only performs raw system calls on
    // memory prepared before the fork (argv/envp arrays, plan fields) and then execs or _exits.
    let pid = cerr(unsafe { libc::fork() }).map_err(|e| (None, e))?;
    if pid == 0 {
        // SAFETY: we are the single-threaded child; see child_after_fork's contract.
        unsafe { child_after_fork(plan, &argv, &envp, wr.as_raw_fd()) }
    }
    drop(wr);
    let pidfd = pidfd_open(pid);
    // Read the child's report: EOF means exec succeeded (the CLOEXEC pipe closed on exec).
    let mut report = [0u8; 5];
    let mut got = 0;
    while got < report.len() {
        let rest = &mut report[got..];
        // SAFETY: reading into the remaining part of a local buffer.
        let n = cerr_retry(|| unsafe {
            libc::read(rd.as_raw_fd(), rest.as_mut_ptr().cast(), rest.len())
        });
        match n {
            Ok(n) if n > 0 => got += n.unsigned_abs(),
            _ => break,
        }
    }
    if got == 0 {
        return match pidfd {
            Ok(pidfd) => Ok(Spawned { pid, pidfd }),
            Err(e) => {
                // Cannot supervise it: do not leave it running unsupervised.
                let _ = kill_group(pid, libc::SIGKILL);
                reap_blocking(pid);
                Err((None, e))
            }
        };
    }
    reap_blocking(pid);
    let stage = ChildStage::from_u8(report[0]);
    let errno = i32::from_ne_bytes([report[1], report[2], report[3], report[4]]);
    Err((stage, io::Error::from_raw_os_error(errno)))
}

fn reap_blocking(pid: libc::pid_t) {
    let mut status = 0;
    // SAFETY: waiting for our own child; status is a valid out-pointer.
    let _ = cerr_retry(|| unsafe { libc::waitpid(pid, &mut status, 0) });
}

/// The child between fork and exec.
///
/// # Safety
/// Must be called only in the child of a fork, once, with pointers into memory that stays
/// valid (it was allocated before the fork and is never freed in the child). Never returns.
unsafe fn child_after_fork(
    plan: &ExecPlan,
    argv: &[*const libc::c_char],
    envp: &[*const libc::c_char],
    report: RawFd,
) -> ! {
    let fail = |stage: ChildStage| -> ! {
        // SAFETY: __errno_location is async-signal-safe and returns this thread's errno.
        let errno = unsafe { *libc::__errno_location() };
        let mut msg = [0u8; 5];
        msg[0] = stage as u8;
        msg[1..].copy_from_slice(&errno.to_ne_bytes());
        // SAFETY: write and _exit are async-signal-safe; msg is a local buffer.
        unsafe {
            libc::write(report, msg.as_ptr().cast(), msg.len());
            libc::_exit(127)
        }
    };
    // SAFETY: raw system calls only, on values prepared before fork (see the function's contract).
    unsafe {
        if !reset_signals() {
            fail(ChildStage::Signals);
        }
        // New session: the command is its own process group, which the daemon can signal as a
        // whole, and it has no controlling terminal of the daemon's.
        if libc::setsid() < 0 {
            fail(ChildStage::Session);
        }
        for (target, fd) in plan.stdio.iter().enumerate() {
            let (src, target) = (fd.as_raw_fd(), target as RawFd);
            let ok = if src == target {
                libc::fcntl(src, libc::F_SETFD, 0) == 0
            } else {
                libc::dup2(src, target) == target
            };
            if !ok {
                fail(ChildStage::Stdio);
            }
        }
        if let Err(stage) = become_target(plan) {
            fail(stage);
        }
        // After dropping privileges, so the target user needs search permission on it.
        if libc::fchdir(plan.cwd.as_raw_fd()) != 0 {
            fail(ChildStage::Cwd);
        }
        libc::umask(0o022);
        // Every descriptor above stdio closes on exec (the status pipe included, which is how
        // the parent learns that exec succeeded). Only a script keeps its own fd, which the
        // kernel hands to the interpreter as /dev/fd/N.
        if libc::syscall(
            libc::SYS_close_range,
            3u32,
            u32::MAX,
            libc::CLOSE_RANGE_CLOEXEC,
        ) != 0
        {
            fail(ChildStage::Exec);
        }
        exec(plan, argv, envp);
        fail(ChildStage::Exec)
    }
}

/// Default dispositions for every signal (Rust ignores SIGPIPE, tokio installs handlers) and
/// an empty mask, so the command starts as if from a fresh login. False if the mask failed.
///
/// # Safety
/// Only in the child between fork and exec (raw calls, no allocation).
unsafe fn reset_signals() -> bool {
    // SAFETY: sigset_t is plain data; sigemptyset then initializes it.
    let mut empty: libc::sigset_t = unsafe { mem::zeroed() };
    // SAFETY: raw calls on a local sigset and constants; the contract is the caller's.
    unsafe {
        libc::sigemptyset(&mut empty);
        if libc::pthread_sigmask(libc::SIG_SETMASK, &empty, std::ptr::null_mut()) != 0 {
            return false;
        }
        for sig in 1..libc::SIGRTMAX() {
            if sig != libc::SIGKILL && sig != libc::SIGSTOP {
                libc::signal(sig, libc::SIG_DFL);
            }
        }
    }
    true
}

/// The target's groups, then gid, then uid (real, effective and saved), by raw syscalls:
/// glibc's wrappers broadcast to other threads, which do not exist in the child.
///
/// # Safety
/// Only in the child between fork and exec.
unsafe fn become_target(plan: &ExecPlan) -> Result<(), ChildStage> {
    // SAFETY: the group list is a live slice of plan.groups.len() gids; the rest are integers.
    unsafe {
        if libc::syscall(libc::SYS_setgroups, plan.groups.len(), plan.groups.as_ptr()) != 0 {
            return Err(ChildStage::Groups);
        }
        if libc::syscall(libc::SYS_setresgid, plan.gid, plan.gid, plan.gid) != 0 {
            return Err(ChildStage::Gid);
        }
        if libc::syscall(libc::SYS_setresuid, plan.uid, plan.uid, plan.uid) != 0 {
            return Err(ChildStage::Uid);
        }
    }
    Ok(())
}

/// Exec the checked descriptor (`execveat(AT_EMPTY_PATH)`), or the path for `elevate with`.
/// Returns only if exec failed.
///
/// # Safety
/// Only in the child between fork and exec; `argv` and `envp` are NULL-terminated arrays of
/// pointers to NUL-terminated strings that outlive the call.
unsafe fn exec(plan: &ExecPlan, argv: &[*const libc::c_char], envp: &[*const libc::c_char]) {
    // SAFETY: per the contract above; the descriptors belong to the plan.
    unsafe {
        match &plan.exe {
            Exe::Checked { fd, script } => {
                if *script && libc::fcntl(fd.as_raw_fd(), libc::F_SETFD, 0) != 0 {
                    return;
                }
                libc::syscall(
                    libc::SYS_execveat,
                    fd.as_raw_fd(),
                    c"".as_ptr(),
                    argv.as_ptr(),
                    envp.as_ptr(),
                    libc::AT_EMPTY_PATH,
                );
            }
            Exe::Path(path) => {
                libc::execve(path.as_ptr(), argv.as_ptr(), envp.as_ptr());
            }
        }
    }
}

/// Register an owned descriptor with tokio's reactor for readiness (used for pidfds).
pub fn async_fd(fd: OwnedFd) -> io::Result<tokio::io::unix::AsyncFd<OwnedFd>> {
    // SAFETY: an OwnedFd is a valid open descriptor, and `as_raw_fd` on it returns the same
    // number for as long as the AsyncFd owns it; nothing else can close it meanwhile.
    unsafe { tokio::io::unix::AsyncFd::register_with_interest(fd, tokio::io::Interest::READABLE) }
        .map_err(|e| e.into())
}

/// Give freed heap back to the kernel (glibc keeps it otherwise): called once after start-up,
/// when loading a large lease journal has left transient allocations behind.
pub fn trim_heap() {
    // SAFETY: malloc_trim only walks glibc's own heap bookkeeping; 0 keeps no padding.
    unsafe { libc::malloc_trim(0) };
}

/// The descriptor `fd`, which the service manager handed this process (socket activation),
/// taken as owned.
///
/// # Safety
/// `fd` must be open, inherited for this process to own, owned by nothing else in the
/// process, and taken only once.
pub unsafe fn take_inherited_fd(fd: RawFd) -> OwnedFd {
    // SAFETY: the caller upholds this function's contract: `fd` is open and ours alone.
    unsafe { OwnedFd::from_raw_fd(fd) }
}
