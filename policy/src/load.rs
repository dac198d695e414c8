//! Reading policy files: permissions (like sshd's StrictModes), TOML with positions, strict
//! validation, and the all-or-nothing result the daemon swaps in atomically.

use crate::diag::Diagnostic;
use crate::model::{Policy, Profile};
use crate::system::System;
use std::path::{Path, PathBuf};

#[derive(Debug, Clone)]
pub struct LoadOptions {
    /// Reject files/dirs not owned by root or writable by group/other. The daemon always sets
    /// this; `elevate policy check --no-permissions` clears it for files in a checkout.
    pub check_permissions: bool,
}

impl Default for LoadOptions {
    fn default() -> Self {
        LoadOptions {
            check_permissions: true,
        }
    }
}

/// What a load produced. `policy` is `Some` only when there were no errors.
#[derive(Debug, Default)]
pub struct LoadOutcome {
    pub policy: Option<Policy>,
    pub diagnostics: Vec<Diagnostic>,
}

/// Load every `*.toml` in `dir` in lexical order. A missing or empty dir is a valid, empty
/// policy (nothing is allowed) with a warning.
pub fn load_dir(dir: &Path, opts: &LoadOptions, sys: &dyn System) -> LoadOutcome {
    todo!("{dir:?} {opts:?} {}", sys.user_exists("x"))
}

/// Load exactly these files, as if they were the whole policy dir.
pub fn load_files(paths: &[PathBuf], opts: &LoadOptions, sys: &dyn System) -> LoadOutcome {
    todo!("{paths:?} {opts:?} {}", sys.user_exists("x"))
}

/// Parse and validate one file's text (no permission checks, no cross-file checks).
pub fn parse_str(file: &Path, text: &str, sys: &dyn System) -> (Vec<Profile>, Vec<Diagnostic>) {
    todo!("{file:?} {text} {}", sys.user_exists("x"))
}

/// 1-based line and column (in characters) of a byte offset.
pub fn line_col(text: &str, offset: usize) -> (usize, usize) {
    let offset = offset.min(text.len());
    let before = text.get(..offset).unwrap_or(text);
    let line = before.matches('\n').count() + 1;
    let col = before.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
    (line, col)
}
