//! The other shards, asked for their part of a query over HTTP, all at once. A shard
//! may have several replicas: one is asked (round robin), another on its error or
//! timeout (`search.peer_timeout_ms`), and another as well when the first has not
//! answered within the hedge delay (`search.hedge_ms`); the first good answer is taken.
//! Only a shard none of whose replicas answered is missing, and the answer says so.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use imgfeat_http::Token;
use imgfeat_search::Hit;
use prometheus::IntCounter;
use serde::{Deserialize, Serialize};

use crate::metrics::SearchMetrics;
use crate::shard_index::ShardQuery;

/// The body of `POST /v1/shard/query`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ShardRequest {
    /// The probe, hex as `imgfeat show` prints it.
    pub code: String,
    #[serde(flatten)]
    pub query: ShardQuery,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ShardAnswer {
    pub hits: Vec<WireHit>,
}

/// A hit as it crosses the wire (the index's own type is not meant to be parsed).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct WireHit {
    pub id: u64,
    pub distance: u32,
}

impl From<Hit> for WireHit {
    fn from(h: Hit) -> Self {
        Self {
            id: h.id,
            distance: h.distance,
        }
    }
}

impl From<WireHit> for Hit {
    fn from(h: WireHit) -> Self {
        Self {
            id: h.id,
            distance: h.distance,
        }
    }
}

/// One peer's failure, for the answer's `missing_shards`.
#[derive(Debug, Clone, Serialize)]
pub struct PeerFailure {
    /// The shard's replicas, as `search.shard_urls` names them (`|` between replicas).
    pub peer: String,
    pub reason: String,
}

/// How long a replica that failed is asked last (after the others), so that a dead one
/// costs a failover only now and then rather than on every query it would lead.
const SET_ASIDE_MS: u64 = 2_000;

/// What woke a shard's query: a replica's answer (or none left), or the hedge delay.
enum Next<T> {
    Done(Option<T>),
    Hedge,
}

/// The requests to a shard's replicas in flight: each gives its replica and its answer.
type Flying = tokio::task::JoinSet<(usize, Result<Vec<Hit>, String>)>;

/// One other shard: its replicas, any of which answers for it.
struct Shard {
    replicas: Vec<String>,
    /// Where the next query starts, so the replicas share the load.
    next: AtomicUsize,
    /// Per replica: until when (ms since `epoch`) it is asked last.
    set_aside_until: Vec<AtomicU64>,
}

/// One other shard's counters (see [`SearchMetrics`]), every label set made when the
/// peers are, so that each series exists, at 0, before the first failover or hedge.
struct ShardCounters {
    /// Per replica.
    failovers: Vec<IntCounter>,
    hedged: IntCounter,
}

#[derive(Clone)]
pub struct Peers {
    client: reqwest::Client,
    shards: Arc<Vec<Shard>>,
    /// The shards share one token: each checks the others like any client.
    token: Option<Token>,
    /// Ask a second replica when the first has not answered within this; `None`: only on
    /// an error or timeout of the first.
    hedge: Option<Duration>,
    epoch: Instant,
    /// Per other shard, in the order of `shards`; `None`: nothing counted.
    counters: Option<Arc<Vec<ShardCounters>>>,
}

impl Peers {
    /// `shards`: every other shard's replicas; `timeout` bounds each request to a
    /// replica, `hedge` is the delay after which another replica is asked too.
    pub fn new(
        shards: Vec<Vec<String>>,
        timeout: Duration,
        hedge: Option<Duration>,
        token: Option<Token>,
    ) -> Result<Self, reqwest::Error> {
        let client = reqwest::Client::builder()
            .timeout(timeout)
            .connect_timeout(timeout)
            .build()?;
        let shards = shards
            .into_iter()
            .map(|replicas| Shard {
                set_aside_until: replicas.iter().map(|_| AtomicU64::new(0)).collect(),
                replicas,
                next: AtomicUsize::new(0),
            })
            .collect();
        Ok(Self {
            client,
            shards: Arc::new(shards),
            token,
            hedge,
            epoch: Instant::now(),
            counters: None,
        })
    }

    /// Counts failovers and hedged requests in `metrics`, each shard labelled by its
    /// number among all the shards (the peers are every shard but `own`, in order), each
    /// replica by its place in the shard's entry. Every label set is made here, at 0.
    pub fn with_metrics(mut self, metrics: &SearchMetrics, own: u32) -> Self {
        let counters = self
            .shards
            .iter()
            .enumerate()
            .map(|(i, shard)| {
                let number = if i >= own as usize { i + 1 } else { i }.to_string();
                ShardCounters {
                    failovers: (0..shard.replicas.len())
                        .map(|r| {
                            metrics
                                .failovers
                                .with_label_values(&[number.as_str(), r.to_string().as_str()])
                        })
                        .collect(),
                    hedged: metrics.hedged.with_label_values(&[number.as_str()]),
                }
            })
            .collect();
        self.counters = Some(Arc::new(counters));
        self
    }

    pub fn count(&self) -> usize {
        self.shards.len()
    }

    /// Every other shard's hits, each from the first of its replicas to answer, or why
    /// none of them did.
    pub async fn query(&self, req: &ShardRequest) -> Vec<Result<Vec<Hit>, PeerFailure>> {
        let mut set = tokio::task::JoinSet::new();
        for i in 0..self.shards.len() {
            let peers = self.clone();
            let req = req.clone();
            set.spawn(async move { (i, peers.ask_shard(i, &req).await) });
        }
        let mut out: Vec<Result<Vec<Hit>, PeerFailure>> = self
            .shards
            .iter()
            .map(|s| {
                Err(PeerFailure {
                    peer: s.replicas.join("|"),
                    reason: "the request task failed".into(),
                })
            })
            .collect();
        while let Some(joined) = set.join_next().await {
            if let Ok((i, res)) = joined
                && let Some(slot) = out.get_mut(i)
            {
                *slot = res;
            }
        }
        out
    }

    /// The replicas of shard `i` in the order to ask them: round robin from the next
    /// start, those set aside after a failure last.
    fn order(&self, i: usize) -> Vec<usize> {
        let shard = &self.shards[i];
        let n = shard.replicas.len();
        let start = shard.next.fetch_add(1, Ordering::Relaxed);
        let now = self.now_ms();
        let mut order: Vec<usize> = (0..n).map(|k| (start + k) % n).collect();
        order.sort_by_key(|&r| shard.set_aside_until[r].load(Ordering::Relaxed) > now);
        order
    }

    fn now_ms(&self) -> u64 {
        u64::try_from(self.epoch.elapsed().as_millis()).unwrap_or(u64::MAX)
    }

    /// Shard `i`'s part: one replica asked; on its error or timeout the next, and past
    /// the hedge delay the next too; the first good answer wins (the others are dropped).
    async fn ask_shard(&self, i: usize, req: &ShardRequest) -> Result<Vec<Hit>, PeerFailure> {
        let shard = &self.shards[i];
        let counters = self.counters.as_ref().and_then(|c| c.get(i));
        let mut untried = self.order(i).into_iter();
        let mut flying: Flying = tokio::task::JoinSet::new();
        let mut errors = Vec::new();
        let launch = |flying: &mut Flying, r: usize| {
            let client = self.client.clone();
            let endpoint = format!("{}/v1/shard/query", shard.replicas[r].trim_end_matches('/'));
            let token = self.token.clone();
            let req = req.clone();
            flying.spawn(async move { (r, ask(&client, &endpoint, token.as_ref(), &req).await) });
        };
        if let Some(r) = untried.next() {
            launch(&mut flying, r);
        }
        loop {
            let hedge_after = self.hedge.filter(|_| !untried.as_slice().is_empty());
            let hedge = async move {
                match hedge_after {
                    Some(d) => tokio::time::sleep(d).await,
                    None => std::future::pending().await,
                }
            };
            let next = tokio::select! {
                joined = flying.join_next() => Next::Done(joined),
                () = hedge => Next::Hedge,
            };
            match next {
                Next::Done(None) => break,
                Next::Done(Some(Ok((_, Ok(hits))))) => return Ok(hits),
                Next::Done(Some(Ok((r, Err(reason))))) => {
                    tracing::debug!(replica = %shard.replicas[r], %reason, "a replica did not answer; asking another");
                    let until = self.now_ms().saturating_add(SET_ASIDE_MS);
                    shard.set_aside_until[r].store(until, Ordering::Relaxed);
                    errors.push(format!("{}: {reason}", shard.replicas[r]));
                    // A failover: another replica is asked now or is already asked.
                    let another = !untried.as_slice().is_empty() || !flying.is_empty();
                    if let (Some(c), true) = (counters, another) {
                        c.failovers[r].inc();
                    }
                }
                Next::Done(Some(Err(e))) => errors.push(format!("the request task failed: {e}")),
                Next::Hedge => {
                    if let Some(c) = counters {
                        c.hedged.inc();
                    }
                }
            }
            if let Some(r) = untried.next() {
                launch(&mut flying, r);
            }
        }
        Err(PeerFailure {
            peer: shard.replicas.join("|"),
            reason: errors.join("; "),
        })
    }
}

async fn ask(
    client: &reqwest::Client,
    endpoint: &str,
    token: Option<&Token>,
    req: &ShardRequest,
) -> Result<Vec<Hit>, String> {
    let mut post = client.post(endpoint).json(req);
    if let Some(token) = token {
        post = post.bearer_auth(token.expose());
    }
    let res = post.send().await.map_err(|e| format!("no answer: {e}"))?;
    let status = res.status();
    if !status.is_success() {
        let body = res.text().await.unwrap_or_default();
        return Err(format!(
            "HTTP {status}: {}",
            body.chars().take(200).collect::<String>()
        ));
    }
    res.json::<ShardAnswer>()
        .await
        .map(|a| a.hits.into_iter().map(Hit::from).collect())
        .map_err(|e| format!("unreadable answer: {e}"))
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    /// A replica on a real socket that answers every shard query with no hits after
    /// `delay`.
    async fn replica(delay: Duration) -> String {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let app = axum::Router::new().route(
            "/v1/shard/query",
            axum::routing::post(move || async move {
                tokio::time::sleep(delay).await;
                axum::Json(ShardAnswer { hits: Vec::new() })
            }),
        );
        tokio::spawn(async move { axum::serve(listener, app).await });
        url
    }

    /// A URL nothing listens on: the port of a listener just closed.
    async fn dead() -> String {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        format!("http://{}", listener.local_addr().unwrap())
    }

    fn request() -> ShardRequest {
        ShardRequest {
            code: "00".repeat(8),
            query: ShardQuery {
                k: 10,
                radius: None,
                exclude: None,
            },
        }
    }

    /// The lines of `name` in `registry`'s text exposition (what Prometheus scrapes).
    fn series(registry: &prometheus::Registry, name: &str) -> Vec<String> {
        use prometheus::Encoder;
        let mut buf = Vec::new();
        prometheus::TextEncoder::new()
            .encode(&registry.gather(), &mut buf)
            .unwrap();
        let mut lines: Vec<String> = String::from_utf8(buf)
            .unwrap()
            .lines()
            .filter(|l| l.starts_with(&format!("{name}{{")))
            .map(str::to_string)
            .collect();
        lines.sort();
        lines
    }

    /// This is shard 1 of 3: its peers are shards 0 and 2. Shard 0's first replica is
    /// dead, shard 2's first is slow.
    async fn peers_of_shard_1(metrics: &SearchMetrics) -> Peers {
        let shards = vec![
            vec![dead().await, replica(Duration::ZERO).await],
            vec![
                replica(Duration::from_millis(400)).await,
                replica(Duration::ZERO).await,
            ],
        ];
        Peers::new(
            shards,
            Duration::from_secs(2),
            Some(Duration::from_millis(30)),
            None,
        )
        .unwrap()
        .with_metrics(metrics, 1)
    }

    #[tokio::test]
    async fn every_shard_and_replica_has_its_series_at_0_before_the_first_query() {
        let registry = prometheus::Registry::new();
        let metrics = SearchMetrics::register(&registry).unwrap();
        let _peers = peers_of_shard_1(&metrics).await;
        assert_eq!(
            series(&registry, "imgfeat_search_failovers_total"),
            [
                r#"imgfeat_search_failovers_total{replica="0",shard="0"} 0"#,
                r#"imgfeat_search_failovers_total{replica="0",shard="2"} 0"#,
                r#"imgfeat_search_failovers_total{replica="1",shard="0"} 0"#,
                r#"imgfeat_search_failovers_total{replica="1",shard="2"} 0"#,
            ]
        );
        assert_eq!(
            series(&registry, "imgfeat_search_hedged_requests_total"),
            [
                r#"imgfeat_search_hedged_requests_total{shard="0"} 0"#,
                r#"imgfeat_search_hedged_requests_total{shard="2"} 0"#,
            ]
        );
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn failovers_and_hedged_requests_are_counted_per_shard_and_replica() {
        let metrics = SearchMetrics::register(&prometheus::Registry::new()).unwrap();
        let peers = peers_of_shard_1(&metrics).await;
        let count = |v: &prometheus::IntCounterVec, l: &[&str]| v.with_label_values(l).get();
        let answers = peers.query(&request()).await;
        assert!(answers.iter().all(Result::is_ok), "{answers:?}");
        assert_eq!(count(&metrics.failovers, &["0", "0"]), 1);
        assert_eq!(count(&metrics.hedged, &["2"]), 1);
        // Round robin and the set-aside put the live replicas first: no new failover.
        let answers = peers.query(&request()).await;
        assert!(answers.iter().all(Result::is_ok), "{answers:?}");
        assert_eq!(count(&metrics.failovers, &["0", "0"]), 1);
        assert_eq!(count(&metrics.failovers, &["2", "0"]), 0);
    }
}
