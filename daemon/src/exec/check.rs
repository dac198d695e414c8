//! The executable check.
//!
//! The executable is opened by walking its canonical path one component at a time with
//! `O_NOFOLLOW`, checking each directory and the file itself with `fstat` on the descriptor we
//! hold, and the child execs *that descriptor* (`execveat(AT_EMPTY_PATH)`). Nothing is looked
//! up by name twice, so there is no window between check and use.

use crate::os;
use std::ffi::CString;
use std::os::fd::{AsFd, OwnedFd};
use std::path::{Component, Path};

/// Open `path` for execution after checking that it and every directory above it are owned
/// by root and not writable by group or other, and that no component is a symlink.
pub fn open_checked_executable(path: &Path) -> Result<(OwnedFd, bool), String> {
    let shown = path.display();
    if !path.is_absolute() {
        return Err(format!("{shown}: not an absolute path"));
    }
    let root = OwnedFd::from(std::fs::File::open("/").map_err(|e| format!("/: {e}"))?);
    check_owner_mode(&root, "/", true)?;
    let comps: Vec<&std::ffi::OsStr> = path
        .components()
        .filter_map(|c| match c {
            Component::Normal(n) => Some(Ok(n)),
            Component::RootDir => None,
            _ => Some(Err(())),
        })
        .collect::<Result<_, _>>()
        .map_err(|_| format!("{shown}: path is not canonical"))?;
    let Some((file, dirs)) = comps.split_last() else {
        return Err(format!("{shown}: not a file"));
    };
    let mut dir = root;
    let mut walked = String::new();
    for d in dirs {
        walked.push('/');
        walked.push_str(&d.to_string_lossy());
        let name = cstring(d.as_encoded_bytes(), &shown)?;
        dir = os::openat(
            dir.as_fd(),
            &name,
            libc::O_PATH | libc::O_DIRECTORY | libc::O_NOFOLLOW,
        )
        .map_err(|e| {
            format!("{walked}: {e} (symlinks are not followed; use the canonical path)")
        })?;
        check_owner_mode(&dir, &walked, true)?;
    }
    let name = cstring(file.as_encoded_bytes(), &shown)?;
    // O_RDONLY rather than O_PATH so we can peek for "#!" (root can read any file).
    let fd = os::openat(
        dir.as_fd(),
        &name,
        libc::O_RDONLY | libc::O_NOFOLLOW | libc::O_NOCTTY,
    )
    .map_err(|e| format!("{shown}: {e}"))?;
    check_owner_mode(&fd, &shown.to_string(), false)?;
    let mut magic = [0u8; 2];
    let n = os::pread_start(fd.as_fd(), &mut magic).map_err(|e| format!("{shown}: {e}"))?;
    Ok((fd, n == 2 && &magic == b"#!"))
}

fn cstring(bytes: &[u8], shown: &std::path::Display<'_>) -> Result<CString, String> {
    CString::new(bytes).map_err(|_| format!("{shown}: path contains a NUL byte"))
}

fn check_owner_mode(fd: &OwnedFd, what: &str, is_dir: bool) -> Result<(), String> {
    let st = os::fstat(fd.as_fd()).map_err(|e| format!("{what}: {e}"))?;
    let kind = st.st_mode & libc::S_IFMT;
    if is_dir && kind != libc::S_IFDIR {
        return Err(format!("{what}: not a directory"));
    }
    if !is_dir {
        if kind != libc::S_IFREG {
            return Err(format!("{what}: not a regular file"));
        }
        if st.st_mode & 0o111 == 0 {
            return Err(format!("{what}: not executable"));
        }
    }
    if st.st_uid != 0 {
        return Err(format!(
            "{what}: owned by uid {}, not root; refusing to run it with privileges",
            st.st_uid
        ));
    }
    if st.st_mode & 0o022 != 0 {
        return Err(format!(
            "{what}: writable by group or others (mode {:o}); refusing to run it",
            st.st_mode & 0o7777
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn executable_checks() {
        let real = std::fs::canonicalize("/bin/true").unwrap();
        let (_, script) = open_checked_executable(&real).unwrap();
        assert!(!script);
        assert!(open_checked_executable(Path::new("relative/x")).is_err());
        assert!(open_checked_executable(Path::new("/usr/bin/../bin/true")).is_err());
        assert!(
            open_checked_executable(Path::new("/etc/passwd")).is_err(),
            "not executable"
        );
        let dir = std::env::temp_dir().join(format!("elevate-exec-test-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let f = dir.join("s");
        std::fs::write(&f, "#!/bin/sh\ntrue\n").unwrap();
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&f, std::fs::Permissions::from_mode(0o755)).unwrap();
        std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o755)).unwrap();
        // /tmp itself is world-writable (sticky), so anything below it is refused.
        assert!(open_checked_executable(&std::fs::canonicalize(&f).unwrap()).is_err());
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
