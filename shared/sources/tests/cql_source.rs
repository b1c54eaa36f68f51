//! The CQL blob-table source against a real ScyllaDB or Cassandra 4.x node, named by
//! `IMGFEAT_TEST_CQL=host:port` (as the store's own tests in `imgfeat-cql`). The test
//! works in a fresh keyspace and drops it at the end, pass or fail. Without the
//! variable it says it was skipped, on stderr outside the harness's capture.
#![cfg(feature = "cql")]
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::io::Write;
use std::sync::Arc;

use imgfeat_core::ImageId;
use imgfeat_core::ports::{ImageSource, SourceError};
use imgfeat_sources::{CqlImageSource, CqlSourceConfig, IdType, SourceSettings};
use scylla::client::session::Session;
use scylla::client::session_builder::SessionBuilder;

const VAR: &str = "IMGFEAT_TEST_CQL";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cql_image_source_reads_blobs_and_sorts_errors() {
    let Ok(node) = std::env::var(VAR).map(|v| v.trim().to_string()) else {
        let _ = writeln!(
            std::io::stderr().lock(),
            "SKIPPED: cql image source — set {VAR}=host:port to run against Cassandra/ScyllaDB"
        );
        return;
    };
    let session = Arc::new(
        SessionBuilder::new()
            .known_node(&node)
            .build()
            .await
            .unwrap(),
    );
    let ks = format!("imgfeat_t_source_{}", std::process::id());
    session
        .query_unpaged(
            format!(
                "CREATE KEYSPACE {ks} WITH replication = \
                 {{'class': 'SimpleStrategy', 'replication_factor': 1}}"
            ),
            (),
        )
        .await
        .unwrap();
    let outcome = tokio::spawn(exercise(Arc::clone(&session), node, ks.clone())).await;
    let dropped = session
        .query_unpaged(format!("DROP KEYSPACE IF EXISTS {ks}"), ())
        .await;
    // The body's failure says more than a clean-up failure it probably caused.
    if let Err(e) = outcome {
        std::panic::resume_unwind(e.into_panic());
    }
    dropped.unwrap();
}

async fn exercise(session: Arc<Session>, node: String, ks: String) {
    let ks = &ks;
    for ddl in [
        format!("CREATE TABLE {ks}.images (image_id bigint PRIMARY KEY, data blob)"),
        format!("CREATE TABLE {ks}.\"Photos\" (sku text PRIMARY KEY, \"Content\" blob)"),
    ] {
        session.query_unpaged(ddl, ()).await.unwrap();
    }
    session.await_schema_agreement().await.unwrap();
    let insert = format!("INSERT INTO {ks}.images (image_id, data) VALUES (?, ?)");
    for (id, bytes) in [(1i64, vec![1u8; 10]), (-1, vec![2; 10]), (2, vec![3; 100])] {
        session
            .query_unpaged(insert.clone(), (id, bytes))
            .await
            .unwrap();
    }
    session
        .query_unpaged(
            format!("INSERT INTO {ks}.\"Photos\" (sku, \"Content\") VALUES (?, ?)"),
            ("77", vec![7u8; 5]),
        )
        .await
        .unwrap();

    let src = CqlImageSource::with_session(
        Arc::clone(&session),
        &CqlSourceConfig {
            keyspace: ks.clone(),
            table: "images".into(),
            id_column: "image_id".into(),
            bytes_column: "data".into(),
            max_bytes: 50,
            max_concurrent_fetches: 2,
            ..Default::default()
        },
    )
    .await
    .unwrap();
    assert_eq!(src.fetch(ImageId(1)).await.unwrap(), vec![1; 10]);
    assert_eq!(src.fetch(ImageId(u64::MAX)).await.unwrap(), vec![2; 10]);
    assert!(matches!(
        src.fetch(ImageId(3)).await,
        Err(SourceError::NotFound(ImageId(3), _))
    ));
    assert!(matches!(
        src.fetch(ImageId(2)).await,
        Err(SourceError::TooLarge {
            size: 100,
            limit: 50,
            ..
        })
    ));
    // Many at once through two permits.
    let all = futures::future::join_all((0..20).map(|_| src.fetch(ImageId(1)))).await;
    assert!(all.iter().all(|r| r.is_ok()));

    let by_text = CqlImageSource::with_session(
        Arc::clone(&session),
        &CqlSourceConfig {
            keyspace: ks.clone(),
            table: "Photos".into(),
            id_column: "sku".into(),
            id_type: IdType::Text,
            bytes_column: "Content".into(),
            ..Default::default()
        },
    )
    .await
    .unwrap();
    assert_eq!(by_text.fetch(ImageId(77)).await.unwrap(), vec![7; 5]);

    // Opened from its settings, as the detector opens it: the port and its readiness
    // check, which asks the cluster.
    let opened = SourceSettings::Cql(Box::new(CqlSourceConfig {
        nodes: vec![node],
        keyspace: ks.clone(),
        table: "images".into(),
        id_column: "image_id".into(),
        bytes_column: "data".into(),
        ..Default::default()
    }))
    .open(50)
    .await
    .unwrap();
    assert_eq!(opened.port.fetch(ImageId(1)).await.unwrap(), vec![1; 10]);
    assert_eq!(opened.ready.run().await, Ok(()));

    // A wrong column is caught when the source is built, not per image.
    let wrong = CqlImageSource::with_session(
        session,
        &CqlSourceConfig {
            keyspace: ks.clone(),
            table: "images".into(),
            bytes_column: "nope".into(),
            ..Default::default()
        },
    )
    .await;
    assert!(wrong.is_err());
}
