//! The end-of-lease set-gid sweep, from the core's side. When an ending takes gids away, the
//! holders' set-gid files with those gids lose the bit (a copy of a program made set-gid
//! during the lease would otherwise keep the group for good). The walk runs on the sweeper's
//! own thread, never on the decision path; its report comes back as an event, and then:
//!
//! * every file stripped is one `setgid.stripped` record, and a walk that stopped at a bound
//!   or met errors is one `setgid.scan` record;
//! * the holders' processes are looked for again: one started from such a file after the
//!   ending's own look (and before the walk reached it) carries the gid as its effective or
//!   saved gid, and is ended like any other carrier.

use super::{Core, Event, State};
use crate::effects::audit::{fields, AuditEvent};
use crate::effects::procs::{Carriers, ProcId};
use crate::effects::setgid::{Off, Reporter, SetgidSweeper, SweepJob, SweepReport};
use crate::os::setgid::Stripped;
use elevate_base::{Gid, Uid};
use serde_json::json;
use std::collections::{BTreeSet, HashMap};
use std::path::Path;

/// The sweep's part of the core's state.
pub(super) struct Setgid {
    sweeper: Box<dyn SetgidSweeper>,
    next_job: u64,
    /// Jobs handed over and not reported yet: whose carriers to look for afterwards.
    waiting: HashMap<u64, Pass>,
    /// What `status` says about places not mounted nosuid: worked out when the policy or the
    /// sweeper changes (it reads the mount table and resolves paths, which a hung mount could
    /// stall), never on a `status` request.
    warnings: Vec<String>,
}

/// What an ending revoked (uid → gids) and whether each uid's carriers are ended.
struct Pass {
    revoked: Carriers,
    terminate: HashMap<Uid, bool>,
}

impl Default for Setgid {
    fn default() -> Setgid {
        Setgid {
            sweeper: Box::new(Off),
            warnings: Vec::new(),
            next_job: 1,
            waiting: HashMap::new(),
        }
    }
}

impl Core {
    /// Attach the sweeper `make` builds around the reporter it is given: reports come back
    /// into this core's queue. Without one, endings sweep nothing.
    pub fn attach_sweeper<E>(
        &mut self,
        make: impl FnOnce(Reporter) -> Result<Box<dyn SetgidSweeper>, E>,
    ) -> Result<(), E> {
        let events = self.state.events.clone();
        // Called on the sweeper's thread, outside the runtime: a blocking send is allowed
        // there, and waits only when the core's queue is full.
        let reporter: Reporter = Box::new(move |report| {
            let _ = events.blocking_send(Event::SetgidSwept(Box::new(report)));
        });
        self.state.setgid.sweeper = make(reporter)?;
        self.state.refresh_setgid_warnings();
        Ok(())
    }
}

impl State {
    /// Hand the walk for an ending to the sweeper: the gids each holder lost (standing ones
    /// already left out), in the configured places with each holder's own expanded.
    pub(super) fn sweep_setgid(&mut self, revoked: &Carriers, terminate: &HashMap<Uid, bool>) {
        if self.settings.setgid_scan.is_empty() || revoked.is_empty() {
            return;
        }
        let mut uids: Vec<Uid> = revoked.keys().copied().collect();
        uids.sort();
        let mut roots = Vec::new();
        for uid in uids {
            let home = self.identities.by_uid(uid).map(|(pw, _)| pw.home);
            let home = home.as_deref().unwrap_or(Path::new(""));
            for entry in &self.settings.setgid_scan {
                if let Some(root) = entry.expand(uid, home) {
                    if !roots.contains(&root) {
                        roots.push(root);
                    }
                }
            }
        }
        let id = self.setgid.next_job;
        self.setgid.next_job += 1;
        let pass = Pass {
            revoked: revoked.clone(),
            terminate: terminate.clone(),
        };
        self.setgid.waiting.insert(id, pass);
        let wanted = revoked.clone();
        self.setgid.sweeper.sweep(SweepJob { id, wanted, roots });
    }

    /// A walk is done: audit it, then end the carriers it may have let in.
    pub(super) fn setgid_swept(&mut self, report: SweepReport) {
        for s in &report.sweep.stripped {
            let rec = self.stripped_record(s);
            self.audit.post(AuditEvent::SetgidStripped, fields(rec));
        }
        let sweep = &report.sweep;
        if sweep.bound.is_some() || !sweep.errors.is_empty() {
            let errors: Vec<String> = sweep.errors.iter().map(|e| e.to_string()).collect();
            let bound = sweep.bound.map(|b| b.to_string());
            tracing::warn!(
                "set-gid sweep incomplete: {} errors{}",
                errors.len() as u64 + sweep.more_errors,
                bound
                    .as_deref()
                    .map(|b| format!(", {b}"))
                    .unwrap_or_default()
            );
            let roots: Vec<String> = sweep
                .roots
                .iter()
                .map(|r| r.display().to_string())
                .collect();
            let rec = json!({
                "host": self.host.name, "roots": roots, "entries": sweep.entries,
                "stripped": sweep.stripped.len(), "bound": bound, "errors": errors,
                "more_errors": sweep.more_errors,
            });
            self.audit.post(AuditEvent::SetgidScan, fields(rec));
        }
        let passes: Vec<Pass> = report
            .jobs
            .iter()
            .filter_map(|id| self.setgid.waiting.remove(id))
            .collect();
        self.end_late_carriers(passes);
    }

    fn stripped_record(&mut self, s: &Stripped) -> serde_json::Value {
        let user = self.identities.by_uid(s.uid).map(|(pw, _)| pw.name);
        let group = self
            .leases
            .table
            .values()
            .flat_map(|l| &l.grants)
            .find(|g| g.gid == s.gid)
            .map(|g| g.group.clone());
        json!({
            "host": self.host.name, "path": s.path.display().to_string(),
            "uid": s.uid, "user": user, "gid": s.gid, "group": group,
            "mode_before": format!("{:04o}", s.old_mode), "mode_after": format!("{:04o}", s.new_mode),
        })
    }

    /// The holders' processes that carry a revoked gid now (one started from a set-gid file
    /// before the walk stripped it), unless the gid is theirs again by then (a new lease, a
    /// standing membership) or their profile keeps carriers: queued for TERM at once.
    fn end_late_carriers(&mut self, passes: Vec<Pass>) {
        let mut revoked = Carriers::new();
        for pass in passes {
            for (uid, gids) in pass.revoked {
                if pass.terminate.get(&uid).copied().unwrap_or(true) {
                    revoked.entry(uid).or_default().extend(gids);
                }
            }
        }
        for (uid, gids) in revoked.iter_mut() {
            let held = self.gids_held(*uid);
            gids.retain(|g| !held.contains(g));
        }
        revoked.retain(|_, g| !g.is_empty());
        if revoked.is_empty() {
            return;
        }
        let queued: BTreeSet<ProcId> = self
            .leases
            .pending_terms
            .iter()
            .map(|(_, p)| *p)
            .chain(
                self.leases
                    .pending_kills
                    .iter()
                    .flat_map(|(_, ps)| ps.iter().copied()),
            )
            .collect();
        let now = self.clock.now();
        for (_, p) in self.procs.carrying_any(&revoked) {
            if !queued.contains(&p) {
                // The ending's answer went out long ago: no reason to wait again.
                self.leases.pending_terms.push((now, p));
            }
        }
    }

    /// Every gid `uid` holds now by membership: primary, standing and granted by leases.
    fn gids_held(&mut self, uid: Uid) -> BTreeSet<Gid> {
        let Some((pw, subject)) = self.identities.by_uid(uid) else {
            return BTreeSet::new();
        };
        let mut held: BTreeSet<Gid> = subject
            .groups
            .iter()
            .filter_map(|n| self.groupdb.gid_of(n).ok().flatten())
            .collect();
        held.insert(pw.gid);
        held
    }

    /// `elevate status`: the places the sweep covers that honour set-id bits, when the
    /// policy grants groups at all (as worked out last, see [`Setgid::warnings`]).
    pub(super) fn setgid_warnings(&self) -> Vec<String> {
        self.setgid.warnings.clone()
    }

    /// Work the nosuid warnings out again: after a policy load and when the sweeper starts.
    pub(super) fn refresh_setgid_warnings(&mut self) {
        let grants = self
            .policy
            .profiles
            .iter()
            .any(|p| !p.grant_groups.is_empty());
        self.setgid.warnings = if grants {
            let scan = &self.settings.setgid_scan;
            let warnings = self.setgid.sweeper.nosuid_warnings(scan);
            warnings.iter().map(|w| w.to_string()).collect()
        } else {
            Vec::new()
        };
    }
}

#[cfg(test)]
mod tests {
    use super::super::tests::{
        lease, machine, op, request, settings, tick, ALICE, BOB, OPS, PGADMIN,
    };
    use super::super::{Handle, LeaseOp};
    use super::*;
    use crate::effects::fake::FakeWorld;
    use crate::effects::setgid::fake::FakeSweeper;
    use crate::os::setgid::{Bound, Sweep};
    use elevate_policy::setgid::ScanRoot;
    use elevate_proto::Response;
    use std::path::PathBuf;
    use std::sync::Arc;

    /// A core over `w` with the fake sweeper attached and `scan` configured.
    struct Sweeping {
        handle: Handle,
        task: tokio::task::JoinHandle<()>,
        sweeper: FakeSweeper,
    }

    impl Drop for Sweeping {
        fn drop(&mut self) {
            self.task.abort();
        }
    }

    async fn boot(w: &FakeWorld, scan: &[&str]) -> Sweeping {
        let mut s = (*settings()).clone();
        s.setgid_scan = scan
            .iter()
            .map(|e| ScanRoot::try_from(e.to_string()).unwrap())
            .collect();
        let (bus, _) = tokio::sync::broadcast::channel(16);
        let (mut core, handle) = Core::new(Arc::new(s), w.world(), bus);
        let sweeper = FakeSweeper::default();
        core.attach_sweeper(|r| Ok::<_, ()>(sweeper.attach(r)))
            .unwrap();
        core.start().await;
        let task = tokio::spawn(core.serve());
        Sweeping {
            handle,
            task,
            sweeper,
        }
    }

    const SCAN: &[&str] = &["/home", "/tmp", "/run/user/%U", "%h"];

    fn gids(g: &[u32]) -> BTreeSet<Gid> {
        g.iter().copied().map(Gid).collect()
    }

    async fn granted_then_revoked(h: &Handle, uid: u32) {
        let id = lease(op(h, uid, LeaseOp::Request(request("ops"))).await).id;
        lease(op(h, uid, LeaseOp::Revoke { id, reason: None }).await);
    }

    #[tokio::test]
    async fn a_revoked_lease_queues_a_sweep_of_its_gids_where_the_holder_writes() {
        let w = machine();
        let c = boot(&w, SCAN).await;
        granted_then_revoked(&c.handle, ALICE).await;
        let jobs = c.sweeper.jobs();
        assert_eq!(jobs.len(), 1, "{jobs:?}");
        assert_eq!(jobs[0].wanted, [(Uid(ALICE), gids(&[PGADMIN, OPS]))].into());
        let roots: Vec<PathBuf> = ["/home", "/tmp", "/run/user/1000", "/home/alice"]
            .iter()
            .map(PathBuf::from)
            .collect();
        assert_eq!(jobs[0].roots, roots);
    }

    #[tokio::test]
    async fn standing_gids_are_not_swept_and_off_means_off() {
        let w = machine();
        w.group("ops", OPS, &["bob"]);
        let c = boot(&w, SCAN).await;
        granted_then_revoked(&c.handle, BOB).await;
        let jobs = c.sweeper.jobs();
        assert_eq!(jobs.len(), 1);
        assert_eq!(
            jobs[0].wanted,
            [(Uid(BOB), gids(&[PGADMIN]))].into(),
            "ops is bob's own"
        );

        let w = machine();
        let c = boot(&w, &[]).await;
        granted_then_revoked(&c.handle, ALICE).await;
        assert!(
            c.sweeper.jobs().is_empty(),
            "setgid_scan = [] turns the sweep off"
        );
    }

    #[tokio::test]
    async fn the_report_is_audited_and_late_carriers_are_ended() {
        let w = machine();
        let c = boot(&w, SCAN).await;
        granted_then_revoked(&c.handle, ALICE).await;
        // Started from a set-gid copy after the ending looked for carriers: egid pgadmin.
        let late = w.process(700, ALICE, &[ALICE, PGADMIN]);
        let bystander = w.process(701, BOB, &[PGADMIN]);
        let stripped = Stripped {
            path: "/home/alice/gcat".into(),
            uid: Uid(ALICE),
            gid: Gid(PGADMIN),
            old_mode: 0o2755,
            new_mode: 0o755,
        };
        let bounded = Sweep {
            bound: Some(Bound::Entries(5)),
            entries: 5,
            ..Sweep::default()
        };
        c.sweeper.report(vec![stripped], bounded);
        tick(&c.handle).await;
        let m = w.machine();
        let rec = |name: &str| {
            m.audit
                .iter()
                .find(|(e, _, _)| e.as_str() == name)
                .map(|(_, f, _)| serde_json::Value::Object(f.clone()))
                .unwrap_or_else(|| panic!("no {name} in {:?}", m.events()))
        };
        let s = rec("setgid.stripped");
        assert_eq!(s["path"], "/home/alice/gcat");
        assert_eq!(
            (&s["user"], &s["group"]),
            (&json!("alice"), &json!("pgadmin"))
        );
        assert_eq!(
            (&s["gid"], &s["mode_before"], &s["mode_after"]),
            (&json!(PGADMIN), &json!("2755"), &json!("0755"))
        );
        let scan = rec("setgid.scan");
        assert_eq!(scan["bound"], "stopped after 5 entries, its bound");
        assert_eq!(scan["entries"], 5);
        assert!(
            m.signals.contains(&(late.pid, libc::SIGTERM)),
            "{:?}",
            m.signals
        );
        assert!(
            m.procs.contains_key(&bystander.pid),
            "another user's process is not the holder's"
        );
    }

    #[tokio::test]
    async fn a_gid_held_again_by_then_is_spared() {
        let w = machine();
        let c = boot(&w, SCAN).await;
        granted_then_revoked(&c.handle, ALICE).await;
        lease(op(&c.handle, ALICE, LeaseOp::Request(request("ops"))).await);
        let shell = w.process(700, ALICE, &[ALICE, PGADMIN]);
        c.sweeper.report(vec![], Sweep::default());
        tick(&c.handle).await;
        let m = w.machine();
        assert!(m.procs.contains_key(&shell.pid), "{:?}", m.signals);
        assert!(
            !m.events().contains(&"setgid.scan"),
            "a complete walk says nothing more"
        );
    }

    #[tokio::test]
    async fn status_warns_of_places_that_honour_set_id_bits() {
        let w = machine();
        let c = boot(&w, SCAN).await;
        c.sweeper.exposed.lock().unwrap().push("/home".into());
        // Mounts are looked at when the policy is (re)loaded, not on every status.
        c.handle.reload().await.expect("core running");
        let Ok(Response::Status(s)) = c.handle.status().await else {
            panic!("status");
        };
        assert_eq!(
            s.warnings,
            ["/home is not mounted nosuid: a lease's group can be kept in a set-gid file there until the end-of-lease sweep strips it"]
        );
    }
}
