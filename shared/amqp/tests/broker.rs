#![allow(clippy::unwrap_used, clippy::expect_used)]
//! The adapter against the real broker at 127.0.0.1:5672. Each test has its own prefix.

mod common;

use std::collections::HashSet;
use std::time::Duration;

use common::{Fixture, jobs, next_within};
use imgfeat_amqp::{AmqpConsumer, AmqpPublisher, WorkQueue, dlq};
use imgfeat_core::message::DetectJob;
use imgfeat_core::ports::{JobConsumer, JobPublisher};
use imgfeat_core::{FailureKind, FailureReason, ImageId};

const WAIT: Duration = Duration::from_secs(20);

#[tokio::test]
async fn published_jobs_are_consumed_and_acked() {
    let fx = Fixture::new("pubsub").await;
    let publisher = AmqpPublisher::new(&fx.conn, WorkQueue::Detect);
    publisher.publish(&jobs(1..=3)).await.unwrap();
    assert_eq!(fx.count(&fx.queue(WorkQueue::Detect)).await, 3);

    let mut consumer = AmqpConsumer::<DetectJob>::new(&fx.conn, &[WorkQueue::Detect]);
    let mut seen = Vec::new();
    for _ in 0..3 {
        let d = next_within(&mut consumer, WAIT).await;
        assert_eq!(d.attempt, 1);
        seen.push(d.job.image_id.0);
        d.handle.ack().await.unwrap();
    }
    seen.sort();
    assert_eq!(seen, vec![1, 2, 3]);
    consumer.close().await;
    // Acked messages do not come back when the channel closes.
    assert_eq!(fx.count(&fx.queue(WorkQueue::Detect)).await, 0);
}

#[tokio::test]
async fn malformed_and_unknown_versions_are_dead_lettered_with_reasons() {
    let fx = Fixture::new("poison").await;
    fx.publish_raw(
        WorkQueue::Detect,
        &[
            b"not json",
            br#"{"v":99,"image_id":5,"enqueued_at_ms":1}"#,
            br#"{"v":1,"image_id":7,"enqueued_at_ms":1}"#,
        ],
    )
    .await;

    let mut consumer = AmqpConsumer::<DetectJob>::new(&fx.conn, &[WorkQueue::Detect]);
    // The worker sees only the valid job.
    let d = next_within(&mut consumer, WAIT).await;
    assert_eq!(d.job.image_id, ImageId(7));
    d.handle.ack().await.unwrap();

    let (total, letters) = dlq::list(&fx.conn, WorkQueue::Detect, 10).await.unwrap();
    assert_eq!(total, 2);
    assert_eq!(letters[0].body, b"not json");
    assert_eq!(letters[0].kind.as_deref(), Some("malformed_message"));
    assert!(
        letters[0]
            .reason
            .as_deref()
            .unwrap()
            .contains("not valid JSON")
    );
    assert_eq!(letters[1].kind.as_deref(), Some("malformed_message"));
    assert!(letters[1].reason.as_deref().unwrap().contains("version 99"));
    assert!(letters[1].dead_at_ms.is_some());
    consumer.close().await;
}

#[tokio::test]
async fn retries_come_back_through_the_ttl_queues_then_dead_letter() {
    let fx = Fixture::new("retry").await; // max_attempts 3, delays 100 ms, 300 ms
    AmqpPublisher::new(&fx.conn, WorkQueue::Extract)
        .publish(&jobs([42]))
        .await
        .unwrap();
    let mut consumer = AmqpConsumer::<DetectJob>::new(&fx.conn, &[WorkQueue::Extract]);
    let store_down = FailureReason::new(FailureKind::Unavailable, "store timed out");

    for expected_attempt in 1..=3 {
        let d = next_within(&mut consumer, WAIT).await;
        assert_eq!(d.job.image_id, ImageId(42));
        assert_eq!(d.attempt, expected_attempt);
        // The stages learn from the handle when the fleet's policy gives up.
        assert_eq!(d.handle.is_last_attempt(), expected_attempt == 3);
        d.handle.retry(&store_down).await.unwrap();
    }

    let (total, letters) = dlq::list(&fx.conn, WorkQueue::Extract, 10).await.unwrap();
    assert_eq!(total, 1);
    assert_eq!(letters[0].attempts, 3);
    assert_eq!(letters[0].kind.as_deref(), Some("unavailable"));
    let reason = letters[0].reason.as_deref().unwrap();
    assert!(reason.contains("gave up after 3 attempts") && reason.contains("store timed out"));
    assert_eq!(fx.count(&fx.queue(WorkQueue::Extract)).await, 0);
    consumer.close().await;
}

#[tokio::test]
async fn permanent_failures_are_dead_lettered_at_once() {
    let fx = Fixture::new("permanent").await;
    AmqpPublisher::new(&fx.conn, WorkQueue::Detect)
        .publish(&jobs([9]))
        .await
        .unwrap();
    let mut consumer = AmqpConsumer::<DetectJob>::new(&fx.conn, &[WorkQueue::Detect]);
    let d = next_within(&mut consumer, WAIT).await;
    let missing = FailureReason::new(FailureKind::NotFound, "image 9 not found");
    d.handle.dead_letter(&missing).await.unwrap();

    let (total, letters) = dlq::list(&fx.conn, WorkQueue::Detect, 10).await.unwrap();
    assert_eq!(total, 1);
    assert_eq!(letters[0].attempts, 1);
    assert_eq!(letters[0].kind.as_deref(), Some("not_found"));
    assert_eq!(letters[0].reason.as_deref(), Some("image 9 not found"));
    consumer.close().await;
}

#[tokio::test]
async fn live_jobs_overtake_thousands_of_waiting_backfill_jobs() {
    let fx = Fixture::new("priority").await; // prefetch 20
    let backfill = AmqpPublisher::new(&fx.conn, WorkQueue::DetectBackfill);
    for chunk in (1_000_000..1_003_000u64).collect::<Vec<_>>().chunks(1000) {
        backfill
            .publish(&jobs(chunk.iter().copied()))
            .await
            .unwrap();
    }
    let mut consumer =
        AmqpConsumer::<DetectJob>::new(&fx.conn, &[WorkQueue::Detect, WorkQueue::DetectBackfill]);
    // The backfill is flowing...
    for _ in 0..50 {
        let d = next_within(&mut consumer, WAIT).await;
        assert!(d.job.image_id.0 >= 1_000_000);
        d.handle.ack().await.unwrap();
    }
    // ...when uploads arrive: they must come within what was already prefetched of the
    // backfill, not after the ~2950 backfill jobs still waiting.
    AmqpPublisher::new(&fx.conn, WorkQueue::Detect)
        .publish(&jobs(1..=5))
        .await
        .unwrap();
    let mut live = HashSet::new();
    let mut backfill_between = 0;
    while live.len() < 5 {
        let d = next_within(&mut consumer, WAIT).await;
        if d.job.image_id.0 < 1_000_000 {
            live.insert(d.job.image_id.0);
        } else {
            backfill_between += 1;
        }
        d.handle.ack().await.unwrap();
    }
    assert!(
        backfill_between <= 2 * fx.config.prefetch as usize,
        "{backfill_between} backfill jobs went before the live ones"
    );
    assert!(fx.count(&fx.queue(WorkQueue::DetectBackfill)).await > 2000);
    consumer.close().await;
}

#[tokio::test]
async fn unacked_deliveries_come_back_after_the_consumer_goes() {
    let fx = Fixture::new("unacked").await;
    AmqpPublisher::new(&fx.conn, WorkQueue::Detect)
        .publish(&jobs(1..=3))
        .await
        .unwrap();
    let mut first = AmqpConsumer::<DetectJob>::new(&fx.conn, &[WorkQueue::Detect]);
    let mut held = Vec::new();
    for _ in 0..3 {
        held.push(next_within(&mut first, WAIT).await);
    }
    assert_eq!(fx.count(&fx.queue(WorkQueue::Detect)).await, 0);
    first.close().await;
    // Acking on the closed channel fails: the broker owns these messages again.
    assert!(held[0].handle.ack().await.is_err());

    let mut second = AmqpConsumer::<DetectJob>::new(&fx.conn, &[WorkQueue::Detect]);
    let mut ids = Vec::new();
    for _ in 0..3 {
        let d = next_within(&mut second, WAIT).await;
        ids.push(d.job.image_id.0);
        d.handle.ack().await.unwrap();
    }
    ids.sort();
    assert_eq!(ids, vec![1, 2, 3]);
    second.close().await;
}

#[tokio::test]
async fn dead_letters_can_be_listed_without_loss_and_requeued() {
    let fx = Fixture::new("dlq").await;
    AmqpPublisher::new(&fx.conn, WorkQueue::Detect)
        .publish(&jobs(1..=3))
        .await
        .unwrap();
    let mut consumer = AmqpConsumer::<DetectJob>::new(&fx.conn, &[WorkQueue::Detect]);
    for _ in 0..3 {
        let d = next_within(&mut consumer, WAIT).await;
        let reason = FailureReason::new(FailureKind::Corrupt, format!("bad {}", d.job.image_id));
        d.handle.dead_letter(&reason).await.unwrap();
    }

    let (total, first) = dlq::list(&fx.conn, WorkQueue::Detect, 2).await.unwrap();
    assert_eq!((total, first.len()), (3, 2));
    let (total, again) = dlq::list(&fx.conn, WorkQueue::Detect, 10).await.unwrap();
    assert_eq!((total, again.len()), (3, 3));
    let reasons: HashSet<_> = again.iter().map(|l| l.reason.clone().unwrap()).collect();
    assert_eq!(
        reasons,
        ["bad 1", "bad 2", "bad 3"].map(String::from).into()
    );

    assert_eq!(
        dlq::requeue(&fx.conn, WorkQueue::Detect, Some(2))
            .await
            .unwrap(),
        2
    );
    assert_eq!(
        dlq::requeue(&fx.conn, WorkQueue::Detect, None)
            .await
            .unwrap(),
        1
    );
    assert_eq!(
        fx.count(&fx.conn.topology().dlq(WorkQueue::Detect)).await,
        0
    );

    let mut ids = Vec::new();
    for _ in 0..3 {
        let d = next_within(&mut consumer, WAIT).await;
        assert_eq!(d.attempt, 1, "requeue resets the attempts");
        ids.push(d.job.image_id.0);
        d.handle.ack().await.unwrap();
    }
    ids.sort();
    assert_eq!(ids, vec![1, 2, 3]);
    consumer.close().await;
}

#[tokio::test]
async fn a_stopped_consumer_returns_none() {
    let fx = Fixture::new("stop").await;
    let mut consumer = AmqpConsumer::<DetectJob>::new(&fx.conn, &[WorkQueue::Detect]);
    let stop = consumer.stopper();
    let waiting = tokio::spawn(async move { consumer.next().await.is_none() });
    stop.stop();
    assert!(tokio::time::timeout(WAIT, waiting).await.unwrap().unwrap());
}

#[tokio::test]
async fn a_consumer_waiting_for_an_absent_broker_still_stops() {
    let config = imgfeat_amqp::AmqpConfig {
        url: "amqp://guest:guest@127.0.0.1:1/%2f".into(),
        ..common::test_config("absent")
    };
    let conn = imgfeat_amqp::AmqpConnection::new(config);
    let mut consumer = AmqpConsumer::<DetectJob>::new(&conn, &[WorkQueue::Detect]);
    let stop = consumer.stopper();
    let waiting = tokio::spawn(async move { consumer.next().await.is_none() });
    let mut state = conn.state();
    state
        .wait_for(|s| *s == imgfeat_amqp::BrokerState::Disconnected)
        .await
        .unwrap();
    stop.stop();
    assert!(tokio::time::timeout(WAIT, waiting).await.unwrap().unwrap());
    conn.close().await;
}
