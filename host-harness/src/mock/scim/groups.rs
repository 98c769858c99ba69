//! `/Groups`: the Group resource on the wire, its validation, and its endpoints.

use axum::body::Bytes;
use axum::extract::{Path, RawQuery, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::{Map, Value, json};

use super::super::model::{Group, MockService, Workspace};
use super::filter::field;
use super::identity::{self, GroupFields};
use super::patch;
use super::query::{ListParams, Projection, params};
use super::response::{ScimError, created, scim_json};
use super::schema::{GROUP_URN, Resource};
use super::users::optional_string;
use super::{json_body, read, require_schema, write};

/// The Group resource as the service renders it.
pub fn render(ws: &Workspace, group: &Group, base: &str) -> Value {
    let members: Vec<Value> = group
        .members
        .iter()
        .map(|id| {
            let display = ws.scim_users.iter().find(|u| &u.id == id).map(|u| u.user_name.clone());
            json!({
                "value": id,
                "display": display,
                "$ref": format!("{base}/Users/{id}"),
                "type": "User",
            })
        })
        .collect();
    let mut out = Map::new();
    out.insert("schemas".into(), json!([GROUP_URN]));
    out.insert("id".into(), json!(group.id));
    out.insert("displayName".into(), json!(group.display_name));
    if let Some(external_id) = &group.external_id {
        out.insert("externalId".into(), json!(external_id));
    }
    out.insert("members".into(), Value::Array(members));
    out.insert(
        "meta".into(),
        json!({
            "resourceType": "Group",
            "created": group.created,
            "lastModified": group.last_modified,
            "location": format!("{base}/Groups/{}", group.id),
        }),
    );
    Value::Object(out)
}

/// The writable attributes of `group`, as a PATCH works on them.
fn writable(group: &Group) -> Map<String, Value> {
    let mut doc = Map::new();
    doc.insert("displayName".into(), json!(group.display_name));
    if let Some(external_id) = &group.external_id {
        doc.insert("externalId".into(), json!(external_id));
    }
    let members: Vec<Value> = group.members.iter().map(|id| json!({"value": id})).collect();
    doc.insert("members".into(), Value::Array(members));
    doc
}

/// Validates a Group body (POST, PUT, or the document a PATCH produced).
pub fn fields(doc: &Value, check_schemas: bool) -> Result<GroupFields, ScimError> {
    if !doc.is_object() {
        return Err(ScimError::bad("invalidSyntax", "The body must be a Group object"));
    }
    if check_schemas {
        require_schema(doc, GROUP_URN)?;
    }
    let display_name = optional_string(doc, "displayName")?
        .map(|name| name.trim().to_string())
        .filter(|name| !name.is_empty())
        .ok_or_else(|| ScimError::bad("invalidValue", "displayName is required"))?;
    let members = match field(doc, "members") {
        None | Some(Value::Null) => Vec::new(),
        Some(Value::Array(list)) => list
            .iter()
            .map(|item| {
                if !item.is_object() {
                    return Err(ScimError::bad("invalidSyntax", "each member must be an object"));
                }
                optional_string(item, "value")?
                    .ok_or_else(|| ScimError::bad("invalidValue", "each member needs a value"))
            })
            .collect::<Result<_, _>>()?,
        Some(_) => return Err(ScimError::bad("invalidSyntax", "members must be an array")),
    };
    Ok(GroupFields { display_name, external_id: optional_string(doc, "externalId")?, members })
}

fn find<'a>(ws: &'a Workspace, id: &str) -> Result<&'a Group, ScimError> {
    ws.groups.iter().find(|g| g.id == id).ok_or_else(|| ScimError::not_found("Group", id))
}

/// `GET /Groups`.
pub async fn list(
    State(service): State<MockService>,
    Path(directory): Path<String>,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
) -> Response {
    read(&service, &headers, &directory, |ws, base| {
        let list = ListParams::parse(&params(query.as_deref()), Resource::Group)?;
        Ok(list.answer(ws.groups.iter().map(|g| render(ws, g, base))))
    })
}

/// `GET /Groups/{id}`.
pub async fn get_one(
    State(service): State<MockService>,
    Path((directory, id)): Path<(String, String)>,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
) -> Response {
    read(&service, &headers, &directory, |ws, base| {
        let projection = Projection::parse(&params(query.as_deref()), Resource::Group);
        let group = find(ws, &id)?;
        Ok(scim_json(StatusCode::OK, &projection.apply(render(ws, group, base))))
    })
}

/// `POST /Groups`.
pub async fn create(
    State(service): State<MockService>,
    Path(directory): Path<String>,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    write(&service, &headers, &directory, &body, |ws, sequence, base| {
        let fields = fields(&json_body(&body)?, true)?;
        let group = identity::create_group(ws, sequence, fields)?;
        let projection = Projection::parse(&params(query.as_deref()), Resource::Group);
        Ok(created(&projection.apply(render(ws, &group, base))))
    })
}

/// `PUT /Groups/{id}`.
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
        let group = identity::replace_group(ws, sequence, &id, fields)?;
        let projection = Projection::parse(&params(query.as_deref()), Resource::Group);
        Ok(scim_json(StatusCode::OK, &projection.apply(render(ws, &group, base))))
    })
}

/// `PATCH /Groups/{id}`.
pub async fn patch(
    State(service): State<MockService>,
    Path((directory, id)): Path<(String, String)>,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    write(&service, &headers, &directory, &body, |ws, sequence, base| {
        let mut doc = writable(find(ws, &id)?);
        let ops = patch::parse_request(Resource::Group, &json_body(&body)?)?;
        patch::apply(Resource::Group, &mut doc, &ops, &id)?;
        let fields = fields(&Value::Object(doc), false)?;
        let group = identity::replace_group(ws, sequence, &id, fields)?;
        let projection = Projection::parse(&params(query.as_deref()), Resource::Group);
        Ok(scim_json(StatusCode::OK, &projection.apply(render(ws, &group, base))))
    })
}

/// `DELETE /Groups/{id}`.
pub async fn delete(
    State(service): State<MockService>,
    Path((directory, id)): Path<(String, String)>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    write(&service, &headers, &directory, &body, |ws, _, _| {
        identity::delete_group(ws, &id)?;
        Ok(StatusCode::NO_CONTENT.into_response())
    })
}
