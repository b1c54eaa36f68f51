//! Model manifests: what a model file is, where it came from, and how to feed it. A
//! manifest pins its files by sha256, so a wrong or corrupt file is refused at load
//! instead of producing quietly wrong codes under a trusted model version.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use imgfeat_core::ModelVersion;
use serde::Deserialize;
use sha2::{Digest, Sha256};

use crate::ModelError;

// No `deny_unknown_fields` here: serde cannot combine it with `flatten`. The kind's
// own struct refuses the leftovers instead, so a misspelt key is still an error.
#[derive(Debug, Clone, Deserialize)]
pub struct Manifest {
    pub name: String,
    pub version: String,
    pub licence: String,
    pub provenance: String,
    #[serde(flatten)]
    pub kind: ManifestKind,
    /// The folder the manifest was read from; its file names are relative to it.
    #[serde(skip)]
    pub dir: PathBuf,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum ManifestKind {
    Detector(OnnxSpec),
    Backbone(OnnxSpec),
    Simhash(SimHashSpec),
    /// A learned linear head (`imgfeat head train`): the same sign-of-projection code
    /// as SimHash, with a trained projection and the record of how it was trained.
    LinearHash(LinearHashSpec),
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OnnxSpec {
    pub file: String,
    pub sha256: String,
    pub input: InputSpec,
    /// Role (e.g. `boxes`, `scores`, `embedding`) -> output name in the graph.
    pub outputs: BTreeMap<String, String>,
    pub labels: Option<LabelsSpec>,
    pub thresholds: Option<ThresholdSpec>,
    /// A detector's choice of what the code is computed from. Part of the manifest, so
    /// of the model version's name: codes of the main object and of the whole image are
    /// never stored under one version.
    #[serde(default)]
    pub code_from: CodeFrom,
    /// CPU features (Linux's flag names, any one suffices) without which the model's
    /// kernels compute other numbers, e.g. `avx512_vnni` for 8-bit weights: loading it
    /// elsewhere is refused rather than storing wrong codes under its version.
    #[serde(default)]
    pub requires_cpu: Vec<String>,
    /// Runtimes other than ONNX Runtime f32 (`openvino-f32`) whose results are stored
    /// under this version because they are the same, bit for bit, on the golden photos
    /// (a test backs each entry). Any other runtime stores under `name@v.RUNTIME`.
    #[serde(default)]
    pub same_version_on: Vec<String>,
}

/// What a detector's version hashes: the main object's crop (the reference design,
/// for "which products look like this one") or the whole image, whichever objects the
/// detector finds (near-duplicate detection: crops, flips and rotations that change
/// which object wins no longer change the code's input).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CodeFrom {
    #[default]
    MainObject,
    WholeImage,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct InputSpec {
    pub name: String,
    pub layout: String,
    pub width: u32,
    pub height: u32,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LabelsSpec {
    pub file: String,
    /// The score column that means "no object", if the model has one.
    pub background: Option<usize>,
}

#[derive(Debug, Clone, Copy, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ThresholdSpec {
    pub score: f32,
    pub nms_iou: f32,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SimHashSpec {
    pub bits: u32,
    pub dim: u32,
    pub projection: String,
    pub projection_sha256: String,
    pub mean: String,
    pub mean_sha256: String,
}

/// A learned head: weights as for SimHash, plus how they were learned.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LinearHashSpec {
    pub bits: u32,
    pub dim: u32,
    /// `itq` or `deepbit`.
    pub method: String,
    pub projection: String,
    pub projection_sha256: String,
    pub mean: String,
    pub mean_sha256: String,
    pub training: TrainingSpec,
}

/// What a learned head was trained on, so a run can be repeated and audited.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TrainingSpec {
    /// Number of training photos.
    pub photos: u32,
    /// The file naming them, one a line; its sha256 is the training set's hash.
    pub photo_list: String,
    pub photo_list_sha256: String,
    /// How the photos were chosen (e.g. the split rule).
    pub selection: String,
    /// Augmented views per photo, and what they were.
    pub views: u32,
    pub augmentations: String,
    pub seed: u64,
    /// The model versions the embeddings came from.
    pub detector: String,
    pub backbone: String,
    /// The training objectives' final values (lower is better for each).
    #[serde(default)]
    pub objectives: BTreeMap<String, f64>,
}

/// The two weight files of a sign-of-projection head, whichever kind it is.
#[derive(Debug, Clone, Copy)]
pub struct HeadWeights<'a> {
    pub bits: u32,
    pub dim: u32,
    pub projection: &'a str,
    pub projection_sha256: &'a str,
    pub mean: &'a str,
    pub mean_sha256: &'a str,
}

impl ManifestKind {
    /// The weights of a hash head, `None` for the ONNX models.
    pub fn head_weights(&self) -> Option<HeadWeights<'_>> {
        match self {
            ManifestKind::Simhash(s) => Some(HeadWeights {
                bits: s.bits,
                dim: s.dim,
                projection: &s.projection,
                projection_sha256: &s.projection_sha256,
                mean: &s.mean,
                mean_sha256: &s.mean_sha256,
            }),
            ManifestKind::LinearHash(s) => Some(HeadWeights {
                bits: s.bits,
                dim: s.dim,
                projection: &s.projection,
                projection_sha256: &s.projection_sha256,
                mean: &s.mean,
                mean_sha256: &s.mean_sha256,
            }),
            ManifestKind::Detector(_) | ManifestKind::Backbone(_) => None,
        }
    }
}

impl Manifest {
    pub fn load(path: &Path) -> Result<Manifest, ModelError> {
        let text = std::fs::read_to_string(path).map_err(|source| ModelError::Io {
            path: path.to_path_buf(),
            source,
        })?;
        let mut manifest: Manifest = toml::from_str(&text).map_err(|e| ModelError::Manifest {
            path: path.to_path_buf(),
            message: e.to_string(),
        })?;
        manifest.dir = path
            .parent()
            .map(Path::to_path_buf)
            .unwrap_or_else(|| PathBuf::from("."));
        manifest.validate(path)?;
        Ok(manifest)
    }

    fn validate(&self, path: &Path) -> Result<(), ModelError> {
        let bad = |message: String| ModelError::Manifest {
            path: path.to_path_buf(),
            message,
        };
        self.version()
            .map_err(|e| bad(format!("name/version: {e}")))?;
        match &self.kind {
            ManifestKind::Detector(spec) | ManifestKind::Backbone(spec) => {
                if spec.input.layout != "NHWC" {
                    return Err(bad(format!(
                        "input layout {:?} is not supported (only NHWC)",
                        spec.input.layout
                    )));
                }
                if spec.input.width == 0 || spec.input.height == 0 {
                    return Err(bad("input width and height must be positive".into()));
                }
                let roles: &[&str] = match self.kind {
                    ManifestKind::Detector(_) => &["boxes", "scores"],
                    _ => &["embedding"],
                };
                for role in roles {
                    if !spec.outputs.contains_key(*role) {
                        return Err(bad(format!("outputs.{role} is missing")));
                    }
                }
                if matches!(self.kind, ManifestKind::Detector(_)) && spec.labels.is_none() {
                    return Err(bad("a detector needs a labels file".into()));
                }
                if matches!(self.kind, ManifestKind::Backbone(_))
                    && spec.code_from != CodeFrom::MainObject
                {
                    return Err(bad("code_from is a detector's setting".into()));
                }
            }
            ManifestKind::Simhash(_) | ManifestKind::LinearHash(_) => {
                if let Some(w) = self.kind.head_weights()
                    && (w.bits == 0 || w.bits > 4096 || w.dim == 0)
                {
                    return Err(bad("bits must be 1..=4096 and dim positive".into()));
                }
            }
        }
        Ok(())
    }

    pub fn version(&self) -> Result<ModelVersion, imgfeat_core::ids::InvalidModelVersion> {
        ModelVersion::of_model(&self.name, &self.version)
    }

    /// [`Self::version`] as a model error naming the manifest.
    pub fn model_version(&self) -> Result<ModelVersion, ModelError> {
        self.version().map_err(|e| ModelError::Manifest {
            path: self.dir.clone(),
            message: e.to_string(),
        })
    }

    /// Resolves a file named by the manifest and checks its sha256.
    pub fn verified_file(&self, file: &str, sha256: &str) -> Result<PathBuf, ModelError> {
        let path = self.dir.join(file);
        let bytes = std::fs::read(&path).map_err(|source| ModelError::Io {
            path: path.clone(),
            source,
        })?;
        let actual = hex::encode(Sha256::digest(&bytes));
        if !actual.eq_ignore_ascii_case(sha256) {
            return Err(ModelError::HashMismatch {
                path,
                expected: sha256.to_string(),
                actual,
            });
        }
        Ok(path)
    }

    /// Reads a labels file: one label a line, index = class id.
    pub fn read_labels(&self, spec: &LabelsSpec) -> Result<Vec<String>, ModelError> {
        let path = self.dir.join(&spec.file);
        let text = std::fs::read_to_string(&path).map_err(|source| ModelError::Io {
            path: path.clone(),
            source,
        })?;
        Ok(text.lines().map(|l| l.trim().to_string()).collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn models_dir() -> PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../../models")
    }

    /// Every manifest in `models/`, whatever its kind: it parses, and each file it
    /// names has the hash it states.
    #[test]
    fn shipped_manifests_parse_and_their_files_match() {
        let mut seen = Vec::new();
        for entry in std::fs::read_dir(models_dir()).unwrap() {
            let path = entry.unwrap().path();
            if path.extension().is_none_or(|e| e != "toml") {
                continue;
            }
            let m = Manifest::load(&path).unwrap();
            match &m.kind {
                ManifestKind::Detector(s) | ManifestKind::Backbone(s) => {
                    m.verified_file(&s.file, &s.sha256).unwrap();
                }
                ManifestKind::Simhash(_) | ManifestKind::LinearHash(_) => {
                    let w = m.kind.head_weights().unwrap();
                    m.verified_file(w.projection, w.projection_sha256).unwrap();
                    m.verified_file(w.mean, w.mean_sha256).unwrap();
                }
            }
            let code_from = match &m.kind {
                ManifestKind::Detector(s) => Some(s.code_from),
                _ => None,
            };
            seen.push((m.name.clone(), code_from));
        }
        for (name, code_from) in [
            ("ssd_mobilenetv2_oidv4_24cls", Some(CodeFrom::MainObject)),
            (
                "ssd_mobilenetv2_oidv4_24cls_whole_image",
                Some(CodeFrom::WholeImage),
            ),
            ("nanodet_m_416_coco", Some(CodeFrom::MainObject)),
            ("efficientnet_lite0_imagenet", None),
            ("simhash64_effnet_lite0", None),
            ("itq64_effnet_lite0", None),
            ("deepbit128_whole_effnet_lite0", None),
        ] {
            assert!(
                seen.contains(&(name.to_string(), code_from)),
                "{name} {code_from:?} not among {seen:?}"
            );
        }
    }

    #[test]
    fn a_wrong_hash_is_a_clear_error() {
        let m = Manifest::load(&models_dir().join("simhash64_effnet_lite0.toml")).unwrap();
        let err = m
            .verified_file("labels_coco80.txt", &"0".repeat(64))
            .unwrap_err()
            .to_string();
        assert!(err.contains("wrong or corrupt model file"), "{err}");
        assert!(err.contains("bd17f1ee"), "{err}");
    }

    #[test]
    fn unknown_fields_and_bad_layouts_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("m.toml");
        let base =
            std::fs::read_to_string(models_dir().join("efficientnet_lite0_imagenet.toml")).unwrap();
        std::fs::write(&p, base.replace("layout = \"NHWC\"", "layout = \"NCHW\"")).unwrap();
        let err = Manifest::load(&p).unwrap_err().to_string();
        assert!(err.contains("only NHWC"), "{err}");
        std::fs::write(&p, format!("colour = 1\n{base}")).unwrap();
        let err = Manifest::load(&p).unwrap_err().to_string();
        assert!(err.contains("colour"), "{err}");
        // What a code is computed from is the detector's to say, in its own words.
        let top = |extra: &str| base.replacen("[input]", &format!("{extra}\n\n[input]"), 1);
        std::fs::write(&p, top("code_from = \"whole_image\"")).unwrap();
        let err = Manifest::load(&p).unwrap_err().to_string();
        assert!(err.contains("detector's setting"), "{err}");
        std::fs::write(&p, top("code_from = \"everything\"")).unwrap();
        let err = Manifest::load(&p).unwrap_err().to_string();
        assert!(err.contains("everything"), "{err}");
    }
}
