//! Deleting a follower's queues on the real broker: both its queue and its dead-letter
//! queue go, and deleting a follower that never bound is no error (a load test's
//! clean-up runs whether or not it got as far as following).
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::{Fixture, test_config};
use imgfeat_amqp::EventExchange;
use imgfeat_amqp::lapin::options::QueueDeclareOptions;
use imgfeat_amqp::lapin::types::FieldTable;

/// Whether `name` exists: a passive declare fails (and closes its channel) when not.
async fn exists(fx: &Fixture, name: &str) -> bool {
    let ch = fx.conn.channel().await.unwrap();
    let passive = QueueDeclareOptions {
        passive: true,
        ..QueueDeclareOptions::default()
    };
    ch.queue_declare(name.into(), passive, FieldTable::default())
        .await
        .is_ok()
}

#[tokio::test]
async fn a_follower_s_queues_are_deleted_and_a_missing_one_is_no_error() {
    let fx = Fixture::with(test_config("follower-delete")).await;
    let t = fx.conn.topology();
    let e = EventExchange::CodeStored;
    let ch = fx.conn.channel().await.unwrap();
    t.delete_follower(&ch, e, "never-bound").await.unwrap();

    t.declare_follower(&ch, e, "reader").await.unwrap();
    let (queue, dlq) = (t.follower_queue(e, "reader"), t.follower_dlq(e, "reader"));
    assert!(exists(&fx, &queue).await && exists(&fx, &dlq).await);
    t.delete_follower(&ch, e, "reader").await.unwrap();
    assert!(!exists(&fx, &queue).await, "{queue} still there");
    assert!(!exists(&fx, &dlq).await, "{dlq} still there");
}
