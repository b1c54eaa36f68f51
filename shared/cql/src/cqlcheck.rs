//! Test helper: what makes a CQL statement run unchanged on Cassandra 4.x and ScyllaDB,
//! on the hot path and off it.

/// Words reserved in Cassandra 4 CQL: as bare column names they break parsing.
const RESERVED: &[&str] = &[
    "add",
    "allow",
    "alter",
    "and",
    "apply",
    "asc",
    "authorize",
    "batch",
    "begin",
    "by",
    "columnfamily",
    "create",
    "delete",
    "desc",
    "describe",
    "drop",
    "entries",
    "execute",
    "from",
    "full",
    "grant",
    "if",
    "in",
    "index",
    "infinity",
    "insert",
    "into",
    "is",
    "keyspace",
    "limit",
    "materialized",
    "mbean",
    "mbeans",
    "modify",
    "nan",
    "norecursive",
    "not",
    "null",
    "of",
    "on",
    "or",
    "order",
    "primary",
    "rename",
    "replace",
    "revoke",
    "schema",
    "select",
    "set",
    "table",
    "to",
    "token",
    "truncate",
    "unlogged",
    "unset",
    "update",
    "use",
    "using",
    "view",
    "where",
    "with",
];

/// Panics when `cql` uses something one of the two servers refuses or treats differently.
pub fn assert_portable(cql: &str) {
    let upper = cql.to_uppercase();
    let banned = [
        "ALLOW FILTERING", // full scans in disguise
        "CUSTOM INDEX",    // SAI / SASI
        "STORAGEATTACHEDINDEX",
        "MATERIALIZED VIEW",
        "PER PARTITION LIMIT", // absent from older Cassandra versions
        "BYPASS CACHE",        // Scylla-only
        "USING TIMEOUT",       // Scylla-only
        "USING SERVICE LEVEL", // Scylla-only
        " IN (",               // large IN lists fan out from one coordinator
        " IN ?",
        "COUNTER",
        "SERIAL",
    ];
    for b in banned {
        assert!(!upper.contains(b), "{b} in {cql}");
    }
    // LWT conditions: the only `IF`s allowed are the DDL guards, `CREATE ... IF NOT
    // EXISTS` and `DROP TABLE IF EXISTS` (both servers accept both).
    for (i, _) in upper.match_indices(" IF ") {
        let rest = &upper[i..];
        let create_guard = rest.starts_with(" IF NOT EXISTS ") && upper.starts_with("CREATE ");
        let drop_guard = rest.starts_with(" IF EXISTS ") && upper.starts_with("DROP TABLE ");
        assert!(create_guard || drop_guard, "LWT condition in {cql}");
    }
    if let (Some(open), Some(close)) = (cql.find('('), cql.rfind(')'))
        && upper.starts_with("CREATE TABLE")
    {
        for col in cql[open + 1..close].split(',') {
            let name = col.split_whitespace().next().unwrap_or("");
            let name = name.trim_matches(|c| c == '(' || c == ')').to_lowercase();
            if name == "primary" {
                continue; // the `PRIMARY KEY (...)` clause, not a column
            }
            assert!(
                !RESERVED.contains(&name.as_str()),
                "reserved column {name} in {cql}"
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    #[should_panic(expected = "LWT")]
    fn lwt_conditions_are_caught() {
        assert_portable("UPDATE ks.t SET a = 1 WHERE k = 1 IF a = 0");
    }

    #[test]
    #[should_panic(expected = "LWT")]
    fn lwt_inserts_are_caught() {
        assert_portable("INSERT INTO ks.t (k) VALUES (1) IF NOT EXISTS ");
    }

    #[test]
    #[should_panic(expected = "LWT")]
    fn conditional_deletes_are_caught() {
        assert_portable("DELETE FROM ks.t WHERE k = 1 IF EXISTS");
    }

    #[test]
    fn ddl_guards_are_allowed() {
        assert_portable("DROP TABLE IF EXISTS ks.t");
        assert_portable("CREATE TABLE IF NOT EXISTS ks.t (k bigint PRIMARY KEY)");
    }

    #[test]
    #[should_panic(expected = "reserved")]
    fn reserved_column_names_are_caught() {
        assert_portable("CREATE TABLE IF NOT EXISTS ks.t (from bigint PRIMARY KEY)");
    }

    #[test]
    #[should_panic(expected = "ALLOW FILTERING")]
    fn filtering_is_caught() {
        assert_portable("SELECT a FROM ks.t WHERE b = ? ALLOW FILTERING");
    }
}
