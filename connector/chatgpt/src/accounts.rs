//! The connector's ids and records: the grammar of account, invite and group ids and of email
//! addresses, and the mapping of console and SCIM records to the contract's accounts and
//! entitlements. A leaf: it imports none of the modules that plan or read.

use connector_sdk::ConnectorError;
use connector_sdk::types::{Account, AccountRef, AccountStatus, Entitlement};

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

/// The key a reference is looked up by: a lowercase email, a member id or `invite:<id>`.
pub fn reference_key(reference: &AccountRef) -> Result<String, ConnectorError> {
    match reference {
        AccountRef::Email(email) => Ok(validate_email(email)?.to_lowercase()),
        AccountRef::Id(id) => Ok(validate_id(id)?.to_string()),
    }
}

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

/// A valid email address, or why the service would refuse it.
pub fn validate_email(raw: &str) -> Result<String, ConnectorError> {
    let email = raw.trim();
    match email_problem(email) {
        None => Ok(email.to_string()),
        Some(problem) => Err(ConnectorError::InvalidArgument(format!(
            "{} is not an email address: {problem}",
            shown(raw)
        ))),
    }
}

/// The longest address (RFC 5321's path limit, less its angle brackets) and local part.
const MAX_EMAIL_CHARS: usize = 254;
const MAX_LOCAL_CHARS: usize = 64;

/// What is wrong with `email` as an address the service accepts: a dot-atom local part (RFC
/// 5322's atext; no quoted strings) and a domain of dot-separated labels of letters, digits and
/// inner hyphens. Hand-written: the guest keeps no email crate for thirty lines.
fn email_problem(email: &str) -> Option<String> {
    if email.chars().count() > MAX_EMAIL_CHARS {
        return Some(format!(
            "it is {} characters long; an address has at most {MAX_EMAIL_CHARS}",
            email.chars().count()
        ));
    }
    let Some((local, domain)) = email.rsplit_once('@') else {
        return Some("it has no `@`".to_string());
    };
    if local.is_empty() || local.chars().count() > MAX_LOCAL_CHARS {
        return Some(format!("the part before `@` must be 1 to {MAX_LOCAL_CHARS} characters"));
    }
    let atext = |c: char| c.is_alphanumeric() || "!#$%&'*+/=?^_`{|}~-".contains(c);
    if let Some(bad) = local.chars().find(|&c| !atext(c) && c != '.') {
        return Some(format!("{bad:?} is not allowed before the `@`"));
    }
    if local.starts_with('.') || local.ends_with('.') || local.contains("..") {
        return Some("dots before the `@` must stand between other characters".to_string());
    }
    let labels: Vec<&str> = domain.split('.').collect();
    if labels.len() < 2 {
        return Some(format!("the domain {domain:?} has no dot"));
    }
    for label in &labels {
        if label.is_empty() {
            return Some(format!("the domain {domain:?} has an empty label"));
        }
        if label.chars().count() > 63
            || label.starts_with('-')
            || label.ends_with('-')
            || !label.chars().all(|c| c.is_alphanumeric() || c == '-')
        {
            return Some(format!("{label:?} is not a domain label"));
        }
    }
    if labels.last().is_some_and(|tld| tld.chars().all(|c| c.is_ascii_digit())) {
        return Some(format!("the domain {domain:?} ends in a number"));
    }
    None
}

/// `raw` as errors quote it: whole when short, else its start and its length, so a 10 KB
/// argument does not come back as a 20 KB message.
pub fn shown(raw: &str) -> String {
    const SHOWN: usize = 64;
    if raw.chars().count() <= SHOWN {
        format!("{raw:?}")
    } else {
        let start: String = raw.chars().take(SHOWN).collect();
        format!("{start:?}... ({} bytes)", raw.len())
    }
}

/// A valid account id, or why it is not one.
pub fn validate_id(raw: &str) -> Result<&str, ConnectorError> {
    if raw.is_empty() || raw.len() > 256 || raw.chars().any(|c| c.is_whitespace() || c.is_control())
    {
        return Err(ConnectorError::InvalidArgument(format!(
            "{} is not an account id (1 to 256 characters, no spaces)",
            shown(raw)
        )));
    }
    Ok(raw)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addresses_the_service_would_refuse_are_refused_saying_why() {
        for (bad, why) in [
            ("a@qa..com", "empty label"),
            ("a@.com", "empty label"),
            ("x<script>@example.com", "'<' is not allowed"),
            ("hv3@qa.example.com;member;chatgpt", "\"com;member;chatgpt\" is not a domain label"),
            ("a.@x.com", "dots before"),
            ("a@x", "has no dot"),
            ("a@1.2.3.4", "ends in a number"),
            ("no-at.example.com", "no `@`"),
        ] {
            let error = validate_email(bad).unwrap_err();
            assert!(
                matches!(&error, ConnectorError::InvalidArgument(m) if m.contains(why)),
                "{bad}: {error:?}"
            );
        }
        let long = format!("{}@example.com", "a".repeat(403));
        let error = validate_email(&long).unwrap_err();
        assert!(
            matches!(&error, ConnectorError::InvalidArgument(m) if m.contains("415 characters long") && m.len() < 300),
            "{error:?}"
        );
        for good in ["ann@acme.com", "o'neil+tag@sub.example.co.uk", "Ren\u{e9}@b\u{fc}cher.de"] {
            assert!(validate_email(good).is_ok(), "{good}");
        }
        let error = validate_id(&"x ".repeat(5000)).unwrap_err();
        assert!(matches!(&error, ConnectorError::InvalidArgument(m) if m.len() < 200), "{error:?}");
    }
}
