//! Where a detected image's extract job goes: to a queue, or straight to an extractor
//! in the same process.
//!
//! Through a queue, the detect delivery is acked once the queue has confirmed the
//! extract job: from then on the queue holds the work. Chained, nothing holds it between
//! the stages, so the detect delivery itself travels on with the extract job and is
//! settled by the extractor: acked only once the code is stored, sent back (or
//! dead-lettered) with the extractor's failure. A process killed between the stages
//! leaves the detect message unacked, and the broker hands it out again.

use std::sync::Arc;

use async_trait::async_trait;
use imgfeat_core::message::ExtractJob;
use imgfeat_core::ports::{Delivery, JobConsumer, JobPublisher, QueueError};
use tokio::sync::mpsc;

/// Where the detector stage sends what it detected.
pub enum Downstream {
    /// Extract jobs are published; each detect delivery is acked once they are confirmed.
    Queue(Arc<dyn JobPublisher<ExtractJob>>),
    /// Extract jobs go to this process's extractor carrying their detect deliveries.
    Chained(ChainSender),
}

/// The detector's end of a chain: an extract job with the upstream delivery's handle.
pub struct ChainSender(mpsc::Sender<Delivery<ExtractJob>>);

/// The extractor's end of a chain: a [`JobConsumer`] whose deliveries settle the
/// detect messages they came from.
pub struct ChainConsumer(mpsc::Receiver<Delivery<ExtractJob>>);

/// A chain holding at most `capacity` extract jobs between the stages; the detector
/// waits when it is full. It ends for the consumer once the sender is dropped and
/// drained.
pub fn chain(capacity: usize) -> (ChainSender, ChainConsumer) {
    let (tx, rx) = mpsc::channel(capacity.max(1));
    (ChainSender(tx), ChainConsumer(rx))
}

impl ChainSender {
    /// Hands `delivery` to the extractor; gives it back when the extractor is gone, so
    /// the caller can settle it.
    pub async fn hand_on(
        &self,
        delivery: Delivery<ExtractJob>,
    ) -> Result<(), Delivery<ExtractJob>> {
        self.0.send(delivery).await.map_err(|returned| returned.0)
    }
}

#[async_trait]
impl JobConsumer<ExtractJob> for ChainConsumer {
    async fn next(&mut self) -> Option<Result<Delivery<ExtractJob>, QueueError>> {
        self.0.recv().await.map(Ok)
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Mutex;

    use imgfeat_core::ports::DeliveryHandle;
    use imgfeat_core::{FailureKind, FailureReason, ImageId, ModelVersion};

    use super::*;

    /// Records what was done to the upstream delivery.
    #[derive(Default, Clone)]
    struct Upstream(Arc<Mutex<Vec<&'static str>>>);

    #[async_trait]
    impl DeliveryHandle for Upstream {
        async fn ack(&self) -> Result<(), QueueError> {
            self.0.lock().unwrap().push("ack");
            Ok(())
        }
        async fn retry(&self, _: &FailureReason) -> Result<(), QueueError> {
            self.0.lock().unwrap().push("retry");
            Ok(())
        }
        async fn dead_letter(&self, _: &FailureReason) -> Result<(), QueueError> {
            self.0.lock().unwrap().push("dead_letter");
            Ok(())
        }
        fn is_last_attempt(&self) -> bool {
            true
        }
    }

    fn job(id: u64) -> ExtractJob {
        ExtractJob {
            image_id: ImageId(id),
            detector_version: ModelVersion::new("ssd@1").unwrap(),
            enqueued_at_ms: 0,
            crop_jpeg: None,
            crop: None,
        }
    }

    #[tokio::test]
    async fn the_extractor_settles_the_upstream_delivery_and_the_chain_ends_with_its_sender() {
        let (tx, mut rx) = chain(2);
        let upstream = Upstream::default();
        for (id, attempt) in [(1, 1), (2, 3)] {
            let delivery = Delivery {
                job: job(id),
                attempt,
                handle: Box::new(upstream.clone()),
            };
            assert!(tx.hand_on(delivery).await.is_ok());
        }
        drop(tx);
        let first = rx.next().await.unwrap().unwrap();
        assert_eq!(first.job.image_id, ImageId(1));
        first.handle.ack().await.unwrap();
        let second = rx.next().await.unwrap().unwrap();
        assert_eq!((second.job.image_id, second.attempt), (ImageId(2), 3));
        assert!(second.handle.is_last_attempt());
        let reason = FailureReason::new(FailureKind::Unavailable, "store down");
        second.handle.retry(&reason).await.unwrap();
        assert!(rx.next().await.is_none(), "drained and the sender is gone");
        assert_eq!(*upstream.0.lock().unwrap(), vec!["ack", "retry"]);
    }

    #[tokio::test]
    async fn a_delivery_comes_back_when_the_extractor_is_gone() {
        let (tx, rx) = chain(1);
        drop(rx);
        let delivery = Delivery {
            job: job(7),
            attempt: 1,
            handle: Box::new(Upstream::default()),
        };
        let back = tx.hand_on(delivery).await.err().unwrap();
        assert_eq!(back.job.image_id, ImageId(7));
    }
}
