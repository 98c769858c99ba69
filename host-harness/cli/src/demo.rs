//! `harness demo`: the whole system in one command, against the embedded mocks: a ChatGPT
//! workspace and the same customer's API Platform organization.

use super::output::out;
use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use accessgov_host::people::PeopleEvent;
use accessgov_host::tenant::SettingValue;
use accessgov_host::{Host, HostConfig};
use accessgov_mock::platform::{PlatformServer, PlatformService, PlatformSpec};
use accessgov_mock::{GenerateSpec, MockServer, MockService, seed};
use clap::Args;

use super::output;
use super::tenant_commands::{all_accounts, all_entitlements, answer};

/// Options of `harness demo`.
#[derive(Debug, Args)]
pub struct DemoArgs {
    /// Members of the generated workspace.
    #[arg(long, default_value_t = 12)]
    members: usize,
    /// Pending invites of the generated workspace.
    #[arg(long, default_value_t = 3)]
    invites: usize,
    /// Print JSON instead of tables.
    #[arg(long)]
    json: bool,
}

const ACCOUNT_ID: &str = "acct-demo";
const TOKEN: &str = "demo-owner-token";
const ADMIN_KEY: &str = "demo-admin-key";
/// The customer both of the demo's tenants belong to.
const CUSTOMER: &str = "acme";
/// People of the workspace who are also users of the API Platform organization.
const SHARED_PEOPLE: usize = 4;
/// Pending join requests of the demo's workspace: access asked for outside any platform.
const DEMO_JOIN_REQUESTS: usize = 2;

/// Runs `harness demo`.
pub async fn run(args: DemoArgs, cache_dir: Option<PathBuf>) -> anyhow::Result<()> {
    let service = MockService::new();
    let spec = GenerateSpec {
        members: args.members,
        invites: args.invites,
        join_requests: DEMO_JOIN_REQUESTS,
        seed: 42,
    };
    spec.check().map_err(|e| anyhow::anyhow!("--members/--invites: {e}"))?;
    let workspace = seed::generate(ACCOUNT_ID, spec);
    // The generated workspace's first member is its Owner: the demo's integration account,
    // which test-connection checks.
    let integration = workspace.members.first().map(|m| m.email.clone());
    let shared: Vec<(String, String)> = workspace
        .members
        .iter()
        .skip(1)
        .take(SHARED_PEOPLE)
        .map(|m| (m.email.clone(), m.name.clone()))
        .collect();
    let member_ids: Vec<String> = workspace.members.iter().map(|m| m.id.clone()).collect();
    service.put_workspace(workspace);
    // Two console groups, so the listing shows who is in which.
    for (n, name) in ["Research", "Support"].into_iter().enumerate() {
        let ids: Vec<&str> = member_ids.iter().skip(n).step_by(3).map(String::as_str).collect();
        service.add_console_group(ACCOUNT_ID, name, &ids);
    }
    service.add_token(TOKEN, ACCOUNT_ID, "account-owner");
    let server = MockServer::start_local(service.clone()).await?;

    let host = Host::new(HostConfig {
        cache_dir,
        named_connectors: bundled_connectors::named(),
        ..HostConfig::default()
    })?;
    // The same customer's API Platform organization, some of whose users are in the workspace.
    let spec =
        PlatformSpec { users: 8, projects: 3, groups: 2, invites: 1, ..PlatformSpec::default() };
    let mut org = accessgov_mock::platform::generate("platform.acme.example.com", spec);
    for (user, (email, name)) in org.users.iter_mut().zip(&shared) {
        user.email = email.clone();
        user.name = name.clone();
    }
    let platform = PlatformServer::start_local(PlatformService::new(org, ADMIN_KEY)).await?;

    let mut tenant = server.chatgpt_tenant("demo", ACCOUNT_ID, TOKEN);
    tenant.customer = Some(CUSTOMER.to_string());
    tenant.settings.insert("page-size".to_string(), SettingValue::Integer(5));
    if let Some(email) = integration {
        tenant.settings.insert("integration-account".to_string(), SettingValue::Text(email));
    }
    host.add_tenant(&tenant, Path::new("."))?;
    let mut organization = platform.tenant("demo-platform", "openai-platform", ADMIN_KEY);
    organization.customer = Some(CUSTOMER.to_string());
    host.add_tenant(&organization, Path::new("."))?;

    let info = answer(host.info("demo").await?)?;
    answer(host.test_connection("demo").await?)?;
    let accounts = all_accounts(&host, "demo", None).await?;
    let entitlements = all_entitlements(&host, "demo").await?;

    let platform_accounts = all_accounts(&host, "demo-platform", None).await?;
    let platform_entitlements = all_entitlements(&host, "demo-platform").await?;
    let person = shared.first().map(|(email, _)| email.clone()).unwrap_or_default();
    let mut everywhere = Vec::new();
    host.people(CUSTOMER, Some(&person), None, |event| {
        if let PeopleEvent::Account(account) = event {
            everywhere.push(account);
        }
    })
    .await?;

    let requests = service.requests();
    let paths: BTreeSet<&str> = requests.iter().map(|r| r.path.as_str()).collect();
    if args.json {
        return output::print_json(&serde_json::json!({
            "mock": server.base_url(),
            "info": info,
            "accounts": accounts,
            "entitlements": entitlements,
            "requests_seen_by_mock": requests.len(),
            "platform": {
                "mock": platform.base_url(),
                "accounts": platform_accounts,
                "entitlements": platform_entitlements,
            },
            "person_everywhere": everywhere,
        }));
    }
    out!("Mock ChatGPT workspace `{ACCOUNT_ID}` at {}\n", server.base_url());
    output::print_info(&info);
    out!("\nAccounts (listed through the sandboxed connector, 5 per page):");
    output::print_accounts(&accounts);
    out!("\nEntitlements:");
    output::print_entitlements(&entitlements);
    out!(
        "\nThe mock received {} requests ({}), every one with the credential injected by the host.",
        requests.len(),
        paths.into_iter().collect::<Vec<_>>().join(", ")
    );
    out!("\nThe same customer's API Platform organization at {}:", platform.base_url());
    output::print_accounts(&platform_accounts);
    out!(
        "{} entitlements (organization, org-role:*, project:<id>:*, group:<id>, role:<id>)",
        platform_entitlements.len()
    );
    out!(
        "\nOne person across customer `{CUSTOMER}` (harness people --customer {CUSTOMER} --email {person}):"
    );
    for held in &everywhere {
        out!("  {}  {}: {}", held.tenant, held.account.id, held.account.entitlements.join(" "));
    }
    server.stop().await;
    platform.stop().await;
    Ok(())
}
