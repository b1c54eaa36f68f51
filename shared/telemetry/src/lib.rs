//! Telemetry of every imgfeat service: Prometheus metrics counted from the pipeline's
//! events (one definition shared with the progress bar and the run summary), queue depths
//! polled from RabbitMQ, build and model info, and the `/metrics`, `/healthz` and
//! `/readyz` endpoints. Metric names and labels are listed in this crate's README.
//! The broker's part (queue depths) is the default feature `amqp`.
//!
//! ```no_run
//! # async fn demo(conn: imgfeat_amqp::AmqpConnection) -> std::io::Result<()> {
//! use imgfeat_telemetry::{Readiness, Telemetry, serve};
//! let telemetry = Telemetry::new("detector");
//! let events = imgfeat_pipeline::Events::new().with(telemetry.events());
//! let readiness = Readiness::new().check("broker", conn.ready_check());
//! let listener = tokio::net::TcpListener::bind("0.0.0.0:9090").await?;
//! serve(listener, telemetry, readiness, std::future::pending()).await
//! # }
//! ```

mod families;
mod http;
mod metrics;
#[cfg(feature = "amqp")]
mod queues;
mod readiness;

pub use families::METRIC_NAMES;
pub use http::{health_router, router, serve};
pub use metrics::Telemetry;
#[cfg(feature = "amqp")]
pub use queues::{fleet_queues, poll_queue_depths};
pub use readiness::{CheckStatus, Readiness, ReadinessReport};
