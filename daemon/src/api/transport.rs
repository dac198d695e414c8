//! One client connection on the socket: length-prefixed JSON frames with descriptors passed
//! alongside (SCM_RIGHTS), and answers written with a deadline. A request is one frame; an
//! answer continues over as many as it needs (`frame::encode_reply`).

use crate::exec::supervise::{ClientLink, FromClient};
use elevate_proto::fdpass::{self, MAX_FDS};
use elevate_proto::frame::{self, FrameBuf, FrameError};
use elevate_proto::{ErrorKind, ErrorReply, Request, Response};
use std::io;
use std::os::fd::{AsFd, OwnedFd};
use std::time::Duration;
use tokio::io::{AsyncWriteExt, Interest};
use tokio::net::UnixStream;

/// How long a client may take to read an answer (all its frames) before it is dropped.
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
            if let Some(f) = self.inbox.next_message()? {
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

    /// Write an answer. One that cannot be encoded (longer than `MAX_REPLY`) is answered with
    /// an error saying so: the client is never left with a closed connection and no reason.
    pub async fn send(&mut self, resp: &Response) -> io::Result<()> {
        let bytes = match frame::encode_reply(resp) {
            Ok(bytes) => bytes,
            Err(e) => {
                tracing::warn!("an answer could not be sent: {e}");
                frame::encode_reply(&error(ErrorKind::Internal, e.to_string()))
                    .map_err(|e| io::Error::other(e.to_string()))?
            }
        };
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

#[cfg(test)]
mod tests {
    use super::*;
    use elevate_proto::LeaseInfo;
    use std::io::Read;

    /// `resp` sent on a socket pair by [`Conn::send`], and what a client reads back.
    async fn sent(resp: Response) -> Response {
        let (ours, theirs) = std::os::unix::net::UnixStream::pair().unwrap();
        ours.set_nonblocking(true).unwrap();
        let mut conn = Conn::new(UnixStream::from_std(ours).unwrap());
        let reader = std::thread::spawn(move || {
            let mut theirs = theirs;
            let mut inbox = FrameBuf::for_replies();
            let mut buf = [0u8; 8192];
            loop {
                if let Some(p) = inbox.next_message().unwrap() {
                    return frame::decode::<Response>(&p).unwrap();
                }
                let n = theirs.read(&mut buf).unwrap();
                assert!(n > 0, "closed before an answer");
                inbox.push(&buf[..n]);
            }
        });
        conn.send(&resp).await.unwrap();
        reader.join().unwrap()
    }

    #[tokio::test]
    async fn an_answer_of_two_thousand_leases_arrives_whole() {
        let lease = |id: u64| -> LeaseInfo {
            serde_json::from_value(serde_json::json!({
                "id": id, "user": "alice", "uid": 1000, "profile": "p", "state": "active",
                "reason": "r".repeat(300), "duration_secs": 60,
                "requested_at": "2024-05-01T12:00:00.000Z", "approvals_needed": 0,
            }))
            .unwrap()
        };
        let resp = Response::Leases {
            leases: (1..=2000).map(lease).collect(),
        };
        assert_eq!(sent(resp.clone()).await, resp);
    }

    #[tokio::test]
    async fn an_answer_too_large_to_send_is_an_error_saying_so() {
        let huge = Response::Prompt {
            style: elevate_proto::PromptStyle::Info,
            text: "x".repeat(elevate_proto::MAX_REPLY),
        };
        match sent(huge).await {
            Response::Error(e) => {
                assert_eq!(e.kind, ErrorKind::Internal);
                assert!(e.message.contains("-byte limit"), "{}", e.message);
            }
            other => panic!("expected an error, got {other:?}"),
        }
    }
}
