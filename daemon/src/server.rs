//! Start-up, the listening socket, signals and shutdown.

use crate::api::{socket, Ctx};
use crate::core::{Core, World};
use crate::effects::accounts::Nss;
use crate::effects::audit::{fields, AuditEvent, AuditHandle};
use crate::effects::clock::SystemClock;
use crate::effects::policy_files::PolicyDir;
use crate::effects::procs::Proc;
use crate::effects::wall::Pts;
use crate::exec::supervise::PENDING_GROUP_KILLS;
use crate::lease::journal::Journal;
use crate::login::sessions::SessionBook;
use crate::settings::Settings;
use crate::systemd;
use elevate_audit::AuditLog;
use elevate_groupdb::GroupDb;
use elevate_policy::{LoadOptions, RealSystem, Severity};
use elevate_proto::Response;
use serde_json::json;
use std::os::unix::fs::{FileTypeExt, MetadataExt, PermissionsExt};
use std::path::Path;
use std::process::ExitCode;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;
use tokio::net::UnixListener;
use tokio::signal::unix::{signal, SignalKind};
use tokio::sync::{broadcast, watch};

/// `elevated --check`: validate the policy as the daemon would and say what is wrong.
pub fn check(settings: &Settings) -> ExitCode {
    let outcome = elevate_policy::load_dir(
        &settings.policy_dir,
        &LoadOptions {
            check_permissions: true,
        },
        &RealSystem,
    );
    for d in &outcome.diagnostics {
        eprintln!("{d}");
    }
    match outcome.policy {
        Some(p) => {
            println!(
                "policy OK: {} profiles in {} files",
                p.profiles.len(),
                p.files.len()
            );
            ExitCode::SUCCESS
        }
        None => {
            let n = outcome
                .diagnostics
                .iter()
                .filter(|d| d.severity == Severity::Error)
                .count();
            println!("policy INVALID: {n} errors");
            ExitCode::from(1)
        }
    }
}

/// Serve until SIGTERM/SIGINT. `activated`: the socket systemd passed (elevated.socket);
/// otherwise the daemon creates its own.
pub async fn run(
    settings: Settings,
    activated: Option<std::os::unix::net::UnixListener>,
) -> Result<(), String> {
    let settings = Arc::new(settings);
    std::fs::create_dir_all(&settings.state_dir)
        .and_then(|_| {
            std::fs::set_permissions(&settings.state_dir, std::fs::Permissions::from_mode(0o700))
        })
        .map_err(|e| format!("state dir {}: {e}", settings.state_dir.display()))?;
    let mut log = AuditLog::options()
        .anchor(settings.state_dir.join(elevate_audit::ANCHOR_FILE))
        .open(&settings.audit_log)
        .map_err(|e| format!("audit log {}: {e}", settings.audit_log.display()))?;
    // A damaged tail or an anchor ahead of the log (crash, power loss, tampering) is recorded
    // in the chain itself before anything else happens.
    if let Some(r) = log.recovery().filter(|r| r.needs_attention()) {
        tracing::warn!("audit log: {}", r.describe());
        let entries: Vec<_> = r.to_entry().into_iter().collect();
        log.append(&entries, true)
            .map_err(|e| format!("audit log {}: {e}", settings.audit_log.display()))?;
    }
    let audit =
        AuditHandle::start(log).map_err(|e| format!("cannot start the audit writer: {e}"))?;
    // 1024 announcements of slack for a slow bus; with no bus nobody subscribes.
    let (bus, _) = broadcast::channel(1024);
    let (mut core, handle) = Core::new(
        Arc::clone(&settings),
        real_world(&settings, &audit)?,
        bus.clone(),
    );
    audit
        .write_durable(
            AuditEvent::DaemonStart,
            fields(json!({
                "host": settings.host.name, "version": env!("CARGO_PKG_VERSION"), "pid": std::process::id(),
                "policy_digest": core.policy_digest(),
            })),
        )
        .await
        .map_err(|e| format!("audit log {}: {e}", settings.audit_log.display()))?;

    // Leases that fell due while we were down end before anyone is served.
    core.start().await;
    crate::os::trim_heap();
    let owns_socket = activated.is_none();
    let listener = match activated {
        Some(l) => UnixListener::from_std(l).map_err(|e| format!("activated socket: {e}"))?,
        None => bind(&settings.socket)?,
    };
    tokio::spawn(core.run());
    let (shutdown_tx, shutdown) = watch::channel(false);
    tokio::spawn(crate::api::dbus::serve(
        handle.clone(),
        bus,
        shutdown.clone(),
    ));
    systemd::notify("READY=1");
    let mut hup = signal(SignalKind::hangup()).map_err(|e| e.to_string())?;
    let mut term = signal(SignalKind::terminate()).map_err(|e| e.to_string())?;
    let mut int = signal(SignalKind::interrupt()).map_err(|e| e.to_string())?;
    tracing::info!(
        "elevated {} listening on {}",
        env!("CARGO_PKG_VERSION"),
        settings.socket.display()
    );

    loop {
        tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => {
                    let ctx = Ctx {
                        core: handle.clone(),
                        audit: audit.clone(),
                        settings: Arc::clone(&settings),
                        shutdown: shutdown.clone(),
                    };
                    tokio::spawn(socket::serve(stream, ctx));
                }
                Err(e) => {
                    // EMFILE and friends: back off instead of spinning.
                    tracing::warn!("accept: {e}");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
            },
            _ = hup.recv() => {
                tracing::info!("SIGHUP: reloading policy");
                systemd::reloading();
                let core = handle.clone();
                tokio::spawn(async move {
                    let _ = core.reload().await;
                    systemd::notify("READY=1");
                });
            }
            _ = term.recv() => break,
            _ = int.recv() => break,
        }
    }

    tracing::info!("shutting down");
    systemd::notify("STOPPING=1");
    drop(listener);
    // An activated socket is systemd's: it stays, and the next connection starts us again.
    if owns_socket {
        let _ = std::fs::remove_file(&settings.socket);
    }
    let _ = shutdown_tx.send(true);
    // Running commands get TERM, then KILL after the grace period; wait for them to be reaped.
    let deadline =
        tokio::time::Instant::now() + Duration::from_millis(settings.limits.kill_grace_ms + 1000);
    while tokio::time::Instant::now() < deadline {
        match handle.status().await {
            Ok(Response::Status(s))
                if s.running_commands > 0 || PENDING_GROUP_KILLS.load(Ordering::SeqCst) > 0 =>
            {
                tokio::time::sleep(Duration::from_millis(50)).await
            }
            _ => break,
        }
    }
    let _ = audit
        .write_durable(
            AuditEvent::DaemonStop,
            fields(json!({"host": settings.host.name, "pid": std::process::id()})),
        )
        .await;
    Ok(())
}

/// Create the socket: its directory root-owned and not writable by others (so nobody can swap
/// the socket), a stale socket replaced, a live daemon never displaced.
/// The seams over the real machine.
fn real_world(settings: &Settings, audit: &AuditHandle) -> Result<World, String> {
    let procs = Arc::new(Proc);
    let (journal, leases) = Journal::open(&settings.state_dir)
        .map_err(|e| format!("lease journal in {}: {e}", settings.state_dir.display()))?;
    let sessions = SessionBook::open(&settings.state_dir, procs.as_ref())
        .map_err(|e| format!("login sessions in {}: {e}", settings.state_dir.display()))?;
    Ok(World {
        clock: Arc::new(SystemClock),
        accounts: Box::new(Nss),
        groups: Box::new(GroupDb::system()),
        procs,
        audit: Arc::new(audit.clone()),
        policy: Box::new(PolicyDir(settings.policy_dir.clone())),
        terminals: Box::new(Pts),
        journal: Box::new(journal),
        leases,
        sessions,
    })
}

fn bind(path: &Path) -> Result<UnixListener, String> {
    let shown = path.display();
    let dir = path
        .parent()
        .ok_or_else(|| format!("{shown}: no parent directory"))?;
    if !dir.exists() {
        std::fs::create_dir_all(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
        std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o755))
            .map_err(|e| format!("{}: {e}", dir.display()))?;
    }
    let meta = std::fs::metadata(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    if meta.uid() != 0 || meta.mode() & 0o022 != 0 {
        return Err(format!(
            "{}: socket directory must be owned by root and not writable by group or others",
            dir.display()
        ));
    }
    match std::fs::symlink_metadata(path) {
        Ok(m) if m.file_type().is_socket() => {
            if std::os::unix::net::UnixStream::connect(path).is_ok() {
                return Err(format!("{shown}: another elevated is already running"));
            }
            std::fs::remove_file(path).map_err(|e| format!("{shown}: {e}"))?;
        }
        Ok(_) => {
            return Err(format!(
                "{shown}: exists and is not a socket; refusing to replace it"
            ))
        }
        Err(_) => {}
    }
    let listener = UnixListener::bind(path).map_err(|e| format!("{shown}: {e}"))?;
    // Any local user may ask; the daemon decides who gets what.
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o666))
        .map_err(|e| format!("{shown}: {e}"))?;
    Ok(listener)
}
