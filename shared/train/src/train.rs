//! From embeddings to a linear head: centre, project (PCA or the view-invariant
//! projection), rotate for quantization, and for the DeepBit-style head move each
//! bit's threshold to its median for balance.

use faer::Mat;
use imgfeat_core::ModelVersion;
use imgfeat_model::HashHead;

use crate::embed::Embeddings;
use crate::objectives::{self, Objectives};
use crate::{Progress, TrainError, deepbit, itq, linalg};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Method {
    Itq,
    Deepbit,
}

impl Method {
    pub fn name(self) -> &'static str {
        match self {
            Method::Itq => "itq",
            Method::Deepbit => "deepbit",
        }
    }
}

/// A trained head in the shipped form: code = sign((embedding - mean) @ projection).
#[derive(Debug, Clone)]
pub struct LinearHead {
    pub mean: Vec<f32>,
    /// dim x bits, row-major.
    pub projection: Vec<f32>,
    pub bits: usize,
    pub objectives: Objectives,
}

pub fn fit(
    e: &Embeddings,
    method: Method,
    bits: usize,
    seed: u64,
    progress: &dyn Progress,
) -> Result<LinearHead, TrainError> {
    let d = e.dim;
    if bits == 0 || bits > d || !bits.is_multiple_of(8) {
        return Err(TrainError::Invalid(format!(
            "--bits must be a multiple of 8 in 8..={d}, not {bits}"
        )));
    }
    let rows: Vec<&[f32]> = e.rows.iter().map(|r| r.values.as_slice()).collect();
    let photo: Vec<u32> = e.rows.iter().map(|r| r.photo).collect();
    let view: Vec<u32> = e.rows.iter().map(|r| r.view).collect();
    let mut mean = linalg::column_mean(&rows, d);
    let x = linalg::centred(&rows, &mean);
    let w = match method {
        Method::Itq => itq::pca(&x, bits)?,
        Method::Deepbit => deepbit::projection(&x, &photo, bits)?,
    };
    let v = &x * &w;
    let (r, _) = itq::rotation(&v, seed, itq::ITERATIONS, progress)?;
    let p = &w * &r;
    if method == Method::Deepbit {
        let z = &v * &r;
        let offset = median_offset(&p, &z)?;
        mean.iter_mut().zip(&offset).for_each(|(m, o)| *m += o);
    }
    let mean: Vec<f32> = mean.iter().map(|&m| m as f32).collect();
    let projection: Vec<f32> = (0..d)
        .flat_map(|i| (0..bits).map(move |j| (i, j)))
        .map(|(i, j)| p[(i, j)] as f32)
        .collect();

    // Score the head as it will run: f32, through the model crate's own head.
    let version =
        ModelVersion::of_model("training", "0").map_err(|e| TrainError::Invalid(e.to_string()))?;
    let head = HashHead::new(projection.clone(), mean.clone(), bits, version)?;
    let projections = rows
        .iter()
        .map(|r| head.project(r))
        .collect::<Result<Vec<_>, _>>()?;
    Ok(LinearHead {
        mean,
        projection,
        bits,
        objectives: objectives::measure(&projections, &photo, &view),
    })
}

/// The shift of the mean that moves every bit's threshold to its median projection,
/// so each bit is on for half the training images: the `delta` with `delta P = t` of
/// least norm, `delta = P (P^T P)^{-1} t`.
fn median_offset(p: &Mat<f64>, z: &Mat<f64>) -> Result<Vec<f64>, TrainError> {
    let (d, k) = (p.nrows(), p.ncols());
    let t: Vec<f64> = (0..k)
        .map(|j| {
            let mut col: Vec<f64> = (0..z.nrows()).map(|i| z[(i, j)]).collect();
            col.sort_by(f64::total_cmp);
            match col.len() {
                0 => 0.0,
                n if n % 2 == 1 => col[n / 2],
                n => (col[n / 2 - 1] + col[n / 2]) / 2.0,
            }
        })
        .collect();
    let gram = p.transpose() * p;
    let (q, l) = linalg::top_eigen(&gram, k)?;
    // y = (P^T P)^{-1} t through the eigendecomposition of the Gram matrix.
    let qt_t: Vec<f64> = (0..k)
        .map(|c| (0..k).map(|r| q[(r, c)] * t[r]).sum::<f64>() / l[c].max(1e-12))
        .collect();
    let y: Vec<f64> = (0..k)
        .map(|r| (0..k).map(|c| q[(r, c)] * qt_t[c]).sum())
        .collect();
    Ok((0..d)
        .map(|i| (0..k).map(|j| p[(i, j)] * y[j]).sum())
        .collect())
}
