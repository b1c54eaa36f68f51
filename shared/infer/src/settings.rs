//! What the engine needs to know, whichever service runs it: each service reads its own
//! section (`[serve]`, `[search]`) and builds this, so their keys stay theirs.

use imgfeat_pipeline::PipelineSettings;

#[derive(Debug, Clone)]
pub struct EngineSettings {
    /// Models, decoding and the two batch policies: the workers' own, so the codes are
    /// the ones `imgfeat index` stores.
    pub pipeline: PipelineSettings,
    /// Images admitted at once, queued or in flight, across every model version; the
    /// next is refused at once.
    pub max_queued: usize,
    /// The setting `max_queued` comes from (`serve.max_queued`), named in refusals.
    pub max_queued_key: &'static str,
    /// How long an image may take from admission to its answer; 0: no deadline.
    pub deadline_ms: u64,
    /// Detector manifests served side by side, each with its own sessions and batchers;
    /// the first is the default. Empty: `pipeline.models.detector` alone.
    pub detectors: Vec<String>,
}

impl EngineSettings {
    /// One version, the pipeline's own, with `max_queued` places.
    pub fn of_pipeline(
        pipeline: PipelineSettings,
        max_queued: usize,
        max_queued_key: &'static str,
    ) -> Self {
        Self {
            pipeline,
            max_queued,
            max_queued_key,
            deadline_ms: 0,
            detectors: Vec::new(),
        }
    }

    /// The detector manifests to load, the default first.
    pub fn detector_manifests(&self) -> Vec<String> {
        if self.detectors.is_empty() {
            vec![self.pipeline.models.detector.clone()]
        } else {
            self.detectors.clone()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_default_detector_is_the_pipelines() {
        let mut s = EngineSettings::of_pipeline(PipelineSettings::default(), 4, "k");
        assert_eq!(
            s.detector_manifests(),
            vec![s.pipeline.models.detector.clone()]
        );
        s.detectors = vec!["b.toml".into(), "a.toml".into()];
        assert_eq!(s.detector_manifests(), vec!["b.toml", "a.toml"]);
    }
}
