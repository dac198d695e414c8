//! Deciding runs: standing access, leased access, run-as, host scoping, rate limits.

use super::*;
use crate::core::Decision;
use elevate_proto::ErrorKind;

fn allowed(d: Decision) -> Box<crate::exec::Plan> {
    match d {
        Decision::Allow(p) => p,
        other => panic!("expected allow, got {other:?}"),
    }
}

fn denied(d: Decision) -> String {
    match d {
        Decision::Deny { reason, .. } => reason,
        other => panic!("expected deny, got {other:?}"),
    }
}

#[tokio::test]
async fn standing_profile_allows_its_exact_command_as_root() {
    let w = machine();
    let h = boot(&w).await;
    let plan = allowed(run(&h, ALICE, &["systemctl", "restart", "nginx.service"]).await);
    assert_eq!(plan.profile, "web");
    assert_eq!(
        (plan.run_as.as_str(), plan.uid, plan.gid),
        ("root", Uid(0), Gid(0))
    );
    assert_eq!(plan.path, PathBuf::from("/usr/bin/systemctl"));
    assert_eq!(
        plan.argv,
        ["/usr/bin/systemctl", "restart", "nginx.service"]
    );
    let env: BTreeMap<_, _> = plan.env.iter().cloned().collect();
    assert_eq!(env.get("ELEVATE_USER").map(String::as_str), Some("alice"));
    assert_eq!(env.get("HOME").map(String::as_str), Some("/home/root"));
}

#[tokio::test]
async fn other_arguments_other_users_and_unknown_commands_are_denied() {
    let w = machine();
    let h = boot(&w).await;
    let why = denied(run(&h, ALICE, &["systemctl", "stop", "nginx.service"]).await);
    assert!(!why.is_empty());
    denied(run(&h, BOB, &["systemctl", "restart", "nginx.service"]).await);
    let why = denied(run(&h, ALICE, &["no-such-command"]).await);
    assert!(why.contains("no-such-command"), "{why}");
}

#[tokio::test]
async fn a_profile_for_other_hosts_does_not_apply_here() {
    let w = machine();
    let h = boot(&w).await;
    denied(run(&h, ALICE, &["uptime"]).await);
}

#[tokio::test]
async fn a_lease_profile_allows_only_while_a_lease_is_active_and_runs_as_its_user() {
    let w = machine();
    let h = boot(&w).await;
    denied(run(&h, ALICE, &["psql"]).await);
    let id = lease(op(&h, ALICE, LeaseOp::Request(request("db"))).await).id;
    denied(run(&h, ALICE, &["psql"]).await);
    for approver in [CAROL, DAVE] {
        let comment = None;
        lease(op(&h, approver, LeaseOp::Approve { id, comment }).await);
    }
    let plan = allowed(run(&h, ALICE, &["psql"]).await);
    assert_eq!((plan.run_as.as_str(), plan.uid), ("postgres", Uid(70)));
    assert_eq!(plan.profile, "db");
    // Bob is eligible but holds no lease.
    denied(run(&h, BOB, &["psql"]).await);
}

#[tokio::test]
async fn a_user_unknown_to_nss_is_refused_not_denied() {
    let w = machine();
    let h = boot(&w).await;
    match run(&h, 4242, &["id"]).await {
        Decision::Refuse(e) => {
            assert_eq!(e.kind, ErrorKind::BadRequest);
            assert_eq!(e.message, "uid 4242 has no user account on this host");
        }
        other => panic!("{other:?}"),
    }
}

#[tokio::test]
async fn the_rate_limit_is_per_user() {
    let w = machine();
    let mut s = (*settings()).clone();
    s.limits.requests_per_second = 1;
    s.limits.burst = 3;
    let h = boot_with(&w, Arc::new(s)).await;
    let argv = ["systemctl", "restart", "nginx.service"];
    for _ in 0..3 {
        allowed(run(&h, ALICE, &argv).await);
    }
    match run(&h, ALICE, &argv).await {
        Decision::Refuse(e) => assert_eq!(e.kind, ErrorKind::RateLimited),
        other => panic!("{other:?}"),
    }
    // Bob's bucket is his own; time refills Alice's.
    denied(run(&h, BOB, &argv).await);
    w.advance(Duration::from_secs(2));
    allowed(run(&h, ALICE, &argv).await);
}

#[tokio::test]
async fn a_dry_run_names_the_profile_and_path_without_a_plan() {
    let w = machine();
    let h = boot(&w).await;
    let req = RunRequest {
        argv: vec!["systemctl".into(), "restart".into(), "nginx.service".into()],
        profile: None,
        run_as: None,
        env: vec![],
    };
    let (p, d) = h.decide(peer(ALICE), req, true).await.expect("core");
    assert_eq!(p.user, "alice", "the peer comes back named");
    match crate::core::checked(&d) {
        Response::Checked(c) => {
            assert!(c.allowed);
            assert_eq!(c.profile.as_deref(), Some("web"));
            assert_eq!(c.path.as_deref(), Some("/usr/bin/systemctl"));
        }
        other => panic!("{other:?}"),
    }
}

/// A remembered step-up belongs to one terminal session: the session leader's pid and start
/// time. A later session whose leader got the same pid (and a pty of the same number) asks
/// again, and the old entry is dropped once its leader is gone (issue 12: a user's background
/// process forked to the old leader's pid, called setsid, reopened the pty and skipped the
/// prompt).
#[tokio::test]
async fn a_step_up_is_remembered_for_its_session_only() {
    let w = machine();
    w.machine().policy = Some(format!(
        "{POLICY}\n[[profile]]\nname = \"sudo-ish\"\nusers = [\"bob\"]\nauthenticate = true\n\
         auth_cache = \"5m\"\n[[profile.command]]\npath = \"/usr/bin/uptime\"\n"
    ));
    let leader = w.process(4242, BOB, &[BOB]);
    let h = boot(&w).await;
    let on_tty = |stepped_up| Peer {
        tty: Some("/dev/pts/3".into()),
        sid: Some(Pid(4242)),
        sid_start: w.machine().procs.get(&Pid(4242)).map(|p| p.start_time),
        stepped_up,
        ..peer(BOB)
    };
    let ask = |peer: Peer| {
        let req = RunRequest {
            argv: vec!["uptime".into()],
            profile: None,
            run_as: None,
            env: vec![],
        };
        let h = &h;
        async move { h.decide(peer, req, false).await.expect("core running").1 }
    };
    assert!(matches!(
        ask(on_tty(false)).await,
        Decision::Authenticate { .. }
    ));
    allowed(ask(on_tty(true)).await);
    allowed(ask(on_tty(false)).await); // remembered for this session
                                       // The leader exits; a new process gets its pid and becomes the leader of a new session.
    w.machine().procs.remove(&leader.pid);
    w.process(4242, BOB, &[BOB]);
    w.machine()
        .procs
        .get_mut(&Pid(4242))
        .expect("the new leader")
        .start_time += 1;
    assert!(
        matches!(ask(on_tty(false)).await, Decision::Authenticate { .. }),
        "a new session with the old leader's pid and pty asks again"
    );
}

fn refused(r: Result<crate::core::handle::Slot, elevate_proto::ErrorReply>) -> String {
    match r {
        Ok(_) => panic!("admitted"),
        Err(e) => e.message,
    }
}

/// Ten users holding all the connections they may cannot lock root (PAM checks) or an admin
/// out, and once half the cap is in use each user may hold only a quarter of their share.
#[tokio::test]
async fn connection_floods_leave_room_for_root_admins_and_other_users() {
    let w = machine();
    let mut s = (*settings()).clone();
    s.limits.max_connections = 32;
    s.limits.max_connections_per_uid = 8;
    let h = boot_with(&w, Arc::new(s)).await;
    let open = |uid: u32| {
        let h = &h;
        async move { h.open(Uid(uid)).await.expect("core running") }
    };
    let mut held = Vec::new();
    // The first two users take their full share: 16 of 32, half the cap.
    for uid in [2000, 2001] {
        for _ in 0..8 {
            held.push(open(uid).await.expect("admitted"));
        }
        assert!(open(uid).await.is_err(), "per-uid cap");
    }
    // Under pressure, the next users get 2 each, and are told to slow down beyond it.
    for uid in 2002..2007 {
        for _ in 0..2 {
            let slot = open(uid).await.expect("admitted under pressure");
            assert!(slot.pressed(), "short timeouts under pressure");
            held.push(slot);
        }
        let e = refused(open(uid).await);
        assert!(e.contains("too many open connections"), "{e}");
    }
    for _ in 0..2 {
        held.push(open(2007).await.expect("admitted under pressure"));
    }
    // 28 in use: the unprivileged part of the cap (32 - 32/8) is full.
    let e = refused(open(BOB).await);
    assert!(
        e.contains("connection limit"),
        "the unprivileged cap is full: {e}"
    );
    held.push(open(DAVE).await.expect("an admin uses the reserve"));
    for _ in 0..3 {
        held.push(open(0).await.expect("root uses the reserve (PAM checks)"));
    }
    assert!(open(0).await.is_err(), "the whole cap is in use");
    drop(held);
}
