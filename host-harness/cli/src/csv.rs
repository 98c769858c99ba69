//! OpenAI's bulk CSV (`email,role,seat type`) read into per-row intents.
//!
//! As OpenAI documents: values are case-insensitive; roles are `owner, admin, member,
//! analytics_viewer`, and a missing, unknown or not-permitted role becomes `member`; seat types
//! are `ChatGPT` and `Codex`, and a missing one becomes the workspace default. That rule is about
//! invitations: a CSV must never demote anyone by accident, so for people already in the
//! workspace an empty role or seat column leaves that attribute as it is, and an unknown role
//! (`ownr`) makes the row malformed. Which people are new is known only to the connector: a row
//! with an unknown role is held in [`Row::unknown_role`] until `apply` has looked the person up.
//!
//! Fields are read by the `csv` crate (RFC 4180: quoted fields with commas, doubled quotes,
//! CRLF line ends, a byte-order mark). Whether an address is an email is the connector's to
//! say: a row whose address it refuses fails with its reason and line number.

use accessgov_host::types::{AccountRef, Change, EntitlementChange};

/// The largest file `apply --csv` reads.
pub const MAX_CSV_BYTES: u64 = 16 << 20;
/// The most rows (lines with a person) one file may hold.
pub const MAX_CSV_ROWS: usize = 100_000;
/// The longest field kept; longer ones make their line malformed.
const MAX_FIELD_CHARS: usize = 512;

/// One valid row.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Row {
    /// 1-based line number in the file.
    pub line: usize,
    /// Lowercased email.
    pub email: String,
    /// `role:*` entitlement, if the row names (or defaults) a role.
    pub role: Option<String>,
    /// The role column's value when it names no role: the row changes no role until `apply`
    /// has decided (a new person becomes Member, an existing one makes the row malformed).
    pub unknown_role: Option<String>,
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

/// Why a file could not be read at all.
#[derive(Debug, thiserror::Error)]
pub enum CsvError {
    /// The file could not be read, or is larger than [`MAX_CSV_BYTES`].
    #[error("{path} {source}")]
    Read {
        /// The file.
        path: String,
        /// What failed.
        source: accessgov_policy::bounded_read::BoundedReadError,
    },
    /// The file holds more than [`MAX_CSV_ROWS`] rows.
    #[error("{path} has more than {MAX_CSV_ROWS} rows, the most `apply` reads at once; split it")]
    TooManyRows {
        /// The file.
        path: String,
    },
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

/// Reads the file at `path`, at most [`MAX_CSV_BYTES`] of it.
pub fn read(path: &std::path::Path) -> Result<(Vec<Row>, Vec<Malformed>), CsvError> {
    let name = path.display().to_string();
    let bytes = accessgov_policy::bounded_read::read_bytes(path, MAX_CSV_BYTES)
        .map_err(|source| CsvError::Read { path: name.clone(), source })?;
    let (rows, malformed) = parse(&bytes);
    if rows.len() > MAX_CSV_ROWS {
        return Err(CsvError::TooManyRows { path: name });
    }
    Ok((rows, malformed))
}

/// Reads the CSV bytes: valid rows and malformed lines, each with its line number.
pub fn parse(bytes: &[u8]) -> (Vec<Row>, Vec<Malformed>) {
    let bytes = bytes.strip_prefix("\u{feff}".as_bytes()).unwrap_or(bytes);
    let mut reader = csv::ReaderBuilder::new()
        .has_headers(false)
        .flexible(true)
        .trim(csv::Trim::All)
        .from_reader(bytes);
    let mut rows = Vec::new();
    let mut malformed = Vec::new();
    let mut seen = std::collections::HashMap::new();
    let mut first = true;
    let mut record = csv::ByteRecord::new();
    // Line numbers from byte offsets, counting `\n` as editors do (a lone `\r` ends a record
    // for the parser but not a line for a person), kept up to date as the reader moves on.
    let (mut counted_to, mut line) = (0usize, 1usize);
    // A record's position is where the parser began: on the end of the line before, or before
    // the blank lines it skipped. Its line is the one of its first byte past those.
    let mut line_at = |byte: usize| {
        let skipped =
            bytes[byte.min(bytes.len())..].iter().take_while(|b| matches!(b, b'\r' | b'\n'));
        let byte = (byte + skipped.count()).min(bytes.len());
        if byte > counted_to {
            line += bytes[counted_to..byte].iter().filter(|b| **b == b'\n').count();
            counted_to = byte;
        }
        line
    };
    loop {
        let start = reader.position().byte() as usize;
        match reader.read_byte_record(&mut record) {
            Ok(false) => break,
            Ok(true) => {}
            // Reading bytes from memory, flexibly, fails on nothing the parser accepts; should
            // it, the rest of the file cannot be trusted.
            Err(error) => {
                let line = line_at(start);
                malformed.push(Malformed { line, reason: format!("not CSV: {error}") });
                break;
            }
        }
        let line = line_at(record.position().map_or(start, |p| p.byte() as usize));
        if record.iter().all(<[u8]>::is_empty) {
            continue;
        }
        let fields = match fields_of(&record) {
            Ok(fields) => fields,
            Err(reason) => {
                malformed.push(Malformed { line, reason });
                first = false;
                continue;
            }
        };
        if std::mem::take(&mut first) && is_header(&fields) {
            continue;
        }
        match parse_row(line, &fields) {
            Ok(row) => match seen.insert(row.email.clone(), line) {
                Some(earlier) => malformed.push(Malformed {
                    line,
                    reason: format!("{} already appears on line {earlier}", row.email),
                }),
                None => rows.push(row),
            },
            Err(reason) => malformed.push(Malformed { line, reason }),
        }
    }
    (rows, malformed)
}

/// The record's fields as text, each at most [`MAX_FIELD_CHARS`] long.
fn fields_of(record: &csv::ByteRecord) -> Result<Vec<String>, String> {
    record
        .iter()
        .enumerate()
        .map(|(index, field)| {
            let text = std::str::from_utf8(field)
                .map_err(|_| format!("column {} is not UTF-8 text", index + 1))?;
            if text.chars().count() > MAX_FIELD_CHARS {
                return Err(format!(
                    "column {} is {} characters long; the longest accepted is {MAX_FIELD_CHARS}",
                    index + 1,
                    text.chars().count()
                ));
            }
            Ok(text.to_string())
        })
        .collect()
}

/// Lowercase, without spaces, underscores and dashes: `Seat Type` and `seat_type` alike.
fn normalized(field: &str) -> String {
    field.chars().filter(|c| !matches!(c, ' ' | '_' | '-')).flat_map(char::to_lowercase).collect()
}

/// Whether the first record is a header: its first column names the email (`email`, `Email
/// Address`, `E-mail`...), or, holding no address, its second names the role.
fn is_header(fields: &[String]) -> bool {
    let first = normalized(&fields[0]);
    matches!(first.as_str(), "email" | "emailaddress" | "emails" | "mail" | "useremail")
        || (!fields[0].contains('@') && fields.get(1).is_some_and(|f| normalized(f) == "role"))
}

fn parse_row(line: usize, fields: &[String]) -> Result<Row, String> {
    if fields.len() > 3 {
        return Err(format!(
            "expected at most 3 columns (email,role,seat type), found {}",
            fields.len()
        ));
    }
    let raw = &fields[0];
    if fields.len() == 1
        && let Some(separator) = [';', '\t', '|'].into_iter().find(|s| raw.contains(*s))
    {
        return Err(format!(
            "the line is separated by {separator:?}; the format is comma-separated (email,role,seat type)"
        ));
    }
    if raw.is_empty() {
        return Err("the email column is empty".to_string());
    }
    let email = raw.to_lowercase();
    let role_field = fields.get(1).map(|r| r.to_lowercase()).unwrap_or_default();
    let role = match role_field.replace([' ', '-'], "_").as_str() {
        "" => None,
        "owner" => Some("role:owner"),
        "admin" => Some("role:admin"),
        "member" => Some("role:member"),
        "analytics_viewer" => Some("role:analytics-viewer"),
        _ => None,
    };
    let unknown_role = (role.is_none() && !role_field.is_empty()).then(|| fields[1].clone());
    let seat = match fields.get(2).map(|s| s.to_lowercase()).unwrap_or_default().as_str() {
        "" => None,
        "chatgpt" => Some("seat:chatgpt"),
        "codex" => Some("seat:codex"),
        other => return Err(format!("seat type {other:?} is not ChatGPT or Codex")),
    };
    Ok(Row {
        line,
        email,
        role: role.map(String::from),
        unknown_role,
        seat: seat.map(String::from),
        notes: Vec::new(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lines(malformed: &[Malformed]) -> Vec<usize> {
        malformed.iter().map(|m| m.line).collect()
    }

    #[test]
    fn reads_openais_format_with_its_defaults() {
        let text = "email,role,seat type\nAnn@X.com,ADMIN,codex\nbob@x.com,,\ncid@x.com,boss,ChatGPT\n,member\ndan@x.com,member,Plus\n\nann@x.com,member\ne@x.com,a,b,c\n";
        let (rows, malformed) = parse(text.as_bytes());
        assert_eq!(rows.len(), 3);
        assert_eq!(rows[0].email, "ann@x.com");
        assert_eq!(rows[0].role.as_deref(), Some("role:admin"));
        assert_eq!(rows[0].seat.as_deref(), Some("seat:codex"));
        assert_eq!(rows[1].changes().len(), 1, "email only: workspace access");
        // An unknown role changes no role until the person is looked up.
        assert_eq!(rows[2].role, None);
        assert_eq!(rows[2].unknown_role.as_deref(), Some("boss"));
        assert_eq!(rows[2].changes().len(), 1, "the seat only");
        assert_eq!(lines(&malformed), [5, 6, 8, 9]);
    }

    #[test]
    fn quoted_fields_crlf_a_bom_and_spelled_out_headers_are_read_as_rfc_4180_says() {
        let text = "\u{feff}Email Address,Role,Seat Type\r\n\"ann@x.com\",\"admin\",\"Codex\"\r\n\"bob@x.com\",\"member, please\",ChatGPT\r\n";
        let (rows, malformed) = parse(text.as_bytes());
        assert!(malformed.is_empty(), "{malformed:?}");
        assert_eq!(rows.len(), 2);
        assert_eq!((rows[0].line, rows[0].email.as_str()), (2, "ann@x.com"));
        // A comma inside quotes is part of the field, not a fourth column.
        assert_eq!(rows[1].unknown_role.as_deref(), Some("member, please"));
        assert_eq!(rows[1].seat.as_deref(), Some("seat:chatgpt"));
    }

    #[test]
    fn a_file_separated_by_semicolons_is_refused_line_by_line_naming_the_separator() {
        let (rows, malformed) = parse(b"hv3@qa.example.com;member;chatgpt\n");
        assert!(rows.is_empty());
        assert!(malformed[0].reason.contains("separated by ';'"), "{malformed:?}");
    }

    #[test]
    fn a_header_is_only_the_first_line() {
        let (rows, malformed) = parse(b"ann@x.com,admin\nemail,role\n");
        assert_eq!(rows.len(), 2, "the second `email` line is a row the connector will refuse");
        assert!(malformed.is_empty());
    }

    #[test]
    fn an_overlong_field_or_bytes_that_are_not_utf8_make_their_line_malformed() {
        let long = format!("{}@x.com,member\nok@x.com\n\u{0}\u{ff}", "a".repeat(600));
        let mut bytes = long.into_bytes();
        bytes.extend_from_slice(b"\nbad\xff@x.com\nlast@x.com\n");
        let (rows, malformed) = parse(&bytes);
        let emails: Vec<&str> = rows.iter().map(|r| r.email.as_str()).collect();
        assert!(emails.contains(&"ok@x.com") && emails.contains(&"last@x.com"), "{emails:?}");
        assert!(malformed.iter().any(|m| m.line == 1 && m.reason.contains("606 characters long")));
        assert!(malformed.iter().any(|m| m.reason.contains("UTF-8")), "{malformed:?}");
    }

    proptest::proptest! {
        #[test]
        fn any_bytes_parse_into_rows_and_numbered_errors(bytes in proptest::collection::vec(proptest::num::u8::ANY, 0..2000)) {
            let (rows, malformed) = parse(&bytes);
            let records = bytes.split(|b| *b == b'\n' || *b == b'\r').count();
            let lines = bytes.split(|b| *b == b'\n').count();
            proptest::prop_assert!(rows.len() + malformed.len() <= records);
            for m in &malformed {
                proptest::prop_assert!(m.line >= 1 && m.line <= lines, "{m:?} of {lines}");
            }
            for r in &rows {
                proptest::prop_assert!(r.line >= 1 && r.line <= lines, "{r:?} of {lines}");
            }
        }
    }
}
