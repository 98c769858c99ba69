//! The endpoints of a resource type (`/Users`, `/Groups`), written once over [`ScimResource`].

use axum::body::Bytes;
use axum::extract::{Path, RawQuery, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::{Map, Value};

use super::super::model::{MockService, Workspace};
use super::patch;
use super::query::{ListParams, Projection, params};
use super::response::{ScimError, created, scim_json};
use super::schema::Resource;
use super::{json_body, read, write};

/// A resource type: how it is stored, rendered, validated and changed.
pub trait ScimResource: 'static {
    /// Which resource type: name, endpoint and attribute table.
    const KIND: Resource;
    /// The stored resource.
    type Item;
    /// Its writable attributes, validated.
    type Fields;
    /// The stored resources of `ws`, in creation order.
    fn items(ws: &Workspace) -> &[Self::Item];
    /// The id of `item`.
    fn id(item: &Self::Item) -> &str;
    /// The resource as the service renders it.
    fn render(ws: &Workspace, item: &Self::Item, base: &str) -> Value;
    /// The writable attributes of `item`, as a PATCH works on them.
    fn writable(item: &Self::Item) -> Map<String, Value>;
    /// Validates a body (POST, PUT, or the document a PATCH produced).
    fn fields(doc: &Value, check_schemas: bool) -> Result<Self::Fields, ScimError>;
    /// `POST`.
    fn create(
        ws: &mut Workspace,
        sequence: &mut u64,
        fields: Self::Fields,
    ) -> Result<Self::Item, ScimError>;
    /// `PUT /{id}` and the result of a PATCH.
    fn replace(
        ws: &mut Workspace,
        sequence: &mut u64,
        id: &str,
        fields: Self::Fields,
    ) -> Result<Self::Item, ScimError>;
    /// `DELETE /{id}`.
    fn delete(ws: &mut Workspace, sequence: &mut u64, id: &str) -> Result<(), ScimError>;
}

fn find<'a, R: ScimResource>(ws: &'a Workspace, id: &str) -> Result<&'a R::Item, ScimError> {
    R::items(ws)
        .iter()
        .find(|item| R::id(item) == id)
        .ok_or_else(|| ScimError::not_found(R::KIND.name(), id))
}

/// `item` rendered, with only the attributes `query` asks for.
fn projected<R: ScimResource>(
    ws: &Workspace,
    item: &R::Item,
    base: &str,
    query: Option<&str>,
) -> Value {
    Projection::parse(&params(query), R::KIND).apply(R::render(ws, item, base))
}

/// Replaces resource `id` with `fields` and answers 200 with the result.
fn replaced<R: ScimResource>(
    ws: &mut Workspace,
    sequence: &mut u64,
    id: &str,
    fields: R::Fields,
    base: &str,
    query: Option<&str>,
) -> Result<Response, ScimError> {
    let item = R::replace(ws, sequence, id, fields)?;
    Ok(scim_json(StatusCode::OK, &projected::<R>(ws, &item, base, query)))
}

/// `GET /{endpoint}`.
pub async fn list<R: ScimResource>(
    State(service): State<MockService>,
    Path(directory): Path<String>,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
) -> Response {
    read(&service, &headers, &directory, |ws, base| {
        let list = ListParams::parse(&params(query.as_deref()), R::KIND)?;
        Ok(list.answer(R::items(ws).iter().map(|item| R::render(ws, item, base))))
    })
}

/// `POST /{endpoint}/.search` (RFC 7644 §3.4.3): a `SearchRequest` body read as the query of
/// a listing, so the filter, paging and projection are the same as `GET`'s.
pub async fn search<R: ScimResource>(
    State(service): State<MockService>,
    Path(directory): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    read(&service, &headers, &directory, |ws, base| {
        let request = json_body(&body)?;
        let list = ListParams::parse(&search_params(&request)?, R::KIND)?;
        Ok(list.answer(R::items(ws).iter().map(|item| R::render(ws, item, base))))
    })
}

/// The query parameters a `SearchRequest` body stands for.
fn search_params(request: &Value) -> Result<std::collections::HashMap<String, String>, ScimError> {
    const SEARCH_URN: &str = "urn:ietf:params:scim:api:messages:2.0:SearchRequest";
    let object = request
        .as_object()
        .ok_or_else(|| ScimError::bad("invalidSyntax", "a SearchRequest must be a JSON object"))?;
    let schemas = object.get("schemas").and_then(Value::as_array);
    if !schemas.is_some_and(|s| s.iter().any(|u| u.as_str() == Some(SEARCH_URN))) {
        return Err(ScimError::bad("invalidSyntax", format!("`schemas` must list {SEARCH_URN}")));
    }
    let mut params = std::collections::HashMap::new();
    for (key, value) in object {
        let text = match (key.as_str(), value) {
            ("schemas", _) => continue,
            ("filter" | "sortBy" | "sortOrder", Value::String(s)) => s.clone(),
            ("startIndex" | "count", Value::Number(n)) => n.to_string(),
            ("attributes" | "excludedAttributes", Value::Array(names)) => names
                .iter()
                .map(|n| n.as_str().map(str::to_string))
                .collect::<Option<Vec<_>>>()
                .ok_or_else(|| ScimError::bad("invalidSyntax", format!("`{key}` must list names")))?
                .join(","),
            (other, _) => {
                return Err(ScimError::bad(
                    "invalidSyntax",
                    format!("`{other}` is not a SearchRequest attribute of the right type"),
                ));
            }
        };
        params.insert(key.clone(), text);
    }
    Ok(params)
}

/// `GET /{endpoint}/{id}`.
pub async fn get_one<R: ScimResource>(
    State(service): State<MockService>,
    Path((directory, id)): Path<(String, String)>,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
) -> Response {
    read(&service, &headers, &directory, |ws, base| {
        let item = find::<R>(ws, &id)?;
        Ok(scim_json(StatusCode::OK, &projected::<R>(ws, item, base, query.as_deref())))
    })
}

/// `POST /{endpoint}`.
pub async fn create<R: ScimResource>(
    State(service): State<MockService>,
    Path(directory): Path<String>,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    write(&service, &headers, &directory, &body, |ws, sequence, base| {
        let fields = R::fields(&json_body(&body)?, true)?;
        let item = R::create(ws, sequence, fields)?;
        Ok(created(&projected::<R>(ws, &item, base, query.as_deref())))
    })
}

/// `PUT /{endpoint}/{id}`.
pub async fn replace<R: ScimResource>(
    State(service): State<MockService>,
    Path((directory, id)): Path<(String, String)>,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    write(&service, &headers, &directory, &body, |ws, sequence, base| {
        find::<R>(ws, &id)?;
        let fields = R::fields(&json_body(&body)?, true)?;
        replaced::<R>(ws, sequence, &id, fields, base, query.as_deref())
    })
}

/// `PATCH /{endpoint}/{id}`.
pub async fn patch<R: ScimResource>(
    State(service): State<MockService>,
    Path((directory, id)): Path<(String, String)>,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    write(&service, &headers, &directory, &body, |ws, sequence, base| {
        let mut doc = R::writable(find::<R>(ws, &id)?);
        let ops = patch::parse_request(R::KIND, &json_body(&body)?)?;
        patch::apply(R::KIND, &mut doc, &ops, &id)?;
        let fields = R::fields(&Value::Object(doc), false)?;
        replaced::<R>(ws, sequence, &id, fields, base, query.as_deref())
    })
}

/// `DELETE /{endpoint}/{id}`.
pub async fn delete<R: ScimResource>(
    State(service): State<MockService>,
    Path((directory, id)): Path<(String, String)>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    write(&service, &headers, &directory, &body, |ws, sequence, _| {
        R::delete(ws, sequence, &id)?;
        Ok(StatusCode::NO_CONTENT.into_response())
    })
}
