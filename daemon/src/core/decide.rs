//! Deciding runs: a command under a standing or leased profile (rate limit, the caller from
//! NSS, the command resolved on the secure path, the policy's verdict, step-up, the target
//! account and a clean environment), `elevate with` under the caller's own lease, and the
//! read-only questions (`list`, `status`).

use super::{no_account, Decision, Plan, State};
use crate::exec::env::{build_env, EnvContext};
use crate::lease::model::LeaseState;
use crate::peer::Peer;
use elevate_base::{Gid, Uid};
use elevate_policy::{Access, Profile, Query, Subject, Verdict};
use elevate_proto::{
    Checked, ErrorKind, ErrorReply, ListReply, ListedProfile, Response, RunRequest, StatusReply,
};
use std::path::PathBuf;
use std::sync::Arc;

impl State {
    /// Rate limit, then resolve the caller, then ask the policy, then plan the run.
    pub(super) fn decide(&mut self, peer: &mut Peer, req: &RunRequest, dry_run: bool) -> Decision {
        let subject = match self.caller(peer) {
            Ok(s) => s,
            Err(e) => return Decision::Refuse(e),
        };
        let Some(argv0) = req.argv.first() else {
            return Decision::Refuse(ErrorReply {
                kind: ErrorKind::BadRequest,
                message: "no command given".into(),
            });
        };
        let path = match elevate_policy::resolve_command(argv0, self.identities.system()) {
            Ok(p) => p,
            Err(e) => {
                return Decision::Deny {
                    reason: e.to_string(),
                    hint: Some("see what you may run: elevate list".into()),
                    profile: None,
                }
            }
        };
        let query = Query {
            path: &path,
            args: &req.argv[1..],
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
        if dry_run {
            return Decision::Allow(Box::new(Plan {
                profile: profile.name.clone(),
                path,
                argv: vec![],
                env: vec![],
                run_as: profile.run_as.clone(),
                uid: Uid::ROOT,
                gid: Gid(0),
                groups: vec![],
                as_caller: false,
            }));
        }
        if self.step_up_needed(peer, profile) {
            return Decision::Authenticate {
                profile: profile.name.clone(),
            };
        }
        let mut argv = Vec::with_capacity(req.argv.len());
        argv.push(rule.path.display().to_string());
        argv.extend(req.argv[1..].iter().cloned());
        match self.plan(&subject, profile, path, argv, &req.env) {
            Ok(plan) => Decision::Allow(Box::new(plan)),
            Err(e) => Decision::Refuse(e),
        }
    }

    /// The caller as the policy sees them, after the rate limit. The peer gets its name
    /// (the audit record names the user even when the request is refused).
    fn caller(&mut self, peer: &mut Peer) -> Result<Subject, ErrorReply> {
        let limited = self.rate_limited(peer.uid);
        let known = self.identities.by_uid(peer.uid);
        if let Some(e) = limited {
            // A burst is always a cache hit: naming the user costs nothing.
            peer.user = known.map_or_else(|| format!("#{}", peer.uid), |(pw, _)| pw.name);
            return Err(e);
        }
        let (_, subject) = known.ok_or_else(|| no_account(peer.uid))?;
        peer.user = subject.user.clone();
        Ok(subject)
    }

    /// The run of an allowed command: the target account, its groups, a clean environment.
    fn plan(
        &mut self,
        subject: &Subject,
        profile: &Profile,
        path: PathBuf,
        argv: Vec<String>,
        caller_env: &[(String, String)],
    ) -> Result<Plan, ErrorReply> {
        let missing = |what: String| ErrorReply {
            kind: ErrorKind::SpawnFailed,
            message: format!(
                "profile {}: {what} does not exist on this host",
                profile.name
            ),
        };
        let (target, groups) = self
            .identities
            .by_name(&profile.run_as)
            .ok_or_else(|| missing(format!("run_as user {:?}", profile.run_as)))?;
        let gid = match &profile.run_as_group {
            None => target.gid,
            Some(g) => self
                .identities
                .group_gid(g)
                .ok_or_else(|| missing(format!("run_as_group {g:?}")))?,
        };
        let env = build_env(
            caller_env,
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
        Ok(Plan {
            profile: profile.name.clone(),
            path,
            argv,
            env,
            run_as: target.name.clone(),
            uid: target.uid,
            gid,
            groups,
            as_caller: false,
        })
    }

    pub(super) fn list(&mut self, peer: &mut Peer) -> Response {
        if let Some(e) = self.rate_limited(peer.uid) {
            return Response::Error(e);
        }
        let Some((_, subject)) = self.identities.by_uid(peer.uid) else {
            return Response::Error(no_account(peer.uid));
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

    pub(super) fn status(&self) -> StatusReply {
        let (edits, oldest) = self.edits.pending(self.clock.now());
        StatusReply {
            version: env!("CARGO_PKG_VERSION").to_string(),
            protocol: elevate_proto::PROTOCOL_VERSION,
            pid: std::process::id(),
            host: self.host.name.clone(),
            uptime_secs: self
                .clock
                .now()
                .saturating_duration_since(self.started)
                .as_secs(),
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
            group_edits_pending: edits,
            group_edit_wait_ms: elevate_base::duration::millis(oldest),
            group_edit_error: self.edits.last_error.clone(),
            expiry_lag_ms: self.leases.expiry_lag_ms,
            warnings: [self.leases.journal.warnings(), self.setgid_warnings()].concat(),
        }
    }

    /// `elevate with ID|PROFILE -- CMD`: the caller's own active lease; CMD runs as the caller
    /// with the lease's granted groups added (so a running shell needn't log in again).
    pub(super) fn decide_with(
        &mut self,
        peer: &mut Peer,
        req: &elevate_proto::WithRequest,
    ) -> Decision {
        if let Some(e) = self.rate_limited(peer.uid) {
            return Decision::Refuse(e);
        }
        let Some((pw, subject)) = self.identities.by_uid(peer.uid) else {
            return Decision::Refuse(no_account(peer.uid));
        };
        peer.user = subject.user.clone();
        let lease = match req.lease.parse::<u64>() {
            Ok(id) => self
                .leases
                .table
                .get(&id)
                .filter(|l| l.uid == peer.uid && l.state == LeaseState::Active),
            Err(_) => self.leases.active(peer.uid, &req.lease),
        };
        let Some(lease) = lease else {
            return Decision::Deny {
                reason: format!("you hold no active lease {}", req.lease),
                hint: Some("see your leases: elevate leases".into()),
                profile: None,
            };
        };
        let Some(path) = req.argv.first().filter(|p| p.starts_with('/')) else {
            return Decision::Refuse(ErrorReply {
                kind: ErrorKind::BadRequest,
                message: "elevate with needs an absolute command path (the client resolves it through your PATH)".into(),
            });
        };
        let mut groups = self
            .identities
            .by_name(&pw.name)
            .map(|(_, g)| g)
            .unwrap_or_default();
        for g in &lease.grants {
            if !groups.contains(&g.gid) {
                groups.push(g.gid);
            }
        }
        let mut env: Vec<(String, String)> = req
            .env
            .iter()
            .filter(|(k, _)| k != "ELEVATE_LEASE")
            .cloned()
            .collect();
        env.push(("ELEVATE_LEASE".into(), lease.id.to_string()));
        Decision::Allow(Box::new(Plan {
            profile: lease.profile.clone(),
            path: path.into(),
            argv: req.argv.clone(),
            env,
            run_as: subject.user.clone(),
            uid: pw.uid,
            gid: pw.gid,
            groups,
            as_caller: true,
        }))
    }
}

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
