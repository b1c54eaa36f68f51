use std::time::Duration;

/// Exponential back-off with jitter, so that a fleet of workers does not reconnect to a
/// restarted broker in lock-step.
#[derive(Debug, Clone)]
pub struct Backoff {
    initial: Duration,
    max: Duration,
    next: Duration,
}

impl Backoff {
    pub fn new(initial: Duration, max: Duration) -> Self {
        Self {
            initial,
            max,
            next: initial,
        }
    }

    /// The wait before the next attempt; each call doubles the following one up to the cap.
    pub fn next_delay(&mut self) -> Duration {
        let base = self.next;
        self.next = (self.next * 2).min(self.max);
        // Up to +25 % jitter from the clock's sub-second noise: good enough to spread a
        // fleet, and no random-number dependency for it.
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.subsec_nanos())
            .unwrap_or(0);
        let jitter = base.mul_f64(f64::from(nanos % 1000) / 4000.0);
        (base + jitter).min(self.max.max(self.initial))
    }

    pub fn reset(&mut self) {
        self.next = self.initial;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn doubles_up_to_the_cap() {
        let mut b = Backoff::new(Duration::from_millis(100), Duration::from_millis(1000));
        let waits: Vec<_> = (0..6).map(|_| b.next_delay()).collect();
        assert!(waits[0] >= Duration::from_millis(100) && waits[0] <= Duration::from_millis(125));
        assert!(waits[1] >= Duration::from_millis(200));
        assert!(waits.iter().all(|w| *w <= Duration::from_millis(1000)));
        assert_eq!(waits[5], Duration::from_millis(1000));
        b.reset();
        assert!(b.next_delay() <= Duration::from_millis(125));
    }
}
