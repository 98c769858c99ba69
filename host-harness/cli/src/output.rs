//! Tables and JSON for the terminal.

use std::io::Write;
use std::sync::atomic::{AtomicBool, Ordering};

use accessgov_host::types::{Account, AccountStatus, ConnectorInfo, Entitlement, Notice};
use comfy_table::{ContentArrangement, Table, presets::UTF8_FULL_CONDENSED};

/// Set once stdout's reader has gone (`harness accounts | head -1`).
static STDOUT_CLOSED: AtomicBool = AtomicBool::new(false);

/// Writes `text` and a newline to stdout. A reader that has gone away ends the output quietly:
/// nothing more is written, and the command goes on (an `apply` finishes its calls rather than
/// cut one off; the mock keeps serving).
pub fn emit(text: &str) {
    if STDOUT_CLOSED.load(Ordering::Relaxed) {
        return;
    }
    let mut out = std::io::stdout().lock();
    let written = writeln!(out, "{text}").and_then(|()| out.flush());
    if written.is_err() {
        STDOUT_CLOSED.store(true, Ordering::Relaxed);
    }
}

/// `println!` through [`emit`].
macro_rules! out {
    ($($arg:tt)*) => {
        $crate::output::emit(&format!($($arg)*))
    };
}
pub(crate) use out;

fn table(header: &[&str]) -> Table {
    let mut table = Table::new();
    table.load_preset(UTF8_FULL_CONDENSED).set_content_arrangement(ContentArrangement::Dynamic);
    table.set_header(header.to_vec());
    table
}

/// Prints any value as pretty JSON, with the contract's enum values under their WIT names
/// (`already-in-state`, not the generated bindings' `AlreadyInState`).
pub fn print_json<T: serde::Serialize>(value: &T) -> anyhow::Result<()> {
    let mut value = serde_json::to_value(value)?;
    wit_names(&mut value);
    emit(&serde_json::to_string_pretty(&value)?);
    Ok(())
}

/// One value as compact JSON, with the contract's enum values under their WIT names.
pub fn json_line<T: serde::Serialize>(value: &T) -> anyhow::Result<String> {
    let mut value = serde_json::to_value(value)?;
    wit_names(&mut value);
    Ok(serde_json::to_string(&value)?)
}

/// The fields whose values are contract enums: an account's `status`, a change's `outcome`.
const ENUM_FIELDS: [&str; 2] = ["status", "outcome"];

fn wit_names(value: &mut serde_json::Value) {
    match value {
        serde_json::Value::Object(fields) => {
            for (key, field) in fields.iter_mut() {
                match field {
                    serde_json::Value::String(text) if ENUM_FIELDS.contains(&key.as_str()) => {
                        *text = kebab(text);
                    }
                    other => wit_names(other),
                }
            }
        }
        serde_json::Value::Array(items) => items.iter_mut().for_each(wit_names),
        _ => {}
    }
}

/// `AlreadyInState` → `already-in-state`.
fn kebab(name: &str) -> String {
    let mut out = String::with_capacity(name.len() + 4);
    for (i, c) in name.chars().enumerate() {
        if c.is_ascii_uppercase() && i > 0 {
            out.push('-');
        }
        out.push(c.to_ascii_lowercase());
    }
    out
}

/// The word for a status.
pub fn status(status: AccountStatus) -> &'static str {
    match status {
        AccountStatus::Active => "active",
        AccountStatus::Invited => "invited",
        AccountStatus::Suspended => "suspended",
        AccountStatus::Requested => "requested",
    }
}

/// Prints accounts as a table.
pub fn print_accounts(accounts: &[Account]) {
    let mut t = table(&["id", "email", "name", "status", "entitlements", "managed by"]);
    for a in accounts {
        t.add_row(vec![
            a.id.clone(),
            a.email.clone().unwrap_or_default(),
            a.display_name.clone().unwrap_or_default(),
            status(a.status).to_string(),
            a.entitlements.join(" "),
            a.managed_by.clone().unwrap_or_default(),
        ]);
    }
    out!("{t}");
    out!("{} accounts", accounts.len());
}

/// Prints entitlements as a table.
pub fn print_entitlements(entitlements: &[Entitlement]) {
    let mut t = table(&["id", "kind", "name", "exclusion group", "description"]);
    for e in entitlements {
        t.add_row(vec![
            e.id.clone(),
            e.kind.clone(),
            e.display_name.clone(),
            e.exclusion_group.clone().unwrap_or_default(),
            e.description.clone(),
        ]);
    }
    out!("{t}");
}

/// Prints a connector's description.
pub fn print_info(info: &ConnectorInfo) {
    let c = &info.capabilities;
    let caps: Vec<&str> = [
        (c.read_accounts, "read-accounts"),
        (c.read_entitlements, "read-entitlements"),
        (c.write, "write"),
        (c.batch, "batch"),
        (c.dry_run, "dry-run"),
    ]
    .into_iter()
    .filter_map(|(on, name)| on.then_some(name))
    .collect();
    out!("{} {} — {}", info.name, info.version, info.application);
    out!("entitlement kinds: {}", info.entitlement_kinds.join(", "));
    for g in &info.exclusion_groups {
        out!(
            "exclusion group `{}`{}: {}",
            g.id,
            if g.required { " (required)" } else { "" },
            g.description
        );
    }
    out!("capabilities: {}", caps.join(", "));
}

/// A notice of a change, for a person approving it.
pub fn notice_text(notice: &Notice) -> String {
    match notice {
        Notice::DataAccessLost(loss) => format!("NOTICE data access lost: {}", loss.message),
    }
}

/// Prints CSV row results as a table.
pub fn print_rows(rows: &[super::changes::RowReport]) {
    let mut t = table(&["line", "email", "outcome", "detail", "requests"]);
    for r in rows {
        let requests: Vec<String> = r
            .requests
            .iter()
            .map(|q| {
                let emails = q
                    .body
                    .as_deref()
                    .and_then(|b| serde_json::from_str::<serde_json::Value>(b).ok())
                    .and_then(|b| {
                        b.get("email_addresses").and_then(|e| e.as_array()).map(Vec::len)
                    });
                let answered = q.status.map(|s| format!(" → {s}")).unwrap_or_default();
                match emails {
                    Some(n) => format!("{} {} ({n} addresses){answered}", q.method, q.path),
                    None => format!("{} {}{answered}", q.method, q.path),
                }
            })
            .collect();
        t.add_row(vec![
            r.line.to_string(),
            r.email.clone().unwrap_or_default(),
            r.outcome.to_string(),
            r.changes
                .iter()
                .flat_map(|c| c.notices.iter().map(notice_text))
                .fold(r.detail.clone(), |text, notice| text + "\n" + &notice),
            requests.join("\n"),
        ]);
    }
    out!("{t}");
}

/// Prints a call of a batch that gave no answer, and every write it may have made.
pub fn print_failed_call(call: &accessgov_host::batch::CallRecord) {
    let purpose = match call.purpose {
        accessgov_host::batch::CallPurpose::Plan => "planning",
        accessgov_host::batch::CallPurpose::Apply => "apply",
        accessgov_host::batch::CallPurpose::ReadBack => "read-back",
    };
    out!(
        "call {} ({purpose}, {} rows) failed: {}",
        call.call_id,
        call.items.len(),
        call.error.as_deref().unwrap_or_default()
    );
    print_writes(&call.writes);
}

/// Prints the writes of a failed single-change call that may have reached the service.
pub fn print_writes_of_failed_call(call_id: u64, egress: &[accessgov_host::egress::EgressRecord]) {
    let writes: Vec<_> = egress.iter().filter(|r| r.may_have_written()).cloned().collect();
    out!("call {call_id} failed; the writes the host saw it send:");
    print_writes(&writes);
}

/// Prints writes as the host recorded them, with the answer each got or that none came.
fn print_writes(writes: &[accessgov_host::egress::EgressRecord]) {
    if writes.is_empty() {
        out!("  the host saw no write of it reach the service");
    }
    for write in writes {
        let answer = match write.status {
            Some(status) => format!("answered {status}"),
            None => "no answer (it may have been applied)".to_string(),
        };
        let body = write.request_body.as_deref().unwrap_or("");
        out!("  {} {} {body}: {answer}", write.method, write.path);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn contract_enums_print_under_their_wit_names() {
        let mut value = serde_json::json!([
            {"status": "Active", "display-name": "Active Person", "outcome": "AlreadyInState"},
            {"nested": {"outcome": "Planned"}, "outcome": "already-in-state"}
        ]);
        wit_names(&mut value);
        assert_eq!(value[0]["status"], "active");
        assert_eq!(value[0]["display-name"], "Active Person");
        assert_eq!(value[0]["outcome"], "already-in-state");
        assert_eq!(value[1]["nested"]["outcome"], "planned");
        assert_eq!(value[1]["outcome"], "already-in-state");
    }
}
