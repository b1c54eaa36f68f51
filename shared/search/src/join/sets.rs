//! A union-find that threads share: parents are atomics and a link is a compare-and-swap
//! of a root onto another root, so workers union their pairs as they find them instead
//! of collecting them (a near-identical cluster of k codes has ~k^2 / 2 pairs).

use std::sync::atomic::{AtomicU32, Ordering::Relaxed};

pub(crate) struct SharedSets {
    parent: Vec<AtomicU32>,
}

impl SharedSets {
    pub(crate) fn new(n: usize) -> Self {
        Self {
            parent: (0..n as u32).map(AtomicU32::new).collect(),
        }
    }

    pub(crate) fn find(&self, mut x: u32) -> u32 {
        loop {
            let p = self.parent[x as usize].load(Relaxed);
            if p == x {
                return x;
            }
            let grand = self.parent[p as usize].load(Relaxed);
            if grand != p {
                // Path halving; losing the race to another writer only skips a shortcut.
                let _ = self.parent[x as usize].compare_exchange_weak(p, grand, Relaxed, Relaxed);
            }
            x = p;
        }
    }

    /// Links the two sets; the larger root goes under the smaller, so concurrent links
    /// never form a cycle. A failed swap means that root was just linked: retry from the
    /// new roots.
    pub(crate) fn union(&self, a: u32, b: u32) {
        let (mut a, mut b) = (a, b);
        loop {
            (a, b) = (self.find(a), self.find(b));
            if a == b {
                return;
            }
            let (lo, hi) = if a < b { (a, b) } else { (b, a) };
            if self.parent[hi as usize]
                .compare_exchange(hi, lo, Relaxed, Relaxed)
                .is_ok()
            {
                return;
            }
        }
    }

    /// Every position's root, once no thread links any more.
    pub(crate) fn roots(&self) -> Vec<u32> {
        (0..self.parent.len() as u32)
            .map(|x| self.find(x))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rayon::prelude::*;

    #[test]
    fn concurrent_links_give_the_components() {
        // Chains i - (i + 1) within blocks of 100, linked from several threads, last first.
        let n = 10_000u32;
        let sets = SharedSets::new(n as usize);
        let links: Vec<u32> = (0..n - 1).rev().filter(|i| (i + 1) % 100 != 0).collect();
        links.par_iter().for_each(|&i| sets.union(i + 1, i));
        let roots = sets.roots();
        for i in 0..n {
            assert_eq!(roots[i as usize], i / 100 * 100, "{i}");
        }
    }
}
