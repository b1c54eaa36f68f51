//! A DeepBit-style head in closed form. DeepBit trains its bits to be binary
//! (quantization loss), balanced (each bit on for half the images) and invariant to
//! transforms of an image. For a linear head each term has an exact answer:
//!
//! - invariance vs information: the projection maximising the variance between photos
//!   relative to the variance among the views of one photo, i.e. the generalised
//!   eigenproblem `S_b w = l S_w w` (Fisher's criterion with photos as classes), solved
//!   by whitening `S_w` and taking the top eigenvectors of the whitened `S_b`;
//! - quantization: the ITQ rotation of those projections ([`crate::itq::rotation`]);
//! - balance: each bit's threshold moved to its median ([`crate::train`]).
//!
//! Both scatters are shrunk toward the identity ([`SHRINKAGE`]): with a few hundred
//! photos in 1280 dimensions `S_w` is singular, and `S_b` has rank below the photo count,
//! so longer codes than photos still get directions (the view-stable ones).

use faer::Mat;

use crate::TrainError;
use crate::linalg;

/// Share of each scatter replaced by a multiple of the identity. A standard regularised
/// discriminant value, chosen before any evaluation (not tuned on held-out photos).
pub const SHRINKAGE: f64 = 0.1;

/// The d x `bits` projection, for rows already centred on the overall mean.
pub fn projection(x: &Mat<f64>, photo_of_row: &[u32], bits: usize) -> Result<Mat<f64>, TrainError> {
    let (n, d) = (x.nrows(), x.ncols());
    let mut sums: std::collections::BTreeMap<u32, (Vec<f64>, usize)> = Default::default();
    for (i, &p) in photo_of_row.iter().enumerate() {
        let (sum, count) = sums.entry(p).or_insert_with(|| (vec![0.0; d], 0));
        for (j, s) in sum.iter_mut().enumerate() {
            *s += x[(i, j)];
        }
        *count += 1;
    }
    let means: std::collections::BTreeMap<u32, Vec<f64>> = sums
        .into_iter()
        .map(|(p, (sum, count))| (p, sum.into_iter().map(|s| s / count as f64).collect()))
        .collect();
    let photo_mean = |i: usize| &means[&photo_of_row[i]];
    let within = Mat::from_fn(n, d, |i, j| x[(i, j)] - photo_mean(i)[j]);
    let between = Mat::from_fn(n, d, |i, j| photo_mean(i)[j]);
    let sw = linalg::shrink(&linalg::scatter(&within), SHRINKAGE);
    let sb = linalg::shrink(&linalg::scatter(&between), SHRINKAGE);

    // S_w = Q D Q^T; whitening W_h = Q D^{-1/2} makes the within-photo scatter the
    // identity, turning the generalised problem into an ordinary one.
    let (q, eigenvalues) = linalg::top_eigen(&sw, d)?;
    let whitening = Mat::from_fn(d, d, |i, j| q[(i, j)] / eigenvalues[j].max(1e-12).sqrt());
    let whitened_between = whitening.transpose() * &sb * &whitening;
    let (u, _) = linalg::top_eigen(&whitened_between, bits)?;
    Ok(&whitening * &u)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prefers_the_axis_that_separates_photos_over_the_one_views_move() {
        // Axis 0: large spread among the views of a photo, same for every photo.
        // Axis 1: smaller spread, but it tells photos apart.
        let photos: Vec<u32> = (0..60).map(|i| i / 3).collect();
        let x = Mat::from_fn(60, 2, |i, j| {
            let (photo, view) = (i / 3, i % 3);
            if j == 0 {
                (view as f64 - 1.0) * 5.0
            } else {
                photo as f64 - 9.5
            }
        });
        let p = projection(&x, &photos, 1).unwrap();
        assert!(p[(1, 0)].abs() > 10.0 * p[(0, 0)].abs(), "{p:?}");
    }
}
