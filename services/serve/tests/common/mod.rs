//! A real `imgfeat-serve` on real sockets with the real models, and the real photos.
#![allow(dead_code)]

use std::path::PathBuf;
use std::time::{Duration, Instant};

use imgfeat_core::shutdown::ShutdownTrigger;
use imgfeat_serve::{Listeners, Settings, shutdown_pair};
use serde_json::Value;

pub const TOKEN: &str = "serve-test-token-0123456789";

pub struct Server {
    pub api: String,
    pub probes: String,
    pub client: reqwest::Client,
    /// `None` for a server in another process.
    running: Option<(ShutdownTrigger, tokio::task::JoinHandle<anyhow::Result<()>>)>,
}

/// Settings with a token and every image's deadline generous; `tweak` changes the rest.
pub fn settings(tweak: impl FnOnce(&mut Settings)) -> Settings {
    let mut s = Settings::default();
    s.http.token = Some(imgfeat_http::Token::new(TOKEN));
    s.http.listen = "127.0.0.1:0".into();
    s.http.metrics_listen = "127.0.0.1:0".into();
    s.http.max_body_bytes = 16 << 20;
    s.serve.deadline_ms = 120_000;
    tweak(&mut s);
    s.validate().unwrap();
    s
}

/// Starts the service and waits until its models are loaded.
pub async fn start(settings: Settings) -> Server {
    let listeners = Listeners::bind(&settings.http).await.unwrap();
    let api = format!("http://{}", listeners.api.local_addr().unwrap());
    let probes = format!("http://{}", listeners.metrics.local_addr().unwrap());
    let (stop, shutdown) = shutdown_pair();
    let task = tokio::spawn(imgfeat_serve::run(settings, listeners, shutdown));
    let server = Server {
        api,
        probes,
        client: reqwest::Client::new(),
        running: Some((stop, task)),
    };
    wait_ready(&server.client, &server.probes).await;
    server
}

pub async fn wait_ready(client: &reqwest::Client, probes: &str) {
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        let res = client.get(format!("{probes}/readyz")).send().await;
        if res.is_ok_and(|r| r.status() == 200) {
            return;
        }
        assert!(Instant::now() < deadline, "{probes} never became ready");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

pub fn photos() -> Vec<PathBuf> {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../fixtures/photos");
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    files.sort();
    assert_eq!(files.len(), 13, "the 13 fixture photos");
    files
}

/// A real answer: status, `Retry-After`, JSON body.
#[derive(Debug, Clone)]
pub struct Answer {
    pub status: u16,
    pub retry_after: Option<String>,
    pub body: Value,
}

impl Server {
    /// A server started elsewhere (the binary).
    pub fn remote(api: String, probes: String, client: reqwest::Client) -> Self {
        Self {
            api,
            probes,
            client,
            running: None,
        }
    }

    pub async fn post_raw(&self, query: &str, content_type: &str, bytes: Vec<u8>) -> Answer {
        let res = self
            .client
            .post(format!("{}/v1/infer{query}", self.api))
            .bearer_auth(TOKEN)
            .header("content-type", content_type)
            .body(bytes)
            .send()
            .await
            .unwrap();
        answer(res).await
    }

    pub async fn post_photo(&self, query: &str, photo: &PathBuf) -> Answer {
        self.post_raw(
            query,
            "application/octet-stream",
            std::fs::read(photo).unwrap(),
        )
        .await
    }

    pub async fn post_many(&self, query: &str, photos: &[PathBuf]) -> Answer {
        post_many(&self.client, &self.api, query, photos).await
    }

    pub async fn metrics(&self) -> String {
        self.client
            .get(format!("{}/metrics", self.probes))
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap()
    }

    pub async fn stop(self) {
        if let Some((stop, task)) = self.running {
            stop.trigger();
            task.await.unwrap().unwrap();
        }
    }
}

pub async fn post_many(
    client: &reqwest::Client,
    api: &str,
    query: &str,
    photos: &[PathBuf],
) -> Answer {
    let mut form = reqwest::multipart::Form::new();
    for p in photos {
        let name = p.file_name().unwrap().to_string_lossy().to_string();
        let part = reqwest::multipart::Part::bytes(std::fs::read(p).unwrap()).file_name(name);
        form = form.part("image", part);
    }
    let res = client
        .post(format!("{api}/v1/infer{query}"))
        .bearer_auth(TOKEN)
        .multipart(form)
        .send()
        .await
        .unwrap();
    answer(res).await
}

pub async fn answer(res: reqwest::Response) -> Answer {
    let status = res.status().as_u16();
    let retry_after = res
        .headers()
        .get("retry-after")
        .map(|v| v.to_str().unwrap().to_string());
    let body = res.json().await.unwrap_or(Value::Null);
    Answer {
        status,
        retry_after,
        body,
    }
}

/// The value of the first sample whose line starts with `series` (name and labels).
pub fn metric(text: &str, series: &str) -> f64 {
    text.lines()
        .find(|l| l.starts_with(series))
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|v| v.parse().ok())
        .unwrap_or(0.0)
}

/// Polls `/metrics` until `series` reaches `at_least`.
pub async fn wait_metric(server: &Server, series: &str, at_least: f64) {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        if metric(&server.metrics().await, series) >= at_least {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "{series} never reached {at_least}"
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}
pub mod openapi;
