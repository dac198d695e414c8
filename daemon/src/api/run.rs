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
    fn argv(&self) -> &[String] {
        match self {
            ExecRequest::Run(r) => &r.argv,
            ExecRequest::With(w) => &w.argv,
        }
    }

    fn via(&self) -> &'static str {
        match self {
            ExecRequest::Run(_) => "run",
            ExecRequest::With(_) => "with",
        }
    }
}

/// Longest argument a refusal or denial record keeps (bytes, cut at a character boundary).
const REFUSED_ARG_MAX: usize = 256;
/// Most bytes of arguments a refusal or denial record keeps in all; later arguments are left out.
const REFUSED_ARGV_MAX: usize = 4096;

/// The argv of a request that did not run, as its record keeps it. Anyone may send refused
/// requests, as often as the rate limit lets them (and be refused more often still): with the
/// whole argv (up to the 64 KiB request size) in each record, one user could fill the log's
/// disk. A cut argv keeps the original's length and hash, so the record still identifies it.
struct RefusedArgv {
    argv: Value,
    /// The whole argv's size and hash, when `argv` is not all of it.
    original: Option<(usize, String)>,
}

impl RefusedArgv {
    fn cut(argv: &[String]) -> RefusedArgv {
        let mut kept = Vec::new();
        let mut total = 0;
        let mut truncated = false;
        for arg in argv {
            let piece = elevate_base::text::cut(arg, REFUSED_ARG_MAX);
            if total + piece.len() > REFUSED_ARGV_MAX {
                truncated = true;
                break;
            }
            truncated |= piece.len() < arg.len();
            total += piece.len();
            kept.push(piece);
        }
        let original = truncated.then(|| {
            // A Vec<String> always serializes; the fallback only keeps this total.
            let whole = serde_json::to_string(argv).unwrap_or_default();
            (
                whole.len(),
                elevate_audit::chain::sha256_hex(whole.as_bytes()),
            )
        });
        RefusedArgv {
            argv: json!(kept),
            original,
        }
    }

    /// `argv_truncated`, `argv_len` (bytes of the whole argv as a compact JSON array) and
    /// `argv_sha256` (of that array) when the argv was cut; nothing otherwise.
    fn cut_fields(&self) -> serde_json::Map<String, Value> {
        match &self.original {
            Some((len, sha)) => fields(json!({
                "argv_truncated": true, "argv_len": len, "argv_sha256": sha,
            })),
            None => serde_json::Map::new(),
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
    /// The argv as a refusal or denial records it: cut to [`RefusedArgv`]'s bounds.
    argv: RefusedArgv,
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
    let Some(got) = receive(conn, &peer, fds).await else {
        return;
    };
    let asked = Asked {
        argv: RefusedArgv::cut(what.argv()),
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

/// Exactly stdin, stdout, stderr and a directory for the working directory, checked as the
/// caller ([`check_stdio`], [`check_cwd`]).
async fn receive(conn: &mut Conn, peer: &Peer, fds: Vec<OwnedFd>) -> Option<Received> {
    let Ok::<[OwnedFd; 4], _>([stdin, stdout, stderr, cwd]) = fds.try_into() else {
        conn.refuse(
            ErrorKind::BadRequest,
            "run needs exactly four descriptors: stdin, stdout, stderr, cwd",
        )
        .await;
        return None;
    };
    let caller = Caller {
        uid: peer.uid.0,
        gid: peer.gid.map(|g| g.0),
        groups: os::peer_groups(conn.socket()).ok(),
    };
    let checked = check_stdio(&[&stdin, &stdout, &stderr]).and_then(|()| check_cwd(&cwd, &caller));
    if let Err(why) = checked {
        conn.refuse(ErrorKind::BadRequest, why).await;
        return None;
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

fn is_opath(fd: &OwnedFd) -> Option<bool> {
    os::status_flags(fd.as_fd())
        .ok()
        .map(|f| f & libc::O_PATH != 0)
}

/// A standard stream is any descriptor the caller opened for I/O (a terminal, a file, a
/// pipe, a socket): the kernel checked the caller's permissions when it was opened, and the
/// command gets no more than that. Not `O_PATH`, which is opened without a permission check
/// on the file: the command could reopen it, as root, through `/proc/self/fd/0`.
fn check_stdio(stdio: &[&OwnedFd; 3]) -> Result<(), &'static str> {
    match stdio.iter().all(|fd| is_opath(fd) == Some(false)) {
        true => Ok(()),
        false => Err("a standard stream descriptor is an O_PATH descriptor: pass one opened for reading or writing"),
    }
}

/// Who passed the descriptors, from the kernel (`SO_PEERCRED`, `SO_PEERGROUPS`).
struct Caller {
    uid: u32,
    gid: Option<u32>,
    /// `None` when the kernel would not say: only a directory anyone may search passes then.
    groups: Option<Vec<u32>>,
}

/// The working directory is a directory the caller may enter. Opened for reading
/// (`O_RDONLY | O_DIRECTORY`, what the client tries first), the kernel checked at open that the
/// caller could read it — not that they may enter it. Opened `O_PATH` (a directory the caller
/// may search but not list, `drwx--x--x`), no permission was checked at all — an `O_PATH`
/// descriptor to `/root` needs only search permission on `/`. Either way the directory's mode
/// must let the caller search it: owner, else group (primary or supplementary), else other,
/// as the kernel decides; an `O_PATH` one with an ACL is refused rather than judged by its
/// mode alone.
fn check_cwd(cwd: &OwnedFd, caller: &Caller) -> Result<(), &'static str> {
    let st = match os::fstat(cwd.as_fd()) {
        Ok(st) if st.st_mode & libc::S_IFMT == libc::S_IFDIR => st,
        _ => return Err("the working-directory descriptor is not a directory"),
    };
    let opath = match is_opath(cwd) {
        Some(o) => o,
        None => return Err("the working-directory descriptor cannot be examined"),
    };
    // Reading a directory is not entering it (`drwxr--r--`): its mode must let the caller
    // search it either way. An ACL the mode bits cannot judge: for a descriptor the kernel
    // let the caller open for reading, trusted; for an O_PATH one, refused.
    let ok = if os::has_access_acl(cwd.as_fd()) {
        !opath
    } else {
        may_search(st.st_uid, st.st_gid, st.st_mode, caller)
    };
    if ok {
        Ok(())
    } else {
        Err("you may not enter the working directory you passed: change to a directory you may enter")
    }
}

/// Search permission by the mode bits, the way the kernel picks the class: the owner's bits
/// for the owner (even when other bits would allow), else the group's for a member, else
/// other's. Root's own descriptors need no check.
fn may_search(owner: u32, group: u32, mode: u32, caller: &Caller) -> bool {
    if caller.uid == 0 {
        return true;
    }
    if owner == caller.uid {
        return mode & libc::S_IXUSR != 0;
    }
    let member =
        caller.gid == Some(group) || caller.groups.as_ref().is_some_and(|g| g.contains(&group));
    let unsure = caller.groups.is_none() && mode & libc::S_IXGRP == 0;
    match (member, unsure) {
        (true, _) => mode & libc::S_IXGRP != 0,
        // Not knowing the groups, a member might be shut out by the group bits.
        (false, true) => false,
        (false, false) => mode & libc::S_IXOTH != 0,
    }
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
    let (requested, cwd) = (&asked.argv.argv, &asked.cwd_path);
    match decision {
        Decision::Allow(plan) => Some(plan),
        Decision::Refuse(e) => {
            let mut record = fields(
                json!({"requester": peer.audit_json(), "host": host, "argv": requested, "cwd": cwd, "reason": e.message}),
            );
            record.extend(asked.argv.cut_fields());
            let kind = serde_json::to_value(e.kind).ok();
            let kind = kind.as_ref().and_then(Value::as_str).unwrap_or("refused");
            ctx.audit
                .post_refusal(peer.uid, AuditEvent::RunRefused, kind, record);
            let _ = conn.send(&Response::Error(e)).await;
            None
        }
        Decision::Deny {
            reason,
            hint,
            profile,
        } => {
            tracing::info!(uid = %peer.uid, user = %peer.user, "denied: {requested} ({reason})");
            let mut record = fields(json!({
                "requester": peer.audit_json(), "host": host, "argv": requested, "cwd": cwd,
                "profile": profile, "decision": "deny", "reason": reason,
            }));
            record.extend(asked.argv.cut_fields());
            ctx.audit
                .post_refusal(peer.uid, AuditEvent::RunDenied, "denied", record);
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

#[cfg(test)]
mod tests {
    use super::*;

    fn caller(uid: u32, gid: u32, groups: &[u32]) -> Caller {
        Caller {
            uid,
            gid: Some(gid),
            groups: Some(groups.to_vec()),
        }
    }

    #[test]
    fn refused_argv_is_cut_and_identified() {
        let short = RefusedArgv::cut(&["/bin/true".into(), "x".into()]);
        assert_eq!(short.argv, json!(["/bin/true", "x"]));
        assert!(short.cut_fields().is_empty(), "a short argv is kept whole");

        let long: Vec<String> = vec!["/bin/echo".into(), "é".repeat(60_000)];
        let cut = RefusedArgv::cut(&long);
        let kept = cut.argv.as_array().unwrap();
        assert_eq!(kept[0], "/bin/echo");
        let arg = kept[1].as_str().unwrap();
        assert!(arg.len() <= REFUSED_ARG_MAX && arg.len() >= REFUSED_ARG_MAX - 1);
        let whole = serde_json::to_string(&long).unwrap();
        let f = cut.cut_fields();
        assert_eq!(f["argv_truncated"], true);
        assert_eq!(f["argv_len"], whole.len());
        assert_eq!(
            f["argv_sha256"],
            elevate_audit::chain::sha256_hex(whole.as_bytes())
        );

        let many: Vec<String> = (0..1000).map(|i| format!("arg{i:04}")).collect();
        let cut = RefusedArgv::cut(&many);
        let total: usize = cut
            .argv
            .as_array()
            .unwrap()
            .iter()
            .map(|a| a.as_str().unwrap().len())
            .sum();
        assert!(total <= REFUSED_ARGV_MAX && total > REFUSED_ARGV_MAX - 8);
        assert_eq!(cut.cut_fields()["argv_truncated"], true);
    }

    #[test]
    fn search_permission_is_decided_by_the_class_the_kernel_picks() {
        let bob = caller(1001, 1001, &[27]);
        // /root, 0700 root:root: not bob's to enter.
        assert!(!may_search(0, 0, 0o40700, &bob));
        // A home directory one may only search (0711).
        assert!(may_search(1000, 1000, 0o40711, &bob));
        // Group through a supplementary group; owner bits count for the owner alone.
        assert!(may_search(0, 27, 0o40710, &bob));
        assert!(!may_search(0, 27, 0o40701, &bob));
        assert!(!may_search(1001, 1001, 0o40077, &bob));
        assert!(may_search(0, 0, 0o40700, &caller(0, 0, &[])));
        // Without the kernel's group list, only what no group bit could shut out passes.
        let unknown = Caller {
            groups: None,
            ..caller(1001, 1001, &[])
        };
        assert!(may_search(0, 0, 0o40711, &unknown));
        assert!(!may_search(0, 27, 0o40701, &unknown));
    }

    #[test]
    fn o_path_descriptors_are_told_apart() {
        let open = |flags| {
            use std::os::unix::fs::OpenOptionsExt;
            let f = std::fs::OpenOptions::new()
                .read(true)
                .custom_flags(flags)
                .open("/");
            f.map(OwnedFd::from)
        };
        let (plain, opath) = (open(0).unwrap(), open(libc::O_PATH).unwrap());
        assert_eq!(is_opath(&plain), Some(false));
        assert_eq!(is_opath(&opath), Some(true));
        assert!(check_stdio(&[&plain, &plain, &opath]).is_err());
        assert!(check_stdio(&[&plain, &plain, &plain]).is_ok());
        let me = caller(0, 0, &[]);
        assert!(check_cwd(&plain, &me).is_ok() && check_cwd(&opath, &me).is_ok());
        let nobody = caller(65534, 65534, &[]);
        assert!(check_cwd(&opath, &nobody).is_ok(), "/ is 0755");
    }

    /// A directory the caller may list but not enter (`drwxr--r--`, not theirs), opened for
    /// reading: the kernel let them open it, but they may not work in it.
    #[test]
    fn a_readable_directory_the_caller_may_not_enter_is_refused() {
        use std::os::unix::fs::PermissionsExt;
        let dir = std::env::temp_dir().join(format!("elevate-cwd-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o744)).unwrap();
        let fd = OwnedFd::from(std::fs::File::open(&dir).unwrap());
        let owner = std::fs::metadata(&dir).map(|m| std::os::unix::fs::MetadataExt::uid(&m));
        let stranger = caller(owner.unwrap() + 4242, 4242, &[]);
        assert!(check_cwd(&fd, &stranger).is_err());
        std::fs::remove_dir(&dir).unwrap();
    }
}
