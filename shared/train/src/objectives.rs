//! The terms a head is trained for, measured on the codes it gives its training
//! embeddings (the f32 head as shipped, so what is reported is what `index` computes).

use std::collections::BTreeMap;

use serde::Serialize;

#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Objectives {
    /// Mean `(sign(z) - z)^2` per code entry, projections scaled to unit mean square.
    pub quantization: f64,
    /// Mean over bits of `|2 p - 1|`, `p` the share of images with the bit on: 0 when
    /// every bit splits the images in half.
    pub imbalance: f64,
    /// Mean share of bits that differ between a view and its photo (lower: invariant).
    pub view_flips: f64,
    /// Mean share of bits that differ between two distinct photos (0.5 is ideal).
    pub distinct_flips: f64,
}

impl Objectives {
    pub fn as_map(&self) -> BTreeMap<String, f64> {
        BTreeMap::from([
            ("quantization".to_string(), self.quantization),
            ("imbalance".to_string(), self.imbalance),
            ("view_flips".to_string(), self.view_flips),
            ("distinct_flips".to_string(), self.distinct_flips),
        ])
    }
}

/// `projections[i]` is row `i`'s projection (the code is its signs); `photo` and `view`
/// say whose row it is (view 0: the photo itself).
pub fn measure(projections: &[Vec<f32>], photo: &[u32], view: &[u32]) -> Objectives {
    let n = projections.len();
    let k = projections.first().map_or(0, Vec::len);
    if n == 0 || k == 0 {
        return Objectives {
            quantization: f64::NAN,
            imbalance: f64::NAN,
            view_flips: f64::NAN,
            distinct_flips: f64::NAN,
        };
    }
    let signs: Vec<Vec<bool>> = projections
        .iter()
        .map(|p| p.iter().map(|&z| z > 0.0).collect())
        .collect();
    let mean_square = projections
        .iter()
        .flatten()
        .map(|&z| f64::from(z) * f64::from(z))
        .sum::<f64>()
        / (n * k) as f64;
    let scale = mean_square.sqrt().max(1e-12);
    let quantization = projections
        .iter()
        .flatten()
        .map(|&z| {
            let z = f64::from(z) / scale;
            let b = if z > 0.0 { 1.0 } else { -1.0 };
            (b - z) * (b - z)
        })
        .sum::<f64>()
        / (n * k) as f64;
    let imbalance = (0..k)
        .map(|j| {
            let on = signs.iter().filter(|s| s[j]).count() as f64 / n as f64;
            (2.0 * on - 1.0).abs()
        })
        .sum::<f64>()
        / k as f64;
    let flips =
        |a: &[bool], b: &[bool]| a.iter().zip(b).filter(|(x, y)| x != y).count() as f64 / k as f64;
    let originals: BTreeMap<u32, usize> = (0..n)
        .filter(|&i| view[i] == 0)
        .map(|i| (photo[i], i))
        .collect();
    let view_pairs: Vec<f64> = (0..n)
        .filter(|&i| view[i] != 0)
        .filter_map(|i| {
            originals
                .get(&photo[i])
                .map(|&o| flips(&signs[i], &signs[o]))
        })
        .collect();
    let firsts: Vec<usize> = originals.values().copied().collect();
    let mut distinct = Vec::new();
    for (a, &i) in firsts.iter().enumerate() {
        for &j in &firsts[a + 1..] {
            distinct.push(flips(&signs[i], &signs[j]));
        }
    }
    let mean = |v: &[f64]| {
        if v.is_empty() {
            f64::NAN
        } else {
            v.iter().sum::<f64>() / v.len() as f64
        }
    };
    Objectives {
        quantization,
        imbalance,
        view_flips: mean(&view_pairs),
        distinct_flips: mean(&distinct),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_term_on_a_tiny_example() {
        // Photo 0 (two rows: original, view), photo 1 (original).
        let z = vec![vec![1.0, -1.0], vec![1.0, 1.0], vec![-1.0, 1.0]];
        let o = measure(&z, &[0, 0, 1], &[0, 1, 0]);
        assert_eq!(o.quantization, 0.0);
        // Bit 0 on 2/3, bit 1 on 2/3: |2*2/3 - 1| = 1/3 each.
        assert!((o.imbalance - 1.0 / 3.0).abs() < 1e-12);
        assert_eq!(o.view_flips, 0.5);
        assert_eq!(o.distinct_flips, 1.0);
    }
}
