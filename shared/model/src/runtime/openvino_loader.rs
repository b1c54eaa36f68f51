//! Finding OpenVINO's C library. The `openvino` crate links it at run time
//! (`runtime-linking`) and finds it only through environment variables
//! (`OPENVINO_INSTALL_DIR/runtime/lib/intel64`), so this module picks the folder, as
//! [`super::ort_loader`] does for ONNX Runtime, and points that variable at it once
//! before the first OpenVINO call.

use std::path::{Path, PathBuf};
use std::sync::{Mutex, OnceLock};

use super::Precision;
use crate::ModelError;

pub const OPENVINO_VERSION: &str = "2026.4.1";
/// Where the library sits under an install folder, the layout the crate's finder knows.
const LIB_SUBDIR: &str = "runtime/lib/intel64";
const LIB_NAME: &str = "libopenvino_c.so";

/// OpenVINO, loaded, at a precision. Each session opens its own `Core` (the library
/// is loaded once per process).
#[derive(Clone)]
pub struct OpenVinoRuntime {
    install_dir: PathBuf,
    precision: Precision,
}

static INSTALL_DIR: OnceLock<PathBuf> = OnceLock::new();
static INIT: Mutex<()> = Mutex::new(());

impl OpenVinoRuntime {
    pub fn get(precision: Precision) -> Result<Self, ModelError> {
        let install_dir = match INSTALL_DIR.get() {
            Some(dir) => dir.clone(),
            None => Self::point_the_finder()?,
        };
        Ok(Self {
            install_dir,
            precision,
        })
    }

    fn point_the_finder() -> Result<PathBuf, ModelError> {
        let _guard = INIT.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(dir) = INSTALL_DIR.get() {
            return Ok(dir.clone());
        }
        let dir = locate(&candidates())?;
        set_install_dir(&dir);
        // A first Core loads the library: a missing dependency or a wrong build is an
        // error here, at start-up, not at the first batch (and `version` cannot fail
        // once it is loaded).
        openvino::Core::new().map_err(|e| ModelError::OpenVino {
            model: "(loading the library)".into(),
            message: format!("{e} (from {})", dir.display()),
        })?;
        let version = openvino::version();
        if !version.build_number.starts_with(OPENVINO_VERSION) {
            tracing::warn!(
                loaded = %version.build_number,
                pinned = OPENVINO_VERSION,
                "an OpenVINO other than the pinned one: codes are checked against the pinned one only"
            );
        }
        tracing::info!(install_dir = %dir.display(), build = %version.build_number, "loaded OpenVINO");
        Ok(INSTALL_DIR.get_or_init(|| dir).clone())
    }

    pub fn precision(&self) -> Precision {
        self.precision
    }

    pub fn install_dir(&self) -> &Path {
        &self.install_dir
    }
}

#[allow(unsafe_code)]
fn set_install_dir(dir: &Path) {
    // SAFETY: `set_var` is unsound only while another thread reads the environment.
    // This runs once per process, under INIT, when the first model of an OpenVINO
    // runtime is loaded: at start-up, before any request or job is taken. The crate
    // offers no other way to name the library (its loader is private).
    unsafe { std::env::set_var("OPENVINO_INSTALL_DIR", dir) };
}

/// Install folders to try, in order: `IMGFEAT_OPENVINO_DIR`, the repository's
/// `.local/openvino`, then `lib/openvino` beside or above the executable.
fn candidates() -> Vec<(String, PathBuf)> {
    let mut out = Vec::new();
    if let Some(v) = std::env::var_os("IMGFEAT_OPENVINO_DIR").filter(|v| !v.is_empty()) {
        out.push(("IMGFEAT_OPENVINO_DIR".to_string(), PathBuf::from(v)));
    }
    let repo = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    out.push(("repository .local".into(), repo.join(".local/openvino")));
    if let Ok(exe) = std::env::current_exe()
        && let Some(dir) = exe.parent()
    {
        out.push(("beside the executable".into(), dir.join("lib/openvino")));
        out.push(("beside the executable".into(), dir.join("../lib/openvino")));
    }
    out
}

/// The first install folder that holds the library; an explicitly named one that does
/// not is an error of its own.
fn locate(candidates: &[(String, PathBuf)]) -> Result<PathBuf, ModelError> {
    for (origin, dir) in candidates {
        if dir.join(LIB_SUBDIR).join(LIB_NAME).is_file() {
            return Ok(dir.clone());
        }
        if origin == "IMGFEAT_OPENVINO_DIR" {
            return Err(ModelError::OpenVinoNotFound {
                tried: format!(
                    "{} ({origin}, which must hold {LIB_SUBDIR}/{LIB_NAME})",
                    dir.display()
                ),
            });
        }
    }
    let tried = candidates
        .iter()
        .map(|(o, p)| format!("{} ({o})", p.join(LIB_SUBDIR).join(LIB_NAME).display()))
        .collect::<Vec<_>>()
        .join(", ");
    Err(ModelError::OpenVinoNotFound { tried })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_missing_library_explains_the_fix_and_an_explicit_folder_is_not_skipped() {
        let found = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(found.path().join(LIB_SUBDIR)).unwrap();
        std::fs::write(found.path().join(LIB_SUBDIR).join(LIB_NAME), b"x").unwrap();
        let local = ("repository .local".to_string(), found.path().to_path_buf());
        assert_eq!(locate(std::slice::from_ref(&local)).unwrap(), found.path());
        let explicit = (
            "IMGFEAT_OPENVINO_DIR".to_string(),
            PathBuf::from("/nonexistent/ov"),
        );
        let err = locate(&[explicit, local]).unwrap_err().to_string();
        assert!(
            err.contains("/nonexistent/ov (IMGFEAT_OPENVINO_DIR"),
            "{err}"
        );
        let err = locate(&[("repository .local".into(), PathBuf::from("/nope"))])
            .unwrap_err()
            .to_string();
        assert!(err.contains("scripts/setup-openvino.sh"), "{err}");
    }
}
