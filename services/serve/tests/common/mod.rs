//! A real `imgfeat-serve` on real sockets with the real models, and the real photos; the
//! generic parts are `imgfeat_testkit`'s.
#![allow(dead_code)]

use std::path::PathBuf;
use std::time::{Duration, Instant};

use imgfeat_serve::{Listeners, Settings};
pub use imgfeat_testkit::{Answer, answer, photos, wait_ready};

pub const TOKEN: &str = "serve-test-token-0123456789";

pub struct Server {
    pub api: String,
    pub probes: String,
    pub client: reqwest::Client,
    /// `None` for a server in another process.
    running: Option<imgfeat_testkit::Running>,
}

/// Settings with a token and every image's deadline generous; `tweak` changes the rest.
pub fn settings(tweak: impl FnOnce(&mut Settings)) -> Settings {
    let mut s = Settings {
        http: imgfeat_testkit::local_http(TOKEN),
        telemetry: imgfeat_testkit::local_telemetry(),
        ..Settings::default()
    };
    s.serve.deadline_ms = 120_000;
    tweak(&mut s);
    s.validate().unwrap();
    s
}

/// Starts the service and waits until its models are loaded.
pub async fn start(settings: Settings) -> Server {
    let listeners = Listeners::bind(&settings.http, &settings.telemetry)
        .await
        .unwrap();
    let running = imgfeat_testkit::Running::spawn(listeners, |l, shutdown| {
        imgfeat_serve::run(settings, l, shutdown)
    });
    let server = Server {
        api: running.api.clone(),
        probes: running.probes.clone(),
        client: reqwest::Client::new(),
        running: Some(running),
    };
    wait_ready(&server.client, &server.probes).await;
    server
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

    /// A request that declares `declared_len` body bytes and sends none, over a raw
    /// socket: the answer to an oversize declaration is read whatever the timing. (A
    /// client still writing a real oversize body when the server answers and closes may
    /// meet a reset before it reads the answer.)
    pub async fn post_declaring(&self, content_type: &str, declared_len: usize) -> Answer {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let host = self.api.trim_start_matches("http://");
        let mut socket = tokio::net::TcpStream::connect(host).await.unwrap();
        let head = format!(
            "POST /v1/infer HTTP/1.1\r\nhost: {host}\r\nauthorization: Bearer {TOKEN}\r\n\
             content-type: {content_type}\r\ncontent-length: {declared_len}\r\n\
             connection: close\r\n\r\n"
        );
        socket.write_all(head.as_bytes()).await.unwrap();
        let mut raw = Vec::new();
        let read = socket.read_to_end(&mut raw);
        tokio::time::timeout(Duration::from_secs(30), read)
            .await
            .expect("no answer within 30 s to a request declaring an oversize body")
            .unwrap();
        let raw = String::from_utf8_lossy(&raw);
        let (head, body) = raw.split_once("\r\n\r\n").unwrap_or((&raw, ""));
        let status = head
            .split_whitespace()
            .nth(1)
            .and_then(|s| s.parse().ok())
            .unwrap_or(0);
        Answer {
            status,
            retry_after: None,
            body: serde_json::from_str(body).unwrap_or(serde_json::Value::Null),
        }
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
        imgfeat_testkit::metrics(&self.client, &self.probes).await
    }

    pub async fn stop(self) {
        if let Some(running) = self.running {
            running.stop().await;
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

pub use imgfeat_testkit::sample as metric;

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

pub mod openapi {
    use super::Answer;

    /// Checks every `(path, answer)` of a POST against `services/serve/openapi.yaml`.
    pub fn check_all(seen: &[(&str, Answer)]) {
        let spec = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("openapi.yaml");
        imgfeat_testkit::openapi::check_all(&spec, seen);
    }
}
