//! The search service's settings: defaults, then `--config FILE`, then `IMGFEAT_*`.

use std::path::Path;

use imgfeat_amqp::AmqpConfig;
use imgfeat_app::logging::LogSettings;
use imgfeat_app::settings::StoreSettings;
use imgfeat_app::{SearchSettings, SettingsError, load_settings};
pub use imgfeat_http::{HttpSettings, TelemetrySettings};
use imgfeat_infer::EngineSettings;
use imgfeat_pipeline::PipelineSettings;
use imgfeat_search::store_loader::RadiusMethod;
use serde::{Deserialize, Serialize};

use crate::shard::ShardSpec;

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct Settings {
    /// The API's address, token and limits (`[http]`, as ingest's); the other shards
    /// are called with the same token.
    pub http: HttpSettings,
    /// `/metrics` and the probes.
    pub telemetry: TelemetrySettings,
    /// Where the codes are (the same `[store]` as every binary).
    pub store: StoreSettings,
    /// Names the code version served (from the manifests, as the workers compute it),
    /// and codes the images of `POST /v1/similar` with the workers' models, decoding
    /// limits and batch policies.
    pub pipeline: PipelineSettings,
    pub search: ServiceSettings,
    /// The broker the shard follows stored codes on and announces duplicates to (the
    /// fleet's `[amqp]`: same prefix and exchange names).
    pub amqp: AmqpConfig,
    pub log: LogSettings,
    /// After SIGTERM, how long queries in flight may take to be answered before the
    /// process exits (the same setting as every service's).
    pub shutdown_grace_ms: u64,
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct ServiceSettings {
    /// This replica's share of the version.
    pub shard: ShardSpec,
    /// Base URL of every shard's API, in shard order, the same list for every replica:
    /// one entry per shard, its replicas separated by `|` (`http://s0a:8080|http://s0b:8080`;
    /// in `IMGFEAT_SEARCH__SHARD_URLS` the entries are separated by commas). Each asks all
    /// shards but its own, one replica of each. Empty for a single shard, or with
    /// `url_template`.
    pub shard_urls: Vec<String>,
    /// Instead of `shard_urls`: every replica's URL from its pod ordinal, `{ordinal}`
    /// replaced (`http://imgfeat-search-{ordinal}.imgfeat-search:8080`); shard `i` is
    /// ordinals `i`, `i + shard.count`, ... (`replicas` of them). Empty: `shard_urls`.
    pub url_template: String,
    /// Replicas of each shard, with `url_template`: `shard.count * replicas` pods.
    pub replicas: u32,
    /// This pod's ordinal (a StatefulSet's pod index); set, it gives the shard,
    /// `shard.index = ordinal % shard.count`, and the replica, `ordinal / shard.count`.
    pub ordinal: Option<u32>,
    /// How long a replica may take to answer its part of a query; past it (or on an
    /// error) the next replica of that shard is asked.
    pub peer_timeout_ms: u64,
    /// Hedging: when the replica asked has not answered within this, another replica of
    /// the shard is asked too and the first good answer taken. 0: only on an error or
    /// timeout.
    pub hedge_ms: u64,
    /// Most neighbours one query may ask for.
    pub max_k: usize,
    /// Widest radius one query may ask for: the cost of a radius query grows fast with it.
    pub max_radius: u32,
    /// Near-duplicate radius; unset: the default for the code length.
    pub dedup_radius: Option<u32>,
    /// `auto`: on 128-bit and longer codes past a radius of 16, radius queries probe a
    /// smaller certified radius (approximate: recall of copies measured >= 0.99, never a
    /// hit beyond the radius) and dedup is the banded self-join (exact, faster); exact
    /// multi-index hashing otherwise. `exact`: exact multi-index hashing always.
    pub radius_method: RadiusMethod,
    /// Follow the extractor's code-stored events (and dedup each new code). Off, the
    /// shard serves what the store held at start, and needs no broker.
    pub follow: bool,
    /// `POST /v1/similar` (an image in): images admitted at once for decoding,
    /// detection and extraction in this process; the next gets 429. 0 turns the image
    /// endpoint off (501), and no model is loaded.
    pub infer_max_queued: usize,
    /// How long an image of `POST /v1/similar` may take from admission to its code;
    /// past it, 504. 0: no deadline (`http.request_timeout_ms` still bounds it).
    pub infer_deadline_ms: u64,
}

/// compose's ports for search, so that it runs beside the other services on one host.
impl Default for Settings {
    fn default() -> Self {
        Self {
            http: HttpSettings {
                listen: "0.0.0.0:8081".into(),
                ..HttpSettings::default()
            },
            telemetry: TelemetrySettings::at("0.0.0.0:9467"),
            store: StoreSettings::default(),
            pipeline: PipelineSettings::default(),
            search: ServiceSettings::default(),
            amqp: AmqpConfig::default(),
            log: LogSettings::default(),
            shutdown_grace_ms: 10_000,
        }
    }
}

impl Default for ServiceSettings {
    fn default() -> Self {
        Self {
            shard: ShardSpec::default(),
            shard_urls: Vec::new(),
            url_template: String::new(),
            replicas: 1,
            ordinal: None,
            peer_timeout_ms: 2_000,
            hedge_ms: 50,
            max_k: 1_000,
            max_radius: 32,
            dedup_radius: None,
            radius_method: RadiusMethod::Auto,
            follow: true,
            infer_max_queued: 8,
            infer_deadline_ms: 10_000,
        }
    }
}

impl ServiceSettings {
    /// This replica's shard: `shard`, its index from `ordinal` when that is set.
    pub fn shard(&self) -> ShardSpec {
        match self.ordinal {
            Some(ordinal) => ShardSpec {
                index: ordinal % self.shard.count.max(1),
                count: self.shard.count,
            },
            None => self.shard,
        }
    }

    /// Which replica of its shard this one is (0 without `ordinal`).
    pub fn replica(&self) -> u32 {
        self.ordinal.map_or(0, |o| o / self.shard.count.max(1))
    }

    /// Every shard's replicas' URLs, in shard order (empty for a single shard).
    pub fn shard_replicas(&self) -> Vec<Vec<String>> {
        if self.url_template.is_empty() {
            return self
                .shard_urls
                .iter()
                .map(|entry| entry.split('|').map(|u| u.trim().to_string()).collect())
                .collect();
        }
        let count = self.shard.count;
        if count <= 1 && self.replicas <= 1 {
            return Vec::new();
        }
        (0..count)
            .map(|i| {
                (0..self.replicas)
                    .map(|r| {
                        let ordinal = i + r * count;
                        self.url_template.replace("{ordinal}", &ordinal.to_string())
                    })
                    .collect()
            })
            .collect()
    }

    /// Every other shard's replicas.
    pub fn peers(&self) -> Vec<Vec<String>> {
        let own = self.shard().index as usize;
        self.shard_replicas()
            .into_iter()
            .enumerate()
            .filter(|(i, _)| *i != own)
            .map(|(_, u)| u)
            .collect()
    }

    /// The hedge delay, `None` when off.
    pub fn hedge(&self) -> Option<std::time::Duration> {
        (self.hedge_ms > 0).then(|| std::time::Duration::from_millis(self.hedge_ms))
    }

    pub fn dedup(&self) -> SearchSettings {
        SearchSettings {
            dedup_radius: self.dedup_radius,
            radius_method: self.radius_method,
        }
    }
}

impl Settings {
    /// The engine of `POST /v1/similar`: one version, the pipeline's (the one whose codes
    /// the index holds); `None` when `search.infer_max_queued` is 0.
    pub fn engine(&self) -> Option<EngineSettings> {
        (self.search.infer_max_queued > 0).then(|| EngineSettings {
            deadline_ms: self.search.infer_deadline_ms,
            ..EngineSettings::of_pipeline(
                self.pipeline.clone(),
                self.search.infer_max_queued,
                "search.infer_max_queued",
            )
        })
    }
}

impl Settings {
    pub fn load(file: Option<&Path>) -> Result<Self, SettingsError> {
        let s: Self = load_settings(file)?;
        s.validate()?;
        Ok(s)
    }

    pub fn shutdown_grace(&self) -> std::time::Duration {
        std::time::Duration::from_millis(self.shutdown_grace_ms)
    }

    pub fn validate(&self) -> Result<(), SettingsError> {
        self.http
            .validate(&self.telemetry)
            .map_err(SettingsError::Invalid)?;
        self.pipeline.validate().map_err(SettingsError::Invalid)?;
        if self.shutdown_grace_ms == 0 {
            return Err(SettingsError::Invalid(
                "shutdown_grace_ms must be over 0".into(),
            ));
        }
        if self.search.follow {
            self.amqp
                .validate()
                .map_err(|e| SettingsError::Invalid(e.to_string()))?;
        }
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
        if search.infer_max_queued > 100_000 {
            return Err(SettingsError::Invalid(
                "search.infer_max_queued must be 0..=100000 (0: no image queries)".into(),
            ));
        }
        if search.replicas == 0 {
            return Err(SettingsError::Invalid(
                "search.replicas must be over 0".into(),
            ));
        }
        if !search.url_template.is_empty() {
            if !search.shard_urls.is_empty() {
                return Err(SettingsError::Invalid(
                    "search.shard_urls and search.url_template: set one".into(),
                ));
            }
            if !search.url_template.contains("{ordinal}") {
                return Err(SettingsError::Invalid(format!(
                    "search.url_template {:?} has no {{ordinal}}",
                    search.url_template
                )));
            }
        }
        if let Some(ordinal) = search.ordinal {
            let pods = search.shard.count.saturating_mul(search.replicas);
            if ordinal >= pods {
                return Err(SettingsError::Invalid(format!(
                    "search.ordinal {ordinal}: search.shard.count {} x search.replicas {} \
                     is {pods} pods",
                    search.shard.count, search.replicas
                )));
            }
        }
        let count = search.shard.count as usize;
        let shards = search.shard_replicas();
        if count > 1 && shards.len() != count {
            return Err(SettingsError::Invalid(format!(
                "search.shard_urls names {} shards, search.shard.count says {count}",
                shards.len(),
            )));
        }
        for url in shards.iter().flatten() {
            if !(url.starts_with("http://") || url.starts_with("https://")) {
                return Err(SettingsError::Invalid(format!(
                    "search.shard_urls: {url:?} is not an http(s) URL"
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
    fn shard_urls_must_match_the_shard_count() {
        let mut s = with_token();
        s.search.shard = ShardSpec { index: 1, count: 2 };
        assert!(s.validate().unwrap_err().to_string().contains("shard_urls"));
        s.search.shard_urls = vec!["http://search-0:8080".into(), "search-1:8080".into()];
        assert!(s.validate().unwrap_err().to_string().contains("http"));
        s.search.shard_urls[1] = "http://search-1:8080".into();
        s.validate().unwrap();
        assert_eq!(
            s.search.peers(),
            vec![vec!["http://search-0:8080".to_string()]]
        );
        // Replicas: `|` within a shard's entry.
        s.search.shard_urls[0] = "http://search-0a:8080|http://search-0b:8080".into();
        s.validate().unwrap();
        assert_eq!(
            s.search.peers(),
            vec![vec![
                "http://search-0a:8080".to_string(),
                "http://search-0b:8080".to_string()
            ]]
        );
        s.search.shard_urls[0] = "http://search-0a:8080|search-0b".into();
        assert!(s.validate().unwrap_err().to_string().contains("http"));
    }

    #[test]
    fn pods_of_a_statefulset_are_shards_and_replicas_by_ordinal() {
        let mut s = with_token();
        s.search.shard = ShardSpec { index: 0, count: 2 };
        s.search.replicas = 2;
        s.search.url_template = "http://search-{ordinal}.search:8080".into();
        s.search.ordinal = Some(3);
        s.validate().unwrap();
        assert_eq!(s.search.shard(), ShardSpec { index: 1, count: 2 });
        assert_eq!(s.search.replica(), 1);
        let url = |o: u32| format!("http://search-{o}.search:8080");
        assert_eq!(s.search.peers(), vec![vec![url(0), url(2)]]);
        assert_eq!(s.search.shard_replicas()[1], vec![url(1), url(3)]);
        s.search.ordinal = Some(4);
        assert!(s.validate().unwrap_err().to_string().contains("4 pods"));
        s.search.ordinal = Some(0);
        s.search.shard_urls = vec![url(0), url(1)];
        assert!(s.validate().unwrap_err().to_string().contains("set one"));
        s.search.shard_urls.clear();
        s.search.url_template = "http://search:8080".into();
        assert!(s.validate().unwrap_err().to_string().contains("{ordinal}"));
    }

    #[test]
    fn the_radius_method_is_auto_unless_set_and_reaches_the_dedup() {
        let s: Settings = imgfeat_app::settings_from_vars(
            [(
                "IMGFEAT_SEARCH__RADIUS_METHOD".to_string(),
                "exact".to_string(),
            )]
            .into_iter(),
        )
        .unwrap();
        assert_eq!(s.search.radius_method, RadiusMethod::Exact);
        assert_eq!(s.search.dedup().radius_method, RadiusMethod::Exact);
        assert_eq!(
            Settings::default().search.dedup().radius_method,
            RadiusMethod::Auto
        );
    }

    #[test]
    fn image_queries_run_the_pipelines_models_unless_turned_off() {
        let mut s = with_token();
        let engine = s.engine().unwrap();
        assert_eq!(engine.max_queued, 8);
        assert_eq!(engine.max_queued_key, "search.infer_max_queued");
        assert_eq!(
            engine.detector_manifests(),
            vec![s.pipeline.models.detector.clone()]
        );
        s.search.infer_max_queued = 0;
        assert!(s.engine().is_none());
        s.validate().unwrap();
    }
}
