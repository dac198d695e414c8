//! elevate's policy: TOML drop-in files → a validated [`Policy`] → [`Verdict`]s.
//!
//! Nothing here touches the system except through [`System`], so every rule can be tested
//! with a fake directory of users, groups and paths ([`FakeSystem`]).

pub mod config;
pub mod diag;
pub mod lease;
pub mod lint;
pub mod load;
pub mod login;
pub mod matcher;
pub mod model;
pub mod resolve;
pub mod system;

#[cfg(test)]
mod lease_tests;
#[cfg(test)]
mod tests;

pub use diag::{Diagnostic, Severity};
pub use load::{load_dir, load_files, parse_str, LoadOptions, LoadOutcome};
pub use matcher::{Denied, DenyReason, Mismatch, Query, Verdict};
pub use model::*;
pub use resolve::{resolve_command, ResolveError, ResolveReason};
pub use system::{FakeSystem, Passwd, RealSystem, System};
