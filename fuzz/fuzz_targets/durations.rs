//! What people type after --for and --by, and the timestamps the CLI reads back: the duration
//! and RFC 3339 parsers return errors, never panic, and what they accept round-trips.
#![no_main]
use elevate_base::duration::{format_duration, parse_duration};
use elevate_base::time::{format_rfc3339_utc, parse_rfc3339};
use libfuzzer_sys::fuzz_target;
use std::time::{Duration, UNIX_EPOCH};

fuzz_target!(|data: &[u8]| {
    let Ok(s) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(d) = parse_duration(s) {
        assert_eq!(parse_duration(&format_duration(d)), Ok(d));
    }
    if let Some(secs) = parse_rfc3339(s) {
        if let Ok(secs) = u64::try_from(secs) {
            let again = format_rfc3339_utc(UNIX_EPOCH + Duration::from_secs(secs));
            assert_eq!(parse_rfc3339(&again), Some(secs as i64), "{s:?} -> {again}");
        }
    }
});
