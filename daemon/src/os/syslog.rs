//! syslog(3): opened once with the daemon's identity and facility, then one line per message.

use std::ffi::CString;

/// openlog(3) as `elevated`, LOG_AUTHPRIV, with the pid on every line.
pub fn open() {
    // SAFETY: the ident is a 'static C string (openlog keeps the pointer), flags are constants.
    unsafe {
        libc::openlog(
            c"elevated".as_ptr(),
            libc::LOG_PID | libc::LOG_NDELAY,
            libc::LOG_AUTHPRIV,
        )
    };
}

/// One line at `priority` (a LOG_* level); the text is passed as an argument, never as the
/// format.
pub fn line(priority: libc::c_int, msg: &CString) {
    // SAFETY: a constant "%s" format with one NUL-terminated string argument.
    unsafe { libc::syslog(priority, c"%s".as_ptr(), msg.as_ptr()) };
}
