//! Copy detection at catalogue scale (issue 29): 128-bit codes at R = 27, read from a
//! real SQLite store into a shard as the service loads it. The shard answers such a
//! radius with the approximate probe (`search.radius_method = "auto"`): it finds the
//! planted copies (every one within the certified radius, and nearly all beyond it),
//! never a code beyond R, and `"exact"` gives the scan's answer. A whole-catalogue dedup
//! by the banded join (`imgfeat dedup`'s path) gives the same groups as one exact query
//! per code, every planted group whole.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::collections::BTreeSet;

use imgfeat_core::ModelVersion;
use imgfeat_core::ports::ResultStore;
use imgfeat_search::store_loader::{RadiusMethod, dedup_groups, load_index};
use imgfeat_search_service::shard::ShardSpec;
use imgfeat_search_service::shard_index::{ShardIndex, ShardQuery};
use imgfeat_store::SqliteStore;

use common::Rng;
use imgfeat_testkit::codes::{Code128, code_records, distance};

const RADIUS: u32 = 27;
const BACKGROUND: usize = 20_000;
const ORIGINALS: usize = 120;

type Code = Code128;

/// Copy distances shaped like the shipped 128-bit head's held-out copies (half within
/// 7 bits, most within 20), with a tail out to R and a few just past it.
fn copy_distance(rng: &mut Rng) -> u32 {
    match rng.next() % 10 {
        0..=4 => (rng.next() % 8) as u32,
        5..=7 => 8 + (rng.next() % 13) as u32,
        8 => 21 + (rng.next() % 7) as u32,
        _ => 24 + (rng.next() % 8) as u32, // 24..=31: some beyond R
    }
}

struct Catalogue {
    codes: Vec<(u64, Code)>,
    /// Per planted group: the original's id, then (copy id, distance to the original).
    groups: Vec<(u64, Vec<(u64, u32)>)>,
}

fn catalogue(seed: u64) -> Catalogue {
    let mut rng = Rng(seed);
    let mut codes = Vec::new();
    let mut next_id = 1u64;
    let mut id = || {
        next_id += 1;
        next_id * 7
    };
    for _ in 0..BACKGROUND {
        codes.push((id(), rng.code128()));
    }
    let mut groups = Vec::new();
    for _ in 0..ORIGINALS {
        let original = rng.code128();
        let oid = id();
        codes.push((oid, original));
        let mut copies = Vec::new();
        for _ in 0..1 + rng.next() % 3 {
            let d = copy_distance(&mut rng);
            let cid = id();
            codes.push((cid, rng.copy_at(&original, d)));
            copies.push((cid, d));
        }
        groups.push((oid, copies));
    }
    Catalogue { codes, groups }
}

fn version() -> ModelVersion {
    ModelVersion::new("ssd@1+effnet@1+deepbit128@1").unwrap()
}

async fn store_of(cat: &Catalogue, dir: &std::path::Path) -> SqliteStore {
    let store = SqliteStore::open(&dir.join("codes.sqlite3")).unwrap();
    let version = version();
    let records = code_records(&version, &cat.codes);
    for page in records.chunks(2_000) {
        store.put_codes(page).await.unwrap();
    }
    store
}

/// Every stored code within `radius` of `probe` but `exclude`, as (id, distance).
fn scan(cat: &Catalogue, probe: &Code, radius: u32, exclude: u64) -> BTreeSet<(u64, u32)> {
    cat.codes
        .iter()
        .filter(|(id, _)| *id != exclude)
        .map(|(id, c)| (*id, distance(probe, c)))
        .filter(|(_, d)| *d <= radius)
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_shard_finds_planted_copies_at_radius_27_and_never_a_code_beyond_it() {
    let cat = catalogue(29);
    let dir = tempfile::tempdir().unwrap();
    let store = store_of(&cat, dir.path()).await;
    let auto = ShardIndex::new(version(), ShardSpec::default());
    let exact =
        ShardIndex::new(version(), ShardSpec::default()).with_radius_method(RadiusMethod::Exact);
    assert_eq!(auto.load(&store).await.unwrap(), cat.codes.len());
    exact.load(&store).await.unwrap();

    // 128-bit codes past 16 bits take the approximate probe; up to 16, and under
    // "exact", the exact multi-index.
    assert!(auto.approximate(RADIUS));
    assert!(!auto.approximate(16));
    assert!(!exact.approximate(RADIUS));
    let certified = auto.certified_for(RADIUS).unwrap();
    assert!(certified < RADIUS, "certifies {certified}");
    assert_eq!(exact.certified_for(RADIUS), Some(RADIUS));

    let code_of: std::collections::HashMap<u64, Code> = cat.codes.iter().copied().collect();
    let (mut within, mut found, mut beyond_certified, mut found_beyond) = (0, 0, 0, 0);
    for (original, copies) in &cat.groups {
        for &(copy, d) in copies {
            // What the dedup of the copy's upload asks (the copy itself is stored).
            let query = ShardQuery {
                k: usize::MAX,
                radius: Some(RADIUS),
                exclude: Some(copy),
            };
            let probe = code_of[&copy];
            let truth = scan(&cat, &probe, RADIUS, copy);
            let got: BTreeSet<(u64, u32)> = auto
                .query(&probe, query)
                .unwrap()
                .into_iter()
                .map(|h| (h.id, h.distance))
                .collect();
            // Never a hit the scan does not give (beyond R or a wrong distance), and
            // every code within the certified radius.
            assert!(got.is_subset(&truth), "copy {copy}: {got:?} vs {truth:?}");
            for hit in truth.iter().filter(|(_, d)| *d <= certified) {
                assert!(got.contains(hit), "copy {copy} misses {hit:?}");
            }
            // The exact path is the scan.
            let all: BTreeSet<(u64, u32)> = exact
                .query(&probe, query)
                .unwrap()
                .into_iter()
                .map(|h| (h.id, h.distance))
                .collect();
            assert_eq!(all, truth, "copy {copy}");
            if d <= RADIUS {
                within += 1;
                let hit = got.iter().any(|(id, _)| id == original);
                found += usize::from(hit);
                if d > certified {
                    beyond_certified += 1;
                    found_beyond += usize::from(hit);
                }
            } else {
                assert!(!got.iter().any(|(id, _)| id == original));
            }
        }
    }
    let recall = found as f64 / within as f64;
    eprintln!(
        "{found} of {within} copies within {RADIUS} found ({recall:.4}), certified {certified}; \
         {found_beyond} of {beyond_certified} beyond it"
    );
    assert!(
        beyond_certified >= 10,
        "too few copies past the certified radius"
    );
    assert!(recall >= 0.95, "{found} of {within}");

    // A copy that arrives after the load (a code-stored event) is found the same way.
    let (original, _) = cat.groups[0];
    let late = Rng(5).copy_at(&code_of[&original], 6);
    auto.insert(1, &late, 128).unwrap();
    let hits = auto
        .query(
            &late,
            ShardQuery {
                k: usize::MAX,
                radius: Some(RADIUS),
                exclude: Some(1),
            },
        )
        .unwrap();
    assert!(hits.iter().any(|h| h.id == original), "{hits:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_banded_dedup_gives_the_exact_groups_every_planted_group_whole() {
    let cat = catalogue(30);
    let dir = tempfile::tempdir().unwrap();
    let store = store_of(&cat, dir.path()).await;
    let index = load_index(&store as &dyn ResultStore, &version(), |_| true)
        .await
        .unwrap()
        .unwrap();
    let banded = dedup_groups(&index, RADIUS, RadiusMethod::Auto, &mut |_, _| {}).unwrap();
    let exact = dedup_groups(&index, RADIUS, RadiusMethod::Exact, &mut |_, _| {}).unwrap();
    assert_eq!(banded, exact);
    assert!(
        banded.len() >= ORIGINALS * 9 / 10,
        "{} groups",
        banded.len()
    );
    // A copy past R may still join through another copy: a planted group is found
    // whole when one group holds the original and every copy within R of it.
    for (original, copies) in &cat.groups {
        let members: BTreeSet<u64> = std::iter::once(*original)
            .chain(
                copies
                    .iter()
                    .filter(|(_, d)| *d <= RADIUS)
                    .map(|(id, _)| *id),
            )
            .collect();
        if members.len() > 1 {
            assert!(
                banded
                    .iter()
                    .any(|g| members.iter().all(|m| g.members.contains(m))),
                "group of {original} not whole"
            );
        }
    }
}
