//! `/Users`: the User resource on the wire, its validation, and how it is changed.

use serde_json::{Map, Value, json};

use super::super::model::{ScimEmail, ScimUser, Workspace};
use super::filter::field;
use super::identity::{self, UserFields, formatted_name};
use super::require_schema;
use super::resource::ScimResource;
use super::response::ScimError;
use super::schema::{Resource, USER_URN};

/// `/Users`.
pub struct UserResource;

impl ScimResource for UserResource {
    const KIND: Resource = Resource::User;
    type Item = ScimUser;
    type Fields = UserFields;

    fn items(ws: &Workspace) -> &[ScimUser] {
        &ws.scim_users
    }

    fn id(user: &ScimUser) -> &str {
        &user.id
    }

    /// The User resource as the service renders it.
    fn render(ws: &Workspace, user: &ScimUser, base: &str) -> Value {
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

    /// Validates a User body (POST, PUT, or the document a PATCH produced). Unknown attributes and
    /// readOnly ones (`id`, `meta`, `groups`) are ignored.
    fn fields(doc: &Value, check_schemas: bool) -> Result<UserFields, ScimError> {
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

    fn create(
        ws: &mut Workspace,
        sequence: &mut u64,
        fields: UserFields,
    ) -> Result<ScimUser, ScimError> {
        identity::create_user(ws, sequence, fields)
    }

    fn replace(
        ws: &mut Workspace,
        sequence: &mut u64,
        id: &str,
        fields: UserFields,
    ) -> Result<ScimUser, ScimError> {
        identity::replace_user(ws, sequence, id, fields)
    }

    fn delete(ws: &mut Workspace, sequence: &mut u64, id: &str) -> Result<(), ScimError> {
        identity::delete_user(ws, sequence, id)
    }
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
