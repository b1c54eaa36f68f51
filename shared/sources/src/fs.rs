//! Image sources on the local file system: a map of known paths (the folder indexer)
//! and a path template (`/data/images/{id}.jpg`) for workers.

use std::collections::HashMap;
use std::path::PathBuf;

use async_trait::async_trait;
use imgfeat_core::ImageId;
use imgfeat_core::ports::{ImageSource, SourceError};

/// Reads images whose paths are known up front.
pub struct PathMapSource {
    paths: HashMap<ImageId, PathBuf>,
    max_bytes: u64,
}

impl PathMapSource {
    pub fn new(paths: HashMap<ImageId, PathBuf>, max_bytes: u64) -> Self {
        Self { paths, max_bytes }
    }
}

#[async_trait]
impl ImageSource for PathMapSource {
    async fn fetch(&self, id: ImageId) -> Result<Vec<u8>, SourceError> {
        let path = self
            .paths
            .get(&id)
            .ok_or_else(|| SourceError::NotFound(id, "no file is registered for this ID".into()))?;
        read_limited(id, path, self.max_bytes).await
    }
}

/// Reads `{id}` substituted into a path template.
pub struct TemplateSource {
    template: String,
    max_bytes: u64,
}

impl TemplateSource {
    pub fn new(template: impl Into<String>, max_bytes: u64) -> Result<Self, String> {
        let template = template.into();
        if !template.contains("{id}") {
            return Err(format!("path template {template:?} has no {{id}}"));
        }
        Ok(Self {
            template,
            max_bytes,
        })
    }
}

#[async_trait]
impl ImageSource for TemplateSource {
    async fn fetch(&self, id: ImageId) -> Result<Vec<u8>, SourceError> {
        let path = PathBuf::from(self.template.replace("{id}", &id.to_string()));
        read_limited(id, &path, self.max_bytes).await
    }
}

/// Reads a file, refusing one over `max_bytes` from its metadata before reading it.
pub async fn read_limited(
    id: ImageId,
    path: &std::path::Path,
    max_bytes: u64,
) -> Result<Vec<u8>, SourceError> {
    let io = |e: std::io::Error| match e.kind() {
        std::io::ErrorKind::NotFound => SourceError::NotFound(id, path.display().to_string()),
        std::io::ErrorKind::PermissionDenied | std::io::ErrorKind::IsADirectory => {
            SourceError::NotFound(id, format!("{}: {e}", path.display()))
        }
        _ => SourceError::Unavailable(format!("{}: {e}", path.display())),
    };
    let meta = tokio::fs::metadata(path).await.map_err(io)?;
    if !meta.is_file() {
        return Err(SourceError::NotFound(
            id,
            format!("{} is not a file", path.display()),
        ));
    }
    if meta.len() > max_bytes {
        return Err(SourceError::TooLarge {
            id,
            size: meta.len(),
            limit: max_bytes,
        });
    }
    tokio::fs::read(path).await.map_err(io)
}

#[cfg(test)]
mod tests {
    use super::*;
    use imgfeat_core::FailureKind;

    #[tokio::test]
    async fn reads_files_and_classifies_problems() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("1.jpg"), b"abc").unwrap();
        std::fs::write(dir.path().join("2.jpg"), vec![0u8; 100]).unwrap();
        let template = format!("{}/{{id}}.jpg", dir.path().display());
        let src = TemplateSource::new(template, 10).unwrap();
        assert_eq!(src.fetch(ImageId(1)).await.unwrap(), b"abc");
        let too_large = src.fetch(ImageId(2)).await.unwrap_err();
        assert_eq!(too_large.reason().kind, FailureKind::TooLarge);
        let missing = src.fetch(ImageId(3)).await.unwrap_err();
        assert_eq!(missing.reason().kind, FailureKind::NotFound);
        assert!(TemplateSource::new("/x/y.jpg", 1).is_err());
    }
}
