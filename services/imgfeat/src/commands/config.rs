//! `imgfeat config defaults`: every setting of a binary with its default, read off the
//! binary's own settings type, so the list cannot miss a key.

use imgfeat_app::layers::defaults_toml;

use crate::cli::ServiceArg;

/// The commented TOML of `service`'s defaults.
pub fn defaults(service: ServiceArg) -> anyhow::Result<String> {
    use imgfeat_app::worker_settings::WorkerSettings;
    let (binary, body) = match service {
        ServiceArg::Imgfeat => (
            "imgfeat",
            defaults_toml(&imgfeat_app::AppSettings::default())?,
        ),
        #[cfg(feature = "service-settings")]
        ServiceArg::Ingest => (
            "imgfeat-ingest",
            defaults_toml(&imgfeat_ingest::Settings::default())?,
        ),
        ServiceArg::Detector => (
            "imgfeat-detector",
            defaults_toml(&WorkerSettings::detector_defaults())?,
        ),
        ServiceArg::Extractor => (
            "imgfeat-extractor",
            defaults_toml(&WorkerSettings::extractor_defaults())?,
        ),
        #[cfg(feature = "service-settings")]
        ServiceArg::Serve => (
            "imgfeat-serve",
            defaults_toml(&imgfeat_serve::Settings::default())?,
        ),
        #[cfg(feature = "service-settings")]
        ServiceArg::Search => (
            "imgfeat-search",
            defaults_toml(&imgfeat_search_service::Settings::default())?,
        ),
        #[cfg(not(feature = "service-settings"))]
        other => anyhow::bail!(
            "this imgfeat was built without the `service-settings` feature: build it with \
             its default features to print {other:?}'s settings"
        ),
    };
    Ok(format!(
        "# Every setting of {binary} with its default. Uncomment what you change; a file\n\
         # gives it with --config (IMGFEAT_CONFIG), and IMGFEAT_SECTION__KEY variables\n\
         # override the file (lists comma-separated). What each setting does:\n\
         # docs/configuration.md.\n{body}"
    ))
}
