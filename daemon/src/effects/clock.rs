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
    /// This boot's id (boot clock readings compare only within one boot).
    fn boot_id(&self) -> Option<String>;
}

/// The machine's clocks. The boot id is read once: it cannot change while we run.
pub struct SystemClock {
    boot_id: Option<String>,
}

impl Default for SystemClock {
    fn default() -> Self {
        SystemClock::new()
    }
}

impl SystemClock {
    pub fn new() -> SystemClock {
        let boot_id = std::fs::read_to_string("/proc/sys/kernel/random/boot_id")
            .ok()
            .map(|s| s.trim().to_string())
            .filter(|s| !s.is_empty());
        SystemClock { boot_id }
    }
}

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

    fn boot_id(&self) -> Option<String> {
        self.boot_id.clone()
    }
}
