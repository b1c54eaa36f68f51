//! The search service's settings: defaults, then `--config FILE`, then `IMGFEAT_*`.

use std::path::Path;

use imgfeat_app::logging::LogSettings;
use imgfeat_app::settings::StoreSettings;
use imgfeat_app::{SearchSettings, SettingsError, load_settings};
pub use imgfeat_http::HttpSettings;
use imgfeat_pipeline::PipelineSettings;
use serde::Deserialize;

use crate::shard::ShardSpec;

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Settings {
    /// The API's address, token and limits (`[http]`, as ingest's); the other shards
    /// are called with the same token.
    pub http: HttpSettings,
    /// Where the codes are (the same `[store]` as every binary).
    pub store: StoreSettings,
    /// Names the code version served (from the manifests, as the workers compute it).
    pub pipeline: PipelineSettings,
    pub search: ServiceSettings,
    pub log: LogSettings,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ServiceSettings {
    /// This replica's share of the version.
    pub shard: ShardSpec,
    /// Base URLs of the other shards' APIs (`http://search-1.search:8081`): a query to
    /// any replica is answered from every shard.
    pub peers: Vec<String>,
    /// How long a peer may take to answer its part of a query.
    pub peer_timeout_ms: u64,
    /// Most neighbours one query may ask for.
    pub max_k: usize,
    /// Widest radius one query may ask for: the cost of a radius query grows fast with it.
    pub max_radius: u32,
    /// Near-duplicate radius; unset: the default for the code length.
    pub dedup_radius: Option<u32>,
}

impl Default for ServiceSettings {
    fn default() -> Self {
        Self {
            shard: ShardSpec::default(),
            peers: Vec::new(),
            peer_timeout_ms: 2_000,
            max_k: 1_000,
            max_radius: 32,
            dedup_radius: None,
        }
    }
}

impl ServiceSettings {
    pub fn dedup(&self) -> SearchSettings {
        SearchSettings {
            dedup_radius: self.dedup_radius,
        }
    }
}

impl Settings {
    pub fn load(file: Option<&Path>) -> Result<Self, SettingsError> {
        let s: Self = load_settings(file)?;
        s.validate()?;
        Ok(s)
    }

    pub fn validate(&self) -> Result<(), SettingsError> {
        self.http.validate().map_err(SettingsError::Invalid)?;
        self.pipeline.validate().map_err(SettingsError::Invalid)?;
        self.search
            .shard
            .validate()
            .map_err(SettingsError::Invalid)?;
        let search = &self.search;
        if search.max_k == 0 || search.peer_timeout_ms == 0 {
            return Err(SettingsError::Invalid(
                "search.max_k and search.peer_timeout_ms must be over 0".into(),
            ));
        }
        if search.peers.len() + 1 != search.shard.count as usize {
            return Err(SettingsError::Invalid(format!(
                "search.peers names {} other shards, search.shard.count says {}",
                search.peers.len(),
                search.shard.count
            )));
        }
        for peer in &search.peers {
            if !(peer.starts_with("http://") || peer.starts_with("https://")) {
                return Err(SettingsError::Invalid(format!(
                    "search.peers: {peer:?} is not an http(s) URL"
                )));
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn with_token() -> Settings {
        let mut s = Settings::default();
        s.http.token = Some(imgfeat_http::Token::new("0123456789abcdef"));
        s
    }

    #[test]
    fn defaults_are_one_whole_shard_behind_a_token() {
        let err = Settings::default().validate().unwrap_err().to_string();
        assert!(err.contains("http.token"), "{err}");
        let s = with_token();
        s.validate().unwrap();
        assert_eq!(s.search.shard, ShardSpec::default());
    }

    #[test]
    fn peers_must_match_the_shard_count() {
        let mut s = with_token();
        s.search.shard = ShardSpec { index: 0, count: 2 };
        assert!(s.validate().unwrap_err().to_string().contains("peers"));
        s.search.peers = vec!["search-1:8081".into()];
        assert!(s.validate().unwrap_err().to_string().contains("http"));
        s.search.peers = vec!["http://search-1:8081".into()];
        s.validate().unwrap();
    }
}
