//! The Admin API's shapes, how its failures read, and its two paging styles. A leaf.
//!
//! Classic listings (users, invites, projects, project users, service accounts) page with
//! `limit` and `after=<id of the last item>` and answer `has_more` and `last_id`; RBAC listings
//! (groups, group users, roles, role assignments) answer `has_more` and an opaque `next`. A page
//! that says more follow without a key to continue from is refused, never looped on.

use std::collections::HashSet;

use connector_sdk::ConnectorError;
use connector_sdk::client::{ApiRules, JsonClient, classify_status, encode_query};
use connector_sdk::paging::continuation;
use connector_sdk::transport::{HttpResponse, Transport};
use serde::Deserialize;
use serde::de::DeserializeOwned;

/// The largest page of a classic listing.
pub const CLASSIC_MAX_PAGE: u32 = 100;
/// The largest page of the RBAC listings this connector reads (groups and group users).
pub const RBAC_MAX_PAGE: u32 = 1000;

/// How the Admin API's answers read.
#[derive(Debug, Clone, Copy, Default)]
pub struct PlatformApi;

impl ApiRules for PlatformApi {
    fn classify(&self, endpoint: &str, response: &HttpResponse) -> ConnectorError {
        classify_status(
            endpoint,
            response,
            "the organization's Admin API key",
            "the Admin API key may not do this (an admin key of the organization is needed; project keys are refused)",
        )
    }
}

/// A client of the Admin API.
pub type Client<'a, T> = JsonClient<'a, T, PlatformApi>;

/// An item of a listing paged by key: the key the next page continues after.
pub trait Keyed {
    /// Its id.
    fn key(&self) -> &str;
}

/// A page of a classic listing.
#[derive(Debug, Deserialize)]
pub struct ClassicList<I> {
    /// The items.
    pub data: Vec<I>,
    /// Whether more follow.
    #[serde(default)]
    pub has_more: bool,
    /// The id of the last item.
    #[serde(default)]
    pub last_id: Option<String>,
}

/// A page of an RBAC listing.
#[derive(Debug, Deserialize)]
pub struct RbacList<I> {
    /// The items.
    pub data: Vec<I>,
    /// Whether more follow.
    #[serde(default)]
    pub has_more: bool,
    /// The opaque cursor of the next page.
    #[serde(default)]
    pub next: Option<String>,
}

/// `organization.user`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct User {
    /// Its id.
    pub id: String,
    /// Its name.
    #[serde(default)]
    pub name: Option<String>,
    /// Its address.
    pub email: String,
    /// `owner` or `reader`.
    pub role: String,
    /// When it joined, Unix seconds.
    #[serde(default)]
    pub added_at: Option<i64>,
    /// Whether an identity provider manages it through SCIM.
    #[serde(default)]
    pub is_scim_managed: bool,
}

/// One project of an invite.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct InviteProject {
    /// The project id.
    pub id: String,
    /// `owner` or `member`.
    pub role: String,
}

/// `organization.invite`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct Invite {
    /// Its id.
    pub id: String,
    /// The address invited.
    pub email: String,
    /// `owner` or `reader`.
    pub role: String,
    /// `pending`, `accepted` or `expired`.
    pub status: String,
    /// When it was sent, Unix seconds.
    #[serde(default)]
    pub created_at: Option<i64>,
    /// The projects it adds the person to.
    #[serde(default)]
    pub projects: Vec<InviteProject>,
}

impl Invite {
    /// Whether it can still be accepted.
    pub fn is_pending(&self) -> bool {
        self.status == "pending"
    }

    /// Whether it lapsed unaccepted.
    pub fn is_expired(&self) -> bool {
        self.status == "expired"
    }
}

/// `organization.project`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct Project {
    /// Its id.
    pub id: String,
    /// Its name.
    pub name: String,
    /// `active` or `archived`.
    pub status: String,
}

impl Project {
    /// Whether it is archived (its membership then cannot change).
    pub fn is_archived(&self) -> bool {
        self.status == "archived"
    }
}

/// `organization.project.user`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct ProjectUser {
    /// The user's id.
    pub id: String,
    /// `owner` or `member`.
    pub role: String,
}

/// `organization.project.service_account`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct ServiceAccount {
    /// Its id.
    pub id: String,
    /// Its name.
    #[serde(default)]
    pub name: Option<String>,
    /// `owner`, `member` or `none`.
    pub role: String,
    /// When it was made, Unix seconds.
    #[serde(default)]
    pub created_at: Option<i64>,
}

/// `group`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct Group {
    /// Its id.
    pub id: String,
    /// Its name.
    pub name: String,
    /// Whether an identity provider manages its membership.
    #[serde(default)]
    pub scim_managed: bool,
}

/// A member of a group.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct GroupUser {
    /// The user's id.
    pub id: String,
}

/// `role`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct Role {
    /// Its id.
    pub id: String,
    /// Its name.
    pub name: String,
    /// What it allows.
    #[serde(default)]
    pub description: Option<String>,
    /// `api.organization` or `api.project`.
    pub resource_type: String,
    /// Whether the service defines it (owner, reader...) rather than the organization.
    #[serde(default)]
    pub predefined_role: bool,
}

impl Role {
    /// Whether it is a custom role assignable to a person across the organization.
    pub fn is_custom_org_role(&self) -> bool {
        !self.predefined_role && self.resource_type == "api.organization"
    }
}

macro_rules! keyed {
    ($($t:ty),*) => {$(
        impl Keyed for $t {
            fn key(&self) -> &str {
                &self.id
            }
        }
    )*};
}
keyed!(User, Invite, Project, ProjectUser, ServiceAccount);

/// `path` with `limit` and, when continuing, `after` added to its query.
pub fn paged(path: &str, limit: u32, after: Option<&str>) -> String {
    let separator = if path.contains('?') { '&' } else { '?' };
    match after {
        Some(key) => format!("{path}{separator}limit={limit}&after={}", encode_query(key)),
        None => format!("{path}{separator}limit={limit}"),
    }
}

/// The key after which a classic listing continues, from one of its pages.
fn classic_next<I: Keyed>(
    path: &str,
    page: &ClassicList<I>,
) -> Result<Option<String>, ConnectorError> {
    let key = page.last_id.clone().or_else(|| page.data.last().map(|i| i.key().to_string()));
    continuation(&format!("GET {}", path.split('?').next().unwrap_or(path)), page.has_more, key)
}

/// Reads the Admin API.
pub struct Reads<'c, 'a, T: Transport>(pub &'c Client<'a, T>);

impl<T: Transport> Reads<'_, '_, T> {
    /// One page of the classic listing at `path`: its items and the key of the next page.
    pub fn classic_page<I: Keyed + DeserializeOwned>(
        &self,
        path: &str,
        after: Option<&str>,
        limit: u32,
    ) -> Result<(Vec<I>, Option<String>), ConnectorError> {
        let page: ClassicList<I> =
            self.0.get_json(&paged(path, limit.min(CLASSIC_MAX_PAGE), after))?;
        let next = classic_next(path, &page)?;
        if next.is_some() && next.as_deref() == after {
            return Err(repeated(path));
        }
        Ok((page.data, next))
    }

    /// Every item of the classic listings at `paths`, their first pages asked for together.
    pub fn classic_all<I: Keyed + DeserializeOwned>(
        &self,
        paths: &[String],
    ) -> Vec<Result<Vec<I>, ConnectorError>> {
        let firsts: Vec<String> = paths.iter().map(|p| paged(p, CLASSIC_MAX_PAGE, None)).collect();
        let answers = self.0.get_json_all::<ClassicList<I>>(&firsts);
        paths
            .iter()
            .zip(answers)
            .map(|(path, first)| {
                let first = first?;
                let mut next = classic_next(path, &first)?;
                let mut items = first.data;
                let mut seen = HashSet::new();
                while let Some(after) = next {
                    let (more, then) = self.classic_page(path, Some(&after), CLASSIC_MAX_PAGE)?;
                    if !seen.insert(after) {
                        return Err(repeated(path));
                    }
                    items.extend(more);
                    next = then;
                }
                Ok(items)
            })
            .collect()
    }

    /// One page of the RBAC listing at `path`: its items and the cursor of the next page.
    pub fn rbac_page<I: DeserializeOwned>(
        &self,
        path: &str,
        next: Option<&str>,
        limit: u32,
    ) -> Result<(Vec<I>, Option<String>), ConnectorError> {
        let page: RbacList<I> = self.0.get_json(&paged(path, limit.min(RBAC_MAX_PAGE), next))?;
        let endpoint = format!("GET {}", path.split('?').next().unwrap_or(path));
        let cursor = continuation(&endpoint, page.has_more, page.next)?;
        if cursor.is_some() && cursor.as_deref() == next {
            return Err(repeated(path));
        }
        Ok((page.data, cursor))
    }

    /// Every item of the RBAC listings at `paths`, their first pages asked for together.
    pub fn rbac_all<I: DeserializeOwned>(
        &self,
        paths: &[String],
    ) -> Vec<Result<Vec<I>, ConnectorError>> {
        let firsts: Vec<String> = paths.iter().map(|p| paged(p, RBAC_MAX_PAGE, None)).collect();
        let answers = self.0.get_json_all::<RbacList<I>>(&firsts);
        paths
            .iter()
            .zip(answers)
            .map(|(path, first)| {
                let first = first?;
                let endpoint = format!("GET {}", path.split('?').next().unwrap_or(path));
                let mut next = continuation(&endpoint, first.has_more, first.next)?;
                let mut items = first.data;
                let mut seen = HashSet::new();
                while let Some(cursor) = next {
                    let (more, then) = self.rbac_page(path, Some(&cursor), RBAC_MAX_PAGE)?;
                    if !seen.insert(cursor) {
                        return Err(repeated(path));
                    }
                    items.extend(more);
                    next = then;
                }
                Ok(items)
            })
            .collect()
    }
}

/// A listing whose next page is one already read: a broken answer that would loop for ever.
fn repeated(path: &str) -> ConnectorError {
    ConnectorError::Internal(format!(
        "GET {}: the service gave a cursor it had given before; the listing stopped rather than loop",
        path.split('?').next().unwrap_or(path)
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use connector_sdk::client::RetryClock;
    use connector_sdk::settings::RetryPolicy;
    use connector_sdk::transport::FakeTransport;

    fn client(transport: &FakeTransport) -> Client<'_, FakeTransport> {
        JsonClient::on(
            PlatformApi,
            transport,
            "https://api.test/v1".into(),
            RetryPolicy::default(),
            RetryClock::default(),
        )
    }

    #[test]
    fn both_paging_styles_continue_and_stop() {
        let transport = FakeTransport::new();
        transport.answer_json(200, r#"{"object":"list","data":[{"id":"p1","name":"A","status":"active"}],"first_id":"p1","last_id":"p1","has_more":true}"#);
        transport.answer_json(200, r#"{"object":"list","data":[{"id":"p2","name":"B","status":"archived"}],"last_id":"p2","has_more":false}"#);
        let client = client(&transport);
        let all = Reads(&client)
            .classic_all::<Project>(&["organization/projects?include_archived=true".into()]);
        let all = all.into_iter().next().unwrap().unwrap();
        assert_eq!(all.iter().map(|p| p.id.as_str()).collect::<Vec<_>>(), ["p1", "p2"]);
        let urls: Vec<String> = transport.requests().into_iter().map(|r| r.url).collect();
        assert_eq!(
            urls[1],
            "https://api.test/v1/organization/projects?include_archived=true&limit=100&after=p1"
        );

        transport.answer_json(
            200,
            r#"{"object":"list","data":[{"id":"g1"}],"has_more":true,"next":"c2"}"#,
        );
        transport.answer_json(
            200,
            r#"{"object":"list","data":[{"id":"g2"}],"has_more":false,"next":null}"#,
        );
        let users = Reads(&client).rbac_all::<GroupUser>(&["organization/groups/g/users".into()]);
        assert_eq!(users.into_iter().next().unwrap().unwrap().len(), 2);
    }

    #[test]
    fn more_without_a_cursor_is_a_broken_answer_not_a_loop() {
        let transport = FakeTransport::new();
        transport.answer_json(200, r#"{"object":"list","data":[],"has_more":true}"#);
        let client = client(&transport);
        let error =
            Reads(&client).classic_page::<User>("organization/users", None, 10).unwrap_err();
        assert!(
            matches!(&error, ConnectorError::Internal(m) if m.contains("no cursor")),
            "{error:?}"
        );
        transport.answer_json(
            200,
            r#"{"object":"list","data":[{"id":"g1"}],"has_more":true,"next":null}"#,
        );
        let error =
            Reads(&client).rbac_page::<GroupUser>("organization/groups", None, 10).unwrap_err();
        assert!(matches!(&error, ConnectorError::Internal(_)), "{error:?}");
        assert_eq!(transport.requests().len(), 2);
        transport
            .answer_json(200, r#"{"object":"list","data":[],"has_more":true,"last_id":"u-5"}"#);
        let error =
            Reads(&client).classic_page::<User>("organization/users", Some("u-5"), 10).unwrap_err();
        assert!(
            matches!(&error, ConnectorError::Internal(m) if m.contains("given before")),
            "{error:?}"
        );
    }
}
