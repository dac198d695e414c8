//! The validated policy, as the daemon and CLI use it. Built only by the loader, so every
//! value here has passed validation. The bottom of the crate: these modules import nothing
//! from the rest of it.
//!
//! * this file: [`Policy`], [`Profile`], [`Access`], [`LoadedFile`];
//! * [`location`]: where something was written ([`Location`]);
//! * [`identity`]: who asks and where ([`Subject`], [`HostInfo`]);
//! * [`command`]: command rules and argument patterns;
//! * [`lease`]: the just-in-time settings (approval, tickets, expiry, `[admin]`, `[[login]]`).

pub mod command;
pub mod identity;
pub mod lease;
pub mod location;

pub use command::{ArgPattern, CommandRule, Rest};
pub use identity::{HostInfo, Subject};
pub use lease::{Admin, Approval, Approver, LoginAccess, LoginRule, OnExpiry, TicketPattern};
pub use location::Location;

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

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
    /// The caller's variables passed to commands, by exact name: `env_keep`'s inert ones
    /// (values checked when run) and those acknowledged in `env_keep_unsafe`.
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
