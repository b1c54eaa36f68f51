//! Two `imgfeat-search` shards following the code-stored fanout on the real broker,
//! over one real SQLite store: a code stored and announced shows in similar-image
//! answers without a restart, only its own shard holds it, a copy of a stored code is
//! recorded as a near-duplicate and announced, and a shard that was down finds the
//! events published meanwhile in its queue.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::sync::Arc;
use std::time::Duration;

use imgfeat_amqp::{AmqpConnection, AmqpPublisher, EventExchange, EventFollower};
use imgfeat_core::message::{CodeStored, DuplicateFound, Neighbour};
use imgfeat_core::ports::{DuplicateStore, JobPublisher, ResultStore};
use imgfeat_core::{BinaryCode, CodeRecord, ImageId, ModelVersion, now_ms};
use imgfeat_search_service::Settings;
use imgfeat_search_service::follow::follower_name;
use imgfeat_search_service::shard::{ShardSpec, shard_of};
use imgfeat_store::SqliteStore;

use common::{
    Rng, eventually, get, listeners, metric, metrics, pairs, settings, start, wait_ready,
};

fn record(version: &ModelVersion, id: u64, code: u64) -> CodeRecord {
    CodeRecord {
        image_id: ImageId(id),
        model_version: version.clone(),
        code: BinaryCode::from_bytes(64, code.to_be_bytes().to_vec()).unwrap(),
    }
}

/// An unused ID that `shard` of 2 owns.
fn id_of_shard(rng: &mut Rng, shard: u32) -> u64 {
    loop {
        let id = rng.next();
        if shard_of(id, 2) == shard {
            return id;
        }
    }
}

/// Stores a code, then announces it, as the extractor does.
async fn store_and_announce(
    store: &SqliteStore,
    publisher: &AmqpPublisher<CodeStored>,
    rec: &CodeRecord,
) {
    store.put_codes(std::slice::from_ref(rec)).await.unwrap();
    publisher
        .publish(&[CodeStored::of(rec, now_ms())])
        .await
        .unwrap();
}

async fn similar(client: &reqwest::Client, api: &str, id: u64, radius: u32) -> Vec<(u64, u32)> {
    let (status, body) = get(
        client,
        format!("{api}/v1/images/{id}/similar?radius={radius}&k=100"),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    pairs(&body)
}

async fn next_duplicate(events: &mut EventFollower<DuplicateFound>) -> DuplicateFound {
    let got = tokio::time::timeout(Duration::from_secs(60), events.next())
        .await
        .expect("no DuplicateFound within a minute")
        .unwrap();
    let event = got.event.clone();
    got.ack().await.unwrap();
    event
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shards_follow_stored_codes_dedup_them_and_miss_nothing_while_down() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("codes.sqlite3");
    let (_, version) = Settings::default().pipeline.versions().unwrap();
    let store = Arc::new(SqliteStore::open(&path).unwrap());
    let mut rng = Rng(11);
    let initial: Vec<CodeRecord> = (0..500)
        .map(|_| record(&version, rng.next(), rng.next()))
        .collect();
    store.put_codes(&initial).await.unwrap();

    let amqp = common::amqp("search-follow");
    let conn = AmqpConnection::connect(amqp.clone()).await.unwrap();
    let announce = AmqpPublisher::<CodeStored>::fanout(&conn, EventExchange::CodeStored);
    let mut duplicates =
        EventFollower::<DuplicateFound>::new(&conn, EventExchange::DuplicateFound, "test");
    duplicates.bind().await.unwrap();

    let (la, lb) = (listeners().await, listeners().await);
    let urls = vec![
        format!("http://{}", la.api.local_addr().unwrap()),
        format!("http://{}", lb.api.local_addr().unwrap()),
    ];
    let spec = |index| ShardSpec { index, count: 2 };
    let a = start(settings(&path, spec(0), urls.clone(), &amqp), la);
    let b = start(settings(&path, spec(1), urls.clone(), &amqp), lb);
    // A second replica of shard 1 (pod ordinal 3 of 2 shards x 2 replicas): it follows
    // every code too, but only replica 0 announces near-duplicates.
    let mut s2 = settings(&path, spec(1), urls.clone(), &amqp);
    s2.search.replicas = 2;
    s2.search.ordinal = Some(3);
    s2.validate().unwrap();
    let b2 = start(s2, listeners().await);
    let client = reqwest::Client::new();
    wait_ready(&client, &a).await;
    wait_ready(&client, &b).await;
    wait_ready(&client, &b2).await;

    // A stored code X of shard 1, and a new copy of it (3 bits flipped) in shard 0.
    let x = initial
        .iter()
        .find(|r| shard_of(r.image_id.0, 2) == 1)
        .unwrap()
        .clone();
    let x_code = u64::from_be_bytes(x.code.as_bytes().try_into().unwrap());
    let copy = record(&version, id_of_shard(&mut rng, 0), x_code ^ 0b1011);
    store_and_announce(&store, &announce, &copy).await;

    // Without a restart, the copy is among X's neighbours, asked through either shard.
    for api in [&a.api, &b.api] {
        eventually("the announced copy in X's neighbours", || async {
            similar(&client, api, x.image_id.0, 4).await == vec![(copy.image_id.0, 3)]
        })
        .await;
    }
    // Only its own shard holds it.
    eventually("both shards done with the event", || async {
        let ta = metrics(&client, &a).await;
        let tb = metrics(&client, &b).await;
        metric(&ta, "imgfeat_search_events_total{result=\"inserted\"}") == Some(1.0)
            && metric(&tb, "imgfeat_search_events_total{result=\"other_shard\"}") == Some(1.0)
    })
    .await;
    let mut held = 0.0;
    for s in [&a, &b] {
        held += metric(&metrics(&client, s).await, "imgfeat_search_index_codes").unwrap();
    }
    assert_eq!(held, initial.len() as f64 + 1.0);

    // The copy is a near-duplicate of X: found by X's shard, stored and announced.
    let found = next_duplicate(&mut duplicates).await;
    let want = vec![Neighbour {
        image_id: x.image_id,
        distance: 3,
    }];
    assert_eq!(found.image_id, copy.image_id);
    assert_eq!(found.neighbours, want);
    assert_eq!(found.shard, 1);
    assert_eq!(
        store
            .near_duplicates(copy.image_id, &version)
            .await
            .unwrap(),
        want
    );
    let tb = metrics(&client, &b).await;
    assert_eq!(
        metric(&tb, "imgfeat_search_duplicates_found_total"),
        Some(1.0)
    );
    // The other replica of shard 1 saw the same event and announced nothing.
    eventually("the second replica done with the event", || async {
        let t = metrics(&client, &b2).await;
        metric(&t, "imgfeat_search_events_total{result=\"other_shard\"}") == Some(1.0)
    })
    .await;
    let t2 = metrics(&client, &b2).await;
    assert_eq!(
        metric(&t2, "imgfeat_search_duplicates_found_total").unwrap_or(0.0),
        0.0,
        "a near-duplicate is announced once per shard, not once per replica"
    );
    assert!(metric(&tb, "imgfeat_search_event_lag_seconds").is_some());

    // Another code version's event is no business of these shards.
    let other = ModelVersion::new("other@1+bb@1+head@1").unwrap();
    let stranger = record(&other, id_of_shard(&mut rng, 1), x_code);
    store_and_announce(&store, &announce, &stranger).await;
    eventually("the other version's event ignored", || async {
        let tb = metrics(&client, &b).await;
        metric(&tb, "imgfeat_search_events_total{result=\"other_version\"}") == Some(1.0)
    })
    .await;

    // Shard 1 goes down; a copy of X is stored and announced meanwhile. Its near-duplicate
    // X is in shard 1 only, and only an event makes a shard look: back up, shard 1 must
    // find the event in its queue.
    b.stop.trigger();
    b.task.await.unwrap().unwrap();
    let late = record(&version, id_of_shard(&mut rng, 0), x_code ^ (0b111 << 40));
    store_and_announce(&store, &announce, &late).await;
    let b = start(
        settings(&path, spec(1), urls.clone(), &amqp),
        listeners().await,
    );
    wait_ready(&client, &b).await;
    // Shard 0 announces the first copy as a neighbour too; X comes from shard 1.
    let found = loop {
        let found = next_duplicate(&mut duplicates).await;
        assert_eq!(found.image_id, late.image_id);
        if found.shard == 1 {
            break found;
        }
    };
    assert!(
        found.neighbours.contains(&Neighbour {
            image_id: x.image_id,
            distance: 3
        }),
        "{found:?}"
    );
    let stored = store
        .near_duplicates(late.image_id, &version)
        .await
        .unwrap();
    assert!(
        stored.iter().any(|n| n.image_id == x.image_id),
        "{stored:?}"
    );

    for s in [a, b, b2] {
        s.stop.trigger();
        s.task.await.unwrap().unwrap();
    }
    duplicates.stopper().stop();
    conn.close().await;
    let name = |i| follower_name(&version, spec(i));
    common::teardown(
        &amqp,
        &[
            (EventExchange::CodeStored, name(0)),
            (EventExchange::CodeStored, name(1)),
            (EventExchange::CodeStored, format!("{}.replica-1", name(1))),
            (EventExchange::DuplicateFound, "test".to_string()),
        ],
    )
    .await;
}
