//! Talking to the service manager, when there is one: readiness and reload notifications
//! (sd_notify's protocol: a datagram to $NOTIFY_SOCKET) and socket activation ($LISTEN_FDS).
//! Both are a few lines of a stable, documented protocol, so no library. Without systemd the
//! variables are absent and every function here does nothing.
//!
//! These variables come from the environment of a root daemon, set by whoever started it
//! (PID 1 or root): they say where to report, never who a caller is.

use std::fmt;
use std::os::linux::net::SocketAddrExt;
use std::os::unix::net::{SocketAddr, UnixDatagram};

/// Tell the service manager something ("READY=1", "RELOADING=1", "STOPPING=1", "STATUS=…").
/// Failures are logged at debug level and otherwise ignored: a lost notification must not
/// stop the daemon (systemd's start timeout reports it).
pub fn notify(state: &str) {
    let Some(path) = std::env::var_os("NOTIFY_SOCKET") else {
        return;
    };
    let path = path.to_string_lossy().into_owned();
    let addr = match path.strip_prefix('@') {
        Some(abstract_name) => SocketAddr::from_abstract_name(abstract_name.as_bytes()),
        None => SocketAddr::from_pathname(&path),
    };
    let sent = addr.and_then(|addr| UnixDatagram::unbound()?.send_to_addr(state.as_bytes(), &addr));
    if let Err(e) = sent {
        tracing::debug!("sd_notify {state:?} to {path}: {e}");
    }
}

/// `READY=1`, or `RELOADING=1` with the monotonic time systemd wants alongside it.
pub fn reloading() {
    if let Some(now) = elevate_base::os::clock::monotonic() {
        let usec = now.as_micros();
        notify(&format!("RELOADING=1\nMONOTONIC_USEC={usec}"));
    }
}

/// Why the socket systemd passed cannot be used: the units disagree with the daemon.
#[derive(Debug)]
pub enum ActivationError {
    /// `LISTEN_FDS` is not 1 (the value as given).
    SocketCount(String),
    /// The socket is not a Unix stream socket bound to a path.
    NotUnixStream,
    /// It could not be made non-blocking.
    Nonblocking(std::io::Error),
}

impl fmt::Display for ActivationError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ActivationError::SocketCount(fds) => write!(
                f,
                "socket activation passed {fds} sockets; elevated.socket must listen on exactly one"
            ),
            ActivationError::NotUnixStream => {
                f.write_str("the activated socket is not a Unix stream socket with a path")
            }
            ActivationError::Nonblocking(e) => write!(f, "activated socket: {e}"),
        }
    }
}

impl std::error::Error for ActivationError {}

/// The listening socket systemd passed (socket activation), if it passed exactly one to this
/// process. The variables are removed so that nothing the daemon starts inherits them.
pub fn activated_listener() -> Result<Option<std::os::unix::net::UnixListener>, ActivationError> {
    const FIRST_FD: i32 = 3; // SD_LISTEN_FDS_START
    let pid = std::env::var("LISTEN_PID").ok();
    let fds = std::env::var("LISTEN_FDS").ok();
    // Called while the daemon is still single-threaded (before the runtime starts), so
    // nothing reads the environment concurrently.
    for var in ["LISTEN_PID", "LISTEN_FDS", "LISTEN_FDNAMES"] {
        std::env::remove_var(var);
    }
    let (Some(pid), Some(fds)) = (pid, fds) else {
        return Ok(None);
    };
    if pid.parse::<u32>().ok() != Some(std::process::id()) {
        return Ok(None);
    }
    if fds != "1" {
        return Err(ActivationError::SocketCount(fds));
    }
    // SAFETY: fd 3 was handed to this process by the service manager (LISTEN_PID is ours)
    // and nothing else in the process owns it; it is taken exactly once, here, before any
    // thread exists.
    let fd = unsafe { crate::os::take_inherited_fd(FIRST_FD) };
    let listener = std::os::unix::net::UnixListener::from(fd);
    // A socket of the wrong kind (a TCP port, a datagram socket) is a unit file error.
    listener
        .local_addr()
        .ok()
        .and_then(|a| a.as_pathname().map(|p| p.to_path_buf()))
        .ok_or(ActivationError::NotUnixStream)?;
    listener
        .set_nonblocking(true)
        .map_err(ActivationError::Nonblocking)?;
    Ok(Some(listener))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn notify_sends_one_datagram_to_the_socket() {
        let dir = std::env::temp_dir().join(format!("elevate-notify-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("notify");
        let _ = std::fs::remove_file(&path);
        let rx = UnixDatagram::bind(&path).unwrap();
        // This test is the only one touching NOTIFY_SOCKET.
        std::env::set_var("NOTIFY_SOCKET", &path);
        notify("READY=1");
        reloading();
        std::env::remove_var("NOTIFY_SOCKET");
        let mut buf = [0u8; 128];
        let n = rx.recv(&mut buf).unwrap();
        assert_eq!(&buf[..n], b"READY=1");
        let n = rx.recv(&mut buf).unwrap();
        assert!(std::str::from_utf8(&buf[..n])
            .unwrap()
            .starts_with("RELOADING=1\nMONOTONIC_USEC="));
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn activation_errors_read_as_before() {
        assert_eq!(
            ActivationError::SocketCount("2".into()).to_string(),
            "socket activation passed 2 sockets; elevated.socket must listen on exactly one"
        );
        assert_eq!(
            ActivationError::NotUnixStream.to_string(),
            "the activated socket is not a Unix stream socket with a path"
        );
    }
}
