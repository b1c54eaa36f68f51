//! The other shards, asked for their part of a query over HTTP, all at once, each
//! within the peer timeout: a slow or dead shard costs at most that, and the answer
//! says which shards it lacks.

use std::time::Duration;

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
    pub peer: String,
    pub reason: String,
}

#[derive(Clone)]
pub struct Peers {
    client: reqwest::Client,
    urls: Vec<String>,
    /// The shards share one token: each checks the others like any client.
    token: Option<Token>,
}

impl Peers {
    pub fn new(
        urls: Vec<String>,
        timeout: Duration,
        token: Option<Token>,
    ) -> Result<Self, reqwest::Error> {
        let client = reqwest::Client::builder()
            .timeout(timeout)
            .connect_timeout(timeout)
            .build()?;
        Ok(Self {
            client,
            urls,
            token,
        })
    }

    pub fn count(&self) -> usize {
        self.urls.len()
    }

    /// Every peer's hits, or why a peer gave none.
    pub async fn query(&self, req: &ShardRequest) -> Vec<Result<Vec<Hit>, PeerFailure>> {
        let mut set = tokio::task::JoinSet::new();
        for (i, url) in self.urls.iter().enumerate() {
            let client = self.client.clone();
            let endpoint = format!("{}/v1/shard/query", url.trim_end_matches('/'));
            let req = req.clone();
            let token = self.token.clone();
            set.spawn(async move { (i, ask(&client, &endpoint, token.as_ref(), &req).await) });
        }
        let mut out: Vec<Result<Vec<Hit>, PeerFailure>> = self
            .urls
            .iter()
            .map(|u| {
                Err(PeerFailure {
                    peer: u.clone(),
                    reason: "the request task failed".into(),
                })
            })
            .collect();
        while let Some(joined) = set.join_next().await {
            if let Ok((i, res)) = joined
                && let Some(slot) = out.get_mut(i)
            {
                *slot = res.map_err(|reason| PeerFailure {
                    peer: self.urls[i].clone(),
                    reason,
                });
            }
        }
        out
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
