//! [`DuplicateStore`] for [`CqlStore`]: `near_duplicates` is partitioned by (image,
//! version), one clustering row per neighbour, so each search shard upserts its own
//! neighbours and one partition read returns them all.

use async_trait::async_trait;
use futures::{StreamExt, TryStreamExt};
use imgfeat_core::message::Neighbour;
use imgfeat_core::ports::{DuplicateStore, StoreError};
use imgfeat_core::{ImageId, ModelVersion, now_ms};

use crate::config::ttl_value;
use crate::rows::{id_from_cql, id_to_cql, u32_from_cql, u32_to_cql, u64_to_cql};
use crate::store::CqlStore;

/// `(image_id, model_version, neighbour_id, distance, found_ms, ttl)`.
pub type NearDuplicateValues<'a> = (i64, &'a str, i64, i32, i64, i32);

/// `(neighbour_id, distance)`.
pub type NearDuplicateRow = (i64, i32);

pub fn near_duplicate_values<'a>(
    image: ImageId,
    version: &'a ModelVersion,
    n: &Neighbour,
    found_ms: u64,
    ttl: i32,
) -> NearDuplicateValues<'a> {
    (
        id_to_cql(image),
        version.as_str(),
        id_to_cql(n.image_id),
        u32_to_cql(n.distance),
        u64_to_cql(found_ms),
        ttl,
    )
}

/// Rows back to neighbours, nearest first in u64 ID order (CQL clusters the bit-cast
/// IDs in i64 order, which puts IDs >= 2^63 first).
pub fn neighbours_from_rows(rows: Vec<NearDuplicateRow>) -> Vec<Neighbour> {
    let mut out: Vec<Neighbour> = rows
        .into_iter()
        .map(|(id, distance)| Neighbour {
            image_id: id_from_cql(id),
            distance: u32_from_cql(distance),
        })
        .collect();
    out.sort_by_key(|n| (n.distance, n.image_id));
    out
}

#[async_trait]
impl DuplicateStore for CqlStore {
    async fn put_near_duplicates(
        &self,
        image: ImageId,
        version: &ModelVersion,
        neighbours: &[Neighbour],
    ) -> Result<(), StoreError> {
        // They matter as long as the codes they were found among.
        let ttl = ttl_value(self.config().ttl.codes);
        let now = now_ms();
        let st = &self.statements().insert_near_duplicate;
        futures::stream::iter(0..neighbours.len())
            .map(|i| async move {
                let values = near_duplicate_values(image, version, &neighbours[i], now, ttl);
                self.exec("put near-duplicate", st, values)
                    .await
                    .map(|_| ())
            })
            .buffer_unordered(self.config().max_concurrency)
            .try_collect::<()>()
            .await
    }

    async fn near_duplicates(
        &self,
        image: ImageId,
        version: &ModelVersion,
    ) -> Result<Vec<Neighbour>, StoreError> {
        let key = (id_to_cql(image), version.as_str());
        let rows: Vec<NearDuplicateRow> = self
            .rows(
                "get near-duplicates",
                &self.statements().select_near_duplicates,
                key,
            )
            .await?;
        Ok(neighbours_from_rows(rows))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_and_distances_round_trip_at_the_limits() {
        let v = ModelVersion::new("a@1+b@2").unwrap();
        let ids = [0, 1, i64::MAX as u64, 1 << 63, u64::MAX];
        let rows: Vec<NearDuplicateRow> = ids
            .iter()
            .zip([u32::MAX, 0, 7, 7, 3])
            .map(|(&id, distance)| {
                let n = Neighbour {
                    image_id: ImageId(id),
                    distance,
                };
                let (image, version, nid, d, found, ttl) =
                    near_duplicate_values(ImageId(u64::MAX), &v, &n, u64::MAX, 9);
                assert_eq!(image, -1);
                assert_eq!(version, "a@1+b@2");
                assert_eq!(found, -1);
                assert_eq!(ttl, 9);
                (nid, d)
            })
            .collect();
        // IDs >= 2^63 are negative in CQL; read back in u64 order all the same.
        assert_eq!(rows[3], (i64::MIN, 7));
        let got = neighbours_from_rows(rows);
        // Nearest first, ties in u64 ID order.
        let want: Vec<(u64, u32)> = vec![
            (1, 0),
            (u64::MAX, 3),
            (i64::MAX as u64, 7),
            (1 << 63, 7),
            (0, u32::MAX),
        ];
        assert_eq!(
            got.iter()
                .map(|n| (n.image_id.0, n.distance))
                .collect::<Vec<_>>(),
            want
        );
    }
}
