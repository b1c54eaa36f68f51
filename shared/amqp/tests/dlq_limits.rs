#![allow(clippy::unwrap_used, clippy::expect_used)]
//! Dead letters survive listing, and every quorum queue carries an explicit delivery
//! limit (RabbitMQ 4 defaults an absent one to 20; 3.x to none).

mod common;

use std::time::Duration;

use common::{Fixture, jobs, next_within, rabbitmqctl, test_config};
use imgfeat_amqp::lapin::options::QueueDeclareOptions;
use imgfeat_amqp::lapin::types::{AMQPValue, FieldTable, LongString};
use imgfeat_amqp::{
    AmqpConfig, AmqpConnection, AmqpConsumer, AmqpPublisher, UNLIMITED_DELIVERIES, WorkQueue, dlq,
};
use imgfeat_core::message::DetectJob;
use imgfeat_core::ports::JobPublisher;
use imgfeat_core::{FailureKind, FailureReason};

const WAIT: Duration = Duration::from_secs(20);

/// A `delivery-limit` policy on the fixture's queues, removed on drop. On the local 3.x
/// broker it stands in for RabbitMQ 4's default limit of 20.
struct Policy(String);

impl Policy {
    fn delivery_limit(prefix: &str, limit: u32) -> Policy {
        let name = format!("{prefix}-limit");
        let pattern = format!("^{}\\.", prefix.replace('.', "\\."));
        let status = rabbitmqctl()
            .args(["-q", "set_policy", "--apply-to", "queues", &name, &pattern])
            .arg(format!("{{\"delivery-limit\": {limit}}}"))
            .status()
            .unwrap();
        assert!(status.success(), "rabbitmqctl set_policy");
        Policy(name)
    }
}

impl Drop for Policy {
    fn drop(&mut self) {
        let _ = rabbitmqctl().args(["-q", "clear_policy", &self.0]).status();
    }
}

async fn park(fx: &Fixture, ids: std::ops::RangeInclusive<u64>) {
    let n = ids.clone().count();
    AmqpPublisher::new(&fx.conn, WorkQueue::Detect)
        .publish(&jobs(ids))
        .await
        .unwrap();
    let mut consumer = AmqpConsumer::<DetectJob>::new(&fx.conn, &[WorkQueue::Detect]);
    for _ in 0..n {
        let d = next_within(&mut consumer, WAIT).await;
        let reason = FailureReason::new(FailureKind::Corrupt, format!("bad {}", d.job.image_id));
        d.handle.dead_letter(&reason).await.unwrap();
    }
    consumer.close().await;
}

#[tokio::test]
async fn fifty_listings_under_a_delivery_limit_of_20_lose_nothing_and_keep_the_order() {
    let fx = Fixture::new("dlq-listings").await;
    let _policy = Policy::delivery_limit(fx.conn.topology().prefix(), 20);
    // Policies reach a quorum queue asynchronously.
    tokio::time::sleep(Duration::from_secs(1)).await;
    park(&fx, 1..=5).await;

    let expected: Vec<String> = (1..=5).map(|i| format!("bad {i}")).collect();
    for round in 0..50 {
        let limit = if round % 2 == 0 { 2 } else { 10 };
        let (total, letters) = dlq::list(&fx.conn, WorkQueue::Detect, limit).await.unwrap();
        assert_eq!(total, 5, "listing {round}");
        let reasons: Vec<String> = letters.iter().map(|l| l.reason.clone().unwrap()).collect();
        assert_eq!(reasons, expected[..limit.min(5)], "listing {round}");
    }

    assert_eq!(
        dlq::requeue(&fx.conn, WorkQueue::Detect, None)
            .await
            .unwrap(),
        5
    );
    let mut consumer = AmqpConsumer::<DetectJob>::new(&fx.conn, &[WorkQueue::Detect]);
    let mut ids = Vec::new();
    for _ in 0..5 {
        let d = next_within(&mut consumer, WAIT).await;
        ids.push(d.job.image_id.0);
        d.handle.ack().await.unwrap();
    }
    ids.sort();
    assert_eq!(ids, vec![1, 2, 3, 4, 5]);
    consumer.close().await;
}

fn quorum_args(dead_letter_to: Option<&str>, limit: Option<i32>) -> FieldTable {
    let mut a = FieldTable::default();
    let s = |v: &str| AMQPValue::LongString(LongString::from(v));
    a.insert("x-queue-type".into(), s("quorum"));
    if let Some(target) = dead_letter_to {
        a.insert("x-dead-letter-exchange".into(), s(""));
        a.insert("x-dead-letter-routing-key".into(), s(target));
        a.insert("x-dead-letter-strategy".into(), s("at-least-once"));
        a.insert("x-overflow".into(), s("reject-publish"));
    }
    if let Some(l) = limit {
        a.insert("x-delivery-limit".into(), AMQPValue::LongInt(l));
    }
    a
}

/// Whether `name` exists with exactly these arguments: RabbitMQ refuses a redeclaration
/// whose `x-delivery-limit` differs, absent included.
async fn declared_with(conn: &AmqpConnection, name: &str, args: FieldTable) -> bool {
    let ch = conn.channel().await.unwrap();
    ch.queue_declare(name.into(), QueueDeclareOptions::durable(), args)
        .await
        .is_ok()
}

#[tokio::test]
async fn dead_letter_and_work_queues_declare_their_delivery_limits() {
    let fx = Fixture::with(AmqpConfig {
        delivery_limit: 7,
        ..test_config("limits")
    })
    .await;
    let t = fx.conn.topology();
    let (dlq, work) = (t.dlq(WorkQueue::Extract), t.queue(WorkQueue::Extract));
    let unlimited = Some(UNLIMITED_DELIVERIES);
    assert!(declared_with(&fx.conn, &dlq, quorum_args(None, unlimited)).await);
    assert!(!declared_with(&fx.conn, &dlq, quorum_args(None, None)).await);
    assert!(declared_with(&fx.conn, &work, quorum_args(Some(&dlq), Some(7))).await);
}

#[tokio::test]
async fn a_delivery_limit_of_0_is_declared_as_unlimited() {
    let fx = Fixture::with(AmqpConfig {
        delivery_limit: 0,
        ..test_config("limit0")
    })
    .await;
    let t = fx.conn.topology();
    let (dlq, work) = (t.dlq(WorkQueue::Detect), t.queue(WorkQueue::Detect));
    let unlimited = Some(UNLIMITED_DELIVERIES);
    assert!(declared_with(&fx.conn, &work, quorum_args(Some(&dlq), unlimited)).await);
    assert!(!declared_with(&fx.conn, &work, quorum_args(Some(&dlq), None)).await);
}

#[tokio::test]
async fn queues_declared_without_a_limit_by_an_older_release_are_kept() {
    let config = AmqpConfig {
        delivery_limit: 0,
        ..test_config("legacy")
    };
    // What the previous release declared: no x-delivery-limit on the DLQ, nor on a work
    // queue configured with delivery_limit = 0.
    let names = imgfeat_amqp::Topology::new(&config);
    let (dlq, work) = (names.dlq(WorkQueue::Detect), names.queue(WorkQueue::Detect));
    {
        let raw = imgfeat_amqp::lapin::Connection::connect(
            &config.url,
            imgfeat_amqp::lapin::ConnectionProperties::default(),
        )
        .await
        .unwrap();
        let ch = raw.create_channel().await.unwrap();
        for (name, args) in [
            (&dlq, quorum_args(None, None)),
            (&work, quorum_args(Some(&dlq), None)),
        ] {
            ch.queue_declare(name.as_str().into(), QueueDeclareOptions::durable(), args)
                .await
                .unwrap();
        }
        raw.close(200, "legacy declared".into()).await.unwrap();
    }
    let fx = Fixture::with(config).await;
    assert!(declared_with(&fx.conn, &work, quorum_args(Some(&dlq), None)).await);
    // ...and the topology still works end to end.
    AmqpPublisher::new(&fx.conn, WorkQueue::Detect)
        .publish(&jobs([3]))
        .await
        .unwrap();
    let mut consumer = AmqpConsumer::<DetectJob>::new(&fx.conn, &[WorkQueue::Detect]);
    let d = next_within(&mut consumer, WAIT).await;
    d.handle.ack().await.unwrap();
    consumer.close().await;
}

#[tokio::test]
async fn a_limit_that_conflicts_with_a_declared_one_is_still_refused() {
    let config = test_config("conflict");
    let names = imgfeat_amqp::Topology::new(&config);
    let (dlq, work) = (
        names.dlq(WorkQueue::Uploads),
        names.queue(WorkQueue::Uploads),
    );
    let fx = Fixture::with(AmqpConfig {
        delivery_limit: 9,
        ..config.clone()
    })
    .await;
    assert!(declared_with(&fx.conn, &work, quorum_args(Some(&dlq), Some(9))).await);
    // Another fleet member configured with another limit must fail loudly at start.
    let other = AmqpConnection::connect(AmqpConfig {
        delivery_limit: 10,
        ..config
    })
    .await;
    assert!(other.is_err());
}
