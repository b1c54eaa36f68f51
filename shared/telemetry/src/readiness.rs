//! `/readyz`: named checks (broker connected, store reachable, model loaded); the
//! service is ready when every check passes. The adapters' checks come with the
//! adapters, opened from their settings (`imgfeat_core::ports::Opened`).

use std::time::Duration;

use imgfeat_core::ports::ReadyCheck;

/// A check that does not answer within this time counts as failed: a probe must answer
/// before the kubelet's own timeout, and a hung store is not a ready one.
const CHECK_TIMEOUT: Duration = Duration::from_secs(2);

/// The named checks of one service; cheap to clone.
#[derive(Clone, Default)]
pub struct Readiness {
    checks: Vec<(String, ReadyCheck)>,
}

/// One check's result.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CheckStatus {
    Ok,
    Failed(String),
}

/// Every check's result, in the order the checks were added.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReadinessReport {
    pub checks: Vec<(String, CheckStatus)>,
}

impl ReadinessReport {
    pub fn is_ready(&self) -> bool {
        self.checks.iter().all(|(_, s)| *s == CheckStatus::Ok)
    }

    /// `{"ready": bool, "checks": {"broker": "ok", "store": "<why not>"}}`.
    pub fn to_json(&self) -> serde_json::Value {
        let checks: serde_json::Map<String, serde_json::Value> = self
            .checks
            .iter()
            .map(|(name, s)| {
                let v = match s {
                    CheckStatus::Ok => "ok".to_owned(),
                    CheckStatus::Failed(why) => why.clone(),
                };
                (name.clone(), serde_json::Value::String(v))
            })
            .collect();
        serde_json::json!({ "ready": self.is_ready(), "checks": checks })
    }
}

impl Readiness {
    /// No checks: ready (a process with nothing to wait for).
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds a named check, run on every `/readyz` request.
    pub fn check(mut self, name: &str, check: ReadyCheck) -> Self {
        self.checks.push((name.to_owned(), check));
        self
    }

    /// Runs every check concurrently, each bounded by a timeout.
    pub async fn report(&self) -> ReadinessReport {
        let mut set = tokio::task::JoinSet::new();
        for (i, (_, check)) in self.checks.iter().enumerate() {
            let fut = check.run();
            set.spawn(async move {
                let status = match tokio::time::timeout(CHECK_TIMEOUT, fut).await {
                    Ok(Ok(())) => CheckStatus::Ok,
                    Ok(Err(why)) => CheckStatus::Failed(why),
                    Err(_) => CheckStatus::Failed(format!("no answer within {CHECK_TIMEOUT:?}")),
                };
                (i, status)
            });
        }
        let mut statuses: Vec<CheckStatus> = self
            .checks
            .iter()
            .map(|_| CheckStatus::Failed("the check panicked".into()))
            .collect();
        while let Some(joined) = set.join_next().await {
            if let Ok((i, status)) = joined
                && let Some(slot) = statuses.get_mut(i)
            {
                *slot = status;
            }
        }
        ReadinessReport {
            checks: self
                .checks
                .iter()
                .map(|(name, _)| name.clone())
                .zip(statuses)
                .collect(),
        }
    }
}
