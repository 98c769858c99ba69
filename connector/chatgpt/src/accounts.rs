//! The connector's ids and records: the grammar of account, invite and group ids and of email
//! addresses, and the mapping of console and SCIM records to the contract's accounts and
//! entitlements. A leaf: it imports none of the modules that plan or read.

use connector_sdk::ConnectorError;
pub use connector_sdk::refs::{reference_key, shown, validate_email, validate_id};
use connector_sdk::types::{Account, AccountStatus, Entitlement};

use crate::api::{AdminUser, ConsoleGroupInfo, Invite, JoinRequest, Member};
use crate::catalog;

/// Prefix of the ids of accounts that are pending invites, so an id says which listing holds it.
pub const INVITE_ID_PREFIX: &str = "invite:";

/// Prefix of the ids of accounts that are pending join requests.
pub const REQUEST_ID_PREFIX: &str = "request:";

/// Prefix of group entitlement ids.
pub const GROUP_PREFIX: &str = "group:";

/// The group id an entitlement id names, if it names a group.
pub fn group_id(entitlement: &str) -> Option<Result<&str, ConnectorError>> {
    let id = entitlement.strip_prefix(GROUP_PREFIX)?;
    let valid = !id.is_empty()
        && id.len() <= 256
        && !id.chars().any(|c| c.is_whitespace() || c.is_control());
    Some(if valid {
        Ok(id)
    } else {
        Err(ConnectorError::InvalidArgument(format!(
            "{entitlement:?} is not a group entitlement: `group:` must be followed by a group id (1 to 256 characters, no spaces)"
        )))
    })
}

/// Above this many people, read the whole workspace once instead of looking each one up.
pub const SNAPSHOT_THRESHOLD: usize = 20;

/// The key of a pending invite: `invite:<id>`.
pub fn invite_key(invite: &Invite) -> String {
    format!("{}{}", INVITE_ID_PREFIX, invite.id)
}

/// The key of a pending join request: `request:<id>`.
pub fn request_key(request: &JoinRequest) -> String {
    format!("{}{}", REQUEST_ID_PREFIX, request.id)
}

/// The account of a pending join request: someone who asked to join and holds nothing yet.
pub fn request_account(request: JoinRequest) -> Account {
    Account {
        id: request_key(&request),
        email: Some(request.email),
        display_name: request.name.filter(|n| !n.is_empty()),
        status: AccountStatus::Requested,
        entitlements: Vec::new(),
        managed_by: None,
        created_at: request.created_time,
    }
}

/// The account of a member as the Admin API lists it: an active member, seat types under the
/// Admin API's names (`chatgpt`, `codex`).
pub fn admin_user_account(user: AdminUser) -> Account {
    let seat = match user.seat_type.as_str() {
        "chatgpt" => "seat:chatgpt".to_string(),
        "codex" => "seat:codex".to_string(),
        other => format!("seat:{other}"),
    };
    Account {
        id: user.id,
        email: user.email,
        display_name: user.name.filter(|n| !n.is_empty()),
        status: AccountStatus::Active,
        entitlements: vec![
            catalog::WORKSPACE.to_string(),
            catalog::role_entitlement(&user.role),
            seat,
        ],
        managed_by: user.is_scim_managed.then(|| "scim".to_string()),
        created_at: user.created_at.and_then(connector_sdk::time::rfc3339_from_unix),
    }
}

/// The entitlement of a console group.
pub fn console_group_entitlement(group: &ConsoleGroupInfo) -> Entitlement {
    let what = match group.description.as_deref().filter(|d| !d.is_empty()) {
        Some(description) => format!("{description}; "),
        None => String::new(),
    };
    let synced = if group.is_scim_managed {
        "; synced by SCIM: its members are changed in the identity provider"
    } else {
        ""
    };
    Entitlement {
        id: format!("{GROUP_PREFIX}{}", group.id),
        kind: "console-group".to_string(),
        display_name: group.name.clone(),
        description: format!(
            "Member of the console group {:?} ({what}gates GPTs, projects and apps){synced}",
            group.name
        ),
        exclusion_group: None,
        grantable: !group.is_scim_managed,
    }
}

/// The account of a console member.
pub fn member_account(member: Member) -> Account {
    Account {
        id: member.id,
        email: Some(member.email),
        display_name: member.name.filter(|n| !n.is_empty()),
        status: if member.deactivated_time.is_some() {
            AccountStatus::Suspended
        } else {
            AccountStatus::Active
        },
        entitlements: vec![
            catalog::WORKSPACE.to_string(),
            catalog::role_entitlement(&member.role),
            catalog::seat_entitlement(&member.seat_type),
        ],
        managed_by: member.is_scim_managed.then(|| "scim".to_string()),
        created_at: member.created_time,
    }
}
