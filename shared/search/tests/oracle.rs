//! The multi-index against the linear scan: identical radius and k-NN answers on random
//! and clustered codes, through inserts, upserts, deletes and compactions.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use imgfeat_search::{HammingIndex, LinearScan, MultiIndex};
use proptest::prelude::*;
use rand::Rng;

#[derive(Debug, Clone)]
struct Case {
    bits: u32,
    /// 0 = chosen from the size.
    substrings: u32,
    n: usize,
    clustered: u32,
    seed: u64,
    fallback: bool,
    /// Inline tables after the first (64-bit codes with a fixed substring count).
    inline: bool,
}

fn case() -> impl Strategy<Value = Case> {
    (
        prop_oneof![Just(64u32), Just(128), Just(256)],
        0u32..4,
        1usize..600,
        prop_oneof![Just(0u32), Just(50), Just(90)],
        any::<u64>(),
        any::<bool>(),
        any::<bool>(),
    )
        .prop_map(|(bits, pick, n, clustered, seed, fallback, inline)| {
            // Auto, the fewest substrings allowed (longest tables, straddling words
            // at 128/256 bits), and two in between.
            let min = bits.div_ceil(24);
            let substrings = [0, min, min + 1, bits / 8][pick as usize];
            Case {
                bits,
                substrings,
                n,
                clustered,
                seed,
                fallback,
                inline: inline && bits == 64 && substrings != 0,
            }
        })
}

fn multi(case: &Case) -> MultiIndex {
    let index = if case.inline {
        MultiIndex::with_inline_tables(case.substrings)
    } else if case.substrings == 0 {
        MultiIndex::new(case.bits)
    } else {
        MultiIndex::with_substrings(case.bits, case.substrings)
    }
    .unwrap();
    if case.fallback {
        index
    } else {
        index.without_scan_fallback()
    }
}

fn assert_same(mih: &MultiIndex, scan: &LinearScan, probes: &[Vec<u8>]) {
    assert_eq!(mih.len(), scan.len());
    assert_eq!(mih.ids(), scan.ids());
    for p in probes {
        for k in [1, 3, 10, 50] {
            assert_eq!(mih.knn(p, k).unwrap(), scan.knn(p, k).unwrap(), "k = {k}");
        }
        for r in [0, 1, 4, 8, 12, 16, 25] {
            assert_eq!(
                mih.within(p, r).unwrap(),
                scan.within(p, r).unwrap(),
                "R = {r}"
            );
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    #[test]
    fn answers_match_the_scan(case in case()) {
        let mut rng = common::rng(case.seed);
        let codes = common::codes(case.bits, case.n, case.clustered, &mut rng);
        let mut scan = LinearScan::new(case.bits).unwrap();
        for (id, c) in codes.iter().enumerate() {
            scan.insert(id as u64 * 7, c).unwrap();
        }
        let mut mih = multi(&case);
        for (id, c) in codes.iter().enumerate() {
            mih.insert(id as u64 * 7, c).unwrap();
        }
        // Small indexes never reach the rebuild threshold: fold into the tables by hand.
        mih.compact().unwrap();
        let probes = common::probes(case.bits, &codes, 6, &mut rng);
        assert_same(&mih, &scan, &probes);

        // Online changes on top of the tables: new ids (overflow), upserts of indexed
        // ids (tombstone + overflow), upserts of overflow ids (in place), deletes.
        let n = codes.len() as u64;
        for step in 0..(case.n / 2 + 5) {
            let id = rng.random_range(0..n * 9);
            match rng.random_range(0..4) {
                0 | 1 => {
                    let c = if step % 2 == 0 {
                        common::flipped(&codes[rng.random_range(0..codes.len())], 20, &mut rng)
                    } else {
                        common::random_code(case.bits, &mut rng)
                    };
                    scan.insert(id, &c).unwrap();
                    mih.insert(id, &c).unwrap();
                }
                _ => assert_eq!(mih.remove(id), scan.remove(id), "remove {id}"),
            }
        }
        for id in scan.ids() {
            prop_assert_eq!(mih.code_of(id), scan.code_of(id));
        }
        assert_same(&mih, &scan, &probes);
        mih.compact().unwrap();
        assert_same(&mih, &scan, &probes);
    }
}

#[test]
fn bulk_build_keeps_the_last_code_of_a_repeated_id() {
    let mut rng = common::rng(7);
    let codes = common::codes(64, 3000, 50, &mut rng);
    // Ids repeat (id = row % 1000) and arrive unsorted.
    let entries: Vec<(u64, Vec<u8>)> = codes
        .iter()
        .enumerate()
        .map(|(row, c)| (((row * 7919) % 1000) as u64, c.clone()))
        .collect();
    let mih = MultiIndex::build(64, entries.clone()).unwrap();
    let mut scan = LinearScan::new(64).unwrap();
    for (id, c) in &entries {
        scan.insert(*id, c).unwrap();
    }
    assert_eq!(mih.len(), 1000);
    let probes = common::probes(64, &codes, 20, &mut rng);
    assert_same(&mih, &scan, &probes);
}

#[test]
fn online_inserts_past_the_threshold_rebuild_and_stay_exact() {
    let mut rng = common::rng(11);
    let codes = common::codes(64, 40_000, 30, &mut rng);
    let mut mih = MultiIndex::new(64).unwrap();
    let mut scan = LinearScan::new(64).unwrap();
    for (id, c) in codes.iter().enumerate() {
        mih.insert(id as u64, c).unwrap();
        scan.insert(id as u64, c).unwrap();
    }
    assert!(
        mih.substrings() > 0,
        "inserts past the threshold build the tables"
    );
    for id in (0..40_000u64).step_by(2) {
        assert!(mih.remove(id));
        scan.remove(id);
    }
    let probes = common::probes(64, &codes, 30, &mut rng);
    assert_same(&mih, &scan, &probes);
}

#[test]
fn wrong_lengths_are_refused() {
    let mut mih = MultiIndex::new(128).unwrap();
    assert!(mih.insert(1, &[0u8; 8]).is_err());
    assert!(mih.knn(&[0u8; 32], 3).is_err());
    assert!(mih.within(&[0u8; 15], 3).is_err());
    assert!(MultiIndex::new(96).is_err());
    assert!(LinearScan::new(32).is_err());
    assert!(MultiIndex::with_substrings(64, 2).is_err());
    assert!(mih.is_empty());
    assert_eq!(mih.knn(&[0u8; 16], 5).unwrap(), vec![]);
}

#[test]
fn inline_tables_find_every_row_of_a_repeated_code() {
    // Copies of one code under many ids, some deleted, beside clustered codes: an inline
    // table stores the code once per row but resolves it through the first table.
    let mut rng = common::rng(23);
    let mut codes = common::codes(64, 20_000, 60, &mut rng);
    let repeated = codes[17].clone();
    codes.extend(std::iter::repeat_n(repeated.clone(), 40));
    for m in [3, 4] {
        let entries = codes
            .iter()
            .enumerate()
            .map(|(id, c)| (id as u64, c.clone()));
        let mut mih = MultiIndex::with_inline_tables(m)
            .unwrap()
            .without_scan_fallback();
        let mut scan = LinearScan::new(64).unwrap();
        for (id, c) in entries {
            mih.insert(id, &c).unwrap();
            scan.insert(id, &c).unwrap();
        }
        mih.compact().unwrap();
        assert!(mih.layout().ends_with("inline"), "{}", mih.layout());
        for id in (20_000..20_040u64).step_by(3) {
            assert!(mih.remove(id));
            scan.remove(id);
        }
        let within = mih.within(&repeated, 0).unwrap();
        assert_eq!(within, scan.within(&repeated, 0).unwrap());
        assert!(within.len() > 20, "{} copies found", within.len());
        let probes = common::probes(64, &codes, 40, &mut rng);
        assert_same(&mih, &scan, &probes);
    }
}
