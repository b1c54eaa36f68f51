#![allow(clippy::unwrap_used, clippy::expect_used)]
//! A delivery whose retry or dead-letter copy cannot be published must not stay unsettled
//! (holding a prefetch slot, invisible to every consumer, until its channel closes): it
//! goes straight back to its queue.

mod common;

use std::time::Duration;

use common::{Fixture, jobs, next_within};
use imgfeat_amqp::lapin::options::QueueDeleteOptions;
use imgfeat_amqp::{AmqpConsumer, AmqpPublisher, WorkQueue};
use imgfeat_core::message::DetectJob;
use imgfeat_core::ports::JobPublisher;
use imgfeat_core::{FailureKind, FailureReason, ImageId};

/// Long enough for a requeued message to come back, short enough that the unsettled
/// variant fails the test quickly.
const WAIT: Duration = Duration::from_secs(10);

async fn delete_queue(fx: &Fixture, name: &str) {
    let ch = fx.conn.channel().await.unwrap();
    ch.queue_delete(name.into(), QueueDeleteOptions::default())
        .await
        .unwrap();
}

#[tokio::test]
async fn a_retry_that_cannot_be_published_puts_the_message_back_at_once() {
    let fx = Fixture::new("retry-unpublishable").await; // first delay 100 ms
    AmqpPublisher::new(&fx.conn, WorkQueue::Detect)
        .publish(&jobs([11]))
        .await
        .unwrap();
    let mut consumer = AmqpConsumer::<DetectJob>::new(&fx.conn, &[WorkQueue::Detect]);
    let d = next_within(&mut consumer, WAIT).await;
    // The retry queue is gone: the copy is unroutable.
    let retry_queue = fx
        .conn
        .topology()
        .retry_queue(WorkQueue::Detect, Duration::from_millis(100));
    delete_queue(&fx, &retry_queue).await;

    let down = FailureReason::new(FailureKind::Unavailable, "store down");
    assert!(d.handle.retry(&down).await.is_err());

    let again = next_within(&mut consumer, WAIT).await;
    assert_eq!(again.job.image_id, ImageId(11));
    assert_eq!(again.attempt, 1, "the original came back, not a copy");
    again.handle.ack().await.unwrap();
    consumer.close().await;
}

#[tokio::test]
async fn a_dead_letter_that_cannot_be_published_puts_the_message_back_at_once() {
    let fx = Fixture::new("dlq-unpublishable").await;
    AmqpPublisher::new(&fx.conn, WorkQueue::Detect)
        .publish(&jobs([12]))
        .await
        .unwrap();
    let mut consumer = AmqpConsumer::<DetectJob>::new(&fx.conn, &[WorkQueue::Detect]);
    let d = next_within(&mut consumer, WAIT).await;
    delete_queue(&fx, &fx.conn.topology().dlq(WorkQueue::Detect)).await;

    let missing = FailureReason::new(FailureKind::NotFound, "image 12 not found");
    assert!(d.handle.dead_letter(&missing).await.is_err());

    let again = next_within(&mut consumer, WAIT).await;
    assert_eq!(again.job.image_id, ImageId(12));
    again.handle.ack().await.unwrap();
    consumer.close().await;
}
