//! elevate's policy: TOML drop-in files → a validated [`Policy`] → [`Verdict`]s.
//!
//! Nothing here touches the system except through [`System`], so every rule can be tested
//! with a fake directory of users, groups and paths.

pub mod config;
pub mod diag;
pub mod lint;
pub mod load;
pub mod matcher;
pub mod model;
pub mod system;

pub use diag::{Diagnostic, Severity};
pub use load::{load_dir, load_files, parse_str, LoadOptions, LoadOutcome};
pub use matcher::{Denied, DenyReason, Mismatch, Query, Verdict};
pub use model::*;
pub use system::{RealSystem, System};
