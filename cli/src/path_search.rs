//! PATH search for `elevate with`, whose command runs as the caller: a bare name is looked
//! up in the caller's own PATH, as their shell would, and sent to the daemon as an absolute
//! path.

use std::ffi::OsStr;
use std::path::{Path, PathBuf};

/// The first executable regular file `name` in `path` (as a shell would search it; an empty
/// entry means the current directory), made absolute against `cwd`. With no PATH at all,
/// elevate's fixed one.
pub fn find_in_path(name: &str, path: Option<&OsStr>, cwd: Option<&Path>) -> Option<PathBuf> {
    use std::os::unix::fs::PermissionsExt;
    let path = path.unwrap_or(OsStr::new(elevate_proto::SECURE_PATH));
    std::env::split_paths(path)
        .filter_map(|dir| {
            let p = dir.join(name);
            if p.is_absolute() {
                Some(p)
            } else {
                cwd.map(|c| c.join(p))
            }
        })
        .find(|p| {
            p.metadata()
                .is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn path_search() {
        let dir = std::env::temp_dir().join(format!("elevate-cli-path-{}", std::process::id()));
        let bin = dir.join("bin");
        std::fs::create_dir_all(&bin).unwrap();
        use std::os::unix::fs::PermissionsExt;
        let exe = bin.join("tool");
        std::fs::write(&exe, "#!/bin/sh\n").unwrap();
        std::fs::set_permissions(&exe, std::fs::Permissions::from_mode(0o755)).unwrap();
        let plain = bin.join("data");
        std::fs::write(&plain, "").unwrap();
        std::fs::set_permissions(&plain, std::fs::Permissions::from_mode(0o644)).unwrap();
        let path = std::ffi::OsString::from(format!("/nonexistent:{}", bin.display()));
        assert_eq!(find_in_path("tool", Some(&path), None), Some(exe.clone()));
        assert_eq!(
            find_in_path("data", Some(&path), None),
            None,
            "not executable"
        );
        assert_eq!(
            find_in_path("bin", Some(OsStr::new(":")), Some(&dir)),
            None,
            "a directory"
        );
        // Relative and empty entries are searched from the cwd and come back absolute.
        assert_eq!(
            find_in_path("tool", Some(OsStr::new("bin")), Some(&dir)),
            Some(exe.clone())
        );
        assert_eq!(
            find_in_path("tool", Some(OsStr::new("")), Some(&bin)),
            Some(exe)
        );
        let _ = std::fs::remove_dir_all(&dir);
    }
}
