//! The contract between `elevated` and its clients (the `elevate` CLI, the PAM module
//! `pam_elevate.so`, the load generator).
//!
//! Deliberately std + serde + libc only (and elevate-base, which is the same) — no async
//! runtime — so that a PAM module dlopen'ed into sshd can link it without pulling threads into
//! the host process. For the same reason nothing outside tests may `unwrap`, `expect` or
//! `panic!`: errors are returned.
//!
//! Framing: every message is a 4-byte big-endian length followed by that many bytes of JSON.
//! A request is one frame of at most [`MAX_FRAME`] bytes. An answer longer than that (every
//! lease on a busy host, a large policy's `list`) continues over several frames: the top bit of
//! the length ([`frame::CONTINUED`]) says another part follows, up to [`MAX_REPLY`] in all.
//! A `run` request carries four file descriptors (stdin, stdout, stderr, cwd) as SCM_RIGHTS
//! ancillary data on its first byte. [`fdpass`] is the crate's OS layer: its only `unsafe`
//! and its only libc calls.

#![cfg_attr(
    not(test),
    deny(clippy::unwrap_used, clippy::expect_used, clippy::panic)
)]

pub mod client;
pub mod exit;
pub mod fdpass;
pub mod frame;
pub mod wire;

pub use client::{Client, ClientError};
pub use wire::*;

/// Where the daemon listens, and the PATH commands run with: defined in `elevate-base` (the
/// policy crate needs them too) and re-exported here for the protocol's users.
pub use elevate_base::paths::{DEFAULT_SOCKET, SECURE_PATH};

/// Largest frame either side accepts. Anything longer is a protocol error, never an allocation.
pub const MAX_FRAME: usize = 64 * 1024;

/// Largest answer a client accepts, over all the frames it continues across; the daemon
/// answers an error instead of a longer one.
pub const MAX_REPLY: usize = 64 * 1024 * 1024;

/// Bumped on incompatible wire changes; the daemon reports it in `status`.
/// 2: answers longer than [`MAX_FRAME`] continue over several frames.
pub const PROTOCOL_VERSION: u32 = 2;
