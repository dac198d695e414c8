//! Coalescing refusals: anyone may send requests that are refused or denied, as fast as the
//! socket takes them, and each would be an audit record. Per user and reason, the first few of
//! an interval are recorded one by one; the rest of that interval are only counted, and one
//! `audit.coalesced` record reports them when the interval is over. So one user's flood costs
//! the log a few records an interval, whatever its rate.

use elevate_base::Uid;
use std::collections::HashMap;
use std::time::{Duration, Instant, SystemTime};

/// How long one interval lasts.
pub const INTERVAL: Duration = Duration::from_secs(10);
/// Records of one user and reason written one by one in an interval.
pub const BURST: u32 = 10;
/// Users and reasons followed at once; beyond, an interval's records are all counted under
/// [`Key::anyone`] (a flood from this many uids at once is itself worth one record).
const MAX_KEYS: usize = 4096;

/// Whose refusals, of what kind (`denied`, or the refusal's error kind).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Key {
    /// `None`: refusals of users past [`MAX_KEYS`].
    pub uid: Option<Uid>,
    pub event: &'static str,
    pub reason: String,
}

impl Key {
    fn anyone(&self) -> Key {
        Key {
            uid: None,
            ..self.clone()
        }
    }
}

/// The records of one key in the current interval.
struct Window {
    start: Instant,
    seen: u32,
    suppressed: u64,
    /// Wall-clock times of the first and the last suppressed record.
    from: SystemTime,
    to: SystemTime,
}

/// An interval's records that were counted, not written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Summary {
    pub key: Key,
    pub count: u64,
    pub from: SystemTime,
    pub to: SystemTime,
}

#[derive(Default)]
pub struct Coalescer {
    windows: HashMap<Key, Window>,
}

impl Coalescer {
    /// Whether to write this record (else it is counted for the interval's summary).
    pub fn admit(&mut self, key: Key, now: Instant, wall: SystemTime) -> bool {
        let key = match self.windows.contains_key(&key) || self.windows.len() < MAX_KEYS {
            true => key,
            false => key.anyone(),
        };
        let w = self.windows.entry(key).or_insert(Window {
            start: now,
            seen: 0,
            suppressed: 0,
            from: wall,
            to: wall,
        });
        w.seen = w.seen.saturating_add(1);
        if w.seen <= BURST {
            return true;
        }
        if w.suppressed == 0 {
            w.from = wall;
        }
        w.suppressed += 1;
        w.to = wall;
        false
    }

    /// Whether a window is open (the writer then wakes up to close it in time).
    pub fn is_idle(&self) -> bool {
        self.windows.is_empty()
    }

    /// Close the windows whose interval is over (all of them with `everything`): the
    /// summaries of those that counted records.
    pub fn due(&mut self, now: Instant, everything: bool) -> Vec<Summary> {
        let mut out = Vec::new();
        self.windows.retain(|key, w| {
            let open = !everything && now.saturating_duration_since(w.start) < INTERVAL;
            if !open && w.suppressed > 0 {
                out.push(Summary {
                    key: key.clone(),
                    count: w.suppressed,
                    from: w.from,
                    to: w.to,
                });
            }
            open
        });
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(uid: u32, reason: &str) -> Key {
        Key {
            uid: Some(Uid(uid)),
            event: "run.denied",
            reason: reason.into(),
        }
    }

    #[test]
    fn a_burst_is_written_the_rest_counted_once_an_interval() {
        let mut c = Coalescer::default();
        let (t, wall) = (Instant::now(), SystemTime::now());
        let written = (0..100)
            .filter(|_| c.admit(key(1000, "denied"), t, wall))
            .count();
        assert_eq!(written, BURST as usize);
        assert!(
            c.admit(key(1001, "denied"), t, wall),
            "other users are apart"
        );
        assert!(
            c.admit(key(1000, "rate_limited"), t, wall),
            "so are other reasons"
        );
        assert!(c.due(t + INTERVAL / 2, false).is_empty(), "not over yet");
        let due = c.due(t + INTERVAL, false);
        assert_eq!(due.len(), 1);
        assert_eq!(
            (due[0].key.clone(), due[0].count),
            (key(1000, "denied"), 90)
        );
        assert!(
            c.is_idle(),
            "windows without suppressed records close silently"
        );
        assert!(
            c.admit(key(1000, "denied"), t + INTERVAL, wall),
            "a new interval"
        );
    }

    #[test]
    fn past_the_key_limit_refusals_are_counted_for_anyone() {
        let mut c = Coalescer::default();
        let (t, wall) = (Instant::now(), SystemTime::now());
        for uid in 0..MAX_KEYS as u32 {
            assert!(c.admit(key(uid, "denied"), t, wall));
        }
        let late = key(1_000_000, "denied");
        for _ in 0..BURST {
            assert!(c.admit(late.clone(), t, wall));
        }
        assert!(!c.admit(late.clone(), t, wall));
        let due = c.due(t, true);
        assert_eq!(due.len(), 1);
        assert_eq!(due[0].key, late.anyone());
        assert!(c.is_idle());
    }
}
