//! The smallest complete connector: the people of a directory service (`GET/POST/DELETE /users`,
//! `PUT/DELETE /users/{id}/roles/{role}`; the mock is `accessgov_mock::directory`) as accounts,
//! and `access` plus one entitlement per role. Copy it to start a connector of your own.

use connector_sdk::client::{JsonApi, JsonClient, RetryClock, WriteError, encode_query};
use connector_sdk::cursor::{Cursor, Listing};
use connector_sdk::paging::page_size;
use connector_sdk::settings::{ConfigSource, RetryPolicy, SettingsReader};
use connector_sdk::transport::{Method, Transport};
use connector_sdk::types::{
    Account, AccountRef, AccountStatus, ChangeOutcome, ChangeResult, ConnectionReport,
    ConnectorInfo, Entitlement, PageRequest, PlannedRequest,
};
use connector_sdk::{ChangeAction, ChangeRequest, Connector, ConnectorError, Page};
use serde::Deserialize;

/// The entitlement of being in the directory at all.
const ACCESS: &str = "access";
/// The roles the directory knows, as `role:<name>` entitlements.
const ROLES: [&str; 2] = ["viewer", "editor"];
/// The directory's largest page.
const MAX_PAGE: u32 = 100;

/// The settings schema `info` publishes.
const CONFIG_SCHEMA: &str = concat!(
    r#"{"type": "object", "title": "Directory connector settings", "properties": {
    "base-url": {"type": "string", "format": "uri", "description": "The directory's base URL"},
    "#,
    connector_sdk::retry_schema_properties!(),
    r#"}, "required": ["base-url"], "additionalProperties": false}"#
);

/// A user as the directory returns one.
#[derive(Debug, Deserialize)]
struct User {
    id: String,
    email: String,
    name: String,
    roles: Vec<String>,
}

/// A page of the directory's users.
#[derive(Debug, Deserialize)]
struct Users {
    users: Vec<User>,
    total: u64,
}

/// The one listing a cursor points into.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct People;

impl Listing for People {
    fn code(self) -> char {
        'p'
    }
}

/// The connector for one tenant's directory.
pub struct DirectoryConnector<T: Transport> {
    transport: T,
    base_url: String,
    retry: RetryPolicy,
    retrying: RetryClock,
}

impl<T: Transport> DirectoryConnector<T> {
    /// A connector sending through `transport` to the directory at `base_url`.
    pub fn new(transport: T, base_url: String, retry: RetryPolicy) -> Self {
        DirectoryConnector { transport, base_url, retry, retrying: RetryClock::default() }
    }

    fn client(&self) -> JsonClient<'_, T, JsonApi> {
        JsonClient::on(
            JsonApi,
            &self.transport,
            self.base_url.clone(),
            self.retry,
            self.retrying.clone(),
        )
    }

    /// The user `reference` names, if there is one.
    fn find(&self, reference: &AccountRef) -> Result<Option<User>, ConnectorError> {
        match reference {
            AccountRef::Id(id) if id.is_empty() || id.contains(['/', '?', '#', ' ']) => {
                Err(ConnectorError::InvalidArgument(format!("{id:?} is not a user id")))
            }
            AccountRef::Id(id) => match self.client().get_json::<User>(&format!("users/{id}")) {
                Ok(user) => Ok(Some(user)),
                Err(ConnectorError::NotFound(_)) => Ok(None),
                Err(error) => Err(error),
            },
            AccountRef::Email(email) if !email.contains('@') => {
                Err(ConnectorError::InvalidArgument(format!("{email:?} is not an email address")))
            }
            AccountRef::Email(email) => {
                let page: Users =
                    self.client().get_json(&format!("users?email={}", encode_query(email)))?;
                Ok(page.users.into_iter().next())
            }
        }
    }

    /// Plans one change against the current state and, unless `dry_run`, makes it.
    fn change(
        &self,
        change: &ChangeRequest,
        dry_run: bool,
    ) -> Result<ChangeResult, ConnectorError> {
        let role = match change.entitlement.strip_prefix("role:") {
            Some(role) if ROLES.contains(&role) => Some(role),
            None if change.entitlement == ACCESS => None,
            _ => {
                return Err(ConnectorError::NotFound(format!(
                    "no entitlement {:?}",
                    change.entitlement
                )));
            }
        };
        let grant = match &change.action {
            ChangeAction::Grant => true,
            ChangeAction::Revoke => false,
            ChangeAction::Set { group } => {
                return Err(ConnectorError::InvalidArgument(format!(
                    "there is no exclusion group {group:?}"
                )));
            }
        };
        let user = self.find(&change.account)?;
        let mut requests = Vec::new();
        let id = user.as_ref().map_or_else(|| "{new}".to_string(), |u| u.id.clone());
        match (role, grant, &user) {
            (_, true, None) => {
                let AccountRef::Email(email) = &change.account else {
                    return Err(ConnectorError::NotFound("no user has that id".to_string()));
                };
                let body = serde_json::json!({"email": email}).to_string();
                requests.push(PlannedRequest {
                    method: "POST".into(),
                    path: "users".into(),
                    body: Some(body),
                });
            }
            (None, false, Some(user)) => {
                requests.push(PlannedRequest {
                    method: "DELETE".into(),
                    path: format!("users/{}", user.id),
                    body: None,
                });
            }
            _ => {}
        }
        if let Some(role) = role {
            let held = user.as_ref().is_some_and(|u| u.roles.iter().any(|r| r == role));
            if grant != held {
                let method = if grant { "PUT" } else { "DELETE" };
                requests.push(PlannedRequest {
                    method: method.into(),
                    path: format!("users/{id}/roles/{role}"),
                    body: None,
                });
            }
        }
        let outcome = match (requests.is_empty(), dry_run) {
            (true, _) => ChangeOutcome::AlreadyInState,
            (false, true) => ChangeOutcome::Planned,
            (false, false) => ChangeOutcome::Applied,
        };
        #[cfg(feature = "bug-dry-run-writes")]
        let dry_run = false;
        if !dry_run {
            self.send(&mut requests)?;
        }
        // Only writes change the user: otherwise the user as read is the account's state.
        let after = match (&user, outcome) {
            (Some(user), ChangeOutcome::Applied) => self.find(&AccountRef::Id(user.id.clone()))?,
            (None, ChangeOutcome::Applied) => self.find(&change.account)?,
            _ => user,
        };
        let account = after.map(account);
        Ok(ChangeResult {
            outcome,
            replaced: Vec::new(),
            account,
            detail: format!("{} request(s)", requests.len()),
            requests,
            notices: Vec::new(),
        })
    }

    /// Sends the planned writes in order; a created user's id replaces `{new}` in later paths.
    fn send(&self, requests: &mut [PlannedRequest]) -> Result<(), ConnectorError> {
        let client = self.client();
        for sent in 0..requests.len() {
            let request = &requests[sent];
            let method = match request.method.as_str() {
                "POST" => Method::Post,
                "PUT" => Method::Put,
                _ => Method::Delete,
            };
            let answer: Result<Option<serde_json::Value>, WriteError> =
                client.send_write(method, &request.path, request.body.clone());
            let failure = match answer {
                Ok(Some(user)) if method == Method::Post => {
                    match user.get("id").and_then(|id| id.as_str()) {
                        Some(id) => {
                            for later in &mut requests[sent + 1..] {
                                later.path = later.path.replace("{new}", id);
                            }
                            continue;
                        }
                        None => ConnectorError::Internal(
                            "POST users: the service created the user but named no id".to_string(),
                        ),
                    }
                }
                Ok(_) => continue,
                Err(WriteError::Rejected(error)) if sent == 0 => return Err(error),
                Err(WriteError::Rejected(error)) => error,
                Err(WriteError::Unknown(error)) => ConnectorError::Unavailable(format!(
                    "{} {} may or may not have been applied ({})",
                    request.method,
                    request.path,
                    connector_sdk::error::describe(&error)
                )),
            };
            return Err(unfinished(&requests[..sent], &failure));
        }
        Ok(())
    }
}

/// A change that stopped partway: what was applied before `failure`, so nothing done goes
/// unreported.
fn unfinished(applied: &[PlannedRequest], failure: &ConnectorError) -> ConnectorError {
    let applied: Vec<String> = applied.iter().map(|r| format!("{} {}", r.method, r.path)).collect();
    let applied = if applied.is_empty() { "nothing".to_string() } else { applied.join(", ") };
    ConnectorError::Unavailable(format!(
        "{}; applied before it: {applied}; read the account before retrying",
        connector_sdk::error::describe(failure)
    ))
}

/// The account of a user.
fn account(user: User) -> Account {
    let mut entitlements = vec![ACCESS.to_string()];
    entitlements.extend(user.roles.iter().map(|r| format!("role:{r}")));
    Account {
        id: user.id,
        email: Some(user.email),
        display_name: Some(user.name),
        status: AccountStatus::Active,
        entitlements,
        managed_by: None,
        created_at: None,
    }
}

impl<T: Transport + Default> Connector for DirectoryConnector<T> {
    fn load(config: &dyn ConfigSource) -> Result<Self, ConnectorError> {
        let settings = SettingsReader::new(config);
        Ok(DirectoryConnector::new(
            T::default(),
            settings.base_url("base-url")?,
            RetryPolicy::load(&settings)?,
        ))
    }

    fn info() -> ConnectorInfo {
        ConnectorInfo {
            name: "directory".to_string(),
            version: env!("CARGO_PKG_VERSION").to_string(),
            application: "the directory service (template connector)".to_string(),
            entitlement_kinds: vec!["access".to_string(), "role".to_string()],
            exclusion_groups: Vec::new(),
            capabilities: connector_sdk::connector::every_capability(),
            config_schema: CONFIG_SCHEMA.to_string(),
        }
    }

    fn test_connection(&self) -> Result<ConnectionReport, ConnectorError> {
        self.client().get_json::<Users>("users?offset=0&limit=1")?;
        Ok(ConnectionReport { limitations: Vec::new() })
    }

    fn list_accounts(&self, page: &PageRequest) -> Result<Page<Account>, ConnectorError> {
        let size = page_size(page.size, 50, MAX_PAGE)?;
        let offset = match &page.cursor {
            Some(raw) => Cursor::decode(raw, &self.base_url, &[People])?.offset,
            None => 0,
        };
        let users: Users =
            self.client().get_json(&format!("users?offset={offset}&limit={size}"))?;
        let next = offset + users.users.len() as u64;
        let next_cursor = (next < users.total && !users.users.is_empty())
            .then(|| Cursor::at(People, next, Some(users.total)).encode(&self.base_url));
        // Deliberate defect for the conformance suite's tests: hand back the same cursor.
        #[cfg(feature = "bug-repeat-cursor")]
        let next_cursor = page.cursor.clone().or(next_cursor);
        Ok(Page { items: users.users.into_iter().map(account).collect(), next_cursor })
    }

    fn get_account(&self, reference: &AccountRef) -> Result<Account, ConnectorError> {
        self.find(reference)?
            .map(account)
            .ok_or_else(|| ConnectorError::NotFound("no such user".to_string()))
    }

    fn list_entitlements(&self, _page: &PageRequest) -> Result<Page<Entitlement>, ConnectorError> {
        let entitlement = |id: String, kind: &str, description: String| Entitlement {
            display_name: id.clone(),
            id,
            kind: kind.to_string(),
            description,
            exclusion_group: None,
            grantable: true,
        };
        let mut items = vec![entitlement(
            ACCESS.to_string(),
            "access",
            "Is a user of the directory".to_string(),
        )];
        items.extend(
            ROLES
                .iter()
                .map(|r| entitlement(format!("role:{r}"), "role", format!("Holds the {r} role"))),
        );
        Ok(Page { items, next_cursor: None })
    }

    fn apply_batch(
        &self,
        changes: &[ChangeRequest],
        dry_run: bool,
    ) -> Result<Vec<Result<ChangeResult, ConnectorError>>, ConnectorError> {
        Ok(changes.iter().map(|change| self.change(change, dry_run)).collect())
    }
}

connector_sdk::export_connector!(DirectoryConnector<connector_sdk::wasi_http::WasiHttpTransport>);

#[cfg(test)]
mod tests {
    use super::*;
    use connector_sdk::transport::FakeTransport;

    fn connector() -> DirectoryConnector<FakeTransport> {
        DirectoryConnector::new(
            FakeTransport::new(),
            "http://directory".into(),
            RetryPolicy::default(),
        )
    }

    #[test]
    fn the_published_schema_matches_what_load_reads() {
        let load = |s: &SettingsReader<'_>| Ok((s.base_url("base-url")?, RetryPolicy::load(s)?));
        connector_sdk::settings::check_schema(CONFIG_SCHEMA, &[("base-url", "http://x")], load)
            .unwrap();
    }

    #[test]
    fn granting_a_role_to_a_new_person_plans_the_user_then_the_role_and_a_dry_run_sends_neither() {
        let c = connector();
        c.transport.answer_json(200, r#"{"users": [], "total": 0}"#);
        let change = ChangeRequest {
            action: ChangeAction::Grant,
            account: AccountRef::Email("ann@x.com".into()),
            entitlement: "role:editor".into(),
        };
        let result = c.change(&change, true).unwrap();
        assert_eq!(result.outcome, ChangeOutcome::Planned);
        let planned: Vec<_> =
            result.requests.iter().map(|r| format!("{} {}", r.method, r.path)).collect();
        assert_eq!(planned, ["POST users", "PUT users/{new}/roles/editor"]);
        assert_eq!(c.transport.requests().len(), 1, "only the lookup was sent");
    }

    #[test]
    fn a_change_that_stops_partway_reports_what_it_applied() {
        let grant = ChangeRequest {
            action: ChangeAction::Grant,
            account: AccountRef::Email("ann@x.com".into()),
            entitlement: "role:editor".into(),
        };
        // The user is created; adding the role is refused.
        let c = connector();
        c.transport.answer_json(200, r#"{"users": [], "total": 0}"#);
        c.transport
            .answer_json(201, r#"{"id": "u-7", "email": "ann@x.com", "name": "Ann", "roles": []}"#);
        c.transport.answer_json(404, r#"{"detail": "no such role"}"#);
        let error = c.change(&grant, false).unwrap_err();
        let message = connector_sdk::error::message(&error);
        assert!(message.contains("applied before it: POST users"), "{message}");
        assert!(message.contains("PUT users/u-7/roles/editor: no such role"), "{message}");
        // The user is created, but the answer names no id: no request goes to `{new}`.
        let c = connector();
        c.transport.answer_json(200, r#"{"users": [], "total": 0}"#);
        c.transport.answer_json(201, r#"{"email": "ann@x.com"}"#);
        let error = c.change(&grant, false).unwrap_err();
        assert!(connector_sdk::error::message(&error).contains("named no id"), "{error:?}");
        assert_eq!(c.transport.requests().len(), 2);
    }

    #[test]
    fn an_unknown_entitlement_is_refused_before_anything_is_sent() {
        let c = connector();
        let change = ChangeRequest {
            action: ChangeAction::Grant,
            account: AccountRef::Email("ann@x.com".into()),
            entitlement: "role:owner".into(),
        };
        assert!(matches!(c.change(&change, false), Err(ConnectorError::NotFound(_))));
        assert!(c.transport.requests().is_empty());
    }
}
