//! A blocking client with short timeouts. Used by the CLI, the PAM module and the load
//! generator, none of which runs an async runtime.

use crate::fdpass;
use crate::frame::{self, FrameBuf, FrameError};
use crate::wire::{Request, Response};
use std::fmt;
use std::io::{self, Read};
use std::os::fd::{AsFd, BorrowedFd};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::time::Duration;

#[derive(Debug)]
pub enum ClientError {
    /// Could not reach the daemon at all.
    Connect { socket: PathBuf, source: io::Error },
    /// The connection broke or the daemon sent something we do not understand.
    Protocol(FrameError),
}

impl fmt::Display for ClientError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ClientError::Connect { socket, source } => {
                write!(f, "cannot reach elevated at {}: {source}", socket.display())
            }
            ClientError::Protocol(e) => write!(f, "talking to elevated: {e}"),
        }
    }
}

impl std::error::Error for ClientError {}

impl From<FrameError> for ClientError {
    fn from(e: FrameError) -> Self {
        ClientError::Protocol(e)
    }
}

impl From<io::Error> for ClientError {
    fn from(e: io::Error) -> Self {
        ClientError::Protocol(FrameError::Io(e))
    }
}

pub struct Client {
    stream: UnixStream,
    inbox: FrameBuf,
}

impl Client {
    /// Connect, with `timeout` applied to every later read and write until changed.
    pub fn connect(socket: &Path, timeout: Duration) -> Result<Client, ClientError> {
        let stream: UnixStream =
            fdpass::connect_bounded(socket, timeout).map_err(|source| ClientError::Connect {
                socket: socket.to_owned(),
                source,
            })?;
        stream.set_read_timeout(Some(timeout))?;
        stream.set_write_timeout(Some(timeout))?;
        Ok(Client {
            stream,
            inbox: FrameBuf::for_replies(),
        })
    }

    /// `None` blocks forever (used while a command runs).
    pub fn set_read_timeout(&self, t: Option<Duration>) -> io::Result<()> {
        self.stream.set_read_timeout(t)
    }

    pub fn send(&mut self, req: &Request) -> Result<(), ClientError> {
        self.send_with_fds(req, &[])
    }

    /// Send a request with descriptors attached (the fds travel with the first bytes).
    /// Every write is a `sendmsg(MSG_NOSIGNAL)`: a daemon that went away is an error here,
    /// never a SIGPIPE for the process we live in (the PAM module runs inside sshd and login).
    pub fn send_with_fds(
        &mut self,
        req: &Request,
        fds: &[BorrowedFd<'_>],
    ) -> Result<(), ClientError> {
        let bytes = frame::encode(req)?;
        let mut sent = 0;
        while sent < bytes.len() {
            let attach = if sent == 0 { fds } else { &[] };
            match fdpass::send_with_fds(self.stream.as_fd(), &bytes[sent..], attach) {
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(e.into()),
                Ok(0) => return Err(io::Error::from(io::ErrorKind::WriteZero).into()),
                Ok(n) => sent += n,
            }
        }
        Ok(())
    }

    /// Next message from the daemon.
    pub fn recv(&mut self) -> Result<Response, ClientError> {
        loop {
            if let Some(payload) = self.inbox.next_message()? {
                return Ok(frame::decode(&payload)?);
            }
            let mut buf = [0u8; 8192];
            let n = match self.stream.read(&mut buf) {
                Ok(0) => return Err(FrameError::Closed.into()),
                Ok(n) => n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(e.into()),
            };
            self.inbox.push(&buf[..n]);
        }
    }

    /// Whether a complete message is already buffered (so polling the socket would miss it).
    pub fn has_buffered(&self) -> bool {
        self.inbox.has_message()
    }

    /// One request, one answer.
    pub fn call(&mut self, req: &Request) -> Result<Response, ClientError> {
        self.send(req)?;
        self.recv()
    }
}

impl AsFd for Client {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.stream.as_fd()
    }
}
