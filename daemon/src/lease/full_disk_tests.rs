//! The journal on a full disk, simulated by [`Space`]: endings are written on the reserve (or
//! kept until they can be), what may grant privilege is refused with [`StateFull`], the
//! reserve comes back with the space, and compaction never runs on it.

use super::journal::tests::lease;
use super::journal::{Journal, Kind, LeaseStore};
use super::model::{Lease, LeaseState};
use super::reserve::{is_state_full, Space, RESERVE_BYTES};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering::SeqCst};
use std::sync::Arc;

/// A fresh state directory, removed when dropped.
struct Dir(PathBuf);

impl Dir {
    fn new(tag: &str) -> Dir {
        let d = std::env::temp_dir().join(format!("elevate-full-{tag}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        std::fs::create_dir_all(&d).unwrap();
        Dir(d)
    }
}

impl Drop for Dir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// A simulated filesystem with `free` bytes of room, and the handle a test fills or frees.
fn room(free: u64) -> (Space, Arc<AtomicU64>) {
    let free = Arc::new(AtomicU64::new(free));
    (
        Space {
            free: Some(free.clone()),
        },
        free,
    )
}

fn reserve_on_disk(dir: &Path) -> bool {
    dir.join("reserve").exists()
}

/// What the journal on disk holds, each line whole (read as a restarted daemon would, without
/// rewriting the file under the journal being tested).
fn states(dir: &Path) -> Vec<(u64, LeaseState)> {
    let text = std::fs::read_to_string(dir.join("leases.jsonl")).unwrap();
    assert!(text.is_empty() || text.ends_with('\n'), "{text:?}");
    let mut last = std::collections::BTreeMap::new();
    for line in text.lines() {
        let l: Lease = serde_json::from_str(line).expect("every line a record");
        last.insert(l.id, l.state);
    }
    last.into_iter().collect()
}

#[test]
fn an_ending_on_a_full_disk_uses_the_reserve_and_requests_are_refused_until_space_returns() {
    let dir = Dir::new("reserve");
    let (space, free) = room(RESERVE_BYTES + 2_000);
    let (mut j, _) = Journal::open_on(&dir.0, space).unwrap();
    assert!(reserve_on_disk(&dir.0) && j.warnings().is_empty());
    j.commit([&lease(1, LeaseState::Active)], Kind::Granting)
        .unwrap();
    free.store(0, SeqCst); // something else fills the disk

    let e = j
        .commit([&lease(2, LeaseState::Active)], Kind::Granting)
        .unwrap_err();
    assert!(is_state_full(&e), "{e}");
    assert!(e.to_string().contains("is full: new requests, approvals and extensions are refused until space is freed; endings still take effect"), "{e}");
    assert!(reserve_on_disk(&dir.0), "never released for a request");
    assert!(j.warnings()[0].contains("full"), "{:?}", j.warnings());

    j.commit([&lease(1, LeaseState::Ended)], Kind::Ending)
        .unwrap();
    assert!(!reserve_on_disk(&dir.0), "released for the ending");
    assert!(j.warnings()[0].contains("running on reserve"));
    // The room the reserve left is for endings: a request does not take it.
    let e = j
        .commit([&lease(3, LeaseState::Active)], Kind::Granting)
        .unwrap_err();
    assert!(is_state_full(&e), "{e}");
    assert!(is_state_full(&j.reserve_ids(1000).unwrap_err()));
    assert_eq!(states(&dir.0), [(1, LeaseState::Ended)]);

    free.fetch_add(1 << 20, SeqCst); // space is freed
    j.commit([&lease(3, LeaseState::Active)], Kind::Granting)
        .unwrap();
    assert!(reserve_on_disk(&dir.0) && j.warnings().is_empty());
    let kept = std::fs::metadata(dir.0.join("reserve")).unwrap();
    assert_eq!(kept.len(), RESERVE_BYTES);
    assert_eq!(
        states(&dir.0),
        [(1, LeaseState::Ended), (3, LeaseState::Active)]
    );
}

#[test]
fn endings_that_cannot_be_written_even_on_the_reserve_are_written_first_later() {
    let dir = Dir::new("unsaved");
    let (space, free) = room(RESERVE_BYTES + 2_000);
    let (mut j, _) = Journal::open_on(&dir.0, space).unwrap();
    let active: Vec<Lease> = (1..=3).map(|id| lease(id, LeaseState::Active)).collect();
    j.commit(&active, Kind::Granting).unwrap();
    free.store(0, SeqCst);
    j.commit([&lease(1, LeaseState::Ended)], Kind::Ending)
        .unwrap();
    free.store(0, SeqCst); // the reserve's room is taken too
    assert!(j
        .commit([&lease(2, LeaseState::Ended)], Kind::Ending)
        .is_err());
    assert!(
        j.warnings().iter().any(|w| w.starts_with("1 lease record")),
        "{:?}",
        j.warnings()
    );
    free.store(4_000, SeqCst); // room for records, not for the reserve
    j.maintain();
    assert_eq!(
        states(&dir.0),
        [
            (1, LeaseState::Ended),
            (2, LeaseState::Ended),
            (3, LeaseState::Active)
        ]
    );
    assert!(j.warnings()[0].contains("running on reserve"));
    assert!(!reserve_on_disk(&dir.0));
    free.store(RESERVE_BYTES + 10_000, SeqCst);
    j.ensure_reserve().unwrap();
    assert!(reserve_on_disk(&dir.0) && j.warnings().is_empty());
}

#[test]
fn compaction_waits_while_the_reserve_is_in_use() {
    let dir = Dir::new("compact");
    let (space, free) = room(u64::MAX / 2);
    let (mut j, _) = Journal::open_on(&dir.0, space).unwrap();
    let ended: Vec<Lease> = (1..=50_001)
        .map(|id| lease(id, LeaseState::Ended))
        .collect();
    j.commit(&ended, Kind::Ending).unwrap();
    let journal = dir.0.join("leases.jsonl");
    let before = std::fs::metadata(&journal).unwrap().len();
    free.store(0, SeqCst);
    j.commit([&lease(7, LeaseState::Ended)], Kind::Ending)
        .unwrap();
    let kept = [lease(7, LeaseState::Ended)];
    j.maybe_compact(1, kept.iter()).unwrap();
    assert!(
        std::fs::metadata(&journal).unwrap().len() > before,
        "not compacted"
    );
    free.store(u64::MAX / 2, SeqCst);
    j.ensure_reserve().unwrap();
    j.maybe_compact(1, kept.iter()).unwrap();
    assert_eq!(
        std::fs::read_to_string(&journal).unwrap().lines().count(),
        1
    );
}

#[test]
fn a_journal_opened_on_a_full_disk_is_appended_to_as_it_is() {
    let dir = Dir::new("open");
    let line = |l: &Lease| serde_json::to_string(l).unwrap() + "\n";
    let text = line(&lease(1, LeaseState::Active)) + &line(&lease(2, LeaseState::Active));
    std::fs::write(dir.0.join("leases.jsonl"), text + "{\"id\":3,\"ui").unwrap();
    let (space, free) = room(0);
    let (mut j, leases) = Journal::open_on(&dir.0, space).unwrap();
    assert_eq!(leases.len(), 2);
    assert!(!reserve_on_disk(&dir.0) && j.warnings()[0].contains("running on reserve"));
    free.store(1_000, SeqCst);
    j.commit([&lease(2, LeaseState::Ended)], Kind::Ending)
        .unwrap();
    // The torn tail was cut, so the new record is a line of its own.
    assert_eq!(
        states(&dir.0),
        [(1, LeaseState::Active), (2, LeaseState::Ended)]
    );
}

#[test]
fn the_reserve_has_real_blocks() {
    use std::os::unix::fs::MetadataExt;
    let dir = Dir::new("blocks");
    let (j, _) = Journal::open(&dir.0).unwrap();
    let m = std::fs::metadata(dir.0.join("reserve")).unwrap();
    assert_eq!(m.len(), RESERVE_BYTES);
    assert!(m.blocks() * 512 >= RESERVE_BYTES, "{} blocks", m.blocks());
    assert!(j.warnings().is_empty());
}
