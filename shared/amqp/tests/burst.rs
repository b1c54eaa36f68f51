#![allow(clippy::unwrap_used, clippy::expect_used)]
//! Filling a batch from what the client already holds must settle every message it
//! meets: a malformed one in the middle of a burst is dead-lettered, not dropped
//! half-way (unacked until the channel closes, with no dead-letter copy).

mod common;

use std::time::{Duration, Instant};

use common::{Fixture, next_within};
use imgfeat_amqp::{AmqpConsumer, WorkQueue};
use imgfeat_core::message::DetectJob;

const WAIT: Duration = Duration::from_secs(20);

#[tokio::test]
async fn a_burst_drained_without_waiting_dead_letters_its_malformed_messages() {
    let fx = Fixture::new("burst").await;
    fx.publish_raw(
        WorkQueue::Uploads,
        &[
            br#"{"v":1,"image_id":1,"enqueued_at_ms":1}"#,
            b"not json",
            br#"{"v":1,"image_id":2,"enqueued_at_ms":1}"#,
            b"{\"v\":1}",
            br#"{"v":1,"image_id":3,"enqueued_at_ms":1}"#,
        ],
    )
    .await;
    let mut consumer = AmqpConsumer::<DetectJob>::new(&fx.conn, &[WorkQueue::Uploads]);
    let mut batch = vec![next_within(&mut consumer, WAIT).await];
    let deadline = Instant::now() + WAIT;
    while batch.len() < 3 && Instant::now() < deadline {
        match consumer.next_buffered().await {
            Some(d) => batch.push(d),
            // Not here yet: a batcher would close the batch; the test looks again.
            None => tokio::time::sleep(Duration::from_millis(10)).await,
        }
    }
    let mut ids: Vec<u64> = batch.iter().map(|d| d.job.image_id.0).collect();
    ids.sort();
    assert_eq!(ids, vec![1, 2, 3]);
    for d in batch {
        d.handle.ack().await.unwrap();
    }
    let dlq = fx.conn.topology().dlq(WorkQueue::Uploads);
    assert_eq!(fx.count(&dlq).await, 2, "both malformed messages parked");
    consumer.close().await;
    assert_eq!(
        fx.count(&fx.queue(WorkQueue::Uploads)).await,
        0,
        "nothing was left unsettled to come back"
    );
}

#[tokio::test]
async fn nothing_buffered_means_none_at_once() {
    let fx = Fixture::new("burst-empty").await;
    let mut consumer = AmqpConsumer::<DetectJob>::new(&fx.conn, &[WorkQueue::Uploads]);
    // Not subscribed yet, and later nothing there: neither waits.
    assert!(consumer.next_buffered().await.is_none());
    fx.publish_raw(
        WorkQueue::Uploads,
        &[br#"{"v":1,"image_id":4,"enqueued_at_ms":1}"#],
    )
    .await;
    let d = next_within(&mut consumer, WAIT).await;
    d.handle.ack().await.unwrap();
    assert!(consumer.next_buffered().await.is_none());
    consumer.close().await;
}
