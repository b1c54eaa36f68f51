#![allow(clippy::unwrap_used, clippy::expect_used)]
//! A connection failure's error never shows the broker password, whatever failed.

mod common;

use imgfeat_amqp::{AmqpConfig, AmqpConnection};
use imgfeat_core::ports::QueueError;

const SECRET: &str = "wr0ng-s3cret";

async fn failure_text(url: &str) -> Vec<String> {
    let config = AmqpConfig {
        url: url.into(),
        ..common::test_config("secrets")
    };
    let Err(e) = AmqpConnection::connect(config).await else {
        panic!("connecting with {url:?} should fail");
    };
    let display = e.to_string();
    let debug = format!("{e:?}");
    let port = QueueError::from(e).to_string();
    vec![display, debug, port]
}

#[tokio::test]
async fn connection_failures_do_not_print_the_password() {
    for url in [
        // The broker refuses the login.
        format!("amqp://guest:{SECRET}@127.0.0.1:5672/%2f"),
        // Nobody listens.
        format!("amqp://guest:{SECRET}@127.0.0.1:1/%2f"),
        // A bad port.
        format!("amqp://guest:{SECRET}@127.0.0.1:notaport/%2f"),
        // lapin cannot parse it, and quotes it back whole.
        format!("amqp:guest:{SECRET}@127.0.0.1:5672/%2f"),
    ] {
        for text in failure_text(&url).await {
            assert!(!text.contains(SECRET), "{text}");
            assert!(text.contains("guest:***@"), "{text}");
        }
    }
}
