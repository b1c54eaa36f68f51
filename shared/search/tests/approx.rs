//! The probe that certifies fewer bits than its radius, against the linear scan: every
//! hit is one the scan gives (never a code beyond R, distances exact), every code
//! within the certified radius is found, and copies between that and R are found about
//! as often as the model says, measured on planted copies.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use imgfeat_search::{ApproxMultiIndex, HammingIndex, Hit, LinearScan, MultiIndex};
use proptest::prelude::*;
use rand::Rng;

/// `got` is a subset of `exact` (both sorted by distance, id), and holds every hit of
/// `exact` within `certified`.
fn assert_subset(got: &[Hit], exact: &[Hit], certified: u32, what: &str) {
    assert!(
        got.is_sorted_by_key(|h| (h.distance, h.id)),
        "{what}: unsorted"
    );
    for h in got {
        assert!(
            exact.contains(h),
            "{what}: {h:?} is not within R or has a wrong distance"
        );
    }
    for h in exact.iter().filter(|h| h.distance <= certified) {
        assert!(
            got.contains(h),
            "{what}: {h:?} within the certified radius was missed"
        );
    }
}

/// A copy of `code` with exactly `d` distinct bits flipped.
fn at_distance(code: &[u8], d: u32, rng: &mut impl Rng) -> Vec<u8> {
    let mut out = code.to_vec();
    let bits = code.len() * 8;
    let mut flipped = vec![false; bits];
    let mut done = 0;
    while done < d {
        let b = rng.random_range(0..bits);
        if !flipped[b] {
            flipped[b] = true;
            out[b / 8] ^= 0x80 >> (b % 8);
            done += 1;
        }
    }
    out
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(24))]

    #[test]
    fn certified_probes_are_subsets_of_the_scan(
        bits in prop_oneof![Just(64u32), Just(128), Just(256)],
        n in 1usize..3000,
        clustered in prop_oneof![Just(0u32), Just(50)],
        seed in any::<u64>(),
        fallback in any::<bool>(),
    ) {
        let mut rng = common::rng(seed);
        let codes = common::codes(bits, n, clustered, &mut rng);
        let mut scan = LinearScan::new(bits).unwrap();
        for (id, c) in codes.iter().enumerate() {
            scan.insert(id as u64, c).unwrap();
        }
        let mih = MultiIndex::build(bits, codes.iter().enumerate().map(|(id, c)| (id as u64, c)))
            .unwrap();
        let mih = if fallback { mih } else { mih.without_scan_fallback() };
        let probes = common::probes(bits, &codes, 6, &mut rng);
        for p in &probes {
            for radius in [8u32, 16, 20, 27] {
                let exact = scan.within(p, radius).unwrap();
                for certified in [0, radius / 2, radius.saturating_sub(4), radius] {
                    let got = mih.within_certified(p, radius, certified).unwrap();
                    assert_subset(&got, &exact, certified, &format!("{bits} bits R {radius} C {certified}"));
                    if certified == radius {
                        prop_assert_eq!(&got, &exact);
                    }
                }
            }
        }
    }
}

#[test]
fn approximate_index_stays_a_subset_through_updates() {
    let mut rng = common::rng(41);
    let codes = common::codes(128, 20_000, 40, &mut rng);
    let mut approx = ApproxMultiIndex::build(
        128,
        codes.iter().enumerate().map(|(id, c)| (id as u64, c)),
        0.5,
    )
    .unwrap();
    let mut scan = LinearScan::new(128).unwrap();
    for (id, c) in codes.iter().enumerate() {
        scan.insert(id as u64, c).unwrap();
    }
    let check = |approx: &ApproxMultiIndex, scan: &LinearScan, rng: &mut _| {
        assert_eq!(approx.ids(), scan.ids());
        for p in common::probes(128, &codes, 40, rng) {
            let exact = scan.within(&p, 27).unwrap();
            let got = approx.within(&p, 27).unwrap();
            assert_subset(&got, &exact, approx.certified_for(27), "approx");
            // k-NN stays exact.
            assert_eq!(approx.knn(&p, 5).unwrap(), scan.knn(&p, 5).unwrap());
        }
    };
    check(&approx, &scan, &mut rng);
    // Inserts land in the overflow (scanned, so found whatever the radius), upserts
    // and deletes in tombstones; past the thresholds the tables are rebuilt.
    for step in 0..30_000u64 {
        let id = rng.random_range(0..60_000u64);
        if step % 3 == 2 {
            assert_eq!(approx.remove(id), scan.remove(id));
        } else {
            let c = common::flipped(&codes[rng.random_range(0..codes.len())], 20, &mut rng);
            approx.insert(id, &c).unwrap();
            scan.insert(id, &c).unwrap();
        }
    }
    check(&approx, &scan, &mut rng);
}

#[test]
fn certified_radius_follows_the_edge_recall() {
    let mut rng = common::rng(5);
    let codes = common::codes(128, 50_000, 0, &mut rng);
    let entries = || {
        codes
            .iter()
            .enumerate()
            .map(|(id, c)| (id as u64, c.clone()))
    };
    let exact = ApproxMultiIndex::build(128, entries(), 1.0).unwrap();
    assert_eq!(exact.certified_for(27), 27);
    let mut last = 0;
    for edge in [0.0, 0.5, 0.8, 0.95] {
        let approx = ApproxMultiIndex::build(128, entries(), edge).unwrap();
        let c = approx.certified_for(27);
        assert!(c >= last && c <= 27, "edge {edge}: certified {c}");
        assert!(approx.recall_at(27, 27) >= edge);
        if c > 0 {
            // One bit less would not reach the edge recall: it is the least.
            assert!(approx.inner().found_probability(c - 1, 27) < edge);
        }
        for d in 0..=c {
            assert_eq!(approx.recall_at(27, d), 1.0);
        }
        assert_eq!(approx.recall_at(27, 28), 0.0);
        last = c;
    }
}

/// Copies planted at each distance up to R are found about as often as the model says
/// (uniformly flipped bits, as the model assumes), and never wrongly.
#[test]
fn planted_copies_are_found_as_the_model_says() {
    let mut rng = common::rng(99);
    let n = 200_000;
    let codes: Vec<Vec<u8>> = (0..n).map(|_| common::random_code(128, &mut rng)).collect();
    let approx = ApproxMultiIndex::build(
        128,
        codes.iter().enumerate().map(|(id, c)| (id as u64, c)),
        0.6,
    )
    .unwrap();
    let radius = 27;
    let certified = approx.certified_for(radius);
    assert!(certified < radius, "the probe is approximate at this size");
    let mut expected = 0.0;
    let mut found = 0;
    let mut planted = 0;
    for d in certified + 1..=radius {
        for _ in 0..200 {
            let row = rng.random_range(0..n);
            let probe = at_distance(&codes[row], d, &mut rng);
            let hits = approx.within(&probe, radius).unwrap();
            for h in &hits {
                let true_d: u32 = codes[h.id as usize]
                    .iter()
                    .zip(&probe)
                    .map(|(a, b)| (a ^ b).count_ones())
                    .sum();
                assert!(h.distance == true_d && true_d <= radius, "{h:?}");
            }
            planted += 1;
            found += usize::from(hits.iter().any(|h| h.id == row as u64));
            expected += approx.recall_at(radius, d);
        }
    }
    // Binomial spread of the count around its expectation: 4 standard deviations.
    let sd = (expected * (1.0 - expected / planted as f64)).sqrt();
    assert!(
        (found as f64 - expected).abs() <= 4.0 * sd + 1.0,
        "found {found} of {planted}, the model expects {expected:.1}"
    );
}
