use imgfeat_app::AppSettings;
use imgfeat_app::layers::settings_from_toml;

/// Any settings file is read or refused with an error, for the CLI and workers'
/// settings and the ingest service's; validation never panics either.
pub fn parse_settings(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(settings) = settings_from_toml::<AppSettings>(text) {
        let _ = settings.validate();
    }
    if let Ok(settings) = settings_from_toml::<imgfeat_ingest::Settings>(text) {
        let _ = settings.validate();
    }
}
