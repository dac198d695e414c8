//! Length-prefixed JSON frames: `u32` big-endian length, then the JSON bytes. A request is one
//! frame. An answer longer than [`MAX_FRAME`] is sent in parts of at most `MAX_FRAME` bytes,
//! each but the last with [`CONTINUED`] set in its length word; the reader joins them, up to
//! [`MAX_REPLY`] in all. An answer that fits in one frame is written exactly as protocol 1 did.

use crate::{MAX_FRAME, MAX_REPLY};
use serde::{de::DeserializeOwned, Serialize};
use std::fmt;
use std::io;

/// Set in a frame's length word when the message goes on in the next frame.
pub const CONTINUED: u32 = 1 << 31;

#[derive(Debug)]
pub enum FrameError {
    /// The peer announced a frame larger than [`MAX_FRAME`].
    TooLarge(usize),
    /// An answer longer than [`MAX_REPLY`], counted over its parts.
    ReplyTooLarge(usize),
    /// A request that continues past its first frame: requests are one frame each.
    Continued,
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
            FrameError::ReplyTooLarge(n) => {
                write!(f, "answer of {n} bytes exceeds the {MAX_REPLY}-byte limit")
            }
            FrameError::Continued => {
                write!(
                    f,
                    "a request must be one frame of at most {MAX_FRAME} bytes"
                )
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

fn to_json<T: Serialize>(msg: &T) -> Result<Vec<u8>, FrameError> {
    serde_json::to_vec(msg).map_err(|e| FrameError::Malformed(e.to_string()))
}

/// Serialize a request into one frame, length prefix included.
pub fn encode<T: Serialize>(msg: &T) -> Result<Vec<u8>, FrameError> {
    let body = to_json(msg)?;
    if body.len() > MAX_FRAME {
        return Err(FrameError::TooLarge(body.len()));
    }
    Ok(frames(&body))
}

/// Serialize an answer: one frame when it fits, else as many continued parts as it takes.
/// Longer than [`MAX_REPLY`] is an error, for the sender to answer instead.
pub fn encode_reply<T: Serialize>(msg: &T) -> Result<Vec<u8>, FrameError> {
    let body = to_json(msg)?;
    if body.len() > MAX_REPLY {
        return Err(FrameError::ReplyTooLarge(body.len()));
    }
    Ok(frames(&body))
}

/// `body` in frames of at most [`MAX_FRAME`] bytes, each but the last marked [`CONTINUED`].
fn frames(body: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(body.len() + 4 * (body.len() / MAX_FRAME + 1));
    let mut rest = body;
    loop {
        let (part, after) = rest.split_at(rest.len().min(MAX_FRAME));
        let continued = if after.is_empty() { 0 } else { CONTINUED };
        out.extend_from_slice(&(part.len() as u32 | continued).to_be_bytes());
        out.extend_from_slice(part);
        if after.is_empty() {
            return out;
        }
        rest = after;
    }
}

/// Parse one message's payload.
pub fn decode<T: DeserializeOwned>(payload: &[u8]) -> Result<T, FrameError> {
    serde_json::from_slice(payload).map_err(|e| FrameError::Malformed(e.to_string()))
}

/// The frame header at `at`, if it has arrived: the part's length and whether more follow.
fn header(buf: &[u8], at: usize) -> Option<(usize, bool)> {
    let h = buf.get(at..at.checked_add(4)?)?;
    let word = u32::from_be_bytes([h[0], h[1], h[2], h[3]]);
    Some(((word & !CONTINUED) as usize, word & CONTINUED != 0))
}

/// Incremental message splitter for readers that receive bytes in arbitrary chunks
/// (the daemon reads with recvmsg to collect passed fds, so it cannot use `Read`).
pub struct FrameBuf {
    buf: Vec<u8>,
    /// The longest message accepted. Only a reader of answers (above [`MAX_FRAME`]) accepts
    /// continued frames.
    max_message: usize,
}

/// A reader of requests: one frame per message.
impl Default for FrameBuf {
    fn default() -> Self {
        FrameBuf {
            buf: Vec::new(),
            max_message: MAX_FRAME,
        }
    }
}

impl FrameBuf {
    /// A reader of answers: a message may continue over frames, up to [`MAX_REPLY`] bytes.
    pub fn for_replies() -> FrameBuf {
        FrameBuf {
            buf: Vec::new(),
            max_message: MAX_REPLY,
        }
    }

    pub fn push(&mut self, bytes: &[u8]) {
        self.buf.extend_from_slice(bytes);
    }

    /// Bytes received but not yet returned as a message.
    pub fn pending(&self) -> usize {
        self.buf.len()
    }

    /// Whether a whole message (or an error, which `next_message` reports) is buffered.
    pub fn has_message(&self) -> bool {
        !matches!(self.scan(), Ok(None))
    }

    /// Where the first whole message ends in the buffer, and its payload's length; `None`
    /// until all its parts have arrived. A length over a limit is an error at once, before the
    /// body is buffered.
    fn scan(&self) -> Result<Option<(usize, usize)>, FrameError> {
        let (mut at, mut total) = (0usize, 0usize);
        while let Some((len, continued)) = header(&self.buf, at) {
            if len > MAX_FRAME {
                return Err(FrameError::TooLarge(len));
            }
            if continued && self.max_message <= MAX_FRAME {
                return Err(FrameError::Continued);
            }
            // Every part carries bytes: a stream of empty ones would never end the message.
            if continued && len == 0 {
                return Err(FrameError::Malformed("an empty continued frame".into()));
            }
            total += len;
            if total > self.max_message {
                return Err(FrameError::ReplyTooLarge(total));
            }
            if self.buf.len() < at + 4 + len {
                return Ok(None);
            }
            at += 4 + len;
            if !continued {
                return Ok(Some((at, total)));
            }
        }
        Ok(None)
    }

    /// The next complete message's payload (its parts joined), if it has fully arrived.
    pub fn next_message(&mut self) -> Result<Option<Vec<u8>>, FrameError> {
        let Some((end, total)) = self.scan()? else {
            return Ok(None);
        };
        let mut payload = Vec::with_capacity(total);
        let mut at = 0;
        while let Some((len, _)) = header(&self.buf, at).filter(|_| at < end) {
            payload.extend_from_slice(self.buf.get(at + 4..at + 4 + len).unwrap_or_default());
            at += 4 + len;
        }
        self.buf.drain(..end);
        Ok(Some(payload))
    }
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
        assert!(fb.has_message());
        assert!(fb.next_message().unwrap().is_some());
        assert!(fb.next_message().unwrap().is_some());
        assert!(!fb.has_message());
        assert!(fb.next_message().unwrap().is_none());
        assert_eq!(fb.pending(), 0);
        fb.push(&f[..5]);
        assert!(!fb.has_message(), "a partial frame is not a frame");
    }

    #[test]
    fn oversized_length_rejected_before_body() {
        let mut fb = FrameBuf::default();
        fb.push(&u32::MAX.to_be_bytes());
        assert!(matches!(fb.next_message(), Err(FrameError::TooLarge(_))));
    }

    /// The frames of `bytes`: each part's length and whether it is marked continued.
    fn parts(mut bytes: &[u8]) -> Vec<(usize, bool)> {
        let mut out = Vec::new();
        while let Some((len, continued)) = header(bytes, 0) {
            out.push((len, continued));
            bytes = &bytes[4 + len..];
        }
        out
    }

    fn lease(id: u64, reason: &str) -> crate::LeaseInfo {
        let line = format!(
            r#"{{"id":{id},"user":"alice","uid":1000,"profile":"p","state":"active","reason":"{reason}","duration_secs":60,"requested_at":"2024-05-01T12:00:00.000Z","approvals":[],"approvals_needed":0}}"#
        );
        serde_json::from_str(&line).unwrap()
    }

    #[test]
    fn a_small_answer_is_one_frame_as_in_protocol_1() {
        let r = crate::Response::Leases {
            leases: vec![lease(1, "short")],
        };
        assert_eq!(encode_reply(&r).unwrap(), encode(&r).unwrap());
    }

    #[test]
    fn a_large_answer_continues_over_frames_and_reads_back_whole() {
        let leases: Vec<_> = (1..=2000).map(|id| lease(id, &"r".repeat(200))).collect();
        let r = crate::Response::Leases { leases };
        let body = serde_json::to_vec(&r).unwrap();
        assert!(body.len() > 5 * MAX_FRAME, "{} bytes", body.len());
        assert!(matches!(encode(&r), Err(FrameError::TooLarge(_))));
        let bytes = encode_reply(&r).unwrap();
        let ps = parts(&bytes);
        assert_eq!(ps.len(), body.len().div_ceil(MAX_FRAME));
        assert!(ps.iter().all(|&(len, _)| len <= MAX_FRAME));
        let (last, rest) = ps.split_last().unwrap();
        assert!(rest.iter().all(|&(len, c)| c && len == MAX_FRAME) && !last.1);
        // Arriving in reads of any size, and followed by the next answer.
        for chunk in [7, 4096, 8192, 100_000] {
            let mut fb = FrameBuf::for_replies();
            let mut got = Vec::new();
            let next = encode_reply(&crate::Response::Leases { leases: vec![] }).unwrap();
            for piece in bytes.chunks(chunk).chain(next.chunks(chunk)) {
                fb.push(piece);
                while let Some(p) = fb.next_message().unwrap() {
                    got.push(decode::<crate::Response>(&p).unwrap());
                }
            }
            assert_eq!(got.len(), 2, "reads of {chunk}");
            assert_eq!(got[0], r);
            assert_eq!(fb.pending(), 0);
        }
    }

    #[test]
    fn answers_are_capped_in_total_and_requests_are_one_frame() {
        let huge = crate::Response::Prompt {
            style: crate::PromptStyle::Info,
            text: "x".repeat(MAX_REPLY),
        };
        assert!(matches!(
            encode_reply(&huge),
            Err(FrameError::ReplyTooLarge(n)) if n > MAX_REPLY
        ));
        // A reader stops at the first header that takes the total over its limit, before
        // that part's body arrives.
        let mut fb = FrameBuf {
            buf: Vec::new(),
            max_message: 2 * MAX_FRAME,
        };
        let part = [
            &(MAX_FRAME as u32 | CONTINUED).to_be_bytes()[..],
            &[b' '; MAX_FRAME],
        ]
        .concat();
        fb.push(&part);
        fb.push(&part);
        assert!(matches!(fb.next_message(), Ok(None)));
        fb.push(&1u32.to_be_bytes());
        assert!(fb.has_message());
        assert!(matches!(
            fb.next_message(),
            Err(FrameError::ReplyTooLarge(n)) if n == 2 * MAX_FRAME + 1
        ));
        // A request reader refuses a continued frame; an answer reader an empty part.
        let mut requests = FrameBuf::default();
        requests.push(&(2 | CONTINUED).to_be_bytes());
        assert!(matches!(
            requests.next_message(),
            Err(FrameError::Continued)
        ));
        let mut replies = FrameBuf::for_replies();
        replies.push(&CONTINUED.to_be_bytes());
        assert!(matches!(
            replies.next_message(),
            Err(FrameError::Malformed(_))
        ));
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
