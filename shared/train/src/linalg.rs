//! The few dense linear-algebra steps training needs, in f64 over faer. faer runs
//! without its rayon feature here, so each decomposition is sequential and a seed
//! reproduces its bytes.

use faer::{Mat, Side};
use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};

use crate::TrainError;

fn err(what: &str, e: impl std::fmt::Debug) -> TrainError {
    TrainError::Linalg(format!("{what}: {e:?}"))
}

/// `rows` (n x d) minus `mean`, as an n x d matrix.
pub fn centred(rows: &[&[f32]], mean: &[f64]) -> Mat<f64> {
    Mat::from_fn(rows.len(), mean.len(), |i, j| {
        f64::from(rows[i][j]) - mean[j]
    })
}

pub fn column_mean(rows: &[&[f32]], dim: usize) -> Vec<f64> {
    let mut mean = vec![0f64; dim];
    for r in rows {
        for (m, &v) in mean.iter_mut().zip(r.iter()) {
            *m += f64::from(v);
        }
    }
    let n = rows.len().max(1) as f64;
    mean.iter_mut().for_each(|m| *m /= n);
    mean
}

/// `x^T x / n` for a centred n x d matrix: its covariance.
pub fn scatter(x: &Mat<f64>) -> Mat<f64> {
    let n = x.nrows().max(1) as f64;
    let mut s = x.transpose() * x;
    s *= faer::Scale(1.0 / n);
    s
}

/// `(1 - gamma) s + gamma * trace(s) / d * I`: shrinks a scatter estimated from few
/// samples toward a multiple of the identity, so it is invertible and its small
/// eigenvalues are not noise.
pub fn shrink(s: &Mat<f64>, gamma: f64) -> Mat<f64> {
    let d = s.nrows();
    let trace: f64 = (0..d).map(|i| s[(i, i)]).sum();
    let floor = gamma * trace / d.max(1) as f64;
    Mat::from_fn(d, d, |i, j| {
        (1.0 - gamma) * s[(i, j)] + if i == j { floor } else { 0.0 }
    })
}

/// The `k` eigenvectors of a symmetric matrix with the largest eigenvalues, as the
/// columns of a d x k matrix (largest first), and those eigenvalues. Each vector's
/// sign is fixed (its largest component positive), so the result does not hinge on
/// the solver's arbitrary sign choice.
pub fn top_eigen(sym: &Mat<f64>, k: usize) -> Result<(Mat<f64>, Vec<f64>), TrainError> {
    let d = sym.nrows();
    if k > d {
        return Err(TrainError::Invalid(format!(
            "{k} directions asked of a {d}-dimensional space"
        )));
    }
    let eig = sym
        .self_adjoint_eigen(Side::Lower)
        .map_err(|e| err("eigen", e))?;
    let (u, s) = (eig.U(), eig.S().column_vector());
    let mut vectors = Mat::zeros(d, k);
    let mut values = Vec::with_capacity(k);
    for c in 0..k {
        let src = d - 1 - c;
        values.push(s[src]);
        let pivot = (0..d)
            .max_by(|&a, &b| u[(a, src)].abs().total_cmp(&u[(b, src)].abs()))
            .unwrap_or(0);
        let sign = if u[(pivot, src)] < 0.0 { -1.0 } else { 1.0 };
        for r in 0..d {
            vectors[(r, c)] = sign * u[(r, src)];
        }
    }
    Ok((vectors, values))
}

/// The orthogonal matrix nearest to `m` (orthogonal Procrustes): `U V^T` of its SVD.
pub fn nearest_orthogonal(m: &Mat<f64>) -> Result<Mat<f64>, TrainError> {
    let svd = m.svd().map_err(|e| err("svd", e))?;
    Ok(svd.U() * svd.V().transpose())
}

/// A seeded random k x k rotation: the orthogonal matrix nearest a Gaussian one.
pub fn random_rotation(k: usize, seed: u64) -> Result<Mat<f64>, TrainError> {
    let mut rng = SmallRng::seed_from_u64(seed);
    let gaussian = Mat::from_fn(k, k, |_, _| {
        // Box-Muller, one value per draw pair: enough for a starting point.
        let u1: f64 = rng.random_range(f64::MIN_POSITIVE..1.0);
        let u2: f64 = rng.random();
        (-2.0 * u1.ln()).sqrt() * (std::f64::consts::TAU * u2).cos()
    });
    nearest_orthogonal(&gaussian)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn top_eigen_finds_the_largest_axis_and_rotations_are_orthogonal() {
        let s = Mat::from_fn(3, 3, |i, j| if i == j { [1.0, 5.0, 2.0][i] } else { 0.0 });
        let (v, l) = top_eigen(&s, 2).unwrap();
        assert!(
            (l[0] - 5.0).abs() < 1e-9 && (l[1] - 2.0).abs() < 1e-9,
            "{l:?}"
        );
        assert!((v[(1, 0)] - 1.0).abs() < 1e-9 && (v[(2, 1)] - 1.0).abs() < 1e-9);
        let r = random_rotation(8, 7).unwrap();
        let i = r.transpose() * &r;
        for a in 0..8 {
            for b in 0..8 {
                let want = if a == b { 1.0 } else { 0.0 };
                assert!((i[(a, b)] - want).abs() < 1e-9);
            }
        }
        assert_eq!(random_rotation(8, 7).unwrap(), r);
    }
}
