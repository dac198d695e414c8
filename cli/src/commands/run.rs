//! `elevate run` (and the running half of `elevate with`): hand the daemon our stdio and
//! cwd, relay signals while the command runs, and exit with its status. The CLI has no
//! privileges of its own and decides nothing.

use crate::args::RunArgs;
use crate::argv::{caller_env, request_argv};
use crate::daemon::{connect, refusal, DECISION_TIMEOUT};
use crate::error::Failure;
use crate::{prompt, sys};
use elevate_proto::{Client, Request, Response, RunRequest};
use std::os::fd::{AsFd, OwnedFd};
use std::path::Path;
use std::time::Instant;

/// Signals relayed to the command. SIGTSTP is relayed and then applied to ourselves, so
/// Ctrl-Z suspends both; SIGCONT from the shell's `fg` is relayed back.
const RELAYED: &[libc::c_int] = &[
    libc::SIGINT,
    libc::SIGTERM,
    libc::SIGHUP,
    libc::SIGQUIT,
    libc::SIGUSR1,
    libc::SIGUSR2,
    libc::SIGWINCH,
    libc::SIGCONT,
    libc::SIGALRM,
    libc::SIGTSTP,
];

/// `elevate run`.
pub fn run(socket: &Path, args: RunArgs) -> Result<i32, Failure> {
    let argv = request_argv(&args.command)?;
    let env = caller_env();
    exec(
        socket,
        Request::Run(RunRequest {
            argv,
            profile: args.profile,
            run_as: args.user,
            env,
        }),
    )
}

/// Send a `Run` or `With` request with our stdio and cwd, relay signals, return the status.
pub fn exec(socket: &Path, req: Request) -> Result<i32, Failure> {
    let cwd = sys::open_cwd().map_err(Failure::OpenCwd)?;
    let termios = sys::SavedTermios::save();
    // Signals are caught from before the request is sent, so a Ctrl-C while the daemon decides
    // is handled (the request is abandoned) rather than killing the client half-way.
    let signals = sys::signal_pipe(RELAYED).map_err(Failure::SignalSetup)?;
    let mut client = connect(socket)?;
    let stdin = std::io::stdin();
    let stdout = std::io::stdout();
    let stderr = std::io::stderr();
    client
        .send_with_fds(
            &req,
            &[stdin.as_fd(), stdout.as_fd(), stderr.as_fd(), cwd.as_fd()],
        )
        .map_err(Failure::Exchange)?;
    drop(cwd);
    let _ = client.set_read_timeout(None);
    let result = relay(&mut client, &signals);
    termios.restore();
    result
}

/// The connection broke while the request was under way.
fn lost(e: impl std::error::Error + 'static) -> Failure {
    Failure::LostWhileRunning(Box::new(e))
}

/// Wait for the decision, then for `Exited`, forwarding signals once the command runs.
fn relay(client: &mut Client, signals: &OwnedFd) -> Result<i32, Failure> {
    let mut deadline = Instant::now() + DECISION_TIMEOUT;
    let mut started = false;
    loop {
        let (sock_ready, sig_ready) = readiness(client, signals, (!started).then_some(deadline))?;
        if sig_ready {
            forward_signals(client, signals, started)?;
        }
        if !sock_ready {
            continue;
        }
        match client.recv().map_err(lost)? {
            Response::Started(_) => started = true,
            Response::Prompt { style, text } if !started => {
                prompt::handle(client, style, &text, Some(signals.as_fd()))
                    .map_err(Failure::InterruptedBeforeStart)?;
                // The person typing is not the daemon being slow.
                deadline = Instant::now() + DECISION_TIMEOUT;
            }
            Response::Exited(status) if started => return Ok(status.shell_code()),
            other if !started => return Err(refusal(other)),
            Response::Error(e) => return Err(Failure::Daemon(e)),
            _ => {}
        }
    }
}

/// Whether the connection and the signal pipe are readable. Until the command has started
/// (`deadline` is set), waiting past the deadline is a failure: nothing was run.
fn readiness(
    client: &Client,
    signals: &OwnedFd,
    deadline: Option<Instant>,
) -> Result<(bool, bool), Failure> {
    if client.has_buffered() {
        return Ok((true, false));
    }
    let timeout = deadline.map_or(-1, |d| {
        d.saturating_duration_since(Instant::now())
            .as_millis()
            .min(i32::MAX as u128) as i32
    });
    let r = sys::poll_readable(&[client.as_fd(), signals.as_fd()], timeout).map_err(lost)?;
    if deadline.is_some() && !r[0] && !r[1] {
        return Err(Failure::DecisionTimeout);
    }
    Ok((r[0], r[1]))
}

/// The signals caught since the last call. Once the command runs, each is relayed to it
/// (Ctrl-Z then stops us too). Before it exists, an interrupt abandons the request: closing
/// the connection makes the daemon end anything it starts for it.
fn forward_signals(client: &mut Client, signals: &OwnedFd, started: bool) -> Result<(), Failure> {
    for sig in sys::read_signals(signals.as_fd()) {
        if !started {
            if matches!(
                sig,
                libc::SIGINT | libc::SIGTERM | libc::SIGHUP | libc::SIGQUIT
            ) {
                return Err(Failure::InterruptedBeforeStart(sig));
            }
            continue;
        }
        client
            .send(&Request::Signal { signal: sig })
            .map_err(lost)?;
        if sig == libc::SIGTSTP {
            sys::stop_self();
        }
    }
    Ok(())
}
