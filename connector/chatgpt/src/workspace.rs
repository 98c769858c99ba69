//! What the workspace's plan allows: which roles and seat types it has, and how the seat of an
//! existing member changes. Read from the settings object the console already serves.

use crate::api::WorkspaceSettings;
use crate::catalog::{Role, Seat};

/// A ChatGPT plan, as the settings object's `plan_type` names it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Plan {
    /// ChatGPT Business (formerly Team).
    Business,
    /// ChatGPT Enterprise.
    Enterprise,
    /// ChatGPT Edu.
    Edu,
    /// ChatGPT for Teachers.
    Teachers,
    /// ChatGPT for Healthcare.
    Healthcare,
    /// A plan this connector does not know (or none named): only what every plan has is offered.
    Other(String),
}

impl Plan {
    /// The plan `plan_type` names.
    pub fn parse(plan_type: Option<&str>) -> Plan {
        match plan_type.map(str::to_ascii_lowercase).as_deref() {
            Some("business" | "team") => Plan::Business,
            Some("enterprise") => Plan::Enterprise,
            Some("edu") => Plan::Edu,
            Some("teachers") => Plan::Teachers,
            Some("healthcare") => Plan::Healthcare,
            other => Plan::Other(other.unwrap_or("not named").to_string()),
        }
    }

    /// The name people know the plan by.
    pub fn name(&self) -> &str {
        match self {
            Plan::Business => "Business",
            Plan::Enterprise => "Enterprise",
            Plan::Edu => "Edu",
            Plan::Teachers => "Teachers",
            Plan::Healthcare => "Healthcare",
            Plan::Other(name) => name,
        }
    }
}

/// How the seat type of an existing member changes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SeatChanges {
    /// Through the customer's OpenAI account manager, not the console (Enterprise and the
    /// education and healthcare plans).
    AccountManager,
    /// In the console, by an Owner (Business).
    SelfService,
}

impl SeatChanges {
    /// Reads the `seat-changes` setting's value.
    pub fn parse(value: &str) -> Option<SeatChanges> {
        match value {
            "account-manager" => Some(SeatChanges::AccountManager),
            "self-service" => Some(SeatChanges::SelfService),
            _ => None,
        }
    }
}

/// What the workspace's plan allows.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WorkspaceRules {
    /// The plan.
    pub plan: Plan,
    /// Seat type of invites that name none (console value).
    pub default_seat: String,
    /// Whether the workspace may hold Codex seats.
    pub codex_seats: bool,
    /// How an existing member's seat type changes.
    pub seat_changes: SeatChanges,
}

/// Why the plan does not allow an entitlement.
const CODEX_PLANS: &str = "Codex seats exist on Enterprise, and on Business workspaces that had \
                           one before 2026-06-24";

impl WorkspaceRules {
    /// The rules of the workspace whose settings are `settings`; `seat_changes` is the tenant's
    /// `seat-changes` setting, when it has one.
    pub fn from_settings(settings: &WorkspaceSettings, seat_changes: Option<SeatChanges>) -> Self {
        let plan = Plan::parse(settings.plan_type.as_deref());
        let codex_seats = match plan {
            Plan::Enterprise => true,
            // Since 2026-06-24 only a Business workspace that already had a Codex seat may add
            // one; the settings say which (absent: it may not).
            Plan::Business | Plan::Other(_) => settings.codex_seats_enabled.unwrap_or(false),
            Plan::Edu | Plan::Teachers | Plan::Healthcare => false,
        };
        let seat_changes = seat_changes.unwrap_or(match plan {
            Plan::Business => SeatChanges::SelfService,
            _ => SeatChanges::AccountManager,
        });
        WorkspaceRules {
            plan,
            default_seat: settings.default_seat_type.clone(),
            codex_seats,
            seat_changes,
        }
    }

    /// The rules of a workspace read without its console, on `plan` (as the tenant says): the
    /// console's defaults, which a tenant without a console never writes through.
    pub fn without_console(plan: Plan) -> Self {
        WorkspaceRules {
            codex_seats: plan == Plan::Enterprise,
            plan,
            default_seat: "default".to_string(),
            seat_changes: SeatChanges::AccountManager,
        }
    }

    /// The fixed entitlements the workspace's plan allows, in listing order.
    pub fn entitlements(&self) -> Vec<connector_sdk::types::Entitlement> {
        crate::catalog::fixed_entitlements(
            |role| self.role_allowed(role).is_ok(),
            |seat| self.seat_allowed(seat).is_ok(),
        )
    }

    /// Whether the workspace can hold `role`; if not, why.
    pub fn role_allowed(&self, role: &Role) -> Result<(), String> {
        if role.enterprise_only && self.plan != Plan::Enterprise {
            return Err(format!(
                "{} is not available on this workspace's plan ({}): the {} role exists on Enterprise only",
                role.id,
                self.plan.name(),
                role.name
            ));
        }
        Ok(())
    }

    /// Whether the workspace can hold `seat`; if not, why.
    pub fn seat_allowed(&self, seat: &Seat) -> Result<(), String> {
        if seat.codex && !self.codex_seats {
            return Err(format!(
                "{} is not available on this workspace's plan ({}{}): {CODEX_PLANS}",
                seat.id,
                self.plan.name(),
                if self.plan == Plan::Business { ", without Codex seats" } else { "" },
            ));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::catalog::{ROLES, SEATS};

    fn rules(plan: &str, codex: Option<bool>) -> WorkspaceRules {
        let settings = WorkspaceSettings {
            id: "ws".into(),
            default_seat_type: "default".into(),
            plan_type: Some(plan.into()),
            codex_seats_enabled: codex,
        };
        WorkspaceRules::from_settings(&settings, None)
    }

    #[test]
    fn each_plan_allows_what_the_reference_says() {
        let codex = &SEATS[1];
        let analytics = &ROLES[3];
        let allowed =
            |r: &WorkspaceRules| (r.seat_allowed(codex).is_ok(), r.role_allowed(analytics).is_ok());
        assert_eq!(allowed(&rules("enterprise", None)), (true, true));
        assert_eq!(allowed(&rules("business", Some(true))), (true, false));
        assert_eq!(allowed(&rules("business", None)), (false, false));
        for plan in ["edu", "teachers", "healthcare"] {
            assert_eq!(allowed(&rules(plan, Some(true))), (false, false), "{plan}");
        }
        let refused = rules("edu", None).seat_allowed(codex).unwrap_err();
        assert!(refused.contains("plan (Edu)"), "{refused}");
        assert_eq!(rules("enterprise", None).seat_changes, SeatChanges::AccountManager);
        assert_eq!(rules("business", None).seat_changes, SeatChanges::SelfService);
        assert_eq!(Plan::parse(None), Plan::Other("not named".into()));
    }
}
