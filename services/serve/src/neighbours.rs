//! `?neighbours=k`: each image's nearest stored images, asked of imgfeat-search by code
//! (`GET /v1/similar?code=HEX&k=`) within `serve.search_timeout_ms`. The search service
//! only adds to the answer: when it fails, times out or holds another code version, the
//! inference answer still comes, with `neighbours_error` saying why.

use std::time::Duration;

use imgfeat_http::Token;
use serde::{Deserialize, Serialize};

/// A stored image near the query, as imgfeat-search answers it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Neighbour {
    pub id: u64,
    pub distance: u32,
}

/// What one lookup gave: the neighbours, why they are missing or incomplete, or both.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Found {
    pub neighbours: Option<Vec<Neighbour>>,
    pub error: Option<String>,
}

impl Found {
    fn failed(why: String) -> Self {
        Self {
            neighbours: None,
            error: Some(why),
        }
    }

    /// `ok`, `incomplete` or `failed`, for the metric.
    pub fn result(&self) -> &'static str {
        match (&self.neighbours, &self.error) {
            (Some(_), None) => "ok",
            (Some(_), Some(_)) => "incomplete",
            (None, _) => "failed",
        }
    }
}

/// The part of imgfeat-search's answer read here.
#[derive(Debug, Deserialize)]
struct SimilarAnswer {
    code_version: String,
    neighbours: Vec<Neighbour>,
    #[serde(default)]
    missing_shards: Vec<MissingShard>,
}

#[derive(Debug, Deserialize)]
struct MissingShard {
    peer: String,
    reason: String,
}

#[derive(Clone)]
pub struct SearchClient {
    client: reqwest::Client,
    endpoint: String,
    token: Option<Token>,
    timeout: Duration,
}

impl SearchClient {
    /// A client of the search service at `base_url`, every lookup bounded by `timeout`.
    pub fn new(
        base_url: &str,
        timeout: Duration,
        token: Option<Token>,
    ) -> Result<Self, reqwest::Error> {
        let client = reqwest::Client::builder()
            .timeout(timeout)
            .connect_timeout(timeout)
            .build()?;
        Ok(Self {
            client,
            endpoint: format!("{}/v1/similar", base_url.trim_end_matches('/')),
            token,
            timeout,
        })
    }

    /// The `k` stored images nearest to `code_hex` (a code of `code_version`).
    pub async fn neighbours(&self, code_hex: &str, code_version: &str, k: usize) -> Found {
        let found = match self.ask(code_hex, k).await {
            Err(why) => Found::failed(format!("the search service: {why}")),
            Ok(a) if a.code_version != code_version => Found::failed(format!(
                "the search service holds codes of {}, this image's code is of {code_version}",
                a.code_version
            )),
            Ok(a) if !a.missing_shards.is_empty() => {
                let missing: Vec<String> = a
                    .missing_shards
                    .iter()
                    .map(|m| format!("{} ({})", m.peer, m.reason))
                    .collect();
                Found {
                    neighbours: Some(a.neighbours),
                    error: Some(format!(
                        "incomplete: {} shard(s) of the search service did not answer: {}",
                        missing.len(),
                        missing.join("; ")
                    )),
                }
            }
            Ok(a) => Found {
                neighbours: Some(a.neighbours),
                error: None,
            },
        };
        if let Some(why) = &found.error {
            tracing::warn!(error = %why, "neighbours lookup");
        }
        found
    }

    async fn ask(&self, code_hex: &str, k: usize) -> Result<SimilarAnswer, String> {
        // Hex digits and a number: nothing to escape.
        let url = format!("{}?code={code_hex}&k={k}", self.endpoint);
        let mut get = self.client.get(url);
        if let Some(token) = &self.token {
            get = get.bearer_auth(token.expose());
        }
        let res = get.send().await.map_err(|e| {
            if e.is_timeout() {
                format!(
                    "no answer within {} ms (serve.search_timeout_ms)",
                    self.timeout.as_millis()
                )
            } else {
                format!("no answer: {e}")
            }
        })?;
        let status = res.status();
        if !status.is_success() {
            let body = res.text().await.unwrap_or_default();
            return Err(format!(
                "HTTP {status}: {}",
                body.chars().take(200).collect::<String>()
            ));
        }
        res.json::<SimilarAnswer>()
            .await
            .map_err(|e| format!("unreadable answer: {e}"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_result_label_says_what_the_answer_holds() {
        let hits = Some(vec![Neighbour { id: 1, distance: 0 }]);
        let ok = Found {
            neighbours: hits.clone(),
            error: None,
        };
        let incomplete = Found {
            neighbours: hits,
            error: Some("x".into()),
        };
        assert_eq!(ok.result(), "ok");
        assert_eq!(incomplete.result(), "incomplete");
        assert_eq!(Found::failed("x".into()).result(), "failed");
    }
}
