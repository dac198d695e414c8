//! Supervising a running command: wait for it to exit while relaying the client's signals;
//! if the client goes away or the daemon stops, end its whole process group (TERM, then KILL
//! after the grace period).

use crate::os::{self, ChildExit};
use std::os::fd::AsFd;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;
use tokio::sync::watch;

/// Signals a client may forward to its own command. SIGTSTP is delivered as SIGSTOP: the
/// command leads its own session, so it is an orphaned process group and the kernel would
/// discard a terminal stop signal.
fn forwardable(sig: i32) -> Option<i32> {
    match sig {
        libc::SIGHUP
        | libc::SIGINT
        | libc::SIGQUIT
        | libc::SIGTERM
        | libc::SIGUSR1
        | libc::SIGUSR2
        | libc::SIGWINCH
        | libc::SIGCONT
        | libc::SIGALRM => Some(sig),
        libc::SIGTSTP | libc::SIGSTOP => Some(libc::SIGSTOP),
        _ => None,
    }
}

/// KILLs still due to the process groups of commands whose leader already exited; shutdown
/// waits for them so that no TERM-ignoring member outlives the daemon.
pub static PENDING_GROUP_KILLS: AtomicUsize = AtomicUsize::new(0);

/// What the client of a running command sends.
pub enum FromClient {
    /// Forward this signal to the command.
    Signal(i32),
    /// Anything else: ignored while a command runs.
    Other,
    /// The client closed the connection or sent garbage: it is gone.
    Gone,
}

/// The client side of a running command, as supervision sees it.
pub trait ClientLink {
    /// The next message; must be cancel-safe (it is raced against the command's exit).
    fn next(&mut self) -> impl std::future::Future<Output = FromClient>;
}

/// Wait for the command to exit while relaying signals. If the client goes away (or the daemon
/// shuts down), end the whole process group: TERM, then KILL after `grace`. Returns the exit
/// and what ended it (`exit`, `client_disconnected`, `daemon_shutdown`, `daemon_error`).
pub async fn supervise(
    client: &mut impl ClientLink,
    spawned: os::Spawned,
    grace: Duration,
    mut shutdown: watch::Receiver<bool>,
) -> (Option<ChildExit>, &'static str) {
    let pid = spawned.pid;
    let pidfd = match os::async_fd(spawned.pidfd) {
        Ok(fd) => fd,
        Err(e) => {
            tracing::error!("cannot watch pid {pid}: {e}; killing it");
            let _ = os::kill_group(pid, libc::SIGKILL);
            return (None, "daemon_error");
        }
    };
    let mut client_open = true;
    let mut ended_by = "exit";
    let mut kill_at: Option<tokio::time::Instant> = None;
    let mut shutting_down = false;
    let terminate = |why: &'static str,
                     ended_by: &mut &'static str,
                     kill_at: &mut Option<tokio::time::Instant>| {
        if kill_at.is_none() {
            *ended_by = why;
            let _ = os::kill_group(pid, libc::SIGTERM);
            let _ = os::kill_group(pid, libc::SIGCONT);
            *kill_at = Some(tokio::time::Instant::now() + grace);
        }
    };
    loop {
        tokio::select! {
            guard = pidfd.readable() => {
                match guard {
                    Ok(mut g) => match os::waitid_pidfd(g.get_inner().as_fd()) {
                        Ok(Some(exit)) => {
                            if let Some(at) = kill_at {
                                kill_group_at(pid, at);
                            }
                            return (Some(exit), ended_by);
                        }
                        Ok(None) => g.clear_ready(),
                        Err(e) => {
                            tracing::error!("waitid on pid {pid}: {e}");
                            return (None, "daemon_error");
                        }
                    },
                    Err(e) => {
                        tracing::error!("polling pid {pid}: {e}");
                        let _ = os::kill_group(pid, libc::SIGKILL);
                        return (None, "daemon_error");
                    }
                }
            }
            msg = client.next(), if client_open => match msg {
                FromClient::Signal(signal) => forward(pid, signal),
                FromClient::Other => tracing::debug!("ignoring unexpected request while a command runs"),
                FromClient::Gone => {
                    client_open = false;
                    tracing::info!("client of pid {pid} went away; terminating its process group");
                    terminate("client_disconnected", &mut ended_by, &mut kill_at);
                }
            },
            _ = shutdown.changed(), if !shutting_down => {
                shutting_down = true;
                terminate("daemon_shutdown", &mut ended_by, &mut kill_at);
            }
            _ = async { tokio::time::sleep_until(kill_at.unwrap_or_else(tokio::time::Instant::now)).await }, if kill_at.is_some() => {
                let _ = os::kill_group(pid, libc::SIGKILL);
                kill_at = None;
            }
        }
    }
}

/// The leader obeyed TERM but members of its group may not have: the group id stays
/// allocated while any of them lives, so the KILL after the grace still reaches them.
fn kill_group_at(pid: i32, at: tokio::time::Instant) {
    PENDING_GROUP_KILLS.fetch_add(1, Ordering::SeqCst);
    tokio::spawn(async move {
        tokio::time::sleep_until(at).await;
        let _ = os::kill_group(pid, libc::SIGKILL);
        PENDING_GROUP_KILLS.fetch_sub(1, Ordering::SeqCst);
    });
}

/// A signal the client sent, passed on to the command's process group if it may be.
fn forward(pid: i32, signal: i32) {
    match forwardable(signal) {
        Some(sig) => {
            let _ = os::kill_group(pid, sig);
        }
        None => tracing::debug!("ignoring signal {signal} from client"),
    }
}
