//! The log's tail, read backwards (never the whole file): the last line, whether it is a
//! record, and if not, where it is, its hash and the last intact record shortly before it.
//! What the writer's recovery starts from.

use crate::chain::{parse_record, to_hex, RecordHead, MAX_RECORD_LEN};
use crate::faults::TornLine;
use sha2::{Digest, Sha256};
use std::fs::File;
use std::io;
use std::os::unix::fs::FileExt;

/// The log's last line, as far as the writer cares.
#[derive(Debug)]
pub(crate) enum Tail {
    Empty,
    /// The last line is a well-formed record (terminated or not).
    Record {
        seq: u64,
        hash: String,
    },
    /// The last line is not: where it is and its hash, and the `(seq, hash)` of the last intact
    /// record shortly before it.
    Damaged {
        torn: TornLine,
        last_good: Option<(u64, String)>,
    },
}

const CHUNK: usize = 64 * 1024;
/// How many lines before a damaged last line are tried for the last intact record.
const LOOKBACK_LINES: usize = 16;

struct TailReader<'a> {
    file: &'a File,
    bytes_read: u64,
}

impl TailReader<'_> {
    fn read_at(&mut self, buf: &mut [u8], offset: u64) -> io::Result<()> {
        self.file.read_exact_at(buf, offset)?;
        self.bytes_read += buf.len() as u64;
        Ok(())
    }

    /// The offset just after the last `\n` before `end` (0 if none), scanning back at most
    /// `limit` bytes (`None` when that finds no newline).
    fn line_start(&mut self, end: u64, limit: u64) -> io::Result<Option<u64>> {
        let mut buf = vec![0; CHUNK];
        let mut pos = end;
        while pos > 0 {
            if end - pos > limit {
                return Ok(None);
            }
            let n = pos.min(CHUNK as u64);
            let start = pos - n;
            let chunk = &mut buf[..n as usize];
            self.read_at(chunk, start)?;
            if let Some(i) = chunk.iter().rposition(|&b| b == b'\n') {
                return Ok(Some(start + i as u64 + 1));
            }
            pos = start;
        }
        Ok(Some(0))
    }

    /// The record on `[start, end)`, if that is one.
    fn record(&mut self, start: u64, end: u64) -> io::Result<Option<RecordHead>> {
        let len = end - start;
        if len == 0 || len > MAX_RECORD_LEN as u64 {
            return Ok(None);
        }
        let mut line = vec![0; len as usize];
        self.read_at(&mut line, start)?;
        Ok(parse_record(&line))
    }

    fn hash(&mut self, start: u64, end: u64) -> io::Result<String> {
        let mut h = Sha256::new();
        let mut buf = vec![0; CHUNK];
        let mut pos = start;
        while pos < end {
            let n = (end - pos).min(CHUNK as u64) as usize;
            self.read_at(&mut buf[..n], pos)?;
            h.update(&buf[..n]);
            pos += n as u64;
        }
        Ok(to_hex(&h.finalize()))
    }
}

/// Find the last line (the bytes after the last newline if any, else the last terminated line)
/// reading backwards from the end. Also returns whether the file lacks a final newline, and the
/// bytes read.
pub(crate) fn read_tail(file: &File) -> io::Result<(Tail, bool, u64)> {
    let mut r = TailReader {
        file,
        bytes_read: 0,
    };
    let len = file.metadata()?.len();
    if len == 0 {
        return Ok((Tail::Empty, false, 0));
    }
    let mut last = [0u8];
    r.read_at(&mut last, len - 1)?;
    let unterminated = last[0] != b'\n';
    let end = if unterminated { len } else { len - 1 };
    // The last line's start, however far back (a damaged line is hashed whole).
    let start = r.line_start(end, u64::MAX)?.unwrap_or(0);
    if let Some(rec) = r.record(start, end)? {
        let tail = Tail::Record {
            seq: rec.seq,
            hash: rec.hash,
        };
        return Ok((tail, unterminated, r.bytes_read));
    }
    let torn = TornLine {
        offset: start,
        length: end - start,
        sha256: r.hash(start, end)?,
    };
    let mut last_good = None;
    let mut next_end = start; // just after the previous line's newline
    for _ in 0..LOOKBACK_LINES {
        if next_end == 0 {
            break;
        }
        let e = next_end - 1;
        let Some(s) = r.line_start(e, MAX_RECORD_LEN as u64)? else {
            break;
        };
        if let Some(rec) = r.record(s, e)? {
            last_good = Some((rec.seq, rec.hash));
            break;
        }
        next_end = s;
    }
    Ok((
        Tail::Damaged { torn, last_good },
        unterminated,
        r.bytes_read,
    ))
}
