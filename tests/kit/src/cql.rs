//! The CQL node the CQL tests run against: `IMGFEAT_TEST_CQL=host:port`, or a skip that
//! says so; and the clean-up of a test's keyspace.

use std::io::Write;

/// The variable naming the node.
pub const VAR: &str = "IMGFEAT_TEST_CQL";

/// The node, or `None` after saying that `test` is skipped: straight to the process's
/// stderr, past the test harness's capture, so a skip is never mistaken for a pass.
pub fn node(test: &str) -> Option<String> {
    match std::env::var(VAR) {
        Ok(v) if !v.trim().is_empty() => Some(v.trim().to_string()),
        _ => {
            let _ = writeln!(
                std::io::stderr().lock(),
                "SKIPPED: {test} — set {VAR}=host:port to run against Cassandra/ScyllaDB"
            );
            None
        }
    }
}

/// Drops `keyspace` on `node` (nothing if it is not there).
pub async fn drop_keyspace(node: &str, keyspace: &str) {
    let session = scylla::client::session_builder::SessionBuilder::new()
        .known_node(node)
        .build()
        .await
        .unwrap();
    session
        .query_unpaged(format!("DROP KEYSPACE IF EXISTS {keyspace}"), ())
        .await
        .unwrap();
}
