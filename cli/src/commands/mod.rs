//! The subcommands, one module per family, and [`dispatch`], which picks one. Each returns
//! the exit status, or a [`Failure`] for `main` to print.
//!
//! * asking the daemon: [`run`] (and `elevate CMD`), [`with`], [`list`], [`status`]
//!   (`status`, `reload`), [`lease`] (`request`, `break-glass`, `approve`, `deny`, `revoke`,
//!   `extend`, `leases`);
//! * offline: [`policy`] (`policy check`, `policy explain`) and [`audit`] (`audit verify`).

pub mod audit;
pub mod lease;
pub mod list;
pub mod policy;
pub mod run;
pub mod status;
pub mod with;

use crate::args::{AuditCommand, Cli, Command, PolicyCommand};
use crate::error::Failure;
use elevate_policy::config::{Config, ConfigError, DEFAULT_CONFIG};
use elevate_proto::Request;
use std::path::{Path, PathBuf};

/// The configuration (which only supplies defaults for where things are) and the daemon's
/// socket. A broken configuration matters only to the commands that need it, so it is
/// reported there rather than refusing everything.
fn locate(cli: &Cli) -> Result<(Result<Config, ConfigError>, PathBuf), Failure> {
    let config = match &cli.config {
        // Named on purpose: a typo must not silently mean "all defaults" for any command.
        Some(p) if !p.exists() => return Err(Failure::NoSuchConfig(p.clone())),
        Some(p) => Config::load(p),
        None => Config::load(Path::new(DEFAULT_CONFIG)),
    };
    let socket: PathBuf = match (&cli.socket, &config) {
        (Some(s), _) => s.clone(),
        (None, Ok(c)) => c.socket(),
        (None, Err(_)) => elevate_proto::DEFAULT_SOCKET.into(),
    };
    Ok((config, socket))
}

/// Run the subcommand `cli` names.
pub fn dispatch(cli: Cli) -> Result<i32, Failure> {
    let (config, socket) = locate(&cli)?;
    let socket = socket.as_path();
    let config = || config.clone().map_err(Failure::Config);
    match cli.command {
        Command::Run(a) => run::run(socket, a),
        Command::List(a) => list::list(socket, a),
        Command::Status { json } => status::status(socket, json),
        Command::Reload { json } => status::reload(socket, json),
        Command::Policy(PolicyCommand::Check(a)) => policy::check(&config()?, a),
        Command::Policy(PolicyCommand::Explain(a)) => policy::explain(&config()?, a),
        Command::Audit(AuditCommand::Verify(a)) => audit::verify(&config()?, a),
        Command::Request(a) => lease::request(socket, a),
        Command::BreakGlass(a) => lease::break_glass(socket, a),
        Command::Approve { id, comment, json } => {
            lease::transition(socket, Request::Approve { id, comment }, json)
        }
        Command::Deny { id, reason, json } => {
            lease::transition(socket, Request::Deny { id, reason }, json)
        }
        Command::Revoke {
            id: Some(id),
            reason,
            json,
            ..
        } => lease::transition(socket, Request::Revoke { id, reason }, json),
        Command::Revoke {
            id: None, reason, ..
        } => lease::revoke_all(socket, reason),
        Command::Extend { id, by, json } => {
            let by_secs = by.as_secs();
            lease::transition(socket, Request::Extend { id, by_secs }, json)
        }
        Command::Leases { all, json } => lease::leases(socket, all, json),
        Command::With(a) => with::with(socket, a),
    }
}
