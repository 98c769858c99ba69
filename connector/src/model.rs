//! Plain-Rust mirrors of the contract's records, so the logic does not depend on generated bindings.

/// Lifecycle state of an account.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AccountStatus {
    /// A member who can sign in.
    Active,
    /// A pending invitation.
    Invited,
    /// A deactivated member.
    Suspended,
}

/// A member or pending invitation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Account {
    /// Member id (`user-...`) or `invite:<invite id>`.
    pub id: String,
    /// Email address.
    pub email: Option<String>,
    /// Name shown to people.
    pub display_name: Option<String>,
    /// Lifecycle state.
    pub status: AccountStatus,
    /// Entitlement ids held.
    pub entitlements: Vec<String>,
    /// `scim` when the identity provider owns the account.
    pub managed_by: Option<String>,
    /// Creation time, RFC 3339.
    pub created_at: Option<String>,
}

/// A way to name an account.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AccountRef {
    /// By account id.
    Id(String),
    /// By email, case-insensitively.
    Email(String),
}

/// Which page to return.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PageRequest {
    /// Cursor from the previous page.
    pub cursor: Option<String>,
    /// Preferred page size.
    pub size: Option<u32>,
}

/// A page of items and the cursor of the next one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Page<T> {
    /// The items.
    pub items: Vec<T>,
    /// Cursor of the next page; none on the last.
    pub next_cursor: Option<String>,
}

/// Something an account can hold.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entitlement {
    /// Stable id such as `role:admin`.
    pub id: String,
    /// Kind: `access`, `role`, `seat` or `group`.
    pub kind: String,
    /// Name shown to people.
    pub display_name: String,
    /// What holding it means.
    pub description: String,
    /// Exclusion group, if exclusive.
    pub exclusion_group: Option<String>,
    /// Whether grant and revoke accept it.
    pub grantable: bool,
}

/// A set of mutually exclusive entitlements.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExclusionGroup {
    /// Identifier.
    pub id: String,
    /// Every account holds exactly one when true.
    pub required: bool,
    /// What it decides.
    pub description: String,
}

/// What the connector can do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Capabilities {
    /// Listing and reading accounts.
    pub read_accounts: bool,
    /// Listing entitlements.
    pub read_entitlements: bool,
    /// Grant, revoke, set.
    pub write: bool,
    /// Bulk changes.
    pub batch: bool,
    /// Dry runs.
    pub dry_run: bool,
}

/// Describes the connector.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConnectorInfo {
    /// Machine name.
    pub name: String,
    /// Connector version.
    pub version: String,
    /// Application managed.
    pub application: String,
    /// Entitlement kinds.
    pub entitlement_kinds: Vec<String>,
    /// Exclusion groups.
    pub exclusion_groups: Vec<ExclusionGroup>,
    /// Capabilities.
    pub capabilities: Capabilities,
    /// JSON Schema of the settings.
    pub config_schema: String,
}

/// What a change does to its entitlement.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ChangeAction {
    /// Make the account hold it.
    Grant,
    /// Make the account stop holding it.
    Revoke,
    /// Make it the one the account holds in this exclusion group.
    Set {
        /// The exclusion group named by the caller.
        group: String,
    },
}

/// One requested change.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Change {
    /// Grant, revoke or set.
    pub action: ChangeAction,
    /// The account.
    pub account: AccountRef,
    /// The entitlement id.
    pub entitlement: String,
}

/// What happened to a change.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// Made and confirmed.
    Applied,
    /// Nothing to do; nothing sent.
    AlreadyInState,
    /// Accepted; completes when the person accepts the invite.
    Pending,
    /// Dry run: would be made by the listed requests.
    Planned,
}

/// A write request sent, or planned in a dry run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PlannedRequest {
    /// HTTP method.
    pub method: String,
    /// Path below the base URL.
    pub path: String,
    /// JSON body.
    pub body: Option<String>,
}

/// The result of one change.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChangeResult {
    /// What happened.
    pub outcome: Outcome,
    /// Entitlements displaced by an exclusive grant.
    pub replaced: Vec<String>,
    /// The account afterwards (projected, in a dry run), if it still exists.
    pub account: Option<Account>,
    /// What was done, for people.
    pub detail: String,
    /// Write requests sent or planned.
    pub requests: Vec<PlannedRequest>,
}
