//! The path registry of the folder indexer: which image ID a file path stands for.
//!
//! A file named by a decimal number (`photos/1234.jpg`) is image 1234, so IDs from the
//! platform survive a trip through a folder. Any other path gets an ID assigned once,
//! counting up from 2^52 (where numeric names rarely reach) and staying below 2^53, so
//! that JSON readers, which keep 53 bits of a number, read every assigned ID exactly.
//! It is kept with the path so it is stable across runs: a store that began assigning
//! from 2^63 (before this rule) keeps counting there. Paths are keys exactly as given: the indexer decides how to
//! spell them (e.g. relative to the root folder).

use std::path::Path;

use imgfeat_core::ImageId;
use imgfeat_core::ports::StoreError;
use rusqlite::{Connection, OptionalExtension, params};

use crate::error;
use crate::rows::{id_from_sql, id_to_sql};
use crate::sqlite::{SqliteStore, commit, write_tx};

/// First ID handed to a path whose name is not a number.
pub const FIRST_ASSIGNED_ID: u64 = 1 << 52;

/// Assigned IDs stay below this: the largest range a JSON reader's double holds exactly.
const JSON_EXACT_END: u64 = 1 << 53;

/// Two different paths that would stand for the same image ID: the port's own type.
pub use imgfeat_core::ports::PathIdConflict;

/// The ID a path's file stem names: all ASCII digits, fitting a u64.
pub fn numeric_stem(path: &str) -> Option<u64> {
    let stem = Path::new(path).file_stem()?.to_str()?;
    if stem.is_empty() || !stem.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    stem.parse().ok()
}

impl SqliteStore {
    /// Gives every path its image ID, in one transaction; see the module docs for the
    /// rules. Registering a path again returns its ID; a path whose ID is taken by
    /// another path gets a [`PathIdConflict`] (and is not registered).
    pub async fn register_paths(
        &self,
        paths: &[String],
    ) -> Result<Vec<Result<ImageId, PathIdConflict>>, StoreError> {
        if paths.is_empty() {
            return Ok(Vec::new());
        }
        let paths = paths.to_vec();
        self.write("register_paths", move |conn| register(conn, &paths))
            .await
    }

    /// [`Self::register_paths`] for callers already on a blocking thread.
    pub fn register_paths_blocking(
        &self,
        paths: &[String],
    ) -> Result<Vec<Result<ImageId, PathIdConflict>>, StoreError> {
        if paths.is_empty() {
            return Ok(Vec::new());
        }
        self.write_blocking(|conn| register(conn, paths))
    }

    /// The path registered for `id`, if any.
    pub async fn path_of(&self, id: ImageId) -> Result<Option<String>, StoreError> {
        self.read("path_of", move |conn| lookup_path(conn, id))
            .await
    }

    /// The image ID registered for `path`, if any; registers nothing.
    pub async fn id_of_path(&self, path: &str) -> Result<Option<ImageId>, StoreError> {
        let path = path.to_string();
        self.read("id_of_path", move |conn| lookup_id(conn, &path))
            .await
    }

    /// [`Self::path_of`] for callers already on a blocking thread.
    pub fn path_of_blocking(&self, id: ImageId) -> Result<Option<String>, StoreError> {
        self.read_blocking(|conn| lookup_path(conn, id))
    }
}

const PATH_BY_ID: &str = "SELECT path FROM image_paths WHERE image_id = ?1";
const ID_BY_PATH: &str = "SELECT image_id FROM image_paths WHERE path = ?1";

fn lookup_id(conn: &Connection, path: &str) -> Result<Option<ImageId>, StoreError> {
    conn.prepare_cached(ID_BY_PATH)
        .and_then(|mut s| {
            s.query_row(params![path], |r| r.get::<_, i64>(0))
                .optional()
        })
        .map(|id| id.map(id_from_sql))
        .map_err(|e| error::sql("looking up the image ID of a path", e))
}

fn lookup_path(conn: &Connection, id: ImageId) -> Result<Option<String>, StoreError> {
    conn.prepare_cached(PATH_BY_ID)
        .and_then(|mut s| s.query_row(params![id_to_sql(id)], |r| r.get(0)).optional())
        .map_err(|e| error::sql("looking up the path of an image", e))
}

fn register(
    conn: &mut Connection,
    paths: &[String],
) -> Result<Vec<Result<ImageId, PathIdConflict>>, StoreError> {
    let op = "registering paths";
    let sql = |e| error::sql(op, e);
    let tx = write_tx(conn, op)?;
    let mut out = Vec::with_capacity(paths.len());
    {
        let mut by_path = tx.prepare_cached(ID_BY_PATH).map_err(sql)?;
        let mut by_id = tx.prepare_cached(PATH_BY_ID).map_err(sql)?;
        let mut insert = tx
            .prepare_cached(
                "INSERT INTO image_paths (path, image_id, assigned) VALUES (?1, ?2, ?3)",
            )
            .map_err(sql)?;
        // Read lazily: a batch of numeric names never needs it.
        let mut next_assigned: Option<u64> = None;

        for path in paths {
            let known: Option<i64> = by_path
                .query_row(params![path], |r| r.get(0))
                .optional()
                .map_err(sql)?;
            if let Some(id) = known {
                out.push(Ok(id_from_sql(id)));
                continue;
            }
            if let Some(n) = numeric_stem(path) {
                let id = ImageId(n);
                let other: Option<String> = by_id
                    .query_row(params![id_to_sql(id)], |r| r.get(0))
                    .optional()
                    .map_err(sql)?;
                match other {
                    Some(other) => out.push(Err(PathIdConflict {
                        path: path.clone(),
                        id,
                        other,
                    })),
                    None => {
                        insert
                            .execute(params![path, id_to_sql(id), 0])
                            .map_err(sql)?;
                        out.push(Ok(id));
                    }
                }
                continue;
            }
            let mut candidate = match next_assigned {
                Some(n) => n,
                None => first_free_assigned(&tx)?,
            };
            // Skip IDs already taken by numeric names.
            loop {
                let taken = by_id
                    .query_row(params![candidate.cast_signed()], |_| Ok(()))
                    .optional()
                    .map_err(sql)?
                    .is_some();
                if !taken {
                    break;
                }
                candidate = bump(candidate)?;
            }
            insert
                .execute(params![path, candidate.cast_signed(), 1])
                .map_err(sql)?;
            out.push(Ok(ImageId(candidate)));
            next_assigned = Some(bump(candidate)?);
        }
    }
    commit(tx, op)?;
    let conflicts = out.iter().filter(|r| r.is_err()).count();
    if conflicts > 0 {
        tracing::warn!(
            conflicts,
            paths = paths.len(),
            "paths with conflicting image IDs"
        );
    }
    Ok(out)
}

/// One past the highest ID assigned so far, or [`FIRST_ASSIGNED_ID`]. A store holds
/// assigned IDs of one range only (from 2^52, or from 2^63 if it was made before), so
/// SQL's max over the stored (signed) values is the range's highest.
fn first_free_assigned(conn: &Connection) -> Result<u64, StoreError> {
    let max: Option<i64> = conn
        .prepare_cached("SELECT max(image_id) FROM image_paths WHERE assigned = 1")
        .and_then(|mut s| s.query_row([], |r| r.get(0)))
        .map_err(|e| error::sql("finding the next free image ID", e))?;
    match max {
        Some(m) => bump(m.cast_unsigned()),
        None => Ok(FIRST_ASSIGNED_ID),
    }
}

fn bump(id: u64) -> Result<u64, StoreError> {
    match id.checked_add(1) {
        Some(JSON_EXACT_END) | None => Err(error::invalid("no image IDs left to assign to paths")),
        Some(next) => Ok(next),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numeric_stems_are_whole_decimal_u64s() {
        assert_eq!(numeric_stem("a/b/1234.jpg"), Some(1234));
        assert_eq!(numeric_stem("1234"), Some(1234));
        assert_eq!(numeric_stem("007.png"), Some(7));
        assert_eq!(numeric_stem("x/18446744073709551615.jpg"), Some(u64::MAX));
        assert_eq!(numeric_stem("x/18446744073709551616.jpg"), None);
        assert_eq!(numeric_stem("+12.jpg"), None);
        assert_eq!(numeric_stem("-12.jpg"), None);
        assert_eq!(numeric_stem("12a.jpg"), None);
        assert_eq!(numeric_stem("12.tar.gz"), None);
        assert_eq!(numeric_stem("cat.jpg"), None);
        assert_eq!(numeric_stem(""), None);
        assert_eq!(numeric_stem("١٢.jpg"), None);
    }
}
