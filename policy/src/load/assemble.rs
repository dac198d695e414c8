//! Putting files together into one policy: the digest, duplicate names across files, the one
//! `[admin]`, and `conflicts` that may name profiles of other files.

use super::parse::parse_file;
use crate::diag::{line_col, Diagnostic, Severity};
use crate::model::{Access, Admin, LoadedFile, Location, LoginRule, Policy, Profile};
use crate::system::System;
use sha2::{Digest, Sha256};
use std::collections::HashMap;
use std::os::unix::ffi::OsStrExt;
use std::path::Path;

/// What a load produced. `policy` is `Some` only when there were no errors.
#[derive(Debug, Default)]
pub struct LoadOutcome {
    pub policy: Option<Policy>,
    pub diagnostics: Vec<Diagnostic>,
}

impl LoadOutcome {
    pub fn errors(&self) -> impl Iterator<Item = &Diagnostic> {
        self.diagnostics
            .iter()
            .filter(|d| d.severity == Severity::Error)
    }
    pub fn warnings(&self) -> impl Iterator<Item = &Diagnostic> {
        self.diagnostics
            .iter()
            .filter(|d| d.severity == Severity::Warning)
    }
    pub fn has_errors(&self) -> bool {
        self.errors().next().is_some()
    }
}

/// Builds one policy out of files added in load order; the cross-file rules (duplicate
/// names, one `[admin]`, `conflicts`) are checked as they come and in [`Assembler::finish`].
pub(super) struct Assembler {
    pub(super) diags: Vec<Diagnostic>,
    profiles: Vec<Profile>,
    files: Vec<LoadedFile>,
    digest: Sha256,
    first_seen: HashMap<String, Location>,
    admin: Option<Admin>,
    logins: Vec<LoginRule>,
    /// (profile, the profile it names in `conflicts`, where).
    conflict_refs: Vec<(String, String, Location)>,
}

impl Assembler {
    pub(super) fn new(diags: Vec<Diagnostic>) -> Assembler {
        Assembler {
            diags,
            profiles: Vec::new(),
            files: Vec::new(),
            digest: Sha256::new(),
            first_seen: HashMap::new(),
            admin: None,
            logins: Vec::new(),
            conflict_refs: Vec::new(),
        }
    }

    pub(super) fn add(&mut self, path: &Path, bytes: &[u8], sys: &dyn System) {
        let name = path.file_name().unwrap_or(path.as_os_str());
        self.digest.update(name.as_bytes());
        self.digest.update([0u8]);
        self.digest.update((bytes.len() as u64).to_be_bytes());
        self.digest.update(bytes);
        self.files.push(LoadedFile {
            path: path.to_path_buf(),
            sha256: hex(&Sha256::digest(bytes)),
        });
        let text = match std::str::from_utf8(bytes) {
            Ok(t) => t,
            Err(e) => {
                let valid = bytes.get(..e.valid_up_to()).unwrap_or_default();
                let prefix = String::from_utf8_lossy(valid);
                let (line, col) = line_col(&prefix, prefix.len());
                self.diags.push(Diagnostic {
                    severity: Severity::Error,
                    location: Location {
                        file: path.to_path_buf(),
                        line,
                        col,
                    },
                    message: "not valid UTF-8".to_string(),
                });
                return;
            }
        };
        let mut parts = parse_file(path, text, sys);
        dedupe(&mut parts.profiles, &mut self.first_seen, &mut parts.diags);
        if let Some(a) = parts.admin {
            match (&self.admin, &a.location) {
                (Some(first), Some(loc)) => parts.diags.push(Diagnostic {
                    severity: Severity::Error,
                    location: loc.clone(),
                    message: format!(
                        "[admin] may appear in one file only: first defined at {}",
                        first
                            .location
                            .as_ref()
                            .map(|l| l.to_string())
                            .unwrap_or_default()
                    ),
                }),
                _ => self.admin = Some(a),
            }
        }
        sort_diags(&mut parts.diags);
        self.diags.extend(parts.diags);
        self.profiles.extend(parts.profiles);
        self.logins.extend(parts.logins);
        self.conflict_refs.extend(parts.conflict_refs);
    }

    pub(super) fn finish(mut self) -> LoadOutcome {
        // Conflicts may name profiles of other files: checked once all are loaded.
        for (from, to, loc) in std::mem::take(&mut self.conflict_refs) {
            let message = if from == to {
                format!("profile \"{from}\" cannot conflict with itself")
            } else {
                match self.profiles.iter().find(|p| p.name == to) {
                    None => format!("conflicts names unknown profile \"{to}\""),
                    Some(p) if p.access != Access::Lease => format!(
                        "conflicts names \"{to}\", a standing profile: only leases are held, so this would separate nothing (make \"{to}\" a lease profile)"
                    ),
                    Some(_) => continue,
                }
            };
            self.diags.push(Diagnostic {
                severity: Severity::Error,
                location: loc,
                message,
            });
        }
        let ok = !self.diags.iter().any(|d| d.severity == Severity::Error);
        LoadOutcome {
            policy: ok.then(|| Policy {
                profiles: self.profiles,
                files: self.files,
                digest: hex(&self.digest.finalize()),
                admin: self.admin.unwrap_or_default(),
                logins: self.logins,
            }),
            diagnostics: self.diags,
        }
    }
}

impl Policy {
    /// The digest of a policy with no files.
    pub(super) fn with_digest(mut self) -> Self {
        self.digest = hex(&Sha256::new().finalize());
        self
    }
}

fn hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut s = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        s.push(char::from(DIGITS[usize::from(b >> 4)]));
        s.push(char::from(DIGITS[usize::from(b & 0xf)]));
    }
    s
}

pub(super) fn sort_diags(diags: &mut [Diagnostic]) {
    diags.sort_by_key(|d| (d.location.line, d.location.col));
}

/// Report profiles whose name was already used (here or in an earlier file), and drop them.
pub(super) fn dedupe(
    profiles: &mut Vec<Profile>,
    first_seen: &mut HashMap<String, Location>,
    diags: &mut Vec<Diagnostic>,
) {
    profiles.retain(|p| match first_seen.get(&p.name) {
        Some(first) => {
            diags.push(Diagnostic {
                severity: Severity::Error,
                location: p.location.clone(),
                message: format!(
                    "duplicate profile name \"{}\": first defined at {first}",
                    p.name
                ),
            });
            false
        }
        None => {
            first_seen.insert(p.name.clone(), p.location.clone());
            true
        }
    });
}
