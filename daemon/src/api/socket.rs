//! One client connection: read requests, ask the state loop, answer, and for `run`, supervise
//! the command until it exits. Handlers hold no shared state; all they know arrives in replies.

use crate::api::step_up::step_up;
use crate::core::{checked, Decision, Event, LeaseOp, LoginOp, Plan};
use crate::effects::audit::{fields, AuditHandle};
use crate::exec::open_checked_executable;
use crate::os::{self, ChildExit, Exe, ExecPlan};
use crate::peer::Peer;
use crate::settings::Settings;
use elevate_proto::fdpass::{self, MAX_FDS};
use elevate_proto::frame::{self, FrameBuf, FrameError};
use elevate_proto::{
    Denial, ErrorKind, ErrorReply, ExitStatus, Request, Response, RunRequest, Started, WithRequest,
};
use serde_json::json;
use std::ffi::CString;
use std::io;
use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::io::{AsyncWriteExt, Interest};
use tokio::net::UnixStream;
use tokio::sync::{mpsc, oneshot, watch};

pub struct Ctx {
    pub events: mpsc::UnboundedSender<Event>,
    pub audit: AuditHandle,
    pub settings: Arc<Settings>,
    pub shutdown: watch::Receiver<bool>,
}

/// A connection that can receive fds alongside frames.
pub struct Conn {
    stream: UnixStream,
    inbox: FrameBuf,
    pub fds: Vec<OwnedFd>,
}

impl Conn {
    /// Next frame. `Ok(None)` when the peer closed cleanly between frames.
    pub async fn read_frame(&mut self) -> Result<Option<Vec<u8>>, FrameError> {
        loop {
            if let Some(f) = self.inbox.next_frame()? {
                return Ok(Some(f));
            }
            let mut buf = [0u8; 8192];
            let Conn { stream, fds, .. } = self;
            let n = stream
                .async_io(Interest::READABLE, || {
                    fdpass::recv_with_fds(stream.as_fd(), &mut buf, fds)
                })
                .await?;
            if fds.len() > MAX_FDS {
                return Err(FrameError::Malformed("too many file descriptors".into()));
            }
            if n == 0 {
                return if self.inbox.pending() == 0 {
                    Ok(None)
                } else {
                    Err(FrameError::Closed)
                };
            }
            self.inbox.push(&buf[..n]);
        }
    }

    pub async fn send(&mut self, resp: &Response) -> io::Result<()> {
        let bytes = frame::encode(resp).map_err(|e| io::Error::other(e.to_string()))?;
        // A client that stops reading must not pin this task forever.
        tokio::time::timeout(Duration::from_secs(5), self.stream.write_all(&bytes))
            .await
            .map_err(|_| io::Error::new(io::ErrorKind::TimedOut, "client not reading"))?
    }
}

/// Closes the connection's slot in the state loop however the handler ends.
struct Slot {
    uid: u32,
    events: mpsc::UnboundedSender<Event>,
}

impl Drop for Slot {
    fn drop(&mut self) {
        let _ = self.events.send(Event::Close { uid: self.uid });
    }
}

fn error(kind: ErrorKind, message: impl Into<String>) -> Response {
    Response::Error(ErrorReply {
        kind,
        message: message.into(),
    })
}

pub async fn serve(stream: UnixStream, ctx: Ctx) {
    let peer = match Peer::from_stream(&stream) {
        Ok(p) => p,
        Err(e) => {
            tracing::warn!("connection without peer credentials: {e}");
            return;
        }
    };
    let mut conn = Conn {
        stream,
        inbox: FrameBuf::default(),
        fds: Vec::new(),
    };
    let (tx, rx) = oneshot::channel();
    if ctx
        .events
        .send(Event::Open {
            uid: peer.uid,
            reply: tx,
        })
        .is_err()
    {
        return;
    }
    match rx.await {
        Ok(Ok(())) => {}
        Ok(Err(e)) => {
            let _ = conn.send(&Response::Error(e)).await;
            return;
        }
        Err(_) => return,
    }
    let _slot = Slot {
        uid: peer.uid,
        events: ctx.events.clone(),
    };
    let limits = &ctx.settings.limits;
    let mut first = true;
    loop {
        let wait = Duration::from_millis(if first {
            limits.read_timeout_ms
        } else {
            limits.idle_timeout_ms
        });
        first = false;
        let payload = match tokio::time::timeout(wait, conn.read_frame()).await {
            Err(_) | Ok(Ok(None)) => return,
            Ok(Err(e)) => {
                if !matches!(e, FrameError::Closed | FrameError::Io(_)) {
                    let _ = conn
                        .send(&error(ErrorKind::BadRequest, e.to_string()))
                        .await;
                }
                return;
            }
            Ok(Ok(Some(p))) => p,
        };
        let req: Request = match frame::decode(&payload) {
            Ok(r) => r,
            Err(e) => {
                let _ = conn
                    .send(&error(ErrorKind::BadRequest, e.to_string()))
                    .await;
                return;
            }
        };
        // Only `run` may carry descriptors; anything else that brought some has them closed here.
        let fds = std::mem::take(&mut conn.fds);
        let resp = match req {
            Request::Run(run) => {
                handle_run(&mut conn, &ctx, peer.clone(), ExecRequest::Run(run), fds).await;
                return; // one command per connection
            }
            Request::With(with) => {
                handle_run(&mut conn, &ctx, peer.clone(), ExecRequest::With(with), fds).await;
                return;
            }
            Request::Wait { id } => {
                // Waiting may take as long as approval does: no idle timeout on this connection.
                let (tx, rx) = oneshot::channel();
                let _ = ctx.events.send(Event::Wait {
                    uid: peer.uid,
                    id,
                    reply: tx,
                });
                match rx.await {
                    Ok(r) => r,
                    Err(_) => return,
                }
            }
            Request::RequestLease(r) => {
                let resp = lease_op(&ctx, &peer, LeaseOp::Request(r.clone())).await;
                match resp {
                    Response::Error(e) if e.kind == ErrorKind::AuthenticationRequired => {
                        match step_up(&mut conn, &ctx, &peer, &r.profile, "request").await {
                            Ok(authenticated) => {
                                lease_op(&ctx, &authenticated, LeaseOp::Request(r)).await
                            }
                            Err(denied) => denied,
                        }
                    }
                    other => other,
                }
            }
            Request::Approve { id, comment } => {
                lease_op(&ctx, &peer, LeaseOp::Approve { id, comment }).await
            }
            Request::Deny { id, reason } => {
                lease_op(&ctx, &peer, LeaseOp::Deny { id, reason }).await
            }
            Request::Revoke { id, reason } => {
                lease_op(&ctx, &peer, LeaseOp::Revoke { id, reason }).await
            }
            Request::Extend { id, by_secs } => {
                lease_op(&ctx, &peer, LeaseOp::Extend { id, by_secs }).await
            }
            Request::Leases { all } => lease_op(&ctx, &peer, LeaseOp::List { all }).await,
            Request::LoginCheck(q) => login_op(&ctx, &peer, LoginOp::Check(q)).await,
            Request::SessionOpen(q) => login_op(&ctx, &peer, LoginOp::Open(q)).await,
            Request::SessionClose { id } => login_op(&ctx, &peer, LoginOp::Close { id }).await,
            Request::Check(run) => match decide(&ctx, peer.clone(), run, true).await {
                Some((_, d)) => checked(&d),
                None => return,
            },
            Request::List {} => {
                let (tx, rx) = oneshot::channel();
                let _ = ctx.events.send(Event::List {
                    peer: peer.clone(),
                    reply: tx,
                });
                match rx.await {
                    Ok(r) => r,
                    Err(_) => return,
                }
            }
            Request::Reload {} if peer.uid != 0 => Response::Denied(elevate_proto::Denial {
                reason: "only root may reload the policy".into(),
                hint: Some(
                    "sudo systemctl reload elevated, or elevated --check to validate".into(),
                ),
            }),
            Request::Reload {} => {
                let (tx, rx) = oneshot::channel();
                let _ = ctx.events.send(Event::Reload { reply: Some(tx) });
                match rx.await {
                    Ok(r) => Response::Reloaded(r),
                    Err(_) => return,
                }
            }
            Request::Status {} => {
                let (tx, rx) = oneshot::channel();
                let _ = ctx.events.send(Event::Status { reply: tx });
                match rx.await {
                    Ok(r) => r,
                    Err(_) => return,
                }
            }
            Request::Signal { .. } => error(
                ErrorKind::BadRequest,
                "no command is running on this connection",
            ),
            Request::PromptReply { .. } => {
                error(ErrorKind::BadRequest, "no prompt is waiting for an answer")
            }
        };
        if conn.send(&resp).await.is_err() {
            return;
        }
    }
}

async fn lease_op(ctx: &Ctx, peer: &Peer, op: LeaseOp) -> Response {
    let (tx, rx) = oneshot::channel();
    let _ = ctx.events.send(Event::Lease {
        peer: peer.clone(),
        op,
        reply: tx,
    });
    rx.await
        .unwrap_or_else(|_| error(ErrorKind::Internal, "the daemon is shutting down"))
}

async fn login_op(ctx: &Ctx, peer: &Peer, op: LoginOp) -> Response {
    let (tx, rx) = oneshot::channel();
    let _ = ctx.events.send(Event::Login {
        peer: peer.clone(),
        op,
        reply: tx,
    });
    rx.await
        .unwrap_or_else(|_| error(ErrorKind::Internal, "the daemon is shutting down"))
}

async fn decide(ctx: &Ctx, peer: Peer, req: RunRequest, dry_run: bool) -> Option<(Peer, Decision)> {
    let (tx, rx) = oneshot::channel();
    ctx.events
        .send(Event::Decide {
            peer,
            req,
            dry_run,
            reply: tx,
        })
        .ok()?;
    rx.await.ok()
}

fn argv_json(argv: &[String]) -> serde_json::Value {
    json!(argv)
}

/// What a connection asked to execute.
enum ExecRequest {
    /// A policy-allowed command run as the profile's run_as user.
    Run(RunRequest),
    /// The caller's own command with a lease's groups added.
    With(WithRequest),
}

async fn handle_run(conn: &mut Conn, ctx: &Ctx, peer: Peer, what: ExecRequest, fds: Vec<OwnedFd>) {
    let Ok::<[OwnedFd; 4], _>([stdin, stdout, stderr, cwd]) = fds.try_into() else {
        let _ = conn
            .send(&error(
                ErrorKind::BadRequest,
                "run needs exactly four descriptors: stdin, stdout, stderr, cwd",
            ))
            .await;
        return;
    };
    match os::fstat(cwd.as_fd()) {
        Ok(st) if st.st_mode & libc::S_IFMT == libc::S_IFDIR => {}
        _ => {
            let _ = conn
                .send(&error(
                    ErrorKind::BadRequest,
                    "the working-directory descriptor is not a directory",
                ))
                .await;
            return;
        }
    }
    let cwd_path = std::fs::read_link(format!("/proc/self/fd/{}", cwd.as_raw_fd()))
        .map(|p| p.display().to_string())
        .unwrap_or_default();
    let (requested, via) = match &what {
        ExecRequest::Run(r) => (argv_json(&r.argv), "run"),
        ExecRequest::With(w) => (argv_json(&w.argv), "with"),
    };
    let rerun = match &what {
        ExecRequest::Run(req) => Some(req.clone()),
        ExecRequest::With(_) => None,
    };
    let decided = match what {
        ExecRequest::Run(req) => decide(ctx, peer, req, false).await,
        ExecRequest::With(req) => {
            let (tx, rx) = oneshot::channel();
            let _ = ctx.events.send(Event::DecideWith {
                peer,
                req,
                reply: tx,
            });
            rx.await.ok()
        }
    };
    let Some((mut peer, mut decision)) = decided else {
        return;
    };
    // Step-up authentication, then the same decision again with the peer marked as
    // authenticated (the policy may have changed meanwhile: it decides afresh).
    if let (Decision::Authenticate { profile }, Some(req)) = (&decision, rerun) {
        let profile = profile.clone();
        match step_up(conn, ctx, &peer, &profile, via).await {
            Ok(authenticated) => match decide(ctx, authenticated, req, false).await {
                Some((p, d)) => (peer, decision) = (p, d),
                None => return,
            },
            Err(denied) => {
                let _ = conn.send(&denied).await;
                return;
            }
        }
    }
    let host = &ctx.settings.host.name;
    let plan = match decision {
        Decision::Refuse(e) => {
            ctx.audit.post(
                "run.refused",
                fields(json!({"requester": peer.audit_json(), "host": host, "argv": requested, "cwd": cwd_path, "reason": e.message})),
            );
            let _ = conn.send(&Response::Error(e)).await;
            return;
        }
        Decision::Deny {
            reason,
            hint,
            profile,
        } => {
            tracing::info!(uid = peer.uid, user = %peer.user, "denied: {requested} ({reason})");
            ctx.audit.post(
                "run.denied",
                fields(json!({
                    "requester": peer.audit_json(), "host": host, "argv": requested, "cwd": cwd_path,
                    "profile": profile, "decision": "deny", "reason": reason,
                })),
            );
            let _ = conn.send(&Response::Denied(Denial { reason, hint })).await;
            return;
        }
        Decision::Allow(plan) => plan,
        Decision::Authenticate { profile } => {
            // Only after a step-up that succeeded: should not happen; never run.
            let _ = conn
                .send(&error(
                    ErrorKind::AuthenticationRequired,
                    format!("profile {profile} still requires authentication"),
                ))
                .await;
            return;
        }
    };
    let record = json!({
        "requester": peer.audit_json(), "host": host, "profile": plan.profile, "run_as": plan.run_as,
        "path": plan.path.display().to_string(), "argv": plan.argv, "cwd": cwd_path, "decision": "allow",
        "via": via,
    });
    let exec = match prepare(&plan, [stdin, stdout, stderr], cwd) {
        Ok(e) => e,
        Err(msg) => {
            let mut r = fields(record);
            r.insert("reason".into(), json!(msg));
            ctx.audit.post("run.refused", r);
            let _ = conn.send(&error(ErrorKind::SpawnFailed, msg)).await;
            return;
        }
    };
    // Fail closed: the record that says we ran it is on disk before it runs.
    let seq = match ctx
        .audit
        .write_durable("run.allowed", fields(record.clone()))
        .await
    {
        Ok(seq) => seq,
        Err(e) => {
            tracing::error!(
                "refusing to run for uid {}: audit write failed: {e}",
                peer.uid
            );
            let _ = conn
                .send(&error(
                    ErrorKind::AuditFailed,
                    format!("the audit log cannot be written ({e}); nothing was run"),
                ))
                .await;
            return;
        }
    };
    tracing::info!(uid = peer.uid, user = %peer.user, profile = %plan.profile, "running {:?} as {}", plan.argv, plan.run_as);
    let spawned = match tokio::task::spawn_blocking(move || os::spawn(&exec)).await {
        Ok(Ok(s)) => s,
        Ok(Err((stage, e))) => {
            let what = stage.map_or("cannot start the command", |s| s.describe());
            let msg = format!("{what}: {e}");
            ctx.audit.post(
                "run.exit",
                fields(json!({
                    "requester": peer.audit_json(), "host": host, "profile": plan.profile, "run_as": plan.run_as,
                    "argv": plan.argv, "allowed_seq": seq, "error": msg,
                })),
            );
            let _ = conn.send(&error(ErrorKind::SpawnFailed, msg)).await;
            return;
        }
        Err(e) => {
            let _ = conn
                .send(&error(
                    ErrorKind::Internal,
                    format!("spawn task failed: {e}"),
                ))
                .await;
            return;
        }
    };
    let _ = ctx.events.send(Event::CommandStarted);
    let started = Instant::now();
    let pid = spawned.pid;
    let _ = conn
        .send(&Response::Started(Started {
            pid,
            profile: plan.profile.clone(),
            run_as: plan.run_as.clone(),
            path: plan.path.display().to_string(),
        }))
        .await;
    let (status, ended_by) = supervise(conn, ctx, spawned).await;
    let _ = ctx.events.send(Event::CommandEnded);
    let status_json = match status {
        Some(ChildExit::Code(c)) => json!({"code": c}),
        Some(ChildExit::Signal(s)) => json!({"signal": s}),
        None => json!(null),
    };
    let _ = ctx
        .audit
        .write(
            "run.exit",
            fields(json!({
                "requester": peer.audit_json(), "host": host, "profile": plan.profile, "run_as": plan.run_as,
                "argv": plan.argv, "pid": pid, "allowed_seq": seq, "status": status_json, "ended_by": ended_by,
                "duration_ms": started.elapsed().as_millis() as u64,
            })),
        )
        .await;
    let reply = match status {
        Some(ChildExit::Code(code)) => Response::Exited(ExitStatus::Code { code }),
        Some(ChildExit::Signal(signal)) => Response::Exited(ExitStatus::Signal { signal }),
        None => error(ErrorKind::Internal, "lost track of the command"),
    };
    let _ = conn.send(&reply).await;
}

fn prepare(plan: &Plan, stdio: [OwnedFd; 3], cwd: OwnedFd) -> Result<ExecPlan, String> {
    let cs = |s: &str| {
        CString::new(s)
            .map_err(|_| "arguments and environment may not contain NUL bytes".to_string())
    };
    let exe = if plan.as_caller {
        Exe::Path(cs(&plan.path.display().to_string())?)
    } else {
        let (fd, script) = open_checked_executable(&plan.path)?;
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
        uid: plan.uid,
        gid: plan.gid,
        groups: plan.groups.clone(),
    })
}

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

/// Wait for the command to exit while relaying signals. If the client goes away (or the daemon
/// shuts down), end the whole process group: TERM, then KILL after the grace period.
/// KILLs still due to the process groups of commands whose leader already exited; shutdown
/// waits for them so that no TERM-ignoring member outlives the daemon.
pub static PENDING_GROUP_KILLS: AtomicUsize = AtomicUsize::new(0);

async fn supervise(
    conn: &mut Conn,
    ctx: &Ctx,
    spawned: os::Spawned,
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
    let grace = Duration::from_millis(ctx.settings.limits.kill_grace_ms);
    let mut shutdown = ctx.shutdown.clone();
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
                                // The leader obeyed TERM but members of its group may not
                                // have: the group id stays allocated while any of them
                                // lives, so the KILL after the grace still reaches them.
                                PENDING_GROUP_KILLS.fetch_add(1, Ordering::SeqCst);
                                tokio::spawn(async move {
                                    tokio::time::sleep_until(at).await;
                                    let _ = os::kill_group(pid, libc::SIGKILL);
                                    PENDING_GROUP_KILLS.fetch_sub(1, Ordering::SeqCst);
                                });
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
            frame = conn.read_frame(), if client_open => {
                conn.fds.clear();
                match frame {
                    Ok(Some(payload)) => match frame::decode::<Request>(&payload) {
                        Ok(Request::Signal { signal }) => match forwardable(signal) {
                            Some(sig) => { let _ = os::kill_group(pid, sig); }
                            None => tracing::debug!("ignoring signal {signal} from client"),
                        },
                        _ => tracing::debug!("ignoring unexpected request while a command runs"),
                    },
                    Ok(None) | Err(_) => {
                        client_open = false;
                        tracing::info!("client of pid {pid} went away; terminating its process group");
                        terminate("client_disconnected", &mut ended_by, &mut kill_at);
                    }
                }
            }
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
