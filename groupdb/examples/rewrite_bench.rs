//! How long one locked, fsync'd rewrite of an /etc/group with 5,000 groups takes, for one
//! change and for a batch of 1,000. Run by tests/bench/leases.sh:
//!   cargo run --release -p elevate-groupdb --example rewrite_bench [ROOT_DIR]
//! Prints JSON: median and p90 milliseconds over 50 runs each.

use elevate_groupdb::{Change, GroupDb};
use std::time::Instant;

fn main() {
    let root = std::env::args()
        .nth(1)
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|| {
            std::env::temp_dir().join(format!("groupdb-bench-{}", std::process::id()))
        });
    std::fs::create_dir_all(root.join("etc")).expect("bench root");
    let mut group = String::new();
    let mut gshadow = String::new();
    for i in 0..5000 {
        let members: Vec<String> = (0..4)
            .map(|m| format!("user{}", (i * 7 + m) % 3000))
            .collect();
        group.push_str(&format!("grp{i}:x:{}:{}\n", 20000 + i, members.join(",")));
        gshadow.push_str(&format!("grp{i}:!::{}\n", members.join(",")));
    }
    std::fs::write(root.join("etc/group"), &group).expect("write group");
    std::fs::write(root.join("etc/gshadow"), &gshadow).expect("write gshadow");
    let db = GroupDb::at(&root);
    let measure = |batch: usize| -> (f64, f64) {
        let mut times = Vec::new();
        for run in 0..50 {
            let changes: Vec<Change> = (0..batch)
                .map(|k| {
                    let (user, group) = (
                        format!("bench{run}x{k}"),
                        format!("grp{}", (k * 13 + run) % 5000),
                    );
                    Change::Add { user, group }
                })
                .collect();
            let t = Instant::now();
            db.apply(&changes).expect("apply");
            times.push(t.elapsed().as_secs_f64() * 1000.0);
            let undo: Vec<Change> = changes
                .into_iter()
                .map(|c| match c {
                    Change::Add { user, group } => Change::Remove { user, group },
                    other => other,
                })
                .collect();
            db.apply(&undo).expect("undo");
        }
        times.sort_by(f64::total_cmp);
        (times[times.len() / 2], times[times.len() * 9 / 10])
    };
    let (one_p50, one_p90) = measure(1);
    let (batch_p50, batch_p90) = measure(1000);
    println!(
        "{{\"groups\":5000,\"one_change_ms_p50\":{one_p50:.2},\"one_change_ms_p90\":{one_p90:.2},\"batch_1000_ms_p50\":{batch_p50:.2},\"batch_1000_ms_p90\":{batch_p90:.2}}}"
    );
    let _ = std::fs::remove_dir_all(&root);
}
