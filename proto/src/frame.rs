//! Length-prefixed JSON frames: `u32` big-endian length, then the JSON bytes.

use crate::MAX_FRAME;
use serde::{de::DeserializeOwned, Serialize};
use std::fmt;
use std::io::{self, Read};

#[derive(Debug)]
pub enum FrameError {
    /// The peer announced a frame larger than [`MAX_FRAME`].
    TooLarge(usize),
    /// The bytes were not a valid message.
    Malformed(String),
    Io(io::Error),
    /// The peer closed the connection between frames.
    Closed,
}

impl fmt::Display for FrameError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            FrameError::TooLarge(n) => {
                write!(f, "frame of {n} bytes exceeds the {MAX_FRAME}-byte limit")
            }
            FrameError::Malformed(m) => write!(f, "malformed message: {m}"),
            FrameError::Io(e) => write!(f, "{e}"),
            FrameError::Closed => write!(f, "connection closed"),
        }
    }
}

impl std::error::Error for FrameError {}

impl From<io::Error> for FrameError {
    fn from(e: io::Error) -> Self {
        FrameError::Io(e)
    }
}

/// Serialize `msg` into one frame, length prefix included.
pub fn encode<T: Serialize>(msg: &T) -> Result<Vec<u8>, FrameError> {
    let body = serde_json::to_vec(msg).map_err(|e| FrameError::Malformed(e.to_string()))?;
    if body.len() > MAX_FRAME {
        return Err(FrameError::TooLarge(body.len()));
    }
    let mut out = Vec::with_capacity(4 + body.len());
    out.extend_from_slice(&(body.len() as u32).to_be_bytes());
    out.extend_from_slice(&body);
    Ok(out)
}

/// Parse one frame's payload.
pub fn decode<T: DeserializeOwned>(payload: &[u8]) -> Result<T, FrameError> {
    serde_json::from_slice(payload).map_err(|e| FrameError::Malformed(e.to_string()))
}

/// Incremental frame splitter for readers that receive bytes in arbitrary chunks
/// (the daemon reads with recvmsg to collect passed fds, so it cannot use `Read`).
#[derive(Default)]
pub struct FrameBuf {
    buf: Vec<u8>,
}

impl FrameBuf {
    pub fn push(&mut self, bytes: &[u8]) {
        self.buf.extend_from_slice(bytes);
    }

    /// Bytes received but not yet returned as a frame.
    pub fn pending(&self) -> usize {
        self.buf.len()
    }

    /// Whether a whole frame (or an oversized length, which `next_frame` reports) is buffered.
    pub fn has_frame(&self) -> bool {
        match self.buf.get(..4) {
            Some(h) => {
                let len = u32::from_be_bytes([h[0], h[1], h[2], h[3]]) as usize;
                len > MAX_FRAME || self.buf.len() >= 4 + len
            }
            None => false,
        }
    }

    /// The next complete payload, if one has fully arrived. An oversized length is an error at
    /// once, before its body is buffered.
    pub fn next_frame(&mut self) -> Result<Option<Vec<u8>>, FrameError> {
        if self.buf.len() < 4 {
            return Ok(None);
        }
        let len = u32::from_be_bytes([self.buf[0], self.buf[1], self.buf[2], self.buf[3]]) as usize;
        if len > MAX_FRAME {
            return Err(FrameError::TooLarge(len));
        }
        if self.buf.len() < 4 + len {
            return Ok(None);
        }
        let payload = self.buf[4..4 + len].to_vec();
        self.buf.drain(..4 + len);
        Ok(Some(payload))
    }
}

/// Blocking read of one frame's payload.
pub fn read_frame<R: Read>(r: &mut R) -> Result<Vec<u8>, FrameError> {
    let mut len = [0u8; 4];
    match r.read_exact(&mut len) {
        Ok(()) => {}
        Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => return Err(FrameError::Closed),
        Err(e) => return Err(e.into()),
    }
    let len = u32::from_be_bytes(len) as usize;
    if len > MAX_FRAME {
        return Err(FrameError::TooLarge(len));
    }
    let mut body = vec![0u8; len];
    r.read_exact(&mut body)?;
    Ok(body)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::Request;

    #[test]
    fn split_across_chunks() {
        let f = encode(&Request::Status {}).unwrap();
        let mut fb = FrameBuf::default();
        for b in f.iter().chain(f.iter()) {
            fb.push(&[*b]);
        }
        assert!(fb.has_frame());
        assert!(fb.next_frame().unwrap().is_some());
        assert!(fb.next_frame().unwrap().is_some());
        assert!(!fb.has_frame());
        assert!(fb.next_frame().unwrap().is_none());
        assert_eq!(fb.pending(), 0);
        fb.push(&f[..5]);
        assert!(!fb.has_frame(), "a partial frame is not a frame");
    }

    #[test]
    fn oversized_length_rejected_before_body() {
        let mut fb = FrameBuf::default();
        fb.push(&u32::MAX.to_be_bytes());
        assert!(matches!(fb.next_frame(), Err(FrameError::TooLarge(_))));
        let mut r: &[u8] = &((MAX_FRAME as u32) + 1).to_be_bytes();
        assert!(matches!(read_frame(&mut r), Err(FrameError::TooLarge(_))));
    }

    #[test]
    fn garbage_is_malformed_not_panic() {
        for junk in [
            &b"\xff\xfe"[..],
            b"{",
            b"null",
            b"{\"type\":\"run\"}",
            b"[1,2]",
        ] {
            assert!(decode::<Request>(junk).is_err());
        }
    }
}
