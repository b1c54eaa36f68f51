//! [`ExportStore`] for [`SqliteStore`]: pages in ascending u64 image-ID order.
//!
//! IDs are stored bit-cast to i64, so u64 order is the non-negative i64 range followed
//! by the negative one; a page is filled from those two index ranges in turn. The cursor
//! is the last image ID of the page, in decimal.

use async_trait::async_trait;
use imgfeat_core::ImageId;
use imgfeat_core::ports::{ExportCursor, ExportStore, ImageResults, StoreError};
use rusqlite::{Connection, params};

use crate::error;
use crate::results::{codes_of, detections_of, failures_of};
use crate::rows::{id_from_sql, id_to_sql};
use crate::sqlite::SqliteStore;

/// Distinct image IDs in an inclusive i64 range, ascending. A compound SELECT with
/// ORDER BY is merged from the three index scans, so LIMIT stops it early.
const IDS_IN_RANGE: &str = "SELECT image_id FROM detections WHERE image_id BETWEEN ?1 AND ?2 \
     UNION SELECT image_id FROM codes WHERE image_id BETWEEN ?1 AND ?2 \
     UNION SELECT image_id FROM failures WHERE image_id BETWEEN ?1 AND ?2 \
     ORDER BY 1 LIMIT ?3";

#[async_trait]
impl ExportStore for SqliteStore {
    async fn export_page(
        &self,
        cursor: Option<&ExportCursor>,
        limit: usize,
    ) -> Result<(Vec<ImageResults>, Option<ExportCursor>), StoreError> {
        if limit == 0 {
            return Err(error::invalid("export page limit must be at least 1"));
        }
        let after = cursor
            .map(|c| {
                c.0.parse::<ImageId>()
                    .map_err(|e| error::invalid(format!("export cursor {:?}: {e}", c.0)))
            })
            .transpose()?;
        self.read("export_page", move |conn| {
            // One read transaction: the page is a consistent snapshot.
            let tx = conn
                .transaction()
                .map_err(|e| error::sql("export: beginning read", e))?;
            let ids = page_ids(&tx, after, limit)?;
            let mut page = Vec::with_capacity(ids.len());
            for id in ids {
                page.push(ImageResults {
                    image_id: id,
                    detections: detections_of(&tx, id)?,
                    codes: codes_of(&tx, id)?,
                    failures: failures_of(&tx, id)?,
                });
            }
            tx.finish()
                .map_err(|e| error::sql("export: ending read", e))?;
            let next = match page.last() {
                Some(last) if page.len() == limit => Some(ExportCursor(last.image_id.to_string())),
                _ => None,
            };
            Ok((page, next))
        })
        .await
    }
}

/// Up to `limit` IDs greater than `after` (all, when `None`), in u64 order.
fn page_ids(
    conn: &Connection,
    after: Option<ImageId>,
    limit: usize,
) -> Result<Vec<ImageId>, StoreError> {
    let op = "export: listing image IDs";
    let mut stmt = conn
        .prepare_cached(IDS_IN_RANGE)
        .map_err(|e| error::sql(op, e))?;
    let mut ids = Vec::new();
    for (lo, hi) in ranges_after(after) {
        let want = limit - ids.len();
        if want == 0 {
            break;
        }
        let rows = stmt
            .query_map(
                params![lo, hi, i64::try_from(want).unwrap_or(i64::MAX)],
                |r| r.get::<_, i64>(0),
            )
            .and_then(|rows| rows.collect::<Result<Vec<_>, _>>())
            .map_err(|e| error::sql(op, e))?;
        ids.extend(rows.into_iter().map(id_from_sql));
    }
    Ok(ids)
}

/// The inclusive i64 ranges holding IDs greater than `after`, in u64 order.
fn ranges_after(after: Option<ImageId>) -> Vec<(i64, i64)> {
    let low = (0, i64::MAX);
    let high = (i64::MIN, -1);
    let Some(after) = after else {
        return vec![low, high];
    };
    let a = id_to_sql(after);
    let mut out = Vec::new();
    if a >= 0 {
        if let Some(start) = a.checked_add(1) {
            out.push((start, i64::MAX));
        }
        out.push(high);
    } else if a < -1 {
        out.push((a + 1, -1));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranges_follow_u64_order_across_the_sign_bit() {
        assert_eq!(ranges_after(None), vec![(0, i64::MAX), (i64::MIN, -1)]);
        assert_eq!(
            ranges_after(Some(ImageId(5))),
            vec![(6, i64::MAX), (i64::MIN, -1)]
        );
        assert_eq!(
            ranges_after(Some(ImageId(i64::MAX as u64))),
            vec![(i64::MIN, -1)]
        );
        assert_eq!(
            ranges_after(Some(ImageId(1 << 63))),
            vec![(i64::MIN + 1, -1)]
        );
        assert_eq!(ranges_after(Some(ImageId(u64::MAX))), vec![]);
        assert_eq!(ranges_after(Some(ImageId(u64::MAX - 1))), vec![(-1, -1)]);
    }
}
