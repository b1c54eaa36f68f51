//! Opening the source the settings choose, with its readiness check. A build without a
//! source's feature still reads its settings and answers with a clear error.

use std::sync::Arc;

use imgfeat_core::ports::{ImageSource, Opened};

use crate::settings::SourceSettings;

#[derive(Debug, thiserror::Error)]
pub enum OpenSourceError {
    #[error("source.template: {0}")]
    Folder(String),
    #[error("source (http): {0}")]
    Http(String),
    #[error("source (cql): {0}")]
    Cql(String),
}

impl SourceSettings {
    /// The source, and what `/readyz` asks of it: the folder's directory is there, the
    /// image cluster answers. An HTTP origin has no check (no request is cheap and
    /// meaningful on every image server); its failures are counted per image.
    pub async fn open(
        &self,
        max_bytes: u64,
    ) -> Result<Opened<Arc<dyn ImageSource>>, OpenSourceError> {
        match self {
            SourceSettings::Folder { template } => {
                let source = crate::TemplateSource::new(template.clone(), max_bytes)
                    .map_err(OpenSourceError::Folder)?;
                Ok(Opened {
                    ready: source.ready_check(),
                    port: Arc::new(source),
                })
            }
            #[cfg(feature = "http")]
            SourceSettings::Http(cfg) => {
                let source = crate::HttpSource::new(cfg.clone(), max_bytes)
                    .map_err(|e| OpenSourceError::Http(e.to_string()))?;
                Ok(Opened {
                    port: Arc::new(source),
                    ready: imgfeat_core::ports::ReadyCheck::from_status(|| Ok(())),
                })
            }
            #[cfg(not(feature = "http"))]
            SourceSettings::Http(_) => Err(OpenSourceError::Http(not_built(
                "source.kind = \"http\"",
                "http",
            ))),
            #[cfg(feature = "cql")]
            SourceSettings::Cql(cfg) => {
                let source = crate::CqlImageSource::connect(cfg)
                    .await
                    .map_err(|e| OpenSourceError::Cql(e.to_string()))?;
                let source = Arc::new(source);
                Ok(Opened {
                    ready: source.ready_check(),
                    port: source,
                })
            }
            #[cfg(not(feature = "cql"))]
            SourceSettings::Cql(_) => Err(OpenSourceError::Cql(not_built(
                "source.kind = \"cql\"",
                "cql",
            ))),
        }
    }
}

/// What a build without the source answers when the settings choose it.
#[cfg(not(all(feature = "cql", feature = "http")))]
fn not_built(setting: &str, feature: &str) -> String {
    format!(
        "{setting}: this binary was built without the `{feature}` feature of imgfeat-sources; \
         build it with that feature (the services and the default `imgfeat` build have it)"
    )
}
