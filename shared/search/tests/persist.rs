//! Save -> load round trips through real files, and damaged files refused with an error.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::path::Path;

use imgfeat_search::{HammingIndex, LinearScan, MultiIndex, SearchError};

fn filled_multi(bits: u32) -> (MultiIndex, Vec<Vec<u8>>) {
    let mut rng = common::rng(u64::from(bits));
    let codes = common::codes(bits, 2000, 40, &mut rng);
    let mut mih = MultiIndex::build(
        bits,
        codes.iter().enumerate().map(|(i, c)| (i as u64 * 3, c)),
    )
    .unwrap();
    // Leave an overflow and tombstones in place: save must write only live codes.
    for (i, c) in codes.iter().take(100).enumerate() {
        mih.insert(10_000 + i as u64, c).unwrap();
    }
    for id in (0..300u64).map(|i| i * 3) {
        mih.remove(id);
    }
    mih.insert(3 * 500, &codes[0]).unwrap();
    (mih, codes)
}

#[test]
fn multi_index_round_trips() {
    let dir = tempfile::tempdir().unwrap();
    for bits in [64, 128, 256] {
        let (mih, codes) = filled_multi(bits);
        let path = dir.path().join(format!("index-{bits}.bin"));
        mih.save(&path).unwrap();
        let back = MultiIndex::load(&path).unwrap();
        assert_eq!(back.bits(), bits);
        assert_eq!(back.ids(), mih.ids());
        for id in mih.ids() {
            assert_eq!(back.code_of(id), mih.code_of(id));
        }
        let mut rng = common::rng(5);
        for p in common::probes(bits, &codes, 10, &mut rng) {
            assert_eq!(back.knn(&p, 10).unwrap(), mih.knn(&p, 10).unwrap());
            assert_eq!(back.within(&p, 12).unwrap(), mih.within(&p, 12).unwrap());
        }
        // A linear scan reads the same file.
        let scan = LinearScan::load(&path).unwrap();
        assert_eq!(scan.ids(), mih.ids());
    }
}

#[test]
fn fixed_substring_count_survives_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("fixed.bin");
    let mut mih = MultiIndex::with_substrings(64, 5).unwrap();
    mih.insert(1, &[1; 8]).unwrap();
    mih.compact().unwrap();
    mih.save(&path).unwrap();
    assert_eq!(MultiIndex::load(&path).unwrap().substrings(), 5);
}

#[test]
fn linear_scan_round_trips_and_saving_replaces_the_old_file() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("scan.bin");
    let mut rng = common::rng(9);
    let mut scan = LinearScan::new(128).unwrap();
    for (i, c) in common::codes(128, 500, 50, &mut rng).iter().enumerate() {
        scan.insert(i as u64, c).unwrap();
    }
    scan.save(&path).unwrap();
    scan.remove(3);
    scan.save(&path).unwrap();
    let back = LinearScan::load(&path).unwrap();
    assert_eq!(back.ids(), scan.ids());
    assert_eq!(back.code_of(7), scan.code_of(7));
    assert!(back.code_of(3).is_none());
    // The temporary file of the atomic save is gone.
    assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1);
}

fn assert_bad_file(path: &Path) {
    let multi = MultiIndex::load(path);
    assert!(
        matches!(multi, Err(SearchError::BadFile { .. })),
        "{:?}",
        multi.err()
    );
    let scan = LinearScan::load(path);
    assert!(
        matches!(scan, Err(SearchError::BadFile { .. })),
        "{:?}",
        scan.err()
    );
}

#[test]
fn truncated_damaged_and_foreign_files_are_errors() {
    let dir = tempfile::tempdir().unwrap();
    let good = dir.path().join("good.bin");
    filled_multi(64).0.save(&good).unwrap();
    let bytes = std::fs::read(&good).unwrap();
    let bad = dir.path().join("bad.bin");

    // Every cut inside the header, and a sample through the body.
    let cuts = (0..40)
        .chain((40..bytes.len()).step_by(997))
        .chain([bytes.len() - 1]);
    for cut in cuts {
        std::fs::write(&bad, &bytes[..cut]).unwrap();
        assert_bad_file(&bad);
    }
    // One flipped bit anywhere past the magic: the checksum (or a header check) catches it.
    for at in (8..bytes.len()).step_by(331) {
        let mut damaged = bytes.clone();
        damaged[at] ^= 0x10;
        std::fs::write(&bad, &damaged).unwrap();
        assert_bad_file(&bad);
    }
    // A count so large its size overflows must not allocate.
    let mut huge = bytes.clone();
    huge[24..32].copy_from_slice(&u64::MAX.to_le_bytes());
    std::fs::write(&bad, &huge).unwrap();
    assert_bad_file(&bad);
    std::fs::write(
        &bad,
        b"not an index at all, just some text that is long enough",
    )
    .unwrap();
    assert_bad_file(&bad);

    let missing = MultiIndex::load(&dir.path().join("missing.bin"));
    assert!(matches!(missing, Err(SearchError::Io { .. })));
}
