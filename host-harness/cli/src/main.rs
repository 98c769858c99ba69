//! `harness`: run connectors for tenants, serve the mock services, or run the demo.
//!
//! Argument parsing and the commands, each a thin client of the host library.

mod changes;
mod conformance;
mod csv;
mod demo;
mod mock;
mod output;
mod people;
mod serve;
mod tenant_commands;
mod worker;

use std::path::PathBuf;

use accessgov_host::cache::ComponentCache;
use clap::{Args, Parser, Subcommand};

/// Runs access-governance connectors as sandboxed WebAssembly components.
#[derive(Debug, Parser)]
#[command(name = "harness", version, about)]
pub struct Cli {
    /// Directory of the compiled-component cache (default: ~/.cache/accessgov-harness).
    #[arg(long, global = true, env = "HARNESS_CACHE_DIR")]
    cache_dir: Option<PathBuf>,
    /// Compile components on every run instead of using the cache.
    #[arg(long, global = true)]
    no_cache: bool,
    /// Log the host's decisions (egress, calls) to stderr; repeat for more.
    #[arg(short, long, global = true, action = clap::ArgAction::Count)]
    pub verbose: u8,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Start the mock ChatGPT service with a seeded workspace and run the connector against it.
    Demo(demo::DemoArgs),
    /// Serve a mock service (ChatGPT, the API Platform, the directory) on loopback until
    /// interrupted.
    Mock(mock::MockArgs),
    /// Serve the host as an HTTP/JSON service (OpenAPI at /openapi.json) until SIGTERM.
    Serve(serve::ServeArgs),
    /// Take jobs from a NATS JetStream work queue and run them, until SIGTERM (see
    /// docs/scaling.md).
    Worker(worker::WorkerArgs),
    /// Describe the tenant's connector.
    Info(TenantArgs),
    /// Check the tenant's settings and credentials against the service.
    TestConnection(TenantArgs),
    /// List every account (members and pending invites), all pages.
    Accounts {
        #[command(flatten)]
        tenant: TenantArgs,
        /// Accounts per page requested from the connector.
        #[arg(long)]
        page_size: Option<u32>,
    },
    /// List every entitlement.
    Entitlements(TenantArgs),
    /// Grant an entitlement to an account (an email that is not a member gets an invite).
    Grant(changes::ChangeArgs),
    /// Revoke an entitlement from an account.
    Revoke(changes::ChangeArgs),
    /// Make an entitlement the one an account holds in an exclusion group (`role`, `seat`).
    Set(changes::SetArgs),
    /// Apply OpenAI's bulk CSV (`email,role,seat type`) through the batch operation.
    Apply(changes::ApplyArgs),
    /// Run the contract-level conformance suite against a connector and its upstream.
    Conformance(conformance::ConformanceArgs),
    /// List what each person of a customer holds in each of its tenants (`customer` in the
    /// tenants file), tenant by tenant; `--email` for one person.
    People(people::PeopleArgs),
    /// Show one account, by id or email.
    Account {
        /// An account id, or an email address.
        account: String,
        #[command(flatten)]
        tenant: TenantArgs,
    },
}

/// Which tenant to run for.
#[derive(Debug, Args)]
pub struct TenantArgs {
    /// The tenants file.
    #[arg(long, default_value = "tenants.toml")]
    tenants: PathBuf,
    /// The tenant's id; may be left out when the file has one tenant.
    #[arg(long)]
    tenant: Option<String>,
    /// Print JSON instead of tables.
    #[arg(long)]
    json: bool,
}

impl Cli {
    fn cache_dir(&self) -> Option<PathBuf> {
        if self.no_cache {
            None
        } else {
            self.cache_dir.clone().or_else(ComponentCache::default_dir)
        }
    }
}

/// Sends the host's tracing to stderr at a level set by `-v`.
pub fn init_tracing(verbose: u8) {
    let level = match verbose {
        0 => "warn",
        1 => "info",
        _ => "debug",
    };
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(level));
    let _ =
        tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr).try_init();
}

/// Runs the command.
pub async fn run(cli: Cli) -> anyhow::Result<()> {
    let cache_dir = cli.cache_dir();
    match cli.command {
        Command::Demo(args) => demo::run(args, cache_dir).await,
        Command::Mock(args) => mock::run(args).await,
        Command::Info(t) => tenant_commands::info(&t, cache_dir).await,
        Command::TestConnection(t) => tenant_commands::test_connection(&t, cache_dir).await,
        Command::Accounts { tenant, page_size } => {
            tenant_commands::accounts(&tenant, page_size, cache_dir).await
        }
        Command::Entitlements(t) => tenant_commands::entitlements(&t, cache_dir).await,
        Command::Grant(a) => changes::single(changes::Single::Grant(a), cache_dir).await,
        Command::Revoke(a) => changes::single(changes::Single::Revoke(a), cache_dir).await,
        Command::Set(a) => changes::single(changes::Single::Set(a), cache_dir).await,
        Command::Apply(a) => changes::apply(a, cache_dir).await,
        Command::Conformance(a) => conformance::run(a, cache_dir).await,
        Command::People(a) => people::run(a, cache_dir).await,
        Command::Serve(a) => serve::run(a, cache_dir).await,
        Command::Worker(a) => worker::run(a, cache_dir).await,
        Command::Account { account, tenant } => {
            tenant_commands::account(&tenant, &account, cache_dir).await
        }
    }
}

#[tokio::main]
async fn main() -> std::process::ExitCode {
    let args = Cli::parse();
    init_tracing(args.verbose);
    match run(args).await {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("error: {error:#}");
            std::process::ExitCode::FAILURE
        }
    }
}
