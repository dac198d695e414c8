//! The kernel's clocks that std does not offer: CLOCK_MONOTONIC as a number (what systemd's
//! `MONOTONIC_USEC` wants) and CLOCK_BOOTTIME (monotonic, and counting time spent suspended).

use std::time::Duration;

fn clock(id: libc::clockid_t) -> Option<Duration> {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: clock_gettime writes one timespec into the valid, exclusively borrowed `ts`.
    super::cerr(unsafe { libc::clock_gettime(id, &mut ts) }).ok()?;
    Some(Duration::new(
        u64::try_from(ts.tv_sec).ok()?,
        u32::try_from(ts.tv_nsec).ok()?,
    ))
}

/// CLOCK_MONOTONIC: never jumps, stops during suspend.
pub fn monotonic() -> Option<Duration> {
    clock(libc::CLOCK_MONOTONIC)
}

/// CLOCK_BOOTTIME: never jumps, counts suspend.
pub fn boottime() -> Option<Duration> {
    clock(libc::CLOCK_BOOTTIME)
}

#[cfg(test)]
mod tests {
    #[test]
    fn clocks_tick_forward() {
        let (m, b) = (super::monotonic().unwrap(), super::boottime().unwrap());
        assert!(b >= m, "boot time includes everything monotonic time does");
        assert!(super::monotonic().unwrap() >= m);
    }
}
