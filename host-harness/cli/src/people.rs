//! `harness people`: what each person of a customer holds in each of its tenants.

use super::output::out;
use std::path::{Path, PathBuf};

use accessgov_host::people::PeopleEvent;
use accessgov_host::{Host, HostConfig, TenantsFile};
use anyhow::{anyhow, bail};
use clap::Args;

use super::output;

/// Options of `harness people`.
#[derive(Debug, Args)]
pub struct PeopleArgs {
    /// The tenants file; its tenants with `customer = ID` are read.
    #[arg(long, default_value = "tenants.toml")]
    tenants: PathBuf,
    /// The customer whose tenants to read.
    #[arg(long)]
    customer: String,
    /// Only this person (matched in any case); each tenant is asked for them alone.
    #[arg(long)]
    email: Option<String>,
    /// Accounts per page read from each tenant.
    #[arg(long)]
    page_size: Option<u32>,
    /// Print JSON lines (one account or tenant outcome a line) instead of text lines.
    #[arg(long)]
    json: bool,
}

/// Runs `harness people`: accounts are printed as each tenant's pages arrive, one line each,
/// then each tenant's outcome; a tenant that fails is reported and the others still shown.
pub async fn run(args: PeopleArgs, cache_dir: Option<PathBuf>) -> anyhow::Result<()> {
    let file = TenantsFile::read(&args.tenants)?;
    let host = Host::new(HostConfig {
        cache_dir,
        named_connectors: bundled_connectors::named(),
        ..HostConfig::default()
    })?;
    let base = args.tenants.parent().unwrap_or(Path::new("."));
    let mine: Vec<_> =
        file.tenants.iter().filter(|t| t.customer.as_deref() == Some(&args.customer)).collect();
    if mine.is_empty() {
        bail!("{}: no tenant has customer = {:?}", args.tenants.display(), args.customer);
    }
    for tenant in mine {
        host.add_tenant(tenant, base).map_err(|e| anyhow!("{}: {e}", args.tenants.display()))?;
    }
    let mut failure: Option<anyhow::Error> = None;
    let outcomes = host
        .people(&args.customer, args.email.as_deref(), args.page_size, |event| {
            if failure.is_some() {
                return;
            }
            let line = if args.json {
                output::json_line(&event)
            } else {
                Ok(match &event {
                    PeopleEvent::Account(a) => format!(
                        "{}\t{}\t{}\t{}\t{}",
                        a.email,
                        a.tenant,
                        a.account.id,
                        output::status(a.account.status),
                        a.account.entitlements.join(" ")
                    ),
                    PeopleEvent::Tenant(t) => match &t.error {
                        None => format!(
                            "# {}: {} accounts of people{}",
                            t.tenant,
                            t.accounts,
                            without(t.without_email)
                        ),
                        Some(error) => {
                            format!("# {}: FAILED after {} accounts: {error}", t.tenant, t.accounts)
                        }
                    },
                })
            };
            match line {
                Ok(line) => out!("{line}"),
                Err(error) => failure = Some(error),
            }
        })
        .await?;
    if let Some(error) = failure {
        return Err(error);
    }
    let failed: Vec<&str> =
        outcomes.iter().filter(|o| o.error.is_some()).map(|o| o.tenant.as_str()).collect();
    if !failed.is_empty() {
        bail!(
            "{} of {} tenants of customer {} could not be read whole: {}",
            failed.len(),
            outcomes.len(),
            args.customer,
            failed.join(", ")
        );
    }
    Ok(())
}

fn without(count: u64) -> String {
    match count {
        0 => String::new(),
        n => format!(" ({n} without an address, such as service accounts, not shown)"),
    }
}
