//! Whether a request must first pass step-up authentication, and the short memory of one
//! that did (`auth_cache`): keyed by uid, terminal and process session, timed on the boot
//! clock so that neither a suspend nor a wall-clock change stretches it.

use super::State;
use crate::identity::Peer;
use elevate_policy::Profile;
use std::collections::HashMap;
use std::time::Duration;

type Key = (u32, Option<String>, Option<i32>);

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

fn key(peer: &Peer) -> Key {
    (peer.uid, peer.tty.clone(), peer.sid)
}

impl State {
    /// True when `profile` needs a step-up this request has not done and the cache does not
    /// cover. A request that just authenticated is remembered for later ones.
    pub(super) fn step_up_needed(&mut self, peer: &Peer, profile: &Profile) -> bool {
        if !profile.authenticate {
            return false;
        }
        let Some(now) = crate::sys::boottime() else {
            // No clock, no cache: ask (fail closed).
            return !peer.stepped_up;
        };
        if peer.stepped_up {
            self.auth_cache.remember(key(peer), now);
            return false;
        }
        // Without a terminal there is nothing to key a cache on safely.
        if peer.tty.is_none() {
            return true;
        }
        !profile
            .auth_cache
            .is_some_and(|ttl| self.auth_cache.fresh(&key(peer), ttl, now))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entries_expire_and_keys_are_exact() {
        let mut c = AuthCache::default();
        let k = (1000, Some("/dev/pts/1".to_string()), Some(42));
        c.remember(k.clone(), Duration::from_secs(100));
        let ttl = Duration::from_secs(300);
        assert!(c.fresh(&k, ttl, Duration::from_secs(399)));
        assert!(!c.fresh(&k, ttl, Duration::from_secs(400)));
        assert!(
            !c.fresh(&k, ttl, Duration::from_secs(50)),
            "a clock before the entry is not fresh"
        );
        assert!(!c.fresh(
            &(1000, Some("/dev/pts/2".into()), Some(42)),
            ttl,
            Duration::from_secs(101)
        ));
        assert!(!c.fresh(
            &(1000, Some("/dev/pts/1".into()), Some(43)),
            ttl,
            Duration::from_secs(101)
        ));
        assert!(!c.fresh(
            &(1001, Some("/dev/pts/1".into()), Some(42)),
            ttl,
            Duration::from_secs(101)
        ));
    }
}
