//! The human duration syntax of the policy and the CLI (`90s`, `15m`, `1h30m`, `1d`), its
//! canonical form, and the rounded form people read in lease listings.

use std::fmt;
use std::time::Duration;

/// The longest lease or duration elevate accepts anywhere.
pub const MAX_DURATION: Duration = Duration::from_secs(366 * 24 * 3600);

/// The accepted forms, for error messages.
const DURATION_FORMS: &str =
    "use whole numbers with units d, h, m, s in that order, e.g. 90s, 15m, 1h30m, 2h or 1d";

/// Why a duration did not parse. `Display` is the whole sentence shown to people.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DurationError {
    /// The input as shown in the message: at most 40 characters of it.
    shown: String,
    pub problem: DurationProblem,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DurationProblem {
    Empty,
    Unexpected(char),
    UnitWithoutNumber(char),
    UnitOrder,
    NumberWithoutUnit,
    Zero,
    TooLong,
}

impl fmt::Display for DurationError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let shown = &self.shown;
        let why = match self.problem {
            DurationProblem::TooLong => {
                return write!(
                    f,
                    "duration {shown:?} is longer than the maximum of {}",
                    format_duration(MAX_DURATION)
                )
            }
            DurationProblem::Empty => "it is empty".to_string(),
            DurationProblem::Unexpected(c) => format!("unexpected {c:?}"),
            DurationProblem::UnitWithoutNumber(c) => {
                format!("unit '{c}' without a number before it")
            }
            DurationProblem::UnitOrder => {
                "units must come in the order d, h, m, s, each at most once".to_string()
            }
            DurationProblem::NumberWithoutUnit => "a number without a unit".to_string(),
            DurationProblem::Zero => "it must be longer than zero".to_string(),
        };
        write!(f, "invalid duration {shown:?}: {why}; {DURATION_FORMS}")
    }
}

impl std::error::Error for DurationError {}

/// Parse `90s`, `15m`, `1h30m`, `2h`, `1d`: whole numbers (ASCII digits), each followed by a
/// unit, units in the order d, h, m, s and each at most once (`1h1h` is a typo, not 2h); a
/// number may exceed its unit's range (`90m`). Surrounding whitespace is ignored. The total
/// must be positive and at most [`MAX_DURATION`] (366 days). Never panics, whatever the input.
pub fn parse_duration(s: &str) -> Result<Duration, DurationError> {
    let bad = |problem| DurationError {
        shown: s.chars().take(40).collect(),
        problem,
    };
    let text = s.trim();
    if text.is_empty() {
        return Err(bad(DurationProblem::Empty));
    }
    let mut total: u64 = 0;
    let mut num: Option<u64> = None;
    // Index into "dhms" of the last unit seen: the next must come strictly later.
    let mut last_unit: Option<u8> = None;
    for c in text.chars() {
        if let Some(d) = c.to_digit(10).filter(|_| c.is_ascii_digit()) {
            // Saturate: any number this big is over the maximum anyway.
            num = Some(
                num.unwrap_or(0)
                    .saturating_mul(10)
                    .saturating_add(u64::from(d)),
            );
            continue;
        }
        let (idx, unit): (u8, u64) = match c {
            'd' => (0, 86_400),
            'h' => (1, 3_600),
            'm' => (2, 60),
            's' => (3, 1),
            _ => return Err(bad(DurationProblem::Unexpected(c))),
        };
        let Some(n) = num.take() else {
            return Err(bad(DurationProblem::UnitWithoutNumber(c)));
        };
        if last_unit.is_some_and(|l| idx <= l) {
            return Err(bad(DurationProblem::UnitOrder));
        }
        last_unit = Some(idx);
        total = n
            .checked_mul(unit)
            .and_then(|v| total.checked_add(v))
            .ok_or_else(|| bad(DurationProblem::TooLong))?;
    }
    if num.is_some() {
        return Err(bad(DurationProblem::NumberWithoutUnit));
    }
    if total == 0 {
        return Err(bad(DurationProblem::Zero));
    }
    let d = Duration::from_secs(total);
    if d > MAX_DURATION {
        return Err(bad(DurationProblem::TooLong));
    }
    Ok(d)
}

/// The canonical short form: `1h30m`, `45s`, `2d3h`. Whole seconds; what `parse_duration`
/// reads back to the same value.
pub fn format_duration(d: Duration) -> String {
    let s = d.as_secs();
    let parts = [
        (s / 86_400, 'd'),
        (s / 3_600 % 24, 'h'),
        (s / 60 % 60, 'm'),
        (s % 60, 's'),
    ];
    let out: String = parts
        .iter()
        .filter(|(n, _)| *n > 0)
        .map(|(n, u)| format!("{n}{u}"))
        .collect();
    if out.is_empty() {
        "0s".into()
    } else {
        out
    }
}

/// A duration for people, rounded down to two units at most: `45s`, `4m30s`, `14m`, `1h29m`,
/// `2d3h`.
pub fn human(secs: u64) -> String {
    let unit = match secs {
        0..600 => 1,
        600..86_400 => 60,
        _ => 3600,
    };
    format_duration(Duration::from_secs(secs - secs % unit))
}

/// Milliseconds of `d`, saturating (durations in the journal and on the wire are u64 ms).
pub fn millis(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn secs(n: u64) -> Duration {
        Duration::from_secs(n)
    }

    #[test]
    fn duration_parsing() {
        let ok: &[(&str, u64)] = &[
            ("90s", 90),
            ("15m", 900),
            ("1h30m", 5400),
            ("2h", 7200),
            ("1d", 86_400),
            ("1d2h3m4s", 93_784),
            ("1d4s", 86_404),
            ("90m", 5400),
            ("0h30m", 1800),
            ("007m", 420),
            (" 5m ", 300),
            ("\t1h\n", 3600),
            ("1s", 1),
            ("366d", 366 * 86_400),
            ("8784h", 366 * 86_400),
            ("31622400s", 366 * 86_400),
            ("365d23h59m60s", 366 * 86_400),
        ];
        for (s, n) in ok {
            assert_eq!(parse_duration(s), Ok(secs(*n)), "{s:?}");
        }
        // (input, what the message must say)
        let bad: &[(&str, &str)] = &[
            ("", "it is empty"),
            ("   ", "it is empty"),
            ("0s", "longer than zero"),
            ("0d0h0m0s", "longer than zero"),
            ("5", "a number without a unit"),
            ("1h30", "a number without a unit"),
            ("m", "without a number"),
            ("h1", "without a number"),
            ("1hm", "without a number"),
            ("1x", "unexpected 'x'"),
            ("1H", "unexpected 'H'"),
            ("1.5h", "unexpected '.'"),
            ("-1m", "unexpected '-'"),
            ("+1m", "unexpected '+'"),
            ("1h 30m", "unexpected ' '"),
            ("1_000s", "unexpected '_'"),
            ("1h1h", "in the order d, h, m, s"),
            ("30m1h", "in the order d, h, m, s"),
            ("1s1d", "in the order d, h, m, s"),
            ("1ms", "unit 's' without a number"),
            // Unicode digits are not digits here.
            ("٣m", "unexpected '٣'"),
            ("３m", "unexpected '３'"),
            ("३m", "unexpected '३'"),
            ("²m", "unexpected '²'"),
            ("1\u{0}m", "unexpected '\\0'"),
            ("1m\u{202e}", "unexpected '\\u{202e}'"),
            // Too long, with and without u64 overflow.
            ("367d", "longer than the maximum of 366d"),
            ("8785h", "longer than the maximum of 366d"),
            ("31622401s", "longer than the maximum of 366d"),
            ("366d1s", "longer than the maximum of 366d"),
            ("18446744073709551615s", "longer than the maximum"),
            ("18446744073709551616s", "longer than the maximum"),
            ("213503982334602d", "longer than the maximum"),
            (
                "99999999999999999999999999999999999999h",
                "longer than the maximum",
            ),
            (
                "5124095576030431d5124095576030431h",
                "longer than the maximum",
            ),
        ];
        for (s, want) in bad {
            match parse_duration(s) {
                Ok(d) => panic!("{s:?} parsed as {d:?}"),
                Err(e) => assert!(e.to_string().contains(want), "{s:?}: {e}"),
            }
        }
        // Every refusal that is not about the length says what is accepted.
        let e = parse_duration("1.5h").unwrap_err().to_string();
        assert!(e.contains("90s, 15m, 1h30m, 2h or 1d"), "{e}");
        // Huge inputs: no panic, a bounded message.
        let long = "9".repeat(100_000) + "s";
        let e = parse_duration(&long).unwrap_err().to_string();
        assert!(e.len() < 200, "{}", e.len());
        assert!(parse_duration(&"1".repeat(100_000)).is_err());
    }

    #[test]
    fn duration_formatting() {
        let cases: &[(u64, &str)] = &[
            (0, "0s"),
            (1, "1s"),
            (59, "59s"),
            (60, "1m"),
            (90, "1m30s"),
            (3600, "1h"),
            (5400, "1h30m"),
            (86_400, "1d"),
            (90_000, "1d1h"),
            (93_784, "1d2h3m4s"),
            (366 * 86_400, "366d"),
        ];
        for (n, want) in cases {
            assert_eq!(format_duration(secs(*n)), *want, "{n}");
        }
        // Sub-second parts are dropped.
        assert_eq!(format_duration(Duration::from_millis(1500)), "1s");
        assert_eq!(format_duration(Duration::MAX), "213503982334601d7h15s");
        // The canonical form parses back to the same duration, over a spread of values.
        let mut n: u64 = 1;
        while n <= MAX_DURATION.as_secs() {
            let f = format_duration(secs(n));
            assert_eq!(parse_duration(&f), Ok(secs(n)), "{n} -> {f}");
            n = n * 3 / 2 + 1;
        }
        for n in (1..=100_000).step_by(7) {
            assert_eq!(parse_duration(&format_duration(secs(n))), Ok(secs(n)));
        }
        // And every accepted spelling has one canonical form.
        for (s, canon) in [("90m", "1h30m"), ("0h30m", "30m"), ("8784h", "366d")] {
            assert_eq!(format_duration(parse_duration(s).unwrap()), canon);
        }
    }

    #[test]
    fn human_durations() {
        let cases = [
            (0, "0s"),
            (45, "45s"),
            (270, "4m30s"),
            (899, "14m"),
            (3600, "1h"),
            (5399, "1h29m"),
            (3700, "1h1m"),
            (86_400 + 3 * 3600 + 59, "1d3h"),
        ];
        for (secs, want) in cases {
            assert_eq!(human(secs), want, "{secs}");
        }
    }
}
