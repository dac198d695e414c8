//! Which connections are let in. Every connection costs the daemon a task and a descriptor,
//! so their number is capped — globally and per uid — and nothing an unprivileged user does
//! may lock the host out:
//!
//! - **a reserve**: the last eighth of the global cap is kept for root (PAM account and
//!   session checks arrive from sshd, login and su, as root) and for the policy's admins;
//! - **fairness under pressure**: once half the cap is in use, an unprivileged uid may hold a
//!   quarter of its usual share, so a few users holding idle connections cannot squeeze the
//!   rest out;
//! - **a rate**: new connections per uid are a token bucket (root's are not counted);
//! - **short patience under pressure**: a connection admitted then gets short read and idle
//!   timeouts, so slow or idle clients give their place back early.

use super::{busy, State};
use elevate_base::Uid;
use elevate_proto::ErrorReply;
use std::time::Duration;

/// Read and idle timeouts of a connection admitted while the daemon is under pressure.
pub const PRESSED_READ: Duration = Duration::from_millis(500);
pub const PRESSED_IDLE: Duration = Duration::from_millis(1_000);

/// What admission tells the connection: whether the daemon was under pressure (half its
/// connections in use) when it was let in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[must_use]
pub struct Admission {
    pub pressed: bool,
}

impl State {
    pub(super) fn admit(&mut self, uid: Uid) -> Result<Admission, ErrorReply> {
        let l = &self.settings.limits;
        let (total, per_uid) = (l.max_connections, l.max_connections_per_uid);
        let pressed = self.conns_total * 2 >= total;
        // Whether the reserve is theirs matters only under pressure: asked (an identity
        // look-up) only then, never on an idle daemon's every connection.
        let privileged = pressed && self.privileged(uid);
        let cap = if privileged {
            total
        } else {
            total.saturating_sub(total / 8)
        };
        if self.conns_total >= cap {
            return Err(busy(
                "the daemon is at its connection limit; try again shortly",
            ));
        }
        let mine = self.conns_by_uid.get(&uid).copied().unwrap_or(0);
        let my_cap = match (uid == Uid(0), pressed && !privileged) {
            (true, _) => total,
            (false, true) => (per_uid / 4).max(2),
            (false, false) => per_uid,
        };
        if mine >= my_cap {
            return Err(busy(
                "too many open connections from your user; close some and retry",
            ));
        }
        if uid != Uid(0) && !self.conn_limiter.allow(uid, self.clock.now()) {
            return Err(busy(
                "your user is opening connections too fast; slow down and retry",
            ));
        }
        *self.conns_by_uid.entry(uid).or_insert(0) += 1;
        self.conns_total += 1;
        Ok(Admission { pressed })
    }

    pub(super) fn release(&mut self, uid: Uid) {
        self.conns_total = self.conns_total.saturating_sub(1);
        if let Some(n) = self.conns_by_uid.get_mut(&uid) {
            *n = n.saturating_sub(1);
            if *n == 0 {
                self.conns_by_uid.remove(&uid);
            }
        }
    }

    /// Root, or an admin of the policy: the reserve is theirs.
    fn privileged(&mut self, uid: Uid) -> bool {
        if uid == Uid(0) {
            return true;
        }
        let policy = self.policy.clone();
        self.identities
            .by_uid(uid)
            .is_some_and(|(_, subject)| policy.is_admin(&subject))
    }
}
