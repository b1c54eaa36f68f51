//! Ending a delivery: acked once its result is durable, or, when it failed, recorded
//! and dead-lettered at once (permanent) or sent back for another attempt until attempts
//! run out (transient). Both stages settle every delivery through here, so the rule and
//! the in-flight and outcome events live in one place.

use std::sync::Arc;

use imgfeat_core::ports::{Delivery, ResultStore};
use imgfeat_core::{
    ErrorClass, FailureReason, FailureRecord, ImageId, ModelVersion, Stage, now_ms,
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
    pub max_attempts: u32,
}

impl Settler {
    /// Acks a delivery whose result is stored.
    pub async fn acked<M>(&self, delivery: Delivery<M>, image_id: ImageId, enqueued_at_ms: u64) {
        if let Err(e) = delivery.handle.ack().await {
            tracing::warn!(image_id = image_id.0, error = %e, "ack failed; the broker will redeliver");
        }
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
        let last_attempt = delivery.attempt >= self.max_attempts;
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
