//! Image sources on the local file system: a map of known paths (the folder indexer)
//! and a path template (`/data/images/{id}.jpg`) for workers.

use std::collections::HashMap;
use std::path::PathBuf;

use async_trait::async_trait;
use imgfeat_core::ImageId;
use imgfeat_core::ports::{ImageSource, ReadyCheck, SourceError};

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

    /// Ready while the folder the template names (its part before the first `{id}`)
    /// is a directory: a lost mount turns `/readyz` red instead of failing every image.
    pub fn ready_check(&self) -> ReadyCheck {
        let dir = template_dir(&self.template);
        ReadyCheck::new(move || {
            let dir = dir.clone();
            Box::pin(async move {
                match tokio::fs::metadata(&dir).await {
                    Ok(m) if m.is_dir() => Ok(()),
                    Ok(_) => Err(format!("{} is not a directory", dir.display())),
                    Err(e) => Err(format!("{}: {e}", dir.display())),
                }
            })
        })
    }
}

/// The directory every path of `template` lies under.
fn template_dir(template: &str) -> PathBuf {
    let fixed = template.split("{id}").next().unwrap_or_default();
    let dir = if fixed.ends_with('/') {
        std::path::Path::new(fixed)
    } else {
        std::path::Path::new(fixed)
            .parent()
            .unwrap_or(std::path::Path::new(""))
    };
    if dir.as_os_str().is_empty() {
        PathBuf::from(".")
    } else {
        dir.to_path_buf()
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

    #[tokio::test]
    async fn ready_while_the_templates_folder_is_there() {
        let dir = tempfile::tempdir().unwrap();
        let images = dir.path().join("images");
        std::fs::create_dir(&images).unwrap();
        let src = TemplateSource::new(format!("{}/{{id}}.jpg", images.display()), 10).unwrap();
        assert_eq!(src.ready_check().run().await, Ok(()));
        std::fs::remove_dir(&images).unwrap();
        let why = src.ready_check().run().await.unwrap_err();
        assert!(why.contains("images"), "{why}");

        assert_eq!(template_dir("/data/{id}/full.jpg"), PathBuf::from("/data/"));
        assert_eq!(template_dir("/data/img-{id}.jpg"), PathBuf::from("/data"));
        assert_eq!(template_dir("{id}.jpg"), PathBuf::from("."));
    }
}
