//! The scratch folder the pipeline indexes: each readable photo copied byte for byte as
//! `{id}.{ext}`, and its copies beside it. IDs say whose copy a file is: photo `i`
//! (0-based) is `(i + 1) * 1000`, its copy `j` is `(i + 1) * 1000 + j + 1`.

use std::path::{Path, PathBuf};

use rayon::prelude::*;
use serde::Serialize;

use crate::EvalError;
use crate::transform::{self, TransformParams};

/// One file of the corpus.
#[derive(Debug, Clone, Serialize)]
pub struct CorpusItem {
    pub id: u64,
    pub photo: usize,
    /// `None` for the original.
    pub copy: Option<usize>,
    /// The photo this came from.
    pub source: PathBuf,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub params: Option<TransformParams>,
    #[serde(skip)]
    pub file: PathBuf,
}

#[derive(Debug, Clone, Serialize)]
pub struct Corpus {
    pub items: Vec<CorpusItem>,
    /// Photos that could not be decoded here, with the reason (left out entirely).
    pub skipped: Vec<(PathBuf, String)>,
}

impl Corpus {
    pub fn files(&self) -> Vec<PathBuf> {
        self.items.iter().map(|i| i.file.clone()).collect()
    }
}

pub const IDS_PER_PHOTO: u64 = 1000;

pub fn original_id(photo: usize) -> u64 {
    (photo as u64 + 1) * IDS_PER_PHOTO
}

/// The image files directly in `dir` (by extension), sorted by name, at most `limit`.
pub fn list_photos(dir: &Path, limit: Option<usize>) -> Result<Vec<PathBuf>, EvalError> {
    let io = |source| EvalError::Io {
        path: dir.display().to_string(),
        source,
    };
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).map_err(io)? {
        let path = entry.map_err(io)?.path();
        let image_like = path
            .extension()
            .and_then(|e| e.to_str())
            .map(|e| {
                matches!(
                    e.to_ascii_lowercase().as_str(),
                    "jpg" | "jpeg" | "png" | "webp" | "bmp" | "tif" | "tiff" | "gif"
                )
            })
            .unwrap_or(false);
        if image_like && path.is_file() {
            out.push(path);
        }
    }
    out.sort();
    if let Some(n) = limit {
        out.truncate(n);
    }
    Ok(out)
}

/// Writes the originals and `copies` seeded copies of each photo into `out_dir`.
pub fn prepare(
    photos: &[PathBuf],
    out_dir: &Path,
    seed: u64,
    copies: usize,
) -> Result<Corpus, EvalError> {
    if copies == 0 || copies as u64 >= IDS_PER_PHOTO {
        return Err(EvalError::Copies(copies));
    }
    let per_photo: Vec<Result<Vec<CorpusItem>, (PathBuf, String)>> = photos
        .par_iter()
        .enumerate()
        .map(|(photo, source)| {
            one_photo(photo, source, out_dir, seed, copies)
                .map_err(|e| (source.clone(), e.to_string()))
        })
        .collect();
    let mut corpus = Corpus {
        items: Vec::new(),
        skipped: Vec::new(),
    };
    for r in per_photo {
        match r {
            Ok(items) => corpus.items.extend(items),
            Err((path, reason)) => {
                tracing::warn!(photo = %path.display(), %reason, "left out of the evaluation");
                corpus.skipped.push((path, reason));
            }
        }
    }
    if corpus.items.is_empty() {
        return Err(EvalError::NoPhotos(photos.len()));
    }
    Ok(corpus)
}

fn one_photo(
    photo: usize,
    source: &Path,
    out_dir: &Path,
    seed: u64,
    copies: usize,
) -> Result<Vec<CorpusItem>, EvalError> {
    let io = |path: &Path| {
        let path = path.display().to_string();
        move |source| EvalError::Io { path, source }
    };
    let bytes = std::fs::read(source).map_err(io(source))?;
    let rgb = image::load_from_memory(&bytes)?.to_rgb8();
    let base = original_id(photo);
    let ext = source
        .extension()
        .and_then(|e| e.to_str())
        .unwrap_or("jpg")
        .to_ascii_lowercase();
    let file = out_dir.join(format!("{base}.{ext}"));
    std::fs::write(&file, &bytes).map_err(io(&file))?;
    let mut items = vec![CorpusItem {
        id: base,
        photo,
        copy: None,
        source: source.to_path_buf(),
        params: None,
        file,
    }];
    for copy in 0..copies {
        let params = transform::plan(seed, photo, copy);
        let encoded = transform::apply(&rgb, &params)?;
        let id = base + copy as u64 + 1;
        let file = out_dir.join(format!("{id}.{}", encoded.extension));
        std::fs::write(&file, &encoded.bytes).map_err(io(&file))?;
        items.push(CorpusItem {
            id,
            photo,
            copy: Some(copy),
            source: source.to_path_buf(),
            params: Some(params),
            file,
        });
    }
    Ok(items)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn originals_keep_their_bytes_and_copies_get_their_photos_ids() {
        let src = tempfile::tempdir().unwrap();
        let img =
            image::RgbImage::from_fn(64, 48, |x, y| image::Rgb([x as u8 * 3, y as u8 * 5, 9]));
        img.save(src.path().join("b.png")).unwrap();
        img.save(src.path().join("a.jpg")).unwrap();
        std::fs::write(src.path().join("broken.jpg"), b"not a jpeg").unwrap();
        std::fs::write(src.path().join("notes.txt"), b"ignored").unwrap();
        let photos = list_photos(src.path(), None).unwrap();
        assert_eq!(photos.len(), 3, "{photos:?}");

        let out = tempfile::tempdir().unwrap();
        let corpus = prepare(&photos, out.path(), 3, 2).unwrap();
        assert_eq!(corpus.skipped.len(), 1, "the broken file is left out");
        assert_eq!(corpus.items.len(), 6);
        let a = &corpus.items[0];
        assert_eq!((a.id, a.copy), (1000, None));
        assert_eq!(
            std::fs::read(&a.file).unwrap(),
            std::fs::read(src.path().join("a.jpg")).unwrap()
        );
        let ids: Vec<u64> = corpus.items.iter().map(|i| i.id).collect();
        assert_eq!(ids, [1000, 1001, 1002, 2000, 2001, 2002]);
        for item in &corpus.items {
            let stem: u64 = item
                .file
                .file_stem()
                .unwrap()
                .to_str()
                .unwrap()
                .parse()
                .unwrap();
            assert_eq!(stem, item.id);
            image::open(&item.file).unwrap();
        }
        assert!(matches!(
            prepare(&photos, out.path(), 3, 0),
            Err(EvalError::Copies(0))
        ));
    }
}
