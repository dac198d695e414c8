//! Talking to elevated: connecting, asking one question per connection, the timeouts, and
//! turning an answer that is not the one asked for into a [`Failure`].

use crate::error::Failure;
use crate::{prompt, sys};
use elevate_proto::{Client, Denial, Request, Response};
use std::os::fd::AsFd;
use std::path::Path;
use std::time::Duration;

/// How long connecting, and a quick question (`list`, `status`, `reload`), may take.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(2);
/// Lease operations journal and audit durably before answering: be patient, not forever.
pub const OP_TIMEOUT: Duration = Duration::from_secs(30);
/// How long the daemon may take to decide on a `run` or `with` (which includes an fsync of
/// the audit log). A step-up question starts it afresh.
pub const DECISION_TIMEOUT: Duration = Duration::from_secs(60);

/// A connection to the daemon at `socket`.
pub fn connect(socket: &Path) -> Result<Client, Failure> {
    Client::connect(socket, CONNECT_TIMEOUT).map_err(Failure::Unreachable)
}

/// A quick question on its own connection: the answer must come within [`CONNECT_TIMEOUT`].
pub fn call(socket: &Path, req: &Request) -> Result<Response, Failure> {
    connect(socket)?.call(req).map_err(Failure::Exchange)
}

/// A lease operation on its own connection: the answer may take up to [`OP_TIMEOUT`], and
/// step-up questions on the way (profiles with `authenticate = true`) are answered on the
/// terminal.
pub fn ask(socket: &Path, req: &Request) -> Result<Response, Failure> {
    let timeout = Some(OP_TIMEOUT);
    let mut client = connect(socket)?;
    client.send(req).map_err(Failure::Exchange)?;
    let _ = client.set_read_timeout(timeout);
    loop {
        match client.recv().map_err(Failure::Exchange)? {
            Response::Prompt { style, text } => {
                // Ctrl-C while echo is off must restore the terminal: catch it for the
                // length of the question only.
                const STOP: &[libc::c_int] =
                    &[libc::SIGINT, libc::SIGTERM, libc::SIGHUP, libc::SIGQUIT];
                let signals = sys::signal_pipe(STOP).ok();
                let _ = client.set_read_timeout(None);
                let r =
                    prompt::handle(&mut client, style, &text, signals.as_ref().map(AsFd::as_fd));
                sys::default_signals(STOP);
                r.map_err(Failure::Interrupted)?;
                let _ = client.set_read_timeout(timeout);
            }
            other => return Ok(other),
        }
    }
}

/// An answer that is not the one asked for: the message and exit code scripts expect.
pub fn refusal(resp: Response) -> Failure {
    match resp {
        Response::Denied(Denial { reason, hint }) => Failure::Denied { reason, hint },
        Response::Error(e) => Failure::Daemon(e),
        other => Failure::Unexpected(Box::new(other)),
    }
}
