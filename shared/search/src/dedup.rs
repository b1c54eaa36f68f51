//! Near-duplicate groups: the connected components of "within `radius`", found by one
//! radius query per code and a union-find over positions. Memory is O(N) (ids, parents,
//! sizes) plus one chunk's pairs; no N x N matrix is ever built.

use rayon::prelude::*;

use crate::{HammingIndex, SearchError};

/// Codes handed to the worker threads at a time; also how often progress is reported.
const CHUNK: usize = 4096;

/// Ids whose codes are chained within the radius, ascending.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct DuplicateGroup {
    pub members: Vec<u64>,
}

/// Every group of two or more ids linked by pairs within `radius`, ordered by first member.
/// `progress(done, total)` is called after each chunk of codes.
pub fn duplicate_groups(
    index: &dyn HammingIndex,
    radius: u32,
    progress: &mut dyn FnMut(usize, usize),
) -> Result<Vec<DuplicateGroup>, SearchError> {
    let ids = index.ids();
    let total = ids.len();
    let mut sets = UnionFind::new(total);
    for (c, chunk) in ids.chunks(CHUNK).enumerate() {
        let first = c * CHUNK;
        let pairs: Vec<(u32, u32)> = chunk
            .par_iter()
            .enumerate()
            .map(|(i, &id)| -> Result<Vec<(u32, u32)>, SearchError> {
                let Some(code) = index.code_of(id) else {
                    return Ok(Vec::new());
                };
                let hits = index.within(&code, radius)?;
                // Each pair is seen from both ends; the larger id's end is enough.
                Ok(hits
                    .iter()
                    .filter(|h| h.id > id)
                    .filter_map(|h| ids.binary_search(&h.id).ok())
                    .map(|p| ((first + i) as u32, p as u32))
                    .collect())
            })
            .collect::<Result<Vec<_>, _>>()?
            .into_iter()
            .flatten()
            .collect();
        for (a, b) in pairs {
            sets.union(a, b);
        }
        progress(first + chunk.len(), total);
    }
    Ok(sets.groups(&ids))
}

struct UnionFind {
    parent: Vec<u32>,
    size: Vec<u32>,
}

impl UnionFind {
    fn new(n: usize) -> Self {
        Self {
            parent: (0..n as u32).collect(),
            size: vec![1; n],
        }
    }

    fn find(&mut self, mut x: u32) -> u32 {
        while self.parent[x as usize] != x {
            // Path halving: each visited node skips to its grandparent.
            let grand = self.parent[self.parent[x as usize] as usize];
            self.parent[x as usize] = grand;
            x = grand;
        }
        x
    }

    fn union(&mut self, a: u32, b: u32) {
        let (mut a, mut b) = (self.find(a), self.find(b));
        if a == b {
            return;
        }
        if self.size[a as usize] < self.size[b as usize] {
            std::mem::swap(&mut a, &mut b);
        }
        self.parent[b as usize] = a;
        self.size[a as usize] += self.size[b as usize];
    }

    fn groups(mut self, ids: &[u64]) -> Vec<DuplicateGroup> {
        let roots: Vec<u32> = (0..ids.len() as u32).map(|p| self.find(p)).collect();
        groups_of(&roots, ids)
    }
}

/// The groups of two or more positions that share a root, as ids, in order of each
/// group's first (smallest) member; `ids` ascending, `roots[p]` the root of position `p`.
pub(crate) fn groups_of(roots: &[u32], ids: &[u64]) -> Vec<DuplicateGroup> {
    let n = ids.len();
    let mut size = vec![0u32; n];
    for &root in roots {
        size[root as usize] += 1;
    }
    // Slot of each root's group, in order of the group's first (smallest) member.
    let mut slot = vec![u32::MAX; n];
    let mut groups: Vec<DuplicateGroup> = Vec::new();
    for (p, &root) in roots.iter().enumerate() {
        if size[root as usize] < 2 {
            continue;
        }
        let s = &mut slot[root as usize];
        if *s == u32::MAX {
            *s = groups.len() as u32;
            groups.push(DuplicateGroup {
                members: Vec::with_capacity(size[root as usize] as usize),
            });
        }
        groups[*s as usize].members.push(ids[p]);
    }
    groups
}
