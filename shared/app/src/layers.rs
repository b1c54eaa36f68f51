//! How a binary reads its settings: its own defaults, then an optional TOML file, then
//! `IMGFEAT_SECTION__KEY` environment variables.
//!
//! The keys a binary has are read off its defaults (serialised), which gives three things
//! no hand-kept list would keep right: a partly given section keeps the binary's own
//! defaults for the rest (the serve's port is not the ingest's); every list setting can
//! be given comma-separated in the environment; and a variable naming no setting is
//! refused with the variable's name, while one naming another binary's section (a shared
//! env file) is left to that binary.

use std::collections::HashMap;
use std::path::Path;

use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::Value;

use crate::settings::SettingsError;

/// The top-level sections and settings of every imgfeat binary (a test checks this
/// against each binary's defaults).
pub const FLEET_SECTIONS: &[&str] = &[
    "amqp",
    "backfill",
    "http",
    "limits",
    "log",
    "pipeline",
    "search",
    "serve",
    "shutdown_grace_ms",
    "source",
    "store",
    "telemetry",
    "uploads",
    "watch",
    "worker",
];

/// Internally tagged settings (`kind = "http"` picks which keys follow): their keys
/// depend on the variant, so the defaults say nothing about them and the settings
/// types check them instead.
const TAGGED: &[&str] = &["source", "store.cql.replication"];

/// Defaults, then `file`, then the process environment.
pub fn load_settings<T>(file: Option<&Path>) -> Result<T, SettingsError>
where
    T: Default + Serialize + DeserializeOwned,
{
    settings_from(T::default(), file, std::env::vars())
}

/// Settings from `IMGFEAT_*` variables alone (defaults, then `vars`), for checks of the
/// variables one tool hands to the processes it starts.
pub fn settings_from_vars<T>(
    vars: impl Iterator<Item = (String, String)>,
) -> Result<T, SettingsError>
where
    T: Default + Serialize + DeserializeOwned,
{
    settings_from(T::default(), None, vars)
}

/// `base` (a binary's defaults), then `file`, then `vars`.
pub fn settings_from<T>(
    base: T,
    file: Option<&Path>,
    vars: impl Iterator<Item = (String, String)>,
) -> Result<T, SettingsError>
where
    T: Serialize + DeserializeOwned,
{
    let tree = tree_of(&base)?;
    let mut builder = config::Config::builder();
    for (key, value) in scalar_leaves(&tree) {
        builder = builder.set_default(key, value)?;
    }
    if let Some(file) = file {
        if !file.is_file() {
            return Err(SettingsError::MissingFile(file.to_path_buf()));
        }
        builder = builder.add_source(config::File::from(file).format(config::FileFormat::Toml));
    }
    builder = builder.add_source(environment_layer(&tree, vars)?);
    Ok(builder.build()?.try_deserialize()?)
}

/// Settings from TOML text alone (defaults, then `text`; no environment), for checks and
/// fuzzing of what a settings file may hold.
pub fn settings_from_toml<T>(text: &str) -> Result<T, SettingsError>
where
    T: DeserializeOwned,
{
    let source = config::File::from_str(text, config::FileFormat::Toml);
    Ok(config::Config::builder()
        .add_source(source)
        .build()?
        .try_deserialize()?)
}

fn tree_of<T: Serialize>(settings: &T) -> Result<Value, SettingsError> {
    serde_json::to_value(settings).map_err(|e| SettingsError::Invalid(e.to_string()))
}

/// The environment layer with the variables that name this binary's settings, lists
/// split at commas; an error for a variable that names no binary's setting.
fn environment_layer(
    tree: &Value,
    vars: impl Iterator<Item = (String, String)>,
) -> Result<config::Environment, SettingsError> {
    let mut kept = HashMap::new();
    for (name, value) in vars {
        let Some(rest) = name.strip_prefix("IMGFEAT_") else {
            continue;
        };
        let path: Vec<String> = rest.split("__").map(str::to_ascii_lowercase).collect();
        match known(tree, &path) {
            Known::Here => {
                kept.insert(name, value);
            }
            Known::Elsewhere => {}
            Known::Nowhere => {
                return Err(SettingsError::UnknownVariable {
                    variable: name,
                    key: path.join("."),
                });
            }
        }
    }
    let mut env = config::Environment::with_prefix("IMGFEAT")
        .prefix_separator("_")
        .separator("__")
        .try_parsing(true);
    let mut lists = Vec::new();
    list_keys(tree, "", &mut lists);
    // With a list separator and no key named as a list, `config` splits EVERY variable
    // into a list (a settings type without lists, such as the load test's, then reads
    // `backend = ["openvino"]`): the separator only comes with the keys it is for.
    if !lists.is_empty() {
        env = env.list_separator(",");
        for key in lists {
            env = env.with_list_parse_key(&key);
        }
    }
    Ok(env.source(Some(kept)))
}

enum Known {
    /// A setting of this binary.
    Here,
    /// Another binary's section, or a variable of another tool (`IMGFEAT_ORT_LIB`).
    Elsewhere,
    Nowhere,
}

fn known(tree: &Value, path: &[String]) -> Known {
    let Some(first) = path.first() else {
        return Known::Elsewhere;
    };
    match tree.get(first) {
        // Single-word variables without `__` are other tools' (IMGFEAT_TEST_CQL).
        None if path.len() == 1 || FLEET_SECTIONS.contains(&first.as_str()) => Known::Elsewhere,
        None => Known::Nowhere,
        Some(node) => {
            if below(node, first, &path[1..]) {
                Known::Here
            } else {
                Known::Nowhere
            }
        }
    }
}

/// Whether `rest` names a setting under `node` (found at `at`).
fn below(node: &Value, at: &str, rest: &[String]) -> bool {
    if TAGGED.contains(&at) {
        return true;
    }
    match (node, rest.split_first()) {
        // A whole section set by one variable is no setting.
        (Value::Object(_), None) => false,
        (_, None) => true,
        // An optional section unset by default: its keys are unknown until it is given.
        (Value::Null, Some(_)) => true,
        (Value::Object(map), Some((key, rest))) => map
            .get(key)
            .is_some_and(|child| below(child, &format!("{at}.{key}"), rest)),
        (_, Some(_)) => false,
    }
}

/// `at.key`, or `key` at the top.
fn dotted(at: &str, key: &str) -> String {
    if at.is_empty() {
        key.to_owned()
    } else {
        format!("{at}.{key}")
    }
}

fn list_keys(node: &Value, at: &str, out: &mut Vec<String>) {
    match node {
        Value::Array(_) => out.push(at.to_string()),
        Value::Object(map) => {
            for (key, child) in map {
                let path = dotted(at, key);
                list_keys(child, &path, out);
            }
        }
        _ => {}
    }
}

/// Every number, string and boolean of the defaults outside tagged settings, as config
/// defaults: a section the file gives in part keeps the binary's value for the rest.
fn scalar_leaves(tree: &Value) -> Vec<(String, config::Value)> {
    fn walk(node: &Value, at: &str, out: &mut Vec<(String, config::Value)>) {
        if TAGGED.contains(&at) {
            return;
        }
        let value: config::Value = match node {
            Value::Object(map) => {
                for (key, child) in map {
                    let path = dotted(at, key);
                    walk(child, &path, out);
                }
                return;
            }
            Value::Bool(b) => (*b).into(),
            Value::String(s) => s.clone().into(),
            Value::Number(n) => match (n.as_i64(), n.as_u64(), n.as_f64()) {
                (Some(i), _, _) => i.into(),
                (None, Some(u), _) => u.into(),
                (None, None, Some(f)) => f.into(),
                (None, None, None) => return,
            },
            Value::Null | Value::Array(_) => return,
        };
        out.push((at.to_string(), value));
    }
    let mut out = Vec::new();
    walk(tree, "", &mut out);
    out
}

/// Every setting of `base` as commented TOML: each line `# key = default`, sections in
/// order, so a file can start from it by uncommenting what it changes.
pub fn defaults_toml<T: Serialize>(base: &T) -> Result<String, SettingsError> {
    let tree = tree_of(base)?;
    let mut out = String::new();
    render_section(&tree, "", &mut out);
    Ok(out)
}

fn render_section(node: &Value, at: &str, out: &mut String) {
    let Value::Object(map) = node else {
        return;
    };
    let (tables, keys): (Vec<_>, Vec<_>) =
        map.iter().partition(|(_, v)| matches!(v, Value::Object(_)));
    if !at.is_empty() && !keys.is_empty() {
        out.push_str(&format!("\n# [{at}]\n"));
    }
    for (key, value) in keys {
        match value {
            Value::Null => out.push_str(&format!("# {key} =   (unset)\n")),
            other => out.push_str(&format!("# {key} = {}\n", inline(other))),
        }
    }
    for (key, child) in tables {
        let path = dotted(at, key);
        render_section(child, &path, out);
    }
}

fn inline(v: &Value) -> String {
    match v {
        Value::Array(items) => {
            let parts: Vec<String> = items.iter().map(inline).collect();
            format!("[{}]", parts.join(", "))
        }
        Value::Object(map) => {
            let parts: Vec<String> = map
                .iter()
                .map(|(k, v)| format!("{k} = {}", inline(v)))
                .collect();
            format!("{{ {} }}", parts.join(", "))
        }
        // Settings hold f32s: print the f32's own shortest form (0.4, not the f64
        // 0.4000000059604645 it widened to).
        Value::Number(n) if n.is_f64() => n
            .as_f64()
            .filter(|f| f64::from(*f as f32) == *f)
            .map_or_else(|| n.to_string(), |f| format!("{:?}", f as f32)),
        // JSON's string escapes are TOML's basic-string escapes.
        other => other.to_string(),
    }
}

/// Every key `defaults_toml` prints, dotted (`serve.max_queued`), for checks that each is
/// documented.
pub fn setting_keys<T: Serialize>(base: &T) -> Result<Vec<String>, SettingsError> {
    fn walk(node: &Value, at: &str, out: &mut Vec<String>) {
        match node {
            Value::Object(map) => {
                for (key, child) in map {
                    let path = dotted(at, key);
                    walk(child, &path, out);
                }
            }
            _ => out.push(at.to_string()),
        }
    }
    let mut out = Vec::new();
    walk(&tree_of(base)?, "", &mut out);
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::AppSettings;
    use crate::worker::WorkerSettings;

    fn vars(pairs: &[(&str, &str)]) -> impl Iterator<Item = (String, String)> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect::<Vec<_>>()
            .into_iter()
    }

    #[test]
    fn a_list_setting_is_given_comma_separated() {
        let s: WorkerSettings = settings_from_vars(vars(&[
            ("IMGFEAT_STORE__CQL__NODES", "a:9042,b:9042"),
            ("IMGFEAT_AMQP__RETRY_DELAYS_MS", "10,20,30"),
        ]))
        .unwrap();
        assert_eq!(s.store.cql.nodes, ["a:9042", "b:9042"]);
        assert_eq!(s.amqp.retry_delays_ms, [10, 20, 30]);
    }

    #[test]
    fn settings_without_lists_read_every_variable_as_one_value() {
        #[derive(Debug, Default, serde::Deserialize, serde::Serialize)]
        #[serde(default)]
        struct PipelineOnly {
            pipeline: imgfeat_pipeline::PipelineSettings,
        }
        let s: PipelineOnly = settings_from_vars(vars(&[
            ("IMGFEAT_PIPELINE__RUNTIME__BACKEND", "openvino"),
            ("IMGFEAT_PIPELINE__RUNTIME__PRECISION", "bf16"),
            ("IMGFEAT_PIPELINE__DECODE__THREADS", "3"),
        ]))
        .unwrap();
        let runtime = s.pipeline.runtime;
        assert_eq!(runtime.backend, imgfeat_model::Backend::Openvino);
        assert_eq!(runtime.precision, imgfeat_model::Precision::Bf16);
        assert_eq!(s.pipeline.decode.threads, 3);
    }

    #[test]
    fn an_unknown_variable_is_named_and_another_binarys_is_left_alone() {
        let err = settings_from_vars::<WorkerSettings>(vars(&[(
            "IMGFEAT_PIPELINE__DECODE__THREDS",
            "2",
        )]))
        .unwrap_err()
        .to_string();
        assert!(err.contains("IMGFEAT_PIPELINE__DECODE__THREDS"), "{err}");
        assert!(err.contains("pipeline.decode.threds"), "{err}");
        let err = settings_from_vars::<WorkerSettings>(vars(&[(
            "IMGFEAT_PIPELNE__DECODE__THREADS",
            "2",
        )]))
        .unwrap_err()
        .to_string();
        assert!(err.contains("IMGFEAT_PIPELNE__DECODE__THREADS"), "{err}");
        // The serve's and ingest's sections in one shared env file; other tools' variables.
        let s: WorkerSettings = settings_from_vars(vars(&[
            ("IMGFEAT_SERVE__MAX_QUEUED", "4"),
            ("IMGFEAT_BACKFILL__HIGH_WATER", "2000"),
            ("IMGFEAT_ORT_LIB", "/x.so"),
            ("IMGFEAT_PIPELINE__DECODE__THREADS", "3"),
        ]))
        .unwrap();
        assert_eq!(s.pipeline.decode.threads, 3);
    }

    #[test]
    fn a_partly_given_section_keeps_the_binarys_own_defaults() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("worker.toml");
        std::fs::write(&file, "[telemetry]\n").unwrap();
        let mut base = WorkerSettings::default();
        base.telemetry.listen = Some("0.0.0.0:9999".into());
        base.pipeline.decode.max_queued = 77;
        std::fs::write(&file, "[pipeline.decode]\nthreads = 1\n").unwrap();
        let s = settings_from(base, Some(&file), vars(&[])).unwrap();
        assert_eq!(s.telemetry.listen.as_deref(), Some("0.0.0.0:9999"));
        assert_eq!(s.pipeline.decode.max_queued, 77);
        assert_eq!(s.pipeline.decode.threads, 1);
    }

    #[test]
    fn tagged_settings_take_any_variant() {
        let s: WorkerSettings = settings_from_vars(vars(&[
            ("IMGFEAT_SOURCE__KIND", "http"),
            ("IMGFEAT_SOURCE__URL_TEMPLATE", "http://x/{id}"),
        ]))
        .unwrap();
        assert!(matches!(s.source, imgfeat_sources::SourceSettings::Http(_)));
    }

    #[test]
    fn defaults_print_every_key_and_parse_back_uncommented() {
        let base = AppSettings::default();
        let text = defaults_toml(&base).unwrap();
        for key in setting_keys(&base).unwrap() {
            let leaf = key.rsplit('.').next().unwrap();
            assert!(
                text.contains(&format!("# {leaf} =")),
                "{key} missing:\n{text}"
            );
        }
        // Uncommented (unset lines dropped), the text is a file giving the defaults.
        let file: String = text
            .lines()
            .filter(|l| !l.ends_with("(unset)"))
            .map(|l| l.trim_start_matches("# "))
            .map(|l| format!("{l}\n"))
            .collect();
        let back: AppSettings = settings_from_toml(&file).unwrap();
        assert_eq!(tree_of(&back).unwrap(), tree_of(&base).unwrap(), "{file}");
    }
}
