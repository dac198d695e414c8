//! Every crash point of a grant and of an ending. Each transition is run once to count its
//! durable steps (journal commits, group rewrites, durable audit writes); then, for every step
//! `k`, a fresh machine runs it again with the world stopped at `k`, a new core starts over
//! what the machine kept, and the state it reaches is checked:
//!
//! - **memberships follow leases**: a user is in a granted group after the restart exactly
//!   when the journal holds an active lease of theirs granting it (standing members aside);
//! - **nothing outlives its lease**: once the restarted core has ended the lease (expiry),
//!   no membership it granted remains;
//! - **ids never repeat**: no lease id is audited as requested for two different leases.
//!
//! This is the test bed the crash-safety work extends (issue 11).

use super::*;
use crate::effects::fake::Effect;
use crate::lease::journal::ID_BLOCK;
use crate::lease::model::LeaseState;
use std::collections::BTreeSet;

const GRANTED: [&str; 2] = ["pgadmin", "ops"];

/// What the machine says about alice's memberships and her journaled leases.
fn violations(w: &FakeWorld) -> Vec<String> {
    let m = w.machine();
    let leases = m.journaled();
    let mut out = Vec::new();
    for g in GRANTED {
        let member = m.members(g).iter().any(|u| u == "alice");
        let covered = leases.values().any(|l| {
            l.user == "alice"
                && l.state == LeaseState::Active
                && l.grants.iter().any(|x| x.group == g)
        });
        if member != covered {
            out.push(format!(
                "alice in {g}: member {member}, active lease {covered}"
            ));
        }
    }
    out
}

/// Every ended lease in the journal has exactly one ending record in the audit log.
fn endings_not_audited_once(w: &FakeWorld) -> Vec<String> {
    let m = w.machine();
    let endings = [
        "lease.expired",
        "lease.revoked",
        "lease.denied",
        "lease.ended",
    ];
    let mut out = Vec::new();
    for l in m
        .journaled()
        .values()
        .filter(|l| l.state == LeaseState::Ended)
    {
        let n = m
            .audit
            .iter()
            .filter(|(e, f, _)| {
                endings.contains(&e.as_str()) && f.get("lease") == Some(&l.id.into())
            })
            .count();
        if n != 1 {
            out.push(format!("lease {} ended with {n} ending records", l.id));
        }
    }
    out
}

/// Every lease audited as requested is in the journal, or a `lease.not_saved` record says it
/// never took effect.
fn requests_not_accounted(w: &FakeWorld) -> Vec<String> {
    let m = w.machine();
    let journaled = m.journaled();
    let ids = |event: &str| -> BTreeSet<u64> {
        let records = m.audit.iter().filter(|(e, _, _)| e.as_str() == event);
        records
            .filter_map(|(_, f, _)| f.get("lease")?.as_u64())
            .collect()
    };
    let not_saved = ids("lease.not_saved");
    ids("lease.requested")
        .into_iter()
        .filter(|id| !journaled.contains_key(id) && !not_saved.contains(id))
        .map(|id| format!("lease {id} audited as requested, neither journaled nor said not saved"))
        .collect()
}

/// Run `transition` on a fresh machine (after `setup`), stopping the world at step `k` of the
/// transition (`None`: no crash); return the machine and the steps the transition took.
async fn run_to_crash(k: Option<usize>, ending: bool) -> (FakeWorld, usize, Vec<Effect>) {
    let w = machine();
    let h = boot(&w).await;
    let mut id = 0;
    if ending {
        id = lease(op(&h, ALICE, LeaseOp::Request(request("ops"))).await).id;
    }
    let start = w.machine().steps;
    if let Some(k) = k {
        w.machine().crash_at(start + k);
    }
    let _ = if ending {
        op(&h, ALICE, LeaseOp::Revoke { id, reason: None }).await
    } else {
        op(&h, ALICE, LeaseOp::Request(request("ops"))).await
    };
    drop(h);
    let m = w.machine();
    let steps = m.steps - start;
    let trace = m.trace[start..].to_vec();
    drop(m);
    (w, steps, trace)
}

/// The machine comes back: the stop is lifted; nothing else changes.
fn power_on(w: &FakeWorld) {
    w.machine().restart();
}

#[tokio::test]
async fn a_grant_stopped_at_every_step_restarts_consistent() {
    let (_, _, trace) = run_to_crash(None, false).await;
    assert_eq!(
        trace,
        [
            Effect::IdReservation, // the first id of a fresh machine reserves a block
            Effect::AuditDurable,  // lease.requested + lease.activated, before anything
            Effect::JournalCommit, // the lease, active
            Effect::JournalCommit, // the grants it intends (standing or not)
            Effect::GroupRewrite,  // both groups, one rewrite
            Effect::JournalCommit, // the grants, applied
            Effect::AuditDurable,  // group.added ×2
        ],
        "the grant's steps changed: update this test's expectations with care"
    );
    for (k, step) in trace.iter().enumerate() {
        let (w, _, _) = run_to_crash(Some(k), false).await;
        power_on(&w);
        let h = boot(&w).await;
        let mut v = violations(&w);
        v.extend(requests_not_accounted(&w));
        assert!(v.is_empty(), "crash at step {k} ({step:?}): {v:?}");
        // And when the lease ends, nothing it granted stays.
        w.advance(Duration::from_secs(601));
        tick(&h).await;
        let m = w.machine();
        for g in GRANTED {
            assert!(
                m.members(g).is_empty(),
                "crash at step {k}: alice still in {g}"
            );
        }
    }
}

/// A lease that expires while the daemon is down after a grant was cut short. When the crash
/// falls between the group rewrite and the journal record that says it was applied, the
/// journal still holds the intent (not standing), so the restarted core takes the membership
/// back with the lease (issue 11's first finding).
#[tokio::test]
async fn a_grant_stopped_at_every_step_then_expired_while_down() {
    let (_, _, trace) = run_to_crash(None, false).await;
    let mut orphaned = Vec::new();
    for (k, step) in trace.iter().enumerate() {
        let (w, _, _) = run_to_crash(Some(k), false).await;
        power_on(&w);
        w.advance(Duration::from_secs(601));
        let _h = boot(&w).await;
        assert_eq!(
            endings_not_audited_once(&w),
            Vec::<String>::new(),
            "crash at step {k}"
        );
        let m = w.machine();
        if GRANTED.iter().any(|g| !m.members(g).is_empty()) {
            orphaned.push((k, *step));
        }
    }
    assert_eq!(orphaned, [], "crash points that orphan a membership");
}

#[tokio::test]
async fn an_ending_stopped_at_every_step_restarts_consistent() {
    let (_, _, trace) = run_to_crash(None, true).await;
    assert_eq!(
        trace,
        [
            Effect::JournalCommit, // the lease, ended (less privilege first), not audited yet
            Effect::AuditDurable,  // lease.revoked
            Effect::JournalCommit, // the ending, audited
            Effect::GroupRewrite,  // both groups, one rewrite
            Effect::JournalCommit, // the grants, removed
            Effect::AuditDurable,  // group.removed ×2
        ],
        "the ending's steps changed: update this test's expectations with care"
    );
    for (k, step) in trace.iter().enumerate() {
        let (w, _, _) = run_to_crash(Some(k), true).await;
        power_on(&w);
        let _h = boot(&w).await;
        let mut v = violations(&w);
        v.extend(endings_not_audited_once(&w));
        assert!(v.is_empty(), "crash at step {k} ({step:?}): {v:?}");
        // Past the journal record the ending is final; before it the lease still holds.
        let ended = w
            .machine()
            .journaled()
            .values()
            .all(|l| l.state == LeaseState::Ended);
        assert_eq!(ended, k > 0, "crash at step {k}");
    }
}

/// A group rewrite that fails (a held lock, a full disk) is not the end of it: the ending is
/// journaled, and the tick tries the removal again, with back-off, until it works.
#[tokio::test]
async fn a_failed_removal_is_retried_until_it_works() {
    let w = machine();
    let h = boot(&w).await;
    let id = lease(op(&h, ALICE, LeaseOp::Request(request("ops"))).await).id;
    w.machine().fail(Effect::GroupRewrite);
    let l = lease(op(&h, ALICE, LeaseOp::Revoke { id, reason: None }).await);
    assert_eq!(l.state, LeaseState::Ended);
    assert_eq!(w.machine().members("ops"), ["alice"], "the rewrite failed");
    let rewrites = |w: &FakeWorld| w.machine().group_rewrites_tried();
    let first = rewrites(&w);
    tick(&h).await;
    assert_eq!(rewrites(&w), first, "not before the first back-off");
    w.advance(Duration::from_secs(1));
    tick(&h).await;
    assert_eq!(rewrites(&w), first + 1, "retried after 1 s");
    assert_eq!(w.machine().members("ops"), ["alice"], "still failing");
    w.advance(Duration::from_secs(1));
    tick(&h).await;
    assert_eq!(rewrites(&w), first + 1, "then after 2 s, not 1");
    w.machine().heal();
    w.advance(Duration::from_secs(1));
    tick(&h).await;
    let m = w.machine();
    assert!(m.members("ops").is_empty() && m.members("pgadmin").is_empty());
    assert!(!m.stopped());
}

/// A grant whose group rewrite failed added nothing: ending the lease removes nothing and
/// audits no removal.
#[tokio::test]
async fn an_ending_after_a_failed_grant_audits_no_removal() {
    let w = machine();
    let h = boot(&w).await;
    w.machine().fail(Effect::GroupRewrite);
    let id = lease(op(&h, ALICE, LeaseOp::Request(request("ops"))).await).id;
    assert!(w.machine().members("ops").is_empty());
    w.machine().heal();
    lease(op(&h, ALICE, LeaseOp::Revoke { id, reason: None }).await);
    let m = w.machine();
    assert!(m.members("ops").is_empty() && m.members("pgadmin").is_empty());
    assert!(!m.events().contains(&"group.removed"), "{:?}", m.events());
    assert!(m.events().contains(&"group.error"));
}

/// Every `lease.requested` id the audit log holds, in order.
fn requested_ids(w: &FakeWorld) -> Vec<u64> {
    w.machine()
        .audit
        .iter()
        .filter(|(e, _, _)| e.as_str() == "lease.requested")
        .filter_map(|(_, f, _)| f.get("lease")?.as_u64())
        .collect()
}

/// A request audited but never journaled (the world stopped in between): a restarted core
/// must not hand its id to another lease (issue 11: ids were reused after crashes).
#[tokio::test]
async fn lease_ids_never_repeat_across_crashes() {
    let (_, _, trace) = run_to_crash(None, false).await;
    for (k, step) in trace.iter().enumerate() {
        let (w, _, _) = run_to_crash(Some(k), false).await;
        power_on(&w);
        let h = boot(&w).await;
        lease(op(&h, BOB, LeaseOp::Request(request("ops"))).await);
        drop(h);
        // And once more after a restart with nothing in flight.
        let h = boot(&w).await;
        lease(op(&h, CAROL, LeaseOp::Request(request("ops"))).await);
        let ids = requested_ids(&w);
        let mut unique = ids.clone();
        unique.dedup();
        assert_eq!(
            ids, unique,
            "crash at step {k} ({step:?}): an id was reused"
        );
        assert!(
            ids.windows(2).all(|p| p[0] < p[1]),
            "crash at step {k}: {ids:?}"
        );
    }
}

/// A block of ids is reserved durably before the first of it is used; a full disk at that
/// moment refuses the request instead of risking a repeat.
#[tokio::test]
async fn a_failed_id_reservation_refuses_the_request() {
    let w = machine();
    let h = boot(&w).await;
    w.machine().fail(Effect::IdReservation);
    let why = refusal(op(&h, ALICE, LeaseOp::Request(request("ops"))).await);
    assert!(why.starts_with("lease state not saved"), "{why}");
    assert!(requested_ids(&w).is_empty() && w.machine().members("ops").is_empty());
    w.machine().heal();
    let l = lease(op(&h, ALICE, LeaseOp::Request(request("ops"))).await);
    assert_eq!(l.id, 1);
    assert_eq!(w.machine().ids_reserved, ID_BLOCK);
}

/// A grant that cannot be written (a read-only /etc, a held lock) is tried again from the
/// tick, backing off: it takes effect once the group files can be written, and a lasting
/// failure costs one attempt per back-off, not one per tick.
#[tokio::test]
async fn a_failed_grant_is_retried_with_back_off() {
    let w = machine();
    let h = boot(&w).await;
    w.machine().fail(Effect::GroupRewrite);
    lease(op(&h, ALICE, LeaseOp::Request(request("ops"))).await);
    assert!(w.machine().members("ops").is_empty());
    let rewrites = |w: &FakeWorld| w.machine().group_rewrites_tried();
    let first = rewrites(&w);
    tick(&h).await;
    assert_eq!(rewrites(&w), first, "not before the first back-off");
    w.advance(Duration::from_secs(1));
    tick(&h).await;
    assert_eq!(rewrites(&w), first + 1, "retried after 1 s");
    w.advance(Duration::from_secs(1));
    tick(&h).await;
    assert_eq!(rewrites(&w), first + 1, "then after 2 s, not 1");
    w.machine().heal();
    w.advance(Duration::from_secs(1));
    tick(&h).await;
    let m = w.machine();
    assert_eq!(m.members("ops"), ["alice"]);
    assert_eq!(m.members("pgadmin"), ["alice"]);
    assert!(m.events().contains(&"group.added"));
}
