//! Every DML statement of the store, as text (unit-tested for portability) and as the
//! set prepared once per session. All are marked idempotent: each is a plain upsert,
//! a delete by key, or a read, so running one twice leaves the state running it once
//! does; that is what lets the retry loop and speculative execution resend them.

use scylla::client::session::Session;
use scylla::errors::PrepareError;
use scylla::statement::prepared::PreparedStatement;

use crate::schema::render;

macro_rules! statements {
    ($($name:ident => $cql:literal,)*) => {
        /// `(name, text)` of every statement, with `{ks}` for the keyspace.
        pub const TEMPLATES: &[(&str, &str)] = &[$((stringify!($name), $cql),)*];

        /// The statements, prepared against one keyspace.
        #[derive(Debug)]
        pub struct Prepared {
            $(pub $name: PreparedStatement,)*
        }

        impl Prepared {
            pub async fn prepare(session: &Session, keyspace: &str) -> Result<Self, PrepareError> {
                Ok(Self {
                    $($name: prepare_one(session, &render($cql, keyspace)).await?,)*
                })
            }
        }
    };
}

statements! {
    insert_detection => "INSERT INTO {ks}.detections (image_id, model_version, image_width, image_height, detections, main_object, stored_ms) VALUES (?, ?, ?, ?, ?, ?, ?) USING TTL ?",
    insert_crop => "INSERT INTO {ks}.crops (image_id, model_version, crop_jpeg, stored_ms) VALUES (?, ?, ?, ?) USING TTL ?",
    insert_code => "INSERT INTO {ks}.codes (image_id, model_version, bits, code, stored_ms) VALUES (?, ?, ?, ?, ?) USING TTL ?",
    clear_failures => "DELETE FROM {ks}.failures WHERE image_id = ? AND model_version = ?",
    insert_failure => "INSERT INTO {ks}.failures (image_id, model_version, stage, kind, message, attempts, at_ms) VALUES (?, ?, ?, ?, ?, ?, ?) USING TTL ?",
    select_detection => "SELECT model_version, image_width, image_height, detections, main_object FROM {ks}.detections WHERE image_id = ? AND model_version = ?",
    select_detections => "SELECT model_version, image_width, image_height, detections, main_object FROM {ks}.detections WHERE image_id = ?",
    select_crop => "SELECT model_version, crop_jpeg FROM {ks}.crops WHERE image_id = ? AND model_version = ?",
    select_crops => "SELECT model_version, crop_jpeg FROM {ks}.crops WHERE image_id = ?",
    select_code => "SELECT model_version, bits, code FROM {ks}.codes WHERE image_id = ? AND model_version = ?",
    select_codes => "SELECT model_version, bits, code FROM {ks}.codes WHERE image_id = ?",
    select_failures => "SELECT model_version, stage, kind, message, attempts, at_ms FROM {ks}.failures WHERE image_id = ?",
    scan_detections => "SELECT image_id, token(image_id) FROM {ks}.detections WHERE token(image_id) > ? LIMIT ?",
    scan_codes => "SELECT image_id, token(image_id) FROM {ks}.codes WHERE token(image_id) > ? LIMIT ?",
    scan_code_range => "SELECT image_id, model_version, bits, code FROM {ks}.codes WHERE token(image_id) >= ? AND token(image_id) <= ?",
    scan_failures => "SELECT image_id, token(image_id) FROM {ks}.failures WHERE token(image_id) > ? LIMIT ?",
    upsert_backfill => "INSERT INTO {ks}.backfills (id, range_from, range_to, model_version, next_id, published, skipped, job_state, created_ms, updated_ms) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
    select_backfill => "SELECT id, range_from, range_to, model_version, next_id, published, skipped, job_state, created_ms, updated_ms FROM {ks}.backfills WHERE id = ?",
    select_backfills => "SELECT id, range_from, range_to, model_version, next_id, published, skipped, job_state, created_ms, updated_ms FROM {ks}.backfills",
    select_setting => "SELECT value FROM {ks}.store_settings WHERE name = ?",
    insert_setting => "INSERT INTO {ks}.store_settings (name, value) VALUES (?, ?)",
    insert_near_duplicate => "INSERT INTO {ks}.near_duplicates (image_id, model_version, neighbour_id, distance, found_ms) VALUES (?, ?, ?, ?, ?) USING TTL ?",
    select_near_duplicates => "SELECT neighbour_id, distance FROM {ks}.near_duplicates WHERE image_id = ? AND model_version = ?",
}

/// Page size of paged reads (the backfills table; code scans set their own).
pub const PAGE_SIZE: i32 = 5_000;

async fn prepare_one(session: &Session, text: &str) -> Result<PreparedStatement, PrepareError> {
    let mut p = session.prepare(text.to_string()).await?;
    p.set_is_idempotent(true);
    p.set_page_size(PAGE_SIZE);
    Ok(p)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cqlcheck::assert_portable;

    fn text(name: &str) -> String {
        let (_, t) = TEMPLATES.iter().find(|(n, _)| *n == name).unwrap();
        render(t, "imgfeat")
    }

    #[test]
    fn every_statement_is_portable_and_fully_qualified() {
        assert!(TEMPLATES.len() >= 20);
        for (name, t) in TEMPLATES {
            let s = render(t, "ks1");
            assert_portable(&s);
            assert!(s.contains(" ks1."), "{name}: {s}");
            assert!(!s.contains('{'), "{name}: {s}");
        }
    }

    #[test]
    fn writes_are_plain_upserts_with_a_bound_ttl() {
        for (name, t) in TEMPLATES.iter().filter(|(n, _)| n.starts_with("insert_")) {
            assert!(t.starts_with("INSERT INTO "), "{name}");
            if *name != "insert_setting" {
                assert!(t.ends_with(" USING TTL ?"), "{name}");
            }
            // One marker per column, so no value is spliced into the text.
            let cols = t[t.find('(').unwrap()..t.find(')').unwrap()]
                .split(',')
                .count();
            let values = &t[t.find("VALUES (").unwrap()..];
            let marks = values[..values.find(')').unwrap()].matches('?').count();
            assert_eq!(marks, cols, "{name}: {t}");
        }
    }

    #[test]
    fn reads_address_one_partition_or_a_token_range() {
        for (name, t) in TEMPLATES.iter().filter(|(n, _)| n.starts_with("select_")) {
            if *name == "select_backfills" {
                continue; // a handful of rows, read whole
            }
            assert!(t.contains(" WHERE "), "{name}");
        }
        for name in ["scan_detections", "scan_codes", "scan_failures"] {
            assert!(text(name).contains("WHERE token(image_id) > ? LIMIT ?"));
        }
    }

    #[test]
    fn exact_text_of_the_hot_path() {
        assert_eq!(
            text("insert_code"),
            "INSERT INTO imgfeat.codes (image_id, model_version, bits, code, stored_ms) \
             VALUES (?, ?, ?, ?, ?) USING TTL ?"
        );
        assert_eq!(
            text("clear_failures"),
            "DELETE FROM imgfeat.failures WHERE image_id = ? AND model_version = ?"
        );
        assert_eq!(
            text("scan_code_range"),
            "SELECT image_id, model_version, bits, code FROM imgfeat.codes \
             WHERE token(image_id) >= ? AND token(image_id) <= ?"
        );
    }
}
