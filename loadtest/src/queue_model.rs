//! What an ideal server would answer under the same Poisson load: one model pipeline
//! that, whenever it is free, takes every waiting request (up to `max_batch`) and needs
//! `fixed + n x per_image` seconds for a batch of `n`, with no other overhead at all.
//! The two costs come from the run's own measurements: a batch of one takes the
//! single-request latency, a full batch runs at the measured capacity. Printed beside
//! the measured percentiles, it says how much of a tail is queueing that no
//! implementation on these cores avoids, and how much is ours.

use std::collections::VecDeque;

/// A batch's cost: `fixed + n * per_image` seconds.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize)]
pub struct BatchCost {
    pub fixed: f64,
    pub per_image: f64,
}

impl BatchCost {
    /// The costs that give a batch of one `single` seconds and a full batch of
    /// `max_batch` a throughput of `capacity` per second (no negative part: a capacity
    /// below one image per `single` seconds is all per-image cost).
    pub fn fitted(single: f64, capacity: f64, max_batch: usize) -> Self {
        let b = max_batch.max(1) as f64;
        if b <= 1.0 {
            return Self {
                fixed: 0.0,
                per_image: single,
            };
        }
        let per_image = ((b / capacity - single) / (b - 1.0)).clamp(0.0, single);
        Self {
            fixed: single - per_image,
            per_image,
        }
    }

    fn of(&self, n: usize) -> f64 {
        self.fixed + n as f64 * self.per_image
    }
}

/// Latency percentiles (seconds) of the admitted requests, and the share refused.
#[derive(Debug, Clone, Copy)]
pub struct Modelled {
    pub mean: f64,
    pub p50: f64,
    pub p99: f64,
    pub refused: f64,
}

/// `n` Poisson arrivals at `rate` per second; at most `max_queued` requests admitted
/// (waiting or in the running batch), the next refused at once, as serve's admission.
pub fn simulate(
    cost: BatchCost,
    max_batch: usize,
    max_queued: usize,
    rate: f64,
    n: usize,
    seed: u64,
) -> Modelled {
    let mut rng = crate::arrivals::Rng(seed);
    let max = max_batch.max(1);
    let mut waiting: VecDeque<f64> = VecDeque::new();
    let (mut busy_until, mut in_batch) = (0.0f64, 0usize);
    let mut latencies = Vec::with_capacity(n);
    let mut refused = 0usize;
    let run = |start: f64, batch: &mut Vec<f64>, latencies: &mut Vec<f64>| {
        let done = start + cost.of(batch.len());
        latencies.extend(batch.drain(..).map(|a| done - a));
        done
    };
    let mut batch = Vec::with_capacity(max);
    let mut t = 0.0;
    for _ in 0..n {
        t += rng.gap_secs(rate);
        // The model frees up before this arrival: it takes what waits, batch by batch.
        while busy_until <= t && !waiting.is_empty() {
            batch.extend(waiting.drain(..waiting.len().min(max)));
            in_batch = batch.len();
            busy_until = run(busy_until, &mut batch, &mut latencies);
        }
        let admitted = waiting.len() + if busy_until > t { in_batch } else { 0 };
        if admitted >= max_queued.max(1) {
            refused += 1;
        } else if busy_until <= t {
            batch.push(t);
            in_batch = 1;
            busy_until = run(t, &mut batch, &mut latencies);
        } else {
            waiting.push_back(t);
        }
    }
    while !waiting.is_empty() {
        batch.extend(waiting.drain(..waiting.len().min(max)));
        busy_until = run(busy_until, &mut batch, &mut latencies);
    }
    latencies.sort_by(f64::total_cmp);
    let at = |q: f64| crate::stats::percentile(&latencies, q).unwrap_or(0.0);
    Modelled {
        mean: latencies.iter().sum::<f64>() / latencies.len().max(1) as f64,
        p50: at(0.5),
        p99: at(0.99),
        refused: refused as f64 / n.max(1) as f64,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_costs_reproduce_both_measurements() {
        let c = BatchCost::fitted(0.031, 50.7, 8);
        assert!((c.of(1) - 0.031).abs() < 1e-12);
        assert!((8.0 / c.of(8) - 50.7).abs() < 1e-9);
        // Batching that gains nothing: all of a single request's time is per image.
        let flat = BatchCost::fitted(0.031, 10.0, 8);
        assert_eq!(flat.fixed, 0.0);
    }

    /// One image at a time, the model is an M/D/1 queue, whose mean wait is known in
    /// closed form (Pollaczek-Khinchine): rho x D / (2 (1 - rho)).
    #[test]
    fn one_image_at_a_time_it_is_an_m_d_1_queue() {
        for rho in [0.3, 0.5, 0.8] {
            let d = 0.02;
            let cost = BatchCost {
                fixed: 0.0,
                per_image: d,
            };
            let m = simulate(cost, 1, usize::MAX, rho / d, 400_000, 7);
            let expected = d + rho * d / (2.0 * (1.0 - rho));
            assert!(
                (m.mean / expected - 1.0).abs() < 0.03,
                "rho {rho}: mean {} vs {expected}",
                m.mean
            );
        }
    }

    #[test]
    fn alone_a_request_takes_the_single_latency() {
        let cost = BatchCost::fitted(0.031, 50.7, 8);
        let m = simulate(cost, 8, 16, 0.01, 1000, 3);
        assert!((m.p99 - 0.031).abs() < 1e-9, "{m:?}");
        assert_eq!(m.refused, 0.0);
    }

    /// Far past capacity, admission refuses the excess and keeps the admitted within
    /// the bound serve promises: the images ahead of it plus one batch.
    #[test]
    fn past_capacity_admission_refuses_and_bounds_the_wait() {
        let cost = BatchCost::fitted(0.031, 50.7, 8);
        let m = simulate(cost, 8, 16, 2.0 * 50.7, 100_000, 5);
        assert!(m.refused > 0.4 && m.refused < 0.6, "{m:?}");
        let bound = (16 + 8) as f64 / 50.7;
        assert!(m.p99 <= bound, "{m:?} vs {bound}");
    }
}
