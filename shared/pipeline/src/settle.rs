//! Ending a delivery: acked once its result is durable, or, when it failed, recorded
//! and dead-lettered at once (permanent) or sent back for another attempt until attempts
//! run out (transient). Both stages settle every delivery through here, so the rule and
//! the in-flight and outcome events live in one place.

use std::sync::Arc;

use imgfeat_core::ports::{Delivery, ResultStore};
use imgfeat_core::{
    ErrorClass, FailureKind, FailureReason, FailureRecord, ImageId, ModelVersion, Stage, now_ms,
};

use crate::events::{Event, Events, Outcome, Worker};

pub(crate) struct Failed<M> {
    pub delivery: Delivery<M>,
    pub image_id: ImageId,
    pub stage: Stage,
    pub reason: FailureReason,
    pub enqueued_at_ms: u64,
}

pub(crate) struct Settler {
    pub store: Arc<dyn ResultStore>,
    pub events: Events,
    pub worker: Worker,
}

impl Settler {
    /// Acks a delivery whose result is stored. A failed ack is no success: the broker
    /// redelivers the message, so it counts as a retry (the stored result makes the
    /// repeat cheap and harmless).
    pub async fn acked<M>(&self, delivery: Delivery<M>, image_id: ImageId, enqueued_at_ms: u64) {
        let outcome = match delivery.handle.ack().await {
            Ok(()) => Outcome::Ok,
            Err(e) => {
                tracing::warn!(image_id = image_id.0, error = %e, "ack failed; the broker will redeliver");
                Outcome::Retried(FailureKind::Unavailable)
            }
        };
        self.done(outcome, enqueued_at_ms);
    }

    /// A delivery gone on to the next stage in this process, which settles it (see
    /// [`crate::chain`]): done here, not yet acked.
    pub fn handed_on(&self, enqueued_at_ms: u64) {
        self.done(Outcome::Ok, enqueued_at_ms);
    }

    fn done(&self, outcome: Outcome, enqueued_at_ms: u64) {
        self.events.emit(Event::InFlight {
            worker: self.worker,
            delta: -1,
        });
        self.events
            .completed(self.worker, outcome, Some(enqueued_at_ms));
    }

    /// Records and settles one failure. Recording is best effort: when the store itself
    /// is the trouble, the delivery's own retry or dead-letter header keeps the reason.
    pub async fn settle<M>(&self, version: &ModelVersion, failed: Failed<M>) {
        let Failed {
            delivery,
            image_id,
            stage,
            reason,
            enqueued_at_ms,
        } = failed;
        // The queue's retry policy decides, the same one its `retry` applies.
        let last_attempt = delivery.handle.is_last_attempt();
        let outcome = match reason.class() {
            ErrorClass::Permanent => Outcome::Failed(reason.kind),
            ErrorClass::Transient if last_attempt => Outcome::DeadLettered(reason.kind),
            ErrorClass::Transient => Outcome::Retried(reason.kind),
        };
        tracing::warn!(
            image_id = image_id.0,
            model_version = %version,
            stage = %stage,
            attempt = delivery.attempt,
            outcome = outcome.as_str(),
            "{reason}"
        );
        if outcome.is_final() {
            let record = FailureRecord {
                image_id,
                model_version: version.clone(),
                stage,
                reason: reason.clone(),
                attempts: delivery.attempt,
                at_ms: now_ms(),
            };
            if let Err(e) = self.store.put_failures(&[record]).await {
                tracing::warn!(image_id = image_id.0, error = %e, "could not record a failure");
            }
        }
        let settled = match outcome {
            Outcome::Retried(_) => delivery.handle.retry(&reason).await,
            _ => delivery.handle.dead_letter(&reason).await,
        };
        if let Err(e) = settled {
            // The broker will redeliver the unsettled message; idempotent writes make
            // the repeat harmless.
            tracing::warn!(image_id = image_id.0, error = %e, "could not settle a failed delivery");
        }
        self.done(outcome, enqueued_at_ms);
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Mutex;

    use async_trait::async_trait;
    use imgfeat_core::ports::{DeliveryHandle, QueueError};
    use imgfeat_store::SqliteStore;

    use super::*;
    use crate::events::EventSink;

    struct AckFails;

    #[async_trait]
    impl DeliveryHandle for AckFails {
        async fn ack(&self) -> Result<(), QueueError> {
            Err(QueueError::Unavailable("channel closed".into()))
        }
        async fn retry(&self, _: &FailureReason) -> Result<(), QueueError> {
            Ok(())
        }
        async fn dead_letter(&self, _: &FailureReason) -> Result<(), QueueError> {
            Ok(())
        }
        fn is_last_attempt(&self) -> bool {
            false
        }
    }

    /// A delivery whose queue says whether it is the last attempt, recording how it
    /// was settled.
    struct Policed {
        last: bool,
        settled: Arc<Mutex<Vec<&'static str>>>,
    }

    #[async_trait]
    impl DeliveryHandle for Policed {
        async fn ack(&self) -> Result<(), QueueError> {
            Ok(())
        }
        async fn retry(&self, _: &FailureReason) -> Result<(), QueueError> {
            self.settled.lock().unwrap().push("retry");
            Ok(())
        }
        async fn dead_letter(&self, _: &FailureReason) -> Result<(), QueueError> {
            self.settled.lock().unwrap().push("dead_letter");
            Ok(())
        }
        fn is_last_attempt(&self) -> bool {
            self.last
        }
    }

    #[derive(Default)]
    struct Outcomes(Mutex<Vec<Outcome>>);

    impl EventSink for Outcomes {
        fn emit(&self, event: &Event) {
            if let Event::Completed { outcome, .. } = event {
                self.0.lock().unwrap().push(*outcome);
            }
        }
    }

    #[tokio::test]
    async fn a_failed_ack_counts_as_a_retry_not_a_success() {
        let dir = tempfile::tempdir().unwrap();
        let outcomes = Arc::new(Outcomes::default());
        let settler = Settler {
            store: Arc::new(SqliteStore::open(&dir.path().join("s.sqlite3")).unwrap()),
            events: Events::new().with(outcomes.clone()),
            worker: Worker::Detector,
        };
        let delivery = Delivery {
            job: (),
            attempt: 1,
            handle: Box::new(AckFails),
        };
        settler.acked(delivery, ImageId(1), 0).await;
        assert_eq!(
            *outcomes.0.lock().unwrap(),
            vec![Outcome::Retried(FailureKind::Unavailable)]
        );
    }

    /// The queue's policy, not an attempt count of the stage's own, decides whether a
    /// transient failure is retried or given up.
    #[tokio::test]
    async fn the_queue_says_when_attempts_have_run_out() {
        let dir = tempfile::tempdir().unwrap();
        let outcomes = Arc::new(Outcomes::default());
        let settler = Settler {
            store: Arc::new(SqliteStore::open(&dir.path().join("s.sqlite3")).unwrap()),
            events: Events::new().with(outcomes.clone()),
            worker: Worker::Extractor,
        };
        let version = ModelVersion::new("test@1").unwrap();
        let settled = Arc::new(Mutex::new(Vec::new()));
        // Attempt numbers say nothing: the first is the last here, the 9th is not.
        for (attempt, last) in [(1, true), (9, false)] {
            let failed = Failed {
                delivery: Delivery {
                    job: (),
                    attempt,
                    handle: Box::new(Policed {
                        last,
                        settled: settled.clone(),
                    }),
                },
                image_id: ImageId(attempt.into()),
                stage: Stage::Extract,
                reason: FailureReason::new(FailureKind::Unavailable, "store down"),
                enqueued_at_ms: 0,
            };
            settler.settle(&version, failed).await;
        }
        assert_eq!(*settled.lock().unwrap(), vec!["dead_letter", "retry"]);
        assert_eq!(
            *outcomes.0.lock().unwrap(),
            vec![
                Outcome::DeadLettered(FailureKind::Unavailable),
                Outcome::Retried(FailureKind::Unavailable)
            ]
        );
    }
}
