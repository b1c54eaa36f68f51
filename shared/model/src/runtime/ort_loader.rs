//! Finding and loading the ONNX Runtime shared library. `ort` is built with
//! `load-dynamic`, so the library is chosen at run time: explicitly by environment, or
//! from the project-local copy that `scripts/setup-onnxruntime.sh` installs.

use std::path::{Path, PathBuf};
use std::sync::{Arc, OnceLock};

use crate::ModelError;

pub const ORT_VERSION: &str = "1.31.1";
pub const ORT_LIB_NAME: &str = "libonnxruntime.so.1.31.1";

/// The loaded runtime; ONNX Runtime can be loaded once per process, so it is shared.
#[derive(Clone)]
pub struct OrtRuntime {
    env: Arc<ort::environment::Environment>,
    library: PathBuf,
    shared_threads: usize,
}

static RUNTIME: OnceLock<OrtRuntime> = OnceLock::new();
static INIT: std::sync::Mutex<()> = std::sync::Mutex::new(());

impl OrtRuntime {
    /// Loads the runtime once, with per-session thread pools; later calls return the
    /// same one, however it was loaded.
    pub fn get() -> Result<OrtRuntime, ModelError> {
        if let Some(rt) = RUNTIME.get() {
            return Ok(rt.clone());
        }
        Self::load(0)
    }

    /// As [`Self::get`], with `shared_threads` intra-op threads in one pool that every
    /// session of the process runs on (ONNX Runtime's global thread pool; the sessions'
    /// own pools are then off), or per-session pools for 0. The pool belongs to the
    /// process: asking for another size once the runtime is loaded is an error.
    pub fn with_shared_pool(shared_threads: usize) -> Result<OrtRuntime, ModelError> {
        let rt = match RUNTIME.get() {
            Some(rt) => rt.clone(),
            None => Self::load(shared_threads)?,
        };
        if rt.shared_threads != shared_threads {
            return Err(ModelError::RuntimeLoad {
                path: rt.library.clone(),
                message: format!(
                    "already loaded with {} shared intra-op threads, {shared_threads} asked (0 = per session)",
                    rt.shared_threads
                ),
            });
        }
        Ok(rt)
    }

    fn load(shared_threads: usize) -> Result<OrtRuntime, ModelError> {
        let _guard = INIT.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(rt) = RUNTIME.get() {
            return Ok(rt.clone());
        }
        let library = locate(&candidates())?;
        let load_err = |e: ort::Error| ModelError::RuntimeLoad {
            path: library.clone(),
            message: e.to_string(),
        };
        let mut builder = ort::init_from(&library)
            .map_err(|e| ModelError::RuntimeLoad {
                path: library.clone(),
                message: e.to_string(),
            })?
            .with_name("imgfeat");
        if shared_threads > 0 {
            // No spinning, as for the per-session pools (see `SessionOptions`).
            let pool = ort::environment::GlobalThreadPoolOptions::default()
                .with_intra_threads(shared_threads)
                .and_then(|p| p.with_spin_control(false))
                .map_err(load_err)?;
            builder = builder.with_global_thread_pool(pool);
        }
        let env = builder.build().map_err(load_err)?;
        tracing::info!(library = %library.display(), shared_threads, "loaded ONNX Runtime");
        let rt = OrtRuntime {
            env: Arc::new(env),
            library,
            shared_threads,
        };
        Ok(RUNTIME.get_or_init(|| rt).clone())
    }

    pub fn environment(&self) -> &ort::environment::Environment {
        &self.env
    }

    pub fn library(&self) -> &Path {
        &self.library
    }
}

/// Where to look, in order: `IMGFEAT_ORT_LIB`, `ORT_DYLIB_PATH`, the repository's
/// `.local/onnxruntime`, then `lib/` beside or above the executable (container layout).
pub fn candidates() -> Vec<(String, PathBuf)> {
    let mut out = Vec::new();
    for var in ["IMGFEAT_ORT_LIB", "ORT_DYLIB_PATH"] {
        if let Some(v) = std::env::var_os(var).filter(|v| !v.is_empty()) {
            out.push((var.to_string(), PathBuf::from(v)));
        }
    }
    let repo = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    out.push((
        "repository .local".into(),
        repo.join(".local/onnxruntime").join(ORT_LIB_NAME),
    ));
    if let Ok(exe) = std::env::current_exe()
        && let Some(dir) = exe.parent()
    {
        out.push((
            "beside the executable".into(),
            dir.join("lib").join(ORT_LIB_NAME),
        ));
        out.push((
            "beside the executable".into(),
            dir.join("../lib").join(ORT_LIB_NAME),
        ));
    }
    out
}

/// The first candidate that exists. An explicitly named library that does not exist is
/// an error of its own rather than silently falling through to another copy.
pub fn locate(candidates: &[(String, PathBuf)]) -> Result<PathBuf, ModelError> {
    for (origin, path) in candidates {
        let explicit = origin == "IMGFEAT_ORT_LIB" || origin == "ORT_DYLIB_PATH";
        if path.is_file() {
            return Ok(path.clone());
        }
        if explicit {
            return Err(ModelError::RuntimeLoad {
                path: path.clone(),
                message: format!("{origin} names a file that does not exist"),
            });
        }
    }
    let tried = candidates
        .iter()
        .map(|(o, p)| format!("{} ({o})", p.display()))
        .collect::<Vec<_>>()
        .join(", ");
    Err(ModelError::RuntimeNotFound { tried })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn missing_library_explains_the_fix() {
        let err = locate(&[(
            "repository .local".into(),
            PathBuf::from("/nonexistent/x.so"),
        )])
        .unwrap_err()
        .to_string();
        assert!(err.contains("scripts/setup-onnxruntime.sh"), "{err}");
        assert!(err.contains("IMGFEAT_ORT_LIB"), "{err}");
        assert!(err.contains("/nonexistent/x.so"), "{err}");
    }

    #[test]
    fn an_explicit_path_that_does_not_exist_is_not_skipped() {
        let dir = std::env::temp_dir();
        let existing = dir.join("imgfeat-runtime-test-lib.so");
        std::fs::write(&existing, b"x").unwrap();
        let err = locate(&[
            (
                "IMGFEAT_ORT_LIB".into(),
                PathBuf::from("/nonexistent/lib.so"),
            ),
            ("repository .local".into(), existing.clone()),
        ])
        .unwrap_err()
        .to_string();
        assert!(
            err.contains("IMGFEAT_ORT_LIB names a file that does not exist"),
            "{err}"
        );
        assert_eq!(
            locate(&[("repository .local".into(), existing.clone())]).unwrap(),
            existing
        );
    }
}
