//! Summary statistics of timings.

use std::time::Duration;

/// Median, 99th percentile and extremes of a set of durations.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Summary {
    /// Samples.
    pub count: usize,
    /// Median.
    pub median: Duration,
    /// 99th percentile (nearest rank).
    pub p99: Duration,
    /// Smallest.
    pub min: Duration,
    /// Largest.
    pub max: Duration,
}

/// The nearest-rank `p`-th percentile (0 < p <= 100) of sorted samples.
fn percentile(sorted: &[Duration], p: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

/// The middle of `sorted` samples, `mean` of the middle two when there is an even number; none
/// when there are no samples.
fn middle<T: Copy>(sorted: &[T], mean: impl Fn(T, T) -> T) -> Option<T> {
    match sorted.len() {
        0 => None,
        n if n % 2 == 1 => Some(sorted[n / 2]),
        n => Some(mean(sorted[n / 2 - 1], sorted[n / 2])),
    }
}

/// The median of `values`; NaN when there are none.
pub fn median(values: impl Iterator<Item = f64>) -> f64 {
    let mut sorted: Vec<f64> = values.collect();
    sorted.sort_by(f64::total_cmp);
    middle(&sorted, |a, b| (a + b) / 2.0).unwrap_or(f64::NAN)
}

/// Summarises `samples`; all zero when there are none.
pub fn summarize(samples: &[Duration]) -> Summary {
    let mut sorted = samples.to_vec();
    sorted.sort_unstable();
    Summary {
        count: sorted.len(),
        median: middle(&sorted, |a, b| (a + b) / 2).unwrap_or_default(),
        p99: percentile(&sorted, 99.0),
        min: sorted.first().copied().unwrap_or_default(),
        max: sorted.last().copied().unwrap_or_default(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn median_and_p99() {
        let ms = |n: u64| Duration::from_millis(n);
        let samples: Vec<Duration> = (1..=100).rev().map(ms).collect();
        let s = summarize(&samples);
        assert_eq!(s.median, Duration::from_micros(50_500));
        assert_eq!(s.p99, ms(99));
        assert_eq!((s.min, s.max, s.count), (ms(1), ms(100), 100));
        assert_eq!(summarize(&[ms(3), ms(1), ms(2)]).median, ms(2));
        assert_eq!(summarize(&[]).median, Duration::ZERO);
    }

    #[test]
    fn median_of_numbers() {
        assert_eq!(median([3.0, 1.0, 2.0].into_iter()), 2.0);
        assert_eq!(median([4.0, 1.0, 3.0, 2.0].into_iter()), 2.5);
        assert!(median(std::iter::empty()).is_nan());
    }
}
