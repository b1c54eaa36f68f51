//! Percentiles of sorted samples, one definition for the measured latencies and the
//! queue model's, so the two are compared like with like.

/// The sample at rank `round((n - 1) p)` of `sorted`; `None` when there is none.
pub fn percentile(sorted: &[f64], p: f64) -> Option<f64> {
    if sorted.is_empty() {
        return None;
    }
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted.get(i.min(sorted.len() - 1)).copied()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranks_round_to_the_nearest_sample() {
        assert_eq!(percentile(&[], 0.5), None);
        let s = [1.0, 2.0, 3.0, 4.0, 5.0];
        assert_eq!(percentile(&s, 0.0), Some(1.0));
        assert_eq!(percentile(&s, 0.5), Some(3.0));
        assert_eq!(percentile(&s, 0.99), Some(5.0));
        assert_eq!(percentile(&s, 1.0), Some(5.0));
    }
}
