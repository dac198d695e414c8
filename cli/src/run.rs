//! `elevate run`: hand the daemon our stdio and cwd, relay signals while the command runs,
//! and exit with its status. The CLI has no privileges of its own and decides nothing.

use crate::args::RunArgs;
use crate::{connect, exit_for_error, fail, Failure};
use elevate_proto::exit;
use elevate_proto::{Denial, Request, Response, RunRequest};
use std::ffi::OsString;
use std::os::fd::AsFd;
use std::path::Path;
use std::time::Duration;

use crate::sys;

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

/// argv as UTF-8, with a relative path containing `/` made absolute against our cwd (the
/// daemon resolves bare names itself, through its fixed PATH).
pub fn request_argv(command: &[OsString]) -> Result<Vec<String>, Failure> {
    let mut argv = Vec::with_capacity(command.len());
    for a in command {
        match a.to_str() {
            Some(s) => argv.push(s.to_string()),
            None => {
                return Err(fail(
                    exit::USAGE,
                    format!("argument {a:?} is not valid UTF-8; elevate passes text only"),
                ))
            }
        }
    }
    if let Some(first) = argv.first_mut() {
        if first.is_empty() {
            return Err(fail(exit::USAGE, "empty command name"));
        }
        if first.contains('/') && !first.starts_with('/') {
            let cwd = std::env::current_dir()
                .map_err(|e| fail(exit::USAGE, format!("cannot resolve {first}: {e}")))?;
            *first = cwd.join(&*first).display().to_string();
        }
    }
    Ok(argv)
}

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

/// The caller's environment as UTF-8 pairs (the daemon keeps what its allow-list permits).
pub fn caller_env() -> Vec<(String, String)> {
    std::env::vars_os()
        .filter_map(|(k, v)| Some((k.into_string().ok()?, v.into_string().ok()?)))
        .collect()
}

/// Send a `Run` or `With` request with our stdio and cwd, relay signals, return the status.
pub fn exec(socket: &Path, req: Request) -> Result<i32, Failure> {
    let cwd = sys::open_cwd().map_err(|e| {
        fail(
            exit::SOFTWARE,
            format!("cannot open the current directory: {e}"),
        )
    })?;
    let termios = sys::SavedTermios::save();
    // Signals are caught from before the request is sent, so a Ctrl-C while the daemon decides
    // is handled (the request is abandoned) rather than killing the client half-way.
    let signals = sys::signal_pipe(RELAYED)
        .map_err(|e| fail(exit::SOFTWARE, format!("signal setup: {e}")))?;
    let mut client = connect(socket)?;
    let stdin = std::io::stdin();
    let stdout = std::io::stdout();
    let stderr = std::io::stderr();
    client
        .send_with_fds(
            &req,
            &[stdin.as_fd(), stdout.as_fd(), stderr.as_fd(), cwd.as_fd()],
        )
        .map_err(|e| fail(exit::SOFTWARE, e.to_string()))?;
    drop(cwd);
    let _ = client.set_read_timeout(None);
    let result = relay(&mut client, &signals);
    termios.restore();
    result
}

/// How long the daemon may take to decide (which includes an fsync of the audit log).
const DECISION_TIMEOUT: Duration = Duration::from_secs(60);

/// Wait for the decision, then for `Exited`, forwarding signals once the command runs.
fn relay(
    client: &mut elevate_proto::Client,
    signals: &std::os::fd::OwnedFd,
) -> Result<i32, Failure> {
    let lost = |e: &dyn std::fmt::Display| {
        fail(exit::SOFTWARE, format!("lost the connection to elevated ({e}); the daemon ends the command when its client is gone"))
    };
    let mut deadline = std::time::Instant::now() + DECISION_TIMEOUT;
    let mut started = false;
    loop {
        let (sock_ready, sig_ready) = if client.has_buffered() {
            (true, false)
        } else {
            let timeout = if started {
                -1
            } else {
                deadline
                    .saturating_duration_since(std::time::Instant::now())
                    .as_millis()
                    .min(i32::MAX as u128) as i32
            };
            let r = sys::poll_readable(&[client.as_fd(), signals.as_fd()], timeout)
                .map_err(|e| lost(&e))?;
            if !started && !r[0] && !r[1] {
                return Err(fail(
                    exit::SOFTWARE,
                    "elevated did not answer within 60 s; nothing was run",
                ));
            }
            (r[0], r[1])
        };
        if sig_ready {
            for sig in sys::read_signals(signals.as_fd()) {
                if !started {
                    // Before the command exists, an interrupt abandons the request: closing the
                    // connection makes the daemon end anything it starts for it.
                    if matches!(
                        sig,
                        libc::SIGINT | libc::SIGTERM | libc::SIGHUP | libc::SIGQUIT
                    ) {
                        return Err(fail(
                            exit::SIGNAL_BASE + sig,
                            "interrupted before the command started",
                        ));
                    }
                    continue;
                }
                client
                    .send(&Request::Signal { signal: sig })
                    .map_err(|e| lost(&e))?;
                if sig == libc::SIGTSTP {
                    sys::stop_self();
                }
            }
        }
        if sock_ready {
            match client.recv().map_err(|e| lost(&e))? {
                Response::Started(_) => started = true,
                Response::Prompt { style, text } if !started => {
                    if let Err(sig) =
                        crate::prompt::handle(client, style, &text, Some(signals.as_fd()))
                    {
                        return Err(fail(
                            exit::SIGNAL_BASE + sig,
                            "interrupted before the command started",
                        ));
                    }
                    // The person typing is not the daemon being slow.
                    deadline = std::time::Instant::now() + DECISION_TIMEOUT;
                }
                Response::Exited(status) if started => return Ok(status.shell_code()),
                other if !started => return Err(refusal(other)),
                Response::Error(e) => return Err(fail(exit_for_error(e.kind), e.message)),
                _ => {}
            }
        }
    }
}

/// A response that is not `Started`: turn it into the message and exit code scripts expect.
pub fn refusal(resp: Response) -> Failure {
    match resp {
        Response::Denied(Denial { reason, hint }) => denied(&reason, hint.as_deref()),
        Response::Error(e) => fail(exit_for_error(e.kind), e.message),
        other => fail(
            exit::SOFTWARE,
            format!("unexpected answer from elevated: {other:?}"),
        ),
    }
}

pub fn denied(reason: &str, hint: Option<&str>) -> Failure {
    let mut msg = format!("denied: {reason}");
    if let Some(h) = hint {
        msg.push_str(&format!("\nelevate: {h}"));
    }
    fail(exit::DENIED, msg)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn argv_rules() {
        let a = |v: &[&str]| request_argv(&v.iter().map(OsString::from).collect::<Vec<_>>());
        assert_eq!(a(&["id", "-u"]).unwrap(), vec!["id", "-u"]);
        assert_eq!(a(&["/usr/bin/id"]).unwrap(), vec!["/usr/bin/id"]);
        let rel = a(&["./x"]).unwrap();
        assert!(rel[0].starts_with('/') && rel[0].ends_with("/./x"));
        assert!(a(&[""]).is_err());
        use std::os::unix::ffi::OsStringExt;
        let bad = vec![OsString::from("id"), OsString::from_vec(vec![0xff])];
        assert_eq!(request_argv(&bad).unwrap_err().code, exit::USAGE);
    }
}
