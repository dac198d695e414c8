//! Per-uid token buckets: one local user cannot starve the daemon for everyone else.

use elevate_base::Uid;
use std::collections::HashMap;
use std::time::Instant;

pub struct RateLimiter {
    rate: f64,
    burst: f64,
    buckets: HashMap<Uid, (f64, Instant)>,
}

impl RateLimiter {
    pub fn new(per_second: u32, burst: u32) -> RateLimiter {
        RateLimiter {
            rate: f64::from(per_second.max(1)),
            burst: f64::from(burst.max(1)),
            buckets: HashMap::new(),
        }
    }

    /// Take one token for `uid` if it has one.
    pub fn allow(&mut self, uid: Uid, now: Instant) -> bool {
        if self.buckets.len() > 10_000 {
            // Forget users whose buckets have refilled: they would start full anyway.
            let (rate, burst) = (self.rate, self.burst);
            self.buckets.retain(|_, (tokens, at)| {
                *tokens + now.saturating_duration_since(*at).as_secs_f64() * rate < burst
            });
        }
        let (tokens, at) = self.buckets.entry(uid).or_insert((self.burst, now));
        *tokens = (*tokens + now.saturating_duration_since(*at).as_secs_f64() * self.rate)
            .min(self.burst);
        *at = now;
        if *tokens >= 1.0 {
            *tokens -= 1.0;
            true
        } else {
            false
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn burst_then_refill_per_uid() {
        let mut rl = RateLimiter::new(10, 3);
        let t = Instant::now();
        assert!(
            rl.allow(elevate_base::Uid(1), t)
                && rl.allow(elevate_base::Uid(1), t)
                && rl.allow(elevate_base::Uid(1), t)
        );
        assert!(!rl.allow(elevate_base::Uid(1), t));
        assert!(
            rl.allow(elevate_base::Uid(2), t),
            "other users are unaffected"
        );
        assert!(rl.allow(elevate_base::Uid(1), t + Duration::from_millis(150)));
        assert!(!rl.allow(elevate_base::Uid(1), t + Duration::from_millis(150)));
    }
}
