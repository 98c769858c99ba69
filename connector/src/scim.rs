//! The workspace's SCIM 2.0 directory (RFC 7643/7644): the JSON shapes the connector reads and
//! the few requests it sends. Groups live only here; users are looked up to learn their SCIM id.

use std::collections::BTreeSet;

use serde::Deserialize;
use serde::de::DeserializeOwned;
use serde_json::{Value, json};

use crate::api::{ConsoleClient, Surface, WriteError, encode_query};
use crate::error::ConnectorError;
use crate::settings::RetryPolicy;
use crate::transport::{Method, Transport};

/// The PatchOp message schema.
pub const PATCH_OP: &str = "urn:ietf:params:scim:api:messages:2.0:PatchOp";
/// Largest page the connector asks the directory for.
pub const PAGE: u32 = 100;

/// A SCIM list response (RFC 7644 §3.4.2).
#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
pub struct ListResponse<T> {
    /// Matching resources in all pages.
    #[serde(rename = "totalResults")]
    pub total_results: u64,
    /// This page's resources; absent when empty.
    #[serde(rename = "Resources", default = "Vec::new")]
    pub resources: Vec<T>,
}

/// A SCIM user, as far as the connector needs one.
#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
pub struct ScimUser {
    /// The directory's id of the user.
    pub id: String,
    /// The unique login name (an email address in ChatGPT workspaces).
    #[serde(rename = "userName")]
    pub user_name: String,
    /// Whether the user is active; RFC 7643 leaves it optional, and absent means active.
    #[serde(default)]
    pub active: Option<bool>,
}

/// A SCIM group.
#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
pub struct ScimGroup {
    /// The directory's id of the group.
    pub id: String,
    /// Name shown to people.
    #[serde(rename = "displayName")]
    pub display_name: String,
    /// Members; absent when empty or excluded from the answer.
    #[serde(default)]
    pub members: Vec<GroupMember>,
}

/// One member of a group.
#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
pub struct GroupMember {
    /// The member's SCIM id.
    pub value: String,
}

impl ScimGroup {
    /// Whether the user with SCIM id `user_id` is a member.
    pub fn has_member(&self, user_id: &str) -> bool {
        self.members.iter().any(|m| m.value == user_id)
    }

    /// The SCIM ids of its members.
    pub fn member_ids(&self) -> BTreeSet<String> {
        self.members.iter().map(|m| m.value.clone()).collect()
    }
}

/// A typed client of the SCIM directory at `scim-base-url`.
pub struct ScimClient<'a, T: Transport> {
    http: ConsoleClient<'a, T>,
}

impl<'a, T: Transport> ScimClient<'a, T> {
    /// A client of the directory at `base` (no trailing slash).
    pub fn new(transport: &'a T, base: String, policy: RetryPolicy) -> Self {
        ScimClient { http: ConsoleClient::on(Surface::Scim, transport, base, policy) }
    }

    /// `GET /Groups?startIndex&count` without the members, for listing the groups themselves.
    pub fn list_groups(
        &self,
        start_index: u64,
        count: u32,
    ) -> Result<ListResponse<ScimGroup>, ConnectorError> {
        self.get(&format!(
            "Groups?startIndex={start_index}&count={count}&excludedAttributes=members"
        ))
    }

    /// Every group with its members, page by page.
    pub fn all_groups(&self) -> Result<Vec<ScimGroup>, ConnectorError> {
        self.all("Groups")
    }

    /// `GET /Groups/{id}`; `not-found` names the entitlement.
    pub fn group(&self, id: &str) -> Result<ScimGroup, ConnectorError> {
        self.get(&group_path(id)).map_err(|e| match e {
            ConnectorError::NotFound(_) => ConnectorError::NotFound(format!(
                "no SCIM group {id:?} (entitlement group:{id}); see list-entitlements"
            )),
            other => other,
        })
    }

    /// The user whose `userName` is `email` (compared case-insensitively, as RFC 7643 defines
    /// `userName`), if the directory has one.
    pub fn user_by_email(&self, email: &str) -> Result<Option<ScimUser>, ConnectorError> {
        let filter = format!("userName eq {}", Value::String(email.to_string()));
        let page: ListResponse<ScimUser> =
            self.get(&format!("Users?filter={}&count=2", encode_query(&filter)))?;
        Ok(page.resources.into_iter().find(|u| u.user_name.eq_ignore_ascii_case(email)))
    }

    /// Every user, page by page.
    pub fn all_users(&self) -> Result<Vec<ScimUser>, ConnectorError> {
        self.all("Users")
    }

    /// Sends a PatchOp (`body`, as [`membership_patch`] builds it) to a group. The answer is the
    /// group when the directory returns it (`200`), `None` when it answers `204 No Content`.
    pub fn patch_group(
        &self,
        id: &str,
        body: Option<String>,
    ) -> Result<Option<ScimGroup>, WriteError> {
        self.http.send_write(Method::Patch, &group_path(id), body)
    }

    /// Every resource of `endpoint` (`Users`, `Groups`), page by page.
    fn all<R: DeserializeOwned>(&self, endpoint: &str) -> Result<Vec<R>, ConnectorError> {
        let mut all = Vec::new();
        loop {
            let page: ListResponse<R> =
                self.get(&format!("{endpoint}?startIndex={}&count={PAGE}", all.len() + 1))?;
            let got = page.resources.len();
            all.extend(page.resources);
            // An empty page ends the listing even if `totalResults` says otherwise, so a
            // directory that miscounts cannot keep the connector asking forever.
            if got == 0 || all.len() as u64 >= page.total_results {
                return Ok(all);
            }
        }
    }

    fn get<R: DeserializeOwned>(&self, path: &str) -> Result<R, ConnectorError> {
        self.http.send_json(Method::Get, path, None)
    }
}

/// The path of a group below `scim-base-url`, without the leading slash.
pub fn group_path(id: &str) -> String {
    format!("Groups/{}", encode_query(id))
}

/// A PatchOp adding `add` to a group's members and removing `remove` (RFC 7644 §3.5.2).
pub fn membership_patch(add: &[&str], remove: &[&str]) -> Value {
    let mut operations = Vec::new();
    if !add.is_empty() {
        let members: Vec<Value> = add.iter().map(|id| json!({"value": id})).collect();
        operations.push(json!({"op": "add", "path": "members", "value": members}));
    }
    for id in remove {
        let path = format!("members[value eq {}]", Value::String(id.to_string()));
        operations.push(json!({"op": "remove", "path": path}));
    }
    json!({"schemas": [PATCH_OP], "Operations": operations})
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_membership_patch_adds_in_one_operation_and_removes_by_value_filter() {
        let body = membership_patch(&["user-1", "user-2"], &["user-\"3"]);
        assert_eq!(
            body,
            json!({"schemas": [PATCH_OP], "Operations": [
                {"op": "add", "path": "members", "value": [{"value": "user-1"}, {"value": "user-2"}]},
                {"op": "remove", "path": "members[value eq \"user-\\\"3\"]"},
            ]})
        );
    }

    #[test]
    fn reads_a_list_response_without_resources() {
        let page: ListResponse<ScimGroup> = serde_json::from_str(
            r#"{"schemas":["urn:ietf:params:scim:api:messages:2.0:ListResponse"],"totalResults":0,"startIndex":1,"itemsPerPage":0}"#,
        )
        .unwrap();
        assert_eq!(page.total_results, 0);
        assert!(page.resources.is_empty());
    }
}
