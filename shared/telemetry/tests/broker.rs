#![allow(clippy::unwrap_used, clippy::expect_used)]
//! Queue depths and the broker readiness check against the real broker at 127.0.0.1:5672.

use std::time::Duration;

use imgfeat_amqp::lapin::BasicProperties;
use imgfeat_amqp::lapin::options::BasicPublishOptions;
use imgfeat_amqp::{AmqpConfig, AmqpConnection, WorkQueue, depth};
use imgfeat_telemetry::{Telemetry, fleet_queues, poll_queue_depths};

fn config(name: &str) -> AmqpConfig {
    AmqpConfig {
        prefix: imgfeat_amqp::unique_prefix(&format!("test-telemetry-{name}")),
        retry_delays_ms: vec![100],
        ..AmqpConfig::default()
    }
}

/// Deletes the test's queues on drop, even after a failed assertion.
struct Cleanup(AmqpConnection);

impl Drop for Cleanup {
    fn drop(&mut self) {
        imgfeat_amqp::delete_queues_blocking(self.0.config().clone());
    }
}

/// Bounds a wait so that a broken broker path fails the test instead of hanging it.
async fn within<T>(f: impl std::future::Future<Output = T>) -> T {
    tokio::time::timeout(Duration::from_secs(30), f)
        .await
        .expect("no answer from the broker path within 30 s")
}

async fn publish(conn: &AmqpConnection, queue: &str, n: usize) {
    let ch = conn.channel().await.unwrap();
    ch.confirm_select(Default::default()).await.unwrap();
    for i in 0..n {
        ch.basic_publish(
            "".into(),
            queue.into(),
            BasicPublishOptions::default(),
            format!("{i}").as_bytes(),
            BasicProperties::default(),
        )
        .await
        .unwrap()
        .await
        .unwrap();
    }
}

#[tokio::test]
async fn depths_reach_the_gauges_and_missing_queues_are_none() {
    let conn = AmqpConnection::connect(config("depth"))
        .await
        .expect("broker at 127.0.0.1:5672 (scripts/ensure-rabbitmq.sh)");
    let _cleanup = Cleanup(conn.clone());
    let t = conn.topology().clone();
    publish(&conn, &t.queue(WorkQueue::Detect), 3).await;
    publish(&conn, &t.dlq(WorkQueue::Extract), 2).await;

    // The poller puts every work queue and DLQ into the gauges.
    let telemetry = Telemetry::new("test");
    let queues = fleet_queues(&t);
    assert_eq!(queues.len(), 8);
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    let poller = tokio::spawn(poll_queue_depths(
        conn.clone(),
        queues,
        telemetry.clone(),
        Duration::from_millis(50),
        async {
            let _ = rx.await;
        },
    ));
    let gauge = |q: String, n: u32| format!("imgfeat_queue_messages{{queue=\"{q}\"}} {n}");
    let expected = [
        gauge(t.queue(WorkQueue::Detect), 3),
        gauge(t.dlq(WorkQueue::Extract), 2),
        gauge(t.queue(WorkQueue::Extract), 0),
        gauge(t.dlq(WorkQueue::Detect), 0),
        gauge(t.queue(WorkQueue::DetectBackfill), 0),
        gauge(t.queue(WorkQueue::Uploads), 0),
    ];
    within(async {
        while !expected.iter().all(|e| telemetry.render().contains(e)) {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
    .await;
    tx.send(()).unwrap();
    poller.await.unwrap();

    // The readiness check follows the connection's state.
    let check = conn.ready_check();
    assert_eq!(check.run().await, Ok(()));

    // A missing queue is None, and the queues after it are still answered.
    let names = vec![
        t.queue(WorkQueue::Detect),
        format!("{}.no-such-queue", t.prefix()),
        t.dlq(WorkQueue::Extract),
        t.queue(WorkQueue::Extract),
    ];
    let depths = within(depth::queue_depths(&conn, &names)).await.unwrap();
    assert_eq!(
        depths,
        vec![
            (names[0].clone(), Some(3)),
            (names[1].clone(), None),
            (names[2].clone(), Some(2)),
            (names[3].clone(), Some(0)),
        ]
    );
    // Passive: asking did not create it.
    let again = within(depth::queue_depths(&conn, &names[1..2]))
        .await
        .unwrap();
    assert_eq!(again, vec![(names[1].clone(), None)]);

    conn.close().await;
    assert_eq!(check.run().await, Err("broker closed".to_owned()));
}

/// lapin reports a channel-level refusal (here the 404 of a passive declare) on the
/// connection's event stream, and `AmqpConnection::watch_errors` takes every such event
/// for a broken connection: the state turns `Disconnected` and stays so while the
/// connection is fine, so `/readyz` would report the broker away.
#[tokio::test]
async fn a_missing_queue_does_not_make_the_broker_look_disconnected() {
    let conn = AmqpConnection::connect(config("missing"))
        .await
        .expect("broker at 127.0.0.1:5672 (scripts/ensure-rabbitmq.sh)");
    let _cleanup = Cleanup(conn.clone());
    let missing = vec![format!("{}.no-such-queue", conn.topology().prefix())];
    let depths = within(depth::queue_depths(&conn, &missing)).await.unwrap();
    assert_eq!(depths, vec![(missing[0].clone(), None)]);
    // A round trip after the refusal: its reply comes after the channel-close frame.
    let detect = vec![conn.topology().queue(WorkQueue::Detect)];
    within(depth::queue_depths(&conn, &detect)).await.unwrap();
    tokio::task::yield_now().await;
    assert!(conn.is_connected());
    assert_eq!(conn.ready_check().run().await, Ok(()));
}
