//! Latency statistics over the samples the client threads collected.

use std::collections::BTreeMap;
use std::time::Duration;

/// Latency summary in microseconds.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Latency {
    pub p50: f64,
    pub p90: f64,
    pub p99: f64,
    pub max: f64,
    pub mean: f64,
}

/// Nearest-rank percentile (`q` in 0..=100) of sorted samples; 0 for no samples.
pub fn percentile(sorted: &[u64], q: f64) -> u64 {
    if sorted.is_empty() {
        return 0;
    }
    let rank = ((q / 100.0) * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

fn us(ns: u64) -> f64 {
    // One decimal place is more than the clock's honesty at this scale.
    (ns as f64 / 100.0).round() / 10.0
}

/// Summarise latencies given in nanoseconds (sorts them in place).
pub fn summarise(samples: &mut [u64]) -> Latency {
    samples.sort_unstable();
    let mean = if samples.is_empty() {
        0
    } else {
        (samples.iter().map(|&s| u128::from(s)).sum::<u128>() / samples.len() as u128) as u64
    };
    Latency {
        p50: us(percentile(samples, 50.0)),
        p90: us(percentile(samples, 90.0)),
        p99: us(percentile(samples, 99.0)),
        max: us(samples.last().copied().unwrap_or(0)),
        mean: us(mean),
    }
}

/// Nanoseconds in a duration, saturating (a sample never comes near 584 years).
pub fn nanos(d: Duration) -> u64 {
    u64::try_from(d.as_nanos()).unwrap_or(u64::MAX)
}

/// Error messages and how often each occurred, merged across threads.
#[derive(Debug, Default, Clone)]
pub struct Errors {
    pub total: u64,
    pub by_message: BTreeMap<String, u64>,
}

impl Errors {
    /// Distinct messages kept; past that only the count grows (a flood must not eat memory).
    const MAX_DISTINCT: usize = 32;

    pub fn add(&mut self, message: String) {
        self.total += 1;
        if self.by_message.len() < Self::MAX_DISTINCT || self.by_message.contains_key(&message) {
            *self.by_message.entry(message).or_insert(0) += 1;
        }
    }

    pub fn merge(&mut self, other: Errors) {
        self.total += other.total;
        for (m, n) in other.by_message {
            if self.by_message.len() < Self::MAX_DISTINCT || self.by_message.contains_key(&m) {
                *self.by_message.entry(m).or_insert(0) += n;
            }
        }
    }

    /// The most frequent messages first.
    pub fn top(&self, n: usize) -> Vec<(&str, u64)> {
        let mut v: Vec<(&str, u64)> = self
            .by_message
            .iter()
            .map(|(m, &c)| (m.as_str(), c))
            .collect();
        v.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(b.0)));
        v.truncate(n);
        v
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nearest_rank_percentiles() {
        let mut s: Vec<u64> = (1..=100).map(|i| i * 1000).collect();
        s.reverse();
        let l = summarise(&mut s);
        assert_eq!(l.p50, 50.0);
        assert_eq!(l.p90, 90.0);
        assert_eq!(l.p99, 99.0);
        assert_eq!(l.max, 100.0);
        assert_eq!(l.mean, 50.5);
        assert_eq!(percentile(&[7], 99.0), 7);
        assert_eq!(percentile(&[], 50.0), 0);
        assert_eq!(percentile(&[1, 2], 0.0), 1);
    }

    #[test]
    fn empty_samples_summarise_to_zero() {
        let l = summarise(&mut []);
        assert_eq!(
            l,
            Latency {
                p50: 0.0,
                p90: 0.0,
                p99: 0.0,
                max: 0.0,
                mean: 0.0
            }
        );
    }

    #[test]
    fn errors_merge_and_cap() {
        let mut a = Errors::default();
        a.add("busy".into());
        a.add("busy".into());
        let mut b = Errors::default();
        b.add("denied".into());
        for i in 0..100 {
            b.add(format!("distinct {i}"));
        }
        a.merge(b);
        assert_eq!(a.total, 103);
        assert!(a.by_message.len() <= Errors::MAX_DISTINCT);
        assert_eq!(a.top(1), vec![("busy", 2)]);
    }
}
