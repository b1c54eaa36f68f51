//! What the services' tests share, so that each test says what it checks and not how a
//! server is started: a service on free ports of 127.0.0.1 ([`Running`]), waiting for
//! it ([`wait_ready`], [`eventually`]), its answers ([`Answer`]) and metrics
//! ([`metric`]), the 13 fixture photos ([`photos`]) indexed into a real SQLite store by
//! the real pipeline ([`index_photos`]), and answers checked against an OpenAPI file
//! ([`openapi`]), the CQL node of the CQL tests ([`cql`]), and a fleet's worker
//! processes as the fleet tests and the load test start them ([`fleet`]). A
//! dev-dependency only (and the load test's).
#![allow(clippy::unwrap_used, clippy::expect_used)]

pub mod codes;
pub mod cql;
pub mod fleet;
pub mod openapi;

use std::future::Future;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use imgfeat_app::paths::SqlitePathRegistry;
use imgfeat_core::ports::PathRegistry;
use imgfeat_core::shutdown::{Shutdown, ShutdownTrigger, shutdown_pair};
use imgfeat_core::{BinaryCode, ImageId, ModelVersion};
use imgfeat_embedded::{IndexOptions, IndexRun};
use imgfeat_http::{HttpSettings, Listeners, TelemetrySettings, Token};
use imgfeat_pipeline::{Events, PipelineSettings, parts};
use imgfeat_store::SqliteStore;
use serde_json::Value;

/// `[http]` for a test: `token`, a free port on 127.0.0.1, room for photos.
pub fn local_http(token: &str) -> HttpSettings {
    HttpSettings {
        listen: "127.0.0.1:0".into(),
        token: Some(Token::new(token)),
        max_body_bytes: 16 << 20,
        ..HttpSettings::default()
    }
}

/// `[telemetry]` for a test: a free port on 127.0.0.1.
pub fn local_telemetry() -> TelemetrySettings {
    TelemetrySettings::at("127.0.0.1:0")
}

/// A child process killed (and reaped) when dropped, so a failing test or an aborted
/// run leaves nothing running. Derefs to the [`std::process::Child`].
pub struct KilledOnDrop(pub std::process::Child);

impl std::ops::Deref for KilledOnDrop {
    type Target = std::process::Child;
    fn deref(&self) -> &Self::Target {
        &self.0
    }
}

impl std::ops::DerefMut for KilledOnDrop {
    fn deref_mut(&mut self) -> &mut Self::Target {
        &mut self.0
    }
}

impl Drop for KilledOnDrop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// A service running in this process: its two base URLs, and how to stop it.
pub struct Running {
    pub api: String,
    pub probes: String,
    pub stop: ShutdownTrigger,
    pub task: tokio::task::JoinHandle<anyhow::Result<()>>,
}

impl Running {
    /// Spawns `run(listeners, shutdown)` (a service's `run`) on `listeners`.
    pub fn spawn<F, Fut>(listeners: Listeners, run: F) -> Self
    where
        F: FnOnce(Listeners, Shutdown) -> Fut,
        Fut: Future<Output = anyhow::Result<()>> + Send + 'static,
    {
        let api = format!("http://{}", listeners.api.local_addr().unwrap());
        let probes = format!("http://{}", listeners.metrics.local_addr().unwrap());
        let (stop, shutdown) = shutdown_pair();
        let task = tokio::spawn(run(listeners, shutdown));
        Self {
            api,
            probes,
            stop,
            task,
        }
    }

    /// Triggers the shutdown and waits for a clean exit.
    pub async fn stop(self) {
        self.stop.trigger();
        self.task.await.unwrap().unwrap();
    }
}

/// Waits (up to two minutes) until `check` holds; `what` says what never happened.
pub async fn eventually<F, Fut>(what: &str, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: Future<Output = bool>,
{
    let deadline = Instant::now() + Duration::from_secs(120);
    while !check().await {
        assert!(Instant::now() < deadline, "{what} never happened");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Waits until `{probes}/readyz` answers 200 (models and indexes load first).
pub async fn wait_ready(client: &reqwest::Client, probes: &str) {
    let url = format!("{probes}/readyz");
    eventually(&format!("{url} ready"), || async {
        let res = client.get(&url).send().await;
        res.is_ok_and(|r| r.status() == 200)
    })
    .await;
}

/// The value of the first sample line starting with `series` (name and labels).
pub fn metric(text: &str, series: &str) -> Option<f64> {
    text.lines()
        .find(|l| l.starts_with(series))
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|v| v.parse().ok())
}

/// [`metric`], 0 when there is no such sample yet (a counter not yet incremented).
pub fn sample(text: &str, series: &str) -> f64 {
    metric(text, series).unwrap_or(0.0)
}

/// A free port on 127.0.0.1: free when asked, for a process that binds it a moment later.
pub fn free_port() -> std::io::Result<u16> {
    Ok(std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port())
}

/// `{probes}/metrics`, as text.
pub async fn metrics(client: &reqwest::Client, probes: &str) -> String {
    client
        .get(format!("{probes}/metrics"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap()
}

/// A real answer: status, `Retry-After`, JSON body (`null` when not JSON).
#[derive(Debug, Clone)]
pub struct Answer {
    pub status: u16,
    pub retry_after: Option<String>,
    pub body: Value,
}

impl Answer {
    /// The `reason` of an error answer.
    pub fn reason(&self) -> &str {
        self.body["reason"].as_str().unwrap_or_default()
    }
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

/// The 13 fixture photos, sorted by name.
pub fn photos() -> Vec<PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fixtures/photos");
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    files.sort();
    assert_eq!(files.len(), 13, "the 13 fixture photos");
    files
}

/// The fixture photo called `name`.
pub fn photo(name: &str) -> PathBuf {
    photos()
        .into_iter()
        .find(|p| p.file_name().is_some_and(|f| f == name))
        .unwrap_or_else(|| panic!("no fixture photo {name}"))
}

/// Photos indexed by the real pipeline (`imgfeat index`'s code) into a real store.
pub struct Indexed {
    pub store: Arc<SqliteStore>,
    pub detector_version: ModelVersion,
    pub code_version: ModelVersion,
    /// Per photo, in the order given: its image ID and the code stored for it.
    pub images: Vec<(ImageId, BinaryCode)>,
}

/// Indexes `photos` with the default pipeline into the SQLite store at `path`, as
/// `imgfeat index` does (IDs from the path registry).
pub async fn index_photos(path: &Path, photos: &[PathBuf]) -> Indexed {
    use imgfeat_core::ports::ResultStore;

    let store = Arc::new(SqliteStore::open(path).unwrap());
    let pipeline = PipelineSettings::default();
    let registry = SqlitePathRegistry(store.clone());
    let detector = parts::load_detector(&pipeline).unwrap();
    let extractor = parts::load_extractor(&pipeline).unwrap();
    let run = IndexRun {
        settings: &pipeline,
        detector: &detector,
        extractor: &extractor,
        store: store.clone(),
        registry: &registry,
        events: Events::new(),
    };
    let summary = run
        .run_files("photos", photos, 0, IndexOptions { force: true })
        .await
        .unwrap();
    assert_eq!(summary.processed, photos.len() as u64, "{summary:?}");
    let code_version = run.code_version().unwrap();
    let keys: Vec<String> = photos
        .iter()
        .map(|p| p.canonicalize().unwrap().display().to_string())
        .collect();
    let mut images = Vec::new();
    for id in registry.register_paths(&keys).await.unwrap() {
        let id = id.unwrap();
        let code = store.code(id, &code_version).await.unwrap().unwrap();
        images.push((id, code.code));
    }
    Indexed {
        store,
        detector_version: detector.version.clone(),
        code_version,
        images,
    }
}

/// What `bin --version` prints; fails unless it exits 0 and names this workspace's
/// version.
pub fn version_of(bin: &str) -> String {
    let out = std::process::Command::new(bin)
        .arg("--version")
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout).to_string();
    assert!(out.status.success(), "{bin} --version: {text}");
    assert!(text.contains(env!("CARGO_PKG_VERSION")), "{bin}: {text}");
    text
}
