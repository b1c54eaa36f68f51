#![allow(clippy::unwrap_used, clippy::expect_used)]
//! Restarts the shared broker (`rabbitmqctl stop_app` / `start_app`), so it lives alone in
//! this test binary and is kept to one short test. The broker is restarted on every path
//! out of the test, panics included.

mod common;

use std::collections::HashSet;
use std::process::Command;
use std::time::Duration;

use common::{Fixture, jobs, next_within};
use imgfeat_amqp::{AmqpConsumer, AmqpPublisher, BrokerState, WorkQueue};
use imgfeat_core::message::DetectJob;
use imgfeat_core::ports::JobPublisher;

const WAIT: Duration = Duration::from_secs(60);

fn rabbitmqctl(arg: &str) {
    let status = Command::new("rabbitmqctl").arg(arg).status().unwrap();
    assert!(status.success(), "rabbitmqctl {arg} failed");
}

/// Starts the broker app again when dropped, whatever happened in between.
struct RestartGuard;

impl Drop for RestartGuard {
    fn drop(&mut self) {
        let _ = Command::new("rabbitmqctl").arg("start_app").status();
        let _ = Command::new("rabbitmqctl").args(["await_startup"]).status();
    }
}

#[tokio::test]
async fn a_broker_restart_mid_run_loses_nothing() {
    let fx = Fixture::new("restart").await;
    let publisher = AmqpPublisher::new(&fx.conn, WorkQueue::Detect);
    publisher.publish(&jobs(1..=100)).await.unwrap();

    let mut consumer = AmqpConsumer::<DetectJob>::new(&fx.conn, &[WorkQueue::Detect]);
    let mut done = HashSet::new();
    for _ in 0..30 {
        let d = next_within(&mut consumer, WAIT).await;
        d.handle.ack().await.unwrap();
        done.insert(d.job.image_id.0);
    }
    // One delivery is in hand when the broker goes: its ack must fail, and it must come back.
    let in_hand = next_within(&mut consumer, WAIT).await;
    let mut state = fx.conn.state();

    {
        let _guard = RestartGuard;
        rabbitmqctl("stop_app");
        tokio::time::timeout(WAIT, state.wait_for(|s| *s != BrokerState::Connected))
            .await
            .expect("the readiness watch notices the broker going")
            .unwrap();
        assert!(in_hand.handle.ack().await.is_err());
        // A publish started while the broker is down rides out the restart.
        let late = {
            let publisher = AmqpPublisher::new(&fx.conn, WorkQueue::Detect);
            tokio::spawn(async move { publisher.publish(&jobs(101..=120)).await })
        };
        rabbitmqctl("start_app");
        tokio::time::timeout(WAIT, late)
            .await
            .unwrap()
            .unwrap()
            .unwrap();
    }

    // The consumer resubscribes by itself; every job is eventually done. A job counts
    // only once its ack succeeded: one whose ack failed must come back.
    while done.len() < 120 {
        let d = next_within(&mut consumer, WAIT).await;
        if d.handle.ack().await.is_ok() {
            done.insert(d.job.image_id.0);
        }
    }
    assert_eq!(done, (1..=120).collect());
    assert!(fx.conn.is_connected());
    consumer.close().await;
}
