//! `/Users`: the User resource on the wire, its validation, and its endpoints.

use axum::body::Bytes;
use axum::extract::{Path, RawQuery, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::{Map, Value, json};

use super::super::model::{MockService, ScimEmail, ScimUser, Workspace};
use super::filter::field;
use super::identity::{self, UserFields, formatted_name};
use super::patch;
use super::query::{ListParams, Projection, params};
use super::response::{ScimError, created, scim_json};
use super::schema::{Resource, USER_URN};
use super::{json_body, read, require_schema, write};

/// The User resource as the service renders it.
pub fn render(ws: &Workspace, user: &ScimUser, base: &str) -> Value {
    let mut out = Map::new();
    out.insert("schemas".into(), json!([USER_URN]));
    out.insert("id".into(), json!(user.id));
    out.insert("userName".into(), json!(user.user_name));
    if let Some(external_id) = &user.external_id {
        out.insert("externalId".into(), json!(external_id));
    }
    if user.given_name.is_some() || user.family_name.is_some() {
        let mut name = Map::new();
        if let Some(formatted) =
            formatted_name(user.given_name.as_deref(), user.family_name.as_deref())
        {
            name.insert("formatted".into(), json!(formatted));
        }
        if let Some(family) = &user.family_name {
            name.insert("familyName".into(), json!(family));
        }
        if let Some(given) = &user.given_name {
            name.insert("givenName".into(), json!(given));
        }
        out.insert("name".into(), Value::Object(name));
    }
    if let Some(display_name) = &user.display_name {
        out.insert("displayName".into(), json!(display_name));
    }
    out.insert("emails".into(), Value::Array(user.emails.iter().map(email_json).collect()));
    out.insert("active".into(), json!(user.active));
    let groups: Vec<Value> = ws
        .groups
        .iter()
        .filter(|g| g.members.contains(&user.id))
        .map(|g| {
            json!({
                "value": g.id,
                "$ref": format!("{base}/Groups/{}", g.id),
                "display": g.display_name,
                "type": "direct",
            })
        })
        .collect();
    out.insert("groups".into(), Value::Array(groups));
    out.insert(
        "meta".into(),
        json!({
            "resourceType": "User",
            "created": user.created,
            "lastModified": user.last_modified,
            "location": format!("{base}/Users/{}", user.id),
        }),
    );
    Value::Object(out)
}

fn email_json(email: &ScimEmail) -> Value {
    let mut out = Map::new();
    out.insert("value".into(), json!(email.value));
    if let Some(kind) = &email.kind {
        out.insert("type".into(), json!(kind));
    }
    out.insert("primary".into(), json!(email.primary));
    Value::Object(out)
}

/// The writable attributes of `user`, as a PATCH works on them.
fn writable(user: &ScimUser) -> Map<String, Value> {
    let mut doc = Map::new();
    doc.insert("userName".into(), json!(user.user_name));
    if let Some(external_id) = &user.external_id {
        doc.insert("externalId".into(), json!(external_id));
    }
    if let Some(display_name) = &user.display_name {
        doc.insert("displayName".into(), json!(display_name));
    }
    let mut name = Map::new();
    if let Some(given) = &user.given_name {
        name.insert("givenName".into(), json!(given));
    }
    if let Some(family) = &user.family_name {
        name.insert("familyName".into(), json!(family));
    }
    if !name.is_empty() {
        doc.insert("name".into(), Value::Object(name));
    }
    doc.insert("emails".into(), Value::Array(user.emails.iter().map(email_json).collect()));
    doc.insert("active".into(), json!(user.active));
    doc
}

/// An optional string attribute; any other JSON type is `invalidSyntax`.
pub fn optional_string(doc: &Value, name: &str) -> Result<Option<String>, ScimError> {
    match field(doc, name) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s.clone())),
        Some(other) => {
            Err(ScimError::bad("invalidSyntax", format!("{name} must be a string, not {other}")))
        }
    }
}

/// Whether `text` looks like an email address.
pub fn email_shaped(text: &str) -> bool {
    !text.contains(char::is_whitespace)
        && text.split_once('@').is_some_and(|(local, domain)| {
            !local.is_empty()
                && domain.contains('.')
                && !domain.contains('@')
                && !domain.ends_with('.')
        })
}

fn emails(doc: &Value) -> Result<Vec<ScimEmail>, ScimError> {
    let list = match field(doc, "emails") {
        None | Some(Value::Null) => return Ok(Vec::new()),
        Some(Value::Array(list)) => list,
        Some(_) => return Err(ScimError::bad("invalidSyntax", "emails must be an array")),
    };
    let mut out = Vec::new();
    for item in list {
        if !item.is_object() {
            return Err(ScimError::bad("invalidSyntax", "each email must be an object"));
        }
        let value = optional_string(item, "value")?
            .ok_or_else(|| ScimError::bad("invalidValue", "each email needs a value"))?;
        if !email_shaped(&value) {
            return Err(ScimError::bad(
                "invalidValue",
                format!("{value:?} is not an email address"),
            ));
        }
        let primary = match field(item, "primary") {
            None | Some(Value::Null) => false,
            Some(Value::Bool(b)) => *b,
            Some(_) => {
                return Err(ScimError::bad(
                    "invalidSyntax",
                    "emails.primary must be a JSON boolean",
                ));
            }
        };
        out.push(ScimEmail { value, kind: optional_string(item, "type")?, primary });
    }
    if out.iter().filter(|e| e.primary).count() > 1 {
        return Err(ScimError::bad("invalidValue", "at most one email may be primary"));
    }
    Ok(out)
}

/// Validates a User body (POST, PUT, or the document a PATCH produced). Unknown attributes and
/// readOnly ones (`id`, `meta`, `groups`) are ignored.
pub fn fields(doc: &Value, check_schemas: bool) -> Result<UserFields, ScimError> {
    if !doc.is_object() {
        return Err(ScimError::bad("invalidSyntax", "The body must be a User object"));
    }
    if check_schemas {
        require_schema(doc, USER_URN)?;
    }
    let user_name = match field(doc, "userName") {
        None | Some(Value::Null) => {
            return Err(ScimError::bad("invalidValue", "userName is required"));
        }
        Some(Value::String(s)) if s.trim().is_empty() => {
            return Err(ScimError::bad("invalidValue", "userName is required"));
        }
        Some(Value::String(s)) => s.trim().to_lowercase(),
        Some(other) => {
            return Err(ScimError::bad(
                "invalidSyntax",
                format!("userName must be a string, not {other}"),
            ));
        }
    };
    let active = match field(doc, "active") {
        None | Some(Value::Null) => None,
        Some(Value::Bool(b)) => Some(*b),
        Some(other) => {
            return Err(ScimError::bad(
                "invalidSyntax",
                format!("active must be a JSON boolean, not {other}"),
            ));
        }
    };
    let (given_name, family_name) = match field(doc, "name") {
        None | Some(Value::Null) => (None, None),
        Some(name @ Value::Object(_)) => {
            (optional_string(name, "givenName")?, optional_string(name, "familyName")?)
        }
        Some(_) => return Err(ScimError::bad("invalidSyntax", "name must be an object")),
    };
    let mut emails = emails(doc)?;
    if emails.is_empty() {
        if !email_shaped(&user_name) {
            return Err(ScimError::bad(
                "invalidValue",
                "at least one email is required (userName is not an email address)",
            ));
        }
        emails.push(ScimEmail {
            value: user_name.clone(),
            kind: Some("work".into()),
            primary: true,
        });
    }
    Ok(UserFields {
        user_name,
        external_id: optional_string(doc, "externalId")?,
        display_name: optional_string(doc, "displayName")?,
        given_name,
        family_name,
        emails,
        active,
    })
}

fn find<'a>(ws: &'a Workspace, id: &str) -> Result<&'a ScimUser, ScimError> {
    ws.scim_users.iter().find(|u| u.id == id).ok_or_else(|| ScimError::not_found("User", id))
}

/// `GET /Users`.
pub async fn list(
    State(service): State<MockService>,
    Path(directory): Path<String>,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
) -> Response {
    read(&service, &headers, &directory, |ws, base| {
        let list = ListParams::parse(&params(query.as_deref()), Resource::User)?;
        Ok(list.answer(ws.scim_users.iter().map(|u| render(ws, u, base))))
    })
}

/// `GET /Users/{id}`.
pub async fn get_one(
    State(service): State<MockService>,
    Path((directory, id)): Path<(String, String)>,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
) -> Response {
    read(&service, &headers, &directory, |ws, base| {
        let projection = Projection::parse(&params(query.as_deref()), Resource::User);
        let user = find(ws, &id)?;
        Ok(scim_json(StatusCode::OK, &projection.apply(render(ws, user, base))))
    })
}

/// `POST /Users`.
pub async fn create(
    State(service): State<MockService>,
    Path(directory): Path<String>,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    write(&service, &headers, &directory, &body, |ws, sequence, base| {
        let fields = fields(&json_body(&body)?, true)?;
        let user = identity::create_user(ws, sequence, fields)?;
        let projection = Projection::parse(&params(query.as_deref()), Resource::User);
        Ok(created(&projection.apply(render(ws, &user, base))))
    })
}

/// `PUT /Users/{id}`.
pub async fn replace(
    State(service): State<MockService>,
    Path((directory, id)): Path<(String, String)>,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    write(&service, &headers, &directory, &body, |ws, sequence, base| {
        find(ws, &id)?;
        let fields = fields(&json_body(&body)?, true)?;
        let user = identity::replace_user(ws, sequence, &id, fields)?;
        let projection = Projection::parse(&params(query.as_deref()), Resource::User);
        Ok(scim_json(StatusCode::OK, &projection.apply(render(ws, &user, base))))
    })
}

/// `PATCH /Users/{id}`.
pub async fn patch(
    State(service): State<MockService>,
    Path((directory, id)): Path<(String, String)>,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    write(&service, &headers, &directory, &body, |ws, sequence, base| {
        let mut doc = writable(find(ws, &id)?);
        let ops = patch::parse_request(Resource::User, &json_body(&body)?)?;
        patch::apply(Resource::User, &mut doc, &ops, &id)?;
        let fields = fields(&Value::Object(doc), false)?;
        let user = identity::replace_user(ws, sequence, &id, fields)?;
        let projection = Projection::parse(&params(query.as_deref()), Resource::User);
        Ok(scim_json(StatusCode::OK, &projection.apply(render(ws, &user, base))))
    })
}

/// `DELETE /Users/{id}`.
pub async fn delete(
    State(service): State<MockService>,
    Path((directory, id)): Path<(String, String)>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    write(&service, &headers, &directory, &body, |ws, sequence, _| {
        identity::delete_user(ws, sequence, &id)?;
        Ok(StatusCode::NO_CONTENT.into_response())
    })
}
