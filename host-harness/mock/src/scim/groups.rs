//! `/Groups`: the Group resource on the wire, its validation, and how it is changed.

use serde_json::{Map, Value, json};

use super::super::model::{Group, Workspace};
use super::filter::field;
use super::identity::{self, GroupFields};
use super::require_schema;
use super::resource::ScimResource;
use super::response::ScimError;
use super::schema::{GROUP_URN, Resource};
use super::users::optional_string;

/// `/Groups`.
pub struct GroupResource;

impl ScimResource for GroupResource {
    const KIND: Resource = Resource::Group;
    type Item = Group;
    type Fields = GroupFields;

    fn items(ws: &Workspace) -> &[Group] {
        &ws.groups
    }

    fn id(group: &Group) -> &str {
        &group.id
    }

    /// The Group resource as the service renders it.
    fn render(ws: &Workspace, group: &Group, base: &str) -> Value {
        let members: Vec<Value> = group
            .members
            .iter()
            .map(|id| {
                let display =
                    ws.scim_users.iter().find(|u| &u.id == id).map(|u| u.user_name.clone());
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
    fn fields(doc: &Value, check_schemas: bool) -> Result<GroupFields, ScimError> {
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
                        return Err(ScimError::bad(
                            "invalidSyntax",
                            "each member must be an object",
                        ));
                    }
                    optional_string(item, "value")?
                        .ok_or_else(|| ScimError::bad("invalidValue", "each member needs a value"))
                })
                .collect::<Result<_, _>>()?,
            Some(_) => return Err(ScimError::bad("invalidSyntax", "members must be an array")),
        };
        Ok(GroupFields { display_name, external_id: optional_string(doc, "externalId")?, members })
    }

    fn create(
        ws: &mut Workspace,
        sequence: &mut u64,
        fields: GroupFields,
    ) -> Result<Group, ScimError> {
        identity::create_group(ws, sequence, fields)
    }

    fn replace(
        ws: &mut Workspace,
        sequence: &mut u64,
        id: &str,
        fields: GroupFields,
    ) -> Result<Group, ScimError> {
        identity::replace_group(ws, sequence, id, fields)
    }

    fn delete(ws: &mut Workspace, _: &mut u64, id: &str) -> Result<(), ScimError> {
        identity::delete_group(ws, id)
    }
}
