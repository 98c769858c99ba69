//! PATCH (RFC 7644 §3.5.2): `PatchOp` requests applied to a resource's writable JSON document.
//!
//! The operations run on a copy of the document; the caller validates the result exactly as it
//! validates a PUT body, so a PATCH fails as a whole or applies as a whole (§3.5.2: "each
//! operation ... if any fails, the whole PATCH fails").

use serde_json::{Map, Value};

use super::filter::{self, Filter, field};
use super::response::ScimError;
use super::schema::{Attr, Kind, Resource};

/// URN of PATCH bodies.
pub const PATCH_URN: &str = "urn:ietf:params:scim:api:messages:2.0:PatchOp";

/// What an operation does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OpKind {
    /// `add`
    Add,
    /// `remove`
    Remove,
    /// `replace`
    Replace,
}

/// A parsed `path`: `attr`, `attr.sub`, `attr[filter]` or `attr[filter].sub`.
#[derive(Debug, Clone)]
pub struct PatchPath {
    /// The attribute.
    pub attr: &'static Attr,
    /// The value filter, for multi-valued attributes.
    pub filter: Option<Filter>,
    /// The sub-attribute.
    pub sub: Option<&'static Attr>,
}

/// One operation.
#[derive(Debug, Clone)]
pub struct Operation {
    /// `add`, `remove` or `replace`.
    pub op: OpKind,
    /// The target, if any.
    pub path: Option<PatchPath>,
    /// The value, if any.
    pub value: Option<Value>,
}

/// Parses a `path` of `resource`.
pub fn parse_path(resource: Resource, text: &str) -> Result<PatchPath, String> {
    let text = resource.strip_urn(text.trim());
    let unknown = || format!("unknown attribute path {text:?}");
    if let Some(open) = text.find('[') {
        let close = text.rfind(']').filter(|&c| c > open).ok_or("unclosed value filter")?;
        let attr = resource.find(&text[..open]).ok_or_else(unknown)?;
        if attr.kind != Kind::Complex || !attr.multi_valued {
            return Err(format!("{} is not multi-valued: no value filter", attr.name));
        }
        let filter = filter::parse_scoped(&text[open + 1..close], resource, attr)?;
        let sub = match &text[close + 1..] {
            "" => None,
            rest => {
                let name = rest.strip_prefix('.').ok_or_else(unknown)?;
                Some(attr.sub(name).ok_or_else(unknown)?)
            }
        };
        return Ok(PatchPath { attr, filter: Some(filter), sub });
    }
    let (name, sub) = match text.split_once('.') {
        Some((name, sub)) => (name, Some(sub)),
        None => (text, None),
    };
    let attr = resource.find(name).ok_or_else(unknown)?;
    let sub = match sub {
        Some(sub) => Some(attr.sub(sub).ok_or_else(unknown)?),
        None => None,
    };
    Ok(PatchPath { attr, filter: None, sub })
}

/// Parses a `PatchOp` body.
pub fn parse_request(resource: Resource, body: &Value) -> Result<Vec<Operation>, ScimError> {
    let syntax = |detail: &str| ScimError::bad("invalidSyntax", detail);
    if !body.is_object() {
        return Err(syntax("The body must be a PatchOp object"));
    }
    let has_urn = field(body, "schemas").and_then(Value::as_array).is_some_and(|s| {
        s.iter().any(|u| u.as_str().is_some_and(|u| u.eq_ignore_ascii_case(PATCH_URN)))
    });
    if !has_urn {
        return Err(syntax(&format!("schemas must contain {PATCH_URN}")));
    }
    let operations = match field(body, "Operations") {
        Some(Value::Array(ops)) if !ops.is_empty() => ops,
        _ => return Err(syntax("Operations must be a non-empty array")),
    };
    operations
        .iter()
        .map(|raw| {
            let op = match field(raw, "op").and_then(Value::as_str).map(str::to_ascii_lowercase) {
                Some(op) if op == "add" => OpKind::Add,
                Some(op) if op == "remove" => OpKind::Remove,
                Some(op) if op == "replace" => OpKind::Replace,
                _ => return Err(syntax("op must be add, remove or replace")),
            };
            let path = match field(raw, "path") {
                None | Some(Value::Null) => None,
                Some(Value::String(p)) => {
                    Some(parse_path(resource, p).map_err(|e| ScimError::bad("invalidPath", e))?)
                }
                Some(_) => return Err(ScimError::bad("invalidPath", "path must be a string")),
            };
            let value = field(raw, "value").cloned();
            if op != OpKind::Remove && value.is_none() {
                return Err(ScimError::bad("invalidValue", "add and replace need a value"));
            }
            Ok(Operation { op, path, value })
        })
        .collect()
}

/// Applies `ops` to `doc`, the writable attributes of the resource whose id is `id`.
pub fn apply(
    resource: Resource,
    doc: &mut Map<String, Value>,
    ops: &[Operation],
    id: &str,
) -> Result<(), ScimError> {
    for operation in ops {
        match (&operation.path, &operation.value) {
            (Some(path), value) => at_path(doc, operation.op, path, value.as_ref())?,
            (None, _) if operation.op == OpKind::Remove => {
                return Err(ScimError::bad("noTarget", "remove needs a path"));
            }
            (None, Some(Value::Object(values))) => {
                for (key, value) in values {
                    without_path(resource, doc, operation.op, key, value, id)?;
                }
            }
            (None, _) => {
                return Err(ScimError::bad(
                    "invalidValue",
                    "without a path, value must be an object",
                ));
            }
        }
    }
    Ok(())
}

/// One member of a path-less value: its key is a path (Entra sends `"name.givenName"` keys).
fn without_path(
    resource: Resource,
    doc: &mut Map<String, Value>,
    op: OpKind,
    key: &str,
    value: &Value,
    id: &str,
) -> Result<(), ScimError> {
    if key.eq_ignore_ascii_case(resource.urn())
        && let Value::Object(inner) = value
    {
        for (key, value) in inner {
            without_path(resource, doc, op, key, value, id)?;
        }
        return Ok(());
    }
    // Unknown attributes are ignored, as in a POST body.
    let Ok(path) = parse_path(resource, key) else { return Ok(()) };
    if path.attr.name == "id" {
        return match value.as_str() {
            Some(same) if same == id => Ok(()),
            _ => Err(ScimError::bad("mutability", "id is readOnly")),
        };
    }
    // readOnly attributes in a value object are ignored, as in a PUT body (RFC 7643 §2.2).
    if path.attr.is_read_only() || path.sub.is_some_and(Attr::is_read_only) {
        return Ok(());
    }
    at_path(doc, op, &path, Some(value))
}

fn at_path(
    doc: &mut Map<String, Value>,
    op: OpKind,
    path: &PatchPath,
    value: Option<&Value>,
) -> Result<(), ScimError> {
    let attr = path.attr;
    if attr.is_read_only() || path.sub.is_some_and(Attr::is_read_only) {
        return Err(ScimError::bad("mutability", format!("{} is readOnly", display(path))));
    }
    match (&path.filter, path.sub) {
        (None, None) => whole(doc, op, attr, value),
        (None, Some(sub)) => sub_everywhere(doc, op, attr, sub, value),
        (Some(filter), sub) => filtered(doc, op, attr, filter, sub, value),
    }
}

fn display(path: &PatchPath) -> String {
    match path.sub {
        Some(sub) => format!("{}.{}", path.attr.name, sub.name),
        None => path.attr.name.to_string(),
    }
}

/// The whole attribute.
fn whole(
    doc: &mut Map<String, Value>,
    op: OpKind,
    attr: &'static Attr,
    value: Option<&Value>,
) -> Result<(), ScimError> {
    let value = match (op, value) {
        (OpKind::Remove, _) => return remove_whole(doc, attr, value),
        (_, Some(value)) => value,
        (_, None) => return Err(ScimError::bad("invalidValue", "add and replace need a value")),
    };
    if attr.multi_valued {
        let items = checked_values(attr, value)?;
        let list = doc.entry(attr.name).or_insert_with(|| Value::Array(Vec::new()));
        if op == OpKind::Replace || !list.is_array() {
            *list = Value::Array(Vec::new());
        }
        if let Value::Array(list) = list {
            for item in items {
                merge_item(list, item, attr);
            }
        }
    } else if attr.kind == Kind::Complex && value.is_object() {
        // A complex value replaces the sub-attributes it names and leaves the others
        // (RFC 7644 §3.5.2.3).
        let given = checked(attr, value)?;
        let target = doc.entry(attr.name).or_insert_with(|| Value::Object(Map::new()));
        if !target.is_object() {
            *target = Value::Object(Map::new());
        }
        merge_object(target, &given);
    } else {
        doc.insert(attr.name.to_string(), checked(attr, value)?);
    }
    Ok(())
}

/// `remove` of a whole attribute: with a value list (as Entra sends for members) only those
/// values go; without one, every value (RFC 7644 §3.5.2.2).
fn remove_whole(
    doc: &mut Map<String, Value>,
    attr: &'static Attr,
    value: Option<&Value>,
) -> Result<(), ScimError> {
    // `active` decides whether the person is in the workspace; the service never leaves it
    // unassigned (as RFC 7644 §3.5.2.2 would), so its removal is refused, as `userName`'s is,
    // rather than answered 200 with nothing changed.
    if attr.name == "active" {
        return Err(ScimError::bad(
            "invalidValue",
            "`active` cannot be removed; replace it instead (false deactivates the user)",
        ));
    }
    match value {
        Some(value) if attr.multi_valued && !value.is_null() => {
            let gone: Vec<Option<String>> =
                checked_values(attr, value)?.iter().map(|v| value_key(attr, v)).collect();
            if let Some(Value::Array(items)) = doc.get_mut(attr.name) {
                items.retain(|item| !gone.contains(&value_key(attr, item)));
            }
        }
        _ => {
            doc.remove(attr.name);
        }
    }
    Ok(())
}

/// The `value` of one value of a multi-valued attribute, folded as its case-exactness says.
fn value_key(attr: &'static Attr, item: &Value) -> Option<String> {
    let case_exact = attr.sub("value").is_some_and(|v| v.case_exact);
    field(item, "value")
        .and_then(Value::as_str)
        .map(|s| if case_exact { s.to_string() } else { s.to_lowercase() })
}

/// `attr.sub` without a filter: on the single complex value, or on every value.
fn sub_everywhere(
    doc: &mut Map<String, Value>,
    op: OpKind,
    attr: &'static Attr,
    sub: &'static Attr,
    value: Option<&Value>,
) -> Result<(), ScimError> {
    let value = match (op, value) {
        (OpKind::Remove, _) => None,
        (_, Some(value)) => Some(checked(sub, value)?),
        (_, None) => return Err(ScimError::bad("invalidValue", "add and replace need a value")),
    };
    if attr.multi_valued {
        if let Some(Value::Array(items)) = doc.get_mut(attr.name) {
            for item in items.iter_mut() {
                set_sub(item, sub, value.clone());
            }
        }
        return Ok(());
    }
    let target = doc.entry(attr.name).or_insert_with(|| Value::Object(Map::new()));
    if !target.is_object() {
        *target = Value::Object(Map::new());
    }
    set_sub(target, sub, value);
    Ok(())
}

fn set_sub(item: &mut Value, sub: &Attr, value: Option<Value>) {
    if let Value::Object(map) = item {
        match value {
            Some(value) => {
                map.insert(sub.name.to_string(), value);
            }
            None => {
                map.remove(sub.name);
            }
        }
    }
}

/// `attr[filter]` and `attr[filter].sub`.
fn filtered(
    doc: &mut Map<String, Value>,
    op: OpKind,
    attr: &'static Attr,
    filter: &Filter,
    sub: Option<&'static Attr>,
    value: Option<&Value>,
) -> Result<(), ScimError> {
    let value = match (op, value, sub) {
        (OpKind::Remove, _, _) => None,
        (_, Some(value), Some(sub)) => Some(checked(sub, value)?),
        (_, Some(value), None) => Some(checked_item(attr, value)?),
        (_, None, _) => return Err(ScimError::bad("invalidValue", "add and replace need a value")),
    };
    if op == OpKind::Replace
        && let Some(sub) = sub
        && sub.mutability == "immutable"
    {
        return Err(ScimError::bad(
            "mutability",
            format!("{}.{} is immutable", attr.name, sub.name),
        ));
    }
    let list = doc.entry(attr.name).or_insert_with(|| Value::Array(Vec::new()));
    if !list.is_array() {
        *list = Value::Array(Vec::new());
    }
    let Value::Array(items) = list else { return Ok(()) };
    let matched: Vec<usize> =
        items.iter().enumerate().filter(|(_, item)| filter.matches(item)).map(|(i, _)| i).collect();
    let Some(value) = value else {
        // Removing what is not there is a no-op: IdPs retry removals.
        match sub {
            Some(sub) => matched.iter().for_each(|&i| set_sub(&mut items[i], sub, None)),
            None => {
                let mut index = 0;
                items.retain(|_| {
                    index += 1;
                    !matched.contains(&(index - 1))
                });
            }
        }
        return Ok(());
    };
    if matched.is_empty() {
        // `add` to `emails[type eq "work"].value` creates the work address (what Entra sends
        // for a user without one); `replace` must find a target (RFC 7644 §3.5.2.3).
        return match (op, filter.equality()) {
            (OpKind::Add, Some((name, literal))) => {
                let mut item = Map::new();
                item.insert(name.to_string(), literal.clone());
                let mut item = Value::Object(item);
                match sub {
                    Some(sub) => set_sub(&mut item, sub, Some(value)),
                    None => merge_object(&mut item, &value),
                }
                merge_item(items, item, attr);
                Ok(())
            }
            _ => Err(ScimError::bad("noTarget", "the value filter matches no value")),
        };
    }
    for &i in &matched {
        match sub {
            Some(sub) => set_sub(&mut items[i], sub, Some(value.clone())),
            None => merge_object(&mut items[i], &value),
        }
    }
    if value_is_primary(sub, &value) {
        for (i, item) in items.iter_mut().enumerate() {
            if !matched.contains(&i) {
                set_sub(item, primary_attr(attr), Some(Value::Bool(false)));
            }
        }
    }
    Ok(())
}

fn merge_object(target: &mut Value, given: &Value) {
    if let (Value::Object(target), Value::Object(given)) = (target, given) {
        target.extend(given.clone());
    }
}

fn value_is_primary(sub: Option<&Attr>, value: &Value) -> bool {
    match sub {
        Some(sub) => sub.name == "primary" && value == &Value::Bool(true),
        None => field(value, "primary") == Some(&Value::Bool(true)),
    }
}

fn primary_attr(attr: &'static Attr) -> &'static Attr {
    attr.sub("primary").unwrap_or(attr)
}

/// Adds `item` to `list`: a value already there (same `value`) is updated, not repeated; a new
/// primary value takes primary from the others (RFC 7643 §2.4).
fn merge_item(list: &mut Vec<Value>, item: Value, attr: &'static Attr) {
    if field(&item, "primary") == Some(&Value::Bool(true)) && attr.sub("primary").is_some() {
        for other in list.iter_mut() {
            set_sub(other, primary_attr(attr), Some(Value::Bool(false)));
        }
    }
    let key = value_key(attr, &item);
    match key.and_then(|k| list.iter().position(|v| value_key(attr, v).as_deref() == Some(&k))) {
        Some(i) => merge_object(&mut list[i], &item),
        None => list.push(item),
    }
}

/// The values of a multi-valued attribute: an array, or one value standing for itself.
fn checked_values(attr: &'static Attr, value: &Value) -> Result<Vec<Value>, ScimError> {
    match value {
        Value::Array(items) => items.iter().map(|item| checked_item(attr, item)).collect(),
        item => Ok(vec![checked_item(attr, item)?]),
    }
}

/// One value of a multi-valued complex attribute: an object of known, writable sub-attributes.
fn checked_item(attr: &'static Attr, value: &Value) -> Result<Value, ScimError> {
    let Value::Object(given) = value else {
        return Err(ScimError::bad("invalidValue", format!("values of {} are objects", attr.name)));
    };
    let mut out = Map::new();
    for (key, v) in given {
        if let Some(sub) = attr.sub(key)
            && !sub.is_read_only()
        {
            out.insert(sub.name.to_string(), checked(sub, v)?);
        }
    }
    Ok(Value::Object(out))
}

/// A value for `attr`, type-checked (RFC 7644 §3.5.2: a value of the wrong type is
/// `invalidValue`); `null` unassigns.
fn checked(attr: &'static Attr, value: &Value) -> Result<Value, ScimError> {
    let wrong = || {
        ScimError::bad(
            "invalidValue",
            format!("{} must be {}, not {value}", attr.name, kind_name(attr.kind)),
        )
    };
    match (attr.kind, value) {
        (_, Value::Null) => Ok(Value::Null),
        (Kind::Boolean, Value::Bool(_)) => Ok(value.clone()),
        (Kind::String | Kind::Reference | Kind::DateTime, Value::String(_)) => Ok(value.clone()),
        (Kind::Complex, Value::Object(_)) => checked_item(attr, value),
        _ => Err(wrong()),
    }
}

fn kind_name(kind: Kind) -> &'static str {
    match kind {
        Kind::Boolean => "a JSON boolean",
        Kind::Complex => "an object",
        _ => "a string",
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use serde_json::json;

    use super::*;

    fn ops(resource: Resource, operations: Value) -> Result<Vec<Operation>, ScimError> {
        parse_request(resource, &json!({"schemas": [PATCH_URN], "Operations": operations}))
    }

    fn run(resource: Resource, doc: Value, operations: Value) -> Result<Value, ScimError> {
        let Value::Object(mut doc) = doc else { panic!("doc") };
        apply(resource, &mut doc, &ops(resource, operations)?, "user-1")?;
        Ok(Value::Object(doc))
    }

    #[test]
    fn paths_parse_or_name_what_is_wrong() {
        let p = parse_path(Resource::User, "name.givenName").unwrap();
        assert_eq!((p.attr.name, p.sub.map(|s| s.name)), ("name", Some("givenName")));
        let p = parse_path(Resource::User, "urn:ietf:params:scim:schemas:core:2.0:User:ACTIVE")
            .unwrap();
        assert_eq!(p.attr.name, "active");
        let p = parse_path(Resource::User, r#"emails[type eq "work"].value"#).unwrap();
        assert_eq!((p.attr.name, p.sub.map(|s| s.name)), ("emails", Some("value")));
        assert!(p.filter.unwrap().matches(&json!({"type": "WORK"})));
        let p = parse_path(Resource::Group, r#"members[value eq "a]b"]"#).unwrap();
        assert!(p.filter.unwrap().matches(&json!({"value": "a]b"})));
        for bad in [
            "",
            "nickName",
            "name.middleName",
            "emails[type eq \"work\"",
            "emails[type eq \"work\"]value",
            "active[value eq true]",
            "emails[nope eq \"x\"]",
            "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:department",
        ] {
            assert!(parse_path(Resource::User, bad).is_err(), "accepted {bad:?}");
        }
    }

    #[test]
    fn requests_are_checked() {
        let err = |body: Value| parse_request(Resource::User, &body).unwrap_err().scim_type;
        assert_eq!(err(json!({"Operations": [{"op": "add", "value": {}}]})), Some("invalidSyntax"));
        assert_eq!(err(json!({"schemas": [PATCH_URN], "Operations": []})), Some("invalidSyntax"));
        assert_eq!(
            err(json!({"schemas": [PATCH_URN], "Operations": [{"op": "move", "path": "active"}]})),
            Some("invalidSyntax")
        );
        assert_eq!(
            err(json!({
                "schemas": [PATCH_URN],
                "Operations": [{"op": "add", "path": "nick", "value": 1}]
            })),
            Some("invalidPath")
        );
        assert_eq!(
            err(
                json!({"schemas": [PATCH_URN], "Operations": [{"op": "Replace", "path": "active"}]})
            ),
            Some("invalidValue")
        );
        assert!(
            ops(Resource::User, json!([{"op": "Replace", "path": "active", "value": false}]))
                .is_ok()
        );
    }

    #[test]
    fn user_operations() {
        let doc = json!({"userName": "ann@acme.com", "active": true,
            "emails": [{"value": "ann@acme.com", "type": "work", "primary": true}]});
        let out = run(
            Resource::User,
            doc.clone(),
            json!([
                {"op": "replace", "path": "active", "value": false},
                {"op": "add", "path": "name.givenName", "value": "Ann"},
                {"op": "Replace", "value": {
                    "displayName": "Ann L", "name.familyName": "Lee",
                    "nickName": "x", "id": "user-1"
                }},
                {"op": "add", "path": "emails[type eq \"home\"].value",
                    "value": "ann@home.example"},
            ]),
        )
        .unwrap();
        assert_eq!(out["active"], json!(false));
        assert_eq!(out["name"], json!({"givenName": "Ann", "familyName": "Lee"}));
        assert_eq!(out["displayName"], json!("Ann L"));
        assert_eq!(out["emails"][1], json!({"type": "home", "value": "ann@home.example"}));
        assert!(out.get("nickName").is_none());

        let err = |operations: Value| run(Resource::User, doc.clone(), operations).unwrap_err();
        assert_eq!(
            err(json!([{"op": "replace", "path": "id", "value": "x"}])).scim_type,
            Some("mutability")
        );
        assert_eq!(
            err(json!([{"op": "replace", "value": {"id": "x"}}])).scim_type,
            Some("mutability")
        );
        assert_eq!(
            err(json!([{"op": "replace", "path": "groups", "value": []}])).scim_type,
            Some("mutability")
        );
        assert_eq!(
            err(json!([{"op": "replace", "path": "active", "value": "False"}])).scim_type,
            Some("invalidValue")
        );
        assert_eq!(err(json!([{"op": "remove"}])).scim_type, Some("noTarget"));
        let missing = r#"emails[type eq "home"].value"#;
        assert_eq!(
            err(json!([{"op": "replace", "path": missing, "value": "x@y.z"}])).scim_type,
            Some("noTarget")
        );
        // Removing by value filter removes the matching values only.
        let out = run(
            Resource::User,
            doc.clone(),
            json!([{"op": "remove", "path": "emails[type eq \"work\"]"}]),
        )
        .unwrap();
        assert_eq!(out["emails"], json!([]));
    }

    #[test]
    fn group_member_operations() {
        let doc = json!({"displayName": "Eng", "members": [{"value": "u1"}, {"value": "u2"}]});
        let out = run(
            Resource::Group,
            doc.clone(),
            json!([
                {"op": "ADD", "path": "members",
                    "value": [{"value": "u2"}, {"value": "u3", "display": "ignored"}]},
                {"op": "remove", "path": "members[value eq \"u1\"]"},
                {"op": "remove", "path": "members[value eq \"nobody\"]"},
            ]),
        )
        .unwrap();
        assert_eq!(out["members"], json!([{"value": "u2"}, {"value": "u3"}]));
        let out = run(Resource::Group, doc.clone(), json!([{"op": "remove", "path": "members"}]))
            .unwrap();
        assert!(out.get("members").is_none());
        let out = run(
            Resource::Group,
            doc.clone(),
            json!([{"op": "remove", "path": "members", "value": [{"value": "u2"}]}]),
        )
        .unwrap();
        assert_eq!(out["members"], json!([{"value": "u1"}]));
        let out = run(
            Resource::Group,
            doc.clone(),
            json!([{"op": "replace", "path": "members", "value": [{"value": "u9"}]}]),
        )
        .unwrap();
        assert_eq!(out["members"], json!([{"value": "u9"}]));
        let err =
            run(Resource::Group, doc, json!([{"op": "add", "path": "members", "value": ["u1"]}]));
        assert_eq!(err.unwrap_err().scim_type, Some("invalidValue"));
    }
}
