//! A fleet on the real broker for tests: its own vhost, images on disk, a store (a
//! SQLite file, or a fresh keyspace on the CQL node `IMGFEAT_TEST_CQL` names), ingest
//! and extractor in this process, detectors as child processes.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use imgfeat_amqp::lapin::BasicProperties;
use imgfeat_amqp::lapin::options::{BasicPublishOptions, ConfirmSelectOptions};
use imgfeat_amqp::{AmqpConfig, AmqpConnection, WorkQueue};
use imgfeat_app::settings::StoreSettings;
use imgfeat_app::stores::OpenStore;
use imgfeat_app::worker::WorkerSettings;
use imgfeat_core::ports::ResultStore;
use imgfeat_core::{BinaryCode, ImageId, ModelVersion};
use imgfeat_store::SqliteStore;
use imgfeat_testkit::fleet::{ServiceProcess, StoreAt, WorkerFile};

const PREFIX: &str = "t";
/// The API token of the fleet's ingest.
const INGEST_TOKEN: &str = "fleet-test-token-0123456789";

pub async fn serial() -> tokio::sync::MutexGuard<'static, ()> {
    // The tests share 2 cores and one broker; one fleet at a time.
    static LOCK: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());
    LOCK.lock().await
}

pub fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

// The kit's, for the tests that `use common::*`.
#[allow(unused_imports)]
pub use imgfeat_testkit::{photos, sample};

pub fn rabbitmqctl(args: &[&str]) -> String {
    let out = Command::new("rabbitmqctl").args(args).output().unwrap();
    assert!(
        out.status.success(),
        "rabbitmqctl {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).to_string()
}

#[derive(Debug, Clone, Default)]
pub struct Snapshot {
    pub images: usize,
    pub detections: usize,
    pub codes: usize,
    pub failures: usize,
    pub failure_kinds: Vec<(u64, String)>,
}

/// The broker's retry schedule of a test fleet.
#[derive(Debug, Clone, Copy)]
pub struct Retries {
    pub delays_ms: &'static [u64],
    pub max_attempts: u32,
}

/// Poison and missing images reach the dead-letter queue within a second.
pub const QUICK_RETRIES: Retries = Retries {
    delays_ms: &[200, 400],
    max_attempts: 3,
};

/// Where a fleet keeps its results.
#[derive(Debug, Clone)]
pub enum FleetStore {
    Sqlite,
    /// A keyspace of its own on this node, dropped when the fleet stops.
    Cql {
        node: String,
    },
}

pub struct Fleet {
    pub vhost: String,
    pub dir: tempfile::TempDir,
    pub store: StoreSettings,
    pub config_path: PathBuf,
    pub http: String,
    /// Where ingest and the in-process extractor serve `/metrics` (`127.0.0.1:<port>`).
    pub ingest_metrics: String,
    pub extractor_metrics: String,
    pub code_version: ModelVersion,
    amqp: AmqpConfig,
    ingest_stop: Option<imgfeat_ingest::ShutdownTrigger>,
    extractor: Option<tokio::task::JoinHandle<()>>,
    deleted: bool,
    detectors: usize,
}

impl Fleet {
    /// Images 1..=n on disk (copies of the 13 photos, image i is photo (i-1) % 13).
    pub async fn start(name: &str, n: u64) -> Fleet {
        Self::start_on(name, n, FleetStore::Sqlite, QUICK_RETRIES).await
    }

    /// [`Fleet::start`] with its results in `store`, and the broker's retry schedule
    /// (`amqp.retry_delays_ms`, `amqp.max_attempts`).
    pub async fn start_on(name: &str, n: u64, store: FleetStore, retries: Retries) -> Fleet {
        Self::start_with(name, n, store, retries, |_| {}).await
    }

    /// [`Fleet::start_on`], ingest's settings changed by `tune` before it starts.
    pub async fn start_with(
        name: &str,
        n: u64,
        store: FleetStore,
        retries: Retries,
        tune: impl FnOnce(&mut imgfeat_ingest::Settings),
    ) -> Fleet {
        let vhost = format!("imgfeat-test-{name}-{}", std::process::id());
        let _ = Command::new("rabbitmqctl")
            .args(["delete_vhost", &vhost])
            .output();
        rabbitmqctl(&["add_vhost", &vhost]);
        rabbitmqctl(&["set_permissions", "-p", &vhost, "guest", ".*", ".*", ".*"]);
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join("images")).unwrap();
        let photos = photos();
        for id in 1..=n {
            let src = &photos[((id - 1) % photos.len() as u64) as usize];
            std::fs::copy(src, dir.path().join(format!("images/{id}.img"))).unwrap();
        }
        let store_at = match &store {
            FleetStore::Sqlite => StoreAt::Sqlite(dir.path().join("store.sqlite3")),
            FleetStore::Cql { node } => StoreAt::Cql {
                node: node.clone(),
                keyspace: vhost.replace('-', "_"),
            },
        };
        let url = format!("amqp://guest:guest@127.0.0.1:5672/{vhost}");
        let config_path = dir.path().join("worker.toml");
        let mut file = WorkerFile::new(
            &url,
            PREFIX,
            store_at,
            &format!("{}/{{id}}.img", dir.path().join("images").display()),
        );
        file.top = "shutdown_grace_ms = 5000\n".into();
        // Small prefetch (2 x max_batch) bounds what a worker holds in flight, so the
        // mid-run tests know how far a run can go between "seen" and "stopped".
        file.amqp = format!(
            "prefetch = 16\nretry_delays_ms = {:?}\nmax_attempts = {}\n",
            retries.delays_ms, retries.max_attempts
        );
        file.tables = "[pipeline.decode]\nthreads = 1\n\
            [pipeline.models.detector_session]\nintra_threads = 1\n\
            [pipeline.models.extractor_session]\nintra_threads = 1\n\
            [log]\nlevel = \"warn\"\n"
            .into();
        file.write(&config_path).unwrap();
        let settings = WorkerSettings::load(Some(&config_path)).unwrap();
        let (_, code_version) = settings.pipeline.versions().unwrap();
        // Open (and migrate) the store once before several processes race to.
        drop(settings.store.open().await.unwrap());

        let mut ingest = imgfeat_ingest::Settings {
            amqp: settings.amqp.clone(),
            ..Default::default()
        };
        ingest.store = settings.store.clone();
        ingest.backfill.rate_per_sec = 0;
        ingest.backfill.chunk_size = 1000;
        ingest.limits.max_backfill_range = 1_000_000;
        ingest.http.listen = "127.0.0.1:0".into();
        ingest.telemetry = imgfeat_ingest::settings::TelemetrySettings::at("127.0.0.1:0");
        ingest.http.token = Some(imgfeat_ingest::settings::Token::new(INGEST_TOKEN));
        tune(&mut ingest);
        let listeners = imgfeat_ingest::Listeners::bind(&ingest.http, &ingest.telemetry)
            .await
            .unwrap();
        let http = format!("http://{}", listeners.api.local_addr().unwrap());
        let ingest_metrics = listeners.metrics.local_addr().unwrap().to_string();
        let (ingest_stop, ingest_shutdown) = imgfeat_ingest::shutdown_pair();
        tokio::spawn(async move {
            if let Err(e) = imgfeat_ingest::run(ingest, listeners, ingest_shutdown).await {
                eprintln!("ingest stopped: {e}");
            }
        });
        let mut extractor_settings = settings.clone();
        let extractor_metrics = format!("127.0.0.1:{}", free_port());
        extractor_settings.telemetry.listen = Some(extractor_metrics.clone());
        let extractor = tokio::spawn(async move {
            if let Err(e) = imgfeat_app::worker::run_extractor(
                extractor_settings,
                imgfeat_pipeline::Events::new(),
            )
            .await
            {
                eprintln!("extractor stopped: {e}");
            }
        });
        wait_ready(&http, Duration::from_secs(30)).await;
        Fleet {
            vhost,
            dir,
            store: settings.store.clone(),
            config_path,
            http,
            ingest_metrics,
            extractor_metrics,
            code_version,
            amqp: settings.amqp,
            ingest_stop: Some(ingest_stop),
            extractor: Some(extractor),
            deleted: false,
            detectors: 0,
        }
    }

    /// Waits for ingest's readiness, e.g. after a broker restart.
    pub async fn wait_ready(&self, timeout: Duration) {
        wait_ready(&self.http, timeout).await;
    }

    pub fn image_path(&self, id: u64) -> PathBuf {
        self.dir.path().join(format!("images/{id}.img"))
    }

    pub fn spawn_detector(&self) -> ServiceProcess {
        self.spawn_detector_with(&[])
    }

    /// A detector with extra `IMGFEAT_*` settings from the environment.
    pub fn spawn_detector_with(&self, env: &[(&str, &str)]) -> ServiceProcess {
        let log = self.dir.path().join(format!(
            "detector-{}.log",
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap()
                .as_nanos()
        ));
        ServiceProcess::spawn(
            "imgfeat-detector",
            Path::new(env!("CARGO_BIN_EXE_imgfeat-detector")),
            &self.config_path,
            env.iter().copied(),
            &log,
        )
        .unwrap()
    }

    async fn post(&self, path: &str, body: String) -> serde_json::Value {
        let client = reqwest::Client::new();
        let res = client
            .post(format!("{}{path}", self.http))
            .bearer_auth(INGEST_TOKEN)
            .header("content-type", "application/json")
            .body(body)
            .send()
            .await
            .unwrap();
        let status = res.status();
        let text = res.text().await.unwrap();
        assert_eq!(status.as_u16(), 202, "{path}: {text}");
        serde_json::from_str(&text).unwrap()
    }

    pub async fn post_ids(&self, ids: &[u64]) {
        let body = serde_json::json!({ "ids": ids }).to_string();
        let res = self.post("/v1/images", body).await;
        assert_eq!(res["published"], ids.len(), "{res}");
    }

    pub async fn post_backfill(&self, from: u64, to: u64) -> String {
        let body = serde_json::json!({ "from": from, "to": to }).to_string();
        let res = self.post("/v1/backfill", body).await;
        res["job"].as_str().unwrap().to_string()
    }

    pub async fn backfill_state(&self, job: &str) -> String {
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let res = reqwest::Client::new()
                .get(format!("{}/v1/backfill/{job}", self.http))
                .bearer_auth(INGEST_TOKEN)
                .send()
                .await
                .unwrap();
            let v: serde_json::Value = serde_json::from_str(&res.text().await.unwrap()).unwrap();
            let state = v["state"].as_str().unwrap_or("").to_string();
            if state != "running" || Instant::now() > deadline {
                return state;
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }

    /// The fleet's store, opened anew (its own connections, as another process's).
    pub async fn open_store(&self) -> OpenStore {
        self.store.open().await.unwrap()
    }

    pub async fn snapshot(&self) -> Snapshot {
        let store = self.open_store().await.export;
        let mut snap = Snapshot::default();
        let mut cursor = None;
        loop {
            let (page, next) = store.export_page(cursor.as_ref(), 500).await.unwrap();
            for img in page {
                snap.images += 1;
                snap.detections += img.detections.len();
                snap.codes += img
                    .codes
                    .iter()
                    .filter(|c| c.model_version == self.code_version)
                    .count();
                snap.failures += img.failures.len();
                for f in img.failures {
                    snap.failure_kinds
                        .push((img.image_id.0, f.reason.kind.as_str().to_string()));
                }
            }
            match next {
                Some(c) => cursor = Some(c),
                None => break,
            }
        }
        snap.failure_kinds.sort();
        snap
    }

    pub async fn failure_kinds(&self) -> Vec<(u64, String)> {
        self.snapshot().await.failure_kinds
    }

    pub async fn code(&self, id: ImageId) -> BinaryCode {
        self.open_store()
            .await
            .results
            .code(id, &self.code_version)
            .await
            .unwrap()
            .unwrap()
            .code
    }

    /// Codes of photos 1..=13 from the embedded pipeline (`imgfeat index`'s library),
    /// into a store of its own: the same files as fleet images 1..=13.
    /// Every one of the `n` images has one detection row and one code row, nothing
    /// failed and nothing was dead-lettered; the snapshot that shows it.
    pub async fn assert_coded_once_each(&self, n: usize) -> Snapshot {
        let done = self.snapshot().await;
        assert_eq!(done.images, n, "{done:?}");
        assert_eq!(done.detections, n, "one detection row per image: {done:?}");
        assert_eq!(done.codes, n, "one code row per image: {done:?}");
        assert_eq!(done.failures, 0, "{done:?}");
        assert_eq!(self.queue_messages("detect.dlq"), 0);
        assert_eq!(self.queue_messages("extract.dlq"), 0);
        done
    }

    /// Images 1..=13 carry the embedded pipeline's codes, bit for bit.
    pub async fn assert_embedded_codes(&self) {
        let embedded = self.embedded_codes().await;
        for (i, code) in embedded.iter().enumerate() {
            let id = ImageId(i as u64 + 1);
            assert_eq!(&self.code(id).await, code, "image {id}");
        }
    }

    pub async fn embedded_codes(&self) -> Vec<BinaryCode> {
        let dir = self.dir.path().join("embedded");
        std::fs::create_dir_all(&dir).unwrap();
        for (i, photo) in photos().iter().enumerate() {
            std::fs::copy(photo, dir.join(format!("{}.jpg", i + 1))).unwrap();
        }
        let settings = WorkerSettings::load(Some(&self.config_path)).unwrap();
        let store = std::sync::Arc::new(SqliteStore::open(&dir.join("store.sqlite3")).unwrap());
        let detector = imgfeat_pipeline::parts::load_detector(&settings.pipeline).unwrap();
        let extractor = imgfeat_pipeline::parts::load_extractor(&settings.pipeline).unwrap();
        let registry = imgfeat_app::paths::SqlitePathRegistry(store.clone());
        let run = imgfeat_embedded::IndexRun {
            settings: &settings.pipeline,
            detector: &detector,
            extractor: &extractor,
            store: store.clone(),
            registry: &registry,
            events: imgfeat_pipeline::Events::new(),
        };
        let summary = run
            .run(&dir, imgfeat_embedded::IndexOptions::default())
            .await
            .unwrap();
        assert_eq!(summary.processed, 13, "{summary:?}");
        let mut codes = Vec::new();
        for id in 1..=13 {
            let record = store.code(ImageId(id), &self.code_version).await.unwrap();
            codes.push(record.unwrap().code);
        }
        codes
    }

    pub async fn wait_until(&self, timeout: Duration, done: impl Fn(&Snapshot) -> bool) {
        let deadline = Instant::now() + timeout;
        loop {
            let snap = self.snapshot().await;
            if done(&snap) {
                return;
            }
            if Instant::now() > deadline {
                panic!(
                    "timed out after {timeout:?}; store: {snap:?}; logs:\n{}",
                    self.logs()
                );
            }
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
    }

    pub fn logs(&self) -> String {
        let mut out = String::new();
        if let Ok(entries) = std::fs::read_dir(self.dir.path()) {
            for e in entries.flatten() {
                if e.path().extension().is_some_and(|x| x == "log") {
                    out.push_str(&format!(
                        "== {}\n{}\n",
                        e.path().display(),
                        imgfeat_testkit::fleet::tail(&e.path(), 20)
                    ));
                }
            }
        }
        out
    }

    /// Messages (ready and unacked) in `<prefix>.<suffix>`.
    pub fn queue_messages(&self, suffix: &str) -> u64 {
        let name = format!("{PREFIX}.{suffix}");
        let out = rabbitmqctl(&["list_queues", "-q", "-p", &self.vhost, "name", "messages"]);
        out.lines()
            .filter_map(|l| {
                let mut parts = l.split_whitespace();
                Some((
                    parts.next()?.to_string(),
                    parts.next()?.parse::<u64>().ok()?,
                ))
            })
            .find(|(n, _)| *n == name)
            .map(|(_, m)| m)
            .unwrap_or(0)
    }

    pub async fn wait_until_queue(
        &self,
        suffix: &str,
        timeout: Duration,
        done: impl Fn(u64) -> bool,
    ) {
        let deadline = Instant::now() + timeout;
        loop {
            let n = self.queue_messages(suffix);
            if done(n) {
                return;
            }
            assert!(Instant::now() < deadline, "queue {suffix} stuck at {n}");
            tokio::time::sleep(Duration::from_millis(300)).await;
        }
    }

    pub async fn publish_raw(&self, suffix: &str, body: &[u8]) {
        let conn = AmqpConnection::connect(self.amqp.clone()).await.unwrap();
        let channel = conn.channel().await.unwrap();
        channel
            .confirm_select(ConfirmSelectOptions::default())
            .await
            .unwrap();
        let confirm = channel
            .basic_publish(
                "".into(),
                format!("{PREFIX}.{suffix}").as_str().into(),
                BasicPublishOptions::default(),
                body,
                BasicProperties::default().with_delivery_mode(2),
            )
            .await
            .unwrap();
        confirm.await.unwrap();
        conn.close().await;
    }

    /// Dead letters of a work queue: (body, "kind: reason").
    pub async fn dead_letters(&self, queue: &str) -> Vec<(String, String)> {
        let conn = AmqpConnection::connect(self.amqp.clone()).await.unwrap();
        let q = WorkQueue::parse(queue).unwrap();
        let (_, list) = imgfeat_amqp::dlq::list(&conn, q, 100).await.unwrap();
        conn.close().await;
        list.into_iter()
            .map(|d| {
                (
                    String::from_utf8_lossy(&d.body).to_string(),
                    format!(
                        "{}: {}",
                        d.kind.unwrap_or_default(),
                        d.reason.unwrap_or_default()
                    ),
                )
            })
            .collect()
    }

    pub async fn stop(mut self) {
        if let Some(t) = self.extractor.take() {
            t.abort();
            let _ = t.await;
        }
        if let Some(s) = self.ingest_stop.take() {
            s.trigger();
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
        let _ = Command::new("rabbitmqctl")
            .args(["delete_vhost", &self.vhost])
            .output();
        self.deleted = true;
        if self.store.kind == imgfeat_app::settings::StoreKind::Cql {
            imgfeat_testkit::cql::drop_keyspace(&self.store.cql.nodes[0], &self.store.cql.keyspace)
                .await;
        }
    }
}

impl Drop for Fleet {
    fn drop(&mut self) {
        if let Some(t) = self.extractor.take() {
            t.abort();
        }
        if !self.deleted {
            let _ = Command::new("rabbitmqctl")
                .args(["delete_vhost", &self.vhost])
                .output();
        }
    }
}

/// Ingest answers 503 until its broker connection is up, as it should.
async fn wait_ready(http: &str, timeout: Duration) {
    let deadline = Instant::now() + timeout;
    loop {
        let ready = reqwest::get(format!("{http}/readyz")).await;
        if ready.is_ok_and(|r| r.status().is_success()) {
            return;
        }
        assert!(Instant::now() < deadline, "ingest never became ready");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Stops the broker app (`rabbitmqctl stop_app`); starts it again, and waits for it,
/// when dropped, however the test ends.
pub struct BrokerStopped;

impl BrokerStopped {
    pub fn stop() -> Self {
        rabbitmqctl(&["stop_app"]);
        BrokerStopped
    }
}

impl Drop for BrokerStopped {
    fn drop(&mut self) {
        let _ = Command::new("rabbitmqctl").arg("start_app").output();
        let _ = Command::new("rabbitmqctl")
            .args(["await_startup", "--timeout", "60"])
            .output();
    }
}

pub fn free_port() -> u16 {
    imgfeat_testkit::free_port().unwrap()
}

pub async fn get(url: &str) -> (u16, String) {
    match reqwest::get(url).await {
        Ok(r) => (r.status().as_u16(), r.text().await.unwrap_or_default()),
        Err(_) => (0, String::new()),
    }
}

pub async fn wait_status(url: &str, want: u16, timeout: Duration) -> String {
    let deadline = Instant::now() + timeout;
    loop {
        let (status, body) = get(url).await;
        if status == want {
            return body;
        }
        assert!(Instant::now() < deadline, "{url} stayed {status}: {body}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// A TCP proxy to `target` on a port of its own, whose connections can all be cut and
/// new ones refused for a while: a store that goes away mid-run, whatever the server.
pub struct CuttableProxy {
    pub addr: std::net::SocketAddr,
    up: tokio::sync::watch::Sender<bool>,
    task: tokio::task::JoinHandle<()>,
}

impl CuttableProxy {
    pub async fn start(target: &str) -> CuttableProxy {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let (up, mut up_rx) = tokio::sync::watch::channel(true);
        let target = target.to_string();
        let task = tokio::spawn(async move {
            let mut listener = Some(listener);
            loop {
                if !*up_rx.borrow_and_update() {
                    // Down: nothing listens, so connecting is refused.
                    listener = None;
                    if up_rx.changed().await.is_err() {
                        return;
                    }
                    continue;
                }
                let l = match &listener {
                    Some(l) => l,
                    None => {
                        listener = Some(tokio::net::TcpListener::bind(addr).await.unwrap());
                        continue;
                    }
                };
                tokio::select! {
                    accepted = l.accept() => {
                        let Ok((mut client, _)) = accepted else { continue };
                        let target = target.clone();
                        let mut down = up_rx.clone();
                        tokio::spawn(async move {
                            let Ok(mut server) = tokio::net::TcpStream::connect(&target).await else {
                                return;
                            };
                            tokio::select! {
                                _ = tokio::io::copy_bidirectional(&mut client, &mut server) => {}
                                _ = down.wait_for(|up| !*up) => {}
                            }
                        });
                    }
                    changed = up_rx.changed() => {
                        if changed.is_err() {
                            return;
                        }
                    }
                }
            }
        });
        CuttableProxy { addr, up, task }
    }

    /// Cuts every connection and refuses new ones for `how_long`; returns once the
    /// proxy accepts connections again.
    pub async fn outage(&self, how_long: Duration) {
        self.up.send_replace(false);
        tokio::time::sleep(how_long).await;
        self.up.send_replace(true);
        let deadline = Instant::now() + Duration::from_secs(10);
        while tokio::net::TcpStream::connect(self.addr).await.is_err() {
            assert!(Instant::now() < deadline, "the proxy did not come back");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}

impl Drop for CuttableProxy {
    fn drop(&mut self) {
        self.task.abort();
    }
}
