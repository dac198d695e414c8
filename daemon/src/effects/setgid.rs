//! The end-of-lease set-gid sweep as the core sees it ([`SetgidSweeper`]), and the real one:
//! a thread of its own that walks the configured places (`os::setgid`) one job at a time and
//! hands each result to a callback given at construction — the core's queue, in the daemon.
//!
//! The core never waits for a walk: [`SetgidSweeper::sweep`] only merges the job into the one
//! waiting (so the queue is one job long however many leases end while a walk runs, and
//! nothing is ever dropped), and the walk's outcome comes back later as a report naming every
//! job it served.

use crate::effects::procs::Carriers;
use crate::os::setgid::{self as walk, Bounds, Sweep};
use elevate_policy::setgid::{NosuidWarning, ScanRoot};
use std::io;
use std::path::PathBuf;
use std::sync::{Arc, Condvar, Mutex, MutexGuard};

/// One ending's walk: the holders' revoked gids (uid → gids, standing ones already left out)
/// and where to look, the holders' own directories expanded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SweepJob {
    pub id: u64,
    pub wanted: Carriers,
    pub roots: Vec<PathBuf>,
}

/// What one walk did, for the jobs it served (jobs queued while another walk ran are served
/// together).
#[derive(Debug)]
pub struct SweepReport {
    pub jobs: Vec<u64>,
    pub sweep: Sweep,
}

/// Where reports go; called on the sweeper's own thread.
pub type Reporter = Box<dyn Fn(SweepReport) + Send>;

/// The sweep as the core sees it.
pub trait SetgidSweeper: Send + Sync {
    /// Queue a walk. Never waits; the report comes later, through the reporter.
    fn sweep(&self, job: SweepJob);
    /// The fixed places of `scan` (or of the defaults, when it is empty) that are not
    /// mounted `nosuid` on this host.
    fn nosuid_warnings(&self, scan: &[ScanRoot]) -> Vec<NosuidWarning>;
}

/// No sweep: what a core has until one is attached (tests that do not ask for one).
pub struct Off;

impl SetgidSweeper for Off {
    fn sweep(&self, _: SweepJob) {}
    fn nosuid_warnings(&self, _: &[ScanRoot]) -> Vec<NosuidWarning> {
        Vec::new()
    }
}

/// The job waiting for the walker: every job queued since the last walk began, merged.
#[derive(Default)]
struct Queue {
    waiting: Option<(Vec<u64>, SweepJob)>,
    closed: bool,
}

impl Queue {
    fn add(&mut self, job: SweepJob) {
        let Some((ids, merged)) = &mut self.waiting else {
            self.waiting = Some((vec![job.id], job));
            return;
        };
        ids.push(job.id);
        for (uid, gids) in job.wanted {
            merged.wanted.entry(uid).or_default().extend(gids);
        }
        for root in job.roots {
            if !merged.roots.contains(&root) {
                merged.roots.push(root);
            }
        }
    }
}

type Shared = Arc<(Mutex<Queue>, Condvar)>;

fn lock(shared: &Shared) -> MutexGuard<'_, Queue> {
    // The walker never panics while holding it; if it did, the queue is still whole.
    shared.0.lock().unwrap_or_else(|e| e.into_inner())
}

/// The real sweep, on its own thread.
pub struct Sweeper {
    shared: Shared,
}

impl Sweeper {
    /// Start the walker thread; each walk stops at `bounds`.
    pub fn start(bounds: Bounds, report: Reporter) -> io::Result<Sweeper> {
        let shared: Shared = Arc::default();
        let theirs = Arc::clone(&shared);
        std::thread::Builder::new()
            .name("setgid-sweep".into())
            .spawn(move || walker(&theirs, bounds, &report))?;
        Ok(Sweeper { shared })
    }
}

/// Take the waiting job, walk, report; until the sweeper is dropped.
fn walker(shared: &Shared, bounds: Bounds, report: &Reporter) {
    loop {
        let (ids, job) = {
            let mut q = lock(shared);
            loop {
                if let Some(next) = q.waiting.take() {
                    break next;
                }
                if q.closed {
                    return;
                }
                q = shared.1.wait(q).unwrap_or_else(|e| e.into_inner());
            }
        };
        let sweep = walk::sweep(&job.roots, &job.wanted, bounds);
        report(SweepReport { jobs: ids, sweep });
    }
}

impl SetgidSweeper for Sweeper {
    fn sweep(&self, job: SweepJob) {
        lock(&self.shared).add(job);
        self.shared.1.notify_one();
    }

    fn nosuid_warnings(&self, scan: &[ScanRoot]) -> Vec<NosuidWarning> {
        elevate_policy::setgid::nosuid_warnings(scan)
    }
}

impl Drop for Sweeper {
    fn drop(&mut self) {
        lock(&self.shared).closed = true;
        self.shared.1.notify_one();
    }
}

#[cfg(test)]
pub mod fake {
    //! A sweeper that walks nothing: it keeps the jobs it is given, and a test decides what
    //! the walk found ([`FakeSweeper::report`]).

    use super::*;
    use crate::os::setgid::Stripped;

    #[derive(Clone, Default)]
    pub struct FakeSweeper {
        pub jobs: Arc<Mutex<Vec<SweepJob>>>,
        reporter: Arc<Mutex<Option<Reporter>>>,
        /// What `nosuid_warnings` answers: these roots, whatever is asked.
        pub exposed: Arc<Mutex<Vec<PathBuf>>>,
    }

    impl FakeSweeper {
        /// The sweeper to attach, reporting through `reporter`.
        pub fn attach(&self, reporter: Reporter) -> Box<dyn SetgidSweeper> {
            *self.reporter.lock().unwrap() = Some(reporter);
            Box::new(self.clone())
        }

        pub fn jobs(&self) -> Vec<SweepJob> {
            self.jobs.lock().unwrap().clone()
        }

        /// Report a walk for every job so far, as the walker thread would (from a thread of
        /// its own: the core's queue is fed with a blocking send).
        pub fn report(&self, stripped: Vec<Stripped>, sweep: Sweep) {
            let jobs = self.jobs.lock().unwrap().iter().map(|j| j.id).collect();
            let reporter = Arc::clone(&self.reporter);
            let sweep = Sweep { stripped, ..sweep };
            std::thread::spawn(move || {
                if let Some(r) = reporter.lock().unwrap().as_ref() {
                    r(SweepReport { jobs, sweep });
                }
            })
            .join()
            .unwrap();
        }
    }

    impl SetgidSweeper for FakeSweeper {
        fn sweep(&self, job: SweepJob) {
            self.jobs.lock().unwrap().push(job);
        }

        fn nosuid_warnings(&self, scan: &[ScanRoot]) -> Vec<NosuidWarning> {
            let sweep = !scan.is_empty();
            let exposed = self.exposed.lock().unwrap().clone();
            exposed
                .into_iter()
                .map(|root| NosuidWarning { root, sweep })
                .collect()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use elevate_base::{Gid, Uid};
    use std::sync::mpsc;
    use std::time::Duration;

    fn job(id: u64, uid: u32, gids: &[u32], roots: &[&str]) -> SweepJob {
        SweepJob {
            id,
            wanted: [(Uid(uid), gids.iter().copied().map(Gid).collect())].into(),
            roots: roots.iter().map(PathBuf::from).collect(),
        }
    }

    #[test]
    fn queued_jobs_merge_into_one() {
        let mut q = Queue::default();
        q.add(job(1, 1000, &[5000], &["/tmp"]));
        q.add(job(2, 1000, &[5001], &["/tmp", "/home/alice"]));
        q.add(job(3, 1001, &[5000], &[]));
        let (ids, merged) = q.waiting.take().unwrap();
        assert_eq!(ids, [1, 2, 3]);
        assert_eq!(merged.roots, [PathBuf::from("/tmp"), "/home/alice".into()]);
        assert_eq!(merged.wanted[&Uid(1000)].len(), 2);
        assert_eq!(merged.wanted[&Uid(1001)].len(), 1);
    }

    #[test]
    fn the_walker_reports_every_job_it_served() {
        let (tx, rx) = mpsc::channel();
        let s = Sweeper::start(Bounds::default(), Box::new(move |r| tx.send(r).unwrap())).unwrap();
        s.sweep(job(
            7,
            4_000_000,
            &[4_000_000],
            &["/nonexistent/setgid-test"],
        ));
        let r = rx.recv_timeout(Duration::from_secs(10)).unwrap();
        assert_eq!(r.jobs, [7]);
        assert!(
            r.sweep.roots.is_empty() && r.sweep.errors.is_empty(),
            "{:?}",
            r.sweep
        );
        drop(s);
    }
}
