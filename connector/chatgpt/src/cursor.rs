//! The listings the connector's cursors point into; the cursors themselves are the SDK's
//! (opaque, bound to the workspace, tamper-checked), and what a listing of accounts carries in
//! them.

use connector_sdk::ConnectorError;
use connector_sdk::cursor::Listing;

/// A position in one of the connector's listings, bound to the workspace.
pub type Cursor = connector_sdk::cursor::Cursor<Phase>;

/// Which listing a cursor points into.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Phase {
    /// Accounts: `GET /users`.
    Members,
    /// Accounts: `GET /invites`, after the members.
    Invites,
    /// Accounts: `GET /join_requests`, after the invites.
    Requests,
    /// The fixed entitlements.
    Entitlements,
    /// Entitlements: `GET /groups`, the console groups, after the fixed ones.
    ConsoleGroups,
    /// Entitlements: the SCIM directory's groups, after the console groups.
    ScimGroups,
}

impl Listing for Phase {
    fn code(self) -> char {
        match self {
            Phase::Members => 'm',
            Phase::Invites => 'i',
            Phase::Requests => 'r',
            Phase::Entitlements => 'e',
            Phase::ConsoleGroups => 'c',
            Phase::ScimGroups => 'g',
        }
    }
}

/// The most console groups holding anyone that a listing's cursor carries from one call to the
/// next; with more, each call reads the groups again. Bounds the cursor's length.
pub(crate) const CARRIED_GROUPS: usize = 32;

/// Whether a group id may ride in a cursor and, read back, go into a console path: one that may
/// stand as a path segment (what the console's ids are), so that a forged cursor cannot steer a
/// request elsewhere.
fn carriable(id: &str) -> bool {
    connector_sdk::refs::path_id(id, "console group id").is_ok()
}

/// What a listing's cursor carries of the console groups holding anyone (`held`): their ids,
/// comma-separated; none when there are too many, or one the cursor cannot carry.
pub(crate) fn carry_held_groups(held: &[String]) -> Option<String> {
    (held.len() <= CARRIED_GROUPS && held.iter().all(|id| carriable(id))).then(|| held.join(","))
}

/// The console groups holding anyone, as a cursor carried them.
pub(crate) fn carried_held_groups(carried: &str) -> Result<Vec<String>, ConnectorError> {
    if carried.is_empty() {
        return Ok(Vec::new());
    }
    let held: Vec<String> = carried.split(',').map(str::to_string).collect();
    if held.len() > CARRIED_GROUPS || !held.iter().all(|id| carriable(id)) {
        return Err(ConnectorError::InvalidArgument(format!(
            "the cursor's console groups ({carried:?}) are not ones a listing carries; start the listing again without a cursor"
        )));
    }
    Ok(held)
}
