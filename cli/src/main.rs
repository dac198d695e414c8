//! `elevate`, the client. Never setuid: it asks elevated, which decides and runs.

mod args;
mod lease;
mod offline;
mod prompt;
mod remote;
mod run;
mod sys;

use args::{AuditCommand, Cli, Command, PolicyCommand};
use clap::Parser;
use elevate_policy::config::Config;
use elevate_proto::{exit, Client, ClientError, ErrorKind, Request};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

/// An error to print (after `elevate: `) and the exit code that goes with it.
#[derive(Debug)]
pub struct Failure {
    pub code: i32,
    pub message: String,
}

pub fn fail(code: i32, message: impl Into<String>) -> Failure {
    Failure {
        code,
        message: message.into(),
    }
}

pub fn exit_for_error(kind: ErrorKind) -> i32 {
    match kind {
        ErrorKind::BadRequest => exit::USAGE,
        ErrorKind::RateLimited | ErrorKind::Busy => exit::TEMPFAIL,
        ErrorKind::SpawnFailed => exit::CANNOT_EXECUTE,
        ErrorKind::AuditFailed | ErrorKind::Internal => exit::SOFTWARE,
        ErrorKind::NotFound => exit::INVALID,
        ErrorKind::AuthenticationRequired => exit::DENIED,
    }
}

pub fn connect(socket: &Path) -> Result<Client, Failure> {
    Client::connect(socket, Duration::from_secs(2)).map_err(|e| match e {
        ClientError::Connect { socket, source } => fail(
            exit::UNAVAILABLE,
            format!(
                "cannot reach elevated at {}: {source} — is the daemon running? (start it: systemctl start elevated)",
                socket.display()
            ),
        ),
        other => fail(exit::UNAVAILABLE, other.to_string()),
    })
}

fn main() -> ExitCode {
    sys::ensure_stdio_open();
    let cli = Cli::parse_from(args::expand_shorthand(std::env::args_os().collect()));
    let code = match dispatch(cli) {
        Ok(code) => code,
        Err(f) => {
            eprintln!("elevate: {}", f.message);
            f.code
        }
    };
    ExitCode::from(code.clamp(0, 255) as u8)
}

fn dispatch(cli: Cli) -> Result<i32, Failure> {
    // The config only supplies defaults for where things are; a broken one matters only to
    // commands that need it, so report it there rather than refusing everything.
    let config = match &cli.config {
        // Named on purpose: a typo must not silently mean "all defaults" for any command.
        Some(p) if !p.exists() => {
            return Err(fail(
                exit::USAGE,
                format!("{}: no such configuration file", p.display()),
            ))
        }
        Some(p) => Config::load(p),
        None => Config::load(std::path::Path::new(elevate_policy::config::DEFAULT_CONFIG)),
    };
    let socket: PathBuf = match (&cli.socket, &config) {
        (Some(s), _) => s.clone(),
        (None, Ok(c)) => c.socket(),
        (None, Err(_)) => elevate_proto::DEFAULT_SOCKET.into(),
    };
    let config = || {
        config
            .clone()
            .map_err(|e| fail(exit::USAGE, format!("configuration: {e}")))
    };
    match cli.command {
        Command::Run(a) => run::run(&socket, a),
        Command::List(a) => remote::list(&socket, a),
        Command::Status { json } => remote::status(&socket, json),
        Command::Reload { json } => remote::reload(&socket, json),
        Command::Policy(PolicyCommand::Check(a)) => offline::policy_check(&config()?, a),
        Command::Policy(PolicyCommand::Explain(a)) => offline::policy_explain(&config()?, a),
        Command::Audit(AuditCommand::Verify(a)) => offline::audit_verify(&config()?, a),
        Command::Request(a) => lease::request(&socket, a),
        Command::BreakGlass(a) => lease::break_glass(&socket, a),
        Command::Approve { id, comment, json } => {
            lease::transition(&socket, Request::Approve { id, comment }, json)
        }
        Command::Deny { id, reason, json } => {
            lease::transition(&socket, Request::Deny { id, reason }, json)
        }
        Command::Revoke {
            id: Some(id),
            reason,
            json,
            ..
        } => lease::transition(&socket, Request::Revoke { id, reason }, json),
        Command::Revoke {
            id: None, reason, ..
        } => lease::revoke_all(&socket, reason),
        Command::Extend { id, by, json } => lease::transition(
            &socket,
            Request::Extend {
                id,
                by_secs: by.as_secs(),
            },
            json,
        ),
        Command::Leases { all, json } => lease::list(&socket, all, json),
        Command::With(a) => lease::with(&socket, a),
    }
}
