//! Whether a request must first pass step-up authentication, and the short memory of one
//! that did (`auth_cache`): keyed by uid, terminal and process session, timed on the boot
//! clock so that neither a suspend nor a wall-clock change stretches it.

use super::State;
use crate::peer::Peer;
use elevate_base::{Pid, Uid};
use elevate_policy::Profile;
use std::collections::HashMap;
use std::time::Duration;

type Key = (Uid, String, Pid);

#[derive(Default)]
pub struct AuthCache {
    /// When each (uid, tty, sid) last authenticated, on CLOCK_BOOTTIME.
    at: HashMap<Key, Duration>,
}

/// At most this many remembered authentications (oldest dropped first beyond it).
const MAX_ENTRIES: usize = 4096;

impl AuthCache {
    fn remember(&mut self, key: Key, now: Duration) {
        if self.at.len() >= MAX_ENTRIES {
            if let Some(oldest) = self
                .at
                .iter()
                .min_by_key(|(_, t)| **t)
                .map(|(k, _)| k.clone())
            {
                self.at.remove(&oldest);
            }
        }
        self.at.insert(key, now);
    }

    fn fresh(&self, key: &Key, ttl: Duration, now: Duration) -> bool {
        self.at
            .get(key)
            .is_some_and(|t| now.checked_sub(*t).is_some_and(|age| age < ttl))
    }
}

/// Only a request with both a terminal and a process session has a key: without them there
/// is nothing to tie a remembered authentication to (D-Bus callers have no session id, so
/// they never share a terminal's cache).
fn key(peer: &Peer) -> Option<Key> {
    Some((peer.uid, peer.tty.clone()?, peer.sid?))
}

impl State {
    /// True when `profile` needs a step-up this request has not done and the cache does not
    /// cover. A request that just authenticated is remembered for later ones.
    pub(super) fn step_up_needed(&mut self, peer: &Peer, profile: &Profile) -> bool {
        if !profile.authenticate {
            return false;
        }
        let Some(now) = self.clock.boottime() else {
            // No clock, no cache: ask (fail closed).
            return !peer.stepped_up;
        };
        if peer.stepped_up {
            if let Some(k) = key(peer) {
                self.auth_cache.remember(k, now);
            }
            return false;
        }
        let Some(k) = key(peer) else {
            return true;
        };
        !profile
            .auth_cache
            .is_some_and(|ttl| self.auth_cache.fresh(&k, ttl, now))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entries_expire_and_keys_are_exact() {
        let mut c = AuthCache::default();
        let k = (Uid(1000), "/dev/pts/1".to_string(), Pid(42));
        c.remember(k.clone(), Duration::from_secs(100));
        let ttl = Duration::from_secs(300);
        assert!(c.fresh(&k, ttl, Duration::from_secs(399)));
        assert!(!c.fresh(&k, ttl, Duration::from_secs(400)));
        assert!(
            !c.fresh(&k, ttl, Duration::from_secs(50)),
            "a clock before the entry is not fresh"
        );
        assert!(!c.fresh(
            &(Uid(1000), "/dev/pts/2".into(), Pid(42)),
            ttl,
            Duration::from_secs(101)
        ));
        assert!(!c.fresh(
            &(Uid(1000), "/dev/pts/1".into(), Pid(43)),
            ttl,
            Duration::from_secs(101)
        ));
        assert!(!c.fresh(
            &(Uid(1001), "/dev/pts/1".into(), Pid(42)),
            ttl,
            Duration::from_secs(101)
        ));
    }

    #[test]
    fn no_key_without_a_terminal_and_a_session() {
        let peer = |tty: Option<&str>, sid| Peer {
            tty: tty.map(String::from),
            sid,
            ..Peer::from_bus(Uid(1000), None)
        };
        assert_eq!(
            key(&peer(Some("/dev/pts/1"), Some(Pid(7)))),
            Some((Uid(1000), "/dev/pts/1".into(), Pid(7)))
        );
        assert_eq!(key(&peer(Some("/dev/pts/1"), None)), None, "a D-Bus caller");
        assert_eq!(key(&peer(None, Some(Pid(7)))), None);
    }
}
