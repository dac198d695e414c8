//! Start-up, the listening socket, signals and shutdown.

use crate::api::{socket, Ctx};
use crate::core::{Core, Handle, World};
use crate::effects::accounts::Nss;
use crate::effects::audit::{fields, AuditEvent, AuditHandle};
use crate::effects::audit_history::AuditFile;
use crate::effects::clock::SystemClock;
use crate::effects::groups::{GroupDatabase, GroupEditor, LOCK_WAIT};
use crate::effects::policy_files::{PolicyDir, PolicySource};
use crate::effects::procs::Proc;
use crate::effects::setgid::Sweeper;
use crate::effects::wall::Pts;
use crate::exec::supervise::PENDING_GROUP_KILLS;
use crate::lease::journal::Journal;
use crate::login::sessions::SessionBook;
use crate::os::setgid::Bounds;
use crate::settings::Settings;
use crate::systemd;
use elevate_audit::AuditLog;
use elevate_groupdb::GroupDb;
use elevate_policy::Severity;
use elevate_proto::Response;
use serde_json::json;
use std::fmt;
use std::io;
use std::os::unix::fs::{FileTypeExt, MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;
use tokio::net::UnixListener;
use tokio::signal::unix::{signal, SignalKind};
use tokio::sync::{broadcast, watch};

/// `elevated --check`: validate the policy as the daemon would and say what is wrong.
pub fn check(settings: &Settings) -> ExitCode {
    let outcome = PolicyDir(settings.policy_dir.clone()).load();
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

/// Why the daemon could not start.
#[derive(Debug)]
pub enum StartError {
    StateDir(PathBuf, io::Error),
    AuditLog(PathBuf, String),
    AuditWriter(io::Error),
    GroupEditor(io::Error),
    Sweeper(io::Error),
    Journal(PathBuf, io::Error),
    Sessions(PathBuf, io::Error),
    ActivatedSocket(io::Error),
    Socket(SocketError),
    Signals(io::Error),
}

impl fmt::Display for StartError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            StartError::StateDir(p, e) => write!(f, "state dir {}: {e}", p.display()),
            StartError::AuditLog(p, e) => write!(f, "audit log {}: {e}", p.display()),
            StartError::AuditWriter(e) => write!(f, "cannot start the audit writer: {e}"),
            StartError::GroupEditor(e) => write!(f, "cannot start the group editor: {e}"),
            StartError::Sweeper(e) => write!(f, "cannot start the set-gid sweeper: {e}"),
            StartError::Journal(p, e) => write!(f, "lease journal in {}: {e}", p.display()),
            StartError::Sessions(p, e) => write!(f, "login sessions in {}: {e}", p.display()),
            StartError::ActivatedSocket(e) => write!(f, "activated socket: {e}"),
            StartError::Socket(e) => write!(f, "{e}"),
            StartError::Signals(e) => write!(f, "{e}"),
        }
    }
}

/// What the accept loop hands every connection, and what shutdown needs.
struct Serving {
    settings: Arc<Settings>,
    core: Handle,
    audit: AuditHandle,
    shutdown: watch::Receiver<bool>,
}

/// Serve until SIGTERM/SIGINT. `activated`: the socket systemd passed (elevated.socket);
/// otherwise the daemon creates its own.
pub async fn run(
    settings: Settings,
    activated: Option<std::os::unix::net::UnixListener>,
) -> Result<(), StartError> {
    let settings = Arc::new(settings);
    let state_dir = &settings.state_dir;
    std::fs::create_dir_all(state_dir)
        .and_then(|_| std::fs::set_permissions(state_dir, std::fs::Permissions::from_mode(0o700)))
        .map_err(|e| StartError::StateDir(state_dir.clone(), e))?;
    let audit = open_audit(&settings)?;
    // 1024 announcements of slack for a slow bus; with no bus nobody subscribes.
    let (bus, _) = broadcast::channel(1024);
    let world = real_world(&settings, &audit)?;
    let (mut core, handle) = Core::new(Arc::clone(&settings), world, bus.clone());
    core.attach_sweeper(|report| Ok(Box::new(Sweeper::start(Bounds::default(), report)?)))
        .map_err(StartError::Sweeper)?;
    let start = json!({
        "host": settings.host.name, "version": env!("CARGO_PKG_VERSION"), "pid": std::process::id(),
        "policy_digest": core.policy_digest(),
    });
    audit
        .write_durable(AuditEvent::DaemonStart, fields(start))
        .await
        .map_err(|e| StartError::AuditLog(settings.audit_log.clone(), e.to_string()))?;
    // Leases that fell due while we were down end before anyone is served.
    core.start().await;
    crate::os::trim_heap();
    let owns_socket = activated.is_none();
    let listener = match activated {
        Some(l) => UnixListener::from_std(l).map_err(StartError::ActivatedSocket)?,
        None => bind(&settings.socket).map_err(StartError::Socket)?,
    };
    tokio::spawn(core.run());
    let (shutdown_tx, shutdown) = watch::channel(false);
    tokio::spawn(crate::api::dbus::serve(
        handle.clone(),
        bus,
        shutdown.clone(),
    ));
    let serving = Serving {
        settings,
        core: handle,
        audit,
        shutdown,
    };
    accept_until_stopped(&listener, &serving).await?;
    tracing::info!("shutting down");
    systemd::notify("STOPPING=1");
    drop(listener);
    // An activated socket is systemd's: it stays, and the next connection starts us again.
    if owns_socket {
        let _ = std::fs::remove_file(&serving.settings.socket);
    }
    let _ = shutdown_tx.send(true);
    stop(&serving).await;
    Ok(())
}

/// The audit log, opened and recovered, behind its writer thread. A damaged tail or an
/// anchor ahead of the log (crash, power loss, tampering) is recorded in the chain itself
/// before anything else happens.
fn open_audit(settings: &Settings) -> Result<AuditHandle, StartError> {
    let path = &settings.audit_log;
    let failed = |e: &dyn fmt::Display| StartError::AuditLog(path.clone(), e.to_string());
    let mut log = AuditLog::options()
        .anchor(settings.state_dir.join(elevate_audit::ANCHOR_FILE))
        .open(path)
        .map_err(|e| failed(&e))?;
    if let Some(r) = log.recovery().filter(|r| r.needs_attention()) {
        tracing::warn!("audit log: {}", r.describe());
        let entries: Vec<_> = r.to_entry().into_iter().collect();
        log.append(&entries, true).map_err(|e| failed(&e))?;
    }
    AuditHandle::start(log).map_err(StartError::AuditWriter)
}

/// Accept connections and handle SIGHUP until SIGTERM or SIGINT.
async fn accept_until_stopped(listener: &UnixListener, s: &Serving) -> Result<(), StartError> {
    let mut hup = signal(SignalKind::hangup()).map_err(StartError::Signals)?;
    let mut term = signal(SignalKind::terminate()).map_err(StartError::Signals)?;
    let mut int = signal(SignalKind::interrupt()).map_err(StartError::Signals)?;
    systemd::notify("READY=1");
    let version = env!("CARGO_PKG_VERSION");
    tracing::info!(
        "elevated {version} listening on {}",
        s.settings.socket.display()
    );
    loop {
        tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => {
                    let ctx = Ctx {
                        core: s.core.clone(),
                        audit: s.audit.clone(),
                        settings: Arc::clone(&s.settings),
                        shutdown: s.shutdown.clone(),
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
                let core = s.core.clone();
                tokio::spawn(async move {
                    let _ = core.reload().await;
                    systemd::notify("READY=1");
                });
            }
            _ = term.recv() => return Ok(()),
            _ = int.recv() => return Ok(()),
        }
    }
}

/// Running commands get TERM, then KILL after the grace period; wait for them to be reaped
/// (and for group edits in flight, in the same bound: one left unfinished is redone at the
/// next start, from the journal), then say so in the audit log.
async fn stop(s: &Serving) {
    let grace = Duration::from_millis(s.settings.limits.kill_grace_ms + 1000);
    let deadline = tokio::time::Instant::now() + grace;
    while tokio::time::Instant::now() < deadline {
        match s.core.status().await {
            Ok(Response::Status(st))
                if st.running_commands > 0
                    || st.group_edits_pending > 0
                    || PENDING_GROUP_KILLS.load(Ordering::SeqCst) > 0 =>
            {
                tokio::time::sleep(Duration::from_millis(50)).await
            }
            _ => break,
        }
    }
    let stop = json!({"host": s.settings.host.name, "pid": std::process::id()});
    let _ = s
        .audit
        .write_durable(AuditEvent::DaemonStop, fields(stop))
        .await;
}

/// The seams over the real machine.
fn real_world(settings: &Settings, audit: &AuditHandle) -> Result<World, StartError> {
    let dir = &settings.state_dir;
    let procs = Arc::new(Proc);
    let groups: Arc<dyn GroupDatabase> = Arc::new(GroupDb::system().with_lock_timeout(LOCK_WAIT));
    let (journal, leases) = Journal::open(dir).map_err(|e| StartError::Journal(dir.clone(), e))?;
    let sessions =
        SessionBook::open(dir, procs.as_ref()).map_err(|e| StartError::Sessions(dir.clone(), e))?;
    let mut damage = journal.damage().to_vec();
    let journal_damaged = journal.lost_records();
    damage.extend(sessions.damage.clone());
    Ok(World {
        damage,
        journal_damaged,
        clock: Arc::new(SystemClock::new()),
        accounts: Box::new(Nss),
        groups: Arc::clone(&groups),
        editor: GroupEditor::start(groups).map_err(StartError::GroupEditor)?,
        procs,
        audit: Arc::new(audit.clone()),
        audit_history: Box::new(AuditFile(settings.audit_log.clone())),
        policy: Box::new(PolicyDir(settings.policy_dir.clone())),
        terminals: Box::new(Pts),
        journal: Box::new(journal),
        leases,
        sessions,
    })
}

/// Create the socket: its directory root-owned and not writable by others (so nobody can swap
/// the socket), a stale socket replaced, a live daemon never displaced.
fn bind(path: &Path) -> Result<UnixListener, SocketError> {
    let at = |e: io::Error| SocketError::Io(path.to_path_buf(), e);
    let dir = path
        .parent()
        .ok_or_else(|| SocketError::NoParent(path.to_path_buf()))?;
    let dir_err = |e: io::Error| SocketError::Io(dir.to_path_buf(), e);
    if !dir.exists() {
        std::fs::create_dir_all(dir).map_err(dir_err)?;
        std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o755)).map_err(dir_err)?;
    }
    let meta = std::fs::metadata(dir).map_err(dir_err)?;
    if meta.uid() != 0 || meta.mode() & 0o022 != 0 {
        return Err(SocketError::UnsafeDir(dir.to_path_buf()));
    }
    match std::fs::symlink_metadata(path) {
        Ok(m) if m.file_type().is_socket() => {
            if std::os::unix::net::UnixStream::connect(path).is_ok() {
                return Err(SocketError::Running(path.to_path_buf()));
            }
            std::fs::remove_file(path).map_err(at)?;
        }
        Ok(_) => return Err(SocketError::NotSocket(path.to_path_buf())),
        Err(_) => {}
    }
    let listener = UnixListener::bind(path).map_err(at)?;
    // Any local user may ask; the daemon decides who gets what.
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o666)).map_err(at)?;
    Ok(listener)
}

/// Why the socket could not be created.
#[derive(Debug)]
pub enum SocketError {
    NoParent(PathBuf),
    UnsafeDir(PathBuf),
    Running(PathBuf),
    NotSocket(PathBuf),
    Io(PathBuf, io::Error),
}

impl fmt::Display for SocketError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SocketError::NoParent(p) => write!(f, "{}: no parent directory", p.display()),
            SocketError::UnsafeDir(d) => write!(
                f,
                "{}: socket directory must be owned by root and not writable by group or others",
                d.display()
            ),
            SocketError::Running(p) => {
                write!(f, "{}: another elevated is already running", p.display())
            }
            SocketError::NotSocket(p) => write!(
                f,
                "{}: exists and is not a socket; refusing to replace it",
                p.display()
            ),
            SocketError::Io(p, e) => write!(f, "{}: {e}", p.display()),
        }
    }
}
