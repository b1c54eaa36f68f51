//! [`DuplicateStore`] for [`SqliteStore`]: one row per (image, version, neighbour).

use async_trait::async_trait;
use imgfeat_core::message::Neighbour;
use imgfeat_core::ports::{DuplicateStore, StoreError};
use imgfeat_core::{ImageId, ModelVersion};
use rusqlite::params;

use crate::error;
use crate::rows::{id_from_sql, id_to_sql};
use crate::sqlite::{SqliteStore, commit, write_tx};

const UPSERT: &str = "INSERT INTO near_duplicates (image_id, model_version, neighbour_id, distance)
     VALUES (?1, ?2, ?3, ?4)
     ON CONFLICT (image_id, model_version, neighbour_id) DO UPDATE SET distance = excluded.distance";

const SELECT: &str = "SELECT neighbour_id, distance FROM near_duplicates
     WHERE image_id = ?1 AND model_version = ?2";

#[async_trait]
impl DuplicateStore for SqliteStore {
    async fn put_near_duplicates(
        &self,
        image: ImageId,
        version: &ModelVersion,
        neighbours: &[Neighbour],
    ) -> Result<(), StoreError> {
        if neighbours.is_empty() {
            return Ok(());
        }
        let version = version.as_str().to_owned();
        let neighbours = neighbours.to_vec();
        self.write("put_near_duplicates", move |conn| {
            let op = "put_near_duplicates";
            let tx = write_tx(conn, op)?;
            {
                let mut stmt = tx.prepare_cached(UPSERT).map_err(|e| error::sql(op, e))?;
                for n in &neighbours {
                    stmt.execute(params![
                        id_to_sql(image),
                        version,
                        id_to_sql(n.image_id),
                        i64::from(n.distance)
                    ])
                    .map_err(|e| error::sql(op, e))?;
                }
            }
            commit(tx, op)
        })
        .await
    }

    async fn near_duplicates(
        &self,
        image: ImageId,
        version: &ModelVersion,
    ) -> Result<Vec<Neighbour>, StoreError> {
        let version = version.as_str().to_owned();
        self.read("near_duplicates", move |conn| {
            let op = "near_duplicates";
            let mut stmt = conn.prepare_cached(SELECT).map_err(|e| error::sql(op, e))?;
            let rows = stmt
                .query_map(params![id_to_sql(image), version], |r| {
                    Ok((r.get::<_, i64>(0)?, r.get::<_, i64>(1)?))
                })
                .map_err(|e| error::sql(op, e))?;
            let mut out = Vec::new();
            for row in rows {
                let (id, distance) = row.map_err(|e| error::sql(op, e))?;
                let distance = u32::try_from(distance).map_err(|_| {
                    error::invalid(format!("stored near-duplicate distance {distance}"))
                })?;
                out.push(Neighbour {
                    image_id: id_from_sql(id),
                    distance,
                });
            }
            // In u64 order: SQL would order IDs >= 2^63 (stored negative) first.
            out.sort_by_key(|n| (n.distance, n.image_id));
            Ok(out)
        })
        .await
    }
}
