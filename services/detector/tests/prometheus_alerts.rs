//! A real Prometheus (Debian's package, the server beside the promtool that
//! scripts/check-deploy.sh unpacks into .local/prometheus-deb) scraping a running fleet
//! on loopback, with the repo's own scrape config and rules:
//!
//! - the scrape config is docker/prometheus.yml with its targets pointed at this
//!   fleet's ports (same job names, paths and params: the rules select by job), and the
//!   rules are docker/prometheus/rules.yml on a test's time scale ([`test_rules`]): the
//!   alert logic is the repo's, only the durations shrink;
//! - under load (posted IDs of the fixture photos, search queries by stored image and
//!   by posted image, photos sent to imgfeat-serve in bursts past its admission, a
//!   backfill waiting on its queue), every Grafana panel query of
//!   docker/grafana/dashboards/imgfeat.json returns a finite value;
//! - three faults make their alerts really fire, as /api/v1/alerts shows: poison
//!   messages dead-lettered (ImgfeatDeadLettersPresent), a detector killed with
//!   SIGKILL (ImgfeatTargetDown, then ImgfeatServiceDown once the other one is killed
//!   too), and IDs posted while no worker runs (ImgfeatBacklogGrowing, and
//!   ImgfeatQueueWithoutConsumers from the broker's per-queue series); none of them
//!   fires while the fleet is healthy, and every rule evaluates without error.
//!
//! Without a Prometheus binary the test prints SKIPPED and passes, unless
//! `IMGFEAT_TEST_PROMETHEUS` names one (scripts/test.sh sets it): then it must run.
//! The broker's rabbitmq_prometheus plugin (:15692) is enabled if it is not
//! (scripts/ensure-rabbitmq.sh enables it too). Own test binary: a fleet of its own.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::*;
use imgfeat_app::worker::WorkerSettings;
use imgfeat_http::Listeners;
use imgfeat_testkit::{Running, local_http, local_telemetry, wait_ready};
use serde_json::Value;

const SEARCH_TOKEN: &str = "prometheus-alerts-search-token-0123456789";
const SERVE_TOKEN: &str = "prometheus-alerts-serve-token-0123456789";
/// The fleet's queue prefix (common/mod.rs): queues are `t.detect`, `t.detect.dlq`...
const QUEUE_PREFIX: &str = "t";
/// Images on disk, copies of the 13 photos; the healthy phase posts 13 at a time.
const IMAGES: u64 = 13 * 12;
/// Grafana's `$__rate_interval` for the panel queries: a few 1 s scrapes, with room
/// for late ones on a loaded machine.
const RATE_INTERVAL: &str = "15s";
/// The rabbitmq_prometheus plugin's port.
const RABBITMQ_METRICS: &str = "127.0.0.1:15692";

/// Panel queries that cannot have data here, and why (none: every service runs).
const EXCLUDED: &[(&str, &str)] = &[];

// ------------------------------------------------------------------ the rules, faster

/// A Prometheus duration of one unit (`90s`, `2m`, `1h`, `6h`, `1d`) in seconds.
fn seconds(d: &str) -> u64 {
    let split = d.find(|c: char| !c.is_ascii_digit()).unwrap_or(d.len());
    let (n, unit) = d.split_at(split);
    let n: u64 = n
        .parse()
        .unwrap_or_else(|_| panic!("duration {d:?}: only one unit is handled here"));
    n * match unit {
        "s" => 1,
        "m" => 60,
        "h" => 3600,
        "d" => 86_400,
        _ => panic!("duration {d:?}: unit {unit:?} is not handled here"),
    }
}

/// `for:` and group `interval:` durations: a minute becomes a second, and at least
/// three seconds for `for:` (a few 1 s scrapes, so one late scrape is no outage).
fn shrink_for(d: &str) -> String {
    format!("{}s", (seconds(d) / 60).max(3))
}

fn shrink_interval(d: &str) -> String {
    format!("{}s", (seconds(d) / 60).max(1))
}

/// Range windows `[5m]`, `[15m]`, `[1h]`: a minute becomes 3 s, so `[5m]` holds 15
/// one-second scrapes (rate() and histogram_quantile() of a busy minute still have
/// data) and `[15m]` of deriv() 45 s of queue depth polled every 5 s.
fn shrink_ranges(line: &str) -> (String, usize) {
    let mut out = String::new();
    let mut rest = line;
    let mut n = 0;
    while let Some(i) = rest.find('[') {
        out.push_str(&rest[..=i]);
        rest = &rest[i + 1..];
        let Some(end) = rest.find(']') else { continue };
        let inner = &rest[..end];
        let is_duration = inner.split(':').all(|d| {
            d.len() > 1
                && d.starts_with(|c: char| c.is_ascii_digit())
                && d.chars().all(|c| c.is_ascii_alphanumeric())
        });
        if is_duration {
            let shrunk: Vec<String> = inner
                .split(':')
                .map(|d| format!("{}s", (seconds(d) / 20).max(10)))
                .collect();
            out.push_str(&shrunk.join(":"));
            rest = &rest[end..];
            n += 1;
        }
    }
    out.push_str(rest);
    (out, n)
}

/// docker/prometheus/rules.yml for this test, derived from the file as it is, so the
/// alert and recording LOGIC is the repo's and only the time scale differs:
/// - `for:` durations and group intervals: a minute becomes a second ([`shrink_for`]);
/// - range windows: a minute becomes 3 seconds ([`shrink_ranges`]);
/// - the RabbitMQ series' queue prefix `imgfeat\\.` becomes this fleet's `t\\.` (the
///   file says to change it where the prefix differs);
///
/// Thresholds (1000 messages, 5 %, ...) are untouched.
fn test_rules() -> String {
    let path = repo().join("docker/prometheus/rules.yml");
    let text = std::fs::read_to_string(&path).unwrap();
    let (mut fors, mut ranges) = (0, 0);
    let mut out = String::new();
    for line in text.lines() {
        let body = line.trim_start();
        let indent = &line[..line.len() - body.len()];
        if body.starts_with('#') {
            out.push_str(line);
        } else if let Some(d) = body.strip_prefix("for: ") {
            out.push_str(&format!("{indent}for: {}", shrink_for(d.trim())));
            fors += 1;
        } else if let Some(d) = body.strip_prefix("interval: ") {
            out.push_str(&format!("{indent}interval: {}", shrink_interval(d.trim())));
        } else {
            let (shrunk, n) = shrink_ranges(line);
            ranges += n;
            out.push_str(&shrunk);
        }
        out.push('\n');
    }
    let prefixed = out.matches(r"imgfeat\\.").count();
    let out = out.replace(r"imgfeat\\.", &format!(r"{QUEUE_PREFIX}\\."));
    assert!(
        fors >= 10 && ranges >= 10 && prefixed >= 2,
        "{}: the test's derivation found {fors} `for:`, {ranges} range windows and \
         {prefixed} `imgfeat\\\\.` queue prefixes; the file changed shape: update \
         test_rules()",
        path.display()
    );
    out
}

/// Rules (alerting and recording) in a rules file.
fn rule_count(rules: &str) -> usize {
    rules
        .lines()
        .map(str::trim_start)
        .filter(|l| l.starts_with("- alert:") || l.starts_with("- record:"))
        .count()
}

/// The fleet's metrics endpoints.
struct Targets {
    ingest: String,
    detectors: Vec<String>,
    extractor: String,
    search: String,
    serve: String,
    prometheus: String,
    vhost: String,
}

/// docker/prometheus.yml for this test: the same jobs, paths and params, targets on
/// this fleet's loopback ports instead of compose hostnames, 1 s scrape and evaluation
/// intervals, the per-queue RabbitMQ series of this fleet's vhost only (`vhost` param:
/// other tests' vhosts on the same broker are not this fleet's queues).
fn scrape_config(t: &Targets) -> String {
    let path = repo().join("docker/prometheus.yml");
    let text = std::fs::read_to_string(&path).unwrap();
    let quoted = |addrs: &[&String]| {
        let list: Vec<String> = addrs.iter().map(|a| format!("\"{a}\"")).collect();
        format!("[{}]", list.join(", "))
    };
    let targets = [
        (r#"["ingest:9464"]"#, quoted(&[&t.ingest])),
        (
            r#"["detector:9464"]"#,
            quoted(&t.detectors.iter().collect::<Vec<_>>()),
        ),
        (r#"["extractor:9464"]"#, quoted(&[&t.extractor])),
        (r#"["search:9464"]"#, quoted(&[&t.search])),
        (r#"["serve:9464"]"#, quoted(&[&t.serve])),
        (
            r#"["rabbitmq:15692"]"#,
            quoted(&[&RABBITMQ_METRICS.to_string()]),
        ),
        (r#"["localhost:9090"]"#, quoted(&[&t.prometheus])),
    ];
    let mut out = String::new();
    let mut vhost_params = 0;
    for line in text.lines() {
        let body = line.trim_start();
        let mut line = line
            .replace("scrape_interval: 10s", "scrape_interval: 1s")
            .replace("evaluation_interval: 10s", "evaluation_interval: 1s");
        for (from, to) in &targets {
            line = line.replace(from, to);
        }
        out.push_str(&line);
        out.push('\n');
        if body.starts_with("family: [") {
            let indent = &line[..line.len() - line.trim_start().len()];
            out.push_str(&format!("{indent}vhost: [\"{}\"]\n", t.vhost));
            vhost_params += 1;
        }
    }
    assert!(
        !out.contains(":9464") && !out.contains("rabbitmq:") && !out.contains("10s"),
        "{} has a target or interval this test does not know: update scrape_config()\n{out}",
        path.display()
    );
    assert_eq!(
        vhost_params, 1,
        "no rabbitmq-detailed `family` params:\n{out}"
    );
    out
}

// ------------------------------------------------------------------ Prometheus

/// The Prometheus server: `IMGFEAT_TEST_PROMETHEUS` (must exist when set), else the one
/// scripts/check-deploy.sh unpacks, else Debian's installed package.
fn prometheus_binary() -> Option<PathBuf> {
    if let Some(p) = std::env::var_os("IMGFEAT_TEST_PROMETHEUS") {
        let p = PathBuf::from(p);
        assert!(
            p.is_file(),
            "IMGFEAT_TEST_PROMETHEUS={} does not exist",
            p.display()
        );
        return Some(p);
    }
    [
        repo().join(".local/prometheus-deb/usr/bin/prometheus"),
        PathBuf::from("/usr/bin/prometheus"),
    ]
    .into_iter()
    .find(|p| p.is_file())
}

/// A Prometheus server on a free port with its config, rules and data in a temporary
/// directory; killed, and the directory deleted, when dropped.
struct Prometheus {
    // Fields drop in order: the server (it starts no children of its own) before its
    // directory.
    child: imgfeat_testkit::KilledOnDrop,
    url: String,
    http: reqwest::Client,
    dir: tempfile::TempDir,
}

impl Prometheus {
    /// The address it will listen on, before it starts: the scrape config names it.
    fn reserve() -> (String, tempfile::TempDir) {
        (
            format!("127.0.0.1:{}", free_port()),
            tempfile::tempdir().unwrap(),
        )
    }

    async fn start(
        bin: &Path,
        listen: String,
        dir: tempfile::TempDir,
        config: &str,
        rules: &str,
    ) -> Prometheus {
        // rule_files in docker/prometheus.yml is relative to the config: prometheus/rules.yml.
        std::fs::create_dir(dir.path().join("prometheus")).unwrap();
        std::fs::write(dir.path().join("prometheus/rules.yml"), rules).unwrap();
        std::fs::write(dir.path().join("prometheus.yml"), config).unwrap();
        let log = std::fs::File::create(dir.path().join("prometheus.log")).unwrap();
        let child = Command::new(bin)
            .arg(format!(
                "--config.file={}",
                dir.path().join("prometheus.yml").display()
            ))
            .arg(format!(
                "--storage.tsdb.path={}",
                dir.path().join("data").display()
            ))
            .arg(format!("--web.listen-address={listen}"))
            .arg("--log.level=warn")
            .current_dir(dir.path())
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .unwrap();
        let mut p = Prometheus {
            child: imgfeat_testkit::KilledOnDrop(child),
            url: format!("http://{listen}"),
            http: reqwest::Client::new(),
            dir,
        };
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let ready = p.http.get(format!("{}/-/ready", p.url)).send().await;
            if ready.is_ok_and(|r| r.status().is_success()) {
                return p;
            }
            if let Some(exit) = p.child.try_wait().unwrap() {
                panic!("prometheus exited ({exit}) at start:\n{}", p.log());
            }
            assert!(
                Instant::now() < deadline,
                "prometheus not ready in 60 s:\n{}",
                p.log()
            );
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }

    fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("prometheus.log")).unwrap_or_default()
    }

    /// `data` of an API answer; a failed request or an error answer fails the test.
    async fn api(&self, path_and_query: &str) -> Value {
        let res = self
            .http
            .get(format!("{}{path_and_query}", self.url))
            .send()
            .await
            .unwrap();
        let status = res.status();
        let body: Value = serde_json::from_str(&res.text().await.unwrap()).unwrap();
        assert!(
            status.is_success() && body["status"] == "success",
            "{path_and_query}: {status} {body}"
        );
        body["data"].clone()
    }

    /// An instant query's vector.
    async fn query(&self, expr: &str) -> Vec<Value> {
        let data = self
            .api(&format!("/api/v1/query?query={}", encode(expr)))
            .await;
        match data["result"].as_array() {
            Some(v) => v.clone(),
            None => vec![data["result"].clone()],
        }
    }

    /// The alerts `/api/v1/alerts` lists in `state` (firing, pending) named `name`
    /// whose labels include `labels`.
    async fn alerts(&self, name: &str, state: &str, labels: &[(&str, &str)]) -> Vec<Value> {
        let data = self.api("/api/v1/alerts").await;
        data["alerts"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|a| {
                a["state"] == state
                    && a["labels"]["alertname"] == name
                    && labels.iter().all(|(k, v)| a["labels"][*k] == *v)
            })
            .cloned()
            .collect()
    }

    async fn firing(&self, name: &str, labels: &[(&str, &str)]) -> bool {
        !self.alerts(name, "firing", labels).await.is_empty()
    }

    /// Every active target of the scrape config, as "job instance health".
    async fn targets(&self) -> Vec<String> {
        let data = self.api("/api/v1/targets?state=active").await;
        data["activeTargets"]
            .as_array()
            .unwrap()
            .iter()
            .map(|t| {
                format!(
                    "{} {} {} {}",
                    t["labels"]["job"].as_str().unwrap_or(""),
                    t["labels"]["instance"].as_str().unwrap_or(""),
                    t["health"].as_str().unwrap_or(""),
                    t["lastError"].as_str().unwrap_or("")
                )
            })
            .collect()
    }
}

/// Percent-encoding of a query parameter value.
fn encode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// A finite value among a query's samples.
fn has_finite_value(result: &[Value]) -> bool {
    result.iter().any(|s| {
        s["value"][1]
            .as_str()
            .and_then(|v| v.parse::<f64>().ok())
            .is_some_and(f64::is_finite)
    })
}

// ------------------------------------------------------------------ the dashboard

struct Panel {
    title: String,
    expr: String,
}

/// Every panel target of the dashboard (rows included), Grafana's variables replaced
/// as Grafana would with Service = All and Stage = detect.
fn panel_queries() -> (Vec<Panel>, Vec<(Panel, &'static str)>) {
    fn walk(v: &Value, out: &mut Vec<Panel>) {
        for p in v.as_array().into_iter().flatten() {
            for t in p["targets"].as_array().into_iter().flatten() {
                if let Some(expr) = t["expr"].as_str() {
                    out.push(Panel {
                        title: p["title"].as_str().unwrap_or("").to_string(),
                        expr: expr.to_string(),
                    });
                }
            }
            walk(&p["panels"], out);
        }
    }
    let path = repo().join("docker/grafana/dashboards/imgfeat.json");
    let dashboard: Value = serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    let mut all = Vec::new();
    walk(&dashboard["panels"], &mut all);
    let (mut checked, mut excluded) = (Vec::new(), Vec::new());
    for mut p in all {
        p.expr = p
            .expr
            .replace("$__rate_interval", RATE_INTERVAL)
            .replace("${job}", ".*")
            .replace("$job", ".*")
            .replace("${stage}", "detect")
            .replace("$stage", "detect");
        assert!(
            !p.expr.contains('$'),
            "panel {}: a variable this test does not replace: {}",
            p.title,
            p.expr
        );
        match EXCLUDED.iter().find(|(m, _)| p.expr.contains(m)) {
            Some((_, why)) => excluded.push((p, *why)),
            None => checked.push(p),
        }
    }
    assert!(checked.len() >= 30, "only {} panel queries", checked.len());
    (checked, excluded)
}

/// Panel queries not yet seen returning a finite value.
struct Panels {
    pending: Vec<Panel>,
    seen: usize,
}

impl Panels {
    async fn poll(&mut self, prom: &Prometheus) {
        let mut still = Vec::new();
        for p in std::mem::take(&mut self.pending) {
            if has_finite_value(&prom.query(&p.expr).await) {
                self.seen += 1;
            } else {
                still.push(p);
            }
        }
        self.pending = still;
    }

    /// Whether every pending query is one of `later` (met by a later phase).
    fn only_left(&self, later: &[&str]) -> bool {
        self.pending
            .iter()
            .all(|p| later.iter().any(|m| p.expr.contains(m)))
    }

    fn describe(&self) -> String {
        self.pending
            .iter()
            .map(|p| format!("  {}: {}", p.title, p.expr))
            .collect::<Vec<_>>()
            .join("\n")
    }
}

/// Panel queries only a fault or a backfill gives data: failures by reason, and a
/// running backfill's progress and waiting state.
const LATER: &[&str] = &["failed|retried|dead_lettered", "imgfeat_backfill_"];

// ------------------------------------------------------------------ the fleet

/// The rabbitmq_prometheus plugin answers on :15692, enabled here if it is not.
async fn rabbitmq_metrics() {
    let url = format!("http://{RABBITMQ_METRICS}/metrics");
    if reqwest::get(&url).await.is_ok() {
        return;
    }
    eprintln!("enabling the rabbitmq_prometheus plugin (scripts/ensure-rabbitmq.sh does too)");
    let out = Command::new("rabbitmq-plugins")
        .args(["enable", "rabbitmq_prometheus"])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "rabbitmq-plugins enable rabbitmq_prometheus: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let deadline = Instant::now() + Duration::from_secs(60);
    while reqwest::get(&url).await.is_err() {
        assert!(Instant::now() < deadline, "{url} does not answer");
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

/// Two search shards in this process over the fleet's store, each following its
/// code-stored events: shard 0 (scraped and queried, image queries on) and shard 1, its
/// peer, without models, so that shard 0's per-peer series (failovers, hedged requests)
/// exist as in any sharded deployment. Shard 0 first.
async fn start_search(fleet: &Fleet) -> (Running, Running) {
    let worker = WorkerSettings::load(Some(&fleet.config_path)).unwrap();
    let shard = |index: u32| {
        let mut s = imgfeat_search_service::Settings {
            http: local_http(SEARCH_TOKEN),
            telemetry: local_telemetry(),
            ..Default::default()
        };
        s.store = fleet.store.clone();
        s.pipeline = worker.pipeline.clone();
        s.amqp = worker.amqp.clone();
        s.search.follow = true;
        s.search.shard = imgfeat_search_service::shard::ShardSpec { index, count: 2 };
        s
    };
    let (mut s0, mut s1) = (shard(0), shard(1));
    s0.search.infer_max_queued = 4;
    s1.search.infer_max_queued = 0;
    let l0 = Listeners::bind(&s0.http, &s0.telemetry).await.unwrap();
    let l1 = Listeners::bind(&s1.http, &s1.telemetry).await.unwrap();
    let urls: Vec<String> = [&l0, &l1]
        .iter()
        .map(|l| format!("http://{}", l.api.local_addr().unwrap()))
        .collect();
    let mut running = Vec::new();
    for (mut s, l) in [(s0, l0), (s1, l1)] {
        s.search.shard_urls = urls.clone();
        s.validate().unwrap();
        running.push(Running::spawn(l, |l, shutdown| {
            imgfeat_search_service::run(s, l, shutdown)
        }));
    }
    let peer = running.pop().unwrap();
    (running.pop().unwrap(), peer)
}

/// Queries search as a user would: by a stored image and by a posted photo.
async fn query_search(client: &reqwest::Client, search: &Running, stored: u64, photo: &[u8]) {
    let res = client
        .get(format!("{}/v1/images/{stored}/similar?k=3", search.api))
        .bearer_auth(SEARCH_TOKEN)
        .send()
        .await
        .unwrap();
    // 404 before image `stored` has a code, 503 while the index loads.
    assert!(
        [200, 404, 503].contains(&res.status().as_u16()),
        "{}",
        res.text().await.unwrap()
    );
    let res = client
        .post(format!("{}/v1/similar?k=3", search.api))
        .bearer_auth(SEARCH_TOKEN)
        .header("content-type", "image/jpeg")
        .body(photo.to_vec())
        .send()
        .await
        .unwrap();
    let status = res.status().as_u16();
    // 429 and 503 (admission full, models loading) are answers too; 200 is the aim.
    assert!(
        [200, 429, 503].contains(&status),
        "{status}: {}",
        res.text().await.unwrap()
    );
}

/// imgfeat-serve in this process, asking the search shard for neighbours; a small
/// admission (2 images) so that a burst gets 429s, as a busy server's panel shows.
async fn start_serve(fleet: &Fleet, search: &Running) -> Running {
    let worker = WorkerSettings::load(Some(&fleet.config_path)).unwrap();
    let mut s = imgfeat_serve::Settings {
        http: local_http(SERVE_TOKEN),
        telemetry: local_telemetry(),
        ..Default::default()
    };
    s.pipeline = worker.pipeline.clone();
    s.serve.max_queued = 2;
    s.serve.search_url = Some(search.api.clone());
    s.serve.search_token = Some(imgfeat_http::Token::new(SEARCH_TOKEN));
    s.validate().unwrap();
    let listeners = Listeners::bind(&s.http, &s.telemetry).await.unwrap();
    Running::spawn(listeners, |l, shutdown| imgfeat_serve::run(s, l, shutdown))
}

/// A burst of photos to serve, past its admission (some 429), and one with a deadline
/// too short to meet (dropped before the model runs: 504).
async fn query_serve(client: &reqwest::Client, serve: &Running, photo: &[u8]) {
    let post = |query: &'static str| {
        client
            .post(format!("{}/v1/infer{query}", serve.api))
            .bearer_auth(SERVE_TOKEN)
            .header("content-type", "image/jpeg")
            .body(photo.to_vec())
            .send()
    };
    let burst = all_at_once(vec![
        post("?neighbours=3"),
        post("?neighbours=3"),
        post(""),
        post(""),
        post("?deadline_ms=1"),
    ])
    .await;
    for res in burst {
        let status = res.unwrap().status().as_u16();
        // 503 while the models load.
        assert!(
            [200, 429, 503, 504].contains(&status),
            "serve answered {status}"
        );
    }
}

/// Awaits every request at once (they must overlap to meet the admission limit).
async fn all_at_once<F, T>(futures: Vec<F>) -> Vec<T>
where
    F: std::future::Future<Output = T> + Send + 'static,
    T: Send + 'static,
{
    let handles: Vec<_> = futures.into_iter().map(tokio::spawn).collect();
    let mut out = Vec::new();
    for h in handles {
        out.push(h.await.unwrap());
    }
    out
}

fn addr(probes: &str) -> String {
    probes.trim_start_matches("http://").to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_real_prometheus_sees_every_panel_and_fires_the_alerts() {
    let Some(bin) = prometheus_binary() else {
        println!(
            "SKIPPED: no Prometheus server (IMGFEAT_TEST_PROMETHEUS unset, no \
             .local/prometheus-deb/usr/bin/prometheus: run scripts/check-deploy.sh, and no \
             /usr/bin/prometheus)"
        );
        return;
    };
    let _serial = serial().await;
    let started = Instant::now();
    let phase = |what: &str| eprintln!("[{:>5.1} s] {what}", started.elapsed().as_secs_f64());
    rabbitmq_metrics().await;
    let client = reqwest::Client::new();

    // The fleet: ingest and extractor in this process, two detector processes, two
    // search shards in this process (shard 0 scraped). Backfills pause at 50 queued IDs, so one keeps running
    // (waiting) while no worker consumes, as a stuck backfill queue would.
    let fleet = Fleet::start_with("prom", IMAGES, FleetStore::Sqlite, QUICK_RETRIES, |s| {
        s.backfill.chunk_size = 50;
        s.backfill.high_water = 50;
        s.backfill.low_water = 10;
    })
    .await;
    let detector_addrs: Vec<String> = (0..2)
        .map(|_| format!("127.0.0.1:{}", free_port()))
        .collect();
    let mut detectors: Vec<imgfeat_testkit::fleet::ServiceProcess> = detector_addrs
        .iter()
        .map(|a| fleet.spawn_detector_with(&[("IMGFEAT_TELEMETRY__LISTEN", a.as_str())]))
        .collect();
    let (search, search_peer) = start_search(&fleet).await;
    let serve = start_serve(&fleet, &search).await;
    for a in detector_addrs.iter().map(|a| format!("http://{a}")).chain([
        format!("http://{}", fleet.extractor_metrics),
        search.probes.clone(),
        search_peer.probes.clone(),
        serve.probes.clone(),
    ]) {
        wait_ready(&client, &a).await;
    }
    phase("fleet ready");

    let (listen, dir) = Prometheus::reserve();
    let targets = Targets {
        ingest: fleet.ingest_metrics.clone(),
        detectors: detector_addrs.clone(),
        extractor: fleet.extractor_metrics.clone(),
        search: addr(&search.probes),
        serve: addr(&serve.probes),
        prometheus: listen.clone(),
        vhost: fleet.vhost.clone(),
    };
    let rules = test_rules();
    let prom = Prometheus::start(&bin, listen, dir, &scrape_config(&targets), &rules).await;
    // Every rule of the repo's file loaded (Prometheus refuses to start on a bad one).
    let groups = prom.api("/api/v1/rules").await;
    let loaded: usize = groups["groups"]
        .as_array()
        .unwrap()
        .iter()
        .map(|g| g["rules"].as_array().unwrap().len())
        .sum();
    assert_eq!(loaded, rule_count(&rules), "{groups}");
    assert!(loaded >= 30, "{loaded} rules");
    // Every target is scraped: ingest, 2 detectors, extractor, search, serve, the
    // broker's two endpoints, Prometheus itself.
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let t = prom.targets().await;
        if t.len() == 9 && t.iter().all(|t| t.contains(" up ")) {
            break;
        }
        assert!(Instant::now() < deadline, "targets not all up: {t:#?}");
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    phase("prometheus scraping 9 targets");

    // ---- healthy load: images posted 13 at a time, search queried, until every panel
    // but the fault and backfill ones has shown a finite value.
    let (checked, excluded) = panel_queries();
    let mut panels = Panels {
        pending: checked,
        seen: 0,
    };
    let photo = std::fs::read(&photos()[0]).unwrap();
    let mut posted = 0u64;
    let deadline = Instant::now() + Duration::from_secs(240);
    while !panels.only_left(LATER) {
        if posted < IMAGES {
            fleet
                .post_ids(&(posted + 1..=posted + 13).collect::<Vec<_>>())
                .await;
            posted += 13;
        }
        query_search(&client, &search, 1, &photo).await;
        query_serve(&client, &serve, &photo).await;
        panels.poll(&prom).await;
        assert!(
            Instant::now() < deadline,
            "{posted} images posted; these panels never had data:\n{}\ntargets: {:#?}\nlogs:\n{}",
            panels.describe(),
            prom.targets().await,
            fleet.logs()
        );
        tokio::time::sleep(Duration::from_millis(1000)).await;
    }
    phase(&format!(
        "healthy: {} panel queries had data ({posted} images posted)",
        panels.seen
    ));
    // A healthy fleet fires none of the alerts below; the last three are not even
    // pending (their condition is false, not merely young).
    for (name, not_pending) in [
        ("ImgfeatTargetDown", false),
        ("ImgfeatServiceDown", false),
        ("ImgfeatDeadLettersPresent", true),
        ("ImgfeatBacklogGrowing", true),
        ("ImgfeatQueueWithoutConsumers", true),
    ] {
        let mut seen = prom.alerts(name, "firing", &[]).await;
        if not_pending {
            seen.extend(prom.alerts(name, "pending", &[]).await);
        }
        assert!(seen.is_empty(), "healthy, yet: {seen:#?}");
    }

    // ---- poison messages and a detector killed: the other detector dead-letters the
    // poison (ImgfeatDeadLettersPresent, and the errors panel), the dead one's target is down
    // (ImgfeatTargetDown) while its service is not (one detector is still up).
    // Killed first, so the survivor is the one that dead-letters the poison.
    detectors[0].kill().unwrap();
    detectors[0].wait().unwrap();
    for body in [
        &b"{not json"[..],
        br#"{"v":99,"image_id":1,"enqueued_at_ms":0}"#,
        b"\xff\xfe binary",
    ] {
        fleet.publish_raw("detect", body).await;
    }
    // Those are no images, so no image outcome counts them: an image that is no image
    // and one that does not exist do (failed, dead-lettered: the errors panel).
    std::fs::write(fleet.image_path(IMAGES + 1), b"this is not an image").unwrap();
    fleet.post_ids(&[IMAGES + 1, IMAGES + 2]).await;
    let killed = detector_addrs[0].as_str();
    let dlq = format!("{QUEUE_PREFIX}.detect.dlq");
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        panels.poll(&prom).await;
        let down = prom
            .firing(
                "ImgfeatTargetDown",
                &[("job", "detector"), ("instance", killed)],
            )
            .await;
        if down
            && panels.only_left(&["imgfeat_backfill_"])
            && fleet.queue_messages("detect.dlq") > 0
        {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "after the kill and the poison: TargetDown firing: {down}, dead letters: {}; \
             panels without data:\n{}\nalerts: {}\nlogs:\n{}",
            fleet.queue_messages("detect.dlq"),
            panels.describe(),
            prom.api("/api/v1/alerts").await,
            fleet.logs()
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    let service_down = prom
        .alerts("ImgfeatServiceDown", "firing", &[("job", "detector")])
        .await;
    assert!(
        service_down.is_empty(),
        "one detector is up, yet: {service_down:#?}"
    );
    phase("ImgfeatTargetDown fires for the killed detector");

    // ---- no worker left: IDs keep coming (ImgfeatBacklogGrowing) to a queue nobody
    // consumes (ImgfeatQueueWithoutConsumers, from the broker's per-queue series), no
    // detector is up (ImgfeatServiceDown), the dead letters stay
    // (ImgfeatDeadLettersPresent), and a backfill waits on its queue (the backfill panels).
    detectors[1].kill().unwrap();
    detectors[1].wait().unwrap();
    let job = fleet.post_backfill(10_000_000, 10_999_999).await;
    let detect = format!("{QUEUE_PREFIX}.detect");
    let mut next_id = 1_000_000u64;
    let deadline = Instant::now() + Duration::from_secs(180);
    let wanted: [(&str, &[(&str, &str)]); 4] = [
        ("ImgfeatDeadLettersPresent", &[("queue", dlq.as_str())]),
        ("ImgfeatServiceDown", &[("job", "detector")]),
        ("ImgfeatBacklogGrowing", &[("queue", detect.as_str())]),
        (
            "ImgfeatQueueWithoutConsumers",
            &[("queue", detect.as_str()), ("vhost", fleet.vhost.as_str())],
        ),
    ];
    let mut fired = Vec::new();
    loop {
        // 400 IDs/s: past the threshold of 1000 within seconds, and growing until the
        // alert has fired (then no more: the broker holds enough).
        if !fired.contains(&"ImgfeatBacklogGrowing") {
            fleet
                .post_ids(&(next_id..next_id + 200).collect::<Vec<_>>())
                .await;
            next_id += 200;
        }
        panels.poll(&prom).await;
        for (name, labels) in wanted {
            if !fired.contains(&name) && prom.firing(name, labels).await {
                phase(&format!("{name} fires"));
                fired.push(name);
            }
        }
        if fired.len() == wanted.len() && panels.pending.is_empty() {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "with no worker ({} IDs posted, backfill {job}): fired {fired:?} of {:?}; \
             panels without data:\n{}\nalerts: {}",
            next_id - 1_000_000,
            wanted.map(|w| w.0),
            panels.describe(),
            prom.api("/api/v1/alerts").await
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    phase(&format!(
        "every panel query had data ({}); {} excluded",
        panels.seen,
        excluded.len()
    ));
    for (why_of, why) in EXCLUDED {
        let titles: std::collections::BTreeSet<&str> = excluded
            .iter()
            .filter(|(_, w)| w == why)
            .map(|(p, _)| p.title.as_str())
            .collect();
        eprintln!("  excluded ({why_of}*): {titles:?}: {why}");
    }

    // Every rule evaluated against the real series without an error (no many-to-many
    // match, no bad regex): logic that only promtool's synthetic series had seen.
    let groups = prom.api("/api/v1/rules").await;
    for g in groups["groups"].as_array().unwrap() {
        for r in g["rules"].as_array().unwrap() {
            assert_ne!(r["health"], "err", "{r}");
        }
    }

    drop(prom);
    serve.stop().await;
    search.stop().await;
    search_peer.stop().await;
    drop(detectors);
    fleet.stop().await;
    phase("cleaned up");
}
