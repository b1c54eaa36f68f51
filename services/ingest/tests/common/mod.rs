#![allow(clippy::unwrap_used, clippy::expect_used, dead_code)]

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use imgfeat_amqp::lapin::BasicProperties;
use imgfeat_amqp::lapin::options::{BasicGetOptions, BasicPublishOptions, ConfirmSelectOptions};
use imgfeat_amqp::{AmqpConfig, AmqpConnection, WorkQueue};
use imgfeat_core::message::{DetectJob, decode};
use imgfeat_ingest::settings::Token;
use imgfeat_ingest::{Listeners, Settings, ShutdownTrigger, shutdown_pair};
use serde_json::Value;
use tokio::io::AsyncReadExt;

pub const WAIT: Duration = Duration::from_secs(30);

/// The API token of every test service; [`http`] sends it.
pub const TOKEN: &str = "test-token-0123456789";

pub fn unique_prefix(name: &str) -> String {
    imgfeat_amqp::unique_prefix(&format!("test-ingest-{name}"))
}

/// Settings isolated by queue prefix and a store in `dir`.
pub fn test_settings(name: &str, dir: &std::path::Path) -> Settings {
    let mut s = Settings {
        amqp: AmqpConfig {
            prefix: unique_prefix(name),
            reconnect_initial_ms: 100,
            reconnect_max_ms: 1_000,
            ..AmqpConfig::default()
        },
        ..Settings::default()
    };
    s.http.listen = "127.0.0.1:0".into();
    s.telemetry = imgfeat_ingest::settings::TelemetrySettings::at("127.0.0.1:0");
    s.http.token = Some(Token::new(TOKEN));
    s.store.path = dir.join("store.sqlite");
    s.backfill.chunk_size = 100;
    s.backfill.rate_per_sec = 0;
    s
}

/// Deletes the prefix's queues when dropped, even after a failed assertion.
pub struct QueueCleanup(pub AmqpConfig);

impl Drop for QueueCleanup {
    fn drop(&mut self) {
        imgfeat_amqp::delete_queues_blocking(self.0.clone());
    }
}

/// The service running in this process.
pub struct Service {
    pub addr: SocketAddr,
    pub metrics: SocketAddr,
    trigger: ShutdownTrigger,
    task: tokio::task::JoinHandle<()>,
    _cleanup: QueueCleanup,
}

impl Service {
    pub async fn start(settings: Settings) -> Service {
        let cleanup = QueueCleanup(settings.amqp.clone());
        let listeners = Listeners::bind(&settings.http, &settings.telemetry)
            .await
            .unwrap();
        let addr = listeners.api.local_addr().unwrap();
        let metrics = listeners.metrics.local_addr().unwrap();
        let (trigger, shutdown) = shutdown_pair();
        let task = tokio::spawn(async move {
            imgfeat_ingest::run(settings, listeners, shutdown)
                .await
                .unwrap();
        });
        Service {
            addr,
            metrics,
            trigger,
            task,
            _cleanup: cleanup,
        }
    }

    /// Waits until /readyz says the broker is connected.
    pub async fn ready(&self) {
        wait_until(|| async { http(self.addr, "GET", "/readyz", None).await.0 == 200 }).await;
    }

    pub async fn stop(self) {
        self.trigger.trigger();
        tokio::time::timeout(WAIT, self.task)
            .await
            .unwrap()
            .unwrap();
    }
}

/// Polls `cond` every 20 ms up to [`WAIT`]: for state that lives in another component
/// (a job's progress, a child process) and has no event to await.
pub async fn wait_until<F, Fut>(mut cond: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = Instant::now() + WAIT;
    while !cond().await {
        assert!(
            Instant::now() < deadline,
            "condition not met within {WAIT:?}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// A request with the test token, JSON in and out.
pub async fn http(addr: SocketAddr, method: &str, path: &str, body: Option<&str>) -> (u16, Value) {
    let auth = format!("Bearer {TOKEN}");
    let (status, _, json) = http_as(addr, Some(&auth), method, path, body).await;
    (status, json)
}

/// [`http`] with the given `Authorization` header (or none), also returning the
/// response headers (`name: value` lines, lowercase) for header checks.
pub async fn http_as(
    addr: SocketAddr,
    authorization: Option<&str>,
    method: &str,
    path: &str,
    body: Option<&str>,
) -> (u16, String, Value) {
    let client = reqwest::Client::builder().timeout(WAIT).build().unwrap();
    let verb = reqwest::Method::from_bytes(method.as_bytes()).unwrap();
    let mut req = client
        .request(verb, format!("http://{addr}{path}"))
        .header(reqwest::header::CONTENT_TYPE, "application/json")
        .body(body.unwrap_or("").to_owned());
    if let Some(a) = authorization {
        req = req.header(reqwest::header::AUTHORIZATION, a);
    }
    let res = req.send().await.unwrap();
    let status = res.status().as_u16();
    let head: String = res
        .headers()
        .iter()
        .map(|(k, v)| format!("{k}: {}\n", v.to_str().unwrap_or("")).to_ascii_lowercase())
        .collect();
    let retry_after = res
        .headers()
        .get("retry-after")
        .map(|v| v.to_str().unwrap_or("").to_owned());
    let text = res.text().await.unwrap();
    let json = serde_json::from_str(&text).unwrap_or(Value::String(text));
    // Every answer any test sees must be the one services/ingest/openapi.yaml documents.
    let answer = imgfeat_testkit::Answer {
        status,
        retry_after,
        body: json.clone(),
    };
    let spec = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("openapi.yaml");
    imgfeat_testkit::openapi::check_request(&spec, method, path, &answer);
    (status, head, json)
}

/// Reads a whole response (the server closes the connection after it).
pub async fn read_response(mut stream: tokio::net::TcpStream) -> (u16, String, Value) {
    let mut raw = Vec::new();
    tokio::time::timeout(WAIT, stream.read_to_end(&mut raw))
        .await
        .unwrap()
        .unwrap();
    let text = String::from_utf8(raw).unwrap();
    let (head, payload) = text.split_once("\r\n\r\n").unwrap();
    let status: u16 = head.split(' ').nth(1).unwrap().parse().unwrap();
    let head = head.to_ascii_lowercase();
    let json = if head.contains("transfer-encoding: chunked") {
        serde_json::from_str(&dechunk(payload)).unwrap_or(Value::Null)
    } else {
        serde_json::from_str(payload).unwrap_or(Value::String(payload.to_owned()))
    };
    (status, head, json)
}

fn dechunk(mut s: &str) -> String {
    let mut out = String::new();
    while let Some((size, rest)) = s.split_once("\r\n") {
        let n = usize::from_str_radix(size.trim(), 16).unwrap_or(0);
        if n == 0 {
            break;
        }
        out.push_str(&rest[..n]);
        s = &rest[n + 2..];
    }
    out
}

/// Takes every message out of a queue (auto-ack) and decodes it.
pub async fn drain(config: &AmqpConfig, q: WorkQueue) -> Vec<DetectJob> {
    take(config, q, usize::MAX).await
}

/// Takes up to `n` messages out of a queue (auto-ack), as a worker would, and decodes
/// them.
pub async fn take(config: &AmqpConfig, q: WorkQueue, n: usize) -> Vec<DetectJob> {
    let conn = AmqpConnection::connect(config.clone()).await.unwrap();
    let ch = conn.channel().await.unwrap();
    let name = conn.topology().queue(q);
    let mut out = Vec::new();
    while out.len() < n
        && let Some(m) = ch
            .basic_get(name.as_str().into(), BasicGetOptions { no_ack: true })
            .await
            .unwrap()
    {
        out.push(decode::<DetectJob>(&m.delivery.data).unwrap());
    }
    conn.close().await;
    out
}

/// Ready messages in a queue, as the broker counts them.
pub async fn depth(config: &AmqpConfig, q: WorkQueue) -> u64 {
    let conn = AmqpConnection::connect(config.clone()).await.unwrap();
    let name = conn.topology().queue(q);
    let depths = imgfeat_amqp::depth::queue_depths(&conn, std::slice::from_ref(&name))
        .await
        .unwrap();
    conn.close().await;
    depths[0].1.map_or(0, u64::from)
}

pub async fn publish_raw(config: &AmqpConfig, q: WorkQueue, bodies: &[&[u8]]) {
    let conn = AmqpConnection::connect(config.clone()).await.unwrap();
    let ch = conn.channel().await.unwrap();
    ch.confirm_select(ConfirmSelectOptions::default())
        .await
        .unwrap();
    for body in bodies {
        ch.basic_publish(
            "".into(),
            conn.topology().queue(q).as_str().into(),
            BasicPublishOptions::default(),
            body,
            BasicProperties::default().with_delivery_mode(2),
        )
        .await
        .unwrap()
        .await
        .unwrap();
    }
    conn.close().await;
}
