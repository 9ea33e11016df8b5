//! `sluice explain FIELD`: a field of the job spec from its schema, as `kubectl explain` does:
//! its type, whether it may be left out, default, allowed values and bounds, description and
//! sub-fields. The schema is the server's (`JobSpec` in `/openapi.json`, made from the spec's
//! own types), so it is the one the server checks documents against.
//!
//! Paths are sluice's (`spark.executor.memory`) or a SparkApplication's (`spec.executor.memory`,
//! `metadata.name`): `spec.` is sluice's `spark.`, `metadata.name`/`namespace`/`labels` are
//! its top-level fields.

use std::fmt::Write as _;

use anyhow::{Result, anyhow, bail};
use serde_json::Value;

/// The schema the paths start from.
const ROOT: &str = "JobSpec";

/// A schema with its `$ref` followed and an `Option`'s `oneOf: [X, null]` unwrapped; the
/// description of the outer one wins. Also whether null is allowed.
fn resolve(schemas: &Value, s: &Value) -> (Value, bool) {
    let mut nullable = false;
    let mut desc = s.get("description").cloned();
    let mut cur = s;
    for _ in 0..16 {
        if let Some(alts) = cur.get("oneOf").and_then(Value::as_array) {
            let non_null: Vec<&Value> = alts
                .iter()
                .filter(|a| a.get("type").and_then(Value::as_str) != Some("null"))
                .collect();
            if non_null.len() == 1 && alts.len() == 2 {
                nullable = true;
                if desc.is_none() {
                    desc = non_null[0].get("description").cloned();
                }
                cur = non_null[0];
                continue;
            }
        }
        if let Some(r) = cur.get("$ref").and_then(Value::as_str) {
            let name = r.rsplit('/').next().unwrap_or(r);
            if let Some(t) = schemas.get(name) {
                if desc.is_none() {
                    desc = cur.get("description").cloned();
                }
                let mut t = t.clone();
                if let Some(obj) = t.as_object_mut() {
                    obj.insert("x-name".into(), Value::String(name.into()));
                    // Keep the outer schema's default and bounds.
                    for k in ["default", "minimum", "maximum"] {
                        if let Some(v) = s.get(k) {
                            obj.insert(k.into(), v.clone());
                        }
                    }
                }
                let (mut inner, n) = resolve(schemas, &t);
                nullable |= n;
                if let (Some(d), Some(obj)) = (desc, inner.as_object_mut()) {
                    obj.insert("description".into(), d);
                }
                return (inner, nullable);
            }
        }
        break;
    }
    let mut out = cur.clone();
    if let Some(types) = out.get("type").and_then(Value::as_array) {
        nullable |= types.iter().any(|t| t == "null");
    }
    if let (Some(d), Some(obj)) = (desc, out.as_object_mut()) {
        obj.insert("description".into(), d);
    }
    (out, nullable)
}

/// The type of a (resolved) schema, for people: `string`, `integer`, `object (DriverSpec)`,
/// `map of string`, `list of string`, `one of: {file} | {env} | {secretKeyRef}`.
fn type_name(schemas: &Value, s: &Value) -> String {
    let named = s.get("x-name").and_then(Value::as_str);
    let base = match s.get("type") {
        Some(Value::String(t)) => t.clone(),
        Some(Value::Array(ts)) => ts
            .iter()
            .filter_map(Value::as_str)
            .filter(|t| *t != "null")
            .collect::<Vec<_>>()
            .join(" or "),
        _ => String::new(),
    };
    if base == "array" {
        let items = s.get("items").map(|i| resolve(schemas, i).0);
        return format!(
            "list of {}",
            items
                .map(|i| type_name(schemas, &i))
                .unwrap_or_else(|| "any".into())
        );
    }
    if base == "object"
        && s.get("properties").is_none()
        && let Some(ap) = s.get("additionalProperties")
    {
        let (v, _) = resolve(schemas, ap);
        return format!("map of {}", type_name(schemas, &v));
    }
    if let Some(alts) = s.get("oneOf").and_then(Value::as_array) {
        let keys: Vec<String> = alts
            .iter()
            .map(|a| {
                a.get("properties")
                    .and_then(Value::as_object)
                    .map(|p| format!("{{{}}}", p.keys().cloned().collect::<Vec<_>>().join(", ")))
                    .unwrap_or_else(|| type_name(schemas, a))
            })
            .collect();
        return format!("one of: {}", keys.join(" | "));
    }
    match (named, base.as_str()) {
        (Some(n), "object") => format!("object ({n})"),
        (_, "") => "any".into(),
        _ => base,
    }
}

/// The sub-fields of a resolved schema, by name.
fn fields(s: &Value) -> Vec<(String, Value)> {
    s.get("properties")
        .and_then(Value::as_object)
        .map(|p| p.iter().map(|(k, v)| (k.clone(), v.clone())).collect())
        .unwrap_or_default()
}

/// `spec.x` (a SparkApplication's) as sluice's `spark.x`; `metadata.name` as `name`.
fn normalize(path: &str) -> String {
    let p = path.trim().trim_start_matches('.');
    if let Some(rest) = p.strip_prefix("metadata.") {
        return rest.to_string();
    }
    if p == "spec" {
        return "spark".into();
    }
    if let Some(rest) = p.strip_prefix("spec.") {
        return format!("spark.{rest}");
    }
    p.strip_prefix("job.").unwrap_or(p).to_string()
}

/// Names among `names` near `wanted` (a typo or a different case), nearest first.
fn near<'a>(wanted: &str, names: impl Iterator<Item = &'a str>) -> Vec<&'a str> {
    let w = wanted.to_ascii_lowercase();
    let mut scored: Vec<(f64, &str)> = names
        .map(|n| {
            let l = n.to_ascii_lowercase();
            let score = if l.contains(&w) || w.contains(&l) {
                0.95
            } else {
                strsim::jaro_winkler(&w, &l)
            };
            (score, n)
        })
        .filter(|(s, _)| *s >= 0.8)
        .collect();
    scored.sort_by(|a, b| b.0.total_cmp(&a.0));
    scored.into_iter().map(|(_, n)| n).take(3).collect()
}

/// The text `sluice explain PATH` prints, from the OpenAPI document `doc`.
pub fn explain(doc: &Value, path: &str) -> Result<String> {
    let schemas = doc
        .pointer("/components/schemas")
        .ok_or_else(|| anyhow!("the server's /openapi.json has no schemas"))?;
    let root = schemas.get(ROOT).ok_or_else(|| {
        anyhow!("the server's /openapi.json has no {ROOT} schema (a server older than explain)")
    })?;
    let norm = normalize(path);
    let (mut cur, mut nullable) = resolve(schemas, root);
    let mut walked: Vec<&str> = Vec::new();
    for seg in norm.split('.').filter(|s| !s.is_empty()) {
        let props = fields(&cur);
        if let Some((_, next)) = props.iter().find(|(k, _)| k == seg) {
            (cur, nullable) = resolve(schemas, next);
        } else if cur.get("properties").is_none()
            && let Some(ap) = cur.get("additionalProperties")
        {
            // A key of a map (labels.team, spark.sparkConf."spark.x"): its values' schema.
            (cur, nullable) = resolve(schemas, ap);
        } else {
            let at = if walked.is_empty() {
                "the job spec".to_string()
            } else {
                format!("`{}`", walked.join("."))
            };
            let names: Vec<&str> = props.iter().map(|(k, _)| k.as_str()).collect();
            let mut msg = format!(
                "unknown field `{}`: {at} has no field `{seg}`",
                if walked.is_empty() {
                    seg.to_string()
                } else {
                    format!("{}.{seg}", walked.join("."))
                }
            );
            let close = near(seg, names.iter().copied());
            if !close.is_empty() {
                let prefix = if walked.is_empty() {
                    String::new()
                } else {
                    format!("{}.", walked.join("."))
                };
                let list: Vec<String> = close.iter().map(|c| format!("{prefix}{c}")).collect();
                let _ = write!(msg, "; did you mean {}?", list.join(" or "));
            } else if !names.is_empty() {
                let _ = write!(msg, " (its fields: {})", names.join(", "));
            }
            bail!("{msg}");
        }
        walked.push(seg);
    }
    let mut o = String::new();
    let shown = if walked.is_empty() {
        "job spec".to_string()
    } else {
        walked.join(".")
    };
    let _ = writeln!(o, "FIELD:       {shown}");
    if norm != path.trim() {
        let _ = writeln!(o, "AS WRITTEN:  {}", path.trim());
    }
    let _ = writeln!(
        o,
        "TYPE:        {}{}",
        type_name(schemas, &cur),
        if nullable && !walked.is_empty() {
            " (optional)"
        } else {
            ""
        }
    );
    if let Some(d) = cur.get("default") {
        let _ = writeln!(o, "DEFAULT:     {}", plain(d));
    }
    let allowed = cur
        .get("enum")
        .or_else(|| cur.pointer("/items/enum"))
        .cloned()
        .or_else(|| {
            cur.get("items")
                .map(|i| resolve(schemas, i).0)
                .and_then(|i| i.get("enum").cloned())
        });
    if let Some(Value::Array(vals)) = allowed {
        let vs: Vec<String> = vals.iter().map(plain).collect();
        let _ = writeln!(o, "ALLOWED:     {}", vs.join(", "));
    }
    match (cur.get("minimum"), cur.get("maximum")) {
        (Some(a), Some(b)) => {
            let _ = writeln!(o, "RANGE:       {} to {}", plain(a), plain(b));
        }
        (Some(a), None) => {
            let _ = writeln!(o, "MINIMUM:     {}", plain(a));
        }
        (None, Some(b)) => {
            let _ = writeln!(o, "MAXIMUM:     {}", plain(b));
        }
        (None, None) => {}
    }
    if let Some(d) = cur.get("description").and_then(Value::as_str) {
        let _ = writeln!(o, "\nDESCRIPTION:");
        for line in d.lines() {
            let _ = writeln!(o, "  {}", line.trim());
        }
    }
    let subs = fields(&cur);
    if !subs.is_empty() {
        let _ = writeln!(o, "\nFIELDS:");
        let width = subs.iter().map(|(k, _)| k.len()).max().unwrap_or(0);
        for (k, v) in subs {
            let (r, _) = resolve(schemas, &v);
            let first = r
                .get("description")
                .and_then(Value::as_str)
                .and_then(|d| d.lines().next())
                .unwrap_or("");
            let _ = writeln!(o, "  {k:<width$}  <{}>  {first}", type_name(schemas, &r));
        }
    }
    Ok(o)
}

fn plain(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn doc() -> Value {
        json!({"components": {"schemas": {
            "JobSpec": {"type": "object", "description": "The job.", "properties": {
                "name": {"type": ["string", "null"], "description": "Job name."},
                "labels": {"type": "object", "description": "Labels.",
                           "additionalProperties": {"$ref": "#/components/schemas/Text"}},
                "spark": {"oneOf": [{"$ref": "#/components/schemas/SparkSpec", "description": "A Spark app."}, {"type": "null"}]}
            }},
            "Text": {"type": "string", "description": "Text."},
            "SparkSpec": {"type": "object", "description": "Spark.", "properties": {
                "type": {"oneOf": [{"$ref": "#/components/schemas/AppType", "description": "The language."}, {"type": "null"}]},
                "executor": {"$ref": "#/components/schemas/Exec", "description": "Executors."}
            }},
            "AppType": {"type": "string", "enum": ["Scala", "Python"]},
            "Exec": {"type": "object", "properties": {
                "memory": {"oneOf": [{"$ref": "#/components/schemas/Text", "description": "Executor memory."}, {"type": "null"}]},
                "instances": {"type": ["integer", "null"], "description": "How many.", "default": 2, "minimum": 0}
            }}
        }}})
    }

    #[test]
    fn a_field_shows_its_type_description_default_and_values() {
        let d = doc();
        let t = explain(&d, "spark.executor.memory").unwrap();
        assert!(t.contains("FIELD:       spark.executor.memory"), "{t}");
        assert!(t.contains("TYPE:        string (optional)"), "{t}");
        assert!(t.contains("Executor memory."), "{t}");
        // A SparkApplication's path names the same field.
        let t = explain(&d, "spec.executor.instances").unwrap();
        assert!(
            t.contains("DEFAULT:     2") && t.contains("MINIMUM:     0"),
            "{t}"
        );
        let t = explain(&d, "spark.type").unwrap();
        assert!(t.contains("ALLOWED:     Scala, Python"), "{t}");
        assert!(t.contains("The language."), "{t}");
        // An object lists its fields; a map key takes the values' schema.
        let t = explain(&d, "spark").unwrap();
        assert!(
            t.contains("FIELDS:") && t.contains("executor") && t.contains("<object (Exec)>"),
            "{t}"
        );
        let t = explain(&d, "labels.team").unwrap();
        assert!(t.contains("TYPE:        string"), "{t}");
        assert!(explain(&d, "").unwrap().contains("FIELD:       job spec"));
    }

    #[test]
    fn an_unknown_field_is_named_with_near_names() {
        let d = doc();
        let e = explain(&d, "spark.executor.memroy")
            .unwrap_err()
            .to_string();
        assert!(e.contains("unknown field `spark.executor.memroy`"), "{e}");
        assert!(e.contains("did you mean spark.executor.memory?"), "{e}");
        let e = explain(&d, "sprak").unwrap_err().to_string();
        assert!(e.contains("did you mean spark?"), "{e}");
        let e = explain(&d, "spark.executor.zzz").unwrap_err().to_string();
        assert!(
            e.contains("its fields: memory, instances")
                || e.contains("its fields: instances, memory"),
            "{e}"
        );
    }
}
