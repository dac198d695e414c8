//! Turning the command a user typed into the canonical path the policy is matched against.

use crate::system::System;
use elevate_base::paths::SECURE_PATH;
use std::fmt;
use std::path::{Path, PathBuf};

/// ResolveReason a typed command could not be resolved; `Display` is the sentence the user sees
/// (naming the command).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResolveError {
    pub argv0: String,
    pub why: ResolveReason,
}

/// The reasons [`resolve_command`] refuses a command name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ResolveReason {
    Empty,
    Nul,
    /// An absolute path that does not exist.
    NoSuchFile,
    /// An absolute path that is not an executable regular file.
    NotExecutable,
    /// A relative path containing `/`.
    Relative,
    /// `.` or `..`.
    NotACommand,
    /// A bare name found nowhere in the secure PATH.
    NotFound,
}

impl ResolveError {
    fn new(argv0: &str, why: ResolveReason) -> ResolveError {
        ResolveError {
            argv0: argv0.to_string(),
            why,
        }
    }
}

impl fmt::Display for ResolveError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let argv0 = &self.argv0;
        match self.why {
            ResolveReason::Empty => f.write_str("empty command name"),
            ResolveReason::Nul => f.write_str("command name contains a NUL byte"),
            ResolveReason::NoSuchFile => write!(f, "{argv0}: no such file"),
            ResolveReason::NotExecutable => write!(f, "{argv0}: not an executable file"),
            ResolveReason::Relative => write!(
                f,
                "{argv0}: relative paths are not allowed; use an absolute path or a bare command name"
            ),
            ResolveReason::NotACommand => write!(f, "{argv0}: not a command"),
            ResolveReason::NotFound => write!(f, "{argv0}: command not found in {SECURE_PATH}"),
        }
    }
}

impl std::error::Error for ResolveError {}

/// Resolve `argv0` the way the daemon does before deciding:
///
/// - an absolute path is canonicalized (symlinks resolved); it must exist and be executable;
/// - a bare name (no `/`) is looked up in [`elevate_base::paths::SECURE_PATH`] only — never the
///   caller's `PATH` — and the first executable hit is canonicalized;
/// - a relative path containing `/` is refused: its meaning depends on the caller's cwd.
pub fn resolve_command(argv0: &str, sys: &dyn System) -> Result<PathBuf, ResolveError> {
    let fail = |why| Err(ResolveError::new(argv0, why));
    if argv0.is_empty() {
        return fail(ResolveReason::Empty);
    }
    if argv0.contains('\0') {
        return fail(ResolveReason::Nul);
    }
    if argv0.starts_with('/') {
        let Some(canonical) = sys.canonicalize(Path::new(argv0)) else {
            return fail(ResolveReason::NoSuchFile);
        };
        if !sys.is_executable(&canonical) {
            return fail(ResolveReason::NotExecutable);
        }
        return Ok(canonical);
    }
    if argv0.contains('/') {
        return fail(ResolveReason::Relative);
    }
    if argv0 == "." || argv0 == ".." {
        return fail(ResolveReason::NotACommand);
    }
    for dir in SECURE_PATH.split(':') {
        let candidate = Path::new(dir).join(argv0);
        if sys.is_executable(&candidate) {
            if let Some(canonical) = sys.canonicalize(&candidate) {
                return Ok(canonical);
            }
        }
    }
    fail(ResolveReason::NotFound)
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
        let ok = |s: &str| resolve_command(s, &sys).map_err(|e| e.to_string());
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
