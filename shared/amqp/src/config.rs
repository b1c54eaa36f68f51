//! Settings of the RabbitMQ adapter. Every service of the fleet must use the same
//! `prefix`, `retry_delays_ms` and `delivery_limit`: they are baked into the queue
//! declarations, and RabbitMQ refuses a redeclaration with other arguments.

use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use imgfeat_core::{RetryPolicy, RetryPolicyError};
use serde::{Deserialize, Serialize};

/// How the fleet talks to RabbitMQ. Durations are milliseconds so that they read the same
/// in a TOML file and in `IMGFEAT_AMQP__*` environment variables.
/// `Debug` shows the URL without its password.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct AmqpConfig {
    /// AMQP URI with credentials and URL-encoded vhost (`%2f` is `/`). Query parameters
    /// such as `?heartbeat=10` are passed to the broker.
    pub url: String,
    /// Prepended to every queue name (`<prefix>.detect`, ...), so that several fleets or
    /// test runs share a vhost without seeing each other's messages.
    pub prefix: String,
    /// Unacknowledged deliveries a consumer channel may hold (one channel per consumed
    /// queue). Keep it >= max_batch x batches in flight, or batches never fill.
    pub prefetch: u16,
    /// Delay before each retry: the n-th retry waits `retry_delays_ms[n-1]`, the last entry
    /// repeats. Each distinct delay is a retry queue with that TTL, per work queue.
    /// With `max_attempts`, the fleet's one [`RetryPolicy`] (see [`Self::retry_policy`]).
    pub retry_delays_ms: Vec<u64>,
    /// Deliveries of a job (first one included) before a transient failure is given up
    /// and dead-lettered. The stages ask each delivery, so this is the only such limit.
    pub max_attempts: u32,
    /// Broker-side guard against crash loops: a message redelivered this many times
    /// without being settled (e.g. it kills the worker) is dead-lettered by RabbitMQ.
    /// 0 disables the guard. Counts every return of an unacked message, so keep it well
    /// above the number of restarts a message may see while prefetched.
    pub delivery_limit: u32,
    /// First wait before reconnecting after the broker went away; doubles each time.
    pub reconnect_initial_ms: u64,
    /// Cap of the reconnect wait.
    pub reconnect_max_ms: u64,
    /// How long a publish keeps trying (reconnecting and republishing) before it
    /// reports the queue unavailable.
    pub publish_timeout_ms: u64,
    /// PEM file of extra CAs to trust for `amqps://` URLs (a private CA), beside the
    /// system's roots. Plain `amqp://` ignores it.
    pub ca_file: Option<std::path::PathBuf>,
    /// Fanout exchange `<prefix>.<name>` on which the extractor announces every stored
    /// code (followed by the search shards).
    pub code_stored_exchange: String,
    /// Fanout exchange `<prefix>.<name>` on which the search shards announce the
    /// near-duplicates of new uploads.
    pub duplicate_found_exchange: String,
}

impl Default for AmqpConfig {
    fn default() -> Self {
        Self {
            url: "amqp://guest:guest@127.0.0.1:5672/%2f".into(),
            prefix: "imgfeat".into(),
            prefetch: 64,
            retry_delays_ms: vec![1_000, 5_000, 30_000, 120_000, 600_000],
            max_attempts: 6,
            delivery_limit: 50,
            reconnect_initial_ms: 200,
            reconnect_max_ms: 10_000,
            publish_timeout_ms: 30_000,
            ca_file: None,
            code_stored_exchange: "code_stored".into(),
            duplicate_found_exchange: "duplicate_found".into(),
        }
    }
}

impl std::fmt::Debug for AmqpConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AmqpConfig")
            .field("url", &crate::redact_url(&self.url))
            .field("prefix", &self.prefix)
            .field("prefetch", &self.prefetch)
            .field("retry_delays_ms", &self.retry_delays_ms)
            .field("max_attempts", &self.max_attempts)
            .field("delivery_limit", &self.delivery_limit)
            .field("reconnect_initial_ms", &self.reconnect_initial_ms)
            .field("reconnect_max_ms", &self.reconnect_max_ms)
            .field("publish_timeout_ms", &self.publish_timeout_ms)
            .field("code_stored_exchange", &self.code_stored_exchange)
            .field("duplicate_found_exchange", &self.duplicate_found_exchange)
            .finish()
    }
}

/// Start-up errors of the settings; an invalid URL is shown without its password.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ConfigError {
    #[error("amqp.url {0:?} is not a valid AMQP URI: {1}")]
    Url(String, String),
    #[error("amqp.prefix {0:?} must be 1..=100 characters of [A-Za-z0-9._-]")]
    Prefix(String),
    #[error("amqp.{0} {1:?} must be 1..=100 characters of [A-Za-z0-9._-]")]
    Exchange(&'static str, String),
    #[error("amqp.{0} must be at least 1")]
    Zero(&'static str),
    #[error("amqp.retry_delays_ms must list at least one delay, each >= 1 ms")]
    RetryDelays,
    #[error("amqp.ca_file {0:?} is not a readable PEM file of certificates: {1}")]
    CaFile(std::path::PathBuf, String),
    #[error("amqp.reconnect_max_ms ({max}) is below amqp.reconnect_initial_ms ({initial})")]
    Reconnect { initial: u64, max: u64 },
}

impl AmqpConfig {
    /// Checks the settings once at start-up, so that a typo fails loudly there instead of
    /// as a broker error much later.
    pub fn validate(&self) -> Result<(), ConfigError> {
        #[cfg(feature = "broker")]
        self.url.parse::<lapin::uri::AMQPUri>().map_err(|e| {
            ConfigError::Url(crate::redact_url(&self.url), crate::scrub(&e, &self.url))
        })?;
        if !is_name(&self.prefix) {
            return Err(ConfigError::Prefix(self.prefix.clone()));
        }
        if let Some(path) = &self.ca_file {
            read_ca_file(path).map_err(|e| ConfigError::CaFile(path.clone(), e))?;
        }
        for (field, name) in [
            ("code_stored_exchange", &self.code_stored_exchange),
            ("duplicate_found_exchange", &self.duplicate_found_exchange),
        ] {
            if !is_name(name) {
                return Err(ConfigError::Exchange(field, name.clone()));
            }
        }
        if self.prefetch == 0 {
            return Err(ConfigError::Zero("prefetch"));
        }
        match self.retry_policy().validate() {
            Ok(()) => {}
            Err(RetryPolicyError::NoAttempts) => return Err(ConfigError::Zero("max_attempts")),
            Err(RetryPolicyError::Delays) => return Err(ConfigError::RetryDelays),
        }
        if self.reconnect_initial_ms == 0 {
            return Err(ConfigError::Zero("reconnect_initial_ms"));
        }
        if self.publish_timeout_ms == 0 {
            return Err(ConfigError::Zero("publish_timeout_ms"));
        }
        if self.reconnect_max_ms < self.reconnect_initial_ms {
            return Err(ConfigError::Reconnect {
                initial: self.reconnect_initial_ms,
                max: self.reconnect_max_ms,
            });
        }
        Ok(())
    }

    /// The retry policy of every queue of the fleet, from `max_attempts` and
    /// `retry_delays_ms` (the setting names predate the type; deployed files keep them).
    pub fn retry_policy(&self) -> RetryPolicy {
        RetryPolicy {
            max_attempts: self.max_attempts,
            delays_ms: self.retry_delays_ms.clone(),
        }
    }

    pub fn publish_timeout(&self) -> Duration {
        Duration::from_millis(self.publish_timeout_ms)
    }

    /// The reconnect schedule this config asks for.
    pub fn reconnect_backoff(&self) -> crate::Backoff {
        crate::Backoff::new(
            Duration::from_millis(self.reconnect_initial_ms),
            Duration::from_millis(self.reconnect_max_ms),
        )
    }
}

/// A name part the broker and a shell take as it is.
fn is_name(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 100
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || "._-".contains(c))
}

/// A queue prefix that no other run on the broker uses: `label`, this process's ID, a
/// per-process counter and the clock's nanoseconds, so that test runs and load tests
/// sharing a vhost (or a leftover of a killed run) never see each other's messages.
pub fn unique_prefix(label: &str) -> String {
    static NEXT: AtomicU32 = AtomicU32::new(0);
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or(0);
    format!(
        "{label}-{}-{}-{nanos}",
        std::process::id(),
        NEXT.fetch_add(1, Ordering::SeqCst)
    )
}

/// The PEM text of a CA file, refused unless it holds at least one certificate.
pub(crate) fn read_ca_file(path: &std::path::Path) -> Result<String, String> {
    let pem = std::fs::read_to_string(path).map_err(|e| e.to_string())?;
    if !pem.contains("-----BEGIN CERTIFICATE-----") {
        return Err("no PEM certificate in it".into());
    }
    Ok(pem)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unique_prefixes_carry_the_label_and_never_repeat() {
        let (a, b) = (unique_prefix("test-x"), unique_prefix("test-x"));
        assert!(
            a.starts_with("test-x-") && b.starts_with("test-x-"),
            "{a} {b}"
        );
        assert_ne!(a, b);
    }

    #[test]
    fn debug_output_hides_the_password() {
        let c = AmqpConfig {
            url: "amqp://fleet:hunter2@rabbit/%2f".into(),
            ..AmqpConfig::default()
        };
        let shown = format!("{c:?}");
        assert!(
            !shown.contains("hunter2") && shown.contains("fleet:***@rabbit"),
            "{shown}"
        );
    }

    #[test]
    fn defaults_are_valid() {
        assert_eq!(AmqpConfig::default().validate(), Ok(()));
    }

    #[test]
    fn bad_settings_are_refused_with_their_name() {
        let bad = |f: fn(&mut AmqpConfig)| {
            let mut c = AmqpConfig::default();
            f(&mut c);
            c.validate().unwrap_err().to_string()
        };
        assert!(bad(|c| c.url = "http://x".into()).contains("amqp.url"));
        let bad_url = bad(|c| c.url = "amqp://u:hunter2@host:notaport/%2f".into());
        assert!(
            bad_url.contains("amqp.url") && !bad_url.contains("hunter2"),
            "{bad_url}"
        );
        assert!(bad(|c| c.prefix = "a b".into()).contains("amqp.prefix"));
        assert!(bad(|c| c.prefix = String::new()).contains("amqp.prefix"));
        assert!(bad(|c| c.code_stored_exchange = "a/b".into()).contains("code_stored_exchange"));
        assert!(
            bad(|c| c.duplicate_found_exchange = String::new())
                .contains("duplicate_found_exchange")
        );
        assert!(bad(|c| c.prefetch = 0).contains("prefetch"));
        assert!(bad(|c| c.retry_delays_ms = vec![]).contains("retry_delays_ms"));
        assert!(bad(|c| c.retry_delays_ms = vec![5, 0]).contains("retry_delays_ms"));
        assert!(bad(|c| c.max_attempts = 0).contains("max_attempts"));
        assert!(bad(|c| c.reconnect_max_ms = 1).contains("reconnect_max_ms"));
    }
}
