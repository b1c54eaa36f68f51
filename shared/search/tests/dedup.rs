//! Duplicate groups: every planted group found whole, and the same components as a
//! brute-force pass over all pairs.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use imgfeat_search::{DuplicateGroup, HammingIndex, LinearScan, MultiIndex, duplicate_groups};
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
