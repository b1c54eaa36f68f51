//! The three services as child processes on one machine: ingest (HTTP -> RabbitMQ),
//! detector and extractor (RabbitMQ -> shared SQLite store), under a queue prefix of
//! their own so the run never meets another fleet's messages.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use serde::Serialize;

use imgfeat_bench::procfs;

use crate::http;

pub struct FleetConfig {
    pub bin_dir: PathBuf,
    pub work_dir: PathBuf,
    pub amqp_url: String,
    pub prefix: String,
    pub store: PathBuf,
    /// `{id}` template of the images the detector reads.
    pub source_template: String,
    /// Extra settings file for detector and extractor (pipeline.* etc.), appended.
    pub worker_extra: Option<String>,
    /// IMGFEAT_* variables for detector and extractor: the resolved pipeline knobs, so
    /// the services run exactly what the embedded baseline ran, whatever their build's
    /// defaults.
    pub worker_env: Vec<(String, String)>,
    /// One detector that also extracts, and no extractor service.
    pub extract_here: bool,
}

/// The knobs as IMGFEAT_PIPELINE__* variables (environment beats the settings file).
pub fn knob_env(k: &imgfeat_bench::Knobs) -> Vec<(String, String)> {
    let v = |key: &str, value: String| (format!("IMGFEAT_PIPELINE__{key}"), value);
    vec![
        v("DECODE__THREADS", k.decode_threads.to_string()),
        v("DECODE__MAX_QUEUED", k.max_queued.to_string()),
        v(
            "MODELS__DETECTOR_SESSION__INTRA_THREADS",
            k.detector_intra.to_string(),
        ),
        v(
            "MODELS__DETECTOR_SESSION__SPINNING",
            k.detector_spinning.to_string(),
        ),
        v(
            "MODELS__EXTRACTOR_SESSION__INTRA_THREADS",
            k.extractor_intra.to_string(),
        ),
        v(
            "MODELS__EXTRACTOR_SESSION__SPINNING",
            k.extractor_spinning.to_string(),
        ),
        v("MODELS__DETECTOR_WORKERS", k.detector_workers.to_string()),
        v("MODELS__EXTRACTOR_WORKERS", k.extractor_workers.to_string()),
        v(
            "MODELS__SHARED_INTRA_THREADS",
            k.shared_intra_threads.to_string(),
        ),
        v("DETECTOR__BATCH__MAX_BATCH", k.detector_batch.to_string()),
        v(
            "DETECTOR__BATCH__MAX_WAIT_MS",
            k.detector_wait_ms.to_string(),
        ),
        v("DETECTOR__MAX_IN_FLIGHT", k.detector_in_flight.to_string()),
        v("EXTRACTOR__BATCH__MAX_BATCH", k.extractor_batch.to_string()),
        v(
            "EXTRACTOR__BATCH__MAX_WAIT_MS",
            k.extractor_wait_ms.to_string(),
        ),
        v(
            "EXTRACTOR__MAX_IN_FLIGHT",
            k.extractor_in_flight.to_string(),
        ),
    ]
}

pub struct Service {
    pub process: ServiceProcess,
    /// `/readyz` address (telemetry listener), when the service has one.
    pub health: Option<String>,
}

#[derive(Debug, Clone, Serialize)]
pub struct ServiceUsage {
    pub name: String,
    pub pid: u32,
    pub cpu_seconds: Option<f64>,
    pub peak_rss_mib: Option<f64>,
}

pub struct Fleet {
    pub services: Vec<Service>,
    pub ingest_addr: String,
    /// The API token this run gave ingest.
    pub ingest_token: String,
}

use imgfeat_testkit::KilledOnDrop;
use imgfeat_testkit::fleet::{ServiceProcess, StoreAt, WorkerFile};
pub use imgfeat_testkit::free_port;

/// The folder of the services' binaries: the one given, or this executable's.
pub fn bin_dir(given: Option<&PathBuf>) -> anyhow::Result<PathBuf> {
    match given {
        Some(d) => Ok(d.clone()),
        None => Ok(std::env::current_exe()?
            .parent()
            .context("executable folder")?
            .to_path_buf()),
    }
}

pub fn binary(dir: &Path, name: &str) -> anyhow::Result<PathBuf> {
    let path = dir.join(name);
    if !path.is_file() {
        bail!(
            "{} not found: build it first (cargo build -p {name}) or pass --bin-dir",
            path.display()
        );
    }
    Ok(path)
}

impl Fleet {
    pub fn start(cfg: &FleetConfig) -> anyhow::Result<Fleet> {
        let ingest_bin = binary(&cfg.bin_dir, "imgfeat-ingest")?;
        let detector_bin = binary(&cfg.bin_dir, "imgfeat-detector")?;
        let extractor_bin = binary(&cfg.bin_dir, "imgfeat-extractor")?;
        let mut services = Vec::new();

        let mut workers = vec![("imgfeat-detector", &detector_bin)];
        if !cfg.extract_here {
            workers.push(("imgfeat-extractor", &extractor_bin));
        }
        for (name, bin) in workers {
            let health = format!("127.0.0.1:{}", free_port()?);
            let mut file = WorkerFile::new(
                &cfg.amqp_url,
                &cfg.prefix,
                StoreAt::Sqlite(cfg.store.clone()),
                &cfg.source_template,
            );
            file.telemetry_listen = health.clone();
            file.extract_here = cfg.extract_here;
            file.tables = cfg.worker_extra.clone().unwrap_or_default();
            let config = cfg.work_dir.join(format!("{name}.toml"));
            file.write(&config)?;
            let process = ServiceProcess::spawn(
                name,
                bin,
                &config,
                cfg.worker_env.iter().map(|(k, v)| (k.as_str(), v.as_str())),
                &cfg.work_dir.join(format!("{name}.log")),
            )?;
            services.push(Service {
                process,
                health: Some(health),
            });
        }

        // Ingest refuses to start without a token; this one lives as long as the run.
        let ingest_token = format!(
            "loadtest-{}-{}",
            std::process::id(),
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.as_nanos())
                .unwrap_or_default()
        );
        let toml = format!(
            "[amqp]\nurl = {:?}\nprefix = {:?}\n[http]\nlisten = \"127.0.0.1:0\"\ntoken = {ingest_token:?}\n[telemetry]\nlisten = \"127.0.0.1:0\"\n[store]\npath = {:?}\n[uploads]\nenabled = false\n",
            cfg.amqp_url,
            cfg.prefix,
            cfg.work_dir.join("ingest.sqlite3").display().to_string()
        );
        let file = cfg.work_dir.join("imgfeat-ingest.toml");
        std::fs::write(&file, toml)?;
        let log = cfg.work_dir.join("imgfeat-ingest.log");
        let mut child = Command::new(&ingest_bin)
            .arg("--config")
            .arg(&file)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(std::fs::File::create(&log)?)
            .spawn()
            .with_context(|| format!("starting {}", ingest_bin.display()))?;
        // Ingest prints "listening on ADDR" on stdout once bound.
        let stdout = child.stdout.take().context("ingest stdout")?;
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if let Some(addr) = line.strip_prefix("listening on ") {
                    let _ = tx.send(addr.trim().to_string());
                }
            }
        });
        services.push(Service {
            process: ServiceProcess {
                name: "imgfeat-ingest".into(),
                child: KilledOnDrop(child),
                log,
            },
            health: None,
        });
        let mut fleet = Fleet {
            services,
            ingest_addr: String::new(),
            ingest_token,
        };
        match rx.recv_timeout(Duration::from_secs(60)) {
            Ok(addr) => fleet.ingest_addr = addr,
            Err(_) => {
                fleet.stop(Duration::from_secs(1));
                bail!("imgfeat-ingest did not report its address within 60 s");
            }
        }
        Ok(fleet)
    }

    /// Waits until every service answers `/readyz` with 200 (ingest: broker connected),
    /// at most `timeout`; fails only when a service exits.
    pub async fn wait_ready(&mut self, timeout: Duration) -> anyhow::Result<()> {
        let started = Instant::now();
        let mut targets: Vec<(String, String)> = self
            .services
            .iter()
            .map(|s| match &s.health {
                Some(h) => (s.process.name.clone(), h.clone()),
                None => (s.process.name.clone(), self.ingest_addr.clone()),
            })
            .collect();
        while !targets.is_empty() {
            if let Some(dead) = self.exited() {
                bail!("{dead} exited during start-up");
            }
            if started.elapsed() > timeout {
                // An older build may serve no /readyz: the warm-up, which needs codes
                // from the whole chain, is the real readiness check.
                let names: Vec<_> = targets.iter().map(|(n, _)| n.as_str()).collect();
                eprintln!(
                    "warning: no ready answer after {timeout:?} from {}; relying on the warm-up",
                    names.join(", ")
                );
                return Ok(());
            }
            let mut still = Vec::new();
            for (name, addr) in targets {
                let ok = matches!(
                    http::request(&addr, None, "GET", "/readyz", None, Duration::from_secs(2))
                        .await,
                    Ok((200, _))
                );
                if !ok {
                    still.push((name, addr));
                }
            }
            targets = still;
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
        Ok(())
    }

    /// The name of a service that has exited, if any.
    pub fn exited(&mut self) -> Option<String> {
        self.services.iter_mut().find_map(|s| {
            let p = &mut s.process;
            matches!(p.try_wait(), Ok(Some(_)))
                .then(|| format!("{} (log: {}):\n{}", p.name, p.log.display(), p.log_tail(20)))
        })
    }

    pub fn usage(&self) -> Vec<ServiceUsage> {
        self.services
            .iter()
            .map(|s| (s.process.name.clone(), s.process.id()))
            .chain(bystanders())
            .map(|(name, pid)| ServiceUsage {
                name,
                pid,
                cpu_seconds: procfs::process_cpu_of(pid).map(|(_, seconds)| seconds),
                peak_rss_mib: procfs::status_mib_of(pid, "VmHWM:"),
            })
            .collect()
    }

    /// SIGTERM to every service (graceful stop), SIGKILL after `grace`.
    pub fn stop(&mut self, grace: Duration) {
        for s in &self.services {
            let _ = Command::new("kill")
                .arg("-TERM")
                .arg(s.process.id().to_string())
                .status();
        }
        let deadline = Instant::now() + grace;
        for s in &mut self.services {
            let p = &mut s.process;
            loop {
                match p.try_wait() {
                    Ok(Some(_)) | Err(_) => break,
                    Ok(None) if Instant::now() >= deadline => {
                        let _ = p.kill();
                        let _ = p.wait();
                        break;
                    }
                    Ok(None) => std::thread::sleep(Duration::from_millis(50)),
                }
            }
        }
    }
}

/// Processes the run leans on without starting them: the broker (RabbitMQ's Erlang VM)
/// and this driver, which follows the code-stored events and polls the store. Their CPU
/// comes out of the same two cores as the fleet's, so the report shows it beside them.
fn bystanders() -> Vec<(String, u32)> {
    let brokers = procfs::processes_named("beam.smp")
        .into_iter()
        .map(|pid| (format!("broker (pid {pid})"), pid));
    std::iter::once(("loadtest (this)".to_string(), std::process::id()))
        .chain(brokers)
        .collect()
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use imgfeat_bench::Knobs;
    use imgfeat_pipeline::PipelineSettings;

    use super::knob_env;

    #[derive(serde::Deserialize, serde::Serialize, Default)]
    #[serde(default)]
    struct Root {
        pipeline: PipelineSettings,
    }

    /// The services must run what the embedded baseline ran: every knob, set away from
    /// its default, comes back from the variables handed to them.
    #[test]
    fn every_knob_reaches_the_services() {
        let mut s = PipelineSettings::default();
        s.decode.threads += 3;
        s.decode.max_queued += 3;
        s.models.detector_session.intra_threads += 3;
        s.models.extractor_session.intra_threads += 4;
        s.models.detector_session.spinning = !s.models.detector_session.spinning;
        s.models.extractor_session.spinning = !s.models.extractor_session.spinning;
        s.models.detector_workers += 2;
        s.models.extractor_workers += 3;
        s.models.shared_intra_threads += 2;
        s.detector.batch.max_batch += 1;
        s.extractor.batch.max_batch += 2;
        s.detector.batch.max_wait_ms += 1;
        s.extractor.batch.max_wait_ms += 2;
        s.detector.max_in_flight += 1;
        s.extractor.max_in_flight += 2;
        let knobs = Knobs::of(&s);
        let defaults = Knobs::of(&PipelineSettings::default());
        let [set, default] = [knobs, defaults].map(|k| serde_json::to_value(k).unwrap());
        for (name, value) in set.as_object().unwrap() {
            assert_ne!(Some(value), default.get(name), "{name} left at its default");
        }

        let root: Root = imgfeat_app::settings_from_vars(knob_env(&knobs).into_iter()).unwrap();
        assert_eq!(Knobs::of(&root.pipeline), knobs);
    }
}
