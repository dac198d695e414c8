//! The group database as the core sees it: look a group up, apply a batch of membership
//! changes. The real one is `elevate_groupdb` on /etc/group and /etc/gshadow (a file lock,
//! a rewrite, renames and fsyncs).
//!
//! Edits never run on the core's task: another tool (useradd, vipw, gpasswd) may hold
//! `/etc/.pwd.lock` for seconds, and decisions, `status` and expiry must not wait for it. A
//! [`GroupEditor`] thread applies batches one at a time, in the order they were submitted,
//! and sends each outcome back; the core decides how long it is worth waiting for one.

use elevate_base::Gid;
use elevate_groupdb::{Change, GroupDb, Outcome};
use std::io;
use std::sync::mpsc as std_mpsc;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::mpsc;

/// How long one attempt waits for `/etc/.pwd.lock` on the editor's thread. Short of lckpwdf's
/// 15 s so that a failed attempt is reported (and retried with backoff) while the lock holder
/// works, rather than the whole queue waiting behind it silently.
pub const LOCK_WAIT: Duration = Duration::from_secs(5);

/// Batches waiting for the editor beyond this are refused (the core retries them later).
const QUEUE: usize = 64;

pub trait GroupDatabase: Send + Sync {
    /// The group's gid, `None` if there is no such group.
    fn gid_of(&self, group: &str) -> io::Result<Option<Gid>>;
    /// The group's member list, `None` if there is no such group.
    fn members_of(&self, group: &str) -> io::Result<Option<Vec<String>>>;
    /// Apply every change in one rewrite; one outcome per change, in order. Blocking.
    fn apply(&self, changes: &[Change]) -> io::Result<Vec<Outcome>>;
}

impl GroupDatabase for GroupDb {
    fn gid_of(&self, group: &str) -> io::Result<Option<Gid>> {
        Ok(GroupDb::gid_of(self, group)?.map(Gid))
    }

    fn members_of(&self, group: &str) -> io::Result<Option<Vec<String>>> {
        GroupDb::members_of(self, group)
    }

    fn apply(&self, changes: &[Change]) -> io::Result<Vec<Outcome>> {
        GroupDb::apply(self, changes)
    }
}

/// A batch the editor has finished (or failed): `ticket` is the one [`GroupEditor::submit`]
/// was given, `changes` the batch itself, back with one outcome per change.
#[derive(Debug)]
pub struct EditDone {
    pub ticket: u64,
    pub changes: Vec<Change>,
    pub result: io::Result<Vec<Outcome>>,
}

/// The thread that applies group edits, and the outcomes it sends back. Dropping it ends the
/// thread after the batch in hand.
pub struct GroupEditor {
    jobs: std_mpsc::SyncSender<(u64, Vec<Change>)>,
    results: mpsc::UnboundedReceiver<EditDone>,
}

impl GroupEditor {
    /// Start the editor over `db`.
    pub fn start(db: Arc<dyn GroupDatabase>) -> io::Result<GroupEditor> {
        let (jobs, queue) = std_mpsc::sync_channel::<(u64, Vec<Change>)>(QUEUE);
        let (done, results) = mpsc::unbounded_channel();
        std::thread::Builder::new()
            .name("group-edits".into())
            .spawn(move || {
                while let Ok((ticket, changes)) = queue.recv() {
                    // A core that is gone (a stopped daemon, a test's crash) gets no more edits.
                    if done.is_closed() {
                        break;
                    }
                    let result = db.apply(&changes);
                    let done_one = EditDone {
                        ticket,
                        changes,
                        result,
                    };
                    if done.send(done_one).is_err() {
                        break;
                    }
                }
            })?;
        Ok(GroupEditor { jobs, results })
    }

    /// Queue a batch. Fails when the queue is full or the thread is gone: nothing was applied.
    pub fn submit(&self, ticket: u64, changes: Vec<Change>) -> io::Result<()> {
        self.jobs.try_send((ticket, changes)).map_err(|e| match e {
            std_mpsc::TrySendError::Full(_) => io::Error::new(
                io::ErrorKind::WouldBlock,
                "too many group edits are waiting for /etc/group",
            ),
            std_mpsc::TrySendError::Disconnected(_) => {
                io::Error::other("the group editor thread is gone")
            }
        })
    }

    /// The next outcome, in submission order (`None` if the thread is gone).
    pub async fn next_done(&mut self) -> Option<EditDone> {
        self.results.recv().await
    }
}
