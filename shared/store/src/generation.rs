//! How many times the codes of a version have changed: bumped by triggers in the same
//! transaction as the write, so a search index saved with the generation it was built
//! from is current exactly while the generation is unchanged.

use imgfeat_core::ModelVersion;
use imgfeat_core::ports::StoreError;
use rusqlite::OptionalExtension;

use crate::error;
use crate::rows::u64_from_sql;
use crate::sqlite::SqliteStore;

impl SqliteStore {
    /// 0 for a version never written.
    pub async fn code_generation(&self, version: &ModelVersion) -> Result<u64, StoreError> {
        let version = version.as_str().to_owned();
        self.read("code_generation", move |conn| {
            conn.query_row(
                "SELECT generation FROM code_generations WHERE model_version = ?1",
                [&version],
                |r| r.get::<_, i64>(0),
            )
            .optional()
            .map(|g| g.map_or(0, u64_from_sql))
            .map_err(|e| error::sql("reading the code generation", e))
        })
        .await
    }
}

#[cfg(test)]
mod tests {
    use imgfeat_core::ports::ResultStore;
    use imgfeat_core::{BinaryCode, CodeRecord, ImageId};

    use super::*;

    fn rec(id: u64, v: &ModelVersion, byte: u8) -> CodeRecord {
        CodeRecord {
            image_id: ImageId(id),
            model_version: v.clone(),
            code: BinaryCode::from_bytes(64, vec![byte; 8]).unwrap(),
        }
    }

    #[tokio::test]
    async fn every_code_write_moves_its_versions_generation_and_only_its() {
        let dir = tempfile::tempdir().unwrap();
        let store = SqliteStore::open(&dir.path().join("s.sqlite3")).unwrap();
        let (a, b) = (
            ModelVersion::new("a@1").unwrap(),
            ModelVersion::new("b@1").unwrap(),
        );
        assert_eq!(store.code_generation(&a).await.unwrap(), 0);
        store.put_codes(&[rec(1, &a, 0)]).await.unwrap();
        let g1 = store.code_generation(&a).await.unwrap();
        assert!(g1 > 0);
        // The same image again with another code (an upsert) is a change too.
        store.put_codes(&[rec(1, &a, 7)]).await.unwrap();
        let g2 = store.code_generation(&a).await.unwrap();
        assert!(g2 > g1);
        store.put_codes(&[rec(2, &b, 0)]).await.unwrap();
        assert_eq!(store.code_generation(&a).await.unwrap(), g2);
        assert!(store.code_generation(&b).await.unwrap() > 0);
        // Reopening reads the same generation back: it lives in the file.
        drop(store);
        let store = SqliteStore::open(&dir.path().join("s.sqlite3")).unwrap();
        assert_eq!(store.code_generation(&a).await.unwrap(), g2);
    }
}
