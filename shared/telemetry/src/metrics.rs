//! The mapping from pipeline events to the metric families of `families.rs`.

use std::sync::Arc;

use imgfeat_pipeline::{Event, EventSink};
use prometheus::{Encoder, Registry, TextEncoder};

use crate::families::{Inner, StageModel, build};

/// The metrics of one service; cheap to clone (all clones share one registry).
#[derive(Clone)]
pub struct Telemetry {
    inner: Arc<Inner>,
}

impl Telemetry {
    /// A fresh registry (not the process-global one, so tests can hold several) with
    /// every `imgfeat_*` family, `imgfeat_build_info{service,version}` and, on Linux,
    /// the `process_*` collector.
    pub fn new(service: &str) -> Self {
        let inner = build(service);
        Self {
            inner: Arc::new(inner),
        }
    }

    /// The sink to add to the pipeline's `Events`: every event becomes metrics.
    pub fn events(&self) -> Arc<dyn EventSink> {
        Arc::new(self.clone())
    }

    /// The registry, for a service that wants to register families of its own.
    pub fn registry(&self) -> &Registry {
        &self.inner.registry
    }

    /// `imgfeat_model_info{stage,name,version} 1`; the stage's previous model, if it
    /// had another one, is removed. The stage's batches are labelled `name@version`.
    pub fn set_model_info(&self, stage: &str, name: &str, version: &str) {
        self.set_model(stage, name, version, &format!("{name}@{version}"));
    }

    fn set_model(&self, stage: &str, name: &str, version: &str, batch_label: &str) {
        let mut models = self
            .inner
            .models
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        let new = StageModel {
            name: name.to_owned(),
            version: version.to_owned(),
            batch_label: batch_label.to_owned(),
        };
        if let Some(old) = models.insert(stage.to_owned(), new)
            && (old.name != name || old.version != version)
        {
            let _ = self
                .inner
                .model_info
                .remove_label_values(&[stage, &old.name, &old.version]);
        }
        self.inner
            .model_info
            .with_label_values(&[stage, name, version])
            .set(1);
    }

    /// `imgfeat_model_info` from a model version such as `backbone@1+head@2`: the
    /// parts' names and versions each joined by `+`, so a composite version stays one
    /// series per stage (one `set_model_info` per part would replace the previous part).
    /// The stage's batches are labelled with the version itself, as serve's are.
    pub fn set_model_version(&self, stage: &str, version: &imgfeat_core::ModelVersion) {
        let (names, versions): (Vec<&str>, Vec<&str>) = version
            .as_str()
            .split('+')
            .map(|part| part.split_once('@').unwrap_or((part, "")))
            .unzip();
        self.set_model(
            stage,
            &names.join("+"),
            &versions.join("+"),
            version.as_str(),
        );
    }

    /// The `model` label of `stage`'s batches: its model version, or "" before the
    /// stage has announced one.
    fn batch_model(&self, stage: &str) -> String {
        self.inner
            .models
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .get(stage)
            .map(|m| m.batch_label.clone())
            .unwrap_or_default()
    }

    /// `imgfeat_queue_messages{queue}`: ready messages in a queue (a DLQ is a queue).
    pub fn set_queue_depth(&self, queue: &str, messages: u64) {
        self.inner
            .queue_messages
            .with_label_values(&[queue])
            .set(saturating_i64(messages));
    }

    /// Forgets a queue's depth (the queue is gone, or the broker cannot be asked): a gap
    /// in the graph rather than a stale number.
    pub fn clear_queue_depth(&self, queue: &str) {
        let _ = self.inner.queue_messages.remove_label_values(&[queue]);
    }

    /// `imgfeat_backfill_done{backfill_job}`, `imgfeat_backfill_total{backfill_job}` and
    /// `imgfeat_backfill_waiting{backfill_job}` of a backfill job (the label is the job's
    /// ID, never an image ID). Not `job`: Prometheus sets `job` to the scrape job and
    /// would rename ours `exported_job`.
    pub fn set_backfill(&self, job: &str, done: u64, total: u64, waiting: bool) {
        self.inner
            .backfill_waiting
            .with_label_values(&[job])
            .set(i64::from(waiting));
        self.inner
            .backfill_done
            .with_label_values(&[job])
            .set(saturating_i64(done));
        self.inner
            .backfill_total
            .with_label_values(&[job])
            .set(saturating_i64(total));
    }

    /// `imgfeat_ready{check}` from one readiness report.
    pub fn set_ready(&self, report: &crate::ReadinessReport) {
        for (check, status) in &report.checks {
            self.inner
                .ready
                .with_label_values(&[check])
                .set(i64::from(*status == crate::CheckStatus::Ok));
        }
    }

    /// Drops a finished or cancelled job's series, so job IDs do not pile up.
    pub fn remove_backfill(&self, job: &str) {
        let _ = self.inner.backfill_done.remove_label_values(&[job]);
        let _ = self.inner.backfill_total.remove_label_values(&[job]);
        let _ = self.inner.backfill_waiting.remove_label_values(&[job]);
    }

    /// The Prometheus text exposition of every family.
    pub fn render(&self) -> String {
        let families = self.inner.registry.gather();
        let mut buf = Vec::new();
        if let Err(e) = TextEncoder::new().encode(&families, &mut buf) {
            tracing::warn!(error = %e, "encoding metrics");
        }
        String::from_utf8(buf).unwrap_or_default()
    }

    fn record(&self, event: &Event) {
        let m = &self.inner;
        match *event {
            Event::Planned { images } => m.planned.inc_by(images),
            Event::PhaseTime {
                worker,
                phase,
                seconds,
            } => {
                if let Some(s) = seconds_value(seconds) {
                    m.phase
                        .with_label_values(&[worker.as_str(), phase.as_str()])
                        .observe(s);
                }
            }
            Event::BatchStarted {
                worker,
                size,
                waited_seconds,
            } => {
                let labels = [
                    self.batch_model(worker.as_str()),
                    worker.as_str().to_owned(),
                ];
                m.batch_size.with_label_values(&labels).observe(size as f64);
                if let Some(s) = seconds_value(waited_seconds) {
                    m.batch_wait.with_label_values(&labels).observe(s);
                }
            }
            Event::Completed {
                worker,
                outcome,
                latency_seconds,
            } => {
                let reason = outcome.reason().map_or("none", |k| k.as_str());
                m.images
                    .with_label_values(&[worker.as_str(), outcome.as_str(), reason])
                    .inc();
                // A retried image is not done: its end-to-end time is observed when it
                // finally leaves the worker.
                if outcome.is_final()
                    && let Some(s) = latency_seconds.and_then(seconds_value)
                {
                    m.end_to_end
                        .with_label_values(&[worker.as_str()])
                        .observe(s);
                }
            }
            Event::InFlight { worker, delta } => {
                m.in_flight.with_label_values(&[worker.as_str()]).add(delta);
            }
        }
    }
}

impl EventSink for Telemetry {
    fn emit(&self, event: &Event) {
        self.record(event);
    }
}

/// A duration worth observing: finite, and never below zero (clock steps).
fn seconds_value(s: f64) -> Option<f64> {
    s.is_finite().then_some(s.max(0.0))
}

fn saturating_i64(v: u64) -> i64 {
    i64::try_from(v).unwrap_or(i64::MAX)
}

#[cfg(test)]
mod tests {
    use imgfeat_core::FailureKind;
    use imgfeat_pipeline::{Outcome, Phase, Worker};

    use crate::families::METRIC_NAMES;

    use super::*;

    fn count(t: &Telemetry, stage: &str, outcome: &str, reason: &str) -> u64 {
        t.inner
            .images
            .with_label_values(&[stage, outcome, reason])
            .get()
    }

    fn completed(worker: Worker, outcome: Outcome, latency: Option<f64>) -> Event {
        Event::Completed {
            worker,
            outcome,
            latency_seconds: latency,
        }
    }

    #[test]
    fn a_composite_model_version_is_one_series_per_stage() {
        let t = Telemetry::new("test");
        let v = imgfeat_core::ModelVersion::new("effnet@1+simhash64@2").unwrap();
        t.set_model_version("extract", &v);
        let out = t.render();
        assert!(
            out.contains(
                r#"imgfeat_model_info{name="effnet+simhash64",stage="extract",version="1+2"} 1"#
            ),
            "{out}"
        );
        assert_eq!(out.matches("imgfeat_model_info{").count(), 1, "{out}");
    }

    #[test]
    fn completed_events_count_by_stage_outcome_and_reason() {
        let t = Telemetry::new("test");
        let sink = t.events();
        let d = Worker::Detector;
        let x = Worker::Extractor;
        for e in [
            completed(d, Outcome::Ok, Some(0.2)),
            completed(d, Outcome::Ok, Some(0.4)),
            completed(d, Outcome::Ok, None),
            completed(d, Outcome::Skipped, Some(0.1)),
            completed(d, Outcome::Failed(FailureKind::Corrupt), Some(0.1)),
            completed(d, Outcome::Retried(FailureKind::Unavailable), Some(0.1)),
            completed(d, Outcome::Retried(FailureKind::Unavailable), Some(1.1)),
            completed(
                d,
                Outcome::DeadLettered(FailureKind::Unavailable),
                Some(9.0),
            ),
            completed(x, Outcome::Ok, Some(0.7)),
        ] {
            sink.emit(&e);
        }
        assert_eq!(count(&t, "detect", "ok", "none"), 3);
        assert_eq!(count(&t, "detect", "skipped", "none"), 1);
        assert_eq!(count(&t, "detect", "failed", "corrupt"), 1);
        assert_eq!(count(&t, "detect", "retried", "unavailable"), 2);
        assert_eq!(count(&t, "detect", "dead_lettered", "unavailable"), 1);
        assert_eq!(count(&t, "extract", "ok", "none"), 1);
        assert_eq!(count(&t, "extract", "failed", "corrupt"), 0);

        // End-to-end: final outcomes with a known latency only (not the 2 retries, not
        // the ok without latency).
        let e2e = t.inner.end_to_end.with_label_values(&["detect"]);
        assert_eq!(e2e.get_sample_count(), 5);
        assert!((e2e.get_sample_sum() - (0.2 + 0.4 + 0.1 + 0.1 + 9.0)).abs() < 1e-9);
        assert_eq!(
            t.inner
                .end_to_end
                .with_label_values(&["extract"])
                .get_sample_count(),
            1
        );
    }

    #[test]
    fn phases_batches_in_flight_and_planned_are_recorded() {
        let t = Telemetry::new("test");
        let sink = t.events();
        let phase = |worker, phase, seconds| Event::PhaseTime {
            worker,
            phase,
            seconds,
        };
        for e in [
            Event::Planned { images: 13 },
            phase(Worker::Detector, Phase::Fetch, 0.001),
            phase(Worker::Detector, Phase::Fetch, 0.003),
            phase(Worker::Detector, Phase::Inference, 0.05),
            phase(Worker::Extractor, Phase::Persist, 0.002),
            phase(Worker::Extractor, Phase::Persist, f64::NAN),
            phase(Worker::Extractor, Phase::Persist, -1.0),
            Event::BatchStarted {
                worker: Worker::Detector,
                size: 8,
                waited_seconds: 0.01,
            },
            Event::BatchStarted {
                worker: Worker::Detector,
                size: 5,
                waited_seconds: 0.02,
            },
            Event::InFlight {
                worker: Worker::Extractor,
                delta: 7,
            },
            Event::InFlight {
                worker: Worker::Extractor,
                delta: -3,
            },
        ] {
            sink.emit(&e);
        }
        assert_eq!(t.inner.planned.get(), 13);
        let h = |stage: &str, p: &str| t.inner.phase.with_label_values(&[stage, p]);
        assert_eq!(h("detect", "fetch").get_sample_count(), 2);
        assert!((h("detect", "fetch").get_sample_sum() - 0.004).abs() < 1e-12);
        assert_eq!(h("detect", "inference").get_sample_count(), 1);
        assert_eq!(h("detect", "decode").get_sample_count(), 0);
        // NaN is dropped, a negative time counts as 0.
        assert_eq!(h("extract", "persist").get_sample_count(), 2);
        assert!((h("extract", "persist").get_sample_sum() - 0.002).abs() < 1e-12);

        let sizes = t.inner.batch_size.with_label_values(&["", "detect"]);
        assert_eq!(sizes.get_sample_count(), 2);
        assert_eq!(sizes.get_sample_sum(), 13.0);
        let waits = t.inner.batch_wait.with_label_values(&["", "detect"]);
        assert_eq!(waits.get_sample_count(), 2);
        assert_eq!(t.inner.in_flight.with_label_values(&["extract"]).get(), 4);
        assert_eq!(t.inner.in_flight.with_label_values(&["detect"]).get(), 0);
    }

    #[test]
    fn rendered_text_has_every_family_and_no_image_ids() {
        let t = Telemetry::new("detector");
        let sink = t.events();
        sink.emit(&completed(Worker::Detector, Outcome::Ok, Some(0.5)));
        sink.emit(&Event::PhaseTime {
            worker: Worker::Detector,
            phase: Phase::Decode,
            seconds: 0.01,
        });
        t.set_model_info("detect", "ssd_mobilenetv2_oidv4_24cls", "ssd-v1");
        sink.emit(&Event::BatchStarted {
            worker: Worker::Detector,
            size: 64,
            waited_seconds: 0.0,
        });
        sink.emit(&Event::Planned { images: 1 });
        t.set_queue_depth("imgfeat.detect", 12);
        t.set_backfill("job-1", 5, 10, false);
        t.set_ready(&crate::ReadinessReport {
            checks: vec![
                ("broker".into(), crate::CheckStatus::Ok),
                ("store".into(), crate::CheckStatus::Failed("down".into())),
            ],
        });
        let text = t.render();
        assert!(text.contains("imgfeat_ready{check=\"broker\"} 1"), "{text}");
        assert!(text.contains("imgfeat_ready{check=\"store\"} 0"), "{text}");
        for name in METRIC_NAMES {
            assert!(
                text.contains(&format!("# TYPE {name} ")),
                "{name} missing from\n{text}"
            );
        }
        assert!(text.contains(&format!(
            "imgfeat_build_info{{service=\"detector\",version=\"{}\"}} 1",
            env!("CARGO_PKG_VERSION")
        )));
        let model = "model=\"ssd_mobilenetv2_oidv4_24cls@ssd-v1\",stage=\"detect\"";
        assert!(text.contains(&format!("imgfeat_batch_size_bucket{{{model},le=\"64\"}} 1")));
        assert!(text.contains(&format!("imgfeat_batch_size_bucket{{{model},le=\"48\"}} 0")));
        assert!(text.contains("imgfeat_queue_messages{queue=\"imgfeat.detect\"} 12"));
        assert!(text.contains("imgfeat_backfill_done{backfill_job=\"job-1\"} 5"));
        assert!(text.contains("imgfeat_backfill_total{backfill_job=\"job-1\"} 10"));
        #[cfg(target_os = "linux")]
        assert!(text.contains("process_resident_memory_bytes "), "{text}");
        let labels: Vec<&str> = text
            .lines()
            .filter(|l| !l.starts_with('#'))
            .filter_map(|l| l.split_once('{').map(|(_, rest)| rest))
            .collect();
        assert!(
            labels.iter().all(|l| !l.contains("image")),
            "no image label"
        );
    }

    #[test]
    fn gauges_replace_and_forget_their_series() {
        let t = Telemetry::new("test");
        t.set_model_info("detect", "ssd", "v1");
        t.set_model_info("extract", "effnet", "e1");
        t.set_model_info("detect", "ssd", "v2");
        let text = t.render();
        assert!(!text.contains("version=\"v1\""), "{text}");
        assert!(
            text.contains("imgfeat_model_info{name=\"ssd\",stage=\"detect\",version=\"v2\"} 1")
        );
        assert!(
            text.contains("imgfeat_model_info{name=\"effnet\",stage=\"extract\",version=\"e1\"} 1")
        );

        t.set_queue_depth("q", u64::MAX);
        assert_eq!(
            t.inner.queue_messages.with_label_values(&["q"]).get(),
            i64::MAX
        );
        t.clear_queue_depth("q");
        t.set_backfill("j", 1, 2, true);
        t.remove_backfill("j");
        let text = t.render();
        assert!(!text.contains("queue=\"q\""));
        assert!(!text.contains("backfill_job=\"j\""));
    }

    #[test]
    fn registries_are_independent() {
        let a = Telemetry::new("a");
        let b = Telemetry::new("b");
        a.events()
            .emit(&completed(Worker::Detector, Outcome::Ok, None));
        assert_eq!(count(&a, "detect", "ok", "none"), 1);
        assert_eq!(count(&b, "detect", "ok", "none"), 0);
    }
}
