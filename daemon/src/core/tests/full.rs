//! A full state directory (issue 11): what may grant privilege is refused with a message that
//! says so, and endings still take effect — even when the journal cannot write them at all.

use super::*;
use crate::effects::fake::Effect;
use crate::lease::model::LeaseState;
use elevate_proto::ErrorKind;

/// The kind and message of an error answer.
fn error(r: Response) -> (ErrorKind, String) {
    match r {
        Response::Error(e) => (e.kind, e.message),
        other => panic!("expected an error, got {other:?}"),
    }
}

const FULL: &str = "the state directory /var/lib/elevate is full: new requests, approvals and extensions are refused until space is freed; endings still take effect";

#[tokio::test]
async fn a_full_state_directory_refuses_what_grants_and_still_ends_leases() {
    let w = machine();
    let h = boot(&w).await;
    let id = lease(op(&h, ALICE, LeaseOp::Request(request("ops"))).await).id;
    let pending = lease(op(&h, BOB, LeaseOp::Request(request("db"))).await).id;
    assert_eq!(w.machine().members("ops"), ["alice"]);
    w.machine().fail(Effect::StateDirFull);
    let audited = w.machine().audit.len();

    let asks = [
        (CAROL, LeaseOp::Request(request("ops"))),
        (ALICE, LeaseOp::Extend { id, by_secs: 60 }),
        (
            CAROL,
            LeaseOp::Approve {
                id: pending,
                comment: None,
            },
        ),
    ];
    for (uid, ask) in asks {
        assert_eq!(
            error(op(&h, uid, ask).await),
            (ErrorKind::StateFull, FULL.to_string())
        );
    }
    assert_eq!(
        w.machine().audit.len(),
        audited,
        "refused before anything is audited: {:?}",
        w.machine().events()
    );
    let Response::Status(s) = h.status().await.expect("core") else {
        panic!("a status")
    };
    assert!(s.warnings[0].contains("running on reserve"), "{s:?}");

    // The lease still ends at its deadline, and its memberships go.
    w.advance(Duration::from_secs(601));
    tick(&h).await;
    {
        let m = w.machine();
        assert_eq!(m.journaled()[&id].state, LeaseState::Ended);
        assert!(m.members("ops").is_empty() && m.members("pgadmin").is_empty());
        assert!(m.events().contains(&"lease.expired"));
    }

    // Revoking is an ending too.
    let l = lease(
        op(
            &h,
            BOB,
            LeaseOp::Revoke {
                id: pending,
                reason: None,
            },
        )
        .await,
    );
    assert_eq!(l.state, LeaseState::Ended);

    w.machine().heal();
    let l = lease(op(&h, CAROL, LeaseOp::Request(request("ops"))).await);
    assert_eq!(l.state, LeaseState::Active);
    assert_eq!(w.machine().members("ops"), ["carol"]);
}

#[tokio::test]
async fn an_id_reservation_on_a_full_state_directory_is_refused_the_same_way() {
    let w = machine();
    let h = boot(&w).await;
    w.machine().fail(Effect::StateDirFull);
    let (kind, message) = error(op(&h, ALICE, LeaseOp::Request(request("ops"))).await);
    assert_eq!((kind, message.as_str()), (ErrorKind::StateFull, FULL));
    assert_eq!(w.machine().ids_reserved, 0);
}

/// Less privilege is the safe side: an ending that the journal cannot write at all (not
/// even on the reserve) still removes the memberships now.
#[tokio::test]
async fn an_ending_the_journal_cannot_write_still_removes_the_memberships() {
    let w = machine();
    let h = boot(&w).await;
    let id = lease(op(&h, ALICE, LeaseOp::Request(request("ops"))).await).id;
    w.machine().fail(Effect::JournalCommit);
    w.advance(Duration::from_secs(601));
    tick(&h).await;
    {
        let m = w.machine();
        assert!(m.members("ops").is_empty() && m.members("pgadmin").is_empty());
        assert!(m.events().contains(&"lease.expired") && m.events().contains(&"group.removed"));
        assert_eq!(
            m.journaled()[&id].state,
            LeaseState::Active,
            "the fake journal wrote nothing"
        );
    }
    let Response::Leases { leases } = op(&h, ALICE, LeaseOp::List { all: false }).await else {
        panic!("a list of leases")
    };
    let l = leases.iter().find(|l| l.id == id).expect("listed");
    assert_eq!(l.state, LeaseState::Ended, "the core knows it ended");
}
