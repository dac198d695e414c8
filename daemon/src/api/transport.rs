//! One client connection on the socket: length-prefixed JSON frames with descriptors passed
//! alongside (SCM_RIGHTS), and answers written with a deadline.

use crate::exec::supervise::{ClientLink, FromClient};
use elevate_proto::fdpass::{self, MAX_FDS};
use elevate_proto::frame::{self, FrameBuf, FrameError};
use elevate_proto::{ErrorKind, ErrorReply, Request, Response};
use std::io;
use std::os::fd::{AsFd, OwnedFd};
use std::time::Duration;
use tokio::io::{AsyncWriteExt, Interest};
use tokio::net::UnixStream;

/// How long a client may take to read an answer before it is dropped.
const SEND_TIMEOUT: Duration = Duration::from_secs(5);

/// A connection that can receive fds alongside frames.
pub struct Conn {
    stream: UnixStream,
    inbox: FrameBuf,
    /// Descriptors received so far and not yet taken.
    pub fds: Vec<OwnedFd>,
}

impl Conn {
    pub fn new(stream: UnixStream) -> Conn {
        Conn {
            stream,
            inbox: FrameBuf::default(),
            fds: Vec::new(),
        }
    }

    /// The connection's socket, for questions to the kernel about the peer.
    pub fn socket(&self) -> std::os::fd::BorrowedFd<'_> {
        std::os::fd::AsFd::as_fd(&self.stream)
    }

    /// Next frame. `Ok(None)` when the peer closed cleanly between frames.
    pub async fn read_frame(&mut self) -> Result<Option<Vec<u8>>, FrameError> {
        loop {
            if let Some(f) = self.inbox.next_frame()? {
                return Ok(Some(f));
            }
            let mut buf = [0u8; 8192];
            let Conn { stream, fds, .. } = self;
            let n = stream
                .async_io(Interest::READABLE, || {
                    fdpass::recv_with_fds(stream.as_fd(), &mut buf, fds)
                })
                .await?;
            if fds.len() > MAX_FDS {
                return Err(FrameError::Malformed("too many file descriptors".into()));
            }
            if n == 0 {
                return if self.inbox.pending() == 0 {
                    Ok(None)
                } else {
                    Err(FrameError::Closed)
                };
            }
            self.inbox.push(&buf[..n]);
        }
    }

    pub async fn send(&mut self, resp: &Response) -> io::Result<()> {
        let bytes = frame::encode(resp).map_err(|e| io::Error::other(e.to_string()))?;
        // A client that stops reading must not pin this task forever.
        tokio::time::timeout(SEND_TIMEOUT, self.stream.write_all(&bytes))
            .await
            .map_err(|_| io::Error::new(io::ErrorKind::TimedOut, "client not reading"))?
    }

    /// Before closing a connection refused at once: read (and drop) what the client is still
    /// sending, for at most `within`. Closing with its request unread would reset the
    /// connection, and the client would see a broken pipe instead of the refusal.
    pub async fn drain(&mut self, within: Duration) {
        let _ = tokio::time::timeout(within, self.read_frame()).await;
        self.fds.clear();
    }

    /// Send an error answer; a client that cannot take it is gone anyway.
    pub async fn refuse(&mut self, kind: ErrorKind, message: impl Into<String>) {
        let _ = self.send(&error(kind, message)).await;
    }
}

/// While a command runs, the client may only forward signals; descriptors are dropped.
impl ClientLink for Conn {
    async fn next(&mut self) -> FromClient {
        let frame = self.read_frame().await;
        self.fds.clear();
        match frame {
            Ok(Some(payload)) => match frame::decode::<Request>(&payload) {
                Ok(Request::Signal { signal }) => FromClient::Signal(signal),
                _ => FromClient::Other,
            },
            Ok(None) | Err(_) => FromClient::Gone,
        }
    }
}

pub fn error(kind: ErrorKind, message: impl Into<String>) -> Response {
    Response::Error(ErrorReply {
        kind,
        message: message.into(),
    })
}
