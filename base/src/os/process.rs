//! Who this process is, and signals to others.

use crate::ids::{Pid, Uid};
use std::io;

/// The real user id.
pub fn getuid() -> Uid {
    // SAFETY: getuid has no preconditions and cannot fail.
    Uid(unsafe { libc::getuid() })
}

/// The effective user id.
pub fn geteuid() -> Uid {
    // SAFETY: geteuid has no preconditions and cannot fail.
    Uid(unsafe { libc::geteuid() })
}

/// `kill(2)`. A negative pid signals a process group, as kill(2) says.
pub fn kill(pid: Pid, sig: libc::c_int) -> io::Result<()> {
    // SAFETY: kill(2) takes plain integers; no memory is involved.
    super::cerr(unsafe { libc::kill(pid.0, sig) }).map(drop)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signal_zero_probes_and_a_missing_process_is_esrch() {
        let me = Pid(i32::try_from(std::process::id()).unwrap());
        assert!(kill(me, 0).is_ok());
        let e = kill(Pid(i32::MAX), 0).unwrap_err();
        assert_eq!(e.raw_os_error(), Some(libc::ESRCH));
        assert_eq!(getuid(), getuid());
        let _ = geteuid();
    }
}
