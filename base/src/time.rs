//! UTC timestamps in the one shape elevate writes everywhere (the audit log, the wire, the
//! lease journal): `YYYY-MM-DDTHH:MM:SS.mmmZ`; and the parser the CLI reads them back with.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

const MS_PER_DAY: i128 = 86_400_000;
/// 0000-01-01T00:00:00.000Z and 9999-12-31T23:59:59.999Z, in ms since the epoch: the range
/// a four-digit RFC 3339 year can express.
const MIN_MS: i128 = -62_167_219_200_000;
const MAX_MS: i128 = 253_402_300_799_999;

/// `t` as UTC RFC 3339 with milliseconds, e.g. `2026-11-22T22:50:01.123Z`. Sub-millisecond
/// parts are truncated toward the past (so instants before 1970 work too). Instants outside
/// years 0000..=9999 are clamped to that range. Leap seconds do not exist in `SystemTime`.
pub fn format_rfc3339_utc(t: SystemTime) -> String {
    let nanos: i128 = match t.duration_since(UNIX_EPOCH) {
        Ok(d) => i128::try_from(d.as_nanos()).unwrap_or(i128::MAX),
        Err(e) => i128::try_from(e.duration().as_nanos()).map_or(i128::MIN, |n| -n),
    };
    let ms = nanos.div_euclid(1_000_000).clamp(MIN_MS, MAX_MS);
    let days = ms.div_euclid(MS_PER_DAY);
    let of_day = ms.rem_euclid(MS_PER_DAY);
    // In range by the clamp: |days| < 2^23.
    let (y, m, d) = civil_from_days(i64::try_from(days).unwrap_or(0));
    let secs = of_day / 1000;
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}.{:03}Z",
        secs / 3600,
        secs / 60 % 60,
        secs % 60,
        of_day % 1000
    )
}

/// Proleptic Gregorian (year, month, day) of the day `days` after 1970-01-01.
/// Works in 400-year eras (146097 days), with years starting on March 1st so that the leap
/// day is the last day of its year.
fn civil_from_days(days: i64) -> (i64, i64, i64) {
    let shifted = days + 719_468; // days from 0000-03-01 to 1970-01-01
    let era = shifted.div_euclid(146_097);
    let day_of_era = shifted.rem_euclid(146_097); // 0..=146096
    let year_of_era =
        (day_of_era - day_of_era / 1460 + day_of_era / 36_524 - day_of_era / 146_096) / 365;
    let day_of_year = day_of_era - (365 * year_of_era + year_of_era / 4 - year_of_era / 100);
    let month_from_march = (5 * day_of_year + 2) / 153; // 0 = March .. 11 = February
    let day = day_of_year - (153 * month_from_march + 2) / 5 + 1;
    let month = if month_from_march < 10 {
        month_from_march + 3
    } else {
        month_from_march - 9
    };
    let year = era * 400 + year_of_era + i64::from(month <= 2);
    (year, month, day)
}

fn is_leap(y: u32) -> bool {
    // Every 4th year, except centuries, except every 4th century.
    matches!((y % 4, y % 100, y % 400), (0, 1.., _) | (_, _, 0))
}

fn days_in_month(y: u32, m: u32) -> u32 {
    match m {
        2 if is_leap(y) => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

/// Whether `s` is a timestamp exactly as [`format_rfc3339_utc`] writes it (a real calendar
/// date, hours < 24, minutes and seconds < 60).
pub fn is_record_time(s: &str) -> bool {
    let b = s.as_bytes();
    if b.len() != 24 {
        return false;
    }
    let shape = b"dddd-dd-ddTdd:dd:dd.dddZ";
    if !b.iter().zip(shape).all(|(c, p)| match p {
        b'd' => c.is_ascii_digit(),
        p => c == p,
    }) {
        return false;
    }
    let num = |r: std::ops::Range<usize>| {
        b[r].iter()
            .fold(0u32, |n, c| n * 10 + u32::from(c.wrapping_sub(b'0')))
    };
    let (y, mo, d) = (num(0..4), num(5..7), num(8..10));
    let (h, mi, sec) = (num(11..13), num(14..16), num(17..19));
    (1..=12).contains(&mo) && d >= 1 && d <= days_in_month(y, mo) && h < 24 && mi < 60 && sec < 60
}

/// Milliseconds since the epoch as [`format_rfc3339_utc`] writes them.
pub fn rfc3339_from_ms(ms: u64) -> String {
    format_rfc3339_utc(UNIX_EPOCH + Duration::from_millis(ms))
}

/// The wall clock now, as an RFC 3339 string.
pub fn now_rfc3339() -> String {
    format_rfc3339_utc(SystemTime::now())
}

/// The wall clock in milliseconds since the epoch (0 before 1970: a clock that far off is
/// treated as the epoch, not as a panic).
pub fn wall_ms(t: SystemTime) -> u64 {
    t.duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

/// Seconds since the epoch of an RFC 3339 timestamp as the daemon writes them
/// (`2024-05-01T12:00:00.123Z`; an explicit `+HH:MM`/`-HH:MM` offset is also accepted).
pub fn parse_rfc3339(s: &str) -> Option<i64> {
    let b = s.as_bytes();
    let num = |r: std::ops::Range<usize>| -> Option<i64> {
        let t = s.get(r)?;
        if t.is_empty() || !t.bytes().all(|c| c.is_ascii_digit()) {
            return None;
        }
        t.parse().ok()
    };
    if b.len() < 20 || b[4] != b'-' || b[7] != b'-' || !matches!(b[10], b'T' | b't' | b' ') {
        return None;
    }
    if b[13] != b':' || b[16] != b':' {
        return None;
    }
    let (y, mo, d) = (num(0..4)?, num(5..7)?, num(8..10)?);
    let (h, mi, sec) = (num(11..13)?, num(14..16)?, num(17..19)?);
    if !(1..=12).contains(&mo) || !(1..=31).contains(&d) || h > 23 || mi > 59 || sec > 60 {
        return None;
    }
    let mut i = 19;
    if b.get(i) == Some(&b'.') {
        i += 1;
        let start = i;
        while b.get(i).is_some_and(u8::is_ascii_digit) {
            i += 1;
        }
        if i == start {
            return None;
        }
    }
    let offset = match b.get(i)? {
        b'Z' | b'z' if i + 1 == b.len() => 0,
        sign @ (b'+' | b'-') if i + 6 == b.len() && b[i + 3] == b':' => {
            let (oh, om) = (num(i + 1..i + 3)?, num(i + 4..i + 6)?);
            let o = oh * 3600 + om * 60;
            if *sign == b'+' {
                o
            } else {
                -o
            }
        }
        _ => return None,
    };
    Some(days_from_civil(y, mo, d) * 86_400 + h * 3600 + mi * 60 + sec - offset)
}

/// Days from 1970-01-01 to the proleptic Gregorian date (Howard Hinnant's algorithm).
fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn at(ms: i64) -> SystemTime {
        let d = Duration::from_millis(ms.unsigned_abs());
        if ms >= 0 {
            UNIX_EPOCH + d
        } else {
            UNIX_EPOCH - d
        }
    }

    #[test]
    fn known_instants() {
        assert_eq!(format_rfc3339_utc(UNIX_EPOCH), "1970-01-01T00:00:00.000Z");
        assert_eq!(
            format_rfc3339_utc(at(1_795_387_801_123)),
            "2026-11-22T22:50:01.123Z"
        );
        // Leap days: divisible by 4, by 400; and 2100 is not a leap year.
        assert_eq!(
            format_rfc3339_utc(at(1_709_164_800_000)),
            "2024-02-29T00:00:00.000Z"
        );
        assert_eq!(
            format_rfc3339_utc(at(951_868_799_999)),
            "2000-02-29T23:59:59.999Z"
        );
        assert_eq!(
            format_rfc3339_utc(at(4_107_542_400_000)),
            "2100-03-01T00:00:00.000Z"
        );
        assert_eq!(
            format_rfc3339_utc(at(1_735_689_599_000)),
            "2024-12-31T23:59:59.000Z"
        );
        // Sub-millisecond truncation, before and after the epoch.
        assert_eq!(
            format_rfc3339_utc(UNIX_EPOCH + Duration::from_nanos(1_999_999)),
            "1970-01-01T00:00:00.001Z"
        );
        assert_eq!(
            format_rfc3339_utc(UNIX_EPOCH - Duration::from_nanos(1)),
            "1969-12-31T23:59:59.999Z"
        );
        assert_eq!(
            format_rfc3339_utc(at(-86_400_000)),
            "1969-12-31T00:00:00.000Z"
        );
        // Clamped to four-digit years.
        assert_eq!(
            format_rfc3339_utc(UNIX_EPOCH + Duration::from_secs(1 << 40)),
            "9999-12-31T23:59:59.999Z"
        );
        assert_eq!(
            format_rfc3339_utc(UNIX_EPOCH - Duration::from_secs(1 << 40)),
            "0000-01-01T00:00:00.000Z"
        );
    }

    #[test]
    fn every_day_round_trips_through_the_shape_check() {
        // 1968..2032 day by day: monotonic, valid dates, consecutive days.
        let mut prev = String::new();
        for day in -700..22_700i64 {
            let s = format_rfc3339_utc(at(day * 86_400_000 + 86_399_999));
            assert!(is_record_time(&s), "{s}");
            assert!(s > prev);
            prev = s;
        }
    }

    #[test]
    fn shape_check() {
        assert!(is_record_time("2024-02-29T23:59:59.999Z"));
        assert!(!is_record_time("2023-02-29T00:00:00.000Z"));
        assert!(!is_record_time("2024-13-01T00:00:00.000Z"));
        assert!(!is_record_time("2024-01-01T24:00:00.000Z"));
        assert!(!is_record_time("2024-01-01T00:00:60.000Z"));
        assert!(!is_record_time("2024-01-01T00:00:00.000+00:00"));
        assert!(!is_record_time("2024-01-01 00:00:00.000Z"));
        assert!(!is_record_time("2024-01-01T00:00:00Z"));
        assert!(!is_record_time("２024-01-01T00:00:00.000"));
    }

    #[test]
    fn parses_what_the_daemon_writes_and_offsets() {
        const NOW: i64 = 1_714_564_800;
        assert_eq!(parse_rfc3339("1970-01-01T00:00:00Z"), Some(0));
        assert_eq!(parse_rfc3339("2024-05-01T12:00:00.123Z"), Some(NOW));
        assert_eq!(parse_rfc3339("2024-05-01T14:00:00+02:00"), Some(NOW));
        assert_eq!(parse_rfc3339("2000-03-01T00:00:00Z"), Some(951_868_800));
        assert_eq!(
            parse_rfc3339(&rfc3339_from_ms(1_714_564_800_123)),
            Some(NOW)
        );
        for bad in [
            "",
            "2024-05-01",
            "2024-05-01T12:00:00",
            "2024-13-01T12:00:00Z",
            "2024-05-01T12:00:00.Z",
            "2024-05-01T12:00:00Zjunk",
            "2024-05-01T12:00:00+0200",
            "+024-05-01T12:00:00Z",
            "2024-05-01T1é:00:00Z",
        ] {
            assert_eq!(parse_rfc3339(bad), None, "{bad:?}");
        }
        // Never panics: every prefix, and every position replaced by awkward characters.
        let good = "2024-05-01T14:00:00.5+02:00";
        for (i, _) in good.char_indices() {
            let _ = parse_rfc3339(&good[..i]);
            for c in ['é', ':', '9', '-', 'Z', '\0'] {
                let mut m = good.to_string();
                m.replace_range(i..i + 1, &c.to_string());
                let _ = parse_rfc3339(&m);
            }
        }
    }

    #[test]
    fn wall_clock_before_the_epoch_is_the_epoch() {
        assert_eq!(wall_ms(UNIX_EPOCH - Duration::from_secs(5)), 0);
        assert_eq!(wall_ms(UNIX_EPOCH + Duration::from_millis(1500)), 1500);
    }
}
