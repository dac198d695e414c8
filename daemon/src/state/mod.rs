//! The daemon's state and the one loop that owns it. Connection handlers and signal handlers
//! never touch state: they send an [`Event`] and wait for the answer. Decisions are
//! microseconds of pure computation, so a single owner costs nothing and removes every
//! question of lock ordering or a decision seeing half a reload.

use crate::audit_writer::{fields, AuditHandle};
use crate::exec::{build_env, EnvContext};
use crate::identity::Peer;
use crate::limits::RateLimiter;
use crate::settings::Settings;
use elevate_groupdb::GroupDb;
use elevate_policy::{Access, HostInfo, LoadOptions, Policy, Query, RealSystem, Verdict};
use elevate_proto::WithRequest;
use elevate_proto::{
    Checked, ErrorKind, ErrorReply, ListReply, ListedProfile, ReloadReport, Response, RunRequest,
    StatusReply,
};
use serde_json::json;
use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// How often expiries and pending KILLs are checked.
const TICK: Duration = Duration::from_millis(250);
use crate::dbus::BusEvent;
use tokio::sync::{broadcast, mpsc, oneshot};

pub enum Event {
    /// A connection arrived; admit it or say why not.
    Open {
        uid: u32,
        reply: oneshot::Sender<Result<(), ErrorReply>>,
    },
    Close {
        uid: u32,
    },
    /// Decide a run (or, with `dry_run`, a check). The peer comes back with its user name.
    Decide {
        peer: Peer,
        req: RunRequest,
        dry_run: bool,
        reply: oneshot::Sender<(Peer, Decision)>,
    },
    List {
        peer: Peer,
        reply: oneshot::Sender<Response>,
    },
    Status {
        reply: oneshot::Sender<Response>,
    },
    /// SIGHUP (no reply) or `elevate reload` (the outcome): re-read the policy.
    Reload {
        reply: Option<oneshot::Sender<ReloadReport>>,
    },
    CommandStarted,
    CommandEnded,
    /// A lease operation (request, approve, deny, revoke, extend, list).
    Lease {
        peer: Peer,
        op: LeaseOp,
        reply: oneshot::Sender<Response>,
    },
    /// `request --wait`: answer when the lease leaves `pending`.
    Wait {
        uid: u32,
        id: u64,
        reply: oneshot::Sender<Response>,
    },
    /// Decide an `elevate with`: the caller's own active lease, its groups added.
    DecideWith {
        peer: Peer,
        req: WithRequest,
        reply: oneshot::Sender<(Peer, Decision)>,
    },
    /// Periodic: expiries (wall clock), KILLs after grace, retries.
    Tick,
    /// A lease's bound process exited.
    BoundExited {
        id: u64,
    },
    /// pam_elevate.so: a login question, a session opened or closed.
    Login {
        peer: Peer,
        op: LoginOp,
        reply: oneshot::Sender<Response>,
    },
    /// The bus side found which logind session a registered PAM session belongs to.
    LogindSession {
        session: u64,
        logind_id: String,
    },
}

/// Everything needed to run an allowed command.
#[derive(Debug)]
pub struct Plan {
    pub profile: String,
    /// Canonical path of the executable.
    pub path: PathBuf,
    /// argv[0] is the rule's path as written (multi-call binaries dispatch on it).
    pub argv: Vec<String>,
    pub env: Vec<(String, String)>,
    pub run_as: String,
    pub uid: u32,
    pub gid: u32,
    pub groups: Vec<u32>,
    /// `elevate with`: the caller's own command, exec'd by path after dropping to the caller
    /// (the executable ownership check is for commands run with someone else's privileges).
    pub as_caller: bool,
}

#[derive(Debug)]
pub enum Decision {
    Allow(Box<Plan>),
    Deny {
        reason: String,
        hint: Option<String>,
        profile: Option<String>,
    },
    /// Not a policy decision: the request could not be decided (rate limit, unknown user…).
    Refuse(ErrorReply),
    /// Allowed once the requester passes step-up authentication (profile `authenticate`).
    Authenticate {
        profile: String,
    },
}

mod identity_cache;
mod leases;
mod logins;
mod step_up;

pub use logins::LoginOp;

use leases::LeaseBook;
pub use leases::LeaseOp;

use identity_cache::IdentityCache;

pub struct State {
    settings: Arc<Settings>,
    host: HostInfo,
    policy: Arc<Policy>,
    last_reload: ReloadReport,
    started: Instant,
    identities: IdentityCache,
    limiter: RateLimiter,
    conns_total: usize,
    conns_by_uid: HashMap<u32, usize>,
    running: usize,
    audit: AuditHandle,
    leases: LeaseBook,
    sessions: crate::leases::sessions::SessionBook,
    auth_cache: step_up::AuthCache,
    groupdb: GroupDb,
    events: mpsc::UnboundedSender<Event>,
    /// Announcements for the D-Bus side (signals, logind); nobody listens without a bus.
    bus: broadcast::Sender<BusEvent>,
    pending_ttl: Duration,
}

impl State {
    /// Load the policy once. A broken policy at start-up means an empty one (nothing allowed)
    /// with the errors reported in `status`: fail closed, but keep serving so the admin can see why.
    pub fn new(
        settings: Arc<Settings>,
        audit: AuditHandle,
        events: mpsc::UnboundedSender<Event>,
        bus: broadcast::Sender<BusEvent>,
    ) -> Result<State, String> {
        let (journal, table) = crate::leases::journal::Journal::open(&settings.state_dir)
            .map_err(|e| format!("lease journal in {}: {e}", settings.state_dir.display()))?;
        let sessions = crate::leases::sessions::SessionBook::open(&settings.state_dir)
            .map_err(|e| format!("login sessions in {}: {e}", settings.state_dir.display()))?;
        let mut st = State {
            host: settings.host.clone(),
            policy: Arc::new(Policy::default()),
            last_reload: ReloadReport {
                at: now_rfc3339(),
                ok: false,
                errors: vec![],
                warnings: vec![],
            },
            started: Instant::now(),
            identities: IdentityCache::default(),
            limiter: RateLimiter::new(settings.limits.requests_per_second, settings.limits.burst),
            conns_total: 0,
            conns_by_uid: HashMap::new(),
            running: 0,
            audit,
            leases: LeaseBook::new(journal, table),
            sessions,
            auth_cache: Default::default(),
            groupdb: GroupDb::system(),
            events,
            bus,
            pending_ttl: settings.pending_ttl,
            settings,
        };
        st.load_policy();
        Ok(st)
    }

    pub fn policy_digest(&self) -> &str {
        &self.policy.digest
    }

    /// Before serving: finish what a crash or downtime left (expired leases, memberships).
    pub async fn start(&mut self) {
        self.reconcile_leases().await;
        self.reconcile_sessions();
    }

    pub async fn run(mut self, mut events: mpsc::UnboundedReceiver<Event>) {
        let ticker = self.events.clone();
        tokio::spawn(async move {
            // Expiry is checked against the wall clock on every tick, so a suspend or a
            // clock jump is honoured within one tick (deadlines are UTC instants).
            let mut iv = tokio::time::interval(TICK);
            iv.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
            loop {
                iv.tick().await;
                if ticker.send(Event::Tick).is_err() {
                    break;
                }
            }
        });
        while let Some(ev) = events.recv().await {
            self.handle(ev).await;
        }
    }

    async fn handle(&mut self, ev: Event) {
        match ev {
            Event::Open { uid, reply } => {
                let _ = reply.send(self.admit(uid));
            }
            Event::Close { uid } => {
                self.conns_total = self.conns_total.saturating_sub(1);
                if let Some(n) = self.conns_by_uid.get_mut(&uid) {
                    *n = n.saturating_sub(1);
                    if *n == 0 {
                        self.conns_by_uid.remove(&uid);
                    }
                }
            }
            Event::Decide {
                mut peer,
                req,
                dry_run,
                reply,
            } => {
                let d = self.decide(&mut peer, &req, dry_run);
                let _ = reply.send((peer, d));
            }
            Event::List { mut peer, reply } => {
                let r = self.list(&mut peer);
                let _ = reply.send(r);
            }
            Event::Status { reply } => {
                let _ = reply.send(Response::Status(self.status()));
            }
            Event::Reload { reply } => {
                if self.load_policy() {
                    self.reevaluate_leases().await;
                }
                if let Some(reply) = reply {
                    let _ = reply.send(self.last_reload.clone());
                }
            }
            Event::CommandStarted => self.running += 1,
            Event::CommandEnded => self.running = self.running.saturating_sub(1),
            Event::Lease {
                mut peer,
                op,
                reply,
            } => {
                let r = self.lease_op(&mut peer, op).await;
                let _ = reply.send(r);
            }
            Event::Wait { uid, id, reply } => self.wait_lease(uid, id, reply),
            Event::DecideWith {
                mut peer,
                req,
                reply,
            } => {
                let d = self.decide_with(&mut peer, &req);
                let _ = reply.send((peer, d));
            }
            Event::Tick => self.tick().await,
            Event::BoundExited { id } => self.bound_exited(id).await,
            Event::Login {
                mut peer,
                op,
                reply,
            } => {
                let r = self.login_op(&mut peer, op).await;
                let _ = reply.send(r);
            }
            Event::LogindSession { session, logind_id } => self.logind_session(session, logind_id),
        }
    }

    fn admit(&mut self, uid: u32) -> Result<(), ErrorReply> {
        let l = &self.settings.limits;
        if self.conns_total >= l.max_connections {
            return Err(busy(
                "the daemon is at its connection limit; try again shortly",
            ));
        }
        let mine = self.conns_by_uid.entry(uid).or_insert(0);
        if *mine >= l.max_connections_per_uid {
            return Err(busy(
                "too many open connections from your user; close some and retry",
            ));
        }
        *mine += 1;
        self.conns_total += 1;
        Ok(())
    }

    /// Rate limit, then resolve the caller, then ask the policy.
    fn decide(&mut self, peer: &mut Peer, req: &RunRequest, dry_run: bool) -> Decision {
        let limited = !self.limiter.allow(peer.uid, Instant::now());
        let known = self.identities.by_uid(peer.uid);
        if limited {
            // The audit record still names the user: a burst is always a cache hit.
            peer.user = known.map_or_else(|| format!("#{}", peer.uid), |(pw, _)| pw.name);
            return Decision::Refuse(ErrorReply {
                kind: ErrorKind::RateLimited,
                message: "too many requests from your user; slow down and retry".into(),
            });
        }
        let Some((_, subject)) = known else {
            return Decision::Refuse(ErrorReply {
                kind: ErrorKind::BadRequest,
                message: format!("uid {} has no user account on this host", peer.uid),
            });
        };
        peer.user = subject.user.clone();
        let Some(argv0) = req.argv.first() else {
            return Decision::Refuse(ErrorReply {
                kind: ErrorKind::BadRequest,
                message: "no command given".into(),
            });
        };
        let path = match elevate_policy::resolve_command(argv0, &RealSystem) {
            Ok(p) => p,
            Err(e) => {
                return Decision::Deny {
                    reason: e.to_string(),
                    hint: Some("see what you may run: elevate list".into()),
                    profile: None,
                }
            }
        };
        let args = &req.argv[1..];
        let query = Query {
            path: &path,
            args,
            profile: req.profile.as_deref(),
            run_as: req.run_as.as_deref(),
        };
        let policy = Arc::clone(&self.policy);
        let leases = &self.leases;
        let verdict = policy.decide(&self.host, &subject, &query, &|p| {
            leases.active(subject.uid, &p.name).is_some()
        });
        let (profile, rule) = match verdict {
            Verdict::Allow { profile, rule } => (profile, rule),
            Verdict::Deny(denied) => {
                return Decision::Deny {
                    reason: denied.message(),
                    hint: denied.hint(),
                    profile: req.profile.clone(),
                }
            }
        };
        if !dry_run && self.step_up_needed(peer, profile) {
            return Decision::Authenticate {
                profile: profile.name.clone(),
            };
        }
        if dry_run {
            return Decision::Allow(Box::new(Plan {
                profile: profile.name.clone(),
                path,
                argv: vec![],
                env: vec![],
                run_as: profile.run_as.clone(),
                uid: 0,
                gid: 0,
                groups: vec![],
                as_caller: false,
            }));
        }
        let Some((target, target_gids)) = self.identities.by_name(&profile.run_as) else {
            return Decision::Refuse(ErrorReply {
                kind: ErrorKind::SpawnFailed,
                message: format!(
                    "profile {}: run_as user {:?} does not exist on this host",
                    profile.name, profile.run_as
                ),
            });
        };
        let gid = match &profile.run_as_group {
            None => target.gid,
            Some(g) => match RealSystem.group_gid(g) {
                Some(gid) => gid,
                None => {
                    return Decision::Refuse(ErrorReply {
                        kind: ErrorKind::SpawnFailed,
                        message: format!(
                            "profile {}: run_as_group {g:?} does not exist on this host",
                            profile.name
                        ),
                    })
                }
            },
        };
        let mut argv = Vec::with_capacity(req.argv.len());
        argv.push(rule.path.display().to_string());
        argv.extend(args.iter().cloned());
        let env = build_env(
            &req.env,
            &profile.env_keep,
            &EnvContext {
                caller_user: &subject.user,
                caller_uid: subject.uid,
                profile: &profile.name,
                target_user: &target.name,
                target_home: &target.home.display().to_string(),
                target_shell: &target.shell.display().to_string(),
            },
        );
        Decision::Allow(Box::new(Plan {
            profile: profile.name.clone(),
            path,
            argv,
            env,
            run_as: target.name.clone(),
            uid: target.uid,
            gid,
            groups: target_gids,
            as_caller: false,
        }))
    }

    fn list(&mut self, peer: &mut Peer) -> Response {
        if !self.limiter.allow(peer.uid, Instant::now()) {
            return Response::Error(ErrorReply {
                kind: ErrorKind::RateLimited,
                message: "too many requests from your user; slow down and retry".into(),
            });
        }
        let Some((_, subject)) = self.identities.by_uid(peer.uid) else {
            return Response::Error(ErrorReply {
                kind: ErrorKind::BadRequest,
                message: format!("uid {} has no user account on this host", peer.uid),
            });
        };
        let profiles = self
            .policy
            .applicable(&self.host, &subject)
            .into_iter()
            .map(|p| ListedProfile {
                name: p.name.clone(),
                description: p.description.clone(),
                run_as: p.run_as.clone(),
                run_as_group: p.run_as_group.clone(),
                access: p.access.as_str().to_string(),
                usable_now: p.access == Access::Standing
                    || self.leases.active(subject.uid, &p.name).is_some(),
                commands: p.commands.iter().map(|c| c.display()).collect(),
                hint: (p.access == Access::Lease)
                    .then(|| format!("request a lease: elevate request {}", p.name)),
            })
            .collect();
        Response::List(ListReply {
            user: subject.user,
            host: self.host.name.clone(),
            profiles,
        })
    }

    fn status(&self) -> StatusReply {
        StatusReply {
            version: env!("CARGO_PKG_VERSION").to_string(),
            protocol: elevate_proto::PROTOCOL_VERSION,
            pid: std::process::id(),
            host: self.host.name.clone(),
            uptime_secs: self.started.elapsed().as_secs(),
            policy_dir: self.settings.policy_dir.display().to_string(),
            policy_digest: self.policy.digest.clone(),
            policy_files: self
                .policy
                .files
                .iter()
                .map(|f| f.path.display().to_string())
                .collect(),
            profiles: self.policy.profiles.len(),
            last_reload: self.last_reload.clone(),
            running_commands: self.running,
        }
    }

    /// Parse and validate everything; swap only if all of it is good. True if swapped.
    fn load_policy(&mut self) -> bool {
        let outcome = elevate_policy::load_dir(
            &self.settings.policy_dir,
            &LoadOptions {
                check_permissions: true,
            },
            &RealSystem,
        );
        let (errors, warnings): (Vec<_>, Vec<_>) = outcome
            .diagnostics
            .iter()
            .partition(|d| d.severity == elevate_policy::Severity::Error);
        let errors: Vec<String> = errors.iter().map(|d| d.to_string()).collect();
        let warnings: Vec<String> = warnings.iter().map(|d| d.to_string()).collect();
        for w in &warnings {
            tracing::warn!("policy: {w}");
        }
        let ok = match outcome.policy {
            Some(p) => {
                tracing::info!(
                    "policy loaded: {} profiles from {} files, digest {}",
                    p.profiles.len(),
                    p.files.len(),
                    p.digest
                );
                self.policy = Arc::new(p);
                // A reload may change who is who (e.g. new groups in the same edit).
                self.identities.clear();
                true
            }
            None => {
                for e in &errors {
                    tracing::error!("policy: {e}");
                }
                tracing::error!(
                    "policy reload failed with {} errors; keeping the previous policy",
                    errors.len()
                );
                false
            }
        };
        self.audit.post(
            "policy.reload",
            fields(json!({
                "host": self.host.name,
                "ok": ok,
                "digest": self.policy.digest,
                "files": self.policy.files.iter().map(|f| f.path.display().to_string()).collect::<Vec<_>>(),
                "errors": errors,
            })),
        );
        self.last_reload = ReloadReport {
            at: now_rfc3339(),
            ok,
            errors,
            warnings,
        };
        ok
    }
}

fn busy(msg: &str) -> ErrorReply {
    ErrorReply {
        kind: ErrorKind::Busy,
        message: msg.to_string(),
    }
}

pub use elevate_base::time::now_rfc3339;

/// Translate a decision for `Check` requests.
pub fn checked(decision: &Decision) -> Response {
    match decision {
        Decision::Allow(plan) => Response::Checked(Checked {
            allowed: true,
            profile: Some(plan.profile.clone()),
            run_as: Some(plan.run_as.clone()),
            path: Some(plan.path.display().to_string()),
            reason: None,
            hint: None,
        }),
        Decision::Deny { reason, hint, .. } => Response::Checked(Checked {
            allowed: false,
            profile: None,
            run_as: None,
            path: None,
            reason: Some(reason.clone()),
            hint: hint.clone(),
        }),
        Decision::Refuse(e) => Response::Error(e.clone()),
        // A dry run never asks for authentication; the real run will.
        Decision::Authenticate { .. } => Response::Error(ErrorReply {
            kind: ErrorKind::AuthenticationRequired,
            message: "step-up authentication required".into(),
        }),
    }
}
