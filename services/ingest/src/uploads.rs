//! Upload events from the platform's upload service, forwarded to the live queue.
//!
//! Event schema, version 1, on `<prefix>.uploads`:
//! `{"v":1,"image_id":123}` with optional `"uploaded_at_ms":1700000000000`
//! (carried into the detect job's `enqueued_at_ms`, so latency counts from the upload).
//! Malformed events and unknown versions are dead-lettered to `<prefix>.uploads.dlq`.

use std::sync::Arc;

use imgfeat_amqp::{AmqpConnection, AmqpConsumer, WorkQueue};
use imgfeat_core::message::DetectJob;
use imgfeat_core::ports::{Delivery, JobConsumer, JobPublisher};
use imgfeat_core::{FailureKind, FailureReason, ImageId, now_ms};
use serde::{Deserialize, Serialize};

use imgfeat_core::shutdown::Shutdown;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct UploadEvent {
    pub image_id: ImageId,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub uploaded_at_ms: Option<u64>,
}

/// Forwards events in batches (whatever is already buffered, up to `max_batch`), acking
/// each event only after its detect job is confirmed. Returns on shutdown.
pub async fn forward_uploads(
    conn: AmqpConnection,
    live: Arc<dyn JobPublisher<DetectJob>>,
    max_batch: usize,
    shutdown: Shutdown,
) {
    let mut consumer = AmqpConsumer::<UploadEvent>::new(&conn, &[WorkQueue::Uploads]);
    let stop = consumer.stopper();
    let stopping = shutdown.clone();
    tokio::spawn(async move {
        stopping.wait().await;
        stop.stop();
    });
    while let Some(first) = consumer.next().await {
        let mut batch: Vec<Delivery<UploadEvent>> = Vec::new();
        match first {
            Ok(d) => batch.push(d),
            Err(e) => {
                tracing::warn!(error = %e, "upload consumer");
                continue;
            }
        }
        // Take what is already here without waiting. Not a zero timeout around `next()`:
        // cancelling it while it dead-letters a malformed event would leave that event
        // unsettled, holding a prefetch slot until the channel closes.
        while batch.len() < max_batch {
            match consumer.next_buffered().await {
                Some(d) => batch.push(d),
                None => break,
            }
        }
        forward(&*live, batch).await;
    }
    consumer.close().await;
}

async fn forward(live: &dyn JobPublisher<DetectJob>, batch: Vec<Delivery<UploadEvent>>) {
    let now = now_ms();
    let jobs: Vec<DetectJob> = batch
        .iter()
        .map(|d| DetectJob::new(d.job.image_id, d.job.uploaded_at_ms.unwrap_or(now)))
        .collect();
    match live.publish(&jobs).await {
        Ok(()) => {
            for d in batch {
                if let Err(e) = d.handle.ack().await {
                    // The broker redelivers it; forwarding twice is harmless.
                    tracing::warn!(error = %e, "acking an upload event");
                }
            }
        }
        Err(e) => {
            let reason = FailureReason::new(FailureKind::Unavailable, e.to_string());
            for d in batch {
                if let Err(e) = d.handle.retry(&reason).await {
                    tracing::warn!(error = %e, "scheduling an upload event retry");
                }
            }
        }
    }
}
