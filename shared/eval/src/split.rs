//! Training vs held-out photos, decided by each file's name alone: a photo is held out
//! when the sha256 of its file name, read as a number, falls in the first `percent` of
//! 100 buckets. The rule needs no list, is the same on every machine and in every folder
//! order, and a photo added later does not move the others between the parts.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

/// The held-out share used unless told otherwise (of the 288 catalogue photos, 71
/// are held out).
pub const DEFAULT_HELD_OUT_PERCENT: u8 = 25;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Part {
    Training,
    HeldOut,
}

/// Which part `photo` belongs to with `percent` % held out.
pub fn part_of(photo: &Path, percent: u8) -> Part {
    let name = photo
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let digest = Sha256::digest(name.as_bytes());
    let mut first = [0u8; 8];
    first.copy_from_slice(&digest[..8]);
    if u64::from_be_bytes(first) % 100 < u64::from(percent.min(100)) {
        Part::HeldOut
    } else {
        Part::Training
    }
}

/// The photos of one part, in their given order.
pub fn select(photos: &[PathBuf], percent: u8, part: Part) -> Vec<PathBuf> {
    photos
        .iter()
        .filter(|p| part_of(p, percent) == part)
        .cloned()
        .collect()
}

/// What the rule was, for manifests and reports.
pub fn describe(percent: u8, part: Part) -> String {
    let which = match part {
        Part::Training => "training",
        Part::HeldOut => "held-out",
    };
    format!("{which} part: a photo is held out when u64(sha256(file name)[..8]) % 100 < {percent}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_split_depends_on_the_name_only_and_is_near_its_share() {
        let photos: Vec<PathBuf> = (1..=400)
            .map(|i| PathBuf::from(format!("/a/{i:04}.jpg")))
            .collect();
        let held = select(&photos, 25, Part::HeldOut);
        let train = select(&photos, 25, Part::Training);
        assert_eq!(held.len() + train.len(), 400);
        assert!((70..=130).contains(&held.len()), "{}", held.len());
        // Another folder, same names: same parts.
        for p in &held {
            let moved = Path::new("/elsewhere").join(p.file_name().unwrap());
            assert_eq!(part_of(&moved, 25), Part::HeldOut);
        }
        assert!(select(&photos, 0, Part::HeldOut).is_empty());
        assert!(select(&photos, 100, Part::Training).is_empty());
    }
}
