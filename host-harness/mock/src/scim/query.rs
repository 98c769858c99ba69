//! Query parameters: paging and filtering of lists (RFC 7644 §3.4.2), and the `attributes` /
//! `excludedAttributes` projection of any resource answer (§3.4.2.5, §3.9).

use std::collections::HashMap;

use axum::http::StatusCode;
use axum::response::Response;
use serde_json::{Map, Value, json};

use super::MAX_RESULTS;
use super::filter::{self, Filter};
use super::response::{LIST_URN, ScimError, scim_json};
use super::schema::Resource;

/// The decoded query string; a repeated parameter keeps its last value.
pub fn params(raw: Option<&str>) -> HashMap<String, String> {
    url::form_urlencoded::parse(raw.unwrap_or_default().as_bytes()).into_owned().collect()
}

/// Which attributes an answer carries.
#[derive(Debug, Clone, Default)]
pub struct Projection {
    resource: Option<Resource>,
    attributes: Vec<(String, Option<String>)>,
    excluded: Vec<(String, Option<String>)>,
}

fn names(list: Option<&String>, resource: Resource) -> Vec<(String, Option<String>)> {
    list.map(|list| {
        list.split(',')
            .map(|name| resource.strip_urn(name.trim()).to_ascii_lowercase())
            .filter(|name| !name.is_empty())
            .map(|name| match name.split_once('.') {
                Some((top, sub)) => (top.to_string(), Some(sub.to_string())),
                None => (name, None),
            })
            .collect()
    })
    .unwrap_or_default()
}

impl Projection {
    /// From `attributes` and `excludedAttributes`.
    pub fn parse(params: &HashMap<String, String>, resource: Resource) -> Self {
        Projection {
            resource: Some(resource),
            attributes: names(params.get("attributes"), resource),
            excluded: names(params.get("excludedAttributes"), resource),
        }
    }

    /// The rendered resource `doc` with only the attributes asked for. `schemas` and the
    /// attributes returned `always` (`id`) stay whatever is asked (RFC 7643 §7).
    pub fn apply(&self, doc: Value) -> Value {
        let (Some(resource), Value::Object(map)) = (self.resource, &doc) else { return doc };
        if self.attributes.is_empty() && self.excluded.is_empty() {
            return doc;
        }
        let mut out = Map::new();
        for (key, value) in map {
            let lower = key.to_ascii_lowercase();
            let always =
                key == "schemas" || resource.find(key).is_some_and(|a| a.returned == "always");
            let listed = |list: &[(String, Option<String>)]| -> (bool, Vec<String>) {
                let whole = list.iter().any(|(top, sub)| top == &lower && sub.is_none());
                let subs = list
                    .iter()
                    .filter(|(top, _)| top == &lower)
                    .filter_map(|(_, sub)| sub.clone())
                    .collect();
                (whole, subs)
            };
            if always {
                out.insert(key.clone(), value.clone());
            } else if !self.attributes.is_empty() {
                match listed(&self.attributes) {
                    (true, _) => {
                        out.insert(key.clone(), value.clone());
                    }
                    (false, subs) if !subs.is_empty() => {
                        out.insert(key.clone(), keep_subs(value, &subs, true));
                    }
                    _ => {}
                }
            } else {
                match listed(&self.excluded) {
                    (true, _) => {}
                    (false, subs) if !subs.is_empty() => {
                        out.insert(key.clone(), keep_subs(value, &subs, false));
                    }
                    _ => {
                        out.insert(key.clone(), value.clone());
                    }
                }
            }
        }
        Value::Object(out)
    }
}

/// `value` (an object, or a list of objects) with only (`keep`) or without the sub-attributes
/// `subs`.
fn keep_subs(value: &Value, subs: &[String], keep: bool) -> Value {
    let one = |item: &Value| match item {
        Value::Object(map) => Value::Object(
            map.iter()
                .filter(|(k, _)| subs.contains(&k.to_ascii_lowercase()) == keep)
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect(),
        ),
        other => other.clone(),
    };
    match value {
        Value::Array(items) => Value::Array(items.iter().map(one).collect()),
        other => one(other),
    }
}

/// A list request: page, filter, projection.
#[derive(Debug, Clone)]
pub struct ListParams {
    start_index: usize,
    count: usize,
    filter: Option<Filter>,
    projection: Projection,
}

fn number(params: &HashMap<String, String>, name: &str) -> Result<Option<i64>, ScimError> {
    params
        .get(name)
        .map(|raw| {
            raw.trim().parse::<i64>().map_err(|_| {
                ScimError::bad("invalidValue", format!("{name} must be an integer, not {raw:?}"))
            })
        })
        .transpose()
}

impl ListParams {
    /// Validates the query of a list of `resource`.
    pub fn parse(params: &HashMap<String, String>, resource: Resource) -> Result<Self, ScimError> {
        // RFC 7644 §3.4.2.4: a startIndex below 1 is 1; a negative count is 0; the page is at
        // most the advertised maxResults.
        let start_index = number(params, "startIndex")?.unwrap_or(1).max(1);
        let count =
            number(params, "count")?.unwrap_or(MAX_RESULTS as i64).clamp(0, MAX_RESULTS as i64);
        let filter = params
            .get("filter")
            .map(|text| {
                filter::parse(text, resource).map_err(|e| {
                    ScimError::bad("invalidFilter", format!("Unsupported filter {text:?}: {e}"))
                })
            })
            .transpose()?;
        Ok(ListParams {
            start_index: usize::try_from(start_index).unwrap_or(usize::MAX),
            count: usize::try_from(count).unwrap_or(0),
            filter,
            projection: Projection::parse(params, resource),
        })
    }

    /// The ListResponse of the rendered resources `docs`, in their order.
    pub fn answer(&self, docs: impl Iterator<Item = Value>) -> Response {
        let matching: Vec<Value> =
            docs.filter(|d| self.filter.as_ref().is_none_or(|f| f.matches(d))).collect();
        let total = matching.len();
        let page: Vec<Value> = matching
            .into_iter()
            .skip(self.start_index - 1)
            .take(self.count)
            .map(|d| self.projection.apply(d))
            .collect();
        scim_json(StatusCode::OK, &list(total, self.start_index, page))
    }
}

/// A ListResponse body.
pub fn list(total: usize, start_index: usize, resources: Vec<Value>) -> Value {
    json!({
        "schemas": [LIST_URN],
        "totalResults": total,
        "startIndex": start_index,
        "itemsPerPage": resources.len(),
        "Resources": resources,
    })
}
