//! The world outside the core's state, each part behind a small trait (a seam) so that the
//! core can be built over in-memory fakes in tests and over the real machine in the daemon:
//!
//! | seam | real | what |
//! |---|---|---|
//! | [`clock::Clock`] | `SystemClock` | wall, monotonic and boot clocks |
//! | [`accounts::Accounts`] | `Nss` | users and groups through NSS; paths for commands |
//! | [`groups::GroupDatabase`] | `elevate_groupdb::GroupDb` | /etc/group and /etc/gshadow edits |
//! | [`procs::ProcessTable`] | `Proc` | the /proc scan, signals, pidfd watches |
//! | [`audit::AuditSink`] | `AuditHandle` | the hash-chained audit log |
//! | [`audit_history::AuditHistory`] | `AuditFile` | whether an ending reached the log (start-up) |
//! | [`policy_files::PolicySource`] | `PolicyDir` | the policy directory |
//! | [`wall::Terminals`] | `Pts` | notices on users' terminals |
//! | [`setgid::SetgidSweeper`] | `Sweeper` | the end-of-lease set-gid sweep, on its own thread |
//!
//! (The lease journal's seam, `LeaseStore`, lives with the journal in `lease/`.) The notify
//! hook has no seam: it runs only when `notify_command` is configured.

pub mod accounts;
pub mod audit;
pub mod audit_history;
pub mod clock;
#[cfg(test)]
pub mod fake;
pub mod groups;
pub mod notify;
pub mod policy_files;
pub mod procs;
pub mod setgid;
pub mod wall;
