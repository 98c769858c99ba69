//! One native connector process per connector call: one `list-accounts` call (one page) of one
//! workspace, then exit. The process-per-connector model's unit of work, as connectors shipped as
//! separate binaries run: the caller starts a process for each call and passes the cursor.
//!
//! `native-connector ADDR ACCOUNT_ID [--cursor CURSOR] [--size N]` prints one JSON line,
//! [`connector_bench::native::ProcessCall`]: the page's account count, the next cursor (none on
//! the last page) and the process's peak resident memory.

use accessgov_mock::console_base_url;
use anyhow::Context;
use clap::Parser;
use connector_bench::native::{self, ProcessCall};
use connector_bench::{memory, say, tenants};

// The allocator the host's process uses (see `connector-bench`), so both models run on the same.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// One `list-accounts` call of the ChatGPT connector, natively, against the service at ADDR.
#[derive(Debug, Parser)]
#[command(name = "native-connector", about)]
struct Args {
    /// The service, `host:port` (base URL `http://ADDR/backend-api`).
    addr: std::net::SocketAddr,
    /// The workspace (`chatgpt-account-id`).
    account_id: String,
    /// The cursor of the page to list; none lists the first.
    #[arg(long)]
    cursor: Option<String>,
    /// Page size; none uses the connector's default, as the host's calls do.
    #[arg(long)]
    size: Option<u32>,
}

fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let account_id = &args.account_id;
    let transport =
        native::NativeTransport::new(args.addr, &tenants::token_for(account_id), account_id, false);
    let settings = native::settings_map(&console_base_url(args.addr), account_id);
    let (ids, next_cursor) = native::list_page(&transport, &settings, args.cursor, args.size)
        .with_context(|| format!("list-accounts of {account_id}"))?;
    let call =
        ProcessCall { accounts: ids.len(), next_cursor, peak_rss_bytes: memory::peak_rss()? };
    Ok(say(serde_json::to_string(&call)?)?)
}
