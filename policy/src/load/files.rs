//! Finding and reading policy files, with sshd-StrictModes-like checks: root-owned, not
//! writable by group or other, regular files never reached through a symlink, at most
//! [`MAX_FILE_SIZE`]. Every file system access goes through [`System`], so a fake system can
//! stand in for the disk.

use crate::diag::{Diagnostic, Severity};
use crate::model::Location;
use crate::system::{os::is_symlink_refusal, FileInfo, System};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

/// Policy files larger than this are refused (a policy is a few KiB; this bounds memory).
pub const MAX_FILE_SIZE: u64 = 1 << 20;

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

pub(super) fn whole_file(file: &Path, severity: Severity, message: String) -> Diagnostic {
    Diagnostic {
        severity,
        location: Location {
            file: file.to_path_buf(),
            line: 0,
            col: 0,
        },
        message,
    }
}

/// Is `path` (a file or dir) owned by root and not writable by group or other?
fn check_mode(path: &Path, meta: &FileInfo, diags: &mut Vec<Diagnostic>) {
    let fix = format!(
        "fix: chown root:root {p} && chmod go-w {p}",
        p = path.display()
    );
    if meta.uid != 0 {
        diags.push(whole_file(
            path,
            Severity::Error,
            format!(
                "owned by uid {}, but policy must be owned by root; {fix}",
                meta.uid
            ),
        ));
    }
    if meta.mode & 0o022 != 0 {
        diags.push(whole_file(
            path,
            Severity::Error,
            format!(
                "writable by group or others (mode {:04o}): anyone who can write policy is root; {fix}",
                meta.mode & 0o7777
            ),
        ));
    }
}

fn check_dir(dir: &Path, opts: &LoadOptions, sys: &dyn System, diags: &mut Vec<Diagnostic>) {
    match sys.stat(dir) {
        Ok(m) if !m.is_dir => diags.push(whole_file(
            dir,
            Severity::Error,
            "not a directory".to_string(),
        )),
        Ok(m) => {
            if opts.check_permissions {
                check_mode(dir, &m, diags);
            }
        }
        Err(e) => diags.push(whole_file(
            dir,
            Severity::Error,
            format!("cannot read directory: {e}"),
        )),
    }
}

/// The directory of a file given to `policy check FILE` (Ansible's `validate:` temp files):
/// as strict as the policy dir, except that a root-owned sticky directory such as /tmp is
/// fine — nobody else can replace or rename root's file in it.
pub(super) fn check_parent_dir(
    dir: &Path,
    opts: &LoadOptions,
    sys: &dyn System,
    diags: &mut Vec<Diagnostic>,
) {
    if let Ok(m) = sys.stat(dir) {
        if m.is_dir && m.uid == 0 && m.mode & 0o1000 != 0 {
            return;
        }
    }
    check_dir(dir, opts, sys, diags);
}

/// Read one policy file: a regular file (never through a symlink), at most [`MAX_FILE_SIZE`].
/// Opened once and checked through the open descriptor, so it cannot be swapped in between.
pub(super) fn read_policy_file(
    path: &Path,
    opts: &LoadOptions,
    sys: &dyn System,
    diags: &mut Vec<Diagnostic>,
) -> Option<Vec<u8>> {
    let mut err = |msg: String| diags.push(whole_file(path, Severity::Error, msg));
    let mut file = match sys.open_no_follow(path) {
        Ok(f) => f,
        Err(e) if is_symlink_refusal(&e) => {
            err("is a symlink; policy files must be regular files".to_string());
            return None;
        }
        Err(e) => {
            err(format!("cannot open: {e}"));
            return None;
        }
    };
    let meta = match file.info() {
        Ok(m) => m,
        Err(e) => {
            err(format!("cannot stat: {e}"));
            return None;
        }
    };
    if !meta.is_file {
        err("not a regular file".to_string());
        return None;
    }
    if opts.check_permissions {
        let before = diags.len();
        check_mode(path, &meta, diags);
        if diags.len() != before {
            return None;
        }
    }
    let too_big = || format!("larger than {} bytes (1 MiB)", MAX_FILE_SIZE);
    if meta.len > MAX_FILE_SIZE {
        diags.push(whole_file(path, Severity::Error, too_big()));
        return None;
    }
    let bytes = match file.read_up_to(MAX_FILE_SIZE + 1) {
        Ok(b) => b,
        Err(e) => {
            diags.push(whole_file(
                path,
                Severity::Error,
                format!("cannot read: {e}"),
            ));
            return None;
        }
    };
    if bytes.len() as u64 > MAX_FILE_SIZE {
        diags.push(whole_file(path, Severity::Error, too_big()));
        return None;
    }
    Some(bytes)
}

/// Is this directory entry a policy file? `*.toml`, not hidden.
fn is_policy_name(name: &std::ffi::OsStr) -> bool {
    let b = name.as_bytes();
    b.len() > ".toml".len() && b.ends_with(b".toml") && !b.starts_with(b".")
}

/// What [`list_policy_dir`] found.
pub(super) enum Listing {
    /// The directory does not exist (an empty policy, with a warning).
    Missing,
    /// The directory itself is unusable; the reasons are in the diagnostics.
    Refused,
    /// The policy files in lexical byte order (independent of the locale); entries that
    /// could not be read are errors in the diagnostics.
    Files(Vec<PathBuf>),
}

/// Check the policy directory and list its `*.toml` files.
pub(super) fn list_policy_dir(
    dir: &Path,
    opts: &LoadOptions,
    sys: &dyn System,
    diags: &mut Vec<Diagnostic>,
) -> Listing {
    match sys.lstat(dir) {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Listing::Missing,
        _ => check_dir(dir, opts, sys, diags),
    }
    if !diags.is_empty() {
        return Listing::Refused;
    }
    let mut names = Vec::new();
    let mut cannot_list = |e: std::io::Error| {
        diags.push(whole_file(
            dir,
            Severity::Error,
            format!("cannot list directory: {e}"),
        ))
    };
    match sys.list_dir(dir) {
        Ok(entries) => {
            for entry in entries {
                match entry {
                    Ok(name) if is_policy_name(&name) => names.push(name),
                    Ok(_) => {}
                    Err(e) => cannot_list(e),
                }
            }
        }
        Err(e) => cannot_list(e),
    }
    names.sort_by(|a, b| a.as_bytes().cmp(b.as_bytes()));
    Listing::Files(names.iter().map(|n| dir.join(n)).collect())
}
