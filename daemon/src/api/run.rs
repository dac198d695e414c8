//! The run path on the socket: `run` and `with`. Receive the four descriptors, ask the core,
//! pass step-up if the profile wants it, audit the decision (the allowed record durably,
//! before anything runs), spawn, supervise until the command exits, and report its status.

use super::step_up::step_up;
use super::transport::{error, Conn};
use super::Ctx;
use crate::core::{Decision, Plan};
use crate::effects::audit::{fields, AuditEvent};
use crate::exec::spawn::prepare;
use crate::exec::supervise::supervise;
use crate::os::{self, ChildExit, Spawned};
use crate::peer::Peer;
use elevate_proto::{Denial, ErrorKind, ExitStatus, Response, RunRequest, Started, WithRequest};
use serde_json::{json, Value};
use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::time::{Duration, Instant};

/// What a connection asked to execute.
pub enum ExecRequest {
    /// A policy-allowed command run as the profile's run_as user.
    Run(RunRequest),
    /// The caller's own command with a lease's groups added.
    With(WithRequest),
}

impl ExecRequest {
    fn argv(&self) -> Value {
        match self {
            ExecRequest::Run(r) => json!(r.argv),
            ExecRequest::With(w) => json!(w.argv),
        }
    }

    fn via(&self) -> &'static str {
        match self {
            ExecRequest::Run(_) => "run",
            ExecRequest::With(_) => "with",
        }
    }
}

/// The client's standard streams and working directory.
struct Received {
    stdio: [OwnedFd; 3],
    cwd: OwnedFd,
    cwd_path: String,
}

/// Who asked for what, from where: the part of every run record that the request fixes.
struct Asked {
    argv: Value,
    via: &'static str,
    cwd_path: String,
}

pub async fn handle_run(
    conn: &mut Conn,
    ctx: &Ctx,
    peer: Peer,
    what: ExecRequest,
    fds: Vec<OwnedFd>,
) {
    let Some(got) = receive(conn, fds).await else {
        return;
    };
    let asked = Asked {
        argv: what.argv(),
        via: what.via(),
        cwd_path: got.cwd_path.clone(),
    };
    let Some((peer, decision)) = decide(conn, ctx, peer, what).await else {
        return;
    };
    let Some(plan) = allowed(conn, ctx, &peer, &asked, decision).await else {
        return;
    };
    run(conn, ctx, &peer, &asked, &plan, got).await;
}

/// Exactly stdin, stdout, stderr and a directory for the working directory.
async fn receive(conn: &mut Conn, fds: Vec<OwnedFd>) -> Option<Received> {
    let Ok::<[OwnedFd; 4], _>([stdin, stdout, stderr, cwd]) = fds.try_into() else {
        conn.refuse(
            ErrorKind::BadRequest,
            "run needs exactly four descriptors: stdin, stdout, stderr, cwd",
        )
        .await;
        return None;
    };
    match os::fstat(cwd.as_fd()) {
        Ok(st) if st.st_mode & libc::S_IFMT == libc::S_IFDIR => {}
        _ => {
            conn.refuse(
                ErrorKind::BadRequest,
                "the working-directory descriptor is not a directory",
            )
            .await;
            return None;
        }
    }
    let cwd_path = std::fs::read_link(format!("/proc/self/fd/{}", cwd.as_raw_fd()))
        .map(|p| p.display().to_string())
        .unwrap_or_default();
    Some(Received {
        stdio: [stdin, stdout, stderr],
        cwd,
        cwd_path,
    })
}

/// The core's decision; for a profile that wants step-up, authenticate and decide again with
/// the peer marked as authenticated (the policy may have changed meanwhile: it decides
/// afresh). `None`: nothing more to say on this connection (the core is gone, or the
/// step-up was refused and the client told so).
async fn decide(
    conn: &mut Conn,
    ctx: &Ctx,
    peer: Peer,
    what: ExecRequest,
) -> Option<(Peer, Decision)> {
    let req = match what {
        ExecRequest::Run(req) => req,
        ExecRequest::With(req) => return ctx.core.decide_with(peer, req).await.ok(),
    };
    let (peer, decision) = ctx.core.decide(peer, req.clone(), false).await.ok()?;
    let Decision::Authenticate { profile } = &decision else {
        return Some((peer, decision));
    };
    match step_up(conn, ctx, &peer, profile, "run").await {
        Ok(authenticated) => ctx.core.decide(authenticated, req, false).await.ok(),
        Err(denied) => {
            let _ = conn.send(&denied).await;
            None
        }
    }
}

/// The plan of an allowed decision; anything else is audited and answered here.
async fn allowed(
    conn: &mut Conn,
    ctx: &Ctx,
    peer: &Peer,
    asked: &Asked,
    decision: Decision,
) -> Option<Box<Plan>> {
    let host = &ctx.settings.host.name;
    let (requested, cwd) = (&asked.argv, &asked.cwd_path);
    match decision {
        Decision::Allow(plan) => Some(plan),
        Decision::Refuse(e) => {
            ctx.audit.post(
                AuditEvent::RunRefused,
                fields(json!({"requester": peer.audit_json(), "host": host, "argv": requested, "cwd": cwd, "reason": e.message})),
            );
            let _ = conn.send(&Response::Error(e)).await;
            None
        }
        Decision::Deny {
            reason,
            hint,
            profile,
        } => {
            tracing::info!(uid = %peer.uid, user = %peer.user, "denied: {requested} ({reason})");
            ctx.audit.post(
                AuditEvent::RunDenied,
                fields(json!({
                    "requester": peer.audit_json(), "host": host, "argv": requested, "cwd": cwd,
                    "profile": profile, "decision": "deny", "reason": reason,
                })),
            );
            let _ = conn.send(&Response::Denied(Denial { reason, hint })).await;
            None
        }
        Decision::Authenticate { profile } => {
            // Only after a step-up that succeeded: should not happen; never run.
            conn.refuse(
                ErrorKind::AuthenticationRequired,
                format!("profile {profile} still requires authentication"),
            )
            .await;
            None
        }
    }
}

/// Prepare, audit durably, spawn, supervise, report.
async fn run(conn: &mut Conn, ctx: &Ctx, peer: &Peer, asked: &Asked, plan: &Plan, got: Received) {
    let host = &ctx.settings.host.name;
    let record = json!({
        "requester": peer.audit_json(), "host": host, "profile": plan.profile, "run_as": plan.run_as,
        "path": plan.path.display().to_string(), "argv": plan.argv, "cwd": asked.cwd_path, "decision": "allow",
        "via": asked.via,
    });
    let exec = match prepare(plan, got.stdio, got.cwd) {
        Ok(e) => e,
        Err(e) => {
            let msg = e.to_string();
            let mut r = fields(record);
            r.insert("reason".into(), json!(msg));
            ctx.audit.post(AuditEvent::RunRefused, r);
            conn.refuse(ErrorKind::SpawnFailed, msg).await;
            return;
        }
    };
    // Fail closed: the record that says we ran it is on disk before it runs.
    let seq = match ctx
        .audit
        .write_durable(AuditEvent::RunAllowed, fields(record))
        .await
    {
        Ok(seq) => seq,
        Err(e) => {
            tracing::error!(
                "refusing to run for uid {}: audit write failed: {e}",
                peer.uid
            );
            let msg = format!("the audit log cannot be written ({e}); nothing was run");
            conn.refuse(ErrorKind::AuditFailed, msg).await;
            return;
        }
    };
    tracing::info!(uid = %peer.uid, user = %peer.user, profile = %plan.profile, "running {:?} as {}", plan.argv, plan.run_as);
    let exit_record = |extra: Value| {
        let mut r = fields(json!({
            "requester": peer.audit_json(), "host": host, "profile": plan.profile, "run_as": plan.run_as,
            "argv": plan.argv, "allowed_seq": seq,
        }));
        r.extend(fields(extra));
        r
    };
    let spawned = match tokio::task::spawn_blocking(move || os::spawn(&exec)).await {
        Ok(Ok(s)) => s,
        Ok(Err((stage, e))) => {
            let what = stage.map_or("cannot start the command", |s| s.describe());
            let msg = format!("{what}: {e}");
            ctx.audit
                .post(AuditEvent::RunExit, exit_record(json!({"error": msg})));
            conn.refuse(ErrorKind::SpawnFailed, msg).await;
            return;
        }
        Err(e) => {
            conn.refuse(ErrorKind::Internal, format!("spawn task failed: {e}"))
                .await;
            return;
        }
    };
    let (status, ended_by, pid, took) = watch(conn, ctx, plan, spawned).await;
    let status_json = match status {
        Some(ChildExit::Code(c)) => json!({"code": c}),
        Some(ChildExit::Signal(s)) => json!({"signal": s}),
        None => json!(null),
    };
    let took_ms = u64::try_from(took.as_millis()).unwrap_or(u64::MAX);
    let extra =
        json!({"pid": pid, "status": status_json, "ended_by": ended_by, "duration_ms": took_ms});
    let _ = ctx
        .audit
        .write(AuditEvent::RunExit, exit_record(extra))
        .await;
    let reply = match status {
        Some(ChildExit::Code(code)) => Response::Exited(ExitStatus::Code { code }),
        Some(ChildExit::Signal(signal)) => Response::Exited(ExitStatus::Signal { signal }),
        None => error(ErrorKind::Internal, "lost track of the command"),
    };
    let _ = conn.send(&reply).await;
}

/// Tell the client it started, then supervise it (counted as running meanwhile).
async fn watch(
    conn: &mut Conn,
    ctx: &Ctx,
    plan: &Plan,
    spawned: Spawned,
) -> (Option<ChildExit>, &'static str, i32, Duration) {
    let running = ctx.core.command_started().await;
    let started = Instant::now();
    let pid = spawned.pid;
    let _ = conn
        .send(&Response::Started(Started {
            pid: elevate_base::Pid(pid),
            profile: plan.profile.clone(),
            run_as: plan.run_as.clone(),
            path: plan.path.display().to_string(),
        }))
        .await;
    let grace = Duration::from_millis(ctx.settings.limits.kill_grace_ms);
    let (status, ended_by) = supervise(conn, spawned, grace, ctx.shutdown.clone()).await;
    drop(running);
    (status, ended_by, pid, started.elapsed())
}
