//! `elevate with ID -- CMD`: run a command as yourself with an active lease's groups added.
//! CMD runs as you, so a bare name is found through your own PATH and sent as an absolute
//! path; the daemon runs exactly that, and from there on it goes as in `elevate run` (our
//! stdio and cwd handed over, signals relayed, its exit status ours).

use crate::args::WithArgs;
use crate::argv::{caller_env, request_argv};
use crate::commands::run::exec;
use crate::error::Failure;
use crate::path_search::find_in_path;
use elevate_proto::{Request, WithRequest};
use std::path::Path;

/// `elevate with`.
pub fn with(socket: &Path, a: WithArgs) -> Result<i32, Failure> {
    let mut argv = request_argv(&a.command)?;
    let Some(first) = argv.first_mut() else {
        return Err(Failure::NoCommandGiven);
    };
    if !first.starts_with('/') {
        let cwd = std::env::current_dir().ok();
        let path = std::env::var_os("PATH");
        let found = find_in_path(first, path.as_deref(), cwd.as_deref())
            .ok_or_else(|| Failure::NotInPath(first.clone()))?;
        *first = found
            .to_str()
            .map(str::to_string)
            .ok_or_else(|| Failure::PathNotUtf8(found.clone()))?;
    }
    exec(
        socket,
        Request::With(WithRequest {
            lease: a.lease,
            argv,
            env: caller_env(),
        }),
    )
}
