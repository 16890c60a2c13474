//! Token buckets for per-client message and byte limits.
//!
//! Time is passed in (sans-IO), so limits are tested without sleeping and
//! cost two integer operations per message on the net thread.

/// A bucket refilled at `rate_per_sec` up to `burst` tokens.
#[derive(Clone, Debug)]
pub struct TokenBucket {
    rate_per_sec: u64,
    burst: u64,
    /// Tokens scaled by 1e9 so refills are exact in nanoseconds.
    nano_tokens: u64,
    last_nanos: u64,
}

const NANOS: u64 = 1_000_000_000;

impl TokenBucket {
    /// A full bucket at time `now_nanos`.
    pub fn new(rate_per_sec: u64, burst: u64, now_nanos: u64) -> Self {
        Self {
            rate_per_sec,
            burst,
            nano_tokens: burst.saturating_mul(NANOS),
            last_nanos: now_nanos,
        }
    }

    fn refill(&mut self, now_nanos: u64) {
        let elapsed = now_nanos.saturating_sub(self.last_nanos);
        self.last_nanos = self.last_nanos.max(now_nanos);
        let cap = self.burst.saturating_mul(NANOS);
        self.nano_tokens = self
            .nano_tokens
            .saturating_add(elapsed.saturating_mul(self.rate_per_sec))
            .min(cap);
    }

    /// Takes `cost` tokens if available; `false` (and nothing taken) if not.
    pub fn try_take(&mut self, cost: u64, now_nanos: u64) -> bool {
        self.refill(now_nanos);
        let need = cost.saturating_mul(NANOS);
        if self.nano_tokens >= need {
            self.nano_tokens -= need;
            true
        } else {
            false
        }
    }

    /// Whole tokens available at `now_nanos`.
    pub fn available(&mut self, now_nanos: u64) -> u64 {
        self.refill(now_nanos);
        self.nano_tokens / NANOS
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn burst_then_steady_rate() {
        let mut bucket = TokenBucket::new(10, 5, 0);
        assert!((0..5).all(|_| bucket.try_take(1, 0)));
        assert!(!bucket.try_take(1, 0), "burst exhausted");
        assert!(
            !bucket.try_take(1, 99_000_000),
            "a token takes 100 ms at 10/s"
        );
        assert!(bucket.try_take(1, 100_000_000));
        assert_eq!(bucket.available(10 * NANOS), 5, "never above burst");
    }

    #[test]
    fn time_going_backwards_grants_nothing() {
        let mut bucket = TokenBucket::new(10, 1, 5 * NANOS);
        assert!(bucket.try_take(1, 5 * NANOS));
        assert!(!bucket.try_take(1, NANOS));
    }

    proptest! {
        #[test]
        fn never_grants_more_than_burst_plus_rate(rate in 1u64..10_000, burst in 1u64..1_000, steps in proptest::collection::vec(0u64..50_000_000, 1..200)) {
            let mut bucket = TokenBucket::new(rate, burst, 0);
            let mut now = 0;
            let mut granted = 0u64;
            for step in steps {
                now += step;
                if bucket.try_take(1, now) { granted += 1; }
            }
            prop_assert!(granted <= burst + rate * now / NANOS + 1);
        }
    }
}
