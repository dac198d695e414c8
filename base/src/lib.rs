//! The bottom of elevate's dependency graph: words every crate uses, written once.
//!
//! * [`time`]: the RFC 3339 instants the audit log, the wire and the CLI share.
//! * [`duration`]: the human duration syntax (`90s`, `1h30m`, `2d`) and its canonical form.
//! * [`ids`]: [`Uid`], [`Gid`] and [`Pid`], so a group id is never passed where a user id goes.
//! * [`paths`]: the default socket and the secure PATH, which clients, daemon and policy share.
//! * [`text`]: free text someone typed, checked and escaped before anyone else sees it.
//! * [`os`]: the errno helper under every libc call (`cerr`) and the user/group lookups
//!   through NSS ([`os::nss`]); this crate's only `unsafe`.
//!
//! std and libc only (plus serde's derive for the id types): the PAM module links it.

pub mod duration;
pub mod ids;
pub mod os;
pub mod paths;
pub mod text;
pub mod time;

pub use ids::{Gid, Pid, Uid};
