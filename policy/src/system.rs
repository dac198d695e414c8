//! The policy's only window on the machine. The loader asks whether users and groups exist
//! (unknown ones are warnings) and resolves command paths; tests substitute a fake.

use std::path::{Path, PathBuf};

pub trait System {
    fn user_exists(&self, name: &str) -> bool;
    fn group_exists(&self, name: &str) -> bool;
    /// The path with every symlink resolved, or `None` if it does not exist here.
    fn canonicalize(&self, path: &Path) -> Option<PathBuf>;
}

/// The real machine, through NSS (getpwnam_r/getgrnam_r) and realpath.
pub struct RealSystem;

impl System for RealSystem {
    fn user_exists(&self, name: &str) -> bool {
        todo!("{name}")
    }
    fn group_exists(&self, name: &str) -> bool {
        todo!("{name}")
    }
    fn canonicalize(&self, path: &Path) -> Option<PathBuf> {
        std::fs::canonicalize(path).ok()
    }
}

/// gethostname(2), or "localhost" if it fails.
pub fn hostname() -> String {
    todo!()
}
