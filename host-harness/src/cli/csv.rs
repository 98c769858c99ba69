//! OpenAI's bulk CSV (`email,role,seat type`) read into per-row intents.
//!
//! As OpenAI documents: values are case-insensitive; roles are `owner, admin, member,
//! analytics_viewer`, and a missing or unknown role becomes `member`; seat types are `ChatGPT`
//! and `Codex`, and a missing one becomes the workspace default. For people who are already
//! members, an empty role or seat column leaves that attribute as it is (the rule is about
//! invitations; a CSV that omits a column should not demote anyone).

use host_harness::types::{AccountRef, Change, EntitlementChange};

/// One valid row.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Row {
    /// 1-based line number in the file.
    pub line: usize,
    /// Lowercased email.
    pub email: String,
    /// `role:*` entitlement, if the row names (or defaults) a role.
    pub role: Option<String>,
    /// `seat:*` entitlement, if the row names a seat type.
    pub seat: Option<String>,
    /// Notes about defaults applied, for the result table.
    pub notes: Vec<String>,
}

/// A line that could not be read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Malformed {
    /// 1-based line number.
    pub line: usize,
    /// What is wrong.
    pub reason: String,
}

impl Row {
    /// The changes that make the person match the row: the role, the seat, or (neither named)
    /// just workspace access.
    pub fn changes(&self) -> Vec<Change> {
        let grant = |entitlement: &str| {
            Change::Grant(EntitlementChange {
                account: AccountRef::Email(self.email.clone()),
                entitlement: entitlement.to_string(),
            })
        };
        let mut changes: Vec<Change> =
            self.role.iter().chain(self.seat.iter()).map(|e| grant(e)).collect();
        if changes.is_empty() {
            changes.push(grant("workspace"));
        }
        changes
    }
}

/// Reads the CSV text: valid rows and malformed lines, each with its line number.
pub fn parse(text: &str) -> (Vec<Row>, Vec<Malformed>) {
    let mut rows = Vec::new();
    let mut malformed = Vec::new();
    let mut seen = std::collections::HashMap::new();
    for (index, raw) in text.lines().enumerate() {
        let line = index + 1;
        let trimmed = raw.trim().trim_start_matches('\u{feff}');
        if trimmed.is_empty() {
            continue;
        }
        let fields: Vec<String> =
            trimmed.split(',').map(|f| f.trim().trim_matches('"').trim().to_string()).collect();
        if line == 1 && fields[0].eq_ignore_ascii_case("email") {
            continue;
        }
        match parse_row(line, &fields) {
            Ok(row) => match seen.insert(row.email.clone(), line) {
                Some(first) => malformed.push(Malformed {
                    line,
                    reason: format!("{} already appears on line {first}", row.email),
                }),
                None => rows.push(row),
            },
            Err(reason) => malformed.push(Malformed { line, reason }),
        }
    }
    (rows, malformed)
}

fn parse_row(line: usize, fields: &[String]) -> Result<Row, String> {
    if fields.len() > 3 {
        return Err(format!(
            "expected at most 3 columns (email,role,seat type), found {}",
            fields.len()
        ));
    }
    let email = fields[0].to_lowercase();
    let valid = email.split_once('@').is_some_and(|(local, domain)| {
        !local.is_empty() && domain.contains('.') && !domain.contains('@') && !domain.ends_with('.')
    }) && !email.contains(char::is_whitespace);
    if !valid {
        return Err(format!("{:?} is not an email address", fields[0]));
    }
    let mut notes = Vec::new();
    let role_field = fields.get(1).map(|r| r.to_lowercase()).unwrap_or_default();
    let role = match role_field.replace([' ', '-'], "_").as_str() {
        "" => None,
        "owner" => Some("role:owner"),
        "admin" => Some("role:admin"),
        "member" => Some("role:member"),
        "analytics_viewer" => Some("role:analytics-viewer"),
        other => {
            notes.push(format!("unknown role {other:?} treated as member"));
            Some("role:member")
        }
    };
    let seat = match fields.get(2).map(|s| s.to_lowercase()).unwrap_or_default().as_str() {
        "" => None,
        "chatgpt" => Some("seat:chatgpt"),
        "codex" => Some("seat:codex"),
        other => return Err(format!("seat type {other:?} is not ChatGPT or Codex")),
    };
    Ok(Row { line, email, role: role.map(String::from), seat: seat.map(String::from), notes })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_openais_format_with_its_defaults() {
        let text = "email,role,seat type\nAnn@X.com,ADMIN,codex\nbob@x.com,,\ncid@x.com,boss,ChatGPT\nnot-an-email,member\ndan@x.com,member,Plus\n\nann@x.com,member\ne@x.com,a,b,c\n";
        let (rows, malformed) = parse(text);
        assert_eq!(rows.len(), 3);
        assert_eq!(rows[0].email, "ann@x.com");
        assert_eq!(rows[0].role.as_deref(), Some("role:admin"));
        assert_eq!(rows[0].seat.as_deref(), Some("seat:codex"));
        assert_eq!(rows[1].changes().len(), 1, "email only: workspace access");
        assert_eq!(rows[2].role.as_deref(), Some("role:member"));
        assert!(rows[2].notes[0].contains("boss"));
        let lines: Vec<usize> = malformed.iter().map(|m| m.line).collect();
        assert_eq!(lines, [5, 6, 8, 9]);
    }

    proptest::proptest! {
        #[test]
        fn any_text_parses_into_rows_and_numbered_errors(text in "(.{0,40}\\n){0,20}") {
            let (rows, malformed) = parse(&text);
            let lines = text.lines().count();
            proptest::prop_assert!(rows.len() + malformed.len() <= lines);
            for m in &malformed {
                proptest::prop_assert!(m.line >= 1 && m.line <= lines);
            }
        }
    }
}
