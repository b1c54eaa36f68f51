//! Seeded Poisson arrivals, shared by the load driver and the queue model so both see
//! the same kind of traffic.

use std::time::Duration;

/// SplitMix64: a seeded uniform source for the arrival times (the same run every time,
/// no dependency for five lines).
pub struct Rng(pub u64);

impl Rng {
    /// The next 64 uniform bits (also the dedup mode's random codes).
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    fn uniform(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }

    /// Exponential inter-arrival time of a Poisson process of `rate` per second.
    pub fn gap(&mut self, rate: f64) -> Duration {
        Duration::from_secs_f64(self.gap_secs(rate))
    }

    pub fn gap_secs(&mut self, rate: f64) -> f64 {
        -(1.0 - self.uniform()).ln() / rate
    }
}
