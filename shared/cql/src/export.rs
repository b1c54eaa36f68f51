//! Reading the whole store in token order, for `imgfeat store copy`.
//!
//! Each results table is scanned by token range (`token(image_id) > ? LIMIT ?`), which
//! every node serves without filtering; since all tables share the partition key, their
//! tokens interleave into one order. The cursor is the last token returned, as decimal.
//! Murmur3 tokens of distinct IDs practically never collide; if two did and fell on a
//! page boundary, [`plan_page`] keeps them on the same page.

use std::collections::BTreeSet;

use async_trait::async_trait;
use futures::{StreamExt, TryStreamExt};
use imgfeat_core::ports::{ExportCursor, ExportStore, ImageResults, StoreError};

use crate::rows::id_from_cql;
use crate::store::CqlStore;

/// `(token, image_id)` rows one table's scan returned, and whether it hit its LIMIT
/// (and so may have more).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TableScan {
    pub rows: Vec<(i64, i64)>,
    pub full: bool,
}

/// The images of one page, in token order, and where the next page starts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PagePlan {
    pub images: Vec<(i64, i64)>,
    pub next: Option<i64>,
}

/// Merges the scans of every table into one page of at most `limit` images (more only
/// when tokens tie). A table that hit its LIMIT is only known up to its last token, so
/// the page stops there: beyond it, that table may hold images not yet seen.
pub fn plan_page(scans: &[TableScan], limit: usize) -> PagePlan {
    let limit = limit.max(1);
    let cutoff = scans
        .iter()
        .filter(|s| s.full)
        .filter_map(|s| s.rows.iter().map(|r| r.0).max())
        .min();
    let merged: BTreeSet<(i64, i64)> = scans
        .iter()
        .flat_map(|s| s.rows.iter().copied())
        .filter(|(token, _)| cutoff.is_none_or(|c| *token <= c))
        .collect();
    let mut images: Vec<(i64, i64)> = Vec::with_capacity(limit.min(merged.len()));
    let mut truncated = false;
    for row in merged {
        if images.len() >= limit {
            truncated = true;
            // The cursor is a token, so a page must not end inside a group of equal
            // tokens: hand the whole group to the next page, unless it is all we have.
            if images.last().is_some_and(|last| last.0 == row.0)
                && images.iter().any(|r| r.0 != row.0)
            {
                images.retain(|r| r.0 != row.0);
            } else if images.last().is_some_and(|last| last.0 == row.0) {
                images.push(row);
                truncated = false;
                continue;
            }
            break;
        }
        images.push(row);
    }
    let next = if truncated {
        images.last().map(|r| r.0)
    } else {
        cutoff
    };
    PagePlan { images, next }
}

pub fn parse_cursor(cursor: Option<&ExportCursor>) -> Result<i64, StoreError> {
    match cursor {
        // Murmur3 never hands out i64::MIN, so `> MIN` starts at the very first token.
        None => Ok(i64::MIN),
        Some(c) => {
            c.0.parse()
                .map_err(|_| StoreError::Invalid(format!("not a CQL export cursor: {:?}", c.0)))
        }
    }
}

#[async_trait]
impl ExportStore for CqlStore {
    async fn export_page(
        &self,
        cursor: Option<&ExportCursor>,
        limit: usize,
    ) -> Result<(Vec<ImageResults>, Option<ExportCursor>), StoreError> {
        let after = parse_cursor(cursor)?;
        let limit = limit.clamp(1, 100_000);
        let bound = i32::try_from(limit).unwrap_or(i32::MAX);
        let st = self.statements();
        let scan = |what: &'static str, stmt| async move {
            let rows: Vec<(i64, i64)> = self
                .rows::<(i64, i64)>(what, stmt, (after, bound))
                .await?
                .into_iter()
                .map(|(id, token)| (token, id))
                .collect();
            let full = rows.len() >= limit;
            Ok::<_, StoreError>(TableScan { rows, full })
        };
        let scans = futures::try_join!(
            scan("scan detections", &st.scan_detections),
            scan("scan codes", &st.scan_codes),
            scan("scan failures", &st.scan_failures),
        )?;
        let plan = plan_page(&[scans.0, scans.1, scans.2], limit);
        let results: Vec<ImageResults> = futures::stream::iter(plan.images)
            .map(|(_, id)| self.image_results(id_from_cql(id)))
            .buffered(self.config().max_concurrency)
            .try_collect()
            .await?;
        Ok((results, plan.next.map(|t| ExportCursor(t.to_string()))))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scan(rows: &[(i64, i64)], full: bool) -> TableScan {
        TableScan {
            rows: rows.to_vec(),
            full,
        }
    }

    #[test]
    fn exhausted_tables_merge_dedupe_and_end_the_export() {
        let plan = plan_page(
            &[
                scan(&[(1, 10), (5, 50)], false),
                scan(&[(1, 10), (3, 30)], false),
            ],
            10,
        );
        assert_eq!(plan.images, vec![(1, 10), (3, 30), (5, 50)]);
        assert_eq!(plan.next, None);
    }

    #[test]
    fn a_full_table_bounds_the_page_so_nothing_is_skipped() {
        // Table A hit its limit at token 4: it may hold token 5, so B's token 9 waits.
        let plan = plan_page(
            &[
                scan(&[(1, 10), (4, 40)], true),
                scan(&[(2, 20), (9, 90)], false),
            ],
            2,
        );
        assert_eq!(plan.images, vec![(1, 10), (2, 20)]);
        assert_eq!(plan.next, Some(2));
        let plan = plan_page(
            &[
                scan(&[(1, 10), (4, 40)], true),
                scan(&[(2, 20), (9, 90)], false),
            ],
            3,
        );
        assert_eq!(plan.images, vec![(1, 10), (2, 20), (4, 40)]);
        assert_eq!(plan.next, Some(4));
    }

    #[test]
    fn tied_tokens_stay_on_one_page() {
        let rows = [(1, 10), (7, 70), (7, 71), (8, 80)];
        let plan = plan_page(&[scan(&rows, false)], 2);
        assert_eq!(plan.images, vec![(1, 10)]);
        assert_eq!(plan.next, Some(1));
        // Only when the tied group is the whole page does it overflow the limit.
        let plan = plan_page(&[scan(&rows[1..], false)], 1);
        assert_eq!(plan.images, vec![(7, 70), (7, 71)]);
        assert_eq!(plan.next, Some(7));
    }

    #[test]
    fn an_empty_store_ends_at_once() {
        let plan = plan_page(&[scan(&[], false), scan(&[], false)], 5);
        assert!(plan.images.is_empty());
        assert_eq!(plan.next, None);
    }

    #[test]
    fn cursors_are_decimal_tokens() {
        assert_eq!(parse_cursor(None).unwrap(), i64::MIN);
        let c = ExportCursor("-42".into());
        assert_eq!(parse_cursor(Some(&c)).unwrap(), -42);
        assert!(parse_cursor(Some(&ExportCursor("abc".into()))).is_err());
    }
}
