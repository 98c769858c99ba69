//! Commands that run one operation for a tenant of a tenants file.

use super::output::out;
use std::path::{Path, PathBuf};

use accessgov_host::types::{Account, AccountRef, Entitlement, PageRequest};
use accessgov_host::{CallReport, Host, HostConfig, TenantConfig, TenantsFile};
use anyhow::{Context, anyhow};

use super::TenantArgs;
use super::output;

/// A host with the selected tenant registered, and that tenant's id.
pub async fn host_for(
    args: &TenantArgs,
    cache_dir: Option<PathBuf>,
) -> anyhow::Result<(Host, String)> {
    let (host, config) = host_with_config(args, cache_dir).await?;
    Ok((host, config.id))
}

/// [`host_for`], returning the tenant's configuration instead of its id.
pub async fn host_with_config(
    args: &TenantArgs,
    cache_dir: Option<PathBuf>,
) -> anyhow::Result<(Host, TenantConfig)> {
    let file = TenantsFile::read(&args.tenants)?;
    let tenant = file
        .select(args.tenant.as_deref())
        .map_err(|e| anyhow!("{}: {e}", args.tenants.display()))?;
    let host = Host::new(HostConfig {
        cache_dir,
        named_connectors: bundled_connectors::named(),
        ..HostConfig::default()
    })?;
    let base = args.tenants.parent().unwrap_or(Path::new("."));
    host.add_tenant_checked(tenant, base).await?;
    Ok((host, tenant.clone()))
}

/// The call's answer, or an error carrying the classification and the connector's output.
pub fn answer<T>(report: CallReport<T>) -> anyhow::Result<T> {
    match report.result {
        Ok(value) => Ok(value),
        Err(error) => {
            let logs = report.logs.trim();
            if logs.is_empty() {
                Err(anyhow!("call {} for tenant `{}`: {error}", report.call_id, report.tenant))
            } else {
                Err(anyhow!(
                    "call {} for tenant `{}`: {error}\nconnector output:\n{logs}",
                    report.call_id,
                    report.tenant
                ))
            }
        }
    }
}

/// Every account, following cursors to the end.
pub async fn all_accounts(
    host: &Host,
    tenant: &str,
    size: Option<u32>,
) -> anyhow::Result<Vec<Account>> {
    let mut accounts = Vec::new();
    let mut cursor = None;
    loop {
        let page = answer(host.list_accounts(tenant, PageRequest { cursor, size }).await?)?;
        accounts.extend(page.accounts);
        match page.next_cursor {
            Some(next) => cursor = Some(next),
            None => return Ok(accounts),
        }
    }
}

/// Every entitlement, following cursors to the end.
pub async fn all_entitlements(host: &Host, tenant: &str) -> anyhow::Result<Vec<Entitlement>> {
    let mut entitlements = Vec::new();
    let mut cursor = None;
    loop {
        let page =
            answer(host.list_entitlements(tenant, PageRequest { cursor, size: None }).await?)?;
        entitlements.extend(page.entitlements);
        match page.next_cursor {
            Some(next) => cursor = Some(next),
            None => return Ok(entitlements),
        }
    }
}

/// `harness info`
pub async fn info(args: &TenantArgs, cache_dir: Option<PathBuf>) -> anyhow::Result<()> {
    let (host, tenant) = host_for(args, cache_dir).await?;
    let info = answer(host.info(&tenant).await?)?;
    if args.json {
        output::print_json(&info)
    } else {
        output::print_info(&info);
        Ok(())
    }
}

/// `harness test-connection`
pub async fn test_connection(args: &TenantArgs, cache_dir: Option<PathBuf>) -> anyhow::Result<()> {
    let (host, tenant) = host_for(args, cache_dir).await?;
    let report = answer(host.test_connection(&tenant).await?)?;
    if args.json {
        let limitations = &report.limitations;
        output::print_json(
            &serde_json::json!({"tenant": tenant, "ok": true, "limitations": limitations}),
        )
    } else {
        out!("tenant `{tenant}`: connection OK");
        for limitation in &report.limitations {
            out!("  limitation: {limitation}");
        }
        Ok(())
    }
}

/// `harness accounts`
pub async fn accounts(
    args: &TenantArgs,
    size: Option<u32>,
    cache_dir: Option<PathBuf>,
) -> anyhow::Result<()> {
    let (host, tenant) = host_for(args, cache_dir).await?;
    if !args.json {
        output::print_accounts(&all_accounts(&host, &tenant, size).await?);
        return Ok(());
    }
    // Each account is turned into its JSON line as its page comes, so the workspace is held as
    // text, not as records; the array is printed only once whole, so a listing that fails
    // partway prints no truncated array, and says how far it got.
    let (mut cursor, mut lines, mut pages) = (None, Vec::new(), 0u64);
    loop {
        let report = host.list_accounts(&tenant, PageRequest { cursor, size }).await?;
        let page = answer(report).with_context(|| {
            format!(
                "listing accounts stopped after {pages} pages ({} accounts); nothing was printed",
                lines.len()
            )
        })?;
        pages += 1;
        for account in &page.accounts {
            lines.push(output::json_line(account)?);
        }
        match page.next_cursor {
            Some(next) => cursor = Some(next),
            None => break,
        }
    }
    if lines.is_empty() {
        out!("[]");
    } else {
        out!("[\n{}\n]", lines.join(",\n"));
    }
    Ok(())
}

/// `harness entitlements`
pub async fn entitlements(args: &TenantArgs, cache_dir: Option<PathBuf>) -> anyhow::Result<()> {
    let (host, tenant) = host_for(args, cache_dir).await?;
    let entitlements = all_entitlements(&host, &tenant).await?;
    if args.json {
        output::print_json(&entitlements)
    } else {
        output::print_entitlements(&entitlements);
        Ok(())
    }
}

/// An account reference from the command line: an email if it has an `@`, else an id.
pub fn account_ref(raw: &str) -> AccountRef {
    if raw.contains('@') {
        AccountRef::Email(raw.to_string())
    } else {
        AccountRef::Id(raw.to_string())
    }
}

/// `harness account`
pub async fn account(
    args: &TenantArgs,
    raw: &str,
    cache_dir: Option<PathBuf>,
) -> anyhow::Result<()> {
    let (host, tenant) = host_for(args, cache_dir).await?;
    let account = answer(host.get_account(&tenant, account_ref(raw)).await?)
        .with_context(|| format!("looking up {raw:?}"))?;
    if args.json {
        output::print_json(&account)
    } else {
        output::print_accounts(std::slice::from_ref(&account));
        Ok(())
    }
}
