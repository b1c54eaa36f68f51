//! The one retry policy: how many deliveries a job gets and how long each retry waits.
//! Queue adapters own it (RabbitMQ from `[amqp]`, the in-process queue from its own
//! default) and tell each delivery whether it is the last; stages never count attempts.

use std::time::Duration;

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RetryPolicy {
    /// Deliveries of a job (first one included) before a transient failure is given up
    /// and dead-lettered.
    pub max_attempts: u32,
    /// Wait before each retry: the n-th retry waits `delays_ms[n-1]`, the last entry
    /// repeats.
    pub delays_ms: Vec<u64>,
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum RetryPolicyError {
    #[error("max_attempts must be at least 1")]
    NoAttempts,
    #[error("the retry delays must list at least one delay, each >= 1 ms")]
    Delays,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        Self {
            max_attempts: 6,
            delays_ms: vec![1_000, 5_000, 30_000, 120_000, 600_000],
        }
    }
}

impl RetryPolicy {
    pub fn validate(&self) -> Result<(), RetryPolicyError> {
        if self.max_attempts == 0 {
            return Err(RetryPolicyError::NoAttempts);
        }
        if self.delays_ms.is_empty() || self.delays_ms.contains(&0) {
            return Err(RetryPolicyError::Delays);
        }
        Ok(())
    }

    /// Whether a failure of delivery number `attempt` (1-based) is final.
    pub fn is_last(&self, attempt: u32) -> bool {
        attempt >= self.max_attempts
    }

    /// The wait before re-running a job whose attempt `failed_attempt` (1-based) failed.
    pub fn delay(&self, failed_attempt: u32) -> Duration {
        let i = (failed_attempt.max(1) - 1) as usize;
        let ms = self
            .delays_ms
            .get(i)
            .or(self.delays_ms.last())
            .copied()
            .unwrap_or(1_000);
        Duration::from_millis(ms)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn delays_step_through_and_repeat_the_last() {
        let p = RetryPolicy {
            max_attempts: 3,
            delays_ms: vec![100, 300],
        };
        let d: Vec<_> = (1..=4).map(|a| p.delay(a).as_millis()).collect();
        assert_eq!(d, vec![100, 300, 300, 300]);
        assert!(!p.is_last(2) && p.is_last(3) && p.is_last(4));
    }

    #[test]
    fn empty_or_zero_settings_are_refused() {
        assert_eq!(RetryPolicy::default().validate(), Ok(()));
        let p = |max_attempts, delays_ms: Vec<u64>| RetryPolicy {
            max_attempts,
            delays_ms,
        };
        assert_eq!(p(0, vec![1]).validate(), Err(RetryPolicyError::NoAttempts));
        assert_eq!(p(1, vec![]).validate(), Err(RetryPolicyError::Delays));
        assert_eq!(p(1, vec![5, 0]).validate(), Err(RetryPolicyError::Delays));
    }
}
