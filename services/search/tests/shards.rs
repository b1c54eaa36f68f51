//! Two `imgfeat-search` shards over one real SQLite store, on real sockets: each loads
//! only its half, and a query to either is answered for the whole version, exactly as a
//! linear scan over every code answers it.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;

use imgfeat_core::ports::ResultStore;
use imgfeat_core::{BinaryCode, CodeRecord, ImageId, ModelVersion};
use imgfeat_search::{HammingIndex, LinearScan};
use imgfeat_search_service::Settings;
use imgfeat_search_service::shard::ShardSpec;
use imgfeat_store::SqliteStore;

mod common;

use common::{Rng, TOKEN, get, listeners, metric, metrics, pairs, settings, start, wait_ready};

/// 2 000 random codes and 30 planted groups of 6 copies (0-10 bits flipped), IDs
/// scattered over the whole u64 range.
fn catalogue(version: &ModelVersion) -> (Vec<CodeRecord>, Vec<u64>) {
    let mut rng = Rng(7);
    let mut records = Vec::new();
    let mut seeds = Vec::new();
    let record = |id: u64, code: u64| CodeRecord {
        image_id: ImageId(id),
        model_version: version.clone(),
        code: BinaryCode::from_bytes(64, code.to_be_bytes().to_vec()).unwrap(),
    };
    for _ in 0..2_000 {
        records.push(record(rng.next(), rng.next()));
    }
    for _ in 0..30 {
        let (seed_id, seed) = (rng.next(), rng.next());
        seeds.push(seed_id);
        records.push(record(seed_id, seed));
        for _ in 0..5 {
            let mut code = seed;
            for _ in 0..rng.next() % 11 {
                code ^= 1 << (rng.next() % 64);
            }
            records.push(record(rng.next(), code));
        }
    }
    (records, seeds)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_shards_answer_for_the_whole_version_like_a_scan() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("codes.sqlite3");
    let (_, version) = Settings::default().pipeline.versions().unwrap();
    let (records, seeds) = catalogue(&version);
    let store = Arc::new(SqliteStore::open(&path).unwrap());
    store.put_codes(&records).await.unwrap();
    let mut oracle = LinearScan::new(64).unwrap();
    for r in &records {
        oracle.insert(r.image_id.0, r.code.as_bytes()).unwrap();
    }

    let (la, lb) = (listeners().await, listeners().await);
    let (url_a, url_b) = (
        format!("http://{}", la.api.local_addr().unwrap()),
        format!("http://{}", lb.api.local_addr().unwrap()),
    );
    let urls = vec![url_a, url_b];
    // Followers of no broker: these shards serve the store as loaded.
    let mut amqp = common::amqp("search-shards");
    amqp.url = "amqp://guest:guest@127.0.0.1:1/%2f".into();
    let mut sa = settings(&path, ShardSpec { index: 0, count: 2 }, urls.clone(), &amqp);
    let mut sb = settings(&path, ShardSpec { index: 1, count: 2 }, urls, &amqp);
    sa.search.follow = false;
    sb.search.follow = false;
    let a = start(sa, la);
    let b = start(sb, lb);
    let client = reqwest::Client::new();
    wait_ready(&client, &a).await;
    wait_ready(&client, &b).await;

    // Each shard holds a part, together everything.
    let mut held = Vec::new();
    for s in [&a, &b] {
        let text = metrics(&client, s).await;
        held.push(metric(&text, "imgfeat_search_index_codes").unwrap());
    }
    assert_eq!(held.iter().sum::<f64>(), records.len() as f64, "{held:?}");
    assert!(
        held.iter().all(|&n| n > 0.0 && n < records.len() as f64),
        "{held:?}"
    );

    for (i, seed) in seeds.iter().enumerate() {
        let code = records
            .iter()
            .find(|r| r.image_id.0 == *seed)
            .unwrap()
            .code
            .as_bytes()
            .to_vec();
        let via = if i % 2 == 0 { &a } else { &b };
        let mut want: Vec<(u64, u32)> = oracle
            .knn(&code, 11)
            .unwrap()
            .into_iter()
            .filter(|h| h.id != *seed)
            .map(|h| (h.id, h.distance))
            .collect();
        want.truncate(10);
        let (status, got) = get(
            &client,
            format!("{}/v1/images/{seed}/similar?k=10", via.api),
        )
        .await;
        assert_eq!(status, 200, "{got}");
        assert_eq!(pairs(&got), want, "k=10 around {seed}");
        assert!(got["missing_shards"].as_array().unwrap().is_empty());

        let want: Vec<(u64, u32)> = oracle
            .within(&code, 10)
            .unwrap()
            .into_iter()
            .filter(|h| h.id != *seed)
            .map(|h| (h.id, h.distance))
            .collect();
        let (_, got) = get(
            &client,
            format!("{}/v1/images/{seed}/similar?radius=10&k=1000", via.api),
        )
        .await;
        assert_eq!(pairs(&got), want, "radius 10 around {seed}");
        assert!(want.len() >= 5, "the planted copies are found: {want:?}");
    }

    // Bad requests are refused with a reason, never answered wrongly.
    for (url, status) in [
        (format!("{}/v1/images/1/similar", a.api), 404),
        (format!("{}/v1/images/{}/similar?k=0", a.api, seeds[0]), 400),
        (
            format!("{}/v1/images/{}/similar?radius=65", a.api, seeds[0]),
            400,
        ),
        (
            format!("{}/v1/images/{}/similar?colour=red", a.api, seeds[0]),
            400,
        ),
        (format!("{}/v1/images/x/similar", a.api), 400),
    ] {
        let (got, body) = get(&client, url.clone()).await;
        assert_eq!(got, status, "{url}: {body}");
    }
    // Without the token: refused before any work, the shard query too.
    let res = client
        .get(format!("{}/v1/images/{}/similar", a.api, seeds[0]))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 401);
    let res = client
        .post(format!("{}/v1/shard/query", b.api))
        .json(&serde_json::json!({"code": "00", "k": 3, "radius": null, "exclude": null}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 401);
    let res = client
        .post(format!("{}/v1/shard/query", a.api))
        .bearer_auth(TOKEN)
        .json(&serde_json::json!({"code": "zz", "k": 3, "radius": null, "exclude": null}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 422);

    // One shard gone: the other still answers, and says what it lacks.
    b.stop.trigger();
    b.task.await.unwrap().unwrap();
    let (status, got) = get(
        &client,
        format!("{}/v1/images/{}/similar?k=10", a.api, seeds[0]),
    )
    .await;
    assert_eq!(status, 200, "{got}");
    assert_eq!(got["missing_shards"].as_array().unwrap().len(), 1, "{got}");
    a.stop.trigger();
    a.task.await.unwrap().unwrap();
}

/// An `imgfeat-search` process, configured from the environment only.
struct Process {
    child: imgfeat_testkit::KilledOnDrop,
    api: String,
    probes: String,
}

/// Starts shard `index` of 2 on `port`, the peers as `IMGFEAT_SEARCH__SHARD_URLS`
/// (commas between shards, `|` between a shard's replicas), hedging after `hedge_ms`.
fn spawn_shard(
    store: &std::path::Path,
    index: u32,
    port: u16,
    shard_urls: &str,
    hedge_ms: u64,
) -> Process {
    spawn_shard_with(store, index, port, shard_urls, hedge_ms, &[])
}

/// [`spawn_shard`] with more `IMGFEAT_*` settings, which win over the defaults above.
fn spawn_shard_with(
    store: &std::path::Path,
    index: u32,
    port: u16,
    shard_urls: &str,
    hedge_ms: u64,
    extra: &[(&str, &str)],
) -> Process {
    use std::io::BufRead;
    let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_imgfeat-search"));
    for (k, _) in std::env::vars() {
        if k.starts_with("IMGFEAT_") {
            cmd.env_remove(k);
        }
    }
    let mut child = cmd
        .env("IMGFEAT_HTTP__LISTEN", format!("127.0.0.1:{port}"))
        .env("IMGFEAT_HTTP__TOKEN", TOKEN)
        .env("IMGFEAT_TELEMETRY__LISTEN", "127.0.0.1:0")
        .env("IMGFEAT_STORE__PATH", store)
        .env("IMGFEAT_SEARCH__SHARD__INDEX", index.to_string())
        .env("IMGFEAT_SEARCH__SHARD__COUNT", "2")
        .env("IMGFEAT_SEARCH__SHARD_URLS", shard_urls)
        .env("IMGFEAT_SEARCH__FOLLOW", "false")
        .env("IMGFEAT_SEARCH__INFER_MAX_QUEUED", "0")
        .env("IMGFEAT_SEARCH__PEER_TIMEOUT_MS", "3000")
        .env("IMGFEAT_SEARCH__HEDGE_MS", hedge_ms.to_string())
        .env("RUST_LOG", "warn")
        .envs(extra.iter().copied())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut lines = std::io::BufReader::new(child.stdout.take().unwrap()).lines();
    let (mut api, mut probes) = (None, None);
    while api.is_none() || probes.is_none() {
        let line = lines
            .next()
            .expect("the process ended before listening")
            .unwrap();
        if let Some(addr) = line.strip_prefix("listening on ") {
            api = Some(format!("http://{}", addr.trim()));
        } else if let Some(addr) = line.strip_prefix("metrics on ") {
            probes = Some(format!("http://{}", addr.trim()));
        }
    }
    // Keep reading, so that nothing the process prints blocks it.
    std::thread::spawn(move || lines.for_each(drop));
    Process {
        child: imgfeat_testkit::KilledOnDrop(child),
        api: api.unwrap(),
        probes: probes.unwrap(),
    }
}

fn signal(p: &Process, sig: &str) {
    let ok = std::process::Command::new("kill")
        .args([sig, &p.child.id().to_string()])
        .status()
        .unwrap()
        .success();
    assert!(ok, "kill {sig}");
}

/// One query of the load: (status, neighbours, missing shards, seconds).
async fn ask(client: &reqwest::Client, url: &str) -> (u16, Vec<(u64, u32)>, usize, f64) {
    let started = std::time::Instant::now();
    let res = client.get(url).bearer_auth(TOKEN).send().await.unwrap();
    let status = res.status().as_u16();
    let body: serde_json::Value = res.json().await.unwrap_or_default();
    let took = started.elapsed().as_secs_f64();
    if status != 200 {
        return (status, Vec::new(), 0, took);
    }
    let missing = body["missing_shards"]
        .as_array()
        .map_or(usize::MAX, Vec::len);
    (status, pairs(&body), missing, took)
}

/// The [`catalogue`] of the default code version in a SQLite store under `dir`: the
/// store's path, the records and the seeds.
async fn stored_catalogue(
    dir: &std::path::Path,
) -> (std::path::PathBuf, Vec<CodeRecord>, Vec<u64>) {
    let path = dir.join("codes.sqlite3");
    let (_, version) = Settings::default().pipeline.versions().unwrap();
    let (records, seeds) = catalogue(&version);
    let store = Arc::new(SqliteStore::open(&path).unwrap());
    store.put_codes(&records).await.unwrap();
    (path, records, seeds)
}

/// Three processes: shard 0 (A) and shard 1 twice (B1, B2), over one SQLite store.
/// Under the load of 4 concurrent clients (on A and B2), B1 is first frozen (SIGSTOP:
/// answers come from B2 after the hedge delay, well inside the peer timeout), then
/// resumed and killed (SIGKILL): every answer is 200, complete (the scan's
/// neighbours) and misses no shard.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_replica_frozen_or_killed_under_load_costs_no_answer() {
    let dir = tempfile::tempdir().unwrap();
    let (path, records, seeds) = stored_catalogue(dir.path()).await;
    let mut oracle = LinearScan::new(64).unwrap();
    for r in &records {
        oracle.insert(r.image_id.0, r.code.as_bytes()).unwrap();
    }
    let wants: Vec<(u64, Vec<(u64, u32)>)> = seeds
        .iter()
        .map(|seed| {
            let code = &records.iter().find(|r| r.image_id.0 == *seed).unwrap().code;
            let mut want: Vec<(u64, u32)> = oracle
                .knn(code.as_bytes(), 11)
                .unwrap()
                .into_iter()
                .filter(|h| h.id != *seed)
                .map(|h| (h.id, h.distance))
                .collect();
            want.truncate(10);
            (*seed, want)
        })
        .collect();

    let port = || imgfeat_testkit::free_port().unwrap();
    let (pa, pb1, pb2) = (port(), port(), port());
    let urls = format!("http://127.0.0.1:{pa},http://127.0.0.1:{pb1}|http://127.0.0.1:{pb2}");
    let hedge_ms = 50;
    let a = spawn_shard(&path, 0, pa, &urls, hedge_ms);
    let b1 = spawn_shard(&path, 1, pb1, &urls, hedge_ms);
    let b2 = spawn_shard(&path, 1, pb2, &urls, hedge_ms);
    let client = reqwest::Client::new();
    for p in [&a, &b1, &b2] {
        imgfeat_testkit::wait_ready(&client, &p.probes).await;
    }
    // A's counters of shard 1's replicas exist before any failover or hedge, at 0 (a
    // dashboard panel or rule over them has data from the start).
    let failovers =
        |r: &str| format!(r#"imgfeat_search_failovers_total{{replica="{r}",shard="1"}}"#);
    let hedged = r#"imgfeat_search_hedged_requests_total{shard="1"}"#;
    let text = imgfeat_testkit::metrics(&client, &a.probes).await;
    for series in [failovers("0"), failovers("1"), hedged.to_string()] {
        assert_eq!(metric(&text, &series), Some(0.0), "{series}:\n{text}");
    }
    // The answers' shape is the documented one.
    let (status, got) = get(
        &client,
        format!("{}/v1/images/{}/similar?k=10", a.api, seeds[0]),
    )
    .await;
    assert_eq!(status, 200, "{got}");
    assert_eq!(pairs(&got), wants[0].1);

    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let mut clients = tokio::task::JoinSet::new();
    for c in 0..4usize {
        let entry = if c % 2 == 0 {
            a.api.clone()
        } else {
            b2.api.clone()
        };
        let (client, stop, wants) = (client.clone(), stop.clone(), wants.clone());
        clients.spawn(async move {
            let mut seen = Vec::new();
            let mut i = c;
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                let (seed, want) = &wants[i % wants.len()];
                let url = format!("{entry}/v1/images/{seed}/similar?k=10");
                let (status, got, missing, took) = ask(&client, &url).await;
                let complete = status == 200 && &got == want && missing == 0;
                seen.push((std::time::Instant::now(), status, complete, missing, took));
                i += 4;
            }
            seen
        });
    }
    let t0 = std::time::Instant::now();
    tokio::time::sleep(std::time::Duration::from_millis(800)).await;
    signal(&b1, "-STOP");
    let frozen = std::time::Instant::now();
    tokio::time::sleep(std::time::Duration::from_millis(1500)).await;
    signal(&b1, "-CONT");
    tokio::time::sleep(std::time::Duration::from_millis(500)).await;
    let mut b1 = b1;
    b1.child.kill().unwrap(); // SIGKILL, mid-load
    let killed = std::time::Instant::now();
    tokio::time::sleep(std::time::Duration::from_millis(1500)).await;
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let mut seen = Vec::new();
    while let Some(s) = clients.join_next().await {
        seen.extend(s.unwrap());
    }
    let bad: Vec<_> = seen.iter().filter(|s| !s.2).collect();
    let worst = seen.iter().map(|s| s.4).fold(0.0, f64::max);
    let after_kill = seen.iter().filter(|s| s.0 > killed).count();
    let while_frozen = seen.iter().filter(|s| s.0 > frozen && s.0 < killed).count();
    eprintln!(
        "{} answers in {:.1} s, {while_frozen} while B1 was frozen or resuming, {after_kill} after \
         it was killed; slowest {:.0} ms; {} incomplete",
        seen.len(),
        t0.elapsed().as_secs_f64(),
        worst * 1e3,
        bad.len()
    );
    assert!(
        bad.is_empty(),
        "{} of {} answers not 200 and complete (status, missing): {:?}",
        bad.len(),
        seen.len(),
        bad.iter().take(5).map(|s| (s.1, s.3)).collect::<Vec<_>>()
    );
    assert!(
        after_kill >= 20 && while_frozen >= 20,
        "too little load: {while_frozen}, {after_kill}"
    );
    // A frozen replica costs the hedge delay, not the peer timeout (3 s).
    assert!(worst < 1.5, "slowest answer {worst} s");
    // A counted the requests it hedged while B1 was frozen and the failovers once it was
    // dead; none to B2, which always answered.
    let text = imgfeat_testkit::metrics(&client, &a.probes).await;
    assert!(metric(&text, hedged).unwrap() >= 1.0, "{text}");
    assert!(metric(&text, &failovers("0")).unwrap() >= 1.0, "{text}");
    assert_eq!(metric(&text, &failovers("1")), Some(0.0), "{text}");
    drop((a, b1, b2));
}

/// SIGTERM while a query waits on a peer that never answers (SIGSTOP, with a 60 s peer
/// timeout): the shard gives what is in flight its `shutdown_grace_ms` (1 s) and exits,
/// instead of waiting for the query as long as the peer timeout allows.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_exits_within_the_grace_while_a_query_waits_on_a_frozen_peer() {
    let dir = tempfile::tempdir().unwrap();
    let (path, _, seeds) = stored_catalogue(dir.path()).await;

    let port = || imgfeat_testkit::free_port().unwrap();
    let (pa, pb) = (port(), port());
    let urls = format!("http://127.0.0.1:{pa},http://127.0.0.1:{pb}");
    let slow_peers = [
        ("IMGFEAT_SEARCH__PEER_TIMEOUT_MS", "60000"),
        ("IMGFEAT_SHUTDOWN_GRACE_MS", "1000"),
    ];
    let mut a = spawn_shard_with(&path, 0, pa, &urls, 50, &slow_peers);
    let b = spawn_shard_with(&path, 1, pb, &urls, 50, &slow_peers);
    let client = reqwest::Client::new();
    for p in [&a, &b] {
        imgfeat_testkit::wait_ready(&client, &p.probes).await;
    }
    signal(&b, "-STOP");
    let url = format!("{}/v1/images/{}/similar?k=10", a.api, seeds[0]);
    let stuck = tokio::spawn({
        let client = client.clone();
        async move { client.get(url).bearer_auth(TOKEN).send().await }
    });
    tokio::time::sleep(std::time::Duration::from_millis(500)).await;
    assert!(!stuck.is_finished(), "the query waits on the frozen peer");
    signal(&a, "-TERM");
    let termed = std::time::Instant::now();
    let exited = loop {
        if let Some(status) = a.child.try_wait().unwrap() {
            break status;
        }
        assert!(
            termed.elapsed() < std::time::Duration::from_secs(20),
            "still running 20 s after SIGTERM with a 1 s grace"
        );
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    };
    eprintln!(
        "exited {exited} {:.2} s after SIGTERM",
        termed.elapsed().as_secs_f64()
    );
    assert!(exited.success(), "{exited}");
    signal(&b, "-CONT");
    drop((a, b));
}

#[test]
fn the_binary_answers_its_version() {
    imgfeat_testkit::version_of(env!("CARGO_BIN_EXE_imgfeat-search"));
}
