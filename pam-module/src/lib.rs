//! `pam_elevate.so`: logins gated by elevate leases, sessions that end with them.
//!
//! A thin shell over the `elevate-pam` library: each `pam_sm_*` entry point (exported from
//! `ffi.rs`, the crate's only `unsafe` code) comes to `entry`, which reads what PAM knows,
//! lets the library decide, and converts the result. Every entry point runs inside
//! `catch_unwind`, so a bug becomes PAM_SYSTEM_ERR (a denial), never an abort of sshd or
//! login; outside tests `unwrap`, `expect` and `panic!` are denied besides (the one panic
//! left is the test builds' `inject_panic`). No threads, no async runtime, no environment
//! variables; logging is syslog only.
//!
//! Only the account and session phases are provided. Listed in `auth` or `password`,
//! libpam finds no symbol and fails the stack (closed), which is the safe mistake.

#![cfg_attr(
    not(test),
    deny(clippy::unwrap_used, clippy::expect_used, clippy::panic)
)]

mod ffi;

use elevate_pam::flow::SocketDaemon;
use elevate_pam::{Accounts, Args, Outcome, PamCode, Phase};
use elevate_proto::LoginQuery;
use ffi::Call;
use pam_sys::{PamItemType, PamReturnCode};
use std::ffi::c_int;
use std::fmt;
use std::panic::{catch_unwind, AssertUnwindSafe};

struct Nss;
impl Accounts for Nss {
    fn in_group(&self, user: &str, group: &str) -> bool {
        ffi::in_group(user, group)
    }
}

fn code(c: PamCode) -> c_int {
    (match c {
        PamCode::Success => PamReturnCode::SUCCESS,
        PamCode::PermDenied => PamReturnCode::PERM_DENIED,
        PamCode::Ignore => PamReturnCode::IGNORE,
        PamCode::AuthInfoUnavail => PamReturnCode::AUTHINFO_UNAVAIL,
        PamCode::ServiceErr => PamReturnCode::SERVICE_ERR,
        PamCode::SessionErr => PamReturnCode::SESSION_ERR,
        PamCode::SystemErr => PamReturnCode::SYSTEM_ERR,
    }) as c_int
}

/// The whole of one entry point, panics and all: each exported `pam_sm_*` symbol in
/// `ffi.rs` wraps libpam's arguments in a [`Call`] and comes here.
fn entry(call: &Call, phase: Phase) -> c_int {
    let r = catch_unwind(AssertUnwindSafe(|| run(call, phase)));
    match r {
        Ok(c) => c,
        Err(_) => {
            // Even the logging is guarded: nothing may unwind into C.
            let _ = catch_unwind(|| ffi::syslog(true, "internal error (panic); denying"));
            code(PamCode::SystemErr)
        }
    }
}

fn run(call: &Call, phase: Phase) -> c_int {
    let Some(h) = call.handle() else {
        ffi::syslog(true, "called without a PAM handle; denying");
        return code(PamCode::SystemErr);
    };
    let words = match call.args() {
        Ok(w) => w,
        Err(e) => return bad_arguments(phase, &e),
    };
    let args = match Args::parse(words) {
        Ok(a) => a,
        Err(e) => return bad_arguments(phase, &e),
    };
    if args.inject_panic {
        // The one deliberate panic: test builds (feature `panic-injection`) check that
        // `entry` turns it into a denial.
        #[allow(clippy::panic)]
        {
            panic!("inject_panic: test build");
        }
    }
    let service = h.item(PamItemType::SERVICE).unwrap_or_default();
    let outcome: Outcome = if phase == Phase::CloseSession {
        elevate_pam::close_session(&args, h.session_id(), &mut SocketDaemon)
    } else {
        let Some(user) = h.user() else {
            ffi::syslog(true, &format!("{service}: no user name; denying"));
            return code(PamCode::PermDenied);
        };
        let q = LoginQuery {
            service,
            user,
            rhost: h.item(PamItemType::RHOST),
            tty: h.item(PamItemType::TTY),
        };
        if phase == Phase::Account {
            elevate_pam::account(&args, &q, &Nss, &mut SocketDaemon)
        } else {
            elevate_pam::open_session(&args, &q, &Nss, &mut SocketDaemon)
        }
    };
    for (error, line) in &outcome.log {
        ffi::syslog(*error, line);
    }
    if let Some(msg) = &outcome.user_message {
        h.tell(msg);
    }
    if let Some(id) = outcome.session_id {
        if !h.set_session_id(id) {
            ffi::syslog(
                true,
                &format!("cannot remember session {id} for close_session"),
            );
        }
    }
    code(outcome.code)
}

fn bad_arguments(phase: Phase, e: &dyn fmt::Display) -> c_int {
    ffi::syslog(true, &format!("bad module arguments: {e}; denying"));
    code(phase.bad_arguments())
}
