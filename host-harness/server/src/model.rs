//! The API's JSON shapes. They mirror the contract's types (which are generated from WIT and
//! cannot carry schema annotations here) so the OpenAPI document is generated from the very
//! types the handlers answer with.

use std::collections::BTreeMap;

use accessgov_host::batch::{ChangeReport, ItemOutcome, ItemReport, ItemRequest};
use accessgov_host::types as contract;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// An account's lifecycle state.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "kebab-case")]
pub enum AccountStatus {
    /// Can sign in.
    Active,
    /// Invited, not yet joined.
    Invited,
    /// Suspended, deactivated, or (API Platform) an expired invite.
    Suspended,
    /// Asked to join.
    Requested,
}

/// A person's account in the application.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct Account {
    /// Stable id within the tenant.
    pub id: String,
    /// Email address.
    pub email: Option<String>,
    /// Name shown to people.
    pub display_name: Option<String>,
    /// Lifecycle state.
    pub status: AccountStatus,
    /// Entitlement ids held.
    pub entitlements: Vec<String>,
    /// The external system owning its lifecycle (`scim`).
    pub managed_by: Option<String>,
    /// RFC 3339 creation time.
    pub created_at: Option<String>,
}

impl From<contract::Account> for Account {
    fn from(a: contract::Account) -> Self {
        Account {
            id: a.id,
            email: a.email,
            display_name: a.display_name,
            status: match a.status {
                contract::AccountStatus::Active => AccountStatus::Active,
                contract::AccountStatus::Invited => AccountStatus::Invited,
                contract::AccountStatus::Suspended => AccountStatus::Suspended,
                contract::AccountStatus::Requested => AccountStatus::Requested,
            },
            entitlements: a.entitlements,
            managed_by: a.managed_by,
            created_at: a.created_at,
        }
    }
}

/// One page of accounts.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct AccountPage {
    /// The accounts.
    pub accounts: Vec<Account>,
    /// Opaque cursor of the next page; absent on the last.
    pub next_cursor: Option<String>,
}

/// Something an account can hold.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct Entitlement {
    /// Stable id, e.g. `role:admin`.
    pub id: String,
    /// Its kind, one of the connector's.
    pub kind: String,
    /// Name shown to people.
    pub display_name: String,
    /// What holding it means.
    pub description: String,
    /// Mutually exclusive group, if any.
    pub exclusion_group: Option<String>,
    /// Whether grant and revoke accept it.
    pub grantable: bool,
}

impl From<contract::Entitlement> for Entitlement {
    fn from(e: contract::Entitlement) -> Self {
        Entitlement {
            id: e.id,
            kind: e.kind,
            display_name: e.display_name,
            description: e.description,
            exclusion_group: e.exclusion_group,
            grantable: e.grantable,
        }
    }
}

/// One page of entitlements.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct EntitlementPage {
    /// The entitlements.
    pub entitlements: Vec<Entitlement>,
    /// Opaque cursor of the next page; absent on the last.
    pub next_cursor: Option<String>,
}

/// A set of mutually exclusive entitlements.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct ExclusionGroup {
    /// Id.
    pub id: String,
    /// Whether every account holds exactly one.
    pub required: bool,
    /// What it decides.
    pub description: String,
}

/// What a connector can do.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct Capabilities {
    /// Accounts can be read.
    pub read_accounts: bool,
    /// Entitlements can be read.
    pub read_entitlements: bool,
    /// Grant, revoke and set work.
    pub write: bool,
    /// Batches use bulk requests.
    pub batch: bool,
    /// Changes accept dry runs.
    pub dry_run: bool,
}

/// A connector's description of itself, for one tenant.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct ConnectorInfo {
    /// Machine name.
    pub name: String,
    /// Semver.
    pub version: String,
    /// The application it manages.
    pub application: String,
    /// Entitlement kinds.
    pub entitlement_kinds: Vec<String>,
    /// Exclusion groups.
    pub exclusion_groups: Vec<ExclusionGroup>,
    /// Capabilities for this tenant.
    pub capabilities: Capabilities,
    /// JSON Schema of its settings.
    pub config_schema: String,
}

impl From<contract::ConnectorInfo> for ConnectorInfo {
    fn from(i: contract::ConnectorInfo) -> Self {
        let c = i.capabilities;
        ConnectorInfo {
            name: i.name,
            version: i.version,
            application: i.application,
            entitlement_kinds: i.entitlement_kinds,
            exclusion_groups: i
                .exclusion_groups
                .into_iter()
                .map(|g| ExclusionGroup {
                    id: g.id,
                    required: g.required,
                    description: g.description,
                })
                .collect(),
            capabilities: Capabilities {
                read_accounts: c.read_accounts,
                read_entitlements: c.read_entitlements,
                write: c.write,
                batch: c.batch,
                dry_run: c.dry_run,
            },
            config_schema: i.config_schema,
        }
    }
}

/// What a connection test found.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct ConnectionReport {
    /// What the tenant's settings leave out of reach.
    pub limitations: Vec<String>,
}

/// What happened to a change.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "kebab-case")]
pub enum ChangeOutcome {
    /// Made and confirmed.
    Applied,
    /// Held already; nothing sent.
    AlreadyInState,
    /// Accepted; completes later (an invitation).
    Pending,
    /// Dry run: would be made by `requests`.
    Planned,
}

/// A request the connector sent or, in a dry run, would send.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct PlannedRequest {
    /// HTTP method.
    pub method: String,
    /// Path relative to the service's base URL.
    pub path: String,
    /// JSON body.
    pub body: Option<String>,
}

/// An effect of a change beyond its entitlement.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(tag = "kind", rename_all = "kebab-case")]
pub enum Notice {
    /// The account can no longer reach some of its data.
    DataAccessLost {
        /// What it can no longer reach.
        data: Vec<String>,
        /// Whether the data is deleted.
        deleted: bool,
        /// Whether access returns with the entitlement given up.
        restored_on_return: bool,
        /// For people.
        message: String,
    },
}

impl From<contract::Notice> for Notice {
    fn from(n: contract::Notice) -> Self {
        match n {
            contract::Notice::DataAccessLost(l) => Notice::DataAccessLost {
                data: l.data,
                deleted: l.deleted,
                restored_on_return: l.restored_on_return,
                message: l.message,
            },
        }
    }
}

/// The result of one change.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct ChangeResult {
    /// What happened.
    pub outcome: ChangeOutcome,
    /// Entitlements the account lost to it.
    pub replaced: Vec<String>,
    /// The account after it, where it exists.
    pub account: Option<Account>,
    /// For people.
    pub detail: String,
    /// The writes sent (planned, in a dry run).
    pub requests: Vec<PlannedRequest>,
    /// Effects beyond the entitlement.
    pub notices: Vec<Notice>,
}

impl From<contract::ChangeResult> for ChangeResult {
    fn from(r: contract::ChangeResult) -> Self {
        ChangeResult {
            outcome: match r.outcome {
                contract::ChangeOutcome::Applied => ChangeOutcome::Applied,
                contract::ChangeOutcome::AlreadyInState => ChangeOutcome::AlreadyInState,
                contract::ChangeOutcome::Pending => ChangeOutcome::Pending,
                contract::ChangeOutcome::Planned => ChangeOutcome::Planned,
            },
            replaced: r.replaced,
            account: r.account.map(Account::from),
            detail: r.detail,
            requests: r
                .requests
                .into_iter()
                .map(|p| PlannedRequest { method: p.method, path: p.path, body: p.body })
                .collect(),
            notices: r.notices.into_iter().map(Notice::from).collect(),
        }
    }
}

/// An account, by id or by email.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum AccountRef {
    /// The account's id.
    Id(String),
    /// Its email address, in any case.
    Email(String),
}

impl From<AccountRef> for contract::AccountRef {
    fn from(r: AccountRef) -> Self {
        match r {
            AccountRef::Id(id) => contract::AccountRef::Id(id),
            AccountRef::Email(email) => contract::AccountRef::Email(email),
        }
    }
}

/// A grant or revoke of one entitlement.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ChangeRequest {
    /// The account.
    pub account: AccountRef,
    /// The entitlement id.
    pub entitlement: String,
    /// Plan only: return `planned` and the requests, send nothing.
    #[serde(default)]
    pub dry_run: bool,
}

/// Making an entitlement the one an account holds in its exclusion group.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SetRequest {
    /// The account.
    pub account: AccountRef,
    /// The exclusion group.
    pub exclusion_group: String,
    /// The entitlement id.
    pub entitlement: String,
    /// Plan only.
    #[serde(default)]
    pub dry_run: bool,
}

/// What a change of a batch does.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum Action {
    /// Grant.
    Grant,
    /// Revoke.
    Revoke,
    /// Set within `exclusion_group`.
    Set,
}

/// One change of a batch.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct BatchChange {
    /// Grant, revoke or set.
    pub action: Action,
    /// The account.
    pub account: AccountRef,
    /// The entitlement id.
    pub entitlement: String,
    /// For `set`: the exclusion group.
    #[serde(default)]
    pub exclusion_group: Option<String>,
}

impl BatchChange {
    /// The contract's change, or why it is malformed.
    pub fn to_contract(&self) -> Result<contract::Change, String> {
        let account: contract::AccountRef = self.account.clone().into();
        let entitlement = self.entitlement.clone();
        Ok(match (self.action, &self.exclusion_group) {
            (Action::Grant, None) => {
                contract::Change::Grant(contract::EntitlementChange { account, entitlement })
            }
            (Action::Revoke, None) => {
                contract::Change::Revoke(contract::EntitlementChange { account, entitlement })
            }
            (Action::Set, Some(group)) => contract::Change::Set(contract::SetChange {
                account,
                exclusion_group: group.clone(),
                entitlement,
            }),
            (Action::Set, None) => return Err("a `set` change needs `exclusion_group`".into()),
            (_, Some(_)) => return Err("only a `set` change takes `exclusion_group`".into()),
        })
    }
}

/// A batch of changes, applied in one call.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct BatchRequest {
    /// The changes, in order.
    pub changes: Vec<BatchChange>,
    /// Plan only.
    #[serde(default)]
    pub dry_run: bool,
}

/// One change's result in a batch: the result, or the connector's error for it.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct BatchItemResult {
    /// The result, when the change was handled.
    pub result: Option<ChangeResult>,
    /// Why it failed, when it did.
    pub error: Option<ErrorBody>,
}

/// A batch's results, one per change in order.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct BatchResponse {
    /// The results.
    pub results: Vec<BatchItemResult>,
}

/// The one error shape of the API.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct ErrorBody {
    /// The class: `bad-request`, `unauthenticated`, `forbidden`, `not-found`, `conflict`,
    /// `payload-too-large`, `rate-limited`, `draining`, `connector` (the contract's error),
    /// `call` (the host stopped the call), `host`.
    #[serde(rename = "type")]
    pub kind: String,
    /// For people.
    pub message: String,
    /// The contract's error case (`invalid-argument`...) or the host's call-error class
    /// (`deadline`, `trap`...), when there is one.
    pub error: Option<String>,
    /// Seconds to wait before retrying, when throttled.
    pub retry_after_seconds: Option<u64>,
}

/// A setting's value.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(untagged)]
pub enum SettingValue {
    /// Text.
    Text(String),
    /// A whole number.
    Integer(i64),
    /// A flag.
    Flag(bool),
}

/// A credential injected into requests to an origin. The secret is given by reference (an
/// environment variable of the server, or a file it can read) or inline; it is never returned.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CredentialSpec {
    /// The origin it is sent to.
    pub origin: String,
    /// Only requests below this path get it.
    #[serde(default)]
    pub path_prefix: Option<String>,
    /// The bearer token, inline.
    #[serde(default)]
    pub bearer_token: Option<String>,
    /// The server's environment variable holding the token.
    #[serde(default)]
    pub bearer_token_env: Option<String>,
    /// A file on the server holding the token.
    #[serde(default)]
    pub bearer_token_file: Option<String>,
    /// Further headers.
    #[serde(default)]
    pub headers: BTreeMap<String, String>,
}

/// Per-call limits; absent fields use the server's defaults.
#[derive(Debug, Clone, Default, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct LimitsSpec {
    /// Wall-clock budget of a call.
    pub call_timeout_ms: Option<u64>,
    /// Memory cap.
    pub memory_mib: Option<u64>,
    /// Largest response body.
    pub max_response_bytes: Option<u64>,
    /// Requests in flight at once.
    pub max_concurrent_requests: Option<usize>,
}

/// A tenant to register (its id is the path's).
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TenantSpec {
    /// A connector name.
    pub connector: String,
    /// The customer it belongs to.
    #[serde(default)]
    pub customer: Option<String>,
    /// Origins it may reach.
    #[serde(default)]
    pub allowed_origins: Vec<String>,
    /// Settings.
    #[serde(default)]
    pub settings: BTreeMap<String, SettingValue>,
    /// Credentials.
    #[serde(default)]
    pub credentials: Vec<CredentialSpec>,
    /// Whether private and loopback addresses may be reached.
    #[serde(default)]
    pub allow_private_addresses: bool,
    /// Limits.
    #[serde(default)]
    pub limits: LimitsSpec,
}

/// A registered tenant, without its secrets.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct TenantSummary {
    /// Id.
    pub id: String,
    /// Its connector.
    pub connector: String,
    /// Its customer.
    pub customer: Option<String>,
}

/// A registered connector.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct ConnectorSummary {
    /// Its name.
    pub name: String,
}

/// How a batch job stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "kebab-case")]
pub enum JobState {
    /// Under way.
    Running,
    /// Every item reported.
    Done,
    /// Stopped by a cancellation: the items not sent are `not-attempted`.
    Cancelled,
}

/// A write request of a job's item, as sent, with the answer the host saw.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct ItemWrite {
    /// Method.
    pub method: String,
    /// Path.
    pub path: String,
    /// Status answered, if any came.
    pub status: Option<u16>,
}

impl From<ItemRequest> for ItemWrite {
    fn from(r: ItemRequest) -> Self {
        ItemWrite { method: r.method, path: r.path, status: r.status }
    }
}

/// One change of a job's item.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct ItemChange {
    /// `grant`, `revoke` or `set`.
    pub action: String,
    /// The entitlement.
    pub entitlement: String,
    /// `applied`, `pending`, `already-in-state`, `planned`, `not-applied` or `unknown`.
    pub status: String,
    /// For people.
    pub detail: String,
}

impl From<ChangeReport> for ItemChange {
    fn from(c: ChangeReport) -> Self {
        let status = serde_json::to_value(c.status)
            .ok()
            .and_then(|v| v.as_str().map(str::to_string))
            .unwrap_or_default();
        ItemChange {
            action: c.action.to_string(),
            entitlement: c.entitlement,
            status,
            detail: c.detail,
        }
    }
}

/// What became of one change of a job (each change of a job is an item of its own).
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct JobItem {
    /// Its index in the job's changes.
    pub index: usize,
    /// `applied`, `pending`, `already-in-state`, `planned`, `partial`, `failed`, `unknown` or
    /// `not-attempted` (never sent: the job was cancelled or stopped first).
    pub outcome: String,
    /// The change.
    pub changes: Vec<ItemChange>,
    /// The writes sent for it.
    pub requests: Vec<ItemWrite>,
    /// Which attempt reported it and sent its `requests`, when workers ran the job (a job
    /// whose worker died is run again by another, from its first unreported item).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub attempt: Option<u32>,
    /// Earlier attempts that were sending this item when they stopped, before they could
    /// report it: their writes may have reached the service, so an `already-in-state` here
    /// is most likely their doing, and no write was sent twice.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub interrupted: Vec<u32>,
}

impl From<ItemReport> for JobItem {
    fn from(r: ItemReport) -> Self {
        JobItem {
            index: r.item,
            outcome: r.outcome.as_str().to_string(),
            changes: r.changes.into_iter().map(ItemChange::from).collect(),
            requests: r.requests.into_iter().map(ItemWrite::from).collect(),
            attempt: None,
            interrupted: Vec::new(),
        }
    }
}

/// One run of a job by a worker.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct JobAttempt {
    /// 1 for the first.
    pub number: u32,
    /// The worker that ran it.
    pub worker: String,
    /// The first item it ran (the items before were reported by earlier attempts).
    pub from_item: usize,
    /// Whether it ended (finished or handed the job back); an attempt that never ends was
    /// lost with its worker.
    pub ended: bool,
}

/// A batch job: progress while it runs, every item's outcome once reported.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct Job {
    /// Its id.
    pub id: String,
    /// The tenant.
    pub tenant: String,
    /// Running, done or cancelled.
    pub state: JobState,
    /// Whether it only plans.
    pub dry_run: bool,
    /// Changes in the job.
    pub total: usize,
    /// Changes whose outcome is reported.
    pub reported: usize,
    /// Of those, made (applied or pending).
    pub applied: usize,
    /// Of those, held already.
    pub already_in_state: usize,
    /// Of those, never sent.
    pub not_attempted: usize,
    /// Of those, failed or unknown.
    pub failed: usize,
    /// Why it stopped early, if it did.
    pub stopped: Option<String>,
    /// The items reported so far (with `?items=true`).
    pub items: Option<Vec<JobItem>>,
    /// The runs of the job, when workers ran it.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub attempts: Vec<JobAttempt>,
}

impl Job {
    /// Job `id` of `spec`, as it starts.
    pub fn new(id: &str, spec: &crate::jobs::JobSpec) -> Self {
        Job {
            id: id.to_string(),
            tenant: spec.tenant.clone(),
            state: JobState::Running,
            dry_run: spec.dry_run,
            total: spec.changes.len(),
            reported: 0,
            applied: 0,
            already_in_state: 0,
            not_attempted: 0,
            failed: 0,
            stopped: None,
            items: None,
            attempts: Vec::new(),
        }
    }

    /// Counts an item reported `outcome`.
    pub fn count(&mut self, outcome: ItemOutcome) {
        self.reported += 1;
        match outcome {
            ItemOutcome::Applied | ItemOutcome::Pending | ItemOutcome::Planned => self.applied += 1,
            ItemOutcome::AlreadyInState => self.already_in_state += 1,
            ItemOutcome::NotAttempted => self.not_attempted += 1,
            ItemOutcome::Partial | ItemOutcome::Failed | ItemOutcome::Unknown => self.failed += 1,
        }
    }
}
