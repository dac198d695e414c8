//! Whether a request must first pass step-up authentication, and the short memory of one
//! that did (`auth_cache`): keyed by uid, terminal and process session — the session as its
//! leader's pid *and start time*, so a later session whose leader got the same pid (and a pty
//! of the same number) never inherits it — and dropped once that leader is gone. Timed on the
//! boot clock so that neither a suspend nor a wall-clock change stretches it.

use super::State;
use crate::peer::Peer;
use elevate_base::{Pid, Uid};
use elevate_policy::Profile;
use std::collections::HashMap;
use std::time::Duration;

/// (uid, terminal, session leader's pid, its start time).
type Key = (Uid, String, Pid, u64);

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

    fn forget(&mut self, key: &Key) {
        self.at.remove(key);
    }
}

/// Only a request with both a terminal and a process session has a key: without them there
/// is nothing to tie a remembered authentication to (D-Bus callers have no session id, so
/// they never share a terminal's cache).
fn key(peer: &Peer) -> Option<Key> {
    Some((peer.uid, peer.tty.clone()?, peer.sid?, peer.sid_start?))
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
        let Some(ttl) = profile.auth_cache else {
            return true;
        };
        // A remembered session must still be the same one: its leader alive, same start
        // (a session that ended is forgotten as soon as it is looked for).
        let (sid, start) = (k.2, k.3);
        if self.procs.start_time(sid) != Some(start) {
            self.auth_cache.forget(&k);
            return true;
        }
        !self.auth_cache.fresh(&k, ttl, now)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entries_expire_and_keys_are_exact() {
        let mut c = AuthCache::default();
        let k = (Uid(1000), "/dev/pts/1".to_string(), Pid(42), 7);
        c.remember(k.clone(), Duration::from_secs(100));
        let ttl = Duration::from_secs(300);
        assert!(c.fresh(&k, ttl, Duration::from_secs(399)));
        assert!(!c.fresh(&k, ttl, Duration::from_secs(400)));
        assert!(
            !c.fresh(&k, ttl, Duration::from_secs(50)),
            "a clock before the entry is not fresh"
        );
        assert!(!c.fresh(
            &(Uid(1000), "/dev/pts/2".into(), Pid(42), 7),
            ttl,
            Duration::from_secs(101)
        ));
        assert!(!c.fresh(
            &(Uid(1000), "/dev/pts/1".into(), Pid(43), 7),
            ttl,
            Duration::from_secs(101)
        ));
        assert!(!c.fresh(
            &(Uid(1001), "/dev/pts/1".into(), Pid(42), 7),
            ttl,
            Duration::from_secs(101)
        ));
    }

    #[test]
    fn a_later_session_with_the_same_leader_pid_is_another_key() {
        let mut c = AuthCache::default();
        let ttl = Duration::from_secs(300);
        let k = (Uid(1000), "/dev/pts/1".to_string(), Pid(42), 7);
        c.remember(k.clone(), Duration::from_secs(100));
        let reborn = (Uid(1000), "/dev/pts/1".to_string(), Pid(42), 9000);
        assert!(!c.fresh(&reborn, ttl, Duration::from_secs(101)));
        c.forget(&k);
        assert!(!c.fresh(&k, ttl, Duration::from_secs(101)), "forgotten");
    }

    #[test]
    fn no_key_without_a_terminal_and_a_session() {
        let peer = |tty: Option<&str>, sid, sid_start| Peer {
            tty: tty.map(String::from),
            sid,
            sid_start,
            ..Peer::from_bus(Uid(1000), None)
        };
        assert_eq!(
            key(&peer(Some("/dev/pts/1"), Some(Pid(7)), Some(5))),
            Some((Uid(1000), "/dev/pts/1".into(), Pid(7), 5))
        );
        let bus = peer(Some("/dev/pts/1"), None, None);
        assert_eq!(key(&bus), None, "a D-Bus caller");
        assert_eq!(key(&peer(None, Some(Pid(7)), Some(5))), None);
        let no_start = peer(Some("/dev/pts/1"), Some(Pid(7)), None);
        assert_eq!(
            key(&no_start),
            None,
            "a leader whose start time was not read"
        );
    }
}
