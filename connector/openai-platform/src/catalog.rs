//! The entitlement ids this connector knows, and what each names. A leaf.

use connector_sdk::ConnectorError;
use connector_sdk::refs::{path_id, shown};
use connector_sdk::types::{Entitlement, ExclusionGroup};

/// Being in the organization: a member, or invited.
pub const ORGANIZATION: &str = "organization";
/// The exclusion group of the organization roles.
pub const ORG_ROLE_GROUP: &str = "org-role";
/// The organization roles, as the Admin API names them.
pub const ORG_ROLES: [&str; 2] = ["owner", "reader"];
/// The role an invite carries when a change names none.
pub const DEFAULT_ORG_ROLE: &str = "reader";
/// The project roles a person can hold.
pub const PROJECT_ROLES: [&str; 2] = ["owner", "member"];
/// Held by every organization owner: owners are owners of every project without being its
/// members.
pub const EVERY_PROJECT_OWNER: &str = "project:*:owner";

/// The entitlement kinds.
pub const KINDS: [&str; 5] = ["access", "org-role", "project-role", "group", "custom-role"];

/// What an entitlement id names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Target {
    /// `organization`.
    Organization,
    /// `org-role:<role>`.
    OrgRole(&'static str),
    /// `project:<id>:<role>`.
    Project {
        /// The project id.
        id: String,
        /// `owner` or `member`.
        role: &'static str,
    },
    /// `project:*:owner`, held only by being an organization owner.
    EveryProject,
    /// `group:<id>`.
    Group(String),
    /// `role:<id>`, a custom role of the organization.
    CustomRole(String),
}

/// Reads an entitlement id, refusing one this connector does not know.
pub fn parse(id: &str) -> Result<Target, ConnectorError> {
    let unknown = || {
        ConnectorError::NotFound(format!(
            "no entitlement {}; see list-entitlements (organization, org-role:*, project:<id>:owner|member, group:<id>, role:<id>)",
            shown(id)
        ))
    };
    if id.trim().is_empty() {
        return Err(ConnectorError::InvalidArgument("the entitlement id is empty".to_string()));
    }
    if id == ORGANIZATION {
        return Ok(Target::Organization);
    }
    if id == EVERY_PROJECT_OWNER {
        return Ok(Target::EveryProject);
    }
    if let Some(role) = id.strip_prefix("org-role:") {
        return ORG_ROLES
            .iter()
            .find(|r| **r == role)
            .map(|r| Target::OrgRole(r))
            .ok_or_else(unknown);
    }
    if let Some(rest) = id.strip_prefix("project:") {
        let (project, role) = rest.rsplit_once(':').ok_or_else(unknown)?;
        let role = PROJECT_ROLES.iter().find(|r| **r == role).ok_or_else(unknown)?;
        let project = path_id(project, "project id")?;
        return Ok(Target::Project { id: project.to_string(), role });
    }
    if let Some(group) = id.strip_prefix("group:") {
        return Ok(Target::Group(path_id(group, "group id")?.to_string()));
    }
    if let Some(role) = id.strip_prefix("role:") {
        return Ok(Target::CustomRole(path_id(role, "role id")?.to_string()));
    }
    Err(unknown())
}

/// `org-role:<role>`.
pub fn org_role(role: &str) -> String {
    format!("org-role:{role}")
}

/// `project:<id>:<role>`.
pub fn project_role(project: &str, role: &str) -> String {
    format!("project:{project}:{role}")
}

/// The exclusion group of a project's roles.
pub fn project_group(project: &str) -> String {
    format!("project:{project}")
}

/// `group:<id>`.
pub fn group(id: &str) -> String {
    format!("group:{id}")
}

/// `role:<id>`.
pub fn custom_role(id: &str) -> String {
    format!("role:{id}")
}

/// The exclusion groups `info` lists. Each project is an exclusion group of its own too
/// (`project:<id>`, not required), named on its entitlements.
pub fn exclusion_groups() -> Vec<ExclusionGroup> {
    vec![ExclusionGroup {
        id: ORG_ROLE_GROUP.to_string(),
        required: true,
        description: "The person's role in the organization: owner or reader. Each project's roles form a group of their own, `project:<id>`, of which a person holds at most one.".to_string(),
    }]
}

/// The entitlements every organization has: access, its two roles, and owning every project.
pub fn fixed_entitlements() -> Vec<Entitlement> {
    vec![
        Entitlement {
            id: ORGANIZATION.to_string(),
            kind: "access".to_string(),
            display_name: "Organization".to_string(),
            description: "Membership of the organization; a grant invites the person (as a reader unless a role is given), a revoke removes the member or deletes the invite".to_string(),
            exclusion_group: None,
            grantable: true,
        },
        Entitlement {
            id: org_role("owner"),
            kind: "org-role".to_string(),
            display_name: "Organization owner".to_string(),
            description: "Manages the organization: its people, projects, billing and keys; owns every project".to_string(),
            exclusion_group: Some(ORG_ROLE_GROUP.to_string()),
            grantable: true,
        },
        Entitlement {
            id: org_role("reader"),
            kind: "org-role".to_string(),
            display_name: "Organization reader".to_string(),
            description: "Uses the projects they are a member of; revoking it is refused (revoke `organization` to remove them)".to_string(),
            exclusion_group: Some(ORG_ROLE_GROUP.to_string()),
            grantable: true,
        },
        Entitlement {
            id: EVERY_PROJECT_OWNER.to_string(),
            kind: "project-role".to_string(),
            display_name: "Owner of every project".to_string(),
            description: "Held by every organization owner, who owns every project without being listed as its member; it comes and goes with `org-role:owner`".to_string(),
            exclusion_group: None,
            grantable: false,
        },
    ]
}

/// The two role entitlements of a project.
pub fn project_entitlements(id: &str, name: &str, archived: bool) -> [Entitlement; 2] {
    let suffix = if archived { " (archived: shown, but its membership cannot change)" } else { "" };
    PROJECT_ROLES.map(|role| Entitlement {
        id: project_role(id, role),
        kind: "project-role".to_string(),
        display_name: format!(
            "{} of project {name}",
            if role == "owner" { "Owner" } else { "Member" }
        ),
        description: format!(
            "{} project {name} ({id}){suffix}",
            if role == "owner" { "Manages the members and keys of" } else { "Uses" }
        ),
        exclusion_group: Some(project_group(id)),
        grantable: !archived,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_read_back_as_what_they_name() {
        assert_eq!(parse("organization").unwrap(), Target::Organization);
        assert_eq!(parse("org-role:owner").unwrap(), Target::OrgRole("owner"));
        assert_eq!(
            parse("project:proj_a-1:member").unwrap(),
            Target::Project { id: "proj_a-1".into(), role: "member" }
        );
        assert_eq!(parse("project:*:owner").unwrap(), Target::EveryProject);
        assert_eq!(parse("group:g_1").unwrap(), Target::Group("g_1".into()));
        assert_eq!(parse("role:role_9").unwrap(), Target::CustomRole("role_9".into()));
        for id in [project_role("p", "owner"), group("g"), custom_role("r"), org_role("reader")] {
            assert!(parse(&id).is_ok(), "{id}");
        }
    }

    #[test]
    fn unknown_or_malformed_ids_are_refused_saying_why() {
        for id in ["org-role:admin", "project:p:admin", "project:p", "seat:codex", "group"] {
            assert!(matches!(parse(id), Err(ConnectorError::NotFound(_))), "{id}");
        }
        for id in ["", " ", "project:a/b:member", "group:../x", "role:a b"] {
            assert!(matches!(parse(id), Err(ConnectorError::InvalidArgument(_))), "{id}");
        }
    }
}
