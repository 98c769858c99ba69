//! The versions of the contract the host runs, and the adapter that runs a component built
//! against an earlier one.
//!
//! The host speaks the current version (`wit/`) to its callers. A component exporting an
//! earlier version is called through that version's bindings and its answers are lifted into
//! the current types, so a platform never sees which version a connector was built against.
//! Each earlier version has one adapter here and its WIT under `wit/legacy/<version>/`; the
//! 0.1.0 build of the ChatGPT connector is kept in `tests/fixtures/` to test it.

use crate::bindings::types as current;
use crate::bindings::v0_1::types as v0_1;

/// A version of the contract a component may export.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ContractVersion {
    /// 0.1.0: change results carry no notices.
    V0_1,
    /// 0.2.0, the current version: change results carry notices.
    V0_2,
}

impl ContractVersion {
    /// Every version the host runs, newest first.
    pub const ALL: [ContractVersion; 2] = [ContractVersion::V0_2, ContractVersion::V0_1];

    /// The contract interface a component of this version exports.
    pub fn export_name(self) -> &'static str {
        match self {
            ContractVersion::V0_1 => "accessgov:connector/connector@0.1.0",
            ContractVersion::V0_2 => "accessgov:connector/connector@0.2.0",
        }
    }

    /// The version whose interface `export` names, if the host runs it.
    pub fn of_export(export: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|v| v.export_name() == export)
    }
}

/// Converts between a type of one contract version and its counterpart in another.
pub trait Adapt<T> {
    /// The counterpart of `self`.
    fn adapt(self) -> T;
}

macro_rules! same {
    ($($t:ty),*) => {$(
        impl Adapt<$t> for $t {
            fn adapt(self) -> $t {
                self
            }
        }
    )*};
}
same!((), String, bool, u32, u64);

impl<A: Adapt<B>, B> Adapt<Vec<B>> for Vec<A> {
    fn adapt(self) -> Vec<B> {
        self.into_iter().map(Adapt::adapt).collect()
    }
}

impl<A: Adapt<B>, B> Adapt<Option<B>> for Option<A> {
    fn adapt(self) -> Option<B> {
        self.map(Adapt::adapt)
    }
}

impl<A: Adapt<B>, B, E: Adapt<F>, F> Adapt<Result<B, F>> for Result<A, E> {
    fn adapt(self) -> Result<B, F> {
        self.map(Adapt::adapt).map_err(Adapt::adapt)
    }
}

/// Records whose fields are the same in both versions, converted field by field from `$from`
/// to `$to`; fields only `$to` has get the value given after `+`.
macro_rules! records {
    ($from:ident => $to:ident: $($name:ident { $($field:ident),* $(+ $extra:ident: $value:expr)? })*) => {$(
        impl Adapt<$to::$name> for $from::$name {
            fn adapt(self) -> $to::$name {
                $to::$name { $($field: self.$field.adapt(),)* $($extra: $value)? }
            }
        }
    )*};
}

/// Variants whose cases are the same in both versions, each with one payload or none.
macro_rules! variants {
    ($from:ident => $to:ident: $($name:ident { $($case:ident $(($payload:ident))?),* })*) => {$(
        impl Adapt<$to::$name> for $from::$name {
            fn adapt(self) -> $to::$name {
                match self {
                    $($from::$name::$case $(($payload))? => $to::$name::$case $(($payload.adapt()))?,)*
                }
            }
        }
    )*};
}

// What a call sends: current to 0.1.0.
records!(current => v0_1:
    PageRequest { cursor, size }
    ChangeOptions { dry_run }
    EntitlementChange { account, entitlement }
    SetChange { account, exclusion_group, entitlement }
);
variants!(current => v0_1:
    AccountRef { Id(id), Email(email) }
    Change { Grant(change), Revoke(change), Set(change) }
);

// What a call answers: 0.1.0 to current. A 0.1.0 connector states no notices.
records!(v0_1 => current:
    RateLimit { retry_after_ms, message }
    Account { id, email, display_name, status, entitlements, managed_by, created_at }
    AccountPage { accounts, next_cursor }
    Entitlement { id, kind, display_name, description, exclusion_group, grantable }
    EntitlementPage { entitlements, next_cursor }
    ExclusionGroup { id, required, description }
    Capabilities { read_accounts, read_entitlements, write, batch, dry_run }
    ConnectorInfo {
        name, version, application, entitlement_kinds, exclusion_groups, capabilities,
        config_schema
    }
    PlannedRequest { method, path, body }
    ChangeResult { outcome, replaced, account, detail, requests + notices: Vec::new() }
);

/// A 0.1.0 connector's successful test states no limitations.
impl Adapt<current::ConnectionReport> for () {
    fn adapt(self) -> current::ConnectionReport {
        current::ConnectionReport { limitations: Vec::new() }
    }
}
variants!(v0_1 => current:
    ConnectorError {
        InvalidConfig(m), Unauthenticated(m), PermissionDenied(m), NotFound(m),
        InvalidArgument(m), Conflict(m), ManagedExternally(m), RateLimited(limit),
        Unavailable(m), Timeout(m), Unsupported(m), Internal(m)
    }
    AccountStatus { Active, Invited, Suspended }
    ChangeOutcome { Applied, AlreadyInState, Pending, Planned }
);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_change_goes_down_and_a_result_comes_up_unchanged_but_for_notices() {
        let change = current::Change::Set(current::SetChange {
            account: current::AccountRef::Email("ann@x.com".into()),
            exclusion_group: "role".into(),
            entitlement: "role:admin".into(),
        });
        let down: v0_1::Change = change.adapt();
        let v0_1::Change::Set(set) = down else { panic!("{down:?}") };
        assert!(matches!(set.account, v0_1::AccountRef::Email(e) if e == "ann@x.com"));
        assert_eq!(
            (set.exclusion_group.as_str(), set.entitlement.as_str()),
            ("role", "role:admin")
        );

        let old = v0_1::ChangeResult {
            outcome: v0_1::ChangeOutcome::Planned,
            replaced: vec!["role:member".into()],
            account: None,
            detail: "would make ann@x.com Admin".into(),
            requests: vec![v0_1::PlannedRequest {
                method: "PATCH".into(),
                path: "/accounts/ws/users/u1".into(),
                body: Some(r#"{"role":"account-admin"}"#.into()),
            }],
        };
        let up: current::ChangeResult = old.adapt();
        assert_eq!(up.outcome, current::ChangeOutcome::Planned);
        assert_eq!(up.replaced, ["role:member"]);
        assert_eq!(up.requests[0].body.as_deref(), Some(r#"{"role":"account-admin"}"#));
        assert!(up.notices.is_empty());

        let error: Result<current::ChangeResult, current::ConnectorError> =
            Err::<v0_1::ChangeResult, _>(v0_1::ConnectorError::RateLimited(v0_1::RateLimit {
                retry_after_ms: Some(1500),
                message: "slow down".into(),
            }))
            .adapt();
        assert_eq!(
            error,
            Err(current::ConnectorError::RateLimited(current::RateLimit {
                retry_after_ms: Some(1500),
                message: "slow down".into()
            }))
        );
    }

    #[test]
    fn versions_are_found_by_their_exact_export_name() {
        assert_eq!(
            ContractVersion::of_export("accessgov:connector/connector@0.1.0"),
            Some(ContractVersion::V0_1)
        );
        assert_eq!(
            ContractVersion::of_export("accessgov:connector/connector@0.2.0"),
            Some(ContractVersion::V0_2)
        );
        assert_eq!(ContractVersion::of_export("accessgov:connector/connector@0.3.0"), None);
    }
}
