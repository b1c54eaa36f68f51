//! The progress bar of `imgfeat index`, fed by pipeline events.

use imgfeat_pipeline::{Event, EventSink};
use indicatif::{ProgressBar, ProgressStyle};

/// A bar drawn with `template`, or a hidden one (`--quiet`, `--json`).
fn bar(visible: bool, template: &str) -> ProgressBar {
    let bar = if visible {
        ProgressBar::new(0)
    } else {
        ProgressBar::hidden()
    };
    bar.set_style(
        ProgressStyle::with_template(template).unwrap_or_else(|_| ProgressStyle::default_bar()),
    );
    bar
}

pub struct ProgressSink {
    bar: ProgressBar,
}

impl ProgressSink {
    pub fn new(visible: bool) -> Self {
        Self {
            bar: bar(
                visible,
                "{spinner} [{elapsed_precise}] {wide_bar} {pos}/{len} images, {per_sec}, ETA {eta}",
            ),
        }
    }

    pub fn finish(&self) {
        self.bar.finish_and_clear();
    }
}

impl EventSink for ProgressSink {
    fn emit(&self, event: &Event) {
        match event {
            Event::Planned { images } => self.bar.set_length(*images),
            Event::Completed {
                worker, outcome, ..
            } => {
                let done_here = match worker {
                    imgfeat_pipeline::Worker::Extractor => outcome.is_final(),
                    // A detector success goes on to the extractor; its failures end here.
                    imgfeat_pipeline::Worker::Detector => {
                        outcome.is_final() && *outcome != imgfeat_pipeline::Outcome::Ok
                    }
                };
                if done_here {
                    self.bar.inc(1);
                }
            }
            _ => {}
        }
    }
}

/// The bar of `imgfeat head train`: one phase at a time, with the loss when the phase
/// has one.
#[cfg(feature = "train")]
pub struct TrainBar {
    bar: ProgressBar,
}

#[cfg(feature = "train")]
impl TrainBar {
    pub fn new(visible: bool) -> Self {
        Self {
            bar: bar(
                visible,
                "{spinner} [{elapsed_precise}] {prefix} {wide_bar} {pos}/{len} {msg}",
            ),
        }
    }
}

#[cfg(feature = "train")]
impl imgfeat_train::Progress for TrainBar {
    fn start(&self, phase: &str, total: u64) {
        self.bar.reset();
        self.bar.set_prefix(phase.to_string());
        self.bar.set_length(total);
        self.bar.set_message("");
    }

    fn advance(&self, done: u64, loss: Option<f64>) {
        self.bar.set_position(done);
        if let Some(loss) = loss {
            self.bar.set_message(format!("loss {loss:.4}"));
        }
    }

    fn finish(&self) {
        self.bar.finish_and_clear();
    }
}
