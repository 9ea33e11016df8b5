//! Secrets out of answers and logs: values whose name looks secret (an environment variable,
//! a Spark conf key, any key of the job's document) are shown as [`REDACTED`] by the API (and
//! so by the UI and `sluice get`), and the store's URL is logged without its password. The
//! stored job keeps the values, so the job still runs with them.

use serde_json::Value;

/// What a secret value is shown as.
pub const REDACTED: &str = "<redacted>";

/// The parts of a name that mark its value as secret (compared without case).
const SECRET_WORDS: [&str; 7] = [
    "PASSWORD",
    "PASSWD",
    "SECRET",
    "TOKEN",
    "KEY",
    "CREDENTIAL",
    "PRIVATE",
];

/// True when a value named `name` is to be hidden: an environment variable or Spark conf key
/// holding PASSWORD, SECRET, TOKEN, KEY, CREDENTIAL (`DB_PASSWORD`, `AWS_SECRET_ACCESS_KEY`,
/// `spark.ssl.keyPassword`, `spark.hadoop.fs.s3a.secret.key`, `spark.authenticate.secret`).
pub fn looks_secret(name: &str) -> bool {
    let upper = name.to_ascii_uppercase();
    SECRET_WORDS.iter().any(|w| upper.contains(w))
}

fn is_scalar(v: &Value) -> bool {
    matches!(v, Value::String(_) | Value::Number(_) | Value::Bool(_))
}

/// Hides, anywhere in `v`, the scalar value of a key that [`looks_secret`], and the `value` of
/// a `{name, value}` entry (a Kubernetes env list) whose name does. True when anything changed.
pub fn redact_value(v: &mut Value) -> bool {
    let mut changed = false;
    match v {
        Value::Object(map) => {
            let named_secret = map
                .get("name")
                .and_then(Value::as_str)
                .is_some_and(looks_secret);
            for (k, item) in map.iter_mut() {
                let hide = (looks_secret(k) || (named_secret && k == "value"))
                    && is_scalar(item)
                    && item.as_str() != Some(REDACTED);
                if hide {
                    *item = Value::String(REDACTED.into());
                    changed = true;
                } else {
                    changed |= redact_value(item);
                }
            }
        }
        Value::Array(items) => {
            for item in items {
                changed |= redact_value(item);
            }
        }
        _ => {}
    }
    changed
}

/// A document's text (YAML or JSON) with its secret values hidden: unchanged when it has none;
/// else rewritten (as JSON, which is YAML too) from the parsed and redacted document. A text
/// that does not parse is hidden whole if it mentions a secret-looking word.
pub fn redact_document(text: &str) -> String {
    // A key or name that looks secret is in the text as written, unless an escape (`\x4B`,
    // `\u004B`, both with a backslash) spells it: without either, there is nothing to hide and
    // the document need not be parsed (a second YAML parse was ~5% of a submit's CPU).
    if !text.contains('\\') && !looks_secret(text) {
        return text.to_string();
    }
    match serde_saphyr::from_str::<Value>(text) {
        Ok(mut doc) => {
            if redact_value(&mut doc) {
                serde_json::to_string_pretty(&doc).unwrap_or_else(|_| REDACTED.into())
            } else {
                text.to_string()
            }
        }
        Err(_) if looks_secret(text) => REDACTED.into(),
        Err(_) => text.to_string(),
    }
}

/// A stored job or schedule template as the API shows it: secret values hidden in the job
/// (`kind.env`, `sparkConf`, a SparkApplication's env lists) and in the document texts it
/// keeps (`document`, `kind.source`, `source`).
pub fn redact_spec(spec: &mut Value) {
    redact_value(spec);
    redact_texts(spec);
}

fn redact_texts(v: &mut Value) {
    if let Value::Object(map) = v {
        for (k, item) in map.iter_mut() {
            match item {
                Value::String(text) if matches!(k.as_str(), "document" | "source") => {
                    *text = redact_document(text);
                }
                Value::Object(_) => redact_texts(item),
                _ => {}
            }
        }
    }
}

/// A URL for logs and messages: the user-info password and any `password=` query parameter
/// hidden.
pub fn url(u: &str) -> String {
    let base = sluice_store::redact_url(u);
    let Some((head, query)) = base.split_once('?') else {
        return base;
    };
    let params: Vec<String> = query
        .split('&')
        .map(|p| match p.split_once('=') {
            Some((k, _)) if looks_secret(k) => format!("{k}=***"),
            _ => p.to_string(),
        })
        .collect();
    format!("{head}?{}", params.join("&"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn secret_names() {
        for n in [
            "DB_PASSWORD",
            "aws_secret_access_key",
            "GITHUB_TOKEN",
            "API_KEY",
            "spark.ssl.keyPassword",
            "spark.hadoop.fs.s3a.secret.key",
            "spark.authenticate.secret",
            "GOOGLE_APPLICATION_CREDENTIALS",
        ] {
            assert!(looks_secret(n), "{n}");
        }
        for n in ["HOME", "REPORT_DATE", "spark.executor.memory", "GREETING"] {
            assert!(!looks_secret(n), "{n}");
        }
    }

    #[test]
    fn values_and_documents_are_hidden() {
        let mut v = json!({
            "kind": {"type": "command", "env": {"DB_PASSWORD": "hunter2", "HOME": "/h"},
                     "argv": ["x"]},
            "application": {"spec": {"driver": {"env": [
                {"name": "API_TOKEN", "value": "t0k"}, {"name": "A", "value": "b"}]}}},
            "document": "name: a\ncommand:\n  argv: [x]\n  env: {DB_PASSWORD: hunter2}\n",
        });
        redact_spec(&mut v);
        let text = v.to_string();
        assert!(!text.contains("hunter2") && !text.contains("t0k"), "{text}");
        assert_eq!(v["kind"]["env"]["HOME"], "/h");
        assert_eq!(v["application"]["spec"]["driver"]["env"][1]["value"], "b");
        // A document without secrets is kept as written.
        assert_eq!(redact_document("a: 1 # note\n"), "a: 1 # note\n");
    }

    #[test]
    fn a_secret_name_spelt_with_escapes_is_still_hidden() {
        // No secret word in the text as written: the names are spelt with escapes.
        for doc in [
            "env: {\"DB_PASS\\x57ORD\": hunter2}\n",
            "{\"env\": {\"API_TO\\u004BEN\": \"hunter2\"}}",
            "env:\n- name: \"MY_S\\x45CRET\"\n  value: hunter2\n",
        ] {
            assert!(!looks_secret(doc), "{doc}");
            let shown = redact_document(doc);
            assert!(!shown.contains("hunter2"), "{doc} -> {shown}");
        }
    }

    #[test]
    fn urls_lose_their_passwords() {
        assert_eq!(
            url("postgres://sluice:hunter2@db:5432/sluice?sslmode=require&password=x"),
            "postgres://sluice:***@db:5432/sluice?sslmode=require&password=***"
        );
        assert_eq!(
            url("sqlite://.sluice/sluice.db"),
            "sqlite://.sluice/sluice.db"
        );
    }
}
