//! The listings the connector's cursors point into; the cursors themselves are the SDK's
//! (opaque, bound to the workspace, tamper-checked).

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
