//! Loading a policy: files in a directory (or named ones) → one validated [`Policy`], all or
//! nothing, with every error and warning as a `file:line:col` [`Diagnostic`].
//!
//! This file holds the entry points ([`load_dir`], [`load_files`], [`parse_str`]). The stages
//! are one module each, each depending only on those listed before it:
//!
//! * `files`: finding and reading the files with their ownership/permission checks, through
//!   [`System`] (never the disk directly); [`LoadOptions`], [`MAX_FILE_SIZE`];
//! * `raw`: the serde shapes of a file; `ctx`: where validators report, with positions;
//! * the validators: `names` (pure syntax), `accounts` (users, groups, approvers), `hosts`,
//!   `command`, `login`, `admin`, `lease_keys`, `profile` (which judges `env_keep` with
//!   [`crate::env`]);
//! * `parse`: one file's text → its parts;
//! * `assemble`: the files → one policy ([`LoadOutcome`]), with the cross-file rules
//!   (duplicate names, one `[admin]`, `conflicts`) and the digest.
//!
//! The policy digest is SHA-256 over, for each loaded file in load order: its file name (last
//! path component, so a checkout and the installed dir digest alike), a NUL byte, its length
//! as a big-endian u64, and its bytes.

mod accounts;
mod admin;
mod assemble;
mod command;
mod ctx;
mod files;
mod hosts;
mod lease_keys;
mod login;
mod names;
mod parse;
mod profile;
mod raw;

pub use crate::diag::line_col;
pub use command::{compile_arg_regex, RegexError};
pub use names::is_valid_profile_name;

use crate::diag::{Diagnostic, Severity};
use crate::model::{Policy, Profile};
use crate::system::System;
pub use assemble::LoadOutcome;
pub use files::{LoadOptions, MAX_FILE_SIZE};

use assemble::{dedupe, sort_diags, Assembler};
use files::{check_parent_dir, list_policy_dir, read_policy_file, whole_file, Listing};
use parse::parse_file;
use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};

/// Load every `*.toml` in `dir` in lexical order. A missing or empty dir is a valid, empty
/// policy (nothing is allowed) with a warning.
pub fn load_dir(dir: &Path, opts: &LoadOptions, sys: &dyn System) -> LoadOutcome {
    let mut diags = Vec::new();
    match list_policy_dir(dir, opts, sys, &mut diags) {
        Listing::Missing => {
            diags.push(whole_file(
                dir,
                Severity::Warning,
                "policy directory does not exist: no policy files: nothing is allowed".to_string(),
            ));
            LoadOutcome {
                policy: Some(Policy::default().with_digest()),
                diagnostics: diags,
            }
        }
        Listing::Refused => LoadOutcome {
            policy: None,
            diagnostics: diags,
        },
        Listing::Files(paths) => load_paths(dir, &paths, opts, sys, diags),
    }
}

/// Load exactly these files, as if they were the whole policy dir (in the order given).
/// With `check_permissions`, their parent directories are checked too.
pub fn load_files(paths: &[PathBuf], opts: &LoadOptions, sys: &dyn System) -> LoadOutcome {
    let mut diags = Vec::new();
    if opts.check_permissions {
        let mut seen = HashSet::new();
        for p in paths {
            let parent = match p.parent() {
                Some(d) if !d.as_os_str().is_empty() => d.to_path_buf(),
                _ => PathBuf::from("."),
            };
            if seen.insert(parent.clone()) {
                check_parent_dir(&parent, opts, sys, &mut diags);
            }
        }
    }
    load_paths(Path::new("."), paths, opts, sys, diags)
}

fn load_paths(
    dir: &Path,
    paths: &[PathBuf],
    opts: &LoadOptions,
    sys: &dyn System,
    mut diags: Vec<Diagnostic>,
) -> LoadOutcome {
    if paths.is_empty() {
        diags.push(whole_file(
            dir,
            Severity::Warning,
            "no policy files: nothing is allowed".to_string(),
        ));
    }
    let mut asm = Assembler::new(diags);
    for path in paths {
        if let Some(bytes) = read_policy_file(path, opts, sys, &mut asm.diags) {
            asm.add(path, &bytes, sys);
        }
    }
    asm.finish()
}

/// Load in-memory files as if they had been read from disk, in this order (tests of the
/// cross-file rules, without a directory).
#[cfg(test)]
pub(crate) fn load_texts(files: &[(&str, &str)], sys: &dyn System) -> LoadOutcome {
    let mut asm = Assembler::new(Vec::new());
    for (name, text) in files {
        asm.add(Path::new(name), text.as_bytes(), sys);
    }
    asm.finish()
}

/// Parse and validate one file's text (no permission checks, no cross-file checks; duplicate
/// names within the file are reported).
pub fn parse_str(file: &Path, text: &str, sys: &dyn System) -> (Vec<Profile>, Vec<Diagnostic>) {
    let mut parts = parse_file(file, text, sys);
    dedupe(&mut parts.profiles, &mut HashMap::new(), &mut parts.diags);
    sort_diags(&mut parts.diags);
    (parts.profiles, parts.diags)
}
