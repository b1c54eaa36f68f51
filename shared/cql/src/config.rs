//! What an operator sets for the CQL results store, with defaults that suit one
//! development node and validation that fails at start-up rather than mid-run.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

use serde::{Deserialize, Serialize};

/// Cassandra refuses TTLs over 20 years.
pub const MAX_TTL_SECONDS: u32 = 630_720_000;

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("invalid CQL configuration: {0}")]
pub struct ConfigError(pub String);

/// The CQL results store (ScyllaDB or Cassandra 4.x).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct CqlConfig {
    /// Contact points, `host:port`; the driver discovers the rest of the cluster.
    pub nodes: Vec<String>,
    /// Keyspace holding every table of the store; created at start if missing.
    /// Lowercase letters, digits and `_`, starting with a letter (CQL folds unquoted
    /// names to lowercase, so anything else would name a different keyspace).
    pub keyspace: String,
    /// Replication of the keyspace when it is created. Changing it later is an operator
    /// job (`ALTER KEYSPACE` followed by a repair), never done behind their back.
    pub replication: Replication,
    /// Consistency of every read and write; `LOCAL_QUORUM` by default.
    pub consistency: ConsistencyLevel,
    /// The data centre this process runs in: the load-balancing policy sends requests to
    /// its replicas only. Unset: every node counts as local (fine for one data centre).
    pub local_dc: Option<String>,
    /// Client-side limit for one request attempt, in milliseconds.
    pub request_timeout_ms: u64,
    /// Limit for opening the session and for schema agreement after DDL, in milliseconds.
    pub connect_timeout_ms: u64,
    /// Retries of timed-out, unavailable and overloaded requests.
    pub retries: RetryConfig,
    /// Optional expiry of rows, per table.
    pub ttl: TtlConfig,
    /// Credentials for PasswordAuthenticator; both or neither.
    pub username: Option<String>,
    pub password: Option<String>,
    /// `[store.cql.tls]`: connect over TLS (see `crate::tls`, feature `driver`); absent: plain TCP.
    pub tls: Option<CqlTls>,
    /// Most requests one store call keeps in flight when it fans out per partition
    /// (`coded`, export pages).
    pub max_concurrency: usize,
    /// Create or migrate the schema in `connect`. Set false on large fleets so only
    /// `imgfeat store migrate` changes the schema; `connect` then checks the version.
    pub auto_migrate: bool,
}

impl Default for CqlConfig {
    fn default() -> Self {
        Self {
            nodes: vec!["127.0.0.1:9042".to_string()],
            keyspace: "imgfeat".to_string(),
            replication: Replication::default(),
            consistency: ConsistencyLevel::default(),
            local_dc: None,
            request_timeout_ms: 5_000,
            connect_timeout_ms: 30_000,
            retries: RetryConfig::default(),
            ttl: TtlConfig::default(),
            username: None,
            password: None,
            tls: None,
            max_concurrency: 64,
            auto_migrate: true,
        }
    }
}

impl CqlConfig {
    pub fn validate(&self) -> Result<(), ConfigError> {
        if self.nodes.is_empty() || self.nodes.iter().any(|n| n.trim().is_empty()) {
            return Err(ConfigError("nodes: give at least one host:port".into()));
        }
        check_identifier("keyspace", &self.keyspace, true)?;
        self.replication.validate()?;
        self.consistency.validate()?;
        if let Some(dc) = &self.local_dc {
            check_dc_name(dc)?;
        }
        if self.request_timeout_ms == 0 || self.connect_timeout_ms == 0 {
            return Err(ConfigError("timeouts must be over 0 ms".into()));
        }
        self.retries.validate()?;
        self.ttl.validate()?;
        if self.username.is_some() != self.password.is_some() {
            return Err(ConfigError("username and password go together".into()));
        }
        if self.max_concurrency == 0 {
            return Err(ConfigError("max_concurrency must be over 0".into()));
        }
        Ok(())
    }

    pub fn request_timeout(&self) -> Duration {
        Duration::from_millis(self.request_timeout_ms)
    }

    pub fn connect_timeout(&self) -> Duration {
        Duration::from_millis(self.connect_timeout_ms)
    }
}

/// Keyspace replication, rendered into `CREATE KEYSPACE ... WITH replication = {...}`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
#[serde(tag = "class", rename_all = "snake_case", deny_unknown_fields)]
pub enum Replication {
    /// One data centre (development, single node): `factor` copies.
    Simple { factor: u32 },
    /// Production: copies per data centre, e.g. `dcs = { dc1 = 3, dc2 = 3 }`.
    NetworkTopology { dcs: BTreeMap<String, u32> },
}

impl Default for Replication {
    fn default() -> Self {
        Replication::Simple { factor: 1 }
    }
}

impl Replication {
    pub fn validate(&self) -> Result<(), ConfigError> {
        match self {
            Replication::Simple { factor } if *factor == 0 => {
                Err(ConfigError("replication factor must be over 0".into()))
            }
            Replication::Simple { .. } => Ok(()),
            Replication::NetworkTopology { dcs } => {
                if dcs.is_empty() {
                    return Err(ConfigError(
                        "network_topology replication needs at least one data centre".into(),
                    ));
                }
                for (dc, factor) in dcs {
                    check_dc_name(dc)?;
                    if *factor == 0 {
                        return Err(ConfigError(format!("replication factor of {dc} is 0")));
                    }
                }
                Ok(())
            }
        }
    }

    /// The CQL map literal. Names were validated, so no quoting beyond `'...'` is needed.
    pub fn to_cql(&self) -> String {
        match self {
            Replication::Simple { factor } => {
                format!("{{'class': 'SimpleStrategy', 'replication_factor': {factor}}}")
            }
            Replication::NetworkTopology { dcs } => {
                let mut s = String::from("{'class': 'NetworkTopologyStrategy'");
                for (dc, factor) in dcs {
                    s.push_str(&format!(", '{dc}': {factor}"));
                }
                s.push('}');
                s
            }
        }
    }
}

/// The consistency levels that make sense for both reads and writes of this store.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum ConsistencyLevel {
    One,
    Two,
    Three,
    Quorum,
    All,
    #[default]
    LocalQuorum,
    LocalOne,
    /// Writes only; refused by validation because reads share the level.
    EachQuorum,
    /// Writes only; refused by validation because reads share the level.
    Any,
}

impl ConsistencyLevel {
    pub fn validate(self) -> Result<(), ConfigError> {
        match self {
            ConsistencyLevel::EachQuorum | ConsistencyLevel::Any => Err(ConfigError(format!(
                "consistency {self:?} is valid for writes only, and this store reads with the \
                 same level: use LOCAL_QUORUM, QUORUM or ONE-like levels"
            ))),
            _ => Ok(()),
        }
    }

    #[cfg(feature = "driver")]
    pub fn to_driver(self) -> scylla::statement::Consistency {
        use scylla::statement::Consistency as C;
        match self {
            ConsistencyLevel::One => C::One,
            ConsistencyLevel::Two => C::Two,
            ConsistencyLevel::Three => C::Three,
            ConsistencyLevel::Quorum => C::Quorum,
            ConsistencyLevel::All => C::All,
            ConsistencyLevel::LocalQuorum => C::LocalQuorum,
            ConsistencyLevel::LocalOne => C::LocalOne,
            ConsistencyLevel::EachQuorum => C::EachQuorum,
            ConsistencyLevel::Any => C::Any,
        }
    }
}

/// Back-off retries of idempotent requests that timed out or found too few replicas.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct RetryConfig {
    /// Attempts in all, the first included; 1 disables retries.
    pub max_attempts: u32,
    /// Delay before the first retry, doubled each time (with jitter), in milliseconds.
    pub base_backoff_ms: u64,
    /// Ceiling of one delay, in milliseconds.
    pub max_backoff_ms: u64,
}

impl Default for RetryConfig {
    fn default() -> Self {
        Self {
            max_attempts: 4,
            base_backoff_ms: 100,
            max_backoff_ms: 2_000,
        }
    }
}

impl RetryConfig {
    pub fn validate(&self) -> Result<(), ConfigError> {
        if self.max_attempts == 0 || self.max_attempts > 20 {
            return Err(ConfigError("retries.max_attempts must be 1..=20".into()));
        }
        if self.base_backoff_ms > self.max_backoff_ms {
            return Err(ConfigError(
                "retries.base_backoff_ms must not exceed max_backoff_ms".into(),
            ));
        }
        Ok(())
    }
}

/// Optional expiry per table, in seconds; unset keeps rows for ever. Applied per write
/// (`USING TTL ?`), so a change takes effect for new writes without a migration.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct TtlConfig {
    pub detections: Option<u32>,
    /// Crops are the bulk of the data; a shorter TTL here keeps boxes but drops pixels
    /// (an expired crop reads back as an empty `crop_jpeg`).
    pub crops: Option<u32>,
    pub codes: Option<u32>,
    pub failures: Option<u32>,
}

impl TtlConfig {
    pub fn validate(&self) -> Result<(), ConfigError> {
        for (name, ttl) in [
            ("detections", self.detections),
            ("crops", self.crops),
            ("codes", self.codes),
            ("failures", self.failures),
        ] {
            match ttl {
                Some(0) => {
                    return Err(ConfigError(format!(
                        "ttl.{name} = 0: leave it unset to keep rows for ever"
                    )));
                }
                Some(t) if t > MAX_TTL_SECONDS => {
                    return Err(ConfigError(format!(
                        "ttl.{name} = {t} is over Cassandra's limit of {MAX_TTL_SECONDS} s"
                    )));
                }
                _ => {}
            }
        }
        Ok(())
    }
}

/// The bound value of `USING TTL ?`: 0 means no expiry in CQL.
pub fn ttl_value(ttl: Option<u32>) -> i32 {
    ttl.and_then(|t| i32::try_from(t).ok()).unwrap_or(0)
}

/// Names spliced into CQL text (keyspace, table, column) must be plain identifiers, both
/// to keep statements injection-free and because quoting would make them case-sensitive.
pub fn check_identifier(what: &str, name: &str, lowercase_only: bool) -> Result<(), ConfigError> {
    let mut chars = name.chars();
    let first_ok = chars.next().is_some_and(|c| c.is_ascii_alphabetic());
    let rest_ok = name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
        && (!lowercase_only || !name.chars().any(|c| c.is_ascii_uppercase()));
    if !first_ok || !rest_ok || name.len() > 48 {
        let case = if lowercase_only { "lowercase " } else { "" };
        return Err(ConfigError(format!(
            "{what} {name:?}: use 1..=48 {case}letters, digits or '_', starting with a letter"
        )));
    }
    Ok(())
}

fn check_dc_name(dc: &str) -> Result<(), ConfigError> {
    let ok = !dc.is_empty()
        && dc.len() <= 64
        && dc
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "_-.".contains(c));
    if ok {
        Ok(())
    } else {
        Err(ConfigError(format!(
            "data centre name {dc:?}: use letters, digits, '_', '-' or '.'"
        )))
    }
}

/// `[store.cql.tls]`: present means every connection is TLS.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct CqlTls {
    /// PEM file of the CAs that sign the nodes' certificates; unset: the system's roots.
    pub ca_file: Option<PathBuf>,
    /// Check that a node's certificate names its IP address.
    pub verify_hostname: bool,
}

impl Default for CqlTls {
    fn default() -> Self {
        Self {
            ca_file: None,
            verify_hostname: true,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_suit_one_local_node_and_validate() {
        let c = CqlConfig::default();
        assert_eq!(c.consistency, ConsistencyLevel::LocalQuorum);
        assert_eq!(c.replication, Replication::Simple { factor: 1 });
        assert!(c.auto_migrate);
        c.validate().unwrap();
    }

    #[test]
    fn deserialises_from_toml_with_defaults_for_missing_fields() {
        let c: CqlConfig = toml::from_str(
            r#"
            nodes = ["10.0.0.1:9042", "10.0.0.2:9042"]
            keyspace = "prod_imgfeat"
            consistency = "QUORUM"
            local_dc = "dc1"
            [replication]
            class = "network_topology"
            dcs = { dc1 = 3, dc2 = 2 }
            [ttl]
            crops = 86400
            "#,
        )
        .unwrap();
        assert_eq!(c.nodes.len(), 2);
        assert_eq!(c.consistency, ConsistencyLevel::Quorum);
        assert_eq!(c.ttl.crops, Some(86400));
        assert_eq!(c.ttl.codes, None);
        assert_eq!(c.retries, RetryConfig::default());
        c.validate().unwrap();
        assert_eq!(
            c.replication.to_cql(),
            "{'class': 'NetworkTopologyStrategy', 'dc1': 3, 'dc2': 2}"
        );
    }

    #[test]
    fn unknown_fields_are_refused() {
        assert!(toml::from_str::<CqlConfig>("keyspce = \"x\"").is_err());
    }

    #[test]
    fn replication_renders_simple_strategy() {
        assert_eq!(
            Replication::Simple { factor: 3 }.to_cql(),
            "{'class': 'SimpleStrategy', 'replication_factor': 3}"
        );
    }

    #[test]
    fn validation_refuses_bad_values() {
        let bad = [
            CqlConfig {
                nodes: vec![],
                ..Default::default()
            },
            CqlConfig {
                keyspace: "Imgfeat".into(),
                ..Default::default()
            },
            CqlConfig {
                keyspace: "img-feat".into(),
                ..Default::default()
            },
            CqlConfig {
                keyspace: "x".repeat(49),
                ..Default::default()
            },
            CqlConfig {
                replication: Replication::Simple { factor: 0 },
                ..Default::default()
            },
            CqlConfig {
                replication: Replication::NetworkTopology {
                    dcs: BTreeMap::new(),
                },
                ..Default::default()
            },
            CqlConfig {
                replication: Replication::NetworkTopology {
                    dcs: [("dc1'; DROP".to_string(), 3)].into(),
                },
                ..Default::default()
            },
            CqlConfig {
                consistency: ConsistencyLevel::Any,
                ..Default::default()
            },
            CqlConfig {
                consistency: ConsistencyLevel::EachQuorum,
                ..Default::default()
            },
            CqlConfig {
                username: Some("u".into()),
                ..Default::default()
            },
            CqlConfig {
                ttl: TtlConfig {
                    codes: Some(0),
                    ..Default::default()
                },
                ..Default::default()
            },
            CqlConfig {
                ttl: TtlConfig {
                    crops: Some(MAX_TTL_SECONDS + 1),
                    ..Default::default()
                },
                ..Default::default()
            },
            CqlConfig {
                retries: RetryConfig {
                    max_attempts: 0,
                    ..Default::default()
                },
                ..Default::default()
            },
            CqlConfig {
                request_timeout_ms: 0,
                ..Default::default()
            },
        ];
        for c in bad {
            assert!(c.validate().is_err(), "{c:?}");
        }
    }

    #[test]
    fn ttl_zero_means_no_expiry_in_cql() {
        assert_eq!(ttl_value(None), 0);
        assert_eq!(ttl_value(Some(60)), 60);
    }

    #[test]
    fn identifiers_allow_mixed_case_only_when_asked() {
        assert!(check_identifier("column", "ImageBytes", false).is_ok());
        assert!(check_identifier("column", "ImageBytes", true).is_err());
        assert!(check_identifier("column", "1abc", false).is_err());
        assert!(check_identifier("column", "", false).is_err());
        assert!(check_identifier("column", "a\"b", false).is_err());
    }
}
