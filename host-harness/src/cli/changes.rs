//! `harness grant|revoke|set` and `harness apply --csv`.

use std::path::PathBuf;

use anyhow::{Context, bail};
use clap::Args;
use indicatif::{ProgressBar, ProgressStyle};
use serde::Serialize;

use host_harness::types::{
    ChangeOptions, ChangeOutcome, ChangeResult, ConnectorError, PlannedRequest,
};

use super::TenantArgs;
use super::csv;
use super::output;
use super::tenant_commands::{account_ref, answer, host_for};

/// Rows sent in one `apply-batch` call: large enough that invites group well, small enough that
/// a long file shows progress.
const ROWS_PER_BATCH: usize = 1000;

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
    println!("{}: {}", outcome_word(result.outcome), result.detail);
    if !result.replaced.is_empty() {
        println!("replaced: {}", result.replaced.join(", "));
    }
    for r in &result.requests {
        println!("  {} {} {}", r.method, r.path, r.body.as_deref().unwrap_or(""));
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
    /// `applied`, `pending`, `planned`, `already-in-state`, `failed` or `skipped`.
    pub outcome: String,
    /// What happened or why not.
    pub detail: String,
    /// Entitlements displaced.
    pub replaced: Vec<String>,
    /// Write requests sent or planned for the row.
    pub requests: Vec<PlannedRequest>,
}

/// Combines the results of a row's changes into the row's result.
fn row_report(row: &csv::Row, results: Vec<Result<ChangeResult, ConnectorError>>) -> RowReport {
    let mut report = RowReport {
        line: row.line,
        email: Some(row.email.clone()),
        outcome: String::new(),
        detail: String::new(),
        replaced: Vec::new(),
        requests: Vec::new(),
    };
    let mut details: Vec<String> = row.notes.clone();
    let mut outcomes = Vec::new();
    for result in results {
        match result {
            Ok(change) => {
                outcomes.push(change.outcome);
                details.push(change.detail);
                report.replaced.extend(change.replaced);
                for request in change.requests {
                    if !report.requests.contains(&request) {
                        report.requests.push(request);
                    }
                }
            }
            Err(error) => {
                report.outcome = "failed".to_string();
                details.push(host_harness::CallError::Connector(error).to_string());
            }
        }
    }
    if report.outcome.is_empty() {
        let first_change = outcomes.iter().find(|o| **o != ChangeOutcome::AlreadyInState);
        report.outcome =
            outcome_word(first_change.copied().unwrap_or(ChangeOutcome::AlreadyInState))
                .to_string();
        if outcomes.contains(&ChangeOutcome::Pending) {
            report.outcome = "pending".to_string();
        }
    }
    report.detail = details.join("; ");
    report
}

/// Runs `harness apply --csv`.
pub async fn apply(args: ApplyArgs, cache_dir: Option<PathBuf>) -> anyhow::Result<()> {
    let text = std::fs::read_to_string(&args.csv)
        .with_context(|| format!("reading {}", args.csv.display()))?;
    let (rows, malformed) = csv::parse(&text);
    let (host, tenant) = host_for(&args.tenant, cache_dir).await?;
    let options = ChangeOptions { dry_run: args.dry_run };

    let progress = ProgressBar::new(rows.len() as u64);
    progress.set_style(
        ProgressStyle::with_template("{spinner} {pos}/{len} rows {wide_bar} {elapsed}")
            .unwrap_or_else(|_| ProgressStyle::default_bar()),
    );
    let mut reports: Vec<RowReport> = malformed
        .iter()
        .map(|m| RowReport {
            line: m.line,
            email: None,
            outcome: "skipped".to_string(),
            detail: format!("malformed line: {}", m.reason),
            replaced: Vec::new(),
            requests: Vec::new(),
        })
        .collect();
    for batch in rows.chunks(ROWS_PER_BATCH) {
        let changes: Vec<_> = batch.iter().flat_map(csv::Row::changes).collect();
        let expected = changes.len();
        let results = answer(host.apply_batch(&tenant, changes, options).await?)?;
        if results.len() != expected {
            bail!("the connector returned {} results for {expected} changes", results.len());
        }
        let mut results = results.into_iter();
        for row in batch {
            let mine: Vec<_> = results.by_ref().take(row.changes().len()).collect();
            reports.push(row_report(row, mine));
        }
        progress.inc(batch.len() as u64);
    }
    progress.finish_and_clear();
    reports.sort_by_key(|r| r.line);

    let failed = reports.iter().filter(|r| r.outcome == "failed" || r.outcome == "skipped").count();
    if args.tenant.json {
        output::print_json(&reports)?;
    } else {
        output::print_rows(&reports);
        println!(
            "{} rows: {} ok, {} failed or skipped{}",
            reports.len(),
            reports.len() - failed,
            failed,
            if args.dry_run { " (dry run: nothing was written)" } else { "" }
        );
    }
    if failed > 0 {
        bail!("{failed} of {} rows failed or were skipped", reports.len());
    }
    Ok(())
}
