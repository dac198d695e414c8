//! The validated policy, as the daemon and CLI use it. Built only by the loader, so every
//! value here has passed validation.

use crate::lease::{Admin, Approval, LoginRule, OnExpiry, TicketPattern};
use regex::Regex;
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

/// Where something was written, for `file:line:col` messages.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Location {
    pub file: PathBuf,
    pub line: usize,
    pub col: usize,
}

impl std::fmt::Display for Location {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}:{}:{}", self.file.display(), self.line, self.col)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    /// Usable any time by eligible users.
    Standing,
    /// Usable only while the caller holds an active lease on the profile.
    Lease,
}

impl Access {
    pub fn as_str(self) -> &'static str {
        match self {
            Access::Standing => "standing",
            Access::Lease => "lease",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Rest {
    /// Exactly the listed arguments (the default).
    Deny,
    /// Further arguments after the listed ones are allowed.
    Any,
}

#[derive(Debug, Clone)]
pub enum ArgPattern {
    Literal(String),
    /// Compiled anchored (`^(?:src)$`) so it must match the whole argument.
    Regex {
        source: String,
        re: Regex,
    },
    OneOf(Vec<String>),
}

impl ArgPattern {
    pub fn matches(&self, arg: &str) -> bool {
        match self {
            ArgPattern::Literal(s) => s == arg,
            ArgPattern::Regex { re, .. } => re.is_match(arg),
            ArgPattern::OneOf(v) => v.iter().any(|s| s == arg),
        }
    }
}

impl std::fmt::Display for ArgPattern {
    /// How `elevate list` and `explain` show a pattern.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ArgPattern::Literal(s) => write!(f, "{}", quote_if_needed(s)),
            ArgPattern::Regex { source, .. } => {
                let shown: String = source
                    .chars()
                    .flat_map(|c| {
                        let esc: Vec<char> = if c.is_control() {
                            c.escape_default().collect()
                        } else {
                            vec![c]
                        };
                        esc
                    })
                    .collect();
                write!(f, "/{shown}/")
            }
            ArgPattern::OneOf(v) => {
                let alts: Vec<String> = v.iter().map(|s| quote_if_needed(s)).collect();
                write!(f, "{{{}}}", alts.join("|"))
            }
        }
    }
}

/// Literals are shown bare unless that would be ambiguous or unsafe on a terminal (empty,
/// whitespace, quotes, control characters, pattern syntax): then quoted and escaped.
fn quote_if_needed(s: &str) -> String {
    let special = |c: char| {
        c.is_whitespace() || c.is_control() || matches!(c, '"' | '\\' | '\'' | '{' | '}' | '|')
    };
    let looks_like_regex = s.len() > 1 && s.starts_with('/') && s.ends_with('/');
    if s.is_empty() || s.chars().any(special) || looks_like_regex {
        format!("\"{}\"", s.escape_debug())
    } else {
        s.to_string()
    }
}

#[derive(Debug, Clone)]
pub struct CommandRule {
    /// The absolute path as written in the policy.
    pub path: PathBuf,
    /// The path with symlinks resolved on this host at load time (`System::canonicalize`);
    /// equal to `path` when it does not exist here. Requests match against this.
    pub canonical: PathBuf,
    pub args: Vec<ArgPattern>,
    pub rest: Rest,
    pub location: Location,
}

#[derive(Debug, Clone)]
pub struct Profile {
    pub name: String,
    pub description: String,
    /// Host-name globs (`*`, `?`); `None` = every host.
    pub hosts: Option<Vec<String>>,
    /// All must equal the daemon's labels.
    pub host_labels: BTreeMap<String, String>,
    pub users: Vec<String>,
    pub groups: Vec<String>,
    pub run_as: String,
    pub run_as_group: Option<String>,
    pub access: Access,
    pub env_keep: Vec<String>,
    pub commands: Vec<CommandRule>,
    /// Where the profile's `name` is written (its `[[profile]]` table when it has none).
    pub location: Location,
    // --- lease settings (only on `access = "lease"` profiles)
    pub default_duration: Option<Duration>,
    pub max_duration: Option<Duration>,
    pub require_reason: bool,
    pub ticket: Option<TicketPattern>,
    /// `None`: approved automatically.
    pub approval: Option<Approval>,
    /// Unix groups the holder is a member of while a lease is active.
    pub grant_groups: Vec<String>,
    /// Separation of duties: lease profiles that may not be held at the same time as this
    /// one. Symmetric in effect: A naming B also keeps B's holders from taking A, so only one
    /// side need list it; ask [`Policy::conflicts_between`], never this list alone. Every name
    /// is a lease profile of the loaded policy (checked across files).
    pub conflicts: Vec<String>,
    pub on_expiry: OnExpiry,
    pub break_glass: bool,
    /// PAM services an active lease opens (`[a-z0-9._-]+`, not `.`/`..`); see
    /// [`Policy::login_rule`].
    pub login: Vec<String>,
    /// Step-up: the requester authenticates (PAM service `elevate`) before a `run` of this
    /// profile or a `request` for it is granted.
    pub authenticate: bool,
    /// How long a successful step-up is remembered (per uid, terminal and session; boot
    /// clock). `None`: ask every time.
    pub auth_cache: Option<Duration>,
}

/// One file that was loaded, for `elevate status`.
#[derive(Debug, Clone)]
pub struct LoadedFile {
    pub path: PathBuf,
    pub sha256: String,
}

/// A whole, valid policy. Profiles are in load order (files in lexical order, then order in file).
#[derive(Debug, Clone, Default)]
pub struct Policy {
    pub profiles: Vec<Profile>,
    pub files: Vec<LoadedFile>,
    /// SHA-256 over every loaded file's name and bytes, hex.
    pub digest: String,
    /// `[admin]` (from the one file that has it); empty when no file has one.
    pub admin: Admin,
    /// `[[login]]` rules in load order; `Policy::login_rule` picks the one that applies.
    pub logins: Vec<LoginRule>,
}

/// The host a decision is made for.
#[derive(Debug, Clone, Default)]
pub struct HostInfo {
    pub name: String,
    pub labels: BTreeMap<String, String>,
}

/// Who is asking, as established by the daemon from the kernel (never from the request).
#[derive(Debug, Clone)]
pub struct Subject {
    pub uid: u32,
    pub user: String,
    /// Names of every group the user is a member of (primary and supplementary).
    pub groups: Vec<String>,
}
