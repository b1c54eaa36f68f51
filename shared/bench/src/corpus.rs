//! The benchmark corpus: seeded uploads made from the fixture photos by the evaluation's
//! transforms (`imgfeat_eval::transform::plan_upload`: re-framed, 640-1024 px on the long
//! side, JPEG q85), written as files named by their image ID (`{id}.jpg`), so the same
//! folder feeds `imgfeat index` and a `{id}.jpg` path template of the fleet.
//!
//! Every image depends only on (seed, index): the same seed gives the same bytes, and a
//! folder whose manifest matches is reused instead of regenerated.

use std::path::{Path, PathBuf};

use image::RgbImage;
use imgfeat_eval::transform::{apply, plan_upload};
use imgfeat_imaging::{DecodeLimits, decode_rgb};
use rayon::prelude::*;
use serde::{Deserialize, Serialize};

use crate::BenchError;

/// Bumped whenever the transforms change, so old folders are regenerated.
const GENERATOR: &str = "imgfeat-bench corpus v3";
const MANIFEST: &str = "corpus.json";
/// ID of the first image; image `i` is `{FIRST_ID + i}.jpg`.
pub const FIRST_ID: u64 = 1;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CorpusFile {
    pub id: u64,
    pub name: String,
    /// Which fixture photo it was made from.
    pub source: String,
    pub width: u32,
    pub height: u32,
    pub bytes: u64,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Corpus {
    pub generator: String,
    pub seed: u64,
    pub files: Vec<CorpusFile>,
    /// Where it is (not part of the identity of the corpus).
    #[serde(skip)]
    pub dir: PathBuf,
    /// Whether this call wrote it (false: an existing folder was reused).
    #[serde(skip)]
    pub generated: bool,
}

impl Corpus {
    pub fn paths(&self) -> Vec<PathBuf> {
        self.files.iter().map(|f| self.dir.join(&f.name)).collect()
    }

    pub fn total_bytes(&self) -> u64 {
        self.files.iter().map(|f| f.bytes).sum()
    }
}

/// The fixture photos of the repository (13 real photos).
pub fn fixture_photos_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fixtures/photos")
}

/// Where corpora go by default: under the workspace's `target/`, never in git.
pub fn default_dir(n: usize, seed: u64) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../target/imgfeat-bench")
        .join(format!("corpus-s{seed}-n{n}"))
}

/// Generates `n` photos from the fixture photos into `dir`, or reuses `dir` when its
/// manifest says it holds exactly this corpus and every file is there.
pub fn generate(dir: &Path, n: usize, seed: u64) -> Result<Corpus, BenchError> {
    generate_from(&fixture_photos_dir(), dir, n, seed)
}

/// [`generate`] from another folder of source photos.
pub fn generate_from(
    sources: &Path,
    dir: &Path,
    n: usize,
    seed: u64,
) -> Result<Corpus, BenchError> {
    if n == 0 {
        return Err(BenchError::Options(
            "the corpus needs at least one image".into(),
        ));
    }
    if let Some(existing) = reusable(dir, n, seed) {
        return Ok(existing);
    }
    let photos = load_sources(sources)?;
    std::fs::create_dir_all(dir).map_err(|e| BenchError::io(dir, e))?;
    // A stale manifest must not vouch for a half-written folder.
    let manifest_path = dir.join(MANIFEST);
    match std::fs::remove_file(&manifest_path) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(BenchError::io(&manifest_path, e)),
    }

    let files = (0..n)
        .into_par_iter()
        .map(|i| -> Result<CorpusFile, BenchError> {
            let (source_name, source) = &photos[i % photos.len()];
            let upload = apply(source, &plan_upload(seed, i as u64))
                .map_err(|e| BenchError::Corpus(format!("making image {i}: {e}")))?;
            let id = FIRST_ID + i as u64;
            let name = format!("{id}.{}", upload.extension);
            let path = dir.join(&name);
            std::fs::write(&path, &upload.bytes).map_err(|e| BenchError::io(&path, e))?;
            Ok(CorpusFile {
                id,
                name,
                source: source_name.clone(),
                width: upload.width,
                height: upload.height,
                bytes: upload.bytes.len() as u64,
            })
        })
        .collect::<Result<Vec<_>, _>>()?;

    let corpus = Corpus {
        generator: GENERATOR.into(),
        seed,
        files,
        dir: dir.to_path_buf(),
        generated: true,
    };
    let json = serde_json::to_vec_pretty(&corpus)
        .map_err(|e| BenchError::Corpus(format!("writing the manifest: {e}")))?;
    std::fs::write(&manifest_path, json).map_err(|e| BenchError::io(&manifest_path, e))?;
    Ok(corpus)
}

fn reusable(dir: &Path, n: usize, seed: u64) -> Option<Corpus> {
    let bytes = std::fs::read(dir.join(MANIFEST)).ok()?;
    let mut corpus: Corpus = serde_json::from_slice(&bytes).ok()?;
    let complete = corpus.generator == GENERATOR
        && corpus.seed == seed
        && corpus.files.len() == n
        && corpus.files.iter().all(|f| {
            std::fs::metadata(dir.join(&f.name)).is_ok_and(|m| m.is_file() && m.len() == f.bytes)
        });
    if !complete {
        return None;
    }
    corpus.dir = dir.to_path_buf();
    corpus.generated = false;
    Some(corpus)
}

fn load_sources(dir: &Path) -> Result<Vec<(String, RgbImage)>, BenchError> {
    let mut paths: Vec<PathBuf> = std::fs::read_dir(dir)
        .map_err(|e| BenchError::io(dir, e))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.is_file())
        .collect();
    paths.sort();
    let limits = DecodeLimits::default();
    let photos: Vec<(String, RgbImage)> = paths
        .iter()
        .filter_map(|p| {
            let bytes = std::fs::read(p).ok()?;
            let img = decode_rgb(&bytes, &limits).ok()?;
            let name = p.file_name()?.to_string_lossy().to_string();
            Some((name, img))
        })
        .collect();
    if photos.is_empty() {
        return Err(BenchError::Corpus(format!(
            "no decodable photos in {}",
            dir.display()
        )));
    }
    Ok(photos)
}

#[cfg(test)]
mod tests {
    use super::*;
    use imgfeat_eval::transform::UPLOAD_LONG_SIDE;

    #[test]
    fn the_corpus_is_deterministic_for_a_seed_and_reused() {
        let a = tempfile::tempdir().unwrap();
        let b = tempfile::tempdir().unwrap();
        let first = generate(a.path(), 4, 7).unwrap();
        assert!(first.generated);
        let second = generate(b.path(), 4, 7).unwrap();
        for f in &first.files {
            let long = f.width.max(f.height);
            assert!(
                (UPLOAD_LONG_SIDE.0..=UPLOAD_LONG_SIDE.1).contains(&long),
                "{f:?}"
            );
            assert_eq!(
                std::fs::read(a.path().join(&f.name)).unwrap(),
                std::fs::read(b.path().join(&f.name)).unwrap(),
                "{} differs between two runs with the same seed",
                f.name
            );
        }
        assert_eq!(first.files, second.files);

        let again = generate(a.path(), 4, 7).unwrap();
        assert!(!again.generated, "a matching folder is reused");
        assert_eq!(again.files, first.files);

        let other = generate(a.path(), 4, 8).unwrap();
        assert!(other.generated, "another seed regenerates");
        assert_ne!(other.files, first.files);
    }
}
