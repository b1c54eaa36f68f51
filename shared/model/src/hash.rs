//! Hash heads turn an embedding into a K-bit code: the sign bits of a projection of the
//! centred embedding. The default is SimHash, a random projection shared with the Python
//! reference; learned heads (`linear_hash`, from `imgfeat head train`) only bring another
//! projection and mean, so both load and code through this one type.

use imgfeat_core::{BinaryCode, ModelVersion};

use crate::ModelError;
use crate::manifest::Manifest;

pub struct HashHead {
    /// `dim x bits`, row-major.
    projection: Vec<f32>,
    mean: Vec<f32>,
    bits: usize,
    dim: usize,
    version: ModelVersion,
}

impl HashHead {
    /// Loads a `simhash` or `linear_hash` head, its weight files checked by sha256.
    pub fn load(manifest: &Manifest) -> Result<Self, ModelError> {
        let Some(spec) = manifest.kind.head_weights() else {
            return Err(ModelError::Manifest {
                path: manifest.dir.clone(),
                message: format!("{} is not a hash head", manifest.name),
            });
        };
        let (bits, dim) = (spec.bits as usize, spec.dim as usize);
        let projection = read_f32le(
            &manifest.verified_file(spec.projection, spec.projection_sha256)?,
            dim * bits,
        )?;
        let mean = read_f32le(&manifest.verified_file(spec.mean, spec.mean_sha256)?, dim)?;
        let version = manifest.model_version()?;
        Self::new(projection, mean, bits, version)
    }

    pub fn new(
        projection: Vec<f32>,
        mean: Vec<f32>,
        bits: usize,
        version: ModelVersion,
    ) -> Result<Self, ModelError> {
        let dim = mean.len();
        if bits == 0 || projection.len() != dim * bits {
            return Err(ModelError::Shape {
                model: version.to_string(),
                message: format!(
                    "projection has {} values, {dim} x {bits} expected",
                    projection.len()
                ),
            });
        }
        Ok(Self {
            projection,
            mean,
            bits,
            dim,
            version,
        })
    }

    pub fn bits(&self) -> usize {
        self.bits
    }

    pub fn dim(&self) -> usize {
        self.dim
    }

    pub fn version(&self) -> &ModelVersion {
        &self.version
    }

    /// The projections `(embedding - mean) @ R`; the code is their sign bits.
    pub fn project(&self, embedding: &[f32]) -> Result<Vec<f32>, ModelError> {
        if embedding.len() != self.dim {
            return Err(ModelError::Shape {
                model: self.version.to_string(),
                message: format!(
                    "embedding has {} values, {} expected",
                    embedding.len(),
                    self.dim
                ),
            });
        }
        let mut out = vec![0f32; self.bits];
        // Row by row, so the inner loop runs over contiguous memory and vectorises.
        for (i, (&e, &m)) in embedding.iter().zip(&self.mean).enumerate() {
            let centred = e - m;
            let row = &self.projection[i * self.bits..(i + 1) * self.bits];
            for (acc, &r) in out.iter_mut().zip(row) {
                *acc += centred * r;
            }
        }
        Ok(out)
    }

    pub fn code(&self, embedding: &[f32]) -> Result<BinaryCode, ModelError> {
        let projections = self.project(embedding)?;
        BinaryCode::from_signs(&projections).map_err(|e| ModelError::Shape {
            model: self.version.to_string(),
            message: e.to_string(),
        })
    }
}

fn read_f32le(path: &std::path::Path, expected: usize) -> Result<Vec<f32>, ModelError> {
    let bytes = std::fs::read(path).map_err(|source| ModelError::Io {
        path: path.to_path_buf(),
        source,
    })?;
    if bytes.len() != expected * 4 {
        return Err(ModelError::Shape {
            model: path.display().to_string(),
            message: format!("{} bytes, {} f32 values expected", bytes.len(), expected),
        });
    }
    Ok(bytes
        .chunks_exact(4)
        .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signs_of_the_centred_projection() {
        // dim 2, bits 3: R = [[1, 0, -1], [0, 1, 1]], mean = [1, 1]
        let head = HashHead::new(
            vec![1., 0., -1., 0., 1., 1.],
            vec![1., 1.],
            3,
            ModelVersion::new("t@1").unwrap(),
        )
        .unwrap();
        // e - mean = [2, -1]: projections [2, -1, -3] -> bits 100
        assert_eq!(head.project(&[3., 0.]).unwrap(), vec![2., -1., -3.]);
        assert_eq!(head.code(&[3., 0.]).unwrap().as_bytes(), &[0b1000_0000]);
        assert!(head.code(&[1.0]).is_err());
    }

    #[test]
    fn the_shipped_head_loads_with_its_shape() {
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../../models/simhash64_effnet_lite0.toml");
        let head = HashHead::load(&Manifest::load(&path).unwrap()).unwrap();
        assert_eq!((head.bits(), head.dim()), (64, 1280));
        // The mean embedding itself projects to zero everywhere: no bit set.
        let code = head.code(&head.mean.clone()).unwrap();
        assert_eq!(code.as_bytes(), &[0u8; 8]);
    }

    #[test]
    fn a_corrupted_weight_file_is_refused() {
        // A copy of the shipped default head with one byte of its projection changed.
        let models = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../models");
        let dir = tempfile::tempdir().unwrap();
        for f in [
            "simhash64_effnet_lite0.toml",
            "simhash_R_1280x64_f32le.bin",
            "simhash_mean_1280_f32le.bin",
        ] {
            std::fs::copy(models.join(f), dir.path().join(f)).unwrap();
        }
        let manifest = Manifest::load(&dir.path().join("simhash64_effnet_lite0.toml")).unwrap();
        assert!(HashHead::load(&manifest).is_ok());
        let weights = dir.path().join("simhash_R_1280x64_f32le.bin");
        let mut bytes = std::fs::read(&weights).unwrap();
        bytes[100] ^= 0x10;
        std::fs::write(&weights, bytes).unwrap();
        let err = HashHead::load(&manifest).err().unwrap().to_string();
        assert!(err.contains("wrong or corrupt model file"), "{err}");
    }
}
