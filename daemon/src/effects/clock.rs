//! Time, as the core sees it: the wall clock (lease deadlines are UTC instants), a monotonic
//! clock (rate limits, grace periods) and the boot clock, which also counts suspend (the
//! step-up cache). A seam, so tests move time instead of waiting for it.

use std::time::{Duration, Instant, SystemTime};

pub trait Clock: Send + Sync {
    /// The wall clock in milliseconds since the epoch.
    fn wall_ms(&self) -> u64;
    /// A monotonic instant.
    fn now(&self) -> Instant;
    /// CLOCK_BOOTTIME; `None` when the kernel refuses it.
    fn boottime(&self) -> Option<Duration>;
}

/// The machine's clocks.
pub struct SystemClock;

impl Clock for SystemClock {
    fn wall_ms(&self) -> u64 {
        elevate_base::time::wall_ms(SystemTime::now())
    }

    fn now(&self) -> Instant {
        Instant::now()
    }

    fn boottime(&self) -> Option<Duration> {
        elevate_base::os::clock::boottime()
    }
}
