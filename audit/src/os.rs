//! The audit log's contact with the file system: how the log and the anchor are created and
//! opened (symbolic links refused, FIFOs unable to block us), the log group looked up, paths
//! in error messages. libc is used here only, for open(2) flags and errno values; the crate
//! has no `unsafe`.

use std::fs::{self, DirBuilder, File, OpenOptions, Permissions};
use std::io::{self, Read};
use std::os::unix::fs::{DirBuilderExt, MetadataExt, OpenOptionsExt, PermissionsExt};
use std::path::Path;

/// `e` with the path it is about in front of its message.
pub(crate) fn with_path(e: io::Error, path: &Path) -> io::Error {
    io::Error::new(e.kind(), format!("{}: {e}", path.display()))
}

/// Create or truncate `path` for writing with `mode`, refusing to follow a symbolic link there.
pub(crate) fn create_nofollow(path: &Path, mode: u32) -> io::Result<File> {
    OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(mode)
        .custom_flags(libc::O_NOFOLLOW)
        .open(path)
}

/// Create the directory and file as documented on [`crate::AuditLog`], or open the existing
/// file.
pub(crate) fn open_log_file(path: &Path, group: Option<&str>) -> io::Result<File> {
    let gid = group.and_then(group_id);
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        match fs::symlink_metadata(dir) {
            Ok(_) => {}
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                DirBuilder::new()
                    .recursive(true)
                    .mode(0o750)
                    .create(dir)
                    .and_then(|()| fs::set_permissions(dir, Permissions::from_mode(0o750)))
                    .map_err(|e| with_path(e, dir))?;
                if let Some(gid) = gid {
                    // A nicety: failing to chown (not root) leaves the creator's group.
                    let _ = std::os::unix::fs::chown(dir, None, Some(gid));
                }
            }
            Err(e) => return Err(with_path(e, dir)),
        }
    }
    // O_NONBLOCK: opening a FIFO planted at the path must not hang; no effect on regular files.
    let flags = libc::O_NOFOLLOW | libc::O_NONBLOCK;
    let created = OpenOptions::new()
        .read(true)
        .append(true)
        .create_new(true)
        .mode(0o640)
        .custom_flags(flags)
        .open(path);
    let file = match created {
        Ok(f) => {
            // The mode given to open(2) is masked by the umask; make it exactly 0640.
            f.set_permissions(Permissions::from_mode(0o640))
                .map_err(|e| with_path(e, path))?;
            if let Some(gid) = gid {
                let _ = std::os::unix::fs::fchown(&f, None, Some(gid));
            }
            f
        }
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => OpenOptions::new()
            .read(true)
            .append(true)
            .custom_flags(flags)
            .open(path)
            .map_err(|e| {
                if e.raw_os_error() == Some(libc::ELOOP) {
                    io::Error::new(
                        e.kind(),
                        format!(
                            "{}: is a symbolic link, refusing to follow it",
                            path.display()
                        ),
                    )
                } else {
                    with_path(e, path)
                }
            })?,
        Err(e) => return Err(with_path(e, path)),
    };
    let meta = file.metadata().map_err(|e| with_path(e, path))?;
    if !meta.file_type().is_file() {
        return Err(io::Error::other(format!(
            "{}: not a regular file",
            path.display()
        )));
    }
    if meta.nlink() != 1 {
        return Err(io::Error::other(format!(
            "{}: has {} hard links, refusing to append to it",
            path.display(),
            meta.nlink()
        )));
    }
    Ok(file)
}

/// The gid of `name` from /etc/group (local groups only: `adm` is always local).
fn group_id(name: &str) -> Option<u32> {
    let mut text = String::new();
    File::open("/etc/group")
        .ok()?
        .take(1 << 20)
        .read_to_string(&mut text)
        .ok()?;
    text.lines().find_map(|line| {
        let mut parts = line.split(':');
        (parts.next()? == name).then_some(())?;
        parts.nth(1)?.parse().ok()
    })
}
