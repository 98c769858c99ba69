//! `harness conformance`: the contract-level suite against a connector and its upstream.

use super::output::out;
use std::path::{Path, PathBuf};

use accessgov_conformance::{self as conformance, CheckResult, ConformanceOptions, Verdict};
use accessgov_host::{Host, HostConfig, TenantsFile};
use accessgov_mock::directory::{DirectoryServer, DirectoryService};
use accessgov_mock::platform::{PlatformServer, PlatformService, PlatformSpec};
use accessgov_mock::{GenerateSpec, MockServer, MockService, seed};
use anyhow::{anyhow, bail};
use clap::Args;

use super::mock::EmbeddedMock;
use super::output;

/// Options of `harness conformance`.
#[derive(Debug, Args)]
pub struct ConformanceArgs {
    /// The connector to check (default: the tenant's, or the bundled connector of the mock).
    #[arg(long)]
    connector: Option<PathBuf>,
    /// A tenants file whose tenant points at the upstream to check against. Without it, an
    /// embedded mock (`--mock`) is started and used.
    #[arg(long, conflicts_with = "mock")]
    tenants: Option<PathBuf>,
    /// The embedded mock to check against when no tenants file is given: `chatgpt`,
    /// `platform` (an API Platform organization, for the bundled `openai-platform`), or
    /// `directory` (the service the template connector manages; give `--connector`).
    #[arg(long, value_enum, default_value = "chatgpt")]
    mock: EmbeddedMock,
    /// The tenant of the file; may be left out when the file has one.
    #[arg(long, requires = "tenants")]
    tenant: Option<String>,
    /// An address the suite may invite, change and remove; it must not be an account yet (the
    /// suite refuses one that is). Default: a fresh address.
    #[arg(long, value_parser = subject_address)]
    subject: Option<String>,
    /// Print JSON instead of a table.
    #[arg(long)]
    json: bool,
}

/// A mock kept running for the suite.
enum Running {
    Chatgpt(MockServer),
    Directory(DirectoryServer),
    Platform(PlatformServer),
}

/// Runs `harness conformance`.
pub async fn run(args: ConformanceArgs, cache_dir: Option<PathBuf>) -> anyhow::Result<()> {
    let host = Host::new(HostConfig {
        cache_dir,
        named_connectors: bundled_connectors::named(),
        ..HostConfig::default()
    })?;
    let defaults = ConformanceOptions::default();
    let options = ConformanceOptions {
        subject: args.subject.clone().unwrap_or(defaults.subject.clone()),
        ..defaults
    };
    let cwd = PathBuf::from(".");
    let (mut tenant, base, mock) = match &args.tenants {
        Some(path) => {
            let file = TenantsFile::read(path)?;
            let tenant = file
                .select(args.tenant.as_deref())
                .map_err(|e| anyhow!("{}: {e}", path.display()))?;
            (tenant.clone(), path.parent().unwrap_or(Path::new(".")).to_path_buf(), None)
        }
        None if args.mock == EmbeddedMock::Directory => {
            if args.connector.is_none() {
                bail!(
                    "--mock directory checks a connector of the directory service: give --connector FILE.wasm (the template's build)"
                );
            }
            let token = "conformance-directory-token";
            let server = DirectoryServer::start_local(DirectoryService::seeded(token, 23)).await?;
            let tenant = server.tenant("conformance", "directory", token);
            (tenant, cwd.clone(), Some(Running::Directory(server)))
        }
        None if args.mock == EmbeddedMock::Platform => {
            let key = "conformance-admin-key";
            let spec =
                PlatformSpec { users: 31, projects: 3, groups: 2, ..PlatformSpec::default() };
            let org = accessgov_mock::platform::generate("conformance.example.com", spec);
            let server = PlatformServer::start_local(PlatformService::new(org, key)).await?;
            let tenant = server.tenant("conformance", "openai-platform", key);
            (tenant, cwd.clone(), Some(Running::Platform(server)))
        }
        None => {
            let service = MockService::new();
            service.put_workspace(seed::generate(
                "acct-conformance",
                GenerateSpec { members: 35, invites: 5, seed: 7, join_requests: 0 },
            ));
            service.add_token("conformance-owner-token", "acct-conformance", "account-owner");
            let server = MockServer::start_local(service).await?;
            let tenant =
                server.chatgpt_tenant("conformance", "acct-conformance", "conformance-owner-token");
            (tenant, cwd.clone(), Some(Running::Chatgpt(server)))
        }
    };
    if let Some(connector) = &args.connector {
        let absolute = if connector.is_absolute() {
            connector.clone()
        } else {
            std::env::current_dir()?.join(connector)
        };
        tenant.connector = absolute.display().to_string();
    }
    let results = conformance::run(&host, &tenant, &base, &options).await;
    match mock {
        Some(Running::Chatgpt(server)) => server.stop().await,
        Some(Running::Directory(server)) => server.stop().await,
        Some(Running::Platform(server)) => server.stop().await,
        None => {}
    }
    let results = results?;
    if args.json {
        output::print_json(&results)?;
    } else {
        print(&results);
    }
    let failed: Vec<&str> =
        results.iter().filter(|r| r.verdict == Verdict::Fail).map(|r| r.check.as_str()).collect();
    if !failed.is_empty() {
        bail!("{} of {} checks failed: {}", failed.len(), results.len(), failed.join(", "));
    }
    Ok(())
}

/// `--subject` must look like an email address; whether it is one the connector accepts, and
/// whether it is free, the suite checks before writing.
fn subject_address(raw: &str) -> Result<String, String> {
    let plausible = raw.len() <= 254
        && !raw.chars().any(|c| c.is_whitespace() || c.is_control())
        && raw.split_once('@').is_some_and(|(local, domain)| {
            !local.is_empty() && domain.contains('.') && !domain.contains('@')
        });
    if plausible { Ok(raw.to_string()) } else { Err(format!("{raw:?} is not an email address")) }
}

fn print(results: &[CheckResult]) {
    let mut table = comfy_table::Table::new();
    table.load_preset(comfy_table::presets::UTF8_FULL_CONDENSED);
    table.set_content_arrangement(comfy_table::ContentArrangement::Dynamic);
    table.set_header(vec!["check", "result", "detail"]);
    for r in results {
        let verdict = match r.verdict {
            Verdict::Pass => "pass",
            Verdict::Fail => "FAIL",
            Verdict::Skip => "skip",
        };
        table.add_row(vec![r.check.clone(), verdict.to_string(), r.detail.clone()]);
    }
    out!("{table}");
}
