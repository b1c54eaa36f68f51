//! What the stage tests share: the fixture photos, and an image source holding them.
#![allow(dead_code)]

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use async_trait::async_trait;
use imgfeat_core::ImageId;
use imgfeat_core::ports::{ImageSource, SourceError};

/// The fixture photos' paths, sorted by name.
pub fn fixture_paths() -> Vec<PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fixtures/photos");
    let mut paths: Vec<_> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    paths.sort();
    paths
}

/// Waits for a stage's run, which ends when its queue does after every delivery is
/// settled; two minutes at most.
pub async fn until_the_queue_ends(run: impl std::future::Future<Output = ()>) {
    tokio::time::timeout(std::time::Duration::from_secs(120), run)
        .await
        .expect("the stage settles every delivery and ends with its queue");
}

/// Images held in memory, by ID.
pub struct Photos(pub HashMap<ImageId, Vec<u8>>);

impl Photos {
    /// Image `id` is the fixture photo at `id - 1 + skip`, for `ids`.
    pub fn fixtures(ids: impl IntoIterator<Item = u64>, skip: usize) -> Self {
        let paths = fixture_paths();
        Self(
            ids.into_iter()
                .map(|i| {
                    let bytes = std::fs::read(&paths[i as usize - 1 + skip]).unwrap();
                    (ImageId(i), bytes)
                })
                .collect(),
        )
    }
}

#[async_trait]
impl ImageSource for Photos {
    async fn fetch(&self, id: ImageId) -> Result<Vec<u8>, SourceError> {
        Ok(self.0[&id].clone())
    }
}
