//! Duplicate groups: every planted group found whole, and the same components as a
//! brute-force pass over all pairs.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use imgfeat_search::{
    DuplicateGroup, HammingIndex, LinearScan, MultiIndex, duplicate_groups,
    duplicate_groups_banded, duplicate_groups_certified,
};
use rand::Rng;

/// Components of "within radius" over all pairs, the slow obvious way.
fn brute_force(codes: &[(u64, Vec<u8>)], radius: u32) -> Vec<DuplicateGroup> {
    let n = codes.len();
    let mut label: Vec<usize> = (0..n).collect();
    let dist = |a: &[u8], b: &[u8]| {
        a.iter()
            .zip(b)
            .map(|(x, y)| (x ^ y).count_ones())
            .sum::<u32>()
    };
    for i in 0..n {
        for j in i + 1..n {
            if dist(&codes[i].1, &codes[j].1) <= radius {
                let (from, to) = (label[j], label[i]);
                for l in label.iter_mut() {
                    if *l == from {
                        *l = to;
                    }
                }
            }
        }
    }
    let mut groups: std::collections::BTreeMap<usize, Vec<u64>> = Default::default();
    for (i, l) in label.iter().enumerate() {
        groups.entry(*l).or_default().push(codes[i].0);
    }
    let mut out: Vec<DuplicateGroup> = groups
        .into_values()
        .filter(|m| m.len() >= 2)
        .map(|mut members| {
            members.sort_unstable();
            DuplicateGroup { members }
        })
        .collect();
    out.sort_by_key(|g| g.members[0]);
    out
}

#[test]
fn groups_match_brute_force() {
    let mut rng = common::rng(3);
    for bits in [64, 256] {
        let codes: Vec<(u64, Vec<u8>)> = common::codes(bits, 1500, 40, &mut rng)
            .into_iter()
            .enumerate()
            .map(|(i, c)| ((i as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15), c))
            .collect();
        for radius in [3, 8] {
            let expected = brute_force(&codes, radius);
            assert!(!expected.is_empty());
            let mih = MultiIndex::build(bits, codes.iter().map(|(id, c)| (*id, c))).unwrap();
            let mut calls = 0;
            let got = duplicate_groups(&mih, radius, &mut |done, total| {
                calls += 1;
                assert!(done <= total);
            })
            .unwrap();
            assert!(calls > 0);
            assert_eq!(got, expected, "{bits} bits, R = {radius}");
            let mut scan = LinearScan::new(bits).unwrap();
            for (id, c) in &codes {
                scan.insert(*id, c).unwrap();
            }
            assert_eq!(
                duplicate_groups(&scan, radius, &mut |_, _| {}).unwrap(),
                expected
            );
            let mut last = (0, 0);
            let banded = duplicate_groups_banded(&scan, radius, &mut |done, total| {
                assert!(done <= total && done > last.0);
                last = (done, total);
            })
            .unwrap();
            assert_eq!(banded, expected, "banded, {bits} bits, R = {radius}");
            assert_eq!(last.0, last.1, "progress reaches its total");
        }
    }
}

/// The join at the radius it exists for (R = 27 on 128-bit codes, and the same relative
/// radius on 64 and 256 bits), with many identical codes (joined once) and chains.
#[test]
fn banded_join_matches_brute_force_at_large_radii() {
    let mut rng = common::rng(29);
    for (bits, radius) in [(128, 27), (128, 20), (64, 13), (256, 54)] {
        let mut codes = common::codes(bits, 1200, 40, &mut rng);
        let repeated = codes[3].clone();
        codes.extend(std::iter::repeat_n(repeated, 30));
        // Copies far from the seed (20-27 bits): the pairs a partial probe misses.
        for _ in 0..60 {
            let seed = codes[rng.random_range(0..codes.len())].clone();
            let mut c = seed.clone();
            for _ in 0..rng.random_range(radius - 7..=radius) {
                let b = rng.random_range(0..c.len() * 8);
                c[b / 8] ^= 0x80 >> (b % 8);
            }
            codes.push(c);
        }
        let codes: Vec<(u64, Vec<u8>)> = codes
            .into_iter()
            .enumerate()
            .map(|(i, c)| ((i as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15), c))
            .collect();
        let expected = brute_force(&codes, radius);
        let mih = MultiIndex::build(bits, codes.iter().map(|(id, c)| (*id, c))).unwrap();
        let banded = duplicate_groups_banded(&mih, radius, &mut |_, _| {}).unwrap();
        assert_eq!(banded, expected, "{bits} bits, R = {radius}");

        // Certifying less: groups are only ever split, never joined wrongly, and
        // every pair within the certified radius is still linked.
        for certified in [radius / 2, radius - 4] {
            let partial =
                duplicate_groups_certified(&mih, radius, certified, &mut |_, _| {}).unwrap();
            let mut group_of = std::collections::HashMap::new();
            for (g, group) in expected.iter().enumerate() {
                for id in &group.members {
                    group_of.insert(*id, g);
                }
            }
            for group in &partial {
                let g = group_of.get(&group.members[0]);
                assert!(g.is_some());
                assert!(group.members.iter().all(|id| group_of.get(id) == g));
            }
            let mut linked = std::collections::HashMap::new();
            for (g, group) in partial.iter().enumerate() {
                for id in &group.members {
                    linked.insert(*id, g);
                }
            }
            for group in brute_force(&codes, certified) {
                let g = linked.get(&group.members[0]);
                assert!(
                    g.is_some(),
                    "C = {certified}: {:?} not linked",
                    group.members
                );
                assert!(group.members.iter().all(|id| linked.get(id) == g));
            }
        }
    }
}

#[test]
fn every_planted_group_is_found_whole() {
    let mut rng = common::rng(17);
    let radius = 8;
    let mut entries = Vec::new();
    let mut planted: Vec<Vec<u64>> = Vec::new();
    let mut next_id = 0u64;
    // 2000 planted groups of 2-6 copies, each within radius / 2 of its seed, among
    // 40 000 random codes.
    for _ in 0..2000 {
        let seed = common::random_code(64, &mut rng);
        let mut members = Vec::new();
        for _ in 0..rng.random_range(2..=6) {
            entries.push((next_id, common::flipped(&seed, radius / 2, &mut rng)));
            members.push(next_id);
            next_id += 1;
        }
        planted.push(members);
    }
    for _ in 0..40_000 {
        entries.push((next_id, common::random_code(64, &mut rng)));
        next_id += 1;
    }
    let mih = MultiIndex::build(64, entries).unwrap();
    let groups = duplicate_groups(&mih, radius, &mut |_, _| {}).unwrap();
    let mut group_of = std::collections::HashMap::new();
    for (g, group) in groups.iter().enumerate() {
        assert!(group.members.len() >= 2);
        assert!(group.members.is_sorted());
        for id in &group.members {
            assert!(group_of.insert(*id, g).is_none(), "id {id} in two groups");
        }
    }
    for members in &planted {
        let g = group_of.get(&members[0]);
        assert!(g.is_some(), "planted group {members:?} not found");
        assert!(
            members.iter().all(|id| group_of.get(id) == g),
            "planted group {members:?} split"
        );
    }
    assert!(
        groups.len() >= planted.len() - 5,
        "random codes barely ever join"
    );
}
