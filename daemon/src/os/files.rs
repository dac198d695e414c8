//! Replacing a state file so that a crash leaves either the old content or the new, whole;
//! and where a damaged one is kept.

use std::fs::{File, OpenOptions};
use std::io::{self, BufWriter, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;

/// Write `path` anew, mode 0600: the content goes to `path+` first (streamed through a
/// buffer), is fsync'd, renamed over `path`, and the directory is fsync'd so the rename
/// itself survives a power loss.
pub fn replace_durably(
    path: &Path,
    write: impl FnOnce(&mut dyn Write) -> io::Result<()>,
) -> io::Result<()> {
    let mut tmp = path.as_os_str().to_owned();
    tmp.push("+");
    let tmp = Path::new(&tmp);
    {
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
        f.sync_all()?;
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
