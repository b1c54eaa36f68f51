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
use serde::{Deserialize, Serialize};

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
        })
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
                }
                Next::Done(Some(Err(e))) => errors.push(format!("the request task failed: {e}")),
                Next::Hedge => {}
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
