//! The one back-off of the fleet: exponential from a base, capped, with "equal jitter"
//! (a point in the upper half), so that workers that failed together (a broker or
//! database restart) do not come back together. The CQL retries and the broker
//! reconnects both use it.

use std::hash::BuildHasher;
use std::time::Duration;

/// The delay before retry number `retry` (1 for the first): `base * 2^(retry-1)`, capped
/// at `cap`, then a point of its upper half chosen by `jitter` in [0, 1].
pub fn backoff_delay(retry: u32, base: Duration, cap: Duration, jitter: f64) -> Duration {
    let factor = 2u32.saturating_pow(retry.saturating_sub(1).min(30));
    let exp = base.saturating_mul(factor).min(cap);
    let half = exp / 2;
    half + half.mul_f64(jitter.clamp(0.0, 1.0))
}

/// A jitter in [0, 1) for retry `n`: the standard library's randomly keyed hasher, so
/// every process draws its own sequence without a random-number dependency.
pub fn jitter(keys: &std::collections::hash_map::RandomState, n: u32) -> f64 {
    (keys.hash_one(n) % 1_000) as f64 / 1_000.0
}

/// [`backoff_delay`] as a sequence: each call waits longer, up to the cap, until
/// [`Backoff::reset`] after a success.
#[derive(Debug, Clone)]
pub struct Backoff {
    base: Duration,
    cap: Duration,
    retry: u32,
    keys: std::collections::hash_map::RandomState,
}

impl Backoff {
    pub fn new(base: Duration, cap: Duration) -> Self {
        Self {
            base,
            cap,
            retry: 0,
            keys: std::collections::hash_map::RandomState::new(),
        }
    }

    pub fn next_delay(&mut self) -> Duration {
        self.retry = self.retry.saturating_add(1);
        backoff_delay(
            self.retry,
            self.base,
            self.cap,
            jitter(&self.keys, self.retry),
        )
    }

    pub fn reset(&mut self) {
        self.retry = 0;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn doubles_up_to_the_cap_with_jitter_in_the_upper_half() {
        let base = Duration::from_millis(100);
        let cap = Duration::from_millis(1_000);
        assert_eq!(backoff_delay(1, base, cap, 0.0), Duration::from_millis(50));
        assert_eq!(backoff_delay(1, base, cap, 1.0), Duration::from_millis(100));
        assert_eq!(backoff_delay(3, base, cap, 1.0), Duration::from_millis(400));
        assert_eq!(backoff_delay(10, base, cap, 1.0), cap);
        assert_eq!(backoff_delay(u32::MAX, base, cap, 0.5), cap * 3 / 4);
    }

    #[test]
    fn the_sequence_grows_to_the_cap_and_starts_again_after_a_reset() {
        let (base, cap) = (Duration::from_millis(100), Duration::from_millis(1_000));
        let mut b = Backoff::new(base, cap);
        let waits: Vec<Duration> = (0..8).map(|_| b.next_delay()).collect();
        for (i, w) in waits.iter().enumerate() {
            let full = base.saturating_mul(1 << i).min(cap);
            assert!(*w >= full / 2 && *w <= full, "wait {i}: {w:?} of {full:?}");
        }
        assert!(waits[7] >= cap / 2);
        b.reset();
        assert!(b.next_delay() <= base);
    }
}
