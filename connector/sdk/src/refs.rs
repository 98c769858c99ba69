//! Account references as callers give them: email addresses and ids, checked before any
//! request is built from them, so a malformed one is refused naming what is wrong instead of
//! reaching the service (or a URL path) as it is.

use crate::types::{AccountRef, ConnectorError};

/// The key a reference is looked up by: the address in lowercase (services match addresses
/// case-insensitively), or the id as given.
pub fn reference_key(reference: &AccountRef) -> Result<String, ConnectorError> {
    match reference {
        AccountRef::Email(email) => Ok(validate_email(email)?.to_lowercase()),
        AccountRef::Id(id) => Ok(validate_id(id)?.to_string()),
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

/// An id that may stand as one segment of a URL path: 1 to 128 letters, digits, `-`, `_` or
/// `.` (not `.` or `..` alone). `what` names the id in the error, e.g. `project id`.
pub fn path_id<'a>(raw: &'a str, what: &str) -> Result<&'a str, ConnectorError> {
    let valid = !raw.is_empty()
        && raw.len() <= 128
        && raw != "."
        && raw != ".."
        && raw.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'));
    if valid {
        Ok(raw)
    } else {
        Err(ConnectorError::InvalidArgument(format!(
            "{} is not a {what} (1 to 128 letters, digits, `-`, `_` or `.`)",
            shown(raw)
        )))
    }
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

    #[test]
    fn path_ids_cannot_leave_their_segment() {
        for bad in ["", ".", "..", "a/b", "a?b", "a b", "proj%2F", &"p".repeat(129)] {
            assert!(path_id(bad, "project id").is_err(), "{bad}");
        }
        assert_eq!(path_id("proj_abc-1.2", "project id").unwrap(), "proj_abc-1.2");
    }
}
