//! Replacing a state file so that a crash leaves either the old content or the new, whole;
//! where a damaged one is kept; and space set aside with real blocks (the journal's reserve).

use elevate_base::os::cerr_retry;
use std::fs::{File, OpenOptions};
use std::io::{self, BufWriter, Write};
use std::os::fd::AsRawFd;
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;

/// Write `path` anew, mode 0600: the content goes to `path+` first (streamed through a
/// buffer), is fsync'd, renamed over `path`, and the directory is fsync'd so the rename
/// itself survives a power loss. On failure `path+` is removed: on a full disk it holds
/// space that the writes after it need.
pub fn replace_durably(
    path: &Path,
    write: impl FnOnce(&mut dyn Write) -> io::Result<()>,
) -> io::Result<()> {
    let mut tmp = path.as_os_str().to_owned();
    tmp.push("+");
    let tmp = Path::new(&tmp);
    let written = (|| {
        let mut f = OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(0o600)
            .open(tmp)?;
        let mut w = BufWriter::with_capacity(1 << 16, &mut f);
        write(&mut w)?;
        w.flush()?;
        drop(w);
        f.sync_all()
    })();
    if let Err(e) = written {
        let _ = std::fs::remove_file(tmp);
        return Err(e);
    }
    std::fs::rename(tmp, path)?;
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        File::open(dir)?.sync_all()?;
    }
    Ok(())
}

/// Where a damaged state file is kept for the administrator: `path.damaged-<ms since epoch>`.
pub fn aside_path(path: &Path) -> std::path::PathBuf {
    let ms = elevate_base::time::wall_ms(std::time::SystemTime::now());
    let mut aside = path.as_os_str().to_owned();
    aside.push(format!(".damaged-{ms}"));
    aside.into()
}

/// Give `file` its first `len` bytes as real blocks, not a hole: `fallocate(2)`, or zeros
/// written where the filesystem does not support it; then fsync. Fails (ENOSPC, EDQUOT) when
/// the space is not there, possibly with part of it allocated.
pub fn allocate(file: &mut File, len: u64) -> io::Result<()> {
    let size =
        libc::off_t::try_from(len).map_err(|_| io::Error::from(io::ErrorKind::InvalidInput))?;
    let fd = file.as_raw_fd();
    // SAFETY: fallocate takes only integers; `fd` is open for writing for the whole call.
    match cerr_retry(|| unsafe { libc::fallocate(fd, 0, 0, size) }) {
        Ok(_) => {}
        Err(e) if e.raw_os_error() == Some(libc::EOPNOTSUPP) => {
            let zeros = [0u8; 1 << 16];
            let mut left = len;
            while left > 0 {
                let n = left.min(zeros.len() as u64) as usize;
                file.write_all(&zeros[..n])?;
                left -= n as u64;
            }
        }
        Err(e) => return Err(e),
    }
    file.sync_all()
}
