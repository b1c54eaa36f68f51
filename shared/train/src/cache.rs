//! Embeddings kept between training runs: computing them is most of a run's time, and
//! every method and code length learns from the same ones. A cache file is named by a
//! key over everything the embeddings depend on (the photo list's hash, views, seed,
//! model versions), so a changed input never reads a stale file.
//!
//! Format: `IFEMB1\n`, then u32le rows and dim, then per row u32le photo, u32le view
//! and `dim` f32le values.

use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};

use crate::TrainError;
use crate::embed::{Embeddings, Row};

const MAGIC: &[u8] = b"IFEMB1\n";

/// The cache file for these inputs under `dir`.
pub fn path_for(dir: &Path, parts: &[&str]) -> PathBuf {
    let mut h = Sha256::new();
    for p in parts {
        h.update(p.as_bytes());
        h.update([0u8]);
    }
    let key = hex::encode(h.finalize());
    dir.join(format!("embeddings-{}.bin", &key[..16]))
}

pub fn write(path: &Path, e: &Embeddings) -> Result<(), TrainError> {
    let mut out = Vec::with_capacity(MAGIC.len() + 8 + e.rows.len() * (8 + e.dim * 4));
    out.extend_from_slice(MAGIC);
    out.extend_from_slice(&(e.rows.len() as u32).to_le_bytes());
    out.extend_from_slice(&(e.dim as u32).to_le_bytes());
    for r in &e.rows {
        out.extend_from_slice(&r.photo.to_le_bytes());
        out.extend_from_slice(&r.view.to_le_bytes());
        for v in &r.values {
            out.extend_from_slice(&v.to_le_bytes());
        }
    }
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).map_err(TrainError::io(dir))?;
    }
    // Written aside and renamed, so an interrupted run leaves no truncated cache.
    let partial = path.with_extension("partial");
    std::fs::write(&partial, &out).map_err(TrainError::io(&partial))?;
    std::fs::rename(&partial, path).map_err(TrainError::io(path))
}

/// The cached embeddings, `None` when there is no file.
pub fn read(path: &Path) -> Result<Option<Embeddings>, TrainError> {
    let bytes = match std::fs::read(path) {
        Ok(b) => b,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(TrainError::io(path)(e)),
    };
    let bad = |message: &str| TrainError::Cache {
        path: path.display().to_string(),
        message: message.to_string(),
    };
    let body = bytes
        .strip_prefix(MAGIC)
        .ok_or_else(|| bad("not a cache file"))?;
    let mut words = body.chunks_exact(4).map(|c| [c[0], c[1], c[2], c[3]]);
    let mut next = || words.next().ok_or_else(|| bad("truncated"));
    let rows = u32::from_le_bytes(next()?) as usize;
    let dim = u32::from_le_bytes(next()?) as usize;
    if body.len() != 8 + rows * (8 + dim * 4) {
        return Err(bad("length does not match its header"));
    }
    let mut out = Vec::with_capacity(rows);
    for _ in 0..rows {
        let photo = u32::from_le_bytes(next()?);
        let view = u32::from_le_bytes(next()?);
        let mut values = Vec::with_capacity(dim);
        for _ in 0..dim {
            values.push(f32::from_le_bytes(next()?));
        }
        out.push(Row {
            photo,
            view,
            values,
        });
    }
    Ok(Some(Embeddings { dim, rows: out }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_refusals() {
        let dir = tempfile::tempdir().unwrap();
        let e = Embeddings {
            dim: 2,
            rows: vec![
                Row {
                    photo: 0,
                    view: 0,
                    values: vec![1.5, -2.0],
                },
                Row {
                    photo: 3,
                    view: 1,
                    values: vec![0.25, 8.0],
                },
            ],
        };
        let p = path_for(dir.path(), &["a", "b"]);
        assert_ne!(p, path_for(dir.path(), &["ab"]));
        assert!(read(&p).unwrap().is_none());
        write(&p, &e).unwrap();
        assert_eq!(read(&p).unwrap().unwrap(), e);
        let mut bytes = std::fs::read(&p).unwrap();
        bytes.pop();
        std::fs::write(&p, &bytes).unwrap();
        assert!(read(&p).is_err());
    }
}
