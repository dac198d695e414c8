//! Where the policy comes from: the root-owned policy directory, read whole and validated
//! (the core swaps it in only if all of it is good).

use elevate_policy::{LoadOptions, LoadOutcome, RealSystem};
use std::path::PathBuf;

pub trait PolicySource: Send + Sync {
    fn load(&self) -> LoadOutcome;
    /// Why the source is not there at all (`None` when it is): a policy directory that is
    /// missing, as opposed to present and empty.
    fn missing(&self) -> Option<String>;
}

/// `policy.d` on disk, with the ownership and mode checks.
pub struct PolicyDir(pub PathBuf);

impl PolicySource for PolicyDir {
    fn load(&self) -> LoadOutcome {
        elevate_policy::load_dir(
            &self.0,
            &LoadOptions {
                check_permissions: true,
            },
            &RealSystem,
        )
    }

    fn missing(&self) -> Option<String> {
        match std::fs::symlink_metadata(&self.0) {
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Some(format!(
                "the policy directory {} does not exist",
                self.0.display()
            )),
            _ => None,
        }
    }
}
