//! The order the tables are probed in, and what each prefix of that order certifies.
//!
//! Step `(r, j)` visits the buckets of table `j` whose key differs from the probe's in
//! exactly `r` bits; each table's steps run in increasing `r`. Once table `t` has been
//! probed up to radius `p_t`, a code not reached yet differs by at least `p_t + 1` bits
//! in every substring, so every code within `sum(p_t + 1) - 1` has been seen (and every
//! code at all once one table has been probed to its full length).
//!
//! A code sits in one bucket per table; it is taken only at the earliest step of the
//! order that reaches it, so no visited set is needed: at step `(r, j)` a code is
//! skipped if another table `t` reaches it at `(d_t, t)` earlier in the order.

/// Not a position: the step is not in the order.
const ABSENT: u32 = u32::MAX;

pub(crate) struct Schedule {
    steps: Vec<(u32, usize)>,
    /// `pos[j * stride + r]`: where step `(r, j)` falls in `steps`.
    pos: Vec<u32>,
    stride: usize,
    /// `certified[s]`: every code within this distance has been reached once steps
    /// `0..=s` ran.
    certified: Vec<u32>,
}

impl Schedule {
    /// Radius by radius, every table at each radius (Norouzi's order). Suits tables of
    /// (near) equal length and cost.
    pub(crate) fn radius_major(lens: &[u32]) -> Self {
        let max_len = lens.iter().copied().max().unwrap_or(0);
        let steps = (0..=max_len)
            .flat_map(|r| {
                lens.iter()
                    .enumerate()
                    .filter(move |&(_, &len)| r <= len)
                    .map(move |(j, _)| (r, j))
            })
            .collect();
        Self::from_steps(lens, steps)
    }

    /// Always the cheapest next step of any table. Every step certifies one more bit of
    /// distance (until a table is exhausted), so this buys the most radius per cost when
    /// tables differ in length or in how their buckets are read.
    pub(crate) fn cheapest_first(lens: &[u32], cost: impl Fn(u32, usize) -> f64) -> Self {
        let mut next = vec![0u32; lens.len()];
        let mut steps = Vec::new();
        loop {
            let pick = (0..lens.len())
                .filter(|&j| next[j] <= lens[j])
                .map(|j| (cost(next[j], j), j))
                .min_by(|a, b| a.0.total_cmp(&b.0).then(a.1.cmp(&b.1)));
            let Some((_, j)) = pick else { break };
            steps.push((next[j], j));
            next[j] += 1;
        }
        Self::from_steps(lens, steps)
    }

    fn from_steps(lens: &[u32], steps: Vec<(u32, usize)>) -> Self {
        let stride = lens.iter().copied().max().unwrap_or(0) as usize + 1;
        let bits: u32 = lens.iter().sum();
        let mut pos = vec![ABSENT; lens.len() * stride];
        let mut probed: Vec<Option<u32>> = vec![None; lens.len()];
        let mut certified = Vec::with_capacity(steps.len());
        for (s, &(r, j)) in steps.iter().enumerate() {
            pos[j * stride + r as usize] = s as u32;
            probed[j] = Some(r);
            let exhausted = probed.iter().zip(lens).any(|(p, &len)| *p == Some(len));
            let reached: u32 = probed.iter().map(|p| p.map_or(0, |r| r + 1)).sum();
            certified.push(if exhausted {
                bits
            } else {
                reached.saturating_sub(1)
            });
        }
        Self {
            steps,
            pos,
            stride,
            certified,
        }
    }

    pub(crate) fn steps(&self) -> &[(u32, usize)] {
        &self.steps
    }

    /// The distance certified once steps `0..=s` ran.
    #[inline]
    pub(crate) fn certified(&self, s: usize) -> u32 {
        self.certified[s]
    }

    /// Position of step `(r, j)`; `r` never exceeds the table's length.
    #[inline]
    pub(crate) fn pos(&self, r: u32, j: usize) -> u32 {
        self.pos[j * self.stride + r as usize]
    }

    /// The radius each table is probed to by the steps that certify `radius`
    /// (`None`: the table is not probed at all).
    pub(crate) fn radii_for(&self, radius: u32, tables: usize) -> Vec<Option<u32>> {
        let mut radii = vec![None; tables];
        for &(r, j) in &self.steps[..self.prefix_for(radius)] {
            radii[j] = Some(r);
        }
        radii
    }

    /// How many steps certify every code within `radius`.
    pub(crate) fn prefix_for(&self, radius: u32) -> usize {
        self.certified
            .iter()
            .position(|&c| c >= radius)
            .map_or(self.steps.len(), |s| s + 1)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn radius_major_certifies_m_r_plus_j() {
        let s = Schedule::radius_major(&[22, 21, 21]);
        for (i, &(r, j)) in s.steps().iter().take(60).enumerate() {
            assert_eq!(s.certified(i), 3 * r + j as u32);
            assert_eq!(s.pos(r, j), i as u32);
        }
        // The last steps probe table 0 alone (one bit longer); probing it to its full
        // length reaches every code.
        assert_eq!(s.steps().len(), 23 + 22 + 22);
        assert_eq!(*s.steps().last().unwrap(), (22, 0));
        assert_eq!(s.certified(s.steps().len() - 1), 64);
        assert_eq!(s.prefix_for(12), 13);
        assert_eq!(s.prefix_for(0), 1);
    }

    #[test]
    fn cheapest_first_follows_the_costs_and_counts_each_table() {
        // Table 0 is ten times dearer per step: tables 1 and 2 go first.
        let s = Schedule::cheapest_first(&[4, 6, 6], |r, j| {
            f64::from(r + 1) * if j == 0 { 10.0 } else { 1.0 }
        });
        assert_eq!(&s.steps()[..4], &[(0, 1), (0, 2), (1, 1), (1, 2)]);
        // After those four steps: p = (-, 1, 1) -> 0 + 2 + 2 - 1 = 3.
        assert_eq!(s.certified(3), 3);
        assert_eq!(s.steps().len(), 5 + 7 + 7);
        // Each table's steps come in increasing radius.
        for j in 0..3 {
            let rs: Vec<u32> = s
                .steps()
                .iter()
                .filter(|st| st.1 == j)
                .map(|st| st.0)
                .collect();
            assert!(rs.windows(2).all(|w| w[1] == w[0] + 1) && rs[0] == 0);
        }
        assert!(s.certified.windows(2).all(|w| w[1] >= w[0]));
    }
}
