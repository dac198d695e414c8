//! The group database as the core sees it: look a group up, apply a batch of membership
//! changes. The real one is `elevate_groupdb` on /etc/group and /etc/gshadow (a file lock,
//! a rewrite, renames and fsyncs: blocking work, run off the async worker).

use elevate_base::Gid;
use elevate_groupdb::{Change, GroupDb, Outcome};
use std::io;

pub trait GroupDatabase: Send + Sync {
    /// The group's gid, `None` if there is no such group.
    fn gid_of(&self, group: &str) -> io::Result<Option<Gid>>;
    /// The group's member list, `None` if there is no such group.
    fn members_of(&self, group: &str) -> io::Result<Option<Vec<String>>>;
    /// Apply every change in one rewrite; one outcome per change, in order.
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
        tokio::task::block_in_place(|| GroupDb::apply(self, changes))
    }
}
