//! elevate's policy: TOML drop-in files → a validated [`Policy`] → [`Verdict`]s.
//!
//! The machine is reached through the [`System`] trait only: users and groups (NSS, via
//! `elevate_base::os::nss`), command paths, and the policy files and directories themselves
//! (owner, mode, bytes). Its default file methods and `gethostname` are in [`system::os`], the
//! crate's only `unsafe`; tests substitute a [`FakeSystem`]. The one exception is
//! [`config::Config::load`], which reads the daemon's own configuration file directly.
//!
//! Modules, lowest first (each imports only from those above it):
//!
//! * [`model`]: the validated policy types (profiles, commands, leases, locations);
//! * [`diag`]: diagnostics (`file:line:col: severity: message`);
//! * [`env`]: which of the caller's environment variables may reach a command (inert,
//!   refused, or only when acknowledged), for the loader and the daemon alike;
//! * [`system`]: the [`System`] trait, [`RealSystem`], [`FakeSystem`] and the OS layer;
//! * [`lease`], [`matcher`], [`login`]: the questions asked of a policy (lease defaults,
//!   admins, matching a request, which `[[login]]` rule applies);
//! * [`lint`]: warnings for valid but dangerous rules;
//! * [`load`]: files → [`Policy`], one module per stage;
//! * [`resolve`]: a typed command name → the canonical path it is matched by;
//! * [`setgid`]: the set-gid sweep's places (`setgid_scan`) and which are not `nosuid`;
//! * [`config`]: the daemon's configuration file, which the CLI reads the same way.

pub mod config;
pub mod diag;
pub mod env;
pub mod lease;
pub mod lint;
pub mod load;
pub mod login;
pub mod matcher;
pub mod model;
pub mod resolve;
pub mod setgid;
pub mod system;

#[cfg(test)]
mod env_tests;
#[cfg(test)]
mod lease_tests;
#[cfg(test)]
mod lint_tests;
#[cfg(test)]
mod tests;

pub use diag::{Diagnostic, Severity};
pub use load::{load_dir, load_files, parse_str, LoadOptions, LoadOutcome};
pub use matcher::{Denied, DenyReason, Mismatch, Query, Verdict};
pub use model::*;
pub use resolve::{resolve_command, ResolveError, ResolveReason};
pub use system::{FakeSystem, Passwd, RealSystem, System};
