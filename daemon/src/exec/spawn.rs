//! From a decision to a process: the plan the core decided, turned into what the fork/exec in
//! the OS layer needs.

use super::check::{open_checked_executable, CheckError};
use crate::os::{Exe, ExecPlan};
use elevate_base::{Gid, Uid};
use std::ffi::CString;
use std::fmt;
use std::os::fd::OwnedFd;
use std::path::PathBuf;

/// Everything needed to run an allowed command: what the core decided.
#[derive(Debug)]
pub struct Plan {
    pub profile: String,
    /// Canonical path of the executable.
    pub path: PathBuf,
    /// argv[0] is the rule's path as written (multi-call binaries dispatch on it).
    pub argv: Vec<String>,
    pub env: Vec<(String, String)>,
    pub run_as: String,
    pub uid: Uid,
    pub gid: Gid,
    pub groups: Vec<Gid>,
    /// `elevate with`: the caller's own command, exec'd by path after dropping to the caller
    /// (the executable ownership check is for commands run with someone else's privileges).
    pub as_caller: bool,
}

/// Why a plan could not become an exec plan. `Display` is the client's error message.
#[derive(Debug)]
pub enum PrepareError {
    /// An argument or environment string holds a NUL byte.
    Nul,
    /// The executable failed its check.
    Check(CheckError),
}

impl fmt::Display for PrepareError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PrepareError::Nul => f.write_str("arguments and environment may not contain NUL bytes"),
            PrepareError::Check(e) => write!(f, "{e}"),
        }
    }
}

impl std::error::Error for PrepareError {}

/// The exec plan for `plan`, with the client's descriptors: the executable opened and
/// checked (a command run as someone else) or named by path (`elevate with`), every string
/// NUL-free.
pub fn prepare(plan: &Plan, stdio: [OwnedFd; 3], cwd: OwnedFd) -> Result<ExecPlan, PrepareError> {
    let cs = |s: &str| CString::new(s).map_err(|_| PrepareError::Nul);
    let exe = if plan.as_caller {
        Exe::Path(cs(&plan.path.display().to_string())?)
    } else {
        let (fd, script) = open_checked_executable(&plan.path).map_err(PrepareError::Check)?;
        Exe::Checked { fd, script }
    };
    Ok(ExecPlan {
        exe,
        argv: plan.argv.iter().map(|a| cs(a)).collect::<Result<_, _>>()?,
        envp: plan
            .env
            .iter()
            .map(|(k, v)| cs(&format!("{k}={v}")))
            .collect::<Result<_, _>>()?,
        stdio,
        cwd,
        uid: plan.uid.get(),
        gid: plan.gid.get(),
        groups: plan.groups.iter().map(|g| g.get()).collect(),
    })
}
