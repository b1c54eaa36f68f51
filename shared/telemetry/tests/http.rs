#![allow(clippy::unwrap_used, clippy::expect_used)]
//! The endpoints over real TCP on 127.0.0.1.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use imgfeat_core::ports::ReadyCheck;
use imgfeat_pipeline::{Event, Outcome, Worker};
use imgfeat_telemetry::{Readiness, Telemetry, serve};
use tokio::net::TcpListener;
use tokio::sync::oneshot;

/// A GET through reqwest; returns the status code, the headers (one `name: value` a
/// line) and the body.
async fn get(addr: SocketAddr, path: &str) -> (u16, String, String) {
    let res = reqwest::get(format!("http://{addr}{path}")).await.unwrap();
    let status = res.status().as_u16();
    let head: String = res
        .headers()
        .iter()
        .map(|(k, v)| format!("{k}: {}\n", v.to_str().unwrap_or("")))
        .collect();
    (status, head, res.text().await.unwrap())
}

struct Server {
    addr: SocketAddr,
    stop: Option<oneshot::Sender<()>>,
    task: tokio::task::JoinHandle<std::io::Result<()>>,
}

async fn start(telemetry: Telemetry, readiness: Readiness) -> Server {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (tx, rx) = oneshot::channel::<()>();
    let task = tokio::spawn(serve(listener, telemetry, readiness, async {
        let _ = rx.await;
    }));
    Server {
        addr,
        stop: Some(tx),
        task,
    }
}

#[tokio::test]
async fn metrics_healthz_and_readyz_answer() {
    let telemetry = Telemetry::new("ingest");
    let store_up = Arc::new(AtomicBool::new(true));
    let flag = store_up.clone();
    let readiness = Readiness::new()
        .check("model", ReadyCheck::from_status(|| Ok(())))
        .check(
            "store",
            ReadyCheck::new(move || {
                let up = flag.load(Ordering::SeqCst);
                Box::pin(async move {
                    if up {
                        Ok(())
                    } else {
                        Err("store unreachable".to_owned())
                    }
                })
            }),
        );
    let mut server = start(telemetry.clone(), readiness).await;

    let (status, _, body) = get(server.addr, "/healthz").await;
    assert_eq!((status, body.as_str()), (200, "ok"));

    let (status, _, body) = get(server.addr, "/readyz").await;
    assert_eq!(status, 200, "{body}");
    let json: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(
        json,
        serde_json::json!({"ready": true, "checks": {"model": "ok", "store": "ok"}})
    );

    store_up.store(false, Ordering::SeqCst);
    let (status, _, body) = get(server.addr, "/readyz").await;
    assert_eq!(status, 503, "{body}");
    let json: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(json["ready"], false);
    assert_eq!(json["checks"]["store"], "store unreachable");
    assert_eq!(json["checks"]["model"], "ok");

    telemetry.events().emit(&Event::Completed {
        worker: Worker::Extractor,
        outcome: Outcome::Ok,
        latency_seconds: Some(0.3),
    });
    let (status, head, body) = get(server.addr, "/metrics").await;
    assert_eq!(status, 200);
    assert!(
        head.to_ascii_lowercase()
            .contains("content-type: text/plain; version=0.0.4"),
        "{head}"
    );
    assert!(
        body.contains("imgfeat_images_total{outcome=\"ok\",reason=\"none\",stage=\"extract\"} 1"),
        "{body}"
    );
    assert!(body.contains("imgfeat_end_to_end_seconds_count{stage=\"extract\"} 1"));
    assert!(body.contains("imgfeat_build_info{service=\"ingest\""));

    let (status, _, _) = get(server.addr, "/nothing").await;
    assert_eq!(status, 404);

    server.stop.take().unwrap().send(()).unwrap();
    server.task.await.unwrap().unwrap();
}

#[tokio::test]
async fn a_readiness_without_checks_is_ready_and_a_hung_check_is_not() {
    let server = start(Telemetry::new("t"), Readiness::new()).await;
    let (status, _, body) = get(server.addr, "/readyz").await;
    assert_eq!(status, 200);
    assert_eq!(
        serde_json::from_str::<serde_json::Value>(&body).unwrap(),
        serde_json::json!({"ready": true, "checks": {}})
    );

    let hung = Readiness::new().check(
        "store",
        ReadyCheck::new(|| Box::pin(std::future::pending())),
    );
    let report = hung.report().await;
    assert!(!report.is_ready());
    let json = report.to_json();
    assert!(
        json["checks"]["store"]
            .as_str()
            .unwrap()
            .starts_with("no answer within"),
        "{json}"
    );
}
