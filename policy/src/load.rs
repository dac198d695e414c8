//! Reading policy files: permissions (like sshd's StrictModes), TOML with positions, strict
//! validation, and the all-or-nothing result the daemon swaps in atomically.
//!
//! Each file is parsed once into a position-carrying TOML tree; every `[[profile]]` is then
//! deserialized on its own (unknown keys and wrong types are serde errors with the key's or
//! value's span), so one broken profile does not hide the errors of the others.
//!
//! The policy digest is SHA-256 over, for each loaded file in load order: its file name (last
//! path component, so a checkout and the installed dir digest alike), a NUL byte, its length
//! as a big-endian u64, and its bytes.

use crate::diag::{Diagnostic, Severity};
use crate::lease::{Admin, Approval, Approver, LoginAccess, LoginRule, OnExpiry, TicketPattern};
use crate::lint::LeaseKey;
use crate::model::{Access, ArgPattern, CommandRule, LoadedFile, Location, Policy, Profile, Rest};
use crate::system::System;
use serde::de::{MapAccess, Visitor};
use serde::Deserialize;
use sha2::{Digest, Sha256};
use std::collections::{BTreeMap, HashMap, HashSet};
use std::io::Read;
use std::ops::Range;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use toml::de::{DeTable, DeValue, ValueDeserializer};
use toml::Spanned;

/// Policy files larger than this are refused (a policy is a few KiB; this bounds memory).
pub const MAX_FILE_SIZE: u64 = 1 << 20;

/// Compiled-program size limit for one argument regex.
const REGEX_SIZE_LIMIT: usize = 1 << 20;

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

fn whole_file(file: &Path, severity: Severity, message: String) -> Diagnostic {
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
fn check_mode(path: &Path, meta: &std::fs::Metadata, diags: &mut Vec<Diagnostic>) {
    let fix = format!(
        "fix: chown root:root {p} && chmod go-w {p}",
        p = path.display()
    );
    if meta.uid() != 0 {
        diags.push(whole_file(
            path,
            Severity::Error,
            format!(
                "owned by uid {}, but policy must be owned by root; {fix}",
                meta.uid()
            ),
        ));
    }
    if meta.mode() & 0o022 != 0 {
        diags.push(whole_file(
            path,
            Severity::Error,
            format!(
                "writable by group or others (mode {:04o}): anyone who can write policy is root; {fix}",
                meta.mode() & 0o7777
            ),
        ));
    }
}

fn check_dir(dir: &Path, opts: &LoadOptions, diags: &mut Vec<Diagnostic>) {
    match std::fs::metadata(dir) {
        Ok(m) if !m.is_dir() => diags.push(whole_file(
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
fn check_parent_dir(dir: &Path, opts: &LoadOptions, diags: &mut Vec<Diagnostic>) {
    if let Ok(m) = std::fs::metadata(dir) {
        if m.is_dir() && m.uid() == 0 && m.mode() & 0o1000 != 0 {
            return;
        }
    }
    check_dir(dir, opts, diags);
}

/// Read one policy file: a regular file (never through a symlink), at most [`MAX_FILE_SIZE`].
/// Opened once and checked through the open descriptor, so it cannot be swapped in between.
fn read_policy_file(
    path: &Path,
    opts: &LoadOptions,
    diags: &mut Vec<Diagnostic>,
) -> Option<Vec<u8>> {
    let mut err = |msg: String| diags.push(whole_file(path, Severity::Error, msg));
    let file = match std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK | libc::O_NOCTTY)
        .open(path)
    {
        Ok(f) => f,
        Err(e) if e.raw_os_error() == Some(libc::ELOOP) => {
            err("is a symlink; policy files must be regular files".to_string());
            return None;
        }
        Err(e) => {
            err(format!("cannot open: {e}"));
            return None;
        }
    };
    let meta = match file.metadata() {
        Ok(m) => m,
        Err(e) => {
            err(format!("cannot stat: {e}"));
            return None;
        }
    };
    if !meta.file_type().is_file() {
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
    if meta.len() > MAX_FILE_SIZE {
        diags.push(whole_file(path, Severity::Error, too_big()));
        return None;
    }
    let mut bytes = Vec::new();
    if let Err(e) = file.take(MAX_FILE_SIZE + 1).read_to_end(&mut bytes) {
        diags.push(whole_file(
            path,
            Severity::Error,
            format!("cannot read: {e}"),
        ));
        return None;
    }
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

/// Load every `*.toml` in `dir` in lexical order. A missing or empty dir is a valid, empty
/// policy (nothing is allowed) with a warning.
pub fn load_dir(dir: &Path, opts: &LoadOptions, sys: &dyn System) -> LoadOutcome {
    let mut diags = Vec::new();
    match std::fs::symlink_metadata(dir) {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            diags.push(whole_file(
                dir,
                Severity::Warning,
                "policy directory does not exist: no policy files: nothing is allowed".to_string(),
            ));
            return LoadOutcome {
                policy: Some(Policy::default().with_digest()),
                diagnostics: diags,
            };
        }
        _ => check_dir(dir, opts, &mut diags),
    }
    if !diags.is_empty() {
        return LoadOutcome {
            policy: None,
            diagnostics: diags,
        };
    }
    let mut names = Vec::new();
    match std::fs::read_dir(dir) {
        Ok(entries) => {
            for entry in entries {
                match entry {
                    Ok(e) if is_policy_name(&e.file_name()) => names.push(e.file_name()),
                    Ok(_) => {}
                    Err(e) => diags.push(whole_file(
                        dir,
                        Severity::Error,
                        format!("cannot list directory: {e}"),
                    )),
                }
            }
        }
        Err(e) => diags.push(whole_file(
            dir,
            Severity::Error,
            format!("cannot list directory: {e}"),
        )),
    }
    // Lexical byte order, independent of the locale.
    names.sort_by(|a, b| a.as_bytes().cmp(b.as_bytes()));
    let paths: Vec<PathBuf> = names.iter().map(|n| dir.join(n)).collect();
    load_paths(dir, &paths, opts, sys, diags)
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
                check_parent_dir(&parent, opts, &mut diags);
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
        if let Some(bytes) = read_policy_file(path, opts, &mut asm.diags) {
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

/// Builds one policy out of files added in load order; the cross-file rules (duplicate
/// names, one `[admin]`, `conflicts`) are checked as they come and in [`Assembler::finish`].
struct Assembler {
    diags: Vec<Diagnostic>,
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
    fn new(diags: Vec<Diagnostic>) -> Assembler {
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

    fn add(&mut self, path: &Path, bytes: &[u8], sys: &dyn System) {
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

    fn finish(mut self) -> LoadOutcome {
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
    fn with_digest(mut self) -> Self {
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

fn sort_diags(diags: &mut [Diagnostic]) {
    diags.sort_by_key(|d| (d.location.line, d.location.col));
}

/// Report profiles whose name was already used (here or in an earlier file), and drop them.
fn dedupe(
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

/// Parse and validate one file's text (no permission checks, no cross-file checks; duplicate
/// names within the file are reported).
pub fn parse_str(file: &Path, text: &str, sys: &dyn System) -> (Vec<Profile>, Vec<Diagnostic>) {
    let mut parts = parse_file(file, text, sys);
    dedupe(&mut parts.profiles, &mut HashMap::new(), &mut parts.diags);
    sort_diags(&mut parts.diags);
    (parts.profiles, parts.diags)
}

/// 1-based line and column (in characters) of a byte offset.
pub fn line_col(text: &str, offset: usize) -> (usize, usize) {
    let mut offset = offset.min(text.len());
    while !text.is_char_boundary(offset) {
        offset -= 1;
    }
    let before = text.get(..offset).unwrap_or(text);
    let line = before.matches('\n').count() + 1;
    let col = before.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
    (line, col)
}

// ---------------------------------------------------------------------------------------------
// The raw shape of a file, as serde sees it. Every key not listed is an error.

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawProfile {
    name: Option<Spanned<String>>,
    description: Option<String>,
    hosts: Option<Spanned<Vec<Spanned<String>>>>,
    host_labels: Option<BTreeMap<String, String>>,
    users: Option<Vec<Spanned<String>>>,
    groups: Option<Vec<Spanned<String>>>,
    run_as: Option<Spanned<String>>,
    run_as_group: Option<Spanned<String>>,
    access: Option<Spanned<String>>,
    env_keep: Option<Vec<Spanned<String>>>,
    command: Option<Vec<Spanned<RawCommand>>>,
    default_duration: Option<Spanned<RawDuration>>,
    max_duration: Option<Spanned<RawDuration>>,
    require_reason: Option<Spanned<bool>>,
    ticket: Option<Spanned<String>>,
    approval: Option<Spanned<RawApproval>>,
    grant_groups: Option<Vec<Spanned<String>>>,
    conflicts: Option<Vec<Spanned<String>>>,
    on_expiry: Option<Spanned<String>>,
    break_glass: Option<Spanned<bool>>,
    login: Option<Vec<Spanned<String>>>,
    authenticate: Option<Spanned<bool>>,
    auth_cache: Option<Spanned<RawDuration>>,
}

/// A duration as written: must be a string (`"90m"`); anything else is a type error that
/// says which forms are accepted.
struct RawDuration(String);

impl<'de> Deserialize<'de> for RawDuration {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl Visitor<'_> for V {
            type Value = RawDuration;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str(
                    "a duration string such as \"90s\", \"15m\", \"1h30m\", \"2h\" or \"1d\"",
                )
            }
            fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<RawDuration, E> {
                Ok(RawDuration(v.to_string()))
            }
        }
        d.deserialize_any(V)
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawApproval {
    approvers: Vec<Spanned<String>>,
    count: Option<Spanned<i64>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawAdmin {
    users: Option<Vec<Spanned<String>>>,
    groups: Option<Vec<Spanned<String>>>,
    auditors: Option<Vec<Spanned<String>>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawLogin {
    services: Vec<Spanned<String>>,
    hosts: Option<Spanned<Vec<Spanned<String>>>>,
    host_labels: Option<BTreeMap<String, String>>,
    users: Option<Vec<Spanned<String>>>,
    groups: Option<Vec<Spanned<String>>>,
    access: Spanned<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawCommand {
    path: Option<Spanned<String>>,
    args: Option<Vec<Spanned<RawArg>>>,
    rest: Option<Spanned<String>>,
}

enum RawArg {
    Literal(String),
    Table(RawArgTable),
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawArgTable {
    regex: Option<Spanned<String>>,
    one_of: Option<Spanned<Vec<String>>>,
}

impl<'de> Deserialize<'de> for RawArg {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = RawArg;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str(
                    "an argument pattern: a string, { regex = \"...\" } or { one_of = [...] }",
                )
            }
            fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<RawArg, E> {
                Ok(RawArg::Literal(v.to_string()))
            }
            fn visit_string<E: serde::de::Error>(self, v: String) -> Result<RawArg, E> {
                Ok(RawArg::Literal(v))
            }
            fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<RawArg, A::Error> {
                RawArgTable::deserialize(serde::de::value::MapAccessDeserializer::new(map))
                    .map(RawArg::Table)
            }
        }
        d.deserialize_any(V)
    }
}

// ---------------------------------------------------------------------------------------------
// Validation.

struct Ctx<'a> {
    file: &'a Path,
    text: &'a str,
    sys: &'a dyn System,
    diags: Vec<Diagnostic>,
}

impl Ctx<'_> {
    fn loc(&self, span: &Range<usize>) -> Location {
        let (line, col) = line_col(self.text, span.start);
        Location {
            file: self.file.to_path_buf(),
            line,
            col,
        }
    }
    fn push(&mut self, severity: Severity, span: &Range<usize>, message: String) {
        let location = self.loc(span);
        self.diags.push(Diagnostic {
            severity,
            location,
            message,
        });
    }
    fn error(&mut self, span: &Range<usize>, message: String) {
        self.push(Severity::Error, span, message);
    }
    fn warn(&mut self, span: &Range<usize>, message: String) {
        self.push(Severity::Warning, span, message);
    }
    fn toml_error(&mut self, e: &toml::de::Error, fallback: &Range<usize>) {
        let span = e.span().unwrap_or_else(|| fallback.clone());
        self.error(&span, e.message().to_string());
    }
}

/// What one file contributes.
struct FileParts {
    profiles: Vec<Profile>,
    diags: Vec<Diagnostic>,
    admin: Option<Admin>,
    logins: Vec<LoginRule>,
    /// (profile, the profile it names in `conflicts`, where), checked across files.
    conflict_refs: Vec<(String, String, Location)>,
}

fn parse_file(file: &Path, text: &str, sys: &dyn System) -> FileParts {
    let mut ctx = Ctx {
        file,
        text,
        sys,
        diags: Vec::new(),
    };
    let mut profiles = Vec::new();
    let mut admin = None;
    let mut logins = Vec::new();
    let mut conflict_refs = Vec::new();
    let root = match DeTable::parse(text) {
        Ok(r) => r,
        Err(e) => {
            ctx.toml_error(&e, &(0..0));
            return FileParts {
                profiles,
                diags: ctx.diags,
                admin,
                logins,
                conflict_refs,
            };
        }
    };
    for (key, value) in root.get_ref().iter() {
        let key_name: &str = key.get_ref();
        if key_name == "admin" {
            match RawAdmin::deserialize(ValueDeserializer::from(value.clone())) {
                Ok(raw) => admin = Some(validate_admin(&mut ctx, raw, &key.span())),
                Err(e) => ctx.toml_error(&e, &value.span()),
            }
            continue;
        }
        if key_name == "login" {
            let DeValue::Array(items) = value.get_ref() else {
                ctx.error(
                    &value.span(),
                    "`login` must be an array of tables: write each as [[login]]".to_string(),
                );
                continue;
            };
            for item in items.iter() {
                match RawLogin::deserialize(ValueDeserializer::from(item.clone())) {
                    Ok(raw) => {
                        if let Some(l) = validate_login(&mut ctx, raw, &item.span()) {
                            logins.push(l);
                        }
                    }
                    Err(e) => ctx.toml_error(&e, &item.span()),
                }
            }
            continue;
        }
        if key_name != "profile" {
            ctx.error(
                &key.span(),
                format!(
                    "unknown top-level key `{key_name}`, expected `profile`, `admin` or `login`"
                ),
            );
            continue;
        }
        let DeValue::Array(items) = value.get_ref() else {
            ctx.error(
                &value.span(),
                "`profile` must be an array of tables: write each as [[profile]]".to_string(),
            );
            continue;
        };
        for item in items.iter() {
            let span = item.span();
            match RawProfile::deserialize(ValueDeserializer::from(item.clone())) {
                Ok(raw) => {
                    let refs: Vec<(String, Range<usize>)> = raw
                        .conflicts
                        .as_deref()
                        .unwrap_or_default()
                        .iter()
                        .map(|c| (c.get_ref().clone(), c.span()))
                        .collect();
                    if let Some(p) = validate_profile(&mut ctx, raw, &span) {
                        for (to, sp) in refs {
                            conflict_refs.push((p.name.clone(), to, ctx.loc(&sp)));
                        }
                        profiles.push(p);
                    }
                }
                Err(e) => ctx.toml_error(&e, &span),
            }
        }
    }
    for p in &profiles {
        ctx.diags.extend(crate::lint::lint(p, sys));
    }
    FileParts {
        profiles,
        diags: ctx.diags,
        admin,
        logins,
        conflict_refs,
    }
}

/// `[a-z0-9][a-z0-9._-]{0,63}`: safe in file names, messages, logs and command lines.
pub fn is_valid_profile_name(name: &str) -> bool {
    let b = name.as_bytes();
    !b.is_empty()
        && b.len() <= 64
        && b.first()
            .is_some_and(|c| c.is_ascii_lowercase() || c.is_ascii_digit())
        && b.iter().all(|&c| {
            c.is_ascii_lowercase() || c.is_ascii_digit() || c == b'.' || c == b'_' || c == b'-'
        })
}

/// Why `name` cannot be a user or group name, if it cannot.
fn bad_account_name(name: &str) -> Option<&'static str> {
    if name.is_empty() {
        Some("is empty")
    } else if name.contains(':') {
        Some("contains ':'")
    } else if name.contains(',') {
        Some("contains ','")
    } else if name.contains('/') {
        Some("contains '/'")
    } else if name.chars().any(char::is_whitespace) {
        Some("contains whitespace")
    } else if name.chars().any(char::is_control) {
        Some("contains a control character")
    } else if name.len() > 256 {
        Some("is longer than 256 bytes")
    } else {
        None
    }
}

/// Host patterns: host-name characters plus `*` and `?`.
fn bad_host_pattern(p: &str) -> bool {
    p.is_empty()
        || p.len() > 253
        || !p
            .bytes()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, b'.' | b'-' | b'_' | b'*' | b'?'))
}

/// Why `name` may never be passed through `env_keep`, if so.
pub fn env_keep_refusal(name: &str) -> Option<String> {
    let valid = name
        .bytes()
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == b'_')
        && name.bytes().all(|c| c.is_ascii_alphanumeric() || c == b'_');
    if !valid {
        return Some(format!(
            "\"{}\" is not a valid environment variable name ([A-Za-z_][A-Za-z0-9_]*)",
            name.escape_debug()
        ));
    }
    let upper = name.to_ascii_uppercase();
    let u = upper.as_str();
    const EXACT: &[(&str, &str)] = &[
        ("PATH", "commands always run with elevate's secure PATH"),
        ("HOME", "elevate sets it for the target user"),
        ("USER", "elevate sets it for the target user"),
        ("LOGNAME", "elevate sets it for the target user"),
        ("SHELL", "elevate sets it for the target user"),
        ("BASH_ENV", "it names a script that shells run at startup"),
        ("ENV", "it names a script that shells run at startup"),
        ("IFS", "it changes how shell scripts split words"),
        ("CDPATH", "it changes where shell scripts' cd goes"),
        ("SHELLOPTS", "it changes how shell scripts behave"),
        ("BASHOPTS", "it changes how shell scripts behave"),
        ("PS4", "bash expands it (running commands) when tracing"),
        ("GLOBIGNORE", "it changes how shell scripts expand globs"),
        (
            "PROMPT_COMMAND",
            "it runs a command before every shell prompt",
        ),
        ("PERL5LIB", "it makes Perl load code from a chosen place"),
        ("PERLLIB", "it makes Perl load code from a chosen place"),
        ("PERL5OPT", "it injects options (and code) into Perl"),
        ("PERL5DB", "it injects code into Perl"),
        ("RUBYLIB", "it makes Ruby load code from a chosen place"),
        ("RUBYOPT", "it injects options (and code) into Ruby"),
        ("NODE_OPTIONS", "it injects options (and code) into Node.js"),
        (
            "NODE_PATH",
            "it makes Node.js load code from a chosen place",
        ),
        ("LUA_PATH", "it makes Lua load code from a chosen place"),
        ("LUA_CPATH", "it makes Lua load code from a chosen place"),
        ("LUA_INIT", "it injects code into Lua"),
        ("TCLLIBPATH", "it makes Tcl load code from a chosen place"),
        ("PHPRC", "it makes PHP load a chosen configuration"),
        (
            "PHP_INI_SCAN_DIR",
            "it makes PHP load a chosen configuration",
        ),
        (
            "GCONV_PATH",
            "it makes the C library load code from a chosen place",
        ),
        (
            "LOCPATH",
            "it makes the C library load locale files from a chosen place",
        ),
        (
            "NLSPATH",
            "it makes the C library load message files from a chosen place",
        ),
        ("HOSTALIASES", "it redirects name resolution"),
        ("RESOLV_HOST_CONF", "it redirects name resolution"),
        ("RES_OPTIONS", "it changes name resolution"),
        ("LOCALDOMAIN", "it changes name resolution"),
        (
            "GLIBC_TUNABLES",
            "it changes glibc internals (exploited for root before)",
        ),
        (
            "TMPDIR",
            "it lets the caller choose where the command writes temporary files",
        ),
        (
            "JAVA_TOOL_OPTIONS",
            "it injects options (and code) into Java",
        ),
        ("_JAVA_OPTIONS", "it injects options (and code) into Java"),
        (
            "JDK_JAVA_OPTIONS",
            "it injects options (and code) into Java",
        ),
        (
            "OPENSSL_CONF",
            "it makes OpenSSL load a chosen configuration (and engines)",
        ),
        (
            "OPENSSL_ENGINES",
            "it makes OpenSSL load code from a chosen place",
        ),
        ("EDITOR", "commands start it as an editor: a shell escape"),
        ("VISUAL", "commands start it as an editor: a shell escape"),
        ("PAGER", "commands start it as a pager: a shell escape"),
        ("MANPAGER", "man starts it as a pager: a shell escape"),
        (
            "SYSTEMD_PAGER",
            "systemctl/journalctl start it as a pager: a shell escape",
        ),
        ("SYSTEMD_EDITOR", "systemctl edit starts it: a shell escape"),
        (
            "SYSTEMD_PAGERSECURE",
            "it turns off the pager's secure mode",
        ),
        (
            "SYSTEMD_LESS",
            "it passes options to less (e.g. enabling shell escapes)",
        ),
        ("LESSOPEN", "less runs it as an input preprocessor"),
        ("LESSCLOSE", "less runs it as an input postprocessor"),
        (
            "LESSKEY",
            "it loads less key bindings, which can run commands",
        ),
        ("LESSSECURE", "it turns off less's secure mode"),
    ];
    const PREFIX: &[(&str, &str)] = &[
        ("LD_", "it injects code into the command (dynamic loader)"),
        ("ELEVATE_", "it is reserved for elevate itself"),
        ("PYTHON", "it makes Python load code or change behaviour"),
        (
            "MALLOC_",
            "it changes glibc's allocator (exploited for root before)",
        ),
        (
            "GIT_",
            "it makes git run chosen commands or use chosen repositories",
        ),
        ("BASH_FUNC_", "it defines shell functions (Shellshock)"),
    ];
    let reason = EXACT
        .iter()
        .find(|(n, _)| *n == u)
        .or_else(|| PREFIX.iter().find(|(p, _)| u.starts_with(p)))
        .map(|(_, why)| *why)?;
    Some(format!("{name} can never be kept: {reason}"))
}

/// Why a policy command path is unusable, if it is.
fn bad_command_path(path: &str) -> Option<&'static str> {
    if path.contains('\0') {
        return Some("contains a NUL byte");
    }
    if !path.starts_with('/') {
        return Some("is not absolute (commands are matched by absolute path)");
    }
    if path.len() > 1 && path.ends_with('/') {
        return Some("ends with '/'");
    }
    if path == "/" {
        return Some("is the root directory");
    }
    if path.contains("//") {
        return Some("contains an empty component ('//')");
    }
    // Path::components() silently drops "." components, so look at the raw segments.
    for seg in path.split('/') {
        if seg == "." || seg == ".." {
            return Some("contains '.' or '..' components (write the real path)");
        }
    }
    None
}

/// The one line of a regex error that says what is wrong.
fn regex_error_summary(e: &regex::Error) -> String {
    let text = e.to_string();
    text.lines()
        .rev()
        .find_map(|l| l.trim().strip_prefix("error: "))
        .map(str::to_string)
        .unwrap_or_else(|| text.split_whitespace().collect::<Vec<_>>().join(" "))
}

/// Compile an argument regex so it must match the whole argument.
pub fn compile_arg_regex(source: &str) -> Result<regex::Regex, String> {
    let build = |s: &str| {
        regex::RegexBuilder::new(s)
            .size_limit(REGEX_SIZE_LIMIT)
            .dfa_size_limit(REGEX_SIZE_LIMIT)
            .build()
    };
    // Compile it alone first: a valid regex has balanced groups, so wrapping it cannot change
    // its structure (e.g. "a)|(b" would otherwise escape the anchors).
    build(source).map_err(|e| regex_error_summary(&e))?;
    build(&format!("^(?:{source})$")).map_err(|e| {
        format!(
            "cannot be anchored to the whole argument ({}); a trailing comment in (?x) mode?",
            regex_error_summary(&e)
        )
    })
}

/// The `users` and `groups` lists of a profile, `[admin]` or `[[login]]`, validated (unknown
/// names are warnings; invalid ones errors and dropped).
fn users_and_groups(
    ctx: &mut Ctx,
    users: Option<&[Spanned<String>]>,
    groups: Option<&[Spanned<String>]>,
) -> (Vec<String>, Vec<String>) {
    let sys = ctx.sys;
    let users = validate_names(ctx, "user", users.unwrap_or_default(), &|n| {
        sys.user_exists(n)
    })
    .unwrap_or_default();
    let groups = validate_names(ctx, "group", groups.unwrap_or_default(), &|n| {
        sys.group_exists(n)
    })
    .unwrap_or_default();
    (users, groups)
}

fn validate_names(
    ctx: &mut Ctx,
    what: &str,
    names: &[Spanned<String>],
    exists: &dyn Fn(&str) -> bool,
) -> Option<Vec<String>> {
    let mut ok = true;
    let mut out = Vec::new();
    for n in names {
        if let Some(why) = bad_account_name(n.get_ref()) {
            ctx.error(
                &n.span(),
                format!(
                    "invalid {what} name \"{}\": {why}",
                    n.get_ref().escape_debug()
                ),
            );
            ok = false;
        } else {
            if !exists(n.get_ref()) {
                ctx.warn(
                    &n.span(),
                    format!("unknown {what} \"{}\" on this host", n.get_ref()),
                );
            }
            out.push(n.get_ref().clone());
        }
    }
    ok.then_some(out)
}

fn validate_profile(ctx: &mut Ctx, raw: RawProfile, span: &Range<usize>) -> Option<Profile> {
    let errors_before = ctx
        .diags
        .iter()
        .filter(|d| d.severity == Severity::Error)
        .count();
    let sys = ctx.sys;

    let name = match &raw.name {
        None => {
            ctx.error(span, "profile has no `name`".to_string());
            String::new()
        }
        Some(n) => {
            if !is_valid_profile_name(n.get_ref()) {
                ctx.error(
                    &n.span(),
                    format!(
                        "invalid profile name \"{}\": use 1-64 of a-z 0-9 . _ - (starting with a letter or digit)",
                        n.get_ref().escape_debug()
                    ),
                );
            }
            n.get_ref().clone()
        }
    };
    let name_span = raw.name.as_ref().map_or(span.clone(), |n| n.span());

    let hosts = validate_hosts(ctx, raw.hosts.as_ref());

    let (users, groups) = users_and_groups(ctx, raw.users.as_deref(), raw.groups.as_deref());
    if raw.users.as_ref().map_or(0, Vec::len) == 0 && raw.groups.as_ref().map_or(0, Vec::len) == 0 {
        ctx.error(
            &name_span,
            format!("profile \"{name}\" has no `users` and no `groups`: nobody could use it"),
        );
    }

    let run_as = match &raw.run_as {
        None => "root".to_string(),
        Some(r) => {
            if let Some(why) = bad_account_name(r.get_ref()) {
                ctx.error(
                    &r.span(),
                    format!(
                        "invalid run_as user \"{}\": {why}",
                        r.get_ref().escape_debug()
                    ),
                );
            } else if !sys.user_exists(r.get_ref()) {
                ctx.warn(
                    &r.span(),
                    format!(
                        "run_as user \"{}\" does not exist on this host; commands will fail",
                        r.get_ref()
                    ),
                );
            }
            r.get_ref().clone()
        }
    };
    let run_as_group = raw.run_as_group.as_ref().map(|g| {
        if let Some(why) = bad_account_name(g.get_ref()) {
            ctx.error(
                &g.span(),
                format!(
                    "invalid run_as_group \"{}\": {why}",
                    g.get_ref().escape_debug()
                ),
            );
        } else if !sys.group_exists(g.get_ref()) {
            ctx.warn(
                &g.span(),
                format!(
                    "run_as_group \"{}\" does not exist on this host; commands will fail",
                    g.get_ref()
                ),
            );
        }
        g.get_ref().clone()
    });

    let access = match &raw.access {
        None => Access::Standing,
        Some(a) => match a.get_ref().as_str() {
            "standing" => Access::Standing,
            "lease" => Access::Lease,
            other => {
                ctx.error(
                    &a.span(),
                    format!(
                        "invalid access \"{}\": expected \"standing\" or \"lease\"",
                        other.escape_debug()
                    ),
                );
                Access::Standing
            }
        },
    };

    let mut env_keep = Vec::new();
    for e in raw.env_keep.as_deref().unwrap_or_default() {
        match env_keep_refusal(e.get_ref()) {
            Some(why) => ctx.error(&e.span(), why),
            None => env_keep.push(e.get_ref().clone()),
        }
    }

    let mut commands = Vec::new();
    for c in raw.command.as_deref().unwrap_or_default() {
        if let Some(rule) = validate_command(ctx, c.get_ref(), &c.span()) {
            commands.push(rule);
        }
    }
    if commands.is_empty()
        && access == Access::Standing
        && raw.command.as_ref().map_or(0, Vec::len) == 0
    {
        ctx.warn(
            &name_span,
            format!("standing profile \"{name}\" has no commands: it grants nothing"),
        );
    }

    let lease = validate_lease_keys(ctx, &raw, access);
    let authenticate = raw.authenticate.as_ref().is_some_and(|b| *b.get_ref());
    let auth_cache = validate_auth_cache(ctx, &raw, authenticate);
    let max_span = raw.max_duration.as_ref().map(|x| x.span());
    let expiry_span = raw.on_expiry.as_ref().map(|x| x.span());

    let errors_after = ctx
        .diags
        .iter()
        .filter(|d| d.severity == Severity::Error)
        .count();
    if errors_after != errors_before {
        return None;
    }
    let profile = Profile {
        name,
        description: raw.description.unwrap_or_default(),
        hosts,
        host_labels: raw.host_labels.unwrap_or_default(),
        users,
        groups,
        run_as,
        run_as_group,
        access,
        env_keep,
        commands,
        location: ctx.loc(&name_span),
        default_duration: lease.default_duration,
        max_duration: lease.max_duration,
        require_reason: lease.require_reason,
        ticket: lease.ticket,
        approval: lease.approval,
        grant_groups: lease.grant_groups,
        conflicts: lease.conflicts,
        on_expiry: lease.on_expiry,
        break_glass: lease.break_glass,
        login: lease.login,
        authenticate,
        auth_cache,
    };
    for (key, message) in crate::lint::lease_findings(&profile) {
        let span = match key {
            LeaseKey::Name => None,
            LeaseKey::MaxDuration => max_span.clone(),
            LeaseKey::OnExpiry => expiry_span.clone(),
        };
        ctx.warn(&span.unwrap_or_else(|| name_span.clone()), message);
    }
    Some(profile)
}

/// Longest `auth_cache` accepted: a remembered authentication is standing privilege on that
/// terminal, so it is kept short (sudo's default is 15 minutes).
const MAX_AUTH_CACHE: std::time::Duration = std::time::Duration::from_secs(3600);

fn validate_auth_cache(
    ctx: &mut Ctx,
    raw: &RawProfile,
    authenticate: bool,
) -> Option<std::time::Duration> {
    let v = raw.auth_cache.as_ref()?;
    if !authenticate {
        ctx.error(
            &v.span(),
            "`auth_cache` without `authenticate = true` has no effect: add authenticate = true or remove it".to_string(),
        );
        return None;
    }
    match elevate_base::duration::parse_duration(&v.get_ref().0) {
        Ok(d) if d > MAX_AUTH_CACHE => {
            ctx.error(
                &v.span(),
                format!(
                    "auth_cache \"{}\" is longer than the 1h allowed",
                    v.get_ref().0
                ),
            );
            None
        }
        Ok(d) => Some(d),
        Err(e) => {
            ctx.error(&v.span(), format!("auth_cache: {e}"));
            None
        }
    }
}

/// The lease keys of one profile, validated.
#[derive(Default)]
struct LeaseKeys {
    default_duration: Option<std::time::Duration>,
    max_duration: Option<std::time::Duration>,
    require_reason: bool,
    ticket: Option<TicketPattern>,
    approval: Option<Approval>,
    grant_groups: Vec<String>,
    conflicts: Vec<String>,
    on_expiry: OnExpiry,
    break_glass: bool,
    login: Vec<String>,
}

/// A PAM service name, `[a-z0-9._-]+` (at most 64), and not `.` or `..` (it names a file in
/// /etc/pam.d).
fn is_service_name(s: &str) -> bool {
    !s.is_empty()
        && s != "."
        && s != ".."
        && s.len() <= 64
        && s.bytes().all(|b| {
            b.is_ascii_lowercase() || b.is_ascii_digit() || matches!(b, b'.' | b'_' | b'-')
        })
}

fn validate_lease_keys(ctx: &mut Ctx, raw: &RawProfile, access: Access) -> LeaseKeys {
    let mut k = LeaseKeys::default();
    if access != Access::Lease {
        let first = |v: &Option<Vec<Spanned<String>>>| v.as_ref()?.first().map(|x| x.span());
        let lease_only: [(&str, Option<Range<usize>>); 10] = [
            (
                "default_duration",
                raw.default_duration.as_ref().map(|x| x.span()),
            ),
            ("max_duration", raw.max_duration.as_ref().map(|x| x.span())),
            (
                "require_reason",
                raw.require_reason.as_ref().map(|x| x.span()),
            ),
            ("ticket", raw.ticket.as_ref().map(|x| x.span())),
            ("approval", raw.approval.as_ref().map(|x| x.span())),
            ("grant_groups", first(&raw.grant_groups)),
            ("conflicts", first(&raw.conflicts)),
            ("on_expiry", raw.on_expiry.as_ref().map(|x| x.span())),
            ("break_glass", raw.break_glass.as_ref().map(|x| x.span())),
            ("login", first(&raw.login)),
        ];
        for (key, span) in lease_only {
            if let Some(sp) = span {
                ctx.error(
                    &sp,
                    format!(
                        "only lease profiles take `{key}` (this one is standing): add access = \"lease\" or remove `{key}`"
                    ),
                );
            }
        }
        return k;
    }
    let dur = |ctx: &mut Ctx, v: &Option<Spanned<RawDuration>>| -> Option<std::time::Duration> {
        let v = v.as_ref()?;
        match elevate_base::duration::parse_duration(&v.get_ref().0) {
            Ok(d) => Some(d),
            Err(e) => {
                ctx.error(&v.span(), e.to_string());
                None
            }
        }
    };
    k.default_duration = dur(ctx, &raw.default_duration);
    k.max_duration = dur(ctx, &raw.max_duration);
    if let (Some(d), Some(m), Some(sp)) = (
        k.default_duration,
        k.max_duration,
        raw.default_duration.as_ref(),
    ) {
        if d > m {
            ctx.error(
                &sp.span(),
                format!(
                    "default_duration {} is longer than max_duration {}",
                    elevate_base::duration::format_duration(d),
                    elevate_base::duration::format_duration(m)
                ),
            );
        }
    }
    k.require_reason = raw.require_reason.as_ref().is_some_and(|b| *b.get_ref());
    k.break_glass = raw.break_glass.as_ref().is_some_and(|b| *b.get_ref());
    if let Some(t) = raw
        .ticket
        .as_ref()
        .filter(|t| t.get_ref().trim().is_empty())
    {
        ctx.error(
            &t.span(),
            "an empty ticket pattern matches no ticket (tickets are never empty): remove `ticket` or write a pattern such as \"^(INC|CHG)-[0-9]+$\"".to_string(),
        );
    } else if let Some(t) = &raw.ticket {
        match compile_arg_regex(t.get_ref()) {
            Ok(regex) => {
                k.ticket = Some(TicketPattern {
                    source: t.get_ref().clone(),
                    regex,
                })
            }
            Err(e) => ctx.error(&t.span(), format!("invalid ticket pattern: {e}")),
        }
    }
    if let Some(a) = &raw.approval {
        let ra = a.get_ref();
        let mut approvers = Vec::new();
        for ap in &ra.approvers {
            if let Some(x) = validate_approver(ctx, "approver", ap) {
                approvers.push(x);
            }
        }
        if ra.approvers.is_empty() {
            ctx.error(&a.span(), "approval lists no approvers".to_string());
        }
        let count = ra.count.as_ref().map_or(1, |c| *c.get_ref());
        let cspan = ra.count.as_ref().map_or(a.span(), |c| c.span());
        let users_only = approvers.iter().all(|x| matches!(x, Approver::User(_)));
        // Each approver counts once, however often listed.
        let mut distinct: Vec<&Approver> = Vec::new();
        for x in &approvers {
            if !distinct.contains(&x) {
                distinct.push(x);
            }
        }
        if !(1..=100).contains(&count) {
            ctx.error(
                &cspan,
                format!("approval count must be between 1 and 100, not {count}"),
            );
        } else if users_only && !distinct.is_empty() && count as usize > distinct.len() {
            ctx.error(
                &cspan,
                format!(
                    "approval count {count} is more than the {} distinct approver(s) listed: no request could ever be approved",
                    distinct.len()
                ),
            );
        } else if users_only && count as usize == distinct.len() {
            // The requester never approves their own request.
            let eligible = raw.users.as_deref().unwrap_or_default();
            if let Some(Approver::User(u)) = distinct.iter().find(
                |a| matches!(a, Approver::User(u) if eligible.iter().any(|e| e.get_ref() == u)),
            ) {
                ctx.warn(
                    &cspan,
                    format!(
                        "approver \"{u}\" may also request this profile, but never approves their own request: their requests need {count} other approver(s) and only {} are listed",
                        count - 1
                    ),
                );
            }
        }
        if k.break_glass {
            ctx.error(
                &a.span(),
                "a break-glass profile never waits for approval: remove `approval`".to_string(),
            );
        }
        k.approval = Some(Approval {
            approvers,
            count: count.clamp(1, 100) as u32,
        });
    }
    let sys = ctx.sys;
    if let Some(g) = &raw.grant_groups {
        k.grant_groups =
            validate_names(ctx, "group", g, &|n| sys.group_exists(n)).unwrap_or_default();
    }
    for c in raw.conflicts.as_deref().unwrap_or_default() {
        if !is_valid_profile_name(c.get_ref()) {
            ctx.error(
                &c.span(),
                format!(
                    "invalid profile name \"{}\" in conflicts",
                    c.get_ref().escape_debug()
                ),
            );
        } else {
            k.conflicts.push(c.get_ref().clone());
        }
    }
    if let Some(o) = &raw.on_expiry {
        match o.get_ref().as_str() {
            "terminate" => k.on_expiry = OnExpiry::Terminate,
            "keep" => k.on_expiry = OnExpiry::Keep,
            other => ctx.error(
                &o.span(),
                format!(
                    "invalid on_expiry \"{}\": expected \"terminate\" or \"keep\"",
                    other.escape_debug()
                ),
            ),
        }
    }
    for l in raw.login.as_deref().unwrap_or_default() {
        if is_service_name(l.get_ref()) {
            k.login.push(l.get_ref().clone());
        } else {
            ctx.error(
                &l.span(),
                format!(
                    "invalid PAM service name \"{}\": use 1-64 of a-z 0-9 . _ - (not \".\" or \"..\")",
                    l.get_ref().escape_debug()
                ),
            );
        }
    }
    k
}

/// `NAME` (a user) or `group:NAME`: an error if the name is invalid, a warning if it is
/// unknown on this host.
fn validate_approver(ctx: &mut Ctx, what: &str, raw: &Spanned<String>) -> Option<Approver> {
    let text = raw.get_ref();
    let (kind, name) = match text.strip_prefix("group:") {
        Some(g) => ("group", g),
        None => ("user", text.as_str()),
    };
    if let Some(why) = bad_account_name(name) {
        ctx.error(
            &raw.span(),
            format!(
                "invalid {what} \"{}\": {why} (write a user name or group:NAME)",
                text.escape_debug()
            ),
        );
        return None;
    }
    let approver = Approver::parse(text);
    let known = match &approver {
        Approver::User(u) => ctx.sys.user_exists(u),
        Approver::Group(g) => ctx.sys.group_exists(g),
    };
    if !known {
        ctx.warn(
            &raw.span(),
            format!("{what}: unknown {kind} \"{name}\" on this host"),
        );
    }
    Some(approver)
}

fn validate_admin(ctx: &mut Ctx, raw: RawAdmin, span: &Range<usize>) -> Admin {
    let (users, groups) = users_and_groups(ctx, raw.users.as_deref(), raw.groups.as_deref());
    let mut auditors = Vec::new();
    for a in raw.auditors.as_deref().unwrap_or_default() {
        if let Some(x) = validate_approver(ctx, "auditor", a) {
            auditors.push(x);
        }
    }
    let listed = |v: &Option<Vec<Spanned<String>>>| v.as_ref().is_some_and(|v| !v.is_empty());
    let (has_admins, has_auditors) = (
        listed(&raw.users) || listed(&raw.groups),
        listed(&raw.auditors),
    );
    if !has_admins {
        ctx.warn(
            span,
            if has_auditors {
                "[admin] names no users or groups: nobody can revoke others' leases"
            } else {
                "[admin] is empty: nobody can list or revoke others' leases"
            }
            .to_string(),
        );
    }
    Admin {
        users,
        groups,
        auditors,
        location: Some(ctx.loc(span)),
    }
}

/// `hosts`: globs on the host name, lower-cased; `None` means every host.
fn validate_hosts(
    ctx: &mut Ctx,
    raw: Option<&Spanned<Vec<Spanned<String>>>>,
) -> Option<Vec<String>> {
    match raw {
        None => None,
        Some(h) if h.get_ref().is_empty() => {
            ctx.error(
                &h.span(),
                "`hosts = []` matches no host; remove the key to mean every host".to_string(),
            );
            None
        }
        Some(h) => {
            let mut v = Vec::new();
            for p in h.get_ref() {
                if bad_host_pattern(p.get_ref()) {
                    ctx.error(
                        &p.span(),
                        format!(
                            "invalid host pattern \"{}\": use host-name characters, '*' and '?'",
                            p.get_ref().escape_debug()
                        ),
                    );
                }
                v.push(p.get_ref().to_ascii_lowercase());
            }
            Some(v)
        }
    }
}

fn validate_login(ctx: &mut Ctx, raw: RawLogin, span: &Range<usize>) -> Option<LoginRule> {
    // A bad host pattern is an error of its own: the whole policy is rejected anyway.
    let hosts = validate_hosts(ctx, raw.hosts.as_ref());
    let mut ok = true;
    let mut services = Vec::new();
    for s in &raw.services {
        if is_service_name(s.get_ref()) {
            services.push(s.get_ref().clone());
        } else {
            ctx.error(
                &s.span(),
                format!(
                    "invalid PAM service name \"{}\": use 1-64 of a-z 0-9 . _ - (not \".\" or \"..\")",
                    s.get_ref().escape_debug()
                ),
            );
            ok = false;
        }
    }
    if raw.services.is_empty() {
        ctx.error(span, "[[login]] lists no services".to_string());
        ok = false;
    }
    let sys = ctx.sys;
    let users = validate_names(
        ctx,
        "user",
        raw.users.as_deref().unwrap_or_default(),
        &|n| sys.user_exists(n),
    );
    let groups = validate_names(
        ctx,
        "group",
        raw.groups.as_deref().unwrap_or_default(),
        &|n| sys.group_exists(n),
    );
    let access = match raw.access.get_ref().as_str() {
        "standing" => LoginAccess::Standing,
        "lease" => LoginAccess::Lease,
        "deny" => LoginAccess::Deny,
        other => {
            ctx.error(
                &raw.access.span(),
                format!(
                    "invalid login access \"{}\": expected \"standing\", \"lease\" or \"deny\"",
                    other.escape_debug()
                ),
            );
            ok = false;
            LoginAccess::Deny
        }
    };
    let (users, groups) = (users?, groups?);
    if users.is_empty() && groups.is_empty() {
        ctx.error(
            span,
            "[[login]] gates nobody: list users or groups".to_string(),
        );
        ok = false;
    }
    ok.then(|| LoginRule {
        services,
        users,
        groups,
        access,
        hosts,
        host_labels: raw.host_labels.unwrap_or_default(),
        location: ctx.loc(span),
    })
}

fn validate_command(ctx: &mut Ctx, raw: &RawCommand, span: &Range<usize>) -> Option<CommandRule> {
    let mut ok = true;
    let Some(path) = &raw.path else {
        ctx.error(span, "command has no `path`".to_string());
        return None;
    };
    let path_span = path.span();
    if let Some(why) = bad_command_path(path.get_ref()) {
        ctx.error(
            &path_span,
            format!("command path \"{}\" {why}", path.get_ref().escape_debug()),
        );
        ok = false;
    }

    let mut args = Vec::new();
    for a in raw.args.as_deref().unwrap_or_default() {
        match a.get_ref() {
            RawArg::Literal(s) => args.push(ArgPattern::Literal(s.clone())),
            RawArg::Table(t) => match (&t.regex, &t.one_of) {
                (Some(r), None) => match compile_arg_regex(r.get_ref()) {
                    Ok(re) => args.push(ArgPattern::Regex {
                        source: r.get_ref().clone(),
                        re,
                    }),
                    Err(e) => {
                        ctx.error(&r.span(), format!("invalid regex: {e}"));
                        ok = false;
                    }
                },
                (None, Some(v)) if v.get_ref().is_empty() => {
                    ctx.error(
                        &v.span(),
                        "`one_of = []` matches nothing; list at least one value".to_string(),
                    );
                    ok = false;
                }
                (None, Some(v)) => args.push(ArgPattern::OneOf(v.get_ref().clone())),
                _ => {
                    ctx.error(
                        &a.span(),
                        "an argument pattern table needs exactly one of `regex` or `one_of`"
                            .to_string(),
                    );
                    ok = false;
                }
            },
        }
    }

    let rest = match &raw.rest {
        None => Rest::Deny,
        Some(r) => match r.get_ref().as_str() {
            "deny" => Rest::Deny,
            "any" => Rest::Any,
            other => {
                ctx.error(
                    &r.span(),
                    format!(
                        "invalid rest \"{}\": expected \"deny\" or \"any\"",
                        other.escape_debug()
                    ),
                );
                ok = false;
                Rest::Deny
            }
        },
    };
    if !ok {
        return None;
    }

    let written = PathBuf::from(path.get_ref());
    let canonical = match ctx.sys.canonicalize(&written) {
        Some(c) => {
            if !ctx.sys.is_executable(&c) {
                ctx.warn(
                    &path_span,
                    format!(
                        "{} is not an executable file on this host",
                        written.display()
                    ),
                );
            }
            c
        }
        None => {
            ctx.warn(
                &path_span,
                format!(
                    "{} does not exist on this host; the rule matches only that exact path",
                    written.display()
                ),
            );
            written.clone()
        }
    };
    Some(CommandRule {
        path: written,
        canonical,
        args,
        rest,
        location: ctx.loc(&path_span),
    })
}
