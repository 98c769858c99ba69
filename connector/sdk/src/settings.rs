//! Typed settings: read from `wasi:config/store` in the component (a map in native tests),
//! validated once per call, each error naming its key; and [`check_schema`], which holds a
//! connector's published settings schema to what its loader reads.

use std::cell::RefCell;
use std::collections::{BTreeSet, HashMap};
use std::time::Duration;

use crate::types::ConnectorError;

/// Where settings come from (`wasi:config/store` in the component, a map in native tests).
pub trait ConfigSource {
    /// The value of `key`, if set.
    fn get(&self, key: &str) -> Result<Option<String>, String>;
}

impl ConfigSource for HashMap<String, String> {
    fn get(&self, key: &str) -> Result<Option<String>, String> {
        Ok(HashMap::get(self, key).cloned())
    }
}

/// Settings from `wasi:config/store`: the tenant's settings, served by the host, read with one
/// `get-all` when the call starts. A connector reads a dozen keys or more per call, most of them
/// unset; asking the host for each was a host call apiece on every call.
#[derive(Debug, Clone)]
pub struct WasiConfig {
    /// The tenant's settings (a handful: a linear search costs less than hashing them), or
    /// why the host could not give them.
    values: Result<Vec<(String, String)>, String>,
}

impl WasiConfig {
    /// Reads every setting the host holds for this call's tenant.
    pub fn read() -> Self {
        use crate::bindings::wasi::config::store;
        let values = store::get_all().map_err(|e| match e {
            store::Error::Upstream(m) | store::Error::Io(m) => m,
        });
        WasiConfig { values }
    }
}

impl ConfigSource for WasiConfig {
    fn get(&self, key: &str) -> Result<Option<String>, String> {
        match &self.values {
            Ok(values) => Ok(values.iter().find(|(k, _)| k == key).map(|(_, v)| v.clone())),
            Err(e) => Err(e.clone()),
        }
    }
}

/// Reads typed settings from a [`ConfigSource`]. Values are trimmed; an empty value counts as
/// unset. A reader made with [`SettingsReader::recording`] also remembers every key asked for
/// (see [`check_schema`]); calls do not pay for that bookkeeping.
pub struct SettingsReader<'a> {
    source: &'a dyn ConfigSource,
    asked: Option<RefCell<BTreeSet<String>>>,
}

impl<'a> SettingsReader<'a> {
    /// A reader of `source`.
    pub fn new(source: &'a dyn ConfigSource) -> Self {
        SettingsReader { source, asked: None }
    }

    /// A reader of `source` that remembers the keys asked for ([`SettingsReader::asked`]).
    pub fn recording(source: &'a dyn ConfigSource) -> Self {
        SettingsReader { source, asked: Some(RefCell::new(BTreeSet::new())) }
    }

    /// The raw value of `key` as set (untrimmed), if set.
    pub fn raw(&self, key: &str) -> Result<Option<String>, ConnectorError> {
        if let Some(asked) = &self.asked {
            asked.borrow_mut().insert(key.to_string());
        }
        self.source.get(key).map_err(|e| {
            ConnectorError::InvalidConfig(format!("could not read setting `{key}`: {e}"))
        })
    }

    /// The trimmed value of `key`, if set and not blank.
    pub fn optional(&self, key: &str) -> Result<Option<String>, ConnectorError> {
        Ok(self.raw(key)?.map(|v| v.trim().to_string()).filter(|v| !v.is_empty()))
    }

    /// The trimmed value of `key`, which must be set.
    pub fn required(&self, key: &str) -> Result<String, ConnectorError> {
        self.optional(key)?
            .ok_or_else(|| ConnectorError::InvalidConfig(format!("setting `{key}` is required")))
    }

    /// A whole number from `min` to `max`, `default` when unset.
    pub fn number(
        &self,
        key: &str,
        min: u64,
        max: u64,
        default: u64,
    ) -> Result<u64, ConnectorError> {
        match self.raw(key)? {
            None => Ok(default),
            Some(raw) => match raw.trim().parse::<u64>() {
                Ok(n) if (min..=max).contains(&n) => Ok(n),
                _ => Err(ConnectorError::InvalidConfig(format!(
                    "setting `{key}` must be a whole number from {min} to {max}, got {raw:?}"
                ))),
            },
        }
    }

    /// `true` or `false`, `default` when unset.
    pub fn flag(&self, key: &str, default: bool) -> Result<bool, ConnectorError> {
        match self.optional(key)?.as_deref() {
            None => Ok(default),
            Some("true") => Ok(true),
            Some("false") => Ok(false),
            Some(other) => Err(ConnectorError::InvalidConfig(format!(
                "setting `{key}` must be `true` or `false`, got {other:?}"
            ))),
        }
    }

    /// An `http` or `https` base URL without a trailing `/`, a query, a fragment or credentials.
    pub fn base_url(&self, key: &str) -> Result<String, ConnectorError> {
        validate_base_url(key, &self.required(key)?)
    }

    /// [`Self::base_url`] for a setting that may be left out.
    pub fn optional_base_url(&self, key: &str) -> Result<Option<String>, ConnectorError> {
        self.optional(key)?.map(|raw| validate_base_url(key, &raw)).transpose()
    }

    /// The keys asked for so far by a [`SettingsReader::recording`] reader (none by another).
    pub fn asked(&self) -> BTreeSet<String> {
        self.asked.as_ref().map(|asked| asked.borrow().clone()).unwrap_or_default()
    }
}

/// Checks an `http`/`https` base URL for setting `key`, returned without its trailing `/`.
pub fn validate_base_url(key: &str, raw: &str) -> Result<String, ConnectorError> {
    let bad =
        |why: &str| ConnectorError::InvalidConfig(format!("setting `{key}` {why}, got {raw:?}"));
    let rest = raw
        .strip_prefix("https://")
        .or_else(|| raw.strip_prefix("http://"))
        .ok_or_else(|| bad("must start with https:// or http://"))?;
    let host = rest.split('/').next().unwrap_or_default();
    if host.contains('@') {
        // Not echoed: what stands before the `@` is a user name and perhaps a password.
        return Err(ConnectorError::InvalidConfig(format!(
            "setting `{key}` must not carry credentials (`user:password@`); the host injects the tenant's credentials"
        )));
    }
    if host.is_empty() {
        return Err(bad("must name a host"));
    }
    if raw.contains(['?', '#', ' ']) {
        return Err(bad("must not contain a query, fragment or spaces"));
    }
    Ok(raw.trim_end_matches('/').to_string())
}

/// The JSON Schema properties of the settings [`RetryPolicy::load`] reads, as a string literal
/// for `concat!` into a connector's settings schema.
#[macro_export]
macro_rules! retry_schema_properties {
    () => {
        r#""max-attempts": {"type": "string", "pattern": "^[0-9]+$", "description": "Attempts per request when the service throttles or fails, 1 to 10 (default 4)"},
    "retry-base-ms": {"type": "string", "pattern": "^[0-9]+$", "description": "First retry backoff in milliseconds, doubling with jitter (default 500)"},
    "retry-budget-ms": {"type": "string", "pattern": "^[0-9]+$", "description": "Total time one call may spend retrying, across all its requests (waits and repeated attempts), in milliseconds (default 30000); once spent, failures are reported at once"}"#
    };
}

/// How a connector retries requests that failed in a way worth retrying.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryPolicy {
    /// Attempts per request, the first included (1 to 10).
    pub max_attempts: u32,
    /// First backoff; it doubles each attempt, with jitter, up to 10 s.
    pub base_delay: Duration,
    /// Total time one call may spend retrying, across all its requests: the waits between
    /// attempts and the repeated attempts. Once spent, a failure is final at once.
    pub budget: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy {
            max_attempts: 4,
            base_delay: Duration::from_millis(500),
            budget: Duration::from_secs(30),
        }
    }
}

impl RetryPolicy {
    /// The settings [`RetryPolicy::load`] reads, as JSON Schema properties to put in a
    /// connector's settings schema (also as a literal: [`retry_schema_properties!`](crate::retry_schema_properties)).
    pub const SCHEMA_PROPERTIES: &str = crate::retry_schema_properties!();

    /// Reads `max-attempts` (1 to 10), `retry-base-ms` (up to a minute) and `retry-budget-ms`
    /// (up to ten minutes), each defaulting to [`RetryPolicy::default`].
    pub fn load(settings: &SettingsReader<'_>) -> Result<Self, ConnectorError> {
        let defaults = RetryPolicy::default();
        Ok(RetryPolicy {
            max_attempts: settings.number(
                "max-attempts",
                1,
                10,
                u64::from(defaults.max_attempts),
            )? as u32,
            base_delay: Duration::from_millis(settings.number(
                "retry-base-ms",
                0,
                60_000,
                defaults.base_delay.as_millis() as u64,
            )?),
            budget: Duration::from_millis(settings.number(
                "retry-budget-ms",
                0,
                600_000,
                defaults.budget.as_millis() as u64,
            )?),
        })
    }
}

/// Checks a connector's published settings schema (`info().config-schema`) against its loader:
/// the schema must be a JSON object schema that closes `additionalProperties`; with `sample`
/// (valid values for at least the required keys) the loader must succeed and ask for every key
/// the schema lists and no other; and leaving out any key the schema calls required must fail
/// naming it. Returns what disagrees. For connectors' unit tests.
pub fn check_schema<T>(
    schema: &str,
    sample: &[(&str, &str)],
    load: impl Fn(&SettingsReader<'_>) -> Result<T, ConnectorError>,
) -> Result<(), String> {
    let schema: serde_json::Value =
        serde_json::from_str(schema).map_err(|e| format!("the schema is not JSON: {e}"))?;
    let properties: BTreeSet<String> = schema
        .get("properties")
        .and_then(|p| p.as_object())
        .ok_or("the schema has no `properties` object")?
        .keys()
        .cloned()
        .collect();
    let required: BTreeSet<String> = schema
        .get("required")
        .and_then(|r| r.as_array())
        .map(|r| r.iter().filter_map(|k| k.as_str().map(str::to_string)).collect())
        .unwrap_or_default();
    let mut problems = Vec::new();
    if schema.get("additionalProperties") != Some(&serde_json::Value::Bool(false)) {
        problems.push("the schema does not close `additionalProperties`".to_string());
    }
    for key in required.difference(&properties) {
        problems.push(format!("`{key}` is required but not a property"));
    }
    let source: HashMap<String, String> =
        sample.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
    let reader = SettingsReader::recording(&source);
    match load(&reader) {
        Err(e) => {
            problems.push(format!("the sample does not load: {}", crate::error::describe(&e)))
        }
        Ok(_) => {
            let asked = reader.asked();
            for key in asked.difference(&properties) {
                problems.push(format!("the loader reads `{key}`, which the schema does not list"));
            }
            for key in properties.difference(&asked) {
                problems.push(format!("the schema lists `{key}`, which the loader never reads"));
            }
        }
    }
    for key in &required {
        let mut without = source.clone();
        without.remove(key);
        match load(&SettingsReader::new(&without)) {
            Ok(_) => problems.push(format!("the schema requires `{key}`, but it loads without it")),
            Err(e) if !crate::error::message(&e).contains(&format!("`{key}`")) => {
                problems.push(format!(
                    "without `{key}` the error does not name it: {}",
                    crate::error::describe(&e)
                ))
            }
            Err(_) => {}
        }
    }
    if problems.is_empty() { Ok(()) } else { Err(problems.join("; ")) }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn load(settings: &SettingsReader<'_>) -> Result<(String, RetryPolicy), ConnectorError> {
        Ok((settings.base_url("base-url")?, RetryPolicy::load(settings)?))
    }

    fn schema(extra_required: &str) -> String {
        format!(
            r#"{{"type": "object", "properties": {{"base-url": {{"type": "string"}}, {}}}, "required": ["base-url"{extra_required}], "additionalProperties": false}}"#,
            RetryPolicy::SCHEMA_PROPERTIES
        )
    }

    #[test]
    fn a_schema_that_matches_its_loader_passes() {
        check_schema(&schema(""), &[("base-url", "https://x")], load).unwrap();
    }

    #[test]
    fn each_disagreement_is_named() {
        let unlisted =
            r#"{"type": "object", "properties": {"base-url": {}}, "required": ["base-url"]}"#;
        let problems = check_schema(unlisted, &[("base-url", "https://x")], load).unwrap_err();
        assert!(problems.contains("does not close `additionalProperties`"), "{problems}");
        assert!(
            problems.contains("reads `max-attempts`, which the schema does not list"),
            "{problems}"
        );
        let problems =
            check_schema(&schema(r#", "max-attempts""#), &[("base-url", "https://x")], load)
                .unwrap_err();
        assert!(
            problems.contains("requires `max-attempts`, but it loads without it"),
            "{problems}"
        );
        let problems = check_schema(&schema(""), &[("base-url", "ftp://x")], load).unwrap_err();
        assert!(problems.contains("the sample does not load"), "{problems}");
    }

    #[test]
    fn a_base_url_with_credentials_is_refused_without_echoing_them() {
        let error = validate_base_url("base-url", "https://admin:hunter2@x/api").unwrap_err();
        let message = crate::error::message(&error);
        assert!(message.contains("must not carry credentials"), "{message}");
        assert!(!message.contains("hunter2") && !message.contains("admin"), "{message}");
        assert_eq!(validate_base_url("k", "https://x/api/").unwrap(), "https://x/api");
    }
}
