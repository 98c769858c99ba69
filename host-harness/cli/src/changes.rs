//! `harness grant|revoke|set` and `harness apply --csv`.

use std::path::PathBuf;

use anyhow::bail;
use clap::Args;
use indicatif::{ProgressBar, ProgressStyle};
use serde::Serialize;

use accessgov_host::Host;
use accessgov_host::batch::{self, BatchEvent, CallRecord, ChangeReport, ItemReport, ItemRequest};
use accessgov_host::types::{
    Account, AccountRef, AccountStatus, ChangeOptions, ChangeOutcome, ChangeResult, ConnectorError,
};

use super::TenantArgs;
use super::csv;
use super::output::{self, out};
use super::tenant_commands::{account_ref, answer, host_for, host_with_config};

/// Options of `harness grant` and `harness revoke`.
#[derive(Debug, Args)]
pub struct ChangeArgs {
    /// An account id, or an email address.
    account: String,
    /// The entitlement id, e.g. `role:admin`, `seat:codex`, `workspace`.
    entitlement: String,
    /// Plan only: show the requests that would be sent, send no write.
    #[arg(long)]
    dry_run: bool,
    #[command(flatten)]
    tenant: TenantArgs,
}

/// Options of `harness set`.
#[derive(Debug, Args)]
pub struct SetArgs {
    /// An account id, or an email address.
    account: String,
    /// The exclusion group: `role` or `seat`.
    group: String,
    /// The entitlement to hold in it.
    entitlement: String,
    /// Plan only.
    #[arg(long)]
    dry_run: bool,
    #[command(flatten)]
    tenant: TenantArgs,
}

/// Options of `harness apply`.
#[derive(Debug, Args)]
pub struct ApplyArgs {
    /// OpenAI's bulk format: `email,role,seat type`, one person a line.
    #[arg(long)]
    csv: PathBuf,
    /// Plan only: compute and print every row's changes, send no write.
    #[arg(long)]
    dry_run: bool,
    #[command(flatten)]
    tenant: TenantArgs,
}

/// Which single change to make.
pub enum Single {
    /// `harness grant`
    Grant(ChangeArgs),
    /// `harness revoke`
    Revoke(ChangeArgs),
    /// `harness set`
    Set(SetArgs),
}

/// Runs `harness grant`, `revoke` or `set`.
pub async fn single(command: Single, cache_dir: Option<PathBuf>) -> anyhow::Result<()> {
    let (tenant_args, dry_run) = match &command {
        Single::Grant(a) | Single::Revoke(a) => (&a.tenant, a.dry_run),
        Single::Set(a) => (&a.tenant, a.dry_run),
    };
    let (host, tenant) = host_for(tenant_args, cache_dir).await?;
    let options = ChangeOptions { dry_run };
    let report = match &command {
        Single::Grant(a) => {
            host.grant(&tenant, account_ref(&a.account), a.entitlement.clone(), options).await?
        }
        Single::Revoke(a) => {
            host.revoke(&tenant, account_ref(&a.account), a.entitlement.clone(), options).await?
        }
        Single::Set(a) => {
            host.set_entitlement(
                &tenant,
                account_ref(&a.account),
                a.group.clone(),
                a.entitlement.clone(),
                options,
            )
            .await?
        }
    };
    if report.result.is_err() {
        // The change may have been partly made before the call failed: every write the host
        // saw reach the service is printed before the error.
        output::print_writes_of_failed_call(report.call_id, &report.egress);
    }
    let result = answer(report)?;
    if tenant_args.json {
        output::print_json(&result)
    } else {
        print_change(&result);
        Ok(())
    }
}

fn outcome_word(outcome: ChangeOutcome) -> &'static str {
    match outcome {
        ChangeOutcome::Applied => "applied",
        ChangeOutcome::AlreadyInState => "already-in-state",
        ChangeOutcome::Pending => "pending",
        ChangeOutcome::Planned => "planned",
    }
}

fn print_change(result: &ChangeResult) {
    out!("{}: {}", outcome_word(result.outcome), result.detail);
    for notice in &result.notices {
        out!("{}", output::notice_text(notice));
    }
    if !result.replaced.is_empty() {
        out!("replaced: {}", result.replaced.join(", "));
    }
    for r in &result.requests {
        out!("  {} {} {}", r.method, r.path, r.body.as_deref().unwrap_or(""));
    }
    if let Some(account) = &result.account {
        output::print_accounts(std::slice::from_ref(account));
    }
}

/// One CSV row's result.
#[derive(Debug, Serialize)]
pub struct RowReport {
    /// Line in the file.
    pub line: usize,
    /// Email, when the line could be read.
    pub email: Option<String>,
    /// What became of the row: an [`ItemOutcome`] name, or `skipped` for a malformed line.
    pub outcome: &'static str,
    /// What happened or why not.
    pub detail: String,
    /// Each of the row's changes and what became of it.
    pub changes: Vec<ChangeReport>,
    /// Entitlements displaced.
    pub replaced: Vec<String>,
    /// Write requests sent (or planned) for the row, with the status the host saw answered.
    pub requests: Vec<ItemRequest>,
    /// The call that carried the row's writes.
    pub call_id: Option<u64>,
}

impl RowReport {
    fn of(row: &csv::Row, item: ItemReport) -> RowReport {
        let mut details = row.notes.clone();
        details.extend(item.changes.iter().map(|c| c.detail.clone()).filter(|d| !d.is_empty()));
        details.dedup();
        RowReport {
            line: row.line,
            email: Some(row.email.clone()),
            outcome: item.outcome.as_str(),
            detail: details.join("; "),
            replaced: item.changes.iter().flat_map(|c| c.replaced.clone()).collect(),
            changes: item.changes,
            requests: item.requests,
            call_id: item.call_id,
        }
    }

    fn skipped(malformed: &csv::Malformed) -> RowReport {
        RowReport {
            line: malformed.line,
            email: None,
            outcome: "skipped",
            detail: format!("malformed line: {}", malformed.reason),
            changes: Vec::new(),
            replaced: Vec::new(),
            requests: Vec::new(),
            call_id: None,
        }
    }

    fn is_success(&self) -> bool {
        !matches!(self.outcome, "skipped" | "partial" | "failed" | "unknown" | "not-attempted")
    }
}

/// Where a CSV row's person stands, looked up through the connector.
enum Standing {
    /// In the workspace (a member or an invite), as this account.
    Present(Account),
    /// Not in it: the row invites them.
    New,
}

/// Looks `email` up through the tenant's connector.
async fn standing(host: &Host, tenant: &str, email: &str) -> anyhow::Result<Standing> {
    let report = host.get_account(tenant, AccountRef::Email(email.to_string())).await?;
    match report.result {
        Ok(account) => Ok(Standing::Present(account)),
        Err(accessgov_host::CallError::Connector(ConnectorError::NotFound(_))) => Ok(Standing::New),
        Err(error) => bail!("could not look {email} up (call {}): {error}", report.call_id),
    }
}

/// Settles the rows whose role depends on whether the person is new, as OpenAI's CSV rule
/// (an unknown or not-permitted role becomes Member) is about invitations only: a row with an
/// unknown role is malformed for someone already in the workspace (a typo must never demote
/// anyone) and makes a new person a Member; an Owner row for a new person makes them a Member
/// when the tenant's integration account is not an Owner (an Admin cannot give the Owner role).
/// One lookup per such row; a row that cannot be looked up is malformed, with the reason.
async fn settle_roles(
    host: &Host,
    tenant: &str,
    integration: Option<&str>,
    rows: Vec<csv::Row>,
) -> anyhow::Result<(Vec<csv::Row>, Vec<csv::Malformed>)> {
    let owner_rows = rows.iter().any(|r| r.role.as_deref() == Some("role:owner"));
    let integration_is_owner = match integration {
        Some(email) if owner_rows => match standing(host, tenant, email).await? {
            Standing::Present(account) => {
                account.status == AccountStatus::Active
                    && account.entitlements.iter().any(|e| e == "role:owner")
            }
            Standing::New => false,
        },
        // Unknown: the connector checks when it names its integration account.
        _ => true,
    };
    let (mut settled, mut malformed) = (Vec::new(), Vec::new());
    for mut row in rows {
        let owner_not_permitted =
            !integration_is_owner && row.role.as_deref() == Some("role:owner");
        if row.unknown_role.is_none() && !owner_not_permitted {
            settled.push(row);
            continue;
        }
        match standing(host, tenant, &row.email).await {
            Err(error) => {
                malformed.push(csv::Malformed { line: row.line, reason: format!("{error:#}") })
            }
            Ok(Standing::Present(account)) => match row.unknown_role.take() {
                Some(value) => {
                    let holds: Vec<&str> = account
                        .entitlements
                        .iter()
                        .filter(|e| e.starts_with("role:"))
                        .map(String::as_str)
                        .collect();
                    malformed.push(csv::Malformed {
                        line: row.line,
                        reason: format!(
                            "role {value:?} is not owner, admin, member or analytics_viewer; {} is already in the workspace ({}), and a row never changes an existing role it cannot read: nothing was changed",
                            row.email,
                            holds.join(", ")
                        ),
                    });
                }
                // The connector refuses it, naming the integration account.
                None => settled.push(row),
            },
            Ok(Standing::New) => {
                let why = match row.unknown_role.take() {
                    Some(value) => format!("role {value:?} is not a role"),
                    None => format!(
                        "the integration account {} is not an Owner, and only an Owner can give the Owner role",
                        integration.unwrap_or_default()
                    ),
                };
                row.notes.push(format!("{why}: invited as Member (OpenAI's CSV rule)"));
                row.role = Some("role:member".to_string());
                settled.push(row);
            }
        }
    }
    Ok((settled, malformed))
}

/// A JSON line of `apply --json`: a row, a call, or the closing summary.
#[derive(Serialize)]
#[serde(rename_all = "kebab-case", tag = "type")]
enum JsonLine<'a> {
    Row(&'a RowReport),
    Call(&'a CallRecord),
    Summary { rows: usize, ok: usize, unsuccessful: usize, dry_run: bool, stopped: Option<&'a str> },
}

/// Runs `harness apply --csv`.
///
/// Every row's outcome is printed, including rows of calls that completed before a later one
/// failed, and every write a failed call may have made; with `--json`, as one JSON line per row
/// and per call as soon as each is known, then a summary line. The exit status is non-zero,
/// after all of it is printed, when any row did not end where it was asked to be.
pub async fn apply(args: ApplyArgs, cache_dir: Option<PathBuf>) -> anyhow::Result<()> {
    let (rows, mut malformed) = csv::read(&args.csv)?;
    let (host, config) = host_with_config(&args.tenant, cache_dir).await?;
    let tenant = config.id.clone();
    let integration = config.settings.get("integration-account").map(ToString::to_string);
    let (rows, unsettled) = settle_roles(&host, &tenant, integration.as_deref(), rows).await?;
    malformed.extend(unsettled);
    let json = args.tenant.json;
    let emit_json = |line: JsonLine<'_>| match output::json_line(&line) {
        Ok(text) => output::emit(&text),
        Err(error) => eprintln!("error: could not write a JSON line: {error}"),
    };

    let progress = if json { ProgressBar::hidden() } else { ProgressBar::new(rows.len() as u64) };
    progress.set_style(
        ProgressStyle::with_template("{spinner} {pos}/{len} rows {wide_bar} {elapsed}")
            .unwrap_or_else(|_| ProgressStyle::default_bar()),
    );
    let mut reports: Vec<RowReport> = malformed.iter().map(RowReport::skipped).collect();
    if json {
        reports.iter().for_each(|r| emit_json(JsonLine::Row(r)));
    }
    let mut failed_calls: Vec<CallRecord> = Vec::new();
    let items: Vec<_> = rows.iter().map(csv::Row::changes).collect();
    let summary = batch::apply(&host, &tenant, &items, args.dry_run, |event| match event {
        BatchEvent::Item(item) => {
            let report = RowReport::of(&rows[item.item], item);
            if json {
                emit_json(JsonLine::Row(&report));
            }
            progress.inc(1);
            reports.push(report);
        }
        BatchEvent::Call(call) => {
            if json {
                emit_json(JsonLine::Call(&call));
            }
            if call.error.is_some() {
                failed_calls.push(call);
            }
        }
    })
    .await?;
    progress.finish_and_clear();

    let unsuccessful = reports.iter().filter(|r| !r.is_success()).count();
    if json {
        emit_json(JsonLine::Summary {
            rows: reports.len(),
            ok: reports.len() - unsuccessful,
            unsuccessful,
            dry_run: args.dry_run,
            stopped: summary.stopped.as_deref(),
        });
    } else {
        reports.sort_by_key(|r| r.line);
        output::print_rows(&reports);
        for call in &failed_calls {
            output::print_failed_call(call);
        }
        if let Some(reason) = &summary.stopped {
            out!("stopped: {reason}; rows after it were not attempted (a re-run continues)");
        }
        out!(
            "{} rows: {} ok, {unsuccessful} not{}",
            reports.len(),
            reports.len() - unsuccessful,
            if args.dry_run { " (dry run: nothing was written)" } else { "" }
        );
    }
    if unsuccessful > 0 {
        bail!("{unsuccessful} of {} rows did not end as asked; see each row", reports.len());
    }
    Ok(())
}
