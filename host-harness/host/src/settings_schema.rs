//! A tenant's settings checked against the JSON Schema its connector publishes in `info`: a
//! misspelt key (`page_size` for `page-size`) or one the connector does not know is refused at
//! registration, instead of being served and silently ignored.
//!
//! Only what the contract's settings can be is checked: names, required names, and that the
//! schema forbids others (`additionalProperties: false`). Values reach the guest as strings
//! through `wasi:config`, and the connector validates them itself when it loads them.

/// What is wrong with `settings` under `schema` (the connector's `config-schema`), if anything.
pub fn problems(schema: &str, settings: &[(String, String)]) -> Result<(), String> {
    let schema: serde_json::Value = serde_json::from_str(schema)
        .map_err(|e| format!("the connector's settings schema is not JSON ({e})"))?;
    let properties: Vec<&str> = schema
        .get("properties")
        .and_then(|p| p.as_object())
        .map(|p| p.keys().map(String::as_str).collect())
        .unwrap_or_default();
    let closed = schema.get("additionalProperties").and_then(|a| a.as_bool()) == Some(false);
    let mut problems = Vec::new();
    if closed {
        for (key, _) in settings {
            if !properties.contains(&key.as_str()) {
                let hint = nearest(key, &properties)
                    .map(|near| format!(" (did you mean `{near}`?)"))
                    .unwrap_or_default();
                problems.push(format!("`{key}` is not a setting of this connector{hint}"));
            }
        }
    }
    let required = schema.get("required").and_then(|r| r.as_array()).cloned().unwrap_or_default();
    for name in required.iter().filter_map(|r| r.as_str()) {
        if !settings.iter().any(|(key, value)| key == name && !value.trim().is_empty()) {
            problems.push(format!("`{name}` is required"));
        }
    }
    if problems.is_empty() {
        return Ok(());
    }
    let mut known = properties.clone();
    known.sort_unstable();
    Err(format!("settings: {}; it reads: {}", problems.join("; "), known.join(", ")))
}

/// The known name `key` most likely meant: the same once case, `_` and `-` are set aside.
fn nearest<'a>(key: &str, known: &[&'a str]) -> Option<&'a str> {
    let plain = |s: &str| s.to_ascii_lowercase().replace('_', "-");
    known.iter().copied().find(|k| plain(k) == plain(key))
}

#[cfg(test)]
mod tests {
    use super::*;

    const SCHEMA: &str = r#"{"type":"object","properties":{"base-url":{"type":"string"},"page-size":{"type":"string"}},"required":["base-url"],"additionalProperties":false}"#;

    fn settings(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
    }

    #[test]
    fn unknown_and_misspelt_keys_and_missing_required_ones_are_named() {
        assert!(problems(SCHEMA, &settings(&[("base-url", "https://x")])).is_ok());
        let error =
            problems(SCHEMA, &settings(&[("base-url", "x"), ("page_size", "5"), ("bogus", "1")]))
                .unwrap_err();
        assert!(
            error.contains(
                "`page_size` is not a setting of this connector (did you mean `page-size`?)"
            ),
            "{error}"
        );
        assert!(error.contains("`bogus` is not a setting"), "{error}");
        assert!(error.contains("it reads: base-url, page-size"), "{error}");
        let error = problems(SCHEMA, &settings(&[])).unwrap_err();
        assert!(error.contains("`base-url` is required"), "{error}");
        // A schema that allows more leaves other keys alone.
        let open = SCHEMA.replace("false", "true");
        assert!(problems(&open, &settings(&[("base-url", "x"), ("bogus", "1")])).is_ok());
    }
}
