//! The worker processes of a fleet, as the fleet tests and the load test both start
//! them: the settings file a detector or extractor reads, written in one place
//! ([`WorkerFile`]), and a service binary started on it as a child process that logs to
//! a file and is killed when dropped ([`ServiceProcess`]).

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use crate::KilledOnDrop;

/// Where a fleet keeps its results.
#[derive(Debug, Clone)]
pub enum StoreAt {
    /// One SQLite file, shared by every process of the fleet.
    Sqlite(PathBuf),
    /// A keyspace on a CQL node.
    Cql { node: String, keyspace: String },
}

impl StoreAt {
    /// The `[store]` table.
    fn table(&self) -> String {
        match self {
            StoreAt::Sqlite(path) => format!("[store]\npath = {:?}\n", path.display().to_string()),
            StoreAt::Cql { node, keyspace } => format!(
                "[store]\nkind = \"cql\"\n[store.cql]\nnodes = [{node:?}]\nkeyspace = {keyspace:?}\n\
                 request_timeout_ms = 20000\n"
            ),
        }
    }
}

/// The settings file of a detector or extractor of a fleet.
#[derive(Debug, Clone)]
pub struct WorkerFile {
    pub amqp_url: String,
    /// The fleet's queue prefix, so that it never meets another fleet's messages.
    pub prefix: String,
    pub store: StoreAt,
    /// `{id}` template of the images the detector reads.
    pub source_template: String,
    /// Where `/metrics` and `/readyz` listen.
    pub telemetry_listen: String,
    /// One detector that also extracts, and no extractor service.
    pub extract_here: bool,
    /// Top-level keys, e.g. `shutdown_grace_ms = 5000`.
    pub top: String,
    /// More keys of `[amqp]`.
    pub amqp: String,
    /// Tables of their own (`[pipeline.*]`, `[log]`), appended.
    pub tables: String,
}

impl WorkerFile {
    pub fn new(amqp_url: &str, prefix: &str, store: StoreAt, source_template: &str) -> Self {
        Self {
            amqp_url: amqp_url.to_owned(),
            prefix: prefix.to_owned(),
            store,
            source_template: source_template.to_owned(),
            telemetry_listen: "127.0.0.1:0".to_owned(),
            extract_here: false,
            top: String::new(),
            amqp: String::new(),
            tables: String::new(),
        }
    }

    pub fn toml(&self) -> String {
        let mut t = self.top.clone();
        let _ = write!(
            t,
            "\n[amqp]\nurl = {:?}\nprefix = {:?}\n{}\n",
            self.amqp_url, self.prefix, self.amqp
        );
        t.push_str(&self.store.table());
        let _ = write!(
            t,
            "[source]\nkind = \"folder\"\ntemplate = {:?}\n[telemetry]\nlisten = {:?}\n",
            self.source_template, self.telemetry_listen
        );
        if self.extract_here {
            t.push_str("[worker]\nextract_here = true\n");
        }
        t.push_str(&self.tables);
        t
    }

    pub fn write(&self, path: &Path) -> std::io::Result<()> {
        std::fs::write(path, self.toml())
    }
}

/// A service binary running on its settings file, its output (stdout and stderr) in
/// one log file; killed and reaped when dropped.
pub struct ServiceProcess {
    pub name: String,
    pub child: KilledOnDrop,
    pub log: PathBuf,
}

impl ServiceProcess {
    /// Starts `bin --config config` with the extra `env`, its output in `log`.
    pub fn spawn<'a>(
        name: &str,
        bin: &Path,
        config: &Path,
        env: impl IntoIterator<Item = (&'a str, &'a str)>,
        log: &Path,
    ) -> std::io::Result<Self> {
        let out = std::fs::File::create(log)?;
        let child = Command::new(bin)
            .arg("--config")
            .arg(config)
            .envs(env)
            .stdin(Stdio::null())
            .stdout(out.try_clone()?)
            .stderr(out)
            .spawn()
            .map_err(|e| std::io::Error::new(e.kind(), format!("{}: {e}", bin.display())))?;
        Ok(Self {
            name: name.to_owned(),
            child: KilledOnDrop(child),
            log: log.to_owned(),
        })
    }

    /// The last `lines` lines of the log.
    pub fn log_tail(&self, lines: usize) -> String {
        tail(&self.log, lines)
    }
}

/// The last `lines` lines of a log file; empty when it cannot be read.
pub fn tail(path: &Path, lines: usize) -> String {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let tail: Vec<&str> = text.lines().rev().take(lines).collect();
    tail.into_iter().rev().collect::<Vec<_>>().join("\n")
}

impl std::ops::Deref for ServiceProcess {
    type Target = std::process::Child;
    fn deref(&self) -> &Self::Target {
        &self.child
    }
}

impl std::ops::DerefMut for ServiceProcess {
    fn deref_mut(&mut self) -> &mut Self::Target {
        &mut self.child
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The file parses as a worker's settings and says what was asked, whatever the
    /// store, so neither harness can drift from what the services read.
    #[test]
    fn a_worker_file_is_read_back_as_written() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("worker.toml");
        let mut file = WorkerFile::new(
            "amqp://guest:guest@127.0.0.1:5672/v",
            "t",
            StoreAt::Cql {
                node: "127.0.0.1:9042".into(),
                keyspace: "k".into(),
            },
            "/data/{id}.img",
        );
        file.top = "shutdown_grace_ms = 5000\n".into();
        file.amqp = "prefetch = 16\n".into();
        file.tables = "[log]\nlevel = \"warn\"\n".into();
        file.extract_here = true;
        file.write(&path).unwrap();
        let s = imgfeat_app::worker::WorkerSettings::load(Some(&path)).unwrap();
        assert_eq!(s.shutdown_grace_ms, 5000);
        assert_eq!(s.amqp.prefix, "t");
        assert_eq!(s.amqp.prefetch, 16);
        assert_eq!(s.store.kind, imgfeat_app::settings::StoreKind::Cql);
        assert_eq!(s.store.cql.keyspace, "k");
        assert!(s.worker.extract_here);
        assert!(matches!(
            s.source,
            imgfeat_sources::SourceSettings::Folder { ref template } if template == "/data/{id}.img"
        ));

        file.store = StoreAt::Sqlite(dir.path().join("s.sqlite3"));
        file.extract_here = false;
        file.write(&path).unwrap();
        let s = imgfeat_app::worker::WorkerSettings::load(Some(&path)).unwrap();
        assert_eq!(s.store.path, dir.path().join("s.sqlite3"));
        assert!(!s.worker.extract_here);
    }
}
