//! The ChatGPT entitlement model: which entitlements exist and how they map to console values.

use connector_sdk::types::{Entitlement, ExclusionGroup};

/// Id of the workspace-access entitlement.
pub const WORKSPACE: &str = "workspace";
/// Exclusion group of roles.
pub const ROLE_GROUP: &str = "role";
/// Exclusion group of seat types.
pub const SEAT_GROUP: &str = "seat";

/// A role: entitlement id, console value, display name, description.
#[derive(Debug)]
pub struct Role {
    /// Entitlement id.
    pub id: &'static str,
    /// Value in the console API.
    pub console: &'static str,
    /// Display name.
    pub name: &'static str,
    /// What it allows.
    pub description: &'static str,
    /// Whether only Enterprise workspaces have it.
    pub enterprise_only: bool,
}

/// A seat type: entitlement id, console value, display name, description.
#[derive(Debug)]
pub struct Seat {
    /// Entitlement id.
    pub id: &'static str,
    /// Value in the console API.
    pub console: &'static str,
    /// Display name.
    pub name: &'static str,
    /// What it includes.
    pub description: &'static str,
    /// Whether it is the Codex-only seat, which not every plan has.
    pub codex: bool,
}

/// Every workspace role.
pub const ROLES: [Role; 4] = [
    Role {
        id: "role:owner",
        console: "account-owner",
        name: "Owner",
        description: "Full control of the workspace, including roles, seats and billing",
        enterprise_only: false,
    },
    Role {
        id: "role:admin",
        console: "account-admin",
        name: "Admin",
        description: "Manages members and workspace settings",
        enterprise_only: false,
    },
    Role {
        id: "role:member",
        console: "standard-user",
        name: "Member",
        description: "Uses ChatGPT in the workspace",
        enterprise_only: false,
    },
    Role {
        id: "role:analytics-viewer",
        console: "analytics-viewer",
        name: "Analytics Viewer",
        description: "Views workspace usage analytics (Enterprise only)",
        enterprise_only: true,
    },
];

/// The Owner role, the only one that may change roles and seat types or give the Owner role.
pub const OWNER: &Role = &ROLES[0];

/// Every seat type.
pub const SEATS: [Seat; 2] = [
    Seat {
        id: "seat:chatgpt",
        console: "default",
        name: "ChatGPT",
        description: "ChatGPT seat (includes Codex)",
        codex: false,
    },
    Seat {
        id: "seat:codex",
        console: "usage_based",
        name: "Codex",
        description: "Codex only, pay as you go; no access to chats, memories or projects",
        codex: true,
    },
];

/// The role a console value names, if known.
pub fn role_by_console(value: &str) -> Option<&'static Role> {
    ROLES.iter().find(|r| r.console == value)
}

/// The seat type a console value names, if known.
pub fn seat_by_console(value: &str) -> Option<&'static Seat> {
    SEATS.iter().find(|s| s.console == value)
}

/// Entitlement id for a console role value; an unknown value keeps its raw name so nothing is lost.
pub fn role_entitlement(console: &str) -> String {
    role_by_console(console).map_or_else(|| format!("role:{console}"), |r| r.id.to_string())
}

/// Entitlement id for a console seat value; an unknown value keeps its raw name.
pub fn seat_entitlement(console: &str) -> String {
    seat_by_console(console).map_or_else(|| format!("seat:{console}"), |s| s.id.to_string())
}

/// The exclusion groups used by the entitlements.
pub fn exclusion_groups() -> Vec<ExclusionGroup> {
    vec![
        ExclusionGroup {
            id: ROLE_GROUP.to_string(),
            required: true,
            description: "Every member has exactly one workspace role".to_string(),
        },
        ExclusionGroup {
            id: SEAT_GROUP.to_string(),
            required: true,
            description: "Every member has exactly one seat type".to_string(),
        },
    ]
}

/// The fixed entitlements a workspace can hold: workspace access, the roles and seat types for
/// which `role_exists` and `seat_exists` hold (the plan's, see `workspace`), in listing order.
pub fn fixed_entitlements(
    role_exists: impl Fn(&Role) -> bool,
    seat_exists: impl Fn(&Seat) -> bool,
) -> Vec<Entitlement> {
    let mut all = vec![Entitlement {
        id: WORKSPACE.to_string(),
        kind: "access".to_string(),
        display_name: "Workspace access".to_string(),
        description: "Membership of the ChatGPT workspace (granting invites the person)"
            .to_string(),
        exclusion_group: None,
        grantable: true,
    }];
    all.extend(ROLES.iter().filter(|r| role_exists(r)).map(|r| Entitlement {
        id: r.id.to_string(),
        kind: "role".to_string(),
        display_name: r.name.to_string(),
        description: r.description.to_string(),
        exclusion_group: Some(ROLE_GROUP.to_string()),
        grantable: true,
    }));
    all.extend(SEATS.iter().filter(|s| seat_exists(s)).map(|s| Entitlement {
        id: s.id.to_string(),
        kind: "seat".to_string(),
        display_name: s.name.to_string(),
        description: s.description.to_string(),
        exclusion_group: Some(SEAT_GROUP.to_string()),
        grantable: true,
    }));
    all
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn maps_console_values_both_ways() {
        assert_eq!(role_entitlement("account-admin"), "role:admin");
        assert_eq!(role_entitlement("billing-viewer"), "role:billing-viewer");
        assert_eq!(seat_entitlement("usage_based"), "seat:codex");
        assert_eq!(fixed_entitlements(|_| true, |_| true).len(), 7);
        let ids: Vec<String> = fixed_entitlements(|r| !r.enterprise_only, |s| !s.codex)
            .into_iter()
            .map(|e| e.id)
            .collect();
        assert_eq!(ids, ["workspace", "role:owner", "role:admin", "role:member", "seat:chatgpt"]);
    }
}
