//! `harness mock`: serve a mock service (ChatGPT, the API Platform, or the template's directory)
//! until interrupted.

use super::output::out;
use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;

use accessgov_mock::directory::{DirectoryServer, DirectoryService};
use accessgov_mock::faults::MAX_FAULT_PLAN_BYTES;
use accessgov_mock::platform::{Organization, PlatformServer, PlatformService, PlatformSpec};
use accessgov_mock::{FaultPlan, GenerateSpec, MockFixture, MockServer, MockService, seed};
use anyhow::{Context, bail};
use clap::Args;

/// Options of `harness mock`.
#[derive(Debug, Args)]
pub struct MockArgs {
    /// Address to listen on; only loopback addresses are accepted.
    #[arg(long, default_value = "127.0.0.1")]
    host: IpAddr,
    /// Which service: `chatgpt`; `platform` (an API Platform organization: it takes `--users`,
    /// `--projects`, `--groups`, `--admin-key`, `--faults`, and `--seed` as a JSON organization);
    /// or `directory` (the template connector's; it takes `--members`, `--token` and `--faults`).
    #[arg(long, value_enum, default_value = "chatgpt")]
    service: EmbeddedMock,
    /// Port (0 picks a free one).
    #[arg(long, default_value_t = 8080)]
    port: u16,
    /// A JSON or TOML fixture of workspaces and tokens (see the README).
    #[arg(long, conflicts_with_all = ["members", "invites", "join_requests"])]
    seed: Option<PathBuf>,
    /// Generate a workspace with this many members.
    #[arg(long, default_value_t = 25)]
    members: usize,
    /// ... and this many pending invites.
    #[arg(long, default_value_t = 5)]
    invites: usize,
    /// ... and this many pending join requests.
    #[arg(long, default_value_t = 2)]
    join_requests: usize,
    /// ... and this many console groups, each holding a few of the members.
    #[arg(long, default_value_t = 3, conflicts_with = "seed")]
    console_groups: usize,
    /// Plan of the generated workspace: business, enterprise, edu, teachers or healthcare. It
    /// decides which roles and seat types exist and how seats change (see docs/mock.md).
    #[arg(long, default_value = "enterprise", conflicts_with = "seed")]
    plan: accessgov_mock::Plan,
    /// The generated Business workspace may hold Codex seats (it had one before 2026-06-24).
    #[arg(long, conflicts_with = "seed")]
    codex_seats: bool,
    /// How an existing member's seat type changes: account-manager (refused in the console) or
    /// self-service. Default: as the plan has it.
    #[arg(long, conflicts_with = "seed")]
    seat_changes: Option<accessgov_mock::SeatChanges>,
    /// API Platform: members of the generated organization.
    #[arg(long, default_value_t = 40)]
    users: usize,
    /// API Platform: projects of the generated organization (the last one archived).
    #[arg(long, default_value_t = 4)]
    projects: usize,
    /// API Platform: groups of the generated organization.
    #[arg(long, default_value_t = 3)]
    groups: usize,
    /// Id of the generated workspace.
    #[arg(long, default_value = "acct-mock")]
    account_id: String,
    /// Owner token of the generated workspace.
    #[arg(long, default_value = "mock-owner-token")]
    token: String,
    /// SCIM directory id of the generated workspace (its SCIM surface serves groups).
    #[arg(long, default_value = "dir-mock")]
    scim_directory: String,
    /// Key of the generated workspace's public Admin API (Enterprise and Edu; the printed
    /// tenants file gets a read-only review tenant for it), or of the API Platform organization.
    /// Default `mock-admin-key`; a ChatGPT `--seed` fixture carries its own keys.
    #[arg(long)]
    admin_key: Option<String>,
    /// Permissions of that key, comma-separated.
    #[arg(
        long,
        value_delimiter = ',',
        default_value = "chatgpt.enterprise.user.read",
        conflicts_with = "seed"
    )]
    admin_permissions: Vec<String>,
    /// SCIM bearer token of the generated workspace.
    #[arg(long, default_value = "mock-scim-token")]
    scim_token: String,
    /// A TOML fault plan: `[[script]]` per route and attempt, and/or `[random]` faults at a rate.
    #[arg(long)]
    faults: Option<PathBuf>,
}

/// The mock services the CLI can serve (`harness mock`) or start for `harness conformance`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum EmbeddedMock {
    /// The mock ChatGPT workspace (console and SCIM).
    Chatgpt,
    /// The API Platform organization of the `openai-platform` connector.
    Platform,
    /// The directory service of the template connector.
    Directory,
}

/// Builds the mock's state from the arguments.
pub fn service(args: &MockArgs) -> anyhow::Result<MockService> {
    let service = MockService::new();
    match &args.seed {
        Some(_) if args.admin_key.is_some() => {
            bail!("--admin-key: a ChatGPT --seed fixture names its own Admin API keys")
        }
        Some(path) => MockFixture::read(path)?.load_into(&service),
        None => {
            let spec = GenerateSpec {
                members: args.members,
                invites: args.invites,
                join_requests: args.join_requests,
                seed: 1,
            };
            spec.check().map_err(|e| anyhow::anyhow!("--members/--invites: {e}"))?;
            if args.codex_seats && args.plan != accessgov_mock::Plan::Business {
                bail!(
                    "--codex-seats is for --plan business; other plans have Codex seats always (enterprise) or never"
                );
            }
            let mut workspace = seed::generate(&args.account_id, spec);
            workspace.set_plan(args.plan, args.codex_seats);
            if let Some(mode) = args.seat_changes {
                workspace.seat_changes = mode;
            }
            seed::fit_to_plan(&mut workspace);
            if args.console_groups > accessgov_mock::console_groups::MAX_CONSOLE_GROUPS {
                bail!(
                    "--console-groups {}: a workspace holds at most {} groups",
                    args.console_groups,
                    accessgov_mock::console_groups::MAX_CONSOLE_GROUPS
                );
            }
            let member_ids: Vec<String> = workspace.members.iter().map(|m| m.id.clone()).collect();
            service.put_workspace(workspace);
            for n in 0..args.console_groups {
                // Every fifth member from the group's own starting point, up to ten of them.
                let ids: Vec<&str> =
                    member_ids.iter().skip(n).step_by(5).take(10).map(String::as_str).collect();
                service.add_console_group(&args.account_id, &format!("Team {}", n + 1), &ids);
            }
            service.add_token(&args.token, &args.account_id, "account-owner");
            service.enable_scim(&args.account_id, &args.scim_directory, &args.scim_token);
            let permissions: Vec<&str> =
                args.admin_permissions.iter().map(String::as_str).collect();
            service.add_admin_key(admin_key(args), &args.account_id, &permissions);
        }
    }
    if let Some(plan) = fault_plan(args)? {
        service.set_faults(plan);
    }
    Ok(service)
}

/// `--admin-key`, or its default.
fn admin_key(args: &MockArgs) -> &str {
    args.admin_key.as_deref().unwrap_or("mock-admin-key")
}

/// The fault plan `--faults` names, if any.
fn fault_plan(args: &MockArgs) -> anyhow::Result<Option<FaultPlan>> {
    let Some(path) = &args.faults else { return Ok(None) };
    let text = accessgov_policy::bounded_read::read_text(path, MAX_FAULT_PLAN_BYTES)
        .with_context(|| format!("--faults {}", path.display()))?;
    let plan =
        FaultPlan::from_toml(&text).with_context(|| format!("--faults {}", path.display()))?;
    Ok(Some(plan))
}

/// Runs `harness mock`.
pub async fn run(args: MockArgs) -> anyhow::Result<()> {
    if !args.host.is_loopback() {
        bail!("--host {} is not a loopback address; the mock only serves this machine", args.host);
    }
    match args.service {
        EmbeddedMock::Directory => return serve_directory(&args).await,
        EmbeddedMock::Platform => return serve_platform(&args).await,
        EmbeddedMock::Chatgpt => {}
    }
    let service = service(&args)?;
    let server = MockServer::start(service.clone(), SocketAddr::new(args.host, args.port))
        .await
        .with_context(|| format!("could not listen on {}:{}", args.host, args.port))?;
    out!("mock ChatGPT service at {}", server.base_url());
    for (id, ws) in &service.lock().workspaces {
        out!(
            "  workspace {id}: {} members, {} invites, default seat {}",
            ws.members.len(),
            ws.invites.len(),
            ws.default_seat_type
        );
    }
    out!("tenants file for it:\n");
    out!("{}", tenants_file(&service, &server).trim_end());
    out!("press Ctrl-C to stop");
    tokio::signal::ctrl_c().await.context("waiting for Ctrl-C")?;
    server.stop().await;
    Ok(())
}

/// Serves the directory service with `--members` people, printing a tenants file for the
/// template connector's release build.
async fn serve_directory(args: &MockArgs) -> anyhow::Result<()> {
    if args.seed.is_some() {
        bail!("--seed loads ChatGPT workspaces; the directory mock takes --members and --token");
    }
    let people = u64::try_from(args.members).unwrap_or(u64::MAX);
    if people > 100_000 {
        bail!("--members {people}: the directory mock holds at most 100000 people");
    }
    let service = DirectoryService::seeded(&args.token, people);
    if let Some(plan) = fault_plan(args)? {
        service.traffic().set_faults(plan);
    }
    let server = DirectoryServer::start(service, SocketAddr::new(args.host, args.port))
        .await
        .with_context(|| format!("could not listen on {}:{}", args.host, args.port))?;
    let origin = format!("http://{}", server.addr());
    out!("mock directory service at {origin} with {people} people");
    out!("tenants file for it:\n");
    out!(
        "[[tenant]]\nid = \"directory\"\nconnector = \"target/wasm32-wasip2/release/template_connector.wasm\"\nallow-private-addresses = true\nallowed-origins = [\"{origin}\"]\n[tenant.settings]\nbase-url = \"{origin}\"\n[[tenant.credentials]]\norigin = \"{origin}\"\nbearer-token = \"{}\"",
        args.token
    );
    out!("press Ctrl-C to stop");
    tokio::signal::ctrl_c().await.context("waiting for Ctrl-C")?;
    server.stop().await;
    Ok(())
}

/// The most people or projects a generated organization holds.
const MAX_PLATFORM_ITEMS: usize = 100_000;

/// The organization `--seed` holds, or one generated from `--users`, `--projects`, `--groups`.
pub fn platform_organization(args: &MockArgs) -> anyhow::Result<Organization> {
    if let Some(path) = &args.seed {
        let text = accessgov_policy::bounded_read::read_text(path, 64 << 20)
            .with_context(|| format!("--seed {}", path.display()))?;
        return serde_json::from_str(&text).with_context(|| {
            format!("--seed {}: not an API Platform organization", path.display())
        });
    }
    for (flag, value) in
        [("--users", args.users), ("--projects", args.projects), ("--groups", args.groups)]
    {
        if value > MAX_PLATFORM_ITEMS {
            bail!("{flag} {value}: the API Platform mock holds at most {MAX_PLATFORM_ITEMS}");
        }
    }
    let spec = PlatformSpec {
        users: args.users,
        projects: args.projects,
        archived_projects: usize::from(args.projects > 1),
        groups: args.groups,
        invites: args.invites,
        ..PlatformSpec::default()
    };
    Ok(accessgov_mock::platform::generate("platform.example.com", spec))
}

/// Serves an API Platform organization, printing a tenants file for it.
async fn serve_platform(args: &MockArgs) -> anyhow::Result<()> {
    let org = platform_organization(args)?;
    let (users, projects) = (org.users.len(), org.projects.len());
    let service = PlatformService::new(org, admin_key(args));
    if let Some(plan) = fault_plan(args)? {
        service.traffic().set_faults(plan);
    }
    let server = PlatformServer::start(service, SocketAddr::new(args.host, args.port))
        .await
        .with_context(|| format!("could not listen on {}:{}", args.host, args.port))?;
    let origin = format!("http://{}", server.addr());
    out!(
        "mock API Platform Admin API at {} with {users} users and {projects} projects",
        server.base_url()
    );
    out!("tenants file for it:\n");
    out!(
        "[[tenant]]\nid = \"platform\"\nconnector = \"openai-platform\"\nallow-private-addresses = true\nallowed-origins = [\"{origin}\"]\n[tenant.settings]\nbase-url = \"{}\"\n[[tenant.credentials]]\norigin = \"{origin}\"\nbearer-token = \"{}\"",
        server.base_url(),
        admin_key(args)
    );
    out!("press Ctrl-C to stop");
    tokio::signal::ctrl_c().await.context("waiting for Ctrl-C")?;
    server.stop().await;
    Ok(())
}

/// A tenants file with one tenant per token of the mock, SCIM included where the workspace
/// has a directory.
fn tenants_file(service: &MockService, server: &MockServer) -> String {
    let mut file = String::new();
    let data = service.lock();
    for (token, grant) in &data.tokens {
        let directory =
            data.workspaces.get(&grant.account_id).and_then(|w| w.scim_directory.clone());
        let scim_token = directory
            .as_ref()
            .and_then(|dir| data.scim_tokens.iter().find(|(_, d)| *d == dir).map(|(t, _)| t));
        let (scim_setting, scim_credential) = match (&directory, scim_token) {
            (Some(dir), Some(scim_token)) => (
                format!("scim-base-url = \"{}\"\n", server.scim_base_url(dir)),
                format!(
                    "[[tenant.credentials]]\norigin = \"{}\"\npath-prefix = \"/scim/v2.0/{dir}\"\nbearer-token = \"{scim_token}\"\n",
                    server.origin()
                ),
            ),
            _ => (String::new(), String::new()),
        };
        file.push_str(&format!(
            "[[tenant]]\nid = \"{acct}-{role}\"\nconnector = \"chatgpt\"\nallow-private-addresses = true\nallowed-origins = [\"{origin}\"]\n[tenant.settings]\nbase-url = \"{base}\"\naccount-id = \"{acct}\"\n{scim_setting}[[tenant.credentials]]\norigin = \"{origin}\"\nbearer-token = \"{token}\"\nheaders = {{ chatgpt-account-id = \"{acct}\" }}\n{scim_credential}\n",
            acct = grant.account_id,
            role = grant.role,
            origin = server.origin(),
            base = server.base_url(),
        ));
    }
    // A read-only review tenant per Admin API key: members through the Admin API, no console.
    for (key, grant) in &data.admin_keys {
        let served = data.workspaces.get(&grant.workspace_id).is_some_and(|w| {
            matches!(w.plan, accessgov_mock::Plan::Enterprise | accessgov_mock::Plan::Edu)
        });
        if !served {
            continue;
        }
        file.push_str(&format!(
            "[[tenant]]\nid = \"{acct}-review\"\nconnector = \"chatgpt\"\nallow-private-addresses = true\nallowed-origins = [\"{origin}\"]\n[tenant.settings]\nadmin-api-base-url = \"{origin}/v1\"\naccount-id = \"{acct}\"\n[[tenant.credentials]]\norigin = \"{origin}\"\npath-prefix = \"/v1\"\nbearer-token = \"{key}\"\n\n",
            acct = grant.workspace_id,
            origin = server.origin(),
        ));
    }
    file
}
