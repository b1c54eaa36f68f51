//! Writing a trained head as a model: its two weight files, the list of its training
//! photos, and a `linear_hash` manifest pinning all three by sha256. Nothing in them
//! depends on the time or the machine, so a seed reproduces every byte.

use std::path::Path;

use sha2::{Digest, Sha256};

use crate::TrainError;
use crate::train::LinearHead;

/// What goes into the manifest besides the weights.
#[derive(Debug, Clone)]
pub struct HeadRecord {
    pub version: String,
    pub method: &'static str,
    /// Training photos' file names, in training order.
    pub photos: Vec<String>,
    pub selection: String,
    pub views: usize,
    pub augmentations: String,
    pub seed: u64,
    pub detector: String,
    /// The detector's version codes whole images, not main-object crops.
    pub whole_image: bool,
    pub backbone: String,
}

/// sha256 of the photo list file's contents: the training set's hash.
pub fn photo_list(photos: &[String]) -> (String, String) {
    let text: String = photos.iter().map(|p| format!("{p}\n")).collect();
    let hash = hex::encode(Sha256::digest(text.as_bytes()));
    (text, hash)
}

/// Writes `out` (the manifest) and its files beside it, named after its stem.
pub fn write_head(out: &Path, head: &LinearHead, record: &HeadRecord) -> Result<(), TrainError> {
    let name = out
        .file_stem()
        .and_then(|s| s.to_str())
        .filter(|s| !s.is_empty())
        .ok_or_else(|| TrainError::Invalid(format!("{}: no file name", out.display())))?;
    let dir = out.parent().unwrap_or(Path::new("."));
    let dim = head.mean.len();
    let bits = head.bits;
    let projection = format!("{name}_projection_{dim}x{bits}_f32le.bin");
    let mean = format!("{name}_mean_{dim}_f32le.bin");
    let photos = format!("{name}_photos.txt");
    let projection_sha = write_f32le(&dir.join(&projection), &head.projection)?;
    let mean_sha = write_f32le(&dir.join(&mean), &head.mean)?;
    let (list, list_sha) = photo_list(&record.photos);
    let path = dir.join(&photos);
    std::fs::write(&path, list).map_err(TrainError::io(&path))?;

    let q = |s: &str| toml::Value::String(s.to_string()).to_string();
    let mut objectives = String::new();
    for (k, v) in head.objectives.as_map() {
        objectives.push_str(&format!("{k} = {v:.6}\n"));
    }
    let text = format!(
        "# A hash head learned by `imgfeat head train` ({method}): code = sign((embedding - mean) @ projection).\n\
         name = {name_q}\n\
         version = {version}\n\
         kind = \"linear_hash\"\n\
         bits = {bits}\n\
         dim = {dim}\n\
         method = {method_q}\n\
         # projection: dim x bits, row-major little-endian f32; mean: dim f32.\n\
         projection = {projection_q}\n\
         projection_sha256 = \"{projection_sha}\"\n\
         mean = {mean_q}\n\
         mean_sha256 = \"{mean_sha}\"\n\
         licence = \"Apache-2.0 (trained for this project)\"\n\
         provenance = {provenance}\n\
         \n\
         [training]\n\
         photos = {count}\n\
         photo_list = {photos_q}\n\
         photo_list_sha256 = \"{list_sha}\"\n\
         selection = {selection}\n\
         views = {views}\n\
         augmentations = {augmentations}\n\
         seed = {seed}\n\
         detector = {detector}\n\
         backbone = {backbone}\n\
         \n\
         [training.objectives]\n\
         {objectives}",
        method = record.method,
        name_q = q(name),
        version = q(&record.version),
        method_q = q(record.method),
        projection_q = q(&projection),
        mean_q = q(&mean),
        provenance = q(&format!(
            "imgfeat head train --method {} --bits {bits} --views {} --seed {}: {} of the photos in {photos} and their augmented views",
            record.method,
            record.views,
            record.seed,
            if record.whole_image {
                "the whole images"
            } else {
                "the main-object crops"
            }
        )),
        count = record.photos.len(),
        photos_q = q(&photos),
        selection = q(&record.selection),
        views = record.views,
        augmentations = q(&record.augmentations),
        seed = record.seed,
        detector = q(&record.detector),
        backbone = q(&record.backbone),
    );
    std::fs::write(out, text).map_err(TrainError::io(out))
}

/// Writes little-endian f32 values; returns the file's sha256.
fn write_f32le(path: &Path, values: &[f32]) -> Result<String, TrainError> {
    let bytes: Vec<u8> = values.iter().flat_map(|v| v.to_le_bytes()).collect();
    std::fs::write(path, &bytes).map_err(TrainError::io(path))?;
    Ok(hex::encode(Sha256::digest(&bytes)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::objectives::Objectives;
    use imgfeat_model::{HashHead, Manifest};

    #[test]
    fn the_written_head_loads_and_a_corrupted_weight_file_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let head = LinearHead {
            mean: vec![0.5; 4],
            projection: (0..32).map(|i| (i as f32 - 15.5) / 7.0).collect(),
            bits: 8,
            objectives: Objectives {
                quantization: 0.25,
                imbalance: 0.0,
                view_flips: 0.1,
                distinct_flips: 0.5,
            },
        };
        let record = HeadRecord {
            version: "1".into(),
            method: "itq",
            photos: vec!["a.jpg".into(), "b \"q\".jpg".into()],
            selection: "all".into(),
            views: 2,
            augmentations: "jpeg".into(),
            seed: 9,
            detector: "d@1".into(),
            whole_image: false,
            backbone: "b@1".into(),
        };
        let out = dir.path().join("tiny_itq8.toml");
        write_head(&out, &head, &record).unwrap();
        let manifest = Manifest::load(&out).unwrap();
        let loaded = HashHead::load(&manifest).unwrap();
        assert_eq!((loaded.bits(), loaded.dim()), (8, 4));
        // The head sums in its own order: equal up to float rounding.
        let got = loaded.project(&[1.0, 0.0, 0.0, 0.0]).unwrap()[0];
        let want = 0.5 * head.projection[0]
            - 0.5 * (head.projection[8] + head.projection[16] + head.projection[24]);
        assert!((got - want).abs() < 1e-5, "{got} vs {want}");
        let weights = dir.path().join("tiny_itq8_projection_4x8_f32le.bin");
        let mut bytes = std::fs::read(&weights).unwrap();
        bytes[5] ^= 1;
        std::fs::write(&weights, bytes).unwrap();
        let err = HashHead::load(&manifest).err().unwrap().to_string();
        assert!(err.contains("wrong or corrupt model file"), "{err}");
    }
}
