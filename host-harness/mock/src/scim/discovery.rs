//! Discovery (RFC 7644 §4): `/ServiceProviderConfig`, `/ResourceTypes`, `/Schemas`, telling
//! exactly what this surface implements: the schema table is the one the other parts use.

use axum::extract::{Path, RawQuery, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use serde_json::{Value, json};

use super::super::model::MockService;
use super::query::{list, params};
use super::response::{ScimError, scim_json};
use super::schema::Resource;
use super::{MAX_PAYLOAD_BYTES, MAX_RESULTS, read};

const SPC_URN: &str = "urn:ietf:params:scim:schemas:core:2.0:ServiceProviderConfig";
const RESOURCE_TYPE_URN: &str = "urn:ietf:params:scim:schemas:core:2.0:ResourceType";
const SCHEMA_URN: &str = "urn:ietf:params:scim:schemas:core:2.0:Schema";

/// RFC 7644 §4: a filter on these endpoints is refused with 403, so that clients do not assume
/// it was applied.
fn refuse_filter(query: Option<&str>) -> Result<(), ScimError> {
    if params(query).contains_key("filter") {
        return Err(ScimError::new(StatusCode::FORBIDDEN, "Filtering is not supported here"));
    }
    Ok(())
}

/// `GET /ServiceProviderConfig`.
pub async fn service_provider_config(
    State(service): State<MockService>,
    Path(directory): Path<String>,
    headers: HeaderMap,
) -> Response {
    read(&service, &headers, &directory, |_, base| {
        let body = json!({
            "schemas": [SPC_URN],
            "patch": {"supported": true},
            "bulk": {"supported": false, "maxOperations": 0, "maxPayloadSize": MAX_PAYLOAD_BYTES},
            "filter": {"supported": true, "maxResults": MAX_RESULTS},
            "changePassword": {"supported": false},
            "sort": {"supported": false},
            "etag": {"supported": false},
            "authenticationSchemes": [{
                "type": "oauthbearertoken",
                "name": "OAuth Bearer Token",
                "description": "The directory's static bearer token in the Authorization header",
                "specUri": "https://www.rfc-editor.org/rfc/rfc6750",
                "primary": true,
            }],
            "meta": {
                "resourceType": "ServiceProviderConfig",
                "location": format!("{base}/ServiceProviderConfig"),
            },
        });
        Ok(scim_json(StatusCode::OK, &body))
    })
}

fn resource_type(resource: Resource, base: &str) -> Value {
    json!({
        "schemas": [RESOURCE_TYPE_URN],
        "id": resource.name(),
        "name": resource.name(),
        "endpoint": resource.endpoint(),
        "description": match resource {
            Resource::User => "People of the workspace",
            Resource::Group => "Groups of the workspace's people",
        },
        "schema": resource.urn(),
        "schemaExtensions": [],
        "meta": {
            "resourceType": "ResourceType",
            "location": format!("{base}/ResourceTypes/{}", resource.name()),
        },
    })
}

fn schema(resource: Resource, base: &str) -> Value {
    let attributes: Vec<Value> = resource.attributes().iter().map(|a| a.to_json()).collect();
    json!({
        "schemas": [SCHEMA_URN],
        "id": resource.urn(),
        "name": resource.name(),
        "description": format!("{} account", resource.name()),
        "attributes": attributes,
        "meta": {
            "resourceType": "Schema",
            "location": format!("{base}/Schemas/{}", resource.urn()),
        },
    })
}

/// The list of every resource type's `describe` document; a filter is refused.
fn describe_all(
    query: Option<&str>,
    base: &str,
    describe: fn(Resource, &str) -> Value,
) -> Result<Response, ScimError> {
    refuse_filter(query)?;
    let all: Vec<Value> = Resource::ALL.iter().map(|r| describe(*r, base)).collect();
    Ok(scim_json(StatusCode::OK, &list(all.len(), 1, all)))
}

/// The resource type whose `key` is `wanted`, else a 404 naming `kind`.
fn find(
    key: fn(Resource) -> &'static str,
    wanted: &str,
    kind: &str,
) -> Result<Resource, ScimError> {
    Resource::ALL
        .into_iter()
        .find(|r| key(*r) == wanted)
        .ok_or_else(|| ScimError::not_found(kind, wanted))
}

/// `GET /ResourceTypes`.
pub async fn resource_types(
    State(service): State<MockService>,
    Path(directory): Path<String>,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
) -> Response {
    read(&service, &headers, &directory, |_, base| {
        describe_all(query.as_deref(), base, resource_type)
    })
}

/// `GET /ResourceTypes/{name}`.
pub async fn one_resource_type(
    State(service): State<MockService>,
    Path((directory, name)): Path<(String, String)>,
    headers: HeaderMap,
) -> Response {
    read(&service, &headers, &directory, |_, base| {
        let resource = find(Resource::name, &name, "ResourceType")?;
        Ok(scim_json(StatusCode::OK, &resource_type(resource, base)))
    })
}

/// `GET /Schemas`.
pub async fn schemas(
    State(service): State<MockService>,
    Path(directory): Path<String>,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
) -> Response {
    read(&service, &headers, &directory, |_, base| describe_all(query.as_deref(), base, schema))
}

/// `GET /Schemas/{urn}`.
pub async fn one_schema(
    State(service): State<MockService>,
    Path((directory, urn)): Path<(String, String)>,
    headers: HeaderMap,
) -> Response {
    read(&service, &headers, &directory, |_, base| {
        let resource = find(Resource::urn, &urn, "Schema")?;
        Ok(scim_json(StatusCode::OK, &schema(resource, base)))
    })
}
