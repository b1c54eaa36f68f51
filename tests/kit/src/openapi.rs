//! Real answers against an OpenAPI file: the status must be documented for the path and
//! method, the body must match its schema (types, required fields, no undocumented
//! field), and a required header (`Retry-After` of a 429) must be there.

use std::path::Path;

use serde_json::Value;

use crate::Answer;

fn spec(path: &Path) -> Value {
    let text =
        std::fs::read_to_string(path).unwrap_or_else(|e| panic!("reading {}: {e}", path.display()));
    serde_norway::from_str(&text).unwrap()
}

fn resolve<'a>(doc: &'a Value, v: &'a Value) -> &'a Value {
    match v.get("$ref").and_then(Value::as_str) {
        Some(r) => {
            let pointer = r.trim_start_matches('#');
            resolve(
                doc,
                doc.pointer(pointer).unwrap_or_else(|| panic!("no {r}")),
            )
        }
        None => v,
    }
}

fn type_ok(t: &str, v: &Value) -> bool {
    match t {
        "object" => v.is_object(),
        "array" => v.is_array(),
        "string" => v.is_string(),
        "integer" => v.is_u64() || v.is_i64(),
        "number" => v.is_number(),
        "boolean" => v.is_boolean(),
        "null" => v.is_null(),
        _ => false,
    }
}

/// Problems of `v` against `schema`, with their JSON path.
fn check(doc: &Value, schema: &Value, v: &Value, at: &str, problems: &mut Vec<String>) {
    let schema = resolve(doc, schema);
    if let Some(options) = schema.get("oneOf").and_then(Value::as_array) {
        let fits = options.iter().filter(|o| {
            let mut p = Vec::new();
            check(doc, o, v, at, &mut p);
            p.is_empty()
        });
        if fits.count() != 1 {
            problems.push(format!("{at}: {v} fits not exactly one of oneOf"));
        }
        return;
    }
    let types: Vec<&str> = match schema.get("type") {
        Some(Value::String(t)) => vec![t.as_str()],
        Some(Value::Array(ts)) => ts.iter().filter_map(Value::as_str).collect(),
        _ => vec![],
    };
    if !types.is_empty() && !types.iter().any(|t| type_ok(t, v)) {
        problems.push(format!("{at}: {v} is not {types:?}"));
        return;
    }
    if let (Some(obj), true) = (v.as_object(), types.contains(&"object")) {
        let props = schema.get("properties").and_then(Value::as_object);
        for req in schema
            .get("required")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            let name = req.as_str().unwrap_or_default();
            if !obj.contains_key(name) {
                problems.push(format!("{at}: required {name} missing"));
            }
        }
        for (k, child) in obj {
            match props.and_then(|p| p.get(k)) {
                Some(s) => check(doc, s, child, &format!("{at}.{k}"), problems),
                None if schema.get("additionalProperties") == Some(&Value::Bool(false)) => {
                    problems.push(format!("{at}: {k} is not documented"));
                }
                None => {}
            }
        }
    }
    if let (Some(items), Some(schema)) = (v.as_array(), schema.get("items")) {
        for (i, item) in items.iter().enumerate() {
            check(doc, schema, item, &format!("{at}[{i}]"), problems);
        }
    }
}

/// Checks every `(path, answer)` of a POST against the spec at `spec_file`.
pub fn check_all(spec_file: &Path, seen: &[(&str, Answer)]) {
    check_all_of("post", spec_file, seen);
}

/// Checks every `(path, answer)` of a `method` (`get`, `post`) against the spec.
pub fn check_all_of(method: &str, spec_file: &Path, seen: &[(&str, Answer)]) {
    let doc = spec(spec_file);
    let mut problems = Vec::new();
    for (path, a) in seen {
        let op = &doc["paths"][*path][method];
        assert!(
            op.is_object(),
            "{method} {path} is not in {}",
            spec_file.display()
        );
        check_answer(&doc, op, path, a, &mut problems);
    }
    assert!(
        problems.is_empty(),
        "answers outside {}:\n{}",
        spec_file.display(),
        problems.join("\n")
    );
}

/// The spec's path template a request path matches (`/v1/backfill/bf-1` matches
/// `/v1/backfill/{job}`), the query left out.
fn template_of<'a>(doc: &'a Value, path: &str) -> Option<&'a str> {
    let path = path.split('?').next().unwrap_or(path);
    let parts: Vec<&str> = path.split('/').collect();
    doc["paths"]
        .as_object()?
        .keys()
        .map(String::as_str)
        .find(|t| {
            let tparts: Vec<&str> = t.split('/').collect();
            tparts.len() == parts.len()
                && tparts.iter().zip(&parts).all(|(t, p)| {
                    (t.starts_with('{') && t.ends_with('}') && !p.is_empty()) || t == p
                })
        })
}

/// Checks one answer to `method path` (a real path, its template found in the spec).
/// Paths the spec does not list (probes, deliberately unknown routes) are not checked.
pub fn check_request(spec_file: &Path, method: &str, path: &str, a: &Answer) {
    let doc = spec(spec_file);
    let Some(template) = template_of(&doc, path) else {
        return;
    };
    let op = &doc["paths"][template][method.to_ascii_lowercase()];
    if op.get("servers").is_some() {
        // Served on another port (`/metrics`): a request to the API port is not it.
        return;
    }
    let mut problems = Vec::new();
    if op.is_object() {
        check_answer(&doc, op, template, a, &mut problems);
    } else if a.status != 405 {
        problems.push(format!(
            "{method} {template} answered {} but is not documented",
            a.status
        ));
    }
    assert!(
        problems.is_empty(),
        "answer outside {}:\n{}",
        spec_file.display(),
        problems.join("\n")
    );
}

fn check_answer(doc: &Value, op: &Value, path: &str, a: &Answer, problems: &mut Vec<String>) {
    let Some(res) = op["responses"].get(a.status.to_string()) else {
        problems.push(format!("{path}: status {} is not documented", a.status));
        return;
    };
    let res = resolve(doc, res);
    let schema = &res["content"]["application/json"]["schema"];
    check(
        doc,
        schema,
        &a.body,
        &format!("{path} {}", a.status),
        problems,
    );
    if res["headers"]["Retry-After"]["required"] == true && a.retry_after.is_none() {
        problems.push(format!("{path} {}: Retry-After missing", a.status));
    }
}
