//! The executable check.
//!
//! The executable is opened by walking its canonical path one component at a time with
//! `O_NOFOLLOW`, checking each directory and the file itself with `fstat` on the descriptor we
//! hold, and the child execs *that descriptor* (`execveat(AT_EMPTY_PATH)`). Nothing is looked
//! up by name twice, so there is no window between check and use.

use crate::os;
use std::ffi::CString;
use std::fmt;
use std::io;
use std::os::fd::{AsFd, OwnedFd};
use std::path::{Component, Path};

/// Why an executable (or a directory above it) is refused: the path as shown, and what is
/// wrong with it. `Display` is the sentence the client and the audit record get.
#[derive(Debug)]
pub struct CheckError {
    /// The path, or the directory prefix walked so far.
    pub what: String,
    pub problem: Problem,
}

#[derive(Debug)]
pub enum Problem {
    NotAbsolute,
    NotCanonical,
    /// The path names no file (`/`).
    NotAFile,
    NulByte,
    /// A directory on the way could not be opened (a symlink, say).
    Directory(io::Error),
    /// The file could not be opened, inspected or read.
    Io(io::Error),
    NotADirectory,
    NotARegularFile,
    NotExecutable,
    NotOwnedByRoot {
        uid: u32,
    },
    Writable {
        mode: u32,
    },
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Problem::NotAbsolute => f.write_str("not an absolute path"),
            Problem::NotCanonical => f.write_str("path is not canonical"),
            Problem::NotAFile => f.write_str("not a file"),
            Problem::NulByte => f.write_str("path contains a NUL byte"),
            Problem::Directory(e) => {
                write!(f, "{e} (symlinks are not followed; use the canonical path)")
            }
            Problem::Io(e) => write!(f, "{e}"),
            Problem::NotADirectory => f.write_str("not a directory"),
            Problem::NotARegularFile => f.write_str("not a regular file"),
            Problem::NotExecutable => f.write_str("not executable"),
            Problem::NotOwnedByRoot { uid } => write!(
                f,
                "owned by uid {uid}, not root; refusing to run it with privileges"
            ),
            Problem::Writable { mode } => write!(
                f,
                "writable by group or others (mode {mode:o}); refusing to run it"
            ),
        }
    }
}

impl fmt::Display for CheckError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.what, self.problem)
    }
}

impl std::error::Error for CheckError {}

/// `problem` with `what`, for `map_err` and early returns.
fn refuse(what: impl fmt::Display, problem: Problem) -> CheckError {
    CheckError {
        what: what.to_string(),
        problem,
    }
}

/// Open `path` for execution after checking that it and every directory above it are owned
/// by root and not writable by group or other, and that no component is a symlink.
pub fn open_checked_executable(path: &Path) -> Result<(OwnedFd, bool), CheckError> {
    let shown = path.display();
    if !path.is_absolute() {
        return Err(refuse(&shown, Problem::NotAbsolute));
    }
    let root = OwnedFd::from(std::fs::File::open("/").map_err(|e| refuse("/", Problem::Io(e)))?);
    check_owner_mode(&root, "/", true)?;
    let comps: Vec<&std::ffi::OsStr> = path
        .components()
        .filter_map(|c| match c {
            Component::Normal(n) => Some(Ok(n)),
            Component::RootDir => None,
            _ => Some(Err(())),
        })
        .collect::<Result<_, _>>()
        .map_err(|_| refuse(&shown, Problem::NotCanonical))?;
    let Some((file, dirs)) = comps.split_last() else {
        return Err(refuse(&shown, Problem::NotAFile));
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
        .map_err(|e| refuse(&walked, Problem::Directory(e)))?;
        check_owner_mode(&dir, &walked, true)?;
    }
    let name = cstring(file.as_encoded_bytes(), &shown)?;
    // O_RDONLY rather than O_PATH so we can peek for "#!" (root can read any file).
    let fd = os::openat(
        dir.as_fd(),
        &name,
        libc::O_RDONLY | libc::O_NOFOLLOW | libc::O_NOCTTY,
    )
    .map_err(|e| refuse(&shown, Problem::Io(e)))?;
    check_owner_mode(&fd, &shown.to_string(), false)?;
    let mut magic = [0u8; 2];
    let n = os::pread_start(fd.as_fd(), &mut magic).map_err(|e| refuse(&shown, Problem::Io(e)))?;
    Ok((fd, n == 2 && &magic == b"#!"))
}

fn cstring(bytes: &[u8], shown: &std::path::Display<'_>) -> Result<CString, CheckError> {
    CString::new(bytes).map_err(|_| refuse(shown, Problem::NulByte))
}

fn check_owner_mode(fd: &OwnedFd, what: &str, is_dir: bool) -> Result<(), CheckError> {
    let st = os::fstat(fd.as_fd()).map_err(|e| refuse(what, Problem::Io(e)))?;
    let kind = st.st_mode & libc::S_IFMT;
    let problem = if is_dir && kind != libc::S_IFDIR {
        Problem::NotADirectory
    } else if !is_dir && kind != libc::S_IFREG {
        Problem::NotARegularFile
    } else if !is_dir && st.st_mode & 0o111 == 0 {
        Problem::NotExecutable
    } else if st.st_uid != 0 {
        Problem::NotOwnedByRoot { uid: st.st_uid }
    } else if st.st_mode & 0o022 != 0 {
        Problem::Writable {
            mode: st.st_mode & 0o7777,
        }
    } else {
        return Ok(());
    };
    Err(refuse(what, problem))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn executable_checks() {
        let real = std::fs::canonicalize("/bin/true").unwrap();
        let (_, script) = open_checked_executable(&real).unwrap();
        assert!(!script);
        let refusal = |p: &str| {
            open_checked_executable(Path::new(p))
                .unwrap_err()
                .to_string()
        };
        assert_eq!(refusal("relative/x"), "relative/x: not an absolute path");
        assert_eq!(
            refusal("/usr/bin/../bin/true"),
            "/usr/bin/../bin/true: path is not canonical"
        );
        assert_eq!(refusal("/etc/passwd"), "/etc/passwd: not executable");
        assert_eq!(refusal("/"), "/: not a file");
        let dir = std::env::temp_dir().join(format!("elevate-exec-test-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let f = dir.join("s");
        std::fs::write(&f, "#!/bin/sh\ntrue\n").unwrap();
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&f, std::fs::Permissions::from_mode(0o755)).unwrap();
        std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o755)).unwrap();
        // /tmp itself is world-writable (sticky), so anything below it is refused.
        let e = open_checked_executable(&std::fs::canonicalize(&f).unwrap()).unwrap_err();
        assert!(
            matches!(
                e.problem,
                Problem::Writable { .. } | Problem::NotOwnedByRoot { .. }
            ),
            "{e}"
        );
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
