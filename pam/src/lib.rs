//! The logic of `pam_elevate.so`, kept apart from libpam so it can be unit-tested: module
//! arguments, who is exempt, the questions to the daemon and how each answer (or the lack of
//! one) maps to a PAM result. The cdylib (`pam-module/`) only converts between C and this.
//!
//! Nothing here reads environment variables, spawns threads or panics on any input (outside
//! tests the crate denies `unwrap`, `expect` and `panic!`); every daemon call is a blocking
//! exchange with the module's timeout. No `unsafe` and no libc calls: those are the cdylib's.

#![cfg_attr(
    not(test),
    deny(clippy::unwrap_used, clippy::expect_used, clippy::panic)
)]

pub mod args;
pub mod flow;

pub use args::{Args, ArgsError, FailMode};
pub use flow::{
    account, close_session, open_session, Accounts, Daemon, Outcome, PamCode, Phase, SocketDaemon,
};
