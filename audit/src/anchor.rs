//! The anchor: `{"seq":N,"hash":"<hex>"}`, the chain head as of the last append, kept outside
//! the log (in the daemon's state directory) so that deleting the log's last records is
//! detectable.

use crate::chain::is_hash;
use serde_json::Value;
use std::fs;
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};

/// File name of the anchor inside the daemon's state directory.
pub const ANCHOR_FILE: &str = "audit-anchor.json";

/// The last record's `seq` and `hash`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Anchor {
    pub seq: u64,
    pub hash: String,
}

impl Anchor {
    /// Read and validate an anchor file. A missing file is `ErrorKind::NotFound`; a file that is
    /// not an anchor is `ErrorKind::InvalidData`.
    pub fn read(path: &Path) -> io::Result<Anchor> {
        let mut text = Vec::new();
        fs::File::open(path)?.take(4096).read_to_end(&mut text)?;
        Anchor::parse(&text).ok_or_else(|| {
            io::Error::new(
                io::ErrorKind::InvalidData,
                format!("{}: not an audit anchor", path.display()),
            )
        })
    }

    fn parse(text: &[u8]) -> Option<Anchor> {
        let Value::Object(m) = serde_json::from_slice(text).ok()? else {
            return None;
        };
        let seq = m.get("seq")?.as_u64()?;
        let hash = m.get("hash")?.as_str()?;
        is_hash(hash).then(|| Anchor {
            seq,
            hash: hash.to_owned(),
        })
    }

    /// Replace `path` atomically (write a temporary file beside it, then rename). Not fsynced:
    /// after a power loss it may be older than the log, never torn.
    pub fn write(&self, path: &Path) -> io::Result<()> {
        let tmp = temp_path(path);
        let mut f = crate::os::create_nofollow(&tmp, 0o640)?;
        f.write_all(format!("{{\"seq\":{},\"hash\":\"{}\"}}\n", self.seq, self.hash).as_bytes())?;
        drop(f);
        fs::rename(&tmp, path)
    }
}

fn temp_path(path: &Path) -> PathBuf {
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    path.with_file_name(format!(".{name}.tmp"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parse_accepts_only_anchors() {
        let h = "ab".repeat(32);
        assert_eq!(
            Anchor::parse(format!("{{\"seq\":7,\"hash\":\"{h}\"}}\n").as_bytes()),
            Some(Anchor { seq: 7, hash: h })
        );
        assert_eq!(Anchor::parse(b""), None);
        assert_eq!(Anchor::parse(b"{\"seq\":7}"), None);
        assert_eq!(Anchor::parse(b"{\"seq\":-1,\"hash\":\"00\"}"), None);
        assert_eq!(Anchor::parse(b"[1]"), None);
        let upper = "AB".repeat(32);
        assert_eq!(
            Anchor::parse(format!("{{\"seq\":7,\"hash\":\"{upper}\"}}").as_bytes()),
            None
        );
    }
}
