//! How long one locked, fsync'd rewrite of an /etc/group of 5,000 groups (and its gshadow)
//! takes: for one change, for a batch of 1,000 changes, and for a batch that changes nothing
//! (lock, read, parse only). Median and p90 of 50 runs each.
//!
//!   cargo run --release -p elevate-groupdb --example rewrite_bench [ROOT_DIR] [RUNS]
//!
//! ROOT_DIR (default /var/tmp/groupdb-bench-PID, removed afterwards) should be on the same
//! kind of file system as /etc: on a tmpfs, fsync is free and the figures mean nothing.
//! Prints a table on stderr and one JSON object on stdout (read by tests/bench/leases.sh,
//! which builds it with `--examples`).

use elevate_groupdb::{Change, GroupDb, Outcome};
use std::io;
use std::path::{Path, PathBuf};
use std::time::Instant;

const GROUPS: usize = 5000;

pub fn main() {
    let mut args = std::env::args().skip(1);
    let root = args
        .next()
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(format!("/var/tmp/groupdb-bench-{}", std::process::id())));
    let runs: usize = args
        .next()
        .and_then(|n| n.parse().ok())
        .unwrap_or(50)
        .max(1);
    if let Err(e) = run(&root, runs) {
        eprintln!("groupdb-bench: {e}");
        let _ = std::fs::remove_dir_all(&root);
        std::process::exit(1);
    }
    let _ = std::fs::remove_dir_all(&root);
}

fn run(root: &Path, runs: usize) -> io::Result<()> {
    let group = write_files(root)?;
    let db = GroupDb::at(root);
    let one = measure(&db, runs, 1, true)?;
    let batch = measure(&db, runs, 1000, true)?;
    let noop = measure(&db, runs, 1, false)?;
    if std::fs::read(root.join("etc/group"))? != group.as_bytes() {
        return Err(io::Error::other("/etc/group not restored by the undo"));
    }
    report(root, runs, group.len(), one, batch, noop);
    Ok(())
}

/// `root`/etc/group with [`GROUPS`] groups of four members each, and its gshadow (0640).
/// Returns the group file's text.
fn write_files(root: &Path) -> io::Result<String> {
    use std::os::unix::fs::PermissionsExt;
    std::fs::create_dir_all(root.join("etc"))?;
    let mut group = String::new();
    let mut gshadow = String::new();
    for i in 0..GROUPS {
        let members: Vec<String> = (0..4)
            .map(|m| format!("user{}", (i * 7 + m) % 3000))
            .collect();
        let members = members.join(",");
        group.push_str(&format!("grp{i}:x:{}:{members}\n", 20000 + i));
        gshadow.push_str(&format!("grp{i}:!::{members}\n"));
    }
    std::fs::write(root.join("etc/group"), &group)?;
    std::fs::write(root.join("etc/gshadow"), &gshadow)?;
    std::fs::set_permissions(
        root.join("etc/gshadow"),
        std::fs::Permissions::from_mode(0o640),
    )?;
    Ok(group)
}

/// p50 and p90 in ms of `runs` timed applies of `batch` fresh additions (`effective`) or
/// removals of non-members; each addition is undone again, untimed.
fn measure(db: &GroupDb, runs: usize, batch: usize, effective: bool) -> io::Result<(f64, f64)> {
    let mut times = Vec::with_capacity(runs);
    for run in 0..=runs {
        let changes: Vec<Change> = (0..batch)
            .map(|k| {
                let group = format!("grp{}", (k * 13 + run) % GROUPS);
                if effective {
                    Change::add(format!("bench{run}x{k}"), group)
                } else {
                    Change::remove(format!("nobody{k}"), group)
                }
            })
            .collect();
        let t = Instant::now();
        let out = db.apply(&changes)?;
        let ms = t.elapsed().as_secs_f64() * 1000.0;
        let want = if effective {
            Outcome::Added
        } else {
            Outcome::NotMember
        };
        if out.iter().any(|o| *o != want) {
            return Err(io::Error::other(format!("unexpected outcome {out:?}")));
        }
        if run > 0 {
            times.push(ms); // run 0 warms the page cache and the allocator
        }
        if effective {
            let undo: Vec<Change> = changes
                .iter()
                .map(|c| Change::remove(c.user(), c.group()))
                .collect();
            db.apply(&undo)?;
        }
    }
    times.sort_by(f64::total_cmp);
    Ok((times[times.len() / 2], times[times.len() * 9 / 10]))
}

/// The table on stderr, the JSON object on stdout.
fn report(
    root: &Path,
    runs: usize,
    group_len: usize,
    (one_p50, one_p90): (f64, f64),
    (batch_p50, batch_p90): (f64, f64),
    (noop_p50, noop_p90): (f64, f64),
) {
    eprintln!(
        "/etc/group: {GROUPS} groups, {} KiB (+ gshadow); {runs} runs each, fsync on, in {}",
        group_len / 1024,
        root.display()
    );
    eprintln!("  {:<36} {:>8} {:>8}", "", "p50 ms", "p90 ms");
    for (name, p50, p90) in [
        ("one change (one rewrite)", one_p50, one_p90),
        ("batch of 1,000 changes (one rewrite)", batch_p50, batch_p90),
        ("no-op change (lock + read, no write)", noop_p50, noop_p90),
    ] {
        eprintln!("  {name:<36} {p50:>8.2} {p90:>8.2}");
    }
    eprintln!(
        "  target: one rewrite <= 20 ms: {}",
        if one_p50 <= 20.0 { "met" } else { "MISSED" }
    );
    println!(
        "{{\"groups\":{GROUPS},\"runs\":{runs},\"one_change_ms_p50\":{one_p50:.2},\"one_change_ms_p90\":{one_p90:.2},\"batch_1000_ms_p50\":{batch_p50:.2},\"batch_1000_ms_p90\":{batch_p90:.2},\"noop_ms_p50\":{noop_p50:.2},\"noop_ms_p90\":{noop_p90:.2}}}"
    );
}
