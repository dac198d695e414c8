//! Turning the command a user typed into the canonical path the policy is matched against.

use crate::system::System;
use std::path::{Path, PathBuf};

/// Resolve `argv0` the way the daemon does before deciding:
///
/// - an absolute path is canonicalized (symlinks resolved); it must exist and be executable;
/// - a bare name (no `/`) is looked up in [`elevate_base::paths::SECURE_PATH`] only — never the
///   caller's `PATH` — and the first executable hit is canonicalized;
/// - a relative path containing `/` is refused: its meaning depends on the caller's cwd.
pub fn resolve_command(argv0: &str, sys: &dyn System) -> Result<PathBuf, String> {
    if argv0.is_empty() {
        return Err("empty command name".to_string());
    }
    if argv0.contains('\0') {
        return Err("command name contains a NUL byte".to_string());
    }
    if argv0.starts_with('/') {
        let path = Path::new(argv0);
        let canonical = sys
            .canonicalize(path)
            .ok_or_else(|| format!("{argv0}: no such file"))?;
        if !sys.is_executable(&canonical) {
            return Err(format!("{argv0}: not an executable file"));
        }
        return Ok(canonical);
    }
    if argv0.contains('/') {
        return Err(format!(
            "{argv0}: relative paths are not allowed; use an absolute path or a bare command name"
        ));
    }
    if argv0 == "." || argv0 == ".." {
        return Err(format!("{argv0}: not a command"));
    }
    for dir in elevate_base::paths::SECURE_PATH.split(':') {
        let candidate = Path::new(dir).join(argv0);
        if sys.is_executable(&candidate) {
            if let Some(canonical) = sys.canonicalize(&candidate) {
                return Ok(canonical);
            }
        }
    }
    Err(format!(
        "{argv0}: command not found in {}",
        elevate_base::paths::SECURE_PATH
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::system::FakeSystem;

    #[test]
    fn resolution_table() {
        let sys = FakeSystem::new()
            .executable("/usr/bin/systemctl")
            .executable("/usr/local/bin/deploy")
            .executable("/usr/sbin/deploy")
            .file("/usr/bin/notexec")
            .symlink("/bin", "/usr/bin")
            .symlink("/usr/sbin/sc", "/usr/bin/systemctl");
        let ok = |s: &str| resolve_command(s, &sys);
        let cases: &[(&str, Result<&str, &str>)] = &[
            ("/usr/bin/systemctl", Ok("/usr/bin/systemctl")),
            ("/bin/systemctl", Ok("/usr/bin/systemctl")),
            ("/usr/bin/../bin/systemctl", Ok("/usr/bin/systemctl")),
            ("systemctl", Ok("/usr/bin/systemctl")),
            ("sc", Ok("/usr/bin/systemctl")),
            // SECURE_PATH order: /usr/local/bin before /usr/sbin.
            ("deploy", Ok("/usr/local/bin/deploy")),
            ("", Err("empty")),
            ("./systemctl", Err("use an absolute path")),
            ("bin/systemctl", Err("use an absolute path")),
            ("..", Err("not a command")),
            ("nope", Err("not found")),
            ("notexec", Err("not found")),
            ("/usr/bin/notexec", Err("not an executable")),
            ("/usr/bin/nope", Err("no such file")),
            ("sys\0temctl", Err("NUL")),
        ];
        for (input, want) in cases {
            match (ok(input), want) {
                (Ok(got), Ok(w)) => assert_eq!(got, Path::new(w), "{input:?}"),
                (Err(got), Err(w)) => assert!(got.contains(w), "{input:?}: {got}"),
                (got, want) => panic!("{input:?}: got {got:?}, want {want:?}"),
            }
        }
    }
}
