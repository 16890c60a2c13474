//! A lock-free histogram with fixed buckets, rendered in the Prometheus
//! text format. Recording is two relaxed atomic adds, so tick threads and
//! the flush worker can record without contending on a lock.

use std::{
    fmt::Write as _,
    sync::atomic::{AtomicU64, Ordering},
};

/// Bucket upper bounds for durations, in microseconds: 50 µs to 10 s.
pub const DURATION_BOUNDS_US: &[u64] = &[
    50, 100, 250, 500, 1_000, 2_500, 5_000, 10_000, 25_000, 50_000, 100_000, 250_000, 500_000,
    1_000_000, 2_500_000, 10_000_000,
];

/// Bucket upper bounds for sizes (players per batch and the like).
pub const SIZE_BOUNDS: &[u64] = &[1, 10, 50, 100, 500, 1_000, 5_000, 10_000, 50_000];

/// Counts of observations per bucket, plus their sum.
#[derive(Debug)]
pub struct Histogram {
    bounds: &'static [u64],
    /// One per bound, plus the overflow (`+Inf`) bucket; not cumulative.
    counts: Box<[AtomicU64]>,
    sum: AtomicU64,
}

impl Histogram {
    /// An empty histogram over `bounds` (ascending).
    pub fn new(bounds: &'static [u64]) -> Self {
        debug_assert!(bounds.windows(2).all(|w| w[0] < w[1]));
        Self {
            bounds,
            counts: (0..=bounds.len()).map(|_| AtomicU64::new(0)).collect(),
            sum: AtomicU64::new(0),
        }
    }

    /// Records one observation.
    pub fn record(&self, value: u64) {
        let bucket = self.bounds.partition_point(|&bound| bound < value);
        self.counts[bucket].fetch_add(1, Ordering::Relaxed);
        self.sum.fetch_add(value, Ordering::Relaxed);
    }

    /// Observations so far.
    pub fn count(&self) -> u64 {
        self.counts.iter().map(|c| c.load(Ordering::Relaxed)).sum()
    }

    /// The mean observation, rounded down; `None` when empty.
    pub fn mean(&self) -> Option<u64> {
        self.sum.load(Ordering::Relaxed).checked_div(self.count())
    }

    /// The upper bound of the bucket holding quantile `q` (0..=1): what
    /// "p99 under X" can honestly say from buckets. `None` when empty or
    /// when it falls in the overflow bucket.
    pub fn quantile_bound(&self, q: f64) -> Option<u64> {
        let total = self.count();
        if total == 0 {
            return None;
        }
        let rank = ((q.clamp(0.0, 1.0) * total as f64).ceil() as u64).max(1);
        let mut seen = 0;
        for (index, count) in self.counts.iter().enumerate() {
            seen += count.load(Ordering::Relaxed);
            if seen >= rank {
                return self.bounds.get(index).copied();
            }
        }
        None
    }

    /// Appends the `_bucket`, `_sum` and `_count` series of `name` with
    /// `labels` (`key="value"` pairs, comma-separated, or empty); values are
    /// divided by `per_unit` (e.g. 1e6 to turn microseconds into seconds:
    /// a division by a power of ten keeps 50,000 µs at `0.05`, where a
    /// multiplication by 1e-6 gives `0.049999999999999996`, a label no
    /// query for `le="0.05"` finds).
    /// The `# HELP` / `# TYPE` lines are the caller's, once per name.
    pub fn render(&self, out: &mut String, name: &str, labels: &str, per_unit: f64) {
        let sep = if labels.is_empty() { "" } else { "," };
        let mut cumulative = 0;
        for (index, count) in self.counts.iter().enumerate() {
            cumulative += count.load(Ordering::Relaxed);
            let le = match self.bounds.get(index) {
                Some(bound) => format!("{}", *bound as f64 / per_unit),
                None => "+Inf".to_string(),
            };
            let _ = writeln!(
                out,
                "{name}_bucket{{{labels}{sep}le=\"{le}\"}} {cumulative}"
            );
        }
        let braces = if labels.is_empty() {
            String::new()
        } else {
            format!("{{{labels}}}")
        };
        let sum = self.sum.load(Ordering::Relaxed) as f64 / per_unit;
        let _ = writeln!(out, "{name}_sum{braces} {sum}");
        let _ = writeln!(out, "{name}_count{braces} {cumulative}");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn observations_land_in_the_first_bucket_that_holds_them() {
        let h = Histogram::new(&[10, 100]);
        for v in [0, 10, 11, 100, 101, 5_000] {
            h.record(v);
        }
        let mut out = String::new();
        h.render(&mut out, "x", "kind=\"zone\"", 1.0);
        assert_eq!(
            out,
            "x_bucket{kind=\"zone\",le=\"10\"} 2\n\
             x_bucket{kind=\"zone\",le=\"100\"} 4\n\
             x_bucket{kind=\"zone\",le=\"+Inf\"} 6\n\
             x_sum{kind=\"zone\"} 5222\n\
             x_count{kind=\"zone\"} 6\n"
        );
        assert_eq!(h.quantile_bound(0.5), Some(100));
        assert_eq!(h.quantile_bound(0.3), Some(10));
        assert_eq!(
            h.quantile_bound(1.0),
            None,
            "the top is past the last bound"
        );
        assert_eq!(Histogram::new(&[1]).quantile_bound(0.99), None);
        assert_eq!(h.mean(), Some(5222 / 6));
        assert_eq!(Histogram::new(&[1]).mean(), None);
    }

    #[test]
    fn unlabelled_series_have_no_braces_and_values_scale() {
        let h = Histogram::new(&[1_000]);
        h.record(500);
        let mut out = String::new();
        h.render(&mut out, "t_seconds", "", 1e6);
        assert!(out.contains("t_seconds_bucket{le=\"0.001\"} 1\n"), "{out}");
        assert!(out.contains("t_seconds_sum 0.0005\n"), "{out}");
    }

    /// Every duration bucket's label is its bound in seconds as written,
    /// `0.05` and not `0.049999999999999996`: dashboards and alerts name
    /// buckets by their label.
    #[test]
    fn duration_buckets_are_labelled_with_their_exact_seconds() {
        let h = Histogram::new(DURATION_BOUNDS_US);
        let mut out = String::new();
        h.render(&mut out, "t_seconds", "", 1e6);
        let labels: Vec<&str> = out
            .lines()
            .filter_map(|line| line.split("le=\"").nth(1)?.split('"').next())
            .collect();
        assert_eq!(
            labels,
            [
                "0.00005", "0.0001", "0.00025", "0.0005", "0.001", "0.0025", "0.005", "0.01",
                "0.025", "0.05", "0.1", "0.25", "0.5", "1", "2.5", "10", "+Inf"
            ]
        );
    }
}
