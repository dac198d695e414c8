//! The socket system calls std lacks: passing file descriptors (SCM_RIGHTS) and a connect
//! bounded by a timeout. This is the crate's OS layer: every `unsafe` block and every libc
//! call of elevate-proto is here, each a thin wrapper over sendmsg/recvmsg/socket/connect with
//! explicit buffer bounds, errors through [`cerr`].

use elevate_base::os::cerr;
use std::io;
use std::mem;
use std::os::fd::{AsRawFd, BorrowedFd, FromRawFd, OwnedFd, RawFd};

/// Most fds one message may carry; a `run` needs exactly four.
pub const MAX_FDS: usize = 4;

const fn cmsg_space(fds: usize) -> usize {
    // CMSG_SPACE is not const in libc; compute it the same way: header + data, aligned.
    let align = mem::size_of::<usize>();
    let hdr = (mem::size_of::<libc::cmsghdr>() + align - 1) & !(align - 1);
    let data = (fds * mem::size_of::<RawFd>() + align - 1) & !(align - 1);
    hdr + data
}

/// Room for MAX_FDS descriptors, aligned for a cmsghdr.
#[repr(C)]
struct CmsgBuf {
    _align: [libc::cmsghdr; 0],
    bytes: [u8; cmsg_space(MAX_FDS)],
}

/// Send `data` with `fds` attached to its first byte. Returns how many bytes went out;
/// the caller writes the rest normally (the fds travel with the first chunk only).
pub fn send_with_fds(
    sock: BorrowedFd<'_>,
    data: &[u8],
    fds: &[BorrowedFd<'_>],
) -> io::Result<usize> {
    if fds.len() > MAX_FDS || data.is_empty() {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            "bad fd-passing message",
        ));
    }
    let mut iov = libc::iovec {
        iov_base: data.as_ptr() as *mut libc::c_void,
        iov_len: data.len(),
    };
    let mut cbuf = CmsgBuf {
        _align: [],
        bytes: [0; cmsg_space(MAX_FDS)],
    };
    // SAFETY: msghdr is plain data; all-zero is a valid empty value.
    let mut msg: libc::msghdr = unsafe { mem::zeroed() };
    msg.msg_iov = &mut iov;
    msg.msg_iovlen = 1;
    if !fds.is_empty() {
        msg.msg_control = cbuf.bytes.as_mut_ptr() as *mut libc::c_void;
        // SAFETY: CMSG_SPACE only computes a size.
        msg.msg_controllen =
            unsafe { libc::CMSG_SPACE((fds.len() * mem::size_of::<RawFd>()) as u32) } as _;
        // SAFETY: msg_control points at cbuf, which is large enough for one cmsghdr with
        // MAX_FDS descriptors and suitably aligned; CMSG_FIRSTHDR therefore returns a pointer
        // into cbuf, and CMSG_DATA points at room for fds.len() ints inside it.
        unsafe {
            let cmsg = libc::CMSG_FIRSTHDR(&msg);
            (*cmsg).cmsg_level = libc::SOL_SOCKET;
            (*cmsg).cmsg_type = libc::SCM_RIGHTS;
            (*cmsg).cmsg_len = libc::CMSG_LEN((fds.len() * mem::size_of::<RawFd>()) as u32) as _;
            let data = libc::CMSG_DATA(cmsg) as *mut RawFd;
            for (i, fd) in fds.iter().enumerate() {
                data.add(i).write_unaligned(fd.as_raw_fd());
            }
        }
    }
    // SAFETY: msg and everything it points to (iov, data, cbuf) outlive the call.
    let n = cerr(unsafe { libc::sendmsg(sock.as_raw_fd(), &msg, libc::MSG_NOSIGNAL) })?;
    Ok(n as usize)
}

/// Receive into `buf`, appending any passed descriptors to `fds` (close-on-exec already set).
/// Returns the byte count (0 = peer closed). Works on blocking and non-blocking sockets; on a
/// non-blocking one it returns `WouldBlock` like `read`. A message whose descriptors did not
/// fit (more than MAX_FDS) is an error, and whatever did arrive is closed.
pub fn recv_with_fds(
    sock: BorrowedFd<'_>,
    buf: &mut [u8],
    fds: &mut Vec<OwnedFd>,
) -> io::Result<usize> {
    let mut iov = libc::iovec {
        iov_base: buf.as_mut_ptr() as *mut libc::c_void,
        iov_len: buf.len(),
    };
    let mut cbuf = CmsgBuf {
        _align: [],
        bytes: [0; cmsg_space(MAX_FDS)],
    };
    // SAFETY: msghdr is plain data; all-zero is a valid empty value.
    let mut msg: libc::msghdr = unsafe { mem::zeroed() };
    msg.msg_iov = &mut iov;
    msg.msg_iovlen = 1;
    msg.msg_control = cbuf.bytes.as_mut_ptr() as *mut libc::c_void;
    msg.msg_controllen = cbuf.bytes.len() as _;
    // SAFETY: msg points at iov (into buf) and cbuf, both valid and writable for their lengths.
    let n = cerr(unsafe { libc::recvmsg(sock.as_raw_fd(), &mut msg, libc::MSG_CMSG_CLOEXEC) })?;
    let mut got = Vec::new();
    // SAFETY: the kernel filled msg_control/msg_controllen; the CMSG_* macros walk only within
    // that region. Each SCM_RIGHTS payload is an array of fds now owned by this process, which
    // we wrap in OwnedFd exactly once.
    unsafe {
        let mut cmsg = libc::CMSG_FIRSTHDR(&msg);
        while !cmsg.is_null() {
            if (*cmsg).cmsg_level == libc::SOL_SOCKET && (*cmsg).cmsg_type == libc::SCM_RIGHTS {
                let header = libc::CMSG_LEN(0) as usize;
                let count =
                    ((*cmsg).cmsg_len as usize).saturating_sub(header) / mem::size_of::<RawFd>();
                let data = libc::CMSG_DATA(cmsg) as *const RawFd;
                for i in 0..count {
                    got.push(OwnedFd::from_raw_fd(data.add(i).read_unaligned()));
                }
            }
            cmsg = libc::CMSG_NXTHDR(&msg, cmsg);
        }
    }
    if msg.msg_flags & libc::MSG_CTRUNC != 0 {
        drop(got);
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            "too many file descriptors in one message",
        ));
    }
    fds.extend(got);
    Ok(n as usize)
}

/// Connect to a Unix stream socket, waiting at most `timeout`. A daemon whose listen queue is
/// full makes a plain connect(2) sleep until there is room; for AF_UNIX the kernel bounds
/// that wait by the socket's send timeout, so it is set before connecting (and stays set).
pub fn connect_bounded(
    path: &std::path::Path,
    timeout: std::time::Duration,
) -> io::Result<std::os::unix::net::UnixStream> {
    use std::os::unix::ffi::OsStrExt;
    let bytes = path.as_os_str().as_bytes();
    // SAFETY: sockaddr_un is plain data; all zeroes is a valid (empty) value.
    let mut addr: libc::sockaddr_un = unsafe { mem::zeroed() };
    if bytes.is_empty() || bytes.len() >= addr.sun_path.len() || bytes.contains(&0) {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            "socket path empty, too long or containing NUL",
        ));
    }
    addr.sun_family = libc::AF_UNIX as libc::sa_family_t;
    for (dst, src) in addr.sun_path.iter_mut().zip(bytes) {
        *dst = *src as libc::c_char;
    }
    // SAFETY: socket(2) with constant arguments; the result is checked.
    let fd =
        cerr(unsafe { libc::socket(libc::AF_UNIX, libc::SOCK_STREAM | libc::SOCK_CLOEXEC, 0) })?;
    // SAFETY: `fd` is a socket just created here and owned by nothing else.
    let stream = unsafe { std::os::unix::net::UnixStream::from_raw_fd(fd) };
    stream.set_write_timeout(Some(timeout))?;
    let len = (mem::size_of::<libc::sa_family_t>() + bytes.len() + 1) as libc::socklen_t;
    // SAFETY: `addr` is a valid, NUL-terminated sockaddr_un and `len` is within its size.
    cerr(unsafe {
        libc::connect(
            stream.as_raw_fd(),
            (&addr as *const libc::sockaddr_un).cast::<libc::sockaddr>(),
            len,
        )
    })
    .map_err(|e| match e.raw_os_error() {
        Some(libc::EAGAIN) | Some(libc::EINPROGRESS) => io::Error::new(
            io::ErrorKind::TimedOut,
            "the daemon did not accept the connection in time",
        ),
        _ => e,
    })?;
    Ok(stream)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::{Read, Write};
    use std::os::fd::AsFd;
    use std::os::unix::net::UnixStream;

    #[test]
    fn connect_is_bounded_when_the_listen_queue_is_full() {
        let dir = std::env::temp_dir().join(format!("elevate-connect-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("s");
        let _ = std::fs::remove_file(&path);
        let listener = std::os::unix::net::UnixListener::bind(&path).unwrap();
        // SAFETY: listen(2) on our own listening socket, shrinking its backlog to the minimum.
        assert_eq!(unsafe { libc::listen(listener.as_raw_fd(), 0) }, 0);
        let timeout = std::time::Duration::from_millis(200);
        let started = std::time::Instant::now();
        let mut held = Vec::new();
        let mut refused = None;
        for _ in 0..8 {
            match connect_bounded(&path, timeout) {
                Ok(s) => held.push(s),
                Err(e) => {
                    refused = Some(e);
                    break;
                }
            }
        }
        let e = refused.expect("a full queue must refuse within the timeout");
        assert_eq!(e.kind(), io::ErrorKind::TimedOut, "{e}");
        assert!(started.elapsed() < std::time::Duration::from_secs(5));
        assert!(connect_bounded(&dir.join("nope"), timeout).is_err());
        assert!(connect_bounded(std::path::Path::new(&"x".repeat(200)), timeout).is_err());
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn fds_arrive_and_work() {
        let (a, b) = UnixStream::pair().unwrap();
        let (mut p1, p2) = UnixStream::pair().unwrap();
        let n = send_with_fds(a.as_fd(), b"hello", &[p2.as_fd()]).unwrap();
        assert_eq!(n, 5);
        drop(p2);
        let mut buf = [0u8; 16];
        let mut fds = Vec::new();
        let n = recv_with_fds(b.as_fd(), &mut buf, &mut fds).unwrap();
        assert_eq!(&buf[..n], b"hello");
        assert_eq!(fds.len(), 1);
        let mut passed = UnixStream::from(fds.pop().unwrap());
        passed.write_all(b"x").unwrap();
        let mut r = [0u8; 1];
        p1.read_exact(&mut r).unwrap();
        assert_eq!(&r, b"x");
    }

    #[test]
    fn too_many_fds_is_an_error_on_send() {
        let (a, _b) = UnixStream::pair().unwrap();
        let five = [a.as_fd(); 5];
        assert!(send_with_fds(a.as_fd(), b"x", &five).is_err());
    }
}
